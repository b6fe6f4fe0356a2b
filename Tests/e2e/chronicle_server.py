"""Starting `chronicle serve` for the end-to-end tests: the binary under test, a free port, and a start that
returns once the server accepts connections."""
import os
import pathlib
import socket
import subprocess
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]
BINARY = os.environ.get("CHRONICLE_BIN", str(ROOT / ".build" / "debug" / "chronicle"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_chronicle(config, port, cwd, stdout=subprocess.PIPE, env=None):
    """Runs `chronicle serve --config CONFIG --port PORT` in `cwd` and returns the process once it listens;
    a server that exits or does not listen within 30 s is killed and raises."""
    process = subprocess.Popen(
        [BINARY, "serve", "--config", str(config), "--port", str(port), "--no-dotenv"],
        cwd=cwd, stdout=stdout, stderr=subprocess.STDOUT, env=env)
    deadline = time.time() + 30
    while time.time() < deadline and process.poll() is None:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return process
        except OSError:
            time.sleep(0.05)
    process.kill()
    process.wait()
    raise RuntimeError("chronicle did not start")
