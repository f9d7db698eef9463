"""The one way convstore opens a write transaction through SQLAlchemy, on either backend, and
the read that rewriting a stored conversation inside one begins with."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import ColumnElement, Row, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from convstore._storage.reconnect import Progress
from convstore._storage.schema import messages, sessions


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


async def locked_conversation(
    conn: AsyncConnection, session_id: str, *columns: ColumnElement[Any]
) -> tuple[Row[Any], Sequence[Row[Any, Any]]] | None:
    """The session's `columns`, its row locked for the transaction as an append locks it (so a
    concurrent append waits, or is waited for), and its stored messages as (seq, body) rows in
    order; None for an unknown session."""
    session: Row[Any] | None = (
        await conn.execute(
            select(*columns).where(sessions.c.session_id == session_id).with_for_update()
        )
    ).one_or_none()
    if session is None:
        return None
    stored = (
        await conn.execute(
            select(messages.c.seq, messages.c.body)
            .where(messages.c.session_id == session_id)
            .order_by(messages.c.seq)
        )
    ).all()
    return session, stored
