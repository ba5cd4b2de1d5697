#!/usr/bin/env bash
# Install goalloc with its test extras and run every check: the generated
# table, no mutable statics in the core, the C tests (plain, under
# ASan+UBSan and under ThreadSanitizer), the pytest suite, and the pytest
# suite again against an ASan+UBSan build of the extension.  This is the README's test command;
# .ci/run calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

step() { printf '\n== %s\n' "$*"; }

step "install (dev build: -Wall -Wextra -Werror)"
GOALLOC_WERROR=1 "$PY" -m pip install -q --disable-pip-version-check -e '.[test,plot,notebooks]'

step "generated size-class table is up to date"
make -s check-gen PYTHON="$PY"

step "no mutable static state in csrc/"
make -s check-static

step "C tests"
make -s test-c

step "C tests under ASan+UBSan"
make -s test-c-asan

step "C tests under ThreadSanitizer (8 Ps on 8 threads, frees on every thread)"
make -s test-c-tsan

step "pytest"
"$PY" -m pytest -q -p no:cacheprovider tests

step "pytest against an ASan+UBSan build of the extension"
bash tools/asan_pytest.sh -q -p no:cacheprovider "$PWD/tests"
