"""Attempts of unknown duration: ``retry_events.elapsed_s`` may be NULL.

convstore measures every attempt it runs itself, but a retry library that reports only scheduled
retries (stamina) does not say when a call's first attempt began: that attempt's duration is
stored as NULL rather than as a made-up number, so that ``avg(elapsed_s)`` stays true.

On SQLite the table is copied (a second or so per million rows); on PostgreSQL only the
constraint changes. A downgrade stores 0 for the durations that are not known.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("retry_events") as batch:
        batch.alter_column("elapsed_s", existing_type=sa.Float(), nullable=True)


def downgrade() -> None:
    op.execute("UPDATE retry_events SET elapsed_s = 0 WHERE elapsed_s IS NULL")
    with op.batch_alter_table("retry_events") as batch:
        batch.alter_column("elapsed_s", existing_type=sa.Float(), nullable=False)
