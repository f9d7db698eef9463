"""Reading the evidence an exception carries: its cause chain, HTTP status, provider codes, text.

SDK errors (Anthropic, OpenAI, httpx, aiohttp, requests) are read through their attributes;
none of those packages is imported.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from enum import StrEnum

#: How far down ``__cause__`` / ``__context__`` the classifier looks; chains are rarely deeper.
MAX_CAUSE_DEPTH = 16


class Evidence(StrEnum):
    """The kind of evidence that decided a classification."""

    RULE = "rule"
    STATUS = "status"
    PROVIDER_CODE = "provider_code"
    EXCEPTION_CLASS = "exception_class"
    MESSAGE = "message"
    DEFAULT = "default"


def read_attr(obj: object, name: str) -> object:
    """Return ``obj.name`` or None; some SDK properties raise when the value was never set."""
    if obj is None:
        return None
    try:
        return getattr(obj, name, None)
    except Exception:  # noqa: BLE001 - a property's own failure means "no such evidence".
        return None


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


def as_status(value: object) -> int | None:
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
    return next((s for s in map(as_status, candidates) if s is not None), None)


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
