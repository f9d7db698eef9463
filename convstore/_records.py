"""The records convstore hands out and stores: snapshots, interruptions, attempts, summaries.

Both sides read them: the retry executor fills `Attempt`s, the store writes them as
``retry_events`` rows and reads back `Snapshot`s and the crash history. Nothing here imports
either side.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal


class ErrorType(StrEnum):
    """What a failure means for the caller."""

    #: Transient: wait and try again.
    RETRYABLE = "retryable"
    #: The request itself is wrong (bad input, bad key, missing model): retrying cannot help.
    NON_RETRYABLE = "non_retryable"
    #: The request is too big for the model: the caller must shorten the conversation.
    DEGRADED = "degraded"
    #: Quota or billing: a person must act before any request can succeed.
    FATAL = "fatal"


class Outcome(StrEnum):
    """How one attempt ended; the ``outcome`` column of ``retry_events``."""

    #: The function returned.
    SUCCESS = "success"
    #: It failed with a retryable error and another attempt follows after ``delay_s``.
    RETRY = "retry"
    #: It failed with a retryable error, but the retries are used up (or the server asked for
    #: a wait longer than ``max_retry_after_s``): the error is raised.
    GIVEUP = "giveup"
    #: It failed with an error that retrying cannot fix: raised at once.
    NON_RETRYABLE = "non_retryable"
    #: The request was too large for the model: raised at once, the caller must shorten it.
    DEGRADED = "degraded"
    #: Quota or billing: raised at once, a person must act.
    FATAL = "fatal"
    #: The task was cancelled during the attempt or during the wait before it.
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True, kw_only=True)
class Attempt:
    """One attempt of one call, as stored in a ``retry_events`` row (where each character of
    its text that no backend can store, NUL or a lone surrogate, becomes U+FFFD)."""

    #: uuid4 hex shared by all attempts of one call.
    call_id: str
    session_id: str | None
    #: What was called: the executor's ``operation``, else ``module.qualname`` of the function.
    operation: str
    #: 1 for the first attempt.
    attempt: int
    outcome: Outcome
    #: The classification of the error; None on success and cancellation.
    error_type: ErrorType | None
    #: Module-qualified class of the exception, e.g. ``builtins.TimeoutError``.
    error_class: str | None
    #: The exception's message with secrets removed, at most 2,000 characters; None when empty.
    error_message: str | None
    status_code: int | None
    #: The wait chosen before the next attempt; None when no attempt follows.
    delay_s: float | None
    #: What the server's Retry-After asked for, in seconds.
    retry_after_s: float | None
    #: This attempt's own duration (``time.monotonic``), not counting waits before it; None when
    #: the retry library that made the attempt does not say when it began (stamina's first).
    elapsed_s: float | None
    #: When the attempt ended, timezone-aware UTC.
    created_at: datetime
    #: Seconds waited before the attempt for a cooldown its rate limit shared with other calls
    #: (`RetryExecutor`'s ``limit_key``), apart from ``delay_s``; None when there was none.
    cooldown_wait_s: float | None = None


RepairKind = Literal["closed_call", "dropped_result", "dropped_message"]


@dataclass(frozen=True, slots=True)
class Repair:
    """One change `resume` made so that the provider accepts the conversation."""

    #: ``closed_call``: a synthetic result was added for a call that had none;
    #: ``dropped_result``: a result whose call is not in the conversation was removed;
    #: ``dropped_message``: a message the conversation may not start with was removed from its
    #: start (with it go the results that answer its calls).
    kind: RepairKind
    #: The call the repair is about; None for ``dropped_message``.
    call_id: str | None
    #: The 0-based position, in the conversation as stored, of the message repaired.
    position: int


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
    #: What `Store.resume` repaired so that the provider accepts the conversation; always
    #: empty from `Store.restore_snapshot`, which returns what is stored as it is.
    repairs: tuple[Repair, ...] = ()

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
    #: Calls of this kind of error, each counted once, where its first attempt of the kind falls.
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
    #: Seconds waited in all for shared cooldowns (`Attempt.cooldown_wait_s`).
    total_cooldown_wait_s: float = 0.0


@dataclass(frozen=True, slots=True)
class Cooldown:
    """A rate limit's cooldown, shared by every call of its ``limit_key`` on the database."""

    limit_key: str
    #: Until when calls of the key wait, timezone-aware UTC; it only ever moves later.
    until: datetime
    #: When the latest extension was written, and by which call and operation.
    set_at: datetime
    call_id: str
    operation: str
    #: Why: the error's class and HTTP status, e.g. ``HTTP 429 on anthropic.RateLimitError``.
    reason: str | None
    status_code: int | None
    #: The spacing of the key's attempts while it is paced, and until when it is.
    interval_s: float | None = None
    paced_until: datetime | None = None


@dataclass(frozen=True, slots=True)
class Interruption:
    """One entry of the crash history; it outlives its session."""

    id: int
    session_id: str
    interrupted_at: datetime
    reason: str | None
    #: When the session was next saved, appended to, resumed or deleted; None while still
    #: interrupted.
    resolved_at: datetime | None
    #: What `Store.resume` repaired when it ended this interruption.
    repairs: tuple[Repair, ...] = ()
