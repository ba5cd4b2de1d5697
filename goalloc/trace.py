"""Allocation traces and their replay in C.

A trace is a log of operations on object ids:

    alloc(id, size, noscan, p)   allocate size bytes through P p as object id
    free(id)                     free object id

held as NumPy columns (``kind``, ``id``, ``size``, ``noscan``, ``p``), so a
ten-million-op trace is a few hundred MiB at most and replays in C with no
Python call per op (``Heap.replay``).

File formats (both little endian, versioned):

* text (``.trace`` / ``.txt``): a first line ``# goalloc trace v1``, then one
  op per line: ``a ID SIZE NOSCAN P`` (NOSCAN is 0 or 1) or ``f ID``; blank
  lines and lines starting with ``#`` are ignored.
* binary (``.gatrace``): the 8 bytes ``GATRACE1``, a uint64 op count n,
  then the columns one after another: kind u8[n] (0 alloc, 1 free),
  noscan u8[n], p u16[n], id u64[n], size u64[n].  A trace with call
  sites starts ``GATRACE2`` and has two more parts after those columns:
  site u32[n], then a uint64 byte count m and m bytes of UTF-8 JSON, the
  list of call-site names (``sites``).  The text format has no call
  sites.

Call sites (``Trace.site``, ``Trace.sites``): optional, from importers
that know where each allocation was made (goalloc.attribution's memray
import).  ``site[i]`` indexes ``sites``: for an alloc, where it was
made; for a free, where the object it frees was made.
"""
from __future__ import annotations

import json
import operator
import os
import struct
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Union

import numpy as np

from . import _core
from ._bulk import uint64_column
from ._core import GoallocError

if TYPE_CHECKING:
    from .timeline import Timeline

ALLOC = 0
FREE = 1
TEXT_HEADER = "# goalloc trace v1"
BINARY_MAGIC = b"GATRACE1"
BINARY_MAGIC_SITES = b"GATRACE2"  # with the call-site column and names
# the binary format's columns after the header, in file order: (name,
# dtype, bytes per op)
_BINARY_COLUMNS = (("kind", "<u1", 1), ("noscan", "<u1", 1),
                   ("p", "<u2", 2), ("id", "<u8", 8), ("size", "<u8", 8))
_BINARY_OP_BYTES = sum(w for _, _, w in _BINARY_COLUMNS)

# A replay keeps two tables indexed by id (the address of each id, 8
# bytes, and whether it is live, 1 byte): ids must be below this, 18 GiB
# of (lazily zeroed) tables at most.  Sparse ids (addresses, hashes) are
# numbered densely first: Trace.renumbered().
MAX_REPLAY_ID = (1 << 31) - 1

PathLike = Union[str, "os.PathLike[str]"]


class TraceError(GoallocError, ValueError):
    """A malformed trace file, or a trace op that cannot be replayed.

    ``index`` is the op (or, for files, the line) where the problem is.
    """

    def __init__(self, message: str, index: int | None = None) -> None:
        super().__init__(message)
        self.index = index


@dataclass(frozen=True)
class Op:
    """One trace op, as iteration over a Trace yields it."""

    kind: int
    id: int
    size: int = 0
    noscan: bool = False
    p: int = 0


class Trace:
    """An allocation trace: parallel NumPy columns, one entry per op.

    ``Trace(kind, id, size=None, noscan=None, p=None)``: each column a 1-D
    NumPy array of any integer dtype, a buffer or a sequence of ints
    (noscan may also be bools); None is all zeros.  The columns are
    converted to the file format's widths (kind, noscan: uint8; p:
    uint16; id, size: uint64), checked first: TypeError for values that
    are not integers (floats, float arrays, strings), ValueError for 2-D
    input or columns of different lengths, and TraceError (a ValueError)
    with ``.index``, the op, for a value outside its column's range: a
    negative id, size or p, p >= 2**16, kind or noscan other than 0 or 1.

    site and sites (optional, together): each op's call site, an index
    into sites, the call sites' names (uint32; TraceError for an index
    not below len(sites)).  Without them ``site`` and ``sites`` are
    None.
    """

    __slots__ = ("kind", "id", "size", "noscan", "p", "site", "sites")

    site: np.ndarray | None
    sites: tuple[str, ...] | None

    def __init__(self, kind: Any, id: Any, size: Any = None,
                 noscan: Any = None, p: Any = None, site: Any = None,
                 sites: Sequence[str] | None = None) -> None:
        self.kind = _column(kind, 0, np.uint8, "kind")
        n = len(self.kind)
        self.id = _column(id, n, np.uint64, "id")
        self.size = _column(size, n, np.uint64, "size")
        self.noscan = _column(noscan, n, np.uint8, "noscan")
        self.p = _column(p, n, np.uint16, "p")
        for name in ("id", "size", "noscan", "p"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"column {name!r} has "
                                 f"{len(getattr(self, name))} entries, "
                                 f"kind has {n}")
        self.site, self.sites = _site_column(site, sites, n)

    @property
    def has_sites(self) -> bool:
        """Whether the trace has a call-site column."""
        return self.sites is not None

    def site_names(self) -> np.ndarray:
        """Each op's call site as a string (an object array); ValueError
        for a trace without call sites."""
        if self.site is None or self.sites is None:
            raise ValueError("this trace has no call sites")
        names = np.array(self.sites, dtype=object)
        return names[self.site] if len(names) else \
            np.array([], dtype=object)

    # ---- building -------------------------------------------------------

    @classmethod
    def from_ops(cls, ops: Iterable[Sequence[Any]]) -> Trace:
        """From tuples ("alloc", id, size[, noscan[, p]]) and ("free", id).

        As Trace(): TypeError for a field that is not an int (noscan: a
        bool or 0/1), TraceError with ``.index`` for an unknown op or a
        value out of its column's range."""
        kind, ids, size, noscan, p = [], [], [], [], []
        for i, op in enumerate(ops):
            name = op[0]
            if name in ("alloc", "a", ALLOC):
                if len(op) < 3:
                    raise TraceError(f"op {i}: alloc needs id and size", i)
                kind.append(ALLOC)
                ids.append(_op_int(op[1], 64, i, "id"))
                size.append(_op_int(op[2], 64, i, "size"))
                noscan.append(_op_bool(op[3], i) if len(op) > 3 else False)
                p.append(_op_int(op[4], 16, i, "p") if len(op) > 4 else 0)
            elif name in ("free", "f", FREE):
                kind.append(FREE)
                ids.append(_op_int(op[1], 64, i, "id"))
                size.append(0)
                noscan.append(False)
                p.append(0)
            else:
                raise TraceError(f"op {i}: unknown op {name!r}", i)
        return cls(kind, ids, size, noscan, p)

    def __len__(self) -> int:
        return len(self.kind)

    def __iter__(self) -> Iterator[Op]:
        for k, i, s, n, p in zip(self.kind.tolist(), self.id.tolist(),
                                 self.size.tolist(), self.noscan.tolist(),
                                 self.p.tolist(), strict=True):
            yield Op(k, i, s, bool(n), p)

    def __getitem__(self, sl: slice) -> Trace:
        if not isinstance(sl, slice):
            raise TypeError("index a Trace with a slice")
        return Trace(self.kind[sl], self.id[sl], self.size[sl],
                     self.noscan[sl], self.p[sl],
                     None if self.site is None else self.site[sl],
                     self.sites)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Trace):
            return NotImplemented
        if self.sites != other.sites:
            return False
        return all(np.array_equal(getattr(self, c), getattr(other, c))
                   for c in self.__slots__ if c != "sites")

    def __repr__(self) -> str:
        n = len(self)
        allocs = int(np.count_nonzero(self.kind == ALLOC))
        sites = "" if self.sites is None else \
            f", {len(self.sites)} call sites"
        return (f"<goalloc.Trace {n} ops: {allocs} allocs, {n - allocs} "
                f"frees{sites}>")

    @property
    def nids(self) -> int:
        """One more than the largest id (the size of id-indexed tables)."""
        return int(self.id.max()) + 1 if len(self) else 0

    def renumbered(self) -> tuple[Trace, np.ndarray]:
        """(trace, ids): the same ops with the ids numbered densely from 0
        in increasing order of the old ids, and ids[new] = old id.  For
        traces with sparse ids (addresses, hashes), which a replay cannot
        index (ids must be at most MAX_REPLAY_ID)."""
        ids, inverse = np.unique(self.id, return_inverse=True)
        dense = Trace(self.kind, inverse.reshape(-1).astype(np.uint64),
                      self.size, self.noscan, self.p, self.site, self.sites)
        return dense, ids

    # ---- files ----------------------------------------------------------

    def write_text(self, path: PathLike) -> None:
        """The text format; ValueError (nothing written) for a trace with
        call sites, which the text format cannot hold."""
        if self.sites is not None:
            raise ValueError("the text trace format has no call sites: "
                             "save as .gatrace (binary), or drop them with "
                             "Trace(t.kind, t.id, t.size, t.noscan, t.p)")
        with open(path, "w", encoding="ascii") as f:
            f.write(TEXT_HEADER + "\n")
            for op in self:
                if op.kind == ALLOC:
                    f.write(f"a {op.id} {op.size} {int(op.noscan)} {op.p}\n")
                else:
                    f.write(f"f {op.id}\n")

    @classmethod
    def read_text(cls, path: PathLike) -> Trace:
        ops: list[tuple[Any, ...]] = []
        with open(path, encoding="ascii", errors="replace") as f:
            first = f.readline().rstrip("\n")
            if first != TEXT_HEADER:
                raise TraceError(f"{os.fspath(path)}: line 1: expected "
                                 f"{TEXT_HEADER!r}", 1)
            for lineno, line in enumerate(f, start=2):
                words = line.split()
                if not words or words[0].startswith("#"):
                    continue
                ops.append(_parse_line(words, path, lineno))
        return cls.from_ops(ops)

    def to_bytes(self) -> bytes:
        """The binary format (``.gatrace``) as bytes: 20 bytes per op
        and a 16-byte header (and with call sites, 4 bytes per op and
        their names)."""
        magic = BINARY_MAGIC if self.sites is None else BINARY_MAGIC_SITES
        parts = [magic, struct.pack("<Q", len(self))]
        for col, dt, _ in _BINARY_COLUMNS:
            parts.append(getattr(self, col).astype(dt, copy=False).tobytes())
        if self.site is not None:
            names = json.dumps(list(self.sites or ())).encode()
            parts += [self.site.astype("<u4", copy=False).tobytes(),
                      struct.pack("<Q", len(names)), names]
        return b"".join(parts)

    @classmethod
    def from_bytes(cls, data: Any, name: str = "<bytes>") -> Trace:
        """A trace from the binary format's bytes (any buffer), checked
        as read_binary checks a file: TraceError (naming ``name``) for
        bad magic, a wrong length or a value out of its column's
        range."""
        data = memoryview(data).cast("B")
        magic = bytes(data[:8])
        if magic not in (BINARY_MAGIC, BINARY_MAGIC_SITES):
            raise TraceError(f"{name}: not a goalloc binary trace "
                             f"(magic {magic!r})", 0)
        if len(data) < 16:
            raise TraceError(f"{name}: truncated header", 0)
        (n,) = struct.unpack_from("<Q", data, 8)
        need = 16 + n * _BINARY_OP_BYTES
        with_sites = magic == BINARY_MAGIC_SITES
        site = sites = None
        if with_sites:
            site, sites = _read_sites(data, need, n, name)
        elif len(data) != need:
            raise TraceError(f"{name}: {len(data)} bytes, expected {need} for "
                             f"{n} ops", 0)
        off = 16
        cols = {}
        for col, dt, width in _BINARY_COLUMNS:
            cols[col] = np.frombuffer(data, dtype=dt, count=n, offset=off)
            off += n * width
        try:
            return cls(cols["kind"], cols["id"], cols["size"],
                       cols["noscan"], cols["p"], site, sites)
        except TraceError as e:  # a kind or noscan byte beyond 1
            raise TraceError(f"{name}: {e}", e.index) from None

    def __reduce__(self) -> tuple[Any, ...]:
        # A Trace pickles as its binary format (what a sweep sends to a
        # worker process or a Dask worker): 20 bytes per op, checked
        # again by from_bytes when it is unpickled.
        return (_from_pickle, (self.to_bytes(),))

    def write_binary(self, path: PathLike) -> None:
        with open(path, "wb") as f:
            f.write(self.to_bytes())

    @classmethod
    def read_binary(cls, path: PathLike) -> Trace:
        with open(path, "rb") as f:
            data = f.read()
        return cls.from_bytes(data, os.fspath(path))

    def save(self, path: PathLike) -> None:
        """Binary for ``.gatrace``, text otherwise."""
        if os.fspath(path).endswith(".gatrace"):
            self.write_binary(path)
        else:
            self.write_text(path)

    @classmethod
    def load(cls, path: PathLike) -> Trace:
        """Read either format, recognised by its first bytes."""
        with open(path, "rb") as f:
            head = f.read(8)
        if head in (BINARY_MAGIC, BINARY_MAGIC_SITES):
            return cls.read_binary(path)
        return cls.read_text(path)


def _read_sites(data: memoryview, off: int, n: int,
                name: str) -> tuple[np.ndarray, list[str]]:
    """The call-site parts of a GATRACE2 file from offset off."""
    end = off + 4 * n + 8
    if len(data) < end:
        raise TraceError(f"{name}: {len(data)} bytes, too short for {n} "
                         f"ops with call sites", 0)
    site = np.frombuffer(data, dtype="<u4", count=n, offset=off)
    (m,) = struct.unpack_from("<Q", data, off + 4 * n)
    if len(data) != end + m:
        raise TraceError(f"{name}: {len(data)} bytes, expected {end + m} "
                         f"for {n} ops and {m} bytes of call-site names", 0)
    try:
        sites = json.loads(bytes(data[end:]).decode())
    except (UnicodeDecodeError, ValueError) as e:
        raise TraceError(f"{name}: call-site names: {e}", 0) from None
    if not isinstance(sites, list) or \
            not all(isinstance(x, str) for x in sites):
        raise TraceError(f"{name}: call-site names are not a list of "
                         f"strings", 0)
    return site, sites


def _site_column(site: Any, sites: Sequence[str] | None,
                 n: int) -> tuple[np.ndarray | None, tuple[str, ...] | None]:
    """The call-site column and names, checked (both or neither)."""
    if site is None and sites is None:
        return None, None
    if site is None or sites is None:
        raise TypeError("site and sites go together: give both or neither")
    if isinstance(sites, str) or \
            not all(isinstance(x, str) for x in sites):
        raise TypeError("sites must be a sequence of str")
    names = tuple(sites)
    col = _column(site, n, np.uint32, "site")
    if len(col) != n:
        raise ValueError(f"column 'site' has {len(col)} entries, kind has "
                         f"{n}")
    if n and int(col.max()) >= len(names):
        i = int(np.argmax(col >= len(names)))
        raise TraceError(f"op {i}: site {int(col[i])} is not an index of "
                         f"sites ({len(names)} names)", i)
    return col, names


def _from_pickle(data: bytes) -> Trace:
    return Trace.from_bytes(data, "<pickled goalloc.Trace>")


def _op_int(v: Any, bits: int, i: int, what: str) -> int:
    """An op's integer field: ints only (TypeError for floats and the
    like, as Trace() raises), in range (TraceError)."""
    try:
        n = operator.index(v)
    except TypeError:
        raise TypeError(f"op {i}: {what} must be an int, not "
                        f"{type(v).__name__}") from None
    if not 0 <= n < 1 << bits:
        raise TraceError(f"op {i}: {what} {n} is out of range", i)
    return n


def _op_bool(v: Any, i: int) -> bool:
    """An op's noscan: a bool, or an int 0 or 1 (as Trace() takes)."""
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    n = _op_int(v, 1, i, "noscan")
    return n == 1


# the largest value of each column, and what to say about one beyond it
_TOPS = {"kind": (FREE, "kind must be 0 (alloc) or 1 (free)"),
         "noscan": (1, "noscan must be 0 or 1"),
         "p": ((1 << 16) - 1, "p must be in 0..65535"),
         "id": ((1 << 64) - 1, "id must be in 0..2**64-1"),
         "size": ((1 << 64) - 1, "size must be in 0..2**64-1"),
         "site": ((1 << 32) - 1, "site must be in 0..2**32-1")}


def _column(values: Any, n: int, dtype: Any, name: str) -> np.ndarray:
    """values as a C-contiguous, aligned column of dtype (the C replay
    reads it in place; frombuffer on a binary file can give misaligned
    views), after the checks Trace's docstring lists: NumPy's own
    conversion would truncate floats and wrap negative values around."""
    if values is None:
        return np.zeros(n, dtype=dtype)
    top, rule = _TOPS[name]
    if name == "noscan":
        values = _bools_as_uint8(values)
    a = values
    if not (isinstance(a, np.ndarray) and a.ndim == 1
            and a.dtype.kind in "ui"):
        a, bad = uint64_column(values, name)  # TypeError, ValueError (2-D)
        if bad is not None:
            raise TraceError(f"op {len(a)}: {rule}, not {bad}", len(a))
    if a.size:
        info = np.iinfo(a.dtype)
        out = np.zeros(a.shape, dtype=bool)
        if info.min < 0:
            out |= a < 0
        if info.max > top:
            out |= a > top
        if out.any():
            i = int(np.argmax(out))
            raise TraceError(f"op {i}: {rule}, not {int(a[i])}", i)
    return np.require(a, dtype=dtype, requirements=["C", "A"])


def _bools_as_uint8(values: Any) -> Any:
    """A bool array or a list of bools as uint8 0/1; anything else as it
    is."""
    a = values
    if not isinstance(a, np.ndarray):
        if not isinstance(a, (list, tuple)) or not a or \
                not all(isinstance(v, (bool, np.bool_)) for v in a):
            return values
        a = np.array(a, dtype=bool)
    return a.astype(np.uint8) if a.dtype == np.bool_ else values


def _parse_line(words: list[str], path: PathLike,
                lineno: int) -> tuple[Any, ...]:
    where = f"{os.fspath(path)}: line {lineno}"
    try:
        if words[0] == "a" and len(words) == 5:
            _, i, size, noscan, p = words
            if noscan not in ("0", "1"):
                raise ValueError("NOSCAN must be 0 or 1")
            return ("alloc", _uint(i, 64), _uint(size, 64), noscan == "1",
                    _uint(p, 16))
        if words[0] == "f" and len(words) == 2:
            return ("free", _uint(words[1], 64))
    except ValueError as e:
        raise TraceError(f"{where}: {e}", lineno) from None
    raise TraceError(f"{where}: expected 'a ID SIZE NOSCAN P' or 'f ID', got "
                     f"{' '.join(words)!r}", lineno)


def _uint(word: str, bits: int) -> int:
    # ASCII digits only: int() would also take "+5", "1_000" and "-0"
    if not (word.isascii() and word.isdigit()):
        raise ValueError(f"{word!r} is not a decimal number")
    v = int(word, 10)
    if not 0 <= v < 1 << bits:
        raise ValueError(f"{word} is out of range")
    return v


# ---- replay ---------------------------------------------------------------

# The counters of one Timeline sample (the C core's ga_heap_counters).
COUNTER_FIELDS = tuple(name for name, _, _ in _core.COUNTER_FIELDS)


def replay(heap: Any, trace: Trace, sample_every: int = 0,
           progress: Callable[[int, int], None] | bool | None = None,
           chunk: int = 0) -> Timeline:
    """Run the whole trace in C (see Heap.replay)."""
    from ._progress import replay_callback

    sample_every = _count_arg(sample_every, "sample_every")
    chunk = _count_arg(chunk, "chunk")
    if progress is not None and not isinstance(progress, bool) \
            and not callable(progress):
        raise TypeError(f"progress must be callable, a bool or None, not "
                        f"{type(progress).__name__}")
    callback, bar = replay_callback(progress)
    try:
        return _replay(heap, trace, sample_every, callback, chunk)
    finally:
        if bar is not None:
            bar.close()


def _replay(heap: Any, trace: Trace, sample_every: int,
            progress: Callable[[int, int], None] | None,
            chunk: int) -> Timeline:
    from .timeline import Timeline

    n = len(trace)
    addr_of, live = _id_tables(trace)
    cap = (n // sample_every if sample_every else 0) + 2
    samples = np.zeros((cap, len(COUNTER_FIELDS)), dtype=np.uint64)
    sample_ops = np.zeros(cap, dtype=np.uint64)
    initial = np.array(heap._counters(), dtype=np.uint64)
    if chunk == 0 and progress is not None:
        chunk = max(1, n // 100)
    # one C call: the heap stays busy (HeapBusyError for other threads and
    # for progress itself) from the first op to the last
    nxt, failure, nsamples = heap._replay(
        (trace.kind, trace.id, trace.size, trace.noscan, trace.p), addr_of,
        live, samples, sample_ops, sample_every, chunk, progress)
    if failure is not None:
        raise _replay_error(trace, nxt, *failure)
    return Timeline.from_samples(sample_ops[:nsamples], samples[:nsamples],
                                 initial, addr_of, live.view(np.bool_), n)


def _id_tables(trace: Trace) -> tuple[np.ndarray, np.ndarray]:
    """The replay's tables indexed by id: addresses (uint64) and live
    flags (uint8), zeroed.  TraceError, before any op is applied, for an
    id beyond MAX_REPLAY_ID or tables the machine cannot hold."""
    nids = trace.nids
    if nids > MAX_REPLAY_ID + 1:
        i = int(np.argmax(trace.id > MAX_REPLAY_ID))
        raise TraceError(
            f"op {i}: id {int(trace.id[i])} is beyond what a replay can "
            f"index (ids up to 2**31-1: a replay keeps tables indexed by "
            f"id, 9 bytes per id); number sparse ids densely with "
            f"Trace.renumbered()", i)
    try:
        return (np.zeros(nids, dtype=np.uint64),
                np.zeros(nids, dtype=np.uint8))
    except MemoryError:
        i = int(np.argmax(trace.id))
        raise TraceError(
            f"op {i}: id {int(trace.id[i])} needs {9 * nids / 2**30:.1f} "
            f"GiB of tables indexed by id, more than this machine gives; "
            f"number sparse ids densely with Trace.renumbered()",
            i) from None


def _count_arg(value: Any, what: str) -> int:
    """An int in [0, 2**64): replay's sample_every and chunk (TypeError
    for a float, a str or a bool)."""
    if isinstance(value, bool):
        raise TypeError(f"{what} must be an int, not bool")
    try:
        v = operator.index(value)
    except TypeError:
        raise TypeError(f"{what} must be an int, not "
                        f"{type(value).__name__}") from None
    if not 0 <= v < 1 << 64:
        raise ValueError(f"{what} must be in [0, 2**64), not {v}")
    return v


def _replay_error(trace: Trace, index: int,
                  exc_type: type[Exception] | None,
                  what: str) -> Exception:
    """The exception for a replay that stopped at op index: the binding
    says why (what) and which exception the heap's failure is (exc_type),
    or None when the trace is at fault (TraceError)."""
    op = "alloc" if trace.kind[index] == ALLOC else "free"
    size = f", size {int(trace.size[index])}" if op == "alloc" else ""
    msg = (f"replay stopped at op {index} ({op} id {int(trace.id[index])}"
           f"{size}): {what}; the ops before it were applied")
    if exc_type is None:
        return TraceError(msg, index)
    err = exc_type(msg)
    # the op where the replay stopped: an attribute Exception does not
    # declare, set as the binding sets it on the bulk calls' errors
    setattr(err, "index", index)  # noqa: B010
    return err
