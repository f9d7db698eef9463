"""Resumable conversations on both backends: what is stored is a window the provider accepts,
and `resume()` repairs what a crash left, writes it back and ends the interruption."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import pytest
from conversations import FORMATS, calls, conversations, results, system, tool_loop, user
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_windows import assert_window_rules, full_plan, grown_plan, saved_then_grown_plan

import convstore

_ids = itertools.count()


def _every_format_and_small_caps(test: Callable[..., Any]) -> Callable[..., Any]:
    """A property test on both backends: a dozen examples, over the formats and caps of 2-12."""
    return settings(
        max_examples=12,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )(given(data=st.data(), fmt=st.sampled_from(FORMATS), cap=st.integers(2, 12))(test))


def new_id() -> str:
    """A session id no other example of the test uses."""
    return f"conversation-{next(_ids)}"


@_every_format_and_small_caps
async def test_stored_windows_are_the_planned_ones_and_resume_leaves_no_problem(
    database_url: str, data: st.DataObject, fmt: str, cap: int
) -> None:
    """Grown message by message and saved at every cut, each session stores the window the cap
    plans, and resuming it gives a conversation with no problem."""
    conversation = data.draw(conversations(fmt))
    async with convstore.connect(database_url, max_messages=cap) as store:
        grown = new_id()
        for count, message in enumerate(conversation, start=1):
            assert await store.append_messages(grown, [message]) == count
            stored = await store.restore_snapshot(grown)
            assert stored is not None
            kept = grown_plan(conversation[:count], cap)
            assert stored.messages == [conversation[k] for k in kept]
        for cut in range(1, len(conversation) + 1, 2):
            saved = new_id()
            await store.save_snapshot(saved, conversation[:cut])
            stored = await store.restore_snapshot(saved)
            assert stored is not None
            kept = full_plan(conversation[:cut], cap)
            assert_window_rules(conversation[:cut], kept, cap)
            assert stored.messages == [conversation[k] for k in kept]
            resumed = await store.resume(saved)
            assert resumed is not None
            assert convstore.check_conversation(resumed.messages) == []


@_every_format_and_small_caps
async def test_appends_after_a_save_keep_the_planned_window(
    database_url: str, data: st.DataObject, fmt: str, cap: int
) -> None:
    """A save that fits in the cap stores no window (nothing to trim yet); appends after it, and
    after a save that was trimmed, keep what the cap plans for the conversation so grown."""
    conversation = data.draw(conversations(fmt))
    cut = data.draw(st.integers(1, len(conversation)))
    async with convstore.connect(database_url, max_messages=cap) as store:
        session = new_id()
        await store.save_snapshot(session, conversation[:cut])
        for count, message in enumerate(conversation[cut:], start=cut + 1):
            assert await store.append_messages(session, [message]) == count
            stored = await store.restore_snapshot(session)
            assert stored is not None
            kept = saved_then_grown_plan(conversation[:count], cut, cap)
            assert stored.messages == [conversation[k] for k in kept]


async def test_a_long_anthropic_tool_loop_restores_as_the_api_accepts_it(
    store: convstore.Store,
) -> None:
    """60 tool exchanges after a user turn, saved or appended with the default cap of 100: the
    restored conversation starts with that user turn and splits no exchange."""
    conversation = tool_loop("anthropic", "Plan the whole trip.", 60)[:-1]
    await store.save_snapshot("saved", conversation)
    for message in conversation:
        await store.append_messages("appended", [message])
    for session_id in ("saved", "appended"):
        snapshot = await store.restore_snapshot(session_id)
        assert snapshot is not None
        assert snapshot.message_count == len(conversation)
        assert len(snapshot.messages) <= 100
        assert snapshot.messages[0] == conversation[0]
        assert convstore.check_conversation(snapshot.messages) == []


async def test_the_system_prompt_survives_the_cap(store: convstore.Store) -> None:
    """An OpenAI chat conversation of 151 messages keeps its system message, and 99 newest."""
    conversation = [system("openai_chat")] + [user("openai_chat", str(n)) for n in range(150)]
    await store.save_snapshot("s", conversation)
    snapshot = await store.restore_snapshot("s")
    assert snapshot is not None
    assert snapshot.messages == [conversation[0], *conversation[-99:]]


@pytest.mark.parametrize("fmt", ["anthropic", "openai_chat", "openai_responses", "pydantic_ai"])
async def test_resume_closes_the_calls_a_crash_left_open(store: convstore.Store, fmt: str) -> None:
    """A session interrupted in the middle of two parallel calls, one answered: restore gives
    it back as stored; resume closes the other call, writes the result back and ends the
    interruption, recording the repair in its history row."""
    conversation = [user(fmt, "Find flights."), *calls(fmt, ["a", "b"]), *results(fmt, ["a"])]
    await store.save_snapshot("s", conversation)
    await store.mark_interrupted("s", reason="SIGKILL")
    stored = await store.restore_snapshot("s")
    assert stored is not None
    assert stored.messages == conversation
    assert stored.repairs == ()
    assert [p.kind for p in convstore.check_conversation(stored.messages)] == ["dangling_call"]

    resumed = await store.resume("s")
    assert resumed is not None
    assert convstore.check_conversation(resumed.messages) == []
    assert [(r.kind, r.call_id) for r in resumed.repairs] == [("closed_call", "b")]
    assert resumed.interrupted_at is None
    assert await store.list_interrupted_sessions() == []
    (history,) = await store.interruptions("s")
    assert history.resolved_at is not None
    assert history.repairs == resumed.repairs
    again = await store.restore_snapshot("s")
    assert again is not None
    assert again.messages == resumed.messages
    assert again.message_count == len(resumed.messages)


async def test_anthropic_results_go_into_the_user_message_that_follows(
    store: convstore.Store,
) -> None:
    """The synthetic result joins the results already in the next user message, marked as an
    error, before anything else that message holds."""
    await store.save_snapshot(
        "s",
        [user("anthropic", "go"), *calls("anthropic", ["a", "b"]), *results("anthropic", ["a"])],
    )
    resumed = await store.resume("s")
    assert resumed is not None
    assert len(resumed.messages) == 3
    blocks = resumed.messages[2]["content"]
    assert [b["tool_use_id"] for b in blocks] == ["a", "b"]
    assert blocks[1]["is_error"] is True


async def test_pending_calls_stay_open(store: convstore.Store) -> None:
    """Calls listed as pending (awaiting approval) are left without a result."""
    await store.save_snapshot("s", [user("openai_chat", "go"), *calls("openai_chat", ["x", "y"])])
    resumed = await store.resume("s", pending=["x"])
    assert resumed is not None
    assert [r.call_id for r in resumed.repairs] == ["y"]
    problems = convstore.check_conversation(resumed.messages)
    assert [(p.kind, p.call_id) for p in problems] == [("dangling_call", "x")]
    assert convstore.check_conversation(resumed.messages, pending=["x"]) == []


async def test_results_without_their_call_are_dropped(store: convstore.Store) -> None:
    """A tool message whose call is not in the conversation is dropped, and said so."""
    conversation: list[Any] = [
        user("openai_chat", "go"),
        {"role": "tool", "tool_call_id": "ghost", "content": "?"},
        {"role": "assistant", "content": "done"},
    ]
    await store.save_snapshot("s", conversation)
    resumed = await store.resume("s")
    assert resumed is not None
    assert resumed.messages == [conversation[0], conversation[2]]
    assert [(r.kind, r.call_id, r.position) for r in resumed.repairs] == [
        ("dropped_result", "ghost", 1)
    ]


async def test_resume_of_an_acceptable_conversation_changes_nothing(
    store: convstore.Store,
) -> None:
    """Nothing to repair: the conversation is returned as stored and the interruption ends."""
    conversation = tool_loop("openai_responses", "hi", 2)
    await store.save_snapshot("s", conversation)
    await store.mark_interrupted("s")
    resumed = await store.resume("s")
    assert resumed is not None
    assert resumed.messages == conversation
    assert resumed.repairs == ()
    assert await store.list_interrupted_sessions() == []


async def test_resume_of_an_unknown_session_is_none(store: convstore.Store) -> None:
    """There is nothing to resume."""
    assert await store.resume("nobody") is None


@pytest.mark.parametrize("pending", ["x", [1], None])
async def test_pending_must_be_call_ids(store: convstore.Store, pending: Any) -> None:
    """A str (not a list of them), or ids that are not str, are refused before anything else."""
    await store.save_snapshot("s", [user("openai_chat", "go"), *calls("openai_chat", ["x"])])
    with pytest.raises(convstore.InvalidArgument, match="pending"):
        await store.resume("s", pending=pending)
    stored = await store.restore_snapshot("s")
    assert stored is not None
    assert len(stored.messages) == 2
