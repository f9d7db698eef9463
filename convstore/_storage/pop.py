"""`Store.pop_messages`: the newest stored messages taken off a conversation, in one transaction."""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any

from sqlalchemy import delete, update
from sqlalchemy.ext.asyncio import AsyncConnection

from convstore._conversation.formats import shape
from convstore._conversation.window import stored_window
from convstore._storage.repository import Repository
from convstore._storage.schema import messages, sessions
from convstore._storage.transactions import locked_conversation


async def pop_messages(
    repository: Repository, session_id: str, count: int, now: datetime
) -> list[Any]:
    """Take the session's newest `count` stored messages off its conversation; them, oldest
    first (fewer when fewer are stored, none for an unknown session)."""
    # Not repeatable: run again after its commit, it would take off more messages.
    return await repository.write(
        "pop_messages",
        functools.partial(_pop, session_id=session_id, count=count, now=now),
        repeatable=False,
    )


async def _pop(conn: AsyncConnection, *, session_id: str, count: int, now: datetime) -> list[Any]:
    """`pop_messages`, in the transaction of `conn`.

    The session row is locked first, as an append locks it, so a concurrent append waits for
    the pop (or the pop for the append) and the messages taken are the newest at that time.
    """
    s = sessions.c
    found = await locked_conversation(conn, session_id, s.message_count, s.message_shapes)
    if found is None:
        return []
    row, stored = found
    kept, taken = stored[: max(len(stored) - count, 0)], stored[-count:]
    if not taken:
        return []
    await conn.execute(
        delete(messages).where(messages.c.session_id == session_id, messages.c.seq >= taken[0].seq)
    )
    # No window stored means the stored messages are the whole conversation, still true of
    # fewer; a stored window describes the messages that are left, worked out from them.
    window = (
        None
        if row.message_shapes is None
        else stored_window([(seq, shape(body)) for seq, body in kept]).to_json()
    )
    await conn.execute(
        update(sessions)
        .where(s.session_id == session_id)
        .values(message_count=row.message_count - len(taken), saved_at=now, message_shapes=window)
    )
    return [body for _, body in taken]
