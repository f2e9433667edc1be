//! Helpers for NumPy arrays and scalars in compiled code (see `crate::numpy`): the array
//! guard, the error of an index out of bounds, NumPy scalars made from machine values, and
//! NumPy's own ufunc loops called on one machine float.

use pyo3_ffi as ffi;
use pyo3_ffi::PyObject;

use super::numeric::FLOAT_DEOPT;
use crate::numpy::{self, ArrayType, DType};

/// The argument of `rjit_rt_array_check` for an array type: type number, dimensions, and
/// whether the array must be writeable and C-contiguous.
pub fn array_check_code(ty: ArrayType, writeable: bool) -> i64 {
    i64::from(ty.dtype.type_num()) | i64::from(ty.ndim) << 8 | i64::from(writeable) << 16 | i64::from(ty.contiguous) << 17
}

/// 1 if `object` is an array of the type `code` encodes (`array_check_code`), else 0.
pub unsafe extern "C-unwind" fn rjit_rt_array_check(object: *mut PyObject, code: i64) -> i64 {
    let Some(dtype) = DType::from_type_num((code & 0xff) as i32) else { return 0 };
    let ty = ArrayType { dtype, ndim: ((code >> 8) & 0xff) as u8, contiguous: code & (1 << 17) != 0 };
    i64::from(numpy::is_array_of(object, ty, code & (1 << 16) != 0))
}

/// The position (`it_index`) of `it` if it is a sequence iterator (`iterator`: what
/// `iter(a)` of an ndarray is) iterating `seq`, else -1 (an exhausted one, which no longer
/// holds its sequence, too). The layout is checked once, at import
/// (`compiler::probe_seq_iter_layout`).
pub unsafe extern "C-unwind" fn rjit_rt_seq_iter_index(it: *mut PyObject, seq: *mut PyObject) -> i64 {
    if ffi::Py_TYPE(it) != std::ptr::addr_of_mut!(ffi::PySeqIter_Type) {
        return -1;
    }
    let fields = it.cast::<u8>().add(SEQ_ITER_INDEX);
    let (index, held) = (*fields.cast::<isize>(), *fields.add(8).cast::<*mut PyObject>());
    if held != seq || index < 0 {
        return -1;
    }
    index as i64
}

/// Offset of `it_index` in CPython's `seqiterobject` (`it_seq` follows it).
pub const SEQ_ITER_INDEX: usize = 16;

/// Sets the exception of `array[key]` where compiled code found an index out of bounds: the
/// interpreter's subscript is made (with the indices as written: `n` of them as a tuple, or,
/// for `-n`, one subscript each, as `array[i][j]`), so the error is NumPy's own. Returns 0
/// (for `ExitIfZero`).
pub unsafe extern "C-unwind" fn rjit_rt_array_index_error(array: *mut PyObject, n: i64, i0: i64, i1: i64, i2: i64, i3: i64) -> i64 {
    let indices = [i0, i1, i2, i3];
    if n < 0 {
        let mut current = array;
        ffi::Py_IncRef(current);
        for &i in &indices[..(-n).clamp(1, 4) as usize] {
            let key = ffi::PyLong_FromLongLong(i);
            let next = if key.is_null() { std::ptr::null_mut() } else { ffi::PyObject_GetItem(current, key) };
            ffi::Py_XDECREF(key);
            ffi::Py_DecRef(current);
            if next.is_null() {
                return 0;
            }
            current = next;
        }
        ffi::Py_DecRef(current);
        ffi::PyErr_SetString(ffi::PyExc_SystemError, c"rjit internal error: array index check disagrees with NumPy".as_ptr());
        return 0;
    }
    let n = n.clamp(1, 4) as usize;
    let key = if n == 1 {
        ffi::PyLong_FromLongLong(i0)
    } else {
        let t = ffi::PyTuple_New(n as ffi::Py_ssize_t);
        if !t.is_null() {
            for (k, &i) in indices[..n].iter().enumerate() {
                let item = ffi::PyLong_FromLongLong(i);
                if item.is_null() {
                    ffi::Py_DecRef(t);
                    return 0;
                }
                ffi::PyTuple_SetItem(t, k as ffi::Py_ssize_t, item);
            }
        }
        t
    };
    if key.is_null() {
        return 0;
    }
    let item = ffi::PyObject_GetItem(array, key);
    ffi::Py_DecRef(key);
    if !item.is_null() {
        ffi::Py_DecRef(item);
        ffi::PyErr_SetString(ffi::PyExc_SystemError, c"rjit internal error: array index check disagrees with NumPy".as_ptr());
    }
    0
}

/// A NumPy scalar of `type_addr` holding the 8 bytes `bits` (new reference; NULL on error).
unsafe fn scalar(type_addr: usize, bits: u64) -> *mut PyObject {
    let ty = type_addr as *mut ffi::PyTypeObject;
    let Some(alloc) = (*ty).tp_alloc else {
        ffi::PyErr_SetString(ffi::PyExc_SystemError, c"rjit internal error: NumPy scalar type without tp_alloc".as_ptr());
        return std::ptr::null_mut();
    };
    let object = alloc(ty, 0);
    if !object.is_null() {
        *object.cast::<u8>().add(numpy::SCALAR_VALUE).cast::<u64>() = bits;
    }
    object
}

fn numpy_missing() -> *mut PyObject {
    // SAFETY: GIL held (called from compiled code).
    unsafe { ffi::PyErr_SetString(ffi::PyExc_SystemError, c"rjit internal error: NumPy scalar without NumPy".as_ptr()) };
    std::ptr::null_mut()
}

/// `numpy.float64` for IEEE bits, or a `float` unless `numpy_flag` (new reference).
pub unsafe extern "C-unwind" fn rjit_rt_box_np_f64(bits: u64, numpy_flag: i64) -> *mut PyObject {
    if numpy_flag == 0 {
        return ffi::PyFloat_FromDouble(f64::from_bits(bits));
    }
    match numpy::known() {
        Some(np) => scalar(np.float64, bits),
        None => numpy_missing(),
    }
}

/// `numpy.int64`, or an `int` unless `numpy_flag` (new reference).
pub unsafe extern "C-unwind" fn rjit_rt_box_np_i64(value: i64, numpy_flag: i64) -> *mut PyObject {
    if numpy_flag == 0 {
        return ffi::PyLong_FromLongLong(value);
    }
    match numpy::known() {
        Some(np) => scalar(np.int64, value as u64),
        None => numpy_missing(),
    }
}

/// `numpy.True_` / `numpy.False_`, or `True` / `False` unless `numpy_flag` (new reference).
pub unsafe extern "C-unwind" fn rjit_rt_box_np_bool(value: i64, numpy_flag: i64) -> *mut PyObject {
    let object = if numpy_flag == 0 {
        if value != 0 { ffi::Py_True() } else { ffi::Py_False() }
    } else {
        match numpy::known() {
            Some(np) => (if value != 0 { np.true_ } else { np.false_ }) as *mut PyObject,
            None => return numpy_missing(),
        }
    };
    ffi::Py_IncRef(object);
    object
}

/// A NumPy inner loop (`PyUFuncGenericFunction`).
pub(super) type UfuncFunction = unsafe extern "C" fn(*mut *mut u8, *const isize, *const isize, *mut std::ffi::c_void);

/// MXCSR's flags of the floating-point exceptions NumPy reports: invalid (bit 0), divide by
/// zero (2), overflow (3), underflow (4). (Compiled code tests the same bits.)
#[cfg(target_arch = "x86_64")]
pub const FP_REPORTED: u32 = 0x01 | 0x04 | 0x08 | 0x10;

/// Clears the sticky floating-point exception flags NumPy reports, if any is set (writing
/// the control register is slow: it is only done when needed).
#[cfg(target_arch = "x86_64")]
pub(super) fn clear_fp_flags() {
    let mut csr: u32 = 0;
    // SAFETY: reads (and, with a flag set, writes) the SSE control/status register's flags.
    unsafe {
        std::arch::asm!("stmxcsr [{}]", in(reg) &mut csr, options(nostack));
        if csr & FP_REPORTED != 0 {
            csr &= !0x3f;
            std::arch::asm!("ldmxcsr [{}]", in(reg) &csr, options(nostack));
        }
    }
}

#[cfg(target_arch = "x86_64")]
pub(super) fn fp_flags_raised() -> bool {
    save_fp_flags() & FP_REPORTED != 0
}

/// The SSE control/status register (its flags, to put back with `restore_fp_flags`).
#[cfg(target_arch = "x86_64")]
pub(super) fn save_fp_flags() -> u32 {
    let mut csr: u32 = 0;
    // SAFETY: reads the SSE control/status register.
    unsafe { std::arch::asm!("stmxcsr [{}]", in(reg) &mut csr, options(nostack)) };
    csr
}

/// Sets the exception flags to those of `saved` (see `save_fp_flags`), the controls kept.
#[cfg(target_arch = "x86_64")]
pub(super) fn restore_fp_flags(saved: u32) {
    let csr = (save_fp_flags() & !0x3f) | (saved & 0x3f);
    // SAFETY: writes the flags read before back; the control bits are the current ones.
    unsafe { std::arch::asm!("ldmxcsr [{}]", in(reg) &csr, options(nostack)) };
}

// Elsewhere no flags are read: every call is redone by the interpreter.
#[cfg(not(target_arch = "x86_64"))]
pub(super) fn clear_fp_flags() {}
#[cfg(not(target_arch = "x86_64"))]
pub(super) fn fp_flags_raised() -> bool {
    true
}
#[cfg(not(target_arch = "x86_64"))]
pub(super) fn save_fp_flags() -> u32 {
    0
}
#[cfg(not(target_arch = "x86_64"))]
pub(super) fn restore_fp_flags(_: u32) {}

/// NumPy's float64 loop `function` (with its `data`) on `inputs`: the result's bits, or
/// `FLOAT_DEOPT` if it raised a floating-point exception NumPy would report (a warning or an
/// error, as `numpy.errstate` says: the interpreter redoes the call).
pub(super) unsafe fn run_loop(function: usize, data: usize, inputs: &mut [f64]) -> u64 {
    clear_fp_flags();
    let out = run_loop_unchecked(function, data, inputs);
    if fp_flags_raised() {
        return FLOAT_DEOPT;
    }
    out
}

/// A one-argument float64 ufunc on IEEE bits (see `run_loop`).
pub unsafe extern "C-unwind" fn rjit_rt_ufunc_1(function: usize, data: usize, x: u64) -> u64 {
    run_loop(function, data, &mut [f64::from_bits(x)])
}

/// A two-argument float64 ufunc on IEEE bits (see `run_loop`).
pub unsafe extern "C-unwind" fn rjit_rt_ufunc_2(function: usize, data: usize, x: u64, y: u64) -> u64 {
    run_loop(function, data, &mut [f64::from_bits(x), f64::from_bits(y)])
}

/// NumPy's float64 loop `function` (with its `data`) on `inputs`, leaving the floating-point
/// exception flags to the compiled code, which checks them after the call (`GuardFpFlags`:
/// `hir::ufunc_flags`). Flags left set before the call make that check leave for nothing
/// (slow, not wrong: the interpreter redoes the call), so the call need not clear them.
unsafe fn run_loop_unchecked(function: usize, data: usize, inputs: &mut [f64]) -> u64 {
    let mut out = 0f64;
    let mut args: [*mut u8; 3] = [std::ptr::null_mut(); 3];
    for (slot, x) in args.iter_mut().zip(inputs.iter_mut()) {
        *slot = (x as *mut f64).cast();
    }
    args[inputs.len()] = (&mut out as *mut f64).cast();
    let n: isize = 1;
    let steps: [isize; 3] = [8, 8, 8];
    // SAFETY: `function` is the ufunc's loop for float64 arguments (see `numpy::float64_loop`).
    let f: UfuncFunction = std::mem::transmute(function);
    f(args.as_mut_ptr(), &n, steps.as_ptr(), data as *mut std::ffi::c_void);
    out.to_bits()
}

/// A one-argument float64 ufunc on IEEE bits, flags left to the caller (see
/// `run_loop_unchecked`).
pub unsafe extern "C-unwind" fn rjit_rt_ufunc_1_unchecked(function: usize, data: usize, x: u64) -> u64 {
    run_loop_unchecked(function, data, &mut [f64::from_bits(x)])
}

/// A two-argument float64 ufunc on IEEE bits, likewise.
pub unsafe extern "C-unwind" fn rjit_rt_ufunc_2_unchecked(function: usize, data: usize, x: u64, y: u64) -> u64 {
    run_loop_unchecked(function, data, &mut [f64::from_bits(x), f64::from_bits(y)])
}

/// An arithmetic operator of an array and a number done here (see `array_scalar`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArrayOp {
    Add,
    Sub,
    Mul,
    Div,
}

/// `lhs op rhs` where one side is a C-contiguous float64 or int64 ndarray and the other a
/// `float`, `numpy.float64` (or, with a float64 array, an `int` or `numpy.int64`): a new
/// float64 array, computed element by element as NumPy's loop does (IEEE arithmetic, the
/// array's operand order kept), without NumPy's ufunc dispatch. None for anything else, and
/// when the arithmetic raised a floating-point exception (NumPy then redoes it, with its
/// warnings): the caller makes the generic call.
///
/// # Safety
/// GIL held; live objects.
pub unsafe fn array_scalar(op: ArrayOp, lhs: *mut PyObject, rhs: *mut PyObject) -> Option<*mut PyObject> {
    let np = numpy::known()?;
    let ndarray = np.ndarray as *mut ffi::PyTypeObject;
    let (array, scalar, reversed) = if ffi::Py_TYPE(lhs) == ndarray {
        (lhs, rhs, false)
    } else if ffi::Py_TYPE(rhs) == ndarray {
        (rhs, lhs, true)
    } else {
        return None;
    };
    let ty = numpy::array_type(array)?;
    let base = array.cast::<u8>();
    let flags = *base.add(numpy::ARRAY_FLAGS as usize).cast::<i32>();
    let wanted = numpy::FLAG_C_CONTIGUOUS | numpy::FLAG_ALIGNED;
    if flags & wanted != wanted || !matches!(ty.dtype, DType::F64 | DType::I64) {
        return None;
    }
    let scalar_type = ffi::Py_TYPE(scalar) as usize;
    let s = if ffi::PyFloat_CheckExact(scalar) != 0 || scalar_type == np.float64 {
        *scalar.cast::<u8>().add(numpy::SCALAR_VALUE).cast::<f64>()
    } else if ty.dtype == DType::F64 && scalar_type == np.int64 {
        *scalar.cast::<u8>().add(numpy::SCALAR_VALUE).cast::<i64>() as f64
    } else if ty.dtype == DType::F64 && ffi::PyLong_CheckExact(scalar) != 0 {
        let mut overflow = 0;
        let v = ffi::PyLong_AsLongLongAndOverflow(scalar, &mut overflow);
        if overflow != 0 || (v == -1 && !ffi::PyErr_Occurred().is_null()) {
            ffi::PyErr_Clear();
            return None;
        }
        v as f64
    } else {
        return None;
    };
    let (descr_from_type, new_from_descr) = numpy::array_constructors(np)?;
    let ndim = i32::from(ty.ndim);
    let dims = *base.add(numpy::ARRAY_DIMENSIONS as usize).cast::<*const isize>();
    let descr = descr_from_type(12);
    if descr.is_null() {
        return Some(std::ptr::null_mut());
    }
    let result = new_from_descr(ndarray, descr, ndim, dims, std::ptr::null(), std::ptr::null_mut(), 0, std::ptr::null_mut());
    if result.is_null() {
        return Some(result);
    }
    let n = (0..ty.ndim as usize).map(|k| *dims.add(k)).product::<isize>().max(0) as usize;
    let src = *base.add(numpy::ARRAY_DATA as usize).cast::<*const u8>();
    let dst = *result.cast::<u8>().add(numpy::ARRAY_DATA as usize).cast::<*mut f64>();
    let out = std::slice::from_raw_parts_mut(dst, n);
    clear_fp_flags();
    match ty.dtype {
        DType::F64 => elementwise(std::slice::from_raw_parts(src.cast::<f64>(), n), out, s, op, reversed),
        _ => elementwise(std::slice::from_raw_parts(src.cast::<i64>(), n), out, s, op, reversed),
    }
    if fp_flags_raised() {
        ffi::Py_DecRef(result);
        return None;
    }
    Some(result)
}

/// An element as a float64, as NumPy casts it.
trait AsF64: Copy {
    fn as_f64(self) -> f64;
}

impl AsF64 for f64 {
    #[inline(always)]
    fn as_f64(self) -> f64 {
        self
    }
}

impl AsF64 for i64 {
    #[inline(always)]
    fn as_f64(self) -> f64 {
        self as f64
    }
}

/// `out[i] = src[i] op s` (`s op src[i]` if `reversed`), one loop per case so that each is
/// a straight (vectorisable) loop.
fn elementwise<T: AsF64>(src: &[T], out: &mut [f64], s: f64, op: ArrayOp, reversed: bool) {
    fn each<T: AsF64>(src: &[T], out: &mut [f64], f: impl Fn(f64) -> f64) {
        for (o, x) in out.iter_mut().zip(src) {
            *o = f(x.as_f64());
        }
    }
    match (op, reversed) {
        (ArrayOp::Add, false) => each(src, out, |x| x + s),
        (ArrayOp::Add, true) => each(src, out, |x| s + x),
        (ArrayOp::Sub, false) => each(src, out, |x| x - s),
        (ArrayOp::Sub, true) => each(src, out, |x| s - x),
        (ArrayOp::Mul, false) => each(src, out, |x| x * s),
        (ArrayOp::Mul, true) => each(src, out, |x| s * x),
        (ArrayOp::Div, false) => each(src, out, |x| x / s),
        (ArrayOp::Div, true) => each(src, out, |x| s / x),
    }
}
