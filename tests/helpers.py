"""Shared helpers of the Python test suite (no fixtures here: see conftest).

Everything that encodes a Go 1.13 number is written from Go 1.13's rules
as docs/design.md states them, never read back from goalloc, so a
helper that compares against it is an independent check.
"""
from __future__ import annotations

import os
from collections.abc import Sequence

import goalloc

KiB = 1 << 10
MiB = 1 << 20
GiB = 1 << 30

PAGE = 8192                    # _PageSize
ARENA = 64 * MiB               # heapArenaBytes on linux/amd64
GO_HEAP_START = 0x00C000000000  # first default hint: 0<<40 | 0x00c0<<32
MAX_SMALL = 32768              # _MaxSmallSize

# The sanitizer CI run sets GOALLOC_ASAN=1.  Under AddressSanitizer the
# low default hints (0x00c000000000, 0x01c000000000, ...) lie in ASan's
# shadow memory or shadow gap, so the os backend's first arena lands at
# the first initial hint that is free instead.
ASAN = os.environ.get("GOALLOC_ASAN", "") not in ("", "0")

STAT_SYS_FIELDS = ("heap_sys", "stack_sys", "mspan_sys", "mcache_sys",
                   "buck_hash_sys", "gc_sys", "other_sys")

# Go 1.13 size classes (design §3.3): class -> (bytes/obj, pages/span).
GO113_CLASSES = {
    1: (8, 1), 2: (16, 1), 3: (32, 1), 4: (48, 1), 5: (64, 1), 6: (80, 1),
    7: (96, 1), 8: (112, 1), 9: (128, 1), 10: (144, 1), 11: (160, 1),
    12: (176, 1), 13: (192, 1), 14: (208, 1), 15: (224, 1), 16: (240, 1),
    17: (256, 1), 18: (288, 1), 19: (320, 1), 20: (352, 1), 21: (384, 1),
    22: (416, 1), 23: (448, 1), 24: (480, 1), 25: (512, 1), 26: (576, 1),
    27: (640, 1), 28: (704, 1), 29: (768, 1), 30: (896, 1), 31: (1024, 1),
    32: (1152, 1), 33: (1280, 1), 34: (1408, 2), 35: (1536, 1),
    36: (1792, 2), 37: (2048, 1), 38: (2304, 2), 39: (2688, 1),
    40: (3072, 3), 41: (3200, 2), 42: (3456, 3), 43: (4096, 1),
    44: (4864, 3), 45: (5376, 2), 46: (6144, 3), 47: (6528, 4),
    48: (6784, 5), 49: (6912, 6), 50: (8192, 1), 51: (9472, 7),
    52: (9728, 6), 53: (10240, 5), 54: (10880, 4), 55: (12288, 3),
    56: (13568, 5), 57: (14336, 7), 58: (16384, 2), 59: (18432, 9),
    60: (19072, 7), 61: (20480, 5), 62: (21760, 8), 63: (24576, 3),
    64: (27264, 10), 65: (28672, 7), 66: (32768, 4),
}

TINY_SPAN_CLASS = 5   # class 2 (16 bytes) noscan: tinySpanClass
TINY = 16             # maxTinySize, the tiny block size


def class_size(c: int) -> int:
    return GO113_CLASSES[c][0]


def class_npages(c: int) -> int:
    return GO113_CLASSES[c][1]


def class_nelems(c: int) -> int:
    """Objects per span: span bytes // object size (design §3.3)."""
    size, npages = GO113_CLASSES[c]
    return npages * PAGE // size


def class_of(size: int) -> int:
    """Smallest class whose size >= size (design §3.3), by linear search."""
    for c in range(1, 67):
        if GO113_CLASSES[c][0] >= size:
            return c
    raise ValueError(size)


def spanclass(c: int, noscan: bool) -> int:
    return c << 1 | int(noscan)


def tiny_align(off: int, size: int) -> int:
    """mallocgc's tiny alignment of offset off for a size-byte request."""
    if size % 8 == 0:
        a = 8
    elif size % 4 == 0:
        a = 4
    elif size % 2 == 0:
        a = 2
    else:
        a = 1
    return (off + a - 1) // a * a


def state(h: goalloc.Heap):
    """What a call that changes nothing must leave as it was: digest(), a
    hash of all allocator metadata (hints, arenas, every span with its
    slot bitmaps, requested sizes and tiny marks, the mcentrals, the
    mcaches, the counters MemStats is made of), and info(), for the few
    numbers digest() leaves out (nallspans, the metadata bytes)."""
    return h.digest(), h.info()


def npages_of(size: int) -> int:
    """Pages of a large object: ceil(size / 8192) (largeAlloc)."""
    return -(-size // PAGE)


def default_hints() -> list[int]:
    """mallocinit's default 64-bit hint addresses, in list order."""
    return [(i << 40) | (0x00C0 << 32) for i in range(0x80)]


def sum_sys(st: goalloc.MemStats) -> int:
    """Sys as Go's TestMemStats recomputes it from the *Sys fields."""
    return sum(getattr(st, f) for f in STAT_SYS_FIELDS)


def check_stat_identities(st: goalloc.MemStats) -> None:
    """Go's MemStats identities (design §11.8, design §11.9)."""
    assert st.sys == sum_sys(st)
    assert st.heap_sys == st.heap_idle + st.heap_inuse
    assert st.heap_released <= st.heap_idle
    assert st.alloc == st.heap_alloc
    assert st.heap_objects == st.mallocs - st.frees
    assert st.total_alloc >= st.alloc
    assert st.mspan_inuse <= st.mspan_sys
    assert st.mcache_inuse <= st.mcache_sys
    assert st.lookups == 0


def check_first_arena(backing: str, initial: Sequence[goalloc.ArenaHint],
                      after: Sequence[goalloc.ArenaHint],
                      arenas: Sequence[goalloc.Arena], grown: int) -> int:
    """Check where the first arena went and what it did to the hints.

    initial: hints() before the first growth; after: hints() right after
    it; grown: the bytes that growth reserved.  Returns the index in
    `initial` of the hint that was used.

    virtual: exactly the first hint, 0x00c000000000.  os: the arena base
    is one of the initial hints; every hint before it was discarded
    (mmap put the reservation elsewhere, so Go drops the hint), the used
    hint moved up by `grown`, the rest is untouched; without ASan the
    first hint is free on a Linux x86-64 host, so it is 0x00c000000000.
    """
    assert len(arenas) >= 1
    base = arenas[0].base
    addrs = [h.addr for h in initial]
    assert base in addrs, f"first arena {base:#x} is not an initial hint"
    k = addrs.index(base)
    assert not initial[k].down
    assert list(after) == [goalloc.ArenaHint(base + grown, False),
                           *initial[k + 1:]]
    if backing == "virtual" or not ASAN:
        assert base == GO_HEAP_START
        assert k == 0
    return k


def spans_by_state(h: goalloc.Heap, state: str) -> list[goalloc.Span]:
    return [s for s in h.spans() if s.state == state]


def check_span_walk(h: goalloc.Heap) -> list[goalloc.Span]:
    """Spans tile the mapped arenas and agree with the statistics.

    design §11.2, design §11.3, design §11.8: no gaps or overlaps
    inside an arena, heap_idle/heap_inuse/heap_released equal the sums
    over free/in-use/free-scavenged spans, and (linux/amd64, 4 KiB OS
    pages) no two adjacent free spans share the scavenged state.
    go1.13.8 (design §5.8): the rest of the current arena,
    [cur_arena_base, cur_arena_end), is mapped but no span; it counts as
    idle and released (ReadMemStatsSlow adds it to HeapReleased).
    """
    spans = h.spans()
    arenas = h.arenas()
    info = h.info()
    ab = info.heap_arena_bytes
    ungrown = info.cur_arena_end - info.cur_arena_base
    if info.release == "go1.13.0":
        assert info.cur_arena_base == info.cur_arena_end == 0
    else:
        assert info.release == "go1.13.8"
        assert ungrown >= 0 and info.cur_arena_end % ab == 0
    if ungrown:
        assert h.span_of(info.cur_arena_base) is None
        assert h.span_of(info.cur_arena_end - 1) is None
        assert all(not (s.base < info.cur_arena_end and
                        info.cur_arena_base < s.end) for s in spans)
    st = h.stats()
    assert sum(s.nbytes for s in spans) + ungrown == len(arenas) * ab == \
        st.heap_sys
    for a, b in zip(spans, spans[1:], strict=False):
        assert a.end <= b.base
        if a.end == b.base and a.state == b.state == "free":
            assert a.scavenged != b.scavenged, (a, b)
    for s in spans:
        if s.state != "free":
            assert not s.scavenged, s
    assert st.heap_inuse == sum(s.nbytes for s in spans if s.state == "inuse")
    assert st.heap_idle == ungrown + sum(s.nbytes for s in spans
                                         if s.state == "free")
    assert st.heap_released == ungrown + sum(
        s.nbytes for s in spans if s.state == "free" and s.scavenged)
    # Every live mspan struct is a span of the walk (the emptymspan
    # sentinel is not from spanalloc), so spanalloc.inuse is their count
    # times sizeof(mspan), 136 bytes on 64-bit (design §3.4, design §11.8);
    # allspans holds every struct ever carved, live or recycled.
    if info.ptr_size == 8:
        assert st.mspan_inuse == len(spans) * 136
    assert info.nallspans >= len(spans)
    assert info.pages_in_use == sum(s.npages for s in spans
                                    if s.state == "inuse")
    # design §11.3 (Go's TestUnscavHugePages)
    huge = info.phys_huge_page_size
    assert info.unscav_huge_pages == sum(
        huge_pages(s, huge) for s in spans
        if s.state == "free" and not s.scavenged)
    # spanOf: the first, last and a middle page map to the span
    # (interior entries of free spans may be stale in Go; goalloc's
    # span_of resolves them to the covering span).
    for s in spans:
        for addr in (s.base, s.base + (s.npages // 2) * PAGE, s.end - 1):
            assert h.span_of(addr) == s, (hex(addr), s)
    return spans


def huge_pages(s: goalloc.Span, huge: int) -> int:
    """Go 1.13's mspan.hugePages: aligned huge pages inside the span."""
    if huge == 0 or s.npages < huge // PAGE:
        return 0
    start, end = s.base, s.end
    if huge > PAGE:
        start = (start + huge - 1) & ~(huge - 1)
        end &= ~(huge - 1)
    return (end - start) // huge if start < end else 0


def heap_is_poisoned(h: goalloc.Heap) -> bool:
    if h.closed:
        return False
    try:
        h.hints()
    except goalloc.HeapCorruptionError:
        return True
    return False
