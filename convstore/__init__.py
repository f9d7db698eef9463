"""convstore keeps AI-agent conversations safe across crashes and makes API failures analysable.

Open a store with `connect`, then save, append, restore and delete snapshots, mark sessions
interrupted and list them, all in one SQLite or PostgreSQL database.
"""

from convstore._records import InterruptedSession, Interruption, Snapshot
from convstore._store import Store, connect
from convstore.exceptions import (
    ConfigurationError,
    ConvstoreError,
    InvalidArgument,
    InvalidSessionId,
    SchemaError,
    StorageError,
)

__all__ = [
    "ConfigurationError",
    "ConvstoreError",
    "InterruptedSession",
    "Interruption",
    "InvalidArgument",
    "InvalidSessionId",
    "SchemaError",
    "Snapshot",
    "StorageError",
    "Store",
    "connect",
]
