#!/usr/bin/env bash
# End-to-end HTTP benchmark of the gateway: each scenario runs against the mock upstream directly and then
# through `chronicle serve`, so "added" latency and the gateway's CPU and memory are isolated.
#
#   bench/run.sh                                   # all scenarios, 10 s each (+1 s warmup)
#   BENCH_DURATION=1 bench/run.sh                  # smoke run (CI)
#   BENCH_SCENARIOS=nonstream,stream bench/run.sh  # a subset
#
# Scenarios: nonstream stream prompt anthropic openstreams growth logging.
# Other knobs: BENCH_WARMUP (1), BENCH_HOLD (5, seconds open streams are held), BENCH_MOCK_PORT (8089),
# BENCH_GATEWAY_PORT (9792), BENCH_SKIP_BUILD=1, BENCH_SCRATCH (.build-bench), BENCH_CONFIG (release).
# Needs: swift, python3, curl, Linux /proc. Open streams need ~2 fds per stream in the gateway: the script
# raises `ulimit -n` to the hard limit and warns below 4096.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
DURATION=${BENCH_DURATION:-10}
WARMUP=${BENCH_WARMUP:-1}
HOLD=${BENCH_HOLD:-5}
SCENARIOS=${BENCH_SCENARIOS:-nonstream,stream,prompt,anthropic,openstreams,growth,logging}
MOCK_PORT=${BENCH_MOCK_PORT:-8089}
GW_PORT=${BENCH_GATEWAY_PORT:-9792}
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

for tool in python3 curl; do command -v "$tool" >/dev/null || die "$tool is required"; done
[[ -d /proc/self ]] || die "/proc is required (Linux)"

ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if (( $(ulimit -n) < 4096 )); then
    log "warning: ulimit -n is $(ulimit -n); 1,000 open streams need ~2,100 descriptors in the gateway"
fi

# One build for everything: gateway, mock, load generator (and the other bench targets).
if [[ -z "${BENCH_SKIP_BUILD:-}" ]]; then
    log "building ($CONFIG, $SCRATCH)…"
    CHRONICLE_BENCH=1 swift build -c "$CONFIG" --scratch-path "$SCRATCH" >&2 || die "build failed"
fi
for exe in chronicle ChronicleMock ChronicleLoad; do [[ -x $BIN/$exe ]] || die "missing $BIN/$exe"; done

TMP=$(mktemp -d "${TMPDIR:-/tmp}/chronicle-bench.XXXXXX")
MOCK_PID="" GW_PID="" SAMPLER_PID=""
FAILURES=()

cleanup() {
    local status=$?
    for pid in $SAMPLER_PID $GW_PID $MOCK_PID; do
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

# run_case SCENARIO TARGET LOAD-ARGS…   TARGET is direct or gateway. Appends one JSON line to $RAW.
run_case() {
    local scenario=$1 target=$2; shift 2
    local out=$TMP/case.json err=$TMP/case.err
    log "$scenario [$target]"
    local gw_before_cpu=0 rss_idle=0
    if [[ $target == gateway ]]; then
        kill -0 "$GW_PID" 2>/dev/null || die "gateway is not running"
        rss_idle=$(rss_kb "$GW_PID"); gw_before_cpu=$(cpu_ticks "$GW_PID")
        echo "$rss_idle" >"$TMP/rss_max"
        start_sampler "$GW_PID" "$TMP/rss_max"
    fi
    local status=0
    "$BIN/ChronicleLoad" --json "$@" >"$out" 2>"$err" || status=$?
    local gw='null'
    if [[ $target == gateway ]]; then
        local cpu_after; cpu_after=$(cpu_ticks "$GW_PID")
        stop_sampler
        sleep 1
        # The sampler replaces the file atomically, but it may have been stopped before its first write.
        local rss_load; rss_load=$(tail -n 1 "$TMP/rss_max" 2>/dev/null || true)
        [[ $rss_load =~ ^[0-9]+$ ]] || rss_load=$rss_idle
        gw=$(printf '{"cpu_s":%s,"rss_idle_kb":%s,"rss_load_kb":%s,"rss_after_kb":%s,"log_to_database":%s}' \
            "$(python3 -c "print(($cpu_after - $gw_before_cpu) / $CLK_TCK)")" "$rss_idle" \
            "$rss_load" "$(rss_kb "$GW_PID")" "$GW_LOGGING")
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

if (( ${#FAILURES[@]} > 0 )); then
    log "FAILED cases:"; printf '  %s\n' "${FAILURES[@]}" >&2
    exit 1
fi
