//! Dominance between blocks: the immediate-dominator tree of the blocks reachable from the
//! entry (Cooper, Harvey and Kennedy's iterative algorithm over reverse postorder), numbered
//! by a walk of the tree so that "does a dominate b" is two comparisons.
//!
//! A block the entry does not reach is dominated by every block (there is no path to it, so
//! every path to it passes everywhere); it dominates no reachable block.

use super::{BlockId, Function};

/// Which blocks dominate which.
pub struct Dominators {
    /// Per block: entry and exit numbers of its subtree in the dominator tree (None when the
    /// block is unreachable).
    span: Vec<Option<(u32, u32)>>,
}

impl Dominators {
    pub fn of(func: &Function) -> Dominators {
        let n = func.blocks.len();
        let succs = |b: usize| func.blocks[b].terminator.edges().into_iter().map(|e| e.target.index()).filter(move |&t| t < n);
        // Reverse postorder of the reachable blocks (iterative depth-first walk).
        let mut postorder: Vec<usize> = Vec::with_capacity(n);
        let mut visited = vec![false; n];
        if n > 0 {
            let mut stack: Vec<(usize, Vec<usize>)> = vec![(0, succs(0).collect())];
            visited[0] = true;
            while let Some((b, pending)) = stack.last_mut() {
                if let Some(t) = pending.pop() {
                    if !visited[t] {
                        visited[t] = true;
                        let next: Vec<usize> = succs(t).collect();
                        stack.push((t, next));
                    }
                } else {
                    postorder.push(*b);
                    stack.pop();
                }
            }
        }
        const NONE: usize = usize::MAX;
        let mut order = vec![NONE; n]; // postorder number
        for (i, &b) in postorder.iter().enumerate() {
            order[b] = i;
        }
        let mut preds: Vec<Vec<usize>> = vec![Vec::new(); n];
        for &b in &postorder {
            for t in succs(b) {
                preds[t].push(b);
            }
        }
        let mut idom = vec![NONE; n];
        if n > 0 {
            idom[0] = 0;
        }
        let intersect = |idom: &[usize], mut a: usize, mut b: usize| {
            while a != b {
                while order[a] < order[b] {
                    a = idom[a];
                }
                while order[b] < order[a] {
                    b = idom[b];
                }
            }
            a
        };
        let mut changed = true;
        while changed {
            changed = false;
            for &b in postorder.iter().rev().filter(|&&b| b != 0) {
                let mut new = NONE;
                for &p in &preds[b] {
                    if idom[p] != NONE {
                        new = if new == NONE { p } else { intersect(&idom, p, new) };
                    }
                }
                if new != idom[b] {
                    idom[b] = new;
                    changed = true;
                }
            }
        }
        // Number the tree: a block's span holds the spans of the blocks it dominates.
        let mut children: Vec<Vec<usize>> = vec![Vec::new(); n];
        for &b in &postorder {
            if b != 0 && idom[b] != NONE {
                children[idom[b]].push(b);
            }
        }
        let mut span = vec![None; n];
        if n > 0 {
            let mut clock = 0u32;
            let mut stack: Vec<(usize, usize)> = vec![(0, 0)];
            let mut enter = vec![0u32; n];
            enter[0] = clock;
            while let Some((b, next_child)) = stack.last_mut() {
                if let Some(&c) = children[*b].get(*next_child) {
                    *next_child += 1;
                    clock += 1;
                    enter[c] = clock;
                    stack.push((c, 0));
                } else {
                    span[*b] = Some((enter[*b], clock));
                    stack.pop();
                }
            }
        }
        Dominators { span }
    }

    /// Whether every path from the entry to `b` passes through `a` (a block dominates itself).
    /// Panics if either is not a block of the function (a compiler bug).
    pub fn dominates(&self, a: BlockId, b: BlockId) -> bool {
        match (self.span[a.index()], self.span[b.index()]) {
            (Some((a_in, a_out)), Some((b_in, _))) => a_in <= b_in && b_in <= a_out,
            (_, None) => true,
            (None, Some(_)) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hir::{Block, Edge, Terminator, ValueId};

    fn function(succs: &[Vec<usize>]) -> Function {
        let edge = |t: usize| Edge { target: BlockId(t as u32), args: Vec::new() };
        let blocks = succs
            .iter()
            .map(|s| Block {
                params: Vec::new(),
                instrs: Vec::new(),
                terminator: match s[..] {
                    [] => Terminator::Return(ValueId(0)),
                    [t] => Terminator::Jump(edge(t)),
                    [t, f, ..] => Terminator::Branch { cond: ValueId(0), if_true: edge(t), if_false: edge(f) },
                },
                offset: 0,
                end_at: 0,
                locals_in: Vec::new(),
            })
            .collect();
        Function {
            name: "f".into(),
            blocks,
            values: Vec::new(),
            exits: Vec::new(),
            nlocalsplus: 0,
            bound_flags: Default::default(),
            numpy_boxes: Default::default(),
            loop_entries: Vec::new(),
        }
    }

    /// Blocks reachable from the entry without passing `avoid`.
    fn reachable_avoiding(succs: &[Vec<usize>], avoid: Option<usize>) -> Vec<bool> {
        let mut seen = vec![false; succs.len()];
        let mut work = if avoid == Some(0) { vec![] } else { vec![0] };
        while let Some(b) = work.pop() {
            if !std::mem::replace(&mut seen[b], true) {
                work.extend(succs[b].iter().copied().filter(|&t| Some(t) != avoid));
            }
        }
        seen
    }

    #[test]
    fn dominance_matches_its_definition_on_random_graphs() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = |m: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % m as u64) as usize
        };
        for _ in 0..500 {
            let n = 1 + next(12);
            let succs: Vec<Vec<usize>> = (0..n).map(|_| (0..next(3)).map(|_| next(n)).collect()).collect();
            let dom = Dominators::of(&function(&succs));
            let reachable = reachable_avoiding(&succs, None);
            for a in 0..n {
                let without_a = reachable_avoiding(&succs, Some(a));
                for b in 0..n {
                    // `a` dominates `b` when `b` cannot be reached without passing `a`.
                    let expected = !reachable[b] || a == b || !without_a[b];
                    assert_eq!(dom.dominates(BlockId(a as u32), BlockId(b as u32)), expected, "{succs:?}: {a} dom {b}");
                }
            }
        }
    }
}
