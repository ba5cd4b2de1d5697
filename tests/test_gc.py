"""GC mode (design §14): Go 1.13's collector cycle drives the heap.

Each test checks one mechanism against what Go 1.13's runtime does
(mgc.go, mgcsweep.go, mcentral.go; facts cited as design §14.N).
"""
import pytest

import goalloc
from goalloc import (
    DoubleFreeError,
    InvalidFreeError,
    WrongCollectorError,
)
from misuse import rejected

MiB = 1 << 20


def gc_heap(**kw):
    kw.setdefault("backing", "virtual")
    return goalloc.Heap(collector="gc", **kw)


# gcinit's pacing for each GOGC (design §14.3): heapminimum =
# 4 MiB * GOGC/100, heap_marked faked as 4 MiB / 1.875, trigger ratio
# 7/8 clamped to 0.95 * GOGC/100.
@pytest.mark.parametrize("gogc,trigger,next_gc", [
    (100, 4194304, 4473924),
    (50, 3299518, 3355443),
    (200, 8388608, 8388608),
    (0, 2236962, 2236962),
    ("off", 2**64 - 1, 2**64 - 1),
])
def test_gcinit_pacing(gogc, trigger, next_gc):
    for collector in ("gc", "free"):
        h = goalloc.Heap(backing="virtual", collector=collector, gogc=gogc)
        st = h.gc_state()
        assert (st.gc_trigger, st.next_gc) == (trigger, next_gc)
        assert h.stats().next_gc == next_gc
        assert st.num_gc == 0 and st.phase == "off"


def test_dropped_object_stays_allocated_until_a_cycle():
    h = gc_heap()
    keep = h.alloc(48)
    p = h.alloc(48)
    h.drop(p)
    base = h.span_of(p).base
    slot = (p - base) // 48
    assert h.span_objects(base).states[slot] == goalloc.SLOT_DROPPED
    assert h.stats().heap_alloc == 96          # Go counts it until swept
    h.gc()
    objs = h.span_objects(base).states
    assert objs[slot] == goalloc.SLOT_FREE
    assert objs[(keep - base) // 48] == goalloc.SLOT_LIVE
    st = h.stats()
    assert (st.heap_alloc, st.num_gc, st.num_forced_gc) == (48, 1, 1)
    assert h.gc_state().heap_marked == 48
    h.verify()


def test_bad_drops_leave_the_heap_unchanged():
    h = gc_heap()
    p = h.alloc(48)
    other = h.alloc(48)            # keeps p's span in use after p goes
    big = h.alloc(100_000)
    tiny = h.alloc(4, noscan=True)
    h.drop(p)
    cases = [
        (p, DoubleFreeError),                  # dropped already
        (p + 8, InvalidFreeError),             # interior
        (big + 8192, InvalidFreeError),        # interior of a large one
        (tiny + 1, InvalidFreeError),          # no tiny object starts here
        (0x7F0000000000, InvalidFreeError),    # foreign
        (h.info().zerobase, InvalidFreeError),  # every 0-byte object
    ]
    for addr, exc in cases:
        before = h.digest()
        with pytest.raises(exc, match="drop of"):
            h.drop(addr)
        assert h.digest() == before
    h.gc()
    before = h.digest()
    with pytest.raises(DoubleFreeError):       # collected since
        h.drop(p)
    h.drop(big)
    h.drop(other)
    h.gc()
    with pytest.raises(DoubleFreeError):       # its span went home
        h.drop(big)
    assert h.span_of(big).state == "free"
    with pytest.raises(InvalidFreeError):      # so did p's and other's
        h.drop(other)
    h.verify()
    assert before != h.digest()


def test_calls_of_the_other_collector_are_refused():
    free_heap = goalloc.Heap(backing="virtual")
    p = free_heap.alloc(48)
    before = free_heap.digest()
    for call in (lambda: free_heap.drop(p), free_heap.gc,
                 free_heap.free_os_memory):
        with pytest.raises(WrongCollectorError, match="collector='gc'"):
            call()
    assert free_heap.digest() == before
    h = gc_heap()
    q = h.alloc(48)
    before = h.digest()
    with pytest.raises(WrongCollectorError, match="drop"):
        h.free(q)
    with pytest.raises(WrongCollectorError):
        h.free_many([q])
    assert h.digest() == before
    assert issubclass(WrongCollectorError, goalloc.GoallocError)


def test_bad_options():
    with pytest.raises(ValueError, match="collector"):
        goalloc.Heap(collector="refcount")
    with pytest.raises(TypeError):
        goalloc.Heap(collector=1)
    with pytest.raises(ValueError):
        goalloc.Heap(collector="gc", background_sweep=-1)
    with pytest.raises(TypeError):
        goalloc.Heap(collector="gc", background_sweep="all")


def test_allocation_starts_a_cycle_at_the_trigger():
    """mallocgc tests the trigger only after a refill or a large
    allocation, and after the object is placed (design §14.3): the cycle
    starts on the first refill with heap_live at or past gc_trigger."""
    h = gc_heap()
    trigger = h.gc_state().gc_trigger
    n = 0
    while h.gc_state().num_gc == 0:
        live_before = h.gc_state().heap_live
        p = h.alloc(48)
        n += 1
        assert n < 200_000
    c = h.gc_cycles()[0]
    assert not c.forced
    assert c.gc_trigger == trigger
    assert c.heap_live_trigger >= trigger > live_before
    # nothing was dropped: everything allocated is marked, p included
    assert c.heap_marked == n * 48
    assert h.span_objects(h.span_of(p).base).states[
        (p - h.span_of(p).base) // 48] == goalloc.SLOT_LIVE
    h.verify()


def test_steady_state_pacing():
    """After the first cycle the 1.13 controller pins the trigger ratio at
    0.95 * GOGC/100 (design §14.3; checked on go1.13.8 with
    gcstoptheworld=1), next_gc = 2 * heap_marked for GOGC=100, and the
    trigger is floored 1 MiB above heap_live while sweeping is pending."""
    h = gc_heap()
    live = []
    for _ in range(300_000):
        live.append(h.alloc(64))
        if len(live) > 80_000:
            h.drop(live.pop(0))
    cycles = h.gc_cycles()
    assert len(cycles) >= 3
    assert cycles[0].trigger_ratio == pytest.approx(0.95)
    for c in cycles:
        assert c.next_gc == max(2 * c.heap_marked, c.next_trigger)
        assert c.next_trigger == max(int(c.heap_marked * 1.95),
                                     4 * MiB, c.heap_marked + MiB)
        assert c.heap_marked <= c.heap_live_trigger
    for a, b in zip(cycles, cycles[1:], strict=False):
        assert b.gc_trigger == a.next_trigger
        assert b.heap_live_trigger >= b.gc_trigger
    h.verify()


def test_forced_cycle_keeps_the_ratio_and_is_counted():
    h = gc_heap()
    h.alloc(48)
    h.gc()
    h.gc()
    st = h.stats()
    assert (st.num_gc, st.num_forced_gc) == (2, 2)
    assert h.gc_state().trigger_ratio == 0.875
    assert st.last_gc == h.gc_cycles()[-1].clock_ns > 0
    assert st.pause_total_ns == 0


def test_gogc_off_never_triggers_but_gc_works():
    h = gc_heap(gogc="off")
    for _ in range(40):
        h.drop(h.alloc(1 << 20))
    assert h.gc_state().num_gc == 0
    assert h.stats().heap_alloc == 40 << 20
    h.gc()
    assert h.stats().heap_alloc == 0
    assert h.stats().next_gc == 2**64 - 1


def test_set_gc_percent_repaces_at_once():
    h = gc_heap()
    assert h.set_gc_percent(200) == 100
    assert h.gc_state().gc_trigger == 8 * MiB
    assert h.set_gc_percent("off") == 200
    assert h.gc_state().next_gc == 2**64 - 1
    assert h.set_gc_percent(100) == -1
    with pytest.raises(TypeError):
        h.set_gc_percent(1.5)


def test_lazy_sweeping_with_no_background_sweeper():
    """background_sweep=0: spans stay unswept (sweepgen sg-2) after a
    cycle and HeapAlloc still counts their dead objects, until cacheSpan,
    the reclaimer or the proportional sweeper gets to them (design
    §14.4); gc() sweeps everything."""
    h = gc_heap(background_sweep=0)
    ps = [h.alloc(48) for _ in range(20_000)]
    for p in ps:
        h.drop(p)
    # allocate until a cycle starts: its sweep phase is then pending
    while h.gc_state().num_gc == 0:
        h.drop(h.alloc(48))
    st = h.gc_state()
    assert st.phase == "sweep"
    sg = st.sweepgen
    unswept = [s for s in h.spans()
               if s.state == "inuse" and s.sweepgen == sg - 2]
    assert unswept
    assert h.stats().heap_alloc > st.heap_marked   # dead, not swept
    h.verify()
    swept_before = st.pages_swept
    for _ in range(2000):
        h.alloc(48)
    assert h.gc_state().pages_swept > swept_before
    h.verify()
    h.gc()
    st = h.gc_state()
    assert st.phase == "off"
    assert all(s.sweepgen in (st.sweepgen, st.sweepgen + 3)
               for s in h.spans() if s.state == "inuse")
    h.verify()


def test_eager_background_sweeper_sweeps_everything_after_a_cycle():
    h = gc_heap()
    ps = [h.alloc(48) for _ in range(50_000)]   # 2.4 MB: no cycle yet
    for p in ps:
        h.drop(p)
    while h.gc_state().num_gc == 0:
        h.drop(h.alloc(48))
    st = h.gc_state()
    assert st.phase == "off"
    assert h.stats().heap_alloc <= st.heap_marked + 48 * 200


def test_large_object_is_freed_by_the_sweep_of_its_span():
    h = gc_heap()
    big = h.alloc(1 << 20)
    inuse = h.stats().heap_inuse
    h.drop(big)
    assert h.span_of(big).state == "inuse"
    h.gc()
    assert h.span_of(big).state == "free"
    assert h.stats().heap_inuse == inuse - (1 << 20)
    assert h.stats().frees == 1


def test_tiny_block_dies_when_none_of_its_objects_is_reachable():
    h = gc_heap()
    a = h.alloc(4, noscan=True)
    b = h.alloc(4, noscan=True)
    assert b == a + 4                         # one block
    h.alloc(16, noscan=True)                  # keeps the span in use
    base = h.span_of(a).base
    slot = (a - base) // 16
    h.drop(a)
    h.gc()                                    # b is still reachable
    assert h.span_objects(base).states[slot] == goalloc.SLOT_LIVE
    h.drop(b)
    # after a cycle no P packs into an old block (prepareForSweep)
    assert h.caches()[0].tiny == 0
    h.gc()
    assert h.span_objects(base).states[slot] == goalloc.SLOT_FREE
    h.verify()


def test_current_tiny_block_survives_the_cycle_it_is_current_in():
    """gcMarkTinyAllocs greys every P's tiny block, so a block whose
    objects were all dropped survives the cycle it is current in."""
    h = gc_heap()
    a = h.alloc(4, noscan=True)
    h.alloc(16, noscan=True)                  # keeps the span in use
    base = h.span_of(a).base
    h.drop(a)
    h.gc()
    assert h.span_objects(base).states[(a - base) // 16] == \
        goalloc.SLOT_DROPPED
    h.gc()
    assert h.span_objects(base).states[(a - base) // 16] == \
        goalloc.SLOT_FREE


def test_reused_slot_needs_zeroing():
    """A sweep that frees objects in a span that stays in use sets its
    needzero (mcentral.freeSpan): the slot comes back zeroed."""
    h = gc_heap(backing="os")
    p = h.alloc(64)
    h.alloc(64)                      # keeps the span in use
    h.view(p, 64)[:] = b"\xAA" * 64
    h.drop(p)
    h.gc()
    assert h.span_of(p).needzero
    q = h.alloc(64)
    assert q == p
    assert bytes(h.view(q, 64)) == bytes(64)


def test_free_os_memory_releases_every_free_page():
    h = gc_heap()
    ps = [h.alloc(100_000) for _ in range(50)]
    for p in ps:
        h.drop(p)
    h.free_os_memory()
    st = h.stats()
    assert st.heap_alloc == 0
    assert st.heap_released == st.heap_idle
    assert h.gc_cycles()[-1].forced


def test_same_ops_give_the_same_heap():
    def run():
        h = gc_heap(background_sweep=0)
        live = []
        for i in range(60_000):
            live.append(h.alloc((i * 37) % 3000 + 1, noscan=i % 3 == 0))
            if i % 3:
                h.drop(live.pop((i * 7919) % len(live)))
        return h.digest(), h.gc_cycles()
    assert run() == run()


def test_gc_recycles_spans_instead_of_growing():
    """Go's TestGcSys: 100000 allocations of 1029 bytes, one live at a
    time, may grow the heap by at most 16 MiB.  (Sys itself takes the
    whole first 64 MiB arena here, mapped and counted released, as
    go1.13.8's curArena does; what the heap holds is heap_sys -
    heap_released.)"""
    h = gc_heap()
    for _ in range(100_000):
        h.drop(h.alloc(1029))
    st = h.stats()
    assert st.heap_sys - st.heap_released <= 16 * MiB
    assert st.num_gc > 10


def test_replay_treats_frees_as_drops():
    from goalloc import Trace
    ops = []
    for i in range(200_000):
        ops.append(("alloc", i, 48))
        if i >= 10:
            ops.append(("free", i - 10))
    ops.append(("alloc", 200_000, 0))
    ops.append(("free", 200_000))
    t = Trace.from_ops(ops)
    h = gc_heap()
    h.replay(t)
    st = h.stats()
    assert st.num_gc > 0
    assert st.heap_objects >= 10
    h.verify()


def test_object_array_flags_dropped_objects_until_swept():
    h = gc_heap(background_sweep=0)
    keep = h.alloc(48)
    gone = h.alloc(48)
    tiny = h.alloc(4, noscan=True)
    big = h.alloc(100_000)
    for a in (gone, tiny, big):
        h.drop(a)
    oa = h.object_array()
    flags = dict(zip(oa["addr"].tolist(), oa["dropped"].tolist(),
                     strict=True))
    assert flags == {keep: 0, gone: 1, tiny: 1, big: 1}
    h.gc()
    oa = h.object_array()
    # the tiny block was P 0's current one: it survives this cycle, and
    # still shows its dropped object
    assert dict(zip(oa["addr"].tolist(), oa["dropped"].tolist(),
                    strict=True)) == {keep: 0, tiny: 1}
    sa = h.span_array()
    sg = h.gc_state().sweepgen
    inuse = sa[sa["state"] == goalloc.arrays.SPAN_STATES.index("inuse")]
    assert set(inuse["sweepgen"].tolist()) <= {sg, sg + 3}


def test_timeline_plot_shows_the_sawtooth_and_marks_each_cycle():
    from goalloc import plot, workloads
    trace = workloads.go_mix(100_000, live=3000, seed=1)
    with gc_heap() as h:
        tl = h.replay(trace, sample_every=1)
        records = h.gc_cycles()
    cycles = int(tl.num_gc[-1])
    assert cycles > 3
    # after the op that ran a cycle heap_live is heap_marked, below what
    # it was: the sawtooth
    drops = (tl.num_gc[1:] > tl.num_gc[:-1])
    after, before = tl.heap_live[1:][drops], tl.heap_live[:-1][drops]
    assert (after == tl.heap_marked[1:][drops]).all()
    assert [c.heap_marked for c in records][-len(after):] == \
        after.tolist()[-len(records):]
    # once the live set is steady, each cycle frees what was dropped
    assert all(c.heap_marked < c.heap_live_trigger for c in records[3:])
    assert (after[3:] < before[3:]).mean() > 0.5
    fig = plot.timeline(tl)
    ax = fig.axes[0]
    labels = [ln.get_label() for ln in ax.get_lines()]
    assert "heap_live" in labels and "next_gc" in labels
    marks = [ln for ln in ax.get_lines()
             if ln.get_linestyle() == ":" and len(ln.get_xdata()) == 2
             and ln.get_xdata()[0] == ln.get_xdata()[1]]
    # one mark per sample where num_gc rose (cycles close together may
    # share a sample)
    assert len(marks) == int(drops.sum()) > 3
    assert labels.count("GC cycle") == 1


# ---- docs/misuse.md rows ----------------------------------------------------

def test_row_drop_twice():
    h = gc_heap()
    p, keep, big = h.alloc(48), h.alloc(48), h.alloc(100_000)
    tiny = h.alloc(4, noscan=True)
    h.alloc(16, noscan=True)
    for a in (p, big, tiny):
        h.drop(a)
        rejected(h, DoubleFreeError, h.drop, a, match="already dropped")
    h.gc()
    for a in (p, big):
        rejected(h, DoubleFreeError, h.drop, a, match="collected")
    h.drop(keep)


def test_row_drop_not_an_object():
    h = gc_heap()
    p = h.alloc(48)
    big = h.alloc(100_000)
    for a in (p + 8, big + 16, 0x7F0000000000, h.info().zerobase,
              h.span_of(p).limit):
        rejected(h, InvalidFreeError, h.drop, a, exact=False, match="drop")
    for a in (-1, 2**64):
        rejected(h, InvalidFreeError, h.drop, a)


def test_row_wrong_collector():
    h = gc_heap()
    p = h.alloc(48)
    rejected(h, WrongCollectorError, h.free, p, bases=(TypeError,),
             match="collector='gc'")
    rejected(h, WrongCollectorError, h.free_many, [p])
    trace = goalloc.Trace.from_ops([("alloc", 0, 48), ("free", 0)])
    h.replay(trace)                       # the free is a drop here
    assert h.span_objects(h.span_of(p).base).states.count(
        goalloc.SLOT_DROPPED) == 1
    f = goalloc.Heap(backing="virtual")
    q = f.alloc(48)
    for call, args in ((f.drop, (q,)), (f.gc, ()), (f.free_os_memory, ())):
        rejected(f, WrongCollectorError, call, *args, match="collector='gc'")


def test_row_bad_gc_options():
    for kw in ({"collector": "refcount"}, {"collector": ""},
               {"collector": "gc", "background_sweep": -1},
               {"collector": "gc", "background_sweep": 2**31},
               {"gogc": 2**40}):
        with pytest.raises(ValueError):
            goalloc.Heap(backing="virtual", **kw)
    for kw in ({"collector": 1}, {"background_sweep": "all"},
               {"gogc": 1.5}):
        with pytest.raises(TypeError):
            goalloc.Heap(backing="virtual", **kw)
    h = gc_heap()
    rejected(h, TypeError, h.set_gc_percent, 1.5)
    rejected(h, TypeError, h.set_gc_percent, "on")
    rejected(h, ValueError, h.set_gc_percent, 2**40)


@pytest.mark.parametrize("on", [True, False])
def test_background_scavenger_runs_on_the_simulated_clock(on):
    """After the live heap shrinks, gcPaceScavenger gives the background
    scavenger the excess over its goal to release at one page per
    millisecond of the simulated clock (design §14.11); it releases as
    allocation moves the clock on, up to a huge page ahead (Go's
    scavengeLocked rounds to huge pages).  Off: only growth and
    free_os_memory() scavenge."""
    h = gc_heap(background_scavenge=on)
    ps = [h.alloc(1 << 20) for _ in range(40)]
    h.gc()
    for p in ps:
        h.drop(p)
    h.gc()
    g = h.gc_state()
    assert g.heap_retained > g.scavenge_goal
    assert g.scavenge_bytes_per_ns == pytest.approx(4096 / 1e6)  # 4 KiB/ms
    released, clock, cycles = h.stats().heap_released, g.clock_ns, g.num_gc
    for _ in range(20_000):
        h.alloc(64)
    g = h.gc_state()
    assert g.num_gc == cycles                     # no cycle re-paced it
    grew = h.stats().heap_released - released
    due = (g.clock_ns - clock) * g.scavenge_bytes_per_ns
    if on:
        assert due <= grew <= due + (2 << 20) + 8192
    else:
        assert grew == 0
    # the next cycle's record counts what was released since the last
    h.gc()
    assert h.gc_cycles()[-1].heap_released >= grew
    h.verify()
