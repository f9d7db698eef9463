"""`upgrade`, `downgrade`, `current` and `check`: the database's revision."""

from __future__ import annotations

import argparse
from typing import Literal

from convstore._cli.admin import database
from convstore._cli.arguments import database_url
from convstore._storage.engine import resolve_url
from convstore._storage.migrate import behind, check_revision, head_revision


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
    url = database_url(args)
    # Only an upgrade may create the database: a downgrade of a mistyped path must not.
    engine = database.open_engine(url, create=action == "upgrade", single_use=True)
    try:
        before, after = await database.migrate(engine, action, args.revision)
    finally:
        await engine.dispose()
    where = database.display_url(resolve_url(url))
    if before == after:
        print(f"{where} is already at {_revision(after)}")
    else:
        print(f"{action}d {where} from {_revision(before)} to {_revision(after)}")
    return 0


async def current(args: argparse.Namespace) -> int:
    """Print the database's revision."""
    engine = database.open_engine(database_url(args), create=False, single_use=True)
    try:
        print(_revision(await database.current_revision(engine)))
    finally:
        await engine.dispose()
    return 0


async def check(args: argparse.Namespace) -> int:
    """Exit 0 when the database is at this convstore's revision, 1 when it is behind."""
    engine = database.open_engine(database_url(args), create=False, single_use=True)
    try:
        revision = await database.current_revision(engine)
    finally:
        await engine.dispose()
    head = head_revision()
    if revision == head:
        print(f"up to date: the database is at {head}, the newest revision this convstore knows")
        return 0
    # A revision this convstore does not know is an error: SchemaError names it.
    check_revision(revision, migrate=True)
    print("behind: " + behind(revision, remedy="run `convstore upgrade`"))
    return 1
