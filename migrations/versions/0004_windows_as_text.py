"""Windows as text: ``sessions.message_shapes`` is convstore's own state, which no query looks
inside, so PostgreSQL keeps it as text rather than parsing it into jsonb on every append.

On PostgreSQL the column changes type, which rewrites the ``sessions`` table under an exclusive
lock (a few seconds per million sessions); on SQLite, where it is text already, nothing changes.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column(
            "sessions",
            "message_shapes",
            type_=sa.Text(),
            postgresql_using="message_shapes::text",
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column(
            "sessions",
            "message_shapes",
            type_=JSONB(),
            postgresql_using="message_shapes::jsonb",
        )
