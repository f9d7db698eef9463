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
from convstore._storage.retry_history import attempt_values, insert_attempt
from convstore._storage.rows import (
    encode_messages,
    kept_messages,
    planned,
    reads_older,
    window_text,
)
from convstore._storage.schema import messages, sessions
from convstore._storage.statements import check_order, compiled
from convstore._storage.types import from_sqlite_text, to_sqlite_text

#: The part of a write that runs inside a transaction; it returns the operation's result.
Work = Callable[[sqlite3.Connection], Any]

# Each statement's parameters are passed as a tuple in the order written beside it, which
# `check_order` makes sure, at import, is the compiled statement's: a dict per statement would
# cost a few microseconds each on the hot paths.

#: The order in which `encode_messages` builds a row.
_ROW = ("session", "seq", "role", "body")

_SAVE_SESSION = check_order(
    compiled(statements.save_session("sqlite"), "sqlite"),
    ("session", "now", "now", "count", "extra", "window"),
)
_APPEND_SESSION = check_order(
    compiled(statements.append_session("sqlite"), "sqlite"),
    ("session", "now", "now", "count", "new_extra", "extra"),
)
_DELETE_UNKEPT = check_order(
    compiled(statements.delete_unkept(), "sqlite"),
    ("session", "pinned", "first", "opener", "count"),
)
_DELETE_TRIMMED = check_order(
    compiled(statements.delete_trimmed(), "sqlite"), ("session", "pinned", "first", "opener")
)
_SET_WINDOW = check_order(compiled(statements.set_window(), "sqlite"), ("window", "session"))
_RESOLVE = check_order(compiled(statements.resolve_session(), "sqlite"), ("now", "session"))
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
_SELECT_STORED = compiled(statements.stored_messages(), "sqlite")
_INSERT_ATTEMPT = compiled(insert_attempt(), "sqlite")
_MARK_SESSION = check_order(
    compiled(statements.mark_session("sqlite"), "sqlite"),
    ("session", "now", "now", "message_count", "extra", "at", "reason"),
)
_ADD_HISTORY = check_order(
    compiled(statements.add_history(), "sqlite"), ("session", "at", "reason", "session", "at")
)
#: A new session's extra state, as a save of ``{}`` stores it.
_EMPTY_EXTRA = codec.encode({}, jsonb=False)


def save(
    session_id: str,
    messages: Sequence[Any],
    extra: Mapping[str, Any],
    max_messages: int,
    now: str,
) -> Work:
    """The work of a save: it replaces the session's conversation and extra state."""

    def work(conn: sqlite3.Connection) -> None:
        count = len(messages)
        plan = planned(None, messages, 0, max_messages)
        rows = encode_messages(session_id, *kept_messages(plan, messages, 0), jsonb=False)
        encoded = codec.encode(extra, jsonb=False)
        conn.execute(_SAVE_SESSION.sql, (session_id, now, now, count, encoded, window_text(plan)))
        conn.execute(
            _DELETE_UNKEPT.sql, (session_id, plan.pinned_kept, plan.first, plan.opener, count)
        )
        conn.executemany(_UPSERT_MESSAGE.sql, rows)
        conn.execute(_RESOLVE.sql, (now, session_id))

    return work


def mark_interrupted(session_id: str, reason: str | None, now: str) -> Work:
    """The work of `mark_interrupted`: the marker set (the session created, empty, if unknown)
    and a history row added."""

    def work(conn: sqlite3.Connection) -> None:
        conn.execute(_MARK_SESSION.sql, (session_id, now, now, 0, _EMPTY_EXTRA, now, reason))
        conn.execute(_ADD_HISTORY.sql, (session_id, now, reason, session_id, now))

    return work


def append(
    session_id: str,
    messages: Sequence[Any],
    extra: Mapping[str, Any] | None,
    max_messages: int,
    now: str,
) -> Work:
    """The work of an append: it adds the messages, trims to the cap and returns the count."""

    def work(conn: sqlite3.Connection) -> int:
        encoded = None if extra is None else codec.encode(extra, jsonb=False)
        ((count, stored),) = conn.execute(
            _APPEND_SESSION.sql,
            (session_id, now, now, len(messages), encoded or "{}", encoded),
        ).fetchall()
        first = count - len(messages)
        older = (
            conn.execute(_SELECT_STORED.sql, (session_id,)).fetchall()
            if reads_older(stored, first, len(messages), max_messages)
            else ()
        )
        plan = planned(stored, messages, first, max_messages, older)
        rows = encode_messages(session_id, *kept_messages(plan, messages, first), jsonb=False)
        conn.executemany(_INSERT_MESSAGE.sql, rows)
        conn.execute(_DELETE_TRIMMED.sql, (session_id, plan.pinned_kept, plan.first, plan.opener))
        conn.execute(_SET_WINDOW.sql, (window_text(plan), session_id))
        conn.execute(_RESOLVE.sql, (now, session_id))
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
        row = conn.execute(_SELECT_SESSION.sql, (session_id,)).fetchone()
        if row is None:
            return None
        # As bytes: they are joined and parsed as one document, never used as str.
        conn.text_factory = bytes
        try:
            bodies = [body for (body,) in conn.execute(_SELECT_BODIES.sql, (session_id,))]
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
