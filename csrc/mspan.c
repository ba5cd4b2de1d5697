/* Spans.  See malloc.c for the overview.
 *
 * mspan initialisation, its physical pages (huge pages, the bounds the
 * scavenger releases) and the mcentral span lists.
 * Go 1.13: src/runtime/mheap.go ((*mspan).init, hugePages,
 *          physPageBounds, released, mSpanList).
 * Differs from Go: nothing.
 * Locking: as for the span (see mspan.h).
 */
#include "mspan.h"

#include <stddef.h>

#include "arith.h"
#include "throw.h"

const char *const mspan_state_names[4] = {"dead", "inuse", "manual", "free"};

void
mspan_init(mspan *s, ga_addr base, uint64_t npages)
{
    /* sweepgen, nelems, alloc_cache, div magic and limit are left alone,
     * as in Go: later initialisation overwrites them. */
    s->next = NULL;
    s->prev = NULL;
    mspan_set_list(s, NULL);
    s->start_addr = base;
    s->npages = npages;
    s->alloc_count = 0;
    s->remote_frees = 0;
    mspan_spanclass_store(s, 0);
    s->elemsize = 0;
    s->state = MSPAN_DEAD;
    s->scavenged = false;
    s->needzero = 0;
    s->freeindex = 0;
    s->alloc_bits = NULL;
    s->freed_bits = NULL;
    s->used_bits = NULL;
    __atomic_store_n(&s->tiny_marks, NULL, __ATOMIC_RELAXED);
    s->req_sizes = NULL;
}

uint64_t
mspan_huge_pages(const mspan *s, uint64_t huge_page_size)
{
    if (huge_page_size == 0 || s->npages < huge_page_size / PAGE_SIZE) {
        return 0;
    }
    ga_addr start = mspan_base(s);
    ga_addr end = mspan_end(s);
    if (huge_page_size > PAGE_SIZE) {
        start = round_up(start, huge_page_size);
        end = round_down(end, huge_page_size);
    }
    if (start < end) {
        return (end - start) >> ilog2(huge_page_size);
    }
    return 0;
}

void
mspan_phys_page_bounds(const mspan *s, uint64_t phys_page_size, ga_addr *start,
                       ga_addr *end)
{
    *start = mspan_base(s);
    *end = mspan_end(s);
    if (phys_page_size > PAGE_SIZE) {
        *start = round_up(*start, phys_page_size);
        *end = round_down(*end, phys_page_size);
    }
}

uint64_t
mspan_released(const mspan *s, uint64_t phys_page_size)
{
    if (!s->scavenged) {
        return 0;
    }
    ga_addr start, end;
    mspan_phys_page_bounds(s, phys_page_size, &start, &end);
    return end > start ? end - start : 0;
}

void
mspan_list_init(mspan_list *l)
{
    l->first = NULL;
    l->last = NULL;
}

void
mspan_list_remove(mspan_list *l, mspan *s)
{
    GA_ASSERT(mspan_list_of(s) == l);
    if (s == l->first) {
        l->first = s->next;
    }
    else {
        s->prev->next = s->next;
    }
    if (s == l->last) {
        l->last = s->prev;
    }
    else {
        s->next->prev = s->prev;
    }
    s->next = NULL;
    s->prev = NULL;
    mspan_set_list(s, NULL);
}

void
mspan_list_insert(mspan_list *l, mspan *s)
{
    GA_ASSERT(mspan_list_of(s) == NULL);
    s->next = l->first;
    s->prev = NULL;
    if (l->first != NULL) {
        l->first->prev = s;
    }
    else {
        l->last = s;
    }
    l->first = s;
    mspan_set_list(s, l);
}

void
mspan_list_insert_back(mspan_list *l, mspan *s)
{
    GA_ASSERT(mspan_list_of(s) == NULL);
    s->next = NULL;
    s->prev = l->last;
    if (l->last != NULL) {
        l->last->next = s;
    }
    else {
        l->first = s;
    }
    l->last = s;
    mspan_set_list(s, l);
}
