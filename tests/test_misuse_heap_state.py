"""Calls on a heap that cannot take them (docs/misuse.md): busy (another
thread replays a trace, or the call came from Python code a call on the
heap runs), closed, or poisoned by a broken invariant (Go's throw).
"""
from __future__ import annotations

import gc
import re
import sys
import threading
import time

import pytest

import goalloc
from goalloc import (
    GoallocError,
    HeapBusyError,
    HeapClosedError,
    HeapCorruptionError,
    Trace,
    workloads,
)
from helpers import (
    ARENA,
    GO_HEAP_START,
    MiB,
    state,
)
from misuse import PROCS, World, assert_exc, still_works

# ---- busy ------------------------------------------------------------------


def busy_calls(w: World):
    """Every kind of call on a heap, with valid arguments."""
    h = w.h
    cached_base = h.span_of(w.cached[0]).base
    calls = [
        ("alloc small", lambda: h.alloc(48, p=1)),
        ("alloc tiny", lambda: h.alloc(3, noscan=True)),
        ("alloc large", lambda: h.alloc(100_000, p=2)),
        ("alloc 0", lambda: h.alloc(0)),
        ("free", lambda: h.free(w.cached[0])),
        ("free large", lambda: h.free(w.large)),
        ("free zerobase", lambda: h.free(w.zero)),
        ("scavenge", lambda: h.scavenge()),
        ("flush", h.flush),
        ("verify", h.verify),
        ("digest", h.digest),
        ("stats", h.stats),
        ("hints", h.hints),
        ("arenas", h.arenas),
        ("spans", h.spans),
        ("span_of", lambda: h.span_of(w.large)),
        ("centrals", h.centrals),
        ("caches", h.caches),
        ("span_objects", lambda: h.span_objects(cached_base)),
        ("info", h.info),
        ("fragmentation", h.fragmentation),
        ("object_array", h.object_array),
        ("page_array", h.page_array),
        ("block_range", lambda: h.block_range(GO_HEAP_START + 999 * ARENA,
                                              4096)),
        ("replay", lambda: h.replay(Trace.from_ops([("alloc", 0, 8)]))),
        ("close", h.close),
    ]
    if w.backing == "os":
        calls.append(("view", lambda: h.view(w.large)))
    else:
        calls.append(("fail_reserves", lambda: h.fail_reserves(0)))
    return calls


def calls_during_replay(w: World, trace: Trace, chunk: int, calls=None):
    """Replay trace on w's heap in another thread; meanwhile, once a
    read-only probe (digest) sees the heap busy, make every call of
    calls (busy_calls(w) by default).  Returns (errors or None if no probe
    ever saw the heap busy, result of the replay thread).

    Deterministic once the probe hit: with a huge switch interval this
    thread keeps the GIL until it blocks, and nothing below blocks, so
    the replaying thread cannot leave its C chunk (and clear busy) until
    every call was made.  Mutating calls are made only then."""
    h = w.h
    if calls is None:
        calls = busy_calls(w)
    go = threading.Event()
    result: dict = {}

    def run() -> None:
        try:
            result["tl"] = h.replay(trace, chunk=chunk,
                                    progress=lambda d, n: go.set())
        except BaseException as e:  # pragma: no cover
            result["error"] = e

    errors = None
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1000.0)
    try:
        th = threading.Thread(target=run)
        th.start()
        go.wait()                                 # the first chunk ran
        while th.is_alive():
            try:
                h.digest()
            except HeapBusyError:
                errors = {}
                for name, call in calls:
                    try:
                        call()
                    except BaseException as e:
                        errors[name] = e
                    else:
                        errors[name] = None
                break
            time.sleep(0.0002)                    # let the replay go on
    finally:
        sys.setswitchinterval(interval)
    th.join()
    return errors, result


def test_row_heap_busy(backing):
    """Any call while another thread replays a trace on the heap
    (`free`, `alloc`, `close`, introspection): HeapBusyError (a
    RuntimeError); the replay itself runs on."""
    # chunks of a few milliseconds: long enough for this thread to wake
    # up inside one even on a loaded machine (it retries otherwise)
    trace = workloads.go_mix(60_000, live=2000, seed=11, procs=PROCS)
    chunk = 10_000
    # what the replay does undisturbed
    ref = World(backing)
    try:
        ref.h.replay(trace, chunk=chunk)
        expected = state(ref.h)
    finally:
        ref.close()
    for _attempt in range(10):
        w = World(backing)
        try:
            errors, result = calls_during_replay(w, trace, chunk)
            assert "error" not in result, result
            assert result["tl"].nops == len(trace)
            assert not w.h.closed
            # the replay ran on: exactly what it does undisturbed
            assert state(w.h) == expected
            if errors is None:
                continue              # the probe never overlapped a chunk
            assert len(errors) == len(busy_calls(w))
            for name, e in errors.items():
                assert e is not None, f"{name} ran during the replay"
                assert_exc(e, HeapBusyError, RuntimeError, GoallocError,
                           match="replaying a trace")
                assert not isinstance(e, HeapClosedError), name
            assert "cannot close" in str(errors["close"])
            still_works(w.h, w.live())
            break
        finally:
            w.close()
    else:
        pytest.fail("no call ever overlapped the replay")


def test_row_reentrant_call(world):
    """A call from a replay's progress callback: HeapBusyError saying
    where it came from; the replay finishes on a live heap."""
    h = world.h
    errors = []

    def progress(done, n):
        with pytest.raises(HeapBusyError) as ei:
            h.alloc(16)
        errors.append(ei.value)

    trace = goalloc.Trace.from_ops([("alloc", i, 24) for i in range(40)])
    h.replay(trace, chunk=10, progress=progress)
    assert len(errors) == 4
    for e in errors:
        assert_exc(e, HeapBusyError, RuntimeError, GoallocError,
                   match="came from Python code that call ran")
    still_works(h)


@pytest.mark.parametrize("case", ["poisoned", "busy"])
def test_enter_is_checked_like_every_call(case):
    """"every later call raises it" (a broken invariant) and "any call
    while another thread replays a trace" (HeapBusyError) include
    `with heap:`."""
    w = World("virtual")
    h = w.h
    try:
        if case == "poisoned":
            with pytest.raises(HeapCorruptionError):
                h._throw("boom")
            with pytest.raises(HeapCorruptionError, match="^boom$"):
                h.__enter__()
            return
        trace = workloads.go_mix(60_000, live=2000, seed=11, procs=PROCS)
        for _attempt in range(10):
            errors, _ = calls_during_replay(
                w, trace, 10_000, calls=[("__enter__", h.__enter__)])
            if errors is not None:
                break
        else:
            pytest.skip("no call overlapped the replay")
        assert isinstance(errors["__enter__"], HeapBusyError), errors
    finally:
        h.close()


# ---- closed ----------------------------------------------------------------


def test_row_heap_closed(backing):
    """Any call after `close()` (`close()` itself may be repeated):
    HeapClosedError (a RuntimeError)."""
    w = World(backing)
    h = w.h
    arenas = h.arenas()
    views = [h.view(w.large)] if backing == "os" else []
    calls = busy_calls(w)
    h.close()
    assert h.closed
    for name, call in calls:
        if name == "close":
            continue
        with pytest.raises(HeapClosedError) as ei:
            call()
        assert_exc(ei.value, HeapClosedError, RuntimeError, GoallocError,
                   match="^the heap is closed$")
    # and the calls busy_calls leaves out on this backing
    for call in (lambda: h.view(w.large), lambda: h.fail_reserves(0),
                 lambda: h._throw("again"), lambda: h.scavenge(4096)):
        with pytest.raises(HeapClosedError) as ei:
            call()
        assert type(ei.value) is HeapClosedError
    with pytest.raises(HeapClosedError):
        with h:
            pass
    for _ in range(3):
        assert h.close() is None
    assert h.closed and repr(h) == "<goalloc.Heap closed>"
    del views
    gc.collect()
    # the address space was given back: a new World gets the same arenas
    w2 = World(backing)
    try:
        assert w2.h.arenas() == arenas
        still_works(w2.h, w2.live())
    finally:
        w2.close()


def test_row_conversion_closes_the_heap(backing):
    """`alloc(size)` whose size's __index__ closes the heap:
    HeapClosedError, no use of the freed heap."""
    h = goalloc.Heap(backing=backing)

    class Closing:
        def __index__(self):
            h.close()
            return 64

    with pytest.raises(HeapClosedError) as ei:
        h.alloc(Closing())
    assert_exc(ei.value, HeapClosedError, RuntimeError, GoallocError)
    assert h.closed


def test_with_closes(backing):
    with goalloc.Heap(backing=backing) as h:
        assert isinstance(h, goalloc.Heap)
        h.alloc(100_000)
        assert not h.closed
    assert h.closed
    with pytest.raises(goalloc.HeapClosedError):
        h.stats()


def test_with_closes_on_exception():
    with pytest.raises(KeyError):
        with goalloc.Heap(backing="virtual") as h:
            raise KeyError("x")
    assert h.closed


# ---- poisoned --------------------------------------------------------------


def real_throw() -> None:
    """The same row through a throw of the allocator itself (sysAlloc in
    race mode when every hint collides)."""
    msg = "too many address space collisions for -race mode"
    with goalloc.Heap(backing="virtual", race=True, procs=2) as h:
        live = [h.alloc(48, p=1), h.alloc(3, noscan=True)]
        for a in sorted({x.addr for x in h.hints()}):
            if h.span_of(a) is None:          # not inside the arena
                h.block_range(a, 4096)
        with pytest.raises(HeapCorruptionError) as ei:
            h.alloc(64 * MiB, p=1)
        assert_exc(ei.value, HeapCorruptionError, RuntimeError,
                   match=f"^{msg}$")
        for call in (h.digest, h.stats, h.spans, h.verify, h.flush,
                     lambda: h.alloc(8), lambda: h.free(live[0])):
            with pytest.raises(HeapCorruptionError, match=f"^{msg}$"):
                call()


def test_row_broken_invariant(backing):
    """A broken internal invariant (Go's throw): HeapCorruptionError with
    Go's throw text; the heap is poisoned: every later call raises it;
    the interpreter never aborts."""
    msg = "mheap.freeSpanLocked - invalid free"
    w = World(backing)
    h = w.h
    calls = [c for c in busy_calls(w) if c[0] != "close"]
    try:
        with pytest.raises(HeapCorruptionError) as ei:
            h._throw(msg)
        assert_exc(ei.value, HeapCorruptionError, RuntimeError, GoallocError,
                   match=f"^{re.escape(msg)}$")
        assert not isinstance(ei.value, HeapClosedError)
        for _ in range(2):
            for name, call in calls:
                with pytest.raises(HeapCorruptionError) as ei:
                    call()
                assert str(ei.value) == msg, name
                assert type(ei.value) is HeapCorruptionError, name
        # the throw hook itself, and bad arguments on a poisoned heap:
        # still the poison first
        for call in (lambda: h._throw("again"), lambda: h.alloc(-1),
                     lambda: h.free(w.large + 8), lambda: h.alloc(48, p=99)):
            with pytest.raises(HeapCorruptionError, match=re.escape(msg)):
                call()
        assert not h.closed
    finally:
        h.close()
    assert h.closed
    with pytest.raises(HeapClosedError):
        h.digest()
    if backing == "virtual":
        real_throw()


def test_throw_message_is_copied():
    h = goalloc.Heap(backing="virtual")
    msg = "".join(["span has no ", "free objects"])
    with pytest.raises(goalloc.HeapCorruptionError):
        h._throw(msg)
    del msg
    with pytest.raises(goalloc.HeapCorruptionError,
                       match="^span has no free objects$"):
        h.spans()
    h.close()
