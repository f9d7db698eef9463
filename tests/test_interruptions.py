"""Interruption markers, the list of interrupted sessions and the crash history."""

from __future__ import annotations

from datetime import UTC
from typing import Any

import pytest

import convstore

MESSAGES = [{"role": "user", "content": "hello"}]


async def test_mark_interrupted_sets_the_marker(store: convstore.Store) -> None:
    """A marked session restores as interrupted, with the time and the reason."""
    await store.save_snapshot("s1", MESSAGES)
    await store.mark_interrupted("s1", reason="SIGTERM")
    snap = await store.restore_snapshot("s1")
    assert snap is not None
    assert snap.interrupted
    assert snap.interrupted_at is not None
    assert snap.interrupted_at.tzinfo is UTC
    assert snap.interrupted_at >= snap.saved_at
    assert snap.interrupt_reason == "SIGTERM"
    assert snap.messages == MESSAGES


async def test_marking_an_unknown_session_creates_it(store: convstore.Store) -> None:
    """Marking a session never saved creates it, empty, and lists it under its own id."""
    await store.mark_interrupted("ghost/1")
    [listed] = await store.list_interrupted_sessions()
    assert listed.session_id == "ghost/1"
    assert listed.message_count == 0
    assert listed.reason is None
    snap = await store.restore_snapshot("ghost/1")
    assert snap is not None
    assert snap.messages == []
    assert snap.message_count == 0
    assert snap.extra == {}
    assert snap.interrupted


async def test_list_is_newest_interruption_first(store: convstore.Store) -> None:
    """Interrupted sessions are listed newest interruption first, with counts and ages."""
    for session_id in ["a", "b", "c"]:
        await store.save_snapshot(session_id, MESSAGES * 2)
    await store.save_snapshot("never-interrupted", MESSAGES)
    await store.mark_interrupted("b", reason="first")
    await store.mark_interrupted("a", reason="second")
    await store.mark_interrupted("c", reason="third")
    listed = await store.list_interrupted_sessions()
    assert [s.session_id for s in listed] == ["c", "a", "b"]
    assert [s.reason for s in listed] == ["third", "second", "first"]
    assert all(s.message_count == 2 for s in listed)
    times = [s.interrupted_at for s in listed]
    assert times == sorted(times, reverse=True)
    assert all(t.tzinfo is UTC for t in times)
    assert all(0 <= s.age_seconds < 60 for s in listed)
    assert listed[0].age_seconds <= listed[-1].age_seconds


async def test_list_limit(store: convstore.Store) -> None:
    """`limit` keeps the newest interruptions only; a bad limit is rejected."""
    for session_id in ["a", "b", "c"]:
        await store.mark_interrupted(session_id)
    assert [s.session_id for s in await store.list_interrupted_sessions(limit=2)] == ["c", "b"]
    assert await store.list_interrupted_sessions(limit=0) == []
    with pytest.raises(convstore.InvalidArgument, match="limit"):
        await store.list_interrupted_sessions(limit=-1)


async def test_marking_again_moves_the_session_to_the_top(store: convstore.Store) -> None:
    """A second mark updates the marker to the newest time and adds a second history row."""
    await store.mark_interrupted("a", reason="one")
    await store.mark_interrupted("b")
    await store.mark_interrupted("a", reason="two")
    listed = await store.list_interrupted_sessions()
    assert [(s.session_id, s.reason) for s in listed] == [("a", "two"), ("b", None)]
    history = await store.interruptions("a")
    assert [h.reason for h in history] == ["two", "one"]


@pytest.mark.parametrize("how", ["save", "append"])
async def test_saving_or_appending_ends_the_interruption(store: convstore.Store, how: str) -> None:
    """A save or an append clears the marker and resolves the open history rows."""
    await store.save_snapshot("s1", MESSAGES)
    await store.mark_interrupted("s1", reason="crash")
    await store.mark_interrupted("s1", reason="crash again")
    if how == "save":
        await store.save_snapshot("s1", MESSAGES * 2)
    else:
        await store.append_messages("s1", MESSAGES)
    assert await store.list_interrupted_sessions() == []
    snap = await store.restore_snapshot("s1")
    assert snap is not None
    assert not snap.interrupted
    assert snap.interrupt_reason is None
    history = await store.interruptions("s1")
    assert len(history) == 2
    for entry in history:
        assert entry.resolved_at is not None
        assert entry.resolved_at.tzinfo is UTC
        assert entry.resolved_at >= entry.interrupted_at


async def test_resolving_leaves_other_sessions_alone(store: convstore.Store) -> None:
    """Saving one interrupted session leaves another one interrupted and unresolved."""
    await store.mark_interrupted("a")
    await store.mark_interrupted("b")
    await store.save_snapshot("a", MESSAGES)
    assert [s.session_id for s in await store.list_interrupted_sessions()] == ["b"]
    [entry] = await store.interruptions("b")
    assert entry.resolved_at is None


async def test_deleting_keeps_the_history(store: convstore.Store) -> None:
    """Deleting an interrupted session removes it from the list but keeps its history, resolved."""
    await store.save_snapshot("s1", MESSAGES)
    await store.mark_interrupted("s1", reason="OOM")
    assert await store.delete_snapshot("s1")
    assert await store.list_interrupted_sessions() == []
    [entry] = await store.interruptions("s1")
    assert entry.session_id == "s1"
    assert entry.reason == "OOM"
    assert entry.resolved_at is not None


async def test_history_of_all_sessions(store: convstore.Store) -> None:
    """Without a session id, the history covers every session, newest first, and obeys limit."""
    await store.mark_interrupted("a", reason="1")
    await store.mark_interrupted("b", reason="2")
    await store.mark_interrupted("a", reason="3")
    assert [(h.session_id, h.reason) for h in await store.interruptions()] == [
        ("a", "3"),
        ("b", "2"),
        ("a", "1"),
    ]
    assert len(await store.interruptions(limit=1)) == 1


async def test_a_reason_that_is_not_a_str_is_rejected(store: convstore.Store) -> None:
    """A reason that is not a str raises InvalidArgument and marks nothing."""
    with pytest.raises(convstore.InvalidArgument, match="must be a str"):
        await store.mark_interrupted("s1", reason=3)  # type: ignore[arg-type]
    assert await store.list_interrupted_sessions() == []
    assert await store.restore_snapshot("s1") is None


async def test_a_reason_is_stored_whatever_characters_it_holds(store: convstore.Store) -> None:
    """NUL and lone surrogates, which no backend stores as text, become U+FFFD; the rest stays."""
    await store.mark_interrupted("s1", reason="killed\x00 by \ud800 signal 😀")
    [listed] = await store.list_interrupted_sessions()
    assert listed.reason == "killed\ufffd by \ufffd signal 😀"
    assert [h.reason for h in await store.interruptions("s1")] == [listed.reason]


async def test_listing_reads_an_index_not_every_session(
    store: convstore.Store, backend: str
) -> None:
    """The query the list runs searches the partial index of interrupted sessions, with no sort."""
    from convstore._storage.statements import interrupted_sessions

    query = interrupted_sessions().params(limit=10)
    statement = str(
        query.compile(dialect=store.engine.dialect, compile_kwargs={"literal_binds": True})
    )
    parameters: dict[str, Any] = {}
    async with store.engine.connect() as conn:
        if backend == "sqlite":
            explain, sort = "EXPLAIN QUERY PLAN ", "TEMP B-TREE"
        else:
            # An empty table is cheapest to scan; the question is whether the index can serve.
            await conn.exec_driver_sql("SET enable_seqscan = off")
            explain, sort = "EXPLAIN ", "Sort"
        plan = (await conn.exec_driver_sql(explain + statement, parameters)).all()
    details = " ".join(str(row[-1]) for row in plan)
    assert "ix_sessions_interrupted_at" in details
    assert sort not in details
