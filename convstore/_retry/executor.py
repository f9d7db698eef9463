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
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, cast, overload

from convstore import _validate
from convstore._records import Attempt, Outcome
from convstore._retry.attempts import Call, decide, emit, operation_name
from convstore._retry.classifier import ErrorClassifier, classifier_or_default
from convstore._retry.cooldown import CooldownWaitCancelled, SharedCooldown
from convstore._retry.hooks import AttemptHook, AttemptRecorder, CooldownKeeper, OnRetry, Sleep
from convstore.exceptions import CooldownTooLong, InvalidArgument

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Coroutine, Iterable

P = ParamSpec("P")
T = TypeVar("T")

logger = logging.getLogger("convstore")

#: The longest server-requested wait convstore will sit through (5 minutes); see `RetryExecutor`.
DEFAULT_MAX_RETRY_AFTER_S = 300.0


class RetryExecutor:
    """Runs a function, retrying transient failures with backoff, and reports every attempt.

    The retry budget is that of the policy matched by the *latest* error, counted over all
    attempts of the call: after two timeouts (3 retries allowed) a rate limit (5 allowed) may still
    be retried three more times. The exponent of the delay is the number of failures so far.

    A server asking through Retry-After for more than ``max_retry_after_s`` makes the executor
    give up at once rather than wait less than asked or hang for hours.

    With a convstore store, calls share cooldowns by ``limit_key`` (default: the operation):
    after a rate limit or an overload (429, 529, 503, or a rule with ``cooldown=True``) the key
    cools down, for every worker on the database, for the later of the server's Retry-After and
    the policy's delay, and its attempts are paced one slot at a time; before every attempt, the
    first included, a call waits for its slot (``cooldown_wait_s`` in its row), and gives up
    with `CooldownTooLong` when the slot is further off than ``max_retry_after_s``.

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
        limit_key: str | None = None,
        shared_cooldowns: bool = True,
    ) -> None:
        """Prepare an executor; ``store`` gets every attempt after the ``hooks`` do, and keeps
        the cooldowns of ``limit_key`` (default: the operation) when it can (a convstore store)
        and ``shared_cooldowns`` is left on."""
        if store is not None and not callable(getattr(store, "record_attempt", None)):
            raise InvalidArgument(
                f"store must have an async record_attempt(attempt) method, got {store!r}"
            )
        if operation is not None and (not isinstance(operation, str) or not operation):
            raise InvalidArgument(f"operation must be a non-empty str, got {operation!r}")
        max_retry_after_s = _validate.real_number(
            "max_retry_after_s", max_retry_after_s, minimum=0.0, finite=False
        )
        self.classifier = classifier_or_default(classifier)
        self.store = store
        self.session_id = None if session_id is None else _validate.session_id(session_id)
        self.operation = operation
        self.max_retry_after_s = max_retry_after_s
        self._sleep: Sleep = sleep if sleep is not None else asyncio.sleep
        self._hooks: tuple[AttemptHook, ...] = tuple(hooks)
        if not isinstance(shared_cooldowns, bool):
            raise InvalidArgument(f"shared_cooldowns must be a bool, got {shared_cooldowns!r}")
        if limit_key is not None and not shared_cooldowns:
            raise InvalidArgument("limit_key names a shared cooldown: leave shared_cooldowns on")
        self._keeper = _keeper(store, limit_key) if shared_cooldowns else None
        self.limit_key = limit_key
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
        call = Call.new(self.session_id, self.operation or operation_name(fn))
        cooldown = self._shared_cooldown(call)
        index = 0  # 0-based number of the current attempt
        while True:
            waited = await self._wait_for_cooldown(cooldown, call, index)
            started = time.monotonic()
            try:
                result = fn(*args, **kwargs)
                if inspect.isawaitable(result):
                    result = await result
            except asyncio.CancelledError as exc:
                elapsed = time.monotonic() - started
                await self._emit(
                    call.attempt(index + 1, Outcome.CANCELLED, elapsed, exc, None, None, waited)
                )
                raise
            except Exception as exc:
                elapsed = time.monotonic() - started
                failure = decide(self.classifier, exc, index, max_retries, self.max_retry_after_s)
                row = call.attempt(
                    index + 1,
                    failure.outcome,
                    elapsed,
                    exc,
                    failure.explanation,
                    failure.delay_s,
                    waited,
                )
                if cooldown is not None:
                    await cooldown.extend(
                        self.classifier, failure.explanation, index, failure.delay_s, row
                    )
                await self._emit(row)
                if failure.delay_s is None:
                    raise
                error, delay = exc, failure.delay_s
            else:
                elapsed = time.monotonic() - started
                await self._emit(
                    call.attempt(index + 1, Outcome.SUCCESS, elapsed, cooldown_wait_s=waited)
                )
                return result
            # Outside the except block, so that the next attempt's error is not chained to this one.
            await self._wait(call, index, error, delay, on_retry)
            del error  # Do not keep the traceback (and its frames) alive during the next attempt.
            index += 1

    def _shared_cooldown(self, call: Call) -> SharedCooldown | None:
        """The cooldown the call shares with the calls of its limit key, if the store keeps it."""
        if self._keeper is None:
            return None
        key = self.limit_key if self.limit_key is not None else call.operation
        return SharedCooldown(self._keeper, key, self.max_retry_after_s, self._sleep)

    async def _wait_for_cooldown(
        self, cooldown: SharedCooldown | None, call: Call, index: int
    ) -> float | None:
        """Wait out the shared cooldown before attempt ``index + 1``; the seconds waited. Giving
        up on a cooldown too long, and a cancellation during the wait, are that attempt's row."""
        if cooldown is None:
            return None
        try:
            return await cooldown.wait()
        except CooldownTooLong as exc:
            await self._emit(call.attempt(index + 1, Outcome.GIVEUP, 0.0, exc))
            raise
        except CooldownWaitCancelled as exc:
            cancelled = exc.__cause__
            assert isinstance(cancelled, asyncio.CancelledError)
            row = call.attempt(
                index + 1, Outcome.CANCELLED, 0.0, cancelled, cooldown_wait_s=exc.waited_s
            )
            await self._emit(row)
            raise cancelled from None

    async def _wait(
        self, call: Call, index: int, error: Exception, delay: float, on_retry: OnRetry | None
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

    async def _emit(self, attempt: Attempt) -> None:
        """Hand the attempt to every hook (see `emit`)."""
        await emit(self._hooks, attempt)


def _keeper(store: AttemptRecorder | None, limit_key: str | None) -> CooldownKeeper | None:
    """The store as the keeper of shared cooldowns, when it is one; ``limit_key`` checked."""
    keeps = callable(getattr(store, "cooldown_admission", None)) and callable(
        getattr(store, "extend_cooldown", None)
    )
    if limit_key is not None:
        _validate.limit_key(limit_key)
        if not keeps:
            raise InvalidArgument(
                "limit_key needs a store that keeps shared cooldowns (a convstore Store), "
                f"got {store!r}"
            )
    return cast("CooldownKeeper", store) if keeps else None


async def _call_on_retry(on_retry: OnRetry, index: int, error: Exception, delay: float) -> None:
    """Call ``on_retry``, awaiting it if async; its failure is logged and the retries go on."""
    try:
        pending = on_retry(index, error, delay)
        if pending is not None:
            await pending
    except Exception:
        logger.warning("on_retry callback %r failed; retrying anyway", on_retry, exc_info=True)


def retry(
    *,
    classifier: ErrorClassifier | None = None,
    store: AttemptRecorder | None = None,
    session_id: str | None = None,
    operation: str | None = None,
    sleep: Sleep | None = None,
    hooks: Iterable[AttemptHook] = (),
    max_retry_after_s: float = DEFAULT_MAX_RETRY_AFTER_S,
    limit_key: str | None = None,
    shared_cooldowns: bool = True,
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
        limit_key=limit_key,
        shared_cooldowns=shared_cooldowns,
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
