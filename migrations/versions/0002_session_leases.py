"""Session leases: who runs a session and until when, so that dead owners can be noticed.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from convstore._storage.types import UTCDateTime

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LEASED = sa.text("lease_expires_at IS NOT NULL")


def upgrade() -> None:
    with op.batch_alter_table("sessions") as batch:
        batch.add_column(sa.Column("owner", sa.Text(), nullable=True))
        batch.add_column(sa.Column("lease_expires_at", UTCDateTime(), nullable=True))
    op.create_index(
        "ix_sessions_lease_expires_at",
        "sessions",
        ["lease_expires_at"],
        sqlite_where=LEASED,
        postgresql_where=LEASED,
    )


def downgrade() -> None:
    op.drop_index("ix_sessions_lease_expires_at", table_name="sessions")
    with op.batch_alter_table("sessions") as batch:
        batch.drop_column("lease_expires_at")
        batch.drop_column("owner")
