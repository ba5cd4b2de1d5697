"""goalloc.plot: every figure renders, on empty and populated heaps, on
both backends, and without touching pyplot's global state."""
from __future__ import annotations

import os
import subprocess
import sys
from io import BytesIO

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")  # tests only: goalloc.plot never selects a backend

import matplotlib.image  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

import goalloc  # noqa: E402
from goalloc import plot, workloads  # noqa: E402
from goalloc.arrays import PAGE_RELEASED  # noqa: E402

HEAP_PLOTS = {
    "size_class_waste": plot.size_class_waste,
    "span_occupancy": plot.span_occupancy,
    "page_map": plot.page_map,
    "address_space": plot.address_space,
}


def render(fig) -> np.ndarray:
    """PNG-encode fig, decode it again and return the pixels."""
    assert isinstance(fig, Figure)
    buf = BytesIO()
    fig.savefig(buf, format="png", dpi=40)
    data = buf.getvalue()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 1000
    buf.seek(0)
    pixels = matplotlib.image.imread(buf, format="png")
    assert pixels.ndim == 3 and pixels.shape[0] > 50 and pixels.shape[1] > 50
    assert np.ptp(pixels) > 0, "the figure is a single colour"
    return pixels


def populate(h: goalloc.Heap) -> list[int]:
    """Tiny, small (scan and noscan, several classes) and large objects,
    some freed, one arena's worth of pages."""
    addrs = [h.alloc(n, noscan=True) for n in (1, 2, 3, 5, 8, 12)]
    addrs += [h.alloc(n) for n in (8, 24, 100, 100, 1000, 5000, 32768)]
    addrs += [h.alloc(n, noscan=True) for n in (48, 640, 20000)]
    addrs += [h.alloc(n) for n in (40000, 100_000, 3 << 20)]
    for a in addrs[::4]:
        h.free(a)
    return addrs


@pytest.fixture
def busy(heap):
    populate(heap)
    return heap


@pytest.fixture
def no_global_state():
    """pyplot's figure registry and the backend stay as they were."""
    figs, backend = plt.get_fignums(), matplotlib.get_backend()
    yield
    assert plt.get_fignums() == figs
    assert matplotlib.get_backend() == backend


@pytest.mark.parametrize("name", sorted(HEAP_PLOTS))
def test_empty_heap(heap, name, no_global_state):
    render(HEAP_PLOTS[name](heap))


@pytest.mark.parametrize("name", sorted(HEAP_PLOTS))
def test_small_large_tiny(busy, name, no_global_state):
    render(HEAP_PLOTS[name](busy))


def test_size_class_waste_without_heap(no_global_state):
    render(plot.size_class_waste())


def test_size_class_waste_marks_actual_waste(busy):
    """A heap adds the actual-waste series to the static ones."""
    ax = plot.size_class_waste(busy).axes[0]
    labels = [line.get_label() for line in ax.lines]
    assert any("actual" in label for label in labels)
    static = plot.size_class_waste().axes[0]
    assert not any("actual" in line.get_label() for line in static.lines)


def test_page_map_after_scavenge(busy):
    """Released pages (and a width that splits arenas differently)."""
    busy.flush()
    busy.scavenge()
    assert (busy.page_array() == PAGE_RELEASED).any()
    render(plot.page_map(busy, width=256))
    render(plot.page_map(busy, width=8192))


@pytest.mark.parametrize("platform", [
    {"goos": "darwin", "goarch": "arm64"},
    {"goos": "linux", "goarch": "arm64"},
    {"goos": "aix", "goarch": "ppc64"},
    {"race": True},
    {"goos": "linux", "goarch": "386"},
])
def test_platforms(platform):
    """Every hint formula and arena size, before and after growth."""
    with goalloc.Heap(backing="virtual", **platform) as h:
        render(plot.address_space(h))
        h.alloc(100)
        h.alloc(3 * h.info().heap_arena_bytes // 2)
        render(plot.address_space(h))
        render(plot.page_map(h))


def test_address_space_collisions_and_fallback():
    """Blocked hints are discarded; with every hint gone, sysAlloc
    reserves anywhere and adds a down and an up hint; arenas then form
    two runs."""
    with goalloc.Heap(backing="virtual") as h:
        h.alloc(100)
        for hint in h.hints():
            h.block_range(hint.addr, 1 << 20)
        h.alloc(100 << 20)
        assert any(x.down for x in h.hints())
        fig = plot.address_space(h)
        assert len(fig.axes) == 3  # the log overview and two close-ups
        render(fig)


@pytest.fixture
def timeline(heap):
    rng = np.random.default_rng(7)
    n = 3000
    sizes = rng.integers(1, 70_000, n)
    freed = rng.permutation(n)[: n // 2]
    trace = goalloc.Trace(
        np.concatenate([np.zeros(n, np.uint8), np.ones(len(freed), np.uint8)]),
        np.concatenate([np.arange(n), freed]),
        np.concatenate([sizes, np.zeros(len(freed), np.int64)]),
        noscan=np.concatenate([rng.integers(0, 2, n),
                               np.zeros(len(freed), np.int64)]))
    return heap.replay(trace, sample_every=100)


def test_timeline(timeline, no_global_state):
    fig = plot.timeline(timeline)
    labels = [line.get_label() for line in fig.axes[0].lines]
    assert labels == ["heap_alloc", "heap_inuse", "heap_idle",
                      "heap_released", "heap_sys"]
    render(fig)


def test_timeline_mixed_columns(timeline):
    """Non-byte columns go on a second axis."""
    fig = plot.timeline(timeline, metrics=("heap_alloc", "live_objects",
                                           "internal"))
    assert len(fig.axes) == 2
    render(fig)


def test_timeline_unknown_metric(timeline):
    with pytest.raises(ValueError, match="no_such_counter"):
        plot.timeline(timeline, metrics=("no_such_counter",))


def test_fragmentation_timeline(timeline, no_global_state):
    fig = plot.fragmentation_timeline(timeline)
    labels = [line.get_label() for ax in fig.axes for line in ax.lines]
    assert labels == ["internal", "span", "page", "external", "overhead"]
    render(fig)


def test_timelines_of_an_empty_trace(heap):
    """One sample, overhead NaN throughout."""
    tl = heap.replay(goalloc.Trace([], []), sample_every=10)
    assert len(tl) == 1
    render(plot.timeline(tl))
    render(plot.fragmentation_timeline(tl))


def test_save_all(busy, timeline, tmp_path, no_global_state):
    out = tmp_path / "figs" / "nested"
    paths = plot.save_all(busy, timeline, outdir=str(out), prefix="t")
    assert len(paths) == 6
    assert len(set(paths)) == 6
    for p in paths:
        assert os.path.dirname(p) == str(out)
        assert os.path.basename(p).startswith("t-") and p.endswith(".png")
        with open(p, "rb") as f:
            data = f.read()
        assert data.startswith(b"\x89PNG") and len(data) > 1000
        assert np.ptp(matplotlib.image.imread(p)) > 0


def test_save_all_without_timeline(heap, tmp_path):
    paths = plot.save_all(heap, outdir=str(tmp_path))
    assert [os.path.basename(p) for p in paths] == [
        "goalloc-size-class-waste.png", "goalloc-span-occupancy.png",
        "goalloc-page-map.png", "goalloc-address-space.png"]
    assert all(os.path.getsize(p) > 0 for p in paths)


def test_plot_leaves_heap_unchanged(busy):
    before = busy.digest()
    for make in HEAP_PLOTS.values():
        make(busy)
    assert busy.digest() == before


def test_import_does_not_load_matplotlib():
    """matplotlib is an optional extra: goalloc and goalloc.plot import
    without it being loaded."""
    code = ("import sys, goalloc, goalloc.plot; "
            "sys.exit('matplotlib' in sys.modules)")
    subprocess.run([sys.executable, "-c", code], check=True)


# ---- ax= and overlays -------------------------------------------------------

ALL_PLOTS = {
    **{name: (lambda h, tl, ax, f=f: f(h, ax=ax))
       for name, f in HEAP_PLOTS.items()},
    "timeline": lambda h, tl, ax: plot.timeline(tl, ax=ax),
    "fragmentation_timeline":
        lambda h, tl, ax: plot.fragmentation_timeline(tl, ax=ax),
}


def test_every_plot_function_is_covered():
    """A plot function added to goalloc.plot must take ax= (this test
    lists them all)."""
    assert set(plot.__all__) - {"save_all"} == set(ALL_PLOTS)


@pytest.mark.parametrize("name", sorted(ALL_PLOTS))
def test_every_plot_draws_into_a_given_axes(busy, timeline, name):
    """ax= draws into that Axes, adds no figure, returns the Axes'
    figure; here a pyplot figure of four panels, the plot in one of
    them, and a SubFigure's panel."""
    fig, axes = plt.subplots(2, 2, figsize=(12, 8))
    try:
        target = axes[1, 0]
        before = {id(a) for a in fig.axes}
        out = ALL_PLOTS[name](busy, timeline, target)
        assert out is fig
        assert target.has_data() or target.images or target.texts
        for other in (axes[0, 0], axes[0, 1], axes[1, 1]):
            assert not other.has_data()
        # only twin axes of the target may appear
        new = [a for a in fig.axes if id(a) not in before]
        assert all(a.get_position().bounds == target.get_position().bounds
                   or a.get_label() == "<colorbar>" for a in new), name
        render(fig)
    finally:
        plt.close(fig)
    from matplotlib.figure import Figure as F
    root = F(figsize=(8, 4))
    sub = root.subfigures(1, 2)[1]
    ax = sub.add_subplot()
    assert ALL_PLOTS[name](busy, timeline, ax) is root
    render(root)


@pytest.fixture
def two_runs():
    tr = workloads.phases(20_000, live=2000, seed=2)
    out = {}
    for release in ("go1.13.8", "go1.13.0"):
        with goalloc.Heap(backing="virtual", release=release) as h:
            out[release] = h.replay(tr, sample_every=200)
    return out


def test_timeline_overlay(two_runs, no_global_state):
    runs = list(two_runs.values())
    fig = plot.timeline(runs, labels=["new", "old"])
    labels = [line.get_label() for line in fig.axes[0].lines]
    assert labels == [f"{r}: {m}" for r in ("new", "old")
                      for m in ("heap_alloc", "heap_inuse", "heap_sys")]
    colours = {line.get_label(): line.get_color()
               for line in fig.axes[0].lines}
    assert colours["new: heap_sys"] == colours["new: heap_alloc"] != \
        colours["old: heap_alloc"]
    assert "2 runs" in fig.axes[0].get_title()
    render(fig)
    by_dict = plot.timeline(two_runs, metrics=("heap_released",))
    assert [line.get_label() for line in by_dict.axes[0].lines] == [
        "go1.13.8: heap_released", "go1.13.0: heap_released"]
    np.testing.assert_array_equal(
        by_dict.axes[0].lines[1].get_ydata(),
        two_runs["go1.13.0"].heap_released / (1 << 20))


def test_fragmentation_overlay(two_runs, no_global_state):
    fig = plot.fragmentation_timeline(two_runs)
    labels = [line.get_label() for ax in fig.axes for line in ax.lines]
    assert labels == [f"{r}: {m}" for r in two_runs
                      for m in ("internal", "span", "page", "external")] \
        + [f"{r}: overhead" for r in two_runs]
    render(fig)


def test_overlay_errors(two_runs):
    runs = list(two_runs.values())
    with pytest.raises(ValueError, match="2 labels for 1"):
        plot.timeline(runs[:1], labels=["a", "b"])
    with pytest.raises(ValueError, match="no Timeline"):
        plot.timeline([])
    with pytest.raises(TypeError, match="Timeline"):
        plot.timeline([runs[0], "x"])
    with pytest.raises(TypeError, match="Timeline"):
        plot.fragmentation_timeline(3)
