"""The retry executor, its attempt log, its hooks and the retry decorator."""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import math
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import ClassVar

import pytest

from convstore import (
    Attempt,
    AttemptHook,
    ErrorClassifier,
    ErrorType,
    Outcome,
    RetryExecutor,
    retry,
)
from convstore._retry.backoff import BackoffConfig
from convstore._retry.redact import REDACTED
from convstore.exceptions import InvalidArgument

# --- Fakes ------------------------------------------------------------------------------------


class FakeRecorder:
    """An in-memory stand-in for the store: keeps every attempt it is given."""

    def __init__(self) -> None:
        self.attempts: list[Attempt] = []

    async def record_attempt(self, attempt: Attempt) -> None:
        self.attempts.append(attempt)


class FailingRecorder:
    """A store whose database is gone: every write raises."""

    def __init__(self) -> None:
        self.calls = 0

    async def record_attempt(self, attempt: Attempt) -> None:
        self.calls += 1
        raise OSError("disk full")


class FakeSleep:
    """An injected sleep that records the delays and yields to the loop once, without waiting."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        await asyncio.sleep(0)


class FakeResponse:
    """Like httpx.Response: status_code and headers."""

    def __init__(self, status_code: int, headers: Mapping[str, str]) -> None:
        self.status_code = status_code
        self.headers = dict(headers)


class RateLimitError(Exception):
    """Shaped like anthropic.RateLimitError: status_code and response.headers."""

    def __init__(self, headers: Mapping[str, str] | None = None, status_code: int = 429) -> None:
        super().__init__(f"Error code: {status_code}")
        self.status_code = status_code
        self.response = FakeResponse(status_code, headers or {})


class QuotaError(Exception):
    """Shaped like openai's insufficient_quota error: a 429 that must not be retried."""

    status_code = 429
    code = "insufficient_quota"
    body: ClassVar[dict[str, object]] = {"code": "insufficient_quota", "type": "insufficient_quota"}


class Flaky:
    """An async function that raises the given errors in turn, then returns "ok"."""

    def __init__(self, *errors: BaseException) -> None:
        self.errors = list(errors)
        self.calls = 0

    async def __call__(self, *args: object, **kwargs: object) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


#: Jitter at the centre of its range, so every computed delay is exact.
EXACT = ErrorClassifier(rand=lambda: 0.5)


def executor(**kwargs: object) -> tuple[RetryExecutor, FakeRecorder, FakeSleep]:
    """Return an executor with exact delays, a fake store and a fake sleep, plus those fakes."""
    recorder, sleep = FakeRecorder(), FakeSleep()
    options: dict[str, object] = {"store": recorder, "sleep": sleep, **kwargs}
    return RetryExecutor(EXACT, **options), recorder, sleep  # type: ignore[arg-type]


async def fetch_reply(prompt: str) -> str:
    """A module-level async function, to check the default operation name."""
    return prompt.upper()


# --- The attempt sequence ---------------------------------------------------------------------


async def test_fail_fail_succeed_is_three_rows() -> None:
    """Two timeouts then a success give rows retry, retry, success for attempts 1-3 of one call."""
    ex, recorder, sleep = executor(session_id="s-1")
    before = datetime.now(UTC)

    assert await ex.execute_with_retry(Flaky(TimeoutError(), TimeoutError("slow"))) == "ok"

    rows = recorder.attempts
    assert [r.outcome for r in rows] == [Outcome.RETRY, Outcome.RETRY, Outcome.SUCCESS]
    assert [r.attempt for r in rows] == [1, 2, 3]
    assert [r.delay_s for r in rows] == [0.5, 0.75, None]
    assert sleep.delays == [0.5, 0.75]
    assert len({r.call_id for r in rows}) == 1
    assert uuid.UUID(hex=rows[0].call_id).version == 4
    assert len(rows[0].call_id) == 32
    assert [r.error_type for r in rows] == [ErrorType.RETRYABLE, ErrorType.RETRYABLE, None]
    assert [r.error_class for r in rows] == ["builtins.TimeoutError"] * 2 + [None]
    assert [r.error_message for r in rows] == [None, "slow", None]
    assert all(r.session_id == "s-1" for r in rows)
    assert all(r.operation == f"{__name__}.Flaky" for r in rows)
    assert all(r.elapsed_s is not None and r.elapsed_s >= 0 for r in rows)
    assert all(before <= r.created_at <= datetime.now(UTC) for r in rows)
    assert all(r.created_at.tzinfo is UTC for r in rows)
    assert [r.created_at for r in rows] == sorted(r.created_at for r in rows)


async def test_giveup_raises_the_original_exception() -> None:
    """After the last retry the original exception object is raised, and its row says giveup."""
    errors = [ConnectionResetError(f"reset {n}") for n in range(3)]
    ex, recorder, _ = executor()

    with pytest.raises(ConnectionResetError) as caught:
        await ex.execute_with_retry(Flaky(*errors), max_retries=2)

    assert caught.value is errors[2]
    assert [r.outcome for r in recorder.attempts] == [Outcome.RETRY, Outcome.RETRY, Outcome.GIVEUP]
    assert recorder.attempts[-1].delay_s is None
    assert recorder.attempts[-1].error_message == "reset 2"


async def test_max_retries_beyond_three_is_honoured() -> None:
    """max_retries=7 makes eight attempts, not the original module's three."""
    flaky = Flaky(*[TimeoutError() for _ in range(20)])
    ex, recorder, sleep = executor()

    with pytest.raises(TimeoutError):
        await ex.execute_with_retry(flaky, max_retries=7)

    assert flaky.calls == 8
    assert len(recorder.attempts) == 8
    assert len(sleep.delays) == 7


async def test_policy_budget_applies_without_max_retries() -> None:
    """Without max_retries, a rate limit gets the rate-limit policy's 5 retries (6 attempts)."""
    flaky = Flaky(*[RateLimitError() for _ in range(20)])
    ex, _, sleep = executor()

    with pytest.raises(RateLimitError):
        await ex.execute_with_retry(flaky)

    assert flaky.calls == 6
    assert sleep.delays == [5.0, 10.0, 20.0, 40.0, 80.0]


async def test_max_retries_zero_is_one_attempt() -> None:
    """max_retries=0 makes one attempt and gives up."""
    flaky = Flaky(TimeoutError())
    ex, recorder, sleep = executor()

    with pytest.raises(TimeoutError):
        await ex.execute_with_retry(flaky, max_retries=0)

    assert [r.outcome for r in recorder.attempts] == [Outcome.GIVEUP]
    assert sleep.delays == []


async def test_budget_follows_the_latest_errors_policy() -> None:
    """After three timeouts (budget 3) a rate limit (budget 5) is retried, after 5 s * 2**3."""
    flaky = Flaky(TimeoutError(), TimeoutError(), TimeoutError(), RateLimitError())
    ex, recorder, sleep = executor()

    assert await ex.execute_with_retry(flaky) == "ok"

    assert sleep.delays == [0.5, 0.75, 1.125, 40.0]
    assert recorder.attempts[-1].outcome is Outcome.SUCCESS


@pytest.mark.parametrize(
    ("error", "outcome"),
    [
        (KeyError("k"), Outcome.NON_RETRYABLE),
        (RateLimitError(status_code=401), Outcome.NON_RETRYABLE),
        (RateLimitError(status_code=413), Outcome.DEGRADED),
        (QuotaError("You exceeded your current quota"), Outcome.FATAL),
    ],
)
async def test_unretryable_errors_are_raised_at_once(error: Exception, outcome: Outcome) -> None:
    """Non-retryable, degraded and fatal errors are raised after one attempt, with that outcome."""
    flaky = Flaky(error)
    ex, recorder, sleep = executor()

    with pytest.raises(type(error)) as caught:
        await ex.execute_with_retry(flaky, max_retries=10)

    assert caught.value is error
    assert flaky.calls == 1
    assert sleep.delays == []
    assert [(r.outcome, r.delay_s) for r in recorder.attempts] == [(outcome, None)]


async def test_status_and_class_are_recorded() -> None:
    """A failed attempt's row has the status code and the module-qualified class."""
    ex, recorder, _ = executor()
    await ex.execute_with_retry(Flaky(RateLimitError(status_code=503)))
    row = recorder.attempts[0]
    assert row.status_code == 503
    assert row.error_class == f"{__name__}.RateLimitError"
    assert row.error_message == "Error code: 503"


async def test_error_messages_are_redacted_and_cut() -> None:
    """The stored message has its secrets removed and is at most 2,000 characters."""
    key = "sk-proj-" + "Q" * 40
    ex, recorder, _ = executor()
    await ex.execute_with_retry(Flaky(RuntimeError(f"bad key {key} " + "z" * 5000)))
    message = recorder.attempts[0].error_message
    assert message is not None
    assert key not in message
    assert f"sk-{REDACTED}" in message
    assert len(message) == 2000


# --- Functions of every kind ------------------------------------------------------------------


async def test_plain_functions_are_called() -> None:
    """A plain (non-async) function is called, retried and its result returned."""
    calls: list[int] = []

    def add(a: int, b: int) -> int:
        calls.append(a)
        if len(calls) < 2:
            raise ConnectionError("refused")
        return a + b

    ex, recorder, _ = executor()
    assert await ex.execute_with_retry(add, 2, b=3) == 5
    assert len(calls) == 2
    assert recorder.attempts[-1].operation.endswith("test_plain_functions_are_called.<locals>.add")


async def test_arguments_are_passed_through() -> None:
    """Positional and keyword arguments reach the function; the default operation is its name."""
    ex, recorder, _ = executor()
    assert await ex.execute_with_retry(fetch_reply, "hi") == "HI"
    assert await ex.execute_with_retry(fetch_reply, prompt="yo") == "YO"
    assert recorder.attempts[0].operation == f"{__name__}.fetch_reply"


async def test_partials_are_named_after_what_they_wrap() -> None:
    """The operation of a functools.partial is the wrapped function's name."""
    ex, recorder, _ = executor()
    assert await ex.execute_with_retry(functools.partial(fetch_reply, "a")) == "A"
    assert recorder.attempts[0].operation == f"{__name__}.fetch_reply"


async def test_operation_override() -> None:
    """An explicit operation replaces the function's name in every row."""
    ex, recorder, _ = executor(operation="llm.chat")
    await ex.execute_with_retry(fetch_reply, "x")
    assert recorder.attempts[0].operation == "llm.chat"


# --- The event loop keeps running -------------------------------------------------------------


async def test_other_tasks_run_during_backoff_with_asyncio_sleep() -> None:
    """With the default asyncio.sleep, another task makes progress while the executor waits."""
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    ticks_at_calls: list[int] = []

    def fails_twice() -> str:
        # A plain function: the executor's only chances to yield are its backoff waits.
        ticks_at_calls.append(ticks)
        if len(ticks_at_calls) < 3:
            raise RuntimeError("flaky")
        return "done"

    zero = BackoffConfig(base_delay_ms=0, max_delay_ms=0, multiplier=1, jitter=0, max_retries=3)
    ex = RetryExecutor(ErrorClassifier(default_backoff=zero))
    task = asyncio.create_task(ticker())
    await asyncio.sleep(0)
    try:
        assert await ex.execute_with_retry(fails_twice) == "done"
    finally:
        task.cancel()
    # The ticker advanced during each of the two waits, between the three calls.
    assert ticks_at_calls[0] < ticks_at_calls[1] < ticks_at_calls[2]


async def test_other_tasks_run_during_an_injected_wait() -> None:
    """The executor awaits its sleep, so a wait can depend on another task doing its work."""
    progressed = asyncio.Event()
    waited: list[float] = []

    async def wait_for_other_task(delay: float) -> None:
        await progressed.wait()
        waited.append(delay)

    async def other_task() -> None:
        progressed.set()

    ex = RetryExecutor(EXACT, sleep=wait_for_other_task)
    other = asyncio.create_task(other_task())
    # A blocking wait would hang here; the timeout turns that into a failure.
    async with asyncio.timeout(5):
        assert await ex.execute_with_retry(Flaky(TimeoutError())) == "ok"
    await other
    assert waited == [0.5]


# --- Cancellation and interpreter exits -------------------------------------------------------


async def test_cancellation_during_an_attempt_is_recorded_and_propagates() -> None:
    """A task cancelled inside an attempt records outcome cancelled and raises CancelledError."""
    started = asyncio.Event()

    async def hang() -> None:
        started.set()
        await asyncio.Event().wait()

    ex, recorder, _ = executor()
    task = asyncio.create_task(ex.execute_with_retry(hang))
    await started.wait()
    task.cancel()

    with pytest.raises(asyncio.CancelledError):
        await task

    [row] = recorder.attempts
    assert (row.attempt, row.outcome, row.delay_s) == (1, Outcome.CANCELLED, None)
    assert row.error_class == "asyncio.exceptions.CancelledError"
    assert row.error_type is None


async def test_cancellation_during_a_wait_is_recorded_and_propagates() -> None:
    """A task cancelled while backing off records the next attempt as cancelled and raises."""
    waiting = asyncio.Event()

    async def endless_sleep(delay: float) -> None:
        waiting.set()
        await asyncio.Event().wait()

    recorder = FakeRecorder()
    ex = RetryExecutor(EXACT, store=recorder, sleep=endless_sleep)
    flaky = Flaky(TimeoutError())
    task = asyncio.create_task(ex.execute_with_retry(flaky))
    await waiting.wait()
    task.cancel()

    with pytest.raises(asyncio.CancelledError):
        await task

    assert flaky.calls == 1
    assert [(r.attempt, r.outcome) for r in recorder.attempts] == [
        (1, Outcome.RETRY),
        (2, Outcome.CANCELLED),
    ]
    assert recorder.attempts[1].delay_s is None


@pytest.mark.parametrize("exit_error", [KeyboardInterrupt(), SystemExit(2)])
async def test_interpreter_exits_propagate_without_retry(exit_error: BaseException) -> None:
    """KeyboardInterrupt and SystemExit pass through at once: no retry, no row, no wait."""
    flaky = Flaky(exit_error, exit_error)
    ex, recorder, sleep = executor()

    with pytest.raises(type(exit_error)):
        await ex.execute_with_retry(flaky, max_retries=5)

    assert flaky.calls == 1
    assert recorder.attempts == []
    assert sleep.delays == []


# --- on_retry ---------------------------------------------------------------------------------


async def test_on_retry_gets_the_failed_attempt_error_and_delay() -> None:
    """on_retry is called before each wait with the 0-based attempt, the error and the delay."""
    errors = [TimeoutError("a"), TimeoutError("b")]
    seen: list[tuple[int, Exception, float]] = []
    ex, recorder, _ = executor()

    await ex.execute_with_retry(
        Flaky(*errors), on_retry=lambda n, error, delay: seen.append((n, error, delay))
    )

    assert seen == [(0, errors[0], 0.5), (1, errors[1], 0.75)]
    assert [r.delay_s for r in recorder.attempts[:2]] == [0.5, 0.75]


async def test_async_on_retry_is_awaited() -> None:
    """An async on_retry is awaited."""
    seen: list[int] = []

    async def on_retry(attempt: int, error: Exception, delay: float) -> None:
        await asyncio.sleep(0)
        seen.append(attempt)

    ex, _, _ = executor()
    await ex.execute_with_retry(Flaky(TimeoutError(), TimeoutError()), on_retry=on_retry)
    assert seen == [0, 1]


async def test_on_retry_failure_is_logged_and_retries_continue(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An exception in on_retry is logged with its traceback and the retries go on."""

    def on_retry(attempt: int, error: Exception, delay: float) -> None:
        raise ValueError(f"callback broke on {attempt}")

    ex, recorder, _ = executor()
    with caplog.at_level(logging.WARNING, logger="convstore"):
        result = await ex.execute_with_retry(
            Flaky(TimeoutError(), TimeoutError()), on_retry=on_retry
        )

    assert result == "ok"
    assert len(recorder.attempts) == 3
    failures = [r for r in caplog.records if "on_retry" in r.getMessage()]
    assert len(failures) == 2
    assert failures[0].name == "convstore"
    assert failures[0].exc_info is not None
    assert isinstance(failures[0].exc_info[1], ValueError)
    assert "callback broke on 0" in caplog.text


# --- Hooks and the recorder -------------------------------------------------------------------


async def test_recorder_is_called_once_per_attempt() -> None:
    """The store's record_attempt gets exactly one call per attempt."""
    flaky = Flaky(TimeoutError(), TimeoutError(), TimeoutError())
    ex, recorder, _ = executor()
    await ex.execute_with_retry(flaky)
    assert len(recorder.attempts) == flaky.calls == 4
    assert [r.attempt for r in recorder.attempts] == [1, 2, 3, 4]


async def test_sync_and_async_hooks_see_every_attempt_before_the_store() -> None:
    """Plain and async hooks get every attempt, in order, and the store comes last."""
    order: list[str] = []

    def sync_hook(attempt: Attempt) -> None:
        order.append(f"sync{attempt.attempt}")

    async def async_hook(attempt: Attempt) -> None:
        order.append(f"async{attempt.attempt}")

    class OrderedRecorder:
        async def record_attempt(self, attempt: Attempt) -> None:
            order.append(f"store{attempt.attempt}")

    hooks: list[AttemptHook] = [sync_hook, async_hook]
    ex = RetryExecutor(EXACT, store=OrderedRecorder(), sleep=FakeSleep(), hooks=hooks)
    await ex.execute_with_retry(Flaky(TimeoutError()))
    assert order == ["sync1", "async1", "store1", "sync2", "async2", "store2"]


async def test_hook_failure_does_not_change_the_result(caplog: pytest.LogCaptureFixture) -> None:
    """A raising hook is logged with its traceback; the result and other hooks are unaffected."""

    def broken(attempt: Attempt) -> None:
        raise RuntimeError("hook bug")

    recorder = FakeRecorder()
    ex = RetryExecutor(EXACT, store=recorder, sleep=FakeSleep(), hooks=[broken])
    with caplog.at_level(logging.WARNING, logger="convstore"):
        assert await ex.execute_with_retry(Flaky(TimeoutError())) == "ok"

    assert len(recorder.attempts) == 2
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2
    assert all(r.exc_info is not None for r in warnings)


async def test_recorder_failure_does_not_change_the_exception(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """When the store cannot write, the call's own exception is still the one raised."""
    store = FailingRecorder()
    error = KeyError("bug")
    ex = RetryExecutor(EXACT, store=store, sleep=FakeSleep())
    with caplog.at_level(logging.WARNING, logger="convstore"), pytest.raises(KeyError) as caught:
        await ex.execute_with_retry(Flaky(error))

    assert caught.value is error
    assert store.calls == 1
    assert "disk full" in caplog.text


async def test_recorder_failure_does_not_change_the_result() -> None:
    """When the store cannot write, the call still returns its result after retrying."""
    store = FailingRecorder()
    ex = RetryExecutor(EXACT, store=store, sleep=FakeSleep())
    assert await ex.execute_with_retry(Flaky(TimeoutError())) == "ok"
    assert store.calls == 2


# --- Retry-After ------------------------------------------------------------------------------


async def test_retry_after_seconds_lengthen_the_wait() -> None:
    """A Retry-After of 30 s beats the policy's 5 s first delay."""
    ex, recorder, sleep = executor()
    await ex.execute_with_retry(Flaky(RateLimitError({"Retry-After": "30"})))
    assert sleep.delays == [30.0]
    assert (recorder.attempts[0].retry_after_s, recorder.attempts[0].delay_s) == (30.0, 30.0)


async def test_short_retry_after_never_shortens_the_wait() -> None:
    """A Retry-After shorter than the policy's delay leaves the policy's delay."""
    ex, recorder, sleep = executor()
    await ex.execute_with_retry(Flaky(RateLimitError({"Retry-After": "1"})))
    assert sleep.delays == [5.0]
    assert recorder.attempts[0].retry_after_s == 1.0


async def test_retry_after_ms_is_honoured() -> None:
    """retry-after-ms: 45000 makes a 45 s wait."""
    ex, _, sleep = executor()
    await ex.execute_with_retry(Flaky(RateLimitError({"retry-after-ms": "45000"})))
    assert sleep.delays == [45.0]


async def test_retry_after_http_date_is_honoured() -> None:
    """A Retry-After HTTP date two minutes ahead makes a wait of (just under) two minutes."""
    when = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=120)
    ex, _, sleep = executor()
    await ex.execute_with_retry(Flaky(RateLimitError({"Retry-After": format_datetime(when, True)})))
    [delay] = sleep.delays
    assert 118.0 < delay <= 120.0


async def test_excessive_retry_after_gives_up_at_once() -> None:
    """A Retry-After above max_retry_after_s (300 s by default) gives up rather than wait less."""
    error = RateLimitError({"Retry-After": "3600"})
    ex, recorder, sleep = executor()
    with pytest.raises(RateLimitError) as caught:
        await ex.execute_with_retry(Flaky(error))
    assert caught.value is error
    assert sleep.delays == []
    row = recorder.attempts[0]
    assert (row.outcome, row.retry_after_s, row.delay_s) == (Outcome.GIVEUP, 3600.0, None)


async def test_max_retry_after_can_be_raised() -> None:
    """With max_retry_after_s=inf any Retry-After is waited out in full."""
    ex, _, sleep = executor(max_retry_after_s=math.inf)
    await ex.execute_with_retry(Flaky(RateLimitError({"Retry-After": "3600"})))
    assert sleep.delays == [3600.0]


# --- Configuration mistakes -------------------------------------------------------------------


@pytest.mark.parametrize("max_retries", [-1, 1.5, True])
async def test_bad_max_retries_raise_before_calling(max_retries: object) -> None:
    """A negative or non-int max_retries raises InvalidArgument and the function is not called."""
    flaky = Flaky()
    ex, recorder, _ = executor()
    with pytest.raises(InvalidArgument, match="max_retries"):
        await ex.execute_with_retry(flaky, max_retries=max_retries)  # type: ignore[call-overload]
    assert flaky.calls == 0
    assert recorder.attempts == []


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"store": object()}, "record_attempt"),
        ({"operation": ""}, "operation"),
        ({"max_retry_after_s": -1}, "max_retry_after_s"),
        ({"classifier": "strict"}, "classifier"),
    ],
)
def test_bad_executor_arguments_raise(kwargs: dict[str, object], match: str) -> None:
    """A store without record_attempt, an empty operation and the like raise InvalidArgument."""
    with pytest.raises(InvalidArgument, match=match):
        RetryExecutor(**kwargs)  # type: ignore[arg-type]  # wrong on purpose


def test_default_classifier_and_sleep() -> None:
    """Without arguments the executor uses a default ErrorClassifier and asyncio.sleep."""
    ex = RetryExecutor()
    assert isinstance(ex.classifier, ErrorClassifier)
    assert ex.classifier.default_backoff == BackoffConfig()
    assert ex._sleep is asyncio.sleep


# --- The decorator ----------------------------------------------------------------------------


async def test_decorator_retries_and_records() -> None:
    """@retry runs each call through an executor that records under the given operation."""
    recorder, sleep = FakeRecorder(), FakeSleep()
    failures = [TimeoutError()]

    @retry(classifier=EXACT, store=recorder, operation="llm.chat", sleep=sleep)
    async def chat(prompt: str, *, temperature: float = 0.0) -> str:
        """Answer the prompt."""
        if failures:
            raise failures.pop()
        return f"{prompt}@{temperature}"

    assert await chat("hi", temperature=0.5) == "hi@0.5"
    assert [r.outcome for r in recorder.attempts] == [Outcome.RETRY, Outcome.SUCCESS]
    assert {r.operation for r in recorder.attempts} == {"llm.chat"}
    assert sleep.delays == [0.5]


async def test_decorator_preserves_the_signature() -> None:
    """The decorated function keeps its name, docstring and signature."""

    async def original(prompt: str, *, max_retries: int = 1) -> str:
        """Say it."""
        return prompt

    decorated = retry()(original)
    assert decorated.__name__ == "original"
    assert decorated.__doc__ == "Say it."
    assert inspect.signature(decorated) == inspect.signature(original)
    assert inspect.iscoroutinefunction(decorated)


async def test_decorator_passes_arguments_named_like_its_options() -> None:
    """A function's own max_retries/on_retry arguments reach it untouched."""

    @retry(sleep=FakeSleep(), max_retries=0)
    async def echo(*, max_retries: int, on_retry: str) -> tuple[int, str]:
        return max_retries, on_retry

    assert await echo(max_retries=9, on_retry="x") == (9, "x")


async def test_decorator_max_retries_and_on_retry() -> None:
    """@retry(max_retries=..., on_retry=...) applies them to every call."""
    seen: list[int] = []
    calls: list[int] = []

    @retry(
        classifier=EXACT,
        sleep=FakeSleep(),
        max_retries=4,
        on_retry=lambda n, e, d: seen.append(n),
    )
    async def always_times_out() -> None:
        calls.append(1)
        raise TimeoutError

    with pytest.raises(TimeoutError):
        await always_times_out()
    assert len(calls) == 5
    assert seen == [0, 1, 2, 3]


async def test_decorator_default_operation_is_the_qualified_name() -> None:
    """Without operation=, rows name the decorated function as module.qualname."""
    recorder = FakeRecorder()

    @retry(store=recorder)
    async def answer() -> int:
        return 42

    assert await answer() == 42
    assert recorder.attempts[0].operation == (
        f"{__name__}.test_decorator_default_operation_is_the_qualified_name.<locals>.answer"
    )


def test_decorator_rejects_bad_max_retries() -> None:
    """@retry(max_retries=-1) raises InvalidArgument at decoration time."""
    with pytest.raises(InvalidArgument, match="max_retries"):
        retry(max_retries=-1)


def test_outcome_values_match_the_retry_events_column() -> None:
    """Outcome is a str enum with exactly the seven values of retry_events.outcome."""
    assert [o.value for o in Outcome] == [
        "success",
        "retry",
        "giveup",
        "non_retryable",
        "degraded",
        "fatal",
        "cancelled",
    ]
    assert str(Outcome.SUCCESS) == "success"
    assert isinstance(Outcome.SUCCESS, str)


async def test_rate_limits_are_waited_out_as_their_policy_says() -> None:
    """Three 429s without Retry-After: the executor waits 5, 10 and 20 s (the rate-limit
    policy's base, doubled each time, jitter centred), then succeeds."""
    sleep = FakeSleep()
    executor = RetryExecutor(EXACT, sleep=sleep)
    assert await executor.execute_with_retry(Flaky(*[RateLimitError() for _ in range(3)])) == "ok"
    assert sleep.delays == [5.0, 10.0, 20.0]
