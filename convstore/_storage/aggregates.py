"""The report's aggregates: attempts and interruptions per time bucket, waits and times to
resolve per bin, failures per error class, each counted by the database in one statement, so
that a report reads a few hundred rows whatever the size of the history."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Float, Select, case, func, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from convstore._storage.engine import safe_url
from convstore._storage.errors import storage_errors
from convstore._storage.schema import interruptions, retry_events, sessions

#: Status codes counted as a rate limit, and as an overload (503, and Anthropic's 529).
RATE_LIMIT_STATUSES = (429,)
OVERLOAD_STATUSES = (503, 529)

#: The upper edges, in seconds, of the bins of waits, and of times to resolve a crash.
WAIT_EDGES = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0)
RESOLVE_EDGES = (60.0, 300.0, 900.0, 3600.0, 6 * 3600.0, 86400.0, 7 * 86400.0)

#: The widths a time bucket may have, in seconds; the narrowest that keeps `MAX_BUCKETS`.
BUCKET_WIDTHS = (60, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400, 7 * 86400)
MAX_BUCKETS = 150


class epoch(FunctionElement[float]):
    """Seconds since 1970 of a stored time, as a float, on every backend."""

    type = Float()
    inherit_cache = True
    name = "epoch"


@compiles(epoch, "sqlite")
def _sqlite_epoch(element: epoch, compiler: SQLCompiler, **kw: Any) -> str:
    # Times are stored as ISO text; julianday reads it, to the microsecond.
    return f"((julianday({compiler.process(element.clauses, **kw)}) - 2440587.5) * 86400.0)"


@compiles(epoch, "postgresql")
def _postgres_epoch(element: epoch, compiler: SQLCompiler, **kw: Any) -> str:
    clauses = compiler.process(element.clauses, **kw)
    return f"CAST(EXTRACT(EPOCH FROM {clauses}) AS DOUBLE PRECISION)"


class whole(FunctionElement[int]):
    """The integer part of a non-negative number (SQLite's CAST truncates, PostgreSQL's rounds)."""

    inherit_cache = True
    name = "whole"


@compiles(whole, "sqlite")
def _sqlite_whole(element: whole, compiler: SQLCompiler, **kw: Any) -> str:
    return f"CAST({compiler.process(element.clauses, **kw)} AS INTEGER)"


@compiles(whole, "postgresql")
def _postgres_whole(element: whole, compiler: SQLCompiler, **kw: Any) -> str:
    return f"CAST(FLOOR({compiler.process(element.clauses, **kw)}) AS BIGINT)"


@dataclass(frozen=True, slots=True)
class Buckets:
    """The time axis of a report: `count` buckets of `width_s` seconds from `start`."""

    start: datetime
    width_s: int
    count: int

    def of(self, column: ColumnElement[Any]) -> ColumnElement[int]:
        """The 0-based bucket of a stored time."""
        offset = epoch(column) - literal(self.start.timestamp(), Float())
        return whole(offset / literal(float(self.width_s), Float()))

    def at(self, index: int) -> datetime:
        """When bucket `index` starts."""
        return datetime.fromtimestamp(self.start.timestamp() + index * self.width_s, UTC)


def buckets_between(first: datetime, end: datetime) -> Buckets:
    """The narrowest buckets that cover `first` to `end` in at most `MAX_BUCKETS`, aligned on
    their width in UTC."""
    span = max((end - first).total_seconds(), 1.0)
    width = next((w for w in BUCKET_WIDTHS if span / w <= MAX_BUCKETS), BUCKET_WIDTHS[-1])
    start_s = first.timestamp() // width * width
    count = int((end.timestamp() - start_s) // width) + 1
    return Buckets(datetime.fromtimestamp(start_s, UTC), width, count)


def bin_of(value: ColumnElement[Any], edges: Sequence[float]) -> ColumnElement[Any]:
    """The 0-based bin of `value` among `edges` (upper bounds, exclusive); NULL stays NULL."""
    below = ((value < edge, index) for index, edge in enumerate(edges))
    return case((value.is_(None), None), *below, else_=len(edges))


@dataclass(frozen=True, slots=True)
class Scope:
    """What a report covers: since a time (None: all history), one operation or all."""

    since: datetime | None
    operation: str | None

    def events(self, query: Select[Any]) -> Select[Any]:
        """`query` over ``retry_events``, restricted to the scope."""
        if self.since is not None:
            query = query.where(retry_events.c.created_at >= self.since)
        if self.operation is not None:
            query = query.where(retry_events.c.operation == self.operation)
        return query

    def crashes(self, query: Select[Any]) -> Select[Any]:
        """`query` over ``interruptions``, restricted to the scope's time (as `stats` does,
        an interruption belongs to no operation)."""
        if self.since is not None:
            query = query.where(interruptions.c.interrupted_at >= self.since)
        return query


def first_times(scope: Scope) -> Select[Any]:
    """The first attempt and the first interruption in the scope (NULL when none)."""
    first_event = scope.events(select(func.min(retry_events.c.created_at))).scalar_subquery()
    first_crash = scope.crashes(select(func.min(interruptions.c.interrupted_at)))
    return select(first_event, first_crash.scalar_subquery())


def attempts_over_time(scope: Scope, buckets: Buckets) -> Select[Any]:
    """Attempts per (bucket, outcome), and how many of them were rate limits and overloads."""
    e = retry_events.c
    bucket = buckets.of(e.created_at).label("bucket")
    query = select(
        bucket,
        e.outcome,
        func.count().label("attempts"),
        _count_where(e.status_code.in_(RATE_LIMIT_STATUSES)).label("rate_limited"),
        _count_where(e.status_code.in_(OVERLOAD_STATUSES)).label("overloaded"),
    ).group_by(bucket, e.outcome)
    return scope.events(query).order_by(bucket, e.outcome)


def waits_by_bin(scope: Scope) -> Select[Any]:
    """Attempts per (operation, bin of backoff delay, of Retry-After, of cooldown wait), for
    the attempts that waited or were asked to: one pass over the rows for the three."""
    e = retry_events.c
    bins = (
        bin_of(e.delay_s, WAIT_EDGES).label("delay_bin"),
        bin_of(e.retry_after_s, WAIT_EDGES).label("retry_after_bin"),
        # A cooldown wait of 0 is no wait: the key was not cooling down.
        bin_of(case((e.cooldown_wait_s > 0, e.cooldown_wait_s)), WAIT_EDGES).label("cooldown_bin"),
    )
    waited = or_(e.delay_s.is_not(None), e.retry_after_s.is_not(None), e.cooldown_wait_s > 0)
    query = select(e.operation, *bins, func.count().label("attempts")).where(waited)
    return scope.events(query).group_by(e.operation, *bins)


def failures_by_class(scope: Scope, limit: int) -> Select[Any]:
    """Failed attempts per (operation, kind of error, exception class, status), most first."""
    e = retry_events.c
    count = func.count().label("attempts")
    query = (
        select(e.operation, e.error_type, e.error_class, e.status_code, count)
        .where(e.error_type.is_not(None))
        .group_by(e.operation, e.error_type, e.error_class, e.status_code)
        .order_by(count.desc(), e.operation, e.error_class)
        .limit(limit)
    )
    return scope.events(query)


def failures_by_kind(scope: Scope) -> Select[Any]:
    """Failed attempts per kind of error, for what `failures_by_class` leaves out."""
    e = retry_events.c
    query = select(e.error_type, func.count()).where(e.error_type.is_not(None))
    return scope.events(query).group_by(e.error_type)


def interruptions_over_time(scope: Scope, buckets: Buckets) -> Select[Any]:
    """Interruptions per (bucket, resolved or not)."""
    i = interruptions.c
    bucket: ColumnElement[Any] = buckets.of(i.interrupted_at).label("bucket")
    resolved: ColumnElement[Any] = i.resolved_at.is_not(None).label("resolved")
    query = select(bucket, resolved, func.count().label("interruptions"))
    return scope.crashes(query).group_by(bucket, resolved).order_by(bucket)


def times_to_resolve(scope: Scope) -> Select[Any]:
    """Resolved interruptions per bin of the time from the crash to its resume."""
    i = interruptions.c
    seconds = epoch(i.resolved_at) - epoch(i.interrupted_at)
    index = bin_of(seconds, RESOLVE_EDGES).label("bin")
    query = select(index, func.count().label("interruptions"))
    query = query.where(i.resolved_at.is_not(None)).group_by(index).order_by(index)
    return scope.crashes(query)


def reasons_ranked(scope: Scope) -> Select[Any]:
    """Interruptions per reason, resolved and latest, the most frequent first (as `stats`)."""
    i = interruptions.c
    count = func.count().label("interruptions")
    query = select(
        i.reason,
        count,
        func.count(i.resolved_at).label("resolved"),
        func.max(i.interrupted_at).label("latest"),
    )
    query = query.group_by(i.reason).order_by(count.desc(), i.reason.nulls_last())
    return scope.crashes(query)


def still_interrupted() -> Select[Any]:
    """How many sessions are marked interrupted now."""
    return select(func.count()).select_from(sessions).where(sessions.c.interrupted_at.is_not(None))


def _count_where(condition: ColumnElement[bool]) -> ColumnElement[Any]:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


@dataclass(frozen=True, slots=True)
class Aggregates:
    """Every aggregate a report draws, as rows of plain values."""

    database: str
    buckets: Buckets | None
    attempts: list[tuple[Any, ...]]
    waits: list[tuple[Any, ...]]
    failures: list[tuple[Any, ...]]
    failed_per_kind: dict[str, int]
    interruptions: list[tuple[Any, ...]]
    resolve_times: list[tuple[Any, ...]]
    reasons: list[tuple[Any, ...]]
    interrupted_now: int


async def aggregates(
    engine: AsyncEngine, scope: Scope, now: datetime, *, top_failures: int = 20
) -> Aggregates:
    """Read every aggregate of a report in one read-only transaction."""
    url = engine.url
    database = safe_url(url.set(drivername=url.get_backend_name()))
    with storage_errors("report", database):
        async with engine.connect() as conn:

            async def rows(query: Select[Any]) -> list[tuple[Any, ...]]:
                return [tuple(row) for row in (await conn.execute(query)).all()]

            first_event, first_crash = (await rows(first_times(scope)))[0]
            starts = [t for t in (scope.since, first_event, first_crash) if t is not None]
            buckets = buckets_between(min(starts), now) if starts else None
            found = Aggregates(
                database=database,
                buckets=buckets,
                attempts=[] if buckets is None else await rows(attempts_over_time(scope, buckets)),
                waits=await rows(waits_by_bin(scope)),
                failures=await rows(failures_by_class(scope, top_failures)),
                failed_per_kind=dict(await rows(failures_by_kind(scope))),
                interruptions=(
                    [] if buckets is None else await rows(interruptions_over_time(scope, buckets))
                ),
                resolve_times=await rows(times_to_resolve(scope)),
                reasons=await rows(reasons_ranked(scope)),
                interrupted_now=int((await conn.execute(still_interrupted())).scalar_one()),
            )
            await conn.rollback()
    return found
