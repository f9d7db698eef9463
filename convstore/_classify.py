"""What an API failure means: retry it, give up, shorten the prompt, or call a person.

Evidence is read from the strongest to the weakest, and the first that speaks decides:

1. the user's `ErrorRule`s, in order, on the error and then on each exception of its cause chain;
2. on the error, then on each cause in turn (outermost first):

   a. the quota / billing signals (FATAL: HTTP 402, ``insufficient_quota``, ``billing_error``,
      "credit balance is too low") and then the prompt-too-long ones (DEGRADED: HTTP 413,
      ``context_length_exceeded``, "prompt is too long"), which win over the status they come with;
   b. the HTTP status (``status_code``, ``status``, ``http_status``, ``response.status_code``,
      ``response.status``), if it is 400 or more;
   c. the provider's error type or code (``type``, ``code``, ``body["error"]["type"|"code"]``,
      ``body["type"|"code"]``);
   d. the exception class;

3. the message text of the error and then of its causes, on word boundaries, case-insensitively;
4. otherwise: retryable with the default backoff.

SDK errors (Anthropic, OpenAI, httpx, aiohttp, requests) are recognised by their attributes; none
of those packages is imported.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, NamedTuple

from convstore._backoff import (
    POLICIES,
    BackoffConfig,
    Policy,
    RandomSource,
    compute_delay,
    read_attr,
    retry_after_of,
)
from convstore.exceptions import InvalidArgument

if TYPE_CHECKING:
    from datetime import datetime

__all__ = ["ErrorClassifier", "ErrorRule", "ErrorType", "Evidence", "Explanation", "qualified_name"]

#: How far down ``__cause__`` / ``__context__`` the classifier looks; chains are rarely deeper.
MAX_CAUSE_DEPTH = 16


class ErrorType(StrEnum):
    """What a failure means for the caller."""

    #: Transient: wait and try again.
    RETRYABLE = "retryable"
    #: The request itself is wrong (bad input, bad key, missing model): retrying cannot help.
    NON_RETRYABLE = "non_retryable"
    #: The request is too big for the model: the caller must shorten the conversation.
    DEGRADED = "degraded"
    #: Quota or billing: a person must act before any request can succeed.
    FATAL = "fatal"


class Evidence(StrEnum):
    """The kind of evidence that decided a classification."""

    RULE = "rule"
    STATUS = "status"
    PROVIDER_CODE = "provider_code"
    EXCEPTION_CLASS = "exception_class"
    MESSAGE = "message"
    DEFAULT = "default"


@dataclass(frozen=True, slots=True)
class ErrorRule:
    """A user rule: errors matching every given criterion get ``error_type`` and ``backoff``.

    ``exception`` matches by isinstance, ``status`` by the HTTP status read as the built-ins read
    it, ``message`` by `re.search` on the message (a str pattern is compiled case-insensitively).
    ``backoff=None`` means the classifier's default backoff.
    """

    error_type: ErrorType
    backoff: BackoffConfig | None = None
    exception: type[BaseException] | tuple[type[BaseException], ...] | None = None
    status: int | Collection[int] | None = None
    message: str | re.Pattern[str] | None = None
    name: str | None = None
    _statuses: frozenset[int] | None = field(init=False, repr=False, compare=False)
    _pattern: re.Pattern[str] | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "error_type", ErrorType(self.error_type))
        except ValueError:
            raise InvalidArgument(
                f"error_type must be one of {[t.value for t in ErrorType]}, got {self.error_type!r}"
            ) from None
        if self.backoff is not None and not isinstance(self.backoff, BackoffConfig):
            raise InvalidArgument(f"backoff must be a BackoffConfig or None, got {self.backoff!r}")
        if self.exception is None and self.status is None and self.message is None:
            raise InvalidArgument("an ErrorRule needs at least one of exception, status, message")
        if self.exception is not None and not _is_exception_spec(self.exception):
            raise InvalidArgument(
                f"exception must be an exception class or a tuple of them, got {self.exception!r}"
            )
        statuses = _status_set(self.status)
        if statuses is not None and not isinstance(self.status, int):
            # Kept as a sorted tuple so that rules stay hashable and print the same way each time.
            object.__setattr__(self, "status", tuple(sorted(statuses)))
        object.__setattr__(self, "_statuses", statuses)
        object.__setattr__(self, "_pattern", _compile(self.message))

    def matches(self, error: BaseException) -> bool:
        """Return True when ``error`` itself (not its causes) meets every criterion of the rule."""
        if self.exception is not None and not isinstance(error, self.exception):
            return False
        if self._statuses is not None and status_of(error) not in self._statuses:
            return False
        return self._pattern is None or self._pattern.search(message_of(error)) is not None

    @property
    def label(self) -> str:
        """The rule's name, or a description built from its criteria."""
        if self.name:
            return self.name
        parts = []
        if self.exception is not None:
            classes = self.exception if isinstance(self.exception, tuple) else (self.exception,)
            parts.append("exception=" + "|".join(c.__qualname__ for c in classes))
        if self._statuses is not None:
            parts.append("status=" + "|".join(str(s) for s in sorted(self._statuses)))
        if self._pattern is not None:
            parts.append(f"message=/{self._pattern.pattern}/")
        return " ".join(parts)


def _is_exception_spec(spec: object) -> bool:
    """Return True for an exception class or a non-empty tuple of them."""
    classes = spec if isinstance(spec, tuple) else (spec,)
    return bool(classes) and all(
        isinstance(c, type) and issubclass(c, BaseException) for c in classes
    )


def _status_set(status: int | Collection[int] | None) -> frozenset[int] | None:
    """Return the rule's statuses as a set, rejecting anything that is not an HTTP status."""
    if status is None:
        return None
    statuses = (status,) if isinstance(status, int) else tuple(status)
    if not statuses or not all(_as_status(s) is not None for s in statuses):
        raise InvalidArgument(f"status must be HTTP status codes within 100-599, got {status!r}")
    return frozenset(int(s) for s in statuses)


def _compile(message: str | re.Pattern[str] | None) -> re.Pattern[str] | None:
    """Compile a str pattern case-insensitively; keep a compiled pattern as given."""
    if message is None or isinstance(message, re.Pattern):
        return message
    if not isinstance(message, str):
        raise InvalidArgument(f"message must be a regex str or re.Pattern, got {message!r}")
    try:
        return re.compile(message, re.IGNORECASE)
    except re.error as exc:
        raise InvalidArgument(f"message is not a valid regular expression: {exc}") from exc


@dataclass(frozen=True, slots=True, kw_only=True)
class Explanation:
    """Why an error was classified so: the verdict, the evidence that decided, and what was seen."""

    #: The verdict.
    error_type: ErrorType
    #: The backoff to use when retrying (the default backoff for errors that are not retried).
    backoff: BackoffConfig
    #: The kind of evidence that decided.
    evidence: Evidence
    #: The built-in policy that supplied ``backoff``; None when not retryable or a rule decided.
    policy: Policy | None
    #: The user rule that decided, if one did.
    rule: ErrorRule | None
    #: The HTTP status carried by the error or, failing that, its nearest cause.
    status_code: int | None
    #: The provider's error type/code that decided, or else the first one seen.
    provider_code: str | None
    #: Module-qualified class of the exception that decided (the error itself or a cause).
    exception_class: str
    #: Where in the chain the deciding exception sits: 0 is the error, 1 its cause, and so on.
    cause_depth: int
    #: The regular expression that matched, when message text decided.
    message_pattern: str | None
    #: What the server's ``retry-after-ms`` / ``Retry-After`` asked for, in seconds.
    retry_after_s: float | None

    @property
    def reason(self) -> str:
        """One line for people: ``retryable (rate_limit): HTTP status 429 on x.RateLimitError``."""
        verdict = self.error_type.value
        if self.policy is not None:
            verdict += f" ({self.policy.value})"
        if self.evidence is Evidence.RULE and self.rule is not None:
            because = f"rule {self.rule.label!r}"
        elif self.evidence is Evidence.STATUS:
            because = f"HTTP status {self.status_code}"
        elif self.evidence is Evidence.PROVIDER_CODE:
            because = f"provider code {self.provider_code!r}"
        elif self.evidence is Evidence.EXCEPTION_CLASS:
            because = "exception class"
        elif self.evidence is Evidence.MESSAGE:
            because = f"message matched /{self.message_pattern}/"
        else:
            because = "nothing recognised, default"
        text = f"{verdict}: {because} on {self.exception_class}"
        if self.cause_depth:
            text += f" (cause depth {self.cause_depth})"
        if self.retry_after_s is not None:
            text += f"; server asked to wait {self.retry_after_s:g} s"
        return text

    def __str__(self) -> str:
        return self.reason


class _Verdict(NamedTuple):
    """What one piece of evidence says, before it is dressed up as an Explanation."""

    error_type: ErrorType
    policy: Policy | None
    evidence: Evidence
    provider_code: str | None = None
    pattern: str | None = None


class ErrorClassifier:
    """Decides what an error means (`classify`, `explain`) and how long to wait before retrying."""

    def __init__(
        self,
        default_backoff: BackoffConfig | None = None,
        rules: Iterable[ErrorRule] = (),
        *,
        rand: RandomSource | None = None,
    ) -> None:
        """Use ``default_backoff`` for unrecognised errors, try ``rules`` before the built-ins.

        ``rand`` replaces `random.random` as the jitter source, so tests can assert exact delays.
        """
        if default_backoff is not None and not isinstance(default_backoff, BackoffConfig):
            raise InvalidArgument(
                f"default_backoff must be a BackoffConfig or None, got {default_backoff!r}"
            )
        self.default_backoff = default_backoff if default_backoff is not None else BackoffConfig()
        self.rules: tuple[ErrorRule, ...] = tuple(rules)
        for rule in self.rules:
            if not isinstance(rule, ErrorRule):
                raise InvalidArgument(f"rules must be ErrorRule instances, got {rule!r}")
        self._rand = rand

    def __repr__(self) -> str:
        return f"ErrorClassifier(default_backoff={self.default_backoff!r}, rules={self.rules!r})"

    def classify(self, error: BaseException) -> tuple[ErrorType, BackoffConfig]:
        """Return what ``error`` means and the backoff to use if it is retried."""
        explanation = self.explain(error)
        return explanation.error_type, explanation.backoff

    def compute_delay(self, attempt: int, backoff: BackoffConfig) -> float:
        """Return the seconds to wait after failed attempt ``attempt`` (0-based), never negative."""
        if self._rand is None:
            return compute_delay(attempt, backoff)
        return compute_delay(attempt, backoff, rand=self._rand)

    def explain(self, error: BaseException, *, now: datetime | None = None) -> Explanation:
        """Return the classification of ``error`` with the evidence that decided it.

        ``now`` is the time against which an HTTP-date ``Retry-After`` is measured.
        """
        chain = list(cause_chain(error))
        status = next((s for s in map(status_of, chain) if s is not None), None)
        retry_after = next(
            (s for s in (retry_after_of(e, now=now) for e in chain) if s is not None), None
        )
        first_code = next((c for e in chain for c in provider_codes(e)), None)

        def build(verdict: _Verdict, depth: int, rule: ErrorRule | None = None) -> Explanation:
            if rule is not None:
                backoff = rule.backoff or self.default_backoff
            elif verdict.policy is None or verdict.policy is Policy.DEFAULT:
                backoff = self.default_backoff
            else:
                backoff = POLICIES[verdict.policy]
            return Explanation(
                error_type=verdict.error_type,
                backoff=backoff,
                evidence=verdict.evidence,
                policy=verdict.policy,
                rule=rule,
                status_code=status,
                provider_code=verdict.provider_code or first_code,
                exception_class=qualified_name(type(chain[depth])),
                cause_depth=depth,
                message_pattern=verdict.pattern,
                retry_after_s=retry_after,
            )

        if not isinstance(error, Exception):
            # Cancellation, KeyboardInterrupt, SystemExit: never retried, whatever a rule says.
            return build(_Verdict(ErrorType.NON_RETRYABLE, None, Evidence.EXCEPTION_CLASS), 0)
        for depth, exc in enumerate(chain):
            for rule in self.rules:
                if rule.matches(exc):
                    return build(_Verdict(rule.error_type, None, Evidence.RULE), depth, rule)
        for depth, exc in enumerate(chain):
            verdict = _from_structure(exc)
            if verdict is not None:
                return build(verdict, depth)
        for depth, exc in enumerate(chain):
            verdict = _from_text(message_of(exc), _TEXT_RULES)
            if verdict is not None:
                return build(verdict, depth)
        return build(_Verdict(ErrorType.RETRYABLE, Policy.DEFAULT, Evidence.DEFAULT), 0)


# --- Reading the evidence -------------------------------------------------------------------


def qualified_name(cls: type) -> str:
    """Return ``module.QualName`` for a class, e.g. ``builtins.TimeoutError``."""
    return f"{cls.__module__}.{cls.__qualname__}"


def cause_chain(error: BaseException) -> Iterator[BaseException]:
    """Yield the error, then the chain a traceback prints: the cause, else unsuppressed context.

    Implicit context counts because ``except X: raise Y(...)`` without ``from`` is the common way
    SDK errors get wrapped; ``raise ... from None`` cuts the chain, as it does in a traceback.
    """
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen and len(seen) <= MAX_CAUSE_DEPTH:
        seen.add(id(current))
        yield current
        if current.__cause__ is not None:
            current = current.__cause__
        elif not current.__suppress_context__:
            current = current.__context__
        else:
            current = None


def _as_status(value: object) -> int | None:
    """Return value as an HTTP status if it is an int within 100-599 (HTTPStatus included)."""
    if isinstance(value, int) and not isinstance(value, bool) and 100 <= value <= 599:
        return int(value)
    return None


def status_of(error: BaseException) -> int | None:
    """Return the HTTP status on the exception or its ``response``, whichever shape the SDK uses."""
    response = read_attr(error, "response")
    candidates = (
        read_attr(error, "status_code"),
        read_attr(error, "status"),
        read_attr(error, "http_status"),
        read_attr(response, "status_code"),
        read_attr(response, "status"),
    )
    return next((s for s in map(_as_status, candidates) if s is not None), None)


def _body(error: BaseException) -> Mapping[object, object] | None:
    """Return the parsed error body if the exception carries one as a mapping."""
    body = read_attr(error, "body")
    return body if isinstance(body, Mapping) else None


def provider_codes(error: BaseException) -> list[str]:
    """Return the provider's error types/codes found on the exception, lower-cased, in order."""
    found = [read_attr(error, "type"), read_attr(error, "code")]
    body = _body(error)
    if body is not None:
        inner = body.get("error")
        if isinstance(inner, Mapping):
            found += [inner.get("type"), inner.get("code")]
        found += [body.get("type"), body.get("code")]
    # Anthropic wraps every error body as {"type": "error", "error": {...}}: "error" says nothing.
    return [c.lower() for c in found if isinstance(c, str) and c and c.lower() != "error"]


def message_of(error: BaseException) -> str:
    """Return the text to search: ``str(error)``, plus the body's error message if not in it."""
    try:
        text = str(error)
    except Exception:  # noqa: BLE001 - a broken __str__ must not break classification.
        text = ""
    body = _body(error)
    if body is not None:
        inner = body.get("error")
        for holder in (inner, body):
            message = holder.get("message") if isinstance(holder, Mapping) else None
            if isinstance(message, str) and message not in text:
                text = f"{text}\n{message}" if text else message
    return text


# --- The built-in knowledge -----------------------------------------------------------------

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

# Step 6, in order: the first pattern that matches decides. Rate limits come before the
# non-retryable words because some APIs send "403 Forbidden: rate limit exceeded".
_TEXT_RULES: tuple[_TextRule, ...] = (
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


def _from_text(text: str, rules: Iterable[_TextRule]) -> _Verdict | None:
    """Return the verdict of the first pattern that matches the text."""
    for pattern, error_type, policy in rules:
        if pattern.search(text):
            return _Verdict(error_type, policy, Evidence.MESSAGE, pattern=pattern.pattern)
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


def _from_structure(error: BaseException) -> _Verdict | None:
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
            return _Verdict(error_type, None, Evidence.STATUS)
        for code in codes:
            if code in signal_codes:
                return _Verdict(error_type, None, Evidence.PROVIDER_CODE, provider_code=code)
        specific = _from_text(text, signal_text)
        if specific is not None:
            return specific
    by_status = None if status is None else _from_status(status)
    if by_status is not None:
        return _Verdict(*by_status, Evidence.STATUS)
    for code in codes:
        if code in _CODE_TABLE:
            return _Verdict(*_CODE_TABLE[code], Evidence.PROVIDER_CODE, provider_code=code)
    by_class = _from_class(error)
    if by_class is not None:
        return _Verdict(*by_class, Evidence.EXCEPTION_CLASS)
    return None
