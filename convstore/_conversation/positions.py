"""A sorted set of message positions, kept as runs, that grows at its end and shrinks at both."""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from operator import itemgetter
from typing import Any

_start, _end = itemgetter(0), itemgetter(1)


class Positions:
    """Positions as ``[start, end)`` runs: a conversation of plain turns is one run, so the set
    costs as little as the few runs its tool exchanges cut it into."""

    __slots__ = ("runs",)

    def __init__(self, runs: list[list[int]] | None = None) -> None:
        self.runs: list[list[int]] = runs if runs is not None else []

    def to_json(self) -> list[list[int]]:
        """The runs, as JSON."""
        return self.runs

    @classmethod
    def from_json(cls, document: Any) -> Positions:
        """The set `to_json` wrote, taking over its lists (freshly parsed, owned by no one)."""
        return cls(document)

    def add(self, position: int) -> None:
        """Add a position after every position in the set."""
        if self.runs and self.runs[-1][1] == position:
            self.runs[-1][1] += 1
        else:
            self.runs.append([position, position + 1])

    def remove(self, position: int) -> None:
        """Remove one position, if the set has it."""
        for k, (start, end) in enumerate(self.runs):
            if start <= position < end:
                pieces = [[start, position], [position + 1, end]]
                self.runs[k : k + 1] = [p for p in pieces if p[0] < p[1]]
                return

    def keep_at_most(self, position: int) -> None:
        """Remove every position above `position`."""
        while self.runs and self.runs[-1][0] > position:
            self.runs.pop()
        if self.runs and self.runs[-1][1] > position + 1:
            self.runs[-1][1] = position + 1

    def keep_at_least(self, position: int) -> None:
        """Remove every position below `position`."""
        while self.runs and self.runs[0][1] <= position:
            self.runs.pop(0)
        if self.runs and self.runs[0][0] < position:
            self.runs[0][0] = position

    def first_at_least(self, position: int) -> int | None:
        """The smallest position of the set that is at least `position`."""
        k = bisect_right(self.runs, position, key=_end)  # the first run ending after it
        return max(self.runs[k][0], position) if k < len(self.runs) else None

    def last_below(self, position: int) -> int | None:
        """The largest position of the set below `position`."""
        k = bisect_left(self.runs, position, key=_start)  # the runs before it start below it
        return min(self.runs[k - 1][1], position) - 1 if k else None

    def __iter__(self) -> Any:
        for start, end in self.runs:
            yield from range(start, end)
