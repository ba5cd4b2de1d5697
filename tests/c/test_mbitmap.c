/* Span bitmaps (csrc/mbitmap.c, malloc.h's next_free_fast): allocBits,
 * the allocCache refill, nextFreeIndex and nextFreeFast against a slow
 * scan of the bits, freeindex, the sweep, and the invariant check.
 *
 * Spans are made here by hand (an mspan struct and a calloc'd bitmap
 * block) for size classes of 1 to 1024 slots, with
 * allocBits patterns that cross 64-slot words and end mid-word.
 * Go 1.13: src/runtime/mbitmap.go (nextFreeIndex, refillAllocCache),
 *          malloc.go (nextFreeFast), mgcsweep.go (sweep).
 * Differs from Go: freed_bits and used_bits (design §6.2).
 * Locking: single-threaded.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "malloc.h"
#include "mbitmap.h"
#include "sizeclasses.h"

/* A small span of class c at a fixed address, bits all clear. */
static mspan *
make_span(int c)
{
    mspan *s = calloc(1, sizeof(*s));
    span_class spc = make_span_class(c, false);
    mspan_init(s, (ga_addr)0xc000000000, class_to_allocnpages[c]);
    s->state = MSPAN_IN_USE;
    s->spanclass = spc;
    s->elemsize = class_to_size[c];
    const div_magic *m = &class_to_divmagic[c];
    s->div_shift = m->shift;
    s->div_shift2 = m->shift2;
    s->div_mul = m->mul;
    s->base_mask = m->base_mask;
    uint64_t n = s->npages * PAGE_SIZE / s->elemsize;
    mspan_init_bits(s, calloc(1, mspan_bits_bytes(spc, n)), false);
    s->limit = s->start_addr + s->nelems * s->elemsize;
    return s;
}

static void
free_span(mspan *s)
{
    free(s->alloc_bits);
    free(s);
}

static uint64_t rng = 0x9E3779B97F4A7C15ULL;

static uint64_t
rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* set_pattern: a swept span whose allocBits say which slots are taken
 * (density in 1/8ths), freeindex 0, allocCache loaded, as a sweep leaves
 * it.  Returns the live count. */
static uint64_t
set_pattern(mspan *s, unsigned density)
{
    uint64_t live = 0;
    memset(s->alloc_bits, 0, gc_bits_bytes(s->nelems));
    for (uint64_t i = 0; i < s->nelems; i++) {
        if (rnd() % 8 < density) {
            bit_set(s->alloc_bits, i);
            live++;
        }
    }
    s->alloc_count = (uint16_t)live;
    mspan_freeindex_store(s, 0);
    mspan_refill_alloc_cache(s, 0);
    return live;
}

static bool
check_bits(const mspan *s, const char *what)
{
    char msg[200] = "";
    bool ok = mspan_check_bits(s, msg, sizeof(msg));
    return CHECK_MSG(ok, "%s: %s", what, msg);
}

static const int classes[] = {1, 2, 5, 26, 36, 66};

/* nextFreeIndex hands out exactly the clear bits, in order, then
 * nelems for good; freeindex is one past the slot handed out, and the
 * allocCache agrees with allocBits at every step. */
static void
test_next_free_index(void)
{
    for (size_t k = 0; k < sizeof(classes) / sizeof(classes[0]); k++) {
        for (unsigned density = 0; density <= 8; density += 2) {
            mspan *s = make_span(classes[k]);
            set_pattern(s, density);
            uint8_t *bits = malloc(gc_bits_bytes(s->nelems));
            memcpy(bits, s->alloc_bits, gc_bits_bytes(s->nelems));
            uint64_t want = 0, wrong = 0;
            for (;;) {
                while (want < s->nelems && bit_get(bits, want)) {
                    want++;
                }
                uint64_t got = mspan_next_free_index(s);
                wrong += got != want;
                if (got >= s->nelems || wrong != 0) {
                    break;
                }
                wrong += s->freeindex != got + 1;
                s->alloc_count++;
                want++;
                if ((got & 15) == 0 && !check_bits(s, "nextFreeIndex")) {
                    wrong++;
                    break;
                }
            }
            CHECK_MSG(wrong == 0, "class %d density %u: slot %" PRIu64,
                      classes[k], density, want);
            CHECK(s->freeindex == s->nelems &&
                  mspan_next_free_index(s) == s->nelems);
            CHECK(mspan_count_allocated(s) == s->nelems);
            free(bits);
            free_span(s);
        }
    }
}

/* nextFreeFast: the same slots as nextFreeIndex, or NO_SLOT where it
 * must leave the work to the slow path (an empty cache, or a slot whose
 * successor starts a new 64-slot word); it never changes the span then. */
static void
test_next_free_fast(void)
{
    for (size_t k = 0; k < sizeof(classes) / sizeof(classes[0]); k++) {
        mspan *fast = make_span(classes[k]);
        mspan *slow = make_span(classes[k]);
        set_pattern(fast, 3);
        memcpy(slow->alloc_bits, fast->alloc_bits,
               gc_bits_bytes(slow->nelems));
        slow->alloc_count = fast->alloc_count;
        mspan_refill_alloc_cache(slow, 0);
        uint64_t bails = 0, differ = 0;
        for (;;) {
            uint64_t want = mspan_next_free_index(slow);
            mspan before = *fast;
            uint64_t got = next_free_fast(fast);
            if (got == NO_SLOT) {
                bails++;
                differ += memcmp(&before, fast, sizeof(before)) != 0;
                /* a bail where the cache had the slot, not at a word's
                 * end, is a missed fast allocation */
                unsigned bit = ctz64(before.alloc_cache);
                bool word_end = (want + 1) % 64 == 0 &&
                                want + 1 != fast->nelems;
                differ += bit < 64 && want < fast->nelems &&
                          want == before.freeindex + bit && !word_end;
                got = mspan_next_free_index(fast);
                if (got < fast->nelems) {
                    fast->alloc_count++;
                }
            }
            differ += got != want || fast->freeindex != slow->freeindex;
            if (want >= slow->nelems || differ != 0) {
                break;
            }
            slow->alloc_count++;
            differ += fast->alloc_count != slow->alloc_count;
        }
        CHECK_MSG(differ == 0, "class %d: fast and slow paths differ",
                  classes[k]);
        CHECK_MSG(fast->nelems < 64 || bails > 0, "class %d: never bailed",
                  classes[k]);
        free_span(fast);
        free_span(slow);
    }
}

/* The sweep: allocBits := allocated and not freed, used_bits gains the
 * allocated, freed_bits clear, freeindex 0, remote frees folded into
 * allocCount, needzero once something was freed. */
static void
test_sweep(void)
{
    mspan *s = make_span(2); /* 16-byte slots: 512, eight words */
    uint64_t live = set_pattern(s, 4);
    for (int i = 0; i < 100; i++) { /* hand out 100 more slots */
        if (mspan_next_free_index(s) < s->nelems) {
            s->alloc_count++;
            live++;
        }
    }
    uint64_t fi = s->freeindex;
    CHECK(fi > 100 && fi < s->nelems && check_bits(s, "before the sweep"));
    CHECK(mspan_count_allocated(s) == live);
    /* free every third allocated slot: a third as the caching P (not
     * counted in allocCount), the rest remotely */
    uint64_t freed = 0, remote = 0;
    for (uint64_t i = 0; i < s->nelems; i++) {
        if (mspan_is_allocated(s, i) && i % 3 == 0) {
            CHECK(!bit_test_and_set(s->freed_bits, i));
            CHECK(bit_test_and_set(s->freed_bits, i)); /* a second time */
            freed++;
            if (i % 2 == 0) {
                s->alloc_count--;
            }
            else {
                remote++;
            }
        }
    }
    s->remote_frees = (uint32_t)remote;
    CHECK(mspan_alloc_count(s) == live - freed);
    CHECK(check_bits(s, "frees before the sweep"));
    CHECK(mspan_sweep(s) == freed);
    CHECK(s->freeindex == 0 && s->remote_frees == 0 && s->needzero == 1);
    CHECK(s->alloc_count == live - freed);
    uint64_t bad = 0;
    for (uint64_t i = 0; i < s->nelems; i++) {
        bad += bit_get(s->freed_bits, i);
        bad += bit_get(s->alloc_bits, i) && !bit_get(s->used_bits, i);
        bad += i < fi && !bit_get(s->used_bits, i);
    }
    CHECK_MSG(bad == 0, "%" PRIu64 " bits wrong after the sweep", bad);
    CHECK(mspan_count_allocated(s) == live - freed);
    CHECK(check_bits(s, "after the sweep"));
    /* the next allocation is the lowest freed slot */
    uint64_t lowest = 0;
    while (bit_get(s->alloc_bits, lowest)) {
        lowest++;
    }
    CHECK(mspan_next_free_index(s) == lowest);
    free_span(s);
}

/* mspan_check_bits catches a wrong allocCache and a freed bit on a slot
 * never handed out; objIndex by div magic for every class. */
static void
test_check_bits(void)
{
    mspan *s = make_span(26);
    set_pattern(s, 4);
    CHECK(check_bits(s, "fresh"));
    s->alloc_cache ^= 2;
    char msg[200] = "";
    CHECK(!mspan_check_bits(s, msg, sizeof(msg)) &&
          strstr(msg, "allocCache") != NULL);
    s->alloc_cache ^= 2;
    uint64_t free_slot = 0;
    while (bit_get(s->alloc_bits, free_slot)) {
        free_slot++;
    }
    bit_set(s->freed_bits, free_slot);
    CHECK(!mspan_check_bits(s, msg, sizeof(msg)) &&
          strstr(msg, "freed but not allocated") != NULL);
    free_span(s);
    CHECK(ctz64(0) == 64 && ctz64((uint64_t)1 << 63) == 63);
    CHECK(shr64(~(uint64_t)0, 64) == 0 && shr64(8, 3) == 1);
    for (int c = 1; c < NUM_SIZE_CLASSES; c++) {
        mspan *t = make_span(c);
        uint64_t wrong = 0;
        for (uint64_t i = 0; i < t->nelems; i++) {
            ga_addr a = mspan_slot_addr(t, i);
            wrong += mspan_obj_index(t, a) != i;
            wrong += mspan_obj_index(t, a + t->elemsize - 1) != i;
        }
        CHECK_MSG(wrong == 0, "class %d: objIndex wrong", c);
        free_span(t);
    }
}

int
main(void)
{
    CHECK_RUN(test_next_free_index());
    CHECK_RUN(test_next_free_fast());
    CHECK_RUN(test_sweep());
    CHECK_RUN(test_check_bits());
    int failed = check_summary("mbitmap");
    return failed > 255 ? 255 : failed;
}
