"""The pair-safe cap: which of a conversation's messages to keep, at most `max_messages` of them.

A session's stored window is its leading instruction messages (pinned) and a suffix of the rest
that never starts with a tool result whose call it does not hold, never holds a call without the
results the conversation has for it, and starts where the provider accepts a conversation to
start. While the whole conversation fits in the cap it is kept as it is (`resume` repairs what a
crash left). When no such suffix fits in the cap (one tool exchange longer than the cap), or when
it keeps more of the conversation, the window keeps the latest message that may open the
conversation (the user turn that started the exchange) alone, then the newest whole exchanges
after it that fit; failing both, that message alone. A call still waiting for its result is kept
while it fits in the cap; once it does not, it is given up.

The trim works from a `Window` kept on the session row: where a window may start, which calls
wait for results, where the stored messages begin. It changes at its ends only, so an append
never reads old message bodies and costs the same whatever the length of the conversation.
A conversation that fits in the cap is kept whole whatever its shapes, so the storage leaves it
unanalysed (no window stored) until it first outgrows the cap, and then reads its stored
messages, at most a cap of them, once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from convstore._conversation.formats import Format, Shape, may_open
from convstore._conversation.positions import Positions

#: Roles that open a conversation in every format that has roles.
_OPENING_ROLES = ("user", "system", "developer")


@dataclass
class Window:
    """What the trim needs to know of a session's stored messages (see the module)."""

    #: The conversation's format, once a message has shown it.
    format: Format | None = None
    #: How many messages lead the whole conversation with instructions only (seq 0 to pinned-1).
    pinned: int = 0
    #: The first position of the stored run of newest messages.
    first: int = 0
    #: A message kept alone before the run (it opened an exchange longer than the cap), or -1.
    opener: int = -1
    #: Positions of the run a window may start at: no later result answers a call before them,
    #: and the format lets a conversation start there.
    starts: Positions = field(default_factory=Positions)
    #: Positions of the run no later result reaches across, whatever the format says.
    bounds: Positions = field(default_factory=Positions)
    #: Positions of messages that may open the conversation and make no call.
    openers: Positions = field(default_factory=Positions)
    #: Positions that may open only while the format is unknown (an assistant turn, say).
    undecided: Positions = field(default_factory=Positions)
    #: Calls of the run still waiting for their results, and their positions.
    waiting: dict[str, int] = field(default_factory=dict)
    #: The position after a message that must stay with the next one (a Responses reasoning
    #: item), where no window may start; -1 when the last message taken in is no such message.
    follower: int = -1

    def to_json(self) -> dict[str, Any]:
        """The window as a JSON document, for the ``sessions.message_shapes`` column."""
        return {
            "format": None if self.format is None else str(self.format),
            "pinned": self.pinned,
            "first": self.first,
            "opener": self.opener,
            "starts": self.starts.to_json(),
            "bounds": self.bounds.to_json(),
            "openers": self.openers.to_json(),
            "undecided": self.undecided.to_json(),
            "waiting": self.waiting,
            "follower": self.follower,
        }

    @classmethod
    def from_json(cls, document: Any) -> Window:
        """The window a freshly parsed `to_json` document describes, taking over its lists."""
        kind = document["format"]
        return cls(
            format=None if kind is None else Format(kind),
            pinned=document["pinned"],
            first=document["first"],
            opener=document["opener"],
            starts=Positions.from_json(document["starts"]),
            bounds=Positions.from_json(document["bounds"]),
            openers=Positions.from_json(document["openers"]),
            undecided=Positions.from_json(document["undecided"]),
            waiting=dict(document["waiting"]),
            # Windows stored before reasoning items were told apart have no follower.
            follower=document.get("follower", -1),
        )

    def absorb(self, first: int, shapes: Sequence[Shape]) -> None:
        """Take in messages of `shapes` at positions from `first` on, after every message taken
        in before.

        The hot loop of every save and append, hence the local names and the runs grown in
        place: a message whose start is safe extends the last run of each set it joins.
        """
        waiting = self.waiting
        follower = self.follower
        for seq, shape in enumerate(shapes, first):
            if shape.format is not None and self.format is None:
                self._learn(shape.format)
            led, follower = seq == follower, seq + 1 if shape.leads else -1
            if shape.instructions and seq == self.pinned:
                self.pinned += 1
                self.first = max(self.first, self.pinned)
                continue
            if shape.results:
                for call_id in shape.results:
                    call = waiting.pop(call_id, None)
                    # Every start after the call (or, with no call stored, every start) is unsafe.
                    reach = -1 if call is None else call
                    self.starts.keep_at_most(reach)
                    self.bounds.keep_at_most(reach)
                continue
            if led:
                # Led by the message before it: a window starting here would part them.
                for call_id in shape.calls:
                    waiting[call_id] = seq
                continue
            _extend(self.bounds.runs, seq)
            if may_open(shape, self.format):
                _extend(self.starts.runs, seq)
                if not shape.calls:
                    _extend(self.openers.runs, seq)
                if self.format is None and shape.role not in _OPENING_ROLES:
                    self.undecided.add(seq)
            for call_id in shape.calls:
                waiting[call_id] = seq
        self.follower = follower

    def _learn(self, conversation: Format) -> None:
        """The format is known: positions that opened only for want of it no longer do."""
        self.format = conversation
        if conversation is not Format.OPENAI_CHAT:
            for position in self.undecided:
                self.starts.remove(position)
                self.openers.remove(position)
        self.undecided = Positions()

    def keep(self, first: int, opener: int) -> None:
        """Keep the run from `first` on and the message at `opener` (-1: none); forget the rest."""
        self.first, self.opener = first, opener
        for positions in (self.starts, self.bounds, self.openers, self.undecided):
            positions.keep_at_least(first)
        self.waiting = {c: seq for c, seq in self.waiting.items() if seq >= first}


def _extend(runs: list[list[int]], position: int) -> None:
    """`Positions.add`, on the runs themselves: the cheapest way to grow a set by one."""
    if runs and runs[-1][1] == position:
        runs[-1][1] += 1
    else:
        runs.append([position, position + 1])


@dataclass(frozen=True, slots=True)
class Plan:
    """What to store after a write: the new window, and which positions it keeps."""

    #: The new window; None when the whole conversation is kept without analysing it.
    window: Window | None
    #: How many pinned messages are kept: positions 0 to pinned_kept-1.
    pinned_kept: int
    #: The position of a message kept alone before the newest run, or -1.
    opener: int
    #: The first position of the newest run; the message count when the run is empty.
    first: int
    #: The message count after the write.
    count: int

    def keeps(self, seq: int) -> bool:
        """Whether the message at position `seq` is kept."""
        return seq < self.pinned_kept or seq == self.opener or self.first <= seq < self.count

    @property
    def kept(self) -> tuple[int, ...]:
        """The positions kept, oldest first: the pinned ones, a kept opening message, the run."""
        opener = [self.opener] if self.opener >= 0 else []
        return (*range(self.pinned_kept), *opener, *range(self.first, self.count))


def plan(window: Window, added: Sequence[Shape], count: int, cap: int) -> Plan:
    """The plan after appending messages of shapes `added` to a conversation of `count`
    messages whose stored messages `window` describes, keeping at most `cap` of them.

    `window` is changed into the plan's window.
    """
    window.absorb(count, added)
    count += len(added)
    pinned_kept = min(window.pinned, cap)
    first, opener = _choose(window, count, cap - pinned_kept)
    window.keep(first, opener)
    return Plan(window, pinned_kept, opener, first, count)


def _choose(window: Window, count: int, budget: int) -> tuple[int, int]:
    """The first position of the newest run to keep, and a message kept alone before it (-1)."""
    pinned = window.pinned
    if window.first <= pinned and window.opener < 0 and count - pinned <= budget:
        return pinned, -1  # nothing was trimmed yet, and everything fits
    if budget <= 0:
        return count, -1
    low = max(count - budget, pinned)
    suffix = window.starts.first_at_least(low)
    if suffix is not None and suffix > _first_waiting(window, low, count):
        suffix = None
    bound = window.bounds.first_at_least(low + 1)
    if bound is not None and bound <= _first_waiting(window, low + 1, count):
        opener = _last_opener(window, bound)
        if opener is not None and (suffix is None or count - bound + 1 > count - suffix):
            return bound, opener
    if suffix is not None:
        return suffix, -1
    opener = _last_opener(window, count)
    return count, -1 if opener is None else opener


def _first_waiting(window: Window, low: int, count: int) -> int:
    """The first call waiting for its result at `low` or after: a window must keep it."""
    return min((seq for seq in window.waiting.values() if seq >= low), default=count)


def _last_opener(window: Window, below: int) -> int | None:
    """The latest stored message below `below` that may open the conversation on its own."""
    found = window.openers.last_below(below)
    if window.opener >= 0 and window.opener < below and (found is None or window.opener > found):
        return window.opener
    return found


def stored_window(stored: Sequence[tuple[int, Shape]]) -> Window:
    """The window that describes messages already stored at the given positions, oldest first:
    the pinned ones, perhaps one message alone, then a run."""
    window = Window()
    for seq, shape in stored:
        window.absorb(seq, [shape])
    run = [seq for seq, _ in stored if seq >= window.pinned]
    opener = run[0] if len(run) > 1 and run[1] != run[0] + 1 else -1
    first = run[1] if opener >= 0 else (run[0] if run else window.pinned)
    window.keep(first, opener)
    return window
