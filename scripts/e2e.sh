#!/usr/bin/env bash
# Runs the browser tests against the real backend: starts it on a free port with the built
# frontend, runs Playwright (Debian's Chromium), stops it. Exit code is Playwright's.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${BACKEND_BIN:-target/debug/backend}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port=$(free_port)
# The same app over TLS (HTTP/2), for the multiplexing demo's browser side.
tls_port=$(free_port)
mkdir -p e2e/output
# The queue demo's RabbitMQ engine, when scripts/with-rabbitmq.sh gave one (queue.spec.js then
# runs on both engines), and the protocols demo's PostgreSQL, when scripts/with-postgres.sh gave
# one (its SQL lane asks it); other specs use neither.
engines=()
[ -z "${PATTERNSCOPE_TEST_AMQP:-}" ] || engines+=(--amqp-url "$PATTERNSCOPE_TEST_AMQP")
[ -z "${PATTERNSCOPE_TEST_POSTGRES:-}" ] || engines+=(--postgres-url "$PATTERNSCOPE_TEST_POSTGRES")
"$bin" --addr "127.0.0.1:$port" --tls "127.0.0.1:$tls_port" --dist dist "${engines[@]}" > e2e/output/backend.log 2>&1 &
pid=$!
trap 'kill -TERM $pid 2>/dev/null; wait $pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  curl -sf "http://127.0.0.1:$port/api/health" >/dev/null && break
  sleep 0.1
done
curl -sf "http://127.0.0.1:$port/api/health" >/dev/null || { echo "backend did not start:"; cat e2e/output/backend.log; exit 1; }
cd e2e
POSTGRES_LANE=${PATTERNSCOPE_TEST_POSTGRES:+on} BASE_URL="http://127.0.0.1:$port" TLS_URL="https://127.0.0.1:$tls_port" npx --no-install playwright test "$@"
