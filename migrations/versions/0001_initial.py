"""Sessions, messages, interruptions and retry events.

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from convstore._storage.types import JSONDocument, UTCDateTime

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
INTERRUPTED = sa.text("interrupted_at IS NOT NULL")


def upgrade() -> None:
    op.create_table(
        "sessions",
        sa.Column("session_id", sa.String(255), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("saved_at", UTCDateTime(), nullable=False),
        sa.Column("message_count", sa.Integer(), nullable=False),
        sa.Column("extra", JSONDocument(), nullable=False),
        sa.Column("interrupted_at", UTCDateTime(), nullable=True),
        sa.Column("interrupt_reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("session_id", name=op.f("pk_sessions")),
    )
    op.create_index(
        "ix_sessions_interrupted_at",
        "sessions",
        ["interrupted_at", "session_id"],
        sqlite_where=INTERRUPTED,
        postgresql_where=INTERRUPTED,
    )
    op.create_table(
        "messages",
        sa.Column("session_id", sa.String(255), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("role", sa.Text(), nullable=True),
        sa.Column("body", JSONDocument(), nullable=False),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["sessions.session_id"],
            name=op.f("fk_messages_session_id_sessions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("session_id", "seq", name=op.f("pk_messages")),
    )
    op.create_table(
        "interruptions",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("session_id", sa.String(255), nullable=False),
        sa.Column("interrupted_at", UTCDateTime(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("resolved_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_interruptions")),
    )
    op.create_index(op.f("ix_interruptions_session_id"), "interruptions", ["session_id"])
    op.create_index(op.f("ix_interruptions_interrupted_at"), "interruptions", ["interrupted_at"])
    op.create_table(
        "retry_events",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("call_id", sa.String(64), nullable=False),
        sa.Column("session_id", sa.String(255), nullable=True),
        sa.Column("operation", sa.String(255), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("error_type", sa.String(32), nullable=True),
        sa.Column("error_class", sa.Text(), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("delay_s", sa.Float(), nullable=True),
        sa.Column("retry_after_s", sa.Float(), nullable=True),
        sa.Column("elapsed_s", sa.Float(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_retry_events")),
    )
    op.create_index(op.f("ix_retry_events_created_at"), "retry_events", ["created_at"])
    op.create_index(
        "ix_retry_events_operation_created_at", "retry_events", ["operation", "created_at"]
    )


def downgrade() -> None:
    op.drop_table("retry_events")
    op.drop_table("interruptions")
    op.drop_table("messages")
    op.drop_table("sessions")
