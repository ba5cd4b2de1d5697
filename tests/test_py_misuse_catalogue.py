"""docs/misuse.md, row by row (issue 6, "Bad input").

Every row of the catalogue in docs/misuse.md has exactly one test here,
named after the row (ROW_TESTS at the bottom maps each row to it, and
test_every_row_has_a_test fails on a row without one).  A rejected call
must raise the exact documented exception (and its documented bases),
with a useful message, on a heap in a realistic state (World: small,
tiny and large objects, live and freed, cached and uncached, on three
Ps, on both backings), and leave everything as it was: h.digest() and
the complete introspection (stats, hints, arenas, spans, centrals,
caches, the slot states of every small span, the object and page
arrays).  Afterwards the heap must still work.

Rows whose contract is not "nothing changes" (views kept after free or
close, free(zerobase), a poisoned heap, a partial trace replay, another
virtual heap's address) test what the notes column says instead.

Only the public API is used, plus the fault-injection hooks
(block_range, fail_reserves) and the throw hook (_throw).
"""
from __future__ import annotations

import builtins
import gc
import re
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import goalloc
from goalloc import (SLOT_FREE, SLOT_FREED, SLOT_LIVE, DoubleFreeError,
                     GoallocError, HeapBusyError, HeapClosedError,
                     HeapCorruptionError, InvalidFreeError, OutOfMemoryError,
                     Trace, TraceError, workloads)
from goalloc.trace import TEXT_HEADER
from helpers import (ARENA, ASAN, GO_HEAP_START, PAGE, MiB,
                     check_stat_identities)
from test_py_small_util import full_snapshot

MISUSE_MD = Path(__file__).resolve().parent.parent / "docs" / "misuse.md"

BACKINGS = ("virtual", "os")
PROCS = 3


# ---- a heap in a realistic state -----------------------------------------


class World:
    """A heap with live, freed, cached and uncached objects of every kind,
    spread over PROCS Ps.  Deterministic: two Worlds built one after the
    other (or, on virtual, side by side) have the same addresses."""

    def __init__(self, backing: str, procs: int = PROCS, **kw) -> None:
        h = self.h = goalloc.Heap(backing=backing, procs=procs, **kw)
        self.backing = backing
        self.procs = procs
        # -- before a flush --
        # class 10 noscan (144 B) on P2
        self.flushed = [h.alloc(144, noscan=True, p=2) for _ in range(6)]
        # class 5 (64 B) on P0, one freed: the flush sweeps it (SLOT_FREE,
        # and still known as freed)
        self.swept = [h.alloc(64) for _ in range(5)]
        h.free(self.swept[2])
        # a tiny block on P2, 5-byte objects at offsets 0 and 5, the
        # second one freed; the flush takes it from P2's mcache
        self.tiny_old = [h.alloc(5, noscan=True, p=2) for _ in range(2)]
        h.free(self.tiny_old[1])
        h.flush()                 # flushallmcaches
        # a free in an uncached span: SLOT_FREED until its next sweep
        h.free(self.flushed[1])
        # -- after it --
        # class 4 (48 B, 170 a span) on P1: a full span that left the
        # mcache (mcentral.empty), and the next one, cached, with a
        # freed slot (SLOT_FREED)
        self.full = [h.alloc(48, p=1) for _ in range(170)]
        self.cached = [h.alloc(48, p=1) for _ in range(12)]
        h.free(self.cached[3])
        # P0's current tiny block: 3-byte objects at 0, 3, 6; 3 freed
        self.tiny = [h.alloc(3, noscan=True) for _ in range(3)]
        h.free(self.tiny[1])
        self.tiny16 = h.alloc(16, noscan=True, p=1)   # a whole block
        # small objects of several classes, scan and noscan, on every P
        # (mixed[k] = (addr, size); mixed[4], 100 B on P1, is freed)
        self.mixed = []
        for i, size in enumerate((24, 100, 500, 1000, 3000, 9000, 32768)):
            for p in range(procs):
                self.mixed.append((h.alloc(size, noscan=bool((i + p) % 2),
                                           p=p), size))
        h.free(self.mixed[4][0])
        # class 9 (128 B, 64 a span) on P0: a whole span freed after it
        # left the mcache, so it went back to the heap
        self.returned = [h.alloc(128) for _ in range(64)]
        self.after_returned = h.alloc(128)          # a fresh span caches
        for a in self.returned:
            h.free(a)
        # large objects: live, freed and released to the OS, freed
        self.large = h.alloc(40_000, p=1)                   # 5 pages
        self.large_freed = h.alloc(100_000, noscan=True, p=2)  # 13 pages
        self.keep = h.alloc(5 * PAGE)
        self.released = h.alloc(300_000)                    # 37 pages
        self.keep2 = h.alloc(40_000, noscan=True)
        h.free(self.released)
        h.scavenge()
        h.free(self.large_freed)
        self.zero = h.alloc(0)

    def live(self) -> list[int]:
        """Addresses of the World's live objects, one of each kind."""
        return [self.full[0], self.cached[0], self.flushed[0],
                self.swept[0], self.tiny[0], self.tiny[2], self.tiny_old[0],
                self.tiny16, self.mixed[0][0], self.mixed[-1][0],
                self.large, self.keep, self.keep2]

    def close(self) -> None:
        self.h.close()


def state(h: goalloc.Heap):
    """digest() and everything introspection shows (full_snapshot: stats,
    hints, arenas, spans, centrals, caches, every small span's slot
    states and tiny marks, info), plus the object and page arrays."""
    d = h.digest()
    snap = full_snapshot(h)
    return (d, snap, h.object_array().tobytes(), h.page_array().tobytes())


def assert_exc(e: BaseException, exc: type, *bases: type,
               match: str | None = None) -> None:
    assert type(e) is exc, repr(e)
    for b in bases:
        assert isinstance(e, b), (repr(e), b)
    if match is not None:
        assert re.search(match, str(e)), (str(e), match)


def rejected(h: goalloc.Heap, exc: type, fn, *args, bases=(),
             match: str | None = None, **kwargs) -> BaseException:
    """fn(*args, **kwargs) raises exactly exc (an instance of every base
    too), its message matches, and h is exactly as it was."""
    before = state(h)
    with pytest.raises(exc) as ei:
        fn(*args, **kwargs)
    assert_exc(ei.value, exc, *bases, match=match)
    assert state(h) == before, f"{fn.__name__}{args} changed the heap"
    return ei.value


def still_works(h: goalloc.Heap, free=()) -> None:
    """The heap passes verify, allocates and frees every kind of object
    on every P, frees the given live objects, and passes verify again."""
    h.verify()
    procs = h.info().procs
    d = h.digest()
    new = [h.alloc(size, noscan=noscan, p=p)
           for p in range(procs)
           for size, noscan in ((0, False), (7, True), (16, True),
                                (48, False), (1000, True), (50_000, False))]
    assert h.digest() != d
    for a in new:
        h.free(a)
    for a in free:
        h.free(a)
    h.verify()
    check_stat_identities(h.stats())


@pytest.fixture(params=[(b, r) for b in BACKINGS
                        for r in ("go1.13.8", "go1.13.0")],
                ids=lambda p: "-".join(p))
def world(request):
    backing, release = request.param
    w = World(backing, release=release)
    try:
        yield w
    finally:
        w.close()


def test_world_is_what_the_tests_assume(world):
    """The states the rows below rely on are really there."""
    h = world.h
    full = h.span_of(world.full[0])
    cached = h.span_of(world.cached[0])
    flushed = h.span_of(world.flushed[0])
    swept = h.span_of(world.swept[0])
    assert full.sizeclass == cached.sizeclass == 4 and full != cached
    assert full.alloc_count == full.nelems
    assert cached.base in h.caches()[1].alloc.values()
    assert full.base in h.centrals()[8].empty
    assert flushed.base in h.centrals()[21].nonempty
    assert swept.base in h.centrals()[10].nonempty
    for s in (full, flushed, swept):
        assert not any(s.base in c.alloc.values() for c in h.caches())
    assert h.span_objects(cached.base).states[3] == SLOT_FREED
    assert h.span_objects(flushed.base).states[1] == SLOT_FREED
    assert h.span_objects(flushed.base).states[0] == SLOT_LIVE
    assert h.span_objects(swept.base).states[2] == SLOT_FREE
    assert h.caches()[0].tiny == world.tiny[0]
    assert h.caches()[2].tiny == 0                   # flushed
    assert h.span_of(world.returned[0]).state == "free"
    assert h.span_of(world.large).npages == 5
    lf = h.span_of(world.large_freed)
    assert lf.state == "free" and not lf.scavenged and lf.base == \
        world.large_freed and lf.npages == 13
    rel = h.span_of(world.released)
    assert rel.state == "free" and rel.scavenged and rel.base == \
        world.released
    assert world.zero == h.info().zerobase
    assert {s.state for s in h.spans()} == {"inuse", "free"}
    assert len({c.alloc.get(8) for c in h.caches()}) == 2   # P1's only
    h.verify()


# ---- rows: arguments ------------------------------------------------------


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
        rejected(f, ValueError, f.alloc, 2**48 + 1, p=1, match="maxAlloc")
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


def fill(h: goalloc.Heap) -> None:
    """Take every free page of a heap whose growth is refused."""
    for size in (1 << 20, 40_000, 32_769, PAGE):
        while True:
            try:
                h.alloc(size)
            except OutOfMemoryError:
                break


def hints_put_back() -> None:
    """fail_reserves (virtual): a growth that discards a blocked hint and
    then fails puts the hint back; the next growth discards it."""
    w = World("virtual")
    try:
        h = w.h
        head = h.hints()[0]
        assert head == goalloc.ArenaHint(GO_HEAP_START + ARENA, False)
        h.block_range(head.addr, 4096)   # growth would discard this hint
        h.fail_reserves(1000)            # ... and every other one fails
        e = rejected(h, OutOfMemoryError, h.alloc, 64 * MiB, p=2,
                     bases=(MemoryError, GoallocError),
                     match="cannot allocate 67108864-byte block")
        assert h.hints()[0] == head
        rejected(h, OutOfMemoryError, h.alloc, 2**40, bases=(MemoryError,))
        assert isinstance(e, GoallocError)
        h.fail_reserves(0)
        hints = h.hints()
        big = h.alloc(64 * MiB, p=2)
        assert big == hints[1].addr      # the blocked head was dropped
        assert h.hints()[0] == goalloc.ArenaHint(big + ARENA, False)
        still_works(h, [big, *w.live()])
    finally:
        w.close()


def test_row_out_of_memory(backing):
    """The OS, sys_limit or fail_reserves cannot back a size:
    OutOfMemoryError (a MemoryError); discarded hints are put back."""
    oom = dict(bases=(MemoryError, GoallocError),
               match=r"^runtime: out of memory: cannot allocate \d+-byte "
                     r"block: the heap would grow past sys_limit$")
    # sys_limit: one arena and no more
    w = World(backing, sys_limit=64 * MiB)
    try:
        h = w.h
        assert len(h.arenas()) == 1
        for size, noscan, p in ((64 * MiB, False, 0), (1 << 30, True, 2),
                                (2**48, False, 1)):
            e = rejected(h, OutOfMemoryError, h.alloc, size, noscan=noscan,
                         p=p, **oom)
            assert f"cannot allocate {size}-byte" in str(e)
            assert not isinstance(e, ValueError)
        # the arena full: small, tiny and large requests that need a
        # new span fail the same way
        fill(h)
        assert h.stats().heap_idle == 0
        # (each needs a span no P has cached)
        for size, noscan, p in ((48, False, 0), (2000, True, 1),
                                (9, True, 2), (16, True, 2),
                                (50_000, False, 1)):
            rejected(h, OutOfMemoryError, h.alloc, size, noscan=noscan, p=p,
                     **oom)
        h.verify()
        # what is live can still be freed, and its room reused
        h.free(w.large)
        assert h.alloc(40_000) == w.large
        h.verify()
    finally:
        w.close()
    # no sys_limit: the whole user address space (2**47 bytes on
    # linux/amd64) cannot be reserved, neither at a hint nor anywhere
    oom["match"] = (r"^runtime: out of memory: cannot allocate \d+-byte "
                    r"block: no address space for the heap")
    w = World(backing)
    try:
        h = w.h
        for size in (1 << 47, 2**48 - PAGE):
            rejected(h, OutOfMemoryError, h.alloc, size, p=1, **oom)
        still_works(h, w.live())
    finally:
        w.close()
    if backing == "virtual":
        hints_put_back()


def test_row_p_out_of_range(world):
    """`alloc(n, p=procs)`, `p=-1`: ValueError."""
    h = world.h
    for p in (PROCS, PROCS + 1, 1024, -1, -2, 2**31, 2**70, -(2**70)):
        for size, noscan in ((0, False), (3, True), (16, True), (48, False),
                             (144, True), (100_000, False), (2**48 + 1, False)):
            e = rejected(h, ValueError, h.alloc, size, noscan=noscan, p=p,
                         match="is not a P of this heap")
            assert not isinstance(e, GoallocError)
    e = rejected(h, ValueError, h.alloc, 48, p=PROCS)
    assert f"procs={PROCS}" in str(e)
    still_works(h, world.live())


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
    still_works(h, world.live())


# ---- rows: frees ------------------------------------------------------------


def test_row_double_free_large(world):
    """Double free of a large object: DoubleFreeError while its first
    page has not been handed out again."""
    h = world.h
    df = dict(bases=(InvalidFreeError, ValueError, GoallocError),
              match=r"^free of 0x[0-9a-f]+: object already freed$")
    e = rejected(h, DoubleFreeError, h.free, world.large_freed, **df)
    assert f"{world.large_freed:#x}" in str(e)
    # released to the OS: still a double free
    rejected(h, DoubleFreeError, h.free, world.released, **df)
    # an interior page of a freed object is no object at all
    for addr in (world.large_freed + PAGE, world.released + 8,
                 world.released + 36 * PAGE):
        e = rejected(h, InvalidFreeError, h.free, addr)
        assert not isinstance(e, DoubleFreeError)
    # two freed objects that coalesced: both starts are remembered
    a = h.alloc(45_000, p=1)                  # 6 pages
    b = h.alloc(45_000, p=2)
    assert (a, b) == (world.large_freed, world.large_freed + 6 * PAGE)
    h.free(a)
    h.free(b)
    assert h.span_of(b).base == a
    rejected(h, DoubleFreeError, h.free, a, **df)
    rejected(h, DoubleFreeError, h.free, b, **df)
    # the first page handed out again: not a double free any more, the
    # address names the new object (the known limit)
    c = h.alloc(45_000)
    assert c == a
    assert h.free(a) is None                  # frees c
    rejected(h, DoubleFreeError, h.free, c, **df)
    still_works(h, world.live())


def test_row_double_free_small(world):
    """Double free of a small object: DoubleFreeError while its span is
    in use; once the span went back to the heap, InvalidFreeError."""
    h = world.h
    df = dict(bases=(InvalidFreeError, ValueError, GoallocError),
              match=r"^free of 0x[0-9a-f]+: object already freed$")
    # freed in P1's cached span, in an uncached span waiting for its
    # sweep, in an uncached span swept since (SLOT_FREE, remembered)
    for a in (world.cached[3], world.flushed[1], world.swept[2],
              world.mixed[4][0]):
        rejected(h, DoubleFreeError, h.free, a, **df)
    a = world.cached[5]
    h.free(a)
    rejected(h, DoubleFreeError, h.free, a, **df)
    last = world.full[-1]                     # the full, uncached span
    h.free(last)
    rejected(h, DoubleFreeError, h.free, last, **df)
    h.flush()               # sweeps the cached spans, not the others
    for a, slot in ((world.cached[3], SLOT_FREE),
                    (world.cached[5], SLOT_FREE),
                    (world.swept[2], SLOT_FREE),
                    (world.flushed[1], SLOT_FREED), (last, SLOT_FREED)):
        s = h.span_of(a)
        assert s.state == "inuse"
        idx = (a - s.base) // s.elemsize
        assert h.span_objects(s.base).states[idx] == slot
        rejected(h, DoubleFreeError, h.free, a, **df)
    # the span went back to the heap: just free memory (returned went
    # back at once; mixed[4], the only object of P1's class-8 span, at
    # the flush)
    assert h.span_of(world.returned[0]).state == "free"
    assert h.span_of(world.mixed[4][0]).state == "free"
    inv = dict(bases=(ValueError, GoallocError),
               match="not the start of a live object")
    for a in (world.returned[0], world.returned[1], world.returned[63],
              world.mixed[4][0]):
        e = rejected(h, InvalidFreeError, h.free, a, **inv)
        assert not isinstance(e, DoubleFreeError)
    # a span that empties now goes back the same way
    xs = [h.alloc(2048, noscan=True, p=2) for _ in range(4)]  # one span
    y = h.alloc(2048, noscan=True, p=2)                       # the next
    assert h.span_of(xs[0]).nelems == 4 and h.span_of(y).base != xs[0]
    for a in xs[:-1]:
        h.free(a)
    rejected(h, DoubleFreeError, h.free, xs[0], **df)
    h.free(xs[-1])
    assert h.span_of(xs[0]).state == "free"
    for a in xs:
        e = rejected(h, InvalidFreeError, h.free, a, **inv)
        assert not isinstance(e, DoubleFreeError)
    still_works(h, [y, *world.live()])


def test_row_double_free_tiny(world):
    """Double free of a tiny object: DoubleFreeError per object; each
    16-byte block remembers which offsets were used."""
    h = world.h
    df = dict(bases=(InvalidFreeError, ValueError, GoallocError),
              match=r"^free of 0x[0-9a-f]+: object already freed$")
    t0, t3, t6 = world.tiny
    assert (t3 - t0, t6 - t0) == (3, 6)
    # P0's current block, and P2's flushed one
    rejected(h, DoubleFreeError, h.free, t3, **df)
    rejected(h, DoubleFreeError, h.free, world.tiny_old[1], **df)
    # offsets no object started at are not double frees
    for off in (1, 2, 4, 5, 7, 9, 15):
        e = rejected(h, InvalidFreeError, h.free, t0 + off)
        assert not isinstance(e, DoubleFreeError)
    e = rejected(h, InvalidFreeError, h.free, world.tiny_old[0] + 1)
    assert not isinstance(e, DoubleFreeError)
    # per object: the block's other objects stay live and freeable
    h.free(t0)
    rejected(h, DoubleFreeError, h.free, t0, **df)
    rejected(h, DoubleFreeError, h.free, t3, **df)
    extra = h.alloc(4, noscan=True)           # offset 9, aligned to 4
    assert extra == t0 + 12
    h.free(extra)
    rejected(h, DoubleFreeError, h.free, extra, **df)
    h.flush()                                 # the block leaves P0
    for a in (t0, t3, extra, world.tiny_old[1]):
        rejected(h, DoubleFreeError, h.free, a, **df)
    # a whole 16-byte block (P1's only tiny object): its span empties
    # at the flush and goes back to the heap, so, as for small objects,
    # the address is just free memory then
    h.free(world.tiny16)
    assert h.span_of(world.tiny16).state == "free"
    e = rejected(h, InvalidFreeError, h.free, world.tiny16,
                 match="not the start of a live object")
    assert not isinstance(e, DoubleFreeError)
    still_works(h, [t6, world.tiny_old[0]])
    rejected(h, DoubleFreeError, h.free, t6, **df)


def test_row_not_an_object_start(world):
    """An interior pointer, an address in a span's tail past limit, a
    never-allocated slot: InvalidFreeError."""
    h = world.h
    inv = dict(bases=(ValueError, GoallocError),
               match=r"^free of 0x[0-9a-f]+: not the start of a live "
                     r"object$")
    cases = []
    # interior pointers: small (live and freed), tiny, large
    for a in (world.cached[0], world.cached[3], world.full[0],
              world.full[7], world.full[-1]):
        cases += [a + 1, a + 8, a + 47]
    for a, size in world.mixed[:6]:
        cases += [a + 8, a + size - 1]
    cases += [world.swept[2] + 8, world.swept[0] + 63]
    cases += [world.flushed[0] + 16, world.flushed[1] + 143]
    cases += [world.large + 1, world.large + 8, world.large + PAGE,
              world.large + 39_999]
    cases += [world.large_freed + 8, world.large_freed + PAGE]
    cases += [world.tiny[0] + 1, world.tiny16 + 8]
    # tails: past limit in small and large spans
    for a in (world.cached[0], world.full[0], world.flushed[0], world.large):
        s = h.span_of(a)
        assert s.limit < s.end
        cases += [s.limit, s.limit + 8, s.end - 8, s.end - 1]
    # never-allocated slots: past freeindex in P1's cached span, in the
    # flushed span, in the tiny span, and pages never handed out
    base = h.span_of(world.cached[0]).base
    cases += [base + i * 48 for i in (12, 13, 63, 64, 169)]
    fbase = h.span_of(world.flushed[0]).base
    cases += [fbase + i * 144 for i in (6, 7, 55)]
    tbase = h.span_of(world.tiny[0]).base
    cases += [tbase + i * 16 for i in (4, 100, 511)]
    # (go1.13.0: the free tail of the arena; go1.13.8: curArena, no span)
    info = h.info()
    if info.release == "go1.13.0":
        tail = h.spans()[-1]
        assert tail.state == "free"
        lo, hi = tail.base, tail.end
    else:
        lo, hi = info.cur_arena_base, info.cur_arena_end
        assert lo < hi and h.span_of(lo) is None
    cases += [lo, lo + PAGE, hi - PAGE]
    for addr in cases:
        e = rejected(h, InvalidFreeError, h.free, addr, **inv)
        assert not isinstance(e, DoubleFreeError), hex(addr)
        assert f"{addr:#x}" in str(e)
    still_works(h, world.live())


def test_row_foreign_address(world):
    """Not in any arena of this heap, negative, beyond 2**64:
    InvalidFreeError."""
    h = world.h
    arenas = h.arenas()
    lo = min(a.base for a in arenas)
    hi = max(a.base for a in arenas) + ARENA
    for addr in (0, 1, 8, 0x1000, 0x400000, lo - 8, lo - PAGE, hi, hi + 8,
                 GO_HEAP_START - 16, 1 << 46, (1 << 47) - 8, 1 << 63,
                 (1 << 64) - 8, (1 << 64) - 1, world.zero + 8):
        e = rejected(h, InvalidFreeError, h.free, addr,
                     bases=(ValueError, GoallocError),
                     match=r"not an address in this heap's arenas$")
        assert not isinstance(e, DoubleFreeError)
    for addr in (-1, -8, -PAGE, -(1 << 64), -(1 << 70), 1 << 64,
                 (1 << 64) + PAGE, 1 << 70):
        e = rejected(h, InvalidFreeError, h.free, addr,
                     bases=(ValueError, GoallocError),
                     match=rf"^address out of range: {addr}$")
        assert not isinstance(e, DoubleFreeError)
    still_works(h, world.live())


def test_row_address_of_another_heap(backing):
    """InvalidFreeError on os (heaps never share arenas); on virtual the
    heaps use the same simulated addresses, so another heap's address
    can name an object of this one (the known limit)."""
    if backing == "os":
        a, b = World("os"), World("os")
        try:
            own = {x.base for x in a.h.arenas()}
            assert own.isdisjoint(x.base for x in b.h.arenas())
            before_b = state(b.h)
            for addr in b.live() + [b.large_freed, b.cached[3]]:
                e = rejected(a.h, InvalidFreeError, a.h.free, addr,
                             bases=(ValueError, GoallocError),
                             match="not an address in this heap's arenas")
                assert not isinstance(e, DoubleFreeError)
            assert state(b.h) == before_b
            still_works(a.h, a.live())
            still_works(b.h, b.live())
        finally:
            a.close()
            b.close()
        return
    for release in ("go1.13.8", "go1.13.0"):
        another_virtual_heap(release)


def another_virtual_heap(release: str) -> None:
    a, b, c = (World("virtual", release=release) for _ in range(3))
    try:
        assert a.h.digest() == b.h.digest() == c.h.digest()
        # b's object where a has no object: InvalidFreeError, a unchanged
        other = b.h.alloc(1 * MiB, p=2)             # in the arena's tail
        if release == "go1.13.0":
            assert a.h.span_of(other).state == "free"
            assert a.h.span_of(other).base == other
        else:
            # b grew into its curArena; in a that is still curArena
            assert a.h.span_of(other) is None
            assert a.h.info().cur_arena_base == other
        before_b = state(b.h)
        e = rejected(a.h, InvalidFreeError, a.h.free, other,
                     match="not the start of a live object")
        assert not isinstance(e, DoubleFreeError)
        # b's small object where a has a live one: it frees a's object,
        # exactly as a's own address would (c does that)
        for addr in (b.cached[0], b.large, b.tiny[0]):
            a.h.free(addr)
            c.h.free(addr)
            assert a.h.digest() == c.h.digest()
        assert state(b.h) == before_b
        still_works(a.h)
        still_works(b.h, b.live())
    finally:
        a.close()
        b.close()
        c.close()


def test_row_free_zerobase(world):
    """`free(zerobase)` (what `alloc(0)` returns): a no-op, as freeing
    nil."""
    h = world.h
    assert world.zero == h.info().zerobase
    before = state(h)
    for _ in range(3):
        assert h.free(world.zero) is None
    for p in range(PROCS):
        assert h.alloc(0, p=p) == world.zero
        assert h.alloc(0, noscan=True, p=p) == world.zero
    assert h.free(h.alloc(0)) is None
    assert state(h) == before
    still_works(h, world.live())
    assert h.free(world.zero) is None


# ---- rows: busy, closed -----------------------------------------------------


def busy_calls(w: World):
    """Every kind of call on a heap, with valid arguments."""
    h = w.h
    cached_base = h.span_of(w.cached[0]).base
    calls = [
        ("alloc small", lambda: h.alloc(48, p=1)),
        ("alloc tiny", lambda: h.alloc(3, noscan=True)),
        ("alloc large", lambda: h.alloc(100_000, p=2)),
        ("alloc 0", lambda: h.alloc(0)),
        ("free", lambda: h.free(w.cached[0])),
        ("free large", lambda: h.free(w.large)),
        ("free zerobase", lambda: h.free(w.zero)),
        ("scavenge", lambda: h.scavenge()),
        ("flush", h.flush),
        ("verify", h.verify),
        ("digest", h.digest),
        ("stats", h.stats),
        ("hints", h.hints),
        ("arenas", h.arenas),
        ("spans", h.spans),
        ("span_of", lambda: h.span_of(w.large)),
        ("centrals", h.centrals),
        ("caches", h.caches),
        ("span_objects", lambda: h.span_objects(cached_base)),
        ("info", h.info),
        ("fragmentation", h.fragmentation),
        ("object_array", h.object_array),
        ("page_array", h.page_array),
        ("block_range", lambda: h.block_range(GO_HEAP_START + 999 * ARENA,
                                              4096)),
        ("replay", lambda: h.replay(Trace.from_ops([("alloc", 0, 8)]))),
        ("close", h.close),
    ]
    if w.backing == "os":
        calls.append(("view", lambda: h.view(w.large)))
    else:
        calls.append(("fail_reserves", lambda: h.fail_reserves(0)))
    return calls


def calls_during_replay(w: World, trace: Trace, chunk: int, calls=None):
    """Replay trace on w's heap in another thread; meanwhile, once a
    read-only probe (digest) sees the heap busy, make every call of
    calls (busy_calls(w) by default).  Returns (errors or None if no probe ever saw the
    heap busy, result of the replay thread).

    Deterministic once the probe hit: with a huge switch interval this
    thread keeps the GIL until it blocks, and nothing below blocks, so
    the replaying thread cannot leave its C chunk (and clear busy) until
    every call was made.  Mutating calls are made only then."""
    h = w.h
    if calls is None:
        calls = busy_calls(w)
    go = threading.Event()
    result: dict = {}

    def run() -> None:
        try:
            result["tl"] = h.replay(trace, chunk=chunk,
                                    progress=lambda d, n: go.set())
        except BaseException as e:  # pragma: no cover
            result["error"] = e

    errors = None
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1000.0)
    try:
        th = threading.Thread(target=run)
        th.start()
        go.wait()                                 # the first chunk ran
        while th.is_alive():
            try:
                h.digest()
            except HeapBusyError:
                errors = {}
                for name, call in calls:
                    try:
                        call()
                    except BaseException as e:
                        errors[name] = e
                    else:
                        errors[name] = None
                break
            time.sleep(0.0002)                    # let the replay go on
    finally:
        sys.setswitchinterval(interval)
    th.join()
    return errors, result


def test_row_heap_busy(backing):
    """Any call while another thread replays a trace on the heap
    (`free`, `alloc`, `close`, introspection): HeapBusyError (a
    RuntimeError); the replay itself runs on."""
    # chunks of a few milliseconds: long enough for this thread to wake
    # up inside one even on a loaded machine (it retries otherwise)
    trace = workloads.go_mix(60_000, live=2000, seed=11, procs=PROCS)
    chunk = 10_000
    # what the replay does undisturbed
    ref = World(backing)
    try:
        ref.h.replay(trace, chunk=chunk)
        expected = state(ref.h)
    finally:
        ref.close()
    for _attempt in range(10):
        w = World(backing)
        try:
            errors, result = calls_during_replay(w, trace, chunk)
            assert "error" not in result, result
            assert result["tl"].nops == len(trace)
            assert not w.h.closed
            # the replay ran on: exactly what it does undisturbed
            assert state(w.h) == expected
            if errors is None:
                continue              # the probe never overlapped a chunk
            assert len(errors) == len(busy_calls(w))
            for name, e in errors.items():
                assert e is not None, f"{name} ran during the replay"
                assert_exc(e, HeapBusyError, RuntimeError, GoallocError,
                           match="replaying a trace")
                assert not isinstance(e, HeapClosedError), name
            assert "cannot close" in str(errors["close"])
            still_works(w.h, w.live())
            break
        finally:
            w.close()
    else:
        pytest.fail("no call ever overlapped the replay")


def test_row_heap_closed(backing):
    """Any call after `close()` (`close()` itself may be repeated):
    HeapClosedError (a RuntimeError)."""
    w = World(backing)
    h = w.h
    arenas = h.arenas()
    views = [h.view(w.large)] if backing == "os" else []
    calls = busy_calls(w)
    h.close()
    assert h.closed
    for name, call in calls:
        if name == "close":
            continue
        with pytest.raises(HeapClosedError) as ei:
            call()
        assert_exc(ei.value, HeapClosedError, RuntimeError, GoallocError,
                   match="^the heap is closed$")
    with pytest.raises(HeapClosedError):
        with h:
            pass
    for _ in range(3):
        assert h.close() is None
    assert h.closed and repr(h) == "<goalloc.Heap closed>"
    del views
    gc.collect()
    # the address space was given back: a new World gets the same arenas
    w2 = World(backing)
    try:
        assert w2.h.arenas() == arenas
        still_works(w2.h, w2.live())
    finally:
        w2.close()


# ---- rows: views -----------------------------------------------------------


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


def is_mapped(addr: int) -> bool:
    with open("/proc/self/maps") as f:
        for line in f:
            lo, hi = (int(x, 16) for x in line.split()[0].split("-"))
            if lo <= addr < hi:
                return True
    return False


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


# ---- rows: Heap(), traces, throw ---------------------------------------------


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


def test_row_malformed_trace_file(world, tmp_path):
    """Wrong header, bad line, truncated binary: TraceError (a
    ValueError); .index is the line (text) or 0 (binary header)."""
    h = world.h
    before = state(h)
    good = Trace.from_ops([("alloc", 0, 8), ("alloc", 1, 100_000, True, 2),
                           ("free", 0)])
    cases = []
    for content, line in ((b"", 1), (b"a 0 8 0 0\n", 1),
                          (b"# goalloc trace v2\na 0 8 0 0\n", 1),
                          (f"{TEXT_HEADER}\na 0 8 0\n".encode(), 2),
                          (f"{TEXT_HEADER}\na 0 8 0 0\n\nx 1\n".encode(), 4),
                          (f"{TEXT_HEADER}\n# c\na 0 8.5 0 0\n".encode(), 3),
                          (f"{TEXT_HEADER}\na 0 8 2 0\n".encode(), 2),
                          (f"{TEXT_HEADER}\nf 1 2\n".encode(), 2)):
        cases.append((f"text{len(cases)}.trace", content, line))
    path = tmp_path / "good.gatrace"
    good.write_binary(path)
    raw = path.read_bytes()
    for name, content in (("header", raw[:12]), ("body", raw[:-1]),
                          ("long", raw + b"\0"), ("empty", b"GATRACE1"),
                          ("count", raw[:8] + b"\xff" * 8 + raw[16:])):
        cases.append((f"{name}.gatrace", content, 0))
    # a wrong magic number: read_binary refuses it as a binary header,
    # load() reads it as text with a wrong first line
    cases.append(("magic.gatrace", b"GATRACE9" + raw[8:], 0))
    cases.append(("magic-load.gatrace", b"GATRACE9" + raw[8:], 1))
    for name, content, index in cases:
        p = tmp_path / name
        p.write_bytes(content)
        read = Trace.read_binary if name == "magic.gatrace" else Trace.load
        with pytest.raises(TraceError) as ei:
            read(p)
        assert_exc(ei.value, TraceError, ValueError, GoallocError,
                   match=re.escape(str(p)))
        assert ei.value.index == index, (name, ei.value.index)
        if index:
            assert f"line {index}" in str(ei.value)
    assert state(h) == before
    p = tmp_path / "fine.trace"
    good.save(p)
    h.replay(Trace.load(p))
    still_works(h, world.live())


def test_row_trace_op_not_replayable(backing):
    """Free of an id that is not live, alloc of a live id: TraceError,
    .index is the op; the ops before it stay applied; the heap is
    consistent."""
    base = workloads.go_mix(2000, live=300, seed=5, procs=PROCS)
    ops = [("alloc", o.id, o.size, o.noscan, o.p) if o.kind == 0
           else ("free", o.id) for o in base]
    nid = base.nids
    bad = {
        "free-never-allocated": [("free", nid + 7)],
        "free-freed": [("alloc", nid, 48), ("free", nid), ("free", nid)],
        "alloc-live": [("alloc", nid, 48, False, 1), ("alloc", nid, 16)],
    }
    for case, tail in bad.items():
        trace = Trace.from_ops(ops + tail + ops[:40])
        index = len(ops) + len(tail) - 1
        # the ops before the bad one, on an identical World
        ref = World(backing)
        try:
            ref.h.replay(trace[:index])
            expected = state(ref.h)
        finally:
            ref.close()
        w = World(backing)
        try:
            with pytest.raises(TraceError) as ei:
                w.h.replay(trace, chunk=500, progress=lambda d, n: None)
            assert_exc(ei.value, TraceError, ValueError, GoallocError,
                       match=rf"^replay stopped at op {index} ")
            assert ei.value.index == index, case
            assert "the ops before it were applied" in str(ei.value)
            assert state(w.h) == expected, case
            still_works(w.h, w.live())
        finally:
            w.close()


def test_row_trace_values_not_integers():
    """Trace(...) and Trace.from_ops values that are not integers:
    TypeError; NumPy alone would truncate 1.7 to id 1 and 16.9 to 16."""
    for kw in (dict(kind=[0, 0], id=[1.7, 2.2], size=[16.9, 24.5]),
               dict(kind=[0, 0], id=[1, 2], size=np.array([16.0, 24.0])),
               dict(kind=[0, 0], id=np.array([1.0, 2.0]), size=[16, 24]),
               dict(kind=[0.0, 1.0], id=[1, 1]),
               dict(kind=[0, 0], id=[1, [2]], size=[16, 24]),
               dict(kind=[0, 0], id=[1, 2], size=["16", "24"]),
               dict(kind=[0, 0], id=[1, 2], size=np.array([True, False])),
               dict(kind=[0, 0], id=[1, 2], size=[16, 24], p=[0, 0.5]),
               dict(kind=[0, 0], id=[1, 2], size=[16, 24],
                    noscan=[0.0, 1.0])):
        with pytest.raises(TypeError) as ei:
            Trace(**kw)
        assert_exc(ei.value, TypeError, match=r"int")
    for op in (("alloc", 1.7, 16), ("alloc", 1, 16.9), ("free", 2.0),
               ("alloc", 1, 16, "yes"), ("alloc", 1, 16, False, 1.0)):
        with pytest.raises(TypeError) as ei:
            Trace.from_ops([("alloc", 0, 8), op])
        assert_exc(ei.value, TypeError, match=r"^op 1: .* must be an int")
    # bools are fine for noscan, and only there
    t = Trace([0, 0], [1, 2], [16, 24], noscan=[True, False])
    assert t.noscan.tolist() == [1, 0]
    assert Trace.from_ops([("alloc", 0, 8, True)]).noscan.tolist() == [1]


def test_row_trace_values_out_of_range():
    """Trace(...) and Trace.from_ops values outside their column:
    TraceError with .index, the op; NumPy alone would wrap size -5 to
    2**64-5."""
    for kw, index, word in (
            (dict(kind=[0, 0], id=[0, 1], size=np.array([16, -5])), 1,
             "size"),
            (dict(kind=[0, 0], id=[0, 1], size=[16, -5]), 1, "size"),
            (dict(kind=[0, 1], id=np.array([-1, 3])), 0, "id"),
            (dict(kind=[0, 0], id=[0, 2**64], size=[1, 1]), 1, "id"),
            (dict(kind=[0, -1], id=[0, 0]), 1, "kind"),
            (dict(kind=np.array([0, 1, 2], np.uint8), id=[0, 0, 1]), 2,
             "kind"),
            (dict(kind=[0, 0], id=[0, 1], p=[3, 1 << 16]), 1, "p"),
            (dict(kind=[0, 0], id=[0, 1], p=np.array([-1, 0])), 0, "p"),
            (dict(kind=[0, 0], id=[0, 1], noscan=[0, 2]), 1, "noscan")):
        with pytest.raises(TraceError) as ei:
            Trace(**kw)
        assert_exc(ei.value, TraceError, ValueError, GoallocError,
                   match=rf"^op {index}: {word} must be")
        assert ei.value.index == index
    for op in (("alloc", -1, 8), ("alloc", 1, -8), ("alloc", 1, 8, 2),
               ("alloc", 1, 8, False, 1 << 16), ("free", -3)):
        with pytest.raises(TraceError) as ei:
            Trace.from_ops([("free", 0), op])
        assert ei.value.index == 1
    for kw in (dict(kind=[0, 0], id=[1]),
               dict(kind=[0, 0], id=[[0, 1], [2, 3]])):
        with pytest.raises(ValueError) as ei:
            Trace(**kw)
        assert_exc(ei.value, ValueError)


def test_row_replay_id_beyond_limit(world):
    """A replay of a trace with an id beyond 2**31-1: TraceError naming
    the first such op, before any op is applied (it used to be NumPy's
    MemoryError or ValueError, making a table of 2**40 or 2**64 ids)."""
    h = world.h
    for big in (2**31, 2**40, 2**63, 2**64 - 1):
        trace = Trace.from_ops([("alloc", 0, 48), ("alloc", 5, 100_000),
                                ("alloc", big, 16), ("free", big),
                                ("alloc", big + 1 if big < 2**64 - 1 else 7,
                                 8)])
        e = rejected(h, TraceError, h.replay, trace, bases=(ValueError,
                                                           GoallocError),
                     match=rf"^op 2: id {big} is beyond")
        assert e.index == 2
        assert "Trace.renumbered()" in str(e)
        # the way out: the same ops with dense ids
        dense, ids = trace.renumbered()
        assert ids.tolist() == sorted(set(trace.id.tolist()))
        assert ids[dense.id].tolist() == trace.id.tolist()
        with goalloc.Heap(backing="virtual") as a, \
                goalloc.Heap(backing="virtual") as b:
            a.replay(dense)
            b.replay(Trace(trace.kind, np.unique(trace.id,
                                                 return_inverse=True)[1],
                           trace.size))
            assert a.digest() == b.digest()
    still_works(h, world.live())


def test_row_snapshot_not_a_snapshot(tmp_path):
    """snapshot.load_json of a file that is not a goalloc snapshot:
    ValueError naming the problem (deep nesting used to escape as
    RecursionError)."""
    from goalloc.snapshot import load_json
    depth = sys.getrecursionlimit() * 10
    for name, content, word in (
            ("deep-list", b"[" * depth + b"]" * depth, "nested too deeply"),
            ("deep-object", b'{"a":' * depth + b"1" + b"}" * depth,
             "nested too deeply"),
            ("deep-open", b"[" * depth, "nested too deeply"),
            ("not-json", b"snapshot", "Expecting value"),
            ("not-utf8", b'\xff{"schema": 1}', "utf-8"),
            ("schema", b'{"schema": "goalloc.timeline/1"}', "schema"),
            ("list", b"[1, 2]", "JSON object")):
        p = tmp_path / f"{name}.json"
        p.write_bytes(content)
        with pytest.raises(ValueError) as ei:
            load_json(p)
        assert type(ei.value) in (ValueError, UnicodeDecodeError,
                                  __import__("json").JSONDecodeError)
        assert word in str(ei.value), (name, str(ei.value)[:200])


def real_throw() -> None:
    """The same row through a throw of the allocator itself (sysAlloc in
    race mode when every hint collides)."""
    msg = "too many address space collisions for -race mode"
    with goalloc.Heap(backing="virtual", race=True, procs=2) as h:
        live = [h.alloc(48, p=1), h.alloc(3, noscan=True)]
        for a in sorted({x.addr for x in h.hints()}):
            if h.span_of(a) is None:          # not inside the arena
                h.block_range(a, 4096)
        with pytest.raises(HeapCorruptionError) as ei:
            h.alloc(64 * MiB, p=1)
        assert_exc(ei.value, HeapCorruptionError, RuntimeError,
                   match=f"^{msg}$")
        for call in (h.digest, h.stats, h.spans, h.verify, h.flush,
                     lambda: h.alloc(8), lambda: h.free(live[0])):
            with pytest.raises(HeapCorruptionError, match=f"^{msg}$"):
                call()


def test_row_broken_invariant(backing):
    """A broken internal invariant (Go's throw): HeapCorruptionError with
    Go's throw text; the heap is poisoned: every later call raises it;
    the interpreter never aborts."""
    msg = "mheap.freeSpanLocked - invalid free"
    w = World(backing)
    h = w.h
    calls = [c for c in busy_calls(w) if c[0] != "close"]
    try:
        with pytest.raises(HeapCorruptionError) as ei:
            h._throw(msg)
        assert_exc(ei.value, HeapCorruptionError, RuntimeError, GoallocError,
                   match=f"^{re.escape(msg)}$")
        assert not isinstance(ei.value, HeapClosedError)
        for _ in range(2):
            for name, call in calls:
                with pytest.raises(HeapCorruptionError) as ei:
                    call()
                assert str(ei.value) == msg, name
                assert type(ei.value) is HeapCorruptionError, name
        # bad arguments on a poisoned heap: still the poison first
        for call in (lambda: h.alloc(-1), lambda: h.free(w.large + 8),
                     lambda: h.alloc(48, p=99)):
            with pytest.raises(HeapCorruptionError, match=re.escape(msg)):
                call()
        assert not h.closed
    finally:
        h.close()
    assert h.closed
    with pytest.raises(HeapClosedError):
        h.digest()
    if backing == "virtual":
        real_throw()


# ---- the known limit ---------------------------------------------------------


def test_known_limit_reused_address(world):
    """An address freed after its memory was handed out again frees the
    new object (docs/misuse.md, "The known limit")."""
    h = world.h
    old = h.alloc(70_000, p=2)
    h.free(old)
    new = h.alloc(70_000, p=1)
    assert new == old
    h.free(old)                       # not a DoubleFreeError: frees new
    assert h.span_of(new).state == "free"
    rejected(h, DoubleFreeError, h.free, new)
    # a small slot, reused after the sweep
    xs = [h.alloc(2048, p=2) for _ in range(4)]   # class 37, 4 a span
    h.free(xs[2])
    h.flush()
    again = None
    for _ in range(8):
        y = h.alloc(2048, p=2)
        if y == xs[2]:
            again = y
            break
    assert again == xs[2]
    h.free(xs[2])                     # frees the new object
    s = h.span_of(again)
    assert h.span_objects(s.base).states[(again - s.base) // 2048] == \
        SLOT_FREED
    rejected(h, DoubleFreeError, h.free, again)
    still_works(h, [xs[0], xs[1], xs[3], *world.live()])


# ---- every row has its test --------------------------------------------------

# row text prefix -> (the test of that row, the documented exception)

# ---- the bulk calls (alloc_many, free_many) ---------------------------------


def test_row_bulk_not_integers(world):
    """Bulk input that is not integers: TypeError before anything changes."""
    h = world.h
    for bad in (np.array([8.0, 16.0]), np.array([True, False]),
                ["8", "16"], [8, None], 8, [1, [2]], [[8], [16, 24]],
                [8, 16.5], (8, [16, 24])):
        rejected(h, TypeError, h.alloc_many, bad)
        rejected(h, TypeError, h.free_many, bad)
    still_works(h, world.live())


def test_row_bulk_2d(world):
    """2-D input: ValueError before anything changes."""
    h = world.h
    for bad in (np.ones((2, 3), dtype=np.int64), [[8, 16], [24, 32]]):
        rejected(h, ValueError, h.alloc_many, bad)
        rejected(h, ValueError, h.free_many, bad)
    still_works(h, world.live())


def test_row_bulk_bad_size(world):
    """A negative size, one beyond 2**64 or beyond maxAlloc inside
    alloc_many: ValueError with .index (the first), nothing allocated."""
    h = world.h
    for sizes, index in (([8, -1, 16, -2], 1), ([8, 16, 2**64], 2),
                         ([2**48 + 1, 8], 0)):
        e = rejected(h, ValueError, h.alloc_many, sizes)
        assert e.index == index, (sizes, e.index)
    still_works(h, world.live())


def test_row_bulk_p_and_keywords(world):
    """alloc_many's p and keywords are checked as alloc's."""
    h = world.h
    for kw, exc in (({"p": PROCS}, ValueError), ({"p": -1}, ValueError),
                    ({"p": "0"}, TypeError), ({"bogus": 1}, TypeError)):
        a = rejected(h, exc, h.alloc, 8, **kw)
        b = rejected(h, exc, h.alloc_many, [8], **kw)
        assert str(b).replace("alloc_many", "alloc") == str(a) or \
            type(a) is type(b)
    still_works(h, world.live())


def test_row_bulk_out_of_memory(backing):
    """Out of memory part way through alloc_many: OutOfMemoryError with
    .index and .addresses, which stay allocated (free_many gives them
    back)."""
    w = World(backing, sys_limit=64 * MiB)
    try:
        h = w.h
        sizes = [1 * MiB] * 200            # more than the one arena holds
        with pytest.raises(OutOfMemoryError) as ei:
            h.alloc_many(sizes)
        e = ei.value
        assert isinstance(e, MemoryError) and isinstance(e, GoallocError)
        assert 0 < e.index < len(sizes) and len(e.addresses) == e.index
        for a in e.addresses:
            assert h.span_of(int(a)).state == "inuse"
        d = h.digest()
        h.free_many(e.addresses)
        assert h.digest() != d
        still_works(h, w.live())
    finally:
        w.close()


def test_row_bulk_bad_address(world):
    """A bad address inside free_many: what free() would raise, with
    .index; the frees before it stay done, the rest is not tried."""
    h = world.h
    a = [int(x) for x in h.alloc_many([48, 48, 48])]
    with pytest.raises(DoubleFreeError) as ei:
        h.free_many([a[0], a[1], a[0], a[2]])
    assert ei.value.index == 2 and hex(a[0])[2:] in str(ei.value).lower()
    before = state(h)
    h.free(a[2])                           # not tried by the batch
    assert state(h) != before
    for bad, exc in ((a[1] + 8, InvalidFreeError), (8, InvalidFreeError),
                     (-1, InvalidFreeError)):
        e = rejected(h, exc, h.free_many, [bad])
        assert e.index == 0
    still_works(h, world.live())


def test_row_reentrant_call(world):
    """A call from a replay's progress callback: HeapBusyError saying
    where it came from; the replay finishes on a live heap."""
    h = world.h
    errors = []

    def progress(done, n):
        with pytest.raises(HeapBusyError) as ei:
            h.alloc(16)
        errors.append(ei.value)

    trace = goalloc.Trace.from_ops([("alloc", i, 24) for i in range(40)])
    h.replay(trace, chunk=10, progress=progress)
    assert len(errors) == 4
    for e in errors:
        assert_exc(e, HeapBusyError, RuntimeError, GoallocError,
                   match="came from Python code that call ran")
    still_works(h)


def test_row_conversion_closes_the_heap(backing):
    """`alloc(size)` whose size's __index__ closes the heap:
    HeapClosedError, no use of the freed heap."""
    h = goalloc.Heap(backing=backing)

    class Closing:
        def __index__(self):
            h.close()
            return 64

    with pytest.raises(HeapClosedError) as ei:
        h.alloc(Closing())
    assert_exc(ei.value, HeapClosedError, RuntimeError, GoallocError)
    assert h.closed


def test_row_replay_bad_options(world):
    """sample_every 2**64 + 1000 (it used to wrap to 1000 in C), a
    negative chunk, a non-callable progress: refused, heap unchanged."""
    h = world.h
    trace = goalloc.Trace.from_ops([("alloc", i, 24) for i in range(40)])
    rejected(h, ValueError, h.replay, trace, sample_every=2**64 + 1000)
    rejected(h, ValueError, h.replay, trace, chunk=-1)
    rejected(h, TypeError, h.replay, trace, progress=3)
    rejected(h, TypeError, h.replay, trace, sample_every=1.5)
    still_works(h, world.live())


def test_row_nul_in_str():
    """`Heap(goos="linux\x00evil")`: ValueError, not a linux heap."""
    for kw in ({"goos": "linux\x00evil"}, {"goarch": "amd64\x00"},
               {"backing": "os\x00"}):
        with pytest.raises(ValueError, match="NUL") as ei:
            goalloc.Heap(**kw)
        assert not isinstance(ei.value, GoallocError)


ROW_TESTS = {
    "an argument of the wrong type": (test_row_wrong_type, "TypeError"),
    "a negative size, or a size beyond 2**64":
        (test_row_negative_or_beyond_2_64, "ValueError"),
    "a size beyond the port's `maxAlloc`":
        (test_row_beyond_max_alloc, "ValueError"),
    "a size the OS (or `sys_limit`, or `fail_reserves`) cannot back":
        (test_row_out_of_memory, "OutOfMemoryError"),
    "`p` out of range": (test_row_p_out_of_range, "ValueError"),
    "an unknown keyword": (test_row_unknown_keyword, "TypeError"),
    "double free of a large object":
        (test_row_double_free_large, "DoubleFreeError"),
    "double free of a small object":
        (test_row_double_free_small, "DoubleFreeError"),
    "double free of a tiny object":
        (test_row_double_free_tiny, "DoubleFreeError"),
    "an interior pointer": (test_row_not_an_object_start, "InvalidFreeError"),
    "a foreign address": (test_row_foreign_address, "InvalidFreeError"),
    "an address from another heap":
        (test_row_address_of_another_heap, "InvalidFreeError"),
    "`free(zerobase)`": (test_row_free_zerobase, None),
    "any call while another thread replays a trace":
        (test_row_heap_busy, "HeapBusyError"),
    "any call after `close()`": (test_row_heap_closed, "HeapClosedError"),
    "any call from Python code that a call on the heap runs":
        (test_row_reentrant_call, "HeapBusyError"),
    "an argument whose conversion":
        (test_row_conversion_closes_the_heap, "HeapClosedError"),
    "`replay` with `sample_every` or `chunk`":
        (test_row_replay_bad_options, "ValueError"),
    "a `str` argument containing NUL": (test_row_nul_in_str, "ValueError"),
    "`view()` on the `virtual` backing":
        (test_row_view_on_virtual, "ValueError"),
    "`view()` of a freed object": (test_row_view_bad_object, "ValueError"),
    "a view kept after `free`": (test_row_view_kept_after_free, None),
    "a view kept after `close()`": (test_row_view_kept_after_close, None),
    "bad `Heap()` arguments": (test_row_bad_heap_arguments, "ValueError"),
    "a malformed trace file": (test_row_malformed_trace_file, "TraceError"),
    "a trace op that cannot be replayed":
        (test_row_trace_op_not_replayable, "TraceError"),
    "`Trace(...)` or `Trace.from_ops` values that are not integers":
        (test_row_trace_values_not_integers, "TypeError"),
    "`Trace(...)` or `Trace.from_ops` values outside their column":
        (test_row_trace_values_out_of_range, "TraceError"),
    "replay of a trace with an id beyond 2**31-1":
        (test_row_replay_id_beyond_limit, "TraceError"),
    "`snapshot.load_json` of a file that is not a goalloc snapshot":
        (test_row_snapshot_not_a_snapshot, "ValueError"),
    "a broken internal invariant":
        (test_row_broken_invariant, "HeapCorruptionError"),
    "`alloc_many` / `free_many` input that is not integers":
        (test_row_bulk_not_integers, "TypeError"),
    "2-D (or deeper) input": (test_row_bulk_2d, "ValueError"),
    "in `alloc_many`: a negative size": (test_row_bulk_bad_size, "ValueError"),
    "in `alloc_many`: `p` out of range": (test_row_bulk_p_and_keywords, None),
    "out of memory part way through `alloc_many`":
        (test_row_bulk_out_of_memory, "OutOfMemoryError"),
    "a bad address inside `free_many`":
        (test_row_bulk_bad_address, "DoubleFreeError"),
}


def catalogue_rows() -> list[tuple[str, str, str]]:
    """(misuse, exception, notes) of every row of docs/misuse.md's table."""
    rows = []
    for line in MISUSE_MD.read_text(encoding="utf-8").splitlines():
        if not line.startswith("|"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells[0] == "misuse" or set(cells[0]) <= set("-: "):
            continue
        assert len(cells) == 3, line
        rows.append(tuple(cells))
    return rows


def test_every_row_has_a_test():
    rows = catalogue_rows()
    assert len(rows) >= 20
    used = set()
    for misuse, exception, _ in rows:
        keys = [k for k in ROW_TESTS if misuse.startswith(k)]
        assert len(keys) == 1, f"row without a (unique) test: {misuse!r}"
        key = keys[0]
        used.add(key)
        fn, documented = ROW_TESTS[key]
        assert fn.__name__.startswith("test_row_")
        assert globals()[fn.__name__] is fn
        named = [n for n in re.findall(r"`(\w+)`", exception)
                 if n.endswith("Error")]
        if documented is None:
            assert named == [], (misuse, exception)
            continue
        # the first exception named is the row's; any other is a base
        # ("(also a `MemoryError`)", "(a `RuntimeError`)")
        assert named[:1] == [documented], (misuse, exception)
        classes = [getattr(goalloc, n, None) or getattr(builtins, n)
                   for n in named]
        for base in classes[1:]:
            assert issubclass(classes[0], base), (misuse, exception)
    assert used == set(ROW_TESTS), f"stale entries: {set(ROW_TESTS) - used}"
    # the known limit has its test too
    text = MISUSE_MD.read_text(encoding="utf-8")
    assert "## The known limit" in text
    assert "frees the new object" in text
    assert callable(test_known_limit_reused_address)


def test_documented_bases():
    """The bases the catalogue names: "(also a `MemoryError`)", "(a
    `RuntimeError`)", "(a `ValueError`)", and design §10.1's hierarchy."""
    assert issubclass(DoubleFreeError, InvalidFreeError)
    for exc in (InvalidFreeError, DoubleFreeError, TraceError):
        assert issubclass(exc, ValueError) and issubclass(exc, GoallocError)
    assert issubclass(OutOfMemoryError, MemoryError)
    assert not issubclass(OutOfMemoryError, ValueError)
    for exc in (HeapClosedError, HeapBusyError, HeapCorruptionError):
        assert issubclass(exc, RuntimeError) and issubclass(exc, GoallocError)
        assert not issubclass(exc, ValueError)
    assert len({HeapClosedError, HeapBusyError, HeapCorruptionError}) == 3
    assert not issubclass(HeapBusyError, HeapClosedError)
    assert not issubclass(HeapCorruptionError, HeapClosedError)


# ---- where behaviour and catalogue once disagreed ---------------------------
#
# An OS that reserves a range but will not back it used to poison the heap
# (Go's sysMap throw); `with heap:` did not check for busy or poisoned heaps.


def _os_refuses_huge_commits() -> bool:
    """Whether a 32 TiB read-write mapping is refused here: Linux
    overcommit heuristic (0) or strict (2) accounting, no RLIMIT_AS."""
    import resource
    try:
        with open("/proc/sys/vm/overcommit_memory") as f:
            mode = f.read().strip()
    except OSError:
        return False
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    return mode in ("0", "2") and soft == resource.RLIM_INFINITY


@pytest.mark.skipif(not sys.platform.startswith("linux"),
                    reason="backing='os' is linux/amd64 only")
@pytest.mark.skipif(ASAN, reason="ASan's shadow memory takes the space")
@pytest.mark.skipif(not _os_refuses_huge_commits(),
                    reason="this kernel would commit 32 TiB")
def test_row_out_of_memory_when_the_os_refuses_the_commit():
    """"a size the OS ... cannot back | OutOfMemoryError | nothing
    changed": here the OS reserves 32 TiB of address space (PROT_NONE)
    at a hint but refuses to map it read-write."""
    # no metadata_limit, which would refuse the 33 GB of metadata first
    w = World("os", metadata_limit=0)
    try:
        h = w.h
        rejected(h, OutOfMemoryError, h.alloc, 1 << 45,
                 bases=(MemoryError, GoallocError),
                 match="cannot allocate 35184372088832-byte block: the OS "
                       "would not back")
        still_works(h, w.live())
    finally:
        w.close()


@pytest.mark.parametrize("case", ["poisoned", "busy"])
def test_enter_is_checked_like_every_call(case):
    """"every later call raises it" (a broken invariant) and "any call
    while another thread replays a trace" (HeapBusyError) include
    `with heap:`."""
    w = World("virtual")
    h = w.h
    try:
        if case == "poisoned":
            with pytest.raises(HeapCorruptionError):
                h._throw("boom")
            with pytest.raises(HeapCorruptionError, match="^boom$"):
                h.__enter__()
            return
        trace = workloads.go_mix(60_000, live=2000, seed=11, procs=PROCS)
        for _attempt in range(10):
            errors, _ = calls_during_replay(
                w, trace, 10_000, calls=[("__enter__", h.__enter__)])
            if errors is not None:
                break
        else:
            pytest.skip("no call overlapped the replay")
        assert isinstance(errors["__enter__"], HeapBusyError), errors
    finally:
        h.close()
