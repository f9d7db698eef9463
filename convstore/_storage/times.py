"""Timestamps as convstore stores them: aware UTC in Python, naive UTC text on SQLite. No
SQLAlchemy here, so that the command line's quick reads (`sqlite.quick`) can use them."""

from __future__ import annotations

from datetime import UTC, datetime

# How SQLAlchemy's SQLite dialect writes a DATETIME; the raw SQLite statements write the same text
# so that rows written either way sort and compare alike.
SQLITE_DATETIME_FORMAT = "%Y-%m-%d %H:%M:%S.%f"


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def to_sqlite_text(value: datetime) -> str:
    """The text SQLite stores for an aware datetime: naive UTC, microsecond precision."""
    # isoformat writes SQLITE_DATETIME_FORMAT several times faster than strftime does.
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def from_sqlite_text(value: str) -> datetime:
    """An aware UTC datetime from the text `to_sqlite_text` wrote."""
    try:
        # Parsing the zone with the rest costs an eighth of replacing it afterwards.
        return datetime.fromisoformat(value + "+00:00")
    except ValueError:  # text that carries a zone of its own
        return datetime.fromisoformat(value).astimezone(UTC)
