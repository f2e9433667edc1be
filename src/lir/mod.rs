//! LIR: the low-level IR between HIR and machine code.
//!
//! Architecture-independent: virtual registers (`%n`), calls of C functions by address, frame
//! field loads and stores by byte offset, inline reference counting, and guards that leave
//! through an exit. `lower` makes it from HIR (deciding which C function implements each
//! operation), `regalloc` gives every virtual register a machine register or a stack slot, and
//! `backend::current` turns the result into machine code. Blocks keep SSA block parameters;
//! the backend resolves them into moves on each edge.

pub mod fp_clears;
pub mod loops;
pub mod lower;
pub mod liveness;
pub mod regalloc;
#[cfg(test)]
mod test_support;
pub mod unroll;

use smallvec::SmallVec;
use std::fmt;

use crate::hir::{CompareOp, ExitKind, FloatOp, IntOp, Type};

/// A virtual register holding a pointer-sized value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VReg(pub u32);

impl VReg {
    /// The register as a vector index.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

impl fmt::Display for VReg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "%{}", self.0)
    }
}

/// An operand: a register or a 64-bit constant (often an object's address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Src {
    Reg(VReg),
    Imm(i64),
}

impl fmt::Display for Src {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Src::Reg(r) => write!(f, "{r}"),
            Src::Imm(i) => write!(f, "{i:#x}"),
        }
    }
}

/// A call argument: a value, or the address of a temporary array holding several.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arg {
    Val(Src),
    Array(Vec<Src>),
}

/// A C function the generated code calls, by address, with a name for dumps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Callee {
    pub name: &'static str,
    pub address: usize,
    /// The function returns a C `int` (sign-extended to a register), not a pointer.
    pub returns_int: bool,
}

/// The address of an array element: `base + offset + index * scale + disp` (an index scaled
/// by 1, 2, 4 or 8: an element size the addressing of the machine does without a
/// multiplication; `disp`: bytes, e.g. the `+ 1` of `a[i + 1]` in an unrolled loop).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ElementAddress {
    pub base: VReg,
    pub offset: Option<VReg>,
    pub index: Option<(VReg, u8)>,
    pub disp: i32,
}

impl ElementAddress {
    fn regs(&self) -> SmallVec<[VReg; 4]> {
        std::iter::once(self.base).chain(self.offset).chain(self.index.map(|(r, _)| r)).collect()
    }
}

impl fmt::Display for ElementAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.base)?;
        if let Some(o) = self.offset {
            write!(f, " + {o}")?;
        }
        if let Some((i, scale)) = self.index {
            write!(f, " + {i}*{scale}")?;
        }
        if self.disp != 0 {
            write!(f, " + {}", self.disp)?;
        }
        Ok(())
    }
}

/// An exit's index (the same numbering as the HIR exits).
pub type ExitIndex = u32;

/// An instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inst {
    Move { dst: VReg, src: Src },
    /// `dst = *(frame + offset)`.
    LoadFrame { dst: VReg, offset: u32 },
    /// `*(frame + offset) = src`.
    StoreFrame { offset: u32, src: Src },
    /// `dst = *(base + offset)`.
    Load { dst: VReg, base: VReg, offset: u32 },
    Incref(VReg),
    /// `Py_DECREF`; if the object dies, the frame's current instruction is set to code unit
    /// `at` first (its destructor may look at the frame's line).
    Decref { reg: VReg, at: u32 },
    /// `Py_XDECREF`, likewise.
    XDecref { reg: VReg, at: u32 },
    /// Calls a C function with up to six arguments (at most one `Arg::Array`).
    Call { callee: Callee, args: Vec<Arg>, ret: Option<VReg> },
    /// `dst = (a == b)`, or `(a != b)` when `negate`: 0 or 1.
    SetEq { dst: VReg, a: VReg, b: Src, negate: bool },
    /// `dst = cond ? if_true : if_false`.
    Select { dst: VReg, cond: VReg, if_true: Src, if_false: Src },
    /// Records the instruction (code unit) being executed in the frame, so that code called
    /// from here sees the right line in tracebacks, warnings and `sys._getframe()`.
    SetPrevInstr { offset: u32 },
    /// Leaves through `exit` if `value` is 0 (a NULL result: an exception is set).
    ExitIfZero { value: VReg, exit: ExitIndex },
    /// Leaves through `exit` if `value` is negative (a C `int` error result).
    ExitIfNegative { value: VReg, exit: ExitIndex },
    /// Leaves through `exit` if `value` is 0 and an exception is set (a NULL that may also mean
    /// "no more items").
    ExitIfNullWithError { value: VReg, exit: ExitIndex },
    /// Serves the interpreter's eval breaker (signals, GIL hand-off); leaves through `exit` if
    /// that raised.
    /// With `leave`, leaves through `resume` once the breaker has run (see
    /// `hir::Op::CheckEvalBreaker`).
    CheckEvalBreaker { exit: ExitIndex, resume: ExitIndex, leave: bool },
    /// Leaves through `exit` if tracing or profiling is on.
    ExitIfTracing { exit: ExitIndex },
    /// `dst = bool(value)` as 0/1, as `POP_JUMP_IF_*` tests it: True, False and None by
    /// identity inline, anything else through `slow` (a C int function: 1, 0 or -1 on error,
    /// which leaves through `exit`).
    Truth { dst: VReg, value: VReg, slow: Callee, constants: [i64; 3], exit: ExitIndex, borrowed: Option<u32> },

    // ---- machine values ----
    /// `dst = a op b` on 64-bit ints with Python's result, or leave through `exit` where that
    /// does not fit or raises (overflow, division by zero, negative shift).
    IntArith { op: IntOp, dst: VReg, a: VReg, b: Src, exit: Option<ExitIndex> },
    /// `dst = a op b` on floats (IEEE bits in general registers) for `+ - * /`; `/` leaves
    /// through `exit` when `b` is zero. (`//`, `%` and `**` are runtime calls.)
    FloatArith { op: FloatOp, dst: VReg, a: VReg, b: VReg, exit: Option<ExitIndex> },
    /// `dst = a ** b` on floats with Python's result (`float_pow`): C's `pow` inline for a
    /// positive finite base and a finite nonzero exponent (where `float_pow` is `pow`, and
    /// raises only for an infinite result: then leaves through `exit`), else the runtime's
    /// `float_pow` (whose cases that raise or give a complex number leave too). The calls
    /// save the caller-saved registers: values live across one stay in registers.
    FloatPow { dst: VReg, a: VReg, b: VReg, exit: Option<ExitIndex> },
    /// `dst = -src` of a float (sign bit).
    FloatNeg { dst: VReg, src: VReg },
    /// `dst = float(src)`; with `exit`, leaves unless |src| <= 2**53 (exact).
    IntToFloat { dst: VReg, src: VReg, exit: Option<ExitIndex> },
    /// `dst = a op b` as 0/1, on ints or (with `float`) floats with Python's NaN rules.
    Compare { op: CompareOp, float: bool, dst: VReg, a: VReg, b: VReg },
    /// Leaves through `exit` unless `Py_TYPE(value)` is the type object at `type_addr`.
    GuardType { value: VReg, type_addr: i64, exit: ExitIndex },
    /// `dst` = the value of an exact int; leaves through `exit` (if any) when it may not fit
    /// 64 bits (more than two 30-bit digits).
    UnboxInt { dst: VReg, value: VReg, exit: Option<ExitIndex> },
    /// Leaves through `exit` if `value` equals `imm`.
    ExitIfEqual { value: VReg, imm: i64, exit: ExitIndex },
    /// `dst` = the position of a `range_iterator` (3.11 layout), -1 if `it` is not one.
    RangeIndex { dst: VReg, it: VReg, type_addr: i64 },
    /// `dst = index < len(it)` for a range iterator (checked when the loop was entered).
    RangeHasNext { dst: VReg, it: VReg, index: VReg },
    /// `dst = start + index * step` of a range iterator.
    RangeItem { dst: VReg, it: VReg, index: VReg },
    /// `dst = callee(value)` (a boxing function) if `flag` is set, else NULL; leaves through
    /// `exit` if boxing fails.
    BoxIfBound { dst: VReg, value: VReg, flag: VReg, callee: Callee, exit: Option<ExitIndex> },
    /// `dst` = local `local`'s bound flag (a word in the native frame, see
    /// `hir::Function::bound_flags`).
    LoadBoundFlag { dst: VReg, local: u32 },
    /// Sets local `local`'s bound flag.
    SetBoundFlag { local: u32, bound: bool },
    /// `dst` = a new reference to a global (NULL with an exception if missing): the value in
    /// `cache` (a `runtime::GlobalCache`) while both dicts have the versions it saw, else the
    /// `slow` lookup `(globals, builtins, name, cache)`.
    LoadGlobal { dst: VReg, globals: VReg, builtins: VReg, name: i64, cache: i64, slow: Callee },
    /// `dst` = a new reference to `obj.name` (NULL with an exception on failure): the value in
    /// `cache` (a `runtime::AttrCache`) while `obj` is the module it saw and its dict has the
    /// version it saw, else the `slow` lookup `(obj, name, cache)`.
    LoadModuleAttr { dst: VReg, obj: VReg, name: i64, cache: i64, slow: Callee },
    /// Exit unless `value` is the object at `func` whose code (at `code_offset`) is `code`.
    GuardFunction { value: VReg, func: i64, code: i64, code_offset: u32, exit: ExitIndex },
    /// Exit unless `value` is the object at `expected`.
    GuardIs { value: VReg, expected: i64, exit: ExitIndex },
    /// `dst = obj[index]` (new reference): inline for an exact list and 0 <= index < len,
    /// else `slow(obj, index)`; leaves through `exit` on NULL.
    /// `dst = obj[index]`, inline for exact lists. `borrowed`: take a reference to `obj`
    /// around the slow path (see `hir::Op::GetItemInt`). `at`: the frame's instruction while
    /// the slow path runs.
    ListGetItem { dst: VReg, obj: VReg, index: VReg, slow: Callee, exit: Option<ExitIndex>, at: u32, borrowed: bool },
    /// FOR_ITER's next item (a new reference, or NULL): a list iterator's inline, as
    /// `listiter_next` takes it while the list has one (the list is read afresh each time, so
    /// changes made during the loop are seen); anything else through `slow`
    /// (`rjit_rt_iter_next`).
    IterNext { dst: VReg, it: VReg, slow: Callee },
    /// A builtin's C function called inline on its self and `arg` (None: NULL), as
    /// `rjit_shim_call_cfunction` does: the thread's recursion count around it, and
    /// `check` (`_Py_CheckFunctionResult`) unless there is a result and no exception.
    /// `slow` (that helper) makes the call when the recursion limit is near.
    CallCFunction { dst: VReg, callable: VReg, arg: Option<VReg>, slow: Callee, check: Callee },
    /// The value of exact float `value`, whose reference is released (`dealloc`: the float
    /// type's destructor, called when it was the last).
    UnboxFloatOwned { dst: VReg, value: VReg, dealloc: Callee },
    /// `obj[index] = value`: inline for an exact list and 0 <= index < len (the old item is
    /// released, the frame's instruction at code unit `at`), else `slow(obj, index, value)`
    /// (a C int status); leaves through `exit` on failure.
    /// `obj[index] = value`, inline for exact lists. With `float`, `value` is a machine float:
    /// a float object only the list holds takes it in place, else it is boxed.
    /// `dst` = `index` as NumPy takes it on an axis of length `dim` (`index + dim` if
    /// negative); leaves through `exit` unless `0 <= dst < dim`.
    ArrayIndex { dst: VReg, index: VReg, dim: VReg, exit: ExitIndex },
    /// `dst` = the element of type `dtype` at `at`: a float64 into a float register, an
    /// int64 as it is, a bool as 0 or 1.
    LoadElement { dst: VReg, at: ElementAddress, dtype: crate::numpy::DType },
    /// Stores `value` as an element of type `dtype` at `at`: a float register for float
    /// dtypes (float32 rounds it), the low bytes of an int for the others.
    StoreElement { at: ElementAddress, value: VReg, dtype: crate::numpy::DType },
    /// Leaves through `exit` unless `lo <= value <= hi`.
    ExitIfOutside { value: VReg, lo: i64, hi: i64, exit: ExitIndex },
    /// Leaves through `exit` if a floating-point exception NumPy reports (invalid, divide by
    /// zero, overflow, underflow) is flagged (see `hir::Op::GuardFpFlags`).
    ExitIfFpFlags { exit: ExitIndex },
    /// Clears the floating-point exception flags NumPy reports, if any is set.
    ClearFpFlags,
    /// `dst` = item `index` (negative counts from the end) of exact list (or, with `tuple`,
    /// exact tuple) `obj`, as a machine float (with `float`) or int, no reference taken;
    /// leaves through `exit` for another container, an index out of range, or an item that
    /// is not an exact float (an exact int that fits 64 bits).
    LoadItem { dst: VReg, obj: VReg, index: VReg, tuple: bool, float: bool, exit: ExitIndex },
    ListSetItem {
        obj: VReg,
        index: VReg,
        value: VReg,
        float: bool,
        slow: Callee,
        exit: Option<ExitIndex>,
        at: u32,
        borrowed: bool,
    },
    /// `dst` = the result of the direct entry at `target` (0: this function's own entry)
    /// called with machine arguments; leaves through `exit` when it reports "not done" (see
    /// `hir::direct`).
    CallDirect { dst: VReg, args: Vec<VReg>, target: i64, exit: ExitIndex },
    /// In a direct entry: `dst` = machine argument `index`.
    DirectArg { dst: VReg, index: u32 },
}

/// A jump target with the values for its parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub block: usize,
    pub args: Vec<VReg>,
}

/// How a block ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Term {
    Jump(Target),
    /// Branch on a register being nonzero.
    Branch { cond: VReg, if_true: Target, if_false: Target },
    Return(VReg),
    Exit(ExitIndex),
}

/// A block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    pub params: Vec<VReg>,
    pub insts: Vec<Inst>,
    pub term: Term,
    /// Code unit of the bytecode instruction that ends the block (see `hir::Block::end_at`).
    pub end_at: u32,
}

/// How an exit hands the frame to the interpreter (see `hir::Exit`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exit {
    pub kind: ExitKind,
    /// Code unit of the instruction the interpreter raises at or resumes with.
    pub offset: u32,
    /// Called first (e.g. to set the exception of a failed check).
    pub prelude: Option<(Callee, Vec<Src>)>,
    /// References to release, with whether each may be NULL.
    pub release: Vec<(VReg, bool)>,
    /// The value stack, written into the frame; machine values (with their type) are boxed.
    pub stack: Vec<(VReg, Option<Type>)>,
    /// Locals whose value is a machine value: (slot, value, type, local whose bound flag
    /// says whether it is bound). Each is boxed (NULL if the flag is clear) and swapped into
    /// its slot (the old contents released).
    pub locals: Vec<(u32, VReg, Type, Option<u32>)>,
    /// Counted as a deoptimisation (`ExitKind::Deopt`), with this exit index.
    pub deopt_index: Option<u32>,
    /// Range iterators whose position is in a register: (iterator, position) stored back.
    pub range_positions: Vec<(VReg, VReg)>,
    /// Range iterators never made (`hir::Op::RangeIterVirtual`), made here for the stack
    /// entry at this index: from start, step, length and position.
    pub range_iters: Vec<(u32, [VReg; 4])>,
    /// Stack objects the exit takes a reference to (see `hir::Exit::borrowed`).
    pub borrowed: Vec<VReg>,
    /// Machine values of the stack and locals that box to NumPy scalars, always or when a
    /// flag register is set (see `hir::Function::numpy_boxes`).
    pub numpy: Vec<(VReg, Option<VReg>)>,
    /// Lists of bools kept as bytes that the frame holds (see `BoolListExit`).
    pub bool_lists: BoolListExit,
    /// The exit taken instead if floating-point exceptions are flagged (see
    /// `hir::Exit::redo_from`): checked first thing by the exit's stub, or, for an
    /// eval-breaker check's exits, before the pending calls run.
    pub redo_from: Option<ExitIndex>,
}

/// What an exit makes of the lists of bools kept as bytes (`hir::Op::BoolListNew`) its frame
/// holds: each list, made once from its buffer for all the places holding it (its local, a
/// stack entry: those are machine values of the exit, boxed as the list), and its buffer
/// freed once the frame is written; and the list iterators never made
/// (`hir::Op::BoolListIter`) on the stack.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BoolListExit {
    /// The lists' buffers.
    pub lists: Vec<VReg>,
    /// Iterators: the stack entry, the list's buffer and the position.
    pub iters: Vec<(u32, [VReg; 2])>,
}

/// A function in LIR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Func {
    pub name: String,
    pub blocks: Vec<Block>,
    pub exits: Vec<Exit>,
    /// Number of virtual registers.
    pub nregs: u32,
    pub nlocalsplus: u32,
    /// Per virtual register: holds a float (allocated to SSE registers).
    pub float_regs: Vec<bool>,
    /// Registers defined by a constant (`Move` of an immediate): exits rematerialise them
    /// instead of keeping them alive in a register until the exit.
    pub constants: crate::hashing::HashMap<VReg, i64>,
    /// Registers equal to another plus a constant (`base + offset`, wrapping): the copies of
    /// an induction variable in an unrolled loop (`lir::unroll`). Exits compute them from the
    /// base, so a value only exits read needs no instruction and no location of its own.
    pub derived: crate::hashing::HashMap<VReg, (VReg, i32)>,
}

impl Func {
    /// A new virtual register (`float`: allocated to an SSE register).
    pub fn new_reg(&mut self, float: bool) -> VReg {
        let r = VReg(self.nregs);
        self.nregs += 1;
        self.float_regs.push(float);
        r
    }

    /// How many times each virtual register is read (by instructions, terminators, edges and
    /// exits).
    pub fn use_counts(&self) -> Vec<u32> {
        let mut uses = vec![0u32; self.nregs as usize];
        let mut count = |r: VReg| {
            if let Some(u) = uses.get_mut(r.index()) {
                *u += 1;
            }
        };
        for block in &self.blocks {
            for inst in &block.insts {
                inst.uses().into_iter().for_each(&mut count);
            }
            match &block.term {
                Term::Branch { cond, .. } => count(*cond),
                Term::Return(r) => count(*r),
                Term::Jump(_) | Term::Exit(_) => {}
            }
            for t in block.term.targets() {
                t.args.iter().copied().for_each(&mut count);
            }
        }
        for exit in &self.exits {
            exit.uses().into_iter().for_each(&mut count);
        }
        uses
    }

    /// The registers an exit reads that must be kept in a location (constants are
    /// rematerialised).
    pub fn exit_uses(&self, exit: &Exit) -> Vec<VReg> {
        // An exit that may leave through another instead reads what that one reads too.
        let redo = exit.redo_from.map(|r| self.exits[r as usize].uses()).unwrap_or_default();
        let mut uses: Vec<VReg> = exit.uses().into_iter().chain(redo).filter(|r| !self.constants.contains_key(r)).collect();
        if !self.derived.is_empty() {
            uses.iter_mut().for_each(|r| *r = self.derived.get(r).map_or(*r, |&(base, _)| base));
        }
        uses
    }
}

impl Inst {
    /// Whether the instruction only computes its result (it can go if that is unused).
    pub fn is_pure(&self) -> bool {
        match self {
            Inst::Move { .. }
            | Inst::LoadFrame { .. }
            | Inst::Load { .. }
            | Inst::SetEq { .. }
            | Inst::Select { .. }
            | Inst::Compare { .. }
            | Inst::FloatNeg { .. }
            | Inst::RangeItem { .. }
            | Inst::RangeIndex { .. }
            | Inst::LoadBoundFlag { .. }
            | Inst::LoadElement { .. }
            | Inst::DirectArg { .. } => true,
            Inst::IntToFloat { exit, .. } | Inst::IntArith { exit, .. } => exit.is_none(),
            Inst::FloatArith { op, .. } => *op != FloatOp::Div,
            _ => false,
        }
    }

    /// Whether the instruction does floating-point arithmetic that may set an exception flag
    /// NumPy reports (`hir::Op::GuardFpFlags`): arithmetic, a float compare (a signalling
    /// NaN), a float32 conversion. (Calls may too: see `lir::fp_clears`.)
    pub fn may_set_fp_flags(&self) -> bool {
        match self {
            Inst::FloatArith { .. } | Inst::FloatPow { .. } | Inst::Compare { float: true, .. } => true,
            Inst::LoadElement { dtype, .. } | Inst::StoreElement { dtype, .. } => *dtype == crate::numpy::DType::F32,
            _ => false,
        }
    }

    /// Whether the instruction calls C code that may clobber caller-saved registers. (The
    /// slow paths of reference counting, of the eval-breaker check and of list accesses save
    /// them.)
    pub fn clobbers_caller_saved(&self) -> bool {
        matches!(
            self,
            Inst::Call { .. }
                | Inst::Truth { .. }
                | Inst::ExitIfNullWithError { .. }
                | Inst::UnboxInt { exit: None, .. }
                | Inst::IterNext { .. }
                | Inst::CallCFunction { .. }
                | Inst::UnboxFloatOwned { .. }
                | Inst::BoxIfBound { .. }
                | Inst::LoadModuleAttr { .. }
                | Inst::CallDirect { .. }
        )
    }

    /// Whether a call loads its arguments without overwriting any allocatable register
    /// holding another argument, so its arguments may be in caller-saved registers (they die
    /// at the call). A direct call loads rsi, the one allocatable argument register, last.
    pub fn loads_arguments_safely(&self) -> bool {
        matches!(self, Inst::CallDirect { .. })
    }

    /// The registers the instruction reads.
    pub fn uses(&self) -> SmallVec<[VReg; 4]> {
        let src = |s: &Src| match s {
            Src::Reg(r) => Some(*r),
            Src::Imm(_) => None,
        };
        match self {
            Inst::Move { src: s, .. } | Inst::StoreFrame { src: s, .. } => src(s).into_iter().collect(),
            Inst::LoadFrame { .. }
            | Inst::SetPrevInstr { .. }
            | Inst::CheckEvalBreaker { .. }
            | Inst::ExitIfTracing { .. }
            | Inst::LoadBoundFlag { .. }
            | Inst::SetBoundFlag { .. } => smallvec::smallvec![],
            Inst::Incref(r) | Inst::Decref { reg: r, .. } | Inst::XDecref { reg: r, .. } | Inst::Load { base: r, .. } => {
                smallvec::smallvec![*r]
            }
            Inst::Call { args, .. } => args
                .iter()
                .flat_map(|a| match a {
                    Arg::Val(s) => src(s).into_iter().collect::<Vec<_>>(),
                    Arg::Array(items) => items.iter().filter_map(src).collect(),
                })
                .collect(),
            Inst::SetEq { a, b, .. } => std::iter::once(*a).chain(src(b)).collect(),
            Inst::Select { cond, if_true, if_false, .. } => {
                std::iter::once(*cond).chain(src(if_true)).chain(src(if_false)).collect()
            }
            Inst::ExitIfZero { value, .. }
            | Inst::ExitIfNegative { value, .. }
            | Inst::GuardFunction { value, .. }
            | Inst::GuardIs { value, .. }
            | Inst::ExitIfNullWithError { value, .. }
            | Inst::Truth { value, .. } => smallvec::smallvec![*value],
            Inst::IntArith { a, b, .. } => std::iter::once(*a).chain(src(b)).collect(),
            Inst::FloatArith { a, b, .. } | Inst::Compare { a, b, .. } | Inst::FloatPow { a, b, .. } => smallvec::smallvec![*a, *b],
            Inst::FloatNeg { src, .. } | Inst::IntToFloat { src, .. } => smallvec::smallvec![*src],
            Inst::GuardType { value, .. } | Inst::UnboxInt { value, .. } | Inst::ExitIfEqual { value, .. } => smallvec::smallvec![*value],
            Inst::RangeIndex { it, .. } => smallvec::smallvec![*it],
            Inst::RangeHasNext { it, index, .. } | Inst::RangeItem { it, index, .. } => smallvec::smallvec![*it, *index],
            Inst::ListGetItem { obj, index, .. } | Inst::LoadItem { obj, index, .. } => smallvec::smallvec![*obj, *index],
            Inst::IterNext { it, .. } => smallvec::smallvec![*it],
            Inst::CallCFunction { callable, arg, .. } => std::iter::once(*callable).chain(*arg).collect(),
            Inst::UnboxFloatOwned { value, .. } => smallvec::smallvec![*value],
            Inst::LoadGlobal { globals, builtins, .. } => smallvec::smallvec![*globals, *builtins],
            Inst::LoadModuleAttr { obj, .. } => smallvec::smallvec![*obj],
            Inst::BoxIfBound { value, flag, .. } => smallvec::smallvec![*value, *flag],
            Inst::ListSetItem { obj, index, value, .. } => smallvec::smallvec![*obj, *index, *value],
            Inst::ArrayIndex { index, dim, .. } => smallvec::smallvec![*index, *dim],
            Inst::LoadElement { at, .. } => at.regs(),
            Inst::StoreElement { at, value, .. } => {
                let mut regs = at.regs();
                regs.push(*value);
                regs
            }
            Inst::ExitIfOutside { value, .. } => smallvec::smallvec![*value],
            Inst::ExitIfFpFlags { .. } | Inst::ClearFpFlags => smallvec::smallvec![],
            Inst::CallDirect { args, .. } => args.iter().copied().collect(),
            Inst::DirectArg { .. } => smallvec::smallvec![],
        }
    }

    /// The register the instruction writes, if any.
    pub fn def(&self) -> Option<VReg> {
        match self {
            Inst::Move { dst, .. }
            | Inst::LoadFrame { dst, .. }
            | Inst::Load { dst, .. }
            | Inst::SetEq { dst, .. }
            | Inst::Select { dst, .. }
            | Inst::Truth { dst, .. }
            | Inst::IntArith { dst, .. }
            | Inst::FloatArith { dst, .. }
            | Inst::FloatPow { dst, .. }
            | Inst::FloatNeg { dst, .. }
            | Inst::IntToFloat { dst, .. }
            | Inst::Compare { dst, .. }
            | Inst::UnboxInt { dst, .. }
            | Inst::RangeHasNext { dst, .. }
            | Inst::RangeIndex { dst, .. }
            | Inst::RangeItem { dst, .. }
            | Inst::ListGetItem { dst, .. }
            | Inst::IterNext { dst, .. }
            | Inst::CallCFunction { dst, .. }
            | Inst::UnboxFloatOwned { dst, .. }
            | Inst::LoadItem { dst, .. }
            | Inst::BoxIfBound { dst, .. }
            | Inst::LoadBoundFlag { dst, .. }
            | Inst::LoadGlobal { dst, .. }
            | Inst::LoadModuleAttr { dst, .. }
            | Inst::ArrayIndex { dst, .. }
            | Inst::LoadElement { dst, .. }
            | Inst::CallDirect { dst, .. }
            | Inst::DirectArg { dst, .. } => Some(*dst),
            Inst::Call { ret, .. } => *ret,
            _ => None,
        }
    }

    /// The exits the instruction may take.
    pub fn exits(&self) -> SmallVec<[ExitIndex; 2]> {
        match self {
            Inst::ExitIfZero { exit, .. }
            | Inst::ExitIfNegative { exit, .. }
            | Inst::GuardFunction { exit, .. }
            | Inst::GuardIs { exit, .. }
            | Inst::ExitIfNullWithError { exit, .. }
            | Inst::ExitIfTracing { exit }
            | Inst::Truth { exit, .. }
            | Inst::GuardType { exit, .. }
            | Inst::ExitIfEqual { exit, .. }
            | Inst::ArrayIndex { exit, .. }
            | Inst::ExitIfOutside { exit, .. }
            | Inst::ExitIfFpFlags { exit }
            | Inst::LoadItem { exit, .. }
            | Inst::CallDirect { exit, .. } => smallvec::smallvec![*exit],
            Inst::IntArith { exit, .. }
            | Inst::FloatArith { exit, .. }
            | Inst::FloatPow { exit, .. }
            | Inst::IntToFloat { exit, .. }
            | Inst::UnboxInt { exit, .. }
            | Inst::ListGetItem { exit, .. }
            | Inst::ListSetItem { exit, .. }
            | Inst::BoxIfBound { exit, .. } => exit.iter().copied().collect(),
            Inst::CheckEvalBreaker { exit, resume, .. } => smallvec::smallvec![*exit, *resume],
            _ => smallvec::smallvec![],
        }
    }
}

impl Exit {
    /// Replaces every register the exit reads by `f` of it (see `Exit::uses`).
    pub fn map_regs(&mut self, f: impl Fn(VReg) -> VReg) {
        let src = |s: &mut Src| {
            if let Src::Reg(r) = s {
                *r = f(*r);
            }
        };
        if let Some((_, args)) = &mut self.prelude {
            args.iter_mut().for_each(src);
        }
        self.release.iter_mut().for_each(|(r, _)| *r = f(*r));
        self.stack.iter_mut().for_each(|(r, _)| *r = f(*r));
        self.range_iters.iter_mut().flat_map(|(_, regs)| regs.iter_mut()).for_each(|r| *r = f(*r));
        self.bool_lists.iters.iter_mut().flat_map(|(_, regs)| regs.iter_mut()).for_each(|r| *r = f(*r));
        self.bool_lists.lists.iter_mut().for_each(|r| *r = f(*r));
        self.locals.iter_mut().for_each(|(_, r, _, _)| *r = f(*r));
        self.range_positions.iter_mut().for_each(|(it, index)| {
            *it = f(*it);
            *index = f(*index);
        });
        self.borrowed.iter_mut().for_each(|r| *r = f(*r));
        self.numpy.iter_mut().for_each(|(v, flag)| {
            *v = f(*v);
            *flag = flag.map(&f);
        });
    }

    /// The registers the exit reads.
    pub fn uses(&self) -> Vec<VReg> {
        let prelude = self.prelude.iter().flat_map(|(_, args)| {
            args.iter().filter_map(|a| match a {
                Src::Reg(r) => Some(*r),
                Src::Imm(_) => None,
            })
        });
        prelude
            .chain(self.release.iter().map(|(r, _)| *r))
            .chain(
                self.stack
                    .iter()
                    .enumerate()
                    .filter(|(d, _)| !self.range_iters.iter().any(|(i, _)| *i as usize == *d))
                    .filter(|(d, _)| !self.bool_lists.iters.iter().any(|(i, _)| *i as usize == *d))
                    .map(|(_, (r, _))| *r),
            )
            .chain(self.range_iters.iter().flat_map(|(_, regs)| *regs))
            .chain(self.bool_lists.iters.iter().flat_map(|(_, regs)| *regs))
            .chain(self.bool_lists.lists.iter().copied())
            .chain(self.locals.iter().map(|(_, r, _, _)| *r))
            .chain(self.range_positions.iter().flat_map(|(it, index)| [*it, *index]))
            .chain(self.borrowed.iter().copied())
            .chain(self.numpy.iter().filter_map(|(_, flag)| *flag))
            .collect()
    }
}

impl Term {
    /// The outgoing targets.
    pub fn targets(&self) -> SmallVec<[&Target; 2]> {
        match self {
            Term::Jump(t) => smallvec::smallvec![t],
            Term::Branch { if_true, if_false, .. } => smallvec::smallvec![if_true, if_false],
            Term::Return(_) | Term::Exit(_) => smallvec::smallvec![],
        }
    }
}

impl fmt::Display for Func {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "lir {} (locals {}, regs {})", self.name, self.nlocalsplus, self.nregs)?;
        let list = |regs: &[VReg]| regs.iter().map(|r| r.to_string()).collect::<Vec<_>>().join(", ");
        let target = |t: &Target| {
            if t.args.is_empty() {
                format!("L{}", t.block)
            } else {
                format!("L{}({})", t.block, list(&t.args))
            }
        };
        for (i, block) in self.blocks.iter().enumerate() {
            writeln!(f, "L{i}({}):", list(&block.params))?;
            for inst in &block.insts {
                writeln!(f, "  {}", InstText(inst))?;
            }
            match &block.term {
                Term::Jump(t) => writeln!(f, "  jump {}", target(t))?,
                Term::Branch { cond, if_true, if_false } => {
                    writeln!(f, "  branch {cond}, {}, {}", target(if_true), target(if_false))?
                }
                Term::Return(r) => writeln!(f, "  return {r}")?,
                Term::Exit(e) => writeln!(f, "  exit {e}")?,
            }
        }
        Ok(())
    }
}

struct InstText<'a>(&'a Inst);

impl fmt::Display for InstText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Inst::Move { dst, src } => write!(f, "{dst} = {src}"),
            Inst::LoadFrame { dst, offset } => write!(f, "{dst} = frame[{offset}]"),
            Inst::StoreFrame { offset, src } => write!(f, "frame[{offset}] = {src}"),
            Inst::Load { dst, base, offset } => write!(f, "{dst} = {base}[{offset}]"),
            Inst::Incref(r) => write!(f, "incref {r}"),
            Inst::Decref { reg, .. } => write!(f, "decref {reg}"),
            Inst::XDecref { reg, .. } => write!(f, "xdecref {reg}"),
            Inst::Call { callee, args, ret } => {
                if let Some(r) = ret {
                    write!(f, "{r} = ")?;
                }
                let args: Vec<String> = args
                    .iter()
                    .map(|a| match a {
                        Arg::Val(s) => s.to_string(),
                        Arg::Array(items) => {
                            format!("[{}]", items.iter().map(|s| s.to_string()).collect::<Vec<_>>().join(", "))
                        }
                    })
                    .collect();
                write!(f, "call {}({})", callee.name, args.join(", "))
            }
            Inst::SetEq { dst, a, b, negate } => write!(f, "{dst} = {a} {} {b}", if *negate { "!=" } else { "==" }),
            Inst::Select { dst, cond, if_true, if_false } => write!(f, "{dst} = {cond} ? {if_true} : {if_false}"),
            Inst::SetPrevInstr { offset } => write!(f, "prev_instr @{}", offset * 2),
            Inst::ExitIfZero { value, exit } => write!(f, "exit {exit} if {value} == 0"),
            Inst::ExitIfNegative { value, exit } => write!(f, "exit {exit} if {value} < 0"),
            Inst::ExitIfNullWithError { value, exit } => write!(f, "exit {exit} if {value} == 0 and error"),
            Inst::CheckEvalBreaker { exit, resume, leave } => {
                write!(f, "eval_breaker or exit {exit} / {resume}{}", if *leave { " (leave after)" } else { "" })
            }
            Inst::ExitIfTracing { exit } => write!(f, "exit {exit} if tracing"),
            Inst::Truth { dst, value, slow, exit, .. } => write!(f, "{dst} = truth {value} (else {}) or exit {exit}", slow.name),
            Inst::IntArith { op, dst, a, b, exit } => write!(f, "{dst} = int.{op:?} {a}, {b}{}", or_exit(exit)),
            Inst::FloatArith { op, dst, a, b, exit } => write!(f, "{dst} = float.{op:?} {a}, {b}{}", or_exit(exit)),
            Inst::FloatPow { dst, a, b, exit } => write!(f, "{dst} = float.pow {a}, {b}{}", or_exit(exit)),
            Inst::FloatNeg { dst, src } => write!(f, "{dst} = float.neg {src}"),
            Inst::IntToFloat { dst, src, exit } => write!(f, "{dst} = int_to_float {src}{}", or_exit(exit)),
            Inst::Compare { op, float, dst, a, b } => {
                write!(f, "{dst} = {}.cmp {a} {} {b}", if *float { "float" } else { "int" }, op.symbol())
            }
            Inst::GuardType { value, type_addr, exit } => write!(f, "exit {exit} unless type({value}) is {type_addr:#x}"),
            Inst::UnboxInt { dst, value, exit } => write!(f, "{dst} = unbox_int {value}{}", or_exit(exit)),
            Inst::ExitIfEqual { value, imm, exit } => write!(f, "exit {exit} if {value} == {imm:#x}"),
            Inst::RangeIndex { dst, it, .. } => write!(f, "{dst} = range_index {it}"),
            Inst::RangeHasNext { dst, it, index } => write!(f, "{dst} = range_has_next {it} at {index}"),
            Inst::RangeItem { dst, it, index } => write!(f, "{dst} = range_item {it} at {index}"),
            Inst::LoadBoundFlag { dst, local } => write!(f, "{dst} = bound_flag local {local}"),
            Inst::LoadModuleAttr { dst, obj, name, .. } => write!(f, "{dst} = load_attr {obj}.{name:#x}"),
            Inst::LoadGlobal { dst, globals, builtins, name, .. } => {
                write!(f, "{dst} = load_global {name:#x} in {globals}, {builtins}")
            }
            Inst::GuardFunction { value, exit, .. } => write!(f, "exit {exit} unless {value} is the inlined function"),
            Inst::GuardIs { value, expected, exit } => write!(f, "exit {exit} unless {value} is {expected:#x}"),
            Inst::SetBoundFlag { local, bound } => write!(f, "bound_flag local {local} = {bound}"),
            Inst::BoxIfBound { dst, value, flag, callee, exit } => {
                write!(f, "{dst} = {flag} ? call {}({value}) : 0{}", callee.name, or_exit(exit))
            }
            Inst::ListGetItem { dst, obj, index, exit, .. } => write!(f, "{dst} = list_get {obj}[{index}]{}", or_exit(exit)),
            Inst::IterNext { dst, it, slow } => write!(f, "{dst} = iter_next {it} (list iterators inline, else {})", slow.name),
            Inst::UnboxFloatOwned { dst, value, .. } => write!(f, "{dst} = unbox_float {value} (released)"),
            Inst::CallCFunction { dst, callable, arg, .. } => match arg {
                Some(a) => write!(f, "{dst} = call_cfunction {callable}({a})"),
                None => write!(f, "{dst} = call_cfunction {callable}()"),
            },
            Inst::LoadItem { dst, obj, index, tuple, float, exit } => {
                let (seq, ty) = (if *tuple { "tuple" } else { "list" }, if *float { "float" } else { "int" });
                write!(f, "{dst} = {seq}_item {obj}[{index}] as {ty} or exit {exit}")
            }
            Inst::ListSetItem { obj, index, value, float, exit, .. } => {
                let kind = if *float { " (float)" } else { "" };
                write!(f, "list_set {obj}[{index}] = {value}{kind}{}", or_exit(exit))
            }
            Inst::ArrayIndex { dst, index, dim, exit } => write!(f, "{dst} = array_index {index} of {dim} or exit {exit}"),
            Inst::LoadElement { dst, at, dtype } => write!(f, "{dst} = {}[{at}]", dtype.name()),
            Inst::StoreElement { at, value, dtype } => write!(f, "{}[{at}] = {value}", dtype.name()),
            Inst::ExitIfOutside { value, lo, hi, exit } => write!(f, "exit {exit} unless {lo} <= {value} <= {hi}"),
            Inst::ExitIfFpFlags { exit } => write!(f, "exit {exit} if fp exceptions flagged"),
            Inst::ClearFpFlags => write!(f, "clear fp exception flags"),
            Inst::CallDirect { dst, args, target, exit } => {
                let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
                let target = if *target == 0 { "self".to_owned() } else { "direct entry".to_owned() };
                write!(f, "{dst} = call {target}({}) or exit {exit}", args.join(", "))
            }
            Inst::DirectArg { dst, index } => write!(f, "{dst} = direct_arg {index}"),
        }
    }
}

fn or_exit(exit: &Option<ExitIndex>) -> String {
    exit.map(|e| format!(" or exit {e}")).unwrap_or_default()
}
