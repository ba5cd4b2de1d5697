/* malloc's contract on the core (cmalloc.c): the zero_on_request option,
 * ga_calloc and ga_usable_size.
 *
 * A zero_on_request heap hands reused memory out dirty, as malloc does;
 * ga_calloc zeroes a reused slot or span and leaves memory fresh from
 * the OS untouched (mincore shows its pages were never faulted in);
 * in-use spans keep needzero.  ga_usable_size is the slot's size.
 * Go 1.13: mallocgc's needzero, span.needzero.
 * Differs from Go: Go always zeroes what needzero says is dirty.
 * Locking: single-threaded.
 */
#define _DEFAULT_SOURCE /* mincore */
#include <inttypes.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "check.h"
#include "goalloc.h"

static ga_heap *
new_heap(bool zero_on_request)
{
    ga_options o;
    ga_options_init(&o);
    o.zero_on_request = zero_on_request;
    ga_status st;
    char err[256];
    ga_heap *h = ga_heap_new(&o, &st, err, sizeof(err));
    if (!CHECK_MSG(h != NULL, "%s", err)) {
        exit(1);
    }
    return h;
}

static size_t
count_bytes(ga_addr a, uint64_t n, uint8_t v)
{
    const uint8_t *p = (const uint8_t *)(uintptr_t)a;
    size_t k = 0;
    for (uint64_t i = 0; i < n; i++) {
        k += p[i] == v;
    }
    return k;
}

/* used_then_freed: an object of size bytes filled with 0xAB, freed, and
 * its slot swept so that the next allocation of the size reuses it. */
static ga_addr
used_then_freed(ga_heap *h, uint64_t size)
{
    ga_addr a = 0;
    CHECK(ga_malloc(h, 0, size, false, &a) == GA_OK);
    memset((void *)(uintptr_t)a, 0xAB, (size_t)size);
    CHECK(ga_free(h, a) == GA_OK);
    CHECK(ga_flush(h) == GA_OK);
    return a;
}

/* Reused memory: ga_malloc leaves it dirty, ga_calloc zeroes it, and the
 * span says it may hold old data (a large span used to forget it). */
static void
test_dirty_reuse(void)
{
    uint64_t sizes[] = {48, 1000, 100000};
    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        uint64_t n = sizes[k];
        ga_heap *h = new_heap(true);
        ga_addr a = used_then_freed(h, n);
        ga_addr b = 0;
        CHECK(ga_malloc(h, 0, n, false, &b) == GA_OK);
        CHECK_MSG(b == a, "size %" PRIu64, n);
        CHECK_MSG(count_bytes(b, n, 0xAB) == n,
                  "size %" PRIu64 ": malloc zeroed reused memory", n);
        ga_span_info si;
        CHECK(ga_span_of(h, b, &si) && si.needzero);
        CHECK(ga_free(h, b) == GA_OK);
        CHECK(ga_flush(h) == GA_OK);
        ga_addr c = 0;
        CHECK(ga_calloc(h, 0, n, false, &c) == GA_OK);
        CHECK(c == a);
        CHECK_MSG(count_bytes(c, n, 0) == n,
                  "size %" PRIu64 ": calloc left %zu dirty bytes", n,
                  n - count_bytes(c, n, 0));
        char msg[256];
        CHECK_MSG(ga_verify(h, msg, sizeof msg), "%s", msg);
        CHECK(ga_free(h, c) == GA_OK);
        ga_heap_free(h);
    }
}

/* resident_pages of [a, a+n): how many were faulted in. */
static size_t
resident_pages(ga_addr a, uint64_t n)
{
    size_t pg = (size_t)sysconf(_SC_PAGESIZE);
    size_t np = (size_t)((n + pg - 1) / pg);
    unsigned char vec[1024];
    if (!CHECK(np <= sizeof vec) ||
        !CHECK(mincore((void *)(uintptr_t)a, np * pg, vec) == 0)) {
        return SIZE_MAX;
    }
    size_t r = 0;
    for (size_t i = 0; i < np; i++) {
        r += vec[i] & 1;
    }
    return r;
}

/* Memory fresh from the OS is known zero: ga_calloc does not touch it
 * (no page of a 1 MiB calloc is faulted in), and it reads as zero. */
static void
test_fresh_memory_untouched(void)
{
    ga_heap *h = new_heap(true);
    uint64_t n = 1 << 20;
    ga_addr a = 0;
    CHECK(ga_calloc(h, 0, n, false, &a) == GA_OK);
    CHECK_MSG(resident_pages(a, n) == 0, "%zu pages faulted in",
              resident_pages(a, n));
    CHECK(count_bytes(a, n, 0) == n);
    CHECK(ga_free(h, a) == GA_OK);
    ga_heap_free(h);
}

/* The default heap is Go's: ga_calloc is ga_malloc, both zero reused
 * memory, and spans forget needzero once zeroed. */
static void
test_default_heap_zeroes(void)
{
    ga_heap *h = new_heap(false);
    ga_addr a = used_then_freed(h, 100000);
    ga_addr b = 0;
    CHECK(ga_malloc(h, 0, 100000, false, &b) == GA_OK && b == a);
    CHECK(count_bytes(b, 100000, 0) == 100000);
    ga_span_info si;
    CHECK(ga_span_of(h, b, &si) && !si.needzero);
    CHECK(ga_free(h, b) == GA_OK);
    ga_heap_free(h);
}

static void
check_usable(ga_heap *h, uint64_t size, uint64_t want)
{
    ga_addr a = 0;
    CHECK(ga_malloc(h, 0, size, false, &a) == GA_OK);
    uint64_t got = 0;
    ga_status st = ga_usable_size(h, a, &got);
    CHECK_MSG(st == GA_OK && got == want,
              "size %" PRIu64 ": %s, %" PRIu64 " usable, want %" PRIu64, size,
              ga_status_name(st), got, want);
    if (size > 1) {
        CHECK(ga_usable_size(h, a + 1, &got) == GA_ENOTOBJECT);
    }
    CHECK(ga_free(h, a) == GA_OK);
}

/* ga_usable_size: the size class's slot, a large object's span, 0 for
 * the zerobase; interior, tail and foreign addresses are refused. */
static void
test_usable_size(void)
{
    ga_heap *h = new_heap(true);
    check_usable(h, 1, 8);
    check_usable(h, 24, 32);
    check_usable(h, 100, 112);
    check_usable(h, 32768, 32768);
    check_usable(h, 40000, 40960);
    check_usable(h, 1 << 20, 1 << 20);
    uint64_t got = 1;
    ga_heap_info info;
    ga_heap_info_get(h, &info);
    CHECK(ga_usable_size(h, info.zerobase, &got) == GA_OK && got == 0);
    int local = 0;
    CHECK(ga_usable_size(h, (ga_addr)(uintptr_t)&local, &got) == GA_EFOREIGN);
    /* class 3200: two slots and 1792 bytes of tail in one 8 KiB page */
    ga_addr a = 0;
    CHECK(ga_malloc(h, 0, 3200, false, &a) == GA_OK);
    ga_span_info si;
    CHECK(ga_span_of(h, a, &si));
    CHECK(ga_usable_size(h, si.limit, &got) == GA_ENOTOBJECT);
    CHECK(ga_free(h, a) == GA_OK);
    ga_heap_free(h);
}

int
main(void)
{
    test_dirty_reuse();
    test_fresh_memory_untouched();
    test_default_heap_zeroes();
    test_usable_size();
    return check_summary("cmalloc") != 0;
}
