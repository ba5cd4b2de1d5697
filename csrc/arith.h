/* Integer helpers: rounding to powers of two and their logarithm.
 *
 * Go writes these inline (round(n, a), alignUp, sys.Len64); goalloc
 * names them once.  Internal: the facade (goalloc.h) does not include
 * this header, so its names stay out of its users' namespace.
 * Go 1.13: src/runtime/stubs.go (round), internal/sys (Len64).
 * Differs from Go: nothing.
 * Locking: pure functions.
 */
#ifndef GA_ARITH_H
#define GA_ARITH_H

#include "ga.h"

static inline ga_addr
round_up(ga_addr x, ga_addr align)
{
    return (x + align - 1) & ~(align - 1);
}

static inline ga_addr
round_down(ga_addr x, ga_addr align)
{
    return x & ~(align - 1);
}

static inline bool
is_pow2(ga_addr x)
{
    return x != 0 && (x & (x - 1)) == 0;
}

static inline unsigned
ilog2(ga_addr x)
{
    return x ? 63u - (unsigned)__builtin_clzll(x) : 0u;
}

#endif
