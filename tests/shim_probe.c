/*
 * shim_probe: calls every function the capture shim (csrc/tracehook/
 * gatrace.c) interposes with ordinary and edge-case arguments (alignments
 * that are not powers of two or not multiples of sizeof(void *), sizes
 * that overflow, realloc to 0, reallocarray and calloc overflows) and
 * prints what a program can observe: NULL or not, the alignment promised,
 * errno, posix_memalign's result and whether it wrote *memptr.
 * tests/test_capture.py runs it with and without the shim: the outputs
 * must be equal, because a captured program must behave as it does
 * without the shim.  Not a C unit test of csrc/ (those are tests/c/).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SENTINEL 4242

static size_t
pow2_at_least(size_t a)
{
    size_t p = 16;
    while (p < a && p != 0) {
        p <<= 1;
    }
    return p;
}

static void
show(const char *call, void *p, size_t align)
{
    int e = errno;
    printf("%-40s -> %s", call, p ? "ptr" : "NULL");
    if (p && align) {
        printf(" aligned(%zu)=%d", align, (uintptr_t)p % align == 0);
    }
    printf(" errno=%d\n", e == SENTINEL ? -1 : e);
}

int
main(void)
{
    char call[128];
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t aligns[] = {0,
                       1,
                       3,
                       8,
                       16,
                       24,
                       48,
                       64,
                       100,
                       4096,
                       65536,
                       ((size_t)1 << 63) + 1,
                       (size_t)1 << 63,
                       SIZE_MAX};
    size_t sizes[] = {0,
                      1,
                      100,
                      4097,
                      (size_t)PTRDIFF_MAX,
                      (size_t)PTRDIFF_MAX + 1,
                      SIZE_MAX - 4095,
                      SIZE_MAX};
    size_t na = sizeof aligns / sizeof *aligns;
    size_t ns = sizeof sizes / sizeof *sizes;
    for (size_t i = 0; i < na; i++) {
        for (size_t j = 0; j < ns; j++) {
            size_t a = aligns[i], n = sizes[j];
            void *p;
            errno = SENTINEL;
            p = aligned_alloc(a, n);
            snprintf(call, sizeof call, "aligned_alloc(%zu, %zu)", a, n);
            show(call, p, pow2_at_least(a));
            free(p);
            errno = SENTINEL;
            p = memalign(a, n);
            snprintf(call, sizeof call, "memalign(%zu, %zu)", a, n);
            show(call, p, pow2_at_least(a));
            free(p);
            void *q = (void *)0x1234;
            errno = SENTINEL;
            int rc = posix_memalign(&q, a, n);
            snprintf(call, sizeof call, "posix_memalign(%zu, %zu)", a, n);
            int e = errno;
            printf("%-40s -> rc=%d memptr=%s errno=%d", call, rc,
                   q == (void *)0x1234 ? "untouched"
                   : q                 ? "ptr"
                                       : "NULL",
                   e == SENTINEL ? -1 : e);
            if (rc == 0 && q) {
                printf(" aligned(%zu)=%d", a, (uintptr_t)q % a == 0);
                free(q);
            }
            printf("\n");
        }
    }
    for (size_t j = 0; j < ns; j++) {
        size_t n = sizes[j];
        void *p;
        errno = SENTINEL;
        p = malloc(n);
        snprintf(call, sizeof call, "malloc(%zu)", n);
        show(call, p, 16);
        free(p);
        errno = SENTINEL;
        p = valloc(n);
        snprintf(call, sizeof call, "valloc(%zu)", n);
        show(call, p, page);
        free(p);
        errno = SENTINEL;
        p = pvalloc(n);
        snprintf(call, sizeof call, "pvalloc(%zu)", n);
        show(call, p, page);
        if (p) {
            printf("  usable >= rounded: %d\n",
                   malloc_usable_size(p) >= ((n + page - 1) & ~(page - 1)));
        }
        free(p);
        for (size_t k = 0; k < ns; k++) {
            size_t m = sizes[k];
            errno = SENTINEL;
            p = calloc(n, m);
            snprintf(call, sizeof call, "calloc(%zu, %zu)", n, m);
            show(call, p, 16);
            free(p);
            /* reallocarray of NULL and of a live block */
            errno = SENTINEL;
            p = reallocarray(NULL, n, m);
            snprintf(call, sizeof call, "reallocarray(NULL, %zu, %zu)", n, m);
            show(call, p, 16);
            free(p);
            void *old = malloc(32);
            memset(old, 7, 32);
            errno = SENTINEL;
            p = reallocarray(old, n, m);
            snprintf(call, sizeof call, "reallocarray(p, %zu, %zu)", n, m);
            show(call, p, 16);
            if (p) {
                free(p);
            }
            else if (n != 0 && m != 0) {
                free(old); /* a failed reallocarray keeps the block */
            }
        }
        errno = SENTINEL;
        p = realloc(NULL, n);
        snprintf(call, sizeof call, "realloc(NULL, %zu)", n);
        show(call, p, 16);
        free(p);
        void *old = malloc(32);
        errno = SENTINEL;
        p = realloc(old, n);
        snprintf(call, sizeof call, "realloc(p, %zu)", n);
        show(call, p, 16);
        if (p) {
            free(p);
        }
        else if (n != 0) {
            free(old);
        }
    }
    void *p = malloc(10);
    errno = SENTINEL;
    free(p);
    show("free(p)", (void *)1, 0);
    errno = SENTINEL;
    free(NULL);
    show("free(NULL)", (void *)1, 0);
    return 0;
}
