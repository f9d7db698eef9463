"""What a message is, in the message formats convstore understands, recognised per message.

- OpenAI Chat Completions: ``system`` / ``developer`` / ``user`` / ``assistant`` messages, the
  assistant's ``tool_calls[].id``, and ``{"role": "tool", "tool_call_id": ...}`` results.
- OpenAI Responses input items: message items, and ``*_call`` / ``*_call_output`` items that
  share a ``call_id`` (``function_call`` and ``function_call_output`` first among them).
- Anthropic Messages: ``tool_use`` blocks (``id``) in assistant messages, ``tool_result`` blocks
  (``tool_use_id``) in the user message that follows.
- pydantic-ai's serialised ``ModelMessage``s: ``kind`` request or response; ``tool-call`` parts,
  ``tool-return`` and tool ``retry-prompt`` parts with a ``tool_call_id``.

Anything else (plain ``{"role", "content"}`` chat, any JSON value) has no calls and no results.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Format(StrEnum):
    """The message format a conversation is written in."""

    OPENAI_CHAT = "openai_chat"
    OPENAI_RESPONSES = "openai_responses"
    ANTHROPIC = "anthropic"
    PYDANTIC_AI = "pydantic_ai"


#: Content blocks only Anthropic's Messages API has (OpenAI's chat parts are text, image_url...).
_ANTHROPIC_BLOCKS = frozenset(
    {"tool_use", "tool_result", "image", "document", "thinking", "redacted_thinking"}
)
_INSTRUCTIONS = frozenset({"system", "developer"})


@dataclass(frozen=True, slots=True)
class Shape:
    """What one message is, for the pairing rules: nothing of its content but ids and roles."""

    #: The format the message proves the conversation is in, or None when it fits several.
    format: Format | None
    #: ``system``, ``developer``, ``user``, ``assistant``, ``tool``, pydantic-ai's ``request`` /
    #: ``response``, or None (a Responses item that is not a message, a value without a role).
    role: str | None
    #: The ids of the tool calls the message makes.
    calls: tuple[str, ...] = ()
    #: The ids of the calls the message holds results of.
    results: tuple[str, ...] = ()
    #: Whether the message holds instructions only (system, developer, a pydantic-ai request of
    #: system prompts): pinned when it leads the conversation.
    instructions: bool = False


PLAIN = Shape(None, None)


def shape(message: object) -> Shape:
    """The shape of one message, in whichever format it is written."""
    if not isinstance(message, Mapping):
        return PLAIN
    if "kind" in message and isinstance(message.get("parts"), list):
        return _pydantic_ai(message)
    role = message.get("role")
    kind = message.get("type")
    if isinstance(kind, str) and kind != "message":
        return _responses_item(message, kind)
    role = role if isinstance(role, str) else None
    if kind == "message":
        return Shape(Format.OPENAI_RESPONSES, role, instructions=role in _INSTRUCTIONS)
    content = message.get("content")
    if isinstance(content, list) and any(
        isinstance(block, Mapping) and block.get("type") in _ANTHROPIC_BLOCKS for block in content
    ):
        return _anthropic(role, content)
    tool_calls = message.get("tool_calls")
    if role == "tool" or (isinstance(tool_calls, list) and tool_calls):
        return _openai_chat(message, role, tool_calls)
    return Shape(None, role, instructions=role in _INSTRUCTIONS)


def _ids(items: Sequence[Any], key: str, **match: str) -> tuple[str, ...]:
    """The str values of `key` of the mappings in `items` whose fields equal `match`."""
    return tuple(
        item[key]
        for item in items
        if isinstance(item, Mapping)
        and isinstance(item.get(key), str)
        and all(item.get(field) == value for field, value in match.items())
    )


def _openai_chat(message: Mapping[str, Any], role: str | None, tool_calls: object) -> Shape:
    if role == "tool":
        call_id = message.get("tool_call_id")
        results = (call_id,) if isinstance(call_id, str) else ()
        return Shape(Format.OPENAI_CHAT, role, results=results)
    calls = _ids(tool_calls, "id") if isinstance(tool_calls, list) else ()
    return Shape(Format.OPENAI_CHAT, role, calls=calls)


def _responses_item(item: Mapping[str, Any], kind: str) -> Shape:
    call_id = item.get("call_id")
    if isinstance(call_id, str):
        if kind.endswith("_call_output"):
            return Shape(Format.OPENAI_RESPONSES, None, results=(call_id,))
        if kind.endswith("_call"):
            return Shape(Format.OPENAI_RESPONSES, None, calls=(call_id,))
    return Shape(Format.OPENAI_RESPONSES, None)


def _anthropic(role: str | None, content: list[Any]) -> Shape:
    return Shape(
        Format.ANTHROPIC,
        role,
        calls=_ids(content, "id", type="tool_use"),
        results=_ids(content, "tool_use_id", type="tool_result"),
    )


def _pydantic_ai(message: Mapping[str, Any]) -> Shape:
    parts = [part for part in message["parts"] if isinstance(part, Mapping)]
    kind = message.get("kind")
    if kind == "response":
        return Shape(
            Format.PYDANTIC_AI, "response", calls=_ids(parts, "tool_call_id", part_kind="tool-call")
        )
    results = tuple(
        part["tool_call_id"]
        for part in parts
        if isinstance(part.get("tool_call_id"), str)
        and (
            part.get("part_kind") == "tool-return"
            or (part.get("part_kind") == "retry-prompt" and part.get("tool_name") is not None)
        )
    )
    instructions = bool(parts) and all(part.get("part_kind") == "system-prompt" for part in parts)
    return Shape(Format.PYDANTIC_AI, "request", results=results, instructions=instructions)


def may_open(shape: Shape, conversation: Format | None) -> bool:
    """Whether a conversation in format `conversation` may start with a message of `shape`.

    Never a message holding results; for Anthropic only a user turn, for pydantic-ai only a
    request, for Responses only a user, system or developer message; in OpenAI chat any message
    but a tool result; in a conversation of no known format, any message (as before formats).
    """
    if shape.results:
        return False
    if shape.instructions or conversation is None or conversation is Format.OPENAI_CHAT:
        return True
    if conversation is Format.ANTHROPIC:
        return shape.role == "user"
    if conversation is Format.PYDANTIC_AI:
        return shape.role == "request"
    return shape.role in ("user", "system", "developer")
