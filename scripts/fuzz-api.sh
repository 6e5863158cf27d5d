#!/usr/bin/env bash
# `make fuzz-api`: schemathesis (from PyPI, in a venv under .tools/) against a backend started
# here on a free port, driven by the server's own /api/openapi.json. Checks: no 5xx, and every
# answer matches its documented status, content type and schema. The backend is stopped
# afterwards, even on failure. Extra arguments go to `st run` (e.g. --max-examples 20).
#
# Endpoints that hold a connection open are bounded, not left to hang the run:
# - the two event streams (GET /api/jobs/{id}/events, GET /api/pubsub/events) never end by
#   design, so they are excluded here; their bad input is covered by backend/tests/bad_input.rs;
# - long polls (≤ 30 s), the slow endpoints (≤ 10 s) and the blocking pool answer within
#   --request-timeout; WebSocket upgrades answer a plain GET at once with a 4xx;
# - the whole run is bounded by --max-time.
# One worker: with two, hypothesis (inside schemathesis) once failed on its own AST cache
# ("AST constructor recursion depth mismatch"), a tool error rather than a server one.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

SCHEMATHESIS_VERSION=4.32.5
VENV=.tools/schemathesis
if ! "$VENV/bin/st" --version 2>/dev/null | grep -q "$SCHEMATHESIS_VERSION"; then
    echo "installing schemathesis $SCHEMATHESIS_VERSION into $VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet "schemathesis==$SCHEMATHESIS_VERSION"
fi

cargo build --quiet -p backend
LOG=$(mktemp)
# --debug-routes: the stats and the benchmark baseline are fuzzed too.
./target/debug/backend --addr 127.0.0.1:0 --debug-routes >"$LOG" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true; wait $SERVER 2>/dev/null || true; rm -f "$LOG"' EXIT
BASE=""
for _ in $(seq 100); do
    BASE=$(sed -n 's|.*Patternscope is serving on \(http://[^ ]*\).*|\1|p' "$LOG" | head -1)
    [ -n "$BASE" ] && break
    sleep 0.1
done
[ -n "$BASE" ] || { echo "the backend did not start:"; cat "$LOG"; exit 1; }
echo "backend at $BASE"

"$VENV/bin/st" run "$BASE/api/openapi.json" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
    --exclude-path '/api/jobs/{id}/events' \
    --exclude-path '/api/pubsub/events' \
    --request-timeout 40 \
    --max-examples 50 \
    --max-time 240 \
    --workers 1 \
    --seed 7 \
    --suppress-health-check too_slow \
    --report-dir "${TMPDIR:-/tmp}/schemathesis-report" \
    "$@"
# The server must still be healthy after all of it.
curl -fsS "$BASE/api/health" >/dev/null && echo "backend still healthy after the run"
