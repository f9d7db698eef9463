"""Driver connections that a repository keeps between operations."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

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

    @asynccontextmanager
    async def borrow(
        self, *, healthy_after: tuple[type[BaseException], ...]
    ) -> AsyncIterator[PoolProxiedConnection]:
        """A connection for the block; kept for the next operation when the block ends without
        error or with one of `healthy_after` (errors that leave the connection usable), and
        discarded otherwise, since it may be broken or stopped in the middle of the protocol."""
        raw = self._idle.pop() if self._idle else await self._engine.raw_connection()
        healthy = False
        try:
            yield raw
            healthy = True
        except healthy_after:
            healthy = True
            raise
        finally:
            await self._release(raw, healthy=healthy)

    async def _release(self, raw: PoolProxiedConnection, *, healthy: bool) -> None:
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
