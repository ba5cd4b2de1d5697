"""Out of memory (docs/misuse.md): a size the OS, sys_limit,
fail_reserves or the OS's commit accounting cannot back raises
OutOfMemoryError (a MemoryError) and changes nothing, whatever needed the
memory: a large object, a fresh span for a small or tiny object, a new
arena; discarded hints are put back.
"""
from __future__ import annotations

import sys

import pytest

import goalloc
from goalloc import (
    GoallocError,
    OutOfMemoryError,
)
from helpers import (
    ARENA,
    ASAN,
    GO_HEAP_START,
    PAGE,
    MiB,
    class_nelems,
)
from misuse import World, rejected, still_works


def fill_heap(h: goalloc.Heap) -> list[int]:
    """Take every free page of a heap whose sys_limit stops growth."""
    out = []
    for size in (1 << 20, 40_000, 32_769, 8192):   # 8192: 1-page spans
        while True:
            try:
                out.append(h.alloc(size))
            except goalloc.OutOfMemoryError:
                break
    return out


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
        fill_heap(h)
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


def test_out_of_memory_changes_nothing(backing):
    """Design §10.2: OutOfMemoryError is a rejected call like any other.
    Cases: a class never used (emptymspan), a fresh span used up, a
    cached span whose last free slot (found by the sweep) was handed out,
    the tiny block, a 16-byte noscan block, a large object."""
    with goalloc.Heap(backing=backing, sys_limit=64 << 20) as h:
        # class 4: a full span with one slot freed, swept, handed out
        # again, so the cached span has freeindex 4 and no free slot
        xs = [h.alloc(48) for _ in range(class_nelems(4))]
        h.free(xs[3])
        h.flush()
        assert h.alloc(48) == xs[3]
        s = h.span_of(xs[0])
        assert (s.alloc_count, s.freeindex) == (class_nelems(4), 4)
        # class 3: a fresh span used up in the mcache
        for _ in range(class_nelems(3)):
            h.alloc(32)
        # span class 5 used up, with a current tiny block at offset 8
        for _ in range(511):
            h.alloc(16, noscan=True)
        h.alloc(8, noscan=True)
        fill_heap(h)
        assert h.stats().heap_idle == 0
        for size, noscan in ((32, False), (100, False), (9, True),
                             (16, True), (50_000, False), (48, False)):
            rejected(h, goalloc.OutOfMemoryError, h.alloc, size,
                             noscan=noscan)
        h.verify()


def test_alloc_exactly_max_alloc_is_out_of_memory(heap):
    # 2^48 is allowed by the maxAlloc check, but no address space holds
    # it: the OS refuses and nothing changes.
    rejected(heap, goalloc.OutOfMemoryError, heap.alloc, 2**48)


def test_sys_limit_refuses_first_growth():
    with goalloc.Heap(sys_limit=64 << 20, backing="virtual") as h:
        e = rejected(h, goalloc.OutOfMemoryError, h.alloc, 100 << 20)
        assert isinstance(e, MemoryError)
        assert h.arenas() == []
        # one arena fits the limit ...
        p = h.alloc(100_000)
        assert p == GO_HEAP_START
        # ... a second one does not
        rejected(h, goalloc.OutOfMemoryError, h.alloc, 64 << 20)
        # but what fits in the arena still works
        h.alloc(60 << 20)
        h.verify()


def test_fail_reserves_out_of_memory():
    with goalloc.Heap(backing="virtual") as h:
        hints = h.hints()
        h.fail_reserves(1000)
        rejected(h, goalloc.OutOfMemoryError, h.alloc, 100_000)
        assert h.hints() == hints  # the failed hints were not dropped
        h.fail_reserves(0)
        assert h.alloc(100_000) == GO_HEAP_START
        h.verify()


def test_fail_reserves_on_grown_heap():
    with goalloc.Heap(backing="virtual") as h:
        h.alloc(100_000)
        h.fail_reserves(1000)
        rejected(h, goalloc.OutOfMemoryError, h.alloc, 64 << 20)
        # allocations that need no growth do not reserve anything
        h.alloc(1 << 20)
        h.verify()
