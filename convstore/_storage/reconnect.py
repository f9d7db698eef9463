"""Operations that outlive a lost connection: a PostgreSQL restart, a failover, a terminated
backend.

An operation whose connection is found gone before its transaction could have committed is run
again on a new connection, for up to the store's ``reconnect_s``, waiting a little longer each time
while the server cannot be reached. One whose connection was lost while it was being committed
is run again only if running it twice stores the same thing (a save, a read); otherwise it raises
`CommitUnknown`, since it may or may not be stored.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from convstore._storage.errors import connection_lost, storage_errors
from convstore.exceptions import CommitUnknown, StorageError

logger = logging.getLogger("convstore")

T = TypeVar("T")

#: The waits between tries: none after the first loss (the other pooled connections may be
#: dead too, but a new one may well work at once), then doubling up to the last.
_FIRST_WAIT_S, _LAST_WAIT_S = 0.05, 1.0


@dataclass
class Progress:
    """How far one try of an operation got."""

    #: Set just before the transaction is committed: from then on it may have been stored.
    committing: bool = False


async def reconnecting(
    action: str,
    database: str,
    attempt: Callable[[Progress], Awaitable[T]],
    *,
    repeatable: bool,
    window_s: float,
    on_lost: Callable[[], Awaitable[None]] | None = None,
) -> T:
    """Run `attempt` until it succeeds, fails otherwise than by a lost connection, or has tried
    for `window_s`; `repeatable` when running it twice stores what running it once does.
    `on_lost` is awaited after each loss, before the next try (to drop other connections that
    were opened before the loss)."""
    deadline = time.monotonic() + window_s
    wait = 0.0
    while True:
        progress = Progress()
        try:
            with storage_errors(action, database):
                return await attempt(progress)
        except StorageError as exc:
            if exc.__cause__ is None or not connection_lost(exc.__cause__):
                raise
            if progress.committing and not repeatable:
                raise CommitUnknown(
                    f"{action} on {database}: the connection was lost while the transaction was "
                    f"being committed, so it may or may not be stored ({exc})"
                ) from exc.__cause__
            if time.monotonic() + wait >= deadline:
                raise
            logger.warning("%s on %s lost its connection; trying again: %s", action, database, exc)
        if on_lost is not None:
            await on_lost()
        await asyncio.sleep(wait)
        wait = min(max(wait * 2, _FIRST_WAIT_S), _LAST_WAIT_S)
