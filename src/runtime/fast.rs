//! Fast paths for the commonest operand types of subscripts and arithmetic, as the
//! interpreter's specialised instructions have them (BINARY_SUBSCR_LIST_INT,
//! STORE_SUBSCR_LIST_INT, BINARY_OP_ADD_INT, BINARY_OP_ADD_FLOAT, COMPARE_OP_INT_JUMP...): the exact types are checked, the work is
//! done directly, and every other case goes through the generic C API call, which also raises
//! every error (so messages stay the interpreter's). The type-specialising tier will do this
//! in machine code with guards; these keep the generic tier from being slower than the
//! interpreter meanwhile.

use std::ffi::c_int;

use pyo3_ffi as ffi;
use pyo3_ffi::PyObject;

/// The in-range index `key` denotes in a sequence of `len` items (negative counts from the
/// end), if `key` is an exact int that fits; None for anything the generic path must handle.
unsafe fn sequence_index(key: *mut PyObject, len: ffi::Py_ssize_t) -> Option<ffi::Py_ssize_t> {
    if ffi::PyLong_CheckExact(key) == 0 {
        return None;
    }
    let mut overflow = 0;
    let index = ffi::PyLong_AsLongAndOverflow(key, &mut overflow) as ffi::Py_ssize_t;
    if overflow != 0 || (index == -1 && !ffi::PyErr_Occurred().is_null()) {
        ffi::PyErr_Clear();
        return None;
    }
    let index = if index < 0 { index + len } else { index };
    (0..len).contains(&index).then_some(index)
}

/// BINARY_SUBSCR: `obj[key]`, directly for a list or tuple and an int index in range.
///
/// # Safety
/// GIL held; live objects.
pub unsafe extern "C-unwind" fn rjit_rt_get_item(obj: *mut PyObject, key: *mut PyObject) -> *mut PyObject {
    if ffi::PyList_CheckExact(obj) != 0 {
        if let Some(i) = sequence_index(key, ffi::PyList_GET_SIZE(obj)) {
            let item = ffi::PyList_GET_ITEM(obj, i);
            ffi::Py_INCREF(item);
            return item;
        }
    } else if ffi::PyTuple_CheckExact(obj) != 0 {
        if let Some(i) = sequence_index(key, ffi::PyTuple_GET_SIZE(obj)) {
            let item = ffi::PyTuple_GET_ITEM(obj, i);
            ffi::Py_INCREF(item);
            return item;
        }
    }
    ffi::PyObject_GetItem(obj, key)
}

/// STORE_SUBSCR: `obj[key] = value`, directly for a list and an int index in range; 0 or -1.
///
/// # Safety
/// GIL held; live objects.
pub unsafe extern "C-unwind" fn rjit_rt_set_item(obj: *mut PyObject, key: *mut PyObject, value: *mut PyObject) -> c_int {
    if ffi::PyList_CheckExact(obj) != 0 {
        if let Some(i) = sequence_index(key, ffi::PyList_GET_SIZE(obj)) {
            ffi::Py_INCREF(value);
            let slot = (*(obj as *mut ffi::PyListObject)).ob_item.add(i as usize);
            let old = std::mem::replace(&mut *slot, value);
            // Last: releasing the old item may run arbitrary code (__del__).
            ffi::Py_DECREF(old);
            return 0;
        }
    }
    ffi::PyObject_SetItem(obj, key, value)
}

/// The value of an exact int of at most one 30-bit digit (3.11's representation: the sign and
/// digit count in `ob_size`, then the digits), which is every int below 2**30 in magnitude.
unsafe fn compact_int(obj: *mut PyObject) -> Option<i64> {
    if ffi::PyLong_CheckExact(obj) == 0 {
        return None;
    }
    // Read directly: pyo3-ffi's Py_SIZE refuses ints (their size is not a length from 3.12 on;
    // this function is 3.11's reading, kept with the other version-specific parts).
    let size = (*obj.cast::<ffi::PyVarObject>()).ob_size;
    if !(-1..=1).contains(&size) {
        return None;
    }
    let offset = crate::cpython::shim::layout().long_digits as usize;
    let digit = std::ptr::read(obj.cast::<u8>().add(offset).cast::<u32>());
    Some(size as i64 * i64::from(digit))
}

/// Declares a fast path for a BINARY_OP: two small exact ints give the exact int result (which
/// cannot overflow an i64: each is below 2**30 in magnitude), two exact floats the IEEE result
/// (as float_add & co. compute it); anything else goes to the generic function.
macro_rules! number_fast_path {
    ($name:ident, $generic:path, $op:tt, $array_op:expr, $doc:literal) => {
        #[doc = $doc]
        ///
        /// # Safety
        /// GIL held; live objects.
        pub unsafe extern "C-unwind" fn $name(lhs: *mut PyObject, rhs: *mut PyObject) -> *mut PyObject {
            if let (Some(a), Some(b)) = (compact_int(lhs), compact_int(rhs)) {
                return ffi::PyLong_FromLongLong(a $op b);
            }
            if ffi::PyFloat_CheckExact(lhs) != 0 && ffi::PyFloat_CheckExact(rhs) != 0 {
                return ffi::PyFloat_FromDouble(ffi::PyFloat_AS_DOUBLE(lhs) $op ffi::PyFloat_AS_DOUBLE(rhs));
            }
            // An array and a number (not in place: `a += x` updates the array itself).
            let array_op: Option<super::arrays::ArrayOp> = $array_op;
            if let Some(op) = array_op {
                if let Some(result) = super::arrays::array_scalar(op, lhs, rhs) {
                    return result;
                }
            }
            $generic(lhs, rhs)
        }
    };
}

/// BINARY_OP `/`: an array and a number directly (see `arrays::array_scalar`).
///
/// # Safety
/// GIL held; live objects.
pub unsafe extern "C-unwind" fn rjit_rt_true_divide(lhs: *mut PyObject, rhs: *mut PyObject) -> *mut PyObject {
    if let Some(result) = super::arrays::array_scalar(super::arrays::ArrayOp::Div, lhs, rhs) {
        return result;
    }
    ffi::PyNumber_TrueDivide(lhs, rhs)
}

/// COMPARE_OP: two small exact ints or two exact floats compared directly (a bool), anything
/// else through `PyObject_RichCompare`. `op` is `Py_LT`..`Py_GE`.
///
/// # Safety
/// GIL held; live objects.
pub unsafe extern "C-unwind" fn rjit_rt_compare(lhs: *mut PyObject, rhs: *mut PyObject, op: c_int) -> *mut PyObject {
    fn decide<T: PartialOrd>(a: T, b: T, op: c_int) -> Option<bool> {
        Some(match op {
            ffi::Py_LT => a < b,
            ffi::Py_LE => a <= b,
            ffi::Py_EQ => a == b,
            ffi::Py_NE => a != b,
            ffi::Py_GT => a > b,
            ffi::Py_GE => a >= b,
            _ => return None,
        })
    }
    let decided = if let (Some(a), Some(b)) = (compact_int(lhs), compact_int(rhs)) {
        decide(a, b, op)
    } else if ffi::PyFloat_CheckExact(lhs) != 0 && ffi::PyFloat_CheckExact(rhs) != 0 {
        // IEEE comparisons, as float_richcompare for two floats (nan compares unequal).
        decide(ffi::PyFloat_AS_DOUBLE(lhs), ffi::PyFloat_AS_DOUBLE(rhs), op)
    } else {
        None
    };
    match decided {
        Some(truth) => {
            let result = if truth { ffi::Py_True() } else { ffi::Py_False() };
            ffi::Py_INCREF(result);
            result
        }
        None => ffi::PyObject_RichCompare(lhs, rhs, op),
    }
}

number_fast_path!(rjit_rt_add, ffi::PyNumber_Add, +, Some(super::arrays::ArrayOp::Add), "BINARY_OP `+`: int + int, float + float, and an array and a number directly.");
number_fast_path!(rjit_rt_subtract, ffi::PyNumber_Subtract, -, Some(super::arrays::ArrayOp::Sub), "BINARY_OP `-`: int - int and float - float directly.");
number_fast_path!(rjit_rt_multiply, ffi::PyNumber_Multiply, *, Some(super::arrays::ArrayOp::Mul), "BINARY_OP `*`: int * int and float * float directly.");
number_fast_path!(rjit_rt_inplace_add, ffi::PyNumber_InPlaceAdd, +, None, "BINARY_OP `+=`: int + int and float + float directly.");
number_fast_path!(rjit_rt_inplace_subtract, ffi::PyNumber_InPlaceSubtract, -, None, "BINARY_OP `-=`: int - int and float - float directly.");
number_fast_path!(rjit_rt_inplace_multiply, ffi::PyNumber_InPlaceMultiply, *, None, "BINARY_OP `*=`: int * int and float * float directly.");

/// A `BINARY_OP` function with a fast path: same signature as `PyNumber_Add`, "C-unwind".
pub type FastBinaryFunc = unsafe extern "C-unwind" fn(*mut PyObject, *mut PyObject) -> *mut PyObject;

/// The fast-path function for a `BINARY_OP` oparg and its name, if it has one (see
/// `hir::BinaryOp`'s order: 0 `+`, 5 `*`, 10 `-`, 13 `+=`, 18 `*=`, 23 `-=`).
pub fn binary_fast_path(op: u32) -> Option<(&'static str, FastBinaryFunc)> {
    let named: (&'static str, FastBinaryFunc) = match op {
        0 => ("rjit_rt_add", rjit_rt_add),
        5 => ("rjit_rt_multiply", rjit_rt_multiply),
        10 => ("rjit_rt_subtract", rjit_rt_subtract),
        11 => ("rjit_rt_true_divide", rjit_rt_true_divide),
        13 => ("rjit_rt_inplace_add", rjit_rt_inplace_add),
        18 => ("rjit_rt_inplace_multiply", rjit_rt_inplace_multiply),
        23 => ("rjit_rt_inplace_subtract", rjit_rt_inplace_subtract),
        _ => return None,
    };
    Some(named)
}

/// `obj[index]` for a machine int index (the slow path of compiled list indexing): lists and
/// tuples directly (negative indices counted from the end), anything else with the index boxed,
/// exactly as `BINARY_SUBSCR`.
pub unsafe extern "C-unwind" fn rjit_rt_get_item_i64(obj: *mut PyObject, index: i64) -> *mut PyObject {
    let sequence = if ffi::PyList_CheckExact(obj) != 0 {
        Some((ffi::PyList_GET_SIZE(obj), (*(obj as *mut ffi::PyListObject)).ob_item))
    } else if ffi::PyTuple_CheckExact(obj) != 0 {
        Some((ffi::PyTuple_GET_SIZE(obj), (*(obj as *mut ffi::PyTupleObject)).ob_item.as_mut_ptr()))
    } else {
        None
    };
    if let Some((size, items)) = sequence {
        let i = if index < 0 { index.wrapping_add(size as i64) } else { index };
        if (0..size as i64).contains(&i) {
            let item = *items.add(i as usize);
            ffi::Py_INCREF(item);
            return item;
        }
    }
    let key = ffi::PyLong_FromLongLong(index);
    if key.is_null() {
        return std::ptr::null_mut();
    }
    let result = rjit_rt_get_item(obj, key);
    ffi::Py_DECREF(key);
    result
}

/// `obj[index] = value` for a machine int index and a machine float value (the slow path of
/// compiled stores of floats: the value, passed as its bits in a general register, is boxed
/// here).
pub unsafe extern "C-unwind" fn rjit_rt_set_item_f64(obj: *mut PyObject, index: i64, value_bits: u64) -> c_int {
    let boxed = ffi::PyFloat_FromDouble(f64::from_bits(value_bits));
    if boxed.is_null() {
        return -1;
    }
    let status = rjit_rt_set_item_i64(obj, index, boxed);
    ffi::Py_DECREF(boxed);
    status
}

/// `obj[index] = value` for a machine int index (the slow path of compiled list stores).
pub unsafe extern "C-unwind" fn rjit_rt_set_item_i64(obj: *mut PyObject, index: i64, value: *mut PyObject) -> c_int {
    let key = ffi::PyLong_FromLongLong(index);
    if key.is_null() {
        return -1;
    }
    let status = rjit_rt_set_item(obj, key, value);
    ffi::Py_DECREF(key);
    status
}
