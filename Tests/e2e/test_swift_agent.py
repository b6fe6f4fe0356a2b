"""The Swift client library's example agent (Examples/Agent) against `chronicle serve`: a run of three steps
with tool calls, every call and step recorded and readable at /v1/runs/{id}."""
import json
import os
import pathlib
import re
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from chronicle_server import BINARY, free_port, start_chronicle

AGENT = str(pathlib.Path(BINARY).parent / "Agent")


class Upstream(BaseHTTPRequestHandler):
    """Asks for the weather in two cities, then answers once the tools have answered."""
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        if body["messages"][-1]["role"] == "tool":
            message = {"role": "assistant", "content": "A coat in Oslo, a shirt in Paris."}
        else:
            calls = [{"id": f"call_{city}", "type": "function",
                      "function": {"name": "get_weather", "arguments": json.dumps({"city": city})}}
                     for city in ("Paris", "Oslo")]
            message = {"role": "assistant", "content": None, "tool_calls": calls}
        data = json.dumps({"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-test",
                           "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                           "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def recorded_run(base, run_id):
    """The run once the server's log writer has stored all of it (it writes in batches, in the background)."""
    deadline = time.time() + 15
    while True:
        try:
            run = json.load(urllib.request.urlopen(f"{base}/v1/runs/{run_id}"))
            if run["status"] == "finished" and len(run["calls"]) == 2 or time.time() > deadline:
                return run
        except urllib.error.HTTPError as error:
            if error.code != 404 or time.time() > deadline:
                raise
        time.sleep(0.1)


def test_agent_run_is_recorded():
    upstream = ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    port = free_port()
    with tempfile.TemporaryDirectory() as directory:
        config = pathlib.Path(directory) / "chronicle.toml"
        config.write_text(f"""
[[providers]]
name = "up"
url = "http://127.0.0.1:{upstream.server_port}/v1/chat/completions"
prefix = "up/"
api_key = "sk-upstream"
format = "openai"
""")
        process = start_chronicle(config, port, directory)
        try:
            base = f"http://127.0.0.1:{port}"
            result = subprocess.run([AGENT, "--url", base, "--model", "up/gpt-test", "What to wear?"],
                                    capture_output=True, text=True, timeout=60)
            assert result.returncode == 0, result.stderr
            assert "A coat in Oslo" in result.stdout
            run_id = re.search(r"/v1/runs/([0-9a-f-]{36})", result.stdout).group(1)
            assert f"/ui/#/runs/{run_id}" in result.stdout
            run = recorded_run(base, run_id)
            assert run["name"] == "weather-agent"
            assert run["status"] == "finished"
            assert run["output"] == "A coat in Oslo, a shirt in Paris."
            assert [step["name"] for step in run["steps"]] == ["plan", "call tools", "answer"]
            tools = run["steps"][1]["children"]
            assert sorted(step["name"] for step in tools) == ["get_weather", "get_weather"]
            assert all(step["status"] == "finished" for step in tools)
            assert len(run["calls"]) == 2
            assert {call["step_id"] for call in run["calls"]} == {run["steps"][0]["id"], run["steps"][2]["id"]}
            assert [event["event_type"] for event in run["events"]] == ["tools_called"]
        finally:
            process.terminate()
            process.wait(timeout=30)
            upstream.shutdown()
