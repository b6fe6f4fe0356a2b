"""End-to-end: gateway keys through the OpenAI SDK, and SIGTERM under load.

A slow upstream streams its answers over a second or so; SIGTERM arrives while many streams are in flight.
Every stream must finish whole, the process must exit cleanly, and every call must be in the database.
"""
import json
import os
import pathlib
import signal
import sqlite3
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import openai
import pytest

from chronicle_server import free_port, start_chronicle

CHUNKS = 10


class SlowUpstream(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        if not body.get("stream"):
            data = json.dumps({
                "id": "c", "object": "chat.completion", "created": 1, "model": body["model"],
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
            }).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        for index in range(CHUNKS):
            chunk = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": body["model"],
                     "choices": [{"index": 0, "delta": {"content": f"{index} "},
                                  "finish_reason": "stop" if index == CHUNKS - 1 else None}]}
            self.write_chunk(f"data: {json.dumps(chunk)}\n\n".encode())
            time.sleep(0.1)
        self.write_chunk(b"data: [DONE]\n\n")
        self.wfile.write(b"0\r\n\r\n")

    def write_chunk(self, data):
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()


def start(directory, upstream_port, extra_env):
    port = free_port()
    config = pathlib.Path(directory) / "chronicle.toml"
    config.write_text(f"""
[[providers]]
name = "slow"
url = "http://127.0.0.1:{upstream_port}/v1/chat/completions"
prefix = "slow/"
api_key = "sk-upstream-secret-value"
format = "openai"
""")
    process = start_chronicle(config, port, directory, env=dict(os.environ, **extra_env))
    return process, port


@pytest.fixture()
def upstream():
    server = ThreadingHTTPServer(("127.0.0.1", 0), SlowUpstream)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()


def test_gateway_keys_through_the_sdk(upstream):
    with tempfile.TemporaryDirectory() as directory:
        process, port = start(directory, upstream.server_port,
                              {"CHRONICLE_GATEWAY_KEYS": "team-a:chr-test-key-0123456789", "CHRONICLE_LOG": "info"})
        try:
            base = f"http://127.0.0.1:{port}/v1"
            with pytest.raises(openai.AuthenticationError) as denied:
                openai.OpenAI(base_url=base, api_key="wrong-key", max_retries=0).chat.completions.create(
                    model="slow/m", messages=[{"role": "user", "content": "hi"}])
            assert "gateway key" in str(denied.value)
            client = openai.OpenAI(base_url=base, api_key="chr-test-key-0123456789", max_retries=0)
            reply = client.chat.completions.create(model="slow/m", messages=[{"role": "user", "content": "hi"}])
            assert reply.choices[0].message.content == "ok"
            raw = client.chat.completions.with_raw_response.create(
                model="slow/m", messages=[{"role": "user", "content": "hi"}])
            assert float(raw.headers["x-chronicle-overhead-ms"]) >= 0
        finally:
            process.send_signal(signal.SIGTERM)
            output = process.communicate(timeout=30)[0].decode()
        rows = sqlite3.connect(pathlib.Path(directory) / "chronicle.db").execute(
            "SELECT gateway_key, http_status FROM chronicle_events").fetchall()
        assert rows == [("team-a", 200), ("team-a", 200)], rows
        assert "chr-test-key-0123456789" not in output
        assert "sk-upstream-secret-value" not in output
        assert "gateway_key=team-a" in output


def test_sigterm_under_load_finishes_streams_and_records_them(upstream):
    streams = 20
    with tempfile.TemporaryDirectory() as directory:
        process, port = start(directory, upstream.server_port, {})
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="unused", max_retries=0)
        results = [None] * streams
        started = threading.Barrier(streams + 1)

        def run(index):
            started.wait()
            try:
                text = ""
                for chunk in client.chat.completions.create(
                        model="slow/m", stream=True, messages=[{"role": "user", "content": str(index)}]):
                    if chunk.choices:
                        text += chunk.choices[0].delta.content or ""
                results[index] = text
            except Exception as error:  # recorded and asserted below
                results[index] = error

        threads = [threading.Thread(target=run, args=(i,)) for i in range(streams)]
        for thread in threads:
            thread.start()
        started.wait()
        time.sleep(0.4)  # every stream is in flight
        process.send_signal(signal.SIGTERM)
        for thread in threads:
            thread.join(timeout=30)
        assert process.wait(timeout=30) == 0
        expected = "".join(f"{i} " for i in range(CHUNKS))
        assert results == [expected] * streams, results
        rows = sqlite3.connect(pathlib.Path(directory) / "chronicle.db").execute(
            "SELECT http_status, streamed FROM chronicle_events").fetchall()
        assert len(rows) == streams
        assert all(row == (200, 1) for row in rows), rows
