"""Shared cooldowns: one row per rate limit, whose deadline only ever moves later, and the
short-lived in-process copy that keeps reading it off the per-attempt path.

The deadline is written by one statement, an upsert whose update applies only when the new
deadline is later (``ON CONFLICT ... DO UPDATE ... WHERE cooldowns.until < excluded.until``), so
concurrent writers on any number of machines cannot move it earlier, in whatever order they
commit. Readers keep what they read for `STALENESS_S`; a cooldown this process writes is seen
by its own executors at once.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Row, select
from sqlalchemy.dialects import postgresql, sqlite

from convstore._records import Cooldown
from convstore._storage.schema import cooldowns

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

    from convstore._storage.repository import Repository

#: How long a process trusts what it last read of a key's cooldown: a cooldown set by another
#: process is seen within this (plus one query), and a key costs at most one query per this
#: many seconds per process.
STALENESS_S = 0.05

#: The clock the staleness is measured on.
monotonic = time.monotonic


@dataclass(frozen=True, slots=True)
class _Seen:
    """A key's deadline as last read or written here (None: no cooldown), and when read."""

    until: datetime | None
    read_at: float


class CooldownBoard:
    """The cooldowns of one store: extend them in the database, read them through a cache."""

    def __init__(self, repository: Repository) -> None:
        self._repository = repository
        self._seen: dict[str, _Seen] = {}

    async def extend(self, cooldown: Cooldown) -> None:
        """Move the key's deadline to ``cooldown.until`` unless it is already later."""
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
        statement = insert.on_conflict_do_update(
            index_elements=[cooldowns.c.limit_key],
            set_={name: insert.excluded[name] for name in values if name != "limit_key"},
            where=cooldowns.c.until < insert.excluded.until,
        )

        async def write(conn: AsyncConnection) -> None:
            await conn.execute(statement)

        # Repeatable: writing the same deadline twice leaves it as once.
        await self._repository.write("extend_cooldown", write, repeatable=True)
        seen = self._seen.get(cooldown.limit_key)
        if seen is None or seen.until is None or seen.until < cooldown.until:
            self._seen[cooldown.limit_key] = _Seen(cooldown.until, monotonic())

    async def until(self, limit_key: str) -> datetime | None:
        """The key's deadline, as read at most `STALENESS_S` ago (None: none was ever set)."""
        seen = self._seen.get(limit_key)
        if seen is not None and monotonic() - seen.read_at < STALENESS_S:
            return seen.until
        statement = select(cooldowns.c.until).where(cooldowns.c.limit_key == limit_key)

        async def read(conn: AsyncConnection) -> datetime | None:
            until: datetime | None = (await conn.execute(statement)).scalar_one_or_none()
            return until

        until = await self._repository.read("cooldown", read)
        self._seen[limit_key] = _Seen(until, monotonic())
        return until

    async def active(self, now: datetime, limit: int | None) -> list[Cooldown]:
        """The cooldowns not over at `now`, the one ending last first."""
        statement = (
            select(cooldowns)
            .where(cooldowns.c.until > now)
            .order_by(cooldowns.c.until.desc(), cooldowns.c.limit_key)
            .limit(limit)
        )

        async def read(conn: AsyncConnection) -> Sequence[Row[Any]]:
            return (await conn.execute(statement)).all()

        return [_cooldown(row) for row in await self._repository.read("cooldowns", read)]


def _cooldown(row: Row[Any]) -> Cooldown:
    return Cooldown(
        limit_key=row.limit_key,
        until=row.until,
        set_at=row.set_at,
        call_id=row.call_id,
        operation=row.operation,
        reason=row.reason,
        status_code=row.status_code,
    )


def deadline(now: datetime, seconds: float) -> datetime:
    """`now` plus `seconds`, for a cooldown of that length."""
    return now + timedelta(seconds=seconds)
