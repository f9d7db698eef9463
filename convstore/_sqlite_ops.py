"""The SQLite operations, as plain `sqlite3` functions that run on a connection's own thread.

A write is a body: a function of the connection that the group-commit writer runs inside a
shared transaction. Bodies encode their messages themselves, on the connection's thread, where
the work does not compete with the event loop. Nothing here touches asyncio.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from convstore import _codec
from convstore._records import Snapshot
from convstore._repository import RETRY_EVENT_COLUMNS, attempt_values, encode_messages
from convstore._retry import Attempt
from convstore._types import from_sqlite_text, to_sqlite_text

#: The part of a write that runs inside a transaction; it returns the operation's result.
Body = Callable[[sqlite3.Connection], Any]

_UPSERT_FOR_SAVE = """
INSERT INTO sessions (session_id, created_at, saved_at, message_count, extra)
VALUES (?1, ?2, ?2, ?3, ?4)
ON CONFLICT (session_id) DO UPDATE SET
    saved_at = excluded.saved_at, message_count = excluded.message_count, extra = excluded.extra,
    interrupted_at = NULL, interrupt_reason = NULL
"""
_UPSERT_FOR_APPEND = """
INSERT INTO sessions (session_id, created_at, saved_at, message_count, extra)
VALUES (?1, ?2, ?2, ?3, coalesce(?4, '{}'))
ON CONFLICT (session_id) DO UPDATE SET
    saved_at = excluded.saved_at,
    message_count = sessions.message_count + excluded.message_count,
    extra = coalesce(?4, sessions.extra),
    interrupted_at = NULL, interrupt_reason = NULL
RETURNING message_count
"""
_DELETE_OUTSIDE = "DELETE FROM messages WHERE session_id = ? AND (seq < ? OR seq >= ?)"
# A save usually repeats most of the previous one (the same conversation, a turn longer): rows
# that did not change are left alone, so a save writes what changed rather than everything.
_UPSERT_MESSAGE = """
INSERT INTO messages (session_id, seq, role, body) VALUES (?, ?, ?, ?)
ON CONFLICT (session_id, seq) DO UPDATE SET role = excluded.role, body = excluded.body
WHERE messages.body IS NOT excluded.body OR messages.role IS NOT excluded.role
"""
_TRIM_MESSAGES = "DELETE FROM messages WHERE session_id = ? AND seq < ?"
_INSERT_MESSAGE = "INSERT INTO messages (session_id, seq, role, body) VALUES (?, ?, ?, ?)"
_RESOLVE = "UPDATE interruptions SET resolved_at = ? WHERE session_id = ? AND resolved_at IS NULL"
_SELECT_SESSION = """
SELECT message_count, saved_at, extra, interrupted_at, interrupt_reason
FROM sessions WHERE session_id = ?
"""
_SELECT_BODIES = "SELECT body FROM messages WHERE session_id = ? ORDER BY seq"
_INSERT_RETRY_EVENT = (
    f"INSERT INTO retry_events ({', '.join(RETRY_EVENT_COLUMNS)}) "
    f"VALUES ({', '.join('?' * len(RETRY_EVENT_COLUMNS))})"
)


def save(
    session_id: str,
    kept: Sequence[Any],
    message_count: int,
    extra: Mapping[str, Any],
    now: str,
) -> Body:
    """The body of a save: it replaces the session's conversation and extra state."""

    def body(conn: sqlite3.Connection) -> None:
        first = message_count - len(kept)
        rows = encode_messages(session_id, kept, first, jsonb=False)
        encoded_extra = _codec.encode(extra, jsonb=False)
        conn.execute(_UPSERT_FOR_SAVE, (session_id, now, message_count, encoded_extra))
        conn.execute(_DELETE_OUTSIDE, (session_id, first, message_count))
        conn.executemany(_UPSERT_MESSAGE, rows)
        conn.execute(_RESOLVE, (now, session_id))

    return body


def append(
    session_id: str,
    kept: Sequence[Any],
    added: int,
    extra: Mapping[str, Any] | None,
    max_messages: int,
    now: str,
) -> Body:
    """The body of an append: it adds the messages, trims to the cap and returns the count."""

    def body(conn: sqlite3.Connection) -> int:
        # Encoded with seq 0 onwards; the real positions are known once the count is read.
        rows = encode_messages(session_id, kept, 0, jsonb=False)
        encoded_extra = None if extra is None else _codec.encode(extra, jsonb=False)
        ((count,),) = conn.execute(
            _UPSERT_FOR_APPEND, (session_id, now, added, encoded_extra)
        ).fetchall()
        first = count - len(rows)
        conn.executemany(
            _INSERT_MESSAGE, [(sid, first + seq, role, text) for sid, seq, role, text in rows]
        )
        if count > max_messages:
            conn.execute(_TRIM_MESSAGES, (session_id, count - max_messages))
        conn.execute(_RESOLVE, (now, session_id))
        return int(count)

    return body


def record_attempt(attempt: Attempt) -> Body:
    """The body that inserts one ``retry_events`` row."""
    values = attempt_values(attempt)
    values["created_at"] = to_sqlite_text(attempt.created_at)
    row = tuple(values[column] for column in RETRY_EVENT_COLUMNS)

    def body(conn: sqlite3.Connection) -> None:
        conn.execute(_INSERT_RETRY_EVENT, row)

    return body


def restore(conn: sqlite3.Connection, session_id: str) -> Snapshot | None:
    """Read the session and its messages in one read transaction, so both come from one commit."""
    conn.execute("BEGIN")
    try:
        row = conn.execute(_SELECT_SESSION, (session_id,)).fetchone()
        if row is None:
            return None
        # As bytes: they are joined and parsed as one document, never used as str.
        conn.text_factory = bytes
        try:
            bodies = [body for (body,) in conn.execute(_SELECT_BODIES, (session_id,))]
        finally:
            conn.text_factory = str
    finally:
        conn.execute("COMMIT")
    count, saved_at, extra, interrupted_at, reason = row
    return Snapshot(
        session_id=session_id,
        # One decode of the whole conversation instead of one per message.
        messages=_codec.decode(b"[" + b",".join(bodies) + b"]"),
        message_count=count,
        saved_at=from_sqlite_text(saved_at),
        extra=_codec.decode(extra),
        interrupted_at=None if interrupted_at is None else from_sqlite_text(interrupted_at),
        interrupt_reason=reason,
    )
