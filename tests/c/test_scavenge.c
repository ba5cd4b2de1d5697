/* The scavenger: top-down release that keeps huge pages whole, the goal
 * and when each release scavenges synchronously, the goal GOGC gives,
 * and ports without huge pages.
 *
 * Go 1.13: src/runtime/mheap.go (scavengeLocked, scavengeSplit,
 *          scavengeIfNeededLocked, scavengeAll), mgcscavenge.go.
 * Differs from Go: no background scavenger (design §8).
 * Locking: single-threaded.
 */
#include "heap_helpers.h"

/* scavengeLocked: top-down, huge-page spans first, split from the top,
 * never breaking a huge page (design §8.1, Go's scavengeSplit). */
static void
test_scavenge_top_down(void)
{
    ga_heap *h = VIRT0("linux", "amd64");
    if (h == NULL) {
        return;
    }
    CHECK(info_of(h).phys_huge_page_size == HUGE_2M);
    const ga_addr B = 0xc000000000;
    ga_addr a = MALLOC(h, 4 * MiB); /* [B, B+0x400000) */
    ga_addr g1 = MALLOC(h, 40000);  /* [B+0x400000, B+0x40a000) */
    ga_addr b = MALLOC(h, 4 * MiB); /* [B+0x40a000, B+0x80a000) */
    ga_addr g2 = MALLOC(h, 40000);  /* [B+0x80a000, B+0x814000) */
    ga_addr c = MALLOC(h, 40000);   /* [B+0x814000, B+0x81e000) */
    ga_addr g3 = MALLOC(h, 40000);  /* [B+0x81e000, B+0x828000) */
    CHECK(a == B && g1 == B + 0x400000 && b == B + 0x40a000 &&
          g2 == B + 0x80a000 && c == B + 0x814000 && g3 == B + 0x81e000);
    const ga_addr tail = B + 0x828000;
    const uint64_t tailp = (B + ARENA_64 - tail) / GO_PAGE;
    FREE(h, a);
    FREE(h, b);
    FREE(h, c);
    /* a holds 2 whole huge pages, b one ([B+0x600000, B+0x800000)), c
     * none. */
    CHECK(info_of(h).unscav_huge_pages == 3);
    CHECK(unscav_huge_pages_slow(h) == 3);
    ga_mem_stats st0 = stats_of(h);

    /* 1 MiB: the highest span with a huge page is b.  The split point
     * end - 1 MiB = B+0x70a000 would break the huge page at B+0x600000,
     * so it is rounded down to it: 0x20a000 bytes are released. */
    uint64_t rel = SCAVENGE(h, 1 * MiB);
    CHECK_MSG(rel == 0x20a000, "released 0x%" PRIx64, rel);
    ga_mem_stats st1 = stats_of(h);
    CHECK(st1.heap_released == st0.heap_released + rel);
    span_want s1[] = {
        {B, 512, SPAN_FREE, false},
        {g1, 5, SPAN_IN_USE, false},
        {b, 0x1f6000 / GO_PAGE, SPAN_FREE, false},
        {B + 0x600000, 0x20a000 / GO_PAGE, SPAN_FREE, true},
        {g2, 5, SPAN_IN_USE, false},
        {c, 5, SPAN_FREE, false},
        {g3, 5, SPAN_IN_USE, false},
        {tail, tailp, SPAN_FREE, true},
    };
    LAYOUT(h, s1);
    CHECK(info_of(h).unscav_huge_pages == 2 && unscav_huge_pages_slow(h) == 2);

    /* 1 byte: b's remainder has no whole huge page left, so a (lower)
     * goes first; one page would do, but the cut is rounded down to the
     * huge page boundary B+0x200000. */
    rel = SCAVENGE(h, 1);
    CHECK_MSG(rel == 2 * MiB, "released 0x%" PRIx64, rel);
    ga_mem_stats st2 = stats_of(h);
    CHECK(st2.heap_released == st1.heap_released + rel);
    CHECK(info_of(h).unscav_huge_pages == 1 && unscav_huge_pages_slow(h) == 1);

    /* 2 MiB + 8 KiB: a's remaining huge page goes whole (and coalesces
     * with the released piece above it); then the pass over spans without
     * huge pages takes the highest one, c, cutting one page off its top;
     * b's remainder, lower, is left alone. */
    rel = SCAVENGE(h, 2 * MiB + GO_PAGE);
    CHECK_MSG(rel == 2 * MiB + GO_PAGE, "released 0x%" PRIx64, rel);
    ga_mem_stats st3 = stats_of(h);
    CHECK(st3.heap_released == st2.heap_released + rel);
    span_want s3[] = {
        {B, 512, SPAN_FREE, true},
        {g1, 5, SPAN_IN_USE, false},
        {b, 0x1f6000 / GO_PAGE, SPAN_FREE, false},
        {B + 0x600000, 0x20a000 / GO_PAGE, SPAN_FREE, true},
        {g2, 5, SPAN_IN_USE, false},
        {c, 4, SPAN_FREE, false},
        {c + 4 * GO_PAGE, 1, SPAN_FREE, true},
        {g3, 5, SPAN_IN_USE, false},
        {tail, tailp, SPAN_FREE, true},
    };
    LAYOUT(h, s3);
    CHECK(info_of(h).unscav_huge_pages == 0);

    /* The rest: b's remainder and c's 4 pages; each region becomes one
     * released span. */
    rel = SCAVENGE(h, UINT64_MAX);
    CHECK_MSG(rel == 0x1f6000 + 4 * GO_PAGE, "released 0x%" PRIx64, rel);
    span_want s4[] = {
        {B, 512, SPAN_FREE, true},      {g1, 5, SPAN_IN_USE, false},
        {b, 512, SPAN_FREE, true},      {g2, 5, SPAN_IN_USE, false},
        {c, 5, SPAN_FREE, true},        {g3, 5, SPAN_IN_USE, false},
        {tail, tailp, SPAN_FREE, true},
    };
    LAYOUT(h, s4);
    ga_mem_stats st4 = stats_of(h);
    CHECK(st4.heap_released == st4.heap_idle);
    ga_heap_free(h);
}

/* scavengeIfNeededLocked scavenges min(size, overage) when retained +
 * size exceeds the goal: go1.13.0 when an allocation takes released
 * memory (retained then counts the pages taken), go1.13.8 when the heap
 * grows (growAddSpan, before the new pages count). */
static void
scavenge_goal_case(ga_release r, uint64_t goal, bool want_release)
{
    ga_options o;
    opts(&o, "linux", "amd64", false, GA_BACKING_VIRTUAL);
    ga_options_set_release(&o, r);
    o.scavenge_goal = goal;
    ga_heap *h = OPEN(&o);
    if (h == NULL) {
        return;
    }
    bool go1130 = r == GA_RELEASE_GO1_13_0;
    CHECK(info_of(h).scavenge_goal == goal);
    const ga_addr B = 0xc000000000;
    const uint64_t ppa = ARENA_64 / GO_PAGE;
    ga_addr a = MALLOC(h, 40000); /* 5 pages at B */
    ga_addr b = MALLOC(h, 40000); /* 5 pages at B+5p */
    FREE(h, a);                   /* an unscavenged 5-page hole at B */
    ga_mem_stats st0 = stats_of(h);
    CHECK(st0.heap_released == (ppa - 10) * GO_PAGE);
    /* Six pages do not fit the hole.  go1.13.0: they come from the
     * released tail, which makes retained = 16 pages, and min(6 pages,
     * 16 + 6 - goal) is to be scavenged.  go1.13.8: the heap grows by 6
     * pages into curArena, and growAddSpan first scavenges min(6 pages,
     * 10 + 6 - goal).  Either way the only unscavenged free span is the
     * 5-page hole. */
    ga_addr c = MALLOC(h, 6 * GO_PAGE);
    CHECK(c == B + 10 * GO_PAGE);
    span_want want[] = {
        {B, 5, SPAN_FREE, want_release},
        {b, 5, SPAN_IN_USE, false},
        {c, 6, SPAN_IN_USE, false},
        {c + 6 * GO_PAGE, ppa - 16, SPAN_FREE, true},
    };
    check_layout_at(h, want, go1130 ? 4 : 3, __LINE__);
    ga_heap_info in = info_of(h);
    CHECK(go1130 ? in.cur_arena_base == 0
                 : in.cur_arena_base == c + 6 * GO_PAGE &&
                       in.cur_arena_end == B + ARENA_64);
    ga_mem_stats st1 = stats_of(h);
    uint64_t want_released = (ppa - 16) * GO_PAGE +
                             (want_release ? 5 * GO_PAGE : 0);
    CHECK_MSG(st1.heap_released == want_released,
              "%s goal %" PRIu64 ": heap_released %" PRIu64 ", want %" PRIu64,
              ga_release_name(r), goal, st1.heap_released, want_released);
    ga_heap_free(h);
}

/* The goal Go 1.13.0 has after gcinit for a GOGC (mgc.go gcinit,
 * setGCPercent, gcSetTriggerRatio; mgcscavenge.go gcPaceScavenger):
 *   heap_marked = uint64(4 MiB / (1 + 7/8))       = 2,236,962 (any GOGC)
 *   heapminimum = 4 MiB * GOGC / 100
 *   goal        = heap_marked + heap_marked * GOGC / 100
 *   ratio       = min(7/8, 0.95 * GOGC / 100)
 *   trigger     = max(uint64(heap_marked * (1 + ratio)), heapminimum)
 *   next_gc     = max(goal, trigger)
 *   scavenge goal = next_gc + next_gc / 10, rounded up to 4 KiB.
 * GOGC=off (any negative): goal and trigger are ^0, and the sum wraps. */
static void
test_gogc_scavenge_goals(void)
{
    static const struct {
        int gogc;
        uint64_t goal;
    } cases[] = {
        /* heapminimum 0, ratio 0: next_gc = trigger = heap_marked */
        {0, 2461696},
        /* ratio 0.0095: trigger 2,258,213; next_gc 2,236,962 + 22,369 */
        {1, 2486272},
        /* ratio 0.475: trigger 3,299,518; next_gc 3,355,443 */
        {50, 3694592},
        /* ratio 0.874 (capped): trigger 4,192,066; next_gc 4,294,967 */
        {92, 4726784},
        /* trigger raised to heapminimum 4,194,304; next_gc 4,473,924 */
        {100, 4923392},
        /* heapminimum 4,781,506 < goal 4,787,098 = next_gc */
        {114, 5267456},
        /* heapminimum 4,823,449 > goal 4,809,468: next_gc = heapminimum */
        {115, 5308416},
        /* next_gc = heapminimum = 8 MiB: 8,388,608 + 838,860 */
        {200, 9228288},
        /* next_gc = heapminimum = 40 MiB: 41,943,040 + 4,194,304 */
        {1000, 46137344},
        /* heapminimum (2^53 - 2^22) / 100 = 90,071,992,505,466 */
        {2147483647, 99079191756800ULL},
        /* off: ^0 + ^0/10 wraps to 0x1999999999999998 -> rounded up */
        {-1, 0x199999999999A000ULL},
        {-100, 0x199999999999A000ULL},
        {-2147483647 - 1, 0x199999999999A000ULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint64_t got = ga_gogc_scavenge_goal(cases[i].gogc);
        CHECK_MSG(got == cases[i].goal,
                  "GOGC=%d: scavenge goal %" PRIu64 ", want %" PRIu64,
                  cases[i].gogc, got, cases[i].goal);
    }
}

static void
test_scavenge_goal(void)
{
    const ga_release r0 = GA_RELEASE_GO1_13_0, r8 = GA_RELEASE_GO1_13_8;
    scavenge_goal_case(r0, 0, true);
    scavenge_goal_case(r8, 0, true);
    /* go1.13.0's default goal (4.9 MB): 16 pages retained is far below
     * it. */
    scavenge_goal_case(r0, 4923392, false);
    scavenge_goal_case(r8, 4923392, false);
    /* go1.13.0: retained + size = 16 + 6 = 22 pages.  Goal 15 pages:
     * overage 7, todo min(6, 7) = 6 pages >= the 5-page hole, released
     * whole.  go1.13.8: 10 + 6 = 16 pages, overage 1 page (below). */
    scavenge_goal_case(r0, 15 * GO_PAGE, true);
    scavenge_goal_case(r8, 15 * GO_PAGE, true);
    /* go1.13.0, goal 21 pages: todo = overage = 1 page.  scavengeSplit's
     * cut at end - 1 page would break the huge page at B, so it is
     * rounded down to B, the hole's base: no split, the whole hole is
     * released.  go1.13.8: 16 pages do not exceed 21. */
    scavenge_goal_case(r0, 21 * GO_PAGE, true);
    scavenge_goal_case(r8, 21 * GO_PAGE, false);
    /* Goal 22 pages (go1.13.0), 16 pages (go1.13.8): retained + size is
     * not above it. */
    scavenge_goal_case(r0, 22 * GO_PAGE, false);
    scavenge_goal_case(r8, 16 * GO_PAGE, false);

    test_gogc_scavenge_goals();
    ga_options o;
    ga_options_init(&o);
    ga_options_set_release(&o, r0);
    CHECK(o.scavenge_goal == ga_gogc_scavenge_goal(100));
    scavenge_goal_case(r0, ga_gogc_scavenge_goal(-1), false);
    scavenge_goal_case(r8, ga_gogc_scavenge_goal(-1), false);
}

/* When synchronous scavenging happens (design §8.2), goal 0 for both
 * releases: go1.13.0 scavenges when an allocation takes released memory,
 * go1.13.8 only when the heap grows. */
static void
scavenge_when_case(ga_release r)
{
    ga_options o;
    opts(&o, "linux", "amd64", false, GA_BACKING_VIRTUAL);
    ga_options_set_release(&o, r);
    o.scavenge_goal = 0;
    ga_heap *h = OPEN(&o);
    if (h == NULL) {
        return;
    }
    bool go1130 = r == GA_RELEASE_GO1_13_0;
    const ga_addr B = 0xc000000000;
    ga_addr x = MALLOC(h, 1 * MiB);   /* 128 pages at B */
    ga_addr s1 = MALLOC(h, 40000);    /* 5 pages */
    ga_addr y = MALLOC(h, 512 * KiB); /* 64 pages */
    ga_addr s2 = MALLOC(h, 40000);    /* 5 pages */
    CHECK(x == B && s1 == B + 128 * GO_PAGE && y == s1 + 5 * GO_PAGE &&
          s2 == y + 64 * GO_PAGE);
    FREE(h, x);
    CHECK(SCAVENGE(h, UINT64_MAX) == 1 * MiB); /* x's hole released */
    FREE(h, y);                                /* y's hole is not */
    ga_mem_stats st0 = stats_of(h);
    /* 1 MiB fits x's released hole exactly: no growth.  go1.13.0 makes
     * up for the RSS it takes by scavenging min(128 pages, retained + 128
     * pages) = 128 pages: all of y's 64.  go1.13.8 does not. */
    ga_addr x2 = MALLOC(h, 1 * MiB);
    CHECK(x2 == x);
    ga_mem_stats st1 = stats_of(h);
    CHECK(st1.heap_sys == st0.heap_sys);
    uint64_t want = st0.heap_released - 1 * MiB + (go1130 ? 64 * GO_PAGE : 0);
    CHECK_MSG(st1.heap_released == want,
              "%s: heap_released %" PRIu64 ", want %" PRIu64,
              ga_release_name(r), st1.heap_released, want);
    ga_span_info sy;
    CHECK(ga_span_of(h, y, &sy) && sy.base == y && sy.npages == 64 &&
          sy.state == SPAN_FREE && sy.scavenged == go1130);
    if (!go1130) {
        /* 2 MiB fits no free span: go1.13.8 grows by 256 pages, and
         * growAddSpan scavenges min(256 pages, retained + 256 pages)
         * first: y's hole goes. */
        ga_addr z = MALLOC(h, 2 * MiB);
        CHECK(z == s2 + 5 * GO_PAGE);
        ga_mem_stats st2 = stats_of(h);
        CHECK(st2.heap_released == st1.heap_released + 64 * GO_PAGE - 2 * MiB);
        CHECK(ga_span_of(h, y, &sy) && sy.scavenged);
    }
    ga_heap_free(h);
}

static void
test_scavenge_when(void)
{
    for (size_t i = 0; i < NRELEASES; i++) {
        scavenge_when_case(release_of(i));
    }
}

/* Without huge pages (darwin: physHugePageSize 0) the split point is only
 * rounded down to a runtime page. */
static void
scavenge_no_huge(ga_release r)
{
    ga_heap *h = VIRT_R("darwin", "arm64", r);
    if (h == NULL) {
        return;
    }
    CHECK(info_of(h).phys_huge_page_size == 0);
    ga_addr a = MALLOC(h, 4 * MiB);
    ga_addr g = MALLOC(h, 40000);
    CHECK(a == 0x130000000 && g == a + 4 * MiB);
    FREE(h, a);
    CHECK(info_of(h).unscav_huge_pages == 0);
    /* 1 byte: one page off the top. */
    CHECK(SCAVENGE(h, 1) == GO_PAGE);
    /* 12000 bytes: the cut end - 12000 rounds down to end - 2 pages. */
    CHECK(SCAVENGE(h, 12000) == 2 * GO_PAGE);
    span_want want[] = {
        {a, 512 - 3, SPAN_FREE, false},
        {a + (512 - 3) * GO_PAGE, 3, SPAN_FREE, true},
        {g, 5, SPAN_IN_USE, false},
        {g + 5 * GO_PAGE, ARENA_64 / GO_PAGE - 517, SPAN_FREE, true},
    };
    /* go1.13.8: the rest of the arena is curArena, not a span */
    check_layout_at(h, want, r == GA_RELEASE_GO1_13_0 ? 4 : 3, __LINE__);
    /* 1 MiB: exactly 128 pages. */
    CHECK(SCAVENGE(h, 1 * MiB) == 1 * MiB);
    CHECK(SCAVENGE(h, UINT64_MAX) == 4 * MiB - 1 * MiB - 3 * GO_PAGE);
    ga_heap_free(h);
}

static void
test_scavenge_no_huge(void)
{
    for (size_t i = 0; i < NRELEASES; i++) {
        scavenge_no_huge(release_of(i));
    }
}

int
main(void)
{
    CHECK_RUN(test_scavenge_top_down());
    CHECK_RUN(test_scavenge_goal());
    CHECK_RUN(test_scavenge_when());
    CHECK_RUN(test_scavenge_no_huge());
    int failed = check_summary("scavenge");
    return failed > 255 ? 255 : failed;
}
