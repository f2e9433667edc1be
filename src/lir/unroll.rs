//! Unrolling of small counted loops, on LIR after the loop address rewrites (`loops`).
//!
//! An innermost loop `for k in range(n)` whose body is straight-line arithmetic and element
//! accesses spends much of each iteration on its own upkeep: the eval-breaker check, the
//! index increment and compare, the taken branch. Unrolled by a factor `F` (`UNROLL`, or
//! `SMALL_UNROLL` for the smallest bodies), that upkeep is paid once per `F` iterations:
//!
//! ```text
//! pre:   lim = n - step*(F-1)    (the lowest int if that wraps: the copies never run)
//!        jump U(args)
//! U(p'): branch p'[k] < lim, B, H(p')
//! B:     F copies of the body's instructions, each on the previous one's values
//!        jump U(values after the last copy)
//! H(p):  the original loop, unchanged: it runs the remaining iterations
//! ```
//!
//! The iterations run in the same order with the same operations (a float sum adds in the
//! same order: the bits are the same). Each copy's exits are copies of the original's, on the
//! copy's values, so a guard failing in the third copy leaves with the frame as the third
//! iteration has it. The eval-breaker check is kept in the last copy only: the breaker is
//! served at most `F - 1` iterations later than the interpreter would (when, between two
//! bytecodes, a signal is seen is not part of Python's semantics).
//!
//! Copy `j`'s induction variable is `p' + j*step`: computed from `p'` (not from the previous
//! copy), folded into element addresses as a displacement (`[a + k*8 + 16]`) and recorded in
//! `Func::derived`, so that exits compute it from `p'` too. Most copies' increments are then
//! read by nothing and removed; the last one moves after the last address reading `p'`.
//!
//! A loop qualifies when its header only compares a basic induction variable (step > 0) with
//! a loop-invariant bound, its body is a chain of blocks ending in the single back-edge, and
//! every instruction is one this pass knows how to copy (arithmetic, element accesses and
//! their checks: `copyable`), up to `MAX_BODY` of them.

use crate::hashing::{HashMap, HashSet};

use super::{Block, ElementAddress, ExitIndex, Func, Inst, Src, Target, Term, VReg};
use crate::hir::{CompareOp, IntOp};

/// Iterations per pass through the unrolled body.
const UNROLL: i64 = 4;
/// Iterations per pass for a body of at most `SMALL_BODY` instructions (matmul's and dot's
/// inner loops: a load or two, a multiply, an add).
const SMALL_UNROLL: i64 = 8;
const SMALL_BODY: usize = 12;
/// The largest body (instructions of the header and the body) unrolled.
const MAX_BODY: usize = 24;
/// The most instructions with an exit (besides the eval-breaker check) in a body unrolled:
/// each copy gets its own exits, and their stubs are code too.
const MAX_EXITS: usize = 4;

/// Unrolls `func`'s qualifying loops; returns whether it changed anything (the blocks then
/// need laying out again).
pub fn unroll(func: &mut Func) -> bool {
    let mut changed = false;
    for header in candidate_headers(func) {
        if let Some(shape) = shape_of(func, header) {
            rewrite(func, &shape);
            changed = true;
        }
    }
    changed
}

/// Loop headers (targets of back-edges), found before any rewrite: a rewrite only adds
/// blocks, so the indices stay valid. (`shape_of` keeps the innermost: a body that is a chain
/// of blocks has no loop inside.)
fn candidate_headers(func: &Func) -> Vec<usize> {
    let mut headers: Vec<usize> = Vec::new();
    for (b, block) in func.blocks.iter().enumerate() {
        for t in block.term.targets() {
            // Blocks are in reverse postorder: a jump backwards (or to itself) is a back-edge.
            if t.block <= b && !headers.contains(&t.block) {
                headers.push(t.block);
            }
        }
    }
    headers.sort_unstable();
    headers
}

/// What the rewrite needs to know about a qualifying loop.
struct Shape {
    header: usize,
    preheader: usize,
    /// The body's blocks in order, the first the header's true side, the last the latch.
    chain: Vec<usize>,
    /// The header parameter the comparison tests, its step, and the bound.
    induction: usize,
    step: i64,
    bound: VReg,
    /// Iterations per pass.
    factor: i64,
}

fn shape_of(func: &Func, header: usize) -> Option<Shape> {
    let h = &func.blocks[header];
    let [Inst::Compare { op: CompareOp::Lt, float: false, dst, a, b }] = h.insts[..] else { return None };
    let Term::Branch { cond, if_true, if_false } = &h.term else { return None };
    if *cond != dst || !if_true.args.is_empty() || if_true.block <= header || if_false.block == header {
        return None;
    }
    let induction = h.params.iter().position(|p| *p == a)?;
    // The body: a chain of jumps from the true side back to the header, each block entered
    // only from the one before.
    let preds = super::loops::predecessors(func);
    let mut chain = vec![if_true.block];
    loop {
        let last = *chain.last().expect("not empty");
        if preds[last].len() != 1 || chain.len() > MAX_BODY {
            return None;
        }
        let Term::Jump(t) = &func.blocks[last].term else { return None };
        if t.block == header {
            break;
        }
        if t.block <= last {
            return None;
        }
        chain.push(t.block);
    }
    // The header's only other predecessor: the preheader, jumping there.
    let latch = *chain.last().expect("not empty");
    let outside: Vec<usize> = preds[header].iter().copied().filter(|&p| p != latch).collect();
    let [preheader] = outside[..] else { return None };
    if preds[header].len() != 2 || !matches!(&func.blocks[preheader].term, Term::Jump(t) if t.block == header) {
        return None;
    }
    // The condition is read by the branch only; the bound is defined outside the loop.
    let body: HashSet<usize> = chain.iter().copied().chain([header]).collect();
    let defined = super::loops::defined_in(func, &body);
    if defined.contains(&b) || func.use_counts()[dst.index()] != 1 {
        return None;
    }
    let insts = || chain.iter().flat_map(|&c| &func.blocks[c].insts);
    if insts().count() + 1 > MAX_BODY || !insts().all(copyable) {
        return None;
    }
    let exits = insts().filter(|i| !matches!(i, Inst::CheckEvalBreaker { .. }) && !i.exits().is_empty()).count();
    if exits > MAX_EXITS {
        return None;
    }
    let step = super::loops::induction_step(func, header, induction, &[latch], &super::loops::definition_counts(func))?;
    let factor = if insts().count() + 1 <= SMALL_BODY { SMALL_UNROLL } else { UNROLL };
    (1..=1 << 20).contains(&step).then_some(Shape { header, preheader, chain, induction, step, bound: b, factor })
}

/// The instructions a copy may contain: no calls, nothing that keeps state outside the
/// registers and memory the loop already writes in order.
fn copyable(inst: &Inst) -> bool {
    matches!(
        inst,
        Inst::Move { .. }
            | Inst::Load { .. }
            | Inst::SetEq { .. }
            | Inst::Select { .. }
            | Inst::IntArith { .. }
            | Inst::FloatArith { .. }
            | Inst::FloatNeg { .. }
            | Inst::IntToFloat { .. }
            | Inst::Compare { .. }
            | Inst::ArrayIndex { .. }
            | Inst::LoadElement { .. }
            | Inst::StoreElement { .. }
            | Inst::ExitIfOutside { .. }
            | Inst::ExitIfEqual { .. }
            | Inst::ExitIfFpFlags { .. }
            | Inst::LoadBoundFlag { .. }
            | Inst::SetBoundFlag { .. }
            | Inst::CheckEvalBreaker { .. }
    )
}

/// Copies of registers and exits for one function, made copy by copy.
struct Copier<'f> {
    func: &'f mut Func,
    /// Original register -> its value in the copy being made.
    map: HashMap<VReg, VReg>,
    /// Copies known to be `base + constant` (the induction variable of each copy, from the
    /// unrolled header's): computed from `base` directly rather than from the previous copy,
    /// and folded into element addresses as a displacement (`a[i + 2]`: `[a + i*8 + 16]`),
    /// so that the increments between copies are left unread and removed.
    offsets: HashMap<VReg, (VReg, i64)>,
}

impl Copier<'_> {
    fn new_reg_like(&mut self, original: VReg) -> VReg {
        let float = self.func.float_regs.get(original.index()).copied().unwrap_or(false);
        self.func.new_reg(float)
    }

    fn get(&self, r: VReg) -> VReg {
        self.map.get(&r).copied().unwrap_or(r)
    }

    fn src(&self, s: Src) -> Src {
        match s {
            Src::Reg(r) => Src::Reg(self.get(r)),
            Src::Imm(_) => s,
        }
    }

    fn at(&self, at: ElementAddress) -> ElementAddress {
        let mut out = ElementAddress {
            base: self.get(at.base),
            offset: at.offset.map(|o| self.get(o)),
            index: at.index.map(|(i, s)| (self.get(i), s)),
            disp: at.disp,
        };
        if let Some((i, scale)) = out.index {
            if let Some(&(base, off)) = self.offsets.get(&i) {
                let disp = off.checked_mul(i64::from(scale)).and_then(|d| d.checked_add(i64::from(out.disp)));
                if let Some(disp) = disp.and_then(|d| i32::try_from(d).ok()) {
                    out.index = Some((base, scale));
                    out.disp = disp;
                }
            }
        }
        out
    }

    /// A fresh register for `dst` in this copy.
    fn def(&mut self, dst: VReg) -> VReg {
        let new = self.new_reg_like(dst);
        if let Some(&c) = self.func.constants.get(&dst) {
            self.func.constants.insert(new, c);
        }
        self.map.insert(dst, new);
        new
    }

    /// The exit as the copy sees it: the original if it reads no register the copy renames,
    /// else a copy on the renamed registers (and so for the exit it may redo from).
    fn exit(&mut self, x: ExitIndex) -> ExitIndex {
        let redo_from = self.func.exits[x as usize].redo_from;
        let redo = redo_from.map(|r| self.exit(r));
        let original = &self.func.exits[x as usize];
        if redo == original.redo_from && !original.uses().iter().any(|r| self.map.contains_key(r)) {
            return x;
        }
        let mut copy = original.clone();
        copy.redo_from = redo;
        copy.map_regs(|r| self.get(r));
        self.func.exits.push(copy);
        (self.func.exits.len() - 1) as ExitIndex
    }

    fn opt_exit(&mut self, x: Option<ExitIndex>) -> Option<ExitIndex> {
        x.map(|x| self.exit(x))
    }

    /// `inst` in this copy: operands read through the map, results and exits fresh.
    fn inst(&mut self, inst: &Inst) -> Inst {
        // Operands first (they read the previous definitions), then the result.
        match *inst {
            Inst::Move { dst, src } => {
                let src = self.src(src);
                Inst::Move { dst: self.def(dst), src }
            }
            Inst::Load { dst, base, offset } => {
                let base = self.get(base);
                Inst::Load { dst: self.def(dst), base, offset }
            }
            Inst::SetEq { dst, a, b, negate } => {
                let (a, b) = (self.get(a), self.src(b));
                Inst::SetEq { dst: self.def(dst), a, b, negate }
            }
            Inst::Select { dst, cond, if_true, if_false } => {
                let (cond, if_true, if_false) = (self.get(cond), self.src(if_true), self.src(if_false));
                Inst::Select { dst: self.def(dst), cond, if_true, if_false }
            }
            Inst::IntArith { op: IntOp::Add, dst, a, b: Src::Imm(c), exit: None } => {
                let a = self.get(a);
                match self.offsets.get(&a).and_then(|&(base, off)| Some((base, off.checked_add(c)?))) {
                    Some((base, off)) => {
                        let dst = self.def(dst);
                        self.offsets.insert(dst, (base, off));
                        if let Ok(off) = i32::try_from(off) {
                            self.func.derived.insert(dst, (base, off));
                        }
                        Inst::IntArith { op: IntOp::Add, dst, a: base, b: Src::Imm(off), exit: None }
                    }
                    None => Inst::IntArith { op: IntOp::Add, dst: self.def(dst), a, b: Src::Imm(c), exit: None },
                }
            }
            Inst::IntArith { op, dst, a, b, exit } => {
                let (a, b, exit) = (self.get(a), self.src(b), self.opt_exit(exit));
                Inst::IntArith { op, dst: self.def(dst), a, b, exit }
            }
            Inst::FloatArith { op, dst, a, b, exit } => {
                let (a, b, exit) = (self.get(a), self.get(b), self.opt_exit(exit));
                Inst::FloatArith { op, dst: self.def(dst), a, b, exit }
            }
            Inst::FloatNeg { dst, src } => {
                let src = self.get(src);
                Inst::FloatNeg { dst: self.def(dst), src }
            }
            Inst::IntToFloat { dst, src, exit } => {
                let (src, exit) = (self.get(src), self.opt_exit(exit));
                Inst::IntToFloat { dst: self.def(dst), src, exit }
            }
            Inst::Compare { op, float, dst, a, b } => {
                let (a, b) = (self.get(a), self.get(b));
                Inst::Compare { op, float, dst: self.def(dst), a, b }
            }
            Inst::ArrayIndex { dst, index, dim, exit } => {
                let (index, dim, exit) = (self.get(index), self.get(dim), self.exit(exit));
                Inst::ArrayIndex { dst: self.def(dst), index, dim, exit }
            }
            Inst::LoadElement { dst, at, dtype } => {
                let at = self.at(at);
                Inst::LoadElement { dst: self.def(dst), at, dtype }
            }
            Inst::StoreElement { at, value, dtype } => Inst::StoreElement { at: self.at(at), value: self.get(value), dtype },
            Inst::ExitIfOutside { value, lo, hi, exit } => {
                Inst::ExitIfOutside { value: self.get(value), lo, hi, exit: self.exit(exit) }
            }
            Inst::ExitIfEqual { value, imm, exit } => Inst::ExitIfEqual { value: self.get(value), imm, exit: self.exit(exit) },
            Inst::ExitIfFpFlags { exit } => Inst::ExitIfFpFlags { exit: self.exit(exit) },
            Inst::LoadBoundFlag { dst, local } => Inst::LoadBoundFlag { dst: self.def(dst), local },
            Inst::SetBoundFlag { local, bound } => Inst::SetBoundFlag { local, bound },
            Inst::CheckEvalBreaker { exit, resume, leave } => {
                Inst::CheckEvalBreaker { exit: self.exit(exit), resume: self.exit(resume), leave }
            }
            _ => unreachable!("only copyable instructions are copied"),
        }
    }
}

fn rewrite(func: &mut Func, shape: &Shape) {
    let Shape { header, preheader, ref chain, induction, step, bound, factor } = *shape;
    let params = func.blocks[header].params.clone();
    let latch = *chain.last().expect("not empty");
    let Term::Jump(back) = func.blocks[latch].term.clone() else { unreachable!("the latch jumps") };
    let body: Vec<(Vec<Inst>, Term)> = chain.iter().map(|&c| (func.blocks[c].insts.clone(), func.blocks[c].term.clone())).collect();

    // The bound of the unrolled loop, in the preheader: `bound - step*(UNROLL-1)`, or the
    // lowest int where that would wrap (no index is below it: the unrolled copy never runs).
    let margin = step * (factor - 1);
    let (lowest_safe, fits, lowered, lim) = (func.new_reg(false), func.new_reg(false), func.new_reg(false), func.new_reg(false));
    func.constants.insert(lowest_safe, i64::MIN + margin);
    func.blocks[preheader].insts.extend([
        Inst::Move { dst: lowest_safe, src: Src::Imm(i64::MIN + margin) },
        Inst::Compare { op: CompareOp::Ge, float: false, dst: fits, a: bound, b: lowest_safe },
        Inst::IntArith { op: IntOp::Sub, dst: lowered, a: bound, b: Src::Imm(margin), exit: None },
        Inst::Select { dst: lim, cond: fits, if_true: Src::Reg(lowered), if_false: Src::Imm(i64::MIN) },
    ]);

    // The unrolled header's parameters, and the body's copies on them.
    let unrolled_params: Vec<VReg> = params.iter().map(|&p| {
        let float = func.float_regs[p.index()];
        func.new_reg(float)
    }).collect();
    let mut copier = Copier { func, map: HashMap::default(), offsets: HashMap::default() };
    copier.offsets.insert(unrolled_params[induction], (unrolled_params[induction], 0));
    let mut current = unrolled_params.clone();
    let mut insts = Vec::new();
    for k in 0..factor {
        copier.map.clear();
        for (p, v) in params.iter().zip(&current) {
            copier.map.insert(*p, *v);
        }
        for (block_insts, term) in &body {
            for inst in block_insts {
                if matches!(inst, Inst::CheckEvalBreaker { .. }) && k + 1 < factor {
                    continue;
                }
                let copy = copier.inst(inst);
                insts.push(copy);
            }
            // The next block of the chain takes this one's jump arguments as its parameters.
            if let Term::Jump(t) = term {
                if t.block != header {
                    let next_params = copier.func.blocks[t.block].params.clone();
                    for (p, a) in next_params.iter().zip(&t.args) {
                        let v = copier.get(*a);
                        copier.map.insert(*p, v);
                    }
                }
            }
        }
        current = back.args.iter().map(|a| copier.get(*a)).collect();
    }
    // The last increment of the induction variable at the end, after the last address that
    // reads the variable (which then dies there, and may share the increment's register).
    // (Exits read a derived value's base instead; no instruction after it may read it.)
    let next = current[induction];
    if let Some(pos) = insts.iter().position(|i| i.def() == Some(next) && matches!(i, Inst::IntArith { exit: None, .. })) {
        if copier.func.derived.contains_key(&next) && !insts[pos + 1..].iter().any(|i| i.uses().contains(&next)) {
            let increment = insts.remove(pos);
            insts.push(increment);
        }
    }
    let func = copier.func;
    let body_block = func.blocks.len() + 1;
    let unrolled_header = func.blocks.len();
    let cond = func.new_reg(false);
    func.blocks.push(Block {
        params: unrolled_params.clone(),
        insts: vec![Inst::Compare { op: CompareOp::Lt, float: false, dst: cond, a: unrolled_params[induction], b: lim }],
        term: Term::Branch {
            cond,
            if_true: Target { block: body_block, args: vec![] },
            if_false: Target { block: header, args: unrolled_params },
        },
        end_at: func.blocks[header].end_at,
    });
    func.blocks.push(Block {
        params: vec![],
        insts,
        term: Term::Jump(Target { block: unrolled_header, args: current }),
        end_at: func.blocks[latch].end_at,
    });
    if let Term::Jump(t) = &mut func.blocks[preheader].term {
        t.block = unrolled_header;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lir::test_support::{block, to};
    use crate::numpy::DType;

    /// s = sum of f64[%0 + k*8] for k in range(%1):
    /// L0(%0 base, %1 len): %2 = 0; %3 = 0.0; jump L1(%2, %3)
    /// L1(%4 k, %5 s): %6 = k < len; branch %6, L2, L3
    /// L2: %7 = k + 1; %8 = f64[%0 + %4*8]; %9 = s + %8; jump L1(%7, %9)
    /// L3: return %5
    fn sum_loop() -> Func {
        let blocks = vec![
            block(
                vec![0, 1],
                vec![Inst::Move { dst: VReg(2), src: Src::Imm(0) }, Inst::Move { dst: VReg(3), src: Src::Imm(0) }],
                Term::Jump(to(1, vec![2, 3])),
            ),
            block(
                vec![4, 5],
                vec![Inst::Compare { op: CompareOp::Lt, float: false, dst: VReg(6), a: VReg(4), b: VReg(1) }],
                Term::Branch { cond: VReg(6), if_true: to(2, vec![]), if_false: to(3, vec![]) },
            ),
            block(
                vec![],
                vec![
                    Inst::IntArith { op: IntOp::Add, dst: VReg(7), a: VReg(4), b: Src::Imm(1), exit: None },
                    Inst::LoadElement {
                        dst: VReg(8),
                        at: ElementAddress { base: VReg(0), offset: None, index: Some((VReg(4), 8)), disp: 0 },
                        dtype: DType::F64,
                    },
                    Inst::FloatArith { op: crate::hir::FloatOp::Add, dst: VReg(9), a: VReg(5), b: VReg(8), exit: None },
                ],
                Term::Jump(to(1, vec![7, 9])),
            ),
            block(vec![], vec![], Term::Return(VReg(5))),
        ];
        let mut f = Func {
            name: "t".into(),
            blocks,
            exits: vec![],
            nregs: 10,
            nlocalsplus: 0,
            float_regs: vec![false; 10],
            constants: Default::default(),
            derived: Default::default(),
        };
        for r in [3, 5, 8, 9] {
            f.float_regs[r] = true;
        }
        f.constants.insert(VReg(2), 0);
        f.constants.insert(VReg(3), 0);
        f
    }

    #[test]
    fn a_counted_loop_gets_an_unrolled_copy_before_it() {
        let mut f = sum_loop();
        assert!(unroll(&mut f));
        // The preheader now enters the unrolled header, which falls back to the original.
        let Term::Jump(entry) = &f.blocks[0].term else { panic!() };
        let u = entry.block;
        let Term::Branch { if_true, if_false, .. } = &f.blocks[u].term else { panic!() };
        assert_eq!(if_false.block, 1);
        // The unrolled body (a small one): SMALL_UNROLL loads, adds in order, then back to the
        // unrolled header.
        let b = &f.blocks[if_true.block];
        let loads = b.insts.iter().filter(|i| matches!(i, Inst::LoadElement { .. })).count();
        assert_eq!(loads as i64, SMALL_UNROLL);
        let adds: Vec<(VReg, VReg)> = b
            .insts
            .iter()
            .filter_map(|i| match i {
                Inst::FloatArith { dst, a, .. } => Some((*dst, *a)),
                _ => None,
            })
            .collect();
        // Each float add reads the previous one's result (the order of the sum is kept).
        assert_eq!(adds[0].1, f.blocks[u].params[1]);
        for w in adds.windows(2) {
            assert_eq!(w[1].1, w[0].0);
        }
        let Term::Jump(back) = &b.term else { panic!() };
        assert_eq!(back.block, u);
        assert_eq!(back.args[1], adds.last().unwrap().0);
        assert_eq!(f.float_regs.len(), f.nregs as usize);
    }

    #[test]
    fn the_unrolled_bound_cannot_wrap() {
        let mut f = sum_loop();
        unroll(&mut f);
        // lim = len - 7 when len >= MIN + 7, else MIN.
        let pre = &f.blocks[0].insts;
        assert!(pre.iter().any(|i| matches!(i, Inst::IntArith { op: IntOp::Sub, b: Src::Imm(7), exit: None, .. })));
        assert!(pre.iter().any(|i| matches!(i, Inst::Select { if_false: Src::Imm(i64::MIN), .. })));
    }

    #[test]
    fn a_loop_with_a_call_is_left_alone() {
        let mut f = sum_loop();
        let callee = crate::lir::Callee { name: "c", address: 0, returns_int: false };
        f.blocks[2].insts.push(Inst::Call { callee, args: vec![], ret: None });
        let before = f.clone();
        assert!(!unroll(&mut f));
        assert_eq!(f, before);
    }

    #[test]
    fn a_loop_counting_down_is_left_alone() {
        let mut f = sum_loop();
        f.blocks[2].insts[0] = Inst::IntArith { op: IntOp::Add, dst: VReg(7), a: VReg(4), b: Src::Imm(-1), exit: None };
        assert!(!unroll(&mut f));
    }
}
