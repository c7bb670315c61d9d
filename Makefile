# Quell's front door. `make run` and `make test` are all a new machine needs.
BUILD_DIR ?= build
BUILD_TYPE ?= RelWithDebInfo
JOBS ?= $(shell nproc)

.PHONY: all deps configure build run test test-unit test-e2e bench fuzz clean

all: build

deps:
	@scripts/install-deps.sh

configure: deps
	@cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) > /dev/null

build: configure
	@cmake --build $(BUILD_DIR) -j $(JOBS)

# Starts the server with its embedded database and, as root, a lab of real agents in
# network namespaces. Ctrl-C stops and cleans up everything.
run: build
	@scripts/run.sh

# Every test: unit tests, privileged namespace tests and the end-to-end lab (as root;
# without root those are reported as skipped).
test: build
	@cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS) --timeout 600

# Only what needs no root.
test-unit: build
	@cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS) -LE privileged

test-e2e: build
	@cd $(BUILD_DIR) && ctest --output-on-failure -L e2e

bench: build
	@cmake --build $(BUILD_DIR) -j $(JOBS) --target benchmarks
	@BUILD_DIR=$(BUILD_DIR) bench/run.sh

# libFuzzer + ASan/UBSan builds of every target in fuzz/ (needs clang), each run for
# FUZZ_SECONDS on a copy of its corpus. Crashes land in build-fuzz/; add them to the corpus.
FUZZ_SECONDS ?= 60
fuzz: deps
	@CXX=clang++ cmake -S fuzz -B build-fuzz -G Ninja > /dev/null
	@cmake --build build-fuzz
	@for f in build-fuzz/*_fuzz; do \
	  name=$$(basename $$f _fuzz); mkdir -p build-fuzz/corpus/$$name; \
	  cp -n fuzz/corpus/$$name/* build-fuzz/corpus/$$name/; \
	  echo "fuzz: $$name for $(FUZZ_SECONDS) s"; \
	  (cd build-fuzz && ./$$name\_fuzz -max_total_time=$(FUZZ_SECONDS) -max_len=4096 corpus/$$name) || exit 1; \
	done

clean:
	rm -rf $(BUILD_DIR)
