"""Fixed-width tables and readable values for the terminal, shared by the command line and demo."""

from __future__ import annotations

import json
import os
import shutil
import sys
import unicodedata
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, TextIO

from convstore._records import InterruptedSession, Interruption, RetrySummary

#: The narrowest a column is cut to when a table is wider than the terminal.
MIN_COLUMN_WIDTH = 6
_GAP = "  "
_ELLIPSIS = "…"


def fail(message: str) -> int:
    """Print one error line; exit status 1."""
    print(f"convstore: error: {message}", file=sys.stderr)
    return 1


def plural(n: int, noun: str) -> str:
    """'1 session', '2 sessions', '1,234 sessions'."""
    return f"{n:,} {noun}" + ("" if n == 1 else "s")


def screen_width() -> int | None:
    """The width of standard output's terminal (see `terminal_width`)."""
    return terminal_width(sys.stdout)


def terminal_width(stream: TextIO) -> int | None:
    """The width to fit tables to: the terminal's, or $COLUMNS; None (no limit) in a pipe."""
    if "COLUMNS" in os.environ or stream.isatty():
        return shutil.get_terminal_size().columns
    return None


def clean(text: str) -> str:
    """The text on one line: whitespace runs become one space, control characters become '?'.

    Message contents may hold newlines or terminal escape sequences; neither may reach the screen.
    """
    return "".join(
        "?" if unicodedata.category(ch) in ("Cc", "Cf") else ch for ch in " ".join(text.split())
    )


def display_width(text: str) -> int:
    """The number of terminal columns the text takes: wide East Asian characters take two."""
    return sum(_char_width(ch) for ch in text)


def _char_width(ch: str) -> int:
    if unicodedata.combining(ch):
        return 0
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def fit(text: str, width: int) -> str:
    """The text cut to at most `width` columns, ending in an ellipsis when cut."""
    if display_width(text) <= width:
        return text
    kept, used = [], 0
    for ch in text:
        if used + _char_width(ch) > width - 1:
            break
        kept.append(ch)
        used += _char_width(ch)
    return "".join(kept) + _ELLIPSIS


def _pad(text: str, width: int, right: bool) -> str:
    space = " " * (width - display_width(text))
    return space + text if right else text + space


def table(
    headers: Sequence[str],
    rows: Iterable[Sequence[object]],
    *,
    right: Iterable[int] = (),
    cut: Iterable[int] | None = None,
    width: int | None = None,
) -> str:
    """A table with a header, columns padded to their widest cell; `right` aligns numbers.

    A header may hold a newline, to stack a long title over a narrow column. When `width` is
    given and the table is wider, the `cut` columns (by default the left-aligned ones) are cut
    with an ellipsis, widest first, then if need be all of them, until it fits or every column
    is down to a few characters.
    """
    aligned = set(right)
    cells = [[clean(str(value)) for value in row] for row in rows]
    titles = [[clean(line) for line in h.split("\n")] for h in headers]
    height = max(len(t) for t in titles)
    heads = [[""] * (height - len(t)) + t for t in titles]  # titles sit on the bottom line
    widths = [
        max(display_width(line) for line in [*heads[i], *(row[i] for row in cells)])
        for i in range(len(headers))
    ]
    if width is not None:
        excess = sum(widths) + len(_GAP) * (len(widths) - 1) - width
        first = [i for i in range(len(widths)) if i not in aligned] if cut is None else list(cut)
        for cuttable in (first, list(range(len(widths)))):
            while excess > 0 and cuttable:
                widest = max(cuttable, key=lambda i: widths[i])
                if widths[widest] <= MIN_COLUMN_WIDTH:
                    break
                widths[widest] -= 1
                excess -= 1
    header_rows = [[head[line] for head in heads] for line in range(height)]
    lines = [
        _GAP.join(
            _pad(fit(cell, w), w, i in aligned)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in [*header_rows, *cells]
    ]
    return "\n".join(lines)


def when(value: datetime | None) -> str:
    """A UTC time to the second, or '-'."""
    return "-" if value is None else value.strftime("%Y-%m-%d %H:%M:%S")


def age(seconds: float) -> str:
    """A duration in its two largest units: 42s, 5m 03s, 2h 10m, 3d 04h."""
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    m, s = divmod(s, 60)
    if m < 60:
        return f"{m}m {s:02d}s"
    h, m = divmod(m, 60)
    if h < 48:
        return f"{h}h {m:02d}m"
    d, h = divmod(h, 24)
    return f"{d}d {h:02d}h"


def seconds(value: float | None) -> str:
    """Seconds with one decimal, or '-'."""
    return "-" if value is None else f"{value:,.1f}"


def or_dash(value: object) -> str:
    """The value as text, '-' for None."""
    return "-" if value is None else str(value)


def interrupted_table(sessions: Sequence[InterruptedSession], width: int | None) -> str:
    """The interrupted sessions, as `convstore sessions --interrupted` shows them."""
    return table(
        ["SESSION", "MESSAGES", "INTERRUPTED (UTC)", "AGO", "REASON"],
        [
            (
                s.session_id,
                s.message_count,
                when(s.interrupted_at),
                age(s.age_seconds),
                or_dash(s.reason),
            )
            for s in sessions
        ],
        right=[1],
        cut=[0, 4],
        width=width,
    )


def history_table(history: Sequence[Interruption], width: int | None) -> str:
    """Crash history rows: when each interruption happened, how long it lasted, and why."""
    return table(
        ["SESSION", "INTERRUPTED (UTC)", "RESOLVED (UTC)", "DOWN FOR", "REASON"],
        [
            [
                h.session_id,
                when(h.interrupted_at),
                when(h.resolved_at),
                "-"
                if h.resolved_at is None
                else age((h.resolved_at - h.interrupted_at).total_seconds()),
                or_dash(h.reason),
            ]
            for h in history
        ],
        cut=[0, 4],
        width=width,
    )


def retry_table(summary: Sequence[RetrySummary], width: int | None) -> str:
    """The retry summary per operation and kind of error, as `convstore stats` shows it.

    Calls that succeeded at the first attempt are the rows whose error type is "none".
    """
    return table(
        [
            "OPERATION",
            "ERROR\nTYPE",
            "CALLS",
            "ATTEMPTS",
            "RETRIES",
            "GAVE\nUP",
            "OK AFTER\nRETRY",
            "WAITED\n(S)",
            "P95 WAIT\n(S)",
            "COOLDOWN\nWAIT (S)",
        ],
        [
            [
                row.operation,
                row.error_type or "none",
                f"{row.calls:,}",
                f"{row.attempts:,}",
                f"{row.retries:,}",
                f"{row.giveups:,}",
                f"{row.successes_after_retry:,}",
                seconds(row.total_delay_s),
                seconds(row.p95_delay_s),
                seconds(row.total_cooldown_wait_s),
            ]
            for row in summary
        ],
        right=range(2, 10),
        cut=[0],
        width=width,
    )


def to_json(document: Any, stream: TextIO | None = None) -> None:
    """Write one JSON document (standard output by default), times in ISO 8601."""
    stream = sys.stdout if stream is None else stream
    json.dump(document, stream, indent=2, ensure_ascii=False, default=_json_default)
    stream.write("\n")


def _json_default(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)
