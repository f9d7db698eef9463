"""What a message may contain, and how it comes back."""

from __future__ import annotations

import datetime
import decimal
import math
import uuid
from typing import Any

import convstore

NATIVE: list[Any] = [
    {"role": "user", "content": "plain"},
    {
        "role": "assistant",
        "content": [
            {"type": "text", "text": "nested"},
            {"type": "tool_use", "input": {"q": [1, 2.5, None, True, False]}},
        ],
    },
    {"role": "user", "content": "unicode: héllo wörld 中文 עברית"},
    {"role": "user", "content": "emoji: 😀👍🏽🧑‍💻 𝄞"},
    {"role": "user", "content": "NUL inside: a\u0000b"},
    {"role": "user", "content": "lone surrogate: \ud800"},
    {"role": "user", "content": "big ints", "n": [2**64, -(2**70), 10**40, 2**63 - 1]},
    {"role": "user", "content": "", "empty": {}, "list": []},
    "a bare string message",
    12345,
    None,
    ["a", "list", "message"],
]


async def test_json_native_content_restores_exactly(store: convstore.Store) -> None:
    """Nested structures, unicode, emoji, NUL, lone surrogates and big ints round-trip exactly."""
    await store.save_snapshot("s1", NATIVE, extra={"state": NATIVE[1], "n": 2**80})
    snap = await store.restore_snapshot("s1")
    assert snap is not None
    assert snap.messages == NATIVE
    assert snap.extra == {"state": NATIVE[1], "n": 2**80}
    assert await store.append_messages("s1", NATIVE) == 2 * len(NATIVE)
    snap = await store.restore_snapshot("s1")
    assert snap is not None
    assert snap.messages == NATIVE + NATIVE


async def test_every_stored_body_is_valid_json(store: convstore.Store, backend: str) -> None:
    """Bodies and extra, special values included, are JSON the database's functions accept."""
    special = [*NATIVE, {"x": math.nan}, {"y": -math.inf}]
    await store.save_snapshot("s1", special, extra={"nul": "\u0000"})
    if backend == "sqlite":  # a \u0000 escape is valid JSON to SQLite
        query = "SELECT count(*) FROM messages WHERE NOT json_valid(body)"
    else:  # jsonb refuses invalid JSON and \u0000 outright; check it was not smuggled as text
        query = (
            "SELECT count(*) FROM messages WHERE body::text LIKE '%\\u0000%' ESCAPE '!'"
            " OR jsonb_typeof(body) IS NULL"
        )
    async with store.engine.connect() as conn:
        invalid = (await conn.exec_driver_sql(query)).scalar_one()
    assert invalid == 0
    snap = await store.restore_snapshot("s1")
    assert snap is not None
    assert snap.extra == {"nul": "\u0000"}


async def test_values_json_cannot_hold_are_stored_as_str(store: convstore.Store) -> None:
    """Datetimes, bytes, sets, decimals, UUIDs and other objects are stored as str(value)."""

    class Custom:
        def __str__(self) -> str:
            return "custom!"

    when = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
    ident = uuid.UUID(int=7)
    message = {
        "when": when,
        "day": datetime.date(2026, 1, 2),
        "raw": b"\x00bytes",
        "tags": {"only"},
        "price": decimal.Decimal("1.10"),
        "id": ident,
        "obj": Custom(),
        "pair": (1, 2),
    }
    await store.save_snapshot("s1", [message])
    snap = await store.restore_snapshot("s1")
    assert snap is not None
    assert snap.messages == [
        {
            "when": str(when),
            "day": "2026-01-02",
            "raw": str(b"\x00bytes"),
            "tags": "{'only'}",
            "price": "1.10",
            "id": str(ident),
            "obj": "custom!",
            "pair": [1, 2],
        }
    ]
