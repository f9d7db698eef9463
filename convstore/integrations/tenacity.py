"""convstore's decisions and attempt history for code that retries with tenacity.

`record_attempts` gives the arguments of ``tenacity.retry`` (or ``tenacity.AsyncRetrying``) that
record every attempt of an async call as one ``retry_events`` row, exactly as `convstore.retry`
does; `retry_if_retryable`, `wait_for_policy` and `stop_after_policy` are convstore's classifier
as tenacity strategies, usable on their own::

    @tenacity.retry(**record_attempts(store, operation="chat"))
    async def chat(prompt: str) -> str: ...
"""

from __future__ import annotations

import inspect
import time
import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypedDict

from convstore import _validate
from convstore._records import ErrorType, Outcome
from convstore._retry.attempts import Call, decide, emit, final_outcome, operation_name
from convstore._retry.classifier import ErrorClassifier, Explanation, classifier_or_default
from convstore._retry.executor import DEFAULT_MAX_RETRY_AFTER_S
from convstore._retry.testing import testing_attempts
from convstore.exceptions import ConfigurationError, InvalidArgument
from convstore.integrations._extras import missing_extra

try:
    import tenacity
    from tenacity import RetryCallState
    from tenacity.stop import stop_base
    from tenacity.wait import wait_base
except ImportError as error:
    raise missing_extra("tenacity", "tenacity", error) from error

if TYPE_CHECKING:
    from collections.abc import Callable

    from convstore._retry.hooks import AttemptRecorder

__all__ = [
    "RetryingArguments",
    "record_attempts",
    "retry_if_retryable",
    "stop_after_policy",
    "wait_for_policy",
]


def _failure(retry_state: RetryCallState) -> Exception | None:
    """The exception the last attempt raised, if it raised an `Exception`."""
    outcome = retry_state.outcome
    if outcome is None or not outcome.failed:
        return None
    error = outcome.exception()
    return error if isinstance(error, Exception) else None


class retry_if_retryable(tenacity.retry_base):
    """Retry exactly the errors convstore's classifier calls retryable; stop at once on fatal,
    degraded and non-retryable ones (and never retry a result, or a cancellation)."""

    def __init__(self, classifier: ErrorClassifier | None = None) -> None:
        self.classifier = classifier_or_default(classifier)

    def __call__(self, retry_state: RetryCallState) -> bool:
        error = _failure(retry_state)
        return error is not None and self.classifier.classify(error)[0] is ErrorType.RETRYABLE


class wait_for_policy(wait_base):
    """Wait as convstore would: the backoff of the error's policy, never less than the server's
    Retry-After; no time at all in testing mode (`convstore.set_testing`)."""

    def __init__(self, classifier: ErrorClassifier | None = None) -> None:
        self.classifier = classifier_or_default(classifier)

    def __call__(self, retry_state: RetryCallState) -> float:
        error = _failure(retry_state)
        if error is None or testing_attempts() is not None:
            return 0.0
        explanation = self.classifier.explain(error)
        delay = self.classifier.compute_delay(retry_state.attempt_number - 1, explanation.backoff)
        if explanation.retry_after_s is not None:
            delay = max(delay, explanation.retry_after_s)
        return delay


class stop_after_policy(stop_base):
    """Stop as convstore would: once the latest error's policy has no retry left (or
    ``max_retries`` is spent), or the server asks to wait longer than ``max_retry_after_s``; in
    testing mode, after the testing attempts."""

    def __init__(
        self,
        classifier: ErrorClassifier | None = None,
        *,
        max_retries: int | None = None,
        max_retry_after_s: float = DEFAULT_MAX_RETRY_AFTER_S,
    ) -> None:
        self.classifier = classifier_or_default(classifier)
        self.max_retries = _validate.optional_whole_number("max_retries", max_retries, minimum=0)
        self.max_retry_after_s = _validate.real_number(
            "max_retry_after_s", max_retry_after_s, minimum=0.0, finite=False
        )

    def __call__(self, retry_state: RetryCallState) -> bool:
        error = _failure(retry_state)
        if error is None:  # a result your ``retry`` retries: the default policy's budget
            testing = testing_attempts()
            budget = self.max_retries
            if budget is None:
                budget = self.classifier.default_backoff.max_retries
            return retry_state.attempt_number > (budget if testing is None else testing - 1)
        decision = decide(
            self.classifier,
            error,
            retry_state.attempt_number - 1,
            self.max_retries,
            self.max_retry_after_s,
        )
        return decision.delay_s is None


class RetryingArguments(TypedDict):
    """The arguments `record_attempts` gives ``tenacity.retry`` / ``tenacity.AsyncRetrying``."""

    retry: Callable[[RetryCallState], Any]
    wait: Callable[[RetryCallState], Any]
    stop: Callable[[RetryCallState], Any]
    before: Callable[[RetryCallState], None]


def record_attempts(
    store: AttemptRecorder,
    *,
    operation: str | None = None,
    session_id: str | None = None,
    classifier: ErrorClassifier | None = None,
    retry: Callable[[RetryCallState], Any] | None = None,
    wait: Callable[[RetryCallState], Any] | None = None,
    stop: Callable[[RetryCallState], Any] | None = None,
) -> RetryingArguments:
    """The ``retry``, ``wait``, ``stop`` and ``before`` arguments of ``tenacity.retry`` that
    record every attempt of an async call in ``store``, one ``retry_events`` row each, classified
    by ``classifier`` and sharing one ``call_id`` per call, as `convstore.retry` writes them.

    ``retry``, ``wait`` and ``stop`` are your tenacity strategies (sync or async); by default
    convstore's `retry_if_retryable`, `wait_for_policy` and `stop_after_policy`. ``operation``
    names the call in the rows (default: the function's ``module.qualname``; give it for
    ``async for attempt in AsyncRetrying(...)`` blocks, which have no function). Testing mode
    (`convstore.set_testing`) applies whatever the strategies: no wait, the testing attempts.
    Only async calls can be recorded; a sync ``tenacity.Retrying`` raises ConfigurationError.
    """
    if not callable(getattr(store, "record_attempt", None)):
        raise InvalidArgument(
            f"store must have an async record_attempt(attempt) method, got {store!r}"
        )
    if operation is not None and (not isinstance(operation, str) or not operation):
        raise InvalidArgument(f"operation must be a non-empty str, got {operation!r}")
    for name, strategy in (("retry", retry), ("wait", wait), ("stop", stop)):
        if strategy is not None and not callable(strategy):
            raise InvalidArgument(f"{name} must be a tenacity strategy, got {strategy!r}")
    checked = classifier_or_default(classifier)
    recorder = _Recorder(
        store=store,
        operation=operation,
        session_id=None if session_id is None else _validate.session_id(session_id),
        classifier=checked,
        retry=retry if retry is not None else retry_if_retryable(checked),
        wait=wait if wait is not None else wait_for_policy(checked),
        stop=stop if stop is not None else stop_after_policy(checked),
    )
    return RetryingArguments(
        retry=recorder.retry, wait=recorder.wait, stop=recorder.stop, before=recorder.before
    )


@dataclass(slots=True)
class _CallState:
    """What the recorder knows of one call: its rows' shared part, and its current attempt."""

    call: Call
    started: float = field(default_factory=time.monotonic)
    explanations: dict[int, Explanation] = field(default_factory=dict)


async def _run(strategy: Callable[[RetryCallState], Any], retry_state: RetryCallState) -> Any:
    result = strategy(retry_state)
    return await result if inspect.isawaitable(result) else result


@dataclass(slots=True, kw_only=True)
class _Recorder:
    """Wraps the user's strategies to write one row per attempt.

    tenacity asks ``retry`` about every outcome; an outcome it does not retry is final (success,
    cancellation, or an error raised as it is) and is written there. A retried one then reaches
    ``wait`` and ``stop``: ``stop`` writes it, as RETRY with the wait chosen, or as GIVEUP.
    """

    store: AttemptRecorder
    operation: str | None
    session_id: str | None
    classifier: ErrorClassifier
    retry: Callable[[RetryCallState], Any]
    wait: Callable[[RetryCallState], Any]
    stop: Callable[[RetryCallState], Any]
    calls: weakref.WeakKeyDictionary[RetryCallState, _CallState] = field(
        default_factory=weakref.WeakKeyDictionary
    )

    def __post_init__(self) -> None:
        user_retry, user_wait, user_stop = self.retry, self.wait, self.stop

        async def retry(retry_state: RetryCallState) -> bool:
            return await self._after_attempt(retry_state, user_retry)

        async def wait(retry_state: RetryCallState) -> float:
            if testing_attempts() is not None:
                return 0.0
            return float(await _run(user_wait, retry_state))

        async def stop(retry_state: RetryCallState) -> bool:
            return await self._before_retry(retry_state, user_stop)

        self.retry, self.wait, self.stop = retry, wait, stop

    def before(self, retry_state: RetryCallState) -> None:
        """Note when an attempt begins (and, before the first, start the call's rows)."""
        if not isinstance(retry_state.retry_object, tenacity.AsyncRetrying):
            raise ConfigurationError(
                "record_attempts writes attempts through the async store, so it records async "
                "calls only (tenacity.AsyncRetrying, or tenacity.retry on an async function)"
            )
        state = self.calls.get(retry_state)
        if state is None:
            self.calls[retry_state] = _CallState(Call.new(self.session_id, self._name(retry_state)))
        else:
            state.started = time.monotonic()

    def _name(self, retry_state: RetryCallState) -> str:
        if self.operation is not None:
            return self.operation
        if retry_state.fn is not None:
            return operation_name(retry_state.fn)
        name = getattr(retry_state.retry_object, "name", None)
        return name if isinstance(name, str) and name else "tenacity"

    def _explain(
        self, state: _CallState, retry_state: RetryCallState, error: Exception
    ) -> Explanation:
        number = retry_state.attempt_number
        if number not in state.explanations:
            state.explanations = {number: self.classifier.explain(error)}
        return state.explanations[number]

    async def _after_attempt(
        self, retry_state: RetryCallState, user_retry: Callable[[RetryCallState], Any]
    ) -> bool:
        """Ask the user's ``retry`` (never about a cancellation); write the row if the call ends."""
        outcome = retry_state.outcome
        assert outcome is not None
        error = outcome.exception() if outcome.failed else None
        if (error is None or isinstance(error, Exception)) and await _run(user_retry, retry_state):
            return True
        state = self.calls[retry_state]
        elapsed = (retry_state.outcome_timestamp or time.monotonic()) - state.started
        number = retry_state.attempt_number
        if error is None:
            row = state.call.attempt(number, Outcome.SUCCESS, elapsed)
        elif not isinstance(error, Exception):
            row = state.call.attempt(number, Outcome.CANCELLED, elapsed, error)
        else:
            explanation = self._explain(state, retry_state, error)
            row = state.call.attempt(
                number, final_outcome(explanation), elapsed, error, explanation
            )
        await emit((self.store.record_attempt,), row)
        return False

    async def _before_retry(
        self, retry_state: RetryCallState, user_stop: Callable[[RetryCallState], Any]
    ) -> bool:
        """Ask the user's ``stop`` (or testing mode); write the row of the attempt that failed."""
        testing = testing_attempts()
        if testing is not None:
            stopped = retry_state.attempt_number >= testing
        else:
            stopped = bool(await _run(user_stop, retry_state))
        state = self.calls[retry_state]
        error = _failure(retry_state)
        explanation = None if error is None else self._explain(state, retry_state, error)
        elapsed = (retry_state.outcome_timestamp or time.monotonic()) - state.started
        row = state.call.attempt(
            retry_state.attempt_number,
            Outcome.GIVEUP if stopped else Outcome.RETRY,
            elapsed,
            error,
            explanation,
            None if stopped else retry_state.upcoming_sleep,
        )
        await emit((self.store.record_attempt,), row)
        return stopped
