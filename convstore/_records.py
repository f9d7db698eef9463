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
class RetrySummary:
    """The retry history of one operation and one kind of error.

    A success after retries, and a cancellation, count under the kind of error of the attempt
    before it; first-attempt successes are the row whose `error_type` is None.
    """

    operation: str
    #: The ErrorType value (``"retryable"``, ...), or None for first-attempt successes.
    error_type: str | None
    #: Distinct calls with at least one attempt in this row.
    calls: int
    attempts: int
    #: Attempts that failed and were followed by another.
    retries: int
    #: Attempts that failed when the retries were used up.
    giveups: int
    #: Calls that succeeded on a later attempt.
    successes_after_retry: int
    #: Seconds waited in all, and the 95th percentile (nearest rank) of the waits; None if none.
    total_delay_s: float
    p95_delay_s: float | None


@dataclass(frozen=True, slots=True)
class Interruption:
    """One entry of the crash history; it outlives its session."""

    id: int
    session_id: str
    interrupted_at: datetime
    reason: str | None
    #: When the session was next saved, appended to or deleted; None while still interrupted.
    resolved_at: datetime | None
