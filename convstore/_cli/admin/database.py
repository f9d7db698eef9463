"""Opening the database a command names, and bringing it to a revision."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Literal

from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine

from convstore._storage import migrate as migrations
from convstore._storage.engine import (
    check_sqlite_path,
    create_engine,
    is_sqlite_memory,
    resolve_url,
    safe_url,
)
from convstore._storage.errors import storage_errors
from convstore._storage.placement import Found, check_schema
from convstore._storage.store import DEFAULT_MAX_MESSAGES, Store, connect
from convstore.exceptions import ConfigurationError, InvalidArgument, SchemaError


def display_url(url: URL) -> str:
    """The URL as the user wrote it, more or less: no driver name and no password."""
    return safe_url(url.set(drivername=url.get_backend_name()))


def open_engine(
    url: str, *, create: bool, single_use: bool = False, schema: str | None = None
) -> AsyncEngine:
    """An engine for `url`, in `schema` on PostgreSQL; unless `create`, a SQLite file that does
    not exist is an error.

    Commands that only read or delete must not leave an empty database behind a mistyped path.
    """
    resolved = resolve_url(url)
    check_schema(resolved, schema)
    check_sqlite_path(resolved)
    if not create and resolved.get_backend_name() == "sqlite" and not is_sqlite_memory(resolved):
        path = Path(resolved.database or "").expanduser()
        if not resolved.query.get("uri") and not path.is_file():
            raise ConfigurationError(
                f"no SQLite database at {str(path)!r}: pass --url or set CONVSTORE_DATABASE_URL, "
                "or create it with `convstore upgrade`"
            )
    return create_engine(resolved, single_use=single_use, schema=schema)


@asynccontextmanager
async def open_store(
    url: str,
    *,
    migrate: bool,
    max_messages: int = DEFAULT_MAX_MESSAGES,
    schema: str | None = None,
) -> AsyncIterator[Store]:
    """A store on `url` (in `schema` on PostgreSQL); with `migrate` the database is created or
    upgraded, else it must be at the newest revision already."""
    engine = open_engine(url, create=migrate, schema=schema)
    try:
        if not migrate:
            await require_head(engine)
        async with connect(engine, migrate=migrate, max_messages=max_messages) as store:
            yield store
    finally:
        await engine.dispose()


# -- migrations --------------------------------------------------------------------------------


async def current_revision(engine: AsyncEngine) -> str | None:
    """The revision the database is at; None when it has no convstore tables."""
    with storage_errors("connect", display_url(engine.url)):
        async with engine.connect() as conn:
            found = await migrations.read_revision(conn)
    return found.revision


async def placement(engine: AsyncEngine) -> tuple[str | None, Found]:
    """The schema convstore's tables are in (PostgreSQL; None on SQLite, or for a schema that
    does not exist yet), and its revision and the version table that holds it."""

    schema = None
    with storage_errors("connect", display_url(engine.url)):
        async with engine.connect() as conn:
            if conn.dialect.name == "postgresql":
                schema = (await conn.exec_driver_sql("SELECT current_schema()")).scalar()
                await conn.rollback()
            found = await migrations.read_revision(conn)
    return schema, found


async def require_head(engine: AsyncEngine) -> None:
    """Raise SchemaError, naming the command that fixes it, unless the database is up to date."""
    current = await current_revision(engine)
    if current == migrations.head_revision():
        return
    migrations.check_revision(current, migrate=True)  # raises for a newer convstore's database
    raise SchemaError(
        migrations.behind(
            current,
            database=f"the database {display_url(engine.url)}",
            remedy="run `convstore upgrade`",
        )
    )


async def migrate(
    engine: AsyncEngine, action: Literal["upgrade", "downgrade"], target: str
) -> tuple[str | None, str | None]:
    """Run alembic's upgrade or downgrade to `target`; the revisions before and after."""
    with storage_errors(action, display_url(engine.url)):
        async with engine.connect() as conn:
            # The migration lock's first statement must run outside a transaction.
            before = (await migrations.read_revision(conn)).revision
            migrations.check_revision(before, migrate=True)  # refuses a newer convstore's database
            from alembic.util import CommandError  # alembic is imported only to migrate

            try:
                await migrations.run_alembic(conn, action, target)
            except CommandError as exc:
                raise InvalidArgument(f"cannot {action} to {target!r}: {exc}") from exc
            after = await conn.run_sync(migrations.current_revision)
            await conn.rollback()
    return before, after
