"""Shared cooldowns on the executor's side: wait out a rate limit's cooldown before an attempt,
and extend it after a rate limit or an overload, for every worker on the same database."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TypeVar

from convstore._records import Attempt
from convstore._retry.classifier import ErrorClassifier, Explanation
from convstore._retry.hooks import CooldownKeeper, Sleep
from convstore._retry.testing import testing_attempts
from convstore.exceptions import CooldownTooLong

logger = logging.getLogger("convstore")
T = TypeVar("T")

#: The random spread added to a cooldown wait, so that the workers waiting on one key do not all
#: send at the same instant: up to half the time left, at least 0.05 s and at most 5 s.
SPREAD_FRACTION = 1.0
MIN_SPREAD_S = 0.05
MAX_SPREAD_S = 5.0


def spread_s(remaining_s: float, rand: Callable[[], float]) -> float:
    """The random part of a wait of `remaining_s`."""
    return rand() * min(max(remaining_s * SPREAD_FRACTION, MIN_SPREAD_S), MAX_SPREAD_S)


class CooldownWaitCancelled(Exception):
    """Raised out of `SharedCooldown.wait` when the task is cancelled while waiting; carries the
    time waited, so that the cancellation's row can say it. The CancelledError is its cause."""

    def __init__(self, waited_s: float) -> None:
        super().__init__(f"cancelled after waiting {waited_s:.3f} s for a cooldown")
        self.waited_s = waited_s


class SharedCooldown:
    """One call's view of its key's cooldown, through the store that keeps it.

    It remembers the latest deadline the call has already waited out, by its own backoff after
    setting it or by waiting for it, so that a deadline is never waited for twice and a wait
    ends even when the sleep is a stand-in that lets no time pass.
    """

    def __init__(
        self,
        keeper: CooldownKeeper,
        limit_key: str,
        max_wait_s: float,
        sleep: Sleep,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.keeper = keeper
        self.limit_key = limit_key
        self.max_wait_s = max_wait_s
        self.sleep = sleep
        self.rand = rand
        self._covered: datetime | None = None

    async def wait(self) -> float | None:
        """Wait until the key's cooldown is over, plus a spread; the seconds waited, None when
        there was nothing to wait for (or in testing mode, which waits no time).

        Raises CooldownTooLong when the cooldown outlasts ``max_wait_s``, and
        CooldownWaitCancelled when cancelled while waiting.
        """
        waited = 0.0
        while (until := await self._until()) is not None:
            remaining = (until - datetime.now(UTC)).total_seconds()
            if remaining <= 0:
                break
            if remaining > self.max_wait_s:
                raise CooldownTooLong(self.limit_key, remaining)
            self._covered = until
            if testing_attempts() is not None:
                break
            pause = remaining + spread_s(remaining, self.rand)
            started = time.monotonic()
            try:
                await self.sleep(pause)
            except asyncio.CancelledError as cancelled:
                raise CooldownWaitCancelled(waited + time.monotonic() - started) from cancelled
            waited += pause
        return waited or None

    async def extend(
        self,
        classifier: ErrorClassifier,
        explanation: Explanation,
        index: int,
        delay_s: float | None,
        attempt: Attempt,
    ) -> None:
        """After a rate limit or an overload, cool the key down for the later of the server's
        Retry-After and the policy's delay (the delay chosen, when the call retries: the call
        itself waits that out as its backoff)."""
        if not explanation.cooldown:
            return
        retrying = delay_s is not None
        if delay_s is None:
            delay_s = classifier.compute_delay(index, explanation.backoff)
            if explanation.retry_after_s is not None:
                delay_s = max(delay_s, explanation.retry_after_s)
        if delay_s <= 0:
            return
        until = await _logged(
            self.keeper.extend_cooldown(self.limit_key, delay_s, attempt), "extend"
        )
        if retrying and until is not None:
            self._covered = until if self._covered is None else max(self._covered, until)

    async def _until(self) -> datetime | None:
        """The key's deadline, unless this call has already waited it out."""
        until = await _logged(self.keeper.cooldown_until(self.limit_key), "read")
        if until is None or (self._covered is not None and until <= self._covered):
            return None
        return until


async def _logged(pending: Awaitable[T], action: str) -> T | None:
    """`pending`'s result; a failure is logged, and the call goes on as if there were none."""
    try:
        return await pending
    except Exception:
        logger.warning(
            "could not %s the shared cooldown; the call goes on without it", action, exc_info=True
        )
        return None
