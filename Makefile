# Thin wrapper over CMake. `make run` and `make test` are the two commands a newcomer needs.
BUILD_TYPE ?= Release
BUILD_DIR ?= build
ASAN_DIR ?= build-asan
JOBS ?= 2
CMAKE_FLAGS ?=
ARGS ?=
FUZZ_SECONDS ?= 20
export CCACHE_BASEDIR := $(CURDIR)

.PHONY: all setup configure build run test asan test-asan bench bench-e2e clean demo fuzz

all: build

setup:
	@./tools/setup.sh

configure: setup
	@cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) $(CMAKE_FLAGS) >/dev/null

build: configure
	@cmake --build $(BUILD_DIR) -j$(JOBS)

run: build
	$(BUILD_DIR)/bin/playhead $(ARGS)

test: build
	ctest --test-dir $(BUILD_DIR) --output-on-failure -j$(JOBS)

# AddressSanitizer + UndefinedBehaviorSanitizer, built with clang.
asan: setup
	@CC=clang CXX=clang++ cmake -S . -B $(ASAN_DIR) -DCMAKE_BUILD_TYPE=Asan -DPLAYHEAD_BENCH=OFF $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(ASAN_DIR) -j$(JOBS)

test-asan: asan
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --test-dir $(ASAN_DIR) --output-on-failure -j$(JOBS)

# libFuzzer targets (clang, ASan+UBSan) in build-fuzz/, each run FUZZ_SECONDS on its corpus (tests/fuzz/).
fuzz: setup
	@tests/fuzz/run.sh $(FUZZ_SECONDS)

bench: build
	@for b in $(BUILD_DIR)/bin/*_bench; do echo "== $$b"; $$b --benchmark_min_time=0.2; done

# End-to-end benchmark against libtorrent and the machine's limits (issue 9); E2E_ARGS="--quick --only startup".
bench-e2e: build
	/usr/bin/python3 bench/e2e.py --bin $(BUILD_DIR)/bin $(E2E_ARGS)

# No internet needed: a sample video, a torrent, a seed-only Playhead and the server; prints the URL (Ctrl-C stops).
demo: build
	@./tools/demo.sh $(BUILD_DIR)

clean:
	rm -rf $(BUILD_DIR) $(ASAN_DIR)
