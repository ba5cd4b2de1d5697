/* Helpers of the GC-mode tests (test_mgc.c, test_mgcsweep.c).
 *
 * A GC-mode heap on the virtual backing, allocation and drop wrappers
 * that check the status, a way to run one automatic cycle without the
 * allocation volume that reaches the trigger, and the sweepgen
 * invariant every test checks after its steps: outside a call no span
 * is being swept (sg - 1) or cached since before the sweep (sg + 1).
 * Every function is static inline: each test file uses a part of them.
 * Go 1.13: src/runtime/mgc.go, mgcsweep.go (what the states mean).
 * Differs from Go: Go's tests use package testing; this is C, and it
 *          reaches into the heap's internals (mheap.h, mgc.h).
 * Locking: single-threaded test programs only (check.h's counters).
 */
#ifndef GA_TESTS_GC_HELPERS_H
#define GA_TESTS_GC_HELPERS_H

#include <inttypes.h>
#include <string.h>

#include "check.h"
#include "goalloc.h"
#include "mbitmap.h"
#include "mgc.h"
#include "mheap.h"
#include "sizeclasses.h"

#define KiB ((uint64_t)1 << 10)
#define MiB ((uint64_t)1 << 20)
#define GO_PAGE ((uint64_t)8192)

/* gc_heap: a linux/amd64 virtual heap with collector=gc; bgsweep < 0 is
 * the default eager background sweeper, K >= 0 sweeps K spans per
 * refill or large allocation (design §14.4). */
#define GC_HEAP(gogc, bgsweep, procs)                                         \
    gc_heap_at((gogc), (bgsweep), (procs), __LINE__)

static inline mheap *
gc_heap_at(int gogc, int bgsweep, int procs, int line)
{
    ga_options o;
    ga_options_init(&o);
    o.backing = GA_BACKING_VIRTUAL;
    o.collector = GA_COLLECTOR_GC;
    o.gogc = gogc;
    o.bgsweep = bgsweep;
    o.procs = procs;
    ga_status st = GA_EPOISONED;
    char err[256] = "";
    mheap *h = ga_heap_new(&o, &st, err, sizeof err);
    if (!CHECK_MSG(h != NULL, "line %d: ga_heap_new: %s", line, err)) {
        exit(1);
    }
    return h;
}

#define GC_VERIFY(h) gc_verify_at((h), __LINE__)

static inline bool
gc_verify_at(mheap *h, int line)
{
    char msg[512] = "";
    bool ok = ga_verify(h, msg, sizeof msg);
    return CHECK_MSG(ok, "line %d: ga_verify: %s", line, msg);
}

#define GALLOC(h, size) galloc_at((h), 0, (size), false, __LINE__)
#define GALLOC_P(h, p, size, noscan)                                          \
    galloc_at((h), (p), (size), (noscan), __LINE__)

static inline ga_addr
galloc_at(mheap *h, int p, uint64_t size, bool noscan, int line)
{
    ga_addr a = 0;
    ga_status st = ga_malloc(h, p, size, noscan, &a);
    CHECK_MSG(st == GA_OK, "line %d: ga_malloc(%" PRIu64 ") = %s", line, size,
              ga_status_name(st));
    return a;
}

#define GDROP(h, a) gdrop_at((h), (a), __LINE__)

static inline void
gdrop_at(mheap *h, ga_addr a, int line)
{
    ga_status st = ga_drop(h, a);
    CHECK_MSG(st == GA_OK, "line %d: ga_drop(0x%" PRIx64 ") = %s", line, a,
              ga_status_name(st));
}

#define GGC(h) ggc_at((h), __LINE__)

static inline void
ggc_at(mheap *h, int line)
{
    ga_status st = ga_gc(h);
    CHECK_MSG(st == GA_OK, "line %d: ga_gc = %s", line, ga_status_name(st));
}

/* START_CYCLE runs one automatic cycle as an allocation that reached the
 * trigger would (gc_after_slow_alloc), without allocating 4 MiB first:
 * the trigger is lowered to heap_live.  Unlike ga_gc it leaves the
 * sweeping to whoever gets to each span (with bgsweep >= 0). */
#define START_CYCLE(h) start_cycle_at((h), __LINE__)

static inline void
start_cycle_at(mheap *h, int line)
{
    uint64_t n0 = h->gc.numgc;
    h->gc.gc_trigger = h->stats.heap_live;
    gc_after_slow_alloc(h);
    CHECK_MSG(h->gc.numgc == n0 + 1, "line %d: no cycle ran", line);
}

/* span_at: the in-use span holding addr (NULL, failing, if none). */
static inline mspan *
span_at(mheap *h, ga_addr a)
{
    mspan *s = span_of(h, a);
    CHECK_MSG(s != NULL && s->state == MSPAN_IN_USE,
              "no in-use span at 0x%" PRIx64, a);
    return s;
}

/* cached_by_some_p: an mcache holds s. */
static inline bool
cached_by_some_p(const mheap *h, const mspan *s)
{
    for (int p = 0; p < h->nprocs; p++) {
        if (h->caches[p]->alloc[s->spanclass] == s) {
            return true;
        }
    }
    return false;
}

/* SWEEPGENS: outside a call every in-use span is unswept (sg - 2, only
 * while sweeping is pending), swept (sg) or cached by a P (sg + 3):
 * sg - 1 (being swept) and sg + 1 (cached before the sweep began) live
 * only inside a call. */
#define SWEEPGENS(h) sweepgens_at((h), __LINE__)

static inline bool
sweepgens_at(mheap *h, int line)
{
    uint32_t sg = h->sweepgen;
    for (mspan *s = h->allspans; s != NULL; s = s->allnext) {
        if (s->state != MSPAN_IN_USE) {
            continue;
        }
        bool ok = s->sweepgen == sg ||
                  (s->sweepgen == sg - 2 && !h->gc.sweepdone) ||
                  (s->sweepgen == sg + 3 && cached_by_some_p(h, s));
        if (!CHECK_MSG(ok,
                       "line %d: span 0x%" PRIx64 " at sweepgen sg%+d "
                       "(sweepdone %d)",
                       line, mspan_base(s), (int)(s->sweepgen - sg),
                       (int)h->gc.sweepdone)) {
            return false;
        }
    }
    return true;
}

/* count_at counts in-use spans at sweepgen sg + d. */
static inline uint64_t
count_at(const mheap *h, int d)
{
    uint64_t n = 0;
    for (mspan *s = h->allspans; s != NULL; s = s->allnext) {
        n += s->state == MSPAN_IN_USE &&
             s->sweepgen == h->sweepgen + (uint32_t)d;
    }
    return n;
}

/* on_list: s is on list l. */
static inline bool
on_list(const mspan_list *l, const mspan *s)
{
    for (const mspan *t = l->first; t != NULL; t = t->next) {
        if (t == s) {
            return true;
        }
    }
    return false;
}

static inline ga_mem_stats
gc_stats(mheap *h)
{
    ga_mem_stats ms;
    memset(&ms, 0, sizeof ms);
    CHECK(ga_read_mem_stats(h, &ms) == GA_OK);
    return ms;
}

static inline uint64_t
stats_heap_sys(mheap *h)
{
    return gc_stats(h).heap_sys;
}

/* live_object: ga_live_objects' record of the object at a; false if it
 * lists none there. */
static inline bool
live_object(mheap *h, ga_addr a, ga_live_object *out)
{
    size_t n = ga_live_objects(h, NULL, 0);
    ga_live_object *v = calloc(n + 1, sizeof *v);
    n = ga_live_objects(h, v, n);
    bool found = false;
    for (size_t i = 0; i < n && !found; i++) {
        if (v[i].addr == a) {
            *out = v[i];
            found = true;
        }
    }
    free(v);
    return found;
}
#endif
