"""Bad input around small, tiny and large objects never changes the heap.

Design §10.2: every entry point validates before it changes anything; a
rejected call raises the exact exception and leaves the FULL
introspection as it was: hints, arenas, spans, stats, mcentrals,
mcaches, and the slot states and tiny marks of every in-use small span.
"""
from __future__ import annotations

import pytest

import goalloc
from goalloc import SLOT_FREE, SLOT_FREED
from helpers import ARENA, GO_HEAP_START, PAGE
from test_py_small_util import (TINY, TINY_SPAN_CLASS, class_nelems,
                                full_snapshot)


def raises_unchanged(h, exc, fn, *args, exact=True, **kwargs):
    """fn(*args, **kwargs) raises exc (exactly, unless exact=False) and
    changes nothing."""
    before = full_snapshot(h)
    with pytest.raises(exc) as ei:
        fn(*args, **kwargs)
    if exact:
        assert type(ei.value) is exc, repr(ei.value)
    assert full_snapshot(h) == before
    return ei.value


class World:
    """A heap with live, freed, cached and uncached objects of every kind."""

    def __init__(self, h: goalloc.Heap):
        self.h = h
        # class 4 (48 B, 170 per span, 32 B tail): one full uncached span
        # with a freed slot, and a cached span with live and freed slots
        self.full = [h.alloc(48) for _ in range(class_nelems(4))]
        self.cached = [h.alloc(48) for _ in range(10)]
        h.free(self.full[7])
        h.free(self.cached[3])
        # class 10 noscan (144 B, 56 per span, 128 B tail), flushed later
        self.flushed = [h.alloc(144, noscan=True) for _ in range(5)]
        # tiny: block A holds offsets 0, 2, 4 (4 freed); B is current
        self.ta = [h.alloc(2, noscan=True) for _ in range(3)]
        self.big_tiny = h.alloc(15, noscan=True)  # block B, not current
        h.free(self.ta[2])
        self.sixteen = h.alloc(16, noscan=True)
        # large objects: one live, one freed
        self.large = h.alloc(40_000)
        self.large_freed = h.alloc(100_000, noscan=True)
        h.free(self.large_freed)
        self.zero = h.alloc(0)

    def flush_some(self):
        """Flush, then free one object of the now uncached class-10 span."""
        self.h.flush()
        self.h.free(self.flushed[1])


@pytest.fixture
def world(rheap):
    return World(rheap)


# ---- stats() itself --------------------------------------------------------


def snapshot_without_stats(h):
    snap = full_snapshot(h)
    return snap[1:]


def test_stats_is_non_mutating(world):
    h = world.h
    h.stats()
    h.free(world.sixteen)
    h.alloc(24)
    before = snapshot_without_stats(h)
    st = h.stats()
    assert snapshot_without_stats(h) == before
    assert h.stats() == st


def test_stats_does_not_touch_caches(heap):
    """stats() must not disturb the mcaches (README: "stats() is exact
    and does not disturb the caches"), local_tinyallocs included."""
    h = heap
    for _ in range(5):
        h.alloc(1, noscan=True)               # 1 block + 4 packed
    caches = h.caches()
    assert caches[0].local_tinyallocs == 4
    st = h.stats()
    assert (st.mallocs, st.frees) == (5, 4)
    assert h.caches() == caches


# ---- double free -----------------------------------------------------------


def test_double_free_small(world):
    h = world.h
    raises_unchanged(h, goalloc.DoubleFreeError, h.free, world.cached[3])
    raises_unchanged(h, goalloc.DoubleFreeError, h.free, world.full[7])
    world.flush_some()
    # swept now: the slots are free again, and still known as freed
    s = h.span_of(world.cached[0])
    assert h.span_objects(s.base).states[3] == SLOT_FREE
    raises_unchanged(h, goalloc.DoubleFreeError, h.free, world.cached[3])
    raises_unchanged(h, goalloc.DoubleFreeError, h.free, world.full[7])
    # freed in an uncached span, waiting for cacheSpan's sweep
    s = h.span_of(world.flushed[0])
    assert h.span_objects(s.base).states[1] == SLOT_FREED
    raises_unchanged(h, goalloc.DoubleFreeError, h.free, world.flushed[1])


def test_double_free_tiny(world):
    h = world.h
    raises_unchanged(h, goalloc.DoubleFreeError, h.free, world.ta[2])
    h.free(world.big_tiny)                    # B's only object: B freed
    raises_unchanged(h, goalloc.DoubleFreeError, h.free, world.big_tiny)
    h.free(world.sixteen)
    raises_unchanged(h, goalloc.DoubleFreeError, h.free, world.sixteen)
    world.flush_some()
    for a in (world.ta[2], world.big_tiny, world.sixteen):
        raises_unchanged(h, goalloc.DoubleFreeError, h.free, a)


def test_double_free_large(world):
    h = world.h
    raises_unchanged(h, goalloc.DoubleFreeError, h.free, world.large_freed)
    h.free(world.large)
    raises_unchanged(h, goalloc.DoubleFreeError, h.free, world.large)


# ---- not an object start ---------------------------------------------------


def test_interior_pointers(world):
    h = world.h
    cases = []
    for a in (world.cached[0], world.cached[3], world.full[0], world.full[7]):
        cases += [a + 1, a + 8, a + 47]
    for a in world.flushed[:2]:
        cases += [a + 16, a + 143]
    cases += [world.large + 1, world.large + 8, world.large + PAGE,
              world.large + 39_999]
    cases += [world.large_freed + 8, world.large_freed + PAGE]
    for addr in cases:
        raises_unchanged(h, goalloc.InvalidFreeError, h.free, addr)
    world.flush_some()
    for addr in cases:
        raises_unchanged(h, goalloc.InvalidFreeError, h.free, addr)


def test_tiny_offsets_never_used(world):
    h = world.h
    a = world.ta[0]                           # live at 0, 2; freed at 4
    for off in (1, 3, 5, 6, 7, 8, 15):
        raises_unchanged(h, goalloc.InvalidFreeError, h.free, a + off)
    b = world.big_tiny                        # live at 0 (15 bytes)
    for off in (1, 8, 14, 15):
        raises_unchanged(h, goalloc.InvalidFreeError, h.free, b + off)
    for off in (1, 8, 15):
        raises_unchanged(h, goalloc.InvalidFreeError, h.free,
                         world.sixteen + off)


def test_never_allocated_slot_starts(world):
    h = world.h
    base = h.span_of(world.cached[0]).base
    for i in (10, 11, 63, 64, 169):           # past freeindex, cached span
        raises_unchanged(h, goalloc.InvalidFreeError, h.free, base + i * 48)
    fbase = h.span_of(world.flushed[0]).base
    tbase = h.span_of(world.ta[0]).base
    tslots = [tbase + i * TINY for i in (3, 4, 100, 511)]
    for addr in tslots:
        raises_unchanged(h, goalloc.InvalidFreeError, h.free, addr)
    world.flush_some()
    # swept, uncached: never-used slots are still not objects
    for i in (5, 6, 55):
        raises_unchanged(h, goalloc.InvalidFreeError, h.free,
                         fbase + i * 144)
    for i in (10, 169):
        raises_unchanged(h, goalloc.InvalidFreeError, h.free, base + i * 48)
    for addr in tslots:
        raises_unchanged(h, goalloc.InvalidFreeError, h.free, addr)


def test_tail_waste(world):
    h = world.h
    for a, size in ((world.cached[0], 48), (world.full[0], 48),
                    (world.flushed[0], 144)):
        s = h.span_of(a)
        assert s.limit == s.base + s.nelems * size < s.end
        for addr in (s.limit, s.limit + 8, s.end - 8, s.end - 1):
            raises_unchanged(h, goalloc.InvalidFreeError, h.free, addr)
    # a large object's span past its requested size
    s = h.span_of(world.large)
    assert s.limit == world.large + 40_000 and s.end == world.large + 5 * PAGE
    for addr in (s.limit, s.limit + 8, s.end - 1):
        raises_unchanged(h, goalloc.InvalidFreeError, h.free, addr)


def test_foreign_addresses(world):
    h = world.h
    arenas = h.arenas()
    end = max(a.base for a in arenas) + ARENA
    start = min(a.base for a in arenas)
    cases = [1, 8, 0x1000, 0x400000, start - 8, start - PAGE, end, end + 8,
             1 << 46, (1 << 47) - 8, (1 << 64) - 8, GO_HEAP_START - 16,
             world.zero + 8]
    for addr in cases:
        raises_unchanged(h, goalloc.InvalidFreeError, h.free, addr)
    # pages inside the arena never handed out: go1.13.0's free tail of
    # the arena, go1.13.8's curArena (no span)
    info = h.info()
    if info.release == "go1.13.0":
        free = [s for s in h.spans() if s.state == "free"]
        assert free and info.cur_arena_base == info.cur_arena_end
        lo, hi = free[-1].base, free[-1].end
    else:
        lo, hi = info.cur_arena_base, info.cur_arena_end
        assert lo < hi and h.span_of(lo) is None
    for addr in (lo, lo + 16, hi - 8):
        raises_unchanged(h, goalloc.InvalidFreeError, h.free, addr)
    # out of the 64-bit range: refused as a value, nothing changes
    for addr in (-1, -PAGE, 1 << 64, 1 << 70):
        raises_unchanged(h, ValueError, h.free, addr, exact=False)
    for addr in ("0", 1.0, None, b"\0"):
        raises_unchanged(h, TypeError, h.free, addr)


def test_zero_size_address(world):
    h = world.h
    assert h.alloc(0) == world.zero == h.alloc(0, noscan=True)
    before = full_snapshot(h)
    assert h.free(world.zero) is None
    assert h.free(world.zero) is None
    assert full_snapshot(h) == before
    assert h.alloc(0, p=0) == world.zero
    assert full_snapshot(h) == before


# ---- P, closed heap --------------------------------------------------------


@pytest.mark.parametrize("p", [2, -1, 1 << 40])
def test_wrong_p(backing, p):
    with goalloc.Heap(backing=backing, procs=2) as h:
        World(h)
        h.alloc(5, noscan=True, p=1)
        for size, noscan in ((48, False), (3, True), (16, True),
                             (100_000, False), (0, False)):
            raises_unchanged(h, ValueError, h.alloc, size, noscan=noscan,
                             p=p)
        raises_unchanged(h, TypeError, h.alloc, 48, p=1.0)


def test_closed_heap(backing):
    h = goalloc.Heap(backing=backing)
    w = World(h)
    h.close()
    assert h.closed
    calls = [
        (h.alloc, (48,)), (h.alloc, (3,)), (h.alloc, (100_000,)),
        (h.alloc, (0,)), (h.free, (w.cached[0],)), (h.free, (w.zero,)),
        (h.free, (w.ta[0],)), (h.free, (w.large,)), (h.flush, ()),
        (h.stats, ()), (h.centrals, ()), (h.caches, ()),
        (h.span_objects, (w.cached[0],)), (h.view, (w.cached[0],)),
        (h.spans, ()), (h.span_of, (w.cached[0],)), (h.verify, ()),
        (h.scavenge, ()), (h.hints, ()), (h.arenas, ()), (h.info, ()),
    ]
    for fn, args in calls:
        with pytest.raises(goalloc.HeapClosedError):
            fn(*args)
    h.close()                                 # closing twice is fine
    with pytest.raises(goalloc.HeapClosedError):
        h.__enter__()


# ---- view ------------------------------------------------------------------


def test_view_on_virtual():
    with goalloc.Heap(backing="virtual") as h:
        w = World(h)
        for addr in (w.cached[0], w.ta[0], w.large, w.sixteen, w.zero):
            raises_unchanged(h, ValueError, h.view, addr)
            raises_unchanged(h, ValueError, h.view, addr, 1)


def test_view_bad_addresses_os():
    with goalloc.Heap(backing="os") as h:
        w = World(h)
        bad = [w.cached[3], w.full[7], w.large_freed,     # freed
               w.cached[0] + 8, w.large + 8, w.large + PAGE,  # interior
               w.ta[2], w.ta[0] + 1, w.big_tiny + 1,      # tiny
               h.span_of(w.cached[0]).base + 20 * 48,     # never allocated
               h.span_of(w.cached[0]).limit,              # tail
               1, w.zero + 8]                             # foreign
        for addr in bad:
            raises_unchanged(h, ValueError, h.view, addr)
            raises_unchanged(h, ValueError, h.view, addr, 1)
        world_flushed = w.flushed[1]
        w.flush_some()
        raises_unchanged(h, ValueError, h.view, world_flushed)
        for addr in (-1, 1 << 64):
            raises_unchanged(h, ValueError, h.view, addr, exact=False)
        raises_unchanged(h, TypeError, h.view, "1")


def test_view_longer_than_object_os():
    with goalloc.Heap(backing="os") as h:
        w = World(h)
        cases = [(w.cached[0], 48), (w.flushed[0], 144), (w.large, 40_000),
                 (w.sixteen, 16), (w.big_tiny, 15), (w.ta[0], 2),
                 (w.ta[1], 2)]          # tiny: the requested size
        for addr, extent in cases:
            assert len(h.view(addr)) == extent, hex(addr)
            assert len(h.view(addr, extent)) == extent
            raises_unchanged(h, ValueError, h.view, addr, extent + 1)
            raises_unchanged(h, ValueError, h.view, addr, 1 << 40)
        raises_unchanged(h, ValueError, h.view, w.cached[0], -1, exact=False)
        raises_unchanged(h, TypeError, h.view, w.cached[0], 1.5)


def test_tiny_class_is_span_class_5(world):
    # the World's tiny objects sit where the tests above assume
    h = world.h
    for a in (world.ta[0], world.big_tiny, world.sixteen):
        assert h.span_of(a).spanclass == TINY_SPAN_CLASS


# ---- out of memory ---------------------------------------------------------


def fill_heap(h: goalloc.Heap) -> list[int]:
    """Take every free page of a heap whose sys_limit stops growth."""
    out = []
    for size in (1 << 20, 40_000, 32_769, 8192):   # 8192: 1-page spans
        while True:
            try:
                out.append(h.alloc(size))
            except goalloc.OutOfMemoryError:
                break
    return out


def test_out_of_memory_changes_nothing(backing):
    """Design §10.2: OutOfMemoryError is a rejected call like any other.
    Cases: a class never used (emptymspan), a fresh span used up, a
    cached span whose last free slot (found by the sweep) was handed out,
    the tiny block, a 16-byte noscan block, a large object."""
    with goalloc.Heap(backing=backing, sys_limit=64 << 20) as h:
        # class 4: a full span with one slot freed, swept, handed out
        # again, so the cached span has freeindex 4 and no free slot
        xs = [h.alloc(48) for _ in range(class_nelems(4))]
        h.free(xs[3])
        h.flush()
        assert h.alloc(48) == xs[3]
        s = h.span_of(xs[0])
        assert (s.alloc_count, s.freeindex) == (class_nelems(4), 4)
        # class 3: a fresh span used up in the mcache
        for _ in range(class_nelems(3)):
            h.alloc(32)
        # span class 5 used up, with a current tiny block at offset 8
        for _ in range(511):
            h.alloc(16, noscan=True)
        h.alloc(8, noscan=True)
        fill_heap(h)
        assert h.stats().heap_idle == 0
        for size, noscan in ((32, False), (100, False), (9, True),
                             (16, True), (50_000, False), (48, False)):
            raises_unchanged(h, goalloc.OutOfMemoryError, h.alloc, size,
                             noscan=noscan)
        h.verify()
