"""tenacity, the real package, retrying with convstore's classifier and recording every attempt."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import tenacity
from retry_rows import ApiError, Sleeps, calls, flaky, rows

import convstore
from convstore.integrations.tenacity import (
    record_attempts,
    retry_if_retryable,
    stop_after_policy,
    wait_for_policy,
)


def fixed_jitter() -> float:
    return 0.5


async def test_rows_are_those_convstore_retry_writes(store: convstore.Store) -> None:
    """A 429 with Retry-After, a 503, then success: the same three rows, under one call_id each,
    whether convstore.retry or tenacity with record_attempts made the attempts."""
    classifier = convstore.ErrorClassifier(rand=fixed_jitter)
    errors = (ApiError(429, retry_after="7"), ApiError(503))
    ours = convstore.retry(store=store, operation="chat", classifier=classifier, sleep=Sleeps())
    assert await ours(flaky(*errors))() == "done"
    sleeps = Sleeps()
    theirs = tenacity.retry(
        sleep=sleeps, **record_attempts(store, operation="chat", classifier=classifier)
    )
    assert await theirs(flaky(*errors))() == "done"

    found = await rows(store)
    convstore_rows, tenacity_rows = calls(found)
    assert tenacity_rows == convstore_rows
    assert [row[2] for row in tenacity_rows] == ["retry", "retry", "success"]
    assert tenacity_rows[0][7] == 7.0  # retry_after_s
    assert sleeps.delays == [row[6] for row in tenacity_rows[:2]]
    assert sleeps.delays[0] >= 7.0
    assert all(row[-1] is not None and row[-1] >= 0 for row in found)
    (summary,) = await store.retry_summary()
    assert (summary.calls, summary.attempts, summary.retries) == (2, 6, 4)
    assert summary.successes_after_retry == 2


@pytest.mark.parametrize(
    ("error", "outcome", "error_type"),
    [
        (ApiError(400), "non_retryable", "non_retryable"),
        (ApiError(413), "degraded", "degraded"),
        (ApiError(402), "fatal", "fatal"),
    ],
)
async def test_errors_not_worth_retrying_end_the_call_at_once(
    store: convstore.Store, error: ApiError, outcome: str, error_type: str
) -> None:
    """The classifier stops tenacity at once; the one row says why, and the error is raised."""
    decorated = tenacity.retry(sleep=Sleeps(), **record_attempts(store, operation="chat"))
    with pytest.raises(type(error)):
        await decorated(flaky(error))()
    assert calls(await rows(store)) == [
        [("chat", 1, outcome, error_type, "retry_rows.ApiError", error.status_code, None, None)]
    ]


async def test_the_users_own_strategies_decide_and_the_rows_follow(store: convstore.Store) -> None:
    """With tenacity's stop_after_attempt(2) and wait_fixed(0.25), the first row waits 0.25 and
    the second gives up; reraise=True raises the error itself."""
    decorated = tenacity.retry(
        sleep=Sleeps(),
        reraise=True,
        **record_attempts(
            store,
            stop=tenacity.stop_after_attempt(2),
            wait=tenacity.wait_fixed(0.25),
        ),
    )
    with pytest.raises(ApiError):
        await decorated(flaky(ApiError(503), ApiError(503), ApiError(503)))()
    (call,) = calls(await rows(store))
    assert [(row[1], row[2], row[6]) for row in call] == [(1, "retry", 0.25), (2, "giveup", None)]
    assert call[0][0].endswith("flaky.<locals>.call")  # the function's module.qualname


async def test_a_result_the_user_retries_is_recorded_too(store: convstore.Store) -> None:
    """retry_if_result retries a result: its attempts are rows without an error."""
    results = iter([None, None, "done"])

    async def call() -> str | None:
        return next(results)

    decorated = tenacity.retry(
        sleep=Sleeps(),
        **record_attempts(
            store, operation="poll", retry=tenacity.retry_if_result(lambda r: r is None)
        ),
    )
    assert await decorated(call)() == "done"
    (found,) = calls(await rows(store))
    assert [(row[1], row[2], row[3]) for row in found] == [
        (1, "retry", None),
        (2, "retry", None),
        (3, "success", None),
    ]


async def test_a_cancelled_call_is_recorded_and_not_retried(store: convstore.Store) -> None:
    """A cancellation ends the call at once with a CANCELLED row, and propagates."""
    started = asyncio.Event()

    async def hangs() -> None:
        started.set()
        await asyncio.Event().wait()

    decorated = tenacity.retry(sleep=Sleeps(), **record_attempts(store, operation="hang"))
    task = asyncio.create_task(decorated(hangs)())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    (found,) = calls(await rows(store))
    assert [(row[1], row[2], row[4]) for row in found] == [
        (1, "cancelled", "asyncio.exceptions.CancelledError")
    ]


async def test_an_async_for_block_is_one_call(store: convstore.Store) -> None:
    """`async for attempt in AsyncRetrying(...)` records its attempts under one call_id."""
    call = flaky(ApiError(503))
    async for attempt in tenacity.AsyncRetrying(
        sleep=Sleeps(), **record_attempts(store, operation="block")
    ):
        with attempt:
            await call()
    (found,) = calls(await rows(store))
    assert [(row[0], row[1], row[2]) for row in found] == [
        ("block", 1, "retry"),
        ("block", 2, "success"),
    ]


def test_a_sync_function_is_refused_before_its_first_attempt(tmp_path: Any) -> None:
    """Attempts are written through the async store, so sync tenacity is a ConfigurationError."""
    ran: list[int] = []

    async def arguments() -> Any:
        async with convstore.connect(f"sqlite:///{tmp_path / 'c.db'}") as store:
            return record_attempts(store, operation="sync")

    # The arguments hold async strategies, which tenacity's sync overloads do not accept.
    @tenacity.retry(**asyncio.run(arguments()))  # type: ignore[untyped-decorator]
    def sync_call() -> None:
        ran.append(1)

    with pytest.raises(convstore.ConfigurationError, match="async calls only"):
        sync_call()
    assert ran == []


async def test_the_strategies_work_without_recording() -> None:
    """convstore's classifier as plain tenacity strategies: the retryable error is retried after
    its Retry-After, the fatal one ends the call."""
    sleeps = Sleeps()
    decorated = tenacity.retry(
        sleep=sleeps,
        retry=retry_if_retryable(),
        wait=wait_for_policy(),
        stop=stop_after_policy(max_retries=3),
        reraise=True,
    )
    assert await decorated(flaky(ApiError(429, retry_after="30"), ApiError(503)))() == "done"
    assert len(sleeps.delays) == 2
    assert sleeps.delays[0] >= 30
    with pytest.raises(ApiError):
        await decorated(flaky(ApiError(402)))()
    assert len(sleeps.delays) == 2
    with pytest.raises(ApiError):
        await decorated(flaky(*[ApiError(503)] * 5))()
    assert len(sleeps.delays) == 5  # three retries, then stop_after_policy's max_retries


async def test_stop_after_policy_gives_up_on_a_retry_after_past_the_limit() -> None:
    """A server asking for more than max_retry_after_s ends the call rather than waiting."""
    sleeps = Sleeps()
    decorated = tenacity.retry(
        sleep=sleeps,
        retry=retry_if_retryable(),
        stop=stop_after_policy(max_retry_after_s=60),
        reraise=True,
    )
    with pytest.raises(ApiError):
        await decorated(flaky(ApiError(429, retry_after="3600")))()
    assert sleeps.delays == []


async def test_testing_mode_waits_nothing_and_caps_the_attempts(store: convstore.Store) -> None:
    """Under set_testing(True, attempts=2), whatever the strategies: no wait, two attempts."""
    sleeps = Sleeps()
    decorated = tenacity.retry(
        sleep=sleeps,
        reraise=True,
        **record_attempts(store, operation="t", wait=tenacity.wait_fixed(60)),
    )
    with convstore.set_testing(True, attempts=2), pytest.raises(ApiError):
        await decorated(flaky(*[ApiError(503)] * 5))()
    assert sleeps.delays == [0.0]
    (found,) = calls(await rows(store))
    assert [(row[2], row[6]) for row in found] == [("retry", 0.0), ("giveup", None)]


@pytest.mark.parametrize(
    ("arguments", "fragment"),
    [
        ({"store": object()}, "store must have an async record_attempt"),
        ({"operation": ""}, "operation must be a non-empty str"),
        ({"classifier": "x"}, "classifier must be an ErrorClassifier"),
        ({"wait": 5}, "wait must be a tenacity strategy"),
        ({"session_id": ""}, "session_id"),
    ],
)
async def test_bad_arguments_are_named(
    store: convstore.Store, arguments: dict[str, Any], fragment: str
) -> None:
    """record_attempts refuses what it cannot use, naming it."""
    with pytest.raises(convstore.InvalidArgument, match=fragment):
        record_attempts(**{"store": store, **arguments})
