"""Frees the heap refuses (docs/misuse.md): double frees of large, small
and tiny objects, addresses that are not the start of a live object
(interior pointers, tails past a span's limit, slots never allocated,
pages never handed out), foreign addresses and another heap's; and what
is not refused: free(zerobase), and the known limit (an address whose
memory was handed out again frees the new object).

Each refusal raises the exact exception and leaves the heap as it was
(misuse.rejected).  The row tests run on World (three Ps); the others on
World1P, whose slots they count.
"""
from __future__ import annotations

import goalloc
from goalloc import (
    SLOT_FREE,
    SLOT_FREED,
    DoubleFreeError,
    GoallocError,
    InvalidFreeError,
)
from helpers import (
    ARENA,
    GO_HEAP_START,
    PAGE,
    TINY,
    TINY_SPAN_CLASS,
    MiB,
    state,
)
from misuse import PROCS, World, rejected, still_works

# ---- double free -----------------------------------------------------------


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


def test_double_free_large(world1p):
    h = world1p.h
    rejected(h, goalloc.DoubleFreeError, h.free, world1p.large_freed)
    h.free(world1p.large)
    rejected(h, goalloc.DoubleFreeError, h.free, world1p.large)


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


def test_double_free_small(world1p):
    h = world1p.h
    rejected(h, goalloc.DoubleFreeError, h.free, world1p.cached[3])
    rejected(h, goalloc.DoubleFreeError, h.free, world1p.full[7])
    world1p.flush_some()
    # swept now: the slots are free again, and still known as freed
    s = h.span_of(world1p.cached[0])
    assert h.span_objects(s.base).states[3] == SLOT_FREE
    rejected(h, goalloc.DoubleFreeError, h.free, world1p.cached[3])
    rejected(h, goalloc.DoubleFreeError, h.free, world1p.full[7])
    # freed in an uncached span, waiting for cacheSpan's sweep
    s = h.span_of(world1p.flushed[0])
    assert h.span_objects(s.base).states[1] == SLOT_FREED
    rejected(h, goalloc.DoubleFreeError, h.free, world1p.flushed[1])


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


def test_double_free_tiny(world1p):
    h = world1p.h
    rejected(h, goalloc.DoubleFreeError, h.free, world1p.ta[2])
    h.free(world1p.big_tiny)                    # B's only object: B freed
    rejected(h, goalloc.DoubleFreeError, h.free, world1p.big_tiny)
    h.free(world1p.sixteen)
    rejected(h, goalloc.DoubleFreeError, h.free, world1p.sixteen)
    world1p.flush_some()
    for a in (world1p.ta[2], world1p.big_tiny, world1p.sixteen):
        rejected(h, goalloc.DoubleFreeError, h.free, a)


# ---- not the start of a live object ----------------------------------------


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
    cases += [lo, lo + 16, lo + PAGE, hi - PAGE, hi - 8]
    for addr in cases:
        e = rejected(h, InvalidFreeError, h.free, addr, **inv)
        assert not isinstance(e, DoubleFreeError), hex(addr)
        assert f"{addr:#x}" in str(e)
    still_works(h, world.live())


def test_interior_pointers(world1p):
    h = world1p.h
    cases = []
    for a in (world1p.cached[0], world1p.cached[3], world1p.full[0],
              world1p.full[7]):
        cases += [a + 1, a + 8, a + 47]
    for a in world1p.flushed[:2]:
        cases += [a + 16, a + 143]
    cases += [world1p.large + 1, world1p.large + 8, world1p.large + PAGE,
              world1p.large + 39_999]
    cases += [world1p.large_freed + 8, world1p.large_freed + PAGE]
    for addr in cases:
        rejected(h, goalloc.InvalidFreeError, h.free, addr)
    world1p.flush_some()
    for addr in cases:
        rejected(h, goalloc.InvalidFreeError, h.free, addr)


def test_tiny_offsets_never_used(world1p):
    h = world1p.h
    a = world1p.ta[0]                           # live at 0, 2; freed at 4
    for off in (1, 3, 5, 6, 7, 8, 15):
        rejected(h, goalloc.InvalidFreeError, h.free, a + off)
    b = world1p.big_tiny                        # live at 0 (15 bytes)
    for off in (1, 8, 14, 15):
        rejected(h, goalloc.InvalidFreeError, h.free, b + off)
    for off in (1, 8, 15):
        rejected(h, goalloc.InvalidFreeError, h.free,
                         world1p.sixteen + off)


def test_never_allocated_slot_starts(world1p):
    h = world1p.h
    base = h.span_of(world1p.cached[0]).base
    for i in (10, 11, 63, 64, 169):           # past freeindex, cached span
        rejected(h, goalloc.InvalidFreeError, h.free, base + i * 48)
    fbase = h.span_of(world1p.flushed[0]).base
    tbase = h.span_of(world1p.ta[0]).base
    tslots = [tbase + i * TINY for i in (3, 4, 100, 511)]
    for addr in tslots:
        rejected(h, goalloc.InvalidFreeError, h.free, addr)
    world1p.flush_some()
    # swept, uncached: never-used slots are still not objects
    for i in (5, 6, 55):
        rejected(h, goalloc.InvalidFreeError, h.free,
                         fbase + i * 144)
    for i in (10, 169):
        rejected(h, goalloc.InvalidFreeError, h.free, base + i * 48)
    for addr in tslots:
        rejected(h, goalloc.InvalidFreeError, h.free, addr)


def test_tail_waste(world1p):
    h = world1p.h
    for a, size in ((world1p.cached[0], 48), (world1p.full[0], 48),
                    (world1p.flushed[0], 144)):
        s = h.span_of(a)
        assert s.limit == s.base + s.nelems * size < s.end
        for addr in (s.limit, s.limit + 8, s.end - 8, s.end - 1):
            rejected(h, goalloc.InvalidFreeError, h.free, addr)
    # a large object's span past its requested size
    s = h.span_of(world1p.large)
    assert s.limit == world1p.large + 40_000
    assert s.end == world1p.large + 5 * PAGE
    for addr in (s.limit, s.limit + 8, s.end - 1):
        rejected(h, goalloc.InvalidFreeError, h.free, addr)


def test_free_in_cur_arena(grown):
    # go1.13.8: the rest of the arena is curArena, mapped but no span;
    # freeing there is freeing no object (not a foreign address)
    h, p = grown
    info = h.info()
    assert (info.cur_arena_base, info.cur_arena_end) == (
        p + 13 * PAGE, h.arenas()[0].base + 64 * MiB)
    for addr in (info.cur_arena_base, info.cur_arena_base + 7 * PAGE + 16,
                 info.cur_arena_end - 1):
        e = rejected(h, goalloc.InvalidFreeError, h.free, addr)
        assert not isinstance(e, goalloc.DoubleFreeError)
        assert "not the start of a live object" in str(e)
        assert h.span_of(addr) is None


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
    rejected(h, goalloc.InvalidFreeError, h.free, q)
    h.free(r)


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


# ---- foreign addresses, another heap's -------------------------------------


def test_row_foreign_address(world):
    """Not in any arena of this heap, negative, beyond 2**64:
    InvalidFreeError."""
    h = world.h
    arenas = h.arenas()
    lo = min(a.base for a in arenas)
    hi = max(a.base for a in arenas) + ARENA
    for addr in (0, 1, 8, 0x1000, 0x1234, 0x400000, lo - 8, lo - PAGE, hi,
                 hi + 8, GO_HEAP_START - 16, 1 << 46, 0x7FFF_FFFF_F000,
                 (1 << 47) - 8, 1 << 63, (1 << 64) - 8, (1 << 64) - 1,
                 world.zero + 8):
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
    # a heap with no arena yet: its first hint is no address of it
    with goalloc.Heap(backing=world.backing) as f:
        rejected(f, InvalidFreeError, f.free, GO_HEAP_START,
                 match=r"not an address in this heap's arenas$")


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


# ---- free(zerobase) --------------------------------------------------------


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


# ---- World1P ---------------------------------------------------------------


def test_tiny_class_is_span_class_5(world1p):
    # the World's tiny objects sit where the tests above assume
    h = world1p.h
    for a in (world1p.ta[0], world1p.big_tiny, world1p.sixteen):
        assert h.span_of(a).spanclass == TINY_SPAN_CLASS


def test_double_free_of_a_large_object_merged_into_a_lower_neighbour():
    """The freed large span is merged into the free span below it, whose
    struct survives: spanOf of big's first page is big's dead struct.
    The second free is still a double free (it was "not the start of a
    live object" before)."""
    h = goalloc.Heap(backing="virtual")
    p = h.alloc(48)
    big = h.alloc(100_000)
    h.free(big)
    h.free(p)
    h.flush()       # p's span goes home and absorbs big's free span
    assert h.span_of(big).base < big        # merged with p's span
    before = h.digest()
    try:
        h.free(big)
    except DoubleFreeError:
        pass
    else:
        raise AssertionError("the second free was taken")
    assert h.digest() == before
