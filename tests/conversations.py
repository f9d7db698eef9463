"""Agent conversations in each format convstore understands, as each provider writes them."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

FORMATS = ["anthropic", "openai_chat", "openai_responses", "pydantic_ai", "plain"]

Message = dict[str, Any]


def system(fmt: str, text: str = "You are a careful travel agent.") -> Message:
    """The instructions that lead a conversation (pydantic-ai: a request of system prompts)."""
    if fmt == "pydantic_ai":
        return {"kind": "request", "parts": [{"part_kind": "system-prompt", "content": text}]}
    if fmt == "openai_responses":
        return {"type": "message", "role": "developer", "content": text}
    return {"role": "system", "content": text}


def user(fmt: str, text: str) -> Message:
    """A person's turn."""
    if fmt == "pydantic_ai":
        return {"kind": "request", "parts": [{"part_kind": "user-prompt", "content": text}]}
    if fmt == "openai_responses":
        return {"type": "message", "role": "user", "content": text}
    return {"role": "user", "content": text}


def answer(fmt: str, text: str) -> Message:
    """The model's final answer of a turn."""
    if fmt == "pydantic_ai":
        return {"kind": "response", "parts": [{"part_kind": "text", "content": text}]}
    if fmt == "anthropic":
        return {"role": "assistant", "content": [{"type": "text", "text": text}]}
    if fmt == "openai_responses":
        return {"type": "message", "role": "assistant", "content": text}
    return {"role": "assistant", "content": text}


def calls(fmt: str, ids: list[str]) -> list[Message]:
    """The model asking for tool calls `ids` in parallel (plain chat: a text turn instead)."""
    if fmt == "anthropic":
        blocks = [{"type": "tool_use", "id": i, "name": "search", "input": {"q": i}} for i in ids]
        return [{"role": "assistant", "content": [{"type": "text", "text": "Looking."}, *blocks]}]
    if fmt == "openai_chat":
        tool_calls = [
            {"id": i, "type": "function", "function": {"name": "search", "arguments": "{}"}}
            for i in ids
        ]
        return [{"role": "assistant", "content": None, "tool_calls": tool_calls}]
    if fmt == "openai_responses":
        return [
            {"type": "function_call", "call_id": i, "name": "search", "arguments": "{}"}
            for i in ids
        ]
    if fmt == "pydantic_ai":
        parts = [
            {"part_kind": "tool-call", "tool_name": "search", "args": {}, "tool_call_id": i}
            for i in ids
        ]
        return [{"kind": "response", "parts": parts}]
    return [{"role": "assistant", "content": "Let me look that up."}]


def results(fmt: str, ids: list[str]) -> list[Message]:
    """The results of tool calls `ids`, where the format keeps them."""
    if fmt == "anthropic":
        blocks = [{"type": "tool_result", "tool_use_id": i, "content": "found"} for i in ids]
        return [{"role": "user", "content": blocks}]
    if fmt == "openai_chat":
        return [{"role": "tool", "tool_call_id": i, "content": "found"} for i in ids]
    if fmt == "openai_responses":
        return [{"type": "function_call_output", "call_id": i, "output": "found"} for i in ids]
    if fmt == "pydantic_ai":
        parts = [
            {
                "part_kind": "tool-return",
                "tool_name": "search",
                "content": "found",
                "tool_call_id": i,
            }
            for i in ids
        ]
        return [{"kind": "request", "parts": parts}]
    return [{"role": "user", "content": "Here is what I found."}]


def tool_loop(fmt: str, opening: str, loops: int, *, instructions: bool = False) -> list[Message]:
    """A user turn, then `loops` rounds of one tool call and its result, then an answer."""
    head = [system(fmt)] if instructions else []
    body = [user(fmt, opening)]
    for n in range(loops):
        body += calls(fmt, [f"call_{n}"]) + results(fmt, [f"call_{n}"])
    return [*head, *body, answer(fmt, "Done.")]


@st.composite
def conversations(draw: st.DrawFn, fmt: str) -> list[Message]:
    """A conversation of a few turns, each with tool loops of parallel calls."""
    messages = [system(fmt)] if draw(st.booleans()) else []
    for turn in range(draw(st.integers(1, 3))):
        messages.append(user(fmt, f"question {turn}"))
        for loop in range(draw(st.integers(0, 4))):
            ids = [f"call_{turn}_{loop}_{k}" for k in range(draw(st.integers(1, 3)))]
            messages += calls(fmt, ids) + results(fmt, ids)
        messages.append(answer(fmt, f"answer {turn}"))
    return messages
