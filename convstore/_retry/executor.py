"""Calling a flaky function again after transient failures, and reporting every attempt.

Every attempt, whatever its end, becomes one frozen `Attempt` (one ``retry_events`` row) that is
handed to each hook; the store's ``record_attempt`` is just the last hook. Hooks cannot change a
call's result: their exceptions are logged and dropped.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, overload

from convstore import _validate
from convstore._records import Attempt, ErrorType, Outcome
from convstore._retry.classifier import ErrorClassifier, Explanation
from convstore._retry.evidence import qualified_name
from convstore._retry.hooks import AttemptHook, AttemptRecorder, OnRetry, Sleep
from convstore._retry.redact import redact
from convstore.exceptions import InvalidArgument

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Coroutine, Iterable

P = ParamSpec("P")
T = TypeVar("T")

logger = logging.getLogger("convstore")

#: The longest server-requested wait convstore will sit through (5 minutes); see `RetryExecutor`.
DEFAULT_MAX_RETRY_AFTER_S = 300.0

_OUTCOME_OF: dict[ErrorType, Outcome] = {
    ErrorType.NON_RETRYABLE: Outcome.NON_RETRYABLE,
    ErrorType.DEGRADED: Outcome.DEGRADED,
    ErrorType.FATAL: Outcome.FATAL,
}


@dataclass(frozen=True, slots=True)
class _Failure:
    """What the executor decided about one failed attempt."""

    outcome: Outcome
    explanation: Explanation
    delay_s: float | None


@dataclass(frozen=True, slots=True)
class _Call:
    """One call through the executor: what every one of its attempts' rows shares."""

    call_id: str
    session_id: str | None
    operation: str

    def attempt(
        self,
        number: int,
        outcome: Outcome,
        elapsed_s: float,
        error: BaseException | None = None,
        explanation: Explanation | None = None,
        delay_s: float | None = None,
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
            error_message=None if error is None else _error_message(error),
            status_code=None if explanation is None else explanation.status_code,
            delay_s=delay_s,
            retry_after_s=None if explanation is None else explanation.retry_after_s,
            elapsed_s=elapsed_s,
            created_at=datetime.now(UTC),
        )


class RetryExecutor:
    """Runs a function, retrying transient failures with backoff, and reports every attempt.

    The retry budget is that of the policy matched by the *latest* error, counted over all
    attempts of the call: after two timeouts (3 retries allowed) a rate limit (5 allowed) may still
    be retried three more times. The exponent of the delay is the number of failures so far.

    A server asking through Retry-After for more than ``max_retry_after_s`` makes the executor
    give up at once rather than wait less than asked or hang for hours.

    An executor keeps no per-call state, so one instance may serve many concurrent calls.
    """

    def __init__(
        self,
        classifier: ErrorClassifier | None = None,
        *,
        store: AttemptRecorder | None = None,
        session_id: str | None = None,
        operation: str | None = None,
        sleep: Sleep | None = None,
        hooks: Iterable[AttemptHook] = (),
        max_retry_after_s: float = DEFAULT_MAX_RETRY_AFTER_S,
    ) -> None:
        """Prepare an executor; ``store`` gets every attempt after the ``hooks`` do."""
        if classifier is not None and not isinstance(classifier, ErrorClassifier):
            raise InvalidArgument(f"classifier must be an ErrorClassifier, got {classifier!r}")
        if store is not None and not callable(getattr(store, "record_attempt", None)):
            raise InvalidArgument(
                f"store must have an async record_attempt(attempt) method, got {store!r}"
            )
        if operation is not None and (not isinstance(operation, str) or not operation):
            raise InvalidArgument(f"operation must be a non-empty str, got {operation!r}")
        max_retry_after_s = _validate.real_number(
            "max_retry_after_s", max_retry_after_s, minimum=0.0, finite=False
        )
        self.classifier = classifier if classifier is not None else ErrorClassifier()
        self.store = store
        self.session_id = None if session_id is None else _validate.session_id(session_id)
        self.operation = operation
        self.max_retry_after_s = max_retry_after_s
        self._sleep: Sleep = sleep if sleep is not None else asyncio.sleep
        self._hooks: tuple[AttemptHook, ...] = tuple(hooks)
        if store is not None:
            # Writing to the database is one hook among others, and the last.
            self._hooks += (store.record_attempt,)

    @overload
    async def execute_with_retry(
        self,
        fn: Callable[..., Awaitable[T]],
        /,
        *args: Any,
        max_retries: int | None = None,
        on_retry: OnRetry | None = None,
        **kwargs: Any,
    ) -> T: ...

    @overload
    async def execute_with_retry(
        self,
        fn: Callable[..., T],
        /,
        *args: Any,
        max_retries: int | None = None,
        on_retry: OnRetry | None = None,
        **kwargs: Any,
    ) -> T: ...

    async def execute_with_retry(
        self,
        fn: Callable[..., Any],
        /,
        *args: Any,
        max_retries: int | None = None,
        on_retry: OnRetry | None = None,
        **kwargs: Any,
    ) -> Any:
        """Return ``fn(*args, **kwargs)``, awaited if it is awaitable, retrying transient errors.

        At most ``max_retries + 1`` attempts (the argument, else the policy of the latest error).
        The last error is raised as it was, not wrapped; non-retryable, degraded and fatal errors
        are raised at once. A plain (non-async) ``fn`` runs on the event loop and blocks it for
        the duration of each attempt; the waits between attempts never block it.
        """
        return await self._run(fn, args, kwargs, max_retries=max_retries, on_retry=on_retry)

    async def _run(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        *,
        max_retries: int | None,
        on_retry: OnRetry | None,
    ) -> Any:
        """Run the attempt loop; the body of `execute_with_retry` and of `retry`'s wrapper."""
        max_retries = _validate.optional_whole_number("max_retries", max_retries, minimum=0)
        call = _Call(uuid.uuid4().hex, self.session_id, self.operation or _operation_name(fn))
        index = 0  # 0-based number of the current attempt
        while True:
            started = time.monotonic()
            try:
                result = fn(*args, **kwargs)
                if inspect.isawaitable(result):
                    result = await result
            except asyncio.CancelledError as exc:
                elapsed = time.monotonic() - started
                await self._emit(call.attempt(index + 1, Outcome.CANCELLED, elapsed, exc))
                raise
            except Exception as exc:
                elapsed = time.monotonic() - started
                failure = self._decide(exc, index, max_retries)
                row = call.attempt(
                    index + 1, failure.outcome, elapsed, exc, failure.explanation, failure.delay_s
                )
                await self._emit(row)
                if failure.delay_s is None:
                    raise
                error, delay = exc, failure.delay_s
            else:
                elapsed = time.monotonic() - started
                await self._emit(call.attempt(index + 1, Outcome.SUCCESS, elapsed))
                return result
            # Outside the except block, so that the next attempt's error is not chained to this one.
            await self._wait(call, index, error, delay, on_retry)
            del error  # Do not keep the traceback (and its frames) alive during the next attempt.
            index += 1

    async def _wait(
        self, call: _Call, index: int, error: Exception, delay: float, on_retry: OnRetry | None
    ) -> None:
        """Call `on_retry` and sleep before attempt ``index + 2``; a cancellation is recorded."""
        waiting_since = time.monotonic()
        try:
            if on_retry is not None:
                await _call_on_retry(on_retry, index, error, delay)
            await self._sleep(delay)
        except asyncio.CancelledError as exc:
            # The next attempt never started; its row says so.
            waited = time.monotonic() - waiting_since
            await self._emit(call.attempt(index + 2, Outcome.CANCELLED, waited, exc))
            raise

    def _decide(self, error: Exception, index: int, max_retries: int | None) -> _Failure:
        """Classify a failed attempt and choose: retry after some delay, give up, or raise now."""
        explanation = self.classifier.explain(error)
        if explanation.error_type is not ErrorType.RETRYABLE:
            return _Failure(_OUTCOME_OF[explanation.error_type], explanation, None)
        budget = max_retries if max_retries is not None else explanation.backoff.max_retries
        if index >= budget:
            return _Failure(Outcome.GIVEUP, explanation, None)
        retry_after = explanation.retry_after_s
        if retry_after is not None and retry_after > self.max_retry_after_s:
            logger.info(
                "giving up: the server asked to wait %.1f s, more than max_retry_after_s=%.1f",
                retry_after,
                self.max_retry_after_s,
            )
            return _Failure(Outcome.GIVEUP, explanation, None)
        delay = self.classifier.compute_delay(index, explanation.backoff)
        # Never wait less than the server asked for.
        if retry_after is not None:
            delay = max(delay, retry_after)
        return _Failure(Outcome.RETRY, explanation, delay)

    async def _emit(self, attempt: Attempt) -> None:
        """Hand the attempt to every hook; a failing hook is logged and the others still run."""
        for hook in self._hooks:
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


async def _call_on_retry(on_retry: OnRetry, index: int, error: Exception, delay: float) -> None:
    """Call ``on_retry``, awaiting it if async; its failure is logged and the retries go on."""
    try:
        pending = on_retry(index, error, delay)
        if pending is not None:
            await pending
    except Exception:
        logger.warning("on_retry callback %r failed; retrying anyway", on_retry, exc_info=True)


def _error_message(error: BaseException) -> str | None:
    """Return the redacted message of an exception, None when it has none."""
    try:
        text = str(error)
    except Exception:  # noqa: BLE001 - a broken __str__ must not lose the attempt's row.
        return None
    return redact(text) or None


def _operation_name(fn: Callable[..., Any]) -> str:
    """Return ``module.qualname`` of the function (or of what a partial wraps)."""
    target: object = fn
    while isinstance(target, functools.partial):
        target = target.func
    qualname: object = getattr(target, "__qualname__", None)
    module: object = getattr(target, "__module__", None)
    if not isinstance(qualname, str):
        # A callable instance: name its class.
        qualname, module = type(target).__qualname__, type(target).__module__
    return f"{module}.{qualname}" if isinstance(module, str) else qualname


def retry(
    *,
    classifier: ErrorClassifier | None = None,
    store: AttemptRecorder | None = None,
    session_id: str | None = None,
    operation: str | None = None,
    sleep: Sleep | None = None,
    hooks: Iterable[AttemptHook] = (),
    max_retry_after_s: float = DEFAULT_MAX_RETRY_AFTER_S,
    max_retries: int | None = None,
    on_retry: OnRetry | None = None,
) -> Callable[[Callable[P, Awaitable[T]]], Callable[P, Coroutine[Any, Any, T]]]:
    """Decorate an async function so that each call runs through a `RetryExecutor`.

    Takes the executor's arguments plus ``max_retries`` and ``on_retry`` for every call. The
    function's own arguments are passed through untouched, even ones named ``max_retries``.
    """
    executor = RetryExecutor(
        classifier,
        store=store,
        session_id=session_id,
        operation=operation,
        sleep=sleep,
        hooks=hooks,
        max_retry_after_s=max_retry_after_s,
    )
    _validate.optional_whole_number("max_retries", max_retries, minimum=0)

    def decorate(fn: Callable[P, Awaitable[T]]) -> Callable[P, Coroutine[Any, Any, T]]:
        @functools.wraps(fn)
        async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
            result: T = await executor._run(
                fn, args, kwargs, max_retries=max_retries, on_retry=on_retry
            )
            return result

        return wrapper

    return decorate
