"""Secrets are removed from error messages, and messages are cut to 2,000 characters."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convstore._retry.redact import MAX_MESSAGE_CHARS, REDACTED, redact, truncate

OPENAI_KEY = "sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z"
ANTHROPIC_KEY = "sk-ant-api03-Zx9_Yw8-Vu7Ts6Rq5Po4Nm3Lk2Ji1Hg0FeDcBa-AAAA"


@pytest.mark.parametrize(
    ("text", "secret", "expected"),
    [
        (
            f"Incorrect API key provided: {OPENAI_KEY}.",
            OPENAI_KEY,
            f"Incorrect API key provided: sk-{REDACTED}.",
        ),
        (
            "invalid x-api-key sk-abcdefghijklmnopqrstuvwx",
            "sk-abcdefghijklmnopqrstuvwx",
            f"invalid x-api-key sk-{REDACTED}",
        ),
        (f"key {ANTHROPIC_KEY} rejected", ANTHROPIC_KEY, f"key sk-ant-{REDACTED} rejected"),
        (
            "headers={'Authorization': 'Bearer eyJhbGciOi.J9.sig-_~+/='}",
            "eyJhbGciOi.J9.sig-_~+/=",
            f"headers={{'Authorization': 'Bearer {REDACTED}'}}",
        ),
        ("authorization: bearer abc123token", "abc123token", f"authorization: bearer {REDACTED}"),
        (
            "headers={'x-api-key': 'my-custom-key-42'}",
            "my-custom-key-42",
            f"headers={{'x-api-key': '{REDACTED}'}}",
        ),
        (
            "cannot reach postgresql+asyncpg://agent:hunter2@db.internal:5432/conv",
            "hunter2",
            f"cannot reach postgresql+asyncpg://agent:{REDACTED}@db.internal:5432/conv",
        ),
        (
            "GET https://user:p%40ss:word@proxy.example.com/ failed",
            "p%40ss:word",
            f"GET https://user:{REDACTED}@proxy.example.com/ failed",
        ),
        (
            "GET https://api.example.com/v1?key=AIzaSyD-secret&model=x failed",
            "AIzaSyD-secret",
            f"GET https://api.example.com/v1?key={REDACTED}&model=x failed",
        ),
        ("url ...?token=abc.def-ghi", "abc.def-ghi", f"url ...?token={REDACTED}"),
        ("form api_key=12345&x=1", "12345", f"form api_key={REDACTED}&x=1"),
        (
            "callback?access_token=ya29.a0Af&state=1",
            "ya29.a0Af",
            f"callback?access_token={REDACTED}&state=1",
        ),
        ("client_secret=s3cr3t", "s3cr3t", f"client_secret={REDACTED}"),
    ],
    ids=[
        "openai-key",
        "plain-sk-key",
        "anthropic-key",
        "bearer",
        "bearer-lowercase",
        "x-api-key-header",
        "url-password",
        "url-password-with-colon",
        "key-query",
        "token-query",
        "api_key-form",
        "access_token-query",
        "client_secret",
    ],
)
def test_each_secret_shape_is_removed(text: str, secret: str, expected: str) -> None:
    """Each secret shape is replaced by [REDACTED], keeping the label around it."""
    result = redact(text)
    assert secret not in result
    assert result == expected


@pytest.mark.parametrize(
    "text",
    [
        "Error code: 429 - rate limit exceeded",
        "scikit sk-learn failed",
        "see https://docs.example.com/errors#429",
        "ask-me-anything",
    ],
)
def test_ordinary_text_is_left_alone(text: str) -> None:
    """Messages without secrets, and short sk- words, come back unchanged."""
    assert redact(text) == text


def test_short_messages_are_not_truncated() -> None:
    """A message of exactly 2,000 characters is kept whole."""
    text = "x" * MAX_MESSAGE_CHARS
    assert redact(text) == text


def test_long_messages_are_cut_to_2000_characters() -> None:
    """A longer message is cut to 2,000 characters, marked as truncated."""
    result = redact("y" * 10_000)
    assert len(result) == MAX_MESSAGE_CHARS
    assert result.endswith("[truncated]")
    assert result.startswith("y" * 1000)


def test_a_secret_across_the_cut_is_still_removed() -> None:
    """A key that straddles the 2,000th character is removed before the cut, leaving no fragment."""
    text = "a " * 990 + OPENAI_KEY + " tail" * 100
    result = redact(text)
    assert len(result) <= MAX_MESSAGE_CHARS
    assert "Ab3dEf6h" not in result


def test_truncate_respects_tiny_limits() -> None:
    """truncate never returns more than the limit, even when the marker does not fit."""
    assert truncate("abcdefghijklmnopqrstuvwxyz", 5) == "abcde"
    assert len(truncate("abcdefghijklmnopqrstuvwxyz", 20)) == 20


@settings(database=None)
@given(
    prefix=st.text(max_size=50),
    body=st.text(
        alphabet=st.characters(whitelist_categories=("Lu", "Ll", "Nd"), max_codepoint=127),
        min_size=20,
        max_size=60,
    ),
    suffix=st.sampled_from(["", " ", ".", "\n", "&x=1", "'"]),
)
def test_no_sk_key_survives(prefix: str, body: str, suffix: str) -> None:
    """Whatever surrounds it, an sk- key of realistic length never appears in the output."""
    key = f"sk-{body}"
    result = redact(f"{prefix} {key}{suffix}")
    assert key not in result
    assert len(result) <= MAX_MESSAGE_CHARS
