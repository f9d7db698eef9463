"""The lower bound: the same tables written with stdlib sqlite3, synchronously, no abstraction.

WAL, synchronous=NORMAL and foreign keys, like convstore's connections; one transaction per
operation, ``executemany`` for message rows, ``json.dumps`` bodies.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

CAP = 100


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


class LowerBound:
    """Save, append, restore and list with the fewest layers Python allows."""

    def __init__(self, path: Path) -> None:
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.execute("PRAGMA busy_timeout = 30000")
        self.db.execute("PRAGMA journal_mode = WAL")
        self.db.execute("PRAGMA synchronous = NORMAL")
        self.db.execute("PRAGMA foreign_keys = ON")

    def close(self) -> None:
        self.db.close()

    def save(self, session_id: str, messages: list[Any], extra: dict[str, Any]) -> None:
        now = _now()
        kept = messages[-CAP:]
        first = len(messages) - len(kept)
        rows = [(session_id, first + i, m.get("role"), json.dumps(m)) for i, m in enumerate(kept)]
        self.db.execute("BEGIN IMMEDIATE")
        self.db.execute(
            "INSERT INTO sessions (session_id, created_at, saved_at, message_count, extra) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (session_id) DO UPDATE SET "
            "saved_at = excluded.saved_at, message_count = excluded.message_count, "
            "extra = excluded.extra",
            (session_id, now, now, len(messages), json.dumps(extra)),
        )
        self.db.execute("DELETE FROM messages WHERE session_id = ?", (session_id,))
        self.db.executemany(
            "INSERT INTO messages (session_id, seq, role, body) VALUES (?, ?, ?, ?)", rows
        )
        self.db.execute("COMMIT")

    def append(self, session_id: str, message: dict[str, Any]) -> int:
        now = _now()
        body = json.dumps(message)
        self.db.execute("BEGIN IMMEDIATE")
        ((count,),) = self.db.execute(
            "INSERT INTO sessions (session_id, created_at, saved_at, message_count, extra) "
            "VALUES (?, ?, ?, 1, '{}') ON CONFLICT (session_id) DO UPDATE SET "
            "saved_at = excluded.saved_at, message_count = sessions.message_count + 1 "
            "RETURNING message_count",
            (session_id, now, now),
        ).fetchall()
        self.db.execute(
            "INSERT INTO messages (session_id, seq, role, body) VALUES (?, ?, ?, ?)",
            (session_id, count - 1, message.get("role"), body),
        )
        if count > CAP:
            self.db.execute(
                "DELETE FROM messages WHERE session_id = ? AND seq < ?", (session_id, count - CAP)
            )
        self.db.execute("COMMIT")
        return int(count)

    def restore(self, session_id: str) -> dict[str, Any] | None:
        self.db.execute("BEGIN")
        try:
            row = self.db.execute(
                "SELECT message_count, saved_at, extra, interrupted_at, interrupt_reason "
                "FROM sessions WHERE session_id = ?",
                (session_id,),
            ).fetchone()
            if row is None:
                return None
            messages = [
                json.loads(body)
                for (body,) in self.db.execute(
                    "SELECT body FROM messages WHERE session_id = ? ORDER BY seq", (session_id,)
                )
            ]
        finally:
            self.db.execute("COMMIT")
        return {"messages": messages, "message_count": row[0], "extra": json.loads(row[2])}

    def list_interrupted(self) -> list[tuple[Any, ...]]:
        return self.db.execute(
            "SELECT session_id, message_count, interrupted_at, interrupt_reason FROM sessions "
            "WHERE interrupted_at IS NOT NULL ORDER BY interrupted_at DESC, session_id DESC"
        ).fetchall()

    def size_bytes(self) -> int:
        """The database's size once the WAL is checkpointed into it."""
        self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        ((pages,),) = self.db.execute("PRAGMA page_count").fetchall()
        ((page_size,),) = self.db.execute("PRAGMA page_size").fetchall()
        return int(pages) * int(page_size)
