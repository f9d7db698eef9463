"""Turning a database URL into a configured async engine."""

from __future__ import annotations

import importlib.util
import os
import sqlite3
import time
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry, NullPool, PoolProxiedConnection, StaticPool

from convstore._storage.placement import check_schema, remember_schema, search_path
from convstore.exceptions import ConfigurationError

# How long a SQLite write waits for another connection's write to finish before failing.
SQLITE_BUSY_TIMEOUT_MS = 30_000

# How long connecting to a database server may take before it counts as unreachable, and how
# long one statement may wait for an answer: a server that stops answering (a host gone, a cut
# network) refuses nothing, and would otherwise leave the caller waiting for TCP to give up.
CONNECT_TIMEOUT_S = 10
COMMAND_TIMEOUT_S = 60

_SET_UP = "convstore_set_up"
_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "sqlite+aiosqlite": "sqlite+aiosqlite",
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
    "postgresql+asyncpg": "postgresql+asyncpg",
}


def resolve_url(url: str | URL) -> URL:
    """The URL with the async driver convstore uses for its backend."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ConfigurationError(
            f"cannot parse database URL {str(url)!r}: expected e.g. 'sqlite:///app.db'"
        ) from exc
    driver = _DRIVERS.get(parsed.drivername)
    if driver is None:
        raise ConfigurationError(
            f"unsupported database URL scheme {parsed.drivername!r}: use "
            "'sqlite:///path/to/file.db' or 'postgresql://user@host/database'"
        )
    if driver == "postgresql+asyncpg" and importlib.util.find_spec("asyncpg") is None:
        raise ConfigurationError(
            "PostgreSQL needs the asyncpg driver: pip install 'convstore[postgres]'"
        )
    return parsed.set(drivername=driver)


def is_sqlite_memory(url: URL) -> bool:
    """Whether a SQLite URL names an in-memory database, which lives in one connection."""
    database = url.database or ""
    return database in ("", ":memory:") or url.query.get("mode") == "memory"


def sqlite_read_only_reason(url: URL) -> str | None:
    """Why a SQLite file cannot be written, if its file system is mounted read-only."""
    if url.get_backend_name() != "sqlite" or is_sqlite_memory(url) or url.query.get("uri"):
        return None
    directory = Path(url.database or "").expanduser().resolve().parent
    try:
        read_only = bool(os.statvfs(directory).f_flag & os.ST_RDONLY)
    except OSError:
        return None
    if not read_only:
        return None
    return (
        f"the file system holding {str(directory)!r} is mounted read-only, and SQLite must "
        "write its -wal and -shm files next to the database"
    )


def check_sqlite_path(url: URL) -> None:
    """Raise ConfigurationError when a SQLite file's directory does not exist."""
    if is_sqlite_memory(url) or url.query.get("uri"):
        return
    directory = Path(url.database or "").expanduser().resolve().parent
    if directory.exists() and not directory.is_dir():
        raise ConfigurationError(
            f"cannot create SQLite database {url.database!r}: {str(directory)!r} is a file, "
            "not a directory"
        )
    if not directory.is_dir():
        raise ConfigurationError(
            f"cannot create SQLite database {url.database!r}: directory {str(directory)!r} "
            "does not exist"
        )


#: The mode of a new SQLite database file: conversations are private, so only its owner may
#: read it. SQLite gives the -wal and -shm files it makes beside it the same mode.
PRIVATE_FILE_MODE = 0o600


def create_private_file(path: Path) -> None:
    """Create an empty database file that only its owner may read; leave an existing one, and
    its mode, alone. SQLite takes an empty file as a new database."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
    except FileExistsError:
        return
    except OSError:
        return  # SQLite, opening the path itself, names what is wrong
    os.close(fd)


def create_engine(url: URL, *, single_use: bool = False, schema: str | None = None) -> AsyncEngine:
    """A configured engine for a URL from `resolve_url`; on PostgreSQL, `schema` is where every
    name its connections use lives (see placement.py)."""
    schema = check_schema(url, schema)
    options: dict[str, Any] = {
        # Every convstore operation ends its own transaction, so the pool's rollback on check-in
        # would only cost a round trip to the driver's thread.
        "pool_reset_on_return": None,
    }
    if single_use:
        options["poolclass"] = NullPool
    if url.get_backend_name() == "postgresql":
        options["connect_args"] = {
            "timeout": CONNECT_TIMEOUT_S,
            "command_timeout": COMMAND_TIMEOUT_S,
        }
        if schema is not None:
            # Sent with the connection's start-up packet: no round trip, and no statement on
            # the connection ever runs without it.
            options["connect_args"]["server_settings"] = {"search_path": search_path(schema)}
        # A connection the server closed while it sat in the pool (a restart, a failover) is
        # found and replaced as it is handed out, before anything is sent on it. The hot paths
        # keep their own connections out of the pool, and check those without a round trip.
        options["pool_pre_ping"] = True
        # JSON columns reach convstore's codec as text; parsing them here would be wasted work.
        options["json_deserializer"] = str
    elif is_sqlite_memory(url):
        if not single_use:
            options["poolclass"] = StaticPool
    elif url.get_backend_name() == "sqlite" and not url.query.get("uri"):
        check_sqlite_version()  # before the file is made
        create_private_file(Path(url.database or "").expanduser())
    engine = create_async_engine(url, **options)
    configure_engine(engine)
    remember_schema(engine.sync_engine, schema)
    return engine


#: The oldest SQLite convstore runs on: 3.35 brought RETURNING, which the hot paths use.
MIN_SQLITE = (3, 35, 0)


def check_sqlite_version() -> None:
    """Raise ConfigurationError if the sqlite3 module's SQLite is older than `MIN_SQLITE`."""
    if sqlite3.sqlite_version_info < MIN_SQLITE:
        raise ConfigurationError(
            f"convstore needs SQLite {'.'.join(map(str, MIN_SQLITE))} or newer (for RETURNING); "
            f"this Python's sqlite3 module uses SQLite {sqlite3.sqlite_version}: use a Python "
            "built against a newer SQLite, or PostgreSQL"
        )


def configure_engine(engine: AsyncEngine) -> None:
    """Make every connection the engine hands out set up for convstore; safe to call again."""
    if engine.dialect.name == "postgresql":
        if engine.dialect.driver != "asyncpg":
            raise ConfigurationError(
                f"PostgreSQL engines must use the asyncpg driver, not {engine.dialect.driver!r}: "
                "create it from a 'postgresql+asyncpg://' URL"
            )
        return
    if engine.dialect.name != "sqlite":
        raise ConfigurationError(
            f"unsupported database {engine.dialect.name!r}: convstore runs on SQLite and PostgreSQL"
        )
    if engine.dialect.driver != "aiosqlite":
        raise ConfigurationError(
            f"SQLite engines must use the aiosqlite driver, not {engine.dialect.driver!r}: "
            "create it from a 'sqlite+aiosqlite://' URL"
        )
    check_sqlite_version()
    # At check-out rather than at connect, so that an engine handed to convstore after it opened
    # connections gets them set up too.
    if not event.contains(engine.sync_engine, "checkout", _set_up_sqlite):
        event.listen(engine.sync_engine, "checkout", _set_up_sqlite)


def _set_up_sqlite(
    dbapi_connection: Any, record: ConnectionPoolEntry, proxy: PoolProxiedConnection
) -> None:
    if record.info.get(_SET_UP):
        return
    # Autocommit at the driver: convstore starts each write with BEGIN IMMEDIATE itself, so the
    # stdlib's implicit deferred BEGIN never takes a lock that it later has to upgrade.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA journal_mode")
        if str(cursor.fetchone()[0]).lower() != "wal":
            _switch_to_wal(cursor)
    finally:
        cursor.close()
    record.info[_SET_UP] = True


def _switch_to_wal(cursor: Any) -> None:
    """Put the database in WAL mode, waiting out other connections as a write would.

    The switch needs the database to itself, and SQLite refuses it at once, without its busy
    handler, while another connection holds a lock: workers that open a new database together
    meet exactly that. The mode is the file's, so once one of them has switched, the others
    find it done.
    """
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    pause = 0.005
    while True:
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() + pause > deadline:
                raise
        time.sleep(pause)  # on the connection's own thread, not the event loop's
        pause = min(pause * 2, 0.1)


def safe_url(url: URL) -> str:
    """The URL as it may appear in messages and logs: without its password."""
    return url.render_as_string(hide_password=True)
