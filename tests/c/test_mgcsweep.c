/* Sweeping in GC mode (csrc/mgcsweep.c, the GC branches of mcentral.c):
 * a span's sweepgen through a cycle, cacheSpan's search order,
 * mcentral.freeSpan's list moves and a span going home, the page
 * reclaimer and the proportional sweeper.
 *
 * Heaps run with background_sweep=0, so that nothing sweeps a span but
 * the path under test; cycles start as an allocation at the trigger
 * starts them (START_CYCLE, gc_helpers.h).  Spans of the 2048-byte class
 * (4 objects in one page) make the lists short enough to spell out.
 * Go 1.13: src/runtime/mgcsweep.go ((*mspan).sweep, sweepone,
 *          deductSweepCredit), mcentral.go (cacheSpan, uncacheSpan,
 *          freeSpan), mheap.go (reclaim, reclaimChunk).
 * Differs from Go: Go tests sweeping through whole programs; these drive
 *          one span at a time (design §14.4 and design §14.5).
 * Locking: single-threaded.
 */
#include "gc_helpers.h"

#define SZ 2048 /* class 37: 4 objects per one-page span */
#define NEL 4

static span_class
spc_of(void)
{
    return make_span_class(size_to_class(SZ), false);
}

/* list_is: l holds exactly the spans want[0..n), in that order. */
#define LIST_IS(l, ...)                                                       \
    list_is_at((l), (mspan *[]){__VA_ARGS__},                                 \
               sizeof((mspan *[]){__VA_ARGS__}) / sizeof(mspan *), __LINE__)

static bool
list_is_at(const mspan_list *l, mspan *const *want, size_t n, int line)
{
    size_t i = 0;
    bool ok = true;
    for (const mspan *t = l->first; t != NULL; t = t->next, i++) {
        ok = ok && i < n && t == want[i];
    }
    return CHECK_MSG(ok && i == n, "line %d: list differs (%zu spans)", line,
                     i);
}

/* fill allocates n objects of SZ on P 0 into a[]. */
static void
fill(mheap *h, ga_addr *a, int n)
{
    for (int i = 0; i < n; i++) {
        a[i] = GALLOC(h, SZ);
    }
}

/* A span's sweepgen through a cycle: unswept (sg-2) after it, swept
 * (sg) by a sweep, cached (sg+3), and a span cached when the cycle ran
 * (sg+1, stale) swept by uncacheSpan in prepareForSweep. */
static void
test_sweepgen_through_a_cycle(void)
{
    mheap *h = GC_HEAP(100, 0, 1);
    ga_addr a[6];
    fill(h, a, 6); /* S1: a0-a3, full; S2: a4-a5, cached */
    mspan *s1 = span_at(h, a[0]), *s2 = span_at(h, a[4]);
    mcentral *c = &h->central[spc_of()];
    CHECK(s1->sweepgen == h->sweepgen && s2->sweepgen == h->sweepgen + 3);
    GDROP(h, a[0]);
    GDROP(h, a[4]);
    START_CYCLE(h);
    uint32_t sg = h->sweepgen;
    /* S1 waits for a sweep, with its dead object still counted */
    CHECK(s1->sweepgen == sg - 2 && s1->alloc_count == NEL);
    ga_live_object lo;
    CHECK(live_object(h, a[0], &lo) && lo.dropped == 1);
    /* S2 was cached: P 0's prepareForSweep gave it back and swept it */
    CHECK(s2->sweepgen == sg && s2->alloc_count == 1);
    CHECK(h->caches[0]->alloc[spc_of()] == &h->emptymspan);
    CHECK(!live_object(h, a[4], &lo));
    CHECK(on_list(&c->nonempty, s2) && on_list(&c->empty, s1));
    CHECK(count_at(h, -1) == 0 && count_at(h, 1) == 0);
    SWEEPGENS(h);
    GC_VERIFY(h);
    /* the next allocation takes S2 (swept, nonempty): cached, sg+3 */
    ga_addr x = GALLOC(h, SZ);
    CHECK(span_at(h, x) == s2 && s2->sweepgen == sg + 3);
    CHECK(s1->sweepgen == sg - 2);
    SWEEPGENS(h);
    /* sweepone finds S1 (the stale entry of S2 is skipped): swept, and
     * freeSpan moves it from empty to nonempty (it was full) */
    uint64_t r = sweepone(h);
    while (r == 0 && s1->sweepgen != sg) {
        r = sweepone(h);
    }
    CHECK(r == 0 && s1->sweepgen == sg && s1->alloc_count == NEL - 1);
    CHECK(on_list(&c->nonempty, s1) && !on_list(&c->empty, s1));
    CHECK(!live_object(h, a[0], &lo));
    while (sweepone(h) != UINT64_MAX) {
    }
    CHECK(h->gc.sweepdone);
    SWEEPGENS(h);
    GC_VERIFY(h);
    /* a second cycle: S2, cached again, is stale and swept at once */
    GDROP(h, x);
    START_CYCLE(h);
    sg = h->sweepgen;
    CHECK(s2->sweepgen == sg && s2->alloc_count == 1);
    CHECK(s1->sweepgen == sg - 2);
    SWEEPGENS(h);
    GC_VERIFY(h);
    ga_heap_free(h);
}

/* cacheSpan with nothing on nonempty: it sweeps the spans of empty in
 * order, moving each to the back; one swept full makes it look again;
 * the first one that sweeping gives a free slot is taken, even with no
 * object left in it (cacheSpan preserves it); the spans after it stay
 * unswept. */
static void
test_cache_span_sweeps_empty_and_retries(void)
{
    mheap *h = GC_HEAP(100, 0, 1);
    ga_addr a[16];
    fill(h, a, 16); /* S1..S4, S4 cached; every span full */
    mspan *s[4];
    for (int i = 0; i < 4; i++) {
        s[i] = span_at(h, a[4 * i]);
    }
    mcentral *c = &h->central[spc_of()];
    for (int i = 4; i < 8; i++) {
        GDROP(h, a[i]); /* all of S2 */
    }
    GDROP(h, a[8]); /* one of S3 */
    START_CYCLE(h);
    uint32_t sg = h->sweepgen;
    CHECK(c->nonempty.first == NULL);
    LIST_IS(&c->empty, s[0], s[1], s[2], s[3]);
    CHECK(s[3]->sweepgen == sg); /* stale, swept by uncacheSpan */
    ga_addr x = GALLOC(h, SZ);
    CHECK_MSG(x == a[4], "0x%" PRIx64 ", want S2's first slot 0x%" PRIx64, x,
              a[4]);
    CHECK(s[0]->sweepgen == sg && s[0]->alloc_count == NEL); /* swept full */
    CHECK(s[1]->sweepgen == sg + 3 && s[1]->alloc_count == 1);
    CHECK(s[1]->state == MSPAN_IN_USE); /* preserved: not sent home */
    CHECK(s[2]->sweepgen == sg - 2 && s[2]->alloc_count == NEL);
    LIST_IS(&c->empty, s[2], s[3], s[0], s[1]);
    SWEEPGENS(h);
    GC_VERIFY(h);
    ga_heap_free(h);
}

/* cacheSpan looks at nonempty first and sweeps an unswept span it
 * takes there. */
static void
test_cache_span_takes_nonempty_first(void)
{
    mheap *h = GC_HEAP(100, 0, 1);
    ga_addr a[9];
    fill(h, a, 9); /* S1 a0-a3, S2 a4-a7, S3 a8 cached */
    mspan *s1 = span_at(h, a[0]), *s2 = span_at(h, a[4]);
    mspan *s3 = span_at(h, a[8]);
    mcentral *c = &h->central[spc_of()];
    GDROP(h, a[0]);
    GGC(h); /* S3 uncached (nonempty), then S1 swept: nonempty's front */
    LIST_IS(&c->nonempty, s1, s3);
    LIST_IS(&c->empty, s2);
    GDROP(h, a[1]);
    START_CYCLE(h);
    uint32_t sg = h->sweepgen;
    CHECK(s1->sweepgen == sg - 2 && s2->sweepgen == sg - 2 &&
          s3->sweepgen == sg - 2);
    ga_addr x = GALLOC(h, SZ);
    /* S1, swept as it was taken: a1's slot is free again too */
    CHECK_MSG(x == a[0], "0x%" PRIx64 ", want 0x%" PRIx64, x, a[0]);
    CHECK(s1->sweepgen == sg + 3 && s1->alloc_count == NEL - 1);
    CHECK(s3->sweepgen == sg - 2 && s2->sweepgen == sg - 2);
    CHECK(GALLOC(h, SZ) == a[1]);
    SWEEPGENS(h);
    GC_VERIFY(h);
    ga_heap_free(h);
}

/* mcentral.freeSpan: a swept span with no object left goes back to the
 * heap (its pages leave pages_in_use and count as reclaim credit when
 * sweepone swept it); a drop of its address then names free memory. */
static void
test_free_span_sends_an_empty_span_home(void)
{
    mheap *h = GC_HEAP(100, 0, 1);
    ga_addr a[6];
    fill(h, a, 6); /* S1 full, S2 cached */
    mspan *s1 = span_at(h, a[0]);
    mcentral *c = &h->central[spc_of()];
    for (int i = 0; i < NEL; i++) {
        GDROP(h, a[i]);
    }
    START_CYCLE(h);
    uint64_t in_use = h->pages_in_use;
    CHECK(s1->sweepgen == h->sweepgen - 2 && on_list(&c->empty, s1));
    uint64_t pages = 0;
    for (uint64_t r = sweepone(h); r != UINT64_MAX; r = sweepone(h)) {
        pages += r;
    }
    CHECK(pages == 1 && h->pages_in_use == in_use - 1);
    CHECK(h->gc.reclaim_credit == 1);
    ga_span_info si;
    CHECK(ga_span_of(h, a[0], &si) && si.state == MSPAN_FREE);
    CHECK(c->empty.first == NULL); /* S1 left the lists; S2 is on nonempty */
    LIST_IS(&c->nonempty, span_at(h, a[4]));
    CHECK(ga_drop(h, a[0]) == GA_ENOTOBJECT);
    ga_mem_stats ms;
    CHECK(ga_read_mem_stats(h, &ms) == GA_OK);
    CHECK(ms.frees == NEL && ms.heap_objects == 2);
    SWEEPGENS(h);
    GC_VERIFY(h);
    ga_heap_free(h);
}

/* mheap.reclaim before a large allocation: it walks the pages in
 * address order, sweeps the spans nothing in was marked (pageInUse and
 * not pageMarks), keeps the pages beyond its need as credit, and spends
 * the credit before it looks at more pages. */
static void
test_reclaimer_finds_unmarked_spans_by_page(void)
{
    mheap *h = GC_HEAP(100, 0, 1);
    ga_addr a[13];
    fill(h, a, 13); /* S1 a0-3, S2 a4-7, S3 a8-11, S4 a12 cached */
    ga_addr big = GALLOC(h, 10 * GO_PAGE);
    ga_addr kept = GALLOC(h, 5 * GO_PAGE);
    mspan *s2 = span_at(h, a[4]);
    for (int i = 0; i < 12; i++) {
        if (i != 5 && i != 6 && i != 7) {
            GDROP(h, a[i]); /* S1 and S3 whole, S2 one */
        }
    }
    GDROP(h, big);
    START_CYCLE(h);
    uint32_t sg = h->sweepgen;
    uint64_t sys0 = stats_heap_sys(h);
    CHECK(h->gc.reclaim_index == 0 && h->gc.reclaim_credit == 0);
    ga_addr y = GALLOC(h, 6 * GO_PAGE);
    /* one chunk: S1 (1) + S3 (1) + big (10) freed, 6 used, 6 left */
    CHECK_MSG(h->gc.reclaim_credit == 6, "credit %" PRIu64,
              h->gc.reclaim_credit);
    CHECK(h->gc.reclaim_index == 512);
    ga_span_info si;
    CHECK(ga_span_of(h, a[0], &si) && si.state != MSPAN_IN_USE);
    CHECK(s2->sweepgen == sg - 2 && s2->alloc_count == NEL); /* marked */
    CHECK(span_at(h, kept)->sweepgen == sg - 2);
    CHECK_MSG(y >= big && y + 6 * GO_PAGE <= big + 10 * GO_PAGE,
              "0x%" PRIx64 " outside the reclaimed 0x%" PRIx64, y, big);
    CHECK(stats_heap_sys(h) == sys0); /* reused, not grown */
    /* the next one spends credit and looks at no more pages */
    GALLOC(h, 5 * GO_PAGE);
    CHECK(h->gc.reclaim_credit == 1 && h->gc.reclaim_index == 512);
    SWEEPGENS(h);
    GC_VERIFY(h);
    ga_heap_free(h);
}

/* Proportional sweep (deductSweepCredit): before each span an
 * allocation takes, pages are swept until pagesSwept - basis reaches
 * sweep_pages_per_byte * (heap_live - basis), and no further than the
 * span that got it there. */
static void
test_proportional_sweep_keeps_pace(void)
{
    mheap *h = GC_HEAP(100, 0, 1);
    for (int i = 0; i < 48; i++) {
        GALLOC(h, 40 * GO_PAGE); /* 15 MiB, all of it kept */
    }
    START_CYCLE(h);
    gcstate *g = &h->gc;
    uint64_t n0 = g->numgc;
    int64_t distance = (int64_t)g->gc_trigger - (int64_t)h->stats.heap_live -
                       (int64_t)MiB;
    double want = (double)(h->pages_in_use - g->pages_swept) /
                  (double)distance;
    CHECK_MSG(g->sweep_pages_per_byte == want && want > 0,
              "sweep_pages_per_byte %g, want %g", g->sweep_pages_per_byte,
              want);
    double spb = g->sweep_pages_per_byte;
    uint64_t live0 = g->sweep_heap_live_basis;
    uint64_t swept0 = g->pages_swept_basis;
    int behind = 0, ahead = 0;
    for (int i = 0; i < 400 && !g->sweepdone; i++) {
        GALLOC(h, SZ);
        int64_t target = (int64_t)(spb * (double)(h->stats.heap_live - live0));
        int64_t swept = (int64_t)(g->pages_swept - swept0);
        behind += swept < target;
        ahead += swept >= target + 40; /* a span of 40 pages at most */
    }
    CHECK_MSG(behind == 0 && ahead == 0, "%d behind, %d ahead", behind, ahead);
    CHECK(g->pages_swept - swept0 > 40 && g->numgc == n0);
    SWEEPGENS(h);
    GC_VERIFY(h);
    ga_heap_free(h);
}

int
main(void)
{
    CHECK_RUN(test_sweepgen_through_a_cycle());
    CHECK_RUN(test_cache_span_sweeps_empty_and_retries());
    CHECK_RUN(test_cache_span_takes_nonempty_first());
    CHECK_RUN(test_free_span_sends_an_empty_span_home());
    CHECK_RUN(test_reclaimer_finds_unmarked_spans_by_page());
    CHECK_RUN(test_proportional_sweep_keeps_pace());
    return check_summary("mgcsweep") != 0;
}
