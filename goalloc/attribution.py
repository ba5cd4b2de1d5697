"""Which code allocates the waste: call sites, from memray captures.

memray (https://bloomberg.github.io/memray/) records every allocation of
a Python program with its stack.  ``read_memray`` imports its capture
file, through memray's own reader (``memray.FileReader``), as a Trace
with a call-site column; ``site_table`` says, per call site, what its
objects asked for and what Go 1.13's size classes make them hold:

    $ memray run --trace-python-allocators -o run.bin script.py

    >>> trace = goalloc.attribution.read_memray("run.bin")
    >>> goalloc.attribution.site_table(trace).head()

Without ``--trace-python-allocators`` (or ``PYTHONMALLOC=malloc``)
memray sees only what reaches malloc: pymalloc's 256 KiB arenas and the
objects above 512 bytes, not each small object.  The import follows
goalloc.capture's rules: each allocation is a fresh id; a free frees the
id its address was last allocated as (a free of an address not
allocated in the capture is skipped and counted); an allocation at an
address still live first frees the stale id (counted); realloc is the
free and the allocation memray records; threads are numbered in order of
first appearance and thread i allocates through P ``i % procs``.
mmap and munmap records are not malloc and are skipped (counted).
"""
from __future__ import annotations

import functools
import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from . import _core
from ._pandas import pandas
from .trace import ALLOC, FREE, PathLike, Trace, TraceError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["MemrayInfo", "read_memray", "convert_memray", "site_table",
           "held_bytes", "lifetimes", "NO_FRAME"]

# the call site of an allocation memray saw no frame for (made before
# the first Python frame, or by a thread with none)
NO_FRAME = "<no frame>"

# memray.AllocatorType's names, by what the import does with them
_FREES = {"FREE", "PYMALLOC_FREE"}
_SKIPPED = {"MMAP", "MUNMAP"}


@dataclass(frozen=True)
class MemrayInfo:
    """What convert_memray read: records in the file, allocs and frees
    in the trace, threads, call sites, and the records it could not use
    (frees of addresses not allocated in the capture, allocations over
    a live address, mmap/munmap)."""

    records: int
    allocs: int
    frees: int
    threads: int
    sites: int
    unmatched_frees: int
    implicit_frees: int
    skipped_mmap: int
    python_allocator: str
    native: bool


def _memray() -> Any:
    try:
        # by name: mypy then needs memray neither installed nor typed
        memray = importlib.import_module("memray")
    except ImportError as e:
        raise ImportError("reading memray captures needs memray: pip "
                          "install memray", name="memray") from e
    return memray


def convert_memray(path: PathLike, procs: int = 1, noscan: bool = False,
                   depth: int = 1,
                   native: bool = False) -> tuple[Trace, MemrayInfo]:
    """(Trace with call sites, MemrayInfo) from a ``memray run`` capture
    file (its default format, every allocation in order).

    procs: Ps to spread the threads over; noscan: mark every object
    noscan (tiny objects then go to the tiny allocator).  depth: frames
    per call site, innermost first, joined by " < ", each
    ``function (file:line)``.  native: the native (C) stack instead of
    the Python one (the capture must be made with ``memray run
    --native``).  TraceError for an aggregated capture (``--aggregate``
    keeps no order), ValueError for bad arguments, and memray's own
    errors for a file that is not its capture."""
    memray = _memray()
    if procs < 1 or depth < 1:
        raise ValueError(f"procs and depth must be >= 1, not {procs}, "
                         f"{depth}")
    reader = memray.FileReader(str(path))
    try:
        meta = reader.metadata
        if meta.file_format != memray.FileFormat.ALL_ALLOCATIONS:
            raise TraceError(f"{path}: an aggregated memray capture "
                             f"({meta.file_format.name}) keeps no order of "
                             f"allocations: capture without --aggregate", 0)
        if native and not meta.has_native_traces:
            raise ValueError(f"{path}: no native stacks: capture with "
                             f"memray run --native")
        names = {int(v): k for k, v in
                 memray.AllocatorType.__members__.items()}
        conv = _Converter(procs, depth, native)
        for rec in reader.get_allocation_records():
            conv.add(rec, names[int(rec.allocator)])
    finally:
        reader.close()
    n = len(conv.kind)
    trace = Trace(np.array(conv.kind, dtype=np.uint8),
                  np.array(conv.ids, dtype=np.uint64),
                  np.array(conv.size, dtype=np.uint64),
                  np.full(n, noscan, dtype=bool) if n else None,
                  np.array(conv.p, dtype=np.uint16),
                  np.array(conv.site, dtype=np.uint32), conv.site_names)
    allocs = int(np.count_nonzero(trace.kind == ALLOC))
    info = MemrayInfo(conv.records, allocs, n - allocs, len(conv.threads),
                      len(conv.site_names), conv.unmatched,
                      conv.implicit, conv.skipped, meta.python_allocator,
                      native)
    return trace, info


def read_memray(path: PathLike, procs: int = 1, noscan: bool = False,
                depth: int = 1, native: bool = False) -> Trace:
    """The Trace of a memray capture, with call sites (convert_memray)."""
    return convert_memray(path, procs, noscan, depth, native)[0]


class _Converter:
    """memray records to trace columns, one record at a time."""

    def __init__(self, procs: int, depth: int, native: bool) -> None:
        self.procs, self.depth, self.native = procs, depth, native
        self.kind: list[int] = []
        self.ids: list[int] = []
        self.size: list[int] = []
        self.p: list[int] = []
        self.site: list[int] = []
        self.site_names: list[str] = []
        self._site_index: dict[str, int] = {}
        self._stack_site: dict[int, int] = {}
        self.live: dict[int, tuple[int, int]] = {}  # address: (id, site)
        self.threads: dict[int, int] = {}
        self.records = self.unmatched = self.implicit = self.skipped = 0
        self.nallocs = 0

    def add(self, rec: Any, allocator: str) -> None:
        self.records += 1
        if allocator in _SKIPPED:
            self.skipped += 1
            return
        addr = rec.address
        if allocator in _FREES:
            held = self.live.pop(addr, None)
            if held is None:
                self.unmatched += 1
            else:
                self._op(FREE, held[0], 0, 0, held[1])
            return
        stale = self.live.pop(addr, None)
        if stale is not None:  # its free went unrecorded
            self.implicit += 1
            self._op(FREE, stale[0], 0, 0, stale[1])
        tid = self.threads.setdefault(rec.tid, len(self.threads))
        site = self._site_of(rec)
        new_id = self.nallocs  # ids are dense from 0 in allocation order
        self.live[addr] = (new_id, site)
        self._op(ALLOC, new_id, rec.size, tid % self.procs, site)

    def _op(self, kind: int, id_: int, size: int, p: int,
            site: int) -> None:
        self.kind.append(kind)
        self.ids.append(id_)
        self.size.append(size)
        self.p.append(p)
        self.site.append(site)
        if kind == ALLOC:
            self.nallocs += 1

    def _site_of(self, rec: Any) -> int:
        key = rec.native_stack_id if self.native else rec.stack_id
        site = self._stack_site.get(key)
        if site is None:
            frames = (rec.native_stack_trace(max_stacks=self.depth)
                      if self.native else
                      rec.stack_trace(max_stacks=self.depth))
            name = " < ".join(f"{f} ({file}:{line})"
                              for f, file, line in frames) or NO_FRAME
            site = self._site_index.setdefault(name, len(self.site_names))
            if site == len(self.site_names):
                self.site_names.append(name)
            self._stack_site[key] = site
        return site


# ---- what each call site's objects hold -----------------------------------

@functools.lru_cache(maxsize=1)
def _class_sizes() -> np.ndarray:
    """The bytes a small object of each size 0..MAX_SMALL_SIZE holds:
    its size class's size (Go's roundupsize)."""
    sizes = [c.size for c in _size_classes()]
    return np.array([sizes[_core.size_to_class(n)]
                     for n in range(_core.MAX_SMALL_SIZE + 1)],
                    dtype=np.uint64)


def _size_classes() -> Any:
    from .sizeclasses import size_classes

    return size_classes()


def held_bytes(size: Any, noscan: Any = False) -> np.ndarray:
    """The bytes Go 1.13 gives objects of these sizes: a small object its
    size class's size, a large one whole pages (Go's roundupsize); a
    noscan object under 16 bytes its own size (the tiny allocator packs
    them into shared 16-byte blocks); size 0 nothing (zerobase)."""
    size = np.asarray(size, dtype=np.uint64)
    noscan = np.broadcast_to(np.asarray(noscan, dtype=bool), size.shape)
    small = size <= _core.MAX_SMALL_SIZE
    page = np.uint64(_core.PAGE_SIZE)
    out = np.where(small, 0, (size + page - 1) // page * page)
    out[small] = _class_sizes()[size[small]]
    tiny = noscan & (size < _core.TINY_SIZE)
    out[tiny] = size[tiny]
    return out.astype(np.uint64)


def lifetimes(trace: Trace) -> np.ndarray:
    """For each op, if it is an alloc that the trace frees later: the
    ops from it to that free (the free's index minus the alloc's);
    -1 for the rest (frees, and objects live at the end)."""
    n = len(trace)
    out = np.full(n, -1, dtype=np.int64)
    if n < 2:
        return out
    # each id's ops in time order: alloc, free, alloc, free, ...
    order = np.argsort(trace.id, kind="stable")
    k, ids = trace.kind[order], trace.id[order]
    pair = (k[:-1] == ALLOC) & (k[1:] == FREE) & (ids[:-1] == ids[1:])
    a, f = order[:-1][pair], order[1:][pair]
    out[a] = f.astype(np.int64) - a.astype(np.int64)
    return out


def site_table(trace: Trace) -> pd.DataFrame:
    """One row per call site of a trace with call sites, the sites that
    hold most bytes first (goalloc[pandas]):

    objects (allocations), bytes_requested, bytes_held (after size-class
    rounding: held_bytes), waste_bytes (held - requested), waste_ratio
    (waste / held), live_at_end and live_held_at_end (objects the trace
    never frees, and the bytes they hold), lifetime_mean,
    lifetime_median, lifetime_max (ops from allocation to free, over
    the freed objects; NaN when none was freed).

    ValueError for a trace without call sites."""
    pd_ = pandas("goalloc.attribution.site_table")
    if trace.site is None or trace.sites is None:
        raise ValueError("this trace has no call sites (read one with "
                         "goalloc.attribution.read_memray)")
    allocs = trace.kind == ALLOC
    requested = trace.size[allocs]
    held = held_bytes(requested, trace.noscan[allocs].astype(bool))
    life = lifetimes(trace)[allocs]
    freed = life >= 0
    df = pd_.DataFrame({
        "site": trace.site[allocs],
        "bytes_requested": requested.astype(np.int64),
        "bytes_held": held.astype(np.int64),
        "live": (~freed).astype(np.int64),
        "live_held": np.where(freed, 0, held).astype(np.int64),
        "lifetime": np.where(freed, life, np.nan)})
    g = df.groupby("site", sort=False)
    out = pd_.DataFrame({
        "objects": g.size(),
        "bytes_requested": g["bytes_requested"].sum(),
        "bytes_held": g["bytes_held"].sum(),
        "live_at_end": g["live"].sum(),
        "live_held_at_end": g["live_held"].sum(),
        "lifetime_mean": g["lifetime"].mean(),
        "lifetime_median": g["lifetime"].median(),
        "lifetime_max": g["lifetime"].max()})
    out.insert(3, "waste_bytes", out["bytes_held"] - out["bytes_requested"])
    out.insert(4, "waste_ratio",
               out["waste_bytes"] / out["bytes_held"].where(
                   out["bytes_held"] > 0))
    names = np.array(trace.sites, dtype=object)
    out.index = pd_.Index(names[out.index.to_numpy(dtype=np.int64)],
                          name="site")
    result: pd.DataFrame = out.sort_values(
        ["bytes_held", "objects"], ascending=False, kind="stable")
    return result
