/* The C shim: the only code in rjit that includes CPython's internal headers.
 *
 * Rust keeps no hand-copied CPython struct layouts. What the Rust side reads on hot paths it
 * reads through the offsets in `rjit_layout` (filled here with offsetof against the headers of
 * the Python being built for); everything else goes through the small functions below.
 * Keep this file's declarations in sync with src/cpython/shim.rs.
 */
#ifndef RJIT_SHIM_H
#define RJIT_SHIM_H

#include <stdint.h>
#include <Python.h>

struct _PyInterpreterFrame;
typedef PyObject *(*rjit_eval_frame_fn)(PyThreadState *, struct _PyInterpreterFrame *, int);

/* Byte offsets of the fields the hook's fast path and the generated code read and write. */
typedef struct {
    uint32_t python_version_hex;  /* PY_VERSION_HEX the shim was compiled against */
    uint32_t frame_code;          /* _PyInterpreterFrame.f_code */
    uint32_t tstate_cframe;       /* PyThreadState.cframe (3.11) */
    uint32_t cframe_use_tracing;  /* _PyCFrame.use_tracing (3.11) */
    uint32_t code_flags;          /* PyCodeObject.co_flags */
    uint32_t code_extra;          /* PyCodeObject.co_extra */
    uint32_t frame_globals;       /* _PyInterpreterFrame.f_globals */
    uint32_t frame_builtins;      /* _PyInterpreterFrame.f_builtins */
    uint32_t frame_previous;      /* _PyInterpreterFrame.previous */
    uint32_t frame_prev_instr;    /* _PyInterpreterFrame.prev_instr (3.11) */
    uint32_t frame_stacktop;      /* _PyInterpreterFrame.stacktop (an int) */
    uint32_t frame_localsplus;    /* _PyInterpreterFrame.localsplus */
    uint32_t cframe_current_frame;/* _PyCFrame.current_frame */
    uint32_t code_code_adaptive;  /* PyCodeObject.co_code_adaptive: the first code unit */
    uint32_t tuple_items;         /* PyTupleObject.ob_item */
    uint32_t tstate_recursion_remaining; /* PyThreadState.recursion_remaining (an int, 3.11) */
    uint32_t tstate_recursion_limit;     /* PyThreadState.recursion_limit (an int, 3.11) */
    uint32_t frame_func;          /* _PyInterpreterFrame.f_func */
    uint32_t function_closure;    /* PyFunctionObject.func_closure */
    uint32_t cell_ref;            /* PyCellObject.ob_ref */
    uint32_t dict_version;        /* PyDictObject.ma_version_tag (a uint64) */
    uint32_t long_digits;         /* PyLongObject.ob_digit (3.11: sign and size in ob_size) */
    uint32_t function_code;       /* PyFunctionObject.func_code */
    uint32_t module_dict;         /* PyModuleObject.md_dict */
    uint32_t cfunction_def;       /* PyCFunctionObject.m_ml */
    uint32_t cfunction_self;      /* PyCFunctionObject.m_self */
    uint32_t methoddef_function;  /* PyMethodDef.ml_meth */
    uint32_t tstate_exception;    /* PyThreadState.curexc_type (3.11) */
} rjit_layout;

const rjit_layout *rjit_shim_layout(void);
/* sizeof(rjit_layout): the Rust side checks it against its copy of the struct at import. */
uint32_t rjit_shim_layout_size(void);

/* PEP 523: the current interpreter's frame evaluation function. */
rjit_eval_frame_fn rjit_shim_get_eval_frame(void);
void rjit_shim_set_eval_frame(rjit_eval_frame_fn fn);
/* The interpreter's own evaluation function (what "no hook" means). */
rjit_eval_frame_fn rjit_shim_default_eval_frame(void);

/* The address of the interpreter's eval breaker (an int that is nonzero when signals,
 * pending calls or a GIL drop request wait): generated loops test it on every back-edge. */
const int *rjit_shim_eval_breaker_address(void);

/* Called by compiled code just before it hands a frame with a pending exception to the
 * interpreter. If a tracer was installed while the compiled code ran, the interpreter's
 * "throw" entry would report a spurious 'call' event for a frame that is already running;
 * clearing use_tracing avoids it, and the interpreter turns it back on when it reports the
 * 'exception' event (PyThreadState_LeaveTracing recomputes it), so the lines after are traced. */
void rjit_shim_before_raise_exit(PyThreadState *tstate);

/* Stores MAKE_FUNCTION's annotations as the interpreter does: 3.11 passes them as a flat
 * tuple (name, value, ...) that the function turns into a dict when first asked, which
 * PyFunction_SetAnnotations (dict or None only) refuses. Takes a new reference. */
void rjit_shim_set_function_annotations(PyObject *func, PyObject *annotations);

/* 1 once the interpreter is shutting down (modules are being torn down). */
int rjit_shim_is_finalizing(void);

/* 1 if an asynchronous exception (PyThreadState_SetAsyncExc) waits for this thread. */
int rjit_shim_async_exc_pending(PyThreadState *tstate);

/* 1 if the code object's bytecode has a backward jump (a loop), else 0. */
int rjit_shim_code_has_loop(PyCodeObject *code);

/* Operand hints per code unit (see rjit_shim_code_hints). */
#define RJIT_HINT_INT 1
#define RJIT_HINT_FLOAT 2
#define RJIT_HINT_LIST 3
#define RJIT_HINT_TUPLE 4
/* Writes, for each of the first `len` code units of the code object, the operand types
 * CPython's specialising interpreter saw at the instruction starting there (RJIT_HINT_*), or
 * 0. */
void rjit_shim_code_hints(PyCodeObject *code, uint8_t *out, Py_ssize_t len);

/* If `callable` is exactly a builtin function or method (builtin_function_or_method) taking no
 * argument (METH_NOARGS) or one (METH_O), its PyMethodDef and that argument count (0 or 1);
 * else NULL. */
const PyMethodDef *rjit_shim_cfunction_def(PyObject *callable, int *nargs);

/* Calls such a builtin as the interpreter's CALL does (cfunction_vectorcall_NOARGS / _O and
 * PyObject_Vectorcall): the recursion check, its C function on its self and `arg` (NULL for
 * METH_NOARGS), then _Py_CheckFunctionResult. A new reference, or NULL with an exception set. */
PyObject *rjit_shim_call_cfunction(PyObject *callable, PyObject *arg);

/* The type rjit._rjit.JitFunction (a new reference), see jitfunction.c. */
PyObject *rjit_shim_jitfunction_type(void);

/* Implemented in Rust (src/hook.rs): install the hook for the duration of an @rjit.jit call.
 * enter returns 1 if the caller must call exit afterwards. Neither calls Python nor fails. */
int rjit_scope_enter(void);
void rjit_scope_exit(void);

#endif
