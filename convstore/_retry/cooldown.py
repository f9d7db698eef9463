"""Shared cooldowns on the executor's side: before an attempt, wait for the slot a cooling-down or
paced key gives it; after a rate limit or an overload, extend the key's cooldown and pace it, for
every worker on the same database."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import TypeVar

from convstore._records import Attempt
from convstore._retry.classifier import ErrorClassifier, Explanation
from convstore._retry.hooks import CooldownKeeper, Sleep
from convstore._retry.testing import testing_attempts
from convstore.exceptions import CooldownTooLong

logger = logging.getLogger("convstore")
T = TypeVar("T")


class CooldownWaitCancelled(Exception):
    """Raised out of `SharedCooldown.wait` when the task is cancelled while waiting; carries the
    time waited, so that the cancellation's row can say it. The CancelledError is its cause."""

    def __init__(self, waited_s: float) -> None:
        super().__init__(f"cancelled after waiting {waited_s:.3f} s for a cooldown")
        self.waited_s = waited_s


class SharedCooldown:
    """One call's view of its key's cooldown and pacing, through the store that keeps them."""

    def __init__(
        self, keeper: CooldownKeeper, limit_key: str, max_wait_s: float, sleep: Sleep
    ) -> None:
        self.keeper = keeper
        self.limit_key = limit_key
        self.max_wait_s = max_wait_s
        self.sleep = sleep
        #: When the current attempt was given its slot, if its key was paced.
        self.admitted_at: datetime | None = None

    async def wait(self) -> float | None:
        """Wait for the slot the key gives this attempt, if the key is cooling down or paced;
        the seconds waited, None when there was nothing to wait for (or in testing mode, which
        waits no time).

        Raises CooldownTooLong when the slot is further off than ``max_wait_s``, and
        CooldownWaitCancelled when cancelled while waiting.
        """
        admission = await _logged(self.keeper.cooldown_admission(self.limit_key), "read")
        self.admitted_at = None if admission is None else datetime.now(UTC)
        if admission is None or admission <= 0:
            return None
        if admission > self.max_wait_s:
            raise CooldownTooLong(self.limit_key, admission)
        if testing_attempts() is not None:
            return None
        started = time.monotonic()
        try:
            await self.sleep(admission)
        except asyncio.CancelledError as cancelled:
            raise CooldownWaitCancelled(time.monotonic() - started) from cancelled
        return admission

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
        itself waits that out as its backoff), and pace it."""
        if not explanation.cooldown:
            return
        if delay_s is None:
            delay_s = classifier.compute_delay(index, explanation.backoff)
            if explanation.retry_after_s is not None:
                delay_s = max(delay_s, explanation.retry_after_s)
        if delay_s > 0:
            extending = self.keeper.extend_cooldown(
                self.limit_key, delay_s, attempt, admitted_at=self.admitted_at
            )
            await _logged(extending, "extend")


async def _logged(pending: Awaitable[T], action: str) -> T | None:
    """`pending`'s result; a failure is logged, and the call goes on as if there were none."""
    try:
        return await pending
    except Exception:
        logger.warning(
            "could not %s the shared cooldown; the call goes on without it", action, exc_info=True
        )
        return None
