#!/usr/bin/env bash
# `make bench-class` (issue 16): the release server behind Debian's nginx with TLS, and a class
# of learners plus abusers through it (bench/src/bin/class.rs). The proxy configuration is the
# shipped deploy/nginx.conf with its @PLACEHOLDERS@ filled in (one instance: the second
# instance's line deleted; scripts/private-nginx.sh), inside a minimal main configuration that
# lets one worker hold the slowloris's connections. Everything
# runs on free ports out of a temporary directory and is stopped afterwards, even on failure;
# nginx is never started as a system service. Arguments go to the `class` binary (e.g.
# `--seconds 20` for a short run). Exit code is the bench's (non-zero when a floor is missed).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
bash scripts/setup.sh bench
cargo build --release -p backend -p bench --bin backend --bin class

nginx=${NGINX:-/usr/sbin/nginx}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
dir=$(mktemp -d /tmp/bench-class.XXXXXX)
out=bench/output/class
mkdir -p "$out"
pids=()
stop() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  cp "$dir"/*.log "$out"/ 2>/dev/null || true
  rm -rf "$dir"
}
trap stop EXIT
fail() { echo "bench-class: $*" >&2; for f in "$dir"/*.log; do [ -f "$f" ] && { echo "--- $f"; tail -20 "$f"; }; done; exit 1; }
wait_for() { # URL [curl options]: until it answers 200, at most 10 s
  local url=$1; shift
  for _ in $(seq 100); do curl -sf "$@" "$url" >/dev/null 2>&1 && return 0; sleep 0.1; done
  return 1
}

# The slowloris alone holds 2,000 connections to nginx: lift this shell's (and so the
# server's and nginx's) limit on open files to its hard limit.
ulimit -n "$(ulimit -Hn)"
files=$(ulimit -n)
[ "$files" = unlimited ] && files=65536

# The release server with its default limits, trusting the proxy on loopback. What the stores
# keep is forgotten STORE_TTL seconds after it was last touched (by default 10 to 15 minutes),
# so that "afterwards" (the bench's --settle, longer) is once the load's leftovers are gone.
port=$(free_port)
store_ttl=${STORE_TTL:-60}
RUST_LOG=warn NO_COLOR=1 target/release/backend --addr "127.0.0.1:$port" --dist dist \
  --trusted-proxy 127.0.0.1/32 --debug-routes --store-ttl "$store_ttl" > "$dir/server.log" 2>&1 &
server_pid=$!
pids+=("$server_pid")
wait_for "http://127.0.0.1:$port/api/health" || fail "the server did not start"

# A throwaway authority the clients trust as their only root, and the proxy's certificate for
# 127.0.0.1 signed by it (webpki refuses a self-signed CA certificate used as the server's own).
make_certificates() {
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
    -keyout "$dir/ca-key.pem" -out "$dir/ca.pem" -subj "/CN=bench-class CA" &&
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$dir/key.pem" -out "$dir/cert.csr" -subj /CN=127.0.0.1 &&
  printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' \
    > "$dir/cert.ext" &&
  openssl x509 -req -in "$dir/cert.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca-key.pem" \
    -CAcreateserial -days 1 -extfile "$dir/cert.ext" -out "$dir/cert.pem"
}
make_certificates 2>/dev/null || fail "openssl could not make the certificates"
https_port=$(free_port)
http_port=$(free_port)
note="proxy configuration: deploy/nginx.conf, one instance"
source scripts/private-nginx.sh
nginx_site "$https_port" "$http_port" "127.0.0.1:$port"
CONNECTIONS=16384 nginx_start "worker_rlimit_nofile $files;" "access_log off;"
wait_for "https://127.0.0.1:$https_port/api/health" -k || fail "nginx did not answer on port $https_port"
echo "==> nginx on https://127.0.0.1:$https_port in front of the release server (:$port, pid $server_pid)"

set +e
BENCH_CLASS_COMMAND="make bench-class${*:+ ARGS='$*'}" target/release/class \
  --proxy "127.0.0.1:$https_port" --cert "$dir/ca.pem" --server-pid "$server_pid" \
  --proxy-note "$note" "$@"
status=$?
set -e
exit $status
