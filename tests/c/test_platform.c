/* Platforms: the constants of each GOOS/GOARCH branch, the ports that
 * are refused, the 32-bit path (a pre-reserved arena region) and growth
 * on the other 64-bit branches.
 *
 * Every expected number is computed here from Go 1.13's formulas
 * (design §3.2, design §4.2), not read back from the code under test.
 * Go 1.13: src/runtime/malloc.go (constants, mallocinit's 32-bit branch,
 *          sysAlloc), mheap.go.
 * Differs from Go: one process models every port (csrc/platform.c).
 * Locking: single-threaded.
 */
#include "heap_helpers.h"

/* Platform constants of design §3.2, per branch. */
static void
test_platform_info(void)
{
    static const struct {
        const char *goos;
        const char *goarch;
        bool race;
        unsigned ptr_size;
        uint64_t arena;
        unsigned l1, l2;
        ga_addr base_offset;
        uint64_t max_alloc;
        uint64_t huge;
    } cases[] = {
        {"linux", "amd64", false, 8, 64 * MiB, 0, 22, (ga_addr)1 << 47,
         (uint64_t)1 << 48, HUGE_2M},
        {"linux", "amd64", true, 8, 64 * MiB, 0, 22, (ga_addr)1 << 47,
         (uint64_t)1 << 48, HUGE_2M},
        {"darwin", "arm64", false, 8, 64 * MiB, 0, 22, 0, (uint64_t)1 << 48,
         0},
        {"linux", "arm64", false, 8, 64 * MiB, 0, 22, 0, (uint64_t)1 << 48,
         HUGE_2M},
        {"aix", "ppc64", false, 8, 256 * MiB, 12, 20, 0, (uint64_t)1 << 60, 0},
        {"windows", "amd64", false, 8, 4 * MiB, 6, 20, (ga_addr)1 << 47,
         (uint64_t)1 << 48, 0},
        {"linux", "386", false, 4, 4 * MiB, 0, 10, 0, 0xFFFFFFFFu, HUGE_2M},
        {"linux", "arm", false, 4, 4 * MiB, 0, 10, 0, 0xFFFFFFFFu, HUGE_2M},
        /* heapAddrBits is 31 on mips and mipsle: maxAlloc 2^31 - 1 */
        {"linux", "mips", false, 4, 4 * MiB, 0, 9, 0, 0x7FFFFFFFu, HUGE_2M},
        {"linux", "mipsle", false, 4, 4 * MiB, 0, 9, 0, 0x7FFFFFFFu, HUGE_2M},
        {"linux", "mips64", false, 8, 64 * MiB, 0, 22, 0, (uint64_t)1 << 48,
         HUGE_2M},
        {"linux", "mips64le", false, 8, 64 * MiB, 0, 22, 0, (uint64_t)1 << 48,
         HUGE_2M},
        {"windows", "386", false, 4, 4 * MiB, 0, 10, 0, 0xFFFFFFFFu, 0},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        ga_heap *h = open_virtual(cases[c].goos, cases[c].goarch,
                                  cases[c].race, __LINE__);
        if (h == NULL) {
            continue;
        }
        ga_heap_info in = info_of(h);
        CHECK_MSG(strcmp(in.goos, cases[c].goos) == 0 &&
                      strcmp(in.goarch, cases[c].goarch) == 0 &&
                      in.race == cases[c].race &&
                      in.backing == GA_BACKING_VIRTUAL && in.procs == 1,
                  "%s/%s: identity", cases[c].goos, cases[c].goarch);
        CHECK_MSG(in.ptr_size == cases[c].ptr_size &&
                      in.page_size == GO_PAGE &&
                      in.heap_arena_bytes == cases[c].arena &&
                      in.arena_l1_bits == cases[c].l1 &&
                      in.arena_l2_bits == cases[c].l2 &&
                      in.arena_base_offset == cases[c].base_offset &&
                      in.max_alloc == cases[c].max_alloc &&
                      in.phys_page_size == 4096 &&
                      in.phys_huge_page_size == cases[c].huge,
                  "%s/%s: ptr %u arena 0x%" PRIx64
                  " l1 %u l2 %u offset 0x%" PRIx64 " max_alloc 0x%" PRIx64
                  " huge %" PRIu64,
                  cases[c].goos, cases[c].goarch, in.ptr_size,
                  in.heap_arena_bytes, in.arena_l1_bits, in.arena_l2_bits,
                  in.arena_base_offset, in.max_alloc, in.phys_huge_page_size);
        /* The default release, go1.13.8, sets no scavenger goal before
         * the first GC (gcPaceScavenger returns early): mheap_'s zero. */
        CHECK(in.release == GA_RELEASE_GO1_13_8 && in.scavenge_goal == 0 &&
              in.cur_arena_base == 0 && in.cur_arena_end == 0);
        CHECK(in.pages_in_use == 0 && in.unscav_huge_pages == 0 &&
              in.nallspans == 0);
        ga_heap_free(h);
    }
}

static void
test_bad_platforms(void)
{
    static const struct {
        const char *goos;
        const char *goarch;
        bool race;
        ga_backing backing;
        const char *needle; /* the message names this */
    } cases[] = {
        {"linux", "foo", false, GA_BACKING_VIRTUAL, "linux/foo"},
        {"plan9", "arm64", false, GA_BACKING_VIRTUAL, "plan9/arm64"},
        {"js", "wasm", false, GA_BACKING_VIRTUAL, "js/wasm"},
        {"nacl", "386", false, GA_BACKING_VIRTUAL, "nacl/386"},
        {"linux", "386", true, GA_BACKING_VIRTUAL, "linux/386"},
        {"darwin", "arm64", true, GA_BACKING_VIRTUAL, "darwin/arm64"},
        {"darwin", "arm64", false, GA_BACKING_OS, "virtual"},
        {"linux", "386", false, GA_BACKING_OS, "virtual"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        ga_options o;
        opts(&o, cases[c].goos, cases[c].goarch, cases[c].race,
             cases[c].backing);
        ga_status st = GA_OK;
        char err[256] = "";
        ga_heap *h = ga_heap_new(&o, &st, err, sizeof err);
        CHECK_MSG(h == NULL && st == GA_EINVAL && err[0] != '\0' &&
                      strstr(err, cases[c].needle) != NULL,
                  "%s/%s race=%d backing=%d: %s \"%s\"", cases[c].goos,
                  cases[c].goarch, (int)cases[c].race, (int)cases[c].backing,
                  ga_status_name(st), err);
        ga_heap_free(h);
    }
    /* Bad options. */
    ga_options o;
    opts(&o, "linux", "amd64", false, GA_BACKING_VIRTUAL);
    o.procs = 0;
    ga_status st = GA_OK;
    char err[256] = "";
    ga_heap *h = ga_heap_new(&o, &st, err, sizeof err);
    CHECK_MSG(h == NULL && st == GA_EINVAL && err[0] != '\0', "procs 0: %s",
              ga_status_name(st));
    ga_heap_free(h);
    opts(&o, "linux", "amd64", false, (ga_backing)7);
    h = ga_heap_new(&o, &st, err, sizeof err);
    CHECK_MSG(h == NULL && st == GA_EINVAL, "backing 7: %s",
              ga_status_name(st));
    ga_heap_free(h);
}

/* ---- The 32-bit path --------------------------------------------- */

static void
test_32bit_release(ga_release r)
{
    ga_heap *h = VIRT_R("linux", "386", r);
    if (h == NULL) {
        return;
    }
    bool go1130 = r == GA_RELEASE_GO1_13_0;
    const ga_addr region = want_region_32(0x08200000); /* 0x08400000 */
    const ga_addr hint = want_hint_32(0x08200000);     /* 0x28800000 */
    const uint64_t ppa = ARENA_32 / GO_PAGE;           /* 512 pages */

    /* The first object comes from the pre-reserved region at p; heap_sys
     * grows by one 4 MiB arena, and the hint is untouched. */
    ga_addr a = MALLOC(h, 100000);
    CHECK_MSG(a == region, "386: first object at 0x%" PRIx64, a);
    LARGE_SPAN(h, a, 100000, false);
    ga_mem_stats st = stats_of(h);
    CHECK_MSG(st.heap_sys == ARENA_32, "386: heap_sys %" PRIu64, st.heap_sys);
    CHECK(st.heap_inuse == 13 * GO_PAGE && st.heap_released == st.heap_idle);
    /* gc_sys: the heapArena (2 bits per 4-byte word: 256 KiB of bitmap,
     * 512 span pointers of 4 bytes, 2 x 64 bytes of page bits = 264,320
     * bytes) from heapArenaAlloc, mapped in whole OS pages, plus
     * allArenas' first 4096-byte array, plus the gcBits arena (64 KiB)
     * initSpan took the large span's two bitmaps from, plus sweepSpans'
     * spine (256 x 4 bytes) and first block (512 x 4 bytes). */
    const uint64_t sizeof_arena_32 = 262144 + 512 * 4 + 2 * 64;
    CHECK_MSG(st.gc_sys ==
                  round_up(sizeof_arena_32, 4096) + 4096 + 65536 + 1024 + 2048,
              "386: gc_sys %" PRIu64, st.gc_sys);
    CHECK(st.sys == st.heap_sys + st.stack_sys + st.mspan_sys + st.mcache_sys +
                        st.buck_hash_sys + st.gc_sys + st.other_sys);
    /* other_sys: as on amd64 (see 2.), but the L2 arena map (1024 4-byte
     * entries) is small enough to come out of persistentalloc's chunk;
     * its stat is nil, so Go moves its 4 KiB out of other_sys and charges
     * them to nothing.  sweepSpans takes 1 KiB + 2 KiB. */
    CHECK_MSG(st.other_sys ==
                  262144 - 16384 - 16384 - 4096 - 4096 - 1024 - 2048 + 65536,
              "386: other_sys %" PRIu64, st.other_sys);
    hint_list l = get_hints(h);
    CHECK(l.n == 1 && l.v[0].addr == hint && !l.v[0].down);
    free(l.v);
    arena_list ar = get_arenas(h);
    CHECK(ar.n == 1 && ar.v[0].base == region &&
          ar.v[0].index == region / ARENA_32 && ar.v[0].l1 == 0 &&
          ar.v[0].l2 == region / ARENA_32);
    free(ar.v);
    span_want w1[] = {
        {a, 13, SPAN_IN_USE, false},
        {a + 13 * GO_PAGE, ppa - 13, SPAN_FREE, true},
    };
    /* go1.13.8: the rest of the arena is curArena, not a span */
    check_layout_at(h, w1, go1130 ? 2 : 1, __LINE__);
    ga_heap_info in = info_of(h);
    CHECK(go1130 ? in.cur_arena_end == 0
                 : in.cur_arena_base == a + 13 * GO_PAGE &&
                       in.cur_arena_end == region + ARENA_32);

    /* 512 MiB fills the rest of the region exactly: it was reserved with
     * 512 MiB + 4 MiB, and 4 MiB are in use.  The object starts in the
     * free tail of the first arena. */
    ga_addr b = MALLOC(h, 512 * MiB);
    CHECK_MSG(b == a + 13 * GO_PAGE, "386: b at 0x%" PRIx64, b);
    st = stats_of(h);
    CHECK_MSG(st.heap_sys == 516 * MiB, "386: heap_sys %" PRIu64, st.heap_sys);
    CHECK(ga_arenas(h, NULL, 0) == 129);
    CHECK(hint_count(h) == 1 && head_hint(h, NULL) == hint);
    /* 129 heapArenas, packed in heapArenaAlloc; two large spans' bitmaps
     * (32 bytes) in one gcBits arena; both spans in sweepSpans' first
     * block. */
    CHECK_MSG(st.gc_sys == round_up(129 * sizeof_arena_32, 4096) + 4096 +
                               65536 + 1024 + 2048,
              "386: gc_sys %" PRIu64, st.gc_sys);

    /* The region is exhausted: the hint at its end is used, and the new
     * arenas continue the heap contiguously. */
    ga_addr c = MALLOC(h, 8 * MiB);
    ga_addr tail = b + 512 * MiB;
    CHECK_MSG(c == tail, "386: c at 0x%" PRIx64 ", want 0x%" PRIx64, c, tail);
    CHECK(head_hint(h, NULL) == hint + 8 * MiB && hint_count(h) == 1);
    st = stats_of(h);
    CHECK(st.heap_sys == 524 * MiB);
    CHECK(ga_span_of(h, hint, &(ga_span_info){0}));

    /* Sizes beyond 2^32 - 1 are refused; ones that fit no address space
     * run out of memory without changing anything. */
    ga_addr out = 0;
    CHECK(ga_malloc(h, 0, (uint64_t)1 << 32, false, &out) == GA_ETOOLARGE);
    digest d;
    digest_take(h, &d);
    CHECK(ga_malloc(h, 0, 0xFFFFFFFFu, false, &out) == GA_ENOMEM);
    SAME_DIGEST(h, &d, "a 4 GiB malloc on 386");
    digest_free(&d);
    /* Addresses beyond 32 bits are foreign. */
    CHECK(ga_free(h, (ga_addr)1 << 32) == GA_EFOREIGN);
    CHECK(ga_free(h, region + ((ga_addr)1 << 32)) == GA_EFOREIGN);

    FREE(h, a);
    FREE(h, c);
    FREE(h, b);
    SCAVENGE(h, UINT64_MAX);
    /* go1.13.8: up to curArena, which keeps 4 MiB - 13 pages at the top */
    ga_addr top = go1130 ? region + 524 * MiB : c + 8 * MiB;
    span_want one[] = {{region, (top - region) / GO_PAGE, SPAN_FREE, true}};
    LAYOUT(h, one);
    in = info_of(h);
    CHECK(go1130 ? in.cur_arena_end == 0
                 : in.cur_arena_base == top &&
                       in.cur_arena_end == region + 524 * MiB);
    ga_heap_free(h);

    /* mips: 31-bit addresses, same layout. */
    h = VIRT_R("linux", "mips", r);
    if (h == NULL) {
        return;
    }
    a = MALLOC(h, 100000);
    CHECK(a == region);
    CHECK(ga_arenas(h, NULL, 0) == 1);
    /* its L2 map has 512 entries: 2 KiB out of other_sys; sweepSpans
     * 1 KiB + 2 KiB */
    st = stats_of(h);
    CHECK_MSG(st.other_sys ==
                  262144 - 16384 - 16384 - 4096 - 2048 - 1024 - 2048 + 65536,
              "mips: other_sys %" PRIu64, st.other_sys);
    ga_heap_free(h);
}

static void
test_32bit(void)
{
    for (size_t i = 0; i < NRELEASES; i++) {
        test_32bit_release(release_of(i));
    }
}

/* ---- Growth on the other 64-bit branches ------------------------- */

static void
test_other_platform_growth(void)
{
    static const struct {
        const char *goos;
        const char *goarch;
        ga_addr first;
        uint64_t arena;
    } cases[] = {
        {"darwin", "arm64", 0x000000130000000, 64 * MiB},
        {"linux", "arm64", 0x0000004000000000, 64 * MiB},
        {"aix", "ppc64", 0x0a00010000000000, 256 * MiB},
        {"windows", "amd64", 0x00c000000000, 4 * MiB},
    };
    for (size_t i = 0; i < 2 * sizeof cases / sizeof cases[0]; i++) {
        ga_release r = release_of(i % 2);
        ga_heap *h = VIRT_R(cases[i / 2].goos, cases[i / 2].goarch, r);
        if (h == NULL) {
            continue;
        }
        size_t n0 = hint_count(h);
        ga_addr a = MALLOC(h, 100000);
        CHECK_MSG(a == cases[i / 2].first, "%s/%s: first object at 0x%" PRIx64,
                  cases[i / 2].goos, cases[i / 2].goarch, a);
        CHECK(head_hint(h, NULL) == a + cases[i / 2].arena &&
              hint_count(h) == n0);
        ga_mem_stats st = stats_of(h);
        CHECK_MSG(st.heap_sys == cases[i / 2].arena,
                  "%s/%s: heap_sys %" PRIu64, cases[i / 2].goos,
                  cases[i / 2].goarch, st.heap_sys);
        /* Grow by two more arenas: contiguous. */
        ga_addr b = MALLOC(h, 2 * cases[i / 2].arena);
        CHECK(b == a + 13 * GO_PAGE);
        arena_list ar = get_arenas(h);
        CHECK(ar.n == 3);
        for (size_t k = 0; k < ar.n; k++) {
            CHECK_MSG(ar.v[k].base == a + k * cases[i / 2].arena,
                      "%s/%s: arena %zu at 0x%" PRIx64, cases[i / 2].goos,
                      cases[i / 2].goarch, k, ar.v[k].base);
        }
        free(ar.v);
        FREE(h, a);
        FREE(h, b);
        SCAVENGE(h, UINT64_MAX);
        /* go1.13.0: the three arenas; go1.13.8: up to curArena */
        uint64_t used = r == GA_RELEASE_GO1_13_0
                            ? 3 * cases[i / 2].arena
                            : 13 * GO_PAGE + 2 * cases[i / 2].arena;
        span_want one[] = {{a, used / GO_PAGE, SPAN_FREE, true}};
        LAYOUT(h, one);
        ga_heap_info in = info_of(h);
        CHECK(r == GA_RELEASE_GO1_13_0
                  ? in.cur_arena_end == 0
                  : in.cur_arena_base == a + used &&
                        in.cur_arena_end == a + 3 * cases[i / 2].arena);
        ga_heap_free(h);
    }
}

int
main(void)
{
    CHECK_RUN(test_platform_info());
    CHECK_RUN(test_bad_platforms());
    CHECK_RUN(test_32bit());
    CHECK_RUN(test_other_platform_growth());
    int failed = check_summary("platform");
    return failed > 255 ? 255 : failed;
}
