"""Deterministic conversations shaped like real agent traffic: text turns and tool exchanges."""

from __future__ import annotations

import random
from typing import Any

_TEXT = (
    "the model answered with a plan to refactor the parser and then ran the tests again "
    "before summarising which files changed and why the retry loop needed a jittered backoff"
)
_WORDS = tuple(_TEXT.split(" "))


def _text(rng: random.Random, length: int) -> str:
    words: list[str] = []
    size = 0
    while size < length:
        word = rng.choice(_WORDS)
        words.append(word)
        size += len(word) + 1
    return " ".join(words)[:length]


def message(rng: random.Random, index: int) -> dict[str, Any]:
    """One message of 200-2,000 characters, in Anthropic's format: of every five, the fourth
    asks for a tool call (content blocks) and the fifth carries its result."""
    length = rng.randint(200, 2000)
    if index % 5 == 3:
        half = length // 2
        return {
            "role": "assistant",
            "content": [
                {"type": "text", "text": _text(rng, half)},
                {
                    "type": "tool_use",
                    "id": f"toolu_{index:04d}",
                    "name": "search",
                    "input": {"query": _text(rng, length - half), "limit": 10},
                },
            ],
        }
    if index % 5 == 4:
        return {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": f"toolu_{index - 1:04d}",
                    "content": _text(rng, length),
                }
            ],
        }
    return {"role": "user" if index % 2 == 0 else "assistant", "content": _text(rng, length)}


def conversation(seed: int, length: int = 100) -> list[dict[str, Any]]:
    """A conversation of `length` messages, the same for the same seed."""
    rng = random.Random(seed)
    return [message(rng, i) for i in range(length)]
