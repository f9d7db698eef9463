"""How long to wait before trying again: backoff settings, the built-in policies, the delay maths
and the server's own ``Retry-After`` / ``retry-after-ms`` request.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from enum import StrEnum
from types import MappingProxyType

from convstore.exceptions import InvalidArgument

__all__ = [
    "POLICIES",
    "BackoffConfig",
    "Policy",
    "capped_ms",
    "compute_delay",
    "exponential_ms",
    "jittered_ms",
    "parse_retry_after",
    "retry_after_from_headers",
    "retry_after_of",
]

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
        _require_number("base_delay_ms", self.base_delay_ms, minimum=0.0)
        _require_number("max_delay_ms", self.max_delay_ms, minimum=0.0)
        if self.max_delay_ms < self.base_delay_ms:
            raise InvalidArgument(
                f"max_delay_ms must be at least base_delay_ms ({self.base_delay_ms!r}), "
                f"got {self.max_delay_ms!r}"
            )
        # A multiplier below 1 would make later waits shorter, which is not backing off.
        _require_number("multiplier", self.multiplier, minimum=1.0)
        _require_number("jitter", self.jitter, minimum=0.0, maximum=1.0)
        if (
            not isinstance(self.max_retries, int)
            or isinstance(self.max_retries, bool)
            or self.max_retries < 0
        ):
            raise InvalidArgument(
                f"max_retries must be an int of at least 0, got {self.max_retries!r}"
            )


def _require_number(name: str, value: object, *, minimum: float, maximum: float = math.inf) -> None:
    """Raise InvalidArgument unless value is a finite real number within [minimum, maximum]."""
    if (
        not isinstance(value, int | float)
        or isinstance(value, bool)
        or not math.isfinite(value)
        or not minimum <= value <= maximum
    ):
        if maximum == math.inf:
            limit = f"at least {minimum:g}"
        else:
            limit = f"within [{minimum:g}, {maximum:g}]"
        raise InvalidArgument(f"{name} must be a finite number {limit}, got {value!r}")


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


#: The built-in policies, kept from the original module (read-only).
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
    delay may end up to 10% above the cap, as in the original module.
    """
    if not isinstance(attempt, int) or isinstance(attempt, bool) or attempt < 0:
        raise InvalidArgument(f"attempt must be an int of at least 0, got {attempt!r}")
    capped = capped_ms(exponential_ms(attempt, backoff), backoff)
    delay_ms = jittered_ms(capped, backoff.jitter, rand)
    return max(0.0, delay_ms) / 1000.0


# Retry-After: what the server asked for. Header names are compared case-insensitively.


def parse_retry_after(value: str | bytes, *, now: datetime | None = None) -> float | None:
    """Return the seconds a ``Retry-After`` value (seconds or HTTP date) asks for, else None.

    A date in the past asks for 0 seconds; negative or non-finite numbers are unreadable.
    """
    text = value.decode("latin-1") if isinstance(value, bytes) else value
    text = text.strip()
    seconds = _non_negative_float(text)
    if seconds is not None:
        return seconds
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        # RFC 9110 dates are always GMT; "-0000" parses as naive.
        when = when.replace(tzinfo=UTC)
    current = now if now is not None else datetime.now(UTC)
    return max(0.0, (when - current).total_seconds())


def _non_negative_float(text: str) -> float | None:
    """Return text as a finite float of at least 0, else None."""
    try:
        number = float(text)
    except ValueError:
        return None
    return number if math.isfinite(number) and number >= 0 else None


def retry_after_from_headers(headers: object, *, now: datetime | None = None) -> float | None:
    """Return the seconds asked for by ``retry-after-ms`` or else ``Retry-After``, None if neither.

    ``headers`` may be a dict, a case-insensitive mapping (httpx, aiohttp) or a list of pairs.
    """
    # retry-after-ms is the more precise of the two, so the SDKs read it first and so do we.
    millis = _header(headers, "retry-after-ms")
    if millis is not None:
        text = millis.decode("latin-1") if isinstance(millis, bytes) else millis
        number = _non_negative_float(text.strip())
        if number is not None:
            return number / 1000.0
    value = _header(headers, "retry-after")
    return None if value is None else parse_retry_after(value, now=now)


def retry_after_of(error: BaseException, *, now: datetime | None = None) -> float | None:
    """Return the Retry-After seconds on ``error.response.headers`` or ``error.headers``."""
    for headers in (
        read_attr(read_attr(error, "response"), "headers"),
        read_attr(error, "headers"),
    ):
        if headers is not None:
            seconds = retry_after_from_headers(headers, now=now)
            if seconds is not None:
                return seconds
    return None


def _header(headers: object, name: str) -> str | bytes | None:
    """Return the first value of header ``name`` (lower case), whatever the container's shape."""
    if headers is None:
        return None
    try:
        items_method = getattr(headers, "items", None)
        pairs: object = items_method() if callable(items_method) else headers
        if isinstance(pairs, str | bytes) or not hasattr(pairs, "__iter__"):
            return None
        for pair in pairs:
            if not isinstance(pair, tuple | list) or len(pair) != 2:
                continue
            key, value = pair
            if isinstance(key, bytes):
                key = key.decode("latin-1")
            if isinstance(key, str) and key.lower() == name and isinstance(value, str | bytes):
                return value
    except (TypeError, ValueError, AttributeError):
        # Header containers of unknown shape are ignored, not allowed to break classification.
        return None
    return None


def read_attr(obj: object, name: str) -> object:
    """Return ``obj.name`` or None; some SDK properties raise when the value was never set."""
    if obj is None:
        return None
    try:
        return getattr(obj, name, None)
    except Exception:  # noqa: BLE001 - a property's own failure means "no such evidence".
        return None
