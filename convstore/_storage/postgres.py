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
from sqlalchemy.pool import PoolProxiedConnection

from convstore._conversation.window import Plan
from convstore._records import Attempt, Snapshot
from convstore._storage import codec, statements
from convstore._storage.connections import Connections
from convstore._storage.reconnect import Progress
from convstore._storage.repository import Repository
from convstore._storage.retry_history import attempt_values, insert_attempt
from convstore._storage.rows import (
    encode_messages,
    kept_messages,
    planned,
    reads_older,
    window_text,
)
from convstore._storage.schema import messages, sessions
from convstore._storage.statements import compiled

T = TypeVar("T")


def _add_messages(*ctes: Any) -> Any:
    """INSERT the messages ``:bodies`` (an array of JSON texts) with ``:roles`` at positions
    ``:seqs``, running the data-modifying `ctes` in the same statement."""
    rows = (
        func.unnest(
            bindparam("seqs", type_=ARRAY(Integer)),
            bindparam("roles", type_=ARRAY(Text)),
            bindparam("bodies", type_=ARRAY(Text)),
        )
        .table_valued("seq", "role", "body")
        .render_derived(name="m")
    )
    source = select(
        bindparam("session", type_=String), rows.c.seq, rows.c.role, cast(rows.c.body, JSONB)
    )
    return (
        statements.INSERTS["postgresql"](messages)
        .from_select(["session_id", "seq", "role", "body"], source)
        .add_cte(*ctes)
    )


_SAVE_SESSION = compiled(statements.save_session("postgresql"), "postgresql")
_APPEND_SESSION = compiled(statements.append_session("postgresql"), "postgresql")
# One statement each: the trim, the end of open interruptions and the new rows (and on append the
# new window), as data-modifying CTEs, so a save or append costs two round trips.
_REPLACE_MESSAGES = compiled(
    statements.update_changed_messages(
        _add_messages(
            statements.delete_unkept().cte("unkept"),
            statements.resolve_session().cte("resolved"),
        )
    ),
    "postgresql",
)
_ADD_MESSAGES = compiled(
    _add_messages(
        statements.delete_trimmed().cte("trimmed"),
        statements.resolve_session().cte("resolved"),
        statements.set_window().cte("windowed"),
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
_SELECT_STORED = compiled(statements.stored_messages(), "postgresql")
_INSERT_ATTEMPT = compiled(insert_attempt(), "postgresql")


class PostgresRepository(Repository):
    """PostgreSQL through asyncpg: concurrent writers, serialised per session by its row lock."""

    def __init__(
        self, engine: AsyncEngine, database: str, *, keep_connections: int, reconnect_s: float
    ) -> None:
        super().__init__(engine, database)
        self._connections = Connections(engine, keep_connections, alive=_open)
        self._reconnect_s = reconnect_s

    @property
    def reconnect_window_s(self) -> float:
        return self._reconnect_s

    async def forget_connections(self) -> None:
        # The pool checks its own idle connections as it hands them out (`pool_pre_ping`).
        await self._connections.discard_idle()

    async def _run(
        self,
        action: str,
        fn: Callable[[asyncpg.Connection, Progress], Awaitable[T]],
        *,
        repeatable: bool,
    ) -> T:
        """Run `fn` with a pooled asyncpg connection, again on a new one if it is lost before
        `fn` could have committed, or at any time when `repeatable` (see `reconnect`)."""

        async def attempt(progress: Progress) -> T:
            # A query cut short (cancelled, or the connection lost) can leave the connection in
            # the middle of the protocol: it is discarded, which also ends any transaction it
            # had open without committing it. Only the server's own refusal, on a connection
            # still open, leaves it fine.
            async with self._connections.borrow(healthy_after=(asyncpg.PostgresError,)) as raw:
                return await fn(raw.driver_connection, progress)

        return await self.reconnecting(action, attempt, repeatable=repeatable)

    async def close(self) -> None:
        await self._connections.close()

    async def save(
        self,
        session_id: str,
        messages: Sequence[Any],
        extra: Mapping[str, Any],
        max_messages: int,
        now: datetime,
    ) -> None:
        count = len(messages)
        plan = planned(None, messages, 0, max_messages)
        kept, seqs = kept_messages(plan, messages, 0)
        roles, bodies = _columns(encode_messages(session_id, kept, seqs, jsonb=True))
        values = {"session": session_id, "now": now, "count": count}
        session = _SAVE_SESSION.args(
            {**values, "extra": codec.encode(extra, jsonb=True), "window": window_text(plan)}
        )
        rows = _REPLACE_MESSAGES.args(
            {**values, **_trim(plan), "seqs": seqs, "roles": roles, "bodies": bodies}
        )

        async def save(conn: asyncpg.Connection, progress: Progress) -> None:
            async with conn.transaction():
                await conn.execute(_SAVE_SESSION.sql, *session)
                await conn.execute(_REPLACE_MESSAGES.sql, *rows)
                progress.committing = True

        # Repeatable: a save replaces the whole conversation, so a second one stores the same.
        await self._run("save_snapshot", save, repeatable=True)

    async def append(
        self,
        session_id: str,
        messages: Sequence[Any],
        extra: Mapping[str, Any] | None,
        max_messages: int,
        now: datetime,
    ) -> int:
        encoded = None if extra is None else codec.encode(extra, jsonb=True)
        values = {"session": session_id, "now": now}
        session = _APPEND_SESSION.args(
            {**values, "count": len(messages), "new_extra": encoded or "{}", "extra": encoded}
        )

        async def append(conn: asyncpg.Connection, progress: Progress) -> int:
            async with conn.transaction():
                count, stored = await conn.fetchrow(_APPEND_SESSION.sql, *session)
                first = count - len(messages)
                older = (
                    await conn.fetch(_SELECT_STORED.sql, session_id)
                    if reads_older(stored, first, len(messages), max_messages)
                    else ()
                )
                plan = planned(stored, messages, first, max_messages, older)
                kept, seqs = kept_messages(plan, messages, first)
                roles, bodies = _columns(encode_messages(session_id, kept, seqs, jsonb=True))
                rows = {"seqs": seqs, "roles": roles, "bodies": bodies, **_trim(plan)}
                window = {"window": window_text(plan)}
                await conn.execute(
                    _ADD_MESSAGES.sql, *_ADD_MESSAGES.args({**values, **rows, **window})
                )
                progress.committing = True
            return int(count)

        # Not repeatable: a second append would add the messages again.
        return await self._run("append_messages", append, repeatable=False)

    async def restore(self, session_id: str) -> Snapshot | None:
        async def restore(conn: asyncpg.Connection, progress: Progress) -> Any:
            return await conn.fetchrow(_RESTORE.sql, session_id)

        row = await self._run("restore_snapshot", restore, repeatable=True)
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

        async def record(conn: asyncpg.Connection, progress: Progress) -> None:
            progress.committing = True  # one statement, committed as it runs
            await conn.execute(_INSERT_ATTEMPT.sql, *row)

        # Not repeatable: a second run could add the row twice.
        await self._run("record_attempt", record, repeatable=False)


def _open(raw: PoolProxiedConnection) -> bool:
    """Whether a pooled connection's asyncpg connection is still open."""
    conn: asyncpg.Connection = raw.driver_connection
    return not conn.is_closed()


def _trim(plan: Plan) -> dict[str, int]:
    """The parameters of the statements that delete what `plan` does not keep."""
    return {"pinned": plan.pinned_kept, "first": plan.first, "opener": plan.opener}


def _columns(rows: Sequence[tuple[str, int, str | None, str]]) -> tuple[list[Any], list[str]]:
    """The roles and bodies of encoded rows, as the arrays that unnest() takes."""
    return [role for _, _, role, _ in rows], [body for _, _, _, body in rows]
