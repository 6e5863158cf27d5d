#!/usr/bin/env bash
# Runs a command with a private RabbitMQ (Debian's rabbitmq-server) on free local ports, its
# URL in PATTERNSCOPE_TEST_AMQP, and stops that RabbitMQ (and the epmd it started) afterwards,
# whether the command passed or not. Everything it writes is in a temporary folder.
# Usage: scripts/with-rabbitmq.sh COMMAND...
set -euo pipefail
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# One try: a broker on fresh ports, in a fresh folder ($dir, $pid, $port, $epmd_port).
start() {
  port=$(free_port)
  dist_port=$(free_port)
  epmd_port=$(free_port)
  node="patternscope$port@localhost"
  dir=$(mktemp -d)
  chmod 755 "$dir"
  mkdir -p "$dir/mnesia" "$dir/log"
  : > "$dir/rabbitmq.conf"
  echo '[].' > "$dir/enabled_plugins"
  # The broker runs as the rabbitmq user when we are root (it refuses root's home otherwise).
  as_rabbit=()
  if [ "$(id -u)" = 0 ] && id rabbitmq >/dev/null 2>&1; then
    chown -R rabbitmq: "$dir"
    as_rabbit=(runuser -u rabbitmq --)
  fi
  # Debian's rabbitmq-server is a wrapper that, run as the rabbitmq user, writes the broker's
  # output to /var/log/rabbitmq (shared by every broker, overwritten by the next): the script it
  # wraps is run directly, so a broker that fails says why in its own server.log.
  local server=rabbitmq-server
  if [ ${#as_rabbit[@]} -gt 0 ] && [ -x /usr/lib/rabbitmq/bin/rabbitmq-server ] && [ "$(command -v rabbitmq-server)" = /usr/sbin/rabbitmq-server ]; then
    server=/usr/lib/rabbitmq/bin/rabbitmq-server
  fi
  (cd "$dir" && exec "${as_rabbit[@]}" env RABBITMQ_NODE_PORT="$port" RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 \
    RABBITMQ_DIST_PORT="$dist_port" RABBITMQ_NODENAME="$node" RABBITMQ_MNESIA_BASE="$dir/mnesia" \
    RABBITMQ_LOG_BASE="$dir/log" RABBITMQ_PID_FILE="$dir/rabbit.pid" \
    RABBITMQ_ENABLED_PLUGINS_FILE="$dir/enabled_plugins" RABBITMQ_CONFIG_FILE="$dir/rabbitmq" \
    ERL_EPMD_PORT="$epmd_port" HOME="$dir" \
    "$server") > "$dir/server.log" 2>&1 &
  pid=$!
}
stop() {
  [ -n "${dir:-}" ] || return 0
  # SIGTERM is RabbitMQ's orderly stop; the CLI (rabbitmqctl stop) would need the node's cookie.
  local beam
  beam=$(cat "$dir/rabbit.pid" 2>/dev/null || true)
  [ -z "$beam" ] || kill -TERM "$beam" 2>/dev/null || true
  for _ in $(seq 100); do
    { [ -n "$beam" ] && kill -0 "$beam" 2>/dev/null; } || break
    sleep 0.1
  done
  kill -TERM "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  # The epmd this broker started listens on its own port (ERL_EPMD_PORT): end that one only.
  ERL_EPMD_PORT="$epmd_port" epmd -kill >/dev/null 2>&1 || true
  rm -rf "$dir"
  dir=
}
trap stop EXIT
# Up to three tries: twice in a `make test` the broker exited at start, its cause lost to the
# shared log above, while the same script started others before and after.
for try in 1 2 3; do
  start
  for _ in $(seq 150); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.2
  done
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  echo "private RabbitMQ did not start (try $try of 3):"; tail -30 "$dir/server.log"
  stop
  [ "$try" -lt 3 ] || exit 1
  sleep 2
done
echo "==> private RabbitMQ on 127.0.0.1:$port (node $node)"
PATTERNSCOPE_TEST_AMQP="amqp://guest:guest@127.0.0.1:$port/%2f" "$@"
