#!/usr/bin/env bash
# Runs a command with a private Redis (Debian's redis-server) on a free local port, its URL in
# PATTERNSCOPE_TEST_REDIS, and stops that Redis afterwards, whether the command passed or not.
# Nothing is written to disk (no RDB, no AOF). Usage: scripts/with-redis.sh COMMAND...
set -euo pipefail
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
dir=$(mktemp -d)
redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$dir" \
  --daemonize no --loglevel warning > "$dir/redis.log" 2>&1 &
pid=$!
trap 'kill -TERM $pid 2>/dev/null; wait $pid 2>/dev/null || true; rm -rf "$dir"' EXIT
for _ in $(seq 50); do
  redis-cli -p "$port" ping 2>/dev/null | grep -q PONG && break
  sleep 0.1
done
redis-cli -p "$port" ping 2>/dev/null | grep -q PONG || { echo "private Redis did not start:"; cat "$dir/redis.log"; exit 1; }
echo "==> private Redis on 127.0.0.1:$port (pid $pid)"
PATTERNSCOPE_TEST_REDIS="redis://127.0.0.1:$port" "$@"
