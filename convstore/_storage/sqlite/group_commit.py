"""Group commit: writes that queue up while one runs are committed together, in one transaction.

SQLite takes one writer at a time. When several tasks write at once, each would pay a trip to the
connection's thread and a commit of its own; instead the writes waiting at that moment go over
in one trip and share one transaction, each in a savepoint of its own, so that one failing write
is undone alone and the others still commit.
"""

from __future__ import annotations

import asyncio
import functools
import sqlite3
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from convstore._storage.sqlite.operations import Work

#: Runs a function with the connection on its thread, calling back at once if cancelled:
#: `SQLiteRepository._run`.
Runner = Callable[
    [Callable[[sqlite3.Connection], list["_JobResult"]], Callable[[], object]],
    Awaitable[list["_JobResult"]],
]

#: The most writes one transaction carries, so that no transaction grows without bound.
MAX_BATCH = 64


@dataclass(eq=False)
class _Job:
    work: Work
    future: asyncio.Future[Any]
    #: Set from the event loop, read on the connection's thread.
    cancelled: threading.Event = field(default_factory=threading.Event)


@dataclass(frozen=True)
class _JobResult:
    value: Any = None
    error: BaseException | None = None
    skipped: bool = False

    @property
    def done(self) -> bool:
        """Whether the job's changes are to be committed."""
        return self.error is None and not self.skipped


@dataclass
class GroupCommitWriter:
    """Runs pieces of write work in shared transactions, on one connection at a time."""

    run: Runner
    lock: asyncio.Lock
    _queue: list[_Job] = field(default_factory=list)
    #: Whether a transaction is under way; writes arriving meanwhile queue for the next one.
    _busy: bool = False
    _draining: asyncio.Task[None] | None = None

    async def write(self, work: Work) -> Any:
        """Run `work` in a transaction; its result, or its exception.

        Cancelled before its turn, the write is skipped; cancelled during it, it is rolled back
        unless its transaction was already being committed.
        """
        job = _Job(work, asyncio.get_running_loop().create_future())
        if self._busy:
            self._queue.append(job)
            try:
                return await job.future
            except asyncio.CancelledError:
                job.cancelled.set()
                raise
        # Nobody is writing: this write goes at once, in its caller's task.
        self._busy = True
        try:
            [result] = await self._transaction([job])
        finally:
            self._hand_over()
        if result.error is not None:
            raise result.error
        return result.value

    async def close(self) -> None:
        """Wait for the writes already queued."""
        while self._draining is not None:
            await asyncio.shield(self._draining)

    def _hand_over(self) -> None:
        """After a transaction: let the writes that queued meanwhile go, in a task of their own."""
        if self._queue:
            # A task, so that no caller waits for others' writes and cancelling one caller
            # never strands the rest.
            self._draining = asyncio.create_task(self._drain())
        else:
            self._busy = False

    async def _drain(self) -> None:
        jobs, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
        try:
            try:
                results = await self._transaction(jobs)
            except asyncio.CancelledError:  # the event loop is shutting down
                for job in jobs:
                    job.future.cancel()
                raise
            for job, result in zip(jobs, results, strict=True):
                if job.future.done():
                    continue  # its caller was cancelled
                if result.skipped:
                    job.future.cancel()
                elif result.error is not None:
                    job.future.set_exception(result.error)
                else:
                    job.future.set_result(result.value)
        finally:
            self._draining = None
            self._hand_over()

    async def _transaction(self, jobs: list[_Job]) -> list[_JobResult]:
        try:
            async with self.lock:
                return await self.run(
                    functools.partial(_commit, jobs=jobs), functools.partial(_cancel, jobs)
                )
        except Exception as exc:  # noqa: BLE001 - handed to the callers, not swallowed
            # The transaction failed as a whole, and so did every write in it.
            return [_JobResult(error=exc)] * len(jobs)


def _cancel(jobs: list[_Job]) -> None:
    """Tell the connection's thread that nobody waits for these jobs any more."""
    for job in jobs:
        job.cancelled.set()


def _commit(conn: sqlite3.Connection, jobs: list[_Job]) -> list[_JobResult]:
    """Run the jobs in one IMMEDIATE transaction; on the connection's thread."""
    # Savepoints let one job fail alone, but cost a few percent of a save: a job alone in its
    # transaction does without, and its failure rolls the transaction back instead.
    alone = len(jobs) == 1
    conn.execute("BEGIN IMMEDIATE")
    try:
        results = [_run_job(conn, job, savepoint=not alone) for job in jobs]
        conn.execute("COMMIT" if any(o.done for o in results) else "ROLLBACK")
    finally:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
    return results


def _run_job(conn: sqlite3.Connection, job: _Job, *, savepoint: bool) -> _JobResult:
    """Run one job's work, undoing it if it fails or its caller left while it ran."""
    if job.cancelled.is_set():
        return _JobResult(skipped=True)
    if savepoint:
        conn.execute("SAVEPOINT job")
    try:
        result = _JobResult(value=job.work(conn))
    except Exception as exc:  # noqa: BLE001 - handed to its caller, not swallowed
        result = _JobResult(error=exc)
    if job.cancelled.is_set():  # nobody waits for it any more
        result = _JobResult(skipped=True)
    if savepoint:
        if not result.done:
            conn.execute("ROLLBACK TO job")
        conn.execute("RELEASE job")
    return result
