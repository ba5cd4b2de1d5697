"""A pure-Python workload that allocates heavily (benchmarks/programs.py
runs it with PYTHONMALLOC=malloc, so that every object is a malloc):
dicts of lists, tuples and strings built, churned and sorted."""
import random

random.seed(1)


def work() -> tuple[int, int]:
    d = {}
    for i in range(300000):
        k = f"k{i % 50000}"
        d[k] = [i, str(i), (i, i * 2)]
        if i % 3 == 0:
            d.pop(f"k{random.randrange(50000)}", None)
    s = sorted(d.items())
    return len(s), sum(len(v[1]) for _, v in s)


tot = 0
for _ in range(4):
    a, b = work()
    tot += a + b
print(tot)
