"""The two Go 1.13 page heaps: release="go1.13.8" (the default) and
release="go1.13.0" (design §5.8, design §8).

go1.13.3 backported three Go 1.14 changes that every later 1.13 release
keeps:
  1. growth: mheap.grow adds only round(npages*8 KiB, physPageSize) bytes,
     cut off the bottom of curArena; sysAlloc maps new arenas (for the
     whole ask) only when curArena is too small.  The rest of curArena is
     mapped, counted in heap_sys, heap_idle and heap_released, and not a
     span (go1.13.0: the whole new arena becomes one free span).
  2. the scavenger goal is 0 until the first GC completes (goalloc has
     none), where go1.13.0 has next_gc + 10% from gcinit on.
  3. synchronous scavenging happens on growth (growAddSpan), not when an
     allocation takes released memory (go1.13.0's allocSpanLocked).
Every test runs on both backings.
"""
from __future__ import annotations

import ctypes

import pytest

import goalloc
import goalloc.snapshot as gsnap
from helpers import (
    ARENA,
    PAGE,
    MiB,
    check_span_walk,
    check_stat_identities,
    state,
)


def cur_arena(h: goalloc.Heap) -> tuple[int, int]:
    i = h.info()
    return i.cur_arena_base, i.cur_arena_end


# ---- 1. growth --------------------------------------------------------------


SIZES = [100_000, 40_000, 24, 3 * MiB, 32_769, 1000, 5 * PAGE + 1, 600_000]


def test_growth_per_allocation_inside_an_arena(backing, release):
    """go1.13.8 grows by the pages each request needs, within one arena;
    go1.13.0 made the arena one free span at the first growth and carves
    every later request from it.  Either way the objects lie side by side
    from the arena's base and heap_sys stays one arena."""
    with goalloc.Heap(backing=backing, release=release) as h:
        expect = None
        base = None
        for size in SIZES:
            a = h.alloc(size)
            s = h.span_of(a)
            npages = s.npages
            if base is None:
                base = h.arenas()[0].base
                expect = base
            assert s.base == expect, (size, hex(a))
            expect += npages * PAGE
            st = h.stats()
            assert st.heap_sys == ARENA and len(h.arenas()) == 1
            assert st.heap_idle == ARENA - st.heap_inuse
            assert st.heap_released == st.heap_idle   # nothing was freed
            spans = h.spans()
            if release == "go1.13.8":
                assert cur_arena(h) == (expect, base + ARENA)
                # every span is in use: grow made exactly what was asked
                assert all(x.state == "inuse" for x in spans)
                assert h.span_of(expect) is None
            else:
                assert cur_arena(h) == (0, 0)
                tail = spans[-1]
                assert (tail.base, tail.end, tail.state, tail.scavenged) == (
                    expect, base + ARENA, "free", True)
            check_span_walk(h)
        if backing == "os":
            # fresh pages from curArena are real, zeroed, writable memory
            a = h.alloc(200_000)
            assert ctypes.string_at(a, 200_000) == bytes(200_000)
            ctypes.memset(a, 0x5A, 200_000)
            assert ctypes.string_at(a + 199_999, 1) == b"\x5a"
        h.verify()


def test_span_structs_per_growth(backing, release):
    """go1.13.0 carves each request out of the arena's free span, which
    takes a second mspan; go1.13.8's grown span fits exactly."""
    with goalloc.Heap(backing=backing, release=release) as h:
        h.alloc(100_000)
        st = h.stats()
        n = 2 if release == "go1.13.0" else 1
        assert h.info().nallspans == n
        assert st.mspan_inuse == len(h.spans()) * 136
        assert len(h.spans()) == n


def test_growth_beyond_the_arena(backing, release):
    """A request larger than what is left maps whole arenas for the whole
    ask; the new arena adjoins, so the object crosses the boundary."""
    with goalloc.Heap(backing=backing, release=release) as h:
        a = h.alloc(60 * MiB)
        base = h.arenas()[0].base
        b = h.alloc(8 * MiB)          # 4 MiB are left: grow
        assert b == a + 60 * MiB
        st = h.stats()
        assert st.heap_sys == 2 * ARENA and len(h.arenas()) == 2
        assert st.heap_released == st.heap_idle == 2 * ARENA - 68 * MiB
        if release == "go1.13.8":
            assert cur_arena(h) == (base + 68 * MiB, base + 2 * ARENA)
            assert [s.base for s in h.spans()] == [a, b]
        check_span_walk(h)


def test_sys_limit_and_cur_arena(backing, release):
    """sys_limit bounds heap_sys: go1.13.8 still grows inside curArena at
    the limit; a growth that needs a new arena raises OutOfMemoryError and
    leaves the heap as it was."""
    with goalloc.Heap(backing=backing, release=release,
                      sys_limit=ARENA) as h:
        a = h.alloc(100_000)
        b = h.alloc(ARENA - 14 * PAGE)    # all but one page of the arena
        assert b == a + 13 * PAGE
        c = h.alloc(PAGE)                 # the last page
        assert c == b + ARENA - 14 * PAGE
        if release == "go1.13.8":
            assert cur_arena(h) == (c + PAGE, c + PAGE)
        before = state(h)
        d = h.digest()
        with pytest.raises(goalloc.OutOfMemoryError):
            h.alloc(PAGE * 5)
        assert state(h) == before and h.digest() == d
        h.free(b)
        assert h.alloc(PAGE * 5) == b     # room again, no growth
        h.verify()


# ---- 2. accounting ----------------------------------------------------------


def test_cur_arena_counts_idle_and_released(backing):
    """ReadMemStatsSlow (go1.13.8): HeapReleased includes curArena.  Free
    and scavenge do not touch it; it never becomes a span by itself."""
    with goalloc.Heap(backing=backing) as h:
        a = h.alloc(1 * MiB)
        g = h.alloc(40_000)
        lo, hi = cur_arena(h)
        assert (lo, hi) == (g + 5 * PAGE, a + ARENA)
        h.free(a)
        st = h.stats()
        assert st.heap_idle == (hi - lo) + 1 * MiB
        assert st.heap_released == hi - lo
        assert h.scavenge() == 1 * MiB
        st = h.stats()
        assert st.heap_released == st.heap_idle == ARENA - 5 * PAGE
        assert cur_arena(h) == (lo, hi)
        pages = h.page_array()
        assert len(pages) * PAGE == ARENA
        assert (pages[(lo - a) // PAGE:] == goalloc.arrays.PAGE_RELEASED).all()
        f = h.fragmentation()
        assert f.page_bytes == 0
        # largest_free: curArena's rest (63 MiB) beats the 1 MiB span
        assert f.external_bytes == st.heap_idle - (hi - lo)
        check_stat_identities(st)
        check_span_walk(h)
        h.verify()


def test_release_in_info_digest_and_snapshot(backing):
    heaps = [goalloc.Heap(backing=backing, release=r)
             for r in ("go1.13.8", "go1.13.0", "go1.13")]
    try:
        infos = [h.info() for h in heaps]
        assert [i.release for i in infos] == ["go1.13.8", "go1.13.0",
                                              "go1.13.0"]
        assert [i.scavenge_goal for i in infos] == [0, 4_923_392, 4_923_392]
        # empty heaps of two releases are not the same heap
        assert heaps[0].digest() != heaps[1].digest()
        assert heaps[1].digest() == heaps[2].digest()
        for h in heaps:
            h.alloc(100_000)
        assert heaps[0].digest() != heaps[1].digest()
        if backing == "virtual":   # os heaps get different addresses
            assert heaps[1].digest() == heaps[2].digest()
        doc = gsnap.snapshot(heaps[0])
        assert doc["info"]["release"] == "go1.13.8"
        assert (doc["info"]["cur_arena_base"],
                doc["info"]["cur_arena_end"]) == cur_arena(heaps[0])
        gsnap.validate(doc)
        bad = dict(doc, info=dict(doc["info"], release=8))
        with pytest.raises(ValueError, match="release"):
            gsnap.validate(bad)
        assert "go1.13.8" in repr(heaps[0])
    finally:
        for h in heaps:
            h.close()


# ---- 3. when scavenging happens --------------------------------------------


def released_hole_world(h: goalloc.Heap) -> tuple[int, int, int]:
    """x (1 MiB) freed and released, y (512 KiB) freed and not released,
    with in-use separators: returns (x, y, the end of the heap's spans)."""
    x = h.alloc(1 * MiB)
    h.alloc(40_000)
    y = h.alloc(512 * 1024)
    s2 = h.alloc(40_000)
    h.free(x)
    assert h.scavenge() == 1 * MiB
    h.free(y)
    assert not h.span_of(y).scavenged
    return x, y, s2 + 5 * PAGE


def test_taking_released_memory_scavenges_only_in_go1_13_0(backing,
                                                            release):
    """Goal 0 for both: go1.13.0's allocSpanLocked gives back as much as it
    takes from released memory (y's 64 pages go); go1.13.8 does not."""
    with goalloc.Heap(backing=backing, release=release,
                      scavenge_goal=0) as h:
        x, y, _ = released_hole_world(h)
        before = h.stats()
        assert h.alloc(1 * MiB) == x          # x's released hole, no growth
        st = h.stats()
        assert st.heap_sys == before.heap_sys
        go1130 = release == "go1.13.0"
        assert h.span_of(y).scavenged == go1130
        assert st.heap_released == before.heap_released - 1 * MiB + (
            64 * PAGE if go1130 else 0)
        check_span_walk(h)


def test_growth_scavenges_in_go1_13_8(backing):
    """go1.13.8: growing by n pages first scavenges up to n pages of free
    memory when retained + n exceeds the goal (always, with goal 0)."""
    with goalloc.Heap(backing=backing) as h:
        assert h.info().scavenge_goal == 0
        x, y, top = released_hole_world(h)
        before = h.stats()
        z = h.alloc(2 * MiB)                  # fits no hole: grows
        assert z == top == cur_arena(h)[0] - 2 * MiB
        st = h.stats()
        assert h.span_of(y).scavenged
        assert st.heap_released == before.heap_released + 64 * PAGE - 2 * MiB
        h.free(z)
        before = h.stats()
        # 5 pages fit x's released hole (first fit): taken, no growth, and
        # go1.13.8 scavenges nothing for it
        assert h.alloc(40_000) == x
        assert h.stats().heap_released == before.heap_released - 5 * PAGE
        assert not h.span_of(z).scavenged
        # 3 MiB fit no hole: the growth by 384 pages first scavenges z's
        # 256 unreleased pages, which then coalesce with the grown span;
        # the object starts at z
        assert h.alloc(3 * MiB) == z
        st = h.stats()
        assert st.heap_idle == st.heap_released
        assert cur_arena(h)[0] == z + 2 * MiB + 3 * MiB
        check_span_walk(h)


def test_growth_with_go1_13_0_goal_does_not_scavenge(backing):
    """An explicit goal overrides the release's: with go1.13.0's 4.9 MB,
    go1.13.8's growth keeps small holes."""
    with goalloc.Heap(backing=backing, scavenge_goal=4_923_392) as h:
        _, y, _ = released_hole_world(h)
        h.alloc(2 * MiB)
        assert not h.span_of(y).scavenged
        h.verify()


@pytest.mark.parametrize("gogc", [100, "off"])
def test_gogc_leaves_go1_13_8_goal_zero(backing, gogc):
    """Before the first GC go1.13.8 has no goal, whatever GOGC says: the
    growth scavenges with gogc=off too (go1.13.0 with GOGC=off never
    scavenges: test_gogc_off_never_scavenges_on_allocation)."""
    with goalloc.Heap(backing=backing, gogc=gogc) as h:
        assert h.info().scavenge_goal == 0
        _, y, _ = released_hole_world(h)
        h.alloc(2 * MiB)
        assert h.span_of(y).scavenged
