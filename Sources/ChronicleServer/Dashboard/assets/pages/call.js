// One call: the conversation as a chat, the answer, usage, cost, the latency split, the attempts, the
// error, the metadata, the raw JSON and "copy as curl" (with a placeholder for the key, never a key).
import { h, s, mount, statusBadge, notice, jsonBlock, badge } from "../lib/dom.js";
import { getJSON, ApiError } from "../lib/api.js";
import { fullTime, ms, num, usd } from "../lib/format.js";

export const title = "Call";

function parse(value) {
  if (typeof value !== "string") return value;
  try { return JSON.parse(value); } catch { return value; }
}

function textOf(content) {
  if (content == null) return "";
  if (typeof content === "string") return content;
  if (Array.isArray(content)) return content.map((part) => (typeof part === "string" ? part : part?.text ?? "")).join("");
  return JSON.stringify(content);
}

/** A picture in a message: a data URL is shown as a thumbnail; a remote one as its address (the page loads nothing from elsewhere). */
function image(url, mediaType) {
  if (typeof url === "string" && /^data:image\/(png|jpe?g|gif|webp);base64,/i.test(url)) {
    return h("img", { class: "thumb", src: url, alt: "image in the message" });
  }
  return h("div", { class: "toolcall" }, h("span", { class: "muted" }, `image${mediaType ? ` (${mediaType})` : ""}: `), h("span", { class: "mono" }, String(url ?? "")));
}

function toolCall(name, args, id) {
  return h("div", { class: "toolcall" },
    h("div", { class: "row" }, h("span", { class: "muted" }, "calls tool"), h("span", { class: "name" }, name || "?"), id ? h("span", { class: "faint mono" }, id) : null),
    jsonBlock(typeof args === "string" ? args : JSON.stringify(args ?? {})));
}

function reasoning(text) {
  if (!text) return null;
  return h("details", { class: "reasoning" }, h("summary", null, "Reasoning"), h("div", { class: "msg-body" }, text));
}

/** The body of one message in OpenAI or Anthropic form: text, images, tool calls and results, reasoning. */
function messageBody(message) {
  const nodes = [];
  nodes.push(reasoning(message.reasoning_content || message.reasoning));
  for (const block of message.thinking_blocks || []) nodes.push(reasoning(block.thinking));
  const content = message.content;
  if (typeof content === "string") {
    if (content) nodes.push(h("div", null, content));
  } else if (Array.isArray(content)) {
    for (const part of content) {
      if (typeof part === "string") { nodes.push(h("div", null, part)); continue; }
      switch (part?.type) {
        case "text": case "input_text": case "output_text": nodes.push(h("div", null, part.text ?? "")); break;
        case "image_url": nodes.push(image(part.image_url?.url ?? part.image_url)); break;
        case "image": nodes.push(image(part.source?.type === "base64" ? `data:${part.source.media_type};base64,${part.source.data}` : part.source?.url, part.source?.media_type)); break;
        case "thinking": nodes.push(reasoning(part.thinking)); break;
        case "redacted_thinking": nodes.push(h("div", { class: "faint" }, "(redacted reasoning)")); break;
        case "tool_use": nodes.push(toolCall(part.name, part.input, part.id)); break;
        case "tool_result": nodes.push(h("div", { class: "toolcall" }, h("div", { class: "muted" }, `result of ${part.tool_use_id || "a tool"}`, part.is_error ? " (error)" : ""), h("div", null, textOf(part.content)))); break;
        default: nodes.push(jsonBlock(part));
      }
    }
  } else if (content != null) {
    nodes.push(jsonBlock(content));
  }
  for (const call of message.tool_calls || []) nodes.push(toolCall(call.function?.name, call.function?.arguments, call.id));
  if (message.function_call) nodes.push(toolCall(message.function_call.name, message.function_call.arguments));
  if (!nodes.some(Boolean)) nodes.push(h("span", { class: "faint" }, "(empty)"));
  return nodes;
}

function bubble(role, message, { answer = false, extra } = {}) {
  const kind = ["system", "developer"].includes(role) ? "system" : role === "assistant" ? "assistant" : role === "tool" || role === "function" ? "tool" : "user";
  return h("div", { class: ["msg", kind, answer && "answer"], dataset: { role } },
    h("div", { class: "msg-head" }, answer ? "answer" : role, message.name ? h("span", { class: "faint" }, message.name) : null,
      message.tool_call_id ? h("span", { class: "faint mono" }, `for ${message.tool_call_id}`) : null, extra),
    h("div", { class: "msg-body" }, messageBody(message)));
}

/** The request's messages, whichever API the client spoke. */
function conversation(request) {
  const bubbles = [];
  if (!request || typeof request !== "object") return bubbles;
  if (request.system) {
    bubbles.push(bubble("system", { content: typeof request.system === "string" ? request.system : textOf(request.system) }));
  }
  for (const message of request.messages || []) bubbles.push(bubble(message.role || "user", message));
  return bubbles;
}

/** The answer's messages (one per choice). */
function answers(response) {
  if (!response || typeof response !== "object") return [];
  if (Array.isArray(response.choices)) {
    return response.choices.map((choice) => bubble("assistant", choice.message || choice.delta || {}, {
      answer: true, extra: choice.finish_reason ? h("span", { class: "faint" }, choice.finish_reason) : null,
    }));
  }
  if (Array.isArray(response.content)) return [bubble("assistant", response, { answer: true })];
  return [];
}

function fact(label, value) {
  return [h("dt", null, label), h("dd", null, value ?? h("span", { class: "faint" }, "—"))];
}

/** The total latency as upstream time and the gateway's own time. */
function latencySplit(call) {
  const total = call.total_latency_ms;
  const overhead = call.overhead_ms ?? null;
  const upstream = total != null && overhead != null ? Math.max(0, total - overhead) : call.request_latency_ms;
  const width = 100;
  const up = total > 0 && upstream != null ? (upstream / total) * width : 0;
  return h("div", null,
    h("div", { class: "row" }, h("strong", null, ms(total)), h("span", { class: "muted" }, "total")),
    s("svg", { class: "split-svg", viewBox: "0 0 100 10", preserveAspectRatio: "none", role: "img", "aria-label": "latency split" },
      s("rect", { class: "track", x: 0, y: 0, width: 100, height: 10 }),
      s("rect", { class: "upstream", x: 0, y: 0, width: up.toFixed(2), height: 10 }),
      s("rect", { class: "overhead", x: up.toFixed(2), y: 0, width: Math.max(0, Math.min(100 - up, total > 0 && overhead != null ? (overhead / total) * 100 : 0)).toFixed(2), height: 10 })),
    h("div", { class: "legend" },
      h("span", null, h("span", { class: "swatch c0" }), "Upstream ", ms(upstream)),
      h("span", null, h("span", { class: "swatch c3" }), "Gateway overhead ", ms(overhead))));
}

function attemptsTimeline(call) {
  const attempts = call.attempts || [];
  if (!attempts.length) {
    return h("div", { class: "attempts" }, h("div", { class: "attempt" }, h("span", { class: ["dot", call.http_status >= 400 && "err"] }),
      h("div", { class: "what" }, h("div", null, call.provider || "?", " · ", call.model || "?"), h("div", { class: "muted" }, call.http_status >= 400 ? "failed" : "answered on the first try")),
      h("span", { class: "muted" }, ms(call.request_latency_ms ?? call.total_latency_ms))));
  }
  return h("div", { class: "attempts", id: "attempts" }, attempts.map((attempt, index) => {
    const failed = attempt.kind != null || (attempt.status ?? 200) >= 400;
    return h("div", { class: "attempt" }, h("span", { class: ["dot", failed && "err"] }),
      h("div", { class: "what" },
        h("div", null, `${index + 1}. `, attempt.provider, " · ", attempt.model),
        h("div", { class: "muted" }, failed ? [attempt.status ? `${attempt.status} ` : "", attempt.kind || "error", attempt.message ? `: ${attempt.message}` : ""] : "answered")),
      h("span", { class: "muted nowrap" }, ms(attempt.latency_ms)));
  }));
}

/** A shell command that repeats the request; `$CHRONICLE_KEY` stands for the key. */
export function curlCommand(call, origin) {
  const request = parse(call.chat_request);
  const anthropic = call.meta && typeof call.meta === "object" && call.meta.api === "anthropic_messages";
  const path = anthropic ? "/v1/messages" : "/v1/chat/completions";
  const body = JSON.stringify(request ?? {});
  const quote = (text) => "'" + text.replace(/'/g, "'\\''") + "'";
  const lines = [`curl ${quote(origin + path)}`, `  -H 'content-type: application/json'`];
  lines.push(anthropic ? `  -H "x-api-key: $CHRONICLE_KEY"` : `  -H "authorization: Bearer $CHRONICLE_KEY"`);
  if (anthropic) lines.push(`  -H 'anthropic-version: 2023-06-01'`);
  for (const [header, value] of [["x-chronicle-application", call.application], ["x-chronicle-environment", call.environment], ["x-chronicle-user-id", call.request_user_id]]) {
    if (value) lines.push(`  -H ${quote(`${header}: ${value}`)}`);
  }
  lines.push(`  -d ${quote(body)}`);
  return lines.join(" \\\n");
}

async function copy(text, button) {
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    const area = h("textarea", { class: "offscreen" }, text);
    document.body.append(area);
    area.select();
    document.execCommand("copy");
    area.remove();
  }
  const label = button.textContent;
  button.textContent = "Copied";
  setTimeout(() => { button.textContent = label; }, 1400);
}

export function render(main, route) {
  const id = route.parts[1];
  mount(main, h("div", { class: "spinner" }, "Loading call…"));
  let cancelled = false;
  getJSON("/v1/calls/" + encodeURIComponent(id)).then((call) => {
    if (!cancelled) show(main, call);
  }).catch((error) => {
    if (cancelled) return;
    mount(main, h("div", { class: "crumbs" }, h("a", { href: "#/calls" }, "Calls")),
      notice(error instanceof ApiError && error.status === 404 ? "No such call." : "Could not load the call.", error.message, "err"));
  });
  return () => { cancelled = true; };
}

function show(main, call) {
  const request = parse(call.chat_request);
  const response = parse(call.chat_response);
  const error = parse(call.error);
  const failed = call.http_status >= 400;
  const curl = curlCommand(call, location.origin);
  const curlButton = h("button", { class: "btn small", type: "button", id: "copy-curl", title: "Copy a curl command that repeats this request; the key is $CHRONICLE_KEY" }, "Copy as curl");
  curlButton.addEventListener("click", () => copy(curl, curlButton));
  const raw = h("pre", { class: "json", id: "raw-json", hidden: true }, JSON.stringify(call, null, 2));
  const rawButton = h("button", { class: "btn small", type: "button", id: "raw-toggle" }, "Raw JSON");
  rawButton.addEventListener("click", () => { raw.hidden = !raw.hidden; rawButton.classList.toggle("on", !raw.hidden); });
  document.title = `${call.model || "Call"} · Chronicle`;

  const usage = response?.usage || {};
  const meta = call.meta && typeof call.meta === "object" && !Array.isArray(call.meta) ? call.meta : null;
  const chat = conversation(request);
  const answer = answers(response);

  mount(main,
    h("div", { class: "crumbs" }, h("a", { href: "#/calls" }, "Calls"), " / ", h("span", { class: "mono" }, call.id),
      call.run_id ? [" · ", h("a", { href: `#/runs/${encodeURIComponent(call.run_id)}${call.step_id ? `?step=${encodeURIComponent(call.step_id)}` : ""}`, id: "call-run-link" }, "Open its run")] : null),
    h("div", { class: "page-head" },
      h("div", null,
        h("div", { class: "row" }, h("h1", null, call.model || "Call"), statusBadge(call.http_status ?? "unknown"),
          call.streamed ? badge("streamed", "info plain") : null, call.retries > 0 ? badge(failed ? `${call.retries} retries` : "fallback", "warn plain") : null),
        h("div", { class: "sub" }, `${call.provider || "no provider"} · ${fullTime(call.created_at)}`)),
      h("div", { class: "toolbar" }, curlButton, rawButton)),
    raw,
    h("div", { class: "detail-grid" },
      h("div", { class: "stack" },
        error && error !== "null" && typeof error === "object" ? h("div", { class: "notice err", id: "call-error" },
          h("strong", null, `${error.kind || "error"}${error.status ? ` (${error.status})` : ""}${error.provider ? ` from ${error.provider}` : ""}: `),
          error.message || "", error.body ? jsonBlock(error.body) : null) : null,
        h("div", { class: "card" }, h("h2", null, "Conversation"),
          h("div", { class: "chat", id: "conversation" }, chat.length ? chat : h("div", { class: "muted" }, "No messages recorded."))),
        h("div", { class: "card" }, h("h2", null, "Answer"),
          h("div", { class: "chat", id: "answer" }, answer.length ? answer : h("div", { class: "muted" }, failed ? "No answer: the call failed." : "No answer recorded.")))),
      h("div", { class: "stack" },
        h("div", { class: "card" }, h("h2", null, "Latency"), latencySplit(call)),
        h("div", { class: "card" }, h("h2", null, "Usage and cost"),
          h("dl", { class: "facts", id: "usage" },
            fact("Cost", h("strong", { id: "call-cost" }, usd(call.cost_usd))),
            fact("Input tokens", num(call.input_tokens)),
            fact("Output tokens", num(call.output_tokens)),
            call.cached_tokens ? fact("Cached input", num(call.cached_tokens)) : null,
            call.reasoning_tokens ? fact("Reasoning", num(call.reasoning_tokens)) : null,
            fact("Total tokens", num(call.total_tokens ?? usage.total_tokens)))),
        h("div", { class: "card" }, h("h2", null, "Attempts"), attemptsTimeline(call)),
        h("div", { class: "card" }, h("h2", null, "Metadata"),
          h("dl", { class: "facts", id: "metadata" },
            fact("Application", call.application), fact("Environment", call.environment),
            fact("User", call.request_user_id), fact("Gateway key", call.gateway_key),
            call.workflow_name || call.workflow_id ? fact("Workflow", call.workflow_name || call.workflow_id) : null,
            call.run_id ? fact("Run", h("a", { href: `#/runs/${encodeURIComponent(call.run_id)}` }, String(call.run_id).slice(0, 8))) : null,
            call.step_id ? fact("Step", h("span", { class: "mono" }, String(call.step_id).slice(0, 8))) : null,
            call.prompt_id ? fact("Prompt", `${call.prompt_id}${call.prompt_version != null ? ` v${call.prompt_version}` : ""}`) : null,
            meta ? Object.entries(meta).map(([key, value]) => fact(key, typeof value === "string" ? value : JSON.stringify(value))) : null,
            fact("Call id", h("span", { class: "mono" }, call.id)))))));
}
