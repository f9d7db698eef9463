"""The report's charts, as plotly figures (plain data: traces and a layout) built from the
aggregates; the page draws them with plotly.js, so no plotting code runs in Python."""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from convstore._records import Outcome, RetrySummary
from convstore._storage.aggregates import RESOLVE_EDGES, WAIT_EDGES, Aggregates, Buckets

Figure = dict[str, Any]

#: One colour per outcome, readable on a light and on a dark background.
OUTCOME_COLORS: dict[str, str] = {
    Outcome.SUCCESS: "#2e9e5b",
    Outcome.RETRY: "#e0a526",
    Outcome.GIVEUP: "#d6453d",
    Outcome.NON_RETRYABLE: "#8e5bd1",
    Outcome.DEGRADED: "#e07b26",
    Outcome.FATAL: "#9c1f1f",
    Outcome.CANCELLED: "#8a8f98",
}
OUTCOME_NAMES: dict[str, str] = {
    Outcome.SUCCESS: "success",
    Outcome.RETRY: "retry",
    Outcome.GIVEUP: "give up",
    Outcome.NON_RETRYABLE: "non-retryable",
    Outcome.DEGRADED: "degraded",
    Outcome.FATAL: "fatal",
    Outcome.CANCELLED: "cancelled",
}
KIND_COLORS = {
    "retryable": "#e0a526",
    "non_retryable": "#8e5bd1",
    "degraded": "#e07b26",
    "fatal": "#9c1f1f",
}
GOOD, BAD, NEUTRAL = "#2e9e5b", "#d6453d", "#8a8f98"


@dataclass(frozen=True, slots=True)
class Chart:
    """One chart of the page: its anchor, title, what it shows, and its figure."""

    id: str
    title: str
    caption: str
    figure: Figure


def _bins(edges: Sequence[float], unit: str = "s") -> list[str]:
    """The labels of the bins `edges` bound: "< 0.1 s", "0.1 to 0.25 s", ..., "≥ 300 s"."""

    def text(value: float) -> str:
        if unit == "duration":
            return _duration(value)
        return f"{value:g} s"

    labels = [f"< {text(edges[0])}"]
    labels += [f"{text(low)} to {text(high)}" for low, high in itertools.pairwise(edges)]
    return [*labels, f"≥ {text(edges[-1])}"]


def _duration(seconds: float) -> str:
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min")):
        if seconds >= size:
            return f"{seconds / size:g} {unit}"
    return f"{seconds:g} s"


def _times(buckets: Buckets) -> list[str]:
    return [buckets.at(i).strftime("%Y-%m-%d %H:%M:%S") for i in range(buckets.count)]


def _layout(**extra: Any) -> dict[str, Any]:
    return {
        "margin": {"l": 60, "r": 20, "t": 10, "b": 50},
        "legend": {"orientation": "h", "y": -0.18},
        "hovermode": "closest",
        **extra,
    }


def attempts_chart(found: Aggregates) -> Chart | None:
    """Attempts per time bucket stacked by outcome, with the rate-limit and overload shares."""
    buckets = found.buckets
    if buckets is None or not found.attempts:
        return None
    count = max(buckets.count, max(int(row[0]) for row in found.attempts) + 1)
    per_outcome: dict[str, list[int]] = defaultdict(lambda: [0] * count)
    totals, limited, overloaded = [0] * count, [0] * count, [0] * count
    for bucket, outcome, attempts, rate_limited, overloads in found.attempts:
        per_outcome[outcome][bucket] += attempts
        totals[bucket] += attempts
        limited[bucket] += rate_limited
        overloaded[bucket] += overloads
    x = [Buckets(buckets.start, buckets.width_s, count).at(i).isoformat() for i in range(count)]
    # In the order of Outcome; one a newer convstore wrote is drawn after them, in grey.
    known = [str(outcome) for outcome in Outcome if outcome in per_outcome]
    traces: list[dict[str, Any]] = [
        {
            "type": "bar",
            "name": OUTCOME_NAMES.get(outcome, outcome),
            "x": x,
            "y": per_outcome[outcome],
            "marker": {"color": OUTCOME_COLORS.get(outcome, NEUTRAL), "line": {"width": 0}},
            "width": buckets.width_s * 1000 * 0.9,
        }
        for outcome in [*known, *sorted(set(per_outcome) - set(known))]
    ]
    for name, counts, color in (
        ("rate limited (429), % of attempts", limited, "#1f77d4"),
        ("overloaded (503, 529), % of attempts", overloaded, "#17becf"),
    ):
        if any(counts):
            share = [
                None if t == 0 else round(100 * c / t, 2)
                for c, t in zip(counts, totals, strict=True)
            ]
            traces.append(_share_line(name, x, share, color))
    layout = _layout(
        barmode="stack",
        yaxis={"title": {"text": "attempts"}, "rangemode": "tozero"},
        xaxis={"type": "date"},
    )
    if any(limited) or any(overloaded):
        layout["yaxis2"] = {
            "title": {"text": "% of attempts"},
            "overlaying": "y",
            "side": "right",
            "range": [0, 100],
            "tickmode": "linear",
            "dtick": 25,
            "showgrid": False,
        }
        layout["margin"]["r"] = 60
    caption = (
        f"Attempts per {_duration(buckets.width_s)}, stacked by how each ended; the lines give "
        "the share of each period's attempts that met a rate limit or an overload."
    )
    return Chart("attempts", "Attempts over time", caption, {"data": traces, "layout": layout})


def _share_line(name: str, x: list[str], share: list[float | None], color: str) -> dict[str, Any]:
    return {
        "type": "scatter",
        "mode": "lines+markers",
        "name": name,
        "x": x,
        "y": share,
        "yaxis": "y2",
        "line": {"color": color, "width": 2},
        "marker": {"size": 4},
        "connectgaps": False,
    }


def wait_charts(found: Aggregates) -> list[Chart]:
    """The distributions of backoff delays, of Retry-After and of cooldown waits, per operation."""
    labels = _bins(WAIT_EDGES)
    kinds = (
        ("delays", "Backoff delays", "The wait chosen before each retry."),
        ("retry-after", "Retry-After asked by the server", "What the server asked to wait."),
        ("cooldowns", "Waits for shared cooldowns", "Waits before an attempt for its key."),
    )
    charts = []
    for column, (anchor, title, caption) in enumerate(kinds, start=1):
        counts: dict[str, list[int]] = defaultdict(lambda: [0] * len(labels))
        for row in found.waits:
            if row[column] is not None:
                counts[row[0]][row[column]] += row[4]
        if not counts:
            continue
        traces = [
            {"type": "bar", "name": operation, "x": labels, "y": counts[operation]}
            for operation in sorted(counts)
        ]
        layout = _layout(
            barmode="group",
            xaxis={"type": "category", "title": {"text": "seconds"}},
            yaxis={"title": {"text": "attempts"}},
        )
        figure = {"data": traces, "layout": layout}
        charts.append(Chart(anchor, title, caption + " Attempts per bin.", figure))
    return charts


def outcomes_chart(summary: Sequence[RetrySummary]) -> Chart | None:
    """Per operation and kind of error, how its calls ended: did retrying help?"""
    rows = [row for row in summary if row.error_type is not None]
    if not rows:
        return None
    y = [f"{row.operation} · {row.error_type}" for row in rows]
    parts = (
        ("ok after retry", [row.successes_after_retry for row in rows], GOOD),
        ("gave up", [row.giveups for row in rows], BAD),
        (
            "raised at once or cancelled",
            [max(row.calls - row.successes_after_retry - row.giveups, 0) for row in rows],
            NEUTRAL,
        ),
    )
    traces = [
        {"type": "bar", "orientation": "h", "name": name, "x": x, "y": y, "marker": {"color": c}}
        for name, x, c in parts
    ]
    layout = _layout(
        barmode="stack",
        height=max(220, 34 * len(rows) + 110),
        xaxis={"title": {"text": "calls"}},
        yaxis={"autorange": "reversed", "automargin": True},
    )
    caption = "Calls that met each kind of error, by how they ended (the rows of convstore stats)."
    return Chart("outcomes", "Did retrying help?", caption, {"data": traces, "layout": layout})


def failures_chart(found: Aggregates) -> Chart | None:
    """The errors that failed attempts most often, per operation, coloured by kind."""
    if not found.failures:
        return None
    per_kind: dict[str, tuple[list[int], list[str]]] = defaultdict(lambda: ([], []))
    for operation, kind, error_class, status, attempts in found.failures:
        label = f"{operation}: {error_class or 'unknown'}" + (f" ({status})" if status else "")
        per_kind[kind][0].append(attempts)
        per_kind[kind][1].append(label)
    order = [
        f"{op}: {cls or 'unknown'}" + (f" ({st})" if st else "")
        for op, _, cls, st, _ in found.failures
    ]
    for kind, failed in sorted(found.failed_per_kind.items()):
        rest = failed - sum(per_kind[kind][0]) if kind in per_kind else failed
        if rest > 0:
            per_kind[kind][0].append(rest)
            per_kind[kind][1].append("other errors")
            if "other errors" not in order:
                order.append("other errors")
    traces = [
        {
            "type": "bar",
            "orientation": "h",
            "name": kind,
            "x": x,
            "y": y,
            "marker": {"color": KIND_COLORS.get(kind, NEUTRAL)},
        }
        for kind, (x, y) in sorted(per_kind.items())
    ]
    layout = _layout(
        height=max(220, 28 * len(order) + 110),
        xaxis={"title": {"text": "failed attempts"}},
        yaxis={"categoryorder": "array", "categoryarray": order[::-1], "automargin": True},
    )
    caption = (
        f"Failed attempts per error class and status, the {len(found.failures)} most frequent "
        "first; the rest, if any, as other errors."
    )
    return Chart("failures", "What fails", caption, {"data": traces, "layout": layout})


def crash_charts(found: Aggregates) -> list[Chart]:
    """Interruptions over time, the times until they were resolved, and the reasons ranked."""
    charts = []
    if found.buckets is not None and found.interruptions:
        buckets = found.buckets
        count = max(buckets.count, max(int(row[0]) for row in found.interruptions) + 1)
        resolved, open_ = [0] * count, [0] * count
        for bucket, is_resolved, n in found.interruptions:
            (resolved if is_resolved else open_)[bucket] += n
        x = [Buckets(buckets.start, buckets.width_s, count).at(i).isoformat() for i in range(count)]
        width = buckets.width_s * 1000 * 0.9
        traces = [
            {"type": "bar", "name": name, "x": x, "y": y, "width": width, "marker": {"color": c}}
            for name, y, c in (("resolved", resolved, GOOD), ("still open", open_, BAD))
        ]
        layout = _layout(barmode="stack", xaxis={"type": "date"}, yaxis={"title": {"text": "n"}})
        caption = f"Interruptions per {_duration(buckets.width_s)}, resolved by a resume or not."
        figure = {"data": traces, "layout": layout}
        charts.append(Chart("crashes", "Interruptions over time", caption, figure))
    if found.resolve_times:
        labels = _bins(RESOLVE_EDGES, "duration")
        y = [0] * len(labels)
        for index, n in found.resolve_times:
            y[index] += n
        trace = {"type": "bar", "name": "resolved", "x": labels, "y": y, "marker": {"color": GOOD}}
        layout = _layout(xaxis={"type": "category"}, yaxis={"title": {"text": "interruptions"}})
        caption = "Resolved interruptions per time from the crash to its resume."
        figure = {"data": [trace], "layout": layout}
        charts.append(Chart("resolve-times", "Time until resolved", caption, figure))
    if found.reasons:
        charts.append(_reasons_chart(found))
    return charts


def _reasons_chart(found: Aggregates) -> Chart:
    y = [reason or "(no reason)" for reason, *_ in found.reasons]
    resolved = [row[2] for row in found.reasons]
    open_ = [row[1] - row[2] for row in found.reasons]
    traces = [
        {"type": "bar", "orientation": "h", "name": name, "x": x, "y": y, "marker": {"color": c}}
        for name, x, c in (("resolved", resolved, GOOD), ("still open", open_, BAD))
    ]
    layout = _layout(
        barmode="stack",
        height=max(200, 30 * len(y) + 110),
        xaxis={"title": {"text": "interruptions"}},
        yaxis={"autorange": "reversed", "automargin": True, "type": "category"},
    )
    caption = "Interruptions per reason, the most frequent first."
    return Chart(
        "reasons", "Why sessions were interrupted", caption, {"data": traces, "layout": layout}
    )
