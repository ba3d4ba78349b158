# The README's two commands are `make run` and `make test`; both install what
# they need (the venv with libtorch, fixtures) on first use and skip it after.
SHELL := /bin/bash
.DEFAULT_GOAL := build

VENV := .venv
PYTHON := $(VENV)/bin/python
VENV_STAMP := $(VENV)/.requirements.sha256
FIXTURES := target/fixtures
FIXTURE_STAMP := $(FIXTURES)/.complete
RELEASE_BIN := target/release/seresnext-serve
CONFIG ?= config/default.toml

# tch builds against the libtorch inside the torch wheel (torch/lib, torch/include).
# The path is derived from the python3 that creates the venv, not looked up
# with $(wildcard): make caches directory listings, so a venv created during
# this very run would not be seen.
PYTHON_VERSION := $(shell python3 -c 'import sys; print(f"python{sys.version_info[0]}.{sys.version_info[1]}")')
export LIBTORCH := $(CURDIR)/$(VENV)/lib/$(PYTHON_VERSION)/site-packages/torch
export SERESNEXT_FIXTURES := $(abspath $(FIXTURES))

.PHONY: venv build test lint fmt fixtures run classify clean

venv: $(VENV_STAMP)
$(VENV_STAMP): scripts/requirements.txt scripts/setup-venv.sh
	scripts/setup-venv.sh

build: $(VENV_STAMP)
	cargo build --release --locked
	@ls -l $(RELEASE_BIN)

fixtures: $(FIXTURE_STAMP)
$(FIXTURE_STAMP): $(VENV_STAMP) scripts/make_fixtures.py scripts/make_weight_fixtures.py
	mkdir -p $(FIXTURES)
	$(PYTHON) scripts/make_fixtures.py $(FIXTURES)
	$(PYTHON) scripts/make_weight_fixtures.py $(FIXTURES)/weights
	touch $@

lint: $(VENV_STAMP)
	cargo fmt --all -- --check
	cargo clippy --all-targets --locked -- -D warnings

test: $(VENV_STAMP) $(FIXTURE_STAMP) lint
	cargo test --locked

# Serves config/default.toml (override with CONFIG=...). Extra flags: ARGS=...
run: build
	$(RELEASE_BIN) serve --config $(CONFIG) $(ARGS)

fmt:
	cargo fmt --all

clean:
	cargo clean
	rm -rf $(VENV)
