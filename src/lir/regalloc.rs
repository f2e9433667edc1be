//! Register allocation: linear scan over live intervals, spilling to stack slots.
//!
//! Each virtual register gets one location for its whole life (a register of the backend's
//! allocatable set, or a stack slot), so an exit stub finds every value where the guard left
//! it. Intervals are conservative (first definition to last use, stretched over the blocks
//! where the value is live in or out), which is what keeps loop-carried values alive across the
//! back-edge. When no register is free, the interval that ends last is spilled: there is no
//! limit on live values. The first `callee_saved` registers survive calls; the others are
//! given only to intervals that contain no call (the machine-value code of a numeric loop).

use std::collections::BTreeSet;

use super::{Func, Src, Term, VReg};

/// Where a virtual register lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Location {
    /// Index into the backend's allocatable registers.
    Reg(u8),
    /// Index into the backend's allocatable SSE registers (float values only).
    Xmm(u8),
    /// A stack slot (8 bytes each).
    Stack(u32),
}

/// The allocation of a function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allocation {
    /// Per virtual register; `None` for registers that are never used.
    pub locations: Vec<Option<Location>>,
    /// Stack slots used for spills.
    pub spill_slots: u32,
    /// How many SSE registers are used (`Xmm(0..xmm_used)`).
    pub xmm_used: u8,
}

impl Allocation {
    /// The location of a register that is used.
    pub fn of(&self, r: VReg) -> Location {
        self.locations[r.index()].unwrap_or(Location::Stack(0))
    }
}

/// A live interval in the linear numbering of instruction positions.
#[derive(Debug, Clone, Copy)]
struct Interval {
    reg: VReg,
    start: u32,
    end: u32,
}

/// Allocates `func`'s registers to `num_regs` general registers (the first `callee_saved` of
/// which survive calls), `num_xmm` SSE registers for float values (none survives a call) and
/// stack slots.
pub fn allocate(func: &Func, num_regs: u8, callee_saved: u8, num_xmm: u8) -> Allocation {
    let (floats, others): (Vec<Interval>, Vec<Interval>) =
        intervals(func).into_iter().partition(|i| func.float_regs.get(i.reg.index()).copied().unwrap_or(false));
    let calls = call_positions(func, false);
    let strict_calls = call_positions(func, true);
    let mut partners = edge_partners(func);
    for (dst, src) in copy_hints(func) {
        partners.entry(dst).or_default().push(src);
    }
    let mut locations = vec![None; func.nregs as usize];
    let mut spill_slots = 0;
    let costs = spill_costs(func);
    let general = Class { num_regs, callee_saved, make: Location::Reg, args_ok: false };
    linear_scan(&mut locations, &mut spill_slots, others, &general, &calls, &strict_calls, &partners, &costs);
    let sse = Class { num_regs: num_xmm, callee_saved: 0, make: Location::Xmm, args_ok: true };
    linear_scan(&mut locations, &mut spill_slots, floats, &sse, &calls, &strict_calls, &partners, &costs);
    let xmm_used = locations
        .iter()
        .filter_map(|l| match l {
            Some(Location::Xmm(i)) => Some(i + 1),
            _ => None,
        })
        .max()
        .unwrap_or(0);
    Allocation { locations, spill_slots, xmm_used }
}

/// A register class for `linear_scan`.
struct Class {
    num_regs: u8,
    /// The first `callee_saved` registers survive calls.
    callee_saved: u8,
    /// Makes a location of this class.
    make: fn(u8) -> Location,
    /// Whether a value used (not live across) by a call may be in a caller-saved register.
    args_ok: bool,
}

/// Groups of registers connected by edges (an argument and the parameter it is passed to,
/// transitively: a loop variable's parameter, its new value and the parameters in between):
/// given one register, the edges between them need no moves. Maps each member to its group.
fn edge_partners(func: &Func) -> std::collections::HashMap<VReg, Vec<VReg>> {
    // Union-find over the registers that appear on edges.
    let mut parent: std::collections::HashMap<VReg, VReg> = std::collections::HashMap::new();
    fn find(parent: &mut std::collections::HashMap<VReg, VReg>, r: VReg) -> VReg {
        let p = *parent.entry(r).or_insert(r);
        if p == r {
            return r;
        }
        let root = find(parent, p);
        parent.insert(r, root);
        root
    }
    for block in &func.blocks {
        for t in block.term.targets() {
            for (p, a) in func.blocks[t.block].params.iter().zip(&t.args) {
                if func.constants.contains_key(a) {
                    continue; // rematerialised: no register to share
                }
                let (rp, ra) = (find(&mut parent, *p), find(&mut parent, *a));
                if rp != ra {
                    parent.insert(rp, ra);
                }
            }
        }
    }
    let members: Vec<VReg> = parent.keys().copied().collect();
    let mut groups: std::collections::HashMap<VReg, Vec<VReg>> = std::collections::HashMap::new();
    for r in &members {
        let root = find(&mut parent, *r);
        groups.entry(root).or_default().push(*r);
    }
    // Hints are tried in order: a loop header's parameters first (a value carried around a
    // loop then stays in one register, and the moves go to the edges into the loop's
    // branches instead of the back-edge), then by number (the same code every time).
    let mut loop_params: std::collections::HashSet<VReg> = std::collections::HashSet::new();
    for (b, block) in func.blocks.iter().enumerate() {
        for t in block.term.targets().into_iter().filter(|t| t.block <= b) {
            loop_params.extend(func.blocks[t.block].params.iter().copied());
        }
    }
    let mut partners = std::collections::HashMap::new();
    for mut group in groups.into_values() {
        group.sort_by_key(|r| (!loop_params.contains(r), *r));
        for r in &group {
            partners.insert(*r, group.clone());
        }
    }
    partners
}

/// What keeping each register in memory would cost: its definition and uses in the code
/// (not in exits, which are cold), each weighing 8 per loop around it. A value only exits
/// read costs nothing to spill; one a loop reads costs the most.
fn spill_costs(func: &Func) -> Vec<u64> {
    let n = func.blocks.len();
    let targets = |b: usize| func.blocks[b].term.targets().into_iter().map(|t| t.block).collect::<Vec<_>>();
    let mut preds: Vec<Vec<usize>> = vec![Vec::new(); n];
    for b in 0..n {
        for t in targets(b) {
            preds[t].push(b);
        }
    }
    // Blocks are in reverse postorder: an edge to an earlier block (or itself) closes a loop,
    // whose body is what reaches the edge's source backwards without passing its header.
    let mut depth = vec![0u32; n];
    for b in 0..n {
        for h in targets(b).into_iter().filter(|&h| h <= b) {
            let mut body = vec![false; n];
            body[h] = true;
            let mut work = vec![b];
            while let Some(x) = work.pop() {
                if !std::mem::replace(&mut body[x], true) {
                    work.extend(preds[x].iter().copied());
                }
            }
            for (d, inside) in depth.iter_mut().zip(body) {
                *d += u32::from(inside);
            }
        }
    }
    let mut cost = vec![0u64; func.nregs as usize];
    let mut add = |r: VReg, w: u64| {
        if let Some(c) = cost.get_mut(r.index()) {
            *c = c.saturating_add(w);
        }
    };
    for (b, block) in func.blocks.iter().enumerate() {
        let w = 8u64.saturating_pow(depth[b].min(20));
        for p in &block.params {
            add(*p, w);
        }
        for inst in &block.insts {
            for r in inst.uses() {
                add(r, w);
            }
            if let Some(d) = inst.def() {
                add(d, w);
            }
        }
        match &block.term {
            Term::Branch { cond: r, .. } | Term::Return(r) => add(*r, w),
            Term::Jump(_) | Term::Exit(_) => {}
        }
        for t in block.term.targets() {
            for a in &t.args {
                add(*a, w);
            }
        }
    }
    cost
}

/// Results that would like their operand's register, where the operand dies at the
/// instruction: a copy, and the two-address operations of the backend (`dst = a op b` is
/// `dst = a; dst op= b`), whose move then disappears.
fn copy_hints(func: &Func) -> Vec<(VReg, VReg)> {
    use super::Inst;
    let mut hints = Vec::new();
    for block in &func.blocks {
        for inst in &block.insts {
            let pair = match inst {
                Inst::Move { dst, src: Src::Reg(s) } => Some((*dst, *s)),
                Inst::FloatArith { dst, a, .. } => Some((*dst, *a)),
                Inst::IntArith { dst, a, .. } => Some((*dst, *a)),
                Inst::FloatNeg { dst, src } => Some((*dst, *src)),
                _ => None,
            };
            if let Some((d, s)) = pair {
                if !func.constants.contains_key(&s) {
                    hints.push((d, s));
                }
            }
        }
    }
    hints
}

/// Positions of instructions that call C code clobbering the caller-saved registers (sorted);
/// with `strict`, only those whose arguments must not be in caller-saved registers (see
/// `Inst::loads_arguments_safely`).
fn call_positions(func: &Func, strict: bool) -> Vec<u32> {
    let positions = block_positions(func);
    let mut calls = Vec::new();
    for (b, block) in func.blocks.iter().enumerate() {
        let (start, end) = positions[b];
        for (i, inst) in block.insts.iter().enumerate() {
            if inst.clobbers_caller_saved() && !(strict && inst.loads_arguments_safely()) {
                calls.push(start + 2 + 2 * i as u32);
            }
        }
        // Returns and exits leave; a block's end is no call.
        let _ = end;
    }
    calls
}

/// Whether an interval contains a call position: a value live across it, or (unless
/// `args_ok`) used by it. General registers used as arguments are excluded too (loading the
/// argument registers could overwrite them); an SSE register is read into an argument
/// register before the call, so one that dies at the call is fine.
fn crosses_call(calls: &[u32], interval: &Interval, args_ok: bool) -> bool {
    let i = calls.partition_point(|&p| p < interval.start);
    if args_ok {
        calls.get(i).is_some_and(|&p| p < interval.end)
    } else {
        calls.get(i).is_some_and(|&p| p <= interval.end + 1)
    }
}

/// Positions: each block takes `2 + 2 * insts` positions: its parameters are defined at its
/// first position, instruction `i` is at `first + 2 + 2i`, the terminator at the last.
fn block_positions(func: &Func) -> Vec<(u32, u32)> {
    let mut next = 0u32;
    func.blocks
        .iter()
        .map(|b| {
            let start = next;
            let end = start + 2 + 2 * b.insts.len() as u32;
            next = end + 2;
            (start, end)
        })
        .collect()
}

/// Registers live into each block (block parameters excluded: they are defined there).
fn live_in_sets(func: &Func) -> Vec<BTreeSet<VReg>> {
    let n = func.blocks.len();
    let mut live_in: Vec<BTreeSet<VReg>> = vec![BTreeSet::new(); n];
    let mut changed = true;
    while changed {
        changed = false;
        for b in (0..n).rev() {
            let block = &func.blocks[b];
            let mut live: BTreeSet<VReg> = BTreeSet::new();
            for t in block.term.targets() {
                live.extend(live_in[t.block].iter().copied());
                live.extend(t.args.iter().copied());
            }
            match &block.term {
                Term::Branch { cond, .. } if !func.constants.contains_key(cond) => {
                    live.insert(*cond);
                }
                Term::Return(r) => {
                    if !func.constants.contains_key(r) {
                        live.insert(*r);
                    }
                }
                Term::Exit(e) => live.extend(func.exit_uses(&func.exits[*e as usize])),
                Term::Jump(_) | Term::Branch { .. } => {}
            }
            for inst in block.insts.iter().rev() {
                if let Some(d) = inst.def() {
                    live.remove(&d);
                }
                live.extend(inst.uses().into_iter().filter(|r| !func.constants.contains_key(r)));
                for e in inst.exits() {
                    live.extend(func.exit_uses(&func.exits[e as usize]));
                }
            }
            for p in &block.params {
                live.remove(p);
            }
            if live != live_in[b] {
                live_in[b] = live;
                changed = true;
            }
        }
    }
    live_in
}

fn intervals(func: &Func) -> Vec<Interval> {
    let positions = block_positions(func);
    let live_in = live_in_sets(func);
    let mut range: Vec<Option<(u32, u32)>> = vec![None; func.nregs as usize];
    let mut touch = |r: VReg, pos: u32| {
        if let Some(slot) = range.get_mut(r.index()) {
            *slot = Some(match *slot {
                None => (pos, pos),
                Some((s, e)) => (s.min(pos), e.max(pos)),
            });
        }
    };
    for (b, block) in func.blocks.iter().enumerate() {
        let (start, end) = positions[b];
        for p in &block.params {
            touch(*p, start);
        }
        for r in &live_in[b] {
            touch(*r, start);
        }
        for (i, inst) in block.insts.iter().enumerate() {
            let pos = start + 2 + 2 * i as u32;
            // Constants are rematerialised where read (only edges read their register).
            for u in inst.uses().into_iter().filter(|r| !func.constants.contains_key(r)) {
                touch(u, pos);
            }
            // Values an exit reads stay live past the definition: the backend may compute
            // the result in its register before a check that takes the exit.
            for e in inst.exits() {
                for u in func.exit_uses(&func.exits[e as usize]) {
                    touch(u, pos + 1);
                }
            }
            if let Some(d) = inst.def() {
                // A definition occupies the position after the instruction's uses, so an
                // operand and the result may share a register.
                touch(d, pos + 1);
            }
        }
        // Values flowing out along an edge, and the terminator's operands.
        let mut out: Vec<VReg> = Vec::new();
        for t in block.term.targets() {
            out.extend(live_in[t.block].iter().copied());
            out.extend(t.args.iter().copied());
        }
        match &block.term {
            Term::Branch { cond, .. } if !func.constants.contains_key(cond) => out.push(*cond),
            Term::Return(r) if !func.constants.contains_key(r) => out.push(*r),
            Term::Exit(e) => out.extend(func.exit_uses(&func.exits[*e as usize])),
            Term::Jump(_) | Term::Branch { .. } | Term::Return(_) => {}
        }
        for r in out {
            touch(r, end);
        }
    }
    let mut intervals: Vec<Interval> = range
        .iter()
        .enumerate()
        .filter_map(|(i, r)| r.map(|(start, end)| Interval { reg: VReg(i as u32), start, end }))
        .collect();
    intervals.sort_by_key(|i| (i.start, i.reg));
    intervals
}

/// Linear scan of one register class.
fn linear_scan(
    locations: &mut [Option<Location>],
    spill_slots: &mut u32,
    intervals: Vec<Interval>,
    class: &Class,
    calls: &[u32],
    strict_calls: &[u32],
    partners: &std::collections::HashMap<VReg, Vec<VReg>>,
    costs: &[u64],
) {
    let register = |l: Option<Location>| match l {
        Some(Location::Reg(r) | Location::Xmm(r)) => Some(r),
        _ => None,
    };
    let callee_saved = class.callee_saved;
    // Caller-saved registers are preferred for call-free intervals, keeping the callee-saved
    // ones for the intervals that need them.
    let mut free: Vec<u8> = (0..class.num_regs).collect();
    let mut active: Vec<Interval> = Vec::new();
    let mut spill = |locations: &mut [Option<Location>], r: VReg| {
        locations[r.index()] = Some(Location::Stack(*spill_slots));
        *spill_slots += 1;
    };
    for current in intervals {
        // Expire intervals that ended before this one starts.
        active.retain(|a| {
            if a.end < current.start {
                if let Some(r) = register(locations[a.reg.index()]) {
                    free.push(r);
                }
                false
            } else {
                true
            }
        });
        let needs_callee_saved =
            crosses_call(calls, &current, true) || (!class.args_ok && crosses_call(strict_calls, &current, false));
        let usable = |r: u8| !needs_callee_saved || r < callee_saved;
        // The register of a parameter or argument it is passed along an edge with, if free.
        let hinted = partners.get(&current.reg).and_then(|ps| {
            ps.iter().filter_map(|p| register(locations[p.index()])).find_map(|r| free.iter().position(|&f| f == r && usable(f)))
        });
        // Call-free intervals take a caller-saved register when one is free.
        // Otherwise the register free the longest (freed ones go to the back): one just
        // freed is often what a later member of an edge group is hinted to.
        let preferred = free.iter().position(|&r| !needs_callee_saved && r >= callee_saved);
        if let Some(pos) = hinted.or(preferred).or_else(|| free.iter().position(|&r| usable(r))) {
            let r = free.remove(pos);
            locations[current.reg.index()] = Some((class.make)(r));
            active.push(current);
            continue;
        }
        // No register: spill whichever of the active intervals (holding a register this one
        // may use) and this one is cheapest to keep in memory (then: ends last).
        let cost = |i: &Interval| costs.get(i.reg.index()).copied().unwrap_or(0);
        let cheapest = active
            .iter()
            .enumerate()
            .filter(|(_, a)| register(locations[a.reg.index()]).is_some_and(usable))
            .min_by_key(|(_, a)| (cost(a), std::cmp::Reverse(a.end)))
            .map(|(i, a)| (i, *a));
        match cheapest {
            Some((i, victim)) if (cost(&victim), std::cmp::Reverse(victim.end)) < (cost(&current), std::cmp::Reverse(current.end)) => {
                let reg = locations[victim.reg.index()];
                spill(locations, victim.reg);
                locations[current.reg.index()] = reg;
                active.remove(i);
                active.push(current);
            }
            _ => spill(locations, current.reg),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lir::{Block, Inst, Src, Target};

    fn mov(dst: u32, src: i64) -> Inst {
        Inst::Move { dst: VReg(dst), src: Src::Imm(src) }
    }

    #[test]
    fn more_live_values_than_registers_spill() {
        // Eight values all live until the end: two registers hold two, six go to the stack.
        let insts = (0..8).map(|i| mov(i, i as i64)).collect();
        let block = Block { params: vec![], insts, term: Term::Exit(0), end_at: 0 };
        let exit = crate::lir::Exit {
            kind: crate::hir::ExitKind::Resume,
            offset: 0,
            prelude: None,
            release: vec![],
            stack: (0..8).map(|r| (VReg(r), None)).collect(),
            locals: vec![],
            deopt_index: None,
            range_positions: vec![],
            range_iters: vec![],
            borrowed: vec![],
            numpy: vec![],
            bool_lists: Default::default(),
        };
        let func = Func { name: "t".into(), blocks: vec![block], exits: vec![exit], nregs: 8, nlocalsplus: 8, float_regs: vec![], constants: Default::default() };
        let alloc = allocate(&func, 2, 2, 0);
        let in_regs = alloc.locations.iter().filter(|l| matches!(l, Some(Location::Reg(_)))).count();
        assert_eq!(in_regs, 2);
        assert_eq!(alloc.spill_slots, 6);
        // No two values share a location.
        let mut seen = std::collections::HashSet::new();
        for l in alloc.locations.iter().flatten() {
            assert!(seen.insert(*l), "{l:?} given twice");
        }
    }

    #[test]
    fn loop_carried_value_lives_across_the_back_edge() {
        // L0: %0 = 1; jump L1(%0)   L1(%1): %2 = 5; branch %2, L1(%1), L2   L2: return %1
        let blocks = vec![
            Block {
                params: vec![],
                insts: vec![mov(0, 1)],
                term: Term::Jump(Target { block: 1, args: vec![VReg(0)] }),
                end_at: 0,
            },
            Block {
                params: vec![VReg(1)],
                insts: vec![mov(2, 5)],
                term: Term::Branch {
                    cond: VReg(2),
                    if_true: Target { block: 1, args: vec![VReg(1)] },
                    if_false: Target { block: 2, args: vec![] },
                },
                end_at: 0,
            },
            Block { params: vec![], insts: vec![], term: Term::Return(VReg(1)), end_at: 0 },
        ];
        let func = Func { name: "t".into(), blocks, exits: vec![], nregs: 3, nlocalsplus: 0, float_regs: vec![], constants: Default::default() };
        let alloc = allocate(&func, 4, 4, 0);
        // %1 is live from L1 to the return in L2, overlapping %2: they must differ.
        assert_ne!(alloc.of(VReg(1)), alloc.of(VReg(2)));
    }
}
