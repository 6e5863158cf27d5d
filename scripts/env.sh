# Sourced by the Makefile's recipes: puts the project's tools on PATH.
export PATH="$PWD/.tools/npm/node_modules/.bin:$PWD/.tools/wasm-split/bin:$HOME/.cargo/bin:$PATH"
