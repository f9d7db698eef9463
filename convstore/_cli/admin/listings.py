"""Listings across all sessions, and interruption counts per reason."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from convstore._cli.admin.database import display_url
from convstore._storage.errors import storage_errors
from convstore._storage.schema import interruptions, messages, sessions


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """One stored session, with how often it was interrupted."""

    session_id: str
    created_at: datetime
    saved_at: datetime
    message_count: int
    interrupted_at: datetime | None
    interrupt_reason: str | None
    owner: str | None
    lease_expires_at: datetime | None
    #: Rows in the crash history for this session, resolved or not.
    interruptions: int

    def status(self, now: datetime) -> str:
        """'interrupted', 'running' (a live lease), 'lease expired' (its owner died) or 'idle'."""
        if self.interrupted_at is not None:
            return "interrupted"
        if self.lease_expires_at is not None:
            return "running" if self.lease_expires_at >= now else "lease expired"
        return "idle"


async def list_sessions(
    engine: AsyncEngine, *, limit: int | None = None, session_id: str | None = None
) -> list[SessionInfo]:
    """Sessions, most recently saved first; or just the one named."""
    history = (
        select(func.count())
        .select_from(interruptions)
        .where(interruptions.c.session_id == sessions.c.session_id)
        .scalar_subquery()
    )
    s = sessions.c
    query = (
        select(
            s.session_id,
            s.created_at,
            s.saved_at,
            s.message_count,
            s.interrupted_at,
            s.interrupt_reason,
            s.owner,
            s.lease_expires_at,
            history,
        )
        .order_by(s.saved_at.desc(), s.session_id)
        .limit(limit)
    )
    if session_id is not None:
        query = query.where(s.session_id == session_id)
    with storage_errors("sessions", display_url(engine.url)):
        async with engine.connect() as conn:
            rows = (await conn.execute(query)).all()
    return [SessionInfo(*row) for row in rows]


async def message_positions(engine: AsyncEngine, session_id: str) -> list[int]:
    """The positions in the whole conversation of the session's stored messages, in order."""
    query = (
        select(messages.c.seq).where(messages.c.session_id == session_id).order_by(messages.c.seq)
    )
    with storage_errors("show", display_url(engine.url)):
        async with engine.connect() as conn:
            return list((await conn.execute(query)).scalars())


async def count_sessions(engine: AsyncEngine, *, interrupted: bool = False) -> int:
    """How many sessions are stored (or marked interrupted)."""
    query = select(func.count()).select_from(sessions)
    if interrupted:
        query = query.where(sessions.c.interrupted_at.is_not(None))
    with storage_errors("sessions", display_url(engine.url)):
        async with engine.connect() as conn:
            return int((await conn.execute(query)).scalar_one())


@dataclass(frozen=True, slots=True)
class ReasonCount:
    """How often sessions were interrupted for one reason, and how many of those came back."""

    reason: str | None
    interruptions: int
    resolved: int
    latest: datetime


async def interruptions_by_reason(
    engine: AsyncEngine, since: datetime | None = None
) -> list[ReasonCount]:
    """Interruptions per reason (since a time), the most frequent first."""
    i = interruptions.c
    count = func.count().label("n")
    query = (
        select(i.reason, count, func.count(i.resolved_at), func.max(i.interrupted_at))
        .group_by(i.reason)
        .order_by(count.desc(), i.reason.nulls_last())
    )
    if since is not None:
        query = query.where(i.interrupted_at >= since)
    with storage_errors("stats", display_url(engine.url)):
        async with engine.connect() as conn:
            rows = (await conn.execute(query)).all()
    return [ReasonCount(*row) for row in rows]
