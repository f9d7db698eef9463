"""What the server asked for: ``Retry-After`` (seconds or an HTTP date) and ``retry-after-ms``."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from convstore._retry.evidence import read_attr


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
