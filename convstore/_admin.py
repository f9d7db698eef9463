"""Database operations for the command line that the store does not offer.

Migrations on demand, listings across all sessions, interruption counts per reason, purging old
history and importing the original module's snapshot files. Written with SQLAlchemy Core against
the tables of `_schema`, so they run alike on SQLite and PostgreSQL; each write is one short
transaction, started with ``BEGIN IMMEDIATE`` on SQLite as the store's writes are.
"""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from alembic.util import CommandError
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from convstore import _migrate, _validate
from convstore._engine import (
    check_sqlite_path,
    create_engine,
    describe,
    is_sqlite_memory,
    resolve_url,
)
from convstore._errors import storage_errors
from convstore._repository import newest, role_of
from convstore._schema import interruptions, messages, retry_events, sessions
from convstore._store import DEFAULT_MAX_MESSAGES, Store, connect
from convstore._types import utcnow
from convstore.exceptions import ConfigurationError, InvalidArgument, SchemaError

#: Rows deleted per transaction by `purge`, so that writers never wait long for it.
PURGE_BATCH = 1000

# -- engines and stores ------------------------------------------------------------------------


def shown(url: URL) -> str:
    """The URL as the user wrote it, more or less: no driver name and no password."""
    return describe(url.set(drivername=url.get_backend_name()))


def open_engine(url: str, *, create: bool, single_use: bool = False) -> AsyncEngine:
    """An engine for `url`; unless `create`, a SQLite file that does not exist is an error.

    Commands that only read or delete must not leave an empty database behind a mistyped path.
    """
    resolved = resolve_url(url)
    check_sqlite_path(resolved)
    if not create and resolved.get_backend_name() == "sqlite" and not is_sqlite_memory(resolved):
        path = Path(resolved.database or "").expanduser()
        if not resolved.query.get("uri") and not path.is_file():
            raise ConfigurationError(
                f"no SQLite database at {str(path)!r}: pass --url or set CONVSTORE_DATABASE_URL, "
                "or create it with `convstore upgrade`"
            )
    return create_engine(resolved, single_use=single_use)


@asynccontextmanager
async def open_store(
    url: str, *, migrate: bool, max_messages: int = DEFAULT_MAX_MESSAGES
) -> AsyncIterator[Store]:
    """A store on `url`; with `migrate` the database is created or upgraded, else it must be
    at the newest revision already."""
    engine = open_engine(url, create=migrate)
    try:
        if not migrate:
            await require_head(engine)
        async with connect(engine, migrate=migrate, max_messages=max_messages) as store:
            yield store
    finally:
        await engine.dispose()


# -- migrations --------------------------------------------------------------------------------


async def current_revision(engine: AsyncEngine) -> str | None:
    """The revision the database is at; None when it has no convstore tables."""
    with storage_errors("connect", shown(engine.url)):
        async with engine.connect() as conn:
            current = await conn.run_sync(_migrate.current_revision)
            await conn.rollback()
    return current


async def require_head(engine: AsyncEngine) -> None:
    """Raise SchemaError, naming the command that fixes it, unless the database is up to date."""
    current = await current_revision(engine)
    head = _migrate.head_revision()
    if current == head:
        return
    _migrate.check_revision(current, migrate=True)  # raises for a newer convstore's database
    found = "has no convstore tables" if current is None else f"is at revision {current}"
    raise SchemaError(
        f"the database {shown(engine.url)} {found}; this convstore needs revision {head}: "
        "run `convstore upgrade`"
    )


async def migrate(
    engine: AsyncEngine, action: Literal["upgrade", "downgrade"], target: str
) -> tuple[str | None, str | None]:
    """Run alembic's upgrade or downgrade to `target`; the revisions before and after."""
    with storage_errors(action, shown(engine.url)):
        async with engine.connect() as conn:
            before = await conn.run_sync(_migrate.current_revision)
            # The migration lock's first statement must run outside a transaction.
            await conn.rollback()
            _migrate.check_revision(before, migrate=True)  # refuses a newer convstore's database
            try:
                await _migrate.run_alembic(conn, action, target)
            except CommandError as exc:
                raise InvalidArgument(f"cannot {action} to {target!r}: {exc}") from exc
            after = await conn.run_sync(_migrate.current_revision)
            await conn.rollback()
    return before, after


# -- listings ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """One stored session, with how often it was interrupted."""

    session_id: str
    created_at: datetime
    saved_at: datetime
    message_count: int
    interrupted_at: datetime | None
    interrupt_reason: str | None
    owner: str | None
    lease_expires_at: datetime | None
    #: Rows in the crash history for this session, resolved or not.
    interruptions: int

    def status(self, now: datetime) -> str:
        """'interrupted', 'running' (a live lease), 'lease expired' (its owner died) or 'idle'."""
        if self.interrupted_at is not None:
            return "interrupted"
        if self.lease_expires_at is not None:
            return "running" if self.lease_expires_at >= now else "lease expired"
        return "idle"


async def list_sessions(
    engine: AsyncEngine, *, limit: int | None = None, session_id: str | None = None
) -> list[SessionInfo]:
    """Sessions, most recently saved first; or just the one named."""
    history = (
        select(func.count())
        .select_from(interruptions)
        .where(interruptions.c.session_id == sessions.c.session_id)
        .scalar_subquery()
    )
    s = sessions.c
    query = (
        select(
            s.session_id,
            s.created_at,
            s.saved_at,
            s.message_count,
            s.interrupted_at,
            s.interrupt_reason,
            s.owner,
            s.lease_expires_at,
            history,
        )
        .order_by(s.saved_at.desc(), s.session_id)
        .limit(limit)
    )
    if session_id is not None:
        query = query.where(s.session_id == session_id)
    with storage_errors("sessions", shown(engine.url)):
        async with engine.connect() as conn:
            rows = (await conn.execute(query)).all()
    return [SessionInfo(*row) for row in rows]


async def count_sessions(engine: AsyncEngine, *, interrupted: bool = False) -> int:
    """How many sessions are stored (or marked interrupted)."""
    query = select(func.count()).select_from(sessions)
    if interrupted:
        query = query.where(sessions.c.interrupted_at.is_not(None))
    with storage_errors("sessions", shown(engine.url)):
        async with engine.connect() as conn:
            return int((await conn.execute(query)).scalar_one())


@dataclass(frozen=True, slots=True)
class ReasonCount:
    """How often sessions were interrupted for one reason, and how many of those came back."""

    reason: str | None
    interruptions: int
    resolved: int
    latest: datetime


async def interruptions_by_reason(
    engine: AsyncEngine, since: datetime | None = None
) -> list[ReasonCount]:
    """Interruptions per reason (since a time), the most frequent first."""
    i = interruptions.c
    count = func.count().label("n")
    query = (
        select(i.reason, count, func.count(i.resolved_at), func.max(i.interrupted_at))
        .group_by(i.reason)
        .order_by(count.desc(), i.reason.nulls_last())
    )
    if since is not None:
        query = query.where(i.interrupted_at >= since)
    with storage_errors("stats", shown(engine.url)):
        async with engine.connect() as conn:
            rows = (await conn.execute(query)).all()
    return [ReasonCount(*row) for row in rows]


# -- purge -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PurgeReport:
    """What `purge` removed, or would remove."""

    sessions: int = 0
    messages: int = 0
    #: Open interruptions of the deleted sessions, marked resolved (they stay in the history).
    resolved: int = 0
    retry_events: int = 0
    interruptions: int = 0


@asynccontextmanager
async def _write(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection in a write transaction, committed when the block succeeds."""
    async with engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            # Take the write lock now, so that the transaction never has to upgrade to it.
            await conn.exec_driver_sql("BEGIN IMMEDIATE")
        yield conn


async def purge(engine: AsyncEngine, cutoff: datetime, *, dry_run: bool) -> PurgeReport:
    """Delete sessions not saved since `cutoff`, then retry events and resolved interruptions
    from before it, in batches of short transactions; with `dry_run`, only count them.

    A session whose lease is alive is running and kept, however old its last save. Deleting a
    session resolves its open interruptions, as `Store.delete_snapshot` does.
    """
    now = utcnow()
    s, m, i, r = sessions.c, messages.c, interruptions.c, retry_events.c
    stale = (s.saved_at < cutoff) & (s.lease_expires_at.is_(None) | (s.lease_expires_at < now))
    old_events = r.created_at < cutoff
    old_history = (i.resolved_at < cutoff) & (i.interrupted_at < cutoff)
    with storage_errors("purge", shown(engine.url)):
        if dry_run:
            stale_ids = select(s.session_id).where(stale)
            async with engine.connect() as conn:

                async def count(table: Any, condition: Any) -> int:
                    query = select(func.count()).select_from(table).where(condition)
                    return int((await conn.execute(query)).scalar_one())

                return PurgeReport(
                    sessions=await count(sessions, stale),
                    messages=await count(messages, m.session_id.in_(stale_ids)),
                    resolved=await count(
                        interruptions, i.session_id.in_(stale_ids) & i.resolved_at.is_(None)
                    ),
                    retry_events=await count(retry_events, old_events),
                    interruptions=await count(interruptions, old_history),
                )
        totals = dict.fromkeys(("sessions", "messages", "resolved"), 0)
        while True:
            async with _write(engine) as conn:
                # FOR UPDATE: on PostgreSQL a concurrent save waits rather than lose its rows.
                ids = (
                    (
                        await conn.execute(
                            select(s.session_id).where(stale).limit(PURGE_BATCH).with_for_update()
                        )
                    )
                    .scalars()
                    .all()
                )
                if not ids:
                    break
                batch = {
                    "messages": await conn.execute(delete(messages).where(m.session_id.in_(ids))),
                    "sessions": await conn.execute(
                        delete(sessions).where(s.session_id.in_(ids) & stale)
                    ),
                    "resolved": await conn.execute(
                        update(interruptions)
                        .where(i.session_id.in_(ids), i.resolved_at.is_(None))
                        .values(resolved_at=now)
                    ),
                }
            for key, result in batch.items():
                totals[key] += result.rowcount
        return PurgeReport(
            **totals,
            retry_events=await _delete_in_batches(engine, retry_events, r.id, old_events),
            interruptions=await _delete_in_batches(engine, interruptions, i.id, old_history),
        )


async def _delete_in_batches(engine: AsyncEngine, table: Any, key: Any, condition: Any) -> int:
    """Delete the rows matching `condition`, PURGE_BATCH per transaction; how many."""
    deleted = 0
    while True:
        async with _write(engine) as conn:
            batch = select(key).where(condition).limit(PURGE_BATCH).scalar_subquery()
            count = (await conn.execute(delete(table).where(key.in_(batch)))).rowcount
        deleted += count
        if count < PURGE_BATCH:
            return deleted


# -- import ------------------------------------------------------------------------------------


class MalformedFile(ValueError):
    """A snapshot file that cannot be imported; the message says what is wrong with it."""


@dataclass(frozen=True, slots=True)
class SnapshotFile:
    """One session as the original module stored it in its JSON file."""

    session_id: str
    saved_at: datetime
    message_count: int
    messages: list[Any]
    extra: dict[str, Any]
    interrupted_at: datetime | None


def read_snapshot_file(path: Path) -> SnapshotFile:
    """Parse one of the original module's files; MalformedFile says what is wrong with it.

    A file the original wrote when it marked an unknown session may lack everything but the
    session id and the interruption: it becomes an empty session saved when it was marked.
    """
    try:
        data = json.loads(path.read_bytes())
    except (OSError, UnicodeDecodeError) as exc:
        raise MalformedFile(f"cannot read it: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise MalformedFile(f"not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise MalformedFile(f"expected a JSON object, found {type(data).__name__}")
    if "session_id" not in data:
        raise MalformedFile("it has no 'session_id'")
    try:
        session_id = _validate.session_id(data["session_id"])
    except InvalidArgument as exc:
        raise MalformedFile(str(exc)) from exc
    interrupted_at = (
        _epoch(data, "interrupted_at", required=True) if data.get("interrupted") is True else None
    )
    saved_at = _epoch(data, "saved_at", required=interrupted_at is None) or interrupted_at
    assert saved_at is not None  # one of the two is required
    history = data.get("messages", [])
    if not isinstance(history, list):
        raise MalformedFile(f"'messages' must be a list, not {type(history).__name__}")
    count = data.get("message_count", len(history))
    if not isinstance(count, int) or isinstance(count, bool) or count < 0:
        raise MalformedFile(f"'message_count' must be an int >= 0, not {count!r}")
    extra = data.get("extra") or {}
    if not isinstance(extra, dict):
        raise MalformedFile(f"'extra' must be an object, not {type(extra).__name__}")
    return SnapshotFile(
        session_id, saved_at, max(count, len(history)), history, extra, interrupted_at
    )


def _epoch(data: Mapping[str, Any], key: str, *, required: bool) -> datetime | None:
    """The epoch-seconds field as an aware UTC datetime."""
    value = data.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        raise MalformedFile(f"{key!r} must be a number of seconds since the epoch, not {value!r}")
    try:
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise MalformedFile(f"{key!r} is out of range: {value!r}") from exc


#: What importing one file did to the database.
ImportOutcome = Literal["new", "updated", "marked", "unchanged"]


async def import_snapshot(
    engine: AsyncEngine, record: SnapshotFile, max_messages: int
) -> ImportOutcome:
    """Store one file's session with its own times and interruption, in one transaction.

    Idempotent: a session already stored with the same or a newer save keeps its snapshot, and
    an interruption already in the history (same session, same time) is not added again. An
    interruption followed by a newer stored save is recorded as resolved by that save.
    """
    s, i = sessions.c, interruptions.c
    async with _write(engine) as conn:
        stored = (
            await conn.execute(
                select(s.saved_at).where(s.session_id == record.session_id).with_for_update()
            )
        ).scalar_one_or_none()
        outcome: ImportOutcome = "unchanged"
        if stored is None or stored < record.saved_at:
            await _write_snapshot(conn, record, max_messages, exists=stored is not None)
            outcome = "new" if stored is None else "updated"
            stored = record.saved_at
        at = record.interrupted_at
        if at is not None:
            seen = await conn.execute(
                select(i.id).where(i.session_id == record.session_id, i.interrupted_at == at)
            )
            if seen.first() is None:
                # A save after the interruption, newer than this file's, ended it.
                resolved_at = stored if stored > record.saved_at and stored >= at else None
                await conn.execute(
                    insert(interruptions).values(
                        session_id=record.session_id, interrupted_at=at, resolved_at=resolved_at
                    )
                )
                if resolved_at is None:
                    await conn.execute(
                        update(sessions)
                        .where(
                            s.session_id == record.session_id,
                            s.interrupted_at.is_(None) | (s.interrupted_at < at),
                        )
                        .values(interrupted_at=at, interrupt_reason=None)
                    )
                outcome = "marked" if outcome == "unchanged" else outcome
    return outcome


async def _write_snapshot(
    conn: AsyncConnection, record: SnapshotFile, max_messages: int, *, exists: bool
) -> None:
    """Replace the session's row and messages with the file's; a save ends older interruptions."""
    s, m, i = sessions.c, messages.c, interruptions.c
    saved = record.saved_at
    values = {"saved_at": saved, "message_count": record.message_count, "extra": record.extra}
    if exists:
        await conn.execute(update(sessions).where(s.session_id == record.session_id).values(values))
        await conn.execute(
            update(sessions)
            .where(s.session_id == record.session_id, s.interrupted_at <= saved)
            .values(interrupted_at=None, interrupt_reason=None)
        )
        await conn.execute(
            update(interruptions)
            .where(
                i.session_id == record.session_id,
                i.resolved_at.is_(None),
                i.interrupted_at <= saved,
            )
            .values(resolved_at=saved)
        )
        await conn.execute(delete(messages).where(m.session_id == record.session_id))
    else:
        created = min(saved, record.interrupted_at or saved)
        await conn.execute(
            insert(sessions).values(session_id=record.session_id, created_at=created, **values)
        )
    kept = newest(record.messages, max_messages)
    first = record.message_count - len(kept)
    if kept:
        await conn.execute(
            insert(messages),
            [
                {"session_id": record.session_id, "seq": seq, "role": role_of(msg), "body": msg}
                for seq, msg in enumerate(kept, start=first)
            ],
        )


@dataclass
class ImportReport:
    """What `import_files` did, file by file."""

    files: int = 0
    new: int = 0
    updated: int = 0
    marked: int = 0
    unchanged: int = 0
    #: (file name, what is wrong with it)
    malformed: list[tuple[str, str]] = field(default_factory=list)


def snapshot_files(directory: Path) -> list[Path]:
    """The ``*.json`` files of `directory`, in name order."""
    if not directory.is_dir():
        raise ConfigurationError(f"{str(directory)!r} is not a directory")
    try:
        return sorted(p for p in directory.glob("*.json") if p.is_file())
    except OSError as exc:
        raise ConfigurationError(f"cannot list {str(directory)!r}: {exc}") from exc


async def import_files(
    engine: AsyncEngine,
    paths: Sequence[Path],
    *,
    max_messages: int = DEFAULT_MAX_MESSAGES,
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Import the files one by one; malformed ones are reported and skipped. `progress` is
    called with the number of files done after each file."""
    report = ImportReport(files=len(paths))
    for done, path in enumerate(paths, start=1):
        try:
            record = read_snapshot_file(path)
            with storage_errors("import-json", shown(engine.url)):
                outcome = await import_snapshot(engine, record, max_messages)
        except (MalformedFile, InvalidArgument) as exc:
            # InvalidArgument: a message the codec refuses, e.g. one nested too deep.
            report.malformed.append((path.name, str(exc)))
        else:
            setattr(report, outcome, getattr(report, outcome) + 1)
        if progress is not None:
            progress(done)
    return report
