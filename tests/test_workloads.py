"""Seeded workload generators (goalloc.workloads).

Each generator returns a Trace of exactly n_ops ops, determined by its
arguments and seed; ids are dense from 0 in allocation order, never
re-used; every free is of a live object; the live set follows the
documented target; and the trace replays cleanly.  Validity is checked
twice: by workloads.validate and by a plain Python walk written here.
"""
from __future__ import annotations

import numpy as np
import pytest

import goalloc
from goalloc import Trace, TraceError, workloads
from goalloc.trace import ALLOC, FREE

GENS = {
    "uniform": lambda n, **kw: workloads.uniform(n, 8, 512, **kw),
    "log_uniform": lambda n, **kw: workloads.log_uniform(n, 1, 40_000, **kw),
    "go_mix": lambda n, **kw: workloads.go_mix(n, **kw),
    "producer_consumer": lambda n, **kw: workloads.producer_consumer(
        n, **{"procs": 2, **kw}),
    "phases": lambda n, **kw: workloads.phases(n, **kw),
    "long_short": lambda n, **kw: workloads.long_short(n, **kw),
}
NAMES = sorted(GENS)


def walk(trace: Trace) -> list[int]:
    """Independent validity check, one op at a time; returns the live
    count after each op."""
    live: set[int] = set()
    seen: set[int] = set()
    counts = []
    for i, op in enumerate(trace):
        if op.kind == ALLOC:
            assert op.id not in seen, f"op {i}: id {op.id} re-used"
            seen.add(op.id)
            live.add(op.id)
        else:
            assert op.id in live, f"op {i}: free of {op.id}, not live"
            live.remove(op.id)
        counts.append(len(live))
    return counts


@pytest.mark.parametrize("name", NAMES)
def test_seeded_and_deterministic(name):
    gen = GENS[name]
    a = gen(5001, live=300, seed=11, procs=3)
    b = gen(5001, live=300, seed=11, procs=3)
    c = gen(5001, live=300, seed=12, procs=3)
    assert a == b
    assert a != c
    assert workloads.GENERATORS[name] is getattr(workloads, name)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("n_ops", [0, 1, 2, 7, 299, 300, 301, 4000, 4001])
def test_valid_with_exactly_n_ops(name, n_ops):
    t = GENS[name](n_ops, live=300, seed=n_ops, procs=2)
    assert isinstance(t, Trace)
    assert len(t) == n_ops
    workloads.validate(t)
    counts = walk(t)
    assert np.array_equal(workloads.live_counts(t), np.array(counts, np.int64))
    allocs = t.kind == ALLOC
    # ids dense from 0, in allocation order
    assert t.id[allocs].tolist() == list(range(int(allocs.sum())))
    assert t.nids == int(allocs.sum())
    # frees carry nothing but the id
    assert not t.size[~allocs].any() and not t.noscan[~allocs].any()
    assert not t.p[~allocs].any()
    assert set(t.p[allocs].tolist()) <= {0, 1}
    assert set(t.noscan.tolist()) <= {0, 1}


def test_steady_live_set():
    """uniform, log_uniform, go_mix: ramp to live, then (free a random
    live object, alloc) pairs; an odd last op frees one more."""
    for name in ("uniform", "log_uniform", "go_mix"):
        t = GENS[name](10_001, live=1000, seed=3)
        lc = workloads.live_counts(t)
        assert lc[:1000].tolist() == list(range(1, 1001))
        assert (t.kind[:1000] == ALLOC).all()
        body = t.kind[1000:1000 + 9000].reshape(-1, 2)
        assert (body[:, 0] == FREE).all() and (body[:, 1] == ALLOC).all()
        assert set(lc[1000:-1].tolist()) == {999, 1000}
        assert t.kind[-1] == FREE and lc[-1] == 999
        # fewer ops than the ramp: only allocations
        short = GENS[name](500, live=1000, seed=3)
        assert (short.kind == ALLOC).all()


def test_frees_take_uniformly_random_live_objects():
    """With L live objects and uniform choice, a lifetime (in replacement
    steps) is geometric with mean L; every live object is equally likely
    to be the next victim, whatever its age."""
    L = 200
    t = workloads.uniform(2 * L + 2 * 200_000, 8, 8, live=L, seed=5)
    n = len(t)
    born = np.full(t.nids, -1)
    died = np.full(t.nids, -1)
    born[t.id[t.kind == ALLOC]] = np.flatnonzero(t.kind == ALLOC)
    died[t.id[t.kind == FREE]] = np.flatnonzero(t.kind == FREE)
    # objects born in the churn phase and dead before the end
    ok = (born >= 2 * L) & (died >= 0) & (born < n // 2)
    steps = (died[ok] - born[ok]) // 2          # replacement steps lived
    assert abs(steps.mean() / L - 1) < 0.05
    # geometric: P(lifetime > L) = (1 - 1/L)^L ~ 1/e
    assert abs((steps > L).mean() - np.exp(-1)) < 0.02
    # the ramp's objects are freed uniformly too: victims of the first
    # 100 churn steps are spread over the ramp, not the oldest first
    # (FIFO would take ids 0..99, standard deviation 29)
    assert (t.kind[L:L + 200:2] == FREE).all()
    first = t.id[L:L + 200:2].astype(np.int64)
    ramp = first[first < L]
    assert len(ramp) > 60 and len(set(ramp.tolist())) == len(ramp)
    assert ramp.std() > L / 5 and ramp.max() > 0.8 * L


def test_uniform_and_log_uniform_sizes():
    t = workloads.uniform(200_000, 10, 1000, live=1000, noscan=0.25, seed=1)
    s = t.size[t.kind == ALLOC].astype(np.int64)
    assert s.min() == 10 and s.max() == 1000
    assert abs(s.mean() - 505) < 5
    assert abs(t.noscan[t.kind == ALLOC].mean() - 0.25) < 0.01
    z = workloads.uniform(1000, 0, 0, live=10)
    assert not z.size.any()                      # zero-size objects allowed

    t = workloads.log_uniform(200_000, 16, 4095, live=1000, seed=1)
    s = t.size[t.kind == ALLOC]
    assert s.min() >= 16 and s.max() <= 4095
    # each power of two holds about the same share (8 octaves)
    octave = np.floor(np.log2(s)).astype(int)
    shares = np.bincount(octave, minlength=12)[4:12] / len(s)
    assert np.allclose(shares, 1 / 8, atol=0.01)
    assert abs(t.noscan[t.kind == ALLOC].mean() - 0.5) < 0.01


def test_go_mix_distribution():
    t = workloads.go_mix(400_000, live=1000, seed=2)
    a = t.kind == ALLOC
    s = t.size[a].astype(np.int64)
    ns = t.noscan[a].astype(bool)
    n = len(s)
    assert sum(b[0] for b in workloads.GO_MIX_BANDS) == pytest.approx(1)
    for weight, lo, hi, prob in workloads.GO_MIX_BANDS:
        if lo == 1:
            band = s < 16
        else:
            band = (s >= lo) & (s <= hi)
        assert abs(band.sum() / n - weight) < 0.01, (lo, hi)
        if lo > 1 and weight > 0.05:
            assert abs(ns[band].mean() - prob) < 0.03, (lo, hi)
    # sub-16-byte objects are noscan: Go's tiny allocator takes them
    assert ns[s < 16].all()
    # objects with pointers have word-multiple sizes
    assert (s[~ns] % 8 == 0).all()
    assert s.min() >= 1 and s.max() <= 1 << 20
    assert (s > 32768).any()                    # some large objects
    # an explicit noscan probability replaces the per-band ones
    t = workloads.go_mix(100_000, live=1000, seed=2, noscan=0.0)
    assert not t.noscan.any()
    assert (t.size[t.kind == ALLOC] % 8 == 0).all()


def test_producer_consumer_shape():
    t = workloads.producer_consumer(4 * 5000 + 400, live=400, procs=5,
                                    seed=3)
    producers = set(range(2))                    # procs // 2
    assert (t.kind[:400] == ALLOC).all()
    assert set(t.p[:400].tolist()) <= producers
    rounds = 5000
    k = t.kind[400:].reshape(rounds, 4)
    ids = t.id[400:].reshape(rounds, 4)
    p = t.p[400:].reshape(rounds, 4)
    assert (k == [ALLOC, FREE, ALLOC, FREE]).all()
    assert set(p[:, 0].tolist()) == producers            # messages
    assert set(p[:, 2].tolist()) == {2, 3, 4}            # scratch
    assert (ids[:, 2] == ids[:, 3]).all()                # freed at once
    assert (ids[:, 1] != ids[:, 0]).all()    # a message already queued
    lc = workloads.live_counts(t)
    assert lc[399] == 400 and set(lc[400:].tolist()) == {400, 401}
    # messages freed are earlier messages, never scratch objects
    scratch = set(ids[:, 2].tolist())
    assert not scratch & set(ids[:, 1].tolist())
    with pytest.raises(ValueError):
        workloads.producer_consumer(100, procs=1)
    with pytest.raises(ValueError):
        workloads.producer_consumer(100, procs=3, producers=3)
    one = workloads.producer_consumer(100, live=10, procs=3, producers=2)
    assert set(one.p[one.kind == ALLOC][:10].tolist()) <= {0, 1}


def test_phases_shape():
    live, low = 2000, 500
    need = live + 2 * (live - low)
    t = workloads.phases(need + 2 * 3000, live=live, low=low, seed=4)
    lc = workloads.live_counts(t)
    assert lc.max() == live and lc[-1] == live
    peak1 = int(np.argmax(lc == live))
    valley = peak1 + int(np.argmax(lc[peak1:] == low))
    assert lc[peak1:].min() == low
    assert (lc[valley:] >= low).all()
    # grow, shrink, grow: monotone but for churn's free-then-alloc dips
    grow1, shrink, grow2 = lc[:peak1 + 1], lc[peak1:valley + 1], lc[valley:]
    assert (grow1 >= np.maximum.accumulate(grow1) - 1).all()
    assert (shrink <= np.minimum.accumulate(shrink) + 1).all()
    assert (grow2 >= np.maximum.accumulate(grow2) - 1).all()
    assert valley - peak1 >= 2 * (live - low) // 2
    # churn in every phase
    for a, b in ((0, peak1), (peak1, valley), (valley, len(t))):
        k = t.kind[a:b]
        assert (k == FREE).any() and (k == ALLOC).any()
    # low defaults to live // 4; low = 0 empties the heap in between
    t = workloads.phases(20_000, live=400, low=0, seed=1)
    lc = workloads.live_counts(t)
    assert lc.min() == 0 and lc[-1] == 400
    workloads.validate(t)
    with pytest.raises(ValueError):
        workloads.phases(1000, live=10, low=11)


def test_long_short_shape():
    live, frac = 1000, 0.3
    n = 40_000
    t = workloads.long_short(n, live=live, long_fraction=frac, seed=6)
    allocs = np.flatnonzero(t.kind == ALLOC)
    freed = np.zeros(t.nids, dtype=bool)
    freed[t.id[t.kind == FREE]] = True
    lc = workloads.live_counts(t)
    assert lc[-1] == live and lc.max() == live
    never = np.flatnonzero(~freed)
    assert len(never) == live                   # long-lived + short pool
    # the long-lived ones are scattered over the first half of the
    # short-lived ops: m ops hold them all
    n_long = round(frac * live)
    m = (n - n_long) // 2 + n_long
    head = set(t.id[allocs[allocs < m]].tolist())
    assert len(set(never.tolist()) & head) >= n_long
    quarter = set(t.id[allocs[allocs < m // 4]].tolist())
    assert 0.15 * n_long < len(set(never.tolist()) & quarter) < 0.35 * n_long
    tail = t.kind[m:]
    assert abs(int((tail == ALLOC).sum()) - int((tail == FREE).sum())) <= 1
    # sizes: log-uniform when lo and hi are given
    t = workloads.long_short(5000, live=100, lo=100, hi=200, seed=1)
    s = t.size[t.kind == ALLOC]
    assert s.min() >= 100 and s.max() <= 200


@pytest.mark.parametrize("name", NAMES)
def test_replays_cleanly(name):
    procs = 3
    t = GENS[name](30_001, live=2000, seed=8, procs=procs)
    with goalloc.Heap(backing="virtual", procs=procs) as h:
        tl = h.replay(t, sample_every=1000)
        h.verify()
        nlive = int(workloads.live_counts(t)[-1])
        assert int(tl.live.sum()) == nlive
        # every live object is in the object table (zero-size ones share
        # zerobase and have no slot)
        sizes = np.zeros(t.nids, dtype=np.uint64)
        sizes[t.id[t.kind == ALLOC]] = t.size[t.kind == ALLOC]
        nonzero = tl.live & (sizes > 0)
        objs = h.object_array()
        assert len(objs) == int(nonzero.sum())
        assert sorted(objs["addr"].tolist()) == \
            sorted(tl.addresses[nonzero].tolist())
        assert int(objs["requested"].sum()) == int(sizes[tl.live].sum())
        assert h.fragmentation().requested_live == int(sizes[tl.live].sum())


def test_composite_sizes_from_lo_hi():
    for name in ("phases", "long_short", "producer_consumer"):
        t = GENS[name](5000, live=200, lo=64, hi=64)
        assert set(t.size[t.kind == ALLOC].tolist()) == {64}
        with pytest.raises(ValueError):
            GENS[name](5000, live=200, lo=64)


@pytest.mark.parametrize("call,exc", [
    (lambda: workloads.uniform(-1, 8, 16), ValueError),
    (lambda: workloads.uniform(10, 16, 8), ValueError),
    (lambda: workloads.uniform(10, -1, 8), ValueError),
    (lambda: workloads.log_uniform(10, 0, 8), ValueError),
    (lambda: workloads.uniform(10, 8, 16, live=0), ValueError),
    (lambda: workloads.uniform(10, 8, 16, noscan=1.5), ValueError),
    (lambda: workloads.uniform(10, 8, 16, procs=0), ValueError),
    (lambda: workloads.uniform(10.0, 8, 16), TypeError),
    (lambda: workloads.go_mix(10, live=2.5), TypeError),
    (lambda: workloads.go_mix(10, seed=-1), ValueError),
    (lambda: workloads.long_short(10, long_fraction=2), ValueError),
    # probabilities are numbers: float() alone takes "0.5" and "nan"
    (lambda: workloads.uniform(10, 8, 16, noscan="0.5"), TypeError),
    (lambda: workloads.go_mix(10, noscan="nan"), TypeError),
    (lambda: workloads.long_short(10, long_fraction=b"1"), TypeError),
    (lambda: workloads.go_mix(10, noscan=float("nan")), ValueError),
])
def test_bad_arguments(call, exc):
    with pytest.raises(exc):
        call()


def test_validate_finds_the_first_bad_op():
    ok = Trace.from_ops([("alloc", 0, 8), ("alloc", 1, 8), ("free", 0),
                         ("alloc", 0, 16), ("free", 0), ("free", 1)])
    workloads.validate(ok)                       # re-use after free is fine
    workloads.validate(Trace.from_ops([]))
    cases = [
        ([("alloc", 0, 8), ("free", 1)], 1, "not live"),
        ([("alloc", 0, 8), ("free", 0), ("free", 0)], 2, "not live"),
        ([("alloc", 5, 8), ("alloc", 5, 8)], 1, "still live"),
        ([("alloc", 0, 8), ("alloc", 1, 8), ("alloc", 1, 8), ("free", 9)], 2,
         "still live"),
        ([("free", 3), ("alloc", 1, 8), ("alloc", 1, 8)], 0, "not live"),
    ]
    for ops, index, what in cases:
        with pytest.raises(TraceError, match=what) as e:
            workloads.validate(Trace.from_ops(ops))
        assert e.value.index == index
        assert f"op {index}" in str(e.value)
    # validate agrees with a replay about where a trace goes wrong
    t = workloads.go_mix(3000, live=100, seed=1)
    bad = Trace.from_ops([*(("alloc", o.id, o.size) if o.kind == ALLOC
                            else ("free", o.id) for o in t),
                          ("free", 5)])
    with pytest.raises(TraceError) as v:
        workloads.validate(bad)
    with goalloc.Heap(backing="virtual") as h:
        with pytest.raises(TraceError) as r:
            h.replay(bad)
    assert v.value.index == r.value.index


def test_a_million_ops():
    """A big trace is built by NumPy (no per-op Python work): smoke test
    at 1M ops of every generator, checked by validate."""
    for name in NAMES:
        t = GENS[name](1_000_000, live=50_000, seed=1, procs=2)
        assert len(t) == 1_000_000
        workloads.validate(t)
