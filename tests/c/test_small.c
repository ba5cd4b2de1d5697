/* Small and tiny objects through the facade: a randomized alloc/free run
 * on several Ps with ga_verify after every step, checked against a model
 * of the live set (no overlap, each live object inside an in-use span of
 * its class, MemStats counts exact), on both backends. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "goalloc.h"
#include "sizeclasses.h"

#define NLIVE 3000

typedef struct obj {
    ga_addr a;
    uint64_t size;
    bool noscan;
    int p; /* the P that allocated it */
} obj;

static uint64_t rng = 88172645463325252ULL;

static uint64_t
next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static uint64_t
random_size(void)
{
    switch (next_rand() % 4) {
    case 0:
        return 1 + next_rand() % 15; /* tiny if noscan */
    case 1:
        return 1 + next_rand() % 512;
    case 2:
        return 1 + next_rand() % MAX_SMALL_SIZE;
    default:
        return MAX_SMALL_SIZE + 1 + next_rand() % 100000;
    }
}

static int
cmp_obj(const void *x, const void *y)
{
    const obj *a = x, *b = y;
    return a->a < b->a ? -1 : a->a > b->a;
}

/* check_model: live objects do not overlap and sit in spans of their
 * class; heap_objects counts them (tiny blocks may hold several). */
static void
check_model(ga_heap *h, obj *live, size_t n)
{
    obj *sorted = malloc(n * sizeof(*sorted) + 1);
    memcpy(sorted, live, n * sizeof(*sorted));
    qsort(sorted, n, sizeof(*sorted), cmp_obj);
    for (size_t i = 0; i + 1 < n; i++) {
        CHECK_MSG(sorted[i].a + sorted[i].size <= sorted[i + 1].a,
                  "objects at 0x%llx and 0x%llx overlap",
                  (unsigned long long)sorted[i].a,
                  (unsigned long long)sorted[i + 1].a);
    }
    for (size_t i = 0; i < n; i++) {
        ga_span_info s;
        const obj *o = &sorted[i];
        if (!CHECK(ga_span_of(h, o->a, &s))) {
            continue;
        }
        bool tiny = o->noscan && o->size < TINY_SIZE;
        int want = o->size > MAX_SMALL_SIZE ? 0
                   : tiny                   ? TINY_SIZE_CLASS
                                            : size_to_class(o->size);
        CHECK(s.state == 1 && s.sizeclass == want);
        CHECK(o->a + o->size <= s.base + s.npages * 8192);
    }
    free(sorted);
}

static void
run(ga_backing backing)
{
    ga_options o;
    ga_options_init(&o);
    o.backing = backing;
    o.procs = 3;
    ga_status st;
    char err[256], msg[512];
    ga_heap *h = ga_heap_new(&o, &st, err, sizeof(err));
    if (!CHECK(h != NULL)) {
        return;
    }
    obj *live = calloc(NLIVE, sizeof(*live));
    size_t n = 0;
    uint64_t allocs = 0, frees = 0;
    const int steps = check_scaled(20000);
    for (int step = 0; step < steps; step++) {
        uint64_t r = next_rand() % 100;
        if (n < NLIVE && (r < 55 || n == 0)) {
            obj *x = &live[n];
            x->size = random_size();
            x->noscan = next_rand() & 1;
            int p = (int)(next_rand() % 3);
            x->p = p;
            if (!CHECK(ga_malloc(h, p, x->size, x->noscan, &x->a) == GA_OK)) {
                break;
            }
            n++;
            allocs++;
        }
        else if (r < 97) {
            size_t i = next_rand() % n;
            /* Free as the allocating P (its lock-free path), as another P
             * or as none (a remote free: counted aside while a P caches
             * the span), or as every P (the binding's serial mode). */
            int fp = (int)(next_rand() % 6);
            fp = fp == 3   ? live[i].p
                 : fp == 4 ? GA_NO_P
                 : fp == 5 ? GA_ALL_PS
                           : fp;
            CHECK(ga_free_p(h, fp, live[i].a) == GA_OK);
            /* A second free is a double free, unless the object's span
             * went back to the heap (its memory is then just free). */
            ga_status again = (next_rand() & 1)
                                  ? ga_free(h, live[i].a)
                                  : ga_free_p(h, live[i].p, live[i].a);
            ga_span_info s;
            bool home = ga_span_of(h, live[i].a, &s) && s.state == 3;
            CHECK_MSG(again == GA_EDOUBLEFREE ||
                          (home && again == GA_ENOTOBJECT),
                      "second free of 0x%llx (%llu bytes): %s, span %s",
                      (unsigned long long)live[i].a,
                      (unsigned long long)live[i].size, ga_status_name(again),
                      home ? "free" : "in use");
            live[i] = live[--n];
            frees++;
        }
        else if (r < 99) {
            CHECK(ga_flush(h) == GA_OK);
        }
        else {
            uint64_t rel;
            CHECK(ga_scavenge(h, next_rand() % (8 << 20), &rel) == GA_OK);
        }
        if (step % 50 == 0 || step >= steps - 100) {
            CHECK_MSG(ga_verify(h, msg, sizeof(msg)), "step %d: %s", step,
                      msg);
            check_model(h, live, n);
        }
    }
    ga_mem_stats ms;
    ga_read_mem_stats(h, &ms);
    CHECK(ms.mallocs - ms.frees == ms.heap_objects);
    /* every object freed: nothing live, and after a flush no span in use */
    while (n > 0) {
        CHECK(ga_free(h, live[--n].a) == GA_OK);
    }
    CHECK(ga_flush(h) == GA_OK);
    ga_read_mem_stats(h, &ms);
    CHECK(ms.heap_objects == 0 && ms.heap_alloc == 0 && ms.heap_inuse == 0);
    CHECK_MSG(ga_verify(h, msg, sizeof(msg)), "%s", msg);
    free(live);
    ga_heap_free(h);
}

/* The facade's size-class table (what the binding shows as
 * goalloc.size_classes()) is the generated one, row for row, and its
 * lookup is mallocgc's. */
static void
test_size_class_facade(void)
{
    ga_size_class k;
    for (int c = 0; c < NUM_SIZE_CLASSES; c++) {
        CHECK(ga_size_class_get(c, &k));
        uint64_t objects = c ? class_objects(c) : 0;
        const div_magic *m = &class_to_divmagic[c];
        CHECK_MSG(k.size == class_to_size[c] &&
                      k.npages == class_to_allocnpages[c] &&
                      k.objects == objects &&
                      k.tail ==
                          (c ? k.npages * PAGE_SIZE - objects * k.size : 0) &&
                      k.div_shift == m->shift && k.div_shift2 == m->shift2 &&
                      k.div_mul == m->mul && k.base_mask == m->base_mask,
                  "class %d", c);
    }
    CHECK(!ga_size_class_get(-1, &k) &&
          !ga_size_class_get(NUM_SIZE_CLASSES, &k));
    CHECK(ga_size_to_class(0) == 0 &&
          ga_size_to_class(MAX_SMALL_SIZE + 1) == 0 &&
          ga_size_to_class(UINT64_MAX) == 0);
    for (uint64_t n = 1; n <= MAX_SMALL_SIZE; n++) {
        CHECK_MSG(ga_size_to_class(n) == size_to_class((size_t)n), "%llu",
                  (unsigned long long)n);
    }
}

int
main(void)
{
    test_size_class_facade();
    run(GA_BACKING_VIRTUAL);
    run(GA_BACKING_OS);
    int failed = check_summary("small");
    return failed > 255 ? 255 : failed;
}
