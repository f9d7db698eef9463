"""Objects that several test modules build."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import convstore


def rate_limited_attempt(call: str, number: int, outcome: str, **fields: Any) -> convstore.Attempt:
    """An attempt of ``llm.chat`` an hour ago, rate-limited (HTTP 429) unless `fields` differ."""
    values: dict[str, Any] = {
        "call_id": call,
        "session_id": "s1",
        "operation": "llm.chat",
        "attempt": number,
        "outcome": convstore.Outcome(outcome),
        "error_type": convstore.ErrorType.RETRYABLE,
        "error_class": "anthropic.RateLimitError",
        "error_message": "rate limited",
        "status_code": 429,
        "delay_s": None,
        "retry_after_s": None,
        "elapsed_s": 0.5,
        "created_at": datetime.now(UTC) - timedelta(hours=1),
    }
    values.update(fields)
    return convstore.Attempt(**values)
