"""The ``retry_events`` table: the row of an attempt, its INSERT, and the per-operation summary."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Insert,
    Row,
    Select,
    bindparam,
    case,
    exists,
    func,
    insert,
    select,
)

from convstore._records import Attempt, RetrySummary
from convstore._storage.schema import retry_events
from convstore._validate import storable

#: The ``retry_events`` columns an attempt fills, in the table's order; the insert derives
#: ``kind`` and ``first_of_kind`` from them.
RETRY_EVENT_COLUMNS = tuple(
    column.name
    for column in retry_events.columns
    if column.name not in {"id", "kind", "first_of_kind"}
)


def attempt_values(attempt: Attempt) -> dict[str, Any]:
    """The ``retry_events`` row for an attempt; its text, which comes from outside (exceptions,
    the caller's names), made `storable`, so that no character can lose the row."""
    return {
        "call_id": storable(attempt.call_id),
        "session_id": _optional_text(attempt.session_id),
        "operation": storable(attempt.operation),
        "attempt": attempt.attempt,
        "outcome": str(attempt.outcome),
        "error_type": None if attempt.error_type is None else str(attempt.error_type),
        "error_class": _optional_text(attempt.error_class),
        "error_message": _optional_text(attempt.error_message),
        "status_code": attempt.status_code,
        "delay_s": attempt.delay_s,
        "retry_after_s": attempt.retry_after_s,
        "elapsed_s": attempt.elapsed_s,
        "created_at": attempt.created_at,
        "cooldown_wait_s": attempt.cooldown_wait_s,
    }


def _optional_text(value: str | None) -> str | None:
    return None if value is None else storable(value)


def insert_attempt() -> Insert:
    """The INSERT of one attempt's row, its parameters named after the columns; it fills the
    row's `kind` and `first_of_kind` from the call's earlier rows, whoever wrote them."""
    row: dict[str, Any] = {
        name: bindparam(name, type_=retry_events.c[name].type) for name in RETRY_EVENT_COLUMNS
    }
    previous, last, same = (retry_events.alias(name) for name in ("previous", "last", "same"))
    last_attempt = (
        select(func.max(last.c.attempt))
        .where(last.c.call_id == row["call_id"], last.c.attempt < row["attempt"])
        .scalar_subquery()
    )
    previous_kind = (
        select(previous.c.error_type)
        .where(previous.c.call_id == row["call_id"], previous.c.attempt == last_attempt)
        .scalar_subquery()
    )
    kind = func.coalesce(row["error_type"], previous_kind)
    seen = exists().where(same.c.call_id == row["call_id"], same.c.kind == kind)
    # Inline: the new row's id is never read, so it is not returned either.
    return insert(retry_events).values({**row, "kind": kind, "first_of_kind": ~seen}).inline()


def _filters(since: datetime | None, operation: str | None) -> list[ColumnElement[bool]]:
    events = retry_events.c
    where: list[ColumnElement[bool]] = []
    if since is not None:
        where.append(events.created_at >= since)
    if operation is not None:
        where.append(events.operation == operation)
    return where


def summary_query(since: datetime | None, operation: str | None) -> Select[Any]:
    """Counts and waits per (operation, kind of error): one grouped scan of the covering index
    ``ix_retry_events_summary``, for every backend. The 95th percentile is `p95_query`'s."""
    e = retry_events.c

    def count_where(condition: ColumnElement[bool]) -> ColumnElement[Any]:
        return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)

    return (
        select(
            e.operation,
            e.kind,
            count_where(e.first_of_kind).label("calls"),
            func.count().label("attempts"),
            count_where(e.outcome == "retry").label("retries"),
            count_where(e.outcome == "giveup").label("giveups"),
            count_where((e.outcome == "success") & (e.attempt > 1)).label("successes_after_retry"),
            func.sum(e.delay_s).label("total_delay_s"),
            func.sum(e.cooldown_wait_s).label("total_cooldown_wait_s"),
            func.count(e.delay_s).label("waits"),
        )
        .where(*_filters(since, operation))
        .group_by(e.operation, e.kind)
        .order_by(e.operation, e.kind.nulls_first())
    )


def p95_query(group: Row[Any], since: datetime | None) -> Select[Any] | None:
    """The 95th percentile (nearest rank) of a `summary_query` group's waits, read from the
    covering index from the top: the ``waits - rank``-th largest. None when it has no waits."""
    waits: int = group.waits
    if not waits:
        return None
    e = retry_events.c
    rank = (waits * 95 + 99) // 100  # ceil(0.95 * waits), in integers
    kind = e.kind.is_(None) if group.kind is None else e.kind == group.kind
    return (
        select(e.delay_s)
        .where(e.operation == group.operation, kind, e.delay_s.is_not(None))
        .where(*_filters(since, None))
        .order_by(e.delay_s.desc())
        .limit(1)
        .offset(waits - rank)
    )


def summary(row: Row[Any], p95_delay_s: float | None) -> RetrySummary:
    """A row of `summary_query`, and its group's `p95_query` answer, as a record."""
    return RetrySummary(
        operation=row.operation,
        error_type=row.kind,
        calls=row.calls,
        attempts=row.attempts,
        retries=row.retries,
        giveups=row.giveups,
        successes_after_retry=row.successes_after_retry,
        total_delay_s=float(row.total_delay_s or 0.0),
        p95_delay_s=None if p95_delay_s is None else float(p95_delay_s),
        total_cooldown_wait_s=float(row.total_cooldown_wait_s or 0.0),
    )
