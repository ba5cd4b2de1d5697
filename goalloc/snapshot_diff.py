"""What changed between two heaps: ``goalloc.snapshot.diff(a, b)``.

a and b are Heaps or snapshot documents (``snapshot(heap)``,
``load_json(path)``); a Heap is read with ``snapshot`` first, so the
diff compares what a snapshot holds.  The result says which MemStats
fields changed, the in-use spans, their pages and their objects per size
class (class 0: large objects), which spans appeared, went or changed
(by base address), which arenas were mapped, and how the fragmentation
metrics moved; ``str(d)`` is that as text, ``d.to_dict()`` as JSON and
``d.to_pandas()`` the per-class table.  ``bool(d)`` is False when the two
heaps show no difference.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import _core
from .fragmentation import METRICS

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["SnapshotDiff", "ClassChange", "diff"]

# A span is the same span in both heaps when its base is; these fields
# then say whether it changed.
_SPAN_KEYS = ("npages", "state", "scavenged", "spanclass", "alloc_count",
              "freeindex")
# MemStats fields in bytes (the rest are counts).
_COUNT_FIELDS = frozenset(name for name, _, doc in _core.MSTATS_FIELDS
                          if "bytes" not in doc)


@dataclass(frozen=True)
class ClassChange:
    """The in-use spans of one size class (0: large objects) in a and in
    b: how many, their pages, and the objects they hold (alloc_count)."""

    sizeclass: int
    size: int  # slot size; 0 for large objects
    spans: tuple[int, int]
    pages: tuple[int, int]
    objects: tuple[int, int]


@dataclass(frozen=True)
class SnapshotDiff:
    """The difference between two heaps (see the module doc); each pair
    is (a's value, b's value).  Only what differs is listed."""

    digests: tuple[int, int]
    info: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    stats: dict[str, tuple[int, int]] = field(default_factory=dict)
    classes: list[ClassChange] = field(default_factory=list)
    spans_added: list[dict[str, Any]] = field(default_factory=list)
    spans_removed: list[dict[str, Any]] = field(default_factory=list)
    spans_changed: list[tuple[dict[str, Any], dict[str, Any]]] = field(
        default_factory=list)
    arenas_added: list[int] = field(default_factory=list)
    arenas_removed: list[int] = field(default_factory=list)
    fragmentation: dict[str, tuple[Any, Any]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.digests[0] != self.digests[1] or self.info
                    or self.stats or self.classes or self.spans_added
                    or self.spans_removed or self.spans_changed
                    or self.arenas_added or self.arenas_removed
                    or self.fragmentation)

    def to_dict(self) -> dict[str, Any]:
        """The diff as JSON-ready dicts and lists (pairs as [a, b])."""
        def pairs(d: Mapping[str, tuple[Any, Any]]) -> dict[str, Any]:
            return {k: list(v) for k, v in d.items()}

        return {
            "digests": list(self.digests),
            "info": pairs(self.info),
            "stats": pairs(self.stats),
            "classes": [{"sizeclass": c.sizeclass, "size": c.size,
                         "spans": list(c.spans), "pages": list(c.pages),
                         "objects": list(c.objects)} for c in self.classes],
            "spans_added": self.spans_added,
            "spans_removed": self.spans_removed,
            "spans_changed": [[a, b] for a, b in self.spans_changed],
            "arenas_added": self.arenas_added,
            "arenas_removed": self.arenas_removed,
            "fragmentation": pairs(self.fragmentation),
        }

    def to_pandas(self) -> pd.DataFrame:
        """The size classes that changed, one row each, indexed by class:
        size, and spans, pages and objects in a, in b and the change.
        Needs pandas."""
        from ._pandas import pandas

        pd_ = pandas("SnapshotDiff.to_pandas")
        rows: dict[str, list[int]] = {"size": []}
        for what in ("spans", "pages", "objects"):
            for suffix in ("a", "b", "change"):
                rows[f"{what}_{suffix}"] = []
        for c in self.classes:
            rows["size"].append(c.size)
            for what in ("spans", "pages", "objects"):
                a, b = getattr(c, what)
                rows[f"{what}_a"].append(a)
                rows[f"{what}_b"].append(b)
                rows[f"{what}_change"].append(b - a)
        df: pd.DataFrame = pd_.DataFrame(
            rows, index=pd_.Index([c.sizeclass for c in self.classes],
                                  name="sizeclass"), dtype="int64")
        return df

    def __str__(self) -> str:
        return "\n".join(self._lines())

    def __repr__(self) -> str:
        """Compact: the digests in hex and how much changed (str() has
        the whole diff)."""
        a, b = self.digests
        if not self:
            return f"<goalloc.SnapshotDiff no difference (digest {a:#018x})>"
        counts = [(len(self.info), "info fields"),
                  (len(self.stats), "stats fields"),
                  (len(self.classes), "size classes"),
                  (len(self.spans_added), "spans added"),
                  (len(self.spans_removed), "spans removed"),
                  (len(self.spans_changed), "spans changed"),
                  (len(self.arenas_added), "arenas added"),
                  (len(self.arenas_removed), "arenas removed")]
        changed = ", ".join(f"{n} {what}" for n, what in counts if n)
        return (f"<goalloc.SnapshotDiff digest {a:#018x} -> {b:#018x}: "
                f"{changed or 'fragmentation only'}>")

    def _lines(self) -> list[str]:
        a, b = self.digests
        if not self:
            return [f"no difference (digest {a:#018x})"]
        out = [f"digest {a:#018x} -> {b:#018x}"
               + (" (equal)" if a == b else "")]
        if self.info:
            out.append("info (Heap.info() fields that changed):")
            out += [f"  {k:22} {_value(k, va):>18} -> {_value(k, vb)}"
                    for k, (va, vb) in self.info.items()]
        if self.stats:
            out.append("stats (MemStats fields that changed):")
            for k, (va, vb) in self.stats.items():
                out.append(f"  {k:14} {va:>16,} -> {vb:>16,}  "
                           f"{_change(va, vb, k not in _COUNT_FIELDS)}")
        if self.classes:
            out.append("in-use spans by size class (objects: "
                       "alloc_count):")
            out.append(f"  {'class':>5} {'size':>6}  {'spans':>17}  "
                       f"{'pages':>17}  {'objects':>21}")
            for c in self.classes:
                size = "large" if c.sizeclass == 0 else str(c.size)
                out.append(f"  {c.sizeclass:>5} {size:>6}  "
                           f"{_pair(c.spans):>17}  {_pair(c.pages):>17}  "
                           f"{_pair(c.objects):>21}")
        if self.spans_added or self.spans_removed or self.spans_changed:
            out.append(f"spans: {len(self.spans_added)} new, "
                       f"{len(self.spans_removed)} gone, "
                       f"{len(self.spans_changed)} changed")
            shown = 0
            for s in self.spans_added:
                if shown < 8:
                    out.append(f"  + {_span(s)}")
                shown += 1
            for s in self.spans_removed:
                if shown < 8:
                    out.append(f"  - {_span(s)}")
                shown += 1
            for sa, sb in self.spans_changed:
                if shown < 8:
                    keys = [k for k in _SPAN_KEYS if sa.get(k) != sb.get(k)]
                    what = ", ".join(f"{k} {sa.get(k)} -> {sb.get(k)}"
                                     for k in keys)
                    out.append(f"  ~ {sa['base']:#014x}: {what}")
                shown += 1
            if shown > 8:
                out.append(f"  ... and {shown - 8} more")
        if self.arenas_added or self.arenas_removed:
            out.append("arenas: " + ", ".join(
                [f"+{x:#014x}" for x in self.arenas_added]
                + [f"-{x:#014x}" for x in self.arenas_removed]))
        if self.fragmentation:
            out.append("fragmentation:")
            for k, (va, vb) in self.fragmentation.items():
                out.append(f"  {k:14} {_num(k, va):>16} -> "
                           f"{_num(k, vb):>16}")
        return out


def _value(key: str, v: Any) -> str:
    """An info value; addresses in hex."""
    if isinstance(v, int) and not isinstance(v, bool) and (
            key.endswith(("_base", "_end")) or key == "zerobase"):
        return f"{v:#014x}"
    return str(v)


def _pair(p: tuple[int, int]) -> str:
    a, b = p
    return f"{a:,} -> {b:,} ({b - a:+,})" if a != b else f"{a:,}"


def _change(a: int, b: int, nbytes: bool) -> str:
    d = b - a
    text = f"{d:+,}"
    if nbytes and abs(d) >= 1024:
        text += f" ({_human(d)})"
    if a:
        text += f" {100 * d / a:+.1f}%"
    return text


def _human(n: int) -> str:
    sign = "-" if n < 0 else "+"
    n = abs(n)
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n >= 1 << shift:
            return f"{sign}{n / (1 << shift):.2f} {unit}"
    return f"{sign}{n} B"


def _num(key: str, v: Any) -> str:
    if v is None:
        return "n/a"
    if key.endswith("_bytes") or key in ("requested_live", "heap_alloc"):
        return f"{int(v):,}"
    if key == "overhead":
        return f"{float(v):.3f}x"
    return f"{100 * float(v):.2f}%"


def _span(s: Mapping[str, Any]) -> str:
    what = ("free" + (", scavenged" if s.get("scavenged") else "")
            if s.get("state") == "free" else
            f"{s.get('state')}, class {s.get('sizeclass')}, "
            f"{s.get('alloc_count')}/{s.get('nelems')} objects")
    return f"{s['base']:#014x} {s['npages']} pages ({what})"


def _document(x: Any, which: str) -> dict[str, Any]:
    from .heap import Heap
    from .snapshot import snapshot, validate

    if isinstance(x, Heap):
        return snapshot(x)
    if isinstance(x, Mapping):
        doc = dict(x)
        try:
            validate(doc)
        except ValueError as e:
            raise ValueError(f"diff: {which} is not a snapshot: {e}") \
                from None
        return doc
    raise TypeError(f"diff: {which} must be a goalloc.Heap or a snapshot "
                    f"document, not {type(x).__name__}")


def _by_class(doc: Mapping[str, Any]) -> dict[int, tuple[int, int, int]]:
    """sizeclass -> (in-use spans, pages, objects)."""
    out: dict[int, tuple[int, int, int]] = {}
    for s in doc["spans"]:
        if s["state"] != "inuse":
            continue
        n, p, o = out.get(s["sizeclass"], (0, 0, 0))
        out[s["sizeclass"]] = (n + 1, p + s["npages"], o + s["alloc_count"])
    return out


def diff(a: Any, b: Any) -> SnapshotDiff:
    """What changed from heap a to heap b (see the module doc).  a and b:
    Heaps or snapshot documents; TypeError for anything else, ValueError
    for a document that fails goalloc.snapshot.validate."""
    da, db = _document(a, "a"), _document(b, "b")
    info = {k: (v, db["info"].get(k)) for k, v in da["info"].items()
            if db["info"].get(k) != v}
    sa = {k: v for k, v in da["stats"].items() if k != "by_size"}
    stats = {k: (v, db["stats"].get(k)) for k, v in sa.items()
             if db["stats"].get(k) != v}
    ca, cb = _by_class(da), _by_class(db)
    sizes = {c: row[1] for c, row in enumerate(_core._size_classes())}
    classes = [ClassChange(c, sizes.get(c, 0) if c else 0,
                           (ca.get(c, (0, 0, 0))[0], cb.get(c, (0, 0, 0))[0]),
                           (ca.get(c, (0, 0, 0))[1], cb.get(c, (0, 0, 0))[1]),
                           (ca.get(c, (0, 0, 0))[2], cb.get(c, (0, 0, 0))[2]))
               for c in sorted(set(ca) | set(cb))
               if ca.get(c) != cb.get(c)]
    spans_a = {s["base"]: s for s in da["spans"]}
    spans_b = {s["base"]: s for s in db["spans"]}
    added = [s for base, s in spans_b.items() if base not in spans_a]
    removed = [s for base, s in spans_a.items() if base not in spans_b]
    changed = [(spans_a[base], s) for base, s in spans_b.items()
               if base in spans_a
               and any(spans_a[base].get(k) != s.get(k) for k in _SPAN_KEYS)]
    arenas_a = [x["base"] for x in da["arenas"]]
    arenas_b = [x["base"] for x in db["arenas"]]
    keys = (*METRICS, "requested_live", *(f"{m}_bytes" for m in METRICS
                                          if m != "overhead"))
    frag = {k: (da["fragmentation"].get(k), db["fragmentation"].get(k))
            for k in keys
            if da["fragmentation"].get(k) != db["fragmentation"].get(k)}
    return SnapshotDiff(
        digests=(da["digest"], db["digest"]), info=info, stats=stats,
        classes=classes, spans_added=added, spans_removed=removed,
        spans_changed=changed,
        arenas_added=[x for x in arenas_b if x not in set(arenas_a)],
        arenas_removed=[x for x in arenas_a if x not in set(arenas_b)],
        fragmentation=frag)
