/* See rjit_shim.h. Compiled by build.rs with Py_BUILD_CORE against the target's headers. */
#include "rjit_shim.h"

#include <stddef.h>

#include "internal/pycore_ceval.h"
#include "internal/pycore_frame.h"
#include "internal/pycore_interp.h"
#include "internal/pycore_moduleobject.h"
#define NEED_OPCODE_TABLES /* _PyOpcode_Deopt and _PyOpcode_Caches, static in 3.11 */
#include "internal/pycore_opcode.h"
#undef NEED_OPCODE_TABLES

#if PY_VERSION_HEX < 0x030B0000 || PY_VERSION_HEX >= 0x030C0000
#error "this shim is written for CPython 3.11; add the other versions' parts behind #if"
#endif

static const rjit_layout layout = {
    .python_version_hex = PY_VERSION_HEX,
    .frame_code = offsetof(_PyInterpreterFrame, f_code),
    .tstate_cframe = offsetof(PyThreadState, cframe),
    .cframe_use_tracing = offsetof(_PyCFrame, use_tracing),
    .code_flags = offsetof(PyCodeObject, co_flags),
    .code_extra = offsetof(PyCodeObject, co_extra),
    .frame_globals = offsetof(_PyInterpreterFrame, f_globals),
    .frame_builtins = offsetof(_PyInterpreterFrame, f_builtins),
    .frame_previous = offsetof(_PyInterpreterFrame, previous),
    .frame_prev_instr = offsetof(_PyInterpreterFrame, prev_instr),
    .frame_stacktop = offsetof(_PyInterpreterFrame, stacktop),
    .frame_localsplus = offsetof(_PyInterpreterFrame, localsplus),
    .cframe_current_frame = offsetof(_PyCFrame, current_frame),
    .code_code_adaptive = offsetof(PyCodeObject, co_code_adaptive),
    .tuple_items = offsetof(PyTupleObject, ob_item),
    .tstate_recursion_remaining = offsetof(PyThreadState, recursion_remaining),
    .tstate_recursion_limit = offsetof(PyThreadState, recursion_limit),
    .frame_func = offsetof(_PyInterpreterFrame, f_func),
    .function_closure = offsetof(PyFunctionObject, func_closure),
    .cell_ref = offsetof(PyCellObject, ob_ref),
    .dict_version = offsetof(PyDictObject, ma_version_tag),
    .long_digits = offsetof(PyLongObject, ob_digit),
    .function_code = offsetof(PyFunctionObject, func_code),
    .module_dict = offsetof(PyModuleObject, md_dict),
    .cfunction_def = offsetof(PyCFunctionObject, m_ml),
    .cfunction_self = offsetof(PyCFunctionObject, m_self),
    .methoddef_function = offsetof(PyMethodDef, ml_meth),
    .tstate_exception = offsetof(PyThreadState, curexc_type),
};

_Static_assert(sizeof(((PyThreadState *)0)->cframe->use_tracing) == 1, "use_tracing is read as a byte");
_Static_assert(sizeof(((_PyInterpreterFrame *)0)->stacktop) == 4, "stacktop is written as an int");
_Static_assert(sizeof(((PyThreadState *)0)->recursion_remaining) == 4, "recursion_remaining is an int");
_Static_assert(sizeof(((PyDictObject *)0)->ma_version_tag) == 8, "ma_version_tag is read as a uint64");
_Static_assert(sizeof(digit) == 4 && PyLong_SHIFT == 30, "ints are read as 30-bit digits");

const int *rjit_shim_eval_breaker_address(void) {
    /* _Py_atomic_int wraps an int; compiled code reads it with a plain load, as the
     * interpreter's relaxed atomic load compiles on x86-64 and AArch64. */
    return (const int *)&PyInterpreterState_Get()->ceval.eval_breaker._value;
}

const rjit_layout *rjit_shim_layout(void) { return &layout; }

uint32_t rjit_shim_layout_size(void) { return (uint32_t)sizeof(rjit_layout); }

rjit_eval_frame_fn rjit_shim_get_eval_frame(void) {
    return _PyInterpreterState_GetEvalFrameFunc(PyInterpreterState_Get());
}

void rjit_shim_set_eval_frame(rjit_eval_frame_fn fn) {
    _PyInterpreterState_SetEvalFrameFunc(PyInterpreterState_Get(), fn);
}

rjit_eval_frame_fn rjit_shim_default_eval_frame(void) { return _PyEval_EvalFrameDefault; }

void rjit_shim_before_raise_exit(PyThreadState *tstate) {
    if (tstate->cframe->use_tracing && tstate->c_tracefunc != NULL) {
        tstate->cframe->use_tracing = 0;
    }
}

void rjit_shim_set_function_annotations(PyObject *func, PyObject *annotations) {
    Py_INCREF(annotations);
    Py_XSETREF(((PyFunctionObject *)func)->func_annotations, annotations);
}

int rjit_shim_async_exc_pending(PyThreadState *tstate) { return tstate->async_exc != NULL; }

int rjit_shim_is_finalizing(void) { return _Py_IsFinalizing(); }

int rjit_shim_code_has_loop(PyCodeObject *code) {
    /* The adaptive (quickened) code: specialised opcodes map back through _PyOpcode_Deopt,
     * and each instruction is followed by _PyOpcode_Caches[op] inline CACHE units. */
    const _Py_CODEUNIT *units = _PyCode_CODE(code);
    Py_ssize_t n = Py_SIZE(code);
    for (Py_ssize_t i = 0; i < n; i++) {
        int op = _PyOpcode_Deopt[_Py_OPCODE(units[i])];
        switch (op) {
            /* 3.11 closes `while cond:` loops with the conditional backward jumps. */
            case JUMP_BACKWARD:
            case POP_JUMP_BACKWARD_IF_FALSE:
            case POP_JUMP_BACKWARD_IF_TRUE:
            case POP_JUMP_BACKWARD_IF_NONE:
            case POP_JUMP_BACKWARD_IF_NOT_NONE:
                return 1;
            default:
                break;
        }
        i += _PyOpcode_Caches[op];
    }
    return 0;
}

void rjit_shim_code_hints(PyCodeObject *code, uint8_t *out, Py_ssize_t len) {
    /* The specialised forms CPython's adaptive interpreter chose say which operand types it
     * saw there: a free type profile. Only the forms meaning "both operands exact ints",
     * "both exact floats", or "an exact list (tuple) indexed by an int" are reported;
     * everything else is 0. */
    const _Py_CODEUNIT *units = _PyCode_CODE(code);
    Py_ssize_t n = Py_SIZE(code);
    for (Py_ssize_t i = 0; i < len; i++) {
        out[i] = 0;
    }
    for (Py_ssize_t i = 0; i < n && i < len; i++) {
        int specialised = _Py_OPCODE(units[i]);
        switch (specialised) {
            case BINARY_OP_ADD_INT:
            case BINARY_OP_SUBTRACT_INT:
            case BINARY_OP_MULTIPLY_INT:
            case COMPARE_OP_INT_JUMP:
                out[i] = RJIT_HINT_INT;
                break;
            case BINARY_OP_ADD_FLOAT:
            case BINARY_OP_SUBTRACT_FLOAT:
            case BINARY_OP_MULTIPLY_FLOAT:
            case COMPARE_OP_FLOAT_JUMP:
                out[i] = RJIT_HINT_FLOAT;
                break;
            /* The container of a subscript by an int (its items' types are the consumers'
             * business: their own hints). */
            case BINARY_SUBSCR_LIST_INT:
            case STORE_SUBSCR_LIST_INT:
                out[i] = RJIT_HINT_LIST;
                break;
            case BINARY_SUBSCR_TUPLE_INT:
                out[i] = RJIT_HINT_TUPLE;
                break;
            default:
                break;
        }
        i += _PyOpcode_Caches[_PyOpcode_Deopt[specialised]];
    }
}

const PyMethodDef *rjit_shim_cfunction_def(PyObject *callable, int *nargs) {
    if (!Py_IS_TYPE(callable, &PyCFunction_Type)) {
        return NULL;
    }
    PyMethodDef *def = ((PyCFunctionObject *)callable)->m_ml;
    /* METH_COEXIST only matters when a type's methods are built. */
    switch (def->ml_flags & ~METH_COEXIST) {
        case METH_NOARGS:
            *nargs = 0;
            return def;
        case METH_O:
            *nargs = 1;
            return def;
        default:
            return NULL;
    }
}

PyObject *rjit_shim_call_cfunction(PyObject *callable, PyObject *arg) {
    PyThreadState *tstate = _PyThreadState_GET();
    if (_Py_EnterRecursiveCallTstate(tstate, " while calling a Python object")) {
        return NULL;
    }
    PyObject *result = PyCFunction_GET_FUNCTION(callable)(PyCFunction_GET_SELF(callable), arg);
    _Py_LeaveRecursiveCallTstate(tstate);
    /* The common case of _Py_CheckFunctionResult (a result and no exception) without the
     * call; anything else gets its checks and SystemErrors. */
    if (result != NULL && tstate->curexc_type == NULL) {
        return result;
    }
    return _Py_CheckFunctionResult(tstate, callable, result, NULL);
}
