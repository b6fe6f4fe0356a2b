#!/bin/sh
# The usage API on a month of calls: seeds ROWS calls (default 1,000,000) spread over 30 days into a fresh
# SQLite database, through the store's batch path (which keeps the usage rollups), then times the query of
# GET /v1/usage?group_by=model&interval=day&since=30d three times, and once more reading the calls alone.
#
#   bench/usage.sh            # 1,000,000 calls
#   bench/usage.sh 100000     # fewer
#   CONFIG=release bench/usage.sh
#
# The normal test run seeds 2,000 calls only, to keep this working.
set -eu
ROWS="${1:-1000000}"
cd "$(dirname "$0")/.."
CONFIG="${CONFIG:-debug}"
swift build --build-tests -c "$CONFIG" 2>&1 | grep -E 'error|Build complete' || true
CHRONICLE_USAGE_BENCH_ROWS="$ROWS" swift test --skip-build -c "$CONFIG" --filter UsageBenchmarkTests 2>&1 \
    | grep -E 'usage bench|✘|error' || true
