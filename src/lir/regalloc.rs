//! Register allocation: linear scan over live ranges with holes, after coalescing.
//!
//! Each virtual register gets one location for its whole life (a register of the backend's
//! allocatable set, or a stack slot), so an exit stub finds every value where the guard left
//! it. A value's live range is a list of position ranges: where it is not live (a branch that
//! does not read it, the part of a loop after its last use) its register is free for others.
//! Before allocation, values joined by a block edge (a parameter and the argument passed to
//! it) or by a two-address operation (a result and the operand it overwrites) whose ranges do
//! not overlap are coalesced into one group that gets one location: the edge needs no move and
//! the operation no copy. The most frequently run joins (by loop depth) are tried first.
//! Groups are then allocated in order of their start; when no register is free, the groups
//! that are cheapest to keep in memory are spilled: there is no limit on live values. The
//! first `callee_saved` registers survive calls; the others are given only to groups that
//! contain no call (the machine-value code of a numeric loop).

use super::liveness::{self, block_positions, normalise, Facts, Ranges};
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


/// Allocates `func`'s registers to `num_regs` general registers (the first `callee_saved` of
/// which survive calls), `num_xmm` SSE registers for float values (none survives a call) and
/// stack slots.
pub fn allocate(func: &Func, num_regs: u8, callee_saved: u8, num_xmm: u8) -> Allocation {
    let facts = Facts::of(func);
    let depth = loop_depths(func);
    let ranges = liveness::live_ranges(func, &facts);
    let calls = call_positions(func, false);
    let strict_calls = call_positions(func, true);
    let is_float = |r: VReg| func.float_regs.get(r.index()).copied().unwrap_or(false);
    let general = Class { num_regs, callee_saved, make: Location::Reg, args_ok: false };
    let sse = Class { num_regs: num_xmm, callee_saved: 0, make: Location::Xmm, args_ok: true };
    let class_of = |r: VReg| if is_float(r) { &sse } else { &general };
    let needs = |rs: &Ranges, class: &Class| needs_callee_saved(rs, class, &calls, &strict_calls);
    let costs = spill_costs(func, &depth);
    let groups = coalesce(func, &facts, &depth, &ranges, &costs, |a, b| {
        // One class, and one answer to "does it live across a call": joining a value that
        // must survive a call to one that need not would take the second's cheap register.
        let (ca, cb) = (class_of(a.0), class_of(b.0));
        std::ptr::eq(ca, cb) && needs(a.1, ca) == needs(b.1, cb)
    });
    let partners = direct_partners(func, &facts);
    let rivals = edge_rivals(func, &facts);
    let mut locations = vec![None; func.nregs as usize];
    let mut spill_slots = 0;
    let (floats, others): (Vec<Group>, Vec<Group>) = groups.into_iter().partition(|g| is_float(g.members[0]));
    for (class, groups) in [(&general, others), (&sse, floats)] {
        let groups = groups.into_iter().map(|g| {
            let needs = needs(&g.ranges, class);
            (g, needs)
        });
        linear_scan(&mut locations, &mut spill_slots, groups.collect(), class, &partners, &rivals);
    }
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

/// Values that share one location: their live ranges (joined) do not overlap.
#[derive(Debug, Clone)]
struct Group {
    /// Sorted; the first names the group in tie-breaks.
    members: Vec<VReg>,
    ranges: Ranges,
    /// The members' spill costs, summed.
    cost: u64,
}

/// Whether two live ranges share a position.
fn overlap(a: &[(u32, u32)], b: &[(u32, u32)]) -> bool {
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        if a[i].1 < b[j].0 {
            i += 1;
        } else if b[j].1 < a[i].0 {
            j += 1;
        } else {
            return true;
        }
    }
    false
}

/// The positions of `a` and `b` together, sorted and merged.
fn join(a: &[(u32, u32)], b: &[(u32, u32)]) -> Ranges {
    let mut all: Ranges = a.iter().chain(b).copied().collect();
    all.sort_unstable();
    normalise(all)
}

/// Whether a value with live range `ranges` needs a register that survives calls: a call
/// inside it, or (unless the class's `args_ok`) a call reading it. General registers used as
/// arguments are excluded too (loading the argument registers could overwrite them); an SSE
/// register is read into an argument register before the call, so one that dies at the call
/// is fine.
fn needs_callee_saved(ranges: &Ranges, class: &Class, calls: &[u32], strict_calls: &[u32]) -> bool {
    let inside = |calls: &[u32], (s, e): (u32, u32), args_ok: bool| {
        let i = calls.partition_point(|&p| p < s);
        if args_ok {
            calls.get(i).is_some_and(|&p| p < e)
        } else {
            calls.get(i).is_some_and(|&p| p <= e + 1)
        }
    };
    ranges.iter().any(|&r| inside(calls, r, true) || (!class.args_ok && inside(strict_calls, r, false)))
}

/// Coalescing: groups values joined by an edge (parameter and argument) or a two-address
/// operation (result and overwritten operand) when their ranges are disjoint and
/// `compatible(a, b)` (a register and its range, each group's first) allows. Joins in loops
/// are tried first (more of them run), then in program order.
fn coalesce(
    func: &Func,
    facts: &Facts,
    depth: &[u32],
    ranges: &[Ranges],
    costs: &[u64],
    compatible: impl Fn((VReg, &Ranges), (VReg, &Ranges)) -> bool,
) -> Vec<Group> {
    let n = func.nregs as usize;
    // (weight, order, a, b)
    let mut joins: Vec<(u32, usize, VReg, VReg)> = Vec::new();
    for (b, block) in func.blocks.iter().enumerate() {
        for t in block.term.targets() {
            for (p, a) in func.blocks[t.block].params.iter().zip(&t.args) {
                if !facts.is_const(*a) {
                    joins.push((depth[b], joins.len(), *p, *a));
                }
            }
        }
        for (dst, src) in block_copy_hints(facts, block) {
            joins.push((depth[b], joins.len(), dst, src));
        }
    }
    joins.sort_by_key(|&(w, order, ..)| (std::cmp::Reverse(w), order));
    // Union-find: the root of a group holds its ranges.
    let mut parent: Vec<usize> = (0..n).collect();
    let mut group_ranges: Vec<Ranges> = ranges.to_vec();
    fn find(parent: &mut [usize], r: usize) -> usize {
        let mut root = r;
        while parent[root] != root {
            root = parent[root];
        }
        let mut x = r;
        while parent[x] != root {
            let next = parent[x];
            parent[x] = root;
            x = next;
        }
        root
    }
    for (_, _, a, b) in joins {
        if a.index() >= n || b.index() >= n || ranges[a.index()].is_empty() || ranges[b.index()].is_empty() {
            continue;
        }
        let (ra, rb) = (find(&mut parent, a.index()), find(&mut parent, b.index()));
        if ra == rb || overlap(&group_ranges[ra], &group_ranges[rb]) {
            continue;
        }
        if !compatible((VReg(ra as u32), &group_ranges[ra]), (VReg(rb as u32), &group_ranges[rb])) {
            continue;
        }
        let joined = join(&group_ranges[ra], &group_ranges[rb]);
        group_ranges[rb] = Vec::new();
        group_ranges[ra] = joined;
        parent[rb] = ra;
    }
    let mut groups: std::collections::BTreeMap<usize, Group> = std::collections::BTreeMap::new();
    for r in 0..n {
        if ranges[r].is_empty() {
            continue;
        }
        let root = find(&mut parent, r);
        let g = groups.entry(root).or_insert_with(|| Group { members: Vec::new(), ranges: Vec::new(), cost: 0 });
        g.members.push(VReg(r as u32));
        g.cost = g.cost.saturating_add(costs.get(r).copied().unwrap_or(0));
    }
    groups
        .into_iter()
        .map(|(root, mut g)| {
            g.ranges = std::mem::take(&mut group_ranges[root]);
            g
        })
        .collect()
}

/// For each register, the values it would like to share a location with (when they could not
/// be coalesced into one group): the parameters it is passed to and the arguments passed to it
/// along edges, and copy hints (`block_copy_hints`). Only direct partners: taking the register of a
/// value further along a chain of edges (another parameter of the same loop header) would turn
/// one move on the back-edge into a cycle of moves.
fn direct_partners(func: &Func, facts: &Facts) -> crate::hashing::HashMap<VReg, Vec<VReg>> {
    let mut partners: crate::hashing::HashMap<VReg, Vec<VReg>> = crate::hashing::HashMap::default();
    let mut pair = |a: VReg, b: VReg| {
        partners.entry(a).or_default().push(b);
        partners.entry(b).or_default().push(a);
    };
    for block in &func.blocks {
        for t in block.term.targets() {
            for (p, a) in func.blocks[t.block].params.iter().zip(&t.args) {
                if !facts.is_const(*a) {
                    pair(*p, *a);
                }
            }
        }
    }
    for (dst, src) in func.blocks.iter().flat_map(|b| block_copy_hints(facts, b)) {
        pair(dst, src);
    }
    partners
}

/// For each edge argument, the other parameters of the block it is passed to: in another's
/// register, the argument would be overwritten by the edge's own moves before it is read,
/// which makes the moves a cycle (one more move through a scratch register).
fn edge_rivals(func: &Func, facts: &Facts) -> crate::hashing::HashMap<VReg, Vec<VReg>> {
    let mut rivals: crate::hashing::HashMap<VReg, Vec<VReg>> = crate::hashing::HashMap::default();
    for block in &func.blocks {
        for t in block.term.targets() {
            let params = &func.blocks[t.block].params;
            for (i, a) in t.args.iter().enumerate() {
                if !facts.is_const(*a) {
                    let others = params.iter().enumerate().filter(|&(j, _)| j != i).map(|(_, p)| *p);
                    rivals.entry(*a).or_default().extend(others);
                }
            }
        }
    }
    rivals
}

/// How many loops contain each block.
fn loop_depths(func: &Func) -> Vec<u32> {
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
    depth
}

/// What keeping each register in memory would cost: its definition and uses in the code
/// (not in exits, which are cold), each weighing 8 per loop around it. A value only exits
/// read costs nothing to spill; one a loop reads costs the most.
fn spill_costs(func: &Func, depth: &[u32]) -> Vec<u64> {
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

/// Results of a block that would like their operand's register, where the operand dies at
/// the instruction: a copy, and the two-address operations of the backend (`dst = a op b` is
/// `dst = a; dst op= b`), whose move then disappears.
fn block_copy_hints(facts: &Facts, block: &super::Block) -> Vec<(VReg, VReg)> {
    use super::Inst;
    let mut hints = Vec::new();
    for inst in &block.insts {
        // `+` and `*` of floats are computed in either operand's register (the backend swaps
        // them when the result shares b's): b is the second choice, when a lives on.
        if let Inst::FloatArith { op: crate::hir::FloatOp::Add | crate::hir::FloatOp::Mul, dst, a, b, .. } = inst {
            if a != b && !facts.is_const(*a) && !facts.is_const(*b) {
                hints.push((*dst, *a));
                hints.push((*dst, *b));
                continue;
            }
        }
        let pair = match inst {
            Inst::Move { dst, src: Src::Reg(s) } => Some((*dst, *s)),
            Inst::FloatArith { dst, a, .. } => Some((*dst, *a)),
            // A constant first operand of a commutative operator becomes the backend's
            // immediate (`3 * x`): the other operand is the one overwritten.
            Inst::IntArith { op, dst, a, b: Src::Reg(b), .. }
                if facts.is_const(*a)
                    && matches!(op, crate::hir::IntOp::Add | crate::hir::IntOp::Mul | crate::hir::IntOp::And | crate::hir::IntOp::Or | crate::hir::IntOp::Xor) =>
            {
                Some((*dst, *b))
            }
            Inst::IntArith { dst, a, .. } => Some((*dst, *a)),
            Inst::FloatNeg { dst, src } => Some((*dst, *src)),
            _ => None,
        };
        if let Some((d, s)) = pair {
            if !facts.is_const(s) {
                hints.push((d, s));
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

/// The operand of `dst = a ± imm` with an overflow exit: if the result takes a's register,
/// the backend undoes the operation (wrapping: exact) before it leaves, so the exit finds `a`
/// there without `a` outliving the instruction.
pub fn undoable_operand(inst: &super::Inst) -> Option<VReg> {
    match inst {
        super::Inst::IntArith { op: crate::hir::IntOp::Add | crate::hir::IntOp::Sub, a, b: Src::Imm(i), exit: Some(_), .. }
            if i32::try_from(*i).is_ok() =>
        {
            Some(*a)
        }
        _ => None,
    }
}

/// The ranges held by one machine register: `(start, end, group)`, sorted and disjoint.
type Occupancy = Vec<(u32, u32, usize)>;

/// The groups (by index) in `occ` that overlap `ranges`.
fn conflicts(occ: &Occupancy, ranges: &Ranges) -> Vec<usize> {
    let mut found = Vec::new();
    for &(s, e) in ranges {
        // The first held range that does not end before `s`.
        let mut i = occ.partition_point(|&(_, oe, _)| oe < s);
        while let Some(&(os, _, g)) = occ.get(i) {
            if os > e {
                break;
            }
            if !found.contains(&g) {
                found.push(g);
            }
            i += 1;
        }
    }
    found
}

/// Linear scan of one register class over its groups (each with whether it needs a
/// callee-saved register).
fn linear_scan(
    locations: &mut [Option<Location>],
    spill_slots: &mut u32,
    mut groups: Vec<(Group, bool)>,
    class: &Class,
    partners: &crate::hashing::HashMap<VReg, Vec<VReg>>,
    rivals: &crate::hashing::HashMap<VReg, Vec<VReg>>,
) {
    groups.sort_by_key(|(g, _)| (g.ranges[0].0, g.members[0]));
    let mut occupied: Vec<Occupancy> = vec![Vec::new(); class.num_regs as usize];
    let mut assigned: Vec<Option<u8>> = vec![None; groups.len()];
    let mut spilled: Vec<bool> = vec![false; groups.len()];
    let register = |l: Option<Location>| match l {
        Some(Location::Reg(r) | Location::Xmm(r)) => Some(r),
        _ => None,
    };
    let take = |occ: &mut Occupancy, ranges: &Ranges, g: usize| {
        occ.extend(ranges.iter().map(|&(s, e)| (s, e, g)));
        occ.sort_unstable();
    };
    for gi in 0..groups.len() {
        let (group, needs) = (&groups[gi].0, groups[gi].1);
        let usable = |r: u8| !needs || r < class.callee_saved;
        let free = |r: u8| usable(r) && conflicts(&occupied[r as usize], &group.ranges).is_empty();
        // The register of a value it is passed along an edge with or copied from (not joined
        // to the group: their ranges overlap somewhere), if free.
        let hinted = group
            .members
            .iter()
            .filter_map(|m| partners.get(m))
            .flatten()
            .filter_map(|p| register(locations[p.index()]))
            .find(|&r| free(r));
        // Registers better avoided: those of the parameters an edge passes a member to
        // besides its own (see `edge_rivals`).
        let rival: Vec<u8> =
            group.members.iter().filter_map(|m| rivals.get(m)).flatten().filter_map(|p| register(locations[p.index()])).collect();
        let good = |r: u8| free(r) && !rival.contains(&r);
        // Call-free groups take a caller-saved register when one is free, keeping the
        // callee-saved ones for the groups that need them.
        let preferred = (class.callee_saved..class.num_regs)
            .find(|&r| !needs && good(r))
            .or_else(|| (class.callee_saved..class.num_regs).find(|&r| !needs && free(r)));
        let any = || (0..class.num_regs).find(|&r| good(r)).or_else(|| (0..class.num_regs).find(|&r| free(r)));
        if let Some(r) = hinted.or(preferred).or_else(any) {
            take(&mut occupied[r as usize], &group.ranges, gi);
            assigned[gi] = Some(r);
            for m in &group.members {
                locations[m.index()] = Some((class.make)(r));
            }
            continue;
        }
        // No register: free the usable one whose groups in the way are cheapest to keep in
        // memory (then: end last), if that is cheaper than spilling this group.
        let end = |g: usize| groups[g].0.ranges.last().map_or(0, |r| r.1);
        let victim = (0..class.num_regs)
            .filter(|&r| usable(r))
            .map(|r| {
                let in_way = conflicts(&occupied[r as usize], &group.ranges);
                let cost = in_way.iter().map(|&g| groups[g].0.cost).fold(0u64, u64::saturating_add);
                let last = in_way.iter().map(|&g| end(g)).max().unwrap_or(0);
                (cost, std::cmp::Reverse(last), r, in_way)
            })
            .min_by(|a, b| (a.0, a.1, a.2).cmp(&(b.0, b.1, b.2)));
        let own = (group.cost, std::cmp::Reverse(end(gi)));
        match victim {
            Some((cost, last, r, in_way)) if (cost, last) < own => {
                let occ = &mut occupied[r as usize];
                occ.retain(|&(_, _, g)| !in_way.contains(&g));
                for g in in_way {
                    assigned[g] = None;
                    spilled[g] = true;
                }
                take(occ, &group.ranges, gi);
                assigned[gi] = Some(r);
                for m in &group.members {
                    locations[m.index()] = Some((class.make)(r));
                }
            }
            _ => spilled[gi] = true,
        }
    }
    for (gi, (group, _)) in groups.iter().enumerate() {
        if spilled[gi] {
            for m in &group.members {
                locations[m.index()] = Some(Location::Stack(*spill_slots));
            }
            *spill_slots += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lir::test_support::{block, to};
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
            redo_from: None,
        };
        let func = Func { name: "t".into(), blocks: vec![block], exits: vec![exit], nregs: 8, nlocalsplus: 8, float_regs: vec![], constants: Default::default(), derived: Default::default() };
        let alloc = allocate(&func, 2, 2, 0);
        let in_regs = alloc.locations.iter().filter(|l| matches!(l, Some(Location::Reg(_)))).count();
        assert_eq!(in_regs, 2);
        assert_eq!(alloc.spill_slots, 6);
        // No two values share a location.
        let mut seen = crate::hashing::HashSet::default();
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
        let func = Func { name: "t".into(), blocks, exits: vec![], nregs: 3, nlocalsplus: 0, float_regs: vec![], constants: Default::default(), derived: Default::default() };
        let alloc = allocate(&func, 4, 4, 0);
        // %1 is live from L1 to the return in L2, overlapping %2: they must differ.
        assert_ne!(alloc.of(VReg(1)), alloc.of(VReg(2)));
    }

    fn func(blocks: Vec<Block>, nregs: u32) -> Func {
        Func { name: "t".into(), blocks, exits: vec![], nregs, nlocalsplus: 0, float_regs: vec![], constants: Default::default(), derived: Default::default() }
    }


    #[test]
    fn values_of_both_sides_of_a_branch_share_the_join_parameter() {
        // L0: %0 = 1; branch %0, L1, L2   L1: %1 = 2; jump L3(%1)   L2: %2 = 3; jump L3(%2)
        // L3(%3): return %3. Neither side's value lives where the other's does: one location,
        // no moves on either edge.
        let blocks = vec![
            block(vec![], vec![mov(0, 1)], Term::Branch { cond: VReg(0), if_true: to(1, vec![]), if_false: to(2, vec![]) }),
            block(vec![], vec![mov(1, 2)], Term::Jump(to(3, vec![1]))),
            block(vec![], vec![mov(2, 3)], Term::Jump(to(3, vec![2]))),
            block(vec![3], vec![], Term::Return(VReg(3))),
        ];
        let alloc = allocate(&func(blocks, 4), 4, 4, 0);
        assert_eq!(alloc.of(VReg(1)), alloc.of(VReg(3)));
        assert_eq!(alloc.of(VReg(2)), alloc.of(VReg(3)));
    }

    #[test]
    fn a_loop_variable_and_its_next_value_share_a_register() {
        // L0: %0 = 0; jump L1(%0)   L1(%1): %2 = %1 + 1; %3 = %2 < 10; branch %3, L1(%2), L2
        // L2: return %2. %1 dies at the add: %2 takes its register, the back-edge has no move.
        let add = Inst::IntArith { op: crate::hir::IntOp::Add, dst: VReg(2), a: VReg(1), b: Src::Imm(1), exit: None };
        let cmp = Inst::Compare { op: crate::hir::CompareOp::Lt, float: false, dst: VReg(3), a: VReg(2), b: VReg(4) };
        let blocks = vec![
            block(vec![], vec![mov(0, 0), mov(4, 10)], Term::Jump(to(1, vec![0]))),
            block(vec![1], vec![add, cmp], Term::Branch { cond: VReg(3), if_true: to(1, vec![2]), if_false: to(2, vec![]) }),
            block(vec![], vec![], Term::Return(VReg(2))),
        ];
        let alloc = allocate(&func(blocks, 5), 4, 4, 0);
        assert_eq!(alloc.of(VReg(1)), alloc.of(VReg(2)));
        assert_eq!(alloc.of(VReg(0)), alloc.of(VReg(1)));
        assert!(matches!(alloc.of(VReg(2)), Location::Reg(_)));
    }

    #[test]
    fn a_register_is_reused_in_a_live_range_hole() {
        // One register. %0 is live in L1 and L3 but not in L2 (a branch that does not read
        // it and leaves): %1, used only in L2, fits in %0's hole without a spill.
        let blocks = vec![
            block(vec![], vec![mov(0, 5)], Term::Jump(to(1, vec![]))),
            block(vec![], vec![], Term::Branch { cond: VReg(0), if_true: to(3, vec![]), if_false: to(2, vec![]) }),
            block(vec![], vec![mov(1, 7)], Term::Return(VReg(1))),
            block(vec![], vec![], Term::Return(VReg(0))),
        ];
        let alloc = allocate(&func(blocks, 2), 1, 1, 0);
        assert_eq!(alloc.spill_slots, 0);
        assert_eq!(alloc.of(VReg(0)), alloc.of(VReg(1)));
    }

    #[test]
    fn an_undoable_add_may_overwrite_its_operand_read_by_its_exit() {
        // %1 = %0 + 1 or exit 0, where exit 0 reads %0 (and %0 is dead after): the backend
        // undoes the add before leaving, so %1 may take %0's register.
        let add = Inst::IntArith { op: crate::hir::IntOp::Add, dst: VReg(1), a: VReg(0), b: Src::Imm(1), exit: Some(0) };
        let blocks = vec![block(vec![], vec![mov(0, 3), add], Term::Return(VReg(1)))];
        let exit = crate::lir::Exit {
            kind: crate::hir::ExitKind::Resume,
            offset: 0,
            prelude: None,
            release: vec![],
            stack: vec![(VReg(0), None)],
            locals: vec![],
            deopt_index: None,
            range_positions: vec![],
            range_iters: vec![],
            borrowed: vec![],
            numpy: vec![],
            bool_lists: Default::default(),
            redo_from: None,
        };
        let mut f = func(blocks, 2);
        f.exits = vec![exit];
        let alloc = allocate(&f, 2, 2, 0);
        assert_eq!(alloc.of(VReg(0)), alloc.of(VReg(1)));
    }
}

#[cfg(test)]
mod loop_tests {
    use super::*;
    use crate::lir::test_support::{block, to};
    use crate::hir::{CompareOp, IntOp};
    use crate::lir::{Inst, Src};


    fn add(dst: u32, a: u32, b: u32) -> Inst {
        Inst::IntArith { op: IntOp::Add, dst: VReg(dst), a: VReg(a), b: Src::Reg(VReg(b)), exit: None }
    }

    /// L0: %0..%4 = loads; jump L1(%5 = 0)
    /// L1(%6): %7 = %6 < %2; branch %7, L2, L3
    /// L2: %8 = %6 + %3; %9 = %8 + %4; %10 = %9 + 1; jump L1(%10)
    /// L3: %11 = %0 + %1; %12 = %11 + %6; return %12
    /// %0 and %1 live across the loop without being read in it; %2, %3, %4 and the loop
    /// variable are read in every iteration.
    fn loop_with_bystanders() -> Func {
        let load = |d: u32, off: u32| Inst::LoadFrame { dst: VReg(d), offset: off };
        let blocks = vec![
            block(
                vec![],
                vec![load(0, 0), load(1, 8), load(2, 16), load(3, 24), load(4, 32), Inst::Move { dst: VReg(5), src: Src::Imm(0) }],
                Term::Jump(to(1, vec![5])),
            ),
            block(
                vec![6],
                vec![Inst::Compare { op: CompareOp::Lt, float: false, dst: VReg(7), a: VReg(6), b: VReg(2) }],
                Term::Branch { cond: VReg(7), if_true: to(2, vec![]), if_false: to(3, vec![]) },
            ),
            block(
                vec![],
                vec![add(8, 6, 3), add(9, 8, 4), Inst::IntArith { op: IntOp::Add, dst: VReg(10), a: VReg(9), b: Src::Imm(1), exit: None }],
                Term::Jump(to(1, vec![10])),
            ),
            block(vec![], vec![add(11, 0, 1), add(12, 11, 6)], Term::Return(VReg(12))),
        ];
        let mut f = Func { name: "t".into(), blocks, exits: vec![], nregs: 13, nlocalsplus: 0, float_regs: vec![false; 13], constants: Default::default(), derived: Default::default() };
        f.constants.insert(VReg(5), 0);
        f
    }

    #[test]
    fn values_read_in_a_loop_keep_registers_over_values_that_only_cross_it() {
        // Five registers; in the loop five values are live at once at most (%2, %3, %4, the
        // loop variable, the comparison): they get them, and %0 and %1, read only after the
        // loop, are the ones in memory.
        let alloc = allocate(&loop_with_bystanders(), 5, 5, 0);
        for r in [2, 3, 4, 6] {
            assert!(matches!(alloc.of(VReg(r)), Location::Reg(_)), "%{r} spilled: {:?}", alloc.locations);
        }
        assert!(matches!(alloc.of(VReg(0)), Location::Stack(_)));
        assert!(matches!(alloc.of(VReg(1)), Location::Stack(_)));
    }

    #[test]
    fn a_call_free_function_uses_the_caller_saved_registers() {
        // Seven registers of which four survive calls: nothing calls, so all seven hold
        // values and nothing is spilled.
        let alloc = allocate(&loop_with_bystanders(), 7, 4, 0);
        assert_eq!(alloc.spill_slots, 0, "{:?}", alloc.locations);
        assert!(alloc.locations.iter().any(|l| matches!(l, Some(Location::Reg(i)) if *i >= 4)));
    }

    #[test]
    fn a_float_sum_takes_the_register_of_whichever_operand_dies() {
        // %2 = %0 + %1 where %0 is read again later and %1 is not: the sum shares %1's SSE
        // register (the backend computes %1 += %0 in place), not the first free one (%7's, which
        // died just before); %4 = %0 * %3 likewise.
        let float = |op, dst: u32, a: u32, b: u32| Inst::FloatArith { op, dst: VReg(dst), a: VReg(a), b: VReg(b), exit: None };
        let load = |d: u32, off: u32| Inst::LoadFrame { dst: VReg(d), offset: off };
        let blocks = vec![block(
            vec![],
            vec![
                load(7, 24),
                load(0, 0),
                load(1, 8),
                Inst::StoreFrame { offset: 40, src: Src::Reg(VReg(7)) },
                float(crate::hir::FloatOp::Add, 2, 0, 1),
                load(3, 16),
                float(crate::hir::FloatOp::Mul, 4, 0, 3),
                float(crate::hir::FloatOp::Sub, 5, 0, 2),
                float(crate::hir::FloatOp::Sub, 6, 5, 4),
            ],
            Term::Return(VReg(6)),
        )];
        let f = Func { name: "t".into(), blocks, exits: vec![], nregs: 8, nlocalsplus: 0, float_regs: vec![true; 8], constants: Default::default(), derived: Default::default() };
        let alloc = allocate(&f, 4, 4, 8);
        assert_eq!(alloc.of(VReg(2)), alloc.of(VReg(1)), "{:?}", alloc.locations);
        assert_eq!(alloc.of(VReg(4)), alloc.of(VReg(3)), "{:?}", alloc.locations);
        assert!(matches!(alloc.of(VReg(2)), Location::Xmm(_)));
    }
}
