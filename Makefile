# The two commands: `make run` and `make test`. Both install whatever is missing first
# (scripts/setup.sh; seconds when everything is there).
SHELL := /bin/bash
ADDR ?= 127.0.0.1:8080
ENV := source scripts/env.sh &&

.PHONY: run test bench bench-class bench-page bench-load wasm-bound soak tools tools-test frontend lint unit e2e e2e-proxy clean bad-input fuzz-api fuzz

run: tools frontend
	$(ENV) cargo build --release -p backend
	@echo "Patternscope: open http://$(ADDR) (Ctrl-C stops it)"
	./target/release/backend --addr $(ADDR) --dist dist

test: tools-test lint unit frontend e2e e2e-proxy
	@echo "make test: all checks passed"

tools:
	bash scripts/setup.sh build

tools-test:
	bash scripts/setup.sh test

# The page into dist/, then a brotli and a gzip copy beside each asset for the backend to send
# to browsers that accept them (seconds when already done).
frontend:
	$(ENV) trunk build --release --offline
	bash scripts/compress-dist.sh dist

lint:
	$(ENV) cargo fmt --all --check
	$(ENV) cargo clippy --workspace --all-targets -- -D warnings

# A private Redis, RabbitMQ and PostgreSQL on free ports (the Redis broker, the queue demo's
# second engine, the protocols demo's SQL lane), stopped afterwards even on failure.
unit:
	$(ENV) bash scripts/with-redis.sh bash scripts/with-rabbitmq.sh bash scripts/with-postgres.sh cargo test --workspace

# Browser tests against the real backend (built by `unit`), on a free port, with a private
# RabbitMQ (the queue demo's second engine) and PostgreSQL (the protocols demo's SQL lane).
e2e:
	$(ENV) cargo build -p backend
	$(ENV) bash scripts/with-rabbitmq.sh bash scripts/with-postgres.sh bash scripts/e2e.sh

# The shipped deploy/nginx.conf (placeholders filled in) with TLS in front of two instances and a
# private Redis, all on free ports; the browser smoke set (tests tagged @proxy) through it.
e2e-proxy:
	$(ENV) cargo build -p backend
	$(ENV) bash scripts/e2e-proxy.sh

# Benchmarks on this machine (not part of `make test`): the release backend against a load client,
# figures and the commands that produced them in bench/RESULTS.md. Fan-out: issue 5; request/
# response (echo with tracing vs the bare route, under wrk) and connections held: issue 7.
bench:
	bash scripts/setup.sh bench
	$(ENV) cargo build --release -p backend -p bench
	./target/release/fanout --transport ws,sse --subscribers 1000,10000 --publishes 100
	./target/release/reqresp
	./target/release/held
	./target/release/trace-bytes

# A class behind nginx with TLS (issue 16, not part of `make test`): 30 learners from their own
# loopback addresses run every demo for 120 s alone, then 120 s beside two abusers and a
# slowloris; runs checked against the server's trace, memory sampled. Table in bench/RESULTS.md
# ("Class"). About 6 minutes after the builds. `make bench-class ARGS='--seconds 20'` for less.
bench-class:
	bash scripts/bench-class.sh $(ARGS)

# Every bad input per endpoint against the release backend; the table goes into bench/RESULTS.md
# under "Bad input" (the same table is asserted by `cargo test -p backend --test bad_input`).
bad-input:
	$(ENV) cargo build --release -p backend -p bench --bin backend --bin bad-input
	./target/release/bad-input

# Schemathesis against /api/openapi.json on a backend started on a free port (not in `make test`).
fuzz-api:
	bash scripts/fuzz-api.sh

# Each cargo-fuzz target for FUZZ_SECONDS (not in `make test`); installs cargo-fuzz if missing;
# nightly for the sanitizer flags. The kept corpus is read only: new inputs go to
# fuzz/target/new-corpus (merge with `cargo fuzz cmin` to keep the ones worth keeping).
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := ws_frames json_bodies echo_decode query_strings
fuzz:
	$(ENV) command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
	$(ENV) cd fuzz && for t in $(FUZZ_TARGETS); do \
		mkdir -p target/new-corpus/$$t && \
		cargo +nightly fuzz run $$t target/new-corpus/$$t corpus/$$t -- -max_total_time=$(FUZZ_SECONDS) -max_len=4096 -rss_limit_mb=1024 || exit 1; \
	done

# The page's benchmarks (not part of `make test`): bundle size, frame rate while the pub/sub
# ticker streams into the diagram, render time of a 1,000-message trace import; in Chromium
# through Playwright against the release backend. Writes the "Page" section of bench/RESULTS.md.
bench-page: tools-test frontend
	$(ENV) cargo build --release -p backend
	$(ENV) BACKEND_BIN=target/release/backend bash scripts/e2e.sh --config bench.config.js

# A first visit as a new user makes it (issue 19, not part of `make test`): a demo page in
# Chromium over emulated links (1.6 Mbit/s and 150 ms; 10 Mbit/s and 40 ms), cold and cached,
# against the release server over HTTPS; three runs each, median. Writes "First visit" in
# bench/RESULTS.md. About 2 minutes once built.
bench-load: tools-test frontend
	$(ENV) cargo build --release -p backend
	$(ENV) BACKEND_BIN=target/release/backend bash scripts/e2e.sh --config load.config.js

# How small per-demo splitting could at best make the page (issue 7's wasm floor): the release
# page built once with no demo route and once with each demo's route alone, in a throwaway
# worktree; prints the gzipped sizes. About 12 minutes. Not part of `make test`.
wasm-bound: tools
	bash scripts/wasm-split-bound.sh

clean:
	cargo clean
	rm -rf dist e2e/output

# The soak test (issue 7, not part of `make test`; a 25-second version of it is): connections of
# every kind opened and closed for 10 minutes against the release backend, then its memory, tasks
# and stores checked; figures in bench/RESULTS.md ("Soak"). About 12 minutes.
soak:
	$(ENV) cargo build --release -p backend -p bench
	./target/release/soak --duration 600
