"""The checkpoint statements, written once in SQLAlchemy Core and compiled by each backend.

Bind names: ``thread``, ``ns``, ``id`` name a checkpoint; ``skip`` is how many of a namespace's
newest checkpoints a trim keeps, less one; ``source`` and ``target`` are the threads of a copy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Delete,
    Insert,
    Integer,
    Text,
    bindparam,
    delete,
    exists,
    func,
    literal_column,
    select,
    tuple_,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, aggregate_order_by
from sqlalchemy.sql.selectable import Select

from convstore._storage import statements as shared
from convstore._storage.schema import langgraph_checkpoints as checkpoints
from convstore._storage.schema import langgraph_writes as writes
from convstore._storage.schema import sessions

c, w = checkpoints.c, writes.c
THREAD: BindParameter[Any] = bindparam("thread")
NS: BindParameter[Any] = bindparam("ns")
ID: BindParameter[Any] = bindparam("id")
#: A new session's values that a checkpoint does not give: no messages, no extra state.
# Literals rather than bound values, so that compiled statements bind only what is passed: SQLite's
# compiler would otherwise add a bound OFFSET to every LIMIT.
_ONE: ColumnElement[Any] = literal_column("1")
_NONE: ColumnElement[Any] = literal_column("0")
_EMPTY_SESSION: dict[str, Any] = {
    "message_count": literal_column("0"),
    "extra": literal_column("'{}'"),
}


def touch_session(dialect: str) -> Insert:
    """Create the thread's session, or mark it saved at ``:now``; either way not interrupted."""
    return shared.upsert_session(
        dialect,
        {"session_id": shared.SESSION_ID, **_EMPTY_SESSION},
        lambda excluded: {"saved_at": excluded.saved_at, **shared.CLEAR_MARKER},
    )


def ensure_session(dialect: str) -> Insert:
    """Create the thread's session, created and saved at ``:now``, unless it exists."""
    now: BindParameter[Any] = bindparam("now")
    row = {"session_id": shared.SESSION_ID, "created_at": now, "saved_at": now, **_EMPTY_SESSION}
    return cast(
        Insert,
        shared.INSERTS[dialect](sessions).values(row).on_conflict_do_nothing(),
    )


def insert_checkpoint(dialect: str) -> Insert:
    """INSERT the checkpoint, or replace the stored one of the same id."""
    statement = shared.INSERTS[dialect](checkpoints).values(
        thread_id=THREAD,
        checkpoint_ns=NS,
        checkpoint_id=ID,
        parent_checkpoint_id=bindparam("parent"),
        type=bindparam("type"),
        checkpoint=bindparam("checkpoint"),
        metadata=bindparam("metadata"),
    )
    excluded = statement.excluded
    return cast(
        Insert,
        statement.on_conflict_do_update(
            index_elements=[c.thread_id, c.checkpoint_ns, c.checkpoint_id],
            set_={
                "parent_checkpoint_id": excluded.parent_checkpoint_id,
                "type": excluded.type,
                "checkpoint": excluded.checkpoint,
                "metadata": excluded["metadata"],
            },
        ),
    )


def insert_write(dialect: str, *, replace: bool) -> Insert:
    """INSERT one pending write; one already stored at its key is replaced if `replace`, else
    kept (a task's writes are stored once, but errors and interrupts are updated)."""
    statement = shared.INSERTS[dialect](writes).values(
        thread_id=THREAD,
        checkpoint_ns=NS,
        checkpoint_id=ID,
        task_id=bindparam("task"),
        idx=bindparam("idx"),
        channel=bindparam("channel"),
        type=bindparam("type"),
        value=bindparam("value"),
        task_path=bindparam("path"),
    )
    if not replace:
        return cast(Insert, statement.on_conflict_do_nothing())
    excluded = statement.excluded
    return cast(
        Insert,
        statement.on_conflict_do_update(
            index_elements=[w.thread_id, w.checkpoint_ns, w.checkpoint_id, w.task_id, w.idx],
            set_={
                "channel": excluded.channel,
                "type": excluded.type,
                "value": excluded.value,
                "task_path": excluded.task_path,
            },
        ),
    )


def _oldest_kept() -> Any:
    """The id of the ``:skip``-th newest checkpoint (0-based) of thread and namespace; NULL
    when there are no more than ``:skip`` of them."""
    return (
        select(c.checkpoint_id)
        .where(c.thread_id == THREAD, c.checkpoint_ns == NS)
        .order_by(c.checkpoint_id.desc())
        .limit(_ONE)
        .offset(bindparam("skip", type_=Integer))
        .scalar_subquery()
    )


def delete_unkept_writes() -> Delete:
    """Delete the namespace's writes older than the checkpoints a trim keeps (run first)."""
    return delete(writes).where(
        w.thread_id == THREAD, w.checkpoint_ns == NS, w.checkpoint_id < _oldest_kept()
    )


def delete_unkept_checkpoints() -> Delete:
    """Delete the namespace's checkpoints older than the ``:skip`` + 1 newest."""
    return delete(checkpoints).where(
        c.thread_id == THREAD, c.checkpoint_ns == NS, c.checkpoint_id < _oldest_kept()
    )


def namespaces() -> Select[tuple[str]]:
    """The thread's namespaces that hold checkpoints."""
    return select(c.checkpoint_ns).where(c.thread_id == THREAD).distinct()


def delete_thread_writes() -> Delete:
    """Delete every pending write of the thread."""
    return delete(writes).where(w.thread_id == THREAD)


def delete_thread_checkpoints() -> Delete:
    """Delete every checkpoint of the thread."""
    return delete(checkpoints).where(c.thread_id == THREAD)


def run_id(dialect: str) -> ColumnElement[Any]:
    """The ``run_id`` of a checkpoint's metadata, as text."""
    if dialect == "postgresql":
        return c["metadata"].op("->>")(literal_column("'run_id'"))
    return func.json_extract(c["metadata"], literal_column("'$.run_id'"))


def _of_runs(dialect: str) -> ColumnElement[bool]:
    """Whether a checkpoint was written by one of the runs ``:runs`` (an array on PostgreSQL,
    one run id on SQLite, where the statement runs once per run)."""
    if dialect == "postgresql":
        return run_id(dialect) == func.any(bindparam("runs", type_=ARRAY(Text)))
    return run_id(dialect) == bindparam("runs")


def delete_run_writes(dialect: str) -> Delete:
    """Delete the pending writes of the checkpoints of ``:runs`` (run first)."""
    of_checkpoint = exists().where(
        c.thread_id == w.thread_id,
        c.checkpoint_ns == w.checkpoint_ns,
        c.checkpoint_id == w.checkpoint_id,
        _of_runs(dialect),
    )
    return delete(writes).where(of_checkpoint)


def delete_run_checkpoints(dialect: str) -> Delete:
    """Delete the checkpoints of ``:runs``."""
    return delete(checkpoints).where(_of_runs(dialect))


def thread_exists() -> Select[tuple[bool]]:
    """Whether thread ``:source`` has a checkpoint."""
    return select(exists().where(c.thread_id == bindparam("source")))


def copy_checkpoints(dialect: str) -> Insert:
    """Copy every checkpoint of thread ``:source`` to thread ``:target``, keeping those there."""
    columns = [col.name for col in checkpoints.columns]
    source = select(
        bindparam("target", type_=c.thread_id.type), *[c[n] for n in columns[1:]]
    ).where(c.thread_id == bindparam("source"))
    statement = shared.INSERTS[dialect](checkpoints).from_select(columns, source)
    return cast(Insert, statement.on_conflict_do_nothing())


def copy_writes(dialect: str) -> Insert:
    """Copy every pending write of thread ``:source`` to thread ``:target``."""
    columns = [col.name for col in writes.columns]
    source = select(
        bindparam("target", type_=w.thread_id.type), *[w[n] for n in columns[1:]]
    ).where(w.thread_id == bindparam("source"))
    statement = shared.INSERTS[dialect](writes).from_select(columns, source)
    return cast(Insert, statement.on_conflict_do_nothing())


def _writes_array() -> Any:
    """PostgreSQL: the checkpoint's pending writes as one array of records, in order."""
    record = tuple_(w.task_id, w.channel, w.type, w.value, w.task_path, w.idx)
    return (
        select(func.array_agg(aggregate_order_by(record, w.task_path, w.task_id, w.idx)))
        .where(
            w.thread_id == c.thread_id,
            w.checkpoint_ns == c.checkpoint_ns,
            w.checkpoint_id == c.checkpoint_id,
        )
        .scalar_subquery()
    )


def _columns(dialect: str) -> list[Any]:
    """A checkpoint's columns, in `StoredCheckpoint` order; on PostgreSQL its writes too."""
    columns: list[Any] = [
        c.thread_id,
        c.checkpoint_ns,
        c.checkpoint_id,
        c.parent_checkpoint_id,
        c.type,
        c.checkpoint,
        c["metadata"],
    ]
    return [*columns, _writes_array()] if dialect == "postgresql" else columns


def select_checkpoint(dialect: str, *, by_id: bool) -> Select[Any]:
    """The checkpoint ``:id`` of the namespace, or (without `by_id`) its newest."""
    query = select(*_columns(dialect)).where(c.thread_id == THREAD, c.checkpoint_ns == NS)
    if by_id:
        return query.where(c.checkpoint_id == ID)
    return query.order_by(c.checkpoint_id.desc()).limit(_ONE).offset(_NONE)


def select_writes() -> Select[Any]:
    """SQLite: the checkpoint's pending writes, in the order a super-step applies them."""
    return (
        select(w.task_id, w.channel, w.type, w.value, w.task_path, w.idx)
        .where(w.thread_id == THREAD, w.checkpoint_ns == NS, w.checkpoint_id == ID)
        .order_by(w.task_path, w.task_id, w.idx)
    )


@dataclass(frozen=True)
class ListingShape:
    """Which conditions a listing query has (its statement is compiled once per shape)."""

    thread: bool
    ns: bool
    id: bool
    before: bool
    after: bool
    #: SQLite: per metadata key, whether its value is None; PostgreSQL: whether there are any.
    metadata: tuple[bool, ...]


def listing(dialect: str, shape: ListingShape) -> Select[Any]:
    """One page of checkpoints, newest first, at most ``:limit``: bind names ``thread``, ``ns``,
    ``id``, ``before``, ``after_id``/``after_thread``/``after_ns`` (the cursor), and
    ``path_<i>``/``value_<i>`` per metadata key (SQLite) or ``metadata`` (PostgreSQL)."""
    query = select(*_columns(dialect))
    conditions = {
        "thread": c.thread_id == THREAD,
        "ns": c.checkpoint_ns == NS,
        "id": c.checkpoint_id == ID,
        "before": c.checkpoint_id < bindparam("before"),
        "after": tuple_(c.checkpoint_id, c.thread_id, c.checkpoint_ns)
        < tuple_(*(bindparam(f"after_{name}", type_=Text) for name in ("id", "thread", "ns"))),
    }
    for name, condition in conditions.items():
        if getattr(shape, name):
            query = query.where(condition)
    query = query.where(*_metadata_conditions(dialect, shape.metadata))
    order = (c.checkpoint_id.desc(), c.thread_id.desc(), c.checkpoint_ns.desc())
    return query.order_by(*order).limit(bindparam("limit", type_=Integer)).offset(_NONE)


def _metadata_conditions(dialect: str, nulls: tuple[bool, ...]) -> list[ColumnElement[bool]]:
    """The conditions on the metadata: containment of ``:metadata`` on PostgreSQL; on SQLite,
    per key ``i``, the value at JSON path ``:path_i`` equal to ``:value_i`` (or JSON null)."""
    if not nulls:
        return []
    metadata = c["metadata"]
    if dialect == "postgresql":
        return [metadata.op("@>")(bindparam("metadata", type_=JSONB))]
    return [
        func.json_type(metadata, bindparam(f"path_{i}")) == literal_column("'null'")
        if null
        else func.json_extract(metadata, bindparam(f"path_{i}")) == bindparam(f"value_{i}")
        for i, null in enumerate(nulls)
    ]
