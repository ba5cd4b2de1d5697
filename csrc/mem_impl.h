/* The two OS-layer backends, as seen by mem.c.  See mem.h.
 *
 * mem_linux.c maps real memory; mem_sim.c simulates an address space.
 * Only mem.c calls these.
 * Go 1.13: src/runtime/mem_linux.go.
 * Differs from Go: see mem.h.
 * Locking: the caller holds the heap lock.
 */
#ifndef GA_MEM_IMPL_H
#define GA_MEM_IMPL_H

#include "mem.h"

void mem_os_init(mem_backend *m);
ga_addr mem_os_reserve(mem_backend *m, ga_addr v, uint64_t n);
bool mem_os_map(ga_addr v, uint64_t n);
void mem_os_unused(mem_backend *m, ga_addr v, uint64_t n);
void mem_os_unmap(ga_addr v, uint64_t n);
bool mem_os_block(ga_addr v, uint64_t n);
void mem_os_release_all(mem_backend *m);

ga_addr mem_sim_reserve(mem_backend *m, ga_addr v, uint64_t n);

#endif
