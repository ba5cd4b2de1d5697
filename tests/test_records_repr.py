"""Every record's repr: addresses in hex, large records compact.

A record prints where a user looks at a heap (a notebook cell, a
debugger, a failing assert); addresses there must read as Go prints them
(0x00c000000000), and a record with a list that grows with the heap
(an mcentral's spans, an mcache's, a span's slots, MemStats.by_size, a
timeline, a trace) prints its size and its first entries, not all of it.
"""
from __future__ import annotations

import dataclasses
import re

import pytest

import goalloc
from goalloc import snapshot
from goalloc._records import REPR_SHOW

# record -> its fields that are addresses (or lists or dicts of them)
ADDRESSES: dict[type, tuple[str, ...]] = {
    goalloc.ArenaHint: ("addr",),
    goalloc.Arena: ("base",),
    goalloc.Span: ("base", "limit"),
    goalloc.Central: ("nonempty", "empty"),
    goalloc.Cache: ("tiny", "alloc"),
    goalloc.SpanObjects: ("base",),
    goalloc.HeapInfo: ("arena_base_offset", "zerobase", "cur_arena_base",
                       "cur_arena_end"),
    goalloc.SizeClass: (), goalloc.BySize: (), goalloc.GCState: (),
    goalloc.GCCycle: (), goalloc.MemStats: (), goalloc.Fragmentation: (),
    goalloc.Timeline: (), goalloc.Trace: (),
    snapshot.SnapshotDiff: ("digests",), snapshot.ClassChange: (),
}


def is_record(obj: object) -> bool:
    return isinstance(obj, type) and (
        dataclasses.is_dataclass(obj) or issubclass(obj, tuple)
        and hasattr(obj, "_fields") or obj in (goalloc.Trace,
                                               goalloc.Timeline))


def test_every_record_is_listed():
    """A new record type must say which of its fields are addresses."""
    exported = {getattr(goalloc, n) for n in goalloc.__all__}
    exported |= {getattr(snapshot, n) for n in dir(snapshot)
                 if n[0].isupper()}
    records = {r for r in exported if is_record(r)
               and r.__module__.startswith("goalloc")}
    assert records - set(ADDRESSES) == set()


def addresses_of(value) -> list[int]:
    """The addresses a repr shows of a field: the first REPR_SHOW of a
    list or a pair."""
    if isinstance(value, int):
        return [value]
    if isinstance(value, dict):
        value = list(value.values())
    return list(value)[:REPR_SHOW]


@pytest.fixture(scope="module")
def busy():
    """A heap with many spans of one class on three Ps, tiny blocks and a
    GC cycle."""
    h = goalloc.Heap(backing="virtual", procs=3, collector="gc")
    keep = [h.alloc(48, p=i % 3) for i in range(5000)]
    keep += [h.alloc(n, noscan=True, p=1) for n in (4, 8, 12) * 10]
    keep += [h.alloc(100_000)]
    for a in keep[:4000]:
        h.drop(a)
    h.gc()
    keep = keep[4000:] + [h.alloc(48, p=0) for _ in range(3000)]
    yield h
    h.close()


def records(h) -> list:
    small = next(s for s in h.spans() if s.sizeclass)
    tl = goalloc.Heap(backing="virtual").replay(
        goalloc.Trace.from_ops([("alloc", i, 48) for i in range(100)]),
        sample_every=10)
    a = snapshot.snapshot(h)
    g = goalloc.Heap(backing="virtual")
    g.alloc(100)
    return [*h.hints(), *h.arenas(), *h.spans(), *h.centrals(),
            *h.caches(), h.span_objects(small.base), h.info(),
            *goalloc.size_classes(), *h.stats().by_size, h.gc_state(),
            *h.gc_cycles(), h.stats(), h.fragmentation(), tl,
            goalloc.Trace.from_ops([("alloc", 1, 8)]),
            snapshot.diff(a, snapshot.snapshot(g)),
            snapshot.diff(a, a)]


def test_addresses_are_hex(busy):
    seen: set[type] = set()
    for r in records(busy):
        text = repr(r)
        seen.add(type(r))
        for name in ADDRESSES[type(r)]:
            for addr in addresses_of(getattr(r, name)):
                assert f"{addr:#x}"[2:] in text.lower(), (name, text)
                if addr > 9:  # in decimal, an address is not there
                    assert not re.search(rf"\b{addr}\b", text), (name, text)
    assert seen >= set(ADDRESSES) - {snapshot.ClassChange}


def test_large_records_are_compact(busy):
    """Records that grow with the heap print in a line of bounded length
    (and say how many entries they hold)."""
    central = max(busy.centrals(), key=lambda c: len(c.empty)
                  + len(c.nonempty))
    assert len(central.empty) + len(central.nonempty) > 20
    cache = max(busy.caches(), key=lambda c: len(c.alloc))
    span = max((s for s in busy.spans() if s.sizeclass),
               key=lambda s: s.nelems)
    objs = busy.span_objects(span.base)
    assert span.nelems >= 100
    st = busy.stats()
    for r, count in ((central, f"[{len(central.empty)} spans"),
                     (cache, f"[{len(cache.alloc)} spans"),
                     (objs, f"<{span.nelems} slots"),
                     (st, f"<{len(st.by_size)} classes>")):
        text = repr(r)
        assert len(text) < 700, text
        assert count in text, text
    live = objs.states.count(goalloc.SLOT_LIVE)
    assert f"{live} live" in repr(objs)

