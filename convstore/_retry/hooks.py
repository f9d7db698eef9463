"""What the retry executor calls: hooks that get each attempt, the retry callback, the sleep."""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import datetime
from typing import Protocol

from convstore._records import Attempt


class AttemptHook(Protocol):
    """Anything called with each `Attempt`: a plain function or an async one."""

    def __call__(self, attempt: Attempt, /) -> Awaitable[None] | None: ...


class AttemptRecorder(Protocol):
    """A place that stores attempts, such as the convstore store (one ``retry_events`` row each)."""

    async def record_attempt(self, attempt: Attempt, /) -> None: ...


class OnRetry(Protocol):
    """Called before each wait with the failed attempt's 0-based number, its error and the delay."""

    def __call__(
        self, attempt: int, error: Exception, delay: float, /
    ) -> Awaitable[None] | None: ...


class Sleep(Protocol):
    """An async sleep taking seconds, like `asyncio.sleep`."""

    def __call__(self, delay: float, /) -> Awaitable[object]: ...


class CooldownKeeper(Protocol):
    """A place that keeps rate limits' cooldowns and pacing for every worker, such as the
    convstore store."""

    async def cooldown_admission(self, limit_key: str, /) -> float | None:
        """None when the key is neither cooling down nor paced; else the seconds until the
        slot given to the attempt about to be made."""
        ...

    async def extend_cooldown(
        self,
        limit_key: str,
        seconds: float,
        attempt: Attempt,
        /,
        *,
        admitted_at: datetime | None = None,
    ) -> datetime:
        """Make the key cool down for `seconds` from now, unless it already does for longer,
        and pace it; `attempt` is the failed attempt that asks for it, `admitted_at` when it
        was given its slot, if it was paced. The deadline asked for."""
        ...
