"""LangGraph checkpoints: the tables of `convstore.integrations.langgraph.ConvstoreSaver`.

Each checkpoint and pending write belongs to the session whose id is its thread id, and goes
when the session is deleted. Nothing existing changes.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from convstore._storage.types import JSONDocument

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _thread_id() -> sa.Column[str]:
    return sa.Column("thread_id", sa.String(255), nullable=False)


def upgrade() -> None:
    op.create_table(
        "langgraph_checkpoints",
        _thread_id(),
        sa.Column("checkpoint_ns", sa.Text(), nullable=False),
        sa.Column("checkpoint_id", sa.Text(), nullable=False),
        sa.Column("parent_checkpoint_id", sa.Text(), nullable=True),
        sa.Column("type", sa.Text(), nullable=True),
        sa.Column("checkpoint", sa.LargeBinary(), nullable=False),
        sa.Column("metadata", JSONDocument(), nullable=False),
        sa.ForeignKeyConstraint(
            ["thread_id"],
            ["sessions.session_id"],
            name=op.f("fk_langgraph_checkpoints_thread_id_sessions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "thread_id", "checkpoint_ns", "checkpoint_id", name=op.f("pk_langgraph_checkpoints")
        ),
    )
    op.create_table(
        "langgraph_writes",
        _thread_id(),
        sa.Column("checkpoint_ns", sa.Text(), nullable=False),
        sa.Column("checkpoint_id", sa.Text(), nullable=False),
        sa.Column("task_id", sa.Text(), nullable=False),
        sa.Column("idx", sa.Integer(), nullable=False),
        sa.Column("channel", sa.Text(), nullable=False),
        sa.Column("type", sa.Text(), nullable=True),
        sa.Column("value", sa.LargeBinary(), nullable=False),
        sa.Column("task_path", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["thread_id"],
            ["sessions.session_id"],
            name=op.f("fk_langgraph_writes_thread_id_sessions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "thread_id",
            "checkpoint_ns",
            "checkpoint_id",
            "task_id",
            "idx",
            name=op.f("pk_langgraph_writes"),
        ),
    )


def downgrade() -> None:
    op.drop_table("langgraph_writes")
    op.drop_table("langgraph_checkpoints")
