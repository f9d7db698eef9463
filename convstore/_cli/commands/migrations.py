"""`upgrade`, `downgrade`, `current` and `check`: the database's revision."""

from __future__ import annotations

import argparse
from typing import Literal

from convstore._cli.admin import database
from convstore._cli.arguments import database_schema, database_url
from convstore._storage.engine import resolve_url
from convstore._storage.migrate import behind, check_revision, head_revision
from convstore._storage.revisions import VERSION_TABLE


def _revision(revision: str | None) -> str:
    if revision is None:
        return "none (no convstore tables)"
    return f"{revision} (head)" if revision == head_revision() else revision


async def upgrade(args: argparse.Namespace) -> int:
    """Bring the database to a revision, creating it if needed."""
    return await _run_migration(args, "upgrade")


async def downgrade(args: argparse.Namespace) -> int:
    """Take the database back to a revision."""
    return await _run_migration(args, "downgrade")


async def _run_migration(args: argparse.Namespace, action: Literal["upgrade", "downgrade"]) -> int:
    url, schema = database_url(args), database_schema(args)
    # Only an upgrade may create the database: a downgrade of a mistyped path must not.
    engine = database.open_engine(url, create=action == "upgrade", single_use=True, schema=schema)
    try:
        legacy = (await database.placement(engine))[1].legacy
        before, after = await database.migrate(engine, action, args.revision)
    finally:
        await engine.dispose()
    where = database.display_url(resolve_url(url))
    if schema is not None:
        where += f" (schema {schema})"
    if legacy:
        print(f"moved the revision from alembic_version to {VERSION_TABLE}")
    if before == after:
        print(f"{where} is already at {_revision(after)}")
    else:
        print(f"{action}d {where} from {_revision(before)} to {_revision(after)}")
    return 0


async def current(args: argparse.Namespace) -> int:
    """Print the database's revision."""
    engine = database.open_engine(
        database_url(args), create=False, single_use=True, schema=database_schema(args)
    )
    try:
        print(_revision(await database.current_revision(engine)))
    finally:
        await engine.dispose()
    return 0


async def check(args: argparse.Namespace) -> int:
    """Say where convstore's tables are; exit 0 when the database is at this convstore's
    revision, 1 when it is behind or its revision is still in alembic_version."""
    asked = database_schema(args)
    engine = database.open_engine(database_url(args), create=False, single_use=True, schema=asked)
    try:
        schema, found = await database.placement(engine)
    finally:
        await engine.dispose()
    revision = found.revision
    # A revision this convstore does not know is an error: SchemaError names it.
    check_revision(revision, migrate=True)
    if engine.dialect.name == "postgresql":
        print(f"schema: {schema or f'{asked} (not created yet)'}")
    else:
        print("schema: none (SQLite: the tables are in the database file)")
    table = found.version_table if schema is None else f"{schema}.{found.version_table}"
    print(f"version table: {table}")
    print(f"revision: {_revision(revision)}")
    head = head_revision()
    if found.legacy:
        print(
            f"behind: an older convstore recorded the revision in {found.version_table}, where "
            f"an application's alembic would find it: run `convstore upgrade` to move it to "
            f"{VERSION_TABLE}"
        )
        return 1
    if revision == head:
        print(f"up to date: the database is at {head}, the newest revision this convstore knows")
        return 0
    print("behind: " + behind(revision, remedy="run `convstore upgrade`"))
    return 1
