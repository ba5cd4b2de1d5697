"""A Hypothesis state machine over large objects, on both backends and
both releases (go1.13.8, the default, and go1.13.0).

Rules: alloc (32769 .. 3 MiB, scan or noscan), free, scavenge (n or
all), and rejected frees.  A plain dict of live objects is the model;
after every step the heap must pass verify() and agree with the model
and with Go's MemStats identities (design §11).
"""
from __future__ import annotations

import ctypes
import os

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (RuleBasedStateMachine, invariant,
                                 precondition, rule)

import goalloc
from helpers import (MAX_SMALL, PAGE, MiB, check_span_walk,
                     check_stat_identities, npages_of, snapshot)

SETTINGS = settings(
    max_examples=50,
    stateful_step_count=30,
    deadline=None,            # nothing is timed
    derandomize=bool(os.environ.get("CI")),
    suppress_health_check=[HealthCheck.too_slow],
)

sizes = st.one_of(
    st.integers(MAX_SMALL + 1, 3 << 20),
    # page-boundary sizes: exactly n pages, or one byte more
    st.builds(lambda n, d: n * PAGE + d, st.integers(5, 384),
              st.sampled_from([-1, 0, 1])).filter(lambda s: s > MAX_SMALL),
)


class LargeObjectHeap(RuleBasedStateMachine):
    backing = "virtual"
    release = "go1.13.8"

    def __init__(self):
        super().__init__()
        self.h = goalloc.Heap(backing=self.backing, release=self.release)
        self.live: dict[int, tuple[int, bool, int]] = {}  # addr -> size,
        self.nmalloc = 0                                   # noscan, fill
        self.nfree = 0
        self.total_alloc = 0
        self.fill = 0

    def teardown(self):
        self.h.close()

    # ---- rules ----

    @rule(size=sizes, noscan=st.booleans())
    def alloc(self, size, noscan):
        a = self.h.alloc(size, noscan=noscan)
        assert a % PAGE == 0
        assert a not in self.live
        self.fill = self.fill % 255 + 1
        self.live[a] = (size, noscan, self.fill)
        self.nmalloc += 1
        self.total_alloc += npages_of(size) * PAGE
        if self.backing == "os":
            # A fresh or reused span is handed out zeroed.
            n = npages_of(size) * PAGE
            assert ctypes.string_at(a, n) == bytes(n)
            ctypes.memset(a, self.fill, size)

    @precondition(lambda self: self.live)
    @rule(data=st.data())
    def free(self, data):
        a = data.draw(st.sampled_from(sorted(self.live)), label="addr")
        size, _, fill = self.live[a]
        if self.backing == "os":
            assert ctypes.string_at(a, size) == bytes([fill]) * size
        self.h.free(a)
        del self.live[a]
        self.nfree += 1

    @precondition(lambda self: self.live)
    @rule(data=st.data(), off=st.integers(1, 3 << 20))
    def free_interior(self, data, off):
        a = data.draw(st.sampled_from(sorted(self.live)), label="addr")
        size = self.live[a][0]
        addr = a + off % size if off % size else a + 1
        before = snapshot(self.h)
        try:
            self.h.free(addr)
        except goalloc.DoubleFreeError:
            raise AssertionError("interior free reported as double free")
        except goalloc.InvalidFreeError:
            pass
        else:
            raise AssertionError("interior free accepted")
        assert snapshot(self.h) == before

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

    # ---- invariants ----

    @invariant()
    def heap_verifies(self):
        self.h.verify()

    @invariant()
    def live_objects_match_spans(self):
        spans = check_span_walk(self.h)
        inuse = {s.base: s for s in spans if s.state == "inuse"}
        assert set(inuse) == set(self.live)
        prev_end = 0
        for a in sorted(self.live):
            size, noscan, fill = self.live[a]
            assert a >= prev_end           # no overlap
            prev_end = a + size
            s = inuse[a]
            npages = npages_of(size)
            assert (s.base, s.npages, s.limit) == (a, npages, a + size)
            assert (s.sizeclass, s.spanclass, s.noscan) == (
                0, int(noscan), noscan)
            assert (s.elemsize, s.nelems, s.alloc_count, s.freeindex) == (
                npages * PAGE, 1, 1, 1)
            assert not s.scavenged
            assert self.h.span_of(a) == s
            assert self.h.span_of(a + size - 1) == s
            if self.backing == "os":
                assert ctypes.string_at(a, 1) == bytes([fill])
                assert ctypes.string_at(a + size - 1, 1) == bytes([fill])

    @invariant()
    def stats_agree(self):
        st = self.h.stats()
        check_stat_identities(st)
        assert st.heap_alloc == sum(npages_of(sz) * PAGE
                                    for sz, _, _ in self.live.values())
        assert st.heap_objects == len(self.live)
        assert st.mallocs - st.frees == len(self.live)
        assert (st.mallocs, st.frees) == (self.nmalloc, self.nfree)
        assert st.total_alloc == self.total_alloc
        assert st.heap_released <= st.heap_idle
        assert st.heap_sys == st.heap_idle + st.heap_inuse
        assert st.heap_sys % (64 * MiB) == 0
        # large objects never show in BySize (Go's updatememstats)
        assert all((b.mallocs, b.frees) == (0, 0) for b in st.by_size)


class OsLargeObjectHeap(LargeObjectHeap):
    backing = "os"


class Go1130LargeObjectHeap(LargeObjectHeap):
    release = "go1.13.0"


class Go1130OsLargeObjectHeap(LargeObjectHeap):
    backing = "os"
    release = "go1.13.0"


TestLargeObjectsVirtual = LargeObjectHeap.TestCase
TestLargeObjectsVirtual.settings = SETTINGS
TestLargeObjectsOs = OsLargeObjectHeap.TestCase
TestLargeObjectsOs.settings = SETTINGS
TestLargeObjectsGo1130Virtual = Go1130LargeObjectHeap.TestCase
TestLargeObjectsGo1130Virtual.settings = SETTINGS
TestLargeObjectsGo1130Os = Go1130OsLargeObjectHeap.TestCase
TestLargeObjectsGo1130Os.settings = SETTINGS
