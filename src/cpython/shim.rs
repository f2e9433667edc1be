//! Declarations of the C shim's functions (pyshim/capi/rjit_shim.h; keep in sync).

use std::ffi::c_int;

use pyo3_ffi as ffi;

use super::{EvalFrameFn, GilCell};

/// Byte offsets of CPython struct fields, computed by the shim with `offsetof`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct Layout {
    pub python_version_hex: u32,
    pub frame_code: u32,
    pub tstate_cframe: u32,
    pub cframe_use_tracing: u32,
    pub code_flags: u32,
    pub code_extra: u32,
    pub frame_globals: u32,
    pub frame_builtins: u32,
    pub frame_previous: u32,
    pub frame_prev_instr: u32,
    pub frame_stacktop: u32,
    pub frame_localsplus: u32,
    pub cframe_current_frame: u32,
    pub code_code_adaptive: u32,
    pub tuple_items: u32,
    pub tstate_recursion_remaining: u32,
    pub tstate_recursion_limit: u32,
    pub frame_func: u32,
    pub function_closure: u32,
    pub cell_ref: u32,
    pub dict_version: u32,
    pub long_digits: u32,
    pub function_code: u32,
    pub module_dict: u32,
    pub cfunction_def: u32,
    pub cfunction_self: u32,
    pub methoddef_function: u32,
    pub tstate_exception: u32,
}

extern "C" {
    fn rjit_shim_layout() -> *const Layout;
    fn rjit_shim_layout_size() -> u32;
    pub fn rjit_shim_get_eval_frame() -> EvalFrameFn;
    pub fn rjit_shim_set_eval_frame(f: EvalFrameFn);
    pub fn rjit_shim_default_eval_frame() -> EvalFrameFn;
    pub fn rjit_shim_code_has_loop(code: *mut ffi::PyCodeObject) -> c_int;
    pub fn rjit_shim_jitfunction_type() -> *mut ffi::PyObject;
    pub fn rjit_shim_eval_breaker_address() -> *const std::ffi::c_int;
    pub fn rjit_shim_before_raise_exit(tstate: *mut ffi::PyThreadState);
    pub fn rjit_shim_async_exc_pending(tstate: *mut ffi::PyThreadState) -> std::ffi::c_int;
    pub fn rjit_shim_set_function_annotations(func: *mut ffi::PyObject, annotations: *mut ffi::PyObject);
    pub fn rjit_shim_is_finalizing() -> c_int;
    pub fn rjit_shim_code_hints(code: *mut ffi::PyCodeObject, out: *mut u8, len: ffi::Py_ssize_t);
    pub fn rjit_shim_cfunction_def(callable: *mut ffi::PyObject, nargs: *mut c_int) -> *const ffi::PyMethodDef;
    pub fn rjit_shim_call_cfunction(callable: *mut ffi::PyObject, arg: *mut ffi::PyObject) -> *mut ffi::PyObject;
    /// CPython's (exported, not in pyo3-ffi): the checks PyObject_Vectorcall makes on a
    /// callee's result (a NULL without an exception, or a result with one: SystemError).
    pub fn _Py_CheckFunctionResult(
        tstate: *mut ffi::PyThreadState,
        callable: *mut ffi::PyObject,
        result: *mut ffi::PyObject,
        where_: *const std::ffi::c_char,
    ) -> *mut ffi::PyObject;
}

/// `rjit_shim_code_hints` values.
pub const HINT_INT: u8 = 1;
pub const HINT_FLOAT: u8 = 2;
/// A subscript by an int of an exact list (`BINARY_SUBSCR_LIST_INT`, `STORE_SUBSCR_LIST_INT`).
pub const HINT_LIST: u8 = 3;
/// A subscript by an int of an exact tuple (`BINARY_SUBSCR_TUPLE_INT`).
pub const HINT_TUPLE: u8 = 4;

/// A copy of the shim's layout, loaded by `load_layout` at import so the hook's fast path reads
/// it without an initialisation check. All zero before that (nothing reads it before).
static LAYOUT: GilCell<Layout> = GilCell::new(Layout {
    python_version_hex: 0,
    frame_code: 0,
    tstate_cframe: 0,
    cframe_use_tracing: 0,
    code_flags: 0,
    code_extra: 0,
    frame_globals: 0,
    frame_builtins: 0,
    frame_previous: 0,
    frame_prev_instr: 0,
    frame_stacktop: 0,
    frame_localsplus: 0,
    cframe_current_frame: 0,
    code_code_adaptive: 0,
    tuple_items: 0,
    tstate_recursion_remaining: 0,
    tstate_recursion_limit: 0,
    frame_func: 0,
    function_closure: 0,
    cell_ref: 0,
    dict_version: 0,
    long_digits: 0,
    function_code: 0,
    module_dict: 0,
    cfunction_def: 0,
    cfunction_self: 0,
    methoddef_function: 0,
    tstate_exception: 0,
});

/// Copies the shim's layout; called once at module import, before the hook can run. Fails if
/// the C and Rust declarations of the struct disagree (a field added on one side only).
pub fn load_layout() -> Result<(), &'static str> {
    // SAFETY: returns a constant.
    if unsafe { rjit_shim_layout_size() } as usize != std::mem::size_of::<Layout>() {
        return Err("rjit's C shim and its Rust side disagree on the layout struct (rjit_shim.h vs src/cpython/shim.rs)");
    }
    // SAFETY: returns a pointer to a static constant in the shim.
    LAYOUT.set(unsafe { *rjit_shim_layout() });
    Ok(())
}

/// The struct offsets of the Python rjit was built for.
#[inline(always)]
pub fn layout() -> Layout {
    LAYOUT.get()
}
