"""Repairing a restored conversation so that its provider accepts it as it is.

Messages the conversation cannot start with are dropped from its start, results whose call is not
before them are dropped, and every call left without a result gets a synthetic one, marked as an
error where the format has such a flag, in the place the format keeps results. The messages the
caller passed are never changed: repaired messages are copies.
"""

from __future__ import annotations

import copy
from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from convstore._conversation.check import conversation_format
from convstore._conversation.formats import Format, may_open, shape
from convstore._records import Repair

#: The result a call that was cut short gets.
INTERRUPTED = "The tool call was interrupted before it finished; its result is unknown."


def repair(
    messages: Sequence[Any], *, pending: Collection[str] = ()
) -> tuple[list[Any], list[Repair]]:
    """The conversation repaired (see the module), and what was repaired, in order."""
    shapes = [shape(m) for m in messages]
    conversation = conversation_format(shapes)
    rows = [[i, copy.deepcopy(m), s] for i, (m, s) in enumerate(zip(messages, shapes, strict=True))]
    repairs: list[Repair] = []
    _drop_bad_start(rows, conversation, repairs)
    _drop_orphans(rows, conversation, repairs)
    _close_calls(rows, conversation, pending, repairs)
    return [message for _, message, _ in rows], repairs


def _drop_bad_start(
    rows: list[list[Any]], conversation: Format | None, repairs: list[Repair]
) -> None:
    """Drop what the conversation may not start with from its start, after the instructions."""
    while True:
        first = next((k for k, row in enumerate(rows) if not row[2].instructions), None)
        if first is None or may_open(rows[first][2], conversation):
            return
        if any(row[2].opens for row in rows[:first]):
            return  # the instructions came with the turn that opens the conversation
        position, message, current = rows[first]
        if not current.results:
            repairs.append(Repair("dropped_message", None, position))
            del rows[first]
            continue
        # Results at the start cannot have their calls before them.
        for call_id in current.results:
            repairs.append(Repair("dropped_result", call_id, position))
            message = _without_result(message, call_id, conversation)
            if message is None:
                break
        if message is None:
            del rows[first]
        else:
            rows[first] = [position, message, shape(message)]


def _drop_orphans(
    rows: list[list[Any]], conversation: Format | None, repairs: list[Repair]
) -> None:
    called: set[str] = set()
    k = 0
    while k < len(rows):
        position, message, current = rows[k]
        orphans = [r for r in current.results if r not in called]
        for call_id in orphans:
            repairs.append(Repair("dropped_result", call_id, position))
            message = _without_result(message, call_id, conversation)
        if message is None:
            del rows[k]
            continue
        if orphans:
            rows[k] = [position, message, shape(message)]
        called.update(rows[k][2].calls)
        k += 1


def _without_result(message: Any, call_id: str, conversation: Format | None) -> Any:
    """The message without its result of `call_id`; None when nothing else is left of it."""
    if conversation is Format.ANTHROPIC and isinstance(message.get("content"), list):
        blocks = [
            b
            for b in message["content"]
            if not (isinstance(b, Mapping) and b.get("tool_use_id") == call_id)
        ]
        return {**message, "content": blocks} if blocks else None
    if conversation is Format.PYDANTIC_AI:
        parts = [
            p
            for p in message["parts"]
            if not (isinstance(p, Mapping) and p.get("tool_call_id") == call_id)
        ]
        return {**message, "parts": parts} if parts else None
    return None  # a chat tool message, a Responses output item: the message is the result


def _close_calls(
    rows: list[list[Any]],
    conversation: Format | None,
    pending: Collection[str],
    repairs: list[Repair],
) -> None:
    answered = {r for _, _, s in rows for r in s.results}
    k = 0
    while k < len(rows):
        position, _, current = rows[k]
        missing = [c for c in current.calls if c not in answered and c not in pending]
        if missing:
            repairs += [Repair("closed_call", call_id, position) for call_id in missing]
            _add_results(rows, k, missing, conversation)
            answered.update(missing)
        k += 1


def _add_results(
    rows: list[list[Any]], k: int, missing: list[str], conversation: Format | None
) -> None:
    """Put synthetic results for the calls `missing` of row `k` where the format wants them."""
    message = rows[k][1]
    if conversation is Format.ANTHROPIC:
        blocks = [
            {"type": "tool_result", "tool_use_id": c, "content": INTERRUPTED, "is_error": True}
            for c in missing
        ]
        _into_next(rows, k, "user", _anthropic_with(blocks), {"role": "user", "content": blocks})
    elif conversation is Format.PYDANTIC_AI:
        called = {
            p.get("tool_call_id"): p
            for p in message["parts"]
            if isinstance(p, Mapping) and p.get("part_kind") == "tool-call"
        }
        now = datetime.now(UTC).isoformat()
        parts = [
            {
                "part_kind": "tool-return",
                "tool_name": called[c].get("tool_name"),
                "tool_call_id": c,
                "content": INTERRUPTED,
                "timestamp": now,
                # pydantic-ai's own word for a result a crash left unknown (2.x; older versions
                # ignore the fields); the kind keeps a typed call's return of its type.
                "outcome": "interrupted",
                "tool_kind": called[c].get("tool_kind"),
            }
            for c in missing
        ]
        _into_next(
            rows,
            k,
            "request",
            lambda m: {**m, "parts": [*parts, *m["parts"]]},
            {"kind": "request", "parts": parts},
        )
    elif conversation is Format.OPENAI_RESPONSES:
        kind = str(message.get("type"))
        _insert(rows, k + 1, [_responses_output(kind, c) for c in missing])
    else:
        after = k + 1
        while after < len(rows) and rows[after][2].role == "tool":
            after += 1
        _insert(
            rows,
            after,
            [{"role": "tool", "tool_call_id": c, "content": INTERRUPTED} for c in missing],
        )


def _responses_output(kind: str, call_id: str) -> dict[str, Any]:
    """The synthetic output of a Responses call of type `kind`, in the shape the API takes."""
    if kind == "tool_search_call":
        return {"type": "tool_search_output", "call_id": call_id, "tools": []}
    if kind == "program":
        result = {"result": INTERRUPTED, "status": "incomplete"}
        return {"type": "program_output", "call_id": call_id, **result}
    if kind == "shell_call":
        chunk = {"stdout": "", "stderr": INTERRUPTED, "outcome": {"type": "exit", "exit_code": 1}}
        return {"type": "shell_call_output", "call_id": call_id, "output": [chunk]}
    output = {"type": f"{kind}_output", "call_id": call_id, "output": INTERRUPTED}
    if kind == "apply_patch_call":
        output["status"] = "failed"
    return output


def _anthropic_with(blocks: list[dict[str, Any]]) -> Any:
    """Add result blocks to a user message, after the results it holds, before anything else."""

    def add(message: Mapping[str, Any]) -> dict[str, Any]:
        content = message.get("content")
        if isinstance(content, str):
            content = [{"type": "text", "text": content}]
        content = list(content or [])
        split = next(
            (
                i
                for i, b in enumerate(content)
                if not (isinstance(b, Mapping) and b.get("type") == "tool_result")
            ),
            len(content),
        )
        return {**message, "content": [*content[:split], *blocks, *content[split:]]}

    return add


def _into_next(rows: list[list[Any]], k: int, role: str, update: Any, new: dict[str, Any]) -> None:
    """Update the message after row `k` if it has `role`; else insert `new` after row `k`."""
    following = rows[k + 1] if k + 1 < len(rows) else None
    if following is not None and following[2].role == role:
        changed = update(following[1])
        rows[k + 1] = [following[0], changed, shape(changed)]
    else:
        _insert(rows, k + 1, [new])


def _insert(rows: list[list[Any]], at: int, messages: list[dict[str, Any]]) -> None:
    position = rows[at - 1][0] if at > 0 else 0
    rows[at:at] = [[position, m, shape(m)] for m in messages]
