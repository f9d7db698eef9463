"""Testing mode: every convstore retry in the process waits no time and tries a set number of
times, recorded as usual, until it is turned off."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import pytest
from retry_rows import ApiError, Sleeps

import convstore


def failing(times: int) -> tuple[list[int], Callable[[], Awaitable[str]]]:
    """A call failing `times` times with a retryable 503, then returning "done"."""
    made: list[int] = []

    async def call() -> str:
        made.append(1)
        if len(made) <= times:
            raise ApiError(503)
        return "done"

    return made, call


async def test_the_executor_waits_nothing_and_stops_after_the_testing_attempts() -> None:
    """With attempts=2 a call that would be retried five times makes two attempts, waiting 0."""
    sleeps = Sleeps()
    attempts: list[convstore.Attempt] = []
    executor = convstore.RetryExecutor(sleep=sleeps, hooks=[attempts.append])
    made, call = failing(5)
    with convstore.set_testing(True, attempts=2), pytest.raises(ApiError):
        await executor.execute_with_retry(call, max_retries=10)
    assert len(made) == 2
    assert sleeps.delays == [0.0]
    assert [(a.outcome, a.delay_s) for a in attempts] == [
        (convstore.Outcome.RETRY, 0.0),
        (convstore.Outcome.GIVEUP, None),
    ]


async def test_the_default_is_one_attempt_and_the_decorator_obeys_too() -> None:
    """set_testing(True) allows one attempt: no retry at all."""
    made, call = failing(1)
    decorated = convstore.retry(sleep=Sleeps())(call)
    with convstore.set_testing(True), pytest.raises(ApiError):
        await decorated()
    assert len(made) == 1


async def test_the_mode_is_restored_and_off_by_default() -> None:
    """The context manager restores the previous mode; the function form stays on until off."""
    assert convstore.is_testing() is False
    with convstore.set_testing(True, attempts=3):
        assert convstore.is_testing() is True
        with convstore.set_testing(False):
            assert convstore.is_testing() is False
        assert convstore.is_testing() is True
    assert convstore.is_testing() is False
    convstore.set_testing(True)
    try:
        assert convstore.is_testing() is True
    finally:
        convstore.set_testing(False)
    _, call = failing(1)
    sleeps = Sleeps()
    assert await convstore.RetryExecutor(sleep=sleeps).execute_with_retry(call) == "done"
    assert len(sleeps.delays) == 1
    assert sleeps.delays[0] > 0


def test_turning_it_on_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    """A warning says that retries no longer wait, and how many attempts they make."""
    with caplog.at_level(logging.WARNING, "convstore"), convstore.set_testing(True, attempts=4):
        pass
    assert "testing mode is on" in caplog.text
    assert "at most 4 attempts" in caplog.text


@pytest.mark.parametrize(
    ("arguments", "fragment"),
    [
        ({"testing": 1}, "testing must be a bool"),
        ({"testing": True, "attempts": 0}, "attempts must be an int of at least 1"),
        ({"testing": True, "attempts": 1.5}, "attempts must be an int"),
    ],
)
def test_bad_arguments_are_named_and_change_nothing(
    arguments: dict[str, object], fragment: str
) -> None:
    with pytest.raises(convstore.InvalidArgument, match=fragment):
        convstore.set_testing(**arguments)  # type: ignore[arg-type]
    assert convstore.is_testing() is False
