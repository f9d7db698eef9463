"""The report: one self-contained HTML page of the retry and crash history of a database."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime
from html import escape
from typing import TYPE_CHECKING, Any

from convstore._records import InterruptedSession, RetrySummary
from convstore._report.figures import (
    Chart,
    attempts_chart,
    crash_charts,
    failures_chart,
    outcomes_chart,
    wait_charts,
)
from convstore._report.template import SCRIPT, STYLE
from convstore._storage.aggregates import Aggregates, Scope, aggregates
from convstore._storage.types import utcnow
from convstore.exceptions import ConfigurationError, InvalidArgument

if TYPE_CHECKING:
    from convstore._storage.store import Store

#: The most interrupted sessions the page lists by name.
INTERRUPTED_LISTED = 25


async def build_report(
    store: Store, *, since: datetime | None = None, operation: str | None = None
) -> str:
    """The report of `store`'s history (since a time, of one operation) as one HTML page that
    needs no network to open; requires the ``report`` extra (plotly)."""
    if since is not None and (not isinstance(since, datetime) or since.tzinfo is None):
        raise InvalidArgument(f"since must be a timezone-aware datetime, not {since!r}")
    now = utcnow()
    # The summary and the aggregates each scan the period's rows: on connections of their own,
    # the database scans them at the same time (a build takes the longer of the two, not both).
    async with asyncio.TaskGroup() as group:
        summarised = group.create_task(store.retry_summary(since=since, operation=operation))
        aggregated = group.create_task(aggregates(store.engine, Scope(since, operation), now))
        listed = group.create_task(store.list_interrupted_sessions(INTERRUPTED_LISTED))
    summary, found, interrupted = summarised.result(), aggregated.result(), listed.result()
    charts = [
        chart
        for chart in (attempts_chart(found), *wait_charts(found), outcomes_chart(summary))
        if chart is not None
    ]
    charts += [c for c in (failures_chart(found), *crash_charts(found)) if c is not None]
    page = _Page(since, operation, now, summary, found, interrupted, charts)
    return page.html(_plotly_js() if charts else "")


def _plotly_js() -> str:
    """plotly.js, minified, to be inlined in the page."""
    try:
        from plotly.offline import get_plotlyjs
    except ImportError as exc:
        raise ConfigurationError(
            "the report draws its charts with plotly, which is not installed: "
            "pip install 'convstore[report]'"
        ) from exc
    script: str = get_plotlyjs()
    return script


def totals(summary: Sequence[RetrySummary]) -> dict[str, float]:
    """The sums of `stats`' additive columns over its rows."""
    return {
        "attempts": sum(r.attempts for r in summary),
        "retries": sum(r.retries for r in summary),
        "giveups": sum(r.giveups for r in summary),
        "successes_after_retry": sum(r.successes_after_retry for r in summary),
        "total_delay_s": round(sum(r.total_delay_s for r in summary), 6),
        "total_cooldown_wait_s": round(sum(r.total_cooldown_wait_s for r in summary), 6),
    }


def _embedded(document: Any) -> str:
    """JSON that cannot end the script element it sits in."""
    text = json.dumps(document, ensure_ascii=False, default=_iso, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _iso(value: object) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)


def _when(value: datetime | None) -> str:
    return "-" if value is None else value.strftime("%Y-%m-%d %H:%M:%S")


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}"


def _table(head: Sequence[str], rows: Sequence[Sequence[str]], numeric: set[int]) -> str:
    def cell(tag: str, index: int, text: str) -> str:
        kind = ' class="n"' if index in numeric else ""
        return f"<{tag}{kind}>{escape(text)}</{tag}>"

    header = "".join(cell("th", i, text) for i, text in enumerate(head))
    body = "".join(
        "<tr>" + "".join(cell("td", i, text) for i, text in enumerate(row)) + "</tr>"
        for row in rows
    )
    table = f"<table><thead><tr>{header}</tr></thead><tbody>{body}</tbody></table>"
    return f'<div class="table">{table}</div>'


class _Page:
    """The page's parts, written out as HTML."""

    def __init__(
        self,
        since: datetime | None,
        operation: str | None,
        now: datetime,
        summary: list[RetrySummary],
        found: Aggregates,
        interrupted: list[InterruptedSession],
        charts: list[Chart],
    ) -> None:
        self.since, self.operation, self.now = since, operation, now
        self.summary, self.found, self.interrupted, self.charts = (
            summary,
            found,
            interrupted,
            charts,
        )

    def html(self, plotly_js: str) -> str:
        """The whole page."""
        data = {
            "database": self.found.database,
            "since": self.since,
            "operation": self.operation,
            "generated_at": self.now,
            "summary": [asdict(row) for row in self.summary],
            "totals": totals(self.summary),
            "interruptions": [
                {"reason": r, "interruptions": n, "resolved": k, "latest": latest}
                for r, n, k, latest in self.found.reasons
            ],
            "interrupted_now": self.found.interrupted_now,
            "charts": [{"id": c.id, "figure": c.figure} for c in self.charts],
        }
        scripts = f"<script>{plotly_js}</script>\n<script>{SCRIPT}</script>" if self.charts else ""
        return (
            '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            '<meta name="color-scheme" content="light dark">\n'
            f"<title>convstore report: {escape(self.found.database)}</title>\n"
            f"<style>{STYLE}</style>\n</head>\n<body>\n{self.header()}\n{self.body()}\n"
            f'<script type="application/json" id="convstore-report-data">{_embedded(data)}'
            f"</script>\n{scripts}\n</body>\n</html>\n"
        )

    def header(self) -> str:
        """The database, the time range and the totals of `stats`."""
        period = (
            "all history" if self.since is None else f"since {_when(self.since)} UTC"
        ) + f", up to {_when(self.now)} UTC"
        if self.found.buckets is not None and self.since is None:
            period += f" (from {_when(self.found.buckets.start)} UTC)"
        fields = (
            ("database", self.found.database),
            ("period", period),
            ("operation", self.operation or "every operation"),
        )
        items = "".join(f"<dt>{k}</dt><dd>{escape(v)}</dd>" for k, v in fields)
        sums = totals(self.summary)
        crashes = sum(row[1] for row in self.found.reasons)
        cards = (
            ("attempts", f"{sums['attempts']:,}"),
            ("retries", f"{sums['retries']:,}"),
            ("gave up", f"{sums['giveups']:,}"),
            ("ok after retry", f"{sums['successes_after_retry']:,}"),
            ("waited (s)", _seconds(sums["total_delay_s"])),
            ("cooldown wait (s)", _seconds(sums["total_cooldown_wait_s"])),
            ("interruptions", f"{crashes:,}"),
            ("interrupted now", f"{self.found.interrupted_now:,}"),
        )
        boxes = "".join(
            f'<div class="total" data-total="{escape(k)}"><b>{v}</b><span>{escape(k)}</span></div>'
            for k, v in cards
        )
        return (
            f'<header><h1>convstore report</h1><dl class="header">{items}</dl>'
            f'<div class="totals">{boxes}</div></header>'
        )

    def body(self) -> str:
        """The sections: retries, waits, errors, crashes; or a note that nothing is recorded."""
        if not self.summary and not self.found.reasons and not self.found.interrupted_now:
            return (
                '<p class="empty" id="nothing-yet">Nothing recorded yet: no attempt and no '
                "interruption in this period. Calls made through convstore's retries and "
                "sessions marked interrupted appear here once they happen.</p>"
            )
        return "\n".join(
            (
                "<h2>Retried calls</h2>",
                '<p class="caption">The rows of <code>convstore stats</code> for this period.</p>',
                self.stats_table() if self.summary else '<p class="empty">No attempt recorded.</p>',
                self.charts_of("attempts"),
                "<h2>Waits</h2>",
                self.charts_of("delays", "retry-after", "cooldowns") or _none("No wait recorded."),
                "<h2>Errors</h2>",
                self.charts_of("outcomes", "failures") or _none("No error recorded."),
                "<h2>Crashes</h2>",
                self.charts_of("crashes", "resolve-times", "reasons")
                or _none("No interruption in this period."),
                self.crash_tables(),
            )
        )

    def charts_of(self, *ids: str) -> str:
        return "\n".join(
            f'<section id="{c.id}"><h3>{escape(c.title)}</h3>'
            f'<p class="caption">{escape(c.caption)}</p>'
            f'<div class="chart" id="chart-{c.id}"></div></section>'
            for c in self.charts
            if c.id in ids
        )

    def stats_table(self) -> str:
        head = ["operation", "error type", "calls", "attempts", "retries", "gave up"]
        head += ["ok after retry", "waited (s)", "p95 wait (s)", "cooldown wait (s)"]
        rows = [
            [
                r.operation,
                r.error_type or "none",
                *(f"{n:,}" for n in (r.calls, r.attempts, r.retries, r.giveups)),
                f"{r.successes_after_retry:,}",
                *(_seconds(s) for s in (r.total_delay_s, r.p95_delay_s, r.total_cooldown_wait_s)),
            ]
            for r in self.summary
        ]
        return _table(head, rows, set(range(2, 10)))

    def crash_tables(self) -> str:
        parts = []
        if self.found.reasons:
            rows = [
                [reason or "(no reason)", f"{n:,}", f"{k:,}", _when(latest)]
                for reason, n, k, latest in self.found.reasons
            ]
            parts.append("<h3>Interruptions by reason</h3>")
            parts.append(_table(["reason", "times", "resolved", "latest (UTC)"], rows, {1, 2}))
        parts.append(f"<h3>Sessions interrupted now ({self.found.interrupted_now:,})</h3>")
        if self.interrupted:
            rows = [
                [s.session_id, f"{s.message_count:,}", _when(s.interrupted_at), s.reason or "-"]
                for s in self.interrupted
            ]
            head = ["session", "messages", "interrupted (UTC)", "reason"]
            parts.append(_table(head, rows, {1}))
            if self.found.interrupted_now > len(rows):
                parts.append(f'<p class="caption">The newest {len(rows)} shown.</p>')
        else:
            parts.append('<p class="empty">None: every session was resumed.</p>')
        return "\n".join(parts)


def _none(text: str) -> str:
    return f'<p class="empty">{escape(text)}</p>'
