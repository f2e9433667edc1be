//! Builders for the LIR passes' unit tests.

use super::{Block, Inst, Target, Term, VReg};

/// A block with parameters `%params`.
pub fn block(params: Vec<u32>, insts: Vec<Inst>, term: Term) -> Block {
    Block { params: params.into_iter().map(VReg).collect(), insts, term, end_at: 0 }
}

/// A jump target passing `%args`.
pub fn to(block: usize, args: Vec<u32>) -> Target {
    Target { block, args: args.into_iter().map(VReg).collect() }
}
