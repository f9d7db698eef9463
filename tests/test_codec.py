"""The JSON codec: exact round trips, tagged special values and text both databases accept."""

from __future__ import annotations

import collections
import dataclasses
import datetime
import decimal
import enum
import json
import math
import uuid
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from convstore._storage.codec import decode, encode, encode_many, untag
from convstore.exceptions import InvalidArgument


def same(expected: object, actual: object) -> bool:
    """Whether ``actual`` equals ``expected`` read as JSON: tuples as lists, NaN equal to NaN.

    Stricter than ``==`` elsewhere: types must match (1 is not 1.0 or True), -0.0 is not 0.0 and
    dict keys must come in the same order.
    """
    if isinstance(expected, tuple):
        expected = list(expected)
    if type(expected) is not type(actual):
        return False
    if isinstance(expected, float) and isinstance(actual, float):
        if math.isnan(expected):
            return math.isnan(actual)
        return expected == actual and math.copysign(1, expected) == math.copysign(1, actual)
    if isinstance(expected, list) and isinstance(actual, list):
        return len(expected) == len(actual) and all(map(same, expected, actual))
    if isinstance(expected, dict) and isinstance(actual, dict):
        return list(expected) == list(actual) and all(
            same(expected[k], actual[k]) for k in expected
        )
    return expected == actual


def assert_database_safe(text: str) -> None:
    """Fail unless SQLite's JSON functions and PostgreSQL jsonb would both accept ``text``."""

    def refuse(constant: str) -> object:
        raise AssertionError(f"non-standard JSON constant {constant}")

    text.encode("utf-8")  # a raw lone surrogate cannot be sent to either database
    strings: list[str] = []

    def collect(value: object) -> None:
        if isinstance(value, str):
            strings.append(value)
        elif isinstance(value, list):
            for item in value:
                collect(item)
        elif isinstance(value, dict):
            strings.extend(value)
            for item in value.values():
                collect(item)

    collect(json.loads(text, parse_constant=refuse))
    # PostgreSQL refuses the \u0000 escape, and a lone surrogate escape is not valid text.
    for string in strings:
        assert "\x00" not in string
        assert not any(0xD800 <= ord(char) <= 0xDFFF for char in string)


def short(value: object) -> str:
    """Return a test id for ``value``; repr() refuses ints of more than 4,300 digits."""
    if isinstance(value, int) and value.bit_length() > 256:
        return f"int of {value.bit_length()} bits"
    return repr(value)[:40]


NATIVE = [
    {"role": "user", "content": "hello"},
    [1, "two", 3.0, True, False, None, [], {}],
    "unicode: é, データ, emoji 😀 🧑‍💻",
    "",
    0,
    2**64 - 1,
    -(2**63),
    1.5,
    1e300,
    5e-324,
    True,
    None,
    {"z": 1, "a": 2, "m": {"nested": [{"deep": ["x"]}]}},
]

SPECIAL = [
    math.nan,
    math.inf,
    -0.0,  # jsonb has no negative zero
    1e16,  # jsonb gives whole floats of 1e16 and more back as ints
    -1.5e18,
    -math.inf,
    "a\x00b",
    "\x00",
    "\ud800",
    "lone \udfff end",
    "\ud83d\ude00",  # a surrogate pair as two code points, not the emoji
    2**64,
    -(2**63) - 1,
    10**5000,  # too long for str(), whatever sys.set_int_max_str_digits says
    -(10**5000),
    {"$convstore": "x"},
    {"$convstore": "float", "value": "NaN"},
    {"a\x00": 1, "b": 2},
    {"\ud800": [math.nan]},
    {"ok": {"$convstore": {"$convstore": "str"}}},
]


@pytest.mark.parametrize("value", NATIVE, ids=short)
def test_native_values_round_trip_as_plain_json(value: object) -> None:
    """JSON-native values come back exactly and are written exactly as orjson writes them."""
    text = encode(value)
    assert text == orjson.dumps(value).decode()
    assert same(value, decode(text))


@pytest.mark.parametrize("value", SPECIAL, ids=short)
@pytest.mark.parametrize("wrap", ["top", "dict", "list"])
def test_special_values_round_trip_exactly(value: object, wrap: str) -> None:
    """NaN, infinities, NUL and surrogate strings, big ints and "$convstore" keys round-trip."""
    wrapped = {"top": value, "dict": {"k": value, "n": None}, "list": [None, value, "x"]}[wrap]
    assert same(wrapped, decode(encode(wrapped)))


@pytest.mark.parametrize("value", SPECIAL, ids=short)
def test_special_values_encode_to_text_both_databases_accept(value: object) -> None:
    """The tagged form is strict JSON with no NaN, \\u0000 or lone surrogate anywhere."""
    assert_database_safe(encode({"nested": [value]}))


def test_tags_have_the_documented_shape() -> None:
    """Each special value is stored as the tagged object the module docstring describes."""
    assert json.loads(encode(math.nan)) == {"$convstore": "float", "value": "NaN"}
    assert json.loads(encode(-math.inf)) == {"$convstore": "float", "value": "-Infinity"}
    assert json.loads(encode("a\x00")) == {"$convstore": "str", "b64": "YQA="}
    assert json.loads(encode(-(2**63) - 1)) == {"$convstore": "int", "hex": "-0x8000000000000001"}
    assert json.loads(encode({"$convstore": 1})) == {
        "$convstore": "dict",
        "items": [["$convstore", 1]],
    }


def test_tuples_become_lists() -> None:
    """Tuples, and namedtuples as json.dumps does, are stored as lists."""
    point = collections.namedtuple("point", "x y")
    assert decode(encode((1, (2, 3)))) == [1, [2, 3]]
    assert decode(encode({"p": point(1, 2)})) == {"p": [1, 2]}


def test_look_alikes_of_special_values_stay_on_the_fast_path() -> None:
    """None, "null" and "$convstore" as text, and a literal backslash-u0000 are not tagged."""
    value = {"a": None, "b": "null", "c": "$convstore", "d": "\\u0000", "e": [None]}
    assert encode(value) == orjson.dumps(value).decode()
    assert decode(encode(value)) == value


class Colour(enum.Enum):
    """An enum whose values are not JSON-native."""

    RED = frozenset({1})
    NAN = math.nan


class Level(enum.IntEnum):
    """An int enum."""

    HIGH = 3


class Mood(enum.StrEnum):
    """A str enum."""

    HAPPY = "happy"


@dataclasses.dataclass
class Point:
    """A dataclass, stored as its str()."""

    x: int
    y: int


class Custom:
    """An arbitrary object with its own str()."""

    def __str__(self) -> str:
        return "custom!"


class Label(str):
    """A str subclass whose str() differs from its content."""

    def __str__(self) -> str:
        return "not the content"


class Ratio(float):
    """A float subclass."""


UUID = uuid.UUID("12345678-1234-5678-1234-567812345678")
CONVERTED: list[tuple[object, object]] = [
    (datetime.datetime(2024, 5, 1, 12, 30, tzinfo=datetime.UTC), "2024-05-01 12:30:00+00:00"),
    (datetime.date(2024, 5, 1), "2024-05-01"),
    (datetime.time(12, 30, 1), "12:30:01"),
    (b"raw\x00bytes", "b'raw\\x00bytes'"),
    ({3}, "{3}"),
    (frozenset(), "frozenset()"),
    (decimal.Decimal("1.10"), "1.10"),
    (UUID, "12345678-1234-5678-1234-567812345678"),
    (Point(1, 2), "Point(x=1, y=2)"),
    (Custom(), "custom!"),
    (1j, "1j"),
    (Colour.RED, "frozenset({1})"),
    (Level.HIGH, 3),
    (Mood.HAPPY, "happy"),
    (Label("content"), "content"),
    (Ratio(2.5), 2.5),
]


@pytest.mark.parametrize(("value", "expected"), CONVERTED, ids=short)
def test_other_values_are_stored_as_json_dumps_default_str_would(
    value: object, expected: object
) -> None:
    """Non-JSON values become str(value), enums their value, subclasses their plain content."""
    assert same(expected, decode(encode(value)))


@pytest.mark.parametrize(("value", "expected"), CONVERTED, ids=short)
def test_slow_path_converts_values_as_the_fast_path_does(value: object, expected: object) -> None:
    """A NaN elsewhere in the value (forcing the Python walk) does not change how others convert."""
    assert same([expected, math.nan], decode(encode([value, math.nan])))
    assert same({"k": expected, str(2**70): 1}, decode(encode({"k": value, 2**70: 1})))


def test_enum_with_nan_value_is_tagged() -> None:
    """An enum member is stored as its value, so a NaN value is tagged like any NaN."""
    assert same([math.nan], decode(encode([Colour.NAN])))


def test_str_results_holding_nul_round_trip() -> None:
    """A str(value) that holds NUL is tagged like any other NUL string."""

    class Nul:
        def __str__(self) -> str:
            return "a\x00b"

    text = encode({"v": Nul()})
    assert_database_safe(text)
    assert decode(text) == {"v": "a\x00b"}


def test_object_whose_str_raises_is_stored_as_its_repr() -> None:
    """encode does not fail when str(value) raises; it stores object.__repr__ instead."""

    class Broken:
        def __str__(self) -> str:
            raise RuntimeError("broken __str__")

    broken = Broken()
    assert decode(encode([broken])) == [object.__repr__(broken)]


def test_non_str_keys_become_strings_as_json_dumps_makes_them() -> None:
    """int, float, bool and None keys are written as json.dumps writes them, others as str(key)."""
    native = {2: 0, 1.5: 0, True: 0, None: 0, math.inf: 0, -math.inf: 0}
    assert list(decode(encode(native))) == list(json.loads(json.dumps(native)))
    others = {(1, 2): "tuple", UUID: "uuid", Custom(): "custom"}
    assert decode(encode(others)) == {"(1, 2)": "tuple", str(UUID): "uuid", "custom!": "custom"}
    assert decode(encode({math.nan: 1, -math.inf: 2})) == {"NaN": 1, "-Infinity": 2}


def test_huge_int_keys_become_hex() -> None:
    """An int key too long for str() becomes its hex form rather than failing."""
    assert decode(encode({10**5000: 1})) == {hex(10**5000): 1}


def test_colliding_keys_keep_the_later_value() -> None:
    """When two keys become the same string, the later value wins."""
    assert decode(encode({1: "int", "1": "str"})) == {"1": "str"}


def test_non_str_key_whose_str_holds_nul_round_trips() -> None:
    """A key whose str() holds NUL is stored in the tagged pairs form and comes back as that str."""

    class Key:
        def __str__(self) -> str:
            return "k\x00"

    text = encode({Key(): 1})
    assert_database_safe(text)
    assert decode(text) == {"k\x00": 1}


@pytest.mark.parametrize("kind", [list, dict])
def test_recursive_value_is_refused(kind: type) -> None:
    """A value that contains itself raises InvalidArgument saying so."""
    value: Any = kind()
    if isinstance(value, list):
        value.append([value])
    else:
        value["self"] = {"again": value}
    with pytest.raises(InvalidArgument, match="contains itself"):
        encode(value)


def nest(depth: int, leaf: object = 0) -> object:
    """Return ``leaf`` inside ``depth`` levels of lists."""
    value = leaf
    for _ in range(depth):
        value = [value]
    return value


def test_254_levels_are_accepted() -> None:
    """A value nested 254 levels deep, orjson's limit, round-trips."""
    value = nest(254)
    assert decode(encode(value)) == value


@pytest.mark.parametrize("leaf", [0, 2**70], ids=["plain", "needs-tag"])
def test_too_deep_value_is_refused(leaf: object) -> None:
    """A value nested 255 levels deep raises InvalidArgument naming the limit."""
    with pytest.raises(InvalidArgument, match="nested more than 254 levels"):
        encode(nest(255, leaf))


def test_tagging_past_the_depth_limit_is_refused() -> None:
    """A special value whose tag would land past the depth limit raises InvalidArgument."""
    with pytest.raises(InvalidArgument, match="once its special values are tagged"):
        encode(nest(254, math.nan))


def test_odd_objects_never_make_encode_fail() -> None:
    """encode turns any object into database-safe JSON text."""
    odd = [memoryview(b"x"), range(3), type, len, iter([]), enum, Ellipsis, NotImplemented]
    assert_database_safe(encode(odd))


def test_tags_are_found_whatever_the_key_order() -> None:
    """A tag comes back even as PostgreSQL jsonb writes it: keys reordered, spaces added."""
    assert math.isnan(decode('{"value": "NaN", "$convstore": "float"}'))
    assert decode('[{"b64": "YQA=", "$convstore": "str"}]') == ["a\x00"]


@pytest.mark.parametrize(
    "text",
    [
        "{not json",
        "NaN",
        '{"$convstore": "float", "value": "1.5"}',
        '{"$convstore": "str", "b64": "!!"}',
        '{"$convstore": "int", "hex": "0x1", "extra": 1}',
        '{"$convstore": "dict", "items": [[["unhashable"], 1]]}',
        '{"$convstore": "future-kind", "value": 1}',
        '{"$convstore": "int"}',
    ],
)
def test_text_encode_cannot_have_made_is_refused(text: str) -> None:
    """decode raises InvalidArgument for text that is not JSON or holds a malformed tag."""
    with pytest.raises(InvalidArgument):
        decode(text)


SURPRISES = ["\x00", "\ud800", "\udfff", "$convstore", "\\u0000", "null", "😀"]
texts = st.lists(st.one_of(st.characters(), st.sampled_from(SURPRISES)), max_size=8).map("".join)
leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from([2**63, 2**64 - 1, 2**64, -(2**63), -(2**63) - 1, 10**40, -(10**40)]),
    st.floats(),
    texts,
)
json_like = st.recursive(
    leaves,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.lists(children, max_size=4).map(tuple),
        st.dictionaries(st.one_of(texts, st.just("$convstore")), children, max_size=4),
    ),
    max_leaves=25,
)


@given(json_like)
def test_any_json_like_value_round_trips_exactly(value: object) -> None:
    """decode(encode(value)) equals value for any JSON-like value, NaN and tuples included."""
    assert same(value, decode(encode(value)))


@given(json_like)
def test_any_json_like_value_encodes_to_database_safe_text(value: object) -> None:
    """The text encode writes is always strict JSON that SQLite and PostgreSQL accept."""
    assert_database_safe(encode(value))


@pytest.mark.parametrize(
    "values",
    [
        [],
        [{"role": "user", "content": "plain"}, "text", 3, None, [1.5]],
        [{"content": "x"}, {"n": math.nan}, "a\x00b", 2**70, {"$convstore": "dict"}],
        ["\ud800", {"k": "v"}],
        [{1: "non-str key"}, {"s": {1, 2}}],
    ],
    ids=["empty", "plain", "special", "surrogate", "non-json"],
)
def test_encode_many_equals_encode_one_by_one(values: list[object]) -> None:
    """encode_many gives exactly what encode gives for each value, special values included."""
    assert encode_many(values) == [encode(v) for v in values]


def test_decode_accepts_bytes() -> None:
    """decode reads UTF-8 bytes as it reads text, tags included."""
    text = encode({"n": math.inf, "s": "é"})
    assert decode(text.encode()) == {"n": math.inf, "s": "é"}


def test_untag_restores_values_a_driver_parsed() -> None:
    """untag turns JSON parsed elsewhere (json.loads) back into what was encoded."""
    value = {"n": math.nan, "s": "a\x00b", "big": 2**80, "$convstore": 1}
    assert same(untag(json.loads(encode(value))), value)
    with pytest.raises(InvalidArgument):
        untag({"$convstore": "float", "value": "nope"})


def test_sqlite_text_keeps_nul_and_floats_plain() -> None:
    """With jsonb=False, NUL escapes and big whole floats stay plain JSON, and read back exactly."""
    value = {"s": "a\x00b", "f": 1e16, "z": -0.0}
    text = encode(value, jsonb=False)
    assert text == orjson.dumps(value).decode()
    assert same(value, decode(text))
    assert encode_many([value], jsonb=False) == [text]
