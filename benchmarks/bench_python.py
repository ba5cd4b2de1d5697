"""Python call cost: h.free(h.alloc(16)) next to a trivial C call.

Run: python benchmarks/bench_python.py
Reports the median and min-max over rounds (timeit), in ns per call, and
the ratio of the goalloc pair to operator.index from the same round.
"""
from __future__ import annotations

import operator
import statistics
import timeit

import goalloc

ROUNDS = 7
NUMBER = 200_000


def main() -> None:
    h = goalloc.Heap()
    alloc, free, index = h.alloc, h.free, operator.index
    pairs, trivial, ratios = [], [], []
    for _ in range(ROUNDS):
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

    print(f"Python call cost, {NUMBER} calls per round, {ROUNDS} rounds\n")
    print("| call | median | min | max | unit |")
    print("|---|---|---|---|---|")
    print(row("h.free(h.alloc(16))", pairs, "ns"))
    print(row("operator.index(16)", trivial, "ns"))
    print(row("ratio pair / index (same round)", ratios, "x"))


if __name__ == "__main__":
    main()
