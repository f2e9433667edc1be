//! Calls whose result is, at compile time, expected to be a new NumPy array of one type:
//! `np.zeros(shape)`, `np.ones(shape)` and `np.empty(shape)`, optionally with a dtype
//! (`np.zeros((n, m), np.int64)`, `dtype=float`). C order, the default.
//!
//! This is a speculation, not a proof: the global may not be the numpy module when the
//! function runs, `shape` may be a tuple held in a variable. The specialiser checks the
//! array's type (`GuardArray`) wherever it indexes the array natively, as it does for
//! arguments; a wrong guess costs a deopt, never a wrong result.

use crate::hashing::HashMap;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyModule};

use crate::hir::{Function, Op, ValueId};
use crate::numpy::{ArrayType, DType, MAX_NDIM};

/// NumPy's array constructors whose first argument is the shape.
const CONSTRUCTORS: &[&str] = &["zeros", "ones", "empty"];

/// The dtype a `dtype` argument names: NumPy scalar types by their canonical name, and the
/// builtin types NumPy maps to float64, int64 (`long` on 64-bit Linux and macOS) and bool.
const NUMPY_DTYPES: &[(&str, DType)] = &[
    ("float64", DType::F64),
    ("float32", DType::F32),
    ("int64", DType::I64),
    ("int32", DType::I32),
    ("int16", DType::I16),
    ("int8", DType::I8),
    ("uint64", DType::U64),
    ("uint32", DType::U32),
    ("uint16", DType::U16),
    ("uint8", DType::U8),
    ("bool_", DType::Bool),
];

/// The calls of `func` (by result) expected to make a new array, and its type.
pub fn find(
    func: &Function,
    code: &Bound<'_, PyAny>,
    globals: &Bound<'_, PyAny>,
    builtins: Option<&Bound<'_, PyAny>>,
) -> PyResult<HashMap<ValueId, ArrayType>> {
    let mut found = HashMap::default();
    let (Some(np), Ok(globals)) = (crate::numpy::numpy(), globals.cast::<PyDict>()) else {
        return Ok(found);
    };
    let py = code.py();
    let builtins = builtins.and_then(|b| b.cast::<PyDict>().ok());
    let names: Vec<String> = code.getattr("co_names")?.extract()?;
    let consts: Vec<Bound<'_, PyAny>> = code.getattr("co_consts")?.try_iter()?.collect::<PyResult<_>>()?;
    // A global, else a builtin (as LOAD_GLOBAL finds it): dictionaries only.
    let lookup = |name: u32| -> PyResult<Option<Bound<'_, PyAny>>> {
        let name = &names[name as usize];
        if let Some(v) = globals.get_item(name)? {
            return Ok(Some(v));
        }
        builtins.map_or(Ok(None), |b| b.get_item(name))
    };
    // SAFETY: a borrowed module object NumPy's discovery keeps alive.
    let module = unsafe { Bound::from_borrowed_ptr(py, np.module as *mut pyo3::ffi::PyObject) };
    let Ok(module) = module.cast::<PyModule>() else { return Ok(found) };
    let numpy_dict = module.dict();
    let is_numpy = |v: &ValueId, defs: &HashMap<ValueId, &Op>| -> PyResult<bool> {
        Ok(match defs.get(v) {
            Some(Op::LoadGlobal { name }) => lookup(*name)?.is_some_and(|m| m.as_ptr() as usize == np.module),
            _ => false,
        })
    };
    let defs = func.defining_ops();
    // The dtype `v` names, if known.
    let dtype_of = |v: &ValueId| -> PyResult<Option<DType>> {
        let object = match defs.get(v) {
            Some(Op::LoadAttr { obj, name }) if is_numpy(obj, &defs)? => numpy_dict.get_item(&names[*name as usize])?,
            Some(Op::LoadGlobal { name }) => lookup(*name)?,
            _ => None,
        };
        let Some(object) = object else { return Ok(None) };
        for (name, dtype) in NUMPY_DTYPES {
            if numpy_dict.get_item(*name)?.is_some_and(|t| t.is(&object)) {
                return Ok(Some(*dtype));
            }
        }
        let builtin = |t: *mut pyo3::ffi::PyTypeObject| object.as_ptr() == t.cast();
        Ok(if builtin(std::ptr::addr_of_mut!(pyo3::ffi::PyFloat_Type)) {
            Some(DType::F64)
        } else if builtin(std::ptr::addr_of_mut!(pyo3::ffi::PyLong_Type)) {
            Some(DType::I64)
        } else if builtin(std::ptr::addr_of_mut!(pyo3::ffi::PyBool_Type)) {
            Some(DType::Bool)
        } else {
            None
        })
    };
    for instr in func.blocks.iter().flat_map(|b| &b.instrs) {
        let (Op::Call { method, callable, args, kwnames }, Some(r)) = (&instr.op, instr.result) else { continue };
        if !matches!(defs.get(method), Some(Op::Null)) || args.is_empty() || args.len() > 2 {
            continue;
        }
        let Some(Op::LoadAttr { obj, name }) = defs.get(callable) else { continue };
        if !CONSTRUCTORS.contains(&names[*name as usize].as_str()) || !is_numpy(obj, &defs)? {
            continue;
        }
        // The second argument, positional or `dtype=`, is the dtype; nothing else is known.
        let dtype = match (args.len(), kwnames) {
            (1, None) => Some(DType::F64),
            (2, None) => dtype_of(&args[1])?,
            (2, Some(k)) => {
                let kw: Option<Vec<String>> = consts.get(*k as usize).and_then(|t| t.extract().ok());
                match kw.as_deref() {
                    Some([only]) if only == "dtype" => dtype_of(&args[1])?,
                    _ => None,
                }
            }
            _ => None,
        };
        let Some(dtype) = dtype else { continue };
        let ndim = match defs.get(&args[0]) {
            Some(Op::BuildTuple(items)) => items.len(),
            _ => 1,
        };
        if (1..=usize::from(MAX_NDIM)).contains(&ndim) {
            found.insert(r, ArrayType { dtype, ndim: ndim as u8, contiguous: true });
        }
    }
    Ok(found)
}
