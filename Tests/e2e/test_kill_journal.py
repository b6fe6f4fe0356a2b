"""End-to-end: `kill -9` under load loses no answered call.

Eight clients send chat calls, half of them streamed, each carrying a unique `x-chronicle-user-id`, to a
running `chronicle serve`. The server is killed with SIGKILL while calls are in flight. Every call whose
answer the client received whole (a 200 with its full body) must be in the database once the server has been
started again on the same configuration: the crash journal keeps what was still queued in memory.

The same run with `log_journal = false` loses calls; that case is here to show the test can tell.
"""
import http.client
import json
import pathlib
import signal
import sqlite3
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from chronicle_server import free_port, start_chronicle

CLIENTS = 8
LOAD_SECONDS = 2.0


class FastUpstream(BaseHTTPRequestHandler):
    """Answers at once: a complete response, or a short stream."""
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
        for index in range(3):
            chunk = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": body["model"],
                     "choices": [{"index": 0, "delta": {"content": f"{index} "},
                                  "finish_reason": "stop" if index == 2 else None}]}
            self.write_chunk(f"data: {json.dumps(chunk)}\n\n".encode())
        self.write_chunk(b"data: [DONE]\n\n")
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def write_chunk(self, data):
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")


class QuietServer(ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        pass  # the killed gateway resets its upstream connections; that is expected here


@pytest.fixture()
def upstream():
    server = QuietServer(("127.0.0.1", 0), FastUpstream)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()


def write_config(directory, upstream_port, journal):
    config = pathlib.Path(directory) / "chronicle.toml"
    config.write_text(f"""
database = "chronicle.db"
log_journal = {"true" if journal else "false"}

[[providers]]
name = "fast"
url = "http://127.0.0.1:{upstream_port}/v1/chat/completions"
prefix = "fast/"
api_key = "sk-upstream-secret-value"
format = "openai"
""")
    return config


def start(directory, config, port):
    log = open(pathlib.Path(directory) / f"server-{time.time_ns()}.log", "wb")
    return start_chronicle(config, port, directory, stdout=log)


def call(port, marker, stream):
    """One chat call; returns True only when the whole answer arrived with status 200."""
    body = json.dumps({"model": "fast/m", "stream": stream,
                       "messages": [{"role": "user", "content": f"call {marker}"}]})
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("POST", "/v1/chat/completions", body=body, headers={
            "content-type": "application/json", "x-chronicle-user-id": marker})
        response = connection.getresponse()
        data = response.read()  # raises when the connection dies before the end of the body
        if response.status != 200:
            return False
        if stream:
            return data.rstrip().endswith(b"data: [DONE]")
        return json.loads(data)["choices"][0]["message"]["content"] == "ok"
    except (OSError, http.client.HTTPException, ValueError):
        return False
    finally:
        connection.close()


def run_kill(directory, upstream_port, journal):
    """Drives load, kills the server mid-flight, restarts it; returns (answered markers, stored markers)."""
    config = write_config(directory, upstream_port, journal)
    port = free_port()
    process = start(directory, config, port)
    answered = []
    lock = threading.Lock()
    stop = threading.Event()

    def client(index):
        count = 0
        while not stop.is_set():
            marker = f"kill-{index}-{count}-{uuid.uuid4()}"
            if call(port, marker, stream=count % 2 == 1):
                with lock:
                    answered.append(marker)
            count += 1

    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    for thread in threads:
        thread.start()
    time.sleep(LOAD_SECONDS)
    process.send_signal(signal.SIGKILL)  # while calls are in flight
    process.wait(timeout=10)
    stop.set()
    for thread in threads:
        thread.join(timeout=30)

    restarted = start(directory, config, free_port())
    database = pathlib.Path(directory) / "chronicle.db"
    wanted = set(answered)
    stored = set()
    deadline = time.time() + 30
    try:
        while time.time() < deadline:
            with sqlite3.connect(database) as connection:
                stored = {row[0] for row in connection.execute("SELECT request_user_id FROM chronicle_events")}
            if wanted <= stored:
                break
            time.sleep(0.2)
        # Whatever the writer still holds is written at a graceful stop.
        restarted.send_signal(signal.SIGTERM)
        assert restarted.wait(timeout=30) == 0
        with sqlite3.connect(database) as connection:
            rows = connection.execute("SELECT request_user_id FROM chronicle_events").fetchall()
    finally:
        if restarted.poll() is None:
            restarted.kill()
    stored = [row[0] for row in rows]
    return answered, stored


def test_kill_under_load_loses_no_answered_call(upstream):
    with tempfile.TemporaryDirectory() as directory:
        answered, stored = run_kill(directory, upstream.server_port, journal=True)
        assert len(answered) > 50, "the load ran"
        missing = sorted(set(answered) - set(stored))
        print(f"answered {len(answered)}, stored {len(stored)}, missing {len(missing)}")
        assert missing == [], f"{len(missing)} of {len(answered)} answered calls have no row: {missing[:5]}"
        assert len(stored) == len(set(stored)), "each call is stored once"
        journal = pathlib.Path(directory) / "chronicle.journal"
        assert not [p for p in journal.glob("*.journal")], "a graceful stop leaves no journal segment"


def test_without_the_journal_a_kill_loses_answered_calls(upstream):
    with tempfile.TemporaryDirectory() as directory:
        answered, stored = run_kill(directory, upstream.server_port, journal=False)
        missing = set(answered) - set(stored)
        print(f"without the journal: answered {len(answered)}, missing {len(missing)}")
        assert missing, "the queue in memory was lost with the process"
