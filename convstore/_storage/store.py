"""The store: validated, typed access to snapshots and crash history on one database."""

from __future__ import annotations

from collections.abc import Generator, Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from types import TracebackType
from typing import Any, Self

from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine

from convstore import _validate
from convstore._records import (
    Attempt,
    Cooldown,
    InterruptedSession,
    Interruption,
    RetrySummary,
    Snapshot,
)
from convstore._storage import lease
from convstore._storage.cooldowns import CooldownBoard, deadline
from convstore._storage.engine import (
    check_sqlite_path,
    configure_engine,
    create_engine,
    resolve_url,
    safe_url,
    sqlite_read_only_reason,
)
from convstore._storage.errors import storage_errors
from convstore._storage.lease import Lease
from convstore._storage.migrate import ensure_schema
from convstore._storage.placement import check_engine_schema, check_schema
from convstore._storage.pop import pop_messages
from convstore._storage.repository import Repository
from convstore._storage.resume import resume
from convstore._storage.sqlite.repository import SQLiteRepository
from convstore._storage.types import utcnow
from convstore.exceptions import InvalidArgument, PermanentStorageError, StorageError

DEFAULT_MAX_MESSAGES = _validate.DEFAULT_MAX_MESSAGES
DEFAULT_RECONNECT_S = 15.0
DEFAULT_LEASE_S = 30.0


class Store:
    """Snapshots, interruption markers and crash history of conversations, in one database.

    Open one with `convstore.connect`. A store is safe to share between the tasks of one event
    loop; each operation is one short transaction.
    """

    def __init__(self, repository: Repository, *, max_messages: int, owns_engine: bool) -> None:
        self._repository = repository
        self._max_messages = max_messages
        self._owns_engine = owns_engine
        self._cooldowns = CooldownBoard(repository)

    @property
    def engine(self) -> AsyncEngine:
        """The SQLAlchemy engine the store runs on."""
        return self._repository.engine

    @property
    def max_messages(self) -> int:
        """How many of a conversation's newest messages are kept."""
        return self._max_messages

    async def save_snapshot(
        self,
        session_id: str,
        messages: Sequence[Any],
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        """Replace the session's stored conversation and extra state, ending any interruption.

        The newest `max_messages` messages are kept; the snapshot replaces the previous one
        entirely or, if the save fails or is cancelled, not at all.
        """
        session_id = _validate.session_id(session_id)
        # A copy: the messages are encoded later, safe from the caller's changes to the list.
        messages = list(_validate.messages(messages))
        await self._repository.save(
            session_id, messages, _validate.extra(extra), self._max_messages, utcnow()
        )

    async def append_messages(
        self,
        session_id: str,
        messages: Sequence[Any],
        *,
        extra: Mapping[str, Any] | None = None,
    ) -> int:
        """Append to the session's conversation (creating it if needed); the new message count.

        Ends any interruption. `extra`, when given, replaces the stored extra state. The cost does
        not grow with the length of the conversation.
        """
        session_id = _validate.session_id(session_id)
        messages = list(_validate.messages(messages))
        return await self._repository.append(
            session_id,
            messages,
            None if extra is None else _validate.extra(extra),
            self._max_messages,
            utcnow(),
        )

    async def restore_snapshot(self, session_id: str) -> Snapshot | None:
        """The session's stored conversation and state, or None if there is none."""
        return await self._repository.restore(_validate.session_id(session_id))

    async def resume(self, session_id: str, *, pending: Iterable[str] = ()) -> Snapshot | None:
        """The session's conversation, repaired so that its provider accepts it as it is.

        Calls without a result get a synthetic one saying that they were interrupted, results
        whose call is not in the conversation are dropped, and messages it may not start with
        are dropped from its start; the call ids in `pending` (waiting for a person's approval,
        say) are left open. The repaired conversation is written back and the interruption, if
        any, ends, in one transaction; `Snapshot.repairs` and the interruption's history row say
        what was repaired. None if the session is unknown.
        """
        return await resume(
            self._repository,
            _validate.session_id(session_id),
            _validate.call_ids(pending),
            utcnow(),
        )

    async def pop_messages(self, session_id: str, count: int = 1) -> list[Any]:
        """Take the newest `count` stored messages off the session's conversation; the messages
        taken, oldest first (fewer if fewer are stored, none if the session is unknown).

        `message_count` goes down by as many, so that the next append takes their places; the
        extra state and any interruption stay. One transaction, which a concurrent append
        waits for (or it for the append): the messages taken are the newest when it runs.
        """
        session_id = _validate.session_id(session_id)
        count = _validate.whole_number("count", count, minimum=1)
        return await pop_messages(self._repository, session_id, count, utcnow())

    async def mark_interrupted(self, session_id: str, reason: str | None = None) -> None:
        """Mark the session interrupted (creating it, empty, if unknown) and record it in history.

        The marker stays until the session is next saved, appended to or deleted.
        """
        await self._repository.mark_interrupted(
            _validate.session_id(session_id), _validate.reason(reason), utcnow()
        )

    async def list_interrupted_sessions(self, limit: int | None = None) -> list[InterruptedSession]:
        """The sessions marked interrupted, newest interruption first."""
        return await self._repository.list_interrupted(_validate.limit(limit), utcnow())

    async def interruptions(
        self, session_id: str | None = None, *, limit: int | None = None
    ) -> list[Interruption]:
        """The crash history, newest first: every `mark_interrupted`, of one session or all."""
        if session_id is not None:
            session_id = _validate.session_id(session_id)
        return await self._repository.interruptions(session_id, _validate.limit(limit))

    async def delete_snapshot(self, session_id: str) -> bool:
        """Delete the session and its messages; whether it existed. Its crash history stays."""
        return await self._repository.delete(_validate.session_id(session_id), utcnow())

    def running(
        self, session_id: str, owner: str | None = None, lease_s: float = DEFAULT_LEASE_S
    ) -> AbstractAsyncContextManager[Lease]:
        """Mark the session as running under `owner` while the ``async with`` block runs.

        A background task renews the lease every third of `lease_s` seconds. A clean exit clears
        it; an exception marks the session interrupted with the exception as the reason, then
        propagates. If the process dies, the lease expires and `recover_abandoned` finds it.
        `owner` defaults to a token naming this host and process. A session running under
        another owner whose lease is alive raises `LeaseHeld`; an expired one is taken over and
        recorded as abandoned.
        """
        return lease.running(self._repository, _validate.session_id(session_id), owner, lease_s)

    async def recover_abandoned(self) -> list[InterruptedSession]:
        """Mark every session whose lease expired (its owner died) interrupted, as "abandoned".

        Returns them; safe to call from many workers at once, each session is returned by one.
        """
        return await self._repository.recover_abandoned(utcnow())

    async def record_attempt(self, attempt: Attempt) -> None:
        """Store one attempt of a retried call as a ``retry_events`` row.

        The retry executor calls this for every attempt when given ``store=``.
        """
        if not isinstance(attempt, Attempt):
            raise InvalidArgument(
                f"attempt must be a convstore.Attempt, not {type(attempt).__name__}"
            )
        await self._repository.record_attempt(attempt)

    async def cooldowns(self, limit: int | None = None) -> list[Cooldown]:
        """The rate limits cooling down now, the one ending last first (see `RetryExecutor`)."""
        return await self._cooldowns.active(utcnow(), _validate.limit(limit))

    async def cooldown_until(self, limit_key: str) -> datetime | None:
        """When the key's shared cooldown ends, None if it never had one."""
        return await self._cooldowns.until(_validate.limit_key(limit_key))

    async def cooldown_admission(self, limit_key: str) -> float | None:
        """None when the key is neither cooling down nor paced: an attempt may go now. Else the
        seconds until the slot this call now holds (the retry executor calls this before every
        attempt); what another process wrote is seen within 0.025 s of its commit."""
        return await self._cooldowns.admit(_validate.limit_key(limit_key))

    async def extend_cooldown(
        self,
        limit_key: str,
        seconds: float,
        attempt: Attempt,
        *,
        admitted_at: datetime | None = None,
    ) -> datetime:
        """Make the key cool down for `seconds` from now, unless it already does for longer,
        and pace its attempts; `attempt` is the failed attempt that asks for it, `admitted_at`
        when it was given its slot, if it was paced (the retry executor calls this). The
        deadline asked for."""
        seconds = _validate.real_number("seconds", seconds, minimum=0.0)
        if not isinstance(attempt, Attempt):
            raise InvalidArgument(f"attempt must be a convstore.Attempt, not {attempt!r}")
        if admitted_at is not None and (
            not isinstance(admitted_at, datetime) or admitted_at.tzinfo is None
        ):
            raise InvalidArgument(
                f"admitted_at must be a timezone-aware datetime or None, not {admitted_at!r}"
            )
        now = utcnow()
        until = deadline(now, seconds)
        status = "" if attempt.status_code is None else f"HTTP {attempt.status_code} on "
        cooldown = Cooldown(
            limit_key=_validate.limit_key(limit_key),
            until=until,
            set_at=now,
            call_id=_validate.storable(attempt.call_id),
            operation=_validate.storable(attempt.operation),
            reason=_validate.storable(f"{status}{attempt.error_class or 'an error'}"),
            status_code=attempt.status_code,
        )
        await self._cooldowns.extend(cooldown, attempt.retry_after_s, admitted_at)
        return until

    async def retry_summary(
        self, *, since: datetime | None = None, operation: str | None = None
    ) -> list[RetrySummary]:
        """The retry history per operation and kind of error, optionally since a time.

        Sorted by operation, then kind of error (first-attempt successes first).
        """
        if since is not None and (not isinstance(since, datetime) or since.tzinfo is None):
            raise InvalidArgument(f"since must be a timezone-aware datetime, not {since!r}")
        if operation is not None and not isinstance(operation, str):
            raise InvalidArgument(f"operation must be a str, not {type(operation).__name__}")
        return await self._repository.retry_summary(since, operation)

    async def close(self) -> None:
        """Close the store's connections, unless its engine was handed to `connect`."""
        await self._repository.close()
        if self._owns_engine:
            await self._repository.engine.dispose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()


class _Connecting:
    """What `connect` returns: await it, or use it as ``async with``."""

    def __init__(
        self,
        url: str | URL | AsyncEngine,
        max_messages: int,
        migrate: bool,
        reconnect_s: float,
        schema: str | None,
    ) -> None:
        self._url = url
        self._schema = schema
        self._max_messages = _validate.max_messages(max_messages)
        self._migrate = migrate
        self._reconnect_s = _validate.real_number("reconnect_s", reconnect_s, minimum=0.0)
        self._store: Store | None = None

    def __await__(self) -> Generator[Any, None, Store]:
        return self._open().__await__()

    async def __aenter__(self) -> Store:
        self._store = await self._open()
        return self._store

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._store is not None:
            await self._store.close()

    async def _open(self) -> Store:
        if isinstance(self._url, AsyncEngine):
            engine, owns_engine = self._url, False
            configure_engine(engine)
            check_engine_schema(engine, self._schema)
        else:
            url = resolve_url(self._url)
            check_schema(url, self._schema)
            check_sqlite_path(url)
            engine, owns_engine = create_engine(url, schema=self._schema), True
        database = safe_url(engine.url)
        ready = False
        try:
            try:
                with storage_errors("connect", database):
                    await ensure_schema(engine, migrate=self._migrate)
            except StorageError as exc:
                reason = sqlite_read_only_reason(engine.url)
                if reason is None:
                    raise
                raise PermanentStorageError(
                    f"connect failed on {database}: {reason}"
                ) from exc.__cause__
            ready = True
        finally:
            if owns_engine and not ready:
                await engine.dispose()
        # Idle connections are kept out of the pool only when the pool is convstore's own: a
        # caller's engine may be sized for the caller's needs.
        keep = 4 if owns_engine else 0
        repository: Repository
        if engine.dialect.name == "postgresql":
            # asyncpg is an optional extra
            from convstore._storage.postgres import PostgresRepository

            repository = PostgresRepository(
                engine, database, keep_connections=keep, reconnect_s=self._reconnect_s
            )
        else:
            repository = SQLiteRepository(engine, database, keep_connections=keep)
        return Store(repository, max_messages=self._max_messages, owns_engine=owns_engine)


def connect(
    url: str | URL | AsyncEngine,
    *,
    max_messages: int = DEFAULT_MAX_MESSAGES,
    migrate: bool = True,
    reconnect_s: float = DEFAULT_RECONNECT_S,
    schema: str | None = None,
) -> _Connecting:
    """Open a store on a database URL or engine; await the result or use it with ``async with``.

    `url` is ``sqlite:///path.db`` (aiosqlite is used), ``sqlite+aiosqlite:///path.db``,
    ``postgresql://user@host/db`` (asyncpg, from the ``postgres`` extra) or an `AsyncEngine`,
    which the store uses but does not dispose of. With `migrate`, an empty or older
    database is upgraded to the newest schema; without, such a database raises `SchemaError`.

    On PostgreSQL, an operation whose connection is lost (a restart, a failover) keeps trying
    on new connections for up to `reconnect_s` seconds (0: never); see the PostgreSQL page.

    On PostgreSQL, `schema` puts every convstore table, index and sequence, and its version
    table, in that schema (created by the migrations if missing) instead of the default one.
    """
    return _Connecting(url, max_messages, migrate, reconnect_s, schema)
