"""A history for the report's tests: calls of three operations over 30 hours ending in each
outcome, and interruptions resolved, open and older than a day."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import insert

import convstore
from convstore._storage.schema import interruptions

OPERATIONS = ("llm.chat", "llm.embed", "tools.search")
#: How many calls, one every 15 minutes, the newest ending 30 minutes before now.
CALLS = 120


@dataclass(frozen=True)
class Step:
    """One attempt of a call: how it ended and what it met."""

    outcome: str
    error_type: str | None = None
    error_class: str | None = None
    status_code: int | None = None
    delay_s: float | None = None
    retry_after_s: float | None = None
    cooldown_wait_s: float | None = None


def _script(n: int) -> list[Step]:
    """The attempts of call `n`: one of seven stories, its waits varying with `n`."""
    wait = 0.3 * (n % 9 + 1)
    limited = Step(
        "retry", "retryable", "anthropic.RateLimitError", 429, wait, 2.0 + n % 4, 1.5 * (n % 2)
    )
    overloaded = Step("retry", "retryable", "anthropic.InternalServerError", 529, wait * 3)
    stories = [
        [Step("success")],
        [limited, Step("success", cooldown_wait_s=0.4 * (n % 3))],
        [overloaded, Step("retry", "retryable", "httpx.ReadTimeout", None, wait), _gave_up(n)],
        [Step("non_retryable", "non_retryable", "openai.BadRequestError", 400)],
        [Step("degraded", "degraded", "anthropic.BadRequestError", 400)],
        [Step("fatal", "fatal", "openai.RateLimitError", 429)],
        [Step("retry", "retryable", "openai.InternalServerError", 500, wait), Step("cancelled")],
    ]
    return stories[n % 7]


def _gave_up(n: int) -> Step:
    return Step("giveup", "retryable", "anthropic.InternalServerError", 503 if n % 2 else 529)


def attempts(now: datetime) -> Iterator[convstore.Attempt]:
    """Every attempt of the history, oldest first."""
    for n in range(CALLS):
        start = now - timedelta(hours=30) + timedelta(minutes=15 * n)
        for number, step in enumerate(_script(n), start=1):
            yield convstore.Attempt(
                call_id=f"call-{n:03d}",
                session_id=f"s-{n % 5}",
                operation=OPERATIONS[n % len(OPERATIONS)],
                attempt=number,
                outcome=convstore.Outcome(step.outcome),
                error_type=None
                if step.error_type is None
                else convstore.ErrorType(step.error_type),
                error_class=step.error_class,
                error_message=None if step.error_class is None else "failed",
                status_code=step.status_code,
                delay_s=step.delay_s,
                retry_after_s=step.retry_after_s,
                elapsed_s=0.2,
                created_at=start + timedelta(seconds=20 * number),
                cooldown_wait_s=step.cooldown_wait_s,
            )


async def record(store: convstore.Store, now: datetime) -> list[convstore.Attempt]:
    """Record the history in `store`: attempts, five crashed sessions (two resumed since) and
    two interruptions of two days ago, resolved an hour later; the attempts recorded."""
    recorded = list(attempts(now))
    for attempt in recorded:
        await store.record_attempt(attempt)
    reasons = ["worker killed", "worker killed", "timeout", "deploy", None]
    for index, reason in enumerate(reasons):
        session = f"crashed-{index}"
        await store.save_snapshot(session, [{"role": "user", "content": "hi"}])
        await store.mark_interrupted(session, reason)
    for index in (0, 2):
        await store.resume(f"crashed-{index}")
    old = now - timedelta(days=2)
    rows = [{"session_id": f"old-{k}", "interrupted_at": old, "reason": "deploy"} for k in range(2)]
    async with store.engine.begin() as conn:
        await conn.execute(
            insert(interruptions),
            [{**row, "resolved_at": old + timedelta(hours=1)} for row in rows],
        )
    return recorded
