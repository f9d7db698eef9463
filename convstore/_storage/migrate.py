"""Bringing a database to the schema this convstore needs, with the bundled alembic migrations.

Checking a database's revision needs no alembic: `REVISIONS` names the bundled ones (a test
holds it to the scripts), and the revision is one row of convstore's own version table
(placement.py). alembic itself is imported only to migrate.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from convstore._storage.placement import Found, enter_schema, find_revision
from convstore._storage.revisions import REVISIONS
from convstore.exceptions import ConfigurationError, SchemaError

__all__ = ["REVISIONS"]

if TYPE_CHECKING:
    from alembic.config import Config

UPGRADE_HINT = "run `alembic upgrade head` or connect with migrate=True"


def migrations_dir() -> Path:
    """The alembic script directory: packaged in a wheel, or ``migrations/`` in a checkout."""
    package = Path(__file__).resolve().parent.parent
    for candidate in (package / "_migrations", package.parent / "migrations"):
        if (candidate / "env.py").is_file():
            return candidate
    raise ConfigurationError(
        f"convstore's migrations are missing from {package}: reinstall convstore"
    )


def alembic_config() -> Config:
    """An alembic configuration for the bundled migrations, without an ini file."""
    from alembic.config import Config

    # The stream alembic prints to, as it is now: its default is the one at alembic's import.
    config = Config(stdout=sys.stdout)
    config.set_main_option("script_location", str(migrations_dir()).replace("%", "%%"))
    config.set_main_option("path_separator", "os")
    return config


def head_revision() -> str:
    """The newest revision this convstore knows."""
    return REVISIONS[-1]


@cache
def known_revisions() -> frozenset[str]:
    """Every revision this convstore knows."""
    return frozenset(REVISIONS)


def found_revision(connection: Connection) -> Found:
    """The database's convstore revision and the version table that holds it."""
    return find_revision(connection, known_revisions())


async def read_revision(connection: AsyncConnection) -> Found:
    """The database's convstore revision, read outside the migration lock; the transaction is
    ended. Read again when the read fails: another process may have moved an older convstore's
    revision out of alembic_version, and dropped that table, between its statements."""
    for _ in range(2):
        with suppress(DBAPIError):
            return await _read_once(connection)
    return await _read_once(connection)


async def _read_once(connection: AsyncConnection) -> Found:
    try:
        return await connection.run_sync(found_revision)
    finally:
        await connection.rollback()


def current_revision(connection: Connection) -> str | None:
    """The revision the database is at, or None for a database without convstore's tables."""
    return found_revision(connection).revision


def check_revision(current: str | None, *, migrate: bool) -> bool:
    """Whether the database needs an upgrade; raise SchemaError when it cannot be used as it is."""
    head = head_revision()
    if current == head:
        return False
    if current is not None and current not in known_revisions():
        raise SchemaError(
            f"the database is at revision {current!r}, which this version of convstore does "
            f"not know (its newest is {head!r}): it was migrated by a newer convstore"
        )
    if not migrate:
        raise SchemaError(behind(current))
    return True


def behind(
    current: str | None, *, database: str = "the database", remedy: str = UPGRADE_HINT
) -> str:
    """What to tell a user whose database is at `current`, behind this convstore's newest."""
    found = "has no convstore tables" if current is None else f"is at revision {current!r}"
    return f"{database} {found}; convstore needs revision {head_revision()!r}: {remedy}"


# Alembic keeps the running migration's context in a module global, so two migrations in one
# process must not overlap, even on different databases: one asyncio lock per event loop keeps
# a loop's tasks in turn, and a thread lock keeps event loops in other threads out.
_ALEMBIC_IN_USE = threading.Lock()
_LOOP_LOCKS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
    weakref.WeakKeyDictionary()
)


async def ensure_schema(engine: AsyncEngine, *, migrate: bool) -> None:
    """Check the database's revision and, with `migrate`, upgrade it to the newest."""
    async with engine.connect() as connection:
        found = await read_revision(connection)
        # A revision an older convstore recorded in alembic_version is moved by an upgrade; the
        # tables are the same, so without `migrate` the database is used as it is.
        if check_revision(found.revision, migrate=migrate) or (migrate and found.legacy):
            await run_alembic(connection, "upgrade", "head")


async def run_alembic(
    connection: AsyncConnection, action: Literal["upgrade", "downgrade"], target: str
) -> None:
    """Run alembic's `action` to revision `target` through the connection, taking turns with
    every other migration in this process."""
    loop = asyncio.get_running_loop()
    async with _LOOP_LOCKS.setdefault(loop, asyncio.Lock()):
        await connection.run_sync(_run_command, action, target)


def _run_command(connection: Connection, action: str, target: str) -> None:
    from alembic import command

    config = alembic_config()
    config.attributes["connection"] = connection
    with _ALEMBIC_IN_USE:
        getattr(command, action)(config, target)


# Any fixed number: the key of the PostgreSQL advisory lock that migrations take.
POSTGRES_MIGRATION_LOCK = 0x636F6E7673746F  # "convsto"


@contextmanager
def migration_lock(connection: Connection, schema: str | None = None) -> Iterator[None]:
    """Hold a database-wide lock while migrations run, so concurrent upgrades take turns, and
    create `schema` (PostgreSQL) if it is missing.

    Alembic reads the current revision inside the lock, so a worker that waited finds the schema
    already upgraded and does nothing. The transaction is committed on success.
    """
    dialect = connection.dialect.name
    if dialect == "postgresql":
        with _committed(connection):
            # Held until the transaction ends; DDL is transactional on PostgreSQL.
            connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({POSTGRES_MIGRATION_LOCK})")
            enter_schema(connection, schema)
            yield
        return
    if dialect != "sqlite":
        raise ConfigurationError(f"no migration lock for dialect {dialect!r}")
    # Batch migrations rebuild tables; foreign key enforcement would cascade-delete the rows that
    # reference them. The pragma is a no-op inside a transaction, so it goes first.
    connection.exec_driver_sql("PRAGMA foreign_keys = OFF")
    try:
        with _committed(connection):
            connection.exec_driver_sql("BEGIN IMMEDIATE")
            yield
            broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
            if broken:
                raise SchemaError(f"migration left rows with broken foreign keys: {broken[:5]}")
    finally:
        connection.exec_driver_sql("PRAGMA foreign_keys = ON")
        connection.commit()


@contextmanager
def _committed(connection: Connection) -> Iterator[None]:
    """Commit the connection's transaction if the block succeeds, else roll it back."""
    committed = False
    try:
        yield
        connection.commit()
        committed = True
    finally:
        if not committed:
            connection.rollback()
