/* The GC cycle and its pacer (csrc/mgc.c, mgcmark.c, the trigger tests
 * of malloc.c and tiny.c, the gcBits epochs of mbitmap.c): gcinit's
 * pacing per GOGC, where a cycle may start, heap_live and heap_marked
 * after a cycle, GOGC=off, finishsweep at the next cycle, large objects
 * and tiny blocks through cycles, and GCSys in a steady state.
 *
 * Go 1.13: src/runtime/mgc.go (gcinit, setGCPercent, gcStart,
 *          gcMarkTermination, gcSetTriggerRatio), mgcmark.go
 *          (gcMarkTinyAllocs), malloc.go (mallocgc's shouldhelpgc),
 *          mheap.go (nextMarkBitArenaEpoch).
 * Differs from Go: the cycle runs within the call that starts it
 *          (design §14.2).
 * Locking: single-threaded.
 */
#include "gc_helpers.h"

#define SZ 2048 /* class 37: 4 objects per one-page span */

static span_class
spc_of(void)
{
    return make_span_class(size_to_class(SZ), false);
}

static ga_gc_state
state_of(mheap *h)
{
    ga_gc_state s;
    ga_gc_state_get(h, &s);
    return s;
}

static ga_gc_cycle
last_cycle(mheap *h)
{
    ga_gc_cycle r[64];
    memset(r, 0, sizeof r);
    size_t n = ga_gc_cycles(h, r, 64);
    CHECK(n >= 1 && n <= 64);
    return r[n >= 1 && n <= 64 ? n - 1 : 0];
}

/* gcinit's pacing (design §14.3's table), on GC-mode and explicit-free
 * heaps alike. */
static void
test_gcinit_pacing(void)
{
    static const struct {
        int gogc;
        uint64_t trigger, goal;
    } rows[] = {
        {100, 4194304, 4473924},      {50, 3299518, 3355443},
        {200, 8388608, 8388608},      {0, 2236962, 2236962},
        {-1, UINT64_MAX, UINT64_MAX},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        for (int collector = 0; collector < 2; collector++) {
            ga_options o;
            ga_options_init(&o);
            o.backing = GA_BACKING_VIRTUAL;
            o.collector = collector ? GA_COLLECTOR_GC : GA_COLLECTOR_FREE;
            o.gogc = rows[i].gogc;
            ga_status st;
            char err[200];
            mheap *h = ga_heap_new(&o, &st, err, sizeof err);
            if (!CHECK_MSG(h != NULL, "%s", err)) {
                continue;
            }
            ga_gc_state s = state_of(h);
            CHECK_MSG(s.gc_trigger == rows[i].trigger &&
                          s.next_gc == rows[i].goal,
                      "GOGC %d (%s): trigger %" PRIu64 " goal %" PRIu64,
                      rows[i].gogc, collector ? "gc" : "free", s.gc_trigger,
                      s.next_gc);
            /* 7/8, clamped to 0.95 GOGC/100 */
            double r = rows[i].gogc < 0 || rows[i].gogc >= 100
                           ? 7 / 8.0
                           : 0.95 * rows[i].gogc / 100;
            CHECK(s.trigger_ratio == r && s.num_gc == 0);
            CHECK(s.heapminimum ==
                  (rows[i].gogc < 0 ? 0
                                    : 4 * MiB * (uint64_t)rows[i].gogc / 100));
            CHECK(gc_initial_next_gc(rows[i].gogc) == rows[i].goal);
            CHECK(gc_stats(h).next_gc == rows[i].goal);
            ga_heap_free(h);
        }
    }
}

/* fast: the allocation of size on P 0 will be served by the span P 0
 * has cached for its class, without a refill. */
static bool
fast(mheap *h, uint64_t size, bool noscan)
{
    span_class spc = make_span_class(size_to_class(size), noscan);
    const mspan *s = h->caches[0]->alloc[spc];
    return s != &h->emptymspan && s->alloc_count < s->nelems;
}

/* A cycle starts after a refill or a large allocation with heap_live
 * at the trigger; an allocation from the cached span or the tiny block
 * never starts one, even with heap_live past the trigger. */
static void
test_trigger_only_after_refill_or_large(void)
{
    mheap *h = GC_HEAP(100, -1, 1);
    gcstate *g = &h->gc;
    int fast_cycles = 0, cycles = 0;
    for (int i = 0; i < 3000; i++) { /* 6 MiB: one cycle */
        bool f = fast(h, SZ, false);
        uint64_t n0 = g->numgc;
        GALLOC(h, SZ);
        if (g->numgc != n0) {
            cycles++;
            fast_cycles += f;
            ga_gc_cycle r = last_cycle(h);
            CHECK(!r.forced && r.heap_live_trigger >= r.gc_trigger);
        }
        else if (!f) {
            CHECK(h->stats.heap_live < g->gc_trigger); /* tested, no cycle */
        }
    }
    CHECK_MSG(cycles == 1 && fast_cycles == 0, "%d cycles, %d fast", cycles,
              fast_cycles);
    /* GOGC=0 puts the trigger at heap_marked, below heap_live: no cycle
     * until an allocation tests it */
    GALLOC(h, SZ); /* a fresh span: 3 slots left on it */
    while (!fast(h, SZ, false)) {
        GALLOC(h, SZ);
    }
    int old = 0;
    uint64_t n = g->numgc;
    CHECK(ga_set_gc_percent(h, 0, &old) == GA_OK && old == 100);
    CHECK(h->stats.heap_live >= g->gc_trigger && g->numgc == n);
    while (fast(h, SZ, false)) {
        GALLOC(h, SZ);
        CHECK(g->numgc == n);
    }
    GALLOC_P(h, 0, 4, true); /* tiny: a new block, refilled */
    CHECK(g->numgc == ++n);
    /* the cycle dropped P 0's tiny block and span: t refills again, to
     * 1 MiB below the trigger a pending sweep sets */
    ga_addr t = GALLOC_P(h, 0, 4, true);
    CHECK(g->numgc == n && h->stats.heap_live < g->gc_trigger);
    /* with the sweep done, GOGC=0 again: the trigger is heap_marked,
     * below heap_live (the tiny span's free slots) */
    CHECK(ga_set_gc_percent(h, 0, &old) == GA_OK && old == 0);
    CHECK(h->stats.heap_live >= g->gc_trigger);
    ga_addr t2 = GALLOC_P(h, 0, 4, true); /* packed into t's block */
    CHECK(t2 == t + 4 && g->numgc == n);
    GALLOC_P(h, 0, 12, true); /* a new block from the cached span */
    GALLOC_P(h, 0, 16, true); /* 16-byte noscan: the cached span */
    CHECK(g->numgc == n);
    GALLOC(h, 40 * KiB); /* large */
    CHECK(g->numgc == ++n);
    ga_gc_cycle r = last_cycle(h);
    CHECK(!r.forced && r.heap_live_trigger >= r.gc_trigger);
    GC_VERIFY(h);
    ga_heap_free(h);
}

/* gcMarkTermination: heap_marked and heap_live are the bytes marked;
 * gcSetTriggerRatio sets the goal and the trigger from them. */
static void
test_heap_marked_after_a_cycle(void)
{
    mheap *h = GC_HEAP(100, -1, 1);
    enum { N = 4096 };
    ga_addr *a = calloc(N, sizeof *a);
    for (int i = 0; i < N; i++) {
        a[i] = GALLOC(h, SZ);
    }
    for (int i = 0; i < N; i += 2) {
        GDROP(h, a[i]);
    }
    uint64_t frees0 = gc_stats(h).frees;
    GGC(h);
    uint64_t marked = (N / 2) * SZ; /* 4 MiB */
    ga_gc_state s = state_of(h);
    CHECK_MSG(s.heap_marked == marked && s.heap_live == marked,
              "heap_marked %" PRIu64 " heap_live %" PRIu64, s.heap_marked,
              s.heap_live);
    double r = s.trigger_ratio;
    CHECK(r > 0 && r <= 0.95);
    uint64_t trigger = (uint64_t)((double)marked * (1 + r));
    trigger = trigger < marked + MiB ? marked + MiB : trigger;
    CHECK_MSG(s.gc_trigger == trigger, "trigger %" PRIu64 " want %" PRIu64,
              s.gc_trigger, trigger);
    CHECK(s.next_gc == (2 * marked > trigger ? 2 * marked : trigger));
    ga_gc_cycle c = last_cycle(h);
    CHECK(c.forced && c.heap_marked == marked && c.next_gc == s.next_gc &&
          c.next_trigger == s.gc_trigger && c.trigger_ratio == r);
    ga_mem_stats ms = gc_stats(h);
    CHECK(ms.heap_alloc == marked && ms.heap_objects == N / 2);
    CHECK(ms.num_forced_gc == 1 && ms.num_gc == s.num_gc);
    CHECK(ms.frees - frees0 <= N / 2 && ms.frees == N / 2);
    /* GOGC=50: the goal is 1.5 heap_marked, the ratio clamped to 0.475 */
    int old;
    CHECK(ga_set_gc_percent(h, 50, &old) == GA_OK && old == 100);
    s = state_of(h);
    CHECK(s.next_gc == marked + marked / 2 && s.trigger_ratio <= 0.475);
    GC_VERIFY(h);
    free(a);
    ga_heap_free(h);
}

/* GOGC=off: no cycle however large the heap; runtime.GC still runs
 * one; SetGCPercent turns pacing back on at once. */
static void
test_gogc_off(void)
{
    mheap *h = GC_HEAP(-1, -1, 1);
    ga_addr a[40];
    for (int i = 0; i < 40; i++) {
        a[i] = GALLOC(h, MiB);
        GALLOC(h, SZ);
    }
    ga_gc_state s = state_of(h);
    CHECK(s.num_gc == 0 && s.gc_trigger == UINT64_MAX &&
          s.next_gc == UINT64_MAX && s.heap_live > 40 * MiB);
    for (int i = 0; i < 40; i++) {
        GDROP(h, a[i]);
    }
    GGC(h);
    s = state_of(h);
    CHECK(s.num_gc == 1 && s.gc_trigger == UINT64_MAX &&
          s.next_gc == UINT64_MAX && s.heap_marked == 40 * SZ);
    CHECK(gc_stats(h).heap_alloc == 40 * SZ);
    int old;
    CHECK(ga_set_gc_percent(h, 100, &old) == GA_OK && old == -1);
    s = state_of(h);
    CHECK(s.gogc == 100 && s.gc_trigger == 4 * MiB && s.next_gc == 4 * MiB);
    GC_VERIFY(h);
    ga_heap_free(h);
}

/* gcStart sweeps what the last sweep phase left (finishsweep_m) before
 * it marks: spans left unswept by one cycle are swept by the next. */
static void
test_next_cycle_finishes_the_sweep(void)
{
    mheap *h = GC_HEAP(100, 0, 1);
    ga_addr a[40];
    for (int i = 0; i < 40; i++) {
        a[i] = GALLOC(h, SZ);
    }
    for (int i = 0; i < 40; i += 2) {
        GDROP(h, a[i]);
    }
    START_CYCLE(h);
    /* the cached span was swept by uncacheSpan; nine wait */
    CHECK(count_at(h, -2) == 9 && !h->gc.sweepdone);
    CHECK(gc_stats(h).frees == 2);
    uint64_t swept = h->gc.pages_swept;
    START_CYCLE(h);
    CHECK(last_cycle(h).pages_swept == swept);
    CHECK(gc_stats(h).frees == 20); /* all swept, none of them twice */
    CHECK(count_at(h, -4) == 0 && count_at(h, -2) == 10);
    SWEEPGENS(h);
    GC_VERIFY(h);
    ga_heap_free(h);
}

/* A large object stays allocated, dropped, until its span's sweep
 * sends the span home; a drop after that is a second drop. */
static void
test_large_object_freed_by_its_sweep(void)
{
    mheap *h = GC_HEAP(100, 0, 1);
    ga_addr big = GALLOC(h, 100 * KiB);
    ga_addr kept = GALLOC(h, 40 * KiB);
    GDROP(h, big);
    START_CYCLE(h);
    mspan *s = span_at(h, big);
    CHECK(s->sweepgen == h->sweepgen - 2 && !s->marked);
    CHECK(span_at(h, kept)->marked);
    ga_live_object lo;
    CHECK(live_object(h, big, &lo) && lo.dropped == 1);
    CHECK(gc_stats(h).heap_objects == 2);
    uint64_t pages = 0;
    for (uint64_t r = sweepone(h); r != UINT64_MAX; r = sweepone(h)) {
        pages += r;
    }
    CHECK(pages == 13); /* 100 KiB: 13 pages */
    ga_span_info si;
    CHECK(ga_span_of(h, big, &si) && si.state == MSPAN_FREE);
    CHECK(!live_object(h, big, &lo));
    ga_mem_stats ms = gc_stats(h);
    CHECK(ms.heap_objects == 1 && ms.frees == 1);
    CHECK(ga_drop(h, big) == GA_EDOUBLEFREE);
    s = span_at(h, kept);
    CHECK(s->sweepgen == h->sweepgen && !s->marked);
    SWEEPGENS(h);
    GC_VERIFY(h);
    ga_heap_free(h);
}

/* slot_state: ga_span_objects' state of the slot holding a. */
static int
slot_state(mheap *h, ga_addr a)
{
    mspan *s = span_of(h, a);
    uint8_t st[512];
    if (s == NULL || ga_span_objects(h, mspan_base(s), st, NULL, 512) == 0) {
        return -1;
    }
    return st[(a - mspan_base(s)) / s->elemsize];
}

/* gcMarkTinyAllocs keeps each P's current tiny block through the cycle
 * it is current in, whatever was dropped; otherwise a block lives while
 * one of its objects does. */
static void
test_tiny_blocks_through_cycles(void)
{
    mheap *h = GC_HEAP(100, -1, 1);
    ga_live_object lo;
    GALLOC_P(h, 0, 16, true); /* keeps the tiny class's span in use */
    ga_addr t = GALLOC_P(h, 0, 4, true);
    GDROP(h, t);
    GGC(h);
    CHECK(live_object(h, t, &lo) && lo.dropped == 1); /* was current */
    CHECK(h->caches[0]->tiny == 0);
    GGC(h);
    CHECK(!live_object(h, t, &lo) && slot_state(h, t) == GA_SLOT_FREE);
    ga_addr u[3];
    for (int i = 0; i < 3; i++) {
        u[i] = GALLOC_P(h, 0, 4, true);
    }
    CHECK(u[1] == u[0] + 4 && u[2] == u[0] + 8);
    ga_addr v = GALLOC_P(h, 0, 8, true); /* does not fit: a new block */
    CHECK((v & ~(ga_addr)15) != (u[0] & ~(ga_addr)15));
    CHECK(h->caches[0]->tiny == v);
    GDROP(h, u[0]);
    GDROP(h, u[1]);
    GGC(h);
    CHECK(live_object(h, u[2], &lo) && lo.dropped == 0);
    CHECK(slot_state(h, u[0]) != GA_SLOT_FREE);
    GDROP(h, u[2]);
    GGC(h);
    for (int i = 0; i < 3; i++) {
        CHECK(!live_object(h, u[i], &lo));
    }
    CHECK(slot_state(h, u[0]) == GA_SLOT_FREE);
    CHECK(live_object(h, v, &lo) && lo.dropped == 0);
    CHECK(ga_drop(h, u[1]) == GA_EDOUBLEFREE);
    GC_VERIFY(h);
    ga_heap_free(h);
}

/* The gcBits arenas rotate by epoch at each cycle and are reused: with
 * the same work every cycle, GCSys stops growing. */
static void
test_gc_bits_epochs_reach_a_steady_state(void)
{
    mheap *h = GC_HEAP(100, -1, 1);
    uint64_t sys[10];
    uint64_t arenas[10];
    for (int round = 0; round < 10; round++) {
        ga_addr a[1000];
        for (int i = 0; i < 1000; i++) {
            a[i] = GALLOC(h, SZ);
        }
        for (int i = 0; i < 1000; i++) {
            GDROP(h, a[i]);
        }
        GGC(h);
        sys[round] = gc_stats(h).gc_sys;
        const gc_bits_arenas *b = &h->gc.bits;
        arenas[round] = b->next + b->current + b->previous + b->free;
    }
    CHECK(h->gcbits_sys == arenas[9] * 64 * KiB);
    CHECK(sys[0] > 0 && arenas[0] >= 1);
    for (int round = 4; round < 10; round++) {
        CHECK_MSG(sys[round] == sys[3] && arenas[round] == arenas[3],
                  "round %d: gc_sys %" PRIu64 " (%" PRIu64 " arenas), round "
                  "3: %" PRIu64 " (%" PRIu64 ")",
                  round, sys[round], arenas[round], sys[3], arenas[3]);
    }
    GC_VERIFY(h);
    ga_heap_free(h);
}

/* A GC-mode heap takes no explicit free, and an explicit-free heap no
 * collector call: refused, the heap unchanged. */
static void
test_the_other_collectors_calls_are_refused(void)
{
    mheap *h = GC_HEAP(100, -1, 1);
    ga_addr a = GALLOC(h, SZ);
    uint64_t d = ga_digest(h);
    CHECK(ga_free(h, a) == GA_EUNSUPPORTED && ga_digest(h) == d);
    CHECK(h->caches[0]->alloc[spc_of()] == span_at(h, a));
    ga_heap_free(h);
    ga_options o;
    ga_options_init(&o);
    o.backing = GA_BACKING_VIRTUAL;
    ga_status st;
    char err[200];
    h = ga_heap_new(&o, &st, err, sizeof err);
    a = GALLOC(h, SZ);
    d = ga_digest(h);
    CHECK(ga_drop(h, a) == GA_EUNSUPPORTED && ga_gc(h) == GA_EUNSUPPORTED &&
          ga_free_os_memory(h) == GA_EUNSUPPORTED && ga_digest(h) == d);
    ga_heap_free(h);
}

int
main(void)
{
    CHECK_RUN(test_gcinit_pacing());
    CHECK_RUN(test_trigger_only_after_refill_or_large());
    CHECK_RUN(test_heap_marked_after_a_cycle());
    CHECK_RUN(test_gogc_off());
    CHECK_RUN(test_next_cycle_finishes_the_sweep());
    CHECK_RUN(test_large_object_freed_by_its_sweep());
    CHECK_RUN(test_tiny_blocks_through_cycles());
    CHECK_RUN(test_gc_bits_epochs_reach_a_steady_state());
    CHECK_RUN(test_the_other_collectors_calls_are_refused());
    return check_summary("mgc") != 0;
}
