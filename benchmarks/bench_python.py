"""Python call cost: per call, in bulk, and the pure C cost underneath.

Run: python benchmarks/bench_python.py [--n N] [--rounds R] [--no-c]
                                       [--clock wall|cpu]

1. h.free(h.alloc(16)) next to a trivial C call (operator.index), in ns
   per call, and their ratio from the same round.
2. Bulk: Heap.alloc_many and Heap.free_many over N objects (1M): 16-byte
   objects with pointers (noscan=False, the fast paths bench_fastpath
   times) freed in allocation order and in random order; 16-byte noscan
   objects (alloc_many's default: Go puts them in the tiny allocator's
   span class, so goalloc frees them through its tiny path) freed in
   allocation order; and go_mix sizes (goalloc.workloads.go_mix's size
   mix, all noscan: alloc_many takes one noscan flag) freed in random
   order.  Each row gives, in ns
   per object, the bulk call (its whole cost: the input's conversion, the
   result array), the same work as one Python call per object (a list
   comprehension over Python ints made beforehand), and the pure C cost
   (the same sizes and free order through ga_malloc / ga_free in C:
   benchmarks/bench_fastpath.c --bulk, built with make; --no-c skips it).
   Every round uses fresh heaps (os backing, Go's defaults), so arena
   growth is part of the cost, as it is in bench_fastpath.  Rounds are
   interleaved: each round runs every case bulk, per call and in C, and
   the last column is the median of the per-round ratios bulk / C.

Every figure is the median over the rounds with [min-max].  --clock cpu
times the bulk and C rows with the thread's CPU clock (time.thread_time,
CLOCK_THREAD_CPUTIME_ID) instead of the wall clock: on a loaded machine,
time spent descheduled then does not count.  Nothing here is a test: no
figure is asserted.
"""
from __future__ import annotations

import argparse
import operator
import os
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
from pathlib import Path

import numpy as np

import goalloc
from goalloc import workloads
from goalloc.trace import ALLOC

ROOT = Path(__file__).resolve().parent.parent
C_BENCH = ROOT / "build" / "bench" / "bench_fastpath"
TARGET_NS = 20.0  # issue 5: a batch path at <= 20 ns per op

ROUNDS = 7
NUMBER = 200_000
CLOCK = time.perf_counter  # --clock cpu: time.thread_time


# ---- per-call cost ----------------------------------------------------------

def per_call_pairs(rounds: int) -> None:
    h = goalloc.Heap()
    alloc, free, index = h.alloc, h.free, operator.index
    pairs, trivial, ratios = [], [], []
    for _ in range(rounds):
        t_pair = timeit.timeit(lambda: free(alloc(16)), number=NUMBER)
        t_triv = timeit.timeit(lambda: index(16), number=NUMBER)
        pairs.append(t_pair / NUMBER * 1e9)
        trivial.append(t_triv / NUMBER * 1e9)
        ratios.append(t_pair / t_triv)
    h.verify()
    h.close()

    def row(name: str, xs: list[float], unit: str) -> str:
        return (f"| {name:32} | {statistics.median(xs):8.1f} | "
                f"{min(xs):8.1f} | {max(xs):8.1f} | {unit} |")

    print(f"Python call cost, {NUMBER} calls per round, {rounds} rounds\n")
    print("| call | median | min | max | unit |")
    print("|---|---|---|---|---|")
    print(row("h.free(h.alloc(16))", pairs, "ns"))
    print(row("operator.index(16)", trivial, "ns"))
    print(row("ratio pair / index (same round)", ratios, "x"))


# ---- bulk ------------------------------------------------------------

class Case:
    """One workload: sizes (int64, as a caller would hold them) and the
    order the objects are freed in (indices into the allocation order)."""

    def __init__(self, name: str, sizes: np.ndarray, order: np.ndarray,
                 noscan: bool):
        self.name = name
        self.sizes = sizes
        self.order = order
        self.noscan = noscan
        self.bulk_alloc: list[float] = []
        self.bulk_free: list[float] = []
        self.call_alloc: list[float] = []
        self.call_free: list[float] = []
        self.c_alloc: list[float] = []
        self.c_free: list[float] = []
        self.c_input = ""  # the file bench_fastpath --bulk reads


def make_cases(n: int) -> list[Case]:
    rng = np.random.default_rng(0)
    shuffled = rng.permutation(n)
    sixteen = np.full(n, 16, dtype=np.int64)
    # go_mix's sizes: the allocations of a go_mix trace, in trace order
    trace = workloads.go_mix(2 * n + 2000, live=1000, seed=0)
    mix = trace.size[trace.kind == ALLOC][:n].astype(np.int64)
    assert len(mix) == n
    in_order = np.arange(n)
    return [
        Case("16 B, freed in allocation order", sixteen, in_order, False),
        Case("16 B, freed in random order", sixteen, shuffled, False),
        Case("16 B noscan, freed in allocation order", sixteen, in_order,
             True),
        Case("go_mix sizes (noscan), freed in random order", mix, shuffled,
             True),
    ]


def bulk_round(case: Case) -> None:
    with goalloc.Heap() as h:
        t0 = CLOCK()
        addrs = h.alloc_many(case.sizes, noscan=case.noscan)
        t1 = CLOCK()
        freeing = addrs[case.order]
        t2 = CLOCK()
        h.free_many(freeing)
        t3 = CLOCK()
    n = len(case.sizes)
    case.bulk_alloc.append((t1 - t0) / n * 1e9)
    case.bulk_free.append((t3 - t2) / n * 1e9)


def call_round(case: Case, sizes: list[int], order: list[int]) -> None:
    noscan = case.noscan
    with goalloc.Heap() as h:
        alloc, free = h.alloc, h.free
        t0 = CLOCK()
        addrs = [alloc(s, noscan=noscan) for s in sizes]
        t1 = CLOCK()
        freeing = [addrs[i] for i in order]
        t2 = CLOCK()
        for a in freeing:
            free(a)
        t3 = CLOCK()
    n = len(sizes)
    case.call_alloc.append((t1 - t0) / n * 1e9)
    case.call_free.append((t3 - t2) / n * 1e9)


def write_c_input(case: Case, path: str) -> None:
    n = len(case.sizes)
    with open(path, "wb") as f:
        f.write(np.array([n, case.noscan], dtype="<u8").tobytes())
        f.write(case.sizes.astype("<u8").tobytes())
        f.write(case.order.astype("<u8").tobytes())
    case.c_input = path


def c_round(case: Case) -> None:
    """One round of the pure C loops, in a process of its own (its
    figures are timed inside it)."""
    clock = "cpu" if CLOCK is time.thread_time else "wall"
    out = subprocess.run([str(C_BENCH), "--bulk", case.c_input, "1", clock],
                         check=True, capture_output=True, text=True).stdout
    got = {w[0]: float(w[1]) for w in (line.split()
                                       for line in out.splitlines())}
    case.c_alloc.append(got["alloc"])
    case.c_free.append(got["free"])


def build_c_bench() -> bool:
    r = subprocess.run(["make", "-s", "build/bench/bench_fastpath"], cwd=ROOT,
                       capture_output=True, text=True)
    if r.returncode != 0:
        print(f"(no pure C figures: make failed: {r.stderr.strip()[-200:]})",
              file=sys.stderr)
    return r.returncode == 0


def cell(xs: list[float] | None) -> str:
    if not xs:
        return "n/a"
    return f"{statistics.median(xs):6.1f} [{min(xs):.1f}–{max(xs):.1f}]"


def ratio(xs: list[float], cs: list[float]) -> str:
    if not cs:
        return "n/a"
    rs = [x / c for x, c in zip(xs, cs, strict=False)]
    return f"{statistics.median(rs):.2f} [{min(rs):.2f}–{max(rs):.2f}]"


def bulk(n: int, rounds: int, with_c: bool) -> None:
    cases = make_cases(n)
    lists = [(c.sizes.tolist(), c.order.tolist()) for c in cases]
    with_c = with_c and build_c_bench()
    with tempfile.TemporaryDirectory() as tmp:
        if with_c:
            for i, case in enumerate(cases):
                write_c_input(case, os.path.join(tmp, f"case{i}.bin"))
        # interleaved rounds: every case, all three ways, per round, so
        # the machine's load changes hit them alike
        for _ in range(rounds):
            for case, (sizes, order) in zip(cases, lists, strict=True):
                bulk_round(case)
                call_round(case, sizes, order)
                if with_c:
                    c_round(case)

    clock = "CPU time" if CLOCK is time.thread_time else "wall time"
    print(f"\nBulk calls, {n} objects per call, {rounds} rounds: ns per "
          f"object ({clock}), median [min–max]\n")
    print("| workload | op | bulk call | one Python call each | pure C | "
          "bulk / C, same round |")
    print("|---|---|---|---|---|---|")
    for c in cases:
        print(f"| {c.name} | alloc_many | {cell(c.bulk_alloc)} | "
              f"{cell(c.call_alloc)} | {cell(c.c_alloc)} | "
              f"{ratio(c.bulk_alloc, c.c_alloc)} |")
        print(f"| | free_many | {cell(c.bulk_free)} | "
              f"{cell(c.call_free)} | {cell(c.c_free)} | "
              f"{ratio(c.bulk_free, c.c_free)} |")
    print(f"\nTarget (issue 5): <= {TARGET_NS:.0f} ns per op in bulk, "
          f"by the median:")
    for c in cases:
        for op, xs in (("alloc_many", c.bulk_alloc),
                       ("free_many", c.bulk_free)):
            med = statistics.median(xs)
            verdict = "met" if med <= TARGET_NS else "NOT met"
            print(f"- {c.name}, {op}: {med:.1f} ns: {verdict}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=1_000_000,
                    help="objects per bulk call (default 1M)")
    ap.add_argument("--rounds", type=int, default=ROUNDS,
                    help=f"rounds, at least 5 (default {ROUNDS})")
    ap.add_argument("--no-c", action="store_true",
                    help="skip the pure C figures (bench_fastpath --bulk)")
    ap.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                    help="time the bulk section by the wall clock (default)"
                    " or by the thread's CPU time")
    args = ap.parse_args()
    if args.rounds < 5:
        ap.error("--rounds must be at least 5")
    global CLOCK
    CLOCK = time.thread_time if args.clock == "cpu" else time.perf_counter
    per_call_pairs(args.rounds)
    bulk(args.n, args.rounds, not args.no_c)


if __name__ == "__main__":
    main()
