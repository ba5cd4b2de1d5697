"""Snapshots: everything a heap shows, as one JSON-ready document.

``snapshot(heap)`` gathers the introspection calls (what Go's runtime
would show through ``ReadMemStats``, ``mheap_``, the mcentrals and the
mcaches) into plain dicts and lists of ints, strs, bools, floats and
None, so ``json.dumps`` takes it as it is; ``export_json`` writes it to a
file and ``load_json`` reads one back; ``validate`` checks a document's
schema and shape.

Schema ``goalloc.snapshot/1`` (``SNAPSHOT_SCHEMA``); every top-level key:

================  ===========================================================
key               value
================  ===========================================================
schema            the string ``"goalloc.snapshot/1"``
goalloc_version   ``goalloc.__version__`` of the writer
digest            ``Heap.digest()``: a 64-bit hash of all allocator metadata
                  (equal digests: almost surely equal heaps)
info              ``Heap.info()``: the platform and options the heap models,
                  one key per goalloc.HeapInfo field; release, curArena
                  (go1.13.8's mapped room not yet a span) and the
                  metadata's real memory came after version 1's first
                  writers, so a reader may miss them
hints             the arena hint list, head (tried next) first: one object
                  per hint with goalloc.ArenaHint's fields (addr, down)
arenas            the mapped arenas in creation order (mheap_.allArenas):
                  goalloc.Arena's fields (base, idx, l1, l2)
spans             every span of the mapped arenas in address order:
                  goalloc.Span's fields, state "inuse", "free" or "manual"
stats             ``Heap.stats()`` (runtime.MemStats in snake_case): every
                  scalar field, and ``by_size``: a list of all 67 size
                  classes as ``{"sizeclass", "size", "mallocs", "frees"}``
centrals          the mcentrals that hold a span or have counted an
                  allocation or free, by span class: goalloc.Central's
                  fields and its properties sizeclass and noscan
                  (nonempty, empty: lists of span bases)
caches            each P's mcache: goalloc.Cache's fields, alloc a list of
                  ``{"spanclass", "base"}`` for the span classes with a
                  cached span
fragmentation     ``Heap.fragmentation()`` (see goalloc.fragmentation): the
                  ratios internal, span, page, external, overhead and the
                  byte counts; a ratio that is NaN (overhead while nothing
                  is live) is null
gc                ``Heap.gc_state()``: the collector's pacing and sweep
                  state, one key per goalloc.GCState field (added after
                  version 1's first writers: a reader may miss it)
gc_cycles         ``Heap.gc_cycles()``: one object per completed cycle
                  with goalloc.GCCycle's fields (likewise added later)
live_by_class     the objects ``Heap.object_array()`` lists, summed by
                  size class (0: large), one object per class that has
                  any, in class order: sizeclass, objects, bytes (their
                  usable sizes as object_array has them: elemsize, a
                  large object's pages, a tiny object's requested size)
                  and requested (what callers asked for); what
                  goalloc.plot.size_class_waste draws (likewise added
                  later)
================  ===========================================================

Each record's keys are its fields, so the schema follows the records
(which tests check against the C core's definitions, csrc/goalloc.h).
Addresses are JSON integers; on 64-bit platforms they can exceed 2**53,
so a reader whose numbers are doubles (JavaScript) must parse them as big
integers.  Readers must ignore keys they do not know: version 1 may grow
keys, and a change that removes or retypes one bumps the version.
"""
from __future__ import annotations

import json
import math
import os
from typing import TYPE_CHECKING, Any, Union

import numpy as np

from . import _core
from ._records import (
    Arena,
    ArenaHint,
    BySize,
    Cache,
    Central,
    GCCycle,
    GCState,
    HeapInfo,
    Span,
)
from .arrays import SPAN_STATES
from .fragmentation import Fragmentation
from .stats import MemStats

if TYPE_CHECKING:
    from .heap import Heap

__all__ = ["SNAPSHOT_SCHEMA", "snapshot", "export_json", "load_json",
           "validate", "live_by_class"]

SNAPSHOT_SCHEMA = "goalloc.snapshot/1"

PathLike = Union[str, "os.PathLike[str]"]

# ---- the schema -------------------------------------------------------------

# A type spec: "int" (not bool), "bool", "str", "num" (int or float),
# "num?" (int, float or null), "ints" (list of int).
_INT, _BOOL, _STR, _NUM, _NUMN, _INTS = ("int", "bool", "str", "num",
                                         "num?", "ints")
# The spec of each annotation the records use.
_KINDS = {"int": _INT, "bool": _BOOL, "str": _STR, "float": _NUMN,
          "tuple[int, ...]": _INTS}


def _annotation(kind: Any) -> str:
    """An annotation as written (NamedTuple keeps it as a ForwardRef)."""
    return str(getattr(kind, "__forward_arg__", kind))


def _spec(record: Any, *, without: tuple[str, ...] = (),
          **more: str) -> dict[str, str]:
    """The keys of a record and their specs, read from its annotations:
    the records are the live API's (checked against the C core's
    definitions), so the schema follows them.  A record may grow (version
    1 allows new keys); a key that disappears or changes type is a new
    schema version, which tests/test_snapshot.py guards."""
    spec = {name: _KINDS[_annotation(kind)]
            for name, kind in record.__annotations__.items()
            if name not in without}
    spec.update(more)
    return spec


_INFO_ALL = _spec(HeapInfo)
# Keys version 1 gained after its first writers: checked when present.
_INFO_LATER = ("release", "cur_arena_base", "cur_arena_end",
               "metadata_bytes", "metadata_limit", "span_meta_bytes",
               "tiny_meta_bytes")
_INFO = {k: v for k, v in _INFO_ALL.items() if k not in _INFO_LATER}
_HINT = _spec(ArenaHint)
_ARENA = _spec(Arena)
_SPAN_ALL = _spec(Span)
_SPAN_LATER = ("sweepgen",)
_SPAN = {k: v for k, v in _SPAN_ALL.items() if k not in _SPAN_LATER}
_STATS_ALL = _spec(MemStats, without=("by_size",))
_STATS_LATER = ("next_gc", "last_gc", "pause_total_ns", "num_gc",
                "num_forced_gc")
_STATS = {k: v for k, v in _STATS_ALL.items() if k not in _STATS_LATER}
_BY_SIZE_RECORD = _spec(BySize)
_BY_SIZE = {"sizeclass": _INT, **_BY_SIZE_RECORD}
_CENTRAL = _spec(Central, sizeclass=_INT, noscan=_BOOL)
_CACHE = _spec(Cache, without=("alloc",))
_CACHE_ALLOC = {"spanclass": _INT, "base": _INT}
_FRAG = _spec(Fragmentation)
_GC = _spec(GCState)
_GC_CYCLE = _spec(GCCycle)
_LIVE_CLASS = dict.fromkeys(("sizeclass", "objects", "bytes", "requested"),
                            _INT)
# A span list holds no dead spans.
_LISTED_STATES = tuple(s for s in SPAN_STATES if s != "dead")


def _present(spec: dict[str, str], later: tuple[str, ...],
             obj: Any) -> dict[str, str]:
    """The keys of spec that version 1 gained later (later) and that obj
    has: checked when present."""
    return {k: v for k, v in spec.items() if k in later and k in obj}


def _float(x: float) -> Any:
    return None if math.isnan(x) else float(x)


def _plain(value: Any) -> Any:
    """A record's value as JSON has it: tuples as lists, NaN as null."""
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, float):
        return _float(value)
    return value


def _pick(record: Any, spec: dict[str, str]) -> dict[str, Any]:
    """The schema's keys of a record, read by name."""
    return {key: _plain(getattr(record, key)) for key in spec}


def live_by_class(heap: Heap) -> list[dict[str, int]]:
    """The snapshot's live_by_class: heap.object_array() summed by size
    class (0: large), in class order, classes with no object left out.
    Integer sums (NumPy's uint64), so they are exact."""
    objs = heap.object_array()
    sc = (objs["spanclass"] >> 1).astype(np.intp)
    n = _core.NUM_SIZE_CLASSES
    count = np.bincount(sc, minlength=n)
    nbytes = np.zeros(n, dtype=np.uint64)
    asked = np.zeros(n, dtype=np.uint64)
    np.add.at(nbytes, sc, objs["size"])
    np.add.at(asked, sc, objs["requested"])
    return [{"sizeclass": int(c), "objects": int(count[c]),
             "bytes": int(nbytes[c]), "requested": int(asked[c])}
            for c in np.flatnonzero(count)]


def snapshot(heap: Heap) -> dict[str, Any]:
    """The whole visible state of heap as a JSON-serialisable dict (see
    the module docstring for every key)."""
    from . import __version__

    st = heap.stats()
    stats = _pick(st, _STATS_ALL)
    stats["by_size"] = [{"sizeclass": i, **_pick(b, _BY_SIZE_RECORD)}
                        for i, b in enumerate(st.by_size)]
    centrals = [_pick(c, _CENTRAL) for c in heap.centrals()
                if c.nonempty or c.empty or c.nmalloc or c.nfree]
    caches = [{**_pick(c, _CACHE),
               "alloc": [{"spanclass": spc, "base": base}
                         for spc, base in sorted(c.alloc.items())]}
              for c in heap.caches()]
    return {
        "schema": SNAPSHOT_SCHEMA,
        "goalloc_version": __version__,
        "digest": heap.digest(),
        "info": _pick(heap.info(), _INFO_ALL),
        "hints": [_pick(h, _HINT) for h in heap.hints()],
        "arenas": [_pick(a, _ARENA) for a in heap.arenas()],
        "spans": [_pick(s, _SPAN_ALL) for s in heap.spans()],
        "stats": stats,
        "centrals": centrals,
        "caches": caches,
        "fragmentation": _pick(heap.fragmentation(), _FRAG),
        "gc": _pick(heap.gc_state(), _GC),
        "gc_cycles": [_pick(c, _GC_CYCLE) for c in heap.gc_cycles()],
        "live_by_class": live_by_class(heap),
    }


def export_json(heap: Heap, path: PathLike,
                indent: int | None = None) -> dict[str, Any]:
    """Write snapshot(heap) to path as JSON; return the document."""
    doc = snapshot(heap)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=indent, allow_nan=False)
        f.write("\n")
    return doc


def load_json(path: PathLike) -> dict[str, Any]:
    """Read a snapshot file and validate it.  ValueError for a file that
    is not a goalloc snapshot: not UTF-8 or not JSON (json's
    JSONDecodeError is one), nested deeper than the parser's recursion
    goes, or failing validate()."""
    with open(path, encoding="utf-8") as f:
        try:
            doc = json.load(f)
        except RecursionError:
            # json's parser recurses once per nested array or object; a
            # snapshot nests four levels deep
            raise ValueError(f"{os.fspath(path)}: not a goalloc snapshot: "
                             f"JSON nested too deeply") from None
    validate(doc)
    checked: dict[str, Any] = doc
    return checked


# ---- validation -----------------------------------------------------------

_TOP: dict[str, type] = {
    "schema": str, "goalloc_version": str, "digest": int, "info": dict,
    "hints": list, "arenas": list, "spans": list, "stats": dict,
    "centrals": list, "caches": list, "fragmentation": dict,
}


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _check_value(v: Any, kind: str) -> bool:
    if kind == _INT:
        return _is_int(v)
    if kind == _BOOL:
        return isinstance(v, bool)
    if kind == _STR:
        return isinstance(v, str)
    if kind == _NUM:
        return (_is_int(v) or isinstance(v, float)) and not (
            isinstance(v, float) and not math.isfinite(v))
    if kind == _NUMN:
        return v is None or _check_value(v, _NUM)
    if kind == _INTS:
        return isinstance(v, list) and all(_is_int(x) for x in v)
    raise AssertionError(kind)


def _check_object(obj: Any, spec: dict[str, str], where: str) -> None:
    if not isinstance(obj, dict):
        raise ValueError(f"{where}: expected an object, got "
                         f"{type(obj).__name__}")
    for key, kind in spec.items():
        if key not in obj:
            raise ValueError(f"{where}: missing key {key!r}")
        if not _check_value(obj[key], kind):
            raise ValueError(f"{where}.{key}: expected {kind}, got "
                             f"{obj[key]!r}")


def _check_list(items: list[Any], spec: dict[str, str], where: str) -> None:
    for i, item in enumerate(items):
        _check_object(item, spec, f"{where}[{i}]")


def validate(doc: Any) -> None:
    """Check that doc is a goalloc.snapshot/1 document: the schema string,
    every top-level key with its type, and the keys and types of the
    records inside.  Unknown keys are allowed.  Raises ValueError naming
    the first problem."""
    if not isinstance(doc, dict):
        raise ValueError(f"a snapshot is a JSON object, not "
                         f"{type(doc).__name__}")
    schema = doc.get("schema")
    if schema != SNAPSHOT_SCHEMA:
        if isinstance(schema, str) and schema.startswith("goalloc.snapshot/"):
            raise ValueError(f"unsupported snapshot schema {schema!r}; this "
                             f"goalloc reads {SNAPSHOT_SCHEMA!r}")
        raise ValueError(f"not a goalloc snapshot: schema is {schema!r}, "
                         f"expected {SNAPSHOT_SCHEMA!r}")
    for key, typ in _TOP.items():
        if key not in doc:
            raise ValueError(f"snapshot: missing key {key!r}")
        v = doc[key]
        if not isinstance(v, typ) or (typ is int and isinstance(v, bool)):
            raise ValueError(f"snapshot: {key!r} must be {typ.__name__}, "
                             f"not {type(v).__name__}")
    _check_object(doc["info"], _INFO, "info")
    _check_object(doc["info"], {k: v for k, v in _INFO_ALL.items()
                                if k in _INFO_LATER and k in doc["info"]},
                  "info")
    _check_list(doc["hints"], _HINT, "hints")
    _check_list(doc["arenas"], _ARENA, "arenas")
    _check_list(doc["spans"], _SPAN, "spans")
    for i, s in enumerate(doc["spans"]):
        _check_object(s, _present(_SPAN_ALL, _SPAN_LATER, s), f"spans[{i}]")
        if s["state"] not in _LISTED_STATES:
            raise ValueError(f"spans[{i}].state: {s['state']!r} is not one "
                             f"of {', '.join(map(repr, _LISTED_STATES))}")
    _check_object(doc["stats"], _STATS, "stats")
    _check_object(doc["stats"],
                  _present(_STATS_ALL, _STATS_LATER, doc["stats"]), "stats")
    by_size = doc["stats"].get("by_size")
    if not isinstance(by_size, list):
        raise ValueError("stats.by_size: expected a list")
    _check_list(by_size, _BY_SIZE, "stats.by_size")
    _check_list(doc["centrals"], _CENTRAL, "centrals")
    _check_list(doc["caches"], _CACHE, "caches")
    for i, c in enumerate(doc["caches"]):
        if not isinstance(c.get("alloc"), list):
            raise ValueError(f"caches[{i}].alloc: expected a list")
        _check_list(c["alloc"], _CACHE_ALLOC, f"caches[{i}].alloc")
    _check_object(doc["fragmentation"], _FRAG, "fragmentation")
    # added after version 1's first writers: checked when present
    if "gc" in doc:
        _check_object(doc["gc"], _GC, "gc")
    if "gc_cycles" in doc:
        if not isinstance(doc["gc_cycles"], list):
            raise ValueError("gc_cycles: expected a list")
        _check_list(doc["gc_cycles"], _GC_CYCLE, "gc_cycles")
    if "live_by_class" in doc:
        if not isinstance(doc["live_by_class"], list):
            raise ValueError("live_by_class: expected a list")
        _check_list(doc["live_by_class"], _LIVE_CLASS, "live_by_class")


# ---- diff -------------------------------------------------------------------

from .snapshot_diff import ClassChange, SnapshotDiff, diff  # noqa: E402

__all__ += ["diff", "SnapshotDiff", "ClassChange"]
