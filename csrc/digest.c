/* The heap's digest: one 64-bit hash of everything introspection shows.
 *
 * ga_digest mixes, in a fixed order, the hints, arenas, every span with
 * its bitmaps and tiny marks, the mcentral lists, every mcache, the
 * statistics and the collector's state, so that tests can say "the heap
 * is exactly as it was" in one comparison (bad input must leave it so).
 * Go 1.13: none (goalloc's own).
 * Locking: the caller runs alone on the heap; the heap lock is taken.
 */
#include "goalloc.h"
#include "mbitmap.h"
#include "mheap.h"
#include "tiny.h"

/* FNV-1a over 64-bit words: enough to tell "unchanged" from "changed". */
static void
mix(uint64_t *d, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        *d ^= (v >> (8 * i)) & 0xFF;
        *d *= 0x100000001B3ULL;
    }
}

static void
mix_bytes(uint64_t *d, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) {
        *d ^= b[i];
        *d *= 0x100000001B3ULL;
    }
}

/* digest_gc mixes the collector's state into *d: what ga_gc_state,
 * ga_gc_cycles and MemStats' GC fields show. */
static void
digest_gc(mheap *h, uint64_t *d)
{
    ga_gc_state st;
    ga_gc_state_get(h, &st);
#define MIX_FIELD(name, kind, doc) mix_bytes(d, &st.name, sizeof(st.name));
    /* phase is a string: its first letter tells them apart */
    mix(d, (uint64_t)st.phase[0]);
    st.phase = NULL;
    GA_GC_STATE_FIELDS(MIX_FIELD)
#undef MIX_FIELD
    mix(d, h->gc.numforcedgc);
    mix(d, h->gc.last_gc_ns);
    mix(d, h->gc.ncycles);
    mix(d, h->gc.bits.next);
    mix(d, h->gc.bits.current);
    mix(d, h->gc.bits.previous);
    mix(d, h->gc.bits.free);
    mix(d, h->gc.reclaim_index);
    mix(d, h->scavenged_total);
}

static bool
digest_span(void *arg, mspan *s)
{
    uint64_t *d = arg;
    uint64_t fields[] = {mspan_base(s), s->npages,      s->state,
                         s->scavenged,  s->needzero,    s->spanclass,
                         s->elemsize,   s->nelems,      mspan_alloc_count(s),
                         s->freeindex,  s->alloc_cache, s->limit,
                         s->sweepgen,   s->marked,      s->dropped};
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        mix(d, fields[i]);
    }
    if (s->state == MSPAN_IN_USE && span_class_sizeclass(s->spanclass)) {
        size_t nbytes = (size_t)gc_bits_bytes(s->nelems);
        mix_bytes(d, s->alloc_bits, nbytes);
        mix_bytes(d, s->freed_bits, nbytes);
        mix_bytes(d, s->used_bits, nbytes);
        mix_bytes(d, s->req_sizes,
                  (size_t)mspan_req_len(s->spanclass, s->nelems) * 2);
        if (s->mark_bits != NULL) {
            mix_bytes(d, s->mark_bits, nbytes);
        }
        mix(d, s->tiny_marks != NULL);
        if (s->tiny_marks != NULL) {
            mix_bytes(d, s->tiny_marks, tiny_table_bytes(s));
        }
    }
    return true;
}

uint64_t
ga_digest(ga_heap *h)
{
    uint64_t d = 0xCBF29CE484222325ULL;
    mheap_lock(h);
    for (arena_hint *a = h->arena_hints; a != NULL; a = a->next) {
        mix(&d, a->addr);
        mix(&d, a->down);
    }
    for (uint64_t i = 0; i < h->nall_arenas; i++) {
        mix(&d, h->all_arenas[i]);
    }
    mix(&d, h->release);
    mix(&d, h->cur_arena.base);
    mix(&d, h->cur_arena.end);
    mheap_walk_spans(h, digest_span, &d);
    for (int i = 0; i < NUM_SPAN_CLASSES; i++) {
        mcentral *c = &h->central[i];
        for (mspan *s = c->nonempty.first; s != NULL; s = s->next) {
            mix(&d, mspan_base(s));
        }
        mix(&d, 0xE);
        for (mspan *s = c->empty.first; s != NULL; s = s->next) {
            mix(&d, mspan_base(s));
        }
        mix(&d, c->nmalloc);
        uint64_t objects, bytes;
        mcentral_freed(h, (span_class)i, &objects, &bytes);
        mix(&d, objects);
        mix(&d, bytes);
    }
    for (int p = 0; p < h->nprocs; p++) {
        mcache *c = h->caches[p];
        mix(&d, c->tiny);
        mix(&d, c->tinyoffset);
        mix(&d, c->local_tinyallocs);
        mix(&d, c->local_requested);
        for (int i = 0; i < NUM_SPAN_CLASSES; i++) {
            mix(&d,
                c->alloc[i] == &h->emptymspan ? 0 : mspan_base(c->alloc[i]));
        }
    }
    const mstats *st = &h->stats;
    uint64_t stats[] = {st->heap_sys,
                        st->heap_inuse,
                        st->heap_idle,
                        st->heap_released,
                        st->heap_live,
                        st->mspan_sys,
                        st->mcache_sys,
                        heap_gc_sys(h),
                        st->other_sys,
                        st->tinyallocs,
                        h->largealloc,
                        h->nlargealloc,
                        h->largefree,
                        h->nlargefree,
                        h->pages_in_use,
                        h->large_requested,
                        h->large_requested_freed,
                        h->spanalloc.inuse,
                        h->treapalloc.inuse,
                        h->arena_hint_alloc.inuse,
                        h->free.unscav_huge_pages};
    for (size_t i = 0; i < sizeof(stats) / sizeof(stats[0]); i++) {
        mix(&d, stats[i]);
    }
    digest_gc(h, &d);
    mheap_unlock(h);
    return d;
}
