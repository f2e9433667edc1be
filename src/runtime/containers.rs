//! Building and unpacking containers: BUILD_TUPLE, BUILD_LIST, LIST_APPEND, UNPACK_SEQUENCE.

use std::ffi::{c_int, c_uint};
use std::ptr;

use pyo3_ffi as ffi;
use pyo3_ffi::PyObject;

/// BUILD_TUPLE: a new tuple of the `n` references at `items` (`items` may be NULL when `n` is
/// 0: the result is the empty tuple, as the interpreter's). On success the references are
/// stolen (moved into the tuple); on failure (NULL, exception set) none is consumed.
///
/// # Safety
/// GIL held; `items` points at `n` owned references to live objects.
pub unsafe extern "C-unwind" fn rjit_rt_build_tuple(items: *const *mut PyObject, n: usize) -> *mut PyObject {
    // A size beyond isize::MAX turns negative and PyTuple_New rejects it (SystemError).
    let tuple = ffi::PyTuple_New(n as ffi::Py_ssize_t);
    if tuple.is_null() {
        return ptr::null_mut();
    }
    for i in 0..n {
        ffi::PyTuple_SET_ITEM(tuple, i as ffi::Py_ssize_t, *items.add(i));
    }
    tuple
}

/// BUILD_LIST: a new list of the `n` references at `items` (NULL allowed when `n` is 0). On
/// success the references are stolen; on failure (NULL, exception set) none is consumed.
///
/// # Safety
/// As `rjit_rt_build_tuple`.
pub unsafe extern "C-unwind" fn rjit_rt_build_list(items: *const *mut PyObject, n: usize) -> *mut PyObject {
    let list = ffi::PyList_New(n as ffi::Py_ssize_t);
    if list.is_null() {
        return ptr::null_mut();
    }
    for i in 0..n {
        ffi::PyList_SET_ITEM(list, i as ffi::Py_ssize_t, *items.add(i));
    }
    list
}

/// LIST_APPEND (list comprehensions): appends `value` to `list`. 0 on success, the reference
/// to `value` stolen (moved into the list); -1 with an exception set on failure, `value` not
/// consumed (the interpreter's `_PyList_AppendTakeRef` releases it on failure; here the caller
/// does, through the exit's release list).
///
/// # Safety
/// GIL held; `list` is a live list, `value` an owned reference to a live object.
pub unsafe extern "C-unwind" fn rjit_rt_list_append(list: *mut PyObject, value: *mut PyObject) -> c_int {
    if ffi::PyList_Append(list, value) < 0 {
        return -1;
    }
    // The list took its own reference: give up ours (cannot free `value`, the list holds it).
    ffi::Py_DECREF(value);
    0
}

/// `iter(value)` for an unpacking assignment: a non-iterable gives the interpreter's
/// "cannot unpack non-iterable X object". New reference, or NULL with an exception set.
///
/// # Safety
/// GIL held; `value` live.
pub(crate) unsafe fn iter_for_unpacking(value: *mut PyObject) -> *mut PyObject {
    let iter = ffi::PyObject_GetIter(value);
    if iter.is_null()
        && ffi::PyErr_ExceptionMatches(ffi::PyExc_TypeError) != 0
        && (*ffi::Py_TYPE(value)).tp_iter.is_none()
        && ffi::PySequence_Check(value) == 0
    {
        ffi::PyErr_Format(
            ffi::PyExc_TypeError,
            c"cannot unpack non-iterable %.200s object".as_ptr(),
            (*ffi::Py_TYPE(value)).tp_name,
        );
    }
    iter
}

/// UNPACK_SEQUENCE with oparg `count`: the first `count` items of `iter(value)` as a new tuple,
/// in iteration order (the code generator pushes them last first, so the first item ends on
/// top of the stack). Raises as the interpreter's `unpack_iterable` does: `TypeError("cannot
/// unpack non-iterable X object")` for an object with neither `__iter__` nor `__getitem__`,
/// `ValueError("not enough values to unpack (expected N, got M)")`, `ValueError("too many
/// values to unpack (expected N)")` (after reading one item more), or the iterator's own error.
/// Borrows `value`. New reference, or NULL with an exception set.
///
/// # Safety
/// GIL held; `value` is a live object.
pub unsafe extern "C-unwind" fn rjit_rt_unpack_sequence(value: *mut PyObject, count: c_uint) -> *mut PyObject {
    let iter = iter_for_unpacking(value);
    if iter.is_null() {
        return ptr::null_mut();
    }
    let items = ffi::PyTuple_New(count as ffi::Py_ssize_t);
    if items.is_null() {
        ffi::Py_DECREF(iter);
        return ptr::null_mut();
    }
    // The iterator runs Python code while the tuple still has NULL slots: keep it out of the
    // collector's lists (`gc.get_objects()`) until it is complete. The empty tuple is a
    // statically allocated singleton, never tracked.
    let tracked = count > 0;
    if tracked {
        ffi::PyObject_GC_UnTrack(items.cast());
    }
    let mut failed = false;
    for i in 0..count {
        let item = ffi::PyIter_Next(iter);
        if item.is_null() {
            if ffi::PyErr_Occurred().is_null() {
                ffi::PyErr_Format(
                    ffi::PyExc_ValueError,
                    c"not enough values to unpack (expected %d, got %d)".as_ptr(),
                    count as c_int,
                    i as c_int,
                );
            }
            failed = true;
            break;
        }
        ffi::PyTuple_SET_ITEM(items, i as ffi::Py_ssize_t, item);
    }
    if !failed {
        // The iterator must be exhausted now.
        let extra = ffi::PyIter_Next(iter);
        if !extra.is_null() {
            ffi::Py_DECREF(extra);
            ffi::PyErr_Format(
                ffi::PyExc_ValueError,
                c"too many values to unpack (expected %d)".as_ptr(),
                count as c_int,
            );
            failed = true;
        } else if !ffi::PyErr_Occurred().is_null() {
            failed = true;
        }
    }
    // Released in the interpreter's order: the items read (last first), then the iterator.
    if failed {
        ffi::Py_DECREF(items);
        ffi::Py_DECREF(iter);
        return ptr::null_mut();
    }
    ffi::Py_DECREF(iter);
    if tracked {
        ffi::PyObject_GC_Track(items.cast());
    }
    items
}
