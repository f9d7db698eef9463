"""The scale workload's database: a million sessions of ten messages, a million attempts, and ten
interrupted sessions, written in bulk (sqlite3 executemany, PostgreSQL COPY) after convstore's
migrations made the tables, so that building it takes a minute rather than an hour."""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

NOW = datetime.now(UTC).replace(microsecond=0)
#: Half the sessions were last saved this long ago, the purge's cutoff is half of it.
OLD = timedelta(days=60)
PURGE_CUTOFF = NOW - OLD / 2
MESSAGES_PER_SESSION = 10
INTERRUPTED = 10
OPERATIONS = tuple(f"llm.op{n}" for n in range(20))
_KINDS = ("retryable", "retryable", "retryable", "non_retryable", "degraded", "fatal")
_FINAL = {"retryable": "giveup", "non_retryable": "non_retryable", "degraded": "degraded"}
_BATCH = 50_000
_SQLITE_TIME = "%Y-%m-%d %H:%M:%S.%f"


@dataclass(frozen=True)
class Sizes:
    sessions: int
    attempts: int

    @classmethod
    def of(cls, factor: float) -> Sizes:
        return cls(sessions=max(100, int(1_000_000 * factor)), attempts=int(1_000_000 * factor))

    @property
    def messages(self) -> int:
        return self.sessions * MESSAGES_PER_SESSION


def session_id(n: int) -> str:
    return f"s{n:08d}"


def saved_at(n: int) -> datetime:
    """Even sessions are old (the purge's half), odd ones recent."""
    return NOW - (OLD if n % 2 == 0 else timedelta(minutes=n % 1000))


def session_rows(sizes: Sizes) -> Iterator[tuple[Any, ...]]:
    """(session_id, created_at, saved_at, message_count, interrupted_at, interrupt_reason)."""
    for n in range(sizes.sessions):
        at = saved_at(n)
        marked = NOW - timedelta(seconds=n) if n % (sizes.sessions // INTERRUPTED) == 1 else None
        yield (session_id(n), at, at, MESSAGES_PER_SESSION, marked, marked and "worker died")


def message_rows(sizes: Sizes) -> Iterator[tuple[str, int, str, str]]:
    """(session_id, seq, role, body as JSON text)."""
    for n in range(sizes.sessions):
        sid = session_id(n)
        for seq in range(MESSAGES_PER_SESSION):
            role = "user" if seq % 2 == 0 else "assistant"
            yield sid, seq, role, f'{{"role": "{role}", "content": "turn {seq} of {sid}"}}'


def attempt_rows(sizes: Sizes) -> Iterator[tuple[Any, ...]]:
    """Calls of one to five attempts over the last 30 days, with their derived columns:
    (call_id, operation, attempt, outcome, error_type, status_code, delay_s, elapsed_s,
    created_at, kind, first_of_kind)."""
    rng = random.Random(14)
    written = call = 0
    step = timedelta(days=30) / max(sizes.attempts, 1)
    while written < sizes.attempts:
        call += 1
        call_id, operation = f"{call:032x}", rng.choice(OPERATIONS)
        kind = rng.choice(_KINDS) if rng.random() < 0.4 else None
        failures = 0 if kind is None else 1 if kind != "retryable" else rng.randint(1, 4)
        for number in range(1, failures + 2):
            at = NOW - timedelta(days=30) + step * written
            written += 1
            if number <= failures:
                last = number == failures and (kind != "retryable" or rng.random() < 0.1)
                outcome = _FINAL.get(kind or "", "fatal") if last else "retry"
                delay = None if last else round(rng.uniform(0.1, 30.0), 3)
                yield (
                    call_id,
                    operation,
                    number,
                    outcome,
                    kind,
                    429,
                    delay,
                    0.2,
                    at,
                    kind,
                    number == 1,
                )
                if last:
                    break
            else:
                yield (
                    call_id,
                    operation,
                    number,
                    "success",
                    None,
                    None,
                    None,
                    0.3,
                    at,
                    kind,
                    number == 1,
                )


def _batches(rows: Iterator[tuple[Any, ...]]) -> Iterator[list[tuple[Any, ...]]]:
    batch: list[tuple[Any, ...]] = []
    for row in rows:
        batch.append(row)
        if len(batch) == _BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


_ATTEMPT_COLUMNS = (
    "call_id, operation, attempt, outcome, error_type, status_code, delay_s, elapsed_s, "
    "created_at, kind, first_of_kind"
)


def sqlite_time(at: datetime) -> str:
    """`at` as convstore stores timestamps on SQLite."""
    return at.astimezone(UTC).strftime(_SQLITE_TIME)


def fill_sqlite(path: Path, sizes: Sizes) -> None:
    """Write the workload into the migrated, empty SQLite database at `path`."""

    def text(at: datetime | None) -> str | None:
        return None if at is None else sqlite_time(at)

    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("PRAGMA synchronous = OFF")
        db.execute("BEGIN")
        for batch in _batches(session_rows(sizes)):
            db.executemany(
                "INSERT INTO sessions (session_id, created_at, saved_at, message_count, extra, "
                "interrupted_at, interrupt_reason) VALUES (?, ?, ?, ?, '{}', ?, ?)",
                [(s, text(c), text(a), m, text(i), r) for s, c, a, m, i, r in batch],
            )
        for batch in _batches(message_rows(sizes)):
            db.executemany(
                "INSERT INTO messages (session_id, seq, role, body) VALUES (?, ?, ?, ?)", batch
            )
        for batch in _batches(attempt_rows(sizes)):
            db.executemany(
                f"INSERT INTO retry_events ({_ATTEMPT_COLUMNS}) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(*row[:8], text(row[8]), *row[9:]) for row in batch],
            )
        db.execute(
            "INSERT INTO interruptions (session_id, interrupted_at, reason) "
            "SELECT session_id, interrupted_at, interrupt_reason FROM sessions "
            "WHERE interrupted_at IS NOT NULL"
        )
        db.execute("COMMIT")
        db.execute("ANALYZE")
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        db.close()


async def fill_postgres(dsn: str, sizes: Sizes) -> None:
    """Write the workload into the migrated, empty PostgreSQL database at `dsn`, with COPY."""
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        for batch in _batches(session_rows(sizes)):
            await conn.copy_records_to_table(
                "sessions",
                records=[(s, c, a, m, "{}", i, r) for s, c, a, m, i, r in batch],
                columns=[
                    "session_id",
                    "created_at",
                    "saved_at",
                    "message_count",
                    "extra",
                    "interrupted_at",
                    "interrupt_reason",
                ],
            )
        for batch in _batches(message_rows(sizes)):
            await conn.copy_records_to_table(
                "messages", records=batch, columns=["session_id", "seq", "role", "body"]
            )
        for batch in _batches(attempt_rows(sizes)):
            await conn.copy_records_to_table(
                "retry_events", records=batch, columns=_ATTEMPT_COLUMNS.split(", ")
            )
        await conn.execute(
            "INSERT INTO interruptions (session_id, interrupted_at, reason) "
            "SELECT session_id, interrupted_at, interrupt_reason FROM sessions "
            "WHERE interrupted_at IS NOT NULL"
        )
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()
