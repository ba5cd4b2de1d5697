"""The bad-input harness (docs/misuse.md): heaps in a realistic state,
and the checks every rejected call must pass.

A rejected call raises the exact documented exception (and its
documented bases) with a useful message, on a heap in a realistic state
(World: small, tiny and large objects, live and freed, cached and
uncached, on three Ps; World1P: the same on one P), and leaves the heap
exactly as it was: digest() and info() (helpers.state).  Afterwards the
heap must still work (still_works).

The tests are grouped by concept: test_misuse_arguments.py,
test_misuse_free.py, test_misuse_out_of_memory.py,
test_misuse_heap_state.py (closed, busy, poisoned), and the bad input of
views, bulk calls, traces and snapshots in test_views.py, test_bulk.py,
test_trace.py and test_snapshot.py; test_misuse_catalogue.py maps each
row of docs/misuse.md to its test.  The fixtures world and world1p are
in conftest.py.
"""
from __future__ import annotations

import re

import pytest

import goalloc
from helpers import PAGE, check_stat_identities, class_nelems, state

BACKINGS = ("virtual", "os")
PROCS = 3


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


class World1P:
    """A heap with live, freed, cached and uncached objects of every kind,
    all on P 0 (World spreads them over three Ps): the tests that count
    the slots of its spans use it."""

    def __init__(self, h: goalloc.Heap):
        self.h = h
        # class 4 (48 B, 170 per span, 32 B tail): one full uncached span
        # with a freed slot, and a cached span with live and freed slots
        self.full = [h.alloc(48) for _ in range(class_nelems(4))]
        self.cached = [h.alloc(48) for _ in range(10)]
        h.free(self.full[7])
        h.free(self.cached[3])
        # class 10 noscan (144 B, 56 per span, 128 B tail), flushed later
        self.flushed = [h.alloc(144, noscan=True) for _ in range(5)]
        # tiny: block A holds offsets 0, 2, 4 (4 freed); B is current
        self.ta = [h.alloc(2, noscan=True) for _ in range(3)]
        self.big_tiny = h.alloc(15, noscan=True)  # block B, not current
        h.free(self.ta[2])
        self.sixteen = h.alloc(16, noscan=True)
        # large objects: one live, one freed
        self.large = h.alloc(40_000)
        self.large_freed = h.alloc(100_000, noscan=True)
        h.free(self.large_freed)
        self.zero = h.alloc(0)

    def flush_some(self):
        """Flush, then free one object of the now uncached class-10 span."""
        self.h.flush()
        self.h.free(self.flushed[1])


def assert_exc(e: BaseException, exc: type, *bases: type,
               match: str | None = None) -> None:
    assert type(e) is exc, repr(e)
    for b in bases:
        assert isinstance(e, b), (repr(e), b)
    if match is not None:
        assert re.search(match, str(e)), (str(e), match)


def rejected(h: goalloc.Heap, exc: type, fn, *args, bases=(),
             match: str | None = None, exact: bool = True,
             **kwargs) -> BaseException:
    """fn(*args, **kwargs) raises exactly exc (an instance of exc if not
    exact; an instance of every base too), its message matches, and h is
    exactly as it was (helpers.state: digest() and info())."""
    before = state(h)
    with pytest.raises(exc) as ei:
        fn(*args, **kwargs)
    if exact:
        assert_exc(ei.value, exc, *bases, match=match)
    else:
        assert_exc(ei.value, type(ei.value), exc, *bases, match=match)
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
