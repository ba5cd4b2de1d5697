/* Go's throw, protected calls and the heap lock.  See throw.h.
 *
 * Go 1.13: src/runtime/panic.go (throw), lock_futex.go (lock, unlock).
 * Differs from Go: see throw.h.
 * Locking: heap_lock_* take and give the mutex; throw_poison releases it
 *          when the throwing thread holds it.
 */
#include "throw.h"

#include "goalloc.h"

#include <stdio.h>
#include <stdlib.h>

_Thread_local protect_frame *protect_top;

void
heap_lock_init(heap_lock *l)
{
    pthread_mutex_init(&l->mu, NULL);
    l->held = false;
}

void
heap_lock_destroy(heap_lock *l)
{
    pthread_mutex_destroy(&l->mu);
}

void
heap_lock_acquire(heap_lock *l)
{
    pthread_mutex_lock(&l->mu);
    /* a throw on another thread reads both without the lock */
    __atomic_store_n(&l->owner, pthread_self(), __ATOMIC_RELAXED);
    __atomic_store_n(&l->held, true, __ATOMIC_RELAXED);
}

void
heap_lock_release(heap_lock *l)
{
    __atomic_store_n(&l->held, false, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&l->mu);
}

bool
heap_lock_held(heap_lock *l)
{
    return __atomic_load_n(&l->held, __ATOMIC_RELAXED) &&
           pthread_equal(__atomic_load_n(&l->owner, __ATOMIC_RELAXED),
                         pthread_self());
}

void
throw_poison(const char **poisoned, heap_lock *l, const char *msg)
{
    __atomic_store_n(poisoned, msg, __ATOMIC_RELEASE);
    if (heap_lock_held(l)) {
        heap_lock_release(l);
    }
    protect_frame *f = protect_top;
    if (f != NULL) {
        longjmp(f->jb, 1);
    }
    fprintf(stderr, "fatal error: %s\n", msg);
    abort();
}

void
assert_fail(const char *cond, const char *file, int line, const char *func)
{
    fprintf(stderr, "goalloc: assertion failed: %s (%s:%d, %s)\n", cond, file,
            line, func);
    abort();
}

/* ---- The facade's statuses --------------------------------------- */

const char *
ga_status_name(ga_status s)
{
    static const char *const names[] = {
        "GA_OK",         "GA_ENOMEM",      "GA_EINVAL",       "GA_EFOREIGN",
        "GA_ENOTOBJECT", "GA_EDOUBLEFREE", "GA_EUNSUPPORTED", "GA_EPOISONED",
        "GA_EBADP",      "GA_ETOOLARGE",
    };
    /* one name per status: GA_ETOOLARGE is the last */
    _Static_assert(sizeof(names) / sizeof(names[0]) == GA_ETOOLARGE + 1,
                   "ga_status_name lacks a status");
    if ((unsigned)s < sizeof(names) / sizeof(names[0])) {
        return names[s];
    }
    return "GA_E?";
}
