"""Every error convstore raises on purpose.

The tree::

    ConvstoreError
    ├── ConfigurationError      a URL, engine or option convstore cannot work with
    ├── SchemaError             the database is not at the revision this convstore needs
    ├── InvalidArgument         bad input; also a ValueError; nothing stored was changed
    │   └── InvalidSessionId    a session id that is not a non-empty str of at most 255 characters
    ├── LeaseHeld               another live owner is running the session
    ├── CooldownTooLong         a shared rate-limit cooldown is longer than the call may wait
    └── StorageError            the database failed (an error convstore does not recognise)
        ├── TransientStorageError   busy or unreachable for now: the same call may succeed later
        ├── PermanentStorageError   not a database, read-only, full, no access: needs a person
        └── CommitUnknown           the connection was lost while committing: stored or not

Driver and SQLAlchemy errors are translated into one of the `StorageError` classes at the
repository boundary, with the original exception kept as ``__cause__``.
"""

from __future__ import annotations

__all__ = [
    "CommitUnknown",
    "ConfigurationError",
    "ConvstoreError",
    "CooldownTooLong",
    "InvalidArgument",
    "InvalidSessionId",
    "LeaseHeld",
    "PermanentStorageError",
    "SchemaError",
    "StorageError",
    "TransientStorageError",
]


class ConvstoreError(Exception):
    """The root of every error convstore raises on purpose."""


class ConfigurationError(ConvstoreError):
    """A database URL, engine or option that convstore cannot work with."""


class SchemaError(ConvstoreError):
    """The database schema is not at the revision this version of convstore needs."""


class InvalidArgument(ConvstoreError, ValueError):
    """An argument was rejected before anything was written."""


class InvalidSessionId(InvalidArgument):
    """A session id that is not a non-empty str of at most 255 characters without NUL."""


class LeaseHeld(ConvstoreError):
    """`Store.running` found the session running under another owner whose lease is alive."""


class CooldownTooLong(ConvstoreError):
    """A call's rate limit is cooling down for longer than its executor's ``max_retry_after_s``:
    the call gives up rather than wait, before its next attempt."""

    def __init__(self, limit_key: str, remaining_s: float) -> None:
        super().__init__(
            f"the rate limit {limit_key!r} is cooling down for {remaining_s:.1f} s more, "
            "longer than max_retry_after_s allows"
        )
        self.limit_key = limit_key
        self.remaining_s = remaining_s


class StorageError(ConvstoreError):
    """The database could not carry out an operation; ``__cause__`` holds the driver's error."""


class TransientStorageError(StorageError):
    """The database was busy or out of reach (locked past the busy timeout, the server restarting,
    the connection refused or lost before anything was committed): the same call may succeed
    later. Nothing was stored. The `ErrorClassifier` calls it retryable."""


class PermanentStorageError(StorageError):
    """The database cannot do this until a person acts: the file is not a SQLite database or is
    corrupt, the file or the database is read-only, the disk is full, the credentials or the
    database name are wrong. The `ErrorClassifier` calls it fatal."""


class CommitUnknown(StorageError):
    """The connection was lost after the transaction was sent to be committed: it may or may not
    have been stored. A save can simply be made again; an append should not be repeated without
    checking ``message_count`` first. The `ErrorClassifier` calls it non-retryable."""
