"""The pair-safe cap: every window kept is one the provider accepts, and a suffix of the
conversation after its pinned instructions; plain conversations keep their newest messages."""

from __future__ import annotations

from typing import Any

import pytest
from conversations import FORMATS, calls, conversations, system, tool_loop, user
from hypothesis import given, settings
from hypothesis import strategies as st

import convstore
from convstore._conversation.formats import shape
from convstore._conversation.positions import Positions
from convstore._conversation.repair import repair
from convstore._conversation.window import Window, plan


def full_plan(messages: list[Any], cap: int) -> tuple[int, ...]:
    """The positions a save of `messages` keeps."""
    return plan(Window(), [shape(m) for m in messages], 0, cap).kept


def grown_plan(messages: list[Any], cap: int) -> tuple[int, ...]:
    """The positions kept after appending `messages` one at a time."""
    window = Window()  # each plan changes it into the next window
    kept: tuple[int, ...] = ()
    for count, message in enumerate(messages):
        kept = plan(window, [shape(message)], count, cap).kept
    return kept


def saved_then_grown_plan(messages: list[Any], cut: int, cap: int) -> tuple[int, ...]:
    """The positions kept after saving `messages[:cut]`, then appending the rest one at a time."""
    window = Window()  # each plan changes it into the next window
    kept = plan(window, [shape(m) for m in messages[:cut]], 0, cap).kept
    for count, message in enumerate(messages[cut:], start=cut):
        kept = plan(window, [shape(message)], count, cap).kept
    return kept


def assert_window_rules(conversation: list[Any], kept: tuple[int, ...], cap: int) -> None:
    """`kept` obeys the cap's rules for `conversation` (see convstore._conversation.window)."""
    assert len(kept) <= cap
    assert list(kept) == sorted(set(kept))
    shapes = [shape(m) for m in conversation]
    leading = next((i for i, s in enumerate(shapes) if not s.instructions), len(shapes))
    pinned = [k for k in kept if k < leading]
    assert pinned == list(range(min(leading, cap)))
    rest = [k for k in kept if k >= leading]
    if rest and rest[-1] != len(conversation) - 1:
        assert len(rest) == 1  # an opening message kept alone
    elif rest:
        # A suffix of the conversation, perhaps after one opening message kept alone.
        run = rest if rest[-1] - rest[0] + 1 == len(rest) else rest[1:]
        assert run == list(range(len(conversation) - len(run), len(conversation)))
    window = [conversation[k] for k in kept]
    problems = convstore.check_conversation(window)
    assert not [p for p in problems if p.kind in ("bad_start", "orphan_result")], problems
    # Every call kept has, kept with it, every result the conversation has for it.
    answered_at = {r: i for i, s in enumerate(shapes) for r in s.results}
    for k in kept:
        for call in shapes[k].calls:
            assert call not in answered_at or answered_at[call] in kept, (call, kept)
    repaired, _ = repair(window)
    assert convstore.check_conversation(repaired) == []


_EDITS = st.lists(
    st.tuples(
        st.sampled_from(["add", "remove", "keep_at_most", "keep_at_least"]), st.integers(0, 40)
    )
)


@settings(max_examples=300, deadline=None, database=None, derandomize=True)
@given(edits=_EDITS)
def test_positions_behave_as_a_sorted_set(edits: list[tuple[str, int]]) -> None:
    """Positions, kept as runs, answer as the set of the same edits does."""
    positions, model = Positions(), set[int]()
    for edit, value in edits:
        if edit == "add":
            value += max(model, default=-1) + 1  # positions only ever grow at the end
            positions.add(value)
            model.add(value)
        elif edit == "remove":
            positions.remove(value)
            model.discard(value)
        elif edit == "keep_at_most":
            positions.keep_at_most(value)
            model = {p for p in model if p <= value}
        else:
            positions.keep_at_least(value)
            model = {p for p in model if p >= value}
        assert list(positions) == sorted(model)
        for probe in range(-1, max(model, default=0) + 3):
            assert positions.first_at_least(probe) == min(
                (p for p in model if p >= probe), default=None
            )
            assert positions.last_below(probe) == max((p for p in model if p < probe), default=None)
    assert Positions.from_json(positions.to_json()).runs == positions.runs


@pytest.mark.parametrize("fmt", FORMATS)
@settings(max_examples=60, deadline=None, database=None, derandomize=True)
@given(data=st.data(), cap=st.integers(2, 20))
def test_every_window_of_every_cut_obeys_the_rules(fmt: str, data: st.DataObject, cap: int) -> None:
    """Cut anywhere, as a crash would, saved whole or grown message by message, the window
    kept obeys the rules, and its repair leaves nothing to refuse."""
    conversation = data.draw(conversations(fmt))
    for cut in range(1, len(conversation) + 1):
        prefix = conversation[:cut]
        assert_window_rules(prefix, full_plan(prefix, cap), cap)
        assert_window_rules(prefix, grown_plan(prefix, cap), cap)


@settings(max_examples=100, deadline=None, database=None, derandomize=True)
@given(length=st.integers(0, 60), cap=st.integers(1, 20))
def test_plain_conversations_keep_exactly_their_newest_messages(length: int, cap: int) -> None:
    """Without tool calls or instructions, the window is the newest `cap` messages, as always."""
    conversation: list[Any] = [
        {"role": "user" if n % 2 == 0 else "assistant", "content": str(n)} for n in range(length)
    ]
    conversation += ["a bare string", 42, None][: length % 4]
    expected = tuple(range(max(len(conversation) - cap, 0), len(conversation)))
    assert full_plan(conversation, cap) == expected
    assert grown_plan(conversation, cap) == expected


def test_the_cap_never_splits_anthropic_tool_exchanges() -> None:
    """A user turn then 60 tool_use / tool_result pairs, capped at 100: the window keeps the
    user turn that opened the loop, then whole exchanges, and the first message is a user turn."""
    conversation = tool_loop("anthropic", "Book me a trip.", 60)[:-1]
    kept = full_plan(conversation, 100)
    assert len(kept) <= 100
    assert kept[0] == 0  # the opening user turn
    assert conversation[kept[1]]["role"] == "assistant"
    assert convstore.check_conversation([conversation[k] for k in kept]) == []


def test_the_system_prompt_stays() -> None:
    """An OpenAI chat conversation past the cap keeps its leading system message."""
    conversation = [system("openai_chat")] + [user("openai_chat", f"turn {n}") for n in range(150)]
    kept = full_plan(conversation, 100)
    assert kept[0] == 0
    assert len(kept) == 100
    assert kept[1:] == tuple(range(len(conversation) - 99, len(conversation)))


@pytest.mark.parametrize("fmt", ["anthropic", "openai_chat"])
def test_a_call_waiting_for_its_result_is_kept_while_it_fits(fmt: str) -> None:
    """A dangling call at the end is kept with the turn before it, so its result can follow; with
    room for one message, Anthropic keeps the user turn (it cannot start with the call) and
    OpenAI chat the call (it may start with an assistant turn)."""
    conversation = [user(fmt, "hi"), *calls(fmt, ["c1"])]
    assert full_plan(conversation, 2) == (0, 1)
    assert full_plan(conversation, 1) == ((0,) if fmt == "anthropic" else (1,))
