"""Reading a SQLite database with the stdlib alone, for command-line calls that must answer
fast (`convstore sessions --interrupted`): importing SQLAlchemy costs a command three times what
the rest of it does. Only a file at the current revision is read this way; anything else (a
missing file, an older schema, another backend) is left to the store, which says what is wrong.

The statements are the text SQLAlchemy compiles for the store's own (tests hold them to it);
the store's listing reads its rows with `interrupted_rows` too.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from convstore._records import InterruptedSession
from convstore._storage.listed import interrupted
from convstore._storage.revisions import HEAD, VERSION_TABLE
from convstore._storage.times import from_sqlite_text

#: `statements.interrupted_sessions()` compiled for sqlite3: the store's listing runs it too.
INTERRUPTED = (
    "SELECT sessions.session_id, sessions.message_count, sessions.interrupted_at, "
    "sessions.interrupt_reason \nFROM sessions \nWHERE sessions.interrupted_at IS NOT NULL "
    "ORDER BY sessions.interrupted_at DESC, sessions.session_id DESC\n LIMIT ? OFFSET ?"
)
#: `listings.count_sessions(interrupted=True)`'s statement compiled for sqlite3.
COUNT_INTERRUPTED = (
    "SELECT count(*) AS count_1 \nFROM sessions \nWHERE sessions.interrupted_at IS NOT NULL"
)
_PREFIXES = ("sqlite:///", "sqlite+aiosqlite:///")


def database_file(url: str) -> Path | None:
    """The file of a plain SQLite URL naming an existing file; None for any other URL."""
    prefix = next((p for p in _PREFIXES if url.startswith(p)), None)
    if prefix is None:
        return None
    path = url[len(prefix) :]
    # Options, escapes and in-memory databases are the store's to interpret.
    if not path or any(c in path for c in "?%#") or path.startswith(":memory:"):
        return None
    file = Path(path)
    return file if file.is_file() else None


@contextlib.contextmanager
def current(url: str) -> Iterator[sqlite3.Connection | None]:
    """A connection to the URL's SQLite file if it is at this convstore's revision, else None."""
    file = database_file(url)
    if file is None:
        yield None
        return
    try:
        conn = sqlite3.connect(
            f"{file.absolute().as_uri()}?mode=rw", uri=True, isolation_level=None
        )
    except sqlite3.Error:
        yield None
        return
    try:
        conn.execute("PRAGMA busy_timeout = 5000")
        revisions = conn.execute(f"SELECT version_num FROM {VERSION_TABLE}").fetchall()
        yield conn if revisions == [(HEAD,)] else None
    except sqlite3.Error:
        yield None
    finally:
        conn.close()


def interrupted_rows(conn: sqlite3.Connection, limit: int | None) -> list[tuple[Any, ...]]:
    """The rows of `INTERRUPTED` (None: all of them), their times as datetimes."""
    rows = conn.execute(INTERRUPTED, (-1 if limit is None else limit, 0)).fetchall()
    return [(sid, count, from_sqlite_text(at), reason) for sid, count, at, reason in rows]


def interrupted_sessions(
    conn: sqlite3.Connection, limit: int | None, now: datetime
) -> tuple[int, list[InterruptedSession]]:
    """How many sessions are interrupted, and the newest `limit` of them (None: all), in one
    read transaction."""
    conn.execute("BEGIN")
    try:
        (total,) = conn.execute(COUNT_INTERRUPTED).fetchone()
        rows = interrupted_rows(conn, limit)
    finally:
        conn.execute("ROLLBACK")
    return int(total), [interrupted(row, now) for row in rows]
