/* Helpers of the page-heap tests (test_arena.c, test_mheap.c, ...).
 *
 * Constants spelled out independently of csrc/ (Go 1.13's, design §3),
 * heaps opened through the facade, malloc/free/scavenge wrappers that
 * check the status and run ga_verify after every step, introspection
 * lists, the digest of everything a caller can observe (a rejected call
 * must leave it byte for byte as it was, design §10.2), span layout
 * expectations and the hint tables every file needs.  Every function is
 * static inline: each test file uses a part of them.
 * Go 1.13: src/runtime/malloc.go, mheap.go (what the numbers mean).
 * Differs from Go: Go's tests use package testing; this is C.
 * Locking: single-threaded test programs only (check.h's counters).
 */
#ifndef GA_TESTS_HEAP_HELPERS_H
#define GA_TESTS_HEAP_HELPERS_H

#include "check.h"
#include "goalloc.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- Constants (design §3), spelled out independently of csrc ---- */

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

/* ---- Small helpers ----------------------------------------------- */

static inline void *
xcalloc(size_t n, size_t size)
{
    void *p = calloc(n == 0 ? 1 : n, size);
    if (p == NULL) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    return p;
}

static inline uint64_t
round_up(uint64_t x, uint64_t align)
{
    return (x + align - 1) / align * align;
}

static inline uint64_t
pages_for(uint64_t size)
{
    return (size + GO_PAGE - 1) / GO_PAGE;
}

static inline void
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

static inline ga_heap *
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

static inline ga_heap *
open_virtual(const char *goos, const char *goarch, bool race, int line)
{
    ga_options o;
    opts(&o, goos, goarch, race, GA_BACKING_VIRTUAL);
    return open_at(&o, line);
}

#define VIRT(goos, goarch) open_virtual((goos), (goarch), false, __LINE__)

/* A virtual heap of release r (design §5.8): the default is
 * go1.13.8; tests of go1.13.0's page heap pin it. */
static inline ga_heap *
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

/* Both releases' page heaps (design §5.8): go1.13.8 is the default;
 * tests of go1.13.0 pin it.  release_of(i) for i < NRELEASES. */
#define NRELEASES 2

static inline inline ga_release
release_of(size_t i)
{
    return i == 0 ? GA_RELEASE_GO1_13_8 : GA_RELEASE_GO1_13_0;
}

#define VERIFY(h) verify_at((h), __LINE__)

static inline bool
verify_at(ga_heap *h, int line)
{
    char msg[512] = "";
    bool ok = ga_verify(h, msg, sizeof msg);
    return CHECK_MSG(ok, "line %d: ga_verify: %s", line, msg);
}

#define MALLOC(h, size) malloc_at((h), (size), false, __LINE__)
#define MALLOC_NOSCAN(h, size) malloc_at((h), (size), true, __LINE__)

static inline ga_addr
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

static inline void
free_at(ga_heap *h, ga_addr a, int line)
{
    ga_status st = ga_free(h, a);
    CHECK_MSG(st == GA_OK, "line %d: ga_free(0x%" PRIx64 ") = %s", line, a,
              ga_status_name(st));
    verify_at(h, line);
}

#define SCAVENGE(h, n) scavenge_at((h), (n), __LINE__)

static inline uint64_t
scavenge_at(ga_heap *h, uint64_t nbytes, int line)
{
    uint64_t released = UINT64_MAX;
    ga_status st = ga_scavenge(h, nbytes, &released);
    CHECK_MSG(st == GA_OK, "line %d: ga_scavenge = %s", line,
              ga_status_name(st));
    verify_at(h, line);
    return released;
}

static inline ga_mem_stats
stats_of(ga_heap *h)
{
    ga_mem_stats s;
    memset(&s, 0, sizeof s);
    ga_status st = ga_read_mem_stats(h, &s);
    CHECK_MSG(st == GA_OK, "ga_read_mem_stats = %s", ga_status_name(st));
    return s;
}

static inline ga_heap_info
info_of(ga_heap *h)
{
    ga_heap_info in;
    memset(&in, 0, sizeof in);
    ga_heap_info_get(h, &in);
    return in;
}

/* ---- Introspection lists ----------------------------------------- */

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

static inline hint_list
get_hints(ga_heap *h)
{
    hint_list l;
    l.n = ga_hints(h, NULL, 0);
    l.v = xcalloc(l.n, sizeof *l.v);
    CHECK(ga_hints(h, l.v, l.n) == l.n);
    return l;
}

static inline span_list
get_spans(ga_heap *h)
{
    span_list l;
    l.n = ga_spans(h, NULL, 0);
    l.v = xcalloc(l.n, sizeof *l.v);
    CHECK(ga_spans(h, l.v, l.n) == l.n);
    return l;
}

static inline arena_list
get_arenas(ga_heap *h)
{
    arena_list l;
    l.n = ga_arenas(h, NULL, 0);
    l.v = xcalloc(l.n, sizeof *l.v);
    CHECK(ga_arenas(h, l.v, l.n) == l.n);
    return l;
}

static inline size_t
hint_count(ga_heap *h)
{
    return ga_hints(h, NULL, 0);
}

/* head_hint returns the first hint's address (0 if there is none). */
static inline ga_addr
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

static inline void
digest_take(ga_heap *h, digest *d)
{
    memset(d, 0, sizeof *d);
    d->hints = get_hints(h);
    d->spans = get_spans(h);
    d->arenas = get_arenas(h);
    d->stats = stats_of(h);
    d->info = info_of(h);
}

static inline void
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

static inline bool
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

/* ---- Span layout expectations ------------------------------------ */

typedef struct span_want {
    ga_addr base;
    uint64_t npages;
    int state;
    bool scavenged;
} span_want;

static inline void
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

static inline bool
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

static inline void
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
static inline uint64_t
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
static inline uint64_t
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

/* ---- Hint tables (design §4.2) ----------------------------------- */

/* The expected tables, from the formulas of design §4.2. */
static inline size_t
want_hints_default(ga_addr *w)
{
    for (uint64_t i = 0; i < NUM_HINTS_64; i++) {
        w[i] = 0x00c000000000 + i * TiB;
    }
    return NUM_HINTS_64;
}

/* The 32-bit path (design §4.2): p = round_up(binary_end + 256 KiB,
 * 4 MiB); the simulator hands the 512 MiB + 4 MiB reservation out at p,
 * which is 4 MiB aligned, so sysReserveAligned keeps all of it; the one
 * up-hint sits at its end. */
static inline ga_addr
want_region_32(uint64_t binary_end)
{
    return round_up(binary_end + 256 * KiB, ARENA_32);
}

static inline ga_addr
want_hint_32(uint64_t binary_end)
{
    return want_region_32(binary_end) + 512 * MiB + ARENA_32;
}

static inline void
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
#endif
