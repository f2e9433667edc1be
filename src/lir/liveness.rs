//! Liveness for the register allocator: which registers are live into each block, and each
//! register's live range over instruction positions.
//!
//! Sets of registers are bit sets: a function has a few hundred registers at most, so a set is
//! a few words and the data-flow fixpoint is word-wide unions. What the analysis reads of an
//! instruction, a terminator or an exit is gathered once per block (`BlockFlow`) and once per
//! exit, not again on every round of the fixpoint.

use super::{Func, Term, VReg};
use crate::bitset::BitSet;

/// A set of virtual registers, one bit each.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct RegSet(BitSet);

impl RegSet {
    /// An empty set for registers `0..nregs`.
    pub fn new(nregs: u32) -> RegSet {
        RegSet(BitSet::new(nregs as usize))
    }

    pub fn insert(&mut self, r: VReg) {
        self.0.insert(r.index());
    }

    pub fn remove(&mut self, r: VReg) {
        self.0.remove(r.index());
    }

    pub fn contains(&self, r: VReg) -> bool {
        self.0.contains(r.index())
    }

    pub fn union_with(&mut self, other: &RegSet) {
        self.0.union_with(&other.0);
    }

    pub fn subtract(&mut self, other: &RegSet) {
        self.0.subtract(&other.0);
    }

    /// The members, in increasing order.
    pub fn iter(&self) -> impl Iterator<Item = VReg> + '_ {
        self.0.iter().map(|i| VReg(i as u32))
    }
}

/// A value's live range: sorted, disjoint, closed position ranges (see `block_positions`).
pub type Ranges = Vec<(u32, u32)>;

/// What liveness reads of a function, gathered once.
pub struct Facts {
    /// Per register: defined by a constant (no range: rematerialised where read).
    pub is_const: Vec<bool>,
    /// Per exit: the registers it keeps live (`Func::exit_uses`).
    pub exit_uses: Vec<Vec<VReg>>,
}

impl Facts {
    pub fn of(func: &Func) -> Facts {
        let mut is_const = vec![false; func.nregs as usize];
        for r in func.constants.keys() {
            if let Some(c) = is_const.get_mut(r.index()) {
                *c = true;
            }
        }
        Facts { is_const, exit_uses: func.exits.iter().map(|e| func.exit_uses(e)).collect() }
    }

    pub fn is_const(&self, r: VReg) -> bool {
        self.is_const.get(r.index()).copied().unwrap_or(false)
    }
}

/// Positions: each block takes `2 + 2 * insts` positions: its parameters are defined at its
/// first position, instruction `i` is at `first + 2 + 2i`, the terminator at the last.
pub fn block_positions(func: &Func) -> Vec<(u32, u32)> {
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

/// A block's effect on liveness: `live_in = ((live_in of successors ∪ out) − kill) ∪ gen`.
struct BlockFlow {
    /// Read at the block's end: edge arguments, the terminator's operand or exit.
    out: RegSet,
    /// Defined in the block (parameters included).
    kill: RegSet,
    /// Read in the block before any definition in it (instructions and their exits).
    gen: RegSet,
}

fn block_flow(func: &Func, facts: &Facts, b: usize) -> BlockFlow {
    let block = &func.blocks[b];
    let mut out = RegSet::new(func.nregs);
    for t in block.term.targets() {
        t.args.iter().filter(|a| !facts.is_const(**a)).for_each(|a| out.insert(*a));
    }
    match &block.term {
        Term::Branch { cond: r, .. } | Term::Return(r) if !facts.is_const(*r) => out.insert(*r),
        Term::Exit(e) => facts.exit_uses[*e as usize].iter().for_each(|r| out.insert(*r)),
        Term::Jump(_) | Term::Branch { .. } | Term::Return(_) => {}
    }
    // Backwards, each instruction maps the set after it to `(after − def) ∪ reads`; composed
    // over the block that is `(after − kill) ∪ gen`.
    let mut kill = RegSet::new(func.nregs);
    let mut gen = RegSet::new(func.nregs);
    for inst in block.insts.iter().rev() {
        if let Some(d) = inst.def() {
            kill.insert(d);
            gen.remove(d);
        }
        inst.uses().into_iter().filter(|r| !facts.is_const(*r)).for_each(|r| gen.insert(r));
        for e in inst.exits() {
            facts.exit_uses[e as usize].iter().for_each(|r| gen.insert(*r));
        }
    }
    for p in &block.params {
        kill.insert(*p);
        gen.remove(*p);
    }
    BlockFlow { out, kill, gen }
}

/// Per block: the registers live out of it (into its successors, passed along its edges, read
/// by its terminator).
pub fn live_out_sets(func: &Func, facts: &Facts) -> Vec<RegSet> {
    let n = func.blocks.len();
    let flows: Vec<BlockFlow> = (0..n).map(|b| block_flow(func, facts, b)).collect();
    let mut live_in: Vec<RegSet> = vec![RegSet::new(func.nregs); n];
    let live_out = |b: usize, live_in: &[RegSet]| {
        let mut out = flows[b].out.clone();
        for t in func.blocks[b].term.targets() {
            out.union_with(&live_in[t.block]);
        }
        out
    };
    let mut changed = true;
    while changed {
        changed = false;
        // Blocks are mostly in reverse postorder: walking them backwards settles most of them
        // in one round.
        for b in (0..n).rev() {
            let mut live = live_out(b, &live_in);
            live.subtract(&flows[b].kill);
            live.union_with(&flows[b].gen);
            if live != live_in[b] {
                live_in[b] = live;
                changed = true;
            }
        }
    }
    (0..n).map(|b| live_out(b, &live_in)).collect()
}

/// Each register's live range. Within a block: from its definition (the position after the
/// instruction's, so an operand dying there and the result may share a register) or the
/// block's start (parameters, values live in) to its last use, or the block's end if it is
/// live out. Values an exit reads stay live past the instruction's definition: the backend
/// may compute the result in its register before a check that takes the exit. Constants have
/// no range: they are rematerialised where read (edges included), so they need no location.
pub fn live_ranges(func: &Func, facts: &Facts) -> Vec<Ranges> {
    const CLOSED: u32 = u32::MAX;
    let positions = block_positions(func);
    let live_out = live_out_sets(func, facts);
    let mut ranges: Vec<Ranges> = vec![Vec::new(); func.nregs as usize];
    let mut add = |r: VReg, s: u32, e: u32| {
        if let Some(v) = ranges.get_mut(r.index()) {
            v.push((s, e));
        }
    };
    // Registers live at the current point of the backward walk: where each stops (CLOSED if
    // not live), and the ones opened in this block.
    let mut stops: Vec<u32> = vec![CLOSED; func.nregs as usize];
    let mut opened: Vec<VReg> = Vec::new();
    let open = |stops: &mut [u32], opened: &mut Vec<VReg>, r: VReg, at: u32| {
        if let Some(s) = stops.get_mut(r.index()) {
            if *s == CLOSED {
                *s = at;
                opened.push(r);
            }
        }
    };
    let close = |stops: &mut [u32], r: VReg| stops.get_mut(r.index()).map(|s| std::mem::replace(s, CLOSED)).filter(|&s| s != CLOSED);
    for (b, block) in func.blocks.iter().enumerate() {
        let (start, end) = positions[b];
        for r in live_out[b].iter() {
            open(&mut stops, &mut opened, r, end);
        }
        for (i, inst) in block.insts.iter().enumerate().rev() {
            let pos = start + 2 + 2 * i as u32;
            if let Some(d) = inst.def().filter(|d| !facts.is_const(*d)) {
                let e = close(&mut stops, d).unwrap_or(pos + 1);
                add(d, pos + 1, e);
            }
            let undone = super::regalloc::undoable_operand(inst);
            for e in inst.exits() {
                for &u in &facts.exit_uses[e as usize] {
                    if Some(u) != undone {
                        open(&mut stops, &mut opened, u, pos + 1);
                    }
                }
            }
            for u in inst.uses().into_iter().filter(|r| !facts.is_const(*r)) {
                open(&mut stops, &mut opened, u, pos);
            }
        }
        for p in &block.params {
            let e = close(&mut stops, *p).unwrap_or(start);
            add(*p, start, e);
        }
        for r in opened.drain(..) {
            if let Some(e) = close(&mut stops, r) {
                add(r, start, e);
            }
        }
    }
    ranges
        .into_iter()
        .map(|mut v| {
            v.sort_unstable();
            normalise(v)
        })
        .collect()
}

/// Merges overlapping and adjacent ranges of a sorted list. Ranges one position apart are
/// merged too: the position between two blocks holds no instruction, so no other value is
/// live there.
pub fn normalise(sorted: Ranges) -> Ranges {
    let mut out: Ranges = Vec::with_capacity(sorted.len());
    for (s, e) in sorted {
        match out.last_mut() {
            Some(last) if s <= last.1 + 2 => last.1 = last.1.max(e),
            _ => out.push((s, e)),
        }
    }
    out
}
