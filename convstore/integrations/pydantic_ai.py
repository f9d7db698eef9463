"""pydantic-ai's message history kept in a convstore `Store`, one session per conversation.

pydantic-ai hands a conversation over as a list of ``ModelMessage``s (``result.new_messages()``
out, ``message_history=`` in). `ConvstoreMessageHistory` stores each message as
``ModelMessagesTypeAdapter`` dumps it (JSON mode) and validates it back on load, so a reload gives
objects equal to the ones appended, timestamps and their offsets, provider details and run ids
included.

`load` is a faithful read and never writes. After a crash in the middle of a tool call the stored
history ends with the calls that never got a result; `resume` closes them with a result saying
they were interrupted, writes that back, ends the interruption and says what it repaired.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from convstore import _validate
from convstore._records import Repair, Snapshot
from convstore._storage.store import Store
from convstore.exceptions import ConvstoreError, InvalidArgument
from convstore.integrations._extras import missing_extra

try:
    from pydantic import ValidationError
    from pydantic_ai.messages import (
        ModelMessage,
        ModelMessagesTypeAdapter,
        ModelRequest,
        ModelResponse,
    )
    from pydantic_core import PydanticSerializationError
except ImportError as error:
    raise missing_extra("pydantic_ai", "pydantic-ai", error) from error

__all__ = ["ConvstoreMessageHistory", "ResumedHistory", "StoredHistoryError"]


class StoredHistoryError(ConvstoreError):
    """A message stored for the session is not one `ModelMessagesTypeAdapter` accepts.

    Retrying cannot help: the session holds another format, or a message written by a version of
    pydantic-ai that this one cannot read. ``__cause__`` holds pydantic's ValidationError.
    """

    def __init__(self, message: str, *, session_id: str, position: int | None) -> None:
        super().__init__(message)
        #: The session whose history could not be read.
        self.session_id = session_id
        #: The 0-based position of the first bad message in the history as loaded, if known.
        self.position = position


@dataclass(frozen=True, slots=True)
class ResumedHistory:
    """What `ConvstoreMessageHistory.resume` gives back: the history, and what it repaired."""

    #: The history, for ``message_history=``.
    messages: list[ModelMessage]
    #: What was changed so that the model accepts it; empty when nothing needed a change. The
    #: session's crash history keeps the same list (`Store.interruptions`).
    repairs: tuple[Repair, ...]


class ConvstoreMessageHistory:
    """The message history of one pydantic-ai conversation, stored in `store` as `session_id`.

    The store keeps the newest ``store.max_messages`` messages, never splitting a tool call from
    its return and always keeping the run's first request, which holds the system prompts.
    """

    def __init__(self, session_id: str, store: Store) -> None:
        if not isinstance(store, Store):
            raise InvalidArgument(
                f"store must be a convstore.Store (from convstore.connect), "
                f"not {type(store).__name__}"
            )
        self._session_id = _validate.session_id(session_id)
        self._store = store

    @property
    def session_id(self) -> str:
        """The session the history is stored as."""
        return self._session_id

    async def load(self) -> list[ModelMessage]:
        """The stored history, as appended (its newest messages past the cap); [] if none.

        Never writes, never repairs: a history a crash left with an unanswered tool call comes
        back with it (see `resume`). Raises `StoredHistoryError` if a stored message is not a
        ``ModelMessage``.
        """
        snapshot = await self._store.restore_snapshot(self._session_id)
        return [] if snapshot is None else self._messages(snapshot)

    async def resume(self, *, pending: Iterable[str] = ()) -> ResumedHistory:
        """The stored history, repaired so that a new run can carry on from it after a crash.

        Every tool call without a return gets one whose ``outcome`` is ``"interrupted"``, returns
        whose call is not in the history are dropped, and the session's interruption, if any,
        ends; the repaired history is written back in the same transaction. Calls whose ids are
        in `pending` (deferred calls waiting for `deferred_tool_results`) are left open.
        """
        snapshot = await self._store.resume(self._session_id, pending=pending)
        if snapshot is None:
            return ResumedHistory([], ())
        return ResumedHistory(self._messages(snapshot), snapshot.repairs)

    async def append(
        self, messages: Sequence[ModelMessage], *, extra: Mapping[str, Any] | None = None
    ) -> int:
        """Append messages (``result.new_messages()``); the conversation's new message count.

        Ends any interruption. `extra`, when given, replaces the session's extra state. Raises
        `InvalidArgument`, storing nothing, if `messages` is not a list of ``ModelMessage``s.
        """
        bodies = _dump(messages)
        return await self._store.append_messages(self._session_id, bodies, extra=extra)

    async def replace(
        self, messages: Sequence[ModelMessage], *, extra: Mapping[str, Any] | None = None
    ) -> None:
        """Replace the whole stored history and the extra state (``{}`` when not given)."""
        bodies = _dump(messages)
        await self._store.save_snapshot(self._session_id, bodies, extra)

    async def clear(self) -> bool:
        """Delete the stored history and extra state; whether there was any."""
        return await self._store.delete_snapshot(self._session_id)

    async def extra(self) -> dict[str, Any]:
        """The session's extra state, as last given to `append` or `replace`; {} if none."""
        snapshot = await self._store.restore_snapshot(self._session_id)
        return {} if snapshot is None else snapshot.extra

    def _messages(self, snapshot: Snapshot) -> list[ModelMessage]:
        """The snapshot's messages as ``ModelMessage``s, or a `StoredHistoryError`."""
        try:
            return ModelMessagesTypeAdapter.validate_python(snapshot.messages)
        except ValidationError as error:
            first = error.errors()[0]
            location = first["loc"]
            position = location[0] if location and isinstance(location[0], int) else None
            what = "a stored message" if position is None else f"stored message {position}"
            raise StoredHistoryError(
                f"session {self._session_id!r}: {what} (of {len(snapshot.messages)} loaded) "
                f"is not a pydantic-ai ModelMessage ({first['msg']} at "
                f"{'.'.join(map(str, location))}); the session holds another format or a "
                f"message this pydantic-ai cannot read",
                session_id=self._session_id,
                position=position,
            ) from error


def _dump(messages: object) -> list[Any]:
    """The messages as ``ModelMessagesTypeAdapter`` dumps them in JSON mode, or InvalidArgument."""
    if not isinstance(messages, list | tuple):
        raise InvalidArgument(
            "messages must be a list of pydantic-ai ModelMessages (result.new_messages()), "
            f"not {type(messages).__name__}"
        )
    for position, message in enumerate(messages):
        if not isinstance(message, ModelRequest | ModelResponse):
            raise InvalidArgument(
                f"messages[{position}] must be a pydantic-ai ModelRequest or ModelResponse, "
                f"not {type(message).__name__}"
            )
    try:
        dumped: list[Any] = ModelMessagesTypeAdapter.dump_python(list(messages), mode="json")
    except PydanticSerializationError as error:
        raise InvalidArgument(
            f"messages cannot be stored: ModelMessagesTypeAdapter cannot serialise them ({error})"
        ) from error
    return dumped
