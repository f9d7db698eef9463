"""Alembic environment for convstore, started from alembic's async template.

The database URL comes from ``-x url=...``, else the ``CONVSTORE_DATABASE_URL`` variable, else
the ini section's ``sqlalchemy.url``; a PostgreSQL schema from ``-x schema=...``, else
``CONVSTORE_SCHEMA``, else the section's ``schema``. A caller that already holds a connection
passes it as ``config.attributes["connection"]`` (and may pass ``config.attributes["schema"]``).

The revision is recorded in convstore's own version table, never in ``alembic_version``, so an
application's alembic and convstore's share a database without seeing each other's revisions.
"""

from __future__ import annotations

import asyncio
import os
from logging.config import fileConfig

from alembic import context
from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError

from convstore._storage.engine import create_engine, resolve_url
from convstore._storage.migrate import known_revisions, migration_lock
from convstore._storage.placement import (
    check_schema,
    claim,
    schema_of,
    search_path,
)
from convstore._storage.revisions import VERSION_TABLE
from convstore._storage.schema import Base
from convstore.exceptions import ConfigurationError, SchemaError

config = context.config

# An application's alembic.ini may have a [convstore] section and no logging configuration.
if (
    config.config_file_name is not None
    and config.attributes.get("configure_logger", True)
    and config.file_config.has_section("loggers")
):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = Base.metadata


def database_url() -> str:
    """The URL to migrate, from ``-x url=...``, ``CONVSTORE_DATABASE_URL`` or the ini."""
    url = (
        context.get_x_argument(as_dictionary=True).get("url")
        or os.environ.get("CONVSTORE_DATABASE_URL")
        or config.get_main_option("sqlalchemy.url")
    )
    if not url:
        raise ConfigurationError(
            "no database URL: pass `-x url=sqlite:///app.db` or set CONVSTORE_DATABASE_URL"
        )
    return url


def schema_option() -> str | None:
    """The PostgreSQL schema asked for: ``-x schema=...``, ``CONVSTORE_SCHEMA`` or the ini."""
    return (
        context.get_x_argument(as_dictionary=True).get("schema")
        or os.environ.get("CONVSTORE_SCHEMA")
        or config.get_main_option("schema")
        or None
    )


def run_migrations_offline() -> None:
    """Write the migration SQL instead of running it (an older convstore's revision in
    alembic_version is moved only by an upgrade run on the database)."""
    url = resolve_url(database_url())
    schema = check_schema(url, schema_option())
    context.configure(
        url=url,
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
        version_table=VERSION_TABLE,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        if schema is not None:
            context.execute(f"CREATE SCHEMA IF NOT EXISTS {search_path(schema)}")
            context.execute(f"SET search_path TO {search_path(schema)}")
        context.run_migrations()


def do_run_migrations(connection: Connection, schema: str | None = None) -> None:
    """Run the migrations on a connection, inside the migration lock, in `schema`."""
    with migration_lock(connection, schema):
        # In the lock's transaction: an older convstore's revision moves to VERSION_TABLE
        # together with the migrations that follow, or not at all.
        conflict = claim(connection, known_revisions())
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=True,
            compare_type=True,
            version_table=VERSION_TABLE,
            # DDL runs inside the migration lock's transaction, on SQLite too.
            transactional_ddl=True,
        )
        try:
            with context.begin_transaction():
                context.run_migrations()
        except DBAPIError as exc:
            # Rolled back with the lock's transaction: the table is left as it was.
            if conflict is None or not conflict.explains(exc):
                raise
            raise SchemaError(conflict.message()) from exc


async def run_async_migrations() -> None:
    """Open a connection of our own and migrate through it."""
    schema = schema_option()
    engine = create_engine(resolve_url(database_url()), single_use=True, schema=schema)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(do_run_migrations, schema)
    finally:
        await engine.dispose()


def run_migrations_online() -> None:
    """Migrate through the caller's connection, or one of our own."""
    connection = config.attributes.get("connection")
    if connection is None:
        asyncio.run(run_async_migrations())
    else:
        schema = config.attributes.get("schema") or schema_of(connection.engine)
        do_run_migrations(connection, schema)


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
