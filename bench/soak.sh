#!/usr/bin/env bash
# Soak test: sustained open-loop load through `chronicle serve` (logging to SQLite) against the mock
# upstream, mixing plain and streamed calls, with clients that hang up mid-stream. Every SOAK_SAMPLE
# seconds it records the gateway's RSS, open file descriptors, threads and in-flight gauges; at the end it
# reports errors, memory over time, and anything left behind (in-flight requests, streams, descriptors).
#
#   bench/soak.sh                              # 10 minutes at 200 req/s
#   SOAK_DURATION=20 SOAK_RATE=100 bench/soak.sh   # the short version CI runs
#
# Fails (exit 1) on request errors, on anything left in flight after the load, on client connections left
# open after every client left, or on RSS drifting more than SOAK_MAX_DRIFT percent (default 5) between the
# first and the last quarter of the run (checked when the run is at least 5 minutes long).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DURATION=${SOAK_DURATION:-600}
RATE=${SOAK_RATE:-200}
SAMPLE=${SOAK_SAMPLE:-5}
MAX_DRIFT=${SOAK_MAX_DRIFT:-5}
SCRATCH=${BENCH_SCRATCH:-.build-bench}
CONFIG=${SOAK_CONFIG:-release}
BIN=$ROOT/$SCRATCH/$CONFIG
MOCK_PORT=${BENCH_MOCK_PORT:-8189}
GW_PORT=${BENCH_GATEWAY_PORT:-9892}

log() { printf '[soak] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

if [[ -z "${BENCH_SKIP_BUILD:-}" ]]; then
    CHRONICLE_BENCH=1 swift build -c "$CONFIG" --scratch-path "$SCRATCH" >&2 || die "build failed"
fi
for exe in chronicle ChronicleMock ChronicleLoad; do [[ -x $BIN/$exe ]] || die "missing $BIN/$exe"; done

TMP=$(mktemp -d "${TMPDIR:-/tmp}/chronicle-soak.XXXXXX")
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$TMP"
}
trap cleanup EXIT

cat >"$TMP/chronicle.toml" <<EOF
port = $GW_PORT
database = "$TMP/soak.db"
[[providers]]
name = "bench"
url = "http://127.0.0.1:$MOCK_PORT/v1/chat/completions"
format = "openai"
prefix = "bench/"
api_key = "sk-bench"
[[providers]]
name = "slow"
url = "http://127.0.0.1:$MOCK_PORT/v1/chat/completions"
format = "openai"
prefix = "slow/"
api_key = "sk-bench"
headers = { "x-mock-chunks" = "50", "x-mock-delay-us" = "20000" }
EOF

"$BIN/ChronicleMock" --port "$MOCK_PORT" >"$TMP/mock.log" 2>&1 &
PIDS+=($!)
CHRONICLE_LOG=warning "$BIN/chronicle" serve --config "$TMP/chronicle.toml" --no-dotenv >"$TMP/gateway.log" 2>&1 &
GW=$!
PIDS+=($GW)
for _ in $(seq 100); do curl -sf -o /dev/null "http://127.0.0.1:$GW_PORT/healthz" && break; sleep 0.1; done
curl -sf -o /dev/null "http://127.0.0.1:$GW_PORT/healthz" || die "gateway did not start"

rss() { awk '/^VmRSS:/ { print $2 }' "/proc/$GW/status"; }
fds() { ls "/proc/$GW/fd" | wc -l; }
threads() { awk '/^Threads:/ { print $2 }' "/proc/$GW/status"; }
# Client connections still open to the gateway (keep-alive pools to the upstream are not leaks).
inbound() { ss -Htn state established "( sport = :$GW_PORT )" 2>/dev/null | wc -l; }
gauge() { curl -sf "http://127.0.0.1:$GW_PORT/metrics" | awk -v name="$1" '$1 == name { print $2 }'; }

idle_fds=$(fds)
log "gateway pid $GW, idle: RSS $(rss) kB, $idle_fds descriptors, $(threads) threads"

# Three load shapes at once: plain calls, full streams, and streams whose clients hang up part-way.
plain_rate=$(awk -v r="$RATE" 'BEGIN { printf "%.3f", r * 0.8 }')
stream_rate=$(awk -v r="$RATE" 'BEGIN { printf "%.3f", r * 0.2 }')
load() {  # name rate extra args…
    local name=$1 rate=$2
    shift 2
    "$BIN/ChronicleLoad" --url "http://127.0.0.1:$GW_PORT/v1/chat/completions" --rate "$rate" \
        --duration "$DURATION" --warmup 0 --json "$@" >"$TMP/$name.json" 2>"$TMP/$name.err" &
    echo $!
}
L1=$(load plain "$plain_rate" --model bench/gpt)
L2=$(load stream "$stream_rate" --model slow/gpt --stream)
# Hanging up: every few seconds, 20 clients open 1 s streams and leave after 0.3 s.
(
    end=$((SECONDS + DURATION))
    while (( SECONDS < end )); do
        "$BIN/ChronicleLoad" --url "http://127.0.0.1:$GW_PORT/v1/chat/completions" --model slow/gpt \
            --open-streams 20 --hold 0.3 --json >>"$TMP/abandon.jsonl" 2>>"$TMP/abandon.err" || true
        sleep 2
    done
) &
L3=$!
PIDS+=("$L1" "$L2" "$L3")

printf 'second\trss_kb\tfds\tthreads\tin_flight\n' >"$TMP/samples.tsv"
start=$SECONDS
while kill -0 "$L1" 2>/dev/null || kill -0 "$L2" 2>/dev/null || kill -0 "$L3" 2>/dev/null; do
    printf '%s\t%s\t%s\t%s\t%s\n' $((SECONDS - start)) "$(rss)" "$(fds)" "$(threads)" \
        "$(gauge chronicle_in_flight_requests)" >>"$TMP/samples.tsv"
    sleep "$SAMPLE"
done
wait "$L1" "$L2" || true
sleep 2  # let abandoned streams be noticed and released

after_fds=$(fds)
after_inbound=$(inbound)
in_flight=$(gauge chronicle_in_flight_requests)
streams=$(gauge chronicle_in_flight_streams)
column -t "$TMP/samples.tsv" >&2 || cat "$TMP/samples.tsv" >&2

python3 - "$TMP" "$DURATION" "$MAX_DRIFT" "$idle_fds" "$after_fds" "${in_flight:-0}" "${streams:-0}" "$after_inbound" <<'EOF'
import json, sys
tmp, duration, max_drift, idle_fds, after_fds, in_flight, streams, inbound = sys.argv[1:]
failures = []
for name in ("plain", "stream"):
    try:
        result = json.load(open(f"{tmp}/{name}.json"))
    except Exception as error:
        failures.append(f"{name}: no result ({error}): {open(f'{tmp}/{name}.err').read()[-500:]}")
        continue
    errors = result.get("errors", 0)
    print(f"{name:8} requests {result.get('requests')} errors {errors} dropped {result.get('dropped')} "
          f"p50 {result.get('latency_us', {}).get('p50')} µs p99 {result.get('latency_us', {}).get('p99')} µs")
    if errors:
        failures.append(f"{name}: {errors} errors")
abandoned = [json.loads(line) for line in open(f"{tmp}/abandon.jsonl") if line.strip()] if __import__("os").path.exists(f"{tmp}/abandon.jsonl") else []
print(f"abandon  {sum(r.get('streams_opened', 0) for r in abandoned)} streams opened and hung up on")
rows = [line.split("\t") for line in open(f"{tmp}/samples.tsv").read().splitlines()[1:]]
rss = [int(row[1]) for row in rows if row[1].isdigit()]
if len(rss) >= 8 and float(duration) >= 300:
    quarter = len(rss) // 4
    first, last = sum(rss[:quarter]) / quarter, sum(rss[-quarter:]) / quarter
    drift = (last - first) / first * 100
    print(f"RSS first quarter {first / 1024:.1f} MB, last quarter {last / 1024:.1f} MB, drift {drift:+.1f}%")
    if abs(drift) > float(max_drift):
        failures.append(f"RSS drifted {drift:+.1f}% (limit {max_drift}%)")
if rss:
    print(f"RSS min {min(rss) / 1024:.1f} MB, max {max(rss) / 1024:.1f} MB")
print(f"after the load: {in_flight} requests and {streams} streams in flight, {inbound} client connections open, "
      f"descriptors {after_fds} (idle {idle_fds}; the difference is the upstream keep-alive pool)")
if float(in_flight) != 0 or float(streams) != 0:
    failures.append("requests or streams left in flight")
if int(inbound) > 1:  # the metrics scrape's own connection may linger
    failures.append(f"{inbound} client connections still open after every client left")
for failure in failures:
    print("FAIL:", failure)
sys.exit(1 if failures else 0)
EOF
