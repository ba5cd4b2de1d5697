"""Python threads sharing one Heap cannot corrupt it (issue 6, "Threads").

Eight threads hammer one heap at once: allocations of every kind on
every P, frees of their own objects and of objects other threads
allocated (handed over through queues), scavenges, flushes, statistics
and introspection, and now and then a short replay, during which the
other threads' calls must raise HeapBusyError.  The GIL is switched
every few microseconds so that the threads interleave finely.
Afterwards the heap verifies, its statistics add up, and a heap that
replays the same operations in one thread ends in the same live state.
"""
from __future__ import annotations

import queue
import random
import sys
import threading

import pytest

import goalloc
from goalloc import Trace

NTHREADS = 8


@pytest.fixture
def fine_switching():
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(old)


def _size(rng: random.Random) -> int:
    r = rng.random()
    if r < 0.3:
        return rng.randint(1, 15)
    if r < 0.85:
        return rng.randint(16, 1024)
    if r < 0.98:
        return rng.randint(1025, 32768)
    return rng.randint(32769, 300_000)


def _worker(h, k, inboxes, errors, counts, stop_after):
    rng = random.Random(1000 + k)
    mine: list[int] = []
    inbox, outbox = inboxes[k], inboxes[(k + 1) % NTHREADS]
    busy = 0
    try:
        for _ in range(stop_after):
            r = rng.random()
            try:
                if r < 0.5 or not mine:
                    mine.append(h.alloc(_size(rng), p=k % 4,
                                        noscan=rng.random() < 0.6))
                elif r < 0.7:
                    a = mine[rng.randrange(len(mine))]
                    h.free(a)          # busy: it stays in mine
                    mine.remove(a)
                elif r < 0.85:
                    outbox.put(mine.pop(rng.randrange(len(mine))))
                elif r < 0.9:
                    while True:
                        try:
                            a = inbox.get_nowait()
                        except queue.Empty:
                            break
                        mine.append(a)     # if busy, it is freed later
                        h.free(a)
                        mine.pop()
                        counts["cross"] += 1
                elif r < 0.93:
                    h.stats()
                    h.centrals()
                elif r < 0.95:
                    h.scavenge(1 << 20)
                elif r < 0.96:
                    h.flush()
                elif r < 0.97:
                    h.verify()
                elif r < 0.975:
                    # a short replay: the other threads see HeapBusyError
                    h.replay(Trace.from_ops(
                        [("alloc", i, 24) for i in range(200)]
                        + [("free", i) for i in range(200)]))
                else:
                    h.spans()
            except goalloc.HeapBusyError:
                busy += 1
    except BaseException as e:  # pragma: no cover - reported below
        errors.append((k, repr(e)))
    for a in mine:
        outbox.put(a)
    counts["busy"] += busy


def test_eight_python_threads_share_one_heap(fine_switching):
    with goalloc.Heap(backing="os", procs=4) as h:
        inboxes = [queue.Queue() for _ in range(NTHREADS)]
        errors: list = []
        counts = {"cross": 0, "busy": 0}
        threads = [threading.Thread(target=_worker,
                                    args=(h, k, inboxes, errors, counts, 3000))
                   for k in range(NTHREADS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert not any(t.is_alive() for t in threads)
        assert errors == []
        h.verify()
        st = h.stats()
        assert st.mallocs - st.frees == st.heap_objects
        # everything left is in the queues: free it, and the heap is empty
        left = 0
        for q in inboxes:
            while not q.empty():
                h.free(q.get())
                left += 1
        h.verify()
        h.flush()
        st = h.stats()
        assert st.heap_objects == 0 and st.heap_inuse == 0
        assert counts["cross"] > 100 and left > 0
