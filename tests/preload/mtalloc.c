/* mtalloc: a multithreaded allocation workload for goalloc's malloc
 * replacement (tests/test_preload.py runs it under goalloc and glibc and
 * compares the output; benchmarks/run.py times it).
 *
 *     mtalloc THREADS ROUNDS [fork]
 *
 * Each thread allocates blocks of random sizes (mostly small, some up to
 * 32 KiB, a few large, some through posix_memalign and aligned_alloc),
 * fills each with bytes derived from the block's number, grows some with
 * realloc, and hands every block to the next thread through a locked
 * ring; the receiving thread checks the bytes and frees it (so most
 * frees cross threads), or the sender does when the ring is full.  With
 * "fork", the main thread forks while the workers run, and the child
 * allocates, checks and frees blocks of its own (and in a thread of its
 * own) before it exits.  The output does not depend on the allocator or
 * on the interleaving: counts and a checksum of every block's bytes,
 * each block checked exactly once.
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define RING 256

typedef struct block {
    unsigned char *p;
    size_t n;
    uint64_t id;
} block;

typedef struct ring {
    pthread_mutex_t mu;
    block b[RING];
    int head, count;
} ring;

typedef struct worker {
    pthread_t t;
    int index;
    long rounds;
    uint64_t sum, checked, errors, allocs;
} worker;

static int nthreads;
static ring *rings;
static worker *workers;

static uint64_t
next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static unsigned char
byte_of(uint64_t id, size_t i)
{
    return (unsigned char)((id * 0x9E3779B97F4A7C15ULL + i * 31) >> 56);
}

static size_t
pick_size(uint64_t *s)
{
    uint64_t r = next(s) % 1000;
    if (r < 700) {
        return 1 + next(s) % 256;
    }
    if (r < 950) {
        return 257 + next(s) % 8000;
    }
    if (r < 995) {
        return 8257 + next(s) % 24000;
    }
    return 32769 + next(s) % 300000;
}

static block
make_block(worker *w, uint64_t *s, uint64_t id)
{
    size_t n = pick_size(s);
    unsigned char *p;
    uint64_t how = next(s) % 100;
    if (how < 3) {
        void *q = NULL;
        size_t align = (size_t)64 << (next(s) % 8); /* 64 .. 8 KiB */
        if (posix_memalign(&q, align, n) != 0 ||
            ((uintptr_t)q & (align - 1))) {
            w->errors++;
        }
        p = q;
    }
    else if (how < 5) {
        size_t align = (size_t)16384 << (next(s) % 3); /* 16 .. 64 KiB */
        n = (n + align - 1) / align * align;
        p = aligned_alloc(align, n);
        if (p == NULL || ((uintptr_t)p & (align - 1))) {
            w->errors++;
        }
    }
    else if (how < 15) {
        p = calloc(1, n);
        for (size_t i = 0; p != NULL && i < n; i++) {
            w->errors += p[i] != 0;
        }
    }
    else {
        p = malloc(n);
    }
    if (p == NULL) {
        w->errors++;
        return (block){NULL, 0, id};
    }
    w->allocs++;
    for (size_t i = 0; i < n; i++) {
        p[i] = byte_of(id, i);
    }
    if (how >= 90) { /* grow, keeping the bytes */
        size_t m = n + 1 + next(s) % (n + 64);
        unsigned char *q = realloc(p, m);
        if (q == NULL) {
            w->errors++;
        }
        else {
            p = q;
            for (size_t i = n; i < m; i++) {
                p[i] = byte_of(id, i);
            }
            n = m;
        }
    }
    return (block){p, n, id};
}

static void
check_and_free(worker *w, block b)
{
    if (b.p == NULL) {
        return;
    }
    uint64_t sum = 0;
    for (size_t i = 0; i < b.n; i++) {
        unsigned char want = byte_of(b.id, i);
        w->errors += b.p[i] != want;
        sum += want;
    }
    w->sum += sum + b.n;
    w->checked++;
    free(b.p);
}

static bool
ring_push(ring *r, block b)
{
    pthread_mutex_lock(&r->mu);
    bool ok = r->count < RING;
    if (ok) {
        r->b[(r->head + r->count) % RING] = b;
        r->count++;
    }
    pthread_mutex_unlock(&r->mu);
    return ok;
}

static bool
ring_pop(ring *r, block *b)
{
    pthread_mutex_lock(&r->mu);
    bool ok = r->count > 0;
    if (ok) {
        *b = r->b[r->head];
        r->head = (r->head + 1) % RING;
        r->count--;
    }
    pthread_mutex_unlock(&r->mu);
    return ok;
}

static void *
work(void *arg)
{
    worker *w = arg;
    uint64_t s = 0x1234567ULL + (uint64_t)w->index * 7919;
    ring *mine = &rings[w->index];
    ring *theirs = &rings[(w->index + 1) % nthreads];
    for (long k = 0; k < w->rounds; k++) {
        uint64_t id = ((uint64_t)w->index << 40) | (uint64_t)k;
        block b = make_block(w, &s, id);
        if (!ring_push(theirs, b)) {
            check_and_free(w, b);
        }
        block got;
        if (ring_pop(mine, &got)) {
            check_and_free(w, got);
        }
    }
    return NULL;
}

/* the forked child: allocate, check and free, in main and in a thread */
static void *
child_work(void *arg)
{
    worker *w = arg;
    uint64_t s = 99;
    for (uint64_t k = 0; k < 20000; k++) {
        check_and_free(w, make_block(w, &s, k));
    }
    return NULL;
}

static int
forked_child(void)
{
    worker w = {.index = 0};
    child_work(&w);
    worker w2 = {.index = 1};
    pthread_t t;
    if (pthread_create(&t, NULL, child_work, &w2) != 0) {
        return 3;
    }
    pthread_join(t, NULL);
    return w.errors == 0 && w2.errors == 0 && w.checked == 20000 &&
                   w2.checked == 20000
               ? 0
               : 4;
}

int
main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: mtalloc THREADS ROUNDS [fork]\n");
        return 2;
    }
    nthreads = atoi(argv[1]);
    long rounds = atol(argv[2]);
    bool do_fork = argc > 3 && strcmp(argv[3], "fork") == 0;
    if (nthreads < 1 || rounds < 1) {
        return 2;
    }
    rings = calloc((size_t)nthreads, sizeof *rings);
    workers = calloc((size_t)nthreads, sizeof *workers);
    for (int i = 0; i < nthreads; i++) {
        pthread_mutex_init(&rings[i].mu, NULL);
        workers[i] = (worker){.index = i, .rounds = rounds};
        pthread_create(&workers[i].t, NULL, work, &workers[i]);
    }
    int child_status = -1;
    if (do_fork) {
        usleep(1000); /* the workers are allocating */
        fflush(stdout);
        pid_t pid = fork();
        if (pid == 0) {
            _exit(forked_child());
        }
        int st = 0;
        waitpid(pid, &st, 0);
        child_status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    }
    uint64_t sum = 0, checked = 0, errors = 0, allocs = 0;
    for (int i = 0; i < nthreads; i++) {
        pthread_join(workers[i].t, NULL);
    }
    worker drain = {.index = -1};
    for (int i = 0; i < nthreads; i++) {
        block b;
        while (ring_pop(&rings[i], &b)) {
            check_and_free(&drain, b);
        }
        sum += workers[i].sum;
        checked += workers[i].checked;
        errors += workers[i].errors;
        allocs += workers[i].allocs;
    }
    sum += drain.sum;
    checked += drain.checked;
    errors += drain.errors;
    printf("threads %d rounds %ld: %" PRIu64 " blocks, %" PRIu64
           " checked, %" PRIu64 " errors, checksum %" PRIu64 "\n",
           nthreads, rounds, allocs, checked, errors, sum);
    if (do_fork) {
        printf("forked child: exit status %d\n", child_status);
    }
    free(rings);
    free(workers);
    return errors != 0 || (do_fork && child_status != 0);
}
