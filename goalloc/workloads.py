"""Seeded workload generators: allocation traces built with NumPy.

Every generator returns a ``goalloc.Trace`` of exactly ``n_ops`` ops and is
a pure function of its arguments: the same arguments and ``seed`` give the
same trace, on every machine (NumPy's ``default_rng``, PCG64).  No Python
code runs per op, so a ten-million-op trace builds in a second or two.

The live-set process
--------------------
All generators share one process, the *slot model*.  The live objects
occupy ``L`` slots (L is the current live count).  Four moves exist:

* grow(k): allocate k new objects into k new slots;
* churn(m): m replacement steps; each picks a slot uniformly at random
  (every live object equally likely), frees its object, and allocates a
  new object into the slot: op pair (free, alloc), the live count stays L;
* shrink(k): free k distinct live objects chosen uniformly at random, in
  random order;
* (long_short only) a pool of objects that is never freed.

Uniform choice among slots is uniform choice among live objects, so each
free takes a uniformly random live object and lifetimes are geometric
with mean L replacement steps (Little's law).  Ops are vectorised: the
victim of churn step t is the object placed in the same slot by the latest
earlier step (a stable sort by slot finds it), never a Python loop.

Properties every trace has:

* ids are dense from 0 and numbered in allocation order: the k-th alloc op
  allocates id k (so ``trace.size[trace.kind == 0][k]`` is id k's size);
* every id is allocated exactly once and freed at most once, after its
  allocation; ids are never re-used (``validate`` checks this);
* at the end, the live set is whatever the process reached (nothing is
  drained): a replay leaves the target live set allocated;
* frees carry ``p = 0``: goalloc's free, like Go's sweeper, goes through no
  P's mcache, and the text trace format records no P for frees;
* if ``n_ops`` is smaller than a generator's structure needs (e.g. fewer
  ops than the ramp-up to ``live``), the trace is the first ``n_ops`` ops
  of the smallest complete one; a prefix of a valid trace is valid.

Sizes
-----
``uniform`` and ``log_uniform`` draw sizes uniformly / log-uniformly in
``[lo, hi]`` (log-uniform: ``floor(exp(U(ln lo, ln(hi + 1))))``, so each
power of two holds about as many objects), noscan with probability
``noscan``, and P uniformly from ``range(procs)``.  The composite
generators (``phases``, ``long_short``, ``producer_consumer``) draw from
``go_mix``'s distribution unless ``lo`` and ``hi`` are given, in which
case they draw log-uniformly in ``[lo, hi]``.
"""
from __future__ import annotations

import math
import numbers
from collections.abc import Callable

import numpy as np

from .trace import ALLOC, FREE, Trace, TraceError

__all__ = ["uniform", "log_uniform", "go_mix", "producer_consumer",
           "phases", "long_short", "validate", "live_counts", "GO_MIX_BANDS",
           "GENERATORS"]

DEFAULT_LIVE = 10_000

# (weight, lo, hi, noscan probability) per band of go_mix; the weights
# sum to 1.  See go_mix's docstring for why.
GO_MIX_BANDS: tuple[tuple[float, int, int, float], ...] = (
    (0.25, 1, 15, 1.00),          # tiny: small strings, escaping scalars
    (0.42, 16, 64, 0.35),         # small structs, interface boxes, headers
    (0.20, 65, 256, 0.40),        # medium structs, map buckets, slices
    (0.09, 257, 2048, 0.60),      # growing slices, small buffers
    (0.035, 2049, 32768, 0.80),   # bufio / bytes.Buffer, big slices
    (0.005, 32769, 1 << 20, 0.90),  # large: > 32 KiB, own span
)

Sampler = Callable[[np.random.Generator, int],
                   "tuple[np.ndarray, np.ndarray]"]


# ---- argument checks ------------------------------------------------------

def _count(name: str, v: int, minimum: int = 0) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
        raise TypeError(f"{name} must be an int, not {type(v).__name__}")
    if v < minimum:
        raise ValueError(f"{name} must be >= {minimum}, not {v}")
    return int(v)


def _prob(name: str, v: float) -> float:
    # a real number: float() would also take "0.5" and "nan" strings
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        raise TypeError(f"{name} must be a number, not {type(v).__name__}")
    v = float(v)
    if not 0.0 <= v <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], not {v}")
    return v


def _bounds(lo: int, hi: int, minimum: int) -> tuple[int, int]:
    lo = _count("lo", lo, minimum)
    hi = _count("hi", hi, minimum)
    if lo > hi:
        raise ValueError(f"lo ({lo}) must be <= hi ({hi})")
    return lo, hi


# ---- size samplers ---------------------------------------------------------

def _noscan_draw(rng: np.random.Generator, n: int, prob: float) -> np.ndarray:
    return (rng.random(n) < prob).astype(np.uint8)


def _log_uniform_sizes(rng: np.random.Generator, n: int, lo: int,
                       hi: int) -> np.ndarray:
    a, b = math.log(lo), math.log(hi + 1)
    s = np.floor(np.exp(a + rng.random(n) * (b - a)))
    return np.clip(s, lo, hi).astype(np.uint64)


def _uniform_sampler(lo: int, hi: int, noscan: float) -> Sampler:
    def draw(rng: np.random.Generator,
             n: int) -> tuple[np.ndarray, np.ndarray]:
        size = rng.integers(lo, hi, size=n, endpoint=True, dtype=np.uint64)
        return size, _noscan_draw(rng, n, noscan)
    return draw


def _log_uniform_sampler(lo: int, hi: int, noscan: float) -> Sampler:
    def draw(rng: np.random.Generator,
             n: int) -> tuple[np.ndarray, np.ndarray]:
        return _log_uniform_sizes(rng, n, lo, hi), _noscan_draw(rng, n, noscan)
    return draw


def _go_sampler(noscan: float | None) -> Sampler:
    weights = np.array([b[0] for b in GO_MIX_BANDS])

    def draw(rng: np.random.Generator,
             n: int) -> tuple[np.ndarray, np.ndarray]:
        band = rng.choice(len(GO_MIX_BANDS), size=n, p=weights)
        size = np.zeros(n, dtype=np.uint64)
        nos = np.zeros(n, dtype=np.uint8)
        for b, (_, lo, hi, prob) in enumerate(GO_MIX_BANDS):
            idx = np.flatnonzero(band == b)
            if not idx.size:
                continue
            if lo == 1:
                s = rng.integers(lo, hi, size=idx.size, endpoint=True,
                                 dtype=np.uint64)
            else:
                s = _log_uniform_sizes(rng, idx.size, lo, hi)
            ns = _noscan_draw(rng, idx.size,
                              prob if noscan is None else noscan)
            # Objects with pointers are word-aligned structs: their sizes
            # are multiples of 8.  Pointer-free ones (strings, []byte)
            # keep any length.
            scan = ns == 0
            s[scan] = (s[scan] + 7) & ~np.uint64(7)
            size[idx] = s
            nos[idx] = ns
        return size, nos
    return draw


def _composite_sampler(lo: int | None, hi: int | None,
                       noscan: float | None) -> Sampler:
    if lo is None and hi is None:
        return _go_sampler(None if noscan is None else _prob("noscan", noscan))
    if lo is None or hi is None:
        raise ValueError("give both lo and hi, or neither (go_mix sizes)")
    lo, hi = _bounds(lo, hi, 1)
    return _log_uniform_sampler(lo, hi,
                                0.5 if noscan is None else _prob("noscan",
                                                                 noscan))


# ---- the slot model --------------------------------------------------------

def _stable_argsort(keys: np.ndarray) -> np.ndarray:
    """np.argsort(keys, kind="stable") for non-negative integers, as LSD
    radix passes over 16-bit digits (NumPy radix-sorts 16-bit keys in
    linear time; wider keys would go to timsort, 2-3x slower here)."""
    if not len(keys):
        return np.empty(0, dtype=np.intp)
    top = int(keys.max())
    keys = keys.astype(np.uint64, copy=False)
    order: np.ndarray | None = None
    shift = 0
    while True:
        digit = ((keys >> np.uint64(shift)) & np.uint64(0xFFFF)).astype(
            np.uint16)
        if order is None:
            order = np.argsort(digit, kind="stable")
        else:
            order = order[np.argsort(digit[order], kind="stable")]
        shift += 16
        if top >> shift == 0:
            return order


class _Pool:
    """Live objects in slots; emits (kind, id) chunks, ids from 0 in
    allocation order."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.slots = np.empty(0, dtype=np.int64)
        self.next_id = 0
        self.kinds: list[np.ndarray] = []
        self.ids: list[np.ndarray] = []
        self.nops = 0

    def _new(self, k: int) -> np.ndarray:
        new = np.arange(self.next_id, self.next_id + k, dtype=np.int64)
        self.next_id += k
        return new

    def _emit(self, kind: np.ndarray, ids: np.ndarray) -> None:
        self.kinds.append(kind.astype(np.uint8, copy=False))
        self.ids.append(ids)
        self.nops += len(ids)

    def grow(self, k: int) -> None:
        if k <= 0:
            return
        new = self._new(k)
        self.slots = np.concatenate([self.slots, new])
        self._emit(np.full(k, ALLOC, dtype=np.uint8), new)

    def shrink(self, k: int) -> None:
        k = min(k, len(self.slots))
        if k <= 0:
            return
        perm = self.rng.permutation(len(self.slots))
        self._emit(np.full(k, FREE, dtype=np.uint8), self.slots[perm[:k]])
        self.slots = self.slots[np.sort(perm[k:])]

    def churn_pairs(self, m: int) -> tuple[np.ndarray, np.ndarray]:
        """m replacement steps: (victim, new) id arrays, not emitted."""
        L = len(self.slots)
        if m <= 0:
            e = np.empty(0, dtype=np.int64)
            return e, e
        if L == 0:
            raise ValueError("churn with no live object")
        s = self.rng.integers(0, L, size=m)
        new = self._new(m)
        order = _stable_argsort(s)
        ss = s[order]
        new_sorted = new[order]
        same = np.empty(m, dtype=bool)
        same[0] = False
        same[1:] = ss[1:] == ss[:-1]
        # The victim of a step is the object the previous step on the same
        # slot placed there, or the slot's occupant before this churn.
        prev_new = np.empty(m, dtype=np.int64)
        prev_new[0] = -1
        prev_new[1:] = new_sorted[:-1]
        victim = np.empty(m, dtype=np.int64)
        victim[order] = np.where(same, prev_new, self.slots[ss])
        last = np.empty(m, dtype=bool)
        last[-1] = True
        last[:-1] = ss[1:] != ss[:-1]
        slots = self.slots.copy()
        slots[ss[last]] = new_sorted[last]
        self.slots = slots
        return victim, new

    def churn(self, m: int) -> None:
        victim, new = self.churn_pairs(m)
        if not len(new):
            return
        kind = np.empty(2 * len(new), dtype=np.uint8)
        kind[0::2] = FREE
        kind[1::2] = ALLOC
        self._emit(kind, np.column_stack([victim, new]).ravel())

    def ops(self) -> tuple[np.ndarray, np.ndarray]:
        if not self.kinds:
            return np.empty(0, np.uint8), np.empty(0, np.int64)
        return np.concatenate(self.kinds), np.concatenate(self.ids)


def _relabel(kind: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Renumber ids in allocation order (each id is allocated once)."""
    if not len(ids):
        return ids.astype(np.uint64)
    a = kind == ALLOC
    new_of = np.zeros(int(ids.max()) + 1, dtype=np.uint64)
    new_of[ids[a]] = np.arange(int(np.count_nonzero(a)), dtype=np.uint64)
    relabelled: np.ndarray = new_of[ids]
    return relabelled


def _build(rng: np.random.Generator, kind: np.ndarray, ids: np.ndarray,
           n_ops: int, sampler: Sampler,
           alloc_p: np.ndarray | None = None, procs: int = 1) -> Trace:
    """Cut to n_ops, renumber, and draw size, noscan and P per alloc.

    alloc_p, if given, is the P of each alloc op (in op order, before the
    cut); otherwise P is uniform over range(procs)."""
    kind = kind[:n_ops]
    ids = _relabel(kind, ids[:n_ops])
    is_alloc = kind == ALLOC
    nalloc = int(np.count_nonzero(is_alloc))
    s, ns = sampler(rng, nalloc)
    size = np.zeros(len(kind), dtype=np.uint64)
    noscan = np.zeros(len(kind), dtype=np.uint8)
    p = np.zeros(len(kind), dtype=np.uint16)
    size[is_alloc] = s
    noscan[is_alloc] = ns
    if alloc_p is not None:
        p[is_alloc] = alloc_p[:nalloc]
    elif procs > 1:
        p[is_alloc] = rng.integers(0, procs, size=nalloc, dtype=np.uint16)
    return Trace(kind, ids, size, noscan, p)


def _steady(n_ops: int, live: int, sampler: Sampler, seed: int,
            procs: int) -> Trace:
    """Ramp up to live objects, then churn; exactly n_ops ops."""
    rng = np.random.default_rng(seed)
    pool = _Pool(rng)
    pool.grow(min(live, n_ops))
    rest = n_ops - pool.nops
    pool.churn(rest // 2)
    pool.shrink(rest % 2)
    kind, ids = pool.ops()
    return _build(rng, kind, ids, n_ops, sampler, procs=procs)


def _common(n_ops: int, live: int, seed: int, procs: int,
            live_min: int = 1) -> tuple[int, int, int, int]:
    return (_count("n_ops", n_ops), _count("live", live, live_min),
            _count("seed", seed), _count("procs", procs, 1))


# ---- the generators ---------------------------------------------------------

def uniform(n_ops: int, lo: int, hi: int, live: int = DEFAULT_LIVE,
            seed: int = 0, noscan: float = 0.5, procs: int = 1) -> Trace:
    """Sizes uniform in [lo, hi], a steady live set of ``live`` objects.

    Process: ``live`` allocations (ids 0..live-1), then (free a uniformly
    random live object, allocate a new one) pairs until n_ops ops; an odd
    last op frees one more random live object.  Each alloc is noscan with
    probability ``noscan`` and goes through a P drawn uniformly from
    ``range(procs)``.  ``lo`` may be 0 (``alloc(0)`` is Go's zerobase).
    """
    n_ops, live, seed, procs = _common(n_ops, live, seed, procs)
    lo, hi = _bounds(lo, hi, 0)
    return _steady(n_ops, live, _uniform_sampler(lo, hi,
                                                 _prob("noscan", noscan)),
                   seed, procs)


def log_uniform(n_ops: int, lo: int, hi: int, live: int = DEFAULT_LIVE,
                seed: int = 0, noscan: float = 0.5, procs: int = 1) -> Trace:
    """Sizes log-uniform in [lo, hi] (lo >= 1): as many objects between 16
    and 32 bytes as between 1024 and 2048.  The live-set process is
    ``uniform``'s."""
    n_ops, live, seed, procs = _common(n_ops, live, seed, procs)
    lo, hi = _bounds(lo, hi, 1)
    return _steady(n_ops, live, _log_uniform_sampler(lo, hi,
                                                     _prob("noscan", noscan)),
                   seed, procs)


def go_mix(n_ops: int, live: int = DEFAULT_LIVE, seed: int = 0,
           noscan: float | None = None, procs: int = 1) -> Trace:
    """A Go-like small-object mix, with ``uniform``'s live-set process.

    Each object first picks a band, then a size in the band (uniform for
    tiny, log-uniform otherwise, so smaller sizes dominate inside a band):

    ======  ==============  ======  ===========================================
    weight  bytes           noscan  typical Go objects
    ======  ==============  ======  ===========================================
    25 %    1 - 15          100 %   short strings, escaping ints/bools/small
                                    scalars: Go's tiny allocator is for them
    42 %    16 - 64         35 %    small structs, interface boxes, string and
                                    slice backing arrays of a few elements
    20 %    65 - 256        40 %    medium structs, map buckets (208 B for
                                    map[string]int), small slices
    9 %     257 - 2048      60 %    growing slices, small buffers
    3.5 %   2049 - 32768    80 %    bufio/bytes.Buffer (4 KiB), large slices
    0.5 %   32769 - 1 MiB   90 %    large objects (their own span)
    ======  ==============  ======  ===========================================

    Why these weights: they are a judgement, not a measurement of any
    corpus.  They encode the shape Go's own design assumes: most objects
    are small (Go 1.13 gives sizes up to 256 B 17 of its 66 classes, 16
    bytes apart from 32 B on, the finest spacing of its table, because that is
    where objects are most frequent); sub-16-byte pointer-free objects are
    common enough that malloc.go's tiny allocator reports ~12% fewer
    allocations and a ~20% smaller heap on the json benchmark; and objects
    above 32 KiB are rare but carry most of the bytes (here 0.5% of the
    objects, about three quarters of the bytes allocated).  Replace them
    with a measured mix when you have one (``goalloc.capture`` turns a
    real program's mallocs into a trace).

    Pointer-holding ("scan") objects have sizes rounded up to a multiple
    of 8 (structs are word aligned); noscan ones keep any length
    (strings, []byte).  ``noscan`` given as a number replaces every band's
    noscan probability (tiny-sized objects with pointers are then
    ordinary 8- and 16-byte objects).  ``GO_MIX_BANDS`` holds the table.
    """
    n_ops, live, seed, procs = _common(n_ops, live, seed, procs)
    sampler = _go_sampler(None if noscan is None else _prob("noscan", noscan))
    return _steady(n_ops, live, sampler, seed, procs)


def producer_consumer(n_ops: int, live: int = DEFAULT_LIVE, seed: int = 0,
                      noscan: float | None = None, procs: int = 2,
                      producers: int | None = None,
                      lo: int | None = None,
                      hi: int | None = None) -> Trace:
    """Messages allocated on producer Ps and freed by consumers.

    Ps ``0 .. producers-1`` produce (default ``procs // 2``), the others
    consume; ``procs >= 2``.  Process: producers allocate ``live``
    messages (P uniform among producers); then rounds of four ops:

    1. a producer P allocates a new message;
    2. a consumer takes a uniformly random message already in the pool
       and frees it;
    3. that consumer allocates a scratch object on its own P;
    4. and frees it.

    The pool holds ``live`` messages (``live + 1`` between ops 1 and 2).
    goalloc's free goes through no P (as Go's sweeper): "freed on another
    P" shows as frees of slots in spans that a producer's mcache may still
    hold, which become reusable only when the span leaves that mcache.
    The trace is cut after n_ops ops.  Sizes: go_mix's distribution, or
    log-uniform in [lo, hi] when both are given.
    """
    n_ops, live, seed, procs = _common(n_ops, live, seed, procs)
    if procs < 2:
        raise ValueError("producer_consumer needs procs >= 2")
    if producers is None:
        producers = procs // 2
    producers = _count("producers", producers, 1)
    if producers >= procs:
        raise ValueError(f"producers ({producers}) must be < procs ({procs})")
    consumers = procs - producers
    sampler = _composite_sampler(lo, hi, noscan)
    rng = np.random.default_rng(seed)
    pool = _Pool(rng)
    ramp = min(live, n_ops)
    pool.grow(ramp)
    rounds = -(-(n_ops - ramp) // 4)
    victim, msg = pool.churn_pairs(rounds)
    scratch = np.arange(pool.next_id, pool.next_id + rounds, dtype=np.int64)
    kind0, ids0 = pool.ops()
    body_kind = np.tile(np.array([ALLOC, FREE, ALLOC, FREE], dtype=np.uint8),
                        rounds)
    body_ids = np.column_stack([msg, victim, scratch, scratch]).ravel()
    kind = np.concatenate([kind0, body_kind])
    ids = np.concatenate([ids0, body_ids])
    # P of every alloc op, in op order: ramp messages, then per round the
    # new message (producer) and the scratch object (consumer).
    consumer = producers + rng.integers(0, consumers, size=rounds)
    body_p = np.column_stack([rng.integers(0, producers, size=rounds),
                              consumer]).ravel()
    alloc_p = np.concatenate([rng.integers(0, producers, size=ramp),
                              body_p]).astype(np.uint16)
    return _build(rng, kind, ids, n_ops, sampler, alloc_p=alloc_p)


def _split(total: int, parts: int) -> list[int]:
    q, r = divmod(total, parts)
    return [q + (1 if i < r else 0) for i in range(parts)]


def phases(n_ops: int, live: int = DEFAULT_LIVE, low: int | None = None,
           seed: int = 0, noscan: float | None = None, procs: int = 1,
           lo: int | None = None, hi: int | None = None,
           steps: int = 16) -> Trace:
    """Grow to ``live``, shrink to ``low``, grow back to ``live``.

    ``low`` defaults to ``live // 4``.  The three phases need
    ``live + 2 * (live - low)`` allocs and frees; the remaining ops are
    churn (free a uniformly random live object, allocate a new one),
    split evenly over the phases.  Each phase runs in ``steps`` sub-steps:
    growth sub-steps allocate their share then churn; shrink sub-steps
    churn then free their share of uniformly random live objects.  So the
    live count rises linearly to ``live``, falls linearly to ``low`` and
    rises again, with churn throughout.  An odd last op frees one random
    live object.  Sizes: go_mix's distribution, or log-uniform in
    [lo, hi] when both are given; P uniform over ``range(procs)``.
    """
    n_ops, live, seed, procs = _common(n_ops, live, seed, procs)
    low = live // 4 if low is None else _count("low", low)
    if low > live:
        raise ValueError(f"low ({low}) must be <= live ({live})")
    steps = _count("steps", steps, 1)
    sampler = _composite_sampler(lo, hi, noscan)
    rng = np.random.default_rng(seed)
    pool = _Pool(rng)
    need = live + 2 * (live - low)
    rest = max(0, n_ops - need)
    churn = _split(rest // 2, 3)
    for phase, (delta, m) in enumerate(zip((live, live - low, live - low),
                                           churn, strict=True)):
        ks = _split(delta, steps)
        if phase == 1:
            # Larger shares last: the pool only empties (low = 0) after
            # the final sub-step's churn.
            ks.reverse()
        for k, c in zip(ks, _split(m, steps), strict=True):
            if phase == 1:
                pool.churn(c)
                pool.shrink(k)
            else:
                pool.grow(k)
                if len(pool.slots):
                    pool.churn(c)
        if pool.nops >= n_ops:
            break
    if pool.nops < n_ops:
        pool.shrink(n_ops - pool.nops)
    kind, ids = pool.ops()
    return _build(rng, kind, ids, n_ops, sampler, procs=procs)


def long_short(n_ops: int, live: int = DEFAULT_LIVE,
               long_fraction: float = 0.2, seed: int = 0,
               noscan: float | None = None, procs: int = 1,
               lo: int | None = None, hi: int | None = None) -> Trace:
    """A long-lived set plus short-lived churn.

    ``round(long_fraction * live)`` objects (at most ``live - 1``) are
    long-lived: allocated and
    never freed.  The other ``live - n_long`` form a short-lived pool with
    ``uniform``'s process (ramp up, then free a uniformly random pool
    object and allocate a new one), lifetimes geometric with mean
    ``live - n_long`` replacement steps.  The long-lived allocations are
    scattered uniformly at random over the first half of the trace, among
    the short-lived ones, so that survivors pin the spans the churn
    empties: the classic source of fragmentation.  The live count rises
    from the short pool's size to ``live`` over the first half and stays
    there.  Sizes: go_mix's distribution, or log-uniform in [lo, hi] when
    both are given; P uniform over ``range(procs)``.
    """
    n_ops, live, seed, procs = _common(n_ops, live, seed, procs)
    long_fraction = _prob("long_fraction", long_fraction)
    sampler = _composite_sampler(lo, hi, noscan)
    rng = np.random.default_rng(seed)
    n_long = min(int(round(long_fraction * live)), live - 1, n_ops)
    n_short = live - n_long
    short_ops = n_ops - n_long
    pool = _Pool(rng)
    if n_short > 0:
        pool.grow(min(n_short, short_ops))
        rest = short_ops - pool.nops
        pool.churn(rest // 2)
        pool.shrink(rest % 2)
    skind, sids = pool.ops()
    long_ids = np.arange(pool.next_id, pool.next_id + n_long, dtype=np.int64)
    head = len(skind) // 2
    m = head + n_long
    is_long = np.zeros(m, dtype=bool)
    is_long[rng.choice(m, size=n_long, replace=False)] = True
    kind = np.empty(m, dtype=np.uint8)
    ids = np.empty(m, dtype=np.int64)
    kind[is_long] = ALLOC
    ids[is_long] = long_ids
    kind[~is_long] = skind[:head]
    ids[~is_long] = sids[:head]
    kind = np.concatenate([kind, skind[head:]])
    ids = np.concatenate([ids, sids[head:]])
    return _build(rng, kind, ids, n_ops, sampler, procs=procs)


GENERATORS: dict[str, Callable[..., Trace]] = {
    "uniform": uniform,
    "log_uniform": log_uniform,
    "go_mix": go_mix,
    "producer_consumer": producer_consumer,
    "phases": phases,
    "long_short": long_short,
}


# ---- checks -----------------------------------------------------------------

def live_counts(trace: Trace) -> np.ndarray:
    """The number of live objects after each op (int64, one per op)."""
    return np.cumsum(np.where(trace.kind == ALLOC, 1, -1), dtype=np.int64)


def validate(trace: Trace) -> None:
    """Raise TraceError (``index`` = the first bad op) unless every id's
    ops alternate alloc, free, alloc, ... starting with an alloc: no free
    of an id that is not live, no alloc of a live id.  Vectorised."""
    n = len(trace)
    if not n:
        return
    order = _stable_argsort(trace.id)
    sid = trace.id[order]
    pos = np.arange(n)
    start = np.ones(n, dtype=bool)
    start[1:] = sid[1:] != sid[:-1]
    rank = pos - np.maximum.accumulate(np.where(start, pos, 0))
    bad = trace.kind[order] != (rank & 1)
    if bad.any():
        i = int(order[bad].min())
        what = ("free of an id that is not live" if trace.kind[i] == FREE
                else "alloc of an id that is still live")
        raise TraceError(f"op {i} (id {int(trace.id[i])}): {what}", i)
