/* The scavenger: returning free pages to the OS.  See malloc.c.
 *
 * scavengeLocked walks the free spans from the highest address down,
 * first those that hold a whole huge page, then the rest, cuts what it
 * needs off the top of each span, releases it (madvise on the os
 * backing) and coalesces the released piece with released neighbours.
 * Synchronous scavenging (scavengeIfNeededLocked) gives back as much as
 * the heap just added to its RSS, when the retained heap would exceed the
 * goal: go1.13.8 when the heap grows (growAddSpan), go1.13.0 when an
 * allocation takes released memory (allocSpanLocked).
 * Go 1.13: src/runtime/mheap.go (scavengeLocked, scavengeSplit,
 *          scavengeIfNeededLocked, scavengeAll, (*mspan).scavenge),
 *          mgcscavenge.go (heapRetained, gcPaceScavenger's goal).
 * Differs from Go: there is no background scavenger and no GC; the goal
 *          is a heap option, by default the value the release has until
 *          the first GC completes (go1.13.8: 0; go1.13.0: next_gc + 10%
 *          from gcinit, 4,923,392 bytes with GOGC=100).
 * Locking: the caller holds the heap lock.
 */
#ifndef GA_SCAVENGE_H
#define GA_SCAVENGE_H

#include "mheap.h"

/* mheap_scavenge_locked releases at least nbytes (if that much free
 * memory is unreleased) and returns the bytes released. */
uint64_t mheap_scavenge_locked(mheap *h, uint64_t nbytes);
void mheap_scavenge_if_needed_locked(mheap *h, uint64_t size);

/* heap_retained = heap_sys - heap_released (an estimate of RSS). */
static inline uint64_t
heap_retained(const mheap *h)
{
    return h->stats.heap_sys - h->stats.heap_released;
}

#endif
