"""Alembic environment for convstore, started from alembic's async template.

The database URL comes from ``-x url=...``, else the ``CONVSTORE_DATABASE_URL`` variable.
A caller that already holds a connection passes it as ``config.attributes["connection"]``.
"""

from __future__ import annotations

import asyncio
import os
from logging.config import fileConfig

from alembic import context
from sqlalchemy import Connection

from convstore._storage.engine import create_engine, resolve_url
from convstore._storage.migrate import migration_lock
from convstore._storage.schema import Base
from convstore.exceptions import ConfigurationError

config = context.config

if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = Base.metadata


def database_url() -> str:
    """The URL to migrate, from ``-x url=...`` or ``CONVSTORE_DATABASE_URL``."""
    url = context.get_x_argument(as_dictionary=True).get("url") or os.environ.get(
        "CONVSTORE_DATABASE_URL"
    )
    if not url:
        raise ConfigurationError(
            "no database URL: pass `-x url=sqlite:///app.db` or set CONVSTORE_DATABASE_URL"
        )
    return url


def run_migrations_offline() -> None:
    """Write the migration SQL instead of running it."""
    context.configure(
        url=resolve_url(database_url()),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def do_run_migrations(connection: Connection) -> None:
    """Run the migrations on a connection, inside the migration lock."""
    with migration_lock(connection):
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=True,
            compare_type=True,
            # DDL runs inside the migration lock's transaction, on SQLite too.
            transactional_ddl=True,
        )
        with context.begin_transaction():
            context.run_migrations()


async def run_async_migrations() -> None:
    """Open a connection of our own and migrate through it."""
    engine = create_engine(resolve_url(database_url()), single_use=True)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(do_run_migrations)
    finally:
        await engine.dispose()


def run_migrations_online() -> None:
    """Migrate through the caller's connection, or one of our own."""
    connection = config.attributes.get("connection")
    if connection is None:
        asyncio.run(run_async_migrations())
    else:
        do_run_migrations(connection)


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
