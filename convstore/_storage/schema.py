"""The tables, as SQLAlchemy models; the migrations in ``migrations/`` create exactly these."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import (
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    text,
    true,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from convstore._storage.types import JSONDocument, JSONText, UTCDateTime
from convstore._validate import SESSION_ID_MAX_LENGTH

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite only aliases the rowid for a column declared exactly INTEGER PRIMARY KEY.
_BigIntId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime()}


class SessionRow(Base):
    """One conversation: its counters, extra state and interruption marker."""

    __tablename__ = "sessions"

    session_id: Mapped[str] = mapped_column(String(SESSION_ID_MAX_LENGTH), primary_key=True)
    created_at: Mapped[datetime]
    saved_at: Mapped[datetime]
    message_count: Mapped[int] = mapped_column(Integer)
    extra: Mapped[Any] = mapped_column(JSONDocument())
    interrupted_at: Mapped[datetime | None]
    interrupt_reason: Mapped[str | None] = mapped_column(Text)
    #: Who runs the session now (see `Store.running`), and until when its lease holds.
    owner: Mapped[str | None] = mapped_column(Text)
    lease_expires_at: Mapped[datetime | None]
    #: What the pair-safe cap needs to know of the stored messages (`_conversation.window`):
    #: their positions, roles and tool-call ids, so that a trim never reads old bodies.
    message_shapes: Mapped[Any | None] = mapped_column(JSONText())

    __table_args__ = (
        # Partial: its size, and so the cost of listing interrupted sessions, grows with the
        # interrupted sessions only.
        Index(
            "ix_sessions_interrupted_at",
            "interrupted_at",
            "session_id",
            sqlite_where=text("interrupted_at IS NOT NULL"),
            postgresql_where=text("interrupted_at IS NOT NULL"),
        ),
        # Likewise for finding expired leases among the running sessions.
        Index(
            "ix_sessions_lease_expires_at",
            "lease_expires_at",
            sqlite_where=text("lease_expires_at IS NOT NULL"),
            postgresql_where=text("lease_expires_at IS NOT NULL"),
        ),
    )


class MessageRow(Base):
    """One retained message of a conversation, at its 0-based position in the whole conversation."""

    __tablename__ = "messages"

    session_id: Mapped[str] = mapped_column(
        String(SESSION_ID_MAX_LENGTH),
        ForeignKey("sessions.session_id", ondelete="CASCADE"),
        primary_key=True,
    )
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    role: Mapped[str | None] = mapped_column(Text)
    body: Mapped[Any] = mapped_column(JSONDocument())


class InterruptionRow(Base):
    """One `mark_interrupted` call; kept after its session is deleted."""

    __tablename__ = "interruptions"

    id: Mapped[int] = mapped_column(_BigIntId, primary_key=True, autoincrement=True)
    session_id: Mapped[str] = mapped_column(String(SESSION_ID_MAX_LENGTH), index=True)
    interrupted_at: Mapped[datetime] = mapped_column(index=True)
    reason: Mapped[str | None] = mapped_column(Text)
    resolved_at: Mapped[datetime | None]
    #: What `Store.resume` repaired when it ended this interruption, as a JSON list.
    repairs: Mapped[Any | None] = mapped_column(JSONDocument())


class RetryEventRow(Base):
    """One attempt of a call made through the retry executor."""

    __tablename__ = "retry_events"

    id: Mapped[int] = mapped_column(_BigIntId, primary_key=True, autoincrement=True)
    call_id: Mapped[str] = mapped_column(String(64))
    session_id: Mapped[str | None] = mapped_column(String(SESSION_ID_MAX_LENGTH))
    operation: Mapped[str] = mapped_column(String(255))
    attempt: Mapped[int] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(String(32))
    error_type: Mapped[str | None] = mapped_column(String(32))
    error_class: Mapped[str | None] = mapped_column(Text)
    error_message: Mapped[str | None] = mapped_column(Text)
    status_code: Mapped[int | None] = mapped_column(Integer)
    delay_s: Mapped[float | None] = mapped_column(Float)
    retry_after_s: Mapped[float | None] = mapped_column(Float)
    #: None when the retry library does not say when the attempt began (stamina's first).
    elapsed_s: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(index=True)
    #: Seconds waited before the attempt for its rate limit's shared cooldown.
    cooldown_wait_s: Mapped[float | None] = mapped_column(Float)
    #: The kind of error the attempt counts under: its own ``error_type`` or, for a success or
    #: a cancellation, that of the attempt before it in its call; filled as the row is written.
    kind: Mapped[str | None] = mapped_column(String(32))
    #: True on the first row of its call with its `kind`, so that summing it counts calls.
    first_of_kind: Mapped[bool] = mapped_column(Boolean, server_default=true())

    __table_args__ = (
        Index("ix_retry_events_operation_created_at", "operation", "created_at"),
        # The previous attempts of a call, which an insert reads to fill `kind`.
        Index("ix_retry_events_call_id_attempt", "call_id", "attempt"),
        # Covers the summary: grouped by its first two columns, waits ranked by the third.
        Index(
            "ix_retry_events_summary",
            "operation",
            "kind",
            "delay_s",
            "outcome",
            "attempt",
            "first_of_kind",
            "cooldown_wait_s",
            "created_at",
        ),
    )


class CooldownRow(Base):
    """A rate limit's shared cooldown: calls of its key wait until ``until``."""

    __tablename__ = "cooldowns"

    limit_key: Mapped[str] = mapped_column(String(255), primary_key=True)
    until: Mapped[datetime]
    set_at: Mapped[datetime]
    call_id: Mapped[str] = mapped_column(String(64))
    operation: Mapped[str] = mapped_column(String(255))
    reason: Mapped[str | None] = mapped_column(Text)
    status_code: Mapped[int | None] = mapped_column(Integer)
    #: Pacing, convstore's own: the spacing of the key's attempts, when it was last raised, the
    #: next free slot and until when the key is paced, the last three in seconds since the epoch.
    interval_s: Mapped[float | None] = mapped_column(Float)
    raised_at_s: Mapped[float | None] = mapped_column(Float)
    next_slot_s: Mapped[float | None] = mapped_column(Float)
    paced_until_s: Mapped[float | None] = mapped_column(Float)


class CheckpointRow(Base):
    """One LangGraph checkpoint of a thread (a session) in one namespace, serialised whole."""

    __tablename__ = "langgraph_checkpoints"

    thread_id: Mapped[str] = mapped_column(
        String(SESSION_ID_MAX_LENGTH),
        ForeignKey("sessions.session_id", ondelete="CASCADE"),
        primary_key=True,
    )
    checkpoint_ns: Mapped[str] = mapped_column(Text, primary_key=True)
    checkpoint_id: Mapped[str] = mapped_column(Text, primary_key=True)
    parent_checkpoint_id: Mapped[str | None] = mapped_column(Text)
    #: The serializer's name for how `checkpoint` is encoded ("msgpack" for LangGraph's own).
    type: Mapped[str | None] = mapped_column(Text)
    checkpoint: Mapped[bytes] = mapped_column(LargeBinary)
    #: The checkpoint's metadata, which `list(filter=...)` queries.
    checkpoint_metadata: Mapped[Any] = mapped_column("metadata", JSONDocument())


class CheckpointWriteRow(Base):
    """One pending write a task made after a checkpoint, kept until that checkpoint is."""

    __tablename__ = "langgraph_writes"

    thread_id: Mapped[str] = mapped_column(
        String(SESSION_ID_MAX_LENGTH),
        ForeignKey("sessions.session_id", ondelete="CASCADE"),
        primary_key=True,
    )
    checkpoint_ns: Mapped[str] = mapped_column(Text, primary_key=True)
    checkpoint_id: Mapped[str] = mapped_column(Text, primary_key=True)
    task_id: Mapped[str] = mapped_column(Text, primary_key=True)
    idx: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel: Mapped[str] = mapped_column(Text)
    type: Mapped[str | None] = mapped_column(Text)
    value: Mapped[bytes] = mapped_column(LargeBinary)
    task_path: Mapped[str] = mapped_column(Text)


sessions = Base.metadata.tables["sessions"]
messages = Base.metadata.tables["messages"]
interruptions = Base.metadata.tables["interruptions"]
retry_events = Base.metadata.tables["retry_events"]
cooldowns = Base.metadata.tables["cooldowns"]
langgraph_checkpoints = Base.metadata.tables["langgraph_checkpoints"]
langgraph_writes = Base.metadata.tables["langgraph_writes"]
