//! Operators: BINARY_OP, UNARY_NOT, the truth test of the conditional jumps, CONTAINS_OP.

use std::ffi::c_int;
use std::ptr;

use pyo3_ffi as ffi;
use pyo3_ffi::PyObject;

use super::{guard, new_bool, BinaryFunc};
use crate::hir::BinaryOp;

/// The C API function the interpreter's `binary_ops` table holds for an operator, where it is
/// an exported one. The two powers are `_PyNumber_PowerNoMod`/`_PyNumber_InPlacePowerNoMod`
/// there, which libpython does not export: they go through `rjit_rt_binary_op`.
fn direct_function(op: BinaryOp) -> Option<BinaryFunc> {
    use BinaryOp::*;
    let function: BinaryFunc = match op {
        Add => ffi::PyNumber_Add,
        And => ffi::PyNumber_And,
        FloorDivide => ffi::PyNumber_FloorDivide,
        Lshift => ffi::PyNumber_Lshift,
        MatrixMultiply => ffi::PyNumber_MatrixMultiply,
        Multiply => ffi::PyNumber_Multiply,
        Remainder => ffi::PyNumber_Remainder,
        Or => ffi::PyNumber_Or,
        Rshift => ffi::PyNumber_Rshift,
        Subtract => ffi::PyNumber_Subtract,
        TrueDivide => ffi::PyNumber_TrueDivide,
        Xor => ffi::PyNumber_Xor,
        InplaceAdd => ffi::PyNumber_InPlaceAdd,
        InplaceAnd => ffi::PyNumber_InPlaceAnd,
        InplaceFloorDivide => ffi::PyNumber_InPlaceFloorDivide,
        InplaceLshift => ffi::PyNumber_InPlaceLshift,
        InplaceMatrixMultiply => ffi::PyNumber_InPlaceMatrixMultiply,
        InplaceMultiply => ffi::PyNumber_InPlaceMultiply,
        InplaceRemainder => ffi::PyNumber_InPlaceRemainder,
        InplaceOr => ffi::PyNumber_InPlaceOr,
        InplaceRshift => ffi::PyNumber_InPlaceRshift,
        InplaceSubtract => ffi::PyNumber_InPlaceSubtract,
        InplaceTrueDivide => ffi::PyNumber_InPlaceTrueDivide,
        InplaceXor => ffi::PyNumber_InPlaceXor,
        Power | InplacePower => return None,
    };
    Some(function)
}

/// The exported C API function for `BINARY_OP` with oparg `op` (`PyNumber_Add` for 0...), which
/// compiled code may call directly; None for the powers (call `rjit_rt_binary_op`) and for an
/// oparg out of range.
pub fn binary_op_function(op: u32) -> Option<BinaryFunc> {
    BinaryOp::from_oparg(op).and_then(direct_function)
}

/// BINARY_OP: `lhs <op> rhs` with `op` the oparg (CPython's `NB_*` numbering, as
/// `hir::BinaryOp`), through the function the interpreter's `binary_ops` table holds for it;
/// `**` and `**=` are `PyNumber_Power`/`PyNumber_InPlacePower` with a third argument of None.
/// Borrows both operands. New reference, or NULL with an exception set.
///
/// # Safety
/// GIL held; `lhs` and `rhs` are live objects.
pub unsafe extern "C-unwind" fn rjit_rt_binary_op(op: u32, lhs: *mut PyObject, rhs: *mut PyObject) -> *mut PyObject {
    let Some(op) = guard(|| BinaryOp::from_oparg(op).ok_or("BINARY_OP oparg out of range")) else {
        return ptr::null_mut();
    };
    match direct_function(op) {
        Some(function) => function(lhs, rhs),
        None if op == BinaryOp::InplacePower => ffi::PyNumber_InPlacePower(lhs, rhs, ffi::Py_None()),
        None => ffi::PyNumber_Power(lhs, rhs, ffi::Py_None()),
    }
}

/// UNARY_NOT: a new reference to `not value` (True or False), or NULL when the truth test
/// (`__bool__`/`__len__`) raised. Borrows `value`.
///
/// # Safety
/// GIL held; `value` is a live object.
pub unsafe extern "C-unwind" fn rjit_rt_not(value: *mut PyObject) -> *mut PyObject {
    match ffi::PyObject_IsTrue(value) {
        0 => new_bool(true),
        truth if truth > 0 => new_bool(false),
        _ => ptr::null_mut(),
    }
}

/// The truth test of POP_JUMP_IF_TRUE/FALSE and JUMP_IF_TRUE/FALSE_OR_POP: True, False and
/// None by identity, anything else through `PyObject_IsTrue`. 1, 0, or -1 with an exception
/// set. Borrows `value`.
///
/// # Safety
/// GIL held; `value` is a live object.
pub unsafe extern "C-unwind" fn rjit_rt_is_true(value: *mut PyObject) -> c_int {
    if value == ffi::Py_True() {
        1
    } else if value == ffi::Py_False() || value == ffi::Py_None() {
        0
    } else {
        ffi::PyObject_IsTrue(value)
    }
}

/// CONTAINS_OP: a new reference to `item in container` (`item not in container` when `negate`
/// is nonzero), through `PySequence_Contains`; NULL with an exception set on error. Borrows both.
///
/// # Safety
/// GIL held; `item` and `container` are live objects.
pub unsafe extern "C-unwind" fn rjit_rt_contains(
    item: *mut PyObject,
    container: *mut PyObject,
    negate: c_int,
) -> *mut PyObject {
    match ffi::PySequence_Contains(container, item) {
        found if found < 0 => ptr::null_mut(),
        found => new_bool((found != 0) != (negate != 0)),
    }
}
