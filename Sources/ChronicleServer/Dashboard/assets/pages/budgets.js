// Budgets and keys: each budget's limit, spend and reset time (`/v1/budgets`), and the traffic of each
// gateway key (`/v1/usage?group_by=gateway_key`).
import { h, mount, notice, meter } from "../lib/dom.js";
import { getJSON, ApiError } from "../lib/api.js";
import { setParams } from "../lib/router.js";
import { fullTime, num, usd, compact, ago } from "../lib/format.js";

export const title = "Budgets & keys";

const RANGES = [["24h", "24 h"], ["7d", "7 d"], ["30d", "30 d"]];

function until(value) {
  const seconds = (new Date(value).getTime() - Date.now()) / 1000;
  if (!Number.isFinite(seconds)) return "—";
  if (seconds < 3600) return `in ${Math.max(0, Math.round(seconds / 60))} min`;
  if (seconds < 172800) return `in ${Math.round(seconds / 3600)} h`;
  return `in ${Math.round(seconds / 86400)} days`;
}

export function render(main, route) {
  let range = route.params.get("range") || "7d";
  let seq = 0;
  const budgetsBox = h("div", { id: "budgets" }, h("div", { class: "spinner" }, "Loading…"));
  const keysBox = h("div", { id: "keys" }, h("div", { class: "spinner" }, "Loading…"));
  const buttons = RANGES.map(([value, label]) => h("button", { type: "button", dataset: { range: value }, onclick: () => { range = value; load(); } }, label));

  mount(main,
    h("div", { class: "page-head" }, h("div", null, h("h1", null, "Budgets & keys"), h("div", { class: "sub" }, "Spending limits and what each gateway key is used for."))),
    h("div", { class: "stack" },
      h("div", { class: "card flush" }, h("div", { class: "card-head" }, h("h2", null, "Budgets")), budgetsBox),
      h("div", { class: "card flush" }, h("div", { class: "card-head" }, h("h2", null, "Requests per gateway key"), h("div", { class: "segmented" }, buttons)), keysBox)));

  async function load() {
    const mine = ++seq;
    for (const button of buttons) button.classList.toggle("active", button.dataset.range === range);
    setParams({ range: range === "7d" ? "" : range });
    const [budgets, usage] = await Promise.allSettled([getJSON("/v1/budgets"), getJSON("/v1/usage", { group_by: "gateway_key", since: range })]);
    if (mine !== seq) return;
    if (budgets.status === "fulfilled") {
      const list = budgets.value.budgets || [];
      mount(budgetsBox, list.length ? h("div", { class: "table-wrap" }, h("table", { class: "data", id: "budgets-table" },
        h("thead", null, h("tr", null, h("th", null, "Budget"), h("th", null, "Applies to"), h("th", { class: "hide-sm" }, "Window"),
          h("th", { class: "num" }, "Spend"), h("th", { class: "num" }, "Limit"), h("th", null, "Used"), h("th", null, "Resets"))),
        h("tbody", null, list.map((budget) => {
          const used = budget.limit_usd > 0 ? budget.spend_usd / budget.limit_usd : 0;
          return h("tr", null,
            h("td", null, budget.name), h("td", null, h("span", { class: "muted" }, budget.scope === "user" ? "user " : "key "), budget.subject),
            h("td", { class: "hide-sm" }, budget.window === "day" ? "daily" : budget.window === "month" ? "monthly" : budget.window),
            h("td", { class: "num" }, usd(budget.spend_usd)), h("td", { class: "num" }, usd(budget.limit_usd)),
            h("td", { class: "wrap" }, h("div", { class: "meter" }, meter(used, used >= 1 ? "err" : used >= 0.8 ? "warn" : "")), h("span", { class: "faint" }, `${Math.round(used * 100)}%`)),
            h("td", { title: fullTime(budget.resets_at) }, until(budget.resets_at)));
        })))) : h("div", { class: "empty" }, "No budgets are configured."));
    } else {
      const error = budgets.reason;
      mount(budgetsBox, h("div", { class: "empty" }, error instanceof ApiError && error.status === 404
        ? "Budgets API unavailable: this gateway does not serve /v1/budgets." : `Could not load budgets: ${error.message}`));
    }
    if (usage.status === "fulfilled") {
      const rows = (usage.value.rows || []).slice().sort((a, b) => b.requests - a.requests);
      mount(keysBox, rows.length ? h("div", { class: "table-wrap" }, h("table", { class: "data", id: "keys-table" },
        h("thead", null, h("tr", null, h("th", null, "Gateway key"), h("th", { class: "num" }, "Requests"), h("th", { class: "num" }, "Errors"),
          h("th", { class: "num hide-sm" }, "Tokens"), h("th", { class: "num" }, "Cost"))),
        h("tbody", null, rows.map((row) => h("tr", null,
          h("td", null, row.group?.gateway_key ?? h("span", { class: "faint" }, "(no key)")),
          h("td", { class: "num" }, num(row.requests)), h("td", { class: "num" }, num(row.errors)),
          h("td", { class: "num hide-sm" }, compact((row.input_tokens || 0) + (row.output_tokens || 0))),
          h("td", { class: "num" }, usd(row.cost_usd))))))) : h("div", { class: "empty" }, "No requests in this range."));
    } else {
      const error = usage.reason;
      mount(keysBox, h("div", { class: "empty", id: "usage-unavailable" }, error instanceof ApiError && error.status === 404
        ? "Usage API unavailable: this gateway does not serve /v1/usage." : `Could not load usage: ${error.message}`));
    }
  }
  load();
  return () => { seq++; };
}
