/* gomalloc's C allocation interface: malloc, free, calloc, realloc,
 * reallocarray, memalign, posix_memalign, aligned_alloc, valloc, pvalloc,
 * malloc_usable_size, malloc_trim, mallopt.  See gomalloc.h for the
 * overview.
 *
 * Sizes: a request of n bytes is mallocgc(n) of a scan object: C memory
 * may hold pointers, and it keeps the tiny allocator (noscan objects
 * under 16 bytes, packed at 1-, 2- or 4-byte alignment) out of malloc.
 * Every Go 1.13 size class above 8 bytes is a multiple of 16 and spans
 * start on 8 KiB pages, so every block of more than 8 bytes is 16-byte
 * aligned (max_align_t) and the 8-byte class holds nothing that needs
 * more than 8.  malloc(0) is malloc(1): a unique pointer, as glibc's
 * (mallocgc's zerobase is one shared address).
 * Alignment beyond 16 (memalign and friends), for a power of two a:
 *   a <= 8 KiB, size <= 32 KiB: the smallest size class of at least
 *     round_up(size, a) bytes whose size is a multiple of a (there is
 *     always one: the classes include every power of two up to 32 KiB);
 *     its slots are then all a-aligned.
 *   a <= 8 KiB otherwise: a large object, which starts on a page.
 *   a > 8 KiB: a large object of size + a - 8 KiB bytes, and the first
 *     a-aligned address in it, recorded in a table (runtime.c) that
 *     free, realloc and malloc_usable_size consult when the core says
 *     the address starts no object.
 * realloc keeps the block when the new size fits its slot and is in the
 * same size class (a large object: fits its pages and uses more than
 * half of them); else it moves it.  realloc(p, 0) frees p and returns
 * NULL, as glibc does.  malloc_usable_size is the slot's size.
 * Errors as glibc: ENOMEM for sizes the heap cannot give (calloc's and
 * reallocarray's overflow included), EINVAL for bad alignments; errno is
 * otherwise left as it was (the core's mmap and madvise may set it).
 * A pointer goalloc did not hand out, one inside a block, or one freed
 * already is fatal: a message naming it, then abort().
 * Go 1.13: mallocgc (malloc.go); Go has no free, realloc or alignment.
 * Differs from Go: no zeroing but calloc's (cmalloc.c); explicit free.
 * Locking: each call runs as the thread's P (gm_acquire).
 */
#define _GNU_SOURCE
#include "gomalloc.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* glibc's <malloc.h> declares these; csrc/malloc.h, the core's, shadows
 * it on the include path. */
size_t malloc_usable_size(void *ptr);
void *memalign(size_t a, size_t n);
void *pvalloc(size_t n);
int malloc_trim(size_t pad);
int mallopt(int param, int value);

#define GM_PAGE 8192
#define GM_SMALL_MAX 32768
#define GM_OS_PAGE 4096

/* ---- allocation ------------------------------------------------------ */

static GA_NOINLINE void *
alloc_failed(ga_status st)
{
    if (st == GA_EPOISONED) {
        gm_fatal("fatal error", ga_poisoned(gm.h), NULL);
    }
    errno = ENOMEM; /* GA_ENOMEM, GA_ETOOLARGE */
    return NULL;
}

static inline void *
gm_alloc(size_t n, bool zero)
{
    ga_heap *h = gm_heap();
    if (n == 0) {
        n = 1;
    }
    int saved = errno;
    bool locked;
    int p = gm_acquire(&locked);
    gm_tls_guard++;
    ga_addr a = 0;
    ga_status st = zero ? ga_calloc(h, p, n, false, &a)
                        : ga_malloc(h, p, n, false, &a);
    gm_tls_guard--;
    gm_release(p, locked);
    if (GM_LIKELY(st == GA_OK)) {
        errno = saved;
        return (void *)(uintptr_t)a;
    }
    return alloc_failed(st);
}

GM_EXPORT void *
malloc(size_t n)
{
    if (GM_UNLIKELY(gm_tls_guard)) {
        return __libc_malloc(n);
    }
    return gm_alloc(n, false);
}

GM_EXPORT void *
calloc(size_t k, size_t n)
{
    if (GM_UNLIKELY(gm_tls_guard)) {
        return __libc_calloc(k, n);
    }
    size_t total;
    if (__builtin_mul_overflow(k, n, &total)) {
        errno = ENOMEM;
        return NULL;
    }
    return gm_alloc(total, true);
}

/* ---- free ------------------------------------------------------------ */

/* free_addr frees the block at a, handed out as ptr (what names it in
 * a message); what is the calling function. */
static void
free_addr(const char *what, void *ptr)
{
    if (GM_UNLIKELY(!gm_ready())) {
        /* no heap yet: the pointer cannot be goalloc's */
        gm_bad_pointer(what, GA_EFOREIGN, ptr);
    }
    int saved = errno;
    bool locked;
    int p = gm_acquire(&locked);
    gm_tls_guard++;
    ga_status st = ga_free_p(gm.h, p, (ga_addr)(uintptr_t)ptr);
    gm_tls_guard--;
    gm_release(p, locked);
    if (GM_UNLIKELY(st != GA_OK)) {
        uintptr_t base = st == GA_ENOTOBJECT ? gm_aligned_take((uintptr_t)ptr)
                                             : 0;
        if (base == 0) {
            gm_bad_pointer(what, st, ptr);
        }
        free_addr(what, (void *)base);
    }
    errno = saved;
}

GM_EXPORT void
free(void *ptr)
{
    if (ptr == NULL) {
        return;
    }
    if (GM_UNLIKELY(gm_tls_guard)) {
        __libc_free(ptr);
        return;
    }
    free_addr("free()", ptr);
}

/* ---- sizes and realloc ----------------------------------------------- */

/* usable: the bytes of ptr's block from ptr on; fatal if ptr is no
 * block's start. */
static uint64_t
usable(const char *what, const void *ptr)
{
    if (GM_UNLIKELY(!gm_ready())) {
        gm_bad_pointer(what, GA_EFOREIGN, ptr);
    }
    uint64_t u = 0;
    ga_status st = ga_usable_size(gm.h, (ga_addr)(uintptr_t)ptr, &u);
    if (GM_UNLIKELY(st != GA_OK)) {
        uintptr_t base = st == GA_ENOTOBJECT ? gm_aligned_find((uintptr_t)ptr)
                                             : 0;
        if (base == 0) {
            gm_bad_pointer(what, st, ptr);
        }
        ga_status st2 = ga_usable_size(gm.h, base, &u);
        if (st2 != GA_OK) {
            gm_bad_pointer(what, st2, (const void *)base);
        }
        u -= (uintptr_t)ptr - base;
    }
    return u;
}

GM_EXPORT size_t
malloc_usable_size(void *ptr)
{
    if (ptr == NULL || GM_UNLIKELY(gm_tls_guard)) {
        return 0; /* glibc's blocks are the core's, which never asks */
    }
    return (size_t)usable("malloc_usable_size()", ptr);
}

/* fits_in_place: a block of u usable bytes keeps n bytes where it is. */
static bool
fits_in_place(size_t n, uint64_t u)
{
    if (n > u) {
        return false;
    }
    if (u <= GM_SMALL_MAX) {
        return ga_size_to_class(n) == ga_size_to_class(u);
    }
    return n > GM_SMALL_MAX && n > u / 2;
}

GM_EXPORT void *
realloc(void *ptr, size_t n)
{
    if (GM_UNLIKELY(gm_tls_guard)) {
        return __libc_realloc(ptr, n);
    }
    if (ptr == NULL) {
        return gm_alloc(n, false);
    }
    if (n == 0) {
        free_addr("realloc()", ptr);
        return NULL;
    }
    uint64_t u = usable("realloc()", ptr);
    if (fits_in_place(n, u)) {
        return ptr;
    }
    void *q = gm_alloc(n, false);
    if (q == NULL) {
        return NULL;
    }
    memcpy(q, ptr, (size_t)(n < u ? n : u));
    free_addr("realloc()", ptr);
    return q;
}

GM_EXPORT void *
reallocarray(void *ptr, size_t k, size_t n)
{
    size_t total;
    if (__builtin_mul_overflow(k, n, &total)) {
        errno = ENOMEM;
        return NULL;
    }
    return realloc(ptr, total);
}

/* ---- alignment ------------------------------------------------------- */

static bool
pow2(size_t a)
{
    return a != 0 && (a & (a - 1)) == 0;
}

/* aligned_class: the smallest size class of at least m bytes whose size
 * is a multiple of a (a <= 8 KiB, m <= 32 KiB). */
static uint64_t
aligned_class(size_t m, size_t a)
{
    for (int c = ga_size_to_class(m); c < NUM_SIZE_CLASSES; c++) {
        if (gm.class_size[c] % a == 0) {
            return gm.class_size[c];
        }
    }
    return GM_SMALL_MAX; /* not reached: 32 KiB is a class */
}

/* gm_aligned: n bytes at a multiple of a, a power of two. */
static void *
gm_aligned(size_t a, size_t n)
{
    if (a <= 16) {
        /* the 8-byte class is only 8-aligned */
        return gm_alloc(a == 16 && n <= 8 ? 16 : n, false);
    }
    gm_heap();
    if (n == 0) {
        n = 1;
    }
    size_t m;
    if (__builtin_add_overflow(n, a - 1, &m)) {
        errno = ENOMEM;
        return NULL;
    }
    m &= ~(a - 1);
    if (a <= GM_PAGE) {
        return gm_alloc(m <= GM_SMALL_MAX ? aligned_class(m, a) : m, false);
    }
    size_t big;
    if (__builtin_add_overflow(n, a - GM_PAGE, &big)) {
        errno = ENOMEM;
        return NULL;
    }
    void *base = gm_alloc(big > GM_SMALL_MAX ? big : GM_SMALL_MAX + 1, false);
    if (base == NULL) {
        return NULL;
    }
    uintptr_t q = ((uintptr_t)base + a - 1) & ~(uintptr_t)(a - 1);
    if (q != (uintptr_t)base && !gm_aligned_put(q, (uintptr_t)base)) {
        free_addr("memalign()", base);
        errno = ENOMEM;
        return NULL;
    }
    return (void *)q;
}

GM_EXPORT void *
memalign(size_t a, size_t n)
{
    if (GM_UNLIKELY(gm_tls_guard)) {
        return __libc_memalign(a, n);
    }
    if (a > SIZE_MAX / 2 + 1) {
        errno = EINVAL;
        return NULL;
    }
    if (!pow2(a)) { /* glibc rounds it up */
        size_t b = 1;
        while (b < a) {
            b <<= 1;
        }
        a = b;
    }
    return gm_aligned(a, n);
}

GM_EXPORT void *
aligned_alloc(size_t a, size_t n)
{
    if (!gm_tls_guard && gm_heap() != NULL && gm.aligned_alloc_checks &&
        !pow2(a)) {
        errno = EINVAL;
        return NULL;
    }
    return memalign(a, n);
}

GM_EXPORT int
posix_memalign(void **out, size_t a, size_t n)
{
    if (a % sizeof(void *) != 0 || !pow2(a / sizeof(void *))) {
        return EINVAL;
    }
    int saved = errno;
    void *p = gm_tls_guard ? __libc_memalign(a, n) : gm_aligned(a, n);
    errno = saved;
    if (p == NULL) {
        return ENOMEM;
    }
    *out = p;
    return 0;
}

GM_EXPORT void *
valloc(size_t n)
{
    if (GM_UNLIKELY(gm_tls_guard)) {
        return __libc_valloc(n);
    }
    return gm_aligned(GM_OS_PAGE, n);
}

GM_EXPORT void *
pvalloc(size_t n)
{
    if (GM_UNLIKELY(gm_tls_guard)) {
        return __libc_pvalloc(n);
    }
    size_t m;
    if (__builtin_add_overflow(n, GM_OS_PAGE - 1, &m)) {
        errno = ENOMEM;
        return NULL;
    }
    return gm_aligned(GM_OS_PAGE, m & ~(size_t)(GM_OS_PAGE - 1));
}

/* ---- the rest of glibc's interface ----------------------------------- */

/* malloc_trim returns every free page to the OS (the scavenger's
 * scavengeAll, as debug.FreeOSMemory); 1 if it released any. */
GM_EXPORT int
malloc_trim(size_t pad)
{
    (void)pad;
    ga_heap *h = gm_heap();
    uint64_t released = 0;
    gm_stop_the_world();
    gm_tls_guard++;
    ga_status st = ga_scavenge(h, UINT64_MAX, &released);
    gm_tls_guard--;
    gm_start_the_world();
    return st == GA_OK && released > 0;
}

/* mallopt: glibc's tunables have no meaning here; accepted, ignored. */
GM_EXPORT int
mallopt(int param, int value)
{
    (void)param;
    (void)value;
    return 1;
}
