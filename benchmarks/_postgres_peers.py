"""W1 and W3 on PostgreSQL against the strictest floor and against LangGraph's AsyncPostgresSaver.

The strict floor does each operation in one prepared statement and one round trip: a save is an
upsert of the session, an upsert of the kept messages and a delete of the rest, as
data-modifying CTEs of one statement; a restore is one SELECT whose subquery aggregates the
bodies. It runs twice: on the migrated tables (``body jsonb``, as convstore stores it) and with
``body`` altered to ``text``, which measures what jsonb costs (the server parses each body on
the way in, and its size on disk) against storing the JSON text as it comes.

AsyncPostgresSaver (langgraph-checkpoint-postgres) saves the same 100-message conversations as a
checkpoint whose ``messages`` channel is new at each put, and reads the latest back.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import asyncpg
import orjson

import convstore
from benchmarks._data import conversation
from benchmarks._lower_bound import CAP
from benchmarks._report import Figure, median_ms, timed
from benchmarks._workloads import BLOCK

_UPSERT_SESSION = """
INSERT INTO sessions (session_id, created_at, saved_at, message_count, extra)
VALUES ($1, $2, $2, $3, $4::{body})
ON CONFLICT (session_id) DO UPDATE SET
    saved_at = excluded.saved_at, message_count = excluded.message_count, extra = excluded.extra
"""
#: The kept messages upserted, then the rest of the session's deleted; {session}, {count},
#: {roles} and {bodies} name the parameters.
_KEEP = """
kept AS (
    INSERT INTO messages (session_id, seq, role, body)
    SELECT {session}, {count} - cardinality({roles}::text[]) + n - 1, role, body::{body}
    FROM unnest({roles}::text[], {bodies}::text[]) WITH ORDINALITY AS m(role, body, n)
    ON CONFLICT (session_id, seq) DO UPDATE SET role = excluded.role, body = excluded.body
    RETURNING 1
)
DELETE FROM messages
WHERE session_id = {session} AND (seq < {count} - cardinality({roles}::text[]) OR seq >= {count})
"""
#: The save in one statement, the session and the messages as data-modifying CTEs ({body}:
#: the bodies' type).
_SAVE = (
    "WITH saved AS ("
    + _UPSERT_SESSION
    + " RETURNING 1), "
    + _KEEP.format(session="$1", count="$3", roles="$5", bodies="$6", body="{body}")
)
#: The same save as convstore's shape: a transaction, the session first (its row lock taken
#: before the messages' statement takes its snapshot), then the messages.
_SAVE_SESSION = _UPSERT_SESSION.format(body="jsonb")
_SAVE_MESSAGES = "WITH " + _KEEP.format(
    session="$1", count="$2", roles="$3", bodies="$4", body="jsonb"
)
#: The bodies as one JSON array text, decoded in one go (measured faster than array_agg, or one
#: row per message).
_RESTORE = """
SELECT s.message_count, s.saved_at, s.extra::text,
       (SELECT string_agg(m.body::text, ',' ORDER BY m.seq) FROM messages m
        WHERE m.session_id = s.session_id)
FROM sessions s WHERE s.session_id = $1::varchar
"""
NOTE = (
    "W1/W3 pg strict: the floor is one prepared statement and one round trip per save and per "
    "restore (data-modifying CTEs); 'text bodies' is the same floor with messages.body altered "
    "to text; AsyncPostgresSaver (langgraph-checkpoint-postgres {version}) puts the same "
    "conversations as checkpoints and reads the latest back."
)


class StrictFloor:
    """Save and restore in one statement each, on one asyncpg connection."""

    def __init__(self, conn: asyncpg.Connection, body: str) -> None:
        self.conn = conn
        self.save_sql = _SAVE.format(body=body)

    @classmethod
    async def connect(cls, dsn: str, body: str) -> StrictFloor:
        conn = await asyncpg.connect(dsn)
        if body == "text":
            await conn.execute("ALTER TABLE messages ALTER COLUMN body TYPE text")
            await conn.execute("ALTER TABLE sessions ALTER COLUMN extra TYPE text")
        return cls(conn, body)

    async def save(self, session_id: str, messages: list[Any], extra: dict[str, Any]) -> None:
        kept = messages[-CAP:]
        await self.conn.execute(
            self.save_sql,
            session_id,
            datetime.now(UTC),
            len(messages),
            orjson.dumps(extra).decode(),
            [m.get("role") for m in kept],
            [orjson.dumps(m).decode() for m in kept],
        )

    async def save_in_two(
        self, session_id: str, messages: list[Any], extra: dict[str, Any]
    ) -> None:
        """The save as two statements in a transaction: four round trips."""
        kept = messages[-CAP:]
        roles = [m.get("role") for m in kept]
        bodies = [orjson.dumps(m).decode() for m in kept]
        async with self.conn.transaction():
            await self.conn.execute(
                _SAVE_SESSION,
                session_id,
                datetime.now(UTC),
                len(messages),
                orjson.dumps(extra).decode(),
            )
            await self.conn.execute(_SAVE_MESSAGES, session_id, len(messages), roles, bodies)

    async def restore(self, session_id: str) -> list[Any] | None:
        row = await self.conn.fetchrow(_RESTORE, session_id)
        if row is None:
            return None
        orjson.loads(row[2])
        messages: list[Any] = orjson.loads("[" + (row[3] or "") + "]")
        return messages

    async def messages_bytes(self) -> int:
        size: int = await self.conn.fetchval("SELECT pg_total_relation_size('messages')")
        return size


class LangGraphSide:
    """AsyncPostgresSaver: a put of the conversation as a new checkpoint, a get of the latest."""

    def __init__(self, saver: Any) -> None:
        self.saver = saver
        self.steps: dict[str, int] = {}

    async def save(self, session_id: str, messages: list[Any], extra: dict[str, Any]) -> None:
        from langgraph.checkpoint.base import Checkpoint
        from langgraph.checkpoint.base.id import uuid6

        step = self.steps[session_id] = self.steps.get(session_id, 0) + 1
        version = f"{step:032}.0"
        checkpoint = Checkpoint(
            v=4,
            id=str(uuid6(clock_seq=step)),
            ts=datetime.now(UTC).isoformat(),
            channel_values={"messages": messages, "extra": extra},
            channel_versions={"messages": version, "extra": version},
            versions_seen={},
            updated_channels=["messages", "extra"],
        )
        config = {"configurable": {"thread_id": session_id, "checkpoint_ns": ""}}
        await self.saver.aput(
            config, checkpoint, {"step": step}, {"messages": version, "extra": version}
        )

    async def restore(self, session_id: str) -> Any:
        return await self.saver.aget_tuple(
            {"configurable": {"thread_id": session_id, "checkpoint_ns": ""}}
        )


class _TwoStatements:
    """The floor saving in convstore's shape (`StrictFloor.save_in_two`), restoring alike."""

    def __init__(self, floor: StrictFloor) -> None:
        self.save = floor.save_in_two
        self.restore = floor.restore


async def run(
    database: Callable[[str], Any], store: Callable[[str], Any], scale: float
) -> tuple[list[Figure], list[str]]:
    """convstore, the strict floor (jsonb and text bodies) and AsyncPostgresSaver, in turn."""
    try:
        from importlib.metadata import version

        from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
    except ImportError:
        return [], ["W1/W3 pg strict: skipped, langgraph-checkpoint-postgres is not installed"]
    async with AsyncExitStack() as stack:
        ours: convstore.Store = await stack.enter_async_context(store("strict_ours"))
        floor = await _floor(stack, database, "strict_jsonb", "jsonb")
        text = await _floor(stack, database, "strict_text", "text")
        lg_url = await stack.enter_async_context(database("strict_lg"))
        saver = await stack.enter_async_context(AsyncPostgresSaver.from_conn_string(lg_url))
        await saver.setup()
        sides: dict[str, Any] = {
            "convstore": ours,
            "floor": floor,
            "text": text,
            "langgraph": LangGraphSide(saver),
        }
        shaped = await _floor(stack, database, "strict_two", "jsonb")
        sides["two statements"] = _TwoStatements(shaped)
        saves, restores = await _measure(sides, scale)
        sizes = (await text.messages_bytes(), await floor.messages_bytes())
    note = NOTE.format(version=version("langgraph-checkpoint-postgres"))
    return _figures(saves, restores, sizes), [note]


@asynccontextmanager
async def _connected(floor: StrictFloor) -> AsyncIterator[StrictFloor]:
    try:
        yield floor
    finally:
        await floor.conn.close()


async def _floor(
    stack: AsyncExitStack, database: Callable[[str], Any], name: str, body: str
) -> StrictFloor:
    url = await stack.enter_async_context(database(name))
    async with convstore.connect(url):
        pass  # the same tables, created by the same migrations
    return await stack.enter_async_context(_connected(await StrictFloor.connect(url, body)))


async def _measure(
    sides: dict[str, Any], scale: float
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """W1: saves of 100-message conversations; W3: random restores; blocks of each in turn."""
    conversations = [conversation(seed) for seed in range(50)]
    sessions, reads = int(500 * scale), int(1000 * scale)
    saves: dict[str, list[float]] = {name: [] for name in sides}
    restores: dict[str, list[float]] = {name: [] for name in sides}
    for start in range(0, sessions, BLOCK):
        for name, side in sides.items():
            save = side.save_snapshot if name == "convstore" else side.save
            for i in range(start, min(start + BLOCK, sessions)):
                saves[name].append(await timed(save, f"s{i}", conversations[i % 50], {"i": i}))
    rng = random.Random(3)
    picks = [f"s{rng.randrange(sessions)}" for _ in range(reads)]
    for start in range(0, reads, BLOCK):
        for name, side in sides.items():
            restore = side.restore_snapshot if name == "convstore" else side.restore
            for session_id in picks[start : start + BLOCK]:
                restores[name].append(await timed(restore, session_id))
    return saves, restores


def _figures(
    saves: dict[str, list[float]], restores: dict[str, list[float]], sizes: tuple[int, int]
) -> list[Figure]:
    figures = []
    for workload, samples in (("W1 pg strict", saves), ("W3 pg strict", restores)):
        floor = median_ms(samples["floor"])
        what = "save, 100 messages" if workload.startswith("W1") else "restore"
        figures += [
            Figure(
                workload,
                f"{what}: convstore (median ms)",
                median_ms(samples["convstore"]),
                floor,
                "<= 1.3x",
                1.3,
            ),
            Figure(
                workload,
                f"{what}: AsyncPostgresSaver (median ms)",
                median_ms(samples["langgraph"]),
                floor,
                "reference",
                None,
            ),
            Figure(
                workload,
                f"{what}: floor as a transaction of two statements (median ms)",
                median_ms(samples["two statements"]),
                floor,
                "reference",
                None,
            ),
            Figure(
                workload,
                f"{what}: floor with text bodies (median ms)",
                median_ms(samples["text"]),
                floor,
                "reference",
                None,
            ),
        ]
    text_bytes, jsonb_bytes = sizes
    figures.append(
        Figure(
            "W1 pg strict",
            "messages table, text bodies vs jsonb (MiB)",
            text_bytes / 2**20,
            jsonb_bytes / 2**20,
            "reference",
            None,
        )
    )
    return figures
