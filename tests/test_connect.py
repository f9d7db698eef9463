"""Opening a store: URLs, engines, and clear errors for what cannot work."""

from __future__ import annotations

import asyncio
import importlib.util
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

import convstore


@pytest.mark.parametrize("scheme", ["sqlite", "sqlite+aiosqlite"])
async def test_both_sqlite_url_forms_open_a_file(tmp_path: Path, scheme: str) -> None:
    """``sqlite:///path`` and ``sqlite+aiosqlite:///path`` open the same kind of store."""
    path = tmp_path / "x.db"
    async with convstore.connect(f"{scheme}:///{path}") as store:
        assert store.engine.dialect.driver == "aiosqlite"
        await store.save_snapshot("s1", [])
    assert path.exists()


async def test_await_form_and_close(tmp_path: Path) -> None:
    """``store = await connect(url)`` works, and the store is usable as ``async with`` too."""
    store = await convstore.connect(f"sqlite:///{tmp_path / 'x.db'}")
    async with store:
        await store.save_snapshot("s1", [])
        assert await store.restore_snapshot("s1") is not None


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("mysql://localhost/db", "unsupported database URL scheme 'mysql'"),
        ("not a url", "cannot parse database URL"),
        ("sqlite+pysqlite:///x.db", "unsupported database URL scheme"),
    ],
)
async def test_unusable_urls_raise_configuration_error(url: str, fragment: str) -> None:
    """A URL convstore cannot use raises ConfigurationError saying what is wrong."""
    with pytest.raises(convstore.ConfigurationError, match=fragment):
        await convstore.connect(url)


@pytest.mark.parametrize("scheme", ["postgresql", "postgres", "postgresql+asyncpg"])
async def test_postgresql_url_forms(postgres_url: str, scheme: str) -> None:
    """``postgresql://``, ``postgres://`` and ``postgresql+asyncpg://`` all open asyncpg stores."""
    url = make_url(postgres_url).set(drivername=scheme).render_as_string(hide_password=False)
    async with convstore.connect(url) as store:
        assert store.engine.dialect.driver == "asyncpg"
        await store.save_snapshot("s1", [{"role": "user", "content": "hi"}])
        assert await store.restore_snapshot("s1") is not None


async def test_a_server_that_is_down_is_a_clear_error() -> None:
    """A PostgreSQL server that does not answer raises StorageError promptly, naming the server."""
    with pytest.raises(convstore.TransientStorageError, match=r"127\.0\.0\.1:1") as info:
        await asyncio.wait_for(convstore.connect("postgresql://nobody@127.0.0.1:1/none"), 30)
    assert info.value.__cause__ is not None


async def test_postgresql_without_asyncpg_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without the asyncpg driver a PostgreSQL URL raises ConfigurationError naming the extra."""
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *args: None if name == "asyncpg" else real_find_spec(name, *args),
    )
    with pytest.raises(convstore.ConfigurationError, match=r"convstore\[postgres\]"):
        await convstore.connect("postgresql://postgres@127.0.0.1/test")


async def test_workers_starting_together_on_an_empty_database_all_come_up(
    database_url: str,
) -> None:
    """Eight connects with migrate=True at once on an empty database migrate it exactly once."""
    stores = await asyncio.gather(*(convstore.connect(database_url) for _ in range(8)))
    try:
        await asyncio.gather(
            *(store.save_snapshot(f"w{i}", [{"n": i}]) for i, store in enumerate(stores))
        )
        async with stores[0].engine.connect() as conn:
            versions = (
                await conn.exec_driver_sql("SELECT count(*) FROM convstore_alembic_version")
            ).scalar()
        assert versions == 1
    finally:
        await asyncio.gather(*(store.close() for store in stores))


async def test_a_sqlite_too_old_for_returning_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Python built against SQLite older than 3.35 (no RETURNING) gets a ConfigurationError
    naming both versions, before any file is written."""
    monkeypatch.setattr(sqlite3, "sqlite_version_info", (3, 34, 1))
    monkeypatch.setattr(sqlite3, "sqlite_version", "3.34.1")
    path = tmp_path / "app.db"
    with pytest.raises(convstore.ConfigurationError, match=r"SQLite 3\.35\.0 or newer.*3\.34\.1"):
        await convstore.connect(f"sqlite:///{path}")
    assert not path.exists()


@pytest.mark.parametrize("bad", [-1, "15", None, float("nan")])
async def test_a_bad_reconnect_window_is_refused(tmp_path: Path, bad: object) -> None:
    """`reconnect_s` must be a number of seconds, 0 or more."""
    with pytest.raises(convstore.InvalidArgument, match="reconnect_s"):
        await convstore.connect(f"sqlite:///{tmp_path / 'app.db'}", reconnect_s=bad)  # type: ignore[arg-type]
