// The data APIs, with the admin key (kept in sessionStorage for this tab) as a bearer token.

const KEY = "chronicle.adminKey";

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export function adminKey() {
  return sessionStorage.getItem(KEY) || "";
}

export function setAdminKey(key) {
  if (key) sessionStorage.setItem(KEY, key); else sessionStorage.removeItem(KEY);
}

export function authHeaders() {
  const key = adminKey();
  return key ? { authorization: `Bearer ${key}` } : {};
}

let onUnauthorized = () => {};
export function whenUnauthorized(handler) { onUnauthorized = handler; }

/** A query string from an object, skipping empty values. */
export function query(params) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params || {})) {
    if (value !== undefined && value !== null && value !== "") search.set(name, String(value));
  }
  const text = search.toString();
  return text ? "?" + text : "";
}

/** GETs a JSON API; throws ApiError with the status on failure (401/403 also show the login). */
export async function getJSON(path, params, { signal } = {}) {
  const response = await fetch(path + query(params), { headers: { accept: "application/json", ...authHeaders() }, signal });
  if (!response.ok) {
    let message = `${response.status} ${response.statusText}`;
    try {
      const body = await response.json();
      message = body?.error?.message || message;
    } catch { /* not JSON */ }
    if (response.status === 401 || response.status === 403) onUnauthorized(message);
    throw new ApiError(response.status, message);
  }
  return response.json();
}

/**
 * Follows a server-sent event stream with fetch (EventSource cannot send the key): calls `onData` with
 * each event's parsed JSON. Returns a function that stops it.
 */
export function followEvents(path, onData, onState) {
  const controller = new AbortController();
  let stopped = false;
  async function run() {
    while (!stopped) {
      try {
        const response = await fetch(path, { headers: { accept: "text/event-stream", ...authHeaders() }, signal: controller.signal });
        if (!response.ok || !response.body) throw new ApiError(response.status, "live tail unavailable");
        onState?.("live");
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value;
          let end;
          while ((end = buffer.indexOf("\n\n")) >= 0) {
            const block = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            const data = block.split("\n").filter((line) => line.startsWith("data:")).map((line) => line.slice(5).trimStart()).join("\n");
            if (data) {
              try { onData(JSON.parse(data)); } catch { /* a malformed event is skipped */ }
            }
          }
        }
      } catch (error) {
        if (stopped) return;
        onState?.(error instanceof ApiError && error.status === 404 ? "unavailable" : "reconnecting");
        if (error instanceof ApiError && (error.status === 401 || error.status === 403 || error.status === 404)) return;
      }
      if (!stopped) await new Promise((resolve) => setTimeout(resolve, 2000));
    }
  }
  run();
  return () => { stopped = true; controller.abort(); };
}
