//! Helpers for the bytecodes that build functions, strings and containers, call with `*args`
//! and `**kwargs`, and enter `with` blocks: MAKE_FUNCTION, FORMAT_VALUE, BUILD_STRING,
//! BUILD_MAP, BUILD_CONST_KEY_MAP, BUILD_SET, LIST_EXTEND, CALL_FUNCTION_EX, BEFORE_WITH.
//!
//! None of them consumes its operands (the caller releases them, as the HIR says); object
//! results are new references or NULL with an exception set. As the rest of `runtime`, they
//! call CPython outside any `catch_unwind` and hold no value with a destructor across calls.

use std::ffi::{c_char, c_int, c_uint};
use std::ptr;

use pyo3_ffi as ffi;
use pyo3_ffi::PyObject;

use super::containers::iter_for_unpacking;

// Exported by libpython 3.11, not declared by pyo3-ffi.
extern "C" {
    fn _PyUnicode_JoinArray(separator: *mut PyObject, items: *const *mut PyObject, n: ffi::Py_ssize_t) -> *mut PyObject;
    fn _PyList_Extend(list: *mut PyObject, iterable: *mut PyObject) -> *mut PyObject;
    fn _PyObject_LookupSpecial(obj: *mut PyObject, name: *mut PyObject) -> *mut PyObject;
    fn _PyObject_FunctionStr(func: *mut PyObject) -> *mut PyObject;
    fn _PyDict_MergeEx(a: *mut PyObject, b: *mut PyObject, override_: c_int) -> c_int;
}

/// MAKE_FUNCTION: a function for `code` in `globals`, with the closure, annotations,
/// keyword-only defaults and defaults that are not NULL.
///
/// # Safety
/// GIL held; live objects (the optional ones may be NULL).
pub unsafe extern "C-unwind" fn rjit_rt_make_function(
    code: *mut PyObject,
    globals: *mut PyObject,
    closure: *mut PyObject,
    annotations: *mut PyObject,
    kwdefaults: *mut PyObject,
    defaults: *mut PyObject,
) -> *mut PyObject {
    let func = ffi::PyFunction_New(code, globals);
    if func.is_null() {
        return func;
    }
    // The setters take their own references, as the interpreter's stores steal the stack's.
    if !annotations.is_null() {
        crate::cpython::shim::rjit_shim_set_function_annotations(func, annotations);
    }
    let ok = (closure.is_null() || ffi::PyFunction_SetClosure(func, closure) == 0)
        && (kwdefaults.is_null() || ffi::PyFunction_SetKwDefaults(func, kwdefaults) == 0)
        && (defaults.is_null() || ffi::PyFunction_SetDefaults(func, defaults) == 0);
    if !ok {
        ffi::Py_DECREF(func);
        return ptr::null_mut();
    }
    func
}

/// FORMAT_VALUE: `conversion` 1, 2, 3 applies `str`, `repr`, `ascii`; then a str without a
/// spec is the result itself, anything else goes through `format(value, spec)`.
///
/// # Safety
/// GIL held; `value` live, `spec` live or NULL.
pub unsafe extern "C-unwind" fn rjit_rt_format_value(value: *mut PyObject, conversion: c_uint, spec: *mut PyObject) -> *mut PyObject {
    let converted = match conversion {
        1 => ffi::PyObject_Str(value),
        2 => ffi::PyObject_Repr(value),
        3 => ffi::PyObject_ASCII(value),
        _ => {
            ffi::Py_INCREF(value);
            value
        }
    };
    if converted.is_null() {
        return converted;
    }
    if spec.is_null() && ffi::PyUnicode_CheckExact(converted) != 0 {
        return converted;
    }
    let result = ffi::PyObject_Format(converted, spec);
    ffi::Py_DECREF(converted);
    result
}

/// BUILD_STRING: the pieces (all str) joined.
///
/// # Safety
/// GIL held; `items` points at `n` live str objects.
pub unsafe extern "C-unwind" fn rjit_rt_build_string(items: *const *mut PyObject, n: usize) -> *mut PyObject {
    let empty = ffi::PyUnicode_FromStringAndSize(ptr::null::<c_char>(), 0);
    if empty.is_null() {
        return empty;
    }
    let result = _PyUnicode_JoinArray(empty, items, n as ffi::Py_ssize_t);
    ffi::Py_DECREF(empty);
    result
}

/// Inserts `n` key/value pairs into a new dict; keys at `keys[i * step]`, values at
/// `values[i * step]`, inserted in order (a later duplicate key wins, as in `{k: 1, k: 2}`).
unsafe fn dict_from(keys: *const *mut PyObject, values: *const *mut PyObject, step: usize, n: usize) -> *mut PyObject {
    let dict = ffi::PyDict_New();
    if dict.is_null() {
        return dict;
    }
    for i in 0..n {
        if ffi::PyDict_SetItem(dict, *keys.add(i * step), *values.add(i * step)) < 0 {
            ffi::Py_DECREF(dict);
            return ptr::null_mut();
        }
    }
    dict
}

/// BUILD_MAP: a dict of `n` pairs laid out key, value, key, value...
///
/// # Safety
/// GIL held; `items` points at `2 * n` live objects.
pub unsafe extern "C-unwind" fn rjit_rt_build_map(items: *const *mut PyObject, n: usize) -> *mut PyObject {
    dict_from(items, items.add(1), 2, n)
}

/// BUILD_CONST_KEY_MAP: a dict of the tuple `keys` and the `n` values.
///
/// # Safety
/// GIL held; `keys` a live object, `values` points at `n` live objects.
pub unsafe extern "C-unwind" fn rjit_rt_build_const_key_map(keys: *mut PyObject, values: *const *mut PyObject, n: usize) -> *mut PyObject {
    if ffi::PyTuple_CheckExact(keys) == 0 || ffi::PyTuple_GET_SIZE(keys) != n as ffi::Py_ssize_t {
        ffi::PyErr_SetString(ffi::PyExc_SystemError, c"bad BUILD_CONST_KEY_MAP keys argument".as_ptr());
        return ptr::null_mut();
    }
    let key_items = (keys as *mut ffi::PyTupleObject).cast::<u8>().add(std::mem::offset_of!(ffi::PyTupleObject, ob_item));
    dict_from(key_items.cast(), values, 1, n)
}

/// BUILD_SET: a set of the `n` items.
///
/// # Safety
/// GIL held; `items` points at `n` live objects.
pub unsafe extern "C-unwind" fn rjit_rt_build_set(items: *const *mut PyObject, n: usize) -> *mut PyObject {
    let set = ffi::PySet_New(ptr::null_mut());
    if set.is_null() {
        return set;
    }
    for i in 0..n {
        if ffi::PySet_Add(set, *items.add(i)) < 0 {
            ffi::Py_DECREF(set);
            return ptr::null_mut();
        }
    }
    set
}

/// LIST_EXTEND (`[*a, *b]`): 0, or -1 with the interpreter's TypeError for a non-iterable.
///
/// # Safety
/// GIL held; `list` a live list, `iterable` a live object.
pub unsafe extern "C-unwind" fn rjit_rt_list_extend(list: *mut PyObject, iterable: *mut PyObject) -> c_int {
    let none = _PyList_Extend(list, iterable);
    if !none.is_null() {
        ffi::Py_DECREF(none);
        return 0;
    }
    let ty = ffi::Py_TYPE(iterable);
    if ffi::PyErr_ExceptionMatches(ffi::PyExc_TypeError) != 0 && (*ty).tp_iter.is_none() && ffi::PySequence_Check(iterable) == 0 {
        ffi::PyErr_Clear();
        ffi::PyErr_Format(ffi::PyExc_TypeError, c"Value after * must be an iterable, not %.200s".as_ptr(), (*ty).tp_name);
    }
    -1
}

/// DICT_UPDATE (`{**a}`): 0, or -1; a non-mapping gives the interpreter's TypeError.
///
/// # Safety
/// GIL held; `dict` a live dict, `update` a live object.
pub unsafe extern "C-unwind" fn rjit_rt_dict_update(dict: *mut PyObject, update: *mut PyObject) -> c_int {
    if ffi::PyDict_Update(dict, update) == 0 {
        return 0;
    }
    if ffi::PyErr_ExceptionMatches(ffi::PyExc_AttributeError) != 0 {
        ffi::PyErr_Format(
            ffi::PyExc_TypeError,
            c"'%.200s' object is not a mapping".as_ptr(),
            (*ffi::Py_TYPE(update)).tp_name,
        );
    }
    -1
}

/// DICT_MERGE (`f(**a)`): merges `update` into `dict`, 0 or -1; a non-mapping or a repeated
/// keyword gives the interpreter's TypeError naming `func`.
///
/// # Safety
/// GIL held; `dict` a live dict, `update` and `func` live objects.
pub unsafe extern "C-unwind" fn rjit_rt_dict_merge(dict: *mut PyObject, update: *mut PyObject, func: *mut PyObject) -> c_int {
    if _PyDict_MergeEx(dict, update, 2) == 0 {
        return 0;
    }
    kwargs_error(func, update);
    -1
}

/// CALL with a method marker known only at run time: `method` NULL means `args[0]` is the
/// callable and `args[1..]` its arguments; otherwise `method` is called with all of `args`
/// (the self argument first). `n` counts `args`, keyword values included.
///
/// # Safety
/// GIL held; `args` points at `n >= 1` live objects; `method` live or NULL; `kwnames` a tuple
/// or NULL.
pub unsafe extern "C-unwind" fn rjit_rt_call_method(
    method: *mut PyObject,
    args: *const *mut PyObject,
    n: usize,
    kwnames: *mut PyObject,
) -> *mut PyObject {
    if method.is_null() {
        crate::runtime::rjit_rt_call(*args, args.add(1), n - 1, kwnames)
    } else {
        crate::runtime::rjit_rt_call(method, args, n, kwnames)
    }
}

/// SET_UPDATE (`{*a}`): `set.update(iterable)` on the set being built; 0 or -1.
///
/// # Safety
/// GIL held; `set` a live set, `iterable` a live object.
pub unsafe extern "C-unwind" fn rjit_rt_set_update(set: *mut PyObject, iterable: *mut PyObject) -> c_int {
    let name = ffi::PyUnicode_InternFromString(c"update".as_ptr());
    if name.is_null() {
        return -1;
    }
    let result = ffi::PyObject_CallMethodOneArg(set, name, iterable);
    ffi::Py_DECREF(name);
    if result.is_null() {
        return -1;
    }
    ffi::Py_DECREF(result);
    0
}

/// UNPACK_EX (`a, *b, c = value`): a tuple of the `before` first items, a list of the middle
/// ones, and the `after` last items, with the interpreter's errors.
///
/// # Safety
/// GIL held; `value` live.
pub unsafe extern "C-unwind" fn rjit_rt_unpack_ex(value: *mut PyObject, before: c_uint, after: c_uint) -> *mut PyObject {
    let iter = iter_for_unpacking(value);
    if iter.is_null() {
        return ptr::null_mut();
    }
    let expected = (before + after) as c_int;
    let result = ffi::PyTuple_New((before + 1 + after) as ffi::Py_ssize_t);
    if result.is_null() {
        ffi::Py_DECREF(iter);
        return result;
    }
    for i in 0..before {
        let item = ffi::PyIter_Next(iter);
        if item.is_null() {
            if ffi::PyErr_Occurred().is_null() {
                ffi::PyErr_Format(
                    ffi::PyExc_ValueError,
                    c"not enough values to unpack (expected at least %d, got %d)".as_ptr(),
                    expected,
                    i as c_int,
                );
            }
            ffi::Py_DECREF(result);
            ffi::Py_DECREF(iter);
            return ptr::null_mut();
        }
        ffi::PyTuple_SET_ITEM(result, i as ffi::Py_ssize_t, item);
    }
    let rest = ffi::PySequence_List(iter);
    ffi::Py_DECREF(iter);
    if rest.is_null() {
        ffi::Py_DECREF(result);
        return rest;
    }
    let len = ffi::PyList_GET_SIZE(rest);
    if len < after as ffi::Py_ssize_t {
        ffi::PyErr_Format(
            ffi::PyExc_ValueError,
            c"not enough values to unpack (expected at least %d, got %zd)".as_ptr(),
            expected,
            before as ffi::Py_ssize_t + len,
        );
        ffi::Py_DECREF(rest);
        ffi::Py_DECREF(result);
        return ptr::null_mut();
    }
    // The last `after` items move from the list to the tuple.
    let keep = len - after as ffi::Py_ssize_t;
    for j in 0..after as ffi::Py_ssize_t {
        let item = ffi::PyList_GET_ITEM(rest, keep + j);
        ffi::Py_INCREF(item);
        ffi::PyTuple_SET_ITEM(result, before as ffi::Py_ssize_t + 1 + j, item);
    }
    if ffi::PyList_SetSlice(rest, keep, len, ptr::null_mut()) < 0 {
        ffi::Py_DECREF(rest);
        ffi::Py_DECREF(result);
        return ptr::null_mut();
    }
    ffi::PyTuple_SET_ITEM(result, before as ffi::Py_ssize_t, rest);
    result
}

/// Raises `TypeError(message % (function description, type name of obj))` as the
/// interpreter's CALL_FUNCTION_EX errors do.
unsafe fn call_ex_error(func: *mut PyObject, message: &std::ffi::CStr, obj: *mut PyObject) {
    ffi::PyErr_Clear();
    let description = _PyObject_FunctionStr(func);
    if !description.is_null() {
        ffi::PyErr_Format(ffi::PyExc_TypeError, message.as_ptr(), description, (*ffi::Py_TYPE(obj)).tp_name);
        ffi::Py_DECREF(description);
    }
}

/// CALL_FUNCTION_EX: `callable(*args, **kwargs)`; `kwargs` may be NULL. Positional arguments
/// that are not a tuple and keyword arguments that are not a dict are converted first, with
/// the interpreter's error messages.
///
/// # Safety
/// GIL held; live objects (`kwargs` may be NULL).
pub unsafe extern "C-unwind" fn rjit_rt_call_ex(callable: *mut PyObject, args: *mut PyObject, kwargs: *mut PyObject) -> *mut PyObject {
    let mut kwdict = ptr::null_mut();
    if !kwargs.is_null() {
        if ffi::PyDict_CheckExact(kwargs) != 0 {
            ffi::Py_INCREF(kwargs);
            kwdict = kwargs;
        } else {
            kwdict = ffi::PyDict_New();
            if kwdict.is_null() {
                return kwdict;
            }
            if _PyDict_MergeEx(kwdict, kwargs, 2) < 0 {
                ffi::Py_DECREF(kwdict);
                kwargs_error(callable, kwargs);
                return ptr::null_mut();
            }
        }
    }
    let positional = if ffi::PyTuple_CheckExact(args) != 0 {
        ffi::Py_INCREF(args);
        args
    } else {
        if (*ffi::Py_TYPE(args)).tp_iter.is_none() && ffi::PySequence_Check(args) == 0 {
            call_ex_error(callable, c"%U argument after * must be an iterable, not %.200s", args);
            ffi::Py_XDECREF(kwdict);
            return ptr::null_mut();
        }
        let tuple = ffi::PySequence_Tuple(args);
        if tuple.is_null() {
            ffi::Py_XDECREF(kwdict);
            return tuple;
        }
        tuple
    };
    let result = ffi::PyObject_Call(callable, positional, kwdict);
    ffi::Py_DECREF(positional);
    ffi::Py_XDECREF(kwdict);
    result
}

/// The interpreter's TypeErrors for a bad `**kwargs` (its `format_kwargs_error`).
unsafe fn kwargs_error(func: *mut PyObject, kwargs: *mut PyObject) {
    if ffi::PyErr_ExceptionMatches(ffi::PyExc_AttributeError) != 0 {
        call_ex_error(func, c"%U argument after ** must be a mapping, not %.200s", kwargs);
    } else if ffi::PyErr_ExceptionMatches(ffi::PyExc_KeyError) != 0 {
        let (mut ty, mut value, mut tb) = (ptr::null_mut(), ptr::null_mut(), ptr::null_mut());
        ffi::PyErr_Fetch(&mut ty, &mut value, &mut tb);
        if !value.is_null() && ffi::PyTuple_Check(value) != 0 && ffi::PyTuple_GET_SIZE(value) == 1 {
            let description = _PyObject_FunctionStr(func);
            if !description.is_null() {
                let key = ffi::PyTuple_GET_ITEM(value, 0);
                ffi::PyErr_Format(
                    ffi::PyExc_TypeError,
                    c"%U got multiple values for keyword argument '%S'".as_ptr(),
                    description,
                    key,
                );
                ffi::Py_DECREF(description);
            }
            ffi::Py_XDECREF(ty);
            ffi::Py_XDECREF(value);
            ffi::Py_XDECREF(tb);
        } else {
            ffi::PyErr_Restore(ty, value, tb);
        }
    }
}

/// BEFORE_WITH: looks up `__enter__` and `__exit__` on the manager's type, calls `__enter__`,
/// and returns the tuple (bound `__exit__`, result of `__enter__`).
///
/// # Safety
/// GIL held; `manager` live.
pub unsafe extern "C-unwind" fn rjit_rt_before_with(manager: *mut PyObject) -> *mut PyObject {
    let enter_name = ffi::PyUnicode_InternFromString(c"__enter__".as_ptr());
    let exit_name = ffi::PyUnicode_InternFromString(c"__exit__".as_ptr());
    if enter_name.is_null() || exit_name.is_null() {
        ffi::Py_XDECREF(enter_name);
        ffi::Py_XDECREF(exit_name);
        return ptr::null_mut();
    }
    let enter = _PyObject_LookupSpecial(manager, enter_name);
    ffi::Py_DECREF(enter_name);
    let type_name = (*ffi::Py_TYPE(manager)).tp_name;
    if enter.is_null() {
        ffi::Py_DECREF(exit_name);
        if ffi::PyErr_Occurred().is_null() {
            ffi::PyErr_Format(
                ffi::PyExc_TypeError,
                c"'%.200s' object does not support the context manager protocol".as_ptr(),
                type_name,
            );
        }
        return ptr::null_mut();
    }
    let exit = _PyObject_LookupSpecial(manager, exit_name);
    ffi::Py_DECREF(exit_name);
    if exit.is_null() {
        if ffi::PyErr_Occurred().is_null() {
            ffi::PyErr_Format(
                ffi::PyExc_TypeError,
                c"'%.200s' object does not support the context manager protocol (missed __exit__ method)".as_ptr(),
                type_name,
            );
        }
        ffi::Py_DECREF(enter);
        return ptr::null_mut();
    }
    let result = ffi::PyObject_CallNoArgs(enter);
    ffi::Py_DECREF(enter);
    if result.is_null() {
        ffi::Py_DECREF(exit);
        return result;
    }
    let pair = ffi::PyTuple_New(2);
    if pair.is_null() {
        ffi::Py_DECREF(exit);
        ffi::Py_DECREF(result);
        return pair;
    }
    // PyTuple_SetItem steals both references.
    ffi::PyTuple_SetItem(pair, 0, exit);
    ffi::PyTuple_SetItem(pair, 1, result);
    pair
}
