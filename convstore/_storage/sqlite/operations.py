"""The SQLite operations, as plain `sqlite3` functions that run on a connection's own thread.

A write is a piece of `Work`: a function of the connection that the group-commit writer runs
inside a shared transaction. It encodes its messages itself, on the connection's thread, where
the work does not compete with the event loop. Nothing here touches asyncio. The statements are
those of `statements`, compiled once for the sqlite3 module.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import select

from convstore._records import Attempt, Snapshot
from convstore._storage import codec, statements
from convstore._storage.repository import encode_messages
from convstore._storage.retry_history import RETRY_EVENT_COLUMNS, attempt_values, insert_attempt
from convstore._storage.schema import messages, sessions
from convstore._storage.statements import Compiled, check_order, compiled
from convstore._storage.types import from_sqlite_text, to_sqlite_text

#: The part of a write that runs inside a transaction; it returns the operation's result.
Work = Callable[[sqlite3.Connection], Any]

#: The order in which `encode_messages` builds a row.
_ROW = ("session", "seq", "role", "body")

_SAVE_SESSION = compiled(statements.save_session("sqlite"), "sqlite")
_APPEND_SESSION = compiled(statements.append_session("sqlite"), "sqlite")
_DELETE_OUTSIDE = compiled(statements.delete_messages_outside(), "sqlite")
_DELETE_BEFORE = compiled(statements.delete_messages_before(), "sqlite")
_RESOLVE = compiled(statements.resolve_session(), "sqlite")
# A save usually repeats most of the previous one (the same conversation, a turn longer): rows
# that did not change are left alone, so a save writes what changed rather than everything.
_UPSERT_MESSAGE = check_order(compiled(statements.upsert_messages("sqlite"), "sqlite"), _ROW)
_INSERT_MESSAGE = check_order(compiled(statements.insert_messages("sqlite"), "sqlite"), _ROW)
_SELECT_SESSION = compiled(
    select(
        sessions.c.message_count,
        sessions.c.saved_at,
        sessions.c.extra,
        sessions.c.interrupted_at,
        sessions.c.interrupt_reason,
    ).where(sessions.c.session_id == statements.SESSION_ID),
    "sqlite",
)
_SELECT_BODIES = compiled(
    select(messages.c.body)
    .where(messages.c.session_id == statements.SESSION_ID)
    .order_by(messages.c.seq),
    "sqlite",
)
_INSERT_ATTEMPT = check_order(compiled(insert_attempt(), "sqlite"), RETRY_EVENT_COLUMNS)


def _run(conn: sqlite3.Connection, statement: Compiled, **values: Any) -> sqlite3.Cursor:
    return conn.execute(statement.sql, statement.args(values))


def save(
    session_id: str,
    kept: Sequence[Any],
    message_count: int,
    extra: Mapping[str, Any],
    now: str,
) -> Work:
    """The work of a save: it replaces the session's conversation and extra state."""

    def work(conn: sqlite3.Connection) -> None:
        first = message_count - len(kept)
        rows = encode_messages(session_id, kept, first, jsonb=False)
        encoded = codec.encode(extra, jsonb=False)
        _run(conn, _SAVE_SESSION, session=session_id, now=now, count=message_count, extra=encoded)
        _run(conn, _DELETE_OUTSIDE, session=session_id, first=first, count=message_count)
        conn.executemany(_UPSERT_MESSAGE.sql, rows)
        _run(conn, _RESOLVE, session=session_id, now=now)

    return work


def append(
    session_id: str,
    kept: Sequence[Any],
    added: int,
    extra: Mapping[str, Any] | None,
    max_messages: int,
    now: str,
) -> Work:
    """The work of an append: it adds the messages, trims to the cap and returns the count."""

    def work(conn: sqlite3.Connection) -> int:
        # Encoded with seq 0 onwards; the real positions are known once the count is read.
        rows = encode_messages(session_id, kept, 0, jsonb=False)
        encoded = None if extra is None else codec.encode(extra, jsonb=False)
        values = {"session": session_id, "now": now, "count": added}
        ((count,),) = _run(
            conn, _APPEND_SESSION, **values, new_extra=encoded or "{}", extra=encoded
        ).fetchall()
        first = count - len(rows)
        conn.executemany(
            _INSERT_MESSAGE.sql, [(sid, first + seq, role, text) for sid, seq, role, text in rows]
        )
        if count > max_messages:
            _run(conn, _DELETE_BEFORE, session=session_id, keep_from=count - max_messages)
        _run(conn, _RESOLVE, session=session_id, now=now)
        return int(count)

    return work


def record_attempt(attempt: Attempt) -> Work:
    """The work that inserts one ``retry_events`` row."""
    values = attempt_values(attempt)
    values["created_at"] = to_sqlite_text(attempt.created_at)
    row = _INSERT_ATTEMPT.args(values)

    def work(conn: sqlite3.Connection) -> None:
        conn.execute(_INSERT_ATTEMPT.sql, row)

    return work


def restore(conn: sqlite3.Connection, session_id: str) -> Snapshot | None:
    """Read the session and its messages in one read transaction, so both come from one commit."""
    conn.execute("BEGIN")
    try:
        row = _run(conn, _SELECT_SESSION, session=session_id).fetchone()
        if row is None:
            return None
        # As bytes: they are joined and parsed as one document, never used as str.
        conn.text_factory = bytes
        try:
            bodies = [body for (body,) in _run(conn, _SELECT_BODIES, session=session_id)]
        finally:
            conn.text_factory = str
    finally:
        conn.execute("COMMIT")
    count, saved_at, extra, interrupted_at, reason = row
    return Snapshot(
        session_id=session_id,
        # One decode of the whole conversation instead of one per message.
        messages=codec.decode(b"[" + b",".join(bodies) + b"]"),
        message_count=count,
        saved_at=from_sqlite_text(saved_at),
        extra=codec.decode(extra),
        interrupted_at=None if interrupted_at is None else from_sqlite_text(interrupted_at),
        interrupt_reason=reason,
    )
