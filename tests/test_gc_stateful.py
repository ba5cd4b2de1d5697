"""A Hypothesis state machine over a GC-mode heap (design §14).

Rules: alloc (tiny, small, large; any of 2 Ps), drop of a live object,
refused drops (dropped again, interior), gc(), scavenge, set_gc_percent,
free_os_memory.  The model: the objects the program holds (live) and the
ones it dropped.  After every step: verify() passes (with GC mode's
invariants: mark bits clear after a span's sweep and only on allocated
slots before it, drops only on allocated slots, the sweepgen of every
span), every live object is still allocated and not dropped, no two live
objects overlap, and MemStats counts at least the live objects (dropped
ones until swept).  After gc() exactly the live objects are allocated:
heap_objects counts them (a tiny block once), and each dropped one's
slot is free or reused.  On "os" every live object keeps the byte
pattern written when it was allocated.

Three runs: background_sweep None and 0 (60 examples of at most 80
steps each) on the virtual backing, and None on "os" (30 examples).
"""
from __future__ import annotations

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
from helpers import MAX_SMALL, TINY, MiB

NPROCS = 2

SETTINGS = settings(
    max_examples=60,
    stateful_step_count=80,
    deadline=None,
    derandomize=bool(os.environ.get("CI")),
    suppress_health_check=[HealthCheck.too_slow],
)

procs = st.integers(0, NPROCS - 1)
small_sizes = st.one_of(st.sampled_from([16, 48, 1024, 8192, 20000]),
                        st.integers(1, MAX_SMALL))
large_sizes = st.integers(MAX_SMALL + 1, 2 * MiB)


def pattern(addr: int, size: int) -> bytes:
    return bytes((addr >> 4) + i & 0xFF for i in range(min(size, 64)))


class GCMachine(RuleBasedStateMachine):
    background_sweep: int | None = None
    backing = "virtual"

    def __init__(self):
        super().__init__()
        self.h = goalloc.Heap(collector="gc", backing=self.backing,
                              procs=NPROCS,
                              background_sweep=self.background_sweep)
        self.live: dict[int, tuple[int, bool]] = {}  # addr -> size, tiny
        self.dropped: list[int] = []

    def teardown(self):
        self.h.close()

    def _alloc(self, size: int, noscan: bool, p: int) -> None:
        a = self.h.alloc(size, noscan=noscan, p=p)
        assert a not in self.live
        tiny = noscan and size < TINY
        self.live[a] = (size, tiny)
        if a in self.dropped:
            self.dropped.remove(a)             # its slot was reused
        if self.backing == "os":
            n = min(size, 64)
            v = self.h.view(a, n)
            assert bytes(v) == bytes(n) or tiny   # zeroed (needzero)
            v[:] = pattern(a, size)

    @rule(size=st.integers(1, TINY - 1), p=procs)
    def alloc_tiny(self, size, p):
        self._alloc(size, True, p)

    @rule(size=small_sizes, noscan=st.booleans(), p=procs,
          n=st.integers(1, 40))
    def alloc_small(self, size, noscan, p, n):
        for _ in range(n):
            self._alloc(size, noscan, p)

    @rule(size=large_sizes, p=procs)
    def alloc_large(self, size, p):
        self._alloc(size, False, p)

    @precondition(lambda self: self.live)
    @rule(data=st.data(), n=st.integers(1, 30))
    def drop(self, data, n):
        for _ in range(min(n, len(self.live))):
            a = data.draw(st.sampled_from(sorted(self.live)))
            self.h.drop(a)
            del self.live[a]
            self.dropped.append(a)

    @precondition(lambda self: self.dropped)
    @rule(data=st.data())
    def drop_again(self, data):
        a = data.draw(st.sampled_from(self.dropped))
        before = self.h.digest()
        try:
            self.h.drop(a)
        except goalloc.InvalidFreeError:      # DoubleFreeError included
            pass
        else:
            raise AssertionError(f"second drop of {a:#x} was taken")
        assert self.h.digest() == before

    @precondition(lambda self: self.live)
    @rule(data=st.data(), off=st.integers(1, 15))
    def drop_interior(self, data, off):
        a = data.draw(st.sampled_from(sorted(self.live)))
        size, tiny = self.live[a]
        if tiny or off >= size:
            return
        before = self.h.digest()
        try:
            self.h.drop(a + off)
        except goalloc.InvalidFreeError:
            pass
        else:
            raise AssertionError(f"interior drop {a:#x}+{off} was taken")
        assert self.h.digest() == before

    @rule()
    def gc(self):
        # each P's current tiny block is marked whatever it holds
        # (gcMarkTinyAllocs)
        current = {c.tiny for c in self.h.caches() if c.tiny}
        self.h.gc()
        st_ = self.h.stats()
        blocks = {a & ~15 for a, (_, tiny) in self.live.items() if tiny}
        plain = sum(1 for _, tiny in self.live.values() if not tiny)
        # after a full GC only reachable objects are allocated; a tiny
        # block that held a dropped object survives while one of its
        # objects lives
        assert st_.heap_objects == plain + len(blocks | current)
        assert self.h.gc_state().phase == "off"

    @rule(n=st.one_of(st.none(), st.integers(0, 8 * MiB)))
    def scavenge(self, n):
        self.h.scavenge(n)

    @rule(gogc=st.sampled_from([0, 50, 100, 400, "off"]))
    def set_gc_percent(self, gogc):
        self.h.set_gc_percent(gogc)

    @rule()
    def free_os_memory(self):
        self.h.free_os_memory()
        st_ = self.h.stats()
        assert st_.heap_released == st_.heap_idle

    @invariant()
    def heap_verifies(self):
        self.h.verify()

    @invariant()
    def live_objects_are_intact(self):
        h = self.h
        for a, (size, _tiny) in self.live.items():
            s = h.span_of(a)
            assert s is not None and s.state == "inuse"
            if s.sizeclass:
                slot = (a - s.base) // s.elemsize
                state = h.span_objects(s.base).states[slot]
                assert state == goalloc.SLOT_LIVE, (hex(a), state)
            if self.backing == "os":
                n = min(size, 64)
                assert bytes(h.view(a, n)) == pattern(a, size)
        ends = sorted((a, a + size) for a, (size, _) in self.live.items())
        for (_, e), (b, _) in zip(ends, ends[1:], strict=False):
            assert e <= b

    @invariant()
    def stats_count_the_live(self):
        st_ = self.h.stats()
        plain = sum(1 for _, tiny in self.live.values() if not tiny)
        assert st_.heap_objects >= plain
        assert st_.num_gc == len(self.h.gc_cycles())


class GCMachineLazySweep(GCMachine):
    background_sweep = 0


class GCMachineOS(GCMachine):
    backing = "os"


TestGCMachine = GCMachine.TestCase
TestGCMachine.settings = SETTINGS
TestGCMachineLazySweep = GCMachineLazySweep.TestCase
TestGCMachineLazySweep.settings = SETTINGS
TestGCMachineOS = GCMachineOS.TestCase
TestGCMachineOS.settings = settings(SETTINGS, max_examples=30)
