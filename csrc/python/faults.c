/* Fault injection and test hooks: occupy address space, make OS
 * reservations fail, throw.
 *
 * For tests and notebooks that drive the rare paths (hint collisions,
 * out of memory, a poisoned heap).
 * Go 1.13: none (Go's tests use export_test.go hooks much like these).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "core.h"

PyObject *
heap_block_range(HeapObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (live_heap(self) == NULL) { /* its state first; taken below */
        return NULL;
    }
    uint64_t addr, len;
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "block_range(addr, length)");
        return NULL;
    }
    if (!as_u64(args[0], "addr", &addr, NULL) ||
        !as_u64(args[1], "length", &len, NULL)) {
        return NULL;
    }
    ga_heap *h = acquire_heap(self, "running block_range");
    if (h == NULL) {
        return NULL;
    }
    ga_status s = ga_block_range(h, addr, len);
    release_heap(self, NULL);
    if (s != GA_OK) {
        set_errorf(PyExc_ValueError,
                   "cannot block [0x%llx, +0x%llx): in use or empty",
                   (unsigned long long)addr, (unsigned long long)len);
        return NULL;
    }
    Py_RETURN_NONE;
}

PyObject *
heap_fail_reserves(HeapObject *self, PyObject *arg)
{
    if (live_heap(self) == NULL) { /* its state first; taken below */
        return NULL;
    }
    uint64_t n;
    if (!as_u64(arg, "n", &n, NULL)) {
        return NULL;
    }
    if (n > INT32_MAX) {
        PyErr_SetString(PyExc_ValueError, "n out of range");
        return NULL;
    }
    ga_heap *h = acquire_heap(self, "running fail_reserves");
    if (h == NULL) {
        return NULL;
    }
    ga_status s = ga_fail_reserves(h, (int)n);
    release_heap(self, NULL);
    if (s == GA_EUNSUPPORTED) {
        PyErr_SetString(PyExc_ValueError,
                        "fail_reserves needs backing='virtual'");
        return NULL;
    }
    if (s != GA_OK) {
        return set_error_from_status(self, s, 0, 0);
    }
    Py_RETURN_NONE;
}

PyObject *
heap_fail_metadata(HeapObject *self, PyObject *arg)
{
    if (live_heap(self) == NULL) { /* its state first; taken below */
        return NULL;
    }
    uint64_t n;
    if (!as_u64(arg, "n", &n, NULL)) {
        return NULL;
    }
    ga_heap *h = acquire_heap(self, "running fail_metadata");
    if (h == NULL) {
        return NULL;
    }
    ga_status s = ga_fail_metadata(h, n);
    if (s != GA_OK) {
        return release_heap(self, set_error_from_status(self, s, 0, 0));
    }
    return release_heap(self, Py_NewRef(Py_None));
}

PyObject *
heap_throw(HeapObject *self, PyObject *arg)
{
    if (live_heap(self) == NULL) { /* its state first; taken below */
        return NULL;
    }
    if (!PyUnicode_Check(arg)) {
        PyErr_SetString(PyExc_TypeError, "_throw(msg): msg must be a str");
        return NULL;
    }
    const char *msg = str_arg(arg, "msg");
    if (msg == NULL) {
        return NULL;
    }
    ga_heap *h = acquire_heap(self, "running _throw");
    if (h == NULL) {
        return NULL;
    }
    ga_status s = ga_test_throw(h, msg);
    return release_heap(self, set_error_from_status(self, s, 0, 0));
}
