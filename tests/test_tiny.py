"""The tiny allocator: noscan requests under 16 bytes share 16-byte blocks.

Go 1.13 (design §4.8; Go's TestTinyAlloc, design §13.2): the offset in the
P's current block is aligned to 8, 4, 2 or 1 by the request size; a
request that does not fit takes a fresh 16-byte slot of span class 5,
which becomes the current block only if it has more room left (size <
tinyoffset) or there was none. Packed requests count in both Mallocs and
Frees (tinyallocs). goalloc's free (design §6): a block is freed when none
of its objects is live and no P packs into it.
"""
from __future__ import annotations

import random

import pytest

import goalloc
from goalloc import SLOT_FREE, SLOT_FREED, SLOT_LIVE
from helpers import (
    TINY,
    TINY_SPAN_CLASS,
    check_stat_identities,
    state,
    tiny_align,
)


def block_of(addr: int) -> int:
    return addr & ~(TINY - 1)


def slot_state(h: goalloc.Heap, block: int) -> int:
    s = h.span_of(block)
    return h.span_objects(s.base).states[(block - s.base) // TINY]


def marks(h: goalloc.Heap, block: int) -> int:
    s = h.span_of(block)
    return h.span_objects(s.base).tiny_marks[(block - s.base) // TINY]


def tiny_state(h: goalloc.Heap, p: int = 0) -> tuple[int, int]:
    c = h.caches()[p]
    return c.tiny, c.tinyoffset


# ---- packing ---------------------------------------------------------------


def test_tiny_alloc(heap):
    """Go's TestTinyAlloc: 16 one-byte allocations, at least two share
    an 8-byte chunk.  In fact they fill one block, byte after byte."""
    h = heap
    addrs = [h.alloc(1, noscan=True) for _ in range(16)]
    chunks = [a & ~7 for a in addrs]
    assert len(set(chunks)) < len(chunks)
    assert addrs == [addrs[0] + i for i in range(16)]
    assert addrs[0] % TINY == 0
    s = h.span_of(addrs[0])
    assert (s.spanclass, s.sizeclass, s.noscan, s.elemsize) == (
        TINY_SPAN_CLASS, 2, True, 16)
    assert s.alloc_count == 1
    assert tiny_state(h) == (addrs[0], 16)
    assert marks(h, addrs[0]) == 0xFFFF
    # the block is full: the 17th byte opens the next block
    b = h.alloc(1, noscan=True)
    assert b == addrs[0] + 16
    assert tiny_state(h) == (b, 1)


def test_scan_requests_are_not_tiny(heap):
    h = heap
    a = h.alloc(1)
    b = h.alloc(1)
    assert b - a == 8                          # class 1 slots, not packed
    assert h.span_of(a).spanclass == 2
    assert tiny_state(h) == (0, 0)


@pytest.mark.parametrize("off0", range(16))
def test_alignment_and_replacement_rule(backing, off0):
    """Every request size 1..15 at current offset off0, in a heap where
    blocks are handed out in slot order (nothing is freed)."""
    with goalloc.Heap(backing=backing) as h:
        first = h.alloc(1, noscan=True)        # slot 0: consumed
        h.flush()                              # drop it as current block
        next_slot = first + TINY
        for size in range(1, 16):
            if off0:
                b1 = h.alloc(off0, noscan=True)
                assert b1 == next_slot
                next_slot += TINY
                assert tiny_state(h) == (b1, off0)
            else:
                b1 = 0
                assert tiny_state(h) == (0, 0)
            got = h.alloc(size, noscan=True)
            off = tiny_align(off0, size)
            if b1 and off + size <= TINY:
                assert got == b1 + off, (off0, size)
                assert tiny_state(h) == (b1, off + size)
            else:
                assert got == next_slot, (off0, size)
                next_slot += TINY
                if b1 == 0 or size < off0:
                    assert tiny_state(h) == (got, size)   # replaced
                else:
                    assert tiny_state(h) == (b1, off0)    # kept
            h.flush()
            assert tiny_state(h) == (0, 0)
        h.verify()


def test_replacement_keeps_the_block_with_more_room(heap):
    h = heap
    a = h.alloc(10, noscan=True)              # block A, offset 10
    b = h.alloc(8, noscan=True)               # 16 + 8 > 16: block B
    assert block_of(b) != block_of(a)
    assert tiny_state(h) == (b, 8)            # 8 < 10: B has more room
    c = h.alloc(12, noscan=True)              # 8 + 12 > 16: block C
    assert tiny_state(h) == (b, 8)            # 12 >= 8: B stays
    assert block_of(c) not in (block_of(a), block_of(b))
    d = h.alloc(8, noscan=True)               # fits B at offset 8
    assert d == b + 8 and tiny_state(h) == (b, 16)
    e = h.alloc(15, noscan=True)              # new block; 15 < 16
    assert tiny_state(h) == (e, 15)


def test_sixteen_byte_noscan_is_a_plain_object(heap):
    """16-byte noscan objects share span class 5 with the tiny blocks but
    are plain small objects: no tiny marks, requested size 16, and their
    interior is not an object."""
    h = heap
    t = h.alloc(3, noscan=True)
    a = h.alloc(16, noscan=True)
    assert h.span_of(a).spanclass == TINY_SPAN_CLASS
    assert a % TINY == 0 and block_of(a) != block_of(t)
    assert tiny_state(h) == (t, 3)            # the tiny block is unchanged
    assert marks(h, a) == 0 and marks(h, t) == 1
    if h.info().backing == "os":
        assert h.view(a).nbytes == 16
    before = state(h)
    for off in (1, 8, 15):
        with pytest.raises(goalloc.InvalidFreeError) as ei:
            h.free(a + off)
        assert type(ei.value) is goalloc.InvalidFreeError
        assert state(h) == before
    h.free(a)
    assert slot_state(h, a) == SLOT_FREED
    with pytest.raises(goalloc.DoubleFreeError):
        h.free(a)
    h.verify()


# ---- marks and free ---------------------------------------------------------


def test_tiny_marks(heap):
    h = heap
    a = h.alloc(1, noscan=True)               # offset 0
    b = h.alloc(2, noscan=True)               # offset 2
    c = h.alloc(4, noscan=True)               # offset 4
    d = h.alloc(8, noscan=True)               # offset 8
    assert [x - a for x in (b, c, d)] == [2, 4, 8]
    assert marks(h, a) == 1 | 1 << 2 | 1 << 4 | 1 << 8
    h.free(c)
    assert marks(h, a) == 1 | 1 << 2 | 1 << 8
    assert slot_state(h, a) == SLOT_LIVE      # other objects still live
    h.free(a)
    h.free(d)
    assert marks(h, a) == 1 << 2
    so = h.span_objects(h.span_of(a).base)
    assert len(so.tiny_marks) == len(so.states) == 512
    assert all(m == 0 for m in so.tiny_marks[1:])
    # other spans carry no marks
    x = h.alloc(48)
    assert h.span_objects(h.span_of(x).base).tiny_marks == ()


def test_free_one_tiny_object_keeps_the_block(heap):
    h = heap
    a = h.alloc(4, noscan=True)
    b = h.alloc(4, noscan=True)
    h.alloc(12, noscan=True)                  # new block, A stays current
    assert tiny_state(h) == (a, 8)
    h.free(a)
    assert slot_state(h, a) == SLOT_LIVE
    assert marks(h, a) == 1 << 4
    assert h.alloc(4, noscan=True) == a + 8   # still packing into it
    assert h.span_of(a).alloc_count == 2
    del b


def test_non_current_block_is_freed_with_its_last_object(heap):
    h = heap
    a = h.alloc(12, noscan=True)              # block A, current
    b = h.alloc(6, noscan=True)               # block B replaces A (6 < 12)
    b2 = h.alloc(6, noscan=True)
    assert tiny_state(h) == (b, 12) and b2 == b + 6
    st0 = h.stats()
    h.free(a)                                 # A's only object
    assert slot_state(h, a) == SLOT_FREED     # its span is cached
    assert marks(h, a) == 0
    st1 = h.stats()
    assert st1.heap_objects == st0.heap_objects - 1
    assert st1.by_size[2].frees == st0.by_size[2].frees + 1
    assert st1.heap_alloc == st0.heap_alloc - 16
    with pytest.raises(goalloc.DoubleFreeError):
        h.free(a)


def test_current_block_survives_until_flush(heap):
    h = heap
    a = h.alloc(2, noscan=True)
    b = h.alloc(2, noscan=True)
    keep = h.alloc(16, noscan=True)           # keeps the span in use
    h.free(a)
    h.free(b)
    assert marks(h, a) == 0
    assert slot_state(h, a) == SLOT_LIVE      # the P still packs into it
    assert tiny_state(h) == (a, 4)
    assert h.stats().heap_objects == 2        # the block and keep
    assert h.alloc(2, noscan=True) == a + 4   # and it still does
    h.free(a + 4)
    h.flush()                                 # releaseAll drops it
    assert tiny_state(h) == (0, 0)
    assert slot_state(h, a) == SLOT_FREE      # freed, then swept
    assert h.stats().heap_objects == 1
    assert h.span_of(keep).state == "inuse"


def test_current_block_survives_until_replaced(heap):
    h = heap
    a = h.alloc(7, noscan=True)
    h.free(a)
    assert slot_state(h, a) == SLOT_LIVE
    b = h.alloc(12, noscan=True)              # 7+12 > 16, 12 >= 7: A kept
    assert tiny_state(h) == (a, 7)
    assert slot_state(h, a) == SLOT_LIVE
    c = h.alloc(5, noscan=True)               # odd: offset 7, 7+5 <= 16
    assert c == a + 7
    h.free(c)
    d = h.alloc(6, noscan=True)               # 12+6 > 16, 6 < 12: replace
    assert tiny_state(h) == (d, 6)
    assert slot_state(h, a) == SLOT_FREED     # dropped with nothing live
    assert slot_state(h, b) == SLOT_LIVE


def test_block_of_a_span_that_left_the_cache(heap):
    """After flush the span is uncached: freeing the last object of the
    last block sends the span home."""
    h = heap
    a = h.alloc(3, noscan=True)
    b = h.alloc(3, noscan=True)
    h.flush()
    base = h.span_of(a).base
    assert h.centrals()[TINY_SPAN_CLASS].nonempty == (base,)
    h.free(a)
    assert h.span_of(base).state == "inuse"
    inuse = h.stats().heap_inuse
    h.free(b)
    assert h.span_of(base).state == "free"
    assert h.stats().heap_inuse == inuse - 8192
    st = h.stats()
    assert st.heap_objects == 0 and st.mallocs == st.frees == 2


def test_tiny_double_free(heap):
    h = heap
    a = h.alloc(1, noscan=True)
    b = h.alloc(1, noscan=True)
    h.free(b)
    before = state(h)
    with pytest.raises(goalloc.DoubleFreeError):
        h.free(b)
    assert state(h) == before
    keep = h.alloc(16, noscan=True)           # keeps the span in use
    h.free(a)
    h.flush()                                 # block freed and swept
    assert slot_state(h, a) == SLOT_FREE
    before = state(h)
    for x in (a, b):
        with pytest.raises(goalloc.DoubleFreeError):
            h.free(x)
        assert state(h) == before
    # README's limit: once the span is back in the heap, a second free is
    # still refused, though no longer known as a double free
    h.free(keep)
    assert h.span_of(a).state == "free"
    before = state(h)
    for x in (a, b, keep):
        with pytest.raises(goalloc.InvalidFreeError):
            h.free(x)
        assert state(h) == before


@pytest.mark.parametrize("off", [1, 3, 5, 8, 12, 15])
def test_tiny_interior_never_used_is_invalid_not_double(heap, off):
    h = heap
    a = h.alloc(4, noscan=True)               # offset 0
    b = h.alloc(4, noscan=True)               # offset 4
    assert b == a + 4
    bad = a + off
    before = state(h)
    with pytest.raises(goalloc.InvalidFreeError) as ei:
        h.free(bad)
    assert type(ei.value) is goalloc.InvalidFreeError
    assert state(h) == before
    # still invalid (not double) once the block is gone
    h.free(a)
    h.free(b)
    h.flush()
    before = state(h)
    with pytest.raises(goalloc.InvalidFreeError) as ei:
        h.free(bad)
    assert type(ei.value) is goalloc.InvalidFreeError
    assert state(h) == before


# ---- statistics ------------------------------------------------------------


def test_tinyallocs_accounting(heap):
    h = heap
    addrs = [h.alloc(1, noscan=True) for _ in range(40)]   # 3 blocks
    assert len({block_of(a) for a in addrs}) == 3
    st = h.stats()
    check_stat_identities(st)
    assert st.mallocs == 40
    assert st.frees == 37                     # packed: counted freed
    assert st.heap_objects == 3
    assert st.heap_alloc == 3 * TINY
    assert (st.by_size[2].mallocs, st.by_size[2].frees) == (3, 0)
    for a in addrs[:16]:                      # all of block 0
        h.free(a)
    st = h.stats()
    assert (st.mallocs, st.frees, st.heap_objects) == (40, 38, 2)
    for a in addrs[16:]:
        h.free(a)
    st = h.stats()
    # the current block (offset 8 of the third) is not freed yet
    assert (st.mallocs, st.frees, st.heap_objects) == (40, 39, 1)
    h.flush()
    st = h.stats()
    assert (st.mallocs, st.frees, st.heap_objects, st.heap_alloc) == (
        40, 40, 0, 0)
    check_stat_identities(st)


def tinyallocs(h: goalloc.Heap) -> list[int]:
    return [c.local_tinyallocs for c in h.caches()]


def test_span_allocation_flushes_local_tinyallocs(backing):
    """alloc_m (mheap.go) moves the calling mcache's local_tinyallocs into
    memstats.tinyallocs and zeroes it whenever it allocates a span: for a
    large object, or a refill that grows its mcentral.  Other Ps keep
    theirs; a refill from a span the mcentral has does not flush.
    Mallocs and Frees count packed requests all the same
    (updatememstats adds memstats.tinyallocs to both)."""
    with goalloc.Heap(backing=backing, procs=2) as h:
        for _ in range(16):
            h.alloc(1, noscan=True)            # 1 block + 15 packed
        for _ in range(3):
            h.alloc(1, noscan=True, p=1)       # P 1: 1 block + 2 packed
        assert tinyallocs(h) == [15, 2]
        h.alloc(100_000)                       # a large span for P 0
        assert tinyallocs(h) == [0, 2]
        st = h.stats()
        assert (st.mallocs, st.frees) == (16 + 3 + 1, 15 + 2)
        for _ in range(5):
            h.alloc(1, noscan=True)            # a new block + 4 packed
        assert tinyallocs(h) == [4, 2]         # no span was allocated
        h.alloc(48)                            # class 48's first span
        assert tinyallocs(h) == [0, 2]
        h.alloc(2, noscan=True)                # packed
        h.alloc(48)                            # the cached span's slot
        assert tinyallocs(h) == [1, 2]
        h.alloc(100_000, p=1)
        assert tinyallocs(h) == [1, 0]
        st = h.stats()
        check_stat_identities(st)
        assert (st.mallocs, st.frees) == (20 + 5 + 1 + 1 + 1 + 1, 17 + 4 + 1)
        h.verify()


def test_failed_span_allocation_keeps_local_tinyallocs():
    """An allocation that cannot grow the heap changes nothing, the
    counter included (Go would throw instead)."""
    with goalloc.Heap(backing="virtual", sys_limit=64 << 20) as h:
        for _ in range(4):
            h.alloc(1, noscan=True)
        assert tinyallocs(h) == [3]
        before = (h.caches(), h.stats(), h.spans())
        with pytest.raises(goalloc.OutOfMemoryError):
            h.alloc(100 << 20)
        assert (h.caches(), h.stats(), h.spans()) == before


def test_tiny_model(backing):
    """A model of every P's (tiny, tinyoffset) and of each block's live
    offsets predicts every address, mark, slot state and count.  16-byte
    noscan objects come from the same span class as plain objects."""
    rng = random.Random(1913)
    nprocs = 2
    h = goalloc.Heap(backing=backing, procs=nprocs)
    try:
        cur = [(0, 0)] * nprocs               # per P: block, offset
        blocks: dict[int, set[int]] = {}      # live block -> live offsets
        live: dict[int, int] = {}             # tiny addr -> size
        plain: set[int] = set()               # live 16-byte objects
        packed = new_blocks = freed_blocks = 0
        new_plain = freed_plain = 0

        def drop(p):
            nonlocal freed_blocks
            blk = cur[p][0]
            cur[p] = (0, 0)
            if blk and not blocks[blk] and blk not in (b for b, _ in cur):
                del blocks[blk]
                freed_blocks += 1

        def alloc_one():
            nonlocal packed, new_blocks, new_plain
            p = rng.randrange(nprocs)
            size = rng.choice([1, 1, 2, 3, 4, 5, 6, 7, 8, 8, 12, 15, 16])
            a = h.alloc(size, noscan=True, p=p)
            live[a] = size
            if size == TINY:                  # a plain object, no block
                assert a % TINY == 0 and a not in blocks
                assert h.span_of(a).spanclass == TINY_SPAN_CLASS
                plain.add(a)
                new_plain += 1
                return
            blk, off = cur[p]
            o = tiny_align(off, size)
            if blk and o + size <= TINY:
                assert a == blk + o, (size, cur[p])
                cur[p] = (blk, o + size)
                packed += 1
            else:
                assert a % TINY == 0 and a not in blocks
                assert h.span_of(a).spanclass == TINY_SPAN_CLASS
                new_blocks += 1
                blocks[a] = set()
                if size < off or blk == 0:
                    drop(p)
                    cur[p] = (a, size)
            blocks[block_of(a)].add(a % TINY)

        def free_one():
            nonlocal freed_blocks, freed_plain
            a = rng.choice(list(live))
            h.free(a)
            del live[a]
            if a in plain:
                plain.remove(a)
                freed_plain += 1
                return
            blk = block_of(a)
            blocks[blk].discard(a % TINY)
            if not blocks[blk] and blk not in (b for b, _ in cur):
                del blocks[blk]
                freed_blocks += 1

        for step in range(4000):
            r = rng.random()
            if r < 0.55 or not live:
                alloc_one()
            elif r < 0.97:
                free_one()
            else:
                h.flush()
                for p in range(nprocs):
                    drop(p)
            assert [tiny_state(h, p) for p in range(nprocs)] == cur
            if step % 40 == 0:
                for blk, offs in blocks.items():
                    assert marks(h, blk) == sum(1 << o for o in offs)
                    assert slot_state(h, blk) == SLOT_LIVE
                for a in plain:
                    assert marks(h, a) == 0
                    assert slot_state(h, a) == SLOT_LIVE
                st = h.stats()
                check_stat_identities(st)
                nobj = len(blocks) + len(plain)
                assert st.heap_objects == nobj
                assert st.mallocs == new_blocks + new_plain + packed
                assert st.frees == freed_blocks + freed_plain + packed
                assert (st.by_size[2].mallocs - st.by_size[2].frees
                        == nobj)
                assert st.heap_alloc == TINY * nobj
                h.verify()
        # every freed tiny address is a double free
        for a in list(live)[:20]:
            h.free(a)
            with pytest.raises(goalloc.DoubleFreeError):
                h.free(a)
        h.verify()
    finally:
        h.close()


def test_freed_block_slot_states(heap):
    """A freed block's slot is SLOT_FREED until its span is swept."""
    h = heap
    a = h.alloc(9, noscan=True)
    b = h.alloc(9, noscan=True)               # new block, A stays
    assert tiny_state(h) == (a, 9)
    h.free(b)
    assert slot_state(h, b) == SLOT_FREED
    h.flush()
    assert slot_state(h, b) == SLOT_FREE
    assert slot_state(h, a) == SLOT_LIVE
    # reused first: the lowest free slot
    assert h.alloc(9, noscan=True) == b


# ---- the marks' memory ------------------------------------------------------

SLOTS = 8192 // TINY                          # 16-byte slots per span
SPAN_BLOCK = 3 * SLOTS // 8 + 8               # 3 bitmaps + one requested
                                              # size (all are 16), padded
TINY_MARKS = 6 * SLOTS                        # 6 bytes per slot


def test_sixteen_byte_noscan_spans_have_no_tiny_marks(heap):
    """goalloc's own metadata per 16-byte noscan slot: 3 bits (alloc,
    freed, used) and one requested size for the whole span (each of its
    objects asked for 16 bytes): 0.39 bytes, until the span serves a tiny
    block; then 6 bytes more per slot, for that span only.  A class with
    pointers keeps a 16-bit size per slot: 2.375 bytes.  The marks go
    with the span."""
    h = heap
    assert (h.info().span_meta_bytes, h.info().tiny_meta_bytes) == (0, 0)
    plain = [h.alloc(16, noscan=True) for _ in range(SLOTS + 1)]
    spans = {h.span_of(a).base for a in plain}
    assert len(spans) == 2
    i = h.info()
    assert i.span_meta_bytes == 2 * SPAN_BLOCK
    assert i.span_meta_bytes / (2 * SLOTS) == 0.390625
    assert i.tiny_meta_bytes == 0
    scan = h.alloc(16)                        # class 4: sizes 9..16 asked
    assert h.info().span_meta_bytes - i.span_meta_bytes == (
        3 * SLOTS // 8 + 2 * SLOTS)           # 2.375 bytes per slot
    h.free(scan)
    t = h.alloc(5, noscan=True)               # the cached span serves it
    assert h.span_of(t).base == h.span_of(plain[-1]).base
    i = h.info()
    assert i.tiny_meta_bytes == TINY_MARKS    # one table, one span
    assert (SPAN_BLOCK + TINY_MARKS) / SLOTS == 6.390625  # that span's
    h.verify()
    for a in plain + [t]:
        h.free(a)
    h.flush()
    i = h.info()
    assert (i.span_meta_bytes, i.tiny_meta_bytes) == (0, 0)
    h.verify()


def test_marks_are_not_in_memstats(heap):
    """MemStats stay Go's numbers: the tiny marks (goalloc's own) change
    no MemStats field, only HeapInfo.tiny_meta_bytes."""
    h = heap
    h.alloc(16, noscan=True)                  # the span, without marks
    st0 = h.stats()
    i0 = h.info()
    h.alloc(16, noscan=True)                  # a second 16-byte object
    h.alloc(3, noscan=True)                   # same span: marks made now
    st1 = h.stats()
    assert h.info().tiny_meta_bytes == i0.tiny_meta_bytes + TINY_MARKS
    for f in ("sys", "gc_sys", "other_sys", "mspan_sys", "mspan_inuse",
              "heap_sys", "heap_inuse"):
        assert getattr(st1, f) == getattr(st0, f), f


def test_slot_of_a_freed_block_reused_by_a_sixteen_byte_object(heap):
    """A block's marks outlive it (a second free of one of its objects is
    a double free), but not its slot's reuse: once a 16-byte object has
    the slot, its interior is no object and no double free."""
    h = heap
    keep = h.alloc(16, noscan=True)           # keeps the span in use
    a = h.alloc(4, noscan=True)
    b = h.alloc(4, noscan=True)
    assert b == a + 4
    h.free(a)
    h.free(b)
    h.flush()                                 # drop: freed, then swept
    with pytest.raises(goalloc.DoubleFreeError):
        h.free(b)
    p = h.alloc(16, noscan=True)
    assert p == a and marks(h, p) == 0
    before = state(h)
    with pytest.raises(goalloc.InvalidFreeError) as ei:
        h.free(b)
    assert type(ei.value) is goalloc.InvalidFreeError
    assert state(h) == before
    h.free(p)
    with pytest.raises(goalloc.DoubleFreeError):
        h.free(p)
    h.free(keep)
    h.verify()


def test_tiny_double_free_after_the_drop(heap):
    """A block dropped with live objects is freed by the free of its last
    one; every second free is a double free, before and after."""
    h = heap
    a = h.alloc(12, noscan=True)
    b = h.alloc(6, noscan=True)               # new block, replaces a's
    assert tiny_state(h) == (b, 6)
    c = h.alloc(3, noscan=True)
    assert c == b + 6
    h.free(c)
    with pytest.raises(goalloc.DoubleFreeError):
        h.free(c)
    assert slot_state(h, a) == SLOT_LIVE
    before = state(h)
    with pytest.raises(goalloc.InvalidFreeError):
        h.free(a + 4)                         # inside a, never a start
    assert state(h) == before
    h.free(a)                                 # dropped, nothing left
    assert slot_state(h, a) == SLOT_FREED
    before = state(h)
    with pytest.raises(goalloc.DoubleFreeError):
        h.free(a)
    assert state(h) == before
    h.verify()


def test_tiny_align_rule():
    # design §4.8, spelled out for a few cases
    assert [tiny_align(3, s) for s in (1, 2, 4, 8)] == [3, 4, 4, 8]
    assert [tiny_align(9, s) for s in (3, 6, 12, 5)] == [9, 10, 12, 9]
    assert tiny_align(0, 8) == 0 and tiny_align(16, 2) == 16
