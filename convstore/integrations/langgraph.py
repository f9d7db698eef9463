"""LangGraph persistence on convstore's database: `ConvstoreSaver`, a checkpoint saver.

A LangGraph thread is a convstore session of the same id: writing a checkpoint creates the
session or marks it saved (ending any interruption, as a save does), so `Store.running`,
`Store.mark_interrupted`, `Store.list_interrupted_sessions` and the crash history work on
threads; deleting a thread deletes its session, as `Store.delete_snapshot` does.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Coroutine, Iterable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

try:
    from langchain_core.runnables import RunnableConfig
    from langgraph.checkpoint.base import (
        WRITES_IDX_MAP,
        BaseCheckpointSaver,
        ChannelVersions,
        Checkpoint,
        CheckpointMetadata,
        CheckpointTuple,
        get_checkpoint_id,
        get_serializable_checkpoint_metadata,
    )
    from langgraph.checkpoint.serde.base import SerializerProtocol
except ImportError as error:
    from convstore.integrations._extras import missing_extra

    raise missing_extra("langgraph", "langgraph", error) from error

from convstore import _validate
from convstore._storage.checkpoints.records import (
    Listing,
    Pages,
    StoredCheckpoint,
    StoredWrite,
)
from convstore._storage.checkpoints.repository import checkpoints_of
from convstore._storage.store import Store
from convstore._storage.types import utcnow
from convstore.exceptions import ConfigurationError, InvalidArgument, InvalidSessionId

__all__ = ["ConvstoreSaver"]

T = TypeVar("T")

#: How many checkpoints one read of a listing fetches.
PAGE = 100
#: What `prune` keeps of each namespace, per strategy: the newest checkpoint, or nothing.
STRATEGIES: Mapping[str, int | None] = {"keep_latest": 1, "delete": None}


class ConvstoreSaver(BaseCheckpointSaver[str]):
    """A LangGraph checkpointer that keeps checkpoints in the store's database.

    Create it inside the event loop the store runs on. Its async methods serve
    ``graph.ainvoke``; its sync ones serve ``graph.invoke`` called from another thread while
    that loop runs. With `keep_last`, only the newest `keep_last` checkpoints of each thread and
    namespace are kept (with their pending writes), trimmed as each checkpoint is written.
    """

    def __init__(
        self,
        store: Store,
        *,
        keep_last: int | None = None,
        serde: SerializerProtocol | None = None,
    ) -> None:
        self.keep_last = _validate.optional_whole_number("keep_last", keep_last, minimum=1)
        if not isinstance(store, Store):
            raise InvalidArgument(
                f"store must be a convstore.Store (from convstore.connect), not "
                f"{type(store).__name__}"
            )
        try:
            self._loop = asyncio.get_running_loop()
        except RuntimeError:
            raise ConfigurationError(
                "ConvstoreSaver must be created inside the event loop its store runs on (in an "
                "async function, after `await convstore.connect(...)`)"
            ) from None
        super().__init__(serde=serde)
        self.store = store
        self._checkpoints = checkpoints_of(store)

    # -- async ---------------------------------------------------------------------------------

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """The checkpoint `config` names, or its namespace's newest; None if there is none."""
        thread_id, ns, checkpoint_id = _where(config)
        stored = await self._checkpoints.get(thread_id, ns, checkpoint_id)
        return None if stored is None else self._tuple(stored)

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        """The checkpoints matching the config, metadata `filter` and `before`, newest first."""
        listing, pages = _listing(config, filter, before), Pages(_validate.limit(limit), PAGE)
        while size := pages.wanted():
            page = await self._checkpoints.page(listing, pages.after, size)
            for stored in page:
                yield self._tuple(stored)
            if not pages.took(page, size):
                return

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """Store the checkpoint, as a child of the one `config` names; its config."""
        thread_id, ns, parent = _where(config)
        checkpoint_id = _text("checkpoint id", checkpoint["id"])
        type_, blob = self.serde.dumps_typed(checkpoint)
        stored = StoredCheckpoint(
            thread_id=thread_id,
            checkpoint_ns=ns,
            checkpoint_id=checkpoint_id,
            parent_checkpoint_id=parent,
            type=type_,
            checkpoint=blob,
            metadata=dict(get_serializable_checkpoint_metadata(config, metadata)),
        )
        await self._checkpoints.put(stored, self.keep_last, utcnow())
        return _config(thread_id, ns, checkpoint_id)

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """Store a task's pending writes for the checkpoint `config` names."""
        thread_id, ns, checkpoint_id = _where(config)
        if checkpoint_id is None:
            raise InvalidArgument("put_writes needs a config naming a checkpoint (checkpoint_id)")
        task_id, task_path = _text("task_id", task_id), _text("task_path", task_path)
        rows = [
            StoredWrite(
                task_id,
                _text("channel", channel),
                *self.serde.dumps_typed(value),
                task_path,
                WRITES_IDX_MAP.get(channel, idx),
            )
            for idx, (channel, value) in enumerate(writes)
        ]
        if rows:
            # Errors, interrupts and resumes replace their previous value; other writes of a
            # task are stored once.
            replace = all(w.channel in WRITES_IDX_MAP for w in rows)
            await self._checkpoints.put_writes(
                thread_id, ns, checkpoint_id, rows, replace=replace, now=utcnow()
            )

    async def adelete_thread(self, thread_id: str) -> None:
        """Delete the thread's checkpoints and writes with its session (as
        `Store.delete_snapshot` does: its crash history stays)."""
        await self.store.delete_snapshot(_thread(thread_id))

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        """Delete the checkpoints the runs wrote (their metadata's ``run_id``), and their writes."""
        runs = _strings("run_ids", run_ids)
        if runs:
            await self._checkpoints.delete_runs(runs)

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Copy every checkpoint and write of one thread to another, whose session it creates."""
        source, target = _thread(source_thread_id), _thread(target_thread_id)
        await self._checkpoints.copy_thread(source, target, utcnow())

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """Keep only the newest checkpoint of each namespace of the threads ("keep_latest"), or
        none ("delete"); the threads' sessions stay."""
        if strategy not in STRATEGIES:
            raise InvalidArgument(f"strategy must be one of {sorted(STRATEGIES)}, not {strategy!r}")
        threads = [_thread(t) for t in _items("thread_ids", thread_ids)]
        if threads:
            await self._checkpoints.prune(threads, STRATEGIES[strategy])

    def get_next_version(self, current: str | int | None, channel: None) -> str:
        """The version after `current`: a counter, then a random fraction, as LangGraph's own
        SQL savers write them."""
        if current is None:
            number = 0
        elif isinstance(current, int):
            number = current
        else:
            number = int(current.split(".")[0])
        return f"{number + 1:032}.{random.random():016}"

    # -- sync ----------------------------------------------------------------------------------

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """`aget_tuple`, from a thread other than the store's event loop's."""
        return self._blocking("get_tuple", self.aget_tuple(config))

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        """`alist`, from a thread other than the store's event loop's, a page at a time."""
        listing, pages = _listing(config, filter, before), Pages(_validate.limit(limit), PAGE)
        while size := pages.wanted():
            page = self._blocking("list", self._checkpoints.page(listing, pages.after, size))
            yield from (self._tuple(stored) for stored in page)
            if not pages.took(page, size):
                return

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """`aput`, from a thread other than the store's event loop's."""
        return self._blocking("put", self.aput(config, checkpoint, metadata, new_versions))

    def put_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """`aput_writes`, from a thread other than the store's event loop's."""
        self._blocking("put_writes", self.aput_writes(config, writes, task_id, task_path))

    def delete_thread(self, thread_id: str) -> None:
        """`adelete_thread`, from a thread other than the store's event loop's."""
        self._blocking("delete_thread", self.adelete_thread(thread_id))

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        """`adelete_for_runs`, from a thread other than the store's event loop's."""
        self._blocking("delete_for_runs", self.adelete_for_runs(run_ids))

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """`acopy_thread`, from a thread other than the store's event loop's."""
        self._blocking("copy_thread", self.acopy_thread(source_thread_id, target_thread_id))

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """`aprune`, from a thread other than the store's event loop's."""
        self._blocking("prune", self.aprune(thread_ids, strategy=strategy))

    # -- helpers -------------------------------------------------------------------------------

    def _blocking(self, method: str, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run `coroutine` on the store's event loop and wait for it, from another thread."""
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        problem = None
        if running is self._loop:
            problem = (
                "was called on the event loop its store runs on, which it would block: await "
                f"a{method}(...) there (graph.ainvoke), or run graph.invoke in another thread, "
                "e.g. with asyncio.to_thread"
            )
        elif not self._loop.is_running():
            state = "closed" if self._loop.is_closed() else "not running"
            problem = f"needs the event loop its store runs on, which is {state}"
        if problem is not None:
            coroutine.close()
            raise ConfigurationError(f"ConvstoreSaver.{method} {problem}")
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    def _tuple(self, stored: StoredCheckpoint) -> CheckpointTuple:
        """The LangGraph form of a stored checkpoint."""
        thread_id, ns = stored.thread_id, stored.checkpoint_ns
        parent = stored.parent_checkpoint_id
        return CheckpointTuple(
            config=_config(thread_id, ns, stored.checkpoint_id),
            checkpoint=self.serde.loads_typed((stored.type or "", stored.checkpoint)),
            metadata=CheckpointMetadata(**stored.metadata),  # type: ignore[typeddict-item]
            parent_config=None if parent is None else _config(thread_id, ns, parent),
            pending_writes=[
                (w.task_id, w.channel, self.serde.loads_typed((w.type or "", w.value)))
                for w in stored.writes
            ],
        )


def _config(thread_id: str, ns: str, checkpoint_id: str) -> RunnableConfig:
    return {
        "configurable": {
            "thread_id": thread_id,
            "checkpoint_ns": ns,
            "checkpoint_id": checkpoint_id,
        }
    }


def _where(config: RunnableConfig) -> tuple[str, str, str | None]:
    """The thread id, namespace and (if any) checkpoint id that `config` names."""
    configurable = _configurable(config)
    checkpoint_id = get_checkpoint_id(config)
    return (
        _thread(configurable.get("thread_id")),
        _text("checkpoint_ns", configurable.get("checkpoint_ns") or ""),
        None if not checkpoint_id else _text("checkpoint_id", checkpoint_id),
    )


def _configurable(config: object) -> Mapping[str, Any]:
    configurable = config.get("configurable") if isinstance(config, Mapping) else None
    if not isinstance(configurable, Mapping):
        raise InvalidArgument(
            f'config must be a dict with a "configurable" dict (a LangGraph RunnableConfig), '
            f"not {config!r}"
        )
    return configurable


def _listing(
    config: RunnableConfig | None, filter: object, before: RunnableConfig | None
) -> Listing:
    """What a listing returns, checked."""
    if filter is not None and (
        not isinstance(filter, Mapping) or not all(isinstance(k, str) for k in filter)
    ):
        raise InvalidArgument(f"filter must be None or a dict with str keys, not {filter!r}")
    before_id = None if before is None else _where(before)[2]
    if config is None:
        return Listing(before=before_id, metadata=dict(filter or {}))
    configurable = _configurable(config)
    thread_id, ns, checkpoint_id = _where(config)
    return Listing(
        thread_id=thread_id,
        # No namespace given lists every namespace of the thread.
        checkpoint_ns=ns if configurable.get("checkpoint_ns") is not None else None,
        checkpoint_id=checkpoint_id,
        before=before_id,
        metadata=dict(filter or {}),
    )


def _thread(thread_id: object) -> str:
    """The thread id, if it is a valid convstore session id."""
    try:
        return _validate.session_id(thread_id)
    except InvalidSessionId as error:
        raise InvalidSessionId(f"thread_id {thread_id!r}: {error}") from None


def _text(name: str, value: object) -> str:
    """`value`, if it is a str the database can store."""
    if not isinstance(value, str) or not _validate.storable_text(value):
        raise InvalidArgument(f"{name} must be a str without NUL or lone surrogates, not {value!r}")
    return value


def _items(name: str, values: object) -> list[object]:
    """`values` as a list, if it is an iterable (a str alone is refused, not split)."""
    if isinstance(values, str | bytes) or not isinstance(values, Iterable):
        raise InvalidArgument(f"{name} must be a list of str, not {values!r}")
    return list(values)


def _strings(name: str, values: object) -> list[str]:
    """`values`, if it is an iterable of str (a str alone is refused, not split)."""
    found = _items(name, values)
    wrong = [v for v in found if not isinstance(v, str)]
    if wrong:
        raise InvalidArgument(f"{name} must hold str, not {wrong[0]!r}")
    return [v for v in found if isinstance(v, str)]
