"""Measure convstore on SQLite against the stdlib-sqlite3 lower bound, and print the ratios.

python -m benchmarks            # the full workloads, about a minute
python -m benchmarks --quick    # a tenth of the work, to try it out
python -m benchmarks --check    # exit 1 when a target is missed
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import convstore
from benchmarks._data import conversation
from benchmarks._lower_bound import LowerBound

BLOCK = 25


@dataclass(frozen=True)
class Figure:
    """One measured figure, its baseline, and the target it is held to."""

    workload: str
    measure: str
    convstore: float
    baseline: float
    target: str
    limit: float
    higher_is_better: bool = False

    @property
    def ratio(self) -> float:
        return self.convstore / self.baseline

    @property
    def ok(self) -> bool:
        return self.ratio >= self.limit if self.higher_is_better else self.ratio <= self.limit


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


async def timed(call: Callable[..., Awaitable[Any]], *args: Any) -> float:
    """Seconds one awaited call takes."""
    start = time.perf_counter()
    await call(*args)
    return time.perf_counter() - start


def timed_sync(call: Callable[..., Any], *args: Any) -> float:
    """Seconds one plain call takes."""
    start = time.perf_counter()
    call(*args)
    return time.perf_counter() - start


async def open_pair(directory: Path, name: str) -> tuple[convstore.Store, LowerBound]:
    """A convstore store and a lower bound, each on its own freshly migrated file."""
    lower_path = directory / f"{name}-lower.db"
    async with convstore.connect(f"sqlite:///{lower_path}"):
        pass  # the same tables, created by the same migrations
    store = await convstore.connect(f"sqlite:///{directory / f'{name}-convstore.db'}")
    return store, LowerBound(lower_path)


async def w1_w3(directory: Path, scale: float) -> list[Figure]:
    """W1: full saves of 100-message conversations; W3: random restores of them."""
    store, lower = await open_pair(directory, "w1")
    conversations = [conversation(seed) for seed in range(50)]
    sessions = int(500 * scale)
    ours: list[float] = []
    theirs: list[float] = []
    # Blocks of BLOCK operations each in turn: each side runs in its steady state, and drift in
    # the machine's speed reaches both alike.
    for start in range(0, sessions, BLOCK):
        block = range(start, min(start + BLOCK, sessions))
        for i in block:
            theirs.append(timed_sync(lower.save, f"w1-{i}", conversations[i % 50], {"i": i}))
        for i in block:
            ours.append(
                await timed(store.save_snapshot, f"w1-{i}", conversations[i % 50], {"i": i})
            )
    w1 = Figure(
        "W1", "save, 100 messages (median ms)", median_ms(ours), median_ms(theirs), "<= 1.0x", 1.0
    )

    rng = random.Random(3)
    ours, theirs = [], []
    picks = [f"w1-{rng.randrange(sessions)}" for _ in range(int(2000 * scale))]
    for start in range(0, len(picks), BLOCK):
        chosen = picks[start : start + BLOCK]
        theirs += [timed_sync(lower.restore, sid) for sid in chosen]
        ours += [await timed(store.restore_snapshot, sid) for sid in chosen]
    w3 = Figure(
        "W3",
        "restore, 100 messages (median ms)",
        median_ms(ours),
        median_ms(theirs),
        "<= 1.0x",
        1.0,
    )
    await store.close()
    lower.close()
    return [w1, w3]


async def w2(directory: Path, scale: float) -> list[Figure]:
    """W2: 20 conversations growing from 1 to 200 messages, one append per turn."""
    store, lower = await open_pair(directory, "w2")
    turns = 200
    count = max(2, int(20 * scale))
    sources = [conversation(1000 + c, turns) for c in range(count)]
    ours: list[float] = []
    theirs: list[float] = []
    for turn in range(turns):
        for c, source in enumerate(sources):
            sid, message = f"w2-{c}", source[turn]
            ours.append(await timed(store.append_messages, sid, [message]))
            theirs.append(timed_sync(lower.append, sid, message))
    async with store.engine.connect() as conn:
        await conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        pages = (await conn.exec_driver_sql("PRAGMA page_count")).scalar_one()
        page_size = (await conn.exec_driver_sql("PRAGMA page_size")).scalar_one()
    # Flatness, measured side by side so that drift in the machine's speed cannot pose as growth:
    # appends to fresh conversations at turns 10-19 alternate with appends to the grown ones at
    # turns 201-210.
    for c, source in enumerate(sources):
        await store.append_messages(f"w2-young-{c}", source[:9])
    early: list[float] = []
    late: list[float] = []
    for turn in range(10):
        for c, source in enumerate(sources):
            early.append(await timed(store.append_messages, f"w2-young-{c}", [source[9 + turn]]))
            late.append(await timed(store.append_messages, f"w2-{c}", [source[turn]]))
    figures = [
        Figure(
            "W2",
            "append one message (median ms)",
            median_ms(ours),
            median_ms(theirs),
            "<= 10x",
            10.0,
        ),
        Figure(
            "W2",
            "turns 201-210 vs turns 10-19 (median ms)",
            median_ms(late),
            median_ms(early),
            "<= 1.3x",
            1.3,
        ),
        Figure(
            "disk",
            "database after W2 (KiB)",
            pages * page_size / 1024,
            lower.size_bytes() / 1024,
            "<= 1.2x",
            1.2,
        ),
    ]
    await store.close()
    lower.close()
    return figures


async def list_time(directory: Path, sessions: int, calls: int) -> float:
    """Median ms of listing interrupted sessions among `sessions`, 1% of them interrupted."""
    store, lower = await open_pair(directory, f"w4-{sessions}")
    lower.close()
    rng = random.Random(sessions)
    async with store.engine.begin() as conn:
        raw = await conn.get_raw_connection()
        driver: Any = raw.driver_connection
        await driver.executemany(
            "INSERT INTO sessions (session_id, created_at, saved_at, message_count, extra, "
            "interrupted_at, interrupt_reason) VALUES (?, ?, ?, ?, '{}', ?, ?)",
            [
                (
                    f"w4-{i}",
                    "2026-01-01 00:00:00.000000",
                    "2026-01-01 00:00:00.000000",
                    rng.randint(1, 300),
                    f"2026-01-01 00:{i // 6000 % 60:02d}:{i // 100 % 60:02d}.{i:06d}"
                    if i % 100 == 0
                    else None,
                    "SIGTERM" if i % 100 == 0 else None,
                )
                for i in range(sessions)
            ],
        )
        await driver.commit()
    assert len(await store.list_interrupted_sessions()) == sessions // 100
    samples = [await timed(store.list_interrupted_sessions) for _ in range(calls)]
    await store.close()
    return median_ms(samples)


async def w4(directory: Path, scale: float) -> list[Figure]:
    """W4: listing interrupted sessions at 1,000 and 10,000 sessions."""
    calls = max(20, int(300 * scale))
    small = await list_time(directory, 1000, calls)
    large = await list_time(directory, 10_000, calls)
    return [
        Figure("W4", "list at 10,000 vs 1,000 sessions (median ms)", large, small, "<= 2x", 2.0)
    ]


async def w5(directory: Path, scale: float) -> list[Figure]:
    """W5: 8 concurrent tasks x 200 saves, throughput against one sequential writer.

    Two kinds of save: each to a new session, and turn by turn, where each save of a session
    is its previous conversation one message longer (how an agent saves after every turn).
    """
    figures = []
    per_task = max(20, int(200 * scale))
    sources = [conversation(500 + seed, 120) for seed in range(8)]

    def new_session(task: int, i: int) -> tuple[str, list[Any]]:
        return f"new-{task}-{i}", sources[task][:100]

    def turn_by_turn(task: int, i: int) -> tuple[str, list[Any]]:
        # 10 sessions per task, each saved per_task / 10 times, from 95 messages up.
        return f"turns-{task}-{i % 10}", sources[task][: 95 + i // 10]

    for label, save in (("new sessions", new_session), ("turn by turn", turn_by_turn)):
        store, lower = await open_pair(directory, f"w5-{label.replace(' ', '-')}")
        errors: list[BaseException] = []

        async def worker(task: int) -> None:
            for i in range(per_task):
                try:
                    await store.save_snapshot(*save(task, i), {"i": i})  # noqa: B023
                except convstore.ConvstoreError as exc:
                    errors.append(exc)  # noqa: B023

        start = time.perf_counter()
        await asyncio.gather(*(worker(task) for task in range(8)))
        ours = 8 * per_task / (time.perf_counter() - start)
        start = time.perf_counter()
        for task in range(8):
            for i in range(per_task):
                lower.save(*save(task, i), {"i": i})
        theirs = 8 * per_task / (time.perf_counter() - start)
        await store.close()
        lower.close()
        if errors:
            raise SystemExit(f"W5 had {len(errors)} errors, the first: {errors[0]!r}")
        figures.append(
            Figure(
                "W5",
                f"8 tasks x saves, {label} (saves/s)",
                ours,
                theirs,
                ">= 1.0x",
                1.0,
                higher_is_better=True,
            )
        )
    return figures


async def retry_log(directory: Path, scale: float) -> list[Figure]:
    """The cost of writing each attempt of a fail, fail, succeed call to retry_events."""
    store = await convstore.connect(f"sqlite:///{directory / 'retry.db'}")

    async def no_sleep(delay: float) -> None:
        pass

    def flaky() -> Callable[[], Awaitable[str]]:
        failures = [TimeoutError("read timed out"), ConnectionResetError("reset by peer")]

        async def call() -> str:
            if failures:
                raise failures.pop()
            return "ok"

        return call

    logged = convstore.RetryExecutor(store=store, operation="bench", sleep=no_sleep)
    bare = convstore.RetryExecutor(operation="bench", sleep=no_sleep)
    with_store: list[float] = []
    without: list[float] = []
    calls = max(BLOCK, int(1000 * scale))
    for _ in range(0, calls, BLOCK):
        without += [await timed(bare.execute_with_retry, flaky()) for _ in range(BLOCK)]
        with_store += [await timed(logged.execute_with_retry, flaky()) for _ in range(BLOCK)]
    await store.close()
    added_per_attempt = (median_ms(with_store) - median_ms(without)) / 3
    return [
        Figure(
            "log",
            "added per logged attempt (ms; baseline: the 1 ms budget)",
            added_per_attempt,
            1.0,
            "<= 1.0x",
            1.0,
        )
    ]


def report(figures: list[Figure]) -> str:
    """The figures as a Markdown table."""
    lines = [
        "| workload | measure | convstore | baseline | ratio | target | |",
        "|---|---|---:|---:|---:|---|---|",
    ]
    for f in figures:
        lines.append(
            f"| {f.workload} | {f.measure} | {f.convstore:.3f} | {f.baseline:.3f} | "
            f"{f.ratio:.2f}x | {f.target} | {'ok' if f.ok else 'MISSED'} |"
        )
    return "\n".join(lines)


async def main(scale: float) -> list[Figure]:
    with tempfile.TemporaryDirectory(prefix="convstore-bench-") as tmp:
        directory = Path(tmp)
        figures = await w1_w3(directory, scale)
        figures += await w2(directory, scale)
        figures += await w4(directory, scale)
        figures += await w5(directory, scale)
        figures += await retry_log(directory, scale)
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--quick", action="store_true", help="run a tenth of each workload")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args()
    results = asyncio.run(main(0.1 if args.quick else 1.0))
    print(report(results))
    print(
        "\nBaseline: stdlib sqlite3, synchronous, same tables and pragmas (W2 'turns' row: "
        "convstore's own turns 10-19, measured alternately; W4: its own 1,000-session call)."
    )
    if args.check and not all(f.ok for f in results):
        sys.exit(1)
