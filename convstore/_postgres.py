"""The PostgreSQL backend: hot paths as a few statements on the pooled asyncpg connection.

asyncpg is asynchronous itself, so each statement is one round trip to the server and nothing
else. A write first upserts the session row, which locks it, and only then touches the session's
messages, in a statement whose snapshot therefore includes every earlier writer's commit.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any, TypeVar

import asyncpg
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from convstore import _codec
from convstore._connections import Connections
from convstore._errors import storage_errors
from convstore._records import Snapshot
from convstore._repository import (
    RETRY_EVENT_COLUMNS,
    Repository,
    attempt_values,
    encode_messages,
)
from convstore._retry import Attempt

T = TypeVar("T")

_UPSERT_FOR_SAVE = """
INSERT INTO sessions (session_id, created_at, saved_at, message_count, extra)
VALUES ($1, $2, $2, $3, $4::text::jsonb)
ON CONFLICT (session_id) DO UPDATE SET
    saved_at = excluded.saved_at, message_count = excluded.message_count, extra = excluded.extra,
    interrupted_at = NULL, interrupt_reason = NULL
"""
# Rows that did not change since the previous save are left alone (see _sqlite_ops).
_REPLACE_MESSAGES = """
WITH outside AS (
    DELETE FROM messages WHERE session_id = $1 AND (seq < $2 OR seq >= $3)
), resolved AS (
    UPDATE interruptions SET resolved_at = $4 WHERE session_id = $1 AND resolved_at IS NULL
)
INSERT INTO messages (session_id, seq, role, body)
SELECT $1, $2 + ordinality - 1, role, body::jsonb
FROM unnest($5::text[], $6::text[]) WITH ORDINALITY AS m(role, body, ordinality)
ON CONFLICT (session_id, seq) DO UPDATE SET role = excluded.role, body = excluded.body
WHERE messages.body IS DISTINCT FROM excluded.body OR messages.role IS DISTINCT FROM excluded.role
"""
_UPSERT_FOR_APPEND = """
INSERT INTO sessions (session_id, created_at, saved_at, message_count, extra)
VALUES ($1, $2, $2, $3, coalesce($4::text::jsonb, '{}'::jsonb))
ON CONFLICT (session_id) DO UPDATE SET
    saved_at = excluded.saved_at,
    message_count = sessions.message_count + excluded.message_count,
    extra = coalesce($4::text::jsonb, sessions.extra),
    interrupted_at = NULL, interrupt_reason = NULL
RETURNING message_count
"""
_ADD_MESSAGES = """
WITH trimmed AS (
    DELETE FROM messages WHERE session_id = $1 AND seq < $3
), resolved AS (
    UPDATE interruptions SET resolved_at = $4 WHERE session_id = $1 AND resolved_at IS NULL
)
INSERT INTO messages (session_id, seq, role, body)
SELECT $1, $2 + ordinality - 1, role, body::jsonb
FROM unnest($5::text[], $6::text[]) WITH ORDINALITY AS m(role, body, ordinality)
"""
_RESTORE = """
SELECT s.message_count, s.saved_at, s.extra::text, s.interrupted_at, s.interrupt_reason,
       (SELECT string_agg(m.body::text, ',' ORDER BY m.seq)
        FROM messages m WHERE m.session_id = s.session_id) AS bodies
FROM sessions s WHERE s.session_id = $1
"""
_INSERT_RETRY_EVENT = (
    f"INSERT INTO retry_events ({', '.join(RETRY_EVENT_COLUMNS)}) VALUES "
    f"({', '.join(f'${i}' for i in range(1, len(RETRY_EVENT_COLUMNS) + 1))})"
)


class PostgresRepository(Repository):
    """PostgreSQL through asyncpg: concurrent writers, serialised per session by its row lock."""

    _insert = staticmethod(postgresql_insert)

    def __init__(self, engine: AsyncEngine, database: str, *, keep_connections: int) -> None:
        super().__init__(engine, database)
        self._connections = Connections(engine, keep_connections)

    async def _run(self, fn: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
        """Run `fn` with a pooled asyncpg connection."""
        raw = await self._connections.acquire()
        healthy = False
        try:
            result = await fn(raw.driver_connection)
        except asyncpg.PostgresError:
            healthy = True  # the server refused; the connection is fine
            raise
        except asyncio.CancelledError:
            # A query cut short can leave the connection mid-protocol: it is closed, which also
            # ends any transaction it had open without committing it.
            raise
        else:
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
        first = message_count - len(kept)
        roles, bodies = _columns(encode_messages(session_id, kept, first, jsonb=True))
        encoded_extra = _codec.encode(extra, jsonb=True)

        async def save(conn: asyncpg.Connection) -> None:
            async with conn.transaction():
                await conn.execute(_UPSERT_FOR_SAVE, session_id, now, message_count, encoded_extra)
                await conn.execute(
                    _REPLACE_MESSAGES, session_id, first, message_count, now, roles, bodies
                )

        with storage_errors("save_snapshot", self.database):
            await self._run(save)

    async def append(
        self,
        session_id: str,
        kept: Sequence[Any],
        added: int,
        extra: Mapping[str, Any] | None,
        max_messages: int,
        now: datetime,
    ) -> int:
        roles, bodies = _columns(encode_messages(session_id, kept, 0, jsonb=True))
        encoded_extra = None if extra is None else _codec.encode(extra, jsonb=True)

        async def append(conn: asyncpg.Connection) -> int:
            async with conn.transaction():
                count: int = await conn.fetchval(
                    _UPSERT_FOR_APPEND, session_id, now, added, encoded_extra
                )
                await conn.execute(
                    _ADD_MESSAGES,
                    session_id,
                    count - len(bodies),
                    count - max_messages,
                    now,
                    roles,
                    bodies,
                )
            return count

        with storage_errors("append_messages", self.database):
            return await self._run(append)

    async def restore(self, session_id: str) -> Snapshot | None:
        async def restore(conn: asyncpg.Connection) -> Any:
            return await conn.fetchrow(_RESTORE, session_id)

        with storage_errors("restore_snapshot", self.database):
            row = await self._run(restore)
        if row is None:
            return None
        count, saved_at, extra, interrupted_at, reason, bodies = row
        return Snapshot(
            session_id=session_id,
            messages=_codec.decode("[" + (bodies or "") + "]"),
            message_count=count,
            saved_at=saved_at,
            extra=_codec.decode(extra),
            interrupted_at=interrupted_at,
            interrupt_reason=reason,
        )

    async def record_attempt(self, attempt: Attempt) -> None:
        values = attempt_values(attempt)
        row = [values[column] for column in RETRY_EVENT_COLUMNS]

        async def record(conn: asyncpg.Connection) -> None:
            await conn.execute(_INSERT_RETRY_EVENT, *row)

        with storage_errors("record_attempt", self.database):
            await self._run(record)

    @asynccontextmanager
    async def _write(self) -> AsyncIterator[AsyncConnection]:
        async with self.engine.begin() as conn:
            yield conn

    @asynccontextmanager
    async def _read(self) -> AsyncIterator[AsyncConnection]:
        async with self.engine.connect() as conn:
            yield conn


def _columns(rows: Sequence[tuple[str, int, str | None, str]]) -> tuple[list[Any], list[str]]:
    """The roles and bodies of encoded rows, as the arrays that unnest() takes."""
    return [role for _, _, role, _ in rows], [body for _, _, _, body in rows]
