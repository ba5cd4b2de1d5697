"""Python code that runs inside a call cannot pull the heap from under it.

Converting an argument can run Python code (``__index__``, ``__bool__``,
``__len__``), and so can building a result (a finalizer run by the cyclic
GC) or a replay's progress callback.  That code may close the heap, call
it again, or let another thread in.  The binding's call protocol
(csrc/python/heap.c: convert every argument, then acquire_heap) must turn
each of these into an ordinary outcome: the call works on the heap as it
finds it after the conversion, or raises goalloc's exception, and the
heap stays consistent.  Before the protocol, every row here crashed the
interpreter or corrupted the heap (issue 11, items 2 and 3).

The walk covers every public method of Heap (and the C methods behind
them): a new method fails test_every_method_is_walked until it has a row.
"""
from __future__ import annotations

import gc
import sys
import threading

import numpy as np
import pytest

import goalloc
from goalloc import (
    GoallocError,
    HeapBusyError,
    HeapClosedError,
    OutOfMemoryError,
)
from goalloc.trace import COUNTER_FIELDS


class Hook:
    """An argument whose conversion runs action(): as an int (value) via
    __index__, as a truth value via __bool__, as a column via __len__."""

    def __init__(self, value, action):
        self.value = value
        self.action = action
        self.ran = 0

    def __index__(self):
        self.ran += 1
        self.action()
        return self.value

    def __bool__(self):
        self.ran += 1
        self.action()
        return bool(self.value)


class HookColumn(np.ndarray):
    """A NumPy column whose len() runs an action first (a trace column)."""

    action = staticmethod(lambda: None)

    def __len__(self):
        type(self).action()
        return super().__len__()


def small_trace(n=64):
    ops = [("alloc", i, 16 + 8 * (i % 7)) for i in range(n)]
    ops += [("free", i) for i in range(0, n, 2)]
    return goalloc.Trace.from_ops(ops)


# Each row: method name -> function(h, hook) calling it once with the hook
# in one argument position.  hook(v) makes a Hook of value v.
def _replay_with_column(h, hook):
    t = small_trace()
    col = t.kind.view(HookColumn)
    HookColumn.action = staticmethod(hook(0).__index__)
    try:
        addr_of = np.zeros(t.nids, np.uint64)
        live = np.zeros(t.nids, np.uint8)
        samples = np.zeros((2, len(COUNTER_FIELDS)), np.uint64)
        ops = np.zeros(2, np.uint64)
        return h._replay((col, t.id, t.size, t.noscan, t.p), addr_of, live,
                         samples, ops, 0, 0, None)
    finally:
        HookColumn.action = staticmethod(lambda: None)


def _live_object(h):
    return h.alloc(48)


ROWS = {
    "alloc": [lambda h, k: h.alloc(k(64)),
              lambda h, k: h.alloc(64, noscan=k(True)),
              lambda h, k: h.alloc(8, noscan=k(True))],
    "free": [lambda h, k: h.free(k(_live_object(h)))],
    "drop": [lambda h, k: h.drop(k(_live_object(h)))],
    "set_gc_percent": [lambda h, k: h.set_gc_percent(k(50))],
    "scavenge": [lambda h, k: h.scavenge(k(1 << 20))],
    "span_of": [lambda h, k: h.span_of(k(_live_object(h)))],
    "span_objects": [lambda h, k: h.span_objects(
        k(h.span_of(_live_object(h)).base))],
    "view": [lambda h, k: h.view(k(_live_object(h))),
             lambda h, k: h.view(_live_object(h), k(8))],
    "block_range": [lambda h, k: h.block_range(k(0x7F0000000000), 1 << 26),
                    lambda h, k: h.block_range(0x7F0000000000, k(1 << 26))],
    "fail_reserves": [lambda h, k: h.fail_reserves(k(0))],
    "fail_metadata": [lambda h, k: h.fail_metadata(k(0))],
    "alloc_many": [lambda h, k: h.alloc_many([16, k(32), 48]),
                   lambda h, k: h.alloc_many([16, 32], noscan=k(True))],
    "free_many": [lambda h, k: h.free_many([k(_live_object(h))])],
    "replay": [lambda h, k: h.replay(small_trace(), sample_every=k(4)),
               lambda h, k: h.replay(small_trace(), chunk=k(8)),
               lambda h, k: h.replay(small_trace(), chunk=8,
                                     progress=lambda d, n: k(0).__index__()),
               _replay_with_column],
}

# Methods without arguments: Python code can still run inside them, from
# a finalizer the cyclic GC runs while the result is built.
NOARG = ["hints", "arenas", "spans", "stats", "info", "verify", "flush",
         "centrals", "caches", "digest", "fragmentation", "span_array",
         "object_array", "page_array", "gc", "free_os_memory", "gc_state",
         "gc_cycles"]

# Methods that need a heap with collector="gc" (they raise
# WrongCollectorError on an explicit-free one).
GC_ONLY = {"drop", "gc", "free_os_memory"}

# Not walked, and why.
EXEMPT = {
    "close": "ends the heap itself; tested below against a busy heap",
}


def public_methods():
    return sorted(n for n in dir(goalloc.Heap)
                  if not n.startswith("_")
                  and callable(getattr(goalloc.Heap, n)))


def test_every_method_is_walked():
    """Every public method has a row (so a new one must get one), and so
    has every C method without arguments."""
    walked = set(ROWS) | set(NOARG) | set(EXEMPT)
    assert set(public_methods()) == walked
    core = {n for n in dir(goalloc._core.Heap)
            if callable(getattr(goalloc._core.Heap, n))
            and not n.startswith("__")}
    with_args = {"alloc", "free", "scavenge", "_span_of", "_span_objects",
                 "view", "block_range", "fail_reserves", "fail_metadata",
                 "_throw", "_replay",
                 "_alloc_many", "_free_many", "close", "drop",
                 "set_gc_percent"}
    assert core == set(CORE_NOARG) | with_args


def needs_os(name):
    return name == "view"


def needs_virtual(name):
    return name in ("fail_reserves", "block_range")


def heap_for(name, backing):
    if needs_os(name):
        backing = "os"
    if needs_virtual(name):
        backing = "virtual"
    return goalloc.Heap(backing=backing,
                        collector="gc" if name in GC_ONLY else "free")


def row_params():
    return [pytest.param(name, i, id=f"{name}-{i}")
            for name, rows in ROWS.items() for i in range(len(rows))]


@pytest.mark.parametrize("name,i", row_params())
def test_argument_that_closes_the_heap(name, i, backing):
    """The conversion closes the heap: the call raises HeapClosedError
    (or, from a progress callback, HeapBusyError: the heap is busy for
    the whole replay and close() is refused), never touches freed
    memory."""
    h = heap_for(name, backing)
    hooks = []

    def hook(v):
        k = Hook(v, h.close)
        hooks.append(k)
        return k

    try:
        with pytest.raises((HeapClosedError, HeapBusyError)) as ei:
            ROWS[name][i](h, hook)
        assert any(k.ran for k in hooks), "the hook never ran"
        if isinstance(ei.value, HeapBusyError):
            assert not h.closed
            h.verify()
            assert "this call came from Python code" in str(ei.value)
            assert str(ei.value).startswith("cannot close: the heap is")
        else:
            assert h.closed
    finally:
        h.close()


@pytest.mark.parametrize("name,i", row_params())
def test_argument_that_uses_the_heap(name, i, backing):
    """The conversion allocates and frees on the same heap: the call
    still works (on the heap as the conversion left it), or raises
    HeapBusyError when the code ran while the heap was busy (a progress
    callback); the heap verifies either way."""
    h = heap_for(name, backing)
    hooks = []

    def churn():
        release = h.drop if name in GC_ONLY else h.free
        for _ in range(3):
            release(h.alloc(24))
        h.alloc(8, noscan=True)

    def hook(v):
        k = Hook(v, churn)
        hooks.append(k)
        return k

    try:
        try:
            ROWS[name][i](h, hook)
        except HeapBusyError as e:
            assert name == "replay", e   # only progress runs while busy
        except (ValueError, OutOfMemoryError) as e:
            # block_range on an occupied range and the like: the method's
            # own refusal, not the protocol's
            assert name in ("block_range",), e
        assert any(k.ran for k in hooks), "the hook never ran"
        h.verify()
    finally:
        h.close()


class Closer:
    """A cycle whose finalizer closes (or uses) the heap: collected by the
    cyclic GC at whatever allocation triggers it."""

    def __init__(self, action):
        self.me = self
        self.action = action

    def __del__(self):
        self.action()


# The C methods behind NOARG, called bound and directly, so that the first
# object the cyclic GC tracks is allocated inside the call.
CORE_NOARG = ["_hints", "_arenas", "_spans", "_stats", "_info", "verify",
              "flush", "_centrals", "_caches", "digest", "_counters",
              "_span_table", "_object_table", "_page_table", "gc",
              "free_os_memory", "_gc_state", "_gc_cycles"]


@pytest.mark.parametrize("name", CORE_NOARG)
def test_finalizer_that_closes_the_heap(name, backing):
    """A GC finalizer that closes the heap runs while a method builds its
    result: close() raises HeapBusyError inside the finalizer (reported
    as unraisable), and the method finishes on a live heap.  Methods that
    build lists of tuples (spans, centrals, ...) are sure to meet the
    collection inside; the others may meet it after they return, and then
    the heap closes cleanly."""
    h = goalloc.Heap(backing=backing,
                     collector="gc" if name in GC_ONLY else "free")
    for s in (16, 48, 100_000):
        h.alloc(s)
    method = getattr(h, name)
    seen = []
    old_hook = sys.unraisablehook
    sys.unraisablehook = lambda u: seen.append(u.exc_value)
    old = gc.get_threshold()
    gc.collect()
    gc.disable()
    try:
        for _ in range(20):
            Closer(h.close)
        gc.set_threshold(1, 1, 1)
        gc.enable()
        method()       # the first tracked allocation collects the Closers
    finally:
        gc.enable()
        gc.set_threshold(*old)
        gc.collect()
        sys.unraisablehook = old_hook
    for e in seen:
        assert isinstance(e, HeapBusyError), repr(e)
    if name in ("_hints", "_arenas", "_spans", "_centrals", "_caches",
                "_stats"):     # they make tuples, which the GC tracks
        assert len(seen) == 20 and not h.closed   # collected inside
    if not h.closed:
        h.verify()
    h.close()


def test_busy_message_names_the_call():
    """A call from code run by the heap's own call says so; a call from
    another thread says that."""
    h = goalloc.Heap(backing="virtual")
    errors = []

    def progress(done, n):
        try:
            h.stats()
        except HeapBusyError as e:
            errors.append(str(e))

    h.replay(small_trace(), chunk=16, progress=progress)
    assert errors and all(
        e.startswith("the heap is replaying a trace: this call came from "
                     "Python code that call ran") for e in errors)
    h.verify()
    h.close()


# ---- threads ---------------------------------------------------------------


def test_slow_conversion_does_not_let_two_loops_run():
    """Issue 11 item 3: thread A's alloc converts a slow __index__ (pure
    Python, so the GIL switches to B) while thread B runs alloc_many on
    the same P.  Without the protocol both allocated on P 0 at once: the
    same address went to two owners in most rounds.  Now A either runs
    before or after B's loop, or gets HeapBusyError; every address has
    one owner and the heap verifies."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    sizes = np.full(20_000, 16, np.uint64)   # a loop of about a millisecond
    try:
        for _ in range(20):
            h = goalloc.Heap(backing="virtual")
            got_a, got_b, busy = [], [], []
            go = threading.Event()

            # (this round's objects bound as defaults: the threads are
            # joined before the loop goes on, but say so)
            def slow(go=go):
                go.set()
                x = 0
                for i in range(3000):   # ~100 us of bytecode
                    x += i

            def a(h=h, go=go, got_a=got_a, busy=busy, slow=slow):
                go.wait()
                for _ in range(50):
                    try:
                        got_a.append(h.alloc(Hook(16, slow)))
                    except HeapBusyError:
                        busy.append(1)

            def b(h=h, go=go, got_b=got_b, busy=busy):
                go.wait()
                for _ in range(5):
                    try:
                        got_b.extend(h.alloc_many(sizes).tolist())
                    except HeapBusyError:
                        busy.append(1)

            ta, tb = threading.Thread(target=a), threading.Thread(target=b)
            ta.start()
            tb.start()
            go.set()
            ta.join()
            tb.join()
            addrs = got_a + got_b
            assert len(addrs) == len(set(addrs)), "an address has two owners"
            h.verify()
            st = h.stats()
            assert st.heap_objects == len(addrs)
            h.close()
    finally:
        sys.setswitchinterval(old)


def test_replay_progress_keeps_other_threads_out():
    """Between replay chunks, while progress runs, the heap stays busy:
    another thread's calls raise HeapBusyError (README: "other calls on
    the heap raise HeapBusyError while the replay runs")."""
    h = goalloc.Heap(backing="virtual")
    outcomes = []

    def other():
        for call in (lambda: h.alloc(16), h.stats, h.close):
            try:
                call()
                outcomes.append("ran")
            except HeapBusyError as e:
                outcomes.append(str(e))

    def progress(done, n):
        t = threading.Thread(target=other)
        t.start()
        t.join()

    tl = h.replay(small_trace(), chunk=10, progress=progress)
    assert len(outcomes) == 3 * 10, outcomes   # 96 ops: 10 progress calls
    assert all(o.removeprefix("cannot close: ") == "the heap is replaying a "
               "trace in another thread" for o in outcomes), outcomes
    assert len(tl.addresses) == 64
    assert not h.closed
    h.verify()
    h.close()


def test_progress_exception_stops_the_replay():
    """An exception from progress (Ctrl-C too) stops the replay where it
    is: the chunks before stay applied, the heap is consistent and free
    again."""
    t = small_trace()
    for exc in (RuntimeError("stop"), KeyboardInterrupt()):
        h = goalloc.Heap(backing="virtual")
        calls = []

        def progress(done, n, exc=exc, calls=calls):
            calls.append(done)
            raise exc

        with pytest.raises(type(exc)):
            h.replay(t, chunk=16, progress=progress)
        assert calls == [16]
        assert h.stats().heap_objects == 16   # ops 0..15: 16 allocs
        h.verify()
        h.alloc(16)      # the heap is idle again
        h.close()


# ---- replay arguments, checked before anything runs ------------------------


@pytest.mark.parametrize("kw,exc", [
    ({"sample_every": 2**64 + 1000}, ValueError),
    ({"sample_every": -1}, ValueError),
    ({"sample_every": 2.0}, TypeError),
    ({"chunk": 2**64}, ValueError),
    ({"chunk": -1}, ValueError),
    ({"chunk": "8"}, TypeError),
    ({"progress": 3}, TypeError),
    ({"progress": "bar"}, TypeError),
])
def test_replay_rejects_bad_options_untouched(kw, exc):
    """Out-of-range sample_every (it used to wrap modulo 2**64 in C) and a
    non-callable progress (it used to fail after the first chunk ran):
    refused before the first op, the heap unchanged."""
    h = goalloc.Heap(backing="virtual")
    before = h.digest()
    with pytest.raises(exc):
        h.replay(small_trace(), **kw)
    assert h.digest() == before
    assert h.stats().heap_objects == 0
    h.close()


def test_replay_large_sample_every_samples_once():
    """sample_every beyond the trace (but a uint64): only the last op is
    sampled, with the right counters."""
    h = goalloc.Heap(backing="virtual")
    t = small_trace()
    tl = h.replay(t, sample_every=2**64 - 1)
    assert tl.op.tolist() == [-1, 95]      # the initial state and the last op
    assert tl.live_objects[-1] == 32 == h.stats().heap_objects
    h.close()


def test_c_replay_refuses_short_sample_buffers():
    """_replay checks that every sample it may take fits."""
    h = goalloc.Heap(backing="virtual")
    t = small_trace()
    before = h.digest()
    with pytest.raises(ValueError, match="room for 1 samples"):
        h._replay((t.kind, t.id, t.size, t.noscan, t.p),
                  np.zeros(t.nids, np.uint64), np.zeros(t.nids, np.uint8),
                  np.zeros((1, len(COUNTER_FIELDS)), np.uint64),
                  np.zeros(1, np.uint64),
                  10, 0, None)
    assert h.digest() == before
    h.close()


# ---- strings with NUL ------------------------------------------------------


@pytest.mark.parametrize("kw", [{"goos": "linux\x00evil"},
                                {"goarch": "amd64\x00"},
                                {"backing": "virtual\x00x"}])
def test_strings_with_nul_are_refused(kw):
    """C reads strings up to the NUL: "linux\\x00evil" must not pass for
    linux."""
    with pytest.raises(ValueError, match="NUL"):
        goalloc.Heap(**kw)


def test_errors_stay_in_the_hierarchy():
    assert issubclass(HeapBusyError, GoallocError)
    assert issubclass(HeapClosedError, GoallocError)
