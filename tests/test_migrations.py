"""The bundled migrations: programmatic upgrades, the alembic command line and drift."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import Connection

import convstore
from convstore._storage.migrate import alembic_config, head_revision

ROOT = Path(__file__).resolve().parent.parent


def alembic(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the alembic command line from the repository root."""
    return subprocess.run(
        [sys.executable, "-m", "alembic", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        check=False,
    )


def schema_error(url: str) -> str | None:
    """What `connect(migrate=False)` says of the database at `url`, or None when it opens."""

    async def probe() -> str | None:
        try:
            async with convstore.connect(url, migrate=False) as store:
                await store.save_snapshot("s1", [{"role": "user", "content": "back"}])
                assert await store.restore_snapshot("s1") is not None
        except convstore.SchemaError as exc:
            return str(exc)
        return None

    return asyncio.run(probe())


def test_alembic_upgrade_downgrade_upgrade_and_check(database_url: str) -> None:
    """`alembic upgrade head`, `check`, `downgrade base` and `upgrade head` work from the root."""
    for args in (["upgrade", "head"], ["check"], ["downgrade", "base"]):
        result = alembic("-x", f"url={database_url}", *args)
        assert result.returncode == 0, result.stderr
    assert "has no convstore tables" in (schema_error(database_url) or "")
    result = alembic("upgrade", "head", env={"CONVSTORE_DATABASE_URL": database_url})
    assert result.returncode == 0, result.stderr
    result = alembic("current", env={"CONVSTORE_DATABASE_URL": database_url})
    assert head_revision() in result.stdout
    assert schema_error(database_url) is None


def test_alembic_without_a_url_says_how_to_give_one() -> None:
    """Running alembic with no URL fails naming the two ways to pass one."""
    env = {k: v for k, v in os.environ.items() if k != "CONVSTORE_DATABASE_URL"}
    result = subprocess.run(
        [sys.executable, "-m", "alembic", "current"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert result.returncode != 0
    assert "-x url=" in result.stderr
    assert "CONVSTORE_DATABASE_URL" in result.stderr


async def test_models_and_migrations_do_not_drift(store: convstore.Store) -> None:
    """Autogenerate finds nothing to change between the models and the migrated database."""

    def check(connection: Connection) -> None:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.check(config)

    async with store.engine.connect() as conn:
        await conn.run_sync(check)


async def test_connect_migrates_an_empty_database(database_url: str) -> None:
    """`connect` brings an empty database to the newest revision by default."""
    async with convstore.connect(database_url) as store, store.engine.connect() as conn:
        version = (
            await conn.exec_driver_sql("SELECT version_num FROM convstore_alembic_version")
        ).scalar()
    assert version == head_revision()


async def test_connect_without_migrate_refuses_an_empty_database(database_url: str) -> None:
    """With migrate=False an empty database raises SchemaError naming the command that fixes it."""
    with pytest.raises(convstore.SchemaError, match="alembic upgrade head"):
        await convstore.connect(database_url, migrate=False)


async def test_connect_without_migrate_accepts_a_current_database(database_url: str) -> None:
    """With migrate=False a database at the newest revision opens normally."""
    async with convstore.connect(database_url):
        pass
    async with convstore.connect(database_url, migrate=False) as store:
        await store.mark_interrupted("s1")
        assert len(await store.list_interrupted_sessions()) == 1


async def test_a_database_from_a_newer_convstore_is_refused(database_url: str) -> None:
    """A revision this convstore does not know raises SchemaError even with migrate=True."""
    async with convstore.connect(database_url) as store, store.engine.begin() as conn:
        await conn.exec_driver_sql(
            "UPDATE convstore_alembic_version SET version_num = 'from_the_future'"
        )
    with pytest.raises(convstore.SchemaError, match="newer convstore"):
        await convstore.connect(database_url)


async def test_an_older_database_is_upgraded_with_its_data(store: convstore.Store) -> None:
    """A database at revision 0001 holding sessions is brought to the newest, data intact."""
    await store.save_snapshot("kept", [{"role": "user", "content": "from revision 0001"}])
    await store.mark_interrupted("kept", reason="before the upgrade")

    def downgrade(connection: Connection) -> None:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.downgrade(config, "0001")

    async with store.engine.connect() as conn:
        await conn.run_sync(downgrade)
    with pytest.raises(convstore.SchemaError, match="revision '0001'"):
        await convstore.connect(store.engine, migrate=False)
    async with convstore.connect(store.engine) as upgraded:
        snap = await upgraded.restore_snapshot("kept")
        assert snap is not None
        assert snap.messages == [{"role": "user", "content": "from revision 0001"}]
        assert snap.interrupt_reason == "before the upgrade"
        async with upgraded.running("kept"):
            pass


async def test_revision_0003_describes_the_messages_already_stored(database_url: str) -> None:
    """A database at 0002 holding an agent conversation upgrades in place: every row is kept,
    and the next appends trim it under the pair-safe cap without reading old bodies."""
    from datetime import UTC, datetime

    from conversations import calls, results, system, user
    from sqlalchemy import insert

    from convstore._cli.admin.database import migrate, open_engine
    from convstore._storage.schema import messages, sessions

    stored = [
        system("anthropic"),
        user("anthropic", "go"),
        *calls("anthropic", ["a"]),
        *results("anthropic", ["a"]),
    ]
    engine = open_engine(database_url, create=True)
    try:
        await migrate(engine, "upgrade", "0002")
        now = datetime.now(UTC)
        async with engine.begin() as conn:
            await conn.execute(
                insert(sessions).values(
                    session_id="old",
                    created_at=now,
                    saved_at=now,
                    message_count=len(stored),
                    extra={},
                )
            )
            await conn.execute(
                insert(messages),
                [
                    {"session_id": "old", "seq": seq, "role": m.get("role"), "body": m}
                    for seq, m in enumerate(stored)
                ],
            )
    finally:
        await engine.dispose()
    async with convstore.connect(database_url, max_messages=4) as store:
        snapshot = await store.restore_snapshot("old")
        assert snapshot is not None
        assert snapshot.messages == stored
        more = [*calls("anthropic", ["b"]), *results("anthropic", ["b"])]
        await store.append_messages("old", more)
        snapshot = await store.restore_snapshot("old")
        assert snapshot is not None
        # The system prompt stays, and the window starts with the user turn, whole exchanges after.
        assert snapshot.messages == [stored[0], stored[1], *more]
        assert convstore.check_conversation(snapshot.messages) == []


async def test_revision_0006_keeps_unknown_durations_and_a_downgrade_stores_zero(
    store: convstore.Store,
) -> None:
    """An attempt of unknown duration is stored as NULL; downgraded below 0006 it becomes 0, and
    the upgrade back keeps every row."""
    from datetime import UTC, datetime

    from convstore._cli.admin.database import migrate

    known, unknown = [
        convstore.Attempt(
            call_id=call,
            session_id=None,
            operation="op",
            attempt=1,
            outcome=convstore.Outcome.RETRY,
            error_type=convstore.ErrorType.RETRYABLE,
            error_class="builtins.TimeoutError",
            error_message=None,
            status_code=None,
            delay_s=1.0,
            retry_after_s=None,
            elapsed_s=elapsed,
            created_at=datetime.now(UTC),
        )
        for call, elapsed in (("known", 0.25), ("unknown", None))
    ]
    await store.record_attempt(known)
    await store.record_attempt(unknown)

    async def durations() -> list[tuple[str, float | None]]:
        async with store.engine.connect() as conn:
            query = "SELECT call_id, elapsed_s FROM retry_events ORDER BY call_id"
            rows = [tuple(row) for row in await conn.exec_driver_sql(query)]
            return [(row[0], row[1]) for row in rows]

    assert await durations() == [("known", 0.25), ("unknown", None)]
    await migrate(store.engine, "downgrade", "0005")
    assert await durations() == [("known", 0.25), ("unknown", 0.0)]
    await migrate(store.engine, "upgrade", "head")
    assert await durations() == [("known", 0.25), ("unknown", 0.0)]


def test_the_revisions_convstore_names_are_its_scripts() -> None:
    """`REVISIONS`, which lets connect check a database without alembic, lists the bundled
    scripts oldest first."""
    from alembic.script import ScriptDirectory

    from convstore._storage.migrate import REVISIONS

    script = ScriptDirectory.from_config(alembic_config())
    assert tuple(rev.revision for rev in reversed(list(script.walk_revisions()))) == REVISIONS


def test_connect_to_a_current_database_does_not_import_alembic(tmp_path: Path) -> None:
    """alembic is imported to migrate, not to open a database already at the newest revision."""
    url = f"sqlite:///{tmp_path / 'current.db'}"
    code = (
        "import asyncio, sys, convstore\n"
        "async def main(url):\n"
        "    async with convstore.connect(url) as store:\n"
        "        await store.save_snapshot('s', [])\n"
        "asyncio.run(main(sys.argv[1]))\n"
        "print('alembic' in sys.modules)\n"
    )
    first = subprocess.run([sys.executable, "-c", code, url], capture_output=True, text=True)
    second = subprocess.run([sys.executable, "-c", code, url], capture_output=True, text=True)
    assert (first.stdout.strip(), second.stdout.strip()) == ("True", "False"), second.stderr


def test_alembic_from_the_checkout_migrates_into_a_schema(postgres_url: str) -> None:
    """`alembic -x schema=...` from the root puts the tables and the version table in that
    schema, which connect(schema=...) then opens; the offline SQL creates and enters it."""
    result = alembic("-x", f"url={postgres_url}", "-x", "schema=agents", "upgrade", "head")
    assert result.returncode == 0, result.stderr
    result = alembic("-x", f"url={postgres_url}", "-x", "schema=agents", "current")
    assert head_revision() in result.stdout
    assert head_revision() not in alembic("-x", f"url={postgres_url}", "current").stdout

    async def probe() -> None:
        async with convstore.connect(postgres_url, schema="agents", migrate=False) as store:
            await store.save_snapshot("s1", [])

    asyncio.run(probe())
    # Offline SQL as far as 0002: 0003 reads the stored messages, which offline mode cannot.
    offline = alembic(
        "-x", f"url={postgres_url}", "-x", "schema=agents", "upgrade", "0002", "--sql"
    )
    assert offline.returncode == 0, offline.stderr
    assert 'SET search_path TO "agents"' in offline.stdout
    assert "CREATE TABLE convstore_alembic_version" in offline.stdout


def test_alembic_from_the_checkout_refuses_a_schema_on_sqlite(tmp_path: Path) -> None:
    """`-x schema=...` with a SQLite URL fails saying SQLite has no schemas."""
    url = f"sqlite:///{tmp_path / 'app.db'}"
    result = alembic("-x", f"url={url}", "-x", "schema=agents", "upgrade", "head")
    assert result.returncode != 0
    assert "SQLite has no schemas" in result.stderr
