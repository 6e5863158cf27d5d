# The two commands: `make run` and `make test`. Both install whatever is missing first
# (scripts/setup.sh; seconds when everything is there).
SHELL := /bin/bash
ADDR ?= 127.0.0.1:8080
ENV := source scripts/env.sh &&

.PHONY: run test bench bench-page tools tools-test frontend lint unit e2e clean

run: tools frontend
	$(ENV) cargo build --release -p backend
	@echo "Patternscope: open http://$(ADDR) (Ctrl-C stops it)"
	./target/release/backend --addr $(ADDR) --dist dist

test: tools-test lint unit frontend e2e
	@echo "make test: all checks passed"

tools:
	bash scripts/setup.sh build

tools-test:
	bash scripts/setup.sh test

frontend:
	$(ENV) trunk build --release --offline

lint:
	$(ENV) cargo fmt --all --check
	$(ENV) cargo clippy --workspace --all-targets -- -D warnings

# A private Redis on a free port for the Redis broker tests, stopped afterwards even on failure.
unit:
	$(ENV) bash scripts/with-redis.sh cargo test --workspace

# Browser tests against the real backend (built by `unit`), on a free port.
e2e:
	$(ENV) cargo build -p backend
	$(ENV) bash scripts/e2e.sh

# Benchmarks on this machine (not part of `make test`): the release backend against a load client,
# figures and the commands that produced them in bench/RESULTS.md. Fan-out: issue 5.
bench:
	$(ENV) cargo build --release -p backend -p bench
	./target/release/fanout --transport ws,sse --subscribers 1000,10000 --publishes 100

# The page's benchmarks (not part of `make test`): bundle size, frame rate while the pub/sub
# ticker streams into the diagram, render time of a 1,000-message trace import; in Chromium
# through Playwright against the release backend. Writes the "Page" section of bench/RESULTS.md.
bench-page: tools-test frontend
	$(ENV) cargo build --release -p backend
	$(ENV) BACKEND_BIN=target/release/backend bash scripts/e2e.sh --config bench.config.js

clean:
	cargo clean
	rm -rf dist e2e/output
