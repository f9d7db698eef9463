"""The one place where driver and SQLAlchemy errors become convstore errors, of the kind that
says whether the same call may succeed later (`TransientStorageError`), needs a person
(`PermanentStorageError`), or is one convstore does not recognise (`StorageError`)."""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from convstore.exceptions import (
    ConvstoreError,
    PermanentStorageError,
    StorageError,
    TransientStorageError,
)

# Fragments of SQLite's messages, and what they mean to the person reading the error.
_SQLITE_HINTS = (
    ("database is locked", "another connection held the write lock for longer than busy_timeout"),
    ("readonly database", "the database file or its directory is read-only"),
    ("file is not a database", "the file is not a SQLite database"),
    ("unable to open database file", "the database file cannot be opened"),
    ("disk i/o error", "the disk failed or is full"),
    ("database or disk is full", "the disk is full"),
    ("malformed", "the database file is corrupt"),
)

# SQLite's primary result codes (the low byte of ``sqlite_errorcode``).
_SQLITE_TRANSIENT = frozenset({5, 6})  # BUSY, LOCKED
_SQLITE_PERMANENT = frozenset({3, 8, 10, 11, 13, 14, 23, 26})
# PERM, READONLY, IOERR, CORRUPT, FULL, CANTOPEN, AUTH, NOTADB

# PostgreSQL's SQLSTATEs: a whole class by its first two characters, or one code.
_PG_LOST = frozenset(
    {
        "08",  # connection exception
        "57P01",  # admin shutdown: the server is stopping or the backend was terminated
        "57P02",  # crash shutdown
        "57P03",  # cannot connect now: the server is starting up
    }
)
_PG_TRANSIENT = _PG_LOST | {
    "40001",  # serialization failure
    "40P01",  # deadlock detected
    "53300",  # too many connections
    "55P03",  # lock not available
    "57014",  # query cancelled (a statement timeout)
}
_PG_PERMANENT = frozenset(
    {
        "28",  # invalid authorisation
        "3D",  # invalid catalog name: no such database
        "42",  # syntax error or access rule violation: no such table, no privilege
        "25006",  # read-only SQL transaction: a standby, not the primary
        "53100",  # disk full
    }
)


_asyncpg_found: tuple[tuple[type[Exception], ...], tuple[type[Exception], ...]] | None = None


def _asyncpg_errors() -> tuple[tuple[type[Exception], ...], tuple[type[Exception], ...]]:
    """asyncpg's errors: all of them, and those of a connection that is gone or was left
    unusable (raised by the client, not sent by the server). None before asyncpg is imported:
    until then none of them can be raised, and SQLite users never import it."""
    global _asyncpg_found
    if _asyncpg_found is None:
        asyncpg = sys.modules.get("asyncpg")
        if asyncpg is None:
            return (), ()
        lost = (asyncpg.InterfaceError, asyncpg.InternalClientError)
        _asyncpg_found = (asyncpg.PostgresError, *lost), lost
    return _asyncpg_found


def _driver_errors() -> tuple[type[Exception], ...]:
    """Every error of a driver or of SQLAlchemy that convstore translates."""
    return (SQLAlchemyError, sqlite3.Error, OSError, *_asyncpg_errors()[0])


@contextmanager
def storage_errors(action: str, database: str) -> Iterator[None]:
    """Translate any driver or SQLAlchemy error raised inside into a `StorageError`."""
    try:
        yield
    except ConvstoreError:
        raise
    except _driver_errors() as exc:
        raise translate(action, database, exc) from exc


def translate(action: str, database: str, exc: BaseException) -> StorageError:
    """The convstore error for a driver or SQLAlchemy error, of the kind the error is."""
    cause = native(exc)
    kind = TransientStorageError if connection_lost(exc) else kind_of(cause)
    return kind(f"{action} failed on {database}: {_explain(cause)}")


def native(exc: BaseException) -> BaseException:
    """The driver's own error behind a SQLAlchemy one (which wraps asyncpg's twice)."""
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        wrapped = exc.orig.__cause__
        return wrapped if isinstance(wrapped, _driver_errors()) else exc.orig
    return exc


def connection_lost(exc: BaseException) -> bool:
    """Whether the error says the connection is gone, or could not be made: not the server
    refusing a statement, after which the connection is fine."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    cause = native(exc)
    sqlstate = getattr(cause, "sqlstate", None)
    if isinstance(sqlstate, str):
        return _among(sqlstate, _PG_LOST)
    return isinstance(cause, (ConnectionError, *_asyncpg_errors()[1]))


def kind_of(cause: BaseException) -> type[StorageError]:
    """Which `StorageError` a driver's error is."""
    if isinstance(cause, sqlite3.Error):
        code = getattr(cause, "sqlite_errorcode", None)
        primary = None if code is None else code & 0xFF
        if primary in _SQLITE_TRANSIENT:
            return TransientStorageError
        if primary in _SQLITE_PERMANENT:
            return PermanentStorageError
        return StorageError
    sqlstate = getattr(cause, "sqlstate", None)
    if isinstance(sqlstate, str):
        if _among(sqlstate, _PG_TRANSIENT):
            return TransientStorageError
        if _among(sqlstate, _PG_PERMANENT):
            return PermanentStorageError
        return StorageError
    if isinstance(cause, TimeoutError) or connection_lost(cause):
        return TransientStorageError
    return StorageError


def _among(sqlstate: str, codes: frozenset[str]) -> bool:
    """Whether the SQLSTATE is one of `codes`, or of a class (its first two characters) there."""
    return sqlstate in codes or sqlstate[:2] in codes


def _explain(cause: BaseException) -> str:
    text = str(cause).strip() or type(cause).__name__
    if isinstance(cause, sqlite3.Error):  # the hints are SQLite's alone
        lowered = text.lower()
        for fragment, hint in _SQLITE_HINTS:
            if fragment in lowered:
                return f"{hint} ({text})"
    return text
