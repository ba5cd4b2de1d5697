/* goalloc._core: the module.  Its state (the types and exceptions), its
 * functions (the size-class table) and its constants.
 *
 * The binding is split by type and concern, each file with its own
 * header comment: heap.c (the Heap type and the call protocol),
 * records.c (the records' Python values and field lists), introspect.c,
 * bulk.c, replay.c, view.c, faults.c, errors.c (the exception table),
 * args.c (argument conversion); core.h declares what they share.  Only
 * these files include Python.h; the core (the .c files of csrc/ itself)
 * builds and is tested without Python.
 * Go 1.13: sizeclasses.go (size_classes, size_to_class).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "core.h"
#include <string.h>

static struct PyModuleDef core_module;

/* find_core_module finds _core through type or the base it derives
 * from (Python subclasses of Heap are not tied to a module). */
PyObject *
find_core_module(PyTypeObject *type)
{
    for (PyTypeObject *t = type; t != NULL; t = t->tp_base) {
        if (!(t->tp_flags & Py_TPFLAGS_HEAPTYPE)) {
            continue;
        }
        PyObject *m = PyType_GetModule(t);
        if (m != NULL && PyModule_GetDef(m) == &core_module) {
            return m;
        }
        PyErr_Clear();
    }
    PyErr_SetString(PyExc_TypeError, "not a goalloc._core.Heap type");
    return NULL;
}

static PyObject *
core_size_classes(PyObject *module, PyObject *Py_UNUSED(ignored))
{
    (void)module;
    PyObject *list = PyList_New(NUM_SIZE_CLASSES);
    for (int c = 0; list != NULL && c < NUM_SIZE_CLASSES; c++) {
        ga_size_class k;
        ga_size_class_get(c, &k);
        PyObject *t = Py_BuildValue("(iKKKKiiii)", c,
                                    (unsigned long long)k.size,
                                    (unsigned long long)k.npages,
                                    (unsigned long long)k.objects,
                                    (unsigned long long)k.tail,
                                    (int)k.div_shift, (int)k.div_shift2,
                                    (int)k.div_mul, (int)k.base_mask);
        if (t == NULL) {
            Py_CLEAR(list);
            break;
        }
        PyList_SET_ITEM(list, c, t);
    }
    return list;
}

static PyObject *
core_size_to_class(PyObject *module, PyObject *arg)
{
    (void)module;
    uint64_t n;
    if (!as_u64(arg, "size", &n, NULL)) {
        return NULL;
    }
    return PyLong_FromLong(ga_size_to_class(n));
}

static int
add_constants(PyObject *module)
{
    if (add_record_fields(module) < 0) {
        return -1;
    }
    if (PyModule_AddIntConstant(module, "PAGE_SIZE", (long)PAGE_SIZE) < 0 ||
        PyModule_AddIntConstant(module, "MAX_SMALL_SIZE", MAX_SMALL_SIZE) <
            0 ||
        PyModule_AddIntConstant(module, "NUM_SIZE_CLASSES", NUM_SIZE_CLASSES) <
            0 ||
        PyModule_AddIntConstant(module, "NUM_SPAN_CLASSES", NUM_SPAN_CLASSES) <
            0 ||
        PyModule_AddIntConstant(module, "TINY_SIZE", TINY_SIZE) < 0) {
        return -1;
    }
    return 0;
}

static int
core_exec(PyObject *module)
{
    core_state *st = get_core_state(module);
    st->heap_type = (PyTypeObject *)PyType_FromModuleAndSpec(module,
                                                             &heap_spec, NULL);
    if (st->heap_type == NULL) {
        return -1;
    }
    if (PyModule_AddType(module, st->heap_type) < 0) {
        return -1;
    }
    st->mapping_type = (PyTypeObject *)PyType_FromModuleAndSpec(module,
                                                                &mapping_spec,
                                                                NULL);
    st->view_type = st->mapping_type
                        ? (PyTypeObject *)PyType_FromModuleAndSpec(module,
                                                                   &view_spec,
                                                                   NULL)
                        : NULL;
    if (st->view_type == NULL) {
        return -1;
    }
    if (add_exceptions(module, st) < 0) {
        return -1;
    }
    return add_constants(module);
}

static int
core_traverse(PyObject *module, visitproc visit, void *arg)
{
    core_state *st = get_core_state(module);
    Py_VISIT(st->heap_type);
    Py_VISIT(st->mapping_type);
    Py_VISIT(st->view_type);
    for (int i = 0; i < EXC_COUNT; i++) {
        Py_VISIT(st->exc[i]);
    }
    return 0;
}

static int
core_clear(PyObject *module)
{
    core_state *st = get_core_state(module);
    Py_CLEAR(st->heap_type);
    Py_CLEAR(st->mapping_type);
    Py_CLEAR(st->view_type);
    for (int i = 0; i < EXC_COUNT; i++) {
        Py_CLEAR(st->exc[i]);
    }
    return 0;
}

static void
core_free(void *module)
{
    core_clear((PyObject *)module);
}

static PyMethodDef core_methods[] = {
    {"_size_classes", core_size_classes, METH_NOARGS, NULL},
    {"size_to_class", core_size_to_class, METH_O,
     "size_to_class(size, /)\n--\n\n"
     "The size class mallocgc uses for a small request; 0 for sizes that "
     "are zero or large (> 32768)."},
    {NULL, NULL, 0, NULL},
};

static PyModuleDef_Slot core_slots[] = {
    {Py_mod_exec, core_exec},
#if PY_VERSION_HEX >= 0x030C0000
    {Py_mod_multiple_interpreters, Py_MOD_PER_INTERPRETER_GIL_SUPPORTED},
#endif
    {0, NULL},
};

static struct PyModuleDef core_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "goalloc._core",
    .m_doc = "The C core of goalloc: Go 1.13's allocator.",
    .m_size = sizeof(core_state),
    .m_methods = core_methods,
    .m_slots = core_slots,
    .m_traverse = core_traverse,
    .m_clear = core_clear,
    .m_free = core_free,
};

PyMODINIT_FUNC PyInit__core(void);

PyMODINIT_FUNC
PyInit__core(void)
{
    return PyModuleDef_Init(&core_module);
}
