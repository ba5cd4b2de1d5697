"""A Hypothesis state machine over tiny, small and large objects.

Rules: alloc (tiny noscan 1..15, small 1..32768 scan or noscan, large
32769..200000) on any of 3 Ps, bursts of one class on one P, free of a
live object, free of every live object of one span, refused frees,
flush, scavenge.  A dict of live objects is the model.  After every
step: verify() passes, live objects do not overlap, span_of maps each
one to an in-use span of its class, and the MemStats identities and
exact counts hold.  On "os" every object gets a byte pattern through
view() when allocated (after checking it came zeroed), checked intact
before it is freed.

Both backends run by default: 125 examples of at most 100 steps each,
about 11,000 steps per backend.
"""
from __future__ import annotations

import ctypes
import os

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (RuleBasedStateMachine, invariant,
                                 precondition, rule)

import goalloc
from helpers import MAX_SMALL, PAGE, MiB, check_stat_identities, npages_of
from test_py_small_util import (GO113_CLASSES, TINY, TINY_SPAN_CLASS,
                                full_snapshot)

NPROCS = 3

SETTINGS = settings(
    max_examples=125,                         # ~11,000 steps per backend
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
procs = st.integers(0, NPROCS - 1)


def kind_of(size: int, noscan: bool) -> str:
    if noscan and size < TINY:
        return "tiny"
    return "small" if size <= MAX_SMALL else "large"


class SmallObjectHeap(RuleBasedStateMachine):
    backing = "virtual"
    release = "go1.13.8"
    checks = 0                                # invariant rounds, all runs
    runs = 0

    def __init__(self):
        super().__init__()
        type(self).runs += 1
        self.h = goalloc.Heap(backing=self.backing, procs=NPROCS,
                              release=self.release)
        # addr -> (size, noscan, kind, fill)
        self.live: dict[int, tuple[int, bool, str, int]] = {}
        self.freed: list[int] = []            # recently freed addresses
        self.nalloc = 0
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
        if self.backing == "os":
            assert ctypes.string_at(a, size) == bytes(size), "not zeroed"
            v = self.h.view(a, size)
            v[:] = bytes([self.fill]) * size
            v.release()
        return a

    def _free(self, a):
        size, _, _, fill = self.live[a]
        if self.backing == "os":
            assert ctypes.string_at(a, size) == bytes([fill]) * size
        self.h.free(a)
        del self.live[a]
        self.freed = (self.freed + [a])[-32:]

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

    @rule(size=st.integers(MAX_SMALL + 1, 200_000), noscan=st.booleans(),
          p=procs)
    def alloc_large(self, size, noscan, p):
        a = self._alloc(size, noscan, p)
        assert a % PAGE == 0

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
        if a in self.live:
            return
        before = full_snapshot(self.h)
        try:
            self.h.free(a)
        except goalloc.InvalidFreeError:
            pass
        else:
            raise AssertionError(f"free of {a:#x} accepted")
        assert full_snapshot(self.h) == before

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
        released = self.h.scavenge(n)
        st1 = self.h.stats()
        assert st1.heap_released == st0.heap_released + released
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
    def count_step(self):
        # once after __init__ and once after each step
        type(self).checks += 1

    @invariant()
    def heap_verifies(self):
        self.h.verify()

    @invariant()
    def objects_and_spans(self):
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
                assert (s.base, s.sizeclass, s.noscan) == (a, 0, noscan)
                assert (s.npages, s.limit) == (npages_of(size), a + size)
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


class OsSmallObjectHeap(SmallObjectHeap):
    backing = "os"
    checks = 0
    runs = 0


class Go1130SmallObjectHeap(SmallObjectHeap):
    release = "go1.13.0"
    checks = 0
    runs = 0


TestSmallObjectsVirtual = SmallObjectHeap.TestCase
TestSmallObjectsVirtual.settings = SETTINGS
TestSmallObjectsOs = OsSmallObjectHeap.TestCase
TestSmallObjectsOs.settings = SETTINGS
TestSmallObjectsGo1130Virtual = Go1130SmallObjectHeap.TestCase
TestSmallObjectsGo1130Virtual.settings = SETTINGS
