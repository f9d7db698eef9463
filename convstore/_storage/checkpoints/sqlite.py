"""Checkpoints on SQLite: each operation is one function run on the connection's own thread.

Writes go through the store's group-commit writer, in its transactions; reads run on the
store's connections, each in one read transaction, so a checkpoint and its writes come from one
commit.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from convstore._storage import codec
from convstore._storage import statements as shared
from convstore._storage.checkpoints import statements
from convstore._storage.checkpoints.records import Cursor, Listing, StoredCheckpoint, StoredWrite
from convstore._storage.checkpoints.repository import (
    CheckpointRepository,
    listing_shape,
    listing_values,
    sqlite_metadata_values,
    stored,
)
from convstore._storage.errors import storage_errors
from convstore._storage.sqlite.operations import Work
from convstore._storage.sqlite.repository import SQLiteRepository
from convstore._storage.statements import Compiled, check_order, compiled
from convstore._storage.types import to_sqlite_text

T = TypeVar("T")

_KEY = ("thread", "ns", "id")
_TOUCH = check_order(
    compiled(statements.touch_session("sqlite"), "sqlite"), ("session", "now", "now")
)
_ENSURE = check_order(
    compiled(statements.ensure_session("sqlite"), "sqlite"), ("session", "now", "now")
)
_RESOLVE = check_order(compiled(shared.resolve_session(), "sqlite"), ("now", "session"))
_INSERT = check_order(
    compiled(statements.insert_checkpoint("sqlite"), "sqlite"),
    (*_KEY, "parent", "type", "checkpoint", "metadata"),
)
_WRITE = {
    replace: check_order(
        compiled(statements.insert_write("sqlite", replace=replace), "sqlite"),
        (*_KEY, "task", "idx", "channel", "type", "value", "path"),
    )
    for replace in (False, True)
}
_TRIM = ("thread", "ns", "thread", "ns", "skip")
_DELETE_UNKEPT_WRITES = check_order(compiled(statements.delete_unkept_writes(), "sqlite"), _TRIM)
_DELETE_UNKEPT = check_order(compiled(statements.delete_unkept_checkpoints(), "sqlite"), _TRIM)
_SELECT = {
    by_id: compiled(statements.select_checkpoint("sqlite", by_id=by_id), "sqlite")
    for by_id in (False, True)
}
_SELECT_WRITES = check_order(compiled(statements.select_writes(), "sqlite"), _KEY)
_NAMESPACES = compiled(statements.namespaces(), "sqlite")
_DELETE_THREAD_WRITES = compiled(statements.delete_thread_writes(), "sqlite")
_DELETE_THREAD = compiled(statements.delete_thread_checkpoints(), "sqlite")
_DELETE_RUN_WRITES = compiled(statements.delete_run_writes("sqlite"), "sqlite")
_DELETE_RUN = compiled(statements.delete_run_checkpoints("sqlite"), "sqlite")
_THREAD_EXISTS = compiled(statements.thread_exists(), "sqlite")
_COPY = check_order(compiled(statements.copy_checkpoints("sqlite"), "sqlite"), ("target", "source"))
_COPY_WRITES = check_order(
    compiled(statements.copy_writes("sqlite"), "sqlite"), ("target", "source")
)


@functools.cache
def _listing(shape: statements.ListingShape) -> Compiled:
    return compiled(statements.listing("sqlite", shape), "sqlite")


class SQLiteCheckpoints(CheckpointRepository):
    """Checkpoints through the store's SQLite repository."""

    def __init__(self, repository: SQLiteRepository) -> None:
        self._repository = repository

    async def _write(self, action: str, work: Work) -> Any:
        with storage_errors(action, self._repository.database):
            return await self._repository._writer.write(work)

    async def _read(self, action: str, fn: Callable[[sqlite3.Connection], T]) -> T:
        repository = self._repository
        with storage_errors(action, repository.database):
            async with repository._read_lock:
                return await repository._run(functools.partial(_in_read_transaction, fn))

    async def put(self, checkpoint: StoredCheckpoint, keep_last: int | None, now: datetime) -> None:
        at = to_sqlite_text(now)
        key = (checkpoint.thread_id, checkpoint.checkpoint_ns, checkpoint.checkpoint_id)

        def work(conn: sqlite3.Connection) -> None:
            metadata = codec.encode(checkpoint.metadata, jsonb=False)
            _touch(conn, checkpoint.thread_id, at)
            row = (checkpoint.parent_checkpoint_id, checkpoint.type, checkpoint.checkpoint)
            conn.execute(_INSERT.sql, (*key, *row, metadata))
            if keep_last is not None:
                _trim(conn, checkpoint.thread_id, checkpoint.checkpoint_ns, keep_last)

        await self._write("langgraph put", work)

    async def put_writes(
        self,
        thread_id: str,
        checkpoint_ns: str,
        checkpoint_id: str,
        writes: Sequence[StoredWrite],
        *,
        replace: bool,
        now: datetime,
    ) -> None:
        key = (thread_id, checkpoint_ns, checkpoint_id)
        rows = [(*key, w.task_id, w.idx, w.channel, w.type, w.value, w.task_path) for w in writes]
        at = to_sqlite_text(now)

        def work(conn: sqlite3.Connection) -> None:
            # The thread's checkpoint made its session; a write after the thread was deleted
            # makes it again rather than fail.
            conn.execute(_ENSURE.sql, (thread_id, at, at))
            conn.executemany(_WRITE[replace].sql, rows)

        await self._write("langgraph put_writes", work)

    async def get(
        self, thread_id: str, checkpoint_ns: str, checkpoint_id: str | None
    ) -> StoredCheckpoint | None:
        def get(conn: sqlite3.Connection) -> StoredCheckpoint | None:
            if checkpoint_id is None:
                row = conn.execute(_SELECT[False].sql, (thread_id, checkpoint_ns)).fetchone()
            else:
                row = conn.execute(_SELECT[True].sql, (thread_id, checkpoint_ns, checkpoint_id))
                row = row.fetchone()
            return None if row is None else _with_writes(conn, row)

        return await self._read("langgraph get_tuple", get)

    async def page(
        self, listing: Listing, after: Cursor | None, limit: int
    ) -> list[StoredCheckpoint]:
        query = _listing(listing_shape(listing, after, per_key=True))
        values = listing_values(listing, after, limit) | sqlite_metadata_values(listing.metadata)
        args = query.args(values)

        def page(conn: sqlite3.Connection) -> list[StoredCheckpoint]:
            return [_with_writes(conn, row) for row in conn.execute(query.sql, args).fetchall()]

        return await self._read("langgraph list", page)

    async def delete_runs(self, run_ids: Sequence[str]) -> None:
        rows = [(run,) for run in run_ids]

        def work(conn: sqlite3.Connection) -> None:
            conn.executemany(_DELETE_RUN_WRITES.sql, rows)
            conn.executemany(_DELETE_RUN.sql, rows)

        await self._write("langgraph delete_for_runs", work)

    async def copy_thread(self, source: str, target: str, now: datetime) -> None:
        at = to_sqlite_text(now)

        def work(conn: sqlite3.Connection) -> None:
            ((found,),) = conn.execute(_THREAD_EXISTS.sql, (source,)).fetchall()
            if not found:
                return
            _touch(conn, target, at)
            conn.execute(_COPY.sql, (target, source))
            conn.execute(_COPY_WRITES.sql, (target, source))

        await self._write("langgraph copy_thread", work)

    async def prune(self, thread_ids: Sequence[str], keep: int | None) -> None:
        def work(conn: sqlite3.Connection) -> None:
            for thread_id in thread_ids:
                if keep is None:
                    conn.execute(_DELETE_THREAD_WRITES.sql, (thread_id,))
                    conn.execute(_DELETE_THREAD.sql, (thread_id,))
                    continue
                for (ns,) in conn.execute(_NAMESPACES.sql, (thread_id,)).fetchall():
                    _trim(conn, thread_id, ns, keep)

        await self._write("langgraph prune", work)


def _touch(conn: sqlite3.Connection, thread_id: str, at: str) -> None:
    """Create the thread's session or mark it saved, ending any interruption."""
    conn.execute(_TOUCH.sql, (thread_id, at, at))
    conn.execute(_RESOLVE.sql, (at, thread_id))


def _trim(conn: sqlite3.Connection, thread_id: str, ns: str, keep: int) -> None:
    """Delete the namespace's checkpoints older than its `keep` newest, writes first."""
    args = (thread_id, ns, thread_id, ns, keep - 1)
    conn.execute(_DELETE_UNKEPT_WRITES.sql, args)
    conn.execute(_DELETE_UNKEPT.sql, args)


def _with_writes(conn: sqlite3.Connection, row: Sequence[Any]) -> StoredCheckpoint:
    """The checkpoint of `row`, with its writes read on the same connection."""
    return stored(row, conn.execute(_SELECT_WRITES.sql, tuple(row[:3])).fetchall())


def _in_read_transaction(fn: Callable[[sqlite3.Connection], T], conn: sqlite3.Connection) -> T:
    """`fn`'s result, its reads made in one transaction (the connection is in autocommit)."""
    conn.execute("BEGIN")
    try:
        return fn(conn)
    finally:
        conn.execute("COMMIT")
