/* Tests of the page heap through the public facade (csrc/goalloc.h).
 *
 * mallocinit's hint tables for every platform branch, the first arena and
 * its statistics, growth by whole arenas, first fit by address,
 * coalescing, the scavenger, hint collisions and the fallback
 * reservation, bad input, several heaps in one process, poisoning, the
 * 32-bit pre-reserved arena, both releases' page heaps (go1.13.8's
 * curArena, go1.13.0's whole-arena growth), and growths whose metadata
 * allocations fail one by one (ga_fail_metadata) or pass metadata_limit. Every
 * expected number is computed here from Go 1.13's formulas (docs/design.md,
 * chapters 3 and 4), not read back from the code under test, and every
 * mutating step is followed by ga_verify. Go 1.13: src/runtime/malloc.go
 * (mallocinit, sysAlloc, largeAlloc), mheap.go (allocSpanLocked, grow,
 * coalesce, scavengeLocked, scavengeSplit, scavengeIfNeededLocked), mstats.go;
 * the scenarios of malloc_test.go (TestArenaCollision), treap_test.go
 * (FindFirstFit) and gc_test.go. Differs from Go: Go frees by sweeping; here
 * objects are freed explicitly (design §6).  Only large objects are used: the
 *          heap is tested below the mcentral/mcache layer.
 * Locking: single-threaded, except the thread tests at the end, which
 *          run in forked children so that an abort cannot end the run.
 */
#define _POSIX_C_SOURCE 200809L /* fork, waitpid, clock_gettime */

#include "check.h"
#include "goalloc.h"

#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- Constants (design §3), spelled out independently of csrc ------- */

#define KiB ((uint64_t)1 << 10)
#define MiB ((uint64_t)1 << 20)
#define TiB ((uint64_t)1 << 40)
#define GO_PAGE ((uint64_t)8192) /* _PageSize */
#define ARENA_64 (64 * MiB)      /* heapArenaBytes, 64-bit non-Windows */
#define ARENA_32 (4 * MiB)       /* heapArenaBytes, 32-bit and windows */
#define HUGE_2M (2 * MiB)        /* physHugePageSize on linux */
#define NUM_HINTS_64 128

/* Go's mSpanState values. */
enum { SPAN_DEAD = 0, SPAN_IN_USE = 1, SPAN_MANUAL = 2, SPAN_FREE = 3 };

/* unsafe.Sizeof on amd64 (design §3.4). */
#define GO_SIZEOF_MSPAN 136
#define GO_SIZEOF_MCACHE 1736
#define GO_SIZEOF_HEAP_ARENA_AMD64 2164736

/* Go's sweepSpans[0] (mgcsweepbuf.go gcSweepBuf): alloc_m pushes every
 * span it allocates, and without a GC nothing pops them.  The spine (256
 * pointers at first) and the blocks of 512 pointers are persistentalloc'd
 * to gc_sys, so out of other_sys: the bytes after n pushes (n <= 512 x
 * 256, the first spine's reach). */
static uint64_t
go_sweep_spans_bytes(uint64_t pushes, uint64_t ptr)
{
    if (pushes == 0) {
        return 0;
    }
    return 256 * ptr + (pushes + 511) / 512 * 512 * ptr;
}

/* ---- Small helpers ------------------------------------------------- */

static void *
xcalloc(size_t n, size_t size)
{
    void *p = calloc(n == 0 ? 1 : n, size);
    if (p == NULL) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    return p;
}

static uint64_t
round_up(uint64_t x, uint64_t align)
{
    return (x + align - 1) / align * align;
}

static uint64_t
pages_for(uint64_t size)
{
    return (size + GO_PAGE - 1) / GO_PAGE;
}

static void
opts(ga_options *o, const char *goos, const char *goarch, bool race,
     ga_backing backing)
{
    ga_options_init(o);
    o->goos = goos;
    o->goarch = goarch;
    o->race = race;
    o->backing = backing;
}

#define OPEN(o) open_at((o), __LINE__)

static ga_heap *
open_at(const ga_options *o, int line)
{
    ga_status st = GA_EPOISONED;
    char err[256] = "";
    ga_heap *h = ga_heap_new(o, &st, err, sizeof err);
    CHECK_MSG(h != NULL && st == GA_OK,
              "line %d: ga_heap_new(%s/%s race=%d) = %s: %s", line, o->goos,
              o->goarch, (int)o->race, ga_status_name(st), err);
    return h;
}

static ga_heap *
open_virtual(const char *goos, const char *goarch, bool race, int line)
{
    ga_options o;
    opts(&o, goos, goarch, race, GA_BACKING_VIRTUAL);
    return open_at(&o, line);
}

#define VIRT(goos, goarch) open_virtual((goos), (goarch), false, __LINE__)

/* A virtual heap of release r (design §5.8): the default is
 * go1.13.8; tests of go1.13.0's page heap pin it. */
static ga_heap *
open_virtual_release(const char *goos, const char *goarch, ga_release r,
                     int line)
{
    ga_options o;
    opts(&o, goos, goarch, false, GA_BACKING_VIRTUAL);
    ga_options_set_release(&o, r);
    return open_at(&o, line);
}

#define VIRT_R(goos, goarch, r)                                               \
    open_virtual_release((goos), (goarch), (r), __LINE__)
#define VIRT0(goos, goarch) VIRT_R((goos), (goarch), GA_RELEASE_GO1_13_0)

static const ga_release both_releases[] = {GA_RELEASE_GO1_13_8,
                                           GA_RELEASE_GO1_13_0};
#define NRELEASES (sizeof both_releases / sizeof both_releases[0])

#define VERIFY(h) verify_at((h), __LINE__)

static bool
verify_at(ga_heap *h, int line)
{
    char msg[512] = "";
    bool ok = ga_verify(h, msg, sizeof msg);
    return CHECK_MSG(ok, "line %d: ga_verify: %s", line, msg);
}

#define MALLOC(h, size) malloc_at((h), (size), false, __LINE__)
#define MALLOC_NOSCAN(h, size) malloc_at((h), (size), true, __LINE__)

static ga_addr
malloc_at(ga_heap *h, uint64_t size, bool noscan, int line)
{
    ga_addr a = 0;
    ga_status st = ga_malloc(h, 0, size, noscan, &a);
    CHECK_MSG(st == GA_OK, "line %d: ga_malloc(%" PRIu64 ") = %s", line, size,
              ga_status_name(st));
    verify_at(h, line);
    return st == GA_OK ? a : 0;
}

#define FREE(h, a) free_at((h), (a), __LINE__)

static void
free_at(ga_heap *h, ga_addr a, int line)
{
    ga_status st = ga_free(h, a);
    CHECK_MSG(st == GA_OK, "line %d: ga_free(0x%" PRIx64 ") = %s", line, a,
              ga_status_name(st));
    verify_at(h, line);
}

#define SCAVENGE(h, n) scavenge_at((h), (n), __LINE__)

static uint64_t
scavenge_at(ga_heap *h, uint64_t nbytes, int line)
{
    uint64_t released = UINT64_MAX;
    ga_status st = ga_scavenge(h, nbytes, &released);
    CHECK_MSG(st == GA_OK, "line %d: ga_scavenge = %s", line,
              ga_status_name(st));
    verify_at(h, line);
    return released;
}

static ga_mem_stats
stats_of(ga_heap *h)
{
    ga_mem_stats s;
    memset(&s, 0, sizeof s);
    ga_status st = ga_read_mem_stats(h, &s);
    CHECK_MSG(st == GA_OK, "ga_read_mem_stats = %s", ga_status_name(st));
    return s;
}

static ga_heap_info
info_of(ga_heap *h)
{
    ga_heap_info in;
    memset(&in, 0, sizeof in);
    ga_heap_info_get(h, &in);
    return in;
}

/* ---- Introspection lists ------------------------------------------- */

typedef struct hint_list {
    ga_hint_info *v;
    size_t n;
} hint_list;

typedef struct span_list {
    ga_span_info *v;
    size_t n;
} span_list;

typedef struct arena_list {
    ga_arena_info *v;
    size_t n;
} arena_list;

static hint_list
get_hints(ga_heap *h)
{
    hint_list l;
    l.n = ga_hints(h, NULL, 0);
    l.v = xcalloc(l.n, sizeof *l.v);
    CHECK(ga_hints(h, l.v, l.n) == l.n);
    return l;
}

static span_list
get_spans(ga_heap *h)
{
    span_list l;
    l.n = ga_spans(h, NULL, 0);
    l.v = xcalloc(l.n, sizeof *l.v);
    CHECK(ga_spans(h, l.v, l.n) == l.n);
    return l;
}

static arena_list
get_arenas(ga_heap *h)
{
    arena_list l;
    l.n = ga_arenas(h, NULL, 0);
    l.v = xcalloc(l.n, sizeof *l.v);
    CHECK(ga_arenas(h, l.v, l.n) == l.n);
    return l;
}

static size_t
hint_count(ga_heap *h)
{
    return ga_hints(h, NULL, 0);
}

/* head_hint returns the first hint's address (0 if there is none). */
static ga_addr
head_hint(ga_heap *h, bool *down)
{
    ga_hint_info hi[1];
    memset(hi, 0, sizeof hi);
    if (ga_hints(h, hi, 1) == 0) {
        return 0;
    }
    if (down != NULL) {
        *down = hi[0].down;
    }
    return hi[0].addr;
}

/* A digest of everything a caller can observe: a rejected call must
 * leave it byte for byte as it was (design §10.2). */
typedef struct digest {
    hint_list hints;
    span_list spans;
    arena_list arenas;
    ga_mem_stats stats;
    ga_heap_info info;
} digest;

static void
digest_take(ga_heap *h, digest *d)
{
    memset(d, 0, sizeof *d);
    d->hints = get_hints(h);
    d->spans = get_spans(h);
    d->arenas = get_arenas(h);
    d->stats = stats_of(h);
    d->info = info_of(h);
}

static void
digest_free(digest *d)
{
    free(d->hints.v);
    free(d->spans.v);
    free(d->arenas.v);
    memset(d, 0, sizeof *d);
}

/* same_digest compares d with the heap's state now; what names the
 * rejected call in the failure message. */
#define SAME_DIGEST(h, d, what) same_digest_at((h), (d), (what), __LINE__)

static bool
same_digest_at(ga_heap *h, const digest *d, const char *what, int line)
{
    digest now;
    digest_take(h, &now);
    const char *diff = NULL;
    if (now.hints.n != d->hints.n ||
        memcmp(now.hints.v, d->hints.v, d->hints.n * sizeof *d->hints.v)) {
        diff = "hints";
    }
    else if (now.spans.n != d->spans.n ||
             memcmp(now.spans.v, d->spans.v,
                    d->spans.n * sizeof *d->spans.v)) {
        diff = "spans";
    }
    else if (now.arenas.n != d->arenas.n ||
             memcmp(now.arenas.v, d->arenas.v,
                    d->arenas.n * sizeof *d->arenas.v)) {
        diff = "arenas";
    }
    else if (memcmp(&now.stats, &d->stats, sizeof d->stats) != 0) {
        diff = "mem stats";
    }
    else if (memcmp(&now.info, &d->info, sizeof d->info) != 0) {
        diff = "heap info";
    }
    digest_free(&now);
    return CHECK_MSG(diff == NULL, "line %d: %s changed the heap's %s", line,
                     what, diff);
}

/* ---- Span layout expectations ------------------------------------- */

typedef struct span_want {
    ga_addr base;
    uint64_t npages;
    int state;
    bool scavenged;
} span_want;

static void
print_layout(const span_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        const ga_span_info *s = &l->v[i];
        fprintf(stderr, "    [%zu] 0x%" PRIx64 " %" PRIu64 "p state %d%s\n", i,
                s->base, s->npages, s->state,
                s->scavenged ? " scavenged" : "");
    }
}

#define LAYOUT(h, want)                                                       \
    check_layout_at((h), (want), sizeof(want) / sizeof((want)[0]), __LINE__)

static bool
check_layout_at(ga_heap *h, const span_want *want, size_t n, int line)
{
    span_list l = get_spans(h);
    bool ok = l.n == n;
    for (size_t i = 0; ok && i < n; i++) {
        const ga_span_info *s = &l.v[i];
        ok = s->base == want[i].base && s->npages == want[i].npages &&
             s->state == want[i].state && s->scavenged == want[i].scavenged;
    }
    if (!CHECK_MSG(ok, "line %d: span layout differs", line)) {
        fprintf(stderr, "  have:\n");
        print_layout(&l);
        fprintf(stderr, "  want:\n");
        for (size_t i = 0; i < n; i++) {
            fprintf(stderr,
                    "    [%zu] 0x%" PRIx64 " %" PRIu64 "p state %d%s\n", i,
                    want[i].base, want[i].npages, want[i].state,
                    want[i].scavenged ? " scavenged" : "");
        }
    }
    free(l.v);
    return ok;
}

/* check_large_span: the span of a live large object (design §4.6). */
#define LARGE_SPAN(h, a, size, noscan)                                        \
    check_large_span_at((h), (a), (size), (noscan), __LINE__)

static void
check_large_span_at(ga_heap *h, ga_addr a, uint64_t size, bool noscan,
                    int line)
{
    ga_span_info s;
    memset(&s, 0, sizeof s);
    if (!CHECK_MSG(ga_span_of(h, a, &s), "line %d: no span at 0x%" PRIx64,
                   line, a)) {
        return;
    }
    uint64_t np = pages_for(size);
    CHECK_MSG(s.base == a && s.npages == np && s.state == SPAN_IN_USE &&
                  !s.scavenged && s.sizeclass == 0 &&
                  s.spanclass == (noscan ? 1 : 0) && s.noscan == noscan &&
                  s.elemsize == np * GO_PAGE && s.nelems == 1 &&
                  s.alloc_count == 1 && s.freeindex == 1 &&
                  s.limit == a + size,
              "line %d: large span at 0x%" PRIx64 ": base 0x%" PRIx64
              " npages %" PRIu64 " (want %" PRIu64 ") state %d class %d"
              " elemsize %" PRIu64 " nelems %" PRIu64 " limit 0x%" PRIx64,
              line, a, s.base, s.npages, np, s.state, s.spanclass, s.elemsize,
              s.nelems, s.limit);
    /* Every page of an in-use span maps to it (design §11.2). */
    ga_span_info t;
    memset(&t, 0, sizeof t);
    CHECK_MSG(ga_span_of(h, a + np * GO_PAGE - 1, &t) && t.base == a,
              "line %d: last page of 0x%" PRIx64 " maps elsewhere", line, a);
}

/* Go's (*mspan).hugePages: whole huge pages inside [base, base+n). */
static uint64_t
huge_pages_in(ga_addr base, uint64_t npages, uint64_t huge)
{
    if (huge == 0 || npages < huge / GO_PAGE) {
        return 0;
    }
    ga_addr start = round_up(base, huge);
    ga_addr end = (base + npages * GO_PAGE) / huge * huge;
    return start < end ? (end - start) / huge : 0;
}

/* unscavHugePages recomputed from the span list (TestUnscavHugePages). */
static uint64_t
unscav_huge_pages_slow(ga_heap *h)
{
    uint64_t huge = info_of(h).phys_huge_page_size;
    span_list l = get_spans(h);
    uint64_t n = 0;
    for (size_t i = 0; i < l.n; i++) {
        if (l.v[i].state == SPAN_FREE && !l.v[i].scavenged) {
            n += huge_pages_in(l.v[i].base, l.v[i].npages, huge);
        }
    }
    free(l.v);
    return n;
}

/* ---- 1. Hint tables ------------------------------------------------ */

/* The expected tables, from the formulas of design §4.2. */
static size_t
want_hints_default(ga_addr *w)
{
    for (uint64_t i = 0; i < NUM_HINTS_64; i++) {
        w[i] = 0x00c000000000 + i * TiB;
    }
    return NUM_HINTS_64;
}

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

/* The 32-bit path (design §4.2): p = round_up(binary_end + 256 KiB,
 * 4 MiB); the simulator hands the 512 MiB + 4 MiB reservation out at p,
 * which is 4 MiB aligned, so sysReserveAligned keeps all of it; the one
 * up-hint sits at its end. */
static ga_addr
want_region_32(uint64_t binary_end)
{
    return round_up(binary_end + 256 * KiB, ARENA_32);
}

static ga_addr
want_hint_32(uint64_t binary_end)
{
    return want_region_32(binary_end) + 512 * MiB + ARENA_32;
}

static void
check_hint_table(ga_heap *h, const ga_addr *want, size_t n, const char *what)
{
    hint_list l = get_hints(h);
    CHECK_MSG(l.n == n, "%s: %zu hints, want %zu", what, l.n, n);
    size_t bad = 0;
    for (size_t i = 0; i < n && i < l.n; i++) {
        if (l.v[i].addr != want[i] || l.v[i].down) {
            if (bad++ == 0) {
                fprintf(stderr,
                        "%s: hint %zu is 0x%" PRIx64 "%s, want 0x%" PRIx64
                        "\n",
                        what, i, l.v[i].addr, l.v[i].down ? " (down)" : "",
                        want[i]);
            }
        }
    }
    CHECK_MSG(bad == 0, "%s: %zu hints differ", what, bad);
    free(l.v);
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

/* ---- 2. The first arena -------------------------------------------- */

/* check_first_growth checks a heap right after its first ga_malloc of
 * 100000 bytes returned a.  want_hints is the hint table before. */
static void
check_first_growth(ga_heap *h, ga_addr a, const ga_addr *want_hints,
                   size_t nwant, const char *what)
{
    bool go1130 = info_of(h).release == GA_RELEASE_GO1_13_0;
    /* largeAlloc: npages = size >> _PageShift, +1 for the remainder:
     * 100000 = 12 * 8192 + 1696, so 13 pages. */
    const uint64_t np = 13;
    const uint64_t inuse = np * GO_PAGE;
    CHECK(pages_for(100000) == np);

    /* sysAlloc took the first hint whose reservation landed where asked;
     * every hint before it was discarded (design §4.3), and the
     * one it used moved up by the 64 MiB it gave. */
    size_t left = hint_count(h);
    size_t discarded = nwant - left;
    CHECK_MSG(left <= nwant && discarded < nwant && a == want_hints[discarded],
              "%s: object at 0x%" PRIx64 ", %zu hints discarded", what, a,
              discarded);
    CHECK_MSG(head_hint(h, NULL) == a + ARENA_64,
              "%s: head hint 0x%" PRIx64 ", want 0x%" PRIx64, what,
              head_hint(h, NULL), a + ARENA_64);

    LARGE_SPAN(h, a, 100000, false);
    /* Interior addresses are reported through their span. */
    ga_span_info s;
    memset(&s, 0, sizeof s);
    CHECK(ga_span_of(h, a + 99999, &s) && s.base == a);
    CHECK(ga_span_of(h, a + np * GO_PAGE - 1, &s) && s.base == a);

    ga_heap_info in = info_of(h);
    if (go1130) {
        /* The rest of the arena is one free span, still released: grow
         * made the whole arena a scavenged free span (fresh memory is
         * untouched) and allocSpanLocked carved the low 13 pages out of
         * it. */
        span_want layout[] = {
            {a, np, SPAN_IN_USE, false},
            {a + inuse, ARENA_64 / GO_PAGE - np, SPAN_FREE, true},
        };
        LAYOUT(h, layout);
        CHECK(in.cur_arena_base == 0 && in.cur_arena_end == 0);
    }
    else {
        /* go1.13.8: grow made a span of the 13 pages asked for (rounded
         * to physPageSize: no change) off the bottom of curArena, which
         * keeps the rest of the arena, mapped but no span. */
        span_want layout[] = {{a, np, SPAN_IN_USE, false}};
        LAYOUT(h, layout);
        CHECK_MSG(in.cur_arena_base == a + inuse &&
                      in.cur_arena_end == a + ARENA_64,
                  "%s: curArena [0x%" PRIx64 ", 0x%" PRIx64 ")", what,
                  in.cur_arena_base, in.cur_arena_end);
        ga_span_info none;
        CHECK(!ga_span_of(h, a + inuse, &none) &&
              !ga_span_of(h, a + ARENA_64 - 1, &none));
    }

    arena_list ar = get_arenas(h);
    CHECK(ar.n == 1);
    if (ar.n == 1) {
        /* arenaIndex(p) = (p + 2^47) / 64 MiB; 0x203000 for 0xc000000000
         * (design §3.2). */
        uint64_t idx = (a + ((uint64_t)1 << 47)) / ARENA_64;
        CHECK(ar.v[0].base == a && ar.v[0].index == idx && ar.v[0].l1 == 0 &&
              ar.v[0].l2 == idx);
        if (a == 0xc000000000) {
            CHECK(idx == 0x203000);
        }
    }
    free(ar.v);

    ga_mem_stats st = stats_of(h);
    /* sysAlloc: n = round(n, heapArenaBytes), sysMap(v, size,
     * &memstats.heap_sys): one 64 MiB arena. */
    CHECK_MSG(st.heap_sys == ARENA_64, "%s: heap_sys %" PRIu64, what,
              st.heap_sys);
    /* alloc_m: allocSpanLocked(npage, &memstats.heap_inuse) adds
     * npage << _PageShift. */
    CHECK_MSG(st.heap_inuse == inuse, "%s: heap_inuse %" PRIu64, what,
              st.heap_inuse);
    /* grow (go1.13.8: when sysAlloc maps the arena): heap_idle += size;
     * allocSpanLocked: heap_idle -= npage pages. */
    CHECK(st.heap_idle == ARENA_64 - inuse);
    /* grow: heap_released += size; allocSpanLocked: -= s.released(), then
     * += the remainder's released bytes: the whole free remainder
     * (go1.13.8: curArena, released and idle though no span). */
    CHECK_MSG(st.heap_released == st.heap_idle, "%s: heap_released %" PRIu64,
              what, st.heap_released);
    /* alloc_m (large): largealloc += elemsize = npages << _PageShift;
     * updatememstats: heap_alloc = total_alloc - freed. */
    CHECK(st.heap_alloc == inuse && st.alloc == inuse &&
          st.total_alloc == inuse);
    /* nlargealloc++ ; heap_objects = nmalloc - nfree. */
    CHECK(st.mallocs == 1 && st.frees == 0 && st.heap_objects == 1);
    CHECK(st.lookups == 0 && st.stack_inuse == 0 && st.stack_sys == 0 &&
          st.buck_hash_sys == 0);
    /* spanalloc: one 16 KiB fixalloc chunk (_FixAllocChunk) charged to
     * mspan_sys, holding the grown span and (go1.13.0) the carved one
     * (136 B each); go1.13.8's grown span fits the request exactly. */
    const uint64_t nspans = go1130 ? 2 : 1;
    CHECK(st.mspan_sys == 16384);
    CHECK(st.mspan_inuse == nspans * GO_SIZEOF_MSPAN);
    /* cachealloc: one chunk for m0's mcache (mallocinit's allocmcache). */
    CHECK(st.mcache_sys == 16384);
    CHECK(st.mcache_inuse == GO_SIZEOF_MCACHE);
    /* sysAlloc: the heapArena struct (2,164,736 B on amd64) comes from
     * persistentalloc(..., &memstats.gc_sys); being >= 64 KiB it is a
     * direct sysAlloc charged to gc_sys.  allArenas' first backing array
     * is physPageSize (4096) bytes, persistentalloc'd to gc_sys.
     * largeAlloc's initSpan takes the span's mark and alloc bits (8 bytes
     * each) from the gcBits arenas: the first one, 64 KiB sysAlloc'd to
     * gc_sys.  alloc_m pushed the span on sweepSpans: its spine (2 KiB)
     * and first block (4 KiB), persistentalloc'd to gc_sys. */
    CHECK_MSG(st.gc_sys ==
                  GO_SIZEOF_HEAP_ARENA_AMD64 + 4096 + 65536 + 2048 + 4096,
              "%s: gc_sys %" PRIu64, what, st.gc_sys);
    /* other_sys: persistentalloc's first 256 KiB chunk (sysAlloc'd to
     * other_sys) minus what was re-charged from it to mcache_sys (16 KiB),
     * mspan_sys (16 KiB) and gc_sys (4 KiB of allArenas, 6 KiB of
     * sweepSpans); the treap-node and hint fixalloc chunks are other_sys
     * already; plus recordspan's allspans array of 64 KiB / PtrSize
     * entries, sysAlloc'd to other_sys. */
    CHECK_MSG(st.other_sys ==
                  262144 - 16384 - 16384 - 4096 - 2048 - 4096 + 65536,
              "%s: other_sys %" PRIu64, what, st.other_sys);
    /* updatememstats: Sys is the sum of the *Sys fields. */
    CHECK(st.sys == st.heap_sys + st.stack_sys + st.mspan_sys + st.mcache_sys +
                        st.buck_hash_sys + st.gc_sys + st.other_sys);

    in = info_of(h);
    CHECK(in.pages_in_use == np && in.nallspans == nspans &&
          in.unscav_huge_pages == 0);
}

static void
first_growth_virtual(ga_release r)
{
    ga_heap *h = VIRT_R("linux", "amd64", r);
    if (h == NULL) {
        return;
    }
    ga_addr want[NUM_HINTS_64];
    size_t n = want_hints_default(want);
    ga_addr a = MALLOC(h, 100000);
    /* In the simulator nothing is in the way: the first hint. */
    CHECK_MSG(a == 0xc000000000, "virtual: first object at 0x%" PRIx64, a);
    CHECK(hint_count(h) == NUM_HINTS_64);
    check_first_growth(h, a, want, n, "virtual");
    /* ga_alloc returns pointers only on the os backing. */
    CHECK(ga_alloc(h, 0, 100000, false) == NULL);
    VERIFY(h);
    ga_heap_free(h);
}

static void
test_first_growth_virtual(void)
{
    for (size_t i = 0; i < NRELEASES; i++) {
        first_growth_virtual(both_releases[i]);
    }
}

static void
first_growth_os(ga_release r)
{
    ga_options o;
    opts(&o, "linux", "amd64", false, GA_BACKING_OS);
    ga_options_set_release(&o, r);
    ga_heap *h = OPEN(&o);
    if (h == NULL) {
        return;
    }
    ga_addr want[NUM_HINTS_64];
    size_t n = want_hints_default(want);
    check_hint_table(h, want, n, "os");
    /* Under ASan the shadow memory covers 0x00c0...: the first hints
     * collide there and are discarded; check_first_growth accepts any
     * initial hint provided all earlier ones are gone. */
    ga_addr a = MALLOC(h, 100000);
    if (a == 0) {
        ga_heap_free(h);
        return;
    }
    check_first_growth(h, a, want, n, "os");
    /* Real memory: writable, and handed out zeroed. */
    unsigned char *p = (unsigned char *)(uintptr_t)a;
    CHECK(p[0] == 0 && p[99999] == 0);
    memset(p, 0xab, 100000);
    void *q = ga_alloc(h, 0, 200000, true);
    CHECK(q != NULL && (ga_addr)(uintptr_t)q == a + 13 * GO_PAGE);
    if (q != NULL) {
        memset(q, 0xcd, 200000);
        LARGE_SPAN(h, (ga_addr)(uintptr_t)q, 200000, true);
        FREE(h, (ga_addr)(uintptr_t)q);
    }
    FREE(h, a);
    CHECK(SCAVENGE(h, UINT64_MAX) ==
          13 * GO_PAGE + pages_for(200000) * GO_PAGE);
    ga_mem_stats st = stats_of(h);
    CHECK(st.heap_released == ARENA_64 && st.heap_idle == ARENA_64);
    /* Released memory is reused and zeroed again where needed. */
    ga_addr b = MALLOC(h, 100000);
    CHECK(b == a);
    if (b != 0) {
        p = (unsigned char *)(uintptr_t)b;
        CHECK(p[0] == 0 && p[50000] == 0 && p[99999] == 0);
    }
    ga_heap_free(h);
}

static void
test_first_growth_os(void)
{
    for (size_t i = 0; i < NRELEASES; i++) {
        first_growth_os(both_releases[i]);
    }
}

/* ---- 3. Growth by whole arenas (go1.13.0) ------------------------- */

static void
test_growth_arenas(void)
{
    ga_heap *h = VIRT0("linux", "amd64");
    if (h == NULL) {
        return;
    }
    const ga_addr B = 0xc000000000;
    const uint64_t ppa = ARENA_64 / GO_PAGE; /* 8192 pages per arena */
    ga_addr a1 = MALLOC(h, 100000);          /* 13 pages */
    CHECK(a1 == B);

    /* One page more than the free remainder: grow by one arena at the
     * moved hint, 0xc004000000; the fresh arena coalesces with the
     * remainder (both scavenged) and the object is carved from the low
     * end of the merged span, so it crosses the arena boundary. */
    uint64_t np2 = ppa - 13 + 1;
    ga_addr a2 = MALLOC(h, np2 * GO_PAGE);
    CHECK_MSG(a2 == B + 13 * GO_PAGE, "a2 = 0x%" PRIx64, a2);
    LARGE_SPAN(h, a2, np2 * GO_PAGE, false);
    CHECK(head_hint(h, NULL) == B + 2 * ARENA_64);
    ga_span_info s;
    memset(&s, 0, sizeof s);
    /* setSpans across the boundary: the first page of the second arena
     * maps to the span that started in the first. */
    CHECK(ga_span_of(h, B + ARENA_64, &s) && s.base == a2);
    CHECK(ga_span_of(h, B + ARENA_64 - 1, &s) && s.base == a2);
    ga_mem_stats st = stats_of(h);
    CHECK(st.heap_sys == 2 * ARENA_64);
    CHECK(st.heap_inuse == (13 + np2) * GO_PAGE);

    /* 100 MiB rounds up to two arenas (128 MiB) at 0xc008000000; they
     * merge with the free tail of the second arena. */
    ga_addr a3 = MALLOC(h, 100 * MiB);
    ga_addr tail = B + (13 + np2) * GO_PAGE;
    CHECK_MSG(a3 == tail, "a3 = 0x%" PRIx64, a3);
    LARGE_SPAN(h, a3, 100 * MiB, false);
    CHECK(head_hint(h, NULL) == B + 4 * ARENA_64);
    st = stats_of(h);
    CHECK(st.heap_sys == 4 * ARENA_64);
    CHECK(st.heap_released == st.heap_idle);

    arena_list ar = get_arenas(h);
    CHECK(ar.n == 4);
    for (size_t i = 0; i < ar.n && i < 4; i++) {
        /* allArenas, in creation order */
        CHECK_MSG(ar.v[i].base == B + i * ARENA_64 &&
                      ar.v[i].index == 0x203000 + i,
                  "arena %zu at 0x%" PRIx64, i, ar.v[i].base);
    }
    free(ar.v);

    ga_addr end3 = a3 + 100 * MiB;
    span_want grown[] = {
        {B, 13, SPAN_IN_USE, false},
        {a2, np2, SPAN_IN_USE, false},
        {a3, 100 * MiB / GO_PAGE, SPAN_IN_USE, false},
        {end3, (B + 4 * ARENA_64 - end3) / GO_PAGE, SPAN_FREE, true},
    };
    LAYOUT(h, grown);

    /* Coalescing across arenas: freeing a2 then a1 makes one unscavenged
     * span that crosses the first arena boundary. */
    FREE(h, a2);
    FREE(h, a1);
    span_want merged[] = {
        {B, 13 + np2, SPAN_FREE, false},
        {a3, 100 * MiB / GO_PAGE, SPAN_IN_USE, false},
        {end3, (B + 4 * ARENA_64 - end3) / GO_PAGE, SPAN_FREE, true},
    };
    LAYOUT(h, merged);
    CHECK(ga_span_of(h, B + ARENA_64, &s) && s.base == B &&
          s.state == SPAN_FREE);
    /* Freeing a3 joins the unscavenged span below but not the released
     * span above (design §4.7). */
    FREE(h, a3);
    span_want two[] = {
        {B, (end3 - B) / GO_PAGE, SPAN_FREE, false},
        {end3, (B + 4 * ARENA_64 - end3) / GO_PAGE, SPAN_FREE, true},
    };
    LAYOUT(h, two);
    /* Releasing everything leaves one span over all four arenas. */
    uint64_t rel = SCAVENGE(h, UINT64_MAX);
    CHECK_MSG(rel == end3 - B, "released %" PRIu64, rel);
    span_want one[] = {{B, 4 * ppa, SPAN_FREE, true}};
    LAYOUT(h, one);
    st = stats_of(h);
    CHECK(st.heap_released == 4 * ARENA_64 && st.heap_idle == 4 * ARENA_64 &&
          st.heap_inuse == 0 && st.heap_objects == 0 && st.mallocs == 3 &&
          st.frees == 3 && st.heap_alloc == 0);
    CHECK(st.total_alloc == (13 + np2) * GO_PAGE + 100 * MiB);
    /* The next allocation starts at the bottom again. */
    ga_addr a4 = MALLOC(h, 3 * ARENA_64);
    CHECK(a4 == B);
    ga_heap_free(h);
}

/* ---- 4. First fit by address (go1.13.0 layouts) -------------------- */

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

/* ---- 5. Coalescing and the scavenger (go1.13.0 layouts) ------------ */

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
        scavenge_when_case(both_releases[i]);
    }
}

/* ---- go1.13.8: growth into curArena ------------------------------- */

static void
check_cur_arena_at(ga_heap *h, ga_addr base, ga_addr end, int line)
{
    ga_heap_info in = info_of(h);
    CHECK_MSG(in.cur_arena_base == base && in.cur_arena_end == end,
              "line %d: curArena [0x%" PRIx64 ", 0x%" PRIx64
              "), want [0x%" PRIx64 ", 0x%" PRIx64 ")",
              line, in.cur_arena_base, in.cur_arena_end, base, end);
    /* heap_idle and heap_released count it (ReadMemStatsSlow). */
    ga_mem_stats st = stats_of(h);
    span_list l = get_spans(h);
    uint64_t idle = 0, released = 0;
    for (size_t i = 0; i < l.n; i++) {
        if (l.v[i].state == SPAN_FREE) {
            idle += l.v[i].npages * GO_PAGE;
            released += l.v[i].scavenged ? l.v[i].npages * GO_PAGE : 0;
        }
    }
    free(l.v);
    CHECK_MSG(st.heap_idle == idle + (end - base) &&
                  st.heap_released == released + (end - base),
              "line %d: heap_idle %" PRIu64 " heap_released %" PRIu64, line,
              st.heap_idle, st.heap_released);
}

#define CUR_ARENA(h, base, end)                                               \
    check_cur_arena_at((h), (base), (end), __LINE__)

/* test_growth_arenas for go1.13.8: each growth adds the pages asked for;
 * sysAlloc maps whole arenas only when curArena is too small, and new
 * arenas that adjoin it extend it. */
static void
test_growth_cur_arena(void)
{
    ga_heap *h = VIRT("linux", "amd64");
    if (h == NULL) {
        return;
    }
    const ga_addr B = 0xc000000000;
    const uint64_t ppa = ARENA_64 / GO_PAGE;
    ga_addr a1 = MALLOC(h, 100000); /* 13 pages */
    CHECK(a1 == B);
    CUR_ARENA(h, B + 13 * GO_PAGE, B + ARENA_64);
    /* Growing inside curArena takes no address space. */
    ga_addr g = MALLOC(h, 40000);
    CHECK(g == B + 13 * GO_PAGE);
    CHECK(stats_of(h).heap_sys == ARENA_64 && ga_arenas(h, NULL, 0) == 1);
    CUR_ARENA(h, B + 18 * GO_PAGE, B + ARENA_64);
    FREE(h, g); /* a free unscavenged span below curArena */

    /* One page more than curArena holds: sysAlloc maps a new arena at
     * the moved hint, 0xc004000000, which adjoins curArena and extends
     * it.  growAddSpan first scavenges up to np2 pages (goal 0): g's
     * 5-page hole, which then coalesces with the new span above it; so
     * the object starts in the hole, crosses the arena boundary, and a
     * released 5-page remainder is left at its top. */
    uint64_t np2 = ppa - 18 + 1;
    ga_addr a2 = MALLOC(h, np2 * GO_PAGE);
    CHECK_MSG(a2 == B + 13 * GO_PAGE, "a2 = 0x%" PRIx64, a2);
    LARGE_SPAN(h, a2, np2 * GO_PAGE, false);
    CHECK(head_hint(h, NULL) == B + 2 * ARENA_64);
    ga_addr hole = a2 + np2 * GO_PAGE;
    CUR_ARENA(h, hole + 5 * GO_PAGE, B + 2 * ARENA_64);
    CHECK(hole + 5 * GO_PAGE == B + ARENA_64 + GO_PAGE);
    span_want w2[] = {
        {B, 13, SPAN_IN_USE, false},
        {a2, np2, SPAN_IN_USE, false},
        {hole, 5, SPAN_FREE, true},
    };
    LAYOUT(h, w2);
    ga_span_info s;
    memset(&s, 0, sizeof s);
    CHECK(ga_span_of(h, B + ARENA_64, &s) && s.base == hole);
    ga_mem_stats st = stats_of(h);
    CHECK(st.heap_sys == 2 * ARENA_64);
    CHECK(st.heap_inuse == (13 + np2) * GO_PAGE);

    /* 100 MiB: curArena (one arena minus one page) is too small, so
     * sysAlloc maps the whole ask, two arenas at 0xc008000000, which
     * extend curArena again; the grown span coalesces with the released
     * remainder below it and the object starts there. */
    ga_addr a3 = MALLOC(h, 100 * MiB);
    CHECK_MSG(a3 == hole, "a3 = 0x%" PRIx64, a3);
    ga_addr end3 = a3 + 100 * MiB;
    CHECK(head_hint(h, NULL) == B + 4 * ARENA_64);
    CUR_ARENA(h, end3 + 5 * GO_PAGE, B + 4 * ARENA_64);
    span_want w3[] = {
        {B, 13, SPAN_IN_USE, false},
        {a2, np2, SPAN_IN_USE, false},
        {a3, 100 * MiB / GO_PAGE, SPAN_IN_USE, false},
        {end3, 5, SPAN_FREE, true},
    };
    LAYOUT(h, w3);
    st = stats_of(h);
    CHECK(st.heap_sys == 4 * ARENA_64 && ga_arenas(h, NULL, 0) == 4);

    /* Free everything and release it: one released span below curArena,
     * which never becomes a span by itself. */
    FREE(h, a1);
    FREE(h, a2);
    FREE(h, a3);
    SCAVENGE(h, UINT64_MAX);
    ga_addr top = end3 + 5 * GO_PAGE;
    span_want one[] = {{B, (top - B) / GO_PAGE, SPAN_FREE, true}};
    LAYOUT(h, one);
    st = stats_of(h);
    CHECK(st.heap_released == 4 * ARENA_64 && st.heap_idle == 4 * ARENA_64);

    /* 3 arenas fit neither the free span (164 MiB + 8 KiB) nor curArena
     * (92 MiB - 8 KiB): go1.13.8 maps three more arenas and grows into
     * them; the new span coalesces with the released span below, and
     * the object starts at B.  (go1.13.0 had all four arenas as one free
     * span and needed no growth: test_growth_arenas.) */
    CHECK(top - B == 164 * MiB + GO_PAGE);
    ga_addr a4 = MALLOC(h, 3 * ARENA_64);
    CHECK(a4 == B);
    st = stats_of(h);
    CHECK_MSG(st.heap_sys == 7 * ARENA_64, "heap_sys %" PRIu64, st.heap_sys);
    CUR_ARENA(h, top + 3 * ARENA_64, B + 7 * ARENA_64);
    ga_heap_free(h);
}

/* New space that does not adjoin curArena replaces it; what was left of
 * the old curArena becomes a free span (growAddSpan, which scavenges
 * first). */
static void
test_cur_arena_discontiguous(void)
{
    ga_heap *h = VIRT("linux", "amd64");
    if (h == NULL) {
        return;
    }
    const ga_addr B = 0xc000000000;
    const uint64_t ppa = ARENA_64 / GO_PAGE;
    ga_addr a = MALLOC(h, 100000); /* 13 pages at B */
    ga_addr g = MALLOC(h, 40000);  /* 5 pages */
    FREE(h, g);                    /* unscavenged, 5 pages */
    /* Someone maps the next arena: the hint at B + 64 MiB collides and is
     * discarded; the next hint, 1 TiB up, is used. */
    CHECK(ga_block_range(h, B + ARENA_64, GO_PAGE) == GA_OK);
    ga_addr far = B + TiB;
    ga_addr b = MALLOC(h, ARENA_64); /* does not fit curArena's rest */
    CHECK_MSG(b == far, "b = 0x%" PRIx64, b);
    /* The old rest [B+18p, B+64MiB) is a free scavenged span now; its
     * growAddSpan scavenged min(rest, ...) first, releasing g's hole,
     * which then coalesced with it.  The new arena is used up. */
    span_want want[] = {
        {a, 13, SPAN_IN_USE, false},
        {B + 13 * GO_PAGE, ppa - 13, SPAN_FREE, true},
        {far, ppa, SPAN_IN_USE, false},
    };
    LAYOUT(h, want);
    CUR_ARENA(h, far + ARENA_64, far + ARENA_64);
    ga_mem_stats st = stats_of(h);
    CHECK(st.heap_sys == 2 * ARENA_64 &&
          st.heap_released == (ppa - 13) * GO_PAGE &&
          st.heap_idle == st.heap_released);
    /* The next growth takes a new arena above it, which adjoins the
     * (empty) curArena. */
    ga_addr c = MALLOC(h, 40000);
    CHECK(c == B + 13 * GO_PAGE); /* first fit: the old rest */
    ga_addr d = MALLOC(h, ARENA_64);
    CHECK_MSG(d == far + ARENA_64, "d = 0x%" PRIx64, d);
    CUR_ARENA(h, far + 2 * ARENA_64, far + 2 * ARENA_64);
    ga_heap_free(h);
}

/* ---- 6. Hint collisions -------------------------------------------- */

static void
test_hint_collision(void)
{
    ga_heap *h = VIRT("linux", "amd64");
    if (h == NULL) {
        return;
    }
    /* Go's TestArenaCollision: someone maps one page at the next hint. */
    CHECK(ga_block_range(h, 0xc000000000, GO_PAGE) == GA_OK);
    VERIFY(h);
    CHECK(hint_count(h) == NUM_HINTS_64);
    ga_addr a = MALLOC(h, 100000);
    /* That hint is discarded for good; the next one is used and moves. */
    CHECK_MSG(a == 0x01c000000000, "landed at 0x%" PRIx64, a);
    CHECK(hint_count(h) == NUM_HINTS_64 - 1);
    CHECK(head_hint(h, NULL) == 0x01c000000000 + ARENA_64);
    /* Block the next arena too: the moved hint collides, is discarded,
     * and the heap continues at the third hint. */
    CHECK(ga_block_range(h, 0x01c000000000 + ARENA_64 + 5 * GO_PAGE,
                         GO_PAGE) == GA_OK);
    ga_addr b = MALLOC(h, ARENA_64);
    CHECK_MSG(b == 0x02c000000000, "landed at 0x%" PRIx64, b);
    CHECK(hint_count(h) == NUM_HINTS_64 - 2);
    CHECK(head_hint(h, NULL) == 0x02c000000000 + ARENA_64);
    /* Blocking a range the heap holds is refused. */
    CHECK(ga_block_range(h, a, GO_PAGE) == GA_EINVAL);
    CHECK(ga_block_range(h, 0x03c000000000, 0) == GA_EINVAL);
    VERIFY(h);
    ga_heap_free(h);
}

static void
test_fail_reserves_enomem(void)
{
    ga_heap *h = VIRT("linux", "amd64");
    if (h == NULL) {
        return;
    }
    /* Every hint's reservation fails, and so does the reservation
     * anywhere after them: out of memory, and nothing changed (the
     * discarded hints are put back, design §5.7). */
    CHECK(ga_fail_reserves(h, NUM_HINTS_64 + 1) == GA_OK);
    digest d;
    digest_take(h, &d);
    ga_addr out = 0;
    ga_status st = ga_malloc(h, 0, 100000, false, &out);
    CHECK_MSG(st == GA_ENOMEM, "all reserves failing: %s", ga_status_name(st));
    SAME_DIGEST(h, &d, "a failed first growth");
    VERIFY(h);
    digest_free(&d);

    /* With a heap in place, a failed growth leaves it alone too. */
    ga_addr a = MALLOC(h, 100000);
    CHECK(a == 0xc000000000);
    CHECK(ga_fail_reserves(h, 1000) == GA_OK);
    digest_take(h, &d);
    st = ga_malloc(h, 0, ARENA_64, false, &out);
    CHECK_MSG(st == GA_ENOMEM, "growth failing: %s", ga_status_name(st));
    SAME_DIGEST(h, &d, "a failed growth");
    VERIFY(h);
    /* Allocations that fit still work while the OS refuses. */
    ga_addr b = MALLOC(h, 1 * MiB);
    CHECK(b == a + 13 * GO_PAGE);
    digest_free(&d);
    CHECK(ga_fail_reserves(h, 0) == GA_OK);
    ga_addr c = MALLOC(h, ARENA_64);
    CHECK(c == b + 1 * MiB);
    CHECK(stats_of(h).heap_sys == 2 * ARENA_64);
    CHECK(ga_fail_reserves(h, -1) == GA_EINVAL);
    ga_heap_free(h);
}

/* After every hint failed, sysAlloc reserves an aligned region anywhere
 * and pushes a down-hint at v, then an up-hint at v+size (design §4.3). */
static ga_addr
fallback_case(bool by_blocking)
{
    const char *how = by_blocking ? "blocked" : "failing";
    ga_heap *h = VIRT("linux", "amd64");
    if (h == NULL) {
        return 0;
    }
    ga_addr want[NUM_HINTS_64];
    want_hints_default(want);
    if (by_blocking) {
        for (size_t i = 0; i < NUM_HINTS_64; i++) {
            CHECK(ga_block_range(h, want[i], GO_PAGE) == GA_OK);
        }
    }
    else {
        CHECK(ga_fail_reserves(h, NUM_HINTS_64) == GA_OK);
    }
    ga_addr v = MALLOC(h, 100000);
    CHECK_MSG(v != 0 && v % ARENA_64 == 0, "%s: fallback at 0x%" PRIx64, how,
              v);
    for (size_t i = 0; i < NUM_HINTS_64; i++) {
        CHECK_MSG(v != want[i], "%s: fallback took hint %zu", how, i);
    }
    CHECK(stats_of(h).heap_sys == ARENA_64);
    hint_list l = get_hints(h);
    CHECK_MSG(l.n == 2, "%s: %zu hints", how, l.n);
    if (l.n == 2) {
        CHECK_MSG(l.v[0].addr == v + ARENA_64 && !l.v[0].down,
                  "%s: head hint 0x%" PRIx64 " down=%d", how, l.v[0].addr,
                  (int)l.v[0].down);
        CHECK_MSG(l.v[1].addr == v && l.v[1].down,
                  "%s: second hint 0x%" PRIx64 " down=%d", how, l.v[1].addr,
                  (int)l.v[1].down);
    }
    free(l.v);

    /* The up-hint is used next: contiguous growth above v. */
    ga_addr b = MALLOC(h, ARENA_64);
    CHECK_MSG(b == v + 13 * GO_PAGE, "%s: b at 0x%" PRIx64, how, b);
    CHECK(head_hint(h, NULL) == v + 2 * ARENA_64);
    CHECK(hint_count(h) == 2);

    /* Block above: the up-hint is discarded and the down-hint grows the
     * heap below v, moving down itself.  The first object is freed and
     * released first, so the new arena (released) coalesces with the
     * free span above it, and the object is carved from the merged
     * span's low end. */
    FREE(h, v);
    CHECK(SCAVENGE(h, UINT64_MAX) == 13 * GO_PAGE);
    CHECK(ga_block_range(h, v + 2 * ARENA_64, GO_PAGE) == GA_OK);
    ga_addr c = MALLOC(h, ARENA_64);
    CHECK_MSG(c == v - ARENA_64, "%s: c at 0x%" PRIx64 ", want 0x%" PRIx64,
              how, c, v - ARENA_64);
    span_want below[] = {
        {c, ARENA_64 / GO_PAGE, SPAN_IN_USE, false},
        {v, 13, SPAN_FREE, true},
        {b, ARENA_64 / GO_PAGE, SPAN_IN_USE, false},
        {b + ARENA_64, ARENA_64 / GO_PAGE - 13, SPAN_FREE, true},
    };
    LAYOUT(h, below);
    ga_span_info si;
    memset(&si, 0, sizeof si);
    CHECK(ga_span_of(h, v - 1, &si) && si.base == c);
    bool down = false;
    CHECK(hint_count(h) == 1);
    CHECK(head_hint(h, &down) == v - ARENA_64 && down);
    CHECK(stats_of(h).heap_sys == 3 * ARENA_64);
    arena_list ar = get_arenas(h);
    CHECK(ar.n == 3);
    if (ar.n == 3) {
        CHECK(ar.v[0].base == v && ar.v[1].base == v + ARENA_64 &&
              ar.v[2].base == v - ARENA_64);
    }
    free(ar.v);
    /* Free everything: the three arenas form one region. */
    FREE(h, b);
    FREE(h, c);
    SCAVENGE(h, UINT64_MAX);
    span_want one[] = {
        {v - ARENA_64, 3 * ARENA_64 / GO_PAGE, SPAN_FREE, true}};
    LAYOUT(h, one);
    ga_heap_free(h);
    return v;
}

static void
test_fallback_hints(void)
{
    ga_addr failing = fallback_case(false);
    ga_addr blocked = fallback_case(true);
    /* Each blocked hint's reservation landed somewhere else, where the
     * fallback goes too; sysAlloc unmapped every one of them, so the
     * fallback lands where it does when no reservation was made. */
    CHECK_MSG(failing == blocked,
              "fallback at 0x%" PRIx64 " after collisions, 0x%" PRIx64
              " without: stray reservations were kept",
              blocked, failing);
}

/* sysReserveAligned keeps size+align when the OS happens to return an
 * aligned region (design §4.3): the heap then grows by two arenas
 * at once. */
static void
lucky_fallback(ga_release r)
{
    ga_heap *h = VIRT_R("linux", "amd64", r);
    if (h == NULL) {
        return;
    }
    /* Taking everything from an aligned X up makes the top-down search
     * return X - 128 MiB, which is aligned. */
    const ga_addr X = 0x7d0000000000;
    CHECK(ga_block_range(h, X, ((ga_addr)1 << 47) - X) == GA_OK);
    CHECK(ga_fail_reserves(h, NUM_HINTS_64) == GA_OK);
    ga_addr v = MALLOC(h, 100000);
    CHECK_MSG(v == X - 2 * ARENA_64, "lucky fallback at 0x%" PRIx64, v);
    ga_mem_stats st = stats_of(h);
    CHECK_MSG(st.heap_sys == 2 * ARENA_64, "heap_sys %" PRIu64, st.heap_sys);
    CHECK(ga_arenas(h, NULL, 0) == 2);
    /* go1.13.0: both arenas are one free span; go1.13.8: they are
     * curArena, from which the 13 pages were taken. */
    span_want want[] = {
        {v, 13, SPAN_IN_USE, false},
        {v + 13 * GO_PAGE, 2 * ARENA_64 / GO_PAGE - 13, SPAN_FREE, true},
    };
    bool go1130 = r == GA_RELEASE_GO1_13_0;
    check_layout_at(h, want, go1130 ? 2 : 1, __LINE__);
    ga_heap_info in = info_of(h);
    CHECK(go1130 ? in.cur_arena_end == 0
                 : in.cur_arena_base == v + 13 * GO_PAGE &&
                       in.cur_arena_end == v + 2 * ARENA_64);
    hint_list l = get_hints(h);
    CHECK(l.n == 2);
    if (l.n == 2) {
        CHECK(l.v[0].addr == v + 2 * ARENA_64 && !l.v[0].down);
        CHECK(l.v[1].addr == v && l.v[1].down);
    }
    free(l.v);
    ga_heap_free(h);
}

static void
test_lucky_fallback(void)
{
    for (size_t i = 0; i < NRELEASES; i++) {
        lucky_fallback(both_releases[i]);
    }
}

static void
test_race_collisions(void)
{
    /* Without collisions: the first race hint, 0xc000000000. */
    ga_heap *h = open_virtual("linux", "amd64", true, __LINE__);
    if (h == NULL) {
        return;
    }
    ga_addr a = MALLOC(h, 100000);
    CHECK(a == 0xc000000000);
    CHECK(hint_count(h) == 64 && head_hint(h, NULL) == a + ARENA_64);
    ga_heap_free(h);

    /* One collision: the next race hint is 4 GiB higher. */
    h = open_virtual("linux", "amd64", true, __LINE__);
    if (h == NULL) {
        return;
    }
    CHECK(ga_block_range(h, 0xc000000000, GO_PAGE) == GA_OK);
    a = MALLOC(h, 100000);
    CHECK_MSG(a == 0xc100000000, "race: landed at 0x%" PRIx64, a);
    CHECK(hint_count(h) == 63);
    ga_heap_free(h);

    /* The duplicates are real hints: with 63 failures the 64th, the
     * second copy of 0xdf00000000, is used. */
    h = open_virtual("linux", "amd64", true, __LINE__);
    if (h == NULL) {
        return;
    }
    CHECK(ga_fail_reserves(h, 63) == GA_OK);
    a = MALLOC(h, 100000);
    CHECK_MSG(a == 0xdf00000000, "race: landed at 0x%" PRIx64, a);
    CHECK(hint_count(h) == 1 && head_hint(h, NULL) == a + ARENA_64);
    ga_heap_free(h);

    /* All hints fail: race mode may not map the heap elsewhere. */
    h = open_virtual("linux", "amd64", true, __LINE__);
    if (h == NULL) {
        return;
    }
    static const char msg[] = "too many address space collisions for -race "
                              "mode";
    CHECK(ga_fail_reserves(h, 64) == GA_OK);
    ga_addr out = 0;
    CHECK(ga_malloc(h, 0, 100000, false, &out) == GA_EPOISONED);
    CHECK_MSG(ga_poisoned(h) != NULL && strcmp(ga_poisoned(h), msg) == 0,
              "poison message: %s",
              ga_poisoned(h) ? ga_poisoned(h) : "(none)");
    CHECK(ga_malloc(h, 0, 100000, false, &out) == GA_EPOISONED);
    CHECK(ga_malloc(h, 0, 0, false, &out) == GA_EPOISONED);
    char vmsg[256] = "";
    CHECK(!ga_verify(h, vmsg, sizeof vmsg));
    CHECK_MSG(strncmp(vmsg, "heap poisoned: ", 15) == 0 &&
                  strcmp(vmsg + 15, msg) == 0,
              "verify says: %s", vmsg);
    ga_heap_free(h);
}

/* ---- 7. Bad input --------------------------------------------------- */

static void
test_bad_input(void)
{
    ga_heap *h = VIRT("linux", "amd64");
    if (h == NULL) {
        return;
    }
    ga_heap_info in = info_of(h);
    ga_addr out = 0;
    digest d;

    /* Before any arena exists (the L2 map is not made yet). */
    digest_take(h, &d);
    CHECK(ga_free(h, 0xc000000000) == GA_EFOREIGN);
    CHECK(ga_free(h, 0) == GA_EFOREIGN);
    ga_span_info si;
    memset(&si, 0, sizeof si);
    CHECK(!ga_span_of(h, 0xc000000000, &si));
    uint64_t released = 1;
    CHECK(ga_scavenge(h, UINT64_MAX, &released) == GA_OK && released == 0);
    SAME_DIGEST(h, &d, "calls on an empty heap");
    digest_free(&d);

    ga_addr a = MALLOC(h, 100000);
    ga_addr b = MALLOC(h, 40000);
    ga_addr c = MALLOC(h, 40000);
    ga_addr g = MALLOC(h, 40000);
    CHECK(a == 0xc000000000);
    digest_take(h, &d);

    /* Sizes beyond maxAlloc: ETOOLARGE; bad Ps: EBADP, whatever the
     * size (the P is checked first); ga_malloc_check says the same
     * without allocating. */
    CHECK(ga_malloc(h, 0, in.max_alloc + 1, false, &out) == GA_ETOOLARGE);
    CHECK(ga_malloc(h, 0, UINT64_MAX, true, &out) == GA_ETOOLARGE);
    CHECK(ga_malloc(h, -1, 100000, false, &out) == GA_EBADP);
    CHECK(ga_malloc(h, 1, 100000, false, &out) == GA_EBADP);
    CHECK(ga_malloc(h, 1, 16, true, &out) == GA_EBADP);
    CHECK(ga_malloc(h, 1, UINT64_MAX, false, &out) == GA_EBADP);
    CHECK(ga_malloc_check(h, 0, in.max_alloc + 1) == GA_ETOOLARGE);
    CHECK(ga_malloc_check(h, 1, in.max_alloc + 1) == GA_EBADP);
    CHECK(ga_malloc_check(h, -1, 0) == GA_EBADP);
    CHECK(ga_malloc_check(h, 0, in.max_alloc) == GA_OK);
    CHECK(ga_malloc_check(h, 0, 0) == GA_OK);
    /* ga_free_p: a P, GA_NO_P or GA_ALL_PS; anything else is EBADP */
    CHECK(ga_free_p(h, 1, a) == GA_EBADP);
    CHECK(ga_free_p(h, GA_ALL_PS - 1, a) == GA_EBADP);
    CHECK(strcmp(ga_status_name(GA_EBADP), "GA_EBADP") == 0 &&
          strcmp(ga_status_name(GA_ETOOLARGE), "GA_ETOOLARGE") == 0);
    SAME_DIGEST(h, &d, "EBADP and ETOOLARGE calls");
    /* maxAlloc itself is allowed, but no address space is that big. */
    CHECK(ga_malloc(h, 0, in.max_alloc, false, &out) == GA_ENOMEM);
    SAME_DIGEST(h, &d, "a malloc of maxAlloc bytes");

    /* Foreign addresses: outside every mapped arena. */
    static const ga_addr foreign[] = {
        0,
        0x1000,
        0xc000000000 - GO_PAGE,
        0xc000000000 - 1,
        0xc000000000 + ARENA_64,
        0x01c000000000,
        (ga_addr)1 << 47,
        UINT64_MAX,
        0x5a0001,
    };
    for (size_t i = 0; i < sizeof foreign / sizeof foreign[0]; i++) {
        ga_status st = ga_free(h, foreign[i]);
        CHECK_MSG(st == GA_EFOREIGN, "free(0x%" PRIx64 ") = %s", foreign[i],
                  ga_status_name(st));
    }
    SAME_DIGEST(h, &d, "foreign frees");

    /* Not the start of an object: interior pointers, and free memory
     * that never held an object. */
    const ga_addr notobj[] = {
        a + 8,
        a + 1,
        a + GO_PAGE,
        a + 99999,
        a + 13 * GO_PAGE - 1,
        b + 16,
        c + 4 * GO_PAGE,
        g + 40000,
        g + 5 * GO_PAGE,
        g + 6 * GO_PAGE,
        0xc000000000 + ARENA_64 - GO_PAGE,
        0xc000000000 + ARENA_64 - 1,
    };
    for (size_t i = 0; i < sizeof notobj / sizeof notobj[0]; i++) {
        ga_status st = ga_free(h, notobj[i]);
        CHECK_MSG(st == GA_ENOTOBJECT, "free(0x%" PRIx64 ") = %s", notobj[i],
                  ga_status_name(st));
    }
    SAME_DIGEST(h, &d, "interior frees");

    /* zerobase: ga_malloc(0) returns it and ga_free of it is a no-op. */
    CHECK(ga_malloc(h, 0, 0, false, &out) == GA_OK && out == in.zerobase);
    CHECK(ga_malloc(h, 0, 0, true, &out) == GA_OK && out == in.zerobase);
    CHECK(ga_free(h, in.zerobase) == GA_OK);
    CHECK(ga_free(h, in.zerobase) == GA_OK);
    SAME_DIGEST(h, &d, "zerobase calls");
    VERIFY(h);
    digest_free(&d);

    /* Double free of a large object. */
    FREE(h, b);
    digest_take(h, &d);
    CHECK(ga_free(h, b) == GA_EDOUBLEFREE);
    SAME_DIGEST(h, &d, "a double free");
    digest_free(&d);
    /* Still a double free after b merged into a free neighbour (c), both
     * from c's side and after c's span struct died in the merge. */
    FREE(h, c);
    digest_take(h, &d);
    CHECK(ga_free(h, b) == GA_EDOUBLEFREE);
    CHECK(ga_free(h, c) == GA_EDOUBLEFREE);
    CHECK(ga_free(h, b + GO_PAGE) == GA_ENOTOBJECT);
    SAME_DIGEST(h, &d, "double frees after merging");
    digest_free(&d);
    /* Reusing the low end (carving b's pages again, maybe with a recycled
     * span struct) leaves c's double free detectable. */
    ga_addr e = MALLOC(h, 40000);
    CHECK(e == b);
    digest_take(h, &d);
    CHECK(ga_free(h, c) == GA_EDOUBLEFREE);
    CHECK(ga_free(h, e + GO_PAGE) == GA_ENOTOBJECT);
    SAME_DIGEST(h, &d, "a double free after reuse");
    digest_free(&d);
    /* And after the free memory was released to the OS. */
    FREE(h, g);
    SCAVENGE(h, UINT64_MAX);
    digest_take(h, &d);
    CHECK(ga_free(h, c) == GA_EDOUBLEFREE);
    CHECK(ga_free(h, g) == GA_EDOUBLEFREE);
    SAME_DIGEST(h, &d, "double frees after scavenging");
    digest_free(&d);
    /* An object over all of b's and c's pages: c's base is now an
     * interior pointer.  (Released first, so that e's hole and the
     * released span above it become one span.) */
    FREE(h, e);
    SCAVENGE(h, UINT64_MAX);
    ga_addr f = MALLOC(h, 15 * GO_PAGE);
    CHECK(f == b);
    CHECK(ga_free(h, c) == GA_ENOTOBJECT);
    CHECK(ga_free(h, f) == GA_OK);
    VERIFY(h);

    /* Fault-injection arguments. */
    CHECK(ga_fail_reserves(h, -1) == GA_EINVAL);
    CHECK(ga_block_range(h, 0x7000000000, 0) == GA_EINVAL);
    CHECK(ga_block_range(h, UINT64_MAX - GO_PAGE + 2, GO_PAGE) == GA_EINVAL);
    VERIFY(h);
    ga_heap_free(h);
}

static void
test_sys_limit(void)
{
    ga_options o;
    opts(&o, "linux", "amd64", false, GA_BACKING_VIRTUAL);
    o.sys_limit = ARENA_64;
    ga_heap *h = OPEN(&o);
    if (h == NULL) {
        return;
    }
    ga_addr a = MALLOC(h, 100000);
    CHECK(a == 0xc000000000);
    digest d;
    digest_take(h, &d);
    ga_addr out = 0;
    /* A second arena would exceed the limit. */
    CHECK(ga_malloc(h, 0, ARENA_64, false, &out) == GA_ENOMEM);
    CHECK(ga_malloc(h, 0, ARENA_64 - 12 * GO_PAGE, false, &out) == GA_ENOMEM);
    SAME_DIGEST(h, &d, "a malloc beyond sys_limit");
    digest_free(&d);
    /* What fits the mapped arena still works, exactly up to the end. */
    ga_addr b = MALLOC(h, ARENA_64 - 13 * GO_PAGE);
    CHECK(b == a + 13 * GO_PAGE);
    CHECK(stats_of(h).heap_sys == ARENA_64);
    ga_heap_free(h);

    /* A limit below one arena refuses the first growth. */
    o.sys_limit = ARENA_64 - 1;
    h = OPEN(&o);
    if (h == NULL) {
        return;
    }
    digest_take(h, &d);
    CHECK(ga_malloc(h, 0, 100000, false, &out) == GA_ENOMEM);
    SAME_DIGEST(h, &d, "a first growth beyond sys_limit");
    digest_free(&d);
    VERIFY(h);
    ga_heap_free(h);
}

/* ---- Metadata allocations that fail (issue 11 item 4) -------------- */

/* A metadata scenario: a heap made by `make`, brought to a state by
 * `before`, then `op`, which may grow it. */
typedef struct meta_case {
    const char *what;
    const char *goos, *goarch;
    ga_backing backing;
    ga_release release;
    void (*before)(ga_heap *h);
    ga_status (*op)(ga_heap *h);
} meta_case;

static ga_heap *
meta_case_heap(const meta_case *c)
{
    ga_options o;
    opts(&o, c->goos, c->goarch, false, c->backing);
    ga_options_set_release(&o, c->release);
    o.metadata_limit = 0;
    ga_heap *h = OPEN(&o);
    if (h != NULL && c->before != NULL) {
        c->before(h);
    }
    return h;
}

/* fail_each_metadata_alloc makes the n-th metadata allocation of c's op
 * fail, for n = 1, 2, ... until the op needs fewer: each time the op
 * must return GA_ENOMEM with a reason, leave everything a caller can see
 * as it was, and succeed once the fault is disarmed.  Returns how many
 * metadata allocations the op made. */
static uint64_t
fail_each_metadata_alloc(const meta_case *c)
{
    for (uint64_t n = 1; n < 200; n++) {
        ga_heap *h = meta_case_heap(c);
        if (h == NULL) {
            return 0;
        }
        digest d;
        digest_take(h, &d);
        uint64_t hash = ga_digest(h);
        CHECK(ga_fail_metadata(h, n) == GA_OK);
        ga_status st = c->op(h);
        CHECK(ga_fail_metadata(h, 0) == GA_OK);
        if (st == GA_OK) {
            /* the op made n - 1 metadata allocations */
            VERIFY(h);
            digest_free(&d);
            ga_heap_free(h);
            return n - 1;
        }
        CHECK_MSG(st == GA_ENOMEM && ga_oom_reason(h) != NULL,
                  "%s: metadata allocation %" PRIu64 " failing gave %s",
                  c->what, n, ga_status_name(st));
        SAME_DIGEST(h, &d, c->what);
        CHECK_MSG(ga_digest(h) == hash && ga_poisoned(h) == NULL,
                  "%s: allocation %" PRIu64 " changed the heap", c->what, n);
        VERIFY(h);
        ga_status again = c->op(h);
        CHECK_MSG(again == GA_OK,
                  "%s: after allocation %" PRIu64 " failed, the op gives %s",
                  c->what, n, ga_status_name(again));
        VERIFY(h);
        digest_free(&d);
        ga_heap_free(h);
    }
    (void)CHECK_MSG(false, "%s: the op never succeeded", c->what);
    return 0;
}

static ga_status
op_large(ga_heap *h)
{
    ga_addr a;
    return ga_malloc(h, 0, 100000, false, &a);
}

static ga_status
op_small(ga_heap *h)
{
    ga_addr a;
    return ga_malloc(h, 0, 48, false, &a);
}

static ga_status
op_tiny(ga_heap *h)
{
    ga_addr a;
    return ga_malloc(h, 0, 5, true, &a);
}

static ga_status
op_three_arenas(ga_heap *h)
{
    ga_addr a;
    return ga_malloc(h, 0, 3 * ARENA_64 + 1, true, &a);
}

static void
before_one_object(ga_heap *h)
{
    MALLOC(h, 40000);
}

static void
before_blocked_hint(ga_heap *h)
{
    /* the head hint collides once the first arena is used up */
    ga_addr a = MALLOC(h, ARENA_64 - 5 * GO_PAGE);
    CHECK(ga_block_range(h, a + ARENA_64, GO_PAGE) == GA_OK);
}

static void
before_no_hints(ga_heap *h)
{
    /* every hint fails: the fallback reservation and its two hints */
    CHECK(ga_fail_reserves(h, NUM_HINTS_64) == GA_OK);
}

static void
before_free_hole(ga_heap *h)
{
    ga_addr a = MALLOC(h, 1 * MiB);
    MALLOC(h, 40000);
    FREE(h, a);
}

static void
test_metadata_failures(void)
{
    const ga_release r8 = GA_RELEASE_GO1_13_8, r0 = GA_RELEASE_GO1_13_0;
    const ga_backing V = GA_BACKING_VIRTUAL, OS = GA_BACKING_OS;
    const meta_case cases[] = {
        {"first large alloc", "linux", "amd64", V, r8, NULL, op_large},
        {"first large alloc (go1.13.0)", "linux", "amd64", V, r0, NULL,
         op_large},
        {"first large alloc (os)", "linux", "amd64", OS, r8, NULL, op_large},
        {"first small alloc", "linux", "amd64", V, r8, NULL, op_small},
        {"first small alloc (go1.13.0, os)", "linux", "amd64", OS, r0, NULL,
         op_small},
        {"first tiny alloc", "linux", "amd64", V, r8, NULL, op_tiny},
        {"three more arenas", "linux", "amd64", V, r8, before_one_object,
         op_three_arenas},
        {"three more arenas (go1.13.0)", "linux", "amd64", V, r0,
         before_one_object, op_three_arenas},
        {"growth past a blocked hint", "linux", "amd64", V, r8,
         before_blocked_hint, op_large},
        {"the fallback reservation", "linux", "amd64", V, r8, before_no_hints,
         op_large},
        {"the fallback reservation (go1.13.0)", "linux", "amd64", V, r0,
         before_no_hints, op_large},
        {"growth that scavenges a hole", "linux", "amd64", V, r8,
         before_free_hole, op_three_arenas},
        {"32-bit first alloc", "linux", "386", V, r8, NULL, op_large},
        {"32-bit past the region", "linux", "386", V, r0, NULL,
         op_three_arenas},
        {"windows (L1 index)", "windows", "amd64", V, r8, NULL,
         op_three_arenas},
        {"aix (L1 index)", "aix", "ppc64", V, r0, NULL, op_large},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint64_t n = fail_each_metadata_alloc(&cases[i]);
        /* Every growth makes at least a heap_arena and its page bits (a
         * first one also the arena index's L2 map, fixalloc chunks and
         * the range set). */
        CHECK_MSG(n >= (cases[i].before == NULL ? 5u : 2u),
                  "%s: only %" PRIu64 " metadata allocations", cases[i].what,
                  n);
    }
}

/* metadata_limit: the real memory of the arena metadata is counted,
 * and a growth that would take it past the limit is refused up front. */
static void
test_metadata_limit(void)
{
    CHECK(ga_default_metadata_limit() > 0);
    ga_options o;
    ga_options_init(&o);
    CHECK(o.metadata_limit == ga_default_metadata_limit());
    opts(&o, "linux", "amd64", false, GA_BACKING_VIRTUAL);
    /* linux/amd64: an arena's heapArena has 8192 span pointers and two
     * 1 KiB page bitmaps (plus goalloc's small header); the L2 map has
     * 2^22 pointers (32 MiB, touched only where arenas are). */
    const uint64_t per_arena = 8192 * 8 + 2 * 1024;
    const uint64_t l2 = ((uint64_t)1 << 22) * 8;
    o.metadata_limit = l2 + 2 * per_arena + 1024;
    ga_heap *h = OPEN(&o);
    if (h == NULL) {
        return;
    }
    CHECK(info_of(h).metadata_bytes == 0 &&
          info_of(h).metadata_limit == o.metadata_limit);
    ga_addr a = MALLOC(h, 100000);
    uint64_t one = info_of(h).metadata_bytes;
    CHECK_MSG(one >= l2 + per_arena && one < l2 + per_arena + 256,
              "metadata_bytes %" PRIu64, one);
    /* two more arenas would pass the limit: refused, unchanged */
    digest d;
    digest_take(h, &d);
    ga_addr out;
    CHECK(ga_malloc(h, 0, 2 * ARENA_64, false, &out) == GA_ENOMEM);
    CHECK(ga_oom_reason(h) != NULL &&
          strstr(ga_oom_reason(h), "metadata_limit") != NULL);
    SAME_DIGEST(h, &d, "a growth past metadata_limit");
    digest_free(&d);
    /* one more fits */
    ga_addr b = MALLOC(h, ARENA_64);
    CHECK(b == a + 13 * GO_PAGE);
    CHECK(info_of(h).metadata_bytes == 2 * (one - l2) + l2);
    VERIFY(h);
    ga_heap_free(h);
}

/* ---- 8. Several heaps in one process -------------------------------- */

static void
test_two_os_heaps(void)
{
    ga_options o;
    opts(&o, "linux", "amd64", false, GA_BACKING_OS);
    ga_heap *h1 = OPEN(&o);
    ga_heap *h2 = OPEN(&o);
    if (h1 == NULL || h2 == NULL) {
        ga_heap_free(h1);
        ga_heap_free(h2);
        return;
    }
    ga_addr want[NUM_HINTS_64];
    want_hints_default(want);
    ga_addr a1 = MALLOC(h1, 100000);
    size_t k1 = NUM_HINTS_64 - hint_count(h1);
    ga_addr a2 = MALLOC(h2, 100000);
    size_t k2 = NUM_HINTS_64 - hint_count(h2);
    /* h1 took hint k1; for h2 that address is taken, so its hint k1
     * collides and is discarded (the kernel puts the mapping elsewhere
     * and sysAlloc unmaps it), and it moves on. */
    CHECK_MSG(k1 < NUM_HINTS_64 && a1 == want[k1], "h1 at 0x%" PRIx64, a1);
    CHECK_MSG(k2 > k1 && k2 < NUM_HINTS_64 && a2 == want[k2],
              "h2 at 0x%" PRIx64 " (hint %zu; h1 used hint %zu)", a2, k2, k1);
    CHECK(a1 != a2);
    CHECK_MSG(a1 + ARENA_64 <= a2 || a2 + ARENA_64 <= a1,
              "arenas overlap: 0x%" PRIx64 " and 0x%" PRIx64, a1, a2);
    /* Both are real, independent memory. */
    memset((void *)(uintptr_t)a1, 0x11, 100000);
    memset((void *)(uintptr_t)a2, 0x22, 100000);
    CHECK(((unsigned char *)(uintptr_t)a1)[99999] == 0x11);
    CHECK(((unsigned char *)(uintptr_t)a2)[99999] == 0x22);
    /* Addresses of one heap are foreign to the other. */
    CHECK(ga_free(h1, a2) == GA_EFOREIGN);
    CHECK(ga_free(h2, a1) == GA_EFOREIGN);
    /* Growth in each continues contiguously from its own hint. */
    ga_addr b1 = MALLOC(h1, ARENA_64);
    ga_addr b2 = MALLOC(h2, ARENA_64);
    CHECK(b1 == a1 + 13 * GO_PAGE && b2 == a2 + 13 * GO_PAGE);
    VERIFY(h1);
    VERIFY(h2);
    ga_heap_free(h1);
    VERIFY(h2);
    /* h1's address space is returned on close: a new heap can take it. */
    ga_heap *h3 = OPEN(&o);
    if (h3 != NULL) {
        ga_addr a3 = MALLOC(h3, 100000);
        CHECK_MSG(a3 == a1, "h3 at 0x%" PRIx64 ", h1 was at 0x%" PRIx64, a3,
                  a1);
        ga_heap_free(h3);
    }
    ga_heap_free(h2);
}

/* ---- 9. Poisoning ---------------------------------------------------- */

static void
check_poisoned(ga_heap *h, const char *msg)
{
    CHECK_MSG(ga_poisoned(h) != NULL && strcmp(ga_poisoned(h), msg) == 0,
              "ga_poisoned: %s", ga_poisoned(h) ? ga_poisoned(h) : "(null)");
    ga_addr out = 0;
    uint64_t rel = 0;
    ga_mem_stats st;
    CHECK(ga_malloc(h, 0, 100000, false, &out) == GA_EPOISONED);
    CHECK(ga_malloc(h, 0, 0, false, &out) == GA_EPOISONED);
    CHECK(ga_malloc(h, 5, 100000, false, &out) == GA_EPOISONED);
    CHECK(ga_malloc(h, 0, UINT64_MAX, false, &out) == GA_EPOISONED);
    CHECK(ga_free(h, 0xc000000000) == GA_EPOISONED);
    CHECK(ga_free(h, info_of(h).zerobase) == GA_EPOISONED);
    CHECK(ga_scavenge(h, UINT64_MAX, &rel) == GA_EPOISONED);
    CHECK(ga_read_mem_stats(h, &st) == GA_EPOISONED);
    CHECK(ga_block_range(h, 0x7000000000, GO_PAGE) == GA_EPOISONED);
    CHECK(ga_fail_reserves(h, 1) == GA_EPOISONED);
    CHECK(ga_test_throw(h, "again") == GA_EPOISONED);
    char vmsg[256] = "";
    char want[256];
    snprintf(want, sizeof want, "heap poisoned: %s", msg);
    CHECK(!ga_verify(h, vmsg, sizeof vmsg));
    CHECK_MSG(strcmp(vmsg, want) == 0, "ga_verify: %s", vmsg);
    /* The first message stays. */
    CHECK(ga_poisoned(h) != NULL && strcmp(ga_poisoned(h), msg) == 0);
}

static void
test_throw_poisons(void)
{
    /* A fresh heap. */
    ga_heap *h = VIRT("linux", "amd64");
    if (h == NULL) {
        return;
    }
    CHECK(ga_poisoned(h) == NULL);
    CHECK(ga_test_throw(h, "boom") == GA_EPOISONED);
    check_poisoned(h, "boom");
    ga_heap_free(h);

    /* A heap with objects, on the os backing: closing it still returns
     * everything (ASan's leak check watches). */
    ga_options o;
    opts(&o, "linux", "amd64", false, GA_BACKING_OS);
    h = OPEN(&o);
    if (h == NULL) {
        return;
    }
    ga_addr a = MALLOC(h, 100000);
    ga_addr b = MALLOC(h, 3 * ARENA_64);
    CHECK(a != 0 && b != 0);
    FREE(h, a);
    CHECK(ga_test_throw(h, "mheap.freeSpanLocked - invalid free") ==
          GA_EPOISONED);
    check_poisoned(h, "mheap.freeSpanLocked - invalid free");
    /* Introspection still answers: a's free span and b (go1.13.8 grew
     * b from the rest of the first arena and three new ones, which left
     * no free span above it). */
    CHECK(ga_spans(h, NULL, 0) == 2);
    ga_heap_free(h);
}

/* ---- 10. The 32-bit path -------------------------------------------- */

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
        test_32bit_release(both_releases[i]);
    }
}

/* ---- Growth on the other 64-bit branches ---------------------------- */

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
        ga_release r = both_releases[i % 2];
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

/* ---- Accounting at scale, options, Ps ------------------------------ */

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

/* mspan structs: 120 to a 16 KiB spanalloc chunk (mspan_sys); allspans
 * starts with 64 KiB / 8 = 8192 entries of other_sys and grows by 1.5x,
 * freeing the old array (recordspan, design §3.5). */
static void
test_allspans_accounting(void)
{
    ga_heap *h = VIRT("linux", "amd64");
    if (h == NULL) {
        return;
    }
    ga_addr first = MALLOC(h, 40000);
    CHECK(first == 0xc000000000);
    uint64_t other_before = 0;
    uint64_t pushes = 1; /* span allocations: sweepSpans pushes */
    uint64_t sweep_took = 0;
    bool crossed = false;
    ga_addr last = first;
    /* Five-page objects side by side until span struct 8193 is made. */
    for (int i = 0; i < 20000 && !crossed; i++) {
        ga_heap_info in = info_of(h);
        ga_mem_stats st = stats_of(h);
        ga_addr a = 0;
        ga_status s = ga_malloc(h, 0, 40000, false, &a);
        if (!CHECK_MSG(s == GA_OK, "malloc %d: %s", i, ga_status_name(s))) {
            break;
        }
        CHECK(a == last + 5 * GO_PAGE);
        last = a;
        pushes++;
        ga_heap_info in2 = info_of(h);
        /* (A growth with no free tail to merge makes two fresh structs
         * in one allocation, so the count may jump past 8193.) */
        if (in.nallspans <= 8192 && in2.nallspans > 8192) {
            crossed = true;
            other_before = st.other_sys;
            sweep_took = go_sweep_spans_bytes(pushes, 8) -
                         go_sweep_spans_bytes(pushes - 1, 8);
        }
    }
    VERIFY(h);
    CHECK(crossed);
    ga_mem_stats st = stats_of(h);
    ga_heap_info in = info_of(h);
    /* The new allspans array: 8192 * 3/2 = 12288 entries, 98,304 bytes,
     * replaces the 65,536-byte one.  (Push 8193 opened a sweepSpans
     * block in the persistentalloc chunk.) */
    CHECK(sweep_took == 4096);
    CHECK_MSG(st.other_sys == other_before + 98304 - 65536 - sweep_took,
              "other_sys %" PRIu64 " -> %" PRIu64, other_before, st.other_sys);
    /* Fresh structs are carved in order, 120 per chunk. */
    CHECK_MSG(st.mspan_sys == (in.nallspans + 119) / 120 * 16384,
              "mspan_sys %" PRIu64 " for %" PRIu64 " structs", st.mspan_sys,
              in.nallspans);
    CHECK(st.mspan_inuse == ga_spans(h, NULL, 0) * GO_SIZEOF_MSPAN);
    ga_heap_free(h);
}

/* gcBits arenas (mheap.go gcBitsArena, newMarkBits, newAllocBits;
 * mbitmap.go initSpan): 64 KiB sysAlloc'd to gc_sys, of which a header of
 * two words (free, next) leaves 65,520 bytes of bits on a 64-bit port and
 * 65,528 on a 32-bit one.  initSpan takes a span's mark bits, then its
 * alloc bits: two bump allocations of ceil(nelems/64)*8 bytes each from
 * the newest arena, a fresh arena when one does not fit (the old one's
 * tail is never used again). */
static void
test_gc_bits_arenas_small(void)
{
    ga_heap *h = VIRT("linux", "amd64");
    if (h == NULL) {
        return;
    }
    /* The heapArena struct, the first allArenas array (see 2.), and
     * sweepSpans with its first block (256 spans pushed) */
    const uint64_t meta = GO_SIZEOF_HEAP_ARENA_AMD64 + 4096 +
                          go_sweep_spans_bytes(256, 8);
    /* The 8-byte class: 1024 slots a span, two bitmaps of 128 bytes.
     * 255 spans take 65,280 bytes: one arena. */
    /* ga_malloc, not MALLOC: a verify per allocation would make this
     * loop quadratic (minutes) */
    for (uint64_t i = 0; i < 255 * 1024; i++) {
        ga_addr a;
        if (!CHECK(ga_malloc(h, 0, 8, false, &a) == GA_OK)) {
            break;
        }
    }
    VERIFY(h);
    ga_mem_stats st = stats_of(h);
    CHECK_MSG(st.gc_sys == meta + 65536, "255 spans: gc_sys %" PRIu64,
              st.gc_sys);
    /* Span 256: its mark bits fit (65,408 bytes), its alloc bits do not
     * (65,536 > 65,520): a second arena. */
    MALLOC(h, 8);
    st = stats_of(h);
    CHECK_MSG(st.gc_sys == meta + 2 * 65536, "256 spans: gc_sys %" PRIu64,
              st.gc_sys);
    VERIFY(h);
    ga_heap_free(h);
}

/* Large spans take two 8-byte bitmaps each (nelems 1).  A big object
 * made and freed first gives later ones free pages without growth, so
 * gc_sys moves only by gcBits arenas.  8,191 spans (the big one with
 * them) need 16,382 eight-byte allocations: on a 32-bit port two arenas
 * hold 2 x 8,191 of them (a span's pair may straddle two arenas), on a
 * 64-bit port they hold 2 x 8,190, and a third arena is needed. */
static void
gc_bits_arenas_large_case(const char *goarch, uint64_t want_arenas)
{
    ga_heap *h = VIRT("linux", goarch);
    if (h == NULL) {
        return;
    }
    const uint64_t n = 8190;
    const uint64_t ptr = info_of(h).ptr_size;
    ga_addr big = MALLOC(h, n * 5 * GO_PAGE);
    FREE(h, big);
    /* the big object's pair opened the first arena; sweepSpans has it */
    uint64_t meta = stats_of(h).gc_sys - 65536 - go_sweep_spans_bytes(1, ptr);
    for (uint64_t i = 0; i < n; i++) {
        ga_addr a = 0; /* ga_malloc: no verify per allocation (quadratic) */
        ga_status s = ga_malloc(h, 0, 40000, false, &a); /* 5 pages */
        if (!CHECK(s == GA_OK && a == big + i * 5 * GO_PAGE)) {
            break;
        }
    }
    VERIFY(h);
    ga_mem_stats st = stats_of(h);
    CHECK_MSG(st.gc_sys == meta + want_arenas * 65536 +
                               go_sweep_spans_bytes(n + 1, ptr),
              "%s: gc_sys %" PRIu64 ", want %" PRIu64 " arenas", goarch,
              st.gc_sys - meta, want_arenas);
    VERIFY(h);
    ga_heap_free(h);
}

static void
test_gc_bits_arenas_large(void)
{
    gc_bits_arenas_large_case("amd64", 3);
    gc_bits_arenas_large_case("386", 2);
}

/* persistentAlloc (malloc.go persistentalloc1) carves its requests from
 * 256 KiB chunks sysAlloc'd to other_sys, each at its alignment, but a
 * fresh chunk's first word links it into persistentChunks: the offset
 * starts at PtrSize, rounded to the request's alignment.  go_chunk
 * replays that. */
typedef struct go_chunk {
    uint64_t off;
    uint64_t n; /* chunks opened */
} go_chunk;

static void
go_chunk_alloc(go_chunk *c, uint64_t size, uint64_t align)
{
    c->off = round_up(c->off, align);
    if (c->n == 0 || c->off + size > 262144) {
        c->n++;
        c->off = round_up(8, align);
    }
    c->off += size;
}

/* The requests on amd64: the hint and mcache fixalloc chunks at
 * mallocinit; allArenas' 4 KiB array and the treap-node chunk at the first
 * growth; a 16 KiB spanalloc chunk every 120 spans; sweepSpans' spine
 * (2 KiB) and a 4 KiB block every 512 pushes, cache-line (64) aligned. */
static void
test_persistent_chunk_header(void)
{
    ga_heap *h = VIRT("linux", "amd64");
    if (h == NULL) {
        return;
    }
    go_chunk c = {0, 0};
    go_chunk_alloc(&c, 16384, 8); /* arena hints */
    go_chunk_alloc(&c, 16384, 8); /* m0's mcache */
    uint64_t span_chunks = 0;
    bool opened_third = false;
    for (uint64_t i = 0; i < 28 * 120; i++) {
        if (MALLOC(h, 40000) == 0) {
            break;
        }
        ga_mem_stats st = stats_of(h);
        if (i == 0) {
            go_chunk_alloc(&c, 4096, 8);  /* allArenas */
            go_chunk_alloc(&c, 16384, 8); /* treap nodes */
        }
        for (; span_chunks < st.mspan_sys / 16384; span_chunks++) {
            go_chunk_alloc(&c, 16384, 8);
        }
        if (i == 0) {
            go_chunk_alloc(&c, 2048, 64); /* sweepSpans' spine */
        }
        if (i % 512 == 0) {
            go_chunk_alloc(&c, 4096, 64); /* a sweepSpans block */
        }
        opened_third |= c.n == 3;
        /* allspans: 8192 entries of 8 bytes, sysAlloc'd to other_sys */
        uint64_t want = c.n * 262144 - st.mcache_sys - st.mspan_sys - 4096 -
                        go_sweep_spans_bytes(i + 1, 8) + 65536;
        if (!CHECK_MSG(info_of(h).nallspans <= 8192 && st.other_sys == want,
                       "object %" PRIu64 ", %" PRIu64
                       " span chunks: other_sys %" PRIu64 ", want %" PRIu64
                       " (%" PRIu64 " chunks)",
                       i, span_chunks, st.other_sys, want, c.n)) {
            break;
        }
    }
    CHECK(opened_third);
    VERIFY(h);
    ga_heap_free(h);
}

/* alloc_m pushes every span it allocates on sweepSpans, frees take none
 * off (only a sweep would), and a block of 512 pushes is 4 KiB of
 * gc_sys: the same object made and freed 513 times needs two blocks. */
static void
test_sweep_spans_accounting(void)
{
    ga_heap *h = VIRT("linux", "amd64");
    if (h == NULL) {
        return;
    }
    for (int i = 0; i < 513; i++) {
        ga_addr a = MALLOC(h, 100000);
        if (a == 0) {
            break;
        }
        ga_mem_stats st = stats_of(h);
        /* heapArena, allArenas, one gcBits arena (513 x 16 bytes),
         * the spine and the blocks */
        uint64_t blocks = i < 512 ? 1 : 2;
        CHECK_MSG(st.gc_sys == GO_SIZEOF_HEAP_ARENA_AMD64 + 4096 + 65536 +
                                   2048 + blocks * 4096,
                  "push %d: gc_sys %" PRIu64, i + 1, st.gc_sys);
        FREE(h, a);
    }
    CHECK(go_sweep_spans_bytes(513, 8) == 2048 + 2 * 4096);
    VERIFY(h);
    ga_heap_free(h);
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
        scavenge_no_huge(both_releases[i]);
    }
}

/* TestArenaCollision on the os backend: a real PROTECT_NONE page at the
 * next hint. */
/* needzero: a slot or large span handed out again is zeroed, as Go
 * does; the skip_zeroing deviation hands it out dirty, as malloc does. */
static void
zeroing_case(bool skip)
{
    uint64_t sizes[] = {48, 1000, 100000};
    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        ga_options o;
        opts(&o, "linux", "amd64", false, GA_BACKING_OS);
        o.skip_zeroing = skip;
        ga_heap *h = OPEN(&o);
        if (h == NULL) {
            return;
        }
        ga_addr a = MALLOC(h, sizes[k]);
        memset((void *)(uintptr_t)a, 0xAB, (size_t)sizes[k]);
        FREE(h, a);
        CHECK(ga_flush(h) == GA_OK); /* the slot is swept: reusable */
        ga_addr b = MALLOC(h, sizes[k]);
        CHECK_MSG(b == a, "size %" PRIu64 ": 0x%" PRIx64 " then 0x%" PRIx64,
                  sizes[k], a, b);
        const uint8_t *p = (const uint8_t *)(uintptr_t)b;
        size_t dirty = 0;
        for (size_t i = 0; i < sizes[k]; i++) {
            dirty += p[i] == 0xAB;
        }
        CHECK_MSG(dirty == (skip ? sizes[k] : 0),
                  "size %" PRIu64 ", skip_zeroing %d: %zu dirty bytes",
                  sizes[k], (int)skip, dirty);
        FREE(h, b);
        ga_heap_free(h);
    }
}

static void
test_zeroing(void)
{
    zeroing_case(false);
    zeroing_case(true);
}

static void
test_os_collision(void)
{
    ga_options o;
    opts(&o, "linux", "amd64", false, GA_BACKING_OS);
    ga_heap *h = OPEN(&o);
    if (h == NULL) {
        return;
    }
    ga_addr want[NUM_HINTS_64];
    want_hints_default(want);
    ga_addr a = MALLOC(h, 100000);
    size_t k = NUM_HINTS_64 - hint_count(h);
    CHECK(k < NUM_HINTS_64 - 1 && a == want[k]);
    ga_addr next = head_hint(h, NULL);
    CHECK(next == a + ARENA_64);
    ga_status st = ga_block_range(h, next + 3 * GO_PAGE, GO_PAGE);
    CHECK_MSG(st == GA_OK, "blocking 0x%" PRIx64 ": %s", next,
              ga_status_name(st));
    /* A range the heap holds cannot be blocked. */
    CHECK(ga_block_range(h, a, GO_PAGE) == GA_EINVAL);
    ga_addr b = MALLOC(h, ARENA_64);
#ifndef __SANITIZE_THREAD__
    CHECK_MSG(b == want[k + 1], "os: b at 0x%" PRIx64 ", want 0x%" PRIx64, b,
              want[k + 1]);
    CHECK(hint_count(h) == NUM_HINTS_64 - k - 1);
    CHECK(head_hint(h, NULL) == want[k + 1] + ARENA_64);
#else
    /* ThreadSanitizer's mmap keeps the application in its own ranges,
     * which 0x00c0... hints beyond the first do not meet: the kernel's
     * placement is checked by the other builds. */
    CHECK(b != 0);
#endif
    memset((void *)(uintptr_t)b, 0x77, (size_t)ARENA_64);
    FREE(h, b);
    FREE(h, a);
    CHECK(SCAVENGE(h, UINT64_MAX) == ARENA_64 + 13 * GO_PAGE);
    CHECK(ga_fail_reserves(h, 1) == GA_EUNSUPPORTED);
    ga_heap_free(h);
}

/* ---- Threads: calls on one heap from several threads ---------------- */

/* goalloc.h: "calls on one heap may come from several threads", and a
 * throw must poison the heap, never abort the process (design §10.3).
 * Each scenario runs in a forked child, so that a bug that aborts shows
 * up as a failed check here instead of ending the run. */

/* run_child runs fn in a child process with stderr silenced.  Returns
 * its exit status, 128 + the signal that killed it, or -1. */
static int
run_child(int (*fn)(void))
{
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        return -1;
    }
    if (pid == 0) {
        /* quiet children, unless a sanitizer report is wanted */
        int fd = getenv("GOALLOC_TEST_CHILD_STDERR") == NULL
                     ? open("/dev/null", O_WRONLY)
                     : -1;
        if (fd >= 0) {
            dup2(fd, 2);
        }
        _exit(fn());
    }
    int ws = 0;
    if (waitpid(pid, &ws, 0) != pid) {
        return -1;
    }
    if (WIFSIGNALED(ws)) {
        return 128 + WTERMSIG(ws);
    }
    return WIFEXITED(ws) ? WEXITSTATUS(ws) : -1;
}

static void
busy_wait_ns(long ns)
{
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    do {
        clock_gettime(CLOCK_MONOTONIC, &t1);
    } while ((t1.tv_sec - t0.tv_sec) * 1000000000L +
                 (t1.tv_nsec - t0.tv_nsec) <
             ns);
}

/* A throw in one thread while another thread is inside a facade call:
 * thread A holds the heap lock for a few ms in ga_scavenge; thread B
 * calls ga_test_throw meanwhile, which must wait for the lock.  B must
 * get GA_EPOISONED and the process must live. */
static struct {
    ga_heap *h;
    atomic_int started;
    ga_status a;
    ga_status b;
} ct;

static void *
ct_scavenger(void *arg)
{
    (void)arg;
    uint64_t rel = 0;
    atomic_store(&ct.started, 1);
    ct.a = ga_scavenge(ct.h, UINT64_MAX, &rel);
    return NULL;
}

static void *
ct_thrower(void *arg)
{
    (void)arg;
    while (atomic_load(&ct.started) == 0) {
        sched_yield(); /* a loaded machine or a sanitizer: let A run */
    }
    busy_wait_ns(30000); /* A is inside ga_scavenge by now */
    ct.b = ga_test_throw(ct.h, "boom");
    return NULL;
}

#define CT_OBJECTS 40000

static int
concurrent_throw_child(void)
{
    static ga_addr objs[CT_OBJECTS];
    ga_options o;
    opts(&o, "linux", "amd64", false, GA_BACKING_VIRTUAL);
    o.procs = 2;
    ga_status st;
    char err[256];
    ct.h = ga_heap_new(&o, &st, err, sizeof err);
    if (ct.h == NULL) {
        return 10;
    }
    /* 20000 unscavenged free spans between in-use ones: a long scavenge
     * (fewer at a GOALLOC_TEST_SCALE below 1). */
    const int nobj = check_scaled(CT_OBJECTS);
    for (int i = 0; i < nobj; i++) {
        if (ga_malloc(ct.h, 0, 40000, false, &objs[i]) != GA_OK) {
            return 11;
        }
    }
    for (int i = 0; i < nobj; i += 2) {
        if (ga_free(ct.h, objs[i]) != GA_OK) {
            return 12;
        }
    }
    atomic_store(&ct.started, 0);
    pthread_t ta, tb;
    if (pthread_create(&ta, NULL, ct_scavenger, NULL) != 0 ||
        pthread_create(&tb, NULL, ct_thrower, NULL) != 0) {
        return 13;
    }
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    int rc = 0;
    if (ct.b != GA_EPOISONED || (ct.a != GA_OK && ct.a != GA_EPOISONED) ||
        ga_poisoned(ct.h) == NULL || strcmp(ga_poisoned(ct.h), "boom") != 0) {
        rc = 1;
    }
    ga_heap_free(ct.h);
    return rc;
}

static void
test_concurrent_throw(void)
{
    int died = 0, wrong = 0, last = 0;
    for (int i = 0; i < 6; i++) {
        int rc = run_child(concurrent_throw_child);
        if (rc >= 128 || rc < 0) {
            died++;
            last = rc;
        }
        else if (rc != 0) {
            wrong++;
            last = rc;
        }
    }
    CHECK_MSG(died == 0 && wrong == 0,
              "a throw while another thread was in a facade call: %d of 6 "
              "processes died (last status %d), %d misbehaved; the throw "
              "found h->throw_jmp cleared (or pointing into the other "
              "thread's frame) and aborted",
              died, last, wrong);
}

/* Two threads free the same large object at once: exactly one frees it,
 * the other gets GA_EDOUBLEFREE, and the heap stays sound.  The main
 * thread and one worker, released by one store, free together. */
static struct {
    ga_heap *h;
    ga_addr obj;
    atomic_int gen;
    atomic_int done;
    ga_status res;
    int rounds;
} cf;

static void *
cf_worker(void *arg)
{
    (void)arg;
    for (int g = 1; g <= cf.rounds; g++) {
        while (atomic_load(&cf.gen) < g) {
            sched_yield();
        }
        cf.res = ga_free(cf.h, cf.obj);
        atomic_store(&cf.done, g);
    }
    return NULL;
}

static int
concurrent_free_child(void)
{
    ga_options o;
    opts(&o, "linux", "amd64", false, GA_BACKING_VIRTUAL);
    o.procs = 2;
    ga_status st;
    char err[256];
    cf.h = ga_heap_new(&o, &st, err, sizeof err);
    if (cf.h == NULL) {
        return 10;
    }
    cf.rounds = check_scaled(20000);
    pthread_t t;
    if (pthread_create(&t, NULL, cf_worker, NULL) != 0) {
        return 13;
    }
    for (int g = 1; g <= cf.rounds; g++) {
        if (ga_malloc(cf.h, 0, 100000, false, &cf.obj) != GA_OK) {
            return 11;
        }
        atomic_store(&cf.gen, g);
        ga_status mine = ga_free(cf.h, cf.obj);
        while (atomic_load(&cf.done) < g) {
            sched_yield();
        }
        ga_status theirs = cf.res;
        if (!((mine == GA_OK && theirs == GA_EDOUBLEFREE) ||
              (theirs == GA_OK && mine == GA_EDOUBLEFREE))) {
            return 1;
        }
    }
    pthread_join(t, NULL);
    char msg[256];
    int rc = ga_verify(cf.h, msg, sizeof msg) ? 0 : 2;
    ga_heap_free(cf.h);
    return rc;
}

/* The free hint: a P's frees into the span it last freed into skip
 * spanOf.  The hint must go when its span leaves the mcache (refill,
 * flush), or a free as that P would trust a span struct that now covers
 * other pages or another size class. */
static void
test_free_hint(void)
{
    ga_heap *h = VIRT("linux", "amd64");
    if (h == NULL) {
        return;
    }
    enum { N = 512 }; /* slots of an 8 KiB span of 16-byte objects */
    ga_addr o[N], x;
    for (int i = 0; i < N; i++) {
        CHECK(ga_malloc(h, 0, 16, false, &o[i]) == GA_OK);
    }
    CHECK(o[N - 1] == o[0] + (N - 1) * 16); /* one span */
    /* Every free through P 0's fast path; the first sets the hint. */
    for (int i = 0; i < N; i++) {
        CHECK(ga_free_p(h, 0, o[i]) == GA_OK);
    }
    CHECK(ga_free_p(h, 0, o[7]) == GA_EDOUBLEFREE);
    CHECK(ga_free_p(h, 0, o[7] + 8) == GA_ENOTOBJECT);
    VERIFY(h);
    /* The next 16-byte allocation refills: the swept, empty span goes
     * home, and its pages come back as a fresh span of 32-byte slots. */
    CHECK(ga_malloc(h, 0, 16, false, &x) == GA_OK);
    ga_addr y;
    CHECK(ga_malloc(h, 0, 32, false, &y) == GA_OK);
    ga_span_info s;
    CHECK(ga_span_of(h, o[0], &s) && s.state == 1 && s.sizeclass == 3);
    CHECK(y == o[0]);
    /* o[1] is now the middle of y's slot, o[2] a free 32-byte slot. */
    CHECK(ga_free_p(h, 0, o[1]) == GA_ENOTOBJECT);
    CHECK(ga_free_p(h, 0, o[2]) == GA_ENOTOBJECT);
    CHECK(ga_free_p(h, 0, o[0]) == GA_OK);
    CHECK(ga_free_p(h, 0, o[0]) == GA_EDOUBLEFREE);
    VERIFY(h);
    /* A flush empties every mcache: the hint (x's span) goes too. */
    CHECK(ga_free_p(h, 0, x) == GA_OK);
    CHECK(ga_flush(h) == GA_OK);
    CHECK(ga_free_p(h, 0, x) != GA_OK);
    VERIFY(h);
    ga_heap_free(h);
}

static void
test_concurrent_double_free(void)
{
    if (sysconf(_SC_NPROCESSORS_ONLN) < 2) {
        printf("heap: concurrent double free skipped (one CPU)\n");
        return;
    }
    /* The race hits within a few rounds when both threads run; a busy
     * machine can keep them apart, so a second child gets a chance. */
    int rc = run_child(concurrent_free_child);
    if (rc == 0) {
        rc = run_child(concurrent_free_child);
    }
    CHECK_MSG(rc == 0,
              "two threads freeing one large object: %s (status %d); both "
              "passed classify_locked before either freed, and the second "
              "free threw \"mheap.freeSpanLocked - invalid span state\"",
              rc >= 128 ? "the process died"
                        : "wrong statuses or a broken "
                          "heap",
              rc);
}

/* Threads working on their own objects, each through its own P. */
static struct {
    ga_heap *h;
    atomic_int bad;
} tw;

static void *
tw_worker(void *arg)
{
    int p = (int)(intptr_t)arg;
    uint64_t seed = 0x9E3779B97F4A7C15ULL * (uint64_t)(p + 1);
    ga_addr objs[16];
    for (int round = 0; round < 100; round++) {
        for (int i = 0; i < 16; i++) {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            uint64_t size = 32769 + seed % (2 * MiB);
            if (ga_malloc(tw.h, p, size, (seed >> 40) & 1, &objs[i]) !=
                GA_OK) {
                atomic_fetch_add(&tw.bad, 1);
                return NULL;
            }
        }
        for (int i = 0; i < 16; i++) {
            if (ga_free(tw.h, objs[i]) != GA_OK) {
                atomic_fetch_add(&tw.bad, 1);
            }
        }
    }
    return NULL;
}

static int
threaded_workload_child(void)
{
    ga_options o;
    opts(&o, "linux", "amd64", false, GA_BACKING_VIRTUAL);
    o.procs = 4;
    ga_status st;
    char err[256];
    tw.h = ga_heap_new(&o, &st, err, sizeof err);
    if (tw.h == NULL) {
        return 10;
    }
    pthread_t t[4];
    for (int k = 0; k < 4; k++) {
        if (pthread_create(&t[k], NULL, tw_worker, (void *)(intptr_t)k)) {
            return 13;
        }
    }
    for (int k = 0; k < 4; k++) {
        pthread_join(t[k], NULL);
    }
    char msg[256];
    int rc = atomic_load(&tw.bad) != 0 ? 1 : 0;
    if (rc == 0 && !ga_verify(tw.h, msg, sizeof msg)) {
        rc = 2;
    }
    ga_mem_stats ms;
    if (rc == 0 && (ga_read_mem_stats(tw.h, &ms) != GA_OK ||
                    ms.heap_inuse != 0 || ms.heap_objects != 0 ||
                    ms.mallocs != 4 * 100 * 16 || ms.frees != ms.mallocs)) {
        rc = 3;
    }
    ga_heap_free(tw.h);
    return rc;
}

static void
test_threaded_workload(void)
{
    int rc = run_child(threaded_workload_child);
    CHECK_MSG(rc == 0, "4 threads on their own objects: status %d", rc);
}

/* ---- Randomized: first fit and accounting against a model ----------- */

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
    CHECK_RUN(test_hint_tables());
    CHECK_RUN(test_platform_info());
    CHECK_RUN(test_bad_platforms());
    CHECK_RUN(test_release_options());
    CHECK_RUN(test_first_growth_virtual());
    CHECK_RUN(test_first_growth_os());
    CHECK_RUN(test_growth_arenas());
    CHECK_RUN(test_first_fit());
    CHECK_RUN(test_coalescing());
    CHECK_RUN(test_scavenge_top_down());
    CHECK_RUN(test_scavenge_goal());
    CHECK_RUN(test_scavenge_when());
    CHECK_RUN(test_growth_cur_arena());
    CHECK_RUN(test_cur_arena_discontiguous());
    CHECK_RUN(test_hint_collision());
    CHECK_RUN(test_fail_reserves_enomem());
    CHECK_RUN(test_fallback_hints());
    CHECK_RUN(test_lucky_fallback());
    CHECK_RUN(test_race_collisions());
    CHECK_RUN(test_bad_input());
    CHECK_RUN(test_sys_limit());
    CHECK_RUN(test_metadata_failures());
    CHECK_RUN(test_metadata_limit());
    CHECK_RUN(test_two_os_heaps());
    CHECK_RUN(test_throw_poisons());
    CHECK_RUN(test_32bit());
    CHECK_RUN(test_other_platform_growth());
    CHECK_RUN(test_options_defaults());
    CHECK_RUN(test_procs());
    CHECK_RUN(test_allspans_accounting());
    CHECK_RUN(test_gc_bits_arenas_small());
    CHECK_RUN(test_gc_bits_arenas_large());
    CHECK_RUN(test_persistent_chunk_header());
    CHECK_RUN(test_sweep_spans_accounting());
    CHECK_RUN(test_scavenge_no_huge());
    CHECK_RUN(test_os_collision());
    CHECK_RUN(test_zeroing());
    CHECK_RUN(test_threaded_workload());
    CHECK_RUN(test_concurrent_throw());
    CHECK_RUN(test_concurrent_double_free());
    CHECK_RUN(test_free_hint());
    for (uint64_t seed = 1; seed <= 4; seed++) {
        for (size_t r = 0; r < NRELEASES; r++) {
            CHECK_RUN(test_random(seed * 0x9E3779B97F4A7C15ULL,
                                  check_scaled(400), both_releases[r]));
        }
    }
    int failed = check_summary("heap");
    return failed > 255 ? 255 : failed;
}
