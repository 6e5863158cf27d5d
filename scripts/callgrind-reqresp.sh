#!/usr/bin/env bash
# The request/response benchmark's two routes under callgrind: instructions, first-level cache
# misses and estimated cycles (Ir + 10 × L1 misses + 100 × last-level misses) per request, for
# the echo with tracing and the bare axum route. Low-noise where `reqresp` under wrk is not:
# one keep-alive client posting the same 3-item order, sequentially; each figure is the run of
# 2,500 requests minus the run of 500 (start-up and shutdown cancel out), divided by 2,000.
# Usage: scripts/callgrind-reqresp.sh [backend binary, default target/release/backend]
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-target/release/backend}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
cat > "$out/client.py" <<'EOF'
import http.client, json, sys, time
port, n, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
names = ["keyboard", "monitor", "cable"]
body = json.dumps({"customer": "ada@example.org", "items": [
    {"id": i + 1, "name": f"{names[i]} #{i + 1}", "price_cents": 199 + i * 37,
     "in_stock": i % 3 != 0, "tags": ["office", "batch-0"]} for i in range(3)]},
    separators=(",", ":")).encode()
for _ in range(200):
    try:
        c = http.client.HTTPConnection("127.0.0.1", port); c.request("GET", "/api/health")
        c.getresponse().read(); break
    except OSError:
        time.sleep(0.2)
c = http.client.HTTPConnection("127.0.0.1", port)
for _ in range(n):
    c.request("POST", path, body, {"content-type": "application/json"})
    r = c.getresponse(); r.read()
    assert r.status == 200, r.status
EOF
# Totals of one run of `n` requests to `path`: "Ir I1mr D1mr D1mw ILmr DLmr DLmw".
run() {
  local path=$1 n=$2 port
  port=$(free_port)
  valgrind --tool=callgrind --cache-sim=yes --callgrind-out-file="$out/cg.out" \
    "$bin" --addr "127.0.0.1:$port" --dist /nonexistent --instance callgrind --debug-routes >/dev/null 2>&1 &
  local pid=$!
  python3 "$out/client.py" "$port" "$n" "$path"
  kill -INT $pid
  wait $pid || true
  awk '/^events:/ {for (i = 2; i <= NF; i++) e[$i] = i} /^(summary|totals):/ {
    print $e["Ir"], $e["I1mr"], $e["D1mr"], $e["D1mw"], $e["ILmr"], $e["DLmr"], $e["DLmw"]; exit }' "$out/cg.out"
}
for route in "echo with tracing:/api/echo?run=callgrind&rid=load" "bare axum route:/api/bench/bare"; do
  name=${route%%:*} path=${route#*:}
  small=$(run "$path" 500) big=$(run "$path" 2500)
  paste -d' ' <(echo "$small") <(echo "$big") | awk -v name="$name" '{
    for (i = 1; i <= 7; i++) d[i] = ($(i + 7) - $i) / 2000
    l1 = d[2] + d[3] + d[4]; ll = d[5] + d[6] + d[7]
    printf "%-18s %6.0f instructions, %5.0f L1 misses, %4.1f LL misses, %6.0f est. cycles per request\n",
      name ":", d[1], l1, ll, d[1] + 10 * l1 + 100 * ll }'
done
