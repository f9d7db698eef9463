"""Turn message bodies into JSON text that SQLite and PostgreSQL ``jsonb`` both accept, and back.

``decode(encode(value))`` gives back ``value`` under these rules:

1. JSON-native values round-trip exactly: dicts with str keys (in their order), lists, str, int of
   any size, float, bool and None, nested up to the limit in rule 5. Tuples become lists.
2. Values the databases refuse still round-trip exactly, stored as a tagged object whose key
   ``"$convstore"`` names the kind:

   - float NaN, Infinity, -Infinity: ``{"$convstore": "float", "value": "NaN"}``; and -0.0 and
     whole floats from 1e16 up to the 64-bit limit, which PostgreSQL's jsonb would give back
     changed: ``{"$convstore": "float", "value": "1e+16"}``;
   - a str holding NUL or a lone surrogate: ``{"$convstore": "str", "b64": "..."}``, the base64
     of ``s.encode("utf-8", "surrogatepass")``;
   - an int below -2**63 or above 2**64 - 1, in hex because ``str()`` refuses ints of more than
     4,300 digits: ``{"$convstore": "int", "hex": "-0x8000000000000001"}``;
   - a dict with a ``"$convstore"`` key, or a key holding NUL or a lone surrogate:
     ``{"$convstore": "dict", "items": [[key, value], ...]}``, each key a str or a str tag.

   With ``jsonb=False`` (for SQLite, which keeps the JSON text it is given) NUL inside strings
   may stay a ``\u0000`` escape and those floats plain JSON numbers: the faster encoding skips
   looking for them, and they read back exactly all the same.

3. Values JSON has no type for are stored as ``str(value)``, as ``json.dumps(value, default=str)``
   would: datetime, date, time, bytes, set, frozenset, Decimal, UUID, dataclass instances and any
   other object (``object.__repr__`` stands in if ``str()`` itself fails). Subclasses of str, int,
   float, list, tuple and dict (namedtuples too) are stored as their plain content. An Enum member
   is stored as its value, which is what orjson does (``json.dumps`` would call ``default``).
4. Dict keys that are not str become strings as ``json.dumps`` makes them: 1 -> "1",
   1.5 -> "1.5", True -> "true", None -> "null"; any other key becomes ``str(key)``. When two keys
   become the same string, the later value wins.
5. A value nested more than 254 levels deep (orjson's limit, counted after tagging), or one that
   contains itself, raises `InvalidArgument`. ``encode`` raises nothing else, whatever it is given.
"""

from __future__ import annotations

import base64
import enum
import math
import re
from collections.abc import Sequence
from typing import Any

import orjson

from convstore.exceptions import InvalidArgument

__all__ = ["decode", "encode", "encode_many", "untag"]

_TAG = "$convstore"
_OPTIONS = orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_DATETIME
# orjson refuses to write ints outside this range and reads them back as floats.
_INT_MIN, _INT_MAX = -(2**63), 2**64 - 1
_MAX_DEPTH = 254  # orjson's own nesting limit, so both paths refuse the same values
# PostgreSQL rejects the \u0000 escape, and no UTF-8 text can hold a lone surrogate.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
# PostgreSQL's numeric, behind jsonb, writes a float of 1e16 or more back in integer digits, which
# read back as an int while they fit 64 bits, and it has no negative zero. orjson writes the
# first kind with an exponent of 16 to 19 and the second as -0.0.
_INTEGRAL_FLOAT_MIN = 1e16
_RESHAPED_TRACE = re.compile(rb"e\+1[6-9]|-0\.0")


class _NeedsTag(Exception):
    """Raised from orjson's ``default`` to send the whole value down the slow path."""


def encode(value: object, *, jsonb: bool = True) -> str:
    """Return JSON text for ``value`` (module rules); with `jsonb`, text PostgreSQL's jsonb
    takes and gives back unchanged, else text that SQLite's JSON functions take."""
    try:
        out = orjson.dumps(value, default=_default, option=_OPTIONS)
    except orjson.JSONEncodeError:
        pass  # a big int, lone surrogate, non-str key, NUL from str(), or too deep
    else:
        if not (_suspect(out, jsonb) and _has_hidden(value)):
            return out.decode()
    try:
        return orjson.dumps(_safe(value, set())).decode()
    except (orjson.JSONEncodeError, RecursionError) as exc:  # the walk recurses once per level
        raise InvalidArgument(
            f"value is nested more than {_MAX_DEPTH} levels deep once its special values are tagged"
        ) from exc


def encode_many(values: Sequence[object], *, jsonb: bool = True) -> list[str]:
    """Return ``[encode(v) for v in values]``, faster for a whole conversation.

    The outputs are checked for traces of special values in one pass over their concatenation
    instead of one pass per value; only if a trace is found is each value checked on its own.
    """
    try:
        outs = [orjson.dumps(value, default=_default, option=_OPTIONS) for value in values]
    except orjson.JSONEncodeError:
        return [encode(value, jsonb=jsonb) for value in values]
    # One scan over the outputs joined costs less than one per output; the join copies them
    # at memory speed, and decoding each output is cheaper than splitting the joined text.
    if _suspect(b"".join(outs), jsonb):
        return [encode(value, jsonb=jsonb) for value in values]
    return [out.decode() for out in outs]


def _suspect(out: bytes, jsonb: bool) -> bool:
    """Whether orjson's output may hide a NaN or infinity or a tag-like key, and with `jsonb` a
    NUL or a float that jsonb would change."""
    # orjson writes NaN and infinities as null and NUL as \u0000 without complaint, so a value is
    # walked only when its output holds such a trace. Each substring scan costs about as much as
    # orjson.dumps itself, hence the memchr-fast look for "$" first, and the scans that only
    # jsonb needs left out for SQLite, which keeps the text it is given.
    return (
        b"null" in out
        or (b"$" in out and b'"$convstore"' in out)
        or (
            jsonb
            and (
                b"\\u0000" in out
                # "+" alone is a memchr-fast look, and rarer in text than "e+1" is slow to find.
                or (
                    ((b"+" in out and b"e+1" in out) or b"-0.0" in out)
                    and _RESHAPED_TRACE.search(out) is not None
                )
            )
        )
    )


def decode(text: str | bytes) -> Any:
    """Return the value ``text`` was encoded from; `InvalidArgument` if encode cannot make it."""
    try:
        value = orjson.loads(text)
        # Neither database escapes "$" when it writes JSON back, so this finds every tag.
        if isinstance(text, bytes):
            tagged = b"$" in text and b'"$convstore"' in text
        else:
            tagged = "$" in text and '"$convstore"' in text
        return _untag(value) if tagged else value
    except (KeyError, TypeError, ValueError, RecursionError) as exc:
        raise InvalidArgument(f"text is not JSON that convstore encoded: {exc!r}") from exc


def untag(value: Any) -> Any:
    """Return parsed JSON with its tagged objects replaced; `InvalidArgument` for a broken tag."""
    try:
        return _untag(value)
    except (KeyError, TypeError, ValueError, RecursionError) as exc:
        raise InvalidArgument(f"value is not JSON that convstore encoded: {exc!r}") from exc


def _default(value: object) -> object:
    """Return what orjson should write for a value it has no native form for (rule 3)."""
    if isinstance(value, tuple):
        return list(value)  # orjson takes only exact tuples; json.dumps writes namedtuples as lists
    if isinstance(value, float):
        return float.__float__(value)  # orjson takes only exact floats
    text = _text(value)
    if "\x00" in text:
        raise _NeedsTag  # orjson would write \u0000, and the walk in encode cannot see this str
    return text


def _text(value: object) -> str:
    """Return ``str(value)``, or ``object.__repr__(value)`` when ``str()`` fails."""
    try:
        return str(value)
    except Exception:  # noqa: BLE001 - a broken __str__ must not make the whole save fail
        return object.__repr__(value)


def _has_hidden(value: object) -> bool:
    """Whether ``value`` holds a NaN or infinity, a str with NUL or a "$convstore" key."""
    # Loops rather than any(): a generator per container makes this walk about a third slower.
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        if _TAG in value:
            return True
        for key, item in value.items():  # noqa: SIM110
            if "\x00" in key or _has_hidden(item):
                return True
        return False
    if isinstance(value, list | tuple):
        for item in value:  # noqa: SIM110
            if _has_hidden(item):
                return True
        return False
    if isinstance(value, float):
        return not math.isfinite(value) or _reshaped(value)
    if isinstance(value, enum.Enum):
        return _has_hidden(value.value)
    return False


def _safe(value: object, parents: set[int]) -> object:
    """Return a copy of ``value`` made of JSON types that orjson and both databases accept."""
    if isinstance(value, str):
        return _safe_str(str.__str__(value))
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if _INT_MIN <= value <= _INT_MAX else {_TAG: "int", "hex": hex(value)}
    if isinstance(value, float):
        number = float.__float__(value)
        if math.isfinite(number) and not _reshaped(number):
            return number
        return {_TAG: "float", "value": _float_text(number)}
    if isinstance(value, enum.Enum):  # after str and int: orjson writes a StrEnum as its str
        return _safe(value.value, parents)
    if not isinstance(value, dict | list | tuple):
        return _safe_str(_text(value))
    if id(value) in parents:
        kind = type(value).__name__
        raise InvalidArgument(f"value contains itself: a {kind} inside itself has no JSON form")
    if len(parents) == _MAX_DEPTH:
        raise InvalidArgument(f"value is nested more than {_MAX_DEPTH} levels deep")
    parents.add(id(value))
    safe: object
    if isinstance(value, dict):
        pairs = [(_key_text(key), item) for key, item in value.items()]
        if any(key == _TAG or _UNSTORABLE.search(key) for key, _ in pairs):
            items = [[_safe_str(key), _safe(item, parents)] for key, item in pairs]
            safe = {_TAG: "dict", "items": items}
        else:
            safe = {key: _safe(item, parents) for key, item in pairs}
    else:
        safe = [_safe(item, parents) for item in value]
    parents.remove(id(value))
    return safe


def _reshaped(number: float) -> bool:
    """Whether PostgreSQL's jsonb would give the float back as an int or without its sign."""
    if number == 0.0:
        return math.copysign(1.0, number) < 0
    return abs(number) >= _INTEGRAL_FLOAT_MIN and _INT_MIN <= number <= _INT_MAX


def _safe_str(text: str) -> object:
    """Return ``text`` itself, or its str tag if it holds NUL or a lone surrogate."""
    if _UNSTORABLE.search(text) is None:
        return text
    raw = text.encode("utf-8", "surrogatepass")
    return {_TAG: "str", "b64": base64.b64encode(raw).decode("ascii")}


def _key_text(key: object) -> str:
    """Return the object key ``json.dumps`` would write for ``key`` (rule 4)."""
    if isinstance(key, str):
        return str.__str__(key)
    if key is None:
        return "null"
    if isinstance(key, bool):
        return "true" if key else "false"
    if isinstance(key, int):
        try:
            return int.__repr__(key)
        except ValueError:  # more digits than sys.get_int_max_str_digits() lets str() write
            return hex(key)
    if isinstance(key, float):
        return _float_text(key)
    return _text(key)


def _float_text(number: float) -> str:
    """Return ``number`` as ``json.dumps`` writes it, NaN and infinities included."""
    if math.isnan(number):
        return "NaN"
    if math.isinf(number):
        return "Infinity" if number > 0 else "-Infinity"
    return float.__repr__(number)


def _untag(value: Any) -> Any:
    """Replace, in place, every tagged object inside ``value`` by the value it stands for."""
    if isinstance(value, list):
        for index, item in enumerate(value):
            if isinstance(item, dict | list):
                value[index] = _untag(item)
    elif isinstance(value, dict):
        if _TAG in value:
            return _from_tag(value)
        for key, item in value.items():
            if isinstance(item, dict | list):
                value[key] = _untag(item)
    return value


def _from_tag(tag: dict[str, Any]) -> Any:
    """Return the value a tagged object stands for; ValueError if it is not one `encode` writes."""
    kind = tag[_TAG]
    if len(tag) == 2:
        if kind == "float" and isinstance(tag["value"], str):
            number = float(tag["value"])
            if math.isfinite(number) and not _reshaped(number):
                raise ValueError("a float tag for a float that needs none")
            return number
        if kind == "str":
            raw = base64.b64decode(tag["b64"], validate=True)
            return raw.decode("utf-8", "surrogatepass")
        if kind == "int":
            return int(tag["hex"], 16)
        if kind == "dict":
            return {_untag(key): _untag(item) for key, item in tag["items"]}
    raise ValueError(f"malformed {_TAG} tag {tag!r}")
