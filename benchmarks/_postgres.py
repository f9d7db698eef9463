"""The workloads on PostgreSQL, each in fresh databases, against the plain-asyncpg lower bound."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime

import asyncpg
from sqlalchemy.engine import URL, make_url

import convstore
from benchmarks import _postgres_peers
from benchmarks._postgres_lower_bound import PostgresLowerBound
from benchmarks._report import Figure
from benchmarks._workloads import (
    W5_KINDS,
    appends,
    flatness,
    listing,
    save_and_restore,
    session_rows,
    throughputs,
    w5_plan,
)

TAG = " pg"
NOTE = (
    "PostgreSQL baseline: plain asyncpg on the same tables, one connection, one transaction per "
    "operation (W2 pg 'turns' row and W4 pg as on SQLite; W5 pg: convstore with one task)."
)


async def run(url: str, scale: float) -> tuple[list[Figure], list[str]]:
    """Every PostgreSQL figure, and notes to print under the table."""
    server_url = make_url(url).set(drivername="postgresql")
    try:
        admin = await asyncpg.connect(_dsn(server_url), timeout=10)
    except (OSError, asyncpg.PostgresError) as exc:
        raise SystemExit(f"cannot reach PostgreSQL at {server_url!r}: {exc}") from exc
    server = _Server(server_url, admin)
    try:
        async with server.store("w1") as store, server.bounds("w1_bound") as (bound,):
            figures = await save_and_restore(store, bound, scale, TAG, 1.5)
        async with server.store("w2") as store, server.bounds("w2_bound") as (bound,):
            figures += [
                await appends(store, bound, scale, TAG),
                *await flatness(store, scale, TAG),
            ]
        peer_figures, notes = await _postgres_peers.run(server.database, server.store, scale)
        figures += peer_figures
        figures += await listing(server.populated, scale, TAG)
        notes.insert(0, NOTE)
        for kind in W5_KINDS:
            figures += await _w5(server, kind, scale, notes)
    finally:
        await admin.close()
    return figures, notes


async def _w5(server: _Server, kind: str, scale: float, notes: list[str]) -> list[Figure]:
    """W5: throughput with 8 concurrent tasks against 1 task, for convstore and the bound."""
    plan = w5_plan(kind, scale)
    name = f"w5_{kind.replace(' ', '_')}"
    # The bound gets one connection per task: asyncpg's Pool would add a round trip to every
    # save, to reset the connection it gets back.
    async with (
        server.store(f"{name}_8") as eight,
        server.store(f"{name}_1") as one,
        server.bounds(f"{name}_bound_8", 8) as bounds,
        server.bounds(f"{name}_bound_1") as (bound,),
    ):
        ours_8, ours_1, theirs_8, theirs_1 = await throughputs(
            [
                [eight.save_snapshot] * 8,
                [one.save_snapshot],
                [b.save for b in bounds],
                [bound.save],
            ],
            plan,
        )
    notes.append(
        f"W5 pg, {kind}: the asyncpg bound alone does {theirs_8:.0f} saves/s with 8 connections, "
        f"{theirs_1:.0f} with 1 ({theirs_8 / theirs_1:.2f}x); this machine has "
        f"{os.cpu_count()} CPUs for the server and the client together."
    )
    return [
        Figure(
            f"W5{TAG}",
            f"8 tasks vs 1 task, {kind} (saves/s)",
            ours_8,
            ours_1,
            ">= 3x",
            3.0,
            higher_is_better=True,
        ),
        Figure(
            f"W5{TAG}",
            f"8 tasks, {kind}: vs asyncpg bound with 8 connections (saves/s)",
            ours_8,
            theirs_8,
            "(reference)",
            None,
            higher_is_better=True,
        ),
    ]


class _Server:
    """Fresh databases on the server of a URL, each dropped after use."""

    def __init__(self, url: URL, admin: asyncpg.Connection) -> None:
        self.url = url
        self.admin = admin

    @asynccontextmanager
    async def database(self, name: str) -> AsyncIterator[str]:
        """The URL of a new, empty database, dropped when the block ends."""
        database = f"convstore_bench_{os.getpid()}_{name}"
        await self.admin.execute(f'CREATE DATABASE "{database}"')
        try:
            yield _dsn(self.url.set(database=database))
        finally:
            await self.admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')

    @asynccontextmanager
    async def store(self, name: str) -> AsyncIterator[convstore.Store]:
        """A convstore store on a fresh database, which it migrates."""
        async with self.database(name) as url, convstore.connect(url) as store:
            yield store

    @asynccontextmanager
    async def bounds(
        self, name: str, connections: int = 1
    ) -> AsyncIterator[list[PostgresLowerBound]]:
        """Lower bounds on a fresh database migrated the same way, one per connection."""
        async with self.database(name) as url:
            async with convstore.connect(url):
                pass  # the same tables, created by the same migrations
            bounds = [await PostgresLowerBound.connect(url) for _ in range(connections)]
            try:
                yield bounds
            finally:
                for bound in bounds:
                    await bound.close()

    @asynccontextmanager
    async def populated(self, sessions: int) -> AsyncIterator[convstore.Store]:
        """A store on a fresh database holding W4's sessions, written with plain SQL."""
        async with self.store(f"w4_{sessions}") as store:
            conn = await asyncpg.connect(_dsn(store.engine.url))
            try:
                created = datetime(2026, 1, 1, tzinfo=UTC)
                await conn.executemany(
                    "INSERT INTO sessions (session_id, created_at, saved_at, message_count, extra, "
                    "interrupted_at, interrupt_reason) VALUES ($1, $2, $2, $3, '{}', $4, $5)",
                    [
                        (sid, created, count, at, reason)
                        for sid, count, at, reason in session_rows(sessions)
                    ],
                )
                # The statistics autovacuum would gather soon after such a load, now rather
                # than at a moment in the middle of the timed calls.
                await conn.execute("ANALYZE sessions")
            finally:
                await conn.close()
            yield store


def _dsn(url: URL) -> str:
    """The URL as asyncpg and convstore both take it, password included."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


@contextmanager
def fresh_database(url: str, name: str) -> Iterator[str]:
    """The URL of a new, empty database on the server of `url`, dropped afterwards (for
    benchmarks that run their own event loops, in other processes)."""
    server_url = make_url(url).set(drivername="postgresql")
    database = f"convstore_bench_{os.getpid()}_{name}"

    async def admin(statement: str) -> None:
        conn = await asyncpg.connect(_dsn(server_url), timeout=10)
        try:
            await conn.execute(statement)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{database}"'))
    try:
        yield _dsn(server_url.set(database=database))
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
