#!/usr/bin/env bash
# Runs the whole test suite: starts a throwaway PostgreSQL server (unless CHRONICLE_TEST_POSTGRES_URL
# points at one), runs the Swift tests against SQLite and PostgreSQL, then the official OpenAI and Anthropic SDKs against
# the built server, and the dashboard in Chromium. Installs what it needs when missing (PostgreSQL, the Python
# SDKs, pytest, Playwright, Chromium).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${CHRONICLE_TEST_POSTGRES_URL:-}" ]; then
    CHRONICLE_TEST_POSTGRES_URL="$(./scripts/start-postgres.sh)"
fi
export CHRONICLE_TEST_POSTGRES_URL

swift build --build-tests
swift test --skip-build

python3 -c 'import openai, anthropic, pytest' 2>/dev/null || python3 -m pip install --quiet openai anthropic pytest
# The dashboard's browser tests drive Debian's Chromium through Playwright (`playwright install` cannot
# download browsers here).
python3 -c 'import playwright' 2>/dev/null || python3 -m pip install --quiet playwright
if [ ! -x /usr/bin/chromium ] && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium
fi
CHRONICLE_BIN="$(swift build --show-bin-path)/chronicle" python3 -m pytest -q Tests/e2e
