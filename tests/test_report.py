"""`convstore report` and `build_report`: the page's numbers are those of `stats`, its charts
add up to the history recorded, and an empty database gets a page that says so."""

from __future__ import annotations

import asyncio
import json
import re
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import report_history

import convstore
from convstore._cli.main import main

DATA = re.compile(
    r'<script type="application/json" id="convstore-report-data">(.*?)</script>', re.S
)


def embedded(page: str) -> dict[str, Any]:
    """The data the page embeds, which its charts are drawn from."""
    match = DATA.search(page)
    assert match is not None
    document: dict[str, Any] = json.loads(match[1])
    return document


def chart(data: dict[str, Any], chart_id: str) -> dict[str, Any]:
    """The figure of one chart, by its id."""
    found = [c["figure"] for c in data["charts"] if c["id"] == chart_id]
    assert len(found) == 1, [c["id"] for c in data["charts"]]
    figure: dict[str, Any] = found[0]
    return figure


def bar_totals(figure: dict[str, Any]) -> dict[str, int]:
    """The sum of each bar trace's values, by trace name."""
    return {
        t["name"]: sum(t["x"] if t.get("orientation") == "h" else t["y"])
        for t in figure["data"]
        if t["type"] == "bar"
    }


async def stats_json(url: str, capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    """What `convstore stats --json` prints for the same database and options."""
    capsys.readouterr()
    # In a thread: the command runs its own event loop.
    assert await asyncio.to_thread(main, ["stats", "--url", url, "--json", *args]) == 0
    document: dict[str, Any] = json.loads(capsys.readouterr().out)
    return document


@pytest.fixture
async def history(store: convstore.Store) -> list[convstore.Attempt]:
    """The attempts of `report_history`, recorded in `store` with its interruptions."""
    return await report_history.record(store, datetime.now(UTC))


@pytest.mark.parametrize("operation", [None, "llm.chat"])
async def test_the_page_shows_the_numbers_of_stats(
    store: convstore.Store,
    history: list[convstore.Attempt],
    database_url: str,
    capsys: pytest.CaptureFixture[str],
    operation: str | None,
) -> None:
    """For the same period and operation, the page's summary, totals and interruptions are
    those `convstore stats --json` prints, and its header shows the same totals."""
    since = datetime.now(UTC) - timedelta(hours=24)
    page = await convstore.build_report(store, since=since, operation=operation)
    data = embedded(page)
    options = ["--since", since.isoformat(), *(["--operation", operation] if operation else [])]
    printed = await stats_json(database_url, capsys, *options)
    assert data["summary"] == printed["retries"]
    assert data["interruptions"] == printed["interruptions"]
    kept = [a for a in history if a.created_at >= since and operation in (None, a.operation)]
    assert data["totals"]["attempts"] == len(kept)
    assert data["totals"]["giveups"] == sum(a.outcome == "giveup" for a in kept)
    shown = dict(re.findall(r'data-total="([^"]+)"><b>([^<]+)</b>', page))
    assert shown["attempts"] == f"{len(kept):,}"
    assert shown["interruptions"] == "5"  # the two of two days ago are before `since`
    assert shown["interrupted now"] == "3"


async def test_the_charts_add_up_to_the_history(
    store: convstore.Store, history: list[convstore.Attempt]
) -> None:
    """Attempts per outcome, waits, failures and interruptions drawn are those recorded."""
    data = embedded(await convstore.build_report(store))
    names = {"giveup": "give up", "non_retryable": "non-retryable"}
    by_outcome = Counter(names.get(a.outcome, str(a.outcome)) for a in history)
    attempts = chart(data, "attempts")
    assert bar_totals(attempts) == dict(by_outcome)
    assert {t["name"] for t in attempts["data"] if t["type"] == "scatter"} == {
        "rate limited (429), % of attempts",
        "overloaded (503, 529), % of attempts",
    }
    delays = Counter(a.operation for a in history if a.delay_s is not None)
    assert bar_totals(chart(data, "delays")) == dict(delays)
    asked = Counter(a.operation for a in history if a.retry_after_s is not None)
    assert bar_totals(chart(data, "retry-after")) == dict(asked)
    cooled = Counter(a.operation for a in history if a.cooldown_wait_s)
    assert bar_totals(chart(data, "cooldowns")) == dict(cooled)
    failures = Counter(str(a.error_type) for a in history if a.error_type is not None)
    assert bar_totals(chart(data, "failures")) == dict(failures)
    assert bar_totals(chart(data, "crashes")) == {"resolved": 4, "still open": 3}
    assert sum(bar_totals(chart(data, "resolve-times")).values()) == 4
    reasons = chart(data, "reasons")
    assert reasons["data"][0]["y"][0] == "deploy"  # 3 times, then "worker killed" twice


async def test_an_empty_database_gets_a_page_that_says_nothing_is_recorded(
    store: convstore.Store,
) -> None:
    """With no attempt and no interruption the page says there is nothing yet, draws no
    chart and, needing no plotly.js, stays small."""
    page = await convstore.build_report(store)
    assert 'id="nothing-yet"' in page
    assert "Nothing recorded yet" in page
    assert embedded(page)["charts"] == []
    assert len(page) < 20_000


async def test_a_period_with_nothing_says_so(
    store: convstore.Store, history: list[convstore.Attempt]
) -> None:
    """A period after the last record, or an operation never called, says that it holds no
    attempt, and still lists the sessions interrupted now."""
    later = datetime.now(UTC) + timedelta(minutes=1)
    page = await convstore.build_report(store, since=later)
    assert "No attempt recorded." in page
    assert "No interruption in this period." in page
    assert "Sessions interrupted now (3)" in page
    assert embedded(page)["charts"] == []
    page = await convstore.build_report(store, operation="no.such.operation")
    assert embedded(page)["summary"] == []
    assert "No attempt recorded." in page


async def test_a_naive_since_is_refused(store: convstore.Store) -> None:
    """`since` without a time zone raises InvalidArgument rather than guessing."""
    with pytest.raises(convstore.InvalidArgument, match="timezone-aware"):
        await convstore.build_report(store, since=datetime(2026, 1, 1))


def test_the_command_writes_the_page(
    database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`convstore report -o FILE` writes a page with no address to fetch anything from, and
    `-o -` prints the same page."""

    async def fill() -> None:
        async with convstore.connect(database_url) as store:
            await report_history.record(store, datetime.now(UTC))

    asyncio.run(fill())
    output = tmp_path / "report.html"
    assert main(["report", "--url", database_url, "--since", "2d", "-o", str(output)]) == 0
    assert f"wrote {output}" in capsys.readouterr().out
    page = output.read_text(encoding="utf-8")
    assert embedded(page)["charts"]
    # Self-contained: no script, style or image is loaded from an address.
    assert not re.search(r"""<(script|link|img)[^>]+(src|href)=["']?https?:""", page)
    assert main(["report", "--url", database_url, "--since", "2d", "-o", "-"]) == 0
    printed = capsys.readouterr().out
    assert embedded(printed)["summary"] == embedded(page)["summary"]


async def test_without_plotly_the_error_names_the_extra(
    store: convstore.Store, history: list[convstore.Attempt], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without plotly, building a page with charts raises ConfigurationError naming the
    report extra that installs it."""
    monkeypatch.setitem(sys.modules, "plotly.offline", None)
    with pytest.raises(convstore.ConfigurationError, match=r"convstore\[report\]"):
        await convstore.build_report(store)


async def test_the_header_names_the_database_without_its_password(postgres_url: str) -> None:
    """The page names the database it reads, with its password left out."""
    from sqlalchemy.engine import make_url

    url = make_url(postgres_url).set(password="s3cret-pw")
    async with convstore.connect(url.render_as_string(hide_password=False)) as store:
        page = await convstore.build_report(store)
    assert "s3cret-pw" not in page
    assert f"{url.host}:{url.port}/{url.database}" in embedded(page)["database"]
