// Calls: every recorded LLM call, newest first, with the read API's filters, cursor paging, and a live tail
// pushed by the server (`/v1/calls/tail`).
import { h, mount, statusBadge, notice, badge } from "../lib/dom.js";
import { getJSON, followEvents, ApiError } from "../lib/api.js";
import { setParams, href } from "../lib/router.js";
import { time, fullTime, ms, num, usd, fromLocalInput, toLocalInput } from "../lib/format.js";

export const title = "Calls";

const PAGE_SIZE = 50;
/** Rows kept while tailing: older ones drop off the bottom so a busy gateway cannot slow the page. */
const LIVE_CAP = 200;
/** New calls are added at most this often, in one batch. */
const FLUSH_MS = 250;

const FILTERS = [
  { name: "status", label: "Status", options: [["", "Any"], ["success", "Success"], ["error", "Error"]] },
  { name: "provider", label: "Provider" },
  { name: "model", label: "Model" },
  { name: "application", label: "Application" },
  { name: "environment", label: "Environment" },
  { name: "user_id", label: "User" },
  { name: "name", label: "Workflow or run name" },
  { name: "run_id", label: "Run id" },
  { name: "since", label: "Since", time: true },
  { name: "until", label: "Until", time: true },
];

/** Whether a call pushed by the tail passes the filters the list was asked with. */
function matches(call, filters) {
  if (filters.status === "success" && !(call.http_status < 400)) return false;
  if (filters.status === "error" && !(call.http_status >= 400)) return false;
  for (const [name, field] of [["provider", "provider"], ["model", "model"], ["application", "application"],
    ["environment", "environment"], ["user_id", "request_user_id"], ["run_id", "run_id"]]) {
    if (filters[name] && call[field] !== filters[name]) return false;
  }
  if (filters.name && call.workflow_name !== filters.name) return false;
  if (filters.since && new Date(call.created_at) < new Date(filters.since)) return false;
  if (filters.until && new Date(call.created_at) >= new Date(filters.until)) return false;
  return true;
}

export function tokens(call) {
  if (call.input_tokens == null && call.output_tokens == null) return "—";
  return `${num(call.input_tokens ?? 0)} → ${num(call.output_tokens ?? 0)}`;
}

/** One table row; the whole row opens the call. */
export function callRow(call, { fresh = false, showRun = false } = {}) {
  const link = "#/calls/" + encodeURIComponent(call.id);
  const failed = call.http_status >= 400;
  return h("tr", {
    class: ["clickable", fresh && "fresh"], dataset: { id: call.id },
    onclick: (event) => { if (!event.target.closest("a")) location.hash = link; },
  },
  h("td", { title: fullTime(call.created_at) }, h("a", { href: link }, time(call.created_at))),
  h("td", null, h("div", { class: "cell-model" }, h("span", null, call.model || "—"), h("span", { class: "provider" }, call.provider || ""))),
  h("td", { class: "hide-sm" }, call.application || h("span", { class: "faint" }, "—")),
  h("td", { class: "hide-sm" }, call.request_user_id || h("span", { class: "faint" }, "—")),
  h("td", null, call.http_status != null ? statusBadge(call.http_status) : "—",
    call.retries > 0 ? [" ", badge(failed ? `${call.retries} retries` : "fallback", "warn plain")] : null),
  h("td", { class: "num" }, ms(call.total_latency_ms)),
  h("td", { class: "num hide-sm" }, ms(call.overhead_ms)),
  h("td", { class: "num hide-sm" }, tokens(call)),
  h("td", { class: "num" }, usd(call.cost_usd)),
  showRun ? h("td", null, call.step_id ? h("span", { class: "mono faint" }, String(call.step_id).slice(0, 8)) : "—") : null);
}

export function callsTableHead() {
  return h("thead", null, h("tr", null,
    h("th", null, "Time"), h("th", null, "Model"), h("th", { class: "hide-sm" }, "Application"),
    h("th", { class: "hide-sm" }, "User"), h("th", null, "Status"), h("th", { class: "num" }, "Latency"),
    h("th", { class: "num hide-sm" }, "Overhead"), h("th", { class: "num hide-sm" }, "Tokens"), h("th", { class: "num" }, "Cost")));
}

/** Filters, folded away on a phone unless some are set. */
export function filterBox(grid, active) {
  return h("details", { class: "filter-box", open: active || matchMedia("(min-width: 761px)").matches }, h("summary", null, active ? "Filters (active)" : "Filters"), grid);
}

export function render(main, route) {
  const filters = {};
  for (const filter of FILTERS) filters[filter.name] = route.params.get(filter.name) || "";
  const cursors = [];
  let cursor = route.params.get("cursor") || "";
  let live = route.params.get("live") !== "0";
  let stopTail = null;
  let pending = [];
  let flushTimer = null;
  let loadSeq = 0;

  const tbody = h("tbody", { id: "calls-body" });
  const status = h("span", { class: "muted", id: "calls-status" });
  const older = h("button", { class: "btn small", type: "button", onclick: () => { cursors.push(cursor); cursor = nextCursor; load(); } }, "Older →");
  const newer = h("button", { class: "btn small", type: "button", onclick: () => { cursor = cursors.pop() || ""; load(); } }, "← Newer");
  const liveButton = h("button", { class: "btn", type: "button", id: "live-toggle", onclick: () => setLive(!live) });
  const liveState = h("span", { class: "muted", id: "live-state" });
  let nextCursor = null;

  const inputs = FILTERS.map((filter) => {
    let control;
    if (filter.options) {
      control = h("select", { name: filter.name }, filter.options.map(([value, label]) => h("option", { value }, label)));
      control.value = filters[filter.name];
    } else if (filter.time) {
      control = h("input", { type: "datetime-local", name: filter.name, value: toLocalInput(filters[filter.name]) });
    } else {
      control = h("input", { type: "text", name: filter.name, value: filters[filter.name], placeholder: "Any", autocomplete: "off", spellcheck: "false" });
    }
    const update = () => {
      filters[filter.name] = filter.time ? fromLocalInput(control.value) : control.value.trim();
      cursor = "";
      cursors.length = 0;
      load();
    };
    let debounce = null;
    control.addEventListener(filter.options || filter.time ? "change" : "input", () => {
      clearTimeout(debounce);
      debounce = setTimeout(update, filter.options || filter.time ? 0 : 350);
    });
    return h("label", null, filter.label, control);
  });

  const clear = h("button", { class: "btn small", type: "button", onclick: () => {
    for (const filter of FILTERS) filters[filter.name] = "";
    for (const label of inputs) label.querySelector("input, select").value = "";
    cursor = "";
    cursors.length = 0;
    load();
  } }, "Clear filters");

  mount(main,
    h("div", { class: "page-head" },
      h("div", null, h("h1", null, "Calls"), h("div", { class: "sub" }, "Every request through the gateway, newest first.")),
      h("div", { class: "toolbar" }, liveState, liveButton, clear)),
    filterBox(h("div", { class: "filters", id: "call-filters" }, inputs), FILTERS.some((filter) => filters[filter.name])),
    h("div", { class: "card flush" },
      h("div", { class: "table-wrap" }, h("table", { class: "data", id: "calls-table" }, callsTableHead(), tbody)),
      h("div", { class: "pager" }, newer, status, older)));

  function syncURL() {
    setParams({ ...filters, cursor, live: live ? "" : "0" });
  }

  async function load() {
    const seq = ++loadSeq;
    syncURL();
    status.textContent = "Loading…";
    try {
      const page = await getJSON("/v1/calls", { ...filters, limit: PAGE_SIZE, cursor });
      if (seq !== loadSeq) return;
      nextCursor = page.next_cursor;
      const rows = page.data.map((call) => callRow(call));
      mount(tbody, rows.length ? rows : h("tr", null, h("td", { colspan: 9, class: "empty" }, "No calls match these filters.")));
      status.textContent = page.data.length ? `${page.data.length} calls${cursor ? "" : ", newest first"}` : "";
      older.disabled = !nextCursor;
      newer.disabled = !cursor;
    } catch (error) {
      if (seq !== loadSeq) return;
      mount(tbody, h("tr", null, h("td", { colspan: 9, class: "empty" },
        error instanceof ApiError && error.status === 404 ? "The read API is off: this gateway records no calls (log_to_database = false)." : `Could not load calls: ${error.message}`)));
      status.textContent = "";
      older.disabled = true;
      newer.disabled = !cursor;
    }
    updateTail();
  }

  function flush() {
    flushTimer = null;
    if (!pending.length) return;
    const batch = pending;
    pending = [];
    const fresh = batch.filter((call) => matches(call, filters) && !tbody.querySelector(`tr[data-id="${CSS.escape(call.id)}"]`));
    if (!fresh.length) return;
    const placeholder = tbody.querySelector("td.empty");
    if (placeholder) placeholder.parentElement.remove();
    // Newest first: the tail sends calls in the order they were stored.
    const rows = fresh.slice(-LIVE_CAP).reverse().map((call) => callRow(call, { fresh: true }));
    tbody.prepend(...rows);
    while (tbody.rows.length > LIVE_CAP) tbody.lastElementChild.remove();
    status.textContent = `${tbody.rows.length} calls, newest first`;
  }

  function updateTail() {
    const wanted = live && !cursor;
    liveButton.replaceChildren(...(live ? [h("span", { class: "live-dot" }), " Live"] : ["Paused"]));
    liveButton.classList.toggle("on", live);
    liveButton.title = live ? "New calls appear as they are stored. Click to pause." : "Click to show new calls as they arrive.";
    if (!wanted && stopTail) { stopTail(); stopTail = null; liveState.textContent = ""; }
    if (wanted && !stopTail) {
      stopTail = followEvents("/v1/calls/tail", (calls) => {
        pending.push(...calls);
        // Only the newest are ever shown: a backlog is cut before it reaches the DOM.
        if (pending.length > LIVE_CAP * 4) pending = pending.slice(-LIVE_CAP);
        if (!flushTimer) flushTimer = setTimeout(flush, FLUSH_MS);
      }, (state) => {
        liveState.textContent = state === "live" ? "" : state === "unavailable" ? "Live tail unavailable" : "Reconnecting…";
      });
    }
  }

  function setLive(on) {
    live = on;
    if (live && cursor) { cursor = ""; cursors.length = 0; load(); return; }
    syncURL();
    updateTail();
  }

  load();
  return () => {
    loadSeq++;
    stopTail?.();
    clearTimeout(flushTimer);
  };
}

