"""The workloads, written once for every backend: convstore against a lower bound.

Each backend's module opens the stores and lower bounds and names the targets; `tag` is appended
to the workload names ("W1" on SQLite, "W1 pg" on PostgreSQL).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import convstore
from benchmarks._data import conversation
from benchmarks._report import Figure, call, median_ms, timed

#: Operations each side runs in turn, in W1, W3 and W4.
BLOCK = 25
#: Saves of each W5 task that each side runs in turn.
ROUND = 20

#: The arguments of one save: session id, messages, extra.
Save = tuple[str, list[Any], dict[str, Any]]
#: A save: convstore's, or a lower bound's, plain or async.
SaveFunction = Callable[[str, list[Any], dict[str, Any]], object]


class Bound(Protocol):
    """A lower bound: the hot operations with the fewest layers, as plain or async methods."""

    def save(self, session_id: str, messages: list[Any], extra: dict[str, Any]) -> object: ...

    def append(self, session_id: str, message: dict[str, Any]) -> object: ...

    def restore(self, session_id: str) -> object: ...


async def save_and_restore(
    store: convstore.Store, bound: Bound, scale: float, tag: str, limit: float
) -> list[Figure]:
    """W1: full saves of 100-message conversations; W3: random restores of them."""
    conversations = [conversation(seed) for seed in range(50)]
    sessions = int(500 * scale)
    ours: list[float] = []
    theirs: list[float] = []
    # Blocks of BLOCK operations each in turn: each side runs in its steady state, and drift in
    # the machine's speed reaches both alike.
    for start in range(0, sessions, BLOCK):
        block = range(start, min(start + BLOCK, sessions))
        for i in block:
            theirs.append(await timed(bound.save, f"w1-{i}", conversations[i % 50], {"i": i}))
        for i in block:
            ours.append(
                await timed(store.save_snapshot, f"w1-{i}", conversations[i % 50], {"i": i})
            )
    target = f"<= {limit}x"
    w1 = Figure(
        f"W1{tag}",
        "save, 100 messages (median ms)",
        median_ms(ours),
        median_ms(theirs),
        target,
        limit,
    )

    rng = random.Random(3)
    ours, theirs = [], []
    picks = [f"w1-{rng.randrange(sessions)}" for _ in range(int(2000 * scale))]
    for start in range(0, len(picks), BLOCK):
        chosen = picks[start : start + BLOCK]
        theirs += [await timed(bound.restore, sid) for sid in chosen]
        ours += [await timed(store.restore_snapshot, sid) for sid in chosen]
    w3 = Figure(
        f"W3{tag}",
        "restore, 100 messages (median ms)",
        median_ms(ours),
        median_ms(theirs),
        target,
        limit,
    )
    return [w1, w3]


def _growing(scale: float) -> list[list[dict[str, Any]]]:
    """W2's conversations, 200 messages each."""
    return [conversation(1000 + c, 200) for c in range(max(2, int(20 * scale)))]


async def appends(store: convstore.Store, bound: Bound, scale: float, tag: str) -> Figure:
    """W2: 20 conversations growing from 1 to 200 messages, one append per turn."""
    ours: list[float] = []
    theirs: list[float] = []
    sources = _growing(scale)
    for turn in range(200):
        for c, source in enumerate(sources):
            sid, message = f"w2-{c}", source[turn]
            ours.append(await timed(store.append_messages, sid, [message]))
            theirs.append(await timed(bound.append, sid, message))
    return Figure(
        f"W2{tag}",
        "append one message (median ms)",
        median_ms(ours),
        median_ms(theirs),
        "<= 10x",
        10.0,
    )


async def flatness(store: convstore.Store, scale: float, tag: str) -> list[Figure]:
    """W2 after `appends`: whether an append to a grown conversation costs what an early one does.

    Measured side by side so that drift in the machine's speed cannot pose as growth: appends to
    the grown conversations at turns 201-210 alternate with appends to fresh ones at turns 10-19,
    within the cap of 100, and at turns 110-119, past it (trimming, as the grown ones do).
    """
    sources = _growing(scale)
    for c, source in enumerate(sources):
        await store.append_messages(f"w2-young-{c}", source[:9])
        await store.append_messages(f"w2-past-{c}", source[:109])
    early: list[float] = []
    past: list[float] = []
    late: list[float] = []
    for turn in range(10):
        for c, source in enumerate(sources):
            early.append(await timed(store.append_messages, f"w2-young-{c}", [source[9 + turn]]))
            past.append(await timed(store.append_messages, f"w2-past-{c}", [source[109 + turn]]))
            late.append(await timed(store.append_messages, f"w2-{c}", [source[turn]]))
    return [
        Figure(
            f"W2{tag}",
            "turns 201-210 vs turns 10-19 (median ms)",
            median_ms(late),
            median_ms(early),
            "<= 1.3x",
            1.3,
        ),
        Figure(
            f"W2{tag}",
            "turns 201-210 vs turns 110-119, both past the cap (median ms)",
            median_ms(late),
            median_ms(past),
            "<= 1.1x",
            1.1,
        ),
    ]


def session_rows(sessions: int) -> list[tuple[str, int, datetime | None, str | None]]:
    """W4's sessions, 1% interrupted, as (session_id, message_count, interrupted_at, reason)."""
    rng = random.Random(sessions)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    return [
        (
            f"w4-{i}",
            rng.randint(1, 300),
            start + timedelta(seconds=i) if i % 100 == 0 else None,
            "SIGTERM" if i % 100 == 0 else None,
        )
        for i in range(sessions)
    ]


async def listing(
    populated: Callable[[int], AbstractAsyncContextManager[convstore.Store]],
    scale: float,
    tag: str,
) -> list[Figure]:
    """W4: listing interrupted sessions at 10,000 sessions against at 1,000, side by side.

    `populated(n)` opens a store on a fresh database holding ``session_rows(n)``.
    """
    calls = max(BLOCK, int(300 * scale))
    async with populated(1000) as small, populated(10_000) as large:
        for store, sessions in ((small, 1000), (large, 10_000)):
            assert len(await store.list_interrupted_sessions()) == sessions // 100
        few: list[float] = []
        many: list[float] = []
        for _ in range(0, calls, BLOCK):
            few += [await timed(small.list_interrupted_sessions) for _ in range(BLOCK)]
            many += [await timed(large.list_interrupted_sessions) for _ in range(BLOCK)]
    return [
        Figure(
            f"W4{tag}",
            "list at 10,000 vs 1,000 sessions (median ms)",
            median_ms(many),
            median_ms(few),
            "<= 2x",
            2.0,
        )
    ]


W5_KINDS = ("new sessions", "turn by turn")


def w5_plan(kind: str, scale: float) -> list[list[Save]]:
    """W5's 8 tasks x 200 saves: the arguments of each task's saves, in order.

    Two kinds of save: each to a new session, and turn by turn, where each save of a session
    is its previous conversation one message longer (how an agent saves after every turn).
    """
    per_task = max(20, int(200 * scale))
    plan = []
    for task in range(8):
        source = conversation(500 + task, 120)
        if kind == "new sessions":
            saves = [(f"new-{task}-{i}", source[:100], {"i": i}) for i in range(per_task)]
        else:
            # 10 sessions per task, each saved per_task / 10 times, from 95 messages up.
            saves = [
                (f"turns-{task}-{i % 10}", source[: 95 + i // 10], {"i": i})
                for i in range(per_task)
            ]
        plan.append(saves)
    return plan


async def throughputs(
    sides: Sequence[Sequence[SaveFunction]], plan: list[list[Save]]
) -> list[float]:
    """Saves per second of each side running the whole `plan`, the sides side by side.

    A side is one save callable per worker: one runs the plan's tasks one after another, eight
    run them concurrently. The sides take turns, ROUND saves of each task at a time, so that drift
    in the machine's speed reaches them alike.
    """
    seconds = [0.0] * len(sides)
    for start in range(0, len(plan[0]), ROUND):
        part = [task[start : start + ROUND] for task in plan]
        for side, saves in enumerate(sides):
            seconds[side] += await _run(saves, part)
    return [sum(map(len, plan)) / elapsed for elapsed in seconds]


async def _run(saves: Sequence[SaveFunction], plan: list[list[Save]]) -> float:
    """Seconds to run `plan`, its tasks shared among one worker per callable in `saves`."""
    errors: list[convstore.ConvstoreError] = []

    async def worker(first: int, save: SaveFunction) -> None:
        for task in plan[first :: len(saves)]:
            for args in task:
                try:
                    await call(save, *args)
                except convstore.ConvstoreError as exc:
                    errors.append(exc)

    start = time.perf_counter()
    await asyncio.gather(*(worker(first, save) for first, save in enumerate(saves)))
    elapsed = time.perf_counter() - start
    if errors:
        raise SystemExit(f"W5 had {len(errors)} errors, the first: {errors[0]!r}")
    return elapsed
