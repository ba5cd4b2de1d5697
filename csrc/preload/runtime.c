/* gomalloc's runtime: the heap's lazy creation, threads running as Ps,
 * fork, fatal errors, the table of over-aligned blocks and the exit
 * snapshot.  See gomalloc.h for the overview.
 *
 * Start-up: the first malloc-family call of the process (often glibc's
 * or the dynamic loader's, before main, and before constructors run in
 * an order nobody promises) makes the heap: it reads GOALLOC_PROCS and
 * GOALLOC_STATS, runs mallocinit (ga_heap_new) with the guard set, so
 * that what mallocinit allocates comes from glibc, then registers the
 * fork handlers, whose own bookkeeping may allocate from the new heap.
 * Another thread that arrives meanwhile waits.
 * This file is not part of the allocator core (the files in csrc/) and not
 * held to its "no mutable globals" rule: a malloc replacement is
 * process-global by nature.  Its state is gm (gomalloc.h) and two thread-local
 * words. Go 1.13: mallocinit's caller (schedinit), getproccount (os_linux.go),
 *          acquirep / an M taking an idle P (proc.go).
 * Differs from Go: threads are not scheduled onto Ps by a scheduler:
 *          each takes one, waiting when all are busy (gomalloc.h).
 * Locking: the P locks, taken all at once (in order) to stop the world.
 */
#define _GNU_SOURCE
#include "gomalloc.h"

#include <errno.h>
#include <gnu/libc-version.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/single_threaded.h>
#include <unistd.h>

gm_state gm = {.aligned_mu = PTHREAD_MUTEX_INITIALIZER};
__thread int gm_tls_p = -1;
__thread int gm_tls_guard;

#define GM_MAX_PROCS 1024

/* ---- messages -------------------------------------------------------- */

static void
put(const char *s)
{
    size_t n = strlen(s);
    while (n > 0) {
        ssize_t w = write(STDERR_FILENO, s, n);
        if (w <= 0) {
            return;
        }
        s += w;
        n -= (size_t)w;
    }
}

void
gm_fatal(const char *what, const char *why, const void *addr)
{
    gm_tls_guard++; /* whatever abort's path allocates goes to glibc */
    char hex[2 + 16 + 1] = "0x";
    uintptr_t a = (uintptr_t)addr;
    for (int i = 0; i < 16; i++) {
        hex[2 + i] = "0123456789abcdef"[(a >> (60 - 4 * i)) & 15];
    }
    hex[18] = '\0';
    put("goalloc: ");
    put(what);
    put(": ");
    put(why);
    if (addr != NULL) {
        put(" ");
        put(hex);
    }
    put("\n");
    abort();
}

void
gm_bad_pointer(const char *what, ga_status st, const void *addr)
{
    switch (st) {
    case GA_EDOUBLEFREE:
        gm_fatal(what, "double free detected", addr);
    case GA_EFOREIGN:
        gm_fatal(what, "invalid pointer (not from goalloc's heap)", addr);
    case GA_ENOTOBJECT:
        gm_fatal(what, "invalid pointer (not the start of a live object)",
                 addr);
    case GA_EPOISONED:
        gm_fatal("fatal error", ga_poisoned(gm.h), NULL);
    default:
        gm_fatal(what, ga_status_name(st), addr);
    }
}

/* ---- start-up -------------------------------------------------------- */

/* ncpu: the CPUs this process may run on, as Go's getproccount. */
static int
ncpu(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0) {
        return CPU_COUNT(&set);
    }
    return 1;
}

static int
env_procs(void)
{
    const char *s = getenv("GOALLOC_PROCS");
    if (s == NULL || *s == '\0') {
        return ncpu();
    }
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < 1 || v > GM_MAX_PROCS) {
        put("goalloc: GOALLOC_PROCS must be a number of Ps from 1 to 1024; "
            "using the number of CPUs\n");
        return ncpu();
    }
    return (int)v;
}

/* stats_path_writable says at start-up, without creating anything,
 * whether the snapshot can be written at exit (its directory, and the
 * file if it exists), so that a bad path is reported even by a program
 * that ends with _exit (the shell's exit does); one line if not. */
static bool
stats_path_writable(const char *path)
{
    char dir[sizeof gm.stats_path];
    strcpy(dir, path);
    char *slash = strrchr(dir, '/');
    if (slash == NULL) {
        strcpy(dir, ".");
    }
    else {
        slash[slash == dir] = '\0'; /* "/x" is in "/" */
    }
    int err = access(dir, W_OK | X_OK) != 0                        ? errno
              : access(path, F_OK) == 0 && access(path, W_OK) != 0 ? errno
                                                                   : 0;
    if (err != 0) {
        gm_stats_fail_line(path, err);
    }
    return err == 0;
}

/* env_stats reads GOALLOC_STATS (the snapshot's file; %p becomes the
 * pid) and GOALLOC_STATS_PID (only that process writes it). */
static void
env_stats(void)
{
    const char *s = getenv("GOALLOC_STATS");
    if (s == NULL || *s == '\0') {
        return;
    }
    if (strlen(s) >= sizeof gm.stats_path) {
        put("goalloc: GOALLOC_STATS is too long; no snapshot will be "
            "written\n");
        return;
    }
    strcpy(gm.stats_path, s);
    const char *pid = getenv("GOALLOC_STATS_PID");
    gm.stats_pid = pid != NULL ? atoi(pid) : 0;
    if (gm.stats_pid != 0 && gm.stats_pid != (int)getpid()) {
        return;
    }
    gm.stats = stats_path_writable(s);
}

static bool
glibc_at_least(int major, int minor)
{
    int a = 0, b = 0;
    return sscanf(gnu_get_libc_version(), "%d.%d", &a, &b) == 2 &&
           (a > major || (a == major && b >= minor));
}

static void gm_fork_prepare(void);
static void gm_fork_parent(void);
static void gm_fork_child(void);

/* make_heap runs mallocinit for the process's heap: Go's defaults, the
 * os backing and the malloc contract (zero_on_request). */
static void
make_heap(void)
{
    gm.procs = env_procs();
    env_stats();
    gm.aligned_alloc_checks = glibc_at_least(2, 38);
    for (int c = 0; c < NUM_SIZE_CLASSES; c++) {
        ga_size_class row;
        gm.class_size[c] = ga_size_class_get(c, &row) ? row.size : 0;
    }
    gm.ps = __libc_memalign(64, sizeof(gm_p) * (size_t)gm.procs);
    if (gm.ps == NULL) {
        gm_fatal("mallocinit", "out of memory for the Ps", NULL);
    }
    for (int p = 0; p < gm.procs; p++) {
        pthread_mutex_init(&gm.ps[p].mu, NULL);
    }
    ga_options o;
    ga_options_init(&o);
    o.backing = GA_BACKING_OS;
    o.procs = gm.procs;
    o.zero_on_request = true;
    ga_status st;
    char err[256];
    gm.h = ga_heap_new(&o, &st, err, sizeof err);
    if (gm.h == NULL) {
        gm_fatal("mallocinit", err, NULL);
    }
}

ga_heap *
gm_init(void)
{
    int expect = GM_UNINIT;
    if (__atomic_compare_exchange_n(&gm.state, &expect, GM_INITIALIZING, false,
                                    __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
        int saved = errno;
        gm_tls_guard++;
        make_heap();
        gm_tls_guard--;
        __atomic_store_n(&gm.state, GM_READY, __ATOMIC_RELEASE);
        /* may allocate, from the heap now ready */
        pthread_atfork(gm_fork_prepare, gm_fork_parent, gm_fork_child);
        errno = saved;
        return gm.h;
    }
    while (__atomic_load_n(&gm.state, __ATOMIC_ACQUIRE) != GM_READY) {
        sched_yield();
    }
    return gm.h;
}

/* ---- threads as Ps --------------------------------------------------- */

int
gm_acquire(bool *locked)
{
    int p = gm_tls_p;
    if (GM_UNLIKELY(p < 0)) {
        p = (int)(__atomic_fetch_add(&gm.next_p, 1, __ATOMIC_RELAXED) %
                  (unsigned)gm.procs);
        gm_tls_p = p;
    }
    if (__libc_single_threaded) {
        *locked = false;
        return p;
    }
    *locked = true;
    if (GM_LIKELY(pthread_mutex_trylock(&gm.ps[p].mu) == 0)) {
        return p;
    }
    /* busy: take an idle P and keep it, else wait for this one */
    for (int i = 1; i < gm.procs; i++) {
        int q = (p + i) % gm.procs;
        if (pthread_mutex_trylock(&gm.ps[q].mu) == 0) {
            gm_tls_p = q;
            return q;
        }
    }
    pthread_mutex_lock(&gm.ps[p].mu);
    return p;
}

void
gm_stop_the_world(void)
{
    for (int p = 0; p < gm.procs; p++) {
        pthread_mutex_lock(&gm.ps[p].mu);
    }
    pthread_mutex_lock(&gm.aligned_mu);
}

void
gm_start_the_world(void)
{
    pthread_mutex_unlock(&gm.aligned_mu);
    for (int p = gm.procs - 1; p >= 0; p--) {
        pthread_mutex_unlock(&gm.ps[p].mu);
    }
}

/* fork: the parent stops the world, so that no thread is inside the core
 * (whose heap and mcentral locks are then all free) when the child is
 * made; the child, whose only thread is the forking one, makes the locks
 * anew. */
static void
gm_fork_prepare(void)
{
    gm_stop_the_world();
}

static void
gm_fork_parent(void)
{
    gm_start_the_world();
}

static void
gm_fork_child(void)
{
    pthread_mutex_init(&gm.aligned_mu, NULL);
    for (int p = 0; p < gm.procs; p++) {
        pthread_mutex_init(&gm.ps[p].mu, NULL);
    }
}

/* ---- over-aligned blocks --------------------------------------------- */

#define GM_DELETED ((uintptr_t)1)

static size_t
slot_of(uintptr_t addr, size_t cap)
{
    /* over-aligned addresses: the low bits are zero */
    return (size_t)((addr >> 14) * 0x9E3779B97F4A7C15ULL >> 7) & (cap - 1);
}

/* aligned_grow rehashes into a table twice as big (or the first one);
 * the caller holds aligned_mu and the guard. */
static bool
aligned_grow(void)
{
    size_t cap = gm.aligned_cap ? 2 * gm.aligned_cap : 64;
    gm_aligned_entry *t = __libc_calloc(cap, sizeof *t);
    if (t == NULL) {
        return false;
    }
    size_t used = 0;
    for (size_t i = 0; i < gm.aligned_cap; i++) {
        gm_aligned_entry e = gm.aligned[i];
        if (e.addr > GM_DELETED) {
            size_t j = slot_of(e.addr, cap);
            while (t[j].addr != 0) {
                j = (j + 1) & (cap - 1);
            }
            t[j] = e;
            used++;
        }
    }
    __libc_free(gm.aligned);
    gm.aligned = t;
    gm.aligned_cap = cap;
    gm.aligned_used = used;
    return true;
}

/* aligned_slot: the entry of addr, or NULL; aligned_mu is held. */
static gm_aligned_entry *
aligned_slot(uintptr_t addr)
{
    if (gm.aligned_cap == 0) {
        return NULL;
    }
    for (size_t j = slot_of(addr, gm.aligned_cap);;
         j = (j + 1) & (gm.aligned_cap - 1)) {
        if (gm.aligned[j].addr == addr) {
            return &gm.aligned[j];
        }
        if (gm.aligned[j].addr == 0) {
            return NULL;
        }
    }
}

bool
gm_aligned_put(uintptr_t addr, uintptr_t base)
{
    gm_tls_guard++;
    pthread_mutex_lock(&gm.aligned_mu);
    bool ok = 2 * (gm.aligned_used + 1) <= gm.aligned_cap || aligned_grow();
    if (ok) {
        size_t j = slot_of(addr, gm.aligned_cap);
        while (gm.aligned[j].addr > GM_DELETED) {
            j = (j + 1) & (gm.aligned_cap - 1);
        }
        if (gm.aligned[j].addr == 0) {
            gm.aligned_used++; /* a deleted entry was counted already */
        }
        gm.aligned[j] = (gm_aligned_entry){addr, base};
    }
    pthread_mutex_unlock(&gm.aligned_mu);
    gm_tls_guard--;
    return ok;
}

uintptr_t
gm_aligned_take(uintptr_t addr)
{
    pthread_mutex_lock(&gm.aligned_mu);
    gm_aligned_entry *e = aligned_slot(addr);
    uintptr_t base = 0;
    if (e != NULL) {
        base = e->base;
        e->addr = GM_DELETED;
    }
    pthread_mutex_unlock(&gm.aligned_mu);
    return base;
}

uintptr_t
gm_aligned_find(uintptr_t addr)
{
    pthread_mutex_lock(&gm.aligned_mu);
    gm_aligned_entry *e = aligned_slot(addr);
    uintptr_t base = e != NULL ? e->base : 0;
    pthread_mutex_unlock(&gm.aligned_mu);
    return base;
}

/* ---- the exit snapshot ----------------------------------------------- */

/* Runs among the last destructors (the library is preloaded, so it was
 * initialised first); the heap stays usable for whatever runs after. */
__attribute__((destructor)) static void
gm_exit_snapshot(void)
{
    if (!gm_ready() || !gm.stats ||
        (gm.stats_pid != 0 && gm.stats_pid != (int)getpid())) {
        return;
    }
    int saved = errno;
    gm_stop_the_world();
    gm_tls_guard++;
    gm_write_stats(gm.h, gm.stats_path);
    gm_tls_guard--;
    gm_start_the_world();
    errno = saved;
}

/* The heap is made at the first allocation, or here at the latest, so
 * that a program that never allocates still has one to snapshot. */
__attribute__((constructor)) static void
gm_start(void)
{
    gm_heap();
}
