"""ConvstoreSaver under LangGraph's own runner: conversations that survive a closed store and a
crash in a tool call, threads that are sessions, keep_last, and bad input refused."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Annotated, Any, TypedDict

import pytest
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, AnyMessage, HumanMessage, ToolMessage
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import tool
from langgraph.checkpoint.base import Checkpoint
from langgraph.graph import START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.graph.state import CompiledStateGraph
from langgraph.prebuilt import ToolNode, tools_condition
from sqlalchemy import func, select

import convstore
from convstore._storage.schema import langgraph_checkpoints, langgraph_writes
from convstore.integrations.langgraph import ConvstoreSaver

THREAD = "support-42"
CONFIG: RunnableConfig = {"configurable": {"thread_id": THREAD}}


class State(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]


class Weather:
    """The weather tool's service; `down` makes it fail as a crashing process would."""

    def __init__(self) -> None:
        self.down = False
        self.calls: list[str] = []

    def forecast(self, city: str) -> str:
        self.calls.append(city)
        if self.down:
            raise RuntimeError(f"weather service died while looking up {city}")
        return f"sunny in {city}"


def calls_weather(city: str) -> AIMessage:
    """The model's message calling the weather tool for `city`."""
    call = {"name": "weather", "args": {"city": city}, "id": f"call-{city}", "type": "tool_call"}
    return AIMessage(content="", tool_calls=[call])


def answers(city: str) -> AIMessage:
    """The model's answer once the tool said the weather in `city`."""
    return AIMessage(content=f"It is sunny in {city}.")


def script(*cities: str) -> list[AIMessage]:
    """What the fake model says for each city in turn: a tool call, then its answer."""
    return [message for city in cities for message in (calls_weather(city), answers(city))]


def agent(
    saver: ConvstoreSaver, weather: Weather, says: Iterable[AIMessage]
) -> CompiledStateGraph[Any]:
    """A chat agent: a fake chat model that `says` these messages, a real ToolNode, the saver."""
    model = GenericFakeChatModel(messages=iter(says))

    @tool
    def weather_tool(city: str) -> str:
        """The weather in a city."""
        return weather.forecast(city)

    weather_tool.name = "weather"

    def call_model(state: State) -> dict[str, list[AnyMessage]]:
        return {"messages": [model.invoke(state["messages"])]}

    builder = StateGraph(State)
    builder.add_node("agent", call_model)
    builder.add_node("tools", ToolNode([weather_tool]))
    builder.add_edge(START, "agent")
    builder.add_conditional_edges("agent", tools_condition)
    builder.add_edge("tools", "agent")
    return builder.compile(checkpointer=saver)


def ask(city: str) -> dict[str, list[AnyMessage]]:
    return {"messages": [HumanMessage(f"What is the weather in {city}?")]}


async def checkpoint_counts(store: convstore.Store) -> dict[tuple[str, str], int]:
    """How many checkpoints each thread and namespace has, as stored."""
    c = langgraph_checkpoints.c
    query = select(c.thread_id, c.checkpoint_ns, func.count()).group_by(
        c.thread_id, c.checkpoint_ns
    )
    async with store.engine.connect() as conn:
        return {(t, ns): n for t, ns, n in (await conn.execute(query)).all()}


@pytest.mark.parametrize("keep_last", [None, 1])
async def test_a_conversation_survives_a_closed_store_and_a_crash_in_a_tool(
    database_url: str, keep_last: int | None
) -> None:
    """Two turns with a tool call across a closed and reopened store, then a crash inside the
    tool under `running()`, then a resume: the conversation carries on with every message."""
    weather = Weather()
    async with convstore.connect(database_url) as store:
        graph = agent(ConvstoreSaver(store, keep_last=keep_last), weather, script("Paris"))
        first = await graph.ainvoke(ask("Paris"), CONFIG)
    assert first["messages"][-1].content == "It is sunny in Paris."

    async with convstore.connect(database_url) as store:
        graph = agent(ConvstoreSaver(store, keep_last=keep_last), weather, script("Oslo", "Rome"))
        second = await graph.ainvoke(ask("Oslo"), CONFIG)
        assert [m.content for m in second["messages"]][:4] == [m.content for m in first["messages"]]
        assert second["messages"][-1].content == "It is sunny in Oslo."

        weather.down = True
        with pytest.raises(RuntimeError, match="weather service died"):
            async with store.running(THREAD):
                await graph.ainvoke(ask("Rome"), CONFIG)
        [interrupted] = await store.list_interrupted_sessions()
        assert interrupted.session_id == THREAD
        assert "weather service died" in (interrupted.reason or "")

    async with convstore.connect(database_url) as store:
        weather.down = False
        # The process that crashed is gone: a new one resumes the thread, its model answering.
        graph = agent(ConvstoreSaver(store, keep_last=keep_last), weather, [answers("Rome")])
        paused = await graph.aget_state(CONFIG)
        assert paused.next == ("tools",)
        assert paused.values["messages"][-1].tool_calls[0]["id"] == "call-Rome"
        async with store.running(THREAD):
            resumed = await graph.ainvoke(None, CONFIG)
        contents = [m.content for m in resumed["messages"]]
        assert contents[:8] == [m.content for m in second["messages"]]
        assert isinstance(resumed["messages"][-2], ToolMessage)
        assert resumed["messages"][-2].tool_call_id == "call-Rome"
        assert contents[-1] == "It is sunny in Rome."
        assert len(contents) == 12
        assert weather.calls == ["Paris", "Oslo", "Rome", "Rome"]
        assert await store.list_interrupted_sessions() == []
        [history] = await store.interruptions(THREAD)
        assert history.resolved_at is not None
        if keep_last is not None:
            counts = await checkpoint_counts(store)
            assert counts == {(THREAD, ""): keep_last}


def checkpoint(number: int) -> Checkpoint:
    """A LangGraph checkpoint whose id sorts after those of smaller numbers."""
    return Checkpoint(
        v=1,
        id=f"1f0-{number:04}",
        ts="2026-01-01T00:00:00+00:00",
        channel_values={"count": number},
        channel_versions={"count": number},
        versions_seen={},
        updated_channels=None,
    )


async def put_chain(saver: ConvstoreSaver, thread: str, ns: str, n: int) -> list[RunnableConfig]:
    """Put `n` checkpoints, each the child of the previous, each with one pending write; their
    configs, oldest first."""
    configs: list[RunnableConfig] = []
    config: RunnableConfig = {"configurable": {"thread_id": thread, "checkpoint_ns": ns}}
    for number in range(n):
        config = await saver.aput(config, checkpoint(number), {"step": number}, {})
        await saver.aput_writes(config, [("count", number)], task_id=f"task-{number}")
        configs.append(config)
    return configs


async def write_counts(store: convstore.Store) -> dict[str, int]:
    """How many pending writes each checkpoint id has, as stored."""
    w = langgraph_writes.c
    query = select(w.checkpoint_id, func.count()).group_by(w.checkpoint_id)
    async with store.engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    return {str(checkpoint_id): int(n) for checkpoint_id, n in rows}


async def test_keep_last_keeps_the_newest_checkpoints_of_each_namespace_and_their_writes(
    store: convstore.Store,
) -> None:
    """With keep_last=2, each thread and namespace keeps its two newest checkpoints, with their
    writes; older checkpoints and their writes go as new ones are written."""
    saver = ConvstoreSaver(store, keep_last=2)
    root = await put_chain(saver, "a", "", 5)
    child = await put_chain(saver, "a", "child:1", 3)
    other = await put_chain(saver, "b", "", 1)
    assert await checkpoint_counts(store) == {("a", ""): 2, ("a", "child:1"): 2, ("b", ""): 1}
    kept = [c["configurable"]["checkpoint_id"] for c in (*root[-2:], *child[-2:], *other)]
    # The last put of a namespace trimmed before its own write was stored: every kept
    # checkpoint has its write, and no other write is left.
    assert await write_counts(store) == dict.fromkeys(kept, 1)
    listed = [t.config async for t in saver.alist({"configurable": {"thread_id": "a"}})]
    assert [c["configurable"]["checkpoint_id"] for c in listed] == sorted(kept[:4], reverse=True)
    latest = await saver.aget_tuple(root[-1])
    assert latest is not None
    assert latest.pending_writes == [("task-4", "count", 4)]
    assert latest.checkpoint["channel_values"] == {"count": 4}
    assert await saver.aget_tuple(root[0]) is None


async def test_a_thread_is_the_session_of_its_id(store: convstore.Store) -> None:
    """Marking, listing, leases and history work on a thread; a checkpoint ends its interruption;
    deleting the thread deletes its session and checkpoints, and deleting the session deletes
    the thread's checkpoints."""
    saver = ConvstoreSaver(store)
    graph = agent(saver, Weather(), script("Paris"))
    await graph.ainvoke(ask("Paris"), CONFIG)
    await store.mark_interrupted(THREAD, "deploy")
    assert [s.session_id for s in await store.list_interrupted_sessions()] == [THREAD]

    graph = agent(saver, Weather(), script("Oslo"))
    async with store.running(THREAD, owner="worker-1") as lease:
        await graph.ainvoke(ask("Oslo"), CONFIG)
    assert not lease.lost
    assert await store.list_interrupted_sessions() == []
    [history] = await store.interruptions(THREAD)
    assert (history.reason, history.resolved_at is not None) == ("deploy", True)

    await saver.adelete_thread(THREAD)
    assert await store.restore_snapshot(THREAD) is None
    assert await saver.aget_tuple(CONFIG) is None
    assert await checkpoint_counts(store) == {}
    assert len(await store.interruptions(THREAD)) == 1  # crash history outlives the thread

    await put_chain(saver, "other", "", 2)
    assert await store.delete_snapshot("other")
    assert await checkpoint_counts(store) == {}
    assert await write_counts(store) == {}


async def test_graph_invoke_runs_from_another_thread_and_is_refused_on_the_loop(
    store: convstore.Store,
) -> None:
    """The sync methods serve graph.invoke from a worker thread; called on the store's own
    event loop they raise ConfigurationError instead of blocking it forever."""
    saver = ConvstoreSaver(store)
    graph = agent(saver, Weather(), script("Paris"))
    result = await asyncio.to_thread(graph.invoke, ask("Paris"), CONFIG)
    assert result["messages"][-1].content == "It is sunny in Paris."
    history = await asyncio.to_thread(lambda: list(saver.list(CONFIG, limit=2)))
    assert len(history) == 2
    with pytest.raises(convstore.ConfigurationError, match="aget_tuple"):
        saver.get_tuple(CONFIG)
    with pytest.raises(convstore.ConfigurationError, match="event loop"):
        graph.invoke(ask("Oslo"), CONFIG)


def test_a_saver_made_outside_an_event_loop_is_refused(tmp_path: Any) -> None:
    """ConvstoreSaver needs the event loop its store runs on, and says so."""
    store = asyncio.run(_open_and_close(f"sqlite:///{tmp_path / 'c.db'}"))
    with pytest.raises(convstore.ConfigurationError, match="inside the event loop"):
        ConvstoreSaver(store)


async def _open_and_close(url: str) -> convstore.Store:
    store = await convstore.connect(url)
    await store.close()
    return store


@pytest.mark.parametrize("keep_last", [0, -1, True, 1.5, "2"])
async def test_a_bad_keep_last_is_refused(store: convstore.Store, keep_last: Any) -> None:
    """keep_last must be None or a positive int: anything else is InvalidArgument naming it."""
    with pytest.raises(convstore.InvalidArgument, match="keep_last"):
        ConvstoreSaver(store, keep_last=keep_last)


@pytest.mark.parametrize("thread_id", ["", "x" * 256, 42, None, "nul\x00"])
async def test_a_bad_thread_id_is_refused_and_nothing_stored_changes(
    store: convstore.Store, thread_id: Any
) -> None:
    """A thread id that is not a valid session id raises InvalidSessionId from every method,
    and what is stored stays as it was."""
    saver = ConvstoreSaver(store)
    [stored] = await put_chain(saver, "good", "", 1)
    bad: RunnableConfig = {"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}}
    with pytest.raises(convstore.InvalidSessionId, match="thread_id"):
        await saver.aput(bad, checkpoint(7), {}, {})
    with pytest.raises(convstore.InvalidSessionId):
        await saver.aget_tuple(bad)
    with pytest.raises(convstore.InvalidSessionId):
        await saver.acopy_thread("good", thread_id)
    with pytest.raises(convstore.InvalidSessionId):
        await saver.aprune(["good", thread_id])
    with pytest.raises(convstore.InvalidSessionId):
        await saver.adelete_thread(thread_id)
    assert await checkpoint_counts(store) == {("good", ""): 1}
    tuple_ = await saver.aget_tuple(stored)
    assert tuple_ is not None
    assert tuple_.pending_writes == [("task-0", "count", 0)]


async def test_other_bad_input_is_refused_by_name(store: convstore.Store) -> None:
    """A bad strategy, filter, limit, run id list, config or store raises InvalidArgument
    naming it, before anything is deleted."""
    saver = ConvstoreSaver(store)
    await put_chain(saver, "good", "", 2)
    with pytest.raises(convstore.InvalidArgument, match="strategy"):
        await saver.aprune(["good"], strategy="keep_oldest")
    with pytest.raises(convstore.InvalidArgument, match="run_ids"):
        await saver.adelete_for_runs("run-1")
    with pytest.raises(convstore.InvalidArgument, match="filter"):
        [t async for t in saver.alist(None, filter=["source"])]  # type: ignore[arg-type]
    with pytest.raises(convstore.InvalidArgument, match="limit"):
        [t async for t in saver.alist(None, limit=-1)]
    with pytest.raises(convstore.InvalidArgument, match="configurable"):
        await saver.aget_tuple({})
    with pytest.raises(convstore.InvalidArgument, match="checkpoint_id"):
        await saver.aput_writes({"configurable": {"thread_id": "good"}}, [("a", 1)], "t")
    with pytest.raises(convstore.InvalidArgument, match="store"):
        ConvstoreSaver("sqlite:///c.db")  # type: ignore[arg-type]
    assert await checkpoint_counts(store) == {("good", ""): 2}


async def test_list_filters_on_metadata_and_pages_through_long_threads(
    store: convstore.Store,
) -> None:
    """Listing a thread longer than a page returns every checkpoint once, newest first; metadata
    filters match on values of every JSON type, JSON null included."""
    saver = ConvstoreSaver(store)
    config: RunnableConfig = {"configurable": {"thread_id": "long", "checkpoint_ns": ""}}
    for number in range(230):
        metadata: Any = {"step": number, "even": number % 2 == 0, "tag": None, "obj": {"n": 1}}
        if number == 7:
            metadata |= {"tag": "seven", "obj": {"n": 7}}
        config = await saver.aput(config, checkpoint(number), metadata, {})
    listed = [
        t.checkpoint["id"]
        async for t in saver.alist(config | {"configurable": {"thread_id": "long"}})
    ]
    assert listed == [checkpoint(n)["id"] for n in reversed(range(230))]
    by_tag = [t.metadata["step"] async for t in saver.alist(None, filter={"tag": "seven"})]
    by_obj = [t.metadata["step"] async for t in saver.alist(None, filter={"obj": {"n": 7}})]
    assert by_tag == by_obj == [7]
    odd = [t.metadata["step"] async for t in saver.alist(None, filter={"even": False}, limit=150)]
    assert odd == list(reversed(range(1, 230, 2)))[:115]
    untagged = [t async for t in saver.alist(None, filter={"tag": None, "even": True})]
    assert len(untagged) == 115
