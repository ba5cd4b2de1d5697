"""docs/misuse.md, row by row (issue 6, "Bad input").

Every row of the catalogue in docs/misuse.md has exactly one test, named
after the row (test_row_...): ROW_TESTS below maps each row to the test
file of its concept and the test there, and test_every_row_has_a_test
fails on a row without one.  tests/misuse.py holds what the row tests
share: World, a heap in a realistic state, and rejected(), the check
that a call raises the documented exception and changes nothing.

Rows whose contract is not "nothing changes" (views kept after free or
close, free(zerobase), a poisoned heap, a partial trace replay, another
virtual heap's address) test what the notes column says instead.
"""
from __future__ import annotations

import builtins
import importlib
import re
from pathlib import Path

import goalloc
from goalloc import (
    SLOT_FREE,
    SLOT_FREED,
    SLOT_LIVE,
    DoubleFreeError,
    GoallocError,
    HeapBusyError,
    HeapClosedError,
    HeapCorruptionError,
    InvalidFreeError,
    OutOfMemoryError,
    TraceError,
)

MISUSE_MD = Path(__file__).resolve().parent.parent / "docs" / "misuse.md"

# The test files of the rows, by concept.
ARGS = "test_misuse_arguments"
OOM = "test_misuse_out_of_memory"
FREE = "test_misuse_free"
STATE = "test_misuse_heap_state"
VIEWS = "test_views"
TRACE = "test_trace"
SNAPSHOT = "test_snapshot"
BULK = "test_bulk"
GC = "test_gc"

# row text prefix -> (its test file, its test, the documented exception)
ROW_TESTS = {
    "an argument of the wrong type":
        (ARGS, "test_row_wrong_type", "TypeError"),
    "a negative size, or a size beyond 2**64":
        (ARGS, "test_row_negative_or_beyond_2_64", "ValueError"),
    "a size beyond the port's `maxAlloc`":
        (ARGS, "test_row_beyond_max_alloc", "ValueError"),
    "a size the OS (or `sys_limit`, or `fail_reserves`) cannot back":
        (OOM, "test_row_out_of_memory", "OutOfMemoryError"),
    "`p` out of range":
        (ARGS, "test_row_p_out_of_range", "ValueError"),
    "an unknown keyword":
        (ARGS, "test_row_unknown_keyword", "TypeError"),
    "double free of a large object":
        (FREE, "test_row_double_free_large", "DoubleFreeError"),
    "double free of a small object":
        (FREE, "test_row_double_free_small", "DoubleFreeError"),
    "double free of a tiny object":
        (FREE, "test_row_double_free_tiny", "DoubleFreeError"),
    "an interior pointer":
        (FREE, "test_row_not_an_object_start", "InvalidFreeError"),
    "a foreign address":
        (FREE, "test_row_foreign_address", "InvalidFreeError"),
    "an address from another heap":
        (FREE, "test_row_address_of_another_heap", "InvalidFreeError"),
    "`free(zerobase)`":
        (FREE, "test_row_free_zerobase", None),
    "any call while another thread replays a trace":
        (STATE, "test_row_heap_busy", "HeapBusyError"),
    "any call after `close()`":
        (STATE, "test_row_heap_closed", "HeapClosedError"),
    "any call from Python code that a call on the heap runs":
        (STATE, "test_row_reentrant_call", "HeapBusyError"),
    "an argument whose conversion":
        (STATE, "test_row_conversion_closes_the_heap", "HeapClosedError"),
    "`replay` with `sample_every` or `chunk`":
        (TRACE, "test_row_replay_bad_options", "ValueError"),
    "a `str` argument containing NUL":
        (ARGS, "test_row_nul_in_str", "ValueError"),
    "`view()` on the `virtual` backing":
        (VIEWS, "test_row_view_on_virtual", "ValueError"),
    "`view()` of a freed object":
        (VIEWS, "test_row_view_bad_object", "ValueError"),
    "a view kept after `free`":
        (VIEWS, "test_row_view_kept_after_free", None),
    "a view kept after `close()`":
        (VIEWS, "test_row_view_kept_after_close", None),
    "bad `Heap()` arguments":
        (ARGS, "test_row_bad_heap_arguments", "ValueError"),
    "a malformed trace file":
        (TRACE, "test_row_malformed_trace_file", "TraceError"),
    "a trace op that cannot be replayed":
        (TRACE, "test_row_trace_op_not_replayable", "TraceError"),
    "`Trace(...)` or `Trace.from_ops` values that are not integers":
        (TRACE, "test_row_trace_values_not_integers", "TypeError"),
    "`Trace(...)` or `Trace.from_ops` values outside their column":
        (TRACE, "test_row_trace_values_out_of_range", "TraceError"),
    "replay of a trace with an id beyond 2**31-1":
        (TRACE, "test_row_replay_id_beyond_limit", "TraceError"),
    "`snapshot.load_json` of a file that is not a goalloc snapshot":
        (SNAPSHOT, "test_row_snapshot_not_a_snapshot", "ValueError"),
    "a broken internal invariant":
        (STATE, "test_row_broken_invariant", "HeapCorruptionError"),
    "`alloc_many` / `free_many` input that is not integers":
        (BULK, "test_row_bulk_not_integers", "TypeError"),
    "2-D (or deeper) input":
        (BULK, "test_row_bulk_2d", "ValueError"),
    "in `alloc_many`: a negative size":
        (BULK, "test_row_bulk_bad_size", "ValueError"),
    "in `alloc_many`: `p` out of range":
        (BULK, "test_row_bulk_p_and_keywords", None),
    "out of memory part way through `alloc_many`":
        (BULK, "test_row_bulk_out_of_memory", "OutOfMemoryError"),
    "a bad address inside `free_many`":
        (BULK, "test_row_bulk_bad_address", "DoubleFreeError"),
    "GC mode: `drop` of an object dropped already":
        (GC, "test_row_drop_twice", "DoubleFreeError"),
    "GC mode: `drop` of an interior or foreign address":
        (GC, "test_row_drop_not_an_object", "InvalidFreeError"),
    "the other collector's call":
        (GC, "test_row_wrong_collector", "WrongCollectorError"),
    "bad GC options":
        (GC, "test_row_bad_gc_options", "ValueError"),
}


def catalogue_rows() -> list[tuple[str, str, str]]:
    """(misuse, exception, notes) of every row of docs/misuse.md's table."""
    rows = []
    for line in MISUSE_MD.read_text(encoding="utf-8").splitlines():
        if not line.startswith("|"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells[0] == "misuse" or set(cells[0]) <= set("-: "):
            continue
        assert len(cells) == 3, line
        rows.append(tuple(cells))
    return rows


def test_every_row_has_a_test():
    rows = catalogue_rows()
    assert len(rows) >= 20
    used = set()
    for misuse, exception, _ in rows:
        keys = [k for k in ROW_TESTS if misuse.startswith(k)]
        assert len(keys) == 1, f"row without a (unique) test: {misuse!r}"
        key = keys[0]
        used.add(key)
        module, name, documented = ROW_TESTS[key]
        assert name.startswith("test_row_")
        assert callable(getattr(importlib.import_module(module), name)), \
            f"{module}.py has no {name}"
        named = [n for n in re.findall(r"`(\w+)`", exception)
                 if n.endswith("Error")]
        if documented is None:
            assert named == [], (misuse, exception)
            continue
        # the first exception named is the row's; any other is a base
        # ("(also a `MemoryError`)", "(a `RuntimeError`)")
        assert named[:1] == [documented], (misuse, exception)
        classes = [getattr(goalloc, n, None) or getattr(builtins, n)
                   for n in named]
        for base in classes[1:]:
            assert issubclass(classes[0], base), (misuse, exception)
    assert used == set(ROW_TESTS), f"stale entries: {set(ROW_TESTS) - used}"
    # the known limit has its test too
    text = MISUSE_MD.read_text(encoding="utf-8")
    assert "## The known limit" in text
    assert "frees the new object" in text
    free_tests = importlib.import_module(FREE)
    assert callable(free_tests.test_known_limit_reused_address)


def test_documented_bases():
    """The bases the catalogue names: "(also a `MemoryError`)", "(a
    `RuntimeError`)", "(a `ValueError`)", and design §10.1's hierarchy."""
    assert issubclass(DoubleFreeError, InvalidFreeError)
    for exc in (InvalidFreeError, DoubleFreeError, TraceError):
        assert issubclass(exc, ValueError) and issubclass(exc, GoallocError)
    assert issubclass(OutOfMemoryError, MemoryError)
    assert issubclass(OutOfMemoryError, GoallocError)
    assert not issubclass(OutOfMemoryError, ValueError)
    for exc in (HeapClosedError, HeapBusyError, HeapCorruptionError):
        assert issubclass(exc, RuntimeError) and issubclass(exc, GoallocError)
        assert not issubclass(exc, ValueError)
    assert len({HeapClosedError, HeapBusyError, HeapCorruptionError}) == 3
    assert not issubclass(HeapBusyError, HeapClosedError)
    assert not issubclass(HeapCorruptionError, HeapClosedError)


def test_world_is_what_the_tests_assume(world):
    """The states the rows below rely on are really there."""
    h = world.h
    full = h.span_of(world.full[0])
    cached = h.span_of(world.cached[0])
    flushed = h.span_of(world.flushed[0])
    swept = h.span_of(world.swept[0])
    assert full.sizeclass == cached.sizeclass == 4 and full != cached
    assert full.alloc_count == full.nelems
    assert cached.base in h.caches()[1].alloc.values()
    assert full.base in h.centrals()[8].empty
    assert flushed.base in h.centrals()[21].nonempty
    assert swept.base in h.centrals()[10].nonempty
    for s in (full, flushed, swept):
        assert not any(s.base in c.alloc.values() for c in h.caches())
    assert h.span_objects(cached.base).states[3] == SLOT_FREED
    assert h.span_objects(flushed.base).states[1] == SLOT_FREED
    assert h.span_objects(flushed.base).states[0] == SLOT_LIVE
    assert h.span_objects(swept.base).states[2] == SLOT_FREE
    assert h.caches()[0].tiny == world.tiny[0]
    assert h.caches()[2].tiny == 0                   # flushed
    assert h.span_of(world.returned[0]).state == "free"
    assert h.span_of(world.large).npages == 5
    lf = h.span_of(world.large_freed)
    assert lf.state == "free" and not lf.scavenged and lf.base == \
        world.large_freed and lf.npages == 13
    rel = h.span_of(world.released)
    assert rel.state == "free" and rel.scavenged and rel.base == \
        world.released
    assert world.zero == h.info().zerobase
    assert {s.state for s in h.spans()} == {"inuse", "free"}
    assert len({c.alloc.get(8) for c in h.caches()}) == 2   # P1's only
    h.verify()
