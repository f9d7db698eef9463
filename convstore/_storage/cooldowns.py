"""Shared cooldowns: one row per rate limit, whose deadline only ever moves later, the pacing
that follows it, and the short-lived in-process copy that keeps reading it off the hot path.

The deadline is written by one statement, an upsert whose update applies only when the new
deadline is later (``ON CONFLICT ... DO UPDATE ... WHERE cooldowns.until < excluded.until``), so
concurrent writers on any number of machines cannot move it earlier, in whatever order they
commit.

A cooldown alone stops the workers, then lets them all go at once, into the next rate limit. So a
rate limit also paces its key: until ``paced_until_s``, each attempt takes the next free slot,
one ``interval_s`` after the one before, in a write transaction holding the row. The interval
starts at the server's Retry-After (the time one more request needs), grows by `RAISE` when
an attempt paced at the current interval is still refused (once: ``raised_at_s``), and shrinks
by `DECAY` with each slot given, so that it settles near the rate the server allows. Pacing
ends once no attempt has asked for a slot for `PROBATION_S`.

Readers keep what they read for `STALENESS_S`; what this process writes it sees at once.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Row, select, update
from sqlalchemy.dialects import postgresql, sqlite

from convstore._records import Cooldown
from convstore._storage.schema import cooldowns

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

    from convstore._storage.repository import Repository

#: How long a process trusts what it last read of a key: a cooldown set by another process is
#: seen within this (plus one query), and a key costs at most one query per this many seconds
#: per process while it is neither cooling down nor paced.
STALENESS_S = 0.025
#: Pacing's bounds and steps (seconds, and the factor each slot given shrinks the interval by).
MIN_INTERVAL_S = 0.001
MAX_INTERVAL_S = 10.0
MAX_FIRST_INTERVAL_S = 1.0
DECAY = 0.98
RAISE = 1.5
PROBATION_S = 2.0

#: The clocks: for the staleness, and the wall clock the deadlines are shared on.
monotonic = time.monotonic
wall = time.time


@dataclass(frozen=True, slots=True)
class _Seen:
    """A key's state as last read or written here, and when (`monotonic`)."""

    #: Until when (wall-clock seconds) the key cools down or is paced; 0 when neither.
    busy_until: float
    read_at: float


class CooldownBoard:
    """The cooldowns of one store: extend them, and give out the slots of paced keys."""

    def __init__(self, repository: Repository) -> None:
        self._repository = repository
        self._seen: dict[str, _Seen] = {}

    async def extend(
        self, cooldown: Cooldown, retry_after_s: float | None, admitted_at: datetime | None
    ) -> None:
        """Move the key's deadline to ``cooldown.until`` unless it is already later, and pace
        the key: from ``retry_after_s`` (or the cooldown's length) for a new episode; `RAISE`
        times the interval when the refused attempt was paced, given its slot (``admitted_at``)
        after the interval was last raised (those given theirs before do not raise it again)."""
        values = {
            "limit_key": cooldown.limit_key,
            "until": cooldown.until,
            "set_at": cooldown.set_at,
            "call_id": cooldown.call_id,
            "operation": cooldown.operation,
            "reason": cooldown.reason,
            "status_code": cooldown.status_code,
        }
        dialect = postgresql if self._repository.dialect == "postgresql" else sqlite
        insert = dialect.insert(cooldowns).values(values)
        upsert = insert.on_conflict_do_update(
            index_elements=[cooldowns.c.limit_key],
            set_={name: insert.excluded[name] for name in values if name != "limit_key"},
            where=cooldowns.c.until < insert.excluded.until,
        )
        length = (cooldown.until - cooldown.set_at).total_seconds()
        first = _clamp(retry_after_s if retry_after_s is not None else length, MAX_FIRST_INTERVAL_S)
        until_s = cooldown.until.timestamp()

        async def write(conn: AsyncConnection) -> float:
            await conn.execute(upsert)
            row = (await conn.execute(_pacing(cooldown.limit_key))).one()
            interval, raised_at = row.interval_s, row.raised_at_s
            if admitted_at is None or interval is None:
                interval, raised_at = max(interval or 0.0, first), wall()
            elif admitted_at.timestamp() >= (raised_at or 0.0):
                interval, raised_at = _clamp(interval * RAISE, MAX_INTERVAL_S), wall()
            paced_until = max(row.paced_until_s or 0.0, until_s + PROBATION_S)
            await conn.execute(
                update(cooldowns)
                .where(cooldowns.c.limit_key == cooldown.limit_key)
                .values(interval_s=interval, raised_at_s=raised_at, paced_until_s=paced_until)
            )
            return paced_until

        # Not repeatable: run twice after a commit, a paced refusal would double twice.
        busy_until = await self._repository.write("extend_cooldown", write, repeatable=False)
        self._seen[cooldown.limit_key] = _Seen(busy_until, monotonic())

    async def admit(self, limit_key: str) -> float | None:
        """None when the key is neither cooling down nor paced (as read at most `STALENESS_S`
        ago): the attempt may go now. Otherwise the seconds until the slot it was given."""
        seen = self._seen.get(limit_key)
        if seen is None or monotonic() - seen.read_at >= STALENESS_S:
            seen = _Seen(await self._busy_until(limit_key), monotonic())
            self._seen[limit_key] = seen
        if seen.busy_until <= wall():
            return None

        async def claim(conn: AsyncConnection) -> tuple[float, float] | None:
            row = (await conn.execute(_pacing(limit_key))).one_or_none()
            now = wall()
            if row is None or _busy_until(row) <= now:
                return None
            interval = row.interval_s or MIN_INTERVAL_S
            slot = max(row.next_slot_s or 0.0, row.until.timestamp(), now)
            paced_until = max(row.paced_until_s or 0.0, slot + PROBATION_S)
            await conn.execute(
                update(cooldowns)
                .where(cooldowns.c.limit_key == limit_key)
                .values(
                    next_slot_s=slot + interval,
                    paced_until_s=paced_until,
                    interval_s=max(interval * DECAY, MIN_INTERVAL_S),
                )
            )
            return slot - now, paced_until

        # Not repeatable: run twice after a commit, it would take two slots.
        claimed = await self._repository.write("cooldown_slot", claim, repeatable=False)
        if claimed is None:
            self._seen[limit_key] = _Seen(0.0, monotonic())
            return None
        wait, paced_until = claimed
        self._seen[limit_key] = _Seen(paced_until, monotonic())
        return wait

    async def until(self, limit_key: str) -> datetime | None:
        """The key's cooldown deadline, None if it never had one (read now)."""
        statement = select(cooldowns.c.until).where(cooldowns.c.limit_key == limit_key)

        async def read(conn: AsyncConnection) -> datetime | None:
            until: datetime | None = (await conn.execute(statement)).scalar_one_or_none()
            return until

        return await self._repository.read("cooldown", read)

    async def _busy_until(self, limit_key: str) -> float:
        async def read(conn: AsyncConnection) -> float:
            row = (await conn.execute(_pacing(limit_key, lock=False))).one_or_none()
            return 0.0 if row is None else _busy_until(row)

        return await self._repository.read("cooldown", read)

    async def active(self, now: datetime, limit: int | None) -> list[Cooldown]:
        """The keys cooling down or paced at `now`, the cooldown ending last first."""
        c = cooldowns.c
        statement = (
            select(cooldowns)
            .where((c.until > now) | (c.paced_until_s > now.timestamp()))
            .order_by(c.until.desc(), c.limit_key)
            .limit(limit)
        )

        async def read(conn: AsyncConnection) -> Sequence[Row[Any]]:
            return (await conn.execute(statement)).all()

        return [_cooldown(row) for row in await self._repository.read("cooldowns", read)]


def _pacing(limit_key: str, *, lock: bool = True) -> Any:
    """The key's deadline and pacing state, its row locked for the transaction if `lock`."""
    c = cooldowns.c
    statement = select(c.until, c.interval_s, c.raised_at_s, c.next_slot_s, c.paced_until_s).where(
        c.limit_key == limit_key
    )
    # SQLite ignores FOR UPDATE: its write transactions begin IMMEDIATE, holding the lock.
    return statement.with_for_update() if lock else statement


def _busy_until(row: Row[Any]) -> float:
    """Until when (wall-clock seconds) the key cools down or is paced."""
    until: datetime = row.until
    paced_until: float | None = row.paced_until_s
    return max(until.timestamp(), paced_until or 0.0)


def _clamp(seconds: float, most: float) -> float:
    return min(max(seconds, MIN_INTERVAL_S), most)


def _cooldown(row: Row[Any]) -> Cooldown:
    return Cooldown(
        limit_key=row.limit_key,
        until=row.until,
        set_at=row.set_at,
        call_id=row.call_id,
        operation=row.operation,
        reason=row.reason,
        status_code=row.status_code,
        interval_s=row.interval_s,
        paced_until=None
        if row.paced_until_s is None
        else datetime.fromtimestamp(row.paced_until_s, UTC),
    )


def deadline(now: datetime, seconds: float) -> datetime:
    """`now` plus `seconds`, for a cooldown of that length."""
    return now + timedelta(seconds=seconds)
