/* Address range sets: the OS layer's record of what a heap holds.
 * See mem.h.
 *
 * A mem_range_set is a growable array of disjoint [base, end) ranges in
 * address order: every range a heap reserved (so that closing it gives
 * all of its address space back, and so that the virtual backend knows
 * what is taken), and the ranges blocked as foreign mappings.
 * Go 1.13: none (Go never gives its heap's address space back).
 * Differs from Go: all of it.
 * Locking: the caller holds the heap lock.
 */
#include "mem.h"

#include <stdlib.h>
#include <string.h>

#include "fixalloc.h"

bool
mem_ranges_overlap(const mem_range_set *s, ga_addr base, ga_addr end)
{
    for (size_t i = 0; i < s->n; i++) {
        if (s->r[i].base < end && base < s->r[i].end) {
            return true;
        }
    }
    return false;
}

bool
mem_ranges_contain(const mem_range_set *s, ga_addr base, ga_addr end)
{
    for (size_t i = 0; i < s->n; i++) {
        if (s->r[i].base <= base && end <= s->r[i].end) {
            return true;
        }
    }
    return false;
}

bool
mem_ranges_room(mem_range_set *s, size_t extra, struct meta_alloc *meta)
{
    if (s->n + extra <= s->cap) {
        return true;
    }
    size_t cap = s->cap ? s->cap * 2 : 16;
    cap = cap < s->n + extra ? s->n + extra : cap;
    mem_range *r = meta_realloc(meta, s->r, cap * sizeof(*r));
    if (r == NULL) {
        return false;
    }
    s->r = r;
    s->cap = cap;
    return true;
}

static bool
mem_ranges_insert_at(mem_range_set *s, size_t i, ga_addr base, ga_addr end)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        mem_range *r = realloc(s->r, cap * sizeof(*r));
        if (r == NULL) {
            return false;
        }
        s->r = r;
        s->cap = cap;
    }
    memmove(&s->r[i + 1], &s->r[i], (s->n - i) * sizeof(*s->r));
    s->r[i].base = base;
    s->r[i].end = end;
    s->n++;
    return true;
}

bool
mem_ranges_add(mem_range_set *s, ga_addr base, ga_addr end)
{
    size_t i = 0;
    while (i < s->n && s->r[i].base < base) {
        i++;
    }
    return mem_ranges_insert_at(s, i, base, end);
}

void
mem_ranges_remove(mem_range_set *s, ga_addr base, ga_addr end)
{
    for (size_t i = 0; i < s->n; i++) {
        mem_range *r = &s->r[i];
        if (r->end <= base || end <= r->base) {
            continue;
        }
        if (base <= r->base && r->end <= end) {
            memmove(r, r + 1, (s->n - i - 1) * sizeof(*r));
            s->n--;
            i--;
        }
        else if (r->base < base && end < r->end) {
            /* Punch a hole: split in two.  If the split cannot grow the
             * array, keep the range whole (it is then over-recorded,
             * which only delays its release to mem_destroy). */
            ga_addr old_end = r->end;
            if (mem_ranges_insert_at(s, i + 1, end, old_end)) {
                s->r[i].end = base;
            }
            return;
        }
        else if (r->base < base) {
            r->end = base;
        }
        else {
            r->base = end;
        }
    }
}

void
mem_ranges_free(mem_range_set *s)
{
    free(s->r);
    memset(s, 0, sizeof(*s));
}
