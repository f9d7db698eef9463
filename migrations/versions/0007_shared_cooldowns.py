"""Shared cooldowns: a ``cooldowns`` table, one row per rate limit (``limit_key``) with its
deadline and its pacing, and the wait each attempt spent on one, ``retry_events.cooldown_wait_s``.

Both changes are additive: a new table and a nullable column, written in place on both backends.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from convstore._storage.types import UTCDateTime

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "cooldowns",
        sa.Column("limit_key", sa.String(255), nullable=False),
        sa.Column("until", UTCDateTime(), nullable=False),
        sa.Column("set_at", UTCDateTime(), nullable=False),
        sa.Column("call_id", sa.String(64), nullable=False),
        sa.Column("operation", sa.String(255), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("interval_s", sa.Float(), nullable=True),
        sa.Column("raised_at_s", sa.Float(), nullable=True),
        sa.Column("next_slot_s", sa.Float(), nullable=True),
        sa.Column("paced_until_s", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("limit_key", name=op.f("pk_cooldowns")),
    )
    op.add_column("retry_events", sa.Column("cooldown_wait_s", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("retry_events") as batch:
        batch.drop_column("cooldown_wait_s")
    op.drop_table("cooldowns")
