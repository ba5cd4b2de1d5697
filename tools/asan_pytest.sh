#!/usr/bin/env bash
# Build goalloc._core with ASan+UBSan into build/asan and run pytest there
# with the sanitizer runtime preloaded.  Arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
out=build/asan
rm -rf "$out"
mkdir -p "$out"
GOALLOC_SANITIZE=1 GOALLOC_WERROR=1 "$PY" setup.py -q build_ext \
    --build-temp "$out/tmp" --build-lib "$out" >/dev/null
cp goalloc/*.py goalloc/py.typed "$out/goalloc/"
cp goalloc/*.pyi "$out/goalloc/" 2>/dev/null || true
asan=$(gcc -print-file-name=libasan.so)
ubsan=$(gcc -print-file-name=libubsan.so)
export LD_PRELOAD="$asan $ubsan"
export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export GOALLOC_ASAN=1
root=$PWD
# Run from the build directory: its goalloc/ (with the sanitized _core)
# comes first on sys.path, ahead of the source tree's.
cd "$out"
"$PY" -c 'import goalloc, os, sys; f = goalloc._core.__file__; sys.exit(0 if f.startswith(os.getcwd()) else "wrong _core: " + f)'
exec "$PY" -m pytest --rootdir "$root" -c "$root/pyproject.toml" "$@"
