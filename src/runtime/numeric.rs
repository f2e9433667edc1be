//! Helpers for unboxed numbers: boxing machine values back into objects, and the float
//! operations with Python's special cases (`//`, `%`, `**`), mirroring `Objects/floatobject.c`.
//!
//! Float helpers take and return IEEE bits in general registers (the code generator keeps
//! floats there). A case where Python raises (division by zero, overflow) or gives a complex
//! number returns `FLOAT_DEOPT`, a signalling NaN no arithmetic produces: compiled code then
//! deoptimises and the interpreter redoes the operation, raising exactly as it does.

use pyo3_ffi as ffi;
use pyo3_ffi::PyObject;

/// Returned by the float helpers when the interpreter must redo the operation.
pub const FLOAT_DEOPT: u64 = 0x7ff0_dead_beef_0001;

/// `int` object for a machine int (new reference; NULL with MemoryError).
pub unsafe extern "C-unwind" fn rjit_rt_box_i64(value: i64) -> *mut PyObject {
    ffi::PyLong_FromLongLong(value)
}

/// `float` object for IEEE bits (new reference; NULL with MemoryError).
pub unsafe extern "C-unwind" fn rjit_rt_box_f64(bits: u64) -> *mut PyObject {
    ffi::PyFloat_FromDouble(f64::from_bits(bits))
}

/// `True` or `False` (new reference).
pub unsafe extern "C-unwind" fn rjit_rt_box_bool(value: u64) -> *mut PyObject {
    let object = if value != 0 { ffi::Py_True() } else { ffi::Py_False() };
    ffi::Py_IncRef(object);
    object
}

/// Python's `a % b` on floats.
pub extern "C" fn rjit_rt_float_mod(a: u64, b: u64) -> u64 {
    let (vx, wx) = (f64::from_bits(a), f64::from_bits(b));
    if wx == 0.0 {
        return FLOAT_DEOPT;
    }
    float_mod(vx, wx).to_bits()
}

fn float_mod(vx: f64, wx: f64) -> f64 {
    let mut m = vx % wx;
    if m != 0.0 {
        if (wx < 0.0) != (m < 0.0) {
            m += wx;
        }
    } else {
        m = 0.0f64.copysign(wx);
    }
    m
}

/// Python's `a // b` on floats.
pub extern "C" fn rjit_rt_float_floordiv(a: u64, b: u64) -> u64 {
    let (vx, wx) = (f64::from_bits(a), f64::from_bits(b));
    if wx == 0.0 {
        return FLOAT_DEOPT;
    }
    let m = vx % wx;
    let mut div = (vx - m) / wx;
    if m != 0.0 && (wx < 0.0) != (m < 0.0) {
        div -= 1.0;
    }
    let floordiv = if div != 0.0 {
        let mut f = div.floor();
        if div - f > 0.5 {
            f += 1.0;
        }
        f
    } else {
        0.0f64.copysign(vx / wx)
    };
    floordiv.to_bits()
}

/// CPython's `DOUBLE_IS_ODD_INTEGER`.
fn is_odd_integer(x: f64) -> bool {
    x.abs() % 2.0 == 1.0
}

/// A `math` function of a float (`hir::MathFn` by index), as CPython's `math_1` computes it
/// with the same C library; a NaN from a number or an infinity from a finite number (a
/// domain error or an overflow the interpreter raises) gives `FLOAT_DEOPT`.
pub extern "C" fn rjit_rt_math_1(func: u64, bits: u64) -> u64 {
    use crate::hir::MathFn;
    let x = f64::from_bits(bits);
    let Some(f) = MathFn::ALL.get(func as usize) else { return FLOAT_DEOPT };
    let r = match f {
        MathFn::Sqrt => x.sqrt(),
        MathFn::Exp => x.exp(),
        MathFn::Log => x.ln(),
        MathFn::Log2 => x.log2(),
        MathFn::Log10 => x.log10(),
        MathFn::Sin => x.sin(),
        MathFn::Cos => x.cos(),
        MathFn::Tan => x.tan(),
        MathFn::Atan => x.atan(),
        MathFn::Tanh => x.tanh(),
        MathFn::Fabs => x.abs(),
    };
    if (r.is_nan() && !x.is_nan()) || (r.is_infinite() && x.is_finite()) {
        return FLOAT_DEOPT;
    }
    r.to_bits()
}

/// The number of `func` for `rjit_rt_math_1`.
pub fn math_fn_index(func: crate::hir::MathFn) -> i64 {
    crate::hir::MathFn::ALL.iter().position(|f| *f == func).map_or(-1, |i| i as i64)
}

/// A float rounded to an int (`mode`: 0 floor, 1 ceil, 2 truncate, 3 to nearest with ties
/// to even), as `math.floor`, `math.ceil`, `int` and `round` make it; `i64::MIN` when the result is not a machine int (inf, NaN,
/// beyond 64 bits; -2**63 itself too): the interpreter then makes it, or raises.
pub extern "C" fn rjit_rt_float_to_int(mode: u64, bits: u64) -> i64 {
    let x = f64::from_bits(bits);
    let r = match mode {
        0 => x.floor(),
        1 => x.ceil(),
        3 => x.round_ties_even(),
        _ => x.trunc(),
    };
    if r > -9.223372036854775808e18 && r < 9.223372036854775808e18 {
        r as i64
    } else {
        i64::MIN
    }
}

/// `abs` of a machine int; `i64::MIN` (whose absolute value needs 65 bits) for `i64::MIN`.
pub extern "C" fn rjit_rt_int_abs(v: i64) -> i64 {
    v.checked_abs().unwrap_or(i64::MIN)
}

extern "C" {
    /// The C library's `pow`, which CPython's `float_pow` calls.
    fn pow(x: f64, y: f64) -> f64;
}

/// The address of the C library's `pow` (compiled code calls it directly where `float_pow`
/// is exactly `pow`).
pub fn libm_pow_address() -> usize {
    pow as *const () as usize
}

/// Python's `a ** b` on floats (`float_pow`).
pub extern "C" fn rjit_rt_float_pow(a: u64, b: u64) -> u64 {
    float_pow(f64::from_bits(a), f64::from_bits(b)).map_or(FLOAT_DEOPT, f64::to_bits)
}

fn float_pow(iv: f64, iw: f64) -> Option<f64> {
    if iw == 0.0 {
        return Some(1.0);
    }
    if iv.is_nan() {
        return Some(iv);
    }
    if iw.is_nan() {
        return Some(if iv == 1.0 { 1.0 } else { iw });
    }
    if iw.is_infinite() {
        let iv = iv.abs();
        return Some(if iv == 1.0 {
            1.0
        } else if (iw > 0.0) == (iv > 1.0) {
            iw.abs()
        } else {
            0.0
        });
    }
    if iv.is_infinite() {
        let odd = is_odd_integer(iw);
        return Some(if iw > 0.0 {
            if odd { iv } else { iv.abs() }
        } else if odd {
            0.0f64.copysign(iv)
        } else {
            0.0
        });
    }
    if iv == 0.0 {
        if iw < 0.0 {
            return None; // ZeroDivisionError
        }
        return Some(if is_odd_integer(iw) { iv } else { 0.0 });
    }
    let mut iv = iv;
    let mut negate = false;
    if iv < 0.0 {
        if iw != iw.floor() {
            return None; // a complex result
        }
        iv = -iv;
        negate = is_odd_integer(iw);
    }
    if iv == 1.0 {
        return Some(if negate { -1.0 } else { 1.0 });
    }
    let ix = iv.powf(iw);
    if ix.is_infinite() {
        return None; // OverflowError
    }
    Some(if negate { -ix } else { ix })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fmod(a: f64, b: f64) -> f64 {
        f64::from_bits(rjit_rt_float_mod(a.to_bits(), b.to_bits()))
    }

    fn ffloordiv(a: f64, b: f64) -> f64 {
        f64::from_bits(rjit_rt_float_floordiv(a.to_bits(), b.to_bits()))
    }

    #[test]
    fn modulo_and_floor_division_follow_python_signs() {
        assert_eq!(fmod(7.5, 2.0), 1.5);
        assert_eq!(fmod(-7.5, 2.0), 0.5);
        assert_eq!(fmod(7.5, -2.0), -0.5);
        assert!(fmod(-0.0, 1.0) == 0.0 && fmod(-0.0, 1.0).is_sign_positive());
        assert!(fmod(4.0, -2.0).is_sign_negative());
        assert_eq!(ffloordiv(7.5, 2.0), 3.0);
        assert_eq!(ffloordiv(-7.5, 2.0), -4.0);
        assert!(ffloordiv(-0.5, 2.0) == -1.0);
        assert!(ffloordiv(0.5, -2.0) == -1.0);
        assert!(ffloordiv(0.0, -2.0).is_sign_negative());
        assert_eq!(rjit_rt_float_mod(1.0f64.to_bits(), 0.0f64.to_bits()), FLOAT_DEOPT);
    }

    #[test]
    fn power_special_cases() {
        assert_eq!(float_pow(2.0, 0.5), Some(2.0f64.powf(0.5)));
        assert_eq!(float_pow(-8.0, 1.0 / 3.0), None);
        assert_eq!(float_pow(0.0, -1.0), None);
        assert_eq!(float_pow(-2.0, 3.0), Some(-8.0));
        assert_eq!(float_pow(-2.0, 2.0), Some(4.0));
        assert_eq!(float_pow(1e300, 2.0), None);
        assert_eq!(float_pow(f64::NAN, 0.0), Some(1.0));
        assert_eq!(float_pow(1.0, f64::NAN), Some(1.0));
        assert_eq!(float_pow(-1.0, f64::INFINITY), Some(1.0));
        assert_eq!(float_pow(f64::NEG_INFINITY, 3.0), Some(f64::NEG_INFINITY));
        assert!(float_pow(-0.0, 3.0).unwrap().is_sign_negative());
    }
}

/// A `math` function of two floats (`hir::MathFn2` by index) as CPython computes it:
/// `math.atan2` (`m_atan2`'s special cases, then the C library's `atan2`) and `math.pow`
/// (`math_pow_impl`'s special cases, then `pow`); where CPython raises (`math_2`'s and
/// `math_pow_impl`'s error rules: a NaN from non-NaN arguments, an infinity from finite
/// ones), `FLOAT_DEOPT`.
pub extern "C" fn rjit_rt_math_2(func: u64, a: u64, b: u64) -> u64 {
    let (x, y) = (f64::from_bits(a), f64::from_bits(b));
    let r = match crate::hir::MathFn2::ALL.get(func as usize) {
        Some(crate::hir::MathFn2::Atan2) => m_atan2(x, y),
        Some(crate::hir::MathFn2::Pow) => math_pow(x, y),
        Some(crate::hir::MathFn2::Hypot) => Some(hypot2(x, y)),
        None => None,
    };
    r.map_or(FLOAT_DEOPT, f64::to_bits)
}

/// The number of `func` for `rjit_rt_math_2`.
pub fn math_fn2_index(func: crate::hir::MathFn2) -> i64 {
    crate::hir::MathFn2::ALL.iter().position(|f| *f == func).map_or(-1, |i| i as i64)
}

/// `math.atan2(y, x)`: `m_atan2` in mathmodule.c (C99's special values on every platform);
/// `math_2` never raises for it (no NaN from non-NaN arguments, no infinite result).
fn m_atan2(y: f64, x: f64) -> Option<f64> {
    use std::f64::consts::PI;
    if x.is_nan() || y.is_nan() {
        return Some(f64::NAN);
    }
    if y.is_infinite() {
        if x.is_infinite() {
            // atan2(+-inf, +inf) == +-pi/4, atan2(+-inf, -inf) == +-3pi/4
            return Some(if 1f64.copysign(x) == 1.0 { (0.25 * PI).copysign(y) } else { (0.75 * PI).copysign(y) });
        }
        return Some((0.5 * PI).copysign(y));
    }
    if x.is_infinite() || y == 0.0 {
        // atan2(+-y, +inf) = atan2(+-0, +x) = +-0; atan2(+-y, -inf) = atan2(+-0, -x) = +-pi
        return Some(if 1f64.copysign(x) == 1.0 { 0f64.copysign(y) } else { PI.copysign(y) });
    }
    let r = y.atan2(x);
    (!r.is_nan() && !r.is_infinite()).then_some(r)
}

/// `math.hypot(x, y)` as CPython 3.11 computes it (`math_hypot` and `vector_norm` in
/// mathmodule.c, not the C library's `hypot`): the absolute values scaled by a power of two
/// so the larger is in [0.5, 1), squared exactly (Veltkamp-Dekker splitting), summed with
/// three compensation terms around a leading 1.0, the square root corrected by one
/// differential step, scaled back. Never raises (an overflow gives inf, as CPython's).
fn hypot2(x: f64, y: f64) -> f64 {
    // 2**27 + 1: splits a double into halves of 26 bits whose products are exact.
    const SPLIT: f64 = 134217729.0;
    let vec = [x.abs(), y.abs()];
    let found_nan = vec[0].is_nan() || vec[1].is_nan();
    // As math_hypot finds it: a NaN never becomes the maximum (hypot(nan, inf) is inf).
    let mut max = 0.0;
    for v in vec {
        if v > max {
            max = v;
        }
    }
    if max.is_infinite() {
        return max;
    }
    if found_nan {
        return f64::NAN;
    }
    if max == 0.0 {
        return max;
    }
    // Adds `x` to the running sum, returning the new sum and the rounding error it made.
    let add = |csum: f64, x: f64| -> (f64, f64) {
        let new = csum + x;
        (new, (csum - new) + x)
    };
    let split = |x: f64| -> (f64, f64) {
        let t = x * SPLIT;
        let hi = t - (t - x);
        (hi, x - hi)
    };
    let (mut csum, mut frac1, mut frac2, mut frac3) = (1.0, 0.0, 0.0, 0.0);
    let max_e = frexp_exponent(max);
    if max_e >= -1023 {
        let scale = two_to_the(-max_e);
        for v in vec {
            let (hi, lo) = split(v * scale);
            let (sum, err) = add(csum, hi * hi);
            csum = sum;
            frac1 += err;
            let (sum, err) = add(csum, 2.0 * hi * lo);
            csum = sum;
            frac2 += err;
            frac3 += lo * lo;
        }
        let h = (csum - 1.0 + (frac1 + frac2 + frac3)).sqrt();
        let (hi, lo) = split(h);
        let (sum, err) = add(csum, -hi * hi);
        csum = sum;
        frac1 += err;
        let (sum, err) = add(csum, -2.0 * hi * lo);
        csum = sum;
        frac2 += err;
        let (sum, err) = add(csum, -lo * lo);
        csum = sum;
        frac3 += err;
        let x = csum - 1.0 + (frac1 + frac2 + frac3);
        return (h + x / (2.0 * h)) / scale;
    }
    // Both subnormal (a scale of 2**1023 and more would overflow): divide by the larger.
    for v in vec {
        let x = v / max;
        let (sum, err) = add(csum, x * x);
        csum = sum;
        frac1 += err;
    }
    max * (csum - 1.0 + frac1).sqrt()
}

/// The exponent `frexp` gives a finite nonzero double (`x = m * 2**e`, 0.5 <= |m| < 1).
fn frexp_exponent(x: f64) -> i32 {
    let bits = x.to_bits();
    let biased = ((bits >> 52) & 0x7ff) as i32;
    if biased == 0 {
        // Subnormal: the exponent of its leading bit.
        let mantissa = bits & ((1u64 << 52) - 1);
        -1022 - (mantissa.leading_zeros() as i32 - 12)
    } else {
        biased - 1022
    }
}

/// 2**e as a double (`ldexp(1.0, e)`), for e in the normal range and below.
fn two_to_the(e: i32) -> f64 {
    if e >= -1022 {
        f64::from_bits(((e + 1023) as u64) << 52)
    } else {
        f64::from_bits(1u64 << (52 + (e + 1022)))
    }
}

/// `math.pow(x, y)`: `math_pow_impl` in mathmodule.c. None where it raises (ValueError for
/// a NaN from finite arguments or `0 ** -inf`/`0 ** negative`, OverflowError for overflow).
fn math_pow(x: f64, y: f64) -> Option<f64> {
    if !x.is_finite() || !y.is_finite() {
        if x.is_nan() {
            return Some(if y == 0.0 { 1.0 } else { x }); // NaN**0 = 1
        }
        if y.is_nan() {
            return Some(if x == 1.0 { 1.0 } else { y }); // 1**NaN = 1
        }
        if x.is_infinite() {
            let odd_y = y.is_finite() && y.abs() % 2.0 == 1.0;
            return Some(if y > 0.0 {
                if odd_y { x } else { x.abs() }
            } else if y == 0.0 {
                1.0
            } else if odd_y {
                0f64.copysign(x)
            } else {
                0.0
            });
        }
        // y is infinite
        return if x.abs() == 1.0 {
            Some(1.0)
        } else if y > 0.0 && x.abs() > 1.0 {
            Some(y)
        } else if y < 0.0 && x.abs() < 1.0 {
            // 0 ** -inf divides by zero (ValueError); else +inf
            (x != 0.0).then_some(-y)
        } else {
            Some(0.0)
        };
    }
    let r = x.powf(y);
    r.is_finite().then_some(r)
}

/// `len(obj)` of an exact list, tuple, str or dict (which run no Python code for it); -1 for
/// anything else (the interpreter then calls `len`).
///
/// # Safety
/// `obj` is a live object; GIL held.
pub unsafe extern "C" fn rjit_rt_len_exact(obj: *mut PyObject) -> i64 {
    let ty = ffi::Py_TYPE(obj);
    if ty == std::ptr::addr_of_mut!(ffi::PyList_Type) || ty == std::ptr::addr_of_mut!(ffi::PyTuple_Type) {
        ffi::Py_SIZE(obj) as i64
    } else if ty == std::ptr::addr_of_mut!(ffi::PyDict_Type) {
        ffi::PyDict_Size(obj) as i64
    } else if ty == std::ptr::addr_of_mut!(ffi::PyUnicode_Type) {
        let n = ffi::PyUnicode_GetLength(obj);
        if n < 0 {
            // Only a legacy string that cannot be readied: the interpreter's len raises.
            ffi::PyErr_Clear();
        }
        n as i64
    } else {
        -1
    }
}

/// The builtin types `isinstance` is compiled for, and whose exact instances' `__class__` is
/// their type (they have no `__class__` of their own).
fn exact_builtin_types() -> [*mut ffi::PyTypeObject; 12] {
    // SAFETY: addresses of static type objects; `Py_None` is immortal.
    unsafe {
        [
            std::ptr::addr_of_mut!(ffi::PyLong_Type),
            std::ptr::addr_of_mut!(ffi::PyFloat_Type),
            std::ptr::addr_of_mut!(ffi::PyBool_Type),
            std::ptr::addr_of_mut!(ffi::PyUnicode_Type),
            std::ptr::addr_of_mut!(ffi::PyList_Type),
            std::ptr::addr_of_mut!(ffi::PyTuple_Type),
            std::ptr::addr_of_mut!(ffi::PyDict_Type),
            std::ptr::addr_of_mut!(ffi::PySet_Type),
            std::ptr::addr_of_mut!(ffi::PyFrozenSet_Type),
            std::ptr::addr_of_mut!(ffi::PyBytes_Type),
            std::ptr::addr_of_mut!(ffi::PyComplex_Type),
            ffi::Py_TYPE(ffi::Py_None()),
        ]
    }
}

/// The types `isinstance(x, T)` is compiled for (T by identity): the builtin types above
/// but `NoneType` (not a builtin name).
pub fn isinstance_classes() -> Vec<i64> {
    exact_builtin_types()[..11].iter().map(|t| *t as i64).collect()
}

/// `isinstance(obj, class)` for a builtin type `class`, as `object_isinstance` decides it
/// without Python code: 1 if `type(obj)` is a subclass, 0 if not and `type(obj)` is an
/// exact builtin type (its `__class__` is itself), -1 otherwise (a `__class__` attribute
/// could say otherwise: the interpreter decides).
///
/// # Safety
/// `obj` is a live object and `class` a type object; GIL held.
pub unsafe extern "C" fn rjit_rt_isinstance_exact(obj: *mut PyObject, class: i64) -> i64 {
    let ty = ffi::Py_TYPE(obj);
    let class = class as *mut ffi::PyTypeObject;
    if ty == class || ffi::PyType_IsSubtype(ty, class) != 0 {
        1
    } else if exact_builtin_types().contains(&ty) {
        0
    } else {
        -1
    }
}

/// `isinstance(x, class)` for a machine value: an exact int, float or bool.
pub fn machine_isinstance(int: bool, float: bool, bool_: bool, class: i64) -> bool {
    let (long_type, float_type, bool_type) = (
        std::ptr::addr_of_mut!(ffi::PyLong_Type) as i64,
        std::ptr::addr_of_mut!(ffi::PyFloat_Type) as i64,
        std::ptr::addr_of_mut!(ffi::PyBool_Type) as i64,
    );
    (class == long_type && (int || bool_)) || (class == float_type && float) || (class == bool_type && bool_)
}
