"""Bulk introspection as NumPy arrays (goalloc.arrays).

span_array, object_array and page_array fill a flat buffer in one C call
(design §12.2, design §12.3); they must say exactly what spans(), the live
objects and stats() say, at any scale.
"""
from __future__ import annotations

import numpy as np
import pytest

import goalloc
from goalloc import arrays, workloads
from goalloc.trace import ALLOC, Trace

PAGE = 8192
TINY_SPANCLASS = 5            # size class 2 (16 B), noscan: tinySpanClass


def replayed_heap(backing: str, trace: Trace, procs: int = 1,
                  release: str = "go1.13.8"):
    h = goalloc.Heap(backing=backing, procs=procs, release=release)
    tl = h.replay(trace)
    return h, tl


def object_sizes(trace: Trace) -> np.ndarray:
    sizes = np.zeros(trace.nids, dtype=np.uint64)
    a = trace.kind == ALLOC
    sizes[trace.id[a]] = trace.size[a]
    return sizes


def noscan_of(trace: Trace) -> np.ndarray:
    ns = np.zeros(trace.nids, dtype=bool)
    a = trace.kind == ALLOC
    ns[trace.id[a]] = trace.noscan[a].astype(bool)
    return ns


def check_span_array(h: goalloc.Heap) -> np.ndarray:
    sa = h.span_array()
    spans = h.spans()
    assert sa.dtype == arrays.SPAN_DTYPE
    assert len(sa) == len(spans)
    for row, s in zip(sa.tolist(), spans, strict=True):
        (base, npages, state, scav, spc, sc, noscan, elemsize, nelems,
         alloc_count, freeindex, limit, needzero, sweepgen) = row
        assert arrays.SPAN_STATES[state] == s.state
        assert (base, npages, bool(scav)) == (s.base, s.npages, s.scavenged)
        if s.state == "inuse":
            assert (spc, sc, bool(noscan), elemsize, nelems, alloc_count,
                    freeindex, limit, bool(needzero), sweepgen) == \
                (s.spanclass, s.sizeclass, s.noscan, s.elemsize, s.nelems,
                 s.alloc_count, s.freeindex, s.limit, s.needzero, s.sweepgen)
    assert (np.diff(sa["base"].astype(np.int64)) > 0).all()
    return sa


def check_page_array(h: goalloc.Heap, sa: np.ndarray) -> np.ndarray:
    pa = h.page_array()
    st = h.stats()
    assert pa.dtype == np.int16
    assert len(pa) * PAGE == st.heap_sys == len(h.arenas()) * \
        h.info().heap_arena_bytes
    # each page carries its span's code, spans in address order
    state = sa["state"]
    code = np.where(state == arrays.SPAN_STATES.index("inuse"),
                    sa["sizeclass"].astype(np.int64),
                    np.where(state == arrays.SPAN_STATES.index("free"),
                             np.where(sa["scavenged"] == 1,
                                      arrays.PAGE_RELEASED,
                                      arrays.PAGE_FREE),
                             arrays.PAGE_MANUAL))
    # go1.13.8's curArena, mapped but no span, shows as released pages
    # where it lies (ReadMemStatsSlow counts it released)
    info = h.info()
    bases = sa["base"].astype(np.uint64)
    npages = sa["npages"].astype(np.int64)
    if info.cur_arena_end > info.cur_arena_base:
        at = int(np.searchsorted(bases, np.uint64(info.cur_arena_base)))
        code = np.insert(code, at, arrays.PAGE_RELEASED)
        npages = np.insert(npages, at, (info.cur_arena_end -
                                        info.cur_arena_base) // PAGE)
    assert np.array_equal(pa, np.repeat(code, npages))
    # ... and the counts are the statistics
    assert np.count_nonzero(pa >= 0) * PAGE == st.heap_inuse
    assert np.count_nonzero(pa < 0) * PAGE == st.heap_idle
    assert np.count_nonzero(pa == arrays.PAGE_RELEASED) * PAGE == \
        st.heap_released
    assert np.count_nonzero(pa == arrays.PAGE_FREE) * PAGE == \
        st.heap_idle - st.heap_released
    assert np.count_nonzero(pa == arrays.PAGE_MANUAL) == 0
    inuse = sa[state == arrays.SPAN_STATES.index("inuse")]
    large = inuse[inuse["sizeclass"] == 0]
    assert np.count_nonzero(pa == arrays.PAGE_LARGE) == \
        int(large["npages"].sum())
    for c in range(1, goalloc.NUM_SIZE_CLASSES):
        assert np.count_nonzero(pa == c) == \
            int(inuse["npages"][inuse["sizeclass"] == c].sum()), c
    assert pa.max(initial=0) < goalloc.NUM_SIZE_CLASSES
    return pa


def check_object_array(h: goalloc.Heap, sa: np.ndarray) -> np.ndarray:
    """object_array against stats(), the span table and the caches."""
    oa = h.object_array()
    st = h.stats()
    assert oa.dtype == arrays.OBJECT_DTYPE
    assert (np.diff(oa["addr"].astype(np.int64)) > 0).all()
    tiny = oa["spanclass"] == TINY_SPANCLASS
    small = ~tiny & (oa["spanclass"] >> 1 != 0)
    large = oa["spanclass"] >> 1 == 0
    # usable sizes: the class size for small objects, the request for
    # large and tiny ones (goalloc.h: ga_live_object)
    classes = goalloc.size_classes()
    csize = np.array([c.size for c in classes], dtype=np.uint64)
    assert np.array_equal(oa["size"][small],
                          csize[oa["spanclass"][small] >> 1])
    assert (oa["requested"][small] <= oa["size"][small]).all()
    assert np.array_equal(oa["size"][large], oa["requested"][large])
    # span class 5 holds tiny blocks and 16-byte noscan objects alike
    # (Go's tinySpanClass); a 16-byte object fills its block
    assert (oa["requested"][tiny] <= 16).all()
    assert np.array_equal(oa["size"][tiny], oa["requested"][tiny])
    # tiny objects do not overlap and stay inside their 16-byte block
    blocks = oa["addr"][tiny] // 16
    ends = oa["addr"][tiny] + oa["size"][tiny]
    assert (ends <= (blocks + 1) * 16).all()
    assert (ends[:-1] <= oa["addr"][tiny][1:]).all()
    # heap_alloc: small slots + whole pages of large spans + 16-byte tiny
    # blocks, including a P's current block when nothing in it is live
    inuse = sa[sa["state"] == arrays.SPAN_STATES.index("inuse")]
    large_spans = inuse[inuse["sizeclass"] == 0]
    assert np.array_equal(np.sort(large_spans["base"]), oa["addr"][large])
    live_blocks = set(blocks.tolist())
    empty_cached = {c.tiny // 16 for c in h.caches()
                    if c.tiny and c.tiny // 16 not in live_blocks}
    assert st.heap_alloc == int(oa["size"][small].sum()) \
        + int(large_spans["npages"].sum()) * PAGE \
        + 16 * (len(live_blocks) + len(empty_cached))
    assert st.heap_objects == int(small.sum() + large.sum()) \
        + len(live_blocks) + len(empty_cached)
    assert h.fragmentation().requested_live == int(oa["requested"].sum())
    return oa


@pytest.mark.parametrize("procs", [1, 3])
def test_arrays_agree_with_the_heap(backing, procs, release):
    trace = workloads.go_mix(40_000, live=3000, seed=9, procs=procs)
    h, tl = replayed_heap(backing, trace, procs, release)
    with h:
        sa = check_span_array(h)
        check_page_array(h, sa)
        oa = check_object_array(h, sa)
        # the live objects are the trace's live ids
        sizes = object_sizes(trace)
        live = tl.live & (sizes > 0)
        order = np.argsort(tl.addresses[live])
        assert np.array_equal(oa["addr"], tl.addresses[live][order])
        assert np.array_equal(oa["requested"], sizes[live][order])
        ns = noscan_of(trace)[live][order]
        assert np.array_equal(oa["spanclass"] & 1, ns.astype(np.uint64))
        # and agree with span_of / span_objects, object by object (a few)
        for addr, _size, _req, spc, dropped in oa[::97].tolist():
            assert dropped == 0
            s = h.span_of(addr)
            assert s is not None and s.spanclass == spc
        # after flush no P holds a tiny block: all blocks have live objects
        h.flush()
        sa = check_span_array(h)
        check_page_array(h, sa)
        check_object_array(h, sa)
        # scavenge releases free pages: page codes follow
        h.scavenge()
        sa = check_span_array(h)
        pa = check_page_array(h, sa)
        assert np.count_nonzero(pa == arrays.PAGE_FREE) == 0
        # free everything: no object left, pages all free
        for a in oa["addr"].tolist():
            h.free(a)
        h.flush()
        assert len(h.object_array()) == 0
        sa = check_span_array(h)
        pa = check_page_array(h, sa)
        assert (pa < 0).all()
        h.verify()


def test_tiny_objects_and_an_empty_cached_block(backing):
    with goalloc.Heap(backing=backing) as h:
        a, b, c = (h.alloc(n, noscan=True) for n in (3, 5, 4))
        oa = h.object_array()
        assert oa["addr"].tolist() == [a, b, c]
        assert oa["requested"].tolist() == [3, 5, 4]
        assert oa["spanclass"].tolist() == [TINY_SPANCLASS] * 3
        # packed in one block: c is 4-byte aligned (Go's tiny alignment)
        assert (b - a, c - a) == (3, 8)
        assert oa["size"].tolist() == [3, 5, 4]
        for x in (a, b, c):
            h.free(x)
        # the block stays allocated while P 0 packs into it
        assert len(h.object_array()) == 0
        assert h.stats().heap_alloc == 16
        sa = check_span_array(h)
        check_object_array(h, sa)
        h.flush()
        assert h.stats().heap_alloc == 0


def test_empty_heap():
    with goalloc.Heap(backing="virtual") as h:
        sa, oa, pa = h.span_array(), h.object_array(), h.page_array()
        assert (len(sa), len(oa), len(pa)) == (0, 0, 0)
        assert (sa.dtype, oa.dtype, pa.dtype) == (arrays.SPAN_DTYPE,
                                                  arrays.OBJECT_DTYPE,
                                                  np.int16)
        h.alloc(0)                      # zerobase: no span, no object
        assert len(h.object_array()) == 0 and len(h.span_array()) == 0
    with pytest.raises(goalloc.HeapClosedError):
        h.span_array()
    with pytest.raises(goalloc.HeapClosedError):
        h.object_array()
    with pytest.raises(goalloc.HeapClosedError):
        h.page_array()


def test_module_functions_are_the_methods():
    trace = workloads.uniform(5000, 1, 50_000, live=300, seed=2)
    h, _ = replayed_heap("virtual", trace)
    with h:
        assert np.array_equal(arrays.span_array(h), h.span_array())
        assert np.array_equal(arrays.object_array(h), h.object_array())
        assert np.array_equal(arrays.page_array(h), h.page_array())


def test_a_hundred_thousand_spans():
    """100k+ spans on the virtual backing: large objects of 5 pages,
    every other one freed (free spans between in-use ones)."""
    n = 100_000
    ids = np.arange(n, dtype=np.uint64)
    kind = np.concatenate([np.zeros(n, np.uint8), np.ones(n // 2, np.uint8)])
    trace = Trace(kind, np.concatenate([ids, ids[::2]]),
                  np.concatenate([np.full(n, 5 * PAGE - 100, np.uint64),
                                  np.zeros(n // 2, np.uint64)]))
    with goalloc.Heap(backing="virtual") as h:
        h.replay(trace)
        sa = h.span_array()
        inuse = sa["state"] == arrays.SPAN_STATES.index("inuse")
        assert np.count_nonzero(inuse) == n // 2
        assert len(sa) >= n
        assert (sa["npages"][inuse] == 5).all()
        sa = check_span_array(h)
        pa = check_page_array(h, sa)
        assert np.count_nonzero(pa == arrays.PAGE_LARGE) == 5 * n // 2
        oa = h.object_array()
        assert len(oa) == n // 2
        assert (oa["size"] == 5 * PAGE - 100).all()
        assert h.stats().heap_alloc == n // 2 * 5 * PAGE
        h.verify()
