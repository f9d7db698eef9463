"""Start-up and the cold paths: `import convstore` and a command-line call as whole processes
against a bare interpreter, and `mark_interrupted` / `list_interrupted_sessions` against the
same statements in stdlib sqlite3, all in the same run."""

from __future__ import annotations

import asyncio
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path

import convstore
from benchmarks._report import Figure, median_ms, timed

#: Processes started per measure (the median is kept).
RUNS = 7


def _process(*args: str) -> float:
    """Median seconds of `python args`, run to its end `RUNS` times."""
    seconds: list[float] = []
    for _ in range(RUNS):
        started = time.perf_counter()
        subprocess.run([sys.executable, *args], check=True, capture_output=True)
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds)


def _peak_mb(code: str) -> float:
    """The peak RSS (MB) of a process that runs `code`, as it reports it at its end (VmHWM: the
    kernel's ru_maxrss of a child counts the parent's pages it was forked with)."""
    report = (
        "print(next(line.split()[1] for line in open('/proc/self/status')"
        " if line.startswith('VmHWM')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", f"{code}\n{report}"], check=True, capture_output=True, text=True
    )
    return int(result.stdout.split()[-1]) / 1024


async def _cold_paths(directory: Path) -> tuple[float, float, float, float]:
    """Median ms of mark_interrupted and of listing 10 interrupted sessions among 1,000, through
    convstore and through stdlib sqlite3 on a copy of the same database."""
    path = directory / "cold.db"
    async with convstore.connect(f"sqlite:///{path}") as store:
        for i in range(1000):
            await store.save_snapshot(f"s{i}", [{"role": "user", "content": "hello"}])
        for i in range(10):
            await store.mark_interrupted(f"s{i}", reason="bench")
        marks = [await timed(store.mark_interrupted, f"s{i % 10}", "bench") for i in range(500)]
        lists = [await timed(store.list_interrupted_sessions) for _ in range(500)]
    raw = sqlite3.connect(path, isolation_level=None)
    raw.execute("PRAGMA synchronous = NORMAL")

    def raw_mark(i: int) -> None:
        now = "2026-12-01 10:00:00.000000"
        raw.execute("BEGIN IMMEDIATE")
        raw.execute(
            "UPDATE sessions SET interrupted_at = ?, interrupt_reason = ? WHERE session_id = ?",
            (now, "bench", f"s{i % 10}"),
        )
        raw.execute(
            "INSERT INTO interruptions (session_id, interrupted_at, reason) VALUES (?, ?, ?)",
            (f"s{i % 10}", now, "bench"),
        )
        raw.execute("COMMIT")

    def raw_list() -> None:
        raw.execute(
            "SELECT session_id, message_count, interrupted_at, interrupt_reason FROM sessions"
            " WHERE interrupted_at IS NOT NULL"
            " ORDER BY interrupted_at DESC, session_id DESC"
        ).fetchall()

    raw_marks = [await timed(raw_mark, i) for i in range(500)]
    raw_lists = [await timed(raw_list) for _ in range(500)]
    raw.close()
    return median_ms(marks), median_ms(raw_marks), median_ms(lists), median_ms(raw_lists)


def run(directory: Path) -> list[Figure]:
    """The start-up and cold-path figures."""
    bare_s, bare_mb = _process("-c", "pass"), _peak_mb("pass")
    import_s, import_mb = _process("-c", "import convstore"), _peak_mb("import convstore")
    url = f"sqlite:///{directory / 'cold.db'}"
    mark, raw_mark, listing, raw_list = asyncio.run(_cold_paths(directory))
    cli_s = _process("-m", "convstore", "sessions", "--interrupted", "--url", url)
    help_s = _process("-m", "convstore", "--help")
    return [
        Figure(
            "startup",
            "import convstore over a bare interpreter (ms; baseline: the 150 ms budget)",
            (import_s - bare_s) * 1000,
            150.0,
            "<= 1.0x",
            1.0,
        ),
        Figure(
            "startup",
            "import convstore, peak RSS over a bare interpreter (MB; baseline: 25 MB)",
            import_mb - bare_mb,
            25.0,
            "<= 1.0x",
            1.0,
        ),
        Figure(
            "startup",
            "convstore --help (ms; baseline: 300 ms)",
            help_s * 1000,
            300.0,
            "<= 1.0x",
            1.0,
        ),
        Figure(
            "startup",
            "convstore sessions --interrupted (ms; baseline: 300 ms)",
            cli_s * 1000,
            300.0,
            "<= 1.0x",
            1.0,
        ),
        Figure("cold", "mark_interrupted (median ms; baseline: 0.3 ms)", mark, 0.3, "<= 1.0x", 1.0),
        Figure(
            "cold", "mark_interrupted vs sqlite3 (median ms)", mark, raw_mark, "(reference)", None
        ),
        Figure(
            "cold",
            "list 10 interrupted of 1,000 (median ms; baseline: 0.3 ms)",
            listing,
            0.3,
            "<= 1.0x",
            1.0,
        ),
        Figure(
            "cold",
            "list 10 of 1,000 vs sqlite3 (median ms)",
            listing,
            raw_list,
            "(reference)",
            None,
        ),
    ]
