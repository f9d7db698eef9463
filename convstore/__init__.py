"""convstore keeps AI-agent conversations safe across crashes and makes API failures analysable.

Open a store with `connect`, then save, append, restore and delete snapshots, mark sessions
interrupted and list them; classify API errors and retry calls with `RetryExecutor` or `retry`,
logging every attempt to the same database.
"""

import importlib
import typing

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

if typing.TYPE_CHECKING:
    from convstore._conversation.check import Problem, check_conversation
    from convstore._report.page import build_report
    from convstore._retry.backoff import BackoffConfig, Policy
    from convstore._retry.classifier import ErrorClassifier, Explanation
    from convstore._retry.evidence import Evidence
    from convstore._retry.executor import RetryExecutor, retry
    from convstore._retry.hooks import AttemptHook, AttemptRecorder, OnRetry, Sleep
    from convstore._retry.rules import ErrorRule
    from convstore._retry.testing import is_testing, set_testing
    from convstore._storage.lease import Lease
    from convstore._storage.store import Store, connect

#: Where each public name lives, imported on first use: `import convstore` imports only the
#: records and the exceptions, so that a program starts fast and pays for what it uses (the
#: storage side brings SQLAlchemy and a driver, the retry side asyncio).
_LAZY = {
    **dict.fromkeys(("Problem", "check_conversation"), "convstore._conversation.check"),
    **dict.fromkeys(("BackoffConfig", "Policy"), "convstore._retry.backoff"),
    "build_report": "convstore._report.page",
    **dict.fromkeys(("ErrorClassifier", "Explanation"), "convstore._retry.classifier"),
    "Evidence": "convstore._retry.evidence",
    **dict.fromkeys(("RetryExecutor", "retry"), "convstore._retry.executor"),
    **dict.fromkeys(
        ("AttemptHook", "AttemptRecorder", "OnRetry", "Sleep"), "convstore._retry.hooks"
    ),
    "ErrorRule": "convstore._retry.rules",
    **dict.fromkeys(("is_testing", "set_testing"), "convstore._retry.testing"),
    "Lease": "convstore._storage.lease",
    **dict.fromkeys(("Store", "connect"), "convstore._storage.store"),
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'convstore' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


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
    "build_report",
    "check_conversation",
    "connect",
    "is_testing",
    "retry",
    "set_testing",
]
