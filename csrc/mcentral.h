/* Central free lists.  See malloc.c for the overview.
 *
 * An mcentral owns, for one span class, the in-use spans that may have a
 * free slot (nonempty) and the spans that are full or cached in an
 * mcache (empty).  mallocinit creates all 134 of them, empty.
 * Go 1.13: src/runtime/mcentral.go (mcentral, init).
 * Differs from Go: nothing yet.
 * Locking: c->lock guards both lists and nmalloc.
 */
#ifndef GA_MCENTRAL_H
#define GA_MCENTRAL_H

#include <pthread.h>

#include "ga.h"
#include "mspan.h"

typedef struct mcentral {
    pthread_mutex_t lock;
    span_class spanclass;
    mspan_list nonempty; /* spans with a free slot (or thought to) */
    mspan_list empty;    /* full spans, and spans cached in an mcache */
    uint64_t nmalloc;    /* objects handed out, counted optimistically */
} mcentral;

void mcentral_init(mcentral *c, span_class spc);
void mcentral_destroy(mcentral *c);

#endif
