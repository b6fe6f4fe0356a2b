// The dashboard's shell: the login, the hash router and the navigation. Each page is a module whose
// `render(main, route)` fills the main area and returns a function that stops its timers and streams.
import { h, mount } from "./lib/dom.js";
import { adminKey, setAdminKey, getJSON, whenUnauthorized, ApiError } from "./lib/api.js";
import { currentRoute } from "./lib/router.js";
import * as overview from "./pages/overview.js";
import * as calls from "./pages/calls.js";
import * as call from "./pages/call.js";
import * as runs from "./pages/runs.js";
import * as run from "./pages/run.js";
import * as budgets from "./pages/budgets.js";

const main = document.getElementById("main");
const logout = document.getElementById("logout");
let stopPage = null;
let signedIn = false;

function pageFor(parts) {
  switch (parts[0]) {
    case undefined: case "overview": return { page: overview, nav: "overview" };
    case "calls": return parts[1] ? { page: call, nav: "calls" } : { page: calls, nav: "calls" };
    case "runs": return parts[1] ? { page: run, nav: "runs" } : { page: runs, nav: "runs" };
    case "budgets": return { page: budgets, nav: "budgets" };
    default: return null;
  }
}

function route() {
  if (!signedIn) return;
  stopPage?.();
  stopPage = null;
  const current = currentRoute();
  const found = pageFor(current.parts);
  for (const link of document.querySelectorAll(".nav-links a")) link.classList.toggle("active", link.dataset.page === found?.nav);
  if (!found) {
    mount(main, h("div", { class: "notice" }, "No such page. ", h("a", { href: "#/" }, "Go to the overview")));
    return;
  }
  document.title = `${found.page.title || "Chronicle"} · Chronicle`;
  window.scrollTo(0, 0);
  mount(main);
  try {
    stopPage = found.page.render(main, current) || null;
  } catch (error) {
    console.error(error);
    mount(main, h("div", { class: "notice err" }, "This page failed to render: ", String(error)));
  }
}

function showLogin(message) {
  signedIn = false;
  stopPage?.();
  stopPage = null;
  document.getElementById("nav").hidden = true;
  document.getElementById("app").classList.add("signed-out");
  const input = h("input", { type: "password", id: "admin-key", autocomplete: "current-password", placeholder: "Admin key", required: true });
  const error = h("div", { class: "error-text", role: "alert" }, message || "");
  const form = h("form", {
    onsubmit: async (event) => {
      event.preventDefault();
      setAdminKey(input.value.trim());
      await start();
    },
  }, h("h1", null, h("img", { src: "/ui/favicon.svg", alt: "", width: 26, height: 26 }), "Sign in to Chronicle"),
  h("p", null, "This gateway has an admin key. Enter it to read calls, runs and spend. It is kept for this tab only."),
  input, h("button", { class: "btn primary", type: "submit" }, "Sign in"), error);
  mount(main, h("div", { class: "card login" }, form));
  input.focus();
}

async function start() {
  if (!adminKey()) {
    let keyRequired = true;
    try {
      keyRequired = (await (await fetch("/ui/session.json")).json()).key_required !== false;
    } catch { /* assume the safe answer */ }
    if (keyRequired) {
      showLogin("");
      return;
    }
  }
  try {
    await getJSON("/v1/calls", { limit: 1 });
  } catch (error) {
    if (error instanceof ApiError && (error.status === 401 || error.status === 403)) {
      const tried = adminKey();
      setAdminKey("");
      showLogin(tried ? "That key was not accepted." : "");
      return;
    }
    // Anything else (no database, say) is shown by the pages themselves.
  }
  signedIn = true;
  document.getElementById("nav").hidden = false;
  document.getElementById("app").classList.remove("signed-out");
  logout.hidden = !adminKey();
  route();
}

// A key that stops working (changed on the server) brings the login back.
whenUnauthorized((message) => {
  if (!signedIn) return;
  setAdminKey("");
  showLogin(message);
});
logout.addEventListener("click", () => {
  setAdminKey("");
  showLogin("");
});
window.addEventListener("hashchange", route);
start();
