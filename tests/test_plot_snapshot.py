"""goalloc.plot's heap plots drawn from a snapshot document (what
``goalloc run --stats`` writes for a real program): each figure's data
equals the figure drawn from the live heap the snapshot was taken from."""
from __future__ import annotations

import copy
import json
from typing import Any

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")  # tests only: goalloc.plot never selects a backend

import goalloc  # noqa: E402
from goalloc import plot  # noqa: E402
from goalloc.arrays import PAGE_FREE, PAGE_RELEASED  # noqa: E402
from goalloc.snapshot import export_json, load_json, snapshot  # noqa: E402

HEAP_PLOTS = {
    "size_class_waste": plot.size_class_waste,
    "span_occupancy": plot.span_occupancy,
    "page_map": plot.page_map,
    "address_space": plot.address_space,
}


def _patch(p: Any) -> list[Any]:
    """A patch's outline in its own (data) coordinates."""
    return np.round(p.get_patch_transform().transform(
        p.get_path().vertices), 6).tolist()


def _collection(c: Any) -> dict[str, Any]:
    return {"label": c.get_label(),
            "offsets": np.asarray(c.get_offsets()).tolist(),
            "paths": [np.asarray(p.vertices).tolist() for p in c.get_paths()],
            "colours": np.asarray(c.get_facecolor()).tolist()}


def _axes(ax: Any) -> dict[str, Any]:
    legend = ax.get_legend()
    return {
        "title": ax.get_title(), "xlabel": ax.get_xlabel(),
        "ylabel": ax.get_ylabel(), "xlim": ax.get_xlim(),
        "ylim": ax.get_ylim(), "xscale": ax.get_xscale(),
        "yticks": [t.get_text() for t in ax.get_yticklabels()],
        "texts": [(t.get_text(), getattr(t, "xy", None)) for t in ax.texts],
        "lines": [(line.get_label(), np.asarray(line.get_xydata()).tolist())
                  for line in ax.lines],
        "collections": [_collection(c) for c in ax.collections],
        "patches": [(type(p).__name__, p.get_label(), _patch(p))
                    for p in ax.patches],
        "images": [np.asarray(im.get_array()).tolist() for im in ax.images],
        "legend": None if legend is None else [
            t.get_text() for t in legend.get_texts()],
    }


def figure_data(fig: Any) -> dict[str, Any]:
    """Everything a figure shows, as plain data: per Axes its titles,
    limits, texts, lines, markers, bars, spans and images; the figure's
    own texts and legends."""
    return {"axes": [_axes(ax) for ax in fig.axes],
            "texts": [t.get_text() for t in fig.texts],
            "legends": [[t.get_text() for t in lg.get_texts()]
                        for lg in fig.legends]}


# ---- heaps of every shape the plots draw ----------------------------------


def _busy(h: goalloc.Heap) -> None:
    """Tiny, small (scan and noscan, several classes) and large objects,
    some freed (dropped on a GC-mode heap, and not yet swept)."""
    addrs = [h.alloc(n, noscan=True) for n in (1, 2, 3, 5, 8, 12)]
    addrs += [h.alloc(n) for n in (8, 24, 100, 100, 1000, 5000, 32768)]
    addrs += [h.alloc(n, noscan=True) for n in (48, 640, 20000)]
    addrs += [h.alloc(n) for n in (40000, 100_000, 3 << 20)]
    addrs += [h.alloc(200, p=h.info().procs - 1) for _ in range(300)]
    for a in addrs[::4]:
        if h.gc_state().enabled:
            h.drop(a)
        else:
            h.free(a)


def _scavenged(h: goalloc.Heap) -> None:
    _busy(h)
    h.flush()
    h.scavenge()


def _two_runs(h: goalloc.Heap) -> None:
    """Blocked hints: arenas in two runs, a large object across arenas
    and the rest of curArena."""
    h.alloc(100)
    for hint in h.hints():
        h.block_range(hint.addr, 1 << 20)
    h.alloc(100 << 20)
    _busy(h)


def _gc_dropped(h: goalloc.Heap) -> None:
    _busy(h)
    for n in (48, 48, 5000, 70000):
        h.drop(h.alloc(n))
    assert h.object_array()["dropped"].any()


SHAPES = {
    "empty": ({}, lambda h: None),
    "busy": ({}, _busy),
    "scavenged": ({}, _scavenged),
    "two-runs": ({}, _two_runs),
    "gc-dropped": ({"collector": "gc"}, _gc_dropped),
    "darwin-arm64": ({"goos": "darwin", "goarch": "arm64"}, _busy),
}


@pytest.fixture(params=sorted(SHAPES))
def shaped(request: pytest.FixtureRequest) -> Any:
    options, fill = SHAPES[request.param]
    with goalloc.Heap(backing="virtual", procs=2, **options) as h:
        fill(h)
        yield h


@pytest.mark.parametrize("name", sorted(HEAP_PLOTS))
def test_snapshot_draws_what_its_heap_draws(shaped, name, tmp_path):
    """The same figure from the heap, from snapshot(heap) and from the
    snapshot's JSON file read back."""
    make = HEAP_PLOTS[name]
    want = figure_data(make(shaped))
    assert figure_data(make(snapshot(shaped))) == want
    path = tmp_path / "heap.json"
    export_json(shaped, path)
    assert figure_data(make(load_json(path))) == want


def test_figure_data_tells_heaps_apart():
    """The comparison above is not vacuous: two different heaps give
    different data in every plot."""
    with goalloc.Heap(backing="virtual") as a, \
            goalloc.Heap(backing="virtual") as b:
        _busy(a)
        _scavenged(b)
        b.alloc(200 << 20)  # more arenas: address_space's title says so
        for make in HEAP_PLOTS.values():
            assert figure_data(make(a)) != figure_data(make(b)), make


def test_derived_pages_and_spans_equal_the_heaps(shaped):
    src = plot._Source(snapshot(shaped))
    assert np.array_equal(src.page_array(), shaped.page_array())
    assert np.array_equal(src.span_array(), shaped.span_array())
    assert src.arenas() == shaped.arenas()
    assert src.hints() == shaped.hints()


def test_save_all_from_a_snapshot(shaped, tmp_path):
    doc = json.loads(json.dumps(snapshot(shaped)))
    paths = plot.save_all(doc, outdir=str(tmp_path), prefix="snap")
    assert [p.rsplit("/", 1)[1] for p in paths] == [
        "snap-size-class-waste.png", "snap-span-occupancy.png",
        "snap-page-map.png", "snap-address-space.png"]


def test_large_objects_page_rounding_is_shown():
    """A 40000-byte object takes 5 pages (40960 bytes): 960 bytes lost.
    (The note said 0.0 MiB: it read the objects' sizes, which for a large
    object are Go's limit - base, the requested size.)"""
    with goalloc.Heap(backing="virtual") as h:
        h.alloc(40000)
        h.alloc(1 << 20)
        for src in (h, snapshot(h)):
            texts = [t.get_text() for t in
                     plot.size_class_waste(src).axes[0].texts]
            assert any("2 large objects, 960 B lost to page rounding" in t
                       for t in texts), texts


def test_snapshot_without_live_by_class():
    """A snapshot from before version 1 gained live_by_class: the static
    waste is drawn and a note says why the actual waste is not."""
    with goalloc.Heap(backing="virtual") as h:
        _busy(h)
        doc = snapshot(h)
    del doc["live_by_class"]
    ax = plot.size_class_waste(doc).axes[0]
    assert not any("actual" in line.get_label() for line in ax.lines)
    assert any("no live_by_class" in t.get_text() for t in ax.texts)
    # the other plots need only version 1's first keys
    for key in ("gc", "gc_cycles"):
        doc.pop(key)
    for k in ("sweepgen",):
        for s in doc["spans"]:
            s.pop(k)
    for name in ("span_occupancy", "page_map", "address_space"):
        HEAP_PLOTS[name](doc)


@pytest.mark.parametrize("name", sorted(HEAP_PLOTS))
def test_not_a_heap_or_snapshot(name):
    """A document that is not a snapshot: the validator's ValueError; not
    a mapping either: TypeError; the document is left as it was."""
    with goalloc.Heap(backing="virtual") as h:
        _busy(h)
        doc = snapshot(h)
    bad = copy.deepcopy(doc)
    bad["spans"][0]["state"] = "busy"
    kept = copy.deepcopy(bad)
    with pytest.raises(ValueError, match="state"):
        HEAP_PLOTS[name](bad)
    assert bad == kept
    with pytest.raises(ValueError, match="schema"):
        HEAP_PLOTS[name]({"spans": []})
    with pytest.raises(TypeError, match="Heap or a snapshot"):
        HEAP_PLOTS[name]([doc])


def test_page_codes_add_up_to_the_stats(shaped):
    """The derived page map counts what MemStats counts."""
    doc = snapshot(shaped)
    pages = plot._Source(doc).page_array()
    st, size = doc["stats"], doc["info"]["page_size"]
    assert int((pages >= 0).sum()) * size == st["heap_inuse"]
    assert int((pages == PAGE_FREE).sum()) * size == \
        st["heap_idle"] - st["heap_released"]
    assert int((pages == PAGE_RELEASED).sum()) * size == st["heap_released"]
