"""What the store hands back: restored snapshots, interrupted sessions and interruption history."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A session's stored conversation and state, as restored."""

    session_id: str
    #: The retained messages, oldest first: the newest ``max_messages`` of the conversation.
    messages: list[Any]
    #: How many messages the whole conversation had at the last save or append.
    message_count: int
    saved_at: datetime
    extra: dict[str, Any]
    interrupted_at: datetime | None
    interrupt_reason: str | None

    @property
    def interrupted(self) -> bool:
        """Whether the session is marked interrupted."""
        return self.interrupted_at is not None


@dataclass(frozen=True, slots=True)
class InterruptedSession:
    """A session marked interrupted and not saved since."""

    session_id: str
    message_count: int
    interrupted_at: datetime
    #: Seconds from the interruption to the moment the list was made.
    age_seconds: float
    reason: str | None


@dataclass(frozen=True, slots=True)
class Interruption:
    """One entry of the crash history; it outlives its session."""

    id: int
    session_id: str
    interrupted_at: datetime
    reason: str | None
    #: When the session was next saved, appended to or deleted; None while still interrupted.
    resolved_at: datetime | None
