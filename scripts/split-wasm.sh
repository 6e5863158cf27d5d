#!/usr/bin/env bash
# Trunk's post-build hook (Trunk.toml): cuts the page's WebAssembly into a shared main module and
# one chunk per demo, so a first visit downloads the shell and the demo it opens, not all of them.
#
# Trunk 0.21 cannot split a bundle, so this redoes its last two steps on the split output:
#   1. `wasm-split-cli` (crate wasm_split_cli_support, built by scripts/setup.sh with
#      scripts/wasm-split-shared-in-main.patch) reads the cargo build of the page (linked with
#      `--emit-relocs`, .cargo/config.toml) and cuts out each `#[lazy]` function of
#      frontend/src/demos/chunks.rs (and the trace view's, views/trace_view.rs) with the code only
#      it reaches. Code that several of them share stays in the main module (the patch: unpatched,
#      it goes to a chunk per set of sharers, 130 here, 66 of them for one page). It writes the
#      main module, the chunks and `__wasm_split.js`, the loader that fetches a chunk the first
#      time its function is awaited.
#   2. wasm-bindgen (as Trunk calls it, plus `--keep-lld-exports` for the chunks' links into the
#      main module) and `wasm-opt -Oz` (Trunk's own is off: index.html, data-wasm-opt="0") on
#      every module.
# Then it writes them into Trunk's staging folder under Trunk's names for the main module, so
# index.html still loads them; chunks and loader get a content hash in their names (the server
# caches such names for a year, server/static_files.rs), index.html's integrity hashes are
# brought up to date, and `split-manifest.json` lists each page's chunk for the server's preload.
set -euo pipefail
staging=${TRUNK_STAGING_DIR:?run by trunk build as a post_build hook}
# Cargo builds the page with the wasm-release profile (index.html's data-cargo-profile) for
# `trunk build` and `trunk serve` alike; only `--release` has it optimised by wasm-opt.
input=${CARGO_TARGET_DIR:-target}/wasm32-unknown-unknown/wasm-release/frontend.wasm
if [ "${TRUNK_PROFILE:-}" = release ]; then
  optimise='wasm-opt -Oz --enable-reference-types --enable-bulk-memory --enable-nontrapping-float-to-int "$1" -o "$2"'
else
  optimise='cp "$1" "$2"'
fi

shopt -s nullglob
scripts=("$staging"/frontend-*.js)
[ ${#scripts[@]} -eq 1 ] || { echo "split-wasm: expected one frontend-*.js in $staging" >&2; exit 1; }
stem=$(basename "${scripts[0]}" .js)

# hash16 FILE...: a 16-digit content hash, the length Trunk uses.
hash16() { cat "$@" | sha256sum | cut -c1-16; }

# The same build (and this script) split before gives the same files: kept in target/, so a
# `make run` or `make test` with an unchanged page takes a second here instead of minutes.
cache_root=${CARGO_TARGET_DIR:-target}/split-wasm
cache=$cache_root/$stem-${TRUNK_PROFILE:-debug}-$(hash16 "$input" "$0" "$(command -v wasm-split-cli)")
if [ ! -f "$cache/done" ]; then
  rm -rf "$cache_root"
  work=$cache_root/work
  mkdir -p "$work/split" "$work/bound" "$work/out"
  wasm-split-cli "$input" "$work/split" --target web --out-name "$stem" >/dev/null
  wasm-bindgen --target=web --no-typescript --keep-lld-exports --no-demangle \
    --out-dir="$work/bound" --out-name="$stem" "$work/split/$stem.wasm"
  mv "$work/bound/${stem}_bg.wasm" "$work/split/$stem.wasm"

  # Every module optimised (a release build: wasm-opt -Oz), as many at once as there are cores.
  # (wasm-opt's warning for every chunk, about a names subsection it does not know, is dropped.)
  { ls "$work/split" | grep '\.wasm$' | xargs -P "$(nproc)" -I{} sh -c "$optimise" _ \
      "$work/split/{}" "$work/out/{}" 2>&1 1>&3 \
      | { grep -v 'unknown name subsection' || true; } >&2; } 3>&1

  loader=$work/split/__wasm_split.js
  for chunk in "$work"/out/*.wasm; do
    name=$(basename "$chunk" .wasm)
    [ "$name" = "$stem" ] && continue
    hashed=$name-$(hash16 "$chunk")
    mv "$chunk" "$work/out/$hashed.wasm"
    sed -i "s|\"\./$name\.wasm\"|\"./$hashed.wasm\"|" "$loader"
  done
  grep -q '"\./[^"]*-[0-9a-f]\{16\}\.wasm"' "$loader" \
    || { echo "split-wasm: no chunk in $loader" >&2; exit 1; }
  loader_name=__wasm_split-$(hash16 "$loader").js
  cp "$loader" "$work/out/$loader_name"
  mv "$work/out/$stem.wasm" "$work/out/${stem}_bg.wasm"

  # The loader's file name in the main module's `import … from` lines only: the same string is
  # also the key of the wasm's import module in the imports object, which must stay as it is.
  grep -q '^import .* from "\./__wasm_split\.js"' "$work/bound/$stem.js" \
    || { echo "split-wasm: the main module does not import the loader" >&2; exit 1; }
  sed -E "s|^(import .* from )\"\./__wasm_split\.js\"|\1\"./$loader_name\"|" \
    "$work/bound/$stem.js" >"$work/out/$stem.js"
  # Which files each page's chunk needs (its own and any shared chunk it loads first), for the
  # server's `Link: rel=preload` on that page (server/static_files.rs): they then download
  # beside the main module instead of after it has started.
  python3 - "$loader" >"$work/out/split-manifest.json" <<'PY'
import json, re, sys
js = open(sys.argv[1]).read()
chunks = dict(re.findall(r'const (__chunk_\d+) = makeLoad\(\(\) => \{\s*const src = fetch\(new URL\("\./([\w-]+\.wasm)"', js))
pages = {}
for name, own, deps in re.findall(
        r'export const __wasm_split_load_(\w+?)_\d+ = wrapAsyncCb\(makeLoad\(\(\) => \{\s*'
        r'const src = fetch\(new URL\("\./([\w-]+\.wasm)".*?\n\}\n, \[(.*?)\]\)\);', js, re.S):
    if not name.endswith('_page'):
        continue  # a part of a page, not a page (the trace view)
    path = '/har' if name == 'har_page' else '/demo/' + name[:-len('_page')].replace('_', '-')
    pages[path] = [own] + [chunks[d.strip()] for d in deps.split(',') if d.strip()]
if '/demo/request-response' not in pages:
    sys.exit('split-wasm: no page chunk found in the loader')
json.dump(pages, sys.stdout, indent=1, sort_keys=True)
PY
  mv "$work/out" "$cache"
  rm -rf "$work"
  touch "$cache/done"
fi
cp "$cache"/*.wasm "$cache"/*.js "$cache"/split-manifest.json "$staging"/

# index.html's integrity hashes for the two files replaced.
for file in "$stem.js" "${stem}_bg.wasm"; do
  sri=sha384-$(openssl dgst -sha384 -binary "$staging/$file" | base64 -w0)
  sed -i -E "s|(href=\"/$file\"[^>]*integrity=\")[^\"]*|\1$sri|" "$staging/index.html"
done
grep -q "$(openssl dgst -sha384 -binary "$staging/${stem}_bg.wasm" | base64 -w0)" "$staging/index.html" \
  || { echo "split-wasm: could not update index.html's integrity" >&2; exit 1; }
echo "split-wasm: $(ls "$staging"/*.wasm | wc -l) modules"
