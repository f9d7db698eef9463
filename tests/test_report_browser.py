"""The report opened in a real headless Chromium, the distribution's, on each backend's data:
it draws every chart with no console error, in light and dark, and screenshots are left for a
person to look at (in $CONVSTORE_TEST_SCREENSHOTS, else build/report-screenshots/ in the
checkout, which git ignores)."""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import pytest
import report_history
from test_report import embedded

import convstore

if TYPE_CHECKING:
    from selenium.webdriver import Chrome

#: Debian's chromium and chromium-driver packages, of the same version, so that the driver
#: always speaks to its browser (no download of a driver or of a browser at test time).
CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parent.parent
CHROMEDRIVER = Path("/usr/bin/chromedriver")

#: The chart marks plotly draws: bars and markers (g.point path), lines (path.js-line); a
#: bar of height zero is "M0,0Z", which is no mark.
COUNT_MARKS = """
return Array.from(document.querySelectorAll(".chart")).map(function (chart) {
  var marks = chart.querySelectorAll("g.point path, path.js-line, path.point");
  return [chart.id, Array.from(marks).filter(function (m) {
    var d = m.getAttribute("d") || ""; return d.length > 5;
  }).length];
});
"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Chrome]:
    """A headless Chromium driven through chromedriver; skipped, with the reason, outside CI
    when the packages are missing (CI installs them, and fails without them)."""
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.is_file()]
    if missing:
        reason = (
            f"the browser tests need {' and '.join(missing)}: "
            "apt-get install chromium chromium-driver"
        )
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,900"):
        options.add_argument(argument)
    # Nothing may be fetched: the page must open with no network.
    options.add_argument("--proxy-server=127.0.0.1:9")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def screenshots() -> Path:
    """Where the screenshots go: a folder that outlives the run, for a person to open."""
    chosen = os.environ.get("CONVSTORE_TEST_SCREENSHOTS")
    folder = Path(chosen) if chosen else ROOT / "build" / "report-screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def open_page(driver: Chrome, page: Path, scheme: str) -> list[dict[str, Any]]:
    """Open `page` in `scheme` ("light" or "dark"); the console's messages while it loads."""
    driver.execute_cdp_cmd(
        "Emulation.setEmulatedMedia",
        {"features": [{"name": "prefers-color-scheme", "value": scheme}]},
    )
    console(driver)  # what earlier pages logged
    driver.get(page.as_uri())
    return console(driver)


def console(driver: Chrome) -> list[dict[str, Any]]:
    """The browser console's messages since the last call."""
    logged: list[dict[str, Any]] = driver.get_log("browser")  # type: ignore[no-untyped-call]
    return logged


def screenshot(driver: Chrome, path: Path) -> None:
    """The whole page, not only the window, as a PNG."""
    shot = driver.execute_cdp_cmd(
        "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True}
    )
    path.write_bytes(base64.b64decode(shot["data"]))


def drawn(driver: Chrome) -> dict[str, int]:
    """Each chart's marks, once plotly has drawn them."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.wait import WebDriverWait

    def counted(d: Chrome) -> dict[str, int] | Literal[False]:
        marks: dict[str, int] = dict(d.execute_script(COUNT_MARKS))
        return marks if marks and all(marks.values()) else False

    try:
        found: dict[str, int] = WebDriverWait(driver, 15).until(counted)
    except TimeoutException:  # the test's assertion says which chart has no marks
        found = dict(driver.execute_script(COUNT_MARKS))
    return found


@pytest.fixture
async def report(store: convstore.Store, tmp_path: Path) -> Path:
    """The report of `report_history` on each backend, written to a file."""
    await report_history.record(store, datetime.now(UTC))
    path = tmp_path / "report.html"
    path.write_text(await convstore.build_report(store), encoding="utf-8")
    return path


@pytest.fixture
async def empty_report(store: convstore.Store, tmp_path: Path) -> Path:
    """The report of an empty database, written to a file."""
    path = tmp_path / "empty.html"
    path.write_text(await convstore.build_report(store), encoding="utf-8")
    return path


@pytest.mark.slow
@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_page_draws_every_chart_without_an_error(
    browser: Chrome, report: Path, backend: str, scheme: str, screenshots: Path
) -> None:
    """Every chart the page embeds is drawn, with marks, and the console logs no error; the
    header's totals are the embedded summary's; dark mode draws light text on a dark page."""
    logged = open_page(browser, report, scheme)
    marks = drawn(browser)
    data = embedded(report.read_text(encoding="utf-8"))
    assert set(marks) == {f"chart-{c['id']}" for c in data["charts"]}
    assert all(marks.values()), marks
    errors = [entry for entry in logged + console(browser) if entry["level"] == "SEVERE"]
    assert errors == []
    shown = browser.execute_script(
        "return document.querySelector('[data-total=\"attempts\"] b').textContent"
    )
    assert shown == f"{data['totals']['attempts']:,}"
    background = browser.execute_script("return getComputedStyle(document.body).backgroundColor")
    ticks = browser.execute_script(
        "return getComputedStyle(document.querySelector('.chart .xtick text')).fill"
    )
    dark = scheme == "dark"
    assert (_brightness(background) < 100) == dark
    assert (_brightness(ticks) > 150) == dark
    screenshot(browser, screenshots / f"report-{backend}-{scheme}.png")


@pytest.mark.slow
def test_an_empty_page_opens_without_an_error(
    browser: Chrome, empty_report: Path, screenshots: Path, backend: str
) -> None:
    """The page of an empty database says there is nothing yet, and logs no error."""
    logged = open_page(browser, empty_report, "light")
    assert [entry for entry in logged if entry["level"] == "SEVERE"] == []
    text = browser.execute_script("return document.getElementById('nothing-yet').textContent")
    assert text.startswith("Nothing recorded yet")
    screenshot(browser, screenshots / f"report-{backend}-empty.png")


def _brightness(css_color: str) -> float:
    """The mean of the red, green and blue of ``rgb(r, g, b)``."""
    inside = css_color[css_color.index("(") + 1 : css_color.index(")")]
    red, green, blue = (float(part) for part in inside.split(",")[:3])
    return (red + green + blue) / 3
