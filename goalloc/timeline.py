"""Timeline: what a replay sampled, as NumPy arrays.

A Timeline is written with ``save`` and read back with ``Timeline.load``
in three formats, chosen by the file name:

========  ================================================================
suffix    what it holds
========  ================================================================
``.json`` everything: ``{"schema": "goalloc.timeline/1", "nops": N,
          "columns": {name: [value per sample]}, "addresses": [...],
          "live": [...]}``; the columns are ``op``, the counters
          (``COUNTER_FIELDS``) and the fragmentation metrics (NaN as
          null); addresses and live are per id (addresses and live came
          after version 1's first writers: a file without them loads
          with no ids)
``.npz``  everything, as NumPy arrays (``numpy.savez_compressed``):
          compact and exact for millions of ids
``.csv``  the per-sample columns only, one row per sample: the ids'
          addresses and live flags are not in it, so a CSV loads with
          no ids (``len(tl.addresses) == 0``)
========  ================================================================

The fragmentation metrics are a function of the counters
(goalloc.fragmentation), so ``load`` computes them again rather than
trusting the file's copy.
"""
from __future__ import annotations

import csv
import json
import os
import zipfile
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Union

import numpy as np

from . import fragmentation
from ._bulk import uint64_column
from ._core import GoallocError
from .trace import COUNTER_FIELDS

# The counters the collector drives (the last five of COUNTER_FIELDS).
GC_COLUMNS = ("heap_live", "heap_marked", "gc_trigger", "next_gc", "num_gc")

if TYPE_CHECKING:
    import pandas as pd

PathLike = Union[str, "os.PathLike[str]"]

TIMELINE_SCHEMA = "goalloc.timeline/1"


class TimelineError(GoallocError, ValueError):
    """A file that is not a goalloc timeline (Timeline.load)."""


@dataclass
class Timeline:
    """Heap counters and fragmentation metrics sampled during a replay.

    Each array has one entry per sample; ``op`` is the index of the last
    op applied before the sample (-1 for the initial sample, taken before
    any op).  ``addresses[id]`` is the address the latest allocation of id
    got, and ``live[id]`` whether id was still allocated at the end.
    """

    op: np.ndarray
    heap_alloc: np.ndarray
    heap_inuse: np.ndarray
    heap_idle: np.ndarray
    heap_released: np.ndarray
    heap_sys: np.ndarray
    live_objects: np.ndarray
    requested_live: np.ndarray
    largest_free: np.ndarray
    # the collector's pacing (collector="gc"; an explicit-free heap keeps
    # gcinit's values): heap_live, the last cycle's heap_marked, the
    # trigger and goal (-1: GOGC=off, Go's ^0), completed cycles
    heap_live: np.ndarray
    heap_marked: np.ndarray
    gc_trigger: np.ndarray
    next_gc: np.ndarray
    num_gc: np.ndarray
    addresses: np.ndarray
    live: np.ndarray
    nops: int
    metrics: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_samples(cls, ops: np.ndarray, samples: np.ndarray,
                     initial: np.ndarray, addresses: np.ndarray,
                     live: np.ndarray, nops: int) -> Timeline:
        ops = np.concatenate([[-1], ops.astype(np.int64)])
        rows = np.vstack([initial[None, :], samples]).astype(np.int64)
        cols: dict[str, Any] = {name: rows[:, i]
                                for i, name in enumerate(COUNTER_FIELDS)}
        t = cls(op=ops, addresses=addresses, live=live, nops=nops, **cols)
        t.metrics = fragmentation.compute(
            t.heap_alloc, t.heap_inuse, t.heap_idle, t.heap_released,
            t.heap_sys, t.requested_live, t.largest_free)
        return t

    def __len__(self) -> int:
        return len(self.op)

    @property
    def internal_waste(self) -> np.ndarray:
        """heap_alloc - requested_live: bytes lost to rounding, per sample."""
        waste: np.ndarray = self.heap_alloc - self.requested_live
        return waste

    def columns(self) -> dict[str, np.ndarray]:
        """Every per-sample column, counters first, then the metrics."""
        out = {"op": self.op}
        for name in COUNTER_FIELDS:
            out[name] = getattr(self, name)
        out.update(self.metrics)
        return out

    def to_pandas(self) -> pd.DataFrame:
        """The per-sample columns as a pandas DataFrame, one row per
        sample (``columns()``: op, the counters, the fragmentation
        metrics).  The ids' addresses and live flags are per id, not per
        sample: ``pd.DataFrame({"address": tl.addresses, "live":
        tl.live})``.  Needs pandas (pip install 'goalloc[pandas]')."""
        from ._pandas import pandas

        pd_ = pandas("Timeline.to_pandas")
        df: pd.DataFrame = pd_.DataFrame(self.columns())
        df.index.name = "sample"
        return df

    def equals(self, other: object) -> bool:
        """Whether other is a Timeline with the same samples, ids and op
        count (metrics compared with NaN equal to NaN)."""
        if not isinstance(other, Timeline) or self.nops != other.nops:
            return False
        mine, theirs = self.columns(), other.columns()
        if mine.keys() != theirs.keys():
            return False
        for name, col in mine.items():
            if not np.array_equal(col, theirs[name],
                                  equal_nan=col.dtype.kind == "f"):
                return False
        return (np.array_equal(self.addresses, other.addresses)
                and np.array_equal(self.live, other.live))

    def to_csv(self, path: PathLike) -> None:
        cols = self.columns()
        with open(path, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(cols)
            for row in zip(*(c.tolist() for c in cols.values()), strict=True):
                w.writerow(row)

    def to_json(self, path: PathLike) -> None:
        doc = {
            "schema": TIMELINE_SCHEMA,
            "nops": self.nops,
            "columns": {k: [None if isinstance(x, float) and x != x else x
                            for x in v.tolist()]
                        for k, v in self.columns().items()},
            "addresses": self.addresses.tolist(),
            "live": self.live.astype(np.uint8).tolist(),
        }
        with open(path, "w") as f:
            json.dump(doc, f)

    def to_npz(self, path: PathLike) -> None:
        """Everything, as compressed NumPy arrays (see the module doc)."""
        arrays = {f"counter_{name}": getattr(self, name)
                  for name in COUNTER_FIELDS}
        with open(path, "wb") as f:
            np.savez_compressed(
                f, schema=np.array(TIMELINE_SCHEMA), op=self.op,
                nops=np.array(self.nops, dtype=np.int64),
                addresses=self.addresses,
                live=self.live.astype(np.bool_), **arrays)

    def save(self, path: PathLike) -> None:
        """CSV for ``.csv``, NumPy for ``.npz``, JSON otherwise (see the
        module doc: only JSON and NPZ hold the ids)."""
        name = os.fspath(path)
        if name.endswith(".csv"):
            self.to_csv(path)
        elif name.endswith(".npz"):
            self.to_npz(path)
        else:
            self.to_json(path)

    @classmethod
    def load(cls, path: PathLike) -> Timeline:
        """Read a Timeline that ``save`` wrote: CSV for ``.csv``, NumPy
        for ``.npz``, JSON otherwise.  TimelineError (a ValueError) for
        a file that is not one; OSError when it cannot be read."""
        name = os.fspath(path)
        if name.endswith(".csv"):
            return _load_csv(name)
        if name.endswith(".npz"):
            return _load_npz(name)
        return _load_json(name)

    @classmethod
    def from_columns(cls, columns: dict[str, Any], nops: int,
                     addresses: Any = (), live: Any = ()) -> Timeline:
        """A Timeline from per-sample columns (``op`` and every counter
        of COUNTER_FIELDS; other columns are ignored: the metrics are
        computed from the counters) and the per-id tables.  TimelineError
        for missing columns, columns of different lengths or values that
        are no integers in range."""
        def ints(what: str, values: Any, dtype: Any) -> np.ndarray:
            try:
                a = np.asarray(values)
                if a.ndim != 1:
                    raise ValueError(f"{a.ndim}-D")
                if a.size and a.dtype.kind not in "iub":
                    raise ValueError(f"not integers ({a.dtype})")
                info = np.iinfo(dtype)
                if a.size and (int(a.min()) < info.min
                               or int(a.max()) > info.max):
                    raise ValueError(f"out of range for {np.dtype(dtype)}")
                return a.astype(dtype)
            except (ValueError, TypeError, OverflowError) as e:
                raise TimelineError(f"timeline column {what!r}: {e}") \
                    from None

        names = ("op", *COUNTER_FIELDS)
        if not any(n in columns for n in GC_COLUMNS) and "op" in columns:
            # written before the GC columns existed: no cycle ran
            zeros = np.zeros(len(columns["op"]), dtype=np.int64)
            columns = {**columns, **dict.fromkeys(GC_COLUMNS, zeros)}
        missing = [n for n in names if n not in columns]
        if missing:
            raise TimelineError(f"timeline: missing column(s) "
                                f"{', '.join(missing)}")
        cols = {n: ints(n, columns[n], np.int64) for n in names}
        lengths = {len(c) for c in cols.values()}
        if len(lengths) != 1:
            raise TimelineError(f"timeline: columns of different lengths "
                                f"{sorted(lengths)}")
        if isinstance(nops, bool) or not isinstance(nops, (int, np.integer)) \
                or nops < 0:
            raise TimelineError(f"timeline: nops must be an int >= 0, not "
                                f"{nops!r}")
        try:
            # NumPy makes float64 of Python ints past 2**63 mixed with
            # smaller ones: uint64_column converts them exactly
            addr, bad = uint64_column(addresses, "addresses")
        except (TypeError, ValueError) as e:
            raise TimelineError(f"timeline: {e}") from None
        if bad is not None:
            raise TimelineError(f"timeline column 'addresses': {bad} is "
                                f"out of range for uint64")
        flags = ints("live", live, np.uint8)
        if len(addr) != len(flags):
            raise TimelineError(f"timeline: {len(addr)} addresses but "
                                f"{len(flags)} live flags")
        if flags.size and int(flags.max()) > 1:
            raise TimelineError("timeline: live flags must be 0 or 1")
        counters: dict[str, Any] = {n: cols[n] for n in COUNTER_FIELDS}
        t = cls(op=cols["op"], addresses=addr, live=flags.view(np.bool_),
                nops=int(nops), **counters)
        t.metrics = fragmentation.compute(
            t.heap_alloc, t.heap_inuse, t.heap_idle, t.heap_released,
            t.heap_sys, t.requested_live, t.largest_free)
        return t

    def __repr__(self) -> str:
        if len(self) == 0:
            return f"<goalloc.Timeline no samples over {self.nops} ops>"
        return (f"<goalloc.Timeline {len(self)} samples over {self.nops} ops, "
                f"final heap_alloc={int(self.heap_alloc[-1])}>")


def _load_json(path: str) -> Timeline:
    with open(path, encoding="utf-8") as f:
        try:
            doc = json.load(f)
        except (ValueError, RecursionError) as e:
            raise TimelineError(f"{path}: not a goalloc timeline: {e}") \
                from None
    if not isinstance(doc, dict) or doc.get("schema") != TIMELINE_SCHEMA:
        schema = doc.get("schema") if isinstance(doc, dict) else None
        raise TimelineError(f"{path}: not a goalloc timeline: schema is "
                            f"{schema!r}, expected {TIMELINE_SCHEMA!r}")
    columns = doc.get("columns")
    if not isinstance(columns, dict):
        raise TimelineError(f"{path}: 'columns' must be an object")
    nops: Any = doc.get("nops")
    try:
        return Timeline.from_columns(columns, nops,
                                     doc.get("addresses", ()),
                                     doc.get("live", ()))
    except TimelineError as e:
        raise TimelineError(f"{path}: {e}") from None


def _load_npz(path: str) -> Timeline:
    with open(path, "rb") as f:  # OSError for a file that cannot be read
        try:
            loaded = np.load(f, allow_pickle=False)
            if not isinstance(loaded, np.lib.npyio.NpzFile):
                raise ValueError("a single array, not an .npz archive")
            with loaded as z:
                arrays = {k: z[k] for k in z.files}
        except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
            raise TimelineError(f"{path}: not a goalloc timeline: {e}") \
                from None
    schema = arrays.get("schema")
    if schema is None or schema.shape != () or str(schema) != TIMELINE_SCHEMA:
        raise TimelineError(f"{path}: not a goalloc timeline (no schema "
                            f"{TIMELINE_SCHEMA!r})")
    cols = {k[len("counter_"):]: v for k, v in arrays.items()
            if k.startswith("counter_")}
    if "op" in arrays:
        cols["op"] = arrays["op"]
    nops = arrays.get("nops")
    if nops is None or nops.shape != () or nops.dtype.kind not in "iu":
        raise TimelineError(f"{path}: nops must be an integer")
    try:
        return Timeline.from_columns(cols, int(nops),
                                     arrays.get("addresses", ()),
                                     arrays.get("live", ()))
    except TimelineError as e:
        raise TimelineError(f"{path}: {e}") from None


def _load_csv(path: str) -> Timeline:
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    if not rows:
        raise TimelineError(f"{path}: empty, not a goalloc timeline")
    header, body = rows[0], rows[1:]
    if "op" not in header:
        raise TimelineError(f"{path}: not a goalloc timeline: no 'op' "
                            f"column in the header")
    cols: dict[str, list[int]] = {}
    for name in ("op", *COUNTER_FIELDS):
        if name not in header:
            raise TimelineError(f"{path}: missing column {name!r}")
        j = header.index(name)
        try:
            cols[name] = [int(r[j]) for r in body]
        except (ValueError, IndexError):
            bad = next(i for i, r in enumerate(body, 2)
                       if len(r) <= j or not _is_int(r[j]))
            raise TimelineError(f"{path}: line {bad}: column {name!r} is "
                                f"no integer") from None
    # A CSV holds the samples only; nops is the op after the last sample
    # (a replay always samples after its last op).
    nops = cols["op"][-1] + 1 if body else 0
    return Timeline.from_columns(cols, nops)


def _is_int(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return False
    return True
