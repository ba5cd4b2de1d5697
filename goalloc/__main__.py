"""goalloc: watch a Go 1.13 heap being born, and replay traces.

Run as the installed command `goalloc` or as `python -m goalloc` (the
latter from any directory but the root of a source checkout, whose
goalloc/ folder has no built extension).

Commands:
  tour     the guided tour: mallocinit step by step (hints, the mheap, the
           134 mcentrals, m0's mcache), a Go-like workload replayed in C,
           MemStats, fragmentation, and plots written as PNG files.
  replay   replay a trace file (text or binary) on a fresh heap; report
           the peak and the final state (as text, or JSON with --json);
           write the sampled timeline, a snapshot, plots.
  diff     what changed between two heap snapshots (goalloc.snapshot.diff).
  report   replay traces and write one self-contained HTML report: the
           figures, MemStats, fragmentation, size classes, and a comparison
           of the runs (goalloc.report).
  capture  run a program under a malloc-capture shim and save what it
           allocated as trace files (goalloc.capture; Linux).
  demo     a short walk through mallocinit, a first allocation, heap
           growth and MemStats.
  run      run a program on goalloc: Go 1.13's allocator as its malloc
           (goalloc.preload); --stats FILE writes its final heap as a
           snapshot.
  preload-path
           print the path of the malloc replacement, for LD_PRELOAD.

Errors are one line on stderr ("goalloc: error: ..."): exit status 2 for
bad command lines, 1 for everything else.  GOALLOC_DEBUG=1 shows the
traceback of unexpected errors.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any, NoReturn, TextIO

import goalloc
from goalloc import capture as _capture


def prog_name() -> str:
    """How the user started us, for usage lines: the installed command
    `goalloc` (pyproject's [project.scripts]) or `python -m goalloc`."""
    if os.path.basename(sys.argv[0]) == "__main__.py":
        return "python -m goalloc"
    return "goalloc"


# ---- formatting ----------------------------------------------------------

def _mib(n: float) -> str:
    return f"{n / (1 << 20):.2f} MiB"


def _bytes(n: int) -> str:
    """A byte count the way a person reads it."""
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if abs(n) >= 1 << shift:
            return f"{n / (1 << shift):.2f} {unit}"
    return f"{n} B"


def _rate(nops: int, seconds: float) -> str:
    if seconds <= 0:
        return "-"
    r = nops / seconds
    return f"{r / 1e6:.2f} M ops/s" if r >= 1e6 else f"{r / 1e3:.1f} k ops/s"


def _pct(x: float) -> str:
    return "n/a" if x != x else f"{100 * x:.1f}%"


class _NoBar:
    """What progress_bar gives without tqdm: no bar."""

    def __call__(self, done: int, total: int) -> None:
        pass

    def close(self) -> None:
        pass


def progress_bar(label: str, enabled: bool | None,
                 stream: TextIO | None = None) -> Any:
    """A tqdm bar on stderr as Heap.replay's progress callback, drawn when
    enabled (by default: when stderr is a terminal), with close().
    Without tqdm: no bar, and a note on stderr when the bar was asked
    for (--progress)."""
    from ._progress import ReplayProgress

    try:
        return ReplayProgress(label, enabled, stream, what="--progress")
    except ImportError as e:
        if enabled:
            print(f"goalloc: no progress bar: {e}", file=sys.stderr)
        return _NoBar()


def save_plots(heap: goalloc.Heap, timeline: Any, outdir: str,
               prefix: str, indent: str = "",
               quiet: bool = False) -> list[str] | None:
    """goalloc.plot.save_all, printing the paths (unless quiet); or a
    one-line note (on stderr when quiet) and None when plotting is not
    available (no matplotlib, or no goalloc.plot.save_all).  Other
    plotting errors propagate."""
    os.environ.setdefault("MPLBACKEND", "Agg")  # files only, no display

    def note(e: Exception) -> None:
        print(f"{indent}plots not written: {e} (pip install "
              f"'goalloc[plot]' for matplotlib)",
              file=sys.stderr if quiet else sys.stdout)

    try:
        from goalloc import plot
        save_all = plot.save_all
    except (ImportError, AttributeError) as e:
        note(e)
        return None
    t0 = time.perf_counter()
    try:
        os.makedirs(outdir, exist_ok=True)
        paths = [os.fspath(p) for p in save_all(
            heap, timeline=timeline, outdir=outdir, prefix=prefix)]
    except ImportError as e:
        note(e)
        return None
    if quiet:
        return paths
    print(f"{indent}{len(paths)} PNG files in {time.perf_counter() - t0:.1f}"
          f" s:")
    for p in paths:
        print(f"{indent}  {p}")
    return paths


MEMSTATS_ROWS = (
    ("heap_alloc", "bytes of live heap objects (size-class rounded)"),
    ("heap_inuse", "bytes in in-use spans"),
    ("heap_idle", "bytes in free spans"),
    ("heap_released", "free bytes returned to the OS (scavenged)"),
    ("heap_sys", "heap address space mapped: whole 64 MiB arenas"),
    ("heap_objects", "live objects (a tiny block counts once)"),
    ("mallocs", "allocations so far (packed tiny ones included)"),
    ("frees", "frees so far"),
    ("total_alloc", "bytes allocated so far"),
    ("mspan_sys", "mspan structs (fixalloc)"),
    ("mcache_sys", "mcache structs (fixalloc)"),
    ("gc_sys", "heapArena metadata and gcBits"),
    ("other_sys", "everything else off-heap"),
    ("sys", "total bytes obtained from the OS"),
    ("num_gc", "GC cycles completed (collector='gc')"),
    ("next_gc", "the heap goal of the next cycle"),
)


def _print_memstats(st: goalloc.MemStats, indent: str = "  ") -> None:
    print(f"{indent}{'field':14} {'value':>16}  {'':10}  meaning")
    for name, meaning in MEMSTATS_ROWS:
        v = getattr(st, name)
        human = _bytes(v) if name not in ("heap_objects", "mallocs",
                                          "frees", "num_gc") else ""
        if name == "next_gc" and v == 2**64 - 1:
            human = "GOGC=off"
        print(f"{indent}{name:14} {v:>16,}  {human:>10}  {meaning}")


def _print_fragmentation(f: goalloc.Fragmentation, indent: str = "  ") -> None:
    rows = (
        ("internal", f.internal, f.internal_bytes,
         "size-class rounding: heap_alloc - requested, / heap_alloc"),
        ("span", f.span, f.span_bytes,
         "free slots and tails of in-use spans, / heap_inuse"),
        ("page", f.page, f.page_bytes,
         "free pages kept from the OS, / heap_sys"),
        ("external", f.external, f.external_bytes,
         "free memory outside the largest free span, / heap_idle"),
    )
    for name, ratio, nbytes, meaning in rows:
        print(f"{indent}{name:9} {_pct(ratio):>7} {_bytes(nbytes):>12}  "
              f"{meaning}")
    over = "n/a" if f.overhead != f.overhead else f"{f.overhead:.2f}x"
    print(f"{indent}{'overhead':9} {over:>7} {'':>12}  heap_sys / requested "
          f"live bytes ({_bytes(f.requested_live)} requested)")


# ---- tour ----------------------------------------------------------------

def tour(args: argparse.Namespace) -> int:
    from . import workloads

    def step(n: int, title: str) -> None:
        print(f"\n{n}. {title}")

    with goalloc.Heap(backing=args.backing, procs=args.procs) as h:
        info = h.info()
        st = h.stats()
        print("goalloc tour: Go 1.13's memory allocator, rebuilt in C, "
              "opened up step by step.")

        step(1, f"mallocinit (runtime.mallocinit for {info.goos}/"
                f"{info.goarch}, {info.backing} backing, {info.release}'s "
                f"page heap)")
        print(f"   Checks the platform and sets up the heap's bookkeeping: "
              f"{info.page_size // 1024} KiB pages,\n"
              f"   {_mib(info.heap_arena_bytes)} arenas, {info.ptr_size * 8}"
              f"-bit pointers, maxAlloc {info.max_alloc:#x}, OS pages "
              f"{info.phys_page_size} B, huge pages "
              f"{_bytes(info.phys_huge_page_size)}.")
        print(f"   No heap memory yet: heap_sys = {st.heap_sys}, sys = "
              f"{st.sys:,} B (fixalloc chunks and m0's mcache).")

        hints = h.hints()
        step(2, "arena hints (mheap_.arenaHints): where the heap will grow")
        print(f"   {len(hints)} hints, head first: "
              f"{', '.join(f'{x.addr:#014x}' for x in hints[:3])}, ..., "
              f"{hints[-1].addr:#014x}.")
        print("   Go asks the OS for 64 MiB arenas at the head hint, so "
              "heap pointers look like\n   0x00c0...; a hint the OS refuses "
              "is dropped and the next one tried.")

        step(3, "the mheap (mheap_): the page heap")
        print(f"   {len(h.spans())} spans, {len(h.arenas())} arenas, an empty "
              f"treap of free spans.  It hands out runs of\n"
              f"   {info.page_size // 1024} KiB pages (spans), first fit by "
              f"address from the treap.  When nothing fits\n"
              f"   it grows by the pages it needs, cut off the current "
              f"arena (curArena), and maps whole new\n"
              f"   arenas only when that runs out (go1.13.0 made each new "
              f"arena one free span).  Its\n   fixallocs make the mspan "
              f"(136 B) and mcache (1736 B) structs.")

        centrals = h.centrals()
        classes = goalloc.size_classes()
        step(4, f"{len(centrals)} mcentrals (mheap_.central): one per span "
                f"class = size class x {{scan, noscan}}")
        print(f"   {len(classes)} size classes: class 0 is large objects "
              f"(> {goalloc.MAX_SMALL_SIZE} B, their own span, no "
              f"mcentral);\n   classes 1-{len(classes) - 1} are "
              f"{classes[1].size}, {classes[2].size}, {classes[3].size}, "
              f"..., {classes[-1].size} B.  Each mcentral keeps a "
              f"nonempty list\n   (spans with free slots) and an empty list "
              f"(full or cached spans); all "
              f"{sum(1 for c in centrals if not c.nonempty and not c.empty)}"
              f" are empty now.")
        c3 = classes[3]
        print(f"   e.g. span class 6 = class 3 with pointers: {c3.size} B "
              f"objects, {c3.objects} per {c3.npages}-page span; span class "
              f"7: the same, noscan.")

        caches = h.caches()
        step(5, "m0's mcache (P 0): the per-P cache that serves small "
                "allocations without a lock")
        print(f"   {len(caches)} mcache(s); P 0's caches "
              f"{len(caches[0].alloc)} spans (every class points at "
              f"emptymspan) and no tiny block.")

        step(6, "a first allocation: alloc(24)")
        a = h.alloc(24)
        span = h.span_of(a)
        assert span is not None
        arena = h.arenas()[0]
        cur = h.info()
        print(f"   -> {a:#014x}.  The heap mapped one arena at "
              f"{arena.base:#014x} (the head hint moved to "
              f"{h.hints()[0].addr:#014x})\n   and grew by "
              f"{span.npages} page(s) into it; the rest, "
              f"{_bytes(cur.cur_arena_end - cur.cur_arena_base)}, is "
              f"curArena: mapped, idle, released, no span yet.")
        print(f"   mcentral {span.spanclass} got a {span.npages}-page span "
              f"of {span.nelems} x {span.elemsize} B slots and m0's mcache "
              f"caches it:\n   {h.caches()[0].alloc} (span class: base).")
        h.free(a)
        print("   free(addr): the slot is marked freed; reusable when the "
              "span is swept.")

        step(7, f"a workload: goalloc.workloads.go_mix({args.ops:,} ops, "
                f"live={args.live:,}, seed={args.seed}, procs={args.procs})")
        t0 = time.perf_counter()
        trace = workloads.go_mix(args.ops, live=args.live, seed=args.seed,
                                 procs=args.procs)
        built = time.perf_counter() - t0
        print(f"   {trace!r}, built with NumPy in {built:.2f} s: 25% tiny "
              f"noscan, 42% 16-64 B, 20% 65-256 B,\n   9% 257 B-2 KiB, 3.5% "
              f"2-32 KiB, 0.5% large; each free takes a random live "
              f"object.")
        every = max(1, args.ops // 1000)
        print(f"   Replaying in C (Heap.replay, GIL released), a sample "
              f"every {every:,} ops:")
        bar = progress_bar("   replay", args.progress)
        t0 = time.perf_counter()
        try:
            tl = h.replay(trace, sample_every=every, progress=bar)
        finally:
            bar.close()
        dt = time.perf_counter() - t0
        print(f"   {len(trace):,} ops in {dt:.2f} s: {_rate(len(trace), dt)}"
              f", {len(tl)} samples.")

        step(8, "MemStats (runtime.ReadMemStats)")
        _print_memstats(h.stats(), indent="   ")

        step(9, "fragmentation (goalloc.fragmentation)")
        _print_fragmentation(h.fragmentation(), indent="   ")

        h.verify()
        print("\n   verify(): every invariant holds.")

        step(10, "plots (goalloc.plot.save_all)")
        save_plots(h, tl, args.outdir, "goalloc-tour", indent="   ")

        step(11, "one GC cycle (Heap(collector=\"gc\"), design §14)")
        _tour_gc_cycle(indent="   ")
    return 0


def _tour_gc_cycle(indent: str) -> None:
    """A GC-mode heap from allocation to its first cycle and sweep."""
    with goalloc.Heap(backing="virtual", collector="gc") as g:
        st = g.gc_state()
        print(f"{indent}gcinit: gc_trigger = {st.gc_trigger:,} B, next_gc "
              f"= {st.next_gc:,} B (GOGC={st.gogc}).")
        n = 0
        while g.gc_state().num_gc == 0:
            p = g.alloc(64)
            n += 1
            if n % 4:
                g.drop(p)        # the program lets 3 objects in 4 go
        c = g.gc_cycles()[0]
        print(f"{indent}{n:,} allocations of 64 B, 3 in 4 dropped: at "
              f"heap_live = {c.heap_live_trigger:,} B a refill met the "
              f"trigger,\n{indent}and the cycle marked {c.heap_marked:,} B "
              f"(the {c.heap_marked // 64:,} objects the program still held, "
              f"the new one included).")
        st = g.gc_state()
        print(f"{indent}Now next_gc = {st.next_gc:,} B (heap_marked x 2, at "
              f"least the 4 MiB heapminimum), trigger ratio "
              f"{st.trigger_ratio}, sweepgen {st.sweepgen};\n{indent}the "
              f"background sweeper swept every span: heap_alloc = "
              f"{g.stats().heap_alloc:,} B.")
        g.verify()


# ---- replay --------------------------------------------------------------

# What replay reports as peak and final: (name, Timeline column or
# function of it, meaning).
PEAK_ROWS: tuple[tuple[str, str], ...] = (
    ("heap_sys", "heap address space mapped"),
    ("heap_inuse", "bytes in in-use spans"),
    ("heap_alloc", "bytes of live objects (size-class rounded)"),
    ("retained", "heap_sys - heap_released: held from the OS"),
    ("heap_released", "free bytes returned to the OS"),
    ("live_objects", "live objects"),
    ("requested_live", "bytes the live objects asked for"),
)


def _peaks(tl: Any) -> dict[str, dict[str, int]]:
    """Each PEAK_ROWS series' highest sample and the ops applied then."""
    import numpy as np

    out = {}
    for name, _ in PEAK_ROWS:
        col = (tl.heap_sys - tl.heap_released if name == "retained"
               else getattr(tl, name))
        i = int(np.argmax(col))
        out[name] = {"value": int(col[i]), "after_ops": int(tl.op[i]) + 1}
    return out


def _print_peaks(peaks: dict[str, dict[str, int]], nsamples: int,
                 indent: str = "  ") -> None:
    print(f"{indent}{'':14} {'peak':>16}  {'':10}  {'after ops':>11}  "
          f"meaning")
    for name, meaning in PEAK_ROWS:
        p = peaks[name]
        v = p["value"]
        human = "" if name == "live_objects" else _bytes(v)
        print(f"{indent}{name:14} {v:>16,}  {human:>10}  "
              f"{p['after_ops']:>11,}  {meaning}")


def replay(args: argparse.Namespace) -> int:
    import numpy as np

    from .trace import ALLOC, MAX_REPLAY_ID, Trace

    out = args.out
    if out is not None and not out.endswith((".csv", ".json", ".npz")):
        raise UsageError(f"--out {out!r}: the file name must end in .csv, "
                         f".json or .npz")
    quiet = args.json
    say: Callable[..., None] = (lambda *a, **k: None) if quiet else print
    t0 = time.perf_counter()
    trace = Trace.load(args.file)
    load_s = time.perf_counter() - t0
    n = len(trace)
    allocs = trace.kind == ALLOC
    nalloc = int(np.count_nonzero(allocs))
    need = int(trace.p[allocs].max()) + 1 if nalloc else 1
    procs = need if args.procs is None else args.procs
    if procs < need:
        raise UsageError(f"the trace allocates on P {need - 1}: --procs "
                         f"must be at least {need}")
    say(f"{args.file}: {n:,} ops ({nalloc:,} allocs, {n - nalloc:,} "
        f"frees), loaded in {load_s:.2f} s")
    nids = trace.nids
    file_ids = None
    if nids > min(max(4 * n, 1 << 24), MAX_REPLAY_ID + 1):
        # Sparse ids (addresses, hashes): the replay keeps tables indexed
        # by id (9 bytes per id), so number them densely first.
        trace, file_ids = trace.renumbered()
        say(f"  ids are sparse (largest {nids - 1:,}): renumbered "
            f"0..{len(file_ids) - 1:,} for the replay")
    every = args.sample_every
    if every is None:
        every = max(1, n // 1000)
    with goalloc.Heap(backing=args.backing, procs=procs,
                      collector=args.collector, gogc=args.gogc) as h:
        info = h.info()
        bar = progress_bar("replay", args.progress)
        t0 = time.perf_counter()
        try:
            tl = h.replay(trace, sample_every=every, progress=bar)
        except goalloc.GoallocError as e:
            index = getattr(e, "index", None)
            if file_ids is None or index is None:
                raise
            err = type(e)(f"{e} [id {int(file_ids[trace.id[index]])} in "
                          f"the file]")
            err.index = index  # type: ignore[attr-defined]
            raise err from None
        finally:
            bar.close()
        dt = time.perf_counter() - t0
        say(f"replayed on a {info.goos}/{info.goarch} heap ({info.backing}"
            f" backing, {procs} P) in {dt:.3f} s: {_rate(n, dt)}; "
            f"{len(tl)} samples"
            f"{f' (every {every:,} ops)' if every else ''}")
        st = h.stats()
        frag = h.fragmentation()
        peaks = _peaks(tl)
        if not quiet:
            print(f"peak (the highest of {len(tl)} samples; --sample-every "
                  f"1 for every op):")
            _print_peaks(peaks, len(tl))
            print("final heap:")
            _print_memstats(st)
            print("fragmentation:")
            _print_fragmentation(frag)
        outputs: dict[str, Any] = {}
        if out is not None:
            tl.save(out)
            kind = {".csv": "CSV", ".npz": "NumPy"}.get(
                os.path.splitext(out)[1], "JSON")
            say(f"timeline: {out} ({kind}, {len(tl)} rows)")
            outputs["timeline"] = out
        if args.snapshot is not None:
            from .snapshot import export_json

            export_json(h, args.snapshot)
            say(f"snapshot: {args.snapshot} (goalloc.snapshot/1)")
            outputs["snapshot"] = args.snapshot
        if args.plots is not None:
            stem = os.path.splitext(os.path.basename(args.file))[0] or "trace"
            say("plots:")
            outputs["plots"] = save_plots(h, tl, args.plots, stem,
                                          indent="  ", quiet=quiet)
        if quiet:
            doc = {
                "file": args.file,
                "ops": n, "allocs": nalloc, "frees": n - nalloc,
                "renumbered": file_ids is not None,
                "goos": info.goos, "goarch": info.goarch,
                "backing": info.backing, "release": info.release,
                "procs": procs,
                "replay_seconds": dt,
                "ops_per_second": n / dt if dt > 0 else None,
                "samples": len(tl), "sample_every": every,
                "peak": peaks,
                "final": st.scalars(),
                "fragmentation": {
                    k: (None if isinstance(v, float) and v != v else v)
                    for k, v in vars(frag).items()},
                "outputs": outputs,
            }
            json.dump(doc, sys.stdout, indent=2, allow_nan=False)
            sys.stdout.write("\n")
    return 0


# ---- report --------------------------------------------------------------

def report(args: argparse.Namespace) -> int:
    from .trace import ALLOC, Trace

    os.environ.setdefault("MPLBACKEND", "Agg")  # files only, no display
    import importlib.util

    from . import report as report_module

    missing = [m for m in ("matplotlib", "pandas")
               if importlib.util.find_spec(m) is None]
    if missing:
        raise UsageError(f"report needs {' and '.join(missing)}, not "
                         f"installed: pip install 'goalloc[report]'")
    if not args.out.endswith((".html", ".htm")):
        raise UsageError(f"-o {args.out!r}: the file name must end in "
                         f".html")
    releases = args.release or [None]
    traces = {}
    for path in args.files:
        traces[path] = Trace.load(path)
    stems = [os.path.splitext(os.path.basename(p))[0] or p for p in traces]
    if len(set(stems)) < len(stems):
        stems = list(traces)
    runs: dict[str, Any] = {}
    heaps = []
    try:
        for stem, trace in zip(stems, traces.values(), strict=True):
            allocs = trace.kind == ALLOC
            need = int(trace.p[allocs].max()) + 1 if allocs.any() else 1
            procs = max(need, args.procs or 1)
            if trace.nids > 4 * max(len(trace), 1 << 22):
                trace, _ = trace.renumbered()
            for release in releases:
                label = stem if len(releases) == 1 else \
                    f"{stem} {release}" if len(traces) > 1 else release
                h = goalloc.Heap(backing=args.backing, procs=procs,
                                 release=release)
                heaps.append(h)
                every = args.sample_every
                if every is None:
                    every = max(1, len(trace) // 1000)
                bar = progress_bar(f"replay {label}", args.progress)
                try:
                    tl = h.replay(trace, sample_every=every, progress=bar)
                finally:
                    bar.close()
                runs[label] = (h, tl)
                print(f"{label}: {len(trace):,} ops replayed "
                      f"({h.info().release}, {procs} P)")
        out = report_module.write(args.out, runs, title=args.title)
        print(f"report: {out} ({os.path.getsize(out):,} bytes, "
              f"{len(runs)} run(s)); open it in a browser")
    finally:
        for h in heaps:
            h.close()
    return 0


# ---- diff ----------------------------------------------------------------

def diff(args: argparse.Namespace) -> int:
    from .snapshot import diff as snapshot_diff
    from .snapshot import load_json

    a, b = load_json(args.a), load_json(args.b)
    d = snapshot_diff(a, b)
    if args.json:
        json.dump(d.to_dict(), sys.stdout, indent=2, allow_nan=False)
        sys.stdout.write("\n")
    else:
        print(f"{args.a} -> {args.b}")
        print(d)
    return 1 if args.exit_code and d else 0


# ---- demo ----------------------------------------------------------------

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
        print(f"  {goalloc.NUM_SPAN_CLASSES} mcentrals, "
              f"{info.procs} mcache(s)")
        p = h.alloc(100_000)
        print(f"\nalloc(100_000) -> {p:#x}")
        print(f"  span_of: {h.span_of(p)}")
        print(f"  head hint now {h.hints()[0]}")
        q = h.alloc(100 << 20)
        print(f"alloc(100 MiB) -> {q:#x}: the heap grew to "
              f"{len(h.arenas())} arenas")
        for arena in h.arenas():
            print(f"    {arena}")
        small = [h.alloc(24) for _ in range(3)]
        span = h.span_of(small[0])
        assert span is not None
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


# ---- run, preload-path -----------------------------------------------------

def run_program(args: argparse.Namespace) -> int:
    """Exec args.cmd on goalloc (goalloc.preload); returns only when the
    command cannot be run: 127 if it is not found, 126 otherwise (as a
    shell)."""
    from goalloc.preload import exec_on_goalloc, preload_path

    cmd = list(args.cmd)
    if cmd[:1] == ["--"]:
        cmd = cmd[1:]
    if not cmd:
        raise UsageError("run: no command given (run [--procs N] [--stats "
                         "FILE] -- CMD ARGS...)")
    preload_path()  # not built: an error, before anything runs
    try:
        exec_on_goalloc(cmd, procs=args.procs, stats=args.stats)
    except FileNotFoundError:
        print(f"goalloc: error: {cmd[0]}: command not found",
              file=sys.stderr)
        return 127
    except OSError as e:
        print(f"goalloc: error: {cmd[0]}: {e.strerror or e}",
              file=sys.stderr)
        return 126


def print_preload_path(args: argparse.Namespace) -> int:
    from goalloc.preload import preload_path

    print(preload_path())
    return 0


# ---- command line --------------------------------------------------------

class UsageError(Exception):
    """A bad command line found after parsing: exit status 2."""


class _Parser(argparse.ArgumentParser):
    """argparse, with errors on one line: 'goalloc: error: ...'."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"goalloc: error: {message} (see '{self.prog} "
                     f"--help')\n")


def _int_at_least(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            v = int(text, 10)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected an integer, got {text!r}") from None
        if v < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, not {v}")
        return v
    parse.__name__ = "integer"
    return parse


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--backing", choices=("os", "virtual"), default=None,
                   help="address space: real mmap ('os', linux/amd64) or "
                        "simulated ('virtual'); default: os on Linux x86-64")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction,
                   default=None,
                   help="draw a progress bar (tqdm) on stderr (default: "
                        "when stderr is a terminal)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=prog_name(), description=__doc__.splitlines()[0],
                     epilog="Run '%(prog)s COMMAND --help' for a command's "
                            "options.")
    parser.add_argument("--version", action="version",
                        version=f"%(prog)s {goalloc.__version__}")
    sub = parser.add_subparsers(dest="command", required=True,
                                metavar="COMMAND")

    t = sub.add_parser(
        "tour", help="the guided tour: mallocinit, a workload, stats, plots",
        description="mallocinit step by step on a real heap (the arena "
                    "hints, the mheap, the 134 mcentrals, m0's mcache), a "
                    "first allocation, a go_mix workload replayed in C with "
                    "a progress bar, MemStats, the fragmentation figures, "
                    "and plots saved as PNG files.")
    t.add_argument("--outdir", default="goalloc-tour", metavar="DIR",
                   help="where the PNG files go (created if missing; "
                        "default: %(default)s)")
    t.add_argument("--ops", type=_int_at_least(0), default=1_000_000,
                   metavar="N", help="ops of the workload (default: "
                                     "%(default)s)")
    t.add_argument("--live", type=_int_at_least(1), default=20_000,
                   metavar="N", help="live objects the workload keeps "
                                     "(default: %(default)s)")
    t.add_argument("--seed", type=_int_at_least(0), default=0,
                   help="workload seed (default: %(default)s)")
    t.add_argument("--procs", type=_int_at_least(1), default=1, metavar="N",
                   help="Ps, each with an mcache (default: %(default)s)")
    _add_common(t)
    t.set_defaults(func=tour)

    r = sub.add_parser(
        "replay", help="replay a trace file; report the peak and the end",
        description="Replay a trace file (goalloc text or binary format, "
                    "see goalloc.trace) on a fresh heap in C; print the "
                    "replay throughput, the peak of the heap counters over "
                    "the samples, the final MemStats and fragmentation (or "
                    "all of it as JSON with --json); write the sampled "
                    "timeline, the final heap's snapshot and plots.")
    r.add_argument("file", metavar="FILE", help="the trace (.trace, .txt or "
                                                ".gatrace)")
    r.add_argument("--sample-every", type=_int_at_least(0), default=None,
                   metavar="N", help="sample the heap counters every N ops "
                                     "(0: only at the end; default: about "
                                     "1000 samples)")
    r.add_argument("--out", default=None, metavar="PATH",
                   help="write the timeline: CSV if PATH ends in .csv (the "
                        "samples), JSON if .json, NumPy if .npz (both with "
                        "every id's address; goalloc.Timeline.load reads "
                        "all three)")
    r.add_argument("--snapshot", default=None, metavar="PATH",
                   help="write the final heap's snapshot as JSON (for "
                        "'diff')")
    r.add_argument("--json", action="store_true",
                   help="print the report as one JSON document on stdout "
                        "(peak, final MemStats, fragmentation, throughput) "
                        "instead of text")
    r.add_argument("--plots", default=None, metavar="DIR",
                   help="save plots as PNG files in DIR")
    r.add_argument("--procs", type=_int_at_least(1), default=None,
                   metavar="N", help="Ps of the heap (default: the highest "
                                     "P the trace uses, plus one)")
    r.add_argument("--collector", choices=("free", "gc"), default="free",
                   help="'free': the trace's frees free (the default); "
                        "'gc': they drop, and Go's collector cycles free "
                        "(design §14)")
    r.add_argument("--gogc", type=_gogc, default=None, metavar="N|off",
                   help="GOGC for the pacer (default 100)")
    _add_common(r)
    r.set_defaults(func=replay)

    df = sub.add_parser(
        "diff", help="what changed between two heap snapshots",
        description="Compare two heap snapshots (goalloc.snapshot JSON "
                    "files, e.g. from 'replay --snapshot'): the MemStats "
                    "fields, in-use spans, pages and objects per size "
                    "class, spans new, gone or changed, arenas, "
                    "fragmentation.")
    df.add_argument("a", metavar="A", help="the first snapshot")
    df.add_argument("b", metavar="B", help="the second snapshot")
    df.add_argument("--json", action="store_true",
                    help="print the difference as JSON")
    df.add_argument("--exit-code", action="store_true",
                    help="exit with status 1 when the heaps differ (as "
                         "diff(1) does); default: 0 either way")
    df.set_defaults(func=diff)

    rp = sub.add_parser(
        "report", help="replay traces; write one self-contained HTML report",
        description="Replay each trace on a fresh heap (under each "
                    "--release) and write one HTML file that opens in a "
                    "browser with no server and no network: the runs "
                    "compared (goalloc.compare) and overlaid, and for each "
                    "run its timeline, MemStats with each field's meaning "
                    "and unit, fragmentation, per-size-class table and "
                    "heap figures.  Needs goalloc[report].")
    rp.add_argument("files", nargs="+", metavar="TRACE",
                    help="trace files (.trace, .txt or .gatrace)")
    rp.add_argument("-o", "--out", default="goalloc-report.html",
                    metavar="PATH", help="the HTML file (default: "
                                         "%(default)s)")
    rp.add_argument("--release", action="append",
                    choices=("go1.13.8", "go1.13.0"),
                    help="replay under this release's page heap; repeat to "
                         "compare releases (default: go1.13.8)")
    rp.add_argument("--procs", type=_int_at_least(1), default=None,
                    metavar="N", help="Ps of each heap (default: what the "
                                      "trace uses)")
    rp.add_argument("--sample-every", type=_int_at_least(0), default=None,
                    metavar="N", help="sample every N ops (default: about "
                                      "1000 samples)")
    rp.add_argument("--title", default=None, help="the report's title")
    _add_common(rp)
    rp.set_defaults(func=report)

    c = sub.add_parser(
        "capture", help="run CMD under a malloc-capture shim; save traces",
        description=_capture.CAPTURE_DESCRIPTION,
        usage="%(prog)s [options] [--] CMD [ARGS...]")
    _capture.add_capture_arguments(c)
    c.set_defaults(func=lambda args: _capture.run_capture(args, c))

    rn = sub.add_parser(
        "run", help="run CMD with Go 1.13's allocator as its malloc",
        description="Run CMD with goalloc's malloc replacement preloaded "
                    "(LD_PRELOAD): every malloc, free, calloc, realloc and "
                    "aligned allocation of the program (and of the programs "
                    "it starts) goes to a Go 1.13 heap.  The command "
                    "replaces this process: its exit status is the "
                    "command's.",
        epilog="The library also reads GOALLOC_PROCS and GOALLOC_STATS "
               "when preloaded by hand (see 'preload-path' and "
               "goalloc.preload).")
    rn.add_argument("--procs", type=_int_at_least(1), default=None,
                    metavar="N", help="Ps of the heap; a thread runs as one "
                                      "P at a time (default: the CPUs the "
                                      "program may use, as GOMAXPROCS)")
    rn.add_argument("--stats", default=None, metavar="FILE",
                    help="at exit, write the command's heap as a "
                         "goalloc.snapshot JSON file (goalloc.snapshot."
                         "load_json reads it)")
    rn.add_argument("cmd", nargs=argparse.REMAINDER, metavar="-- CMD ARGS",
                    help="the command and its arguments")
    rn.set_defaults(func=run_program)

    pp = sub.add_parser(
        "preload-path", help="print the malloc replacement's path, for "
                             "LD_PRELOAD",
        description="Print the absolute path of goalloc's malloc "
                    "replacement: LD_PRELOAD=$(python -m goalloc "
                    "preload-path) CMD runs CMD on goalloc.")
    pp.set_defaults(func=print_preload_path)

    d = sub.add_parser("demo", help="a short walk through mallocinit",
                       description="mallocinit, the arena hints, a first "
                                   "large allocation, the heap growing at "
                                   "the hints, small and tiny objects, and "
                                   "MemStats.")
    d.add_argument("--goos", default="linux")
    d.add_argument("--goarch", default="amd64")
    d.add_argument("--race", action="store_true")
    d.add_argument("--backing", choices=("os", "virtual"), default=None)
    d.set_defaults(func=demo)
    return parser


def _gogc(text: str) -> int | str:
    """A --gogc value: an int, or "off"."""
    if text == "off":
        return "off"
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is neither an int nor 'off'") from None


def _fail(message: str, status: int = 1) -> int:
    message = " ".join(str(message).split()) or "unknown error"
    print(f"goalloc: error: {message}", file=sys.stderr)
    return status


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except UsageError as e:
        return _fail(str(e), 2)
    except KeyboardInterrupt:
        print("goalloc: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # stdout went away (| head): nothing more to say.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except OSError as e:
        where = f": {e.filename}" if e.filename is not None else ""
        return _fail(f"{e.strerror or e}{where}")
    except (goalloc.GoallocError, ValueError, TypeError, MemoryError) as e:
        return _fail(str(e) or type(e).__name__)
    except Exception as e:  # never a traceback, unless asked for
        if os.environ.get("GOALLOC_DEBUG", "") not in ("", "0"):
            raise
        return _fail(f"unexpected {type(e).__name__}: {e} (GOALLOC_DEBUG=1 "
                     f"shows the traceback)")


if __name__ == "__main__":
    sys.exit(main())
