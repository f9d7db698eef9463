"""The workloads on SQLite, each on fresh files, against the stdlib-sqlite3 lower bound."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

import convstore
from benchmarks import _hooks, _startup
from benchmarks._lower_bound import LowerBound
from benchmarks._report import Figure
from benchmarks._workloads import (
    W5_KINDS,
    appends,
    flatness,
    listing,
    save_and_restore,
    session_rows,
    throughputs,
    w5_plan,
)

NOTE = (
    "SQLite baseline: stdlib sqlite3, synchronous, same tables and pragmas (W2 'turns' row: "
    "convstore's own turns 10-19, measured alternately; W4: its own 1,000-session call; "
    "W5: one sequential writer)."
)
_DATETIME = "%Y-%m-%d %H:%M:%S.%f"  # how convstore writes timestamps to SQLite


async def run(scale: float) -> list[Figure]:
    """Every SQLite figure."""
    with tempfile.TemporaryDirectory(prefix="convstore-bench-") as tmp:
        directory = Path(tmp)
        async with _pair(directory, "w1") as (store, bound):
            figures = await save_and_restore(store, bound, scale, "", 1.0)
        async with _pair(directory, "w2") as (store, bound):
            grown = await appends(store, bound, scale, "")
            disk = await _disk(store, bound)  # before flatness() adds to the database
            figures += [grown, *await flatness(store, scale, ""), disk]
        figures += await listing(partial(_populated, directory), scale, "")
        for kind in W5_KINDS:
            plan = w5_plan(kind, scale)
            async with _pair(directory, f"w5-{kind.replace(' ', '-')}") as (store, bound):
                ours, theirs = await throughputs([[store.save_snapshot] * 8, [bound.save]], plan)
            figures.append(
                Figure(
                    "W5",
                    f"8 tasks x saves, {kind} (saves/s)",
                    ours,
                    theirs,
                    ">= 1.0x",
                    1.0,
                    higher_is_better=True,
                )
            )
        figures += await _hooks.run(directory, scale)
        figures += await asyncio.to_thread(_startup.run, directory)
    return figures


@asynccontextmanager
async def _pair(directory: Path, name: str) -> AsyncIterator[tuple[convstore.Store, LowerBound]]:
    """A convstore store and a lower bound, each on its own freshly migrated file."""
    lower_path = directory / f"{name}-lower.db"
    async with convstore.connect(f"sqlite:///{lower_path}"):
        pass  # the same tables, created by the same migrations
    bound = LowerBound(lower_path)
    try:
        async with convstore.connect(f"sqlite:///{directory / f'{name}-convstore.db'}") as store:
            yield store, bound
    finally:
        bound.close()


@asynccontextmanager
async def _populated(directory: Path, sessions: int) -> AsyncIterator[convstore.Store]:
    """A store on a fresh file holding W4's sessions, written with plain SQL."""
    async with convstore.connect(f"sqlite:///{directory / f'w4-{sessions}.db'}") as store:
        async with store.engine.begin() as conn:
            raw = await conn.get_raw_connection()
            driver: Any = raw.driver_connection
            created = "2026-01-01 00:00:00.000000"
            await driver.executemany(
                "INSERT INTO sessions (session_id, created_at, saved_at, message_count, extra, "
                "interrupted_at, interrupt_reason) VALUES (?, ?, ?, ?, '{}', ?, ?)",
                [
                    (
                        sid,
                        created,
                        created,
                        count,
                        at if at is None else at.strftime(_DATETIME),
                        reason,
                    )
                    for sid, count, at, reason in session_rows(sessions)
                ],
            )
            await driver.commit()
        yield store


async def _disk(store: convstore.Store, bound: LowerBound) -> Figure:
    """The size of the database after W2, checkpointed, against the lower bound's."""
    async with store.engine.connect() as conn:
        await conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        pages = (await conn.exec_driver_sql("PRAGMA page_count")).scalar_one()
        page_size = (await conn.exec_driver_sql("PRAGMA page_size")).scalar_one()
    return Figure(
        "disk",
        "database after W2 (KiB)",
        pages * page_size / 1024,
        bound.size_bytes() / 1024,
        "<= 1.2x",
        1.2,
    )
