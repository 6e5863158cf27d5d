#!/usr/bin/env bash
# Precompresses the built page once, at build time, instead of on every request: writes X.br
# (brotli -q 11, the densest level, far too slow to run per request) and X.gz (gzip -9) beside
# each .wasm, .js, .css and .svg in dist/ (or $1). The backend sends them to browsers that
# accept them (backend/src/server/static_files.rs) and the file itself to the rest.
#
# index.html is left alone: a copy would save 684 of its 1,281 bytes, and the security layer
# takes its script hash from index.html itself (server/security.rs), so a copy gone stale (the
# page edited or rebuilt without this script; Trunk itself replaces all of dist/ on each build)
# would be a page whose script the policy refuses.
#
# Idempotent and quick when already done: a copy is made again only when missing or older than
# its file (copies take their file's modified time, so the server's Last-Modified is the same
# whichever it sends); copies whose file is gone are removed. Writes through a temporary file,
# so an interrupted run leaves no truncated copy that looks done. Without Debian's brotli
# (scripts/setup.sh installs it) only .gz copies are written.
set -euo pipefail
dist=${1:-dist}
[ -d "$dist" ] || { echo "compress-dist: no $dist directory (run trunk build first)" >&2; exit 1; }

have_brotli=1
if ! command -v brotli >/dev/null; then
  have_brotli=0
  echo "compress-dist: brotli not found (bash scripts/setup.sh build installs it); gzip only" >&2
fi

# copy FILE EXT COMMAND...: FILE.EXT from COMMAND's output, unless it is already up to date.
copy() {
  local file=$1 ext=$2
  shift 2
  if [ -e "$file.$ext" ] && [ ! "$file" -nt "$file.$ext" ]; then
    return 0
  fi
  "$@" <"$file" >"$file.$ext.tmp"
  touch -r "$file" "$file.$ext.tmp"
  mv -f "$file.$ext.tmp" "$file.$ext"
  written=$((written + 1))
}

# The files compressed (find -regextype posix-extended -regex, which matches the whole path).
assets='.*\.(wasm|js|css|svg)'

written=0
while IFS= read -r -d '' file; do
  copy "$file" gz gzip -9 -n -c
  if [ "$have_brotli" = 1 ]; then
    copy "$file" br brotli -q 11 -c
  fi
done < <(find "$dist" -type f -regextype posix-extended -regex "$assets" -print0)

# Leftovers: a copy whose file is gone, a temporary file from an interrupted run.
removed=0
while IFS= read -r -d '' leftover; do
  case $leftover in
    *.tmp) ;;
    *) [ -e "${leftover%.*}" ] && continue ;;
  esac
  rm -f "$leftover"
  removed=$((removed + 1))
done < <(find "$dist" -type f -regextype posix-extended -regex "$assets\.(br|gz)(\.tmp)?" -print0)

echo "compress-dist: $dist: $written copies written, $removed leftovers removed"
