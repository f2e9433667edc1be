/* See rjit_shim.h. Compiled by build.rs with Py_BUILD_CORE against the target's headers. */
#include "rjit_shim.h"

#include <stddef.h>

#include "internal/pycore_frame.h"
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
};

const rjit_layout *rjit_shim_layout(void) { return &layout; }

rjit_eval_frame_fn rjit_shim_get_eval_frame(void) {
    return _PyInterpreterState_GetEvalFrameFunc(PyInterpreterState_Get());
}

void rjit_shim_set_eval_frame(rjit_eval_frame_fn fn) {
    _PyInterpreterState_SetEvalFrameFunc(PyInterpreterState_Get(), fn);
}

rjit_eval_frame_fn rjit_shim_default_eval_frame(void) { return _PyEval_EvalFrameDefault; }

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
