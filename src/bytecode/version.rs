//! Jump semantics: the part of decoding that differs between CPython versions, kept here so the
//! rest of the decoder reads the same for all of them. Opcode numbers, cache sizes and the
//! jump groups come from the generated table (`op`); only the rules below are written by hand.

use super::{op, Instr};

/// Where a jump instruction lands, in code units; `None` for other instructions or a target
/// outside `u32`.
///
/// The rule is the same on 3.11, 3.12 and 3.13 (as `dis` computes `argval`): relative jumps
/// count from the instruction after this one's inline caches, forwards, or backwards for the
/// `*JUMP_BACKWARD*` family (3.11's `POP_JUMP_BACKWARD_IF_*` included); absolute jumps (none
/// since 3.11) name the unit. No 3.11 jump has inline caches; since 3.12 some do (`FOR_ITER`,
/// `SEND`; in 3.13 also `POP_JUMP_IF_*` and `JUMP_BACKWARD`), and the interpreter skips them
/// before jumping, hence "after the caches". A target with `EXTENDED_ARG` prefixes is the first
/// prefix: the interpreter executes them on arrival.
///
/// For `FOR_ITER` this is where `dis` points (see [`for_iter_exit`] for where it goes); for
/// `SEND` it is where execution continues once the sub-iterator returns.
pub(super) fn jump_target(instr: &Instr) -> Option<u32> {
    let opcode = usize::from(instr.opcode);
    if op::HAS_JABS[opcode] {
        Some(instr.arg)
    } else if !op::HAS_JREL[opcode] {
        None
    } else if op::BACKWARD_JUMP[opcode] {
        instr.next_offset().checked_sub(instr.arg)
    } else {
        instr.next_offset().checked_add(instr.arg)
    }
}

/// Where `FOR_ITER` continues when its iterator is exhausted (the iterator already popped);
/// `None` for other instructions.
///
/// - 3.11: the jump target itself (ceval.c: `JUMPBY(oparg)`).
/// - 3.12: one unit further, skipping the `END_FOR` that the target names (bytecodes.c:
///   `JUMPBY(INLINE_CACHE_ENTRIES_FOR_ITER + oparg + 1)`); `END_FOR` runs only when a
///   specialised or instrumented loop falls into it.
/// - 3.13: two units further, skipping `END_FOR` and the `POP_TOP` after it
///   (`JUMPBY(oparg + 2)`). Read from CPython's sources, not yet run here.
pub(super) fn for_iter_exit(instr: &Instr) -> Option<u32> {
    if instr.opcode != op::FOR_ITER {
        return None;
    }
    let skipped = match op::PYTHON_VERSION {
        (3, minor) if minor >= 13 => 2,
        (3, 12) => 1,
        _ => 0,
    };
    jump_target(instr)?.checked_add(skipped)
}
