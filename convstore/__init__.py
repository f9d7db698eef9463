"""convstore keeps AI-agent conversations safe across crashes and makes API failures analysable.

Open a store with `connect`, then save, append, restore and delete snapshots, mark sessions
interrupted and list them; classify API errors and retry calls with `RetryExecutor` or `retry`,
logging every attempt to the same database.
"""

from convstore._backoff import BackoffConfig, Policy
from convstore._classify import ErrorClassifier, ErrorRule, ErrorType, Evidence, Explanation
from convstore._lease import Lease
from convstore._records import InterruptedSession, Interruption, RetrySummary, Snapshot
from convstore._retry import (
    Attempt,
    AttemptHook,
    AttemptRecorder,
    OnRetry,
    Outcome,
    RetryExecutor,
    Sleep,
    retry,
)
from convstore._store import Store, connect
from convstore.exceptions import (
    ConfigurationError,
    ConvstoreError,
    InvalidArgument,
    InvalidSessionId,
    LeaseHeld,
    SchemaError,
    StorageError,
)

__all__ = [
    "Attempt",
    "AttemptHook",
    "AttemptRecorder",
    "BackoffConfig",
    "ConfigurationError",
    "ConvstoreError",
    "ErrorClassifier",
    "ErrorRule",
    "ErrorType",
    "Evidence",
    "Explanation",
    "InterruptedSession",
    "Interruption",
    "InvalidArgument",
    "InvalidSessionId",
    "Lease",
    "LeaseHeld",
    "OnRetry",
    "Outcome",
    "Policy",
    "RetryExecutor",
    "RetrySummary",
    "SchemaError",
    "Sleep",
    "Snapshot",
    "StorageError",
    "Store",
    "connect",
    "retry",
]
