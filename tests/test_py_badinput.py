"""Bad input never damages the heap (design §10.2).

Every rejected call raises the exact exception type and leaves the full
introspection (hints, arenas, spans, stats, info) exactly as it was.
"""
from __future__ import annotations

import pytest

import goalloc
from helpers import ARENA, GO_HEAP_START, PAGE, MiB, snapshot


@pytest.fixture
def grown(heap):
    """A heap with one live large object; returns (heap, addr)."""
    p = heap.alloc(100_000)
    return heap, p


def raises_unchanged(h, exc, fn, *args, match=None, **kwargs):
    """fn(*args, **kwargs) raises exactly exc and changes nothing."""
    before = snapshot(h)
    with pytest.raises(exc, match=match) as ei:
        fn(*args, **kwargs)
    assert type(ei.value) is exc
    assert snapshot(h) == before
    return ei.value


# ---- alloc -----------------------------------------------------------------


@pytest.mark.parametrize("size", ["10", 1.5, None, b"10", [10], 10.0])
def test_alloc_wrong_type(grown, size):
    h, _ = grown
    raises_unchanged(h, TypeError, h.alloc, size)


@pytest.mark.parametrize("size", [-1, -(2**70), 2**64, 2**70])
def test_alloc_out_of_range(grown, size):
    h, _ = grown
    raises_unchanged(h, ValueError, h.alloc, size)


def test_alloc_above_max_alloc_fresh_heap(heap):
    # Before anything moves: no growth, the hints untouched.
    e = raises_unchanged(heap, ValueError, heap.alloc, 2**48 + 1)
    assert "maxAlloc" in str(e)
    assert heap.hints()[0].addr == GO_HEAP_START
    assert heap.arenas() == []
    e = raises_unchanged(heap, ValueError, heap.alloc, 2**64 - 1)
    assert "maxAlloc" in str(e)


def test_alloc_above_max_alloc_grown_heap(grown):
    h, _ = grown
    e = raises_unchanged(h, ValueError, h.alloc, 2**48 + 1, noscan=True)
    assert "maxAlloc" in str(e)


@pytest.mark.parametrize("goarch,too_big", [("386", 2**32), ("arm", 2**32),
                                            ("mips", 2**31),
                                            ("mipsle", 2**31)])
def test_alloc_max_alloc_32bit(goarch, too_big):
    # maxAlloc = (1 << heapAddrBits) - 1 on 32-bit ports; heapAddrBits is
    # 31 on mips and mipsle (malloc.go), so 2^31 is already too big there
    with goalloc.Heap(goos="linux", goarch=goarch, backing="virtual") as h:
        e = raises_unchanged(h, ValueError, h.alloc, too_big)
        assert "maxAlloc" in str(e)


def test_alloc_exactly_max_alloc_is_out_of_memory(heap):
    # 2^48 is allowed by the maxAlloc check, but no address space holds
    # it: the OS refuses and nothing changes.
    raises_unchanged(heap, goalloc.OutOfMemoryError, heap.alloc, 2**48)


def test_alloc_bad_p(heap):
    raises_unchanged(heap, ValueError, heap.alloc, 10**6, p=1)
    raises_unchanged(heap, ValueError, heap.alloc, 10**6, p=-1)
    raises_unchanged(heap, ValueError, heap.alloc, 10**6, p=2**70)
    raises_unchanged(heap, TypeError, heap.alloc, 10**6, p="0")
    raises_unchanged(heap, TypeError, heap.alloc, 10**6, p=0.0)


def test_alloc_p_with_more_procs(backing):
    with goalloc.Heap(backing=backing, procs=3) as h:
        a = h.alloc(10**6, p=2)
        assert h.span_of(a).base == a
        raises_unchanged(h, ValueError, h.alloc, 10**6, p=3)


def test_alloc_bad_arguments(grown):
    h, _ = grown
    raises_unchanged(h, TypeError, h.alloc, 10**6, bogus=1)
    raises_unchanged(h, TypeError, h.alloc)
    raises_unchanged(h, TypeError, h.alloc, 10**6, True)
    raises_unchanged(h, TypeError, h.alloc, size=10**6)


def test_alloc_noscan_truth_error(grown):
    class Bad:
        def __bool__(self):
            raise ZeroDivisionError

    h, _ = grown
    raises_unchanged(h, ZeroDivisionError, h.alloc, 10**6, noscan=Bad())


# ---- free ------------------------------------------------------------------


@pytest.mark.parametrize("addr", ["x", 1.0, None, b"\x00"])
def test_free_wrong_type(grown, addr):
    h, _ = grown
    raises_unchanged(h, TypeError, h.free, addr)


def test_free_negative_is_invalid_free(grown):
    h, _ = grown
    e = raises_unchanged(h, goalloc.InvalidFreeError, h.free, -5)
    assert isinstance(e, ValueError) and isinstance(e, goalloc.GoallocError)
    raises_unchanged(h, goalloc.InvalidFreeError, h.free, 2**64)


@pytest.mark.parametrize("addr", [0, 0x1234, 0x7FFF_FFFF_F000, 2**64 - 1])
def test_free_foreign(grown, addr):
    h, _ = grown
    raises_unchanged(h, goalloc.InvalidFreeError, h.free, addr)


def test_free_foreign_before_first_arena(heap):
    raises_unchanged(heap, goalloc.InvalidFreeError, heap.free,
                     GO_HEAP_START)


@pytest.mark.parametrize("off", [1, 8, PAGE, 100_000 - 1, 13 * PAGE - 1])
def test_free_interior(grown, off):
    h, p = grown
    e = raises_unchanged(h, goalloc.InvalidFreeError, h.free, p + off)
    assert not isinstance(e, goalloc.DoubleFreeError)


def test_double_free(grown):
    h, p = grown
    h.alloc(5 * PAGE)  # keeps p's span apart from the fresh tail
    h.free(p)
    e = raises_unchanged(h, goalloc.DoubleFreeError, h.free, p)
    assert isinstance(e, goalloc.InvalidFreeError)
    assert isinstance(e, ValueError)
    # still a double free after the memory was released ...
    h.scavenge()
    raises_unchanged(h, goalloc.DoubleFreeError, h.free, p)
    # ... but an interior page of the freed object is just invalid
    e = raises_unchanged(h, goalloc.InvalidFreeError, h.free, p + PAGE)
    assert not isinstance(e, goalloc.DoubleFreeError)


def test_double_free_after_coalescing(grown):
    h, p = grown
    q = h.alloc(100_000)
    h.alloc(5 * PAGE)
    h.free(p)
    h.free(q)  # q's span merges into p's
    assert h.span_of(q).base == p
    raises_unchanged(h, goalloc.DoubleFreeError, h.free, q)
    raises_unchanged(h, goalloc.DoubleFreeError, h.free, p)


def test_free_after_reuse_by_bigger_object(grown):
    # p freed, then a bigger object covers p's pages from p on: p is the
    # new object's start (documented limit, design §10.4) while an old
    # interior start is not an object.
    h, p = grown
    q = h.alloc(100_000)
    h.alloc(5 * PAGE)
    h.free(p)
    h.free(q)
    r = h.alloc(200_000)
    assert r == p
    raises_unchanged(h, goalloc.InvalidFreeError, h.free, q)
    h.free(r)


def test_free_never_allocated_free_span(backing):
    # go1.13.0: the first growth leaves the rest of the arena as a free
    # span that was never allocated
    with goalloc.Heap(backing=backing, release="go1.13.0") as h:
        p = h.alloc(100_000)
        tail = h.spans()[-1]
        assert tail.state == "free" and tail.base == p + 13 * PAGE
        for addr in (tail.base, tail.base + 7 * PAGE, tail.end - PAGE):
            e = raises_unchanged(h, goalloc.InvalidFreeError, h.free, addr)
            assert not isinstance(e, goalloc.DoubleFreeError)
            assert "not the start of a live object" in str(e)
        h.verify()


def test_free_in_cur_arena(grown):
    # go1.13.8: the rest of the arena is curArena, mapped but no span;
    # freeing there is freeing no object (not a foreign address)
    h, p = grown
    info = h.info()
    assert (info.cur_arena_base, info.cur_arena_end) == (
        p + 13 * PAGE, h.arenas()[0].base + 64 * MiB)
    for addr in (info.cur_arena_base, info.cur_arena_base + 7 * PAGE + 16,
                 info.cur_arena_end - 1):
        e = raises_unchanged(h, goalloc.InvalidFreeError, h.free, addr)
        assert not isinstance(e, goalloc.DoubleFreeError)
        assert "not the start of a live object" in str(e)
        assert h.span_of(addr) is None


# ---- scavenge, span_of, block_range, fail_reserves ----------------------


def test_scavenge_bad_arguments(grown):
    h, _ = grown
    raises_unchanged(h, TypeError, h.scavenge, "1")
    raises_unchanged(h, TypeError, h.scavenge, 1.0)
    raises_unchanged(h, ValueError, h.scavenge, -1)
    raises_unchanged(h, TypeError, h.scavenge, 1, 2)


def test_span_of_bad_arguments(grown):
    h, _ = grown
    raises_unchanged(h, TypeError, h.span_of, "x")
    raises_unchanged(h, ValueError, h.span_of, -1)
    assert h.span_of(0x1234) is None
    assert h.span_of(2**64 - 1) is None


def test_block_range_occupied(grown):
    h, p = grown
    raises_unchanged(h, ValueError, h.block_range, p, 4096)
    raises_unchanged(h, ValueError, h.block_range, p + 20 * PAGE, 4096)
    raises_unchanged(h, ValueError, h.block_range, p - 4096, 8192)


def test_block_range_bad_arguments(heap):
    raises_unchanged(heap, ValueError, heap.block_range,
                     GO_HEAP_START + 1000 * ARENA, 0)
    raises_unchanged(heap, ValueError, heap.block_range, -1, 4096)
    raises_unchanged(heap, TypeError, heap.block_range, "a", 4096)
    raises_unchanged(heap, TypeError, heap.block_range, 4096)


def test_block_range_never_clobbers_process_memory():
    # On os, a range someone else already mapped (here: a Python buffer)
    # is refused, not replaced (no MAP_FIXED over it).
    import ctypes
    buf = bytearray(b"\x5a" * (64 * 1024))
    addr = ctypes.addressof((ctypes.c_char * len(buf)).from_buffer(buf))
    page = (addr + 8191) & ~4095
    with goalloc.Heap(backing="os") as h:
        raises_unchanged(h, ValueError, h.block_range, page, 4096)
    assert bytes(buf) == b"\x5a" * len(buf)


def test_block_range_twice_on_virtual():
    with goalloc.Heap(backing="virtual") as h:
        a = GO_HEAP_START + 1000 * ARENA
        h.block_range(a, 4096)
        raises_unchanged(h, ValueError, h.block_range, a, 4096)
        raises_unchanged(h, ValueError, h.block_range, a - 4096, 8192)


def test_sys_limit_refuses_first_growth():
    with goalloc.Heap(sys_limit=64 << 20, backing="virtual") as h:
        e = raises_unchanged(h, goalloc.OutOfMemoryError, h.alloc, 100 << 20)
        assert isinstance(e, MemoryError)
        assert h.arenas() == []
        # one arena fits the limit ...
        p = h.alloc(100_000)
        assert p == GO_HEAP_START
        # ... a second one does not
        raises_unchanged(h, goalloc.OutOfMemoryError, h.alloc, 64 << 20)
        # but what fits in the arena still works
        h.alloc(60 << 20)
        h.verify()


def test_fail_reserves_out_of_memory():
    with goalloc.Heap(backing="virtual") as h:
        hints = h.hints()
        h.fail_reserves(1000)
        raises_unchanged(h, goalloc.OutOfMemoryError, h.alloc, 100_000)
        assert h.hints() == hints  # the failed hints were not dropped
        h.fail_reserves(0)
        assert h.alloc(100_000) == GO_HEAP_START
        h.verify()


def test_fail_reserves_on_grown_heap():
    with goalloc.Heap(backing="virtual") as h:
        h.alloc(100_000)
        h.fail_reserves(1000)
        raises_unchanged(h, goalloc.OutOfMemoryError, h.alloc, 64 << 20)
        # allocations that need no growth do not reserve anything
        h.alloc(1 << 20)
        h.verify()


def test_fail_reserves_bad_arguments():
    with goalloc.Heap(backing="os") as h:
        raises_unchanged(h, ValueError, h.fail_reserves, 1)
    with goalloc.Heap(backing="virtual") as h:
        raises_unchanged(h, ValueError, h.fail_reserves, -1)
        raises_unchanged(h, ValueError, h.fail_reserves, 2**40)
        raises_unchanged(h, TypeError, h.fail_reserves, "1")


# ---- Closed and poisoned heaps -------------------------------------------


def every_call(h, p):
    """Each public (and test-hook) call on a heap, with valid arguments."""
    return [
        ("alloc", lambda: h.alloc(100_000)),
        ("alloc0", lambda: h.alloc(0)),
        ("free", lambda: h.free(p)),
        ("scavenge", lambda: h.scavenge()),
        ("scavenge_n", lambda: h.scavenge(4096)),
        ("hints", h.hints),
        ("arenas", h.arenas),
        ("spans", h.spans),
        ("span_of", lambda: h.span_of(p)),
        ("stats", h.stats),
        ("info", h.info),
        ("verify", h.verify),
        ("block_range", lambda: h.block_range(GO_HEAP_START + 999 * ARENA,
                                              4096)),
        ("fail_reserves", lambda: h.fail_reserves(0)),
        ("_throw", lambda: h._throw("again")),
    ]


def test_closed_heap_raises_everywhere(backing):
    h = goalloc.Heap(backing=backing)
    p = h.alloc(100_000)
    assert not h.closed
    h.close()
    assert h.closed
    for name, call in every_call(h, p):
        if name == "fail_reserves" and backing == "os":
            continue  # checked below: refused for os before or after close
        with pytest.raises(goalloc.HeapClosedError) as ei:
            call()
        assert type(ei.value) is goalloc.HeapClosedError, name
        assert isinstance(ei.value, RuntimeError)
    with pytest.raises(goalloc.HeapClosedError):
        h.fail_reserves(0)
    with pytest.raises(goalloc.HeapClosedError):
        with h:
            pass
    h.close()  # twice is fine
    h.close()
    assert h.closed
    assert repr(h) == "<goalloc.Heap closed>"


def test_with_closes(backing):
    with goalloc.Heap(backing=backing) as h:
        assert isinstance(h, goalloc.Heap)
        h.alloc(100_000)
        assert not h.closed
    assert h.closed
    with pytest.raises(goalloc.HeapClosedError):
        h.stats()


def test_with_closes_on_exception():
    with pytest.raises(KeyError):
        with goalloc.Heap(backing="virtual") as h:
            raise KeyError("x")
    assert h.closed


def test_throw_poisons_the_heap(backing):
    h = goalloc.Heap(backing=backing)
    try:
        p = h.alloc(100_000)
        with pytest.raises(goalloc.HeapCorruptionError) as ei:
            h._throw("boom")
        assert str(ei.value) == "boom"
        assert isinstance(ei.value, RuntimeError)
        assert isinstance(ei.value, goalloc.GoallocError)
        for name, call in every_call(h, p):
            with pytest.raises(goalloc.HeapCorruptionError) as ei:
                call()
            assert type(ei.value) is goalloc.HeapCorruptionError, name
            assert str(ei.value) == "boom", name
        assert not h.closed
    finally:
        h.close()
    assert h.closed
    with pytest.raises(goalloc.HeapClosedError):
        h.stats()


def test_throw_message_is_copied():
    h = goalloc.Heap(backing="virtual")
    msg = "".join(["span has no ", "free objects"])
    with pytest.raises(goalloc.HeapCorruptionError):
        h._throw(msg)
    del msg
    with pytest.raises(goalloc.HeapCorruptionError,
                       match="^span has no free objects$"):
        h.spans()
    h.close()


def test_throw_bad_argument(heap):
    raises_unchanged(heap, TypeError, heap._throw, 3)


def test_exception_hierarchy():
    G = goalloc.GoallocError
    assert issubclass(goalloc.InvalidFreeError, G)
    assert issubclass(goalloc.InvalidFreeError, ValueError)
    assert issubclass(goalloc.DoubleFreeError, goalloc.InvalidFreeError)
    assert issubclass(goalloc.OutOfMemoryError, G)
    assert issubclass(goalloc.OutOfMemoryError, MemoryError)
    assert issubclass(goalloc.HeapClosedError, G)
    assert issubclass(goalloc.HeapClosedError, RuntimeError)
    assert issubclass(goalloc.HeapCorruptionError, G)
    assert issubclass(goalloc.HeapCorruptionError, RuntimeError)
    assert not issubclass(goalloc.HeapCorruptionError,
                          goalloc.HeapClosedError)
    assert not issubclass(goalloc.OutOfMemoryError, ValueError)


def test_many_rejections_then_still_healthy(grown):
    h, p = grown
    before = snapshot(h)
    for _ in range(3):
        for bad in (lambda: h.alloc(-1), lambda: h.alloc("1"),
                    lambda: h.free(p + 8), lambda: h.free(0x1234),
                    lambda: h.alloc(2**48 + 1), lambda: h.alloc(1, p=9)):
            with pytest.raises((TypeError, ValueError)):
                bad()
    assert snapshot(h) == before
    h.verify()
    h.free(p)
    assert h.stats().heap_objects == 0
    assert h.alloc(100_000) == p
    assert h.stats().heap_sys == 64 * MiB
