"""The one way convstore opens a write transaction through SQLAlchemy, on either backend."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from convstore._storage.reconnect import Progress


@asynccontextmanager
async def write_transaction(
    engine: AsyncEngine, progress: Progress | None = None
) -> AsyncIterator[AsyncConnection]:
    """A connection in a write transaction, committed when the block ends without error; the
    commit is noted in `progress`, if given.

    On SQLite the transaction starts with ``BEGIN IMMEDIATE``: it takes the write lock at once,
    so it never has to upgrade a read lock later (which fails at once when another writer holds
    it, instead of waiting out the busy timeout).
    """
    async with engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            # The driver runs in autocommit mode (see `engine`), so this is the only BEGIN.
            await conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            await conn.begin()
        yield conn
        if progress is not None:
            progress.committing = True
        await conn.commit()
