"""goalloc/_records.py (and MemStats, the .pyi, the arrays' dtypes): one
definition per record.

The C core defines each record once (the X-macros of csrc/goalloc.h and
MSTATS_FIELDS in csrc/mstats.h) and _core exports it as a tuple of
(name, Python type, doc).  What Python derives from those (NumPy dtypes,
the snapshot schema, COUNTER_FIELDS) cannot drift; what is written out
for type checkers (the NamedTuples and dataclasses, the tuple aliases of
goalloc/_core.pyi) is checked against them here, field by field, and the
values the binding returns are checked against the declared types.
"""
from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import numpy as np
import pytest

import goalloc
from goalloc import _core, arrays, trace
from goalloc._records import PY_NAMES

STUB = Path(goalloc.__file__).with_name("_core.pyi")

# record -> its definition in _core, and the fields the Python record
# presents differently (a dict instead of the core's tuple)
RECORDS = [
    (goalloc.ArenaHint, "HINT_FIELDS", {}),
    (goalloc.Arena, "ARENA_FIELDS", {}),
    (goalloc.Span, "SPAN_FIELDS", {}),
    (goalloc.Central, "CENTRAL_FIELDS", {}),
    (goalloc.Cache, "CACHE_FIELDS", {"alloc": "dict[int, int]"}),
    (goalloc.HeapInfo, "HEAP_INFO_FIELDS", {}),
    (goalloc.MemStats, "MSTATS_FIELDS",
     {"by_size": "tuple[BySize, ...]"}),
]


def annotations(record) -> dict[str, str]:
    """A record's fields and their annotations as written."""
    return {name: str(getattr(kind, "__forward_arg__", kind))
            for name, kind in record.__annotations__.items()}


def definition(name: str) -> list[tuple[str, str]]:
    """The core's fields of a record, named as Python names them."""
    return [(PY_NAMES.get(n, n), t) for n, t, _ in getattr(_core, name)]


@pytest.mark.parametrize("record, fields, own", RECORDS,
                         ids=[r[0].__name__ for r in RECORDS])
def test_record_matches_the_core(record, fields, own):
    """Same fields, same order, same types; the only extras are the ones
    the record presents differently on purpose."""
    written = annotations(record)
    core = dict(definition(fields))
    extra = {k: v for k, v in written.items() if k not in core}
    assert extra == {k: v for k, v in own.items() if k not in core}
    assert [k for k in written if k in core] == list(core)
    for name, typ in core.items():
        assert written[name] == own.get(name, typ), name


def test_every_definition_is_documented():
    for name in ("HINT_FIELDS", "ARENA_FIELDS", "SPAN_FIELDS",
                 "CENTRAL_FIELDS", "CACHE_FIELDS", "HEAP_INFO_FIELDS",
                 "MSTATS_FIELDS", "COUNTER_FIELDS", "OBJECT_FIELDS"):
        fields = getattr(_core, name)
        assert fields, name
        names = [f[0] for f in fields]
        assert len(set(names)) == len(names), name
        for field, typ, doc in fields:
            assert field.isidentifier() and typ and doc.strip(), (name, field)


def test_namedtuple_fields_carry_the_core_docs():
    assert goalloc.Span.alloc_count.__doc__ == dict(
        (n, d) for n, _, d in _core.SPAN_FIELDS)["alloc_count"]
    assert goalloc.Arena.idx.__doc__.startswith("Go's arenaIdx")
    assert goalloc.Central.nfree.__doc__ == "objects freed"


def stub_aliases() -> dict[str, list[str]]:
    """The tuple aliases of _core.pyi: name -> element types."""
    out = {}
    for node in ast.parse(STUB.read_text()).body:
        if (isinstance(node, ast.Assign) and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name)
                and isinstance(node.value, ast.Subscript)
                and ast.unparse(node.value.value) == "tuple"):
            elts = node.value.slice
            items = elts.elts if isinstance(elts, ast.Tuple) else [elts]
            out[node.targets[0].id] = [ast.unparse(e) for e in items]
    return out


@pytest.mark.parametrize("alias, fields", [
    ("_HintTuple", "HINT_FIELDS"), ("_ArenaTuple", "ARENA_FIELDS"),
    ("_SpanTuple", "SPAN_FIELDS"), ("_CentralTuple", "CENTRAL_FIELDS"),
    ("_CacheTuple", "CACHE_FIELDS"), ("_CountersTuple", "COUNTER_FIELDS"),
])
def test_stub_tuples_match_the_core(alias, fields):
    assert stub_aliases()[alias] == [t for _, t, _ in getattr(_core, fields)]


def type_of(value) -> str:
    if isinstance(value, tuple):
        assert all(type(v) is int for v in value)
        return "tuple[int, ...]"
    return type(value).__name__


@pytest.fixture
def busy(heap):
    heap.alloc(100_000)
    for n in (8, 48, 1000):
        heap.alloc(n)
    heap.alloc(3, noscan=True)
    return heap


def test_binding_values_have_the_declared_types(busy):
    h = busy
    for rows, fields in ((h._hints(), "HINT_FIELDS"),
                         (h._arenas(), "ARENA_FIELDS"),
                         (h._spans(), "SPAN_FIELDS"),
                         (h._centrals(), "CENTRAL_FIELDS"),
                         (h._caches(), "CACHE_FIELDS"),
                         ([h._counters()], "COUNTER_FIELDS")):
        want = [t for _, t, _ in getattr(_core, fields)]
        assert rows, fields
        for row in rows:
            assert [type_of(v) for v in row] == want, fields
    for d, fields in ((h._info(), "HEAP_INFO_FIELDS"),
                      (h._stats(), "MSTATS_FIELDS")):
        core = getattr(_core, fields)
        assert [k for k in d if k != "by_size"] == [n for n, _, _ in core]
        assert [type_of(d[n]) for n, _, _ in core] == [t for _, t, _ in core]


def test_span_states():
    assert _core.SPAN_STATES == ("dead", "inuse", "manual", "free")
    assert arrays.SPAN_STATES is _core.SPAN_STATES


def test_span_states_of_real_spans(busy):
    h = busy
    h.free(h.alloc(200_000))
    h.scavenge()
    seen = {s.state for s in h.spans()}
    assert "inuse" in seen and seen <= set(_core.SPAN_STATES)
    states = h.span_array()["state"]
    assert [_core.SPAN_STATES[v] for v in states] == [
        s.state for s in h.spans()]


def test_derived_dtypes_and_columns():
    assert arrays.SPAN_DTYPE.names == tuple(
        n for n, _, _ in _core.SPAN_FIELDS)
    assert arrays.OBJECT_DTYPE.names == tuple(
        n for n, _, _ in _core.OBJECT_FIELDS)
    for dt in (arrays.SPAN_DTYPE, arrays.OBJECT_DTYPE):
        assert all(dt[n] == np.uint64 for n in dt.names)
    assert trace.COUNTER_FIELDS == tuple(n for n, _, _ in
                                         _core.COUNTER_FIELDS)


def test_codes_come_from_the_core():
    assert (goalloc.SLOT_FREE, goalloc.SLOT_LIVE, goalloc.SLOT_FREED) == (
        _core.SLOT_FREE, _core.SLOT_LIVE, _core.SLOT_FREED) == (0, 1, 2)
    assert (arrays.PAGE_FREE, arrays.PAGE_RELEASED, arrays.PAGE_MANUAL,
            arrays.PAGE_LARGE) == (-1, -2, -3, 0)


def test_fragmentation_reads_counters_by_name():
    names = [n for n, _, _ in _core.COUNTER_FIELDS]
    c = {n: 0 for n in names}
    c.update(heap_alloc=96, requested_live=80, heap_inuse=128,
             heap_sys=1024, heap_idle=896, largest_free=512,
             live_objects=3)
    f = goalloc.Fragmentation.from_counters([c[n] for n in names])
    assert (f.heap_alloc, f.requested_live, f.internal_bytes,
            f.span_bytes, f.external_bytes) == (96, 80, 16, 32, 384)
    with pytest.raises(ValueError):
        goalloc.Fragmentation.from_counters([c[n] for n in names][:-1])


def test_memstats_fields_are_dataclass_fields():
    names = [f.name for f in dataclasses.fields(goalloc.MemStats)]
    assert names == [n for n, _, _ in _core.MSTATS_FIELDS] + ["by_size"]


def test_timeline_columns_are_the_counters():
    """goalloc.Timeline holds one array per counter, in the core's order,
    after op (the dataclass is written out for type checkers)."""
    fields = [f.name for f in dataclasses.fields(goalloc.Timeline)]
    names = [n for n, _, _ in _core.COUNTER_FIELDS]
    assert fields[0] == "op"
    assert fields[1:1 + len(names)] == names
