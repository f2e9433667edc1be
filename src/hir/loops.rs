//! Natural loops of a function's control-flow graph, for the passes that work on loops after
//! specialisation (`loop_params`, `fp_flags`).

use crate::hashing::HashSet;

use super::{BlockId, Edge, Function, Instr, Op, Terminator, Type, ValueId};

/// A natural loop: its header and every block that reaches one of its back-edges without
/// passing the header (loops sharing a header are one).
#[derive(Debug, Clone)]
pub struct Loop {
    pub header: BlockId,
    pub blocks: HashSet<BlockId>,
    /// Blocks in the loop jumping back to the header.
    pub latches: Vec<BlockId>,
    /// Blocks outside the loop jumping to the header.
    pub entries: Vec<BlockId>,
}

impl Loop {
    pub fn contains(&self, b: BlockId) -> bool {
        self.blocks.contains(&b)
    }

    /// The edges from the loop's blocks to blocks outside it: (block, edge index in
    /// `Terminator::edges`).
    pub fn leaving_edges(&self, func: &Function) -> Vec<(BlockId, usize)> {
        let mut out = Vec::new();
        let mut blocks: Vec<BlockId> = self.blocks.iter().copied().collect();
        blocks.sort();
        for b in blocks {
            for (k, edge) in func.block(b).terminator.edges().iter().enumerate() {
                if !self.contains(edge.target) {
                    out.push((b, k));
                }
            }
        }
        out
    }
}

/// The predecessors of every block (a block jumping twice to one target is listed twice).
pub fn predecessors(func: &Function) -> Vec<Vec<BlockId>> {
    let mut preds = vec![Vec::new(); func.blocks.len()];
    for id in func.block_ids() {
        for edge in func.block(id).terminator.edges() {
            preds[edge.target.index()].push(id);
        }
    }
    preds
}

/// The natural loops of `func`, outermost first (a loop before the loops nested in it).
pub fn natural_loops(func: &Function) -> Vec<Loop> {
    let dom = super::dominators::Dominators::of(func);
    let preds = predecessors(func);
    let reachable = reachable(func);
    let mut loops: Vec<Loop> = Vec::new();
    for h in func.block_ids() {
        if !reachable.contains(&h) {
            continue;
        }
        let latches: Vec<BlockId> =
            preds[h.index()].iter().copied().filter(|p| reachable.contains(p) && dom.dominates(h, *p)).collect();
        if latches.is_empty() {
            continue;
        }
        let mut blocks: HashSet<BlockId> = [h].into_iter().collect();
        let mut work = latches.clone();
        while let Some(b) = work.pop() {
            if blocks.insert(b) {
                work.extend(preds[b.index()].iter().copied().filter(|p| reachable.contains(p)));
            }
        }
        let entries = preds[h.index()].iter().copied().filter(|p| !blocks.contains(p)).collect();
        let mut latches = latches;
        latches.dedup();
        loops.push(Loop { header: h, blocks, latches, entries });
    }
    loops.sort_by_key(|l| std::cmp::Reverse(l.blocks.len()));
    loops
}

fn reachable(func: &Function) -> HashSet<BlockId> {
    let mut seen = HashSet::default();
    let mut work = vec![Function::ENTRY];
    while let Some(b) = work.pop() {
        if seen.insert(b) {
            work.extend(func.block(b).terminator.edges().iter().map(|e| e.target));
        }
    }
    seen
}

/// A new value of type `ty`.
pub fn new_value(func: &mut Function, ty: Type) -> ValueId {
    func.values.push(ty);
    ValueId(func.values.len() as u32 - 1)
}

/// A new block made of `instrs` and `terminator`, placed (for line numbers and dumps) at
/// block `like`'s start.
pub fn new_block(func: &mut Function, like: BlockId, params: Vec<ValueId>, instrs: Vec<Instr>, terminator: Terminator) -> BlockId {
    let model = func.block(like);
    let block = super::Block {
        params,
        instrs,
        terminator,
        offset: model.offset,
        end_at: model.offset,
        locals_in: model.locals_in.clone(),
    };
    func.blocks.push(block);
    BlockId(func.blocks.len() as u32 - 1)
}

/// An instruction without an exit.
pub fn instr(result: Option<ValueId>, op: Op, at: u32) -> Instr {
    Instr { result, op, exit: None, at, deopt: None }
}

/// A jump to `target` with `args`.
pub fn jump(target: BlockId, args: Vec<ValueId>) -> Terminator {
    Terminator::Jump(Edge { target, args })
}
