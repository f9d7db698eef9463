"""The checkpoint repository: what each backend does with LangGraph's checkpoints, and the
parts of a listing both backends build alike."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from convstore._storage import codec
from convstore._storage.checkpoints.records import (
    Cursor,
    Listing,
    StoredCheckpoint,
    StoredWrite,
)
from convstore._storage.checkpoints.statements import ListingShape
from convstore.exceptions import InvalidArgument

if TYPE_CHECKING:
    from convstore._storage.store import Store


class CheckpointRepository(ABC):
    """LangGraph checkpoints on a store's database; each operation is one short transaction."""

    @abstractmethod
    async def put(self, checkpoint: StoredCheckpoint, keep_last: int | None, now: datetime) -> None:
        """Store the checkpoint (replacing one of the same id) and mark its thread's session
        saved and no longer interrupted, creating it if needed; with `keep_last`, delete the
        namespace's checkpoints older than its `keep_last` newest, and their writes."""

    @abstractmethod
    async def put_writes(
        self,
        thread_id: str,
        checkpoint_ns: str,
        checkpoint_id: str,
        writes: Sequence[StoredWrite],
        *,
        replace: bool,
        now: datetime,
    ) -> None:
        """Store pending writes of a checkpoint; those already stored at the same key are
        replaced if `replace`, else kept."""

    @abstractmethod
    async def get(
        self, thread_id: str, checkpoint_ns: str, checkpoint_id: str | None
    ) -> StoredCheckpoint | None:
        """The checkpoint with its writes; without an id, the namespace's newest."""

    @abstractmethod
    async def page(
        self, listing: Listing, after: Cursor | None, limit: int
    ) -> list[StoredCheckpoint]:
        """Up to `limit` checkpoints of the listing after the cursor, newest first."""

    @abstractmethod
    async def delete_runs(self, run_ids: Sequence[str]) -> None:
        """Delete the checkpoints whose metadata names one of the runs, and their writes."""

    @abstractmethod
    async def copy_thread(self, source: str, target: str, now: datetime) -> None:
        """Copy every checkpoint and write of `source` to `target`, whose session is created or
        saved as by `put`; nothing when `source` has no checkpoint."""

    @abstractmethod
    async def prune(self, thread_ids: Sequence[str], keep: int | None) -> None:
        """Keep the `keep` newest checkpoints of each namespace of the threads (with their
        writes), or none at all when `keep` is None."""


def checkpoints_of(store: Store) -> CheckpointRepository:
    """The checkpoint repository on the store's database and connections."""
    from convstore._storage.sqlite.repository import SQLiteRepository

    repository = store._repository
    if isinstance(repository, SQLiteRepository):
        from convstore._storage.checkpoints.sqlite import SQLiteCheckpoints

        return SQLiteCheckpoints(repository)
    # asyncpg is an optional extra
    from convstore._storage.checkpoints.postgres import PostgresCheckpoints
    from convstore._storage.postgres import PostgresRepository

    assert isinstance(repository, PostgresRepository)
    return PostgresCheckpoints(repository)


def stored(row: Sequence[Any], writes: Iterable[Sequence[Any]]) -> StoredCheckpoint:
    """A checkpoint from its row (`statements` column order) and its writes' rows."""
    thread_id, ns, checkpoint_id, parent, type_, blob, metadata = row[:7]
    return StoredCheckpoint(
        thread_id=thread_id,
        checkpoint_ns=ns,
        checkpoint_id=checkpoint_id,
        parent_checkpoint_id=parent,
        type=type_,
        checkpoint=bytes(blob),
        metadata=codec.decode(metadata),
        writes=tuple(
            StoredWrite(task_id, channel, type_of, bytes(value), task_path, idx)
            for task_id, channel, type_of, value, task_path, idx in writes
        ),
    )


def listing_shape(listing: Listing, after: Cursor | None, *, per_key: bool) -> ListingShape:
    """The shape of the listing's query; `per_key` for SQLite, which tests each metadata key."""
    metadata = listing.metadata
    return ListingShape(
        thread=listing.thread_id is not None,
        ns=listing.checkpoint_ns is not None,
        id=listing.checkpoint_id is not None,
        before=listing.before is not None,
        after=after is not None,
        metadata=tuple(v is None for v in metadata.values())
        if per_key
        else (True,) * bool(metadata),
    )


def listing_values(listing: Listing, after: Cursor | None, limit: int) -> dict[str, Any]:
    """The bound values a listing's query shares on both backends."""
    values: dict[str, Any] = {
        "thread": listing.thread_id,
        "ns": listing.checkpoint_ns,
        "id": listing.checkpoint_id,
        "before": listing.before,
        "limit": limit,
    }
    if after is not None:
        values |= dict(zip(("after_id", "after_thread", "after_ns"), after, strict=True))
    return values


def sqlite_metadata_values(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """SQLite: each metadata key's JSON path and the value ``json_extract`` gives for a match.

    The value is compared as stored: through convstore's codec, objects and arrays as their
    compact JSON text, booleans as 1 and 0.
    """
    values: dict[str, Any] = {}
    for i, (key, value) in enumerate(metadata.items()):
        if '"' in key:
            raise InvalidArgument(f"filter keys cannot hold a double quote on SQLite: {key!r}")
        values[f"path_{i}"] = f'$."{key}"'
        stored_value = codec.decode(codec.encode(value, jsonb=False))
        if isinstance(stored_value, dict | list):
            stored_value = codec.encode(stored_value, jsonb=False)
        elif isinstance(stored_value, bool):
            stored_value = int(stored_value)
        values[f"value_{i}"] = stored_value
    return values
