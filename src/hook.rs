//! The PEP 523 frame-evaluation hook: counts calls, decides when a function is hot, and runs
//! every frame it does not handle in CPython's interpreter.
//!
//! Two ways to have the hook installed:
//! - whole-program mode, `rjit.enable()`: every function is counted and compiled when hot;
//! - scoped mode, a call of an `@rjit.jit` function: the hook is installed for the duration of
//!   the outermost such call, and only code marked by `@rjit.jit` gets an entry. So `@jit`
//!   alone costs the rest of the program nothing.

use std::ffi::c_int;
use std::panic::{catch_unwind, AssertUnwindSafe};

use pyo3_ffi as ffi;

use crate::cpython::{self, EvalFrameFn, GilCell, InterpreterFrame};
use crate::state::{self, CodeEntry};

/// Whole-program mode is on (`enable()` was called and not undone).
static WHOLE_PROGRAM: GilCell<bool> = GilCell::new(false);
/// Nesting depth of `@rjit.jit` calls in progress (scoped mode).
static SCOPE_DEPTH: GilCell<u32> = GilCell::new(0);
/// `RJIT=0`: rjit never installs its hook.
static KILLED: GilCell<bool> = GilCell::new(false);
/// The deepest Python recursion the native stack is known to carry while the hook is in place.
/// Without a hook, CPython 3.11 runs Python-to-Python calls without growing the C stack, so a
/// program may raise the recursion limit to 10**5 and more; with any PEP 523 hook each call
/// takes C stack (about 150 bytes measured, budgeted at 256), and past the stack's end the
/// process would crash. Set from the stack size limit at import (`set_depth_limit`).
static DEPTH_LIMIT: GilCell<c_int> = GilCell::new(c_int::MAX);

/// Bytes of native stack budgeted per Python call while the hook is installed.
const STACK_PER_CALL: u64 = 256;

/// Derives `DEPTH_LIMIT` from a thread stack size in bytes (None: unlimited).
pub fn set_depth_limit(stack_bytes: Option<u64>) {
    let limit = stack_bytes.map_or(c_int::MAX, |bytes| (bytes / STACK_PER_CALL).min(c_int::MAX as u64) as c_int);
    DEPTH_LIMIT.set(limit);
}

/// The recursion depth from which starting a frame could overflow the native stack (see
/// `DEPTH_LIMIT`); compiled direct calls refuse to go deeper too.
pub fn depth_limit() -> c_int {
    DEPTH_LIMIT.get()
}

/// Whether starting one more frame could overflow the native stack (see `DEPTH_LIMIT`).
#[inline(always)]
unsafe fn too_deep(tstate: *mut ffi::PyThreadState) -> bool {
    cpython::recursion_depth(tstate) >= DEPTH_LIMIT.get()
}

/// Refuses to start a frame that could overflow the native stack: RecursionError instead of a
/// crash (the caller releases the frame, as after the interpreter's own recursion check).
#[cold]
#[inline(never)]
unsafe fn native_stack_exhausted() -> *mut ffi::PyObject {
    ffi::PyErr_SetString(
        ffi::PyExc_RecursionError,
        c"maximum recursion depth exceeded (the native stack is nearly full: with rjit enabled each Python call uses it)".as_ptr(),
    );
    std::ptr::null_mut()
}

/// Why the hook could not be installed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstallError {
    /// Another PEP 523 evaluation function (a debugger, another JIT) is installed.
    Foreign,
}

/// The frame evaluation function of whole-program mode.
///
/// The fast path (an entry exists, the function is not hot) is a few loads, an add and a
/// compare, then a tail call into the interpreter: it runs on every Python call. Every call
/// here is in tail position, so the function saves no registers and adds no stack frame; the
/// rare paths live in out-of-line functions that end the same way. `DIRECT`: see
/// `cpython::code_extra`; `our_hook` picks the variant.
unsafe extern "C-unwind" fn whole_program_eval_frame<const DIRECT: bool>(
    tstate: *mut ffi::PyThreadState,
    frame: *mut InterpreterFrame,
    throwflag: c_int,
) -> *mut ffi::PyObject {
    // `throwflag`: a generator is being thrown into; tracing: the tracer must see every event.
    if throwflag == 0 && !cpython::tracing_active(tstate) {
        match state::entry_of_with::<DIRECT>(cpython::frame_code(frame)) {
            Some(entry) => {
                if !entry.is_passthrough() {
                    if too_deep(tstate) {
                        return native_stack_exhausted();
                    }
                    if entry.count_call() {
                        return hot_call(tstate, frame, entry);
                    }
                }
                if let Some(native) = entry.native() {
                    return native(tstate, frame);
                }
            }
            None => return first_call(tstate, frame),
        }
    }
    cpython::eval_frame_in_interpreter(tstate, frame, throwflag)
}

/// The frame evaluation function of scoped mode (an `@rjit.jit` call is running, whole-program
/// mode is off): only code marked by `@rjit.jit` is counted and compiled.
unsafe extern "C-unwind" fn scoped_eval_frame<const DIRECT: bool>(
    tstate: *mut ffi::PyThreadState,
    frame: *mut InterpreterFrame,
    throwflag: c_int,
) -> *mut ffi::PyObject {
    if throwflag == 0 && !cpython::tracing_active(tstate) {
        let code = cpython::frame_code(frame);
        // Generator-like frames are resumed, not started: they are never refused.
        if too_deep(tstate) && cpython::code_flags(code) & cpython::CO_SUSPENDABLE == 0 {
            return native_stack_exhausted();
        }
        if let Some(entry) = state::entry_of_with::<DIRECT>(code) {
            if entry.is_forced() && !entry.is_passthrough() && entry.count_call() {
                return hot_call(tstate, frame, entry);
            }
            if let Some(native) = entry.native() {
                return native(tstate, frame);
            }
        }
    }
    cpython::eval_frame_in_interpreter(tstate, frame, throwflag)
}

/// The first call of a code object seen in whole-program mode: make its entry, count the call.
#[cold]
#[inline(never)]
unsafe fn first_call(tstate: *mut ffi::PyThreadState, frame: *mut InterpreterFrame) -> *mut ffi::PyObject {
    let code = cpython::frame_code(frame);
    // A panic here must not unwind into the interpreter: run the frame uncounted instead.
    let entry = catch_unwind(AssertUnwindSafe(|| state::entry_or_create(code))).ok().flatten();
    if entry.is_some_and(|e| !e.is_passthrough()) && too_deep(tstate) {
        return native_stack_exhausted();
    }
    match entry {
        Some(entry) if !entry.is_passthrough() && entry.count_call() => hot_call(tstate, frame, entry),
        _ => cpython::eval_frame_in_interpreter(tstate, frame, 0),
    }
}

/// A call that crossed the function's hot limit: compile it (once), then run the frame.
#[cold]
#[inline(never)]
unsafe fn hot_call(
    tstate: *mut ffi::PyThreadState,
    frame: *mut InterpreterFrame,
    entry: &CodeEntry,
) -> *mut ffi::PyObject {
    // The panic guard covers compilation only: nothing between here and the interpreter may
    // catch an unwind (see `EvalFrameFn`).
    let code = cpython::frame_code(frame);
    let args = cpython::frame_locals(frame);
    let globals = cpython::frame_globals(frame);
    let builtins = cpython::frame_builtins(frame);
    if let Err(panic) = catch_unwind(AssertUnwindSafe(|| state::on_hot(entry, code, args, globals, builtins))) {
        ffi::PyErr_Clear();
        state::internal_error(entry, panic_message(&panic));
    }
    match entry.native() {
        Some(native) => native(tstate, frame),
        None => cpython::eval_frame_in_interpreter(tstate, frame, 0),
    }
}

/// The text of a caught panic.
pub fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_owned()
    }
}

fn same_fn(a: EvalFrameFn, b: EvalFrameFn) -> bool {
    a as usize == b as usize
}

/// rjit's evaluation function for the current mode, in the variant this interpreter allows.
fn wanted_hook() -> EvalFrameFn {
    match (WHOLE_PROGRAM.get(), cpython::direct_code_extra()) {
        (true, true) => whole_program_eval_frame::<true>,
        (true, false) => whole_program_eval_frame::<false>,
        (false, true) => scoped_eval_frame::<true>,
        (false, false) => scoped_eval_frame::<false>,
    }
}

/// Whether `f` is one of rjit's evaluation functions.
fn is_ours(f: EvalFrameFn) -> bool {
    let ours: [EvalFrameFn; 4] = [
        whole_program_eval_frame::<true>,
        whole_program_eval_frame::<false>,
        scoped_eval_frame::<true>,
        scoped_eval_frame::<false>,
    ];
    ours.iter().any(|&o| same_fn(o, f))
}

/// Whether one of rjit's evaluation functions is installed right now.
fn hook_is_installed() -> bool {
    // SAFETY: GIL held by every caller.
    unsafe { is_ours(cpython::current_eval_frame()) }
}

/// Installs the hook for the current mode (replacing rjit's other variant if that is in). Never
/// replaces someone else's.
fn install() -> Result<(), InstallError> {
    // SAFETY: GIL held by every caller.
    unsafe {
        let current = cpython::current_eval_frame();
        let wanted = wanted_hook();
        if same_fn(current, wanted) {
            Ok(())
        } else if is_ours(current) || same_fn(current, cpython::default_eval_frame()) {
            cpython::set_eval_frame(wanted);
            Ok(())
        } else {
            Err(InstallError::Foreign)
        }
    }
}

/// Restores the interpreter's evaluation function, if ours is installed (and only then: a
/// debugger that replaced it keeps its own).
fn uninstall() {
    if hook_is_installed() {
        // SAFETY: GIL held by every caller.
        unsafe { cpython::set_eval_frame(cpython::default_eval_frame()) }
    }
}

/// `RJIT=0`: from now on rjit never installs its hook.
pub fn kill() {
    KILLED.set(true);
    WHOLE_PROGRAM.set(false);
    uninstall();
}

/// Turns on whole-program mode. Returns Ok(false) when `RJIT=0` keeps rjit off.
pub fn enable() -> Result<bool, InstallError> {
    if KILLED.get() {
        return Ok(false);
    }
    WHOLE_PROGRAM.set(true);
    install().inspect_err(|_| WHOLE_PROGRAM.set(false))?;
    Ok(true)
}

/// Turns off whole-program mode. The (scoped) hook stays while an `@rjit.jit` call runs.
pub fn disable() {
    WHOLE_PROGRAM.set(false);
    if SCOPE_DEPTH.get() == 0 {
        uninstall();
    } else if hook_is_installed() {
        // Switch to the scoped variant; cannot fail since ours is in place.
        let _ = install();
    }
}

/// Whether whole-program mode is on and the hook is in place.
pub fn enabled() -> bool {
    WHOLE_PROGRAM.get() && hook_is_installed()
}

/// Starts an `@rjit.jit` call: installs the hook unless whole-program mode has it in already.
/// Returns whether `scope_exit` must follow (false when `RJIT=0` or a foreign hook is in the
/// way: the call then simply runs without rjit).
pub fn scope_enter() -> bool {
    if KILLED.get() || install().is_err() {
        return false;
    }
    SCOPE_DEPTH.set(SCOPE_DEPTH.get() + 1);
    true
}

/// Ends an `@rjit.jit` call started by a successful `scope_enter`.
pub fn scope_exit() {
    let depth = SCOPE_DEPTH.get().saturating_sub(1);
    SCOPE_DEPTH.set(depth);
    if depth == 0 && !WHOLE_PROGRAM.get() {
        uninstall();
    }
}

/// `scope_enter` for the C wrapper type (pyshim/capi/jitfunction.c). Returns 1 if
/// `rjit_scope_exit` must follow.
#[no_mangle]
pub extern "C" fn rjit_scope_enter() -> c_int {
    catch_unwind(scope_enter).map_or(0, c_int::from)
}

/// `scope_exit` for the C wrapper type.
#[no_mangle]
pub extern "C" fn rjit_scope_exit() {
    let _ = catch_unwind(scope_exit);
}

/// Runs `call` as an `@rjit.jit` call would run (between `scope_enter` and `scope_exit`).
pub fn with_scope<R>(call: impl FnOnce() -> R) -> R {
    if !scope_enter() {
        return call();
    }
    // Ends the scope on unwind too.
    struct Exit;
    impl Drop for Exit {
        fn drop(&mut self) {
            scope_exit();
        }
    }
    let _exit = Exit;
    call()
}

/// A trivial evaluation function that is not rjit's, standing for a debugger or another JIT
/// in tests of `enable()`'s refusal to replace a foreign hook.
unsafe extern "C-unwind" fn foreign_eval_frame_for_tests(
    tstate: *mut ffi::PyThreadState,
    frame: *mut InterpreterFrame,
    throwflag: c_int,
) -> *mut ffi::PyObject {
    cpython::eval_frame_in_interpreter(tstate, frame, throwflag)
}

/// Tests only: installs (true) or removes (false) `foreign_eval_frame_for_tests`. Returns
/// false if something else was in the way.
pub fn set_foreign_hook_for_tests(on: bool) -> bool {
    // SAFETY: GIL held by the caller.
    unsafe {
        let current = cpython::current_eval_frame();
        let (from, to): (EvalFrameFn, EvalFrameFn) = if on {
            (cpython::default_eval_frame(), foreign_eval_frame_for_tests)
        } else {
            (foreign_eval_frame_for_tests, cpython::default_eval_frame())
        };
        if !same_fn(current, from) {
            return false;
        }
        cpython::set_eval_frame(to);
        true
    }
}
