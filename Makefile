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
NOCUDA_BUILD_DIR ?= build-nocuda
BENCH_BUILD_DIR ?= build-bench
INSTALL_DIR     ?= $(BUILD_DIR)/install-root
CONSUMER_DIR    ?= $(BUILD_DIR)/find-package-check

# Extra -D... flags for every configure, e.g. make test CMAKE_ARGS=-DTABULA_WITH_CUDA=OFF
CMAKE_ARGS ?=

# `make bench`: flags for Google Benchmark programs the harness does not run (alloc_bench is run
# by it: BENCH_PEER_ARGS="--alloc-repetitions N"), and the workloads train_bench (a plain
# program printing JSON, see bench/run_train_bench.py) runs.
BENCH_ARGS ?=
TRAIN_BENCH_WORKLOADS ?= mlp_small mlp_large cnn lstm

# protect_shadow_gap=0: the CUDA driver maps memory where ASan's shadow gap would be (on a GPU
# machine its start fails otherwise, and the GPU tests would skip).
ASAN_ENV := ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:protect_shadow_gap=0 \
            UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
# Under TSan: two threads in tabula's own pool, so that its hand-overs are checked in every
# threaded suite. No suppressions: every thread that runs is tabula's, and instrumented.
TSAN_ENV := TABULA_NUM_THREADS=2 TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1

.PHONY: all deps build test asan install-check demo tsan tsan-configure tsan-check nocuda-check \
        check bench fuzz \
        clean help

all: build

help:
	@echo "make deps           install missing Debian packages (scripts/install-deps)"
	@echo "make build          RelWithDebInfo build in $(BUILD_DIR)/"
	@echo "make test           deps, build, tests, ASan+UBSan tests ($(ASAN_BUILD_DIR)/), install-check"
	@echo "make demo           deps, build, run the tabula demo sweep (report in $(BUILD_DIR)/demo/)"
	@echo "make asan           ASan+UBSan Debug build and tests in $(ASAN_BUILD_DIR)/"
	@echo "make check          make test, make tsan-check, make nocuda-check (what CI runs)"
	@echo "make nocuda-check   build without CUDA in $(NOCUDA_BUILD_DIR)/ and run its tests"
	@echo "make tsan           TSan build and tests in $(TSAN_BUILD_DIR)/"
	@echo "make tsan-check     TSan run of the threaded suites: $(TSAN_CHECK_SUITES)"
	@echo "make bench          Release build in $(BENCH_BUILD_DIR)/, run every *_bench"
	@echo "make install-check  install $(BUILD_DIR) and build/run examples/find_package against it"
	@echo "make fuzz           clang libFuzzer build in $(FUZZ_BUILD_DIR)/, each reader's fuzzer for" \
	      "FUZZ_SECONDS (fuzz/README.md)"
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

tsan: tsan-configure
	$(CMAKE) --build $(TSAN_BUILD_DIR) -j$(JOBS)
	$(TSAN_ENV) $(CTEST) --test-dir $(TSAN_BUILD_DIR) --output-on-failure -j$(JOBS)

tsan-configure: deps
	$(CMAKE) -S . -B $(TSAN_BUILD_DIR) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTABULA_SANITIZE=thread \
	  -DTABULA_BUILD_EXAMPLES=OFF -DTABULA_BUILD_BENCHMARKS=OFF $(CMAKE_ARGS)

# The suites where threads meet, under TSan: sessions, the memory system, the kernels' thread
# pool, and the reliability tests (four trainers beside a reader of every figure, a clear
# racing a user of the session).
# The whole suite under TSan (`make tsan`) takes ~10 min of tests on 2 cores; this, ~2.
TSAN_CHECK_SUITES := reliability session memory backend
tsan-check: tsan-configure
	$(CMAKE) --build $(TSAN_BUILD_DIR) -j$(JOBS) \
	  --target $(foreach s,$(TSAN_CHECK_SUITES),tabula_$(s)_tests)
	$(TSAN_ENV) $(CTEST) --test-dir $(TSAN_BUILD_DIR) --output-on-failure -j$(JOBS) \
	  -L '^($(subst $(eval) ,|,$(TSAN_CHECK_SUITES)))$$'

# Everything CI checks: make test (plain, ASan+UBSan with the fuzz-corpus replay, install),
# then the threaded suites under TSan.
check: test
	$(MAKE) --no-print-directory tsan-check
	$(MAKE) --no-print-directory nocuda-check

# The build without CUDA (TABULA_WITH_CUDA=OFF: a machine without the toolkit), built whole and
# tested; its CUDA tests skip, saying that this build has no CUDA. `make test` builds with CUDA
# wherever the toolkit is found, so this is what keeps the other half compiling.
nocuda-check: deps
	$(CMAKE) -S . -B $(NOCUDA_BUILD_DIR) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTABULA_WITH_CUDA=OFF \
	  -DTABULA_BUILD_EXAMPLES=OFF $(CMAKE_ARGS)
	$(CMAKE) --build $(NOCUDA_BUILD_DIR) -j$(JOBS)
	$(CTEST) --test-dir $(NOCUDA_BUILD_DIR) --output-on-failure -j$(JOBS)

# `make bench`: Google Benchmark programs other than those below, then bench/run_train_bench.py,
# which runs train_bench and memory_bench beside their Keras/TF and PyTorch peers and then
# alloc_bench, all into one set of tables. The peers' Python is a
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
	    train_bench|memory_bench|alloc_bench) ;; \
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

# `make fuzz`: each fuzzer of FUZZ_TARGETS in turn for FUZZ_SECONDS (niced, one at a time), with
# ASan + UBSan + LeakSanitizer, from a scratch corpus $(FUZZ_BUILD_DIR)/work/<reader>/corpus/ that
# also reads fuzz/corpus/<reader>/ and fuzz/regressions/<reader>/. Crashes, leaks, timeouts and
# OOMs land in $(FUZZ_BUILD_DIR)/work/<reader>/crashes/; each log and a summary are printed at the
# end. -max_len per reader: a few times its largest seed.
FUZZ_BUILD_DIR ?= build-fuzz
FUZZ_SECONDS   ?= 60
FUZZ_TARGETS   ?= safetensors idx csv sweep_yaml
FUZZ_RSS_MB    ?= 2048
FUZZ_TIMEOUT   ?= 10
FUZZ_ARGS      ?=
FUZZ_MAX_LEN_safetensors ?= 16384
FUZZ_MAX_LEN_idx         ?= 4096
FUZZ_MAX_LEN_csv         ?= 4096
FUZZ_MAX_LEN_sweep_yaml  ?= 4096

# Warnings are not errors there: -Werror holds the code to GCC's warnings, and one of clang's
# must not stop a fuzz run.
fuzz:
	scripts/install-deps --fuzz
	CC=clang CXX=clang++ $(CMAKE) -S . -B $(FUZZ_BUILD_DIR) -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DTABULA_SANITIZE=address -DTABULA_BUILD_FUZZERS=ON -DTABULA_WARNINGS_AS_ERRORS=OFF \
	  -DTABULA_BUILD_TESTS=OFF \
	  -DTABULA_BUILD_EXAMPLES=OFF -DTABULA_BUILD_TOOLS=OFF -DTABULA_BUILD_BENCHMARKS=OFF \
	  $(CMAKE_ARGS)
	nice -n 10 $(CMAKE) --build $(FUZZ_BUILD_DIR) -j$(JOBS) \
	  --target $(addsuffix _fuzzer,$(FUZZ_TARGETS))
	@failed=(); summary=$(FUZZ_BUILD_DIR)/work/summary.txt; mkdir -p $(FUZZ_BUILD_DIR)/work; : > $$summary; \
	for t in $(FUZZ_TARGETS); do \
	  work=$(FUZZ_BUILD_DIR)/work/$$t; mkdir -p $$work/corpus $$work/crashes; touch $$work/started; \
	  seeds=(fuzz/corpus/$$t); [[ -d fuzz/regressions/$$t ]] && seeds+=(fuzz/regressions/$$t); \
	  case $$t in \
	    safetensors) len=$(FUZZ_MAX_LEN_safetensors) ;; idx) len=$(FUZZ_MAX_LEN_idx) ;; \
	    csv) len=$(FUZZ_MAX_LEN_csv) ;; sweep_yaml) len=$(FUZZ_MAX_LEN_sweep_yaml) ;; *) len=4096 ;; \
	  esac; \
	  cmd=(nice -n 10 $(FUZZ_BUILD_DIR)/fuzz/$${t}_fuzzer $$work/corpus "$${seeds[@]}" \
	       -max_total_time=$(FUZZ_SECONDS) -max_len=$$len -rss_limit_mb=$(FUZZ_RSS_MB) \
	       -timeout=$(FUZZ_TIMEOUT) -artifact_prefix=$$work/crashes/ -print_final_stats=1 \
	       $(FUZZ_ARGS)); \
	  echo "== $$t: $${cmd[*]}"; \
	  start=$$(date +%s); \
	  if UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 "$${cmd[@]}" > $$work/log.txt 2>&1; \
	  then status=clean; else status="FAILED (exit $$?)"; failed+=($$t); fi; \
	  tail -n 40 $$work/log.txt; \
	  { echo "$$t: $$status, $$(( $$(date +%s) - start )) s, max_len $$len, log $$work/log.txt"; \
	    grep -E '^#[0-9]+[[:space:]]+DONE' $$work/log.txt | tail -n 1 | sed 's/^/  /' || true; \
	    grep -E '^stat::(number_of_executed_units|average_exec_per_sec|new_units_added|peak_rss_mb)' \
	      $$work/log.txt | sed 's/^/  /' || true; \
	    echo "  corpus: $$(ls $$work/corpus | wc -l) files in $$work/corpus"; \
	    crashes=$$(find $$work/crashes -type f -newer $$work/started -printf '%f\n'); \
	    if [[ -n "$$crashes" ]]; then for c in $$crashes; do echo "  CRASH: $$work/crashes/$$c"; done; \
	    else echo "  crashes: none"; fi; } >> $$summary; \
	done; \
	echo "== summary ($$summary)"; cat $$summary; \
	if (( $${#failed[@]} )); then \
	  echo "== fuzzers that failed: $${failed[*]}; reproduce with <fuzzer> CRASH_FILE, then add it to" \
	       "fuzz/regressions/<reader>/ (fuzz/README.md)"; exit 1; \
	fi

clean:
	rm -rf $(BUILD_DIR) $(ASAN_BUILD_DIR) $(TSAN_BUILD_DIR) $(NOCUDA_BUILD_DIR) $(BENCH_BUILD_DIR)
