#!/usr/bin/env bash
# End-to-end HTTP benchmark of the gateway: each scenario runs against the mock upstream directly and then
# through `chronicle serve`, so "added" latency and the gateway's CPU and memory are isolated.
#
#   bench/run.sh                                   # all scenarios, 10 s each (+1 s warmup)
#   BENCH_DURATION=1 bench/run.sh                  # smoke run (CI)
#   BENCH_SCENARIOS=nonstream,stream bench/run.sh  # a subset
#   BENCH_MODE=peers bench/run.sh                  # side by side: mock alone, floor, Chronicle, TensorZero
#
# Scenarios: nonstream stream prompt anthropic messages openstreams growth logging.
# Peers mode runs instead the same load (non-streamed at c=1/10/50, streamed at c=1/10) against the mock
# alone, ChronicleFloor (a bare SwiftNIO relay), Chronicle and TensorZero's gateway, and prints one table.
# Other knobs: BENCH_WARMUP (1), BENCH_HOLD (5, seconds open streams are held), BENCH_MOCK_PORT (8089),
# BENCH_GATEWAY_PORT (9792), BENCH_FLOOR_PORT (9793), BENCH_SKIP_BUILD=1, BENCH_SCRATCH (.build-bench),
# BENCH_CONFIG (release), BENCH_TENSORZERO_VERSION (2026.6.0), BENCH_TENSORZERO_PYTHON (an interpreter that
# already has the wheel; default: a venv under the scratch folder, made with pip on first use),
# BENCH_TENSORZERO=off (peers mode without TensorZero), BENCH_BASELINE_BIN (peers mode: another build's
# `chronicle`, measured as "Chronicle baseline" in the same run, on BENCH_BASELINE_PORT, 9794).
# Needs: swift, python3, curl, Linux /proc. Open streams need ~2 fds per stream in the gateway: the script
# raises `ulimit -n` to the hard limit and warns below 4096.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
DURATION=${BENCH_DURATION:-10}
WARMUP=${BENCH_WARMUP:-1}
HOLD=${BENCH_HOLD:-5}
SCENARIOS=${BENCH_SCENARIOS:-nonstream,stream,prompt,anthropic,messages,openstreams,growth,logging}
MOCK_PORT=${BENCH_MOCK_PORT:-8089}
GW_PORT=${BENCH_GATEWAY_PORT:-9792}
FLOOR_PORT=${BENCH_FLOOR_PORT:-9793}
# Peers mode only: another build of the gateway (an older commit, say) measured as one more target in the
# same run, so that before and after share the machine's load case by case.
BASELINE_BIN=${BENCH_BASELINE_BIN:-}
BASELINE_PORT=${BENCH_BASELINE_PORT:-9794}
MODE=${BENCH_MODE:-scenarios}
TZ_VERSION=${BENCH_TENSORZERO_VERSION:-2026.6.0}
# The build folder: its own by default; BENCH_SCRATCH=.build reuses the test build's packages.
SCRATCH=${BENCH_SCRATCH:-.build-bench}
# release for numbers; CI's smoke run uses debug to reuse the test build (its timings mean nothing).
CONFIG=${BENCH_CONFIG:-release}
BIN=$ROOT/$SCRATCH/$CONFIG
RESULTS_DIR=$ROOT/bench/results
CLK_TCK=$(getconf CLK_TCK)

log() { printf '[bench] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
wants() { [[ ",$SCENARIOS," == *",$1,"* ]]; }

[[ $MODE == scenarios || $MODE == peers ]] || die "BENCH_MODE must be scenarios or peers, not '$MODE'"

for tool in python3 curl; do command -v "$tool" >/dev/null || die "$tool is required"; done
[[ -d /proc/self ]] || die "/proc is required (Linux)"

ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if (( $(ulimit -n) < 4096 )); then
    log "warning: ulimit -n is $(ulimit -n); 1,000 open streams need ~2,100 descriptors in the gateway"
fi

# One build for everything: gateway, mock, load generator, floor (and the other bench targets).
if [[ -z "${BENCH_SKIP_BUILD:-}" ]]; then
    log "building ($CONFIG, $SCRATCH)…"
    CHRONICLE_BENCH=1 swift build -c "$CONFIG" --scratch-path "$SCRATCH" >&2 || die "build failed"
fi
TOOLS=(chronicle ChronicleMock ChronicleLoad)
[[ $MODE == peers ]] && TOOLS+=(ChronicleFloor)
for exe in "${TOOLS[@]}"; do [[ -x $BIN/$exe ]] || die "missing $BIN/$exe"; done

TMP=$(mktemp -d "${TMPDIR:-/tmp}/chronicle-bench.XXXXXX")
MOCK_PID="" GW_PID="" FLOOR_PID="" TZ_PID="" BASELINE_PID="" SAMPLER_PID=""
FAILURES=()

cleanup() {
    local status=$?
    for pid in $SAMPLER_PID $GW_PID $BASELINE_PID $FLOOR_PID $TZ_PID $MOCK_PID; do
        kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
    done
    if (( status != 0 )) && [[ -f $TMP/gateway.log ]]; then
        log "last gateway log lines:"; tail -n 20 "$TMP/gateway.log" >&2 || true
    fi
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- processes ---------------------------------------------------------------------------------------

wait_http() {  # url seconds pid
    local deadline=$((SECONDS + $2))
    until curl -sf -o /dev/null "$1"; do
        kill -0 "$3" 2>/dev/null || return 1
        (( SECONDS < deadline )) || return 1
        sleep 0.1
    done
}

start_mock() {
    "$BIN/ChronicleMock" --port "$MOCK_PORT" >"$TMP/mock.log" 2>&1 &
    MOCK_PID=$!
    wait_http "http://127.0.0.1:$MOCK_PORT/healthz" 10 "$MOCK_PID" || { cat "$TMP/mock.log" >&2; die "mock did not start (port $MOCK_PORT busy?)"; }
}

# Streams last HOLD + 5 s, so they are all still open while the load generator holds them.
HOLD_CHUNKS=$(python3 -c "import math; print(int(math.ceil(($HOLD + 5) * 10)))")

write_config() {  # log_to_database
    cat >"$TMP/chronicle.toml" <<EOF
port = $GW_PORT
host = "127.0.0.1"
database = "$TMP/bench.db"
log_to_database = $1

[[providers]]
name = "bench"
url = "http://127.0.0.1:$MOCK_PORT/v1/chat/completions"
format = "openai"
prefix = "bench/"
api_key = "sk-bench"

[[providers]]
name = "benchanthropic"
url = "http://127.0.0.1:$MOCK_PORT/v1/messages"
format = "anthropic"
prefix = "claude-bench/"
api_key = "sk-bench"

# The gateway does not forward client headers upstream, so mock stream controls ride on providers.
[[providers]]
name = "bench-hold"
url = "http://127.0.0.1:$MOCK_PORT/v1/chat/completions"
format = "openai"
prefix = "bench-hold/"
api_key = "sk-bench"
headers = { "x-mock-chunks" = "$HOLD_CHUNKS", "x-mock-delay-us" = "100000" }
EOF
    for chunks in 10 100 200 1000; do
        cat >>"$TMP/chronicle.toml" <<EOF

[[providers]]
name = "bench-c$chunks"
url = "http://127.0.0.1:$MOCK_PORT/v1/chat/completions"
format = "openai"
prefix = "bench-c$chunks/"
api_key = "sk-bench"
headers = { "x-mock-chunks" = "$chunks" }
EOF
    done
}

GW_LOGGING=""
start_gateway() {  # log_to_database
    write_config "$1"
    "$BIN/chronicle" serve --config "$TMP/chronicle.toml" >>"$TMP/gateway.log" 2>&1 &
    GW_PID=$!
    GW_LOGGING=$1
    wait_http "http://127.0.0.1:$GW_PORT/healthz" 60 "$GW_PID" || die "gateway did not become ready"
    sleep 0.5  # let start-up allocations settle before the first idle RSS reading
}

stop_gateway() {
    [[ -n $GW_PID ]] || return 0
    kill "$GW_PID" 2>/dev/null || true
    wait "$GW_PID" 2>/dev/null || true
    GW_PID=""
}

restart_gateway() {
    local logging=$GW_LOGGING
    stop_gateway
    start_gateway "$logging"
}

# The baseline gateway: the same configuration on its own port and database.
start_baseline() {
    [[ -x $BASELINE_BIN ]] || die "BENCH_BASELINE_BIN=$BASELINE_BIN is not an executable"
    sed -e "s/^port = $GW_PORT\$/port = $BASELINE_PORT/" -e "s#$TMP/bench.db#$TMP/baseline.db#" \
        "$TMP/chronicle.toml" >"$TMP/baseline.toml"
    "$BASELINE_BIN" serve --config "$TMP/baseline.toml" >"$TMP/baseline.log" 2>&1 &
    BASELINE_PID=$!
    wait_http "http://127.0.0.1:$BASELINE_PORT/healthz" 60 "$BASELINE_PID" || { tail -n 20 "$TMP/baseline.log" >&2; die "baseline gateway did not start"; }
}

# The bare relay every gateway is compared with: whatever a gateway adds beyond it is its own work.
start_floor() {
    "$BIN/ChronicleFloor" --port "$FLOOR_PORT" --upstream "127.0.0.1:$MOCK_PORT" >"$TMP/floor.log" 2>&1 &
    FLOOR_PID=$!
    wait_http "http://127.0.0.1:$FLOOR_PORT/healthz" 10 "$FLOOR_PID" || { cat "$TMP/floor.log" >&2; die "floor did not start (port $FLOOR_PORT busy?)"; }
}

# TensorZero's gateway from its PyPI wheel (the Rust gateway embedded in a Python extension). Sets TZ_PYTHON,
# or TZ_SKIPPED with the reason when the wheel cannot be had (no network, no venv module, BENCH_TENSORZERO=off).
TZ_PYTHON="" TZ_SKIPPED="" TZ_URL=""
find_tensorzero() {
    if [[ ${BENCH_TENSORZERO:-on} == off ]]; then TZ_SKIPPED="BENCH_TENSORZERO=off"; return 1; fi
    if [[ -n ${BENCH_TENSORZERO_PYTHON:-} ]]; then
        "$BENCH_TENSORZERO_PYTHON" -c 'import tensorzero' 2>/dev/null \
            || { TZ_SKIPPED="BENCH_TENSORZERO_PYTHON=$BENCH_TENSORZERO_PYTHON cannot import tensorzero"; return 1; }
        TZ_PYTHON=$BENCH_TENSORZERO_PYTHON
        return 0
    fi
    # A venv of its own, kept under the scratch folder so later runs need no network.
    local venv=$ROOT/$SCRATCH/tensorzero-$TZ_VERSION
    if ! "$venv/bin/python" -c 'import tensorzero' 2>/dev/null; then
        log "installing tensorzero==$TZ_VERSION with pip into $venv…"
        rm -rf "$venv"
        if ! python3 -m venv "$venv" >"$TMP/pip.log" 2>&1; then
            TZ_SKIPPED="python3 -m venv failed: $(tail -n 1 "$TMP/pip.log")"; rm -rf "$venv"; return 1
        fi
        # Few retries and a short timeout: without network the run should go on without TensorZero quickly.
        if ! "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --retries 1 --timeout 20 \
                "tensorzero==$TZ_VERSION" >>"$TMP/pip.log" 2>&1; then
            TZ_SKIPPED="pip could not install tensorzero==$TZ_VERSION: $(grep -m 1 -E 'ERROR|error' "$TMP/pip.log" || tail -n 1 "$TMP/pip.log")"
            rm -rf "$venv"
            return 1
        fi
    fi
    TZ_PYTHON=$venv/bin/python
}

# The gateway's only model sends OpenAI-format calls to the mock; no database, observability off, no key.
write_tensorzero_config() {
    cat >"$TMP/tensorzero.toml" <<EOF
[gateway.observability]
enabled = false

[models.bench]
routing = ["mock"]

[models.bench.providers.mock]
type = "openai"
model_name = "bench"
api_base = "http://127.0.0.1:$MOCK_PORT/v1/"
api_key_location = "none"
EOF
}

start_tensorzero() {  # check-body-file
    find_tensorzero || return 1
    write_tensorzero_config
    "$TZ_PYTHON" "$ROOT/bench/tensorzero_gateway.py" --config "$TMP/tensorzero.toml" --url-file "$TMP/tensorzero.url" \
        >"$TMP/tensorzero.log" 2>&1 &
    TZ_PID=$!
    local deadline=$((SECONDS + 60))
    until [[ -s $TMP/tensorzero.url ]]; do
        if ! kill -0 "$TZ_PID" 2>/dev/null || (( SECONDS >= deadline )); then
            tail -n 20 "$TMP/tensorzero.log" >&2
            FAILURES+=("TensorZero did not start (log above)")
            TZ_SKIPPED="its gateway did not start"
            stop_tensorzero
            return 1
        fi
        sleep 0.1
    done
    TZ_URL=$(head -n 1 "$TMP/tensorzero.url")/openai/v1/chat/completions
    # One call before measuring: a gateway that answers with an error would only show up as a row of errors.
    if ! curl -sf -o /dev/null -H 'content-type: application/json' --data-binary "@$1" "$TZ_URL"; then
        tail -n 20 "$TMP/tensorzero.log" >&2
        FAILURES+=("TensorZero did not answer a call through $TZ_URL")
        TZ_SKIPPED="its gateway did not answer a call"
        stop_tensorzero
        return 1
    fi
    log "TensorZero $TZ_VERSION at $TZ_URL (pid $TZ_PID)"
}

stop_tensorzero() {
    [[ -n $TZ_PID ]] || return 0
    kill "$TZ_PID" 2>/dev/null || true
    wait "$TZ_PID" 2>/dev/null || true
    TZ_PID=""
}

rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }
cpu_ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat" 2>/dev/null || echo 0; }

# Highest RSS of the gateway while a case runs, sampled every 200 ms.
start_sampler() {
    local pid=$1 out=$2
    ( max=0; while kill -0 "$pid" 2>/dev/null; do
          r=$(rss_kb "$pid"); (( r > max )) && { max=$r; echo "$max" >"$out.tmp" && mv "$out.tmp" "$out"; }
          sleep 0.2
      done ) &
    SAMPLER_PID=$!
}
stop_sampler() { kill "$SAMPLER_PID" 2>/dev/null || true; wait "$SAMPLER_PID" 2>/dev/null || true; SAMPLER_PID=""; }

# ---- cases ---------------------------------------------------------------------------------------

RAW=$TMP/raw.jsonl
: >"$RAW"

# The process a case's CPU and memory are measured on: none for the mock alone.
measured_pid() {  # target
    case $1 in
        gateway) echo "$GW_PID" ;;
        baseline) echo "$BASELINE_PID" ;;
        floor) echo "$FLOOR_PID" ;;
        tensorzero) echo "$TZ_PID" ;;
    esac
}

# Seconds between the end of a case and its "after" RSS reading, which shows what a burst leaves behind.
RSS_AFTER_DELAY=1

# run_case SCENARIO TARGET LOAD-ARGS…   TARGET is direct (the mock alone), gateway (Chronicle), floor or
# tensorzero. Appends one JSON line to $RAW; "gateway" in it holds the measured process's CPU and RSS.
run_case() {
    local scenario=$1 target=$2; shift 2
    local out=$TMP/case.json err=$TMP/case.err
    log "$scenario [$target]"
    local gw_before_cpu=0 rss_idle=0 pid
    pid=$(measured_pid "$target")
    if [[ -n $pid ]]; then
        kill -0 "$pid" 2>/dev/null || die "$target is not running"
        rss_idle=$(rss_kb "$pid"); gw_before_cpu=$(cpu_ticks "$pid")
        echo "$rss_idle" >"$TMP/rss_max"
        start_sampler "$pid" "$TMP/rss_max"
    fi
    local status=0
    "$BIN/ChronicleLoad" --json "$@" >"$out" 2>"$err" || status=$?
    local gw='null'
    if [[ -n $pid ]]; then
        local cpu_after; cpu_after=$(cpu_ticks "$pid")
        stop_sampler
        sleep "$RSS_AFTER_DELAY"
        # The sampler replaces the file atomically, but it may have been stopped before its first write.
        local rss_load; rss_load=$(tail -n 1 "$TMP/rss_max" 2>/dev/null || true)
        [[ $rss_load =~ ^[0-9]+$ ]] || rss_load=$rss_idle
        gw=$(printf '{"cpu_s":%s,"rss_idle_kb":%s,"rss_load_kb":%s,"rss_after_kb":%s,"log_to_database":%s}' \
            "$(python3 -c "print(($cpu_after - $gw_before_cpu) / $CLK_TCK)")" "$rss_idle" \
            "$rss_load" "$(rss_kb "$pid")" "$([[ $target == gateway ]] && echo "$GW_LOGGING" || echo null)")
    fi
    if (( status != 0 )) || ! [[ -s $out ]]; then
        cat "$err" >&2
        FAILURES+=("$scenario [$target]: ChronicleLoad exited with $status")
        return 0
    fi
    python3 - "$out" "$scenario" "$target" "$gw" >>"$RAW" <<'EOF'
import json, sys
result = json.load(open(sys.argv[1]))
print(json.dumps({"scenario": sys.argv[2], "target": sys.argv[3], "result": result, "gateway": json.loads(sys.argv[4])}))
EOF
    local problem
    problem=$(python3 - "$out" "$CONFIG" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
# A debug smoke run may finish no slow stream inside a one-second window, nor open every stream in time;
# errors still fail it.
needs_completions = sys.argv[2] != "debug"
if r["mode"] == "open_streams":
    # In debug, opening 1,000 streams may outlast the open timeout; a stream cut after opening still fails.
    if (needs_completions and r["streams_opened"] < r["streams_requested"]) or r["streams_failed_after_open"] > 0:
        print(f'{r["streams_opened"]}/{r["streams_requested"]} streams opened, {r["streams_failed_after_open"]} cut')
elif r["errors"] > 0 or (needs_completions and r["requests"] == 0):
    print(f'{r["requests"]} requests, {r["errors_status"]} status errors {r["status_counts"]}, {r["errors_connection"]} connection errors')
EOF
)
    [[ -z $problem ]] || { log "FAILED: $problem"; FAILURES+=("$scenario [$target]: $problem"); }
}

GW_URL=http://127.0.0.1:$GW_PORT/v1/chat/completions
GW_MESSAGES_URL=http://127.0.0.1:$GW_PORT/v1/messages
MOCK_OPENAI=http://127.0.0.1:$MOCK_PORT/v1/chat/completions
MOCK_ANTHROPIC=http://127.0.0.1:$MOCK_PORT/v1/messages
TIMING=(--duration "$DURATION" --warmup "$WARMUP")

# pair SCENARIO "DIRECT-ARGS" "GATEWAY-ARGS": the same load against the mock, then through the gateway.
pair() {
    local scenario=$1; read -r -a direct <<<"$2"; read -r -a gateway <<<"$3"
    run_case "$scenario" direct "${TIMING[@]}" "${direct[@]}"
    run_case "$scenario" gateway "${TIMING[@]}" "${gateway[@]}"
}

# Prompt bodies: one user message padded with prose to about SIZE bytes.
make_body() {  # bytes file
    python3 - "$1" "$2" <<'EOF'
import json, sys
size, path = int(sys.argv[1]), sys.argv[2]
sentence = "Lassie was a fictional Rough Collie featured in films, television shows and books. "
text = (sentence * (size // len(sentence) + 1))[:max(size - 120, 16)]
body = {"model": "bench/gpt", "messages": [{"role": "system", "content": "Summarise the user's text."},
                                           {"role": "user", "content": text}], "max_tokens": 256}
open(path, "w").write(json.dumps(body, separators=(",", ":")))
EOF
}
declare -A PROMPT_LABEL=([1000]="1 kB" [10000]="10 kB" [100000]="100 kB" [1000000]="1 MB")
for size in 1000 10000 100000 1000000; do make_body "$size" "$TMP/prompt_$size.json"; done

open_streams() {  # count
    local n=$1 held=(--hold "$HOLD" --header "x-mock-chunks: $HOLD_CHUNKS" --header "x-mock-delay-us: 100000")
    run_case "open streams n=$n" direct --url "$MOCK_OPENAI" --open-streams "$n" "${held[@]}"
    # A fresh gateway, so its idle RSS is a baseline rather than what earlier scenarios left behind.
    restart_gateway
    run_case "open streams n=$n" gateway --url "$GW_URL" --open-streams "$n" --hold "$HOLD" --model bench-hold/gpt
}

finish() {
    if (( ${#FAILURES[@]} > 0 )); then
        log "FAILED cases:"; printf '  %s\n' "${FAILURES[@]}" >&2
        exit 1
    fi
}

# ---- peers mode --------------------------------------------------------------------------------------
# Case by case, the same load against each target in turn, all of them up for the whole run: the mock alone,
# the floor, Chronicle (logging to SQLite) and TensorZero. Taking the targets of one case one after the other,
# rather than one target's cases together, keeps drift in the machine's load out of the comparison.

# The same two-message chat for every target; TensorZero's differs only in `model`, its way to name a model.
write_peer_bodies() {
    python3 - "$TMP" <<'EOF'
import json, sys
messages = [{"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": "Who was Lassie? Answer in one paragraph."}]
for kind, stream in (("nonstream", False), ("stream", True)):
    for suffix, model in (("", "bench/gpt"), ("_tensorzero", "tensorzero::model_name::bench")):
        body = {"model": model, "messages": messages, "max_tokens": 64}
        if stream:
            body["stream"] = True
        open(f"{sys.argv[1]}/peers_{kind}{suffix}.json", "w").write(json.dumps(body, separators=(",", ":")))
EOF
}

peer_cases() {  # SCENARIO nonstream|stream LOAD-ARGS…
    local scenario=$1 kind=$2; shift 2
    local body=$TMP/peers_$kind.json
    run_case "$scenario" direct "${TIMING[@]}" --url "$MOCK_OPENAI" --body-file "$body" "$@"
    run_case "$scenario" floor "${TIMING[@]}" --url "http://127.0.0.1:$FLOOR_PORT/v1/chat/completions" --body-file "$body" "$@"
    [[ -z $BASELINE_PID ]] || run_case "$scenario" baseline "${TIMING[@]}" --url "http://127.0.0.1:$BASELINE_PORT/v1/chat/completions" --body-file "$body" "$@"
    run_case "$scenario" gateway "${TIMING[@]}" --url "$GW_URL" --body-file "$body" "$@"
    [[ -z $TZ_PID ]] || run_case "$scenario" tensorzero "${TIMING[@]}" --url "$TZ_URL" --body-file "$TMP/peers_${kind}_tensorzero.json" "$@"
}

report_peers() {
    mkdir -p "$RESULTS_DIR"
    python3 - "$RAW" "$RESULTS_DIR/peers.json" "$DURATION" "$WARMUP" "$TZ_VERSION" "$TZ_SKIPPED" <<'EOF'
import json, sys, datetime, os
rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
tz_version, tz_skipped = sys.argv[5], sys.argv[6]
json.dump({"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
           "mode": "peers", "duration_s": float(sys.argv[3]), "warmup_s": float(sys.argv[4]), "cpus": os.cpu_count(),
           "tensorzero_version": None if tz_skipped else tz_version, "tensorzero_skipped": tz_skipped or None,
           "cases": rows}, open(sys.argv[2], "w"), indent=1)

def num(v, digits=0):
    return f"{v:,.{digits}f}"

labels = {"direct": "mock alone", "floor": "floor", "baseline": "Chronicle baseline", "gateway": "Chronicle",
          "tensorzero": "TensorZero"}
by_case = {}
for r in rows:
    by_case.setdefault(r["scenario"], {})[r["target"]] = r

print("| case | target | req/s | × TensorZero | p50 / p99 µs | added p50 µs | TTFT p50 / p99 µs | added TTFT p50 µs | CPU ms / req | RSS idle / peak MB |")
print("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|")
for scenario, targets in by_case.items():
    direct = targets.get("direct", {}).get("result")
    tz = targets.get("tensorzero", {}).get("result")
    for target in ("direct", "floor", "baseline", "gateway", "tensorzero"):
        r = targets.get(target)
        if r is None:
            continue
        res, gw = r["result"], r["gateway"]
        lat, ttft = res["latency_us"], res["ttft_us"]
        vs_tz = f'{res["throughput_rps"] / tz["throughput_rps"]:.2f}×' if tz and tz["throughput_rps"] > 0 else "—"
        added = added_ttft = cpu = rss = "—"
        if target != "direct" and direct is not None:
            added = num(lat["p50"] - direct["latency_us"]["p50"])
            if res["stream"]:
                added_ttft = num(ttft["p50"] - direct["ttft_us"]["p50"])
        if gw is not None:
            total = sum(res["status_counts"].values())
            if total:
                cpu = num(gw["cpu_s"] / total * 1000, 3)
            rss = f'{num(gw["rss_idle_kb"] / 1024, 1)} / {num(gw["rss_load_kb"] / 1024, 1)}'
        ttft_s = f'{num(ttft["p50"])} / {num(ttft["p99"])}' if res["stream"] else "—"
        errors = "" if res["errors"] == 0 else f' ⚠ {res["errors"]} errors'
        print(f'| {scenario} | {labels[target]}{errors} | {num(res["throughput_rps"])} | {vs_tz} | '
              f'{num(lat["p50"])} / {num(lat["p99"])} | {added} | {ttft_s} | {added_ttft} | {cpu} | {rss} |')
if tz_skipped:
    print(f"\nTensorZero skipped: {tz_skipped}.")
EOF
    log "raw results: $RESULTS_DIR/peers.json"
}

if [[ $MODE == peers ]]; then
    # No "after" RSS column here, and waiting for it would make the run a third longer.
    RSS_AFTER_DELAY=0.2
    write_peer_bodies
    start_mock
    start_floor
    start_gateway true
    [[ -z $BASELINE_BIN ]] || start_baseline
    start_tensorzero "$TMP/peers_nonstream_tensorzero.json" || log "TensorZero skipped: $TZ_SKIPPED"
    log "pids: floor $FLOOR_PID, Chronicle $GW_PID, TensorZero ${TZ_PID:-none}; ${DURATION}s per case after ${WARMUP}s warmup"
    for c in 1 10 50; do peer_cases "non-stream c=$c" nonstream --concurrency "$c"; done
    for c in 1 10; do peer_cases "stream c=$c" stream --concurrency "$c" --stream; done
    stop_tensorzero
    stop_gateway
    [[ -z $BASELINE_PID ]] || { kill "$BASELINE_PID" 2>/dev/null; wait "$BASELINE_PID" 2>/dev/null || true; BASELINE_PID=""; }
    report_peers
    finish
    exit 0
fi

# ---- scenarios ---------------------------------------------------------------------------------------

start_mock
start_gateway true
log "gateway pid $GW_PID, idle RSS $(rss_kb "$GW_PID") kB; ${DURATION}s per case after ${WARMUP}s warmup"

if wants nonstream; then
    for c in 1 16 64 256; do
        pair "non-stream c=$c" "--url $MOCK_OPENAI --concurrency $c" "--url $GW_URL --concurrency $c"
    done
fi
if wants stream; then
    pair "stream 200 chunks c=16" "--url $MOCK_OPENAI --concurrency 16 --stream --header x-mock-chunks:200" \
        "--url $GW_URL --concurrency 16 --stream --model bench-c200/gpt"
fi
if wants prompt; then
    for size in 100000 1000000; do
        for c in 1 16; do
            pair "prompt ${PROMPT_LABEL[$size]// /} c=$c" "--url $MOCK_OPENAI --concurrency $c --body-file $TMP/prompt_$size.json" \
                "--url $GW_URL --concurrency $c --body-file $TMP/prompt_$size.json"
        done
    done
fi
if wants anthropic; then
    pair "anthropic upstream c=16" "--url $MOCK_ANTHROPIC --concurrency 16" "--url $GW_URL --concurrency 16 --model claude-bench/x"
    pair "anthropic upstream stream c=16" "--url $MOCK_ANTHROPIC --concurrency 16 --stream" \
        "--url $GW_URL --concurrency 16 --stream --model claude-bench/x"
fi
if wants messages; then
    # The Anthropic Messages route passing through to an Anthropic-format upstream, next to the OpenAI route
    # relaying to an OpenAI-format one: the same chat, the same mock, streamed and not.
    for stream in false true; do
        printf '{"model":"claude-bench/x","max_tokens":64,"stream":%s,"messages":[{"role":"user","content":"Who was Lassie?"}]}' \
            "$stream" >"$TMP/messages_$stream.json"
    done
    pair "OpenAI route c=10" "--url $MOCK_OPENAI --concurrency 10" "--url $GW_URL --concurrency 10"
    pair "Messages route c=10" "--url $MOCK_ANTHROPIC --concurrency 10 --body-file $TMP/messages_false.json" \
        "--url $GW_MESSAGES_URL --concurrency 10 --body-file $TMP/messages_false.json"
    pair "OpenAI route stream c=10" "--url $MOCK_OPENAI --concurrency 10 --stream" "--url $GW_URL --concurrency 10 --stream"
    pair "Messages route stream c=10" "--url $MOCK_ANTHROPIC --concurrency 10 --stream --body-file $TMP/messages_true.json" \
        "--url $GW_MESSAGES_URL --concurrency 10 --stream --body-file $TMP/messages_true.json"
fi
if wants openstreams; then
    open_streams 1000
fi
if wants growth; then
    for size in 1000 10000 100000 1000000; do
        pair "growth prompt ${PROMPT_LABEL[$size]// /} c=1" "--url $MOCK_OPENAI --concurrency 1 --body-file $TMP/prompt_$size.json" \
            "--url $GW_URL --concurrency 1 --body-file $TMP/prompt_$size.json"
    done
    for chunks in 10 100 1000; do
        pair "growth stream $chunks chunks c=1" "--url $MOCK_OPENAI --concurrency 1 --stream --header x-mock-chunks:$chunks" \
            "--url $GW_URL --concurrency 1 --stream --model bench-c$chunks/gpt"
    done
    for n in 10 100 1000; do
        (( n == 1000 )) && wants openstreams && continue  # already measured above
        open_streams "$n"
    done
fi
if wants logging; then
    pair "logging on c=64" "--url $MOCK_OPENAI --concurrency 64" "--url $GW_URL --concurrency 64"
    stop_gateway
    start_gateway false
    run_case "logging off c=64" gateway "${TIMING[@]}" --url "$GW_URL" --concurrency 64
fi

stop_gateway

# ---- report ------------------------------------------------------------------------------------------

mkdir -p "$RESULTS_DIR"
python3 - "$RAW" "$RESULTS_DIR/latest.json" "$DURATION" "$WARMUP" <<'EOF'
import json, sys, datetime, os
rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
json.dump({"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
           "duration_s": float(sys.argv[3]), "warmup_s": float(sys.argv[4]), "cpus": os.cpu_count(), "cases": rows},
          open(sys.argv[2], "w"), indent=1)

def num(v, digits=0):
    return f"{v:,.{digits}f}"

# "logging off" has no direct run of its own: compare it with the "logging on" direct run.
direct = {r["scenario"]: r["result"] for r in rows if r["target"] == "direct"}
direct.setdefault("logging off c=64", direct.get("logging on c=64"))

print("| scenario | target | throughput req/s | p50 / p99 / p99.9 µs | TTFT p50 / p99 µs | added p50 / p99 µs | gateway CPU s / 1k req | gateway RSS idle / load / after MB |")
print("|---|---|--:|--:|--:|--:|--:|--:|")
for r in rows:
    res, gw = r["result"], r["gateway"]
    streams = res["mode"] == "open_streams"
    lat, ttft = res["latency_us"], res["ttft_us"]
    if streams:
        tput = f'{res["streams_opened"]}/{res["streams_requested"]} open ({res["open_seconds"]} s)'
        lat_s = "—"
    else:
        tput = num(res["throughput_rps"])
        lat_s = f'{num(lat["p50"])} / {num(lat["p99"])} / {num(lat["p999"])}'
    ttft_s = f'{num(ttft["p50"])} / {num(ttft["p99"])}' if res["stream"] or streams else "—"
    added = cpu = rss = "—"
    if gw is not None:
        base = direct.get(r["scenario"])
        if base is not None:
            key = "ttft_us" if streams else "latency_us"
            added = f'{num(res[key]["p50"] - base[key]["p50"])} / {num(res[key]["p99"] - base[key]["p99"])}'
            if streams:
                added += " (TTFT)"
        total = sum(res["status_counts"].values()) if not streams else res["streams_requested"]
        if total:
            cpu = num(gw["cpu_s"] / total * 1000, 3)
        rss = " / ".join(num(gw[k] / 1024, 1) for k in ("rss_idle_kb", "rss_load_kb", "rss_after_kb"))
    errors = "" if res["errors"] == 0 else f' ⚠ {res["errors"]} errors'
    print(f'| {r["scenario"]} | {r["target"]}{errors} | {tput} | {lat_s} | {ttft_s} | {added} | {cpu} | {rss} |')
EOF
log "raw results: $RESULTS_DIR/latest.json"
finish
