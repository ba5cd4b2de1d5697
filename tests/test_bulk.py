"""Heap.alloc_many and Heap.free_many: one C loop, the semantics of a
sequence of alloc() / free() calls.

Each bulk call is compared with the same calls made one by one on a twin
heap (made after the first is closed, so that on the os backing both map
the same hints and addresses compare directly): the same addresses, the
same exception at the same element, and the same heap afterwards, by
digest() and info() (helpers.state).  A rejected element changes
nothing (design §10.2); the elements before it stay done.
"""
from __future__ import annotations

import array
import threading

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import goalloc
from goalloc import (
    DoubleFreeError,
    GoallocError,
    InvalidFreeError,
    OutOfMemoryError,
)
from helpers import MiB, heap_is_poisoned, state
from misuse import PROCS, World, rejected, still_works

MAX_ALLOC = 1 << 48  # linux/amd64

SETTINGS = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


# sizes: 0, tiny (< 16, tiny only when noscan), small, large
SIZES = st.one_of(st.just(0), st.integers(1, 15), st.integers(16, 32768),
                  st.integers(32769, 300_000))

MIXED = [0, 1, 3, 8, 15, 16, 17, 24, 100, 512, 4096, 8192, 32768, 32769,
         40_000, 100_000, 5, 0, 7, 2, 48, 1 << 20, 9, 64, 33]


def per_call_allocs(h, sizes, noscan, p):
    return [h.alloc(int(s), noscan=noscan, p=p) for s in sizes]


def per_call_frees(h, addrs):
    """free() each address in order; stop at the first refusal and return
    (its index, the exception), or (None, None)."""
    for i, a in enumerate(addrs):
        try:
            h.free(int(a))
        except goalloc.GoallocError as e:
            return i, e
    return None, None


def as_numpy(values):
    """values as NumPy would hold them: int64, uint64 or, for Python ints
    beyond both, object."""
    for dt in (np.int64, np.uint64):
        try:
            return np.array(values, dtype=dt)
        except OverflowError:
            pass
    return np.array(values, dtype=object)


def twins(backing, procs=1, **kw):
    """Two heaps with the same options, made one after the other."""
    def make():
        return goalloc.Heap(backing=backing, procs=procs, **kw)
    return make


# ---- the same as calls ----------------------------------------------------

@SETTINGS
@given(before=st.lists(SIZES, max_size=30),
       sizes=st.lists(SIZES, max_size=300),
       noscan=st.booleans(), procs=st.integers(1, 3), data=st.data())
@pytest.mark.parametrize("backing", ["virtual", "os"])
def test_alloc_many_then_free_many_equal_calls(backing, before, sizes, noscan,
                                               procs, data):
    p = data.draw(st.integers(0, procs - 1), label="p")
    order = data.draw(st.permutations(range(len(sizes))), label="order")
    make = twins(backing, procs)
    with make() as h:
        per_call_allocs(h, before, not noscan, 0)
        got = h.alloc_many(np.array(sizes, dtype=np.int64), noscan=noscan,
                           p=p)
        assert got.dtype == np.uint64 and got.shape == (len(sizes),)
        h.verify()
        after_alloc = state(h)
        h.free_many(got[list(order)])
        h.verify()
        after_free = state(h)
    with make() as h:
        per_call_allocs(h, before, not noscan, 0)
        want = per_call_allocs(h, sizes, noscan, p)
        assert state(h) == after_alloc
        assert per_call_frees(h, [want[i] for i in order]) == (None, None)
        assert state(h) == after_free
    assert got.tolist() == want


@pytest.mark.parametrize("backing", ["virtual", "os"])
def test_mixed_sizes_in_every_input_form(backing):
    """list, range, tuple, array.array, NumPy of every integer dtype, a
    strided view and a big-endian array: the same allocations."""
    def fitting(dt):
        return [s for s in MIXED if s <= np.iinfo(dt).max]

    forms = [
        ("list", MIXED, MIXED), ("tuple", tuple(MIXED), MIXED),
        ("range", range(0, 40_000, 997), list(range(0, 40_000, 997))),
        ("array.array q", array.array("q", MIXED), MIXED),
        ("array.array I", array.array("I", MIXED), MIXED),
        ("strided", np.repeat(np.array(MIXED, dtype=np.int64), 2)[::2], MIXED),
        (">u8", np.array(MIXED, dtype=">u8"), MIXED),
        ("memoryview", memoryview(np.array(MIXED, dtype=np.uint32)), MIXED),
    ] + [(str(dt), np.array(fitting(dt), dtype=dt), fitting(dt))
         for dt in (np.int8, np.uint8, np.int16, np.uint16, np.int32,
                    np.uint32, np.int64, np.uint64, np.intp, np.uintp)]
    for name, values, sizes in forms:
        with goalloc.Heap(backing=backing) as h:
            got = h.alloc_many(values, noscan=False, p=0)
            bulk = state(h)
        with goalloc.Heap(backing=backing) as h:
            want = per_call_allocs(h, sizes, False, 0)
            assert state(h) == bulk, name
        assert got.tolist() == want, name


def test_noscan_and_p_are_alloc_s(backing):
    """noscan defaults to False, as for alloc; both are parsed as alloc
    parses them."""
    with goalloc.Heap(backing=backing, procs=2) as h:
        a = h.alloc_many([8, 8], noscan=True)     # tiny: one 16-byte block
        assert int(a[1]) == int(a[0]) + 8
        assert h.span_of(int(a[0])).spanclass == 5
        d = h.alloc_many([8])                     # the default: class 1
        assert h.span_of(int(d[0])).spanclass == 2
        b = h.alloc_many([8, 8], noscan=0)        # any truth value
        assert int(b[1]) == int(b[0]) + 8
        assert h.span_of(int(b[0])).sizeclass == 1
        c = h.alloc_many([8], noscan=[], p=1)
        assert h.caches()[1].alloc                # P 1's mcache was used
        assert h.span_of(int(c[0])).noscan is False
        snap = state(h)
        for kw, exc in [({"p": 2}, ValueError), ({"p": -1}, ValueError),
                        ({"p": 1 << 100}, ValueError), ({"p": "0"}, TypeError),
                        ({"p": 1.0}, TypeError)]:
            with pytest.raises(exc) as e:
                h.alloc_many([8], **kw)
            with pytest.raises(exc) as e2:
                h.alloc(8, **kw)
            assert type(e.value) is type(e2.value)
            assert str(e.value) == str(e2.value)
        with pytest.raises(TypeError):
            h.alloc_many([8], bogus=1)

        class Bad:
            def __bool__(self):
                raise ZeroDivisionError

        with pytest.raises(ZeroDivisionError):
            h.alloc_many([8], noscan=Bad())
        assert state(h) == snap


def test_result_is_a_fresh_array_and_the_input_a_copy(backing):
    with goalloc.Heap(backing=backing) as h:
        sizes = np.array([16, 32, 48], dtype=np.uint64)
        sizes.flags.writeable = False             # read-only input is fine
        a = h.alloc_many(sizes)
        assert a.flags.c_contiguous and a.flags.writeable and a.flags.owndata
        assert sizes.tolist() == [16, 32, 48]
        assert not np.shares_memory(a, sizes)
        b = np.array(a)
        h.free_many(a)                            # addresses go back as is
        a[:] = 0                                  # the caller's own array
        assert h.stats().heap_objects == 0
        with pytest.raises(goalloc.DoubleFreeError):
            h.free_many(b)


def test_empty_input(backing):
    with goalloc.Heap(backing=backing) as h:
        h.alloc(100)
        snap = state(h)
        for empty in ([], (), range(0), np.array([], dtype=np.int64),
                      np.array([], dtype=np.uint8), array.array("q"),
                      np.zeros((0,), dtype=np.uint64)):
            out = h.alloc_many(empty)
            assert out.dtype == np.uint64 and out.shape == (0,)
            assert h.free_many(empty) is None
        assert state(h) == snap


def test_zero_sizes_get_zerobase_and_free_as_nil(backing):
    with goalloc.Heap(backing=backing) as h:
        a = h.alloc_many([0, 0, 0])
        assert set(a.tolist()) == {h.info().zerobase}
        h.free_many(a)
        h.free_many(a)                            # freeing nil, again


# ---- refused up front ---------------------------------------------------

@pytest.mark.parametrize("values, index", [
    (np.array([5, 8, -1, 7, -3], dtype=np.int64), 2),
    (np.array([-1], dtype=np.int8), 0),
    ([16, 1 << 64, 8], 1),
    ([16, 8, -(1 << 70)], 2),
    ([5, -1, 1 << 63], 1),              # NumPy makes float64 of this list
    (np.array([1, MAX_ALLOC, MAX_ALLOC + 1, 3], dtype=np.uint64), 2),
    ([MAX_ALLOC + 5, -1], 0),
    (np.array([8, (1 << 64) - 1], dtype=np.uint64), 1),
])
def test_bad_sizes_are_refused_before_anything(backing, values, index):
    with goalloc.Heap(backing=backing) as h:
        h.alloc(24)
        snap = state(h)
        with pytest.raises(ValueError) as e:
            h.alloc_many(values)
        assert type(e.value) is ValueError
        assert e.value.index == index
        assert f"sizes[{index}]" in str(e.value)
        assert "nothing was allocated" in str(e.value)
        assert state(h) == snap
        bad = int(np.asarray(values, dtype=object)[index])
        with pytest.raises(ValueError) as e2:    # alloc says the same
            h.alloc(bad)
        assert str(e2.value) in str(e.value)


@pytest.mark.parametrize("values", [
    np.array([1.0, 2.0]), np.array([], dtype=np.float64), [1.5], [1, 2.0],
    np.array([True, False]), [True], ["8"], "abc", b"\x08"[0], 16, None,
    [1, None], np.array([1, "x"], dtype=object), np.array([1 + 2j]),
    np.array(["a"]), np.array([1, 2], dtype="m8[s]"),
    (x for x in range(3)),
])
def test_non_integer_input_is_a_type_error(backing, values):
    with goalloc.Heap(backing=backing) as h:
        a = h.alloc(8)
        snap = state(h)
        with pytest.raises(TypeError):
            h.alloc_many(values)
        with pytest.raises(TypeError):
            h.free_many(values)
        assert state(h) == snap
        h.free(a)


@pytest.mark.parametrize("values", [
    np.zeros((2, 2), dtype=np.int64), [[8, 16]], np.zeros((1, 0, 3), np.uint8),
    memoryview(np.zeros((2, 3), dtype=np.uint64)),
])
def test_two_d_input_is_a_value_error(backing, values):
    with goalloc.Heap(backing=backing) as h:
        a = h.alloc_many([8, 16])
        snap = state(h)
        with pytest.raises(ValueError, match="1-D"):
            h.alloc_many(values)
        with pytest.raises(ValueError, match="1-D"):
            h.free_many(values)
        assert state(h) == snap
        h.free_many(a)


def test_object_arrays_of_ints_are_taken(backing):
    with goalloc.Heap(backing=backing) as h:
        a = h.alloc_many(np.array([8, 16, 2**40 // 2**30], dtype=object),
                         noscan=False)
        assert h.stats().heap_objects == 3
        h.free_many(np.array(a.tolist(), dtype=object))
        assert h.stats().heap_objects == 0


# ---- free_many: the first refused address ------------------------------

def bad_batches(h):
    """(name, batch, index of the refused element) on a heap holding
    objects of every kind."""
    small = h.alloc_many([48] * 6, noscan=False)
    tiny = h.alloc_many([3, 5, 2], noscan=True)
    large = h.alloc_many([40_000, 100_000], noscan=False)
    s = [int(x) for x in small]
    t = [int(x) for x in tiny]
    g = [int(x) for x in large]
    foreign = 0x1234
    return [
        ("double small", [s[0], s[1], s[0], s[2]], 2),
        ("double tiny", [t[0], t[1], t[1], s[3]], 2),
        ("double large", [g[0], g[0], g[1]], 1),
        ("interior", [s[0], s[1] + 8, s[2]], 1),
        ("interior large", [g[1], g[0] + 8192], 1),
        ("foreign", [t[2], foreign, s[4]], 1),
        ("negative", [s[0], s[1], -1, s[2]], 2),
        ("negative first", [-(1 << 40)], 0),
        ("beyond 2**64", [s[5], 1 << 64, s[4]], 1),
        ("uint64 max", [s[5], (1 << 64) - 1], 1),
        ("zerobase then double", [h.info().zerobase, s[3], s[3]], 2),
    ]


@pytest.mark.parametrize("case", range(11))
@pytest.mark.parametrize("as_array", [False, True])
def test_free_many_stops_where_free_would(backing, case, as_array):
    make = twins(backing)
    with make() as h:
        name, batch, index = bad_batches(h)[case]
        batch_in = as_numpy(batch) if as_array else batch
        with pytest.raises(goalloc.InvalidFreeError) as e:
            h.free_many(batch_in)
        h.verify()
        got = state(h)
        assert e.value.index == index, name
    with make() as h:
        _, batch2, _ = bad_batches(h)[case]
        assert batch2 == batch
        i, want = per_call_frees(h, batch)
        assert i == index
        assert state(h) == got, name      # the refusal changed nothing
    assert type(e.value) is type(want), name
    msg = str(e.value)
    assert msg.startswith(str(want)), (msg, str(want))
    assert f"addrs[{index}]" in msg
    bad = batch[index]
    if 0 <= bad < 1 << 64:
        assert f"{bad:#x}" in msg
    else:
        assert str(bad) in msg


def test_double_free_inside_one_batch_of_every_kind(backing):
    with goalloc.Heap(backing=backing) as h:
        for size, noscan in [(5, True), (48, False), (100_000, False)]:
            a = int(h.alloc_many([size], noscan=noscan)[0])
            keep = h.alloc(size, noscan=noscan)
            with pytest.raises(goalloc.DoubleFreeError) as e:
                h.free_many([a, a, keep])
            assert e.value.index == 1
            assert f"{a:#x}" in str(e.value)
            snap_free = state(h)
            with pytest.raises(goalloc.DoubleFreeError):
                h.free(a)
            assert state(h) == snap_free
            h.free(keep)                           # never tried: still live


@SETTINGS
@given(sizes=st.lists(SIZES, min_size=1, max_size=60),
       picks=st.lists(st.tuples(st.integers(0, 4), st.integers(0, 10**6)),
                      max_size=80))
@pytest.mark.parametrize("backing", ["virtual", "os"])
def test_free_many_of_any_addresses_equals_free_calls(backing, sizes, picks):
    """Batches of live, freed, repeated, interior, foreign and zero
    addresses: the same refusal at the same index, the same heap."""
    make = twins(backing)

    def batch_for(h):
        live = per_call_allocs(h, sizes, True, 0)
        h.free(live[0])
        out = []
        for kind, r in picks:
            a = live[r % len(live)]
            out.append([a, a, a + 8 * (1 + r % 3), 0x10000 + r,
                        h.info().zerobase][kind])
        return out

    with make() as h:
        batch = batch_for(h)
        try:
            h.free_many(batch)
            got_exc = None
        except goalloc.GoallocError as e:
            got_exc = e
        got = state(h)
    with make() as h:
        assert batch_for(h) == batch
        i, want = per_call_frees(h, batch)
        assert state(h) == got
    if want is None:
        assert got_exc is None
    else:
        assert type(got_exc) is type(want)
        assert got_exc.index == i
        assert str(got_exc).startswith(str(want))


# ---- out of memory part way -----------------------------------------------

@pytest.mark.parametrize("sys_limit", [None, 256 << 20])
def test_out_of_memory_in_alloc_many_keeps_the_rest(sys_limit):
    make = twins("virtual", sys_limit=sys_limit)
    sizes = [1 << 20, 16, 5, 1 << 20, 1 << 30, 16, 8]
    with make() as h:
        if sys_limit is None:
            h.alloc_many([1 << 20])
            h.fail_reserves(1000)       # the next arena growth fails
            sizes = [1 << 20] * 80      # 80 MiB: more than one arena
        with pytest.raises(goalloc.OutOfMemoryError) as e:
            h.alloc_many(sizes, noscan=True)
        k = e.value.index
        done = e.value.addresses
        assert isinstance(done, np.ndarray) and done.dtype == np.uint64
        assert len(done) == k and k > 0
        assert f"sizes[{k}]" in str(e.value)
        assert str(sizes[k]) in str(e.value)
        h.verify()
        got = state(h)
        h.free_many(done)              # they stay allocated until then
        h.verify()
    with make() as h:
        if sys_limit is None:
            h.alloc_many([1 << 20])
            h.fail_reserves(1000)
        want = per_call_allocs(h, sizes[:k], True, 0)
        with pytest.raises(goalloc.OutOfMemoryError):
            h.alloc(sizes[k], noscan=True)
        assert state(h) == got
    assert done.tolist() == want


# ---- closed, poisoned, busy ----------------------------------------------

def test_closed_heap(backing):
    h = goalloc.Heap(backing=backing)
    a = h.alloc_many([8, 16])
    h.close()
    for call in (lambda: h.alloc_many([8]), lambda: h.free_many(a),
                 lambda: h.alloc_many([]), lambda: h.free_many([])):
        with pytest.raises(goalloc.HeapClosedError):
            call()


def test_poisoned_heap(backing):
    with goalloc.Heap(backing=backing) as h:
        a = h.alloc_many([8, 16])
        with pytest.raises(goalloc.HeapCorruptionError):
            h._throw("test: boom")
        assert heap_is_poisoned(h)
        for call in (lambda: h.alloc_many([8]), lambda: h.free_many(a)):
            with pytest.raises(goalloc.HeapCorruptionError, match="boom"):
                call()


@pytest.mark.parametrize("which", ["alloc_many", "free_many"])
def test_other_threads_get_heap_busy_during_a_bulk_call(which):
    """The bulk call runs in a thread; this thread, started right before
    it, calls into the heap until the call is over and must meet
    HeapBusyError at least once (the loop runs for tens of milliseconds,
    and the GIL is handed over every few; a retry doubles the batch)."""
    n = 2_000_000
    for _attempt in range(4):
        with goalloc.Heap(backing="virtual") as h:
            sizes = np.full(n, 16, dtype=np.uint64)
            addrs = h.alloc_many(sizes) if which == "free_many" else None
            started = threading.Event()
            result: dict = {}

            # (this round's objects, bound now: the thread is joined
            # before the loop goes on, but say so)
            def run(h=h, sizes=sizes, addrs=addrs, started=started,
                    result=result):
                started.set()
                try:
                    if which == "alloc_many":
                        result["out"] = h.alloc_many(sizes)
                    else:
                        h.free_many(addrs)
                except BaseException as e:  # pragma: no cover
                    result["error"] = e

            th = threading.Thread(target=run)
            th.start()
            assert started.wait(60)
            busy = 0
            messages = set()
            allocated = 0       # objects this thread's calls made
            closed = False
            while th.is_alive() and not closed:
                # bulk calls only once the worker's is running: they
                # would make it meet HeapBusyError otherwise
                calls = [(h.stats, 0), (h.digest, 0), (h.verify, 0),
                         (lambda: h.alloc(8), 1)]
                if busy:
                    calls += [(lambda: h.alloc_many([8, 8], noscan=False), 2),
                              (lambda: h.free_many([]), 0)]
                for call, objects in calls:
                    try:
                        call()
                        allocated += objects
                    except goalloc.HeapBusyError as e:
                        messages.add(str(e))
                        busy += 1
                if busy and not any(m.startswith("cannot close")
                                    for m in messages):
                    try:
                        h.close()
                        closed = True  # the call was over: try again
                    except goalloc.HeapBusyError as e:
                        messages.add(str(e))
            th.join()
            assert "error" not in result
            if closed:
                continue
            h.verify()
            st = h.stats()
            if which == "alloc_many":
                assert len(result["out"]) == n
                assert st.heap_objects == n + allocated
            else:
                assert st.heap_objects == allocated
            if busy and len(messages) == 2:
                break
            n *= 2
    assert busy > 0, "no call ever overlapped the bulk call"
    assert f"the heap is running {which} in another thread" in messages
    assert (f"cannot close: the heap is running {which} in another thread"
            in messages)


def test_no_python_object_per_element(backing):
    """The loop makes no Python object per element: the interpreter's
    block count moves by a constant, not by the batch size."""
    import sys
    with goalloc.Heap(backing=backing) as h:
        sizes = np.full(200_000, 24, dtype=np.int64)
        h.free_many(h.alloc_many(sizes))   # warm up: imports, caches
        before = sys.getallocatedblocks()
        a = h.alloc_many(sizes)
        h.free_many(a)
        del a
        assert abs(sys.getallocatedblocks() - before) < 100


# ---- bad input (docs/misuse.md) --------------------------------------------


def test_row_bulk_not_integers(world):
    """Bulk input that is not integers: TypeError before anything changes."""
    h = world.h
    for bad in (np.array([8.0, 16.0]), np.array([True, False]),
                ["8", "16"], [8, None], 8, [1, [2]], [[8], [16, 24]],
                [8, 16.5], (8, [16, 24])):
        rejected(h, TypeError, h.alloc_many, bad)
        rejected(h, TypeError, h.free_many, bad)
    still_works(h, world.live())


def test_row_bulk_2d(world):
    """2-D input: ValueError before anything changes."""
    h = world.h
    for bad in (np.ones((2, 3), dtype=np.int64), [[8, 16], [24, 32]]):
        rejected(h, ValueError, h.alloc_many, bad)
        rejected(h, ValueError, h.free_many, bad)
    still_works(h, world.live())


def test_row_bulk_bad_size(world):
    """A negative size, one beyond 2**64 or beyond maxAlloc inside
    alloc_many: ValueError with .index (the first), nothing allocated."""
    h = world.h
    for sizes, index in (([8, -1, 16, -2], 1), ([8, 16, 2**64], 2),
                         ([2**48 + 1, 8], 0)):
        e = rejected(h, ValueError, h.alloc_many, sizes)
        assert e.index == index, (sizes, e.index)
    still_works(h, world.live())


def test_row_bulk_p_and_keywords(world):
    """alloc_many's p and keywords are checked as alloc's."""
    h = world.h
    for kw, exc in (({"p": PROCS}, ValueError), ({"p": -1}, ValueError),
                    ({"p": "0"}, TypeError), ({"bogus": 1}, TypeError)):
        a = rejected(h, exc, h.alloc, 8, **kw)
        b = rejected(h, exc, h.alloc_many, [8], **kw)
        assert str(b).replace("alloc_many", "alloc") == str(a) or \
            type(a) is type(b)
    still_works(h, world.live())


def test_row_bulk_out_of_memory(backing):
    """Out of memory part way through alloc_many: OutOfMemoryError with
    .index and .addresses, which stay allocated (free_many gives them
    back)."""
    w = World(backing, sys_limit=64 * MiB)
    try:
        h = w.h
        sizes = [1 * MiB] * 200            # more than the one arena holds
        with pytest.raises(OutOfMemoryError) as ei:
            h.alloc_many(sizes)
        e = ei.value
        assert isinstance(e, MemoryError) and isinstance(e, GoallocError)
        assert 0 < e.index < len(sizes) and len(e.addresses) == e.index
        for a in e.addresses:
            assert h.span_of(int(a)).state == "inuse"
        d = h.digest()
        h.free_many(e.addresses)
        assert h.digest() != d
        still_works(h, w.live())
    finally:
        w.close()


def test_row_bulk_bad_address(world):
    """A bad address inside free_many: what free() would raise, with
    .index; the frees before it stay done, the rest is not tried."""
    h = world.h
    a = [int(x) for x in h.alloc_many([48, 48, 48])]
    with pytest.raises(DoubleFreeError) as ei:
        h.free_many([a[0], a[1], a[0], a[2]])
    assert ei.value.index == 2 and hex(a[0])[2:] in str(ei.value).lower()
    before = state(h)
    h.free(a[2])                           # not tried by the batch
    assert state(h) != before
    for bad, exc in ((a[1] + 8, InvalidFreeError), (8, InvalidFreeError),
                     (-1, InvalidFreeError)):
        e = rejected(h, exc, h.free_many, [bad])
        assert e.index == 0
    still_works(h, world.live())
