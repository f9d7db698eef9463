"""A sorted set of message positions, kept as runs, that grows at its end and shrinks at both."""

from __future__ import annotations

from typing import Any


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
        """The set `to_json` wrote."""
        return cls([[start, end] for start, end in document])

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
        for start, end in self.runs:
            if end > position:
                return max(start, position)
        return None

    def last_below(self, position: int) -> int | None:
        """The largest position of the set below `position`."""
        for start, end in reversed(self.runs):
            if start < position:
                return min(end, position) - 1
        return None

    def __iter__(self) -> Any:
        for start, end in self.runs:
            yield from range(start, end)
