"""Arena-hint collisions through Python (Go's TestArenaCollision).

A hint whose reservation lands elsewhere is discarded, never retried;
when all hints are gone the heap reserves an aligned region anywhere and
adds a down-hint at v and an up-hint at v+size, up first (design §4.3,
design §4.2).  Race mode throws instead.
"""
from __future__ import annotations

import pytest

import goalloc
from helpers import (
    ARENA,
    ASAN,
    GO_HEAP_START,
    PAGE,
    MiB,
    check_span_walk,
    default_hints,
    state,
)


def objects_outside(h, blocked):
    """No in-use span overlaps any blocked range."""
    for s in h.spans():
        for a, n in blocked:
            assert s.end <= a or a + n <= s.base, (s, hex(a))


def test_blocked_first_hint_moves_first_arena():
    with goalloc.Heap(backing="virtual") as h:
        initial = h.hints()
        h.block_range(GO_HEAP_START, 4096)
        assert h.hints() == initial   # blocking is not growing
        p = h.alloc(100_000)
        nxt = default_hints()[1]
        assert p == nxt == 0x01C000000000
        assert [a.base for a in h.arenas()] == [nxt]
        assert h.hints() == [goalloc.ArenaHint(nxt + ARENA, False),
                             *initial[2:]]
        objects_outside(h, [(GO_HEAP_START, 4096)])
        h.verify()


def test_blocked_next_hint_discarded_on_growth():
    with goalloc.Heap(backing="virtual") as h:
        initial = h.hints()
        p = h.alloc(100_000)
        assert p == GO_HEAP_START
        head = h.hints()[0].addr
        assert head == GO_HEAP_START + ARENA
        h.block_range(head, 4096)
        # 64 MiB does not fit the first arena's free 8179 pages: grow.
        q = h.alloc(64 * MiB)
        nxt = default_hints()[1]
        assert q == nxt
        assert [a.base for a in h.arenas()] == [GO_HEAP_START, nxt]
        # the advanced head hint was dropped, never retried
        assert h.hints() == [goalloc.ArenaHint(nxt + ARENA, False),
                             *initial[2:]]
        objects_outside(h, [(head, 4096)])
        check_span_walk(h)
        h.verify()


def test_blocked_hint_in_the_middle_of_a_region():
    # The blocked page is not at the hint itself but inside the 64 MiB
    # the hint would reserve: the reservation still fails there.
    with goalloc.Heap(backing="virtual") as h:
        h.block_range(GO_HEAP_START + 32 * MiB, 4096)
        assert h.alloc(100_000) == default_hints()[1]


def block_all_initial(h):
    addrs = sorted({x.addr for x in h.hints()})
    for a in addrs:
        h.block_range(a, 4096)
    return [(a, 4096) for a in addrs]


def test_all_hints_blocked_reserves_anywhere():
    with goalloc.Heap(backing="virtual") as h:
        blocked = block_all_initial(h)
        assert len(blocked) == 128
        p = h.alloc(100_000)
        [arena] = h.arenas()
        v = arena.base
        assert p == v
        assert v % ARENA == 0
        assert v not in {a for a, _ in blocked}
        size = h.stats().heap_sys   # 64 MiB, or 128 MiB if the region
        assert size in (ARENA, 2 * ARENA)   # happened to be aligned
        # the up-hint at v+size first, then the down-hint at v
        assert h.hints() == [goalloc.ArenaHint(v + size, False),
                             goalloc.ArenaHint(v, True)]
        objects_outside(h, blocked)
        h.verify()

        # A further growth uses the up-hint: contiguous with the first.
        used = sum(s.nbytes for s in h.spans() if s.state == "inuse")
        q = h.alloc(size - used + PAGE)   # one page more than is free
        assert [a.base for a in h.arenas()][-1] == v + size
        assert q == p + used          # spans the boundary, first fit
        assert h.hints() == [goalloc.ArenaHint(v + size + ARENA, False),
                             goalloc.ArenaHint(v, True)]
        check_span_walk(h)
        h.verify()

        # Block the up-hint: it is dropped and the down-hint grows the
        # heap downward, [v - 64 MiB, v), then moves down itself.
        up = h.hints()[0].addr
        h.block_range(up, 4096)
        r = h.alloc(64 * MiB)
        assert r == v - ARENA
        assert h.arenas()[-1].base == v - ARENA
        assert h.hints() == [goalloc.ArenaHint(v - ARENA, True)]
        objects_outside(h, blocked + [(up, 4096)])
        check_span_walk(h)
        h.verify()


def test_all_hints_blocked_and_os_refuses_is_out_of_memory():
    with goalloc.Heap(backing="virtual") as h:
        block_all_initial(h)
        h.fail_reserves(129)      # every hint, then the "anywhere" try
        before = state(h)
        with pytest.raises(goalloc.OutOfMemoryError):
            h.alloc(100_000)
        assert state(h) == before
        # the next try succeeds anywhere
        h.alloc(100_000)
        assert len(h.hints()) == 2
        h.verify()


def test_race_mode_duplicate_hints():
    # Block all distinct race hints but the last one (0x00df00000000):
    # the heap lands there and the 32 duplicates stay behind it.
    with goalloc.Heap(backing="virtual", race=True) as h:
        initial = h.hints()
        distinct = sorted({x.addr for x in initial})
        assert len(distinct) == 32
        for a in distinct[:-1]:
            h.block_range(a, 4096)
        p = h.alloc(100_000)
        assert p == 0x00DF00000000
        assert h.hints() == [goalloc.ArenaHint(p + ARENA, False),
                             *initial[32:]]
        assert len(h.hints()) == 33
        h.verify()


def test_race_mode_too_many_collisions():
    with goalloc.Heap(backing="virtual", race=True) as h:
        blocked = block_all_initial(h)
        assert len(blocked) == 32      # 64 hints, 32 distinct addresses
        msg = "too many address space collisions for -race mode"
        with pytest.raises(goalloc.HeapCorruptionError) as ei:
            h.alloc(100_000)
        assert str(ei.value) == msg
        # the heap is poisoned: every later call raises the same
        for call in (h.hints, h.stats, h.spans, h.verify,
                     lambda: h.alloc(100_000), lambda: h.free(0x1234)):
            with pytest.raises(goalloc.HeapCorruptionError, match=msg):
                call()


def test_race_mode_arm64_uses_arm64_hints_and_falls_back():
    # race on arm64 lays out the arm64 hints (that case is checked
    # first), but sysAlloc's throw depends on raceenabled, not on the
    # hint table: with every hint blocked it still throws.
    with goalloc.Heap(backing="virtual", goos="linux", goarch="arm64",
                      race=True) as h:
        block_all_initial(h)
        with pytest.raises(goalloc.HeapCorruptionError,
                           match="too many address space collisions"):
            h.alloc(100_000)


# ---- os backing ----------------------------------------------------------


def probe_first_arena() -> int:
    """Where a fresh os heap puts its first arena in this process."""
    with goalloc.Heap(backing="os") as h:
        h.alloc(100_000)
        return h.arenas()[0].base


def test_os_blocked_first_hint_moves_heap():
    target = probe_first_arena()
    if not ASAN:
        assert target == GO_HEAP_START
    with goalloc.Heap(backing="os") as h:
        initial = h.hints()
        addrs = [x.addr for x in initial]
        k = addrs.index(target)
        # 0x00c000000000 itself: blockable exactly when it is free.
        before = state(h)
        try:
            h.block_range(GO_HEAP_START, 4096)
            blocked_c0 = True
        except ValueError:
            # Occupied by someone else (ASan's shadow gap).  Then it was
            # not free for the probe heap either.
            blocked_c0 = False
            assert target != GO_HEAP_START
            assert state(h) == before
        if not ASAN:
            assert blocked_c0
        if target != GO_HEAP_START:
            # Block where this process' heaps would go instead.
            h.block_range(target, 4096)
        p = h.alloc(100_000)
        base = h.arenas()[0].base
        assert p == base
        assert base in addrs[k + 1:]
        j = addrs.index(base)
        assert h.hints() == [goalloc.ArenaHint(base + ARENA, False),
                             *initial[j + 1:]]
        if not ASAN:
            assert base == default_hints()[1] == 0x01C000000000
        objects_outside(h, [(target, 4096)])
        h.verify()


def test_os_block_range_refuses_mapped_heap_memory():
    with goalloc.Heap(backing="os") as h:
        p = h.alloc(100_000)
        before = state(h)
        with pytest.raises(ValueError):
            h.block_range(p + 100 * PAGE, 4096)   # free, but reserved
        assert state(h) == before


def test_os_blocked_range_released_on_close():
    target = probe_first_arena()
    with goalloc.Heap(backing="os") as h:
        h.block_range(target, 4096)
    # The block went with the heap: a new heap gets the target again.
    assert probe_first_arena() == target
