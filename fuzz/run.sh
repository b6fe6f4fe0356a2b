#!/usr/bin/env bash
# Fuzzes the request decoders (OpenAI chat, Anthropic Messages, OpenAI Responses and embeddings), the workflow-event decoder and the provider
# stream decoders (SSE, NDJSON, AWS event-stream) with a seeded mutation fuzzer: 100,000 inputs per target by default, the targets in
# parallel, one per processor.
#   fuzz/run.sh                         # 100k inputs each, release build
#   FUZZ_INPUTS=20000 FUZZ_CONFIG=debug FUZZ_TIMEOUT=180 fuzz/run.sh   # what CI runs (every target), reusing the test build
#   FUZZ_SEED=42 fuzz/run.sh --target sse-openai      # replay another seed, one target
# Exit status 1 means a finding (printed with the input); a crash or hang kills the run (timeout).
set -euo pipefail
cd "$(dirname "$0")/.."
inputs="${FUZZ_INPUTS:-100000}"
seed="${FUZZ_SEED:-3298820126}"
config="${FUZZ_CONFIG:-release}"
swift build -c "$config" --product chronicle-fuzz >/dev/null
bin="$(swift build -c "$config" --show-bin-path)/chronicle-fuzz"
timeout "${FUZZ_TIMEOUT:-1800}" "$bin" --inputs "$inputs" --seed "$seed" --fixtures Tests/Fixtures/providers "$@"
