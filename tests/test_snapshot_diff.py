"""goalloc.snapshot.diff: what changed between two heaps."""
from __future__ import annotations

import json

import pytest

import goalloc
from goalloc import snapshot as snap
from goalloc import workloads


def test_no_difference(heap):
    d = snap.diff(heap, heap)
    assert not d
    assert str(d).startswith("no difference")
    heap.alloc(100)
    a = snap.snapshot(heap)
    assert not snap.diff(a, heap) and not snap.diff(heap, a)
    assert snap.diff(a, json.loads(json.dumps(a))).to_dict()["stats"] == {}


def test_a_first_allocation(heap):
    before = snap.snapshot(heap)
    p = heap.alloc(64)
    d = snap.diff(before, heap)
    assert d
    st = heap.stats()
    assert d.stats["heap_objects"] == (0, 1)
    assert d.stats["heap_sys"] == (0, st.heap_sys)
    assert "heap_released" not in d.stats or \
        d.stats["heap_released"][1] == st.heap_released
    assert d.arenas_added == [a.base for a in heap.arenas()]
    assert d.arenas_removed == []
    [c] = [c for c in d.classes if c.sizeclass == 5]
    assert (c.size, c.spans, c.pages, c.objects) == (64, (0, 1), (0, 1),
                                                     (0, 1))
    assert {s["base"] for s in d.spans_added} == {s.base for s in
                                                   heap.spans()}
    text = str(d)
    assert "heap_objects" in text and "0 -> 1" in text
    assert f"+{heap.arenas()[0].base:#014x}" in text
    # and back: the free undoes the objects, not the span or the arena
    mid = snap.snapshot(heap)
    heap.free(p)
    back = snap.diff(mid, heap)
    assert back.stats["heap_objects"] == (1, 0)
    assert back.arenas_added == back.arenas_removed == []
    [c] = [c for c in back.classes if c.sizeclass == 5]
    assert c.objects == (1, 0)


def test_spans_changed_added_and_gone():
    with goalloc.Heap(backing="virtual") as h:
        big = h.alloc(1 << 20)
        a = snap.snapshot(h)
        h.free(big)
        d = snap.diff(a, h)
        [c] = [c for c in d.classes if c.sizeclass == 0]
        assert c.spans == (1, 0) and c.pages == (128, 0)
        # the large span became free (same base), or merged into a free
        # neighbour (gone)
        was = {s["base"] for s, _ in d.spans_changed} | {
            s["base"] for s in d.spans_removed}
        assert big in was
        assert any(s["base"] == big for s, t in d.spans_changed
                   if t["state"] == "free") or big in {
            s["base"] for s in d.spans_removed}
        assert "spans:" in str(d)


def test_a_replay_and_the_table():
    pd = pytest.importorskip("pandas")
    with goalloc.Heap(backing="virtual", procs=2) as h:
        a = snap.snapshot(h)
        h.replay(workloads.go_mix(20_000, live=2000, seed=4, procs=2))
        d = snap.diff(a, h)
        st = h.stats()
        for k, (va, vb) in d.stats.items():
            assert va == a["stats"][k] and vb == getattr(st, k)
        json.dumps(d.to_dict())               # JSON-ready
        df = d.to_pandas()
        assert isinstance(df, pd.DataFrame)
        assert list(df.index) == [c.sizeclass for c in d.classes]
        inuse = [s for s in h.spans() if s.state == "inuse"]
        assert df["spans_b"].sum() == len(inuse)
        assert df["pages_b"].sum() * 8192 == st.heap_inuse
        assert (df["spans_change"] == df["spans_b"] - df["spans_a"]).all()
        assert "more" in str(d)          # long lists are cut in the text
        assert d.fragmentation["span"][1] == h.fragmentation().span


def test_configurations_differ():
    with goalloc.Heap(backing="virtual") as a, \
            goalloc.Heap(backing="virtual", release="go1.13.0") as b:
        d = snap.diff(a, b)
        assert d.info["release"] == ("go1.13.8", "go1.13.0")
        assert "release" in str(d)


def test_diff_leaves_heaps_alone_and_checks_input(heap):
    heap.alloc(1000)
    before = heap.digest()
    snap.diff(heap, heap)
    assert heap.digest() == before
    with pytest.raises(TypeError, match="b must be"):
        snap.diff(heap, 3)
    with pytest.raises(TypeError, match="a must be"):
        snap.diff([], heap)
    doc = snap.snapshot(heap)
    del doc["spans"]
    with pytest.raises(ValueError, match="a is not a snapshot.*spans"):
        snap.diff(doc, heap)
