"""MemStats: Go's runtime.MemStats, field for field in snake_case.

The scalar fields come from the C core's single list (MSTATS_FIELDS in
csrc/mstats.h), so the dataclass cannot drift from the C struct; a test
checks that the names here equal _core.MSTATS_FIELDS.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ._records import BySize


@dataclass(frozen=True)
class MemStats:
    """runtime.ReadMemStats (Go 1.13), read from a goalloc heap.

    Differs from Go: by_size has all 67 classes (Go reports 61).  The GC
    fields come from the collector (collector="gc"); an explicit-free heap
    reports Go's values before its first cycle.  last_gc is on the
    simulated clock (1 s plus one ns per byte requested), the pauses are
    0 (the simulated world stops for no simulated time), and PauseNs,
    PauseEnd and GCCPUFraction are left out.
    """

    alloc: int
    total_alloc: int
    sys: int
    lookups: int
    mallocs: int
    frees: int
    heap_alloc: int
    heap_sys: int
    heap_idle: int
    heap_inuse: int
    heap_released: int
    heap_objects: int
    stack_inuse: int
    stack_sys: int
    mspan_inuse: int
    mspan_sys: int
    mcache_inuse: int
    mcache_sys: int
    buck_hash_sys: int
    gc_sys: int
    other_sys: int
    next_gc: int
    last_gc: int
    pause_total_ns: int
    num_gc: int
    num_forced_gc: int
    by_size: tuple[BySize, ...]

    def __repr__(self) -> str:
        scalars = ", ".join(f"{k}={getattr(self, k)}"
                            for k in self.__dataclass_fields__
                            if k != "by_size")
        return f"MemStats({scalars}, by_size=<{len(self.by_size)} classes>)"

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> MemStats:
        fields = dict(d)
        fields["by_size"] = tuple(BySize(*t) for t in d["by_size"])
        return cls(**fields)

    @property
    def heap_retained(self) -> int:
        """heap_sys - heap_released: Go's estimate of the heap's RSS."""
        return self.heap_sys - self.heap_released

    @property
    def heap_unreleased_idle(self) -> int:
        """Idle bytes still backed by memory (heap_idle - heap_released)."""
        return self.heap_idle - self.heap_released
