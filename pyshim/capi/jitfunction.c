/* rjit._rjit.JitFunction: what @rjit.jit returns.
 *
 * Written in C rather than with pyo3 for two reasons:
 * - calls go through vectorcall straight to the wrapped function, with no argument tuple and no
 *   frame of its own, so tracebacks show only the user's frames;
 * - no Rust frame with a panic-catching landing pad sits between the caller and the wrapped
 *   function: when the interpreter ends a daemon thread at exit it unwinds that thread with
 *   pthread_exit, which must pass through (a catch_unwind on the way aborts the process).
 * The Rust side only installs and removes the hook around the call (rjit_scope_enter/exit,
 * which catch their own panics and never call Python).
 */
#include "rjit_shim.h"

#include <structmember.h>

typedef struct {
    PyObject_HEAD
    PyObject *func;        /* the wrapped Python function (strong) */
    PyObject *dict;        /* __dict__: functools.update_wrapper's attributes, options */
    PyObject *weakreflist;
    vectorcallfunc vectorcall;
} JitFunction;

static PyObject *jitfunction_vectorcall(PyObject *self, PyObject *const *args, size_t nargsf,
                                        PyObject *kwnames) {
    JitFunction *jf = (JitFunction *)self;
    int scoped = rjit_scope_enter();
    PyObject *result = PyObject_Vectorcall(jf->func, args, nargsf, kwnames);
    if (scoped) {
        rjit_scope_exit();
    }
    return result;
}

static PyObject *jitfunction_new(PyTypeObject *type, PyObject *args, PyObject *kwargs) {
    PyObject *func;
    if (kwargs != NULL && PyDict_GET_SIZE(kwargs) != 0) {
        PyErr_SetString(PyExc_TypeError, "JitFunction() takes no keyword arguments");
        return NULL;
    }
    if (!PyArg_ParseTuple(args, "O:JitFunction", &func)) {
        return NULL;
    }
    if (!PyFunction_Check(func)) {
        PyErr_Format(PyExc_TypeError, "JitFunction() expects a Python function, got %.200s",
                     Py_TYPE(func)->tp_name);
        return NULL;
    }
    JitFunction *jf = (JitFunction *)type->tp_alloc(type, 0);
    if (jf == NULL) {
        return NULL;
    }
    Py_INCREF(func);
    jf->func = func;
    jf->vectorcall = jitfunction_vectorcall;
    return (PyObject *)jf;
}

static int jitfunction_traverse(JitFunction *jf, visitproc visit, void *arg) {
    Py_VISIT(Py_TYPE(jf));
    Py_VISIT(jf->func);
    Py_VISIT(jf->dict);
    return 0;
}

static int jitfunction_clear(JitFunction *jf) {
    Py_CLEAR(jf->func);
    Py_CLEAR(jf->dict);
    return 0;
}

static void jitfunction_dealloc(JitFunction *jf) {
    PyTypeObject *type = Py_TYPE(jf);
    PyObject_GC_UnTrack(jf);
    if (jf->weakreflist != NULL) {
        PyObject_ClearWeakRefs((PyObject *)jf);
    }
    jitfunction_clear(jf);
    type->tp_free(jf);
    Py_DECREF(type);
}

/* Binds like a function: instance.method gives a bound method of this callable. */
static PyObject *jitfunction_descr_get(PyObject *self, PyObject *obj, PyObject *type) {
    if (obj == NULL || obj == Py_None) {
        Py_INCREF(self);
        return self;
    }
    return PyMethod_New(self, obj);
}

static PyObject *jitfunction_repr(JitFunction *jf) {
    PyObject *name = jf->func ? PyObject_GetAttrString(jf->func, "__qualname__") : NULL;
    if (name == NULL) {
        PyErr_Clear();
        return PyUnicode_FromFormat("<rjit.jit function at %p>", jf);
    }
    PyObject *repr = PyUnicode_FromFormat("<rjit.jit function %U at %p>", name, jf);
    Py_DECREF(name);
    return repr;
}

/* Pickles as a reference to the module-level name it is bound to, as functions do. */
static PyObject *jitfunction_reduce(JitFunction *jf, PyObject *unused) {
    if (jf->func == NULL) {
        PyErr_SetString(PyExc_TypeError, "cannot pickle a cleared rjit.jit function");
        return NULL;
    }
    return PyObject_GetAttrString(jf->func, "__qualname__");
}

static PyObject *jitfunction_get_func(JitFunction *jf, void *closure) {
    if (jf->func == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "this rjit.jit function was cleared");
        return NULL;
    }
    Py_INCREF(jf->func);
    return jf->func;
}

static PyMethodDef jitfunction_methods[] = {
    {"__reduce__", (PyCFunction)jitfunction_reduce, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef jitfunction_getset[] = {
    {"py_func", (getter)jitfunction_get_func, NULL, "The original Python function (Numba's name).", NULL},
    {"__dict__", PyObject_GenericGetDict, PyObject_GenericSetDict, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMemberDef jitfunction_members[] = {
    {"__vectorcalloffset__", T_PYSSIZET, offsetof(JitFunction, vectorcall), READONLY, NULL},
    {"__dictoffset__", T_PYSSIZET, offsetof(JitFunction, dict), READONLY, NULL},
    {"__weaklistoffset__", T_PYSSIZET, offsetof(JitFunction, weakreflist), READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

static PyType_Slot jitfunction_slots[] = {
    {Py_tp_new, jitfunction_new},
    {Py_tp_dealloc, jitfunction_dealloc},
    {Py_tp_traverse, jitfunction_traverse},
    {Py_tp_clear, jitfunction_clear},
    {Py_tp_call, PyVectorcall_Call},
    {Py_tp_descr_get, jitfunction_descr_get},
    {Py_tp_repr, jitfunction_repr},
    {Py_tp_methods, jitfunction_methods},
    {Py_tp_getset, jitfunction_getset},
    {Py_tp_members, jitfunction_members},
    {Py_tp_doc, "A function compiled by rjit at its first call (what @rjit.jit returns).\n\n"
                "Calls, binds as a method and introspects like the wrapped function; py_func "
                "(and __wrapped__) is the original."},
    {0, NULL},
};

static PyType_Spec jitfunction_spec = {
    .name = "rjit.JitFunction",
    .basicsize = sizeof(JitFunction),
    .itemsize = 0,
    /* METHOD_DESCRIPTOR: `obj.method(x)` calls us with obj prepended, no bound method made. */
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL |
             Py_TPFLAGS_METHOD_DESCRIPTOR | Py_TPFLAGS_IMMUTABLETYPE,
    .slots = jitfunction_slots,
};

PyObject *rjit_shim_jitfunction_type(void) { return PyType_FromSpec(&jitfunction_spec); }
