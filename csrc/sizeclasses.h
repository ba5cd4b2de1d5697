/* Size classes.  See malloc.c for the overview.
 *
 * The Go 1.13 table of 67 size classes (class 0 = large objects), the
 * pages per span of each class, the division magic that turns a byte
 * offset into an object index, and the two lookup tables that map a
 * request size to its class.  The tables in sizeclasses.c are GENERATED
 * by tools/mksizeclasses.py (our port of Go's mksizeclasses.go rule);
 * do not edit them by hand.
 * Go 1.13: src/runtime/sizeclasses.go, msize.go (roundupsize),
 *          malloc.go (size_to_class lookups in mallocgc).
 * Differs from Go: nothing.
 * Locking: read-only tables.
 */
#ifndef GA_SIZECLASSES_H
#define GA_SIZECLASSES_H

#include "arith.h"
#include "ga.h"

/* class_to_divmagic entry: index = ((off >> shift) * mul) >> shift2, or
 * off >> shift when base_mask != 0 (power-of-two sizes). */
typedef struct div_magic {
    uint8_t shift;
    uint8_t shift2;
    uint16_t mul;
    uint16_t base_mask;
} div_magic;

#define SIZE_TO_CLASS8_LEN (SMALL_SIZE_MAX / SMALL_SIZE_DIV + 1)
#define SIZE_TO_CLASS128_LEN                                                  \
    ((MAX_SMALL_SIZE - SMALL_SIZE_MAX) / LARGE_SIZE_DIV + 1)

extern const uint16_t class_to_size[NUM_SIZE_CLASSES];
extern const uint8_t class_to_allocnpages[NUM_SIZE_CLASSES];
extern const div_magic class_to_divmagic[NUM_SIZE_CLASSES];
extern const uint8_t size_to_class8[SIZE_TO_CLASS8_LEN];
extern const uint8_t size_to_class128[SIZE_TO_CLASS128_LEN];

/* size_to_class returns the size class of a small request
 * (1 <= size <= MAX_SMALL_SIZE), exactly as mallocgc looks it up. */
static inline uint8_t
size_to_class(size_t size)
{
    if (size <= SMALL_SIZE_MAX - 8) {
        return size_to_class8[(size + SMALL_SIZE_DIV - 1) / SMALL_SIZE_DIV];
    }
    return size_to_class128[(size - SMALL_SIZE_MAX + LARGE_SIZE_DIV - 1) /
                            LARGE_SIZE_DIV];
}

/* class_objects is the number of objects in one span of class c > 0. */
static inline uint32_t
class_objects(int c)
{
    return (uint32_t)(class_to_allocnpages[c] * PAGE_SIZE / class_to_size[c]);
}

/* roundupsize returns the size of the memory block mallocgc will
 * allocate for a request of size bytes (msize.go). */
static inline uint64_t
roundupsize(uint64_t size)
{
    if (size < MAX_SMALL_SIZE) {
        return class_to_size[size_to_class((size_t)size)];
    }
    if (size + PAGE_SIZE < size) {
        return size;
    }
    return round_up(size, PAGE_SIZE);
}

#endif
