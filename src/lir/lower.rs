//! HIR -> LIR: picks the C function (C API or `runtime` helper) that implements each HIR
//! operation and the guard that checks its result, exactly as the interpreter checks it.

use pyo3_ffi as ffi;

use super::{Arg, Block, BoolListExit, Callee, ElementAddress, Exit, Func, Inst, Src, Target, Term, VReg};
use crate::cpython::shim::Layout;
use crate::hir::{self, ExitKind, FloatOp, Op, PyClass, Terminator, Type, UnaryOp};
use crate::runtime;

/// Addresses of the objects the code object owns, which compiled code embeds as constants
/// (the code object outlives its compiled code: the code is freed with it).
#[derive(Debug, Clone)]
pub struct CodeConstants {
    /// `co_consts[i]`.
    pub consts: Vec<i64>,
    /// `co_names[i]`.
    pub names: Vec<i64>,
    /// The code object itself.
    pub code: i64,
    /// One `GlobalCache` per `LoadGlobal` of the function, in HIR order (owned by the compiled
    /// code, so they live as long as it).
    pub global_caches: *mut crate::runtime::GlobalCache,
    /// One `AttrCache` per `LoadAttr`, likewise.
    pub attr_caches: *mut crate::runtime::AttrCache,
    /// The address of the code's direct entry (`hir::direct`), 0 for the direct entry itself.
    pub direct_entry: i64,
}

/// Declares a `Callee` for a C function.
macro_rules! callee {
    ($f:expr, $name:literal) => {
        Callee { name: $name, address: $f as *const () as usize, returns_int: false }
    };
    ($f:expr, $name:literal, int) => {
        Callee { name: $name, address: $f as *const () as usize, returns_int: true }
    };
}

/// Lowers a function. `layout` gives the frame's field offsets.
pub fn lower(func: &hir::Function, constants: &CodeConstants, layout: &Layout) -> Func {
    let mut lowerer =
        Lowerer {
            func,
            constants,
            layout,
            next_reg: func.values.len() as u32,
            exits: Vec::new(),
            global_sites: 0,
            attr_sites: 0,
            int_consts: func
                .blocks
                .iter()
                .flat_map(|b| &b.instrs)
                .filter_map(|i| match (&i.op, i.result) {
                    (Op::ConstI64 { value, .. }, Some(r)) => Some((r, *value)),
                    _ => None,
                })
                .collect(),
            const_origins: func
                .blocks
                .iter()
                .flat_map(|b| &b.instrs)
                .filter_map(|i| match (&i.op, i.result) {
                    (Op::ConstI64 { origin: Some(o), .. } | Op::ConstF64 { origin: Some(o), .. }, Some(r)) => Some((r, *o)),
                    _ => None,
                })
                .collect(),
            int_ops: func
                .blocks
                .iter()
                .flat_map(|b| &b.instrs)
                .filter_map(|i| match (&i.op, i.result) {
                    (Op::IntBinary { op, lhs, rhs }, Some(r)) if i.exit.is_none() => Some((r, (*op, *lhs, *rhs))),
                    _ => None,
                })
                .collect(),
            virtual_iters: func
                .blocks
                .iter()
                .flat_map(|b| &b.instrs)
                .filter_map(|i| match (&i.op, i.result) {
                    (Op::RangeIterVirtual { start, step, len }, Some(r)) => Some((r, [*start, *step, *len])),
                    _ => None,
                })
                .collect(),
            bool_lists: func
                .blocks
                .iter()
                .flat_map(|b| &b.instrs)
                .filter_map(|i| match (&i.op, i.result) {
                    (Op::BoolListNew { .. }, Some(r)) => Some((r, r)),
                    (Op::BoolListIter { list }, Some(r)) => Some((r, *list)),
                    _ => None,
                })
                .collect(),
        };
    let blocks = func.block_ids().map(|id| lowerer.block(func.block(id))).collect();
    let exits = func.exits.iter().enumerate().map(|(i, e)| lowerer.exit(i, e)).collect();
    let nregs = lowerer.next_reg;
    let float_regs = (0..nregs as usize).map(|v| func.values.get(v) == Some(&Type::F64)).collect();
    let mut out = Func {
        name: func.name.clone(),
        blocks,
        exits,
        nregs,
        nlocalsplus: func.nlocalsplus,
        float_regs,
        constants: Default::default(),
            derived: Default::default(),
    };
    out.constants = out
        .blocks
        .iter()
        .flat_map(|b| &b.insts)
        .filter_map(|i| match i {
            Inst::Move { dst, src: Src::Imm(v) } => Some((*dst, *v)),
            _ => None,
        })
        .collect();
    remove_dead_instructions(&mut out);
    order_blocks(&mut out);
    super::loops::optimise(&mut out);
    if super::unroll::unroll(&mut out) {
        // (The increments between the unrolled copies that addresses no longer read.)
        remove_dead_instructions(&mut out);
        order_blocks(&mut out);
    }
    super::fp_clears::reduce(&mut out);
    out
}

/// Lays the blocks out in reverse post-order, a branch's true side first: a loop's body then
/// follows its header and comes before the code after the loop, so values live around the
/// loop do not span the calls made after it (the allocator gives each value one interval).
fn order_blocks(func: &mut Func) {
    let n = func.blocks.len();
    let mut visited = vec![false; n];
    let mut postorder = Vec::with_capacity(n);
    // Iterative DFS: (block, next successor to visit).
    let targets = |b: usize| -> Vec<usize> {
        match &func.blocks[b].term {
            Term::Jump(t) => vec![t.block],
            Term::Branch { if_true, if_false, .. } => vec![if_true.block, if_false.block],
            Term::Return(_) | Term::Exit(_) => vec![],
        }
    };
    // Whether block `from` leads back to block `to` (the branch's side that stays in a loop).
    let reaches = |from: usize, to: usize| -> bool {
        let mut seen = vec![false; n];
        let mut work = vec![from];
        while let Some(x) = work.pop() {
            if x == to {
                return true;
            }
            if !std::mem::replace(&mut seen[x], true) {
                work.extend(targets(x));
            }
        }
        false
    };
    // Branch sides are visited in reverse of the order they are laid out in: the side that
    // stays in the loop the branch is in comes right after it (a loop's next iteration falls
    // through; leaving takes the jump); otherwise the true side.
    let small = n <= 400;
    let successors = |b: usize| -> Vec<usize> {
        match &func.blocks[b].term {
            Term::Jump(t) => vec![t.block],
            Term::Branch { if_true, if_false, .. } => {
                let (t, f) = (if_true.block, if_false.block);
                if small && reaches(f, b) && !reaches(t, b) {
                    vec![t, f]
                } else {
                    vec![f, t]
                }
            }
            Term::Return(_) | Term::Exit(_) => vec![],
        }
    };
    let mut stack = vec![(0usize, 0usize)];
    visited[0] = true;
    while let Some((b, k)) = stack.pop() {
        let succ = successors(b);
        if k < succ.len() {
            stack.push((b, k + 1));
            let s = succ[k];
            if !visited[s] {
                visited[s] = true;
                stack.push((s, 0));
            }
        } else {
            postorder.push(b);
        }
    }
    let mut order: Vec<usize> = postorder.into_iter().rev().collect();
    // Unreachable blocks keep their relative order at the end.
    order.extend((0..n).filter(|b| !visited[*b]));
    let mut new_index = vec![0; n];
    for (i, &b) in order.iter().enumerate() {
        new_index[b] = i;
    }
    let mut old: Vec<Option<Block>> = std::mem::take(&mut func.blocks).into_iter().map(Some).collect();
    for &b in &order {
        let mut block = old[b].take().expect("each block once");
        match &mut block.term {
            Term::Jump(t) => t.block = new_index[t.block],
            Term::Branch { if_true, if_false, .. } => {
                if_true.block = new_index[if_true.block];
                if_false.block = new_index[if_false.block];
            }
            Term::Return(_) | Term::Exit(_) => {}
        }
        func.blocks.push(block);
    }
}

/// Drops pure instructions whose result nothing reads (e.g. constants folded into the
/// instructions that use them as immediates). Where the code checks the floating-point
/// exception flags, float arithmetic is not pure: an unread `x * y` may still flag the overflow
/// NumPy warns of (`x = a[i] * c` in a loop that keeps only the last `x`).
fn remove_dead_instructions(func: &mut Func) {
    let checks_flags = func.blocks.iter().flat_map(|b| &b.insts).any(|i| matches!(i, Inst::ExitIfFpFlags { .. }));
    let removable = |i: &Inst| i.is_pure() && !(checks_flags && i.may_set_fp_flags());
    // What the exits read does not change below (no exit goes).
    let read_by_exits: Vec<VReg> = func.exits.iter().flat_map(|exit| func.exit_uses(exit)).collect();
    loop {
        let mut used = vec![false; func.nregs as usize];
        // Constants are rematerialised where they are read (an edge argument too: the backend
        // moves the immediate into the parameter); a constant passed along an edge keeps its
        // definition, which records the value (`Func::constants`) and emits no code.
        let read = |r: VReg, used: &mut Vec<bool>| {
            if !func.constants.contains_key(&r) {
                used[r.index()] = true;
            }
        };
        for block in &func.blocks {
            for inst in &block.insts {
                for r in inst.uses() {
                    read(r, &mut used);
                }
            }
            match &block.term {
                Term::Branch { cond, .. } => read(*cond, &mut used),
                Term::Return(r) => read(*r, &mut used),
                Term::Jump(_) | Term::Exit(_) => {}
            }
            for t in block.term.targets() {
                for a in &t.args {
                    used[a.index()] = true;
                }
            }
            for p in &block.params {
                used[p.index()] = true;
            }
        }
        for r in &read_by_exits {
            used[r.index()] = true;
        }
        let mut changed = false;
        for block in &mut func.blocks {
            let before = block.insts.len();
            block.insts.retain(|i| !(removable(i) && i.def().is_some_and(|d| !used[d.index()])));
            changed |= block.insts.len() != before;
        }
        if !changed {
            break;
        }
    }
}

struct Lowerer<'a> {
    func: &'a hir::Function,
    constants: &'a CodeConstants,
    layout: &'a Layout,
    next_reg: u32,
    /// Preludes for exits, filled while lowering the instructions that own them.
    exits: Vec<(hir::ExitId, Callee, Vec<Src>)>,
    /// `LoadGlobal`s lowered so far (the index of the next one's cache).
    global_sites: usize,
    /// `LoadAttr`s lowered so far.
    attr_sites: usize,
    /// Values of the function's `ConstI64`s (small ones become immediates).
    int_consts: crate::hashing::HashMap<hir::ValueId, i64>,
    /// The `co_consts` index machine constants stand for (boxing them is that object).
    const_origins: crate::hashing::HashMap<hir::ValueId, u32>,
    /// Integer operations that cannot leave (offsets), by result.
    int_ops: crate::hashing::HashMap<hir::ValueId, (hir::IntOp, hir::ValueId, hir::ValueId)>,
    /// Range iterators never made (`Op::RangeIterVirtual`): their start, step and length.
    virtual_iters: crate::hashing::HashMap<hir::ValueId, [hir::ValueId; 3]>,
    /// Lists of bools kept as bytes (`Op::BoolListNew`), each by itself, and their
    /// iterators never made (`Op::BoolListIter`), by iterator: the list of each.
    bool_lists: crate::hashing::HashMap<hir::ValueId, hir::ValueId>,
}

/// The number of `LoadAttr` and `PeekAttr` sites of a function: how many `AttrCache`s it
/// needs.
pub fn attr_sites(func: &hir::Function) -> usize {
    func.blocks.iter().flat_map(|b| &b.instrs).filter(|i| matches!(i.op, Op::LoadAttr { .. } | Op::PeekAttr { .. })).count()
}

/// The number of global lookups of a function (`LoadGlobal`, `PeekGlobal`, `GuardGlobalIs`):
/// how many `GlobalCache`s it needs.
pub fn global_sites(func: &hir::Function) -> usize {
    let global = |op: &Op| matches!(op, Op::LoadGlobal { .. } | Op::PeekGlobal { .. } | Op::GuardGlobalIs { .. });
    func.blocks.iter().flat_map(|b| &b.instrs).filter(|i| global(&i.op)).count()
}

/// The register of a HIR value (the same number).
fn reg(v: hir::ValueId) -> VReg {
    VReg(v.0)
}

fn val(v: hir::ValueId) -> Arg {
    Arg::Val(Src::Reg(reg(v)))
}

fn imm(i: i64) -> Arg {
    Arg::Val(Src::Imm(i))
}

impl Lowerer<'_> {
    /// `dst` = the global or builtin `co_names[name]` of the frame (a new reference), through
    /// the site's `GlobalCache`; NULL if it has none, with NameError set unless `peek`.
    fn global_lookup(&mut self, dst: VReg, name: u32, peek: bool, out: &mut Vec<Inst>) {
        let (globals, builtins) = (self.temp(), self.temp());
        out.push(Inst::LoadFrame { dst: globals, offset: self.layout.frame_globals });
        out.push(Inst::LoadFrame { dst: builtins, offset: self.layout.frame_builtins });
        let name = self.constants.names[name as usize];
        // SAFETY: `global_caches` has one entry per global lookup (see `global_sites`).
        let cache = unsafe { self.constants.global_caches.add(self.global_sites) } as i64;
        self.global_sites += 1;
        let slow = if peek {
            callee!(runtime::rjit_rt_peek_global_cached, "rjit_rt_peek_global_cached")
        } else {
            callee!(runtime::rjit_rt_load_global_cached, "rjit_rt_load_global_cached")
        };
        out.push(Inst::LoadGlobal { dst, globals, builtins, name, cache, slow });
    }

    fn temp(&mut self) -> VReg {
        self.next_reg += 1;
        VReg(self.next_reg - 1)
    }

    fn local_offset(&self, local: u32) -> u32 {
        self.layout.frame_localsplus + 8 * local
    }

    fn block(&mut self, block: &hir::Block) -> Block {
        let mut insts = Vec::new();
        for instr in &block.instrs {
            self.instr(instr, &mut insts);
        }
        let target = |e: &hir::Edge| Target { block: e.target.index(), args: e.args.iter().map(|v| reg(*v)).collect() };
        let term = match &block.terminator {
            Terminator::Jump(e) => Term::Jump(target(e)),
            Terminator::Branch { cond, if_true, if_false } => {
                Term::Branch { cond: reg(*cond), if_true: target(if_true), if_false: target(if_false) }
            }
            Terminator::Return(v) => Term::Return(reg(*v)),
            Terminator::Exit(e) => Term::Exit(e.0),
        };
        if matches!(term, Term::Return(_)) {
            // A frame that outlives the call (sys._getframe) shows the RETURN_VALUE line.
            insts.push(Inst::SetPrevInstr { offset: block.end_at });
        }
        Block { params: block.params.iter().map(|v| reg(*v)).collect(), insts, term, end_at: block.end_at }
    }

    fn exit(&mut self, id: usize, exit: &hir::Exit) -> Exit {
        let prelude = self
            .exits
            .iter()
            .find(|(e, _, _)| e.index() == id)
            .map(|(_, callee, args)| (*callee, args.clone()));
        let machine = |v: &hir::ValueId| Some(self.func.type_of(*v)).filter(|t| t.is_unboxed());
        Exit {
            kind: exit.kind,
            offset: exit.state.offset,
            prelude,
            release: exit
                .release
                .iter()
                .filter(|v| self.func.type_of(**v).is_object_like())
                .map(|v| (reg(*v), self.func.type_of(*v) != Type::Object))
                .collect(),
            // Locals holding objects are in the frame already (`StoreLocal`); machine values
            // are boxed into their slots.
            stack: exit.state.stack.iter().map(|v| (reg(*v), machine(v))).collect(),
            locals: exit
                .state
                .locals
                .iter()
                .enumerate()
                .filter_map(|(slot, v)| {
                    let ty = machine(v)?;
                    // A value of another local's slot is bound (see `bound_flags`).
                    let flag = self.func.bound_flags.get(v).copied().filter(|&local| local == slot as u32);
                    Some((slot as u32, reg(*v), ty, flag))
                })
                .collect(),
            deopt_index: (exit.kind == ExitKind::Deopt).then_some(id as u32),
            range_positions: exit
                .range_positions
                .iter()
                .filter(|(it, _)| !self.virtual_iters.contains_key(it) && !self.bool_lists.contains_key(it))
                .map(|(it, index)| (reg(*it), reg(*index)))
                .collect(),
            range_iters: exit
                .state
                .stack
                .iter()
                .enumerate()
                .filter_map(|(d, v)| {
                    let [start, step, len] = self.virtual_iters.get(v)?;
                    let (_, position) = exit.range_positions.iter().find(|(it, _)| it == v)?;
                    Some((d as u32, [reg(*start), reg(*step), reg(*len), reg(*position)]))
                })
                .collect(),
            borrowed: exit.borrowed.iter().filter(|v| self.func.type_of(**v).is_object_like()).map(|v| reg(*v)).collect(),
            numpy: exit
                .state
                .stack
                .iter()
                .chain(&exit.state.locals)
                .filter_map(|v| Some((reg(*v), self.func.numpy_boxes.get(v)?.map(reg))))
                .collect(),
            bool_lists: self.exit_bool_lists(exit),
            redo_from: exit.redo_from.map(|r| r.index() as u32),
        }
    }

    /// What exit `exit` makes of lists of bools kept as bytes: the lists its frame holds
    /// (in a slot or through an iterator), and the iterators on its stack with their list
    /// and position.
    fn exit_bool_lists(&self, exit: &hir::Exit) -> BoolListExit {
        let mut made = BoolListExit::default();
        let state = exit.state.locals.iter().chain(&exit.state.stack);
        for list in state.filter_map(|v| self.bool_lists.get(v)) {
            if !made.lists.contains(&reg(*list)) {
                made.lists.push(reg(*list));
            }
        }
        for (d, v) in exit.state.stack.iter().enumerate() {
            let Some(list) = self.bool_lists.get(v).filter(|list| *list != v) else { continue };
            if let Some((_, position)) = exit.range_positions.iter().find(|(it, _)| it == v) {
                made.iters.push((d as u32, [reg(*list), reg(*position)]));
            }
        }
        made
    }

    /// A call whose pointer result is NULL on error.
    fn call_checked(&mut self, out: &mut Vec<Inst>, callee: Callee, args: Vec<Arg>, ret: VReg, exit: Option<hir::ExitId>) {
        out.push(Inst::Call { callee, args, ret: Some(ret) });
        if let Some(exit) = exit {
            out.push(Inst::ExitIfZero { value: ret, exit: exit.0 });
        }
    }

    /// A call whose `int` result is negative on error.
    fn call_status(&mut self, out: &mut Vec<Inst>, callee: Callee, args: Vec<Arg>, exit: Option<hir::ExitId>) -> VReg {
        let status = self.temp();
        out.push(Inst::Call { callee, args, ret: Some(status) });
        if let Some(exit) = exit {
            out.push(Inst::ExitIfNegative { value: status, exit: exit.0 });
        }
        status
    }

    fn instr(&mut self, instr: &hir::Instr, out: &mut Vec<Inst>) {
        let result = instr.result.map(reg);
        let exit = instr.exit;
        // Code called from here may look at this frame's line (warnings, tracebacks).
        if let Some(e) = exit {
            // List indexing sets the frame's instruction in its slow paths only.
            let sets_own_state = matches!(
                instr.op,
                Op::CheckBound { .. } | Op::CheckEvalBreaker { .. } | Op::CheckTracing | Op::GetItemInt { .. } | Op::SetItemInt { .. }
            );
            if !sets_own_state && !instr.op.is_machine() {
                out.push(Inst::SetPrevInstr { offset: self.func.exit(e).state.offset });
            }
        }
        let dst = || result.expect("operation with a result");
        match &instr.op {
            Op::LoadArg { local } => out.push(Inst::LoadFrame { dst: dst(), offset: self.local_offset(*local) }),
            Op::StoreLocal { local, value } => {
                out.push(Inst::StoreFrame { offset: self.local_offset(*local), src: Src::Reg(reg(*value)) })
            }
            Op::Const { index } => {
                out.push(Inst::Move { dst: dst(), src: Src::Imm(self.constants.consts[*index as usize]) })
            }
            Op::ConstObject { address } => out.push(Inst::Move { dst: dst(), src: Src::Imm(*address) }),
            Op::Null => out.push(Inst::Move { dst: dst(), src: Src::Imm(0) }),
            Op::Incref(v) => out.push(Inst::Incref(reg(*v))),
            Op::Decref(v) => out.push(Inst::Decref { reg: reg(*v), at: instr.at }),
            Op::XDecref(v) => out.push(Inst::XDecref { reg: reg(*v), at: instr.at }),
            Op::CheckBound { value, local } => {
                self.raise_unbound_if_zero(*value, *local, exit, out);
                out.push(Inst::Move { dst: dst(), src: Src::Reg(reg(*value)) });
            }
            Op::LoadGlobal { name } | Op::PeekGlobal { name } => {
                let peek = matches!(instr.op, Op::PeekGlobal { .. });
                self.global_lookup(dst(), *name, peek, out);
                if let Some(exit) = exit {
                    out.push(Inst::ExitIfZero { value: dst(), exit: exit.0 });
                }
            }
            Op::GuardGlobalIs { name, expected } => {
                let e = exit.expect("a global guard has an exit");
                let (value, same) = (self.temp(), self.temp());
                self.global_lookup(value, *name, true, out);
                out.push(Inst::SetEq { dst: same, a: value, b: Src::Imm(*expected), negate: false });
                // The dictionary holds another reference: only the address matters here.
                out.push(Inst::XDecref { reg: value, at: instr.at });
                out.push(Inst::ExitIfZero { value: same, exit: e.0 });
            }
            Op::LoadAttr { obj, name } => {
                let name = self.constants.names[*name as usize];
                // SAFETY: `attr_caches` has one entry per LoadAttr (see `attr_sites`).
                let cache = unsafe { self.constants.attr_caches.add(self.attr_sites) } as i64;
                self.attr_sites += 1;
                let slow = callee!(runtime::rjit_rt_load_attr_cached, "rjit_rt_load_attr_cached");
                out.push(Inst::LoadModuleAttr { dst: dst(), obj: reg(*obj), name, cache, slow });
                if let Some(exit) = exit {
                    out.push(Inst::ExitIfZero { value: dst(), exit: exit.0 });
                }
            }
            Op::PeekAttr { obj, name } => {
                let name = self.constants.names[*name as usize];
                // SAFETY: as for `LoadAttr` (`attr_sites` counts both).
                let cache = unsafe { self.constants.attr_caches.add(self.attr_sites) } as i64;
                self.attr_sites += 1;
                let callee = callee!(runtime::rjit_rt_peek_attr_cached, "rjit_rt_peek_attr_cached");
                out.push(Inst::Call { callee, args: vec![val(*obj), imm(name), imm(cache)], ret: Some(dst()) });
            }
            Op::StoreAttr { obj, name, value } => {
                let name = self.constants.names[*name as usize];
                let callee = callee!(ffi::PyObject_SetAttr, "PyObject_SetAttr", int);
                self.call_status(out, callee, vec![val(*obj), imm(name), val(*value)], exit);
            }
            Op::Binary { op, lhs, rhs } => {
                if let Some((name, fast)) = runtime::binary_fast_path(op.oparg()) {
                    let callee = Callee { name, address: fast as *const () as usize, returns_int: false };
                    self.call_checked(out, callee, vec![val(*lhs), val(*rhs)], dst(), exit);
                    return;
                }
                let callee = match runtime::binary_op_function(op.oparg()) {
                    Some(f) => Callee { name: op_name(op.symbol()), address: f as *const () as usize, returns_int: false },
                    None => {
                        let helper = callee!(runtime::rjit_rt_binary_op, "rjit_rt_binary_op");
                        let args = vec![imm(i64::from(op.oparg())), val(*lhs), val(*rhs)];
                        self.call_checked(out, helper, args, dst(), exit);
                        return;
                    }
                };
                self.call_checked(out, callee, vec![val(*lhs), val(*rhs)], dst(), exit);
            }
            Op::Unary { op, value } => {
                let callee = match op {
                    UnaryOp::Positive => callee!(ffi::PyNumber_Positive, "PyNumber_Positive"),
                    UnaryOp::Negative => callee!(ffi::PyNumber_Negative, "PyNumber_Negative"),
                    UnaryOp::Invert => callee!(ffi::PyNumber_Invert, "PyNumber_Invert"),
                };
                self.call_checked(out, callee, vec![val(*value)], dst(), exit);
            }
            Op::Not(v) => self.call_checked(out, callee!(runtime::rjit_rt_not, "rjit_rt_not"), vec![val(*v)], dst(), exit),
            Op::Compare { op, lhs, rhs } => {
                let callee = callee!(runtime::rjit_rt_compare, "rjit_rt_compare");
                self.call_checked(out, callee, vec![val(*lhs), val(*rhs), imm(i64::from(op.py_op()))], dst(), exit);
            }
            Op::Is { lhs, rhs, negate } => {
                let same = self.temp();
                out.push(Inst::SetEq { dst: same, a: reg(*lhs), b: Src::Reg(reg(*rhs)), negate: *negate });
                out.push(Inst::Select { dst: dst(), cond: same, if_true: Src::Imm(py_true()), if_false: Src::Imm(py_false()) });
                out.push(Inst::Incref(dst()));
            }
            Op::Contains { item, container, negate } => {
                let callee = callee!(runtime::rjit_rt_contains, "rjit_rt_contains");
                self.call_checked(out, callee, vec![val(*item), val(*container), imm(i64::from(*negate))], dst(), exit);
            }
            Op::IsTrue(v) | Op::IsTrueBorrowed(v) if exit.is_some() => out.push(Inst::Truth {
                dst: dst(),
                value: reg(*v),
                slow: callee!(runtime::rjit_rt_is_true, "rjit_rt_is_true", int),
                constants: [py_true(), py_false(), py_none()],
                exit: exit.expect("checked").0,
                borrowed: matches!(instr.op, Op::IsTrueBorrowed(_)).then_some(instr.at),
            }),
            Op::IsTrue(v) | Op::IsTrueBorrowed(v) => match exit {
                Some(_) => unreachable!("handled above"),
                None => {
                    let status = self.call_status(out, callee!(runtime::rjit_rt_is_true, "rjit_rt_is_true", int), vec![val(*v)], None);
                    out.push(Inst::Move { dst: dst(), src: Src::Reg(status) });
                }
            },
            Op::IsNone(v) => out.push(Inst::SetEq { dst: dst(), a: reg(*v), b: Src::Imm(py_none()), negate: false }),
            Op::IsNull(v) => out.push(Inst::SetEq { dst: dst(), a: reg(*v), b: Src::Imm(0), negate: false }),
            Op::NonNull(v) => out.push(Inst::Move { dst: dst(), src: Src::Reg(reg(*v)) }),
            Op::GetItem { obj, key } => {
                self.call_checked(out, callee!(runtime::rjit_rt_get_item, "rjit_rt_get_item"), vec![val(*obj), val(*key)], dst(), exit)
            }
            Op::SetItem { obj, key, value } => {
                let callee = callee!(runtime::rjit_rt_set_item, "rjit_rt_set_item", int);
                self.call_status(out, callee, vec![val(*obj), val(*key), val(*value)], exit);
            }
            Op::DelItem { obj, key } => {
                let callee = callee!(ffi::PyObject_DelItem, "PyObject_DelItem", int);
                self.call_status(out, callee, vec![val(*obj), val(*key)], exit);
            }
            Op::BuildTuple(items) | Op::BuildList(items) => {
                let callee = if matches!(instr.op, Op::BuildTuple(_)) {
                    callee!(runtime::rjit_rt_build_tuple, "rjit_rt_build_tuple")
                } else {
                    callee!(runtime::rjit_rt_build_list, "rjit_rt_build_list")
                };
                let array = Arg::Array(items.iter().map(|v| Src::Reg(reg(*v))).collect());
                self.call_checked(out, callee, vec![array, imm(items.len() as i64)], dst(), exit);
            }
            Op::BuildSlice { start, stop, step } => {
                let callee = callee!(ffi::PySlice_New, "PySlice_New");
                self.call_checked(out, callee, vec![val(*start), val(*stop), val(*step)], dst(), exit);
            }
            Op::UnpackSequence { value, count } => {
                let callee = callee!(runtime::rjit_rt_unpack_sequence, "rjit_rt_unpack_sequence");
                self.call_checked(out, callee, vec![val(*value), imm(i64::from(*count))], dst(), exit);
            }
            Op::UnpackEx { value, before, after } => {
                let callee = callee!(runtime::rjit_rt_unpack_ex, "rjit_rt_unpack_ex");
                let args = vec![val(*value), imm(i64::from(*before)), imm(i64::from(*after))];
                self.call_checked(out, callee, args, dst(), exit);
            }
            Op::TupleItem { tuple, index } => {
                let offset = self.layout.tuple_items + 8 * index;
                out.push(Inst::Load { dst: dst(), base: reg(*tuple), offset });
                out.push(Inst::Incref(dst()));
            }
            Op::LoadClosure { index } => {
                // frame->f_func->func_closure[index], as COPY_FREE_VARS reads it.
                let func = self.temp();
                let closure = self.temp();
                out.push(Inst::LoadFrame { dst: func, offset: self.layout.frame_func });
                out.push(Inst::Load { dst: closure, base: func, offset: self.layout.function_closure });
                out.push(Inst::Load { dst: dst(), base: closure, offset: self.layout.tuple_items + 8 * index });
                out.push(Inst::Incref(dst()));
            }
            Op::MakeCell(v) => self.call_checked(out, callee!(ffi::PyCell_New, "PyCell_New"), vec![val(*v)], dst(), exit),
            Op::CellGet { cell, slot } => {
                out.push(Inst::Load { dst: dst(), base: reg(*cell), offset: self.layout.cell_ref });
                if let Some(e) = exit {
                    let raise = callee!(runtime::rjit_rt_unbound_local, "rjit_rt_unbound_local");
                    self.exits.push((e, raise, vec![Src::Imm(self.constants.code), Src::Imm(i64::from(*slot))]));
                    out.push(Inst::ExitIfZero { value: dst(), exit: e.0 });
                }
                out.push(Inst::Incref(dst()));
            }
            Op::CellSet { cell, value } => {
                self.call_status(out, callee!(ffi::PyCell_Set, "PyCell_Set", int), vec![val(*cell), val(*value)], None);
            }
            Op::MakeFunction { code, closure, annotations, kwdefaults, defaults } => {
                let globals = self.temp();
                out.push(Inst::LoadFrame { dst: globals, offset: self.layout.frame_globals });
                let args = vec![val(*code), Arg::Val(Src::Reg(globals)), val(*closure), val(*annotations), val(*kwdefaults), val(*defaults)];
                self.call_checked(out, callee!(runtime::rjit_rt_make_function, "rjit_rt_make_function"), args, dst(), exit);
            }
            Op::FormatValue { value, conversion, spec } => {
                let args = vec![val(*value), imm(i64::from(*conversion)), val(*spec)];
                self.call_checked(out, callee!(runtime::rjit_rt_format_value, "rjit_rt_format_value"), args, dst(), exit);
            }
            Op::BuildString(items) | Op::BuildSet(items) => {
                let callee = if matches!(instr.op, Op::BuildString(_)) {
                    callee!(runtime::rjit_rt_build_string, "rjit_rt_build_string")
                } else {
                    callee!(runtime::rjit_rt_build_set, "rjit_rt_build_set")
                };
                let array = Arg::Array(items.iter().map(|v| Src::Reg(reg(*v))).collect());
                self.call_checked(out, callee, vec![array, imm(items.len() as i64)], dst(), exit);
            }
            Op::BuildMap(items) => {
                let array = Arg::Array(items.iter().map(|v| Src::Reg(reg(*v))).collect());
                let callee = callee!(runtime::rjit_rt_build_map, "rjit_rt_build_map");
                self.call_checked(out, callee, vec![array, imm(items.len() as i64 / 2)], dst(), exit);
            }
            Op::BuildConstKeyMap { keys, values } => {
                let array = Arg::Array(values.iter().map(|v| Src::Reg(reg(*v))).collect());
                let callee = callee!(runtime::rjit_rt_build_const_key_map, "rjit_rt_build_const_key_map");
                self.call_checked(out, callee, vec![val(*keys), array, imm(values.len() as i64)], dst(), exit);
            }
            Op::MapAdd { dict, key, value } => {
                let callee = callee!(ffi::PyDict_SetItem, "PyDict_SetItem", int);
                self.call_status(out, callee, vec![val(*dict), val(*key), val(*value)], exit);
            }
            Op::SetAdd { set, value } => {
                self.call_status(out, callee!(ffi::PySet_Add, "PySet_Add", int), vec![val(*set), val(*value)], exit);
            }
            Op::ListExtend { list, iterable } => {
                let callee = callee!(runtime::rjit_rt_list_extend, "rjit_rt_list_extend", int);
                self.call_status(out, callee, vec![val(*list), val(*iterable)], exit);
            }
            Op::DictUpdate { dict, update } => {
                let callee = callee!(runtime::rjit_rt_dict_update, "rjit_rt_dict_update", int);
                self.call_status(out, callee, vec![val(*dict), val(*update)], exit);
            }
            Op::DictMerge { dict, update, func } => {
                let callee = callee!(runtime::rjit_rt_dict_merge, "rjit_rt_dict_merge", int);
                self.call_status(out, callee, vec![val(*dict), val(*update), val(*func)], exit);
            }
            Op::ListToTuple(v) => self.call_checked(out, callee!(ffi::PyList_AsTuple, "PyList_AsTuple"), vec![val(*v)], dst(), exit),
            Op::CallEx { callable, args, kwargs } => {
                let callee = callee!(runtime::rjit_rt_call_ex, "rjit_rt_call_ex");
                self.call_checked(out, callee, vec![val(*callable), val(*args), val(*kwargs)], dst(), exit);
            }
            Op::BeforeWith(v) => {
                self.call_checked(out, callee!(runtime::rjit_rt_before_with, "rjit_rt_before_with"), vec![val(*v)], dst(), exit)
            }
            Op::ListAppend { list, value } => {
                let callee = callee!(runtime::rjit_rt_list_append, "rjit_rt_list_append", int);
                self.call_status(out, callee, vec![val(*list), val(*value)], exit);
            }
            Op::GetIter(v) => self.call_checked(out, callee!(ffi::PyObject_GetIter, "PyObject_GetIter"), vec![val(*v)], dst(), exit),
            Op::IterNext(it) => {
                let slow = callee!(runtime::rjit_rt_iter_next, "rjit_rt_iter_next");
                if crate::compiler::list_iter_layout_ok() {
                    out.push(Inst::IterNext { dst: dst(), it: reg(*it), slow });
                } else {
                    out.push(Inst::Call { callee: slow, args: vec![val(*it)], ret: Some(dst()) });
                }
                if let Some(e) = exit {
                    out.push(Inst::ExitIfNullWithError { value: dst(), exit: e.0 });
                }
            }
            Op::Call { method, callable, args, kwnames } => {
                let kwnames = kwnames.map_or(0, |k| self.constants.consts[k as usize]);
                let with_self = |first: hir::ValueId| -> Arg {
                    Arg::Array(std::iter::once(first).chain(args.iter().copied()).map(|v| Src::Reg(reg(v))).collect())
                };
                let vectorcall = Callee {
                    name: "PyObject_Vectorcall",
                    address: crate::cpython::vectorcall_address(),
                    returns_int: false,
                };
                let (callee, call_args) = match self.func.type_of(*method) {
                    // [NULL, callable, args...] without keywords: straight to the callee.
                    Type::Null if kwnames == 0 => {
                        let array = Arg::Array(args.iter().map(|v| Src::Reg(reg(*v))).collect());
                        (vectorcall, vec![val(*callable), array, imm(args.len() as i64), imm(0)])
                    }
                    // [NULL, callable, args...]
                    Type::Null => {
                        let array = Arg::Array(args.iter().map(|v| Src::Reg(reg(*v))).collect());
                        let call_args = vec![val(*callable), array, imm(args.len() as i64), imm(kwnames)];
                        (callee!(runtime::rjit_rt_call, "rjit_rt_call"), call_args)
                    }
                    // [method, self, args...]
                    Type::Object => {
                        let call_args = vec![val(*method), with_self(*callable), imm(args.len() as i64 + 1), imm(kwnames)];
                        (callee!(runtime::rjit_rt_call, "rjit_rt_call"), call_args)
                    }
                    // Either, decided at run time.
                    _ => {
                        let call_args = vec![val(*method), with_self(*callable), imm(args.len() as i64 + 1), imm(kwnames)];
                        (callee!(runtime::rjit_rt_call_method, "rjit_rt_call_method"), call_args)
                    }
                };
                self.call_checked(out, callee, call_args, dst(), exit);
            }
            Op::CallCFunction { callable, args } => {
                let slow = callee!(crate::cpython::shim::rjit_shim_call_cfunction, "rjit_shim_call_cfunction");
                let check = callee!(crate::cpython::shim::_Py_CheckFunctionResult, "_Py_CheckFunctionResult");
                out.push(Inst::CallCFunction { dst: dst(), callable: reg(*callable), arg: args.first().map(|a| reg(*a)), slow, check });
                if let Some(exit) = exit {
                    out.push(Inst::ExitIfZero { value: dst(), exit: exit.0 });
                }
            }
            Op::UnboxFloatOwned(v) => {
                // SAFETY: reads a slot of a static type object.
                let dealloc = unsafe { (*std::ptr::addr_of!(ffi::PyFloat_Type)).tp_dealloc };
                let dealloc = Callee { name: "float_dealloc", address: dealloc.map_or(0, |f| f as usize), returns_int: false };
                out.push(Inst::UnboxFloatOwned { dst: dst(), value: reg(*v), dealloc });
            }
            Op::DelAttr { obj, name } => {
                let name = self.constants.names[*name as usize];
                let callee = callee!(ffi::PyObject_SetAttr, "PyObject_SetAttr", int);
                self.call_status(out, callee, vec![val(*obj), imm(name), imm(0)], exit);
            }
            Op::StoreGlobal { name, value } => {
                let globals = self.temp();
                out.push(Inst::LoadFrame { dst: globals, offset: self.layout.frame_globals });
                let name = self.constants.names[*name as usize];
                let callee = callee!(ffi::PyDict_SetItem, "PyDict_SetItem", int);
                self.call_status(out, callee, vec![Arg::Val(Src::Reg(globals)), imm(name), val(*value)], exit);
            }
            Op::SetUpdate { set, iterable } => {
                let callee = callee!(runtime::rjit_rt_set_update, "rjit_rt_set_update", int);
                self.call_status(out, callee, vec![val(*set), val(*iterable)], exit);
            }
            Op::CheckTracing => {
                if let Some(e) = exit {
                    out.push(Inst::ExitIfTracing { exit: e.0 });
                }
            }
            Op::CheckEvalBreaker { resume, leave } => {
                if let Some(e) = exit {
                    out.push(Inst::CheckEvalBreaker { exit: e.0, resume: resume.0, leave: *leave });
                }
            }
            _ => self.machine_instr(instr, out),
        }
    }

    /// Operations on machine values (made by the specialiser).
    fn machine_instr(&mut self, instr: &hir::Instr, out: &mut Vec<Inst>) {
        let exit = instr.exit.map(|e| e.0);
        let dst = || reg(instr.result.expect("operation with a result"));
        match &instr.op {
            Op::ConstI64 { value, .. } => out.push(Inst::Move { dst: dst(), src: Src::Imm(*value) }),
            Op::ConstF64 { bits, .. } => out.push(Inst::Move { dst: dst(), src: Src::Imm(*bits as i64) }),
            Op::ConstBool(b) => out.push(Inst::Move { dst: dst(), src: Src::Imm(i64::from(*b)) }),
            Op::GuardType { value, class } => {
                if let Some(e) = exit {
                    out.push(Inst::GuardType { value: reg(*value), type_addr: class_address(*class), exit: e });
                }
            }
            Op::Unbox { value, to } => match to {
                Type::I64 => out.push(Inst::UnboxInt { dst: dst(), value: reg(*value), exit }),
                Type::F64 => {
                    let offset = std::mem::offset_of!(ffi::PyFloatObject, ob_fval) as u32;
                    out.push(Inst::Load { dst: dst(), base: reg(*value), offset });
                }
                _ => out.push(Inst::SetEq { dst: dst(), a: reg(*value), b: Src::Imm(py_true()), negate: false }),
            },
            Op::Box(v) => self.box_value(*v, dst(), instr.exit, out),
            Op::IntBinary { op, lhs, rhs } => {
                let b = self.int_operand(*rhs);
                // `//` and `%` by a positive power of two never fail (the backend shifts and
                // masks): without the exit, the exit's values need not outlive the operation,
                // so the result may take its operand's register.
                let never_fails = matches!(op, hir::IntOp::FloorDiv | hir::IntOp::Mod)
                    && matches!(b, Src::Imm(v) if v > 0 && v & (v - 1) == 0);
                let exit = if never_fails { None } else { exit };
                out.push(Inst::IntArith { op: *op, dst: dst(), a: reg(*lhs), b, exit });
            }
            Op::FloatBinary { op, lhs, rhs } => match op {
                FloatOp::Add | FloatOp::Sub | FloatOp::Mul | FloatOp::Div => {
                    out.push(Inst::FloatArith { op: *op, dst: dst(), a: reg(*lhs), b: reg(*rhs), exit });
                }
                FloatOp::Pow => out.push(Inst::FloatPow { dst: dst(), a: reg(*lhs), b: reg(*rhs), exit }),
                FloatOp::FloorDiv | FloatOp::Mod => {
                    let callee = match op {
                        FloatOp::FloorDiv => callee!(runtime::rjit_rt_float_floordiv, "rjit_rt_float_floordiv"),
                        _ => callee!(runtime::rjit_rt_float_mod, "rjit_rt_float_mod"),
                    };
                    out.push(Inst::Call { callee, args: vec![val(*lhs), val(*rhs)], ret: Some(dst()) });
                    if let Some(e) = exit {
                        out.push(Inst::ExitIfEqual { value: dst(), imm: runtime::FLOAT_DEOPT as i64, exit: e });
                    }
                }
            },
            Op::FloatNeg(v) => out.push(Inst::FloatNeg { dst: dst(), src: reg(*v) }),
            Op::MathCall { func, value } => {
                let callee = callee!(runtime::rjit_rt_math_1, "rjit_rt_math_1");
                let args = vec![imm(runtime::math_fn_index(*func)), val(*value)];
                out.push(Inst::Call { callee, args, ret: Some(dst()) });
                if let Some(e) = exit {
                    out.push(Inst::ExitIfEqual { value: dst(), imm: runtime::FLOAT_DEOPT as i64, exit: e });
                }
            }
            Op::MathCall2 { func, lhs, rhs } => {
                let callee = callee!(runtime::rjit_rt_math_2, "rjit_rt_math_2");
                let args = vec![imm(runtime::math_fn2_index(*func)), val(*lhs), val(*rhs)];
                out.push(Inst::Call { callee, args, ret: Some(dst()) });
                if let Some(e) = exit {
                    out.push(Inst::ExitIfEqual { value: dst(), imm: runtime::FLOAT_DEOPT as i64, exit: e });
                }
            }
            Op::LenOf(value) => {
                let callee = callee!(runtime::rjit_rt_len_exact, "rjit_rt_len_exact");
                out.push(Inst::Call { callee, args: vec![val(*value)], ret: Some(dst()) });
                if let Some(e) = exit {
                    out.push(Inst::ExitIfNegative { value: dst(), exit: e });
                }
            }
            Op::IsInstanceOf { value, class } => {
                let callee = callee!(runtime::rjit_rt_isinstance_exact, "rjit_rt_isinstance_exact");
                out.push(Inst::Call { callee, args: vec![val(*value), imm(*class)], ret: Some(dst()) });
                if let Some(e) = exit {
                    out.push(Inst::ExitIfNegative { value: dst(), exit: e });
                }
            }
            Op::FloatToInt { rounding, value } => {
                let callee = callee!(runtime::rjit_rt_float_to_int, "rjit_rt_float_to_int");
                let mode = match rounding {
                    hir::Rounding::Floor => 0,
                    hir::Rounding::Ceil => 1,
                    hir::Rounding::Trunc => 2,
                    hir::Rounding::HalfEven => 3,
                };
                out.push(Inst::Call { callee, args: vec![imm(mode), val(*value)], ret: Some(dst()) });
                if let Some(e) = exit {
                    out.push(Inst::ExitIfEqual { value: dst(), imm: i64::MIN, exit: e });
                }
            }
            // A copy under a new name (see `Specializer::alias`): a move.
            Op::Select { if_true, if_false, .. } if if_true == if_false => {
                out.push(Inst::Move { dst: dst(), src: Src::Reg(reg(*if_true)) })
            }
            Op::Select { cond, if_true, if_false, .. } => out.push(Inst::Select {
                dst: dst(),
                cond: reg(*cond),
                if_true: Src::Reg(reg(*if_true)),
                if_false: Src::Reg(reg(*if_false)),
            }),
            Op::IntAbs(value) => {
                let callee = callee!(runtime::rjit_rt_int_abs, "rjit_rt_int_abs");
                out.push(Inst::Call { callee, args: vec![val(*value)], ret: Some(dst()) });
                if let Some(e) = exit {
                    out.push(Inst::ExitIfEqual { value: dst(), imm: i64::MIN, exit: e });
                }
            }
            Op::IntToFloat { value, exact } => {
                out.push(Inst::IntToFloat { dst: dst(), src: reg(*value), exit: if *exact { exit } else { None } })
            }
            Op::IntCompare { op, lhs, rhs } => {
                out.push(Inst::Compare { op: *op, float: false, dst: dst(), a: reg(*lhs), b: reg(*rhs) })
            }
            Op::FloatCompare { op, lhs, rhs } => {
                out.push(Inst::Compare { op: *op, float: true, dst: dst(), a: reg(*lhs), b: reg(*rhs) })
            }
            Op::BoolNot(v) => out.push(Inst::SetEq { dst: dst(), a: reg(*v), b: Src::Imm(0), negate: false }),
            Op::RangeIterIndex(it) => {
                out.push(Inst::RangeIndex { dst: dst(), it: reg(*it), type_addr: class_address(PyClass::RangeIter) })
            }
            Op::SeqIterIndex { it, seq } => {
                let callee = callee!(runtime::rjit_rt_seq_iter_index, "rjit_rt_seq_iter_index");
                out.push(Inst::Call { callee, args: vec![val(*it), val(*seq)], ret: Some(dst()) });
            }
            Op::RangeIterHasNext { it, index } => {
                out.push(Inst::RangeHasNext { dst: dst(), it: reg(*it), index: reg(*index) })
            }
            Op::GuardIs { value, expected } => {
                if let Some(e) = exit {
                    out.push(Inst::GuardIs { value: reg(*value), expected: *expected, exit: e });
                }
            }
            Op::GuardFunction { value, func, code } => {
                if let Some(e) = exit {
                    let code_offset = self.layout.function_code;
                    out.push(Inst::GuardFunction { value: reg(*value), func: *func, code: *code, code_offset, exit: e });
                }
            }
            Op::GuardCallee { value, code } => {
                if let Some(e) = exit {
                    // A plain function (not a subclass: functions have none) running `code`
                    // with this frame's globals and builtins.
                    let value = reg(*value);
                    let function_type = std::ptr::addr_of_mut!(ffi::PyFunction_Type) as i64;
                    out.push(Inst::GuardType { value, type_addr: function_type, exit: e });
                    let (code_field, same_code) = (self.temp(), self.temp());
                    out.push(Inst::Load { dst: code_field, base: value, offset: self.layout.function_code });
                    out.push(Inst::SetEq { dst: same_code, a: code_field, b: Src::Imm(*code), negate: false });
                    out.push(Inst::ExitIfZero { value: same_code, exit: e });
                    let (globals_field, globals, same_globals) = (self.temp(), self.temp(), self.temp());
                    let offset = std::mem::offset_of!(ffi::PyFunctionObject, func_globals) as u32;
                    out.push(Inst::Load { dst: globals_field, base: value, offset });
                    out.push(Inst::LoadFrame { dst: globals, offset: self.layout.frame_globals });
                    out.push(Inst::SetEq { dst: same_globals, a: globals_field, b: Src::Reg(globals), negate: false });
                    out.push(Inst::ExitIfZero { value: same_globals, exit: e });
                    // And the frame's builtins (what the callee's direct entry assumes of
                    // `range`: `direct::Requirement`), which a function fixes when it is made.
                    let (builtins_field, builtins, same_builtins) = (self.temp(), self.temp(), self.temp());
                    let offset = std::mem::offset_of!(ffi::PyFunctionObject, func_builtins) as u32;
                    out.push(Inst::Load { dst: builtins_field, base: value, offset });
                    out.push(Inst::LoadFrame { dst: builtins, offset: self.layout.frame_builtins });
                    out.push(Inst::SetEq { dst: same_builtins, a: builtins_field, b: Src::Reg(builtins), negate: false });
                    out.push(Inst::ExitIfZero { value: same_builtins, exit: e });
                }
            }
            Op::CallDirect { args, target, .. } => {
                let exit = exit.expect("a direct call has an exit");
                let args = args.iter().map(|a| reg(*a)).collect();
                // 0: the function's own direct entry.
                let target = if *target == 0 { self.constants.direct_entry } else { *target };
                out.push(Inst::CallDirect { dst: dst(), args, target, exit });
            }
            Op::DirectArg { index, .. } => out.push(Inst::DirectArg { dst: dst(), index: *index }),
            Op::GuardNonNegative(v) => {
                if let Some(e) = exit {
                    out.push(Inst::ExitIfNegative { value: reg(*v), exit: e });
                }
            }
            Op::RangeIterItem { it, index } => out.push(Inst::RangeItem { dst: dst(), it: reg(*it), index: reg(*index) }),
            Op::RangeLen { start, stop, step } => {
                let callee = callee!(runtime::rjit_rt_range_len, "rjit_rt_range_len");
                out.push(Inst::Call { callee, args: vec![val(*start), val(*stop), val(*step)], ret: Some(dst()) });
            }
            // Made by exits that need it (`Exit::range_iters`).
            Op::RangeIterVirtual { .. } => {}
            Op::BoolListNew { len, fill } => {
                let callee = callee!(runtime::rjit_rt_bool_list_new, "rjit_rt_bool_list_new");
                self.call_checked(out, callee, vec![val(*len), imm(i64::from(*fill))], dst(), instr.exit);
            }
            // Made by exits that need it (`Exit::bool_lists`).
            Op::BoolListIter { .. } => {}
            Op::BoolListFree(list) => {
                let callee = callee!(runtime::rjit_rt_bool_list_free, "rjit_rt_bool_list_free");
                out.push(Inst::Call { callee, args: vec![val(*list)], ret: None });
            }
            Op::RangeIndexNext(index) => {
                out.push(Inst::IntArith { op: hir::IntOp::Add, dst: dst(), a: reg(*index), b: Src::Imm(1), exit: None });
            }
            Op::ClearLocal { local } => {
                let old = self.temp();
                out.push(Inst::LoadFrame { dst: old, offset: self.local_offset(*local) });
                out.push(Inst::StoreFrame { offset: self.local_offset(*local), src: Src::Imm(0) });
                out.push(Inst::XDecref { reg: old, at: instr.at });
            }
            Op::CheckFlag { local } => {
                let flag = self.temp();
                out.push(Inst::LoadBoundFlag { dst: flag, local: *local });
                self.raise_unbound_if_zero_reg(flag, *local, instr.exit, out);
            }
            Op::SetBound { local, bound } => out.push(Inst::SetBoundFlag { local: *local, bound: *bound }),
            Op::BoxIfBound { value, local } => {
                let callee = self.box_callee(self.func.type_of(*value));
                let flag = self.temp();
                out.push(Inst::LoadBoundFlag { dst: flag, local: *local });
                out.push(Inst::BoxIfBound { dst: dst(), value: reg(*value), flag, callee, exit });
            }
            Op::GetItemInt { obj, index, borrowed } => {
                let slow = callee!(runtime::rjit_rt_get_item_i64, "rjit_rt_get_item_i64");
                let (obj, index, at, borrowed) = (reg(*obj), reg(*index), instr.at, *borrowed);
                out.push(Inst::ListGetItem { dst: dst(), obj, index, slow, exit, at, borrowed });
            }
            Op::SetItemInt { obj, index, value, borrowed } => {
                let float = self.func.type_of(*value) == Type::F64;
                let slow = if float {
                    callee!(runtime::rjit_rt_set_item_f64, "rjit_rt_set_item_f64", int)
                } else {
                    callee!(runtime::rjit_rt_set_item_i64, "rjit_rt_set_item_i64", int)
                };
                let (obj, index, value) = (reg(*obj), reg(*index), reg(*value));
                out.push(Inst::ListSetItem { obj, index, value, float, slow, exit, at: instr.at, borrowed: *borrowed });
            }
            Op::LoadItemUnboxed { obj, index, seq, ty } => {
                let exit = exit.expect("an unboxed item read has its deopt exit");
                let (tuple, float) = (*seq == hir::Sequence::Tuple, *ty == Type::F64);
                out.push(Inst::LoadItem { dst: dst(), obj: reg(*obj), index: reg(*index), tuple, float, exit });
            }
            Op::GuardArray { value, array, writeable } => {
                if let Some(e) = exit {
                    let ok = self.temp();
                    let callee = callee!(runtime::rjit_rt_array_check, "rjit_rt_array_check");
                    let args = vec![val(*value), imm(runtime::array_check_code(*array, *writeable))];
                    out.push(Inst::Call { callee, args, ret: Some(ok) });
                    out.push(Inst::ExitIfZero { value: ok, exit: e });
                }
            }
            Op::LoadField { base, offset } => out.push(Inst::Load { dst: dst(), base: reg(*base), offset: *offset }),
            Op::Copy(v) => out.push(Inst::Move { dst: dst(), src: Src::Reg(reg(*v)) }),
            Op::GuardFpFlags => {
                if let Some(e) = exit {
                    out.push(Inst::ExitIfFpFlags { exit: e });
                }
            }
            Op::ClearFpFlags => out.push(Inst::ClearFpFlags),
            Op::ArrayIndex { index, dim, array, key, chained } => {
                let e = instr.exit.expect("an array index has its IndexError exit");
                // The exit raises NumPy's IndexError for the key as written (no key: the
                // exit is a deopt, the interpreter redoes the code that indexes).
                if !key.is_empty() && !self.exits.iter().any(|(x, _, _)| *x == e) {
                    let raise = callee!(runtime::rjit_rt_array_index_error, "rjit_rt_array_index_error", int);
                    // A chained subscript (`a[i][j]`) is told by a negative count.
                    let n = if *chained { -(key.len() as i64) } else { key.len() as i64 };
                    let mut args = vec![Src::Reg(reg(*array)), Src::Imm(n)];
                    args.extend(key.iter().map(|k| Src::Reg(reg(*k))));
                    args.resize(6, Src::Imm(0));
                    self.exits.push((e, raise, args));
                }
                out.push(Inst::ArrayIndex { dst: dst(), index: reg(*index), dim: reg(*dim), exit: e.0 });
            }
            Op::LoadElement { data, offset, dtype } => {
                out.push(Inst::LoadElement { dst: dst(), at: self.element_address(*data, *offset), dtype: *dtype })
            }
            Op::StoreElement { data, offset, value, dtype } => {
                out.push(Inst::StoreElement { at: self.element_address(*data, *offset), value: reg(*value), dtype: *dtype })
            }
            Op::GuardIntRange { value, lo, hi } => {
                if let Some(e) = exit {
                    out.push(Inst::ExitIfOutside { value: reg(*value), lo: *lo, hi: *hi, exit: e });
                }
            }
            Op::UfuncCall { function, data, args } => {
                // Without an exit, a `GuardFpFlags` after it checks the flags (`ufunc_flags`).
                let callee = match (args.len(), exit.is_some()) {
                    (1, true) => callee!(runtime::rjit_rt_ufunc_1, "rjit_rt_ufunc_1"),
                    (_, true) => callee!(runtime::rjit_rt_ufunc_2, "rjit_rt_ufunc_2"),
                    (1, false) => callee!(runtime::rjit_rt_ufunc_1_unchecked, "rjit_rt_ufunc_1_unchecked"),
                    (_, false) => callee!(runtime::rjit_rt_ufunc_2_unchecked, "rjit_rt_ufunc_2_unchecked"),
                };
                let mut call_args = vec![imm(*function), imm(*data)];
                call_args.extend(args.iter().map(|a| val(*a)));
                out.push(Inst::Call { callee, args: call_args, ret: Some(dst()) });
                if let Some(e) = exit {
                    out.push(Inst::ExitIfEqual { value: dst(), imm: runtime::FLOAT_DEOPT as i64, exit: e });
                }
            }
            Op::UfuncBatchBegin => {
                let callee = callee!(runtime::rjit_rt_ufunc_batch_begin, "rjit_rt_ufunc_batch_begin");
                out.push(Inst::Call { callee, args: vec![], ret: Some(dst()) });
            }
            Op::UfuncBatched { function, data, dtype, generation, address, step, remaining } => {
                let callee = match dtype {
                    crate::numpy::DType::I64 => callee!(runtime::rjit_rt_ufunc_batched_i64, "rjit_rt_ufunc_batched_i64"),
                    _ => callee!(runtime::rjit_rt_ufunc_batched_f64, "rjit_rt_ufunc_batched_f64"),
                };
                let args = vec![imm(*function), imm(*data), val(*generation), val(*address), val(*step), val(*remaining)];
                out.push(Inst::Call { callee, args, ret: Some(dst()) });
                if let Some(e) = exit {
                    out.push(Inst::ExitIfEqual { value: dst(), imm: runtime::FLOAT_DEOPT as i64, exit: e });
                }
            }
            other => unreachable!("generic operation {other:?} in machine_instr"),
        }
    }

    /// An int operand: an immediate for a constant that fits 32 bits, else its register.
    /// The address of the element at byte `offset` of `data`: `i * size` (the index times a
    /// constant element size of 1, 2, 4 or 8), alone or added to the other axes' part, is
    /// left to the machine's addressing.
    fn element_address(&self, data: hir::ValueId, offset: hir::ValueId) -> ElementAddress {
        let scaled = |v: hir::ValueId| match self.int_ops.get(&v) {
            Some(&(hir::IntOp::Mul, i, size)) => match self.int_consts.get(&size) {
                Some(&s @ (1 | 2 | 4 | 8)) => Some((reg(i), s as u8)),
                _ => None,
            },
            _ => None,
        };
        let base = reg(data);
        if let Some(index) = scaled(offset) {
            return ElementAddress { base, offset: None, index: Some(index), disp: 0 };
        }
        if let Some(&(hir::IntOp::Add, a, b)) = self.int_ops.get(&offset) {
            if let Some(index) = scaled(b) {
                return ElementAddress { base, offset: Some(reg(a)), index: Some(index), disp: 0 };
            }
        }
        ElementAddress { base, offset: Some(reg(offset)), index: None, disp: 0 }
    }

    fn int_operand(&self, v: hir::ValueId) -> Src {
        match self.int_consts.get(&v).copied() {
            Some(c) if i32::try_from(c).is_ok() => Src::Imm(c),
            _ => Src::Reg(reg(v)),
        }
    }

    /// Leaves through `exit` (raising UnboundLocalError for local `local`) if `value` is 0.
    fn raise_unbound_if_zero(&mut self, value: hir::ValueId, local: u32, exit: Option<hir::ExitId>, out: &mut Vec<Inst>) {
        self.raise_unbound_if_zero_reg(reg(value), local, exit, out);
    }

    fn raise_unbound_if_zero_reg(&mut self, value: VReg, local: u32, exit: Option<hir::ExitId>, out: &mut Vec<Inst>) {
        if let Some(e) = exit {
            let raise = callee!(runtime::rjit_rt_unbound_local, "rjit_rt_unbound_local");
            self.exits.push((e, raise, vec![Src::Imm(self.constants.code), Src::Imm(i64::from(local))]));
            out.push(Inst::ExitIfZero { value, exit: e.0 });
        }
    }

    /// The runtime function boxing a machine value of type `ty`.
    fn box_callee(&self, ty: Type) -> Callee {
        match ty {
            Type::F64 => callee!(runtime::rjit_rt_box_f64, "rjit_rt_box_f64"),
            Type::CBool => callee!(runtime::rjit_rt_box_bool, "rjit_rt_box_bool"),
            _ => callee!(runtime::rjit_rt_box_i64, "rjit_rt_box_i64"),
        }
    }

    /// The runtime function boxing a machine value of type `ty` as a NumPy scalar (or as a
    /// Python number when its second argument, a flag, is 0).
    fn numpy_box_callee(ty: Type) -> Callee {
        match ty {
            Type::F64 => callee!(runtime::rjit_rt_box_np_f64, "rjit_rt_box_np_f64"),
            Type::CBool => callee!(runtime::rjit_rt_box_np_bool, "rjit_rt_box_np_bool"),
            _ => callee!(runtime::rjit_rt_box_np_i64, "rjit_rt_box_np_i64"),
        }
    }

    /// `dst` = a new reference to the object for machine value `v`.
    fn box_value(&mut self, v: hir::ValueId, dst: VReg, exit: Option<hir::ExitId>, out: &mut Vec<Inst>) {
        if let Some(flag) = self.func.numpy_boxes.get(&v) {
            let callee = Self::numpy_box_callee(self.func.type_of(v));
            let flag = flag.map_or(imm(1), val);
            self.call_checked(out, callee, vec![val(v), flag], dst, exit);
            return;
        }
        // A constant boxes to the code object's own constant.
        if let Some(&index) = self.const_origins.get(&v) {
            out.push(Inst::Move { dst, src: Src::Imm(self.constants.consts[index as usize]) });
            out.push(Inst::Incref(dst));
            return;
        }
        match self.func.type_of(v) {
            Type::CBool => {
                out.push(Inst::Select { dst, cond: reg(v), if_true: Src::Imm(py_true()), if_false: Src::Imm(py_false()) });
                out.push(Inst::Incref(dst));
            }
            ty => {
                let callee = self.box_callee(ty);
                self.call_checked(out, callee, vec![val(v)], dst, exit)
            }
        }
    }
}

/// The address of the type object a class guard compares with.
fn class_address(class: PyClass) -> i64 {
    match class {
        PyClass::Int => std::ptr::addr_of_mut!(ffi::PyLong_Type) as i64,
        PyClass::Float => std::ptr::addr_of_mut!(ffi::PyFloat_Type) as i64,
        PyClass::Bool => std::ptr::addr_of_mut!(ffi::PyBool_Type) as i64,
        PyClass::RangeIter => std::ptr::addr_of_mut!(ffi::PyRangeIter_Type) as i64,
    }
}

/// A name for a `BINARY_OP` C function in dumps.
fn op_name(symbol: &str) -> &'static str {
    match symbol {
        "+" => "PyNumber_Add",
        "-" => "PyNumber_Subtract",
        "*" => "PyNumber_Multiply",
        "/" => "PyNumber_TrueDivide",
        "//" => "PyNumber_FloorDivide",
        "%" => "PyNumber_Remainder",
        "+=" => "PyNumber_InPlaceAdd",
        "-=" => "PyNumber_InPlaceSubtract",
        "*=" => "PyNumber_InPlaceMultiply",
        _ => "PyNumber_(binary op)",
    }
}

fn py_true() -> i64 {
    // SAFETY: the address of a static object.
    unsafe { ffi::Py_True() as i64 }
}

fn py_false() -> i64 {
    // SAFETY: the address of a static object.
    unsafe { ffi::Py_False() as i64 }
}

fn py_none() -> i64 {
    // SAFETY: the address of a static object.
    unsafe { ffi::Py_None() as i64 }
}
