/* Trace replay: a whole allocation trace applied in C.
 *
 * A trace is a column store of alloc/free ops on object ids.  ga_replay
 * walks it with no per-op call back into the caller, keeps the id ->
 * address table, and samples the heap counters every N ops, so that a
 * ten-million-op experiment costs ten million facade calls and nothing
 * more.  A bad op (free of a dead id, alloc of a live one) stops the
 * replay before it is applied.
 * Go 1.13: none; the ops are mallocgc and goalloc's free (a drop on a
 *          GC-mode heap).
 * Differs from Go: n/a.
 * Locking: as the facade calls it makes; the binding runs it without the
 *          GIL and keeps other calls off the heap meanwhile.
 */
#include "goalloc.h"
#include "mheap.h"

static bool
sample_due(uint64_t k, size_t stop, uint64_t every, bool last)
{
    return (every > 0 && (k + 1) % every == 0) || (last && k + 1 == stop);
}

static int
replay_op(ga_heap *h, const ga_trace_view *t, size_t k, ga_replay_state *st,
          ga_status *status)
{
    uint64_t id = t->id[k];
    if (id >= st->nids) {
        return GA_REPLAY_ID_RANGE;
    }
    if (t->kind[k] == GA_OP_ALLOC) {
        if (st->live[id]) {
            return GA_REPLAY_LIVE_ID;
        }
        ga_addr a;
        *status = ga_malloc(h, t->p[k], t->size[k], t->noscan[k] != 0, &a);
        if (*status != GA_OK) {
            return GA_REPLAY_ALLOC_FAILED;
        }
        st->addr_of[id] = a;
        st->live[id] = 1;
        return GA_REPLAY_OK;
    }
    if (t->kind[k] != GA_OP_FREE) {
        return GA_REPLAY_BAD_KIND;
    }
    if (!st->live[id]) {
        return GA_REPLAY_UNKNOWN_ID;
    }
    /* A GC-mode heap frees nothing when asked: the trace's free is the
     * moment the program dropped the object (design §14.1). */
    ga_addr a = st->addr_of[id];
    *status = !h->gc.enabled     ? ga_free_p(h, GA_ALL_PS, a)
              : a == h->zerobase ? GA_OK
                                 : ga_drop(h, a);
    if (*status != GA_OK) {
        return GA_REPLAY_FREE_FAILED;
    }
    st->live[id] = 0;
    return GA_REPLAY_OK;
}

void
ga_replay(ga_heap *h, const ga_trace_view *t, size_t start, size_t stop,
          uint64_t sample_every, bool sample_last, ga_replay_state *st,
          ga_heap_counters *samples, uint64_t *sample_ops, size_t sample_cap,
          ga_replay_result *res)
{
    res->reason = GA_REPLAY_OK;
    res->status = GA_OK;
    res->nsamples = 0;
    size_t k = start;
    for (; k < stop; k++) {
        int reason = replay_op(h, t, k, st, &res->status);
        if (reason != GA_REPLAY_OK) {
            res->reason = reason;
            break;
        }
        if (sample_due(k, stop, sample_every, sample_last) &&
            res->nsamples < sample_cap) {
            ga_heap_counters_get(h, &samples[res->nsamples]);
            sample_ops[res->nsamples] = k;
            res->nsamples++;
        }
    }
    res->next = k;
}
