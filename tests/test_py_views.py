"""Memory views of live objects (design §12.4; backing "os" only).

h.view(addr, n=None) is a writable memoryview of an object's bytes: the
slot for a small object, the requested size for a large or a tiny one
(the rest of a tiny block may be handed to the next tiny object).  A view keeps the heap's mappings alive
after close(); after free it shows whatever is there next (stale).
"""
from __future__ import annotations

import ctypes
import gc
import random

import pytest

import goalloc
from helpers import PAGE, MiB


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
        for i, (a, size, v) in enumerate(objs):
            v[:] = bytes([i % 251 + 1]) * size
        for i, (a, size, v) in enumerate(objs):
            want = bytes([i % 251 + 1]) * size
            assert bytes(v) == want
            assert ctypes.string_at(a, size) == want
        rng.shuffle(objs)
        for a, size, v in objs[:1500]:
            v.release()
            h.free(a)
        for i, (a, size, v) in enumerate(objs[1500:]):
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
