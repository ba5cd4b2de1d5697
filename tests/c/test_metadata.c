/* Growth metadata that cannot be had: every metadata allocation of a
 * growth failing in turn (ga_fail_metadata, fixalloc.h's meta_alloc),
 * and metadata_limit (arena.c's arena_prep_plan).  Each refused growth
 * returns GA_ENOMEM with a reason and leaves the heap as it was.
 *
 * Go 1.13: none (Go throws when the OS refuses metadata).
 * Differs from Go: all of it (design §5.7).
 * Locking: single-threaded.
 */
#include "heap_helpers.h"

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

int
main(void)
{
    CHECK_RUN(test_metadata_failures());
    CHECK_RUN(test_metadata_limit());
    int failed = check_summary("metadata");
    return failed > 255 ? 255 : failed;
}
