#!/usr/bin/env bash
# Runs a command with a private PostgreSQL (Debian's postgresql) on a free local port, its URL in
# PATTERNSCOPE_TEST_POSTGRES, and stops that PostgreSQL afterwards, whether the command passed or
# not. Its data directory is temporary and removed afterwards. PostgreSQL refuses to run as
# root, so as root it runs as the `postgres` user. Usage: scripts/with-postgres.sh COMMAND...
set -euo pipefail
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -x "$bin/initdb" ] || { echo "no PostgreSQL found: run scripts/setup.sh test"; exit 1; }
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
dir=$(mktemp -d)
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
[ "$(id -u)" = 0 ] && chown postgres: "$dir"
stop() {
  as_pg "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap stop EXIT
as_pg "$bin/initdb" -D "$dir/data" -A trust -U postgres > "$dir/initdb.log" 2>&1 \
  || { echo "initdb failed:"; cat "$dir/initdb.log"; exit 1; }
as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w \
  -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null \
  || { echo "private PostgreSQL did not start:"; cat "$dir/postgres.log"; exit 1; }
echo "==> private PostgreSQL on 127.0.0.1:$port"
PATTERNSCOPE_TEST_POSTGRES="postgres://postgres@127.0.0.1:$port/postgres" "$@"
