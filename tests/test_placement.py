"""Where convstore's tables live: its own version table, an older convstore's revision moved out
of alembic_version, tables of an application's that it never touches, and PostgreSQL schemas."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from factories import rate_limited_attempt
from sqlalchemy import Connection, inspect
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

import convstore
from convstore._cli.admin.database import migrate, open_engine
from convstore._storage.engine import resolve_url
from convstore._storage.migrate import alembic_config, head_revision
from convstore._storage.placement import TABLES
from convstore._storage.revisions import VERSION_TABLE

HEAD = head_revision()
ROOT = Path(__file__).resolve().parent.parent


async def query(engine: AsyncEngine, sql: str) -> list[tuple[Any, ...]]:
    """The rows of one statement (none for one that returns none), committed."""
    async with engine.begin() as conn:
        result = await conn.exec_driver_sql(sql)
        return [tuple(row) for row in result] if result.returns_rows else []


async def tables(engine: AsyncEngine) -> set[str]:
    """The tables the engine's connections see."""
    async with engine.connect() as conn:
        return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))


async def older_convstore_database(url: str, revision: str = "0002") -> None:
    """A database as an older convstore left it: at `revision` recorded in alembic_version,
    with a conversation, a crash and a retry in it."""
    engine = open_engine(url, create=True)
    try:
        await migrate(engine, "upgrade", revision)
        await query(engine, f"ALTER TABLE {VERSION_TABLE} RENAME TO alembic_version")
        if engine.dialect.name == "postgresql":  # alembic's name for the primary key
            await query(
                engine,
                f"ALTER TABLE alembic_version RENAME CONSTRAINT {VERSION_TABLE}_pkc "
                "TO alembic_version_pkc",
            )
        await query(
            engine,
            "INSERT INTO sessions (session_id, created_at, saved_at, message_count, extra) "
            "VALUES ('kept', '2026-11-30 08:00:00+00:00', '2026-11-30 08:00:00+00:00', 1, '{}')",
        )
        await query(
            engine,
            "INSERT INTO messages (session_id, seq, role, body) "
            """VALUES ('kept', 0, 'user', '{"role": "user", "content": "from 0002"}')""",
        )
        await query(
            engine,
            "INSERT INTO interruptions (session_id, reason, interrupted_at) "
            "VALUES ('kept', 'SIGTERM', '2026-11-30 08:01:00+00:00')",
        )
    finally:
        await engine.dispose()


async def assert_moved_and_kept(url: str) -> None:
    """The database is at the newest revision in convstore's version table, alembic_version is
    gone, and the older convstore's rows are all there."""
    engine = open_engine(url, create=False)
    try:
        assert await query(engine, f"SELECT version_num FROM {VERSION_TABLE}") == [(HEAD,)]
        assert "alembic_version" not in await tables(engine)
    finally:
        await engine.dispose()
    async with convstore.connect(url, migrate=False) as store:
        snapshot = await store.restore_snapshot("kept")
        assert snapshot is not None
        assert snapshot.messages == [{"role": "user", "content": "from 0002"}]
        assert [i.reason for i in await store.interruptions("kept")] == ["SIGTERM"]


async def test_an_older_convstores_database_is_upgraded_in_place(database_url: str) -> None:
    """A database an older convstore migrated to 0002 under alembic_version is upgraded by
    connect: its revision moves to convstore's version table and every row is kept."""
    await older_convstore_database(database_url)
    with pytest.raises(convstore.SchemaError, match="revision '0002'"):
        await convstore.connect(database_url, migrate=False)
    async with convstore.connect(database_url) as store:
        await store.save_snapshot("new", [{"role": "user", "content": "after"}])
    await assert_moved_and_kept(database_url)


async def test_an_older_convstores_database_at_head_opens_and_moves_on_upgrade(
    database_url: str,
) -> None:
    """At the newest revision under alembic_version, the tables are used as they are without
    migrate, and the revision moves with it."""
    await older_convstore_database(database_url, HEAD)
    async with convstore.connect(database_url, migrate=False) as store:
        assert await store.restore_snapshot("kept") is not None
    async with convstore.connect(database_url):
        pass
    await assert_moved_and_kept(database_url)


UPGRADE = """
import asyncio, sys, convstore
async def main():
    async with convstore.connect(sys.argv[1]) as store:
        await store.save_snapshot(sys.argv[2], [{"role": "user", "content": sys.argv[2]}])
asyncio.run(main())
"""


async def test_two_processes_upgrading_an_older_database_migrate_it_once(
    database_url: str,
) -> None:
    """Two processes that connect at once to an older convstore's database both come up, and
    the revision is moved and the tables migrated exactly once."""
    await older_convstore_database(database_url)
    workers = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-W",
            "error",
            "-c",
            UPGRADE,
            database_url,
            f"w{i}",
            stderr=asyncio.subprocess.PIPE,
        )
        for i in range(2)
    ]
    for worker in workers:
        _, err = await asyncio.wait_for(worker.communicate(), timeout=120)
        assert worker.returncode == 0, err.decode()
    await assert_moved_and_kept(database_url)
    async with convstore.connect(database_url, migrate=False) as store:
        for name in ("w0", "w1"):
            assert await store.restore_snapshot(name) is not None


async def test_an_applications_revision_in_alembic_version_is_never_touched(
    database_url: str,
) -> None:
    """A database whose alembic_version holds an application's revision gets convstore's
    tables and its own version table; the application's revision stays as it was."""
    engine = open_engine(database_url, create=True)
    try:
        await query(engine, "CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)")
        await query(engine, "INSERT INTO alembic_version VALUES ('a1b2c3d4e5f6')")
        async with convstore.connect(engine) as store:
            await store.mark_interrupted("s1")
        assert await query(engine, "SELECT version_num FROM alembic_version") == [("a1b2c3d4e5f6",)]
        assert await query(engine, f"SELECT version_num FROM {VERSION_TABLE}") == [(HEAD,)]
    finally:
        await engine.dispose()


async def test_an_applications_revision_named_like_convstores_is_not_taken_for_its_own(
    database_url: str,
) -> None:
    """An application whose own revision is called 0002 (and has no convstore tables) keeps it:
    convstore creates its tables from the start."""
    engine = open_engine(database_url, create=True)
    try:
        await query(engine, "CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)")
        await query(engine, "INSERT INTO alembic_version VALUES ('0002')")
        async with convstore.connect(engine):
            pass
        assert await query(engine, "SELECT version_num FROM alembic_version") == [("0002",)]
        assert await tables(engine) >= set(TABLES)
    finally:
        await engine.dispose()


async def test_an_applications_table_of_convstores_name_is_refused_and_left_alone(
    database_url: str, backend: str
) -> None:
    """An application's own `sessions` table stops convstore with an error naming the table, the
    application's revision it found and the remedy for the backend; the table, its shape and its
    rows stay as they were."""
    engine = open_engine(database_url, create=True)
    try:
        await query(engine, "CREATE TABLE sessions (token VARCHAR(64) PRIMARY KEY, data TEXT)")
        await query(engine, "INSERT INTO sessions VALUES ('cookie', 'logged in')")
        await query(engine, "CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)")
        await query(engine, "INSERT INTO alembic_version VALUES ('a1b2c3d4e5f6')")
        with pytest.raises(convstore.SchemaError, match="tables named sessions") as raised:
            await convstore.connect(engine)
        assert "alembic_version holds 'a1b2c3d4e5f6'" in str(raised.value)
        remedy = "schema='convstore'" if backend == "postgresql" else "a database file of its own"
        assert remedy in str(raised.value)
        assert await tables(engine) == {"sessions", "alembic_version"}
        assert await query(engine, "SELECT token, data FROM sessions") == [("cookie", "logged in")]
    finally:
        await engine.dispose()


async def test_a_schema_keeps_convstore_beside_an_applications_tables(postgres_url: str) -> None:
    """With schema=, convstore's tables live in that schema beside an application's `sessions`
    and `messages` tables of the default schema, which keep their shape and rows."""
    engine = open_engine(postgres_url, create=True)
    try:
        await query(engine, "CREATE TABLE sessions (token TEXT PRIMARY KEY, data TEXT)")
        await query(engine, "CREATE TABLE messages (id SERIAL PRIMARY KEY, text TEXT)")
        await query(engine, "INSERT INTO sessions VALUES ('cookie', 'logged in')")
        async with convstore.connect(postgres_url, schema="convstore") as store:
            await store.save_snapshot("s1", [{"role": "user", "content": "hi"}])
            await store.record_attempt(attempt())
        assert await query(engine, "SELECT token, data FROM sessions") == [("cookie", "logged in")]
        assert await query(engine, "SELECT count(*) FROM messages") == [(0,)]
        assert await query(engine, "SELECT count(*) FROM convstore.messages") == [(1,)]
    finally:
        await engine.dispose()


def attempt() -> convstore.Attempt:
    """One failed attempt, for a retry_events row (whose id comes from a sequence)."""
    return rate_limited_attempt("c1", 1, "retry", delay_s=1.0)


async def objects_by_schema(engine: AsyncEngine) -> dict[str, set[str]]:
    """Every table, index and sequence outside the catalogs, by schema."""
    rows = await query(
        engine,
        "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relkind IN ('r', 'i', 'S') AND n.nspname NOT IN ('pg_catalog', "
        "'information_schema', 'pg_toast')",
    )
    found: dict[str, set[str]] = {}
    for schema, name in rows:
        found.setdefault(schema, set()).add(name)
    return found


async def test_a_schema_holds_every_table_index_sequence_and_the_version_table(
    postgres_url: str,
) -> None:
    """connect(schema=) creates the schema and puts every convstore object in it, the version
    table too; the default schema gets nothing, and the models match the migrated schema."""
    async with convstore.connect(postgres_url, schema="agents") as store:
        await store.record_attempt(attempt())

        def check(connection: Connection) -> None:
            config = alembic_config()
            config.attributes["connection"] = connection
            command.check(config)

        async with store.engine.connect() as conn:
            await conn.run_sync(check)
    engine = create_async_engine(resolve_url(postgres_url))
    try:
        found = await objects_by_schema(engine)
    finally:
        await engine.dispose()
    assert set(found) == {"agents"}
    assert found["agents"] >= {*TABLES, VERSION_TABLE, "pk_sessions", "retry_events_id_seq"}


async def test_each_schema_is_a_store_of_its_own(postgres_url: str) -> None:
    """Two schemas of one database hold two independent stores, and the default a third."""
    for schema, session in (("one", "s1"), ("two", "s2"), (None, "s0")):
        async with convstore.connect(postgres_url, schema=schema) as store:
            await store.save_snapshot(session, [])
    for schema, session in (("one", "s1"), ("two", "s2"), (None, "s0")):
        async with convstore.connect(postgres_url, schema=schema, migrate=False) as store:
            found = await store.list_interrupted_sessions()
            assert found == []
            assert await store.restore_snapshot(session) is not None
            others = {"s0", "s1", "s2"} - {session}
            for other in others:
                assert await store.restore_snapshot(other) is None


async def test_without_migrate_a_missing_schema_is_a_database_without_convstore_tables(
    postgres_url: str,
) -> None:
    """migrate=False on a schema that does not exist raises SchemaError and creates nothing."""
    with pytest.raises(convstore.SchemaError, match="has no convstore tables"):
        await convstore.connect(postgres_url, schema="missing", migrate=False)
    engine = create_async_engine(resolve_url(postgres_url))
    try:
        schemas = await query(engine, "SELECT 1 FROM pg_namespace WHERE nspname = 'missing'")
    finally:
        await engine.dispose()
    assert schemas == []


@pytest.mark.parametrize(
    "schema", ["Convstore", "1st", "pg_mine", "con-store", 'x"; DROP TABLE t; --', "a" * 64, ""]
)
async def test_a_schema_postgresql_cannot_take_is_refused_by_name(
    postgres_url: str, schema: str
) -> None:
    """A schema that is not a lowercase PostgreSQL name raises ConfigurationError naming it."""
    with pytest.raises(convstore.ConfigurationError, match="not a PostgreSQL schema name") as e:
        await convstore.connect(postgres_url, schema=schema)
    assert repr(schema) in str(e.value)


def test_a_schema_on_sqlite_is_refused_saying_sqlite_has_none(tmp_path: Path) -> None:
    """schema= on SQLite raises ConfigurationError explaining that SQLite has no schemas, before
    any file is made."""

    async def open_in_a_schema(url: str) -> None:
        async with convstore.connect(url, schema="convstore"):
            pass

    with pytest.raises(convstore.ConfigurationError, match="SQLite has no schemas"):
        asyncio.run(open_in_a_schema(f"sqlite:///{tmp_path / 'x.db'}"))
    assert list(tmp_path.iterdir()) == []


async def test_a_schema_for_an_engine_of_the_callers_is_refused(postgres_url: str) -> None:
    """schema= with a caller's engine, whose connections convstore cannot move, raises
    ConfigurationError saying how to make such an engine."""
    engine = create_async_engine(resolve_url(postgres_url))
    try:
        with pytest.raises(convstore.ConfigurationError, match="server_settings"):
            await convstore.connect(engine, schema="convstore")
    finally:
        await engine.dispose()


async def test_tables_whose_revision_was_overwritten_are_stamped_then_upgraded(
    database_url: str,
) -> None:
    """An older convstore's tables whose revision an application's alembic overwrote are
    refused, untouched, with the advice to stamp them; once stamped they upgrade with every row,
    and the application's revision stays."""
    await older_convstore_database(database_url)
    engine = open_engine(database_url, create=False)
    try:
        await query(engine, "UPDATE alembic_version SET version_num = 'a1b2c3d4e5f6'")
        with pytest.raises(convstore.SchemaError, match="`stamp`") as raised:
            await convstore.connect(engine)
        assert "alembic_version holds 'a1b2c3d4e5f6'" in str(raised.value)
        assert VERSION_TABLE not in await tables(engine)
        stamp = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "alembic", "-x", f"url={database_url}", "stamp", "0002"),
            cwd=ROOT,
            stderr=asyncio.subprocess.PIPE,
        )
        _, err = await asyncio.wait_for(stamp.communicate(), timeout=120)
        assert stamp.returncode == 0, err.decode()
        async with convstore.connect(engine) as store:
            snapshot = await store.restore_snapshot("kept")
            assert snapshot is not None
            assert snapshot.messages == [{"role": "user", "content": "from 0002"}]
        assert await query(engine, "SELECT version_num FROM alembic_version") == [("a1b2c3d4e5f6",)]
        assert await query(engine, f"SELECT version_num FROM {VERSION_TABLE}") == [(HEAD,)]
    finally:
        await engine.dispose()


async def test_workers_starting_together_in_a_new_schema_all_come_up(postgres_url: str) -> None:
    """Eight connects at once with a schema that does not exist yet create it and migrate once."""
    stores = await asyncio.gather(
        *(convstore.connect(postgres_url, schema="agents") for _ in range(8))
    )
    try:
        await asyncio.gather(*(store.save_snapshot(f"w{i}", []) for i, store in enumerate(stores)))
        versions = await query(stores[0].engine, f"SELECT count(*) FROM {VERSION_TABLE}")
        assert versions == [(1,)]
    finally:
        await asyncio.gather(*(store.close() for store in stores))
