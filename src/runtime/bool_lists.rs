//! Lists of bools kept as bytes (`hir::Op::BoolListNew`, see `hir/specialize_lists.rs`): a
//! list that never escapes the function and only ever holds `True`/`False` lives in a buffer
//! of one byte per item while compiled code runs. The real list is made only by an exit that
//! hands the frame to the interpreter.
//!
//! The buffer: a header of two words (the list made from it by an exit, or NULL; the number
//! of items) and then the items, one byte each (0 or 1). Compiled code holds a pointer to the
//! first item; the header is just before it.
//!
//! An exit may name the same list several times (a local and a stack entry, a list iterator
//! on the stack): every place must get the *same* list object, so the first `box` makes it
//! and keeps it in the header, and the others take references to it. The exit then frees the
//! buffer (`free`), dropping the header's reference; the frame's references keep the list.

use std::ptr;

use pyo3_ffi as ffi;
use pyo3_ffi::PyObject;

/// Words of header before the items.
const HEADER: usize = 2;

/// The most items a buffer is made for here (a real list of them takes 512 MB of pointers):
/// beyond it the interpreter makes the list itself, and raises MemoryError where it would.
pub const MAX_ITEMS: i64 = 1 << 26;

/// The header word `i` of the buffer whose items start at `items`.
unsafe fn header(items: *mut u8, i: usize) -> *mut usize {
    items.cast::<usize>().sub(HEADER - i)
}

/// A buffer of `max(n, 0)` items, each `fill` (0 or 1); NULL (no exception set) when `n` is
/// beyond `MAX_ITEMS` or the memory cannot be had: the caller leaves for the interpreter,
/// which makes `[fill] * n` itself.
///
/// # Safety
/// None beyond calling it from compiled code (no Python object is touched).
pub unsafe extern "C-unwind" fn rjit_rt_bool_list_new(n: i64, fill: i64) -> *mut u8 {
    if n > MAX_ITEMS {
        return ptr::null_mut();
    }
    let len = n.max(0) as usize;
    let size = HEADER * std::mem::size_of::<usize>() + len;
    // `[False] * n`: calloc (large buffers come zeroed from the kernel, untouched);
    // `[True] * n`: written once.
    let base = if fill != 0 { libc::malloc(size) } else { libc::calloc(size, 1) }.cast::<u8>();
    if base.is_null() {
        return ptr::null_mut();
    }
    let items = base.add(HEADER * std::mem::size_of::<usize>());
    *header(items, 0) = 0;
    *header(items, 1) = len;
    if fill != 0 {
        ptr::write_bytes(items, 1, len);
    }
    items
}

/// The number of items of a buffer.
///
/// # Safety
/// `items` from `rjit_rt_bool_list_new`, not freed.
pub unsafe fn bool_list_len(items: *mut u8) -> usize {
    *header(items, 1)
}

/// A new reference to the list the buffer stands for: made from the items the first time,
/// the same list after that (kept in the header). NULL with MemoryError if it cannot be made.
///
/// # Safety
/// GIL held; `items` from `rjit_rt_bool_list_new`, not freed.
pub unsafe extern "C-unwind" fn rjit_rt_bool_list_box(items: *mut u8) -> *mut PyObject {
    let made = header(items, 0);
    if *made == 0 {
        let len = bool_list_len(items);
        let list = ffi::PyList_New(len as ffi::Py_ssize_t);
        if list.is_null() {
            return ptr::null_mut();
        }
        let (yes, no) = (ffi::Py_True(), ffi::Py_False());
        for i in 0..len {
            let item = if *items.add(i) != 0 { yes } else { no };
            ffi::Py_INCREF(item);
            ffi::PyList_SET_ITEM(list, i as ffi::Py_ssize_t, item);
        }
        *made = list as usize;
    }
    let list = *made as *mut PyObject;
    ffi::Py_INCREF(list);
    list
}

/// A new list iterator over the buffer's list (`rjit_rt_bool_list_box`) at position `index`:
/// what `iter(list)` advanced `index` times is. NULL with an exception set on failure.
///
/// # Safety
/// GIL held; `items` as for `rjit_rt_bool_list_box`; list iterators have the layout
/// `compiler::list_iter_layout_ok` checked (the specialiser makes no virtual list iterator
/// otherwise); `0 <= index <= len`.
pub unsafe extern "C-unwind" fn rjit_rt_bool_list_iter_at(items: *mut u8, index: i64) -> *mut PyObject {
    let list = rjit_rt_bool_list_box(items);
    if list.is_null() {
        return ptr::null_mut();
    }
    let it = ffi::PyObject_GetIter(list);
    ffi::Py_DECREF(list);
    if !it.is_null() {
        // `it_index`, the first word after the object header.
        *it.cast::<i64>().add(2) = index;
    }
    it
}

/// Frees a buffer, dropping the header's reference to the list made from it (if any: the
/// frame the exit wrote it into keeps it).
///
/// # Safety
/// GIL held; `items` from `rjit_rt_bool_list_new`, freed once.
pub unsafe extern "C-unwind" fn rjit_rt_bool_list_free(items: *mut u8) {
    let made = *header(items, 0) as *mut PyObject;
    libc::free(header(items, 0).cast());
    if !made.is_null() {
        ffi::Py_DECREF(made);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_hold_their_items_and_length() {
        // SAFETY: buffers made and freed here; no Python object is made (never boxed).
        unsafe {
            for (n, fill) in [(0, 1), (-5, 1), (3, 1), (1000, 0)] {
                let items = rjit_rt_bool_list_new(n, fill);
                assert!(!items.is_null());
                let len = bool_list_len(items);
                assert_eq!(len, n.max(0) as usize);
                assert!((0..len).all(|i| i64::from(*items.add(i)) == fill));
                libc::free(header(items, 0).cast());
            }
            assert!(rjit_rt_bool_list_new(MAX_ITEMS + 1, 1).is_null());
        }
    }
}
