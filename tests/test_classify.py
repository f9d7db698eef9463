"""Error classification: every built-in rule, user rules, and the explanation of a verdict."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http import HTTPStatus

import pytest

from convstore import ErrorClassifier, ErrorRule, ErrorType, Evidence, Explanation
from convstore._retry.backoff import POLICIES, BackoffConfig, Policy
from convstore.exceptions import InvalidArgument

# --- Fakes shaped like the SDKs' errors (no SDK is imported) ----------------------------------


class FakeResponse:
    """Like httpx.Response: status_code and headers."""

    def __init__(self, status_code: int, headers: Mapping[str, str] | None = None) -> None:
        self.status_code = status_code
        self.headers = dict(headers or {})


class RateLimitError(Exception):
    """Shaped like anthropic.RateLimitError: status_code, response.headers and a parsed body."""

    def __init__(
        self,
        message: str = "Error code: 429",
        *,
        status_code: int = 429,
        headers: Mapping[str, str] | None = None,
        body: object = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.response = FakeResponse(status_code, headers)
        self.body = body


class OpenAIStatusError(Exception):
    """Shaped like openai.APIStatusError: status_code, code, type and the inner error as body."""

    def __init__(self, message: str, *, status_code: int, code: str | None, type: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.code = code
        self.type = type
        self.body = {"message": message, "type": type, "param": None, "code": code}
        self.response = FakeResponse(status_code)


class HTTPStatusError(Exception):
    """Shaped like httpx.HTTPStatusError: the status only on response.status_code."""

    def __init__(self, status_code: int, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(f"Client error '{status_code}' for url 'https://api.example.com/v1'")
        self.response = FakeResponse(status_code, headers)


class ClientResponseError(Exception):
    """Shaped like aiohttp.ClientResponseError: status and headers on the exception itself."""

    def __init__(self, status: int, message: str = "", headers: Mapping[str, str] | None = None):
        super().__init__(f"{status}, message={message!r}")
        self.status = status
        self.headers = headers or {}


class StripeLikeError(Exception):
    """An error exposing http_status, as some SDKs do."""

    def __init__(self, http_status: int) -> None:
        super().__init__("request failed")
        self.http_status = http_status


class AiohttpResponse:
    """Like aiohttp.ClientResponse: the status lives on response.status."""

    def __init__(self, status: int) -> None:
        self.status = status


class ResponseStatusError(Exception):
    """An error whose response has .status rather than .status_code."""

    def __init__(self, status: int) -> None:
        super().__init__("failed")
        self.response = AiohttpResponse(status)


def anthropic_body(error_type: str, message: str = "") -> dict[str, object]:
    """Return an Anthropic error body: {"type": "error", "error": {"type": ..., "message": ...}}."""
    return {"type": "error", "error": {"type": error_type, "message": message}}


CLASSIFIER = ErrorClassifier()


def verdict(error: BaseException) -> tuple[ErrorType, Policy | None]:
    """Return the error type and the policy the default classifier picks."""
    explanation = CLASSIFIER.explain(error)
    return explanation.error_type, explanation.policy


# --- ErrorType --------------------------------------------------------------------------------


def test_error_type_values_are_the_original_strings() -> None:
    """ErrorType is a str enum with the original four values."""
    assert [t.value for t in ErrorType] == ["retryable", "non_retryable", "degraded", "fatal"]
    assert isinstance(ErrorType.FATAL, str)
    assert str(ErrorType.FATAL) == "fatal"
    assert ErrorType("fatal") is ErrorType.FATAL


# --- Step 1-2: HTTP status from every SDK shape -----------------------------------------------


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (400, (ErrorType.NON_RETRYABLE, None)),
        (401, (ErrorType.NON_RETRYABLE, None)),
        (403, (ErrorType.NON_RETRYABLE, None)),
        (404, (ErrorType.NON_RETRYABLE, None)),
        (422, (ErrorType.NON_RETRYABLE, None)),
        (405, (ErrorType.NON_RETRYABLE, None)),
        (402, (ErrorType.FATAL, None)),
        (413, (ErrorType.DEGRADED, None)),
        (408, (ErrorType.RETRYABLE, Policy.TIMEOUT)),
        (409, (ErrorType.RETRYABLE, Policy.DEFAULT)),
        (429, (ErrorType.RETRYABLE, Policy.RATE_LIMIT)),
        (529, (ErrorType.RETRYABLE, Policy.RATE_LIMIT)),
        (500, (ErrorType.RETRYABLE, Policy.SERVER_ERROR)),
        (502, (ErrorType.RETRYABLE, Policy.GATEWAY)),
        (503, (ErrorType.RETRYABLE, Policy.SERVICE_UNAVAILABLE)),
        (504, (ErrorType.RETRYABLE, Policy.GATEWAY)),
        (507, (ErrorType.RETRYABLE, Policy.SERVER_ERROR)),
    ],
)
def test_status_decides(status: int, expected: tuple[ErrorType, Policy | None]) -> None:
    """Each HTTP status maps to its error type and policy (402 fatal, 413 degraded, 5xx retried)."""
    assert verdict(RateLimitError("failed", status_code=status)) == expected


@pytest.mark.parametrize(
    "error",
    [
        RateLimitError("x", status_code=429),
        HTTPStatusError(429),
        ClientResponseError(429),
        StripeLikeError(429),
        ResponseStatusError(429),
        RateLimitError("x", status_code=HTTPStatus.TOO_MANY_REQUESTS),
    ],
    ids=["status_code", "response.status_code", "status", "http_status", "response.status", "enum"],
)
def test_status_is_read_from_every_sdk_shape(error: Exception) -> None:
    """A 429 is recognised on status_code, status, http_status, response.status_code/.status."""
    explanation = CLASSIFIER.explain(error)
    assert (explanation.error_type, explanation.policy) == (ErrorType.RETRYABLE, Policy.RATE_LIMIT)
    assert explanation.evidence is Evidence.STATUS
    assert explanation.status_code == 429


def test_status_wins_over_the_message() -> None:
    """A status is stronger evidence than words in the message."""
    error = HTTPStatusError(404)
    error.args = ("timed out while the rate limit was exceeded",)
    assert verdict(error) == (ErrorType.NON_RETRYABLE, None)


def test_non_error_status_is_not_evidence() -> None:
    """A 200 (an error in the middle of a stream) does not decide; the provider code does."""
    error = RateLimitError("stream error", status_code=200, body=anthropic_body("overloaded_error"))
    explanation = CLASSIFIER.explain(error)
    assert (explanation.error_type, explanation.policy) == (ErrorType.RETRYABLE, Policy.RATE_LIMIT)
    assert explanation.evidence is Evidence.PROVIDER_CODE
    assert explanation.provider_code == "overloaded_error"


@pytest.mark.parametrize("status", [True, "429", 99, 600, None])
def test_odd_status_values_are_ignored(status: object) -> None:
    """Booleans, strings and numbers outside 100-599 are not taken for an HTTP status."""
    error = Exception("boom")
    error.status_code = status  # type: ignore[attr-defined]  # a foreign attribute on purpose
    assert CLASSIFIER.explain(error).status_code is None


# --- Specific signals: FATAL and DEGRADED win over the status ---------------------------------


def test_insufficient_quota_as_429_is_fatal() -> None:
    """OpenAI's insufficient_quota arrives as a 429 but is FATAL: waiting will not help."""
    error = OpenAIStatusError(
        "You exceeded your current quota, please check your plan and billing details.",
        status_code=429,
        code="insufficient_quota",
        type="insufficient_quota",
    )
    explanation = CLASSIFIER.explain(error)
    assert explanation.error_type is ErrorType.FATAL
    assert explanation.evidence is Evidence.PROVIDER_CODE
    assert explanation.provider_code == "insufficient_quota"
    assert explanation.status_code == 429


def test_billing_error_in_the_body_is_fatal() -> None:
    """Anthropic's billing_error type in body["error"]["type"] is FATAL whatever the status."""
    error = RateLimitError(status_code=429, body=anthropic_body("billing_error", "no funds"))
    assert verdict(error) == (ErrorType.FATAL, None)


def test_credit_balance_too_low_as_400_is_fatal() -> None:
    """ "credit balance is too low" on a 400 is FATAL, not a mere bad request."""
    error = RateLimitError(
        status_code=400,
        body=anthropic_body(
            "invalid_request_error",
            "Your credit balance is too low to access the Anthropic API.",
        ),
    )
    explanation = CLASSIFIER.explain(error)
    assert explanation.error_type is ErrorType.FATAL
    assert explanation.evidence is Evidence.MESSAGE
    assert explanation.message_pattern is not None
    assert "credit balance" in explanation.message_pattern


def test_body_type_and_code_are_read() -> None:
    """A provider code in body["type"] or body["code"] counts, not only in body["error"]."""
    error = HTTPStatusError(429)
    error.body = {"code": "insufficient_quota"}  # type: ignore[attr-defined]
    assert verdict(error) == (ErrorType.FATAL, None)


def test_status_402_is_fatal() -> None:
    """HTTP 402 Payment Required is FATAL."""
    assert verdict(HTTPStatusError(402)) == (ErrorType.FATAL, None)


def test_prompt_too_long_as_400_is_degraded() -> None:
    """Anthropic's "prompt is too long" 400 is DEGRADED: the caller must shorten the prompt."""
    error = RateLimitError(
        status_code=400,
        body=anthropic_body("invalid_request_error", "prompt is too long: 210000 tokens > 200000"),
    )
    assert verdict(error) == (ErrorType.DEGRADED, None)


def test_context_length_exceeded_code_is_degraded() -> None:
    """OpenAI's context_length_exceeded code is DEGRADED even though its type is a plain 400."""
    error = OpenAIStatusError(
        "This model's maximum context length is 8192 tokens.",
        status_code=400,
        code="context_length_exceeded",
        type="invalid_request_error",
    )
    explanation = CLASSIFIER.explain(error)
    assert explanation.error_type is ErrorType.DEGRADED
    assert explanation.provider_code == "context_length_exceeded"


def test_status_413_is_degraded() -> None:
    """HTTP 413 (request too large) is DEGRADED."""
    assert verdict(HTTPStatusError(413)) == (ErrorType.DEGRADED, None)


@pytest.mark.parametrize(
    "message",
    ["Prompt is too long", "context length exceeded", "exceeds the MAXIMUM CONTEXT LENGTH of"],
)
def test_prompt_too_long_phrases_are_degraded(message: str) -> None:
    """The prompt-too-long phrases are DEGRADED in any case, even on a 429."""
    assert verdict(RateLimitError(message, status_code=429)) == (ErrorType.DEGRADED, None)


# --- Step 3: provider error type / code -------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("overloaded_error", (ErrorType.RETRYABLE, Policy.RATE_LIMIT)),
        ("rate_limit_error", (ErrorType.RETRYABLE, Policy.RATE_LIMIT)),
        ("api_error", (ErrorType.RETRYABLE, Policy.SERVER_ERROR)),
        ("authentication_error", (ErrorType.NON_RETRYABLE, None)),
        ("permission_error", (ErrorType.NON_RETRYABLE, None)),
        ("not_found_error", (ErrorType.NON_RETRYABLE, None)),
        ("invalid_request_error", (ErrorType.NON_RETRYABLE, None)),
    ],
)
def test_provider_code_decides_without_a_status(
    code: str, expected: tuple[ErrorType, Policy | None]
) -> None:
    """Without an error status, the provider's error type decides."""
    error = Exception("stream failed")
    error.body = anthropic_body(code)  # type: ignore[attr-defined]
    assert verdict(error) == expected


def test_code_attribute_is_read() -> None:
    """A provider code on the exception's own code attribute is read, case-insensitively."""
    error = Exception("failed")
    error.code = "RATE_LIMIT_EXCEEDED"  # type: ignore[attr-defined]
    assert verdict(error) == (ErrorType.RETRYABLE, Policy.RATE_LIMIT)


# --- Step 4: exception classes ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "policy"),
    [
        (TimeoutError(), Policy.TIMEOUT),
        (asyncio.TimeoutError(), Policy.TIMEOUT),  # noqa: UP041 - the issue names this alias
        (ConnectionError(), Policy.CONNECTION),
        (ConnectionResetError(104, "reset"), Policy.CONNECTION),
        (ConnectionRefusedError(), Policy.CONNECTION),
        (BrokenPipeError(), Policy.CONNECTION),
    ],
)
def test_timeouts_and_connection_errors_are_retryable(error: Exception, policy: Policy) -> None:
    """TimeoutError (asyncio's too) and every ConnectionError are retried with their policy."""
    assert verdict(error) == (ErrorType.RETRYABLE, policy)


@pytest.mark.parametrize(
    "error",
    [
        TypeError("x"),
        AttributeError("x"),
        NameError("x"),
        KeyError("x"),
        IndexError("x"),
        AssertionError("x"),
        NotImplementedError("x"),
        ImportError("x"),
    ],
)
def test_programming_errors_are_not_retried(error: Exception) -> None:
    """Programming errors are NON_RETRYABLE: the same code will fail the same way."""
    explanation = CLASSIFIER.explain(error)
    assert explanation.error_type is ErrorType.NON_RETRYABLE
    assert explanation.evidence is Evidence.EXCEPTION_CLASS


class APITimeoutError(Exception):
    """Named like anthropic/openai APITimeoutError, which is not a builtins.TimeoutError."""


class ReadTimeout(Exception):
    """Named like httpx.ReadTimeout."""


class ConnectError(Exception):
    """Named like httpx.ConnectError."""


class ServerDisconnectedError(Exception):
    """Named like aiohttp.ServerDisconnectedError."""


@pytest.mark.parametrize(
    ("error", "policy"),
    [
        (APITimeoutError(""), Policy.TIMEOUT),
        (ReadTimeout(""), Policy.TIMEOUT),
        (ConnectError(""), Policy.CONNECTION),
        (ServerDisconnectedError(""), Policy.SERVER_DISCONNECTED),
    ],
)
def test_sdk_network_errors_are_recognised_by_class_name(error: Exception, policy: Policy) -> None:
    """SDK timeouts and connection errors that do not subclass the built-ins are known by name."""
    assert verdict(error) == (ErrorType.RETRYABLE, policy)


# --- Step 5: the cause chain ------------------------------------------------------------------


def raise_wrapped(inner: BaseException, outer: Exception, *, explicit: bool = True) -> Exception:
    """Return ``outer`` raised while handling ``inner``, with or without ``from``."""
    try:
        try:
            raise inner
        except type(inner) as exc:
            if explicit:
                raise outer from exc
            raise outer  # noqa: B904 - implicit context is the case under test
    except type(outer) as caught:
        return caught


def test_wrapped_429_is_still_a_429() -> None:
    """A 429 wrapped with ``raise ... from`` is found through __cause__."""
    error = raise_wrapped(RateLimitError(headers={"retry-after": "7"}), RuntimeError("LLM failed"))
    explanation = CLASSIFIER.explain(error)
    assert (explanation.error_type, explanation.policy) == (ErrorType.RETRYABLE, Policy.RATE_LIMIT)
    assert explanation.cause_depth == 1
    assert explanation.exception_class == f"{__name__}.RateLimitError"
    assert explanation.status_code == 429
    assert explanation.retry_after_s == 7.0


def test_implicit_context_is_followed() -> None:
    """An error raised while handling a 503, without ``from``, is classified by the 503."""
    error = raise_wrapped(HTTPStatusError(503), RuntimeError("call failed"), explicit=False)
    assert verdict(error) == (ErrorType.RETRYABLE, Policy.SERVICE_UNAVAILABLE)


def test_from_none_cuts_the_chain() -> None:
    """``raise ... from None`` hides the context, as it does in a traceback."""
    try:
        try:
            raise HTTPStatusError(401)
        except HTTPStatusError:
            raise RuntimeError("call failed") from None
    except RuntimeError as exc:
        error = exc
    assert verdict(error) == (ErrorType.RETRYABLE, Policy.DEFAULT)


def test_the_error_itself_wins_over_its_cause() -> None:
    """Evidence on the outer error beats evidence on its cause."""
    error = raise_wrapped(HTTPStatusError(503), KeyError("missing"))
    explanation = CLASSIFIER.explain(error)
    assert explanation.error_type is ErrorType.NON_RETRYABLE
    assert explanation.cause_depth == 0


def test_structure_of_a_cause_wins_over_the_outer_message() -> None:
    """A cause's status is stronger than words in the outer message."""
    error = raise_wrapped(HTTPStatusError(401), RuntimeError("timed out"))
    assert verdict(error) == (ErrorType.NON_RETRYABLE, None)


def test_cyclic_chains_terminate() -> None:
    """A cause chain that loops back on itself is walked once."""
    first, second = RuntimeError("a"), RuntimeError("b")
    first.__cause__, second.__cause__ = second, first
    assert verdict(first) == (ErrorType.RETRYABLE, Policy.DEFAULT)


# --- Step 6: the message text -----------------------------------------------------------------


def test_req_14290_is_not_a_rate_limit() -> None:
    """ "429" inside a request id like req_14290 is not a rate limit."""
    explanation = CLASSIFIER.explain(RuntimeError("request req_14290 failed"))
    assert explanation.evidence is Evidence.DEFAULT
    assert explanation.policy is Policy.DEFAULT


@pytest.mark.parametrize("message", ["id req-429-a failed", "client v1.429 crashed", "code 14290"])
def test_numbers_inside_ids_and_versions_are_not_statuses(message: str) -> None:
    """Status numbers glued to ids or versions are not read as statuses."""
    assert CLASSIFIER.explain(RuntimeError(message)).evidence is Evidence.DEFAULT


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("Error code: 429 - too busy", (ErrorType.RETRYABLE, Policy.RATE_LIMIT)),
        ("RATE LIMIT reached", (ErrorType.RETRYABLE, Policy.RATE_LIMIT)),
        ("Too Many Requests", (ErrorType.RETRYABLE, Policy.RATE_LIMIT)),
        ("Overloaded", (ErrorType.RETRYABLE, Policy.RATE_LIMIT)),
        ("Request timed out.", (ErrorType.RETRYABLE, Policy.TIMEOUT)),
        ("read timeout", (ErrorType.RETRYABLE, Policy.TIMEOUT)),
        ("Connection error.", (ErrorType.RETRYABLE, Policy.CONNECTION)),
        ("Connection reset by peer", (ErrorType.RETRYABLE, Policy.CONNECTION)),
        ("Server disconnected", (ErrorType.RETRYABLE, Policy.SERVER_DISCONNECTED)),
        ("500 Internal Server Error", (ErrorType.RETRYABLE, Policy.SERVER_ERROR)),
        ("Service Unavailable", (ErrorType.RETRYABLE, Policy.SERVICE_UNAVAILABLE)),
        ("temporarily unavailable", (ErrorType.RETRYABLE, Policy.GATEWAY)),
        ("502 Bad Gateway", (ErrorType.RETRYABLE, Policy.GATEWAY)),
        ("Gateway Timeout", (ErrorType.RETRYABLE, Policy.GATEWAY)),
        ("Unauthorized", (ErrorType.NON_RETRYABLE, None)),
        ("authentication failed", (ErrorType.NON_RETRYABLE, None)),
        ("Invalid API key provided", (ErrorType.NON_RETRYABLE, None)),
        ("Forbidden", (ErrorType.NON_RETRYABLE, None)),
        ("model not found", (ErrorType.NON_RETRYABLE, None)),
        ("validation error in field x", (ErrorType.NON_RETRYABLE, None)),
        ("Bad Request", (ErrorType.NON_RETRYABLE, None)),
        ("Payment Required", (ErrorType.FATAL, None)),
        ("insufficient_quota", (ErrorType.FATAL, None)),
        ("Request Entity Too Large", (ErrorType.DEGRADED, None)),
        ("nothing to see here", (ErrorType.RETRYABLE, Policy.DEFAULT)),
    ],
)
def test_message_text_decides_last(message: str, expected: tuple[ErrorType, Policy | None]) -> None:
    """Without structure, message phrases decide case-insensitively on word boundaries."""
    explanation = CLASSIFIER.explain(RuntimeError(message))
    assert (explanation.error_type, explanation.policy) == expected


def test_words_must_be_whole() -> None:
    """ "timeouts" counts as a timeout but "overtimeout" and "forbiddenness" are not whole words."""
    assert verdict(RuntimeError("too many timeouts")) == (ErrorType.RETRYABLE, Policy.TIMEOUT)
    assert verdict(RuntimeError("overtimeout forbiddenness")) == (
        ErrorType.RETRYABLE,
        Policy.DEFAULT,
    )


def test_message_of_a_cause_is_read() -> None:
    """Message text is searched along the cause chain too."""
    error = raise_wrapped(RuntimeError("upstream said: Too Many Requests"), RuntimeError("failed"))
    explanation = CLASSIFIER.explain(error)
    assert explanation.policy is Policy.RATE_LIMIT
    assert explanation.cause_depth == 1


def test_unknown_errors_use_the_default_backoff() -> None:
    """Anything unrecognised is RETRYABLE with the classifier's default_backoff."""
    default = BackoffConfig(base_delay_ms=10, max_delay_ms=20, max_retries=9)
    classifier = ErrorClassifier(default_backoff=default)
    assert classifier.classify(ValueError("odd")) == (ErrorType.RETRYABLE, default)


def test_classify_returns_the_policy_backoff() -> None:
    """classify returns the matched policy's BackoffConfig, the original API's tuple."""
    assert CLASSIFIER.classify(RateLimitError()) == (
        ErrorType.RETRYABLE,
        POLICIES[Policy.RATE_LIMIT],
    )


class BrokenStr(Exception):
    """An exception whose __str__ fails."""

    def __str__(self) -> str:
        raise RuntimeError("broken")


def test_broken_str_does_not_break_classification() -> None:
    """An exception whose __str__ raises is still classified."""
    assert CLASSIFIER.explain(BrokenStr()).error_type is ErrorType.RETRYABLE


@pytest.mark.parametrize(
    "error", [KeyboardInterrupt(), SystemExit(1), asyncio.CancelledError(), GeneratorExit()]
)
def test_base_exceptions_are_never_retryable(error: BaseException) -> None:
    """Cancellation and interpreter exits classify as NON_RETRYABLE, even when a rule matches."""
    classifier = ErrorClassifier(rules=[ErrorRule(ErrorType.RETRYABLE, exception=BaseException)])
    assert classifier.explain(error).error_type is ErrorType.NON_RETRYABLE


# --- User rules -------------------------------------------------------------------------------


class QuotaExhausted(Exception):
    """An application error a user wants treated as FATAL."""


def test_rule_by_exception_class() -> None:
    """A rule matching an exception class decides, with its own backoff."""
    backoff = BackoffConfig(base_delay_ms=1, max_delay_ms=2)
    rule = ErrorRule(ErrorType.FATAL, backoff, exception=QuotaExhausted, name="quota")
    explanation = ErrorClassifier(rules=[rule]).explain(QuotaExhausted("out"))
    assert explanation.error_type is ErrorType.FATAL
    assert explanation.backoff == backoff
    assert explanation.evidence is Evidence.RULE
    assert explanation.rule is rule


def test_rules_come_before_the_built_ins() -> None:
    """A rule can overrule a built-in verdict: here a 429 is not retried."""
    rule = ErrorRule(ErrorType.NON_RETRYABLE, status=429)
    assert ErrorClassifier(rules=[rule]).classify(RateLimitError())[0] is ErrorType.NON_RETRYABLE


def test_rule_by_status_list() -> None:
    """A rule may list several statuses; any one of them matches."""
    backoff = BackoffConfig(max_retries=8)
    rule = ErrorRule(ErrorType.RETRYABLE, backoff, status=[404, 410])
    classifier = ErrorClassifier(rules=[rule])
    assert classifier.classify(HTTPStatusError(410)) == (ErrorType.RETRYABLE, backoff)
    assert classifier.classify(HTTPStatusError(401))[0] is ErrorType.NON_RETRYABLE


def test_rule_by_message_regex_is_case_insensitive() -> None:
    """A str message pattern is searched case-insensitively."""
    rule = ErrorRule(ErrorType.DEGRADED, message=r"too many tokens")
    classifier = ErrorClassifier(rules=[rule])
    assert classifier.classify(RuntimeError("Too Many Tokens here"))[0] is ErrorType.DEGRADED


def test_compiled_pattern_is_used_as_given() -> None:
    """A compiled pattern keeps its own flags (here: case-sensitive)."""
    rule = ErrorRule(ErrorType.FATAL, message=re.compile("QUOTA"))
    classifier = ErrorClassifier(rules=[rule])
    assert classifier.classify(RuntimeError("QUOTA"))[0] is ErrorType.FATAL
    assert classifier.classify(RuntimeError("quota"))[0] is ErrorType.RETRYABLE


def test_every_criterion_of_a_rule_must_match() -> None:
    """A rule with a class and a status matches only errors that have both."""
    rule = ErrorRule(ErrorType.FATAL, exception=RateLimitError, status=503)
    classifier = ErrorClassifier(rules=[rule])
    assert classifier.classify(RateLimitError(status_code=503))[0] is ErrorType.FATAL
    assert classifier.classify(RateLimitError(status_code=429))[0] is ErrorType.RETRYABLE
    assert classifier.classify(HTTPStatusError(503))[0] is ErrorType.RETRYABLE


def test_first_matching_rule_wins() -> None:
    """Rules are tried in the order given."""
    first = ErrorRule(ErrorType.FATAL, message="boom", name="first")
    second = ErrorRule(ErrorType.DEGRADED, message="boom", name="second")
    assert ErrorClassifier(rules=[first, second]).explain(RuntimeError("boom")).rule is first


def test_rules_see_the_cause_chain() -> None:
    """A rule matches a wrapped error too, and that beats built-in evidence on the wrapper."""
    rule = ErrorRule(ErrorType.FATAL, exception=QuotaExhausted)
    error = raise_wrapped(QuotaExhausted("out"), HTTPStatusError(503))
    explanation = ErrorClassifier(rules=[rule]).explain(error)
    assert explanation.error_type is ErrorType.FATAL
    assert explanation.cause_depth == 1


def test_rule_without_backoff_uses_the_default() -> None:
    """A rule without a backoff gets the classifier's default backoff."""
    default = BackoffConfig(max_retries=1)
    classifier = ErrorClassifier(default, [ErrorRule(ErrorType.RETRYABLE, exception=KeyError)])
    assert classifier.classify(KeyError("k")) == (ErrorType.RETRYABLE, default)


def test_rules_are_hashable_and_comparable() -> None:
    """Rules built from a list of statuses are hashable and equal when built alike."""
    one = ErrorRule(ErrorType.FATAL, status=[503, 500])
    two = ErrorRule(ErrorType.FATAL, status=(500, 503))
    assert one == two
    assert hash(one) == hash(two)


def test_rule_error_type_may_be_given_as_str() -> None:
    """An ErrorType value given as a plain str is accepted and normalised."""
    rule = ErrorRule("fatal", status=500)  # type: ignore[arg-type]  # str accepted at runtime
    assert rule.error_type is ErrorType.FATAL


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({}, "at least one"),
        ({"status": 42}, "status"),
        ({"status": []}, "status"),
        ({"message": "("}, "regular expression"),
        ({"message": 5}, "message"),
        ({"exception": int}, "exception"),
        ({"exception": ()}, "exception"),
        ({"status": 500, "backoff": 3}, "backoff"),
    ],
)
def test_invalid_rules_raise_invalid_argument(kwargs: dict[str, object], match: str) -> None:
    """A rule with no criterion or a malformed one raises InvalidArgument saying which."""
    with pytest.raises(InvalidArgument, match=match):
        ErrorRule(ErrorType.FATAL, **kwargs)  # type: ignore[arg-type]  # wrong on purpose


def test_unknown_error_type_raises_invalid_argument() -> None:
    """An error_type that is not an ErrorType value raises InvalidArgument listing the choices."""
    with pytest.raises(InvalidArgument, match="error_type"):
        ErrorRule("maybe", status=500)  # type: ignore[arg-type]  # wrong on purpose


@pytest.mark.parametrize(
    "kwargs", [{"default_backoff": {"base_delay_ms": 1}}, {"rules": ["not a rule"]}]
)
def test_invalid_classifier_arguments_raise(kwargs: dict[str, object]) -> None:
    """A default_backoff that is not a BackoffConfig, or a rule not an ErrorRule, is refused."""
    with pytest.raises(InvalidArgument):
        ErrorClassifier(**kwargs)  # type: ignore[arg-type]  # wrong on purpose


# --- Asking why -------------------------------------------------------------------------------


def test_explanation_carries_all_the_evidence() -> None:
    """explain() reports status, provider code, class, depth, pattern, rule and Retry-After."""
    error = RateLimitError(
        "Error code: 429",
        headers={"Retry-After": "12"},
        body=anthropic_body("rate_limit_error", "slow down"),
    )
    explanation = CLASSIFIER.explain(error)
    assert explanation == Explanation(
        error_type=ErrorType.RETRYABLE,
        backoff=POLICIES[Policy.RATE_LIMIT],
        evidence=Evidence.STATUS,
        policy=Policy.RATE_LIMIT,
        rule=None,
        status_code=429,
        provider_code="rate_limit_error",
        exception_class=f"{__name__}.RateLimitError",
        cause_depth=0,
        message_pattern=None,
        retry_after_s=12.0,
    )


def test_reason_is_one_readable_line() -> None:
    """The reason names the verdict, the policy, the evidence, the class and the server's wait."""
    error = raise_wrapped(RateLimitError(headers={"Retry-After": "12"}), RuntimeError("failed"))
    reason = CLASSIFIER.explain(error).reason
    assert reason == (
        f"retryable (rate_limit): HTTP status 429 on {__name__}.RateLimitError (cause depth 1); "
        "server asked to wait 12 s"
    )
    assert str(CLASSIFIER.explain(error)) == reason


def test_reason_names_the_rule() -> None:
    """When a rule decides, the reason names it."""
    rule = ErrorRule(ErrorType.FATAL, status=[500, 503])
    reason = ErrorClassifier(rules=[rule]).explain(HTTPStatusError(503)).reason
    assert reason.startswith("fatal: rule 'status=500|503' on ")


def test_explain_measures_http_dates_against_now() -> None:
    """An HTTP-date Retry-After is measured from the given now."""
    now = datetime(2025, 1, 1, tzinfo=UTC)
    when = format_datetime(now + timedelta(seconds=45), usegmt=True)
    explanation = CLASSIFIER.explain(
        ClientResponseError(503, headers={"Retry-After": when}), now=now
    )
    assert explanation.retry_after_s == 45.0


def test_compute_delay_uses_the_injected_randomness() -> None:
    """ErrorClassifier(rand=...) makes compute_delay exact."""
    classifier = ErrorClassifier(rand=lambda: 0.0)
    assert classifier.compute_delay(2, BackoffConfig(base_delay_ms=1000)) == pytest.approx(3.6)
