"""The SQLite repository: hot paths run as one function on aiosqlite's connection thread.

aiosqlite runs every call on a thread of its own, and each hop to that thread and back costs
about as much as a whole small statement. A save written statement by statement makes six such
hops; submitted as one function that runs the whole transaction, it makes one. Those functions
are in `operations`; writes go through the group-commit writer in `group_commit`.
"""

from __future__ import annotations

import asyncio
import functools
import sqlite3
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager, nullcontext
from datetime import datetime
from typing import Any, TypeVar, cast

import aiosqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.pool import StaticPool

from convstore._records import Attempt, InterruptedSession, Snapshot
from convstore._storage.connections import Connections
from convstore._storage.errors import storage_errors
from convstore._storage.listed import interrupted
from convstore._storage.reconnect import Progress
from convstore._storage.repository import Repository
from convstore._storage.sqlite import operations, quick
from convstore._storage.sqlite.group_commit import GroupCommitWriter
from convstore._storage.transactions import write_transaction
from convstore._storage.types import to_sqlite_text
from convstore.exceptions import ConvstoreError

T = TypeVar("T")


class SQLiteRepository(Repository):
    """SQLite through aiosqlite: WAL, one writer at a time per process, readers in parallel."""

    def __init__(self, engine: AsyncEngine, database: str, *, keep_connections: int) -> None:
        super().__init__(engine, database)
        # Writers in one process take turns here (and share transactions, through the writer)
        # rather than in SQLite's busy handler, which polls with sleeps of up to 100 ms; other
        # processes still wait in the busy handler.
        self._write_lock = asyncio.Lock()
        # An in-memory database lives in one shared connection, so readers take turns too.
        shared = isinstance(engine.pool, StaticPool)
        self._read_lock: Any = self._write_lock if shared else nullcontext()
        self._connections = Connections(engine, keep_connections)
        self._writer = GroupCommitWriter(self._run, self._write_lock)

    async def _run(
        self, fn: Callable[[sqlite3.Connection], T], on_cancel: Callable[[], object] | None = None
    ) -> T:
        """Run `fn` with a connection on that connection's thread, as one round trip.

        If the caller is cancelled, `on_cancel` is called at once, before the connection is given
        back (which may wait for `fn` to finish).
        """
        # The database refusing leaves the connection fine; so does a cancellation, after
        # which whoever uses the connection next queues behind `fn` on its thread.
        healthy_after = (sqlite3.Error, ConvstoreError, asyncio.CancelledError)
        async with self._connections.borrow(healthy_after=healthy_after) as raw:
            driver = cast(aiosqlite.Connection, raw.driver_connection)
            # aiosqlite has no public way to run a function on its thread; `_execute` and
            # `_conn` have kept their shape since aiosqlite 0.17 and a test guards them.
            conn: sqlite3.Connection = driver._conn
            try:
                result: T = await driver._execute(fn, conn)  # type: ignore[no-untyped-call]
            except asyncio.CancelledError:
                if on_cancel is not None:
                    on_cancel()
                raise
            return result

    async def forget_connections(self) -> None:
        pass  # a file's connections are not lost (`reconnect_window_s` is 0, so never called)

    async def close(self) -> None:
        await self._writer.close()
        await self._connections.close()

    async def save(
        self,
        session_id: str,
        messages: Sequence[Any],
        extra: Mapping[str, Any],
        max_messages: int,
        now: datetime,
    ) -> None:
        work = operations.save(session_id, messages, extra, max_messages, to_sqlite_text(now))
        with storage_errors("save_snapshot", self.database):
            await self._writer.write(work)

    async def append(
        self,
        session_id: str,
        messages: Sequence[Any],
        extra: Mapping[str, Any] | None,
        max_messages: int,
        now: datetime,
    ) -> int:
        work = operations.append(session_id, messages, extra, max_messages, to_sqlite_text(now))
        with storage_errors("append_messages", self.database):
            count: int = await self._writer.write(work)
        return count

    async def mark_interrupted(self, session_id: str, reason: str | None, now: datetime) -> None:
        work = operations.mark_interrupted(session_id, reason, to_sqlite_text(now))
        with storage_errors("mark_interrupted", self.database):
            await self._writer.write(work)

    async def list_interrupted(self, limit: int | None, now: datetime) -> list[InterruptedSession]:
        with storage_errors("list_interrupted_sessions", self.database):
            async with self._read_lock:
                rows = await self._run(functools.partial(quick.interrupted_rows, limit=limit))
        return [interrupted(row, now) for row in rows]

    async def restore(self, session_id: str) -> Snapshot | None:
        with storage_errors("restore_snapshot", self.database):
            async with self._read_lock:
                return await self._run(functools.partial(operations.restore, session_id=session_id))

    async def record_attempt(self, attempt: Attempt) -> None:
        with storage_errors("record_attempt", self.database):
            await self._writer.write(operations.record_attempt(attempt))

    @asynccontextmanager
    async def writing(self, progress: Progress | None = None) -> AsyncIterator[AsyncConnection]:
        async with self._write_lock, write_transaction(self.engine, progress) as conn:
            yield conn

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[AsyncConnection]:
        async with self._read_lock, self.engine.connect() as conn:
            yield conn
