// One run: its step tree next to a waterfall of steps and LLM calls on one time axis; the selected step's
// input, output, error, info and calls; the run's events in order. A running run refreshes itself.
import { h, s, mount, statusBadge, statusClass, notice, jsonBlock, badge } from "../lib/dom.js";
import { getJSON, ApiError } from "../lib/api.js";
import { setParams } from "../lib/router.js";
import { fullTime, ms, num, usd, time } from "../lib/format.js";
import { callRow, callsTableHead } from "./calls.js";
import { duration } from "./runs.js";

export const title = "Run";

const ROW = 26;
const AXIS = 24;

function isRunning(status) {
  return statusClass(status) === "running" || !status;
}

function stamp(value) {
  const t = new Date(value).getTime();
  return Number.isFinite(t) ? t : null;
}

/** Steps depth first, each followed by its calls; then the calls of no known step. */
function waterfallRows(run) {
  const rows = [];
  const byStep = new Map();
  for (const call of run.calls || []) {
    const key = call.step_id || "";
    if (!byStep.has(key)) byStep.set(key, []);
    byStep.get(key).push(call);
  }
  const seen = new Set();
  const visit = (step, depth) => {
    seen.add(step.id);
    rows.push({ kind: "step", step, depth });
    for (const call of byStep.get(step.id) || []) rows.push({ kind: "call", call, depth: depth + 1 });
    for (const child of step.children || []) visit(child, depth + 1);
  };
  for (const step of run.steps || []) visit(step, 0);
  for (const [key, calls] of byStep) if (!seen.has(key)) for (const call of calls) rows.push({ kind: "call", call, depth: 0 });
  return rows;
}

function spanOf(row, now) {
  if (row.kind === "step") {
    const start = stamp(row.step.start_time);
    const end = stamp(row.step.end_time) ?? (isRunning(row.step.status) ? now : start);
    return [start, end];
  }
  const start = stamp(row.call.created_at);
  return [start, start == null ? null : start + (row.call.total_latency_ms || 0)];
}

function waterfall(run, rows, selected, onSelect) {
  const now = Date.now();
  let t0 = stamp(run.created_at);
  let t1 = stamp(run.updated_at) ?? t0;
  for (const row of rows) {
    const [a, b] = spanOf(row, now);
    if (a != null) t0 = t0 == null ? a : Math.min(t0, a);
    if (b != null) t1 = t1 == null ? b : Math.max(t1, b);
  }
  if (isRunning(run.status)) t1 = Math.max(t1 ?? now, now);
  const total = Math.max(1, (t1 ?? 0) - (t0 ?? 0));
  const svg = s("svg", { class: "waterfall", id: "waterfall", role: "img", "aria-label": "Timeline of steps and calls" });
  const box = h("div", { class: "waterfall-box" }, svg);

  const drawAt = (width) => {
    svg.replaceChildren();
    const labelW = width < 560 ? 120 : 220;
    const plotW = Math.max(40, width - labelW - 12);
    const height = AXIS + rows.length * ROW + 4;
    svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
    svg.setAttribute("width", width);
    svg.setAttribute("height", height);
    const x = (t) => labelW + ((t - t0) / total) * plotW;
    const ticks = plotW < 260 ? 2 : 4;
    for (let k = 0; k <= ticks; k++) {
      const t = t0 + (total * k) / ticks;
      svg.append(s("line", { class: "gridline", x1: x(t), x2: x(t), y1: AXIS - 6, y2: height }));
      svg.append(s("text", { class: "tick", x: x(t), y: 12, "text-anchor": k === 0 ? "start" : k === ticks ? "end" : "middle" }, k === 0 ? "0" : "+" + ms(t - t0)));
    }
    rows.forEach((row, index) => {
      const y = AXIS + index * ROW;
      const id = row.kind === "step" ? row.step.id : row.call.id;
      const isSelected = row.kind === "step" && row.step.id === selected;
      const group = s("g", { class: "wf-row", dataset: { kind: row.kind, id } });
      group.append(s("rect", { class: ["row-bg", isSelected && "selected"], x: 0, y, width, height: ROW }));
      const label = row.kind === "step" ? row.step.name || row.step.type || "step" : `${row.call.model || "call"}`;
      const indent = Math.min(row.depth * 12, labelW / 2);
      const maxChars = Math.max(4, Math.floor((labelW - indent - 8) / 6.6));
      group.append(s("text", { class: ["label", row.kind === "call" && "call"], x: 6 + indent, y: y + 17 },
        (row.kind === "call" ? "↳ " : "") + (label.length > maxChars ? label.slice(0, maxChars - 1) + "…" : label)));
      const [a, b] = spanOf(row, now);
      if (a != null) {
        const failed = row.kind === "step" ? statusClass(row.step.status) === "err" : row.call.http_status >= 400;
        const cls = ["bar", row.kind, failed ? "err" : row.kind === "step" && isRunning(row.step.status) ? "running" : null];
        const bar = s("rect", { class: cls, x: x(a), y: y + 6, width: Math.max(2, x(b ?? a) - x(a)), height: ROW - 12, rx: 3 },
          s("title", null, `${label}: ${ms((b ?? a) - a)}${row.kind === "call" ? ` · ${row.call.http_status}` : ` · ${row.step.status || ""}`}`));
        group.append(bar);
      }
      group.addEventListener("click", () => {
        if (row.kind === "step") onSelect(row.step.id);
        else location.hash = "#/calls/" + encodeURIComponent(row.call.id);
      });
      group.classList.add("clickable");
      svg.append(group);
    });
  };
  let last = 0;
  const redraw = () => {
    const width = Math.floor(box.clientWidth || 700);
    if (width !== last) { last = width; drawAt(width); }
  };
  drawAt(700);
  requestAnimationFrame(redraw);
  if (typeof ResizeObserver === "function") new ResizeObserver(redraw).observe(box);
  return box;
}

function stepTree(steps, selected, onSelect, callsByStep) {
  if (!steps?.length) return null;
  return h("ul", { class: "tree" }, steps.map((step) => {
    const count = (callsByStep.get(step.id) || []).length;
    const start = stamp(step.start_time);
    const end = stamp(step.end_time);
    return h("li", null,
      h("div", { class: ["tree-node", step.id === selected && "selected"], dataset: { id: step.id }, role: "button", tabindex: "0",
        onclick: () => onSelect(step.id), onkeydown: (event) => { if (event.key === "Enter") onSelect(step.id); } },
      h("span", { class: ["status-dot", statusClass(step.status)], title: step.status || "" }),
      h("span", { class: "name" }, step.name || "(unnamed step)"),
      step.type ? h("span", { class: "type" }, step.type) : null,
      count ? h("span", { class: "count-chip", title: `${count} LLM calls` }, count === 1 ? "1 call" : `${count} calls`) : null,
      h("span", { class: "faint nowrap" }, start != null && end != null ? ms(end - start) : "")),
      stepTree(step.children, selected, onSelect, callsByStep));
  }));
}

function findStep(steps, id) {
  for (const step of steps || []) {
    if (step.id === id) return step;
    const found = findStep(step.children, id);
    if (found) return found;
  }
  return null;
}

function section(label, value) {
  if (value == null || value === "null") return null;
  return h("div", null, h("h3", null, label), jsonBlock(value));
}

function stepDetail(step, calls) {
  if (!step) return h("div", { class: "card muted", id: "step-detail" }, "Select a step in the tree or the timeline to see its input, output and calls.");
  const start = stamp(step.start_time);
  const end = stamp(step.end_time);
  return h("div", { class: "card stack", id: "step-detail" },
    h("div", { class: "row" }, h("h2", null, step.name || "(unnamed step)"), statusBadge(step.status), step.type ? badge(step.type, "plain") : null,
      (step.tags || []).map((tag) => h("span", { class: "tag" }, tag))),
    h("div", { class: "muted" }, `${fullTime(step.start_time)} · ${start != null && end != null ? ms(end - start) : "running"}`),
    step.error != null && step.error !== "null" ? h("div", { class: "notice err" }, h("strong", null, "Error: "), typeof step.error === "string" ? step.error : JSON.stringify(step.error)) : null,
    h("div", { class: "grid two" }, section("Input", step.input) || h("div", null, h("h3", null, "Input"), h("div", { class: "faint" }, "none")),
      section("Output", step.output) || h("div", null, h("h3", null, "Output"), h("div", { class: "faint" }, "none"))),
    section("Info", step.info),
    h("div", null, h("h3", null, `LLM calls (${calls.length})`),
      calls.length ? h("div", { class: "table-wrap" }, h("table", { class: "data", id: "step-calls" }, callsTableHead(), h("tbody", null, calls.map((call) => callRow(call)))))
        : h("div", { class: "faint" }, "This step made no LLM calls.")));
}

function eventsList(run, steps) {
  const names = new Map();
  const collect = (list) => { for (const step of list || []) { names.set(step.id, step.name || step.type || step.id); collect(step.children); } };
  collect(steps);
  const events = run.events || [];
  if (!events.length) return h("div", { class: "faint" }, "No events.");
  return h("div", { class: "events", id: "events" }, events.map((event) => h("div", { class: "event" },
    h("span", { class: "muted nowrap", title: fullTime(event.created_at) }, time(event.created_at)),
    h("span", { class: "mono" }, event.event_type, event.step_id ? h("div", { class: "faint" }, names.get(event.step_id) || String(event.step_id).slice(0, 8)) : null),
    h("div", null, event.error && event.error !== "null" ? h("div", { class: "error-text" }, JSON.stringify(event.error)) : null,
      event.meta != null && event.meta !== "null" ? jsonBlock(event.meta) : null))));
}

export function render(main, route) {
  const id = route.parts[1];
  let selected = route.params.get("step") || "";
  let run = null;
  let timer = null;
  let stopped = false;
  mount(main, h("div", { class: "spinner" }, "Loading run…"));

  const select = (stepID) => {
    selected = stepID;
    setParams({ step: stepID });
    draw();
    document.getElementById("step-detail")?.scrollIntoView({ block: "nearest", behavior: "smooth" });
  };

  function draw() {
    const rows = waterfallRows(run);
    const callsByStep = new Map();
    for (const call of run.calls || []) {
      if (!callsByStep.has(call.step_id)) callsByStep.set(call.step_id, []);
      callsByStep.get(call.step_id).push(call);
    }
    const costs = (run.calls || []).map((call) => call.cost_usd).filter((cost) => typeof cost === "number");
    const tokens = (run.calls || []).reduce((sum, call) => sum + (call.total_tokens || 0), 0);
    const failedCalls = (run.calls || []).filter((call) => call.http_status >= 400).length;
    const running = isRunning(run.status);
    const stepCount = rows.filter((row) => row.kind === "step").length;
    mount(main,
      h("div", { class: "crumbs" }, h("a", { href: "#/runs" }, "Runs"), " / ", h("span", { class: "mono" }, run.id)),
      h("div", { class: "page-head" },
        h("div", null, h("div", { class: "row" }, h("h1", null, run.name || "(unnamed run)"), statusBadge(run.status),
          running ? h("span", { class: "muted row" }, h("span", { class: "live-dot" }), "live") : null,
          (run.tags || []).map((tag) => h("span", { class: "tag" }, tag))),
        h("div", { class: "sub" }, [run.description, run.application, run.environment].filter(Boolean).join(" · ") || fullTime(run.created_at)))),
      h("div", { class: "grid kpis" },
        kpi("Duration", ms(duration(run)), `started ${time(run.created_at)}`),
        kpi("Steps", num(stepCount)),
        kpi("LLM calls", num((run.calls || []).length), failedCalls ? `${failedCalls} failed` : ""),
        kpi("Tokens", num(tokens)),
        kpi("Cost", costs.length ? usd(costs.reduce((a, b) => a + b, 0)) : "—", "", "run-cost"),
        kpi("Events", num((run.events || []).length))),
      h("div", { class: "run-grid" },
        h("div", { class: "card" }, h("h2", null, "Steps"), h("div", { id: "step-tree" }, stepTree(run.steps, selected, select, callsByStep) || h("div", { class: "faint" }, "No steps recorded."))),
        h("div", { class: "card" }, h("h2", null, "Timeline"), rows.length ? waterfall(run, rows, selected, select) : h("div", { class: "faint" }, "Nothing to draw yet."))),
      stepDetail(findStep(run.steps, selected), callsByStep.get(selected) || []),
      h("div", { class: "grid two" },
        h("div", { class: "card" }, h("h2", null, "Run input"), run.input != null ? jsonBlock(run.input) : h("div", { class: "faint" }, "none")),
        h("div", { class: "card" }, h("h2", null, "Run output"), run.output != null ? jsonBlock(run.output) : h("div", { class: "faint" }, running ? "Still running." : "none"))),
      h("div", { class: "card" }, h("h2", null, "Events"), eventsList(run, run.steps)));
  }

  function kpi(label, value, hint, id) {
    return h("div", { class: "card kpi" }, h("div", { class: "label" }, label), h("div", { class: "value", id }, value), hint ? h("div", { class: "hint" }, hint) : null);
  }

  async function load() {
    try {
      run = await getJSON("/v1/runs/" + encodeURIComponent(id));
      if (stopped) return;
      document.title = `${run.name || "Run"} · Chronicle`;
      draw();
      if (isRunning(run.status) && !stopped) timer = setTimeout(load, 2000);
    } catch (error) {
      if (stopped) return;
      mount(main, h("div", { class: "crumbs" }, h("a", { href: "#/runs" }, "Runs")),
        notice(error instanceof ApiError && error.status === 404 ? "No such run." : "Could not load the run.", error.message, "err"));
    }
  }
  load();
  return () => { stopped = true; clearTimeout(timer); };
}
