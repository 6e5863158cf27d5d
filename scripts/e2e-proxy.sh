#!/usr/bin/env bash
# The deployment as shipped, tested: deploy/nginx.conf (only its @PLACEHOLDERS@ replaced) with
# TLS (a self-signed certificate for 127.0.0.1) in front of two instances of the backend sharing
# a private Redis, each trusting the proxy; then the browser smoke set (e2e/proxy.config.js)
# against https://127.0.0.1:PORT. Everything runs on free ports out of a temporary directory
# and is stopped afterwards, whether the tests passed or not; nginx is never started as a
# system service. Exit code is Playwright's (or 1 if the set-up failed). PROXY=caddy runs the
# same through deploy/Caddyfile instead (not part of `make test`).
set -euo pipefail
cd "$(dirname "$0")/.."
# A private Redis first: this script again, under with-redis.sh.
if [ -z "${PATTERNSCOPE_TEST_REDIS:-}" ]; then
  exec bash scripts/with-redis.sh bash "$0" "$@"
fi
bin=${BACKEND_BIN:-target/debug/backend}
nginx=${NGINX:-/usr/sbin/nginx}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
out=$PWD/e2e/output/proxy
mkdir -p "$out"
dir=$(mktemp -d)
pids=()
stop() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  cp "$dir"/*.log "$out"/ 2>/dev/null || true
  rm -rf "$dir"
}
trap stop EXIT
fail() { echo "e2e-proxy: $*" >&2; for f in "$out"/*.log "$dir"/*.log; do [ -f "$f" ] && { echo "--- $f"; tail -20 "$f"; }; done; exit 1; }
wait_for() { # URL [curl options]: until it answers 200, at most 10 s
  local url=$1; shift
  for _ in $(seq 100); do curl -sf "$@" "$url" >/dev/null 2>&1 && return 0; sleep 0.1; done
  return 1
}

# Two instances, each trusting the proxy on loopback.
port_a=$(free_port)
port_b=$(free_port)
for name in a b; do
  port=port_$name
  NO_COLOR=1 "$bin" --addr "127.0.0.1:${!port}" --dist dist --instance "$name" \
    --redis-url "$PATTERNSCOPE_TEST_REDIS" --trusted-proxy 127.0.0.1/32 > "$out/instance-$name.log" 2>&1 &
  pids+=($!)
done
for name in a b; do
  port=port_$name
  wait_for "http://127.0.0.1:${!port}/api/health" || fail "instance $name did not start"
done

# The proxy's certificate, self-signed for 127.0.0.1.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
  -keyout "$dir/key.pem" -out "$dir/cert.pem" -subj /CN=127.0.0.1 \
  -addext subjectAltName=IP:127.0.0.1 2>/dev/null || fail "openssl could not make a certificate"
https_port=$(free_port)
base="https://127.0.0.1:$https_port"

# nginx: the shipped file with its placeholders filled in (scripts/private-nginx.sh), its access
# log saying which instance answered each request.
source scripts/private-nginx.sh
start_nginx() {
  nginx_site "$https_port" "$(free_port)" "127.0.0.1:$port_a" "127.0.0.1:$port_b"
  nginx_start "" "log_format upstream '\$remote_addr \"\$request\" \$status upstream=\$upstream_addr';
  access_log $dir/nginx-access.log upstream;"
}

# deploy/Caddyfile, its {$PATTERNSCOPE_...} from the environment (PROXY=caddy; not in make test).
start_caddy() {
  command -v caddy >/dev/null || fail "PROXY=caddy needs caddy (Debian: apt-get install caddy)"
  export PATTERNSCOPE_GLOBAL=$'admin off\nauto_https disable_redirects'
  export PATTERNSCOPE_SITE="$base" PATTERNSCOPE_TLS="tls $dir/cert.pem $dir/key.pem"
  export PATTERNSCOPE_A="127.0.0.1:$port_a" PATTERNSCOPE_B="127.0.0.1:$port_b"
  # Its state (certificates, locks) in the private directory, not the home directory.
  HOME="$dir" XDG_DATA_HOME="$dir" XDG_CONFIG_HOME="$dir" caddy run --config deploy/Caddyfile --adapter caddyfile > "$dir/caddy.log" 2>&1 &
  pids+=($!)
}

proxy=${PROXY:-nginx}
case "$proxy" in
  nginx) start_nginx ;;
  caddy) start_caddy ;;
  *) fail "PROXY must be nginx or caddy, not $proxy" ;;
esac
wait_for "$base/api/health" -k || fail "$proxy did not answer on $base"
echo "==> $proxy on $base (HTTP/2, TLS) in front of instances a (:$port_a) and b (:$port_b)"

# The instances see the client the proxy saw, not the proxy, and not what the client wrote: 300
# publishes from 127.0.0.7 (claiming to be 203.0.113.9) run into the per-client rate limit,
# and the instance logs the limited client as 127.0.0.7.
urls=()
for i in $(seq 300); do urls+=(-o /dev/null "$base/api/pubsub/publish?run=xff-check&rid=p$i"); done
codes=$(curl -sk --interface 127.0.0.7 -H 'x-forwarded-for: 203.0.113.9' -H 'content-type: application/json' \
  --data '{"topic":"news","text":"who am I"}' -w '%{http_code}\n' "${urls[@]}" | sort | uniq -c | tr -s ' \n' ' ')
echo "==> 300 publishes from 127.0.0.7 through $proxy: $codes(count status)"
grep -q 'rate limited client=127.0.0.7 ' "$out"/instance-*.log \
  || fail "no instance logged the forwarded client 127.0.0.7 as rate limited (answers: $codes)"
if grep -q 'client=203.0.113.9\|client=127.0.0.1 ' "$out"/instance-*.log; then
  fail "an instance counted the client-written or the proxy's address"
fi
grep -h -m1 'rate limited client=127.0.0.7 ' "$out"/instance-*.log

cd e2e
set +e
BASE_URL="$base" npx --no-install playwright test --config proxy.config.js "$@"
status=$?
set -e
# How nginx spread the requests over the two instances.
[ "$proxy" = nginx ] && for name in a b; do
  port=port_$name
  echo "==> instance $name answered $(grep -c "upstream=127.0.0.1:${!port}\$" "$dir/nginx-access.log" || true) requests through nginx"
done
exit $status
