"""Capturing real programs' malloc calls with the LD_PRELOAD shim, and
importing the captures as goalloc traces (goalloc.capture)."""
from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys

import numpy as np
import pytest

import goalloc
from goalloc.capture import (
    CaptureInfo,
    capture,
    convert_capture,
    main_capture,
    raw_records,
    read_capture,
    shim_path,
)
from goalloc.trace import ALLOC, FREE, TraceError

pytestmark = pytest.mark.skipif(sys.platform != "linux",
                                reason="the capture shim is Linux-only")

TIMEOUT = 120
PY_ALLOCS = "x=[bytes(i) for i in range(2000)]; del x"


def check_trace(trace: goalloc.Trace) -> None:
    """Ids dense from 0 in alloc order, and every free frees a live id."""
    kind = trace.kind
    ids = trace.id
    allocs = kind == ALLOC
    assert np.array_equal(ids[allocs], np.arange(int(allocs.sum())))
    live = set()
    for k, i in zip(kind.tolist(), ids.tolist(), strict=True):
        if k == ALLOC:
            live.add(i)
        else:
            assert i in live, f"free of id {i}, not live"
            live.remove(i)


def replay_everywhere(trace: goalloc.Trace, procs: int = 1) -> None:
    for backing in ("virtual", None):
        kw = {"procs": procs}
        if backing is not None:
            kw["backing"] = backing
        with goalloc.Heap(**kw) as h:
            tl = h.replay(trace, sample_every=max(1, len(trace) // 20))
            h.verify()
            assert tl is not None


def only(files: list[str]) -> str:
    assert len(files) == 1, files
    return files[0]


# ---- real programs ---------------------------------------------------

def test_shim_is_built():
    path = shim_path()
    assert os.path.isfile(path)
    assert os.path.isabs(path)


def test_python_program(tmp_path):
    files = capture([sys.executable, "-c", PY_ALLOCS],
                    out_prefix=tmp_path / "py", timeout=TIMEOUT)
    path = only(files)
    assert path.startswith(str(tmp_path / "py") + ".")
    assert os.path.getsize(path) > 32
    trace, info = convert_capture(path)
    assert isinstance(info, CaptureInfo)
    assert info.pid == int(path.rsplit(".", 1)[1])
    assert info.ppid == os.getpid()
    allocs = int(np.count_nonzero(trace.kind == ALLOC))
    frees = len(trace) - allocs
    assert allocs > 0 and frees > 0
    assert allocs == info.allocs
    assert frees == info.frees + info.implicit_frees
    # bytes(i) for i > 512 bypasses pymalloc: ~1500 of them went to malloc
    assert np.count_nonzero((trace.size > 512) & (trace.size <= 2100)) >= 1400
    check_trace(trace)
    replay_everywhere(trace)


@pytest.mark.parametrize("argv", [["ls", "-l", "/"], ["sort", "{input}"]])
def test_c_program(tmp_path, argv):
    exe = shutil.which(argv[0])
    if exe is None:
        pytest.skip(f"no {argv[0]}")
    data = tmp_path / "input.txt"
    data.write_text("".join(f"line {i * 7919 % 1000}\n" for i in range(1000)))
    argv = [exe] + [a.format(input=data) for a in argv[1:]]
    files = capture(argv, out_prefix=tmp_path / "c", timeout=TIMEOUT,
                    stdout=subprocess.DEVNULL)
    trace = read_capture(only(files))
    allocs = int(np.count_nonzero(trace.kind == ALLOC))
    assert allocs > 0 and len(trace) - allocs > 0
    check_trace(trace)
    replay_everywhere(trace)


THREADS = """
import threading
def work(n):
    keep = []
    for i in range(3000):
        keep.append(bytearray(600 + (i * n) % 3000))
        if len(keep) > 50:
            keep.pop(0)
ts = [threading.Thread(target=work, args=(k,)) for k in range(1, 5)]
for t in ts: t.start()
for t in ts: t.join()
"""


def test_threads_spread_over_ps(tmp_path):
    env = dict(os.environ, PYTHONMALLOC="malloc")
    path = only(capture([sys.executable, "-c", THREADS],
                        out_prefix=tmp_path / "thr", env=env,
                        timeout=TIMEOUT))
    trace, info = convert_capture(path, procs=4)
    assert info.threads >= 5   # the main thread and four workers
    ps = set(trace.p.tolist())
    assert len(ps) > 1 and max(ps) < 4
    assert set(read_capture(path).p.tolist()) == {0}
    check_trace(trace)
    replay_everywhere(trace, procs=4)
    # noscan is a flag over the whole trace
    assert read_capture(path, procs=4, noscan=True).noscan.all()
    assert not trace.noscan.any()


def test_every_function_is_logged(tmp_path):
    prog = """
import ctypes, ctypes.util
c = ctypes.CDLL(None)
vp, sz = ctypes.c_void_p, ctypes.c_size_t
for name, res, args in [("malloc", vp, [sz]), ("calloc", vp, [sz, sz]),
        ("realloc", vp, [vp, sz]), ("reallocarray", vp, [vp, sz, sz]),
        ("aligned_alloc", vp, [sz, sz]), ("memalign", vp, [sz, sz]),
        ("valloc", vp, [sz]), ("pvalloc", vp, [sz]), ("free", None, [vp]),
        ("posix_memalign", ctypes.c_int, [ctypes.POINTER(vp), sz, sz])]:
    getattr(c, name).restype = res
    getattr(c, name).argtypes = args
p = c.malloc(777001)
p = c.realloc(p, 777002)
p = c.reallocarray(p, 3, 259001)
c.free(p)
c.free(c.calloc(7, 111111))
c.free(c.aligned_alloc(4096, 777004))
c.free(c.memalign(64, 777005))
c.free(c.valloc(777006))
c.free(c.pvalloc(777007))
q = vp()
assert c.posix_memalign(ctypes.byref(q), 128, 777008) == 0
c.free(q)
c.free(None)
assert c.calloc(1 << 62, 1 << 62) is None   # overflow: fails, not logged
"""
    path = only(capture([sys.executable, "-c", prog],
                        out_prefix=tmp_path / "fn", timeout=TIMEOUT))
    rec, _, _ = raw_records(path)
    assert not np.any(rec["ptr"] == 0)          # free(NULL) not logged
    page = os.sysconf("SC_PAGE_SIZE")
    want = {1: 777001, 3: 777002, 9: 777003, 2: 777777, 5: 777004,
            6: 777005, 7: 777006, 8: -(-777007 // page) * page, 4: 777008}
    for func, size in want.items():
        hit = np.flatnonzero((rec["kind"] == ALLOC) & (rec["func"] == func)
                             & (rec["size"] == size))
        assert hit.size == 1, (func, size)
        i = int(hit[0])
        p = rec["ptr"][i]
        later = np.flatnonzero((rec["ptr"] == p) & (rec["kind"] == FREE))
        assert later.size and later[later > i].size, func
    # realloc: free(old) then alloc(new), adjacent
    i = int(np.flatnonzero((rec["func"] == 3) & (rec["size"] == 777002))[0])
    assert rec["kind"][i - 1] == FREE and rec["func"][i - 1] == 3
    trace = read_capture(path)
    check_trace(trace)
    replay_everywhere(trace)


PROBE_SRC = os.path.join(os.path.dirname(__file__), "shim_probe.c")


@pytest.fixture(scope="module")
def shim_probe(tmp_path_factory):
    """tests/shim_probe.c, built without builtins (so that the compiler
    cannot fold malloc(SIZE_MAX) and the like away)."""
    cc = os.environ.get("CC") or shutil.which("cc") or "gcc"
    exe = tmp_path_factory.mktemp("probe") / "shim_probe"
    subprocess.run([cc, "-std=c11", "-O0", "-fno-builtin", "-o", str(exe),
                    PROBE_SRC], check=True, timeout=TIMEOUT)
    return str(exe)


def run_probe(exe, env_extra, cwd):
    env = {k: v for k, v in os.environ.items()
           if k not in ("LD_PRELOAD", "GATRACE_OUT")}
    env.update(env_extra)
    r = subprocess.run([exe], env=env, cwd=cwd, capture_output=True,
                       text=True, timeout=TIMEOUT, check=False)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_shim_behaves_as_the_host_libc(tmp_path, shim_probe):
    """A program under the shim sees what it sees without it, for every
    function the shim wraps: glibc 2.36's aligned_alloc(24, 100) returns
    memory (2.38 refuses it), posix_memalign leaves glibc's errno, and so
    on through shim_probe.c's edge cases.  Logging on and off."""
    plain = run_probe(shim_probe, {}, tmp_path)
    assert plain.count("\n") > 500
    assert "aligned_alloc(24, 100)" in plain
    passthrough = run_probe(shim_probe, {"LD_PRELOAD": shim_path()},
                            tmp_path)
    logging = run_probe(shim_probe, {"LD_PRELOAD": shim_path(),
                                     "GATRACE_OUT": str(tmp_path / "cap")},
                        tmp_path)
    for under_shim in (passthrough, logging):
        diff = [(a, b) for a, b in zip(plain.splitlines(),
                                       under_shim.splitlines(), strict=True)
                if a != b]
        assert diff == [], diff[:10]
        assert len(plain.splitlines()) == len(under_shim.splitlines())
    # and the shim did log: every successful aligned_alloc, as one
    want = sum(1 for line in plain.splitlines()
               if line.startswith("aligned_alloc(") and "-> ptr" in line)
    made = [f for f in os.listdir(tmp_path) if f.startswith("cap.")]
    rec, _, _ = raw_records(tmp_path / only(made))
    got = int(np.count_nonzero((rec["kind"] == ALLOC) & (rec["func"] == 5)))
    assert got == want > 0


def test_fork_gets_its_own_file(tmp_path):
    prog = f"""
import os
{PY_ALLOCS}
pid = os.fork()
if pid == 0:
    {PY_ALLOCS}
    raise SystemExit(0)   # exit(), so the child's destructor flushes
os.waitpid(pid, 0)
"""
    files = capture([sys.executable, "-c", prog], out_prefix=tmp_path / "f",
                    timeout=TIMEOUT)
    assert len(files) == 2, files
    infos = [convert_capture(f)[1] for f in files]
    parent = [i for i in infos if i.ppid == os.getpid()]
    assert len(parent) == 1
    child = [i for i in infos if i.ppid == parent[0].pid]
    assert len(child) == 1
    for f in files:
        trace = read_capture(f)
        assert len(trace) > 0
        check_trace(trace)


def test_unset_out_passes_through(tmp_path):
    env = dict(os.environ, LD_PRELOAD=shim_path())
    env.pop("GATRACE_OUT", None)
    r = subprocess.run([sys.executable, "-c", PY_ALLOCS + "; print('ok')"],
                       env=env, cwd=tmp_path, capture_output=True,
                       timeout=TIMEOUT, text=True, check=False)
    assert r.returncode == 0 and r.stdout == "ok\n"
    assert os.listdir(tmp_path) == []


def test_unwritable_out_is_reported(tmp_path):
    env = dict(os.environ, LD_PRELOAD=shim_path(),
               GATRACE_OUT=str(tmp_path / "missing" / "x"))
    r = subprocess.run([sys.executable, "-c", PY_ALLOCS + "; print('ok')"],
                       env=env, capture_output=True, timeout=TIMEOUT,
                       text=True, check=False)
    assert r.returncode == 0 and r.stdout == "ok\n"
    assert "gatrace: cannot write" in r.stderr
    assert os.listdir(tmp_path) == []


def test_capture_reports_failure(tmp_path):
    with pytest.raises(subprocess.CalledProcessError):
        capture([sys.executable, "-c", "raise SystemExit(3)"],
                out_prefix=tmp_path / "x", timeout=TIMEOUT)
    assert capture([sys.executable, "-c", "raise SystemExit(3)"],
                   out_prefix=tmp_path / "y", timeout=TIMEOUT, check=False)
    with pytest.raises(TypeError):
        capture("ls -l")  # type: ignore[arg-type]


def test_stale_files_are_not_clobbered(tmp_path):
    first = only(capture([sys.executable, "-c", PY_ALLOCS],
                         out_prefix=tmp_path / "s", timeout=TIMEOUT))
    # a stale file with the next process's name
    pid = int(first.rsplit(".", 1)[1])
    stale = [tmp_path / f"s.{pid + k}" for k in range(1, 200)]
    for s in stale:
        s.write_bytes(b"stale")
    second = capture([sys.executable, "-c", PY_ALLOCS],
                     out_prefix=tmp_path / "s", timeout=TIMEOUT)
    assert first not in second and len(second) == 1
    assert all(s.read_bytes() == b"stale" for s in stale)
    check_trace(read_capture(second[0]))


def test_main_capture(tmp_path, capsys, monkeypatch):
    base = tmp_path / "out" / "cap"
    base.parent.mkdir()
    rc = main_capture(["-o", str(base), "--procs", "2", "--raw",
                       str(tmp_path / "raw"), "--python-malloc", "--",
                       sys.executable, "-c", PY_ALLOCS])
    assert rc == 0
    out = os.listdir(base.parent)
    assert len(out) == 1
    assert out[0].startswith("cap.") and out[0].endswith(".gatrace")
    trace = goalloc.Trace.load(base.parent / out[0])
    check_trace(trace)
    replay_everywhere(trace, procs=2)
    assert "allocs" in capsys.readouterr().out
    raw = [f for f in os.listdir(tmp_path) if f.startswith("raw.")]
    program = os.path.basename(os.path.realpath(sys.executable))
    assert len(raw) == 1
    assert out[0] == "cap" + raw[0][3:] + f".{program}.gatrace"
    # defaults: ./capture.<pid>.gatrace, text with --text; the command's
    # exit status is passed on
    monkeypatch.chdir(tmp_path)
    rc = main_capture(["--text", sys.executable, "-c",
                       PY_ALLOCS + "; raise SystemExit(5)"])
    assert rc == 5
    made = [f for f in os.listdir(tmp_path) if f.startswith("capture.")]
    assert len(made) == 1 and made[0].endswith(".trace")
    assert goalloc.Trace.load(tmp_path / made[0]) == \
        goalloc.Trace.read_text(tmp_path / made[0])
    with pytest.raises(SystemExit):
        main_capture([])


# ---- the importer on hand-made captures ------------------------------

def write_capture(path, records, pid=1234, ppid=1, header_size=32,
                  record_size=24, magic=b"GACAPT01", exe=b""):
    """records: (kind, ptr, size, tid) tuples; exe goes after the 32 fixed
    header bytes (header_size must leave room)."""
    with open(path, "wb") as f:
        head = magic + struct.pack("<IIII", header_size, record_size, pid,
                                   ppid)
        f.write((head.ljust(32, b"\0") + exe).ljust(header_size, b"\0"))
        for kind, ptr, size, tid in records:
            r = struct.pack("<BBHIQQ", kind, 1 if kind == ALLOC else 10, 0,
                            tid, ptr, size)
            f.write(r.ljust(record_size, b"\xee"))


def reference(records, procs=1):
    """The importer's semantics, one record at a time."""
    live: dict[int, int] = {}
    threads: dict[int, int] = {}
    ops = []
    next_id = 0
    unmatched = implicit = 0
    for kind, ptr, size, tid in records:
        p = threads.setdefault(tid, len(threads)) % procs
        if kind == ALLOC:
            if ptr in live:
                ops.append(("free", live.pop(ptr), 0, False, p))
                implicit += 1
            live[ptr] = next_id
            ops.append(("alloc", next_id, size, False, p))
            next_id += 1
        elif ptr in live:
            ops.append(("free", live.pop(ptr), 0, False, p))
        else:
            unmatched += 1
    return goalloc.Trace.from_ops(ops), unmatched, implicit


def test_capture_names_the_executable(tmp_path):
    """The shim writes the program's path after the 32 fixed header bytes
    (NUL-padded to a multiple of 8); an exec'd program gets its own file
    with its own path."""
    files = capture([sys.executable, "-c", PY_ALLOCS],
                    out_prefix=tmp_path / "e", timeout=TIMEOUT)
    info = convert_capture(only(files))[1]
    assert info.exe == os.path.realpath(sys.executable)
    assert info.program == os.path.basename(info.exe)
    data = open(files[0], "rb").read()
    hsize = struct.unpack_from("<I", data, 8)[0]
    assert hsize % 8 == 0 and 32 + len(info.exe) < hsize <= 32 + \
        len(info.exe) + 8
    assert data[32:hsize].rstrip(b"\0") == os.fsencode(info.exe)
    ls = shutil.which("ls")
    assert ls
    files = capture([sys.executable, "-c",
                     f"import os; {PY_ALLOCS}; os.execv({ls!r}, ['ls'])"],
                    out_prefix=tmp_path / "x", timeout=TIMEOUT,
                    stdout=subprocess.DEVNULL)
    exes = [convert_capture(f)[1].exe for f in files]
    assert exes == [os.path.realpath(sys.executable), os.path.realpath(ls)]


def test_import_reads_the_executable_and_old_headers(tmp_path):
    recs = [(ALLOC, 0x1000, 48, 7)]
    write_capture(tmp_path / "new", recs, header_size=48,
                  exe=b"/usr/bin/prog")
    write_capture(tmp_path / "old", recs)  # 32 bytes: no path
    new, old = (convert_capture(tmp_path / n) for n in ("new", "old"))
    assert new[1].exe == "/usr/bin/prog" and new[1].program == "prog"
    assert old[1].exe == "" and old[1].program == ""
    assert new[0] == old[0] and new[1].records == old[1].records == 1
    assert raw_records(tmp_path / "new")[1:] == (1234, 1)


def test_main_capture_names_programs_and_the_main_process(tmp_path, capsys):
    """The summary and the file names name each process's program; the
    command itself is pointed out as the main process; a process that
    allocated nothing (here `true`, run by the command) is skipped and
    listed, and writes no trace."""
    true = shutil.which("true")
    assert true
    prog = f"import subprocess; {PY_ALLOCS}; subprocess.run([{true!r}])"
    base = tmp_path / "out" / "cap"
    base.parent.mkdir()
    rc = main_capture(["-o", str(base), "--python-malloc", "--",
                       sys.executable, "-c", prog])
    assert rc == 0
    program = os.path.basename(os.path.realpath(sys.executable))
    (made,) = os.listdir(base.parent)
    assert made.endswith(f".{program}.gatrace"), made
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2, lines
    pid = made.split(".")[1]
    assert lines[0].startswith(f"{base.parent / made}: {program} pid {pid}"
                               ", main process, ")
    assert lines[1].startswith("skipped 1 empty capture (no allocation "
                               "logged): true pid ")
    assert "main" not in lines[1]


def test_import_semantics(tmp_path):
    recs = [
        (FREE, 0x9000, 0, 7),        # allocated before the shim: skipped
        (ALLOC, 0x1000, 16, 7),      # id 0
        (ALLOC, 0x2000, 0, 8),       # id 1, size 0 kept, second thread
        (FREE, 0x1000, 0, 8),        # frees id 0
        (ALLOC, 0x1000, 32, 7),      # id 2, same address again
        (ALLOC, 0x1000, 48, 9),      # free unlogged: implicit free of id 2
        (FREE, 0x1000, 0, 9),        # frees id 3
        (FREE, 0x1000, 0, 9),        # double free: skipped
    ]
    path = tmp_path / "c"
    write_capture(path, recs)
    trace, info = convert_capture(path, procs=2)
    assert trace == goalloc.Trace(
        kind=[ALLOC, ALLOC, FREE, ALLOC, FREE, ALLOC, FREE],
        id=[0, 1, 0, 2, 2, 3, 3],
        size=[16, 0, 0, 32, 0, 48, 0],
        p=[0, 1, 0, 0, 0, 0, 0])
    assert (info.records, info.allocs, info.frees, info.unmatched_frees,
            info.implicit_frees, info.threads, info.live_at_end) == \
        (8, 4, 2, 2, 1, 3, 1)
    assert info.pid == 1234 and info.ppid == 1
    assert info.bytes_allocated == 96
    assert info.peak_live_bytes == 48
    replay_everywhere(trace, procs=2)


@pytest.mark.parametrize("seed", range(5))
def test_import_matches_reference(tmp_path, seed):
    rng = np.random.default_rng(seed)
    n = 3000
    regions = [0x5555_5555_0000, 0x7f00_0000_0000, 0x7fff_f000_0000]
    ptrs = [regions[int(rng.integers(3))] + 16 * int(rng.integers(40))
            for _ in range(n)]
    recs = [(int(rng.random() < 0.55), ptrs[i], int(rng.integers(0, 5000)),
             int(rng.integers(100, 104))) for i in range(n)]
    recs = [(k, p, s if k == ALLOC else 0, t) for k, p, s, t in recs]
    path = tmp_path / "r"
    write_capture(path, recs, record_size=24 + 8 * (seed % 2))
    want, unmatched, implicit = reference(recs, procs=3)
    got, info = convert_capture(path, procs=3)
    assert got == want
    assert (info.unmatched_frees, info.implicit_frees) == (unmatched,
                                                           implicit)
    check_trace(got)


def test_import_procs_must_be_an_int_that_fits_a_p(tmp_path):
    """procs spreads threads over Ps stored in 16 bits: a float would be
    truncated, more than 65536 would wrap around."""
    path = tmp_path / "c"
    write_capture(path, [(ALLOC, 0x1000 + 16 * t, 8, 100 + t)
                         for t in range(5)])
    for procs, exc in ((1.5, TypeError), ("2", TypeError), (True, TypeError),
                       (0, ValueError), ((1 << 16) + 1, ValueError)):
        with pytest.raises(exc):
            convert_capture(path, procs=procs)
    assert read_capture(path, procs=np.int64(3)).p.tolist() == \
        [0, 1, 2, 0, 1]
    assert read_capture(path, procs=1 << 16).p.tolist() == [0, 1, 2, 3, 4]


def test_empty_capture(tmp_path):
    path = tmp_path / "e"
    write_capture(path, [])
    trace, info = convert_capture(path)
    assert len(trace) == 0 and info.records == 0 and info.threads == 0


@pytest.mark.parametrize("damage", ["truncated-record", "truncated-header",
                                    "magic", "kind", "null", "empty",
                                    "record-size"])
def test_malformed_capture(tmp_path, damage):
    path = tmp_path / "m"
    recs = [(ALLOC, 0x1000, 8, 1), (FREE, 0x1000, 0, 1)]
    if damage == "kind":
        recs.append((5, 0x2000, 8, 1))
    if damage == "null":
        recs.append((ALLOC, 0, 8, 1))
    write_capture(path, recs, magic=b"NOTACAPT" if damage == "magic"
                  else b"GACAPT01",
                  record_size=8 if damage == "record-size" else 24)
    data = path.read_bytes()
    if damage == "truncated-record":
        path.write_bytes(data[:-5])
    elif damage == "truncated-header":
        path.write_bytes(data[:20])
    elif damage == "empty":
        path.write_bytes(b"")
    with pytest.raises(TraceError):
        read_capture(path)


def test_real_capture_truncated(tmp_path):
    path = only(capture([sys.executable, "-c", PY_ALLOCS],
                        out_prefix=tmp_path / "t", timeout=TIMEOUT))
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) - 7)
    with pytest.raises(TraceError) as e:
        read_capture(path)
    assert "truncated" in str(e.value)
