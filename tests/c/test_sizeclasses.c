/* Tests for the size-class tables (csrc/sizeclasses.[ch]).
 *
 * Checks the shape Go 1.13 fixes (67 classes, 8 .. 32768 bytes, class 2 =
 * 16 bytes for the tiny allocator), the rules the generator promises (size
 * alignment, tail waste <= 1/8 of the span, at most 10 pages), that both
 * lookup tables give the smallest class that fits, and that the division
 * magic is exact for every offset of every span.
 * Go 1.13: the checks mksizeclasses.go and mallocinit make on the table.
 * Build: gcc -std=c11 -Wall -Wextra -Werror -Icsrc \
 *            tests/c/test_sizeclasses.c csrc/sizeclasses.c
 * Exit status: the number of failed checks (at most 255).
 */
#include <stdbool.h>
#include <stdio.h>

#include "sizeclasses.h"
#include "check.h"

/* ---- Helpers ------------------------------------------------------ */

static uint32_t
span_bytes(int c)
{
    return (uint32_t)class_to_allocnpages[c] * (uint32_t)PAGE_SIZE;
}

/* smallest_class returns the smallest class whose size is >= size, by a
 * plain search of class_to_size (the definition both tables encode). */
static int
smallest_class(uint32_t size)
{
    if (size == 0) {
        return 0;
    }
    for (int c = 1; c < NUM_SIZE_CLASSES; c++) {
        if (class_to_size[c] >= size) {
            return c;
        }
    }
    return -1;
}

/* ---- The shape of the table --------------------------------------- */

/* Compile-time facts are static assertions, not CHECKs. */
_Static_assert(NUM_SIZE_CLASSES == 67, "Go 1.13 has 67 size classes");
_Static_assert(sizeof class_to_size / sizeof class_to_size[0] == 67,
               "class_to_size length");
_Static_assert(sizeof class_to_allocnpages / sizeof class_to_allocnpages[0] ==
                   67,
               "class_to_allocnpages length");
_Static_assert(sizeof class_to_divmagic / sizeof class_to_divmagic[0] == 67,
               "class_to_divmagic length");
_Static_assert(SIZE_TO_CLASS8_LEN == 129, "size_to_class8 length");
_Static_assert(SIZE_TO_CLASS128_LEN == 249, "size_to_class128 length");
_Static_assert(PAGE_SIZE == 8192, "8 KiB pages");

static void
test_shape(void)
{
    /* Class 0 marks large objects and has no entries. */
    CHECK(class_to_size[0] == 0);
    CHECK(class_to_allocnpages[0] == 0);
    CHECK(class_to_divmagic[0].shift == 0);
    CHECK(class_to_divmagic[0].shift2 == 0);
    CHECK(class_to_divmagic[0].mul == 0);
    CHECK(class_to_divmagic[0].base_mask == 0);

    CHECK(class_to_size[1] == 8);
    CHECK(class_to_size[TINY_SIZE_CLASS] == TINY_SIZE);
    CHECK(class_to_size[2] == 16);
    CHECK(class_to_size[NUM_SIZE_CLASSES - 1] == MAX_SMALL_SIZE);
    CHECK(class_to_size[66] == 32768);

    /* Spot values from the Go 1.13 table: the 1.13 alignment rule has no
     * 24-byte class; 8448 grows to 9472 (6 objects in 7 pages). */
    CHECK(class_to_size[3] == 32);
    CHECK(class_to_size[51] == 9472 && class_to_allocnpages[51] == 7);
    CHECK(class_to_allocnpages[64] == 10);
}

/* test_no_zero_entries checks that every real class has a size and pages;
 * the later tests divide by both, so main stops early if not. */
static bool
test_no_zero_entries(void)
{
    bool ok = true;

    for (int c = 1; c < NUM_SIZE_CLASSES; c++) {
        ok &= CHECK_MSG(class_to_size[c] != 0 && class_to_allocnpages[c] != 0,
                        "class %d", c);
    }
    return ok;
}

/* ---- The generator's rules, class by class ------------------------ */

static void
test_rules(void)
{
    for (int c = 1; c < NUM_SIZE_CLASSES; c++) {
        uint32_t size = class_to_size[c];
        uint32_t span = span_bytes(c);
        uint32_t objects = span / size;
        bool increasing = size > class_to_size[c - 1];
        bool aligned = size % 8 == 0 && (size < 16 || size % 16 == 0) &&
                       (size < 1024 || size % 128 == 0);
        bool tail_ok = span - objects * size <= span / 8;
        bool pages_ok = class_to_allocnpages[c] >= 1 &&
                        class_to_allocnpages[c] <= 10;
        bool objects_ok = class_objects(c) == objects && objects >= 1 &&
                          objects <= MAX_OBJS_PER_SPAN;

        CHECK_MSG(increasing, "class %d (size %u)", c, size);
        CHECK_MSG(aligned, "class %d (size %u)", c, size);
        CHECK_MSG(tail_ok, "class %d (size %u)", c, size);
        CHECK_MSG(pages_ok, "class %d (size %u)", c, size);
        CHECK_MSG(objects_ok, "class %d (size %u)", c, size);
    }

    CHECK(class_objects(1) == 1024);
    CHECK(class_objects(4) == 170);
    CHECK(class_objects(64) == 3);
    CHECK(class_objects(66) == 1);
}

/* ---- Size -> class lookup ----------------------------------------- */

static void
test_lookup_tables(void)
{
    for (uint32_t i = 0; i < SIZE_TO_CLASS8_LEN; i++) {
        int want = smallest_class(i * SMALL_SIZE_DIV);
        CHECK_MSG(size_to_class8[i] == want,
                  "size_to_class8[%u] = %d, "
                  "want %d",
                  i, size_to_class8[i], want);
    }
    for (uint32_t i = 0; i < SIZE_TO_CLASS128_LEN; i++) {
        int want = smallest_class(SMALL_SIZE_MAX + i * LARGE_SIZE_DIV);
        CHECK_MSG(size_to_class128[i] == want,
                  "size_to_class128[%u] = %d, "
                  "want %d",
                  i, size_to_class128[i], want);
    }
    CHECK(size_to_class8[0] == 0);
    CHECK(size_to_class8[128] == 31);
    CHECK(size_to_class128[0] == 31);
    CHECK(size_to_class128[248] == 66);
}

static void
test_size_to_class(void)
{
    uint32_t first_bad = 0;

    for (uint32_t n = 1; n <= MAX_SMALL_SIZE; n++) {
        int c = size_to_class(n);
        bool ok = c >= 1 && c < NUM_SIZE_CLASSES && class_to_size[c] >= n &&
                  (c == 1 || class_to_size[c - 1] < n) &&
                  c == smallest_class(n);
        if (!ok && first_bad == 0) {
            first_bad = n;
        }
    }
    CHECK_MSG(first_bad == 0, "size_to_class(%u) = %d", first_bad,
              size_to_class(first_bad));

    /* The boundary between the two tables (design §3.3): 1016 is the
     * last size of the 8-byte table, 1017 the first of the 128-byte one. */
    CHECK(size_to_class(896) == 30);
    CHECK(size_to_class(897) == 31);
    CHECK(size_to_class(1016) == 31);
    CHECK(size_to_class(1017) == 31);
    CHECK(size_to_class(1024) == 31);
    CHECK(size_to_class(1025) == 32);
    CHECK(size_to_class(32768) == 66);

    CHECK(roundupsize(1) == 8);
    CHECK(roundupsize(17) == 32);
    CHECK(roundupsize(8449) == 9472);
    CHECK(roundupsize(32767) == 32768);
    CHECK(roundupsize(32768) == 32768);
    CHECK(roundupsize(32769) == 40960);
}

/* ---- Division magic ----------------------------------------------- */

/* first_bad_offset returns 0 if class c's magic gives off / size for
 * every offset 0..span bytes in 32-bit arithmetic, as Go intends, and
 * otherwise the first offset that fails, plus one. */
static uint32_t
first_bad_offset(int c)
{
    div_magic m = class_to_divmagic[c];
    uint32_t size = class_to_size[c];
    uint32_t span = span_bytes(c);

    for (uint32_t off = 0; off <= span; off++) {
        uint32_t want = off / size;
        uint32_t got = ((off >> m.shift) * m.mul) >> m.shift2;
        /* Power-of-two classes: a plain shift gives the index, and the
         * mask rounds an in-span offset down to its object's start. */
        bool mask_ok = m.base_mask == 0 ||
                       ((off >> m.shift) == want &&
                        (off == span || (off & m.base_mask) == want * size));
        if (got != want || !mask_ok) {
            return off + 1;
        }
    }
    return 0;
}

static void
test_divmagic(void)
{
    for (int c = 1; c < NUM_SIZE_CLASSES; c++) {
        div_magic m = class_to_divmagic[c];
        uint32_t size = class_to_size[c];
        uint32_t odd = size >> m.shift;
        uint32_t bad;

        CHECK_MSG(odd << m.shift == size && odd % 2 == 1,
                  "class %d: shift %u is not ctz(%u)", c, m.shift, size);
        CHECK_MSG((uint64_t)m.mul * (span_bytes(c) >> m.shift) < (uint64_t)1
                                                                     << 32,
                  "class %d: mul %u overflows 32 bits", c, m.mul);
        CHECK_MSG(is_pow2(size) == (m.base_mask != 0 &&
                                    m.base_mask == (uint16_t)(65536 - size)),
                  "class %d: base_mask %u", c, m.base_mask);
        bad = first_bad_offset(c);
        CHECK_MSG(bad == 0, "class %d: wrong at offset %u", c, bad - 1);
    }
    CHECK(class_to_divmagic[66].base_mask == 32768);
    CHECK(class_to_divmagic[4].mul == 683 &&
          class_to_divmagic[4].shift2 == 11);
}

int
main(void)
{
    test_shape();
    if (test_no_zero_entries()) {
        test_rules();
        test_lookup_tables();
        test_size_to_class();
        test_divmagic();
    }
    int failed = check_summary("sizeclasses");
    return failed > 255 ? 255 : failed; /* an exit status has 8 bits */
}
