/* contract: malloc's observable contract, printed so that a run under
 * glibc and a run under goalloc's malloc replacement can be compared
 * line by line (tests/test_preload.py).  Nothing printed depends on the
 * allocator's choices (addresses, exact usable sizes): only what the C
 * standard and glibc promise: NULL or not, errno, alignment, that
 * usable sizes cover the request, contents kept by realloc, calloc's
 * zeroes, errno kept by calls that succeed.
 *
 *     contract            the checks
 *     contract where      print the address of malloc(100) (which heap)
 *     contract double     free a block twice (prints its address first)
 *     contract interior   free an address inside a block
 *     contract foreign    free an address on the stack
 *     contract realloc-foreign   realloc an address on the stack
 */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* a realloc that fails leaves the block valid, which gcc cannot know */
#pragma GCC diagnostic ignored "-Wuse-after-free"

static int failures;

#define SAY(...) printf(__VA_ARGS__)
#define EXPECT(cond, what)                                                    \
    do {                                                                      \
        if (!(cond)) {                                                        \
            printf("FAILED: %s (line %d)\n", what, __LINE__);                 \
            failures++;                                                       \
        }                                                                     \
    } while (0)

static const char *
err_name(int e)
{
    switch (e) {
    case 0:
        return "0";
    case ENOMEM:
        return "ENOMEM";
    case EINVAL:
        return "EINVAL";
    case EDOM:
        return "EDOM";
    default:
        return "other";
    }
}

static void
show(const char *what, void *p, int e)
{
    SAY("%-40s %s errno=%s\n", what, p ? "ptr" : "NULL", err_name(e));
}

/* a volatile size, so that the compiler cannot fold the calls away */
static volatile size_t vsize;

static size_t
sz(size_t n)
{
    vsize = n;
    return vsize;
}

static void
test_null_and_errno(void)
{
    void *p;
    errno = 0;
    p = malloc(sz(0));
    show("malloc(0)", p, errno);
    void *q = malloc(sz(0));
    EXPECT(p != q, "malloc(0) twice gives two pointers");
    free(p);
    free(q);
    errno = 0;
    p = malloc(sz(SIZE_MAX));
    show("malloc(SIZE_MAX)", p, errno);
    errno = 0;
    p = malloc(sz(PTRDIFF_MAX));
    show("malloc(PTRDIFF_MAX)", p, errno);
    errno = 0;
    p = calloc(sz(SIZE_MAX / 2), 3);
    show("calloc overflow", p, errno);
    errno = 0;
    p = calloc(sz(0), 0);
    show("calloc(0, 0)", p, errno);
    free(p);
    errno = 0;
    p = reallocarray(NULL, sz(SIZE_MAX / 4), 8);
    show("reallocarray overflow", p, errno);
    errno = 0;
    free(NULL);
    SAY("%-40s errno=%s\n", "free(NULL)", err_name(errno));
    errno = EDOM;
    p = malloc(sz(100));
    void *big = malloc(sz(5 << 20));
    free(p);
    free(big);
    SAY("%-40s errno=%s\n", "errno kept by malloc, free", err_name(errno));
    errno = 0;
    SAY("%-40s %zu\n", "malloc_usable_size(NULL)", malloc_usable_size(NULL));
}

static void
test_realloc(void)
{
    errno = 0;
    char *p = realloc(NULL, sz(10));
    show("realloc(NULL, 10)", p, errno);
    memcpy(p, "abcdefghi", 10);
    for (size_t n = 11; n < 300000; n = n * 3 / 2 + 1) {
        p = realloc(p, n);
        EXPECT(p != NULL && memcmp(p, "abcdefghi", 10) == 0,
               "realloc keeps the contents");
        if (p == NULL) {
            return;
        }
        memset(p + 10, 'x', n - 10);
    }
    p = realloc(p, sz(5));
    EXPECT(p != NULL && memcmp(p, "abcde", 5) == 0, "shrinking keeps them");
    errno = 0;
    char *q = realloc(p, sz(SIZE_MAX - 100));
    show("realloc(p, huge)", q, errno);
    EXPECT(memcmp(p, "abcde", 5) == 0, "a failed realloc keeps the block");
    errno = 0;
    q = realloc(p, sz(0));
    show("realloc(p, 0)", q, errno);
    free(q);
    p = realloc(NULL, sz(0));
    show("realloc(NULL, 0)", p, 0);
    free(p);
}

static void
test_alignment_and_sizes(void)
{
    int misaligned = 0, short_usable = 0, overlap = 0;
    enum { N = 3000 };
    static unsigned char *ps[N];
    for (int i = 0; i < N; i++) {
        size_t n = i < 2048 ? (size_t)i : (size_t)(i - 2047) * 4093;
        ps[i] = malloc(sz(n));
        size_t need = n > 8 ? 16 : 8; /* max_align_t where it fits */
        misaligned += ((uintptr_t)ps[i] & (need - 1)) != 0;
        size_t u = malloc_usable_size(ps[i]);
        short_usable += u < n;
        memset(ps[i], (unsigned char)i, u); /* all of it is ours */
    }
    for (int i = 0; i < N; i++) {
        size_t u = malloc_usable_size(ps[i]);
        for (size_t k = 0; k < u; k++) {
            overlap += ps[i][k] != (unsigned char)i;
        }
        free(ps[i]);
    }
    SAY("%-40s %d\n", "malloc misaligned for its size", misaligned);
    SAY("%-40s %d\n", "usable size short of the request", short_usable);
    SAY("%-40s %d\n", "blocks that overlap", overlap);
}

static void
test_calloc_zeroes(void)
{
    int dirty = 0;
    enum { N = 400 };
    void *ps[N];
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < N; i++) {
            size_t n = (size_t)(i * 97 % 70000) + 1;
            ps[i] = malloc(n);
            memset(ps[i], 0xA5, n);
        }
        for (int i = 0; i < N; i++) {
            free(ps[i]);
        }
        for (int i = 0; i < N; i++) {
            size_t n = (size_t)(i * 97 % 70000) + 1;
            unsigned char *c = calloc(1, n);
            for (size_t k = 0; k < n; k++) {
                dirty += c[k] != 0;
            }
            ps[i] = c;
        }
        for (int i = 0; i < N; i++) {
            free(ps[i]);
        }
    }
    SAY("%-40s %d\n", "calloc bytes not zero", dirty);
}

static void
test_aligned(void)
{
    int bad = 0;
    for (size_t a = 1; a <= (1 << 20); a <<= 1) {
        size_t sizes[] = {1, a / 2 + 1, a, 3 * a + 5, 100000};
        for (size_t k = 0; k < 5; k++) {
            size_t n = sizes[k];
            void *p = memalign(a, n);
            void *q = aligned_alloc(a, n);
            void *r = NULL;
            int st = a >= sizeof(void *) ? posix_memalign(&r, a, n) : 0;
            bad += p == NULL || ((uintptr_t)p & (a - 1)) != 0 ||
                   malloc_usable_size(p) < n;
            bad += q == NULL || ((uintptr_t)q & (a - 1)) != 0;
            if (a >= sizeof(void *)) {
                bad += st != 0 || ((uintptr_t)r & (a - 1)) != 0;
                memset(r, 1, n);
            }
            memset(p, 1, n);
            memset(q, 1, n);
            p = realloc(p, n + 100000); /* an aligned block moves */
            bad += p == NULL;
            free(p);
            free(q);
            free(r);
        }
    }
    SAY("%-40s %d\n", "aligned allocations wrong", bad);
    void *r = (void *)1;
    SAY("%-40s %d\n", "posix_memalign(align 3)", posix_memalign(&r, 3, 10));
    SAY("%-40s %d\n", "posix_memalign(align 0)", posix_memalign(&r, 0, 10));
    SAY("%-40s %d\n", "posix_memalign(align 24)", posix_memalign(&r, 24, 10));
    SAY("%-40s %d\n", "posix_memalign(64, huge)",
        posix_memalign(&r, 64, sz(SIZE_MAX - 1000)));
    SAY("%-40s %s\n", "posix_memalign leaves *out on failure",
        r == (void *)1 ? "yes" : "no");
    errno = EDOM;
    int st = posix_memalign(&r, 64, 10);
    SAY("%-40s %d errno=%s\n", "posix_memalign(64, 10)", st, err_name(errno));
    free(r);
    errno = 0;
    void *p = memalign(sz(48), 10);
    show("memalign(48, 10)", p, errno);
    SAY("%-40s %s\n", "  aligned to 64", ((uintptr_t)p & 63) ? "no" : "yes");
    free(p);
    errno = 0;
    p = memalign(sz(SIZE_MAX / 2 + 2), 10);
    show("memalign(SIZE_MAX/2+2, 10)", p, errno);
    errno = 0;
    p = aligned_alloc(sz(24), 100);
    show("aligned_alloc(24, 100)", p, errno);
    free(p);
    errno = 0;
    p = memalign(sz(4096), sz(SIZE_MAX - 100));
    show("memalign(4096, huge)", p, errno);
    long page = sysconf(_SC_PAGESIZE);
    p = valloc(sz(10));
    SAY("%-40s %s\n", "valloc page-aligned",
        p && ((uintptr_t)p & (uintptr_t)(page - 1)) == 0 ? "yes" : "no");
    free(p);
    p = pvalloc(sz(0));
    show("pvalloc(0)", p, 0);
    free(p);
    p = pvalloc(sz(10));
    SAY("%-40s %s\n", "pvalloc page-aligned, a page usable",
        p && ((uintptr_t)p & (uintptr_t)(page - 1)) == 0 &&
                malloc_usable_size(p) >= (size_t)page
            ? "yes"
            : "no");
    free(p);
    errno = 0;
    p = pvalloc(sz(SIZE_MAX - 10));
    show("pvalloc(huge)", p, errno);
}

static int
misuse(const char *how)
{
    char *p = malloc(100);
    char local[32];
    void *bad = p;
    if (strcmp(how, "interior") == 0) {
        bad = p + 16;
    }
    else if (strcmp(how, "foreign") == 0 ||
             strcmp(how, "realloc-foreign") == 0) {
        bad = local;
    }
    printf("%p\n", bad);
    fflush(stdout);
    if (strcmp(how, "double") == 0) {
        free(p);
    }
    if (strcmp(how, "realloc-foreign") == 0) {
        bad = realloc(bad, 10);
    }
    else {
        free(bad);
    }
    printf("survived %p\n", bad);
    return 0;
}

int
main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "where") == 0) {
        printf("%p\n", malloc(100));
        return 0;
    }
    if (argc > 1) {
        return misuse(argv[1]);
    }
    test_null_and_errno();
    test_realloc();
    test_alignment_and_sizes();
    test_calloc_zeroes();
    test_aligned();
    SAY("failures: %d\n", failures);
    return failures != 0;
}
