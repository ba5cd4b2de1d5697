"""MemStats: Go's runtime.MemStats, field for field in snake_case.

The scalar fields come from the C core's single list (MSTATS_FIELDS in
csrc/mstats.h), so the dataclass cannot drift from the C struct; a test
checks that the names here equal _core.MSTATS_FIELDS.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import _core
from ._records import BySize

if TYPE_CHECKING:
    import pandas as pd

# Each scalar field's meaning, from the C core's definition (goalloc.h).
FIELD_DOCS: dict[str, str] = {name: doc
                              for name, _, doc in _core.MSTATS_FIELDS}


def field_unit(name: str) -> str:
    """The unit of a MemStats field: "bytes" or "count" (read from its
    doc in the C core's definition), "ns" for a nanosecond field (a
    time on the simulated clock)."""
    if name.endswith("_ns") or " ns" in FIELD_DOCS.get(name, ""):
        return "ns"
    return "bytes" if "bytes" in FIELD_DOCS.get(name, "") else "count"


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
        """From a dict of every field: the binding's (by_size as tuples)
        or to_dict's (by_size as dicts with a sizeclass key)."""
        fields = dict(d)
        fields["by_size"] = tuple(
            BySize(*(t[k] for k in BySize._fields))
            if isinstance(t, Mapping) else BySize(*t)
            for t in d["by_size"])
        return cls(**fields)

    def scalars(self) -> dict[str, int]:
        """Every field but by_size, in Go's order."""
        return {k: getattr(self, k) for k in self.__dataclass_fields__
                if k != "by_size"}

    def to_dict(self) -> dict[str, Any]:
        """Every field as plain Python values (JSON-ready): the scalars,
        and by_size as one dict per size class, ``{"sizeclass", "size",
        "mallocs", "frees"}`` (the snapshot's form).
        ``MemStats.from_dict(st.to_dict()) == st``."""
        d: dict[str, Any] = dict(self.scalars())
        d["by_size"] = [{"sizeclass": i, **b._asdict()}
                        for i, b in enumerate(self.by_size)]
        return d

    def to_pandas(self) -> pd.DataFrame:
        """The scalar fields as a DataFrame indexed by field name, with
        columns value, unit ("bytes" or "count") and meaning (the C
        core's doc of the field); by_size as a table:
        ``goalloc.to_pandas(st.by_size)``.  Needs pandas."""
        from ._pandas import pandas

        pd_ = pandas("MemStats.to_pandas")
        rows = self.scalars()
        df: pd.DataFrame = pd_.DataFrame(
            {"value": list(rows.values()),
             "unit": [field_unit(k) for k in rows],
             "meaning": [FIELD_DOCS.get(k, "") for k in rows]},
            index=pd_.Index(list(rows), name="field"))
        return df

    @property
    def heap_retained(self) -> int:
        """heap_sys - heap_released: Go's estimate of the heap's RSS."""
        return self.heap_sys - self.heap_released

    @property
    def heap_unreleased_idle(self) -> int:
        """Idle bytes still backed by memory (heap_idle - heap_released)."""
        return self.heap_idle - self.heap_released
