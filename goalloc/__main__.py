"""goalloc: watch a Go 1.13 heap being born, and replay traces.

Run as the installed command `goalloc` or as `python -m goalloc` (the
latter from any directory but the root of a source checkout, whose
goalloc/ folder has no built extension).

Commands:
  tour     the guided tour: mallocinit step by step (hints, the mheap, the
           134 mcentrals, m0's mcache), a Go-like workload replayed in C,
           MemStats, fragmentation, and plots written as PNG files.
  replay   replay a trace file (text or binary) on a fresh heap; write the
           sampled timeline as CSV or JSON, optionally plots.
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
import os
import sys
import time
from collections.abc import Callable
from typing import Any, NoReturn, TextIO

import goalloc


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


def terminal_columns(stream: Any) -> int:
    """Columns of the terminal stream writes to: $COLUMNS when set (as
    shutil.get_terminal_size), else the terminal's own width (of this
    stream: stdout may be redirected while stderr is a terminal), else
    80."""
    try:
        cols = int(os.environ.get("COLUMNS", ""))
    except ValueError:
        cols = 0
    if cols <= 0:
        try:
            cols = os.get_terminal_size(stream.fileno()).columns
        except (AttributeError, ValueError, OSError):
            cols = 0
    return cols if cols > 0 else 80


class ProgressBar:
    """A text progress bar on stderr, redrawn in place with \\r.

    Called as Heap.replay's progress(done, total) callback.  Draws only
    when enabled (by default: when stderr is a terminal).  Each line fits
    the terminal, one column short of its width (a line that reaches the
    last column wraps on many terminals, and every redraw would then leave
    a line behind): the rate goes first, then the op counts, then the bar
    (it shrinks from width down to MIN_BAR cells first).  The width is
    read again at every redraw, so a resized terminal is followed."""

    MIN_BAR = 10      # fewer cells than this: no bar
    RATE_WIDTH = 14   # "123.45 M ops/s"

    def __init__(self, label: str, enabled: bool | None = None,
                 stream: TextIO | None = None, width: int = 30) -> None:
        self.label = label
        self.stream = sys.stderr if stream is None else stream
        self.width = width
        self.enabled = (self.stream.isatty() if enabled is None
                        else enabled)
        self.start = time.perf_counter()
        self.drawn = False
        self.last = 0  # length of the line drawn last

    def line(self, done: int, total: int, columns: int) -> str:
        """The line for done of total ops, at most columns - 1 long.  The
        counts and the rate are padded to their widest, so that the bar
        keeps its length through a run."""
        room = max(1, columns - 1)
        frac = done / total if total else 1.0
        pct = f"{100 * frac:5.1f}%"
        widest = f"{total:,}/{total:,} ops"
        counts = f"{done:,}/{total:,} ops".rjust(len(widest))
        rate = _rate(done, time.perf_counter() - self.start).rjust(
            self.RATE_WIDTH)
        for tail in (f" {pct}  {counts}  {rate}", f" {pct}  {counts}",
                     f" {pct}"):
            cells = min(self.width, room - len(self.label) - 3 - len(tail))
            if cells >= min(self.MIN_BAR, self.width):
                n = int(frac * cells)
                return f"{self.label} [{'#' * n}{'.' * (cells - n)}]{tail}"
        return f"{self.label} {pct}"[:room]

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        columns = terminal_columns(self.stream)
        text = self.line(done, total, columns)
        # blank out what a longer previous line left, within the terminal
        pad = max(0, min(self.last, columns - 1) - len(text))
        self.stream.write(f"\r{text}{' ' * pad}")
        self.stream.flush()
        self.last = len(text)
        self.drawn = True

    def close(self) -> None:
        if self.drawn:
            self.stream.write("\n")
            self.stream.flush()
            self.drawn = False


def save_plots(heap: goalloc.Heap, timeline: Any, outdir: str,
               prefix: str, indent: str = "") -> list[str] | None:
    """goalloc.plot.save_all, printing the paths; or a one-line note (and
    None) when plotting is not available (no matplotlib, or no
    goalloc.plot.save_all).  Other plotting errors propagate."""
    os.environ.setdefault("MPLBACKEND", "Agg")  # files only, no display

    def note(e: Exception) -> None:
        print(f"{indent}plots not written: {e} (pip install "
              f"'goalloc[plot]' for matplotlib)")

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
)


def _print_memstats(st: goalloc.MemStats, indent: str = "  ") -> None:
    print(f"{indent}{'field':14} {'value':>16}  {'':10}  meaning")
    for name, meaning in MEMSTATS_ROWS:
        v = getattr(st, name)
        human = _bytes(v) if name not in ("heap_objects", "mallocs",
                                          "frees") else ""
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
        bar = ProgressBar("   replay", args.progress)
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
    return 0


# ---- replay --------------------------------------------------------------

def replay(args: argparse.Namespace) -> int:
    import numpy as np

    from .trace import ALLOC, MAX_REPLAY_ID, Trace

    out = args.out
    if out is not None and not out.endswith((".csv", ".json")):
        raise UsageError(f"--out {out!r}: the file name must end in .csv "
                         f"or .json")
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
    print(f"{args.file}: {n:,} ops ({nalloc:,} allocs, {n - nalloc:,} "
          f"frees), loaded in {load_s:.2f} s")
    nids = trace.nids
    file_ids = None
    if nids > min(max(4 * n, 1 << 24), MAX_REPLAY_ID + 1):
        # Sparse ids (addresses, hashes): the replay keeps tables indexed
        # by id (9 bytes per id), so number them densely first.
        trace, file_ids = trace.renumbered()
        print(f"  ids are sparse (largest {nids - 1:,}): renumbered "
              f"0..{len(file_ids) - 1:,} for the replay")
    every = args.sample_every
    if every is None:
        every = max(1, n // 1000)
    with goalloc.Heap(backing=args.backing, procs=procs) as h:
        info = h.info()
        bar = ProgressBar("replay", args.progress)
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
        print(f"replayed on a {info.goos}/{info.goarch} heap ({info.backing}"
              f" backing, {procs} P) in {dt:.3f} s: {_rate(n, dt)}; "
              f"{len(tl)} samples"
              f"{f' (every {every:,} ops)' if every else ''}")
        st = h.stats()
        print("final heap:")
        _print_memstats(st)
        print("fragmentation:")
        _print_fragmentation(h.fragmentation())
        if out is not None:
            tl.save(out)
            kind = "CSV" if out.endswith(".csv") else "JSON"
            print(f"timeline: {out} ({kind}"
                  f", {len(tl)} rows)")
        if args.plots is not None:
            stem = os.path.splitext(os.path.basename(args.file))[0] or "trace"
            print("plots:")
            save_plots(h, tl, args.plots, stem, indent="  ")
    return 0


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


# ---- capture -------------------------------------------------------------

def _capture_main() -> Callable[..., int] | None:
    """goalloc.capture.main_capture, if this build has it."""
    try:
        from goalloc.capture import main_capture
    except ImportError:
        return None
    return main_capture


def _run_capture(capture: Callable[..., int], words: list[str]) -> int:
    """main_capture(words), its command-line errors on one line like ours
    ("goalloc: error: ..." instead of argparse's usage block)."""
    return capture(words, prog=f"{prog_name()} capture",
                   parser_class=_Parser)


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
                   help="draw a progress bar on stderr (default: when "
                        "stderr is a terminal)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=prog_name(), description=__doc__.splitlines()[0],
                     epilog="Run '%(prog)s COMMAND --help' for a command's "
                            "options.")
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
        "replay", help="replay a trace file; write the timeline",
        description="Replay a trace file (goalloc text or binary format, "
                    "see goalloc.trace) on a fresh heap in C, print the "
                    "final MemStats, fragmentation and replay throughput, "
                    "and write the sampled timeline.")
    r.add_argument("file", metavar="FILE", help="the trace (.trace, .txt or "
                                                ".gatrace)")
    r.add_argument("--sample-every", type=_int_at_least(0), default=None,
                   metavar="N", help="sample the heap counters every N ops "
                                     "(0: only at the end; default: about "
                                     "1000 samples)")
    r.add_argument("--out", default=None, metavar="PATH",
                   help="write the timeline: CSV if PATH ends in .csv, JSON "
                        "if .json")
    r.add_argument("--plots", default=None, metavar="DIR",
                   help="save plots as PNG files in DIR")
    r.add_argument("--procs", type=_int_at_least(1), default=None,
                   metavar="N", help="Ps of the heap (default: the highest "
                                     "P the trace uses, plus one)")
    _add_common(r)
    r.set_defaults(func=replay)

    if _capture_main() is not None:
        # Listed here for --help; main() hands the words after "capture"
        # to goalloc.capture.main_capture, which parses them itself.
        sub.add_parser("capture", add_help=False,
                       help="run CMD under a malloc-capture shim; save "
                            "traces (see 'capture --help')")

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


def _fail(message: str, status: int = 1) -> int:
    message = " ".join(str(message).split()) or "unknown error"
    print(f"goalloc: error: {message}", file=sys.stderr)
    return status


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    capture = _capture_main()
    if capture is not None and argv[:1] == ["capture"]:
        def run() -> int:
            assert capture is not None
            return _run_capture(capture, argv[1:])
    else:
        args = build_parser().parse_args(argv)

        def run() -> int:
            return int(args.func(args))
    try:
        return int(run())
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
