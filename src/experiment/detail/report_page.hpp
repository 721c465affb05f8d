#pragma once
// The page of report.html: markup, style and the script that draws the charts from the data
// embedded in it. Self-contained on purpose: the report opens from a file, without a network.

namespace tabula::experiment::detail {

/// The page before the embedded JSON data.
inline constexpr const char* kReportHead = R"html(<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>tabula sweep report</title>
<style>
  body { font: 14px/1.45 system-ui, sans-serif; margin: 24px 32px; color: #1d232a; }
  h1 { font-size: 22px; margin: 0 0 4px; }
  h2 { font-size: 16px; margin: 28px 0 8px; }
  .sub { color: #5b6672; margin: 0 0 12px; }
  .cards { display: flex; gap: 12px; flex-wrap: wrap; }
  .card { border: 1px solid #d7dde3; border-radius: 6px; padding: 8px 14px; min-width: 110px; }
  .card b { display: block; font-size: 18px; }
  table { border-collapse: collapse; font-variant-numeric: tabular-nums; }
  th, td { border-bottom: 1px solid #e3e7eb; padding: 4px 10px; text-align: right; white-space: nowrap; }
  th { background: #f4f6f8; position: sticky; top: 0; }
  td.l, th.l { text-align: left; }
  tr.failed td { color: #a3262a; }
  tr.best td { background: #eef7ee; }
  .flag { color: #b35c00; font-weight: 600; }
  .err { max-width: 420px; overflow: hidden; text-overflow: ellipsis; text-align: left; }
  svg { background: #fff; border: 1px solid #d7dde3; border-radius: 6px; }
  svg text { font: 11px system-ui, sans-serif; fill: #3b4450; }
  .legend { display: flex; gap: 14px; flex-wrap: wrap; margin: 6px 0; font-size: 12px; }
  .legend span::before { content: ""; display: inline-block; width: 12px; height: 12px;
    margin-right: 5px; vertical-align: -2px; background: var(--c); border-radius: 2px; }
</style>
</head>
<body>
<h1 id="title"></h1>
<p class="sub" id="subtitle"></p>
<div class="cards" id="cards"></div>
<h2 id="metric-title"></h2>
<svg id="metric-chart" width="960" height="280" role="img"></svg>
<h2>Memory across the sweep</h2>
<p class="sub">Library bytes in use, stacked by category (all sessions of the trial's process),
and the process's resident set size (RSS) as the OS counts it. Vertical lines mark trial starts.</p>
<div class="legend" id="legend"></div>
<svg id="memory-chart" width="960" height="340" role="img"></svg>
<h2>Peak library memory per trial</h2>
<p class="sub">What each trial's own session held at its peak, by category; after clearing it is
zero for every trial that gave its memory back.</p>
<svg id="peak-chart" width="960" height="260" role="img"></svg>
<h2>Trials, best first</h2>
<table id="trials"></table>
<script type="application/json" id="data">)html";

/// The page after the embedded JSON data.
inline constexpr const char* kReportTail = R"html(</script>
<script>
"use strict";
const D = JSON.parse(document.getElementById("data").textContent);
const SVG = "http://www.w3.org/2000/svg";
const COLORS = ["#3d6fb4", "#e08a2c", "#7a5cb8", "#3a9d5d", "#9aa5b1", "#c9b23a", "#c45a8e"];

function bytes(b) {
  if (b === null || b === undefined) return "";
  const neg = b < 0; let v = Math.abs(b);
  const units = ["B", "KiB", "MiB", "GiB", "TiB"]; let u = 0;
  while (v >= 1024 && u < units.length - 1) { v /= 1024; ++u; }
  return (neg ? "-" : "") + (u === 0 ? v.toFixed(0) : v.toFixed(1)) + " " + units[u];
}
function num(x) { return x === null || x === undefined ? "" : (Math.abs(x) >= 100 ? x.toFixed(1) : x.toPrecision(4)); }
function seconds(s) {
  if (s < 10) return (Math.round(s * 100) / 100) + " s";
  return s < 60 ? s.toFixed(1) + " s" : Math.floor(s / 60) + ":" + String(Math.round(s % 60)).padStart(2, "0");
}
function node(tag, attrs, parent, text) {
  const e = document.createElementNS(SVG, tag);
  for (const k in attrs) e.setAttribute(k, attrs[k]);
  if (text !== undefined) e.textContent = text;
  if (parent) parent.appendChild(e);
  return e;
}
function ticks(lo, hi, n) {
  const span = hi - lo || 1, step0 = span / n, mag = Math.pow(10, Math.floor(Math.log10(step0)));
  const step = [1, 2, 5, 10].map(m => m * mag).find(s => s >= step0);
  const out = []; for (let v = Math.ceil(lo / step) * step; v <= hi + 1e-12; v += step) out.push(v);
  return out;
}
// Ticks of a byte axis at round numbers of its unit (KiB, MiB, GiB), not of bytes.
function byteTicks(lo, hi, n) {
  const unit = Math.pow(1024, Math.max(0, Math.floor(Math.log(Math.max(hi, 1)) / Math.log(1024))));
  return ticks(lo / unit, hi / unit, n).map(v => v * unit);
}
// Axes of a plot in `svg`; returns the scales.
function frame(svg, x0, x1, y0, y1, fy, fx, label) {
  const W = +svg.getAttribute("width"), H = +svg.getAttribute("height");
  const L = 78, R = 16, T = 14, B = 34;
  const sx = v => L + (x1 === x0 ? 0.5 : (v - x0) / (x1 - x0)) * (W - L - R);
  const sy = v => H - B - (y1 === y0 ? 0.5 : (v - y0) / (y1 - y0)) * (H - T - B);
  for (const v of (fy === bytes ? byteTicks : ticks)(y0, y1, 5)) {
    node("line", {x1: L, x2: W - R, y1: sy(v), y2: sy(v), stroke: "#eef1f4"}, svg);
    node("text", {x: L - 6, y: sy(v) + 4, "text-anchor": "end"}, svg, fy(v));
  }
  for (const v of ticks(x0, x1, 8)) node("text", {x: sx(v), y: H - B + 16, "text-anchor": "middle"}, svg, fx(v));
  node("line", {x1: L, x2: W - R, y1: H - B, y2: H - B, stroke: "#8a949e"}, svg);
  node("line", {x1: L, x2: L, y1: T, y2: H - B, stroke: "#8a949e"}, svg);
  node("text", {x: W - R, y: H - 4, "text-anchor": "end"}, svg, label);
  return {sx, sy, W, H, L, R, T, B};
}

function drawMetric() {
  const svg = document.getElementById("metric-chart");
  const m = D.sweep.metric;
  const trials = D.trials.slice().sort((a, b) => a.trial - b.trial);
  const values = trials.filter(t => t.status === "ok" && t.metrics[m] !== null && t.metrics[m] !== undefined).map(t => t.metrics[m]);
  let lo = Math.min(0, ...values), hi = Math.max(...values, 0);
  if (!isFinite(lo) || !isFinite(hi) || lo === hi) { lo = 0; hi = 1; }
  const n = Math.max(1, ...trials.map(t => t.trial + 1));
  const f = frame(svg, -0.5, n - 0.5, lo, hi, num, v => Number.isInteger(v) && v >= 0 ? String(v) : "", "trial");
  const w = Math.max(2, (f.sx(1) - f.sx(0)) * 0.7);
  let drawn = 0;
  for (const t of trials) {
    const x = f.sx(t.trial);
    if (t.status === "ok" && t.metrics[m] !== null && t.metrics[m] !== undefined) {
      const v = t.metrics[m], y = f.sy(v), y0 = f.sy(Math.max(lo, 0));
      const r = node("rect", {x: x - w / 2, y: Math.min(y, y0), width: w, height: Math.max(1, Math.abs(y0 - y)),
        fill: t.memory.leaked ? "#e08a2c" : "#3d6fb4", class: "bar"}, svg);
      node("title", {}, r, "trial " + t.trial + ": " + m + " " + num(v));
    } else {
      const y = f.sy(lo) - 8;
      node("path", {d: `M${x - 5},${y - 5}L${x + 5},${y + 5}M${x - 5},${y + 5}L${x + 5},${y - 5}`,
        stroke: "#a3262a", "stroke-width": 2, class: "failed-mark"}, svg);
    }
    ++drawn;
  }
  svg.dataset.points = drawn;
  return drawn > 0;
}

function drawMemory() {
  const svg = document.getElementById("memory-chart");
  const S = D.timeline;  // [t, current, reserved, rss, weights..other]
  const cats = D.categories;
  const legend = document.getElementById("legend");
  cats.forEach((c, i) => { const s = document.createElement("span"); s.style.setProperty("--c", COLORS[i]); s.textContent = c; legend.appendChild(s); });
  const rssKey = document.createElement("span"); rssKey.style.setProperty("--c", "#1d232a"); rssKey.textContent = "RSS (OS)"; legend.appendChild(rssKey);
  if (S.length === 0) { svg.dataset.points = 0; return false; }
  const t0 = S[0][0], t1 = S[S.length - 1][0];
  const top = Math.max(...S.map(s => Math.max(s[3], s.slice(4).reduce((a, b) => a + b, 0))));
  const f = frame(svg, t0, Math.max(t1, t0 + 1e-3), 0, top * 1.05 || 1, bytes, v => seconds(v), "seconds since the sweep began");
  const base = S.map(() => 0);
  cats.forEach((c, k) => {
    let up = "", down = "";
    S.forEach((s, i) => { up += (i ? "L" : "M") + f.sx(s[0]).toFixed(1) + "," + f.sy(base[i] + s[4 + k]).toFixed(1); });
    for (let i = S.length - 1; i >= 0; --i) down += "L" + f.sx(S[i][0]).toFixed(1) + "," + f.sy(base[i]).toFixed(1);
    S.forEach((s, i) => { base[i] += s[4 + k]; });
    node("path", {d: up + down + "Z", fill: COLORS[k], "fill-opacity": 0.8, stroke: "none", class: "area", "data-category": c}, svg);
  });
  let line = "";
  S.forEach((s, i) => { line += (i ? "L" : "M") + f.sx(s[0]).toFixed(1) + "," + f.sy(s[3]).toFixed(1); });
  node("path", {d: line, fill: "none", stroke: "#1d232a", "stroke-width": 1.5, class: "rss"}, svg);
  for (const t of D.trials) {
    const x = f.sx(t.started);
    node("line", {x1: x, x2: x, y1: f.T, y2: f.H - f.B, stroke: "#c3cad1", "stroke-dasharray": "3,3"}, svg);
    node("text", {x: x + 3, y: f.T + 10}, svg, String(t.trial));
  }
  svg.dataset.points = S.length;
  return true;
}

function drawPeaks() {
  const svg = document.getElementById("peak-chart");
  const cats = D.categories;
  const trials = D.trials.slice().sort((a, b) => a.trial - b.trial);
  const n = Math.max(1, ...trials.map(t => t.trial + 1));
  const top = Math.max(1, ...trials.map(t => cats.reduce((a, c) => a + t.memory.peak_by_category[c], 0)));
  const f = frame(svg, -0.5, n - 0.5, 0, top * 1.05, bytes, v => Number.isInteger(v) && v >= 0 ? String(v) : "", "trial");
  const w = Math.max(2, (f.sx(1) - f.sx(0)) * 0.7);
  let drawn = 0;
  for (const t of trials) {
    let base = 0;
    cats.forEach((c, k) => {
      const v = t.memory.peak_by_category[c];
      if (v <= 0) return;
      const r = node("rect", {x: f.sx(t.trial) - w / 2, y: f.sy(base + v), width: w,
        height: Math.max(0.5, f.sy(base) - f.sy(base + v)), fill: COLORS[k], class: "peak"}, svg);
      node("title", {}, r, "trial " + t.trial + ": " + c + " " + bytes(v));
      base += v;
    });
    if (base > 0) ++drawn;
  }
  svg.dataset.points = drawn;
  return true;
}

function drawTable() {
  const m = D.sweep.metric, sign = D.sweep.goal === "maximize" ? -1 : 1;
  const rows = D.trials.slice().sort((a, b) => {
    const va = a.status === "ok" ? a.metrics[m] : null, vb = b.status === "ok" ? b.metrics[m] : null;
    if (va === null || va === undefined) return (vb === null || vb === undefined) ? a.trial - b.trial : 1;
    if (vb === null || vb === undefined) return -1;
    return sign * (va - vb) || a.trial - b.trial;
  });
  const metricNames = [...new Set(D.trials.flatMap(t => Object.keys(t.metrics)))].sort();
  const table = document.getElementById("trials");
  const head = ["#", "trial", ...D.sweep.parameters, ...metricNames, "time", "peak (library)", "RSS after", "RSS growth", "after clear", "status"];
  table.innerHTML = "<tr>" + head.map((h, i) => `<th class="${i >= 2 && i < 2 + D.sweep.parameters.length ? "l" : ""}">${h}</th>`).join("") + "</tr>";
  rows.forEach((t, rank) => {
    const tr = document.createElement("tr");
    if (t.status !== "ok") tr.className = "failed"; else if (rank === 0) tr.className = "best";
    const cells = [rank + 1, t.trial, ...D.sweep.parameters.map(p => t.params[p]), ...metricNames.map(k => num(t.metrics[k])),
      seconds(t.seconds), bytes(t.memory.library_peak), bytes(t.memory.rss_after), bytes(t.memory.rss_growth),
      bytes(t.memory.current_after_clear + t.memory.reserved_after_clear)];
    tr.innerHTML = cells.map((c, i) => `<td class="${i >= 2 && i < 2 + D.sweep.parameters.length ? "l" : ""}"></td>`).join("");
    cells.forEach((c, i) => { tr.children[i].textContent = c === undefined ? "" : String(c); });
    const status = document.createElement("td"); status.className = "l err";
    status.textContent = t.status === "ok" ? (t.memory.leaked ? "ok, left memory behind" : "ok") : "failed (" + t.error.type + "): " + t.error.message;
    if (t.memory.leaked) status.classList.add("flag");
    status.title = status.textContent;
    tr.appendChild(status);
    table.appendChild(tr);
  });
}

function drawHeader() {
  const s = D.sweep;
  document.getElementById("title").textContent = "Sweep " + s.name;
  document.getElementById("subtitle").textContent = (s.description ? s.description + " \u2014 " : "") +
    s.method + " search over " + (s.parameters.join(", ") || "no parameters") + ", from " + s.path;
  document.getElementById("metric-title").textContent = s.metric + " per trial (" + s.goal + ")";
  const ok = D.trials.filter(t => t.status === "ok"), leaked = D.trials.filter(t => t.memory.leaked);
  const growth = D.trials.map(t => t.memory.rss_growth);
  const cards = [["trials", D.trials.length + " / " + s.planned], ["ok", ok.length], ["failed", D.trials.length - ok.length],
    ["left memory", leaked.length], ["largest RSS growth", growth.length ? bytes(Math.max(...growth)) : "-"],
    ["time", seconds(D.trials.reduce((a, t) => a + t.seconds, 0))]];
  const box = document.getElementById("cards");
  for (const [k, v] of cards) { const c = document.createElement("div"); c.className = "card"; c.innerHTML = "<b></b>"; c.firstChild.textContent = v; c.appendChild(document.createTextNode(k)); box.appendChild(c); }
}

drawHeader();
drawTable();
const drawn = (drawMetric() ? 1 : 0) + (drawMemory() ? 1 : 0) + (drawPeaks() ? 1 : 0);
document.body.dataset.chartsDrawn = String(drawn);
</script>
</body>
</html>
)html";

}  // namespace tabula::experiment::detail
