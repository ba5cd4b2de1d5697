"""Memory views of live objects (design §12.4; backing "os" only).

h.view(addr, n=None) is a writable memoryview of an object's bytes: the
slot for a small object, the requested size for a large or a tiny one
(the rest of a tiny block may be handed to the next tiny object).  A view
keeps the heap's mappings alive after close(); after free it shows
whatever is there next (stale).
"""
from __future__ import annotations

import ctypes
import gc
import random

import pytest

import goalloc
from goalloc import GoallocError, HeapClosedError
from helpers import PAGE, MiB, state
from misuse import World, rejected, still_works


def os_heap(**kw) -> goalloc.Heap:
    return goalloc.Heap(backing="os", **kw)


def is_mapped(addr: int) -> bool:
    """addr lies in some mapping of this process (/proc/self/maps)."""
    with open("/proc/self/maps") as f:
        for line in f:
            lo, hi = (int(x, 16) for x in line.split()[0].split("-"))
            if lo <= addr < hi:
                return True
    return False


def test_write_and_read_through_views():
    with os_heap() as h:
        objs = {h.alloc(100): 112, h.alloc(3000, noscan=True): 3072,
                h.alloc(100_000): 100_000, h.alloc(16, noscan=True): 16}
        for i, (a, n) in enumerate(objs.items()):
            v = h.view(a)
            assert (len(v), v.nbytes, v.format, v.itemsize) == (n, n, "B", 1)
            assert not v.readonly and v.contiguous
            assert bytes(v) == bytes(n)        # fresh objects are zeroed
            pattern = bytes((i * 7 + k) % 251 for k in range(n))
            v[:] = pattern
            assert ctypes.string_at(a, n) == pattern   # the real bytes
            assert bytes(h.view(a)) == pattern         # a second view
            ctypes.memset(a, 0x42, 1)
            assert v[0] == 0x42
        # a prefix
        a = next(iter(objs))
        assert bytes(h.view(a, 5)) == bytes([0x42, 1, 2, 3, 4])
        assert len(h.view(a, 0)) == 0
        h.verify()


def test_view_lengths():
    with os_heap() as h:
        # small: the whole slot (elemsize) of the request's class
        for size, elemsize in ((1, 8), (9, 16), (17, 32), (1000, 1024),
                               (1025, 1152), (32768, 32768)):
            assert len(h.view(h.alloc(size))) == elemsize
        # large: the requested size, not the pages
        for size in (32769, 40_000, 3 * PAGE, 1 << 20):
            a = h.alloc(size, noscan=True)
            assert len(h.view(a)) == size
            assert h.span_of(a).npages == -(-size // PAGE)
        # tiny: exactly the requested size
        h.flush()
        a = h.alloc(3, noscan=True)            # offset 0 of a fresh block
        b = h.alloc(4, noscan=True)            # offset 4
        c = h.alloc(1, noscan=True)            # offset 8
        assert (b - a, c - a) == (4, 8)
        assert len(h.view(a)) == 3
        assert len(h.view(b)) == 4
        h.alloc(9, noscan=True)                # new block, a's stays current
        h.flush()                              # no more packing into it
        assert len(h.view(c)) == 1


def test_view_outlives_close():
    h = os_heap()
    small = h.alloc(64)
    large = h.alloc(200_000)
    tiny = h.alloc(5, noscan=True)
    vs, vl, vt = h.view(small), h.view(large), h.view(tiny, 5)
    vs[0] = 7
    h.close()
    with pytest.raises(goalloc.HeapClosedError):
        h.view(small)
    vs[0] = 1
    vl[-1] = 2
    vt[4] = 3
    assert (vs[0], vl[-1], vt[4]) == (1, 2, 3)
    assert ctypes.string_at(large + 199_999, 1) == b"\x02"
    del h
    gc.collect()
    vs[1] = 9                                  # the heap object is gone
    assert vs[:2].tobytes() == b"\x01\x09"
    assert is_mapped(small)
    del vs, vl, vt
    gc.collect()
    # the last view gone: the heap's address space is unmapped
    assert not is_mapped(small)
    assert not is_mapped(large)


def test_close_without_views_unmaps():
    h = os_heap()
    a = h.alloc(64)
    assert is_mapped(a)
    h.close()
    assert not is_mapped(a)


def test_view_of_a_later_arena_outlives_close():
    h = os_heap()
    a = h.alloc(64)
    v1 = h.view(a)                             # made before the growth
    big = h.alloc(70 * MiB, noscan=True)       # does not fit arena 1
    assert len(h.arenas()) >= 2
    v2 = h.view(big, 16)
    h.close()
    v1[0] = 5
    v2[15] = 6
    assert (v1[0], v2[15]) == (5, 6)
    del v1
    gc.collect()
    assert v2[15] == 6 and is_mapped(big)
    del v2
    gc.collect()
    assert not is_mapped(big)


def test_many_views():
    rng = random.Random(7)
    with os_heap(procs=2) as h:
        objs = []
        for i in range(3000):
            kind = rng.random()
            if kind < 0.3:
                size = rng.randint(1, 15)
                a = h.alloc(size, noscan=True, p=i % 2)
            elif kind < 0.98:
                size = rng.randint(16, 4000)
                a = h.alloc(size, noscan=rng.random() < 0.5, p=i % 2)
            else:
                size = rng.randint(32769, 300_000)
                a = h.alloc(size)
            objs.append((a, size, h.view(a, size)))
        for i, (_, size, v) in enumerate(objs):
            v[:] = bytes([i % 251 + 1]) * size
        for i, (a, size, v) in enumerate(objs):
            want = bytes([i % 251 + 1]) * size
            assert bytes(v) == want
            assert ctypes.string_at(a, size) == want
        rng.shuffle(objs)
        for a, _, v in objs[:1500]:
            v.release()
            h.free(a)
        for a, size, v in objs[1500:]:
            assert bytes(h.view(a, size)) == bytes(v)
        h.verify()


def test_view_after_free_is_stale_but_safe():
    with os_heap() as h:
        a = h.alloc(48)
        t = h.alloc(6, noscan=True)
        big = h.alloc(1 << 20)
        views = [h.view(a), h.view(t, 6), h.view(big)]
        for v in views:
            v[:] = b"\xee" * len(v)
        for x in (a, t, big):
            h.free(x)
        for v in views:
            bytes(v)                          # readable, no crash
            v[0] = 1                          # writable, no crash
        with pytest.raises(ValueError):
            h.view(a)
        h.flush()
        h.scavenge()                          # madvise the free pages
        for v in views:
            assert len(bytes(v)) == len(v)
        # the slot handed out again shows through the stale view
        again = h.alloc(48)
        assert again == a
        assert bytes(views[0]) == bytes(48)   # zeroed for the new object
        h.view(again)[:] = b"\x11" * 48
        assert bytes(views[0]) == b"\x11" * 48
        h.verify()


def test_tiny_view_does_not_reach_later_objects():
    """A tiny object's view must not cover bytes the allocator hands out
    afterwards: the next tiny object must come back zeroed (mallocgc's
    contract) even when the earlier object's whole view was written."""
    with os_heap() as h:
        a = h.alloc(2, noscan=True)           # offset 0 of the current block
        v = h.view(a)
        v[:] = b"\xff" * len(v)
        b = h.alloc(2, noscan=True)           # offset 2 of the same block
        assert b == a + 2
        assert bytes(h.view(b, 2)) == bytes(2)


# ---- bad input (docs/misuse.md) --------------------------------------------


def test_row_view_on_virtual():
    """`view()` on the virtual backing: ValueError."""
    w = World("virtual")
    try:
        h = w.h
        for addr in w.live() + [w.zero, w.large_freed, 0x1234]:
            for args in ((addr,), (addr, 1), (addr, None)):
                e = rejected(h, ValueError, h.view, *args,
                             match="needs backing='os'")
                assert not isinstance(e, GoallocError)
        still_works(h, w.live())
    finally:
        w.close()


def test_row_view_bad_object():
    """`view()` of a freed object, an interior address, or longer than
    the object: ValueError."""
    w = World("os")
    try:
        h = w.h
        dead = [w.cached[3], w.swept[2], w.flushed[1], w.tiny[1],
                w.tiny_old[1], w.large_freed, w.released, w.returned[0],
                w.mixed[4][0],
                w.cached[0] + 8, w.large + 8, w.large + PAGE,     # interior
                w.tiny[0] + 1, w.tiny16 + 8,
                h.span_of(w.cached[0]).base + 20 * 48,   # never allocated
                h.span_of(w.cached[0]).limit,            # tail
                w.zero, w.zero + 8, 1]                    # not an object
        for addr in dead:
            for args in ((addr,), (addr, 1)):
                e = rejected(h, ValueError, h.view, *args,
                             match="is not the start of a live object")
                assert not isinstance(e, GoallocError)
        for addr, extent in ((w.cached[0], 48), (w.flushed[0], 144),
                             (w.large, 40_000), (w.tiny16, 16),
                             (w.tiny[0], 3), (w.tiny[2], 3),
                             (w.mixed[1][0], 32)):    # 24 B: its slot
            assert len(h.view(addr)) == extent
            assert len(h.view(addr, extent)) == extent
            for n in (extent + 1, extent + 8, 1 << 40, 2**64 - 1):
                rejected(h, ValueError, h.view, addr, n,
                         match=rf"n={n} exceeds the object's {extent} usable")
        for addr in (-1, 1 << 64):
            rejected(h, ValueError, h.view, addr, match="out of range")
        rejected(h, ValueError, h.view, w.large, -1, match="out of range")
        still_works(h, w.live())
    finally:
        w.close()


def test_row_view_kept_after_free():
    """A view kept after `free`: allowed; it shows whatever the allocator
    puts there next."""
    w = World("os")
    try:
        h = w.h
        small, large = w.cached[0], w.large
        tiny = w.tiny[2]
        vs, vl, vt = h.view(small), h.view(large), h.view(tiny)
        vs[:] = b"\x11" * 48
        vl[:] = b"\x22" * 40_000
        vt[:] = b"\x33" * 3
        for a in (small, large, tiny):
            h.free(a)
        # the views are still readable and writable, and writing through
        # them touches no allocator metadata
        after_free = state(h)
        for v in (vs, vl, vt):
            bytes(v)
            v[0] = 0x44
            v[-1] = 0x45
        assert state(h) == after_free
        for a in (small, large, tiny):
            rejected(h, ValueError, h.view, a)
        # the large object's pages go to the next object of its size
        again = h.alloc(40_000, p=1)
        assert again == large
        h.view(again)[:8] = b"newlarge"
        assert bytes(vl[:8]) == b"newlarge"
        # the small slot, after the sweep, to the next 48-byte object
        h.flush()
        slot = None
        for _ in range(200):
            x = h.alloc(48, p=1)
            if x == small:
                slot = x
                break
        assert slot == small
        h.view(slot)[:] = b"\x55" * 48
        assert bytes(vs) == b"\x55" * 48
        still_works(h, [again, slot])
        vs.release()
        vl.release()
        vt.release()
    finally:
        w.close()


def test_row_view_kept_after_close():
    """A view kept after `close()`: allowed; the heap's memory stays
    mapped until the last view is released."""
    w = World("os")
    h = w.h
    small, large, tiny = w.cached[0], w.large, w.tiny16
    vs, vl, vt = h.view(small), h.view(large), h.view(tiny)
    vs[:] = b"\x61" * 48
    vl[-5:] = b"large"
    vt[:] = b"0123456789abcdef"
    h.close()
    assert h.closed
    with pytest.raises(HeapClosedError):
        h.view(small)
    assert (bytes(vs), bytes(vl[-5:]), bytes(vt)) == \
        (b"\x61" * 48, b"large", b"0123456789abcdef")
    vs[0] = 0x62
    vl[0] = 0x63
    assert (vs[0], vl[0]) == (0x62, 0x63)
    assert is_mapped(small) and is_mapped(large)
    del vs, vt
    gc.collect()
    assert is_mapped(large) and vl[0] == 0x63
    del vl
    gc.collect()
    assert not is_mapped(small) and not is_mapped(large)
    h.close()
