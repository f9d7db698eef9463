"""Shared cooldowns: a rate limit one call hits makes every call of its key, in any process on the
same database, wait it out; the deadline only moves later; the waits are in the rows."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import random
import subprocess
import sys
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from retry_rows import ApiError, Sleeps, flaky

import convstore
from convstore._storage import cooldowns as board

KEY = "anthropic:claude"


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
    writes holds the reader's attempts once that much time has passed, not before (the clock
    here is the test's)."""
    clock = [1000.0]
    monkeypatch.setattr(board, "monotonic", lambda: clock[0])
    async with convstore.connect(database_url) as reader, convstore.connect(database_url) as writer:
        assert await reader.cooldown_admission(KEY) is None
        await writer.extend_cooldown(KEY, 30, attempt())
        wait = await writer.cooldown_admission(KEY)  # its own process sees it at once
        assert wait is not None
        assert 29 < wait <= 30
        clock[0] += board.STALENESS_S * 0.9
        assert await reader.cooldown_admission(KEY) is None
        clock[0] += board.STALENESS_S * 0.2
        wait = await reader.cooldown_admission(KEY)
        assert wait is not None
        assert wait > 29


def test_a_cooldown_set_by_another_process_is_seen(database_url: str) -> None:
    """A child process extends a cooldown; a store in this process, which had read the key
    before, holds its next attempt once STALENESS_S has passed."""

    async def scenario() -> tuple[float | None, float | None]:
        async with convstore.connect(database_url) as store:
            before = await store.cooldown_admission(KEY)
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
            return before, await store.cooldown_admission(KEY)

    before, after = asyncio.run(scenario())
    assert before is None
    assert after is not None
    assert after > 50


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


async def test_a_rate_limited_key_is_paced_one_slot_at_a_time(store: convstore.Store) -> None:
    """After a rate limit asking for 0.5 s, attempts are given slots from the deadline on, each
    one interval after the last, the interval shrinking with each slot given; a refusal of a
    paced attempt doubles it."""
    until = await store.extend_cooldown(KEY, 0.5, attempt_asking(0.5))
    waits = [await store.cooldown_admission(KEY) for _ in range(5)]
    slots = [wait for wait in waits if wait is not None]
    assert len(slots) == 5
    first = (until - datetime.now(UTC)).total_seconds()
    assert abs(slots[0] - first) < 0.1
    gaps = [later - earlier for earlier, later in itertools.pairwise(slots)]
    expected = [0.5 * board.DECAY**k for k in range(4)]
    assert gaps == pytest.approx(expected, abs=0.05)
    (paced,) = await store.cooldowns()
    assert paced.interval_s == pytest.approx(0.5 * board.DECAY**5)
    admitted = datetime.now(UTC)
    await store.extend_cooldown(KEY, 0.5, attempt_asking(0.5), admitted_at=admitted)
    (doubled,) = await store.cooldowns()
    assert doubled.interval_s == pytest.approx(board.RAISE * 0.5 * board.DECAY**5)
    # An attempt given its slot before that raise does not raise the interval again.
    await store.extend_cooldown(KEY, 0.5, attempt_asking(0.5), admitted_at=admitted)
    (again,) = await store.cooldowns()
    assert again.interval_s == doubled.interval_s


async def test_concurrent_workers_never_share_a_slot(database_url: str) -> None:
    """Eight stores (as eight workers) take slots of one paced key at once: every slot is its
    own, each at least the shrinking interval after the one before."""
    stores = [await convstore.connect(database_url) for _ in range(8)]
    slots: list[float] = []

    async def worker(store: convstore.Store) -> None:
        for _ in range(5):
            wait = await store.cooldown_admission(KEY)
            assert wait is not None
            slots.append(time.time() + wait)

    try:
        await stores[0].extend_cooldown(KEY, 0.2, attempt_asking(0.2))
        await asyncio.gather(*(worker(store) for store in stores))
    finally:
        for store in stores:
            await store.close()
    slots.sort()
    smallest = 0.2 * board.DECAY ** len(slots)
    gaps = [later - earlier for earlier, later in itertools.pairwise(slots)]
    assert len(slots) == 40
    assert min(gaps) > smallest - 0.02  # the clocks read after each claim differ by a little


def attempt_asking(retry_after: float) -> convstore.Attempt:
    return dataclasses.replace(attempt(), retry_after_s=retry_after)


async def test_a_rate_limit_makes_the_next_call_of_the_key_wait_and_the_row_says_so(
    store: convstore.Store,
) -> None:
    """Call A gets a 429 asking for 0.3 s and retries after its own backoff, in the slot at the
    deadline. Call B, of the same key, is then paced: it waits for the next slot, and its
    sleeps and its row agree. Real (short) waits: the slots are on the wall clock."""
    sleeps: list[float] = []
    real_sleep = asyncio.sleep

    async def sleep(delay: float) -> None:
        sleeps.append(delay)
        await real_sleep(delay)

    rule = convstore.ErrorRule(
        convstore.ErrorType.RETRYABLE,
        status=429,
        backoff=convstore.BackoffConfig(100, 1000, 2.0, 0.0, 3),
        cooldown=True,
    )
    classifier = convstore.ErrorClassifier(rules=[rule])
    a = convstore.RetryExecutor(classifier, store=store, operation="a", limit_key=KEY, sleep=sleep)
    b = convstore.RetryExecutor(classifier, store=store, operation="b", limit_key=KEY, sleep=sleep)
    assert await a.execute_with_retry(flaky(ApiError(429, retry_after="0.3"))) == "done"
    a_sleeps = list(sleeps)
    assert await b.execute_with_retry(flaky()) == "done"
    rows = await events(store)
    assert [row[:3] for row in rows] == [
        ("a", 1, "retry"),
        ("a", 2, "success"),
        ("b", 1, "success"),
    ]
    assert a_sleeps[0] == rows[0][3] == pytest.approx(0.3)  # A's backoff: the server's ask
    assert rows[1][4] is None or rows[1][4] < 0.05  # its slot was the deadline it waited out
    (b_wait,) = sleeps[len(a_sleeps) :]
    assert rows[2][4] == b_wait
    assert 0.2 < b_wait < 0.35  # the next slot, one interval (0.3 s x DECAY) later
    (cooldown,) = await store.cooldowns()
    assert (cooldown.operation, cooldown.limit_key) == ("a", KEY)


async def test_the_default_key_is_the_operation(store: convstore.Store) -> None:
    """Without limit_key, calls of one operation share a cooldown, other operations do not."""
    sleeps = Sleeps()
    chat = convstore.RetryExecutor(store=store, operation="chat", sleep=sleeps)
    embed = convstore.RetryExecutor(store=store, operation="embed", sleep=sleeps)
    await chat.execute_with_retry(flaky(ApiError(529)))
    sleeps.delays.clear()
    await embed.execute_with_retry(flaky())
    assert sleeps.delays == []
    await chat.execute_with_retry(flaky())
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
    await executor.execute_with_retry(flaky(error))
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
    await executor.execute_with_retry(flaky(Throttled("slow down")))
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
    task = asyncio.create_task(executor.execute_with_retry(flaky()))
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
        assert await executor.execute_with_retry(flaky()) == "done"
    assert sleeps.delays == []


async def test_the_summary_adds_up_the_cooldown_waits(store: convstore.Store) -> None:
    await store.extend_cooldown(KEY, 10, attempt())
    executor = convstore.RetryExecutor(store=store, operation="op", limit_key=KEY, sleep=Sleeps())
    await executor.execute_with_retry(flaky())
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
