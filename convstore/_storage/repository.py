"""Storage operations shared by every backend, written with SQLAlchemy Core.

A backend subclasses `Repository` and implements the three hot paths (save, append, restore) and
the logging of attempts in whatever way its driver does fastest, from the statements of
`statements` and `retry_history`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Row, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from convstore._records import (
    Attempt,
    InterruptedSession,
    Interruption,
    Repair,
    RetrySummary,
    Snapshot,
)
from convstore._storage.listed import interrupted
from convstore._storage.reconnect import Progress, reconnecting
from convstore._storage.retry_history import p95_query, summary, summary_query
from convstore._storage.schema import interruptions, sessions
from convstore._storage.statements import (
    add_history,
    interrupted_sessions,
    resolve_session,
    upsert_session,
)
from convstore._storage.transactions import write_transaction
from convstore.exceptions import LeaseHeld

T = TypeVar("T")

#: The interruption reason of sessions whose owner stopped renewing its lease.
ABANDONED = "abandoned"


class Repository(ABC):
    """The database operations behind a store."""

    def __init__(self, engine: AsyncEngine, database: str) -> None:
        self.engine = engine
        #: "sqlite" or "postgresql".
        self.dialect = engine.dialect.name
        #: The database as it may appear in error messages: the URL without its password.
        self.database = database

    # -- per backend ---------------------------------------------------------------------------

    @abstractmethod
    async def save(
        self,
        session_id: str,
        messages: Sequence[Any],
        extra: Mapping[str, Any],
        max_messages: int,
        now: datetime,
    ) -> None:
        """Replace the session's conversation with `messages`, of which the pair-safe cap keeps
        at most `max_messages`, and its extra state, ending any interruption."""

    @abstractmethod
    async def append(
        self,
        session_id: str,
        messages: Sequence[Any],
        extra: Mapping[str, Any] | None,
        max_messages: int,
        now: datetime,
    ) -> int:
        """Add `messages` to the conversation, keep at most `max_messages` under the pair-safe
        cap, and return the new message count."""

    @abstractmethod
    async def restore(self, session_id: str) -> Snapshot | None:
        """The stored snapshot, read in one consistent transaction."""

    @abstractmethod
    async def close(self) -> None:
        """Give back the connections the repository holds; the engine stays open."""

    @abstractmethod
    async def record_attempt(self, attempt: Attempt) -> None:
        """Insert one ``retry_events`` row."""

    @property
    def reconnect_window_s(self) -> float:
        """How long an operation keeps trying to reach the server after losing its connection
        (`reconnect`); 0 where a lost connection is not something to wait out (SQLite)."""
        return 0.0

    def writing(
        self, progress: Progress | None = None
    ) -> AbstractAsyncContextManager[AsyncConnection]:
        """A connection in a write transaction, committed when the block ends without error;
        the commit is noted in `progress`, if given."""
        return write_transaction(self.engine, progress)

    def reading(self) -> AbstractAsyncContextManager[AsyncConnection]:
        """A connection for reading."""
        return self.engine.connect()

    @abstractmethod
    async def forget_connections(self) -> None:
        """Drop the connections kept for later use, after one was lost (`reconnect`)."""

    async def reconnecting(
        self, action: str, attempt: Callable[[Progress], Awaitable[T]], *, repeatable: bool
    ) -> T:
        """Run `attempt`, again on a new connection if its connection is lost before it could
        have committed (`reconnect`); `repeatable` if running it twice stores what running it
        once does, so that it may run again even then."""
        return await reconnecting(
            action,
            self.database,
            attempt,
            repeatable=repeatable,
            window_s=self.reconnect_window_s,
            on_lost=self.forget_connections,
        )

    async def write(
        self, action: str, work: Callable[[AsyncConnection], Awaitable[T]], *, repeatable: bool
    ) -> T:
        """Run `work` in a write transaction, through `reconnecting`."""

        async def attempt(progress: Progress) -> T:
            async with self.writing(progress) as conn:
                return await work(conn)

        return await self.reconnecting(action, attempt, repeatable=repeatable)

    async def read(self, action: str, work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        """Run `work` on a connection for reading, through `reconnecting`."""

        async def attempt(progress: Progress) -> T:
            async with self.reading() as conn:
                return await work(conn)

        return await self.reconnecting(action, attempt, repeatable=True)

    # -- shared --------------------------------------------------------------------------------

    async def mark_interrupted(self, session_id: str, reason: str | None, now: datetime) -> None:
        """Mark the session interrupted, creating it if unknown, and add a history row."""

        async def mark(conn: AsyncConnection) -> None:
            await self._interrupt(conn, session_id, reason, now)

        # Repeatable: a second run sets the same marker and finds its history row there.
        await self.write("mark_interrupted", mark, repeatable=True)

    async def _interrupt(
        self,
        conn: AsyncConnection,
        session_id: str,
        reason: str | None,
        now: datetime,
        **also: Any,
    ) -> None:
        """Set the interruption marker (and the columns in `also`), creating the session if
        unknown, and add a history row."""
        marker = {"interrupted_at": now, "interrupt_reason": reason, **also}
        await self._set_on_session(conn, session_id, marker, now)
        await _add_history(conn, session_id, reason, now)

    async def _set_on_session(
        self, conn: AsyncConnection, session_id: str, values: Mapping[str, Any], now: datetime
    ) -> None:
        """Set `values` on the session's row, creating the session, empty, if unknown."""
        statement = upsert_session(
            self.dialect, {"session_id": session_id, **values}, lambda _: values
        )
        await conn.execute(statement, {"now": now})

    async def take_lease(
        self, session_id: str, owner: str, expires_at: datetime, now: datetime
    ) -> None:
        """Make `owner` the session's runner until `expires_at`, creating the session if unknown.

        A lease that another owner let expire is taken over, and recorded as an abandonment;
        one that is still alive raises `LeaseHeld`.
        """
        lease = {"owner": owner, "lease_expires_at": expires_at}

        async def take(conn: AsyncConnection) -> None:
            current = (
                await conn.execute(
                    select(sessions.c.owner, sessions.c.lease_expires_at)
                    .where(sessions.c.session_id == session_id)
                    .with_for_update()
                )
            ).one_or_none()
            if current is not None and current.owner not in (None, owner):
                if current.lease_expires_at >= now:
                    raise LeaseHeld(
                        f"session {session_id!r} is running under owner {current.owner!r} "
                        f"until {current.lease_expires_at.isoformat()}"
                    )
                await self._interrupt(conn, session_id, ABANDONED, now)
            await self._set_on_session(conn, session_id, lease, now)

        # Repeatable: a second run finds the lease its own and sets it again.
        await self.write("running", take, repeatable=True)

    async def renew_lease(self, session_id: str, owner: str, expires_at: datetime) -> bool:
        """Extend the owner's lease; False if the owner no longer holds it."""

        async def renew(conn: AsyncConnection) -> bool:
            result = await conn.execute(
                update(sessions)
                .where(sessions.c.session_id == session_id, sessions.c.owner == owner)
                .values(lease_expires_at=expires_at)
            )
            return bool(result.rowcount)

        return await self.write("running", renew, repeatable=True)

    async def end_lease(
        self, session_id: str, owner: str, reason: str | None, now: datetime
    ) -> bool:
        """End the owner's lease; with a reason, mark the session interrupted as well.

        False, changing nothing, when another owner holds the session now or it was recovered
        as abandoned: only the holder of a lease ends it. A session the block deleted has no
        holder; with a reason it is marked (created again, empty), as a crash after a delete.
        """
        values: dict[str, Any] = {"owner": None, "lease_expires_at": None}
        if reason is not None:
            values |= {"interrupted_at": now, "interrupt_reason": reason}
        row = sessions.c.session_id == session_id

        async def end(conn: AsyncConnection) -> bool:
            ended = await conn.execute(
                update(sessions).where(row, sessions.c.owner == owner).values(values)
            )
            if ended.rowcount:
                if reason is not None:
                    await _add_history(conn, session_id, reason, now)
            elif await conn.scalar(select(sessions.c.session_id).where(row)) is not None:
                return False  # another owner's now
            elif reason is not None:
                await self._interrupt(conn, session_id, reason, now)
            return True

        # Not repeatable: a second run would find the lease gone and report it lost.
        return await self.write("running", end, repeatable=False)

    async def recover_abandoned(self, now: datetime) -> list[InterruptedSession]:
        """Mark every session whose lease expired as interrupted; each is returned once only."""

        async def recover(conn: AsyncConnection) -> list[tuple[str, int]]:
            # One UPDATE claims the rows: a concurrent caller waits for it, then finds
            # their leases gone and claims nothing.
            claimed = (
                await conn.execute(
                    update(sessions)
                    .where(sessions.c.lease_expires_at < now)
                    .values(
                        interrupted_at=now,
                        interrupt_reason=ABANDONED,
                        owner=None,
                        lease_expires_at=None,
                    )
                    .returning(sessions.c.session_id, sessions.c.message_count)
                )
            ).all()
            if claimed:
                await conn.execute(
                    insert(interruptions),
                    [
                        {"session_id": sid, "interrupted_at": now, "reason": ABANDONED}
                        for sid, _ in claimed
                    ],
                )
            return [(sid, count) for sid, count in claimed]

        # Not repeatable: a second run would claim nothing, and return nothing.
        claimed = await self.write("recover_abandoned", recover, repeatable=False)
        return [
            InterruptedSession(
                session_id=sid,
                message_count=count,
                interrupted_at=now,
                age_seconds=0.0,
                reason=ABANDONED,
            )
            for sid, count in sorted(claimed)
        ]

    async def delete(self, session_id: str, now: datetime) -> bool:
        """Delete the session and its messages; its interruption history stays, resolved."""

        async def remove(conn: AsyncConnection) -> bool:
            result = await conn.execute(delete(sessions).where(sessions.c.session_id == session_id))
            await conn.execute(resolve_session(), {"session": session_id, "now": now})
            return bool(result.rowcount)

        # Not repeatable: a second run would find nothing to delete, and say so.
        return await self.write("delete_snapshot", remove, repeatable=False)

    async def list_interrupted(self, limit: int | None, now: datetime) -> list[InterruptedSession]:
        """Interrupted sessions, newest interruption first."""

        async def listing(conn: AsyncConnection) -> Sequence[Row[Any]]:
            result = await conn.execute(interrupted_sessions(), {"limit": limit})
            rows: Sequence[Row[Any]] = result.all()
            return rows

        rows = await self.read("list_interrupted_sessions", listing)
        return [interrupted(row, now) for row in rows]

    async def interruptions(self, session_id: str | None, limit: int | None) -> list[Interruption]:
        """The crash history, newest first, of one session or of all."""
        query = select(interruptions).order_by(
            interruptions.c.interrupted_at.desc(), interruptions.c.id.desc()
        )
        if session_id is not None:
            query = query.where(interruptions.c.session_id == session_id)

        async def history(conn: AsyncConnection) -> Sequence[Row[Any]]:
            return (await conn.execute(query.limit(limit))).all()

        rows = await self.read("interruptions", history)
        return [
            Interruption(
                row.id,
                row.session_id,
                row.interrupted_at,
                row.reason,
                row.resolved_at,
                repairs_of(row.repairs),
            )
            for row in rows
        ]

    async def retry_summary(
        self, since: datetime | None, operation: str | None
    ) -> list[RetrySummary]:
        """The retry history per operation and kind of error."""

        async def summarise(conn: AsyncConnection) -> list[RetrySummary]:
            # One snapshot for the groups and their percentiles, though they are read apart.
            if self.dialect == "sqlite":
                await conn.exec_driver_sql("BEGIN")
            else:
                conn = await conn.execution_options(isolation_level="REPEATABLE READ")
            found = []
            for group in (await conn.execute(summary_query(since, operation))).all():
                p95 = p95_query(group, since)
                delay = None if p95 is None else (await conn.execute(p95)).scalar_one_or_none()
                found.append(summary(group, delay))
            return found

        return await self.read("retry_summary", summarise)


async def _add_history(
    conn: AsyncConnection, session_id: str, reason: str | None, now: datetime
) -> None:
    """Add the ``interruptions`` row of an interruption at `now`, unless it is there already."""
    await conn.execute(add_history(), {"session": session_id, "at": now, "reason": reason})


def repairs_of(document: Any) -> tuple[Repair, ...]:
    """The repairs an ``interruptions.repairs`` document lists; none for NULL."""
    return tuple(Repair(**item) for item in document or ())
