"""convstore's migrations run beside an application's own alembic, on one database.

The application here is a small alembic project of its own, built in a temporary folder: an
async environment and two revisions, named 0001 and 0002 like convstore's first two, the second
making a `sessions` table of its own on PostgreSQL. Its alembic.ini has a second section,
``[convstore]``, for convstore's environment, as docs/host-alembic.md shows.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

import convstore
from convstore._storage.engine import resolve_url
from convstore._storage.migrate import head_revision, migrations_dir
from convstore._storage.placement import TABLES
from convstore._storage.revisions import VERSION_TABLE

HEAD = head_revision()
CONVSTORE_TABLES = {*TABLES, VERSION_TABLE}

APP_ENV = """
import asyncio

from alembic import context
from sqlalchemy.ext.asyncio import create_async_engine

config = context.config


def migrate(connection):
    context.configure(connection=connection)
    with context.begin_transaction():
        context.run_migrations()


async def main():
    engine = create_async_engine(config.get_main_option("sqlalchemy.url"))
    async with engine.begin() as connection:
        await connection.run_sync(migrate)
    await engine.dispose()


asyncio.run(main())
"""

APP_REVISION = """
import sqlalchemy as sa
from alembic import op

revision = "{revision}"
down_revision = {down!r}
branch_labels = None
depends_on = None


def upgrade():
    op.create_table("{table}", sa.Column("id", sa.Integer, primary_key=True))
    if op.get_bind().dialect.name == "postgresql":
        op.create_table("{pg_table}", sa.Column("token", sa.Text, primary_key=True))


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.drop_table("{pg_table}")
    op.drop_table("{table}")
"""

INI = """
[alembic]
script_location = %(here)s/app_migrations
path_separator = os
sqlalchemy.url = {app_url}

[convstore]
script_location = {convstore}
path_separator = os
sqlalchemy.url = {url}
{schema}

[loggers]
keys = root

[handlers]
keys = console

[formatters]
keys = generic

[logger_root]
level = WARNING
handlers = console

[handler_console]
class = StreamHandler
args = (sys.stderr,)
formatter = generic

[formatter_generic]
format = %%(levelname)s %%(message)s
"""


class App:
    """An application's alembic project on `url`, with convstore's section beside its own."""

    def __init__(self, folder: Path, url: str, schema: str | None) -> None:
        self.folder = folder
        self.url = url
        self.schema = schema
        scheme = "postgresql+asyncpg" if url.startswith("postgresql") else "sqlite+aiosqlite"
        app_url = make_url(url).set(drivername=scheme).render_as_string(hide_password=False)
        versions = folder / "app_migrations" / "versions"
        versions.mkdir(parents=True)
        (folder / "app_migrations" / "env.py").write_text(APP_ENV)
        for revision, down, table, pg_table in (
            ("0001", None, "users", "web_tokens"),
            ("0002", "0001", "orders", "sessions"),
        ):
            script = APP_REVISION.format(
                revision=revision, down=down, table=table, pg_table=pg_table
            )
            (versions / f"{revision}_{table}.py").write_text(script)
        (folder / "alembic.ini").write_text(
            INI.format(
                app_url=app_url,
                url=url,
                convstore=migrations_dir(),
                schema="" if schema is None else f"schema = {schema}",
            )
        )

    def run(self, *args: str) -> str:
        """A command run in the application's folder, which must succeed; its output."""
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("CONVSTORE_DATABASE_URL", "CONVSTORE_SCHEMA")
        }
        result = subprocess.run(
            [sys.executable, "-W", "error", "-m", *args],
            cwd=self.folder,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, f"{args}:\n{result.stdout}\n{result.stderr}"
        return result.stdout + result.stderr

    def alembic(self, *args: str) -> str:
        """The application's own alembic command line."""
        return self.run("alembic", *args)

    def convstore(self, how: str, action: str, target: str) -> None:
        """convstore's migrations, through the application's alembic or convstore's command."""
        if how == "alembic":
            self.alembic("-n", "convstore", action, target)
        else:
            schema = () if self.schema is None else ("--schema", self.schema)
            self.run("convstore", action, target, "--url", self.url, *schema)

    def state(self) -> dict[str, Any]:
        """Each version table's revisions (None: no such table), and the tables, by owner."""
        return asyncio.run(self._state())

    async def _state(self) -> dict[str, Any]:
        engine = create_async_engine(resolve_url(self.url))
        try:
            async with engine.connect() as conn:
                return await conn.run_sync(self._read)
        finally:
            await engine.dispose()

    def _read(self, conn: Connection) -> dict[str, Any]:
        inspector = inspect(conn)

        def versions(table: str, schema: str | None) -> list[str] | None:
            if not inspector.has_table(table, schema=schema):
                return None
            name = table if schema is None else f"{schema}.{table}"
            return [row[0] for row in conn.execute(text(f"SELECT version_num FROM {name}"))]

        default = set(inspector.get_table_names()) - {"alembic_version"}
        if self.schema is None:  # one namespace: the application's are the rest
            ours = default & CONVSTORE_TABLES
            default -= CONVSTORE_TABLES
        else:
            ours = set(inspector.get_table_names(self.schema))
        return {
            "app": versions("alembic_version", None),
            "convstore": versions(VERSION_TABLE, self.schema),
            "app_tables": default,
            "convstore_tables": ours,
        }


APP_TABLES = {
    "sqlite": {"users", "orders"},
    "postgresql": {"users", "orders", "web_tokens", "sessions"},
}


@pytest.fixture
def app(database_url: str, backend: str, tmp_path: Path) -> App:
    """An application's alembic project on the test's database; on PostgreSQL convstore goes in
    a schema of its own, since the application has a `sessions` table."""
    return App(tmp_path, database_url, "convstore" if backend == "postgresql" else None)


def assert_store_opens(app: App) -> None:
    """convstore, at its newest revision, opens the database without migrating it."""

    async def probe() -> None:
        async with convstore.connect(app.url, schema=app.schema, migrate=False) as store:
            await store.save_snapshot("s1", [{"role": "user", "content": "beside the app"}])

    asyncio.run(probe())


@pytest.mark.parametrize("how", ["alembic", "command"])
def test_the_application_first_then_convstore_up_and_down(app: App, backend: str, how: str) -> None:
    """The application's migrations, then convstore's (through the application's alembic or
    `convstore upgrade`), each keep their revisions to their own version table, both ways."""
    app.alembic("upgrade", "head")
    assert app.state()["app"] == ["0002"]
    app.convstore(how, "upgrade", "head")
    state = app.state()
    assert (state["app"], state["convstore"]) == (["0002"], [HEAD])
    assert state["app_tables"] == APP_TABLES[backend]
    assert state["convstore_tables"] == CONVSTORE_TABLES
    assert app.alembic("current").split() == ["0002", "(head)"]
    assert app.alembic("-n", "convstore", "current").split() == [HEAD, "(head)"]
    assert_store_opens(app)
    app.alembic("downgrade", "base")
    state = app.state()
    assert (state["app"], state["convstore"]) == ([], [HEAD])
    assert state["app_tables"] == set()
    assert_store_opens(app)
    app.convstore(how, "downgrade", "base")
    state = app.state()
    assert (state["app"], state["convstore"]) == ([], [])
    assert state["convstore_tables"] == {VERSION_TABLE}


@pytest.mark.parametrize("how", ["alembic", "command"])
def test_convstore_first_then_the_application_up_and_down(app: App, backend: str, how: str) -> None:
    """convstore's migrations, then the application's: the application's alembic starts from
    nothing, never taking convstore's 0002 for its own, and each downgrade leaves the other."""
    app.convstore(how, "upgrade", "0002")
    assert app.state()["convstore"] == ["0002"]
    assert app.state()["app"] is None
    app.alembic("upgrade", "0001")
    state = app.state()
    assert (state["app"], state["convstore"]) == (["0001"], ["0002"])
    app.convstore(how, "upgrade", "head")
    app.alembic("upgrade", "head")
    state = app.state()
    assert (state["app"], state["convstore"]) == (["0002"], [HEAD])
    assert state["app_tables"] == APP_TABLES[backend]
    assert state["convstore_tables"] == CONVSTORE_TABLES
    assert_store_opens(app)
    app.convstore(how, "downgrade", "base")
    state = app.state()
    assert (state["app"], state["convstore"]) == (["0002"], [])
    assert state["app_tables"] == APP_TABLES[backend]
    app.alembic("downgrade", "base")
    state = app.state()
    assert (state["app"], state["convstore"]) == ([], [])
    assert state["app_tables"] == set()
