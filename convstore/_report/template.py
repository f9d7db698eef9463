"""The page around the charts: its style, light and dark, and the script that draws them."""

from __future__ import annotations

STYLE = """
:root { color-scheme: light dark; --fg: #1d2129; --muted: #5b6270; --bg: #ffffff;
  --panel: #f5f6f8; --line: #d9dce1; --grid: #e3e5e9; --accent: #1f77d4; }
@media (prefers-color-scheme: dark) {
  :root { --fg: #e6e8eb; --muted: #a0a6b0; --bg: #16181d; --panel: #1f2229; --line: #363a44;
    --grid: #2c3038; --accent: #5aa6f0; }
}
* { box-sizing: border-box; }
body { margin: 0; padding: 24px clamp(12px, 4vw, 48px); background: var(--bg); color: var(--fg);
  font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
h1 { font-size: 1.6em; margin: 0 0 4px; }
h2 { font-size: 1.25em; margin: 36px 0 8px; border-bottom: 1px solid var(--line);
  padding-bottom: 4px; }
h3 { font-size: 1.05em; margin: 20px 0 2px; }
p.caption, .meta, .empty { color: var(--muted); margin: 2px 0 6px; }
.empty { font-style: italic; }
dl.header { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; margin: 12px 0; }
dl.header dt { color: var(--muted); }
dl.header dd { margin: 0; overflow-wrap: anywhere; }
.totals { display: flex; flex-wrap: wrap; gap: 10px; margin: 12px 0; }
.total { background: var(--panel); border: 1px solid var(--line); border-radius: 6px;
  padding: 8px 14px; min-width: 120px; }
.total b { display: block; font-size: 1.35em; font-variant-numeric: tabular-nums; }
.total span { color: var(--muted); font-size: 0.85em; }
.table { overflow-x: auto; }
table { border-collapse: collapse; margin: 8px 0; font-variant-numeric: tabular-nums; }
th, td { border-bottom: 1px solid var(--line); padding: 4px 10px; text-align: left;
  vertical-align: top; }
th { color: var(--muted); font-weight: 600; font-size: 0.85em; }
td.n, th.n { text-align: right; }
.chart { width: 100%; min-height: 320px; }
footer { margin-top: 40px; color: var(--muted); font-size: 0.85em; }
"""

SCRIPT = """
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("convstore-report-data").textContent);
  var dark = window.matchMedia("(prefers-color-scheme: dark)");
  function themed(layout) {
    var css = getComputedStyle(document.documentElement);
    var fg = css.getPropertyValue("--fg").trim(), grid = css.getPropertyValue("--grid").trim();
    var out = JSON.parse(JSON.stringify(layout));
    out.paper_bgcolor = "rgba(0,0,0,0)";
    out.plot_bgcolor = "rgba(0,0,0,0)";
    out.font = { color: fg, family: "system-ui, -apple-system, Segoe UI, Roboto, sans-serif" };
    ["xaxis", "yaxis", "yaxis2"].forEach(function (axis) {
      if (axis === "yaxis2" && !out.yaxis2) { return; }
      out[axis] = Object.assign({}, out[axis] || {},
        { gridcolor: grid, linecolor: grid, zerolinecolor: grid });
    });
    return out;
  }
  var config = { displaylogo: false, responsive: true,
    modeBarButtonsToRemove: ["sendDataToCloud", "lasso2d", "select2d"] };
  function draw() {
    data.charts.forEach(function (chart) {
      var element = document.getElementById("chart-" + chart.id);
      Plotly.react(element, chart.figure.data, themed(chart.figure.layout), config);
    });
  }
  draw();
  if (dark.addEventListener) { dark.addEventListener("change", draw); }
})();
"""
