// Building the page with DOM APIs only. Recorded strings (prompts, answers, names) are hostile input: they
// become text nodes or attribute values, never markup. Nothing here parses HTML.

const SVG = "http://www.w3.org/2000/svg";

function append(element, child) {
  if (child === null || child === undefined || child === false) return;
  if (Array.isArray(child)) { for (const item of child) append(element, item); return; }
  element.append(child instanceof Node ? child : document.createTextNode(String(child)));
}

function apply(element, attributes, svg) {
  for (const [name, value] of Object.entries(attributes || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      element.addEventListener(name.slice(2).toLowerCase(), value);
    } else if (name === "class") {
      element.setAttribute("class", Array.isArray(value) ? value.filter(Boolean).join(" ") : value);
    } else if (name === "dataset") {
      for (const [key, data] of Object.entries(value)) element.dataset[key] = String(data);
    } else if (name === "text") {
      element.textContent = String(value);
    } else if (!svg && (name === "value" || name === "checked" || name === "disabled" || name === "hidden" || name === "open")) {
      element[name] = value;
    } else {
      element.setAttribute(name, value === true ? "" : String(value));
    }
  }
}

/** An HTML element: `h("a", {href, class}, "text", child, [more])`. */
export function h(tag, attributes, ...children) {
  const element = document.createElement(tag);
  apply(element, attributes, false);
  append(element, children);
  return element;
}

/** An SVG element. */
export function s(tag, attributes, ...children) {
  const element = document.createElementNS(SVG, tag);
  apply(element, attributes, true);
  append(element, children);
  return element;
}

/** Replaces an element's children. */
export function mount(element, ...children) {
  element.replaceChildren();
  append(element, children);
  return element;
}

/** A `<pre>` with pretty-printed JSON, as text. */
export function jsonBlock(value) {
  let text;
  if (typeof value === "string") {
    try { text = JSON.stringify(JSON.parse(value), null, 2); } catch { text = value; }
  } else {
    text = JSON.stringify(value, null, 2);
  }
  return h("pre", { class: "json" }, text ?? "null");
}

export function badge(text, kind) {
  return h("span", { class: ["badge", kind] }, text);
}

/** A status badge for an HTTP status or a run/step status. */
export function statusBadge(status) {
  if (typeof status === "number") {
    return badge(String(status), status >= 400 ? "err" : status >= 300 ? "warn" : "ok");
  }
  const text = String(status || "unknown");
  const kind = /err|fail/i.test(text) ? "err" : /run|start|progress/i.test(text) ? "info" : /finish|ok|success|done|complete/i.test(text) ? "ok" : "";
  return badge(text, kind);
}

export function statusClass(status) {
  const text = String(status || "");
  if (/err|fail/i.test(text)) return "err";
  if (/run|start|progress/i.test(text)) return "running";
  if (/finish|ok|success|done|complete/i.test(text)) return "ok";
  return "";
}

/** A horizontal meter (0..1) drawn as SVG, so that no inline style is needed. */
export function meter(fraction, kind) {
  const clamped = Math.max(0, Math.min(1, Number.isFinite(fraction) ? fraction : 0));
  return s("svg", { class: "meter-svg", viewBox: "0 0 100 6", preserveAspectRatio: "none" },
    s("rect", { class: "track", x: 0, y: 0, width: 100, height: 6, rx: 3 }),
    s("rect", { class: ["fill", kind], x: 0, y: 0, width: (clamped * 100).toFixed(2), height: 6, rx: 3 }));
}

export function notice(title, text, kind) {
  return h("div", { class: ["notice", kind] }, h("strong", null, title), text ? [" ", text] : null);
}
