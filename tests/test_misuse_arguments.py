"""Arguments a call refuses (docs/misuse.md): a wrong type, a size out of
range or beyond maxAlloc, a p that is not a P of the heap, an unknown
keyword, bad Heap() options, NUL in a str, and bad arguments of the
other calls and of the fault-injection hooks.  Each raises the exact
exception before anything changes (misuse.rejected).
"""
from __future__ import annotations

import ctypes
import re

import pytest

import goalloc
from goalloc import (
    GoallocError,
    OutOfMemoryError,
)
from helpers import (
    ARENA,
    GO_HEAP_START,
    PAGE,
    MiB,
    state,
)
from misuse import PROCS, assert_exc, rejected, still_works

# ---- alloc and free: types and ranges --------------------------------------


def test_row_wrong_type(world):
    """`alloc("10")`, `alloc(1.5)`, `free("x")`, `Heap(procs="2")`,
    `Heap(goos=3)`, `Heap(release=1)`: TypeError."""
    h = world.h
    for bad in ("10", 1.5, None, b"10", [10], 10.0):
        rejected(h, TypeError, h.alloc, bad, match="size must be an int")
        rejected(h, TypeError, h.alloc, bad, noscan=True, p=2,
                 match="size must be an int")
    for bad in ("x", 1.0, None, b"\0", [world.large]):
        rejected(h, TypeError, h.free, bad, match="address must be an int")
    for p in ("0", 0.0, None):
        rejected(h, TypeError, h.alloc, 48, p=p, match="p must be an int")
    rejected(h, TypeError, h.scavenge, "1")
    rejected(h, TypeError, h.span_of, "x")
    if world.backing == "os":
        rejected(h, TypeError, h.view, str(world.large))
        rejected(h, TypeError, h.view, world.large, 1.5)
    # a heap that is not made does not touch another one
    before = state(h)
    for kw, word in ((dict(procs="2"), "procs"), (dict(procs=2.0), "procs"),
                     (dict(goos=3), "goos"), (dict(goarch=b"amd64"), "goarch"),
                     (dict(backing=1), "backing"),
                     (dict(release=1), "release"),
                     (dict(sys_limit="big"), "sys_limit"),
                     (dict(seed=1.5), "seed")):
        with pytest.raises(TypeError) as ei:
            goalloc.Heap(**kw)
        assert_exc(ei.value, TypeError, match=word)
    with pytest.raises(TypeError):
        goalloc.Heap("linux", "amd64")
    assert state(h) == before
    still_works(h, world.live())


def test_row_negative_or_beyond_2_64(world):
    """A negative size, or a size beyond 2**64: ValueError."""
    h = world.h
    for size in (-1, -48, -(2**64), -(2**70), 2**64, 2**64 + 48, 2**70):
        for noscan, p in ((False, 0), (True, 2)):
            e = rejected(h, ValueError, h.alloc, size, noscan=noscan, p=p,
                         match="size out of range")
            assert not isinstance(e, GoallocError)
            assert str(size) in str(e)
    still_works(h, world.live())


def test_row_beyond_max_alloc(world):
    """Beyond maxAlloc: ValueError naming maxAlloc, refused before any
    hint or arena moves."""
    h = world.h
    assert h.info().max_alloc == 2**48
    for size in (2**48 + 1, 2**48 + PAGE, 2**63, 2**64 - 1):
        for noscan, p in ((False, 0), (True, 1)):
            rejected(h, ValueError, h.alloc, size, noscan=noscan, p=p,
                     match=rf"size {size} exceeds maxAlloc \(281474976710656\)"
                           " of linux/amd64")
    # a fresh heap: no hint moved, no arena made
    with goalloc.Heap(backing=world.backing, procs=2) as f:
        hints = f.hints()
        assert hints[0].addr == GO_HEAP_START
        rejected(f, ValueError, f.alloc, 2**48 + 1, p=1, match="maxAlloc")
        rejected(f, ValueError, f.alloc, 2**64 - 1, match="maxAlloc")
        assert f.hints() == hints and f.arenas() == []
        still_works(f)
    # 32-bit ports: maxAlloc is (1 << heapAddrBits) - 1, heapAddrBits
    # being 32, but 31 on mips and mipsle (malloc.go)
    for goarch, bits in (("386", 32), ("arm", 32), ("mips", 31),
                         ("mipsle", 31)):
        top = 2**bits - 1
        with goalloc.Heap(goos="linux", goarch=goarch, backing="virtual",
                          procs=2) as f:
            assert f.info().max_alloc == top
            f.alloc(100_000)
            f.alloc(48, p=1)
            for size in (top + 1, top + 2, 2**32, 2**48):
                rejected(f, ValueError, f.alloc, size,
                         match=rf"exceeds maxAlloc \({top}\) of linux/"
                               rf"{goarch}$")
            # maxAlloc itself passes the check; no 32-bit space backs it
            rejected(f, OutOfMemoryError, f.alloc, top,
                     bases=(MemoryError, GoallocError), match="out of memory")
            still_works(f)
    still_works(h, world.live())


# ---- alloc: p, keywords, noscan --------------------------------------------


def test_row_p_out_of_range(world):
    """`alloc(n, p=procs)`, `p=-1`: ValueError."""
    h = world.h
    for p in (PROCS, PROCS + 1, 1024, -1, -2, 2**31, 2**70, -(2**70)):
        for size, noscan in ((0, False), (3, True), (16, True), (48, False),
                             (144, True), (100_000, False),
                             (2**48 + 1, False)):
            e = rejected(h, ValueError, h.alloc, size, noscan=noscan, p=p,
                         match="is not a P of this heap")
            assert not isinstance(e, GoallocError)
    e = rejected(h, ValueError, h.alloc, 48, p=PROCS)
    assert f"procs={PROCS}" in str(e)
    still_works(h, world.live())
    # heaps of one and two Ps, each P in use
    for procs in (1, 2):
        with goalloc.Heap(backing=world.backing, procs=procs) as f:
            for p in range(procs):
                f.alloc(48, p=p)
                f.alloc(5, noscan=True, p=p)
                a = f.alloc(10**6, p=p)
                assert f.span_of(a).base == a
            for p in (procs, -1, 1 << 40, 2**70):
                for size, noscan in ((48, False), (3, True), (16, True),
                                     (100_000, False), (10**6, False),
                                     (0, False)):
                    rejected(f, ValueError, f.alloc, size, noscan=noscan,
                             p=p, match="is not a P of this heap")
            rejected(f, TypeError, f.alloc, 48, p=1.0)
            still_works(f)


def test_row_unknown_keyword(world):
    """`alloc(n, bogus=1)`: TypeError."""
    h = world.h
    for kw in (dict(bogus=1), dict(P=1), dict(size=48), dict(noscan=True,
                                                              bogus=None)):
        name = next(k for k in kw if k != "noscan")
        rejected(h, TypeError, h.alloc, 48, **kw,
                 match=f"unexpected keyword argument '{name}'")
    rejected(h, TypeError, h.alloc, 100_000, p=1, bogus=1, match="bogus")
    rejected(h, TypeError, h.alloc, 0, bogus=1, match="bogus")
    # and the wrong number of positional arguments
    rejected(h, TypeError, h.alloc)
    rejected(h, TypeError, h.alloc, 10**6, True)
    still_works(h, world.live())


def test_alloc_noscan_truth_error(grown):
    class Bad:
        def __bool__(self):
            raise ZeroDivisionError

    h, _ = grown
    rejected(h, ZeroDivisionError, h.alloc, 10**6, noscan=Bad())


# ---- Heap() ----------------------------------------------------------------


BAD_HEAP_ARGS = [
    (dict(goos="plan10"), "unknown"),
    (dict(goarch="sparc64"), "unknown"),
    (dict(goos="js", goarch="wasm"), "js/wasm"),
    (dict(goos="linux", goarch="wasm"), "wasm"),
    (dict(goos="nacl", goarch="amd64p32"), "nacl"),
    (dict(goos="nacl", goarch="386"), "nacl"),
    (dict(goos="linux", goarch="386", race=True), "race"),
    (dict(goos="linux", goarch="s390x", race=True), "race"),
    (dict(goos="linux", goarch="mips64", race=True), "race"),
    (dict(goos="darwin", goarch="arm64", backing="os"), "os"),
    (dict(goos="linux", goarch="386", backing="os"), "os"),
    (dict(goos="windows", goarch="amd64", backing="os"), "os"),
    (dict(backing="disk"), "disk"),
    (dict(backing="OS"), "OS"),
    (dict(procs=0), "procs"),
    (dict(procs=-1), "procs"),
    (dict(release="go1.14"), "release"),
    (dict(release="go1.13.1"), "release"),
    (dict(release="go1.13.8\0"), "release"),
    (dict(procs=1025), "procs"),
    (dict(procs=2**70), "procs"),
    (dict(sys_limit=-1), "sys_limit"),
    (dict(seed=2**64), "seed"),
]


def test_row_bad_heap_arguments(world):
    """Unknown goos/goarch, js/wasm, nacl, race=True on a port without
    -race, backing="os" off linux/amd64, unknown backing, procs outside
    1..1024, an unknown release: ValueError."""
    h = world.h
    before = state(h)
    for kw, word in BAD_HEAP_ARGS:
        with pytest.raises(ValueError) as ei:
            goalloc.Heap(**kw)
        assert_exc(ei.value, ValueError, match=re.escape(word))
        assert not isinstance(ei.value, GoallocError)
    assert state(h) == before           # another heap is left alone
    # the bounds themselves are fine
    for procs in (1, 1024):
        with goalloc.Heap(backing="virtual", procs=procs) as ok:
            ok.alloc(48, p=procs - 1)
            ok.verify()
    with goalloc.Heap(goos="linux", goarch="arm64", race=True,
                      backing="virtual") as ok:
        ok.alloc(100_000)
    still_works(h, world.live())


def test_row_nul_in_str():
    """`Heap(goos="linux\x00evil")`: ValueError, not a linux heap."""
    for kw in ({"goos": "linux\x00evil"}, {"goarch": "amd64\x00"},
               {"backing": "os\x00"}):
        with pytest.raises(ValueError, match="NUL") as ei:
            goalloc.Heap(**kw)
        assert not isinstance(ei.value, GoallocError)


# ---- the other calls and the fault-injection hooks -------------------------


def test_scavenge_bad_arguments(grown):
    h, _ = grown
    rejected(h, TypeError, h.scavenge, "1")
    rejected(h, TypeError, h.scavenge, 1.0)
    rejected(h, ValueError, h.scavenge, -1)
    rejected(h, TypeError, h.scavenge, 1, 2)


def test_span_of_bad_arguments(grown):
    h, _ = grown
    rejected(h, TypeError, h.span_of, "x")
    rejected(h, ValueError, h.span_of, -1)
    assert h.span_of(0x1234) is None
    assert h.span_of(2**64 - 1) is None


def test_throw_bad_argument(heap):
    rejected(heap, TypeError, heap._throw, 3)


def test_block_range_occupied(grown):
    h, p = grown
    rejected(h, ValueError, h.block_range, p, 4096)
    rejected(h, ValueError, h.block_range, p + 20 * PAGE, 4096)
    rejected(h, ValueError, h.block_range, p - 4096, 8192)


def test_block_range_bad_arguments(heap):
    rejected(heap, ValueError, heap.block_range,
                     GO_HEAP_START + 1000 * ARENA, 0)
    rejected(heap, ValueError, heap.block_range, -1, 4096)
    rejected(heap, TypeError, heap.block_range, "a", 4096)
    rejected(heap, TypeError, heap.block_range, 4096)


def test_block_range_never_clobbers_process_memory():
    # On os, a range someone else already mapped (here: a Python buffer)
    # is refused, not replaced (no MAP_FIXED over it).
    buf = bytearray(b"\x5a" * (64 * 1024))
    addr = ctypes.addressof((ctypes.c_char * len(buf)).from_buffer(buf))
    page = (addr + 8191) & ~4095
    with goalloc.Heap(backing="os") as h:
        rejected(h, ValueError, h.block_range, page, 4096)
    assert bytes(buf) == b"\x5a" * len(buf)


def test_block_range_twice_on_virtual():
    with goalloc.Heap(backing="virtual") as h:
        a = GO_HEAP_START + 1000 * ARENA
        h.block_range(a, 4096)
        rejected(h, ValueError, h.block_range, a, 4096)
        rejected(h, ValueError, h.block_range, a - 4096, 8192)


def test_fail_reserves_bad_arguments():
    with goalloc.Heap(backing="os") as h:
        rejected(h, ValueError, h.fail_reserves, 1)
    with goalloc.Heap(backing="virtual") as h:
        rejected(h, ValueError, h.fail_reserves, -1)
        rejected(h, ValueError, h.fail_reserves, 2**40)
        rejected(h, TypeError, h.fail_reserves, "1")


# ---- many rejections in a row ----------------------------------------------


def test_many_rejections_then_still_healthy(grown):
    h, p = grown
    before = state(h)
    for _ in range(3):
        for bad in (lambda: h.alloc(-1), lambda: h.alloc("1"),
                    lambda: h.free(p + 8), lambda: h.free(0x1234),
                    lambda: h.alloc(2**48 + 1), lambda: h.alloc(1, p=9)):
            with pytest.raises((TypeError, ValueError)):
                bad()
    assert state(h) == before
    h.verify()
    h.free(p)
    assert h.stats().heap_objects == 0
    assert h.alloc(100_000) == p
    assert h.stats().heap_sys == 64 * MiB
