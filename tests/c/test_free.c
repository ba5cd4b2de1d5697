/* Explicit free: bad input (foreign, interior and double frees) leaves
 * the heap exactly as it was; the free hint of a P's lock-free path;
 * memory handed out again is zeroed (or not, with skip_zeroing).
 *
 * Go 1.13: none for the free itself; mallocgc's needzero.
 * Differs from Go: all of it (design §6): Go frees by sweeping.
 * Locking: single-threaded (test_threads_free.c races frees).
 */
#include "heap_helpers.h"

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

int
main(void)
{
    CHECK_RUN(test_bad_input());
    CHECK_RUN(test_zeroing());
    CHECK_RUN(test_free_hint());
    int failed = check_summary("free");
    return failed > 255 ? 255 : failed;
}
