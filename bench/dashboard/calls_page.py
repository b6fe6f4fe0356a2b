#!/usr/bin/env python3
"""How fast the dashboard's pages get their data from a large SQLite database.

Seeds DATABASE (default bench/results/dashboard-1m.db) with ROWS LLM calls spread over 30 days (realistic
columns: 6 models, 4 providers, 5 applications, 200 users, 3 gateway keys, 4% errors, a 1 KB prompt and
answer), lets `chronicle serve` migrate it first, then serves it and times the requests the pages make:
the calls page's first 50 rows, filtered first pages, the second page by cursor, a call's detail, and the
overview's usage queries when the gateway has /v1/usage. Prints a Markdown table (median and p95 of RUNS
requests each, warm cache).

    python3 bench/dashboard/calls_page.py [--rows 1000000] [--runs 20] [--bin .build/release/chronicle]
"""
import argparse
import json
import math
import os
import pathlib
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "Tests" / "e2e"))
from chronicle_server import free_port  # noqa: E402

MODELS = [("openai", "gpt-4o-mini"), ("openai", "gpt-4o"), ("anthropic", "claude-sonnet-4"),
          ("anthropic", "claude-haiku-4"), ("groq", "llama-3.3-70b"), ("gemini", "gemini-2.5-flash")]
APPS = ["support-bot", "search", "agent", "summarizer", "batch-eval"]
KEYS = ["team-a", "team-b", "ci"]


def uuid7(ms):
    """A UUIDv7 for time `ms`, as the gateway makes them (ids sort by time)."""
    value = (ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | random.getrandbits(12) << 64 | 0b10 << 62 | random.getrandbits(62)
    return str(uuid.UUID(int=value))


def start(binary, database, port, cwd):
    config = pathlib.Path(cwd) / "chronicle.toml"
    config.write_text(f'database = "{database}"\nretention_days = 0\n')
    process = subprocess.Popen([binary, "serve", "--config", str(config), "--port", str(port), "--no-dotenv"],
                               cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
            return process
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit("chronicle did not start")


def seed(database, rows):
    connection = sqlite3.connect(database)
    have = connection.execute("SELECT count(*) FROM chronicle_events").fetchone()[0]
    if have >= rows:
        print(f"{database}: already {have} rows", file=sys.stderr)
        if connection.execute("SELECT count(*) FROM chronicle_usage_hourly").fetchone()[0] == 0:
            rebuild_rollups(connection)
        connection.close()
        return
    random.seed(42)
    now = int(time.time() * 1000)
    span = 30 * 86400000
    prompt = json.dumps({"model": "gpt-4o-mini", "messages": [
        {"role": "system", "content": "You are a helpful assistant. " * 8},
        {"role": "user", "content": "Summarise the following text. " + "lorem ipsum dolor sit amet " * 30}]})
    answer = json.dumps({"choices": [{"index": 0, "message": {"role": "assistant", "content": "A summary. " * 40},
                                      "finish_reason": "stop"}], "usage": {"prompt_tokens": 412, "completion_tokens": 96}})
    started = time.time()
    batch = []
    insert = """INSERT INTO chronicle_events (id, event_type, chat_request, chat_response, error, provider, model,
        application, environment, request_user_id, meta, retries, rate_limited, request_latency_ms, total_latency_ms,
        created_at, input_tokens, output_tokens, total_tokens, http_status, streamed, overhead_ms, gateway_key, cost_usd)
        VALUES (?, 'chronicle_llm_request', ?, ?, ?, ?, ?, ?, 'production', ?, 'null', ?, 0, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"""
    for i in range(have, rows):
        ms = now - span + (span * i) // rows
        provider, model = random.choice(MODELS)
        failed = random.random() < 0.04
        latency = int(random.lognormvariate(6.2, 0.6))
        inp, out = random.randint(50, 4000), random.randint(10, 1200)
        batch.append((uuid7(ms), prompt, "null" if failed else answer,
                      json.dumps({"kind": "rate_limit", "message": "slow down", "status": 429}) if failed else "null",
                      provider, model, random.choice(APPS), f"user-{random.randint(1, 200)}", 1 if failed else 0,
                      latency - 2, latency, ms, inp, None if failed else out, None if failed else inp + out,
                      429 if failed else 200, random.random() < 0.5, round(random.uniform(0.2, 1.5), 3), random.choice(KEYS),
                      None if failed else (inp * 0.15 + out * 0.6) / 1_000_000))
        if len(batch) == 20000:
            connection.executemany(insert, batch)
            connection.commit()
            batch.clear()
    if batch:
        connection.executemany(insert, batch)
        connection.commit()
    rebuild_rollups(connection)
    connection.execute("ANALYZE")
    connection.commit()
    connection.close()
    print(f"seeded {rows - have} rows in {time.time() - started:.0f} s", file=sys.stderr)


def latency_bounds():
    """The gateway's latency histogram buckets (LatencyHistogram.lowerBounds): four a doubling from 1 ms."""
    bounds = [0]
    for step in range(85):
        bound = math.ceil(2 ** (step / 4))
        if bound > bounds[-1]:
            bounds.append(bound)
    return bounds


def rebuild_rollups(connection):
    """Refills the usage rollups from the calls, as the migration that adds them does: the rows seeded here
    went in behind the log writer's back, which keeps them otherwise."""
    bounds = latency_bounds()
    dimensions = ["provider", "model", "application", "environment", "gateway_key"]
    sums = ["requests", "errors", "input_tokens", "output_tokens", "cached_tokens", "reasoning_tokens", "cost_usd",
            "priced"]
    latency = ", ".join(
        f"SUM(CASE WHEN total_latency_ms >= {low}{f' AND total_latency_ms < {bounds[i + 1]}' if i + 1 < len(bounds) else ''} THEN 1 ELSE 0 END)"
        for i, low in enumerate(bounds))
    columns = ", ".join(f"lat_{i}" for i in range(len(bounds)))
    for table, width in (("chronicle_usage_hourly", 3_600_000), ("chronicle_usage_daily", 86_400_000)):
        connection.execute(f"DELETE FROM {table}")
        connection.execute(f"""INSERT INTO {table} (period_start, {', '.join(dimensions)}, {', '.join(sums)}, {columns})
            SELECT ((created_at / {width}) * {width}), {', '.join(f"COALESCE({d}, '')" for d in dimensions)}, COUNT(*),
              SUM(CASE WHEN http_status >= 400 THEN 1 ELSE 0 END), COALESCE(SUM(input_tokens), 0),
              COALESCE(SUM(output_tokens), 0), COALESCE(SUM(cached_tokens), 0), COALESCE(SUM(reasoning_tokens), 0),
              COALESCE(SUM(cost_usd), 0), COUNT(cost_usd), {latency}
            FROM chronicle_events WHERE event_type = 'chronicle_llm_request' GROUP BY 1, 2, 3, 4, 5, 6""")
    connection.commit()


def timed(url, runs):
    samples = []
    body = None
    for _ in range(runs):
        started = time.perf_counter()
        try:
            with urllib.request.urlopen(url, timeout=60) as response:
                body = response.read()
        except urllib.error.HTTPError as error:
            return None, error.code
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return (statistics.median(samples), samples[min(len(samples) - 1, int(len(samples) * 0.95))], body), 200


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--database", default=str(ROOT / "bench" / "results" / "dashboard-1m.db"))
    parser.add_argument("--bin", default=os.environ.get("CHRONICLE_BIN", str(ROOT / ".build" / "release" / "chronicle")))
    args = parser.parse_args()
    database = str(pathlib.Path(args.database).resolve())
    args.bin = str(pathlib.Path(args.bin).resolve())
    with tempfile.TemporaryDirectory() as directory:
        port = free_port()
        process = start(args.bin, database, port, directory)  # creates and migrates the database
        process.terminate()
        process.wait()
        seed(database, args.rows)
        process = start(args.bin, database, port, directory)
        try:
            base = f"http://127.0.0.1:{port}"
            first = json.loads(urllib.request.urlopen(base + "/v1/calls?limit=50").read())
            cursor = first["next_cursor"]
            call_id = first["data"][0]["id"]
            cases = [
                ("Calls page, first 50 rows", "/v1/calls?limit=50"),
                ("… second page (cursor)", f"/v1/calls?limit=50&cursor={cursor}"),
                ("… status=error", "/v1/calls?limit=50&status=error"),
                ("… model=claude-haiku-4", "/v1/calls?limit=50&model=claude-haiku-4"),
                ("… application=agent", "/v1/calls?limit=50&application=agent"),
                ("… user_id=user-17", "/v1/calls?limit=50&user_id=user-17"),
                ("… since 1 h ago", f"/v1/calls?limit=50&since={int(time.time() * 1000) - 3600000}"),
                ("Call detail", f"/v1/calls/{call_id}"),
                ("Overview totals, 24 h", "/v1/usage?since=24h"),
                ("Overview chart, 24 h hourly", "/v1/usage?since=24h&interval=hour"),
                ("Overview chart, 30 d daily", "/v1/usage?since=30d&interval=day"),
                ("Overview top models, 24 h", "/v1/usage?since=24h&group_by=model"),
                ("Overview top models, 30 d", "/v1/usage?since=30d&group_by=model"),
            ]
            rows = total = sqlite3.connect(database).execute("SELECT count(*) FROM chronicle_events").fetchone()[0]
            print(f"| Request ({rows:,} calls in SQLite) | median ms | p95 ms |")
            print("|---|---:|---:|")
            for name, path in cases:
                result, status = timed(base + path, args.runs)
                if result is None:
                    print(f"| {name} | not served ({status}) | |")
                else:
                    print(f"| {name} | {result[0]:.1f} | {result[1]:.1f} |")
            del total
        finally:
            process.terminate()
            process.wait()


if __name__ == "__main__":
    main()
