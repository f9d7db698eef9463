"""SQLite set up for real use: pragmas, write transactions, atomic saves, several writers."""

from __future__ import annotations

import asyncio
import re
import sqlite3
import subprocess
import sys
import textwrap
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import cast

import aiosqlite
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

import convstore

OLD = [{"role": "user", "content": f"old {i}"} for i in range(10)]
NEW = [{"role": "user", "content": f"new {i}"} for i in range(100)]


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """These tests are about SQLite alone."""
    return f"sqlite:///{tmp_path / 'convstore.db'}"


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """A path for a SQLite file that does not exist yet."""
    return tmp_path / "app.db"


@pytest.fixture
async def traced(db_path: Path) -> AsyncIterator[tuple[convstore.Store, list[str]]]:
    """A store on a one-connection engine whose SQL statements are recorded."""
    engine = create_async_engine(f"sqlite+aiosqlite:///{db_path}", pool_size=1, max_overflow=0)
    statements: list[str] = []
    try:
        store = await convstore.connect(engine)
        await set_trace(engine, statements.append)
        yield store, statements
        await store.close()
    finally:
        await engine.dispose()


async def test_connections_are_set_up_for_concurrent_use(store: convstore.Store) -> None:
    """Every connection runs in WAL with a busy timeout, foreign keys and synchronous=NORMAL."""
    async with store.engine.connect() as conn:
        values = [
            (await conn.exec_driver_sql(f"PRAGMA {name}")).scalar_one()
            for name in ("journal_mode", "busy_timeout", "foreign_keys", "synchronous")
        ]
    assert values == ["wal", 30_000, 1, 1]


async def test_every_write_begins_immediate(traced: tuple[convstore.Store, list[str]]) -> None:
    """Saves, appends, marks and deletes each run in a transaction started by BEGIN IMMEDIATE."""
    store, statements = traced
    statements.clear()
    await store.save_snapshot("s1", OLD)
    await store.append_messages("s1", OLD)
    await store.mark_interrupted("s1")
    await store.delete_snapshot("s1")
    writes = [s for s in statements if s.split()[0] in ("INSERT", "UPDATE", "DELETE")]
    assert writes, statements
    begins = [s for s in statements if s.startswith("BEGIN")]
    assert begins == ["BEGIN IMMEDIATE"] * 4
    for write in writes:
        before = statements[: statements.index(write)]
        opened = [s for s in before if s.startswith(("BEGIN", "COMMIT", "ROLLBACK"))]
        assert opened[-1] == "BEGIN IMMEDIATE", (write, opened)


async def test_restore_reads_in_one_transaction(traced: tuple[convstore.Store, list[str]]) -> None:
    """A restore reads the session and its messages between one BEGIN and its end."""
    store, statements = traced
    await store.save_snapshot("s1", OLD)
    statements.clear()
    await store.restore_snapshot("s1")
    assert statements[0] == "BEGIN"
    assert statements[-1] in ("COMMIT", "ROLLBACK")
    assert sum("FROM sessions" in s or "FROM messages" in s for s in statements) == 2


async def set_trace(engine: AsyncEngine, callback: Callable[[str], object]) -> None:
    """Send every statement the engine's single pooled connection runs to `callback`."""
    async with engine.connect() as conn:
        raw = await conn.get_raw_connection()
        driver = cast(aiosqlite.Connection, raw.driver_connection)
        await driver.set_trace_callback(callback)


def test_aiosqlite_still_has_the_hooks_convstore_uses() -> None:
    """The aiosqlite internals the hot paths rely on exist with the expected shape."""
    assert callable(getattr(aiosqlite.Connection, "_execute", None))
    assert isinstance(aiosqlite.Connection._conn, property)


async def test_concurrent_saves_leave_one_whole_snapshot(database_url: str) -> None:
    """Two stores saving different snapshots of one session at once leave exactly one of them."""
    first = [{"role": "user", "content": f"A{i}"} for i in range(60)]
    second = [{"role": "assistant", "content": f"B{i}"} for i in range(40)]
    async with convstore.connect(database_url) as one, convstore.connect(database_url) as two:
        for round_ in range(20):
            await asyncio.gather(
                one.save_snapshot("shared", first, extra={"by": "A", "round": round_}),
                two.save_snapshot("shared", second, extra={"by": "B", "round": round_}),
                one.save_snapshot("shared", second, extra={"by": "B", "round": round_}),
            )
            snap = await one.restore_snapshot("shared")
            assert snap is not None
            expected = first if snap.extra["by"] == "A" else second
            assert snap.messages == expected
            assert snap.message_count == len(expected)
            assert snap.extra["round"] == round_


async def test_a_save_that_fails_midway_leaves_the_previous_snapshot(
    store: convstore.Store,
) -> None:
    """When the database fails on the 51st message row, the previous snapshot is intact."""
    await store.save_snapshot("s1", OLD, extra={"v": 1})
    async with store.engine.connect() as conn:
        await conn.exec_driver_sql(
            "CREATE TRIGGER fail_midway BEFORE INSERT ON messages WHEN NEW.seq = 50 "
            "BEGIN SELECT RAISE(ABORT, 'simulated failure'); END"
        )
    with pytest.raises(convstore.StorageError, match="simulated failure") as info:
        await store.save_snapshot("s1", NEW, extra={"v": 2})
    assert isinstance(info.value.__cause__, sqlite3.Error)
    snap = await store.restore_snapshot("s1")
    assert snap is not None
    assert snap.messages == OLD
    assert snap.extra == {"v": 1}


async def test_a_cancelled_save_leaves_the_previous_snapshot(
    db_path: Path, traced: tuple[convstore.Store, list[str]]
) -> None:
    """A save cancelled while it waits for the write lock inside SQLite writes nothing."""
    store, statements = traced
    await store.save_snapshot("s1", OLD)
    blocker = sqlite3.connect(db_path, isolation_level=None)
    started = threading.Event()

    def trace(statement: str) -> None:
        statements.append(statement)
        if statement == "BEGIN IMMEDIATE":
            started.set()

    await set_trace(store.engine, trace)
    statements.clear()
    try:
        blocker.execute("BEGIN IMMEDIATE")
        task = asyncio.create_task(store.save_snapshot("s1", NEW))
        assert await asyncio.to_thread(started.wait, 10)
        task.cancel()
    finally:
        blocker.rollback()
        blocker.close()
    with pytest.raises(asyncio.CancelledError):
        await task
    snap = await store.restore_snapshot("s1")
    assert snap is not None
    assert snap.messages == OLD
    assert "BEGIN IMMEDIATE" in statements
    assert "INSERT INTO messages" not in " ".join(statements)


async def test_writes_that_wait_together_commit_together_and_fail_alone(
    store: convstore.Store,
) -> None:
    """Concurrent saves share transactions, yet one that fails leaves the others stored."""
    async with store.engine.connect() as conn:
        await conn.exec_driver_sql(
            "CREATE TRIGGER refuse_bad BEFORE INSERT ON messages WHEN NEW.session_id = 'bad' "
            "BEGIN SELECT RAISE(ABORT, 'refused'); END"
        )
    results = await asyncio.gather(
        *(store.save_snapshot(f"s{i}", OLD) for i in range(5)),
        store.save_snapshot("bad", OLD),
        *(store.append_messages(f"a{i}", OLD) for i in range(5)),
        return_exceptions=True,
    )
    assert isinstance(results[5], convstore.StorageError)
    assert [r for i, r in enumerate(results) if i != 5] == [None] * 5 + [len(OLD)] * 5
    assert await store.restore_snapshot("bad") is None
    for i in range(5):
        for session_id in (f"s{i}", f"a{i}"):
            snap = await store.restore_snapshot(session_id)
            assert snap is not None
            assert snap.messages == OLD


async def test_in_memory_database(tmp_path: Path) -> None:
    """A plain ``sqlite://`` URL gives a working in-memory store shared by concurrent tasks."""
    async with convstore.connect("sqlite://") as store:
        await asyncio.gather(
            *(store.save_snapshot(f"s{i}", OLD) for i in range(10)),
            *(store.mark_interrupted(f"m{i}") for i in range(5)),
        )
        snaps = await asyncio.gather(*(store.restore_snapshot(f"s{i}") for i in range(10)))
        assert all(s is not None and s.messages == OLD for s in snaps)
        assert len(await store.list_interrupted_sessions()) == 5


async def test_a_given_engine_is_set_up_and_left_open(db_path: Path) -> None:
    """A store on the caller's engine sets its connections up and does not dispose of it."""
    engine: AsyncEngine = create_async_engine(f"sqlite+aiosqlite:///{db_path}")
    try:
        async with engine.connect() as conn:  # a connection opened before convstore saw it
            await conn.exec_driver_sql("SELECT 1")
        async with convstore.connect(engine) as store:
            await store.save_snapshot("s1", OLD)
            async with store.engine.connect() as conn:
                assert (await conn.exec_driver_sql("PRAGMA foreign_keys")).scalar_one() == 1
        async with engine.connect() as conn:
            count = (await conn.exec_driver_sql("SELECT count(*) FROM messages")).scalar_one()
        assert count == len(OLD)
    finally:
        await engine.dispose()


WRITER = textwrap.dedent(
    """
    import asyncio, sys
    import convstore

    async def main(url, worker):
        async with convstore.connect(url) as store:
            for i in range(60):
                messages = [{"role": "user", "content": f"w{worker} i{i} m{m}"} for m in range(30)]
                await store.save_snapshot(f"shared-{i % 3}", messages, extra={"w": worker, "i": i})
                await store.save_snapshot(f"own-{worker}", messages)
                await store.append_messages(f"log-{i % 2}", messages[:2])
                if i % 10 == 0:
                    await store.mark_interrupted(f"own-{worker}", reason="test")

    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
    """
)


@pytest.mark.slow
def test_four_processes_write_to_one_file_without_lock_errors(db_path: Path) -> None:
    """Four processes starting on one new file migrate it once and all save without errors."""
    url = f"sqlite:///{db_path}"
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, url, str(n)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(4)
    ]
    results = [(w.wait(timeout=120), *w.communicate()) for w in workers]
    for code, _out, err in results:
        assert code == 0, err
        assert "locked" not in err
    check = sqlite3.connect(db_path)
    try:
        assert check.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        for i in range(3):
            (extra,) = check.execute(
                "SELECT extra FROM sessions WHERE session_id = ?", (f"shared-{i}",)
            ).fetchone()
            bodies = check.execute(
                "SELECT body FROM messages WHERE session_id = ? ORDER BY seq", (f"shared-{i}",)
            ).fetchall()
            worker = __import__("json").loads(extra)["w"]
            assert len(bodies) == 30
            assert all(f'"w{worker} ' in body for (body,) in bodies)
        (log_count,) = check.execute(
            "SELECT sum(message_count) FROM sessions WHERE session_id LIKE 'log-%'"
        ).fetchone()
        assert log_count == 4 * 60 * 2
        (versions,) = check.execute("SELECT count(*) FROM convstore_alembic_version").fetchone()
        assert versions == 1
    finally:
        check.close()


async def test_timestamps_are_written_alike_by_every_path(store: convstore.Store) -> None:
    """Times written by the fast paths and by SQLAlchemy share one text form, so they compare."""
    await store.save_snapshot("s1", OLD)  # the connection thread's own SQL
    await store.mark_interrupted("s1")  # SQLAlchemy Core, through the UTCDateTime type
    async with store.engine.connect() as conn:
        row = (
            await conn.exec_driver_sql("SELECT created_at, saved_at, interrupted_at FROM sessions")
        ).one()
    for text in row:
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}", text), text
    assert row.interrupted_at >= row.saved_at


async def test_a_new_database_locked_by_another_connection_is_waited_for(tmp_path: Path) -> None:
    """The switch to WAL, which SQLite refuses at once while another connection holds a lock
    (workers opening a new database together), waits for the lock as a write would."""
    path = tmp_path / "new.db"
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    other.execute("CREATE TABLE elsewhere (x)")
    asyncio.get_running_loop().call_later(0.5, other.execute, "COMMIT")
    try:
        async with convstore.connect(f"sqlite:///{path}") as store:
            await store.save_snapshot("s1", [{"role": "user", "content": "hi"}])
            async with store.engine.connect() as conn:
                mode = (await conn.exec_driver_sql("PRAGMA journal_mode")).scalar()
    finally:
        other.close()
    assert mode == "wal"
