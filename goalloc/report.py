"""One self-contained HTML report of a run or a comparison of runs
(extra: goalloc[report], which is matplotlib and pandas).

    >>> goalloc.report.write("report.html", {"go1.13.8": (h, tl)})

or ``python -m goalloc report TRACE... -o report.html``.  The file needs no
server and no network: the figures are PNG images inside it (base64 data
URLs), the style sheet is inline, and there is no script.  It holds, for a
comparison of several runs, goalloc.compare's table and the runs'
timelines overlaid; then for each run its heap's configuration, the
timeline and fragmentation figures (when the run has a Timeline), the
MemStats table with each field's meaning and unit (the C core's field
docs), the fragmentation metrics, the per-size-class table
(goalloc.class_table: spans, slots, live objects and span utilisation, as
jemalloc's bin statistics show them) and the heap figures (size-class
waste, span occupancy, page map, address space).
"""
from __future__ import annotations

import base64
import datetime
import html
import io
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Union

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from .heap import Heap
    from .timeline import Timeline

__all__ = ["render", "write"]

PathLike = Union[str, "os.PathLike[str]"]

_CSS = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto;
       max-width: 1200px; padding: 0 1em; color: #222; }
h1 { font-size: 1.7em; } h2 { border-bottom: 2px solid #ddd;
     padding-bottom: .2em; margin-top: 2em; } h3 { margin-top: 1.5em; }
table { border-collapse: collapse; margin: .5em 0 1em; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: 3px 8px; }
th { background: #f3f3f3; text-align: left; }
td.n { text-align: right; font-variant-numeric: tabular-nums;
       white-space: nowrap; }
figure { margin: 1em 0; } figure img { max-width: 100%; height: auto;
  border: 1px solid #eee; } figcaption { color: #555; font-size: 13px; }
.note { color: #555; } nav a { margin-right: 1em; }
"""


def _bytes(n: Any) -> str:
    if n is None or n != n:
        return ""
    n = int(n)
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if abs(n) >= 1 << shift:
            return f"{n / (1 << shift):.2f} {unit}"
    return f"{n} B"


def _cell(v: Any, kind: str = "") -> str:
    """A table cell: numbers right-aligned; kind "bytes" adds a readable
    size, "pct" shows a ratio as a percentage, "x" as a factor."""
    missing = v is None or (isinstance(v, float) and v != v) or (
        type(v).__name__ in ("NAType", "NaTType"))
    if missing:
        return '<td class="n">&ndash;</td>'
    if kind == "pct":
        return f'<td class="n">{100 * float(v):.2f}%</td>'
    if kind == "x":
        return f'<td class="n">{float(v):.3f}&times;</td>'
    if isinstance(v, bool) or isinstance(v, str):
        return f"<td>{html.escape(str(v))}</td>"
    if isinstance(v, float):
        return f'<td class="n">{v:,.4g}</td>'
    try:
        n = int(v)
    except (TypeError, ValueError):
        return f"<td>{html.escape(str(v))}</td>"
    text = f"{n:,}"
    if kind == "bytes" and abs(n) >= 1024:
        text += f" <small>({_bytes(n)})</small>"
    return f'<td class="n">{text}</td>'


def _table(table_id: str, headers: Sequence[str],
           rows: Sequence[Sequence[str]], caption: str = "") -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "\n".join(f"<tr>{''.join(r)}</tr>" for r in rows)
    cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    return (f'<table id="{html.escape(table_id)}">{cap}<thead><tr>{head}'
            f"</tr></thead>\n<tbody>\n{body}\n</tbody></table>")


def _figure_html(fig: Figure, alt: str, caption: str, dpi: int) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return (f'<figure><img alt="{html.escape(alt)}" '
            f'src="data:image/png;base64,{data}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")


def _memstats(heap: Heap, rid: str) -> str:
    df = heap.stats().to_pandas()
    rows = [[f"<td><code>{html.escape(str(name))}</code></td>",
             _cell(r.value, "bytes" if r.unit == "bytes" else ""),
             f"<td>{html.escape(str(r.unit))}</td>",
             f"<td>{html.escape(str(r.meaning))}</td>"]
            for name, r in zip(df.index, df.itertuples(), strict=True)]
    return _table(f"memstats-{rid}", ["field", "value", "unit", "meaning"],
                  rows)


def _fragmentation(heap: Heap, rid: str) -> str:
    df = heap.fragmentation().to_pandas()
    rows = [[f"<td>{html.escape(str(name))}</td>",
             _cell(r.ratio, "x" if name == "overhead" else "pct"),
             _cell(r.bytes, "bytes"),
             f"<td>{html.escape(str(r.meaning))}</td>"]
            for name, r in zip(df.index, df.itertuples(), strict=True)]
    return _table(f"fragmentation-{rid}", ["metric", "ratio", "bytes",
                                           "meaning"], rows)


_CLASS_COLUMNS = (
    ("size", "size", "bytes"), ("npages", "pages/span", ""),
    ("objects_per_span", "slots/span", ""), ("spans", "spans", ""),
    ("slots", "slots", ""), ("live", "live", ""),
    ("utilisation", "utilisation", "pct"),
    ("span_bytes", "span bytes", ""),
    ("live_bytes", "live bytes", ""),
    ("requested", "requested bytes", ""),
    ("internal_bytes", "rounding bytes", ""),
    ("free_slot_bytes", "free bytes in spans", ""),
    ("mallocs", "mallocs", ""), ("frees", "frees", ""),
)


def _classes(heap: Heap, rid: str) -> str:
    from .tables import class_table

    df = class_table(heap)
    used = df[(df["spans"] > 0) | (df["mallocs"] > 0)]
    rows = []
    for sc, r in zip(used.index, used.to_dict("records"), strict=True):
        row = [f'<td class="n">{int(sc)}{" (large)" if sc == 0 else ""}'
               "</td>"]
        row += [_cell(r[c], kind) for c, _, kind in _CLASS_COLUMNS]
        rows.append(row)
    return _table(f"classes-{rid}",
                  ["class", *(h for _, h, _ in _CLASS_COLUMNS)], rows)


_HEADLINE_KINDS = {"internal": "pct", "span": "pct", "page": "pct",
                   "external": "pct", "overhead": "x"}


def _compare(runs: Mapping[str, tuple[Heap, Timeline | None]]) -> str:
    from .comparison import compare

    df = compare({label: tl if tl is not None else heap
                  for label, (heap, tl) in runs.items()})
    # one row per figure, one column per run: a few runs read down
    rows = []
    for c in df.columns:
        kind = _HEADLINE_KINDS.get(c, "")
        if not kind and c not in ("source", "ops", "gc_cycles") \
                and "objects" not in c:
            kind = "bytes"
        rows.append([f"<td><code>{html.escape(str(c))}</code></td>"]
                    + [_cell(v, kind) for v in df[c].tolist()])
    return _table("compare", ["figure", *map(str, df.index)], rows)


def _info(heap: Heap) -> str:
    i = heap.info()
    return (f"<p>{html.escape(i.goos)}/{html.escape(i.goarch)}"
            f"{' -race' if i.race else ''}, {html.escape(i.release)}'s page "
            f"heap, {html.escape(i.backing)} backing, {i.procs} P; "
            f"{len(heap.arenas())} arena(s) of {_bytes(i.heap_arena_bytes)},"
            f" {i.nallspans:,} spans; scavenge goal "
            f"{_bytes(i.scavenge_goal) or '0 B'}.</p>")


def _runs(runs: Mapping[str, Any]) -> dict[str, tuple[Heap, Timeline | None]]:
    from .heap import Heap
    from .timeline import Timeline

    if not isinstance(runs, Mapping) or not runs:
        raise TypeError("report: runs must be a non-empty mapping {label: "
                        "Heap or (Heap, Timeline)}")
    out: dict[str, tuple[Heap, Timeline | None]] = {}
    for label, run in runs.items():
        if isinstance(run, Heap):
            out[str(label)] = (run, None)
        elif (isinstance(run, tuple) and len(run) == 2
              and isinstance(run[0], Heap)
              and (run[1] is None or isinstance(run[1], Timeline))):
            out[str(label)] = (run[0], run[1])
        else:
            raise TypeError(f"report: run {label!r} must be a Heap or a "
                            f"(Heap, Timeline) pair, not "
                            f"{type(run).__name__}")
    return out


def render(runs: Mapping[str, Any], title: str | None = None,
           dpi: int = 90) -> str:
    """The report of runs, {label: Heap or (Heap, Timeline)}, as one HTML
    document (see the module doc).  Needs matplotlib and pandas."""
    from . import __version__, plot

    checked = _runs(runs)
    labels = list(checked)
    title = title or ("goalloc report: " + ", ".join(labels))
    parts = [f"<h1>{html.escape(title)}</h1>",
             f'<p class="note">goalloc {html.escape(__version__)}, '
             f"{datetime.datetime.now().strftime('%Y-%m-%d %H:%M')}: Go "
             f"1.13's allocator rebuilt in C. Byte counts are exact; "
             f"sizes in parentheses are rounded.</p>"]
    ids = {label: f"run{i}" for i, label in enumerate(labels)}
    if len(labels) > 1:
        parts.append("<nav>" + "".join(
            f'<a href="#{ids[x]}">{html.escape(x)}</a>' for x in labels)
            + "</nav>")
    if len(labels) > 1 or checked[labels[0]][1] is not None:
        parts.append("<h2>Headline figures</h2>")
        parts.append('<p class="note">goalloc.compare: peaks are over the '
                     "timeline's samples; a run without a timeline knows "
                     "only its final state (and heap_sys, which Go 1.13 "
                     "never lowers).</p>")
        parts.append(_compare(checked))
        timelines = {x: tl for x, (_, tl) in checked.items()
                     if tl is not None}
        if len(timelines) > 1:
            parts.append(_figure_html(
                plot.timeline(timelines), "timelines overlaid",
                "Heap counters of every run, overlaid", dpi))
            parts.append(_figure_html(
                plot.fragmentation_timeline(timelines),
                "fragmentation overlaid",
                "Fragmentation of every run, overlaid", dpi))
    for label, (heap, tl) in checked.items():
        rid = ids[label]
        parts.append(f'<h2 id="{rid}">{html.escape(label)}</h2>')
        parts.append(_info(heap))
        if tl is not None:
            parts.append(_figure_html(
                plot.timeline(tl), f"{label}: timeline",
                f"Heap counters over {tl.nops:,} ops", dpi))
            parts.append(_figure_html(
                plot.fragmentation_timeline(tl), f"{label}: fragmentation",
                "Fragmentation metrics over the replay "
                "(goalloc.fragmentation)", dpi))
        parts.append("<h3>MemStats (runtime.ReadMemStats)</h3>")
        parts.append(_memstats(heap, rid))
        parts.append("<h3>Fragmentation</h3>")
        parts.append(_fragmentation(heap, rid))
        parts.append("<h3>Size classes</h3>")
        parts.append('<p class="note">In-use spans per size class, as '
                     "jemalloc's bin statistics show them: live slots over "
                     "slots is the span utilisation; class 0 is large "
                     "objects, one per span. Only classes with a span or "
                     "an allocation are listed.</p>")
        parts.append(_classes(heap, rid))
        for make, alt, caption in (
                (plot.size_class_waste, "size-class waste",
                 "Waste per size class: Go's worst case and this heap's"),
                (plot.span_occupancy, "span occupancy",
                 "How full each in-use span is"),
                (plot.page_map, "page map", "Every page of every arena"),
                (plot.address_space, "address space",
                 "Arena hints and mapped arenas")):
            parts.append(_figure_html(make(heap), f"{label}: {alt}",
                                      caption, dpi))
    body = "\n".join(parts)
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>{html.escape(title)}</title><style>{_CSS}</style>"
            f"</head><body>\n{body}\n</body></html>\n")


def write(path: PathLike, runs: Mapping[str, Any], title: str | None = None,
          dpi: int = 90) -> str:
    """render(runs) written to path (UTF-8); returns the path."""
    doc = render(runs, title, dpi)
    with open(path, "w", encoding="utf-8") as f:
        f.write(doc)
    return os.fspath(path)
