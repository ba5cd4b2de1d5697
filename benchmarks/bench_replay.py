"""Replay throughput: Heap.replay in C against a Python loop of alloc/free.

Run: python benchmarks/bench_replay.py [--ops N] [--loop-ops N]
                                       [--rounds R] [--backing os|virtual|both]

The trace is goalloc.workloads.go_mix (10M ops, a live set of 100k
objects, seed 0).  Each round replays it on a fresh heap with
Heap.replay (no sampling: sample_every=0), and runs its first --loop-ops
ops (1M) as a Python loop of h.alloc / h.free on another fresh heap; the
loop reads the columns as Python lists made beforehand, so only the
calls are timed.  Reports ops/s and ns/op as the median and min-max over
the rounds, as a markdown table.
"""
from __future__ import annotations

import argparse
import platform
import statistics
import time

import numpy as np

import goalloc
from goalloc import workloads


def replay_round(trace: goalloc.Trace, backing: str) -> float:
    with goalloc.Heap(backing=backing) as h:
        t0 = time.perf_counter()
        h.replay(trace)
        return time.perf_counter() - t0


def loop_round(cols: tuple, nids: int, backing: str) -> float:
    kind, ids, size, noscan, p = cols
    with goalloc.Heap(backing=backing) as h:
        alloc, free = h.alloc, h.free
        addr = [0] * nids
        t0 = time.perf_counter()
        for k, i, s, ns, pp in zip(kind, ids, size, noscan, p, strict=True):
            if k == 0:
                addr[i] = alloc(s, noscan=ns, p=pp)
            else:
                free(addr[i])
        return time.perf_counter() - t0


def row(backing: str, what: str, nops: int, secs: list[float]) -> str:
    rates = sorted(nops / s for s in secs)
    ns = [s / nops * 1e9 for s in secs]
    return (f"| {backing} | {what} | {nops:,} | "
            f"{statistics.median(rates) / 1e6:.2f} | "
            f"{rates[0] / 1e6:.2f} - {rates[-1] / 1e6:.2f} | "
            f"{statistics.median(ns):.0f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ops", type=int, default=10_000_000)
    ap.add_argument("--loop-ops", type=int, default=1_000_000)
    ap.add_argument("--live", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--backing", choices=("os", "virtual", "both"),
                    default="both")
    args = ap.parse_args()
    backings = ("virtual", "os") if args.backing == "both" else (args.backing,)

    t0 = time.perf_counter()
    trace = workloads.go_mix(args.ops, live=args.live, seed=0)
    built = time.perf_counter() - t0
    prefix = trace[:args.loop_ops]
    cols = (prefix.kind.tolist(), prefix.id.tolist(), prefix.size.tolist(),
            prefix.noscan.astype(bool).tolist(), prefix.p.tolist())
    nalloc = int(np.count_nonzero(trace.kind == 0))

    lines = []
    ratios = []
    for backing in backings:
        rep = [replay_round(trace, backing) for _ in range(args.rounds)]
        loop = [loop_round(cols, prefix.nids, backing)
                for _ in range(args.rounds)]
        lines.append(row(backing, "Heap.replay (C)", len(trace), rep))
        lines.append(row(backing, "Python loop of h.alloc/h.free",
                         len(prefix), loop))
        ratios.append((backing,
                       statistics.median(len(trace) / s for s in rep)
                       / statistics.median(len(prefix) / s for s in loop)))

    print(f"go_mix trace: {len(trace):,} ops ({nalloc:,} allocs), live set "
          f"{args.live:,}, built in {built:.2f} s; {args.rounds} rounds, "
          f"a fresh heap each; Python {platform.python_version()}, "
          f"{platform.machine()}\n")
    print("| backing | method | ops per round | median M ops/s | "
          "min - max M ops/s | median ns/op |")
    print("|---|---|---|---|---|---|")
    for line in lines:
        print(line)
    print()
    for backing, r in ratios:
        print(f"{backing}: replay is {r:.1f}x the Python loop's throughput")


if __name__ == "__main__":
    main()
