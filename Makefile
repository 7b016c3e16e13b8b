# nhid — top-level entry points. Everything is built with CMake into build/.
#   make dev     install missing packages, build, start a dev server
#   make check   install missing packages, build, run every test (ctest)
#   make asan    the same test suite under ASan+UBSan (build-asan/)
#   make bench   benchmarks that print figures (bench/)
#   make fuzz    build the libFuzzer targets (build-fuzz/)
JOBS ?= $(shell nproc)
BUILD ?= build
DEV_DATA ?=

.PHONY: all deps build dev check asan bench fuzz install format clean

all: build

deps:
	@scripts/install-deps.sh test

build:
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

dev: deps build
	./$(BUILD)/nhid server --dev $(if $(DEV_DATA),--data $(DEV_DATA))

check: deps build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

asan: deps
	@cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DNHID_SANITIZE=ON >/dev/null
	@cmake --build build-asan -j $(JOBS)
	cd build-asan && ctest --output-on-failure -j $(JOBS)

bench:
	@scripts/install-deps.sh all
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD) -j $(JOBS) --target nhid benches
	bench/run.sh $(BUILD)

fuzz: deps
	@CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Debug -DNHID_SANITIZE=ON -DNHID_FUZZ=ON >/dev/null
	@cmake --build build-fuzz -j $(JOBS)

install: build
	cmake --install $(BUILD)

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build build-asan build-fuzz
