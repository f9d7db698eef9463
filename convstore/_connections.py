"""Driver connections that a repository keeps between operations."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.util import greenlet_spawn


class Connections:
    """Driver connections kept out of the engine's pool between operations.

    A check-out and check-in through SQLAlchemy's pool costs about a twentieth of a save; the
    connections convstore is done with wait here instead, up to `keep` of them, until `close`.
    """

    def __init__(self, engine: AsyncEngine, keep: int) -> None:
        self._engine = engine
        self._keep = keep
        self._idle: list[PoolProxiedConnection] = []

    async def acquire(self) -> PoolProxiedConnection:
        """An idle connection, or a new one from the pool."""
        if self._idle:
            return self._idle.pop()
        return await self._engine.raw_connection()

    async def release(self, raw: PoolProxiedConnection, *, healthy: bool) -> None:
        """Keep a connection for the next operation, or give it back (discarded if broken)."""
        if not healthy:
            await greenlet_spawn(raw.invalidate)
        elif len(self._idle) < self._keep:
            self._idle.append(raw)
        else:
            await greenlet_spawn(raw.close)

    async def close(self) -> None:
        """Give every idle connection back to the pool."""
        while self._idle:
            await greenlet_spawn(self._idle.pop().close)
