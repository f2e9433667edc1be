//! Runtime helpers: the functions compiled code calls for the operations it has no inline
//! machine code for. Each does what CPython 3.11's interpreter (`Python/ceval.c`) does for one
//! bytecode, through the same C API functions, so compiled code gives the same results, raises
//! the same exceptions with the same messages, and leaves the same reference counts.
//!
//! The calling convention, for the code generator:
//! - every helper is `unsafe extern "C-unwind"` (the C calling convention: call it like a C
//!   function; see below for why not `extern "C"`), called with the GIL held, on raw
//!   `PyObject` pointers;
//! - an object result is a new reference, NULL when an exception is set (`rjit_rt_iter_next`
//!   also returns NULL *without* an exception when the iterator is exhausted);
//! - an `int` result is 0 (or a truth value) on success, -1 with an exception set;
//! - operands are borrowed, except where a helper says it steals: `rjit_rt_build_tuple`,
//!   `rjit_rt_build_list` and `rjit_rt_list_append` take over the references they store, and
//!   only when they succeed (on failure the caller still owns them, as the HIR's exits expect).
//!
//! Operations that are exactly one exported C API call (`PyObject_GetAttr`, `PyNumber_Add`...)
//! have no helper: the code generator calls the C API directly, taking the addresses from
//! `capi_functions()` and `binary_op_function()`.
//!
//! # Panics and thread exit
//! No Rust panic may unwind into generated code. But nearly any call into CPython can run
//! Python code (a dunder method, or a `__del__` run by a garbage collection that an allocation
//! started), Python code can release the GIL, and on 3.11 a daemon thread that takes the GIL
//! back while the interpreter finalizes is ended with `pthread_exit`: a forced unwind through
//! every frame of the thread, helpers included. A helper frame with any landing pad aborts the
//! process there (measured): `catch_unwind` catches the forced unwind and cannot rethrow it
//! ("FATAL: exception not rethrown"), and the frame's exception table treats a call to a C
//! function declared nounwind, as pyo3-ffi declares them, as "terminate". So a helper frame
//! must have no landing pad at all:
//! - helpers are `extern "C-unwind"`: in an `extern "C"` function Rust puts an abort-on-unwind
//!   landing pad around every call that may unwind;
//! - no `catch_unwind` in a helper, and no value with a destructor alive in one;
//! - the Rust logic of a helper (decoding an oparg, splitting arguments) runs in `guard`, a
//!   frame of its own that returns before the helper calls into CPython, and turns a panic, or
//!   an `Err` for an input the code generator should never produce, into
//!   `SystemError("rjit internal error: ...")`;
//! - everything else in a helper is pointer and integer work that cannot panic.
//!
//! The forced unwind then passes through the helper as through a C frame, and stops at the
//! first frame without unwind information (generated code), where glibc ends the thread. Test:
//! `daemon_threads_in_helpers_exit_cleanly_at_finalization`.

mod arrays;
mod bool_lists;
mod building;
mod containers;
mod fast;
mod control;
mod names;
mod numeric;
mod operators;
mod ufunc_batch;

pub use numeric::{
    rjit_rt_box_bool, rjit_rt_box_f64, rjit_rt_box_i64, rjit_rt_float_floordiv, rjit_rt_float_mod, rjit_rt_float_pow, libm_pow_address, rjit_rt_float_to_int, rjit_rt_int_abs, rjit_rt_math_1, math_fn_index, FLOAT_DEOPT,
    rjit_rt_math_2, math_fn2_index, rjit_rt_len_exact, rjit_rt_isinstance_exact, machine_isinstance, isinstance_classes,
};

use std::ffi::{c_char, c_int};
use std::panic::{self, AssertUnwindSafe};

use pyo3_ffi as ffi;
use pyo3_ffi::PyObject;

#[cfg(target_arch = "x86_64")]
pub use arrays::FP_REPORTED;
pub use arrays::{
    array_check_code, rjit_rt_array_check, rjit_rt_array_index_error, rjit_rt_seq_iter_index, SEQ_ITER_INDEX, rjit_rt_box_np_bool, rjit_rt_box_np_f64, rjit_rt_box_np_i64,
    rjit_rt_ufunc_1, rjit_rt_ufunc_2, rjit_rt_ufunc_1_unchecked, rjit_rt_ufunc_2_unchecked,
};
pub use ufunc_batch::{SLOTS as UFUNC_BATCH_SLOTS, lanes_agree as ufunc_lanes_agree, rjit_rt_ufunc_batch_begin, rjit_rt_ufunc_batched_f64, rjit_rt_ufunc_batched_i64};
pub use bool_lists::{rjit_rt_bool_list_box, rjit_rt_bool_list_free, rjit_rt_bool_list_iter_at, rjit_rt_bool_list_new};
pub use building::{
    rjit_rt_before_with, rjit_rt_build_const_key_map, rjit_rt_build_map, rjit_rt_build_set, rjit_rt_build_string,
    rjit_rt_call_ex, rjit_rt_call_method, rjit_rt_unpack_ex, rjit_rt_dict_merge, rjit_rt_set_update, rjit_rt_dict_update, rjit_rt_format_value, rjit_rt_list_extend, rjit_rt_make_function,
};
pub use containers::{rjit_rt_build_list, rjit_rt_build_tuple, rjit_rt_list_append, rjit_rt_unpack_sequence};
pub use control::{rjit_rt_call, rjit_rt_eval_breaker, rjit_rt_iter_next, rjit_rt_range_iter_at, rjit_rt_range_len};
pub use fast::{
    binary_fast_path, rjit_rt_compare, rjit_rt_get_item, rjit_rt_get_item_i64, rjit_rt_set_item, rjit_rt_set_item_f64, rjit_rt_set_item_i64,
    FastBinaryFunc,
};
pub use names::{
    rjit_rt_load_attr_cached, rjit_rt_peek_attr_cached, rjit_rt_load_global, rjit_rt_load_global_cached, rjit_rt_peek_global_cached, rjit_rt_unbound_local, AttrCache,
    GlobalCache,
};
pub use operators::{binary_op_function, rjit_rt_binary_op, rjit_rt_contains, rjit_rt_is_true, rjit_rt_not};

/// A C API function of one object returning a new reference or NULL (`PyNumber_Negative`...).
pub type UnaryFunc = unsafe extern "C" fn(*mut PyObject) -> *mut PyObject;

/// A C API function of two objects returning a new reference or NULL (`PyNumber_Add`...).
pub type BinaryFunc = unsafe extern "C" fn(*mut PyObject, *mut PyObject) -> *mut PyObject;

// Exported by libpython 3.11 but not declared by pyo3-ffi (or declared private there).
extern "C" {
    fn _Py_Dealloc(op: *mut PyObject);
}

/// The exported C API functions the code generator calls directly, one place for their
/// addresses. All borrow their operands; object results are new references or NULL with an
/// exception set, `int` results are 0 or -1 with an exception set.
#[derive(Debug, Clone, Copy)]
pub struct CapiTable {
    /// `PyObject_GetIter(obj)`: GET_ITER.
    pub get_iter: UnaryFunc,
    /// `PyObject_GetAttr(obj, name)`: LOAD_ATTR, LOAD_METHOD's generic form.
    pub get_attr: BinaryFunc,
    /// `PyObject_SetAttr(obj, name, value) -> int`: STORE_ATTR.
    pub set_attr: unsafe extern "C" fn(*mut PyObject, *mut PyObject, *mut PyObject) -> c_int,
    /// `PyObject_GetItem(obj, key)`: BINARY_SUBSCR.
    pub get_item: BinaryFunc,
    /// `PyObject_SetItem(obj, key, value) -> int`: STORE_SUBSCR.
    pub set_item: unsafe extern "C" fn(*mut PyObject, *mut PyObject, *mut PyObject) -> c_int,
    /// `PyObject_DelItem(obj, key) -> int`: DELETE_SUBSCR.
    pub del_item: unsafe extern "C" fn(*mut PyObject, *mut PyObject) -> c_int,
    /// `PyObject_RichCompare(lhs, rhs, op)` with `op` one of `Py_LT..Py_GE`: COMPARE_OP.
    pub rich_compare: unsafe extern "C" fn(*mut PyObject, *mut PyObject, c_int) -> *mut PyObject,
    /// `PyNumber_Negative(obj)`: UNARY_NEGATIVE.
    pub negative: UnaryFunc,
    /// `PyNumber_Positive(obj)`: UNARY_POSITIVE.
    pub positive: UnaryFunc,
    /// `PyNumber_Invert(obj)`: UNARY_INVERT.
    pub invert: UnaryFunc,
    /// `_Py_Dealloc(obj)`: what `Py_DECREF` calls when the count reaches zero.
    pub dealloc: unsafe extern "C" fn(*mut PyObject),
}

/// The addresses of the C API functions compiled code calls directly.
pub fn capi_functions() -> CapiTable {
    CapiTable {
        get_iter: ffi::PyObject_GetIter,
        get_attr: ffi::PyObject_GetAttr,
        set_attr: ffi::PyObject_SetAttr,
        get_item: ffi::PyObject_GetItem,
        set_item: ffi::PyObject_SetItem,
        del_item: ffi::PyObject_DelItem,
        rich_compare: ffi::PyObject_RichCompare,
        negative: ffi::PyNumber_Negative,
        positive: ffi::PyNumber_Positive,
        invert: ffi::PyNumber_Invert,
        dealloc: _Py_Dealloc,
    }
}

/// Runs the Rust logic of a helper (never a call into CPython: see the module doc). A panic,
/// or an `Err` naming an input the code generator should never produce, becomes
/// `SystemError("rjit internal error: ...")` and `None`.
///
/// Never inlined: `catch_unwind`'s landing pad must stay in this frame, out of the helper's
/// (see the module doc).
///
/// # Safety
/// GIL held.
#[inline(never)]
unsafe fn guard<T>(logic: impl FnOnce() -> Result<T, &'static str>) -> Option<T> {
    match panic::catch_unwind(AssertUnwindSafe(logic)) {
        Ok(Ok(value)) => Some(value),
        Ok(Err(why)) => {
            internal_error(why);
            None
        }
        Err(payload) => {
            let mut message = Message::new("rjit internal error: ");
            message.push(
                payload
                    .downcast_ref::<&str>()
                    .copied()
                    .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
                    .unwrap_or("panic"),
            );
            drop(payload);
            // Nothing with a destructor is alive across the call (see the module doc).
            message.raise_system_error();
            None
        }
    }
}

/// Sets `SystemError("rjit internal error: <why>")`: the code generator passed an input the
/// interpreter could never see (an oparg out of range...).
///
/// # Safety
/// GIL held.
unsafe fn internal_error(why: &str) {
    let mut message = Message::new("rjit internal error: ");
    message.push(why);
    message.raise_system_error();
}

/// A NUL-terminated UTF-8 message in a fixed buffer: no destructor, so it may be alive across
/// a call into CPython (see the module doc).
struct Message {
    buf: [u8; 256],
    len: usize,
}

impl Message {
    fn new(prefix: &str) -> Message {
        let mut message = Message { buf: [0; 256], len: 0 };
        message.push(prefix);
        message
    }

    /// Appends `text`, cut at a character boundary if the buffer is full.
    fn push(&mut self, text: &str) {
        let room = self.buf.len() - 1 - self.len;
        let mut end = text.len().min(room);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        self.buf[self.len..self.len + end].copy_from_slice(&text.as_bytes()[..end]);
        self.len += end;
    }

    /// Sets `SystemError(message)`.
    ///
    /// # Safety
    /// GIL held.
    unsafe fn raise_system_error(&self) {
        // The buffer is zeroed past `len`, so it is NUL-terminated.
        ffi::PyErr_SetString(ffi::PyExc_SystemError, self.buf.as_ptr().cast::<c_char>());
    }
}

/// A new reference to `True` or `False`.
///
/// # Safety
/// GIL held.
unsafe fn new_bool(value: bool) -> *mut PyObject {
    let b = if value { ffi::Py_True() } else { ffi::Py_False() };
    ffi::Py_INCREF(b);
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    use pyo3::exceptions::PySystemError;
    use pyo3::{PyErr, Python};

    #[test]
    fn message_is_cut_at_a_character_boundary() {
        let mut message = Message::new("rjit internal error: ");
        // 21 bytes of prefix leave 234 for the text: "a" and 116 two-byte characters fit, the
        // 117th would be split.
        message.push(&format!("a{}", "é".repeat(200)));
        let text = std::str::from_utf8(&message.buf[..message.len]).unwrap();
        assert_eq!(text, format!("rjit internal error: a{}", "é".repeat(116)));
        assert_eq!(message.buf[message.len], 0, "NUL-terminated");
    }

    #[test]
    fn guard_turns_panics_and_errors_into_system_error() {
        Python::initialize();
        Python::attach(|py| {
            // SAFETY (each call): GIL held.
            assert_eq!(unsafe { guard(|| Ok::<_, &str>(7)) }, Some(7));
            assert!(PyErr::take(py).is_none());
            type Logic = fn() -> Result<u8, &'static str>;
            let cases: [(Logic, &str); 3] = [
                (|| Err("an impossible input"), "rjit internal error: an impossible input"),
                (|| panic!("static text"), "rjit internal error: static text"),
                (|| panic!("formatted {}", 42), "rjit internal error: formatted 42"),
            ];
            for (logic, expected) in cases {
                assert_eq!(unsafe { guard(logic) }, None);
                let err = PyErr::take(py).expect("an exception is set");
                assert!(err.is_instance_of::<PySystemError>(py));
                assert_eq!(err.value(py).to_string(), expected);
            }
        });
    }
}
