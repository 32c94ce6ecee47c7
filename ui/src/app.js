// Cairn's web UI: an expression browser (table and graph) and status
// pages, over the Prometheus HTTP API the server answers. No framework:
// the DOM is built by hand; the graph is uPlot.
import uPlot from "uplot";

const $ = (tag, attrs = {}, ...kids) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "on") for (const [ev, f] of Object.entries(v)) e.addEventListener(ev, f);
    else if (k === "text") e.textContent = v;
    else e.setAttribute(k, v);
  }
  for (const k of kids) if (k != null) e.append(k);
  return e;
};

async function api(path, params = {}) {
  const body = new URLSearchParams(params);
  const r = await fetch(path + (Object.keys(params).length ? "?" + body : ""));
  let j;
  try {
    j = await r.json();
  } catch (e) {
    throw new Error(`${path}: HTTP ${r.status}`);
  }
  if (j.status !== "success") throw new Error(`${j.errorType || "error"}: ${j.error || r.status}`);
  return j;
}

function labels(m) {
  const name = m.__name__ || "";
  const rest = Object.entries(m)
    .filter(([k]) => k !== "__name__")
    .map(([k, v]) => `${k}="${v}"`)
    .join(", ");
  return rest ? `${name}{${rest}}` : name || "{}";
}

// Parses "1h", "30m", "15s", "2d" into seconds.
function seconds(s) {
  const m = /^(\d+(?:\.\d+)?)([smhdw])$/.exec(s.trim());
  if (!m) return NaN;
  return parseFloat(m[1]) * { s: 1, m: 60, h: 3600, d: 86400, w: 604800 }[m[2]];
}

function graphPage(main) {
  const q = new URLSearchParams(location.search);
  const expr = $("input", { type: "text", id: "expr", list: "metric-names", placeholder: "Expression (press Enter)", value: q.get("expr") || "" });
  const names = $("datalist", { id: "metric-names" });
  const range = $("input", { id: "range", value: q.get("range") || "1h" });
  const step = $("input", { id: "step", placeholder: "auto", value: q.get("step") || "" });
  const res = $("select", { id: "resolution" }, ...["auto", "raw", "5m", "1h"].map((r) => $("option", { value: r, text: r })));
  res.value = q.get("max_source_resolution") || "auto";
  const out = $("div", { id: "out" });
  const err = $("div", { class: "error", id: "error" });
  const warn = $("div", { class: "warn", id: "warn" });
  let tab = q.get("tab") || "graph";
  const tabs = $("div", { class: "tabs" });
  const run = () => {
    const p = new URLSearchParams({ expr: expr.value, range: range.value, step: step.value, tab, max_source_resolution: res.value });
    history.replaceState(null, "", "/graph?" + p);
    execute();
  };
  for (const t of ["graph", "table"]) {
    tabs.append($("button", { class: t === tab ? "on" : "", text: t === "graph" ? "Graph" : "Table", on: { click: () => { tab = t; for (const b of tabs.children) b.className = b.textContent.toLowerCase() === t ? "on" : ""; run(); } } }));
  }
  expr.addEventListener("keydown", (e) => { if (e.key === "Enter") run(); });
  main.append(
    $("div", { class: "query" }, expr, names, $("button", { id: "execute", text: "Execute", on: { click: run } })),
    $("div", { class: "controls" },
      $("label", { text: "Range " }, range),
      $("label", { text: "Step " }, step),
      $("label", { text: "Source resolution " }, res),
      tabs),
    err, warn, out);
  api("/api/v1/label/__name__/values").then((j) => {
    for (const n of j.data) names.append($("option", { value: n }));
  }).catch(() => {});

  async function execute() {
    err.textContent = "";
    warn.textContent = "";
    out.replaceChildren();
    if (!expr.value.trim()) return;
    const end = Date.now() / 1000;
    try {
      if (tab === "table") {
        const j = await api("/api/v1/query", { query: expr.value, time: end.toFixed(3) });
        if (j.warnings) warn.textContent = j.warnings.join("\n");
        out.append(table(j.data));
        return;
      }
      const span = seconds(range.value);
      if (!(span > 0)) throw new Error(`bad range "${range.value}": use 15m, 1h, 2d, ...`);
      const st = step.value ? seconds(step.value) : Math.max(1, Math.round(span / 250));
      if (!(st > 0)) throw new Error(`bad step "${step.value}"`);
      const params = { query: expr.value, start: (end - span).toFixed(3), end: end.toFixed(3), step: String(st) };
      if (res.value !== "auto") params.max_source_resolution = res.value;
      const j = await api("/api/v1/query_range", params);
      if (j.warnings) warn.textContent = j.warnings.join("\n");
      out.append(graph(j.data.result, end - span, end, st));
    } catch (e) {
      err.textContent = String(e.message || e);
    }
  }
  if (expr.value) execute();
}

function table(data) {
  const t = $("table", { id: "result-table" });
  t.append($("tr", {}, $("th", { text: "Series" }), $("th", { text: "Value" })));
  const rows =
    data.resultType === "vector" ? data.result.map((s) => [labels(s.metric), s.value ? s.value[1] : JSON.stringify(s.histogram)]) :
    data.resultType === "matrix" ? data.result.map((s) => [labels(s.metric), (s.values || []).map((v) => `${v[1]} @${v[0]}`).join("\n")]) :
    [["scalar/string", data.result[1]]];
  for (const [l, v] of rows) t.append($("tr", {}, $("td", { text: l }), $("td", { text: v })));
  if (!rows.length) t.append($("tr", {}, $("td", { class: "muted", text: "no data" }), $("td")));
  return t;
}

function graph(result, start, end, step) {
  const box = $("div", { id: "graph" });
  if (!result.length) {
    box.append($("p", { class: "muted", text: "no data" }));
    return box;
  }
  const xs = [];
  for (let t = Math.ceil(start / step) * step; t <= end; t += step) xs.push(t);
  const index = new Map(xs.map((t, i) => [t, i]));
  const data = [xs];
  const series = [{}];
  for (const s of result.slice(0, 100)) {
    const ys = new Array(xs.length).fill(null);
    for (const [t, v] of s.values || []) {
      const i = index.get(Math.round(t / step) * step);
      if (i !== undefined) ys[i] = parseFloat(v);
    }
    data.push(ys);
    series.push({ label: labels(s.metric), width: 1.5, stroke: `hsl(${(series.length * 47) % 360} 70% 45%)` });
  }
  new uPlot({ width: Math.max(400, window.innerWidth - 48), height: 360, series, scales: { x: { time: true } } }, data, box);
  return box;
}

function kv(obj) {
  const t = $("table");
  for (const [k, v] of Object.entries(obj)) t.append($("tr", {}, $("td", { text: k }), $("td", { text: String(v) })));
  return t;
}

async function status(main, page) {
  const err = $("div", { class: "error" });
  main.append(err);
  try {
    if (page === "tsdb") {
      const j = await api("/api/v1/status/tsdb");
      main.append($("h2", { text: "Head" }), kv(j.data.headStats || {}));
      for (const [k, title] of [["seriesCountByMetricName", "Series by metric"], ["labelValueCountByLabelName", "Values by label"], ["seriesCountByLabelValuePair", "Series by label pair"]]) {
        const t = $("table");
        for (const e of j.data[k] || []) t.append($("tr", {}, $("td", { text: e.name }), $("td", { text: String(e.value) })));
        main.append($("h2", { text: title }), t);
      }
    } else if (page === "blocks") {
      const j = await api("/api/v1/status/blocks");
      const iso = (ms) => new Date(ms).toISOString().replace(".000Z", "Z");
      const t = $("table", { id: "blocks" }, $("tr", {}, ...["Block", "From", "To", "Samples", "Series", "Chunks", "Level", "Resolution", "Bytes", "Hints"].map((h) => $("th", { text: h }))));
      for (const b of j.data.blocks) {
        t.append($("tr", {}, ...[b.ulid, iso(b.minTime), iso(b.maxTime), b.numSamples, b.numSeries, b.numChunks, b.level, b.resolution ? `${b.resolution / 1000}s` : "raw", b.bytes, b.hints.join(", ")].map((v) => $("td", { text: String(v) }))));
      }
      if (!j.data.blocks.length) t.append($("tr", {}, $("td", { class: "muted", text: "No blocks yet: the head holds everything." })));
      main.append($("h2", { text: "Blocks" }), t);
    } else if (page === "flags") {
      const j = await api("/api/v1/status/flags");
      main.append($("h2", { text: "Flags" }), kv(j.data));
    } else if (page === "rules") {
      const j = await api("/api/v1/rules");
      if (!j.data.groups.length) main.append($("p", { class: "muted", text: "No rules loaded (--rule.file)." }));
      for (const g of j.data.groups) {
        const t = $("table", {}, $("tr", {}, ...["Rule", "State", "Health", "Last evaluation", "Error"].map((h) => $("th", { text: h }))));
        for (const r of g.rules) t.append($("tr", {}, $("td", { text: `${r.type === "alerting" ? "alert" : "record"}: ${r.name}\n${r.query}` }), $("td", { text: r.state || "" }), $("td", { text: r.health }), $("td", { text: r.lastEvaluation }), $("td", { text: r.lastError || "" })));
        main.append($("h2", { text: `${g.name} (${g.file}, every ${g.interval}s)` }), t);
      }
    } else if (page === "alerts") {
      const j = await api("/api/v1/alerts");
      const t = $("table", {}, $("tr", {}, ...["Alert", "State", "Active since", "Value"].map((h) => $("th", { text: h }))));
      for (const a of j.data.alerts) t.append($("tr", {}, $("td", { text: labels(a.labels) }), $("td", { text: a.state }), $("td", { text: a.activeAt }), $("td", { text: a.value })));
      if (!j.data.alerts.length) t.append($("tr", {}, $("td", { class: "muted", text: "No active alerts." })));
      main.append($("h2", { text: "Alerts" }), t);
    }
  } catch (e) {
    err.textContent = String(e.message || e);
  }
}

const main = document.getElementById("main");
const path = location.pathname;
const page = path.startsWith("/status/") ? path.slice("/status/".length) : "graph";
for (const a of document.querySelectorAll("nav a")) if (a.dataset.page === page) a.className = "active";
if (page === "graph") graphPage(main);
else status(main, page);
