//! The HIR validator: structural invariants every pass must keep. Run between passes in debug
//! builds and in tests; a violation is a compiler bug, reported as text (never a panic here).

use crate::hashing::HashSet;

use super::{BlockId, Function, Op, Terminator, Type, ValueId};

/// Checks `func`; returns every violation found.
pub fn validate(func: &Function) -> Result<(), Vec<String>> {
    let mut errors = Vec::new();
    let defined = definitions(func, &mut errors);
    let dominators = super::dominators::Dominators::of(func);
    let def_block = definition_blocks(func);
    let check_use = |errors: &mut Vec<String>, at: BlockId, v: ValueId, what: &str| {
        if v.index() >= func.values.len() || !defined.contains(&v) {
            errors.push(format!("{at}: {what} uses undefined {v}"));
            return;
        }
        if let Some(&def) = def_block.get(&v) {
            if !dominators.dominates(def, at) {
                errors.push(format!("{at}: {what} uses {v}, defined in {def} which does not dominate it"));
            }
        }
    };
    for id in func.block_ids() {
        let block = func.block(id);
        let mut seen_here: HashSet<ValueId> = block.params.iter().copied().collect();
        for instr in &block.instrs {
            for v in instr.op.operands() {
                let local = def_block.get(&v) == Some(&id);
                if local && !seen_here.contains(&v) {
                    errors.push(format!("{id}: {v} used before its definition"));
                }
                check_use(&mut errors, id, v, "an instruction");
            }
            check_operand_types(func, id, &instr.op, &mut errors);
            if let Some(exit) = instr.exit {
                if exit.index() >= func.exits.len() {
                    errors.push(format!("{id}: reference to missing {exit}"));
                }
            }
            if let Some(r) = instr.result {
                seen_here.insert(r);
            }
        }
        for v in block.terminator.operands() {
            check_use(&mut errors, id, v, "the terminator");
        }
        if let Terminator::Branch { cond, .. } = block.terminator {
            if cond.index() < func.values.len() && func.type_of(cond) != Type::CBool {
                errors.push(format!("{id}: branch on {cond}, which is not a machine bool"));
            }
        }
        if let Terminator::Exit(exit) = block.terminator {
            if exit.index() >= func.exits.len() {
                errors.push(format!("{id}: reference to missing {exit}"));
            }
        }
        for edge in block.terminator.edges() {
            if edge.target.index() >= func.blocks.len() {
                errors.push(format!("{id}: jump to missing {}", edge.target));
                continue;
            }
            if edge.target == Function::ENTRY {
                errors.push(format!("{id}: jump to the entry block"));
            }
            let params = &func.block(edge.target).params;
            if params.len() != edge.args.len() {
                errors.push(format!(
                    "{id}: {} arguments for the {} parameters of {}",
                    edge.args.len(),
                    params.len(),
                    edge.target
                ));
            }
            for &a in &edge.args {
                check_use(&mut errors, id, a, "an edge");
            }
        }
    }
    for (i, exit) in func.exits.iter().enumerate() {
        if exit.state.locals.len() != func.nlocalsplus as usize {
            errors.push(format!("exit{i}: {} locals for {} slots", exit.state.locals.len(), func.nlocalsplus));
        }
        // Machine values (I64, F64 and CBool alike) may be in the frame: the exit boxes them.
        for &v in exit.state.locals.iter().chain(&exit.state.stack).chain(&exit.release) {
            if v.index() >= func.values.len() || !defined.contains(&v) {
                errors.push(format!("exit{i}: refers to undefined {v}"));
            }
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// Every defined value; reports values defined twice.
fn definitions(func: &Function, errors: &mut Vec<String>) -> HashSet<ValueId> {
    let mut defined = HashSet::default();
    for id in func.block_ids() {
        let block = func.block(id);
        let results = block.instrs.iter().filter_map(|i| i.result);
        for v in block.params.iter().copied().chain(results) {
            if !defined.insert(v) {
                errors.push(format!("{v} is defined more than once"));
            }
        }
    }
    defined
}

fn definition_blocks(func: &Function) -> crate::hashing::HashMap<ValueId, BlockId> {
    let mut map = crate::hashing::HashMap::default();
    for id in func.block_ids() {
        let block = func.block(id);
        for v in block.params.iter().copied().chain(block.instrs.iter().filter_map(|i| i.result)) {
            map.insert(v, id);
        }
    }
    map
}

/// Operand types the lowering relies on: reference counting only on objects.
fn check_operand_types(func: &Function, at: BlockId, op: &Op, errors: &mut Vec<String>) {
    let ty = |v: ValueId| func.values.get(v.index()).copied();
    match op {
        Op::Incref(v) | Op::Decref(v) if ty(*v) != Some(Type::Object) => {
            errors.push(format!("{at}: {op:?} on a value of type {:?}", ty(*v)));
        }
        Op::XDecref(v) if !matches!(ty(*v), Some(Type::Object | Type::MaybeNull)) => {
            errors.push(format!("{at}: {op:?} on a value of type {:?}", ty(*v)));
        }
        _ => {}
    }
}

