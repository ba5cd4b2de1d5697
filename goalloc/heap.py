"""Heap: one Go 1.13 heap, from mallocinit on.

The allocation calls (alloc, free, scavenge) are the C type's own
methods, so a call costs one C function; the bulk calls (alloc_many,
free_many) convert their input with NumPy and run one C loop; the
introspection calls turn the core's tuples into typed records.
"""
from __future__ import annotations

import inspect
import operator
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from . import _core
from ._bulk import uint64_column
from ._options import Backing, Collector, Goarch, Goos, Release
from ._records import (
    Arena,
    ArenaHint,
    Cache,
    Central,
    GCCycle,
    GCState,
    HeapInfo,
    Span,
    SpanObjects,
)
from .fragmentation import Fragmentation
from .stats import MemStats

if TYPE_CHECKING:
    import numpy as np

    from .timeline import Timeline
    from .trace import Trace


class Heap(_core.Heap):
    """A Go 1.13 heap: ``Heap()`` runs ``runtime.mallocinit``.

    goos, goarch, race: the Go platform whose choices the heap makes
    (hint formula, arena size, address bits, struct sizes).
    backing: "os" maps real memory at real addresses (linux/amd64 only);
    "virtual" simulates the address space.  The default is "os" for
    linux/amd64 on a Linux x86-64 host and "virtual" otherwise.
    procs: the number of Ps, each with its own mcache.
    scavenge_goal: retained bytes (heap_sys - heap_released) above which
    the heap scavenges synchronously; by default the release's goal
    before a GC: 0 for go1.13.8, 4,923,392 for go1.13.0.
    gogc: instead of scavenge_goal, the goal the release has with this
    GOGC until a GC completes (an int; "off" or negative: GOGC=off):
    go1.13.0's next_gc + 10% after gcinit (with GOGC=off no allocation
    ever scavenges); go1.13.8 has no goal before the first GC, so 0
    whatever GOGC is.
    release: whose page heap: "go1.13.8" (the default; go1.13.3 and every
    later 1.13 release) grows by the pages asked for inside the current
    arena and scavenges on growth; "go1.13.0" (or "go1.13", Go's tag for
    it; also go1.13.1 and go1.13.2) grows by whole arenas and scavenges
    when an allocation takes released memory.
    sys_limit: simulated RAM: growth beyond this heap_sys fails.
    metadata_limit: the most real memory the heap's arena metadata may
    take (about 66 KiB per 64 MiB arena on linux/amd64, on either
    backing; h.info().metadata_bytes); growth past it raises
    OutOfMemoryError.  Default: half the machine's RAM; 0: no limit.
    binary_end: 32-bit platforms: where the Go binary (brk) ends.
    seed: treap priorities.
    collector: "free" (the default): objects are freed explicitly with
    free(); "gc": Go 1.13's collector frees them.  The program drop()s
    its last reference to an object; a GC cycle (started by allocation
    when heap_live reaches the trigger, as Go's mallocgc starts one, or by
    gc()) marks what was not dropped, and sweeping frees the rest.  gogc
    paces the cycles (next_gc = heap_marked * (1 + GOGC/100)).
    background_sweep: GC mode: None (the default) sweeps every span right
    after each cycle, as Go's background sweeper does on a spare P; K >= 0
    sweeps K spans after each allocation that refills an mcache or is
    large (0: only the proportional sweeper, cacheSpan and the page
    reclaimer sweep, as with a busy GOMAXPROCS=1 program).
    background_scavenge: GC mode: True (the default) runs Go 1.13's
    background scavenger on the simulated clock: after each cycle it
    gets the time to return what the heap retains above the scavenger
    goal at one page per millisecond (design §14.11); False leaves only
    the scavenging on growth and free_os_memory().
    """

    __slots__ = ()

    # The keywords of the binding's Heap (csrc/python/heap.c, kwlist),
    # written out so that inspect.signature, help() and type checkers
    # show them with their defaults.  Where a default depends on
    # something else it is None: backing (the host and platform),
    # scavenge_goal (the release), gogc (100, but gogc and scavenge_goal
    # exclude each other), metadata_limit (the machine's RAM);
    # sys_limit=None is no limit.  seed and binary_end are the core's
    # defaults (ga_options_init).  Construction only: the calls on a heap
    # stay the C type's own.
    def __new__(cls, *, goos: Goos = "linux", goarch: Goarch = "amd64",
                race: bool = False, backing: Backing | None = None,
                procs: int = 1, scavenge_goal: int | None = None,
                sys_limit: int | None = None,
                binary_end: int = 0x08200000,
                seed: int = 0x2545F4914F6CDD1D,
                gogc: int | Literal["off"] | None = None,
                release: Release = "go1.13.8",
                metadata_limit: int | None = None,
                collector: Collector = "free",
                background_sweep: int | None = None,
                background_scavenge: bool = True) -> Heap:
        return super().__new__(
            cls, goos=goos, goarch=goarch, race=race, backing=backing,
            procs=procs, scavenge_goal=scavenge_goal, sys_limit=sys_limit,
            binary_end=binary_end, seed=seed, gogc=gogc, release=release,
            metadata_limit=metadata_limit, collector=collector,
            background_sweep=background_sweep,
            background_scavenge=background_scavenge)

    __signature__: ClassVar[inspect.Signature]

    def hints(self) -> list[ArenaHint]:
        """The arena hint list, head (tried next) first."""
        return [ArenaHint(a, d) for a, d in self._hints()]

    def arenas(self) -> list[Arena]:
        """Mapped arenas in the order they were created (allArenas)."""
        return [Arena(*t) for t in self._arenas()]

    def spans(self) -> list[Span]:
        """Every span of the mapped arenas, in address order."""
        return [Span(*t) for t in self._spans()]

    def span_of(self, addr: int) -> Span | None:
        """Go's spanOf: the span holding addr, or None outside the arenas."""
        t = self._span_of(addr)
        return None if t is None else Span(*t)

    def stats(self) -> MemStats:
        """runtime.ReadMemStats: exact Go-style memory statistics."""
        return MemStats.from_dict(self._stats())

    def gc_state(self) -> GCState:
        """The collector's pacing and sweep state (GC mode)."""
        return GCState(**self._gc_state())

    def gc_cycles(self) -> list[GCCycle]:
        """One record per completed GC cycle, oldest first."""
        return [GCCycle(*t) for t in self._gc_cycles()]

    def centrals(self) -> list[Central]:
        """All 134 mcentrals, indexed by span class."""
        return [Central(*t) for t in self._centrals()]

    def caches(self) -> list[Cache]:
        """Each P's mcache (P 0's is m0's)."""
        out = []
        for p, tiny, off, tinyallocs, alloc in self._caches():
            spans = {spc: base for spc, base in enumerate(alloc) if base}
            out.append(Cache(p, tiny, off, tinyallocs, spans))
        return out

    def span_objects(self, base: int) -> SpanObjects:
        """Slot states of the in-use small span that starts at base."""
        base = operator.index(base)  # once: __index__ may not repeat itself
        states, marks = self._span_objects(base)
        span = self.span_of(base)
        assert span is not None
        tiny = marks if span.spanclass == 5 else ()
        return SpanObjects(base, span.elemsize, states, tiny)

    def alloc_many(self, sizes: Any, /, *, noscan: bool = False,
                   p: int = 0) -> np.ndarray:
        """Allocate sizes[0], sizes[1], ... in order, as that many
        ``alloc(size, noscan=noscan, p=p)`` calls would (the same
        addresses, the same heap afterwards), in one C loop without the
        GIL; return the addresses as a uint64 array.  As for alloc,
        noscan=True marks pointer-free objects (sizes under 16 bytes then
        go to the tiny allocator).

        sizes: a 1-D array of any integer dtype, a buffer (array.array)
        or a sequence of ints (list, range); it is copied first.  Before
        anything is allocated: TypeError for non-integers, ValueError for
        2-D input, a bad p, a negative size or one beyond maxAlloc (with
        ``.index``, the position in sizes).  Out of memory part way
        raises OutOfMemoryError with ``.index`` (the size that failed)
        and ``.addresses`` (those allocated before it, which stay
        allocated: free them with free_many).  Other calls on the heap
        raise HeapBusyError while the loop runs.
        """
        v, bad = uint64_column(sizes, "sizes")
        self._alloc_many(v, bad, noscan=noscan, p=p)  # addresses in place
        return v

    def free_many(self, addrs: Any, /) -> None:
        """Free addrs[0], addrs[1], ... in order, as that many ``free``
        calls would, in one C loop without the GIL.

        addrs: as alloc_many's sizes (copied first; TypeError for
        non-integers, ValueError for 2-D input).  The first address
        free() would refuse stops the loop and raises free()'s exception
        (InvalidFreeError, DoubleFreeError, ...; the message names the
        address) with ``.index``, its position in addrs; the frees
        before it stay done, the refused one changed nothing.  Other
        calls on the heap raise HeapBusyError while the loop runs.
        """
        col, bad = uint64_column(addrs, "addrs")
        self._free_many(col, bad)

    def replay(self, trace: Trace, sample_every: int = 0,
               progress: Callable[[int, int], None] | bool | None = None,
               chunk: int = 0) -> Timeline:
        """Apply every op of trace in C, the GIL released, and return the
        Timeline: the counters every sample_every ops (and after the last
        op), fragmentation metrics, and the address each id got.

        sample_every and chunk: ints in [0, 2**64) (TypeError,
        ValueError otherwise, before anything runs).
        progress(done, total) is called between chunks of ops (chunk ops
        each; 100 chunks by default when progress is given; a
        non-callable progress is a TypeError before anything runs).
        progress=True draws a tqdm bar (tqdm.auto: a widget in a
        notebook, text on stderr elsewhere; extra goalloc[progress]).  The
        heap stays busy from the first op to the last, progress calls
        included: any other call on it, from another thread or from
        progress itself, raises HeapBusyError.  An exception progress
        raises (KeyboardInterrupt too) stops the replay and propagates;
        the ops before it stay applied.  A bad op (free of an id that is
        not live, alloc of a live id) raises TraceError naming its index;
        the ops before it stay applied and the heap stays consistent.
        """
        from .trace import replay

        return replay(self, trace, sample_every, progress, chunk)

    def span_array(self) -> np.ndarray:
        """Every span as a NumPy structured array (goalloc.arrays)."""
        from .arrays import span_array

        return span_array(self)

    def object_array(self) -> np.ndarray:
        """Every live object as a NumPy structured array (goalloc.arrays)."""
        from .arrays import object_array

        return object_array(self)

    def page_array(self) -> np.ndarray:
        """One code per mapped page (goalloc.arrays.page_array)."""
        from .arrays import page_array

        return page_array(self)

    def fragmentation(self) -> Fragmentation:
        """The fragmentation metrics now (see goalloc.fragmentation)."""
        return Fragmentation.from_counters(self._counters())

    def info(self) -> HeapInfo:
        """The platform and options this heap models."""
        return HeapInfo(**self._info())

    def __enter__(self) -> Heap:
        super().__enter__()
        return self

    def __repr__(self) -> str:
        if self.closed:
            return "<goalloc.Heap closed>"
        try:
            i = self.info()
        except _core.HeapBusyError as e:
            return f"<goalloc.Heap ({e})>"
        except _core.HeapCorruptionError as e:
            return f"<goalloc.Heap poisoned: {e}>"
        return (f"<goalloc.Heap {i.goos}/{i.goarch}{' race' if i.race else ''}"
                f" backing={i.backing} procs={i.procs} release={i.release}>")


# inspect.signature(Heap): __new__'s keywords, their annotations evaluated
# (this module's `from __future__ import annotations` leaves them strings)
_new = inspect.signature(Heap.__new__, eval_str=True)
Heap.__signature__ = _new.replace(
    parameters=list(_new.parameters.values())[1:])
del _new
