//! Declarations of the C shim's functions (pyshim/capi/rjit_shim.h; keep in sync).

use std::ffi::c_int;

use once_cell::sync::Lazy;
use pyo3_ffi as ffi;

use super::EvalFrameFn;

/// Byte offsets of CPython struct fields, computed by the shim with `offsetof`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct Layout {
    pub python_version_hex: u32,
    pub frame_code: u32,
    pub tstate_cframe: u32,
    pub cframe_use_tracing: u32,
    pub code_flags: u32,
}

extern "C" {
    fn rjit_shim_layout() -> *const Layout;
    pub fn rjit_shim_get_eval_frame() -> EvalFrameFn;
    pub fn rjit_shim_set_eval_frame(f: EvalFrameFn);
    pub fn rjit_shim_default_eval_frame() -> EvalFrameFn;
    pub fn rjit_shim_code_has_loop(code: *mut ffi::PyCodeObject) -> c_int;
}

static LAYOUT: Lazy<Layout> = Lazy::new(|| {
    // SAFETY: returns a pointer to a static constant in the shim.
    unsafe { *rjit_shim_layout() }
});

/// The struct offsets of the Python rjit was built for.
#[inline(always)]
pub fn layout() -> &'static Layout {
    &LAYOUT
}
