"""Testing mode: every retry in the process waits no time and tries a set number of times.

Like stamina's ``set_testing``: a test suite turns it on once (or for a block) instead of
passing ``sleep=`` and ``max_retries=`` to every executor of the code under test.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from types import TracebackType
from typing import final

from convstore import _validate
from convstore.exceptions import InvalidArgument

logger = logging.getLogger("convstore")


@dataclass(frozen=True, slots=True)
class _Testing:
    attempts: int


_state: _Testing | None = None


@final
class _Restore:
    """Returned by `set_testing`: as a context manager, it restores the previous mode on exit."""

    __slots__ = ("_previous",)

    def __init__(self, previous: _Testing | None) -> None:
        self._previous = previous

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        global _state
        _state = self._previous


def set_testing(testing: bool, *, attempts: int = 1) -> _Restore:
    """Turn testing mode on or off for every convstore retry in the process.

    In testing mode, `RetryExecutor`, `retry` and the tenacity and stamina helpers wait no time
    between attempts and make at most ``attempts`` attempts (1: no retry), whatever the policy
    or ``max_retries`` says; every attempt is still classified and recorded, with a delay of 0.
    It is off by default, and a warning is logged when it is turned on. Use it as a function, or
    as a context manager that restores the previous mode on exit::

        with convstore.set_testing(True, attempts=3):
            ...
    """
    global _state
    if not isinstance(testing, bool):
        raise InvalidArgument(f"testing must be a bool, not {testing!r}")
    attempts = _validate.whole_number("attempts", attempts, minimum=1)
    previous = _state
    _state = _Testing(attempts) if testing else None
    if testing:
        logger.warning(
            "convstore testing mode is on: retries wait no time and make at most %d attempts",
            attempts,
        )
    return _Restore(previous)


def is_testing() -> bool:
    """Whether testing mode (`set_testing`) is on."""
    return _state is not None


def testing_attempts() -> int | None:
    """The attempts testing mode allows, None when it is off."""
    return None if _state is None else _state.attempts
