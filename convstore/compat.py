"""A drop-in for the file-based ``ConversationRecovery`` class (one JSON file per session).

Same method names, return values and dict keys, backed by a convstore database. Like the original
it never raises: failures are logged to the ``convstore.compat`` logger and reported as
False, None or []. New code should use `convstore.connect` and get typed results and errors.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import AsyncGenerator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from convstore._storage.store import DEFAULT_MAX_MESSAGES, Store, connect

__all__ = ["ConversationRecovery"]

logger = logging.getLogger("convstore.compat")


class ConversationRecovery:
    """Snapshots and interruption markers with the original class's interface.

    `url` must name a database file or server: `list_interrupted_sessions` reads it through a
    connection of its own, which an in-memory database would not share.
    """

    def __init__(self, url: str, *, max_messages: int = DEFAULT_MAX_MESSAGES) -> None:
        self.url = url
        self.max_messages = max_messages
        # One store per event loop: connections and locks belong to the loop that made them.
        self._stores: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Store] = (
            weakref.WeakKeyDictionary()
        )
        # For each store, what closes it when its loop shuts down (see `_closed_at_shutdown`).
        self._closers: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, AsyncGenerator[None, None]
        ] = weakref.WeakKeyDictionary()

    async def _store(self) -> Store:
        loop = asyncio.get_running_loop()
        store = self._stores.get(loop)
        if store is None:
            store = await connect(self.url, max_messages=self.max_messages)
            self._stores[loop] = store
            self._closers[loop] = closer = _closed_at_shutdown(store)
            await anext(closer)
        return store

    async def save_snapshot(
        self, session_id: str, messages: Sequence[Any], extra: dict[str, Any] | None = None
    ) -> bool:
        """Store the conversation's newest messages and extra state; whether it worked."""
        try:
            await (await self._store()).save_snapshot(session_id, messages, extra)
        except Exception:
            logger.exception("save_snapshot(%r) failed", session_id)
            return False
        return True

    async def restore_snapshot(self, session_id: str) -> dict[str, Any] | None:
        """The stored record as the original wrote it, or None."""
        try:
            snap = await (await self._store()).restore_snapshot(session_id)
        except Exception:
            logger.exception("restore_snapshot(%r) failed", session_id)
            return None
        if snap is None:
            return None
        record: dict[str, Any] = {
            "session_id": snap.session_id,
            "saved_at": snap.saved_at.timestamp(),
            "message_count": snap.message_count,
            "messages": snap.messages,
            "extra": snap.extra,
        }
        if snap.interrupted_at is not None:
            record["interrupted"] = True
            record["interrupted_at"] = snap.interrupted_at.timestamp()
        return record

    async def delete_snapshot(self, session_id: str) -> bool:
        """Delete the session on a clean exit; whether it was deleted."""
        try:
            return await (await self._store()).delete_snapshot(session_id)
        except Exception:
            logger.exception("delete_snapshot(%r) failed", session_id)
            return False

    async def mark_interrupted(self, session_id: str, reason: str | None = None) -> bool:
        """Mark the session interrupted, creating it if unknown; whether it worked."""
        try:
            await (await self._store()).mark_interrupted(session_id, reason)
        except Exception:
            logger.exception("mark_interrupted(%r) failed", session_id)
            return False
        return True

    def list_interrupted_sessions(self) -> list[dict[str, Any]]:
        """Every interrupted session, newest first; a plain method, usable inside a running loop.

        Inside a running event loop it runs on a worker thread and blocks the loop until done,
        as the original's file scan did.
        """
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(self._list_interrupted())
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="convstore-compat") as pool:
            return pool.submit(asyncio.run, self._list_interrupted()).result()

    async def _list_interrupted(self) -> list[dict[str, Any]]:
        try:
            async with connect(self.url, max_messages=self.max_messages) as store:
                sessions = await store.list_interrupted_sessions()
        except Exception:
            logger.exception("list_interrupted_sessions() failed")
            return []
        return [
            {
                "session_id": s.session_id,
                "message_count": s.message_count,
                "interrupted_at": s.interrupted_at.timestamp(),
                "age_seconds": s.age_seconds,
            }
            for s in sessions
        ]

    async def close(self) -> None:
        """Close the connections this object opened on the running event loop.

        Used as the original class was, without `close`, the connections are closed when the
        loop shuts down through `asyncio.run` (or `loop.shutdown_asyncgens()`).
        """
        loop = asyncio.get_running_loop()
        store = self._stores.pop(loop, None)
        closer = self._closers.pop(loop, None)
        if closer is not None:
            await closer.aclose()
        elif store is not None:
            await store.close()


async def _closed_at_shutdown(store: Store) -> AsyncGenerator[None, None]:
    """Close `store` when the generator is closed: started and left suspended, it is closed by
    the loop's shutdown (`asyncio.run` closes every async generator still open on its loop,
    in the loop), which is the one hook asyncio gives code that did not start the loop."""
    try:
        yield
    finally:
        await store.close()
