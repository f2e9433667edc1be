//! What rjit knows about NumPy, without linking it: the ndarray and scalar type objects,
//! taken at run time from the `numpy` module once a program has imported it, and the layout
//! of NumPy's public C structs (`PyArrayObject_fields`, `PyArray_Descr`, `PyUFuncObject`),
//! which is the same in NumPy 1.26 and 2.x for every field read here.
//!
//! Nothing here imports NumPy: without it (or before the program imports it) no value is an
//! array to the specialiser, and everything runs as before.

use std::sync::OnceLock;

use pyo3_ffi as ffi;
use pyo3_ffi::PyObject;

/// Offsets in `PyArrayObject_fields` (after the 16-byte object header).
pub const ARRAY_DATA: u32 = 16;
pub const ARRAY_NDIM: u32 = 24;
pub const ARRAY_DIMENSIONS: u32 = 32;
pub const ARRAY_STRIDES: u32 = 40;
pub const ARRAY_DESCR: u32 = 56;
pub const ARRAY_FLAGS: u32 = 64;
/// `NPY_ARRAY_WRITEABLE`.
pub const FLAG_WRITEABLE: i32 = 0x0400;
/// `NPY_ARRAY_C_CONTIGUOUS` and `NPY_ARRAY_ALIGNED`.
pub const FLAG_C_CONTIGUOUS: i32 = 0x0001;
pub const FLAG_ALIGNED: i32 = 0x0100;
/// Offsets in `PyArray_Descr`: the scalar type, the byte order character, the type number.
const DESCR_TYPEOBJ: usize = 16;
const DESCR_BYTEORDER: usize = 26;
const DESCR_TYPE_NUM: usize = 28;
/// The value of a NumPy scalar of a 1-, 2-, 4- or 8-byte type (`obval`), after the header.
pub const SCALAR_VALUE: usize = 16;

/// The element types rjit accesses natively, by NumPy type number (stable since NumPy 1.0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DType {
    Bool,
    I8,
    U8,
    I16,
    U16,
    I32,
    U32,
    /// `NPY_LONG`: `numpy.int64` on 64-bit Linux and macOS.
    I64,
    U64,
    F32,
    F64,
}

impl DType {
    /// The dtype of NumPy type number `n` (`NPY_LONGLONG` and the others rjit leaves to the
    /// interpreter: None).
    pub fn from_type_num(n: i32) -> Option<DType> {
        Some(match n {
            0 => DType::Bool,
            1 => DType::I8,
            2 => DType::U8,
            3 => DType::I16,
            4 => DType::U16,
            5 => DType::I32,
            6 => DType::U32,
            7 if std::mem::size_of::<std::ffi::c_long>() == 8 => DType::I64,
            8 if std::mem::size_of::<std::ffi::c_long>() == 8 => DType::U64,
            11 => DType::F32,
            12 => DType::F64,
            _ => return None,
        })
    }

    pub fn type_num(self) -> i32 {
        match self {
            DType::Bool => 0,
            DType::I8 => 1,
            DType::U8 => 2,
            DType::I16 => 3,
            DType::U16 => 4,
            DType::I32 => 5,
            DType::U32 => 6,
            DType::I64 => 7,
            DType::U64 => 8,
            DType::F32 => 11,
            DType::F64 => 12,
        }
    }

    /// The element size in bytes.
    pub fn size(self) -> u8 {
        match self {
            DType::Bool | DType::I8 | DType::U8 => 1,
            DType::I16 | DType::U16 => 2,
            DType::I32 | DType::U32 | DType::F32 => 4,
            DType::I64 | DType::U64 | DType::F64 => 8,
        }
    }

    /// The range of an integer dtype (as i64; `U64` is limited to what an i64 holds).
    pub fn int_range(self) -> Option<(i64, i64)> {
        Some(match self {
            DType::I8 => (i8::MIN.into(), i8::MAX.into()),
            DType::U8 => (0, u8::MAX.into()),
            DType::I16 => (i16::MIN.into(), i16::MAX.into()),
            DType::U16 => (0, u16::MAX.into()),
            DType::I32 => (i32::MIN.into(), i32::MAX.into()),
            DType::U32 => (0, u32::MAX.into()),
            DType::I64 => (i64::MIN, i64::MAX),
            DType::U64 => (0, i64::MAX),
            DType::Bool | DType::F32 | DType::F64 => return None,
        })
    }

    /// `dtype.kind`.
    pub fn kind(self) -> &'static str {
        match self {
            DType::Bool => "b",
            DType::I8 | DType::I16 | DType::I32 | DType::I64 => "i",
            DType::U8 | DType::U16 | DType::U32 | DType::U64 => "u",
            DType::F32 | DType::F64 => "f",
        }
    }

    /// `dtype.char` (`l`: `NPY_LONG`, the only 64-bit int type rjit accesses natively).
    pub fn char(self) -> &'static str {
        match self {
            DType::Bool => "?",
            DType::I8 => "b",
            DType::U8 => "B",
            DType::I16 => "h",
            DType::U16 => "H",
            DType::I32 => "i",
            DType::U32 => "I",
            DType::I64 => "l",
            DType::U64 => "L",
            DType::F32 => "f",
            DType::F64 => "d",
        }
    }

    /// `dtype.str` of the native-byte-order dtype (little-endian: rjit does not run on
    /// big-endian machines, see `discover`).
    pub fn str(self) -> String {
        let order = if self.size() == 1 { '|' } else { '<' };
        format!("{order}{}{}", self.kind(), self.size())
    }

    pub const ALL: [DType; 11] = [
        DType::Bool,
        DType::I8,
        DType::U8,
        DType::I16,
        DType::U16,
        DType::I32,
        DType::U32,
        DType::I64,
        DType::U64,
        DType::F32,
        DType::F64,
    ];

    pub fn name(self) -> &'static str {
        match self {
            DType::Bool => "bool",
            DType::I8 => "int8",
            DType::U8 => "uint8",
            DType::I16 => "int16",
            DType::U16 => "uint16",
            DType::I32 => "int32",
            DType::U32 => "uint32",
            DType::I64 => "int64",
            DType::U64 => "uint64",
            DType::F32 => "float32",
            DType::F64 => "float64",
        }
    }
}

/// The type of an ndarray as the specialiser uses it: exactly `numpy.ndarray`, native byte
/// order, this dtype and number of dimensions, and C-contiguous if `contiguous` (the last
/// axis's stride is then the element size: no multiplication), else any strides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ArrayType {
    pub dtype: DType,
    pub ndim: u8,
    pub contiguous: bool,
}

impl std::fmt::Display for ArrayType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ndarray[{}, {}d{}]", self.dtype.name(), self.ndim, if self.contiguous { ", C-contiguous" } else { "" })
    }
}

/// The most dimensions an access is compiled for.
pub const MAX_NDIM: u8 = 4;

/// NumPy's objects rjit compares with (strong references, kept for the life of the process).
#[derive(Debug)]
pub struct Numpy {
    pub module: usize,
    pub ndarray: usize,
    pub ufunc: usize,
    pub float64: usize,
    pub int64: usize,
    pub bool_: usize,
    pub true_: usize,
    pub false_: usize,
    /// NumPy's C API table (`PyArray_API`), or 0 if it was not found.
    pub api: usize,
}

static NUMPY: OnceLock<Numpy> = OnceLock::new();

/// NumPy's objects, if the program has imported `numpy` (looked up in `sys.modules` and the
/// module's dict only: nothing is imported or called). GIL held.
pub fn numpy() -> Option<&'static Numpy> {
    if let Some(n) = NUMPY.get() {
        return Some(n);
    }
    // SAFETY: GIL held; dictionary reads with borrowed results, each checked.
    let found = unsafe { discover() }?;
    let _ = NUMPY.set(found);
    NUMPY.get()
}

/// NumPy's objects if they were found already (no lookup: for run-time helpers).
pub fn known() -> Option<&'static Numpy> {
    NUMPY.get()
}

unsafe fn discover() -> Option<Numpy> {
    if cfg!(target_endian = "big") {
        return None;
    }
    let modules = ffi::PyImport_GetModuleDict();
    let module = ffi::PyDict_GetItemString(modules, c"numpy".as_ptr());
    if module.is_null() || ffi::PyModule_Check(module) == 0 {
        return None;
    }
    let dict = ffi::PyModule_GetDict(module);
    let get = |name: &std::ffi::CStr| -> Option<*mut PyObject> {
        let v = ffi::PyDict_GetItemString(dict, name.as_ptr());
        (!v.is_null()).then_some(v)
    };
    let is_type = |v: *mut PyObject| ffi::PyType_Check(v) != 0;
    let (ndarray, ufunc) = (get(c"ndarray")?, get(c"ufunc")?);
    let (float64, int64, bool_) = (get(c"float64")?, get(c"int64")?, get(c"bool_")?);
    let (true_, false_) = (get(c"True_")?, get(c"False_")?);
    if ![ndarray, ufunc, float64, int64, bool_].into_iter().all(is_type) {
        return None;
    }
    // The scalars rjit makes hold their value right after the header.
    for scalar in [float64, int64] {
        if (*scalar.cast::<ffi::PyTypeObject>()).tp_basicsize != (SCALAR_VALUE + 8) as ffi::Py_ssize_t {
            return None;
        }
    }
    if ffi::Py_TYPE(true_) != bool_.cast() || ffi::Py_TYPE(false_) != bool_.cast() {
        return None;
    }
    let objects = [module, ndarray, ufunc, float64, int64, bool_, true_, false_];
    for o in objects {
        ffi::Py_IncRef(o); // never released: the addresses are compiled into machine code
    }
    let [module, ndarray, ufunc, float64, int64, bool_, true_, false_] = objects.map(|o| o as usize);
    let api = c_api_table(modules);
    Some(Numpy { module, ndarray, ufunc, float64, int64, bool_, true_, false_, api })
}

/// NumPy's C API table, from the `_ARRAY_API` capsule of its (already imported) core module.
unsafe fn c_api_table(modules: *mut PyObject) -> usize {
    for name in [c"numpy._core._multiarray_umath", c"numpy.core._multiarray_umath"] {
        let module = ffi::PyDict_GetItemString(modules, name.as_ptr());
        if module.is_null() || ffi::PyModule_Check(module) == 0 {
            continue;
        }
        let capsule = ffi::PyDict_GetItemString(ffi::PyModule_GetDict(module), c"_ARRAY_API".as_ptr());
        if capsule.is_null() || ffi::PyCapsule_CheckExact(capsule) == 0 {
            continue;
        }
        let table = ffi::PyCapsule_GetPointer(capsule, std::ptr::null());
        if table.is_null() {
            ffi::PyErr_Clear();
            continue;
        }
        ffi::Py_IncRef(capsule); // the table lives as long as its capsule: for good
        return table as usize;
    }
    0
}

/// `PyArray_DescrFromType` and `PyArray_NewFromDescr` from NumPy's C API table (stable
/// indices 45 and 94 in NumPy 1.x and 2.x).
pub type DescrFromType = unsafe extern "C" fn(i32) -> *mut PyObject;
pub type NewFromDescr = unsafe extern "C" fn(
    *mut ffi::PyTypeObject,
    *mut PyObject,
    i32,
    *const isize,
    *const isize,
    *mut std::ffi::c_void,
    i32,
    *mut PyObject,
) -> *mut PyObject;

/// The two C API functions rjit calls to make arrays.
pub fn array_constructors(np: &Numpy) -> Option<(DescrFromType, NewFromDescr)> {
    if np.api == 0 {
        return None;
    }
    // SAFETY: the table NumPy exports, with these signatures at these indices.
    unsafe {
        let table = np.api as *const usize;
        let (descr, new) = (*table.add(45), *table.add(94));
        if descr == 0 || new == 0 {
            return None;
        }
        Some((std::mem::transmute::<usize, DescrFromType>(descr), std::mem::transmute::<usize, NewFromDescr>(new)))
    }
}

/// The array type of `object` if it is exactly an ndarray rjit accesses natively.
///
/// # Safety
/// `object` is a live object; GIL held.
pub unsafe fn array_type(object: *mut PyObject) -> Option<ArrayType> {
    let np = known()?;
    if object.is_null() || ffi::Py_TYPE(object) as usize != np.ndarray {
        return None;
    }
    let base = object.cast::<u8>();
    let ndim = *base.add(ARRAY_NDIM as usize).cast::<i32>();
    if !(1..=i32::from(MAX_NDIM)).contains(&ndim) {
        return None;
    }
    let descr = *base.add(ARRAY_DESCR as usize).cast::<*const u8>();
    let dtype = descr_dtype(descr, np)?;
    let flags = *base.add(ARRAY_FLAGS as usize).cast::<i32>();
    Some(ArrayType { dtype, ndim: ndim as u8, contiguous: flags & FLAG_C_CONTIGUOUS != 0 })
}

/// The dtype of a descriptor that is a native-byte-order builtin numeric type.
unsafe fn descr_dtype(descr: *const u8, np: &Numpy) -> Option<DType> {
    if descr.is_null() || *descr.add(DESCR_BYTEORDER) == b'>' {
        return None;
    }
    let dtype = DType::from_type_num(*descr.add(DESCR_TYPE_NUM).cast::<i32>())?;
    // int64 elements become `numpy.int64` scalars: the descriptor must say so.
    if dtype == DType::I64 && *descr.add(DESCR_TYPEOBJ).cast::<usize>() != np.int64 {
        return None;
    }
    Some(dtype)
}

/// Whether `object` is (still) an array of type `ty`, writeable if `writeable`.
///
/// # Safety
/// `object` is a live object; GIL held.
pub unsafe fn is_array_of(object: *mut PyObject, ty: ArrayType, writeable: bool) -> bool {
    let Some(actual) = array_type(object) else { return false };
    if actual.dtype != ty.dtype || actual.ndim != ty.ndim || (ty.contiguous && !actual.contiguous) {
        return false;
    }
    let flags = *object.cast::<u8>().add(ARRAY_FLAGS as usize).cast::<i32>();
    !writeable || flags & FLAG_WRITEABLE != 0
}

/// What a NumPy ufunc of one or two float64 arguments runs on them: its inner loop for
/// `float64 -> float64` (or `float64, float64 -> float64`) and that loop's data, as NumPy
/// itself calls them (so results are NumPy's to the bit), and its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UfuncLoop {
    pub function: usize,
    pub data: usize,
    pub nin: u8,
    /// Whether int64 arguments (and Python ints) go through this loop too: the ufunc has no
    /// loop of its own for them (`numpy.floor` of an int may keep it an int).
    pub int_args: bool,
}

/// Offsets in `PyUFuncObject`.
const UFUNC_NIN: usize = 16;
const UFUNC_NOUT: usize = 20;
const UFUNC_FUNCTIONS: usize = 32;
const UFUNC_DATA: usize = 40;
const UFUNC_NTYPES: usize = 48;
const UFUNC_NAME: usize = 56;
const UFUNC_TYPES: usize = 64;
const NPY_DOUBLE: u8 = 12;
const NPY_LONG: u8 = 7;
const NPY_LONGLONG: u8 = 9;

/// The name of `object` if it is a NumPy ufunc.
///
/// # Safety
/// `object` is a live object; GIL held.
pub unsafe fn ufunc_name(object: *mut PyObject) -> Option<String> {
    let np = known()?;
    if ffi::Py_TYPE(object) as usize != np.ufunc {
        return None;
    }
    let name = *object.cast::<u8>().add(UFUNC_NAME).cast::<*const std::ffi::c_char>();
    (!name.is_null()).then(|| std::ffi::CStr::from_ptr(name).to_string_lossy().into_owned())
}

/// The all-float64 loop of ufunc `object` with `nin` inputs and one output.
///
/// # Safety
/// `object` is a live ufunc (see `ufunc_name`); GIL held.
pub unsafe fn float64_loop(object: *mut PyObject, nin: u8) -> Option<UfuncLoop> {
    let base = object.cast::<u8>();
    let (n_in, n_out) = (*base.add(UFUNC_NIN).cast::<i32>(), *base.add(UFUNC_NOUT).cast::<i32>());
    if n_in != i32::from(nin) || n_out != 1 {
        return None;
    }
    let ntypes = *base.add(UFUNC_NTYPES).cast::<i32>();
    let functions = *base.add(UFUNC_FUNCTIONS).cast::<*const usize>();
    let data = *base.add(UFUNC_DATA).cast::<*const usize>();
    let types = *base.add(UFUNC_TYPES).cast::<*const u8>();
    if functions.is_null() || data.is_null() || types.is_null() {
        return None;
    }
    let nargs = usize::from(nin) + 1;
    let row = |k: usize| std::slice::from_raw_parts(types.add(k * nargs), nargs);
    let ntypes = ntypes.max(0) as usize;
    let int_args = !(0..ntypes).any(|k| row(k)[..usize::from(nin)].iter().any(|&t| t == NPY_LONG || t == NPY_LONGLONG));
    (0..ntypes).find_map(|k| {
        let function = *functions.add(k);
        (row(k).iter().all(|&t| t == NPY_DOUBLE) && function != 0).then(|| UfuncLoop { function, data: *data.add(k), nin, int_args })
    })
}
