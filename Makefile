# tabula — the two user commands are `make demo` and `make test`; each installs missing
# Debian packages, configures and builds. Build trees live in build*/ (git-ignored).

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := build

CMAKE ?= cmake
CTEST ?= ctest
JOBS  ?= $(shell nproc)

BUILD_DIR       ?= build
ASAN_BUILD_DIR  ?= build-asan
TSAN_BUILD_DIR  ?= build-tsan
BENCH_BUILD_DIR ?= build-bench
INSTALL_DIR     ?= $(BUILD_DIR)/install-root
CONSUMER_DIR    ?= $(BUILD_DIR)/find-package-check

# Extra -D... flags for every configure, e.g. make test CMAKE_ARGS=-DTABULA_WITH_CUDA=OFF
CMAKE_ARGS ?=

# `make bench`: flags for the Google Benchmark programs (e.g. --benchmark_repetitions=5), and
# the workloads train_bench (a plain program printing JSON, see bench/run_train_bench.py) runs.
BENCH_ARGS ?=
TRAIN_BENCH_WORKLOADS ?= mlp_small mlp_large cnn lstm

ASAN_ENV := ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
            UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
# One OpenBLAS thread under TSan: OpenBLAS (uninstrumented) spin-waits its workers, which TSan
# slows ~10x more than the work itself (a CNN training test: 97 s vs. > 20 min on 2 cores), and
# tabula's own threads are unaffected. scripts/tsan.supp covers a test that raises the count.
TSAN_ENV := OPENBLAS_NUM_THREADS=1 \
            TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1:suppressions=$(CURDIR)/scripts/tsan.supp

.PHONY: all deps build test asan install-check demo tsan bench clean help

all: build

help:
	@echo "make deps           install missing Debian packages (scripts/install-deps)"
	@echo "make build          RelWithDebInfo build in $(BUILD_DIR)/"
	@echo "make test           deps, build, tests, ASan+UBSan tests ($(ASAN_BUILD_DIR)/), install-check"
	@echo "make demo           deps, build, run the tabula demo sweep (report in $(BUILD_DIR)/demo/)"
	@echo "make asan           ASan+UBSan Debug build and tests in $(ASAN_BUILD_DIR)/"
	@echo "make tsan           TSan build and tests in $(TSAN_BUILD_DIR)/"
	@echo "make bench          Release build in $(BENCH_BUILD_DIR)/, run every *_bench"
	@echo "make install-check  install $(BUILD_DIR) and build/run examples/find_package against it"
	@echo "make clean          remove the build trees"

deps:
	scripts/install-deps

build: deps
	$(CMAKE) -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_ARGS)
	$(CMAKE) --build $(BUILD_DIR) -j$(JOBS)

# Sequential on purpose (even under make -j): plain tests, then sanitizer tests, then install.
test: build
	$(CTEST) --test-dir $(BUILD_DIR) --output-on-failure -j$(JOBS)
	$(MAKE) --no-print-directory asan
	$(MAKE) --no-print-directory install-check

asan: deps
	$(CMAKE) -S . -B $(ASAN_BUILD_DIR) -DCMAKE_BUILD_TYPE=Debug -DTABULA_SANITIZE=address \
	  -DTABULA_BUILD_EXAMPLES=OFF -DTABULA_BUILD_BENCHMARKS=OFF $(CMAKE_ARGS)
	$(CMAKE) --build $(ASAN_BUILD_DIR) -j$(JOBS)
	$(ASAN_ENV) $(CTEST) --test-dir $(ASAN_BUILD_DIR) --output-on-failure -j$(JOBS)

install-check: build
	rm -rf $(INSTALL_DIR) $(CONSUMER_DIR)
	$(CMAKE) --install $(BUILD_DIR) --prefix $(INSTALL_DIR)
	$(CMAKE) -S examples/find_package -B $(CONSUMER_DIR) -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DCMAKE_PREFIX_PATH="$(abspath $(INSTALL_DIR))"
	$(CMAKE) --build $(CONSUMER_DIR) -j$(JOBS)
	$(CONSUMER_DIR)/tabula_consumer

# The sweep program's demo: six Fashion-MNIST trials with memory before/after each, a report.
demo: build
	$(BUILD_DIR)/tabula demo --out $(BUILD_DIR)/demo

tsan: deps
	$(CMAKE) -S . -B $(TSAN_BUILD_DIR) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTABULA_SANITIZE=thread \
	  -DTABULA_BUILD_EXAMPLES=OFF -DTABULA_BUILD_BENCHMARKS=OFF $(CMAKE_ARGS)
	$(CMAKE) --build $(TSAN_BUILD_DIR) -j$(JOBS)
	$(TSAN_ENV) $(CTEST) --test-dir $(TSAN_BUILD_DIR) --output-on-failure -j$(JOBS)

# `make bench`: the Google Benchmark programs, then bench/run_train_bench.py, which runs
# train_bench and memory_bench beside their Keras/TF and PyTorch peers. The peers' Python is a
# venv in $(BENCH_BUILD_DIR)/venv with bench/requirements.txt (TensorFlow) on top of Debian's
# python3-torch; where pip cannot install them, TensorFlow is skipped and said so. Extra flags for
# the harness: BENCH_PEER_ARGS (e.g. "--repetitions 1 --samples 2048 --cycles 3", a quick check).
bench:
	scripts/install-deps --bench
	$(CMAKE) -S . -B $(BENCH_BUILD_DIR) -DCMAKE_BUILD_TYPE=Release -DTABULA_BUILD_BENCHMARKS=ON \
	  -DTABULA_BUILD_TESTS=OFF -DTABULA_BUILD_EXAMPLES=OFF $(CMAKE_ARGS)
	$(CMAKE) --build $(BENCH_BUILD_DIR) -j$(JOBS)
	@found=0; for b in $(BENCH_BUILD_DIR)/*_bench; do \
	  [[ -x "$$b" ]] || continue; found=1; \
	  case "$${b##*/}" in \
	    train_bench|memory_bench) ;; \
	    *) echo "== $$b $(BENCH_ARGS)"; "$$b" $(BENCH_ARGS) ;; \
	  esac; \
	done; \
	if [[ $$found == 0 ]]; then echo "no *_bench programs in $(BENCH_BUILD_DIR)/"; fi
	@venv=$(BENCH_BUILD_DIR)/venv; \
	[[ -x $$venv/bin/python ]] || /usr/bin/python3 -m venv --system-site-packages $$venv; \
	echo "== peers: pip install -r bench/requirements.txt into $$venv"; \
	if ! $$venv/bin/python -m pip install --quiet --timeout 30 --retries 1 \
	       -r bench/requirements.txt; then \
	  echo "== pip could not install bench/requirements.txt: TensorFlow/Keras is SKIPPED;" \
	       "PyTorch is Debian's python3-torch"; \
	fi
	@echo "== tabula against TensorFlow/Keras and PyTorch, side by side"
	$(BENCH_BUILD_DIR)/venv/bin/python bench/run_train_bench.py --build $(BENCH_BUILD_DIR) \
	  --threads $(JOBS) --workloads $(TRAIN_BENCH_WORKLOADS) \
	  --json $(BENCH_BUILD_DIR)/results.json --markdown $(BENCH_BUILD_DIR)/results.md \
	  $(BENCH_PEER_ARGS)

clean:
	rm -rf $(BUILD_DIR) $(ASAN_BUILD_DIR) $(TSAN_BUILD_DIR) $(BENCH_BUILD_DIR)
