#!/usr/bin/env bash
# Installs whatever the build and the tests need and is missing. Idempotent: when everything is
# there it takes a few seconds. `setup.sh build` for `make run` (the wasm target, trunk,
# wasm-bindgen, wasm-opt, Debian's brotli); `setup.sh test` adds the test tooling: Debian's
# chromium, redis-server, rabbitmq-server and nginx (the tests start private ones, never the system service),
# npm packages for Playwright. `setup.sh bench` only adds Debian's wrk, the HTTP load generator
# of `make bench` (which builds no frontend), and nginx, the TLS proxy of `make bench-class`.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-build}
TOOLS="$PWD/.tools"
mkdir -p "$TOOLS"

say() { printf '==> %s\n' "$*"; }
export PATH="$HOME/.cargo/bin:$PATH"

# A Debian package installed without starting the service it ships: the system's own must stay
# stopped (its port is not ours): a policy-rc.d refusing every start, for this install only (a
# machine that has one, as Debian's container images do, keeps its own).
apt_install_no_service() {
  local policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    policy=/usr/sbin/policy-rc.d
    printf '#!/bin/sh\nexit 101\n' > "$policy"
    chmod +x "$policy"
  fi
  local installed=0
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null || installed=$?
  [ -z "$policy" ] || rm -f "$policy"
  return "$installed"
}

# Debian's nginx, never started as the system's service (tests and benches start private ones).
install_nginx() {
  [ -x /usr/sbin/nginx ] && return 0
  say "installing Debian's nginx ($1)"
  apt-get update -qq
  # Debian 12 has `nginx` (nginx-light is a transitional name for it); older ones, nginx-light.
  local pkg=nginx
  apt-cache show nginx >/dev/null 2>&1 || pkg=nginx-light
  apt_install_no_service "$pkg"
}

# Debian's rabbitmq-server for the queue demo's tests, never started as the system's service
# (scripts/with-rabbitmq.sh starts a private one).
install_rabbitmq() {
  [ -x /usr/sbin/rabbitmq-server ] && return 0
  say "installing Debian's rabbitmq-server (the queue tests start a private one)"
  apt-get update -qq
  apt_install_no_service rabbitmq-server
}

if [ "$mode" = bench ]; then
  if ! command -v wrk >/dev/null; then
    say "installing Debian's wrk (the HTTP load generator of make bench)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
  fi
  install_nginx "the TLS proxy of make bench-class"
  say "tools ready"
  exit 0
fi

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  say "adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi

if ! trunk --version 2>/dev/null | grep -q '0.21.14'; then
  say "installing trunk 0.21.14 (about 9 minutes on 2 cores)"
  cargo install trunk --version 0.21.14 --locked
fi

# wasm-bindgen-cli must match the wasm-bindgen in Cargo.lock exactly.
wbg=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)
if ! wasm-bindgen --version 2>/dev/null | grep -q " $wbg\$"; then
  say "installing wasm-bindgen-cli $wbg (about 2 minutes)"
  # Not --locked: one locked dependency of the CLI is missing from the registry.
  cargo install wasm-bindgen-cli --version "$wbg"
fi

# Debian's binaryen (108) corrupts current wasm-bindgen output; npm's binaryen@123 works.
if [ ! -x "$TOOLS/npm/node_modules/.bin/wasm-opt" ]; then
  say "installing wasm-opt (npm binaryen@123)"
  npm install --silent --no-audit --no-fund --prefix "$TOOLS/npm" binaryen@123.0.0
fi

# wasm-split-cli cuts the page into a main module and one chunk per page (scripts/split-wasm.sh).
# Built from the crate wasm_split_cli_support 0.2.4 from crates.io with our patch applied (shared
# code stays in the main module, scripts/wasm-split-shared-in-main.patch), into .tools/; built
# again only when the patch changes. The crate's source comes through cargo itself: a throwaway
# project that depends on it, `cargo fetch`, and `cargo metadata` to find where it landed.
split_patch=scripts/wasm-split-shared-in-main.patch
if ! [ -x "$TOOLS/wasm-split/bin/wasm-split-cli" ] || ! cmp -s "$split_patch" "$TOOLS/wasm-split/applied.patch"; then
  say "building wasm-split-cli 0.2.4 with $split_patch (about a minute)"
  work=$(mktemp -d)
  mkdir -p "$work/fetch/src" && touch "$work/fetch/src/lib.rs"
  printf '[package]\nname = "fetch"\nversion = "0.0.0"\nedition = "2021"\n[dependencies]\nwasm_split_cli_support = "=0.2.4"\n[workspace]\n' >"$work/fetch/Cargo.toml"
  (cd "$work/fetch" && cargo fetch -q)
  crate=$(cd "$work/fetch" && cargo metadata -q --format-version 1 \
    | python3 -c 'import json,sys; print(next(p["manifest_path"] for p in json.load(sys.stdin)["packages"] if p["name"] == "wasm_split_cli_support")[:-len("/Cargo.toml")])')
  cp -r "$crate" "$work/src"
  git -C "$work/src" apply "$PWD/$split_patch"
  cargo install -q --locked --path "$work/src" --features build-binary --root "$TOOLS/wasm-split"
  cp "$split_patch" "$TOOLS/wasm-split/applied.patch"
  rm -rf "$work"
fi

# `make frontend` writes a brotli copy of each asset beside it (scripts/compress-dist.sh).
if ! command -v brotli >/dev/null; then
  say "installing Debian's brotli (precompresses the page's assets)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq brotli >/dev/null
fi

if [ "$mode" = test ]; then
  if [ ! -x /usr/bin/chromium ]; then
    say "installing Debian's chromium"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  fi
  if [ ! -x /usr/bin/redis-server ]; then
    say "installing Debian's redis-server (the tests start a private one)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
  fi
  install_nginx "the proxy tests start a private one"
  install_rabbitmq
  # PostgreSQL for the protocols demo's SQL lane (scripts/with-postgres.sh starts a private one).
  if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    say "installing Debian's postgresql (the tests start a private one)"
    apt-get update -qq
    apt_install_no_service postgresql
  fi
  if [ ! -d e2e/node_modules/@playwright/test ] || [ e2e/package-lock.json -nt e2e/node_modules/.package-lock.json ]; then
    say "installing the browser-test packages (no browser download)"
    (cd e2e && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --silent --no-audit --no-fund)
  fi
fi
say "tools ready"
