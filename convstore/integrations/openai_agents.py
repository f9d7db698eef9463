"""The OpenAI Agents SDK's session memory in a convstore store: `ConvstoreSession`.

A session's items (Responses input items) are the messages of the convstore session of the same
id, so the store's pair-safe cap, `Store.resume` and the crash history apply to them. Needs the
``openai-agents`` extra.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from convstore import _validate
from convstore._conversation.formats import Shape, shape
from convstore._conversation.window import Window, plan
from convstore._storage.store import Store
from convstore.exceptions import InvalidArgument
from convstore.integrations._extras import missing_extra

try:
    from agents.items import TResponseInputItem
    from agents.memory import SessionSettings
except ImportError as error:
    raise missing_extra("openai_agents", "openai-agents", error) from error

__all__ = ["ConvstoreSession"]


class ConvstoreSession:
    """An Agents SDK `Session` whose items are stored in `store` under `session_id`.

    Pass it to ``Runner.run(agent, input, session=session)``. The store's `max_messages` caps
    what is kept, never parting a call from its output; ``await store.resume(session_id)``
    closes the calls a crash left without output. Reads with a limit (``get_items(limit)``, or
    `session_settings.limit` when `limit` is None) return the newest items the Responses API
    takes as a conversation of their own; reads without one return every stored item as it is.
    """

    def __init__(
        self, session_id: str, store: Store, *, session_settings: SessionSettings | None = None
    ) -> None:
        if not isinstance(store, Store):
            raise InvalidArgument(f"store must be a convstore.Store, not {type(store).__name__}")
        if session_settings is not None and not isinstance(session_settings, SessionSettings):
            raise InvalidArgument(
                "session_settings must be an agents.memory.SessionSettings or None, "
                f"not {type(session_settings).__name__}"
            )
        self.session_id: str = _validate.session_id(session_id)
        #: The SDK's settings: its `limit` applies to reads that give none.
        self.session_settings: SessionSettings | None = (
            SessionSettings() if session_settings is None else session_settings
        )
        self.store = store

    async def get_items(self, limit: int | None = None) -> list[TResponseInputItem]:
        """The stored items, oldest first; with a limit (or `session_settings.limit`), the newest
        of them, at most `limit`, that the Responses API accepts on their own (`_newest`)."""
        if limit is None and self.session_settings is not None:
            limit = self.session_settings.limit
        limit = _validate.optional_whole_number("limit", limit, minimum=1)
        snapshot = await self.store.restore_snapshot(self.session_id)
        items = [] if snapshot is None else snapshot.messages
        return cast(list[TResponseInputItem], items if limit is None else _newest(items, limit))

    async def add_items(self, items: list[TResponseInputItem]) -> None:
        """Append `items` to the session (creating it), under the store's pair-safe cap."""
        if not isinstance(items, list):
            raise InvalidArgument(f"items must be a list of dicts, not {type(items).__name__}")
        for index, item in enumerate(items):
            if not isinstance(item, dict):
                raise InvalidArgument(
                    f"items must be a list of dicts; items[{index}] is a {type(item).__name__}"
                )
        if items:
            await self.store.append_messages(self.session_id, items)

    async def pop_item(self) -> TResponseInputItem | None:
        """Remove the newest stored item and return it; None when there is none."""
        taken = await self.store.pop_messages(self.session_id)
        return cast(TResponseInputItem, taken[0]) if taken else None

    async def clear_session(self) -> None:
        """Delete the session's items (the store's session); its crash history stays."""
        await self.store.delete_snapshot(self.session_id)


def _newest(items: Sequence[Any], limit: int) -> list[Any]:
    """The newest of `items`, at most `limit`, that the Responses API accepts on their own.

    Outputs whose call is not before them, calls whose output is not after them (a crash, or an
    approval still waiting) and reasoning items parted from the item they lead are left out;
    of the rest, the window the store's cap would keep of `limit` messages: it never starts
    with an output whose call it cuts, nor between a reasoning item and the item it leads. It
    may hold fewer than `limit` items, and, when one tool loop is longer than `limit`, the user
    message that started it followed by its newest whole exchanges.
    """
    shapes = [shape(item) for item in items]
    paired = _paired(shapes)
    kept = [k for k, keep in enumerate(paired) if keep]
    window = plan(Window(), [shapes[k] for k in kept], 0, limit)
    return [items[kept[position]] for position in window.kept]


def _paired(shapes: Sequence[Shape]) -> list[bool]:
    """For each item, whether it belongs in a read: not an unpaired call or output, and not
    a reasoning item whose follower is left out."""
    called: set[str] = set()
    keep = [True] * len(shapes)
    for k, current in enumerate(shapes):
        if any(call_id not in called for call_id in current.results):
            keep[k] = False
        called.update(current.calls)
    answered = {r for k, s in enumerate(shapes) if keep[k] for r in s.results}
    for k in reversed(range(len(shapes))):
        current = shapes[k]
        unanswered = any(call_id not in answered for call_id in current.calls)
        parted = current.leads and (k + 1 == len(shapes) or not keep[k + 1])
        if unanswered or parted:
            keep[k] = False
    return keep
