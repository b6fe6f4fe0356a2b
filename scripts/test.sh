#!/usr/bin/env bash
# Runs the whole test suite: starts a throwaway PostgreSQL server (unless CHRONICLE_TEST_POSTGRES_URL
# points at one), runs the Swift tests against SQLite and PostgreSQL, then the official OpenAI and Anthropic SDKs against
# the built server. Installs what it needs when missing (PostgreSQL, the Python SDKs, pytest).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${CHRONICLE_TEST_POSTGRES_URL:-}" ]; then
    CHRONICLE_TEST_POSTGRES_URL="$(./scripts/start-postgres.sh)"
fi
export CHRONICLE_TEST_POSTGRES_URL

swift build --build-tests
swift test --skip-build

python3 -c 'import openai, anthropic, pytest' 2>/dev/null || python3 -m pip install --quiet openai anthropic pytest
CHRONICLE_BIN="$(swift build --show-bin-path)/chronicle" python3 -m pytest -q Tests/e2e
