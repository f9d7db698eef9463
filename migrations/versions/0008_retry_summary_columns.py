"""The retry summary without window functions: each ``retry_events`` row carries the kind of
error it counts under (``kind``) and whether it is its call's first of that kind
(``first_of_kind``), both filled as the row is written; one index covers the summary.

The summary used to find a success's kind with ``lag()`` over every row, count calls with
``count(DISTINCT call_id)`` and rank every wait for the 95th percentile: seconds per million
rows. It is now one grouped scan of the covering index, and the percentile one indexed lookup
per group. Existing rows are filled here, in one statement, with the window functions the
summary no longer runs.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: The summary's covering index: grouped by its first two columns, waits ranked by the third.
SUMMARY_COLUMNS = (
    "operation",
    "kind",
    "delay_s",
    "outcome",
    "attempt",
    "first_of_kind",
    "cooldown_wait_s",
    "created_at",
)

_FILL = """
UPDATE retry_events SET kind = tagged.kind, first_of_kind = tagged.first_of_kind
FROM (
    SELECT id, kind,
           row_number() OVER (PARTITION BY call_id, kind ORDER BY attempt, id) = 1
               AS first_of_kind
    FROM (
        SELECT id, call_id, attempt,
               coalesce(error_type,
                        lag(error_type) OVER (PARTITION BY call_id ORDER BY attempt, id)) AS kind
        FROM retry_events
    ) AS kinded
) AS tagged
WHERE retry_events.id = tagged.id
"""


def upgrade() -> None:
    op.add_column("retry_events", sa.Column("kind", sa.String(32), nullable=True))
    op.add_column(
        "retry_events",
        sa.Column("first_of_kind", sa.Boolean(), server_default=sa.true(), nullable=False),
    )
    op.execute(_FILL)
    op.create_index("ix_retry_events_call_id_attempt", "retry_events", ["call_id", "attempt"])
    op.create_index("ix_retry_events_summary", "retry_events", list(SUMMARY_COLUMNS))


def downgrade() -> None:
    op.drop_index("ix_retry_events_summary", table_name="retry_events")
    op.drop_index("ix_retry_events_call_id_attempt", table_name="retry_events")
    with op.batch_alter_table("retry_events") as batch:
        batch.drop_column("first_of_kind")
        batch.drop_column("kind")
