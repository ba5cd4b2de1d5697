/* Go's throw, the protected calls it lands in, the heap lock, and the
 * debug builds' assertions.  See malloc.c for the overview.
 *
 * A broken invariant is fatal in Go: throw prints its message and ends
 * the process.  goalloc makes it fatal to one heap: throw records the
 * message in the heap (which is then poisoned: every later facade call
 * returns GA_EPOISONED), releases the heap lock if the throwing thread
 * holds it, and long-jumps to the thread's innermost protected call; with
 * none open it prints the message and aborts, as Go does.  The heap lock
 * is here because a throw must release it, and every layer throws: this
 * unit sits below all of them and calls none of their functions.
 * Debug builds check more (GA_DEBUG, below); release builds check only
 * what Go checks.
 * Go 1.13: src/runtime/panic.go (throw), lock_futex.go (lock, unlock;
 *          the heap lock is mheap.lock).
 * Differs from Go: a throw kills one heap, not the process; the lock
 *          records the thread that holds it, so that a throw can let go.
 * Locking: protect frames belong to their thread; heap_lock is a mutex.
 */
#ifndef GA_THROW_H
#define GA_THROW_H

#include <pthread.h>
#include <setjmp.h>

#include "ga.h"

/* heap_lock is Go's mheap.lock with a record of who holds it: a throw on
 * the holding thread releases it, so that a poisoned heap can still be
 * looked at and closed.  A throw on another thread reads held and owner
 * without the lock, hence the atomics. */
typedef struct heap_lock {
    pthread_mutex_t mu;
    bool held;       /* atomic: mu is held ... */
    pthread_t owner; /* ... by this thread */
} heap_lock;

void heap_lock_init(heap_lock *l);
void heap_lock_destroy(heap_lock *l);
void heap_lock_acquire(heap_lock *l);
void heap_lock_release(heap_lock *l);
/* heap_lock_held: the calling thread holds l (for assertions). */
bool heap_lock_held(heap_lock *l);

/* A protected call, where a throw lands: a facade call that may throw
 * opens one on its own stack frame,
 *
 *     protect_frame pf;
 *     protect_push(&pf);
 *     if (setjmp(pf.jb) != 0) {
 *         protect_pop(&pf);
 *         return GA_EPOISONED;
 *     }
 *     ...
 *     protect_pop(&pf);
 *
 * and closes it before it returns.  Frames are per thread and nest (a
 * facade call may make others). */
typedef struct protect_frame {
    jmp_buf jb;
    struct protect_frame *prev;
} protect_frame;

/* The calling thread's innermost protected call.  goalloc's only
 * thread-local: it is execution context (like errno), not heap state. */
extern _Thread_local protect_frame *protect_top;

static inline void
protect_push(protect_frame *f)
{
    f->prev = protect_top;
    protect_top = f;
}

static inline void
protect_pop(protect_frame *f)
{
    protect_top = f->prev;
}

/* throw_poison is Go's throw for the heap whose poison message is
 * *poisoned and whose lock is l (mheap.h's throw passes them): it stores
 * msg, which must outlive the heap, releases l if this thread holds it,
 * and jumps to the innermost protected call, or prints and aborts. */
GA_NORETURN void throw_poison(const char **poisoned, heap_lock *l,
                              const char *msg);

/* ---- Debug builds ------------------------------------------------- */

/* GA_DEBUG grades the checks goalloc makes beyond Go's throws (mimalloc's
 * MI_DEBUG levels; make test-c-debug builds the C tests at 2):
 *   0  release: none (the default).
 *   1  GA_ASSERT: cheap checks of preconditions (the heap lock held by a
 *      _locked function's caller, a span on the list it leaves, ...); a
 *      broken one prints itself and where, and aborts: it is a bug in
 *      goalloc, not in its caller.
 *   2  also the page heap's invariant walker (mheap_check_pages), after
 *      every span allocation, span free and scavenge, under the heap lock
 *      (mheap_debug_check_locked); a broken invariant throws, naming it.
 *      O(heap) each time: for tests. */
#ifndef GA_DEBUG
#define GA_DEBUG 0
#endif

#if GA_DEBUG >= 1
#define GA_ASSERT(cond)                                                       \
    ((cond) ? (void)0 : assert_fail(#cond, __FILE__, __LINE__, __func__))
#else
/* type-checked, never evaluated */
#define GA_ASSERT(cond) ((void)sizeof(!(cond)))
#endif

/* assert_fail reports a broken GA_ASSERT and aborts. */
GA_NORETURN void assert_fail(const char *cond, const char *file, int line,
                             const char *func);

#endif
