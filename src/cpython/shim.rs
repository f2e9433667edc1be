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
}

extern "C" {
    fn rjit_shim_layout() -> *const Layout;
    pub fn rjit_shim_get_eval_frame() -> EvalFrameFn;
    pub fn rjit_shim_set_eval_frame(f: EvalFrameFn);
    pub fn rjit_shim_default_eval_frame() -> EvalFrameFn;
    pub fn rjit_shim_code_has_loop(code: *mut ffi::PyCodeObject) -> c_int;
    pub fn rjit_shim_jitfunction_type() -> *mut ffi::PyObject;
}

/// A copy of the shim's layout, loaded by `load_layout` at import so the hook's fast path reads
/// it without an initialisation check. All zero before that (nothing reads it before).
static LAYOUT: GilCell<Layout> = GilCell::new(Layout {
    python_version_hex: 0,
    frame_code: 0,
    tstate_cframe: 0,
    cframe_use_tracing: 0,
    code_flags: 0,
    code_extra: 0,
});

/// Copies the shim's layout; called once at module import, before the hook can run.
pub fn load_layout() {
    // SAFETY: returns a pointer to a static constant in the shim.
    LAYOUT.set(unsafe { *rjit_shim_layout() });
}

/// The struct offsets of the Python rjit was built for.
#[inline(always)]
pub fn layout() -> Layout {
    LAYOUT.get()
}
