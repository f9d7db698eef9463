"""Opening a store: URLs, engines, and clear errors for what cannot work."""

from __future__ import annotations

from pathlib import Path

import pytest

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


async def test_missing_directory_is_named(tmp_path: Path) -> None:
    """A SQLite path in a directory that does not exist raises an error naming the directory."""
    missing = tmp_path / "no" / "such"
    with pytest.raises(convstore.ConfigurationError, match="does not exist") as info:
        await convstore.connect(f"sqlite:///{missing / 'app.db'}")
    assert str(missing) in str(info.value)
    assert not missing.exists()


async def test_a_file_that_is_not_sqlite_is_named(tmp_path: Path) -> None:
    """Opening a file that is not a SQLite database raises StorageError saying so."""
    path = tmp_path / "notes.txt"
    path.write_bytes(b"these are not the pages you are looking for\n" * 200)
    with pytest.raises(convstore.StorageError, match="not a SQLite database") as info:
        await convstore.connect(f"sqlite:///{path}")
    assert info.value.__cause__ is not None
    assert path.read_bytes().startswith(b"these are not")
