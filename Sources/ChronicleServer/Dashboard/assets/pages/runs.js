// Runs: agent runs with their status, duration, steps, calls and cost.
import { h, mount, statusBadge } from "../lib/dom.js";
import { getJSON, ApiError } from "../lib/api.js";
import { setParams } from "../lib/router.js";
import { filterBox } from "./calls.js";
import { time, fullTime, ms, num, usd, fromLocalInput, toLocalInput } from "../lib/format.js";

export const title = "Runs";

const FILTERS = [
  { name: "status", label: "Status" },
  { name: "name", label: "Name" },
  { name: "application", label: "Application" },
  { name: "environment", label: "Environment" },
  { name: "since", label: "Since", time: true },
  { name: "until", label: "Until", time: true },
];

export function duration(run) {
  const start = new Date(run.created_at).getTime();
  const end = new Date(run.updated_at || run.created_at).getTime();
  return Number.isFinite(start) && Number.isFinite(end) ? Math.max(0, end - start) : null;
}

export function render(main, route) {
  const filters = {};
  for (const filter of FILTERS) filters[filter.name] = route.params.get(filter.name) || "";
  let cursor = route.params.get("cursor") || "";
  const cursors = [];
  let nextCursor = null;
  let seq = 0;
  let refresh = null;

  const tbody = h("tbody", { id: "runs-body" });
  const status = h("span", { class: "muted" });
  const older = h("button", { class: "btn small", type: "button", onclick: () => { cursors.push(cursor); cursor = nextCursor; load(); } }, "Older →");
  const newer = h("button", { class: "btn small", type: "button", onclick: () => { cursor = cursors.pop() || ""; load(); } }, "← Newer");
  const inputs = FILTERS.map((filter) => {
    const control = filter.time
      ? h("input", { type: "datetime-local", name: filter.name, value: toLocalInput(filters[filter.name]) })
      : filter.name === "status"
        ? h("select", { name: "status" }, [["", "Any"], ["running", "Running"], ["finished", "Finished"], ["error", "Error"]].map(([value, label]) => h("option", { value }, label)))
        : h("input", { type: "text", name: filter.name, value: filters[filter.name], placeholder: "Any", autocomplete: "off" });
    if (filter.name === "status") control.value = filters.status;
    let debounce = null;
    control.addEventListener(filter.time || filter.name === "status" ? "change" : "input", () => {
      clearTimeout(debounce);
      debounce = setTimeout(() => {
        filters[filter.name] = filter.time ? fromLocalInput(control.value) : control.value.trim();
        cursor = "";
        cursors.length = 0;
        load();
      }, filter.time || filter.name === "status" ? 0 : 350);
    });
    return h("label", null, filter.label, control);
  });

  mount(main,
    h("div", { class: "page-head" },
      h("div", null, h("h1", null, "Runs"), h("div", { class: "sub" }, "Agent runs and workflows, with their steps and the LLM calls they made."))),
    filterBox(h("div", { class: "filters" }, inputs), FILTERS.some((filter) => filters[filter.name])),
    h("div", { class: "card flush" },
      h("div", { class: "table-wrap" }, h("table", { class: "data", id: "runs-table" },
        h("thead", null, h("tr", null, h("th", null, "Run"), h("th", null, "Status"), h("th", { class: "hide-sm" }, "Started"),
          h("th", { class: "num" }, "Duration"), h("th", { class: "num" }, "Steps"), h("th", { class: "num" }, "Calls"),
          h("th", { class: "num hide-sm" }, "Tokens"), h("th", { class: "num" }, "Cost"), h("th", { class: "hide-sm" }, "Application"))),
        tbody)),
      h("div", { class: "pager" }, newer, status, older)));

  async function load() {
    const mine = ++seq;
    setParams({ ...filters, cursor });
    try {
      const page = await getJSON("/v1/runs", { ...filters, cursor, limit: 50 });
      if (mine !== seq) return;
      nextCursor = page.next_cursor;
      older.disabled = !nextCursor;
      newer.disabled = !cursor;
      status.textContent = page.data.length ? `${page.data.length} runs` : "";
      mount(tbody, page.data.length ? page.data.map((run) => {
        const link = "#/runs/" + encodeURIComponent(run.id);
        return h("tr", { class: "clickable", dataset: { id: run.id }, onclick: (event) => { if (!event.target.closest("a")) location.hash = link; } },
          h("td", { class: "wrap run-name" }, h("a", { href: link }, run.name || "(unnamed run)"), run.description ? h("div", { class: "muted" }, run.description) : null),
          h("td", null, statusBadge(run.status)),
          h("td", { class: "hide-sm", title: fullTime(run.created_at) }, time(run.created_at)),
          h("td", { class: "num" }, ms(duration(run))),
          h("td", { class: "num" }, num(run.step_count)),
          h("td", { class: "num" }, num(run.call_count)),
          h("td", { class: "num hide-sm" }, num(run.total_tokens)),
          h("td", { class: "num" }, usd(run.cost_usd)),
          h("td", { class: "hide-sm" }, run.application || h("span", { class: "faint" }, "—")));
      }) : h("tr", null, h("td", { colspan: 9, class: "empty" }, "No runs yet. Send run and step events to POST /v1/events to see agent runs here.")));
    } catch (error) {
      if (mine !== seq) return;
      mount(tbody, h("tr", null, h("td", { colspan: 9, class: "empty" },
        error instanceof ApiError && error.status === 404 ? "The read API is off: this gateway records nothing." : `Could not load runs: ${error.message}`)));
    }
  }
  load();
  // Running runs move: the first page refreshes itself.
  refresh = setInterval(() => { if (!cursor && !document.hidden) load(); }, 10000);
  return () => { seq++; clearInterval(refresh); };
}
