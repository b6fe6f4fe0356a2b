// Pages are addressed by the hash: `#/calls/ID?model=x`, so the server serves one page for all of them.

/** `#/calls/ID?x=1` -> {parts: ["calls", "ID"], params: URLSearchParams}. */
export function currentRoute() {
  const hash = location.hash.replace(/^#/, "") || "/";
  const [path, search] = hash.split("?");
  return { parts: path.split("/").filter(Boolean).map(decodeURIComponent), params: new URLSearchParams(search || "") };
}

/** The query of the current page as an object. */
export function paramsObject() {
  return Object.fromEntries(currentRoute().params.entries());
}

/** Changes the query of the current page without leaving it (no hashchange). */
export function setParams(params) {
  const route = currentRoute();
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) if (value !== undefined && value !== null && value !== "") search.set(name, value);
  const text = search.toString();
  history.replaceState(null, "", "#/" + route.parts.map(encodeURIComponent).join("/") + (text ? "?" + text : ""));
}

/** A link to a page. */
export function href(path, params) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params || {})) if (value !== undefined && value !== null && value !== "") search.set(name, value);
  const text = search.toString();
  return "#" + path + (text ? "?" + text : "");
}
