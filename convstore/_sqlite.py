"""The SQLite backend: hot paths run as one function on aiosqlite's connection thread.

aiosqlite runs every call on a thread of its own, and each hop to that thread and back costs
about as much as a whole small statement. A save written statement by statement makes six such
hops; submitted as one function that runs the whole transaction, it makes one. The functions
below are plain `sqlite3` code and run there; the rest of the module is the asyncio side.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager, nullcontext
from datetime import datetime
from typing import Any, Concatenate, ParamSpec, TypeVar, cast

import aiosqlite
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.pool import PoolProxiedConnection, StaticPool
from sqlalchemy.util import greenlet_spawn

from convstore import _codec
from convstore._errors import storage_errors
from convstore._records import Snapshot
from convstore._repository import Repository, attempt_values, encode_messages
from convstore._retry import Attempt
from convstore._types import from_sqlite_text, to_sqlite_text
from convstore.exceptions import ConvstoreError

P = ParamSpec("P")
T = TypeVar("T")

_UPSERT_FOR_SAVE = """
INSERT INTO sessions (session_id, created_at, saved_at, message_count, extra)
VALUES (?1, ?2, ?2, ?3, ?4)
ON CONFLICT (session_id) DO UPDATE SET
    saved_at = excluded.saved_at, message_count = excluded.message_count, extra = excluded.extra,
    interrupted_at = NULL, interrupt_reason = NULL
"""
_UPSERT_FOR_APPEND = """
INSERT INTO sessions (session_id, created_at, saved_at, message_count, extra)
VALUES (?1, ?2, ?2, ?3, coalesce(?4, '{}'))
ON CONFLICT (session_id) DO UPDATE SET
    saved_at = excluded.saved_at,
    message_count = sessions.message_count + excluded.message_count,
    extra = coalesce(?4, sessions.extra),
    interrupted_at = NULL, interrupt_reason = NULL
RETURNING message_count
"""
_DELETE_OUTSIDE = "DELETE FROM messages WHERE session_id = ? AND (seq < ? OR seq >= ?)"
# A save usually repeats most of the previous one (the same conversation, a turn longer): rows
# that did not change are left alone, so a save writes what changed rather than everything.
_UPSERT_MESSAGE = """
INSERT INTO messages (session_id, seq, role, body) VALUES (?, ?, ?, ?)
ON CONFLICT (session_id, seq) DO UPDATE SET role = excluded.role, body = excluded.body
WHERE messages.body IS NOT excluded.body OR messages.role IS NOT excluded.role
"""
_TRIM_MESSAGES = "DELETE FROM messages WHERE session_id = ? AND seq < ?"
_INSERT_MESSAGE = "INSERT INTO messages (session_id, seq, role, body) VALUES (?, ?, ?, ?)"
_RESOLVE = "UPDATE interruptions SET resolved_at = ? WHERE session_id = ? AND resolved_at IS NULL"
_SELECT_SESSION = """
SELECT message_count, saved_at, extra, interrupted_at, interrupt_reason
FROM sessions WHERE session_id = ?
"""
_SELECT_BODIES = "SELECT body FROM messages WHERE session_id = ? ORDER BY seq"
_RETRY_EVENT_COLUMNS = (
    "call_id",
    "session_id",
    "operation",
    "attempt",
    "outcome",
    "error_type",
    "error_class",
    "error_message",
    "status_code",
    "delay_s",
    "retry_after_s",
    "elapsed_s",
    "created_at",
)
_INSERT_RETRY_EVENT = (
    f"INSERT INTO retry_events ({', '.join(_RETRY_EVENT_COLUMNS)}) "
    f"VALUES ({', '.join('?' * len(_RETRY_EVENT_COLUMNS))})"
)


@contextmanager
def _transaction(
    conn: sqlite3.Connection, cancelled: threading.Event, begin: str
) -> Iterator[None]:
    """One transaction, committed only if the block succeeds and its caller still waits for it."""
    conn.execute(begin)
    try:
        yield
        # A caller cancelled while its function waited in the thread's queue, or ran, must find
        # the database as it was: roll back instead of committing work nobody waits for.
        if not cancelled.is_set():
            conn.execute("COMMIT")
    finally:
        if conn.in_transaction:
            conn.execute("ROLLBACK")


def _save(
    conn: sqlite3.Connection,
    cancelled: threading.Event,
    session_id: str,
    kept: Sequence[Any],
    message_count: int,
    extra: Mapping[str, Any],
    now: str,
) -> None:
    first = message_count - len(kept)
    rows = encode_messages(session_id, kept, first)
    encoded_extra = _codec.encode(extra)
    with _transaction(conn, cancelled, "BEGIN IMMEDIATE"):
        conn.execute(_UPSERT_FOR_SAVE, (session_id, now, message_count, encoded_extra))
        conn.execute(_DELETE_OUTSIDE, (session_id, first, message_count))
        conn.executemany(_UPSERT_MESSAGE, rows)
        conn.execute(_RESOLVE, (now, session_id))


def _append(
    conn: sqlite3.Connection,
    cancelled: threading.Event,
    session_id: str,
    kept: Sequence[Any],
    added: int,
    extra: Mapping[str, Any] | None,
    max_messages: int,
    now: str,
) -> int:
    # Encoded with seq 0 onwards; the real positions are known once the count is read.
    rows = encode_messages(session_id, kept, 0)
    encoded_extra = None if extra is None else _codec.encode(extra)
    with _transaction(conn, cancelled, "BEGIN IMMEDIATE"):
        ((count,),) = conn.execute(
            _UPSERT_FOR_APPEND, (session_id, now, added, encoded_extra)
        ).fetchall()
        first = count - len(rows)
        conn.executemany(
            _INSERT_MESSAGE, [(sid, first + seq, role, body) for sid, seq, role, body in rows]
        )
        if count > max_messages:
            conn.execute(_TRIM_MESSAGES, (session_id, count - max_messages))
        conn.execute(_RESOLVE, (now, session_id))
    return int(count)


def _restore(
    conn: sqlite3.Connection, cancelled: threading.Event, session_id: str
) -> Snapshot | None:
    # A read transaction, so the session row and its messages come from the same commit.
    with _transaction(conn, cancelled, "BEGIN"):
        row = conn.execute(_SELECT_SESSION, (session_id,)).fetchone()
        if row is None:
            return None
        # As bytes: they are joined and parsed as one document, never used as str.
        conn.text_factory = bytes
        try:
            bodies = [body for (body,) in conn.execute(_SELECT_BODIES, (session_id,))]
        finally:
            conn.text_factory = str
    count, saved_at, extra, interrupted_at, reason = row
    return Snapshot(
        session_id=session_id,
        # One decode of the whole conversation instead of one per message.
        messages=_codec.decode(b"[" + b",".join(bodies) + b"]"),
        message_count=count,
        saved_at=from_sqlite_text(saved_at),
        extra=_codec.decode(extra),
        interrupted_at=None if interrupted_at is None else from_sqlite_text(interrupted_at),
        interrupt_reason=reason,
    )


def _record_attempt(
    conn: sqlite3.Connection, cancelled: threading.Event, row: tuple[Any, ...]
) -> None:
    with _transaction(conn, cancelled, "BEGIN IMMEDIATE"):
        conn.execute(_INSERT_RETRY_EVENT, row)


class _Connections:
    """Driver connections kept out of the engine's pool between operations.

    A check-out and check-in through SQLAlchemy's pool costs about a twentieth of a save; the
    connections convstore is done with wait here instead, up to `keep` of them, until `close`.
    """

    def __init__(self, engine: AsyncEngine, keep: int) -> None:
        self._engine = engine
        self._keep = keep
        self._idle: list[PoolProxiedConnection] = []

    async def acquire(self) -> PoolProxiedConnection:
        """An idle connection, or a new one from the pool."""
        if self._idle:
            return self._idle.pop()
        return await self._engine.raw_connection()

    async def release(self, raw: PoolProxiedConnection, *, healthy: bool) -> None:
        """Keep a connection for the next operation, or give it back (discarded if broken)."""
        if not healthy:
            await greenlet_spawn(raw.invalidate)
        elif len(self._idle) < self._keep:
            self._idle.append(raw)
        else:
            await greenlet_spawn(raw.close)

    async def close(self) -> None:
        """Give every idle connection back to the pool."""
        while self._idle:
            await greenlet_spawn(self._idle.pop().close)


class SQLiteRepository(Repository):
    """SQLite through aiosqlite: WAL, one writer at a time per process, readers in parallel."""

    _insert = staticmethod(sqlite_insert)

    def __init__(self, engine: AsyncEngine, database: str, *, keep_connections: int) -> None:
        super().__init__(engine, database)
        # Writers in one process take turns here rather than in SQLite's busy handler, which
        # polls with sleeps of up to 100 ms; other processes still wait in the busy handler.
        self._write_lock = asyncio.Lock()
        # An in-memory database lives in one shared connection, so readers take turns too.
        shared = isinstance(engine.pool, StaticPool)
        self._read_lock: Any = self._write_lock if shared else nullcontext()
        self._connections = _Connections(engine, keep_connections)

    async def _run(
        self,
        fn: Callable[Concatenate[sqlite3.Connection, threading.Event, P], T],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """Run `fn` on a connection's thread, as one round trip."""
        raw = await self._connections.acquire()
        healthy = False
        try:
            driver = cast(aiosqlite.Connection, raw.driver_connection)
            cancelled = threading.Event()
            try:
                # aiosqlite has no public way to run a function on its thread; `_execute` and
                # `_conn` have kept their shape since aiosqlite 0.17 and a test guards them.
                result: T = await driver._execute(fn, driver._conn, cancelled, *args, **kwargs)  # type: ignore[no-untyped-call]
            except (sqlite3.Error, ConvstoreError):
                healthy = True  # the database refused; the connection is fine
                raise
            except asyncio.CancelledError:
                # fn may still be queued on the thread; whoever uses the connection next
                # queues behind it, and fn rolls back instead of committing.
                cancelled.set()
                healthy = True
                raise
            healthy = True
            return result
        finally:
            await self._connections.release(raw, healthy=healthy)

    async def close(self) -> None:
        await self._connections.close()

    async def save(
        self,
        session_id: str,
        kept: Sequence[Any],
        message_count: int,
        extra: Mapping[str, Any],
        now: datetime,
    ) -> None:
        with storage_errors("save_snapshot", self.database):
            async with self._write_lock:
                await self._run(_save, session_id, kept, message_count, extra, to_sqlite_text(now))

    async def append(
        self,
        session_id: str,
        kept: Sequence[Any],
        added: int,
        extra: Mapping[str, Any] | None,
        max_messages: int,
        now: datetime,
    ) -> int:
        with storage_errors("append_messages", self.database):
            async with self._write_lock:
                return await self._run(
                    _append, session_id, kept, added, extra, max_messages, to_sqlite_text(now)
                )

    async def restore(self, session_id: str) -> Snapshot | None:
        with storage_errors("restore_snapshot", self.database):
            async with self._read_lock:
                return await self._run(_restore, session_id)

    async def record_attempt(self, attempt: Attempt) -> None:
        values = attempt_values(attempt)
        values["created_at"] = to_sqlite_text(attempt.created_at)
        row = tuple(values[column] for column in _RETRY_EVENT_COLUMNS)
        with storage_errors("record_attempt", self.database):
            async with self._write_lock:
                await self._run(_record_attempt, row)

    @asynccontextmanager
    async def _write(self) -> AsyncIterator[AsyncConnection]:
        async with self._write_lock, self.engine.connect() as conn:
            await conn.exec_driver_sql("BEGIN IMMEDIATE")
            yield conn
            await conn.commit()

    @asynccontextmanager
    async def _read(self) -> AsyncIterator[AsyncConnection]:
        async with self._read_lock, self.engine.connect() as conn:
            yield conn
