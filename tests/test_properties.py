"""Whatever a conversation holds restores as documented, identically on SQLite and PostgreSQL.

Property tests (hypothesis) over arbitrary JSON-like messages, extras and session ids, and the
content rules of docs/store.md ("What a message may hold", "Session ids") case by case: what is
saved restores exactly, or in the documented string form, and invalid input raises convstore's
own errors and changes nothing stored.
"""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import json
import math
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

import convstore

# Each example runs against a real database, so examples are few and have no deadline; the run
# is derandomized so that CI sees the same examples every time.
PROPERTY_SETTINGS = settings(
    max_examples=60,
    deadline=None,
    database=None,
    derandomize=True,
    # The store is opened once per test and shared by its examples, which use it without
    # depending on one another's leftovers.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
# Small enough that most saves and appends in the property tests are trimmed to it.
CAP = 4


class Colour(enum.Enum):
    """An enum whose members are stored as their values."""

    RED = "red"
    ONE = 1
    HALF = 0.5


@dataclasses.dataclass(frozen=True)
class Point:
    """An object JSON has no type for, stored as its str()."""

    x: int
    y: int


# -- what a value restores as ---------------------------------------------------------------------


def stored_form(value: object) -> Any:
    """What the docs ("What a message may hold") say `value` restores as."""
    if isinstance(value, enum.Enum):
        return stored_form(value.value)
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple):
        return [stored_form(item) for item in value]
    if isinstance(value, dict):
        # Keys that become the same string: the later value wins, as in json.dumps's output.
        return {key_text(key): stored_form(item) for key, item in value.items()}
    return str(value)


def key_text(key: object) -> str:
    """The string a dict key becomes: itself if a str, else what json.dumps writes for it."""
    if isinstance(key, str):
        return key
    (written,) = json.loads(json.dumps({key: None}))
    assert isinstance(written, str)
    return written


def difference(expected: object, actual: object, *, ordered: bool, at: str = "") -> str | None:
    """Where `actual` first differs from `expected`, or None if it equals it exactly.

    Exactly: the same types (1, 1.0 and True differ), NaN equal to NaN, the sign of zero kept,
    and, when `ordered`, dict keys in the same order.
    """
    where = at or "the value"
    if type(expected) is not type(actual):
        return f"{where}: expected {type(expected).__name__} {expected!r:.80}, got {actual!r:.80}"
    if isinstance(expected, float) and isinstance(actual, float):
        if math.isnan(expected) and math.isnan(actual):
            return None
        if expected == actual and math.copysign(1.0, expected) == math.copysign(1.0, actual):
            return None
        return f"{where}: expected {expected!r}, got {actual!r}"
    if isinstance(expected, list) and isinstance(actual, list):
        if len(expected) != len(actual):
            return f"{where}: expected {len(expected)} items, got {len(actual)}"
        for index, (one, other) in enumerate(zip(expected, actual, strict=True)):
            found = difference(one, other, ordered=ordered, at=f"{at}[{index}]")
            if found is not None:
                return found
        return None
    if isinstance(expected, dict) and isinstance(actual, dict):
        if ordered and list(expected) != list(actual):
            return f"{where}: keys in order {list(expected)!r:.200}, got {list(actual)!r:.200}"
        if expected.keys() != actual.keys():
            return f"{where}: keys {sorted(expected)!r:.200}, got {sorted(actual)!r:.200}"
        for key in expected:
            found = difference(expected[key], actual[key], ordered=ordered, at=f"{at}[{key!r}]")
            if found is not None:
                return found
        return None
    return None if expected == actual else f"{where}: expected {expected!r:.80}, got {actual!r:.80}"


def assert_restores_as(value: object, restored: object, backend: str) -> None:
    """Fail unless `restored` is the documented stored form of `value`.

    Dict key order is compared on SQLite only: PostgreSQL's jsonb keeps keys in an order of its
    own, and dicts that differ only in order are equal.
    """
    found = difference(stored_form(value), restored, ordered=backend == "sqlite")
    assert found is None, found


async def stored_rows(store: convstore.Store) -> list[list[tuple[Any, ...]]]:
    """Every row of the conversation tables, to compare before and after a call."""
    queries = [
        "SELECT * FROM sessions ORDER BY session_id",
        "SELECT * FROM messages ORDER BY session_id, seq",
        "SELECT * FROM interruptions ORDER BY id",
    ]
    async with store.engine.connect() as conn:
        return [[tuple(row) for row in (await conn.exec_driver_sql(q)).all()] for q in queries]


def session_id_calls(store: convstore.Store) -> dict[str, Callable[[Any], Awaitable[object]]]:
    """Every store method that takes a session id, called with a given id."""
    return {
        "save_snapshot": lambda sid: store.save_snapshot(sid, [{"role": "user", "content": "x"}]),
        "append_messages": lambda sid: store.append_messages(sid, [{"content": "x"}]),
        "restore_snapshot": store.restore_snapshot,
        "mark_interrupted": store.mark_interrupted,
        "delete_snapshot": store.delete_snapshot,
        "interruptions": store.interruptions,
    }


@pytest.fixture
async def capped_store(database_url: str) -> AsyncIterator[convstore.Store]:
    """A store on a fresh database that keeps only the newest CAP messages."""
    async with convstore.connect(database_url, max_messages=CAP) as store:
        yield store


# -- strategies -----------------------------------------------------------------------------------

SURPRISING_TEXT = [
    "\x00",
    "a\x00b",
    "\ud800",
    "x\udfffy",
    "\ude00\ud83d",  # a surrogate pair in the wrong order
    "\ud83d\ude00",  # the halves of 😀 as two code points, not the emoji
    "😀",
    "🧑‍💻",
    "𝄞\U0010ffff",
    "$convstore",
    "\\u0000",
    "null",
    "NaN",
]
characters = st.one_of(
    st.characters(),
    st.characters(categories=["Cs"]),  # lone surrogates, which st.characters() leaves out
    st.sampled_from(["\x00", "😀", "\U0010ffff"]),
)
texts = st.one_of(st.text(characters, max_size=12), st.sampled_from(SURPRISING_TEXT))
json_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([2**63 - 1, 2**63, 2**64 - 1, 2**64, -(2**63), -(2**63) - 1, 10**40]),
    st.floats(),  # NaN, the infinities, -0.0 and subnormals included
    texts,
)
other_leaves = st.one_of(
    st.datetimes(timezones=st.none() | st.just(datetime.UTC)),
    st.dates(),
    st.binary(max_size=8),
    st.decimals(allow_nan=False),
    st.uuids(),
    st.frozensets(st.integers(0, 9), max_size=3),
    st.sampled_from(Colour),
    st.builds(Point, st.integers(), st.integers()),
)
keys = st.one_of(
    texts,
    st.just("$convstore"),
    st.integers(min_value=-(10**6), max_value=10**6),
    st.none(),
    st.booleans(),
    st.floats(),
)
json_like = st.recursive(
    st.one_of(json_leaves, other_leaves),
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.lists(children, max_size=4).map(tuple),
        st.dictionaries(keys, children, max_size=4),
    ),
    max_leaves=20,
)
message_lists = st.one_of(
    st.lists(json_like, max_size=CAP + 2),
    st.lists(json_like, max_size=CAP + 2).map(tuple),
)
extras = st.dictionaries(keys, json_like, max_size=4)
session_ids = st.one_of(
    st.text(
        st.characters(exclude_categories=["Cs"], exclude_characters="\x00"),
        min_size=1,
        max_size=255,
    ),
    st.sampled_from(["😀" * 255, "a" * 255, "会话/1", " ", "../etc/passwd", "$convstore"]),
)
bad_session_ids = st.one_of(
    st.none(),
    st.integers(),
    st.floats(),
    st.binary(max_size=8),
    st.lists(st.text(max_size=3), max_size=2),
    st.just(""),
    st.text(min_size=256, max_size=400),
    st.builds(lambda a, b: f"{a}\x00{b}", st.text(max_size=10), st.text(max_size=10)),
    st.builds(
        lambda a, s, b: f"{a}{s}{b}",
        st.text(max_size=10),
        st.characters(categories=["Cs"]),
        st.text(max_size=10),
    ),
)
not_lists = st.one_of(
    st.none(),
    texts,
    st.integers(),
    st.floats(),
    st.booleans(),
    st.binary(max_size=8),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.frozensets(st.integers(), max_size=3),
    st.builds(Point, st.integers(), st.integers()),
)
not_dicts = st.one_of(
    texts,
    st.integers(),
    st.floats(),
    st.booleans(),
    st.binary(max_size=8),
    st.lists(st.integers(), max_size=3),
    st.tuples(st.text(max_size=3), st.integers()),
    st.frozensets(st.integers(), max_size=3),
)
bad_arguments = st.one_of(
    st.tuples(not_lists, st.none() | extras),
    st.tuples(message_lists, not_dicts),
    st.tuples(not_lists, not_dicts),
)


# -- properties -----------------------------------------------------------------------------------


@PROPERTY_SETTINGS
@given(
    session_id=session_ids,
    messages=message_lists,
    extra=extras,
    more=message_lists,
    more_extra=st.none() | extras,
)
async def test_saved_and_appended_content_restores_as_documented(
    capped_store: convstore.Store,
    backend: str,
    session_id: str,
    messages: Sequence[object],
    extra: dict[Any, object],
    more: Sequence[object],
    more_extra: dict[Any, object] | None,
) -> None:
    """Any JSON-like messages and extra, saved then appended to, restore as documented."""
    store = capped_store
    await store.save_snapshot(session_id, messages, extra=extra)
    snap = await store.restore_snapshot(session_id)
    assert snap is not None
    assert snap.session_id == session_id
    assert snap.message_count == len(messages)
    assert_restores_as(list(messages)[-CAP:], snap.messages, backend)
    assert_restores_as(extra, snap.extra, backend)

    count = await store.append_messages(session_id, more, extra=more_extra)
    assert count == len(messages) + len(more)
    snap = await store.restore_snapshot(session_id)
    assert snap is not None
    assert snap.message_count == count
    assert_restores_as([*messages, *more][-CAP:], snap.messages, backend)
    assert_restores_as(extra if more_extra is None else more_extra, snap.extra, backend)


@PROPERTY_SETTINGS
@given(bad=bad_session_ids)
async def test_invalid_session_ids_raise_invalid_session_id_and_change_nothing(
    store: convstore.Store, bad: object
) -> None:
    """Every method refuses an invalid session id with InvalidSessionId and writes nothing."""
    await store.save_snapshot("canary", [{"role": "user", "content": "keep"}], extra={"k": 1})
    await store.mark_interrupted("canary", reason="kept")
    before = await stored_rows(store)
    for name, call in session_id_calls(store).items():
        if bad is None and name == "interruptions":
            continue  # interruptions(None) is the history of every session
        with pytest.raises(convstore.InvalidSessionId, match=r"^session_id "):
            await call(bad)
    assert await stored_rows(store) == before


@PROPERTY_SETTINGS
@given(session_id=st.one_of(st.just("canary"), session_ids), bad=bad_arguments)
async def test_messages_not_a_list_or_extra_not_a_dict_raise_and_change_nothing(
    store: convstore.Store, session_id: str, bad: tuple[object, object]
) -> None:
    """A save or append whose messages are not a list or extra not a dict changes nothing."""
    messages, extra = bad
    await store.save_snapshot("canary", [{"role": "user", "content": "keep"}], extra={"k": 1})
    before = await stored_rows(store)
    refused = r"^(messages must be a list|extra must be a dict)"
    with pytest.raises(convstore.InvalidArgument, match=refused):
        await store.save_snapshot(session_id, messages, extra=extra)  # type: ignore[arg-type]
    with pytest.raises(convstore.InvalidArgument, match=refused):
        await store.append_messages(session_id, messages, extra=extra)  # type: ignore[arg-type]
    assert await stored_rows(store) == before


# -- content rules, case by case ------------------------------------------------------------------

SPECIAL_STRINGS = {
    "nul-inside": "a\x00b",
    "nul-alone": "\x00",
    "lone-high-surrogate": "x\ud800y",
    "lone-low-surrogate": "\udfff",
    "surrogates-reversed": "\ude00\ud83d",
    "four-byte-emoji": "😀🧑‍💻𝄞\U0010ffff",
}


def everywhere(value: Any) -> tuple[list[Any], dict[Any, Any]]:
    """Messages and extra holding `value` in every place a message can hold it."""
    messages = [
        {"role": "user", "content": value},
        {"role": value, "content": "as the role"},
        {"content": [value, {"nested": [value]}]},
        value,
        [value, value],
    ]
    extra = {"value": value, "list": [value]}
    if isinstance(value, str):
        messages.append({value: "as a key", "nested": {value: value}})
        extra[value] = "as a key"
    return messages, extra


@pytest.mark.parametrize("value", SPECIAL_STRINGS.values(), ids=SPECIAL_STRINGS.keys())
async def test_strings_databases_refuse_round_trip_everywhere(
    store: convstore.Store, backend: str, value: str
) -> None:
    """NUL, lone surrogates and 4-byte emoji restore exactly as values, roles, keys and extra."""
    messages, extra = everywhere(value)
    await store.save_snapshot("s1", messages, extra=extra)
    await store.append_messages("s1", messages)
    snap = await store.restore_snapshot("s1")
    assert snap is not None
    assert_restores_as(messages + messages, snap.messages, backend)
    assert_restores_as(extra, snap.extra, backend)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf], ids=["nan", "inf", "-inf"])
async def test_nan_and_infinities_round_trip_everywhere(
    store: convstore.Store, backend: str, value: float
) -> None:
    """NaN and the infinities restore as floats wherever they are, and as keys become strings."""
    messages, extra = everywhere(value)
    messages.append({value: "a float key"})
    await store.save_snapshot("s1", messages, extra=extra)
    await store.append_messages("s1", messages)
    snap = await store.restore_snapshot("s1")
    assert snap is not None
    assert_restores_as(messages + messages, snap.messages, backend)
    assert snap.messages[-1] == {key_text(value): "a float key"}
    assert_restores_as(extra, snap.extra, backend)


# Floats whose shortest form has no fractional digits, and negative zero: PostgreSQL's numeric
# type, behind jsonb, would write the first back as integers and the second as 0.
EXACT_FLOATS = [1e16, -1e16, 1.2345678901234568e17, 2.0**63, 1e19, -0.0, 1e15, 2.0**53, 1e22]


async def test_floats_keep_their_type_and_sign(store: convstore.Store, backend: str) -> None:
    """Large whole floats restore as floats, not ints, and -0.0 keeps its sign."""
    await store.save_snapshot("s1", [EXACT_FLOATS], extra={"floats": EXACT_FLOATS})
    await store.append_messages("s1", [{"f": f} for f in EXACT_FLOATS])
    snap = await store.restore_snapshot("s1")
    assert snap is not None
    assert_restores_as([EXACT_FLOATS, *({"f": f} for f in EXACT_FLOATS)], snap.messages, backend)
    assert_restores_as({"floats": EXACT_FLOATS}, snap.extra, backend)


def five_megabytes_of_special_characters() -> str:
    """A 5 MB (UTF-8) string of 4-byte emoji, NUL and lone surrogates."""
    chunk = "😀\x00\ud800 𝄞é"  # 4 + 1 + 3 (surrogatepass) + 1 + 4 + 2 bytes
    return chunk * (5 * 1024 * 1024 // 15 + 1)


async def test_a_5_mb_message_of_special_characters_round_trips(store: convstore.Store) -> None:
    """A 5 MB message of emoji, NUL and lone surrogates is appended, saved and restored whole."""
    content = five_megabytes_of_special_characters()
    big = {"role": "user", "content": content}
    small = {"role": "assistant", "content": "before"}
    assert await store.append_messages("s1", [small, big]) == 2
    snap = await store.restore_snapshot("s1")
    assert snap is not None
    assert snap.messages == [small, big]
    await store.save_snapshot("s1", [big, small], extra={"big": content})
    snap = await store.restore_snapshot("s1")
    assert snap is not None
    assert snap.messages == [big, small]
    assert snap.extra == {"big": content}


TOO_LONG = "session_id is 10000 characters long; the limit is 255"


@pytest.mark.parametrize("session_id", ["x" * 10_000, "😀" * 10_000], ids=["ascii", "emoji"])
async def test_ten_thousand_character_ids_are_refused_with_one_error(
    store: convstore.Store, session_id: str
) -> None:
    """Every method refuses a 10,000-character id with one InvalidSessionId and writes nothing."""
    await store.save_snapshot("canary", [{"content": "keep"}])
    before = await stored_rows(store)
    errors = set()
    for call in session_id_calls(store).values():
        with pytest.raises(convstore.InvalidSessionId) as info:
            await call(session_id)
        errors.add((type(info.value), str(info.value)))
    assert errors == {(convstore.InvalidSessionId, TOO_LONG)}
    assert await stored_rows(store) == before


# -- the same rules on both backends, compared with each other ----------------------------------

SAME_ID = "会话/😀" + "𝄞" * 250  # 255 characters, most of them 4 bytes in UTF-8
MIXED_CONTENT: list[Any] = [
    *(message for value in SPECIAL_STRINGS.values() for message in everywhere(value)[0]),
    *(message for value in (math.nan, math.inf, -math.inf) for message in everywhere(value)[0]),
    {"ints": [2**63 - 1, 2**64 - 1, 2**64, -(2**63) - 1, 10**40], "floats": [1.5, 5e-324]},
    {"as str": [datetime.date(2026, 1, 2), b"\x00raw", decimal.Decimal("1.10"), uuid.UUID(int=7)]},
    {"tuple": (1, (2, 3)), "enum": Colour.HALF, 1: "int key", None: "None key"},
]
MIXED_EXTRA = {"special": list(SPECIAL_STRINGS.values()), "nan": math.nan, "when": Point(1, 2)}
REFUSED_IDS = ["x" * 10_000, "😀" * 10_000, "", "a\x00b", "a\ud800b", "😀" * 256]


async def exercise(url: str) -> dict[str, Any]:
    """Everything the content rules cover, done on one database; what it restored and raised."""
    async with convstore.connect(url) as store:
        await store.save_snapshot(SAME_ID, MIXED_CONTENT, extra=MIXED_EXTRA)
        big = {"role": "user", "content": five_megabytes_of_special_characters()}
        count = await store.append_messages(SAME_ID, [big])
        snap = await store.restore_snapshot(SAME_ID)
        assert snap is not None
        async with store.engine.connect() as conn:
            roles = (
                await conn.execute(
                    text("SELECT seq, role FROM messages WHERE session_id = :sid ORDER BY seq"),
                    {"sid": SAME_ID},
                )
            ).all()
        errors = []
        for bad in REFUSED_IDS:
            for name, call in session_id_calls(store).items():
                with pytest.raises(convstore.ConvstoreError) as info:
                    await call(bad)
                errors.append((name, len(bad), type(info.value), str(info.value)))
    return {
        "count": count,
        "messages": snap.messages,
        "extra": snap.extra,
        "roles": [tuple(row) for row in roles],
        "errors": errors,
    }


async def test_content_rules_give_the_same_result_on_sqlite_and_postgresql(
    tmp_path: Path, postgres_url: str
) -> None:
    """The same special content and bad ids restore, and fail, identically on both backends."""
    on_sqlite = await exercise(f"sqlite:///{tmp_path / 'same.db'}")
    on_postgresql = await exercise(postgres_url)
    expected = [*MIXED_CONTENT, {"role": "user", "content": five_megabytes_of_special_characters()}]
    assert_restores_as(expected, on_sqlite["messages"], "sqlite")
    assert_restores_as(MIXED_EXTRA, on_sqlite["extra"], "sqlite")
    found = difference(on_sqlite["messages"], on_postgresql["messages"], ordered=False)
    assert found is None, found
    found = difference(on_sqlite["extra"], on_postgresql["extra"], ordered=False)
    assert found is None, found
    assert on_sqlite["count"] == on_postgresql["count"] == len(expected)
    assert on_sqlite["roles"] == on_postgresql["roles"]
    assert on_sqlite["errors"] == on_postgresql["errors"]
    assert {error_type for _, _, error_type, _ in on_sqlite["errors"]} == {
        convstore.InvalidSessionId
    }
