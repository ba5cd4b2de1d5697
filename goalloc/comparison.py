"""Compare runs: one DataFrame of headline figures (goalloc[pandas]).

    >>> goalloc.compare({"go1.13.8": tl_new, "go1.13.0": tl_old})

Each run is a Timeline (a replay's samples: peaks are known), a Heap (its
state now: peaks are not known, so they are missing) or a snapshot
document (goalloc.snapshot.snapshot or load_json; like a Heap).  One row
per run, indexed by its label, one column per figure:

=====================  ====================================================
column                 meaning
=====================  ====================================================
source                 "timeline", "heap" or "snapshot"
ops                    ops the replay applied (missing for a heap)
peak_heap_sys,         heap_sys: heap address space mapped, the highest
final_heap_sys         sample and the last one (Go 1.13 never unmaps
                       heap memory, so a heap's peak is its final value)
peak_heap_inuse, ...   heap_inuse: bytes of in-use spans
peak_heap_alloc, ...   heap_alloc: bytes of live objects, class-rounded
peak_retained, ...     heap_sys - heap_released: what the heap holds from
                       the OS (Go's estimate of its RSS)
peak_released, ...     heap_released: free bytes returned to the OS
peak_objects, ...      live objects
final_requested        bytes the live objects asked for
internal, span, page,  the fragmentation ratios at the end (see
external, overhead     goalloc.fragmentation)
peak_page_bytes        the most free-but-retained memory (page
                       fragmentation in bytes) at any sample
gc_cycles              GC cycles completed (0 for an explicit-free heap;
                       <NA> for a snapshot written before GC mode)
=====================  ====================================================

The peaks are over the samples a Timeline holds: replay with a smaller
sample_every for exact peaks.  Byte and count columns are pandas' nullable
Int64 (missing: <NA>), ratios float64 (NaN: overhead with nothing live).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ._pandas import pandas
from .fragmentation import METRICS

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["compare", "headline", "gc_cycles", "typed_columns",
           "HEADLINE_COLUMNS"]

# The counters compared as peak and final, by column stem.
_PEAKED = {
    "heap_sys": "heap_sys", "heap_inuse": "heap_inuse",
    "heap_alloc": "heap_alloc", "retained": None, "released":
    "heap_released", "objects": "live_objects",
}

HEADLINE_COLUMNS: tuple[str, ...] = (
    "source", "ops",
    *(f"{w}_{stem}" for stem in _PEAKED for w in ("peak", "final")),
    "final_requested", *METRICS, "peak_page_bytes", "gc_cycles",
)


def gc_cycles(run: Any) -> int | None:
    """GC cycles a run completed: a heap's MemStats.num_gc (Go's NumGC),
    a Timeline's last num_gc sample, or a snapshot's stats["num_gc"];
    None for a snapshot or Timeline written before they had one."""
    from .heap import Heap
    from .timeline import Timeline

    if isinstance(run, Timeline):
        col = getattr(run, "num_gc", None)
        return None if col is None or len(col) == 0 else int(col[-1])
    if isinstance(run, Heap):
        n = getattr(run.stats(), "num_gc", None)
        return None if n is None else int(n)
    if isinstance(run, Mapping):
        n = run.get("stats", {}).get("num_gc")
        return None if n is None else int(n)
    return None


def _from_timeline(tl: Any) -> dict[str, Any]:
    retained = tl.heap_sys - tl.heap_released
    series = {"heap_sys": tl.heap_sys, "heap_inuse": tl.heap_inuse,
              "heap_alloc": tl.heap_alloc, "retained": retained,
              "released": tl.heap_released, "objects": tl.live_objects}
    row: dict[str, Any] = {"source": "timeline", "ops": tl.nops}
    if len(tl) == 0:
        return row
    for stem, col in series.items():
        row[f"peak_{stem}"] = int(np.max(col))
        row[f"final_{stem}"] = int(col[-1])
    row["final_requested"] = int(tl.requested_live[-1])
    for m in METRICS:
        row[m] = float(tl.metrics[m][-1])
    row["peak_page_bytes"] = int(np.max(tl.metrics["page_bytes"]))
    return row


def _final(source: str, stats: Mapping[str, Any], requested: int,
           frag: Mapping[str, Any]) -> dict[str, Any]:
    row: dict[str, Any] = {"source": source}
    # heap_sys only grows: Go 1.13 never unmaps an arena (it releases
    # pages with sysUnused, which heap_released counts)
    row["peak_heap_sys"] = stats["heap_sys"]
    row["final_heap_sys"] = stats["heap_sys"]
    row["final_heap_inuse"] = stats["heap_inuse"]
    row["final_heap_alloc"] = stats["heap_alloc"]
    row["final_retained"] = stats["heap_sys"] - stats["heap_released"]
    row["final_released"] = stats["heap_released"]
    row["final_objects"] = stats["heap_objects"]
    row["final_requested"] = requested
    for m in METRICS:
        v = frag[m]
        row[m] = float("nan") if v is None else float(v)
    return row


def headline(run: Any) -> dict[str, Any]:
    """The headline figures of one run (a Timeline, Heap or snapshot
    document) as a dict of compare()'s columns; a figure the run cannot
    tell (a heap's peaks) is absent.  TypeError for anything else."""
    from .heap import Heap
    from .timeline import Timeline

    if isinstance(run, Timeline):
        row = _from_timeline(run)
    elif isinstance(run, Heap):
        frag = run.fragmentation()
        row = _final("heap", run.stats().scalars(), frag.requested_live,
                     {m: getattr(frag, m) for m in METRICS})
    elif isinstance(run, Mapping) and "stats" in run \
            and "fragmentation" in run:
        frag_doc = run["fragmentation"]
        row = _final("snapshot", run["stats"], frag_doc["requested_live"],
                     frag_doc)
    else:
        raise TypeError(f"compare: a run is a goalloc.Timeline, a "
                        f"goalloc.Heap or a snapshot document, not "
                        f"{type(run).__name__}")
    gc = gc_cycles(run)
    if gc is not None:
        row["gc_cycles"] = gc
    return row


def compare(runs: Mapping[str, Any]) -> pd.DataFrame:
    """One row of headline figures per run, indexed by label (see the
    module doc for the columns).  runs: {label: Timeline, Heap or
    snapshot document}, in the order the rows should have.  TypeError
    for something else; ValueError for no runs.  Needs pandas."""
    if not isinstance(runs, Mapping):
        raise TypeError(f"compare takes a mapping {{label: run}}, not "
                        f"{type(runs).__name__} (for a list: "
                        f"dict(enumerate(runs)))")
    if not runs:
        raise ValueError("compare: no runs given")
    pd_ = pandas("goalloc.compare")
    rows = {str(label): headline(run) for label, run in runs.items()}
    data = typed_columns(pd_, list(rows.values()), HEADLINE_COLUMNS)
    df: pd.DataFrame = pd_.DataFrame(
        data, index=pd_.Index(list(rows), name="run"))
    return df


def typed_columns(pd_: Any, rows: Sequence[Mapping[str, Any]],
                  columns: Sequence[str]) -> dict[str, Any]:
    """{column: values of rows} with compare()'s dtypes: source as
    objects, the ratios float64 (NaN when missing), the rest Int64."""
    data: dict[str, Any] = {}
    for c in columns:
        values = [r.get(c) for r in rows]
        if c == "source":
            data[c] = values
        elif c in METRICS:
            data[c] = np.array([np.nan if v is None else v for v in values],
                               dtype=np.float64)
        else:
            data[c] = pd_.array(values, dtype="Int64")
    return data
