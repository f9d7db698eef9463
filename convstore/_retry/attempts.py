"""The rows of one call's attempts, built alike by convstore's executor and by the hooks that
record attempts made by other retry libraries (tenacity, stamina)."""

from __future__ import annotations

import functools
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from convstore._records import Attempt, ErrorType, Outcome
from convstore._retry.evidence import qualified_name
from convstore._retry.redact import redact
from convstore._retry.testing import testing_attempts

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from convstore._retry.classifier import ErrorClassifier, Explanation
    from convstore._retry.hooks import AttemptHook

logger = logging.getLogger("convstore")

_OUTCOME_OF: dict[ErrorType, Outcome] = {
    ErrorType.NON_RETRYABLE: Outcome.NON_RETRYABLE,
    ErrorType.DEGRADED: Outcome.DEGRADED,
    ErrorType.FATAL: Outcome.FATAL,
}


def final_outcome(explanation: Explanation) -> Outcome:
    """The outcome of an attempt whose error is raised without another attempt: its kind's
    outcome, or GIVEUP for a retryable error whose retries ran out."""
    return _OUTCOME_OF.get(explanation.error_type, Outcome.GIVEUP)


@dataclass(frozen=True, slots=True)
class Call:
    """One call, however many attempts it takes: what every one of its attempts' rows shares."""

    call_id: str
    session_id: str | None
    operation: str

    @classmethod
    def new(cls, session_id: str | None, operation: str) -> Call:
        """A call with a new uuid4 hex ``call_id``."""
        return cls(uuid.uuid4().hex, session_id, operation)

    def attempt(
        self,
        number: int,
        outcome: Outcome,
        elapsed_s: float | None,
        error: BaseException | None = None,
        explanation: Explanation | None = None,
        delay_s: float | None = None,
        cooldown_wait_s: float | None = None,
    ) -> Attempt:
        """The row of attempt `number` (1-based), which ended with `outcome`."""
        return Attempt(
            call_id=self.call_id,
            session_id=self.session_id,
            operation=self.operation,
            attempt=number,
            outcome=outcome,
            error_type=None if explanation is None else explanation.error_type,
            error_class=None if error is None else qualified_name(type(error)),
            error_message=None if error is None else error_message(error),
            status_code=None if explanation is None else explanation.status_code,
            delay_s=delay_s,
            retry_after_s=None if explanation is None else explanation.retry_after_s,
            elapsed_s=elapsed_s,
            created_at=datetime.now(UTC),
            cooldown_wait_s=cooldown_wait_s,
        )


def error_message(error: BaseException) -> str | None:
    """The redacted message of an exception, None when it has none."""
    try:
        text = str(error)
    except Exception:  # noqa: BLE001 - a broken __str__ must not lose the attempt's row.
        return None
    return redact(text) or None


def operation_name(fn: Callable[..., Any]) -> str:
    """``module.qualname`` of the function (or of what a partial wraps)."""
    target: object = fn
    while isinstance(target, functools.partial):
        target = target.func
    qualname: object = getattr(target, "__qualname__", None)
    module: object = getattr(target, "__module__", None)
    if not isinstance(qualname, str):
        # A callable instance: name its class.
        qualname, module = type(target).__qualname__, type(target).__module__
    return f"{module}.{qualname}" if isinstance(module, str) else qualname


@dataclass(frozen=True, slots=True)
class Decision:
    """After a failed attempt: wait ``delay_s`` and try again, or end with ``outcome``."""

    outcome: Outcome
    explanation: Explanation
    #: The wait before the next attempt; None when no attempt follows.
    delay_s: float | None


def decide(
    classifier: ErrorClassifier,
    error: Exception,
    index: int,
    max_retries: int | None,
    max_retry_after_s: float,
) -> Decision:
    """Classify the failure of attempt ``index`` (0-based) and choose: retry after a delay, give
    up, or raise at once.

    The budget is ``max_retries``, else the policy of this error; a server asking through
    Retry-After for more than ``max_retry_after_s`` ends the call. In testing mode (`set_testing`)
    the budget is the testing attempts and no delay is waited.
    """
    explanation = classifier.explain(error)
    if explanation.error_type is not ErrorType.RETRYABLE:
        return Decision(final_outcome(explanation), explanation, None)
    testing = testing_attempts()
    if testing is not None:
        budget = testing - 1
    elif max_retries is not None:
        budget = max_retries
    else:
        budget = explanation.backoff.max_retries
    if index >= budget:
        return Decision(Outcome.GIVEUP, explanation, None)
    retry_after = explanation.retry_after_s
    if retry_after is not None and retry_after > max_retry_after_s:
        logger.info(
            "giving up: the server asked to wait %.1f s, more than max_retry_after_s=%.1f",
            retry_after,
            max_retry_after_s,
        )
        return Decision(Outcome.GIVEUP, explanation, None)
    if testing is not None:
        return Decision(Outcome.RETRY, explanation, 0.0)
    delay = classifier.compute_delay(index, explanation.backoff)
    # Never wait less than the server asked for.
    if retry_after is not None:
        delay = max(delay, retry_after)
    return Decision(Outcome.RETRY, explanation, delay)


async def emit(hooks: Iterable[AttemptHook], attempt: Attempt) -> None:
    """Hand the attempt to every hook; a failing hook is logged and the others still run."""
    for hook in hooks:
        try:
            pending = hook(attempt)
            if pending is not None:
                await pending
        except Exception:
            logger.warning(
                "attempt hook %r failed on attempt %d of %s (call %s); the call is unaffected",
                hook,
                attempt.attempt,
                attempt.operation,
                attempt.call_id,
                exc_info=True,
            )
