"""Large objects (> 32 KiB) through the Python API, on both backends.

The user story: Heap(); alloc(100_000) makes the first arena at
0x00c000000000, a 13-page span, and Go's MemStats right after the first
growth.  Then coalescing, scavenging, first fit, multi-arena growth and
reuse.  Expected numbers come from Go 1.13's rules (design §4).
"""
from __future__ import annotations

import ctypes

import pytest

import goalloc
from helpers import (
    ARENA,
    PAGE,
    MiB,
    check_first_arena,
    check_span_walk,
    check_stat_identities,
    npages_of,
    spans_by_state,
    state,
    sum_sys,
)

HEAP_ARENA_STRUCT = 2_164_736  # sizeof(heapArena) on amd64 (design §3.4)
MSPAN = 136                    # sizeof(mspan) on amd64 (design §3.4)


def first_alloc(h, backing, size=100_000, **kw):
    """alloc(size) on a fresh heap; returns (addr, arena base)."""
    initial = h.hints()
    p = h.alloc(size, **kw)
    grown = h.stats().heap_sys
    check_first_arena(backing, initial, h.hints(), h.arenas(), grown)
    return p, h.arenas()[0].base


# ---- The user story ------------------------------------------------------


def test_first_large_alloc_user_story(rheap, backing, release):
    h = rheap
    initial = h.hints()
    assert len(initial) == 128
    p = h.alloc(100_000)
    arenas = h.arenas()
    assert len(arenas) == 1
    k = check_first_arena(backing, initial, h.hints(), arenas, ARENA)
    base = arenas[0].base
    assert p == base
    # the head hint advanced by one 64 MiB arena
    assert h.hints()[0] == goalloc.ArenaHint(initial[k].addr + ARENA, False)
    assert len(h.hints()) == 128 - k

    s = h.span_of(p)
    assert s == goalloc.Span(
        base=p, npages=13, state="inuse", scavenged=False, spanclass=0,
        sizeclass=0, noscan=False, elemsize=13 * PAGE, nelems=1,
        alloc_count=1, freeindex=1, limit=p + 100_000, needzero=False)
    assert npages_of(100_000) == 13
    # every page of an in-use span maps to it, the last byte too
    assert h.span_of(p + 100_000 - 1) == s
    assert h.span_of(p + 13 * PAGE - 1) == s

    i = h.info()
    if release == "go1.13.0":
        # The rest of the arena: one free span, scavenged (fresh memory).
        assert h.spans() == [
            s,
            goalloc.Span(base=p + 13 * PAGE, npages=8192 - 13, state="free",
                         scavenged=True, spanclass=0, sizeclass=0,
                         noscan=False, elemsize=0, nelems=0, alloc_count=0,
                         freeindex=0, limit=0, needzero=False),
        ]
        assert (i.cur_arena_base, i.cur_arena_end) == (0, 0)
    else:
        # go1.13.8's grow made a span of the 13 pages asked for; the rest
        # of the arena is curArena, mapped but no span.
        assert h.spans() == [s]
        assert (i.cur_arena_base, i.cur_arena_end) == (p + 13 * PAGE,
                                                       base + ARENA)
        assert h.span_of(p + 13 * PAGE) is None

    st = h.stats()
    assert st.heap_sys == 64 * MiB
    assert st.heap_inuse == 13 * PAGE
    assert st.heap_idle == st.heap_sys - st.heap_inuse
    assert st.heap_released == st.heap_idle
    assert st.heap_alloc == st.alloc == st.total_alloc == 106_496
    assert st.mallocs == 1 and st.frees == 0 and st.heap_objects == 1
    assert st.sys == sum_sys(st)                     # Go's TestMemStats
    assert st.heap_sys == st.heap_idle + st.heap_inuse
    # heapArena struct + the first allArenas array (one 4 KiB page of
    # 8-byte indices), both gc_sys (design §3.5), + the 64 KiB gcBits
    # arena largeAlloc's initSpan takes the span's mark and alloc bits
    # from (mbitmap.go initSpan, mheap.go newMarkBits), + sweepSpans'
    # spine (256 pointers) and first block (512 pointers), where alloc_m
    # pushed the span (mgcsweepbuf.go)
    assert st.gc_sys == HEAP_ARENA_STRUCT + 4096 + 65536 + 2048 + 4096
    # go1.13.0: grow's span plus the span carved off its low end;
    # go1.13.8: grow's span fits exactly (allocSpanLocked erases it)
    nspans = 2 if release == "go1.13.0" else 1
    assert st.mspan_inuse == nspans * MSPAN
    assert st.mspan_sys == 16384
    check_stat_identities(st)
    # Large objects are not in BySize: Go counts them in nlargealloc
    # only (updatememstats), and class 0's mcentrals never allocate.
    assert all((b.mallocs, b.frees) == (0, 0) for b in st.by_size)
    assert st.by_size[0] == goalloc.BySize(0, 0, 0)
    i = h.info()
    assert i.release == release
    assert i.pages_in_use == 13
    assert i.nallspans == nspans
    check_span_walk(h)
    h.verify()


def test_noscan_gives_spanclass_1(heap):
    p = heap.alloc(100_000, noscan=True)
    s = heap.span_of(p)
    assert (s.spanclass, s.sizeclass, s.noscan) == (1, 0, True)
    q = heap.alloc(100_000, noscan=False)
    s = heap.span_of(q)
    assert (s.spanclass, s.sizeclass, s.noscan) == (0, 0, False)
    # noscan is truth-tested like a Python bool
    r = heap.alloc(40_000, noscan=1)
    assert heap.span_of(r).spanclass == 1


def test_smallest_large_size(heap):
    p = heap.alloc(32769)
    s = heap.span_of(p)
    assert s.npages == 5 and s.elemsize == 5 * PAGE and s.limit == p + 32769
    q = heap.alloc(5 * PAGE + 1)
    assert heap.span_of(q).npages == 6
    assert q == p + 5 * PAGE


def test_alloc_zero_is_zerobase(heap):
    before = state(heap)
    zb = heap.info().zerobase
    assert heap.alloc(0) == zb
    # Go's zerobase is a uintptr variable: word-aligned, as every
    # allocation's address is (it used to be a byte on the os backing)
    assert zb % 8 == 0
    assert heap.alloc(0, noscan=True) == zb
    assert heap.alloc(0) == zb
    assert state(heap) == before  # no span, no stats, no growth
    heap.free(zb)
    heap.free(zb)
    assert state(heap) == before
    # and the same once the heap has grown
    p = heap.alloc(100_000)
    before = state(heap)
    assert heap.alloc(0) == zb
    heap.free(zb)
    assert state(heap) == before
    assert zb != p


def test_large_small_boundary(heap):
    # Exactly 32768 bytes is small (class 66, design §3.3); one byte
    # more is the smallest large object, a 5-page span of class 0.
    small = heap.alloc(32768)
    s = heap.span_of(small)
    assert s.sizeclass == 66 and s.spanclass == 66 << 1
    assert s.npages == 4 and s.elemsize == 32768
    large = heap.alloc(32769)
    s = heap.span_of(large)
    assert (s.sizeclass, s.spanclass, s.base, s.npages) == (0, 0, large, 5)


# ---- Freeing and coalescing -------------------------------------------


def free_span(base, npages, scavenged, needzero):
    return goalloc.Span(base=base, npages=npages, state="free",
                        scavenged=scavenged, spanclass=0, sizeclass=0,
                        noscan=False, elemsize=0, nelems=0, alloc_count=0,
                        freeindex=0, limit=0, needzero=needzero)


def test_coalescing_through_the_api(rheap, backing, release):
    h = rheap
    size = 5 * PAGE  # 40960: large, exactly 5 pages
    a, base = first_alloc(h, backing, size)
    b = h.alloc(size)
    c = h.alloc(size)
    assert (a, b, c) == (base, base + 5 * PAGE, base + 10 * PAGE)
    # go1.13.0: the rest of the arena is a free scavenged span; go1.13.8:
    # it is curArena, no span, so nothing follows C.
    tail = free_span(base + 15 * PAGE, 8192 - 15, True, False)
    rest = [tail] if release == "go1.13.0" else []
    assert h.spans()[3:] == rest
    info = h.info()
    if release == "go1.13.8":
        assert (info.cur_arena_base, info.cur_arena_end) == (
            tail.base, tail.end)

    h.free(b)
    sp = h.spans()
    assert [(s.base, s.npages, s.state) for s in sp] == [
        (a, 5, "inuse"), (b, 5, "free"), (c, 5, "inuse"),
        *[(t.base, t.npages, "free") for t in rest]]
    # freed memory is unscavenged and dirty (needzero)
    assert sp[1] == free_span(b, 5, False, True)
    h.verify()

    h.free(a)  # merges with B
    sp = h.spans()
    assert sp[0] == free_span(a, 10, False, True)
    assert sp[1].base == c and sp[1].state == "inuse"
    assert sp[2:] == rest
    h.verify()

    h.free(c)  # merges with A+B, but not with the scavenged tail
    assert h.spans() == [free_span(a, 15, False, True), *rest]
    st = h.stats()
    assert st.heap_inuse == 0 and st.heap_idle == 64 * MiB
    # the tail or curArena: counted released either way
    assert st.heap_released == tail.nbytes
    assert st.heap_alloc == 0 and st.total_alloc == 3 * size
    assert (st.mallocs, st.frees, st.heap_objects) == (3, 3, 0)
    check_stat_identities(st)
    check_span_walk(h)
    h.verify()

    # scavenge everything: the released 15 pages coalesce with the tail
    # (go1.13.8: they stay below curArena, which is never a span)
    assert h.scavenge() == 15 * PAGE
    if release == "go1.13.0":
        assert h.spans() == [free_span(base, 8192, True, True)]
    else:
        assert h.spans() == [free_span(base, 15, True, True)]
    st = h.stats()
    assert st.heap_released == st.heap_idle == st.heap_sys == 64 * MiB
    assert h.scavenge() == 0
    assert h.scavenge(None) == 0
    h.verify()


def test_scavenge_on_fresh_heap_releases_nothing(heap):
    assert heap.scavenge() == 0
    assert heap.scavenge(1 << 30) == 0
    heap.alloc(100_000)
    # all free memory is fresh, hence already released
    assert heap.scavenge() == 0
    assert heap.scavenge(0) == 0


def go_scavenge_cut(start, end, n, huge):
    """Where Go 1.13's scavengeSplit cuts a free span [start, end) to
    release n bytes from its top (mheap.go); start when it takes all."""
    if end - start <= n:
        return start
    base = (end - n) & ~(max(4096, PAGE) - 1)
    if base <= start:
        return start
    if huge > PAGE and base & ~(huge - 1) >= start:
        base &= ~(huge - 1)
    return base


@pytest.mark.parametrize("n", [1, PAGE, 100_000, 2 * MiB, 3 * MiB])
def test_scavenge_n_releases_top_down(heap, backing, n):
    h = heap
    big = 3 * MiB
    x1, base = first_alloc(h, backing, big)
    s1 = h.alloc(5 * PAGE)
    x2 = h.alloc(big)
    s2 = h.alloc(5 * PAGE)
    assert (s1, x2, s2) == (x1 + big, x1 + big + 5 * PAGE,
                            x1 + 2 * big + 5 * PAGE)
    h.free(x1)
    h.free(x2)
    before = h.stats()
    unreleased = before.heap_idle - before.heap_released
    assert unreleased == 2 * big
    spans_before = h.spans()
    assert h.scavenge(0) == 0          # nothing asked, nothing released
    assert h.spans() == spans_before and h.stats() == before

    released = h.scavenge(n)
    assert released >= n
    cut = go_scavenge_cut(x2, x2 + big, n, h.info().phys_huge_page_size)
    assert released == x2 + big - cut
    after = h.stats()
    assert after.heap_released == before.heap_released + released

    by_base = {s.base: s for s in h.spans()}
    # the lower free span is untouched ...
    assert by_base[x1] == free_span(x1, big // PAGE, False, True)
    # ... and the highest one lost its top
    if cut > x2:
        assert by_base[x2] == free_span(x2, (cut - x2) // PAGE, False, True)
    assert by_base[cut] == free_span(cut, (x2 + big - cut) // PAGE, True,
                                     True)
    assert by_base[s2].state == "inuse"
    check_span_walk(h)
    h.verify()

    # the rest goes with scavenge(None), exactly what was unreleased
    assert h.scavenge(None) == unreleased - released
    assert h.stats().heap_released == h.stats().heap_idle
    h.verify()


def test_scavenge_more_than_available(heap, backing):
    p, _ = first_alloc(heap, backing, 1 * MiB)
    heap.alloc(5 * PAGE)  # keeps p from merging with the fresh tail
    heap.free(p)
    assert heap.scavenge(100 * MiB) == 1 * MiB
    assert heap.scavenge(100 * MiB) == 0


def test_reallocating_released_memory_lowers_heap_released(heap, backing):
    p, _ = first_alloc(heap, backing, 1 * MiB)
    heap.alloc(5 * PAGE)
    heap.free(p)
    heap.scavenge()
    r0 = heap.stats().heap_released
    q = heap.alloc(1 * MiB)
    assert q == p
    st = heap.stats()
    assert st.heap_released == r0 - 1 * MiB
    assert not heap.span_of(q).scavenged
    check_stat_identities(st)


# ---- Placement -----------------------------------------------------------


def test_first_fit_by_address(heap, backing):
    h = heap
    low, base = first_alloc(h, backing, 8 * PAGE)   # 8-page hole to be
    sep1 = h.alloc(5 * PAGE)
    exact = h.alloc(5 * PAGE)                       # 5-page hole to be
    sep2 = h.alloc(5 * PAGE)
    h.free(low)
    h.free(exact)
    holes = [(s.base, s.npages) for s in spans_by_state(h, "free")
             if not s.scavenged]
    assert holes == [(low, 8), (exact, 5)]
    # Go 1.13's treap is address-ordered first fit: the low 8-page hole
    # wins over the exact fit higher up (TestTreap/FindFirstFit).
    q = h.alloc(5 * PAGE)
    assert q == low
    sp = h.span_of(q)
    assert sp.npages == 5 and sp.state == "inuse"
    # the remainder of the low hole stays free, 3 pages
    rest = h.span_of(low + 5 * PAGE)
    assert (rest.base, rest.npages, rest.state) == (low + 5 * PAGE, 3, "free")
    assert h.span_of(exact).state == "free"
    assert {sep1, sep2}.isdisjoint({q})
    h.verify()


def test_growth_past_one_arena(rheap, backing, release):
    h = rheap
    size = 100 * MiB
    p, base = first_alloc(h, backing, size)
    assert p == base
    arenas = h.arenas()
    assert [a.base for a in arenas] == [base, base + ARENA]
    assert arenas[1].idx == arenas[0].idx + 1
    s = h.span_of(p)
    assert s.npages == size // PAGE == 12800
    assert s.limit == p + size
    assert h.span_of(p + size - 1) == s   # crosses into the 2nd arena
    assert h.hints()[0].addr == base + 2 * ARENA
    st = h.stats()
    assert st.heap_sys == 2 * ARENA
    assert st.heap_inuse == size
    assert st.heap_released == st.heap_idle == 2 * ARENA - size
    info = h.info()
    if release == "go1.13.0":
        rest = h.spans()[1]
        assert (rest.base, rest.npages, rest.state, rest.scavenged) == (
            p + size, 2 * 8192 - 12800, "free", True)
    else:
        # sysAlloc mapped both arenas; grow made a span of the 100 MiB
        # asked for and kept the rest as curArena
        assert h.spans() == [s]
        assert (info.cur_arena_base, info.cur_arena_end) == (
            p + size, base + 2 * ARENA)
    check_span_walk(h)
    # a further growth continues contiguously at the head hint
    q = h.alloc(60 * MiB)
    # first fit: the tail of arena 2 + arena 3 (go1.13.8: the new arena
    # adjoins curArena, which grows by it)
    assert q == p + size
    assert [a.base for a in h.arenas()] == [base + i * ARENA for i in
                                            range(3)]
    info = h.info()
    if release == "go1.13.8":
        assert (info.cur_arena_base, info.cur_arena_end) == (
            q + 60 * MiB, base + 3 * ARENA)
        assert [x.base for x in h.spans()] == [p, q]
    st = h.stats()
    assert st.heap_sys == 3 * ARENA
    assert st.heap_released == st.heap_idle == 3 * ARENA - size - 60 * MiB
    check_span_walk(h)


def test_reuse_same_address(heap, backing):
    p, _ = first_alloc(heap, backing, 200_000)
    q = heap.alloc(300_000)
    heap.free(p)
    assert heap.alloc(200_000) == p
    heap.free(q)
    assert heap.alloc(300_000) == q
    # a smaller object also takes the lowest fitting hole
    heap.free(p)
    assert heap.alloc(100_000) == p


def test_many_objects_stats(heap, backing):
    sizes = [40_000 + 12_345 * i for i in range(40)]
    first_alloc(heap, backing, sizes[0])
    addrs = [heap.arenas()[0].base] + [heap.alloc(n) for n in sizes[1:]]
    st = heap.stats()
    assert st.heap_alloc == sum(npages_of(n) * PAGE for n in sizes)
    assert st.mallocs == 40 and st.heap_objects == 40
    for a, n in zip(addrs, sizes, strict=True):
        s = heap.span_of(a)
        assert s.base == a and s.limit == a + n
    for a in addrs[::2]:
        heap.free(a)
    st = heap.stats()
    assert st.frees == 20 and st.heap_objects == 20
    assert st.heap_alloc == sum(npages_of(n) * PAGE for n in sizes[1::2])
    assert st.total_alloc == sum(npages_of(n) * PAGE for n in sizes)
    check_stat_identities(st)
    check_span_walk(heap)


# ---- Real memory (os backing) ----------------------------------------


def test_os_memory_is_usable():
    with goalloc.Heap(backing="os") as h:
        n = 100_000
        p = h.alloc(n)
        data = bytes(range(256)) * (n // 256) + b"\xee" * (n % 256)
        ctypes.memmove(p, data, n)
        assert ctypes.string_at(p, n) == data
        q = h.alloc(n)
        ctypes.memset(q, 0x5A, n)
        assert ctypes.string_at(p, n) == data      # neighbours intact
        assert ctypes.string_at(q, n) == b"\x5a" * n
        h.verify()


def test_os_fresh_memory_reads_zero():
    with goalloc.Heap(backing="os") as h:
        p = h.alloc(1 * MiB)
        assert ctypes.string_at(p, 1 * MiB) == bytes(1 * MiB)


def test_os_reallocated_object_is_zeroed():
    with goalloc.Heap(backing="os") as h:
        n = 300_000
        p = h.alloc(n)
        h.alloc(5 * PAGE)  # separator: p's span stays on its own
        ctypes.memset(p, 0xAB, npages_of(n) * PAGE)
        h.free(p)
        assert h.span_of(p).needzero
        q = h.alloc(n)
        assert q == p
        # Go zeroes a span that was used before (needzero) on reuse.
        assert ctypes.string_at(q, npages_of(n) * PAGE) == bytes(
            npages_of(n) * PAGE)
        assert not h.span_of(q).needzero


def test_os_reallocated_after_scavenge_is_zeroed():
    with goalloc.Heap(backing="os") as h:
        n = 3 * MiB
        p = h.alloc(n)
        h.alloc(5 * PAGE)
        ctypes.memset(p, 0xCD, n)
        h.free(p)
        assert h.scavenge() == n
        q = h.alloc(n // 2)   # part of the released, dirty span
        assert q == p
        assert ctypes.string_at(q, n // 2) == bytes(n // 2)


def test_os_bigger_object_over_freed_and_fresh_memory_is_zeroed_go1_13_0():
    with goalloc.Heap(backing="os", release="go1.13.0") as h:
        p = h.alloc(100_000)
        ctypes.memset(p, 0x77, 100_000)
        h.free(p)
        # the freed (dirty) pages and fresh pages are separate free spans
        # (different scavenged state), so a request bigger than the
        # freed hole takes the fresh span above it ...
        q = h.alloc(200_000)
        assert q == p + 13 * PAGE
        assert ctypes.string_at(q, 200_000) == bytes(200_000)
        # ... and the hole is reused, zeroed, by a fitting request.
        r = h.alloc(50_000)
        assert r == p
        assert ctypes.string_at(r, 50_000) == bytes(50_000)


def test_os_bigger_object_over_freed_and_fresh_memory_is_zeroed():
    with goalloc.Heap(backing="os") as h:
        p = h.alloc(100_000)
        ctypes.memset(p, 0x77, 100_000)
        h.free(p)
        # go1.13.8: no free span fits 25 pages, so the heap grows by 25
        # pages; growAddSpan first scavenges as much (goal 0 before the
        # first GC), which releases the dirty 13-page hole; released, it
        # coalesces with the fresh span above it, and the request takes
        # the merged span from p on.
        released = h.stats().heap_released
        q = h.alloc(200_000)
        assert q == p
        st = h.stats()
        # the hole's 13 pages were released, then 25 released pages taken
        assert st.heap_released == released + 13 * PAGE - 25 * PAGE
        assert st.heap_released == ARENA - 25 * PAGE
        assert ctypes.string_at(q, 200_000) == bytes(200_000)
        r = h.alloc(50_000)
        assert r == p + 25 * PAGE
        assert ctypes.string_at(r, 50_000) == bytes(50_000)
        h.verify()
