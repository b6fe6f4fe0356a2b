#!/usr/bin/env bash
# Runs a Chronicle fleet on loopback and shows that it behaves as one gateway: PostgreSQL
# (scripts/start-postgres.sh), three replicas, nginx as the load balancer and a mock upstream. Prints the time
# an admin change takes to reach every replica, a 600-requests-a-minute key holding within its stated bound
# across the three, and the calls in the database per replica (each recorded exactly once).
#
#   scripts/fleet.sh                       # uses .build/debug/chronicle (swift build first)
#   CHRONICLE_BIN=path/to/chronicle REQUESTS=1500 scripts/fleet.sh
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BIN="${CHRONICLE_BIN:-$ROOT/.build/debug/chronicle}"
REQUESTS="${REQUESTS:-1500}"
CONCURRENCY="${CONCURRENCY:-24}"
RPM=600
SYNC_MS="${SYNC_MS:-200}"
NGINX="${NGINX:-/usr/sbin/nginx}"
[ -x "$BIN" ] || { echo "no chronicle binary at $BIN: run swift build" >&2; exit 1; }

WORK="$(mktemp -d /tmp/chronicle-fleet.XXXXXX)"
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    [ -f "$WORK/nginx.pid" ] && kill "$(cat "$WORK/nginx.pid")" 2>/dev/null || true
    wait 2>/dev/null || true
    [ -n "${DB:-}" ] && psql -q "$PG_ADMIN" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
    [ -n "${KEEP:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

PG_ADMIN="$("$ROOT/scripts/start-postgres.sh")"
DB="chronicle_fleet_$$"
psql -q "$PG_ADMIN" -c "CREATE DATABASE $DB" >/dev/null
PG_URL="${PG_ADMIN%/*}/$DB?sslmode=disable"
sql() { psql -qAt "$PG_URL" -c "$1"; }

# The mock upstream: an OpenAI-format answer with usage, after 5 ms.
UPSTREAM_PORT="$(free_port)"
cat >"$WORK/upstream.py" <<'EOF'
import http.server, json, sys, time
class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))) or b"{}")
        time.sleep(0.005)
        answer = json.dumps({"id": "c1", "object": "chat.completion", "created": 1, "model": body.get("model", "m"),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)
    def log_message(self, *args): pass
http.server.ThreadingHTTPServer.daemon_threads = True
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
EOF
python3 "$WORK/upstream.py" "$UPSTREAM_PORT" & PIDS+=($!)

ADMIN_KEY="fleet-admin-$$"
export CHRONICLE_SECRET_KEY="$(head -c 32 /dev/urandom | base64)"
cat >"$WORK/chronicle.toml" <<EOF
log_level = "warning"
fleet_sync_interval = "${SYNC_MS}ms"
[[providers]]
name = "mock"
url = "http://127.0.0.1:$UPSTREAM_PORT/v1/chat/completions"
prefix = "mock/"
EOF
REPLICA_PORTS=()
for index in 1 2 3; do
    port="$(free_port)"
    REPLICA_PORTS+=("$port")
    mkdir -p "$WORK/replica-$index"
    (cd "$WORK/replica-$index" && CHRONICLE_INSTANCE_ID="replica-$index" CHRONICLE_ADMIN_KEY="$ADMIN_KEY" \
        exec "$BIN" serve --no-dotenv -c "$WORK/chronicle.toml" --db "$PG_URL" --port "$port" \
        >"$WORK/replica-$index.log" 2>&1) & PIDS+=($!)
done

LB_PORT="$(free_port)"
cat >"$WORK/nginx.conf" <<EOF
worker_processes 1;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $WORK/nginx-body;
    proxy_temp_path $WORK/nginx-proxy;
    fastcgi_temp_path $WORK/nginx-fastcgi;
    uwsgi_temp_path $WORK/nginx-uwsgi;
    scgi_temp_path $WORK/nginx-scgi;
    upstream chronicle {
        server 127.0.0.1:${REPLICA_PORTS[0]};
        server 127.0.0.1:${REPLICA_PORTS[1]};
        server 127.0.0.1:${REPLICA_PORTS[2]};
        keepalive 64;
    }
    server {
        listen 127.0.0.1:$LB_PORT;
        location / {
            proxy_pass http://chronicle;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
        }
    }
}
EOF
"$NGINX" -c "$WORK/nginx.conf" -p "$WORK" -e "$WORK/nginx-error.log"

for port in "${REPLICA_PORTS[@]}"; do
    for _ in $(seq 1 300); do
        [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/readyz")" = "200" ] && break
        sleep 0.1
    done
done
echo "== fleet: PostgreSQL $DB, replicas on ports ${REPLICA_PORTS[*]}, nginx on $LB_PORT, sync every ${SYNC_MS} ms"
for port in "${REPLICA_PORTS[@]}"; do echo "   /readyz :$port -> $(curl -s "http://127.0.0.1:$port/readyz")"; done

echo
echo "== a config change seen by all replicas (alias created through replica-1's admin API)"
python3 - "$ADMIN_KEY" "${REPLICA_PORTS[@]}" <<'EOF'
import json, sys, time, urllib.request
key, ports = sys.argv[1], sys.argv[2:]
def call(port, path, body=None, method="POST", auth=None):
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"content-type": "application/json", **({"authorization": f"Bearer {auth}"} if auth else {})})
    try:
        with urllib.request.urlopen(request) as response: return response.status
    except urllib.error.HTTPError as error: return error.code
start = time.monotonic()
status = call(ports[0], "/v1/admin/aliases", {"name": "team-model", "models": [{"provider": "mock", "model": "m1"}]}, auth=key)
print(f"   POST /v1/admin/aliases on replica-1 -> {status}")
for index, port in enumerate(ports, 1):
    while call(port, "/v1/chat/completions", {"model": "team-model", "messages": [{"role": "user", "content": "hi"}]}) != 200:
        if time.monotonic() - start > 5: sys.exit(f"replica-{index} did not see the alias")
        time.sleep(0.005)
    print(f"   replica-{index} serves alias team-model {1000 * (time.monotonic() - start):.0f} ms after the change")
EOF

echo
echo "== a ${RPM}-requests-per-minute key across the three replicas"
KEY_JSON="$("$BIN" keys create --name team-a --rpm "$RPM" --url "http://127.0.0.1:${REPLICA_PORTS[1]}" --admin-key "$ADMIN_KEY")"
KEY="$(printf '%s' "$KEY_JSON" | python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')"
echo "   chronicle keys create --name team-a --rpm $RPM --url http://127.0.0.1:${REPLICA_PORTS[1]} -> key ${KEY:0:8}… (shown once)"
sleep 0.5
# The limit counts calendar minutes: start early in one so the whole load falls in it.
second="$(date +%-S)"
if [ "$second" -gt 40 ]; then echo "   (waiting $((61 - second)) s for the next minute)"; sleep $((61 - second)); fi
python3 - "$KEY" "$LB_PORT" "$REQUESTS" "$CONCURRENCY" "$RPM" "$SYNC_MS" <<'EOF'
import http.client, json, sys, threading, time
key, port, total, workers, rpm, sync_ms = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
lock = threading.Lock()
statuses, admitted_at = {}, []
sent = [0]
body = json.dumps({"model": "mock/m", "messages": [{"role": "user", "content": "hi"}]})
def worker():
    connection = http.client.HTTPConnection("127.0.0.1", port)
    while True:
        with lock:
            if sent[0] >= total: return
            sent[0] += 1
        connection.request("POST", "/v1/chat/completions", body, {"content-type": "application/json", "authorization": f"Bearer {key}"})
        response = connection.getresponse(); response.read()
        with lock:
            statuses[response.status] = statuses.get(response.status, 0) + 1
            if response.status == 200: admitted_at.append(time.monotonic())
start = time.monotonic()
threads = [threading.Thread(target=worker) for _ in range(workers)]
for thread in threads: thread.start()
for thread in threads: thread.join()
elapsed = time.monotonic() - start
admitted = statuses.get(200, 0)
# The rate the fleet admitted at while the limit was being reached (the first RPM admissions).
first = sorted(admitted_at)[:rpm]
rate = (len(first) - 1) / (first[-1] - first[0]) if len(first) > 1 and first[-1] > first[0] else 0.0
# A request one replica admits reaches another's view after at most two sync intervals (its own publish,
# then the other's read) plus the two exchanges' round trips (about 10 ms each here).
staleness = 2 * sync_ms / 1000 + 0.020
bound = rpm + (2 / 3) * rate * staleness
print(f"   {total} requests through nginx in {elapsed:.1f} s: " + ", ".join(f"{count} x {status}" for status, count in sorted(statuses.items())))
print(f"   admitted {admitted} of a limit of {rpm}: overshoot {admitted - rpm}")
print(f"   admission rate while under the limit: {rate:.0f} requests/s; staleness S = 2 x {sync_ms} ms + 2 x ~10 ms exchange")
print(f"   stated bound: limit + (R-1)/R x rate x S = {rpm} + 2/3 x {rate:.0f} x {staleness:.2f} = {bound:.0f} -> {'within' if admitted <= bound else 'OVER'} the bound")
EOF

sleep 2
echo
echo "== calls in the database per replica (each answered call recorded exactly once)"
sql "SELECT instance_id, count(*) AS calls, count(DISTINCT id) AS distinct_ids FROM chronicle_events GROUP BY instance_id ORDER BY instance_id" \
    | while IFS='|' read -r instance calls distinct; do echo "   $instance: $calls calls, $distinct distinct ids"; done
echo "   total: $(sql "SELECT count(*) FROM chronicle_events") rows, $(sql "SELECT count(*) FROM chronicle_events WHERE gateway_key = 'team-a'") with key team-a"
echo "   admin audit: $(sql "SELECT string_agg(actor || ' ' || action || ' ' || kind || ' ' || name, '; ' ORDER BY id) FROM chronicle_admin_audit")"
