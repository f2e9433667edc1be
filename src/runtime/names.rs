//! Names: LOAD_GLOBAL's lookup and the unbound-variable errors, with the interpreter's exact
//! exceptions (type, message, and the `.name` that tracebacks use for "Did you mean" hints).

use std::ffi::CStr;
use std::ptr;

use pyo3_ffi as ffi;
use pyo3_ffi::PyObject;

use super::internal_error;

// Exported by libpython 3.11 (public API since 3.11), not declared by pyo3-ffi. Each returns a
// new tuple of names.
extern "C" {
    fn PyCode_GetVarnames(code: *mut PyObject) -> *mut PyObject;
    fn PyCode_GetCellvars(code: *mut PyObject) -> *mut PyObject;
    fn PyCode_GetFreevars(code: *mut PyObject) -> *mut PyObject;
}

/// The interpreter's messages (3.11 ceval.c `NAME_ERROR_MSG`, `UNBOUNDLOCAL_ERROR_MSG`,
/// `UNBOUNDFREE_ERROR_MSG`), `PyUnicode_FromFormat` formats filled with the name's UTF-8.
const NAME_ERROR_MSG: &CStr = c"name '%.200s' is not defined";
const UNBOUND_LOCAL_MSG: &CStr = c"cannot access local variable '%s' where it is not associated with a value";
const UNBOUND_FREE_MSG: &CStr =
    c"cannot access free variable '%s' where it is not associated with a value in enclosing scope";

/// LOAD_GLOBAL's lookup of `name`: `globals`, then `builtins`. When both are exact dicts, dict
/// lookups (errors from a key's `__eq__` propagate); otherwise `PyObject_GetItem` on each, a
/// KeyError from `globals` falling through to `builtins` (any other error propagates). Not
/// found: `NameError("name 'x' is not defined")` with `.name` set. Borrows the arguments.
/// New reference, or NULL with an exception set.
///
/// # Safety
/// GIL held; `globals` and `builtins` are live objects (a frame's), `name` a live str.
pub unsafe extern "C-unwind" fn rjit_rt_load_global(
    globals: *mut PyObject,
    builtins: *mut PyObject,
    name: *mut PyObject,
) -> *mut PyObject {
    if ffi::PyDict_CheckExact(globals) != 0 && ffi::PyDict_CheckExact(builtins) != 0 {
        // The interpreter's `_PyDict_LoadGlobal` (not exported): the same two lookups.
        let mut value = ffi::PyDict_GetItemWithError(globals, name);
        if value.is_null() {
            if !ffi::PyErr_Occurred().is_null() {
                return ptr::null_mut();
            }
            value = ffi::PyDict_GetItemWithError(builtins, name);
            if value.is_null() {
                if ffi::PyErr_Occurred().is_null() {
                    raise_naming(ffi::PyExc_NameError, NAME_ERROR_MSG, name);
                }
                return ptr::null_mut();
            }
        }
        ffi::Py_INCREF(value);
        return value;
    }
    let value = ffi::PyObject_GetItem(globals, name);
    if !value.is_null() {
        return value;
    }
    if ffi::PyErr_ExceptionMatches(ffi::PyExc_KeyError) == 0 {
        return ptr::null_mut();
    }
    ffi::PyErr_Clear();
    let value = ffi::PyObject_GetItem(builtins, name);
    if value.is_null() && ffi::PyErr_ExceptionMatches(ffi::PyExc_KeyError) != 0 {
        raise_naming(ffi::PyExc_NameError, NAME_ERROR_MSG, name);
    }
    value
}

/// What one LOAD_GLOBAL site of compiled code remembers: the value found, valid while neither
/// dict has changed since (every change of a dict gives it a new `ma_version_tag`), as the
/// interpreter's LOAD_GLOBAL_MODULE/LOAD_GLOBAL_BUILTIN specialisations remember it. The
/// value is borrowed: the unchanged dict holds it.
#[repr(C)]
#[derive(Debug)]
pub struct GlobalCache {
    globals_version: u64,
    builtins_version: u64,
    value: *mut PyObject,
}

impl GlobalCache {
    /// An empty cache (version 0 is never a live dict's).
    pub const EMPTY: GlobalCache = GlobalCache { globals_version: 0, builtins_version: 0, value: ptr::null_mut() };
}

/// The version tag of an exact dict.
unsafe fn dict_version(dict: *mut PyObject) -> u64 {
    let offset = crate::cpython::shim::layout().dict_version as usize;
    ptr::read(dict.cast::<u8>().add(offset).cast::<u64>())
}

/// `rjit_rt_load_global` with a per-site cache: while both dicts are exact and unchanged, the
/// value found last time, without a lookup.
///
/// # Safety
/// As `rjit_rt_load_global`; `cache` points at a live `GlobalCache` of this site.
pub unsafe extern "C-unwind" fn rjit_rt_load_global_cached(
    globals: *mut PyObject,
    builtins: *mut PyObject,
    name: *mut PyObject,
    cache: *mut GlobalCache,
) -> *mut PyObject {
    let exact = ffi::PyDict_CheckExact(globals) != 0 && ffi::PyDict_CheckExact(builtins) != 0;
    if !exact {
        return rjit_rt_load_global(globals, builtins, name);
    }
    let (g, b) = (dict_version(globals), dict_version(builtins));
    let cache = &mut *cache;
    if cache.globals_version == g && cache.builtins_version == b && !cache.value.is_null() {
        ffi::Py_INCREF(cache.value);
        return cache.value;
    }
    let value = rjit_rt_load_global(globals, builtins, name);
    // A lookup can run a key's __eq__, which may change the dicts: re-read the versions.
    if !value.is_null() && dict_version(globals) == g && dict_version(builtins) == b {
        *cache = GlobalCache { globals_version: g, builtins_version: b, value };
    }
    value
}

/// `rjit_rt_load_global_cached` for a check that must not raise (the guard of an inlined
/// callee made once before a loop, `hir::hoist_inlined`): NULL, with no exception left set,
/// where the lookup fails, and where a dict is not exact (its `__getitem__` would be Python code
/// run early). The interpreter then redoes the lookup where the code makes it (and raises
/// there, if it still fails).
///
/// # Safety
/// As `rjit_rt_load_global_cached`.
pub unsafe extern "C-unwind" fn rjit_rt_peek_global_cached(
    globals: *mut PyObject,
    builtins: *mut PyObject,
    name: *mut PyObject,
    cache: *mut GlobalCache,
) -> *mut PyObject {
    if ffi::PyDict_CheckExact(globals) == 0 || ffi::PyDict_CheckExact(builtins) == 0 {
        return ptr::null_mut();
    }
    let value = rjit_rt_load_global_cached(globals, builtins, name, cache);
    if value.is_null() {
        ffi::PyErr_Clear();
    }
    value
}

/// What one LOAD_ATTR/LOAD_METHOD site of compiled code remembers about a module attribute
/// (`math.sqrt`, `random.random`): the module, its dict's version and the value found there,
/// as the interpreter's LOAD_ATTR_MODULE specialisation does. Borrowed, like `GlobalCache`.
#[repr(C)]
#[derive(Debug)]
pub struct AttrCache {
    module: *mut PyObject,
    version: u64,
    value: *mut PyObject,
}

impl AttrCache {
    /// An empty cache.
    pub const EMPTY: AttrCache = AttrCache { module: ptr::null_mut(), version: 0, value: ptr::null_mut() };
}

extern "C" {
    fn _PyType_Lookup(ty: *mut ffi::PyTypeObject, name: *mut PyObject) -> *mut PyObject;
}

/// LOAD_ATTR: `getattr(obj, name)`; for an attribute of a plain module that lives in the
/// module's dict (and not on the module type), the value remembered while the dict keeps its
/// version. Everything else is `PyObject_GetAttr`.
///
/// # Safety
/// GIL held; live objects; `cache` points at this site's live `AttrCache`.
pub unsafe extern "C-unwind" fn rjit_rt_load_attr_cached(obj: *mut PyObject, name: *mut PyObject, cache: *mut AttrCache) -> *mut PyObject {
    if ffi::Py_TYPE(obj) != ptr::addr_of_mut!(ffi::PyModule_Type) {
        return ffi::PyObject_GetAttr(obj, name);
    }
    let dict = ffi::PyModule_GetDict(obj);
    let cache = &mut *cache;
    if cache.module == obj && !dict.is_null() && dict_version(dict) == cache.version && !cache.value.is_null() {
        ffi::Py_INCREF(cache.value);
        return cache.value;
    }
    let value = ffi::PyObject_GetAttr(obj, name);
    // Remember it only where generic attribute lookup is a plain dict lookup: the module type
    // (immutable) has no attribute of that name, and the module's dict holds this very value.
    if !value.is_null()
        && !dict.is_null()
        && ffi::PyDict_CheckExact(dict) != 0
        && _PyType_Lookup(ptr::addr_of_mut!(ffi::PyModule_Type), name).is_null()
    {
        let version = dict_version(dict);
        if ffi::PyDict_GetItemWithError(dict, name) == value {
            *cache = AttrCache { module: obj, version, value };
        } else {
            ffi::PyErr_Clear();
        }
    }
    value
}

/// `rjit_rt_load_attr_cached` for a check that must not raise (a module attribute guarded once
/// before a loop, `hir::hoist_inlined`): the attribute (a new reference) only where `getattr`
/// would find it in the dict of a plain module (the module type has no attribute of that
/// name), else NULL with no exception set: for a NULL `obj`, any other object (its
/// `__getattribute__` or descriptors may be Python code), and a name the dict lacks (the
/// module's `__getattr__` would run). The interpreter then redoes the lookup where the code
/// makes it.
///
/// # Safety
/// GIL held; `obj` NULL or a live object, `name` a live str; `cache` points at this site's
/// live `AttrCache`.
pub unsafe extern "C-unwind" fn rjit_rt_peek_attr_cached(obj: *mut PyObject, name: *mut PyObject, cache: *mut AttrCache) -> *mut PyObject {
    if obj.is_null() || ffi::Py_TYPE(obj) != ptr::addr_of_mut!(ffi::PyModule_Type) {
        return ptr::null_mut();
    }
    let dict = ffi::PyModule_GetDict(obj);
    if dict.is_null() || ffi::PyDict_CheckExact(dict) == 0 {
        ffi::PyErr_Clear();
        return ptr::null_mut();
    }
    let cache = &mut *cache;
    let version = dict_version(dict);
    if cache.module == obj && cache.version == version && !cache.value.is_null() {
        ffi::Py_INCREF(cache.value);
        return cache.value;
    }
    if !_PyType_Lookup(ptr::addr_of_mut!(ffi::PyModule_Type), name).is_null() {
        return ptr::null_mut();
    }
    let value = ffi::PyDict_GetItemWithError(dict, name);
    if value.is_null() {
        ffi::PyErr_Clear();
        return ptr::null_mut();
    }
    // (A str key's lookup runs no Python code: the version read before still holds.)
    *cache = AttrCache { module: obj, version, value };
    ffi::Py_INCREF(value);
    value
}

/// Sets the error for reading the unbound variable in `localsplus` slot `local` of `code`:
/// for a local or cell variable (LOAD_FAST, DELETE_FAST, LOAD_DEREF of a cell)
/// `UnboundLocalError("cannot access local variable 'x' where it is not associated with a
/// value")`; for a free variable (LOAD_DEREF of an empty closure cell) the interpreter's
/// `NameError("cannot access free variable 'x' ... in enclosing scope")`, with `.name` set.
///
/// # Safety
/// GIL held; `code` is a live code object.
pub unsafe extern "C-unwind" fn rjit_rt_unbound_local(code: *mut PyObject, local: u32) {
    let Some((name, free)) = slot_name(code, local) else {
        return;
    };
    if free {
        raise_naming(ffi::PyExc_NameError, UNBOUND_FREE_MSG, name);
    } else {
        raise_naming(ffi::PyExc_UnboundLocalError, UNBOUND_LOCAL_MSG, name);
    }
    ffi::Py_DECREF(name);
}

/// The name of `localsplus` slot `local` (a new reference) and whether it is a free variable,
/// or None with an exception set.
///
/// 3.11 lays `localsplus` out as: the `co_varnames` (arguments first; an argument that is also
/// a cell keeps its slot), then the cell variables that are not arguments, in `co_cellvars`
/// order, then `co_freevars`. Only the public name tuples are read.
///
/// # Safety
/// GIL held; `code` is a live code object.
unsafe fn slot_name(code: *mut PyObject, local: u32) -> Option<(*mut PyObject, bool)> {
    let varnames = PyCode_GetVarnames(code);
    if varnames.is_null() {
        return None;
    }
    let cellvars = PyCode_GetCellvars(code);
    let freevars = if cellvars.is_null() { ptr::null_mut() } else { PyCode_GetFreevars(code) };
    let found = if freevars.is_null() { None } else { find_slot(varnames, cellvars, freevars, local) };
    if let Some((name, _)) = found {
        ffi::Py_INCREF(name);
    }
    ffi::Py_DECREF(varnames);
    ffi::Py_XDECREF(cellvars);
    ffi::Py_XDECREF(freevars);
    found
}

/// `slot_name`'s search in the three name tuples; the name is borrowed from one of them.
///
/// # Safety
/// GIL held; the arguments are live tuples of str.
unsafe fn find_slot(
    varnames: *mut PyObject,
    cellvars: *mut PyObject,
    freevars: *mut PyObject,
    local: u32,
) -> Option<(*mut PyObject, bool)> {
    let nlocals = ffi::PyTuple_GET_SIZE(varnames);
    let local = local as ffi::Py_ssize_t;
    if local < nlocals {
        return Some((ffi::PyTuple_GET_ITEM(varnames, local), false));
    }
    // Past the plain locals: count the cells that have slots of their own.
    let mut index = local - nlocals;
    for i in 0..ffi::PyTuple_GET_SIZE(cellvars) {
        let cell = ffi::PyTuple_GET_ITEM(cellvars, i);
        match ffi::PySequence_Contains(varnames, cell) {
            shared if shared < 0 => return None,
            // An argument that is also a cell: its slot is the argument's.
            1 => continue,
            _ if index == 0 => return Some((cell, false)),
            _ => index -= 1,
        }
    }
    if index < ffi::PyTuple_GET_SIZE(freevars) {
        return Some((ffi::PyTuple_GET_ITEM(freevars, index), true));
    }
    internal_error("local slot out of range for the code object");
    None
}

/// Sets `exc` with `format` filled with the UTF-8 of `name`, as the interpreter's
/// `format_exc_check_arg`: when `exc` is exactly NameError the exception's `.name` is set to
/// `name` (tracebacks read it to suggest similar names); if the name cannot be encoded the
/// encoding error is what is raised.
///
/// # Safety
/// GIL held; `name` is a live str.
unsafe fn raise_naming(exc: *mut PyObject, format: &CStr, name: *mut PyObject) {
    let utf8 = ffi::PyUnicode_AsUTF8(name);
    if utf8.is_null() {
        return;
    }
    ffi::PyErr_Format(exc, format.as_ptr(), utf8);
    if exc != ffi::PyExc_NameError {
        return;
    }
    let (mut ty, mut value, mut traceback) = (ptr::null_mut(), ptr::null_mut(), ptr::null_mut());
    ffi::PyErr_Fetch(&mut ty, &mut value, &mut traceback);
    ffi::PyErr_NormalizeException(&mut ty, &mut value, &mut traceback);
    if !value.is_null() && ffi::PyErr_GivenExceptionMatches(value, ffi::PyExc_NameError) != 0 {
        // A failure here is dropped by the restore, as in the interpreter: the NameError stands.
        ffi::PyObject_SetAttrString(value, c"name".as_ptr(), name);
    }
    ffi::PyErr_Restore(ty, value, traceback);
}
