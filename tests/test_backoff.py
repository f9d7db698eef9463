"""Backoff settings, the built-in policies, the delay maths and Retry-After parsing."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convstore._retry.backoff import (
    POLICIES,
    BackoffConfig,
    Policy,
    capped_ms,
    compute_delay,
    exponential_ms,
    jittered_ms,
)
from convstore._retry.retry_after import parse_retry_after, retry_after_from_headers, retry_after_of
from convstore.exceptions import InvalidArgument

NOW = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)


def no_jitter() -> float:
    """Return the middle of [0, 1), where jitter moves the delay by nothing."""
    return 0.5


# --- BackoffConfig ----------------------------------------------------------------------------


def test_defaults_are_the_original_modules() -> None:
    """BackoffConfig() keeps the original defaults: 1 s, 60 s max, x2, 10% jitter, 3 retries."""
    assert BackoffConfig() == BackoffConfig(
        base_delay_ms=1000, max_delay_ms=60000, multiplier=2.0, jitter=0.1, max_retries=3
    )


@pytest.mark.parametrize(
    ("kwargs", "names"),
    [
        ({"base_delay_ms": -1}, "base_delay_ms"),
        ({"max_delay_ms": -5}, "max_delay_ms"),
        ({"base_delay_ms": 5000, "max_delay_ms": 1000}, "max_delay_ms"),
        ({"multiplier": 0}, "multiplier"),
        ({"multiplier": 0.5}, "multiplier"),
        ({"jitter": -0.1}, "jitter"),
        ({"jitter": 1.5}, "jitter"),
        ({"max_retries": -1}, "max_retries"),
        ({"max_retries": 2.5}, "max_retries"),
        ({"max_retries": True}, "max_retries"),
        ({"base_delay_ms": math.nan}, "base_delay_ms"),
        ({"max_delay_ms": math.inf}, "max_delay_ms"),
        ({"base_delay_ms": "1000"}, "base_delay_ms"),
    ],
)
def test_nonsense_settings_raise_invalid_argument(kwargs: dict[str, object], names: str) -> None:
    """Negative, out-of-range or non-numeric settings raise InvalidArgument naming the field."""
    with pytest.raises(InvalidArgument, match=names):
        BackoffConfig(**kwargs)  # type: ignore[arg-type]  # deliberately wrong types among them


def test_invalid_argument_is_a_value_error() -> None:
    """A bad BackoffConfig can be caught as a plain ValueError too."""
    with pytest.raises(ValueError, match="jitter"):
        BackoffConfig(jitter=2)


def test_zero_delays_and_zero_retries_are_allowed() -> None:
    """Zero waits (retry at once) and zero retries (one attempt) are legitimate settings."""
    config = BackoffConfig(base_delay_ms=0, max_delay_ms=0, multiplier=1, jitter=0, max_retries=0)
    assert compute_delay(5, config) == 0.0


# --- The policy table -------------------------------------------------------------------------


#: The rows of the table in docs/retries.md that name each built-in policy.
_DOCUMENTED_AS = {
    Policy.RATE_LIMIT: "Rate limit / overloaded",
    Policy.TIMEOUT: "Timeout",
    Policy.CONNECTION: "Connection error",
    Policy.SERVER_DISCONNECTED: "Server disconnected",
    Policy.SERVER_ERROR: "Internal server error",
    Policy.SERVICE_UNAVAILABLE: "Service unavailable",
    Policy.GATEWAY: "Bad gateway / gateway timeout",
}


def _documented_backoffs() -> dict[str, BackoffConfig]:
    """The backoff each row of the documentation's table gives, as written there."""
    table = (Path(__file__).parent.parent / "docs" / "retries.md").read_text(encoding="utf-8")
    times = "\N{MULTIPLICATION SIGN}"
    pattern = re.compile(
        rf"^\| ([^|]+) \|.*\| ([\d.]+) s, {times}([\d.]+), ([\d.]+) s, (\d+) \|$", re.MULTILINE
    )
    return {
        name: BackoffConfig(
            round(float(base) * 1000), round(float(top) * 1000), float(factor), 0.1, int(retries)
        )
        for name, base, factor, top, retries in pattern.findall(table)
    }


def test_every_policy_is_as_documented() -> None:
    """Each built-in policy has the base, multiplier, maximum and retries the documentation's
    table gives it (with 10% jitter), and the table documents every policy."""
    documented = _documented_backoffs()
    assert set(_DOCUMENTED_AS) == set(POLICIES)
    assert {p: POLICIES[p] for p in POLICIES} == {
        p: documented[_DOCUMENTED_AS[p]] for p in POLICIES
    }


def test_policy_table_is_read_only() -> None:
    """The policy table cannot be modified by a caller."""
    with pytest.raises(TypeError):
        POLICIES[Policy.TIMEOUT] = BackoffConfig()  # type: ignore[index]  # read-only on purpose


# --- Delay strategies -------------------------------------------------------------------------


def test_exponential_is_base_times_multiplier_to_the_attempt() -> None:
    """exponential_ms returns base * multiplier ** attempt."""
    config = BackoffConfig(base_delay_ms=500, max_delay_ms=10000, multiplier=1.5)
    assert [exponential_ms(n, config) for n in range(4)] == [500, 750, 1125, 1687.5]


def test_exponential_saturates_instead_of_overflowing() -> None:
    """A huge attempt number gives infinity, not an OverflowError."""
    assert exponential_ms(100_000, BackoffConfig()) == math.inf


def test_capped_never_exceeds_the_max() -> None:
    """capped_ms returns the delay, or max_delay_ms when the delay is larger."""
    config = BackoffConfig(base_delay_ms=1000, max_delay_ms=3000)
    assert capped_ms(2000, config) == 2000
    assert capped_ms(math.inf, config) == 3000


@pytest.mark.parametrize(("rand", "expected"), [(0.0, 900.0), (0.5, 1000.0), (0.75, 1050.0)])
def test_jitter_moves_by_the_fraction(rand: float, expected: float) -> None:
    """jittered_ms maps a random 0..1 to a move of -jitter..+jitter of the delay."""
    assert jittered_ms(1000, 0.1, lambda: rand) == pytest.approx(expected)


def test_compute_delay_is_exact_with_injected_randomness() -> None:
    """compute_delay gives base * multiplier ** attempt in seconds when jitter is centred."""
    config = BackoffConfig(base_delay_ms=1000, max_delay_ms=60000, multiplier=2.0)
    delays = [compute_delay(n, config, rand=no_jitter) for n in range(7)]
    assert delays == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0]


def test_compute_delay_caps_then_jitters() -> None:
    """A capped delay is still jittered, so it may end up to jitter above the cap (as before)."""
    config = BackoffConfig(base_delay_ms=1000, max_delay_ms=4000, jitter=0.1)
    assert compute_delay(10, config, rand=lambda: 0.0) == pytest.approx(3.6)
    assert compute_delay(10, config, rand=lambda: 0.999999) == pytest.approx(4.4, abs=1e-5)


def test_compute_delay_is_never_negative() -> None:
    """Full jitter at its lowest reaches zero, never below."""
    config = BackoffConfig(base_delay_ms=1000, jitter=1.0)
    assert compute_delay(0, config, rand=lambda: 0.0) == 0.0


def test_compute_delay_survives_huge_attempt_numbers() -> None:
    """Attempt 10,000 gives the capped delay rather than an overflow."""
    assert compute_delay(10_000, BackoffConfig(), rand=no_jitter) == 60.0


def test_compute_delay_rejects_negative_attempts() -> None:
    """A negative attempt number raises InvalidArgument naming attempt."""
    with pytest.raises(InvalidArgument, match="attempt"):
        compute_delay(-1, BackoffConfig())


@settings(database=None)
@given(
    attempt=st.integers(min_value=0, max_value=200),
    base=st.floats(min_value=0, max_value=1e6),
    extra=st.floats(min_value=0, max_value=1e6),
    multiplier=st.floats(min_value=1, max_value=10),
    jitter=st.floats(min_value=0, max_value=1),
    rand=st.floats(min_value=0, max_value=1, exclude_max=True),
)
def test_compute_delay_stays_within_the_jittered_cap(
    attempt: int, base: float, extra: float, multiplier: float, jitter: float, rand: float
) -> None:
    """For any valid settings the delay is between 0 and max_delay_ms * (1 + jitter)."""
    config = BackoffConfig(base, base + extra, multiplier, jitter)
    delay = compute_delay(attempt, config, rand=lambda: rand)
    assert 0.0 <= delay <= (base + extra) * (1 + jitter) / 1000 * (1 + 1e-12)


# --- Retry-After ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [("12", 12.0), (" 7 ", 7.0), ("1.5", 1.5), ("0", 0.0), (b"30", 30.0)],
)
def test_retry_after_seconds(value: str | bytes, expected: float) -> None:
    """A Retry-After number (str or bytes, surrounding spaces allowed) is taken as seconds."""
    assert parse_retry_after(value, now=NOW) == expected


def test_retry_after_http_date() -> None:
    """A Retry-After HTTP date is turned into the seconds from now until then."""
    value = format_datetime(NOW + timedelta(seconds=90), usegmt=True)
    assert parse_retry_after(value, now=NOW) == 90.0


def test_retry_after_date_in_the_past_means_no_wait() -> None:
    """A Retry-After date already past asks for 0 seconds."""
    value = format_datetime(NOW - timedelta(hours=1), usegmt=True)
    assert parse_retry_after(value, now=NOW) == 0.0


@pytest.mark.parametrize("value", ["soon", "-5", "nan", "inf", "", "12 seconds"])
def test_unreadable_retry_after_is_none(value: str) -> None:
    """Garbage, negative or non-finite Retry-After values are ignored (None)."""
    assert parse_retry_after(value, now=NOW) is None


class CaseInsensitiveHeaders:
    """A stand-in for httpx.Headers / multidict: lookups ignore case, items() keep the wire case."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self._pairs = pairs

    def items(self) -> Iterator[tuple[str, str]]:
        return iter(self._pairs)

    def get(self, name: str, default: str | None = None) -> str | None:
        return next((v for k, v in self._pairs if k.lower() == name.lower()), default)


@pytest.mark.parametrize(
    "headers",
    [
        {"Retry-After": "20"},
        {"retry-after": "20"},
        [("RETRY-AFTER", "20")],
        [(b"retry-after", b"20")],
        CaseInsensitiveHeaders([("Retry-After", "20")]),
    ],
)
def test_headers_of_every_shape_are_read(headers: object) -> None:
    """Retry-After is read from a dict, a list of str/bytes pairs or a case-insensitive mapping."""
    assert retry_after_from_headers(headers, now=NOW) == 20.0


def test_retry_after_ms_wins_over_retry_after() -> None:
    """retry-after-ms, being more precise, is preferred to Retry-After."""
    headers = {"Retry-After": "2", "retry-after-ms": "1500"}
    assert retry_after_from_headers(headers, now=NOW) == 1.5


def test_bad_retry_after_ms_falls_back_to_retry_after() -> None:
    """An unreadable retry-after-ms is skipped in favour of Retry-After."""
    headers = {"retry-after-ms": "later", "Retry-After": "3"}
    assert retry_after_from_headers(headers, now=NOW) == 3.0


@pytest.mark.parametrize("headers", [None, {}, {"Content-Type": "json"}, "Retry-After: 3", 42])
def test_no_retry_after_is_none(headers: object) -> None:
    """Without a readable header, or with no header container at all, the answer is None."""
    assert retry_after_from_headers(headers, now=NOW) is None


class Response:
    """A response-like object with headers, as httpx and the SDKs attach to errors."""

    def __init__(self, headers: object) -> None:
        self.headers = headers


class ResponseError(Exception):
    """An error carrying a response, shaped like anthropic.APIStatusError."""

    def __init__(self, headers: object) -> None:
        super().__init__("error")
        self.response = Response(headers)


class HeadersError(Exception):
    """An error carrying headers itself, shaped like aiohttp.ClientResponseError."""

    def __init__(self, headers: object) -> None:
        super().__init__("error")
        self.headers = headers


class RequestlessError(Exception):
    """An error whose response property raises, as httpx's does when none was attached."""

    @property
    def response(self) -> Response:
        raise RuntimeError("no response attached")


def test_retry_after_of_reads_the_response_headers() -> None:
    """retry_after_of reads error.response.headers."""
    assert retry_after_of(ResponseError({"Retry-After": "4"}), now=NOW) == 4.0


def test_retry_after_of_reads_the_error_headers() -> None:
    """retry_after_of reads error.headers when there is no response."""
    assert retry_after_of(HeadersError({"retry-after-ms": "250"}), now=NOW) == 0.25


def test_retry_after_of_survives_raising_properties() -> None:
    """A response property that raises is treated as no response."""
    assert retry_after_of(RequestlessError("x"), now=NOW) is None
