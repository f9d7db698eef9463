"""What the checkpoint repository stores and hands back, as plain values."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class StoredWrite:
    """One pending write: a task's value for a channel, serialised."""

    task_id: str
    channel: str
    type: str | None
    value: bytes
    task_path: str
    idx: int


@dataclass(frozen=True, slots=True)
class StoredCheckpoint:
    """One checkpoint of a thread and namespace, serialised, with its pending writes in the order
    a super-step applies them (task path, task id, index)."""

    thread_id: str
    checkpoint_ns: str
    checkpoint_id: str
    parent_checkpoint_id: str | None
    type: str | None
    checkpoint: bytes
    metadata: Mapping[str, Any]
    writes: tuple[StoredWrite, ...] = ()


@dataclass(frozen=True, slots=True)
class Listing:
    """Which checkpoints a listing returns; a None field does not restrict it.

    `metadata` holds the values the checkpoints' metadata must have at these keys; `before`
    keeps checkpoints whose id sorts before it.
    """

    thread_id: str | None = None
    checkpoint_ns: str | None = None
    checkpoint_id: str | None = None
    before: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)


#: Where a page of a listing ended: the last checkpoint's (id, thread id, namespace).
Cursor = tuple[str, str, str]


def cursor_of(checkpoint: StoredCheckpoint) -> Cursor:
    """The cursor after `checkpoint`, in the listing's order."""
    return (checkpoint.checkpoint_id, checkpoint.thread_id, checkpoint.checkpoint_ns)


@dataclass(slots=True)
class Pages:
    """The pages of a listing of at most `left` checkpoints (None: all), `size` at a time:
    where the next one starts, and how many it may hold."""

    left: int | None
    size: int
    after: Cursor | None = None

    def wanted(self) -> int:
        """How many the next page may hold; 0 once the limit is reached."""
        return self.size if self.left is None else min(self.size, self.left)

    def took(self, page: Sequence[StoredCheckpoint], asked: int) -> bool:
        """Note a page of `asked` that came back; whether another may follow."""
        if len(page) < asked:
            return False
        self.after = cursor_of(page[-1])
        if self.left is not None:
            self.left -= asked
        return True
