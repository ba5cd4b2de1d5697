"""python -m goalloc: watch a Go 1.13 heap being born.

Commands:
  demo   mallocinit, the arena hints, a first large allocation, the heap
         growing at the hints, and MemStats (the guided tour is coming).
"""
from __future__ import annotations

import argparse
import sys

import goalloc


def _mib(n: int) -> str:
    return f"{n / (1 << 20):.2f} MiB"


def demo(args: argparse.Namespace) -> int:
    with goalloc.Heap(goos=args.goos, goarch=args.goarch, race=args.race,
                      backing=args.backing) as h:
        info = h.info()
        print(f"mallocinit for {info.goos}/{info.goarch}"
              f"{' -race' if info.race else ''} on the {info.backing} backing")
        print(f"  page size {info.page_size} B, arenas of "
              f"{_mib(info.heap_arena_bytes)}, {info.ptr_size * 8}-bit "
              f"pointers, maxAlloc {info.max_alloc:#x}")
        hints = h.hints()
        print(f"  {len(hints)} arena hints, nothing reserved yet:")
        for hint in hints[:3]:
            print(f"    {hint}")
        print("    ...")
        print(f"  {goalloc.NUM_SPAN_CLASSES} mcentrals, {info.procs} mcache(s)")
        p = h.alloc(100_000)
        print(f"\nalloc(100_000) -> {p:#x}")
        print(f"  span_of: {h.span_of(p)}")
        print(f"  head hint now {h.hints()[0]}")
        q = h.alloc(100 << 20)
        print(f"alloc(100 MiB) -> {q:#x}: the heap grew to "
              f"{len(h.arenas())} arenas")
        for a in h.arenas():
            print(f"    {a}")
        small = [h.alloc(24) for _ in range(3)]
        span = h.span_of(small[0])
        print(f"3 x alloc(24) -> {', '.join(hex(a) for a in small)}: "
              f"consecutive slots of size class {span.sizeclass} "
              f"({span.elemsize} B, {span.nelems} per {span.npages}-page "
              f"span), from P 0's mcache")
        tiny = [h.alloc(n, noscan=True) for n in (1, 2, 4)]
        print(f"tiny allocs of 1, 2, 4 noscan bytes -> "
              f"{', '.join(hex(a) for a in tiny)}: one 16-byte block")
        h.free(p)
        for a in small + tiny:
            h.free(a)
        h.flush()
        print(f"free everything, flush the mcaches; scavenge() released "
              f"{_mib(h.scavenge())}")
        st = h.stats()
        print("\nMemStats:")
        for name in ("sys", "heap_sys", "heap_inuse", "heap_idle",
                     "heap_released", "heap_alloc", "heap_objects",
                     "mallocs", "frees", "mspan_sys", "mcache_sys", "gc_sys",
                     "other_sys"):
            print(f"  {name:14} {getattr(st, name):>14,}")
        h.verify()
        print("\nverify(): every invariant holds")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m goalloc",
                                     description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    d = sub.add_parser("demo", help="a short walk through mallocinit")
    d.add_argument("--goos", default="linux")
    d.add_argument("--goarch", default="amd64")
    d.add_argument("--race", action="store_true")
    d.add_argument("--backing", choices=("os", "virtual"), default=None)
    d.set_defaults(func=demo)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (goalloc.GoallocError, ValueError) as e:
        print(f"goalloc: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
