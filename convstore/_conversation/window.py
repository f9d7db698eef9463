"""The pair-safe cap: which of a conversation's messages to keep, at most `max_messages` of them.

A session's stored window is its leading instruction messages (pinned) and a suffix of the rest
that never starts with a tool result whose call it does not hold, never holds a call without the
results the conversation has for it, and starts where the provider accepts a conversation to
start. The trim works from a `Window`, the shapes of the stored messages kept on the session row,
so that an append never reads old message bodies: its cost grows with the cap, not with the
conversation.

While the whole conversation fits in the cap it is kept as it is (`resume` repairs what a crash
left). When no such suffix fits in the cap (one tool exchange longer than the cap), or when it keeps
more of the conversation, the window keeps the latest message that may open the conversation (the
user turn that started the exchange) alone, then the newest whole exchanges after it that fit;
failing both, that message alone. A call still waiting for its result is kept while it fits in
the cap; once it does not, it is given up.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from convstore._conversation.formats import Format, Shape, may_open


@dataclass(frozen=True, slots=True)
class Entry:
    """A stored message: its position in the whole conversation and its shape."""

    seq: int
    shape: Shape


@dataclass(frozen=True, slots=True)
class Window:
    """What the trim needs to know of a session's stored messages."""

    #: The conversation's format, once a message has shown it.
    format: Format | None = None
    #: How many messages lead the whole conversation with instructions only (seq 0 to pinned-1).
    pinned: int = 0
    #: The stored messages, oldest first.
    entries: tuple[Entry, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The window as a JSON document, for the ``sessions.window`` column."""
        return {
            "format": None if self.format is None else str(self.format),
            "pinned": self.pinned,
            "messages": [_entry_json(e) for e in self.entries],
        }

    @classmethod
    def from_json(cls, document: Any) -> Window:
        """The window a `to_json` document describes; an empty one for None (a new session)."""
        if not document:
            return EMPTY
        entries = tuple(_entry(item) for item in document["messages"])
        kind = document["format"]
        return cls(None if kind is None else Format(kind), document["pinned"], entries)


EMPTY = Window()


def _entry_json(entry: Entry) -> list[Any]:
    """``[seq, role]``, then ``[calls, results, instructions]`` when the message has any."""
    shape = entry.shape
    if shape.calls or shape.results or shape.instructions:
        return [entry.seq, shape.role, list(shape.calls), list(shape.results), shape.instructions]
    return [entry.seq, shape.role]


def _entry(item: list[Any]) -> Entry:
    seq, role, *more = item
    if not more:
        return Entry(seq, Shape(None, role))
    calls, results, instructions = more
    return Entry(seq, Shape(None, role, tuple(calls), tuple(results), bool(instructions)))


@dataclass(frozen=True, slots=True)
class Plan:
    """What to store after a write: the new window, and which positions it keeps."""

    window: Window
    #: The positions kept, oldest first: the pinned ones, a kept opening message, the newest run.
    kept: tuple[int, ...]
    #: How many pinned messages are kept: positions 0 to pinned_kept-1.
    pinned_kept: int
    #: The position of a message kept alone before the newest run (the one that opened a tool
    #: exchange longer than the cap), or -1.
    opener: int
    #: The first position of the newest run; the message count when the run is empty.
    first: int


def stored_window(stored: Sequence[tuple[int, Shape]]) -> Window:
    """The window that describes messages already stored at the given positions, oldest first."""
    pinned = 0
    for seq, current in stored:
        if seq != pinned or not current.instructions:
            break
        pinned += 1
    conversation = next((s.format for _, s in stored if s.format), None)
    return Window(conversation, pinned, tuple(Entry(seq, s) for seq, s in stored))


def plan(window: Window, added: Sequence[Shape], count: int, cap: int) -> Plan:
    """The window after appending messages of shapes `added` to a conversation of `count`
    messages whose stored messages `window` describes, keeping at most `cap` of them."""
    conversation = window.format or next((s.format for s in added if s.format), None)
    pinned = window.pinned
    for i, shape in enumerate(added):
        if pinned != count + i or not shape.instructions:
            break
        pinned += 1
    entries = [*window.entries, *(Entry(count + i, shape) for i, shape in enumerate(added))]
    kept_pinned = [e for e in entries if e.seq < min(pinned, cap)]
    rest = [e for e in entries if e.seq >= pinned]
    budget = cap - len(kept_pinned)
    if len(rest) <= budget and (not rest or rest[-1].seq - pinned + 1 == len(rest)):
        # Nothing was trimmed yet and everything fits: it is all kept, as it is.
        opener, run = None, rest
    else:
        opener, run = _tail(rest, budget, conversation)
    kept = (*kept_pinned, *([] if opener is None else [opener]), *run)
    return Plan(
        window=Window(conversation, pinned, kept),
        kept=tuple(e.seq for e in kept),
        pinned_kept=len(kept_pinned),
        opener=-1 if opener is None else opener.seq,
        first=run[0].seq if run else count + len(added),
    )


def _tail(
    rest: list[Entry], budget: int, conversation: Format | None
) -> tuple[Entry | None, list[Entry]]:
    """What to keep of `rest`, at most `budget` messages: an opening message kept alone, or
    None, and the newest run (see the module's rules)."""
    n = len(rest)
    if budget <= 0 or n == 0:
        return None, []
    safe = _safe_starts(rest)
    opens = [may_open(e.shape, conversation) for e in rest]
    waiting = _waiting_calls(rest)

    def allowed(i: int, low: int) -> bool:
        # A start keeps every call still waiting for its result, unless it is too old to fit.
        return safe[i] and not any(low <= w < i for w in waiting)

    low = max(n - budget, 0)
    suffix = next((i for i in range(low, n) if opens[i] and allowed(i, low)), None)
    # The message that opened an exchange, kept alone, and the whole exchanges after it that
    # fit: when an exchange is longer than the cap, or when that keeps more of the conversation.
    openers = [o for o in range(n) if opens[o] and not rest[o].shape.calls]
    low = max(n - budget + 1, 1)
    for i in range(low, n):
        before = [o for o in openers if o < i]
        if before and allowed(i, low):
            if suffix is None or n - i + 1 > n - suffix:
                return rest[before[-1]], rest[i:]
            break
    if suffix is not None:
        return None, rest[suffix:]
    return (rest[openers[-1]], []) if openers else (None, [])


def _safe_starts(rest: list[Entry]) -> list[bool]:
    """For each index, whether a window starting there holds every call its results answer.

    A result whose call is not stored (given up, or never in the conversation) makes every
    start at or before it unsafe: a trimmed window never holds a result without its call.
    """
    position: dict[str, int] = {}
    link = []
    for i, entry in enumerate(rest):
        earliest = i
        for result in entry.shape.results:
            earliest = min(earliest, position.get(result, -1))
        link.append(earliest)
        for call in entry.shape.calls:
            position[call] = i
    safe = [False] * len(rest)
    lowest = len(rest)
    for i in range(len(rest) - 1, -1, -1):
        lowest = min(lowest, link[i])
        safe[i] = lowest >= i
    return safe


def _waiting_calls(rest: list[Entry]) -> list[int]:
    """The indexes of the messages holding calls that no later message answers yet."""
    answered: set[str] = set()
    waiting = []
    for i in range(len(rest) - 1, -1, -1):
        shape = rest[i].shape
        if any(call not in answered for call in shape.calls):
            waiting.append(i)
        answered.update(shape.results)
    return waiting
