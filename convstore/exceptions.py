"""Every error convstore raises on purpose.

The tree::

    ConvstoreError
    ├── ConfigurationError      a URL, engine or option convstore cannot work with
    ├── SchemaError             the database is not at the revision this convstore needs
    ├── InvalidArgument         bad input; also a ValueError; nothing stored was changed
    │   └── InvalidSessionId    a session id that is not a non-empty str of at most 255 characters
    ├── LeaseHeld               another live owner is running the session
    └── StorageError            the database failed: locked, unreachable, corrupt, read-only

Driver and SQLAlchemy errors are translated into `StorageError` at the repository boundary, with
the original exception kept as ``__cause__``.
"""

from __future__ import annotations

__all__ = [
    "ConfigurationError",
    "ConvstoreError",
    "InvalidArgument",
    "InvalidSessionId",
    "LeaseHeld",
    "SchemaError",
    "StorageError",
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


class StorageError(ConvstoreError):
    """The database could not carry out an operation; ``__cause__`` holds the driver's error."""
