"""`Store.pop_messages`: the newest stored messages come off the conversation, on every backend,
the next append takes their places, the cap's window stays right, and concurrent appends and
pops lose and repeat nothing."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import convstore
from convstore import InvalidArgument, InvalidSessionId


def turn(n: int) -> list[dict[str, Any]]:
    """A Responses turn with a tool call: question, call, output, answer."""
    return [
        {"role": "user", "content": f"question {n}"},
        {"type": "function_call", "call_id": f"c{n}", "name": "f", "arguments": "{}"},
        {"type": "function_call_output", "call_id": f"c{n}", "output": f"result {n}"},
        {"type": "message", "role": "assistant", "content": f"answer {n}"},
    ]


async def test_pop_takes_the_newest_off_and_the_next_append_takes_their_places(
    store: convstore.Store,
) -> None:
    """Popped messages come back oldest first; the count goes down, and appends follow on."""
    messages = [{"role": "user", "content": str(n)} for n in range(5)]
    await store.save_snapshot("s", messages, extra={"k": 1})
    assert await store.pop_messages("s", 2) == messages[3:]
    snapshot = await store.restore_snapshot("s")
    assert snapshot is not None
    assert (snapshot.messages, snapshot.message_count, snapshot.extra) == (
        messages[:3],
        3,
        {"k": 1},
    )
    assert await store.append_messages("s", [messages[4]]) == 4
    assert await store.pop_messages("s", 10) == [*messages[:3], messages[4]]
    assert await store.pop_messages("s") == []
    assert await store.pop_messages("unknown") == []


async def test_pop_leaves_an_interruption_in_place(store: convstore.Store) -> None:
    """Popping is no save: a session marked interrupted stays so until resumed."""
    await store.save_snapshot("s", turn(1))
    await store.mark_interrupted("s", reason="SIGKILL")
    await store.pop_messages("s")
    assert [s.session_id for s in await store.list_interrupted_sessions()] == ["s"]


async def test_pops_under_the_cap_keep_a_window_the_api_accepts(database_url: str) -> None:
    """Past the cap, pops and appends in turn keep the count of the whole conversation, the
    newest messages, and a window with no orphan result and a valid start."""
    async with convstore.connect(database_url, max_messages=6) as store:
        conversation: list[Any] = []
        for n in range(6):
            conversation += turn(n)
            await store.append_messages("s", turn(n))
            popped = await store.pop_messages("s", n % 3 + 1)
            assert popped == conversation[-len(popped) :]
            del conversation[-len(popped) :]
            snapshot = await store.restore_snapshot("s")
            assert snapshot is not None
            assert snapshot.message_count == len(conversation)
            kept = snapshot.messages
            assert kept
            assert kept[-1] == conversation[-1]
            assert len(kept) <= 6
            problems = convstore.check_conversation(kept)
            assert not [p for p in problems if p.kind in ("bad_start", "orphan_result")]


async def test_concurrent_appends_and_pops_lose_and_repeat_nothing(database_url: str) -> None:
    """Ten appends and ten pops at once: every message is either still stored or popped once."""
    async with convstore.connect(database_url) as store:
        await store.save_snapshot("s", [{"n": n} for n in range(10)])
        appends = [store.append_messages("s", [{"n": 100 + n}]) for n in range(10)]
        pops = [store.pop_messages("s") for _ in range(10)]
        _, taken = await asyncio.gather(asyncio.gather(*appends), asyncio.gather(*pops))
        popped = [m["n"] for messages in taken for m in messages]
        snapshot = await store.restore_snapshot("s")
    assert snapshot is not None
    assert len(popped) == 10
    stored = [m["n"] for m in snapshot.messages]
    assert sorted(stored + popped) == [*range(10), *range(100, 110)]
    assert snapshot.message_count == len(stored) == 10


@pytest.mark.parametrize("count", [0, -1, True, 1.5, "1"])
async def test_a_bad_count_is_refused_and_nothing_changes(
    store: convstore.Store, count: Any
) -> None:
    """A count that is not a positive int raises InvalidArgument; nothing is taken off."""
    await store.save_snapshot("s", turn(1))
    with pytest.raises(InvalidArgument, match="count"):
        await store.pop_messages("s", count)
    snapshot = await store.restore_snapshot("s")
    assert snapshot is not None
    assert snapshot.messages == turn(1)


async def test_a_bad_session_id_is_refused(store: convstore.Store) -> None:
    """An empty session id raises InvalidSessionId."""
    with pytest.raises(InvalidSessionId):
        await store.pop_messages("")
