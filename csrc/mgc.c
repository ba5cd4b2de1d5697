/* The collector's cycle and its pacer (GC mode).  See mgc.h.
 *
 * A cycle starts where Go's mallocgc starts one (an allocation that
 * refilled an mcache or was large, with heap_live at or past gc_trigger)
 * or when the caller asks (ga_gc, runtime.GC).  It runs at once, the
 * world stopped (design §14.2): it finishes the last cycle's sweep,
 * marks every object the program has not dropped (plus each P's tiny
 * block), picks the next trigger ratio (endCycle), sets heap_marked and
 * heap_live to the bytes marked, starts the sweep phase (sweepgen += 2),
 * paces the next cycle, the proportional sweeper and the scavenger
 * (gcSetTriggerRatio, gcPaceScavenger), and flushes every P's mcache
 * (prepareForSweep).  Then the background sweeper takes its share.
 * Go 1.13: src/runtime/mgc.go (gcinit, setGCPercent, gcStart,
 *          gcMarkTermination, gcSweep, gcSetTriggerRatio,
 *          (*gcControllerState).startCycle and endCycle, GC),
 *          mgcscavenge.go (gcPaceScavenger's goal), mcache.go
 *          (prepareForSweep).
 * Differs from Go: no concurrent mark, so no assists and no black
 *          allocation; the clock is simulated (design §14.7); no
 *          workbufs, finalizers or the 2-minute forced GC (design
 *          §14.9).
 * Locking: one thread drives a GC-mode heap (design §14.8).
 */
#include "goalloc.h"

#include <stdlib.h>
#include <string.h>

#include "arith.h"
#include "mbitmap.h"
#include "mheap.h"
#include "scavenge.h"
#include "tiny.h"

/* Go's pacing constants (mgc.go) and the scavenger's margin
 * (mgcscavenge.go). */
#define DEFAULT_HEAP_MINIMUM ((uint64_t)4 << 20)
#define GCINIT_TRIGGER_RATIO (7 / 8.0)
#define SWEEP_MIN_HEAP_DISTANCE ((uint64_t)1 << 20)
#define GC_GOAL_UTILIZATION 0.30
#define GC_BACKGROUND_UTILIZATION 0.25
#define TRIGGER_GAIN 0.5
#define RETAIN_EXTRA_PERCENT 10
/* The simulated clock starts one second after the epoch, so that a
 * cycle's LastGC is never 0 (design §14.7). */
#define CLOCK_START_NS 1000000000ull

/* go_f64_to_u64 is Go's uint64(f) on amd64 for f >= 0: values of 2^63
 * and more are converted by subtracting 2^63 and setting the top bit,
 * and what does not fit in 64 bits comes out as 0 (CVTTSD2SQ's
 * "indefinite" 1<<63, xored with the top bit), where C leaves it
 * undefined. */
static uint64_t
go_f64_to_u64(double f)
{
    const double two63 = 9223372036854775808.0;
    if (!(f >= 0)) {
        return 0; /* not reached by the pacer: its inputs are >= 0 */
    }
    if (f < two63) {
        return (uint64_t)f;
    }
    if (f - two63 >= two63) {
        return 0;
    }
    return (uint64_t)(f - two63) ^ ((uint64_t)1 << 63);
}

/* ---- The pacer -------------------------------------------------- */

/* scavenge_goal_paced is gcPaceScavenger's goal for h's release:
 * go1.13.8 scales the heap in use at the last cycle's end by how the
 * goal moved, go1.13.0 takes next_gc; both add 10 % and round up to the
 * OS page.  go1.13.8 sets none until a cycle has ended (*set false). */
static uint64_t
scavenge_goal_paced(const mheap *h, bool *set)
{
    const gcstate *g = &h->gc;
    uint64_t goal;
    *set = true;
    if (h->release == GA_RELEASE_GO1_13_0) {
        goal = g->next_gc;
    }
    else if (g->last_next_gc == 0) {
        *set = false;
        return 0;
    }
    else {
        double ratio = (double)g->next_gc / (double)g->last_next_gc;
        goal = go_f64_to_u64((double)g->last_heap_inuse * ratio);
    }
    goal += goal / (100 / RETAIN_EXTRA_PERCENT);
    uint64_t phys = h->plat.phys_page_size;
    return (goal + phys - 1) & ~(phys - 1); /* wraps as Go's uint64 */
}

/* Go's scavenger pace (mgcscavenge.go): one page, regular or huge, per
 * millisecond. */
#define SCAVENGE_PAGE_PERIOD_NS 1000000ull

/* pace_scavenger is the rest of gcPaceScavenger once the goal is set:
 * when the heap retains more than the goal, the background scavenger
 * gets the time to release the excess at one page per millisecond, huge
 * pages first (their work counts as one page each), from now on. */
static void
pace_scavenger(mheap *h, uint64_t goal)
{
    gcstate *g = &h->gc;
    uint64_t retained = heap_retained(h);
    if (retained <= goal) {
        g->scavenge_bytes_per_ns = 0;
        return;
    }
    uint64_t work = retained - goal;
    uint64_t regular = work;
    uint64_t huge_time = 0;
    uint64_t huge = h->plat.phys_huge_page_size;
    if (huge != 0) {
        uint64_t huge_work = h->free.unscav_huge_pages * huge;
        if (huge_work >= work) {
            huge_work = work / huge * huge;
        }
        regular = work - huge_work;
        huge_time = huge_work / huge * SCAVENGE_PAGE_PERIOD_NS;
    }
    uint64_t time = huge_time +
                    regular / h->plat.phys_page_size * SCAVENGE_PAGE_PERIOD_NS;
    g->scavenge_retained_basis = retained;
    g->scavenge_time_basis = gc_clock_ns(h);
    /* work is whole pages (goal and retained are), so time > 0 */
    g->scavenge_bytes_per_ns = (double)work / (double)time;
}

void
gc_background_scavenge(mheap *h)
{
    gcstate *g = &h->gc;
    if (!g->enabled || !g->bgscavenge || g->scavenge_bytes_per_ns == 0) {
        return;
    }
    mheap_lock(h);
    uint64_t retained = heap_retained(h);
    if (retained <= h->scavenge_goal) {
        g->scavenge_bytes_per_ns = 0; /* parks until the next pacing */
    }
    else {
        uint64_t t = gc_clock_ns(h) - g->scavenge_time_basis;
        uint64_t done = go_f64_to_u64(g->scavenge_bytes_per_ns * (double)t);
        /* Go's uint64 arithmetic: past the basis, want wraps and nothing
         * is released */
        uint64_t want = g->scavenge_retained_basis - done;
        if (retained > want) {
            mheap_scavenge_locked(h, retained - want);
        }
    }
    mheap_unlock(h);
}

/* set_sweep_pacing: the proportional sweeper's rate, so that every page
 * in use is swept by the time heap_live reaches the trigger, less 1 MiB
 * of slack (gcSetTriggerRatio's second half). */
static void
set_sweep_pacing(mheap *h)
{
    gcstate *g = &h->gc;
    if (g->sweepdone) {
        g->sweep_pages_per_byte = 0;
        return;
    }
    uint64_t live = h->stats.heap_live;
    int64_t distance = (int64_t)g->gc_trigger - (int64_t)live;
    distance -= (int64_t)SWEEP_MIN_HEAP_DISTANCE;
    if (distance < (int64_t)PAGE_SIZE) {
        distance = (int64_t)PAGE_SIZE;
    }
    int64_t pages = (int64_t)h->pages_in_use - (int64_t)g->pages_swept;
    if (pages <= 0) {
        g->sweep_pages_per_byte = 0;
        return;
    }
    g->sweep_pages_per_byte = (double)pages / (double)distance;
    g->sweep_heap_live_basis = live;
    g->pages_swept_basis = g->pages_swept;
}

/* set_trigger_ratio is gcSetTriggerRatio: the goal from heap_marked and
 * GOGC, the ratio clamped to [0, 0.95 GOGC/100], the trigger floored at
 * heapminimum and, while sweeping is pending, 1 MiB above heap_live;
 * then the sweeper's and the scavenger's pacing. */
static void
set_trigger_ratio(mheap *h, double r)
{
    gcstate *g = &h->gc;
    uint64_t goal = UINT64_MAX;
    if (g->gcpercent >= 0) {
        goal = g->heap_marked + g->heap_marked * (uint64_t)g->gcpercent / 100;
    }
    if (r < 0) {
        r = 0;
    }
    else if (g->gcpercent >= 0) {
        double max = 0.95 * (double)g->gcpercent / 100;
        if (r > max) {
            r = max;
        }
    }
    g->trigger_ratio = r;
    uint64_t trigger = UINT64_MAX;
    if (g->gcpercent >= 0) {
        trigger = go_f64_to_u64((double)g->heap_marked * (1 + r));
        uint64_t min = g->heapminimum;
        if (!g->sweepdone) {
            uint64_t sweep_min = h->stats.heap_live + SWEEP_MIN_HEAP_DISTANCE;
            min = sweep_min > min ? sweep_min : min;
        }
        trigger = trigger < min ? min : trigger;
        if ((int64_t)trigger < 0) {
            throw(h, "gc_trigger underflow");
        }
        goal = trigger > goal ? trigger : goal;
    }
    g->gc_trigger = trigger;
    g->next_gc = goal;
    set_sweep_pacing(h);
    bool set;
    uint64_t sgoal = scavenge_goal_paced(h, &set);
    if (set && g->enabled) { /* explicit free keeps the option's goal */
        h->scavenge_goal = sgoal;
        pace_scavenger(h, sgoal);
    }
}

/* set_gc_percent is setGCPercent: GOGC, heapminimum scaled by it, and
 * the pacing redone with the stored ratio. */
static void
set_gc_percent(mheap *h, int64_t in)
{
    gcstate *g = &h->gc;
    g->gcpercent = in < 0 ? -1 : in;
    /* Go computes this even for -1, where it overflows; it is unused
     * then (the trigger is ^0). */
    g->heapminimum = g->gcpercent < 0
                         ? 0
                         : DEFAULT_HEAP_MINIMUM * (uint64_t)g->gcpercent / 100;
    set_trigger_ratio(h, g->trigger_ratio);
}

void
gc_init(mheap *h, int64_t gcpercent)
{
    gcstate *g = &h->gc;
    g->sweepdone = true; /* "No sweep on the first cycle" */
    g->trigger_ratio = GCINIT_TRIGGER_RATIO;
    g->heap_marked = (uint64_t)((double)DEFAULT_HEAP_MINIMUM /
                                (1 + g->trigger_ratio));
    set_gc_percent(h, gcpercent);
}

uint64_t
gc_initial_next_gc(int64_t gcpercent)
{
    /* the pacer on a heap of its own, with nothing allocated */
    static const mheap zero;
    mheap h = zero;
    h.plat.phys_page_size = 4096;
    gc_init(&h, gcpercent);
    return h.gc.next_gc;
}

/* end_cycle_ratio is endCycle: the next trigger ratio from how far the
 * heap got past the trigger (h_a) against the goal (h_g), with the
 * background utilization alone (no assists, design §14.2).  A forced
 * cycle keeps the ratio. */
static double
end_cycle_ratio(const mheap *h, bool forced)
{
    const gcstate *g = &h->gc;
    if (forced) {
        return g->trigger_ratio;
    }
    double marked = (double)g->heap_marked;
    double goal_growth = ((double)g->next_gc - marked) / marked;
    if (g->next_gc < g->heap_marked) {
        goal_growth = 0;
    }
    double actual_growth = (double)h->stats.heap_live / marked - 1;
    double u = GC_BACKGROUND_UTILIZATION;
    double err = goal_growth - g->trigger_ratio -
                 u / GC_GOAL_UTILIZATION * (actual_growth - g->trigger_ratio);
    return g->trigger_ratio + TRIGGER_GAIN * err;
}

/* ---- The cycle ------------------------------------------------------ */

uint64_t
gc_clock_ns(const mheap *h)
{
    uint64_t asked = h->large_requested;
    for (int p = 0; p < h->nprocs; p++) {
        asked += h->caches[p]->local_requested;
    }
    return CLOCK_START_NS + asked;
}

/* cycles_room makes room for one more record before the cycle changes
 * anything: a cycle that cannot record itself does not start. */
static bool
cycles_room(mheap *h)
{
    gcstate *g = &h->gc;
    if (g->ncycles < g->cycles_cap) {
        return true;
    }
    uint64_t cap = g->cycles_cap == 0 ? 16 : 2 * g->cycles_cap;
    ga_gc_cycle *c = realloc(g->cycles, cap * sizeof(*c));
    if (c == NULL) {
        return false;
    }
    g->cycles = c;
    g->cycles_cap = cap;
    return true;
}

/* prepare_for_sweep is mcache.prepareForSweep for every P, in P order
 * (design §14.3): each forgets its tiny block and gives its spans back,
 * which sweeps the ones cached before the cycle. */
static void
prepare_for_sweep(mheap *h)
{
    for (int p = 0; p < h->nprocs; p++) {
        mcache *c = h->caches[p];
        if (c->flush_gen == h->sweepgen) {
            continue;
        }
        if (c->flush_gen != h->sweepgen - 2) {
            throw(h, "bad flushGen");
        }
        c->tiny = 0;
        c->tiny_marks = NULL;
        c->tiny_span = NULL;
        c->tinyoffset = 0;
        mcache_release_all(h, c);
        c->flush_gen = h->sweepgen;
    }
}

/* start_sweep is gcSweep: the sweep phase of the cycle that just
 * ended. */
static void
start_sweep(mheap *h)
{
    gcstate *g = &h->gc;
    mheap_lock(h);
    h->sweepgen += 2;
    g->sweepdone = false;
    if (sweep_buf_of(h, false)->top != NULL) {
        throw(h, "non-empty swept list");
    }
    g->pages_swept = 0;
    g->reclaim_index = 0;
    g->reclaim_credit = 0;
    mheap_unlock(h);
}

/* run_cycle is one whole cycle, from gcStart to the mcache flush. */
static void
run_cycle(mheap *h, bool forced)
{
    gcstate *g = &h->gc;
    ga_gc_cycle r = {0};
    r.forced = forced;
    r.heap_live_trigger = h->stats.heap_live;
    r.gc_trigger = g->gc_trigger;
    r.pages_swept = g->pages_swept;
    g->running = true;
    /* gcStart: the leftovers of the last sweep, then finishsweep_m */
    while (sweepone(h) != UINT64_MAX) {
        g->nbgsweep++;
    }
    finish_sweep(h);
    for (int p = 0; p < h->nprocs; p++) {
        if (h->caches[p]->flush_gen != h->sweepgen) {
            throw(h, "p mcache not flushed");
        }
    }
    /* startCycle: the goal is at least 1 MiB past the heap */
    uint64_t floor = h->stats.heap_live + SWEEP_MIN_HEAP_DISTANCE;
    g->next_gc = g->next_gc < floor ? floor : g->next_gc;
    g->bytes_marked = gc_mark(h);
    double ratio = end_cycle_ratio(h, forced);
    /* gcMarkTermination */
    g->heap_marked = g->bytes_marked;
    h->stats.heap_live = g->bytes_marked;
    start_sweep(h);
    g->last_next_gc = g->next_gc;
    g->last_heap_inuse = h->stats.heap_inuse;
    mheap_lock(h);
    set_trigger_ratio(h, ratio);
    mheap_unlock(h);
    g->last_gc_ns = gc_clock_ns(h);
    g->numforcedgc += forced ? 1 : 0;
    g->numgc++;
    r.num = g->numgc;
    r.heap_marked = g->heap_marked;
    r.next_gc = g->next_gc;
    r.next_trigger = g->gc_trigger;
    r.trigger_ratio = g->trigger_ratio;
    /* every release: growth, the background scavenger, scavenge() */
    r.heap_released = h->scavenged_total - g->scavenged_at_cycle;
    r.clock_ns = g->last_gc_ns;
    g->scavenged_at_cycle = h->scavenged_total;
    g->cycles[g->ncycles++] = r; /* gc_maybe_start made room */
    prepare_for_sweep(h);
    g->running = false;
    if (g->bgsweep < 0) {
        gc_background_sweep(h);
    }
}

void
gc_after_slow_alloc(mheap *h)
{
    gcstate *g = &h->gc;
    if (g->bgsweep >= 0) {
        gc_background_sweep(h);
    }
    gc_background_scavenge(h);
    if (!g->enabled || g->running || h->stats.heap_live < g->gc_trigger ||
        !cycles_room(h)) {
        return;
    }
    run_cycle(h, false);
}

/* ---- The facade ------------------------------------------------------ */

/* gc_protected runs fn(h, arg) in a protected call; only on a GC-mode
 * heap when gc_only. */
static ga_status
gc_protected(mheap *h, void (*fn)(mheap *, uint64_t), uint64_t arg,
             bool gc_only)
{
    if (heap_poisoned(h) != NULL) {
        return GA_EPOISONED;
    }
    if (gc_only && !h->gc.enabled) {
        return GA_EUNSUPPORTED;
    }
    protect_frame pf; /* a throw lands here (throw.h) */
    protect_push(&pf);
    if (setjmp(pf.jb) != 0) {
        protect_pop(&pf);
        return GA_EPOISONED;
    }
    fn(h, arg);
    protect_pop(&pf);
    return GA_OK;
}

/* full_gc is runtime.GC: a forced cycle, then every span swept. */
static void
full_gc(mheap *h, uint64_t unused)
{
    (void)unused;
    run_cycle(h, true);
    while (sweepone(h) != UINT64_MAX) {
    }
}

/* free_os_memory is debug.FreeOSMemory: runtime.GC, then scavengeAll. */
static void
free_os_memory(mheap *h, uint64_t unused)
{
    full_gc(h, unused);
    mheap_lock(h);
    mheap_scavenge_locked(h, UINT64_MAX);
    mheap_unlock(h);
}

static void
set_gogc(mheap *h, uint64_t in)
{
    mheap_lock(h);
    set_gc_percent(h, (int64_t)in);
    mheap_unlock(h);
}

ga_status
ga_gc(ga_heap *h)
{
    if (h->gc.enabled && !cycles_room(h)) {
        mheap_refuse(h, "out of process memory for GC records");
        return GA_ENOMEM;
    }
    return gc_protected(h, full_gc, 0, true);
}

ga_status
ga_free_os_memory(ga_heap *h)
{
    if (h->gc.enabled && !cycles_room(h)) {
        mheap_refuse(h, "out of process memory for GC records");
        return GA_ENOMEM;
    }
    return gc_protected(h, free_os_memory, 0, true);
}

ga_status
ga_set_gc_percent(ga_heap *h, int gogc, int *old)
{
    if (heap_poisoned(h) != NULL) {
        return GA_EPOISONED;
    }
    *old = (int)h->gc.gcpercent;
    return gc_protected(h, set_gogc, (uint64_t)(int64_t)(gogc < 0 ? -1 : gogc),
                        false);
}

void
ga_gc_state_get(ga_heap *h, ga_gc_state *out)
{
    const gcstate *g = &h->gc;
    memset(out, 0, sizeof(*out));
    out->enabled = g->enabled;
    out->gogc = (int)g->gcpercent;
    out->phase = g->sweepdone ? "off" : "sweep";
    out->sweepgen = h->sweepgen;
    out->heap_live = h->stats.heap_live;
    out->heap_marked = g->heap_marked;
    out->gc_trigger = g->gc_trigger;
    out->next_gc = g->next_gc;
    out->trigger_ratio = g->trigger_ratio;
    out->heapminimum = g->heapminimum;
    out->pages_swept = g->pages_swept;
    out->pages_in_use = h->pages_in_use;
    out->sweep_pages_per_byte = g->sweep_pages_per_byte;
    out->reclaim_credit = g->reclaim_credit;
    out->scavenge_goal = h->scavenge_goal;
    out->heap_retained = heap_retained(h);
    out->scavenge_bytes_per_ns = g->scavenge_bytes_per_ns;
    out->num_gc = g->numgc;
    out->background_sweep = (int)g->bgsweep;
    out->clock_ns = gc_clock_ns(h);
}

size_t
ga_gc_cycles(ga_heap *h, ga_gc_cycle *out, size_t cap)
{
    const gcstate *g = &h->gc;
    for (size_t i = 0; i < cap && i < g->ncycles; i++) {
        out[i] = g->cycles[i];
    }
    return (size_t)g->ncycles;
}
