"""The PostgreSQL lower bound: the same tables written with plain asyncpg, no abstraction.

One connection, one transaction per operation, the SQL a careful person writes by hand:
``json.dumps`` bodies passed as text to the jsonb columns, ``json.loads`` on the way back.
A save inserts its messages with one ``unnest`` statement over two text arrays: measured on this
machine, ``executemany`` of the same rows (pipelined by asyncpg, but one server-side execution
per row) took 20-30% longer per save.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import asyncpg

from benchmarks._lower_bound import CAP

_SAVE_SESSION = """
INSERT INTO sessions (session_id, created_at, saved_at, message_count, extra)
VALUES ($1, $2, $2, $3, $4)
ON CONFLICT (session_id) DO UPDATE SET
    saved_at = excluded.saved_at, message_count = excluded.message_count, extra = excluded.extra
"""
_INSERT_MESSAGES = """
INSERT INTO messages (session_id, seq, role, body)
SELECT $1, $2 + n - 1, role, body::jsonb
FROM unnest($3::text[], $4::text[]) WITH ORDINALITY AS m(role, body, n)
"""
_APPEND_SESSION = """
INSERT INTO sessions (session_id, created_at, saved_at, message_count, extra)
VALUES ($1, $2, $2, 1, '{}')
ON CONFLICT (session_id) DO UPDATE SET
    saved_at = excluded.saved_at, message_count = sessions.message_count + 1
RETURNING message_count
"""


class PostgresLowerBound:
    """Save, append and restore on one asyncpg connection, with the fewest layers Python allows."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    @classmethod
    async def connect(cls, dsn: str) -> PostgresLowerBound:
        return cls(await asyncpg.connect(dsn))

    async def close(self) -> None:
        await self.conn.close()

    async def save(self, session_id: str, messages: list[Any], extra: dict[str, Any]) -> None:
        now = datetime.now(UTC)
        kept = messages[-CAP:]
        roles = [m.get("role") for m in kept]
        bodies = [json.dumps(m) for m in kept]
        async with self.conn.transaction():
            await self.conn.execute(
                _SAVE_SESSION, session_id, now, len(messages), json.dumps(extra)
            )
            await self.conn.execute("DELETE FROM messages WHERE session_id = $1", session_id)
            await self.conn.execute(
                _INSERT_MESSAGES, session_id, len(messages) - len(kept), roles, bodies
            )

    async def append(self, session_id: str, message: dict[str, Any]) -> int:
        now = datetime.now(UTC)
        body = json.dumps(message)
        async with self.conn.transaction():
            count: int = await self.conn.fetchval(_APPEND_SESSION, session_id, now)
            await self.conn.execute(
                "INSERT INTO messages (session_id, seq, role, body) VALUES ($1, $2, $3, $4)",
                session_id,
                count - 1,
                message.get("role"),
                body,
            )
            if count > CAP:
                await self.conn.execute(
                    "DELETE FROM messages WHERE session_id = $1 AND seq < $2",
                    session_id,
                    count - CAP,
                )
        return count

    async def restore(self, session_id: str) -> dict[str, Any] | None:
        # Repeatable read: both statements see the same snapshot, as one SQLite read does.
        async with self.conn.transaction(isolation="repeatable_read", readonly=True):
            row = await self.conn.fetchrow(
                "SELECT message_count, saved_at, extra, interrupted_at, interrupt_reason "
                "FROM sessions WHERE session_id = $1",
                session_id,
            )
            if row is None:
                return None
            bodies = await self.conn.fetch(
                "SELECT body FROM messages WHERE session_id = $1 ORDER BY seq", session_id
            )
        # asyncpg hands jsonb over as its text.
        messages = [json.loads(body) for (body,) in bodies]
        return {"messages": messages, "message_count": row[0], "extra": json.loads(row[2])}
