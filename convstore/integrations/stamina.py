"""convstore's decisions and attempt history for code that retries with stamina.

`retry_on` is convstore's classifier as stamina's ``on=`` backoff hook: retry what convstore calls
retryable, after the server's Retry-After when it sends one. `RecordAttempts` is a stamina
``RetryHook`` that writes a ``retry_events`` row for each retry stamina schedules::

    stamina.instrumentation.set_on_retry_hooks([RecordAttempts(store)])

    @stamina.retry(on=retry_on(), attempts=5)
    async def chat(prompt: str) -> str: ...

stamina calls its hooks only when it schedules a retry: the attempt that finally succeeds, and
the one after which stamina gives up, are not reported, so they have no row (see the docs).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from convstore import _validate
from convstore._records import Attempt, ErrorType, Outcome
from convstore._retry.attempts import Call, emit
from convstore._retry.classifier import ErrorClassifier, classifier_or_default
from convstore._retry.executor import DEFAULT_MAX_RETRY_AFTER_S
from convstore.exceptions import InvalidArgument
from convstore.integrations._extras import missing_extra

try:
    from stamina.instrumentation import RetryDetails
except ImportError as error:
    raise missing_extra("stamina", "stamina", error) from error

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from convstore._retry.hooks import AttemptRecorder

__all__ = ["RecordAttempts", "retry_on"]

logger = logging.getLogger("convstore")


def retry_on(
    classifier: ErrorClassifier | None = None,
    *,
    max_retry_after_s: float = DEFAULT_MAX_RETRY_AFTER_S,
) -> Callable[[Exception], bool | float]:
    """stamina's ``on=`` hook from convstore's classifier.

    It answers False (raise at once) for fatal, degraded and non-retryable errors, and for a
    server asking through Retry-After for more than ``max_retry_after_s``; the seconds asked
    for when the server sent Retry-After (stamina then waits exactly that); True otherwise
    (stamina's own backoff). stamina's ``attempts`` and ``timeout`` still bound the retries.
    """
    checked = classifier_or_default(classifier)
    limit = _validate.real_number("max_retry_after_s", max_retry_after_s, minimum=0.0, finite=False)

    def on(error: Exception) -> bool | float:
        explanation = checked.explain(error)
        if explanation.error_type is not ErrorType.RETRYABLE:
            return False
        retry_after = explanation.retry_after_s
        if retry_after is None:
            return True
        return retry_after if retry_after <= limit else False

    return on


@dataclass(slots=True)
class _CallState:
    """One call's rows' shared part, and when its current attempt began (None: not known)."""

    call: Call
    started: float | None = None


#: The calls under way in this task or thread, by the name stamina gives them.
_calls: contextvars.ContextVar[dict[str, _CallState]] = contextvars.ContextVar("convstore_stamina")


class RecordAttempts:
    """A stamina ``RetryHook`` writing one ``retry_events`` row per retry stamina schedules.

    Each row is the failed attempt: outcome RETRY, classified by ``classifier``, ``delay_s`` the
    wait stamina chose; the attempts of one call share a ``call_id``, and ``operation`` is the
    name stamina gives the callable. stamina does not say when a call's first attempt began, so
    that row's ``elapsed_s`` is NULL; later attempts are timed from the moment stamina starts them.

    Rows of async calls are written in the background while stamina waits; ``await flush()``
    waits for them. Sync calls are written through ``loop``, an event loop running in another
    thread (the one the store works on); without one they cannot be written and are logged.
    """

    def __init__(
        self,
        store: AttemptRecorder,
        *,
        session_id: str | None = None,
        classifier: ErrorClassifier | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        if not callable(getattr(store, "record_attempt", None)):
            raise InvalidArgument(
                f"store must have an async record_attempt(attempt) method, got {store!r}"
            )
        if loop is not None and not isinstance(loop, asyncio.AbstractEventLoop):
            raise InvalidArgument(f"loop must be an asyncio event loop, got {loop!r}")
        self.store = store
        self.session_id = None if session_id is None else _validate.session_id(session_id)
        self.classifier = classifier_or_default(classifier)
        self.loop = loop
        self._pending: set[asyncio.Future[None]] = set()

    def __call__(self, details: RetryDetails) -> contextlib.AbstractContextManager[None]:
        """Write the row of the attempt that failed; the context manager returned is left right
        before stamina starts the next attempt, which is when that attempt's clock starts."""
        calls = _calls.get({})
        state = calls.get(details.name)
        if state is None or details.retry_num == 1:
            state = _CallState(Call.new(self.session_id, details.name))
            _calls.set({**calls, details.name: state})
        error = details.caused_by
        explanation = self.classifier.explain(error)
        elapsed = None if state.started is None else time.monotonic() - state.started
        number = details.retry_num
        row = state.call.attempt(
            number, Outcome.RETRY, elapsed, error, explanation, details.wait_for
        )
        self._write(row)
        return _starts_next_attempt(state)

    def _write(self, row: Attempt) -> None:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is not None:
            task = running.create_task(emit((self.store.record_attempt,), row))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)
        elif self.loop is not None and self.loop.is_running():
            future = asyncio.run_coroutine_threadsafe(
                emit((self.store.record_attempt,), row), self.loop
            )
            future.result()
        else:
            logger.error(
                "attempt %d of %s (call %s) not recorded: a sync stamina call needs "
                "RecordAttempts(loop=...), an event loop running in another thread",
                row.attempt,
                row.operation,
                row.call_id,
            )

    async def flush(self) -> None:
        """Wait until every row handed to the store so far is written (or its failure logged)."""
        while self._pending:
            await asyncio.gather(*self._pending)


@contextlib.contextmanager
def _starts_next_attempt(state: _CallState) -> Iterator[None]:
    yield
    state.started = time.monotonic()
