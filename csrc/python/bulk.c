/* Heap._alloc_many and Heap._free_many: one C loop without the GIL.
 *
 * goalloc/_bulk.py converts the caller's input into a fresh uint64 array
 * that no one else holds; the loop stops at the first call the facade
 * refuses, which changed nothing.
 * Go 1.13: mallocgc per size (no bulk call in Go).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "core.h"

/* alloc_loop replaces each size in v[] by the address allocated for it;
 * v[i..] keep their sizes from the first refusal i on. */
static size_t
alloc_loop(ga_heap *h, int p, bool noscan, uint64_t *v, size_t n,
           ga_status *status)
{
    ga_status s = GA_OK;
    size_t i = 0;
    for (; i < n; i++) {
        ga_addr a;
        s = ga_malloc(h, p, v[i], noscan, &a);
        if (GA_UNLIKELY(s != GA_OK)) {
            break;
        }
        v[i] = a;
    }
    *status = s;
    return i;
}

static size_t
free_loop(ga_heap *h, const ga_addr *addr, size_t n, ga_status *status)
{
    ga_status s = GA_OK;
    size_t i = 0;
    for (; i < n; i++) {
        s = ga_free_p(h, GA_ALL_PS, addr[i]); /* busy: every P is ours */
        if (GA_UNLIKELY(s != GA_OK)) {
            break;
        }
    }
    *status = s;
    return i;
}

/* head_copy returns seq[:k].copy() (a NumPy array's first k items). */
static PyObject *
head_copy(PyObject *seq, size_t k)
{
    PyObject *stop = PyLong_FromSize_t(k);
    PyObject *slice = stop ? PySlice_New(NULL, stop, NULL) : NULL;
    PyObject *view = slice ? PyObject_GetItem(seq, slice) : NULL;
    PyObject *copy = view ? PyObject_CallMethod(view, "copy", NULL) : NULL;
    Py_XDECREF(stop);
    Py_XDECREF(slice);
    Py_XDECREF(view);
    return copy;
}

/* _alloc_many(v, bad=None, /, *, noscan=False, p=0): v[i] = alloc(v[i],
 * noscan=noscan, p=p) for i in order: v, a uint64 array, holds the sizes
 * and gets the addresses in their place.  bad, when given, is the int
 * that follows the sizes in the caller's input and is no uint64.  A bad
 * p, a size beyond maxAlloc or bad (ValueError with .index) is refused
 * before anything is allocated.  A refusal inside the loop (out of
 * memory) raises alloc's exception with .index and .addresses =
 * v[:index].copy(), which stay allocated. */
PyObject *
heap_alloc_many(HeapObject *self, PyObject *const *args, Py_ssize_t nargs,
                PyObject *kwnames)
{
    if (live_heap(self) == NULL) { /* its state first; taken below */
        return NULL;
    }
    if (nargs < 1 || nargs > 2) {
        PyErr_SetString(PyExc_TypeError,
                        "_alloc_many(v, bad=None, /, *, noscan=False, p=0)");
        return NULL;
    }
    PyObject *bad = nargs == 2 && args[1] != Py_None ? args[1] : NULL;
    bool noscan = false;
    long p = 0;
    if (!parse_alloc_kw("alloc_many", args + nargs, kwnames, &noscan, &p)) {
        return NULL;
    }
    Py_ssize_t n = PyObject_Length(args[0]);
    if (n < 0) {
        return NULL;
    }
    Py_buffer vb;
    if (!get_column(args[0], &vb, 8, n, true, "v")) {
        return NULL;
    }
    uint64_t *v = vb.buf;
    PyObject *result = NULL;
    ga_heap *h = acquire_heap(self, "running alloc_many");
    if (h == NULL) {
        goto done;
    }
    /* alloc's refusals of p and of each size, before anything moves */
    char msg[512];
    ga_status s = p_fits(p) ? ga_malloc_check(h, (int)p, 0) : GA_EBADP;
    if (s != GA_OK) {
        PyErr_SetString(status_error(self, s, 0, 0, p, msg, sizeof(msg)), msg);
        goto done;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        s = ga_malloc_check(h, (int)p, v[i]);
        if (s != GA_OK) {
            PyObject *type = status_error(self, s, 0, v[i], p, msg,
                                          sizeof(msg));
            raise_at(type,
                     PyUnicode_FromFormat(
                         "sizes[%zd]: %s; nothing was allocated", i, msg),
                     i, NULL);
            goto done;
        }
    }
    if (bad != NULL) { /* alloc(bad) refuses it (as_u64) */
        raise_at(PyExc_ValueError,
                 PyUnicode_FromFormat("sizes[%zd]: size out of range: %R; "
                                      "nothing was allocated",
                                      n, bad),
                 n, NULL);
        goto done;
    }
    size_t k;
    Py_BEGIN_ALLOW_THREADS
    k = alloc_loop(h, (int)p, noscan, v, (size_t)n, &s);
    Py_END_ALLOW_THREADS
    if (k == (size_t)n) {
        result = Py_NewRef(Py_None);
        goto done;
    }
    PyObject *type = status_error(self, s, 0, v[k], p, msg, sizeof(msg));
    PyObject *addresses = head_copy(args[0], k);
    if (addresses != NULL) {
        raise_at(type,
                 PyUnicode_FromFormat("%s (sizes[%zu]; the %zu objects "
                                      "allocated before it stay allocated: "
                                      ".addresses)",
                                      msg, k, k),
                 (Py_ssize_t)k, addresses);
    }
done:
    if (h != NULL) {
        release_heap(self, NULL);
    }
    PyBuffer_Release(&vb);
    return result;
}

/* _free_many(addrs, bad=None, /): free(addrs[i]) for i in order, as that
 * many free() calls.  addrs is a uint64 array.  bad, when given, is the
 * int that follows the addresses in the caller's input and is no uint64
 * (negative, or >= 2**64): free() refuses it after the others.  The first
 * refused address raises free()'s exception with .index; the frees
 * before it stay done. */
PyObject *
heap_free_many(HeapObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (live_heap(self) == NULL) { /* its state first; taken below */
        return NULL;
    }
    if (nargs < 1 || nargs > 2) {
        PyErr_SetString(PyExc_TypeError, "_free_many(addrs, bad=None, /)");
        return NULL;
    }
    PyObject *bad = nargs == 2 && args[1] != Py_None ? args[1] : NULL;
    Py_ssize_t n = PyObject_Length(args[0]);
    if (n < 0) {
        return NULL;
    }
    Py_buffer ab;
    if (!get_column(args[0], &ab, 8, n, false, "addrs")) {
        return NULL;
    }
    const ga_addr *addr = ab.buf;
    PyObject *result = NULL;
    ga_status s;
    size_t k;
    ga_heap *h = acquire_heap(self, "running free_many");
    if (h == NULL) {
        PyBuffer_Release(&ab);
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    k = free_loop(h, addr, (size_t)n, &s);
    Py_END_ALLOW_THREADS
    if (k < (size_t)n) {
        char msg[512];
        PyObject *type = status_error(self, s, addr[k], 0, 0, msg,
                                      sizeof(msg));
        raise_at(type,
                 PyUnicode_FromFormat("%s (addrs[%zu]; the %zu frees before "
                                      "it stay done)",
                                      msg, k, k),
                 (Py_ssize_t)k, NULL);
    }
    else if (bad != NULL) {
        /* the exception free(bad) raises (as_u64) */
        raise_at(heap_exc(self, EXC_INVALID_FREE),
                 PyUnicode_FromFormat("address out of range: %R (addrs[%zu]; "
                                      "the %zu frees before it stay done)",
                                      bad, k, k),
                 (Py_ssize_t)k, NULL);
    }
    else {
        result = Py_NewRef(Py_None);
    }
    release_heap(self, NULL);
    PyBuffer_Release(&ab);
    return result;
}
