"""A Hypothesis state machine over tiny, small and large objects, on both
backings and both releases (go1.13.8, the default, and go1.13.0).

Rules: alloc (tiny noscan 1..15, small 1..32768 scan or noscan, large
32769..3 MiB with page-boundary sizes) on any of 3 Ps, bursts of one
class on one P, free of a live object, free of every live object of one
span, refused frees (recently freed addresses and interior pointers of
live objects), flush, scavenge (n bytes or all).  A dict of live objects
is the model.  After every step: verify() passes, the spans tile the
arenas and agree with MemStats (helpers.check_span_walk), live objects
do not overlap, span_of maps each one to an in-use span of its class
(a large object's span exactly), and the MemStats identities and exact
counts hold (design §11).  On "os" every object gets a byte pattern
through view() when allocated (after checking it came zeroed, a large
object's whole span), checked intact before it is freed and after every
scavenge.

Each of the four runs: 100 examples of at most 100 steps.
"""
from __future__ import annotations

import ctypes
import os

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
)

import goalloc
from helpers import (
    GO113_CLASSES,
    MAX_SMALL,
    PAGE,
    TINY,
    TINY_SPAN_CLASS,
    MiB,
    check_span_walk,
    check_stat_identities,
    npages_of,
    state,
)

NPROCS = 3

SETTINGS = settings(
    max_examples=100,
    stateful_step_count=100,
    deadline=None,                            # nothing is timed
    derandomize=bool(os.environ.get("CI")),
    suppress_health_check=[HealthCheck.too_slow],
)

# Class sizes whose spans hold few objects (so spans fill, refill and go
# home within a run), every class boundary, and anything at all.
FEW_PER_SPAN = [c for c in GO113_CLASSES
                if GO113_CLASSES[c][1] * PAGE // GO113_CLASSES[c][0] <= 2]
small_sizes = st.one_of(
    st.integers(1, MAX_SMALL),
    st.integers(1, 1024),
    st.sampled_from([GO113_CLASSES[c][0] for c in FEW_PER_SPAN]),
    st.builds(lambda c, d: max(1, GO113_CLASSES[c][0] + d),
              st.sampled_from(sorted(GO113_CLASSES)), st.sampled_from([0, 1])
              ).map(lambda s: min(s, MAX_SMALL)),
)
large_sizes = st.one_of(
    st.integers(MAX_SMALL + 1, 200_000),
    st.integers(MAX_SMALL + 1, 3 << 20),
    # page-boundary sizes: exactly n pages, or one byte more or less
    st.builds(lambda n, d: n * PAGE + d, st.integers(5, 384),
              st.sampled_from([-1, 0, 1])).filter(lambda s: s > MAX_SMALL),
)
procs = st.integers(0, NPROCS - 1)


def kind_of(size: int, noscan: bool) -> str:
    if noscan and size < TINY:
        return "tiny"
    return "small" if size <= MAX_SMALL else "large"


class HeapMachine(RuleBasedStateMachine):
    backing = "virtual"
    release = "go1.13.8"

    def __init__(self):
        super().__init__()
        self.h = goalloc.Heap(backing=self.backing, procs=NPROCS,
                              release=self.release)
        # addr -> (size, noscan, kind, fill)
        self.live: dict[int, tuple[int, bool, str, int]] = {}
        self.freed: list[int] = []            # recently freed addresses
        self.nalloc = 0
        self.ntiny = 0                        # tiny requests
        self.nlarge = 0                       # large objects allocated
        self.large_bytes = 0                  # ... and their pages' bytes
        self.class_mallocs = [0] * 67         # small objects per class
        self.class_frees = [0] * 67
        self.fill = 0

    def teardown(self):
        try:
            if self.backing == "os":
                for a, (size, _, _, fill) in self.live.items():
                    assert ctypes.string_at(a, size) == bytes([fill]) * size
        finally:
            self.h.close()

    # ---- helpers ----

    def _alloc(self, size, noscan, p):
        a = self.h.alloc(size, noscan=noscan, p=p)
        kind = kind_of(size, noscan)
        assert a not in self.live
        self.fill = self.fill % 255 + 1
        self.live[a] = (size, noscan, kind, self.fill)
        self.nalloc += 1
        if kind == "tiny":
            self.ntiny += 1
        elif kind == "small":
            self.class_mallocs[goalloc.size_to_class(size)] += 1
        else:
            assert a % PAGE == 0
            self.nlarge += 1
            self.large_bytes += npages_of(size) * PAGE
        if self.backing == "os":
            # a fresh or reused span is handed out zeroed: all of a large
            # object's pages, a small object's slot
            n = npages_of(size) * PAGE if kind == "large" else size
            assert ctypes.string_at(a, n) == bytes(n), "not zeroed"
            v = self.h.view(a, size)
            v[:] = bytes([self.fill]) * size
            v.release()
        return a

    def _free(self, a):
        size, _, kind, fill = self.live[a]
        if self.backing == "os":
            assert ctypes.string_at(a, size) == bytes([fill]) * size
        self.h.free(a)
        del self.live[a]
        self.freed = (self.freed + [a])[-32:]
        if kind == "small":
            self.class_frees[goalloc.size_to_class(size)] += 1

    def _refused(self, addr):
        """free(addr) raises InvalidFreeError (a DoubleFreeError is one)
        and changes nothing; returns the exception."""
        before = state(self.h)
        try:
            self.h.free(addr)
        except goalloc.InvalidFreeError as e:
            error = e
        else:
            raise AssertionError(f"free of {addr:#x} accepted")
        assert state(self.h) == before
        return error

    # ---- rules ----

    @rule(size=st.integers(1, TINY - 1), p=procs)
    def alloc_tiny(self, size, p):
        self._alloc(size, True, p)

    @rule(size=small_sizes, noscan=st.booleans(), p=procs)
    def alloc_small(self, size, noscan, p):
        self._alloc(size, noscan, p)

    @rule(size=small_sizes, noscan=st.booleans(), p=procs,
          n=st.integers(2, 12))
    def alloc_burst(self, size, noscan, p, n):
        """Several objects of one class on one P: spans fill and refill."""
        for _ in range(n):
            self._alloc(size, noscan, p)

    @rule(size=large_sizes, noscan=st.booleans(), p=procs)
    def alloc_large(self, size, noscan, p):
        self._alloc(size, noscan, p)

    @precondition(lambda self: self.live)
    @rule(data=st.data())
    def free(self, data):
        a = data.draw(st.sampled_from(sorted(self.live)), label="addr")
        self._free(a)

    @precondition(lambda self: self.live)
    @rule(data=st.data())
    def free_span(self, data):
        """Free every live object of one span: it goes home unless an
        mcache holds it (or a P packs into one of its tiny blocks)."""
        a = data.draw(st.sampled_from(sorted(self.live)), label="addr")
        s = self.h.span_of(a)
        mates = [x for x in self.live if s.base <= x < s.end]
        cached = {b for c in self.h.caches() for b in c.alloc.values()}
        current = {c.tiny for c in self.h.caches() if c.tiny}
        for x in mates:
            self._free(x)
        pinned = s.base in cached or any(s.base <= t < s.end
                                         for t in current)
        if not pinned:
            assert self.h.span_of(s.base).state == "free"

    @precondition(lambda self: self.freed)
    @rule(data=st.data(), off=st.sampled_from([0, 0, 1, 8, 16, PAGE]))
    def refused_free(self, data, off):
        """Freeing an address that is not a live object's start is refused
        and changes nothing."""
        a = data.draw(st.sampled_from(self.freed), label="addr") + off
        if a not in self.live:
            self._refused(a)

    @precondition(lambda self: any(v[2] == "large"
                                   for v in self.live.values()))
    @rule(data=st.data(), off=st.integers(1, 3 << 20))
    def free_interior(self, data, off):
        """An interior pointer of a live large object: InvalidFreeError,
        not a double free; nothing changes."""
        a = data.draw(st.sampled_from(sorted(
            x for x, v in self.live.items() if v[2] == "large")),
            label="addr")
        size = self.live[a][0]
        e = self._refused(a + off % size if off % size else a + 1)
        assert not isinstance(e, goalloc.DoubleFreeError), \
            "interior free reported as double free"

    @rule()
    def flush(self):
        # releaseAll drops the tiny blocks; those with no live object go
        # (k of them); nothing else in the statistics moves
        live_blocks = {a & ~(TINY - 1) for a, v in self.live.items()
                       if v[2] == "tiny"}
        k = len({c.tiny for c in self.h.caches() if c.tiny} - live_blocks)
        st0 = self.h.stats()
        self.h.flush()
        st1 = self.h.stats()
        want = list(st0.by_size)
        want[2] = want[2]._replace(frees=want[2].frees + k)
        assert list(st1.by_size) == want
        assert (st1.mallocs, st1.frees, st1.heap_alloc, st1.total_alloc,
                st1.heap_objects) == (st0.mallocs, st0.frees + k,
                                      st0.heap_alloc - TINY * k,
                                      st0.total_alloc, st0.heap_objects - k)
        for c in self.h.caches():
            assert (c.tiny, c.tinyoffset, c.alloc) == (0, 0, {})

    @rule(n=st.one_of(st.none(), st.integers(0, 8 * MiB)))
    def scavenge(self, n):
        st0 = self.h.stats()
        unreleased = st0.heap_idle - st0.heap_released
        released = self.h.scavenge(n)
        st1 = self.h.stats()
        assert st1.heap_released == st0.heap_released + released
        assert released <= unreleased
        if n is None or n >= unreleased:
            assert released == unreleased
        else:
            assert released >= n
        # nothing but the released state changes
        assert (st1.heap_sys, st1.heap_idle, st1.heap_inuse,
                st1.heap_alloc) == (st0.heap_sys, st0.heap_idle,
                                    st0.heap_inuse, st0.heap_alloc)
        if self.backing == "os":              # madvise spared live objects
            for a, (size, _, _, fill) in self.live.items():
                assert ctypes.string_at(a, size) == bytes([fill]) * size

    @rule()
    def stats_twice(self):
        assert self.h.stats() == self.h.stats()

    # ---- invariants ----

    @invariant()
    def heap_verifies(self):
        self.h.verify()

    @invariant()
    def objects_and_spans(self):
        spans = check_span_walk(self.h)
        large = {a for a, v in self.live.items() if v[2] == "large"}
        assert {s.base for s in spans
                if s.state == "inuse" and s.sizeclass == 0} == large
        prev_end = 0
        for a in sorted(self.live):
            size, noscan, kind, fill = self.live[a]
            assert a >= prev_end, f"{a:#x} overlaps the previous object"
            prev_end = a + size
            s = self.h.span_of(a)
            assert s is not None and s.state == "inuse"
            assert s.base <= a and a + size <= s.limit
            if kind == "tiny":
                assert s.spanclass == TINY_SPAN_CLASS
            elif kind == "small":
                c = goalloc.size_to_class(size)
                assert (s.sizeclass, s.noscan) == (c, noscan)
                assert s.spanclass == c << 1 | noscan
                assert (a - s.base) % s.elemsize == 0
                assert s.elemsize == GO113_CLASSES[c][0] >= size
            else:
                npages = npages_of(size)
                assert (s.base, s.npages, s.limit) == (a, npages, a + size)
                assert (s.sizeclass, s.spanclass, s.noscan) == (
                    0, int(noscan), noscan)
                assert (s.elemsize, s.nelems, s.alloc_count,
                        s.freeindex) == (npages * PAGE, 1, 1, 1)
                assert not s.scavenged
                assert self.h.span_of(a + size - 1) == s
            if self.backing == "os":
                assert ctypes.string_at(a, 1) == bytes([fill])
                assert ctypes.string_at(a + size - 1, 1) == bytes([fill])

    @invariant()
    def stats_agree(self):
        h = self.h
        st = h.stats()
        check_stat_identities(st)
        assert st.heap_sys % (64 * MiB) == 0
        small = [(s, n) for s, n, k, _ in self.live.values() if k == "small"]
        large = [s for s, _, k, _ in self.live.values() if k == "large"]
        blocks = {a & ~(TINY - 1) for a, v in self.live.items()
                  if v[2] == "tiny"}
        blocks |= {c.tiny for c in h.caches() if c.tiny}
        assert st.heap_objects == len(small) + len(large) + len(blocks)
        assert st.mallocs == self.nalloc
        assert st.frees == self.nalloc - st.heap_objects
        assert st.heap_alloc == (
            sum(GO113_CLASSES[goalloc.size_to_class(s)][0] for s, _ in small)
            + sum(npages_of(s) * PAGE for s in large) + TINY * len(blocks))
        per_class = [0] * 67
        for s, _ in small:
            per_class[goalloc.size_to_class(s)] += 1
        per_class[2] += len(blocks)
        for c in range(67):
            b = st.by_size[c]
            assert b.mallocs - b.frees == per_class[c], c
            # large objects never show in BySize (Go's updatememstats);
            # class 2 also counts the tiny blocks
            if c != 2 or self.ntiny == 0:
                assert (b.mallocs, b.frees) == (self.class_mallocs[c],
                                                self.class_frees[c]), c
        # TotalAlloc: every small object's class size, every tiny block,
        # every large object's pages
        assert st.total_alloc == sum(b.mallocs * b.size
                                     for b in st.by_size) + self.large_bytes
        if self.ntiny == 0:
            assert st.mallocs - sum(b.mallocs for b in st.by_size) == \
                self.nlarge


class OsHeapMachine(HeapMachine):
    backing = "os"


class Go1130HeapMachine(HeapMachine):
    release = "go1.13.0"


class Go1130OsHeapMachine(HeapMachine):
    backing = "os"
    release = "go1.13.0"


TestHeapVirtual = HeapMachine.TestCase
TestHeapVirtual.settings = SETTINGS
TestHeapOs = OsHeapMachine.TestCase
TestHeapOs.settings = SETTINGS
TestHeapGo1130Virtual = Go1130HeapMachine.TestCase
TestHeapGo1130Virtual.settings = SETTINGS
TestHeapGo1130Os = Go1130OsHeapMachine.TestCase
TestHeapGo1130Os.settings = SETTINGS
