"""What makes a conversation unacceptable to the model API it is written for."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Literal

from convstore._conversation.formats import Format, Shape, may_open, shape

ProblemKind = Literal["bad_start", "orphan_result", "misplaced_result", "dangling_call"]


@dataclass(frozen=True, slots=True)
class Problem:
    """One reason the provider would refuse the conversation."""

    #: ``bad_start``: the first message after the instructions may not open a conversation
    #: (an Anthropic assistant turn, a tool result); ``orphan_result``: a result whose call is
    #: not before it; ``misplaced_result``: a result not where the format requires (Anthropic and
    #: pydantic-ai: in the message right after the call; OpenAI chat: among the tool messages
    #: right after it); ``dangling_call``: a call with no result.
    kind: ProblemKind
    #: The 0-based position of the message at fault in the list checked.
    position: int
    #: The call the problem is about; None for ``bad_start``.
    call_id: str | None


def conversation_format(shapes: Sequence[Shape]) -> Format | None:
    """The format the first message of a definite format shows, or None."""
    return next((s.format for s in shapes if s.format is not None), None)


def check_conversation(
    messages: Sequence[object], *, pending: Collection[str] = ()
) -> list[Problem]:
    """What makes `messages` unacceptable to their provider, in the order of the messages.

    Calls whose ids are in `pending` (waiting for a person's approval, say) may stay open.
    """
    shapes = [shape(message) for message in messages]
    conversation = conversation_format(shapes)
    found: list[Problem] = []
    first = next((i for i, s in enumerate(shapes) if not s.instructions), None)
    opened = any(s.opens for s in shapes[:first])
    if first is not None and not opened and not may_open(shapes[first], conversation):
        found.append(Problem("bad_start", first, None))
    called: dict[str, int] = {}
    answered: set[str] = set()
    for i, current in enumerate(shapes):
        for call_id in current.results:
            if call_id not in called:
                found.append(Problem("orphan_result", i, call_id))
            elif not _in_place(shapes, called[call_id], i, conversation):
                found.append(Problem("misplaced_result", i, call_id))
            answered.add(call_id)
        for call_id in current.calls:
            called[call_id] = i
    found += [
        Problem("dangling_call", i, call_id)
        for call_id, i in called.items()
        if call_id not in answered and call_id not in pending
    ]
    return sorted(found, key=lambda p: p.position)


def _in_place(shapes: Sequence[Shape], call: int, result: int, conversation: Format | None) -> bool:
    """Whether a result at `result` stands where its format wants the result of a call at `call`."""
    if conversation in (Format.ANTHROPIC, Format.PYDANTIC_AI):
        return result == call + 1
    if conversation is Format.OPENAI_CHAT:
        return all(s.role == "tool" for s in shapes[call + 1 : result])
    return result > call
