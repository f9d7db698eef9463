"""PostgreSQL connections lost under load (a restart, a failover, a terminated backend): no
operation that could safely run again fails, and none that might have been stored is repeated."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from typing import Any

import asyncpg
import pytest
from sqlalchemy.engine import make_url

import convstore

WORKERS = 4
#: Times every connection of the test's database is terminated, and the pause between them.
ROUNDS, PAUSE_S = 12, 0.15


async def _terminate_all(admin: asyncpg.Connection, database: str) -> int:
    """Terminate every connection to `database` but the admin's own; how many there were."""
    killed = await admin.fetchval(
        "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE datname = $1 AND pid <> pg_backend_pid()) AS t",
        database,
    )
    return int(killed)


async def test_terminated_connections_fail_no_save_restore_or_mark(
    postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Four tasks save, restore, mark and append in a loop while every server connection is
    terminated again and again: no save, restore or mark fails, no driver error escapes, an
    append either succeeds or raises CommitUnknown, and nothing acknowledged is lost."""
    caplog.set_level(logging.ERROR, logger="convstore")
    url = make_url(postgres_url)
    stop = asyncio.Event()
    failures: list[BaseException] = []
    acknowledged: dict[str, list[Any]] = {}
    appends: Counter[str] = Counter()
    counts: Counter[str] = Counter()

    async def worker(store: convstore.Store, n: int) -> None:
        turn = 0
        while not stop.is_set():
            turn += 1
            conversation = [{"role": "user", "content": f"worker {n}, turn {turn}"}]
            try:
                await store.save_snapshot(f"saved-{n}", conversation)
                acknowledged[f"saved-{n}"] = conversation
                snapshot = await store.restore_snapshot(f"saved-{n}")
                assert snapshot is not None
                assert snapshot.messages == conversation
                await store.mark_interrupted(f"saved-{n}", reason=f"turn {turn}")
                counts["operations"] += 3
                try:
                    await store.append_messages(f"appended-{n}", [{"turn": turn}])
                    appends[f"ok-{n}"] += 1
                except convstore.CommitUnknown:
                    appends[f"unknown-{n}"] += 1
            except Exception as exc:  # noqa: BLE001 - every failure is reported below
                failures.append(exc)

    admin = await asyncpg.connect(url.set(database="postgres").render_as_string(False))
    try:
        async with convstore.connect(postgres_url) as store:
            tasks = [asyncio.create_task(worker(store, n)) for n in range(WORKERS)]
            for _ in range(ROUNDS):
                await asyncio.sleep(PAUSE_S)
                counts["terminated"] += await _terminate_all(admin, str(url.database))
            stop.set()
            await asyncio.gather(*tasks)
            assert failures == []
            for session_id, conversation in acknowledged.items():
                snapshot = await store.restore_snapshot(session_id)
                assert snapshot is not None
                assert snapshot.messages == conversation
            for n in range(WORKERS):
                snapshot = await store.restore_snapshot(f"appended-{n}")
                stored = 0 if snapshot is None else snapshot.message_count
                ok, unknown = appends[f"ok-{n}"], appends[f"unknown-{n}"]
                assert ok <= stored <= ok + unknown
    finally:
        await admin.close()
    assert counts["terminated"] >= ROUNDS  # the test did cut connections under the tasks
    assert counts["operations"] > 0
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
