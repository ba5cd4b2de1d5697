/* goalloc's exceptions: the one table of them, and the one map from the
 * core's ga_status to them.
 *
 * Exceptions are set here and in the methods' argument checks, nowhere
 * in the core (which returns statuses).
 * Go 1.13: throw (HeapCorruptionError carries its text), and the
 *          runtime's "out of memory" fatal error (OutOfMemoryError).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core.h"

/* The exceptions, indexed by core_exc.  Each derives from the one at
 * `base` (or Exception) and, when `also` is given, from that builtin too,
 * so that `except ValueError` catches an InvalidFreeError. */
static const struct exc_def {
    const char *name;
    const char *doc;
    int base;        /* core_exc, or -1: Exception */
    PyObject **also; /* a builtin base, or NULL */
} exc_table[EXC_COUNT] = {
    [EXC_GOALLOC] = {"goalloc.GoallocError", "Base of goalloc's errors.", -1,
                     NULL},
    [EXC_INVALID_FREE] = {"goalloc.InvalidFreeError",
                          "free() of an address that is not a live object.",
                          EXC_GOALLOC, &PyExc_ValueError},
    [EXC_DOUBLE_FREE] = {"goalloc.DoubleFreeError",
                         "free() of an object that was already freed.",
                         EXC_INVALID_FREE, NULL},
    [EXC_OUT_OF_MEMORY] = {"goalloc.OutOfMemoryError",
                           "The OS (or the simulated limit) refused.",
                           EXC_GOALLOC, &PyExc_MemoryError},
    [EXC_HEAP_CLOSED] = {"goalloc.HeapClosedError", "The heap was closed.",
                         EXC_GOALLOC, &PyExc_RuntimeError},
    [EXC_HEAP_BUSY] = {"goalloc.HeapBusyError",
                       "The heap is in another call: another thread's, or "
                       "the one whose Python code (a callback, a finalizer) "
                       "made this call.",
                       EXC_GOALLOC, &PyExc_RuntimeError},
    [EXC_HEAP_CORRUPTION] = {"goalloc.HeapCorruptionError",
                             "An internal invariant broke (Go's throw); the "
                             "heap is poisoned.",
                             EXC_GOALLOC, &PyExc_RuntimeError},
    [EXC_WRONG_COLLECTOR] = {"goalloc.WrongCollectorError",
                             "The call needs the other collector: drop(), "
                             "gc() or free_os_memory() on an explicit-free "
                             "heap, free() on a GC-mode heap.",
                             EXC_GOALLOC, &PyExc_TypeError},
};

/* new_exception makes exception d (its base made already) and adds it
 * to module under its short name; returns a new reference or NULL. */
static PyObject *
new_exception(PyObject *module, const core_state *st, const struct exc_def *d)
{
    PyObject *base = d->base < 0 ? PyExc_Exception : st->exc[d->base];
    PyObject *bases = d->also ? PyTuple_Pack(2, base, *d->also)
                              : PyTuple_Pack(1, base);
    PyObject *e = bases
                      ? PyErr_NewExceptionWithDoc(d->name, d->doc, bases, NULL)
                      : NULL;
    Py_XDECREF(bases);
    if (e != NULL &&
        PyModule_AddObjectRef(module, strrchr(d->name, '.') + 1, e) < 0) {
        Py_CLEAR(e);
    }
    return e;
}

/* add_exceptions makes every exception of the table into st->exc. */
int
add_exceptions(PyObject *module, core_state *st)
{
    for (int i = 0; i < EXC_COUNT; i++) {
        st->exc[i] = new_exception(module, st, &exc_table[i]);
        if (st->exc[i] == NULL) {
            return -1;
        }
    }
    return 0;
}

/* set_errorf is PyErr_Format with C's printf (PyErr_Format has no %llx). */
void
set_errorf(PyObject *type, const char *fmt, ...)
{
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    PyErr_SetString(type, buf);
}

/* status_error is the one map from ga_status to goalloc's exceptions:
 * it returns the exception type for status s (borrowed) and writes its
 * message into msg; addr, size and p (the P an allocation ran as) give
 * context. */
PyObject *
status_error(HeapObject *self, ga_status s, uint64_t addr, uint64_t size,
             long p, char *msg, size_t len)
{
    core_state *st = heap_state(self);
    unsigned long long a = addr, n = size;
    ga_heap_info info;
    switch (s) {
    case GA_ENOMEM: {
        /* why the heap refused to grow, when it says */
        const char *why = self->heap ? ga_oom_reason(self->heap) : NULL;
        snprintf(msg, len,
                 "runtime: out of memory: cannot allocate %llu-byte block%s%s",
                 n, why ? ": " : "", why ? why : "");
        return st->exc[EXC_OUT_OF_MEMORY];
    }
    case GA_EINVAL:
        snprintf(msg, len, "argument out of range");
        return PyExc_ValueError;
    case GA_EBADP:
        if (self->heap != NULL) {
            ga_heap_info_get(self->heap, &info);
        }
        snprintf(msg, len, "p=%ld is not a P of this heap (procs=%d)", p,
                 self->heap != NULL ? info.procs : 0);
        return PyExc_ValueError;
    case GA_ETOOLARGE:
        if (self->heap == NULL) {
            snprintf(msg, len, "size %llu exceeds maxAlloc", n);
            return PyExc_ValueError;
        }
        ga_heap_info_get(self->heap, &info);
        snprintf(msg, len, "size %llu exceeds maxAlloc (%llu) of %s/%s", n,
                 (unsigned long long)info.max_alloc, info.goos, info.goarch);
        return PyExc_ValueError;
    case GA_EFOREIGN:
        snprintf(msg, len,
                 "free of 0x%llx: not an address in this heap's arenas", a);
        return st->exc[EXC_INVALID_FREE];
    case GA_ENOTOBJECT:
        snprintf(msg, len, "free of 0x%llx: not the start of a live object",
                 a);
        return st->exc[EXC_INVALID_FREE];
    case GA_EDOUBLEFREE:
        snprintf(msg, len, "free of 0x%llx: object already freed", a);
        return st->exc[EXC_DOUBLE_FREE];
    case GA_EUNSUPPORTED:
        /* the one call left that a heap refuses for its options: free()
         * (and free_many, replay's frees) on a GC-mode heap */
        snprintf(msg, len,
                 "free of 0x%llx on a heap with collector='gc': drop() the "
                 "object, and the collector frees it",
                 a);
        return st->exc[EXC_WRONG_COLLECTOR];
    case GA_EPOISONED:
        snprintf(msg, len, "%s",
                 self->heap ? ga_poisoned(self->heap) : "heap poisoned");
        return st->exc[EXC_HEAP_CORRUPTION];
    default:
        snprintf(msg, len, "goalloc error %d", (int)s);
        return st->exc[EXC_GOALLOC];
    }
}

/* set_error_from_status raises the exception for status s; addr and size
 * give context.  Always returns NULL.  For the calls that run as no P or
 * every P (no GA_EBADP); an allocation passes its P to status_error. */
PyObject *
set_error_from_status(HeapObject *self, ga_status s, uint64_t addr,
                      uint64_t size)
{
    char msg[512];
    PyErr_SetString(status_error(self, s, addr, size, 0, msg, sizeof(msg)),
                    msg);
    return NULL;
}

/* raise_at raises type(msg) with the attribute index set (the position
 * in a bulk call's array) and, when given, addresses.  msg and addresses
 * are stolen; NULL msg means its making failed.  Always returns NULL. */
PyObject *
raise_at(PyObject *type, PyObject *msg, Py_ssize_t index, PyObject *addresses)
{
    PyObject *exc = msg ? PyObject_CallOneArg(type, msg) : NULL;
    PyObject *i = exc ? PyLong_FromSsize_t(index) : NULL;
    if (i == NULL || PyObject_SetAttrString(exc, "index", i) < 0 ||
        (addresses != NULL &&
         PyObject_SetAttrString(exc, "addresses", addresses) < 0)) {
        goto done;
    }
    PyErr_SetObject(type, exc);
done:
    Py_XDECREF(i);
    Py_XDECREF(exc);
    Py_XDECREF(msg);
    Py_XDECREF(addresses);
    return NULL;
}
