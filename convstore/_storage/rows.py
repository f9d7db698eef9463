"""Messages as rows: where the pair-safe cap puts them, and their encoded bodies."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from convstore._conversation.formats import shape
from convstore._conversation.window import Plan, Window, plan, stored_window
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


def window_text(plan: Plan) -> str | None:
    """The plan's window as the JSON text of the ``sessions.message_shapes`` column; None
    while the whole conversation fits in the cap unanalysed (see `planned`)."""
    return None if plan.window is None else codec.encode(plan.window.to_json(), jsonb=False)


def planned(
    stored: str | bytes | None,
    messages: Sequence[Any],
    count: int,
    max_messages: int,
    older: Iterable[tuple[int, str | bytes]] = (),
) -> Plan:
    """The plan for adding `messages` to a conversation of `count` messages whose stored ones
    the ``sessions.message_shapes`` text `stored` describes.

    No text (None) means that the stored messages are the whole conversation, never analysed:
    a conversation that fits in the cap is kept whole whatever its shapes, so it is analysed
    only once it outgrows the cap, from its stored messages `older` (position and JSON text),
    which the caller reads when `reads_older` says so.
    """
    total = count + len(messages)
    if stored is None:
        if total <= max_messages:
            return Plan(None, 0, -1, 0, total)
        window = stored_window([(seq, shape(codec.decode(body))) for seq, body in older])
    else:
        window = Window.from_json(codec.decode(stored))
    return plan(window, [shape(m) for m in messages], count, max_messages)


def reads_older(stored: str | bytes | None, count: int, added: int, max_messages: int) -> bool:
    """Whether `planned` needs the stored messages of a conversation of `count` messages that
    `added` more are appended to."""
    return stored is None and count > 0 and count + added > max_messages


#: Roles every backend stores as they are, checked first because nearly every message has one.
_COMMON_ROLES = frozenset({"user", "assistant", "system", "developer", "tool"})


def role_of(message: Any) -> str | None:
    """The message's role, for SQL queries, when it has a storable string one."""
    if type(message) is dict or isinstance(message, Mapping):
        role = message.get("role")
        if isinstance(role, str) and (role in _COMMON_ROLES or storable_text(role)):
            return str(role)  # a plain str, whatever subclass of str the message used
    return None
