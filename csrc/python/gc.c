/* Heap methods of GC mode (design §14): drop, gc, free_os_memory,
 * set_gc_percent and the collector's state and cycle records.
 *
 * Each converts its arguments first, then takes the heap (the call
 * protocol of heap.c).  A call that needs the other collector raises
 * WrongCollectorError with nothing changed.
 * Go 1.13: runtime.GC, debug.FreeOSMemory, debug.SetGCPercent.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdlib.h>

#include "core.h"

/* wrong_collector raises WrongCollectorError for method `what`. */
static PyObject *
wrong_collector(HeapObject *self, const char *what)
{
    PyErr_Format(heap_exc(self, EXC_WRONG_COLLECTOR),
                 "%s needs a heap made with collector='gc'; this heap frees "
                 "explicitly (free())",
                 what);
    return NULL;
}

/* drop_error raises the exception for a refused drop of addr. */
static PyObject *
drop_error(HeapObject *self, ga_status s, uint64_t addr)
{
    unsigned long long a = addr;
    switch (s) {
    case GA_EUNSUPPORTED:
        return wrong_collector(self, "drop()");
    case GA_EFOREIGN:
        set_errorf(heap_exc(self, EXC_INVALID_FREE),
                   "drop of 0x%llx: not an address in this heap's arenas", a);
        return NULL;
    case GA_ENOTOBJECT:
        set_errorf(heap_exc(self, EXC_INVALID_FREE),
                   "drop of 0x%llx: not the start of an allocated object", a);
        return NULL;
    case GA_EDOUBLEFREE:
        set_errorf(heap_exc(self, EXC_DOUBLE_FREE),
                   "drop of 0x%llx: object already dropped (or collected)", a);
        return NULL;
    default:
        return set_error_from_status(self, s, addr, 0);
    }
}

PyObject *
heap_drop(HeapObject *self, PyObject *arg)
{
    if (live_heap(self) == NULL) { /* its state first; taken below */
        return NULL;
    }
    uint64_t addr;
    if (!as_u64(arg, "address", &addr, heap_exc(self, EXC_INVALID_FREE))) {
        return NULL;
    }
    ga_heap *h = acquire_heap(self, "running drop");
    if (h == NULL) {
        return NULL;
    }
    ga_status s = ga_drop(h, addr);
    if (s != GA_OK) {
        return release_heap(self, drop_error(self, s, addr));
    }
    return release_heap(self, Py_NewRef(Py_None));
}

/* run_gc_call runs fn (ga_gc or ga_free_os_memory) as method `what`. */
static PyObject *
run_gc_call(HeapObject *self, const char *what, const char *busy,
            ga_status (*fn)(ga_heap *))
{
    ga_heap *h = acquire_heap(self, busy);
    if (h == NULL) {
        return NULL;
    }
    ga_status s = fn(h);
    if (s == GA_EUNSUPPORTED) {
        return release_heap(self, wrong_collector(self, what));
    }
    if (s != GA_OK) {
        return release_heap(self, set_error_from_status(self, s, 0, 0));
    }
    return release_heap(self, Py_NewRef(Py_None));
}

PyObject *
heap_gc(HeapObject *self, PyObject *Py_UNUSED(ignored))
{
    return run_gc_call(self, "gc()", "running gc", ga_gc);
}

PyObject *
heap_free_os_memory(HeapObject *self, PyObject *Py_UNUSED(ignored))
{
    return run_gc_call(self, "free_os_memory()", "running free_os_memory",
                       ga_free_os_memory);
}

/* gogc_arg converts a GOGC value: an int (negative: off) or "off". */
static bool
gogc_arg(PyObject *o, int *out)
{
    if (PyUnicode_Check(o) &&
        PyUnicode_CompareWithASCIIString(o, "off") == 0) {
        *out = -1;
        return true;
    }
    if (!PyIndex_Check(o)) {
        PyErr_SetString(PyExc_TypeError, "gogc must be an int or \"off\"");
        return false;
    }
    PyObject *i = PyNumber_Index(o); /* may run Python code: first */
    if (i == NULL) {
        return false;
    }
    long v = PyLong_AsLong(i);
    Py_DECREF(i);
    if ((v == -1 && PyErr_Occurred()) || v > INT32_MAX || v < INT32_MIN) {
        PyErr_Clear();
        PyErr_SetString(PyExc_ValueError,
                        "gogc must fit Go's int32 GOGC (or be \"off\")");
        return false;
    }
    *out = v < 0 ? -1 : (int)v;
    return true;
}

PyObject *
heap_set_gc_percent(HeapObject *self, PyObject *arg)
{
    if (live_heap(self) == NULL) {
        return NULL;
    }
    int gogc;
    if (!gogc_arg(arg, &gogc)) {
        return NULL;
    }
    ga_heap *h = acquire_heap(self, "running set_gc_percent");
    if (h == NULL) {
        return NULL;
    }
    int old = 0;
    ga_status s = ga_set_gc_percent(h, gogc, &old);
    if (s != GA_OK) {
        return release_heap(self, set_error_from_status(self, s, 0, 0));
    }
    return release_heap(self, PyLong_FromLong(old));
}

static PyObject *
gc_state_of(HeapObject *Py_UNUSED(self), ga_heap *h)
{
    ga_gc_state st;
    ga_gc_state_get(h, &st);
    return gc_state_dict(&st);
}

PyObject *
heap_gc_state(HeapObject *self, PyObject *Py_UNUSED(ignored))
{
    return read_heap(self, "reading gc_state", gc_state_of);
}

static PyObject *
gc_cycles_of(HeapObject *Py_UNUSED(self), ga_heap *h)
{
    size_t n = ga_gc_cycles(h, NULL, 0);
    ga_gc_cycle *c = n ? malloc(n * sizeof(*c)) : NULL;
    if (n > 0 && c == NULL) {
        return PyErr_NoMemory();
    }
    ga_gc_cycles(h, c, n);
    PyObject *t = PyTuple_New((Py_ssize_t)n);
    for (size_t i = 0; t != NULL && i < n; i++) {
        PyObject *item = gc_cycle_tuple(&c[i]);
        if (item == NULL) {
            Py_CLEAR(t);
            break;
        }
        PyTuple_SET_ITEM(t, (Py_ssize_t)i, item);
    }
    free(c);
    return t;
}

PyObject *
heap_gc_cycles(HeapObject *self, PyObject *Py_UNUSED(ignored))
{
    return read_heap(self, "reading gc_cycles", gc_cycles_of);
}
