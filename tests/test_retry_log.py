"""The retry executor writing every attempt to the store, and the summary read back from it."""

from __future__ import annotations

import asyncio
import itertools
import logging
import sqlite3
import threading
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import convstore
from convstore._validate import storable, storable_text


class FakeResponse:
    """Like httpx.Response: a status code and headers."""

    def __init__(self, status_code: int, headers: Mapping[str, str] | None = None) -> None:
        self.status_code = status_code
        self.headers = dict(headers or {})


class RateLimitError(Exception):
    """Shaped like anthropic.RateLimitError: a status and a response with headers."""

    def __init__(self, retry_after: str | None = None) -> None:
        super().__init__("Error code: 429 - rate_limit_error (key sk-ant-api03-abcdefghijklmnop)")
        self.status_code = 429
        self.response = FakeResponse(429, {"retry-after": retry_after} if retry_after else {})


async def no_sleep(delay: float) -> None:
    """An injected sleep that returns at once."""


def flaky(failures: list[Exception]) -> Any:
    """An async function that raises the given errors in turn, then returns "ok"."""
    remaining = list(failures)

    async def call() -> str:
        if remaining:
            raise remaining.pop(0)
        return "ok"

    return call


async def rows(store: convstore.Store) -> list[dict[str, Any]]:
    """Every retry_events row, oldest first."""
    async with store.engine.connect() as conn:
        result = await conn.exec_driver_sql("SELECT * FROM retry_events ORDER BY id")
        return [dict(row._mapping) for row in result]


async def test_every_attempt_becomes_a_row(store: convstore.Store) -> None:
    """Fail, fail, succeed writes three rows sharing one call_id, with waits on the failures."""
    executor = convstore.RetryExecutor(
        store=store, session_id="s1", operation="llm.chat", sleep=no_sleep
    )
    fn = flaky([RateLimitError(retry_after="7"), TimeoutError("read timed out")])
    assert await executor.execute_with_retry(fn) == "ok"
    logged = await rows(store)
    assert [r["attempt"] for r in logged] == [1, 2, 3]
    assert [r["outcome"] for r in logged] == ["retry", "retry", "success"]
    assert len({r["call_id"] for r in logged}) == 1
    assert {r["session_id"] for r in logged} == {"s1"}
    assert {r["operation"] for r in logged} == {"llm.chat"}
    first, second, third = logged
    assert first["error_type"] == "retryable"
    assert first["error_class"].endswith("test_retry_log.RateLimitError")
    assert first["status_code"] == 429
    assert first["retry_after_s"] == 7.0
    assert first["delay_s"] >= 7.0
    assert "sk-ant-api03-abcdefghijklmnop" not in first["error_message"]
    assert second["error_class"] == "builtins.TimeoutError"
    assert second["delay_s"] is not None
    assert third["error_type"] is None
    assert third["delay_s"] is None
    assert all(r["elapsed_s"] >= 0 for r in logged)


async def test_a_give_up_is_logged_and_the_original_error_raised(store: convstore.Store) -> None:
    """When retries run out the last row says giveup and the caller gets the original error."""
    executor = convstore.RetryExecutor(store=store, sleep=no_sleep)
    error = TimeoutError("still down")
    fn = flaky([TimeoutError("down"), error])
    with pytest.raises(TimeoutError) as info:
        await executor.execute_with_retry(fn, max_retries=1)
    assert info.value is error
    logged = await rows(store)
    assert [r["outcome"] for r in logged] == ["retry", "giveup"]
    assert logged[-1]["delay_s"] is None
    assert logged[0]["operation"].endswith("flaky.<locals>.call")


async def test_the_decorator_logs_to_the_store(store: convstore.Store) -> None:
    """@convstore.retry(store=...) logs each attempt of each call."""
    failures = [RateLimitError()]

    @convstore.retry(store=store, operation="llm.chat", sleep=no_sleep)
    async def chat(prompt: str) -> str:
        if failures:
            raise failures.pop()
        return prompt.upper()

    assert await chat("hi") == "HI"
    assert await chat("again") == "AGAIN"
    logged = await rows(store)
    assert [(r["attempt"], r["outcome"]) for r in logged] == [
        (1, "retry"),
        (2, "success"),
        (1, "success"),
    ]
    assert len({r["call_id"] for r in logged}) == 2


async def test_a_failing_log_leaves_the_result_alone(
    store: convstore.Store, caplog: pytest.LogCaptureFixture
) -> None:
    """With the log table gone the call still returns its result, and a warning is logged."""
    async with store.engine.begin() as conn:
        await conn.exec_driver_sql("DROP TABLE retry_events")
    executor = convstore.RetryExecutor(store=store, sleep=no_sleep)
    with caplog.at_level(logging.WARNING, logger="convstore"):
        assert await executor.execute_with_retry(flaky([TimeoutError()])) == "ok"
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2
    assert all(r.exc_info is not None for r in warnings)
    assert isinstance(warnings[0].exc_info[1], convstore.StorageError)  # type: ignore[index]


async def test_writing_a_row_does_not_block_other_tasks(tmp_path: Path) -> None:
    """While a row waits for another process's write lock, other tasks keep running."""
    path = tmp_path / "blocked.db"
    async with convstore.connect(f"sqlite:///{path}") as store:
        executor = convstore.RetryExecutor(store=store, sleep=no_sleep)
        blocker = sqlite3.connect(path, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")
        released = threading.Event()
        ticked = asyncio.Event()

        async def ticker() -> None:
            ticks = 0
            while not released.is_set():
                ticks += 1
                if ticks == 200:
                    ticked.set()
                await asyncio.sleep(0)

        ticking = asyncio.create_task(ticker())
        call = asyncio.create_task(executor.execute_with_retry(flaky([])))
        await ticked.wait()  # 200 turns of another task while the call waits for the lock
        assert not call.done()
        blocker.rollback()
        blocker.close()
        assert await call == "ok"
        released.set()
        await ticking
        assert len(await rows(store)) == 1


def attempt(
    call: str,
    number: int,
    outcome: str,
    *,
    operation: str = "llm.chat",
    error_type: str | None = "retryable",
    delay: float | None = None,
    at: datetime,
) -> convstore.Attempt:
    """A hand-made attempt, for a history with known figures."""
    return convstore.Attempt(
        call_id=call,
        session_id=None,
        operation=operation,
        attempt=number,
        outcome=convstore.Outcome(outcome),
        error_type=None if error_type is None else convstore.ErrorType(error_type),
        error_class=None if error_type is None else "anthropic.RateLimitError",
        error_message=None,
        status_code=None if error_type is None else 429,
        delay_s=delay,
        retry_after_s=None,
        elapsed_s=0.25,
        created_at=at,
    )


HOUR_AGO = datetime.now(UTC) - timedelta(hours=1)
HISTORY = [
    # Call a: two rate-limit retries, then success.
    attempt("a", 1, "retry", delay=5.0, at=HOUR_AGO),
    attempt("a", 2, "retry", delay=10.0, at=HOUR_AGO),
    attempt("a", 3, "success", error_type=None, at=HOUR_AGO),
    # Call b: one retry, then a give-up.
    attempt("b", 1, "retry", delay=1.0, at=HOUR_AGO),
    attempt("b", 2, "giveup", at=HOUR_AGO),
    # Call c: first-time success.
    attempt("c", 1, "success", error_type=None, at=HOUR_AGO),
    # Call d: fatal at once, on another operation.
    attempt("d", 1, "fatal", operation="llm.embed", error_type="fatal", at=HOUR_AGO),
    # Call e: long ago, a retry and a success.
    attempt("e", 1, "retry", delay=100.0, at=HOUR_AGO - timedelta(days=3)),
    attempt("e", 2, "success", error_type=None, at=HOUR_AGO - timedelta(days=3)),
]


@pytest.fixture
async def history(store: convstore.Store) -> convstore.Store:
    """The store with HISTORY recorded."""
    for entry in HISTORY:
        await store.record_attempt(entry)
    return store


async def test_summary_counts_per_operation_and_error_type(history: convstore.Store) -> None:
    """The summary counts calls, attempts, retries, give-ups, late successes and waits."""
    summary = await history.retry_summary()
    by_key = {(s.operation, s.error_type): s for s in summary}
    assert list(by_key) == [("llm.chat", None), ("llm.chat", "retryable"), ("llm.embed", "fatal")]
    first_time = by_key["llm.chat", None]
    assert (first_time.calls, first_time.attempts, first_time.successes_after_retry) == (1, 1, 0)
    assert first_time.p95_delay_s is None
    retried = by_key["llm.chat", "retryable"]
    assert retried.calls == 3
    assert retried.attempts == 7
    assert retried.retries == 4
    assert retried.giveups == 1
    assert retried.successes_after_retry == 2
    assert retried.total_delay_s == pytest.approx(116.0)
    assert retried.p95_delay_s == 100.0
    fatal = by_key["llm.embed", "fatal"]
    assert (fatal.calls, fatal.attempts, fatal.retries, fatal.total_delay_s) == (1, 1, 0, 0.0)


async def test_summary_since_and_operation(history: convstore.Store) -> None:
    """`since` drops older attempts and `operation` keeps one operation."""
    recent = await history.retry_summary(
        since=HOUR_AGO - timedelta(minutes=1), operation="llm.chat"
    )
    by_type = {s.error_type: s for s in recent}
    assert set(by_type) == {None, "retryable"}
    assert by_type["retryable"].calls == 2
    assert by_type["retryable"].total_delay_s == pytest.approx(16.0)
    assert by_type["retryable"].p95_delay_s == 10.0
    assert await history.retry_summary(operation="nothing") == []


async def test_summary_rejects_a_naive_since(store: convstore.Store) -> None:
    """A naive `since` raises InvalidArgument rather than guessing its zone."""
    with pytest.raises(convstore.InvalidArgument, match="timezone-aware"):
        await store.retry_summary(since=datetime(2026, 1, 1))


async def test_record_attempt_rejects_other_objects(store: convstore.Store) -> None:
    """record_attempt takes Attempt objects only."""
    with pytest.raises(convstore.InvalidArgument, match="Attempt"):
        await store.record_attempt({"call_id": "x"})  # type: ignore[arg-type]


def test_a_bad_session_id_is_refused_up_front() -> None:
    """An executor with a session id that cannot be stored raises InvalidSessionId at once."""
    with pytest.raises(convstore.InvalidSessionId):
        convstore.RetryExecutor(session_id="")


# -- text from outside --------------------------------------------------------------------------

_ANY_CHARACTER = st.one_of(
    st.characters(),  # all of Unicode but surrogates
    st.characters(categories=["Cs"]),  # lone surrogates
    st.just("\x00"),
)
_OUTSIDE_TEXT = st.text(_ANY_CHARACTER, min_size=1, max_size=30)
_examples = itertools.count()


@settings(
    max_examples=40,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    operation=_OUTSIDE_TEXT,
    message=_OUTSIDE_TEXT,
    class_name=_OUTSIDE_TEXT,
    module=_OUTSIDE_TEXT,
    owner=_OUTSIDE_TEXT,
)
async def test_every_attempt_is_stored_whatever_text_it_carries(
    store: convstore.Store, operation: str, message: str, class_name: str, module: str, owner: str
) -> None:
    """Operations, error messages and classes, reasons and owners holding any character (NUL
    and lone surrogates included) are stored, with U+FFFD where a character could not be:
    every attempt has its row, and the summary counts each one."""
    n = next(_examples)
    operation = f"{n}:{operation}"  # a summary row of its own per example
    error = type("Failure", (Exception,), {"__qualname__": class_name, "__module__": module})
    rule = convstore.ErrorRule(convstore.ErrorType.RETRYABLE, exception=error)
    executor = convstore.RetryExecutor(
        convstore.ErrorClassifier(rules=[rule]), store=store, operation=operation, sleep=no_sleep
    )
    failures = [error(message), error(message)]

    async def call() -> str:
        if failures:
            raise failures.pop()
        return "done"

    assert await executor.execute_with_retry(call) == "done"
    [row] = await store.retry_summary(operation=storable(operation))
    assert (row.attempts, row.retries, row.successes_after_retry) == (3, 2, 1)

    session = f"session-{n}"
    with pytest.raises(error):
        async with store.running(session, owner=owner) as lease:
            raise error(message)
    assert lease.owner == storable(owner)
    [history] = await store.interruptions(session)
    assert history.reason is not None
    assert storable_text(history.reason)
    assert history.reason.startswith(storable(f"{module}.{class_name}"))
