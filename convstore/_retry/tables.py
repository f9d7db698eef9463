"""The built-in knowledge: what statuses, provider codes, exception classes and message texts mean.

Rate limits and overloads, timeouts, connection and server failures are retryable, each with its
own backoff policy; quota and billing are fatal; a prompt too long for the model is degraded;
the rest of the 4xx family, and programming errors, are not retryable.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import NamedTuple

from convstore._records import ErrorType
from convstore._retry.backoff import Policy
from convstore._retry.evidence import Evidence, message_of, provider_codes, status_of
from convstore.exceptions import PermanentStorageError, StorageError, TransientStorageError


class Verdict(NamedTuple):
    """What one piece of evidence says, before it is dressed up as an Explanation."""

    error_type: ErrorType
    policy: Policy | None
    evidence: Evidence
    provider_code: str | None = None
    pattern: str | None = None


_FATAL_CODES = frozenset({"insufficient_quota", "billing_error", "billing_hard_limit_reached"})
_DEGRADED_CODES = frozenset({"context_length_exceeded", "request_too_large"})

_CODE_TABLE: Mapping[str, tuple[ErrorType, Policy | None]] = {
    "rate_limit_error": (ErrorType.RETRYABLE, Policy.RATE_LIMIT),
    "rate_limit_exceeded": (ErrorType.RETRYABLE, Policy.RATE_LIMIT),
    "overloaded_error": (ErrorType.RETRYABLE, Policy.RATE_LIMIT),
    "api_error": (ErrorType.RETRYABLE, Policy.SERVER_ERROR),
    "server_error": (ErrorType.RETRYABLE, Policy.SERVER_ERROR),
    "timeout_error": (ErrorType.RETRYABLE, Policy.TIMEOUT),
    "authentication_error": (ErrorType.NON_RETRYABLE, None),
    "invalid_api_key": (ErrorType.NON_RETRYABLE, None),
    "permission_error": (ErrorType.NON_RETRYABLE, None),
    "not_found_error": (ErrorType.NON_RETRYABLE, None),
    "invalid_request_error": (ErrorType.NON_RETRYABLE, None),
}

_PROGRAMMING_ERRORS: tuple[type[Exception], ...] = (
    TypeError,
    AttributeError,
    NameError,
    LookupError,  # KeyError, IndexError
    AssertionError,
    NotImplementedError,
    ImportError,
    SyntaxError,
    RecursionError,
)

# Class names of SDK exceptions that do not inherit from the built-in TimeoutError or
# ConnectionError (httpx.ReadTimeout, anthropic.APITimeoutError, aiohttp.ServerDisconnectedError,
# httpx.ConnectError, openai.APIConnectionError, ...), recognised by name along the MRO.
_CLASS_NAME_RULES: tuple[tuple[re.Pattern[str], Policy], ...] = (
    (re.compile(r"ServerDisconnected"), Policy.SERVER_DISCONNECTED),
    (re.compile(r"Timeout"), Policy.TIMEOUT),
    (re.compile(r"Connect(?:ion)?Error"), Policy.CONNECTION),
)


_TextRule = tuple[re.Pattern[str], ErrorType, Policy | None]


def _text_rules(
    error_type: ErrorType,
    policy: Policy | None = None,
    *,
    phrases: Iterable[str] = (),
    codes: Iterable[int] = (),
) -> tuple[_TextRule, ...]:
    """Compile one rule per phrase (whole words, any case) and per status number standing alone.

    A number must not sit inside an id or a version: ``req_14290``, ``req-429-x`` and ``v1.429``
    say nothing about a 429. One pattern per phrase makes `Explanation.message_pattern` precise.
    """
    patterns = [re.compile(rf"\b(?:{p})\b", re.IGNORECASE) for p in phrases]
    patterns += [re.compile(rf"(?<![\w.-]){c}(?![\w-]|\.\d)") for c in codes]
    return tuple((pattern, error_type, policy) for pattern in patterns)


_FATAL_TEXT = _text_rules(
    ErrorType.FATAL,
    phrases=(
        r"credit balance is too low",
        r"insufficient[_ ]quota",
        r"exceeded your current quota",
        r"billing[_ ]error",
    ),
)
_DEGRADED_TEXT = _text_rules(
    ErrorType.DEGRADED,
    phrases=(r"prompt is too long", r"context[_ ]length[_ ]exceeded", r"maximum context length"),
)

# In order: the first pattern that matches decides. Rate limits come before the
# non-retryable words because some APIs send "403 Forbidden: rate limit exceeded".
TEXT_RULES: tuple[_TextRule, ...] = (
    *_FATAL_TEXT,
    *_text_rules(ErrorType.FATAL, phrases=(r"payment required",), codes=(402,)),
    *_DEGRADED_TEXT,
    *_text_rules(
        ErrorType.DEGRADED,
        phrases=(r"payload too large", r"request entity too large"),
        codes=(413,),
    ),
    *_text_rules(
        ErrorType.RETRYABLE,
        Policy.RATE_LIMIT,
        phrases=(r"rate[ _-]?limit(?:ed|s|_error|_exceeded)?", r"too many requests", r"overloaded"),
        codes=(429, 529),
    ),
    *_text_rules(
        ErrorType.NON_RETRYABLE,
        phrases=(
            r"unauthori[sz]ed",
            r"authentication(?:_error)?",
            r"invalid[ _]api[ _]key",
            r"forbidden",
            r"permission denied",
            r"not[ _]found(?:_error)?",
            r"validation error",
            r"bad request",
            r"unprocessable entity",
        ),
        codes=(400, 401, 403, 404, 422),
    ),
    # Before the timeouts: "gateway timeout" is a gateway failure with its own policy.
    *_text_rules(
        ErrorType.RETRYABLE,
        Policy.GATEWAY,
        phrases=(r"bad gateway", r"gateway time-?out", r"temporarily unavailable"),
        codes=(502, 504),
    ),
    *_text_rules(
        ErrorType.RETRYABLE,
        Policy.SERVICE_UNAVAILABLE,
        phrases=(r"service unavailable",),
        codes=(503,),
    ),
    *_text_rules(
        ErrorType.RETRYABLE,
        Policy.SERVER_ERROR,
        phrases=(r"internal server error",),
        codes=(500,),
    ),
    *_text_rules(
        ErrorType.RETRYABLE, Policy.SERVER_DISCONNECTED, phrases=(r"server disconnected",)
    ),
    *_text_rules(
        ErrorType.RETRYABLE,
        Policy.TIMEOUT,
        phrases=(r"timed[ _-]?out", r"time[ _-]?outs?", r"deadline exceeded"),
        codes=(408,),
    ),
    *_text_rules(
        ErrorType.RETRYABLE,
        Policy.CONNECTION,
        phrases=(
            r"connection (?:error|reset|refused|aborted|closed|lost|failed)",
            r"reset by peer",
            r"broken pipe",
            r"econnreset",
            r"econnrefused",
            r"network is unreachable",
        ),
    ),
)


def from_text(text: str, rules: Iterable[_TextRule]) -> Verdict | None:
    """Return the verdict of the first pattern that matches the text."""
    for pattern, error_type, policy in rules:
        if pattern.search(text):
            return Verdict(error_type, policy, Evidence.MESSAGE, pattern=pattern.pattern)
    return None


def _from_status(status: int) -> tuple[ErrorType, Policy | None] | None:
    """Return what an error status means; None for statuses below 400, which prove nothing."""
    if status in (429, 529):  # 529: Anthropic's "overloaded"
        return ErrorType.RETRYABLE, Policy.RATE_LIMIT
    if status == 408:
        return ErrorType.RETRYABLE, Policy.TIMEOUT
    if status == 409:
        # A conflict (e.g. a concurrent request) clears by itself; the SDKs retry it too.
        return ErrorType.RETRYABLE, Policy.DEFAULT
    if 400 <= status < 500:
        return ErrorType.NON_RETRYABLE, None
    if status in (502, 504):
        return ErrorType.RETRYABLE, Policy.GATEWAY
    if status == 503:
        return ErrorType.RETRYABLE, Policy.SERVICE_UNAVAILABLE
    if status >= 500:
        return ErrorType.RETRYABLE, Policy.SERVER_ERROR
    # A 2xx can carry an error too: a stream that fails after the response started.
    return None


def _from_class(error: BaseException) -> tuple[ErrorType, Policy | None] | None:
    """Return what the exception's class alone says, if anything."""
    if isinstance(error, StorageError):  # convstore's own: the class says what to do
        if isinstance(error, TransientStorageError):
            return ErrorType.RETRYABLE, Policy.SERVICE_UNAVAILABLE
        if isinstance(error, PermanentStorageError):
            return ErrorType.FATAL, None
        return ErrorType.NON_RETRYABLE, None  # CommitUnknown, or not recognised
    if isinstance(error, TimeoutError):  # asyncio.TimeoutError is TimeoutError since 3.11
        return ErrorType.RETRYABLE, Policy.TIMEOUT
    if isinstance(error, ConnectionError):
        return ErrorType.RETRYABLE, Policy.CONNECTION
    if isinstance(error, _PROGRAMMING_ERRORS):
        return ErrorType.NON_RETRYABLE, None
    for cls in type(error).__mro__:
        for pattern, policy in _CLASS_NAME_RULES:
            if pattern.search(cls.__name__):
                return ErrorType.RETRYABLE, policy
    return None


def from_structure(error: BaseException) -> Verdict | None:
    """Apply the specific signals, then status, provider code and class to one exception."""
    status = status_of(error)
    codes = provider_codes(error)
    text = message_of(error)
    # Quota, billing and prompt-too-long win over the generic status (400, 429) they come with.
    for error_type, signal_status, signal_codes, signal_text in (
        (ErrorType.FATAL, 402, _FATAL_CODES, _FATAL_TEXT),
        (ErrorType.DEGRADED, 413, _DEGRADED_CODES, _DEGRADED_TEXT),
    ):
        if status == signal_status:
            return Verdict(error_type, None, Evidence.STATUS)
        for code in codes:
            if code in signal_codes:
                return Verdict(error_type, None, Evidence.PROVIDER_CODE, provider_code=code)
        specific = from_text(text, signal_text)
        if specific is not None:
            return specific
    by_status = None if status is None else _from_status(status)
    if by_status is not None:
        return Verdict(*by_status, Evidence.STATUS)
    for code in codes:
        if code in _CODE_TABLE:
            return Verdict(*_CODE_TABLE[code], Evidence.PROVIDER_CODE, provider_code=code)
    by_class = _from_class(error)
    if by_class is not None:
        return Verdict(*by_class, Evidence.EXCEPTION_CLASS)
    return None
