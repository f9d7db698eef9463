"""The PostgreSQL repository: hot paths as two statements on a pooled asyncpg connection.

asyncpg is asynchronous itself, so each statement is one round trip to the server and nothing
else. A write first upserts the session row, which locks it, and only then touches the session's
messages, in a statement whose snapshot therefore includes every earlier writer's commit.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

import asyncpg
from sqlalchemy import Integer, String, Text, bindparam, cast, func, literal_column, select
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, aggregate_order_by
from sqlalchemy.ext.asyncio import AsyncEngine

from convstore._records import Attempt, Snapshot
from convstore._storage import codec, statements
from convstore._storage.connections import Connections
from convstore._storage.errors import storage_errors
from convstore._storage.repository import Repository, encode_messages
from convstore._storage.retry_history import attempt_values, insert_attempt
from convstore._storage.schema import messages, sessions
from convstore._storage.statements import compiled

T = TypeVar("T")


def _add_messages(*ctes: Any) -> Any:
    """INSERT the messages ``:roles`` / ``:bodies`` (arrays) at positions from ``:first`` on,
    running the data-modifying `ctes` in the same statement."""
    rows = (
        func.unnest(bindparam("roles", type_=ARRAY(Text)), bindparam("bodies", type_=ARRAY(Text)))
        .table_valued("role", "body", with_ordinality="ordinality")
        .render_derived(name="m")
    )
    first = bindparam("first", type_=Integer)
    source = select(
        bindparam("session", type_=String),
        first + rows.c.ordinality - literal_column("1"),
        rows.c.role,
        cast(rows.c.body, JSONB),
    )
    return (
        statements.INSERTS["postgresql"](messages)
        .from_select(["session_id", "seq", "role", "body"], source)
        .add_cte(*ctes)
    )


_SAVE_SESSION = compiled(statements.save_session("postgresql"), "postgresql")
_APPEND_SESSION = compiled(statements.append_session("postgresql"), "postgresql")
# One statement each: the trim, the end of open interruptions and the new rows, as
# data-modifying CTEs, so a save or append costs two round trips whatever it changes.
_REPLACE_MESSAGES = compiled(
    statements.update_changed_messages(
        _add_messages(
            statements.delete_messages_outside().cte("outside"),
            statements.resolve_session().cte("resolved"),
        )
    ),
    "postgresql",
)
_ADD_MESSAGES = compiled(
    _add_messages(
        statements.delete_messages_before().cte("trimmed"),
        statements.resolve_session().cte("resolved"),
    ),
    "postgresql",
)
# The whole conversation as one JSON array text, decoded in one go.
_RESTORE = compiled(
    select(
        sessions.c.message_count,
        sessions.c.saved_at,
        cast(sessions.c.extra, Text),
        sessions.c.interrupted_at,
        sessions.c.interrupt_reason,
        select(
            func.string_agg(
                cast(messages.c.body, Text),
                aggregate_order_by(literal_column("','"), messages.c.seq),
            )
        )
        .where(messages.c.session_id == sessions.c.session_id)
        .scalar_subquery(),
    ).where(sessions.c.session_id == statements.SESSION_ID),
    "postgresql",
)
_INSERT_ATTEMPT = compiled(insert_attempt(), "postgresql")


class PostgresRepository(Repository):
    """PostgreSQL through asyncpg: concurrent writers, serialised per session by its row lock."""

    def __init__(self, engine: AsyncEngine, database: str, *, keep_connections: int) -> None:
        super().__init__(engine, database)
        self._connections = Connections(engine, keep_connections)

    async def _run(self, fn: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
        """Run `fn` with a pooled asyncpg connection."""
        # A query cut short (cancelled, or the connection lost) can leave the connection in the
        # middle of the protocol: it is discarded, which also ends any transaction it had open
        # without committing it. Only the server's own refusal leaves it fine.
        async with self._connections.borrow(healthy_after=(asyncpg.PostgresError,)) as raw:
            return await fn(raw.driver_connection)

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
        values = {"session": session_id, "now": now, "count": message_count}
        session = _SAVE_SESSION.args({**values, "extra": codec.encode(extra, jsonb=True)})
        rows = _REPLACE_MESSAGES.args({**values, "first": first, "roles": roles, "bodies": bodies})

        async def save(conn: asyncpg.Connection) -> None:
            async with conn.transaction():
                await conn.execute(_SAVE_SESSION.sql, *session)
                await conn.execute(_REPLACE_MESSAGES.sql, *rows)

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
        encoded = None if extra is None else codec.encode(extra, jsonb=True)
        values = {"session": session_id, "now": now}
        session = _APPEND_SESSION.args(
            {**values, "count": added, "new_extra": encoded or "{}", "extra": encoded}
        )

        async def append(conn: asyncpg.Connection) -> int:
            async with conn.transaction():
                count: int = await conn.fetchval(_APPEND_SESSION.sql, *session)
                rows = {"first": count - len(bodies), "keep_from": count - max_messages}
                await conn.execute(
                    _ADD_MESSAGES.sql,
                    *_ADD_MESSAGES.args({**values, **rows, "roles": roles, "bodies": bodies}),
                )
            return count

        with storage_errors("append_messages", self.database):
            return await self._run(append)

    async def restore(self, session_id: str) -> Snapshot | None:
        async def restore(conn: asyncpg.Connection) -> Any:
            return await conn.fetchrow(_RESTORE.sql, session_id)

        with storage_errors("restore_snapshot", self.database):
            row = await self._run(restore)
        if row is None:
            return None
        count, saved_at, extra, interrupted_at, reason, bodies = row
        return Snapshot(
            session_id=session_id,
            messages=codec.decode("[" + (bodies or "") + "]"),
            message_count=count,
            saved_at=saved_at,
            extra=codec.decode(extra),
            interrupted_at=interrupted_at,
            interrupt_reason=reason,
        )

    async def record_attempt(self, attempt: Attempt) -> None:
        row = _INSERT_ATTEMPT.args(attempt_values(attempt))

        async def record(conn: asyncpg.Connection) -> None:
            await conn.execute(_INSERT_ATTEMPT.sql, *row)

        with storage_errors("record_attempt", self.database):
            await self._run(record)


def _columns(rows: Sequence[tuple[str, int, str | None, str]]) -> tuple[list[Any], list[str]]:
    """The roles and bodies of encoded rows, as the arrays that unnest() takes."""
    return [role for _, _, role, _ in rows], [body for _, _, _, body in rows]
