/* sysAlloc: hint collisions, the fallback reservation, race mode's
 * limits, sys_limit, and several heaps sharing one address space.
 *
 * Go 1.13: src/runtime/malloc.go ((*mheap).sysAlloc, sysReserveAligned),
 *          malloc_test.go (TestArenaCollision).
 * Differs from Go: failed growths are undone (design §5.7); a heap's
 *          address space goes back to the OS when it is closed.
 * Locking: single-threaded.
 */
#include "heap_helpers.h"

/* ---- Hint collisions --------------------------------------------- */

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
        lucky_fallback(release_of(i));
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

/* TestArenaCollision on the os backend: a real PROTECT_NONE page at the
 * next hint. */
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

/* ---- Limits and several heaps ------------------------------------ */

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

int
main(void)
{
    CHECK_RUN(test_hint_collision());
    CHECK_RUN(test_fail_reserves_enomem());
    CHECK_RUN(test_fallback_hints());
    CHECK_RUN(test_lucky_fallback());
    CHECK_RUN(test_race_collisions());
    CHECK_RUN(test_sys_limit());
    CHECK_RUN(test_two_os_heaps());
    CHECK_RUN(test_os_collision());
    int failed = check_summary("sysalloc");
    return failed > 255 ? 255 : failed;
}
