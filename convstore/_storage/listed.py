"""A listed interrupted session as a record, free of SQLAlchemy: the store and the command
line's quick read (`sqlite.quick`) build it alike."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from convstore._records import InterruptedSession


def interrupted(row: Sequence[Any], now: datetime) -> InterruptedSession:
    """A row of `statements.interrupted_sessions`, its time a datetime, as a record of its age
    at `now`."""
    session_id, count, at, reason = row
    return InterruptedSession(
        session_id=session_id,
        message_count=count,
        interrupted_at=at,
        age_seconds=max(0.0, (now - at).total_seconds()),
        reason=reason,
    )
