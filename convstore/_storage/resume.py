"""`Store.resume`: a session repaired for its provider, written back, its interruption ended."""

from __future__ import annotations

import functools
from collections.abc import Collection
from dataclasses import asdict
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, insert, update
from sqlalchemy.ext.asyncio import AsyncConnection

from convstore._conversation.formats import shape
from convstore._conversation.repair import repair
from convstore._conversation.window import Window, stored_window
from convstore._records import Repair, Snapshot
from convstore._storage.repository import Repository
from convstore._storage.rows import role_of
from convstore._storage.schema import interruptions, messages, sessions
from convstore._storage.statements import CLEAR_MARKER, resolve_session
from convstore._storage.transactions import locked_conversation


async def resume(
    repository: Repository, session_id: str, pending: Collection[str], now: datetime
) -> Snapshot | None:
    """The session's conversation repaired so that its provider accepts it as it is.

    The repaired conversation is written back, and any interruption ended with the repairs
    recorded in its history row, in one transaction; None if the session is unknown.
    """
    # Not repeatable: run again after its commit, it would find nothing left to repair.
    return await repository.write(
        "resume",
        functools.partial(_resume, session_id=session_id, pending=pending, now=now),
        repeatable=False,
    )


async def _resume(
    conn: AsyncConnection, *, session_id: str, pending: Collection[str], now: datetime
) -> Snapshot | None:
    """`resume`, in the transaction of `conn`."""
    s = sessions.c
    found = await locked_conversation(
        conn, session_id, s.message_count, s.saved_at, s.extra, s.interrupted_at
    )
    if found is None:
        return None
    row, stored = found
    repaired, repairs = repair([body for _, body in stored], pending=pending)
    count, saved_at = row.message_count, row.saved_at
    written: dict[str, Any] = {}
    if repairs:
        count += len(repaired) - len(stored)
        window = await _replace(conn, session_id, [seq for seq, _ in stored], repaired, count)
        saved_at, written = now, {"message_shapes": window.to_json()}
    await conn.execute(
        update(sessions)
        .where(s.session_id == session_id)
        .values(message_count=count, saved_at=saved_at, **CLEAR_MARKER, **written)
    )
    await _end_interruption(conn, session_id, repairs, now)
    return Snapshot(
        session_id=session_id,
        messages=repaired,
        message_count=count,
        saved_at=saved_at,
        extra=row.extra,
        interrupted_at=None,
        interrupt_reason=None,
        repairs=tuple(repairs),
    )


async def _replace(
    conn: AsyncConnection, session_id: str, seqs: list[int], repaired: list[Any], count: int
) -> Window:
    """Store `repaired` in place of the session's messages, at positions that end at `count`;
    the window that describes them.

    The leading instructions keep their positions (repairs never touch them); the rest are laid
    out one after another up to the last position of the conversation.
    """
    shapes = [shape(m) for m in repaired]
    # Repairs shorten or lengthen the conversation after its leading instructions, never them.
    leading = zip(seqs, shapes, strict=False)
    pinned = next(
        (i for i, (seq, s) in enumerate(leading) if seq != i or not s.instructions),
        min(len(seqs), len(shapes)),
    )
    positions = [*range(pinned), *range(count - (len(repaired) - pinned), count)]
    await conn.execute(delete(messages).where(messages.c.session_id == session_id))
    if repaired:
        await conn.execute(
            insert(messages),
            [
                {"session_id": session_id, "seq": seq, "role": role_of(m), "body": m}
                for seq, m in zip(positions, repaired, strict=True)
            ],
        )
    return stored_window(list(zip(positions, shapes, strict=True)))


async def _end_interruption(
    conn: AsyncConnection, session_id: str, repairs: list[Repair], now: datetime
) -> None:
    """Resolve the session's open interruptions, recording what was repaired."""
    recorded = bindparam("repairs", type_=interruptions.c.repairs.type)
    await conn.execute(
        resolve_session().values(repairs=recorded),
        {"session": session_id, "now": now, "repairs": [asdict(r) for r in repairs] or None},
    )
