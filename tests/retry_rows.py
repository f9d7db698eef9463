"""What the tests of the retry-library hooks share: an API-like error and the rows written."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import convstore

#: The columns that say what happened; ids, times and durations differ from run to run.
COLUMNS = "attempt, outcome, error_type, error_class, status_code, delay_s, retry_after_s"


class ApiError(Exception):
    """An error carrying an HTTP status and headers, as the LLM SDKs' errors do."""

    def __init__(self, status_code: int, retry_after: str | None = None) -> None:
        super().__init__(f"Error code: {status_code}")
        self.status_code = status_code
        self.headers = {} if retry_after is None else {"retry-after": retry_after}


def flaky(*errors: BaseException) -> Callable[[], Awaitable[str]]:
    """An async function raising `errors` in turn, then returning "done"."""
    left = list(errors)

    async def call() -> str:
        if left:
            raise left.pop(0)
        return "done"

    return call


async def rows(store: convstore.Store) -> list[tuple[Any, ...]]:
    """Every retry_events row, call by call, without what differs between runs."""
    async with store.engine.connect() as conn:
        result = await conn.exec_driver_sql(
            f"SELECT call_id, operation, {COLUMNS}, elapsed_s FROM retry_events ORDER BY id"
        )
        return [tuple(row) for row in result]


def calls(found: Sequence[tuple[Any, ...]]) -> list[list[tuple[Any, ...]]]:
    """The rows grouped by call_id, in order, without the call_id and elapsed_s."""
    grouped: dict[str, list[tuple[Any, ...]]] = {}
    for row in found:
        grouped.setdefault(row[0], []).append(row[1:-1])
    return list(grouped.values())


class Sleeps:
    """tenacity's async sleep, recording the delays instead of waiting them."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
