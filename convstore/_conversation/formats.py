"""What a message is, in the message formats convstore understands, recognised per message.

- OpenAI Chat Completions: ``system`` / ``developer`` / ``user`` / ``assistant`` messages, the
  assistant's ``tool_calls[].id``, and ``{"role": "tool", "tool_call_id": ...}`` results.
- OpenAI Responses input items: message items (with or without ``"type": "message"``), and
  ``*_call`` / ``*_call_output`` items that share a ``call_id`` (``function_call`` and
  ``function_call_output`` first among them; ``tool_search_call`` is answered by
  ``tool_search_output``, ``program`` by ``program_output``); a ``reasoning`` item leads the
  item that follows it, from which it may not be parted.
- Anthropic Messages: ``tool_use`` blocks (``id``) in assistant messages, ``tool_result`` blocks
  (``tool_use_id``) in the user message that follows.
- pydantic-ai's serialised ``ModelMessage``s: ``kind`` request or response; ``tool-call`` parts,
  ``tool-return`` and tool ``retry-prompt`` parts with a ``tool_call_id``.

Anything else (plain ``{"role", "content"}`` chat, any JSON value) has no calls and no results.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Any, NamedTuple


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


class Shape(NamedTuple):
    """What one message is, for the pairing rules: nothing of its content but ids and roles.

    A named tuple rather than a dataclass: one is made for every message saved, and a tuple is
    made several times faster."""

    #: The format the message proves the conversation is in, or None when it fits several.
    format: Format | None
    #: ``system``, ``developer``, ``user``, ``assistant``, ``tool``, pydantic-ai's ``request`` /
    #: ``response``, or None (a Responses item that is not a message, a value without a role).
    role: str | None
    #: The ids of the tool calls the message makes.
    calls: tuple[str, ...] = ()
    #: The ids of the calls the message holds results of.
    results: tuple[str, ...] = ()
    #: Whether the message holds instructions (system, developer, a pydantic-ai request that
    #: opens with system prompts): pinned when it leads the conversation.
    instructions: bool = False
    #: Whether instructions come with a turn that opens the conversation (pydantic-ai's first
    #: request: system prompts, then the user prompt), so any message may follow them.
    opens: bool = False
    #: Whether the message must stay with the one after it (a Responses ``reasoning`` item),
    #: so that no window starts between them.
    leads: bool = False


PLAIN = Shape(None, None)
#: The shapes of plain messages, by role, made once: most messages of a conversation are plain.
_PLAIN_SHAPES = {
    role: Shape(None, role, instructions=role in _INSTRUCTIONS)
    for role in ("system", "developer", "user", "assistant")
}


def shape(message: object) -> Shape:
    """The shape of one message, in whichever format it is written."""
    if type(message) is not dict and not isinstance(message, Mapping):
        return PLAIN
    get = message.get
    role = get("role")
    if (
        type(get("content")) is str
        and role != "tool"
        and "type" not in message
        and "tool_calls" not in message
        and "parts" not in message
    ):
        # The common case, a plain chat turn: no calls, no results, in no format in particular.
        plain = _PLAIN_SHAPES.get(role) if type(role) is str else PLAIN
        return plain if plain is not None else Shape(None, role)
    parts = get("parts")
    if type(parts) is list and "kind" in message:
        return _pydantic_ai(message, parts)
    kind = get("type")
    if type(kind) is str and kind != "message":
        return _responses_item(message, kind)
    if type(role) is not str:
        role = None
    if kind == "message":
        return Shape(Format.OPENAI_RESPONSES, role, instructions=role in _INSTRUCTIONS)
    content = get("content")
    if type(content) is list:
        blocks = _anthropic(role, content)
        if blocks is not None:
            return blocks
    tool_calls = get("tool_calls")
    if role == "tool" or (type(tool_calls) is list and tool_calls):
        return _openai_chat(message, role, tool_calls)
    plain = _PLAIN_SHAPES.get(role) if role is not None else PLAIN
    return plain if plain is not None else Shape(None, role)


def _ids(items: Sequence[Any], key: str, kind_field: str, kind: str) -> tuple[str, ...]:
    """The str values of `key` of the mappings in `items` whose `kind_field` is `kind`."""
    found = []
    for item in items:
        if (type(item) is dict or isinstance(item, Mapping)) and item.get(kind_field) == kind:
            value = item.get(key)
            if type(value) is str:
                found.append(value)
    return tuple(found)


def _openai_chat(message: Mapping[str, Any], role: str | None, tool_calls: object) -> Shape:
    if role == "tool":
        call_id = message.get("tool_call_id")
        results = (call_id,) if isinstance(call_id, str) else ()
        return Shape(Format.OPENAI_CHAT, role, results=results)
    calls = (
        tuple(c["id"] for c in tool_calls if isinstance(c, Mapping) and type(c.get("id")) is str)
        if isinstance(tool_calls, list)
        else ()
    )
    return Shape(Format.OPENAI_CHAT, role, calls=calls)


#: Responses items that make or answer a call although their type does not say ``_call``.
_RESPONSES_CALLS = frozenset({"program"})
_RESPONSES_RESULTS = frozenset({"tool_search_output", "program_output"})
_REASONING = Shape(Format.OPENAI_RESPONSES, None, leads=True)


def _responses_item(item: Mapping[str, Any], kind: str) -> Shape:
    call_id = item.get("call_id")
    if isinstance(call_id, str):
        if kind.endswith("_call_output") or kind in _RESPONSES_RESULTS:
            return Shape(Format.OPENAI_RESPONSES, None, results=(call_id,))
        if kind.endswith("_call") or kind in _RESPONSES_CALLS:
            return Shape(Format.OPENAI_RESPONSES, None, calls=(call_id,))
    if kind == "reasoning":
        return _REASONING
    return Shape(Format.OPENAI_RESPONSES, None)


def _anthropic(role: str | None, content: list[Any]) -> Shape | None:
    """The shape of a message whose content blocks are Anthropic's; None if none of its blocks
    is one only Anthropic has (OpenAI chat has text parts too). One pass over the blocks."""
    anthropic = False
    calls: list[str] = []
    results: list[str] = []
    for block in content:
        if type(block) is not dict and not isinstance(block, Mapping):
            continue
        kind = block.get("type")
        if kind not in _ANTHROPIC_BLOCKS:
            continue
        anthropic = True
        if kind == "tool_use":
            call_id = block.get("id")
            if type(call_id) is str:
                calls.append(call_id)
        elif kind == "tool_result":
            call_id = block.get("tool_use_id")
            if type(call_id) is str:
                results.append(call_id)
    if not anthropic:
        return None
    return Shape(Format.ANTHROPIC, role, tuple(calls), tuple(results))


def _pydantic_ai(message: Mapping[str, Any], parts: list[Any]) -> Shape:
    parts = [part for part in parts if isinstance(part, Mapping)]
    kind = message.get("kind")
    if kind == "response":
        return Shape(
            Format.PYDANTIC_AI,
            "response",
            calls=_ids(parts, "tool_call_id", "part_kind", "tool-call"),
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
    # pydantic-ai sends its system prompts in the run's first request, ahead of the user prompt,
    # and never again once there is a history: that request is pinned whole, or they are lost.
    instructions = bool(parts) and not results and parts[0].get("part_kind") == "system-prompt"
    opens = instructions and any(part.get("part_kind") != "system-prompt" for part in parts)
    return Shape(
        Format.PYDANTIC_AI, "request", results=results, instructions=instructions, opens=opens
    )


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
