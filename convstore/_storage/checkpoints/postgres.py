"""Checkpoints on PostgreSQL: each operation one transaction on a pooled asyncpg connection,
run again on a new connection if the connection is lost (every one of them is repeatable: a
second run stores what the first did)."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

import asyncpg

from convstore._storage import codec
from convstore._storage import statements as shared
from convstore._storage.checkpoints import statements
from convstore._storage.checkpoints.records import Cursor, Listing, StoredCheckpoint, StoredWrite
from convstore._storage.checkpoints.repository import (
    CheckpointRepository,
    listing_shape,
    listing_values,
    stored,
)
from convstore._storage.postgres import PostgresRepository
from convstore._storage.reconnect import Progress
from convstore._storage.statements import Compiled, compiled

T = TypeVar("T")


def _pg(statement: Any) -> Compiled:
    return compiled(statement, "postgresql")


_TOUCH = _pg(statements.touch_session("postgresql"))
_ENSURE = _pg(statements.ensure_session("postgresql"))
_RESOLVE = _pg(shared.resolve_session())
_INSERT = _pg(statements.insert_checkpoint("postgresql"))
_WRITE = {r: _pg(statements.insert_write("postgresql", replace=r)) for r in (False, True)}
_DELETE_UNKEPT_WRITES = _pg(statements.delete_unkept_writes())
_DELETE_UNKEPT = _pg(statements.delete_unkept_checkpoints())
_SELECT = {b: _pg(statements.select_checkpoint("postgresql", by_id=b)) for b in (False, True)}
_NAMESPACES = _pg(statements.namespaces())
_DELETE_THREAD_WRITES = _pg(statements.delete_thread_writes())
_DELETE_THREAD = _pg(statements.delete_thread_checkpoints())
_DELETE_RUN_WRITES = _pg(statements.delete_run_writes("postgresql"))
_DELETE_RUN = _pg(statements.delete_run_checkpoints("postgresql"))
_THREAD_EXISTS = _pg(statements.thread_exists())
_COPY = _pg(statements.copy_checkpoints("postgresql"))
_COPY_WRITES = _pg(statements.copy_writes("postgresql"))


@functools.cache
def _listing(shape: statements.ListingShape) -> Compiled:
    return _pg(statements.listing("postgresql", shape))


class PostgresCheckpoints(CheckpointRepository):
    """Checkpoints through the store's PostgreSQL repository and its connections."""

    def __init__(self, repository: PostgresRepository) -> None:
        self._repository = repository

    async def _write(self, action: str, work: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
        async def attempt(conn: asyncpg.Connection, progress: Progress) -> T:
            async with conn.transaction():
                result = await work(conn)
                progress.committing = True
            return result

        return await self._repository._run(action, attempt, repeatable=True)

    async def _read(self, action: str, work: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
        async def attempt(conn: asyncpg.Connection, progress: Progress) -> T:
            return await work(conn)

        return await self._repository._run(action, attempt, repeatable=True)

    async def put(self, checkpoint: StoredCheckpoint, keep_last: int | None, now: datetime) -> None:
        row = _INSERT.args(
            {
                "thread": checkpoint.thread_id,
                "ns": checkpoint.checkpoint_ns,
                "id": checkpoint.checkpoint_id,
                "parent": checkpoint.parent_checkpoint_id,
                "type": checkpoint.type,
                "checkpoint": checkpoint.checkpoint,
                "metadata": codec.encode(checkpoint.metadata, jsonb=True),
            }
        )

        async def put(conn: asyncpg.Connection) -> None:
            await _touch(conn, checkpoint.thread_id, now)
            await conn.execute(_INSERT.sql, *row)
            if keep_last is not None:
                await _trim(conn, checkpoint.thread_id, checkpoint.checkpoint_ns, keep_last)

        await self._write("langgraph put", put)

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
        statement = _WRITE[replace]
        key = {"thread": thread_id, "ns": checkpoint_ns, "id": checkpoint_id}
        rows = [
            statement.args(
                key
                | {
                    "task": w.task_id,
                    "idx": w.idx,
                    "channel": w.channel,
                    "type": w.type,
                    "value": w.value,
                    "path": w.task_path,
                }
            )
            for w in writes
        ]

        async def put_writes(conn: asyncpg.Connection) -> None:
            # The thread's checkpoint made its session; a write after the thread was deleted
            # makes it again rather than fail.
            await conn.execute(_ENSURE.sql, *_ENSURE.args({"session": thread_id, "now": now}))
            await conn.executemany(statement.sql, rows)

        await self._write("langgraph put_writes", put_writes)

    async def get(
        self, thread_id: str, checkpoint_ns: str, checkpoint_id: str | None
    ) -> StoredCheckpoint | None:
        query = _SELECT[checkpoint_id is not None]
        args = query.args({"thread": thread_id, "ns": checkpoint_ns, "id": checkpoint_id})

        async def get(conn: asyncpg.Connection) -> Any:
            return await conn.fetchrow(query.sql, *args)

        row = await self._read("langgraph get_tuple", get)
        return None if row is None else stored(row, row[7] or ())

    async def page(
        self, listing: Listing, after: Cursor | None, limit: int
    ) -> list[StoredCheckpoint]:
        query = _listing(listing_shape(listing, after, per_key=False))
        values = listing_values(listing, after, limit)
        values["metadata"] = codec.encode(listing.metadata, jsonb=True)
        args = query.args(values)

        async def page(conn: asyncpg.Connection) -> Any:
            return await conn.fetch(query.sql, *args)

        rows = await self._read("langgraph list", page)
        return [stored(row, row[7] or ()) for row in rows]

    async def delete_runs(self, run_ids: Sequence[str]) -> None:
        runs = list(run_ids)

        async def delete_runs(conn: asyncpg.Connection) -> None:
            await conn.execute(_DELETE_RUN_WRITES.sql, runs)
            await conn.execute(_DELETE_RUN.sql, runs)

        await self._write("langgraph delete_for_runs", delete_runs)

    async def copy_thread(self, source: str, target: str, now: datetime) -> None:
        args = _COPY.args({"source": source, "target": target})

        async def copy(conn: asyncpg.Connection) -> None:
            if not await conn.fetchval(_THREAD_EXISTS.sql, source):
                return
            await _touch(conn, target, now)
            await conn.execute(_COPY.sql, *args)
            await conn.execute(
                _COPY_WRITES.sql, *_COPY_WRITES.args({"source": source, "target": target})
            )

        await self._write("langgraph copy_thread", copy)

    async def prune(self, thread_ids: Sequence[str], keep: int | None) -> None:
        async def prune(conn: asyncpg.Connection) -> None:
            for thread_id in thread_ids:
                if keep is None:
                    await conn.execute(_DELETE_THREAD_WRITES.sql, thread_id)
                    await conn.execute(_DELETE_THREAD.sql, thread_id)
                    continue
                for (ns,) in await conn.fetch(_NAMESPACES.sql, thread_id):
                    await _trim(conn, thread_id, ns, keep)

        await self._write("langgraph prune", prune)


async def _touch(conn: asyncpg.Connection, thread_id: str, now: datetime) -> None:
    """Create the thread's session or mark it saved, ending any interruption."""
    await conn.execute(_TOUCH.sql, *_TOUCH.args({"session": thread_id, "now": now}))
    await conn.execute(_RESOLVE.sql, *_RESOLVE.args({"session": thread_id, "now": now}))


async def _trim(conn: asyncpg.Connection, thread_id: str, ns: str, keep: int) -> None:
    """Delete the namespace's checkpoints older than its `keep` newest, writes first."""
    args = _DELETE_UNKEPT.args({"thread": thread_id, "ns": ns, "skip": keep - 1})
    await conn.execute(_DELETE_UNKEPT_WRITES.sql, *args)
    await conn.execute(_DELETE_UNKEPT.sql, *args)
