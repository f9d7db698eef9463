"""Where convstore's tables live: the PostgreSQL schema, the version table, and the tables of
a database that convstore shares with an application.

convstore records its revision in a version table of its own, `VERSION_TABLE`, so that it and
an application's own alembic, with its ``alembic_version``, never read each other's revisions.
Older convstores used ``alembic_version``: the next upgrade moves their revision over.

On PostgreSQL, ``schema=`` puts every convstore object in a schema of its own. It is set as the
connection's ``search_path`` rather than as SQLAlchemy's ``schema_translate_map``: the map only
rewrites the names of SQLAlchemy ``Table`` objects compiled by SQLAlchemy, while convstore also
runs statements compiled once at import to the driver's SQL text (the hot paths, the LangGraph
checkpoints), raw SQL in the migrations' ``op.execute`` and alembic's own version table. A
``search_path`` of the one schema is read by the server for every statement, whoever wrote it.
"""

from __future__ import annotations

import re
import weakref
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, inspect, text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine

from convstore._storage.revisions import VERSION_TABLE
from convstore._storage.schema import Base
from convstore.exceptions import ConfigurationError, SchemaError

#: alembic's default version table, where older convstores recorded their revision.
LEGACY_VERSION_TABLE = "alembic_version"

#: The tables of convstore's first revision: a database with all of them and a convstore
#: revision in ``alembic_version`` was migrated by an older convstore.
FIRST_TABLES = ("sessions", "messages", "interruptions", "retry_events")
#: Every table convstore creates, as of its newest revision (the migrations match the models).
TABLES = tuple(Base.metadata.tables)

# Lowercase only: PostgreSQL folds unquoted names to lowercase, so a name with capitals would be
# one schema for convstore (which quotes it) and another in a user's hand-written SQL.
_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]{0,62}")
# The schema of each engine convstore made, for the migrations that create it.
_SCHEMAS: weakref.WeakKeyDictionary[Engine, str] = weakref.WeakKeyDictionary()


def check_schema(url: URL, schema: str | None) -> str | None:
    """The schema, checked for the URL's backend; ConfigurationError if it cannot be used."""
    if schema is None:
        return None
    if url.get_backend_name() != "postgresql":
        raise ConfigurationError(
            f"schema={schema!r} needs PostgreSQL: SQLite has no schemas, so on SQLite convstore's "
            "tables go in the database file the URL names; give convstore a file of its own"
        )
    if not isinstance(schema, str) or not _IDENTIFIER.fullmatch(schema) or schema[:3] == "pg_":
        raise ConfigurationError(
            f"schema {schema!r} is not a PostgreSQL schema name convstore can use: expected "
            "lowercase letters, digits and underscores, not starting with a digit or 'pg_', "
            "at most 63 characters (e.g. 'convstore')"
        )
    return schema


def check_engine_schema(engine: AsyncEngine, schema: str | None) -> None:
    """Refuse a `schema` that the caller's engine's connections were not made with."""
    if schema is None or schema_of(engine.sync_engine) == schema:
        return
    check_schema(engine.url, schema)
    raise ConfigurationError(
        f"schema={schema!r} cannot be applied to an engine convstore did not create: its "
        "connections keep the search_path they were opened with. Pass the URL instead, or "
        "create the engine with connect_args={'server_settings': {'search_path': "
        f"'{schema}'}} (and the schema with CREATE SCHEMA) and connect without schema="
    )


def search_path(schema: str) -> str:
    """The ``search_path`` setting that puts every unqualified name in `schema`, and only there."""
    return f'"{schema}"'


def remember_schema(engine: Engine, schema: str | None) -> None:
    """Note the schema the engine's connections use (their ``search_path``)."""
    if schema is not None:
        _SCHEMAS[engine] = schema


def schema_of(engine: Engine) -> str | None:
    """The schema convstore put the engine's connections in, None for the default."""
    return _SCHEMAS.get(engine)


def enter_schema(connection: Connection, schema: str | None) -> None:
    """Create the schema if it is missing (PostgreSQL) and put the rest of the caller's
    transaction in it, whatever the connection's own ``search_path``."""
    if schema is not None and connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"CREATE SCHEMA IF NOT EXISTS {search_path(schema)}")
        connection.exec_driver_sql(f"SET LOCAL search_path TO {search_path(schema)}")


@dataclass(frozen=True)
class Found:
    """A database's convstore revision, and the version table it was found in."""

    revision: str | None
    version_table: str = VERSION_TABLE

    @property
    def legacy(self) -> bool:
        """Whether an older convstore recorded it in alembic's default version table."""
        return self.version_table == LEGACY_VERSION_TABLE


def find_revision(connection: Connection, known: frozenset[str]) -> Found:
    """Where convstore's revision is recorded, and what it is; `known` are its revisions."""
    tables = set(inspect(connection).get_table_names())
    if VERSION_TABLE in tables:
        return Found(_single(_versions(connection, VERSION_TABLE), VERSION_TABLE))
    if LEGACY_VERSION_TABLE in tables and tables.issuperset(FIRST_TABLES):
        ours = [v for v in _versions(connection, LEGACY_VERSION_TABLE) if v in known]
        if ours:
            return Found(_single(ours, LEGACY_VERSION_TABLE), LEGACY_VERSION_TABLE)
    return Found(None)


def _versions(connection: Connection, table: str) -> list[str]:
    return [row[0] for row in connection.execute(text(f"SELECT version_num FROM {table}"))]


def _single(heads: list[str], table: str) -> str | None:
    if len(heads) > 1:
        raise SchemaError(f"{table} holds several convstore revisions {heads}; expected one")
    return heads[0] if heads else None


@dataclass(frozen=True)
class Conflict:
    """Tables of convstore's names in a database without a convstore revision."""

    tables: tuple[str, ...]
    #: The revisions alembic_version holds: another application's.
    others: tuple[str, ...]
    dialect: str

    def explains(self, exc: BaseException) -> bool:
        """Whether a failed migration statement failed on one of these tables."""
        return any(re.search(rf"\b{name}\b", str(exc)) for name in self.tables)

    def message(self) -> str:
        """What to say: what convstore found, that it leaves it alone, and what to do."""
        found = (
            f"alembic_version holds {', '.join(map(repr, self.others))}, " if self.others else ""
        )
        remedy = (
            "give convstore a schema of its own: connect(url, schema='convstore'), or --schema "
            "convstore on the command line"
            if self.dialect == "postgresql"
            else "give convstore a database file of its own (or use PostgreSQL with a schema)"
        )
        return (
            f"the database already has tables named {', '.join(self.tables)}, but no convstore "
            f"revision ({found}{VERSION_TABLE} has none): convstore did not create them, or "
            f"lost their revision, and never alters them; {remedy}. If they are an older "
            "convstore's tables whose revision in alembic_version was overwritten, record it "
            "with alembic's `stamp` (see the docs on running beside your application's alembic)"
        )


def claim(connection: Connection, known: frozenset[str]) -> Conflict | None:
    """Make the database ready for convstore's alembic, inside the migration lock; the tables
    that stand in the way of its first revisions, if it has none.

    An older convstore's revision is moved from ``alembic_version`` to `VERSION_TABLE`, in the
    caller's transaction; any other revision there is left alone, and the table dropped only
    when it held nothing else. Tables of convstore's names without a convstore revision are
    someone else's (or their revision was lost): the caller refuses them when a migration
    fails on one, which leaves ``alembic stamp`` free to record their revision.
    """
    found = find_revision(connection, known)
    if found.legacy:
        connection.execute(
            text(
                f"CREATE TABLE {VERSION_TABLE} (version_num VARCHAR(32) NOT NULL, "
                f"CONSTRAINT {VERSION_TABLE}_pkc PRIMARY KEY (version_num))"
            )
        )
        connection.execute(
            text(f"INSERT INTO {VERSION_TABLE} (version_num) VALUES (:revision)"),
            {"revision": found.revision},
        )
        connection.execute(
            text(f"DELETE FROM {LEGACY_VERSION_TABLE} WHERE version_num = :revision"),
            {"revision": found.revision},
        )
        if not _versions(connection, LEGACY_VERSION_TABLE):
            connection.execute(text(f"DROP TABLE {LEGACY_VERSION_TABLE}"))
        return None
    if found.revision is not None:
        return None
    tables = set(inspect(connection).get_table_names())
    taken = tuple(sorted(tables & set(TABLES)))
    if not taken:
        return None
    others = _versions(connection, LEGACY_VERSION_TABLE) if LEGACY_VERSION_TABLE in tables else []
    return Conflict(taken, tuple(others), connection.dialect.name)
