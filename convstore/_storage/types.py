"""Column types that behave the same on every backend: UTC datetimes and JSON documents."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, Dialect, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeDecorator, TypeEngine

from convstore._storage import codec
from convstore._storage.times import (
    SQLITE_DATETIME_FORMAT,
    from_sqlite_text,
    to_sqlite_text,
    utcnow,
)

__all__ = [
    "SQLITE_DATETIME_FORMAT",
    "JSONDocument",
    "JSONText",
    "UTCDateTime",
    "from_sqlite_text",
    "to_sqlite_text",
    "utcnow",
]


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that reads back timezone-aware UTC, even on SQLite, which forgets zones."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: convstore stores aware UTC times only")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class _JSONBText(JSONB):
    """JSONB that is written and read as JSON text, leaving the encoding to convstore's codec."""

    def bind_processor(self, dialect: Dialect) -> None:
        return None

    def result_processor(self, dialect: Dialect, coltype: object) -> None:
        return None


class JSONDocument(TypeDecorator[Any]):
    """A JSON value encoded by convstore's codec: TEXT on SQLite, JSONB on PostgreSQL."""

    impl = Text
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(_JSONBText())
        return dialect.type_descriptor(Text())

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        if value is None:
            return None
        return codec.encode(value, jsonb=dialect.name == "postgresql")

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        if isinstance(value, str | bytes):
            return codec.decode(value)
        # An engine that parses JSON itself (asyncpg's default codec) hands over the value.
        return codec.untag(value)


class JSONText(JSONDocument):
    """A JSON value encoded by convstore's codec, kept as TEXT on every backend.

    For convstore's own state, which no query looks inside: PostgreSQL's jsonb would parse it on
    every write and store its numbers several times larger (a 900-byte window of a 100-message
    conversation outgrows the 2 KB at which PostgreSQL starts compressing a row's values).
    """

    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        return Text()
