//! `a.dtype` comparisons decided at compile time.
//!
//! A function specialised for an array argument `a` guards `a`'s dtype (`numpy::ArrayType`),
//! so `a.dtype == np.float64`, `a.dtype != 'int32'`, `a.dtype == np.dtype('int64')`,
//! `a.dtype.kind == 'f'` or `a.dtype == b.dtype` have one value wherever the guard holds.
//! Each such comparison is computed here, once, on NumPy's own dtype for that type (NumPy's
//! C comparison, so the result is NumPy's), and compiled as a constant behind checks that
//! the arrays are of their types and that the other operand (found through a global or the
//! `numpy` module) is still the object it was (`specialize::DtypeFacts`).
//!
//! Only operands whose comparison with a dtype is NumPy's C code are considered (NumPy's
//! scalar types, the builtin types, dtypes, the spellings of the dtypes rjit knows), so
//! nothing here runs Python code or warns; plain `a.dtype` still loads the array's own
//! dtype object, and `is` comparisons (identity of dtype objects is not guarded) run as
//! written.

use crate::hashing::{HashMap, HashSet};

use pyo3::ffi;
use pyo3::prelude::*;

use crate::hir::specialize::{DtypeFacts, DtypeFold};
use crate::hir::{CompareOp, Function, Op, ValueId};
use crate::numpy::{ArrayType, DType};

/// What a value is known to be at compile time.
#[derive(Clone)]
enum Sym<'py> {
    /// `a.dtype` of array argument `array` (of type `ty`).
    Dtype { array: ValueId, ty: ArrayType },
    /// An attribute of one that is a plain str or int (`a.dtype.kind`).
    Attr { array: ValueId, value: Plain },
    /// An object found at compile time, with the checks (value, address) that keep it so.
    Object { object: Bound<'py, PyAny>, guards: Vec<(ValueId, i64)> },
}

#[derive(Clone, PartialEq, Eq)]
enum Plain {
    Str(String),
    Int(i64),
}

/// The attributes of a dtype folded (`Plain` values that follow from the dtype alone).
fn attribute(dtype: DType, name: &str) -> Option<Plain> {
    Some(match name {
        "kind" => Plain::Str(dtype.kind().into()),
        "char" => Plain::Str(dtype.char().into()),
        "name" => Plain::Str(dtype.name().into()),
        "str" => Plain::Str(dtype.str()),
        "itemsize" => Plain::Int(i64::from(dtype.size())),
        "num" => Plain::Int(i64::from(dtype.type_num())),
        _ => return None,
    })
}

/// Strings NumPy reads as one of the dtypes rjit knows without a warning (their own names,
/// `str`s and characters, and the C and Python type names).
fn known_spelling(s: &str) -> bool {
    const OTHERS: &[&str] = &[
        "float", "int", "bool", "double", "single", "long", "byte", "ubyte", "short", "ushort", "intc", "uintc",
        "longlong", "ulonglong", "half", "float16", "complex", "complex64", "complex128",
    ];
    OTHERS.contains(&s)
        || DType::ALL.iter().any(|d| {
            s == d.name() || s == d.char() || s == d.str() || s == format!("{}{}", d.kind(), d.size()) || s == &d.str()[1..]
        })
}

struct Finder<'a, 'py> {
    py: Python<'py>,
    defs: HashMap<ValueId, &'a Op>,
    names: Vec<String>,
    consts: Vec<Bound<'py, PyAny>>,
    globals: &'a Bound<'py, pyo3::types::PyDict>,
    builtins: Option<&'a Bound<'py, pyo3::types::PyDict>>,
    arrays: &'a [Option<ArrayType>],
    np: &'static crate::numpy::Numpy,
    /// `numpy.dtype`, `numpy.generic`, and NumPy's dtype for each type (made once per
    /// compilation).
    dtype_type: Option<Bound<'py, PyAny>>,
    generic_type: Option<Bound<'py, PyAny>>,
    descrs: HashMap<i32, Bound<'py, PyAny>>,
    /// Values `sym` was asked about and what they are made from (see `DtypeFacts::sources`).
    made_from: HashMap<ValueId, Vec<ValueId>>,
    calls: HashMap<ValueId, (ValueId, i64)>,
}

impl<'py> Finder<'_, 'py> {
    /// A global, else a builtin (as LOAD_GLOBAL finds it): dictionaries only.
    fn global(&self, name: u32) -> PyResult<Option<Bound<'py, PyAny>>> {
        let name = &self.names[name as usize];
        if let Some(v) = self.globals.get_item(name)? {
            return Ok(Some(v));
        }
        match self.builtins {
            Some(b) => b.get_item(name),
            None => Ok(None),
        }
    }

    /// NumPy's dtype for `dtype` (`PyArray_DescrFromType`: the builtin descriptor).
    fn descr(&mut self, dtype: DType) -> Option<Bound<'py, PyAny>> {
        if let Some(d) = self.descrs.get(&dtype.type_num()) {
            return Some(d.clone());
        }
        let (descr_from_type, _) = crate::numpy::array_constructors(self.np)?;
        // SAFETY: NumPy's C API; a new reference or NULL with an exception set.
        let d = unsafe { Bound::from_owned_ptr_or_err(self.py, descr_from_type(dtype.type_num())) }.ok()?;
        self.descrs.insert(dtype.type_num(), d.clone());
        Some(d)
    }

    /// Whether comparing a dtype with `object` is NumPy's C code without a warning: a dtype
    /// (NumPy's comparison), a type NumPy's C code converts (its scalar types, the builtin
    /// number, str, bytes and object types), or a known spelling.
    fn comparable(&mut self, object: &Bound<'py, PyAny>) -> bool {
        let Some(float64) = self.descr(DType::F64) else { return false };
        // SAFETY: reads type objects of live objects.
        unsafe {
            let ty = ffi::Py_TYPE(object.as_ptr());
            let descr_type = ffi::Py_TYPE(float64.as_ptr());
            if let Some(dtype_type) = &self.dtype_type {
                if ffi::PyObject_TypeCheck(object.as_ptr(), dtype_type.as_ptr().cast()) != 0 {
                    // (C functions of NumPy's, compared by address.)
                    let address = |f: Option<ffi::richcmpfunc>| f.map(|f| f as usize);
                    return address((*ty).tp_richcompare) == address((*descr_type).tp_richcompare);
                }
            }
            if ffi::PyType_Check(object.as_ptr()) != 0 {
                let t = object.as_ptr().cast::<ffi::PyTypeObject>();
                if (*t).tp_flags & ffi::Py_TPFLAGS_HEAPTYPE != 0 {
                    return false;
                }
                let builtin = [
                    std::ptr::addr_of_mut!(ffi::PyFloat_Type),
                    std::ptr::addr_of_mut!(ffi::PyLong_Type),
                    std::ptr::addr_of_mut!(ffi::PyBool_Type),
                    std::ptr::addr_of_mut!(ffi::PyComplex_Type),
                    std::ptr::addr_of_mut!(ffi::PyUnicode_Type),
                    std::ptr::addr_of_mut!(ffi::PyBytes_Type),
                    std::ptr::addr_of_mut!(ffi::PyBaseObject_Type),
                ];
                // NumPy's concrete scalar types: static subtypes of `numpy.generic`, but not its
                // abstract ones (NumPy 1.x warns when converting those to a dtype).
                const ABSTRACT: &[&str] = &[
                    "numpy.generic", "numpy.number", "numpy.integer", "numpy.signedinteger", "numpy.unsignedinteger",
                    "numpy.inexact", "numpy.floating", "numpy.complexfloating", "numpy.flexible", "numpy.character",
                ];
                let name = std::ffi::CStr::from_ptr((*t).tp_name).to_str().unwrap_or("");
                let numpy_scalar = !ABSTRACT.contains(&name)
                    && self.generic_type.as_ref().is_some_and(|g| {
                        ffi::PyType_Check(g.as_ptr()) != 0 && ffi::PyType_IsSubtype(t, g.as_ptr().cast()) != 0
                    });
                return builtin.contains(&t) || numpy_scalar;
            }
            if ffi::PyUnicode_CheckExact(object.as_ptr()) != 0 {
                return object.extract::<String>().is_ok_and(|s| known_spelling(&s));
            }
        }
        false
    }

    /// What `v` is at compile time, if known; records what it is made from.
    fn sym(&mut self, v: ValueId) -> PyResult<Option<Sym<'py>>> {
        let Some(op) = self.defs.get(&v).copied() else { return Ok(None) };
        let found = match op {
            Op::LoadAttr { obj, name } => {
                let attr = self.names[*name as usize].clone();
                let attr = attr.as_str();
                match (self.defs.get(obj), attr) {
                    (Some(Op::LoadArg { local }), "dtype") => match self.arrays.get(*local as usize) {
                        Some(Some(ty)) => Some((Sym::Dtype { array: *obj, ty: *ty }, vec![])),
                        _ => None,
                    },
                    // `np.float64`: the global is the numpy module (its dictionary is read).
                    (Some(Op::LoadGlobal { name: module }), _) => match self.global(*module)? {
                        Some(m) if m.as_ptr() as usize == self.np.module => {
                            let item = m.cast::<pyo3::types::PyModule>().ok().map(|m| m.dict().get_item(attr)).transpose()?.flatten();
                            item.map(|object| {
                                let address = object.as_ptr() as i64;
                                (Sym::Object { object, guards: vec![(v, address)] }, vec![])
                            })
                        }
                        _ => None,
                    },
                    _ => match self.sym(*obj)? {
                        Some(Sym::Dtype { array, ty }) => {
                            attribute(ty.dtype, attr).map(|value| (Sym::Attr { array, value }, vec![*obj]))
                        }
                        _ => None,
                    },
                }
            }
            Op::LoadGlobal { name } => {
                self.global(*name)?.map(|object| {
                    let address = object.as_ptr() as i64;
                    (Sym::Object { object, guards: vec![(v, address)] }, vec![])
                })
            }
            Op::Const { index } => self.consts.get(*index as usize).map(|c| (Sym::Object { object: c.clone(), guards: vec![] }, vec![])),
            // `np.dtype('int64')`: the callable is checked before the call.
            Op::Call { method, callable, args, kwnames: None } if args.len() == 1 && matches!(self.defs.get(method), Some(Op::Null)) => {
                let (Some(Sym::Object { object: f, guards: fg }), Some(Sym::Object { object: arg, guards: ag })) =
                    (self.sym(*callable)?, self.sym(args[0])?)
                else {
                    return Ok(None);
                };
                let is_dtype_type = self.dtype_type.as_ref().is_some_and(|t| t.is(&f));
                if !is_dtype_type || fg.len() != 1 || !ag.is_empty() || !self.comparable(&arg) {
                    return Ok(None);
                }
                match f.call1((arg,)) {
                    Ok(descr) => {
                        self.calls.insert(v, fg[0]);
                        Some((Sym::Object { object: descr, guards: vec![] }, vec![*callable]))
                    }
                    Err(_) => None,
                }
            }
            _ => None,
        };
        Ok(found.map(|(sym, parts)| {
            let mut made_from = parts.clone();
            for p in parts {
                made_from.extend(self.made_from.get(&p).cloned().unwrap_or_default());
            }
            self.made_from.insert(v, made_from);
            sym
        }))
    }

    /// The value of `lhs op rhs` for known operands, if NumPy (or Python) decides it alone.
    fn fold(&mut self, op: CompareOp, lhs: &Sym<'py>, rhs: &Sym<'py>) -> Option<bool> {
        let eq = match op {
            CompareOp::Eq => true,
            CompareOp::Ne => false,
            _ => return None,
        };
        let plain = |s: &Sym<'py>| -> Option<Plain> {
            match s {
                Sym::Attr { value, .. } => Some(value.clone()),
                Sym::Object { object, guards } if guards.is_empty() => {
                    // SAFETY: reads the type of a live object.
                    let exact = |t: *mut ffi::PyTypeObject| unsafe { ffi::Py_TYPE(object.as_ptr()) == t };
                    if exact(std::ptr::addr_of_mut!(ffi::PyUnicode_Type)) {
                        object.extract().ok().map(Plain::Str)
                    } else if exact(std::ptr::addr_of_mut!(ffi::PyLong_Type)) {
                        object.extract().ok().map(Plain::Int)
                    } else {
                        None
                    }
                }
                _ => None,
            }
        };
        match (lhs, rhs) {
            // An attribute (str or int) and a constant str or int: Python's equality.
            (Sym::Attr { .. }, _) | (_, Sym::Attr { .. }) => {
                let (a, b) = (plain(lhs)?, plain(rhs)?);
                Some((a == b) == eq)
            }
            (Sym::Dtype { .. }, _) | (_, Sym::Dtype { .. }) => {
                let mut object = |s: &Sym<'py>| -> Option<Bound<'py, PyAny>> {
                    match s {
                        Sym::Dtype { ty, .. } => self.descr(ty.dtype),
                        Sym::Object { object, .. } => self.comparable(object).then(|| object.clone()),
                        Sym::Attr { .. } => None,
                    }
                };
                let (a, b) = (object(lhs)?, object(rhs)?);
                let op = if eq { pyo3::basic::CompareOp::Eq } else { pyo3::basic::CompareOp::Ne };
                let result = a.rich_compare(&b, op).ok()?;
                // SAFETY: compares a live object's address with the bool singletons.
                let is = |o: *mut ffi::PyObject| result.as_ptr() == o;
                if is(unsafe { ffi::Py_True() }) {
                    Some(true)
                } else if is(unsafe { ffi::Py_False() }) {
                    Some(false)
                } else {
                    None
                }
            }
            _ => None,
        }
    }
}

/// The comparisons of `func` decided by its array arguments' dtypes (`arrays`, by argument
/// slot), with `globals` and `builtins` read as LOAD_GLOBAL reads them (dictionaries only).
pub fn find(
    func: &Function,
    code: &Bound<'_, PyAny>,
    globals: &Bound<'_, PyAny>,
    builtins: Option<&Bound<'_, PyAny>>,
    arrays: &[Option<ArrayType>],
) -> PyResult<DtypeFacts> {
    let mut facts = DtypeFacts::default();
    let (Some(np), Ok(globals)) = (crate::numpy::known(), globals.cast::<pyo3::types::PyDict>()) else {
        return Ok(facts);
    };
    if arrays.iter().all(Option::is_none) {
        return Ok(facts);
    }
    let py = code.py();
    let builtins = builtins.and_then(|b| b.cast::<pyo3::types::PyDict>().ok());
    // SAFETY: a borrowed module object NumPy's discovery keeps alive.
    let module = unsafe { Bound::from_borrowed_ptr(py, np.module as *mut ffi::PyObject) };
    let item = |name: &str| -> PyResult<Option<Bound<'_, PyAny>>> {
        Ok(module.cast::<pyo3::types::PyModule>().ok().map(|m| m.dict().get_item(name)).transpose()?.flatten())
    };
    let (dtype_type, generic_type) = (item("dtype")?, item("generic")?);
    let mut finder = Finder {
        py,
        defs: func.defining_ops(),
        names: code.getattr("co_names")?.extract()?,
        consts: code.getattr("co_consts")?.try_iter()?.collect::<PyResult<_>>()?,
        globals,
        builtins,
        arrays,
        np,
        dtype_type,
        generic_type,
        descrs: HashMap::default(),
        made_from: HashMap::default(),
        calls: HashMap::default(),
    };
    let mut sources: HashSet<ValueId> = HashSet::default();
    let mut used_calls: HashSet<ValueId> = HashSet::default();
    for instr in func.blocks.iter().flat_map(|b| &b.instrs) {
        let (Op::Compare { op, lhs, rhs }, Some(r)) = (&instr.op, instr.result) else { continue };
        if instr.deopt.is_none() {
            continue;
        }
        let (Some(a), Some(b)) = (finder.sym(*lhs)?, finder.sym(*rhs)?) else { continue };
        if !matches!(a, Sym::Dtype { .. } | Sym::Attr { .. }) && !matches!(b, Sym::Dtype { .. } | Sym::Attr { .. }) {
            continue;
        }
        let Some(result) = finder.fold(*op, &a, &b) else { continue };
        let mut fold = DtypeFold { result, arrays: vec![], guards: vec![] };
        for s in [&a, &b] {
            match s {
                Sym::Dtype { array, .. } | Sym::Attr { array, .. } => fold.arrays.push(*array),
                Sym::Object { object, guards } => {
                    if !guards.is_empty() {
                        // Compiled code compares with its address: kept alive for good.
                        crate::compiler::pin(object);
                    }
                    fold.guards.extend(guards.iter().copied());
                }
            }
        }
        for v in [*lhs, *rhs] {
            sources.insert(v);
            for p in finder.made_from.get(&v).cloned().unwrap_or_default() {
                sources.insert(p);
                used_calls.insert(p);
            }
            used_calls.insert(v);
        }
        facts.folds.insert(r, fold);
    }
    for (call, (callable, address)) in finder.calls {
        if used_calls.contains(&call) {
            // SAFETY: `address` is `numpy.dtype`, a type the numpy module keeps (pinned too).
            if let Some(t) = &finder.dtype_type {
                crate::compiler::pin(t);
            }
            facts.calls.insert(call, (callable, address));
        }
    }
    facts.sources = sources;
    Ok(facts)
}
