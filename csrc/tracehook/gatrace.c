/*
 * gatrace: an LD_PRELOAD shim that records every malloc-family call of a
 * Linux program, for replay on goalloc (goalloc/capture.py reads the files).
 *
 *     GATRACE_OUT=/tmp/run LD_PRELOAD=/path/to/goalloc/_gatrace...so  CMD ...
 *
 * writes /tmp/run.<pid> for every process (forked children and exec'd
 * programs inherit the environment and get their own file; if the name is
 * taken, e.g. after an exec that kept the pid, the shim tries
 * <prefix>.<pid>.1, .2, ... and never overwrites a file).  With GATRACE_OUT
 * unset the shim only passes the calls through to glibc.
 *
 * This file is NOT part of the allocator core (the .c files directly in
 * csrc/) and is not held to the core's "no mutable globals" rule: an
 * interposer is process-global by nature.  Its global state is one record
 * buffer, its lock, the output file and a few flags, plus two thread-local
 * words (the reentrancy guard and the cached thread id).
 *
 * File format (little endian; x86-64 and aarch64 hosts are little endian,
 * and the header's fields show the byte order to a reader):
 *
 *   header, 32 bytes and the executable's path:
 *     0  char[8]  magic "GACAPT01"
 *     8  u32      header size (32 + the path's bytes, a multiple of 8)
 *    12  u32      record size (24)
 *    16  u32      pid of the process
 *    20  u32      its parent's pid
 *    24  u64      reserved, 0
 *    32  char[]   the executable (readlink of /proc/self/exe when the file
 *                 is created: after an exec, the new program), padded
 *                 with NULs to the header size; empty if unreadable.
 *                 Readers of the 32-byte header skip it.
 *   then records, 24 bytes each, in the order the events happened:
 *     0  u8       kind: 0 alloc, 1 free
 *     1  u8       function: 1 malloc, 2 calloc, 3 realloc, 4 posix_memalign,
 *                 5 aligned_alloc, 6 memalign, 7 valloc, 8 pvalloc,
 *                 9 reallocarray, 10 free
 *     2  u16      reserved, 0
 *     4  u32      thread id (gettid)
 *     8  u64      pointer (returned by an alloc, passed to a free)
 *    16  u64      size requested (alloc; calloc logs nmemb*size, pvalloc
 *                 the size rounded up to a page), 0 for free
 *
 * Events: a successful allocation logs alloc(ptr, size); a failed one
 * (NULL) logs nothing.  free(NULL) logs nothing.  realloc(p, n) logs
 * free(p) then alloc(new, n) (both, even when the block did not move);
 * realloc(NULL, n) is an alloc; realloc(p, 0) that frees and returns NULL
 * logs only free(p); a failed realloc logs nothing.
 *
 * Ordering: a free is logged before the block is handed back to glibc, an
 * allocation after glibc returns it, and records are appended under one
 * lock, so a pointer's free always precedes its reuse in the file.
 * realloc holds the lock across glibc's realloc for the same reason.
 *
 * Transparency: a program under the shim sees what it sees without it.
 * Each hook makes the call the program asked for, with its arguments, of
 * the host glibc's own function, and returns that function's result and
 * errno; the shim adds no argument checks of its own (glibc's differ
 * between releases: aligned_alloc(24, 100) returns memory on glibc 2.36,
 * where aligned_alloc is memalign, and fails with EINVAL from 2.38 on).
 * glibc exports most of its functions under a second name (__libc_malloc,
 * __libc_memalign, __libc_pvalloc, ...), which the hooks call directly;
 * aligned_alloc and posix_memalign have none, so the constructor looks
 * them up once with dlsym(RTLD_NEXT) (dlsym may allocate: that passes
 * straight through).  A call that comes before the constructor ran uses
 * __libc_memalign with glibc's own checks instead.  reallocarray is
 * glibc's: the overflow check (ENOMEM) and realloc.
 *
 * Nothing in a hook allocates: records
 * go into a static buffer written out with write(2) when it fills and at
 * exit (destructor); after the destructor every record is written at once.
 * The constructor creates the file (a forked child creates its own at its
 * first flush), so a process that allocates nothing leaves a header only.
 * A per-thread guard makes any allocation that happens while the thread is
 * inside a hook (a signal handler's, say) pass straight through unlogged,
 * so the shim never re-enters itself or waits on its own lock.
 * pthread_atfork handlers keep the lock consistent across fork(); the
 * child drops the parent's buffered records and opens its own file.
 *
 * Lost events: allocations made before the shim's constructor ran (the
 * dynamic loader's, other libraries' constructors) and frees of them are
 * not logged (the importer skips frees of unknown pointers); records still
 * buffered when a process ends by _exit(), a fatal signal or exec are
 * lost.  Statically linked and setuid programs ignore LD_PRELOAD.
 *
 * If the file cannot be created or written (a missing directory, a full
 * disk), the shim says so once on stderr and logs nothing more.
 *
 * Linux/glibc only: elsewhere this file compiles to nothing, so that the
 * package still builds.
 */
#ifdef __linux__
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define GA_EXPORT __attribute__((visibility("default")))
#define GA_TLS __thread __attribute__((tls_model("initial-exec")))

/* glibc's own entry points (GLIBC_2.2.5) */
extern void *__libc_malloc(size_t size);
extern void __libc_free(void *ptr);
extern void *__libc_calloc(size_t nmemb, size_t size);
extern void *__libc_realloc(void *ptr, size_t size);
extern void *__libc_memalign(size_t alignment, size_t size);
extern void *__libc_valloc(size_t size);
extern void *__libc_pvalloc(size_t size);

/* the host's aligned_alloc and posix_memalign (see "Transparency") */
typedef void *(*aligned_alloc_fn)(size_t alignment, size_t size);
typedef int (*posix_memalign_fn)(void **memptr, size_t alignment, size_t size);

enum { KIND_ALLOC = 0, KIND_FREE = 1 };
enum {
    FN_MALLOC = 1,
    FN_CALLOC,
    FN_REALLOC,
    FN_POSIX_MEMALIGN,
    FN_ALIGNED_ALLOC,
    FN_MEMALIGN,
    FN_VALLOC,
    FN_PVALLOC,
    FN_REALLOCARRAY,
    FN_FREE
};

#define HEADER_SIZE 32
#define RECORD_SIZE 24
#define BUF_RECORDS 5461 /* 128 KiB of records */
#define PATH_CAP 4096

/* state: the shim logs only once the constructor found GATRACE_OUT */
enum { ST_OFF = 0, ST_ON = 1, ST_FAILED = 2 };

static atomic_int g_state = ST_OFF;
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned char g_buf[BUF_RECORDS * RECORD_SIZE];
static size_t g_nbuf;       /* records in g_buf */
static int g_fd = -1;       /* output file */
static dev_t g_dev;         /* its identity, to notice a program that */
static ino_t g_ino;         /* closed or replaced our descriptor */
static int g_write_through; /* set by the destructor */
static char g_prefix[PATH_CAP];
static char g_path[PATH_CAP]; /* the file actually opened */
static GA_TLS int t_in_hook;
static GA_TLS uint32_t t_tid;
/* set by the constructor, before the program's threads exist */
static aligned_alloc_fn g_host_aligned_alloc;
static posix_memalign_fn g_host_posix_memalign;

static uint32_t
thread_id(void)
{
    if (t_tid == 0) {
        t_tid = (uint32_t)syscall(SYS_gettid);
    }
    return t_tid;
}

static void
put_u32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) {
        p[i] = (unsigned char)(v >> (8 * i));
    }
}

static void
put_u64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        p[i] = (unsigned char)(v >> (8 * i));
    }
}

/* Append the decimal digits of v to s[*n..], keeping room for a NUL. */
static int
append_uint(char *s, size_t *n, size_t cap, unsigned long v)
{
    char tmp[24];
    size_t k = 0;
    do {
        tmp[k++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    if (*n + k + 1 > cap) {
        return -1;
    }
    while (k > 0) {
        s[(*n)++] = tmp[--k];
    }
    s[*n] = '\0';
    return 0;
}

static int
write_all(int fd, const unsigned char *p, size_t len)
{
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -1;
        }
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

/* Create <prefix>.<pid>[.<n>] exclusively and write the header. */
static int
open_output(void)
{
    size_t plen = strlen(g_prefix);
    pid_t pid = getpid();
    for (unsigned long attempt = 0; attempt < 1000; attempt++) {
        size_t n = plen;
        memcpy(g_path, g_prefix, plen);
        g_path[n++] = '.';
        if (append_uint(g_path, &n, sizeof g_path, (unsigned long)pid) != 0) {
            return -1;
        }
        if (attempt > 0) {
            if (n + 2 > sizeof g_path) {
                return -1;
            }
            g_path[n++] = '.';
            if (append_uint(g_path, &n, sizeof g_path, attempt) != 0) {
                return -1;
            }
        }
        int fd = open(g_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd < 0) {
            if (errno == EEXIST) {
                continue;
            }
            return -1;
        }
        unsigned char h[HEADER_SIZE + PATH_CAP + 8];
        memset(h, 0, sizeof h);
        /* the importer names each trace after its program; readlink
         * neither allocates nor terminates, and the NULs pad */
        ssize_t exe = readlink("/proc/self/exe", (char *)h + HEADER_SIZE,
                               PATH_CAP);
        size_t hsize = HEADER_SIZE + (exe > 0 ? ((size_t)exe + 8) & ~7u : 0);
        memcpy(h, "GACAPT01", 8);
        put_u32(h + 8, (uint32_t)hsize);
        put_u32(h + 12, RECORD_SIZE);
        put_u32(h + 16, (uint32_t)pid);
        put_u32(h + 20, (uint32_t)getppid());
        struct stat st;
        if (write_all(fd, h, hsize) != 0 || fstat(fd, &st) != 0) {
            close(fd);
            return -1;
        }
        g_fd = fd;
        g_dev = st.st_dev;
        g_ino = st.st_ino;
        return 0;
    }
    return -1;
}

/* The program may have closed our descriptor (daemons close every fd) and
 * reused its number: check, and reopen our file for appending if so. */
static int
check_output(void)
{
    struct stat st;
    if (fstat(g_fd, &st) == 0 && st.st_dev == g_dev && st.st_ino == g_ino) {
        return 0;
    }
    int fd = open(g_path, O_WRONLY | O_APPEND | O_CLOEXEC);
    if (fd < 0) {
        return -1;
    }
    if (fstat(fd, &st) != 0 || st.st_dev != g_dev || st.st_ino != g_ino) {
        close(fd);
        return -1;
    }
    g_fd = fd;
    return 0;
}

/* One line on stderr when the capture file cannot be written. */
static void
report_failure(int err)
{
    static const char head[] = "gatrace: cannot write the capture file ";
    static const char tail[] = "; logging stopped\n";
    char msg[PATH_CAP + 128];
    size_t n = 0;
    memcpy(msg, head, sizeof head - 1);
    n += sizeof head - 1;
    const char *path = g_path[0] != '\0' ? g_path : g_prefix;
    size_t plen = strlen(path);
    memcpy(msg + n, path, plen);
    n += plen;
    memcpy(msg + n, " (errno ", 8);
    n += 8;
    (void)append_uint(msg, &n, sizeof msg, (unsigned long)err);
    msg[n++] = ')';
    memcpy(msg + n, tail, sizeof tail - 1);
    n += sizeof tail - 1;
    (void)write_all(STDERR_FILENO, (const unsigned char *)msg, n);
}

/* Write out the buffer.  Lock held. */
static void
flush_locked(void)
{
    if (g_nbuf == 0) {
        return;
    }
    int saved = errno;
    int ok = g_fd < 0 ? open_output() == 0 : check_output() == 0;
    if (ok) {
        ok = write_all(g_fd, g_buf, g_nbuf * RECORD_SIZE) == 0;
    }
    if (!ok) {
        /* a full disk, say: stop logging rather than fail every call */
        atomic_store(&g_state, ST_FAILED);
        report_failure(errno);
    }
    g_nbuf = 0;
    errno = saved;
}

/* Append one record.  Lock held. */
static void
record_locked(int kind, int fn, const void *ptr, size_t size)
{
    if (atomic_load_explicit(&g_state, memory_order_relaxed) != ST_ON) {
        return;
    }
    unsigned char *r = g_buf + g_nbuf * RECORD_SIZE;
    r[0] = (unsigned char)kind;
    r[1] = (unsigned char)fn;
    r[2] = 0;
    r[3] = 0;
    put_u32(r + 4, thread_id());
    put_u64(r + 8, (uint64_t)(uintptr_t)ptr);
    put_u64(r + 16, (uint64_t)size);
    g_nbuf++;
    if (g_nbuf == BUF_RECORDS || g_write_through) {
        flush_locked();
    }
}

/* Hook entry: 1 if this call is to be logged (then the guard is set and
 * must be cleared by leave()), 0 to pass straight through. */
static inline int
enter(void)
{
    if (atomic_load_explicit(&g_state, memory_order_relaxed) != ST_ON ||
        t_in_hook) {
        return 0;
    }
    t_in_hook = 1;
    return 1;
}

static inline void
leave(void)
{
    t_in_hook = 0;
}

static void
log_alloc(int fn, const void *ptr, size_t size)
{
    if (ptr == NULL) {
        return;
    }
    int saved = errno;
    pthread_mutex_lock(&g_lock);
    record_locked(KIND_ALLOC, fn, ptr, size);
    pthread_mutex_unlock(&g_lock);
    errno = saved;
}

/* ---- fork and process lifetime ----------------------------------------- */

static void
atfork_prepare(void)
{
    pthread_mutex_lock(&g_lock);
}

static void
atfork_parent(void)
{
    pthread_mutex_unlock(&g_lock);
}

static void
atfork_child(void)
{
    /* the buffered records are the parent's, which will write them */
    g_nbuf = 0;
    if (g_fd >= 0) {
        close(g_fd);
        g_fd = -1;
    }
    g_write_through = 0;
    t_tid = 0;
    t_in_hook = 0;
    pthread_mutex_unlock(&g_lock); /* taken by atfork_prepare */
}

/* Look up the host's aligned_alloc and posix_memalign (the next definitions
 * after this library's own). */
static void
find_host_functions(void)
{
    t_in_hook = 1; /* what dlsym allocates goes straight to glibc */
    void *a = dlsym(RTLD_NEXT, "aligned_alloc");
    void *pm = dlsym(RTLD_NEXT, "posix_memalign");
    t_in_hook = 0;
    if (a != NULL && a != (void *)aligned_alloc) {
        g_host_aligned_alloc = (aligned_alloc_fn)a;
    }
    if (pm != NULL && pm != (void *)posix_memalign) {
        g_host_posix_memalign = (posix_memalign_fn)pm;
    }
}

__attribute__((constructor)) static void
gatrace_init(void)
{
    find_host_functions(); /* logging or not, the calls go to the host's */
    const char *out = getenv("GATRACE_OUT");
    if (out == NULL || out[0] == '\0') {
        return;
    }
    size_t len = strlen(out);
    if (len + 48 > sizeof g_prefix) {
        return;
    }
    memcpy(g_prefix, out, len + 1);
    if (open_output() != 0) {
        report_failure(errno);
        return;
    }
    t_in_hook = 1;
    int rc = pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
    t_in_hook = 0;
    if (rc == 0) {
        atomic_store(&g_state, ST_ON);
    }
}

__attribute__((destructor)) static void
gatrace_fini(void)
{
    if (atomic_load(&g_state) != ST_ON) {
        return;
    }
    int saved = t_in_hook;
    t_in_hook = 1;
    pthread_mutex_lock(&g_lock);
    flush_locked();
    g_write_through = 1; /* later frees (other destructors, atexit) */
    pthread_mutex_unlock(&g_lock);
    t_in_hook = saved;
}

/* ---- the interposed functions ------------------------------------------ */

GA_EXPORT void *
malloc(size_t size)
{
    if (!enter()) {
        return __libc_malloc(size);
    }
    void *p = __libc_malloc(size);
    log_alloc(FN_MALLOC, p, size);
    leave();
    return p;
}

GA_EXPORT void
free(void *ptr)
{
    if (ptr == NULL) {
        return;
    }
    if (!enter()) {
        __libc_free(ptr);
        return;
    }
    int saved = errno;
    pthread_mutex_lock(&g_lock);
    record_locked(KIND_FREE, FN_FREE, ptr, 0);
    pthread_mutex_unlock(&g_lock);
    errno = saved;
    __libc_free(ptr);
    leave();
}

GA_EXPORT void *
calloc(size_t nmemb, size_t size)
{
    if (!enter()) {
        return __libc_calloc(nmemb, size);
    }
    void *p = __libc_calloc(nmemb, size);
    size_t total;
    if (!__builtin_mul_overflow(nmemb, size, &total)) {
        log_alloc(FN_CALLOC, p, total);
    }
    leave();
    return p;
}

static void *
logged_realloc(int fn, void *ptr, size_t size)
{
    if (ptr == NULL) {
        void *p = __libc_realloc(NULL, size);
        log_alloc(fn, p, size);
        return p;
    }
    pthread_mutex_lock(&g_lock);
    void *p = __libc_realloc(ptr, size);
    int saved = errno;
    if (p != NULL) {
        record_locked(KIND_FREE, fn, ptr, 0);
        record_locked(KIND_ALLOC, fn, p, size);
    }
    else if (size == 0) {
        record_locked(KIND_FREE, fn, ptr, 0); /* glibc freed it */
    }
    pthread_mutex_unlock(&g_lock);
    errno = saved;
    return p;
}

GA_EXPORT void *
realloc(void *ptr, size_t size)
{
    if (!enter()) {
        return __libc_realloc(ptr, size);
    }
    void *p = logged_realloc(FN_REALLOC, ptr, size);
    leave();
    return p;
}

GA_EXPORT void *
reallocarray(void *ptr, size_t nmemb, size_t size)
{
    size_t total;
    if (__builtin_mul_overflow(nmemb, size, &total)) {
        errno = ENOMEM;
        return NULL;
    }
    if (!enter()) {
        return __libc_realloc(ptr, total);
    }
    void *p = logged_realloc(FN_REALLOCARRAY, ptr, total);
    leave();
    return p;
}

static int
is_pow2(size_t a)
{
    return a != 0 && (a & (a - 1)) == 0;
}

/* glibc's posix_memalign, for a call before the constructor found the
 * host's: its argument checks, memalign, and ENOMEM for NULL (memalign's
 * errno stays set, as glibc leaves it). */
static int
early_posix_memalign(void **memptr, size_t alignment, size_t size)
{
    if (alignment % sizeof(void *) != 0 ||
        !is_pow2(alignment / sizeof(void *))) {
        return EINVAL;
    }
    void *p = __libc_memalign(alignment, size);
    if (p == NULL) {
        return ENOMEM;
    }
    *memptr = p;
    return 0;
}

GA_EXPORT int
posix_memalign(void **memptr, size_t alignment, size_t size)
{
    posix_memalign_fn host = g_host_posix_memalign;
    if (host == NULL) {
        host = early_posix_memalign;
    }
    if (!enter()) {
        return host(memptr, alignment, size);
    }
    int rc = host(memptr, alignment, size);
    if (rc == 0) {
        log_alloc(FN_POSIX_MEMALIGN, *memptr, size);
    }
    leave();
    return rc;
}

static void *
logged_memalign(int fn, size_t alignment, size_t size)
{
    if (!enter()) {
        return __libc_memalign(alignment, size);
    }
    void *p = __libc_memalign(alignment, size);
    log_alloc(fn, p, size);
    leave();
    return p;
}

/* Whatever the host's aligned_alloc does with an alignment that is not a
 * power of two (glibc up to 2.37 rounds it up, as memalign does; 2.38 on
 * fails with EINVAL), the program sees. */
GA_EXPORT void *
aligned_alloc(size_t alignment, size_t size)
{
    aligned_alloc_fn host = g_host_aligned_alloc;
    if (host == NULL) {
        host = __libc_memalign; /* before the constructor: glibc < 2.38's */
    }
    if (!enter()) {
        return host(alignment, size);
    }
    void *p = host(alignment, size);
    log_alloc(FN_ALIGNED_ALLOC, p, size);
    leave();
    return p;
}

GA_EXPORT void *
memalign(size_t alignment, size_t size)
{
    return logged_memalign(FN_MEMALIGN, alignment, size);
}

GA_EXPORT void *
valloc(size_t size)
{
    if (!enter()) {
        return __libc_valloc(size);
    }
    void *p = __libc_valloc(size);
    log_alloc(FN_VALLOC, p, size);
    leave();
    return p;
}

/* pvalloc logs the size rounded up to a whole page (one page for 0): what
 * it hands out. */
GA_EXPORT void *
pvalloc(size_t size)
{
    if (!enter()) {
        return __libc_pvalloc(size);
    }
    void *p = __libc_pvalloc(size);
    if (p != NULL) { /* then size + page - 1 did not overflow */
        size_t page = (size_t)getpagesize();
        size_t rounded = (size + page - 1) & ~(page - 1);
        log_alloc(FN_PVALLOC, p, rounded == 0 ? page : rounded);
    }
    leave();
    return p;
}

#else
typedef int gatrace_unsupported_platform; /* keep the unit non-empty */
#endif
