"""Driver connections that a repository keeps between operations."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.util import greenlet_spawn


class Connections:
    """Driver connections kept out of the engine's pool between operations.

    A check-out and check-in through SQLAlchemy's pool costs about a twentieth of a save; the
    connections convstore is done with wait here instead, up to `keep` of them, until `close`.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        keep: int,
        *,
        alive: Callable[[PoolProxiedConnection], bool] = lambda raw: True,
    ) -> None:
        """Keep up to `keep` idle connections of `engine`; `alive` says, without a round trip,
        whether one is still usable (an asyncpg connection the server closed is not)."""
        self._engine = engine
        self._keep = keep
        self._alive = alive
        self._idle: list[PoolProxiedConnection] = []

    @asynccontextmanager
    async def borrow(
        self, *, healthy_after: tuple[type[BaseException], ...]
    ) -> AsyncIterator[PoolProxiedConnection]:
        """A connection for the block; kept for the next operation when the block ends without
        error or with one of `healthy_after` (errors that leave the connection usable) while it
        is alive, and discarded otherwise, since it may be broken or stopped in the middle of
        the protocol."""
        raw = await self._take()
        healthy = False
        try:
            yield raw
            healthy = True
        except healthy_after:
            healthy = True
            raise
        finally:
            await self._release(raw, healthy=healthy and self._alive(raw))

    async def _take(self) -> PoolProxiedConnection:
        while self._idle:
            raw = self._idle.pop()
            if self._alive(raw):
                return raw
            await greenlet_spawn(raw.invalidate)
        return await self._engine.raw_connection()

    async def discard_idle(self) -> None:
        """Throw away every idle connection (after a connection was lost: they may be too)."""
        while self._idle:
            await greenlet_spawn(self._idle.pop().invalidate)

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
