//! Checks the floating-point exception flags of NumPy ufunc calls in the compiled code.
//!
//! A `UfuncCall` made by the specialiser checks the flags itself: its helper reads the control
//! register before the call (to clear stale flags) and after it, and returns a sentinel the
//! code compares with. Reading the register waits for every floating-point operation in
//! flight, which costs about as much as a short NumPy loop. Here each such call hands its
//! check to a `GuardFpFlags` right after it, with the call's exit (a deopt: the interpreter
//! redoes the call, and warns as NumPy does). The specialiser's clean-up then merges that
//! check with the next one of the block where only machine arithmetic lies between (`s +=
//! np.tanh(x)`: one read of the flags for the call and the addition), the later check leaving
//! through the call's exit, from where the interpreter redoes both.
//!
//! The flags are sticky: a check sees every exception since they were last clear. They are
//! clear where compiled code checks them (`fp_flags` clears them where the function starts and
//! where loops with checks are entered, and each check leaves if one is set); stale flags from
//! Python's own float arithmetic make the check leave for nothing, which is slow but not wrong.

use super::{Function, Instr, Op};

/// Makes each `UfuncCall` leave its flags to a `GuardFpFlags` after it, with its exit.
pub fn check_after_calls(func: &mut Function) {
    for block in &mut func.blocks {
        let mut i = 0;
        while i < block.instrs.len() {
            if let (Op::UfuncCall { .. }, Some(exit)) = (&block.instrs[i].op, block.instrs[i].exit) {
                let at = block.instrs[i].at;
                block.instrs[i].exit = None;
                block.instrs.insert(i + 1, Instr { result: None, op: Op::GuardFpFlags, exit: Some(exit), at, deopt: None });
                i += 1;
            }
            i += 1;
        }
    }
}
