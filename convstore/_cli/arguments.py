"""Reading the command line's arguments: times, counts and the database URL."""

from __future__ import annotations

import argparse
import os
import re
from datetime import UTC, datetime, timedelta

DEFAULT_URL = "sqlite:///convstore.db"
#: The demo's own database, never the user's real one.
DEMO_URL = "sqlite:///convstore-demo.db"
URL_VARIABLE = "CONVSTORE_DATABASE_URL"
SCHEMA_VARIABLE = "CONVSTORE_SCHEMA"

_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def point_in_time(text: str) -> datetime:
    """A time given as an age (``90s``, ``15m``, ``24h``, ``7d``, ``2w``) or an ISO 8601 time
    (UTC unless it names a zone)."""
    match = _DURATION.fullmatch(text.strip())
    try:
        if match:
            return datetime.now(UTC) - timedelta(seconds=float(match[1]) * _UNIT_SECONDS[match[2]])
        value = datetime.fromisoformat(text)
    except (ValueError, OverflowError):
        pass
    else:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    raise argparse.ArgumentTypeError(
        f"expected an age such as 24h or 7d, or an ISO time such as 2026-11-28T08:00, not {text!r}"
    )


def count(text: str, minimum: int = 0) -> int:
    """A whole number of at least `minimum`."""
    try:
        value = int(text)
    except ValueError:
        value = minimum - 1
    if value < minimum:
        raise argparse.ArgumentTypeError(f"expected a whole number >= {minimum}, not {text!r}")
    return value


def positive(text: str) -> int:
    """A whole number of at least 1."""
    return count(text, minimum=1)


def database_url(args: argparse.Namespace) -> str:
    """--url, else $CONVSTORE_DATABASE_URL, else a convstore.db file in the current directory."""
    url: str | None = getattr(args, "url", None)
    return url or os.environ.get(URL_VARIABLE) or DEFAULT_URL


def database_schema(args: argparse.Namespace) -> str | None:
    """--schema, else $CONVSTORE_SCHEMA, else None: PostgreSQL's default schema."""
    schema: str | None = getattr(args, "schema", None)
    return schema or os.environ.get(SCHEMA_VARIABLE) or None
