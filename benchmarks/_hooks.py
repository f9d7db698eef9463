"""The cost per attempt of recording attempts: convstore's executor with and without a store,
and tenacity and stamina with and without convstore's hooks, each on the same call in the same
run."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import stamina
import tenacity
from stamina.instrumentation import get_on_retry_hooks, set_on_retry_hooks

import convstore
from benchmarks._report import Figure, median_ms, timed
from benchmarks._workloads import BLOCK
from convstore.integrations.stamina import RecordAttempts, retry_on
from convstore.integrations.tenacity import (
    record_attempts,
    retry_if_retryable,
    stop_after_policy,
    wait_for_policy,
)

#: Attempts per call: two failures, then success.
ATTEMPTS = 3


async def _no_sleep(delay: float) -> None:
    pass


def _flaky() -> Callable[[], Awaitable[str]]:
    failures = [TimeoutError("read timed out"), ConnectionResetError("reset by peer")]

    async def call() -> str:
        if failures:
            raise failures.pop()
        return "ok"

    return call


async def _per_attempt(
    bare: Callable[[Callable[[], Awaitable[str]]], Awaitable[str]],
    recorded: Callable[[Callable[[], Awaitable[str]]], Awaitable[str]],
    calls: int,
    recorded_attempts: int,
    before_block: Callable[[bool], None] = lambda recording: None,
) -> float:
    """Milliseconds that recording adds to each recorded attempt (medians of alternate blocks);
    `before_block` is told which kind of block comes next."""
    without: list[float] = []
    with_rows: list[float] = []
    for _ in range(0, calls, BLOCK):
        before_block(False)
        without += [await timed(bare, _flaky()) for _ in range(BLOCK)]
        before_block(True)
        with_rows += [await timed(recorded, _flaky()) for _ in range(BLOCK)]
    return (median_ms(with_rows) - median_ms(without)) / recorded_attempts


async def run(directory: Path, scale: float) -> list[Figure]:
    """The tenacity and stamina figures, on a SQLite file."""
    calls = max(BLOCK, int(1000 * scale))
    async with convstore.connect(f"sqlite:///{directory / 'hooks.db'}") as store:
        bare = convstore.RetryExecutor(operation="bench", sleep=_no_sleep)
        logged = convstore.RetryExecutor(store=store, operation="bench", sleep=_no_sleep)
        log_ms = await _per_attempt(
            bare.execute_with_retry, logged.execute_with_retry, calls, ATTEMPTS
        )

        plain = tenacity.AsyncRetrying(
            sleep=_no_sleep,
            retry=retry_if_retryable(),
            wait=wait_for_policy(),
            stop=stop_after_policy(),
        )
        recording = tenacity.AsyncRetrying(
            sleep=_no_sleep, **record_attempts(store, operation="bench.tenacity")
        )
        tenacity_ms = await _per_attempt(plain, recording, calls, ATTEMPTS)

        hook = RecordAttempts(store)

        @stamina.retry(on=retry_on(), attempts=ATTEMPTS)
        async def through_stamina(call: Callable[[], Awaitable[str]]) -> str:
            return await call()

        async def recorded(call: Callable[[], Awaitable[str]]) -> str:
            result = await through_stamina(call)
            await hook.flush()
            return result

        previous = get_on_retry_hooks()
        try:
            with stamina.set_testing(True, attempts=ATTEMPTS):  # no waits, as _no_sleep above
                # stamina's hooks are global: on for the recording blocks only. It reports the
                # two retried attempts of each call (the success has no row).
                stamina_ms = await _per_attempt(
                    through_stamina,
                    recorded,
                    calls,
                    ATTEMPTS - 1,
                    lambda recording: set_on_retry_hooks([hook] if recording else []),
                )
        finally:
            set_on_retry_hooks(list(previous))
    return [
        Figure(
            "log",
            "added per logged attempt (ms; baseline: the 1 ms budget)",
            log_ms,
            1.0,
            "<= 1.0x",
            1.0,
        ),
        Figure(
            "hooks",
            "tenacity: added per recorded attempt (ms; baseline: the 1 ms budget)",
            tenacity_ms,
            1.0,
            "<= 1.0x",
            1.0,
        ),
        Figure(
            "hooks",
            "stamina: added per recorded retry (ms; baseline: the 1 ms budget)",
            stamina_ms,
            1.0,
            "<= 1.0x",
            1.0,
        ),
    ]
