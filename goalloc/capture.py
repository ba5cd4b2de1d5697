"""Capture the malloc calls of a real Linux program and import them as a Trace.

The package builds an LD_PRELOAD shim, ``goalloc/_gatrace*.so`` (source:
``csrc/tracehook/gatrace.c``), that interposes malloc, free, calloc,
realloc, reallocarray, posix_memalign, aligned_alloc, memalign, valloc and
pvalloc and logs every call to a file per process::

    >>> files = capture(["sort", "data.txt"])       # runs the command
    >>> trace = read_capture(files[0], procs=4)     # a goalloc.Trace
    >>> goalloc.Heap(procs=4).replay(trace, sample_every=1000)

By hand, without Python::

    GATRACE_OUT=/tmp/run LD_PRELOAD=$(python -c \\
        'import goalloc.capture as c; print(c.shim_path())') CMD ARGS...

writes ``/tmp/run.<pid>`` for each process (an exec that keeps the pid,
or a stale file, makes it ``/tmp/run.<pid>.1`` and so on; a forked child
that never allocates writes none).

Raw capture file format (little endian)
---------------------------------------

header, 32 bytes and the executable's path::

    0  char[8]  magic b"GACAPT01"
    8  u32      header size (32 + the path's bytes, a multiple of 8)
   12  u32      record size (24; a reader ignores bytes past the 24 below)
   16  u32      pid
   20  u32      parent pid
   24  u64      reserved
   32  char[]   the executable's path (/proc/self/exe when the file was
                created), NUL-padded to the header size; may be empty

then records, ``record size`` bytes each, in the order the events happened::

    0  u8   kind: 0 alloc, 1 free
    1  u8   function: 1 malloc, 2 calloc, 3 realloc, 4 posix_memalign,
            5 aligned_alloc, 6 memalign, 7 valloc, 8 pvalloc,
            9 reallocarray, 10 free
    2  u16  reserved
    4  u32  thread id (Linux tid)
    8  u64  pointer: returned by an alloc, passed to a free (never 0)
   16  u64  size requested (calloc: nmemb*size; pvalloc: rounded to a
            page); 0 for a free

A realloc is logged as free(old) then alloc(new, size), even when the block
did not move; realloc(p, 0) that frees p logs only the free.  Failed calls
and free(NULL) are not logged.

Import (``read_capture``)
-------------------------

Each alloc record becomes an alloc of a fresh id (ids dense from 0 in
order); a free becomes a free of the id its pointer was last allocated
as.  A free of a pointer that is not live in the capture (allocated before
the shim was loaded, e.g. by the dynamic loader, or in a signal handler
that interrupted the shim) is skipped and counted; an alloc of a pointer
that is still live (its free went unlogged) first frees the stale id
("implicit free", counted).  Threads are numbered in order of first
appearance and thread i allocates through P ``i % procs``.
"""
from __future__ import annotations

import argparse
import glob
import importlib.util
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .trace import ALLOC, FREE, PathLike, Trace, TraceError

MAGIC = b"GACAPT01"
HEADER_SIZE = 32
RECORD_SIZE = 24

FUNCTIONS = {1: "malloc", 2: "calloc", 3: "realloc", 4: "posix_memalign",
             5: "aligned_alloc", 6: "memalign", 7: "valloc", 8: "pvalloc",
             9: "reallocarray", 10: "free"}

_FIELDS = (("kind", "u1", 0), ("func", "u1", 1), ("tid", "<u4", 4),
           ("ptr", "<u8", 8), ("size", "<u8", 16))


def _record_dtype(record_size: int) -> np.dtype:
    return np.dtype({"names": [f[0] for f in _FIELDS],
                     "formats": [f[1] for f in _FIELDS],
                     "offsets": [f[2] for f in _FIELDS],
                     "itemsize": record_size})


# ---- the shim ---------------------------------------------------------------

def shim_path() -> str:
    """The absolute path of the built LD_PRELOAD shim (goalloc/_gatrace*.so).

    Raises FileNotFoundError off Linux (the shim needs glibc) or if the
    package was built without it.
    """
    if not sys.platform.startswith("linux"):
        raise FileNotFoundError("goalloc's capture shim works on Linux "
                                "(glibc) only")
    spec = importlib.util.find_spec("goalloc._gatrace")
    if spec is not None and spec.origin and os.path.exists(spec.origin):
        return os.path.abspath(spec.origin)
    here = os.path.dirname(os.path.abspath(__file__))
    found = sorted(glob.glob(os.path.join(here, "_gatrace*.so")))
    if found:
        return found[0]
    raise FileNotFoundError("goalloc's capture shim (goalloc/_gatrace*.so) is "
                            "not built; reinstall goalloc on Linux")


_SUFFIX = re.compile(r"\.(\d+)(?:\.(\d+))?$")


def _capture_files(prefix: str) -> dict[str, tuple[int, int]]:
    """Files <prefix>.<pid>[.<n>] that exist now, with their (pid, n)."""
    out = {}
    for path in glob.glob(glob.escape(prefix) + ".*"):
        m = _SUFFIX.fullmatch(path[len(prefix):])
        if m:
            out[path] = (int(m.group(1)), int(m.group(2) or 0))
    return out


def _run(argv: Sequence[str], out_prefix: PathLike | None,
         env: Mapping[str, str] | None, timeout: float | None,
         kwargs: dict[str, Any]) -> tuple[list[str], int]:
    if isinstance(argv, (str, bytes)):
        raise TypeError("argv must be a sequence of arguments, not a string")
    if not argv:
        raise ValueError("argv is empty")
    if out_prefix is None:
        out_prefix = os.path.join(tempfile.mkdtemp(prefix="gatrace-"), "trace")
    prefix = os.path.abspath(os.fspath(out_prefix))
    os.makedirs(os.path.dirname(prefix), exist_ok=True)
    before = _capture_files(prefix)
    full_env = dict(os.environ if env is None else env)
    shim = shim_path()
    # Sanitizer runtimes (libasan, libubsan, ...) replace malloc too and
    # must come first; the shim calls glibc's __libc_* directly, so the two
    # cannot share a process: they are dropped from what the command gets.
    preload = " ".join(
        p for p in full_env.get("LD_PRELOAD", "").replace(":", " ").split()
        if not os.path.basename(p).startswith(("libasan", "libubsan",
                                               "libtsan", "liblsan")))
    full_env["LD_PRELOAD"] = shim + (" " + preload if preload else "")
    full_env["GATRACE_OUT"] = prefix
    proc = subprocess.run(list(argv), env=full_env, timeout=timeout,
                          check=False, **kwargs)
    after = _capture_files(prefix)
    new = sorted((k for k in after if k not in before), key=after.__getitem__)
    return new, proc.returncode


def capture(argv: Sequence[str], out_prefix: PathLike | None = None,
            env: Mapping[str, str] | None = None,
            timeout: float | None = None, check: bool = True,
            **kwargs: Any) -> list[str]:
    """Run argv under the shim and return the capture files it wrote.

    out_prefix: the files are ``<out_prefix>.<pid>`` (``.<pid>.<n>`` if
    taken), one per process, the command's children included; by default
    in a fresh temporary directory (left for the caller to remove).  env:
    the command's environment (default os.environ), to which LD_PRELOAD
    (the shim first) and GATRACE_OUT are added.  timeout and the other
    keyword arguments (stdout, stderr, cwd, input, ...) go to
    subprocess.run; check=True raises CalledProcessError when the command
    exits non-zero (the files stay on disk).  Files are listed by pid.

    Python programs allocate most small objects from pymalloc's arenas,
    not malloc: set PYTHONMALLOC=malloc in env to see every object.
    """
    files, rc = _run(argv, out_prefix, env, timeout, kwargs)
    if check and rc != 0:
        raise subprocess.CalledProcessError(rc, list(argv))
    return files


# ---- import -----------------------------------------------------------------

@dataclass(frozen=True)
class CaptureInfo:
    """What read_capture found in one capture file."""

    path: str
    pid: int
    ppid: int
    records: int            # records in the file
    allocs: int             # alloc ops in the trace (= ids)
    frees: int              # free ops from free records
    unmatched_frees: int    # free records of pointers not live: skipped
    implicit_frees: int     # frees added before an alloc of a live pointer
    threads: int            # distinct thread ids
    live_at_end: int        # ids still live after the last op
    bytes_allocated: int    # sum of the alloc sizes
    peak_live_bytes: int    # largest sum of live requested sizes
    exe: str = ""           # the program's path ("" if not recorded)

    @property
    def program(self) -> str:
        """The executable's file name ("" if the capture has none)."""
        return os.path.basename(self.exe)


def _read_header(f: Any, name: str) -> tuple[int, int, int, int, str]:
    """(header size, record size, pid, ppid, executable) of the capture
    file f, positioned at its start; TraceError if malformed."""
    head = f.read(HEADER_SIZE)
    if head[:8] != MAGIC:
        raise TraceError(f"{name}: not a gatrace capture file (magic "
                         f"{head[:8]!r})", 0)
    if len(head) < HEADER_SIZE:
        raise TraceError(f"{name}: truncated header", 0)
    hsize, rsize, pid, ppid = (int(v) for v in
                               np.frombuffer(head, "<u4", 4, 8))
    if hsize < HEADER_SIZE or rsize < RECORD_SIZE:
        raise TraceError(f"{name}: bad header (header size {hsize}, "
                         f"record size {rsize})", 0)
    rest = f.read(hsize - HEADER_SIZE)
    exe = rest.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
    return hsize, rsize, pid, ppid, exe


def raw_records(path: PathLike) -> tuple[np.ndarray, int, int]:
    """The records of a raw capture file as a NumPy structured array
    (fields kind, func, tid, ptr, size; see the module docstring), with
    the pid and parent pid from its header.  TraceError if malformed."""
    return _raw_records(path)[:3]


def _raw_records(path: PathLike) -> tuple[np.ndarray, int, int, str]:
    """raw_records, and the executable from the header."""
    name = os.fspath(path)
    with open(path, "rb") as f:
        hsize, rsize, pid, ppid, exe = _read_header(f, name)
        total = os.fstat(f.fileno()).st_size
        body = total - hsize
        if body < 0 or body % rsize:
            raise TraceError(f"{name}: {total} bytes is not a {hsize}-byte "
                             f"header and whole {rsize}-byte records "
                             f"(truncated?)", max(0, body) // rsize)
        f.seek(hsize)
        rec = np.fromfile(f, dtype=_record_dtype(rsize), count=body // rsize)
    if len(rec) != body // rsize:
        raise TraceError(f"{name}: short read", len(rec))
    return rec, pid, ppid, exe


def _group_by_pointer(ptr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A stable argsort of ptr (time order among equal pointers), and a
    key per sorted position that is equal exactly where the pointers are.

    NumPy's argsort is several times slower than its value sort, so when
    it fits, each pointer is squeezed (alignment bits dropped, the 4 GiB
    blocks in use numbered densely) into the high bits of a uint64 whose
    low bits are the record index, and those are sorted as values.
    """
    n = len(ptr)
    kb = max(1, (n - 1).bit_length())
    low = int(np.bitwise_or.reduce(ptr))
    tz = 0
    while tz < 12 and not (low >> tz) & 1:
        tz += 1
    hi = (ptr >> np.uint64(32)).astype(np.intp)
    if int(hi.max()) < 1 << 20:
        used = np.bincount(hi) > 0
        if (int(used.sum()) - 1).bit_length() + 32 - tz + kb <= 64:
            block = (np.cumsum(used) - 1).astype(np.uint64)
            key = block[hi]
            del hi
            key <<= np.uint64(32 - tz + kb)
            key |= ((ptr & np.uint64(0xFFFFFFFF)) >> np.uint64(tz)) \
                << np.uint64(kb)
            key |= np.arange(n, dtype=np.uint64)
            key.sort()
            order = (key & np.uint64((1 << kb) - 1)).astype(np.intp)
            key >>= np.uint64(kb)
            return order, key
    order = np.argsort(ptr, kind="stable")
    return order, ptr[order]


def convert_capture(path: PathLike, procs: int = 1,
                    noscan: bool = False) -> tuple[Trace, CaptureInfo]:
    """read_capture, also returning what the import counted (CaptureInfo).
    procs: an int in 1..65536 (TypeError, ValueError otherwise: a P is
    stored in 16 bits, and a float would be truncated)."""
    if isinstance(procs, bool) or not isinstance(procs, (int, np.integer)):
        raise TypeError(f"procs must be an int, not {type(procs).__name__}")
    if not 1 <= procs <= 1 << 16:
        raise ValueError(f"procs must be in 1..65536, not {procs}")
    name = os.fspath(path)
    rec, pid, ppid, exe = _raw_records(path)
    n = len(rec)
    kind = np.ascontiguousarray(rec["kind"])
    ptr = np.ascontiguousarray(rec["ptr"])
    bad = np.flatnonzero(kind > FREE)
    if bad.size:
        i = int(bad[0])
        raise TraceError(f"{name}: record {i}: kind {kind[i]} is neither 0 "
                         f"(alloc) nor 1 (free)", i)
    bad = np.flatnonzero(ptr == 0)
    if bad.size:
        i = int(bad[0])
        raise TraceError(f"{name}: record {i}: null pointer", i)

    is_alloc = kind == ALLOC
    alloc_id = np.cumsum(is_alloc, dtype=np.int64) - 1  # valid where alloc

    # Group the records by pointer, keeping time order inside a group: a
    # record whose predecessor in its group is an alloc refers to that
    # alloc's id (a free frees it; an alloc implies its free first).
    ref = np.full(n, -1, dtype=np.int64)   # per record, in time order
    if n > 1:
        order, sp = _group_by_pointer(ptr)
        linked = (sp[1:] == sp[:-1]) & is_alloc[order[:-1]]
        ref[order[1:][linked]] = alloc_id[order[:-1][linked]]
        del order, sp, linked
    matched_free = ~is_alloc & (ref >= 0)
    implicit = is_alloc & (ref >= 0)
    nimplicit = int(np.count_nonzero(implicit))

    tid = np.ascontiguousarray(rec["tid"])
    tids = np.unique(tid)
    thread = np.searchsorted(tids, tid)
    first = np.full(len(tids), n, dtype=np.int64)
    np.minimum.at(first, thread, np.arange(n, dtype=np.int64))
    rank = np.empty(len(tids), dtype=np.int64)
    rank[np.argsort(first)] = np.arange(len(tids))
    p = (rank[thread] % procs).astype(np.uint16)
    p[~is_alloc] = 0   # as in Trace.from_ops and the text format

    size = np.where(is_alloc, rec["size"], np.uint64(0))
    ids = np.where(is_alloc, alloc_id, ref)
    keep = is_alloc | matched_free
    out_kind, out_id, out_size, out_p = kind, ids, size, p
    if nimplicit:
        # two slots per record: [implicit free, the record itself]
        keep = np.stack([implicit, keep], axis=1).reshape(-1)
        out_kind = np.stack([np.full(n, FREE, np.uint8), kind], 1).reshape(-1)
        out_id = np.stack([ref, ids], axis=1).reshape(-1)
        out_size = np.stack([np.zeros(n, np.uint64), size], 1).reshape(-1)
        out_p = np.stack([np.zeros(n, np.uint16), p], axis=1).reshape(-1)
    m = int(np.count_nonzero(keep))
    trace = Trace(out_kind[keep], out_id[keep].astype(np.uint64),
                  out_size[keep], np.full(m, 1 if noscan else 0, np.uint8),
                  out_p[keep])
    del out_kind, out_id, out_size, out_p, ids, size, keep

    nallocs = int(np.count_nonzero(is_alloc))
    nfrees = int(np.count_nonzero(matched_free))
    sizes = trace.size.astype(np.int64)
    if len(trace):
        size_of = np.zeros(trace.nids, dtype=np.int64)
        allocs = trace.kind == ALLOC
        size_of[trace.id[allocs].astype(np.int64)] = sizes[allocs]
        delta = np.where(allocs, sizes, -size_of[trace.id.astype(np.int64)])
        peak = int(max(0, np.cumsum(delta).max()))
    else:
        peak = 0
    info = CaptureInfo(
        path=name, pid=pid, ppid=ppid, records=n, allocs=nallocs,
        frees=nfrees, unmatched_frees=n - nallocs - nfrees,
        implicit_frees=nimplicit, threads=len(tids),
        live_at_end=nallocs - nfrees - nimplicit,
        bytes_allocated=int(sizes.sum()), peak_live_bytes=peak, exe=exe)
    return trace, info


def read_capture(path: PathLike, procs: int = 1,
                 noscan: bool = False) -> Trace:
    """Convert a raw capture file (see the module docstring) into a Trace.

    procs: the number of Ps to spread the program's threads over (thread
    i, in order of first appearance, allocates through P i % procs);
    replay the trace on a Heap with at least that many procs (free ops
    carry P 0, as in Trace.from_ops).  noscan:
    mark every allocation noscan (C memory has no pointer maps, so either
    choice is a model).  Sizes are kept as requested, 0 included.  A
    malformed or truncated file raises TraceError.
    """
    return convert_capture(path, procs, noscan)[0]


# ---- command line -----------------------------------------------------------

def add_capture_arguments(parser: argparse.ArgumentParser) -> None:
    """The options and the command of ``goalloc capture`` (see
    main_capture), added to parser: ``python -m goalloc`` adds them to
    its capture subcommand, main_capture to a parser of its own."""
    parser.add_argument("-o", "--output", default="capture", metavar="BASE",
                        help="write traces to BASE.<pid>[.<n>].gatrace "
                             "(default: capture)")
    parser.add_argument("--raw", metavar="PREFIX",
                        help="keep the raw capture files as PREFIX.<pid>")
    parser.add_argument("--procs", type=int, default=1,
                        help="spread threads over N Ps (default: 1)")
    parser.add_argument("--noscan", action="store_true",
                        help="mark every allocation noscan")
    parser.add_argument("--python-malloc", action="store_true",
                        help="set PYTHONMALLOC=malloc for a Python command")
    parser.add_argument("--timeout", type=float,
                        help="kill the command after this many seconds")
    parser.add_argument("--text", action="store_true",
                        help="write text traces (.trace) instead of binary")
    parser.add_argument("command", nargs=argparse.REMAINDER,
                        help="the command to run, after --")


CAPTURE_DESCRIPTION = ("Run a command under goalloc's malloc-capture shim "
                       "and convert what it allocated into goalloc traces.")


def main_capture(args: Sequence[str] | None = None,
                 prog: str = "goalloc capture", *,
                 parser_class: type[argparse.ArgumentParser] =
                 argparse.ArgumentParser) -> int:
    """``goalloc capture [options] [--] CMD [ARGS...]``.

    Runs CMD under the shim, converts each process's capture into a goalloc
    trace file and prints one summary line per process.  Returns CMD's exit
    status (1 if CMD ran but nothing was captured).

    args (the words after ``capture``; default sys.argv[1:]):

    -o, --output BASE   converted traces are written to
                        ``BASE.<pid>[.<n>].gatrace`` (binary; ``--text``
                        for the text format, ``.trace``); default
                        ``capture`` in the current directory
    --raw PREFIX        keep the raw capture files as ``PREFIX.<pid>``
                        (default: a temporary directory, removed)
    --procs N           spread threads over N Ps (default 1)
    --noscan            mark every allocation noscan
    --python-malloc     set PYTHONMALLOC=malloc, so a Python CMD sends
                        every object through malloc
    --timeout SECONDS   kill CMD after this long
    --text              write text traces instead of binary

    prog: the command's name in usage lines and errors; parser_class: the
    argparse parser to use.  (``python -m goalloc capture`` is a
    subcommand of goalloc's own parser: add_capture_arguments and
    run_capture.)
    """
    parser = parser_class(prog=prog, description=CAPTURE_DESCRIPTION)
    add_capture_arguments(parser)
    ns = parser.parse_args(list(sys.argv[1:] if args is None else args))
    return run_capture(ns, parser)


def run_capture(ns: argparse.Namespace,
                parser: argparse.ArgumentParser) -> int:
    """Run what add_capture_arguments parsed into ns (parser reports a bad
    command line)."""
    cmd = list(ns.command)
    if cmd and cmd[0] == "--":
        cmd = cmd[1:]
    if not cmd:
        parser.error("no command given")
    if ns.procs < 1:
        parser.error("--procs must be >= 1")
    env = dict(os.environ)
    if ns.python_malloc:
        env["PYTHONMALLOC"] = "malloc"
    tmp = None
    prefix = ns.raw
    if prefix is None:
        tmp = tempfile.TemporaryDirectory(prefix="gatrace-")
        prefix = os.path.join(tmp.name, "raw")
    try:
        try:
            files, rc = _run(cmd, prefix, env, ns.timeout, {})
        except FileNotFoundError as e:
            print(f"capture: {e}", file=sys.stderr)
            return 127
        except subprocess.TimeoutExpired:
            print(f"capture: {cmd[0]} timed out after {ns.timeout} s",
                  file=sys.stderr)
            return 124
        if not files:
            print("capture: nothing was captured (a static or setuid "
                  "program ignores LD_PRELOAD)", file=sys.stderr)
            return rc if rc != 0 else 1
        ext = ".trace" if ns.text else ".gatrace"
        base = os.path.abspath(prefix)
        empty = []
        for f in files:
            try:
                trace, info = convert_capture(f, ns.procs, ns.noscan)
            except TraceError as e:
                print(f"capture: {e}", file=sys.stderr)
                continue
            who = _who(info)
            if len(trace) == 0:  # a process that allocated nothing
                empty.append(who)
                continue
            program = _file_word(info.program)
            out = (ns.output + f[len(base):]
                   + (f".{program}" if program else "") + ext)
            trace.save(out)
            print(f"{out}: {who}, {len(trace)} ops ({info.allocs} "
                  f"allocs, {info.frees + info.implicit_frees} frees, "
                  f"{info.unmatched_frees} unknown frees skipped), "
                  f"{info.threads} threads, peak {info.peak_live_bytes} "
                  f"live bytes")
        if empty:
            print(f"skipped {len(empty)} empty "
                  f"capture{'s' if len(empty) > 1 else ''} (no allocation "
                  f"logged): {'; '.join(empty)}")
        return rc
    finally:
        if tmp is not None:
            tmp.cleanup()


def _who(info: CaptureInfo) -> str:
    """The process of a capture for a summary line: its program and pid,
    and "main process" for the command itself (a child of this process;
    a program it exec'd keeps its pid and is the main process too)."""
    main = ", main process" if info.ppid == os.getpid() else ""
    return f"{info.program or '?'} pid {info.pid}{main}"


_NOT_IN_NAMES = re.compile(r"[^A-Za-z0-9._+-]")


def _file_word(program: str) -> str:
    """A program name made safe for one word of a file name."""
    return _NOT_IN_NAMES.sub("_", program).lstrip(".")
