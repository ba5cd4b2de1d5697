/* Internal declarations of the files that have no header of their own.
 * See malloc.c for the overview.
 *
 * Each concept with a header (mheap.h, mcentral.h, ...) declares its own
 * functions; the files below are the facade's (mstats.c) or the
 * invariant walkers' (check_pages.c, check.c), and what they lend the
 * other files is declared here, grouped by the file that defines it
 * (mimalloc's internal.h).  The ga_ prefix marks goalloc.h's facade
 * alone; nothing here has it.
 * Go 1.13: none.
 * Differs from Go: n/a.
 * Locking: as each declaration says.
 */
#ifndef GA_INTERNAL_H
#define GA_INTERNAL_H

#include "goalloc.h"
#include "mheap.h"

/* ---- mstats.c ------------------------------------------------------ */

/* mheap_read_mem_stats_locked is ReadMemStats under the heap lock, with
 * no other call on the heap running (the mcaches' counters are read). */
void mheap_read_mem_stats_locked(mheap *h, ga_mem_stats *out);

/* mheap_requested_live_locked: bytes callers asked for, over live
 * objects (from the per-P and per-mcentral counters); as above. */
uint64_t mheap_requested_live_locked(mheap *h);

/* ---- check_pages.c ------------------------------------------------- */

/* mheap_check_pages walks the page heap's invariants (what holds under
 * the heap lock alone, whatever the Ps do); false with a message naming
 * the first broken one.  The caller holds the heap lock. */
bool mheap_check_pages(mheap *h, char *msg, size_t msglen);

/* mheap_debug_check_locked: at GA_DEBUG >= 2 (throw.h), the page heap's
 * invariants after `what` (a phrase: "mheap_alloc"); a broken one throws
 * with its name.  Nothing in other builds.  The caller holds the heap
 * lock. */
#if GA_DEBUG >= 2
void mheap_debug_check_locked(mheap *h, const char *what);
#else
static inline void
mheap_debug_check_locked(mheap *h, const char *what)
{
    (void)h;
    (void)what;
}
#endif

/* ---- free.c ---------------------------------------------------------- */

/* classify_locked finds what addr is: a large object's span (*large), a
 * small span holding it between its base and limit (*small), or the
 * status of an address that is neither.  Inside a free span, a
 * page-aligned address whose large object was freed (and whose page was
 * not handed out since) is a double free.  The heap lock is held. */
ga_status classify_locked(mheap *h, ga_addr addr, mspan **large,
                          mspan **small);
/* dead_slot_status: the status of freeing (or dropping) offset off of
 * slot i, which is not allocated: a double free where an object was
 * handed out (a tiny object started there), else not an object. */
ga_status dead_slot_status(const mspan *s, uint64_t i, uint64_t off);

/* ---- check.c ------------------------------------------------------- */

/* mheap_check walks every invariant that applies (ga_verify): the page
 * heap's, then the object layer's.  The caller holds the heap lock and
 * runs alone on the heap. */
bool mheap_check(mheap *h, char *msg, size_t msglen);

#endif
