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
    distinct,
    func,
    insert,
    select,
)

from convstore._records import Attempt, RetrySummary
from convstore._storage.schema import retry_events
from convstore._validate import storable

#: The ``retry_events`` columns an attempt fills, in the table's order.
RETRY_EVENT_COLUMNS = tuple(column.name for column in retry_events.columns if column.name != "id")


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
    """The INSERT of one attempt's row, its parameters named after the columns."""
    row: dict[str, Any] = {name: bindparam(name) for name in RETRY_EVENT_COLUMNS}
    # Inline: the new row's id is never read, so it is not returned either.
    return insert(retry_events).values(row).inline()


def summary_query(since: datetime | None, operation: str | None) -> Select[Any]:
    """Counts and waits per (operation, kind of error), in one statement for every backend."""
    events = retry_events.c
    filtered = select(
        events.call_id,
        events.operation,
        events.attempt,
        events.outcome,
        events.delay_s,
        events.cooldown_wait_s,
        # A success or cancellation belongs to the error that came before it in its call.
        func.coalesce(
            events.error_type,
            func.lag(events.error_type).over(partition_by=events.call_id, order_by=events.attempt),
        ).label("kind"),
    )
    if since is not None:
        filtered = filtered.where(events.created_at >= since)
    if operation is not None:
        filtered = filtered.where(events.operation == operation)
    tagged = filtered.cte("tagged")
    group = (tagged.c.operation, tagged.c.kind)
    # Nearest-rank percentile with window functions, which SQLite and PostgreSQL both have.
    ranked = select(
        tagged,
        func.row_number()
        .over(partition_by=(*group, tagged.c.delay_s.is_(None)), order_by=tagged.c.delay_s)
        .label("rank"),
        func.count(tagged.c.delay_s).over(partition_by=group).label("waits"),
    ).cte("ranked")
    r = ranked.c

    def count_where(condition: ColumnElement[bool]) -> ColumnElement[Any]:
        return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)

    p95_rank = (r.waits * 95 + 99) // 100  # ceil(0.95 * waits), in integers on every backend
    return (
        select(
            r.operation,
            r.kind,
            func.count(distinct(r.call_id)).label("calls"),
            func.count().label("attempts"),
            count_where(r.outcome == "retry").label("retries"),
            count_where(r.outcome == "giveup").label("giveups"),
            count_where((r.outcome == "success") & (r.attempt > 1)).label("successes_after_retry"),
            func.sum(r.delay_s).label("total_delay_s"),
            func.sum(r.cooldown_wait_s).label("total_cooldown_wait_s"),
            func.max(case((r.delay_s.is_not(None) & (r.rank == p95_rank), r.delay_s))).label(
                "p95_delay_s"
            ),
        )
        .group_by(r.operation, r.kind)
        .order_by(r.operation, r.kind.nulls_first())
    )


def summary(row: Row[Any]) -> RetrySummary:
    """A row of `summary_query` as a record."""
    return RetrySummary(
        operation=row.operation,
        error_type=row.kind,
        calls=row.calls,
        attempts=row.attempts,
        retries=row.retries,
        giveups=row.giveups,
        successes_after_retry=row.successes_after_retry,
        total_delay_s=float(row.total_delay_s or 0.0),
        p95_delay_s=None if row.p95_delay_s is None else float(row.p95_delay_s),
        total_cooldown_wait_s=float(row.total_cooldown_wait_s or 0.0),
    )
