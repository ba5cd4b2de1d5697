#!/usr/bin/env python3
"""Per-test pass counts of the C tests, for moving tests between files.

Runs the C test of every tests/c/test_*.c (build/ctest/, after
`make -s test-c`) with GOALLOC_TEST_VERBOSE=1, under which each CHECK_RUN
(tests/c/check.h) prints the checks of one test function, and prints one
line per test function (its name without arguments; calls of one
function are summed, whatever file holds it) with its passed count, then
the total.  Run it before and after a reorganisation and diff the two
outputs: every function must still be there, and the total must not
drop.
"""
import collections
import os
import re
import subprocess
import sys
from pathlib import Path

RUN_LINE = re.compile(r"^  (\w+)\(.*: (\d+) passed, (\d+) failed$", re.M)


def main() -> int:
    counts: collections.Counter[str] = collections.Counter()
    env = dict(os.environ, GOALLOC_TEST_VERBOSE="1")
    # the binaries of the current sources (a stale one may be left over)
    sources = sorted(Path("tests/c").glob("test_*.c"))
    tests = [Path("build/ctest") / s.stem for s in sources]
    if not tests or not all(t.exists() for t in tests):
        print("a C test is not built: run make -s test-c", file=sys.stderr)
        return 1
    for t in tests:
        run = subprocess.run([str(t)], env=env, capture_output=True,
                             text=True, check=False)
        for m in RUN_LINE.finditer(run.stdout):
            counts[m.group(1)] += int(m.group(2))
    for name in sorted(counts):
        print(f"{name} {counts[name]}")
    print(f"TOTAL {sum(counts.values())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
