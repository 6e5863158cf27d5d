#!/usr/bin/env bash
# What splitting the page per demo could at best reach (issue 7's wasm floor, `make wasm-bound`).
#
# Builds the release page several times in a throwaway git worktree of HEAD: once with no demo
# route at all (the shell: Leptos, the router, the index, the not-built page), then once per
# demo with only that demo's route kept in `DemoRoute`. The linker drops every demo not routed
# to, so each size is what a visitor to that one demo would download if the bundle were split
# perfectly, with the shared trace machinery (recorder, merge, layout, diagram, inspector,
# export, playback) loaded once. Prints `gzip -9` sizes as a Markdown table.
#
# The builds use a target directory of their own: cargo names a workspace member's outputs by
# its path inside the workspace, so a worktree sharing `target/` would leave its frontend there
# looking up to date for the real tree.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
source scripts/env.sh

work=$(mktemp -d)
tree="$work/tree"
cleanup() { git worktree remove --force "$tree" >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT
git worktree add --quiet --detach "$tree" HEAD
ln -s "$root/.tools" "$tree/.tools"
lib="$tree/frontend/src/lib.rs"
cp "$lib" "$work/lib.rs"

# Keeps the arm for slug "$1" in DemoRoute's match (none when empty) and drops every other
# demo's arm; the not-built and not-found arms stay.
keep_only() {
  python3 - "$work/lib.rs" "$lib" "$1" <<'EOF'
import re, sys
src, dst, keep = sys.argv[1], sys.argv[2], sys.argv[3]
text = open(src).read()
head = "match (slug.as_str(), catalog::find(&slug)) {"
start = text.index(head) + len(head)
end = text.index("(_, Some(p))", start)
arms = re.split(r'\n\s*(?=\(")', text[start:end])
kept = [a for a in arms if a.strip().startswith(f'("{keep}", _)')] if keep else []
if keep and len(kept) != 1:
    sys.exit(f"no arm for {keep!r} in DemoRoute")
body = "".join("\n            " + a.strip() for a in kept)
open(dst, "w").write(text[:start] + body + "\n            " + text[end:])
EOF
}

size() { gzip -9 -c "$1"/*.wasm | wc -c; }
build() {
  (cd "$tree" && CARGO_TARGET_DIR="$root/target/wasm-bound" trunk build --release --offline --dist "$work/dist-$1" >"$work/build-$1.log" 2>&1) ||
    { tail -20 "$work/build-$1.log"; exit 1; }
}
row() { awk -v n="$1" -v b="$2" 'BEGIN { printf "| %s | %d | %.1f KiB |\n", n, b, b / 1024 }'; }

slugs=$(grep -o '("[a-z-]*", _) =>' "$work/lib.rs" | cut -d'"' -f2)
echo "| page built with | wasm gzip -9 bytes | KiB |"
echo "| --- | --- | --- |"
cp "$work/lib.rs" "$lib"
build all
row "every demo (as shipped)" "$(size "$work/dist-all")"
keep_only ""
build none
row "no demo: the shell only" "$(size "$work/dist-none")"
for slug in $slugs; do
  keep_only "$slug"
  build "$slug"
  row "only /demo/$slug" "$(size "$work/dist-$slug")"
done
