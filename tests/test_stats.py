"""goalloc/stats.py: MemStats, read by Heap.stats() (Go's ReadMemStats),
which is exact and changes nothing: not the heap, not the mcaches."""
from __future__ import annotations

from helpers import state


def test_stats_is_non_mutating(world1p):
    h = world1p.h
    h.stats()
    h.free(world1p.sixteen)
    h.alloc(24)
    before = state(h)
    st = h.stats()
    assert state(h) == before
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
