/* mallocinit: the hint table of every platform branch, the options and
 * their defaults, the release option, and one mcache per P.
 *
 * Every expected number is computed here from Go 1.13's formulas
 * (design §4.2), not read back from the code under test.
 * Go 1.13: src/runtime/malloc.go (mallocinit), mcache.go (allocmcache),
 *          mgc.go (gcinit's scavenger goal).
 * Differs from Go: several heaps, each with its own options (design §5).
 * Locking: single-threaded.
 */
#include "heap_helpers.h"

static size_t
want_hints_darwin_arm64(ga_addr *w)
{
    for (uint64_t i = 0; i < NUM_HINTS_64; i++) {
        w[i] = 0x000000130000000 + i * TiB; /* 0x13<<28 */
    }
    return NUM_HINTS_64;
}

static size_t
want_hints_arm64(ga_addr *w)
{
    for (uint64_t i = 0; i < NUM_HINTS_64; i++) {
        w[i] = 0x0000004000000000 + i * TiB; /* 0x40<<32 */
    }
    return NUM_HINTS_64;
}

static size_t
want_hints_aix(ga_addr *w)
{
    /* i = 0 is skipped: 127 hints from 0x0a00_0100_0000_0000. */
    for (uint64_t i = 1; i < NUM_HINTS_64; i++) {
        w[i - 1] = 0x0a00000000000000 + i * TiB;
    }
    return NUM_HINTS_64 - 1;
}

static size_t
want_hints_race(ga_addr *w)
{
    /* 0xc0<<32 .. 0xdf<<32, then the same 32 again (design §4.2). */
    size_t n = 0;
    for (int pass = 0; pass < 2; pass++) {
        for (uint64_t j = 0; j < 32; j++) {
            w[n++] = 0x00c000000000 + (j << 32);
        }
    }
    return n;
}

static void
test_hint_tables(void)
{
    static const struct {
        const char *goos;
        const char *goarch;
        bool race;
        size_t (*want)(ga_addr *);
    } cases[] = {
        {"linux", "amd64", false, want_hints_default},
        {"darwin", "amd64", false, want_hints_default},
        {"windows", "amd64", false, want_hints_default},
        {"linux", "ppc64le", false, want_hints_default},
        {"linux", "s390x", false, want_hints_default},
        {"darwin", "arm64", false, want_hints_darwin_arm64},
        {"linux", "arm64", false, want_hints_arm64},
        {"android", "arm64", false, want_hints_arm64},
        {"aix", "ppc64", false, want_hints_aix},
        {"linux", "amd64", true, want_hints_race},
        {"windows", "amd64", true, want_hints_race},
        {"linux", "ppc64le", true, want_hints_race},
        /* race is tested after arm64 in mallocinit's switch */
        {"linux", "arm64", true, want_hints_arm64},
    };
    ga_addr want[NUM_HINTS_64];
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        char what[64];
        snprintf(what, sizeof what, "%s/%s%s", cases[c].goos, cases[c].goarch,
                 cases[c].race ? " race" : "");
        ga_heap *h = open_virtual(cases[c].goos, cases[c].goarch,
                                  cases[c].race, __LINE__);
        if (h == NULL) {
            continue;
        }
        size_t n = cases[c].want(want);
        check_hint_table(h, want, n, what);
        /* mallocinit reserves no heap: no arenas, no spans, heap_sys 0. */
        ga_mem_stats st = stats_of(h);
        CHECK_MSG(ga_arenas(h, NULL, 0) == 0 && ga_spans(h, NULL, 0) == 0 &&
                      st.heap_sys == 0 && st.mcache_sys == 16384,
                  "%s: mallocinit mapped heap", what);
        VERIFY(h);
        ga_heap_free(h);
    }

    /* The 32-bit path, for two binary ends. */
    static const struct {
        const char *goarch;
        uint64_t binary_end;
    } c32[] = {
        {"386", 0},    {"arm", 0},          {"mips", 0},
        {"mipsle", 0}, {"386", 0x10000000}, {"arm", 0x00401234},
    };
    for (size_t c = 0; c < sizeof c32 / sizeof c32[0]; c++) {
        ga_options o;
        opts(&o, "linux", c32[c].goarch, false, GA_BACKING_VIRTUAL);
        if (c32[c].binary_end != 0) {
            o.binary_end = c32[c].binary_end;
        }
        CHECK(o.binary_end != 0);
        ga_heap *h = OPEN(&o);
        if (h == NULL) {
            continue;
        }
        char what[64];
        snprintf(what, sizeof what, "linux/%s binary_end 0x%" PRIx64,
                 c32[c].goarch, o.binary_end);
        want[0] = want_hint_32(o.binary_end);
        check_hint_table(h, want, 1, what);
        VERIFY(h);
        ga_heap_free(h);
    }
    /* The default binary end, spelled out: round_up(0x08200000 + 256 KiB,
     * 4 MiB) = 0x08400000; + 516 MiB = 0x28800000. */
    CHECK(want_region_32(0x08200000) == 0x08400000);
    CHECK(want_hint_32(0x08200000) == 0x28800000);
}

/* The release option: names, the goal each release has before a GC,
 * and a release the heap does not know. */
static void
test_release_options(void)
{
    CHECK(strcmp(ga_release_name(GA_RELEASE_GO1_13_8), "go1.13.8") == 0);
    CHECK(strcmp(ga_release_name(GA_RELEASE_GO1_13_0), "go1.13.0") == 0);
    CHECK(ga_release_name((ga_release)2) == NULL);
    static const struct {
        const char *s;
        bool ok;
        ga_release r;
    } names[] = {
        {"go1.13.8", true, GA_RELEASE_GO1_13_8},
        {"go1.13.0", true, GA_RELEASE_GO1_13_0},
        {"go1.13", true, GA_RELEASE_GO1_13_0}, /* Go's tag for 1.13.0 */
        {"go1.13.1", false, 0},
        {"go1.13.80", false, 0},
        {"", false, 0},
        {"go1.13.8 ", false, 0},
        {"GO1.13.8", false, 0},
        {"1.13.8", false, 0},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        ga_release r = (ga_release)7;
        bool ok = ga_release_parse(names[i].s, &r);
        CHECK_MSG(ok == names[i].ok && (!ok || r == names[i].r),
                  "ga_release_parse(\"%s\")", names[i].s);
    }
    /* go1.13.0: next_gc * 1.1 after gcinit (design §3.6); go1.13.8: 0
     * until the first GC, whatever GOGC is. */
    CHECK(ga_release_scavenge_goal(GA_RELEASE_GO1_13_0, 100) == 4923392);
    CHECK(ga_release_scavenge_goal(GA_RELEASE_GO1_13_0, 200) ==
          ga_gogc_scavenge_goal(200));
    CHECK(ga_release_scavenge_goal(GA_RELEASE_GO1_13_0, -1) ==
          ga_gogc_scavenge_goal(-1));
    CHECK(ga_release_scavenge_goal(GA_RELEASE_GO1_13_8, 100) == 0);
    CHECK(ga_release_scavenge_goal(GA_RELEASE_GO1_13_8, -1) == 0);
    ga_options o;
    ga_options_init(&o);
    CHECK(o.release == GA_RELEASE_GO1_13_8 && o.scavenge_goal == 0);
    ga_options_set_release(&o, GA_RELEASE_GO1_13_0);
    CHECK(o.release == GA_RELEASE_GO1_13_0 && o.scavenge_goal == 4923392);
    o.backing = GA_BACKING_VIRTUAL;
    ga_heap *h = OPEN(&o);
    if (h != NULL) {
        ga_heap_info in = info_of(h);
        CHECK(in.release == GA_RELEASE_GO1_13_0 &&
              in.scavenge_goal == 4923392 && in.cur_arena_base == 0 &&
              in.cur_arena_end == 0);
        ga_heap_free(h);
    }
    o.release = (ga_release)2;
    ga_status st = GA_OK;
    char err[256] = "";
    h = ga_heap_new(&o, &st, err, sizeof err);
    CHECK_MSG(h == NULL && st == GA_EINVAL && strstr(err, "release") != NULL,
              "release 2: %s \"%s\"", ga_status_name(st), err);
    ga_heap_free(h);
}

/* ga_options_init: Go's defaults. */
static void
test_options_defaults(void)
{
    ga_options o;
    memset(&o, 0x5a, sizeof o);
    ga_options_init(&o);
    CHECK(strcmp(o.goos, "linux") == 0 && strcmp(o.goarch, "amd64") == 0);
    CHECK(!o.race && o.backing == GA_BACKING_OS && o.procs == 1);
    /* go1.13.8, whose scavenger goal is 0 until the first GC */
    CHECK(o.release == GA_RELEASE_GO1_13_8);
    CHECK(o.scavenge_goal == 0 && o.sys_limit == 0);
    CHECK(o.binary_end == 0x08200000);
}

/* Every P gets an mcache from cachealloc: 1736 bytes each, 9 to a 16 KiB
 * chunk (design §3.4). */
static void
test_procs(void)
{
    static const int procs[] = {1, 4, 9, 10, 64};
    for (size_t i = 0; i < sizeof procs / sizeof procs[0]; i++) {
        ga_options o;
        opts(&o, "linux", "amd64", false, GA_BACKING_VIRTUAL);
        o.procs = procs[i];
        ga_heap *h = OPEN(&o);
        if (h == NULL) {
            continue;
        }
        uint64_t n = (uint64_t)procs[i];
        ga_mem_stats st = stats_of(h);
        CHECK_MSG(st.mcache_inuse == n * GO_SIZEOF_MCACHE &&
                      st.mcache_sys == (n + 8) / 9 * 16384,
                  "procs %d: mcache_inuse %" PRIu64 " mcache_sys %" PRIu64,
                  procs[i], st.mcache_inuse, st.mcache_sys);
        CHECK(info_of(h).procs == procs[i]);
        ga_addr a = 0;
        CHECK(ga_malloc(h, procs[i] - 1, 100000, false, &a) == GA_OK &&
              a == 0xc000000000);
        VERIFY(h);
        digest d;
        digest_take(h, &d);
        CHECK(ga_malloc(h, procs[i], 100000, false, &a) == GA_EBADP);
        SAME_DIGEST(h, &d, "a malloc on a P that does not exist");
        digest_free(&d);
        ga_heap_free(h);
    }
}

int
main(void)
{
    CHECK_RUN(test_hint_tables());
    CHECK_RUN(test_release_options());
    CHECK_RUN(test_options_defaults());
    CHECK_RUN(test_procs());
    int failed = check_summary("mallocinit");
    return failed > 255 ? 255 : failed;
}
