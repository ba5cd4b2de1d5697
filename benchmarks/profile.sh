#!/usr/bin/env bash
# Profile one allocbench workload on one allocator (default goalloc):
# where the time goes, as BENCHMARKS.md quotes it.
#
#   benchmarks/profile.sh WORKLOAD [driver args...]
#   ALLOC=glibc benchmarks/profile.sh live n=1e6
#
# Needs the driver binaries (python3 benchmarks/run.py --smoke builds them
# into build/bench/).  Uses perf with DWARF call graphs; where perf cannot
# record (no perf, perf_event_paranoid too strict), valgrind's callgrind.
# Prints the self-time ("flat") and inclusive ("children") top lists.
# PROFILER=callgrind forces callgrind; LIMIT=PCT hides symbols below PCT%.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -lt 1 ]; then
    sed -n '2,13p' "$0"
    exit 1
fi
alloc=${ALLOC:-goalloc}
bin=build/bench/allocbench-$alloc
if [ ! -x "$bin" ]; then
    echo "profile.sh: $bin missing; run: python3 benchmarks/run.py --smoke" >&2
    exit 1
fi
out=$(mktemp -d "${TMPDIR:-/tmp}/allocbench-prof.XXXXXX")
trap 'rm -rf "$out"' EXIT
limit=${LIMIT:-1}

if [ "${PROFILER:-perf}" = perf ] && command -v perf >/dev/null &&
    perf record -q -e cpu-clock -o "$out/probe.data" true >/dev/null 2>&1; then
    perf record -q -e cpu-clock -F "${FREQ:-1000}" --call-graph dwarf,16384 \
        -o "$out/perf.data" "$bin" "$@"
    echo
    echo "== self time (% of samples, symbols >= $limit%) =="
    perf report -i "$out/perf.data" --no-children --stdio --sort symbol \
        --percent-limit "$limit" -g none 2>/dev/null | grep -v '^#' | grep -v '^$'
    echo
    echo "== inclusive time (% of samples, symbols >= $limit%) =="
    perf report -i "$out/perf.data" --children --stdio --sort symbol \
        --percent-limit "$limit" -g none 2>/dev/null | grep -v '^#' | grep -v '^$'
elif command -v valgrind >/dev/null; then
    echo "profile.sh: using callgrind (instructions, not time)" >&2
    valgrind -q --tool=callgrind --callgrind-out-file="$out/cg.out" "$bin" "$@"
    echo
    echo "== self instructions =="
    callgrind_annotate "$out/cg.out" | head -40
    echo
    echo "== inclusive instructions =="
    callgrind_annotate --inclusive=yes "$out/cg.out" | head -40
else
    echo "profile.sh: neither perf nor valgrind is installed" \
        "(apt-get install -y linux-perf valgrind)" >&2
    exit 1
fi
