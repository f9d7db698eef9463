"""The statements that more than one code path runs, each written once in SQLAlchemy Core.

Shared operations (marking, leases, deleting, the command line's purge and import) execute them
through SQLAlchemy. The hot paths of each backend run the same statements compiled once, at
import, to their driver's own SQL text (`Compiled`), and bind values in the compiled order: no
SQL is written twice, and the tables' names come from `schema` alone.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import (
    BindParameter,
    ClauseElement,
    ColumnElement,
    Dialect,
    Insert,
    Integer,
    Text,
    bindparam,
    delete,
    exists,
    func,
    insert,
    null,
    select,
    update,
)
from sqlalchemy.dialects import sqlite
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import make_url
from sqlalchemy.sql.base import ReadOnlyColumnCollection
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.dml import Delete, ReturningInsert, Update
from sqlalchemy.sql.selectable import Select

from convstore._storage.schema import interruptions, messages, sessions

#: The dialects' INSERT, which has ON CONFLICT on SQLite and PostgreSQL alike.
INSERTS: Mapping[str, Callable[..., Any]] = {
    "sqlite": sqlite_insert,
    "postgresql": postgresql_insert,
}

#: The dialects the hot paths are compiled for: the stdlib sqlite3 module's and asyncpg's.
DIALECTS: Mapping[str, Dialect] = {
    "sqlite": sqlite.dialect(paramstyle="qmark"),
    "postgresql": make_url("postgresql+asyncpg://").get_dialect()(),
}

#: The session a statement is about.
SESSION_ID: BindParameter[str] = bindparam("session")

#: What ends an interruption marker, on the session row.
CLEAR_MARKER: Mapping[str, Any] = {"interrupted_at": null(), "interrupt_reason": null()}


def upsert_session(
    dialect: str,
    values: Mapping[str, Any],
    on_conflict: Callable[[ReadOnlyColumnCollection[str, Any]], Mapping[str, Any]],
) -> Insert:
    """INSERT a session row with `values` or, when it exists, UPDATE it with what `on_conflict`
    makes of the row that was to be inserted (``excluded``).

    `values` must give ``session_id``; a new session is otherwise empty (no messages, no extra
    state), created and saved at ``:now``.
    """
    row = {
        "created_at": bindparam("now"),
        "saved_at": bindparam("now"),
        "message_count": 0,
        "extra": {},
        **values,
    }
    statement = INSERTS[dialect](sessions).values(row)
    return cast(
        Insert,
        statement.on_conflict_do_update(
            index_elements=["session_id"], set_=dict(on_conflict(statement.excluded))
        ),
    )


def resolve_interruptions(*where: ColumnElement[bool]) -> Update:
    """End the open interruptions (those not yet resolved) that match `where`, at ``:now``."""
    return (
        update(interruptions)
        .where(interruptions.c.resolved_at.is_(None), *where)
        .values(resolved_at=bindparam("now"))
    )


def resolve_session() -> Update:
    """End the open interruptions of session ``:session``, at ``:now``."""
    return resolve_interruptions(interruptions.c.session_id == SESSION_ID)


def _trimmed() -> ColumnElement[bool]:
    """The messages a `Plan` does not keep below its newest run: those between the kept pinned
    ones (``seq < :pinned``) and the run (``seq >= :first``), but the kept ``:opener``."""
    seq = messages.c.seq
    return (seq >= bindparam("pinned")) & (seq < bindparam("first")) & (seq != bindparam("opener"))


def delete_trimmed() -> Delete:
    """Delete the session's messages that the cap no longer keeps: the trim of an append."""
    return delete(messages).where(messages.c.session_id == SESSION_ID, _trimmed())


def delete_unkept() -> Delete:
    """Delete the session's messages a save does not keep: trimmed, or past ``:count``."""
    return delete(messages).where(
        messages.c.session_id == SESSION_ID, _trimmed() | (messages.c.seq >= bindparam("count"))
    )


def set_window() -> Update:
    """Store the session's ``:window`` (what the cap knows of its stored messages)."""
    return (
        update(sessions)
        .where(sessions.c.session_id == SESSION_ID)
        .values(message_shapes=bindparam("window", type_=sessions.c.message_shapes.type))
    )


def save_session(dialect: str) -> Insert:
    """The session row of a save: the new count, extra state and window; the marker is
    cleared."""
    return upsert_session(
        dialect,
        {
            "session_id": SESSION_ID,
            "message_count": bindparam("count"),
            "extra": bindparam("extra"),
            "message_shapes": bindparam("window"),
        },
        lambda excluded: {
            "saved_at": excluded.saved_at,
            "message_count": excluded.message_count,
            "extra": excluded.extra,
            "message_shapes": excluded.message_shapes,
            **CLEAR_MARKER,
        },
    )


def mark_session(dialect: str) -> Insert:
    """The session row of `mark_interrupted`: the marker set at ``:at`` with ``:reason``, the
    session created, empty, if unknown."""
    return upsert_session(
        dialect,
        {
            "session_id": SESSION_ID,
            "extra": bindparam("extra"),
            "interrupted_at": bindparam("at"),
            "interrupt_reason": bindparam("reason"),
        },
        lambda excluded: {
            "interrupted_at": excluded.interrupted_at,
            "interrupt_reason": excluded.interrupt_reason,
        },
    )


def add_history() -> Insert:
    """The ``interruptions`` row of an interruption of ``:session`` at ``:at``, unless it is
    there already (the operation ran again after losing its connection while committing)."""
    i = interruptions.c
    session = bindparam("session", type_=i.session_id.type)
    at = bindparam("at", type_=i.interrupted_at.type)
    row = select(session, at, bindparam("reason", type_=i.reason.type)).where(
        ~exists().where(i.session_id == session, i.interrupted_at == at)
    )
    return insert(interruptions).from_select([i.session_id, i.interrupted_at, i.reason], row)


def interrupted_sessions() -> Select[Any]:
    """The interrupted sessions, newest interruption first, at most ``:limit`` (-1: all on
    SQLite, NULL: all on PostgreSQL)."""
    s = sessions.c
    return (
        select(s.session_id, s.message_count, s.interrupted_at, s.interrupt_reason)
        .where(s.interrupted_at.is_not(None))
        # Both columns descending, so the partial index is read backwards with no sort.
        .order_by(s.interrupted_at.desc(), s.session_id.desc())
        .limit(bindparam("limit", type_=Integer()))
        # Named, or SQLite's compiler adds an OFFSET of its own, unnamed.
        .offset(bindparam("offset", 0, type_=Integer()))
    )


def append_session(dialect: str) -> ReturningInsert[tuple[int, str | None]]:
    """The session row of an append: ``:count`` more messages, ``:extra`` unless None; the
    marker is cleared, and the new count and the stored window (as JSON text) returned."""
    extra = bindparam("extra", type_=sessions.c.extra.type)
    return upsert_session(
        dialect,
        {
            "session_id": SESSION_ID,
            "message_count": bindparam("count"),
            "extra": bindparam("new_extra"),
        },
        lambda excluded: {
            "saved_at": excluded.saved_at,
            "message_count": sessions.c.message_count + excluded.message_count,
            "extra": func.coalesce(extra, sessions.c.extra),
            **CLEAR_MARKER,
        },
    ).returning(sessions.c.message_count, sessions.c.message_shapes.cast(Text))


def stored_messages() -> Select[tuple[int, str]]:
    """The session's stored messages, oldest first: their positions and their JSON text."""
    return (
        select(messages.c.seq, messages.c.body.cast(Text))
        .where(messages.c.session_id == SESSION_ID)
        .order_by(messages.c.seq)
    )


def insert_messages(dialect: str) -> Insert:
    """INSERT one message row from ``:session``, ``:seq``, ``:role`` and ``:body``."""
    row = {"session_id": SESSION_ID, **{name: bindparam(name) for name in ("seq", "role", "body")}}
    return cast(Insert, INSERTS[dialect](messages).values(row))


def upsert_messages(dialect: str) -> Insert:
    """`insert_messages`, or the UPDATE of a stored row that differs; a row that does not
    change is left alone, so a save rewrites only what changed since the previous save."""
    return update_changed_messages(insert_messages(dialect))


def update_changed_messages(statement: Any) -> Insert:
    """`statement`, a dialect's INSERT into ``messages``, updating the rows that exist and
    differ."""
    excluded, stored = statement.excluded, messages.c
    changed = stored.body.is_distinct_from(excluded.body) | stored.role.is_distinct_from(
        excluded.role
    )
    return cast(
        Insert,
        statement.on_conflict_do_update(
            index_elements=["session_id", "seq"],
            set_={"role": excluded.role, "body": excluded.body},
            where=changed,
        ),
    )


@dataclass(frozen=True, slots=True)
class Compiled:
    """A statement compiled to a driver's SQL text, with its parameters in binding order."""

    sql: str
    names: tuple[str, ...]

    def args(self, values: Mapping[str, Any]) -> tuple[Any, ...]:
        """The positional parameters for `values`, keyed by bind name."""
        return tuple(values[name] for name in self.names)


def compiled(statement: ClauseElement, dialect: str) -> Compiled:
    """`statement` as SQL text for the dialect's driver (``?`` for sqlite3, ``$n`` for asyncpg)."""
    result = cast(SQLCompiler, statement.compile(dialect=DIALECTS[dialect]))
    names = tuple(result.positiontup or ())
    return Compiled(result.string, names)


def check_order(compiled_statement: Compiled, expected: Sequence[str]) -> Compiled:
    """The statement, after making sure its parameters bind in the order rows are built in."""
    if compiled_statement.names != tuple(expected):
        raise AssertionError(f"parameters bind as {compiled_statement.names}, not {expected}")
    return compiled_statement
