#!/usr/bin/env bash
# Starts a throwaway PostgreSQL server for the tests (port 55432, trust auth, loopback only) unless one is
# already answering there. Prints the URL the tests read from CHRONICLE_TEST_POSTGRES_URL.
set -euo pipefail
PORT="${CHRONICLE_TEST_POSTGRES_PORT:-55432}"
DATA="${CHRONICLE_TEST_POSTGRES_DATA:-/tmp/chronicle-test-postgres}"
URL="postgres://postgres@127.0.0.1:${PORT}/postgres?sslmode=disable"

if pg_isready -q -h 127.0.0.1 -p "$PORT"; then
    echo "$URL"
    exit 0
fi
if ! command -v initdb >/dev/null; then
    for dir in /usr/lib/postgresql/*/bin; do PATH="$dir:$PATH"; done
fi
if ! command -v initdb >/dev/null; then
    echo "PostgreSQL server binaries not found; installing postgresql" >&2
    (apt-get update -qq && apt-get install -y -qq postgresql) >&2
    for dir in /usr/lib/postgresql/*/bin; do PATH="$dir:$PATH"; done
fi
# initdb refuses to run as root: run the server as the postgres user when we are root.
as_owner() {
    if [ "$(id -u)" = "0" ]; then
        id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
        su postgres -s /bin/bash -c "PATH='$PATH' $*"
    else
        bash -c "$*"
    fi
}
rm -rf "$DATA"
mkdir -p "$DATA"
[ "$(id -u)" = "0" ] && chown postgres "$DATA"
as_owner "initdb -D '$DATA' -A trust -U postgres" >/dev/null
as_owner "pg_ctl -D '$DATA' -l '$DATA/server.log' -w -o \"-p $PORT -k /tmp -c listen_addresses=127.0.0.1 -c fsync=off\" start" >&2
echo "$URL"
