"""Saving, appending, restoring and deleting snapshots."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC
from typing import Any

import pytest

import convstore


def conversation(n: int, start: int = 0) -> list[dict[str, object]]:
    """`n` small chat messages numbered from `start`."""
    return [
        {"role": "user" if i % 2 == 0 else "assistant", "content": f"message {i}"}
        for i in range(start, start + n)
    ]


async def test_save_then_restore_returns_the_snapshot(store: convstore.Store) -> None:
    """A saved conversation and its extra state restore exactly, with aware UTC times."""
    messages = conversation(3)
    await store.save_snapshot("s1", messages, extra={"model": "x", "turn": 3})
    snap = await store.restore_snapshot("s1")
    assert snap is not None
    assert snap.session_id == "s1"
    assert snap.messages == messages
    assert snap.message_count == 3
    assert snap.extra == {"model": "x", "turn": 3}
    assert snap.saved_at.tzinfo is UTC
    assert snap.interrupted_at is None
    assert snap.interrupt_reason is None
    assert not snap.interrupted


async def test_restore_unknown_session_returns_none(store: convstore.Store) -> None:
    """Restoring a session that was never saved gives None."""
    assert await store.restore_snapshot("nobody") is None


async def test_extra_defaults_to_empty_dict(store: convstore.Store) -> None:
    """A save without extra state restores an empty dict."""
    await store.save_snapshot("s1", conversation(1))
    snap = await store.restore_snapshot("s1")
    assert snap is not None
    assert snap.extra == {}


async def test_save_replaces_the_previous_snapshot(store: convstore.Store) -> None:
    """A second save replaces messages, count and extra entirely."""
    await store.save_snapshot("s1", conversation(5), extra={"a": 1})
    await store.save_snapshot("s1", conversation(2, start=10), extra={"b": 2})
    snap = await store.restore_snapshot("s1")
    assert snap is not None
    assert snap.messages == conversation(2, start=10)
    assert snap.message_count == 2
    assert snap.extra == {"b": 2}


async def test_save_keeps_only_the_newest_max_messages(store: convstore.Store) -> None:
    """A save of 150 messages keeps the newest 100 and counts all 150."""
    await store.save_snapshot("s1", conversation(150))
    snap = await store.restore_snapshot("s1")
    assert snap is not None
    assert snap.message_count == 150
    assert snap.messages == conversation(100, start=50)


async def test_cap_is_configurable(database_url: str) -> None:
    """`max_messages` sets how many messages are kept."""
    async with convstore.connect(database_url, max_messages=3) as store:
        assert store.max_messages == 3
        await store.save_snapshot("s1", conversation(5))
        await store.append_messages("s1", conversation(2, start=5))
        snap = await store.restore_snapshot("s1")
    assert snap is not None
    assert snap.messages == conversation(3, start=4)
    assert snap.message_count == 7


@pytest.mark.parametrize("bad", [0, -1, 1.5, "100", True])
def test_invalid_cap_is_rejected(bad: object) -> None:
    """A cap that is not an int of at least 1 raises InvalidArgument naming max_messages."""
    with pytest.raises(convstore.InvalidArgument, match="max_messages"):
        convstore.connect("sqlite://", max_messages=bad)  # type: ignore[arg-type]


async def test_append_creates_the_session_and_returns_the_count(store: convstore.Store) -> None:
    """Appending to an unknown session creates it; each append returns the new count."""
    assert await store.append_messages("s1", conversation(2)) == 2
    assert await store.append_messages("s1", conversation(1, start=2)) == 3
    snap = await store.restore_snapshot("s1")
    assert snap is not None
    assert snap.messages == conversation(3)
    assert snap.message_count == 3
    assert snap.extra == {}


async def test_append_continues_a_saved_conversation(store: convstore.Store) -> None:
    """Appends go after the saved messages and keep the extra state unless given one."""
    await store.save_snapshot("s1", conversation(4), extra={"k": "v"})
    assert await store.append_messages("s1", conversation(2, start=4)) == 6
    snap = await store.restore_snapshot("s1")
    assert snap is not None
    assert snap.messages == conversation(6)
    assert snap.extra == {"k": "v"}
    await store.append_messages("s1", conversation(1, start=6), extra={"k": "w"})
    snap = await store.restore_snapshot("s1")
    assert snap is not None
    assert snap.extra == {"k": "w"}


async def test_append_trims_to_the_cap(store: convstore.Store) -> None:
    """Appending past the cap keeps the newest 100 rows in the table, in order."""
    await store.save_snapshot("s1", conversation(99))
    for turn in range(99, 130):
        await store.append_messages("s1", conversation(1, start=turn))
    await store.append_messages("s1", conversation(250, start=130))
    snap = await store.restore_snapshot("s1")
    assert snap is not None
    assert snap.message_count == 380
    assert snap.messages == conversation(100, start=280)
    async with store.engine.connect() as conn:
        stored = (
            await conn.exec_driver_sql(
                "SELECT min(seq), max(seq), count(*) FROM messages WHERE session_id = 's1'"
            )
        ).one()
    assert tuple(stored) == (280, 379, 100)


async def test_messages_are_stored_with_position_and_role(
    store: convstore.Store, backend: str
) -> None:
    """Each message row carries its position in the whole conversation and its string role."""
    messages: list[object] = [
        {"role": "user", "content": "a"},
        {"role": 7, "content": "b"},
        {"content": "c"},
        "plain",
    ]
    await store.save_snapshot("s1", messages)
    content = "json_extract(body, '$.content')" if backend == "sqlite" else "body->>'content'"
    async with store.engine.connect() as conn:
        rows = (
            await conn.exec_driver_sql(f"SELECT seq, role, {content} FROM messages ORDER BY seq")
        ).all()
    assert [tuple(r) for r in rows] == [
        (0, "user", "a"),
        (1, None, "b"),
        (2, None, "c"),
        (3, None, None),
    ]


async def test_delete_removes_the_snapshot(store: convstore.Store) -> None:
    """Deleting a session removes it and its messages and reports whether it existed."""
    await store.save_snapshot("s1", conversation(3))
    assert await store.delete_snapshot("s1") is True
    assert await store.restore_snapshot("s1") is None
    assert await store.delete_snapshot("s1") is False
    async with store.engine.connect() as conn:
        left = (await conn.exec_driver_sql("SELECT count(*) FROM messages")).scalar_one()
    assert left == 0


async def test_session_ids_are_stored_verbatim(store: convstore.Store) -> None:
    """Ids that the old file store mangled into one another stay three separate sessions."""
    ids = ["a/b", "a_b", "会话/1", "a\\b", "../etc/passwd", " spaced "]
    for i, session_id in enumerate(ids):
        await store.save_snapshot(session_id, conversation(1, start=i))
    for i, session_id in enumerate(ids):
        snap = await store.restore_snapshot(session_id)
        assert snap is not None
        assert snap.session_id == session_id
        assert snap.messages == conversation(1, start=i)


@pytest.mark.parametrize(
    ("bad", "fragment"),
    [
        (None, "must be a str"),
        (42, "must be a str"),
        (b"s1", "must be a str"),
        ("", "must not be empty"),
        ("x" * 256, "256 characters long; the limit is 255"),
        ("a\x00b", "NUL"),
        ("a\ud800", "surrogate"),
    ],
)
async def test_invalid_session_ids_are_rejected(
    store: convstore.Store, bad: object, fragment: str
) -> None:
    """Every operation names what is wrong with a bad session id; InvalidSessionId is a ValueError.

    That nothing is written is checked for arbitrary ids in test_properties.
    """
    operations: list[Callable[[Any], Awaitable[object]]] = [
        lambda sid: store.save_snapshot(sid, []),
        lambda sid: store.append_messages(sid, []),
        store.restore_snapshot,
        store.mark_interrupted,
        store.delete_snapshot,
    ]
    if bad is not None:  # None asks for the history of every session
        operations.append(store.interruptions)
    for operation in operations:
        with pytest.raises(convstore.InvalidSessionId, match=fragment) as info:
            await operation(bad)
        assert isinstance(info.value, ValueError)
    assert await store.list_interrupted_sessions() == []


@pytest.mark.parametrize(
    ("messages", "extra", "fragment"),
    [
        ("not a list", None, "messages must be a list, not str"),
        ({"role": "user"}, None, "messages must be a list, not dict"),
        (None, None, "messages must be a list, not NoneType"),
        ([], ["not", "a", "dict"], "extra must be a dict or None, not list"),
        ([], "x", "extra must be a dict or None, not str"),
    ],
)
async def test_bad_arguments_are_named(
    store: convstore.Store, messages: object, extra: object, fragment: str
) -> None:
    """A save or append with bad arguments raises InvalidArgument naming the argument and type.

    That nothing is written is checked for arbitrary values in test_properties.
    """
    with pytest.raises(convstore.InvalidArgument, match=fragment):
        await store.save_snapshot("s1", messages, extra=extra)  # type: ignore[arg-type]
    with pytest.raises(convstore.InvalidArgument, match=fragment):
        await store.append_messages("s1", messages, extra=extra)  # type: ignore[arg-type]


async def test_unencodable_message_changes_nothing(store: convstore.Store) -> None:
    """A message that cannot be encoded (a cycle) raises InvalidArgument before any write."""
    cyclic: list[object] = []
    cyclic.append(cyclic)
    await store.save_snapshot("s1", conversation(2))
    with pytest.raises(convstore.InvalidArgument):
        await store.save_snapshot("s1", [*conversation(3), cyclic])
    with pytest.raises(convstore.InvalidArgument):
        await store.append_messages("s1", [cyclic])
    snap = await store.restore_snapshot("s1")
    assert snap is not None
    assert snap.messages == conversation(2)
    assert snap.message_count == 2


async def test_tuples_are_accepted_as_message_sequences(store: convstore.Store) -> None:
    """A tuple of messages is saved like a list."""
    await store.save_snapshot("s1", tuple(conversation(2)))
    snap = await store.restore_snapshot("s1")
    assert snap is not None
    assert snap.messages == conversation(2)
