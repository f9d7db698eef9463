"""The one place where driver and SQLAlchemy errors become convstore errors."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from convstore.exceptions import ConvstoreError, StorageError

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


def _driver_errors() -> tuple[type[Exception], ...]:
    """The exception classes of the database drivers that are installed."""
    errors: list[type[Exception]] = [SQLAlchemyError, sqlite3.Error, OSError]
    try:
        import asyncpg
    except ImportError:  # PostgreSQL support is an optional extra
        pass
    else:
        errors += [asyncpg.PostgresError, asyncpg.InterfaceError]
    return tuple(errors)


_DRIVER_ERRORS = _driver_errors()


@contextmanager
def storage_errors(action: str, database: str) -> Iterator[None]:
    """Translate any driver or SQLAlchemy error raised inside into a `StorageError`."""
    try:
        yield
    except ConvstoreError:
        raise
    except _DRIVER_ERRORS as exc:
        raise StorageError(f"{action} failed on {database}: {_explain(exc)}") from exc


def _explain(exc: BaseException) -> str:
    cause = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    text = str(cause).strip() or type(cause).__name__
    lowered = text.lower()
    for fragment, hint in _SQLITE_HINTS:
        if fragment in lowered:
            return f"{hint} ({text})"
    return text
