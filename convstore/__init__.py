"""convstore keeps AI-agent conversations safe across crashes and makes API failures analysable.

Open a store with `connect`, then save, append, restore and delete snapshots, mark sessions
interrupted and list them; classify API errors and retry calls with `RetryExecutor` or `retry`,
logging every attempt to the same database.
"""

from convstore._conversation.check import Problem, check_conversation
from convstore._records import (
    Attempt,
    Cooldown,
    ErrorType,
    InterruptedSession,
    Interruption,
    Outcome,
    Repair,
    RetrySummary,
    Snapshot,
)
from convstore._retry.backoff import BackoffConfig, Policy
from convstore._retry.classifier import ErrorClassifier, Explanation
from convstore._retry.evidence import Evidence
from convstore._retry.executor import RetryExecutor, retry
from convstore._retry.hooks import AttemptHook, AttemptRecorder, OnRetry, Sleep
from convstore._retry.rules import ErrorRule
from convstore._retry.testing import is_testing, set_testing
from convstore._storage.lease import Lease
from convstore._storage.store import Store, connect
from convstore.exceptions import (
    CommitUnknown,
    ConfigurationError,
    ConvstoreError,
    CooldownTooLong,
    InvalidArgument,
    InvalidSessionId,
    LeaseHeld,
    PermanentStorageError,
    SchemaError,
    StorageError,
    TransientStorageError,
)

__all__ = [
    "Attempt",
    "AttemptHook",
    "AttemptRecorder",
    "BackoffConfig",
    "CommitUnknown",
    "ConfigurationError",
    "ConvstoreError",
    "Cooldown",
    "CooldownTooLong",
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
    "PermanentStorageError",
    "Policy",
    "Problem",
    "Repair",
    "RetryExecutor",
    "RetrySummary",
    "SchemaError",
    "Sleep",
    "Snapshot",
    "StorageError",
    "Store",
    "TransientStorageError",
    "check_conversation",
    "connect",
    "is_testing",
    "retry",
    "set_testing",
]
