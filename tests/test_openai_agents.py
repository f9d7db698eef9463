"""ConvstoreSession under the OpenAI Agents SDK's own Runner, on every backend: turns across a
reopened store, a crash in a tool call then `resume()`, the cap, and the real OpenAI client
against a scripted local server."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest
from agents import (
    Agent,
    FunctionTool,
    OpenAIResponsesModel,
    RunConfig,
    Runner,
    RunResult,
    function_tool,
)
from agents.items import TResponseInputItem
from agents.memory import Session, SessionSettings
from agents.models.interface import Model
from agents.testing import ScriptedModel, assistant_message, function_call
from openai import AsyncOpenAI
from scripted_server import Reply, serving

import convstore
from convstore import InvalidArgument, InvalidSessionId, Repair
from convstore.integrations.openai_agents import ConvstoreSession

#: No trace leaves the test: the SDK would otherwise export them to OpenAI.
RUN = RunConfig(tracing_disabled=True)
USER = {"role": "user", "content": "Plan a day in Porto."}


class Crash(BaseException):
    """A crash in the middle of a tool call, which nothing catches."""


@function_tool
async def weather(city: str) -> str:
    """Today's weather in a city."""
    return f"Sunny in {city}"


def booking(mode: str, started: asyncio.Event) -> FunctionTool:
    """A hotel-booking tool that needs approval and, once approved, crashes (`mode` "raises")
    or hangs until the run is cancelled (`mode` "cancelled")."""

    @function_tool(needs_approval=True)
    async def book(city: str) -> str:
        """Book a hotel in a city."""
        started.set()
        if mode == "raises":
            raise Crash(city)
        await asyncio.Event().wait()
        return "booked"

    return book


def items(values: list[dict[str, Any]]) -> list[TResponseInputItem]:
    """`values` as the SDK's item type: the tests write items as plain dicts."""
    return cast(list[TResponseInputItem], values)


def kinds(items: Any) -> list[str]:
    """Each item's type, or its role for a message written without one."""
    return [str(item.get("type", item.get("role"))) for item in items]


def pairs(items: Any) -> tuple[list[str], list[str]]:
    """The call ids of the function calls among `items`, and of the outputs."""
    calls = [i["call_id"] for i in items if i.get("type") == "function_call"]
    outputs = [i["call_id"] for i in items if i.get("type") == "function_call_output"]
    return calls, outputs


def exchange(turn: int) -> list[Any]:
    """The model steps of a turn that calls the weather tool, then answers."""
    city = f"City {turn}"
    return [
        [function_call("weather", {"city": city}, call_id=f"call_{turn}")],
        [assistant_message(f"It is sunny in {city}.")],
    ]


async def run(model: Model, prompt: str, session: ConvstoreSession, *tools: Any) -> RunResult:
    """One turn of an agent on `model` with `tools` (the weather tool by default)."""
    agent = Agent(name="planner", model=model, tools=list(tools or [weather]))
    return await Runner.run(agent, prompt, session=session, run_config=RUN)


def test_a_convstore_session_is_an_agents_sdk_session(store: convstore.Store) -> None:
    """The SDK's runtime-checkable Session protocol recognises a ConvstoreSession."""
    session: Session = ConvstoreSession("s", store)
    assert isinstance(session, Session)
    assert session.session_settings == SessionSettings()


async def test_two_turns_with_a_tool_call_across_a_reopened_store(database_url: str) -> None:
    """The second turn, in a reopened store, shows the model the first turn's call, output and
    answer, then the new question."""
    first = ScriptedModel(exchange(1))
    async with convstore.connect(database_url) as store:
        result = await run(first, "Weather in City 1?", ConvstoreSession("trip", store))
    assert result.final_output == "It is sunny in City 1."
    second = ScriptedModel([[assistant_message("It was City 1.")]])
    async with convstore.connect(database_url) as store:
        result = await run(second, "Which city was it?", ConvstoreSession("trip", store))
        stored = await store.restore_snapshot("trip")
    assert result.final_output == "It was City 1."
    (call,) = second.calls
    assert kinds(call.input) == ["user", "function_call", "function_call_output", "message", "user"]
    assert call.input[2]["output"] == "Sunny in City 1"
    assert call.input[-1]["content"] == "Which city was it?"
    assert convstore.check_conversation(call.input) == []
    assert stored is not None
    assert stored.message_count == 6


async def interrupted_booking(
    model: Model, session: ConvstoreSession, mode: str
) -> list[dict[str, Any]]:
    """Ask for a booking, approve the call, and crash in the tool; what is stored after."""
    started = asyncio.Event()
    book = booking(mode, started)
    agent = Agent(name="planner", model=model, tools=[book])
    asked = await Runner.run(agent, "Book a hotel in Porto.", session=session, run_config=RUN)
    state = asked.to_state()
    state.approve(asked.interruptions[0])
    store = session.store

    async def approved() -> None:
        # A lease marks the session interrupted when the block ends with an exception.
        async with store.running(session.session_id):
            task = asyncio.ensure_future(Runner.run(agent, state, session=session, run_config=RUN))
            await started.wait()
            if mode == "cancelled":
                task.cancel()
            await task

    with pytest.raises((Crash, asyncio.CancelledError)):
        await approved()
    snapshot = await store.restore_snapshot(session.session_id)
    assert snapshot is not None
    assert snapshot.interrupted
    return list(snapshot.messages)


@pytest.mark.parametrize("mode", ["raises", "cancelled"])
async def test_a_crash_in_a_tool_call_is_resumed_and_the_conversation_carries_on(
    database_url: str, mode: str
) -> None:
    """A call stored without its output is left out of limit reads, closed by resume(), and
    the next turn shows the model the call with its output."""
    model = ScriptedModel([[function_call("book", {"city": "Porto"}, call_id="call_book")]])
    async with convstore.connect(database_url) as store:
        stored = await interrupted_booking(model, ConvstoreSession("trip", store), mode)
        assert kinds(stored) == ["user", "function_call"]
        session = ConvstoreSession("trip", store, session_settings=SessionSettings(limit=10))
        assert await session.get_items() == stored[:1]
        assert await session.get_items(limit=None) == stored[:1]
    after = ScriptedModel([[assistant_message("The booking was interrupted; shall I retry?")]])
    async with convstore.connect(database_url) as store:
        snapshot = await store.resume("trip")
        assert snapshot is not None
        assert snapshot.repairs == (Repair("closed_call", "call_book", 1),)
        result = await run(after, "Is the hotel booked?", ConvstoreSession("trip", store))
        assert await store.list_interrupted_sessions() == []
    assert result.final_output == "The booking was interrupted; shall I retry?"
    (call,) = after.calls
    assert kinds(call.input) == ["user", "function_call", "function_call_output", "user"]
    assert "interrupted" in call.input[2]["output"]
    assert convstore.check_conversation(call.input) == []


async def test_an_approved_call_is_stored_with_its_output(store: convstore.Store) -> None:
    """A run resumed from its approval, on a session whose reads have a limit, stores the call
    with its output and answers."""
    model = ScriptedModel(
        [
            [function_call("book", {"city": "Porto"}, call_id="call_book")],
            [assistant_message("Booked in Porto.")],
        ]
    )

    @function_tool(needs_approval=True)
    async def book(city: str) -> str:
        """Book a hotel in a city."""
        return f"Booked in {city}"

    agent = Agent(name="planner", model=model, tools=[book])
    session = ConvstoreSession("trip", store, session_settings=SessionSettings(limit=3))
    asked = await Runner.run(agent, "Book a hotel in Porto.", session=session, run_config=RUN)
    state = asked.to_state()
    state.approve(asked.interruptions[0])
    result = await Runner.run(agent, state, session=session, run_config=RUN)
    assert result.final_output == "Booked in Porto."
    stored = await session.get_items(limit=None)
    # The settings' limit of 3 applies: the whole exchange is 4 long, so the question and the
    # answer, without the call and output between them.
    assert kinds(stored) == ["user", "message"]
    snapshot = await store.restore_snapshot("trip")
    assert snapshot is not None
    assert kinds(snapshot.messages) == ["user", "function_call", "function_call_output", "message"]
    assert snapshot.messages[2]["output"] == "Booked in Porto"


async def test_a_small_cap_never_shows_a_call_without_its_output(database_url: str) -> None:
    """Under a cap of five items, every model input, the stored items and every limit read
    hold each call with its output, and start where a conversation may start."""
    async with convstore.connect(database_url, max_messages=5) as store:
        session = ConvstoreSession("loop", store)
        limited = ConvstoreSession("loop", store, session_settings=SessionSettings(limit=3))
        for turn in range(8):
            model = ScriptedModel(exchange(turn))
            await run(model, f"Weather in City {turn}?", limited if turn % 2 else session)
            for call in model.calls:
                assert convstore.check_conversation(call.input) == [], call.input
            snapshot = await store.restore_snapshot("loop")
            assert snapshot is not None
            assert snapshot.message_count == 4 * (turn + 1)
            assert convstore.check_conversation(snapshot.messages) == []
            for limit in range(1, 7):
                items = await session.get_items(limit)
                assert len(items) <= limit
                assert convstore.check_conversation(items) == [], (limit, items)
                # The newest items, or, when no whole exchange fits, the question alone.
                assert items[-1] == snapshot.messages[-1] or kinds(items) == ["user"]


async def test_a_limit_read_never_cuts_a_call_from_its_output(store: convstore.Store) -> None:
    """A read too short for the newest exchange keeps the question that started it and the
    answer, not an output whose call it cut (openai-agents-python #4322)."""
    session = ConvstoreSession("s", store)
    call = {"type": "function_call", "call_id": "c1", "name": "weather", "arguments": "{}"}
    output = {"type": "function_call_output", "call_id": "c1", "output": "Sunny"}
    answer = {"type": "message", "role": "assistant", "content": [{"type": "output_text"}]}
    await session.add_items(items([USER, call, output, answer]))
    assert await session.get_items(2) == [USER, answer]
    assert await session.get_items(3) == [USER, answer]
    assert await session.get_items(4) == [USER, call, output, answer]


async def test_a_limit_read_never_parts_reasoning_from_the_call_it_leads(
    store: convstore.Store,
) -> None:
    """A read keeps a reasoning item with the call it leads, or leaves out both."""
    turns: list[dict[str, Any]] = [USER]
    for n in (1, 2):
        turns += [
            {"type": "reasoning", "id": f"rs_{n}", "summary": []},
            {"type": "function_call", "call_id": f"c{n}", "name": "weather", "arguments": "{}"},
            {"type": "function_call_output", "call_id": f"c{n}", "output": "Sunny"},
        ]
    answer = {"type": "message", "role": "assistant", "content": "Sunny all day."}
    session = ConvstoreSession("s", store)
    await session.add_items(items([*turns, answer]))
    assert await session.get_items(4) == [USER, answer]
    assert await session.get_items(5) == [USER, *turns[4:], answer]
    assert await session.get_items(8) == [*turns, answer]


async def test_pop_item_and_clear_session(store: convstore.Store) -> None:
    """pop_item takes off and returns the newest item (None when there is none), the next
    item takes its place, and clear_session deletes the items."""
    session = ConvstoreSession("s", store)
    assert await session.pop_item() is None
    answer = {"type": "message", "role": "assistant", "content": "Porto: Ribeira, then Foz."}
    await session.add_items(items([USER, answer]))
    assert await session.pop_item() == answer
    assert await session.get_items() == [USER]
    retry = {"type": "message", "role": "assistant", "content": "Ribeira in the morning."}
    await session.add_items(items([retry]))
    snapshot = await store.restore_snapshot("s")
    assert snapshot is not None
    assert snapshot.messages == [USER, retry]
    assert snapshot.message_count == 2
    await session.clear_session()
    assert await session.get_items() == []
    assert await store.restore_snapshot("s") is None


@pytest.mark.parametrize("session_id", ["", 7, "a\x00b", "x" * 256])
def test_a_bad_session_id_is_refused(store: convstore.Store, session_id: Any) -> None:
    """A session id the store cannot keep raises InvalidSessionId."""
    with pytest.raises(InvalidSessionId):
        ConvstoreSession(session_id, store)


@pytest.mark.parametrize("store_like", [None, "sqlite://"])
def test_a_session_needs_a_store(store_like: Any) -> None:
    """Anything but a convstore.Store as the store raises InvalidArgument."""
    with pytest.raises(InvalidArgument, match=r"store must be a convstore\.Store"):
        ConvstoreSession("s", store_like)


async def test_bad_items_and_limits_are_refused_and_nothing_stored_changes(
    store: convstore.Store,
) -> None:
    """Items that are not a list of dicts, and limits that are not positive ints, raise
    InvalidArgument naming the argument, and leave the stored items as they were."""
    session = ConvstoreSession("s", store)
    await session.add_items(items([USER]))
    bad_items: list[Any] = ["hello", (USER,), [USER, "text"], [None]]
    for bad in bad_items:
        with pytest.raises(InvalidArgument, match="items"):
            await session.add_items(bad)
    bad_limits: list[Any] = [0, -1, True, 2.5, "3"]
    for limit in bad_limits:
        with pytest.raises(InvalidArgument, match="limit"):
            await session.get_items(limit)
    session.session_settings = SessionSettings(limit=0)
    with pytest.raises(InvalidArgument, match="limit"):
        await session.get_items()
    session.session_settings = None
    assert await session.get_items() == [USER]


def response(number: int, *output: dict[str, Any]) -> dict[str, Any]:
    """A Responses API response holding `output`."""
    usage = {
        "input_tokens": 10,
        "output_tokens": 5,
        "total_tokens": 15,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens_details": {"reasoning_tokens": 0},
    }
    return {
        "id": f"resp_{number}",
        "object": "response",
        "created_at": 1_700_000_000,
        "model": "gpt-test",
        "status": "completed",
        "output": list(output),
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        "usage": usage,
    }


async def test_the_real_client_sends_every_call_with_its_output_after_a_resume(
    database_url: str,
) -> None:
    """With OpenAIResponsesModel and the real AsyncOpenAI client, the request after a crash
    and resume() holds each function call, after its reasoning, with its output."""
    reasoning = {"type": "reasoning", "id": "rs_1", "summary": []}
    call = {
        "type": "function_call",
        "id": "fc_1",
        "call_id": "call_book",
        "name": "book",
        "arguments": '{"city": "Porto"}',
        "status": "completed",
    }
    text = "The booking was interrupted; shall I retry?"
    answer = {
        "type": "message",
        "id": "msg_1",
        "role": "assistant",
        "status": "completed",
        "content": [{"type": "output_text", "text": text, "annotations": []}],
    }
    replies = [Reply(200, response(1, reasoning, call)), Reply(200, response(2, answer))]
    with serving(replies) as (url, script):
        async with AsyncOpenAI(base_url=f"{url}/v1", api_key="test", max_retries=0) as client:
            model = OpenAIResponsesModel("gpt-test", openai_client=client)
            async with convstore.connect(database_url) as store:
                stored = await interrupted_booking(model, ConvstoreSession("trip", store), "raises")
            assert kinds(stored) == ["user", "reasoning", "function_call"]
            async with convstore.connect(database_url) as store:
                await store.resume("trip")
                result = await run(model, "Is it booked?", ConvstoreSession("trip", store))
    assert result.final_output == text
    assert [path for _, path, _ in script.requests] == ["/v1/responses", "/v1/responses"]
    sent = script.requests[-1][2]["input"]
    assert kinds(sent) == ["user", "reasoning", "function_call", "function_call_output", "user"]
    assert pairs(sent) == (["call_book"], ["call_book"])
    assert convstore.check_conversation(sent) == []
