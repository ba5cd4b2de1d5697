"""Plots of a goalloc heap and of a replay's Timeline (extra: goalloc[plot]).

Every function returns a ``matplotlib.figure.Figure`` built without
pyplot: no backend is selected, no global figure registry is touched and
nothing is shown, so the functions are safe in scripts, servers, tests
and notebooks alike (a notebook displays a returned Figure itself).
Every function also takes ``ax=``: a matplotlib Axes to draw into (a
panel of your own figure, pyplot's included); it then returns that
Axes' figure, and a plot of several panels draws its main one only (each
function says which).  ``timeline`` and ``fragmentation_timeline`` take
one Timeline or several, overlaid: ``timeline([a, b], labels=["a",
"b"])`` or ``timeline({"a": a, "b": b})``.
matplotlib is imported inside the functions; ``import goalloc`` never
needs it.

The four heap plots and save_all take a live Heap or a snapshot document
(``goalloc.snapshot.snapshot(heap)``, or ``goalloc.snapshot.load_json``
of a file such as ``python -m goalloc run --stats FILE`` writes for a
real program): a snapshot draws what the heap it was taken from draws.

=========================  ===================================================
size_class_waste(heap)     Go 1.13's worst-case waste per size class
                           (sizeclasses.go's max waste and tail waste), and
                           the waste the heap's live objects actually have
span_occupancy(heap)       in-use small spans per size class and how full
                           each is (alloc_count / nelems)
page_map(heap)             every mapped page coloured by its span's state,
                           one band of rows per arena
address_space(heap)        the arena hints and the mapped arenas on a log
                           address axis, plus a linear close-up of each run
                           of contiguous arenas
timeline(tl)               heap counters against the ops of a replay (or
                           several replays overlaid)
fragmentation_timeline(tl) the five fragmentation metrics against the ops
save_all(heap, tl)         all of the above as PNG files
=========================  ===================================================
"""
from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from . import _core
from ._records import Arena, ArenaHint
from .arrays import (
    PAGE_FREE,
    PAGE_LARGE,
    PAGE_MANUAL,
    PAGE_RELEASED,
    SPAN_DTYPE,
    SPAN_STATES,
)
from .fragmentation import METRICS
from .heap import Heap
from .sizeclasses import size_classes

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from .timeline import Timeline

    # One Timeline, several, or several by label.
    Timelines = Timeline | Sequence[Timeline] | Mapping[str, Timeline]

# A live heap or a snapshot document (goalloc.snapshot).
HeapSource = Heap | Mapping[str, Any]

__all__ = ["size_class_waste", "span_occupancy", "page_map", "address_space",
           "timeline", "fragmentation_timeline", "save_all"]

MiB = 1 << 20

# Colours of the page states (page_map) and of the series that recur.
_STATE_COLOURS = {
    PAGE_MANUAL: "#3b3b3b",
    PAGE_RELEASED: "#f4f4f4",
    PAGE_FREE: "#b4b4b4",
    PAGE_LARGE: "#d62728",
}
_STATE_NAMES = {
    PAGE_MANUAL: "manual (stacks)",
    PAGE_RELEASED: "free, released to the OS",
    PAGE_FREE: "free, retained",
    PAGE_LARGE: "large object (class 0)",
}
_CLASS_CMAP = "viridis"
_SMALL_CLASSES = _core.NUM_SIZE_CLASSES - 1  # 1..66
_SPAN_INUSE = SPAN_STATES.index("inuse")

# Counters a Timeline holds in bytes (everything but live_objects).
_BYTE_COLUMNS = frozenset((
    "heap_alloc", "heap_inuse", "heap_idle", "heap_released", "heap_sys",
    "requested_live", "largest_free", "internal_bytes", "span_bytes",
    "page_bytes", "external_bytes", "heap_live", "heap_marked", "gc_trigger",
    "next_gc"))


def _figure(width: float, height: float) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _root(ax: Axes) -> Figure:
    """The Figure an Axes is drawn on (through any SubFigures)."""
    from matplotlib.figure import Figure

    fig: Any = ax.figure
    while not isinstance(fig, Figure):
        fig = fig.figure
    return fig


def _single(ax: Axes | None, width: float,
            height: float) -> tuple[Figure, Axes]:
    """ax and its figure, or a new figure of that size with one Axes."""
    if ax is not None:
        return _root(ax), ax
    fig = _figure(width, height)
    return fig, fig.add_subplot()


def _note(ax: Axes, text: str) -> None:
    """Centre a message on an axes that has nothing else to show."""
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center",
            va="center", fontsize=11, color="#555555", wrap=True)


def _mib(n: float) -> str:
    return f"{n / MiB:,.1f} MiB"


def _human(n: float) -> str:
    """Bytes in the unit that shows them: B, KiB or MiB."""
    if n < 1024:
        return f"{int(n):,} B"
    if n < MiB:
        return f"{n / 1024:,.1f} KiB"
    return _mib(n)


# ---- what the heap plots read: a Heap or a snapshot ------------------------


class _Source:
    """The heap state the plots draw, read from a live Heap or derived
    from a snapshot document's info, hints, arenas, spans and
    live_by_class, so that both draw the same figure."""

    def __init__(self, src: HeapSource) -> None:
        from .snapshot import validate

        self.heap: Heap | None = None
        self.doc: Mapping[str, Any] | None = None
        if isinstance(src, Heap):
            self.heap = src
        elif isinstance(src, Mapping):
            validate(src)
            self.doc = src
        else:
            raise TypeError(f"a goalloc.Heap or a snapshot document (dict) "
                            f"expected, not {type(src).__name__}")

    def info(self, key: str) -> Any:
        if self.heap is not None:
            return getattr(self.heap.info(), key)
        assert self.doc is not None
        return self.doc["info"][key]

    def hints(self) -> list[ArenaHint]:
        if self.heap is not None:
            return self.heap.hints()
        assert self.doc is not None
        return [ArenaHint(h["addr"], h["down"]) for h in self.doc["hints"]]

    def arenas(self) -> list[Arena]:
        if self.heap is not None:
            return self.heap.arenas()
        assert self.doc is not None
        return [Arena(a["base"], a["idx"], a["l1"], a["l2"])
                for a in self.doc["arenas"]]

    def span_array(self) -> np.ndarray:
        """goalloc.arrays.span_array's rows (keys a snapshot lacks: 0)."""
        if self.heap is not None:
            return self.heap.span_array()
        assert self.doc is not None
        spans = self.doc["spans"]
        out = np.zeros(len(spans), dtype=SPAN_DTYPE)
        for name in SPAN_DTYPE.names or ():
            if name == "state":
                col = [SPAN_STATES.index(s["state"]) for s in spans]
            else:
                col = [int(s.get(name, 0)) for s in spans]
            out[name] = np.array(col, dtype=np.uint64)
        return out

    def page_array(self) -> np.ndarray:
        """goalloc.arrays.page_array: from a snapshot, every mapped
        arena's pages (arenas in address order) start as the rest of
        curArena does, PAGE_RELEASED, and each span then marks its own,
        as ga_page_map's walk does."""
        if self.heap is not None:
            return self.heap.page_array()
        page = int(self.info("page_size"))
        per_arena = int(self.info("heap_arena_bytes")) // page
        bases = sorted(a.base for a in self.arenas())
        out = np.full(len(bases) * per_arena, PAGE_RELEASED, dtype=np.int16)
        slot = {b: i * per_arena for i, b in enumerate(bases)}
        assert self.doc is not None
        for s in self.doc["spans"]:
            arena = s["base"] - s["base"] % (per_arena * page)
            first = slot[arena] + (s["base"] - arena) // page
            out[first:first + s["npages"]] = _page_code(s)
        return out

    def classes(self) -> list[dict[str, int]] | None:
        """goalloc.snapshot.live_by_class; None for a snapshot written
        before version 1 gained it."""
        from .snapshot import live_by_class

        if self.heap is not None:
            return live_by_class(self.heap)
        assert self.doc is not None
        got: list[dict[str, int]] | None = self.doc.get("live_by_class")
        return got


def _page_code(span: Mapping[str, Any]) -> int:
    """A snapshot span's page code, as ga_page_map gives it."""
    if span["state"] == "free":
        return PAGE_RELEASED if span["scavenged"] else PAGE_FREE
    if span["state"] == "inuse":
        return int(span["sizeclass"])
    return PAGE_MANUAL


# ---- size classes -----------------------------------------------------------


def size_class_waste(heap: HeapSource | None = None, *,
                     ax: Axes | None = None) -> Figure:
    """Waste per size class: Go 1.13's static worst case (sizeclasses.go's
    "max waste" and "tail waste" columns) and, given a heap (or a
    snapshot), the internal waste its live objects actually have.

    Max waste: every object one byte larger than the previous class's
    size, plus the span's tail; tail waste: the bytes at the end of a span
    that no object fits.  Actual waste: the sum of (slot size - requested
    size) over the class's live objects, divided by the sum of slot sizes
    (goalloc.snapshot.live_by_class).  Tiny objects count in class 2
    (their 16-byte blocks' span class).  Large objects lose the rest of
    their last page: their spans' pages minus their requested sizes.
    """
    rows = size_classes()[1:]
    cls = np.array([r.sizeclass for r in rows])
    size = np.array([r.size for r in rows])
    max_waste = np.array([r.max_waste for r in rows]) * 100
    span_bytes = np.array([r.npages for r in rows]) * _core.PAGE_SIZE
    tail = np.array([r.tail_waste for r in rows]) / span_bytes * 100

    fig, ax = _single(ax, 11, 5)
    ax.bar(cls, max_waste, width=0.8, color="#9ecae1",
           label="max waste: objects 1 B over the previous class + tail")
    ax.plot(cls, tail, "o-", color="#3182bd", ms=3, lw=1,
            label="tail waste: end of span no object fits")
    title = "Go 1.13 size classes: worst-case waste"
    if heap is not None:
        _actual_waste(ax, _Source(heap), cls)
        title += " and this heap's actual waste"
    ax.set_xlim(0.3, _SMALL_CLASSES + 0.7)
    ax.set_ylim(0, max(100.0, float(max_waste.max()) * 1.05))
    ax.set_xlabel("size class")
    ax.set_ylabel("waste, % of span (static) / of slots (actual)")
    ax.set_title(title)
    ax.legend(loc="upper right", fontsize=9)
    top = ax.twiny()
    top.set_xlim(ax.get_xlim())
    ticks = cls[::6]
    top.set_xticks(ticks, [str(s) for s in size[::6]], fontsize=8)
    top.set_xlabel("object size (bytes)")
    return fig


def _actual_waste(ax: Axes, src: _Source, cls: np.ndarray) -> None:
    """size_class_waste's marks and note for one heap or snapshot."""
    per_class = src.classes()
    if per_class is None:
        _note(ax, "this snapshot has no live_by_class (an older writer's): "
                  "no actual waste to show")
        return
    slot = np.zeros(_SMALL_CLASSES + 1, dtype=np.int64)
    asked = np.zeros(_SMALL_CLASSES + 1, dtype=np.int64)
    nsmall = 0
    for row in per_class:
        if row["sizeclass"] > 0:
            slot[row["sizeclass"]] = row["bytes"]
            asked[row["sizeclass"]] = row["requested"]
            nsmall += row["objects"]
    slot, asked = slot[1:], asked[1:]
    have = slot > 0
    actual = np.zeros(len(slot))
    actual[have] = (slot[have] - asked[have]) / slot[have] * 100
    ax.plot(cls[have], actual[have], "D", color="#d62728", ms=5,
            label="actual internal waste of this heap's live objects")
    lines = [f"{nsmall:,} live small objects, "
             f"{_human(int(slot.sum() - asked.sum()))} lost to rounding"]
    spans = src.span_array()
    large = spans[(spans["state"] == _SPAN_INUSE) & (spans["sizeclass"] == 0)]
    if len(large):
        # a large span's limit is base + the requested size (Go's)
        pages = int(large["npages"].sum()) * int(src.info("page_size"))
        lost = pages - int((large["limit"] - large["base"]).sum())
        lines.append(f"{len(large):,} large objects, {_human(lost)} lost "
                     "to page rounding")
    ax.text(0.99, 0.80, "\n".join(lines), transform=ax.transAxes,
            ha="right", va="top", fontsize=9,
            bbox={"boxstyle": "round", "fc": "white", "ec": "#cccccc"})


def span_occupancy(heap: HeapSource, *, ax: Axes | None = None) -> Figure:
    """In-use small spans per size class and how full each is: one dot per
    span at alloc_count / nelems (Go's mspan.allocCount over nelems), the
    mean as a bar, and the number of spans per class below (not drawn
    when ax is given: only the occupancy panel is).  heap: a Heap or a
    snapshot document."""
    spans = _Source(heap).span_array()
    inuse = spans[(spans["state"] == _SPAN_INUSE) & (spans["sizeclass"] > 0)]
    nlarge = int(np.count_nonzero((spans["state"] == _SPAN_INUSE)
                                  & (spans["sizeclass"] == 0)))

    axn: Axes | None
    if ax is None:
        fig = _figure(11, 6)
        ax, axn = fig.subplots(2, 1, sharex=True, height_ratios=[2, 1])
    else:
        fig, axn = _root(ax), None
    ax.set_title(f"In-use small spans: {len(inuse):,} "
                 f"(plus {nlarge:,} large-object spans)")
    if len(inuse) == 0:
        _note(ax, "no small span in use")
    else:
        sc = inuse["sizeclass"].astype(np.int64)
        occ = inuse["alloc_count"] / np.maximum(inuse["nelems"], 1) * 100
        rng = np.random.default_rng(0)  # deterministic jitter
        ax.scatter(sc + rng.uniform(-0.3, 0.3, len(sc)), occ, s=6,
                   alpha=0.5, color="#3182bd", lw=0, label="one span")
        n = np.bincount(sc, minlength=_SMALL_CLASSES + 1)
        total = np.bincount(sc, weights=occ, minlength=_SMALL_CLASSES + 1)
        have = np.flatnonzero(n)
        ax.bar(have, total[have] / n[have], width=0.8, color="#fd8d3c",
               alpha=0.35, label="mean occupancy", zorder=0)
        if axn is not None:
            noscan = inuse["noscan"].astype(bool)
            ns = np.bincount(sc[noscan], minlength=_SMALL_CLASSES + 1)
            sc_ = np.bincount(sc[~noscan], minlength=_SMALL_CLASSES + 1)
            cls = np.arange(_SMALL_CLASSES + 1)
            axn.bar(cls, sc_, width=0.8, color="#6baed6", label="scan")
            axn.bar(cls, ns, width=0.8, bottom=sc_, color="#fdae6b",
                    label="noscan")
            axn.legend(loc="upper right", fontsize=8)
        ax.legend(loc="lower right", fontsize=8)
    ax.set_ylim(-3, 103)
    ax.set_ylabel("occupancy (% of slots)")
    bottom = ax if axn is None else axn
    if axn is not None:
        axn.set_ylabel("spans")
    bottom.set_xlabel("size class")
    bottom.set_xlim(0.3, _SMALL_CLASSES + 0.7)
    return fig


# ---- pages and addresses ----------------------------------------------------


def page_map(heap: HeapSource, width: int = 512, *,
             ax: Axes | None = None) -> Figure:
    """Every page of every mapped arena, coloured by state: in use by a
    small span (coloured by size class), by a large object, free and
    retained, free and released (scavenged), or manual.

    Arenas are stacked in address order, each as a band of rows of width
    pages (a 64 MiB arena of 8192 pages is 16 rows of 512).  heap: a Heap
    or a snapshot document.
    """
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import ListedColormap, Normalize
    from matplotlib.patches import Patch

    src = _Source(heap)
    page_size = int(src.info("page_size"))
    per_arena = int(src.info("heap_arena_bytes")) // page_size
    pages = src.page_array()
    bases = sorted(a.base for a in src.arenas())
    narenas = len(pages) // per_arena

    if narenas == 0:
        fig, ax = _single(ax, 10, 3)
        _note(ax, "no arena mapped yet: mallocinit only made the hints; "
                  "the first allocation grows the heap")
        ax.set_axis_off()
        ax.set_title("Page map")
        return fig

    width = max(1, min(width, per_arena))
    rows_per_arena = -(-per_arena // width)
    padded = np.full(narenas * rows_per_arena * width, PAGE_MANUAL - 1,
                     dtype=np.int16)
    for i in range(narenas):
        start = i * rows_per_arena * width
        padded[start:start + per_arena] = pages[i * per_arena:
                                                (i + 1) * per_arena]
    # Colour index: code - (PAGE_MANUAL - 1), so the padding (never shown
    # unless width does not divide an arena) is 0, manual 1, released 2,
    # free 3, large 4 and size classes 1..66 are 5..70.
    shift = PAGE_MANUAL - 1
    index = (padded.astype(np.int32) - shift).reshape(-1, width)
    classes = colormaps[_CLASS_CMAP].resampled(_SMALL_CLASSES)
    colours: list[Any] = ["#ffffff"] + [_STATE_COLOURS[c] for c in
                             (PAGE_MANUAL, PAGE_RELEASED, PAGE_FREE,
                              PAGE_LARGE)]
    colours += [classes(i) for i in range(_SMALL_CLASSES)]
    cmap = ListedColormap(colours)

    nrows = index.shape[0]
    own = ax is None
    fig, ax = _single(ax, 11, float(min(9.0, 2.6 + nrows * 0.04)))
    ax.imshow(index, cmap=cmap, vmin=-0.5, vmax=len(colours) - 0.5,
              interpolation="nearest", aspect="auto")
    step = max(1, -(-narenas // 16))
    ticks = [i * rows_per_arena - 0.5 for i in range(0, narenas, step)]
    labels = [f"{bases[i]:#014x}" if i < len(bases) else f"arena {i}"
              for i in range(0, narenas, step)]
    ax.set_yticks(ticks, labels, fontsize=8)
    if narenas <= 64 and rows_per_arena > 1:
        for i in range(1, narenas):
            ax.axhline(i * rows_per_arena - 0.5, color="black", lw=0.6)
    ax.set_xlabel(f"page within row (a row is {width} pages, "
                  f"{width * page_size // 1024:,} KiB)")
    ax.set_ylabel("arena base")

    counts = {c: int(np.count_nonzero(pages == c)) for c in _STATE_COLOURS}
    small = int(np.count_nonzero(pages > 0))
    ax.set_title(f"Page map: {narenas} arena(s), {len(pages):,} pages: "
                 f"{small:,} small, {counts[PAGE_LARGE]:,} large, "
                 f"{counts[PAGE_FREE]:,} free, "
                 f"{counts[PAGE_RELEASED]:,} released", fontsize=10)
    handles = [Patch(facecolor=_STATE_COLOURS[c], edgecolor="#888888",
                     label=f"{_STATE_NAMES[c]} ({counts[c]:,})")
               for c in (PAGE_LARGE, PAGE_FREE, PAGE_RELEASED, PAGE_MANUAL)]
    if own:
        fig.legend(handles=handles, loc="outside lower center", ncol=4,
                   fontsize=8)
    else:  # a figure of the caller's may have no constrained layout
        ax.legend(handles=handles, loc="lower right", fontsize=7,
                  framealpha=0.9)
    bar = fig.colorbar(ScalarMappable(Normalize(0.5, _SMALL_CLASSES + 0.5),
                                      colormaps[_CLASS_CMAP]),
                       ax=ax, fraction=0.04, pad=0.01)
    bar.set_label("size class of an in-use small span")
    return fig


def _runs(bases: Sequence[int], size: int) -> list[tuple[int, int]]:
    """Contiguous runs of arenas as (start, end) address pairs."""
    out: list[tuple[int, int]] = []
    for b in sorted(bases):
        if out and out[-1][1] == b:
            out[-1] = (out[-1][0], b + size)
        else:
            out.append((b, b + size))
    return out


def address_space(heap: HeapSource, max_runs: int = 4, *,
                  ax: Axes | None = None) -> Figure:
    """The heap's address space as ``mallocinit`` and ``sysAlloc`` shape it:
    every arena hint (runtime.arenaHint; up or down, at its position in
    the list, head first) and every mapped arena on a log address axis,
    then a linear close-up of each run of contiguous arenas (up to
    max_runs) with the hints that fall inside it (not drawn when ax is
    given: only the log-axis overview is).  heap: a Heap or a snapshot
    document."""
    from matplotlib.ticker import (
        FuncFormatter,
        LogLocator,
        MaxNLocator,
        NullFormatter,
    )

    src = _Source(heap)
    hints = src.hints()
    arenas = src.arenas()
    size = int(src.info("heap_arena_bytes"))
    runs = _runs([a.base for a in arenas], size)
    shown = runs[:max_runs] if ax is None else []

    zooms: list[Axes]
    if ax is not None:
        fig, zooms = _root(ax), []
    elif shown:
        fig = _figure(11, 7)
        grid = fig.add_gridspec(2, len(shown), height_ratios=[3, 2])
        ax = fig.add_subplot(grid[0, :])
        zooms = [fig.add_subplot(grid[1, i]) for i in range(len(shown))]
    else:
        fig, ax = _single(None, 11, 4.5)
        zooms = []

    up = [(h.addr, i) for i, h in enumerate(hints) if not h.down]
    down = [(h.addr, i) for i, h in enumerate(hints) if h.down]
    if up:
        ax.scatter([a for a, _ in up], [i for _, i in up], marker="^", s=18,
                   color="#2ca02c", label=f"up hint ({len(up)})", zorder=3)
    if down:
        ax.scatter([a for a, _ in down], [i for _, i in down], marker="v",
                   s=18, color="#ff7f0e", label=f"down hint ({len(down)})",
                   zorder=3)
    for j, (start, end) in enumerate(runs):
        ax.axvspan(start, end, color="#d62728", alpha=0.6, lw=2.5,
                   label="mapped arenas" if j == 0 else None)
        ax.axvline(start, color="#d62728", lw=1.2)
    addrs = [h.addr for h in hints] + [a.base for a in arenas]
    ymax = max(1, len(hints))
    if addrs:
        lo = max(1, min(addrs)) / 4
        hi = max(addrs) * 4 + size
        ax.set_xscale("log", base=2)
        ax.set_xlim(lo, hi)
        ax.xaxis.set_major_locator(LogLocator(base=2, numticks=9))
        ax.xaxis.set_major_formatter(
            FuncFormatter(lambda v, _: f"{int(v):#x}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.tick_params(axis="x", labelsize=8, labelrotation=20)
    ax.set_ylim(ymax + 0.5, -1.5)  # head of the list at the top
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("position in hint list (head first)")
    ax.set_xlabel("address (log scale)")
    plat = (f"{src.info('goos')}/{src.info('goarch')}"
            f"{' -race' if src.info('race') else ''}")
    ax.set_title(f"Address space of a {plat} heap "
                 f"({src.info('backing')} backing): "
                 f"{len(hints)} hints, {len(arenas)} arena(s) of {_mib(size)}")
    if arenas:
        first = arenas[0].base
        ax.annotate(f"first arena {first:#014x}", xy=(first, -0.5),
                    xytext=(0.45, 0.35), textcoords="axes fraction",
                    fontsize=9, arrowprops={"arrowstyle": "->",
                                            "color": "#d62728"},
                    bbox={"boxstyle": "round", "fc": "white",
                          "ec": "#d62728"})
    else:
        ax.text(0.02, 0.55, "no arena yet: the first grow reserves\n"
                "one at the head hint", transform=ax.transAxes, ha="left",
                fontsize=9)
    if up or down or runs:
        ax.legend(loc="lower left", fontsize=8)

    for z, (start, end) in zip(zooms, shown, strict=True):
        _run_closeup(z, start, end, size, arenas, hints)
    if zooms and len(runs) > len(shown):
        fig.text(0.99, 0.01, f"{len(runs) - len(shown)} more run(s) of "
                 "arenas not shown", ha="right", fontsize=8)
    return fig


def _run_closeup(ax: Axes, start: int, end: int, size: int,
                 arenas: Sequence[Any], hints: Sequence[Any]) -> None:
    """A linear view of one run of arenas, in MiB from its start."""
    lo, hi = start - size, end + size
    order = {a.base: i for i, a in enumerate(arenas)}
    inside = [a for a in arenas if start <= a.base < end]
    for a in inside:
        x = (a.base - start) / MiB
        ax.broken_barh([(x, size / MiB)], (0, 1), facecolor="#d62728",
                       edgecolor="black", alpha=0.7)
        if len(inside) <= 8:
            ax.text(x + size / MiB / 2, 0.5, f"#{order[a.base]}",
                    ha="center", va="center", fontsize=8, color="white")
    for h in hints:
        if lo <= h.addr <= hi:
            ax.plot((h.addr - start) / MiB, 1.25, "v" if h.down else "^",
                    color="#ff7f0e" if h.down else "#2ca02c", ms=8)
            ax.annotate(f"hint {h.addr:#x}", ((h.addr - start) / MiB, 1.25),
                        xytext=(0, 8), textcoords="offset points",
                        ha="center", fontsize=7)
    ax.set_xlim((lo - start) / MiB, (hi - start) / MiB)
    ax.set_ylim(-0.3, 1.8)
    ax.set_yticks([])
    ax.set_xlabel(f"MiB from {start:#014x}", fontsize=8)
    ax.tick_params(axis="x", labelsize=8)
    ax.set_title(f"{(end - start) // size} arena(s) "
                 f"{start:#x}-{end:#x}", fontsize=9)


# ---- timelines --------------------------------------------------------------


def _ops(tl: Timeline) -> np.ndarray:
    """The x axis: ops applied when each sample was taken (0 = before)."""
    return np.asarray(tl.op, dtype=np.int64) + 1


def _runs_of(tl: Timelines,
             labels: Sequence[str] | None) -> list[tuple[str, Timeline]]:
    """(label, Timeline) for one Timeline, a sequence or a mapping."""
    from .timeline import Timeline

    if isinstance(tl, Timeline):
        items: list[Timeline] = [tl]
        names: list[str] = [""]
    elif isinstance(tl, Mapping):
        names, items = [str(k) for k in tl], list(tl.values())
    elif isinstance(tl, Sequence) and not isinstance(tl, str | bytes):
        items = list(tl)
        names = [f"run {i}" for i in range(len(items))]
    else:
        raise TypeError(f"a Timeline, a list of Timelines or a dict of "
                        f"them expected, not {type(tl).__name__}")
    if not items:
        raise ValueError("no Timeline to plot")
    bad = next((x for x in items if not isinstance(x, Timeline)), None)
    if bad is not None:
        raise TypeError(f"a Timeline expected, not {type(bad).__name__}")
    if labels is not None:
        labels = [str(x) for x in labels]
        if len(labels) != len(items):
            raise ValueError(f"{len(labels)} labels for {len(items)} "
                             f"Timelines")
        names = labels
    return list(zip(names, items, strict=True))


def _timeline_figure(runs: list[tuple[str, Timeline]],
                     metrics: Sequence[str], ax: Axes | None) -> Figure:
    cols0 = runs[0][1].columns()
    unknown = [m for m in metrics if m not in cols0 or m == "op"]
    if unknown:
        raise ValueError(f"unknown timeline column(s) {unknown}; choose from "
                         f"{[c for c in cols0 if c != 'op']}")
    fig, ax = _single(ax, 10, 4.5)
    other: Axes | None = None
    styles = ("-", "--", ":", "-.")
    for r, (label, tl) in enumerate(runs):
        cols = tl.columns()
        x = _ops(tl)
        _mark_gc_cycles(ax, tl, x, f"C{r}" if len(runs) > 1 else "0.5",
                        first=r == 0)
        for j, m in enumerate(metrics):
            y = np.asarray(cols[m], dtype=np.float64)
            if m in ("gc_trigger", "next_gc"):
                y[y < 0] = np.nan   # GOGC=off: ^0, no goal to draw
            name = f"{label}: {m}" if len(runs) > 1 else m
            if m in _BYTE_COLUMNS:
                colour = f"C{r}" if len(runs) > 1 else f"C{j}"
                ax.plot(x, y / MiB, label=name, lw=1.3, color=colour,
                        ls=styles[j % len(styles)] if len(runs) > 1
                        else "-")
            else:
                if other is None:
                    other = ax.twinx()
                colour = f"C{r}" if len(runs) > 1 else f"C{j}"
                other.plot(x, y, label=name, lw=1.3, ls="--", color=colour)
    ax.set_xlabel("ops applied")
    ax.set_ylabel("MiB")
    if len(runs) == 1:
        tl = runs[0][1]
        ax.set_title(f"Heap counters over {tl.nops:,} ops ({len(tl)} "
                     f"samples)")
    else:
        ax.set_title(f"Heap counters of {len(runs)} runs: "
                     f"{', '.join(label for label, _ in runs)}")
    ax.grid(alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    if other is not None:
        h2, l2 = other.get_legend_handles_labels()
        handles, labels = handles + h2, labels + l2
        other.set_ylabel("count / ratio")
    if handles:
        ax.legend(handles, labels, loc="upper left", fontsize=8,
                  ncol=2 if len(handles) > 6 else 1)
    return fig


def _mark_gc_cycles(ax: Axes, tl: Timeline, x: np.ndarray, colour: str,
                    first: bool) -> None:
    """A dotted vertical line at the first sample after each GC cycle
    (num_gc rose since the sample before), labelled once."""
    n = np.asarray(tl.num_gc)
    if len(n) < 2:
        return
    for k, i in enumerate(np.flatnonzero(np.diff(n) > 0) + 1):
        ax.axvline(float(x[i]), ls=":", lw=0.7, color=colour, alpha=0.7,
                   label="GC cycle" if first and k == 0 else None)


_COUNTERS = ("heap_alloc", "heap_inuse", "heap_idle", "heap_released",
             "heap_sys")
# a GC-mode run also shows the pacer's view: heap_live against its goal
_GC_COUNTERS = ("heap_alloc", "heap_live", "next_gc", "heap_inuse",
                "heap_released", "heap_sys")
_OVERLAY_COUNTERS = ("heap_alloc", "heap_inuse", "heap_sys")


def timeline(tl: Timelines, metrics: Sequence[str] | None = None, *,
             labels: Sequence[str] | None = None,
             ax: Axes | None = None) -> Figure:
    """Go's MemStats heap counters (or any Timeline column, see
    Timeline.columns) against the ops of a replay; byte counts in MiB on
    the left axis, other columns on a right axis.

    tl: a Timeline, or several to overlay (a list, with labels= naming
    them, or a dict {label: Timeline}): each run gets a colour and each
    metric a line style.  metrics: by default heap_alloc, heap_inuse,
    heap_idle, heap_released and heap_sys for one run (a GC-mode run:
    heap_alloc, heap_live, next_gc, heap_inuse, heap_released, heap_sys:
    the sawtooth of heap_live against its goal), heap_alloc, heap_inuse
    and heap_sys for several.  A dotted line marks each GC cycle."""
    runs = _runs_of(tl, labels)
    if metrics is None:
        gc_run = len(runs) == 1 and len(runs[0][1]) > 0 and \
            int(runs[0][1].num_gc[-1]) > 0
        metrics = (_GC_COUNTERS if gc_run else _COUNTERS) \
            if len(runs) == 1 else _OVERLAY_COUNTERS
    return _timeline_figure(runs, metrics, ax)


def fragmentation_timeline(tl: Timelines, *,
                           labels: Sequence[str] | None = None,
                           ax: Axes | None = None) -> Figure:
    """The fragmentation metrics of goalloc.fragmentation against the ops
    of a replay: internal, span, page and external as percentages, and
    overhead (heap_sys / requested_live) on a log axis below (with ax=,
    on a right axis of ax instead).

    tl: a Timeline, or several to overlay (as for timeline()): each run
    gets a colour and each metric a line style."""
    runs = _runs_of(tl, labels)
    axo: Axes
    twin = ax is not None  # overhead on a right axis of the caller's ax
    if ax is None:
        fig = _figure(10, 6)
        ax, axo = fig.subplots(2, 1, sharex=True, height_ratios=[2, 1])
    else:
        fig, axo = _root(ax), ax.twinx()
    styles = ("-", "--", ":", "-.")
    overlay = len(runs) > 1
    finite: list[np.ndarray] = []
    for r, (label, t) in enumerate(runs):
        x = _ops(t)
        for j, m in enumerate(METRICS[:-1]):
            ax.plot(x, np.asarray(t.metrics[m], dtype=np.float64) * 100,
                    label=f"{label}: {m}" if overlay else m, lw=1.3,
                    color=f"C{r}" if overlay else f"C{j}",
                    ls=styles[j] if overlay else "-")
        over = np.asarray(t.metrics["overhead"], dtype=np.float64)
        axo.plot(x, over, color=f"C{r}" if overlay else "C4", lw=1.3,
                 ls=":" if twin else "-",
                 label=f"{label}: overhead" if overlay else "overhead")
        finite.append(over[np.isfinite(over) & (over > 0)])
    ax.set_ylim(-2, 102)
    ax.set_ylabel("% (see goalloc.fragmentation)")
    if overlay:
        ax.set_title(f"Fragmentation of {len(runs)} runs: "
                     f"{', '.join(label for label, _ in runs)}")
    else:
        t = runs[0][1]
        ax.set_title(f"Fragmentation over {t.nops:,} ops ({len(t)} "
                     f"samples)")
    ax.legend(loc="upper right", fontsize=8, ncol=4)
    ax.grid(alpha=0.3)
    every = np.concatenate(finite)
    if every.size:
        if every.max() / max(every.min(), 1e-12) > 20:
            from matplotlib.ticker import NullFormatter

            axo.set_yscale("log")
            axo.yaxis.set_minor_formatter(NullFormatter())
    else:
        _note(axo, "overhead undefined: nothing live")
    axo.set_ylabel("overhead: heap_sys / requested")
    if twin:
        ax.set_xlabel("ops applied")
    else:
        axo.set_xlabel("ops applied")
        axo.grid(alpha=0.3)
    return fig


# ---- all at once ------------------------------------------------------------


def save_all(heap: HeapSource, timeline: Timeline | None = None,
             outdir: str = ".", prefix: str = "goalloc",
             dpi: int = 110) -> list[str]:
    """Write every plot that applies as ``<outdir>/<prefix>-<name>.png``:
    the heap's size-class waste, span occupancy, page map and address
    space, and with a Timeline its counters and fragmentation.  heap: a
    Heap or a snapshot document.  Returns the paths written, in that
    order."""
    os.makedirs(outdir, exist_ok=True)
    makers: list[tuple[str, Any]] = [
        ("size-class-waste", lambda: size_class_waste(heap)),
        ("span-occupancy", lambda: span_occupancy(heap)),
        ("page-map", lambda: page_map(heap)),
        ("address-space", lambda: address_space(heap)),
    ]
    if timeline is not None:
        tl = timeline
        makers += [
            ("timeline", lambda: _timeline_figure([("", tl)], _COUNTERS,
                                                  None)),
            ("fragmentation", lambda: fragmentation_timeline(tl)),
        ]
    paths = []
    for name, make in makers:
        path = os.path.join(outdir, f"{prefix}-{name}.png")
        make().savefig(path, dpi=dpi)
        paths.append(path)
    return paths
