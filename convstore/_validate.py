"""Checks on arguments, made before anything is written."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from convstore._schema import SESSION_ID_MAX_LENGTH
from convstore.exceptions import InvalidArgument, InvalidSessionId


def storable_text(value: str) -> bool:
    """Whether every backend can store the string as text: no NUL and no lone surrogate."""
    if "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def session_id(value: object) -> str:
    """The session id, if it is a non-empty str of at most 255 storable characters."""
    if not isinstance(value, str):
        raise InvalidSessionId(f"session_id must be a str, not {type(value).__name__}")
    if not value:
        raise InvalidSessionId("session_id must not be empty")
    if len(value) > SESSION_ID_MAX_LENGTH:
        raise InvalidSessionId(
            f"session_id is {len(value)} characters long; the limit is {SESSION_ID_MAX_LENGTH}"
        )
    if not storable_text(value):
        raise InvalidSessionId("session_id must not contain NUL characters or lone surrogates")
    return value


def messages(value: object) -> list[Any] | tuple[Any, ...]:
    """The messages, if they are a list or tuple."""
    if not isinstance(value, list | tuple):
        raise InvalidArgument(f"messages must be a list, not {type(value).__name__}")
    return value


def extra(value: object) -> Mapping[str, Any]:
    """The extra state, if it is a mapping (None stands for an empty one)."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidArgument(f"extra must be a dict or None, not {type(value).__name__}")
    return value


def reason(value: object) -> str | None:
    """The interruption reason, if it is None or a storable str."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidArgument(f"reason must be a str or None, not {type(value).__name__}")
    if not storable_text(value):
        raise InvalidArgument("reason must not contain NUL characters or lone surrogates")
    return value


def limit(value: object) -> int | None:
    """The row limit, if it is None or an int of at least 0."""
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise InvalidArgument(f"limit must be None or an int >= 0, not {value!r}")
    return value


def max_messages(value: object) -> int:
    """The per-session message cap, if it is an int of at least 1."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise InvalidArgument(f"max_messages must be an int >= 1, not {value!r}")
    return value
