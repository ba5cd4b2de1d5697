# goalloc developer targets.  The package itself builds with pip (setup.py).
CC ?= gcc
PYTHON ?= python3
WARN = -std=c11 -Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes \
       -Wmissing-prototypes -Wwrite-strings -Wimplicit-fallthrough -Wundef
CFLAGS ?= -O1 -g
SAN = -fsanitize=address,undefined -fno-omit-frame-pointer \
      -fno-sanitize-recover=all
CORE = $(wildcard csrc/*.c)   # the binding lives in csrc/python/
HDRS = $(wildcard csrc/*.h) $(wildcard tests/c/*.h)
CTESTS = $(patsubst tests/c/%.c,build/ctest/%,$(wildcard tests/c/test_*.c))
CTESTS_ASAN = $(patsubst tests/c/%.c,build/ctest-asan/%,$(wildcard tests/c/test_*.c))
CTESTS_TSAN = $(patsubst tests/c/%.c,build/ctest-tsan/%,$(wildcard tests/c/test_*.c))
CTESTS_DEBUG = $(patsubst tests/c/%.c,build/ctest-debug/%,$(wildcard tests/c/test_*.c))
TSAN = -fsanitize=thread -fno-omit-frame-pointer

.PHONY: all test test-c test-c-asan test-c-tsan test-c-debug test-c-valgrind test-py gen check-gen clean develop check-static check-layers bench bench-programs bench-smoke bench-c bench-py fuzz fuzz-run fuzz-replay

all: test-c

build/ctest/%: tests/c/%.c $(CORE) $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(WARN) -Werror $(CFLAGS) -Icsrc -Itests/c $< $(CORE) -o $@ -lpthread

build/ctest-asan/%: tests/c/%.c $(CORE) $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(WARN) -Werror -O1 -g $(SAN) -Icsrc -Itests/c $< $(CORE) -o $@ -lpthread

build/ctest-tsan/%: tests/c/%.c $(CORE) $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(WARN) -Werror -O1 -g $(TSAN) -Icsrc -Itests/c $< $(CORE) -o $@ -lpthread

build/ctest-debug/%: tests/c/%.c $(CORE) $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(WARN) -Werror $(CFLAGS) -DGA_DEBUG=2 -Icsrc -Itests/c $< $(CORE) -o $@ -lpthread

test-c: $(CTESTS)
	@set -e; for t in $(CTESTS); do $$t; done

# The C tests in a debug build (GA_DEBUG=2, csrc/throw.h): GA_ASSERT's
# checks, and the page heap's invariant walker after every span
# allocation, span free and scavenge.  Release builds (every other
# target, and the Python extension) compile none of it.  The walker is
# O(heap) per span operation, so the randomized and threaded tests run
# DEBUG_SCALE of their rounds (GOALLOC_TEST_SCALE, tests/c/check.h).
DEBUG_SCALE ?= 0.1
test-c-debug: $(CTESTS_DEBUG)
	@set -e; for t in $(CTESTS_DEBUG); do GOALLOC_TEST_SCALE=$(DEBUG_SCALE) $$t; done

test-c-asan: $(CTESTS_ASAN)
	@set -e; for t in $(CTESTS_ASAN); do $$t; done

# ThreadSanitizer (gcc's runtime) over every C test; any report fails.
test-c-tsan: $(CTESTS_TSAN)
	@set -e; for t in $(CTESTS_TSAN); do TSAN_OPTIONS="halt_on_error=1 exitcode=66" $$t; done

# Under valgrind the randomized and threaded tests run VALGRIND_SCALE of
# their rounds (GOALLOC_TEST_SCALE, tests/c/check.h): the threaded ones
# spin-wait, which valgrind's one-thread-at-a-time scheduler makes slow.
VALGRIND_SCALE ?= 0.1
test-c-valgrind: $(CTESTS)
	@set -e; for t in $(CTESTS); do GOALLOC_TEST_SCALE=$(VALGRIND_SCALE) \
	  valgrind -q --error-exitcode=1 --leak-check=full $$t; done

# The libFuzzer harness over the C facade (docs/fuzzing.md).  fuzz-run
# fuzzes for FUZZ_SECONDS on build/fuzz/corpus, a fresh copy of the
# committed seeds (libFuzzer adds what it finds there, never to
# tests/fuzz/corpus), after replaying tests/fuzz/regressions; any crash,
# leak, timeout or out-of-memory fails it and leaves the input in
# build/fuzz/artifacts/.  fuzz-replay runs the seeds and regressions once.
FUZZ_CC ?= clang
FUZZ_SECONDS ?= 60
FUZZ_MAX_LEN ?= 1024
FUZZ_FLAGS ?=
FUZZ_SAN = -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
           -fno-omit-frame-pointer \
           -fsanitize-coverage-ignorelist=tests/fuzz/coverage_ignore.txt
FUZZ_REGRESSIONS = $(wildcard tests/fuzz/regressions/*)

build/fuzz/fuzz_heap: tests/fuzz/fuzz_heap.c tests/fuzz/coverage_ignore.txt $(CORE) $(HDRS)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(WARN) -Werror -g -O1 $(FUZZ_SAN) -Icsrc $< $(CORE) -o $@ -lpthread

fuzz: build/fuzz/fuzz_heap

fuzz-replay: build/fuzz/fuzz_heap
	@build/fuzz/fuzz_heap tests/fuzz/corpus/* $(FUZZ_REGRESSIONS) \
	  > build/fuzz/replay.log 2>&1 || { cat build/fuzz/replay.log; exit 1; }
	@echo "fuzz-replay: $$(ls tests/fuzz/corpus/* $(FUZZ_REGRESSIONS) | wc -l) inputs ok"

# libFuzzer's log goes to build/fuzz/fuzz-run.log; the summary (or, on a
# failure, the end of the log with the crash report) is printed.
fuzz-run: build/fuzz/fuzz_heap
	@rm -rf build/fuzz/corpus && mkdir -p build/fuzz/artifacts
	@cp -r tests/fuzz/corpus build/fuzz/corpus
	@if build/fuzz/fuzz_heap -max_total_time=$(FUZZ_SECONDS) \
	  -max_len=$(FUZZ_MAX_LEN) -timeout=10 -rss_limit_mb=2048 \
	  -artifact_prefix=build/fuzz/artifacts/ -print_final_stats=1 \
	  $(FUZZ_FLAGS) build/fuzz/corpus $(wildcard tests/fuzz/regressions) \
	  > build/fuzz/fuzz-run.log 2>&1; then \
	  grep -E '\sDONE\s|^stat::' build/fuzz/fuzz-run.log; \
	else \
	  tail -n 80 build/fuzz/fuzz-run.log; \
	  grep -E '^fuzz_heap: ' build/fuzz/fuzz-run.log; \
	  echo "fuzz-run: FAILED (full log: build/fuzz/fuzz-run.log; input in build/fuzz/artifacts/)"; \
	  exit 1; \
	fi

# no mutable file-scope state in the core: no symbol in .data or .bss
# (read-only tables of pointers live in .data.rel.ro, which is fine)
check-static:
	@mkdir -p build/static
	@set -e; for f in $(CORE); do \
	  o=build/static/$$(basename $$f .c).o; $(CC) -std=c11 -O1 -Icsrc -c $$f -o $$o; \
	  if objdump -t $$o | grep -E '[[:space:]]O[[:space:]]+\.(data|bss)[[:space:]]'; then echo "mutable static state in $$f"; exit 1; fi; done; echo "check-static: ok"

# csrc/ is layered: no file calls a file that calls it back (from the
# objects' symbols, with nm), but for the cycles tools/check_layers.py
# allows because Go's design has them; no header include cycles; no C
# file over 600 lines but generated tables.  -v prints the layers.
check-layers:
	@$(PYTHON) tools/check_layers.py

gen:
	$(PYTHON) tools/mksizeclasses.py

check-gen:
	$(PYTHON) tools/mksizeclasses.py --check

develop:
	GOALLOC_WERROR=1 $(PYTHON) -m pip install -e '.[test,plot]'

test-py:
	$(PYTHON) -m pytest -q

test: test-c test-py

clean:
	rm -rf build *.egg-info goalloc/*.so

bench-c: build/bench/bench_fastpath
	build/bench/bench_fastpath

build/bench/bench_fastpath: benchmarks/bench_fastpath.c $(CORE) $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(WARN) -Werror -O2 -g -Icsrc $< $(CORE) -o $@ -lpthread

bench-py:
	$(PYTHON) benchmarks/bench_python.py

# The allocator comparison (benchmarks/run.py says what it needs installed).
bench:
	$(PYTHON) benchmarks/run.py --out build/bench/results.md --json build/bench/results.json

# Real programs under each allocator (goalloc's malloc replacement, issue 14).
bench-programs:
	$(PYTHON) benchmarks/programs.py --out build/bench/programs.md --json build/bench/programs.json

bench-smoke:
	$(PYTHON) benchmarks/run.py --smoke --out build/bench/smoke.md
