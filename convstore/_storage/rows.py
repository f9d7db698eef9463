"""Messages as rows: where the pair-safe cap puts them, and their encoded bodies."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from convstore._conversation.formats import shape
from convstore._conversation.window import Plan, Window, plan
from convstore._storage import codec
from convstore._validate import storable_text

#: One message ready for the database: (session_id, seq, role, encoded body).
EncodedMessage = tuple[str, int, str | None, str]


def encode_messages(
    session_id: str, messages: Sequence[Any], seqs: Sequence[int], *, jsonb: bool
) -> list[EncodedMessage]:
    """Rows for `messages`, at the positions `seqs` of the conversation."""
    bodies = codec.encode_many(messages, jsonb=jsonb)
    return [
        (session_id, seq, role_of(message), body)
        for seq, message, body in zip(seqs, messages, bodies, strict=True)
    ]


def kept_messages(plan: Plan, messages: Sequence[Any], first: int) -> tuple[list[Any], list[int]]:
    """The messages `plan` keeps of `messages`, which start at position `first`, and where."""
    seqs = [seq for seq in range(first, first + len(messages)) if plan.keeps(seq)]
    return [messages[seq - first] for seq in seqs], seqs


def window_text(plan: Plan) -> str:
    """The plan's window as the JSON text of the ``sessions.message_shapes`` column."""
    return codec.encode(plan.window.to_json(), jsonb=False)


def planned(
    stored: str | bytes | None, messages: Sequence[Any], count: int, max_messages: int
) -> Plan:
    """The plan for adding `messages` to a conversation of `count` messages whose stored ones
    the ``sessions.message_shapes`` text `stored` describes (None: there are none)."""
    window = Window.from_json(None if stored is None else codec.decode(stored))
    return plan(window, [shape(m) for m in messages], count, max_messages)


#: Roles every backend stores as they are, checked first because nearly every message has one.
_COMMON_ROLES = frozenset({"user", "assistant", "system", "developer", "tool"})


def role_of(message: Any) -> str | None:
    """The message's role, for SQL queries, when it has a storable string one."""
    if type(message) is dict or isinstance(message, Mapping):
        role = message.get("role")
        if isinstance(role, str) and (role in _COMMON_ROLES or storable_text(role)):
            return str(role)  # a plain str, whatever subclass of str the message used
    return None
