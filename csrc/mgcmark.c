/* Marking (GC mode).  See mgc.h.
 *
 * Go marks what the program can reach by tracing pointers from its
 * roots.  goalloc has no pointers to trace: the program tells it what
 * it can no longer reach (ga_drop), so the reachable set is every
 * allocated object not dropped.  The mark runs at once, the world
 * stopped (design §14.2): each in-use span's gcmarkBits become
 * "allocated and not dropped" (a tiny block: some object in it not
 * dropped), the span's pageMarks bit says whether anything was marked,
 * and every P's current tiny block is marked too, as gcMarkTinyAllocs
 * greys it.  The bytes marked are the object sizes (elemsize; a whole
 * large span), as greyobject and scanobject count them.
 * Go 1.13: src/runtime/mgcmark.go (gcMarkTinyAllocs, greyobject,
 *          gcDrain's bytesMarked), mgc.go (gcMark).
 * Differs from Go: no tracing; reachability is the caller's drops.
 * Locking: the world is stopped (one thread drives a GC-mode heap).
 */
#include "mbitmap.h"
#include "mheap.h"
#include "tiny.h"

/* tiny_word_marks: of the allocated slots in word w of a tiny-class
 * span with block marks t, keep a block only while one of its objects
 * is not dropped (a 16-byte object keeps its plain mark). */
static uint64_t
tiny_word_marks(const mspan *s, uint32_t *t, uint64_t w, uint64_t marks)
{
    uint64_t todo = marks;
    while (todo != 0) {
        unsigned b = ctz64(todo);
        todo &= todo - 1;
        uint64_t i = w * 64 + b;
        tiny_block blk = tiny_block_at(s, t, i);
        if (tiny_marks_load(blk) != 0 && tiny_live(blk) == 0) {
            marks &= ~((uint64_t)1 << b);
        }
    }
    return marks;
}

/* mark_small marks small span s; returns the objects marked. */
static uint64_t
mark_small(mspan *s)
{
    uint32_t *t = tiny_table_of(s);
    uint64_t n = 0;
    for (uint64_t w = 0; w * 64 < s->nelems; w++) {
        uint64_t alloc = mspan_allocated_word(s, w);
        uint64_t marks = alloc & ~load64_le(s->freed_bits + w * 8);
        if (t != NULL && marks != 0) {
            marks = tiny_word_marks(s, t, w, marks);
        }
        store64_le(s->mark_bits + w * 8, marks);
        n += (uint64_t)__builtin_popcountll(marks);
    }
    return n;
}

/* mark_tiny_allocs is gcMarkTinyAllocs: each P's current tiny block is
 * greyed whether or not anything in it is still wanted. */
static uint64_t
mark_tiny_allocs(mheap *h)
{
    uint64_t bytes = 0;
    for (int p = 0; p < h->nprocs; p++) {
        mcache *c = h->caches[p];
        if (c->tiny == 0) {
            continue;
        }
        mspan *s = c->tiny_span;
        uint64_t i = mspan_obj_index(s, c->tiny);
        if (!bit_get(s->mark_bits, i)) {
            bit_set(s->mark_bits, i);
            s->marked = true;
            bytes += s->elemsize;
        }
    }
    return bytes;
}

uint64_t
gc_mark(mheap *h)
{
    uint64_t bytes = 0;
    for (mspan *s = h->allspans; s != NULL; s = s->allnext) {
        if (s->state != MSPAN_IN_USE) {
            continue;
        }
        if (span_class_sizeclass(s->spanclass) == 0) {
            s->marked = !s->dropped;
            bytes += s->marked ? s->elemsize : 0;
            continue;
        }
        uint64_t n = mark_small(s);
        s->marked = n > 0;
        bytes += n * s->elemsize;
    }
    return bytes + mark_tiny_allocs(h);
}
