"""Checks on arguments, made before anything is written or attempted.

Shared by the storage and the retry sides, so it imports nothing but the exceptions: checking
a session id must not cost the retry side an import of SQLAlchemy.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from typing import Any, TypeGuard

from convstore.exceptions import InvalidArgument, InvalidSessionId

#: The longest session id, in characters; the ``sessions.session_id`` column is this wide.
SESSION_ID_MAX_LENGTH = 255


def whole_number(name: str, value: object, *, minimum: int) -> int:
    """The value, if it is an int (not a bool) of at least `minimum`."""
    if not _is_whole(value, minimum):
        raise InvalidArgument(f"{name} must be an int of at least {minimum}, not {value!r}")
    return value


def optional_whole_number(name: str, value: object, *, minimum: int) -> int | None:
    """The value, if it is None or an int (not a bool) of at least `minimum`."""
    if value is None:
        return None
    if not _is_whole(value, minimum):
        raise InvalidArgument(f"{name} must be None or an int of at least {minimum}, not {value!r}")
    return value


def _is_whole(value: object, minimum: int) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


def real_number(
    name: str, value: object, *, minimum: float, maximum: float = math.inf, finite: bool = True
) -> float:
    """The value as a float, if it is an int or float (not a bool, not NaN) within the bounds.

    With `finite`, infinities are refused too.
    """
    if (
        not isinstance(value, int | float)
        or isinstance(value, bool)
        or math.isnan(value)
        or (finite and math.isinf(value))
        or not minimum <= value <= maximum
    ):
        kind = "a finite number" if finite else "a number"
        if maximum != math.inf:
            kind += f" within [{minimum:g}, {maximum:g}]"
        elif minimum != -math.inf:
            kind += f" of at least {minimum:g}"
        raise InvalidArgument(f"{name} must be {kind}, not {value!r}")
    return float(value)


#: What no backend can store in a text column: NUL, and surrogates (UTF-8 cannot hold them).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
#: What stands in for each of them: U+FFFD, the character that marks a replaced one.
REPLACEMENT = "\ufffd"


def storable(value: str) -> str:
    """`value` with each character no backend can store as text (NUL, a lone surrogate)
    replaced by U+FFFD, which marks where; `value` itself when it has none."""
    return value if storable_text(value) else _UNSTORABLE.sub(REPLACEMENT, value)


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
    """The interruption reason, if it is None or a str, made `storable`."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidArgument(f"reason must be a str or None, not {type(value).__name__}")
    return storable(value)


def call_ids(value: object) -> frozenset[str]:
    """Tool-call ids, if `value` is an iterable of str (a str alone is refused, not split)."""
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise InvalidArgument(f"pending must be an iterable of call ids, not {value!r}")
    ids = tuple(value)
    wrong = [i for i in ids if not isinstance(i, str)]
    if wrong:
        raise InvalidArgument(f"pending must hold str call ids, not {wrong[0]!r}")
    return frozenset(ids)


#: How many of a conversation's newest messages a store keeps unless told otherwise.
DEFAULT_MAX_MESSAGES = 100

#: The longest rate-limit key (the ``cooldowns.limit_key`` column).
LIMIT_KEY_MAX_LENGTH = 255


def limit_key(value: object) -> str:
    """A rate limit's key: a non-empty str of at most 255 characters, made `storable`."""
    if not isinstance(value, str) or not 0 < len(value) <= LIMIT_KEY_MAX_LENGTH:
        raise InvalidArgument(
            f"limit_key must be a non-empty str of at most {LIMIT_KEY_MAX_LENGTH} characters, "
            f"not {value!r}"
        )
    return storable(value)


def limit(value: object) -> int | None:
    """The row limit, if it is None or an int of at least 0."""
    return optional_whole_number("limit", value, minimum=0)


def max_messages(value: object) -> int:
    """The per-session message cap, if it is an int of at least 1."""
    return whole_number("max_messages", value, minimum=1)
