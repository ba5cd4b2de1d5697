"""Fragmentation metrics, defined once for live heaps and Timelines.

All come from the heap counters (``Heap._counters()``, a Timeline sample):

=============  ===========================================  ==================
metric         bytes                                        ratio
=============  ===========================================  ==================
internal       heap_alloc - requested_live                  / heap_alloc
               (size-class rounding and tiny-block slack:
               what objects got minus what callers asked)
span           heap_inuse - heap_alloc                      / heap_inuse
               (unallocated slots and tails of in-use
               spans)
page           heap_idle - heap_released                    / heap_sys
               (free pages held but not returned to the OS)
external       heap_idle - largest_free                     1 - largest_free
               (free memory outside the largest free span;  / heap_idle
               go1.13.8's curArena rest counts as a free
               run, as it takes a request of its size)
overhead       heap_sys (address space mapped for the heap) heap_sys
                                                            / requested_live
=============  ===========================================  ==================

A ratio whose denominator is 0 is 0 (nothing to waste), except overhead,
which is NaN while nothing is live.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from . import _core

if TYPE_CHECKING:
    import pandas as pd

METRICS = ("internal", "span", "page", "external", "overhead")

# What each metric measures, in bytes and as a ratio (the module doc).
MEANINGS = {
    "internal": "size-class rounding and tiny-block slack: heap_alloc - "
                "requested, / heap_alloc",
    "span": "free slots and tails of in-use spans: heap_inuse - "
            "heap_alloc, / heap_inuse",
    "page": "free pages kept from the OS: heap_idle - heap_released, "
            "/ heap_sys",
    "external": "free memory outside the largest free span: heap_idle - "
                "largest_free, / heap_idle",
    "overhead": "address space per requested live byte: heap_sys / "
                "requested",
}


def _ratio(num: Any, den: Any, empty: float = 0.0) -> Any:
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(den > 0, num / np.where(den > 0, den, 1), empty)
    return out


# The counters compute() reads, in its order.
_COMPUTE_ARGS = ("heap_alloc", "heap_inuse", "heap_idle", "heap_released",
                 "heap_sys", "requested_live", "largest_free")


def compute(heap_alloc: Any, heap_inuse: Any, heap_idle: Any,
            heap_released: Any, heap_sys: Any, requested_live: Any,
            largest_free: Any) -> dict[str, Any]:
    """Every metric, in bytes (``*_bytes``) and as a ratio; scalars or
    NumPy arrays alike."""
    a = np.asarray(heap_alloc, dtype=np.int64)
    inuse = np.asarray(heap_inuse, dtype=np.int64)
    idle = np.asarray(heap_idle, dtype=np.int64)
    rel = np.asarray(heap_released, dtype=np.int64)
    sys = np.asarray(heap_sys, dtype=np.int64)
    req = np.asarray(requested_live, dtype=np.int64)
    big = np.asarray(largest_free, dtype=np.int64)
    return {
        "internal_bytes": a - req,
        "internal": _ratio(a - req, a),
        "span_bytes": inuse - a,
        "span": _ratio(inuse - a, inuse),
        "page_bytes": idle - rel,
        "page": _ratio(idle - rel, sys),
        "external_bytes": idle - big,
        "external": _ratio(idle - big, idle),
        "overhead": _ratio(sys, req, empty=float("nan")),
    }


@dataclass(frozen=True)
class Fragmentation:
    """The fragmentation of a heap at one moment (see the module doc)."""

    internal: float
    internal_bytes: int
    span: float
    span_bytes: int
    page: float
    page_bytes: int
    external: float
    external_bytes: int
    overhead: float
    requested_live: int
    heap_alloc: int

    @classmethod
    def from_counters(cls, c: Sequence[int]) -> Fragmentation:
        """The metrics of one sample of the counters (Heap._counters(),
        in the order of _core.COUNTER_FIELDS)."""
        counters = dict(zip((name for name, _, _ in _core.COUNTER_FIELDS),
                            c, strict=True))
        requested = counters["requested_live"]
        heap_alloc = counters["heap_alloc"]
        m = compute(*(counters[k] for k in _COMPUTE_ARGS))
        return cls(
            internal=float(m["internal"]),
            internal_bytes=int(m["internal_bytes"]),
            span=float(m["span"]),
            span_bytes=int(m["span_bytes"]),
            page=float(m["page"]),
            page_bytes=int(m["page_bytes"]),
            external=float(m["external"]),
            external_bytes=int(m["external_bytes"]),
            overhead=float(m["overhead"]),
            requested_live=int(requested),
            heap_alloc=int(heap_alloc),
        )

    def to_pandas(self) -> pd.DataFrame:
        """One row per metric (internal, span, page, external, overhead):
        its ratio, its bytes (none for overhead, a ratio of two sizes)
        and what it measures.  Needs pandas."""
        from ._pandas import pandas

        pd_ = pandas("Fragmentation.to_pandas")
        ratios = [getattr(self, m) for m in METRICS]
        nbytes = [getattr(self, f"{m}_bytes") for m in METRICS[:-1]]
        df: pd.DataFrame = pd_.DataFrame(
            {"ratio": ratios,
             "bytes": pd_.array([*nbytes, None], dtype="Int64"),
             "meaning": [MEANINGS[m] for m in METRICS]},
            index=pd_.Index(list(METRICS), name="metric"))
        return df
