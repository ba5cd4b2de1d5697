"""Small objects (8 B .. 32 KiB): mcache, mcentral and explicit free.

Go 1.13 (design §4.8, design §4.9, design §4.10): successive allocations
of a class take consecutive slots of the P's cached span
(nextFreeFast/nextFree); a full span is traded for another by refill;
spans move between the mcentral's nonempty and empty lists. goalloc's free
(design §6): a freed slot waits (SLOT_FREED) until its span is swept, when
it leaves or rejoins an mcache; a span whose last object is freed goes
back to the mheap once no mcache holds it.
"""
from __future__ import annotations

import random

import pytest

import goalloc
from goalloc import SLOT_FREE, SLOT_FREED, SLOT_LIVE
from helpers import (
    GO113_CLASSES,
    MAX_SMALL,
    PAGE,
    TINY_SPAN_CLASS,
    check_stat_identities,
    class_nelems,
    class_npages,
    class_of,
    class_size,
    spanclass,
    state,
)

CLASSES = sorted(GO113_CLASSES)


def cached_bases(h: goalloc.Heap) -> set[int]:
    return {b for c in h.caches() for b in c.alloc.values()}


# Every span class a small request reaches: 8-byte noscan requests take
# the tiny path, so span class 3 (class 1 noscan) is never used.
SMALL_SPAN_CLASSES = [(c, noscan) for c in CLASSES for noscan in (False, True)
                      if not (noscan and class_size(c) < 16)]


# ---- nextFreeFast order, span shape, refill --------------------------------


@pytest.mark.parametrize("c,noscan", SMALL_SPAN_CLASSES,
                         ids=[f"{c}-{'noscan' if n else 'scan'}"
                              for c, n in SMALL_SPAN_CLASSES])
def test_consecutive_slots_then_refill(heap, c, noscan):
    h = heap
    size = class_size(c)
    elemsize, nelems = class_size(c), class_nelems(c)
    spc = spanclass(c, noscan)

    first = h.alloc(size, noscan=noscan)
    s = h.span_of(first)
    assert s.base == first                     # slot 0 of a fresh span
    assert (s.state, s.spanclass, s.sizeclass, s.noscan) == (
        "inuse", spc, c, noscan)
    assert (s.npages, s.elemsize, s.nelems) == (class_npages(c), elemsize,
                                                nelems)
    assert s.limit == s.base + nelems * elemsize
    assert h.caches()[0].alloc == {spc: s.base}

    # every slot in address order, across the 64-slot allocCache refills
    addrs = [first] + [h.alloc(size, noscan=noscan)
                       for _ in range(nelems - 1)]
    assert addrs == [s.base + i * elemsize for i in range(nelems)]
    full = h.span_of(first)
    assert (full.alloc_count, full.freeindex) == (nelems, nelems)
    assert h.span_objects(s.base).states == bytes([SLOT_LIVE]) * nelems

    # refill: the next object comes from slot 0 of another span
    nxt = h.alloc(size, noscan=noscan)
    t = h.span_of(nxt)
    assert t.base == nxt != s.base
    assert (t.spanclass, t.alloc_count, t.freeindex) == (spc, 1, 1)
    assert h.caches()[0].alloc == {spc: t.base}
    central = h.centrals()[spc]
    assert central.spanclass == spc
    # the full, uncached span and the cached one both sit on empty
    assert set(central.empty) == {s.base, t.base}
    assert central.nonempty == ()
    assert s.base not in cached_bases(h)
    # swept as it left the mcache (freeindex back to 0): still full
    old = h.span_of(first)
    # (and no longer cached: sweepgen sg, not sg + 3)
    assert (full.sweepgen, old.sweepgen) == (3, 0)
    assert old._replace(freeindex=full.freeindex, sweepgen=3) == full
    assert old.freeindex in (0, nelems)
    assert h.span_objects(s.base).states == bytes([SLOT_LIVE]) * nelems
    h.verify()


def test_first_alloc_of_every_class_is_cached(heap):
    """Each span class has its own span in P 0's mcache."""
    h = heap
    want = {}
    for c, noscan in SMALL_SPAN_CLASSES:
        a = h.alloc(class_size(c), noscan=noscan)
        want[spanclass(c, noscan)] = a
    assert h.caches()[0].alloc == want
    assert len({h.span_of(a).base for a in want.values()}) == len(want)
    for spc, a in want.items():
        assert h.centrals()[spc].empty == (a,)
        assert h.centrals()[spc].nonempty == ()


# ---- explicit free and slot reuse ------------------------------------------


def test_freed_slot_not_reused_while_cached(heap):
    h = heap
    c = 4                                      # 48 B, 170 per span
    nelems = class_nelems(c)
    addrs = [h.alloc(48) for _ in range(10)]
    base = addrs[0]
    h.free(addrs[3])
    so = h.span_objects(base)
    assert so.states[3] == SLOT_FREED
    assert so.states[:10] == bytes([1, 1, 1, 2, 1, 1, 1, 1, 1, 1])
    assert so.states[10:] == bytes([SLOT_FREE]) * (nelems - 10)
    s = h.span_of(base)
    assert (s.alloc_count, s.freeindex) == (9, 10)
    assert h.caches()[0].alloc == {spanclass(c, False): base}
    # the rest of the span is handed out; slot 3 is not among it
    rest = [h.alloc(48) for _ in range(nelems - 10)]
    assert rest == [base + i * 48 for i in range(10, nelems)]
    assert h.span_objects(base).states[3] == SLOT_FREED
    s = h.span_of(base)
    assert (s.alloc_count, s.freeindex) == (nelems - 1, nelems)


def test_freed_slots_reused_after_flush_in_address_order(heap):
    h = heap
    spc = spanclass(4, False)
    addrs = [h.alloc(48) for _ in range(10)]
    base = addrs[0]
    h.free(addrs[7])
    h.free(addrs[3])
    h.flush()
    # swept when it left the mcache: the slots are free again
    so = h.span_objects(base)
    assert so.states[3] == so.states[7] == SLOT_FREE
    assert so.states[:10].count(SLOT_LIVE) == 8
    s = h.span_of(base)
    assert (s.alloc_count, s.freeindex) == (8, 0)
    assert h.caches()[0].alloc == {}
    central = h.centrals()[spc]
    assert (central.nonempty, central.empty) == ((base,), ())
    # picked up again by cacheSpan: first free slot in address order
    assert [h.alloc(48) for _ in range(3)] == [addrs[3], addrs[7],
                                              base + 10 * 48]
    assert h.caches()[0].alloc == {spc: base}
    central = h.centrals()[spc]
    assert (central.nonempty, central.empty) == ((), (base,))
    assert h.span_objects(base).states[:11] == bytes([SLOT_LIVE]) * 11


def test_freed_slot_reused_after_the_span_is_refilled(heap):
    """A span with a freed slot fills up: the refill sweeps it, and the
    slot is handed out when the mcache takes the span again."""
    h = heap
    c = 9                                      # 128 B, 64 per span
    spc, nelems = spanclass(c, False), class_nelems(c)
    addrs = [h.alloc(128) for _ in range(nelems)]
    a = addrs[0]
    h.free(addrs[5])
    assert h.span_objects(a).states[5] == SLOT_FREED
    x = h.alloc(128)
    if x != addrs[5]:
        # the refill took a fresh span first (Go's order would give the
        # swept span back at once); the old span is now swept, uncached
        # and on nonempty with slot 5 free
        b = h.span_of(x)
        assert x == b.base != a
        assert h.span_objects(a).states[5] == SLOT_FREE
        central = h.centrals()[spc]
        assert central.nonempty == (a,)
        assert set(central.empty) == {b.base}
        assert a not in cached_bases(h)
        more = [h.alloc(128) for _ in range(nelems - 1)]
        assert more == [b.base + i * 128 for i in range(1, nelems)]
        x = h.alloc(128)
    assert x == addrs[5]
    assert h.span_objects(a).states == bytes([SLOT_LIVE]) * nelems
    assert h.caches()[0].alloc == {spc: a}


def test_cached_span_goes_home_after_flush(heap):
    h = heap
    c = 5                                      # 64 B, 1 page
    spc = spanclass(c, False)
    keep = h.alloc(100_000)                    # something else in use
    addrs = [h.alloc(64) for _ in range(20)]
    base = h.span_of(addrs[0]).base
    st0 = h.stats()
    for a in addrs:
        h.free(a)
    # still cached: in use with every slot freed
    s = h.span_of(base)
    assert (s.state, s.alloc_count) == ("inuse", 0)
    assert h.span_objects(base).states[:20] == bytes([SLOT_FREED]) * 20
    assert h.stats().heap_inuse == st0.heap_inuse
    h.flush()
    assert base not in {s.base for s in h.spans() if s.state == "inuse"}
    assert h.span_of(base).state == "free"
    st1 = h.stats()
    assert st1.heap_inuse == st0.heap_inuse - class_npages(c) * PAGE
    assert st1.heap_idle == st0.heap_idle + class_npages(c) * PAGE
    assert st1.heap_alloc == st0.heap_alloc - 20 * 64
    central = h.centrals()[spc]
    assert (central.nonempty, central.empty) == ((), ())
    assert h.span_of(keep).state == "inuse"
    with pytest.raises(ValueError):
        h.span_objects(base)


@pytest.mark.parametrize("c", [1, 4, 34, 49, 64, 66])
def test_full_uncached_span_goes_home_on_last_free(heap, c):
    """Full, uncached spans sit on empty; the first free moves the span
    to nonempty; the last free sends it to the mheap at once."""
    h = heap
    size, nelems, npages = class_size(c), class_nelems(c), class_npages(c)
    spc = spanclass(c, False)
    addrs = [h.alloc(size) for _ in range(nelems)]
    a = h.span_of(addrs[0]).base
    other = h.alloc(size)                      # refill: a is uncached
    b = h.span_of(other).base
    assert a not in cached_bases(h)
    central = h.centrals()[spc]
    assert set(central.empty) == {a, b} and central.nonempty == ()
    inuse0 = h.stats().heap_inuse
    order = list(range(nelems))
    random.Random(c).shuffle(order)
    for k, i in enumerate(order[:-1]):
        h.free(addrs[i])
        central = h.centrals()[spc]
        assert central.nonempty == (a,)
        assert central.empty == (b,)
        # uncached: the slot waits for cacheSpan's sweep
        assert h.span_objects(a).states[i] == SLOT_FREED
        assert h.span_of(a).alloc_count == nelems - k - 1
    assert h.stats().heap_inuse == inuse0
    h.free(addrs[order[-1]])
    assert h.span_of(a).state == "free"
    assert a not in {s.base for s in h.spans() if s.state == "inuse"}
    st = h.stats()
    assert st.heap_inuse == inuse0 - npages * PAGE
    central = h.centrals()[spc]
    assert (central.nonempty, central.empty) == ((), (b,))
    check_stat_identities(st)
    h.verify()


def test_partial_uncached_span_goes_home_on_last_free(heap):
    h = heap
    spc = spanclass(10, True)                  # 144 B noscan
    addrs = [h.alloc(144, noscan=True) for _ in range(7)]
    base = addrs[0]
    h.flush()
    assert h.centrals()[spc].nonempty == (base,)
    inuse0 = h.stats().heap_inuse
    for a in addrs[:-1]:
        h.free(a)
        assert h.span_of(base).state == "inuse"
    h.free(addrs[-1])
    assert h.span_of(base).state == "free"
    assert h.stats().heap_inuse == inuse0 - PAGE
    assert h.centrals()[spc] == goalloc.Central(spc, (), (), 7, 7)


# ---- statistics ------------------------------------------------------------


def test_stats_exact_under_mixed_workload(backing):
    """BySize, Mallocs, Frees, HeapAlloc, TotalAlloc are exact at every
    step, and flush() changes none of them."""
    rng = random.Random(20190903)
    h = goalloc.Heap(backing=backing, procs=2)
    try:
        live: dict[int, int] = {}              # addr -> class
        nmalloc = nfree = total = 0
        classes = [1, 2, 3, 4, 9, 17, 30, 34, 40, 49, 60, 66]
        for step in range(3000):
            op = rng.random()
            if op < 0.6 or not live:
                c = rng.choice(classes)
                noscan = rng.random() < 0.5 and class_size(c) >= 16
                lo = class_size(c - 1) + 1 if c > 1 else 1
                size = rng.randint(max(lo, 16 if noscan else 1),
                                   class_size(c))
                a = h.alloc(size, noscan=noscan, p=rng.randrange(2))
                assert a not in live
                live[a] = c
                nmalloc += 1
                total += class_size(c)
            elif op < 0.98:
                a = rng.choice(list(live))
                h.free(a)
                del live[a]
                nfree += 1
            else:
                before = h.stats()
                h.flush()
                after = h.stats()
                assert after.by_size == before.by_size
                assert (after.heap_alloc, after.mallocs, after.frees,
                        after.total_alloc, after.heap_objects) == (
                    before.heap_alloc, before.mallocs, before.frees,
                    before.total_alloc, before.heap_objects)
            if step % 50 == 0 or step > 2950:
                st = h.stats()
                check_stat_identities(st)
                assert (st.mallocs, st.frees) == (nmalloc, nfree)
                assert st.heap_objects == len(live)
                assert st.total_alloc == total
                assert st.heap_alloc == sum(class_size(c)
                                            for c in live.values())
                for c in range(67):
                    b = st.by_size[c]
                    want = sum(1 for x in live.values() if x == c)
                    assert b.size == (class_size(c) if c else 0)
                    assert b.mallocs - b.frees == want, c
        h.flush()
        st = h.stats()
        # flushed: the mcentrals' own counts agree with BySize
        cen = h.centrals()
        for c in range(1, 67):
            nm = (cen[spanclass(c, False)].nmalloc
                  + cen[spanclass(c, True)].nmalloc)
            nf = cen[spanclass(c, False)].nfree + cen[spanclass(c, True)].nfree
            assert (st.by_size[c].mallocs, st.by_size[c].frees) == (nm, nf)
        h.verify()
    finally:
        h.close()


def test_stats_count_only_handed_out_slots(heap):
    """cacheSpan counts a span's free slots optimistically (nmalloc);
    stats() takes back the ones not handed out, without a flush."""
    h = heap
    spc = spanclass(3, False)
    for _ in range(5):
        h.alloc(32)
    assert h.centrals()[spc].nmalloc == class_nelems(3)   # Go's optimism
    st = h.stats()
    assert (st.by_size[3].mallocs, st.by_size[3].frees) == (5, 0)
    assert st.heap_alloc == 5 * 32
    assert st.mallocs == 5
    h.flush()
    assert h.centrals()[spc].nmalloc == 5
    assert h.stats().by_size == st.by_size


# ---- size -> class ---------------------------------------------------------


def test_size_to_class_at_every_boundary(heap):
    h = heap
    sizes = set()
    for c in CLASSES:
        sizes.add(class_size(c))
        sizes.add(class_size(c) + 1)
        sizes.add(class_size(c) - 1)
    sizes |= set(range(1009, 1030))            # the 8/128 table seam
    sizes = sorted(s for s in sizes if 1 <= s <= MAX_SMALL)
    for size in sizes:
        c = class_of(size)
        assert goalloc.size_to_class(size) == c, size
        for noscan in (False, True):
            a = h.alloc(size, noscan=noscan)
            s = h.span_of(a)
            if noscan and size < 16:
                assert s.spanclass == TINY_SPAN_CLASS, size
                continue
            assert (s.sizeclass, s.spanclass, s.elemsize) == (
                c, spanclass(c, noscan), class_size(c)), size
            assert (a - s.base) % s.elemsize == 0
    big = h.alloc(MAX_SMALL + 1)
    assert h.span_of(big).sizeclass == 0
    assert h.span_of(h.alloc(MAX_SMALL)).sizeclass == 66


def test_scan_and_noscan_use_different_span_classes(heap):
    h = heap
    for size in (16, 64, 1000, 5000, MAX_SMALL):
        c = class_of(size)
        a = h.alloc(size)
        b = h.alloc(size, noscan=True)
        sa, sb = h.span_of(a), h.span_of(b)
        assert (sa.spanclass, sb.spanclass) == (c << 1, c << 1 | 1)
        assert (sa.noscan, sb.noscan) == (False, True)
        assert sa.base != sb.base
        alloc = h.caches()[0].alloc
        assert alloc[c << 1] == sa.base and alloc[c << 1 | 1] == sb.base


# ---- several Ps ------------------------------------------------------------


def test_each_p_has_its_own_mcache(backing):
    with goalloc.Heap(backing=backing, procs=3) as h:
        spc = spanclass(8, False)               # 112 B
        a1 = h.alloc(100, p=1)
        s1 = h.span_of(a1)
        caches = h.caches()
        assert [c.p for c in caches] == [0, 1, 2]
        assert caches[1].alloc == {spc: s1.base}
        assert caches[0].alloc == {} and caches[2].alloc == {}
        a1b = h.alloc(100, p=1)
        assert a1b == a1 + 112                 # same span, next slot
        a0 = h.alloc(100, p=0)
        s0 = h.span_of(a0)
        assert s0.base != s1.base and a0 == s0.base
        assert h.caches()[0].alloc == {spc: s0.base}
        a2 = h.alloc(100, p=2)
        assert h.span_of(a2).base not in (s0.base, s1.base)
        assert set(h.centrals()[spc].empty) == {
            s0.base, s1.base, h.span_of(a2).base}
        # tiny blocks are per P too
        t = h.alloc(1, noscan=True, p=2)
        caches = h.caches()
        assert caches[2].tiny == t and caches[2].tinyoffset == 1
        assert caches[0].tiny == 0 and caches[1].tiny == 0
        # a P's objects can be freed without naming the P
        h.free(a1)
        assert h.span_objects(s1.base).states[0] == SLOT_FREED
        h.verify()


@pytest.mark.parametrize("p", [3, -1, 1024, 2**31, 2**63])
def test_p_out_of_range(backing, p):
    with goalloc.Heap(backing=backing, procs=3) as h:
        for size in (8, 100, 1, 100_000):
            h.alloc(size, noscan=size == 1)
        before = state(h)
        for size, noscan in ((8, False), (100, True), (1, True),
                             (100_000, False), (0, False)):
            with pytest.raises(ValueError):
                h.alloc(size, noscan=noscan, p=p)
            assert state(h) == before


# ---- zeroing (os) ----------------------------------------------------------


def test_reused_slot_is_zeroed_after_flush():
    with goalloc.Heap(backing="os") as h:
        addrs = [h.alloc(48) for _ in range(4)]
        v = h.view(addrs[2])
        assert len(v) == 48 and bytes(v) == bytes(48)
        v[:] = b"\xab" * 48
        h.view(addrs[1])[:] = b"\xcd" * 48
        del v
        h.free(addrs[2])
        h.flush()
        again = h.alloc(48)
        assert again == addrs[2]
        assert bytes(h.view(again)) == bytes(48)   # needzero
        assert bytes(h.view(addrs[1])) == b"\xcd" * 48


def test_reused_slot_is_zeroed_after_refill():
    with goalloc.Heap(backing="os") as h:
        nelems = class_nelems(17)               # 256 B, 32 per span
        addrs = [h.alloc(256) for _ in range(nelems)]
        for a in addrs:
            h.view(a)[:] = b"\x5a" * 256
        h.free(addrs[9])
        got = None
        for _ in range(2 * nelems):
            got = h.alloc(256)
            assert bytes(h.view(got)) == bytes(256)
            if got == addrs[9]:
                break
        assert got == addrs[9]
        assert bytes(h.view(addrs[8])) == b"\x5a" * 256


def test_pages_of_a_span_that_went_home_are_zeroed():
    with goalloc.Heap(backing="os") as h:
        addrs = [h.alloc(64) for _ in range(128)]   # one full page
        base = addrs[0]
        for a in addrs:
            h.view(a)[:] = b"\xff" * 64
        h.flush()
        for a in addrs:
            h.free(a)
        assert h.span_of(base).state == "free"
        # the page is the lowest free one: first fit hands it out again
        b = h.alloc(32)
        assert b == base
        for i in range(256):
            x = h.alloc(32) if i else b
            assert bytes(h.view(x)) == bytes(32)
