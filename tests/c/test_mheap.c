/* The page heap: first fit by address, coalescing, and a randomized run
 * of large objects against a model (first fit, growth, MemStats).
 *
 * Only large objects are used: the heap is tested below the
 * mcentral/mcache layer.  Every mutating step is followed by ga_verify.
 * Go 1.13: src/runtime/mheap.go (allocSpanLocked, coalesce, grow),
 *          treap_test.go (FindFirstFit).
 * Differs from Go: objects are freed explicitly (design §6).
 * Locking: single-threaded.
 */
#include "heap_helpers.h"

/* ---- First fit by address (go1.13.0 layouts) --------------------- */

static void
test_first_fit(void)
{
    ga_heap *h = VIRT0("linux", "amd64");
    if (h == NULL) {
        return;
    }
    const ga_addr B = 0xc000000000;
    /* 40000 bytes is large (> 32768) and needs 5 pages; 65536 needs 8. */
    ga_addr a = MALLOC(h, 65536);  /* 8 pages at B */
    ga_addr g1 = MALLOC(h, 40000); /* 5 pages at B+8p */
    ga_addr c = MALLOC(h, 40000);  /* 5 pages at B+13p */
    ga_addr g2 = MALLOC(h, 40000); /* 5 pages at B+18p */
    CHECK(a == B && g1 == B + 8 * GO_PAGE && c == B + 13 * GO_PAGE &&
          g2 == B + 18 * GO_PAGE);
    FREE(h, a);
    FREE(h, c);
    const uint64_t rest = ARENA_64 / GO_PAGE - 23;
    span_want holes[] = {
        {B, 8, SPAN_FREE, false},
        {g1, 5, SPAN_IN_USE, false},
        {c, 5, SPAN_FREE, false},
        {g2, 5, SPAN_IN_USE, false},
        {B + 23 * GO_PAGE, rest, SPAN_FREE, true},
    };
    LAYOUT(h, holes);

    /* Five pages: the lowest span that fits is the 8-page hole, not the
     * exact 5-page one above it (first fit, not best fit); its low end
     * is carved. */
    ga_addr x = MALLOC(h, 40000);
    CHECK_MSG(x == B, "first fit took 0x%" PRIx64, x);
    span_want carved[] = {
        {B, 5, SPAN_IN_USE, false},  {B + 5 * GO_PAGE, 3, SPAN_FREE, false},
        {g1, 5, SPAN_IN_USE, false}, {c, 5, SPAN_FREE, false},
        {g2, 5, SPAN_IN_USE, false}, {B + 23 * GO_PAGE, rest, SPAN_FREE, true},
    };
    LAYOUT(h, carved);
    /* Again five pages: the 3-page hole is too small, the exact hole fits
     * and is taken whole. */
    ga_addr y = MALLOC(h, 40000);
    CHECK_MSG(y == c, "second fit took 0x%" PRIx64, y);
    /* Nine pages skip every hole and come from the released tail. */
    ga_addr z = MALLOC(h, 9 * GO_PAGE);
    CHECK_MSG(z == B + 23 * GO_PAGE, "tail fit took 0x%" PRIx64, z);
    span_want last[] = {
        {B, 5, SPAN_IN_USE, false},
        {B + 5 * GO_PAGE, 3, SPAN_FREE, false},
        {g1, 5, SPAN_IN_USE, false},
        {c, 5, SPAN_IN_USE, false},
        {g2, 5, SPAN_IN_USE, false},
        {z, 9, SPAN_IN_USE, false},
        {z + 9 * GO_PAGE, rest - 9, SPAN_FREE, true},
    };
    LAYOUT(h, last);
    /* A scavenged hole below an unscavenged one is still preferred: the
     * treap orders by address alone (design §4.5). */
    FREE(h, z);
    span_want fz[] = {
        {B, 5, SPAN_IN_USE, false},
        {B + 5 * GO_PAGE, 3, SPAN_FREE, false},
        {g1, 5, SPAN_IN_USE, false},
        {c, 5, SPAN_IN_USE, false},
        {g2, 5, SPAN_IN_USE, false},
        {z, 9, SPAN_FREE, false},
        {z + 9 * GO_PAGE, rest - 9, SPAN_FREE, true},
    };
    LAYOUT(h, fz);
    ga_heap_free(h);
}

/* ---- Coalescing (go1.13.0 layouts) ------------------------------- */

static void
test_coalescing(void)
{
    ga_heap *h = VIRT0("linux", "amd64");
    if (h == NULL) {
        return;
    }
    const ga_addr B = 0xc000000000;
    const uint64_t ppa = ARENA_64 / GO_PAGE;
    ga_addr x = MALLOC(h, 40000);
    ga_addr y = MALLOC(h, 40000);
    ga_addr z = MALLOC(h, 40000);
    ga_addr w = MALLOC(h, 40000);
    ga_addr g = MALLOC(h, 40000);
    CHECK(x == B && y == B + 5 * GO_PAGE && z == B + 10 * GO_PAGE &&
          w == B + 15 * GO_PAGE && g == B + 20 * GO_PAGE);
    /* Free neighbours merge, whichever side is freed first. */
    FREE(h, y);
    FREE(h, x); /* merges with y above */
    span_want xy[] = {
        {B, 10, SPAN_FREE, false},
        {z, 5, SPAN_IN_USE, false},
        {w, 5, SPAN_IN_USE, false},
        {g, 5, SPAN_IN_USE, false},
        {B + 25 * GO_PAGE, ppa - 25, SPAN_FREE, true},
    };
    LAYOUT(h, xy);
    FREE(h, w);
    FREE(h, z); /* merges with both neighbours */
    span_want xw[] = {
        {B, 20, SPAN_FREE, false},
        {g, 5, SPAN_IN_USE, false},
        {B + 25 * GO_PAGE, ppa - 25, SPAN_FREE, true},
    };
    LAYOUT(h, xw);
    ga_heap_info in = info_of(h);
    CHECK(in.nallspans >= 3);
    /* Freeing g: it merges with the unscavenged span below but not with
     * the released span above (realign is a no-op with 4 KiB OS pages). */
    FREE(h, g);
    span_want mixed[] = {
        {B, 25, SPAN_FREE, false},
        {B + 25 * GO_PAGE, ppa - 25, SPAN_FREE, true},
    };
    LAYOUT(h, mixed);
    ga_mem_stats st = stats_of(h);
    CHECK(st.heap_idle == ARENA_64 && st.heap_inuse == 0);
    CHECK(st.heap_released == (ppa - 25) * GO_PAGE);
    /* scavengeAll: one released span. */
    CHECK(SCAVENGE(h, UINT64_MAX) == 25 * GO_PAGE);
    span_want all[] = {{B, ppa, SPAN_FREE, true}};
    LAYOUT(h, all);
    st = stats_of(h);
    CHECK(st.heap_released == ARENA_64);
    /* Nothing left to release. */
    CHECK(SCAVENGE(h, UINT64_MAX) == 0);

    /* Two separate free regions: each becomes one released span. */
    ga_addr p = MALLOC(h, 40000); /* B */
    ga_addr q = MALLOC(h, 40000); /* B+5p */
    ga_addr r = MALLOC(h, 40000); /* B+10p */
    ga_addr s = MALLOC(h, 40000); /* B+15p */
    FREE(h, p);
    FREE(h, r);
    span_want regions[] = {
        {B, 5, SPAN_FREE, false},
        {q, 5, SPAN_IN_USE, false},
        {r, 5, SPAN_FREE, false},
        {s, 5, SPAN_IN_USE, false},
        {B + 20 * GO_PAGE, ppa - 20, SPAN_FREE, true},
    };
    LAYOUT(h, regions);
    FREE(h, s); /* r, s and the released tail: r+s unscavenged */
    CHECK(SCAVENGE(h, UINT64_MAX) == 15 * GO_PAGE);
    span_want released[] = {
        {B, 5, SPAN_FREE, true},
        {q, 5, SPAN_IN_USE, false},
        {r, ppa - 10, SPAN_FREE, true},
    };
    LAYOUT(h, released);
    st = stats_of(h);
    CHECK(st.heap_released == st.heap_idle &&
          st.heap_idle == ARENA_64 - 5 * GO_PAGE);
    /* Scavenging 0 bytes does nothing. */
    digest d;
    digest_take(h, &d);
    CHECK(SCAVENGE(h, 0) == 0);
    SAME_DIGEST(h, &d, "ga_scavenge(0)");
    digest_free(&d);
    ga_heap_free(h);
}

/* ---- Randomized: first fit and accounting against a model -------- */

static uint64_t rng_state;

static uint64_t
rnd(void)
{
    /* xorshift64* */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1DULL;
}

#define MAX_LIVE 96

typedef struct live_obj {
    ga_addr addr;
    uint64_t size;
    bool noscan;
} live_obj;

static uint64_t
random_size(void)
{
    uint64_t r = rnd() % 100;
    if (r < 70) {
        return 32769 + rnd() % (64 * GO_PAGE - 32768);
    }
    if (r < 95) {
        return 32769 + rnd() % (4 * MiB);
    }
    return 32769 + rnd() % (80 * MiB);
}

/* expected_first_fit: the lowest free span of at least np pages, or 0. */
static ga_addr
expected_first_fit(ga_heap *h, uint64_t np)
{
    span_list l = get_spans(h);
    ga_addr want = 0;
    for (size_t i = 0; i < l.n; i++) {
        if (l.v[i].state == SPAN_FREE && l.v[i].npages >= np) {
            want = l.v[i].base;
            break;
        }
    }
    free(l.v);
    return want;
}

static void
test_random(uint64_t seed, int steps, ga_release release)
{
    rng_state = seed;
    ga_options o;
    opts(&o, "linux", "amd64", false, GA_BACKING_VIRTUAL);
    ga_options_set_release(&o, release);
    o.seed = seed;
    o.scavenge_goal = (seed & 1) ? 0 : 4923392;
    ga_heap *h = OPEN(&o);
    if (h == NULL) {
        return;
    }
    live_obj live[MAX_LIVE];
    size_t nlive = 0;
    uint64_t nmalloc = 0;
    uint64_t nfree = 0;
    int failed_before = check_failed;
    for (int step = 0; step < steps && check_failed == failed_before; step++) {
        uint64_t r = rnd() % 100;
        if ((r < 55 && nlive < MAX_LIVE) || nlive == 0) {
            uint64_t size = random_size();
            bool noscan = rnd() & 1;
            uint64_t np = pages_for(size);
            ga_addr want = expected_first_fit(h, np);
            ga_mem_stats before = stats_of(h);
            ga_heap_info in0 = info_of(h);
            ga_addr a = malloc_at(h, size, noscan, __LINE__);
            if (a == 0) {
                break;
            }
            if (want != 0) {
                CHECK_MSG(a == want,
                          "seed %" PRIu64 " step %d: %" PRIu64
                          " pages at 0x%" PRIx64 ", first fit is 0x%" PRIx64,
                          seed, step, np, a, want);
            }
            else {
                /* grow asks for the whole request, in whole arenas;
                 * go1.13.8 only when it does not fit curArena.  go1.13.8
                 * grows by np pages off curArena's bottom: the object
                 * lies below curArena's new base (it starts lower when
                 * the grown span coalesced with a released span). */
                ga_mem_stats after = stats_of(h);
                uint64_t rest = in0.cur_arena_end - in0.cur_arena_base;
                bool fits = release == GA_RELEASE_GO1_13_8 &&
                            np * GO_PAGE <= rest;
                uint64_t grown = fits ? 0 : round_up(np * GO_PAGE, ARENA_64);
                CHECK_MSG(after.heap_sys == before.heap_sys + grown,
                          "seed %" PRIu64 " step %d: heap_sys %" PRIu64
                          " -> %" PRIu64,
                          seed, step, before.heap_sys, after.heap_sys);
                if (release == GA_RELEASE_GO1_13_8) {
                    ga_heap_info in1 = info_of(h);
                    /* new arenas adjoin curArena (nothing is in the
                     * way), so it moves up by the pages asked for */
                    ga_addr from = in0.cur_arena_end != 0 ? in0.cur_arena_base
                                                          : 0xc000000000;
                    CHECK_MSG(a + np * GO_PAGE <= in1.cur_arena_base &&
                                  in1.cur_arena_base == from + np * GO_PAGE &&
                                  (in0.cur_arena_end == 0 ||
                                   in1.cur_arena_end ==
                                       in0.cur_arena_end + grown),
                              "seed %" PRIu64 " step %d: object at 0x%" PRIx64
                              " is not below curArena",
                              seed, step, a);
                }
            }
            check_large_span_at(h, a, size, noscan, __LINE__);
            live[nlive].addr = a;
            live[nlive].size = size;
            live[nlive].noscan = noscan;
            nlive++;
            nmalloc++;
        }
        else if (r < 93) {
            size_t i = (size_t)(rnd() % nlive);
            ga_addr a = live[i].addr;
            free_at(h, a, __LINE__);
            live[i] = live[--nlive];
            nfree++;
            ga_span_info s;
            memset(&s, 0, sizeof s);
            CHECK(ga_span_of(h, a, &s) && s.state == SPAN_FREE &&
                  s.base <= a && a < s.base + s.npages * GO_PAGE);
            if (rnd() % 4 == 0) {
                digest d;
                digest_take(h, &d);
                CHECK(ga_free(h, a) == GA_EDOUBLEFREE);
                CHECK(ga_free(h, a + GO_PAGE) == GA_ENOTOBJECT);
                SAME_DIGEST(h, &d, "a random double free");
                digest_free(&d);
            }
        }
        else {
            uint64_t n = (rnd() % 4 == 0) ? UINT64_MAX : rnd() % (8 * MiB);
            ga_mem_stats before = stats_of(h);
            uint64_t rel = scavenge_at(h, n, __LINE__);
            ga_mem_stats after = stats_of(h);
            CHECK(after.heap_released == before.heap_released + rel);
            uint64_t unreleased = before.heap_idle - before.heap_released;
            if (n >= unreleased) {
                CHECK(rel == unreleased &&
                      after.heap_released == after.heap_idle);
            }
            else {
                CHECK(rel >= n);
            }
        }
        /* The model: live objects and their pages. */
        uint64_t bytes = 0;
        for (size_t i = 0; i < nlive; i++) {
            bytes += pages_for(live[i].size) * GO_PAGE;
        }
        ga_mem_stats st = stats_of(h);
        CHECK_MSG(st.heap_inuse == bytes && st.heap_alloc == bytes &&
                      st.heap_objects == nlive && st.mallocs == nmalloc &&
                      st.frees == nfree,
                  "seed %" PRIu64 " step %d: stats disagree with the model",
                  seed, step);
        CHECK(info_of(h).unscav_huge_pages == unscav_huge_pages_slow(h));
    }
    while (nlive > 0) {
        free_at(h, live[--nlive].addr, __LINE__);
    }
    SCAVENGE(h, UINT64_MAX);
    /* All arenas were contiguous from 0xc000000000: one released span
     * (go1.13.8: up to curArena, which ends the heap). */
    ga_mem_stats st = stats_of(h);
    ga_heap_info in = info_of(h);
    uint64_t ungrown = in.cur_arena_end - in.cur_arena_base;
    CHECK(in.cur_arena_end == 0 ||
          in.cur_arena_end == 0xc000000000 + st.heap_sys);
    span_want one[] = {
        {0xc000000000, (st.heap_sys - ungrown) / GO_PAGE, SPAN_FREE, true}};
    LAYOUT(h, one);
    ga_heap_free(h);
}

int
main(void)
{
    CHECK_RUN(test_first_fit());
    CHECK_RUN(test_coalescing());
    for (uint64_t seed = 1; seed <= 4; seed++) {
        for (size_t r = 0; r < NRELEASES; r++) {
            CHECK_RUN(test_random(seed * 0x9E3779B97F4A7C15ULL,
                                  check_scaled(400), release_of(r)));
        }
    }
    int failed = check_summary("mheap");
    return failed > 255 ? 255 : failed;
}
