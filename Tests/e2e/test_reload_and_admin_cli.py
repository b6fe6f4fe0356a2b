"""End-to-end: SIGHUP reloads the configuration files of a running `chronicle serve`, and the admin
subcommands change a running server through its admin API (`--url`) or the database directly (`--database`).
"""
import json
import os
import pathlib
import signal
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from chronicle_server import BINARY, free_port, start_chronicle

ADMIN_KEY = "e2e-admin-key"


class Upstream(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        data = json.dumps({"id": "c", "object": "chat.completion", "created": 1, "model": body["model"],
                           "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"},
                                        "finish_reason": "stop"}]}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def chat(port, model, key=None):
    headers = {"content-type": "application/json"}
    if key:
        headers["authorization"] = f"Bearer {key}"
    request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/chat/completions", method="POST", headers=headers,
                                     data=json.dumps({"model": model, "messages": [{"role": "user", "content": "hi"}]}).encode())
    try:
        with urllib.request.urlopen(request) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def eventually(condition, within=5.0):
    deadline = time.time() + within
    while time.time() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


def config_text(upstream_port, alias):
    return f"""
[[providers]]
name = "up"
url = "http://127.0.0.1:{upstream_port}/v1/chat/completions"
prefix = "up/"

[[aliases]]
name = "{alias}"
models = [{{ model = "m", provider = "up" }}]
"""


def cli(*args, cwd):
    return subprocess.run([BINARY, *args], cwd=cwd, capture_output=True, text=True, timeout=60)


def test_sighup_reloads_files_and_cli_manages_keys():
    upstream = ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    with tempfile.TemporaryDirectory() as directory:
        config = pathlib.Path(directory) / "chronicle.toml"
        config.write_text(config_text(upstream.server_address[1], "first"))
        port = free_port()
        env = dict(os.environ, CHRONICLE_ADMIN_KEY=ADMIN_KEY)
        server = start_chronicle(config, port, directory, stdout=subprocess.DEVNULL, env=env)
        try:
            assert chat(port, "first") == 200
            assert chat(port, "second") != 200

            # A broken edit is refused and the configuration in force stays.
            config.write_text("this is not TOML [")
            server.send_signal(signal.SIGHUP)
            time.sleep(0.3)
            assert server.poll() is None
            assert chat(port, "first") == 200

            config.write_text(config_text(upstream.server_address[1], "second"))
            server.send_signal(signal.SIGHUP)
            assert eventually(lambda: chat(port, "second") == 200)
            assert chat(port, "first") != 200

            # A key made through the running server's admin API is required at once; revoked, refused at once.
            created = cli("keys", "create", "--name", "team-a", "--rpm", "600", "--url", f"http://127.0.0.1:{port}",
                          "--admin-key", ADMIN_KEY, cwd=directory)
            assert created.returncode == 0, created.stderr
            key = json.loads(created.stdout)["key"]
            assert chat(port, "second") == 401
            assert chat(port, "second", key) == 200
            listed = cli("keys", "list", "--url", f"http://127.0.0.1:{port}", "--admin-key", ADMIN_KEY, cwd=directory)
            assert key not in listed.stdout and "team-a" in listed.stdout
            revoked = cli("keys", "revoke", "team-a", "--url", f"http://127.0.0.1:{port}", "--admin-key", ADMIN_KEY,
                          cwd=directory)
            assert revoked.returncode == 0, revoked.stderr
            assert chat(port, "second", key) == 401

            # A bad change fails the command and names the problem.
            bad = cli("aliases", "set", "fast", "--model", "nowhere/m", "--url", f"http://127.0.0.1:{port}",
                      "--admin-key", ADMIN_KEY, cwd=directory)
            assert bad.returncode != 0 and "nowhere" in bad.stdout
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)

        # Directly on the database, with no server running: the next start serves the change.
        database = str(pathlib.Path(directory) / "chronicle.db")
        made = cli("aliases", "set", "third", "--model", "up/m", "--database", database, "-c", str(config),
                   cwd=directory)
        assert made.returncode == 0, made.stdout + made.stderr
        server = start_chronicle(config, port, directory, stdout=subprocess.DEVNULL, env=env)
        try:
            assert eventually(lambda: chat(port, "third") == 200)
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)
    upstream.shutdown()
