"""Pair-safe windows: what the cap knows of each session's stored messages, and the repairs that
ended an interruption.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

from convstore._conversation.formats import Shape, shape
from convstore._conversation.window import stored_window
from convstore._storage.codec import decode
from convstore._storage.types import JSONDocument

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_sessions = sa.table(
    "sessions", sa.column("session_id", sa.String), sa.column("message_shapes", JSONDocument())
)
_messages = sa.table(
    "messages", sa.column("session_id", sa.String), sa.column("seq", sa.Integer), sa.column("body")
)


def upgrade() -> None:
    with op.batch_alter_table("sessions") as batch:
        batch.add_column(sa.Column("message_shapes", JSONDocument(), nullable=True))
    with op.batch_alter_table("interruptions") as batch:
        batch.add_column(sa.Column("repairs", JSONDocument(), nullable=True))
    _backfill()


def _backfill() -> None:
    """Describe the messages each session already stores, reading each body once."""
    connection = op.get_bind()
    body: sa.ColumnElement[Any] = _messages.c.body
    if connection.dialect.name == "postgresql":
        body = sa.cast(body, sa.Text)
    rows = connection.execute(
        sa.select(_messages.c.session_id, _messages.c.seq, body).order_by(
            _messages.c.session_id, _messages.c.seq
        )
    )
    current: str | None = None
    stored: list[tuple[int, Shape]] = []
    for session_id, seq, text in rows:
        if session_id != current and current is not None:
            _store(connection, current, stored)
            stored = []
        current = session_id
        stored.append((seq, shape(decode(text))))
    if current is not None:
        _store(connection, current, stored)


def _store(connection: sa.Connection, session_id: str, stored: list[tuple[int, Shape]]) -> None:
    connection.execute(
        sa.update(_sessions)
        .where(_sessions.c.session_id == session_id)
        .values(message_shapes=stored_window(stored).to_json())
    )


def downgrade() -> None:
    with op.batch_alter_table("interruptions") as batch:
        batch.drop_column("repairs")
    with op.batch_alter_table("sessions") as batch:
        batch.drop_column("message_shapes")
