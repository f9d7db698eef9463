"""Shared cooldowns: a rate limit one call hits makes every call of its key, in any process on the
same database, wait it out; the deadline only moves later; the waits are in the rows."""

from __future__ import annotations

import asyncio
import random
import subprocess
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from retry_rows import ApiError, Sleeps

import convstore
from convstore._storage import cooldowns as board

KEY = "anthropic:claude"


def failing(*errors: BaseException) -> Callable[[], Awaitable[str]]:
    left = list(errors)

    async def call() -> str:
        if left:
            raise left.pop(0)
        return "done"

    return call


def attempt(call_id: str = "c1") -> convstore.Attempt:
    """A failed attempt asking for a cooldown."""
    return convstore.Attempt(
        call_id=call_id,
        session_id=None,
        operation="llm.chat",
        attempt=1,
        outcome=convstore.Outcome.RETRY,
        error_type=convstore.ErrorType.RETRYABLE,
        error_class="anthropic.RateLimitError",
        error_message="rate limited",
        status_code=429,
        delay_s=5.0,
        retry_after_s=5.0,
        elapsed_s=0.1,
        created_at=datetime.now(UTC),
    )


async def events(store: convstore.Store) -> list[tuple[Any, ...]]:
    async with store.engine.connect() as conn:
        query = (
            "SELECT operation, attempt, outcome, delay_s, cooldown_wait_s, error_class"
            " FROM retry_events ORDER BY id"
        )
        return [tuple(row) for row in await conn.exec_driver_sql(query)]


async def test_a_cooldown_only_ever_moves_later(store: convstore.Store) -> None:
    """An earlier deadline written after a later one changes nothing, whoever writes it."""
    later = await store.extend_cooldown(KEY, 60, attempt("later"))
    await store.extend_cooldown(KEY, 1, attempt("earlier"))
    (cooldown,) = await store.cooldowns()
    assert (cooldown.until, cooldown.call_id) == (later, "later")
    assert cooldown.reason == "HTTP 429 on anthropic.RateLimitError"
    longer = await store.extend_cooldown(KEY, 120, attempt("longer"))
    (cooldown,) = await store.cooldowns()
    assert (cooldown.until, cooldown.call_id) == (longer, "longer")


async def test_concurrent_writers_leave_the_latest_deadline(database_url: str) -> None:
    """Eight stores (eight connection pools, as eight workers) extend one key at once with
    random lengths, many times: the stored deadline is the latest any of them asked for."""
    stores = [await convstore.connect(database_url) for _ in range(8)]
    asked: list[datetime] = []

    async def worker(store: convstore.Store, n: int) -> None:
        for i in range(10):
            until = await store.extend_cooldown(KEY, random.uniform(1, 300), attempt(f"{n}-{i}"))
            asked.append(until)

    try:
        await asyncio.gather(*(worker(store, n) for n, store in enumerate(stores)))
        (cooldown,) = await stores[0].cooldowns()
        assert cooldown.until == max(asked)
    finally:
        for store in stores:
            await store.close()


async def test_another_process_sees_a_cooldown_within_the_staleness_bound(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reader trusts what it read for STALENESS_S, then reads again: a cooldown another store
    writes is seen once that much time has passed, not before (the clock here is the test's)."""
    clock = [1000.0]
    monkeypatch.setattr(board, "monotonic", lambda: clock[0])
    async with convstore.connect(database_url) as reader, convstore.connect(database_url) as writer:
        assert await reader.cooldown_until(KEY) is None
        until = await writer.extend_cooldown(KEY, 30, attempt())
        assert await writer.cooldown_until(KEY) == until  # its own process sees it at once
        clock[0] += board.STALENESS_S * 0.9
        assert await reader.cooldown_until(KEY) is None
        clock[0] += board.STALENESS_S * 0.1
        assert await reader.cooldown_until(KEY) == until


def test_a_cooldown_set_by_another_process_is_seen(database_url: str) -> None:
    """A child process extends a cooldown; a store in this process, which had read the key
    before, sees it once STALENESS_S has passed."""

    async def read(store: convstore.Store) -> datetime | None:
        return await store.cooldown_until(KEY)

    async def scenario() -> tuple[datetime | None, datetime | None]:
        async with convstore.connect(database_url) as store:
            before = await read(store)
            child = await asyncio.to_thread(
                subprocess.run,
                [sys.executable, "-c", CHILD, database_url, KEY],
                capture_output=True,
                text=True,
                check=False,
                timeout=60,
            )
            assert child.returncode == 0, child.stderr
            await asyncio.sleep(board.STALENESS_S)
            return before, await read(store)

    before, after = asyncio.run(scenario())
    assert before is None
    assert after is not None
    assert after > datetime.now(UTC) + timedelta(seconds=50)


CHILD = """
import asyncio, sys
from datetime import UTC, datetime
import convstore

async def main(url, key):
    async with convstore.connect(url, migrate=False) as store:
        attempt = convstore.Attempt(
            call_id="child", session_id=None, operation="llm.chat", attempt=1,
            outcome=convstore.Outcome.RETRY, error_type=convstore.ErrorType.RETRYABLE,
            error_class=None, error_message=None, status_code=429, delay_s=60.0,
            retry_after_s=60.0, elapsed_s=0.1, created_at=datetime.now(UTC),
        )
        await store.extend_cooldown(key, 60, attempt)

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


async def test_a_rate_limit_makes_the_next_call_of_the_key_wait_and_the_row_says_so(
    store: convstore.Store,
) -> None:
    """Call A gets a 429 asking for 20 s: it retries after its own backoff (no cooldown wait of
    its own). Call B, of the same key, then waits the cooldown before its first attempt; its
    sleeps and its rows agree, apart from the backoff delays."""
    a_sleeps, b_sleeps = Sleeps(), Sleeps()
    a = convstore.RetryExecutor(store=store, operation="a", limit_key=KEY, sleep=a_sleeps)
    b = convstore.RetryExecutor(store=store, operation="b", limit_key=KEY, sleep=b_sleeps)
    assert await a.execute_with_retry(failing(ApiError(429, retry_after="20"))) == "done"
    assert await b.execute_with_retry(failing()) == "done"
    rows = await events(store)
    assert [row[:3] for row in rows] == [
        ("a", 1, "retry"),
        ("a", 2, "success"),
        ("b", 1, "success"),
    ]
    assert a_sleeps.delays == [rows[0][3]]  # A waited its backoff only
    assert rows[0][4] is None
    assert rows[1][4] is None
    (waited,) = b_sleeps.delays
    assert rows[2][4] == waited
    assert 19 < waited <= 20 + board_spread(20)
    (cooldown,) = await store.cooldowns()
    assert cooldown.operation == "a"
    assert cooldown.limit_key == KEY


def board_spread(remaining: float) -> float:
    from convstore._retry.cooldown import spread_s

    return spread_s(remaining, lambda: 1.0)


async def test_the_default_key_is_the_operation(store: convstore.Store) -> None:
    """Without limit_key, calls of one operation share a cooldown, other operations do not."""
    sleeps = Sleeps()
    chat = convstore.RetryExecutor(store=store, operation="chat", sleep=sleeps)
    embed = convstore.RetryExecutor(store=store, operation="embed", sleep=sleeps)
    await chat.execute_with_retry(failing(ApiError(529)))
    sleeps.delays.clear()
    await embed.execute_with_retry(failing())
    assert sleeps.delays == []
    await chat.execute_with_retry(failing())
    assert len(sleeps.delays) == 1
    assert [c.limit_key for c in await store.cooldowns()] == ["chat"]


@pytest.mark.parametrize(
    ("error", "cools"),
    [
        (ApiError(429), True),
        (ApiError(529), True),
        (ApiError(503), True),
        (ApiError(500), False),
        (TimeoutError("read timed out"), False),
    ],
)
async def test_only_rate_limits_and_overloads_cool_the_key_down(
    store: convstore.Store, error: Exception, cools: bool
) -> None:
    executor = convstore.RetryExecutor(store=store, limit_key=KEY, sleep=Sleeps())
    await executor.execute_with_retry(failing(error))
    assert bool(await store.cooldowns()) is cools


async def test_a_rule_can_say_an_error_is_a_rate_limit(store: convstore.Store) -> None:
    """ErrorRule(cooldown=True) makes its errors cool the key down."""

    class Throttled(Exception):
        pass

    rule = convstore.ErrorRule(
        convstore.ErrorType.RETRYABLE,
        exception=Throttled,
        backoff=convstore.BackoffConfig(),
        cooldown=True,
    )
    executor = convstore.RetryExecutor(
        convstore.ErrorClassifier(rules=[rule]), store=store, limit_key=KEY, sleep=Sleeps()
    )
    await executor.execute_with_retry(failing(Throttled("slow down")))
    assert [c.limit_key for c in await store.cooldowns()] == [KEY]


async def test_a_cooldown_longer_than_allowed_gives_up_before_any_attempt(
    store: convstore.Store,
) -> None:
    """A key cooling down for an hour makes a call allowing 60 s give up at once, with a row."""
    await store.extend_cooldown(KEY, 3600, attempt())
    made: list[int] = []

    async def call() -> str:
        made.append(1)
        return "done"

    executor = convstore.RetryExecutor(
        store=store, limit_key=KEY, max_retry_after_s=60, sleep=Sleeps()
    )
    with pytest.raises(convstore.CooldownTooLong, match="cooling down for 3"):
        await executor.execute_with_retry(call)
    assert made == []
    (row,) = await events(store)
    assert row[1:3] == (1, "giveup")
    assert row[5] == "convstore.exceptions.CooldownTooLong"


async def test_a_cancellation_during_a_cooldown_wait_is_recorded(store: convstore.Store) -> None:
    """Cancelled while waiting for the cooldown, the call's row is `cancelled`, with the wait."""
    await store.extend_cooldown(KEY, 30, attempt())
    waiting = asyncio.Event()

    async def sleep(delay: float) -> None:
        waiting.set()
        await asyncio.sleep(3600)

    executor = convstore.RetryExecutor(store=store, limit_key=KEY, sleep=sleep)
    task = asyncio.create_task(executor.execute_with_retry(failing()))
    await waiting.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    (row,) = await events(store)
    assert row[1:3] == (1, "cancelled")
    assert row[4] is not None
    assert row[4] >= 0


async def test_testing_mode_waits_for_no_cooldown(store: convstore.Store) -> None:
    await store.extend_cooldown(KEY, 30, attempt())
    sleeps = Sleeps()
    executor = convstore.RetryExecutor(store=store, limit_key=KEY, sleep=sleeps)
    with convstore.set_testing(True):
        assert await executor.execute_with_retry(failing()) == "done"
    assert sleeps.delays == []


async def test_the_summary_adds_up_the_cooldown_waits(store: convstore.Store) -> None:
    await store.extend_cooldown(KEY, 10, attempt())
    executor = convstore.RetryExecutor(store=store, operation="op", limit_key=KEY, sleep=Sleeps())
    await executor.execute_with_retry(failing())
    (summary,) = await store.retry_summary(operation="op")
    (row,) = await events(store)
    assert summary.total_cooldown_wait_s == row[4]
    assert summary.total_cooldown_wait_s > 9


@pytest.mark.parametrize(
    ("limit_key", "fragment"),
    [("", "limit_key must be a non-empty str"), ("k" * 256, "at most 255"), (7, "limit_key")],
)
async def test_bad_limit_keys_are_named(
    store: convstore.Store, limit_key: object, fragment: str
) -> None:
    with pytest.raises(convstore.InvalidArgument, match=fragment):
        convstore.RetryExecutor(store=store, limit_key=limit_key)  # type: ignore[arg-type]
    with pytest.raises(convstore.InvalidArgument, match=fragment):
        await store.cooldown_until(limit_key)  # type: ignore[arg-type]


def test_a_limit_key_needs_a_store_that_keeps_cooldowns() -> None:
    class Recorder:
        async def record_attempt(self, attempt: convstore.Attempt) -> None:
            pass

    with pytest.raises(convstore.InvalidArgument, match="keeps shared cooldowns"):
        convstore.RetryExecutor(store=Recorder(), limit_key=KEY)
    with pytest.raises(convstore.InvalidArgument, match="keeps shared cooldowns"):
        convstore.RetryExecutor(limit_key=KEY)
