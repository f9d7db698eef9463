"""stamina, the real package, deciding with convstore's classifier and recording its retries."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import stamina
from retry_rows import ApiError, calls, rows
from stamina.instrumentation import get_on_retry_hooks, set_on_retry_hooks

import convstore
from convstore.integrations.stamina import RecordAttempts, retry_on


@pytest.fixture
async def hook(store: convstore.Store) -> AsyncIterator[RecordAttempts]:
    """A RecordAttempts on the store, installed as stamina's only hook for the test."""
    previous = get_on_retry_hooks()
    hook = RecordAttempts(store, session_id="s1")
    set_on_retry_hooks([hook])
    try:
        yield hook
    finally:
        set_on_retry_hooks(list(previous))


@pytest.fixture
def no_waits() -> Iterator[None]:
    """stamina's own testing mode: no backoff, three attempts."""
    with stamina.set_testing(True, attempts=3):
        yield


def flaky(*errors: BaseException) -> Callable[[], Awaitable[str]]:
    left = list(errors)

    @stamina.retry(on=retry_on(), attempts=3)
    async def chat() -> str:
        if left:
            raise left.pop(0)
        return "done"

    return chat


@pytest.mark.usefixtures("no_waits")
async def test_each_scheduled_retry_is_a_row_of_its_call(
    store: convstore.Store, hook: RecordAttempts
) -> None:
    """Two failures then success: two RETRY rows sharing a call_id, classified, the first with
    no elapsed_s (stamina does not say when the call began), the second timed."""
    assert await flaky(ApiError(503), ApiError(429))() == "done"
    await hook.flush()
    found = await rows(store)
    (call,) = calls(found)
    assert [(row[1], row[2], row[3], row[5]) for row in call] == [
        (1, "retry", "retryable", 503),
        (2, "retry", "retryable", 429),
    ]
    assert call[0][0].endswith("flaky.<locals>.chat")
    assert found[0][-1] is None
    assert found[1][-1] is not None
    assert found[1][-1] >= 0
    async with store.engine.connect() as conn:
        sessions = (
            await conn.exec_driver_sql("SELECT DISTINCT session_id FROM retry_events")
        ).all()
    assert sessions == [("s1",)]


@pytest.mark.usefixtures("no_waits")
async def test_separate_and_concurrent_calls_get_their_own_call_id(
    store: convstore.Store, hook: RecordAttempts
) -> None:
    """Calls one after the other, and calls in concurrent tasks, are never merged."""
    await flaky(ApiError(503))()
    await flaky(ApiError(503))()
    await asyncio.gather(*(flaky(ApiError(503), ApiError(503))() for _ in range(3)))
    await hook.flush()
    grouped = calls(await rows(store))
    assert sorted(len(call) for call in grouped) == [1, 1, 2, 2, 2]
    # Written in the background, a call's rows may commit in any order: `attempt` orders them.
    assert all(sorted(row[1] for row in call) == list(range(1, len(call) + 1)) for call in grouped)


async def test_retry_on_waits_what_the_server_asks(
    store: convstore.Store, hook: RecordAttempts
) -> None:
    """Outside testing mode, a 429 with Retry-After makes stamina wait exactly that long, and
    the row says so."""
    assert await flaky(ApiError(429, retry_after="0.05"))() == "done"
    await hook.flush()
    ((row,),) = calls(await rows(store))
    assert (row[2], row[6], row[7]) == ("retry", 0.05, 0.05)


@pytest.mark.usefixtures("no_waits")
@pytest.mark.parametrize("status", [400, 402, 413])
async def test_retry_on_stops_at_once_on_what_is_not_retryable(
    store: convstore.Store, hook: RecordAttempts, status: int
) -> None:
    """Fatal, degraded and non-retryable errors are raised on the first attempt: no retry, and so
    (stamina reporting scheduled retries only) no row."""
    with pytest.raises(ApiError):
        await flaky(ApiError(status), ApiError(status))()
    await hook.flush()
    assert await rows(store) == []


def test_retry_on_answers_as_stamina_expects() -> None:
    """False, True, or the seconds the server asked for, within max_retry_after_s."""
    on = retry_on(max_retry_after_s=60)
    assert on(ApiError(402)) is False
    assert on(ApiError(503)) is True
    assert on(ApiError(429, retry_after="12")) == 12.0
    assert on(ApiError(429, retry_after="3600")) is False
    with pytest.raises(convstore.InvalidArgument, match="max_retry_after_s"):
        retry_on(max_retry_after_s=-1)


def sync_flaky(*errors: Exception) -> Callable[[], str]:
    """A sync function retried by stamina on convstore's classifier, raising `errors` in turn."""
    left = list(errors)

    @stamina.retry(on=retry_on(), attempts=2)
    def sync_chat() -> str:
        if left:
            raise left.pop(0)
        return "done"

    return sync_chat


def test_a_sync_call_is_written_through_the_stores_loop(tmp_path: Path) -> None:
    """A sync stamina call records through `loop`, the event loop the store runs on."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    def on_loop(awaitable: Awaitable[Any]) -> Any:
        async def run() -> Any:
            return await awaitable

        return asyncio.run_coroutine_threadsafe(run(), loop).result(timeout=30)

    store = on_loop(convstore.connect(f"sqlite:///{tmp_path / 'sync.db'}"))
    previous = get_on_retry_hooks()
    set_on_retry_hooks([RecordAttempts(store, loop=loop)])
    sync_chat = sync_flaky(ApiError(503))
    try:
        with stamina.set_testing(True, attempts=2):
            assert sync_chat() == "done"
        found = on_loop(rows(store))
        assert [(row[2], row[3]) for row in found] == [(1, "retry")]
    finally:
        set_on_retry_hooks(list(previous))
        on_loop(store.close())
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()


def test_a_sync_call_without_a_loop_is_logged_not_lost_silently(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Without a loop to write through, the hook logs an error naming the attempt and the fix,
    and the call itself is unaffected."""

    class Recorder:
        async def record_attempt(self, attempt: convstore.Attempt) -> None:
            raise AssertionError("never called")

    previous = get_on_retry_hooks()
    set_on_retry_hooks([RecordAttempts(Recorder())])
    sync_chat = sync_flaky(ApiError(503))
    try:
        with stamina.set_testing(True, attempts=2), caplog.at_level(logging.ERROR, "convstore"):
            assert sync_chat() == "done"
    finally:
        set_on_retry_hooks(list(previous))
    assert "not recorded" in caplog.text
    assert "RecordAttempts(loop=...)" in caplog.text


@pytest.mark.parametrize(
    ("arguments", "fragment"),
    [
        ({"store": object()}, "store must have an async record_attempt"),
        ({"classifier": 1}, "classifier must be an ErrorClassifier"),
        ({"loop": "loop"}, "loop must be an asyncio event loop"),
        ({"session_id": ""}, "session_id"),
    ],
)
async def test_bad_arguments_are_named(
    store: convstore.Store, arguments: dict[str, Any], fragment: str
) -> None:
    with pytest.raises(convstore.InvalidArgument, match=fragment):
        RecordAttempts(**{"store": store, **arguments})
