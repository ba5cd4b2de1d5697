"""Call sites: Traces with a call-site column, memray captures imported
through memray's own reader (a real ``memray run`` of a small script),
and the per-call-site table."""
from __future__ import annotations

import os
import pickle
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import goalloc
from goalloc import Trace, TraceError, workloads
from goalloc.attribution import (
    NO_FRAME,
    convert_memray,
    held_bytes,
    lifetimes,
    read_memray,
    site_table,
)

pd = pytest.importorskip("pandas")

SCRIPT = textwrap.dedent("""\
    def small():
        out = []
        for _ in range(1000):
            b = bytearray(100)
            out.append(b)
        return out


    def big():
        return bytearray(100_000)


    keep = small()
    for _ in range(3):
        b = big()
        del b
    """)
SMALL_LINE, BIG_LINE, CALL_LINE = 4, 10, 13


def run_memray(*args, cwd=None):
    """memray run, a program of its own: without the sanitizer run's
    preloaded runtime, which is there for goalloc's extension."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("LD_PRELOAD", "ASAN_OPTIONS", "UBSAN_OPTIONS")}
    subprocess.run([sys.executable, "-m", "memray", "run", "-q", *args],
                   check=True, cwd=cwd, env=env)


def _memray():
    if os.environ.get("CI"):  # the test extra installs it: never skip
        import memray
        return memray
    return pytest.importorskip("memray")


@pytest.fixture(scope="module")
def capture(tmp_path_factory):
    _memray()
    d = tmp_path_factory.mktemp("memray")
    script = d / "alloc_script.py"
    script.write_text(SCRIPT)
    out = d / "run.bin"
    run_memray("--trace-python-allocators", "-o", str(out), str(script),
               cwd=d)
    return out


def site_row(table, line):
    rows = table[table.index.str.contains(f"alloc_script.py:{line})",
                                          regex=False)]
    assert len(rows) == 1, list(table.index)
    return rows.iloc[0]


# ---- a real memray capture ---------------------------------------------

def test_memray_capture_imports_with_call_sites(capture):
    trace, info = convert_memray(capture)
    assert trace.has_sites and info.sites == len(trace.sites) > 2
    assert info.records >= info.allocs + info.frees
    assert info.implicit_frees == 0  # realloc came as free + alloc
    assert info.python_allocator in ("pymalloc", "malloc")
    names = trace.site_names()
    assert any(n.startswith("small (") and
               n.endswith(f"alloc_script.py:{SMALL_LINE})") for n in names)
    # it replays on a Go heap like any trace
    with goalloc.Heap(backing="virtual") as h:
        tl = h.replay(trace)
        h.verify()
    assert tl.nops == len(trace)


def test_site_table_of_the_capture(capture):
    trace = read_memray(capture)
    table = site_table(trace)
    small = site_row(table, SMALL_LINE)
    # 1000 bytearrays of 100 bytes (each buffer 101 bytes: 112-byte
    # class) kept to the end
    assert small["objects"] >= 1000
    assert small["live_at_end"] >= 1000
    allocs = trace.kind == 0
    mine = allocs & (trace.site_names() == small.name)
    assert small["bytes_requested"] == int(trace.size[mine].sum())
    assert small["bytes_held"] == int(held_bytes(trace.size[mine]).sum())
    assert np.count_nonzero(trace.size[mine] == 101) >= 1000
    big = site_row(table, BIG_LINE)
    # three bytearrays of 100,000 bytes: each an object header and a
    # 100,001-byte buffer in 13 pages, freed soon after
    sizes = trace.size[allocs & (trace.site_names() == big.name)]
    assert sorted(sizes)[-3:] == [100_001] * 3 and sorted(sizes)[-4] < 1000
    assert big["objects"] == len(sizes) and big["live_at_end"] == 0
    assert big["bytes_requested"] == int(sizes.sum())
    assert big["bytes_held"] == int(held_bytes(sizes).sum()) >= \
        3 * 13 * 8192
    assert big["waste_bytes"] >= 3 * (13 * 8192 - 100_001)
    assert 0 < big["lifetime_mean"] < 50
    assert table["bytes_held"].is_monotonic_decreasing
    assert table["objects"].sum() == np.count_nonzero(allocs)


def test_deeper_call_sites(capture):
    table = site_table(read_memray(capture, depth=2))
    assert any(f"alloc_script.py:{SMALL_LINE}) < <module> (" in s
               and f"alloc_script.py:{CALL_LINE})" in s
               for s in table.index)


def test_memray_trace_round_trips_with_sites(capture, tmp_path):
    trace = read_memray(capture)
    p = tmp_path / "t.gatrace"
    trace.save(p)
    assert p.read_bytes()[:8] == b"GATRACE2"
    back = Trace.load(p)
    assert back == trace and back.sites == trace.sites
    assert pickle.loads(pickle.dumps(trace)) == trace
    with pytest.raises(ValueError, match="no call sites"):
        trace.save(tmp_path / "t.trace")
    assert not (tmp_path / "t.trace").exists()


def test_aggregated_capture_is_refused(tmp_path):
    _memray()
    script = tmp_path / "s.py"
    script.write_text("x = [bytearray(50) for _ in range(10)]\n")
    out = tmp_path / "agg.bin"
    run_memray("--aggregate", "-o", str(out), str(script))
    with pytest.raises(TraceError, match="aggregated"):
        read_memray(out)


def test_native_needs_native_stacks(capture):
    with pytest.raises(ValueError, match="--native"):
        read_memray(capture, native=True)


# ---- Trace's call-site column ------------------------------------------

def test_trace_site_column_checks():
    k, i = [0, 0, 1], [0, 1, 0]
    t = Trace(k, i, [8, 16, 0], site=[1, 0, 1], sites=["a", "b"])
    assert list(t.site_names()) == ["b", "a", "b"]
    assert t[1:].sites == ("a", "b") and list(t[1:].site) == [0, 1]
    assert t.renumbered()[0].sites == ("a", "b")
    assert "2 call sites" in repr(t)
    assert t != Trace(k, i, [8, 16, 0])
    assert t != Trace(k, i, [8, 16, 0], site=[1, 0, 1], sites=["a", "c"])
    with pytest.raises(TraceError, match="op 2: site 2"):
        Trace(k, i, [8, 16, 0], site=[1, 0, 2], sites=["a", "b"])
    with pytest.raises(TypeError, match="together"):
        Trace(k, i, site=[0, 0, 0])
    with pytest.raises(TypeError, match="str"):
        Trace(k, i, site=[0, 0, 0], sites=[5])
    with pytest.raises(ValueError, match="no call sites"):
        Trace(k, i).site_names()
    with pytest.raises(ValueError, match="no call sites"):
        site_table(Trace(k, i))


def test_binary_with_sites_is_checked():
    t = Trace([0], [0], [8], site=[0], sites=["x"])
    raw = t.to_bytes()
    assert Trace.from_bytes(raw) == t
    for bad in (raw[:-1], raw + b" ", raw[:-3] + b"[1]"):
        with pytest.raises(TraceError):
            Trace.from_bytes(bad)


# ---- rounding and lifetimes --------------------------------------------

def test_held_bytes():
    sizes = [0, 1, 8, 9, 100, 101, 32768, 32769, 100_001]
    assert held_bytes(sizes).tolist() == [
        0, 8, 8, 16, 112, 112, 32768, 40960, 106496]
    # noscan objects under 16 bytes share tiny blocks: their own size
    assert held_bytes([1, 9, 15, 16], noscan=True).tolist() == [1, 9, 15, 16]
    classes = goalloc.size_classes()
    for n in (1, 17, 1000, 30000):
        assert held_bytes([n])[0] == classes[goalloc.size_to_class(n)].size


def test_lifetimes_against_a_loop():
    t = workloads.go_mix(5000, live=200, seed=9)
    got = lifetimes(t)
    want = np.full(len(t), -1)
    open_at = {}
    for j, op in enumerate(t):
        if op.kind == 0:
            open_at[op.id] = j
        else:
            i = open_at.pop(op.id)
            want[i] = j - i
    assert got.tolist() == want.tolist()
    assert (got > 0).any() and (got == -1).any()


def test_site_table_by_hand():
    # site 0: two 100-byte objects, one freed 2 ops later; site 1: one
    # 40,000-byte object freed 1 op later
    t = Trace([0, 0, 1, 0, 1], [0, 1, 0, 2, 2], [100, 100, 0, 40000, 0],
              site=[0, 0, 0, 1, 1], sites=["a", NO_FRAME])
    table = site_table(t)
    assert list(table.index) == [NO_FRAME, "a"]
    a, b = table.loc["a"], table.loc[NO_FRAME]
    assert (a["objects"], a["bytes_requested"], a["bytes_held"]) == \
        (2, 200, 224)
    assert (a["live_at_end"], a["live_held_at_end"]) == (1, 112)
    assert a["lifetime_mean"] == 2 and a["lifetime_max"] == 2
    assert b["bytes_held"] == 40960 and b["waste_bytes"] == 960
    assert b["lifetime_median"] == 1
