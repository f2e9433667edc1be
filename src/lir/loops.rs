//! Loop address arithmetic: strength reduction and hoisting, on LIR before register
//! allocation.
//!
//! An element access in a loop (`a[i, k]`, `b[k, j]` in a loop over `k`) computes its address
//! from the array's data pointer, a row offset and a scaled index. Two rewrites make that
//! cheaper, both on wrapping machine arithmetic only (so the result is the same bits):
//!
//! - **Strength reduction.** `d = p * s` (a multiply without an overflow exit: wrapping), with
//!   `p` a basic induction variable of the loop (a header parameter whose every back-edge
//!   argument is `p + c`) and `s` a register the loop does not change, becomes a header
//!   parameter of its own: `p0 * s` on entry, `d + s * c` on each back-edge (both wrap like
//!   the multiply: `(p + c) * s == p * s + c * s` modulo 2^64). The multiply in the loop goes.
//! - **Hoisting.** An element address whose two loop-invariant parts are added in every
//!   iteration (`base + offset`, or `base + index * scale`) gets that sum computed once, in
//!   the loop's preheader: the loop then keeps one register for both, and the access is a
//!   single addressing form.
//!
//! A loop is rewritten only when its header has a single predecessor outside it that jumps
//! there unconditionally (its preheader: where code hoisted out of the loop goes), and when
//! nothing in it calls C code (which would need more callee-saved registers). Exits are
//! untouched: they read the values they read before (the rewritten multiply's result keeps
//! its register name, now a parameter with the same value in each iteration).

use crate::hashing::{HashMap, HashSet};

use super::{ElementAddress, Func, Inst, Src, Term, VReg};
use crate::hir::IntOp;

/// Rewrites `func`'s loops (see the module's comment).
pub fn optimise(func: &mut Func) {
    for (header, body) in natural_loops(func) {
        let Some(pre) = preheader(func, header, &body) else { continue };
        // Values made to live across a loop that calls C code would need the few registers
        // that survive calls: left alone (the calls cost more than the arithmetic anyway).
        if body.iter().any(|&b| func.blocks[b].insts.iter().any(Inst::clobbers_caller_saved)) {
            continue;
        }
        strength_reduce(func, header, pre, &body);
        hoist_addresses(func, pre, &body);
    }
}

/// Each loop header with its body (the header included), innermost loops first. Blocks are
/// in reverse postorder: an edge to an earlier block (or itself) is a back-edge.
pub(super) fn natural_loops(func: &Func) -> Vec<(usize, HashSet<usize>)> {
    let n = func.blocks.len();
    let preds = predecessors(func);
    let mut loops: HashMap<usize, HashSet<usize>> = HashMap::default();
    for b in 0..n {
        for t in func.blocks[b].term.targets() {
            let h = t.block;
            if h > b {
                continue;
            }
            let body = loops.entry(h).or_insert_with(|| HashSet::from_iter([h]));
            let mut work = vec![b];
            while let Some(x) = work.pop() {
                if body.insert(x) {
                    work.extend(preds[x].iter().copied());
                }
            }
        }
    }
    let mut loops: Vec<(usize, HashSet<usize>)> = loops.into_iter().collect();
    loops.sort_by_key(|(h, body)| (body.len(), *h));
    loops
}

pub(super) fn predecessors(func: &Func) -> Vec<Vec<usize>> {
    let mut preds = vec![Vec::new(); func.blocks.len()];
    for (b, block) in func.blocks.iter().enumerate() {
        for t in block.term.targets() {
            preds[t.block].push(b);
        }
    }
    preds
}

/// The loop's single outside predecessor, if it ends with a jump to the header.
pub(super) fn preheader(func: &Func, header: usize, body: &HashSet<usize>) -> Option<usize> {
    let preds = predecessors(func);
    // Entered only through the header (a loop that is entered in the middle too is not one
    // the header dominates: nothing there may be assumed to have run the preheader's code).
    if body.iter().any(|&b| b != header && preds[b].iter().any(|p| !body.contains(p))) {
        return None;
    }
    let outside: Vec<usize> = preds[header].iter().copied().filter(|p| !body.contains(p)).collect();
    match outside.as_slice() {
        [p] if matches!(&func.blocks[*p].term, Term::Jump(t) if t.block == header) => Some(*p),
        _ => None,
    }
}

/// How many times each register is defined in the whole function (by an instruction or as a
/// block parameter): the rewrites rely on single definitions.
pub(super) fn definition_counts(func: &Func) -> Vec<u32> {
    let mut defs = vec![0u32; func.nregs as usize];
    for block in &func.blocks {
        for p in &block.params {
            defs[p.index()] += 1;
        }
        for inst in &block.insts {
            if let Some(d) = inst.def() {
                defs[d.index()] += 1;
            }
        }
    }
    defs
}

/// Registers defined inside the loop.
pub(super) fn defined_in(func: &Func, body: &HashSet<usize>) -> HashSet<VReg> {
    let mut defined = HashSet::default();
    for &b in body {
        let block = &func.blocks[b];
        defined.extend(block.params.iter().copied());
        defined.extend(block.insts.iter().filter_map(Inst::def));
    }
    defined
}

/// Appends `inst` to block `b` (before its terminator).
fn append(func: &mut Func, b: usize, inst: Inst) {
    func.blocks[b].insts.push(inst);
}

/// The back-edge sources of the loop (blocks of the body that jump to the header).
fn latches(func: &Func, header: usize, body: &HashSet<usize>) -> Vec<usize> {
    let mut out: Vec<usize> = body.iter().copied().filter(|&b| func.blocks[b].term.targets().iter().any(|t| t.block == header)).collect();
    out.sort_unstable();
    out
}

/// The step `c` of a basic induction variable: header parameter `index` whose argument on
/// every back-edge is one register defined as `param + c`.
pub(super) fn induction_step(func: &Func, header: usize, index: usize, latches: &[usize], defs: &[u32]) -> Option<i64> {
    let param = func.blocks[header].params[index];
    if defs[param.index()] != 1 {
        return None;
    }
    let mut next: Option<VReg> = None;
    for &l in latches {
        for t in func.blocks[l].term.targets().into_iter().filter(|t| t.block == header) {
            let a = t.args[index];
            if next.is_some_and(|n| n != a) {
                return None;
            }
            next = Some(a);
        }
    }
    let next = next?;
    if defs[next.index()] != 1 {
        return None;
    }
    func.blocks.iter().flat_map(|b| &b.insts).find_map(|i| match i {
        Inst::IntArith { op: IntOp::Add, dst, a, b: Src::Imm(c), .. } if *dst == next && *a == param => Some(*c),
        Inst::IntArith { op: IntOp::Sub, dst, a, b: Src::Imm(c), .. } if *dst == next && *a == param => c.checked_neg(),
        _ => None,
    })
}

/// Strength reduction of `p * s` (see the module's comment).
fn strength_reduce(func: &mut Func, header: usize, pre: usize, body: &HashSet<usize>) {
    let latches = latches(func, header, body);
    if latches.is_empty() {
        return;
    }
    let defs = definition_counts(func);
    let defined = defined_in(func, body);
    let invariant = |r: VReg| !defined.contains(&r) && !func.constants.contains_key(&r);
    let steps: Vec<Option<i64>> =
        (0..func.blocks[header].params.len()).map(|i| induction_step(func, header, i, &latches, &defs)).collect();
    // (block, instruction, result, induction parameter index, invariant factor)
    let mut found: Vec<(usize, usize, VReg, usize, VReg)> = Vec::new();
    let mut blocks: Vec<usize> = body.iter().copied().collect();
    blocks.sort_unstable();
    for b in blocks {
        for (i, inst) in func.blocks[b].insts.iter().enumerate() {
            let Inst::IntArith { op: IntOp::Mul, dst, a, b: Src::Reg(s), exit: None } = inst else { continue };
            if defs[dst.index()] != 1 {
                continue;
            }
            let params = &func.blocks[header].params;
            let as_iv = |r: VReg| params.iter().position(|p| *p == r).filter(|&k| steps[k].is_some());
            let (k, factor) = match (as_iv(*a), as_iv(*s)) {
                (Some(k), _) if invariant(*s) => (k, *s),
                (_, Some(k)) if invariant(*a) => (k, *a),
                _ => continue,
            };
            found.push((b, i, *dst, k, factor));
        }
    }
    // Remove the multiplies (last first, so the indices stay right).
    let mut removals: Vec<(usize, usize)> = found.iter().map(|&(b, i, ..)| (b, i)).collect();
    removals.sort_unstable_by(|x, y| y.cmp(x));
    for (b, i) in removals {
        func.blocks[b].insts.remove(i);
    }
    for (_, _, dst, k, factor) in found {
        let step = steps[k].expect("an induction variable");
        // On entry: the initial value times the factor.
        let init = match &func.blocks[pre].term {
            Term::Jump(t) => t.args[k],
            _ => unreachable!("a preheader jumps"),
        };
        let start = func.new_reg(false);
        append(func, pre, Inst::IntArith { op: IntOp::Mul, dst: start, a: init, b: Src::Reg(factor), exit: None });
        // Per iteration: the factor times the step.
        let (op, increment) = match step {
            1 => (IntOp::Add, factor),
            -1 => (IntOp::Sub, factor),
            c => {
                let scaled = func.new_reg(false);
                append(func, pre, Inst::IntArith { op: IntOp::Mul, dst: scaled, a: factor, b: Src::Imm(c), exit: None });
                (IntOp::Add, scaled)
            }
        };
        if let Term::Jump(t) = &mut func.blocks[pre].term {
            t.args.push(start);
        }
        func.blocks[header].params.push(dst);
        for &l in &latches {
            let next = func.new_reg(false);
            append(func, l, Inst::IntArith { op, dst: next, a: dst, b: Src::Reg(increment), exit: None });
            match &mut func.blocks[l].term {
                Term::Jump(t) => t.args.push(next),
                Term::Branch { if_true, if_false, .. } => {
                    for t in [if_true, if_false] {
                        if t.block == header {
                            t.args.push(next);
                        }
                    }
                }
                Term::Return(_) | Term::Exit(_) => unreachable!("a latch jumps"),
            }
        }
    }
}

/// The parts of an element address added up once: base with an offset or a scaled index.
type AddressParts = (VReg, Option<VReg>, Option<(VReg, u8)>);

/// Hoists the loop-invariant part of element addresses into the preheader (see the module's
/// comment).
fn hoist_addresses(func: &mut Func, pre: usize, body: &HashSet<usize>) {
    let defined = defined_in(func, body);
    // Constants are rematerialised anywhere: as invariant as it gets, but an address part
    // only when in a register (the backend's immediates cover the rest).
    let invariant = |r: VReg| !defined.contains(&r) && !func.constants.contains_key(&r);
    let mut hoisted: HashMap<AddressParts, VReg> = HashMap::default();
    let mut new_insts: Vec<Inst> = Vec::new();
    let mut next_reg = func.nregs;
    let mut blocks: Vec<usize> = body.iter().copied().collect();
    blocks.sort_unstable();
    for b in blocks {
        for i in 0..func.blocks[b].insts.len() {
            let at = match &func.blocks[b].insts[i] {
                Inst::LoadElement { at, .. } | Inst::StoreElement { at, .. } => *at,
                _ => continue,
            };
            let ElementAddress { base, offset, index, disp } = at;
            if !invariant(base) {
                continue;
            }
            // The parts to add up once, and what the access keeps.
            let (key, rest): (_, ElementAddress) = match (offset, index) {
                (Some(o), Some(ix)) if invariant(o) && !invariant(ix.0) => {
                    ((base, Some(o), None), ElementAddress { base, offset: None, index: Some(ix), disp })
                }
                (Some(o), Some(ix)) if !invariant(o) && invariant(ix.0) => {
                    ((base, None, Some(ix)), ElementAddress { base, offset: Some(o), index: None, disp })
                }
                _ => continue,
            };
            let sum = *hoisted.entry(key).or_insert_with(|| {
                let sum = VReg(next_reg);
                next_reg += 1;
                match key {
                    (b, Some(o), None) => {
                        new_insts.push(Inst::IntArith { op: IntOp::Add, dst: sum, a: b, b: Src::Reg(o), exit: None })
                    }
                    (b, None, Some((ix, scale))) => {
                        let scaled = VReg(next_reg);
                        next_reg += 1;
                        new_insts.push(Inst::IntArith { op: IntOp::Mul, dst: scaled, a: ix, b: Src::Imm(i64::from(scale)), exit: None });
                        new_insts.push(Inst::IntArith { op: IntOp::Add, dst: sum, a: b, b: Src::Reg(scaled), exit: None });
                    }
                    _ => unreachable!("one of the two forms"),
                }
                sum
            });
            let new_at = ElementAddress { base: sum, ..rest };
            match &mut func.blocks[b].insts[i] {
                Inst::LoadElement { at, .. } | Inst::StoreElement { at, .. } => *at = new_at,
                _ => unreachable!(),
            }
        }
    }
    while func.nregs < next_reg {
        func.new_reg(false);
    }
    func.blocks[pre].insts.extend(new_insts);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lir::test_support::{block, to};
    use crate::numpy::DType;

    /// L0(%0 base, %1 row, %2 stride, %3 len): jump L1(%10 = 0)
    /// L1(%4 k): %5 = k < len; branch %5, L2, L3
    /// L2: %6 = k + 1; %7 = k * stride; %8 = f64[%0 + %1 + %4*8]; %9 = f64[%0 + %7 + %1*8]
    ///     jump L1(%6)
    /// L3: return %4
    fn matmul_like() -> Func {
        let blocks = vec![
            block(vec![0, 1, 2, 3], vec![Inst::Move { dst: VReg(10), src: Src::Imm(0) }], Term::Jump(to(1, vec![10]))),
            block(
                vec![4],
                vec![Inst::Compare { op: crate::hir::CompareOp::Lt, float: false, dst: VReg(5), a: VReg(4), b: VReg(3) }],
                Term::Branch { cond: VReg(5), if_true: to(2, vec![]), if_false: to(3, vec![]) },
            ),
            block(
                vec![],
                vec![
                    Inst::IntArith { op: IntOp::Add, dst: VReg(6), a: VReg(4), b: Src::Imm(1), exit: None },
                    Inst::IntArith { op: IntOp::Mul, dst: VReg(7), a: VReg(4), b: Src::Reg(VReg(2)), exit: None },
                    Inst::LoadElement {
                        dst: VReg(8),
                        at: ElementAddress { base: VReg(0), offset: Some(VReg(1)), index: Some((VReg(4), 8)), disp: 0 },
                        dtype: DType::F64,
                    },
                    Inst::LoadElement {
                        dst: VReg(9),
                        at: ElementAddress { base: VReg(0), offset: Some(VReg(7)), index: Some((VReg(1), 8)), disp: 0 },
                        dtype: DType::F64,
                    },
                ],
                Term::Jump(to(1, vec![6])),
            ),
            block(vec![], vec![], Term::Return(VReg(4))),
        ];
        let mut f = Func {
            name: "t".into(),
            blocks,
            exits: vec![],
            nregs: 11,
            nlocalsplus: 0,
            float_regs: vec![false; 11],
            constants: Default::default(),
            derived: Default::default(),
        };
        f.float_regs[8] = true;
        f.float_regs[9] = true;
        f.constants.insert(VReg(10), 0);
        f
    }

    #[test]
    fn a_multiply_by_an_induction_variable_becomes_an_added_parameter() {
        let mut f = matmul_like();
        optimise(&mut f);
        // %7 is now the header's second parameter; no multiply is left in the loop body.
        assert_eq!(f.blocks[1].params, vec![VReg(4), VReg(7)]);
        assert!(!f.blocks[2].insts.iter().any(|i| matches!(i, Inst::IntArith { op: IntOp::Mul, .. })));
        // The back-edge passes %7 + stride.
        let Term::Jump(back) = &f.blocks[2].term else { panic!() };
        let next = back.args[1];
        assert!(f.blocks[2].insts.iter().any(|i| matches!(i,
            Inst::IntArith { op: IntOp::Add, dst, a: VReg(7), b: Src::Reg(VReg(2)), exit: None } if *dst == next)));
        // The entry passes 0 * stride, computed in the preheader.
        let Term::Jump(entry) = &f.blocks[0].term else { panic!() };
        let start = entry.args[1];
        assert!(f.blocks[0].insts.iter().any(|i| matches!(i,
            Inst::IntArith { op: IntOp::Mul, dst, a: VReg(10), b: Src::Reg(VReg(2)), exit: None } if *dst == start)));
    }

    #[test]
    fn invariant_address_parts_are_added_once_before_the_loop() {
        let mut f = matmul_like();
        optimise(&mut f);
        let loads: Vec<ElementAddress> = f.blocks[2]
            .insts
            .iter()
            .filter_map(|i| match i {
                Inst::LoadElement { at, .. } => Some(*at),
                _ => None,
            })
            .collect();
        // a[i, k]: (base + row) + k*8; b[k, j]: (base + j*8) + k*stride.
        assert_eq!(loads[0].offset, None);
        assert_eq!(loads[0].index, Some((VReg(4), 8)));
        assert_eq!(loads[1].offset, Some(VReg(7)));
        assert_eq!(loads[1].index, None);
        let defined_before: Vec<VReg> = f.blocks[0].insts.iter().filter_map(Inst::def).collect();
        assert!(defined_before.contains(&loads[0].base));
        assert!(defined_before.contains(&loads[1].base));
        assert_eq!(f.float_regs.len(), f.nregs as usize);
    }

    #[test]
    fn a_loop_entered_by_a_branch_is_left_alone() {
        let mut f = matmul_like();
        // L0 enters the loop by a branch: no block to hoist into.
        f.blocks[0].term = Term::Branch { cond: VReg(3), if_true: to(1, vec![10]), if_false: to(3, vec![]) };
        let before = f.clone();
        optimise(&mut f);
        assert_eq!(f.blocks[2], before.blocks[2]);
    }

    #[test]
    fn a_loop_that_calls_is_left_alone() {
        let mut f = matmul_like();
        let callee = crate::lir::Callee { name: "c", address: 0, returns_int: false };
        f.blocks[2].insts.push(Inst::Call { callee, args: vec![], ret: None });
        let before = f.clone();
        optimise(&mut f);
        assert_eq!(f, before);
    }
}
