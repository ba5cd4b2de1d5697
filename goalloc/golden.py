"""The scripts of the Go 1.13 golden comparison (docs/gc-golden.md).

One allocation script is run twice: by ``tools/go113`` (a Go program
built with go1.13.8, on Go's own runtime) and by goalloc's GC mode, and
the per-cycle records are compared by ``tests/test_gc_golden.py``.  This
module is the single source of both: ``script(name)`` is the
``goalloc.Trace`` goalloc replays, ``encode(trace)`` the file the Go
program reads (its ops, one little-endian uint32 each), and
``run_goalloc(trace, gogc)`` goalloc's records in the Go program's JSON
shape.  ``python3 -m goalloc.golden NAME FILE`` writes a script file
(``tools/go113/regen.sh`` runs it).

A script's frees are the program dropping its last reference (Go: the
object's slot in a global array is set to nil; goalloc: ``drop``).  A
pointerful ("scan") object is a Go pointer slice, so its size is rounded
up to a multiple of 8 in the script itself: both sides ask for the same
bytes, and no size class changes (every class is a multiple of 8).
"""
from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, Literal

import numpy as np

from . import workloads
from .heap import Heap
from .trace import ALLOC, Trace

__all__ = ["SCRIPTS", "GOGCS", "script", "encode", "run_goalloc",
           "BACKGROUND_SWEEP", "GODEBUG"]

# GOGC values every script runs with ("off": GOGC=off).
GOGCS: tuple[int | Literal["off"], ...] = (50, 100, 200, "off")

# How the Go side runs: the cycle stops the world from its start to its
# end, as goalloc's atomic cycle does (design §14.2), and the sweep is
# left to the program's own allocations (GOMAXPROCS=1, no idle P), which
# is goalloc's background_sweep=0 (design §14.4).
GODEBUG = "gcstoptheworld=1"
BACKGROUND_SWEEP = 0

SCRIPTS: dict[str, Callable[[], Trace]] = {
    # one size class each: small noscan/scan, a larger class, large spans
    "fixed48": lambda: workloads.uniform(600_000, 48, 48, live=50_000,
                                         seed=1),
    "fixed1k": lambda: workloads.uniform(100_000, 1024, 1024, live=4_000,
                                         seed=2),
    "fixed64k": lambda: workloads.uniform(4_000, 65536, 65536, live=80,
                                          seed=3),
    # go_mix's size distribution (tiny to 1 MiB), steady live set
    "go_mix": lambda: workloads.go_mix(200_000, live=4_000, seed=4),
    # grow to 8000 objects, shrink to 2000, grow back (go_mix sizes)
    "phases": lambda: workloads.phases(200_000, live=8_000, low=2_000,
                                       seed=5),
}

_DROP = 1 << 31
_NOSCAN = 1 << 30


def script(name: str) -> Trace:
    """The named script's trace, scan sizes rounded up to 8 bytes."""
    t = SCRIPTS[name]()
    size = t.size.copy()
    scan = (t.kind == ALLOC) & (t.noscan == 0)
    size[scan] = (size[scan] + 7) & ~np.uint64(7)
    if np.any((t.kind == ALLOC) & (size == 0)) or np.any(size >= _NOSCAN):
        raise ValueError(f"script {name}: sizes must be in [1, 2**30)")
    return Trace(t.kind, t.id, size, t.noscan, t.p)


def encode(trace: Trace) -> bytes:
    """The Go program's script file: per op a little-endian uint32, the
    dropped id | 1<<31 for a free, the size (| 1<<30 if noscan) for an
    alloc (ids are allocation order, which workloads guarantee)."""
    alloc = trace.kind == ALLOC
    if np.any(trace.id[~alloc] >= _DROP):
        raise ValueError("ids must be < 2**31")
    ops = np.where(alloc,
                   trace.size | (trace.noscan.astype(np.uint64) << 30),
                   trace.id | _DROP).astype("<u4")
    return ops.tobytes()


_COUNTERS = ("heap_alloc", "heap_inuse", "heap_idle", "heap_released",
             "heap_sys")


def run_goalloc(trace: Trace, gogc: int | Literal["off"],
                background_sweep: int | None = BACKGROUND_SWEEP,
                **heap_args: Any) -> dict[str, Any]:
    """Replay trace on a GC-mode heap (virtual, one P unless heap_args
    say otherwise) and return records shaped as the Go program's: one
    per cycle (``op``: the index of the allocation it followed) and
    ``final``.  The op of a cycle is found from its clock (design §14.7:
    one nanosecond per byte asked for)."""
    heap_args.setdefault("backing", "virtual")
    heap_args.setdefault("procs", 1)
    h = Heap(collector="gc", gogc=gogc, background_sweep=background_sweep,
             **heap_args)
    try:
        tl = h.replay(trace, sample_every=1)
        cols = tl.columns()
        row_of = {int(op): k for k, op in enumerate(cols["op"])}
        asked = np.where(trace.kind == ALLOC, trace.size, 0).cumsum()

        def counters(op: int) -> dict[str, int]:
            k = row_of[op]  # the sample taken after op
            return {c: int(cols[c][k]) for c in _COUNTERS}

        cycles = []
        for c in h.gc_cycles():
            op = int(np.searchsorted(asked, c.clock_ns - 10**9))
            rec: dict[str, Any] = {
                "op": op, "num_gc": c.num, "next_gc": c.next_gc,
                "gc_trigger": c.next_trigger,
                "trigger_ratio": c.trigger_ratio,
                "heap_marked": c.heap_marked,
                "heap_live_trigger": c.heap_live_trigger}
            rec.update(counters(op))
            cycles.append(rec)
        st, gs = h.stats(), h.gc_state()
        final = {"op": len(trace) - 1, "num_gc": st.num_gc,
                 "next_gc": st.next_gc, "gc_trigger": gs.gc_trigger,
                 "heap_marked": gs.heap_marked, "heap_live": gs.heap_live,
                 "heap_objects": st.heap_objects,
                 **counters(len(trace) - 1)}
        return {"gogc": str(gogc), "nops": len(trace), "cycles": cycles,
                "final": final}
    finally:
        h.close()


def _main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in SCRIPTS:
        print(f"usage: python3 -m goalloc.golden {{{','.join(SCRIPTS)}}} "
              "FILE", file=sys.stderr)
        return 2
    with open(argv[1], "wb") as f:
        f.write(encode(script(argv[0])))
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
