//! The x86-64 backend: LIR with its register allocation -> machine code, with dynasm.
//!
//! The generated function is `extern "C" fn(tstate, frame) -> PyObject*`:
//! ```text
//! push rbp; mov rbp, rsp; push rbx, r12-r15; sub rsp, N
//! [rbp-48]            the thread state
//! [rbp-56-8k]         spill slot k
//! [rsp .. rsp+8m]     argument arrays of calls (vectorcall arguments, tuple items)
//! rbx                 the interpreter frame (pinned)
//! r12-r15             allocatable (callee-saved: values survive the C calls)
//! rax rcx rdx rsi rdi r8-r11   scratch
//! ```
//! While it runs, the frame is linked as the thread's current frame (as the interpreter links
//! the frames it runs), so code called from it sees it in `sys._getframe()`, warnings and
//! tracebacks; `prev_instr` is kept at the current instruction before each call.

use dynasmrt::x64::Assembler;
use dynasmrt::{dynasm, AssemblyOffset, DynamicLabel, DynasmApi, DynasmLabelApi, ExecutableBuffer};

use crate::numpy::DType;
use super::Mark;
use crate::cpython::shim::Layout;
use crate::hir::{CompareOp, ExitKind, FloatOp, IntOp, Type};
use crate::lir::regalloc::{Allocation, Location};
use crate::lir::{Arg, Callee, Exit, Func, Inst, Src, Target, Term, VReg};

/// The registers the allocator hands out, by dynasm register number: r12-r15 (callee-saved:
/// they survive calls), then rsi, r9, r10 (caller-saved: only for values that live across no
/// call; the rare slow paths that call save them, and exit stubs read them from save slots).
pub const ALLOCATABLE: [u8; 7] = [12, 13, 14, 15, 6, 9, 10];
/// How many of `ALLOCATABLE` are callee-saved.
pub const CALLEE_SAVED: u8 = 4;
/// SSE registers for float values: xmm2-xmm15 (`Location::Xmm(i)` is xmm(2 + i); xmm0 and
/// xmm1 are scratch). All are caller-saved: the slow paths that call save the used ones.
pub const XMM_ALLOCATABLE: u8 = 14;

const RAX: u8 = 0;
const RCX: u8 = 1;
const RDX: u8 = 2;
const RSI: u8 = 6;
const RDI: u8 = 7;
const R8: u8 = 8;
/// Scratch register reserved for breaking cycles in parallel moves.
const R11: u8 = 11;
/// System V argument registers, in order.
const ARG_REGS: [u8; 6] = [7, 6, 2, 1, 8, 9];

/// Bytes below rbp taken by the saved registers (rbx, r12-r15).
const SAVED_BYTES: i32 = 40;
/// The MXCSR flags of the floating-point exceptions NumPy reports (the low byte's).
const FP_REPORTED: i8 = crate::runtime::FP_REPORTED as i8;
const TSTATE_SLOT: i32 = -(SAVED_BYTES + 8);

/// What the code generator needs to know besides the LIR.
pub struct Context {
    pub layout: Layout,
    /// Address of the code object's first code unit (`_PyCode_CODE(code)`).
    pub code_units: i64,
    /// Address of the interpreter's eval breaker.
    pub eval_breaker: i64,
    pub dealloc: Callee,
    pub err_occurred: Callee,
    pub eval_breaker_helper: Callee,
    pub eval_frame_default: Callee,
    /// `_Py_CheckRecursiveCall`.
    pub check_recursion: Callee,
    /// `rjit_shim_before_raise_exit`.
    pub before_raise_exit: Callee,
    /// The code object (passed to `note_deopt`).
    pub code_object: i64,
    /// Counts a deoptimisation: `(code, exit index)`.
    pub note_deopt: Callee,
    /// Boxing machine values in exits: `rjit_rt_box_i64`, `_f64`, `_bool`.
    pub box_i64: Callee,
    pub box_f64: Callee,
    pub box_bool: Callee,
    /// `long PyLong_AsLongLong(obj)` for ints of more than two digits known to fit.
    pub long_as_i64: Callee,
    /// Emit a direct entry (`hir::direct`) instead of a frame entry.
    pub direct: Option<DirectEntry>,
}

/// What the code generator needs for a direct entry (`hir::direct`):
/// `fn(budget, args...) -> (rax: value, rdx: status)`, status 0 when the call finished and
/// nonzero for "not done" (nothing happened: the caller redoes the call in the interpreter).
/// Arguments are machine values (floats as their bits) in rsi, rdx, rcx, r8. `budget` (rdi)
/// is how many more levels of Python recursion the chain of direct calls may take: the frame
/// code starting the chain derives it from the thread's recursion counters (as if each
/// direct call were a frame) and the native stack's depth limit; an entry refuses ("not
/// done") at 0 and passes one less to its own calls. The thread's counters are not touched:
/// no Python code runs inside the chain to see them.
#[derive(Debug, Clone, Copy)]
pub struct DirectEntry {
    pub nargs: u32,
    /// Levels of recursion the entry may run before it calls itself (its body inlined into
    /// itself: `hir::direct::inline_self_once`): the budget it takes.
    pub levels: u32,
}

/// Argument registers of a direct entry (after the thread state in rdi).
pub const DIRECT_ARG_REGS: [u8; 4] = [6, 2, 1, 8];

/// Machine code for one function.
pub struct Code {
    pub buffer: ExecutableBuffer,
    pub entry: AssemblyOffset,
    /// Bytes of machine code (the buffer is rounded up to whole pages).
    pub size: usize,
    /// Where blocks, instructions, slow paths and exit stubs start (for `rjit.dis`).
    pub marks: Vec<(super::Mark, u32)>,
}

/// Why code generation failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EmitError {
    TooManyArguments,
    Assembler(String),
}

/// Assembles `func`.
pub fn emit(func: &Func, alloc: &Allocation, ctx: &Context) -> Result<Code, EmitError> {
    let mut e = Emitter::new(func, alloc, ctx)?;
    let entry = e.ops.offset();
    let self_label = e.self_label;
    dynasm!(e.ops ; .arch x64 ; =>self_label);
    e.prologue();
    for b in 0..func.blocks.len() {
        e.mark(Mark::Block(b as u32));
        e.block(b)?;
    }
    e.mark(Mark::SlowPaths);
    e.cold_paths();
    for x in 0..func.exits.len() {
        e.mark(Mark::ExitStub(x as u32));
        e.exit_stub(x)?;
    }
    if ctx.direct.is_some() && func.exits.is_empty() {
        // The refusal of a direct entry without exits of its own.
        let refuse = e.refuse_label;
        dynasm!(e.ops ; .arch x64 ; =>refuse ; mov edx, 1);
        e.epilogue();
    }
    e.mark(Mark::Data);
    dynasm!(e.ops ; .arch x64 ; .align 8);
    for (bits, label) in std::mem::take(&mut e.float_constants) {
        dynasm!(e.ops ; .arch x64 ; =>label ; .i64 bits);
    }
    // _Py_CheckRecursiveCall's `where` argument: appended to the RecursionError message.
    dynasm!(e.ops ; .arch x64 ; ->empty_string: ; .bytes [0u8]);
    let size = e.ops.offset().0 - entry.0;
    let marks = std::mem::take(&mut e.marks).into_iter().map(|(m, at)| (m, (at - entry.0) as u32)).collect();
    let buffer = e.ops.finalize().map_err(|_| EmitError::Assembler("finalize failed".into()))?;
    Ok(Code { buffer, entry, size, marks })
}

struct Emitter<'a> {
    ops: Assembler,
    func: &'a Func,
    alloc: &'a Allocation,
    ctx: &'a Context,
    block_labels: Vec<DynamicLabel>,
    exit_labels: Vec<DynamicLabel>,
    /// Bytes of the argument-array area at the bottom of the frame.
    frame_size: i32,
    /// The block being emitted (a jump to the next one falls through).
    current_block: usize,
    /// Emitting exit stubs: caller-saved registers are read from their save slots.
    in_stub: bool,
    /// How many times each virtual register is read (instructions, terminators, edges, exits).
    uses: Vec<u32>,
    /// Slow paths of the blocks, emitted after them so the hot code falls through.
    cold: Vec<Cold>,
    /// Float constants (bits), read from memory after the code.
    float_constants: Vec<(i64, DynamicLabel)>,
    /// Where parts of the code start, by assembler offset (`Code::marks`).
    marks: Vec<(Mark, usize)>,
    /// The function's entry (a direct entry calls itself there).
    self_label: DynamicLabel,
    /// Direct entry: "not done" for lack of recursion budget (an exit stub, out of line).
    refuse_label: DynamicLabel,
    /// Direct entry: the callee-saved registers it uses (saved by its prologue).
    direct_saved: Vec<u8>,
    /// Direct entry: how many `DirectArg`s open the entry block, in argument order (they
    /// read the argument registers themselves, untouched until then).
    leading_args: usize,
    /// The exits of eval-breaker checks (their floating-point check comes before the
    /// pending calls run, not in their stubs).
    eval_breaker_exits: crate::hashing::HashSet<u32>,
}

/// A slow path moved out of line: it starts at `slow` and jumps back to `back`.
struct Cold {
    slow: DynamicLabel,
    back: DynamicLabel,
    kind: ColdKind,
}

enum ColdKind {
    /// The eval breaker is set: run the pending calls (frame at code unit address `at`).
    /// With `leave`, leaves through `resume` once the breaker has run.
    EvalBreaker { at: i64, exit: u32, resume: u32, leave: bool },
    /// A reference count dropped to zero: deallocate the object in rdi.
    Dealloc { at: i64 },
    /// A branch's side that needs moves into its target's parameters, out of line so the
    /// other side (a loop's next iteration) falls through. Ends with its jump (no `back`).
    Edge(Target),
    /// An `add reg, imm` (`sub` if `add`) that overflowed into its operand's register: the
    /// inverse (`sub reg, imm`, or `add reg, imm`) restores the operand (wrapping arithmetic:
    /// exact), then `back` is the exit. (The inverse keeps the immediate: `-imm` does not fit
    /// 32 bits for `i32::MIN`.)
    Undo { reg: u8, imm: i32, add: bool },
}

impl<'a> Emitter<'a> {
    fn new(func: &'a Func, alloc: &'a Allocation, ctx: &'a Context) -> Result<Emitter<'a>, EmitError> {
        let mut ops = Assembler::new().map_err(|e| EmitError::Assembler(e.to_string()))?;
        let block_labels = func.blocks.iter().map(|_| ops.new_dynamic_label()).collect();
        let exit_labels = func.exits.iter().map(|_| ops.new_dynamic_label()).collect();
        let max_array = func
            .blocks
            .iter()
            .flat_map(|b| &b.insts)
            .filter_map(|i| match i {
                Inst::Call { args, .. } => args.iter().find_map(|a| match a {
                    Arg::Array(items) => Some(items.len()),
                    Arg::Val(_) => None,
                }),
                _ => None,
            })
            .max()
            .unwrap_or(0)
            // A direct entry keeps its arguments at the bottom of its frame.
            .max(ctx.direct.map_or(0, |d| d.nargs as usize)) as i32;
        // tstate slot + spills + arrays, keeping rsp 16-byte aligned at calls: rbp is aligned
        // after `push rbp`, the five saved registers leave it 8 off.
        // tstate, spills, save slots for the caller-saved allocatable registers (exit stubs),
        // argument arrays.
        let saved = (ALLOCATABLE.len() - CALLEE_SAVED as usize) as i32;
        let flags = if uses_bound_flags(func) { func.nlocalsplus as i32 } else { 0 };
        // A word the SSE control/status register is stored to, read and written from.
        let fp_scratch = i32::from(uses_fp_flags(func));
        let mut frame_size = 8
            + 8 * alloc.spill_slots as i32
            + 8 * (saved + i32::from(alloc.xmm_used) + flags + fp_scratch)
            + 8 * max_array;
        if (frame_size + SAVED_BYTES) % 16 != 0 {
            frame_size += 8;
        }
        let uses = func.use_counts();
        let self_label = ops.new_dynamic_label();
        let mut direct_saved: Vec<u8> = alloc
            .locations
            .iter()
            .filter_map(|l| match l {
                Some(Location::Reg(i)) if *i < CALLEE_SAVED => Some(ALLOCATABLE[*i as usize]),
                _ => None,
            })
            .collect();
        direct_saved.sort_unstable();
        direct_saved.dedup();
        let leading_args = func.blocks.first().map_or(0, |b| {
            b.insts.iter().enumerate().take_while(|(k, i)| matches!(i, Inst::DirectArg { index, .. } if *index as usize == *k)).count()
        });
        let refuse_label = ops.new_dynamic_label();
        let eval_breaker_exits = func
            .blocks
            .iter()
            .flat_map(|b| &b.insts)
            .filter_map(|i| match i {
                Inst::CheckEvalBreaker { exit, resume, .. } => Some([*exit, *resume]),
                _ => None,
            })
            .flatten()
            .collect();
        Ok(Emitter {
            eval_breaker_exits,
            refuse_label,
            self_label,
            direct_saved,
            leading_args,
            ops,
            func,
            alloc,
            ctx,
            block_labels,
            exit_labels,
            frame_size,
            current_block: 0,
            in_stub: false,
            uses,
            cold: Vec::new(),
            float_constants: Vec::new(),
            marks: Vec::new(),
        })
    }

    /// Records that `mark` starts here (for `rjit.dis`; emits nothing).
    fn mark(&mut self, mark: Mark) {
        self.marks.push((mark, self.ops.offset().0));
    }

    /// Emits the deferred slow paths.
    fn cold_paths(&mut self) {
        let field = self.ctx.layout.frame_prev_instr as i32;
        for cold in std::mem::take(&mut self.cold) {
            dynasm!(self.ops ; .arch x64 ; =>cold.slow);
            match cold.kind {
                ColdKind::EvalBreaker { at, exit, resume, leave } => {
                    // In a loop checking floating-point exceptions only when left: checked
                    // before the pending calls run (they may run Python code).
                    if let Some(redo) = self.func.exits[exit as usize].redo_from {
                        self.jump_if_fp_flags(self.exit_labels[redo as usize]);
                    }
                    // Signal handlers run here see the frame at this instruction (its line).
                    let (label, resume_label) = (self.exit_labels[exit as usize], self.exit_labels[resume as usize]);
                    dynasm!(self.ops
                        ; .arch x64
                        ; mov rax, QWORD at
                        ; mov QWORD [rbx + field], rax
                        ; mov rdi, QWORD [rbp + TSTATE_SLOT]
                    );
                    self.push_caller_saved();
                    self.call_address(self.ctx.eval_breaker_helper);
                    self.pop_caller_saved();
                    dynasm!(self.ops ; .arch x64 ; test rax, rax ; js =>label ; jnz =>resume_label);
                    if leave {
                        dynasm!(self.ops ; .arch x64 ; jmp =>resume_label);
                        continue;
                    }
                }
                ColdKind::Dealloc { at } => {
                    // A destructor run here sees the frame at this instruction.
                    dynasm!(self.ops ; .arch x64 ; mov rax, QWORD at ; mov QWORD [rbx + field], rax);
                    self.push_caller_saved();
                    self.call_address(self.ctx.dealloc);
                    self.pop_caller_saved();
                }
                ColdKind::Undo { reg, imm, add } => {
                    if add {
                        dynasm!(self.ops ; .arch x64 ; add Rq(reg), imm);
                    } else {
                        dynasm!(self.ops ; .arch x64 ; sub Rq(reg), imm);
                    }
                }
                ColdKind::Edge(target) => {
                    self.jump(&target, false);
                    continue;
                }
            }
            dynasm!(self.ops ; .arch x64 ; jmp =>cold.back);
        }
    }

    /// `cmp a, b`, with b as an immediate when it is a small constant.
    fn compare_ints(&mut self, a: VReg, b: VReg) {
        let ra = self.gpr_or_load(a, RAX);
        match self.func.constants.get(&b).and_then(|&v| i32::try_from(v).ok()) {
            Some(imm) => dynasm!(self.ops ; .arch x64 ; cmp Rq(ra), imm),
            None => {
                let rb = self.gpr_or_load(b, RCX);
                dynasm!(self.ops ; .arch x64 ; cmp Rq(ra), Rq(rb));
            }
        }
    }

    /// The call of a list access's slow path (rdi = the container, r8 = the index, rdx = the
    /// value of a store): the frame at code unit `at` (code it runs sees that line), holding
    /// a reference to the container when the access borrows it. rax = the call's result.
    /// The caller-saved allocatable registers are saved around it (list accesses do not
    /// clobber them: values live across one stay in registers).
    fn list_slow_call(&mut self, slow: Callee, at: u32, borrowed: bool) {
        let at = self.ctx.code_units + 2 * i64::from(at);
        let field = self.ctx.layout.frame_prev_instr as i32;
        dynasm!(self.ops ; .arch x64 ; mov rax, QWORD at ; mov QWORD [rbx + field], rax);
        if borrowed {
            dynasm!(self.ops ; .arch x64 ; add QWORD [rdi], 1);
        }
        self.push_caller_saved();
        dynasm!(self.ops ; .arch x64 ; mov rsi, r8);
        self.call_address(slow);
        self.pop_caller_saved();
    }

    /// The slow path of a list store (a status result): the call, the reference a borrowed
    /// container took dropped again, a failure leaving through `exit`.
    fn list_store_slow_path(&mut self, obj: VReg, slow: Callee, exit: Option<u32>, at: u32, borrowed: bool) {
        self.list_slow_call(slow, at, borrowed);
        if !borrowed {
            if let Some(e) = exit {
                let label = self.exit_labels[e as usize];
                dynasm!(self.ops ; .arch x64 ; test rax, rax ; js =>label);
            }
            return;
        }
        let failed = self.ops.new_dynamic_label();
        let done = self.ops.new_dynamic_label();
        dynasm!(self.ops ; .arch x64 ; test rax, rax ; js =>failed);
        self.decref(obj, false, at);
        dynasm!(self.ops ; .arch x64 ; jmp =>done ; =>failed);
        self.decref(obj, false, at);
        if let Some(e) = exit {
            let label = self.exit_labels[e as usize];
            dynasm!(self.ops ; .arch x64 ; jmp =>label);
        }
        dynasm!(self.ops ; .arch x64 ; =>done);
    }

    /// The end of an inline cache check whose version tests passed (jumping to `slow` where
    /// they failed): the cache's value (at offset 16 of the cache in register `cache`) with a
    /// new reference, or the `slow` lookup, its `name` argument loaded into `name_reg`.
    fn cached_value_or_lookup(&mut self, dst: VReg, cache: u8, name_reg: u8, name: i64, slow: Callee) {
        dynasm!(self.ops
            ; .arch x64
            ; mov rax, QWORD [Rq(cache) + 16]
            ; test rax, rax
            ; jz >slow
            ; add QWORD [rax], 1
            ; jmp >done
            ; slow:
            ; mov Rq(name_reg), QWORD name
        );
        self.call_address(slow);
        dynasm!(self.ops ; .arch x64 ; done:);
        self.store(dst, RAX);
    }

    /// The label of a float constant in the pool after the code.
    fn float_constant(&mut self, bits: i64) -> DynamicLabel {
        if let Some((_, l)) = self.float_constants.iter().find(|(b, _)| *b == bits) {
            return *l;
        }
        let label = self.ops.new_dynamic_label();
        self.float_constants.push((bits, label));
        label
    }

    /// The machine register holding `r`, if it is in a general register (outside exit stubs,
    /// which read caller-saved registers from their save slots).
    fn gpr(&self, r: VReg) -> Option<u8> {
        if self.func.constants.contains_key(&r) {
            return None; // rematerialised where used
        }
        match self.alloc.of(r) {
            Location::Reg(i) if !self.in_stub => Some(ALLOCATABLE[i as usize]),
            _ => None,
        }
    }

    /// The SSE register holding float value `r`, if it is in one.
    fn xmm(&self, r: VReg) -> Option<u8> {
        if self.func.constants.contains_key(&r) {
            return None;
        }
        match self.alloc.of(r) {
            Location::Xmm(i) if !self.in_stub => Some(2 + i),
            _ => None,
        }
    }

    /// The register holding `r`: its own, or `scratch` loaded with it.
    fn gpr_or_load(&mut self, r: VReg, scratch: u8) -> u8 {
        match self.gpr(r) {
            Some(g) => g,
            None => {
                self.load_reg(scratch, r);
                scratch
            }
        }
    }

    /// Registers `(b, o)` with `[b + o + at.disp]` the element address `at` (scratch: rax,
    /// rcx).
    fn element_address(&mut self, at: &crate::lir::ElementAddress) -> (u8, u8) {
        let rb = self.gpr_or_load(at.base, RAX);
        let Some((index, scale)) = at.index else {
            let ro = self.gpr_or_load(at.offset.expect("an element address has an offset or an index"), RCX);
            return (rb, ro);
        };
        let ri = self.gpr_or_load(index, RCX);
        // rcx = offset + index * scale. (The offset needs a register of its own: rdx.)
        match at.offset {
            None => match scale {
                1 => return (rb, ri),
                2 => dynasm!(self.ops ; .arch x64 ; lea rcx, [Rq(ri) * 2]),
                4 => dynasm!(self.ops ; .arch x64 ; lea rcx, [Rq(ri) * 4]),
                _ => dynasm!(self.ops ; .arch x64 ; lea rcx, [Rq(ri) * 8]),
            },
            Some(offset) => {
                let ro = self.gpr_or_load(offset, RDX);
                match scale {
                    1 => dynasm!(self.ops ; .arch x64 ; lea rcx, [Rq(ro) + Rq(ri)]),
                    2 => dynasm!(self.ops ; .arch x64 ; lea rcx, [Rq(ro) + Rq(ri) * 2]),
                    4 => dynasm!(self.ops ; .arch x64 ; lea rcx, [Rq(ro) + Rq(ri) * 4]),
                    _ => dynasm!(self.ops ; .arch x64 ; lea rcx, [Rq(ro) + Rq(ri) * 8]),
                }
            }
        }
        (rb, RCX)
    }

    /// `dst = a op element` for `+ - *`, the float64 element read from memory by the operation.
    fn float_op_with_element(&mut self, op: FloatOp, dst: VReg, a: VReg, at: &crate::lir::ElementAddress) {
        let w = self.xmm(dst).unwrap_or(0);
        // (First: loading `a` may go through rax, which the address may then use.)
        self.load_float(w, a);
        let d = at.disp;
        match at.index {
            Some((index, 8)) if at.offset.is_none() => {
                let rb = self.gpr_or_load(at.base, RAX);
                let ri = self.gpr_or_load(index, RCX);
                match op {
                    FloatOp::Add => dynasm!(self.ops ; .arch x64 ; addsd Rx(w), QWORD [Rq(rb) + Rq(ri) * 8 + d]),
                    FloatOp::Sub => dynasm!(self.ops ; .arch x64 ; subsd Rx(w), QWORD [Rq(rb) + Rq(ri) * 8 + d]),
                    _ => dynasm!(self.ops ; .arch x64 ; mulsd Rx(w), QWORD [Rq(rb) + Rq(ri) * 8 + d]),
                }
            }
            _ => {
                let (rb, ro) = self.element_address(at);
                match op {
                    FloatOp::Add => dynasm!(self.ops ; .arch x64 ; addsd Rx(w), QWORD [Rq(rb) + Rq(ro) + d]),
                    FloatOp::Sub => dynasm!(self.ops ; .arch x64 ; subsd Rx(w), QWORD [Rq(rb) + Rq(ro) + d]),
                    _ => dynasm!(self.ops ; .arch x64 ; mulsd Rx(w), QWORD [Rq(rb) + Rq(ro) + d]),
                }
            }
        }
        self.store_float(dst, w);
    }

    /// The SSE register holding float `r`: its own, or scratch `x` loaded with it.
    fn xmm_or_load(&mut self, r: VReg, x: u8) -> u8 {
        match self.xmm(r) {
            Some(v) => v,
            None => {
                self.load_float(x, r);
                x
            }
        }
    }

    fn slot_offset(slot: u32) -> i32 {
        TSTATE_SLOT - 8 - 8 * slot as i32
    }

    /// The save slot of caller-saved allocatable register `i` (after the spill slots).
    fn save_slot(&self, i: u8) -> i32 {
        Self::slot_offset(self.alloc.spill_slots + u32::from(i - CALLEE_SAVED))
    }

    /// The save slot of SSE register `Xmm(i)` in exit stubs (after the general ones).
    fn xmm_save_slot(&self, i: u8) -> i32 {
        let general = (ALLOCATABLE.len() - CALLEE_SAVED as usize) as u32;
        Self::slot_offset(self.alloc.spill_slots + general + u32::from(i))
    }

    /// The word holding local `local`'s bound flag (after the SSE save slots).
    fn bound_flag_offset(&self, local: u32) -> i32 {
        let general = (ALLOCATABLE.len() - CALLEE_SAVED as usize) as u32;
        Self::slot_offset(self.alloc.spill_slots + general + u32::from(self.alloc.xmm_used) + local)
    }

    /// The word the SSE control/status register is stored in (after the bound flags, which
    /// are reserved only when used).
    fn fp_scratch_offset(&self) -> i32 {
        let general = (ALLOCATABLE.len() - CALLEE_SAVED as usize) as u32;
        let flags = if uses_bound_flags(self.func) { self.func.nlocalsplus } else { 0 };
        Self::slot_offset(self.alloc.spill_slots + general + u32::from(self.alloc.xmm_used) + flags)
    }

    /// Jumps to `label` if a floating-point exception NumPy reports (invalid, divide by
    /// zero, overflow, underflow: MXCSR bits 0, 2, 3, 4) is flagged.
    fn jump_if_fp_flags(&mut self, label: DynamicLabel) {
        let off = self.fp_scratch_offset();
        dynasm!(self.ops
            ; .arch x64
            ; stmxcsr [rbp + off]
            ; test BYTE [rbp + off], FP_REPORTED
            ; jnz =>label
        );
    }

    /// Bytes below the three pushes for the SSE registers in use, keeping rsp 16-aligned.
    fn xmm_area(&self) -> i32 {
        let bytes = 8 * i32::from(self.alloc.xmm_used);
        if (24 + bytes) % 16 == 0 {
            bytes
        } else {
            bytes + 8
        }
    }

    /// Saves the caller-saved allocatable registers (general and SSE) around a slow-path call.
    fn push_caller_saved(&mut self) {
        let area = self.xmm_area();
        dynasm!(self.ops ; .arch x64 ; push rsi ; push r9 ; push r10 ; sub rsp, area);
        for i in 0..self.alloc.xmm_used {
            let off = 8 * i32::from(i);
            dynasm!(self.ops ; .arch x64 ; movsd QWORD [rsp + off], Rx(2 + i));
        }
    }

    fn pop_caller_saved(&mut self) {
        for i in 0..self.alloc.xmm_used {
            let off = 8 * i32::from(i);
            dynasm!(self.ops ; .arch x64 ; movsd Rx(2 + i), QWORD [rsp + off]);
        }
        let area = self.xmm_area();
        dynasm!(self.ops ; .arch x64 ; add rsp, area ; pop r10 ; pop r9 ; pop rsi);
    }

    /// Loads a float value into SSE register `x` (0 or 1: scratch).
    fn load_float(&mut self, x: u8, r: VReg) {
        if let Some(&bits) = self.func.constants.get(&r) {
            if bits == 0 {
                dynasm!(self.ops ; .arch x64 ; xorps Rx(x), Rx(x));
            } else {
                let label = self.float_constant(bits);
                dynasm!(self.ops ; .arch x64 ; movsd Rx(x), QWORD [=>label]);
            }
            return;
        }
        match self.alloc.of(r) {
            Location::Xmm(i) if !self.in_stub => {
                if 2 + i != x {
                    dynasm!(self.ops ; .arch x64 ; movapd Rx(x), Rx(2 + i));
                }
            }
            Location::Stack(slot) => {
                let off = Self::slot_offset(slot);
                dynasm!(self.ops ; .arch x64 ; movsd Rx(x), QWORD [rbp + off]);
            }
            _ => {
                self.load_reg(RAX, r);
                dynasm!(self.ops ; .arch x64 ; movq Rx(x), rax);
            }
        }
    }

    /// Stores SSE register `x` into a float value's location.
    fn store_float(&mut self, r: VReg, x: u8) {
        match self.alloc.of(r) {
            Location::Xmm(i) => {
                if 2 + i != x {
                    dynasm!(self.ops ; .arch x64 ; movapd Rx(2 + i), Rx(x));
                }
            }
            Location::Stack(slot) => {
                let off = Self::slot_offset(slot);
                dynasm!(self.ops ; .arch x64 ; movsd QWORD [rbp + off], Rx(x));
            }
            Location::Reg(_) => {
                dynasm!(self.ops ; .arch x64 ; movq rax, Rx(x));
                self.store(r, RAX);
            }
        }
    }

    /// Loads an operand into a scratch register.
    fn load(&mut self, dst: u8, src: Src) {
        match src {
            Src::Imm(0) => dynasm!(self.ops ; .arch x64 ; xor Rd(dst), Rd(dst)),
            // Writing the 32-bit register zero-extends; a 32-bit immediate sign-extends.
            Src::Imm(i) if (0..=i64::from(u32::MAX)).contains(&i) => dynasm!(self.ops ; .arch x64 ; mov Rd(dst), i as u32 as i32),
            Src::Imm(i) if i32::try_from(i).is_ok() => dynasm!(self.ops ; .arch x64 ; mov Rq(dst), i as i32),
            Src::Imm(i) => dynasm!(self.ops ; .arch x64 ; mov Rq(dst), QWORD i),
            Src::Reg(r) => self.load_reg(dst, r),
        }
    }

    fn load_reg(&mut self, dst: u8, r: VReg) {
        if let Some(&value) = self.func.constants.get(&r) {
            return self.load(dst, Src::Imm(value));
        }
        // An exit computes a derived value from its base (which `Func::exit_uses` keeps live
        // there in its stead).
        if let (true, Some(&(base, offset))) = (self.in_stub, self.func.derived.get(&r)) {
            self.load_reg(dst, base);
            dynasm!(self.ops ; .arch x64 ; add Rq(dst), offset);
            return;
        }
        self.load_loc(dst, self.alloc.of(r));
    }

    /// Stores a scratch register into a virtual register's location.
    fn store(&mut self, r: VReg, src: u8) {
        self.store_loc(self.alloc.of(r), src);
    }

    fn call_address(&mut self, callee: Callee) {
        let address = callee.address as i64;
        dynasm!(self.ops ; .arch x64 ; mov rax, QWORD address ; call rax);
        if callee.returns_int {
            dynasm!(self.ops ; .arch x64 ; movsxd rax, eax);
        }
    }

    fn prologue(&mut self) {
        if let Some(direct) = self.ctx.direct {
            return self.direct_prologue(direct);
        }
        let size = self.frame_size;
        let l = self.ctx.layout;
        let (cframe, current, previous) = (l.tstate_cframe as i32, l.cframe_current_frame as i32, l.frame_previous as i32);
        dynasm!(self.ops
            ; .arch x64
            ; push rbp
            ; mov rbp, rsp
            ; push rbx
            ; push r12
            ; push r13
            ; push r14
            ; push r15
            ; sub rsp, size
            ; mov rbx, rsi
            ; mov QWORD [rbp + TSTATE_SLOT], rdi
            // Link the frame: frame->previous = cframe->current_frame; current_frame = frame.
            ; mov rax, QWORD [rdi + cframe]
            ; mov rcx, QWORD [rax + current]
            ; mov QWORD [rbx + previous], rcx
            ; mov QWORD [rax + current], rbx
        );
        // Bound flags start clear (each is set before it is read; this keeps a stray read
        // from seeing garbage).
        if uses_bound_flags(self.func) {
            for local in 0..self.func.nlocalsplus {
                let off = self.bound_flag_offset(local);
                dynasm!(self.ops ; .arch x64 ; mov QWORD [rbp + off], 0);
            }
        }
        self.enter_recursion();
    }

    /// A direct entry's prologue: saves the registers and arguments, and returns "not done"
    /// at once past the recursion limit or the native stack's depth limit (the interpreter,
    /// redoing the call, raises RecursionError there), else counts one level of recursion.
    fn direct_prologue(&mut self, direct: DirectEntry) {
        // The same frame layout as a frame entry (slots below the five register save
        // words), but only the callee-saved registers the code uses are saved.
        let saved = self.direct_saved.clone();
        let size = self.frame_size + SAVED_BYTES - 8 * saved.len() as i32;
        dynasm!(self.ops ; .arch x64 ; push rbp ; mov rbp, rsp);
        for &r in &saved {
            dynasm!(self.ops ; .arch x64 ; push Rq(r));
        }
        let (refuse, levels) = (self.refuse_label, direct.levels as i32);
        dynasm!(self.ops
            ; .arch x64
            ; sub rsp, size
            ; sub rdi, levels
            ; jl =>refuse
            // The budget left for this entry's own direct calls.
            ; mov QWORD [rbp + TSTATE_SLOT], rdi
        );
        for (i, &r) in DIRECT_ARG_REGS.iter().enumerate().take(direct.nargs as usize).skip(self.leading_args) {
            let off = 8 * i as i32;
            dynasm!(self.ops ; .arch x64 ; mov QWORD [rsp + off], Rq(r));
        }
    }

    /// A direct entry's epilogue: restores the registers its prologue saved.
    fn direct_epilogue(&mut self) {
        let below = -8 * self.direct_saved.len() as i32;
        dynasm!(self.ops ; .arch x64 ; lea rsp, [rbp + below]);
        for &r in self.direct_saved.clone().iter().rev() {
            dynasm!(self.ops ; .arch x64 ; pop Rq(r));
        }
        dynasm!(self.ops ; .arch x64 ; pop rbp ; ret);
    }

    /// As the interpreter starting a frame: count one level of Python recursion, and fail
    /// with RecursionError (returning NULL before running anything) past the limit.
    fn enter_recursion(&mut self) {
        let remaining = self.ctx.layout.tstate_recursion_remaining as i32;
        dynasm!(self.ops
            ; .arch x64
            ; mov rdi, QWORD [rbp + TSTATE_SLOT]
            ; mov eax, DWORD [rdi + remaining]
            ; lea ecx, [rax - 1]
            ; mov DWORD [rdi + remaining], ecx
            ; test eax, eax
            ; jg >ok
            ; lea rsi, [->empty_string]
        );
        self.call_address(self.ctx.check_recursion);
        dynasm!(self.ops
            ; .arch x64
            ; test eax, eax
            ; jz >ok
        );
        // _Py_CheckRecursiveCall gave the level back itself when it raised.
        self.unlink_frame();
        dynasm!(self.ops ; .arch x64 ; xor eax, eax);
        self.epilogue();
        dynasm!(self.ops ; .arch x64 ; ok:);
    }

    /// Gives back the recursion level taken by `enter_recursion`.
    fn leave_recursion(&mut self) {
        let remaining = self.ctx.layout.tstate_recursion_remaining as i32;
        dynasm!(self.ops
            ; .arch x64
            ; mov rdx, QWORD [rbp + TSTATE_SLOT]
            ; add DWORD [rdx + remaining], 1
        );
    }

    /// Restores the thread's current frame to our caller's.
    fn unlink_frame(&mut self) {
        let l = self.ctx.layout;
        let (cframe, current, previous) = (l.tstate_cframe as i32, l.cframe_current_frame as i32, l.frame_previous as i32);
        dynasm!(self.ops
            ; .arch x64
            ; mov rdx, QWORD [rbp + TSTATE_SLOT]
            ; mov rdx, QWORD [rdx + cframe]
            ; mov rcx, QWORD [rbx + previous]
            ; mov QWORD [rdx + current], rcx
        );
    }

    /// Returns rax to the caller.
    fn epilogue(&mut self) {
        if self.ctx.direct.is_some() {
            return self.direct_epilogue();
        }
        dynasm!(self.ops
            ; .arch x64
            ; lea rsp, [rbp - SAVED_BYTES]
            ; pop r15
            ; pop r14
            ; pop r13
            ; pop r12
            ; pop rbx
            ; pop rbp
            ; ret
        );
    }

    fn block(&mut self, b: usize) -> Result<(), EmitError> {
        let label = self.block_labels[b];
        self.current_block = b;
        dynasm!(self.ops ; .arch x64 ; =>label);
        let block = &self.func.blocks[b];
        // A comparison whose only use is the branch ending the block is fused into it.
        let fused = match (&block.term, block.insts.last()) {
            (Term::Branch { cond, .. }, Some(last)) if last.def() == Some(*cond) && self.uses[cond.index()] == 1 => {
                matches!(last, Inst::Compare { .. } | Inst::RangeHasNext { .. } | Inst::SetEq { .. })
            }
            _ => false,
        };
        // `x % 2**k == 0` (or `!=`) ending a block, x's remainder read by nothing else: the
        // branch tests the low bits (`test x, mask`); the remainder is never computed.
        let low_bits = if fused { self.low_bits_test(block) } else { None };
        let skip = if low_bits.is_some() { 2 } else { usize::from(fused) };
        let body = &block.insts[..block.insts.len() - skip];
        let mut i = 0;
        while i < body.len() {
            self.mark(Mark::Inst { block: b as u32, inst: i as u32 });
            // `a % b` and `a // b` side by side (`hir::cse::pair_divisions`): one division.
            if let (Inst::IntArith { op: first @ (IntOp::FloorDiv | IntOp::Mod), dst, a, b: d, exit }, Some(next)) =
                (&body[i], body.get(i + 1))
            {
                let other = if *first == IntOp::Mod { IntOp::FloorDiv } else { IntOp::Mod };
                if let Inst::IntArith { op, dst: dst2, a: a2, b: d2, exit: None } = next {
                    // Both results read (an unread one may share the other's register).
                    let read = self.uses[dst.index()] > 0 && self.uses[dst2.index()] > 0;
                    if *op == other && a2 == a && d2 == d && power_of_two(*d).is_none() && read {
                        let (quotient, remainder) = if *first == IntOp::FloorDiv { (*dst, *dst2) } else { (*dst2, *dst) };
                        self.mark(Mark::Inst { block: b as u32, inst: i as u32 + 1 });
                        self.int_divmod(quotient, remainder, *a, *d, *exit)?;
                        i += 2;
                        continue;
                    }
                }
            }
            // A float64 element read only by the float operation after it: the operation
            // reads it from memory (`mulsd x, [a + i*8]`: one instruction fewer).
            if let (Inst::LoadElement { dst: x, at, dtype: DType::F64 }, Some(Inst::FloatArith { op, dst, a, b: rb, exit: None })) =
                (&body[i], body.get(i + 1))
            {
                let other = match (*a == *x, *rb == *x) {
                    (false, true) => Some(*a),
                    (true, false) if matches!(op, FloatOp::Add | FloatOp::Mul) => Some(*rb),
                    _ => None,
                };
                if let (Some(other), 1, FloatOp::Add | FloatOp::Sub | FloatOp::Mul) = (other, self.uses[x.index()], op) {
                    self.mark(Mark::Inst { block: b as u32, inst: i as u32 + 1 });
                    self.float_op_with_element(*op, *dst, other, at);
                    i += 2;
                    continue;
                }
            }
            self.inst(&body[i])?;
            i += 1;
        }
        self.mark(Mark::Term(b as u32));
        match &block.term {
            Term::Jump(t) => self.jump(t, true),
            Term::Branch { cond, if_true, if_false } => {
                let false_label = if self.has_moves(if_false) {
                    None
                } else {
                    Some(self.block_labels[if_false.block])
                };
                let local = self.ops.new_dynamic_label();
                let target = false_label.unwrap_or(local);
                if let Some((x, mask, op)) = low_bits {
                    let rx = self.gpr_or_load(x, RAX);
                    match i32::try_from(mask) {
                        Ok(m) => dynasm!(self.ops ; .arch x64 ; test Rq(rx), m),
                        Err(_) => dynasm!(self.ops ; .arch x64 ; mov rcx, QWORD mask ; test Rq(rx), rcx),
                    }
                    // The remainder is 0 exactly when the masked bits are.
                    match op {
                        CompareOp::Eq => dynasm!(self.ops ; .arch x64 ; jnz =>target),
                        _ => dynasm!(self.ops ; .arch x64 ; jz =>target),
                    }
                } else if fused {
                    let last = block.insts.last().cloned();
                    if let Some(last) = last {
                        self.jump_unless(&last, target)?;
                    }
                } else {
                    self.load_reg(RAX, *cond);
                    dynasm!(self.ops ; .arch x64 ; test rax, rax ; jz =>target);
                }
                if false_label.is_some() {
                    self.jump(if_true, true);
                } else if if_true.block == self.current_block + 1 && !self.has_moves(if_true) {
                    // The true side is next: it falls through, the false side's moves wait
                    // out of line.
                    let back = local;
                    self.cold.push(Cold { slow: local, back, kind: ColdKind::Edge(if_false.clone()) });
                } else {
                    self.jump(if_true, false);
                    dynasm!(self.ops ; .arch x64 ; =>local);
                    self.jump(if_false, true);
                }
            }
            Term::Return(r) if self.ctx.direct.is_some() => {
                self.load_reg(RAX, *r);
                dynasm!(self.ops ; .arch x64 ; xor edx, edx);
                self.epilogue();
            }
            Term::Return(r) => {
                self.leave_recursion();
                self.unlink_frame();
                self.load_reg(RAX, *r);
                self.epilogue();
            }
            Term::Exit(x) => {
                let label = self.exit_labels[*x as usize];
                dynasm!(self.ops ; .arch x64 ; jmp =>label);
            }
        }
        Ok(())
    }

    /// For a block ending `r = x % 2**k; c = (r == 0)` (or `!=`; the constant on either side)
    /// and a branch on `c`, where `r` has no other reader (not even an exit): `(x, 2**k - 1,
    /// op)`. Python's floor modulo by a power of two is `x & mask` for every int, negative ones
    /// included (two's complement), so `r == 0` iff the low `k` bits of `x` are zero; the
    /// modulo by a positive constant cannot fail, so its exit is never taken.
    fn low_bits_test(&self, block: &crate::lir::Block) -> Option<(VReg, i64, CompareOp)> {
        let [.., Inst::IntArith { op: IntOp::Mod, dst: r, a: x, b, .. }, Inst::Compare { op, float: false, a, b: c, .. }] =
            &block.insts[..]
        else {
            return None;
        };
        let k = power_of_two(*b)?;
        let is_zero = |v: &VReg| self.func.constants.get(v) == Some(&0);
        let matches = (a == r && is_zero(c)) || (c == r && is_zero(a));
        if !matches || !matches!(op, CompareOp::Eq | CompareOp::Ne) || self.uses[r.index()] != 1 {
            return None;
        }
        if self.func.constants.contains_key(x) {
            return None; // folded before here in practice; keep the general path simple
        }
        Some((*x, (1i64 << k) - 1, *op))
    }

    /// Moves edge arguments into the target's parameters, then jumps.
    /// `last`: the jump ends the block's code, so a jump to the next block can fall through.
    fn jump(&mut self, t: &Target, last: bool) {
        let params = self.func.blocks[t.block].params.clone();
        let constant = |a: &VReg| self.func.constants.get(a).copied();
        let moves: Vec<(Location, Location)> = params
            .iter()
            .zip(&t.args)
            .filter(|(_, a)| constant(a).is_none())
            .map(|(p, a)| (self.alloc.of(*p), self.alloc.of(*a)))
            .filter(|(d, s)| d != s)
            .collect();
        let immediates: Vec<(Location, i64)> =
            params.iter().zip(&t.args).filter_map(|(p, a)| Some((self.alloc.of(*p), constant(a)?))).collect();
        self.parallel_move(moves);
        // Constant arguments have no register (see `regalloc::live_ranges`): written last, as
        // they read no location.
        for (dst, value) in immediates {
            self.move_immediate(dst, value);
        }
        if t.block <= self.current_block && self.rotate_loop(t.block) {
            return;
        }
        if !(last && t.block == self.current_block + 1) {
            let label = self.block_labels[t.block];
            dynasm!(self.ops ; .arch x64 ; jmp =>label);
        }
    }

    /// A back-edge to a loop header that only compares two ints and branches, staying in the
    /// loop by falling through to the next block: the comparison is repeated here, and the
    /// loop continues with one taken conditional jump (`cmp; jl body`) instead of a jump to
    /// the header and another out of it. Returns whether it did.
    fn rotate_loop(&mut self, header: usize) -> bool {
        let block = &self.func.blocks[header];
        let (Term::Branch { cond, if_true, if_false }, [Inst::Compare { op, float: false, dst, a, b }]) =
            (&block.term, &block.insts[..])
        else {
            return false;
        };
        if dst != cond || self.uses[cond.index()] != 1 || if_true.block != header + 1 || self.has_moves(if_true) || self.has_moves(if_false) {
            return false;
        }
        // Only a comparison of registers (or a constant) is worth repeating: one with operands
        // in memory grows the code for no fewer instructions (measured: nbody's outer loops).
        let in_register = |r: &VReg| self.gpr(*r).is_some() || self.func.constants.contains_key(r);
        if !in_register(a) || !in_register(b) {
            return false;
        }
        let (op, a, b) = (*op, *a, *b);
        let (body, out) = (self.block_labels[if_true.block], self.block_labels[if_false.block]);
        self.compare_ints(a, b);
        match op {
            CompareOp::Lt => dynasm!(self.ops ; .arch x64 ; jl =>body),
            CompareOp::Le => dynasm!(self.ops ; .arch x64 ; jle =>body),
            CompareOp::Eq => dynasm!(self.ops ; .arch x64 ; je =>body),
            CompareOp::Ne => dynasm!(self.ops ; .arch x64 ; jne =>body),
            CompareOp::Gt => dynasm!(self.ops ; .arch x64 ; jg =>body),
            CompareOp::Ge => dynasm!(self.ops ; .arch x64 ; jge =>body),
        }
        dynasm!(self.ops ; .arch x64 ; jmp =>out);
        true
    }

    /// `dst = value` (an integer or a float's bits, by the location's kind).
    fn move_immediate(&mut self, dst: Location, value: i64) {
        match dst {
            Location::Reg(d) => self.load(ALLOCATABLE[d as usize], Src::Imm(value)),
            Location::Xmm(i) if value == 0 => dynasm!(self.ops ; .arch x64 ; xorps Rx(2 + i), Rx(2 + i)),
            Location::Xmm(i) => {
                let label = self.float_constant(value);
                dynasm!(self.ops ; .arch x64 ; movsd Rx(2 + i), QWORD [=>label]);
            }
            Location::Stack(slot) => {
                let off = Self::slot_offset(slot);
                match i32::try_from(value) {
                    Ok(v) => dynasm!(self.ops ; .arch x64 ; mov QWORD [rbp + off], v),
                    Err(_) => {
                        self.load(RAX, Src::Imm(value));
                        dynasm!(self.ops ; .arch x64 ; mov QWORD [rbp + off], rax);
                    }
                }
            }
        }
    }

    fn move_loc(&mut self, dst: Location, src: Location) {
        match (dst, src) {
            (Location::Xmm(d), Location::Xmm(s)) if !self.in_stub => {
                if d != s {
                    dynasm!(self.ops ; .arch x64 ; movapd Rx(2 + d), Rx(2 + s));
                }
            }
            (Location::Xmm(d), Location::Stack(slot)) if !self.in_stub => {
                let off = Self::slot_offset(slot);
                dynasm!(self.ops ; .arch x64 ; movsd Rx(2 + d), QWORD [rbp + off]);
            }
            (Location::Stack(slot), Location::Xmm(s)) if !self.in_stub => {
                let off = Self::slot_offset(slot);
                dynasm!(self.ops ; .arch x64 ; movsd QWORD [rbp + off], Rx(2 + s));
            }
            (Location::Reg(d), Location::Reg(_)) if !self.in_stub => self.load_loc(ALLOCATABLE[d as usize], src),
            (Location::Reg(_), Location::Stack(_)) if !self.in_stub => {
                if let Location::Reg(d) = dst {
                    self.load_loc(ALLOCATABLE[d as usize], src);
                }
            }
            (Location::Stack(_), Location::Reg(s)) if !self.in_stub => self.store_loc(dst, ALLOCATABLE[s as usize]),
            _ => {
                self.load_loc(RAX, src);
                self.store_loc(dst, RAX);
            }
        }
    }

    /// Whether an edge needs moves for its parameters.
    fn has_moves(&self, t: &Target) -> bool {
        let params = &self.func.blocks[t.block].params;
        params
            .iter()
            .zip(&t.args)
            .any(|(p, a)| self.func.constants.contains_key(a) || self.alloc.of(*p) != self.alloc.of(*a))
    }

    /// Emits the test of a comparison (the last instruction of a block, used only by its
    /// branch) and a jump to `target` when it is false.
    fn jump_unless(&mut self, inst: &Inst, target: DynamicLabel) -> Result<(), EmitError> {
        match inst {
            Inst::Compare { op, float: false, a, b, .. } => {
                self.compare_ints(*a, *b);
                match op {
                    CompareOp::Lt => dynasm!(self.ops ; .arch x64 ; jge =>target),
                    CompareOp::Le => dynasm!(self.ops ; .arch x64 ; jg =>target),
                    CompareOp::Eq => dynasm!(self.ops ; .arch x64 ; jne =>target),
                    CompareOp::Ne => dynasm!(self.ops ; .arch x64 ; je =>target),
                    CompareOp::Gt => dynasm!(self.ops ; .arch x64 ; jle =>target),
                    CompareOp::Ge => dynasm!(self.ops ; .arch x64 ; jl =>target),
                }
            }
            Inst::Compare { op, float: true, a, b, .. } => {
                let (x0, x1) = (self.xmm_or_load(*a, 0), self.xmm_or_load(*b, 1));
                // NaN (unordered: ZF = PF = CF = 1) makes every comparison false but !=.
                match op {
                    CompareOp::Lt => dynasm!(self.ops ; .arch x64 ; ucomisd Rx(x1), Rx(x0) ; jbe =>target),
                    CompareOp::Le => dynasm!(self.ops ; .arch x64 ; ucomisd Rx(x1), Rx(x0) ; jb =>target),
                    CompareOp::Gt => dynasm!(self.ops ; .arch x64 ; ucomisd Rx(x0), Rx(x1) ; jbe =>target),
                    CompareOp::Ge => dynasm!(self.ops ; .arch x64 ; ucomisd Rx(x0), Rx(x1) ; jb =>target),
                    CompareOp::Eq => dynasm!(self.ops ; .arch x64 ; ucomisd Rx(x0), Rx(x1) ; jne =>target ; jp =>target),
                    CompareOp::Ne => dynasm!(self.ops ; .arch x64 ; ucomisd Rx(x0), Rx(x1) ; jp >true_ ; je =>target ; true_:),
                }
            }
            Inst::RangeHasNext { it, index, .. } => {
                let rit = self.gpr_or_load(*it, RAX);
                let rindex = self.gpr_or_load(*index, RDX);
                dynasm!(self.ops
                    ; .arch x64
                    ; cmp Rq(rindex), QWORD [Rq(rit) + 40]
                    ; jge =>target
                );
            }
            Inst::SetEq { a, b, negate, .. } => {
                self.load_reg(RAX, *a);
                self.load(RCX, *b);
                dynasm!(self.ops ; .arch x64 ; cmp rax, rcx);
                if *negate {
                    dynasm!(self.ops ; .arch x64 ; je =>target);
                } else {
                    dynasm!(self.ops ; .arch x64 ; jne =>target);
                }
            }
            other => return Err(EmitError::Assembler(format!("cannot fuse {other:?} into a branch"))),
        }
        Ok(())
    }

    /// Loads a location into a register (nothing if it is that register).
    fn load_loc(&mut self, reg: u8, src: Location) {
        match src {
            Location::Reg(i) if self.in_stub && i >= CALLEE_SAVED => {
                let off = self.save_slot(i);
                dynasm!(self.ops ; .arch x64 ; mov Rq(reg), QWORD [rbp + off]);
            }
            Location::Xmm(i) if self.in_stub => {
                let off = self.xmm_save_slot(i);
                dynasm!(self.ops ; .arch x64 ; mov Rq(reg), QWORD [rbp + off]);
            }
            Location::Xmm(i) => dynasm!(self.ops ; .arch x64 ; movq Rq(reg), Rx(2 + i)),
            Location::Reg(i) => {
                let s = ALLOCATABLE[i as usize];
                if s != reg {
                    dynasm!(self.ops ; .arch x64 ; mov Rq(reg), Rq(s));
                }
            }
            Location::Stack(s) => {
                let off = Self::slot_offset(s);
                dynasm!(self.ops ; .arch x64 ; mov Rq(reg), QWORD [rbp + off]);
            }
        }
    }

    /// Stores a register into a location (nothing if it is that register).
    fn store_loc(&mut self, dst: Location, reg: u8) {
        match dst {
            Location::Xmm(i) => dynasm!(self.ops ; .arch x64 ; movq Rx(2 + i), Rq(reg)),
            Location::Reg(i) => {
                let d = ALLOCATABLE[i as usize];
                if d != reg {
                    dynasm!(self.ops ; .arch x64 ; mov Rq(d), Rq(reg));
                }
            }
            Location::Stack(s) => {
                let off = Self::slot_offset(s);
                dynasm!(self.ops ; .arch x64 ; mov QWORD [rbp + off], Rq(reg));
            }
        }
    }

    /// Performs `dst <- src` for all pairs as if at once (sources are read before any
    /// destination is written), breaking cycles through r11.
    fn parallel_move(&mut self, mut moves: Vec<(Location, Location)>) {
        while !moves.is_empty() {
            // A move whose destination no other pending move reads can go now.
            if let Some(i) = (0..moves.len()).find(|&i| !moves.iter().any(|(_, s)| *s == moves[i].0)) {
                let (d, s) = moves.remove(i);
                self.move_loc(d, s);
                continue;
            }
            // Only cycles remain: park one destination's current value in r11 and let the
            // moves that read it read r11 instead.
            let (d, _) = moves[0];
            self.load_loc(R11, d);
            let parked = Location::Stack(u32::MAX);
            for m in &mut moves {
                if m.1 == d {
                    m.1 = parked;
                }
            }
            // Emit the now-unblocked chain; reads of `parked` come from r11.
            while let Some(i) = (0..moves.len()).find(|&i| !moves.iter().any(|(_, s)| *s == moves[i].0)) {
                let (dst, src) = moves.remove(i);
                if src == parked {
                    self.store_loc(dst, R11);
                } else {
                    self.move_loc(dst, src);
                }
            }
        }
    }

    fn inst(&mut self, inst: &Inst) -> Result<(), EmitError> {
        match inst {
            // A constant has no location: its readers rematerialise it.
            Inst::Move { dst, src: Src::Imm(_) } if self.func.constants.contains_key(dst) => {}
            Inst::Move { dst, src } => match (self.alloc.of(*dst), src) {
                (Location::Reg(d), Src::Imm(_)) => self.load(ALLOCATABLE[d as usize], *src),
                (Location::Xmm(i), Src::Imm(bits)) => {
                    let x = 2 + i;
                    if *bits == 0 {
                        dynasm!(self.ops ; .arch x64 ; xorps Rx(x), Rx(x));
                    } else {
                        let label = self.float_constant(*bits);
                        dynasm!(self.ops ; .arch x64 ; movsd Rx(x), QWORD [=>label]);
                    }
                }
                (_, Src::Reg(r)) if !self.func.constants.contains_key(r) => {
                    self.move_loc(self.alloc.of(*dst), self.alloc.of(*r))
                }
                _ => {
                    self.load(RAX, *src);
                    self.store(*dst, RAX);
                }
            },
            Inst::LoadFrame { dst, offset } => {
                let off = *offset as i32;
                dynasm!(self.ops ; .arch x64 ; mov rax, QWORD [rbx + off]);
                self.store(*dst, RAX);
            }
            Inst::StoreFrame { offset, src } => {
                self.load(RAX, *src);
                let off = *offset as i32;
                dynasm!(self.ops ; .arch x64 ; mov QWORD [rbx + off], rax);
            }
            Inst::Load { dst, base, offset } => {
                self.load_reg(RAX, *base);
                let off = *offset as i32;
                dynasm!(self.ops ; .arch x64 ; mov rax, QWORD [rax + off]);
                self.store(*dst, RAX);
            }
            Inst::Incref(r) => {
                self.load_reg(RAX, *r);
                dynasm!(self.ops ; .arch x64 ; add QWORD [rax], 1);
            }
            Inst::Decref { reg, at } => self.decref(*reg, false, *at),
            Inst::XDecref { reg, at } => self.decref(*reg, true, *at),
            Inst::Call { callee, args, ret } => {
                self.call(*callee, args)?;
                if let Some(r) = ret {
                    self.store(*r, RAX);
                }
            }
            Inst::SetEq { dst, a, b, negate } => {
                self.load_reg(RAX, *a);
                self.load(RCX, *b);
                dynasm!(self.ops ; .arch x64 ; cmp rax, rcx);
                if *negate {
                    dynasm!(self.ops ; .arch x64 ; setne al);
                } else {
                    dynasm!(self.ops ; .arch x64 ; sete al);
                }
                dynasm!(self.ops ; .arch x64 ; movzx eax, al);
                self.store(*dst, RAX);
            }
            Inst::Select { dst, cond, if_true, if_false } => {
                self.load(RAX, *if_false);
                self.load(RCX, *if_true);
                self.load_reg(2, *cond);
                dynasm!(self.ops ; .arch x64 ; test rdx, rdx ; cmovnz rax, rcx);
                self.store(*dst, RAX);
            }
            Inst::SetPrevInstr { offset } => {
                let address = self.ctx.code_units + 2 * i64::from(*offset);
                let field = self.ctx.layout.frame_prev_instr as i32;
                dynasm!(self.ops ; .arch x64 ; mov rax, QWORD address ; mov QWORD [rbx + field], rax);
            }
            Inst::ExitIfZero { value, exit } => {
                let label = self.exit_labels[*exit as usize];
                self.load_reg(RAX, *value);
                dynasm!(self.ops ; .arch x64 ; test rax, rax ; jz =>label);
            }
            Inst::ExitIfNegative { value, exit } => {
                let label = self.exit_labels[*exit as usize];
                self.load_reg(RAX, *value);
                dynasm!(self.ops ; .arch x64 ; test rax, rax ; js =>label);
            }
            Inst::ExitIfNullWithError { value, exit } => {
                let label = self.exit_labels[*exit as usize];
                self.load_reg(RAX, *value);
                dynasm!(self.ops ; .arch x64 ; test rax, rax ; jnz >ok);
                self.call_address(self.ctx.err_occurred);
                dynasm!(self.ops ; .arch x64 ; test rax, rax ; jnz =>label ; ok:);
            }
            Inst::Truth { dst, value, slow, constants: [t, f, n], exit, borrowed } => {
                let label = self.exit_labels[*exit as usize];
                let (t, f, n) = (*t, *f, *n);
                self.load_reg(RDI, *value);
                dynasm!(self.ops
                    ; .arch x64
                    ; mov rax, QWORD t
                    ; cmp rdi, rax
                    ; je >is_true
                    ; mov rax, QWORD f
                    ; cmp rdi, rax
                    ; je >is_false
                    ; mov rax, QWORD n
                    ; cmp rdi, rax
                    ; je >is_false
                );
                if let Some(at) = *borrowed {
                    // The reference the interpreter's stack holds, around the call (`__bool__`
                    // may look at reference counts); the call clobbers caller-saved registers
                    // anyway, so dropping it after needs no register saved but the result.
                    dynasm!(self.ops ; .arch x64 ; add QWORD [rdi], 1);
                    self.call_address(*slow);
                    self.load_reg(RDI, *value);
                    let at = self.ctx.code_units + 2 * i64::from(at);
                    let field = self.ctx.layout.frame_prev_instr as i32;
                    dynasm!(self.ops
                        ; .arch x64
                        ; sub QWORD [rdi], 1
                        ; jnz >released
                        ; push rax
                        ; push rax
                        ; mov rax, QWORD at
                        ; mov QWORD [rbx + field], rax
                    );
                    self.call_address(self.ctx.dealloc);
                    dynasm!(self.ops ; .arch x64 ; pop rax ; pop rax ; released:);
                } else {
                    self.call_address(*slow);
                }
                dynasm!(self.ops
                    ; .arch x64
                    ; test rax, rax
                    ; js =>label
                    ; jmp >done
                    ; is_true:
                    ; mov eax, 1
                    ; jmp >done
                    ; is_false:
                    ; xor eax, eax
                    ; done:
                );
                self.store(*dst, RAX);
            }
            Inst::ExitIfTracing { exit } => {
                let label = self.exit_labels[*exit as usize];
                let l = self.ctx.layout;
                let (cframe, tracing) = (l.tstate_cframe as i32, l.cframe_use_tracing as i32);
                dynasm!(self.ops
                    ; .arch x64
                    ; mov rax, QWORD [rbp + TSTATE_SLOT]
                    ; mov rax, QWORD [rax + cframe]
                    ; cmp BYTE [rax + tracing], 0
                    ; jne =>label
                );
            }
            Inst::IntArith { op, dst, a, b, exit } => self.int_arith(*op, *dst, *a, *b, *exit)?,
            Inst::FloatArith { op, dst, a, b, exit } => {
                if *op == FloatOp::Div {
                    self.load_reg(RCX, *b);
                }
                // `+` and `*` are commutative (IEEE 754: the same result either way; only
                // which NaN payload survives two NaN operands could differ, which C compilers
                // do not keep either): when the result shares b's register (a loop-carried
                // sum `s = x + s`), it is computed as `b op a` in place, without a copy.
                let commutative = matches!(op, FloatOp::Add | FloatOp::Mul);
                let (a, b) = match (self.xmm(*dst), self.xmm(*a), self.xmm(*b)) {
                    (Some(d), xa, Some(xb)) if commutative && d == xb && xa != Some(d) => (b, a),
                    _ => (a, b),
                };
                // A spilled b is read from its slot by the operation itself.
                if let (Location::Stack(slot), false, false) =
                    (self.alloc.of(*b), self.in_stub, self.func.constants.contains_key(b) || *op == FloatOp::Div)
                {
                    let off = Self::slot_offset(slot);
                    let w = self.xmm(*dst).unwrap_or(0);
                    self.load_float(w, *a);
                    match op {
                        FloatOp::Add => dynasm!(self.ops ; .arch x64 ; addsd Rx(w), QWORD [rbp + off]),
                        FloatOp::Sub => dynasm!(self.ops ; .arch x64 ; subsd Rx(w), QWORD [rbp + off]),
                        FloatOp::Mul => dynasm!(self.ops ; .arch x64 ; mulsd Rx(w), QWORD [rbp + off]),
                        _ => return Err(EmitError::Assembler(format!("float {op:?} is a runtime call"))),
                    }
                    self.store_float(*dst, w);
                    return Ok(());
                }
                // Computed in the result's register when it has one that is not b's (the
                // allocator keeps it apart from every value an exit reads).
                let xb = self.xmm_or_load(*b, 1);
                let w = self.xmm(*dst).filter(|&d| d != xb).unwrap_or(0);
                self.load_float(w, *a);
                match op {
                    FloatOp::Add => dynasm!(self.ops ; .arch x64 ; addsd Rx(w), Rx(xb)),
                    FloatOp::Sub => dynasm!(self.ops ; .arch x64 ; subsd Rx(w), Rx(xb)),
                    FloatOp::Mul => dynasm!(self.ops ; .arch x64 ; mulsd Rx(w), Rx(xb)),
                    FloatOp::Div => {
                        // Division by (either) zero raises ZeroDivisionError in Python.
                        let label = self.exit_label(*exit)?;
                        dynasm!(self.ops ; .arch x64 ; shl rcx, 1 ; jz =>label ; divsd Rx(w), Rx(xb));
                    }
                    _ => return Err(EmitError::Assembler(format!("float {op:?} is a runtime call"))),
                }
                self.store_float(*dst, w);
            }
            Inst::FloatPow { dst, a, b, exit } => {
                let exit = exit.map(|e| self.exit_labels[e as usize]);
                let pow = crate::runtime::libm_pow_address() as i64;
                let general = crate::runtime::rjit_rt_float_pow as *const () as i64;
                let deopt = crate::runtime::FLOAT_DEOPT as i64;
                self.load_reg(RAX, *a);
                self.load_reg(RCX, *b);
                dynasm!(self.ops
                    ; .arch x64
                    // The base's bits in 1..=0x7fef_ffff_ffff_ffff: positive and finite.
                    ; lea rdx, [rax - 1]
                    ; mov r8, QWORD 0x7fef_ffff_ffff_fffe
                    ; cmp rdx, r8
                    ; ja >general
                    // The exponent nonzero and finite (sign dropped).
                    ; mov rdx, rcx
                    ; shl rdx, 1
                    ; jz >general
                    ; mov r8, QWORD 0xffe0_0000_0000_0000u64 as i64
                    ; cmp rdx, r8
                    ; jae >general
                    ; movq xmm0, rax
                    ; movq xmm1, rcx
                );
                self.push_caller_saved();
                dynasm!(self.ops ; .arch x64 ; mov rax, QWORD pow ; call rax);
                self.pop_caller_saved();
                // A positive base gives +inf only by overflow (OverflowError).
                dynasm!(self.ops ; .arch x64 ; movq rax, xmm0 ; mov rcx, QWORD 0x7ff0_0000_0000_0000 ; cmp rax, rcx);
                if let Some(label) = exit {
                    dynasm!(self.ops ; .arch x64 ; je =>label);
                }
                dynasm!(self.ops ; .arch x64 ; jmp >done ; general:);
                self.push_caller_saved();
                dynasm!(self.ops ; .arch x64 ; mov rdi, rax ; mov rsi, rcx ; mov rax, QWORD general ; call rax);
                self.pop_caller_saved();
                dynasm!(self.ops ; .arch x64 ; mov rcx, QWORD deopt ; cmp rax, rcx);
                if let Some(label) = exit {
                    dynasm!(self.ops ; .arch x64 ; je =>label);
                }
                dynasm!(self.ops ; .arch x64 ; done:);
                self.store(*dst, RAX);
            }
            Inst::FloatNeg { dst, src } => {
                self.load_reg(RAX, *src);
                dynasm!(self.ops ; .arch x64 ; btc rax, 63);
                self.store(*dst, RAX);
            }
            Inst::IntToFloat { dst, src, exit } => {
                self.load_reg(RAX, *src);
                if let Some(e) = exit {
                    // Exact only for |x| <= 2**53: x + 2**53 must lie in [0, 2**54].
                    let label = self.exit_labels[*e as usize];
                    dynasm!(self.ops
                        ; .arch x64
                        ; mov rcx, QWORD 1i64 << 53
                        ; add rcx, rax
                        ; mov rdx, QWORD 1i64 << 54
                        ; cmp rcx, rdx
                        ; ja =>label
                    );
                }
                // xorps first: cvtsi2sd merges into xmm0, a false dependency on its last writer.
                dynasm!(self.ops ; .arch x64 ; xorps xmm0, xmm0 ; cvtsi2sd xmm0, rax);
                self.store_float(*dst, 0);
            }
            Inst::Compare { op, float, dst, a, b } => {
                if *float {
                    let (x0, x1) = (self.xmm_or_load(*a, 0), self.xmm_or_load(*b, 1));
                    // ucomisd sets ZF, PF and CF on NaN: every test below is then false,
                    // except !=.
                    match op {
                        CompareOp::Lt => dynasm!(self.ops ; .arch x64 ; ucomisd Rx(x1), Rx(x0) ; seta al),
                        CompareOp::Le => dynasm!(self.ops ; .arch x64 ; ucomisd Rx(x1), Rx(x0) ; setae al),
                        CompareOp::Gt => dynasm!(self.ops ; .arch x64 ; ucomisd Rx(x0), Rx(x1) ; seta al),
                        CompareOp::Ge => dynasm!(self.ops ; .arch x64 ; ucomisd Rx(x0), Rx(x1) ; setae al),
                        CompareOp::Eq => dynasm!(self.ops ; .arch x64 ; ucomisd Rx(x0), Rx(x1) ; sete al ; setnp cl ; and al, cl),
                        CompareOp::Ne => dynasm!(self.ops ; .arch x64 ; ucomisd Rx(x0), Rx(x1) ; setne al ; setp cl ; or al, cl),
                    }
                } else {
                    self.compare_ints(*a, *b);
                    match op {
                        CompareOp::Lt => dynasm!(self.ops ; .arch x64 ; setl al),
                        CompareOp::Le => dynasm!(self.ops ; .arch x64 ; setle al),
                        CompareOp::Eq => dynasm!(self.ops ; .arch x64 ; sete al),
                        CompareOp::Ne => dynasm!(self.ops ; .arch x64 ; setne al),
                        CompareOp::Gt => dynasm!(self.ops ; .arch x64 ; setg al),
                        CompareOp::Ge => dynasm!(self.ops ; .arch x64 ; setge al),
                    }
                }
                dynasm!(self.ops ; .arch x64 ; movzx eax, al);
                self.store(*dst, RAX);
            }
            Inst::GuardType { value, type_addr, exit } => {
                let label = self.exit_labels[*exit as usize];
                self.load_reg(RAX, *value);
                let type_addr = *type_addr;
                dynasm!(self.ops
                    ; .arch x64
                    ; mov rax, QWORD [rax + 8]
                    ; mov rcx, QWORD type_addr
                    ; cmp rax, rcx
                    ; jne =>label
                );
            }
            Inst::UnboxInt { dst, value, exit } => self.unbox_int(*dst, *value, *exit),
            Inst::ArrayIndex { dst, index, dim, exit } => {
                let label = self.exit_labels[*exit as usize];
                let rd = self.gpr_or_load(*dim, RCX);
                // Computed in the result's register when it has one other than dim's (the
                // allocator keeps it apart from the values the exit reads), else in rax.
                let w = self.gpr(*dst).filter(|&d| d != rd).unwrap_or(RAX);
                self.load_reg(w, *index);
                // A negative index counts from the end; anything still outside [0, dim) (as
                // an unsigned compare) leaves.
                dynasm!(self.ops
                    ; .arch x64
                    ; test Rq(w), Rq(w)
                    ; jns >in_range
                    ; add Rq(w), Rq(rd)
                    ; in_range:
                    ; cmp Rq(w), Rq(rd)
                    ; jae =>label
                );
                self.store(*dst, w);
            }
            // The loop's common case, a float64 at `base + i * 8`: one load, into its register.
            Inst::LoadElement { dst, at, dtype: DType::F64 } if at.offset.is_none() && at.index.is_some_and(|(_, s)| s == 8) => {
                let rb = self.gpr_or_load(at.base, RAX);
                let ri = self.gpr_or_load(at.index.expect("checked").0, RCX);
                let (x, d) = (self.xmm(*dst).unwrap_or(0), at.disp);
                dynasm!(self.ops ; .arch x64 ; movsd Rx(x), QWORD [Rq(rb) + Rq(ri) * 8 + d]);
                self.store_float(*dst, x);
            }
            Inst::LoadElement { dst, at, dtype } => {
                let (rb, ro) = self.element_address(at);
                let d = at.disp;
                match dtype {
                    // Straight into the result's SSE register when it has one.
                    DType::F64 => {
                        let x = self.xmm(*dst).unwrap_or(0);
                        dynasm!(self.ops ; .arch x64 ; movsd Rx(x), QWORD [Rq(rb) + Rq(ro) + d]);
                        self.store_float(*dst, x);
                    }
                    DType::F32 => {
                        let x = self.xmm(*dst).unwrap_or(0);
                        dynasm!(self.ops ; .arch x64 ; cvtss2sd Rx(x), DWORD [Rq(rb) + Rq(ro) + d]);
                        self.store_float(*dst, x);
                    }
                    DType::Bool => {
                        dynasm!(self.ops ; .arch x64 ; cmp BYTE [Rq(rb) + Rq(ro) + d], 0 ; setne al ; movzx eax, al);
                        self.store(*dst, RAX);
                    }
                    DType::I8 => {
                        dynasm!(self.ops ; .arch x64 ; movsx rax, BYTE [Rq(rb) + Rq(ro) + d]);
                        self.store(*dst, RAX);
                    }
                    DType::U8 => {
                        dynasm!(self.ops ; .arch x64 ; movzx eax, BYTE [Rq(rb) + Rq(ro) + d]);
                        self.store(*dst, RAX);
                    }
                    DType::I16 => {
                        dynasm!(self.ops ; .arch x64 ; movsx rax, WORD [Rq(rb) + Rq(ro) + d]);
                        self.store(*dst, RAX);
                    }
                    DType::U16 => {
                        dynasm!(self.ops ; .arch x64 ; movzx eax, WORD [Rq(rb) + Rq(ro) + d]);
                        self.store(*dst, RAX);
                    }
                    DType::I32 => {
                        dynasm!(self.ops ; .arch x64 ; movsxd rax, DWORD [Rq(rb) + Rq(ro) + d]);
                        self.store(*dst, RAX);
                    }
                    DType::U32 => {
                        dynasm!(self.ops ; .arch x64 ; mov eax, DWORD [Rq(rb) + Rq(ro) + d]);
                        self.store(*dst, RAX);
                    }
                    DType::I64 | DType::U64 => {
                        dynasm!(self.ops ; .arch x64 ; mov rax, QWORD [Rq(rb) + Rq(ro) + d]);
                        self.store(*dst, RAX);
                    }
                }
            }
            Inst::StoreElement { at, value, dtype } => {
                let (rb, ro) = self.element_address(at);
                let d = at.disp;
                match dtype {
                    DType::F64 => {
                        let x = self.xmm_or_load(*value, 0);
                        dynasm!(self.ops ; .arch x64 ; movsd QWORD [Rq(rb) + Rq(ro) + d], Rx(x));
                    }
                    DType::F32 => {
                        let x = self.xmm_or_load(*value, 0);
                        dynasm!(self.ops ; .arch x64 ; cvtsd2ss xmm1, Rx(x) ; movss DWORD [Rq(rb) + Rq(ro) + d], xmm1);
                    }
                    _ => {
                        let rv = self.gpr_or_load(*value, RDX);
                        match dtype.size() {
                            1 => dynasm!(self.ops ; .arch x64 ; mov BYTE [Rq(rb) + Rq(ro) + d], Rb(rv)),
                            2 => dynasm!(self.ops ; .arch x64 ; mov WORD [Rq(rb) + Rq(ro) + d], Rw(rv)),
                            4 => dynasm!(self.ops ; .arch x64 ; mov DWORD [Rq(rb) + Rq(ro) + d], Rd(rv)),
                            _ => dynasm!(self.ops ; .arch x64 ; mov QWORD [Rq(rb) + Rq(ro) + d], Rq(rv)),
                        }
                    }
                }
            }
            Inst::ExitIfFpFlags { exit } => {
                let label = self.exit_labels[*exit as usize];
                self.jump_if_fp_flags(label);
            }
            Inst::ClearFpFlags => {
                // Writing the register is slow: only when a flag is set.
                let off = self.fp_scratch_offset();
                dynasm!(self.ops
                    ; .arch x64
                    ; stmxcsr [rbp + off]
                    ; test BYTE [rbp + off], FP_REPORTED
                    ; jz >clear
                    ; and DWORD [rbp + off], !0x3f
                    ; ldmxcsr [rbp + off]
                    ; clear:
                );
            }
            Inst::ExitIfOutside { value, lo, hi, exit } => {
                let label = self.exit_labels[*exit as usize];
                let rv = self.gpr_or_load(*value, RAX);
                let (lo, hi) = (*lo, *hi);
                dynasm!(self.ops
                    ; .arch x64
                    ; mov rcx, QWORD lo
                    ; cmp Rq(rv), rcx
                    ; jl =>label
                    ; mov rcx, QWORD hi
                    ; cmp Rq(rv), rcx
                    ; jg =>label
                );
            }
            Inst::ExitIfEqual { value, imm, exit } => {
                let label = self.exit_labels[*exit as usize];
                self.load_reg(RAX, *value);
                let imm = *imm;
                dynasm!(self.ops ; .arch x64 ; mov rcx, QWORD imm ; cmp rax, rcx ; je =>label);
            }
            // CPython 3.11's rangeiterobject: index, start, step, len after the header
            // (checked once, at import: `compiler::probe_range_iter_layout`).
            Inst::RangeIndex { dst, it, type_addr } => {
                self.load_reg(RAX, *it);
                let type_addr = *type_addr;
                dynasm!(self.ops
                    ; .arch x64
                    ; mov rcx, QWORD [rax + 8]
                    ; mov rdx, QWORD type_addr
                    ; cmp rcx, rdx
                    ; mov rcx, -1
                    ; jne >other
                    ; mov rcx, QWORD [rax + 16]
                    ; other:
                );
                self.store(*dst, RCX);
            }
            Inst::RangeHasNext { dst, it, index } => {
                self.load_reg(RAX, *it);
                self.load_reg(RDX, *index);
                dynasm!(self.ops
                    ; .arch x64
                    ; cmp rdx, QWORD [rax + 40]
                    ; setl al
                    ; movzx eax, al
                );
                self.store(*dst, RAX);
            }
            Inst::RangeItem { dst, it, index } => {
                let rit = self.gpr_or_load(*it, RAX);
                let w = self.gpr(*dst).filter(|&d| d != rit).unwrap_or(RDX);
                self.load_reg(w, *index);
                dynasm!(self.ops
                    ; .arch x64
                    ; imul Rq(w), QWORD [Rq(rit) + 32]
                    ; add Rq(w), QWORD [Rq(rit) + 24]
                );
                self.store(*dst, w);
            }
            Inst::GuardIs { value, expected, exit } => {
                let label = self.exit_labels[*exit as usize];
                let r = self.gpr_or_load(*value, RAX);
                let expected = *expected;
                dynasm!(self.ops ; .arch x64 ; mov rcx, QWORD expected ; cmp Rq(r), rcx ; jne =>label);
            }
            Inst::GuardFunction { value, func, code, code_offset, exit } => {
                let label = self.exit_labels[*exit as usize];
                let r = self.gpr_or_load(*value, RAX);
                let (func, code, off) = (*func, *code, *code_offset as i32);
                dynasm!(self.ops
                    ; .arch x64
                    ; mov rcx, QWORD func
                    ; cmp Rq(r), rcx
                    ; jne =>label
                    ; mov rcx, QWORD code
                    ; cmp rcx, QWORD [Rq(r) + off]
                    ; jne =>label
                );
            }
            Inst::LoadGlobal { dst, globals, builtins, name, cache, slow } => {
                // The cache's value while both dicts keep the versions it saw (a version tag
                // is never reused, so a match also means the same dicts); else the lookup.
                // Nothing allocatable is touched on the way: the lookup (a C dictionary
                // lookup, no Python code) saves the caller-saved registers around itself, so
                // values live across a global's load (a loop's float sum) keep registers.
                let version = self.ctx.layout.dict_version as i32;
                let (name, cache) = (*name, *cache);
                self.load_reg(RDI, *globals);
                self.load_reg(RDX, *builtins);
                dynasm!(self.ops
                    ; .arch x64
                    ; mov rcx, QWORD cache
                    ; mov rax, QWORD [rdi + version]
                    ; cmp rax, QWORD [rcx]
                    ; jne >slow
                    ; mov rax, QWORD [rdx + version]
                    ; cmp rax, QWORD [rcx + 8]
                    ; jne >slow
                    ; mov rax, QWORD [rcx + 16]
                    ; test rax, rax
                    ; jz >slow
                    ; add QWORD [rax], 1
                    ; jmp >done
                    ; slow:
                );
                // (globals, builtins, name, cache) in rdi, rsi, rdx, rcx for the lookup.
                self.push_caller_saved();
                dynasm!(self.ops ; .arch x64 ; mov rsi, rdx ; mov rdx, QWORD name);
                self.call_address(*slow);
                self.pop_caller_saved();
                dynasm!(self.ops ; .arch x64 ; done:);
                self.store(*dst, RAX);
            }
            Inst::LoadModuleAttr { dst, obj, name, cache, slow } => {
                // The cache's value while the object is the module it saw (a module: the
                // cache never holds anything else, but its address could be reused) and the
                // module's dict has the version it saw; else the lookup.
                let module_type = std::ptr::addr_of_mut!(pyo3_ffi::PyModule_Type) as i64;
                let (dict_field, version) = (self.ctx.layout.module_dict as i32, self.ctx.layout.dict_version as i32);
                let (name, cache) = (*name, *cache);
                self.load_reg(RDI, *obj);
                dynasm!(self.ops
                    ; .arch x64
                    ; mov rdx, QWORD cache
                    ; cmp rdi, QWORD [rdx]
                    ; jne >slow
                    ; mov rax, QWORD module_type
                    ; cmp rax, QWORD [rdi + 8]
                    ; jne >slow
                    ; mov rax, QWORD [rdi + dict_field]
                    ; test rax, rax
                    ; jz >slow
                    ; mov rax, QWORD [rax + version]
                    ; cmp rax, QWORD [rdx + 8]
                    ; jne >slow
                );
                // (module, name, cache) in rdi, rsi, rdx for the lookup.
                self.cached_value_or_lookup(*dst, RDX, 6, name, *slow);
            }
            Inst::LoadBoundFlag { dst, local } => {
                let off = self.bound_flag_offset(*local);
                dynasm!(self.ops ; .arch x64 ; mov rax, QWORD [rbp + off]);
                self.store(*dst, RAX);
            }
            Inst::SetBoundFlag { local, bound } => {
                let off = self.bound_flag_offset(*local);
                let bound = i32::from(*bound);
                dynasm!(self.ops ; .arch x64 ; mov QWORD [rbp + off], bound);
            }
            Inst::BoxIfBound { dst, value, flag, callee, exit } => {
                self.load_reg(RAX, *flag);
                dynasm!(self.ops ; .arch x64 ; test rax, rax ; jz >done);
                self.load_reg(RDI, *value);
                self.call_address(*callee);
                if let Some(e) = exit {
                    let label = self.exit_labels[*e as usize];
                    dynasm!(self.ops ; .arch x64 ; test rax, rax ; jz =>label);
                }
                dynasm!(self.ops ; .arch x64 ; done:);
                self.store(*dst, RAX);
            }
            Inst::ListGetItem { dst, obj, index, slow, exit, at, borrowed } => {
                let list_type = std::ptr::addr_of_mut!(pyo3_ffi::PyList_Type) as i64;
                self.load_reg(RDI, *obj);
                self.load_reg(R8, *index);
                dynasm!(self.ops
                    ; .arch x64
                    ; mov rax, QWORD list_type
                    ; cmp rax, QWORD [rdi + 8]
                    ; jne >slow
                    ; cmp r8, QWORD [rdi + 16]
                    ; jae >slow
                    ; mov rax, QWORD [rdi + 24]
                    ; mov rax, QWORD [rax + r8 * 8]
                    ; add QWORD [rax], 1
                    ; jmp >done
                    ; slow:
                );
                self.list_slow_call(*slow, *at, *borrowed);
                if *borrowed {
                    // The result waits on the stack while the reference is dropped (not in
                    // its own location: that may be the container's, which dies here).
                    dynasm!(self.ops ; .arch x64 ; push rax ; push rax);
                    self.decref(*obj, false, *at);
                    dynasm!(self.ops ; .arch x64 ; pop rax ; pop rax);
                }
                if let Some(e) = exit {
                    let label = self.exit_labels[*e as usize];
                    dynasm!(self.ops ; .arch x64 ; test rax, rax ; jz =>label);
                }
                dynasm!(self.ops ; .arch x64 ; done:);
                self.store(*dst, RAX);
            }
            Inst::IterNext { dst, it, slow } => {
                // listiter_next's common case (offsets probed at import: index at 16, list
                // at 24; the list's size at 16 and items at 24); an exhausted iterator, the
                // end of the list and other iterators take the slow path.
                let list_iter_type = std::ptr::addr_of_mut!(pyo3_ffi::PyListIter_Type) as i64;
                self.load_reg(RDI, *it);
                dynasm!(self.ops
                    ; .arch x64
                    ; mov rax, QWORD list_iter_type
                    ; cmp rax, QWORD [rdi + 8]
                    ; jne >slow
                    ; mov rcx, QWORD [rdi + 24]
                    ; test rcx, rcx
                    ; jz >slow
                    ; mov rdx, QWORD [rdi + 16]
                    ; cmp rdx, QWORD [rcx + 16]
                    ; jge >slow
                    ; mov rax, QWORD [rcx + 24]
                    ; mov rax, QWORD [rax + rdx * 8]
                    ; add rdx, 1
                    ; mov QWORD [rdi + 16], rdx
                    ; add QWORD [rax], 1
                    ; jmp >done
                    ; slow:
                );
                self.call_address(*slow);
                dynasm!(self.ops ; .arch x64 ; done:);
                self.store(*dst, RAX);
            }
            Inst::UnboxFloatOwned { dst, value, dealloc } => {
                let fval = std::mem::offset_of!(pyo3_ffi::PyFloatObject, ob_fval) as i32;
                self.load_reg(RDI, *value);
                dynasm!(self.ops
                    ; .arch x64
                    ; mov rax, QWORD [rdi + fval]
                    ; sub QWORD [rdi], 1
                    ; jnz >done
                    // The last reference: the value waits on the stack (two words: aligned).
                    ; push rax
                    ; push rax
                );
                self.call_address(*dealloc);
                dynasm!(self.ops ; .arch x64 ; pop rax ; pop rax ; done:);
                self.store(*dst, RAX);
            }
            Inst::CallCFunction { dst, callable, arg, slow, check } => {
                let l = self.ctx.layout;
                let (remaining, exception) = (l.tstate_recursion_remaining as i32, l.tstate_exception as i32);
                let (def, self_, function) = (l.cfunction_def as i32, l.cfunction_self as i32, l.methoddef_function as i32);
                // rdi first: the argument may be in rsi, the callable not in rdi.
                self.load_reg(RDI, *callable);
                match arg {
                    Some(a) => self.load_reg(6, *a),
                    None => dynasm!(self.ops ; .arch x64 ; xor esi, esi),
                }
                dynasm!(self.ops
                    ; .arch x64
                    // _Py_EnterRecursiveCallTstate: the limit's handling is the helper's.
                    ; mov r8, QWORD [rbp + TSTATE_SLOT]
                    ; cmp DWORD [r8 + remaining], 0
                    ; jle >slow
                    ; sub DWORD [r8 + remaining], 1
                    // The callable stays on the stack for the result check (two words: the
                    // stack stays aligned).
                    ; push rdi
                    ; push rdi
                    ; mov rax, QWORD [rdi + def]
                    ; mov rdi, QWORD [rdi + self_]
                    ; call QWORD [rax + function]
                    ; pop rsi
                    ; pop rsi
                    ; mov rdi, QWORD [rbp + TSTATE_SLOT]
                    ; add DWORD [rdi + remaining], 1
                    ; test rax, rax
                    ; jz >check
                    ; cmp QWORD [rdi + exception], 0
                    ; je >done
                    ; check:
                    // _Py_CheckFunctionResult(tstate, callable, result, NULL)
                    ; mov rdx, rax
                    ; xor ecx, ecx
                );
                self.call_address(*check);
                dynasm!(self.ops ; .arch x64 ; jmp >done ; slow:);
                self.call_address(*slow);
                dynasm!(self.ops ; .arch x64 ; done:);
                self.store(*dst, RAX);
            }
            Inst::LoadItem { dst, obj, index, tuple, float, exit } => {
                // As BINARY_SUBSCR_LIST_INT / _TUPLE_INT read an item, then its value as the
                // guard of its type would: no reference is taken, nothing runs.
                let label = self.exit_labels[*exit as usize];
                let (seq_type, items) = if *tuple {
                    (std::ptr::addr_of_mut!(pyo3_ffi::PyTuple_Type) as i64, self.ctx.layout.tuple_items as i32)
                } else {
                    (std::ptr::addr_of_mut!(pyo3_ffi::PyList_Type) as i64, 0)
                };
                let size = std::mem::offset_of!(pyo3_ffi::PyVarObject, ob_size) as i32;
                let ro = self.gpr_or_load(*obj, RDI);
                self.load_reg(RDX, *index);
                dynasm!(self.ops
                    ; .arch x64
                    ; mov rax, QWORD seq_type
                    ; cmp rax, QWORD [Rq(ro) + 8]
                    ; jne =>label
                    ; test rdx, rdx
                    ; jns >in_range
                    ; add rdx, QWORD [Rq(ro) + size]
                    ; in_range:
                    ; cmp rdx, QWORD [Rq(ro) + size]
                    ; jae =>label
                );
                if *tuple {
                    dynasm!(self.ops ; .arch x64 ; mov rax, QWORD [Rq(ro) + rdx * 8 + items]);
                } else {
                    let ob_item = std::mem::offset_of!(pyo3_ffi::PyListObject, ob_item) as i32;
                    dynasm!(self.ops ; .arch x64 ; mov rax, QWORD [Rq(ro) + ob_item] ; mov rax, QWORD [rax + rdx * 8]);
                }
                if *float {
                    let float_type = std::ptr::addr_of_mut!(pyo3_ffi::PyFloat_Type) as i64;
                    let fval = std::mem::offset_of!(pyo3_ffi::PyFloatObject, ob_fval) as i32;
                    let x = self.xmm(*dst).unwrap_or(0);
                    dynasm!(self.ops
                        ; .arch x64
                        ; mov rcx, QWORD float_type
                        ; cmp rcx, QWORD [rax + 8]
                        ; jne =>label
                        ; movsd Rx(x), QWORD [rax + fval]
                    );
                    self.store_float(*dst, x);
                } else {
                    let long_type = std::ptr::addr_of_mut!(pyo3_ffi::PyLong_Type) as i64;
                    dynasm!(self.ops
                        ; .arch x64
                        ; mov rcx, QWORD long_type
                        ; cmp rcx, QWORD [rax + 8]
                        ; jne =>label
                        ; mov rdi, rax
                    );
                    self.unbox_int_rdi(*dst, Some(*exit));
                }
            }
            Inst::ListSetItem { obj, index, value, float: true, slow, exit, at, borrowed } => {
                // A float object that only the list references takes the new value in place:
                // nothing else can see the change (floats have no weak references), and no
                // object is made or freed. Otherwise the helper boxes the value and stores it.
                let list_type = std::ptr::addr_of_mut!(pyo3_ffi::PyList_Type) as i64;
                let float_type = std::ptr::addr_of_mut!(pyo3_ffi::PyFloat_Type) as i64;
                let fval = std::mem::offset_of!(pyo3_ffi::PyFloatObject, ob_fval) as i32;
                self.load_reg(RDI, *obj);
                self.load_reg(R8, *index);
                self.load_reg(RDX, *value);
                dynasm!(self.ops
                    ; .arch x64
                    ; mov rax, QWORD list_type
                    ; cmp rax, QWORD [rdi + 8]
                    ; jne >slow
                    ; cmp r8, QWORD [rdi + 16]
                    ; jae >slow
                    ; mov rax, QWORD [rdi + 24]
                    ; mov rax, QWORD [rax + r8 * 8]
                    ; mov rcx, QWORD float_type
                    ; cmp rcx, QWORD [rax + 8]
                    ; jne >slow
                    ; cmp QWORD [rax], 1
                    ; jne >slow
                    ; mov QWORD [rax + fval], rdx
                    ; jmp >done
                    ; slow:
                );
                self.list_store_slow_path(*obj, *slow, *exit, *at, *borrowed);
                dynasm!(self.ops ; .arch x64 ; done:);
            }
            Inst::ListSetItem { obj, index, value, slow, exit, at, borrowed, .. } => {
                let list_type = std::ptr::addr_of_mut!(pyo3_ffi::PyList_Type) as i64;
                let at_address = self.ctx.code_units + 2 * i64::from(*at);
                let field = self.ctx.layout.frame_prev_instr as i32;
                self.load_reg(RDI, *obj);
                self.load_reg(R8, *index);
                self.load_reg(RDX, *value);
                dynasm!(self.ops
                    ; .arch x64
                    ; mov rax, QWORD list_type
                    ; cmp rax, QWORD [rdi + 8]
                    ; jne >slow
                    ; cmp r8, QWORD [rdi + 16]
                    ; jae >slow
                    ; mov rax, QWORD [rdi + 24]
                    ; lea rax, [rax + r8 * 8]
                    ; mov rdi, QWORD [rax]
                    // Storing the object already there changes nothing (its count would go
                    // up and down again; the list's reference keeps it alive): no write to
                    // the list or to the object (`flags[j] = False` over False).
                    ; cmp rdi, rdx
                    ; je >done
                    ; add QWORD [rdx], 1
                    ; mov QWORD [rax], rdx
                    // Last: releasing the old item may run a destructor.
                    ; sub QWORD [rdi], 1
                    ; jnz >done
                    ; mov rax, QWORD at_address
                    ; mov QWORD [rbx + field], rax
                );
                if *borrowed {
                    // The destructor sees the list referenced as the interpreter has it.
                    self.load_reg(RCX, *obj);
                    dynasm!(self.ops ; .arch x64 ; add QWORD [rcx], 1);
                }
                self.push_caller_saved();
                self.call_address(self.ctx.dealloc);
                self.pop_caller_saved();
                if *borrowed {
                    self.decref(*obj, false, *at);
                }
                dynasm!(self.ops ; .arch x64 ; jmp >done ; slow:);
                self.list_store_slow_path(*obj, *slow, *exit, *at, *borrowed);
                dynasm!(self.ops ; .arch x64 ; done:);
            }
            Inst::CheckEvalBreaker { exit, .. } if self.ctx.direct.is_some() => {
                // Signals and GIL requests are served by the interpreter redoing the call.
                let (address, label) = (self.ctx.eval_breaker, self.exit_labels[*exit as usize]);
                dynasm!(self.ops
                    ; .arch x64
                    ; mov rax, QWORD address
                    ; cmp DWORD [rax], 0
                    ; jne =>label
                );
            }
            Inst::CallDirect { dst, args, target, exit } => {
                if args.len() > DIRECT_ARG_REGS.len() {
                    return Err(EmitError::TooManyArguments);
                }
                let label = self.exit_labels[*exit as usize];
                // Last to first: rsi, the only argument register the allocator hands out, is
                // loaded last (see `Inst::loads_arguments_safely`).
                for (a, &r) in args.iter().zip(&DIRECT_ARG_REGS).rev() {
                    self.load_reg(r, *a);
                }
                if self.ctx.direct.is_some() {
                    dynasm!(self.ops ; .arch x64 ; mov rdi, QWORD [rbp + TSTATE_SLOT]);
                } else {
                    // The budget of the chain: the levels the thread's recursion limit and
                    // the native stack's depth limit leave.
                    let l = self.ctx.layout;
                    let (remaining, limit) = (l.tstate_recursion_remaining as i32, l.tstate_recursion_limit as i32);
                    let depth_limit = i64::from(crate::hook::depth_limit());
                    dynasm!(self.ops
                        ; .arch x64
                        ; mov rax, QWORD [rbp + TSTATE_SLOT]
                        ; movsxd rdi, DWORD [rax + remaining]
                        ; movsxd r11, DWORD [rax + limit]
                        ; mov rax, QWORD depth_limit
                        ; sub rax, r11
                        ; add rax, rdi
                        ; cmp rax, rdi
                        ; cmovl rdi, rax
                    );
                }
                if *target == 0 {
                    let entry = self.self_label;
                    dynasm!(self.ops ; .arch x64 ; call =>entry);
                } else {
                    let target = *target;
                    dynasm!(self.ops ; .arch x64 ; mov rax, QWORD target ; call rax);
                }
                dynasm!(self.ops ; .arch x64 ; test rdx, rdx ; jnz =>label);
                self.store(*dst, RAX);
            }
            Inst::DirectArg { dst, index } if (*index as usize) < self.leading_args => {
                // Still in its argument register (see `leading_args`).
                self.store(*dst, DIRECT_ARG_REGS[*index as usize]);
            }
            Inst::DirectArg { dst, index } => {
                let off = 8 * *index as i32;
                dynasm!(self.ops ; .arch x64 ; mov rax, QWORD [rsp + off]);
                self.store(*dst, RAX);
            }
            Inst::CheckEvalBreaker { exit, resume, leave } => {
                let address = self.ctx.eval_breaker;
                let at = self.ctx.code_units + 2 * i64::from(self.func.exits[*exit as usize].offset);
                let (slow, back) = (self.ops.new_dynamic_label(), self.ops.new_dynamic_label());
                dynasm!(self.ops
                    ; .arch x64
                    ; mov rax, QWORD address
                    ; cmp DWORD [rax], 0
                    ; jne =>slow
                    ; =>back
                );
                self.cold.push(Cold { slow, back, kind: ColdKind::EvalBreaker { at, exit: *exit, resume: *resume, leave: *leave } });
            }
        }
        Ok(())
    }

    fn exit_label(&self, exit: Option<u32>) -> Result<DynamicLabel, EmitError> {
        exit.map(|e| self.exit_labels[e as usize])
            .ok_or_else(|| EmitError::Assembler("a failing machine operation has no exit".into()))
    }

    /// Python's int operators on 64-bit machine ints; a result Python would make a big int
    /// (or an exception) leaves through `exit`.
    fn int_arith(&mut self, op: IntOp, dst: VReg, a: VReg, b: Src, exit: Option<u32>) -> Result<(), EmitError> {
        // A constant first operand of a commutative operator becomes the immediate (`3 * x`).
        let commutative = matches!(op, IntOp::Add | IntOp::Mul | IntOp::And | IntOp::Or | IntOp::Xor);
        let (a, b) = match (self.func.constants.get(&a), b) {
            (Some(&c), Src::Reg(r)) if commutative && !self.func.constants.contains_key(&r) => (r, Src::Imm(c)),
            _ => (a, b),
        };
        // The second operand straight from its register when it has one.
        let rb = match b {
            Src::Reg(r) => self.gpr(r),
            Src::Imm(_) => None,
        };
        let simple = matches!(op, IntOp::And | IntOp::Or | IntOp::Xor | IntOp::Add | IntOp::Sub | IntOp::Mul);
        if simple {
            // Two-address form in the result's register when it has one that is not b's (the
            // allocator keeps it apart from every value an exit reads, so a failed check
            // leaves the operands intact).
            // Without an overflow check the flags are not needed: a sum into a register other
            // than the first operand's is one `lea` instead of `mov` + `add`.
            if let (IntOp::Add | IntOp::Sub, None, Some(d), Some(ra)) = (op, exit, self.gpr(dst), self.gpr(a)) {
                if d != ra {
                    match (op, b, rb) {
                        (IntOp::Add, Src::Imm(i), _) if i32::try_from(i).is_ok() => {
                            dynasm!(self.ops ; .arch x64 ; lea Rq(d), [Rq(ra) + i as i32]);
                            return Ok(());
                        }
                        (IntOp::Sub, Src::Imm(i), _) if i != i64::from(i32::MIN) && i32::try_from(i).is_ok() => {
                            dynasm!(self.ops ; .arch x64 ; lea Rq(d), [Rq(ra) - i as i32]);
                            return Ok(());
                        }
                        (IntOp::Add, Src::Reg(_), Some(y)) => {
                            dynasm!(self.ops ; .arch x64 ; lea Rq(d), [Rq(ra) + Rq(y)]);
                            return Ok(());
                        }
                        _ => {}
                    }
                }
            }
            let w = self.gpr(dst).filter(|&d| Some(d) != rb).unwrap_or(RAX);
            let imm = match b {
                Src::Imm(i) => i32::try_from(i).ok(),
                Src::Reg(_) => None,
            };
            // imul has a three-operand form: no copy of a first.
            let three_operand = match (op, imm, self.gpr(a)) {
                (IntOp::Mul, Some(_), Some(ra)) => Some(ra),
                _ => None,
            };
            if three_operand.is_none() {
                self.load_reg(w, a);
            }
            let overflow = if matches!(op, IntOp::Add | IntOp::Sub | IntOp::Mul) && exit.is_some() {
                Some(self.exit_label(exit)?)
            } else {
                None
            };
            if let Some(i) = imm {
                match op {
                    IntOp::And => dynasm!(self.ops ; .arch x64 ; and Rq(w), i),
                    IntOp::Or => dynasm!(self.ops ; .arch x64 ; or Rq(w), i),
                    IntOp::Xor => dynasm!(self.ops ; .arch x64 ; xor Rq(w), i),
                    IntOp::Add => dynasm!(self.ops ; .arch x64 ; add Rq(w), i),
                    IntOp::Sub => dynasm!(self.ops ; .arch x64 ; sub Rq(w), i),
                    _ => {
                        let source = three_operand.unwrap_or(w);
                        dynasm!(self.ops ; .arch x64 ; imul Rq(w), Rq(source), i)
                    }
                }
            } else {
                let y = match rb {
                    Some(r) => r,
                    None => {
                        self.load(RCX, b);
                        RCX
                    }
                };
                match op {
                    IntOp::And => dynasm!(self.ops ; .arch x64 ; and Rq(w), Rq(y)),
                    IntOp::Or => dynasm!(self.ops ; .arch x64 ; or Rq(w), Rq(y)),
                    IntOp::Xor => dynasm!(self.ops ; .arch x64 ; xor Rq(w), Rq(y)),
                    IntOp::Add => dynasm!(self.ops ; .arch x64 ; add Rq(w), Rq(y)),
                    IntOp::Sub => dynasm!(self.ops ; .arch x64 ; sub Rq(w), Rq(y)),
                    _ => dynasm!(self.ops ; .arch x64 ; imul Rq(w), Rq(y)),
                }
            }
            if let Some(label) = overflow {
                // The result overwrote `a` (its register: the allocator lets them share, see
                // `regalloc::undoable_operand`): out of line, undo the wrapped `± imm` before
                // leaving, so the exit finds `a`.
                let undo = match (op, imm) {
                    (IntOp::Add | IntOp::Sub, Some(i)) if self.gpr(a) == Some(w) => Some(i),
                    _ => None,
                };
                if let Some(i) = undo {
                    let slow = self.ops.new_dynamic_label();
                    dynasm!(self.ops ; .arch x64 ; jo =>slow);
                    let kind = ColdKind::Undo { reg: w, imm: i, add: op == IntOp::Sub };
                    self.cold.push(Cold { slow, back: label, kind });
                } else {
                    dynasm!(self.ops ; .arch x64 ; jo =>label);
                }
            }
            self.store(dst, w);
            return Ok(());
        }
        // By a power of two, floor division is an arithmetic shift and the floor modulo a
        // mask, exactly (neither can fail): in the result's register.
        if let (IntOp::FloorDiv | IntOp::Mod, Some(k)) = (op, power_of_two(b)) {
            let w = self.gpr(dst).unwrap_or(RAX);
            self.load_reg(w, a);
            if op == IntOp::FloorDiv {
                dynasm!(self.ops ; .arch x64 ; sar Rq(w), k as i8);
            } else {
                let mask = (1i64 << k) - 1;
                match i32::try_from(mask) {
                    Ok(m) => dynasm!(self.ops ; .arch x64 ; and Rq(w), m),
                    Err(_) => dynasm!(self.ops ; .arch x64 ; mov rcx, QWORD mask ; and Rq(w), rcx),
                }
            }
            self.store(dst, w);
            return Ok(());
        }
        if matches!(op, IntOp::FloorDiv | IntOp::Mod) {
            self.floor_divide(a, b, exit)?;
            let result = if op == IntOp::Mod { RDX } else { RAX };
            self.store(dst, result);
            return Ok(());
        }
        self.load_reg(RAX, a);
        self.load(RCX, b);
        match op {
            IntOp::And | IntOp::Or | IntOp::Xor | IntOp::Add | IntOp::Sub | IntOp::Mul => {
                return Err(EmitError::Assembler(format!("{op:?} is emitted in two-address form")));
            }
            IntOp::FloorDiv | IntOp::Mod => unreachable!("divisions are emitted by floor_divide"),
            IntOp::Lshift => {
                // Negative counts raise; bits shifted out mean a big int: both leave.
                let label = self.exit_label(exit)?;
                dynasm!(self.ops
                    ; .arch x64
                    ; cmp rcx, 63
                    ; ja =>label
                    ; mov rdx, rax
                    ; shl rdx, cl
                    ; mov r8, rdx
                    ; sar r8, cl
                    ; cmp r8, rax
                    ; jne =>label
                    ; mov rax, rdx
                );
            }
            IntOp::Rshift => {
                let label = self.exit_label(exit)?;
                dynasm!(self.ops
                    ; .arch x64
                    ; test rcx, rcx
                    ; js =>label
                    ; cmp rcx, 63
                    ; jbe >shift
                    ; mov ecx, 63
                    ; shift:
                    ; sar rax, cl
                );
            }
        }
        self.store(dst, RAX);
        Ok(())
    }

    /// Python's floor division of `a` by `b`: the quotient in rax, the remainder in rdx.
    fn floor_divide(&mut self, a: VReg, b: Src, exit: Option<u32>) -> Result<(), EmitError> {
        self.load_reg(RAX, a);
        self.load(RCX, b);
        // Zero divisors raise; MIN // -1 overflows (and idiv would fault): both leave.
        let label = self.exit_label(exit)?;
        dynasm!(self.ops
            ; .arch x64
            ; test rcx, rcx
            ; jz =>label
            ; cmp rcx, -1
            ; jne >divide
            ; mov rdx, QWORD i64::MIN
            ; cmp rax, rdx
            ; je =>label
            ; divide:
            ; cqo
            ; idiv rcx
            // C truncates; Python floors: when the remainder's sign differs from the
            // divisor's, q -= 1 and r += b.
            ; test rdx, rdx
            ; jz >done
            ; mov r8, rdx
            ; xor r8, rcx
            ; jns >done
            ; sub rax, 1
            ; add rdx, rcx
            ; done:
        );
        Ok(())
    }

    /// `a // b` and `a % b` of the same operands, from one division. The results' registers
    /// are neither rax nor rdx (not allocatable), and `a` and `b` are loaded before either
    /// is written.
    fn int_divmod(&mut self, quotient: VReg, remainder: VReg, a: VReg, b: Src, exit: Option<u32>) -> Result<(), EmitError> {
        self.floor_divide(a, b, exit)?;
        self.store(remainder, RDX);
        self.store(quotient, RAX);
        Ok(())
    }

    /// The value of an exact int: inline for up to two 30-bit digits (CPython 3.11's
    /// `ob_size`/`ob_digit`); larger ones leave through `exit`, or (without an exit, for ints
    /// known to fit) go through `PyLong_AsLongLong`.
    fn unbox_int(&mut self, dst: VReg, value: VReg, exit: Option<u32>) {
        self.load_reg(RDI, value);
        self.unbox_int_rdi(dst, exit);
    }

    /// `unbox_int` of the exact int in rdi.
    fn unbox_int_rdi(&mut self, dst: VReg, exit: Option<u32>) {
        let size = std::mem::offset_of!(pyo3_ffi::PyVarObject, ob_size) as i32;
        let digits = self.ctx.layout.long_digits as i32;
        dynasm!(self.ops
            ; .arch x64
            ; mov rax, QWORD [rdi + size]
            ; test rax, rax
            ; jz >done
            ; mov rdx, rax
            ; sar rdx, 63
            ; xor rax, rdx
            ; sub rax, rdx
            ; cmp rax, 2
            ; ja >slow
            ; mov ecx, DWORD [rdi + digits]
            ; cmp rax, 1
            ; je >one
            ; mov eax, DWORD [rdi + digits + 4]
            ; shl rax, 30
            ; or rcx, rax
            ; one:
            ; xor rcx, rdx
            ; sub rcx, rdx
            ; mov rax, rcx
            ; jmp >done
            ; slow:
        );
        match exit {
            Some(e) => {
                let label = self.exit_labels[e as usize];
                dynasm!(self.ops ; .arch x64 ; jmp =>label);
            }
            None => self.call_address(self.ctx.long_as_i64),
        }
        dynasm!(self.ops ; .arch x64 ; done:);
        self.store(dst, RAX);
    }

    /// rax = a new reference to the object for the machine value in rdi.
    /// Boxes machine value `r` (of type `ty`, in rdi) in exit `x`'s stub: as a NumPy scalar
    /// if the exit says so (see `lir::Exit::numpy`).
    fn box_rdi_for(&mut self, ty: Type, r: VReg, x: usize) {
        if self.func.exits[x].bool_lists.lists.contains(&r) {
            // A list of bools kept as bytes: the list made from it (the same one each time).
            let address = crate::runtime::rjit_rt_bool_list_box as *const () as i64;
            dynasm!(self.ops ; .arch x64 ; mov rax, QWORD address ; call rax);
            return;
        }
        let numpy = self.func.exits[x].numpy.iter().find(|(v, _)| *v == r).map(|(_, flag)| *flag);
        let Some(flag) = numpy else { return self.box_rdi(ty) };
        match flag {
            Some(f) => self.load_reg(RSI, f),
            None => dynasm!(self.ops ; .arch x64 ; mov esi, 1),
        }
        let address = match ty {
            Type::F64 => crate::runtime::rjit_rt_box_np_f64 as *const () as i64,
            Type::CBool => crate::runtime::rjit_rt_box_np_bool as *const () as i64,
            _ => crate::runtime::rjit_rt_box_np_i64 as *const () as i64,
        };
        dynasm!(self.ops ; .arch x64 ; mov rax, QWORD address ; call rax);
    }

    fn box_rdi(&mut self, ty: Type) {
        let callee = match ty {
            Type::F64 => self.ctx.box_f64,
            Type::CBool => self.ctx.box_bool,
            _ => self.ctx.box_i64,
        };
        self.call_address(callee);
    }

    /// `Py_DECREF` (`Py_XDECREF` if `maybe_null`); a dying object's destructor finds the frame
    /// at code unit `at`.
    fn decref(&mut self, r: VReg, maybe_null: bool, at: u32) {
        self.load_reg(RDI, r);
        if maybe_null {
            dynasm!(self.ops ; .arch x64 ; test rdi, rdi ; jz >done);
        }
        let at = self.ctx.code_units + 2 * i64::from(at);
        let field = self.ctx.layout.frame_prev_instr as i32;
        if !self.in_stub {
            let (slow, back) = (self.ops.new_dynamic_label(), self.ops.new_dynamic_label());
            dynasm!(self.ops ; .arch x64 ; sub QWORD [rdi], 1 ; jz =>slow ; =>back);
            self.cold.push(Cold { slow, back, kind: ColdKind::Dealloc { at } });
            if maybe_null {
                dynasm!(self.ops ; .arch x64 ; done:);
            }
            return;
        }
        dynasm!(self.ops
            ; .arch x64
            ; sub QWORD [rdi], 1
            ; jnz >done
            ; mov rax, QWORD at
            ; mov QWORD [rbx + field], rax
        );
        self.push_caller_saved();
        self.call_address(self.ctx.dealloc);
        self.pop_caller_saved();
        dynasm!(self.ops ; .arch x64 ; done:);
    }

    fn call(&mut self, callee: Callee, args: &[Arg]) -> Result<(), EmitError> {
        if args.len() > ARG_REGS.len() {
            return Err(EmitError::TooManyArguments);
        }
        // Arrays first: filling them uses rax.
        for arg in args {
            if let Arg::Array(items) = arg {
                for (i, item) in items.iter().enumerate() {
                    self.load(RAX, *item);
                    let off = 8 * i as i32;
                    dynasm!(self.ops ; .arch x64 ; mov QWORD [rsp + off], rax);
                }
            }
        }
        for (arg, &reg) in args.iter().zip(&ARG_REGS) {
            match arg {
                Arg::Val(src) => self.load(reg, *src),
                Arg::Array(_) => dynasm!(self.ops ; .arch x64 ; mov Rq(reg), rsp),
            }
        }
        self.call_address(callee);
        Ok(())
    }

    fn exit_stub(&mut self, x: usize) -> Result<(), EmitError> {
        let label = self.exit_labels[x];
        dynasm!(self.ops ; .arch x64 ; =>label);
        if self.ctx.direct.is_some() {
            // "Not done": nothing to write back, no frame.
            if x == 0 {
                let refuse = self.refuse_label;
                dynasm!(self.ops ; .arch x64 ; =>refuse);
            }
            dynasm!(self.ops ; .arch x64 ; mov edx, 1);
            self.epilogue();
            return Ok(());
        }
        // In a loop checking floating-point exceptions only when left (see
        // `hir::Exit::redo_from`), first thing: an eval-breaker check's exits were checked
        // before its pending calls ran.
        if let Some(redo) = self.func.exits[x].redo_from {
            if !self.eval_breaker_exits.contains(&(x as u32)) {
                self.jump_if_fp_flags(self.exit_labels[redo as usize]);
            }
        }
        // The stub calls C functions: park the caller-saved registers first.
        self.in_stub = false;
        for i in CALLEE_SAVED..ALLOCATABLE.len() as u8 {
            let off = self.save_slot(i);
            let r = ALLOCATABLE[i as usize];
            dynasm!(self.ops ; .arch x64 ; mov QWORD [rbp + off], Rq(r));
        }
        let used: Vec<u8> = self
            .func
            .exit_uses(&self.func.exits[x])
            .into_iter()
            .filter_map(|r| match self.alloc.of(r) {
                Location::Xmm(i) => Some(i),
                _ => None,
            })
            .collect();
        for i in used {
            let off = self.xmm_save_slot(i);
            dynasm!(self.ops ; .arch x64 ; movsd QWORD [rbp + off], Rx(2 + i));
        }
        self.in_stub = true;
        let exit: &Exit = &self.func.exits[x];
        // References the compiled code did not take for stack values: taken now, first.
        for &r in &exit.borrowed {
            self.load_reg(RAX, r);
            dynasm!(self.ops ; .arch x64 ; add QWORD [rax], 1);
        }
        if let Some(index) = exit.deopt_index {
            let code = self.ctx.code_object;
            dynasm!(self.ops ; .arch x64 ; mov rdi, QWORD code ; mov esi, index as i32);
            self.call_address(self.ctx.note_deopt);
        }
        // Range and array loops keep their position in a register: store it back into the
        // iterator (a range iterator's `index` and a sequence iterator's `it_index` are both
        // the first word after the header).
        for &(it, index) in &exit.range_positions {
            self.load_reg(RAX, it);
            self.load_reg(RCX, index);
            let range_type = std::ptr::addr_of_mut!(pyo3_ffi::PyRangeIter_Type) as i64;
            let seq_type = std::ptr::addr_of_mut!(pyo3_ffi::PySeqIter_Type) as i64;
            dynasm!(self.ops
                ; .arch x64
                ; mov rdx, QWORD range_type
                ; cmp rdx, QWORD [rax + 8]
                ; je >store
                ; mov rdx, QWORD seq_type
                ; cmp rdx, QWORD [rax + 8]
                ; jne >other
                ; store:
                ; mov QWORD [rax + 16], rcx
                ; other:
            );
        }
        if let Some((callee, args)) = &exit.prelude {
            let args: Vec<Arg> = args.iter().map(|a| Arg::Val(*a)).collect();
            self.call(*callee, &args)?;
        }
        for &(r, maybe_null) in &exit.release {
            self.decref(r, maybe_null, exit.offset);
        }
        let l = self.ctx.layout;
        let nlocals = self.func.nlocalsplus;
        for (d, (r, machine)) in exit.stack.iter().enumerate() {
            let made = exit.range_iters.iter().find(|(i, _)| *i as usize == d).map(|(_, regs)| *regs);
            let list_iter = exit.bool_lists.iters.iter().find(|(i, _)| *i as usize == d).map(|(_, regs)| *regs);
            match machine {
                // An iterator over a list of bools kept as bytes, made now at its position.
                _ if list_iter.is_some() => {
                    let args: Vec<Arg> = list_iter.into_iter().flatten().map(|r| Arg::Val(Src::Reg(r))).collect();
                    let address = crate::runtime::rjit_rt_bool_list_iter_at as *const () as usize;
                    self.call(Callee { name: "rjit_rt_bool_list_iter_at", address, returns_int: false }, &args)?;
                }
                // A range iterator the compiled loop never made, made now at its position.
                _ if made.is_some() => {
                    let args: Vec<Arg> = made.into_iter().flatten().map(|r| Arg::Val(Src::Reg(r))).collect();
                    let address = crate::runtime::rjit_rt_range_iter_at as *const () as usize;
                    self.call(Callee { name: "rjit_rt_range_iter_at", address, returns_int: false }, &args)?;
                }
                None => self.load_reg(RAX, *r),
                Some(ty) => {
                    self.load_reg(RDI, *r);
                    self.box_rdi_for(*ty, *r, x);
                }
            }
            let off = (l.frame_localsplus + 8 * (nlocals + d as u32)) as i32;
            dynasm!(self.ops ; .arch x64 ; mov QWORD [rbx + off], rax);
        }
        // Machine values of locals: boxed and swapped into their slots (which hold NULL or a
        // stale reference of their own, released here).
        let at = self.ctx.code_units + 2 * i64::from(exit.offset);
        let prev_field = l.frame_prev_instr as i32;
        for &(slot, r, ty, flag) in &exit.locals {
            if let Some(local) = flag {
                let off = self.bound_flag_offset(local);
                dynasm!(self.ops ; .arch x64 ; mov rax, QWORD [rbp + off] ; test rax, rax ; jz >unbound);
            }
            self.load_reg(RDI, r);
            self.box_rdi_for(ty, r, x);
            dynasm!(self.ops ; .arch x64 ; unbound:);
            let off = (l.frame_localsplus + 8 * slot) as i32;
            dynasm!(self.ops
                ; .arch x64
                ; mov rdi, QWORD [rbx + off]
                ; mov QWORD [rbx + off], rax
                ; test rdi, rdi
                ; jz >done
                ; sub QWORD [rdi], 1
                ; jnz >done
                ; mov rax, QWORD at
                ; mov QWORD [rbx + prev_field], rax
            );
            self.call_address(self.ctx.dealloc);
            dynasm!(self.ops ; .arch x64 ; done:);
        }
        // Lists of bools kept as bytes are in the frame now: their buffers go.
        for &r in &exit.bool_lists.lists {
            self.load_reg(RDI, r);
            let address = crate::runtime::rjit_rt_bool_list_free as *const () as i64;
            dynasm!(self.ops ; .arch x64 ; mov rax, QWORD address ; call rax);
        }
        let stacktop = (nlocals as usize + exit.stack.len()) as i32;
        let stacktop_field = l.frame_stacktop as i32;
        // The interpreter raises at prev_instr, or resumes with the instruction after it.
        let unit = match exit.kind {
            ExitKind::Raise => i64::from(exit.offset),
            ExitKind::Resume | ExitKind::Deopt => i64::from(exit.offset) - 1,
        };
        let prev_instr = self.ctx.code_units + 2 * unit;
        let prev_field = l.frame_prev_instr as i32;
        let throwflag = i32::from(exit.kind == ExitKind::Raise);
        dynasm!(self.ops
            ; .arch x64
            ; mov DWORD [rbx + stacktop_field], stacktop
            ; mov rax, QWORD prev_instr
            ; mov QWORD [rbx + prev_field], rax
        );
        // The interpreter counts the frame's recursion level itself.
        self.leave_recursion();
        self.unlink_frame();
        if exit.kind == ExitKind::Raise {
            dynasm!(self.ops ; .arch x64 ; mov rdi, QWORD [rbp + TSTATE_SLOT]);
            self.call_address(self.ctx.before_raise_exit);
        }
        dynasm!(self.ops
            ; .arch x64
            ; mov rdi, QWORD [rbp + TSTATE_SLOT]
            ; mov rsi, rbx
            ; mov edx, throwflag
        );
        self.call_address(self.ctx.eval_frame_default);
        self.epilogue();
        Ok(())
    }
}

/// Whether the function keeps bound flags of locals in its native frame.
/// Whether `func` reads or clears floating-point exception flags.
fn uses_fp_flags(func: &Func) -> bool {
    let insts = func.blocks.iter().flat_map(|b| &b.insts);
    insts.clone().any(|i| matches!(i, Inst::ExitIfFpFlags { .. } | Inst::ClearFpFlags))
        || func.exits.iter().any(|e| e.redo_from.is_some())
}

fn uses_bound_flags(func: &Func) -> bool {
    let insts = func.blocks.iter().flat_map(|b| &b.insts);
    insts.clone().any(|i| matches!(i, Inst::SetBoundFlag { .. } | Inst::LoadBoundFlag { .. }))
        || func.exits.iter().any(|e| e.locals.iter().any(|l| l.3.is_some()))
}


/// `k` if the operand is the constant `2**k` (k in 0..63).
fn power_of_two(b: Src) -> Option<u32> {
    match b {
        Src::Imm(v) if v > 0 && (v & (v - 1)) == 0 => Some(v.trailing_zeros()),
        _ => None,
    }
}
