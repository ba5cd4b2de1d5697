/* glibcmalloc: glibc's own malloc, preloaded (benchmarks/programs.py).
 * Debian's redis-server is linked with jemalloc; preloading this puts it
 * back on glibc's allocator, so that the "glibc" column means glibc for
 * redis too.  Every call goes straight to glibc's second name for it
 * (__libc_malloc, ...); malloc_usable_size to libc.so.6's own. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stddef.h>

void *__libc_malloc(size_t n);
void *__libc_calloc(size_t k, size_t n);
void *__libc_realloc(void *p, size_t n);
void __libc_free(void *p);
void *__libc_memalign(size_t a, size_t n);
void *__libc_valloc(size_t n);
void *__libc_pvalloc(size_t n);

void *
malloc(size_t n)
{
    return __libc_malloc(n);
}
void *
calloc(size_t k, size_t n)
{
    return __libc_calloc(k, n);
}
void *
realloc(void *p, size_t n)
{
    return __libc_realloc(p, n);
}
void
free(void *p)
{
    __libc_free(p);
}
void *
memalign(size_t a, size_t n)
{
    return __libc_memalign(a, n);
}
void *
aligned_alloc(size_t a, size_t n)
{
    return __libc_memalign(a, n);
}
void *
valloc(size_t n)
{
    return __libc_valloc(n);
}
void *
pvalloc(size_t n)
{
    return __libc_pvalloc(n);
}

int
posix_memalign(void **out, size_t a, size_t n)
{
    if (a % sizeof(void *) != 0 || (a & (a - 1)) != 0 || a == 0) {
        return EINVAL;
    }
    void *p = __libc_memalign(a, n);
    if (p == NULL) {
        return ENOMEM;
    }
    *out = p;
    return 0;
}

size_t
malloc_usable_size(void *p)
{
    static size_t (*real)(void *);
    if (real == NULL) {
        void *libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
        real = (size_t(*)(void *))dlsym(libc, "malloc_usable_size");
    }
    return real(p);
}
