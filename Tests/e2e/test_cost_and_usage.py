"""End-to-end: a priced call's cost header, a key's budget that survives a restart, /v1/usage and /v1/budgets,
and `chronicle usage` and `chronicle prices` on the same database.

The upstream answers 1,000 prompt tokens (400 of them cached) and 50 completion tokens; `[[prices]]` prices its
model at $1 input, $0.50 cached input and $2 output per million: each call costs $0.0009. The key may spend
$0.001 a day, so its second call is refused, before and after a restart.
"""
import json
import pathlib
import signal
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from chronicle_server import BINARY, free_port, start_chronicle

KEY = "chr-cost-key-0123456789"


class Upstream(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    calls = 0

    def log_message(self, *args):
        pass

    def do_POST(self):
        Upstream.calls += 1
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        data = json.dumps({
            "id": "c", "object": "chat.completion", "created": 1, "model": body["model"],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 1000, "completion_tokens": 50, "total_tokens": 1050,
                      "prompt_tokens_details": {"cached_tokens": 400}},
        }).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture()
def upstream():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()


def request(port, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method="POST" if data else "GET",
                                 headers={"authorization": f"Bearer {KEY}", "content-type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as response:
            return response.status, response.headers, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, error.headers, json.loads(error.read())


def chat(port):
    return request(port, "/v1/chat/completions", {"model": "up/m-priced", "messages": [{"role": "user", "content": "hi"}]})


def test_cost_budget_usage_and_cli(upstream):
    with tempfile.TemporaryDirectory() as directory:
        config = pathlib.Path(directory) / "chronicle.toml"
        config.write_text(f"""
database = "chronicle.db"
log_flush_interval = "50ms"

[[providers]]
name = "up"
url = "http://127.0.0.1:{upstream.server_port}/v1/chat/completions"
prefix = "up/"
api_key = "sk-upstream"
format = "openai"

[[gateway_keys]]
name = "team-a"
key = "{KEY}"
max_cost_usd_per_day = 0.001

[[prices]]
provider = "up"
model = "m-priced"
input = 1
cached_input = 0.5
output = 2
""")
        port = free_port()
        process = start_chronicle(config, port, directory)
        try:
            status, headers, _ = chat(port)
            assert status == 200
            assert float(headers["x-chronicle-cost-usd"]) == pytest.approx(0.0009)
            status, headers, body = chat(port)
            assert status == 200, "spend 0.0009 is under the limit"
            status, headers, body = chat(port)
            assert status == 429 and body["error"]["kind"] == "budget_exceeded", body
            assert "gateway_key:team-a:day" in body["error"]["message"]
            assert int(headers["retry-after"]) > 0
            assert Upstream.calls == 2
            deadline = time.time() + 10
            while time.time() < deadline:
                _, _, usage = request(port, "/v1/usage?group_by=model,gateway_key&since=1h")
                if usage["rows"] and usage["rows"][0]["requests"] == 2:
                    break
                time.sleep(0.05)
            row = usage["rows"][0]
            assert row["group"] == {"model": "m-priced", "gateway_key": "team-a"}
            assert row["cost_usd"] == pytest.approx(0.0018)
            assert (row["input_tokens"], row["cached_input_tokens"], row["output_tokens"]) == (2000, 800, 100)
        finally:
            process.send_signal(signal.SIGTERM)
            process.communicate(timeout=30)

        # A restart loads the day's spend from the database: the key is still over its budget.
        process = start_chronicle(config, port, directory)
        try:
            status, _, body = chat(port)
            assert status == 429 and body["error"]["kind"] == "budget_exceeded", body
            _, _, budgets = request(port, "/v1/budgets")
            assert budgets["budgets"][0]["name"] == "gateway_key:team-a:day"
            assert budgets["budgets"][0]["spend_usd"] == pytest.approx(0.0018)
        finally:
            process.send_signal(signal.SIGTERM)
            process.communicate(timeout=30)

        report = json.loads(subprocess.run(
            [BINARY, "usage", "--config", str(config), "--since", "7d", "--by", "model", "--json"],
            cwd=directory, check=True, capture_output=True).stdout)
        assert report["rows"][0]["requests"] == 2 and report["rows"][0]["cost_usd"] == pytest.approx(0.0018)
        table = subprocess.run([BINARY, "usage", "--config", str(config), "--by", "model"], cwd=directory, check=True,
                               capture_output=True, text=True).stdout
        assert "m-priced" in table and "0.001800" in table
        prices = subprocess.run([BINARY, "prices", "m-priced", "--config", str(config)], cwd=directory, check=True,
                                capture_output=True, text=True).stdout
        assert "up" in prices and "m-priced" in prices
