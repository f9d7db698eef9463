"""The scale workload: 1,000,000 sessions holding 10,000,000 messages and 1,000,000 attempts, on
SQLite and PostgreSQL. Each figure is a ratio to a floor measured in the same run on the same
data: plain SQL through the driver (sqlite3, asyncpg), doing the least the question needs.

- listing the interrupted sessions (10 of a million) and `retry_summary()` over every attempt,
  with the summary as revision 0007 computed it (window functions) for reference;
- `purge` of half the sessions (500,000, with their 5,000,000 messages) while a writer saves
  beside it: the purge's time against plain batched deletes on a copy of the database, and the
  writer's worst wait, against the 100 ms it may wait;
- `convstore import-json` of 100,000 snapshot files, as a whole process (with its progress bar
  on a terminal), against reading, parsing and inserting them with the driver;
- the RSS of a process saving to 100,000 distinct sessions: its growth after a warm-up of
  10,000, against the 5 MB it may grow.
"""

from __future__ import annotations

import asyncio
import functools
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

import orjson

import convstore
from benchmarks import _scale_data as data
from benchmarks import _scale_floors as floors
from benchmarks._report import Figure, median_ms, timed
from convstore._cli.admin import purge as purging


async def run(factor: float, postgres_url: str | None) -> tuple[list[Figure], list[str]]:
    sizes = data.Sizes.of(factor)
    figures: list[Figure] = []
    with tempfile.TemporaryDirectory(prefix="convstore-scale-") as tmp:
        directory = Path(tmp)
        count = max(100, int(100_000 * factor))
        files = _snapshot_files(directory / "snapshots", count)
        backends: list[floors.Backend] = [floors.SQLite(directory)]
        if postgres_url:
            backends.append(floors.Postgres(postgres_url))
        for backend in backends:
            figures += await _leg(backend, sizes, files)
            figures.append(await _rss(backend, max(1000, int(100_000 * factor))))
    notes = [
        f"scale: {sizes.sessions:,} sessions, {sizes.messages:,} messages, "
        f"{sizes.attempts:,} attempts, {count:,} snapshot files; "
        "floors are plain SQL through the driver on the same data"
    ]
    if postgres_url:
        wal = await floors.Postgres(postgres_url).setting("max_wal_size")
        notes.append(
            f"PostgreSQL's max_wal_size is {wal}: a purge's WAL past it brings checkpoints, "
            "whose flushes the writer's commits wait behind (see docs/postgresql.md)"
        )
    return figures, notes


async def _leg(backend: floors.Backend, sizes: data.Sizes, files: Path) -> list[Figure]:
    name = backend.name
    started = time.perf_counter()
    url = await backend.build("scale", sizes)
    print(f"{name}: built in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    await backend.settle()
    figures = []
    async with convstore.connect(url) as store:
        lists = [await timed(store.list_interrupted_sessions) for _ in range(50)]
        floor_lists = [await timed(backend.list_interrupted, url) for _ in range(50)]
        figures.append(
            Figure(
                name,
                f"list_interrupted_sessions, {data.INTERRUPTED} of {sizes.sessions:,} (ms)",
                median_ms(lists),
                median_ms(floor_lists),
                "<= 0.3 ms",
                None,
            )
        )
        summaries = [await timed(store.retry_summary) for _ in range(3)]
    pass_ms = median_ms([await timed(backend.one_pass, url) for _ in range(3)])
    before_ms = median_ms([await timed(backend.old_summary, url)])
    figures += [
        Figure(
            name,
            f"retry_summary over {sizes.attempts:,} attempts (ms)",
            median_ms(summaries),
            pass_ms,
            "<= 1,000 ms",
            None,
        ),
        Figure(
            name,
            "  the same, as revision 0007 computed it (ms)",
            before_ms,
            pass_ms,
            "for reference",
            None,
        ),
    ]
    # The whole command, against the same process on an empty database: what it adds at scale.
    stats_s = await _command_s("stats", "--url", url)
    empty = await backend.build("empty", None)
    empty_s = await _command_s("stats", "--url", empty)
    await backend.drop("empty")
    figures.append(
        Figure(
            name,
            "  convstore stats, whole process, vs on an empty database (ms)",
            stats_s * 1000,
            empty_s * 1000,
            "reference",
            None,
        )
    )
    figures += await _purge(backend, url, sizes)
    # Dropped first: PostgreSQL's autovacuum of the purged tables would slow the import down.
    await backend.drop("scale")
    await backend.settle()
    figures.append(await _import(backend, files))
    return figures


async def _purge(backend: floors.Backend, url: str, sizes: data.Sizes) -> list[Figure]:
    """convstore's purge of half the sessions while another process saves; the floor (plain
    batched deletes, alone) on a copy of the database."""
    await backend.settle()
    copy = await backend.copy("scale", "scale_copy")
    floor_s = await timed(backend.purge, copy, data.PURGE_CUTOFF)
    await backend.drop("scale_copy")
    signals = Path(tempfile.mkdtemp())
    writer = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _WRITER_CODE, url, str(signals), stdout=asyncio.subprocess.PIPE
    )
    assert writer.stdout is not None
    await writer.stdout.readline()  # connected, and saving alone
    await asyncio.sleep(WRITER_ALONE_S)
    (signals / "alone").touch()
    alone_s = float((await writer.stdout.readline()).split()[1])
    async with convstore.connect(url) as store:
        purge_s, report = await _timed_result(
            purging.purge(store.engine, data.PURGE_CUTOFF, dry_run=False)
        )
    (signals / "stop").touch()
    writes, worst_s = (await writer.stdout.read()).split()
    await writer.wait()
    assert report.sessions == sizes.sessions // 2, report
    name = backend.name
    return [
        Figure(
            name,
            f"purge of {report.sessions:,} sessions (s)",
            purge_s,
            floor_s,
            "for reference",
            None,
        ),
        Figure(
            name,
            f"  worst wait of {int(writes):,} saves beside it, another process (ms)",
            float(worst_s) * 1000,
            100.0,
            "<= 100 ms",
            1.0,
        ),
        Figure(
            name,
            f"  the same, vs the writer alone for {WRITER_ALONE_S:.0f} s before (ms)",
            float(worst_s) * 1000,
            alone_s * 1000,
            "reference",
            None,
        ),
    ]


#: How long the writer saves alone before the purge starts, for its worst wait without one.
WRITER_ALONE_S = 10.0
#: A process saving small snapshots in a loop, alone until the file "alone" appears, then until
#: "stop" does; after each phase, its count of saves and its worst time.
_WRITER_CODE = """
import asyncio, os, sys, time
import convstore

async def main():
    signals = sys.argv[2]
    async with convstore.connect(sys.argv[1]) as store:
        await store.save_snapshot("writer-warm-up", [])
        print("ready", flush=True)
        n = 0
        for phase in ("alone", "stop"):
            worst, count = 0.0, 0
            while not os.path.exists(os.path.join(signals, phase)):
                started = time.perf_counter()
                await store.save_snapshot(f"writer-{n}", [{"role": "user", "content": "beside"}])
                worst, n, count = max(worst, time.perf_counter() - started), n + 1, count + 1
                await asyncio.sleep(0.002)
            print(count, worst, flush=True)

asyncio.run(main())
"""


async def _import(backend: floors.Backend, files: Path) -> Figure:
    """`convstore import-json` as a whole process into a new database; the floor into another."""
    url = await backend.build("import", None)
    started = time.perf_counter()
    command = [sys.executable, "-m", "convstore", "import-json", str(files), "--url", url]
    await asyncio.to_thread(subprocess.run, command, check=True)
    convstore_s = time.perf_counter() - started
    await backend.drop("import")
    floor_url = await backend.build("import_floor", None)
    floor_s = await timed(backend.import_files, floor_url, files)
    await backend.drop("import_floor")
    count = await asyncio.to_thread(_count, files)
    return Figure(
        backend.name,
        f"import-json of {count:,} files (s)",
        convstore_s,
        floor_s,
        "for reference",
        None,
    )


async def _rss(backend: floors.Backend, sessions: int) -> Figure:
    """RSS growth (MB) of a process saving to `sessions` distinct sessions, after a tenth."""
    url = await backend.build("rss", None)
    code = _RSS_CODE.format(sessions=sessions, warm=sessions // 10)
    result = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-c", code, url], check=True, capture_output=True
    )
    await backend.drop("rss")
    warm_kb, end_kb = (int(kb) for kb in result.stdout.split())
    return Figure(
        backend.name,
        f"RSS growth saving to {sessions:,} sessions, after a tenth (MB)",
        (end_kb - warm_kb) / 1024,
        5.0,
        "<= 5 MB",
        1.0,
    )


_RSS_CODE = """
import asyncio, sys
import convstore

def rss_kb():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])

async def main():
    async with convstore.connect(sys.argv[1]) as store:
        for n in range({sessions}):
            await store.save_snapshot(f"rss-{{n}}", [{{"role": "user", "content": f"hello {{n}}"}}])
            if n + 1 == {warm}:
                warm = rss_kb()
    print(warm, rss_kb())

asyncio.run(main())
"""


def _snapshot_files(directory: Path, count: int) -> Path:
    """`count` snapshot files of ten messages each, in the JSON-file format."""
    directory.mkdir()
    saved = data.NOW.timestamp()
    for n in range(count):
        snapshot = {
            "session_id": f"imported-{n:07d}",
            "saved_at": saved,
            "messages": [
                {"role": "user" if i % 2 == 0 else "assistant", "content": f"turn {i} of {n}"}
                for i in range(data.MESSAGES_PER_SESSION)
            ],
            "extra": {"n": n},
        }
        (directory / f"imported-{n:07d}.json").write_bytes(orjson.dumps(snapshot))
    return directory


async def _command_s(*args: str) -> float:
    """Seconds a whole `convstore` process takes, the median of three runs."""
    command = [sys.executable, "-m", "convstore", *args]
    runs = [
        await timed(
            asyncio.to_thread,
            functools.partial(subprocess.run, command, capture_output=True, check=True),
        )
        for _ in range(3)
    ]
    return sorted(runs)[1]


def _count(files: Path) -> int:
    return sum(1 for _ in files.iterdir())


async def _timed_result(work: Awaitable[Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = await work
    return time.perf_counter() - started, result
