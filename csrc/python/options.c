/* The Heap's options: Heap(goos=..., collector=...) into ga_options.
 *
 * Each keyword is converted and checked here, before the heap exists:
 * a bad one raises TypeError or ValueError and nothing is made.
 * Go 1.13: mallocinit's platform choices, GOGC (readgogc).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <string.h>

#include "core.h"

static int
parse_backing(PyObject *o, const char *goos, const char *goarch,
              ga_backing *out)
{
    if (o == NULL || o == Py_None) {
        bool native = strcmp(goos, "linux") == 0 &&
                      strcmp(goarch, "amd64") == 0;
#if defined(__linux__) && defined(__x86_64__)
        *out = native ? GA_BACKING_OS : GA_BACKING_VIRTUAL;
#else
        (void)native;
        *out = GA_BACKING_VIRTUAL;
#endif
        return 0;
    }
    if (!PyUnicode_Check(o)) {
        PyErr_SetString(PyExc_TypeError, "backing must be a str");
        return -1;
    }
    const char *b = str_arg(o, "backing");
    if (b == NULL) {
        return -1;
    }
    if (strcmp(b, "os") == 0) {
        *out = GA_BACKING_OS;
    }
    else if (strcmp(b, "virtual") == 0) {
        *out = GA_BACKING_VIRTUAL;
    }
    else {
        PyErr_Format(PyExc_ValueError,
                     "unknown backing %R (expected 'os' or 'virtual')", o);
        return -1;
    }
    return 0;
}

/* parse_release: release="go1.13.8" (the default), "go1.13.0" or its
 * alias "go1.13"; a str with an embedded NUL is no release name. */
static int
parse_release(PyObject *o, ga_release *out)
{
    *out = GA_RELEASE_GO1_13_8;
    if (o == NULL || o == Py_None) {
        return 0;
    }
    if (!PyUnicode_Check(o)) {
        PyErr_Format(PyExc_TypeError, "release must be a str, not %.100s",
                     Py_TYPE(o)->tp_name);
        return -1;
    }
    Py_ssize_t n;
    const char *s = PyUnicode_AsUTF8AndSize(o, &n);
    if (s == NULL) {
        return -1;
    }
    if (strlen(s) != (size_t)n || !ga_release_parse(s, out)) {
        PyErr_Format(PyExc_ValueError,
                     "unknown release %R (expected 'go1.13.8', 'go1.13.0' "
                     "or its alias 'go1.13')",
                     o);
        return -1;
    }
    return 0;
}

/* parse_gogc: gogc=N (Go's GOGC, an int32; negative or "off" = off)
 * sets the scavenger goal Go has with it until the first GC, in the
 * heap's release; it and scavenge_goal are two ways to say one thing, so
 * not both. */
static int
parse_gogc(PyObject *gogc_o, PyObject *goal_o, ga_release release,
           ga_options *o)
{
    if (gogc_o == NULL || gogc_o == Py_None) {
        return 0;
    }
    if (goal_o != NULL && goal_o != Py_None) {
        PyErr_SetString(PyExc_TypeError,
                        "give gogc or scavenge_goal, not both");
        return -1;
    }
    long gogc;
    if (PyUnicode_Check(gogc_o) &&
        PyUnicode_CompareWithASCIIString(gogc_o, "off") == 0) {
        gogc = -1;
    }
    else if (PyLong_Check(gogc_o)) {
        gogc = PyLong_AsLong(gogc_o);
        if ((gogc == -1 && PyErr_Occurred()) || gogc > INT32_MAX ||
            gogc < INT32_MIN) {
            PyErr_Clear();
            PyErr_SetString(PyExc_ValueError,
                            "gogc must fit Go's int32 GOGC (or be \"off\")");
            return -1;
        }
    }
    else {
        PyErr_SetString(PyExc_TypeError, "gogc must be an int or \"off\"");
        return -1;
    }
    o->gogc = gogc < 0 ? -1 : (int)gogc;
    o->scavenge_goal = ga_release_scavenge_goal(release, (int)gogc);
    return 0;
}

/* parse_collector: collector="free" (explicit free, the default) or
 * "gc" (Go's collector, design §14); background_sweep=None (sweep all
 * after each cycle) or K >= 0 spans per refill or large allocation. */
static int
parse_collector(PyObject *coll_o, PyObject *bg_o, ga_options *o)
{
    if (coll_o != NULL && coll_o != Py_None) {
        const char *c = str_arg(coll_o, "collector");
        if (c == NULL) {
            return -1;
        }
        if (strcmp(c, "gc") == 0) {
            o->collector = GA_COLLECTOR_GC;
        }
        else if (strcmp(c, "free") != 0) {
            PyErr_Format(PyExc_ValueError,
                         "collector must be \"free\" or \"gc\", not %R",
                         coll_o);
            return -1;
        }
    }
    if (bg_o != NULL && bg_o != Py_None) {
        uint64_t k;
        if (!as_u64(bg_o, "background_sweep", &k, NULL)) {
            return -1;
        }
        if (k > INT32_MAX) {
            PyErr_SetString(PyExc_ValueError, "background_sweep out of range");
            return -1;
        }
        o->bgsweep = (int)k;
    }
    return 0;
}

/* parse_background_scavenge: background_scavenge=None (true) or a
 * bool: GC mode's background scavenger (design §14.11). */
static int
parse_background_scavenge(PyObject *v, ga_options *o)
{
    if (v == NULL || v == Py_None) {
        return 0;
    }
    if (!PyBool_Check(v)) {
        PyErr_SetString(PyExc_TypeError, "background_scavenge must be a bool");
        return -1;
    }
    o->bgscavenge = v == Py_True;
    return 0;
}

int
parse_options(ga_options *o, const heap_option_args *a)
{
    ga_options_init(o);
    ga_release release;
    if (parse_release(a->release, &release) < 0) {
        return -1;
    }
    /* the release first: it sets the default scavenger goal */
    ga_options_set_release(o, release);
    o->goos = optional_str(a->goos, "goos", "linux");
    o->goarch = optional_str(a->goarch, "goarch", "amd64");
    if (o->goos == NULL || o->goarch == NULL) {
        return -1;
    }
    o->race = a->race != 0;
    if (parse_backing(a->backing, o->goos, o->goarch, &o->backing) < 0) {
        return -1;
    }
    if (a->procs != NULL) {
        if (!PyLong_Check(a->procs)) {
            PyErr_SetString(PyExc_TypeError, "procs must be an int");
            return -1;
        }
        long procs = PyLong_AsLong(a->procs);
        if (procs == -1 && PyErr_Occurred()) {
            PyErr_Clear();
            procs = 0;
        }
        if (procs < 1 || procs > 1024) {
            PyErr_SetString(PyExc_ValueError,
                            "procs must be between 1 and 1024");
            return -1;
        }
        o->procs = (int)procs;
    }
    if (parse_gogc(a->gogc, a->scavenge_goal, o->release, o) < 0 ||
        parse_collector(a->collector, a->background_sweep, o) < 0 ||
        parse_background_scavenge(a->background_scavenge, o) < 0 ||
        opt_u64(a->scavenge_goal, "scavenge_goal", &o->scavenge_goal) < 0 ||
        opt_u64(a->sys_limit, "sys_limit", &o->sys_limit) < 0 ||
        opt_u64(a->metadata_limit, "metadata_limit", &o->metadata_limit) < 0 ||
        opt_u64(a->binary_end, "binary_end", &o->binary_end) < 0 ||
        opt_u64(a->seed, "seed", &o->seed) < 0) {
        return -1;
    }
    return 0;
}
