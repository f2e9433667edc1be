//! Bytecode -> HIR, by abstract interpretation of the value stack.
//!
//! Each reachable basic block is translated once, from the abstract frame state (locals and
//! stack as SSA values) it is entered with. Every block but the entry gets one parameter per
//! local and stack slot; `prune_params` then removes the parameters whose incoming values all
//! agree, which leaves SSA form. Reference counting mirrors the interpreter operation by
//! operation (see the module doc of `hir`), so the frame state at each instruction is exactly
//! the set of references the function owns.
//!
//! Exception handlers are not translated: an exception raised in compiled code leaves through a
//! `Raise` exit and the interpreter unwinds, runs `except`/`finally` and continues the call.

use crate::hashing::HashMap;
use std::collections::VecDeque;
use std::fmt;

use super::{
    BinaryOp, Block, BlockId, CompareOp, Edge, Exit, ExitId, ExitKind, FrameState, Function, Instr, Op, Terminator,
    Type, UnaryOp, ValueId,
};
use crate::bytecode::{op, Bytecode, Instr as BcInstr};

/// What the builder needs to know about the code object besides its bytecode.
#[derive(Debug, Clone)]
pub struct CodeFacts {
    /// `co_qualname`.
    pub name: String,
    /// `co_nlocalsplus`: locals, cells and free variables.
    pub nlocalsplus: u32,
    /// How many leading local slots hold arguments when the frame starts: `co_argcount +
    /// co_kwonlyargcount`, plus one each for `*args` and `**kwargs`.
    pub nargs: u32,
    /// Record a `Deopt` exit (the frame before the instruction) on each instruction the
    /// specialiser may replace.
    pub deopt_states: bool,
}

/// Why a function is left to the interpreter: the first construct the compiler does not
/// handle, by opcode and source line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsupported {
    /// The opcode's CPython name.
    pub opcode: &'static str,
    /// Bytecode offset in bytes (as `dis` prints it).
    pub offset: u32,
    pub line: Option<u32>,
    pub why: &'static str,
}

impl fmt::Display for Unsupported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at offset {}", self.opcode, self.offset)?;
        if let Some(line) = self.line {
            write!(f, " (line {line})")?;
        }
        write!(f, ": {}", self.why)
    }
}

impl Unsupported {
    /// The source construct the opcode comes from, in the words a user knows it by (None when
    /// the opcode does not say).
    pub fn construct(&self) -> Option<&'static str> {
        let op = self.opcode;
        Some(match op {
            _ if op.starts_with("MATCH_") || op == "GET_LEN" => "a `match` statement",
            "RETURN_GENERATOR" | "YIELD_VALUE" | "SEND" | "GET_YIELD_FROM_ITER" => "a generator (`yield`)",
            "GET_AWAITABLE" | "BEFORE_ASYNC_WITH" | "GET_AITER" | "GET_ANEXT" | "END_ASYNC_FOR" | "ASYNC_GEN_WRAP" => {
                "async code (`await`, `async for`, `async with`)"
            }
            "IMPORT_NAME" | "IMPORT_FROM" | "IMPORT_STAR" => "an `import` inside the function",
            "LOAD_BUILD_CLASS" => "a `class` statement inside the function",
            "PUSH_EXC_INFO" | "POP_EXCEPT" | "CHECK_EXC_MATCH" | "RERAISE" | "WITH_EXCEPT_START" => {
                "exception handling (`except`, `finally`, or a `with` block's exit on an exception)"
            }
            "CHECK_EG_MATCH" | "PREP_RERAISE_STAR" => "an `except*` clause",
            "RAISE_VARARGS" => "a `raise` statement",
            "SETUP_ANNOTATIONS" => "variable annotations at module or class level",
            "LOAD_NAME" | "STORE_NAME" | "DELETE_NAME" | "LOAD_CLASSDEREF" => "names looked up in a dict (module or class body)",
            "DELETE_FAST" | "DELETE_DEREF" | "DELETE_GLOBAL" => "a `del` statement",
            "PRINT_EXPR" => "an interactive expression statement",
            _ => return None,
        })
    }
}

/// The most locals × instructions the builder takes on: each exit records every local slot, so
/// the IR grows with their product; past this, compiling costs more than it can win.
const MAX_LOCALS_TIMES_INSTRUCTIONS: usize = 4_000_000;

/// Translates a decoded code object to HIR.
pub fn build(facts: &CodeFacts, bytecode: &Bytecode) -> Result<Function, Unsupported> {
    if facts.nlocalsplus as usize * bytecode.instrs().len() > MAX_LOCALS_TIMES_INSTRUCTIONS {
        return Err(Unsupported {
            opcode: "<function>",
            offset: 0,
            line: None,
            why: "too large to compile (local variables times instructions over 4 million)",
        });
    }
    let mut builder = Builder::new(facts, bytecode);
    builder.run()?;
    let mut func = builder.finish();
    infer_param_types(&mut func);
    drop_proven_checks(&mut func);
    prune_params(&mut func);
    compact_exits(&mut func);
    Ok(func)
}

/// The abstract frame: which SSA value each local slot and stack slot holds.
#[derive(Debug, Clone)]
struct State {
    locals: Vec<ValueId>,
    stack: Vec<ValueId>,
}

struct Builder<'a> {
    facts: &'a CodeFacts,
    bytecode: &'a Bytecode,
    func: Function,
    /// The block that starts at each instruction index, once some edge reached it.
    block_at: HashMap<usize, BlockId>,
    /// Blocks to translate: (block, first instruction index, entry state).
    worklist: VecDeque<(BlockId, usize, State)>,
    /// The block being filled.
    current: BlockId,
    /// `KW_NAMES` seen for the next `CALL`.
    kwnames: Option<u32>,
    /// Code unit of the instruction being translated (`Instr::at`).
    at: u32,
}

impl<'a> Builder<'a> {
    fn new(facts: &'a CodeFacts, bytecode: &'a Bytecode) -> Builder<'a> {
        let func = Function {
            name: facts.name.clone(),
            blocks: Vec::new(),
            values: Vec::new(),
            exits: Vec::new(),
            nlocalsplus: facts.nlocalsplus,
            bound_flags: HashMap::default(),
            numpy_boxes: HashMap::default(),
            loop_entries: Vec::new(),
        };
        Builder {
            facts,
            bytecode,
            func,
            block_at: HashMap::default(),
            worklist: VecDeque::new(),
            current: BlockId(0),
            kwnames: None,
            at: 0,
        }
    }

    fn finish(self) -> Function {
        self.func
    }

    // ---- construction primitives ----

    fn new_value(&mut self, ty: Type) -> ValueId {
        self.func.values.push(ty);
        ValueId(self.func.values.len() as u32 - 1)
    }

    fn new_block(&mut self, offset: u32) -> BlockId {
        self.func.blocks.push(Block {
            params: Vec::new(),
            instrs: Vec::new(),
            // Replaced when the block is finished; an `Exit` placeholder would need an exit.
            terminator: Terminator::Return(ValueId(u32::MAX)),
            offset,
            end_at: offset,
            locals_in: Vec::new(),
        });
        BlockId(self.func.blocks.len() as u32 - 1)
    }

    fn emit_in(&mut self, block: BlockId, op: Op, exit: Option<ExitId>) -> Option<ValueId> {
        let result = op.result_type().map(|ty| self.new_value(ty));
        let at = self.at;
        self.func.blocks[block.index()].instrs.push(Instr { result, op, exit, at, deopt: None });
        result
    }

    /// Emits an operation with a result into the current block.
    fn emit(&mut self, op: Op, exit: Option<ExitId>) -> ValueId {
        let block = self.current;
        self.emit_in(block, op, exit).expect("operation has a result")
    }

    /// Emits an operation without a result into the current block.
    fn effect(&mut self, op: Op, exit: Option<ExitId>) {
        let block = self.current;
        let _ = self.emit_in(block, op, exit);
    }

    fn terminate(&mut self, block: BlockId, terminator: Terminator) {
        self.func.blocks[block.index()].end_at = self.at;
        self.func.blocks[block.index()].terminator = terminator;
    }

    fn exit(&mut self, kind: ExitKind, offset: u32, state: &State, release: Vec<ValueId>) -> ExitId {
        let release = release.into_iter().filter(|v| self.owns(*v)).collect();
        self.func.exits.push(Exit {
            kind,
            state: FrameState { offset, locals: state.locals.clone(), stack: state.stack.clone() },
            release,
            range_positions: Vec::new(),
            borrowed: Vec::new(),
            redo_from: None,
        });
        ExitId(self.func.exits.len() as u32 - 1)
    }

    /// An exit raising at `instr` with the frame in `state` (the operands the instruction
    /// consumed already popped) after releasing `release`.
    fn raise_exit(&mut self, instr: &BcInstr, state: &State, release: Vec<ValueId>) -> Option<ExitId> {
        Some(self.exit(ExitKind::Raise, instr.offset, state, release))
    }

    /// A `Deopt` exit resuming `instr` with the frame in `state` (its operands still on the
    /// stack), if the function is compiled for specialisation.
    fn deopt_exit(&mut self, instr: &BcInstr, state: &State) -> Option<ExitId> {
        // The interpreter redoes the instruction from its first EXTENDED_ARG prefix: entered at
        // the opcode itself, it would run with the argument's low byte only (a FOR_ITER
        // jumping over a long body would "exhaust" into the middle of it).
        self.facts.deopt_states.then(|| self.exit(ExitKind::Deopt, instr.start, state, vec![]))
    }

    /// Attaches a deopt exit to the instruction just emitted.
    fn set_deopt(&mut self, deopt: Option<ExitId>) {
        if let Some(last) = self.func.blocks[self.current.index()].instrs.last_mut() {
            last.deopt = deopt;
        }
    }

    /// Whether a value may hold a reference (NULL and machine values do not).
    fn owns(&self, v: ValueId) -> bool {
        self.func.type_of(v) != Type::Null && self.func.type_of(v) != Type::CBool
    }

    /// Releases a reference as the interpreter does when a slot is overwritten or popped.
    fn release(&mut self, v: ValueId) {
        match self.func.type_of(v) {
            Type::Object => self.effect(Op::Decref(v), None),
            Type::MaybeNull => self.effect(Op::XDecref(v), None),
            Type::Null | Type::CBool | Type::I64 | Type::F64 => {}
        }
    }

    /// The edge to the block starting at instruction `index`, entered with `state`: the
    /// block is made (with a parameter per slot) and queued the first time.
    fn edge_to(&mut self, index: usize, state: &State) -> Edge {
        let target = match self.block_at.get(&index) {
            Some(&block) => block,
            None => {
                let offset = self.bytecode.instrs()[index].start;
                let block = self.new_block(offset);
                let mut entry = State { locals: Vec::new(), stack: Vec::new() };
                for _ in 0..state.locals.len() {
                    let p = self.new_value(Type::MaybeNull);
                    entry.locals.push(p);
                }
                for _ in 0..state.stack.len() {
                    let p = self.new_value(Type::MaybeNull);
                    entry.stack.push(p);
                }
                self.func.blocks[block.index()].params = entry.locals.iter().chain(&entry.stack).copied().collect();
                self.block_at.insert(index, block);
                self.worklist.push_back((block, index, entry));
                block
            }
        };
        Edge { target, args: state.locals.iter().chain(&state.stack).copied().collect() }
    }

    /// A block of its own for the actions on one edge of a branch (its only predecessor is
    /// the branching block, so it may use that block's values).
    fn edge_block(&mut self, offset: u32, actions: impl FnOnce(&mut Self), then_index: usize, state: &State) -> Edge {
        let block = self.new_block(offset);
        self.func.blocks[block.index()].locals_in = state.locals.clone();
        let saved = std::mem::replace(&mut self.current, block);
        actions(self);
        let edge = self.edge_to(then_index, state);
        self.terminate(block, Terminator::Jump(edge));
        self.current = saved;
        Edge { target: block, args: Vec::new() }
    }

    fn index_of_target(&self, instr: &BcInstr, target: Option<u32>) -> Result<usize, Unsupported> {
        target
            .and_then(|t| self.bytecode.index_of(t))
            .ok_or_else(|| self.unsupported(instr, "jump target is not an instruction"))
    }

    fn unsupported(&self, instr: &BcInstr, why: &'static str) -> Unsupported {
        Unsupported { opcode: instr.name(), offset: instr.offset * 2, line: instr.line, why }
    }

    // ---- the walk ----

    fn run(&mut self) -> Result<(), Unsupported> {
        let entry = self.new_block(0);
        self.current = entry;
        let mut state = State { locals: Vec::new(), stack: Vec::new() };
        for local in 0..self.facts.nlocalsplus {
            let v = if local < self.facts.nargs { self.emit(Op::LoadArg { local }, None) } else { self.emit(Op::Null, None) };
            state.locals.push(v);
        }
        if self.bytecode.instrs().is_empty() {
            return Err(Unsupported { opcode: "<none>", offset: 0, line: None, why: "empty bytecode" });
        }
        self.func.blocks[entry.index()].locals_in = state.locals.clone();
        let edge = self.edge_to(0, &state);
        self.terminate(entry, Terminator::Jump(edge));
        while let Some((block, index, state)) = self.worklist.pop_front() {
            self.current = block;
            self.func.blocks[block.index()].locals_in = state.locals.clone();
            self.translate_block(index, state)?;
        }
        Ok(())
    }

    /// Translates instructions from `index` until the block ends.
    fn translate_block(&mut self, mut index: usize, mut state: State) -> Result<(), Unsupported> {
        const PAST_END: Unsupported =
            Unsupported { opcode: "<end>", offset: 0, line: None, why: "execution runs past the end of the bytecode" };
        loop {
            let instr = *self.bytecode.instrs().get(index).ok_or(PAST_END)?;
            match self.translate(&instr, index, &mut state)? {
                Flow::Next => {
                    index += 1;
                    if self.bytecode.is_block_start(index) {
                        let edge = self.edge_to(index, &state);
                        let current = self.current;
                        self.terminate(current, Terminator::Jump(edge));
                        return Ok(());
                    }
                }
                Flow::Ended => return Ok(()),
            }
        }
    }

    fn pop(&mut self, instr: &BcInstr, state: &mut State) -> Result<ValueId, Unsupported> {
        state.stack.pop().ok_or_else(|| self.unsupported(instr, "value stack underflow"))
    }

    fn pop_n(&mut self, instr: &BcInstr, state: &mut State, n: usize) -> Result<Vec<ValueId>, Unsupported> {
        if state.stack.len() < n {
            return Err(self.unsupported(instr, "value stack underflow"));
        }
        Ok(state.stack.split_off(state.stack.len() - n))
    }

    fn local(&self, instr: &BcInstr, state: &State) -> Result<usize, Unsupported> {
        let i = instr.arg as usize;
        if i < state.locals.len() {
            Ok(i)
        } else {
            Err(self.unsupported(instr, "local index out of range"))
        }
    }

    /// The value of local `i`, checked to be bound (UnboundLocalError otherwise) unless it is
    /// known to be; the local then holds the checked value, known bound from here on.
    fn bound_local(&mut self, instr: &BcInstr, state: &mut State, i: usize) -> ValueId {
        let v = state.locals[i];
        if self.func.type_of(v) == Type::Object {
            return v;
        }
        let exit = self.raise_exit(instr, state, vec![]);
        let checked = self.emit(Op::CheckBound { value: v, local: i as u32 }, exit);
        state.locals[i] = checked;
        checked
    }

    /// What the interpreter does after every call: serve the eval breaker (a signal handler a
    /// C function made pending raises right there, with the result pushed), and notice a
    /// tracer the callee installed (continue interpreted, so every following line is traced).
    fn after_call(&mut self, instr: &BcInstr, state: &State) {
        // The interpreter has moved past the call's inline caches when it checks.
        let raise = self.exit(ExitKind::Raise, instr.next_offset() - 1, state, vec![]);
        let resume = self.exit(ExitKind::Resume, instr.next_offset(), state, vec![]);
        self.effect(Op::CheckEvalBreaker { resume, leave: false }, Some(raise));
        let resume = self.exit(ExitKind::Resume, instr.next_offset(), state, vec![]);
        self.effect(Op::CheckTracing, Some(resume));
    }

    /// An operation on the two values on top of the stack that replaces them with its result,
    /// releasing them after it (on failure too, as the interpreter does).
    fn binary(
        &mut self,
        instr: &BcInstr,
        state: &mut State,
        make: impl FnOnce(ValueId, ValueId) -> Op,
    ) -> Result<(), Unsupported> {
        let deopt = self.deopt_exit(instr, state);
        let second = self.pop(instr, state)?;
        let first = self.pop(instr, state)?;
        let exit = self.raise_exit(instr, state, vec![first, second]);
        let v = self.emit(make(first, second), exit);
        self.set_deopt(deopt);
        self.release(first);
        self.release(second);
        state.stack.push(v);
        Ok(())
    }

    /// Sets local `i` to `value` (in the frame too) and releases the old value, in the
    /// interpreter's order.
    fn set_local(&mut self, state: &mut State, i: usize, value: ValueId) {
        self.effect(Op::StoreLocal { local: i as u32, value }, None);
        let old = std::mem::replace(&mut state.locals[i], value);
        self.release(old);
    }

    /// Ends the current block with a conditional branch on a machine bool.
    fn branch(&mut self, cond: ValueId, if_true: Edge, if_false: Edge) {
        let current = self.current;
        self.terminate(current, Terminator::Branch { cond, if_true, if_false });
    }

    /// `POP_JUMP_*_IF_*`: the popped value decides; `jump_when` is the outcome that jumps.
    fn pop_jump(
        &mut self,
        instr: &BcInstr,
        index: usize,
        state: &mut State,
        test: Test,
        jump_when: bool,
    ) -> Result<Flow, Unsupported> {
        let v = self.pop(instr, state)?;
        let cond = match test {
            Test::Truth => {
                // As the interpreter: Py_True/Py_False are tested by identity inside IsTrue's
                // lowering; anything else calls PyObject_IsTrue, which can raise.
                let exit = self.raise_exit(instr, state, vec![v]);
                self.emit(Op::IsTrue(v), exit)
            }
            Test::None => self.emit(Op::IsNone(v), None),
        };
        self.release(v);
        let target = self.index_of_target(instr, self.bytecode.jump_target(instr))?;
        let backward = target <= index;
        let jump_edge = if backward {
            // Backward conditional jumps check the eval breaker, as JUMP_BACKWARD does.
            let exit = self.raise_exit(instr, state, vec![]);
            let resume_at = self.bytecode.instrs()[target].start;
            let resume = self.exit(ExitKind::Resume, resume_at, state, vec![]);
            let st = state.clone();
            self.edge_block(instr.offset, |b| b.effect(Op::CheckEvalBreaker { resume, leave: false }, exit), target, &st)
        } else {
            self.edge_to(target, state)
        };
        let next = self.edge_to(index + 1, state);
        if jump_when {
            self.branch(cond, jump_edge, next);
        } else {
            self.branch(cond, next, jump_edge);
        }
        Ok(Flow::Ended)
    }

    /// Translates one instruction.
    fn translate(&mut self, instr: &BcInstr, index: usize, state: &mut State) -> Result<Flow, Unsupported> {
        let opcode = instr.opcode;
        self.at = instr.offset;
        match opcode {
            op::NOP | op::PRECALL => {}
            op::RESUME => {
                // As the interpreter at a function's start (oparg 0; 1 is after a yield): serve
                // the eval breaker, so pending calls (e.g. a signal handler's deferred report)
                // run before the first line.
                if instr.arg < 2 {
                    let exit = self.raise_exit(instr, state, vec![]);
                    let resume = self.exit(ExitKind::Resume, instr.start, state, vec![]);
                    self.effect(Op::CheckEvalBreaker { resume, leave: false }, exit);
                }
            }
            op::POP_TOP => {
                let v = self.pop(instr, state)?;
                self.release(v);
            }
            op::PUSH_NULL => {
                let v = self.emit(Op::Null, None);
                state.stack.push(v);
            }
            op::COPY => {
                let n = instr.arg as usize;
                if n == 0 || n > state.stack.len() {
                    return Err(self.unsupported(instr, "COPY past the stack"));
                }
                let v = state.stack[state.stack.len() - n];
                if self.owns(v) {
                    self.effect(Op::Incref(v), None);
                }
                state.stack.push(v);
            }
            op::SWAP => {
                let n = instr.arg as usize;
                let len = state.stack.len();
                if n == 0 || n > len {
                    return Err(self.unsupported(instr, "SWAP past the stack"));
                }
                state.stack.swap(len - 1, len - n);
            }
            op::LOAD_CONST => {
                let v = self.emit(Op::Const { index: instr.arg }, None);
                self.effect(Op::Incref(v), None);
                state.stack.push(v);
            }
            op::LOAD_FAST => {
                let i = self.local(instr, state)?;
                let v = self.bound_local(instr, state, i);
                if self.owns(v) {
                    self.effect(Op::Incref(v), None);
                }
                state.stack.push(v);
            }
            op::STORE_FAST => {
                let i = self.local(instr, state)?;
                let v = self.pop(instr, state)?;
                self.set_local(state, i, v);
            }
            op::DELETE_FAST => {
                let i = self.local(instr, state)?;
                self.bound_local(instr, state, i);
                let null = self.emit(Op::Null, None);
                self.set_local(state, i, null);
            }
            op::LOAD_GLOBAL => {
                // As the interpreter, the NULL of `NULL + name` is pushed only on success.
                let exit = self.raise_exit(instr, state, vec![]);
                let v = self.emit(Op::LoadGlobal { name: instr.arg >> 1 }, exit);
                if instr.arg & 1 == 1 {
                    let null = self.emit(Op::Null, None);
                    state.stack.push(null);
                }
                state.stack.push(v);
            }
            op::LOAD_ATTR | op::LOAD_METHOD => {
                let obj = self.pop(instr, state)?;
                let exit = self.raise_exit(instr, state, vec![obj]);
                let v = self.emit(Op::LoadAttr { obj, name: instr.arg }, exit);
                self.release(obj);
                if opcode == op::LOAD_METHOD {
                    // The generic form of LOAD_METHOD: NULL, then the bound attribute, which
                    // CALL treats as a plain callable (same result, one bound-method object).
                    let null = self.emit(Op::Null, None);
                    state.stack.push(null);
                }
                state.stack.push(v);
            }
            op::DELETE_ATTR => {
                let obj = self.pop(instr, state)?;
                let exit = self.raise_exit(instr, state, vec![obj]);
                self.effect(Op::DelAttr { obj, name: instr.arg }, exit);
                self.release(obj);
            }
            op::STORE_GLOBAL => {
                let value = self.pop(instr, state)?;
                let exit = self.raise_exit(instr, state, vec![value]);
                self.effect(Op::StoreGlobal { name: instr.arg, value }, exit);
                self.release(value);
            }
            op::STORE_ATTR => {
                let obj = self.pop(instr, state)?;
                let value = self.pop(instr, state)?;
                let exit = self.raise_exit(instr, state, vec![value, obj]);
                self.effect(Op::StoreAttr { obj, name: instr.arg, value }, exit);
                self.release(value);
                self.release(obj);
            }
            op::BINARY_OP => {
                let binop = BinaryOp::from_oparg(instr.arg).ok_or_else(|| self.unsupported(instr, "unknown operator"))?;
                self.binary(instr, state, |lhs, rhs| Op::Binary { op: binop, lhs, rhs })?;
            }
            op::UNARY_POSITIVE | op::UNARY_NEGATIVE | op::UNARY_INVERT | op::UNARY_NOT => {
                let deopt = self.deopt_exit(instr, state);
                let value = self.pop(instr, state)?;
                let exit = self.raise_exit(instr, state, vec![value]);
                let operation = match opcode {
                    op::UNARY_POSITIVE => Op::Unary { op: UnaryOp::Positive, value },
                    op::UNARY_NEGATIVE => Op::Unary { op: UnaryOp::Negative, value },
                    op::UNARY_INVERT => Op::Unary { op: UnaryOp::Invert, value },
                    _ => Op::Not(value),
                };
                let v = self.emit(operation, exit);
                self.set_deopt(deopt);
                self.release(value);
                state.stack.push(v);
            }
            op::COMPARE_OP => {
                let cmp = CompareOp::from_oparg(instr.arg).ok_or_else(|| self.unsupported(instr, "unknown comparison"))?;
                self.binary(instr, state, |lhs, rhs| Op::Compare { op: cmp, lhs, rhs })?;
            }
            op::IS_OP => {
                let rhs = self.pop(instr, state)?;
                let lhs = self.pop(instr, state)?;
                let v = self.emit(Op::Is { lhs, rhs, negate: instr.arg == 1 }, None);
                self.release(lhs);
                self.release(rhs);
                state.stack.push(v);
            }
            op::CONTAINS_OP => {
                let negate = instr.arg == 1;
                self.binary(instr, state, |item, container| Op::Contains { item, container, negate })?;
            }
            op::BINARY_SUBSCR => self.binary(instr, state, |obj, key| Op::GetItem { obj, key })?,
            op::STORE_SUBSCR => {
                let deopt = self.deopt_exit(instr, state);
                let key = self.pop(instr, state)?;
                let obj = self.pop(instr, state)?;
                let value = self.pop(instr, state)?;
                let exit = self.raise_exit(instr, state, vec![value, obj, key]);
                self.effect(Op::SetItem { obj, key, value }, exit);
                self.set_deopt(deopt);
                self.release(value);
                self.release(obj);
                self.release(key);
            }
            op::DELETE_SUBSCR => {
                let key = self.pop(instr, state)?;
                let obj = self.pop(instr, state)?;
                let exit = self.raise_exit(instr, state, vec![obj, key]);
                self.effect(Op::DelItem { obj, key }, exit);
                self.release(obj);
                self.release(key);
            }
            op::BUILD_TUPLE | op::BUILD_LIST => {
                let items = self.pop_n(instr, state, instr.arg as usize)?;
                let exit = self.raise_exit(instr, state, items.clone());
                let v = if opcode == op::BUILD_TUPLE {
                    self.emit(Op::BuildTuple(items), exit)
                } else {
                    self.emit(Op::BuildList(items), exit)
                };
                state.stack.push(v);
            }
            op::BUILD_SLICE => {
                let step = if instr.arg == 3 { self.pop(instr, state)? } else { self.emit(Op::Null, None) };
                let stop = self.pop(instr, state)?;
                let start = self.pop(instr, state)?;
                let exit = self.raise_exit(instr, state, vec![start, stop, step]);
                let v = self.emit(Op::BuildSlice { start, stop, step }, exit);
                for x in [start, stop, step] {
                    self.release(x);
                }
                state.stack.push(v);
            }
            op::UNPACK_SEQUENCE | op::UNPACK_EX => {
                let value = self.pop(instr, state)?;
                let exit = self.raise_exit(instr, state, vec![value]);
                let (operation, count) = if opcode == op::UNPACK_SEQUENCE {
                    (Op::UnpackSequence { value, count: instr.arg }, instr.arg)
                } else {
                    let (before, after) = (instr.arg & 0xFF, instr.arg >> 8);
                    (Op::UnpackEx { value, before, after }, before + 1 + after)
                };
                let items = self.emit(operation, exit);
                self.release(value);
                // The first item ends on top of the stack.
                for index in (0..count).rev() {
                    let item = self.emit(Op::TupleItem { tuple: items, index }, None);
                    state.stack.push(item);
                }
                self.release(items);
            }
            op::MAKE_CELL => {
                let i = self.local(instr, state)?;
                let initial = state.locals[i];
                let exit = self.raise_exit(instr, state, vec![]);
                let cell = self.emit(Op::MakeCell(initial), exit);
                self.set_local(state, i, cell);
            }
            op::COPY_FREE_VARS => {
                let n = instr.arg as usize;
                let first = state.locals.len().checked_sub(n).ok_or_else(|| self.unsupported(instr, "bad free variable count"))?;
                for index in 0..n {
                    let cell = self.emit(Op::LoadClosure { index: index as u32 }, None);
                    self.set_local(state, first + index, cell);
                }
            }
            op::LOAD_CLOSURE => {
                let i = self.local(instr, state)?;
                let v = self.bound_local(instr, state, i);
                self.effect(Op::Incref(v), None);
                state.stack.push(v);
            }
            op::LOAD_DEREF | op::DELETE_DEREF => {
                let i = self.local(instr, state)?;
                let cell = state.locals[i];
                // MAKE_CELL/COPY_FREE_VARS fill the slot at the start of the function and
                // nothing empties it (DELETE_DEREF empties the cell, not the slot).
                if self.func.type_of(cell) == Type::Null {
                    return Err(self.unsupported(instr, "cell variable without a cell"));
                }
                let exit = self.raise_exit(instr, state, vec![]);
                let v = self.emit(Op::CellGet { cell, slot: i as u32 }, exit);
                if opcode == op::LOAD_DEREF {
                    state.stack.push(v);
                } else {
                    let null = self.emit(Op::Null, None);
                    self.effect(Op::CellSet { cell, value: null }, None);
                    self.release(v);
                }
            }
            op::STORE_DEREF => {
                let i = self.local(instr, state)?;
                let cell = state.locals[i];
                // MAKE_CELL/COPY_FREE_VARS fill the slot at the start of the function and
                // nothing empties it (DELETE_DEREF empties the cell, not the slot).
                if self.func.type_of(cell) == Type::Null {
                    return Err(self.unsupported(instr, "cell variable without a cell"));
                }
                let v = self.pop(instr, state)?;
                self.effect(Op::CellSet { cell, value: v }, None);
                self.release(v);
            }
            op::MAKE_FUNCTION => {
                let code = self.pop(instr, state)?;
                // On failure the interpreter has released the code object only.
                let exit = self.raise_exit(instr, state, vec![code]);
                let take = |b: &mut Self, state: &mut State, bit: u32| -> Result<ValueId, Unsupported> {
                    if instr.arg & bit != 0 {
                        b.pop(instr, state)
                    } else {
                        Ok(b.emit(Op::Null, None))
                    }
                };
                let closure = take(self, state, 0x08)?;
                let annotations = take(self, state, 0x04)?;
                let kwdefaults = take(self, state, 0x02)?;
                let defaults = take(self, state, 0x01)?;
                let f = self.emit(Op::MakeFunction { code, closure, annotations, kwdefaults, defaults }, exit);
                for v in [code, closure, annotations, kwdefaults, defaults] {
                    self.release(v);
                }
                state.stack.push(f);
            }
            op::FORMAT_VALUE => {
                let spec = if instr.arg & 0x04 != 0 { self.pop(instr, state)? } else { self.emit(Op::Null, None) };
                let value = self.pop(instr, state)?;
                let exit = self.raise_exit(instr, state, vec![value, spec]);
                let v = self.emit(Op::FormatValue { value, conversion: instr.arg & 0x03, spec }, exit);
                self.release(value);
                self.release(spec);
                state.stack.push(v);
            }
            op::BUILD_STRING | op::BUILD_MAP | op::BUILD_SET => {
                let n = if opcode == op::BUILD_MAP { 2 * instr.arg as usize } else { instr.arg as usize };
                if n > state.stack.len() {
                    return Err(self.unsupported(instr, "value stack underflow"));
                }
                // As the interpreter: on failure the items are still on the stack.
                let exit = self.raise_exit(instr, state, vec![]);
                let items = self.pop_n(instr, state, n)?;
                let operation = match opcode {
                    op::BUILD_STRING => Op::BuildString(items.clone()),
                    op::BUILD_MAP => Op::BuildMap(items.clone()),
                    _ => Op::BuildSet(items.clone()),
                };
                let v = self.emit(operation, exit);
                for item in items {
                    self.release(item);
                }
                state.stack.push(v);
            }
            op::BUILD_CONST_KEY_MAP => {
                if instr.arg as usize + 1 > state.stack.len() {
                    return Err(self.unsupported(instr, "value stack underflow"));
                }
                let exit = self.raise_exit(instr, state, vec![]);
                let keys = self.pop(instr, state)?;
                let values = self.pop_n(instr, state, instr.arg as usize)?;
                let v = self.emit(Op::BuildConstKeyMap { keys, values: values.clone() }, exit);
                self.release(keys);
                for item in values {
                    self.release(item);
                }
                state.stack.push(v);
            }
            op::MAP_ADD | op::SET_ADD | op::LIST_EXTEND | op::DICT_UPDATE | op::SET_UPDATE => {
                let (key, value) = if opcode == op::MAP_ADD {
                    let value = self.pop(instr, state)?;
                    (Some(self.pop(instr, state)?), value)
                } else {
                    (None, self.pop(instr, state)?)
                };
                let depth = instr.arg as usize;
                if depth == 0 || depth > state.stack.len() {
                    return Err(self.unsupported(instr, "container past the stack"));
                }
                let container = state.stack[state.stack.len() - depth];
                let consumed: Vec<ValueId> = key.into_iter().chain([value]).collect();
                let exit = self.raise_exit(instr, state, consumed.clone());
                let operation = match (opcode, key) {
                    (op::MAP_ADD, Some(key)) => Op::MapAdd { dict: container, key, value },
                    (op::SET_ADD, _) => Op::SetAdd { set: container, value },
                    (op::DICT_UPDATE, _) => Op::DictUpdate { dict: container, update: value },
                    (op::SET_UPDATE, _) => Op::SetUpdate { set: container, iterable: value },
                    _ => Op::ListExtend { list: container, iterable: value },
                };
                self.effect(operation, exit);
                for c in consumed {
                    self.release(c);
                }
            }
            op::DICT_MERGE => {
                let update = self.pop(instr, state)?;
                let depth = instr.arg as usize;
                if depth == 0 || depth + 2 > state.stack.len() {
                    return Err(self.unsupported(instr, "DICT_MERGE past the stack"));
                }
                let dict = state.stack[state.stack.len() - depth];
                let func = state.stack[state.stack.len() - depth - 2];
                let exit = self.raise_exit(instr, state, vec![update]);
                self.effect(Op::DictMerge { dict, update, func }, exit);
                self.release(update);
            }
            op::LIST_TO_TUPLE => {
                let list = self.pop(instr, state)?;
                let exit = self.raise_exit(instr, state, vec![list]);
                let v = self.emit(Op::ListToTuple(list), exit);
                self.release(list);
                state.stack.push(v);
            }
            op::CALL_FUNCTION_EX => {
                let kwargs = if instr.arg & 0x01 != 0 { self.pop(instr, state)? } else { self.emit(Op::Null, None) };
                let args = self.pop(instr, state)?;
                let callable = self.pop(instr, state)?;
                let null = self.pop(instr, state)?;
                if self.func.type_of(null) != Type::Null {
                    return Err(self.unsupported(instr, "CALL_FUNCTION_EX without its NULL"));
                }
                let exit = self.raise_exit(instr, state, vec![callable, args, kwargs]);
                let v = self.emit(Op::CallEx { callable, args, kwargs }, exit);
                for c in [callable, args, kwargs] {
                    self.release(c);
                }
                state.stack.push(v);
                self.after_call(instr, state);
            }
            op::BEFORE_WITH => {
                let manager = self.pop(instr, state)?;
                let exit = self.raise_exit(instr, state, vec![manager]);
                let pair = self.emit(Op::BeforeWith(manager), exit);
                self.release(manager);
                for index in 0..2 {
                    let item = self.emit(Op::TupleItem { tuple: pair, index }, None);
                    state.stack.push(item);
                }
                self.release(pair);
            }
            op::LIST_APPEND => {
                let value = self.pop(instr, state)?;
                let depth = instr.arg as usize;
                if depth == 0 || depth > state.stack.len() {
                    return Err(self.unsupported(instr, "LIST_APPEND past the stack"));
                }
                let list = state.stack[state.stack.len() - depth];
                let exit = self.raise_exit(instr, state, vec![value]);
                self.effect(Op::ListAppend { list, value }, exit);
            }
            op::GET_ITER => {
                // (The specialiser guards an array before iterating it: `for x in a`.)
                let deopt = self.deopt_exit(instr, state);
                let v = self.pop(instr, state)?;
                let exit = self.raise_exit(instr, state, vec![v]);
                let it = self.emit(Op::GetIter(v), exit);
                self.set_deopt(deopt);
                self.release(v);
                state.stack.push(it);
            }
            op::FOR_ITER => {
                let iter = *state.stack.last().ok_or_else(|| self.unsupported(instr, "value stack underflow"))?;
                // An error other than StopIteration unwinds with the iterator still on the stack.
                let exit = self.raise_exit(instr, state, vec![]);
                let deopt = self.deopt_exit(instr, state);
                let next = self.emit(Op::IterNext(iter), exit);
                self.set_deopt(deopt);
                let done = self.emit(Op::IsNull(next), None);
                let exit_index = self.index_of_target(instr, self.bytecode.for_iter_exit(instr))?;
                let mut after = state.clone();
                after.stack.pop();
                let exhausted = self.edge_block(instr.offset, |b| b.release(iter), exit_index, &after);
                let body_block = self.new_block(instr.offset);
                self.func.blocks[body_block.index()].locals_in = state.locals.clone();
                let saved = std::mem::replace(&mut self.current, body_block);
                let item = self.emit(Op::NonNull(next), None);
                let mut body = state.clone();
                body.stack.push(item);
                let edge = self.edge_to(index + 1, &body);
                self.terminate(body_block, Terminator::Jump(edge));
                self.current = saved;
                let more = Edge { target: body_block, args: Vec::new() };
                self.branch(done, exhausted, more);
                return Ok(Flow::Ended);
            }
            op::JUMP_FORWARD | op::JUMP_BACKWARD | op::JUMP_BACKWARD_NO_INTERRUPT => {
                let target = self.index_of_target(instr, self.bytecode.jump_target(instr))?;
                if opcode == op::JUMP_BACKWARD {
                    // Signals (Ctrl-C) and GIL hand-offs are served on every loop back-edge.
                    let exit = self.raise_exit(instr, state, vec![]);
                    let resume = self.exit(ExitKind::Resume, instr.start, state, vec![]);
                    self.effect(Op::CheckEvalBreaker { resume, leave: false }, exit);
                }
                let edge = self.edge_to(target, state);
                let current = self.current;
                self.terminate(current, Terminator::Jump(edge));
                return Ok(Flow::Ended);
            }
            op::POP_JUMP_FORWARD_IF_FALSE | op::POP_JUMP_BACKWARD_IF_FALSE => {
                return self.pop_jump(instr, index, state, Test::Truth, false);
            }
            op::POP_JUMP_FORWARD_IF_TRUE | op::POP_JUMP_BACKWARD_IF_TRUE => {
                return self.pop_jump(instr, index, state, Test::Truth, true);
            }
            op::POP_JUMP_FORWARD_IF_NONE | op::POP_JUMP_BACKWARD_IF_NONE => {
                return self.pop_jump(instr, index, state, Test::None, true);
            }
            op::POP_JUMP_FORWARD_IF_NOT_NONE | op::POP_JUMP_BACKWARD_IF_NOT_NONE => {
                return self.pop_jump(instr, index, state, Test::None, false);
            }
            op::JUMP_IF_FALSE_OR_POP | op::JUMP_IF_TRUE_OR_POP => {
                let v = *state.stack.last().ok_or_else(|| self.unsupported(instr, "value stack underflow"))?;
                // On error the value stays on the stack (the interpreter pops only on success).
                let exit = self.raise_exit(instr, state, vec![]);
                let truth = self.emit(Op::IsTrue(v), exit);
                let target = self.index_of_target(instr, self.bytecode.jump_target(instr))?;
                let jump = self.edge_to(target, state);
                let mut popped = state.clone();
                popped.stack.pop();
                let go_on = self.edge_block(instr.offset, |b| b.release(v), index + 1, &popped);
                if opcode == op::JUMP_IF_TRUE_OR_POP {
                    self.branch(truth, jump, go_on);
                } else {
                    self.branch(truth, go_on, jump);
                }
                return Ok(Flow::Ended);
            }
            op::KW_NAMES => self.kwnames = Some(instr.arg),
            op::CALL => {
                // Before the call (callable and arguments on the stack): where an inlined
                // callee hands its work back to the interpreter.
                let deopt = self.deopt_exit(instr, state);
                let argc = instr.arg as usize;
                let args = self.pop_n(instr, state, argc)?;
                // CALL's stack: [NULL, callable, args...] or [method, self, args...]; which one
                // may only be known once block parameters have their types (see lowering).
                let callable = self.pop(instr, state)?;
                let method = self.pop(instr, state)?;
                let kwnames = self.kwnames.take();
                let consumed: Vec<ValueId> = [method, callable].into_iter().chain(args.iter().copied()).collect();
                let exit = self.raise_exit(instr, state, consumed.clone());
                let v = self.emit(Op::Call { method, callable, args, kwnames }, exit);
                self.set_deopt(deopt);
                for c in consumed {
                    self.release(c);
                }
                state.stack.push(v);
                self.after_call(instr, state);
            }
            op::RETURN_VALUE => {
                let v = self.pop(instr, state)?;
                // As the interpreter, the locals are released when the caller clears the frame.
                for s in std::mem::take(&mut state.stack) {
                    self.release(s);
                }
                let current = self.current;
                self.terminate(current, Terminator::Return(v));
                return Ok(Flow::Ended);
            }
            // Rare and intricate: the interpreter executes these (and the rest of the call).
            op::RAISE_VARARGS | op::LOAD_ASSERTION_ERROR | op::IMPORT_NAME | op::IMPORT_FROM | op::IMPORT_STAR
            | op::PRINT_EXPR | op::SETUP_ANNOTATIONS | op::LOAD_BUILD_CLASS | op::RERAISE => {
                let exit = self.exit(ExitKind::Resume, instr.start, state, vec![]);
                let current = self.current;
                self.terminate(current, Terminator::Exit(exit));
                return Ok(Flow::Ended);
            }
            _ => return Err(self.unsupported(instr, "not supported by the compiler yet")),
        }
        if !instr.falls_through() {
            return Err(self.unsupported(instr, "control flow not handled"));
        }
        Ok(Flow::Next)
    }
}

/// What a translated instruction does to the block.
enum Flow {
    /// Continue with the next instruction.
    Next,
    /// The block has its terminator.
    Ended,
}

/// The test of a `POP_JUMP_*` instruction.
#[derive(Clone, Copy)]
enum Test {
    Truth,
    None,
}

/// Gives each block parameter the union of the types flowing into it (a fixpoint over loops).
fn infer_param_types(func: &mut Function) {
    // Parameters start unknown and only grow: this terminates.
    let mut param_types: HashMap<ValueId, Option<Type>> = HashMap::default();
    for block in &func.blocks {
        for &p in &block.params {
            param_types.insert(p, None);
        }
    }
    let type_now = |func: &Function, types: &HashMap<ValueId, Option<Type>>, v: ValueId| match types.get(&v) {
        Some(t) => *t,
        None => Some(func.type_of(v)),
    };
    loop {
        let mut changed = false;
        for block in &func.blocks {
            for edge in block.terminator.edges() {
                let target = &func.blocks[edge.target.index()];
                for (&param, &arg) in target.params.iter().zip(&edge.args) {
                    let Some(arg_type) = type_now(func, &param_types, arg) else { continue };
                    let current = param_types[&param];
                    let joined = match current {
                        None => arg_type,
                        Some(t) => t.union(arg_type),
                    };
                    if current != Some(joined) {
                        param_types.insert(param, Some(joined));
                        changed = true;
                    }
                }
            }
        }
        if !changed {
            break;
        }
    }
    for (param, ty) in param_types {
        // A parameter nothing flows into is in an unreachable block; keep it MaybeNull.
        func.values[param.index()] = ty.unwrap_or(Type::MaybeNull);
    }
}

/// Removes `CheckBound` of values proven bound (their uses take the value itself), and
/// simplifies `XDecref` of values whose NULL-ness is known.
fn drop_proven_checks(func: &mut Function) {
    let types = func.values.clone();
    let mut proven: HashMap<ValueId, ValueId> = HashMap::default();
    for block in &mut func.blocks {
        block.instrs.retain(|i| match (i.result, &i.op) {
            (Some(r), Op::CheckBound { value, .. }) if types[value.index()] == Type::Object => {
                proven.insert(r, *value);
                false
            }
            _ => true,
        });
        // An XDecref of a value proven NULL does nothing; of an object, it is a Decref.
        block.instrs.retain(|i| !matches!(i.op, Op::XDecref(v) if types[v.index()] == Type::Null));
        for instr in &mut block.instrs {
            if let Op::XDecref(v) = instr.op {
                if types[v.index()] == Type::Object {
                    instr.op = Op::Decref(v);
                }
            }
        }
    }
    if !proven.is_empty() {
        rewrite_uses(func, &|v| proven.get(&v).copied().unwrap_or(v));
    }
}

/// Drops exits no instruction or terminator refers to any more (their checks were proven
/// unnecessary) and renumbers the rest in order of use.
pub fn compact_exits(func: &mut Function) {
    let mut renumber: HashMap<ExitId, ExitId> = HashMap::default();
    let mut kept: Vec<Exit> = Vec::new();
    let exits = std::mem::take(&mut func.exits);
    let mut visit = |exit: &mut ExitId, kept: &mut Vec<Exit>| {
        let new = *renumber.entry(*exit).or_insert_with(|| {
            kept.push(exits[exit.index()].clone());
            ExitId(kept.len() as u32 - 1)
        });
        *exit = new;
    };
    for block in &mut func.blocks {
        for instr in &mut block.instrs {
            if let Some(exit) = &mut instr.exit {
                visit(exit, &mut kept);
            }
            if let Some(exit) = &mut instr.deopt {
                visit(exit, &mut kept);
            }
            if let Op::CheckEvalBreaker { resume, .. } = &mut instr.op {
                visit(resume, &mut kept);
            }
        }
        if let Terminator::Exit(exit) = &mut block.terminator {
            visit(exit, &mut kept);
        }
    }
    // The exits kept exits may leave through instead (`Exit::redo_from`; those have none).
    for k in 0..kept.len() {
        if let Some(mut r) = kept[k].redo_from {
            visit(&mut r, &mut kept);
            kept[k].redo_from = Some(r);
        }
    }
    func.exits = kept;
}

/// Removes block parameters whose incoming arguments are all one value (or the parameter
/// itself, around a loop), replacing the parameter by that value everywhere.
fn prune_params(func: &mut Function) {
    loop {
        // Per block, the argument lists of the edges entering it.
        let mut incoming: Vec<Vec<&[ValueId]>> = vec![Vec::new(); func.blocks.len()];
        for pred in &func.blocks {
            for edge in pred.terminator.edges() {
                incoming[edge.target.index()].push(&edge.args);
            }
        }
        // Per value: the value replacing it.
        let mut replace: Vec<Option<ValueId>> = vec![None; func.values.len()];
        let mut any = false;
        for (b, block) in func.blocks.iter().enumerate() {
            if b == Function::ENTRY.index() {
                continue;
            }
            for (pos, &param) in block.params.iter().enumerate() {
                let mut only: Option<ValueId> = None;
                let mut unique = true;
                for args in &incoming[b] {
                    let arg = args[pos];
                    if arg == param {
                        continue;
                    }
                    match only {
                        None => only = Some(arg),
                        Some(o) if o == arg => {}
                        Some(_) => unique = false,
                    }
                }
                if let (true, Some(value)) = (unique, only) {
                    replace[param.index()] = Some(value);
                    any = true;
                }
            }
        }
        drop(incoming);
        if !any {
            return;
        }
        let replaced = |v: &ValueId| replace.get(v.index()).copied().flatten().is_some();
        // Resolve chains (p1 -> p2 -> v) so every use is rewritten to a surviving value.
        let resolve = |mut v: ValueId| {
            while let Some(next) = replace.get(v.index()).copied().flatten() {
                if next == v {
                    break;
                }
                v = next;
            }
            v
        };
        for b in 0..func.blocks.len() {
            let removed: Vec<usize> =
                func.blocks[b].params.iter().enumerate().filter(|(_, p)| replaced(p)).map(|(i, _)| i).collect();
            if removed.is_empty() {
                continue;
            }
            func.blocks[b].params.retain(|p| !replaced(p));
            for pred in 0..func.blocks.len() {
                for edge in func.blocks[pred].terminator.edges_mut() {
                    if edge.target.index() == b {
                        let mut i = 0;
                        edge.args.retain(|_| {
                            i += 1;
                            !removed.contains(&(i - 1))
                        });
                    }
                }
            }
        }
        rewrite_uses(func, &resolve);
    }
}

/// Applies `map` to every use of a value: operands, edge arguments, terminators, exits.
pub fn rewrite_uses(func: &mut Function, map: &dyn Fn(ValueId) -> ValueId) {
    for block in &mut func.blocks {
        for instr in &mut block.instrs {
            rewrite_op(&mut instr.op, map);
        }
        match &mut block.terminator {
            Terminator::Branch { cond, .. } => *cond = map(*cond),
            Terminator::Return(v) => *v = map(*v),
            Terminator::Jump(_) | Terminator::Exit(_) => {}
        }
        for edge in block.terminator.edges_mut() {
            for a in &mut edge.args {
                *a = map(*a);
            }
        }
        for v in &mut block.locals_in {
            *v = map(*v);
        }
    }
    for exit in &mut func.exits {
        for v in exit.state.locals.iter_mut().chain(&mut exit.state.stack).chain(&mut exit.release) {
            *v = map(*v);
        }
        for (it, index) in &mut exit.range_positions {
            *it = map(*it);
            *index = map(*index);
        }
    }
}

fn rewrite_op(op: &mut Op, map: &dyn Fn(ValueId) -> ValueId) {
    for v in op.operands_mut() {
        *v = map(*v);
    }
}
