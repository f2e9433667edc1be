//! Iteration, calls and the eval breaker: FOR_ITER, CALL, and what the interpreter does at a
//! loop back-edge when its eval breaker is set.

use std::ffi::c_int;
use std::ptr;

use pyo3_ffi as ffi;
use pyo3_ffi::PyObject;

use super::{guard, internal_error};

/// FOR_ITER: the iterator's next item through its type's `tp_iternext` (a new reference).
/// NULL without an exception when the iterator is exhausted (a StopIteration it raised is
/// cleared, as the interpreter does); NULL with the exception set for any other error. The
/// caller tells the two NULLs apart with `PyErr_Occurred()`. Borrows `iter`.
///
/// (The interpreter also reports the StopIteration to a `sys.settrace` function; compiled code
/// never runs while tracing is on.)
///
/// # Safety
/// GIL held; `iter` is a live iterator (as `PyObject_GetIter` returns).
pub unsafe extern "C-unwind" fn rjit_rt_iter_next(iter: *mut PyObject) -> *mut PyObject {
    let Some(next) = (*ffi::Py_TYPE(iter)).tp_iternext else {
        internal_error("FOR_ITER on an object that is not an iterator");
        return ptr::null_mut();
    };
    let item = next(iter);
    // (With no exception set, PyErr_ExceptionMatches is 0: plain exhaustion.)
    if item.is_null() && ffi::PyErr_ExceptionMatches(ffi::PyExc_StopIteration) != 0 {
        ffi::PyErr_Clear();
    }
    item
}

/// CALL: `callable(*positional, **keywords)` through `PyObject_Vectorcall`, where `args` holds
/// `nargs` arguments and `kwnames` is NULL or a tuple of keyword names whose values are the
/// last `len(kwnames)` of them (CALL after KW_NAMES). Borrows everything. New reference, or
/// NULL with an exception set.
///
/// Unlike the interpreter, `PY_VECTORCALL_ARGUMENTS_OFFSET` is not passed: `args[-1]` is not
/// known to be writable. Callees produce the same results without it.
///
/// # Safety
/// GIL held; `callable` is a live object, `args` points at `nargs` live objects (may be NULL
/// when `nargs` is 0), `kwnames` is NULL or a live tuple of str.
pub unsafe extern "C-unwind" fn rjit_rt_call(
    callable: *mut PyObject,
    args: *const *mut PyObject,
    nargs: usize,
    kwnames: *mut PyObject,
) -> *mut PyObject {
    let positional = guard(|| {
        let keywords = if kwnames.is_null() {
            0
        } else if ffi::PyTuple_Check(kwnames) != 0 {
            ffi::PyTuple_GET_SIZE(kwnames) as usize
        } else {
            return Err("CALL keyword names are not a tuple");
        };
        nargs.checked_sub(keywords).ok_or("CALL with more keyword names than arguments")
    });
    match positional {
        Some(positional) => ffi::PyObject_Vectorcall(callable, args, positional, kwnames),
        None => ptr::null_mut(),
    }
}

/// What the interpreter does at a loop back-edge when its eval breaker is set (3.11's
/// `eval_frame_handle_pending`): run the Python signal handlers and the pending calls
/// (`Py_MakePendingCalls`, which does so only in the main thread of the main interpreter; an
/// exception from a handler, e.g. KeyboardInterrupt, is returned as -1 with it set), then
/// release the GIL and take it back, so that a thread that asked for it runs first. `tstate`
/// is the calling thread's state; a different one is a fatal error, as in the interpreter.
/// Returns 0, or -1 with an exception set.
///
/// An asynchronous exception (`PyThreadState_SetAsyncExc`) is not raised here: reading and
/// clearing it needs CPython internals (`tstate->async_exc` and the interpreter's
/// `pending.async_exc` flag). It keeps the eval breaker set, so generated code that still
/// sees the breaker set after this returns should leave to the interpreter, whose next
/// back-edge raises it.
///
/// # Safety
/// GIL held by the calling thread, whose thread state is `tstate`.
pub unsafe extern "C-unwind" fn rjit_rt_eval_breaker(tstate: *mut ffi::PyThreadState) -> c_int {
    if ffi::Py_MakePendingCalls() < 0 {
        return -1;
    }
    if ffi::PyEval_SaveThread() != tstate {
        ffi::Py_FatalError(c"rjit_rt_eval_breaker: tstate mix-up".as_ptr());
    }
    // Waits while a thread that requested the GIL runs. During finalization a daemon thread
    // blocks here for good (pyo3-ffi's wrapper, as Python 3.14 does) instead of unwinding.
    ffi::PyEval_RestoreThread(tstate);
    // An asynchronous exception (PyThreadState_SetAsyncExc) is taken by the interpreter's
    // own eval-breaker handling, which also clears its internal flag: ask the caller to let
    // the interpreter run the instruction.
    if crate::cpython::shim::rjit_shim_async_exc_pending(tstate) != 0 {
        return 1;
    }
    0
}

/// The length of `range(start, stop, step)` where CPython 3.11's `range_iter` makes a
/// `range_iterator` (machine ints) for it; -1 where it does not: step 0 (`range` raises), or
/// a length or items beyond a C long (it makes a `longrange_iterator`). Compiled range loops
/// over such ranges are left to the interpreter.
pub extern "C" fn rjit_rt_range_len(start: i64, stop: i64, step: i64) -> i64 {
    // (Pure arithmetic: nothing here can panic.)
    let length: u64 = if step > 0 && start < stop {
        (stop.wrapping_sub(start) as u64 - 1) / step as u64 + 1
    } else if step < 0 && start > stop {
        (start.wrapping_sub(stop) as u64 - 1) / step.unsigned_abs() + 1
    } else {
        0
    };
    if step == 0 || length > i64::MAX as u64 {
        return -1;
    }
    // CPython also refuses ranges whose `start + len * step` might overflow.
    if length > 0 {
        let overflows = if step > 0 { stop > i64::MAX - (step - 1) } else { stop < i64::MIN + (-1 - step) };
        if overflows {
            return -1;
        }
    }
    length as i64
}

/// CPython 3.11's `rangeiterobject` (checked at import: `compiler::probe_range_iter_layout`).
#[repr(C)]
struct RangeIter {
    ob_base: PyObject,
    index: i64,
    start: i64,
    step: i64,
    len: i64,
}

/// A new `range_iterator` at position `index` of the range with these start, step and
/// length: what `iter(range(...))` advanced `index` times is. NULL with MemoryError if it
/// cannot be allocated.
///
/// # Safety
/// GIL held.
pub unsafe extern "C-unwind" fn rjit_rt_range_iter_at(start: i64, step: i64, len: i64, index: i64) -> *mut PyObject {
    // (The type has no tp_alloc of its own: this is the allocation `PyObject_New` makes.)
    let it = ffi::PyType_GenericAlloc(std::ptr::addr_of_mut!(ffi::PyRangeIter_Type), 0) as *mut RangeIter;
    if !it.is_null() {
        (*it).index = index;
        (*it).start = start;
        (*it).step = step;
        (*it).len = len;
    }
    it as *mut PyObject
}
