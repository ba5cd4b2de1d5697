/* Central free lists.  See mcentral.h and malloc.c for the overview.
 *
 * Go 1.13: src/runtime/mcentral.go ((*mcentral).init).
 * Differs from Go: nothing.
 * Locking: c->lock guards the lists.
 */
#include "mcentral.h"

void
mcentral_init(mcentral *c, span_class spc)
{
    pthread_mutex_init(&c->lock, NULL);
    c->spanclass = spc;
    mspan_list_init(&c->nonempty);
    mspan_list_init(&c->empty);
    c->nmalloc = 0;
}

void
mcentral_destroy(mcentral *c)
{
    pthread_mutex_destroy(&c->lock);
}
