"""The report page on a big history: 1,000,000 ``retry_events`` rows over a week (about 640,000
calls of five operations, each one of seven stories from a first-attempt success to a give-up
after two overloads) and 20,000 interruptions, half of them resolved.

The rows are loaded in bulk (executemany on SQLite, COPY on PostgreSQL), then the page is built
three times for all history and three times for the last 24 hours; the figures are the medians,
against `Store.retry_summary` alone (what `convstore stats` runs) on the same rows.
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import convstore
from benchmarks._report import Figure
from convstore._storage.types import to_sqlite_text

ROWS = 1_000_000
INTERRUPTIONS = 20_000
OPERATIONS = ("llm.chat", "llm.embed", "llm.summarise", "tools.search", "tools.fetch")
COLUMNS = (
    "call_id, session_id, operation, attempt, outcome, error_type, error_class, error_message, "
    "status_code, delay_s, retry_after_s, elapsed_s, created_at, cooldown_wait_s, kind, "
    "first_of_kind"
)
RUNS = 3

#: The stories of a call: (outcome, error_type, error_class, status) of each attempt.
STORIES: tuple[tuple[tuple[str, str | None, str | None, int | None], ...], ...] = (
    (("success", None, None, None),),
    (("success", None, None, None),),
    (("retry", "retryable", "anthropic.RateLimitError", 429), ("success", None, None, None)),
    (
        ("retry", "retryable", "anthropic.InternalServerError", 529),
        ("retry", "retryable", "httpx.ReadTimeout", None),
        ("giveup", "retryable", "anthropic.InternalServerError", 503),
    ),
    (("non_retryable", "non_retryable", "openai.BadRequestError", 400),),
    (("retry", "retryable", "openai.APIConnectionError", None), ("cancelled", None, None, None)),
    (("fatal", "fatal", "openai.RateLimitError", 429),),
)


def history(now: datetime) -> Iterator[tuple[Any, ...]]:
    """`ROWS` attempts over the week before `now`, oldest first, as row tuples."""
    rng = random.Random(16)
    start = now - timedelta(days=7)
    made, call = 0, 0
    step = 7 * 86400 / (ROWS / 1.55)  # about 1.55 attempts per call
    while made < ROWS:
        story = STORIES[rng.randrange(len(STORIES))]
        at = start + timedelta(seconds=call * step)
        operation = OPERATIONS[call % len(OPERATIONS)]
        # The columns convstore fills as it writes a row: the kind of error it counts under
        # (a success's or cancellation's is that of the attempt before it), and whether it is
        # its call's first row of that kind.
        previous: str | None = None
        seen: set[str | None] = set()
        for number, (outcome, kind, error_class, status) in enumerate(story[: ROWS - made], 1):
            counted = kind if kind is not None else previous
            first, previous = counted not in seen, kind
            seen.add(counted)
            delay = round(rng.expovariate(1.0), 3) if outcome == "retry" else None
            asked = float(rng.randint(1, 30)) if status == 429 and outcome == "retry" else None
            cooled = round(rng.random() * 2, 3) if number > 1 and call % 4 == 0 else None
            yield (
                f"{call:032x}",
                f"s-{call % 5000}",
                operation,
                number,
                outcome,
                kind,
                error_class,
                None if kind is None else "failed",
                status,
                delay,
                asked,
                round(rng.random(), 3),
                at + timedelta(seconds=number),
                cooled,
                counted,
                first,
            )
            made += 1
        call += 1


def crashes(now: datetime) -> Iterator[tuple[Any, ...]]:
    """`INTERRUPTIONS` interruptions over the week, every other one resolved within a day."""
    rng = random.Random(17)
    reasons = ("worker killed", "timeout", "deploy", "out of memory", None)
    for n in range(INTERRUPTIONS):
        at = now - timedelta(seconds=rng.uniform(0, 7 * 86400))
        resolved = at + timedelta(seconds=rng.expovariate(1 / 3600)) if n % 2 else None
        yield (f"s-{n}", at, reasons[n % len(reasons)], resolved)


def load_sqlite(path: Path, now: datetime) -> None:
    """The rows, written with executemany in one transaction."""
    db = sqlite3.connect(path)
    try:
        with db:
            db.executemany(
                f"INSERT INTO retry_events ({COLUMNS}) VALUES ({', '.join('?' * 16)})",
                (_sqlite_row(row, 12) for row in history(now)),
            )
            db.executemany(
                "INSERT INTO interruptions (session_id, interrupted_at, reason, resolved_at) "
                "VALUES (?, ?, ?, ?)",
                (_sqlite_row(_sqlite_row(row, 1), 3) for row in crashes(now)),
            )
        db.execute("ANALYZE")
    finally:
        db.close()


def _sqlite_row(row: tuple[Any, ...], index: int) -> tuple[Any, ...]:
    value = row[index]
    text = None if value is None else to_sqlite_text(value)
    return (*row[:index], text, *row[index + 1 :])


async def load_postgres(url: str, now: datetime) -> None:
    """The rows, written with COPY."""
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        await conn.copy_records_to_table(
            "retry_events", records=history(now), columns=COLUMNS.split(", ")
        )
        await conn.copy_records_to_table(
            "interruptions",
            records=crashes(now),
            columns=["session_id", "interrupted_at", "reason", "resolved_at"],
        )
        await conn.execute("ANALYZE")
    finally:
        await conn.close()


async def measure(url: str, backend: str) -> tuple[list[Figure], list[str]]:
    """Build the page `RUNS` times for all history and for 24 hours; the figures."""
    figures, notes = [], []
    async with convstore.connect(url) as store:
        for label, since in (("all history", None), ("last 24 h", _day_ago())):
            pages, summaries, size = [], [], 0
            for _ in range(RUNS):
                start = time.perf_counter()
                page = await convstore.build_report(store, since=since)
                pages.append(time.perf_counter() - start)
                size = len(page.encode("utf-8"))
                start = time.perf_counter()
                await store.retry_summary(since=since)
                summaries.append(time.perf_counter() - start)
            page_s, summary_s = statistics.median(pages), statistics.median(summaries)
            figures.append(
                Figure(
                    f"report page, {ROWS:,} attempts, {label} ({backend})",
                    "build (s)",
                    page_s,
                    summary_s,
                    "for reference, against retry_summary (stats)",
                    None,
                )
            )
            notes.append(
                f"{backend}, {label}: the page in {page_s:.2f} s (retry_summary alone "
                f"{summary_s:.2f} s), {size / 1e6:.2f} MB"
            )
    return figures, notes


def _day_ago() -> datetime:
    return datetime.now(UTC) - timedelta(hours=24)


def run_all(postgres_url: str | None) -> tuple[list[Figure], list[str]]:
    """The page's figures on a SQLite file, and on a fresh PostgreSQL database if given."""
    now = datetime.now(UTC)
    with tempfile.TemporaryDirectory(prefix="convstore-bench-") as tmp:
        path = Path(tmp) / "report.db"
        asyncio.run(_migrate(f"sqlite:///{path}"))
        started = time.perf_counter()
        load_sqlite(path, now)
        notes = [f"sqlite: {ROWS:,} rows loaded in {time.perf_counter() - started:.1f} s"]
        figures, more = asyncio.run(measure(f"sqlite:///{path}", "sqlite"))
        notes += more
    if postgres_url:
        from benchmarks._postgres import fresh_database  # asyncpg is an optional extra

        with fresh_database(postgres_url, "report") as url:
            asyncio.run(_migrate(url))
            started = time.perf_counter()
            asyncio.run(load_postgres(url, now))
            notes.append(
                f"postgresql: {ROWS:,} rows loaded in {time.perf_counter() - started:.1f} s"
            )
            pg_figures, pg_notes = asyncio.run(measure(url, "postgresql"))
        figures += pg_figures
        notes += pg_notes
    return figures, notes


async def _migrate(url: str) -> None:
    async with convstore.connect(url):
        pass
