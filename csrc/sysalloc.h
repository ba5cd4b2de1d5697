/* Where the heap's address space comes from: arena hints and sysAlloc.
 * See malloc.c for the overview.
 *
 * mallocinit lays out the arena hints, Go's guesses of where the heap
 * should grow: an up-hint tries [addr, addr+n) and moves up, a down-hint
 * tries [addr-n, addr) and moves down; a hint whose reservation lands
 * elsewhere is discarded for good.  When every hint fails, the OS picks
 * an aligned region and two new hints extend it down and up.  32-bit
 * ports reserve a large first region (and room for every heapArena) up
 * front and grow into it while it lasts.
 * Go 1.13: src/runtime/malloc.go (arenaHint, mallocinit's hints,
 *          (*mheap).sysAlloc).
 * Differs from Go: a failed growth puts back the hints it discarded
 *          (rejected calls leave the heap unchanged), also when the OS
 *          reserves a range but will not back it, where Go throws
 *          "runtime: out of memory"; growth is refused when the arenas'
 *          metadata cannot be had (arena.h).
 * Locking: the caller holds the heap lock.
 */
#ifndef GA_SYSALLOC_H
#define GA_SYSALLOC_H

#include "ga.h"

struct mheap;

typedef struct arena_hint {
    ga_addr addr;
    bool down;
    struct arena_hint *next;
} arena_hint;

/* arena_init_hints lays out mallocinit's hints for the heap's platform
 * (on 32-bit ports after reserving the first regions).  False when the
 * process is out of memory for them. */
bool arena_init_hints(struct mheap *h);

/* mheap_sys_alloc reserves and maps at least n bytes of heap in whole
 * arenas and creates their metadata (Go's (*mheap).sysAlloc).  Returns 0
 * when the address space cannot be had; then nothing has changed. */
ga_addr mheap_sys_alloc(struct mheap *h, uint64_t n, uint64_t *size);

#endif
