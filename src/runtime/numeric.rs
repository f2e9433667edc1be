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
