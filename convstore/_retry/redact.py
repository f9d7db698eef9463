"""Removing secrets from error messages before they are logged or stored, and keeping them short.

Error messages from HTTP clients quote URLs, headers and request bodies, so they can carry API
keys. What is removed: ``sk-...`` / ``sk-ant-...`` keys, bearer tokens, ``x-api-key`` header
values, passwords in ``scheme://user:password@host`` URLs, and the values of parameters whose
name ends in key, token, secret or password (``key=``, ``token=``, ``api_key=``,
``access_token=``, ``client_secret=``...). Removal errs on the side of removing too much.
"""

from __future__ import annotations

import re

__all__ = ["MAX_MESSAGE_CHARS", "REDACTED", "redact", "truncate"]

#: The longest error message convstore stores, in characters.
MAX_MESSAGE_CHARS = 2000
#: What a removed secret is replaced with.
REDACTED = "[REDACTED]"

_TRUNCATED = "…[truncated]"

# Applied in order. Each keeps the non-secret label (scheme, "Bearer", parameter name) so a
# reader can still tell what was there.
_SECRET_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # scheme://user:password@host -> scheme://user:[REDACTED]@host
    (
        re.compile(r"(?P<keep>\b[a-z][a-z0-9+.-]*://[^\s/:@]*:)[^\s/@]+(?=@)", re.IGNORECASE),
        rf"\g<keep>{REDACTED}",
    ),
    # Authorization: Bearer <token>
    (re.compile(r"(?P<keep>\bbearer\s+)[\w.~+/=-]+", re.IGNORECASE), rf"\g<keep>{REDACTED}"),
    # x-api-key: <key> (Anthropic's header), as a header line or a quoted dict entry.
    (
        re.compile(r"""(?P<keep>\bx-api-key['"]?\s*[:=]\s*['"]?)[^\s'",}]+""", re.IGNORECASE),
        rf"\g<keep>{REDACTED}",
    ),
    # OpenAI sk-..., sk-proj-..., Anthropic sk-ant-api03-...; short words like "sk-learn" survive.
    (re.compile(r"\bsk-ant-[\w-]{8,}"), f"sk-ant-{REDACTED}"),
    (re.compile(r"\bsk-[\w-]{12,}"), f"sk-{REDACTED}"),
    # key=, token=, api_key=, access_token=, client_secret=, password= in query strings and forms.
    (
        re.compile(
            r"(?P<keep>(?<![\w-])[\w-]*(?:key|token|secret|password|passwd)=)[^\s&#;'\",]+",
            re.IGNORECASE,
        ),
        rf"\g<keep>{REDACTED}",
    ),
)


def redact(text: str, *, limit: int = MAX_MESSAGE_CHARS) -> str:
    """Return ``text`` with secrets replaced by ``[REDACTED]``, cut to ``limit`` characters."""
    # Only the start survives truncation, so a huge message is cut before the regexes run; the
    # margin keeps any secret that crosses the final cut whole, so it is still recognised.
    text = text[: limit * 4]
    for pattern, replacement in _SECRET_PATTERNS:
        text = pattern.sub(replacement, text)
    return truncate(text, limit)


def truncate(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """Return ``text`` cut to at most ``limit`` characters, marked when something was cut."""
    if len(text) <= limit:
        return text
    if limit <= len(_TRUNCATED):
        return text[:limit]
    return text[: limit - len(_TRUNCATED)] + _TRUNCATED
