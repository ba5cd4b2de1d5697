/* malloc's contract on top of mallocgc: calloc and malloc_usable_size.
 * See malloc.c for the overview.
 *
 * A C program's malloc hands out dirty memory and zeroes only for calloc;
 * Go's mallocgc zeroes every object whose span may hold old data
 * (needzero) and none that the OS just gave it.  On a heap made with the
 * zero_on_request option (off by default) the core zeroes nothing and
 * in-use spans keep their needzero (mheap_alloc), so that ga_calloc can
 * zero what calloc asks for exactly where Go would have: a slot of a span
 * that has been used before, never a span fresh from the OS.
 * ga_usable_size answers malloc_usable_size and realloc's "does it still
 * fit" from the span alone, without a lock.
 * Go 1.13: mallocgc's needzero argument (malloc.go), which is false
 *          for allocations that are overwritten at once; span.needzero.
 * Differs from Go: Go zeroes whole slots (or a whole span) at
 *          allocation; ga_calloc zeroes the size asked for, since malloc
 *          promises nothing about the rest of the slot.
 * Locking: none of its own: ga_calloc is ga_malloc by P p, and the span
 *          it then reads is cached by p (a small object) or is the new
 *          object's own (a large one), so nothing else writes needzero
 *          meanwhile; ga_usable_size reads a span the caller's live
 *          object pins.
 */
#include "goalloc.h"

#include <string.h>

#include "mbitmap.h"
#include "mheap.h"

ga_status
ga_calloc(ga_heap *h, int p, uint64_t size, bool noscan, ga_addr *out)
{
    ga_status st = ga_malloc(h, p, size, noscan, out);
    if (st != GA_OK || !h->keep_needzero || *out == h->zerobase) {
        return st;
    }
    const mspan *s = span_of(h, *out);
    GA_ASSERT(s != NULL);
    if (s->needzero) {
        memset((void *)(uintptr_t)*out, 0, (size_t)size);
    }
    return GA_OK;
}

ga_status
ga_usable_size(ga_heap *h, ga_addr addr, uint64_t *size)
{
    if (heap_poisoned(h) != NULL) {
        return GA_EPOISONED;
    }
    if (addr == h->zerobase) {
        *size = 0;
        return GA_OK;
    }
    const mspan *s = span_of(h, addr);
    if (s == NULL) {
        return heap_arena_of(h, addr) != NULL ? GA_ENOTOBJECT : GA_EFOREIGN;
    }
    span_class spc = mspan_spanclass_load(s);
    if (__atomic_load_n(&s->state, __ATOMIC_RELAXED) != MSPAN_IN_USE ||
        addr < mspan_base(s) || addr >= s->limit) {
        return GA_ENOTOBJECT;
    }
    if (__atomic_load_n(&s->tiny_marks, __ATOMIC_RELAXED) != NULL) {
        return ga_object_extent(h, addr, size);
    }
    if (span_class_sizeclass(spc) == 0) {
        if (addr != mspan_base(s)) {
            return GA_ENOTOBJECT;
        }
        *size = s->npages * PAGE_SIZE;
        return GA_OK;
    }
    if (mspan_slot_addr(s, mspan_obj_index(s, addr)) != addr) {
        return GA_ENOTOBJECT;
    }
    *size = s->elemsize;
    return GA_OK;
}
