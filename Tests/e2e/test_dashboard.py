"""End-to-end: the web dashboard at /ui/ in a real browser (Playwright driving Debian's Chromium).

A small upstream in this process answers like OpenAI (and fails on purpose for some models); calls, a failure,
a fallback and a run with nested steps go through `chronicle serve`; then each page is opened and checked for
what a person would see. Screenshots of every page go to Tests/e2e/artifacts/.
"""
import json
import pathlib
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from chronicle_server import free_port, start_chronicle

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect

ROOT = pathlib.Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "Tests" / "Fixtures" / "providers"
ARTIFACTS = ROOT / "Tests" / "e2e" / "artifacts"
CHROMIUM = "/usr/bin/chromium"
ADMIN_KEY = "admin-secret-for-the-dashboard"
XSS_PROMPT = "<img src=x onerror=alert(1)>"
XSS_ANSWER = "Here you go: <script>alert(2)</script><img src=y onerror=alert(3)>"
RUN_ID = str(uuid.uuid4())
ROOT_STEP = str(uuid.uuid4())
SEARCH_STEP = str(uuid.uuid4())
WRITE_STEP = str(uuid.uuid4())
TINY_PNG = ("data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==")


class Upstream(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        model = body.get("model")
        if model == "gpt-broken":
            return self.reply(400, {"error": {"message": "The model gpt-broken does not exist", "type": "invalid_request_error"}})
        if model == "gpt-flaky":
            return self.reply(500, {"error": {"message": "upstream overloaded", "type": "server_error"}})
        text = json.dumps(body.get("messages", [])[-1].get("content", ""))
        answer = XSS_ANSWER if "onerror" in text else "The capital of France is Paris."
        response = json.loads((FIXTURES / "openai_text_response_nonstreaming.json").read_text())
        response["model"] = model
        response["choices"][0]["message"]["content"] = answer
        if body.get("tools"):
            response["choices"][0]["message"]["tool_calls"] = [{
                "id": "call_weather_1", "type": "function",
                "function": {"name": "get_weather", "arguments": json.dumps({"city": "Paris", "unit": "celsius"})}}]
            response["choices"][0]["finish_reason"] = "tool_calls"
        self.reply(200, response)

    def reply(self, status, payload):
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class Gateway:
    def __init__(self, base):
        self.base = base

    def post(self, path, payload, headers=None):
        request = urllib.request.Request(self.base + path, data=json.dumps(payload).encode(), method="POST",
                                         headers={"content-type": "application/json", **(headers or {})})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read() or b"null"), dict(response.headers)
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null"), dict(error.headers)

    def get(self, path):
        request = urllib.request.Request(self.base + path, headers={"authorization": f"Bearer {ADMIN_KEY}"})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, None

    def chat(self, model, content, headers=None, **extra):
        return self.post("/v1/chat/completions", {"model": model, "messages": content if isinstance(content, list)
                                                  else [{"role": "user", "content": content}], **extra}, headers)

    def wait_for_calls(self, count):
        deadline = time.time() + 15
        while time.time() < deadline:
            status, page = self.get("/v1/calls?limit=500")
            if status == 200 and len(page["data"]) >= count:
                return page["data"]
            time.sleep(0.1)
        raise AssertionError(f"expected {count} stored calls")


@pytest.fixture(scope="module")
def gateway():
    upstream = ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    port = free_port()
    with tempfile.TemporaryDirectory() as directory:
        config = pathlib.Path(directory) / "chronicle.toml"
        config.write_text(f"""
[security]
admin_key = "{ADMIN_KEY}"

[[providers]]
name = "openai"
url = "http://127.0.0.1:{upstream.server_port}/v1/chat/completions"
prefix = "gpt-"
api_key = "sk-upstream"
""")
        process = None
        try:
            process = start_chronicle(config, port, directory)
            gateway = Gateway(f"http://127.0.0.1:{port}")
            seed(gateway)
            yield gateway
        finally:
            if process is not None:
                process.terminate()
                process.wait(timeout=30)
            upstream.shutdown()


def seed(gateway):
    """Calls (successes, a failure, a fallback, a tool call, an image, hostile text) and a run with nested steps."""
    events = [
        {"type": "run:start", "id": RUN_ID, "name": "trip-planner", "description": "Plans a weekend in Paris",
         "application": "agent", "input": {"goal": "weekend in Paris"}, "tags": ["demo"]},
        {"type": "step:start", "run_id": RUN_ID, "step_id": ROOT_STEP, "data": {"type": "agent", "name": "plan trip", "input": {"city": "Paris"}}},
        {"type": "step:start", "run_id": RUN_ID, "step_id": SEARCH_STEP, "data": {"type": "tool", "name": "search weather", "parent_step": ROOT_STEP, "input": {"query": "weather Paris"}}},
    ]
    assert gateway.post("/v1/events", {"events": events})[0] == 202
    run_headers = {"x-chronicle-run-id": RUN_ID, "x-chronicle-application": "agent", "x-chronicle-user-id": "alice"}
    status, _, _ = gateway.chat("gpt-4o-mini", [
        {"role": "system", "content": "You are a travel agent."},
        {"role": "user", "content": [{"type": "text", "text": "What is the weather in Paris? Here is a photo."},
                                     {"type": "image_url", "image_url": {"url": TINY_PNG}}]}],
        {**run_headers, "x-chronicle-step-id": SEARCH_STEP},
        tools=[{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}])
    assert status == 200
    time.sleep(0.05)
    gateway.post("/v1/events", {"events": [
        {"type": "step:end", "run_id": RUN_ID, "step_id": SEARCH_STEP, "data": {"output": {"forecast": "sunny", "high_c": 24}}},
        {"type": "step:start", "run_id": RUN_ID, "step_id": WRITE_STEP, "data": {"type": "llm", "name": "write itinerary", "parent_step": ROOT_STEP}},
        {"type": "itinerary_draft", "run_id": RUN_ID, "step_id": WRITE_STEP, "data": {"days": 2}},
    ]})
    assert gateway.chat("gpt-4o", "Write a two-day itinerary for Paris.", {**run_headers, "x-chronicle-step-id": WRITE_STEP})[0] == 200
    time.sleep(0.05)
    gateway.post("/v1/events", {"events": [
        {"type": "step:end", "run_id": RUN_ID, "step_id": WRITE_STEP, "data": {"output": {"itinerary": "Day 1: Louvre. Day 2: Montmartre."}}},
        {"type": "step:end", "run_id": RUN_ID, "step_id": ROOT_STEP, "data": {"output": {"ok": True}}},
        {"type": "run:update", "id": RUN_ID, "status": "finished", "output": {"result": "planned"}},
    ]})
    for index in range(3):
        assert gateway.chat("gpt-4o-mini", f"Say hello #{index}", {"x-chronicle-application": "support-bot", "x-chronicle-user-id": "bob"})[0] == 200
    assert gateway.chat("gpt-broken", "This model does not exist", {"x-chronicle-application": "support-bot"})[0] == 400
    fallback = [{"model": "gpt-flaky", "provider": "openai"}, {"model": "gpt-4o-mini", "provider": "openai"}]
    assert gateway.chat("gpt-flaky", "Survive a failing upstream", {"x-chronicle-application": "support-bot",
                        "x-chronicle-models": json.dumps(fallback)})[0] == 200
    assert gateway.chat("gpt-4o-mini", XSS_PROMPT, {"x-chronicle-application": "xss-check"})[0] == 200
    gateway.wait_for_calls(SEEDED_CALLS)


SEEDED_CALLS = 8


@pytest.fixture(scope="module")
def browser():
    if not pathlib.Path(CHROMIUM).exists():
        pytest.skip("Chromium is not installed at /usr/bin/chromium (scripts/test.sh installs it)")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser
        browser.close()


class Page:
    """A signed-in page that records console errors, page errors and dialogs."""

    def __init__(self, browser, gateway, width=1280, height=800, sign_in=True, refused_key=False, scheme="light"):
        self.context = browser.new_context(viewport={"width": width, "height": height}, color_scheme=scheme)
        self.scheme = scheme
        self.page = self.context.new_page()
        self.gateway = gateway
        self.errors = []
        self.dialogs = []
        self.width = width
        self.refused_key = refused_key
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda error: self.errors.append(f"page error: {error}"))
        self.page.on("dialog", self._dialog)
        if sign_in:
            self.page.goto(gateway.base + "/ui/")
            self.page.fill("#admin-key", ADMIN_KEY)
            self.page.click("button[type=submit]")
            self.page.wait_for_selector("#nav:not([hidden])")

    def _console(self, message):
        if message.type != "error":
            return
        # APIs this gateway may not serve yet: the pages say so instead.
        if "Failed to load resource" in message.text and ("404" in message.text):
            return
        # The test that tries a wrong key expects it refused.
        if self.refused_key and "Failed to load resource" in message.text and ("401" in message.text or "403" in message.text):
            return
        self.errors.append(message.text)

    def _dialog(self, dialog):
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def open(self, hash_path):
        self.page.goto(self.gateway.base + "/ui/#" + hash_path)

    def shot(self, name):
        suffix = ("mobile" if self.width < 600 else "desktop") + ("-dark" if self.scheme == "dark" else "")
        self.page.wait_for_timeout(150)
        # From the top, so that the sticky navigation sits where a person first sees it.
        self.page.evaluate("window.scrollTo(0, 0)")
        self.page.wait_for_timeout(350)
        self.page.screenshot(path=str(ARTIFACTS / f"{name}-{suffix}.png"), full_page=True)

    def close(self):
        self.context.close()
        assert self.errors == [], self.errors
        assert self.dialogs == [], self.dialogs


def usage_available(gateway):
    return gateway.get("/v1/usage?since=1h")[0] != 404


def test_login_is_all_there_is_without_the_key(browser, gateway):
    view = Page(browser, gateway, sign_in=False, refused_key=True)
    page = view.page
    page.goto(gateway.base + "/ui/#/calls")
    page.wait_for_selector("#admin-key")
    assert page.locator("#nav").is_hidden()
    assert page.locator("#calls-table").count() == 0
    view.shot("login")
    page.fill("#admin-key", "wrong-key")
    page.click("button[type=submit]")
    page.wait_for_selector("text=That key was not accepted.")
    page.fill("#admin-key", ADMIN_KEY)
    page.click("button[type=submit]")
    page.wait_for_selector("#calls-body tr[data-id]")
    assert page.evaluate("sessionStorage.getItem('chronicle.adminKey')") == ADMIN_KEY
    view.close()


def test_ui_responses_carry_a_strict_csp(gateway):
    for path in ["/ui/", "/ui/app.js", "/ui/style.css", "/ui/nothing-here.js"]:
        try:
            response = urllib.request.urlopen(gateway.base + path, timeout=10)
        except urllib.error.HTTPError as error:
            response = error
        policy = response.headers["content-security-policy"]
        assert "default-src 'self'" in policy and "unsafe-inline" not in policy, path


def test_calls_page_lists_filters_and_tails(browser, gateway):
    view = Page(browser, gateway)
    page = view.page
    view.open("/calls")
    page.wait_for_selector("#calls-body tr[data-id]")
    rows = page.locator("#calls-body tr[data-id]")
    assert rows.count() == SEEDED_CALLS
    text = page.locator("#calls-body").inner_text()
    assert "support-bot" in text and "gpt-broken" in text and "400" in text
    assert "fallback" in text
    view.shot("calls")
    # A filter narrows the rows.
    page.select_option("select[name=status]", "error")
    expect(page.locator("#calls-body tr[data-id]")).to_have_count(1)
    assert "gpt-broken" in page.locator("#calls-body").inner_text()
    page.select_option("select[name=status]", "")
    page.fill("input[name=application]", "support-bot")
    expect(page.locator("#calls-body tr[data-id]")).to_have_count(5)
    page.fill("input[name=application]", "")
    expect(page.locator("#calls-body tr[data-id]")).to_have_count(SEEDED_CALLS)
    # The live tail: a call made now shows up without a reload.
    page.wait_for_selector("#live-toggle.on")
    page.wait_for_timeout(300)
    status, _, headers = gateway.chat("gpt-4o-mini", "A brand new call for the live tail", {"x-chronicle-application": "live-tail"})
    assert status == 200
    call_id = headers.get("x-chronicle-call-id") or headers.get("X-Chronicle-Call-Id")
    page.wait_for_selector(f"#calls-body tr[data-id='{call_id}']", timeout=10000)
    assert "live-tail" in page.locator(f"#calls-body tr[data-id='{call_id}']").inner_text()
    # Committed before announced: clicking it opens it.
    page.click(f"#calls-body tr[data-id='{call_id}'] a")
    page.wait_for_selector("#conversation")
    assert "A brand new call for the live tail" in page.locator("#conversation").inner_text()
    view.close()


def test_call_detail_shows_the_conversation(browser, gateway):
    calls = gateway.wait_for_calls(SEEDED_CALLS)
    tool_call = next(call for call in calls if call["model"] == "gpt-4o-mini" and call["run_id"])
    view = Page(browser, gateway)
    page = view.page
    view.open("/calls/" + tool_call["id"])
    page.wait_for_selector("#conversation .msg")
    view.shot("call")
    roles = page.eval_on_selector_all("#conversation .msg", "nodes => nodes.map(n => n.dataset.role)")
    assert roles == ["system", "user"]
    conversation = page.locator("#conversation").inner_text()
    assert "You are a travel agent." in conversation and "What is the weather in Paris?" in conversation
    assert page.locator("#conversation img.thumb").count() == 1
    answer = page.locator("#answer").inner_text()
    assert "get_weather" in answer and '"city": "Paris"' in answer  # pretty-printed arguments
    assert "Input tokens" in page.locator("#usage").inner_text()
    assert "agent" in page.locator("#metadata").inner_text()
    # Copy as curl: the request, with a placeholder for the key.
    view.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.click("#copy-curl")
    page.wait_for_selector("#copy-curl:text('Copied')")
    curl = page.evaluate("navigator.clipboard.readText()")
    assert curl.startswith("curl ") and "/v1/chat/completions" in curl and "$CHRONICLE_KEY" in curl
    assert ADMIN_KEY not in curl and "sk-upstream" not in curl
    page.click("#raw-toggle")
    assert tool_call["id"] in page.locator("#raw-json").inner_text()
    page.click("#raw-toggle")
    view.close()


def test_failed_and_fallback_calls_show_their_attempts(browser, gateway):
    calls = gateway.wait_for_calls(SEEDED_CALLS)
    failed = next(call for call in calls if call["model"] == "gpt-broken")
    fallback = next(call for call in calls if (call.get("retries") or 0) > 0 and call["http_status"] == 200)
    view = Page(browser, gateway)
    page = view.page
    view.open("/calls/" + failed["id"])
    page.wait_for_selector("#call-error")
    assert "does not exist" in page.locator("#call-error").inner_text()
    view.open("/calls/" + fallback["id"])
    page.wait_for_selector("#attempts")
    attempts = page.locator("#attempts .attempt")
    assert attempts.count() == 2
    assert "gpt-flaky" in attempts.nth(0).inner_text() and "500" in attempts.nth(0).inner_text()
    assert "answered" in attempts.nth(1).inner_text()
    view.close()


def test_click_through_calls_call_run_step(browser, gateway):
    view = Page(browser, gateway)
    page = view.page
    view.open("/calls")
    page.fill("input[name=run_id]", RUN_ID)
    expect(page.locator("#calls-body tr[data-id]")).to_have_count(2)
    page.locator("#calls-body tr[data-id] a").first.click()
    page.wait_for_selector("#call-run-link")
    page.click("#call-run-link")
    page.wait_for_selector("#step-tree .tree-node")
    nodes = page.locator("#step-tree .tree-node")
    assert nodes.count() == 3
    # Nested: the two child steps sit in the root step's list.
    assert page.locator("#step-tree > ul > li > ul > li").count() == 2
    tree = page.locator("#step-tree").inner_text()
    assert "plan trip" in tree and "search weather" in tree and "write itinerary" in tree
    # One bar per step and per call on the waterfall.
    assert page.locator("#waterfall rect.bar.step").count() == 3
    assert page.locator("#waterfall rect.bar.call").count() == 2
    page.click("#step-tree .tree-node:has-text('search weather')")
    page.wait_for_selector("#step-detail h2:text('search weather')")
    detail = page.locator("#step-detail").inner_text()
    assert "weather Paris" in detail and "sunny" in detail
    assert page.locator("#step-calls tbody tr").count() == 1
    assert "itinerary_draft" in page.locator("#events").inner_text()
    view.shot("run")
    page.locator("#step-calls tbody tr a").first.click()
    page.wait_for_selector("#conversation")
    view.close()


def test_runs_page_lists_the_run(browser, gateway):
    view = Page(browser, gateway)
    page = view.page
    view.open("/runs")
    page.wait_for_selector(f"#runs-body tr[data-id='{RUN_ID}']")
    row = page.locator(f"#runs-body tr[data-id='{RUN_ID}']").inner_text()
    assert "trip-planner" in row and "finished" in row
    cells = page.locator(f"#runs-body tr[data-id='{RUN_ID}'] td")
    assert cells.nth(4).inner_text() == "3" and cells.nth(5).inner_text() == "2"
    view.shot("runs")
    view.close()


def test_hostile_text_is_shown_as_text_and_never_runs(browser, gateway):
    calls = gateway.wait_for_calls(SEEDED_CALLS)
    hostile = next(call for call in calls if call["application"] == "xss-check")
    view = Page(browser, gateway)
    page = view.page
    view.open("/calls/" + hostile["id"])
    page.wait_for_selector("#answer .msg")
    assert XSS_PROMPT in page.locator("#conversation").inner_text()
    assert "<script>alert(2)</script>" in page.locator("#answer").inner_text()
    assert page.locator("#conversation img, #answer img, #answer script").count() == 0
    view.open("/calls")
    page.wait_for_selector("#calls-body tr[data-id]")
    page.wait_for_timeout(300)
    assert page.locator("img[src=x], img[src=y], #main script").count() == 0
    view.close()  # no dialogs (an alert would be one), no errors


def test_overview_degrades_or_charts(browser, gateway):
    view = Page(browser, gateway)
    page = view.page
    view.open("/")
    if not usage_available(gateway):
        page.wait_for_selector("#usage-unavailable")
        assert "Usage API unavailable" in page.locator("#usage-unavailable").inner_text()
        view.shot("overview")
        view.close()
        return
    page.wait_for_selector("#chart-requests")
    view.shot("overview")
    view.close()


def test_overview_charts_match_usage(browser, gateway):
    if not usage_available(gateway):
        pytest.skip("this gateway has no /v1/usage yet")
    status, hourly = gateway.get("/v1/usage?interval=hour&since=24h")
    assert status == 200
    buckets = {row["bucket"] for row in hourly["rows"] if row["requests"] > 0}
    total = sum(row["requests"] for row in hourly["rows"])
    view = Page(browser, gateway)
    page = view.page
    view.open("/?range=24h")
    page.wait_for_selector("#chart-requests circle.pt")
    points = page.eval_on_selector_all("#chart-requests circle.pt[data-series=Requests]", "nodes => nodes.map(n => Number(n.dataset.value))")
    assert len(points) == len(buckets)
    assert sum(points) == total
    assert page.locator("#kpi-requests").inner_text().replace(",", "") == str(total)
    cost = sum(row["cost_usd"] or 0 for row in hourly["rows"])
    if cost > 0:
        assert page.locator("#kpi-cost").inner_text().startswith("$")
    top_models = page.locator("[data-group=model]").inner_text()
    assert "gpt-4o-mini" in top_models
    view.close()


def test_budgets_page(browser, gateway):
    view = Page(browser, gateway)
    page = view.page
    view.open("/budgets")
    page.wait_for_selector("#budgets :is(table, .empty)")
    page.wait_for_selector("#keys :is(table, .empty)")
    if gateway.get("/v1/budgets")[0] == 404:
        assert "Budgets API unavailable" in page.locator("#budgets").inner_text()
    if not usage_available(gateway):
        assert "Usage API unavailable" in page.locator("#keys").inner_text()
    view.shot("budgets")
    view.close()


@pytest.mark.parametrize("path,ready,name", [
    ("/", "#overview-body :is(#kpis, #usage-unavailable)", "overview"),
    ("/calls", "#calls-body tr[data-id]", "calls"),
    ("/runs", "#runs-body tr[data-id]", "runs"),
    (f"/runs/{RUN_ID}?step={SEARCH_STEP}", "#waterfall rect.bar", "run"),
    ("/budgets", "#keys :is(table, .empty)", "budgets"),
])
def test_pages_fit_a_phone(browser, gateway, path, ready, name):
    view = Page(browser, gateway, width=390, height=844)
    page = view.page
    view.open(path)
    page.wait_for_selector(ready)
    page.wait_for_timeout(200)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"{name} is {width}px wide"
    view.shot(name)
    view.close()


def test_call_detail_fits_a_phone(browser, gateway):
    calls = gateway.wait_for_calls(SEEDED_CALLS)
    tool_call = next(call for call in calls if call["model"] == "gpt-4o-mini" and call["run_id"])
    view = Page(browser, gateway, width=390, height=844)
    page = view.page
    view.open("/calls/" + tool_call["id"])
    page.wait_for_selector("#conversation .msg")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    view.shot("call")
    view.close()


def stub_usage(page, now_ms):
    """Answers /v1/usage and /v1/budgets in the browser with the agreed shapes, so that the charts and tables
    are checked against the contract even where the gateway does not serve them yet."""
    hour = 3600000
    base = now_ms // hour * hour
    hours_with_traffic = [0, 1, 2, 5, 9, 13, 20]

    def iso(ms):
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms / 1000))

    def rows_for(url):
        query = dict(part.split("=", 1) for part in url.split("?", 1)[1].split("&")) if "?" in url else {}
        group = query.get("group_by")
        if query.get("interval") == "hour":
            return [{"group": {}, "bucket": iso(base - h * hour), "requests": 10 + h, "errors": h % 3,
                     "input_tokens": 1000 * (h + 1), "output_tokens": 400 * (h + 1), "cached_input_tokens": 0,
                     "reasoning_tokens": 0, "cost_usd": 0.01 * (h + 1), "latency_p50_ms": 300 + 10 * h,
                     "latency_p95_ms": 900 + 30 * h} for h in reversed(hours_with_traffic)]
        if group:
            names = {"model": ["gpt-4o", "claude-sonnet-4", "gpt-4o-mini"], "application": ["support-bot", "agent"],
                     "user_id": ["alice", "bob"], "gateway_key": ["team-a", "team-b", "ci"]}[group]
            return [{"group": {group: name}, "bucket": None, "requests": 50 - 10 * i, "errors": i,
                     "input_tokens": 9000, "output_tokens": 3000, "cached_input_tokens": 0, "reasoning_tokens": 0,
                     "cost_usd": 1.25 / (i + 1), "latency_p50_ms": 320, "latency_p95_ms": 1100} for i, name in enumerate(names)]
        return [{"group": {}, "bucket": None, "requests": 133, "errors": 6, "input_tokens": 43000, "output_tokens": 17200,
                 "cached_input_tokens": 0, "reasoning_tokens": 0, "cost_usd": 2.5, "latency_p50_ms": 341, "latency_p95_ms": 1210}]

    def usage(route):
        route.fulfill(status=200, content_type="application/json",
                      body=json.dumps({"group_by": [], "interval": None, "since": iso(base - 86400000), "until": iso(now_ms),
                                       "rows": rows_for(route.request.url)}))

    def budgets(route):
        route.fulfill(status=200, content_type="application/json", body=json.dumps({"budgets": [
            {"name": "team-a daily", "scope": "gateway_key", "subject": "team-a", "window": "day", "limit_usd": 20,
             "spend_usd": 17.5, "resets_at": iso(base + 5 * hour)},
            {"name": "alice monthly", "scope": "user", "subject": "alice", "window": "month", "limit_usd": 100,
             "spend_usd": 12.25, "resets_at": iso(base + 12 * 86400000)}]}))

    page.route("**/v1/usage*", usage)
    page.route("**/v1/budgets*", budgets)
    return len(hours_with_traffic), sum(10 + h for h in hours_with_traffic)


@pytest.mark.parametrize("width,height", [(1280, 800), (390, 844)])
def test_overview_and_budgets_draw_the_agreed_usage_shapes(browser, gateway, width, height):
    view = Page(browser, gateway, width=width, height=height)
    page = view.page
    points, requests = stub_usage(page, int(time.time() * 1000))
    view.open("/?range=24h")
    page.wait_for_selector("#chart-requests circle.pt")
    values = page.eval_on_selector_all("#chart-requests circle.pt[data-series=Requests]", "nodes => nodes.map(n => Number(n.dataset.value))")
    assert len(values) == points and sum(values) == requests
    assert page.locator("#chart-latency circle.pt").count() == 2 * points
    assert page.locator("#chart-cost rect.bar").count() == points
    assert page.locator("#kpi-requests").inner_text() == "133"
    assert page.locator("#kpi-cost").inner_text() == "$2.50"
    assert "claude-sonnet-4" in page.locator("[data-group=model]").inner_text()
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    view.shot("overview-usage")
    page.click("#range button[data-range='7d']")
    page.wait_for_selector("#chart-requests circle.pt")
    view.open("/budgets")
    page.wait_for_selector("#budgets-table")
    budgets = page.locator("#budgets-table").inner_text()
    assert "team-a daily" in budgets and "$17.50" in budgets and "$20.00" in budgets
    assert "team-a" in page.locator("#keys-table").inner_text()
    view.shot("budgets-usage")
    view.close()


def test_a_running_run_updates_live(browser, gateway):
    run_id = str(uuid.uuid4())
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    assert gateway.post("/v1/events", {"events": [
        {"type": "run:start", "id": run_id, "name": "live-run"},
        {"type": "step:start", "run_id": run_id, "step_id": first, "data": {"type": "task", "name": "first step"}}]})[0] == 202
    view = Page(browser, gateway)
    page = view.page
    deadline = time.time() + 10
    while gateway.get(f"/v1/runs/{run_id}")[0] != 200 and time.time() < deadline:
        time.sleep(0.1)
    view.open(f"/runs/{run_id}")
    page.wait_for_selector("#step-tree .tree-node:has-text('first step')")
    assert gateway.post("/v1/events", {"events": [
        {"type": "step:start", "run_id": run_id, "step_id": second, "data": {"type": "task", "name": "second step", "parent_step": first}},
        {"type": "step:end", "run_id": run_id, "step_id": second, "data": {"output": {"done": True}}}]})[0] == 202
    page.wait_for_selector("#step-tree .tree-node:has-text('second step')", timeout=10000)
    assert gateway.post("/v1/events", {"events": [{"type": "run:update", "id": run_id, "status": "finished"}]})[0] == 202
    page.wait_for_selector(".page-head .badge.ok:text('finished')", timeout=10000)
    view.close()


def test_live_tail_keeps_up_with_a_flood(browser, gateway):
    """5,000 calls pushed at once (ten seconds at 500 calls/s) are batched: the table keeps the newest 200 rows
    and the page stays responsive."""
    calls = gateway.wait_for_calls(SEEDED_CALLS)
    template = calls[0]
    now = time.time()
    events = []
    for batch in range(10):
        chunk = []
        for index in range(500):
            number = batch * 500 + index
            chunk.append({**template, "id": str(uuid.UUID(int=number + 1)), "application": f"flood-{number}",
                          "created_at": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now + number / 1000)) + "Z"})
        events.append("data: " + json.dumps(chunk) + "\n\n")
    view = Page(browser, gateway)
    page = view.page
    served = []

    def tail(route):
        # The first connection gets the flood; reconnections get an empty stream.
        body = "".join(events) if not served else ": nothing new\n\n"
        served.append(1)
        route.fulfill(status=200, content_type="text/event-stream", body=body)

    page.route("**/v1/calls/tail", tail)
    started = time.time()
    view.open("/calls")
    page.wait_for_selector("#calls-body tr[data-id='" + str(uuid.UUID(int=5000)) + "']", timeout=10000)
    expect(page.locator("#calls-body tr[data-id]")).to_have_count(200)
    assert time.time() - started < 8
    # Responsive: a click right after still navigates.
    page.click("#calls-body tr[data-id] a")
    page.wait_for_selector("#conversation, .notice")
    view.close()


def test_the_binary_copied_alone_serves_the_dashboard(tmp_path, monkeypatch):
    import shutil
    import chronicle_server
    alone = tmp_path / "bin" / "chronicle"
    alone.parent.mkdir()
    shutil.copy2(chronicle_server.BINARY, alone)
    monkeypatch.setattr(chronicle_server, "BINARY", str(alone))
    work = tmp_path / "elsewhere"
    work.mkdir()
    config = work / "chronicle.toml"
    config.write_text('log_to_database = false\n')
    port = free_port()
    process = start_chronicle(config, port, work)
    try:
        for path, kind in [("/ui/", "text/html"), ("/ui/app.js", "text/javascript"), ("/ui/style.css", "text/css"),
                           ("/ui/pages/run.js", "text/javascript")]:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
                assert response.status == 200 and response.headers["content-type"].startswith(kind), path
                assert len(response.read()) > 100
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_dark_theme(browser, gateway):
    view = Page(browser, gateway, scheme="dark")
    page = view.page
    view.open(f"/runs/{RUN_ID}?step={SEARCH_STEP}")
    page.wait_for_selector("#waterfall rect.bar")
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background != "rgb(246, 247, 249)"  # the dark palette, not the light one
    view.shot("run")
    view.close()
