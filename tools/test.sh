#!/usr/bin/env bash
# Install goalloc with its test extras and run every check: the generated
# table, the design citations, no mutable statics in the core, its
# layering (check_layers.py), the C tests (plain, in a debug build, under
# ASan+UBSan, ThreadSanitizer and valgrind), a 60 s libFuzzer run over the
# C facade, the linters (ruff, mypy --strict, stubtest, clang-format), the
# pytest suite (with the real-program checks of the malloc replacement),
# and the pytest suite again against an ASan+UBSan build of the
# extension.  valgrind, clang with libFuzzer, clang-format, chromium (for
# the HTML report test) and the real programs (sqlite3, git, redis,
# CPython's test suite) are installed with apt-get when missing.  This is
# the README's test command;
# .ci/run calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

step() { printf '\n== %s\n' "$*"; }

# apt_install PKG...: install Debian/Ubuntu packages, saying which.
apt_install() {
    local sudo=()
    if [ "$(id -u)" -ne 0 ]; then sudo=(sudo); fi
    echo "installing with apt-get: $*"
    ${sudo[@]+"${sudo[@]}"} env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    ${sudo[@]+"${sudo[@]}"} env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "$@" >/dev/null
    dpkg-query -W -f='  ${Package} ${Version}\n' "$@"
}

# fuzzer_links: clang builds and links a libFuzzer target with ASan+UBSan.
fuzzer_links() {
    command -v clang >/dev/null 2>&1 || return 1
    local d rc
    d=$(mktemp -d)
    printf '%s\n' 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n);' \
        'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n)' \
        '{ (void)d; (void)n; return 0; }' >"$d/t.c"
    clang -fsanitize=fuzzer,address,undefined "$d/t.c" -o "$d/t" >/dev/null 2>&1
    rc=$?
    rm -rf "$d"
    return $rc
}

step "install (dev build: -Wall -Wextra -Werror)"
GOALLOC_WERROR=1 "$PY" -m pip install -q --disable-pip-version-check -e '.[test,plot,notebooks]'

step "generated size-class table is up to date"
make -s check-gen PYTHON="$PY"

step "every section citation (design §1.3) names a section of docs/design.md"
"$PY" tools/check_citations.py

step "no mutable static state in csrc/"
make -s check-static

step "csrc/ is layered: no call or include cycles (but Go's own), no C file over 600 lines"
make -s check-layers PYTHON="$PY"

step "C tests"
make -s test-c

step "C tests in a debug build (GA_DEBUG=2: assertions, the page heap's invariants after every span operation)"
make -s test-c-debug

step "C tests under ASan+UBSan"
make -s test-c-asan

step "C tests under ThreadSanitizer (8 Ps on 8 threads, frees on every thread)"
make -s test-c-tsan

step "valgrind (installed when missing)"
if ! command -v valgrind >/dev/null 2>&1; then
    apt_install valgrind
fi
valgrind --version

step "C tests under valgrind (GOALLOC_TEST_SCALE=0.1: a tenth of the randomized and threaded rounds)"
make -s test-c-valgrind

step "clang with libFuzzer (installed when missing)"
if ! fuzzer_links; then
    # Debian 12 packages libFuzzer's runtime in libclang-rt-14-dev, which
    # clang only recommends; older releases ship it with clang itself.
    apt_install clang
    rt="libclang-rt-$(clang -dumpversion | cut -d. -f1)-dev"
    if ! fuzzer_links && apt-cache show "$rt" >/dev/null 2>&1; then
        apt_install "$rt"
    fi
    fuzzer_links || { echo "clang -fsanitize=fuzzer does not link"; exit 1; }
fi
clang --version | head -n 1

step "fuzz 60 s"
make -s fuzz-run FUZZ_SECONDS=60

step "ruff (pyproject's [tool.ruff], whatever the user's ruff config says)"
"$PY" -m ruff check --no-cache --config pyproject.toml goalloc tests tools \
    benchmarks

step "mypy --strict over goalloc/ ([tool.mypy])"
"$PY" -m mypy

step "stubtest: goalloc/_core.pyi against the built extension"
"$PY" -m mypy.stubtest goalloc._core

step "clang-format (installed when missing)"
if ! command -v clang-format >/dev/null 2>&1; then
    apt_install clang-format
fi
clang-format --version

step "C style: clang-format --dry-run -Werror with .clang-format"
# Every tracked C file: the core, the binding, the capture shim, the C
# tests, the fuzzer and the benchmarks (sizeclasses.c is generated
# already formatted; check-gen keeps it so).
git ls-files -z '*.c' '*.h' | xargs -0 clang-format --dry-run -Werror

step "chromium and chromedriver for the HTML report test (installed when missing)"
# tests/test_report.py opens the report in Debian's headless chromium with
# selenium (the test extra); with GOALLOC_BROWSER_TESTS=required a missing
# browser fails that test rather than skipping it.
if ! command -v chromium >/dev/null 2>&1 \
        || ! command -v chromedriver >/dev/null 2>&1; then
    apt_install chromium chromium-driver
fi
chromedriver --version
export GOALLOC_BROWSER_TESTS=required

step "real programs for the malloc replacement's checks (installed when missing)"
# tests/test_preload_programs.py runs each on goalloc and on glibc:
# Debian's python3 with CPython's regression tests, sqlite3, git, gcc,
# sort, redis-server with redis-benchmark and redis-cli.
pkgs=()
command -v sqlite3 >/dev/null 2>&1 || pkgs+=(sqlite3)
command -v git >/dev/null 2>&1 || pkgs+=(git)
command -v redis-server >/dev/null 2>&1 || pkgs+=(redis-server)
command -v redis-benchmark >/dev/null 2>&1 || pkgs+=(redis-tools)
[ -x /usr/bin/python3 ] || pkgs+=(python3)
if [ ${#pkgs[@]} -gt 0 ]; then apt_install "${pkgs[@]}"; fi
if ! /usr/bin/python3 -c 'import test.test_list' >/dev/null 2>&1; then
    apt_install "libpython$(/usr/bin/python3 -c \
        'import sys; print("%d.%d" % sys.version_info[:2])')-testsuite"
fi

step "pytest"
"$PY" -m pytest -q -p no:cacheprovider tests

step "pytest against an ASan+UBSan build of the extension"
bash tools/asan_pytest.sh -q -p no:cacheprovider "$PWD/tests"
