"""convstore as pydantic-ai's message history, exercised through pydantic-ai's own `Agent` runner
and its `FunctionModel` and `TestModel`, on every backend: turns across reopened stores, an exact
round trip of every kind of part, a crash in the middle of a tool call, deferred calls, the cap."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic_ai import (
    Agent,
    AgentRunResult,
    DeferredToolRequests,
    DeferredToolResults,
    UserError,
)
from pydantic_ai import messages as m
from pydantic_ai.messages import ModelMessage, ModelMessagesTypeAdapter
from pydantic_ai.models.function import AgentInfo, FunctionModel
from pydantic_ai.models.test import TestModel
from pydantic_ai.usage import RequestUsage

import convstore
from convstore.integrations.pydantic_ai import ConvstoreMessageHistory, StoredHistoryError

SYSTEM_PROMPT = "You report the weather."


class Crash(BaseException):
    """The process dying in the middle of a tool call."""


class Weather:
    """A scripted model and its agent: for each user prompt the model calls `weather` with the
    prompt as the city, then answers with what the tool returned; it keeps every history sent."""

    def __init__(self) -> None:
        self.seen: list[list[ModelMessage]] = []
        self.crash = False
        self.agent = Agent(FunctionModel(self.respond), system_prompt=SYSTEM_PROMPT)
        self.agent.tool_plain(self.weather)

    def weather(self, city: str) -> str:
        """The weather in a city."""
        if self.crash:
            raise Crash
        return f"Sunny in {city}"

    def respond(self, messages: list[ModelMessage], info: AgentInfo) -> m.ModelResponse:
        self.seen.append(list(messages))
        last = messages[-1]
        prompts = [p for p in last.parts if isinstance(p, m.UserPromptPart)]
        if prompts:
            call = m.ToolCallPart("weather", {"city": prompts[-1].content}, f"c{len(self.seen)}")
            return m.ModelResponse(parts=[call])
        returns = [p for p in last.parts if isinstance(p, m.ToolReturnPart)]
        return m.ModelResponse(parts=[m.TextPart(" / ".join(str(p.content) for p in returns))])


async def run_storing(
    agent: Agent[None, str],
    prompt: str | None,
    history: ConvstoreMessageHistory,
    messages: list[ModelMessage],
) -> AgentRunResult[str]:
    """Run the agent node by node, appending its new messages after each node."""
    stored = 0
    async with agent.iter(prompt, message_history=messages) as run:
        async for _node in run:
            new = run.new_messages()[stored:]
            if new:
                await history.append(new)
                stored += len(new)
    assert run.result is not None
    return run.result


def dumped(messages: list[ModelMessage]) -> list[Any]:
    """The messages as pydantic-ai dumps them for JSON."""
    bodies: list[Any] = ModelMessagesTypeAdapter.dump_python(messages, mode="json")
    return bodies


async def test_two_turns_across_a_reopened_store(database_url: str) -> None:
    """A turn with a tool call is appended and the store closed; reopened, the history loads as
    equal objects, the second turn's model is sent the first turn whole, and so on."""
    model = Weather()
    async with convstore.connect(database_url) as store:
        history = ConvstoreMessageHistory("trip-1", store)
        first = await model.agent.run("Lisbon")
        assert await history.append(first.new_messages()) == 4
    async with convstore.connect(database_url) as store:
        history = ConvstoreMessageHistory("trip-1", store)
        loaded = await history.load()
        assert loaded == first.all_messages()
        assert dumped(loaded) == dumped(first.all_messages())
        second = await model.agent.run("Porto", message_history=loaded)
        await history.append(second.new_messages())
    assert second.output == "Sunny in Porto"
    sent = model.seen[-2]  # the second turn's first request, which asks for the tool
    assert dumped(sent[:4]) == dumped(first.all_messages())
    async with convstore.connect(database_url) as store:
        loaded = await ConvstoreMessageHistory("trip-1", store).load()
        assert loaded == second.all_messages()
        assert convstore.check_conversation(dumped(loaded)) == []


def every_part_kind() -> list[ModelMessage]:
    """A history holding each kind of request and response part, with non-UTC timestamps."""
    plus2 = datetime(2025, 3, 4, 5, 6, 7, 123456, tzinfo=timezone(timedelta(hours=2)))
    utc = datetime(2025, 3, 4, 3, 6, 8, tzinfo=UTC)
    media: list[m.UserContent] = [
        "Compare these",
        m.ImageUrl("https://example.com/a.png"),
        m.BinaryContent(b"\x89PNG\r\n\x00", media_type="image/png"),
        m.DocumentUrl("https://example.com/d.pdf"),
        m.AudioUrl("https://example.com/a.mp3"),
        m.VideoUrl("https://example.com/v.mp4"),
        m.TextContent("the left one is mine", metadata={"source": "app"}),
        m.CachePoint(),
    ]
    return [
        m.ModelRequest(
            parts=[
                m.SystemPromptPart("You compare things.", timestamp=plus2),
                m.UserPromptPart(media, timestamp=plus2),
            ],
            timestamp=plus2,
            instructions="Be brief.",
            run_id="run-1",
            conversation_id="conv-1",
            metadata={"tenant": "acme"},
        ),
        m.ModelResponse(
            parts=[
                m.ThinkingPart("Let me look.", id="th-1", signature="sig==", provider_name="x"),
                m.TextPart("Looking.", provider_details={"logprobs": [-0.5, -1.25]}),
                m.NativeToolCallPart("web_search", {"q": "a vs d"}, "ws-1", provider_name="x"),
                m.NativeToolReturnPart("web_search", {"hits": 2}, "ws-1", timestamp=utc),
                m.ToolCallPart("measure", {"item": "a"}, "call-a"),
                m.ToolCallPart("measure", '{"item": "d"}', "call-d"),
                m.ToolCallPart("weigh", None, "call-w"),
                m.ToolCallPart("price", {"item": "v"}, "call-p"),
                m.CompactionPart("Earlier: two items.", id="cmp-1", provider_name="x"),
                m.ToolSearchCallPart(args={"queries": ["convert"]}, tool_call_id="call-s"),
            ],
            usage=RequestUsage(input_tokens=120, output_tokens=33, details={"r": 4}),
            model_name="scripted",
            timestamp=plus2,
            provider_name="x",
            provider_details={"finish": {"raw": "tool_use"}},
            provider_response_id="resp-1",
            finish_reason="tool_call",
            run_id="run-1",
        ),
        m.ModelRequest(
            parts=[
                m.ToolReturnPart(
                    "measure", {"cm": 12.5}, "call-a", metadata={"s": 1}, timestamp=utc
                ),
                m.ToolReturnPart("measure", "no item", "call-d", outcome="failed", timestamp=plus2),
                m.ToolReturnPart("weigh", "which?", "call-w", outcome="retried", timestamp=utc),
                m.ToolReturnPart("price", "no", "call-p", outcome="denied", timestamp=utc),
                m.ToolSearchReturnPart(
                    content={"discovered_tools": []}, tool_call_id="call-s", timestamp=plus2
                ),
                m.RetryFeedbackPart("One line.", retry=m.RetryInfo("model_retry"), timestamp=utc),
            ],
            timestamp=utc,
            run_id="run-1",
        ),
        m.ModelResponse(
            parts=[
                m.TextPart("a is 12.5 cm."),
                m.FilePart(m.BinaryContent(b"chart", media_type="image/png"), id="f-1"),
            ],
            timestamp=utc,
            state="complete",
        ),
    ]


async def test_every_kind_of_part_round_trips_exactly(store: convstore.Store) -> None:
    """Each part kind pydantic-ai dumps is stored and loaded back as equal objects, dumping to the
    same JSON (timestamps keep their offsets), and convstore sees its calls and returns."""
    # What pydantic-ai itself gives back for the history: validation fills media types in.
    built = every_part_kind()
    original = ModelMessagesTypeAdapter.validate_python(dumped(built))
    history = ConvstoreMessageHistory("every-kind", store)
    await history.append(original)
    loaded = await history.load()
    assert loaded == original
    assert dumped(loaded) == dumped(built)
    assert loaded[0].timestamp is not None
    assert loaded[0].timestamp.utcoffset() == timedelta(hours=2)
    prompt = loaded[0].parts[1]
    assert isinstance(prompt, m.UserPromptPart)
    assert isinstance(prompt.content[2], m.BinaryContent)
    assert prompt.content[2].data == b"\x89PNG\r\n\x00"
    shapes = [convstore.check_conversation(dumped(loaded[: k + 1])) for k in range(4)]
    assert [[p.call_id for p in problems] for problems in shapes[1:]] == [
        ["call-a", "call-d", "call-w", "call-p", "call-s"],
        [],
        [],
    ]


async def test_a_crash_in_a_tool_call_then_resume(database_url: str) -> None:
    """The tool call's response is stored before the tool dies; the loaded history keeps the
    open call (pydantic-ai refuses a new prompt on it); resume closes it as interrupted, ends
    the interruption, and the agent carries on from the repaired history."""
    model = Weather()
    async with convstore.connect(database_url) as store:
        history = ConvstoreMessageHistory("trip-2", store)
        model.crash = True
        with pytest.raises(Crash):
            async with store.running("trip-2"):
                await run_storing(model.agent, "Lisbon", history, [])
    model.crash = False
    async with convstore.connect(database_url) as store:
        history = ConvstoreMessageHistory("trip-2", store)
        stored = await history.load()
        assert [type(message) for message in stored] == [m.ModelRequest, m.ModelResponse]
        (call,) = stored[1].parts
        assert isinstance(call, m.ToolCallPart)
        assert [s.session_id for s in await store.list_interrupted_sessions()] == ["trip-2"]
        with pytest.raises(UserError, match="unprocessed tool calls"):
            await model.agent.run("Lisbon, again", message_history=stored)

        resumed = await history.resume()
        assert [(r.kind, r.call_id, r.position) for r in resumed.repairs] == [
            ("closed_call", call.tool_call_id, 1)
        ]
        assert resumed.messages[:2] == stored
        (closed,) = resumed.messages[2].parts
        assert isinstance(closed, m.ToolReturnPart)
        assert (closed.tool_name, closed.tool_call_id) == ("weather", call.tool_call_id)
        assert closed.outcome == "interrupted"
        assert await store.list_interrupted_sessions() == []
        assert await history.load() == resumed.messages

        result = await run_storing(model.agent, "Lisbon, again", history, resumed.messages)
        assert result.output == "Sunny in Lisbon, again"
        assert closed in model.seen[-2][-1].parts  # the model was told of the interruption
        assert await history.load() == [*resumed.messages, *result.new_messages()]


async def test_resume_carries_on_without_a_new_prompt(store: convstore.Store) -> None:
    """Run with no new prompt, the resumed history's closing request is sent as it is and stored
    once: the model answers from the interrupted return."""
    model = Weather()
    history = ConvstoreMessageHistory("trip-3", store)
    model.crash = True
    with pytest.raises(Crash):
        await run_storing(model.agent, "Faro", history, [])
    model.crash = False
    resumed = await history.resume()
    result = await run_storing(model.agent, None, history, resumed.messages)
    assert result.output.startswith("The tool call was interrupted")
    assert await history.load() == [*resumed.messages, *result.new_messages()]


async def test_resume_leaves_deferred_calls_pending(store: convstore.Store) -> None:
    """A call waiting for approval stays open through resume(pending=...), and the approved
    call then runs; without `pending`, resume would have closed it as interrupted."""
    agent = Agent(TestModel(), output_type=[str, DeferredToolRequests])

    @agent.tool_plain(requires_approval=True)
    def pay(amount: int) -> str:
        """Pay an amount."""
        return f"paid {amount}"

    history = ConvstoreMessageHistory("pay-1", store)
    paused = await agent.run("Pay the hotel")
    assert isinstance(paused.output, DeferredToolRequests)
    await history.append(paused.new_messages())
    waiting = [call.tool_call_id for call in paused.output.approvals]
    assert waiting
    await store.mark_interrupted("pay-1", reason="worker restarted")

    resumed = await history.resume(pending=waiting)
    assert resumed.repairs == ()
    assert resumed.messages == paused.all_messages()
    approved = DeferredToolResults(approvals=dict.fromkeys(waiting, True))
    result = await agent.run(message_history=resumed.messages, deferred_tool_results=approved)
    assert result.output == '{"pay":"paid 0"}'


@pytest.mark.parametrize("cap", [2, 3, 5, 6])
async def test_the_capped_history_keeps_the_system_prompt_and_whole_tool_exchanges(
    database_url: str, cap: int
) -> None:
    """Under a small cap, every loaded history starts with the run's first request (the system
    prompt), holds no return without its call, and the agent runs on it."""
    model = Weather()
    async with convstore.connect(database_url, max_messages=cap) as store:
        history = ConvstoreMessageHistory("trip-4", store)
        for city in ["Lisbon", "Porto", "Faro", "Braga"]:
            loaded = await history.load()
            if loaded:
                first = loaded[0]
                assert isinstance(first.parts[0], m.SystemPromptPart)
                assert len(loaded) <= cap
                assert convstore.check_conversation(dumped(loaded)) == []
            result = await model.agent.run(city, message_history=loaded)
            assert result.output == f"Sunny in {city}"
            sent = model.seen[-2][0]
            assert isinstance(sent.parts[0], m.SystemPromptPart)
            assert sent.parts[0].content == SYSTEM_PROMPT
            await history.append(result.new_messages())


async def test_replace_clear_and_extra(store: convstore.Store) -> None:
    """replace swaps the whole history and extra state, append may replace the extra state, and
    clear deletes both."""
    model = Weather()
    history = ConvstoreMessageHistory("trip-5", store)
    first = await model.agent.run("Lisbon")
    await history.append(first.new_messages(), extra={"user": "ana"})
    second = await model.agent.run("Porto")
    await history.replace(second.all_messages(), extra={"user": "bo"})
    assert await history.load() == second.all_messages()
    assert await history.extra() == {"user": "bo"}
    await history.append([], extra={"user": "cy", "turns": 2})
    assert await history.extra() == {"user": "cy", "turns": 2}
    assert await history.clear() is True
    assert await history.load() == []
    assert await history.extra() == {}
    assert await history.clear() is False
    assert (await history.resume()).messages == []


@pytest.mark.parametrize(
    ("messages", "error"),
    [
        ("Lisbon", "messages must be a list"),
        ([{"kind": "request", "parts": []}], r"messages\[0\] must be a pydantic-ai ModelRequest"),
        ([m.ModelRequest(parts=[m.ToolReturnPart("t", object(), "c")])], "cannot serialise"),
    ],
)
async def test_bad_messages_store_nothing(
    store: convstore.Store, messages: Any, error: str
) -> None:
    """Messages that are not a list of serialisable ModelMessages raise InvalidArgument, naming
    what is wrong, and the stored history is unchanged."""
    history = ConvstoreMessageHistory("trip-6", store)
    before = (await Weather().agent.run("Lisbon")).new_messages()
    await history.append(before)
    with pytest.raises(convstore.InvalidArgument, match=error):
        await history.append(messages)
    with pytest.raises(convstore.InvalidArgument, match=error):
        await history.replace(messages)
    assert await history.load() == before


async def test_bad_session_ids_and_stores_are_refused(store: convstore.Store) -> None:
    """An empty session id raises InvalidSessionId, and anything but a Store InvalidArgument."""
    with pytest.raises(convstore.InvalidSessionId):
        ConvstoreMessageHistory("", store)
    with pytest.raises(convstore.InvalidArgument, match=r"store must be a convstore\.Store"):
        ConvstoreMessageHistory("s", "sqlite:///agent.db")  # type: ignore[arg-type]


async def test_a_session_of_another_format_names_the_session_and_the_message(
    store: convstore.Store,
) -> None:
    """Loading a session holding OpenAI chat messages raises StoredHistoryError naming the
    session and the position of the first message that is not a ModelMessage."""
    request = dumped([m.ModelRequest(parts=[m.UserPromptPart("hi")])])
    await store.save_snapshot("chat", [*request, {"role": "assistant", "content": "Hello"}])
    with pytest.raises(StoredHistoryError, match="session 'chat': stored message 1") as raised:
        await ConvstoreMessageHistory("chat", store).load()
    assert (raised.value.session_id, raised.value.position) == ("chat", 1)
