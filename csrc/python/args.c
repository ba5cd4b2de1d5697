/* Argument conversion for the binding: ints, strings, buffers, keywords.
 *
 * These run before a method takes its heap (heap.c, the call protocol):
 * converting may run Python code (__index__, __bool__, __len__, a
 * buffer export), which must find the heap untaken.
 * Go 1.13: none.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "core.h"
#include <string.h>

/* as_u64 converts an int argument; negative or too large values set
 * ValueError (or err_type when given).  Returns false on error. */
bool
as_u64(PyObject *o, const char *what, uint64_t *out, PyObject *err_type)
{
    if (!PyLong_Check(o)) {
        /* integers of other types (NumPy's) convert through __index__ */
        if (!PyIndex_Check(o)) {
            PyErr_Format(PyExc_TypeError, "%s must be an int, not %.100s",
                         what, Py_TYPE(o)->tp_name);
            return false;
        }
        PyObject *i = PyNumber_Index(o);
        if (i == NULL) {
            return false;
        }
        bool ok = as_u64(i, what, out, err_type);
        Py_DECREF(i);
        return ok;
    }
    int overflow = 0;
    long long v = PyLong_AsLongLongAndOverflow(o, &overflow);
    if (overflow == 0 && v == -1 && PyErr_Occurred()) {
        return false;
    }
    if (overflow == 0 && v >= 0) {
        *out = (uint64_t)v;
        return true;
    }
    if (overflow > 0) {
        unsigned long long u = PyLong_AsUnsignedLongLong(o);
        if (!(u == (unsigned long long)-1 && PyErr_Occurred())) {
            *out = u;
            return true;
        }
        PyErr_Clear();
    }
    PyErr_Format(err_type ? err_type : PyExc_ValueError, "%s out of range: %R",
                 what, o);
    return false;
}

/* str_arg returns the UTF-8 of str o; ValueError if it holds a NUL
 * ("linux\x00evil" must not pass for "linux" in C). */
const char *
str_arg(PyObject *o, const char *what)
{
    Py_ssize_t len;
    const char *s = PyUnicode_AsUTF8AndSize(o, &len);
    if (s != NULL && strlen(s) != (size_t)len) {
        PyErr_Format(PyExc_ValueError, "%s must not contain NUL: %R", what, o);
        return NULL;
    }
    return s;
}

const char *
optional_str(PyObject *o, const char *what, const char *dflt)
{
    if (o == NULL || o == Py_None) {
        return dflt;
    }
    if (!PyUnicode_Check(o)) {
        PyErr_Format(PyExc_TypeError, "%s must be a str", what);
        return NULL;
    }
    return str_arg(o, what);
}

int
opt_u64(PyObject *o, const char *what, uint64_t *out)
{
    if (o == NULL || o == Py_None) {
        return 0;
    }
    return as_u64(o, what, out, NULL) ? 0 : -1;
}

/* get_column takes a C-contiguous buffer of n items of itemsize bytes. */
bool
get_column(PyObject *o, Py_buffer *b, Py_ssize_t itemsize, Py_ssize_t n,
           bool writable, const char *what)
{
    int flags = PyBUF_C_CONTIGUOUS | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(o, b, flags) < 0) {
        return false;
    }
    Py_ssize_t align = itemsize < 8 ? itemsize : 8; /* fields are <= 8 */
    if ((uintptr_t)b->buf % (uintptr_t)align != 0) {
        PyErr_Format(PyExc_ValueError, "%s: the buffer is not aligned to %zd",
                     what, align);
        PyBuffer_Release(b);
        return false;
    }
    if (b->len != itemsize * n) {
        PyErr_Format(PyExc_ValueError,
                     "%s: expected %zd bytes (%zd items of %zd), got %zd",
                     what, itemsize * n, n, itemsize, b->len);
        PyBuffer_Release(b);
        return false;
    }
    return true;
}

/* parse_alloc_kw parses alloc's keywords, noscan (any truth value) and p
 * (an int; out-of-range values become -1, refused later), for alloc and
 * the bulk calls alike. */
bool
parse_alloc_kw(const char *fname, PyObject *const *kwargs, PyObject *kwnames,
               bool *noscan, long *p)
{
    Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    for (Py_ssize_t i = 0; i < nkw; i++) {
        PyObject *key = PyTuple_GET_ITEM(kwnames, i);
        PyObject *val = kwargs[i];
        if (PyUnicode_CompareWithASCIIString(key, "noscan") == 0) {
            int t = PyObject_IsTrue(val);
            if (t < 0) {
                return false;
            }
            *noscan = t != 0;
        }
        else if (PyUnicode_CompareWithASCIIString(key, "p") == 0) {
            if (!PyLong_Check(val)) {
                PyErr_SetString(PyExc_TypeError, "p must be an int");
                return false;
            }
            int overflow = 0;
            *p = PyLong_AsLongAndOverflow(val, &overflow);
            if (overflow != 0) {
                PyErr_Format(PyExc_ValueError, "p=%R is not a P of this heap",
                             val);
                return false;
            }
        }
        else {
            PyErr_Format(PyExc_TypeError,
                         "%s() got an unexpected keyword argument %R", fname,
                         key);
            return false;
        }
    }
    return true;
}
