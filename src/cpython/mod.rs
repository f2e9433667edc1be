//! The binding layer: every raw access to CPython's internals goes through this module.
//!
//! Struct layouts are never copied by hand: fields the hook reads on its fast path are read at
//! the byte offsets the C shim computed with `offsetof` against the target's own headers
//! (`shim::layout()`); everything else is an exported CPython function or a shim function.
//! The version-specific rules (which field says "tracing is on", which symbol names the
//! co_extra API) live here and in the shim, nowhere else.

pub mod gil_cell;
pub mod shim;

use std::ffi::{c_char, c_int, c_void};
use std::ptr;

use pyo3_ffi as ffi;

pub use gil_cell::GilCell;

/// An opaque `_PyInterpreterFrame` (internal to CPython; only touched through offsets).
#[repr(C)]
pub struct InterpreterFrame {
    _private: [u8; 0],
}

/// The PEP 523 frame evaluation function type. "C-unwind": when the interpreter ends a daemon
/// thread at exit it unwinds the thread with `pthread_exit`, through every frame evaluation;
/// a plain "C" function would abort the process there.
pub type EvalFrameFn =
    unsafe extern "C-unwind" fn(*mut ffi::PyThreadState, *mut InterpreterFrame, c_int) -> *mut ffi::PyObject;

/// A co_extra free function.
pub type FreeFunc = unsafe extern "C" fn(*mut c_void);

// Exported by libpython 3.11 (checked with `nm -D`); the extension is not linked against
// libpython, so a name that is not exported fails at import time, not at build time.
extern "C-unwind" {
    fn _PyEval_EvalFrameDefault(
        tstate: *mut ffi::PyThreadState,
        frame: *mut InterpreterFrame,
        throwflag: c_int,
    ) -> *mut ffi::PyObject;
}

extern "C" {
    fn _PyEval_RequestCodeExtraIndex(free: FreeFunc) -> ffi::Py_ssize_t;
    // 3.12 renames these PyUnstable_Code_{Get,Set}Extra (the old names become header
    // macros): the 3.12 port must route them through the shim.
    fn _PyCode_GetExtra(code: *mut ffi::PyObject, index: ffi::Py_ssize_t, extra: *mut *mut c_void) -> c_int;
    fn _PyCode_SetExtra(code: *mut ffi::PyObject, index: ffi::Py_ssize_t, extra: *mut c_void) -> c_int;
    fn _Py_Dealloc(object: *mut ffi::PyObject);
    // The exported function (pyo3-ffi only has an inline Rust version of it).
    fn PyObject_Vectorcall(
        callable: *mut ffi::PyObject,
        args: *const *mut ffi::PyObject,
        nargsf: usize,
        kwnames: *mut ffi::PyObject,
    ) -> *mut ffi::PyObject;
    fn _Py_CheckRecursiveCall(tstate: *mut ffi::PyThreadState, location: *const c_char) -> c_int;
    fn PyCode_NewEmpty(filename: *const c_char, funcname: *const c_char, firstlineno: c_int) -> *mut ffi::PyObject;
}

/// The address of `_PyEval_EvalFrameDefault`, for generated code's exits.
pub fn eval_frame_default_address() -> usize {
    _PyEval_EvalFrameDefault as *const () as usize
}

/// The address of the exported `PyObject_Vectorcall`, which generated code calls for calls
/// without keyword arguments.
pub fn vectorcall_address() -> usize {
    PyObject_Vectorcall as *const () as usize
}

/// The address of `_Py_CheckRecursiveCall`, which generated code calls past the recursion limit.
pub fn check_recursion_address() -> usize {
    _Py_CheckRecursiveCall as *const () as usize
}

/// The address of `_Py_Dealloc`, which generated code calls when a count drops to zero.
pub fn dealloc_address() -> usize {
    _Py_Dealloc as *const () as usize
}

/// The address of the interpreter's eval breaker.
pub fn eval_breaker_address() -> *const c_int {
    // SAFETY: returns the address of a field of the (long-lived) interpreter state.
    unsafe { shim::rjit_shim_eval_breaker_address() }
}

/// Runs a frame in CPython's interpreter.
///
/// # Safety
/// Same contract as `_PyEval_EvalFrameDefault`: called from an eval-frame hook with the
/// arguments it received, GIL held.
#[inline(always)]
pub unsafe fn eval_frame_in_interpreter(
    tstate: *mut ffi::PyThreadState,
    frame: *mut InterpreterFrame,
    throwflag: c_int,
) -> *mut ffi::PyObject {
    _PyEval_EvalFrameDefault(tstate, frame, throwflag)
}

/// Reads a field of type `T` at a byte offset from `base`.
#[inline(always)]
unsafe fn field<T: Copy>(base: *const c_void, offset: u32) -> T {
    ptr::read(base.cast::<u8>().add(offset as usize).cast::<T>())
}

/// The code object a frame runs (borrowed).
///
/// # Safety
/// `frame` must be a live interpreter frame.
#[inline(always)]
pub unsafe fn frame_code(frame: *mut InterpreterFrame) -> *mut ffi::PyObject {
    field(frame.cast(), shim::layout().frame_code)
}

/// The frame's globals dictionary (borrowed).
///
/// # Safety
/// `frame` must be a live interpreter frame.
pub unsafe fn frame_globals(frame: *mut InterpreterFrame) -> *mut ffi::PyObject {
    field(frame.cast(), shim::layout().frame_globals)
}

/// The frame's builtins dictionary (borrowed).
///
/// # Safety
/// `frame` must be a live interpreter frame.
pub unsafe fn frame_builtins(frame: *mut InterpreterFrame) -> *mut ffi::PyObject {
    field(frame.cast(), shim::layout().frame_builtins)
}

/// The frame's `localsplus` array (arguments first).
///
/// # Safety
/// `frame` is a live interpreter frame.
pub unsafe fn frame_locals(frame: *mut InterpreterFrame) -> *const *mut ffi::PyObject {
    frame.cast::<u8>().add(shim::layout().frame_localsplus as usize).cast()
}

/// Whether `sys.settrace`/`sys.setprofile` tracing is on for the calling thread, in which case
/// the interpreter must run the frame so the tracer sees every event.
///
/// # Safety
/// `tstate` must be the current thread state.
#[inline(always)]
pub unsafe fn tracing_active(tstate: *mut ffi::PyThreadState) -> bool {
    // 3.11: `tstate->cframe->use_tracing` (0 or 255). The cframe is the caller's, which is
    // what the interpreter itself consults when it starts this frame.
    let layout = shim::layout();
    let cframe: *const c_void = field(tstate.cast(), layout.tstate_cframe);
    field::<u8>(cframe, layout.cframe_use_tracing) != 0
}

/// How many Python frames deep the thread is (the interpreter's recursion depth).
///
/// # Safety
/// `tstate` must be the current thread state.
#[inline(always)]
pub unsafe fn recursion_depth(tstate: *mut ffi::PyThreadState) -> c_int {
    let layout = shim::layout();
    let limit: c_int = field(tstate.cast(), layout.tstate_recursion_limit);
    let remaining: c_int = field(tstate.cast(), layout.tstate_recursion_remaining);
    limit - remaining
}

/// `co_flags` of a code object.
///
/// # Safety
/// `code` must be a live code object.
#[inline(always)]
pub unsafe fn code_flags(code: *mut ffi::PyObject) -> c_int {
    field(code.cast(), shim::layout().code_flags)
}

/// Flags marking code whose frames outlive a call: generators, coroutines, async generators.
pub const CO_SUSPENDABLE: c_int = 0x0020 | 0x0080 | 0x0200;

/// Whether the code object contains a loop (a backward jump).
///
/// # Safety
/// `code` must be a live code object; GIL held.
pub unsafe fn code_has_loop(code: *mut ffi::PyObject) -> bool {
    shim::rjit_shim_code_has_loop(code.cast()) != 0
}

/// Reserves a co_extra slot whose values are freed with `free` when the code object dies.
/// Returns `None` when the interpreter has no slots left.
///
/// # Safety
/// GIL held.
pub unsafe fn request_code_extra_index(free: FreeFunc) -> Option<ffi::Py_ssize_t> {
    let index = _PyEval_RequestCodeExtraIndex(free);
    (index >= 0).then_some(index)
}

/// Whether `code_extra` may read co_extra directly (checked at import by
/// `check_direct_code_extra`); otherwise it calls `_PyCode_GetExtra`.
static DIRECT_CODE_EXTRA: GilCell<bool> = GilCell::new(false);

/// Whether co_extra can be read inline (see `code_extra`).
pub fn direct_code_extra() -> bool {
    DIRECT_CODE_EXTRA.get()
}

/// The pointer stored in a code object's co_extra slot (null if none). `DIRECT` reads the
/// field inline and may only be true when `direct_code_extra()` is; callers on the hook's
/// fast path pick the variant once, so the fast path has no call and no branch for it.
///
/// # Safety
/// `code` must be a code object, `index` a slot from `request_code_extra_index`; GIL held.
#[inline(always)]
pub unsafe fn code_extra<const DIRECT: bool>(code: *mut ffi::PyObject, index: ffi::Py_ssize_t) -> *mut c_void {
    if DIRECT {
        // `co_extra` points at `{ Py_ssize_t ce_size; void *ce_extras[]; }` (CPython's
        // _PyCodeObjectExtra, private to codeobject.c in 3.11, so its layout is verified at
        // import rather than assumed). Reading it inline saves a call on every Python call.
        let extra: *const ffi::Py_ssize_t = field(code.cast(), shim::layout().code_extra);
        if extra.is_null() || *extra <= index {
            return ptr::null_mut();
        }
        return *extra.add(1 + index as usize).cast::<*mut c_void>();
    }
    let mut extra = ptr::null_mut();
    // Cannot fail for a code object and a valid index; on failure `extra` stays null.
    _PyCode_GetExtra(code, index, &mut extra);
    extra
}

/// A value that marks the probe code object of `check_direct_code_extra`; the co_extra free
/// function must ignore it.
pub static PROBE_MARK: u8 = 0;

/// Turns on the inline co_extra read if it agrees with `_PyCode_GetExtra` on a probe code
/// object whose slot `index` holds `&PROBE_MARK`.
///
/// # Safety
/// GIL held; `index` from `request_code_extra_index` with a free function that ignores
/// `&PROBE_MARK`.
pub unsafe fn check_direct_code_extra(index: ffi::Py_ssize_t) {
    let probe = PyCode_NewEmpty(c"<rjit>".as_ptr(), c"probe".as_ptr(), 1);
    if probe.is_null() {
        ffi::PyErr_Clear();
        return;
    }
    let mark = ptr::addr_of!(PROBE_MARK) as *mut c_void;
    if set_code_extra(probe, index, mark) {
        let via_api = code_extra::<false>(probe, index);
        let direct = code_extra::<true>(probe, index);
        DIRECT_CODE_EXTRA.set(via_api == mark && direct == mark);
    } else {
        ffi::PyErr_Clear();
    }
    ffi::Py_DECREF(probe);
}

/// Stores a pointer in a code object's co_extra slot.
///
/// # Safety
/// As `code_extra`; the slot must be empty (CPython frees a previous value).
pub unsafe fn set_code_extra(code: *mut ffi::PyObject, index: ffi::Py_ssize_t, value: *mut c_void) -> bool {
    _PyCode_SetExtra(code, index, value) == 0
}

/// The interpreter's current frame evaluation function.
///
/// # Safety
/// GIL held.
pub unsafe fn current_eval_frame() -> EvalFrameFn {
    shim::rjit_shim_get_eval_frame()
}

/// Installs a frame evaluation function for the current interpreter.
///
/// # Safety
/// GIL held.
pub unsafe fn set_eval_frame(f: EvalFrameFn) {
    shim::rjit_shim_set_eval_frame(f)
}

/// The interpreter's own evaluation function: installing it means "no hook".
pub fn default_eval_frame() -> EvalFrameFn {
    // SAFETY: returns a function pointer constant.
    unsafe { shim::rjit_shim_default_eval_frame() }
}

/// The source line of code unit `unit` of a code object (None where it has no line).
///
/// # Safety
/// `code` is a live code object; GIL held.
pub unsafe fn code_line(code: *mut ffi::PyObject, unit: u32) -> Option<u32> {
    let byte_offset = c_int::try_from(unit.saturating_mul(2)).ok()?;
    let line = ffi::PyCode_Addr2Line(code.cast(), byte_offset);
    u32::try_from(line).ok()
}
