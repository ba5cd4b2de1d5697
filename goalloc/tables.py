"""goalloc's records and heaps as pandas DataFrames (extra: goalloc[pandas]).

``to_pandas`` turns any of goalloc's results into a DataFrame in one
call: a list of records (``h.spans()``, ``h.arenas()``, ``h.hints()``,
``h.centrals()``, ``h.caches()``, ``goalloc.size_classes()``,
``h.stats().by_size``), one record, a NumPy structured array
(``h.span_array()``, ``h.object_array()``), a Timeline, MemStats,
Fragmentation or HeapInfo.  ``class_table(heap)`` is the per-size-class
table jemalloc's bin statistics show: spans, slots, live objects and
span utilisation, beside Go's per-class malloc and free counts.

pandas is imported by each call, never by ``import goalloc``.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from . import _core
from ._pandas import pandas
from ._records import Central, SizeClass
from .arrays import SPAN_STATES

if TYPE_CHECKING:
    import pandas as pd

    from .heap import Heap

__all__ = ["to_pandas", "class_table"]

# Properties worth a column beside a record's fields.
_PROPERTIES: dict[type, tuple[str, ...]] = {Central: ("sizeclass", "noscan")}


def _is_record_type(t: Any) -> bool:
    return isinstance(t, type) and issubclass(t, tuple) and hasattr(
        t, "_fields")


def _records_frame(pd_: Any, items: Sequence[Any],
                   record: type | None) -> pd.DataFrame:
    kind = record if record is not None else type(items[0])
    if not _is_record_type(kind):
        raise TypeError(f"to_pandas: a list of goalloc records (Span, "
                        f"Arena, ...) expected, not of {kind.__name__}")
    strange = next((x for x in items if type(x) is not kind), None)
    if strange is not None:
        raise TypeError(f"to_pandas: a list of one record type expected; "
                        f"{kind.__name__} and {type(strange).__name__} "
                        f"are mixed")
    fields: tuple[str, ...] = kind._fields  # type: ignore[attr-defined]
    extra = _PROPERTIES.get(kind, ())
    cols = {f: [getattr(x, f) for x in items] for f in (*fields, *extra)}
    df: pd.DataFrame = pd_.DataFrame(cols, columns=[*fields, *extra])
    if kind is SizeClass:
        df = df.set_index("sizeclass")
    return df


def to_pandas(obj: Any, record: type | None = None) -> pd.DataFrame:
    """obj as a DataFrame (see the module doc).

    A list of records gives one row per record and one column per field
    (and, for Central, its sizeclass and noscan); record names the type
    for an empty list (its columns, no rows).  A structured array gives
    one column per field; a Timeline its per-sample columns; MemStats
    its field table (by_size: ``to_pandas(st.by_size)``, indexed by size
    class); Fragmentation its metric table; HeapInfo one row per field.
    TypeError for anything else.  Needs pandas.
    """
    from ._records import BySize, HeapInfo
    from .fragmentation import Fragmentation
    from .stats import MemStats
    from .timeline import Timeline

    pd_ = pandas("goalloc.to_pandas")
    if isinstance(obj, Timeline | MemStats | Fragmentation):
        return obj.to_pandas()
    if isinstance(obj, HeapInfo):
        info: pd.DataFrame = pd_.DataFrame(
            {"value": list(dataclasses.astuple(obj))},
            index=pd_.Index([f.name for f in dataclasses.fields(obj)],
                            name="field"), dtype=object)
        return info
    if isinstance(obj, np.ndarray):
        if obj.dtype.names is None:
            raise TypeError("to_pandas: a structured NumPy array expected "
                            "(h.span_array(), h.object_array())")
        arr: pd.DataFrame = pd_.DataFrame(
            {n: obj[n] for n in obj.dtype.names})
        return arr
    if _is_record_type(type(obj)):
        return _records_frame(pd_, [obj], None)
    if isinstance(obj, Sequence) and not isinstance(obj, str | bytes):
        if not obj:
            if record is None:
                raise TypeError("to_pandas: an empty list has no record "
                                "type; pass record=goalloc.Span (or the "
                                "type it would hold)")
            return _records_frame(pd_, [], record)
        df = _records_frame(pd_, obj, record)
        if type(obj[0]) is BySize:
            df.index.name = "sizeclass"
        return df
    raise TypeError(f"to_pandas: cannot make a DataFrame of "
                    f"{type(obj).__name__}")


def class_table(heap: Heap) -> pd.DataFrame:
    """One row per size class (0: large objects), as jemalloc's bin
    statistics show them, from the heap's spans, live objects and
    MemStats.by_size:

    =================  ===================================================
    column             meaning
    =================  ===================================================
    size               slot size in bytes (class 0: none)
    npages             pages per span (Go's class_to_allocnpages)
    objects_per_span   slots per span (jemalloc: regs)
    spans              in-use spans of the class (jemalloc: curslabs)
    slots              spans x objects_per_span
    live               slots holding a live object (jemalloc: curregs; a
                       tiny block with any live object counts once)
    utilisation        live / slots (jemalloc: util)
    span_bytes         bytes of the class's in-use spans
    live_bytes         live x size (class 0: the large objects' spans)
    requested          bytes the live objects asked for
    internal_bytes     live_bytes - requested: size-class rounding
                       (class 0: page rounding)
    free_slot_bytes    span_bytes - live_bytes: free slots and span tails
    mallocs, frees     MemStats.by_size (cumulative; jemalloc: nmalloc,
                       ndalloc)
    =================  ===================================================

    Needs pandas.
    """
    pd_ = pandas("goalloc.class_table")
    nclass = _core.NUM_SIZE_CLASSES
    classes = _core._size_classes()
    size = np.array([c[1] for c in classes], dtype=np.int64)
    npages = np.array([c[2] for c in classes], dtype=np.int64)
    per_span = np.array([c[3] for c in classes], dtype=np.int64)

    spans = heap.span_array()
    inuse = spans[spans["state"] == SPAN_STATES.index("inuse")]
    sc = inuse["sizeclass"].astype(np.int64)
    nspans = np.bincount(sc, minlength=nclass)
    span_bytes = np.bincount(
        sc, weights=inuse["npages"].astype(np.float64),
        minlength=nclass).astype(np.int64) * _core.PAGE_SIZE

    objs = heap.object_array()
    ocls = (objs["spanclass"] >> 1).astype(np.int64)
    requested = np.bincount(ocls, weights=objs["requested"].astype(
        np.float64), minlength=nclass).astype(np.int64)
    # A slot holds one object, but a tiny block (span class 5: class 2,
    # noscan) packs several: count its distinct 16-byte blocks.
    tiny = objs["spanclass"] == 5
    live = np.bincount(ocls[~tiny], minlength=nclass)
    live[2] += len(np.unique(objs["addr"][tiny] >> np.uint64(4)))
    live_bytes = live * size
    # a large object has its span to itself: its bytes are its pages
    live_bytes[0] = span_bytes[0]
    objects_per_span = per_span.copy()
    objects_per_span[0] = 1
    slots = nspans * objects_per_span

    by_size = heap.stats().by_size
    with np.errstate(divide="ignore", invalid="ignore"):
        util = np.where(slots > 0, live / np.maximum(slots, 1), np.nan)
    df: pd.DataFrame = pd_.DataFrame({
        "size": pd_.array([None, *size[1:].tolist()], dtype="Int64"),
        "npages": pd_.array([None, *npages[1:].tolist()], dtype="Int64"),
        "objects_per_span": objects_per_span,
        "spans": nspans,
        "slots": slots,
        "live": live,
        "utilisation": util,
        "span_bytes": span_bytes,
        "live_bytes": live_bytes,
        "requested": requested,
        "internal_bytes": live_bytes - requested,
        "free_slot_bytes": span_bytes - live_bytes,
        "mallocs": [b.mallocs for b in by_size],
        "frees": [b.frees for b in by_size],
    }, index=pd_.Index(range(nclass), name="sizeclass"))
    return df
