"""The SDK examples of docs/sdks.md, run as written with the real OpenAI, Anthropic and Google
clients against a scripted server on 127.0.0.1: a 429 with retry-after, an overload, an answer,
and the three retry_events rows they leave."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from pytest_examples import CodeExample, EvalExample, find_examples
from scripted_server import Reply, serving

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "sdks.md"
#: What marks each SDK's example.
MARKERS = {
    "openai": "from openai import",
    "anthropic": "from anthropic import",
    "genai": "from google import genai",
}
EXAMPLES = {
    sdk: example
    for example in find_examples(PAGE)
    if example.prefix_tags() & {"py", "python"}
    for sdk, marker in MARKERS.items()
    if marker in example.source
}

OPENAI = [
    Reply(
        429,
        {
            "error": {
                "message": "Rate limit reached",
                "type": "requests",
                "code": "rate_limit_exceeded",
            }
        },
        {"retry-after": "2"},
    ),
    Reply(503, {"error": {"message": "The server is overloaded", "type": "server_error"}}),
    Reply(
        200,
        {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 0,
            "model": "gpt-4o-mini",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "Hello!"},
                    "finish_reason": "stop",
                }
            ],
        },
    ),
]
ANTHROPIC = [
    Reply(
        429,
        {"type": "error", "error": {"type": "rate_limit_error", "message": "Rate limited"}},
        {"retry-after": "2"},
    ),
    Reply(529, {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
    Reply(
        200,
        {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": "claude-sonnet-4-5",
            "content": [{"type": "text", "text": "Hello!"}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {"input_tokens": 3, "output_tokens": 2},
        },
    ),
]
GOOGLE = [
    Reply(
        429,
        {"error": {"code": 429, "message": "Resource exhausted", "status": "RESOURCE_EXHAUSTED"}},
        {"retry-after": "2"},
    ),
    Reply(
        503, {"error": {"code": 503, "message": "The model is overloaded", "status": "UNAVAILABLE"}}
    ),
    Reply(
        200,
        {
            "candidates": [
                {
                    "content": {"role": "model", "parts": [{"text": "Hello!"}]},
                    "finishReason": "STOP",
                    "index": 0,
                }
            ]
        },
    ),
]

#: Per SDK: the scripted replies, the variables that point the client at the server, the
#: path its requests go to, and the overload status of its second reply.
CASES: dict[str, tuple[list[Reply], dict[str, str], str, int]] = {
    "openai": (
        OPENAI,
        {"OPENAI_BASE_URL": "{url}/v1", "OPENAI_API_KEY": "test"},
        "/v1/chat/completions",
        503,
    ),
    "anthropic": (
        ANTHROPIC,
        {"ANTHROPIC_BASE_URL": "{url}", "ANTHROPIC_API_KEY": "test"},
        "/v1/messages",
        529,
    ),
    "genai": (
        GOOGLE,
        {"GOOGLE_GEMINI_BASE_URL": "{url}", "GEMINI_API_KEY": "test", "GOOGLE_API_KEY": ""},
        "/v1/models/gemini-2.5-flash:generateContent",
        503,
    ),
}
_real_sleep = asyncio.sleep


async def no_wait(delay: float, result: object = None) -> object:
    """asyncio.sleep without the wait; the delays are still recorded."""
    waits.append(delay)
    return await _real_sleep(0, result)


waits: list[float] = []


def test_every_sdk_has_its_example() -> None:
    assert set(EXAMPLES) == set(CASES)


@pytest.mark.parametrize("sdk", sorted(CASES))
def test_the_example_retries_through_the_real_client(
    sdk: str,
    eval_example: EvalExample,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Three requests reach the server; the example prints the answer; the database holds a
    429 row waiting at least its retry-after, an overload row, and a success, as one call."""
    example: CodeExample = EXAMPLES[sdk]
    replies, variables, path, overload = CASES[sdk]
    eval_example.set_config(line_length=100, ruff_select=["E", "F", "W", "I", "B", "UP"])
    eval_example.lint_ruff(example)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(asyncio, "sleep", no_wait)
    waits.clear()
    with serving(replies) as (url, script):
        for name, value in variables.items():
            if value:
                monkeypatch.setenv(name, value.format(url=url))
            else:
                monkeypatch.delenv(name, raising=False)
        eval_example.run(example)
    assert [request[1].split("?")[0] for request in script.requests] == [path] * 3
    assert "Hello!" in capsys.readouterr().out
    with sqlite3.connect(tmp_path / "app.db") as db:
        rows: list[tuple[Any, ...]] = db.execute(
            "SELECT call_id, attempt, outcome, error_type, status_code, retry_after_s, delay_s,"
            " cooldown_wait_s FROM retry_events ORDER BY id"
        ).fetchall()
    assert len({row[0] for row in rows}) == 1
    assert [row[1:6] for row in rows] == [
        (1, "retry", "retryable", 429, 2.0),
        (2, "retry", "retryable", overload, None),
        (3, "success", None, None, None),
    ]
    assert rows[0][6] >= 2.0
    # Every wait is in the rows: the back-offs, and the waits for the key's shared cooldown
    # (which a sleep that lets no time pass makes as long as the back-off before it).
    recorded = [row[6] for row in rows[:2]] + [row[7] for row in rows if row[7] is not None]
    assert sorted(wait for wait in waits if wait > 0) == sorted(recorded)
