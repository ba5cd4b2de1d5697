"""Comparing runs: Timeline.load (round trips of everything a Timeline
holds), DataFrames of every record type (goalloc.to_pandas), MemStats and
Fragmentation tables, the per-class table, goalloc.compare, and pandas
imported only when a DataFrame is asked for."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import goalloc
from goalloc import Timeline, TimelineError, Trace, workloads
from goalloc.comparison import HEADLINE_COLUMNS, gc_cycles
from goalloc.snapshot import snapshot
from goalloc.trace import COUNTER_FIELDS

pd = pytest.importorskip("pandas")

PKG_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(goalloc.__file__)))
FORMATS = ("json", "npz")


def replayed(trace: Trace, every: int = 100, **kw) -> Timeline:
    with goalloc.Heap(backing="virtual", procs=kw.pop("procs", 1),
                      **kw) as h:
        return h.replay(trace, sample_every=every)


def assert_same(a: Timeline, b: Timeline) -> None:
    """Field by field, dtypes included (equals() is what is tested)."""
    assert a.nops == b.nops
    for name in ("op", *COUNTER_FIELDS):
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype == np.int64, name
        assert x.tolist() == y.tolist(), name
    assert a.addresses.dtype == b.addresses.dtype == np.uint64
    assert a.addresses.tolist() == b.addresses.tolist()
    assert a.live.dtype == b.live.dtype == np.bool_
    assert a.live.tolist() == b.live.tolist()
    assert a.metrics.keys() == b.metrics.keys()
    for k in a.metrics:
        np.testing.assert_array_equal(a.metrics[k], b.metrics[k])
    assert a.equals(b) and b.equals(a)


# ---- Timeline.load -------------------------------------------------------

@pytest.mark.parametrize("fmt", FORMATS)
def test_timeline_round_trip_of_a_replay(tmp_path, fmt):
    trace = workloads.go_mix(20_000, live=1000, seed=3, procs=2)
    tl = replayed(trace, every=250, procs=2)
    assert tl.live.any() and not tl.live.all()
    path = tmp_path / f"tl.{fmt}"
    tl.save(path)
    back = Timeline.load(path)
    assert_same(tl, back)
    # and again: a loaded Timeline writes the same file
    back.save(tmp_path / f"again.{fmt}")
    assert_same(tl, Timeline.load(tmp_path / f"again.{fmt}"))


@st.composite
def traces(draw):
    """Random valid traces: allocs of fresh ids, frees of live ones."""
    n = draw(st.integers(0, 60))
    ops, live, next_id = [], [], 0
    for _ in range(n):
        if live and draw(st.booleans()):
            i = draw(st.integers(0, len(live) - 1))
            ops.append(("free", live.pop(i)))
        else:
            size = draw(st.sampled_from([0, 1, 8, 16, 100, 2000, 40_000,
                                         1 << 20]))
            ops.append(("alloc", next_id, size, draw(st.booleans())))
            live.append(next_id)
            next_id += 1
    return Trace.from_ops(ops)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(trace=traces(), every=st.integers(0, 7), fmt=st.sampled_from(FORMATS))
def test_timeline_round_trip_hypothesis(tmp_path, trace, every, fmt):
    tl = replayed(trace, every=every)
    path = tmp_path / f"h.{fmt}"
    tl.save(path)
    assert_same(tl, Timeline.load(path))


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(nsamples=st.integers(0, 5), nids=st.integers(0, 6), data=st.data(),
       fmt=st.sampled_from(FORMATS))
def test_timeline_round_trip_extreme_values(tmp_path, nsamples, nids, data,
                                            fmt):
    """Any int64 counters and any uint64 addresses (beyond 2**53, where a
    JSON reader of doubles would round) come back exactly."""
    i64 = st.integers(-(1 << 63), (1 << 63) - 1)
    cols = {name: data.draw(st.lists(i64, min_size=nsamples,
                                     max_size=nsamples))
            for name in ("op", *COUNTER_FIELDS)}
    addrs = data.draw(st.lists(st.integers(0, (1 << 64) - 1),
                               min_size=nids, max_size=nids))
    live = data.draw(st.lists(st.booleans(), min_size=nids, max_size=nids))
    nops = data.draw(st.integers(0, 1 << 62))
    with np.errstate(all="ignore"):   # overflowing differences: any value
        tl = Timeline.from_columns(cols, nops, addrs, live)
    path = tmp_path / f"x.{fmt}"
    tl.save(path)
    with np.errstate(all="ignore"):
        assert_same(tl, Timeline.load(path))


def test_timeline_csv_holds_the_samples(tmp_path):
    tl = replayed(workloads.go_mix(5000, live=300, seed=1), every=500)
    tl.save(tmp_path / "tl.csv")
    back = Timeline.load(tmp_path / "tl.csv")
    assert back.nops == tl.nops == 5000
    assert len(back.addresses) == 0 and len(back.live) == 0
    for name in ("op", *COUNTER_FIELDS):
        assert getattr(back, name).tolist() == getattr(tl, name).tolist()
    assert not back.equals(tl)        # the ids are not in a CSV


def test_json_written_before_addresses_still_loads(tmp_path):
    tl = replayed(workloads.go_mix(2000, live=100, seed=1), every=500)
    tl.to_json(tmp_path / "tl.json")
    doc = json.loads((tmp_path / "tl.json").read_text())
    assert len(doc["addresses"]) == len(tl.addresses) > 0
    del doc["addresses"], doc["live"]
    (tmp_path / "old.json").write_text(json.dumps(doc))
    old = Timeline.load(tmp_path / "old.json")
    assert old.heap_sys.tolist() == tl.heap_sys.tolist()
    assert len(old.addresses) == 0


def bad_json(tmp_path, mutate):
    tl = replayed(workloads.go_mix(2000, live=100, seed=1), every=500)
    tl.to_json(tmp_path / "tl.json")
    doc = json.loads((tmp_path / "tl.json").read_text())
    mutate(doc)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))
    return path


@pytest.mark.parametrize("mutate,words", [
    (lambda d: d.update(schema="goalloc.snapshot/1"), ["schema"]),
    (lambda d: d["columns"].pop("heap_sys"), ["missing", "heap_sys"]),
    (lambda d: d["columns"]["heap_idle"].append(1), ["lengths"]),
    (lambda d: d["columns"]["heap_alloc"].__setitem__(0, "x"),
     ["heap_alloc"]),
    (lambda d: d["columns"]["heap_alloc"].__setitem__(0, 1.5),
     ["heap_alloc", "integers"]),
    (lambda d: d["addresses"].__setitem__(0, -1), ["addresses", "range"]),
    (lambda d: d["addresses"].__setitem__(0, 1 << 64), ["addresses"]),
    (lambda d: d["live"].append(1), ["addresses", "live flags"]),
    (lambda d: d["live"].__setitem__(0, 2), ["0 or 1"]),
    (lambda d: d.update(nops=-1), ["nops"]),
    (lambda d: d.update(nops=True), ["nops"]),
    (lambda d: d.update(columns=[]), ["columns"]),
])
def test_bad_timeline_json(tmp_path, mutate, words):
    path = bad_json(tmp_path, mutate)
    with pytest.raises(TimelineError) as e:
        Timeline.load(path)
    assert isinstance(e.value, goalloc.GoallocError)
    assert isinstance(e.value, ValueError)
    for w in words:
        assert w in str(e.value), (w, str(e.value))
    assert str(path) in str(e.value)


def test_bad_timeline_files(tmp_path):
    (tmp_path / "a.json").write_text("{not json")
    (tmp_path / "b.npz").write_bytes(b"PK\x03\x04garbage")
    np.savez(tmp_path / "c.npz", op=np.arange(3))
    (tmp_path / "d.csv").write_text("")
    (tmp_path / "e.csv").write_text("op,heap_alloc\n0,1\n")
    tl = replayed(workloads.go_mix(2000, live=100, seed=1), every=500)
    tl.to_csv(tmp_path / "f.csv")
    text = (tmp_path / "f.csv").read_text().splitlines()
    text[2] = text[2].replace(",", ",x", 1)
    (tmp_path / "f.csv").write_text("\n".join(text) + "\n")
    for name, words in (("a.json", ["not a goalloc timeline"]),
                        ("b.npz", ["not a goalloc timeline"]),
                        ("c.npz", ["schema"]), ("d.csv", ["empty"]),
                        ("e.csv", ["missing"]), ("f.csv", ["line 3"])):
        with pytest.raises(TimelineError) as e:
            Timeline.load(tmp_path / name)
        for w in words:
            assert w in str(e.value), (name, str(e.value))
    with pytest.raises(FileNotFoundError):
        Timeline.load(tmp_path / "missing.npz")
    with pytest.raises(FileNotFoundError):
        Timeline.load(tmp_path / "missing.json")


# ---- DataFrames ------------------------------------------------------------

@pytest.fixture(scope="module")
def busy():
    h = goalloc.Heap(backing="virtual", procs=2)
    tl = h.replay(workloads.go_mix(30_000, live=3000, seed=7, procs=2),
                  sample_every=300)
    yield h, tl
    h.verify()
    h.close()


def test_timeline_to_pandas(busy):
    _, tl = busy
    df = tl.to_pandas()
    assert list(df.columns) == list(tl.columns())
    assert len(df) == len(tl) and df.index.name == "sample"
    assert df["heap_inuse"].tolist() == tl.heap_inuse.tolist()
    np.testing.assert_array_equal(df["overhead"].to_numpy(),
                                  tl.metrics["overhead"])


RECORD_LISTS = {
    "spans": (lambda h: h.spans(), goalloc.Span),
    "arenas": (lambda h: h.arenas(), goalloc.Arena),
    "hints": (lambda h: h.hints(), goalloc.ArenaHint),
    "centrals": (lambda h: h.centrals(), goalloc.Central),
    "caches": (lambda h: h.caches(), goalloc.Cache),
    "size_classes": (lambda h: goalloc.size_classes(), goalloc.SizeClass),
    "by_size": (lambda h: h.stats().by_size, goalloc.BySize),
}


@pytest.mark.parametrize("name", RECORD_LISTS)
def test_every_record_list_is_one_call(busy, name):
    h, _ = busy
    get, record = RECORD_LISTS[name]
    items = get(h)
    df = goalloc.to_pandas(items)
    assert len(df) == len(items) > 0
    fields = [f for f in record._fields if f != df.index.name]
    assert list(df.columns)[:len(fields)] == fields
    for i in (0, len(items) - 1):
        for f in fields:
            assert df[f].iloc[i] == getattr(items[i], f), (name, f)
    empty = goalloc.to_pandas([], record=record)
    assert len(empty) == 0 and list(empty.columns)[:len(fields)] \
        == fields or empty.index.name == "sizeclass"


def test_records_extras(busy):
    h, _ = busy
    c = goalloc.to_pandas(h.centrals())
    assert c["sizeclass"].tolist() == [x.sizeclass for x in h.centrals()]
    assert c["noscan"].tolist() == [x.noscan for x in h.centrals()]
    assert goalloc.to_pandas(h.stats().by_size).index.name == "sizeclass"
    assert goalloc.to_pandas(goalloc.size_classes()).loc[3, "size"] == 32
    one = goalloc.to_pandas(h.spans()[0])
    assert len(one) == 1 and one["base"].iloc[0] == h.spans()[0].base
    spans = goalloc.to_pandas(h.span_array())
    assert spans["base"].tolist() == [s.base for s in h.spans()]
    objs = goalloc.to_pandas(h.object_array())
    assert len(objs) == h.stats().heap_objects or len(objs) >= \
        h.stats().heap_objects   # tiny objects one by one
    info = goalloc.to_pandas(h.info())
    assert info.loc["procs", "value"] == 2
    with pytest.raises(TypeError, match="record="):
        goalloc.to_pandas([])
    with pytest.raises(TypeError, match="mixed"):
        goalloc.to_pandas([h.spans()[0], h.arenas()[0]])
    with pytest.raises(TypeError):
        goalloc.to_pandas([1, 2])
    with pytest.raises(TypeError):
        goalloc.to_pandas(np.arange(3))
    with pytest.raises(TypeError):
        goalloc.to_pandas("spans")


def test_memstats_dict_and_table(busy):
    h, _ = busy
    st = h.stats()
    d = st.to_dict()
    assert goalloc.MemStats.from_dict(d) == st
    assert goalloc.MemStats.from_dict(json.loads(json.dumps(d))) == st
    assert d["by_size"][3] == {"sizeclass": 3, "size": 32,
                               "mallocs": st.by_size[3].mallocs,
                               "frees": st.by_size[3].frees}
    # the snapshot's stats are the same document
    assert snapshot(h)["stats"] == d
    df = st.to_pandas()
    names = [n for n, _, _ in goalloc._core.MSTATS_FIELDS]
    assert list(df.index) == names
    for name, _, doc in goalloc._core.MSTATS_FIELDS:
        assert df.loc[name, "value"] == getattr(st, name)
        assert df.loc[name, "meaning"] == doc
    units = dict(df["unit"])
    assert units["heap_sys"] == units["total_alloc"] == "bytes"
    assert units["mallocs"] == units["heap_objects"] == "count"
    assert units["last_gc"] == units["pause_total_ns"] == "ns"
    assert set(units.values()) == {"bytes", "count", "ns"}


def test_fragmentation_table(busy):
    h, _ = busy
    f = h.fragmentation()
    df = f.to_pandas()
    assert list(df.index) == ["internal", "span", "page", "external",
                              "overhead"]
    assert df.loc["span", "ratio"] == f.span
    assert df.loc["page", "bytes"] == f.page_bytes
    assert pd.isna(df.loc["overhead", "bytes"])


def test_class_table_adds_up(busy):
    h, _ = busy
    ct = goalloc.class_table(h)
    st = h.stats()
    assert list(ct.index) == list(range(goalloc.NUM_SIZE_CLASSES))
    assert ct["live_bytes"].sum() == st.heap_alloc
    assert ct["span_bytes"].sum() == st.heap_inuse
    assert ct["live"].sum() == st.heap_objects
    assert ct["mallocs"].tolist() == [b.mallocs for b in st.by_size]
    assert ct["requested"].sum() == h.fragmentation().requested_live
    used = ct[ct["spans"] > 0]
    # a span whose objects all died stays in use (cached, or unswept)
    assert ((used["utilisation"] >= 0) & (used["utilisation"] <= 1)).all()
    assert (used["utilisation"] > 0).any()
    assert ct.loc[ct["spans"] == 0, "utilisation"].isna().all()
    assert (ct["free_slot_bytes"] >= 0).all()
    assert ct.loc[5, "size"] == 64 and ct.loc[5, "objects_per_span"] == 128
    # a span by hand: class 5 (64 B), 3 objects live in one span
    with goalloc.Heap(backing="virtual") as h2:
        for _ in range(3):
            h2.alloc(64)
        row = goalloc.class_table(h2).loc[5]
        assert (row["spans"], row["slots"], row["live"]) == (1, 128, 3)
        assert row["utilisation"] == 3 / 128
        assert row["free_slot_bytes"] == 8192 - 3 * 64


# ---- compare ---------------------------------------------------------------

def test_compare_timelines_heaps_and_snapshots(busy):
    h, tl = busy
    trace = workloads.phases(20_000, live=2000, seed=2)
    old = replayed(trace, every=100, release="go1.13.0")
    new = replayed(trace, every=100)
    df = goalloc.compare({"old": old, "new": new, "heap": h,
                          "snap": snapshot(h)})
    assert list(df.index) == ["old", "new", "heap", "snap"]
    assert list(df.columns) == list(HEADLINE_COLUMNS)
    assert df.index.name == "run"
    for label, t in (("old", old), ("new", new)):
        row = df.loc[label]
        assert row["source"] == "timeline" and row["ops"] == len(trace)
        assert row["peak_heap_inuse"] == t.heap_inuse.max()
        assert row["final_heap_inuse"] == t.heap_inuse[-1]
        assert row["peak_retained"] == (t.heap_sys - t.heap_released).max()
        assert row["peak_released"] == t.heap_released.max()
        assert row["peak_objects"] == t.live_objects.max()
        assert row["peak_page_bytes"] == t.metrics["page_bytes"].max()
        assert row["span"] == t.metrics["span"][-1]
    # the two releases differ where they should: what they give back
    assert df.loc["old", "final_heap_alloc"] == df.loc["new",
                                                        "final_heap_alloc"]
    assert df.loc["old", "final_released"] != df.loc["new",
                                                      "final_released"]
    st = h.stats()
    for label in ("heap", "snap"):
        row = df.loc[label]
        assert row["final_heap_sys"] == row["peak_heap_sys"] == st.heap_sys
        assert row["final_retained"] == st.heap_retained
        assert row["final_objects"] == st.heap_objects
        assert pd.isna(row["peak_heap_inuse"]) and pd.isna(row["ops"])
        assert row["internal"] == h.fragmentation().internal
    assert df.loc["heap"].drop("source").equals(
        df.loc["snap"].drop("source"))
    assert df.loc["heap", "final_heap_sys"] == tl.heap_sys[-1]
    assert str(df["final_heap_sys"].dtype) == "Int64"


def test_compare_errors():
    with pytest.raises(TypeError, match="mapping"):
        goalloc.compare([1, 2])
    with pytest.raises(ValueError, match="no runs"):
        goalloc.compare({})
    with pytest.raises(TypeError, match="Timeline"):
        goalloc.compare({"x": 3})


def test_gc_cycles_column():
    """Every run reports its GC cycles: 0 on an explicit-free heap, the
    cycles of a GC-mode one (Timeline.num_gc, MemStats.num_gc)."""
    trace = workloads.go_mix(60_000, live=100, seed=1)
    a = replayed(trace, every=5000)
    with goalloc.Heap(backing="virtual", collector="gc") as h:
        b = h.replay(trace, sample_every=5000)
    assert gc_cycles(a) == 0 and int(b.num_gc[-1]) > 0
    df = goalloc.compare({"a": a, "b": b})
    assert df.columns[-1] == "gc_cycles"
    assert df.loc["b", "gc_cycles"] == int(b.num_gc[-1])
    assert df.loc["a", "gc_cycles"] == 0
    doc = {"stats": {**goalloc.Heap(backing="virtual").stats().to_dict(),
                     "num_gc": 2},
           "fragmentation": {"requested_live": 0, "internal": 0.0,
                             "span": 0.0, "page": 0.0, "external": 0.0,
                             "overhead": None}}
    assert gc_cycles(doc) == 2


# ---- pandas only when asked ------------------------------------------------

def test_import_goalloc_does_not_import_pandas():
    code = ("import sys, goalloc, goalloc.plot, goalloc.comparison; "
            "print('pandas' in sys.modules)")
    env = dict(os.environ, PYTHONPATH=PKG_ROOT)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True,
                       text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "False"


def test_a_clear_error_without_pandas(busy, monkeypatch):
    h, tl = busy
    monkeypatch.setitem(sys.modules, "pandas", None)   # import fails
    calls = {
        "goalloc.compare": lambda: goalloc.compare({"a": tl}),
        "Timeline.to_pandas": tl.to_pandas,
        "MemStats.to_pandas": lambda: h.stats().to_pandas(),
        "goalloc.to_pandas": lambda: goalloc.to_pandas(h.spans()),
        "goalloc.class_table": lambda: goalloc.class_table(h),
        "Fragmentation.to_pandas": lambda: h.fragmentation().to_pandas(),
    }
    for what, call in calls.items():
        with pytest.raises(ImportError) as e:
            call()
        assert what in str(e.value) and "goalloc[pandas]" in str(e.value)
