"""LangGraph checkpoints: ConvstoreSaver against LangGraph's own AsyncSqliteSaver, on files.

Latency: `aput` and `aget_tuple` of a 20-message chat state, each side in turn by blocks.
Disk: a chat agent's growth workload, threads x turns through LangGraph's own runner, each turn
a user message in and an answer out (three checkpoints a turn, each holding the whole
conversation so far), measured for AsyncSqliteSaver, ConvstoreSaver (keep_last=1 and keep all)
and a plain SQLite table holding the same messages once.
"""

from __future__ import annotations

import json
import random
import sqlite3
import tempfile
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any, TypedDict

from langchain_core.messages import AIMessage, AnyMessage, BaseMessage, HumanMessage
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver, Checkpoint
from langgraph.checkpoint.base.id import uuid6
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from langgraph.graph import START, StateGraph
from langgraph.graph.message import add_messages

import convstore
from benchmarks._data import conversation
from benchmarks._report import Figure, median_ms, timed
from benchmarks._workloads import BLOCK
from convstore.integrations.langgraph import ConvstoreSaver

NOTE = (
    "LangGraph: AsyncSqliteSaver (langgraph-checkpoint-sqlite) on a file of its own, as it "
    "configures it (WAL, synchronous=FULL), against ConvstoreSaver on convstore's SQLite "
    "(WAL, synchronous=NORMAL); disk: files after closing, growth workload of "
    "{threads} threads x {turns} turns run by LangGraph."
)
TURNS = 200


async def run(scale: float) -> tuple[list[Figure], str]:
    """Every LangGraph figure, and the note that says how they were measured."""
    threads = max(2, int(20 * scale))
    with tempfile.TemporaryDirectory(prefix="convstore-bench-lg-") as tmp:
        directory = Path(tmp)
        figures = await _latency(directory, scale)
        figures += await _disk(directory, threads)
    return figures, NOTE.format(threads=threads, turns=TURNS)


@asynccontextmanager
async def _theirs(path: Path, synchronous: str = "FULL") -> AsyncIterator[AsyncSqliteSaver]:
    """AsyncSqliteSaver on its own file, with SQLite's `synchronous` (FULL, its default)."""
    async with AsyncSqliteSaver.from_conn_string(str(path)) as saver:
        await saver.setup()
        await saver.conn.execute(f"PRAGMA synchronous = {synchronous}")
        yield saver


@asynccontextmanager
async def _ours(path: Path, keep_last: int | None = None) -> AsyncIterator[ConvstoreSaver]:
    async with convstore.connect(f"sqlite:///{path}") as store:
        yield ConvstoreSaver(store, keep_last=keep_last)


def _messages(seed: int, length: int) -> list[BaseMessage]:
    """A chat's messages as LangChain messages, user and assistant in turn, of 200-2,000
    characters (and tool calls and results) as `benchmarks._data` makes them."""
    return [
        (HumanMessage if i % 2 == 0 else AIMessage)(content=m["content"], id=f"m{i}")
        for i, m in enumerate(conversation(seed, length))
    ]


def _short_messages(seed: int, length: int) -> list[BaseMessage]:
    """A chat's messages of a sentence each (20-120 characters), user and assistant in turn."""
    rng = random.Random(seed)
    words = [
        "the",
        "model",
        "answered",
        "with",
        "a",
        "plan",
        "and",
        "then",
        "ran",
        "the",
        "tests",
        "again",
        "before",
        "it",
    ]
    return [
        (HumanMessage if i % 2 == 0 else AIMessage)(
            content=" ".join(rng.choice(words) for _ in range(rng.randint(4, 24))), id=f"m{i}"
        )
        for i in range(length)
    ]


def _checkpoint(messages: list[BaseMessage], step: int) -> Checkpoint:
    version = f"{step + 2:032}.0"
    return Checkpoint(
        v=4,
        id=str(uuid6(clock_seq=step)),
        ts="2026-01-01T00:00:00+00:00",
        channel_values={"messages": messages},
        channel_versions={"messages": version},
        versions_seen={"agent": {"messages": version}},
        updated_channels=["messages"],
    )


async def _latency(directory: Path, scale: float) -> list[Figure]:
    """aput and aget_tuple of a 20-message state, median of each side's calls: ConvstoreSaver,
    AsyncSqliteSaver as it comes, and AsyncSqliteSaver at convstore's synchronous=NORMAL."""
    messages = _messages(7, 20)
    puts, gets = int(1000 * scale), int(2000 * scale)
    rng = random.Random(5)
    picks: list[RunnableConfig] = [
        {"configurable": {"thread_id": f"t{rng.randrange(50)}", "checkpoint_ns": ""}}
        for _ in range(gets)
    ]
    put_ms: dict[str, list[float]] = {"ours": [], "full": [], "normal": []}
    get_ms: dict[str, list[float]] = {"ours": [], "full": [], "normal": []}
    async with (
        _ours(directory / "latency.db") as ours,
        _theirs(directory / "full.db") as full,
        _theirs(directory / "normal.db", "NORMAL") as normal,
    ):
        sides: dict[str, BaseCheckpointSaver[Any]] = {"full": full, "normal": normal, "ours": ours}
        # Blocks of BLOCK calls each in turn, so that the machine's drift reaches all alike.
        for first in range(0, puts, BLOCK):
            for name, saver in sides.items():
                for i in range(first, min(first + BLOCK, puts)):
                    config: RunnableConfig = {
                        "configurable": {"thread_id": f"t{i % 50}", "checkpoint_ns": ""}
                    }
                    checkpoint = _checkpoint(messages, i)
                    put_ms[name].append(
                        await timed(saver.aput, config, checkpoint, {"step": i}, {})
                    )
        for first in range(0, gets, BLOCK):
            for name, saver in sides.items():
                for config in picks[first : first + BLOCK]:
                    get_ms[name].append(await timed(saver.aget_tuple, config))
    figures = []
    for measure, samples in (("aput, 20-message state", put_ms), ("aget_tuple, latest", get_ms)):
        ours_ms = median_ms(samples["ours"])
        figures += [
            Figure(
                "LG1", f"{measure} (median ms)", ours_ms, median_ms(samples["full"]), "<= 1.0x", 1.0
            ),
            Figure(
                "LG1",
                f"{measure}, vs synchronous=NORMAL (median ms)",
                ours_ms,
                median_ms(samples["normal"]),
                "reference",
                None,
            ),
        ]
    return figures


class _State(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]


def _graph(saver: BaseCheckpointSaver[Any], answers: Callable[[str, int], BaseMessage]) -> Any:
    """A chat agent of one node, whose answer to turn `n` of a thread is `answers(thread, n)`."""

    def agent(state: _State, config: RunnableConfig) -> dict[str, list[BaseMessage]]:
        thread = config["configurable"]["thread_id"]
        return {"messages": [answers(thread, len(state["messages"]) // 2)]}

    builder = StateGraph(_State)
    builder.add_node("agent", agent)
    builder.add_edge(START, "agent")
    return builder.compile(checkpointer=saver)


async def _grow(saver: BaseCheckpointSaver[Any], chats: dict[str, list[BaseMessage]]) -> None:
    """Run every chat turn by turn, threads taking turns, through LangGraph."""
    graph = _graph(saver, lambda thread, n: chats[thread][2 * n + 1])
    for turn in range(TURNS):
        for thread, messages in chats.items():
            config: RunnableConfig = {"configurable": {"thread_id": thread}}
            await graph.ainvoke({"messages": [messages[2 * turn]]}, config)


def _size(path: Path) -> int:
    """The bytes of a SQLite database, its -wal file included."""
    return sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())


def _raw_table(path: Path, chats: dict[str, list[BaseMessage]]) -> int:
    """The bytes of a plain SQLite table holding each message once, as JSON."""
    conn = sqlite3.connect(path)
    try:
        conn.execute(
            "CREATE TABLE messages (thread TEXT, seq INTEGER, body TEXT, PRIMARY KEY (thread, seq))"
        )
        conn.executemany(
            "INSERT INTO messages VALUES (?, ?, ?)",
            [
                (thread, i, json.dumps({"type": m.type, "content": m.content, "id": m.id}))
                for thread, messages in chats.items()
                for i, m in enumerate(messages)
            ],
        )
        conn.commit()
    finally:
        conn.close()
    return _size(path)


async def _disk(directory: Path, threads: int) -> list[Figure]:
    """The growth workload's database size on each saver, and a plain table's."""
    chats = {f"chat-{t}": _short_messages(2000 + t, 2 * TURNS) for t in range(threads)}
    theirs_path, kept_path, all_path = (directory / f"{n}.db" for n in ("lg", "keep1", "all"))
    async with _theirs(theirs_path) as saver:
        await _grow(saver, chats)
    async with _ours(kept_path, keep_last=1) as saver:
        await _grow(saver, chats)
    async with _ours(all_path) as saver:
        await _grow(saver, chats)
    mib = 1024 * 1024
    theirs, kept, everything = (_size(p) / mib for p in (theirs_path, kept_path, all_path))
    raw = _raw_table(directory / "raw.db", chats) / mib
    workload = f"{threads}x{TURNS}"
    return [
        Figure(
            "LG2", f"disk after {workload} turns, keep_last=1 (MiB)", kept, theirs, "<= 0.1x", 0.1
        ),
        Figure(
            "LG2",
            f"disk after {workload} turns, every checkpoint (MiB)",
            everything,
            theirs,
            "reference",
            None,
        ),
        Figure(
            "LG2", "AsyncSqliteSaver's disk vs a plain table (MiB)", theirs, raw, "reference", None
        ),
        Figure("LG2", "disk, keep_last=1 vs a plain table (MiB)", kept, raw, "reference", None),
    ]
