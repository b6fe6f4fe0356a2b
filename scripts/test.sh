#!/usr/bin/env bash
# Runs the whole test suite: the Swift tests, then the official OpenAI SDK against the built server.
# Installs what the tests need when it is missing (the Python SDK and pytest).
set -euo pipefail
cd "$(dirname "$0")/.."

swift build --build-tests
swift test --skip-build

python3 -c 'import openai, pytest' 2>/dev/null || python3 -m pip install --quiet openai pytest
CHRONICLE_BIN="$(swift build --show-bin-path)/chronicle" python3 -m pytest -q Tests/e2e
