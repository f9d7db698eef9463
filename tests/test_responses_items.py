"""The Responses input items the OpenAI Agents SDK stores, as convstore's pairing rules see them:
each call type with its output type, messages written without a type, reasoning items, and the
outputs `resume()` makes, checked against the OpenAI client's own item types."""

from __future__ import annotations

from typing import Any

import pytest
from openai.types.responses.response_custom_tool_call_output_param import (
    ResponseCustomToolCallOutputParam,
)
from openai.types.responses.response_input_item_param import (
    ApplyPatchCallOutput,
    FunctionCallOutput,
    ShellCallOutput,
)
from openai.types.responses.response_tool_search_output_item_param_param import (
    ResponseToolSearchOutputItemParamParam,
)
from pydantic import TypeAdapter

import convstore
from convstore._conversation.repair import repair

USER = {"role": "user", "content": [{"type": "input_text", "text": "Fix the build."}]}

#: Each call type, the type of its output, and the client's type of that output.
CALLS: dict[str, tuple[str, Any]] = {
    "function_call": ("function_call_output", FunctionCallOutput),
    "custom_tool_call": ("custom_tool_call_output", ResponseCustomToolCallOutputParam),
    "shell_call": ("shell_call_output", ShellCallOutput),
    "apply_patch_call": ("apply_patch_call_output", ApplyPatchCallOutput),
    "tool_search_call": ("tool_search_output", ResponseToolSearchOutputItemParamParam),
}


@pytest.mark.parametrize("kind", sorted(CALLS))
def test_each_call_pairs_with_its_output(kind: str) -> None:
    """A call answered by its output type is acceptable; alone it dangles, and the output
    alone is an orphan."""
    call = {"type": kind, "call_id": "c1"}
    output = {"type": CALLS[kind][0], "call_id": "c1"}
    assert convstore.check_conversation([USER, call, output]) == []
    assert [p.kind for p in convstore.check_conversation([USER, call])] == ["dangling_call"]
    assert [p.kind for p in convstore.check_conversation([USER, output])] == ["orphan_result"]


@pytest.mark.parametrize("kind", sorted(CALLS))
def test_resume_closes_a_call_with_an_output_the_client_types_accept(kind: str) -> None:
    """The synthetic output of each call type is an item of its output type, valid as the
    OpenAI client defines it, right after the call."""
    reasoning = {"type": "reasoning", "id": "rs_1", "summary": []}
    call = {"type": kind, "call_id": "c1"}
    repaired, repairs = repair([USER, reasoning, call])
    assert [r.kind for r in repairs] == ["closed_call"]
    output = repaired[3]
    assert output["type"] == CALLS[kind][0]
    assert output["call_id"] == "c1"
    validated = TypeAdapter(CALLS[kind][1]).validate_python(output)
    for value in validated.values():
        if hasattr(value, "__next__"):
            list(value)  # pydantic checks the items of an Iterable field as they are read
    assert convstore.check_conversation(repaired) == []


def test_a_conversation_opened_by_a_message_without_a_type_is_a_responses_one() -> None:
    """The SDK's user message without a type opens a Responses conversation; an output before
    its call, or a trailing call, is still found."""
    call = {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"}
    output = {"type": "function_call_output", "call_id": "c1", "output": "ok"}
    plain = {"role": "user", "content": "and now?"}
    assert convstore.check_conversation([USER, call, output, plain]) == []
    assert [p.kind for p in convstore.check_conversation([output, USER])] == [
        "bad_start",
        "orphan_result",
    ]
    repaired, _ = repair([plain, call])
    assert repaired[2] == {
        "type": "function_call_output",
        "call_id": "c1",
        "output": repaired[2]["output"],
    }
