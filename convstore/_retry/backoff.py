"""How long to wait before trying again: backoff settings, the built-in policies, the delay maths.

What the server itself asks for (``Retry-After``) is read in `retry_after`.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

from convstore._validate import real_number, whole_number
from convstore.exceptions import InvalidArgument

#: A source of uniform random floats in [0, 1), like `random.random`; injectable for exact tests.
RandomSource = Callable[[], float]


@dataclass(frozen=True, slots=True)
class BackoffConfig:
    """How long to wait between attempts (in milliseconds) and how many retries to allow.

    The delay before retry ``n`` (0-based) is ``base_delay_ms * multiplier ** n``, capped at
    ``max_delay_ms``, then moved at random by up to ``±jitter`` of itself.
    """

    base_delay_ms: float = 1000
    max_delay_ms: float = 60000
    multiplier: float = 2.0
    jitter: float = 0.1
    max_retries: int = 3

    def __post_init__(self) -> None:
        real_number("base_delay_ms", self.base_delay_ms, minimum=0.0)
        real_number("max_delay_ms", self.max_delay_ms, minimum=0.0)
        if self.max_delay_ms < self.base_delay_ms:
            raise InvalidArgument(
                f"max_delay_ms must be at least base_delay_ms ({self.base_delay_ms!r}), "
                f"got {self.max_delay_ms!r}"
            )
        # A multiplier below 1 would make later waits shorter, which is not backing off.
        real_number("multiplier", self.multiplier, minimum=1.0)
        real_number("jitter", self.jitter, minimum=0.0, maximum=1.0)
        whole_number("max_retries", self.max_retries, minimum=0)


class Policy(StrEnum):
    """The names of the built-in backoff policies, one per kind of transient failure."""

    RATE_LIMIT = "rate_limit"
    TIMEOUT = "timeout"
    CONNECTION = "connection"
    SERVER_DISCONNECTED = "server_disconnected"
    SERVER_ERROR = "server_error"
    SERVICE_UNAVAILABLE = "service_unavailable"
    GATEWAY = "gateway"
    #: Not in `POLICIES`: it stands for the classifier's own ``default_backoff``.
    DEFAULT = "default"


#: The built-in policies, one per kind of transient failure (read-only).
POLICIES: Mapping[Policy, BackoffConfig] = MappingProxyType(
    {
        Policy.RATE_LIMIT: BackoffConfig(5000, 120000, 2.0, 0.1, 5),
        Policy.TIMEOUT: BackoffConfig(500, 10000, 1.5, 0.1, 3),
        Policy.CONNECTION: BackoffConfig(500, 10000, 1.5, 0.1, 3),
        Policy.SERVER_DISCONNECTED: BackoffConfig(1000, 30000, 2.0, 0.1, 3),
        Policy.SERVER_ERROR: BackoffConfig(2000, 30000, 2.0, 0.1, 3),
        Policy.SERVICE_UNAVAILABLE: BackoffConfig(2000, 60000, 2.0, 0.1, 3),
        Policy.GATEWAY: BackoffConfig(1000, 30000, 2.0, 0.1, 3),
    }
)


# Delay strategies: small composable steps, each in milliseconds (tenacity's wait_* in spirit).


def exponential_ms(attempt: int, backoff: BackoffConfig) -> float:
    """Return ``base_delay_ms * multiplier ** attempt``; infinity where a float overflows."""
    try:
        return backoff.base_delay_ms * float(backoff.multiplier) ** attempt
    except OverflowError:
        return math.inf


def capped_ms(delay_ms: float, backoff: BackoffConfig) -> float:
    """Return the delay, but no more than ``max_delay_ms``."""
    return min(delay_ms, backoff.max_delay_ms)


def jittered_ms(delay_ms: float, jitter: float, rand: RandomSource) -> float:
    """Return the delay moved by a uniform random fraction in ``[-jitter, +jitter)`` of itself."""
    return delay_ms * (1.0 + jitter * (2.0 * rand() - 1.0))


def compute_delay(
    attempt: int, backoff: BackoffConfig, *, rand: RandomSource = random.random
) -> float:
    """Return the seconds to wait after failed attempt ``attempt`` (0-based), never negative.

    Exponential, capped at ``max_delay_ms``, then jittered: with the default 10% jitter a capped
    delay may end up to 10% above the cap.
    """
    whole_number("attempt", attempt, minimum=0)
    capped = capped_ms(exponential_ms(attempt, backoff), backoff)
    delay_ms = jittered_ms(capped, backoff.jitter, rand)
    return max(0.0, delay_ms) / 1000.0
