"""The scale workload's databases and floors, per backend: plain SQL through the driver (stdlib
sqlite3 with convstore's pragmas; asyncpg), doing the least each question needs."""

from __future__ import annotations

import asyncio
import os
import shutil
import sqlite3
from abc import ABC, abstractmethod
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy.engine import make_url

import convstore
from benchmarks import _scale_data as data

#: The summary as revision 0007 computed it, for the figure "before": a success's kind from
#: lag(), calls from count(DISTINCT), the percentile from ranking every wait.
OLD_SUMMARY = """
WITH tagged AS (
    SELECT call_id, operation, attempt, outcome, delay_s, cooldown_wait_s,
           coalesce(error_type, lag(error_type) OVER (PARTITION BY call_id ORDER BY attempt))
               AS kind
    FROM retry_events
), ranked AS (
    SELECT tagged.*,
           row_number() OVER (PARTITION BY operation, kind, delay_s IS NULL ORDER BY delay_s)
               AS rank,
           count(delay_s) OVER (PARTITION BY operation, kind) AS waits
    FROM tagged
)
SELECT operation, kind, count(DISTINCT call_id), count(*),
       sum(CASE WHEN outcome = 'retry' THEN 1 ELSE 0 END),
       sum(CASE WHEN outcome = 'giveup' THEN 1 ELSE 0 END),
       sum(CASE WHEN outcome = 'success' AND attempt > 1 THEN 1 ELSE 0 END),
       sum(delay_s), sum(cooldown_wait_s),
       max(CASE WHEN delay_s IS NOT NULL AND rank = (waits * 95 + 99) / 100 THEN delay_s END)
FROM ranked GROUP BY operation, kind ORDER BY operation, kind
"""
#: The least a summary can cost: one pass over every attempt.
ONE_PASS = "SELECT count(*), sum(delay_s) FROM retry_events"
LIST = (
    "SELECT session_id, message_count, interrupted_at, interrupt_reason FROM sessions "
    "WHERE interrupted_at IS NOT NULL ORDER BY interrupted_at DESC, session_id DESC"
)
#: Sessions deleted per transaction by the purge floor, as convstore's purge does.
BATCH = 1000
FILES_PER_TRANSACTION = 1000


class Backend(ABC):
    name: str

    @abstractmethod
    def url(self, database: str) -> str: ...

    @abstractmethod
    async def create(self, database: str) -> None: ...

    @abstractmethod
    async def drop(self, database: str) -> None: ...

    @abstractmethod
    async def copy(self, source: str, target: str) -> str: ...

    @abstractmethod
    async def fill(self, url: str, sizes: data.Sizes) -> None: ...

    @abstractmethod
    async def fetch(self, url: str, sql: str, *args: Any) -> list[Any]: ...

    @abstractmethod
    async def purge(self, url: str, cutoff: datetime) -> None: ...

    @abstractmethod
    async def import_files(self, url: str, files: Path) -> None: ...

    async def settle(self) -> None:  # noqa: B027 (nothing to do on SQLite)
        """Let the writes of the steps before end, so that they do not slow the next one."""

    async def build(self, database: str, sizes: data.Sizes | None) -> str:
        """A new database migrated by convstore, holding the workload when `sizes` is given."""
        await self.create(database)
        url = self.url(database)
        async with convstore.connect(url):
            pass
        if sizes is not None:
            await self.fill(url, sizes)
        return url

    async def list_interrupted(self, url: str) -> None:
        await self.fetch(url, LIST)

    async def one_pass(self, url: str) -> None:
        await self.fetch(url, ONE_PASS)

    async def old_summary(self, url: str) -> None:
        await self.fetch(url, OLD_SUMMARY)


def _snapshots(files: Path) -> list[dict[str, Any]]:
    return [orjson.loads(path.read_bytes()) for path in sorted(files.glob("*.json"))]


class SQLite(Backend):
    name = "scale SQLite"

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._open: dict[str, sqlite3.Connection] = {}

    def _path(self, database: str) -> Path:
        return self.directory / f"{database}.db"

    def url(self, database: str) -> str:
        return f"sqlite:///{self._path(database)}"

    def _db(self, url: str) -> sqlite3.Connection:
        if url not in self._open:
            db = sqlite3.connect(make_url(url).database or "", isolation_level=None)
            for pragma in ("busy_timeout = 30000", "synchronous = NORMAL", "foreign_keys = ON"):
                db.execute(f"PRAGMA {pragma}")
            self._open[url] = db
        return self._open[url]

    def _close(self, database: str) -> None:
        db = self._open.pop(self.url(database), None)
        if db is not None:
            db.close()

    async def create(self, database: str) -> None:
        self._path(database).unlink(missing_ok=True)

    async def drop(self, database: str) -> None:
        self._close(database)
        for suffix in ("", "-wal", "-shm"):
            await asyncio.to_thread(Path(f"{self._path(database)}{suffix}").unlink, True)

    async def copy(self, source: str, target: str) -> str:
        self._db(self.url(source)).execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self._close(source)
        await asyncio.to_thread(shutil.copyfile, self._path(source), self._path(target))
        return self.url(target)

    async def fill(self, url: str, sizes: data.Sizes) -> None:
        await asyncio.to_thread(data.fill_sqlite, Path(make_url(url).database or ""), sizes)

    async def fetch(self, url: str, sql: str, *args: Any) -> list[Any]:
        return self._db(url).execute(sql, args).fetchall()

    async def purge(self, url: str, cutoff: datetime) -> None:
        db, before, after = self._db(url), data.sqlite_time(cutoff), ""
        while True:
            db.execute("BEGIN IMMEDIATE")
            ids = [row[0] for row in db.execute(_OLD_IDS_SQLITE, (before, after, BATCH))]
            after = ids[-1] if ids else after
            if ids:
                marks = ", ".join("?" * len(ids))
                db.execute(f"DELETE FROM messages WHERE session_id IN ({marks})", ids)
                db.execute(f"DELETE FROM sessions WHERE session_id IN ({marks})", ids)
            db.execute("COMMIT")
            if not ids:
                return

    async def import_files(self, url: str, files: Path) -> None:
        db = self._db(url)
        snapshots = _snapshots(files)
        for start in range(0, len(snapshots), FILES_PER_TRANSACTION):
            db.execute("BEGIN IMMEDIATE")
            for s in snapshots[start : start + FILES_PER_TRANSACTION]:
                saved = data.sqlite_time(datetime.fromtimestamp(s["saved_at"], UTC))
                db.execute(
                    "INSERT INTO sessions (session_id, created_at, saved_at, message_count, "
                    "extra) VALUES (?, ?, ?, ?, ?)",
                    (s["session_id"], saved, saved, len(s["messages"]), orjson.dumps(s["extra"])),
                )
                db.executemany(
                    "INSERT INTO messages (session_id, seq, role, body) VALUES (?, ?, ?, ?)",
                    [
                        (s["session_id"], seq, m["role"], orjson.dumps(m))
                        for seq, m in enumerate(s["messages"])
                    ],
                )
            db.execute("COMMIT")


#: Batches walk the primary key, each from where the last ended.
_OLD_IDS_SQLITE = (
    "SELECT session_id FROM sessions WHERE saved_at < ? AND session_id > ? "
    "ORDER BY session_id LIMIT ?"
)


class Postgres(Backend):
    name = "scale PostgreSQL"

    def __init__(self, server_url: str) -> None:
        self.server = make_url(server_url).set(drivername="postgresql")
        self._open: dict[str, Any] = {}

    def _database(self, database: str) -> str:
        return f"convstore_bench_{os.getpid()}_scale_{database}"

    def url(self, database: str) -> str:
        url = self.server.set(database=self._database(database))
        return url.render_as_string(hide_password=False)

    async def _admin(self, statement: str) -> None:
        import asyncpg

        conn = await asyncpg.connect(self.server.render_as_string(hide_password=False))
        try:
            await conn.execute(statement)
        finally:
            await conn.close()

    async def _conn(self, url: str) -> Any:
        import asyncpg

        if url not in self._open:
            self._open[url] = await asyncpg.connect(url)
        return self._open[url]

    async def _close(self, database: str) -> None:
        conn = self._open.pop(self.url(database), None)
        if conn is not None:
            await conn.close()

    async def setting(self, name: str) -> str:
        """A server setting, as SHOW gives it."""
        import asyncpg

        conn = await asyncpg.connect(self.server.render_as_string(hide_password=False))
        try:
            value: str = await conn.fetchval(f"SHOW {name}")
        finally:
            await conn.close()
        return value

    async def settle(self) -> None:
        # The checkpoint a big write (the load, the purge) leaves behind, done now rather than
        # while the next step commits.
        await self._admin("CHECKPOINT")

    async def create(self, database: str) -> None:
        await self.drop(database)
        await self._admin(f'CREATE DATABASE "{self._database(database)}"')

    async def drop(self, database: str) -> None:
        await self._close(database)
        await self._admin(f'DROP DATABASE IF EXISTS "{self._database(database)}" WITH (FORCE)')

    async def copy(self, source: str, target: str) -> str:
        await self._close(source)
        await self.drop(target)
        await self._admin(
            f'CREATE DATABASE "{self._database(target)}" TEMPLATE "{self._database(source)}"'
        )
        return self.url(target)

    async def fill(self, url: str, sizes: data.Sizes) -> None:
        await data.fill_postgres(url, sizes)

    async def fetch(self, url: str, sql: str, *args: Any) -> list[Any]:
        conn = await self._conn(url)
        return list(await conn.fetch(sql, *args))

    async def purge(self, url: str, cutoff: datetime) -> None:
        conn, after = await self._conn(url), ""
        while True:
            async with conn.transaction():
                ids = [
                    row[0]
                    for row in await conn.fetch(
                        "SELECT session_id FROM sessions WHERE saved_at < $1 "
                        "AND session_id > $2 ORDER BY session_id LIMIT $3 FOR UPDATE",
                        cutoff,
                        after,
                        BATCH,
                    )
                ]
                after = ids[-1] if ids else after
                if ids:
                    await conn.execute("DELETE FROM messages WHERE session_id = ANY($1)", ids)
                    await conn.execute("DELETE FROM sessions WHERE session_id = ANY($1)", ids)
            if not ids:
                return

    async def import_files(self, url: str, files: Path) -> None:
        conn = await self._conn(url)
        snapshots = _snapshots(files)
        for start in range(0, len(snapshots), FILES_PER_TRANSACTION):
            chunk = snapshots[start : start + FILES_PER_TRANSACTION]
            async with conn.transaction():
                await conn.executemany(
                    "INSERT INTO sessions (session_id, created_at, saved_at, message_count, "
                    "extra) VALUES ($1, $2, $2, $3, $4::jsonb)",
                    [
                        (
                            s["session_id"],
                            datetime.fromtimestamp(s["saved_at"], UTC).astimezone(UTC),
                            len(s["messages"]),
                            orjson.dumps(s["extra"]).decode(),
                        )
                        for s in chunk
                    ],
                )
                await conn.executemany(
                    "INSERT INTO messages (session_id, seq, role, body) "
                    "VALUES ($1, $2, $3, $4::jsonb)",
                    [
                        (s["session_id"], seq, m["role"], orjson.dumps(m).decode())
                        for s in chunk
                        for seq, m in enumerate(s["messages"])
                    ],
                )
