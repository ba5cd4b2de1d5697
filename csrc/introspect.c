/* Introspection: read-only views of a heap for the facade.
 *
 * Hints, arenas, spans and span_of as plain records, built under the
 * heap lock.  Spans are listed by walking each mapped arena in address
 * order from span to span, the way every page is covered by exactly one
 * span (design §11.2).  Also Go's size-class table, for the binding.
 * Go 1.13: the views Go's export_test.go gives its tests (spanOf,
 *          allArenas, arenaHints, CountPagesInUse); sizeclasses.go.
 * Differs from Go: nothing to differ from; Go has no such API.
 * Locking: the views take the heap lock (ga_central_spans the class's
 *          mcentral lock); ga_cache_info_get, ga_poisoned and
 *          ga_oom_reason read without one (the caller runs alone on the
 *          heap; the last two are atomic).
 */
#include <stdlib.h>

#include "goalloc.h"
#include "mheap.h"
#include "mbitmap.h"
#include "sizeclasses.h"
#include "tiny.h"

size_t
ga_hints(ga_heap *h, ga_hint_info *out, size_t cap)
{
    size_t n = 0;
    mheap_lock(h);
    for (arena_hint *hint = h->arena_hints; hint != NULL; hint = hint->next) {
        if (n < cap) {
            out[n].addr = hint->addr;
            out[n].down = hint->down;
        }
        n++;
    }
    mheap_unlock(h);
    return n;
}

size_t
ga_arenas(ga_heap *h, ga_arena_info *out, size_t cap)
{
    mheap_lock(h);
    size_t n = (size_t)h->nall_arenas;
    for (size_t i = 0; i < n && i < cap; i++) {
        uint64_t idx = h->all_arenas[i];
        out[i].base = arena_base(&h->plat, idx);
        out[i].index = idx;
        out[i].l1 = h->plat.arena_l1_bits == 0 ? 0
                                               : idx >> h->plat.arena_l2_bits;
        out[i].l2 = idx & (((uint64_t)1 << h->plat.arena_l2_bits) - 1);
    }
    mheap_unlock(h);
    return n;
}

static void
fill_span_info(const mspan *s, ga_span_info *o)
{
    o->base = mspan_base(s);
    o->npages = s->npages;
    o->state = s->state;
    o->scavenged = s->scavenged;
    bool in_use = s->state == MSPAN_IN_USE;
    o->spanclass = in_use ? s->spanclass : 0;
    o->sizeclass = in_use ? span_class_sizeclass(s->spanclass) : 0;
    o->noscan = in_use && span_class_noscan(s->spanclass);
    o->elemsize = in_use ? s->elemsize : 0;
    o->nelems = in_use ? s->nelems : 0;
    o->alloc_count = in_use ? mspan_alloc_count(s) : 0;
    o->freeindex = in_use ? s->freeindex : 0;
    o->limit = in_use ? s->limit : 0;
    o->needzero = s->needzero != 0;
    o->sweepgen = in_use ? s->sweepgen : 0;
}

struct span_list {
    ga_span_info *out;
    size_t cap;
    size_t n;
};

static bool
collect_span(void *arg, mspan *s)
{
    struct span_list *l = arg;
    if (l->n < l->cap) {
        fill_span_info(s, &l->out[l->n]);
    }
    l->n++;
    return true;
}

size_t
ga_spans(ga_heap *h, ga_span_info *out, size_t cap)
{
    struct span_list l = {out, cap, 0};
    mheap_lock(h);
    mheap_walk_spans(h, collect_span, &l);
    mheap_unlock(h);
    return l.n;
}

/* find_covering, for ga_span_of: the span that really covers addr is the
 * one span_of names, unless the page is inside a free span whose interior
 * entries are stale; then this walk finds it. */
static bool
find_covering(void *arg, mspan *s)
{
    void **slot = arg;
    ga_addr addr = *(ga_addr *)slot[0];
    if (mspan_base(s) <= addr && addr < mspan_end(s)) {
        slot[1] = s;
        return false;
    }
    return true;
}

bool
ga_span_of(ga_heap *h, ga_addr addr, ga_span_info *out)
{
    mheap_lock(h);
    mspan *s = span_of(h, addr);
    if (s != NULL && !(mspan_base(s) <= addr && addr < mspan_end(s) &&
                       s->state != MSPAN_DEAD)) {
        void *slot[2] = {&addr, NULL};
        mheap_walk_spans(h, find_covering, slot);
        s = slot[1];
    }
    if (s != NULL) {
        fill_span_info(s, out);
    }
    mheap_unlock(h);
    return s != NULL;
}

void
ga_heap_info_get(ga_heap *h, ga_heap_info *out)
{
    mheap_lock(h);
    out->goos = h->plat.goos;
    out->goarch = h->plat.goarch;
    out->race = h->plat.race;
    out->backing = h->mem.kind;
    out->procs = h->nprocs;
    out->ptr_size = h->plat.ptr_size;
    out->page_size = PAGE_SIZE;
    out->heap_arena_bytes = h->plat.heap_arena_bytes;
    out->phys_page_size = h->plat.phys_page_size;
    out->phys_huge_page_size = h->plat.phys_huge_page_size;
    out->max_alloc = h->plat.max_alloc;
    out->arena_l1_bits = h->plat.arena_l1_bits;
    out->arena_l2_bits = h->plat.arena_l2_bits;
    out->arena_base_offset = h->plat.arena_base_offset;
    out->zerobase = h->zerobase;
    out->pages_in_use = h->pages_in_use;
    out->scavenge_goal = h->scavenge_goal;
    out->unscav_huge_pages = h->free.unscav_huge_pages;
    out->nallspans = h->nallspans;
    out->release = h->release;
    out->cur_arena_base = h->cur_arena.base;
    out->cur_arena_end = h->cur_arena.end;
    out->metadata_bytes = h->meta_bytes;
    out->metadata_limit = h->meta_limit;
    out->span_meta_bytes = h->span_meta_bytes;
    out->tiny_meta_bytes = h->tiny_meta_bytes;
    mheap_unlock(h);
}

/* ga_poisoned and ga_oom_reason: why the heap died, or last refused to
 * grow. */
const char *
ga_poisoned(ga_heap *h)
{
    return heap_poisoned(h);
}

const char *
ga_oom_reason(ga_heap *h)
{
    return __atomic_load_n(&h->oom_reason, __ATOMIC_RELAXED);
}

/* ---- mcentrals, mcaches, slots ------------------------------------- */

size_t
ga_central_spans(ga_heap *h, int spc, int which, ga_addr *out, size_t cap)
{
    if (spc < 0 || spc >= NUM_SPAN_CLASSES) {
        return 0;
    }
    mcentral *c = &h->central[spc];
    pthread_mutex_lock(&c->lock);
    mspan_list *l = which ? &c->empty : &c->nonempty;
    size_t n = 0;
    for (mspan *s = l->first; s != NULL; s = s->next) {
        if (n < cap) {
            out[n] = mspan_base(s);
        }
        n++;
    }
    pthread_mutex_unlock(&c->lock);
    return n;
}

void
ga_central_info_get(ga_heap *h, int spc, ga_central_info *out)
{
    mcentral *c = &h->central[spc];
    pthread_mutex_lock(&c->lock);
    out->nmalloc = c->nmalloc;
    pthread_mutex_unlock(&c->lock);
    uint64_t bytes;
    mcentral_freed(h, (span_class)spc, &out->nsmallfree, &bytes);
}

bool
ga_cache_info_get(ga_heap *h, int p, ga_cache_info *out)
{
    if (p < 0 || p >= h->nprocs) {
        return false;
    }
    mcache *c = h->caches[p];
    out->tiny = c->tiny;
    out->tinyoffset = c->tinyoffset;
    out->local_tinyallocs = c->local_tinyallocs;
    for (int i = 0; i < NUM_SPAN_CLASSES; i++) {
        mspan *s = c->alloc[i];
        out->alloc[i] = s == &h->emptymspan ? 0 : mspan_base(s);
    }
    return true;
}

/* small_span_at: the in-use small span whose base is base, or NULL. */
static mspan *
small_span_at(mheap *h, ga_addr base)
{
    mspan *s = span_of(h, base);
    if (s == NULL || mspan_base(s) != base || s->state != MSPAN_IN_USE ||
        span_class_sizeclass(s->spanclass) == 0) {
        return NULL;
    }
    return s;
}

/* free_slot_state: slot i of s on an explicit-free heap. */
static uint8_t
free_slot_state(const mspan *s, uint64_t i)
{
    return bit_get(s->freed_bits, i)  ? GA_SLOT_FREED
           : mspan_is_allocated(s, i) ? GA_SLOT_LIVE
                                      : GA_SLOT_FREE;
}

/* gc_slot_state: slot i of s on a GC-mode heap: an allocated object is
 * dropped when the program dropped it (a tiny block: every object in
 * it), until a sweep frees its slot. */
static uint8_t
gc_slot_state(const mspan *s, uint64_t i)
{
    if (!mspan_is_allocated(s, i)) {
        return GA_SLOT_FREE;
    }
    tiny_block b = tiny_block_of(s, i);
    bool dropped = b.marks != NULL ? tiny_live(b) == 0
                                   : bit_get(s->freed_bits, i);
    return dropped ? GA_SLOT_DROPPED : GA_SLOT_LIVE;
}

size_t
ga_span_objects(ga_heap *h, ga_addr base, uint8_t *out, uint16_t *out_marks,
                size_t cap)
{
    mheap_lock(h);
    mspan *s = small_span_at(h, base);
    size_t n = 0;
    if (s != NULL) {
        n = (size_t)s->nelems;
        for (size_t i = 0; i < n && i < cap; i++) {
            out[i] = h->gc.enabled ? gc_slot_state(s, i)
                                   : free_slot_state(s, i);
            if (out_marks != NULL) {
                tiny_block b = tiny_block_of(s, i);
                out_marks[i] = b.marks != NULL ? (uint16_t)tiny_live(b) : 0;
            }
        }
    }
    mheap_unlock(h);
    return n;
}

ga_status
ga_object_extent(ga_heap *h, ga_addr addr, uint64_t *size)
{
    if (heap_poisoned(h) != NULL) {
        return GA_EPOISONED;
    }
    mheap_lock(h);
    ga_status st = GA_ENOTOBJECT;
    mspan *s = span_of(h, addr);
    if (s == NULL) {
        /* in a mapped arena but in no span: go1.13.8's curArena */
        st = heap_arena_of(h, addr) != NULL ? GA_ENOTOBJECT : GA_EFOREIGN;
    }
    else if (mspan_base(s) <= addr && addr < mspan_end(s) &&
             s->state == MSPAN_IN_USE) {
        if (span_class_sizeclass(s->spanclass) == 0) {
            if (addr == mspan_base(s)) {
                *size = s->limit - addr;
                st = GA_OK;
            }
        }
        else if (addr < s->limit) {
            uint64_t i = mspan_obj_index(s, addr);
            uint64_t off = addr - mspan_slot_addr(s, i);
            bool live = mspan_is_allocated(s, i) && !bit_get(s->freed_bits, i);
            tiny_block b = tiny_block_of(s, i);
            if (live && b.marks != NULL) {
                if (tiny_live(b) & TINY_START(off)) {
                    /* exactly what was asked: the bytes after it may be
                     * handed out to the next tiny object */
                    *size = tiny_size_at(tiny_marks_load(b), off);
                    st = GA_OK;
                }
            }
            else if (live && off == 0) {
                *size = s->elemsize;
                st = GA_OK;
            }
        }
    }
    mheap_unlock(h);
    return st;
}

/* ---- Bulk views --------------------------------------------------- */

struct live_list {
    ga_live_object *out;
    size_t cap;
    size_t n;
    bool gc; /* the heap runs the collector: list dropped objects too */
};

static void
push_live(struct live_list *l, ga_addr a, uint64_t size, uint64_t req,
          uint64_t spc, bool dropped)
{
    if (l->n < l->cap) {
        l->out[l->n] = (ga_live_object){a, size, req, spc, dropped};
    }
    l->n++;
}

/* collect_tiny lists the objects of tiny block b at slot: the live ones,
 * and in GC mode the dropped ones too (until the block is swept). */
static void
collect_tiny(struct live_list *l, const mspan *s, ga_addr slot, tiny_block b,
             bool gc)
{
    uint32_t m = tiny_marks_load(b);
    uint32_t live = tiny_live(b);
    uint32_t listed = gc ? m & TINY_OFFSETS : live;
    for (unsigned off = 0; off < TINY_SIZE; off++) {
        if (listed & TINY_START(off)) {
            uint64_t req = tiny_size_at(m, off);
            push_live(l, slot + off, req, req, s->spanclass,
                      (live & TINY_START(off)) == 0);
        }
    }
}

/* collect_live lists the objects of span s: the live ones; in GC mode
 * also the dropped ones no sweep has freed yet (flagged). */
static bool
collect_live(void *arg, mspan *s)
{
    struct live_list *l = arg;
    if (s->state != MSPAN_IN_USE) {
        return true;
    }
    bool gc = l->gc;
    if (span_class_sizeclass(s->spanclass) == 0) {
        push_live(l, mspan_base(s), s->limit - mspan_base(s),
                  s->limit - mspan_base(s), s->spanclass, s->dropped);
        return true;
    }
    for (uint64_t i = 0; i < s->nelems; i++) {
        bool dropped = bit_get(s->freed_bits, i);
        if (!mspan_is_allocated(s, i) || (dropped && !gc)) {
            continue;
        }
        ga_addr slot = mspan_slot_addr(s, i);
        tiny_block b = tiny_block_of(s, i);
        if (b.marks == NULL) {
            push_live(l, slot, s->elemsize, mspan_req_load(s, i), s->spanclass,
                      dropped);
            continue;
        }
        collect_tiny(l, s, slot, b, gc);
    }
    return true;
}

size_t
ga_live_objects(ga_heap *h, ga_live_object *out, size_t cap)
{
    struct live_list l = {out, cap, 0, h->gc.enabled};
    mheap_lock(h);
    mheap_walk_spans(h, collect_live, &l);
    mheap_unlock(h);
    return l.n;
}

struct page_list {
    int16_t *out;
    size_t cap;
    size_t n;
};

static bool
collect_pages(void *arg, mspan *s)
{
    struct page_list *l = arg;
    int16_t code;
    switch (s->state) {
    case MSPAN_FREE:
        code = s->scavenged ? GA_PAGE_RELEASED : GA_PAGE_FREE;
        break;
    case MSPAN_IN_USE:
        code = (int16_t)span_class_sizeclass(s->spanclass);
        break;
    default:
        code = GA_PAGE_MANUAL;
    }
    for (uint64_t i = 0; i < s->npages; i++) {
        if (l->n < l->cap) {
            l->out[l->n] = code;
        }
        l->n++;
    }
    return true;
}

/* collect_ungrown: curArena's pages are Prepared, counted idle and
 * released, as a released free span's are; the page map shows them so. */
static bool
collect_ungrown(void *arg, ga_addr base, uint64_t size)
{
    struct page_list *l = arg;
    (void)base;
    for (uint64_t i = 0; i < size / PAGE_SIZE; i++) {
        if (l->n < l->cap) {
            l->out[l->n] = GA_PAGE_RELEASED;
        }
        l->n++;
    }
    return true;
}

size_t
ga_page_map(ga_heap *h, int16_t *out, size_t cap)
{
    struct page_list l = {out, cap, 0};
    mheap_lock(h);
    mheap_walk(h, collect_pages, collect_ungrown, &l);
    mheap_unlock(h);
    return l.n;
}

/* ---- Go's size classes -------------------------------------------- */

bool
ga_size_class_get(int c, ga_size_class *out)
{
    if (c < 0 || c >= NUM_SIZE_CLASSES) {
        return false;
    }
    const div_magic *m = &class_to_divmagic[c];
    out->size = class_to_size[c];
    out->npages = class_to_allocnpages[c];
    out->objects = c != 0 ? class_objects(c) : 0;
    out->tail = c != 0 ? out->npages * PAGE_SIZE - out->objects * out->size
                       : 0;
    out->div_shift = m->shift;
    out->div_shift2 = m->shift2;
    out->div_mul = m->mul;
    out->base_mask = m->base_mask;
    return true;
}

int
ga_size_to_class(uint64_t size)
{
    return size == 0 || size > MAX_SMALL_SIZE ? 0
                                              : size_to_class((size_t)size);
}
