"""Typed, immutable records of goalloc's introspection (design §12.2).

The C core defines each record once (the X-macros of csrc/goalloc.h),
and _core exports those definitions: SPAN_FIELDS, HEAP_INFO_FIELDS, ...,
tuples of (name, type, doc).  The classes here are written out so that
type checkers see their fields; tests/test_records.py checks each
against its definition (names, order and types), and the field docs
below come from it.  Two fields keep the names goalloc gave them before
the C facade was named after Go (PY_NAMES).
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from typing import Any, NamedTuple

from . import _core

# C facade name -> Python record name, where they differ.
PY_NAMES = {"index": "idx", "nsmallfree": "nfree"}

# How many entries of a long list a repr shows.
REPR_SHOW = 3


def hex_addr(addr: int) -> str:
    """An address as every repr shows it: 0x00c000000000."""
    return f"{addr:#014x}"


def compact(items: Sequence[str], what: str) -> str:
    """A list in a repr: its length and its first REPR_SHOW items."""
    head = ", ".join(items[:REPR_SHOW])
    more = ", ..." if len(items) > REPR_SHOW else ""
    return f"[{len(items)} {what}{': ' if items else ''}{head}{more}]"


def record_repr(record: Any, addresses: Iterable[str]) -> str:
    """A dataclass's repr with the named fields as addresses in hex."""
    hexed = set(addresses)
    parts = (f"{f.name}={hex_addr(getattr(record, f.name))}"
             if f.name in hexed else f"{f.name}={getattr(record, f.name)!r}"
             for f in fields(record))
    return f"{type(record).__name__}({', '.join(parts)})"


class ArenaHint(NamedTuple):
    """One of Go's arena hints (runtime.arenaHint): where to grow next."""

    addr: int
    down: bool

    def __repr__(self) -> str:
        return f"ArenaHint(addr={self.addr:#014x}, down={self.down})"


class Arena(NamedTuple):
    """A mapped heap arena (an entry of Go's mheap_.allArenas)."""

    base: int
    idx: int  # Go's arenaIdx: (base + arenaBaseOffset) / heapArenaBytes
    l1: int
    l2: int

    def __repr__(self) -> str:
        return (f"Arena(base={self.base:#014x}, idx={self.idx:#x}, "
                f"l1={self.l1}, l2={self.l2:#x})")


class Span(NamedTuple):
    """An mspan: a run of pages that is free, in use or manual."""

    base: int
    npages: int
    state: str  # a name of _core.SPAN_STATES: "inuse", "free", "manual"
    scavenged: bool
    spanclass: int
    sizeclass: int
    noscan: bool
    elemsize: int
    nelems: int
    alloc_count: int
    freeindex: int
    limit: int
    needzero: bool
    sweepgen: int = 0  # Go's sweepgen; gc_state().sweepgen is the heap's

    def __repr__(self) -> str:
        head = (f"Span(base={self.base:#014x}, npages={self.npages}, "
                f"state={self.state!r}")
        if self.state == "free":
            return head + f", scavenged={self.scavenged})"
        return (head + f", spanclass={self.spanclass}, "
                f"sizeclass={self.sizeclass}, noscan={self.noscan}, "
                f"elemsize={self.elemsize}, nelems={self.nelems}, "
                f"alloc_count={self.alloc_count}, freeindex={self.freeindex}, "
                f"limit={self.limit:#014x})")

    @property
    def end(self) -> int:
        """First address past the span."""
        return self.base + self.npages * _core.PAGE_SIZE

    @property
    def nbytes(self) -> int:
        return self.npages * _core.PAGE_SIZE


class Central(NamedTuple):
    """An mcentral: the spans of one span class (Go's mcentral)."""

    spanclass: int
    nonempty: tuple[int, ...]  # span bases with free slots
    empty: tuple[int, ...]  # full spans and spans cached in an mcache
    nmalloc: int  # as Go keeps it: a cached span's free slots count
    nfree: int  # objects freed (Go: mheap_.nsmallfree)

    def __repr__(self) -> str:
        return (f"Central(spanclass={self.spanclass}, nonempty="
                f"{compact([hex_addr(a) for a in self.nonempty], 'spans')},"
                f" empty={compact([hex_addr(a) for a in self.empty], 'spans')}"
                f", nmalloc={self.nmalloc}, nfree={self.nfree})")

    @property
    def sizeclass(self) -> int:
        return self.spanclass >> 1

    @property
    def noscan(self) -> bool:
        return bool(self.spanclass & 1)


class Cache(NamedTuple):
    """A P's mcache: its current span per span class and the tiny block."""

    p: int
    tiny: int  # current 16-byte tiny block, 0 if none
    tinyoffset: int
    # packed tiny requests since this P last allocated a span (Go's
    # alloc_m moves them into memstats.tinyallocs), or since flush()
    local_tinyallocs: int
    alloc: dict[int, int]  # spanclass -> span base (emptymspan omitted)

    def __repr__(self) -> str:
        spans = [f"{spc}: {hex_addr(b)}" for spc, b in self.alloc.items()]
        return (f"Cache(p={self.p}, tiny={hex_addr(self.tiny)}, "
                f"tinyoffset={self.tinyoffset}, "
                f"local_tinyallocs={self.local_tinyallocs}, "
                f"alloc={compact(spans, 'spans')})")


SLOT_FREE: int = _core.SLOT_FREE
SLOT_LIVE: int = _core.SLOT_LIVE
SLOT_FREED: int = _core.SLOT_FREED
SLOT_DROPPED: int = _core.SLOT_DROPPED


class SpanObjects(NamedTuple):
    """Per-slot state of a small span: SLOT_FREE, SLOT_LIVE, or SLOT_FREED
    (freed, reusable once the span is swept)."""

    base: int
    elemsize: int
    states: bytes
    tiny_marks: tuple[int, ...]  # per 16-byte block: live offsets (bits)

    def __repr__(self) -> str:
        counts = {name: self.states.count(state) for name, state in (
            ("live", SLOT_LIVE), ("free", SLOT_FREE), ("freed", SLOT_FREED),
            ("dropped", SLOT_DROPPED))}
        states = ", ".join(f"{n} {name}" for name, n in counts.items())
        marked = sum(1 for m in self.tiny_marks if m)
        return (f"SpanObjects(base={hex_addr(self.base)}, "
                f"elemsize={self.elemsize}, states=<{len(self.states)} "
                f"slots: {states}>, tiny_marks=<{len(self.tiny_marks)} "
                f"blocks, {marked} marked>)")

    @property
    def live(self) -> list[bool]:
        return [s == SLOT_LIVE for s in self.states]

    def as_array(self) -> object:
        """The states as a NumPy uint8 array (NumPy required)."""
        import numpy as np

        return np.frombuffer(self.states, dtype=np.uint8)


class SizeClass(NamedTuple):
    """A row of Go 1.13's size-class table (sizeclasses.go)."""

    sizeclass: int
    size: int
    npages: int
    objects: int
    tail_waste: int
    max_waste: float  # fraction, Go's header formula
    div_shift: int
    div_shift2: int
    div_mul: int
    base_mask: int


class BySize(NamedTuple):
    """MemStats.BySize entry: allocations of one size class."""

    size: int
    mallocs: int
    frees: int


@dataclass(frozen=True)
class HeapInfo:
    """The platform and configuration a heap models."""

    goos: str
    goarch: str
    race: bool
    backing: str
    procs: int
    ptr_size: int
    page_size: int
    heap_arena_bytes: int
    phys_page_size: int
    phys_huge_page_size: int
    max_alloc: int
    arena_l1_bits: int
    arena_l2_bits: int
    arena_base_offset: int
    zerobase: int
    pages_in_use: int
    scavenge_goal: int
    unscav_huge_pages: int
    nallspans: int
    release: str
    cur_arena_base: int
    cur_arena_end: int
    metadata_bytes: int
    metadata_limit: int
    # goalloc's own metadata, counted in no MemStats field (Go has none of
    # it): the per-span bitmap blocks (alloc, freed, used bits and
    # requested sizes), and the tiny class's block marks (6 bytes per slot
    # of each span that has served a tiny block)
    span_meta_bytes: int
    tiny_meta_bytes: int

    # fields that are addresses (arena_base_offset is added to them)
    ADDRESSES = ("arena_base_offset", "zerobase", "cur_arena_base",
                 "cur_arena_end")

    def __repr__(self) -> str:
        return record_repr(self, self.ADDRESSES)


@dataclass(frozen=True)
class GCState:
    """The collector's state (collector="gc"; an explicit-free heap shows
    the pacing Go has before its first cycle)."""

    enabled: bool
    gogc: int
    phase: str
    sweepgen: int
    heap_live: int
    heap_marked: int
    gc_trigger: int
    next_gc: int
    trigger_ratio: float
    heapminimum: int
    pages_swept: int
    pages_in_use: int
    sweep_pages_per_byte: float
    reclaim_credit: int
    scavenge_goal: int
    heap_retained: int
    scavenge_bytes_per_ns: float
    num_gc: int
    background_sweep: int
    clock_ns: int


class GCCycle(NamedTuple):
    """One completed GC cycle."""

    num: int
    forced: bool
    heap_live_trigger: int
    gc_trigger: int
    heap_marked: int
    next_gc: int
    next_trigger: int
    trigger_ratio: float
    pages_swept: int
    heap_released: int
    clock_ns: int


def _document(record: Any, fields: tuple[tuple[str, str, str], ...]) -> None:
    """Give each field of a NamedTuple its doc from the core's definition
    (not Cache.alloc, a tuple in the core made a dict here)."""
    for name, typ, doc in fields:
        name = PY_NAMES.get(name, name)
        written = record.__annotations__[name]
        if getattr(written, "__forward_arg__", written) == typ:
            getattr(record, name).__doc__ = doc


for _record, _fields in ((ArenaHint, _core.HINT_FIELDS),
                         (Arena, _core.ARENA_FIELDS),
                         (Span, _core.SPAN_FIELDS),
                         (Central, _core.CENTRAL_FIELDS),
                         (Cache, _core.CACHE_FIELDS),
                         (GCCycle, _core.GC_CYCLE_FIELDS)):
    _document(_record, _fields)
del _record, _fields
