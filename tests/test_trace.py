"""Traces, replay in C, Timelines and fragmentation metrics.

goalloc.trace: a trace is columns of alloc/free ops on object ids, in a
text or a binary file format.  Heap.replay applies it in C (design
§12.3): the result must be exactly what the same ops do through h.alloc
and h.free, a bad op stops the replay before it is applied (design §10.2:
the heap is never damaged), and every sample of the Timeline is what the
heap's own statistics say at that op.
"""
from __future__ import annotations

import csv
import json
import math
import re
import struct
import threading
import time

import numpy as np
import pytest

import goalloc
from goalloc import GoallocError, Trace, TraceError, fragmentation, workloads
from goalloc.trace import (
    ALLOC,
    BINARY_MAGIC,
    COUNTER_FIELDS,
    FREE,
    TEXT_HEADER,
)
from helpers import state as heap_state
from misuse import PROCS, World, assert_exc, rejected, still_works

PAGE = 8192


# ---- helpers ------------------------------------------------------------

def small_trace(seed: int = 1, procs: int = 2) -> Trace:
    """A few thousand ops that reach tiny, small and large objects, every
    P, zero-size objects, and spans that empty and go back to the heap."""
    mix = workloads.go_mix(6000, live=400, seed=seed, procs=procs)
    extra = Trace.from_ops([
        ("alloc", 0, 0), ("alloc", 1, 0, True), ("free", 0),
        ("alloc", 2, 100_000, False, procs - 1),
        ("alloc", 3, 3, True, 1 % procs),
        ("alloc", 4, 5, True, 1 % procs), ("free", 3), ("free", 2),
        ("alloc", 5, 40_000), ("free", 1), ("free", 4),
    ])
    off = np.uint64(mix.nids)
    return Trace(np.concatenate([mix.kind, extra.kind]),
                 np.concatenate([mix.id, extra.id + off]),
                 np.concatenate([mix.size, extra.size]),
                 np.concatenate([mix.noscan, extra.noscan]),
                 np.concatenate([mix.p, extra.p]))


def apply_ops(h: goalloc.Heap, trace: Trace) -> dict[int, int]:
    """The trace through h.alloc / h.free, one Python call per op; returns
    the address each id got."""
    addr: dict[int, int] = {}
    for op in trace:
        if op.kind == ALLOC:
            addr[op.id] = h.alloc(op.size, noscan=op.noscan, p=op.p)
        else:
            h.free(addr[op.id])
    return addr




def largest_free(h: goalloc.Heap) -> int:
    """The largest free span, or go1.13.8's curArena rest if larger (a
    request of its size is met without new address space either way)."""
    info = h.info()
    return max([s.nbytes for s in h.spans() if s.state == "free"] +
               [info.cur_arena_end - info.cur_arena_base])


# ---- building traces ------------------------------------------------------

def test_from_ops_columns_and_defaults():
    t = Trace.from_ops([("alloc", 7, 100), ("a", 8, 3, True, 2), (ALLOC, 9, 5),
                        ("free", 7), ("f", 9), (FREE, 8)])
    assert len(t) == 6
    assert t.kind.tolist() == [0, 0, 0, 1, 1, 1]
    assert t.id.tolist() == [7, 8, 9, 7, 9, 8]
    assert t.size.tolist() == [100, 3, 5, 0, 0, 0]
    assert t.noscan.tolist() == [0, 1, 0, 0, 0, 0]
    assert t.p.tolist() == [0, 2, 0, 0, 0, 0]
    assert (t.kind.dtype, t.id.dtype, t.size.dtype, t.noscan.dtype,
            t.p.dtype) == (np.uint8, np.uint64, np.uint64, np.uint8, np.uint16)
    assert t.nids == 10
    assert list(t)[1] == goalloc.trace.Op(ALLOC, 8, 3, True, 2)
    assert t[1:3] == Trace.from_ops([("alloc", 8, 3, True, 2),
                                     ("alloc", 9, 5)])
    assert "6 ops: 3 allocs, 3 frees" in repr(t)
    assert Trace.from_ops([]).nids == 0 and len(Trace.from_ops([])) == 0


@pytest.mark.parametrize("ops,index", [
    ([("alloc", 0, 8), ("malloc", 1, 8)], 1),
    ([("free", 0), ("alloc", 1)], 1),
    ([("x", 0)], 0),
])
def test_from_ops_rejects_bad_ops_naming_the_index(ops, index):
    with pytest.raises(TraceError) as e:
        Trace.from_ops(ops)
    assert e.value.index == index
    assert f"op {index}" in str(e.value)


@pytest.mark.parametrize("op", [
    ("alloc", -1, 8), ("alloc", 1, -8), ("alloc", 1, 8, False, -1),
    ("alloc", 1, 8, False, 1 << 16), ("alloc", 1 << 64, 8), ("free", -3),
])
def test_from_ops_rejects_out_of_range_values(op):
    with pytest.raises((TraceError, ValueError, OverflowError)):
        Trace.from_ops([op])


@pytest.mark.parametrize("op", [("alloc", 1.5, 8), ("alloc", 1, 8.5),
                                ("free", 2.25)])
def test_from_ops_rejects_non_integers(op):
    # ids and sizes are integers; 1.5 must not silently become id 1
    with pytest.raises((TraceError, TypeError, ValueError)):
        Trace.from_ops([op])


def test_constructor_from_arrays_validates():
    with pytest.raises(ValueError, match="column 'id'"):
        Trace([0, 0], [1])
    with pytest.raises(ValueError, match="column 'size'"):
        Trace([0, 0], [1, 2], size=[8])
    with pytest.raises(TraceError) as e:
        Trace([0, 1, 2, 1], [1, 1, 1, 1])
    assert e.value.index == 2 and "op 2" in str(e.value)
    # columns are converted to the file's widths, contiguous
    t = Trace(np.array([0, 1], dtype=np.int64), [5, 5], [24, 0],
              [True, False], [3, 0])
    assert t.size.dtype == np.uint64 and t.p.tolist() == [3, 0]
    assert all(getattr(t, c).flags.c_contiguous
               for c in ("kind", "id", "size", "noscan", "p"))
    # a strided column is copied into a contiguous one
    ids = np.arange(10, dtype=np.uint64)[::2]
    t = Trace(np.zeros(5, np.uint8), ids, np.full(5, 8))
    assert t.id.flags.c_contiguous and t.id.tolist() == [0, 2, 4, 6, 8]


def test_slicing_needs_a_slice():
    t = Trace.from_ops([("alloc", 0, 8)])
    with pytest.raises(TypeError):
        t[0]


# ---- files ------------------------------------------------------------------

EDGE = Trace.from_ops([
    ("alloc", 0, 0), ("alloc", (1 << 64) - 1, (1 << 64) - 1, True, 65535),
    ("free", (1 << 64) - 1), ("alloc", 3, 32768, False, 7), ("free", 0),
])


@pytest.mark.parametrize("make", [
    lambda: workloads.go_mix(3000, live=300, seed=4, procs=3),
    lambda: workloads.producer_consumer(2001, live=100, procs=4),
    lambda: EDGE,
    lambda: Trace.from_ops([]),
], ids=["go_mix", "producer_consumer", "edge-values", "empty"])
@pytest.mark.parametrize("fmt", ["text", "binary"])
def test_round_trip(tmp_path, make, fmt):
    t = make()
    path = tmp_path / ("t.trace" if fmt == "text" else "t.gatrace")
    if fmt == "text":
        t.write_text(path)
        assert path.read_text().splitlines()[0] == TEXT_HEADER
        assert Trace.read_text(path) == t
    else:
        t.write_binary(path)
        raw = path.read_bytes()
        assert raw[:8] == BINARY_MAGIC
        assert struct.unpack_from("<Q", raw, 8)[0] == len(t)
        assert len(raw) == 16 + 20 * len(t)
        assert Trace.read_binary(path) == t
    # load() tells the formats apart by content, save() by extension
    assert Trace.load(path) == t
    other = tmp_path / ("u.gatrace" if fmt == "text" else "u.txt")
    t.save(other)
    assert other.read_bytes()[:8] == (BINARY_MAGIC if fmt == "text"
                                      else TEXT_HEADER.encode()[:8])
    assert Trace.load(other) == t


def test_text_format_by_hand(tmp_path):
    path = tmp_path / "hand.trace"
    path.write_text(f"{TEXT_HEADER}\n\n# a comment\n  a 0 24 0 0\n"
                    "a 1 3 1 1   \n# another\nf 0\n\nf 1\n")
    t = Trace.load(path)
    assert t == Trace.from_ops([("alloc", 0, 24), ("alloc", 1, 3, True, 1),
                                ("free", 0), ("free", 1)])
    # the exact text written
    t.write_text(path)
    assert path.read_text() == (f"{TEXT_HEADER}\na 0 24 0 0\na 1 3 1 1\n"
                                "f 0\nf 1\n")


def test_binary_columns_by_hand(tmp_path):
    t = Trace.from_ops([("alloc", 5, 300, True, 258), ("free", 5)])
    path = tmp_path / "b.gatrace"
    t.write_binary(path)
    assert path.read_bytes() == (
        BINARY_MAGIC + struct.pack("<Q", 2) + bytes([0, 1]) + bytes([1, 0])
        + struct.pack("<2H", 258, 0) + struct.pack("<2Q", 5, 5)
        + struct.pack("<2Q", 300, 0))
    # the binary format keeps a P on frees (the text one has no field)
    t2 = Trace([0, 1], [1, 1], [8, 0], [0, 0], [0, 9])
    t2.write_binary(path)
    assert Trace.load(path).p.tolist() == [0, 9]


@pytest.mark.parametrize("body,line", [
    ("a 0 8 0 0\nx 1\n", 3),
    ("a 0 8 0\n", 2),
    ("a 0 8 0 0 0\n", 2),
    ("\n\na 0 8 0 0\n# c\nf\n", 6),
    ("f 1 2\n", 2),
    ("a zero 8 0 0\n", 2),
    ("a 0 8.5 0 0\n", 2),
    ("a 0 8 2 0\n", 2),
    ("a 0 8 0 65536\n", 2),
    ("a -1 8 0 0\n", 2),
    (f"a {1 << 64} 8 0 0\n", 2),
    ("a 0 8 0 0\nA 1 8 0 0\n", 3),
    # decimal digits only: int() alone takes all of these
    ("a 1_000 8 0 0\n", 2),
    ("a +1 8 0 0\n", 2),
    ("a 0 8 0 0\nf -0\n", 3),
    (f"a 0 {'9' * 5000} 0 0\n", 2),
])
def test_malformed_text_names_the_line(tmp_path, body, line):
    path = tmp_path / "bad.trace"
    path.write_text(f"{TEXT_HEADER}\n{body}")
    for read in (Trace.load, Trace.read_text):
        with pytest.raises(TraceError) as e:
            read(path)
        assert e.value.index == line
        assert f"line {line}" in str(e.value)
        assert str(path) in str(e.value)


@pytest.mark.parametrize("content", [
    b"", b"a 0 8 0 0\n", b"# goalloc trace v2\n", b"\x00\x01\xff\xfe\n",
    TEXT_HEADER.encode()[:-1] + b"\n",
])
def test_text_header_is_required(tmp_path, content):
    path = tmp_path / "bad.trace"
    path.write_bytes(content)
    with pytest.raises(TraceError) as e:
        Trace.load(path)
    assert e.value.index == 1 and "line 1" in str(e.value)


def test_malformed_binary(tmp_path):
    good = tmp_path / "good.gatrace"
    Trace.from_ops([("alloc", 0, 8), ("free", 0)]).write_binary(good)
    raw = good.read_bytes()
    cases = {
        "magic": b"GATRACE2" + raw[8:],
        "header": raw[:12],
        "short": raw[:-1],
        "long": raw + b"\0",
        "count": raw[:8] + struct.pack("<Q", 3) + raw[16:],
        "huge": raw[:8] + struct.pack("<Q", (1 << 64) - 1) + raw[16:],
    }
    for name, data in cases.items():
        path = tmp_path / f"{name}.gatrace"
        path.write_bytes(data)
        with pytest.raises(TraceError) as e:
            Trace.read_binary(path)
        assert str(path) in str(e.value), name
    # a kind byte other than 0/1 names its op
    bad = bytearray(raw)
    bad[17] = 7
    path = tmp_path / "kind.gatrace"
    path.write_bytes(bytes(bad))
    with pytest.raises(TraceError) as e:
        Trace.load(path)
    assert e.value.index == 1
    assert str(path) in str(e.value)
    # so does a noscan byte other than 0/1 (it was taken as is)
    bad = bytearray(raw)
    bad[16 + 2 + 1] = 2       # kind[2], then noscan[0], noscan[1]
    path = tmp_path / "noscan.gatrace"
    path.write_bytes(bytes(bad))
    with pytest.raises(TraceError) as e:
        Trace.load(path)
    assert e.value.index == 1 and "noscan must be 0 or 1" in str(e.value)
    assert str(path) in str(e.value)


def test_renumbered_keeps_the_ops():
    t = Trace.from_ops([("alloc", 1 << 40, 8), ("alloc", 7, 16, True, 2),
                        ("free", 1 << 40), ("alloc", (1 << 64) - 1, 24),
                        ("alloc", 1 << 40, 32)])
    dense, ids = t.renumbered()
    assert ids.tolist() == [7, 1 << 40, (1 << 64) - 1]
    assert dense.id.tolist() == [1, 0, 1, 2, 1]
    assert ids[dense.id].tolist() == t.id.tolist()
    for col in ("kind", "size", "noscan", "p"):
        assert np.array_equal(getattr(dense, col), getattr(t, col))
    assert dense.id.dtype == np.uint64 and dense.nids == 3
    empty, ids = Trace.from_ops([]).renumbered()
    assert len(empty) == 0 and len(ids) == 0


def test_missing_file_is_an_os_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        Trace.load(tmp_path / "nope.trace")


# ---- replay = the same ops through alloc/free ---------------------------

@pytest.mark.parametrize("procs", [1, 3])
def test_replay_equals_alloc_free_calls(backing, procs):
    trace = small_trace(procs=procs)
    # One heap after the other, so that the os backing maps both at the
    # same hints and addresses compare directly.
    with goalloc.Heap(backing=backing, procs=procs) as h:
        tl = h.replay(trace, sample_every=500)
        h.verify()
        replayed = heap_state(h)
        objects = h.object_array().copy()
    with goalloc.Heap(backing=backing, procs=procs) as h:
        addr = apply_ops(h, trace)
        h.verify()
        called = heap_state(h)
        assert np.array_equal(h.object_array(), objects)
    assert replayed == called
    assert len(tl.addresses) == trace.nids
    assert {i: int(tl.addresses[i]) for i in addr} == addr
    live = set()
    for op in trace:
        (live.add if op.kind == ALLOC else live.discard)(op.id)
    assert set(np.flatnonzero(tl.live).tolist()) == live
    assert tl.nops == len(trace)


def test_replay_in_chunks_with_progress_is_the_same(backing):
    trace = small_trace(seed=2)
    with goalloc.Heap(backing=backing, procs=2) as h:
        whole = h.replay(trace, sample_every=97)
        state = heap_state(h)
    calls = []
    with goalloc.Heap(backing=backing, procs=2) as h:
        chunked = h.replay(trace, sample_every=97, chunk=1000,
                           progress=lambda d, n: calls.append((d, n)))
        assert heap_state(h) == state
    n = len(trace)
    assert calls == [(min(n, k), n) for k in range(1000, n + 1000, 1000)]
    for name, col in whole.columns().items():
        assert np.array_equal(col, chunked.columns()[name], equal_nan=True)
    assert np.array_equal(whole.addresses, chunked.addresses)
    # progress without chunk: 100 chunks
    calls.clear()
    with goalloc.Heap(backing="virtual", procs=2) as h:
        h.replay(trace, progress=lambda d, n: calls.append(d))
    assert len(calls) in (100, 101) and calls[-1] == n
    assert calls == sorted(calls)


def test_replay_onto_a_used_heap_and_twice(backing):
    """A replay starts from whatever the heap holds; ids are per replay."""
    trace = workloads.uniform(2000, 1, 2000, live=100, seed=5)
    with goalloc.Heap(backing=backing) as h:
        keep = h.alloc(5000)
        h.replay(trace)
        h.replay(trace)        # same ids again: a fresh id table
        h.free(keep)
        h.verify()
        state = heap_state(h)
    with goalloc.Heap(backing=backing) as h:
        keep = h.alloc(5000)
        apply_ops(h, trace)
        apply_ops(h, trace)
        h.free(keep)
        assert heap_state(h) == state


def test_replay_of_nothing(backing):
    with goalloc.Heap(backing=backing) as h:
        before = heap_state(h)
        tl = h.replay(Trace.from_ops([]), sample_every=10)
        assert heap_state(h) == before
    assert len(tl) == 1 and tl.op.tolist() == [-1] and tl.nops == 0
    assert len(tl.addresses) == 0


# ---- bad traces stop at the bad op ------------------------------------------

BAD = {
    "free-unknown": (lambda t: [*t, ("free", 10**6)], TraceError),
    "double-free": (lambda t: [*t, ("alloc", 10**6, 64), ("free", 10**6),
                               ("free", 10**6)], TraceError),
    "alloc-live": (lambda t: [*t, ("alloc", 10**6, 64),
                              ("alloc", 10**6, 64)], TraceError),
    "bad-p": (lambda t: [*t, ("alloc", 10**6, 64, False, 5)], TraceError),
    "too-big": (lambda t: [*t, ("alloc", 10**6, 1 << 60)], TraceError),
}


def _ops(trace: Trace) -> list[tuple]:
    return [("alloc", o.id, o.size, o.noscan, o.p) if o.kind == ALLOC
            else ("free", o.id) for o in trace]


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_op_stops_the_replay_there(backing, case):
    make, exc = BAD[case]
    good = workloads.go_mix(1500, live=200, seed=7, procs=2)
    ops = make(_ops(good)) + _ops(good[:50])   # ops after the bad one
    trace = Trace.from_ops(ops)
    bad_index = len(make(_ops(good))) - 1
    with goalloc.Heap(backing=backing, procs=2) as h:
        with pytest.raises(exc) as e:
            h.replay(trace, sample_every=100, progress=lambda d, n: None)
        assert e.value.index == bad_index
        assert f"op {bad_index}" in str(e.value)
        h.verify()
        state = heap_state(h)
        h.alloc(100)        # the heap still works
        h.verify()
    # exactly the ops before the bad one were applied
    with goalloc.Heap(backing=backing, procs=2) as h:
        h.replay(trace[:bad_index])
        assert heap_state(h) == state


def test_out_of_memory_in_a_replay():
    trace = Trace.from_ops([("alloc", 0, 1 << 20), ("alloc", 1, 1 << 30),
                            ("free", 0)])
    with goalloc.Heap(backing="virtual", sys_limit=256 << 20) as h:
        with pytest.raises(goalloc.OutOfMemoryError) as e:
            h.replay(trace)
        assert e.value.index == 1
        # the binding's message for the status, with the heap's reason
        assert re.search(r"^replay stopped at op 1 \(alloc id 1, size "
                         r"1073741824\): allocation failed \(runtime: out "
                         r"of memory: cannot allocate 1073741824-byte "
                         r"block: the heap would grow past sys_limit\)",
                         str(e.value)), str(e.value)
        h.verify()
        assert h.stats().heap_alloc == 1 << 20


def test_replay_sample_every_and_chunk_are_checked():
    """sample_every is a uint64 for the C replay: 2**64 + 1 used to wrap
    to 1 there (with room for 2 samples); floats, strings and bools are
    TypeErrors, before any op."""
    t = workloads.uniform(200, 8, 64, live=20)
    with goalloc.Heap(backing="virtual") as h:
        d = h.digest()
        for kw, exc in ((dict(sample_every=2**64 + 1), ValueError),
                        (dict(sample_every=2**64), ValueError),
                        (dict(sample_every=-1), ValueError),
                        (dict(sample_every=1.5), TypeError),
                        (dict(sample_every="3"), TypeError),
                        (dict(sample_every=True), TypeError),
                        (dict(chunk=2.5), TypeError),
                        (dict(chunk="x"), TypeError)):
            with pytest.raises(exc, match="sample_every|chunk"):
                h.replay(t, **kw)
            assert h.digest() == d
        assert len(h.replay(t, sample_every=2**64 - 1)) == 2
        assert len(h.replay(t[:0], sample_every=np.int64(3))) == 1


def test_replay_argument_errors():
    t = Trace.from_ops([("alloc", 0, 8)])
    with goalloc.Heap(backing="virtual") as h:
        with pytest.raises(ValueError):
            h.replay(t, sample_every=-1)
        trace = workloads.uniform(500, 8, 8, live=10)
        with pytest.raises(ZeroDivisionError):
            h.replay(trace, chunk=100, progress=lambda d, n: 1 / 0)
        # the first chunk was applied; the heap is consistent
        h.verify()
        assert h.stats().mallocs == np.count_nonzero(trace.kind[:100] == ALLOC)
    h = goalloc.Heap(backing="virtual")
    h.close()
    with pytest.raises(goalloc.HeapClosedError):
        h.replay(t)


def test_other_threads_get_heap_busy_during_a_replay():
    trace = workloads.uniform(3_000_000, 8, 256, live=20_000, seed=1)
    for _attempt in range(3):
        with goalloc.Heap(backing="virtual") as h:
            started = threading.Event()
            result: dict = {}

            # (bound as defaults: the thread is joined before the loop
            # goes on, but say so)
            def run(h=h, started=started, result=result):
                try:
                    result["tl"] = h.replay(
                        trace, chunk=len(trace) // 4,
                        progress=lambda d, n: started.set())
                except BaseException as e:  # pragma: no cover
                    result["error"] = e

            th = threading.Thread(target=run)
            th.start()
            assert started.wait(60)
            busy = ok = 0
            while th.is_alive():
                for call in (h.stats, h.hints, h._counters, h.verify,
                             lambda: h.alloc(8), h.spans):
                    try:
                        call()
                        ok += 1
                    except goalloc.HeapBusyError as e:
                        assert "replaying" in str(e)
                        busy += 1
                time.sleep(0)
            th.join()
            assert "error" not in result
            h.verify()
            assert isinstance(h.stats(), goalloc.MemStats)   # usable after
            if busy:
                break
    assert busy > 0, "no call ever overlapped the replay"
    assert issubclass(goalloc.HeapBusyError, goalloc.GoallocError)


# ---- samples equal live statistics ------------------------------------------

@pytest.mark.parametrize("every", [1, 333, 1000])
def test_samples_equal_live_stats_at_the_same_op(backing, every):
    trace = small_trace(seed=3, procs=2)
    n = len(trace)
    with goalloc.Heap(backing=backing, procs=2) as h:
        initial = h._counters()
        tl = h.replay(trace, sample_every=every)
    expect_ops = [-1] + [k for k in range(n) if (k + 1) % every == 0]
    if expect_ops[-1] != n - 1:
        expect_ops.append(n - 1)
    assert tl.op.tolist() == expect_ops
    assert tuple(int(getattr(tl, f)[0]) for f in COUNTER_FIELDS) == initial
    rows = [1, len(tl) // 2, len(tl) - 1] if every > 1 else [1, 777, n]
    for j in rows:
        k = int(tl.op[j]) + 1           # ops applied at sample j
        with goalloc.Heap(backing=backing, procs=2) as h2:
            h2.replay(trace[:k])
            st = h2.stats()
            fr = h2.fragmentation()
            assert h2._counters() == tuple(int(getattr(tl, f)[j])
                                           for f in COUNTER_FIELDS)
            assert int(tl.largest_free[j]) == largest_free(h2)
        for f in ("heap_alloc", "heap_inuse", "heap_idle", "heap_released",
                  "heap_sys"):
            assert int(getattr(tl, f)[j]) == getattr(st, f), f
        assert int(tl.live_objects[j]) == st.heap_objects
        assert int(tl.requested_live[j]) == fr.requested_live
        for m in fragmentation.METRICS:
            got, want = float(tl.metrics[m][j]), getattr(fr, m)
            assert got == want or (math.isnan(got) and math.isnan(want)), m
        for m in ("internal", "span", "page", "external"):
            assert int(tl.metrics[m + "_bytes"][j]) == getattr(fr, m +
                                                               "_bytes")


def test_requested_live_is_what_callers_asked_for(backing):
    with goalloc.Heap(backing=backing) as h:
        asked = {h.alloc(n, noscan=ns): n for n, ns in
                 ((3, True), (5, True), (24, False), (1000, True),
                  (40_000, False), (0, False))}
        assert h.fragmentation().requested_live == sum(asked.values())
        a = next(iter(asked))
        h.free(a)
        assert h.fragmentation().requested_live == sum(asked.values()) - 3


# ---- Timeline --------------------------------------------------------

def test_timeline_columns_and_files(tmp_path):
    trace = workloads.phases(20_000, live=1000, seed=2)
    with goalloc.Heap(backing="virtual") as h:
        tl = h.replay(trace, sample_every=1000)
        assert "21 samples over 20000 ops" in repr(tl)
    cols = tl.columns()
    assert list(cols)[:len(COUNTER_FIELDS) + 1] == ["op", *COUNTER_FIELDS]
    assert set(fragmentation.METRICS) <= set(cols)
    assert all(len(c) == len(tl) == 21 for c in cols.values())
    assert np.array_equal(tl.internal_waste, tl.heap_alloc - tl.requested_live)
    assert math.isnan(tl.metrics["overhead"][0])     # nothing live yet

    tl.save(tmp_path / "t.csv")
    with open(tmp_path / "t.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == list(cols)
    assert len(rows) == 1 + len(tl)
    for name, col in cols.items():
        got = np.array([float(r[rows[0].index(name)]) for r in rows[1:]])
        assert np.allclose(got, col.astype(float), equal_nan=True), name
    assert rows[1][rows[0].index("overhead")] == "nan"

    tl.save(tmp_path / "t.json")
    doc = json.loads((tmp_path / "t.json").read_text())
    assert doc["schema"] == "goalloc.timeline/1" and doc["nops"] == 20_000
    assert list(doc["columns"]) == list(cols)
    assert doc["columns"]["overhead"][0] is None        # NaN -> null
    assert doc["columns"]["heap_alloc"] == tl.heap_alloc.tolist()
    assert doc["columns"]["op"][:3] == [-1, 999, 1999]
    tl.save(tmp_path / "t.other")                      # JSON otherwise
    assert json.loads((tmp_path / "t.other").read_text()) == doc


# ---- fragmentation metrics -------------------------------------------------

def test_fragmentation_formulas():
    m = fragmentation.compute(heap_alloc=900, heap_inuse=1200, heap_idle=800,
                              heap_released=300, heap_sys=2000,
                              requested_live=600, largest_free=500)
    assert m["internal_bytes"] == 300 and m["internal"] == pytest.approx(1 / 3)
    assert m["span_bytes"] == 300 and m["span"] == pytest.approx(0.25)
    assert m["page_bytes"] == 500 and m["page"] == pytest.approx(0.25)
    assert m["external_bytes"] == 300 and m["external"] == pytest.approx(0.375)
    assert m["overhead"] == pytest.approx(2000 / 600)
    # zero denominators: 0, except overhead (NaN while nothing is live)
    z = fragmentation.compute(0, 0, 0, 0, 0, 0, 0)
    assert [float(z[k]) for k in ("internal", "span", "page", "external")] \
        == [0.0] * 4
    assert math.isnan(z["overhead"])
    # arrays in, arrays out
    zero = np.zeros(2, dtype=np.int64)
    alloc = np.array([0, 900])
    a = fragmentation.compute(alloc, alloc, zero, zero, zero,
                              np.array([0, 450]), zero)
    assert a["internal"].tolist() == [0.0, 0.5]
    assert a["internal_bytes"].tolist() == [0, 450]


def test_heap_fragmentation_matches_stats(backing):
    with goalloc.Heap(backing=backing) as h:
        f0 = h.fragmentation()
        assert (f0.internal, f0.span, f0.page, f0.external) == (0, 0, 0, 0)
        assert math.isnan(f0.overhead)
        objs = [h.alloc(n) for n in (20, 100, 5000, 70_000)] + \
            [h.alloc(3, noscan=True)]
        for a in objs[:2]:
            h.free(a)
        st = h.stats()
        f = h.fragmentation()
        requested = 5000 + 70_000 + 3
        assert f.requested_live == requested
        assert f.heap_alloc == st.heap_alloc
        assert f.internal_bytes == st.heap_alloc - requested
        assert f.internal == pytest.approx((st.heap_alloc - requested)
                                           / st.heap_alloc)
        assert f.span_bytes == st.heap_inuse - st.heap_alloc
        assert f.page_bytes == st.heap_idle - st.heap_released
        assert f.page == pytest.approx(f.page_bytes / st.heap_sys)
        assert f.external_bytes == st.heap_idle - largest_free(h)
        assert f.overhead == pytest.approx(st.heap_sys / requested)
        for a in objs[2:]:
            h.free(a)


def test_binary_trace_of_odd_length_loads_aligned(tmp_path):
    # The columns of a binary file sit at offsets that are not multiples of
    # 8 when the op count is odd; the loaded columns must still be aligned
    # for the C replay (UBSan caught a misaligned read here).
    trace = goalloc.Trace.from_ops([("alloc", 0, 24), ("alloc", 1, 40_000),
                                    ("free", 0)])
    path = tmp_path / "odd.gatrace"
    trace.write_binary(path)
    loaded = goalloc.Trace.load(path)
    assert loaded == trace
    for col in ("kind", "id", "size", "noscan", "p"):
        assert getattr(loaded, col).flags.aligned
    with goalloc.Heap(backing="virtual") as h:
        tl = h.replay(loaded)
        assert list(tl.live) == [False, True]
        h.verify()


# ---- bad input (docs/misuse.md) --------------------------------------------


def test_row_malformed_trace_file(world, tmp_path):
    """Wrong header, bad line, truncated binary: TraceError (a
    ValueError); .index is the line (text) or 0 (binary header)."""
    h = world.h
    before = heap_state(h)
    good = Trace.from_ops([("alloc", 0, 8), ("alloc", 1, 100_000, True, 2),
                           ("free", 0)])
    cases = []
    for content, line in ((b"", 1), (b"a 0 8 0 0\n", 1),
                          (b"# goalloc trace v2\na 0 8 0 0\n", 1),
                          (f"{TEXT_HEADER}\na 0 8 0\n".encode(), 2),
                          (f"{TEXT_HEADER}\na 0 8 0 0\n\nx 1\n".encode(), 4),
                          (f"{TEXT_HEADER}\n# c\na 0 8.5 0 0\n".encode(), 3),
                          (f"{TEXT_HEADER}\na 0 8 2 0\n".encode(), 2),
                          (f"{TEXT_HEADER}\nf 1 2\n".encode(), 2)):
        cases.append((f"text{len(cases)}.trace", content, line))
    path = tmp_path / "good.gatrace"
    good.write_binary(path)
    raw = path.read_bytes()
    for name, content in (("header", raw[:12]), ("body", raw[:-1]),
                          ("long", raw + b"\0"), ("empty", b"GATRACE1"),
                          ("count", raw[:8] + b"\xff" * 8 + raw[16:])):
        cases.append((f"{name}.gatrace", content, 0))
    # a wrong magic number: read_binary refuses it as a binary header,
    # load() reads it as text with a wrong first line
    cases.append(("magic.gatrace", b"GATRACE9" + raw[8:], 0))
    cases.append(("magic-load.gatrace", b"GATRACE9" + raw[8:], 1))
    for name, content, index in cases:
        p = tmp_path / name
        p.write_bytes(content)
        read = Trace.read_binary if name == "magic.gatrace" else Trace.load
        with pytest.raises(TraceError) as ei:
            read(p)
        assert_exc(ei.value, TraceError, ValueError, GoallocError,
                   match=re.escape(str(p)))
        assert ei.value.index == index, (name, ei.value.index)
        if index:
            assert f"line {index}" in str(ei.value)
    assert heap_state(h) == before
    p = tmp_path / "fine.trace"
    good.save(p)
    h.replay(Trace.load(p))
    still_works(h, world.live())


def test_row_trace_op_not_replayable(backing):
    """Free of an id that is not live, alloc of a live id: TraceError,
    .index is the op; the ops before it stay applied; the heap is
    consistent."""
    base = workloads.go_mix(2000, live=300, seed=5, procs=PROCS)
    ops = [("alloc", o.id, o.size, o.noscan, o.p) if o.kind == 0
           else ("free", o.id) for o in base]
    nid = base.nids
    bad = {
        "free-never-allocated": [("free", nid + 7)],
        "free-freed": [("alloc", nid, 48), ("free", nid), ("free", nid)],
        "alloc-live": [("alloc", nid, 48, False, 1), ("alloc", nid, 16)],
    }
    for case, tail in bad.items():
        trace = Trace.from_ops(ops + tail + ops[:40])
        index = len(ops) + len(tail) - 1
        # the ops before the bad one, on an identical World
        ref = World(backing)
        try:
            ref.h.replay(trace[:index])
            expected = heap_state(ref.h)
        finally:
            ref.close()
        w = World(backing)
        try:
            with pytest.raises(TraceError) as ei:
                w.h.replay(trace, chunk=500, progress=lambda d, n: None)
            assert_exc(ei.value, TraceError, ValueError, GoallocError,
                       match=rf"^replay stopped at op {index} ")
            assert ei.value.index == index, case
            assert "the ops before it were applied" in str(ei.value)
            assert heap_state(w.h) == expected, case
            still_works(w.h, w.live())
        finally:
            w.close()


def test_row_trace_values_not_integers():
    """Trace(...) and Trace.from_ops values that are not integers:
    TypeError; NumPy alone would truncate 1.7 to id 1 and 16.9 to 16."""
    for kw in (dict(kind=[0, 0], id=[1.7, 2.2], size=[16.9, 24.5]),
               dict(kind=[0, 0], id=[1, 2], size=np.array([16.0, 24.0])),
               dict(kind=[0, 0], id=np.array([1.0, 2.0]), size=[16, 24]),
               dict(kind=[0.0, 1.0], id=[1, 1]),
               dict(kind=[0, 0], id=[1, [2]], size=[16, 24]),
               dict(kind=[0, 0], id=[1, 2], size=["16", "24"]),
               dict(kind=[0, 0], id=[1, 2], size=np.array([True, False])),
               dict(kind=[0, 0], id=[1, 2], size=[16, 24], p=[0, 0.5]),
               dict(kind=[0, 0], id=[1, 2], size=[16, 24],
                    noscan=[0.0, 1.0])):
        with pytest.raises(TypeError) as ei:
            Trace(**kw)
        assert_exc(ei.value, TypeError, match=r"int")
    for op in (("alloc", 1.7, 16), ("alloc", 1, 16.9), ("free", 2.0),
               ("alloc", 1, 16, "yes"), ("alloc", 1, 16, False, 1.0)):
        with pytest.raises(TypeError) as ei:
            Trace.from_ops([("alloc", 0, 8), op])
        assert_exc(ei.value, TypeError, match=r"^op 1: .* must be an int")
    # bools are fine for noscan, and only there
    t = Trace([0, 0], [1, 2], [16, 24], noscan=[True, False])
    assert t.noscan.tolist() == [1, 0]
    assert Trace.from_ops([("alloc", 0, 8, True)]).noscan.tolist() == [1]


def test_row_trace_values_out_of_range():
    """Trace(...) and Trace.from_ops values outside their column:
    TraceError with .index, the op; NumPy alone would wrap size -5 to
    2**64-5."""
    for kw, index, word in (
            (dict(kind=[0, 0], id=[0, 1], size=np.array([16, -5])), 1,
             "size"),
            (dict(kind=[0, 0], id=[0, 1], size=[16, -5]), 1, "size"),
            (dict(kind=[0, 1], id=np.array([-1, 3])), 0, "id"),
            (dict(kind=[0, 0], id=[0, 2**64], size=[1, 1]), 1, "id"),
            (dict(kind=[0, -1], id=[0, 0]), 1, "kind"),
            (dict(kind=np.array([0, 1, 2], np.uint8), id=[0, 0, 1]), 2,
             "kind"),
            (dict(kind=[0, 0], id=[0, 1], p=[3, 1 << 16]), 1, "p"),
            (dict(kind=[0, 0], id=[0, 1], p=np.array([-1, 0])), 0, "p"),
            (dict(kind=[0, 0], id=[0, 1], noscan=[0, 2]), 1, "noscan")):
        with pytest.raises(TraceError) as ei:
            Trace(**kw)
        assert_exc(ei.value, TraceError, ValueError, GoallocError,
                   match=rf"^op {index}: {word} must be")
        assert ei.value.index == index
    for op in (("alloc", -1, 8), ("alloc", 1, -8), ("alloc", 1, 8, 2),
               ("alloc", 1, 8, False, 1 << 16), ("free", -3)):
        with pytest.raises(TraceError) as ei:
            Trace.from_ops([("free", 0), op])
        assert ei.value.index == 1
    for kw in (dict(kind=[0, 0], id=[1]),
               dict(kind=[0, 0], id=[[0, 1], [2, 3]])):
        with pytest.raises(ValueError) as ei:
            Trace(**kw)
        assert_exc(ei.value, ValueError)


def test_row_replay_id_beyond_limit(world):
    """A replay of a trace with an id beyond 2**31-1: TraceError naming
    the first such op, before any op is applied (it used to be NumPy's
    MemoryError or ValueError, making a table of 2**40 or 2**64 ids)."""
    h = world.h
    for big in (2**31, 2**40, 2**63, 2**64 - 1):
        trace = Trace.from_ops([("alloc", 0, 48), ("alloc", 5, 100_000),
                                ("alloc", big, 16), ("free", big),
                                ("alloc", big + 1 if big < 2**64 - 1 else 7,
                                 8)])
        e = rejected(h, TraceError, h.replay, trace, bases=(ValueError,
                                                           GoallocError),
                     match=rf"^op 2: id {big} is beyond")
        assert e.index == 2
        assert "Trace.renumbered()" in str(e)
        # the way out: the same ops with dense ids
        dense, ids = trace.renumbered()
        assert ids.tolist() == sorted(set(trace.id.tolist()))
        assert ids[dense.id].tolist() == trace.id.tolist()
        with goalloc.Heap(backing="virtual") as a, \
                goalloc.Heap(backing="virtual") as b:
            a.replay(dense)
            b.replay(Trace(trace.kind, np.unique(trace.id,
                                                 return_inverse=True)[1],
                           trace.size))
            assert a.digest() == b.digest()
    still_works(h, world.live())


def test_row_replay_bad_options(world):
    """sample_every 2**64 + 1000 (it used to wrap to 1000 in C), a
    negative chunk, a non-callable progress: refused, heap unchanged."""
    h = world.h
    trace = goalloc.Trace.from_ops([("alloc", i, 24) for i in range(40)])
    rejected(h, ValueError, h.replay, trace, sample_every=2**64 + 1000)
    rejected(h, ValueError, h.replay, trace, chunk=-1)
    rejected(h, TypeError, h.replay, trace, progress=3)
    rejected(h, TypeError, h.replay, trace, sample_every=1.5)
    still_works(h, world.live())
