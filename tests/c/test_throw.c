/* Go's throw: it poisons the heap, which then refuses every call with
 * GA_EPOISONED and keeps the first message; introspection still answers
 * and closing the heap still returns everything.
 *
 * Go 1.13: src/runtime/panic.go (throw).
 * Differs from Go: a throw poisons one heap instead of ending the process
 *          (design §10.3).
 * Locking: single-threaded (test_threads.c throws while another thread
 *          is in a call).
 */
#include "heap_helpers.h"

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

int
main(void)
{
    CHECK_RUN(test_throw_poisons());
    int failed = check_summary("throw");
    return failed > 255 ? 255 : failed;
}
