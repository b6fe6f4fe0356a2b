// Overview: requests, errors, latency, tokens and cost over time, and who spends most, from `/v1/usage`.
// Without the usage API (an older gateway) it says so and shows the latest calls instead.
import { h, mount, notice, meter } from "../lib/dom.js";
import { getJSON, ApiError } from "../lib/api.js";
import { setParams } from "../lib/router.js";
import { timeChart } from "../lib/charts.js";
import { compact, ms, num, usd, fromLocalInput, toLocalInput } from "../lib/format.js";
import { callRow, callsTableHead } from "./calls.js";

export const title = "Overview";

const HOUR = 3600000;
const DAY = 86400000;
const RANGES = [["1h", "1 h", HOUR], ["24h", "24 h", DAY], ["7d", "7 d", 7 * DAY], ["30d", "30 d", 30 * DAY], ["custom", "Custom", 0]];
const REFRESH_MS = 30000;
const TOP = [
  ["model", "Top models"],
  ["application", "Top applications"],
  ["user_id", "Top users"],
  ["gateway_key", "Top gateway keys"],
];

/** The window and bucket size for a range choice. */
export function rangeWindow(range, custom) {
  const now = Date.now();
  let since;
  let until = now;
  if (range === "custom") {
    since = Date.parse(custom.since) || now - DAY;
    until = Date.parse(custom.until) || now;
  } else {
    since = now - (RANGES.find((r) => r[0] === range)?.[2] ?? DAY);
  }
  const interval = until - since > 8 * DAY ? "day" : "hour";
  return { since, until, interval, step: interval === "day" ? DAY : HOUR };
}

/** Every bucket start in the window, aligned as the server aligns them (UTC hours or days). */
export function buckets({ since, until, step }) {
  const list = [];
  for (let t = Math.floor(since / step) * step; t < until; t += step) list.push(t);
  return list;
}

function series(rows, starts, pick, { nullIfMissing = false } = {}) {
  const byBucket = new Map();
  for (const row of rows) {
    const t = Date.parse(row.bucket);
    if (!Number.isFinite(t)) continue;
    const value = pick(row);
    if (value == null) continue;
    byBucket.set(t, (byBucket.get(t) ?? 0) + value);
  }
  return starts.map((t) => byBucket.has(t) ? byBucket.get(t) : nullIfMissing ? null : 0);
}

function kpi(label, value, hint, id) {
  return h("div", { class: "card kpi" }, h("div", { class: "label" }, label), h("div", { class: "value", id }, value), hint ? h("div", { class: "hint" }, hint) : null);
}

function topList(rows, key) {
  const items = rows.map((row) => ({ name: row.group?.[key], cost: row.cost_usd, requests: row.requests }))
    .sort((a, b) => (b.cost ?? -1) - (a.cost ?? -1) || b.requests - a.requests).slice(0, 6);
  if (!items.length) return h("div", { class: "faint" }, "No calls in this range.");
  const byCost = items.some((item) => item.cost > 0);
  const max = Math.max(...items.map((item) => (byCost ? item.cost ?? 0 : item.requests))) || 1;
  return h("div", { class: "toplist" }, items.map((item) => h("div", { class: "item" },
    h("span", { class: "name", title: item.name ?? "" }, item.name ?? h("span", { class: "faint" }, "(none)")),
    h("span", { class: "amount" }, byCost ? usd(item.cost) : `${num(item.requests)} req`),
    h("div", { class: "meter" }, meter((byCost ? item.cost ?? 0 : item.requests) / max)),
    h("span", { class: "faint" }, `${num(item.requests)} requests`))));
}

export function render(main, route) {
  let range = route.params.get("range") || "24h";
  const custom = { since: route.params.get("since") || "", until: route.params.get("until") || "" };
  let auto = route.params.get("refresh") !== "0";
  let timer = null;
  let seq = 0;

  const body = h("div", { class: "stack", id: "overview-body" }, h("div", { class: "spinner" }, "Loading…"));
  const rangeButtons = RANGES.map(([value, label]) => h("button", { type: "button", dataset: { range: value }, onclick: () => { range = value; update(); } }, label));
  const sinceInput = h("input", { type: "datetime-local", value: toLocalInput(custom.since), "aria-label": "From" });
  const untilInput = h("input", { type: "datetime-local", value: toLocalInput(custom.until), "aria-label": "To" });
  for (const input of [sinceInput, untilInput]) input.addEventListener("change", () => {
    custom.since = fromLocalInput(sinceInput.value);
    custom.until = fromLocalInput(untilInput.value);
    update();
  });
  const customBox = h("span", { class: "row" }, sinceInput, h("span", { class: "muted" }, "to"), untilInput);
  const autoBox = h("input", { type: "checkbox", checked: auto, id: "auto-refresh" });
  autoBox.addEventListener("change", () => { auto = autoBox.checked; update(); });
  const updated = h("span", { class: "faint" });

  mount(main,
    h("div", { class: "page-head" },
      h("div", null, h("h1", null, "Overview"), h("div", { class: "sub" }, "Traffic, latency and spend through the gateway.")),
      h("div", { class: "toolbar" }, h("div", { class: "segmented", id: "range" }, rangeButtons), customBox,
        h("label", { class: "check" }, autoBox, "Auto-refresh"), updated)),
    body);

  function update() {
    for (const button of rangeButtons) button.classList.toggle("active", button.dataset.range === range);
    customBox.hidden = range !== "custom";
    if (range === "custom" && !custom.since) {
      custom.since = new Date(Date.now() - DAY).toISOString();
      sinceInput.value = toLocalInput(custom.since);
    }
    setParams({ range: range === "24h" ? "" : range, ...(range === "custom" ? custom : {}), refresh: auto ? "" : "0" });
    load();
  }

  async function load() {
    const mine = ++seq;
    clearTimeout(timer);
    const win = rangeWindow(range, custom);
    const base = { since: new Date(win.since).toISOString(), until: new Date(win.until).toISOString() };
    try {
      const [totals, timeline, ...tops] = await Promise.all([
        getJSON("/v1/usage", base),
        getJSON("/v1/usage", { ...base, interval: win.interval }),
        ...TOP.map(([key]) => getJSON("/v1/usage", { ...base, group_by: key }).catch(() => null)),
      ]);
      if (mine !== seq) return;
      showUsage(win, totals, timeline, tops);
    } catch (error) {
      if (mine !== seq) return;
      if (error instanceof ApiError && error.status === 404) await showWithoutUsage(mine);
      else mount(body, notice("Could not load usage.", error.message, "err"));
    }
    updated.textContent = `Updated ${new Date().toLocaleTimeString("en-GB")}`;
    if (auto && mine === seq) timer = setTimeout(() => { if (!document.hidden) load(); else timer = setTimeout(load, REFRESH_MS); }, REFRESH_MS);
  }

  function showUsage(win, totals, timeline, tops) {
    const sum = (rows, key) => rows.reduce((total, row) => total + (row[key] || 0), 0);
    const rows = totals.rows || [];
    const requests = sum(rows, "requests");
    const errors = sum(rows, "errors");
    const tokens = sum(rows, "input_tokens") + sum(rows, "output_tokens");
    const costs = rows.map((row) => row.cost_usd).filter((cost) => typeof cost === "number");
    const p50 = rows.length === 1 ? rows[0].latency_p50_ms : null;
    const p95 = rows.length === 1 ? rows[0].latency_p95_ms : null;
    const starts = buckets(win);
    const points = timeline.rows || [];
    const fmtCount = (value, axis) => (axis ? compact(value) : num(value));
    mount(body,
      h("div", { class: "grid kpis", id: "kpis" },
        kpi("Requests", num(requests), "", "kpi-requests"),
        kpi("Errors", num(errors), requests ? `${((errors / requests) * 100).toFixed(1)}% of requests` : "", "kpi-errors"),
        kpi("Latency p50", ms(p50)),
        kpi("Latency p95", ms(p95)),
        kpi("Tokens", compact(tokens), `${compact(sum(rows, "input_tokens"))} in · ${compact(sum(rows, "output_tokens"))} out`),
        kpi("Cost", costs.length ? usd(costs.reduce((a, b) => a + b, 0)) : "—", "", "kpi-cost")),
      h("div", { class: "grid two" },
        timeChart({ id: "chart-requests", title: "Requests", total: num(requests), buckets: starts, bucketMs: win.step, format: fmtCount,
          series: [{ name: "Requests", values: series(points, starts, (r) => r.requests), markZero: false },
            { name: "Errors", values: series(points, starts, (r) => r.errors), markZero: false, color: 1 }] }),
        timeChart({ id: "chart-latency", title: "Latency", total: p95 != null ? `p95 ${ms(p95)}` : "", buckets: starts, bucketMs: win.step,
          format: (value) => ms(value),
          series: [{ name: "p50", values: series(points, starts, (r) => r.latency_p50_ms, { nullIfMissing: true }) },
            { name: "p95", values: series(points, starts, (r) => r.latency_p95_ms, { nullIfMissing: true }), color: 3 }] }),
        timeChart({ id: "chart-tokens", title: "Tokens", total: compact(tokens), buckets: starts, bucketMs: win.step, kind: "bars", format: fmtCount,
          series: [{ name: "Input", values: series(points, starts, (r) => r.input_tokens) },
            { name: "Output", values: series(points, starts, (r) => r.output_tokens), color: 2 }] }),
        timeChart({ id: "chart-cost", title: "Cost", total: costs.length ? usd(costs.reduce((a, b) => a + b, 0)) : "—", buckets: starts, bucketMs: win.step, kind: "bars",
          format: (value) => usd(value), series: [{ name: "Cost", values: series(points, starts, (r) => r.cost_usd) }] })),
      h("div", { class: "grid two", id: "top-lists" }, TOP.map(([key, label], index) => h("div", { class: "card", dataset: { group: key } },
        h("h2", null, label), tops[index] ? topList(tops[index].rows || [], key) : h("div", { class: "faint" }, "Not available from this gateway.")))));
  }

  async function showWithoutUsage(mine) {
    let recent = null;
    try { recent = await getJSON("/v1/calls", { limit: 10 }); } catch { /* shown as unavailable below */ }
    if (mine !== seq) return;
    mount(body,
      h("div", { class: "notice", id: "usage-unavailable" }, h("strong", null, "Usage API unavailable."),
        " This gateway does not serve /v1/usage, so there are no charts of traffic and spend. The latest calls are below."),
      h("div", { class: "card flush" }, h("div", { class: "card-head" }, h("h2", null, "Latest calls"), h("a", { href: "#/calls" }, "All calls →")),
        recent ? h("div", { class: "table-wrap" }, h("table", { class: "data" }, callsTableHead(), h("tbody", null, recent.data.map((call) => callRow(call)))))
          : h("div", { class: "empty" }, "Calls are not available either.")));
  }

  update();
  return () => { seq++; clearTimeout(timer); };
}
