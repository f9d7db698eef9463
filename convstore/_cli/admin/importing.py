"""Importing snapshot files in the JSON-file format (one ``<session>.json`` file per session)."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import Text, bindparam, delete, func, insert, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from convstore import _validate
from convstore._cli.admin.database import display_url
from convstore._storage import codec
from convstore._storage.errors import storage_errors
from convstore._storage.rows import kept_messages, planned, role_of
from convstore._storage.schema import interruptions, messages, sessions
from convstore._storage.statements import CLEAR_MARKER, resolve_interruptions
from convstore._storage.store import DEFAULT_MAX_MESSAGES
from convstore._storage.transactions import write_transaction
from convstore.exceptions import ConfigurationError, InvalidArgument

#: Files imported per transaction: enough that commits cost little, few enough that a writer
#: beside the import waits a few milliseconds for one.
FILES_PER_TRANSACTION = 100


class MalformedFile(ValueError):
    """A snapshot file that cannot be imported; the message says what is wrong with it."""


@dataclass(frozen=True, slots=True)
class SnapshotFile:
    """One session as a snapshot file holds it."""

    session_id: str
    saved_at: datetime
    message_count: int
    messages: list[Any]
    extra: dict[str, Any]
    interrupted_at: datetime | None


def read_snapshot_file(path: Path) -> SnapshotFile:
    """Parse one snapshot file; MalformedFile says what is wrong with it.

    A file written when an unknown session was marked interrupted may lack everything but the
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
        count = _validate.whole_number("'message_count'", data.get("message_count", 0), minimum=0)
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
    extra = data.get("extra") or {}
    if not isinstance(extra, dict):
        raise MalformedFile(f"'extra' must be an object, not {type(extra).__name__}")
    try:
        # What the store could not encode (nested too deep, say) is refused here, before the
        # transaction it would undo, with the files beside it.
        codec.encode_many([*history, extra])
    except InvalidArgument as exc:
        raise MalformedFile(str(exc)) from exc
    return SnapshotFile(
        session_id, saved_at, max(count, len(history)), history, extra, interrupted_at
    )


def _epoch(data: Mapping[str, Any], key: str, *, required: bool) -> datetime | None:
    """The epoch-seconds field as an aware UTC datetime."""
    value = data.get(key)
    if value is None and not required:
        return None
    try:
        seconds = _validate.real_number(
            f"{key!r} (seconds since the epoch)", value, minimum=-math.inf
        )
    except InvalidArgument as exc:
        raise MalformedFile(str(exc)) from exc
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise MalformedFile(f"{key!r} is out of range: {value!r}") from exc


#: What importing one file did to the database.
ImportOutcome = Literal["new", "updated", "marked", "unchanged"]


async def import_snapshot(
    engine: AsyncEngine, record: SnapshotFile, max_messages: int
) -> ImportOutcome:
    """Store one file's session with its own times and interruption, in one transaction."""
    return (await import_batch(engine, [record], max_messages))[0]


async def import_batch(
    engine: AsyncEngine, records: Sequence[SnapshotFile], max_messages: int
) -> list[ImportOutcome]:
    """Store several files' sessions in one transaction (a commit per file costs more than the
    file); the outcomes are in session order.

    Sessions new to the database are inserted together, in two statements; the others, one by
    one. Idempotent: a session already stored with the same or a newer save keeps its snapshot,
    and an interruption already in the history (same session, same time) is not added again. An
    interruption followed by a newer stored save is recorded as resolved by that save.
    """
    ordered = sorted(records, key=lambda r: r.session_id)
    ids = sorted({r.session_id for r in ordered})
    s = sessions.c
    async with write_transaction(engine) as conn:
        if conn.dialect.name == "postgresql":
            # Imports of one session take turns, even before it has a row to lock: two runs at
            # once would otherwise both find it missing, or both miss each other's interruption.
            # Taken in session order, so that imports of overlapping batches cannot deadlock.
            keys = (
                func.unnest(
                    bindparam("keys", [f"convstore import {sid}" for sid in ids], type_=ARRAY(Text))
                )
                .table_valued("key")
                .render_derived(name="keys")
            )
            lock = func.pg_advisory_xact_lock(func.hashtextextended(keys.c.key, 0))
            await conn.execute(select(lock).select_from(keys))
        query = select(s.session_id, s.saved_at).where(s.session_id.in_(ids)).with_for_update()
        stored: dict[str, datetime] = {row[0]: row[1] for row in await conn.execute(query)}
        fresh = [r for r in _first_of_each(ordered) if r.session_id not in stored]
        await _insert_new(conn, fresh, max_messages)
        outcomes: list[ImportOutcome] = []
        for record in ordered:
            if fresh and record is fresh[0]:
                fresh.pop(0)
                if record.interrupted_at is not None:
                    await _add_interruption(conn, record, record.saved_at)
                outcomes.append("new")
            else:
                outcomes.append(await _import(conn, record, max_messages))
    return outcomes


def _first_of_each(ordered: Sequence[SnapshotFile]) -> list[SnapshotFile]:
    """The first record of each session, of records in session order."""
    return [r for n, r in enumerate(ordered) if n == 0 or ordered[n - 1].session_id != r.session_id]


async def _insert_new(
    conn: AsyncConnection, records: Sequence[SnapshotFile], max_messages: int
) -> None:
    """Insert sessions not in the database, and their messages, two statements for them all."""
    if not records:
        return
    rows = [_rows(record, max_messages) for record in records]
    await conn.execute(
        insert(sessions),
        [
            {
                **values,
                "session_id": r.session_id,
                "created_at": min(r.saved_at, r.interrupted_at or r.saved_at),
            }
            for r, (values, _) in zip(records, rows, strict=True)
        ],
    )
    bodies = [message for _, kept in rows for message in kept]
    if bodies:
        await conn.execute(insert(messages), bodies)


async def _import(conn: AsyncConnection, record: SnapshotFile, max_messages: int) -> ImportOutcome:
    """Store one file's session, in `conn`'s transaction, which holds the session's lock."""
    s = sessions.c
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
    if record.interrupted_at is not None and await _add_interruption(conn, record, stored):
        outcome = "marked" if outcome == "unchanged" else outcome
    return outcome


async def _add_interruption(conn: AsyncConnection, record: SnapshotFile, stored: datetime) -> bool:
    """Add the file's interruption to the history unless it is there; whether it was added.
    A save after the interruption, newer than this file's (`stored`), ended it."""
    s, i, at = sessions.c, interruptions.c, record.interrupted_at
    seen = await conn.execute(
        select(i.id).where(i.session_id == record.session_id, i.interrupted_at == at)
    )
    if seen.first() is not None:
        return False
    assert at is not None
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
    return True


def _created(record: SnapshotFile) -> datetime:
    """A new session's creation time: its save, or its interruption if that came first."""
    return min(record.saved_at, record.interrupted_at or record.saved_at)


def _rows(record: SnapshotFile, max_messages: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The file's session row values (but its id and creation time) and the message rows the
    cap keeps: the file holds the newest messages of the conversation."""
    offset = record.message_count - len(record.messages)
    plan = planned(None, record.messages, offset, max_messages)
    values = {
        "saved_at": record.saved_at,
        "message_count": record.message_count,
        "extra": record.extra,
        "message_shapes": None if plan.window is None else plan.window.to_json(),
    }
    kept, seqs = kept_messages(plan, record.messages, offset)
    rows = [
        {"session_id": record.session_id, "seq": seq, "role": role_of(msg), "body": msg}
        for seq, msg in zip(seqs, kept, strict=True)
    ]
    return values, rows


async def _write_snapshot(
    conn: AsyncConnection, record: SnapshotFile, max_messages: int, *, exists: bool
) -> None:
    """Replace the session's row and messages with the file's; a save ends older interruptions."""
    s, m, i = sessions.c, messages.c, interruptions.c
    saved = record.saved_at
    values, rows = _rows(record, max_messages)
    if exists:
        await conn.execute(update(sessions).where(s.session_id == record.session_id).values(values))
        await conn.execute(
            update(sessions)
            .where(s.session_id == record.session_id, s.interrupted_at <= saved)
            .values(CLEAR_MARKER)
        )
        await conn.execute(
            resolve_interruptions(i.session_id == record.session_id, i.interrupted_at <= saved),
            {"now": saved},
        )
        await conn.execute(delete(messages).where(m.session_id == record.session_id))
    else:
        await conn.execute(
            insert(sessions).values(
                session_id=record.session_id, created_at=_created(record), **values
            )
        )
    if rows:
        await conn.execute(insert(messages), rows)


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
    """Import the files, `FILES_PER_TRANSACTION` per transaction; malformed ones are reported
    and skipped. `progress` is called with the number of files done after each transaction."""
    report = ImportReport(files=len(paths))
    for start in range(0, len(paths), FILES_PER_TRANSACTION):
        records: list[SnapshotFile] = []
        for path in paths[start : start + FILES_PER_TRANSACTION]:
            try:
                records.append(read_snapshot_file(path))
            except MalformedFile as exc:
                report.malformed.append((path.name, str(exc)))
        with storage_errors("import-json", display_url(engine.url)):
            outcomes = await import_batch(engine, records, max_messages)
        for outcome in outcomes:
            setattr(report, outcome, getattr(report, outcome) + 1)
        if progress is not None:
            progress(min(start + FILES_PER_TRANSACTION, len(paths)))
    return report
