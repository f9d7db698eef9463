"""Deleting old history in short transactions, so that writers never wait long for it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, delete, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from convstore._cli.admin.database import display_url
from convstore._storage.errors import storage_errors
from convstore._storage.schema import interruptions, messages, retry_events, sessions
from convstore._storage.statements import resolve_interruptions
from convstore._storage.transactions import write_transaction
from convstore._storage.types import utcnow

#: How long one purge transaction may last: on SQLite it holds the database's write lock; on
#: PostgreSQL it locks only the rows it deletes, but a writer's commit waits for the WAL the
#: purge's commit wrote before it to be flushed. Its batch grows or shrinks to fit.
TRANSACTION_S = {"sqlite": 0.01, "postgresql": 0.02}
#: Sessions (or rows) of the first batch, and the most of any.
FIRST_BATCH, MAX_BATCH = 100, 10_000


@dataclass(slots=True)
class _Pace:
    """The size of the next batch, fitted to `TRANSACTION_S` by the last one's time.

    After each transaction the purge rests for as long as it took. On SQLite that leaves the
    write lock free: a writer of another process waits in SQLite's busy handler, which sleeps
    between tries (1, 2, 5, 10, 15 ms, ...), and must find the lock free when it wakes. On
    PostgreSQL a writer waits only for the rows it shares with the batch (an old session being
    saved again), but its commit's flush of the WAL competes with the purge's deletes, their WAL
    and the checkpoints they bring: resting halves that load.
    """

    dialect: str
    batch: int = field(default_factory=lambda: FIRST_BATCH)
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    #: On SQLite, copies the WAL's pages into the database while the lock is free, so that the
    #: WAL the purge fills is not left for a writer's commit to checkpoint.
    checkpoint: Callable[[], Awaitable[None]] | None = None

    def fresh(self) -> _Pace:
        """A pace for another table, starting from the first batch again."""
        return _Pace(self.dialect, sleep=self.sleep, checkpoint=self.checkpoint)

    async def after(self, started: float) -> None:
        held, target = time.monotonic() - started, TRANSACTION_S[self.dialect]
        if held < target / 2:
            self.batch = min(self.batch * 2, MAX_BATCH)
        elif held > target:
            self.batch = max(self.batch // 2, 1)
        resting = time.monotonic()
        if self.checkpoint is not None:
            await self.checkpoint()  # writers may commit meanwhile: it takes no write lock
        await self.sleep(max(0.0, held - (time.monotonic() - resting)))


@dataclass(frozen=True, slots=True)
class PurgeReport:
    """What `purge` removed, or would remove."""

    sessions: int = 0
    messages: int = 0
    #: Open interruptions of the deleted sessions, marked resolved (they stay in the history).
    resolved: int = 0
    retry_events: int = 0
    interruptions: int = 0


@dataclass(frozen=True, slots=True)
class _Old:
    """What `purge` deletes: the conditions on each table."""

    sessions: ColumnElement[bool]
    retry_events: ColumnElement[bool]
    interruptions: ColumnElement[bool]


def _old(cutoff: datetime, now: datetime) -> _Old:
    s, i = sessions.c, interruptions.c
    # A session whose lease is alive is running and kept, however old its last save.
    alive = s.lease_expires_at.is_not(None) & (s.lease_expires_at >= now)
    return _Old(
        sessions=(s.saved_at < cutoff) & ~alive,
        retry_events=retry_events.c.created_at < cutoff,
        interruptions=(i.resolved_at < cutoff) & (i.interrupted_at < cutoff),
    )


async def purge(engine: AsyncEngine, cutoff: datetime, *, dry_run: bool) -> PurgeReport:
    """Delete sessions not saved since `cutoff`, then retry events and resolved interruptions
    from before it, in batches of short transactions; with `dry_run`, only count them.

    A session whose lease is alive is running and kept, however old its last save. Deleting a
    session resolves its open interruptions, as `Store.delete_snapshot` does.
    """
    now = utcnow()
    old = _old(cutoff, now)
    with storage_errors("purge", display_url(engine.url)):
        if dry_run:
            return await _count(engine, old)
        pace = _Pace(engine.dialect.name, checkpoint=_checkpoint(engine))
        totals = dict.fromkeys(("sessions", "messages", "resolved"), 0)
        after = None
        while True:
            started = time.monotonic()
            batch = await _purge_sessions(engine, old, now, pace.batch, after)
            if batch is None:
                break
            after, deleted = batch
            for key, count in deleted.items():
                totals[key] += count
            await pace.after(started)
        return PurgeReport(
            **totals,
            retry_events=await _delete_in_batches(
                engine,
                retry_events,
                retry_events.c.id,
                old.retry_events,
                _Pace(pace.dialect, checkpoint=pace.checkpoint),
            ),
            interruptions=await _delete_in_batches(
                engine,
                interruptions,
                interruptions.c.id,
                old.interruptions,
                _Pace(pace.dialect, checkpoint=pace.checkpoint),
            ),
        )


def _checkpoint(engine: AsyncEngine) -> Callable[[], Awaitable[None]] | None:
    """A passive WAL checkpoint of a SQLite database (one that waits for no one); None on
    PostgreSQL."""
    if engine.dialect.name != "sqlite":
        return None

    async def checkpoint() -> None:
        async with engine.connect() as conn:
            await conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")

    return checkpoint


async def _purge_sessions(
    engine: AsyncEngine, old: _Old, now: datetime, limit: int, after: str | None
) -> tuple[str, dict[str, int]] | None:
    """Delete up to `limit` old sessions, of ids after `after`, in one transaction; the last id
    it looked at and what it deleted, or None when there are none left.

    The batches walk the primary key: each starts where the last ended, rather than scanning
    again, from the start, past every session that is kept.
    """
    s = sessions.c
    async with write_transaction(engine) as conn:
        query = select(s.session_id).where(old.sessions).order_by(s.session_id).limit(limit)
        if after is not None:
            query = query.where(s.session_id > after)
        # FOR UPDATE: on PostgreSQL a concurrent save waits rather than lose its rows.
        ids = (await conn.execute(query.with_for_update())).scalars().all()
        if not ids:
            return None
        results = {
            "messages": await conn.execute(delete(messages).where(messages.c.session_id.in_(ids))),
            "sessions": await conn.execute(
                delete(sessions).where(s.session_id.in_(ids) & old.sessions)
            ),
            "resolved": await conn.execute(
                resolve_interruptions(interruptions.c.session_id.in_(ids)), {"now": now}
            ),
        }
    return ids[-1], {key: result.rowcount for key, result in results.items()}


async def _count(engine: AsyncEngine, old: _Old) -> PurgeReport:
    """What `purge` would delete."""
    i = interruptions.c
    stale_ids = select(sessions.c.session_id).where(old.sessions)
    async with engine.connect() as conn:

        async def count(table: Any, condition: Any) -> int:
            query = select(func.count()).select_from(table).where(condition)
            return int((await conn.execute(query)).scalar_one())

        return PurgeReport(
            sessions=await count(sessions, old.sessions),
            messages=await count(messages, messages.c.session_id.in_(stale_ids)),
            resolved=await count(
                interruptions, i.session_id.in_(stale_ids) & i.resolved_at.is_(None)
            ),
            retry_events=await count(retry_events, old.retry_events),
            interruptions=await count(interruptions, old.interruptions),
        )


async def _delete_in_batches(
    engine: AsyncEngine, table: Any, key: Any, condition: Any, pace: _Pace
) -> int:
    """Delete the rows matching `condition`, a batch per transaction; how many."""
    deleted = 0
    while True:
        started, limit = time.monotonic(), pace.batch
        async with write_transaction(engine) as conn:
            batch = select(key).where(condition).limit(limit).scalar_subquery()
            count = (await conn.execute(delete(table).where(key.in_(batch)))).rowcount
        deleted += count
        if count < limit:
            return deleted
        await pace.after(started)
