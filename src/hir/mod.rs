//! HIR: the high-level IR, SSA form with block parameters (no phi nodes).
//!
//! The builder (`build`) translates bytecode generically: every operation is what the
//! interpreter does, through the C API on boxed objects, with reference counts made explicit
//! (`Incref`/`Decref`) exactly where the interpreter increments and decrements them. So at every
//! bytecode boundary the references held are exactly the frame's locals and value stack, which
//! is what a `FrameState` lists. Locals are SSA values *and* are written through to the frame's
//! local slots (`StoreLocal`), which own their references as in the interpreter: code called
//! from compiled code sees the caller's locals (`f_locals`, tracebacks with locals), and an exit
//! only has to write the value stack.
//! Passes (`opt`, next milestone) then specialise on types and cancel refcount pairs.
//!
//! Every instruction that can leave compiled code names an `Exit`: where the interpreter takes
//! over (bytecode offset), the frame state to rebuild there, and the values to release first.

pub mod build;
pub mod cse;
pub mod direct;
pub mod dominators;
pub mod fp_flags;
pub mod hoist_inlined;
pub mod if_convert;
pub mod inline;
pub mod loop_params;
pub mod loops;
pub mod print;
pub mod side_exits;
pub mod specialize;
pub mod ufunc_batch;
pub mod ufunc_flags;
pub mod validate;

use smallvec::SmallVec;
use std::fmt;

/// Declares a `u32` id type that prints as its IR name (`v12`, `bb3`, `exit4`).
macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub u32);

        impl $name {
            /// The id as a vector index.
            pub fn index(self) -> usize {
                self.0 as usize
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($prefix, "{}"), self.0)
            }
        }
    };
}

id_type!(
    /// An SSA value.
    ValueId,
    "v"
);
id_type!(
    /// A basic block.
    BlockId,
    "bb"
);
id_type!(
    /// A way out of compiled code (see `Exit`).
    ExitId,
    "exit"
);

/// What a value is. The type lattice of the specialising tier grows from this; for now the
/// builder only needs to tell objects from NULL and from machine booleans.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Type {
    /// A reference to a Python object (never NULL).
    Object,
    /// The NULL pointer: an unbound local, or the `PUSH_NULL` marker of a call.
    Null,
    /// An object or NULL (a block parameter fed by both, the result of `IterNext`).
    MaybeNull,
    /// A machine boolean (0 or 1), e.g. the result of a truth test; also an unboxed Python
    /// `bool` (boxed again as `True`/`False`).
    CBool,
    /// An unboxed Python `int` that fits in 64 bits.
    I64,
    /// An unboxed Python `float` (its IEEE bits in a general register).
    F64,
}

impl Type {
    /// The least type containing both.
    pub fn union(self, other: Type) -> Type {
        use Type::*;
        match (self, other) {
            (a, b) if a == b => a,
            (Object | Null | MaybeNull, Object | Null | MaybeNull) => MaybeNull,
            // Mixing a machine value with an object is a builder bug; keep the wider name so the
            // validator reports it.
            _ => MaybeNull,
        }
    }

    /// Whether values of this type are references the function may own.
    pub fn is_object_like(self) -> bool {
        matches!(self, Type::Object | Type::MaybeNull)
    }

    /// Whether this is an unboxed Python value (exits box it again).
    pub fn is_unboxed(self) -> bool {
        matches!(self, Type::CBool | Type::I64 | Type::F64)
    }
}

/// Exact Python classes a guard can check for (`type(x) is C`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PyClass {
    Int,
    Float,
    Bool,
    /// `range_iterator` (what `iter(range(...))` gives when the length fits a C long).
    RangeIter,
}

/// Exact builtin sequences whose items compiled code reads inline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Sequence {
    List,
    Tuple,
}

/// Operators on unboxed 64-bit ints, with Python's results: an operation whose Python result
/// would not fit (overflow), or that raises (division by zero, negative shift), leaves through
/// its deopt exit and the interpreter redoes it exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntOp {
    Add,
    Sub,
    Mul,
    FloorDiv,
    Mod,
    And,
    Or,
    Xor,
    Lshift,
    Rshift,
}

/// Operators on unboxed floats, with Python's results (division by zero and the cases where
/// `**` raises or gives a complex number leave through the deopt exit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FloatOp {
    Add,
    Sub,
    Mul,
    Div,
    FloorDiv,
    Mod,
    Pow,
}

/// `math` functions of one float computed as machine code (`Op::MathCall`), with the results
/// and errors of CPython's `math_1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MathFn {
    Sqrt,
    Exp,
    Log,
    Log2,
    Log10,
    Sin,
    Cos,
    Tan,
    Atan,
    Tanh,
    Fabs,
}

impl MathFn {
    /// Every function, in the order `runtime::rjit_rt_math_1` numbers them.
    pub const ALL: [MathFn; 11] = [
        MathFn::Sqrt,
        MathFn::Exp,
        MathFn::Log,
        MathFn::Log2,
        MathFn::Log10,
        MathFn::Sin,
        MathFn::Cos,
        MathFn::Tan,
        MathFn::Atan,
        MathFn::Tanh,
        MathFn::Fabs,
    ];
}

/// `math` functions of two floats computed as machine code (`Op::MathCall2`), with the
/// results and errors of CPython's `math.atan2` (`m_atan2`, `math_2`), `math.pow` and
/// `math.hypot` of two numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MathFn2 {
    Atan2,
    Pow,
    Hypot,
}

impl MathFn2 {
    /// Every function, in the order `runtime::rjit_rt_math_2` numbers them.
    pub const ALL: [MathFn2; 3] = [MathFn2::Atan2, MathFn2::Pow, MathFn2::Hypot];
}

/// How a float becomes an int (`Op::FloatToInt`): `math.floor`, `math.ceil`, `int`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rounding {
    Floor,
    Ceil,
    Trunc,
    /// To nearest, ties to even (`round(x)`).
    HalfEven,
}

/// `BINARY_OP`'s operators, in CPython's `NB_*` order (the oparg).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryOp {
    Add,
    And,
    FloorDivide,
    Lshift,
    MatrixMultiply,
    Multiply,
    Remainder,
    Or,
    Power,
    Rshift,
    Subtract,
    TrueDivide,
    Xor,
    InplaceAdd,
    InplaceAnd,
    InplaceFloorDivide,
    InplaceLshift,
    InplaceMatrixMultiply,
    InplaceMultiply,
    InplaceRemainder,
    InplaceOr,
    InplacePower,
    InplaceRshift,
    InplaceSubtract,
    InplaceTrueDivide,
    InplaceXor,
}

impl BinaryOp {
    const ALL: [BinaryOp; 26] = [
        BinaryOp::Add,
        BinaryOp::And,
        BinaryOp::FloorDivide,
        BinaryOp::Lshift,
        BinaryOp::MatrixMultiply,
        BinaryOp::Multiply,
        BinaryOp::Remainder,
        BinaryOp::Or,
        BinaryOp::Power,
        BinaryOp::Rshift,
        BinaryOp::Subtract,
        BinaryOp::TrueDivide,
        BinaryOp::Xor,
        BinaryOp::InplaceAdd,
        BinaryOp::InplaceAnd,
        BinaryOp::InplaceFloorDivide,
        BinaryOp::InplaceLshift,
        BinaryOp::InplaceMatrixMultiply,
        BinaryOp::InplaceMultiply,
        BinaryOp::InplaceRemainder,
        BinaryOp::InplaceOr,
        BinaryOp::InplacePower,
        BinaryOp::InplaceRshift,
        BinaryOp::InplaceSubtract,
        BinaryOp::InplaceTrueDivide,
        BinaryOp::InplaceXor,
    ];

    /// The operator for `BINARY_OP`'s oparg (CPython's `NB_*` numbering).
    pub fn from_oparg(oparg: u32) -> Option<BinaryOp> {
        BinaryOp::ALL.get(oparg as usize).copied()
    }

    /// The oparg, i.e. the index in the interpreter's `binary_ops` table.
    pub fn oparg(self) -> u32 {
        BinaryOp::ALL.iter().position(|&op| op == self).unwrap_or(0) as u32
    }

    /// The operator without its in-place form (`+=` is `+`): the same operation on numbers.
    /// CPython numbers the in-place forms 13 after the plain ones.
    pub fn non_inplace(self) -> BinaryOp {
        BinaryOp::ALL[self.oparg() as usize % 13]
    }

    /// The operator as Python spells it (`+`, `//=`...).
    pub fn symbol(self) -> &'static str {
        use BinaryOp::*;
        match self {
            Add => "+",
            And => "&",
            FloorDivide => "//",
            Lshift => "<<",
            MatrixMultiply => "@",
            Multiply => "*",
            Remainder => "%",
            Or => "|",
            Power => "**",
            Rshift => ">>",
            Subtract => "-",
            TrueDivide => "/",
            Xor => "^",
            InplaceAdd => "+=",
            InplaceAnd => "&=",
            InplaceFloorDivide => "//=",
            InplaceLshift => "<<=",
            InplaceMatrixMultiply => "@=",
            InplaceMultiply => "*=",
            InplaceRemainder => "%=",
            InplaceOr => "|=",
            InplacePower => "**=",
            InplaceRshift => ">>=",
            InplaceSubtract => "-=",
            InplaceTrueDivide => "/=",
            InplaceXor => "^=",
        }
    }
}

/// The unary operators with a C API call each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnaryOp {
    Positive,
    Negative,
    Invert,
}

/// `COMPARE_OP`'s operators, in CPython's `Py_LT..Py_GE` order (the oparg).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    Lt,
    Le,
    Eq,
    Ne,
    Gt,
    Ge,
}

impl CompareOp {
    /// The operator for `COMPARE_OP`'s oparg.
    pub fn from_oparg(oparg: u32) -> Option<CompareOp> {
        use CompareOp::*;
        [Lt, Le, Eq, Ne, Gt, Ge].get(oparg as usize).copied()
    }

    /// CPython's `Py_LT`.. constant, as `PyObject_RichCompare` takes it.
    pub fn py_op(self) -> i32 {
        self as i32
    }

    /// The operator as Python spells it.
    pub fn symbol(self) -> &'static str {
        ["<", "<=", "==", "!=", ">", ">="][self as usize]
    }
}

/// An operation. Unless noted, an operation that yields an object yields a new reference, and
/// an operation does not consume its operands (the builder emits the `Decref`s that follow it).
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// The value in the frame's local slot `local` at entry (an argument); the slot keeps its
    /// reference.
    LoadArg { local: u32 },
    /// Writes `value` into the frame's local slot `local`, which takes over the reference the
    /// value stack held (the interpreter's `SETLOCAL`; the builder releases the old value).
    /// No result.
    StoreLocal { local: u32, value: ValueId },
    /// `co_consts[index]`, borrowed: the code object keeps it alive.
    Const { index: u32 },
    /// NULL.
    Null,
    /// `Py_INCREF`.
    Incref(ValueId),
    /// `Py_DECREF` (value known non-NULL).
    Decref(ValueId),
    /// `Py_XDECREF`.
    XDecref(ValueId),
    /// Raises `UnboundLocalError` for local `local` if `value` is NULL; else the same pointer,
    /// now known to be an object.
    CheckBound { value: ValueId, local: u32 },
    /// The global or builtin `co_names[name]`; NameError if neither has it.
    LoadGlobal { name: u32 },
    /// `LoadGlobal` for a check that must not raise (`hoist_inlined`): the value (a new
    /// reference) or NULL, with no exception set, if the lookup fails. Cannot fail.
    PeekGlobal { name: u32 },
    /// `LoadAttr` for a check that must not raise (`hoist_inlined`): attribute `co_names[name]`
    /// of `obj` (a new reference) where `obj` is a plain module whose dict holds it (and the
    /// module type has no attribute of that name: the dict is where `getattr` finds it), else
    /// NULL with no exception set (also for a NULL `obj`). Runs no Python code. Cannot fail.
    PeekAttr { obj: ValueId, name: u32 },
    /// The object at address `address`, borrowed: one the compiled code keeps alive (checked
    /// once to be what the code loads: `hoist_inlined`).
    ConstObject { address: i64 },
    /// `getattr(obj, co_names[name])`.
    LoadAttr { obj: ValueId, name: u32 },
    /// `setattr(obj, co_names[name], value)`. No result.
    StoreAttr { obj: ValueId, name: u32, value: ValueId },
    /// `PyNumber_*` for `BINARY_OP`.
    Binary { op: BinaryOp, lhs: ValueId, rhs: ValueId },
    /// `PyNumber_Positive`/`Negative`/`Invert`.
    Unary { op: UnaryOp, value: ValueId },
    /// `not value` (as `UNARY_NOT`: a bool object).
    Not(ValueId),
    /// `PyObject_RichCompare`.
    Compare { op: CompareOp, lhs: ValueId, rhs: ValueId },
    /// `lhs is rhs` (negated for `is not`): a bool object. Cannot fail.
    Is { lhs: ValueId, rhs: ValueId, negate: bool },
    /// `item in container` (negated for `not in`): a bool object.
    Contains { item: ValueId, container: ValueId, negate: bool },
    /// `PyObject_IsTrue`: a machine bool.
    IsTrue(ValueId),
    /// `IsTrue` of a value whose reference pair around the test was cancelled
    /// (`specialize::cancel_reference_pairs`): `True`, `False` and `None` are tested inline,
    /// and the call for any other object takes a reference around it (so `__bool__` sees the
    /// interpreter's reference counts).
    IsTrueBorrowed(ValueId),
    /// `value is None`: a machine bool. Cannot fail.
    IsNone(ValueId),
    /// `value == NULL`: a machine bool. Cannot fail.
    IsNull(ValueId),
    /// The same pointer, known not to be NULL here (no code: it only narrows the type, e.g.
    /// `IterNext`'s result on the path where `IsNull` was false).
    NonNull(ValueId),
    /// `obj[key]`.
    GetItem { obj: ValueId, key: ValueId },
    /// `obj[key] = value`. No result.
    SetItem { obj: ValueId, key: ValueId, value: ValueId },
    /// `del obj[key]`. No result.
    DelItem { obj: ValueId, key: ValueId },
    /// A tuple of the items; consumes them (the references move into the tuple).
    BuildTuple(Vec<ValueId>),
    /// A list of the items; consumes them.
    BuildList(Vec<ValueId>),
    /// `slice(start, stop, step)` (`step` may be the NULL of a two-item `BUILD_SLICE`).
    BuildSlice { start: ValueId, stop: ValueId, step: ValueId },
    /// The items of an iterable as a tuple of exactly `count` items, raising as
    /// `UNPACK_SEQUENCE` does when there are more or fewer.
    UnpackSequence { value: ValueId, count: u32 },
    /// The items of an iterable as a tuple: `before` items, a list of the rest but the last
    /// `after`, then those (`UNPACK_EX`, `a, *b, c = value`).
    UnpackEx { value: ValueId, before: u32, after: u32 },
    /// Item `index` of a tuple known to have it.
    TupleItem { tuple: ValueId, index: u32 },
    /// Item `index` of the function's closure (`COPY_FREE_VARS`): a cell.
    LoadClosure { index: u32 },
    /// A new cell holding `value` (which may be NULL: an empty cell).
    MakeCell(ValueId),
    /// The contents of a cell; raises as the interpreter does for the variable in local slot
    /// `slot` if the cell is empty.
    CellGet { cell: ValueId, slot: u32 },
    /// Sets a cell's contents (`value` may be NULL: deletes). No result.
    CellSet { cell: ValueId, value: ValueId },
    /// A function object (`MAKE_FUNCTION`) for code object `code` in the frame's globals; the
    /// other operands are NULL when the flags do not give them.
    MakeFunction { code: ValueId, closure: ValueId, annotations: ValueId, kwdefaults: ValueId, defaults: ValueId },
    /// `FORMAT_VALUE`: `format(conv(value), spec)`; `conversion` is 0 (none), 1 (`!s`), 2
    /// (`!r`) or 3 (`!a`); `spec` may be NULL.
    FormatValue { value: ValueId, conversion: u32, spec: ValueId },
    /// The concatenation of string pieces (`BUILD_STRING`).
    BuildString(Vec<ValueId>),
    /// A dict of `items` (key, value, key, value...).
    BuildMap(Vec<ValueId>),
    /// A dict of the tuple of constant `keys` and the values.
    BuildConstKeyMap { keys: ValueId, values: Vec<ValueId> },
    /// `dict[key] = value` for a dict being built. No result.
    MapAdd { dict: ValueId, key: ValueId, value: ValueId },
    /// A set of the items.
    BuildSet(Vec<ValueId>),
    /// `set.add(value)` for a set being built. No result.
    SetAdd { set: ValueId, value: ValueId },
    /// `dict.update(update)` for a dict being built (`{**a}`). No result.
    DictUpdate { dict: ValueId, update: ValueId },
    /// Merges `**update` into the keyword dict of a call of `func` (`DICT_MERGE`): a repeated
    /// keyword is an error naming `func`. No result.
    DictMerge { dict: ValueId, update: ValueId, func: ValueId },
    /// `list.extend(iterable)` for a list being built (`[*a]`). No result.
    ListExtend { list: ValueId, iterable: ValueId },
    /// `tuple(list)`.
    ListToTuple(ValueId),
    /// `callable(*args, **kwargs)` (`CALL_FUNCTION_EX`); `kwargs` may be NULL.
    CallEx { callable: ValueId, args: ValueId, kwargs: ValueId },
    /// `BEFORE_WITH`: a tuple (bound `__exit__`, result of `__enter__()`).
    BeforeWith(ValueId),
    /// `list.append(value)` for a list being built; consumes `value`. No result.
    ListAppend { list: ValueId, value: ValueId },
    /// `iter(value)`.
    GetIter(ValueId),
    /// The iterator's next item, or NULL when it is exhausted (an error other than
    /// StopIteration leaves compiled code).
    IterNext(ValueId),
    /// A vectorcall: `callable(*args, **dict(zip(kwnames, args[-len(kwnames):])))`, where
    /// `kwnames` indexes a tuple of names in `co_consts`. Consumes nothing.
    /// With `method` not NULL (CALL's `[method, self, args...]` form), calls `method` with
    /// `callable` (then the self argument) prepended to `args`.
    Call { method: ValueId, callable: ValueId, args: Vec<ValueId>, kwnames: Option<u32> },
    /// `delattr(obj, co_names[name])`. No result.
    DelAttr { obj: ValueId, name: u32 },
    /// `globals()[co_names[name]] = value`. No result.
    StoreGlobal { name: u32, value: ValueId },
    /// `set.update(iterable)` for a set being built (`{*a}`). No result.
    SetUpdate { set: ValueId, iterable: ValueId },
    /// Leaves compiled code (to resume in the interpreter) if a tracer or profiler was
    /// installed by the code just called: from then on every line must be traced. No result.
    CheckTracing,
    /// Runs pending calls (signal handlers) and lets other threads take the GIL when the
    /// interpreter's eval breaker asks for it; leaves through the instruction's exit if that
    /// raised, and through `resume` (to let the interpreter run the same instruction) for what
    /// only the interpreter can do (an asynchronous exception). No result.
    /// With `leave`, once the breaker has run (other threads or signal handlers may have run
    /// Python code) the function leaves through `resume`: its array accesses rely on what
    /// `GuardArray` verified.
    CheckEvalBreaker { resume: ExitId, leave: bool },

    // ---- made by the specialiser (`specialize`): unboxed machine values ----
    /// An unboxed int constant; `origin` is the `co_consts` index it stands for (boxing it
    /// gives that object back).
    ConstI64 { value: i64, origin: Option<u32> },
    /// An unboxed float constant (IEEE bits).
    ConstF64 { bits: u64, origin: Option<u32> },
    /// An unboxed bool constant.
    ConstBool(bool),
    /// Leaves through the exit (a deopt) unless `type(value) is class`. No result.
    GuardType { value: ValueId, class: PyClass },
    /// The unboxed value of an object of the class the result type names (`I64` from an
    /// exact int, leaving through the exit if it does not fit; `F64` from an exact float;
    /// `CBool` from a bool).
    Unbox { value: ValueId, to: Type },
    /// A new reference to the Python object for an unboxed value (by its type).
    Box(ValueId),
    /// `Box(value)` if the machine bool `flag` is set, else NULL (an unboxed local that may
    /// be unbound).
    /// `value` boxed if local `local`'s bound flag is set, else NULL.
    BoxIfBound { value: ValueId, local: u32 },
    IntBinary { op: IntOp, lhs: ValueId, rhs: ValueId },
    FloatBinary { op: FloatOp, lhs: ValueId, rhs: ValueId },
    /// `-x` of a float (flips the sign bit: `-0.0` stays exact).
    FloatNeg(ValueId),
    /// A `math` function of a machine float (F64); a domain error or overflow leaves through
    /// the deopt exit (the interpreter raises).
    MathCall { func: MathFn, value: ValueId },
    /// A machine float rounded to a machine int (I64); infinities, NaN and results beyond 64
    /// bits leave through the deopt exit.
    FloatToInt { rounding: Rounding, value: ValueId },
    /// `abs` of a machine int (I64); -2**63 leaves through the deopt exit.
    IntAbs(ValueId),
    /// A `math` function of two machine floats (F64), as `MathCall`.
    MathCall2 { func: MathFn2, lhs: ValueId, rhs: ValueId },
    /// `len(value)` (I64) of an exact list, tuple, str or dict; anything else leaves through
    /// the deopt exit (its `__len__` is the interpreter's business).
    LenOf(ValueId),
    /// `isinstance(value, class)` (CBool) for a builtin type `class` (its address), where
    /// that needs no Python code (`type(value)` is a subclass, or an exact builtin type whose
    /// `__class__` is itself); otherwise leaves through the deopt exit.
    IsInstanceOf { value: ValueId, class: i64 },
    /// `if_true` if the machine bool `cond` is set, else `if_false` (machine values of type
    /// `ty`).
    Select { cond: ValueId, if_true: ValueId, if_false: ValueId, ty: Type },
    /// `float(x)` of an unboxed int, rounded as Python rounds; with `exact`, leaves through
    /// the exit unless the conversion is exact (|x| <= 2**53), for comparisons and `/`.
    IntToFloat { value: ValueId, exact: bool },
    IntCompare { op: CompareOp, lhs: ValueId, rhs: ValueId },
    FloatCompare { op: CompareOp, lhs: ValueId, rhs: ValueId },
    /// `not x` of a machine bool.
    BoolNot(ValueId),
    /// The position of a `range_iterator` (-1 if `it` is not one: the loop's first
    /// `RangeIterHasNext` then deoptimises). A range loop keeps its position in a machine
    /// register; exits write it back into the iterator (`Exit::range_positions`).
    RangeIterIndex(ValueId),
    /// Whether a `range_iterator` at position `index` (checked on entering the loop:
    /// `GuardNonNegative`) has another item.
    RangeIterHasNext { it: ValueId, index: ValueId },
    /// The item of a `range_iterator` at position `index` (`start + index * step`).
    RangeIterItem { it: ValueId, index: ValueId },
    /// `index + 1` for a position known to be below the range's length (cannot overflow).
    RangeIndexNext(ValueId),
    /// The position (`it_index`) of a sequence iterator (CPython's `iterator`, which is what
    /// `iter(a)` of an ndarray is) iterating `seq`; -1 if `it` is not one, or iterates
    /// something else (the loop's entry then deoptimises). An array loop (`for x in a`) keeps
    /// its position in a machine register, as a range loop does; exits write it back.
    SeqIterIndex { it: ValueId, seq: ValueId },
    /// Leaves through the exit (a deopt) if the machine int is negative. No result.
    GuardNonNegative(ValueId),
    /// The length of `range(start, stop, step)` of machine ints where CPython iterates it
    /// with machine ints too (a `range_iterator`); -1 where it does not (step 0, or items or
    /// a length beyond 64 bits: the interpreter then makes the range itself).
    RangeLen { start: ValueId, stop: ValueId, step: ValueId },
    /// The `range_iterator` of a range loop over `range(...)` of machine ints, never made:
    /// the loop keeps start, step and length in registers, and an exit that hands the loop
    /// to the interpreter makes the iterator there, at the loop's position
    /// (`Exit::range_positions`). Emits no code.
    RangeIterVirtual { start: ValueId, step: ValueId, len: ValueId },
    /// Leaves through the exit (a deopt) unless `value` is the function object at address
    /// `func` and still runs the code object at address `code` (a call inlined from it).
    GuardFunction { value: ValueId, func: i64, code: i64 },
    /// Leaves through the exit (a deopt) unless `value` is the object at address `expected`
    /// (a builtin or `math` function called as machine code).
    GuardIs { value: ValueId, expected: i64 },
    /// Releases what local slot `local` holds and leaves it NULL (the local's value is
    /// unboxed: exits write it back). No result.
    ClearLocal { local: u32 },
    /// Raises UnboundLocalError for local `local` unless the machine bool `flag` is set (an
    /// unboxed local that may be unbound). No result.
    /// Raises UnboundLocalError (through the exit) if local `local`'s bound flag is clear.
    CheckFlag { local: u32 },
    /// Sets local `local`'s bound flag (see `Function::bound_flags`).
    SetBound { local: u32, bound: bool },
    /// `obj[index]` for a machine int index: inline for an exact list and an index in range,
    /// else as `GetItem` (with the index boxed). `borrowed`: the reference to `obj` the
    /// interpreter would hold on its stack meanwhile is taken only around code that may run
    /// Python (the slow path, a destructor), where it can be seen (see `clean_up`).
    GetItemInt { obj: ValueId, index: ValueId, borrowed: bool },
    /// `obj[index] = value` for a machine int index, likewise. No result.
    /// `obj[index] = value` with a machine int index; `value` is an object or an `F64`.
    SetItemInt { obj: ValueId, index: ValueId, value: ValueId, borrowed: bool },
    /// Item `index` (a machine int; negative counts from the end) of `obj` as a machine
    /// value of type `ty` (`F64` or `I64`), read inline with no reference taken: `obj` must be
    /// an exact `seq`, the index in range and the item an exact float (`F64`) or an exact int
    /// that fits 64 bits (`I64`); anything else leaves through the exit (a deopt: the
    /// interpreter redoes the subscript). Runs no code.
    LoadItemUnboxed { obj: ValueId, index: ValueId, seq: Sequence, ty: Type },
    /// Leaves through the exit (a deopt) unless `value` is exactly an ndarray of type `array`
    /// (and writeable, if `writeable`). What it verifies holds until Python code may run.
    GuardArray { value: ValueId, array: crate::numpy::ArrayType, writeable: bool },
    /// The machine word at `base + offset`: a field of a verified array (its data pointer,
    /// its shape or strides pointer) or an entry of its shape or strides.
    LoadField { base: ValueId, offset: u32 },
    /// `index` as NumPy takes it on an axis of length `dim` (negative counts from the end);
    /// out of bounds, leaves through the exit (a raise) with the IndexError of
    /// `array[key]` (`key`: the indices as written; `chained`: as `array[i][j]`), or, with no
    /// key, through the exit as it is (a deopt: an index checked before the loop that uses it).
    ArrayIndex { index: ValueId, dim: ValueId, array: ValueId, key: Vec<ValueId>, chained: bool },
    /// The element of type `dtype` at `data + offset`, as a machine value (`F64`, `I64` or
    /// `CBool`).
    LoadElement { data: ValueId, offset: ValueId, dtype: crate::numpy::DType },
    /// Stores machine value `value` (converted by the specialiser to what the dtype holds:
    /// an `F64` for float dtypes, an `I64` or `CBool` for the others) as an element of type
    /// `dtype` at `data + offset`. No result.
    StoreElement { data: ValueId, offset: ValueId, value: ValueId, dtype: crate::numpy::DType },
    /// Leaves through the exit (a deopt) unless `lo <= value <= hi`.
    GuardIntRange { value: ValueId, lo: i64, hi: i64 },
    /// NumPy's own float64 loop of a ufunc (`numpy::UfuncLoop`) on machine floats; leaves
    /// through the exit (a deopt) if it raised a floating-point exception NumPy reports.
    /// Without an exit, the flags are left to a `GuardFpFlags` after it (`ufunc_flags`).
    UfuncCall { function: i64, data: i64, args: Vec<ValueId> },
    /// A new generation for the ufunc calls batched in the loop being entered (`ufunc_batch`):
    /// results computed for another entry are never reused. A machine int. Cannot fail.
    UfuncBatchBegin,
    /// `UfuncCall` of the element of type `dtype` (int64 or float64, as a float64) at
    /// `address`, made with those of the loop's next iterations (`address + k * step` for
    /// `k < remaining`) in one call of NumPy's loop per chunk, in generation `generation`
    /// (`runtime::ufunc_batch`); leaves through the exit (a deopt) as `UfuncCall` does.
    UfuncBatched {
        function: i64,
        data: i64,
        dtype: crate::numpy::DType,
        generation: ValueId,
        address: ValueId,
        step: ValueId,
        remaining: ValueId,
    },
    /// Leaves through the exit (a deopt) if a floating-point exception NumPy reports
    /// (invalid, divide by zero, overflow, underflow) was raised since the flags were last
    /// clear: NumPy float64 arithmetic then warns (or raises, as `numpy.errstate` says), so
    /// the interpreter redoes it. The flags are sticky: one check covers every operation since
    /// the last one (see `fp_flags`).
    GuardFpFlags,
    /// Clears the floating-point exception flags NumPy reports, if any is set (code before
    /// may have raised them without NumPy reporting it: Python's own float arithmetic).
    ClearFpFlags,
    /// The same machine value under a new name (a loop's value after the loop, so the loop's
    /// own register need not survive the calls that follow).
    Copy(ValueId),

    // ---- direct calls of compiled functions (`direct`) ----
    /// Leaves through the exit (a deopt) unless `value` is a plain function running the code
    /// object at address `code` with the frame's globals: a call of it may enter the code's
    /// direct entry. No result.
    GuardCallee { value: ValueId, code: i64 },
    /// Calls a direct entry with machine arguments (the kinds its entry guards check),
    /// without a Python frame; its machine result has type `ty`. `target`: the entry's
    /// address, or 0 for the function being compiled's own. When the callee cannot finish
    /// without the interpreter, leaves through the exit (a deopt: the interpreter redoes the
    /// call, which had no effect).
    CallDirect { args: Vec<ValueId>, ty: Type, target: i64 },
    /// Leaves through the exit (a deopt) unless the global or builtin `co_names[name]` is the
    /// object at address `expected` (a global another function's direct entry relies on:
    /// `direct::Requirement`). Looks it up without raising. No result.
    GuardGlobalIs { name: u32, expected: i64 },
    /// In a direct entry: machine argument `index`.
    DirectArg { index: u32, ty: Type },

    // ---- builtins called through their C function ----
    /// Calls `callable`, a builtin taking no argument (METH_NOARGS) or one (METH_O), with
    /// `args` (none or one, borrowed) straight through its C function, as the interpreter's
    /// CALL does (recursion check, result check). A new reference; NULL leaves through the
    /// exit (an exception is set). The specialiser guards the callable first.
    CallCFunction { callable: ValueId, args: Vec<ValueId> },
    /// The machine value of an exact float the operation consumes (its reference is released:
    /// a call's result unboxed at once, whose box then goes back to the float free list).
    UnboxFloatOwned(ValueId),

    // ---- lists of bools kept as bytes (`specialize_lists`) ----
    /// `[fill] * len` for a list that never escapes the function: a buffer of one byte per
    /// item (`len` items, a machine int; none if it is not positive), as a machine pointer
    /// (I64) to the first item. Leaves through the exit (a deopt: the interpreter makes the list, or
    /// raises MemoryError) when it is too large to make here. Exits make the real list from
    /// it (`runtime::bool_lists`).
    BoolListNew { len: ValueId, fill: bool },
    /// The list iterator of `iter(list)` for a bool list at position 0, never made: its
    /// position lives in a register (a range loop's), and exits make it. Emits no code.
    BoolListIter { list: ValueId },
    /// Frees a bool list's buffer (the function returns: its frame no longer holds it).
    BoolListFree(ValueId),
}

impl Op {
    /// The values the operation reads.
    pub fn operands(&self) -> SmallVec<[ValueId; 4]> {
        use Op::*;
        match self {
            LoadArg { .. } | Const { .. } | ConstObject { .. } | Null | LoadGlobal { .. } | PeekGlobal { .. } | GuardGlobalIs { .. }
            | CheckEvalBreaker { .. } | CheckTracing => smallvec::smallvec![],
            Incref(v) | Decref(v) | XDecref(v) | Not(v) | IsTrue(v) | IsTrueBorrowed(v) | IsNone(v) | IsNull(v)
            | NonNull(v) | GetIter(v) | IterNext(v) => smallvec::smallvec![*v],
            PeekAttr { obj, .. } => smallvec::smallvec![*obj],
            CheckBound { value, .. } | StoreLocal { value, .. } => smallvec::smallvec![*value],
            Unary { value, .. } => smallvec::smallvec![*value],
            LoadAttr { obj, .. } => smallvec::smallvec![*obj],
            StoreAttr { obj, value, .. } => smallvec::smallvec![*obj, *value],
            Binary { lhs, rhs, .. } | Compare { lhs, rhs, .. } | Is { lhs, rhs, .. } => smallvec::smallvec![*lhs, *rhs],
            Contains { item, container, .. } => smallvec::smallvec![*item, *container],
            GetItem { obj, key } | DelItem { obj, key } => smallvec::smallvec![*obj, *key],
            SetItem { obj, key, value } => smallvec::smallvec![*obj, *key, *value],
            BuildTuple(items) | BuildList(items) => items.iter().copied().collect(),
            ListAppend { list, value } => smallvec::smallvec![*list, *value],
            BuildSlice { start, stop, step } => smallvec::smallvec![*start, *stop, *step],
            LoadClosure { .. } => smallvec::smallvec![],
            MakeCell(v) | ListToTuple(v) | BeforeWith(v) => smallvec::smallvec![*v],
            CellGet { cell, .. } => smallvec::smallvec![*cell],
            CellSet { cell, value } => smallvec::smallvec![*cell, *value],
            MakeFunction { code, closure, annotations, kwdefaults, defaults } => {
                smallvec::smallvec![*code, *closure, *annotations, *kwdefaults, *defaults]
            }
            FormatValue { value, spec, .. } => smallvec::smallvec![*value, *spec],
            BuildString(items) | BuildMap(items) | BuildSet(items) => items.iter().copied().collect(),
            BuildConstKeyMap { keys, values } => std::iter::once(*keys).chain(values.iter().copied()).collect(),
            MapAdd { dict, key, value } => smallvec::smallvec![*dict, *key, *value],
            SetAdd { set, value } => smallvec::smallvec![*set, *value],
            ListExtend { list, iterable } => smallvec::smallvec![*list, *iterable],
            DictUpdate { dict, update } => smallvec::smallvec![*dict, *update],
            DictMerge { dict, update, func } => smallvec::smallvec![*dict, *update, *func],
            CallEx { callable, args, kwargs } => smallvec::smallvec![*callable, *args, *kwargs],
            UnpackSequence { value, .. } | UnpackEx { value, .. } => smallvec::smallvec![*value],
            TupleItem { tuple, .. } => smallvec::smallvec![*tuple],
            Call { method, callable, args, .. } => [*method, *callable].into_iter().chain(args.iter().copied()).collect(),
            DelAttr { obj, .. } => smallvec::smallvec![*obj],
            StoreGlobal { value, .. } => smallvec::smallvec![*value],
            SetUpdate { set, iterable } => smallvec::smallvec![*set, *iterable],
            ConstI64 { .. } | ConstF64 { .. } | ConstBool(_) | ClearLocal { .. } => smallvec::smallvec![],
            GuardType { value, .. } | Unbox { value, .. } | IntToFloat { value, .. } => smallvec::smallvec![*value],
            Box(v) | FloatNeg(v) | BoolNot(v) | RangeIterIndex(v) | RangeIndexNext(v) | GuardNonNegative(v) => smallvec::smallvec![*v],
            GuardFunction { value, .. } | GuardIs { value, .. } => smallvec::smallvec![*value],
            MathCall { value, .. } | FloatToInt { value, .. } | IntAbs(value) => smallvec::smallvec![*value],
            MathCall2 { lhs, rhs, .. } => smallvec::smallvec![*lhs, *rhs],
            LenOf(v) | IsInstanceOf { value: v, .. } => smallvec::smallvec![*v],
            Select { cond, if_true, if_false, .. } => smallvec::smallvec![*cond, *if_true, *if_false],
            IntBinary { lhs, rhs, .. } | FloatBinary { lhs, rhs, .. } | IntCompare { lhs, rhs, .. }
            | FloatCompare { lhs, rhs, .. } => smallvec::smallvec![*lhs, *rhs],
            RangeIterHasNext { it, index } | RangeIterItem { it, index } => smallvec::smallvec![*it, *index],
            RangeLen { start, stop, step } => smallvec::smallvec![*start, *stop, *step],
            RangeIterVirtual { start, step, len } => smallvec::smallvec![*start, *step, *len],
            SeqIterIndex { it, seq } => smallvec::smallvec![*it, *seq],
            CheckFlag { .. } | SetBound { .. } => smallvec::smallvec![],
            BoxIfBound { value, .. } => smallvec::smallvec![*value],
            GetItemInt { obj, index, .. } | LoadItemUnboxed { obj, index, .. } => smallvec::smallvec![*obj, *index],
            SetItemInt { obj, index, value, .. } => smallvec::smallvec![*obj, *index, *value],
            GuardArray { value, .. } => smallvec::smallvec![*value],
            LoadField { base, .. } => smallvec::smallvec![*base],
            ArrayIndex { index, dim, array, key, .. } => [*index, *dim, *array].into_iter().chain(key.iter().copied()).collect(),
            LoadElement { data, offset, .. } => smallvec::smallvec![*data, *offset],
            StoreElement { data, offset, value, .. } => smallvec::smallvec![*data, *offset, *value],
            GuardIntRange { value, .. } => smallvec::smallvec![*value],
            UfuncCall { args, .. } => args.iter().copied().collect(),
            UfuncBatchBegin => smallvec::smallvec![],
            UfuncBatched { generation, address, step, remaining, .. } => smallvec::smallvec![*generation, *address, *step, *remaining],
            Copy(v) => smallvec::smallvec![*v],
            GuardFpFlags | ClearFpFlags => smallvec::smallvec![],
            GuardCallee { value, .. } => smallvec::smallvec![*value],
            CallDirect { args, .. } => args.iter().copied().collect(),
            DirectArg { .. } => smallvec::smallvec![],
            CallCFunction { callable, args } => std::iter::once(*callable).chain(args.iter().copied()).collect(),
            UnboxFloatOwned(v) => smallvec::smallvec![*v],
            BoolListNew { len, .. } => smallvec::smallvec![*len],
            BoolListIter { list } | BoolListFree(list) => smallvec::smallvec![*list],
        }
    }

    /// The operands, mutably (same order as `operands`).
    pub fn operands_mut(&mut self) -> SmallVec<[&mut ValueId; 4]> {
        use Op::*;
        match self {
            LoadArg { .. } | Const { .. } | ConstObject { .. } | Null | LoadGlobal { .. } | PeekGlobal { .. } | GuardGlobalIs { .. }
            | CheckEvalBreaker { .. } | CheckTracing => smallvec::smallvec![],
            Incref(v) | Decref(v) | XDecref(v) | Not(v) | IsTrue(v) | IsTrueBorrowed(v) | IsNone(v) | IsNull(v)
            | NonNull(v) | GetIter(v) | IterNext(v) => smallvec::smallvec![v],
            PeekAttr { obj, .. } => smallvec::smallvec![obj],
            CheckBound { value, .. } | StoreLocal { value, .. } | Unary { value, .. } => smallvec::smallvec![value],
            LoadAttr { obj, .. } => smallvec::smallvec![obj],
            StoreAttr { obj, value, .. } => smallvec::smallvec![obj, value],
            Binary { lhs, rhs, .. } | Compare { lhs, rhs, .. } | Is { lhs, rhs, .. } => smallvec::smallvec![lhs, rhs],
            Contains { item, container, .. } => smallvec::smallvec![item, container],
            GetItem { obj, key } | DelItem { obj, key } => smallvec::smallvec![obj, key],
            SetItem { obj, key, value } => smallvec::smallvec![obj, key, value],
            BuildTuple(items) | BuildList(items) => items.iter_mut().collect(),
            ListAppend { list, value } => smallvec::smallvec![list, value],
            BuildSlice { start, stop, step } => smallvec::smallvec![start, stop, step],
            LoadClosure { .. } => smallvec::smallvec![],
            MakeCell(v) | ListToTuple(v) | BeforeWith(v) => smallvec::smallvec![v],
            CellGet { cell, .. } => smallvec::smallvec![cell],
            CellSet { cell, value } => smallvec::smallvec![cell, value],
            MakeFunction { code, closure, annotations, kwdefaults, defaults } => {
                smallvec::smallvec![code, closure, annotations, kwdefaults, defaults]
            }
            FormatValue { value, spec, .. } => smallvec::smallvec![value, spec],
            BuildString(items) | BuildMap(items) | BuildSet(items) => items.iter_mut().collect(),
            BuildConstKeyMap { keys, values } => std::iter::once(keys).chain(values.iter_mut()).collect(),
            MapAdd { dict, key, value } => smallvec::smallvec![dict, key, value],
            SetAdd { set, value } => smallvec::smallvec![set, value],
            ListExtend { list, iterable } => smallvec::smallvec![list, iterable],
            DictUpdate { dict, update } => smallvec::smallvec![dict, update],
            DictMerge { dict, update, func } => smallvec::smallvec![dict, update, func],
            CallEx { callable, args, kwargs } => smallvec::smallvec![callable, args, kwargs],
            UnpackSequence { value, .. } | UnpackEx { value, .. } => smallvec::smallvec![value],
            TupleItem { tuple, .. } => smallvec::smallvec![tuple],
            Call { method, callable, args, .. } => [method, callable].into_iter().chain(args.iter_mut()).collect(),
            DelAttr { obj, .. } => smallvec::smallvec![obj],
            StoreGlobal { value, .. } => smallvec::smallvec![value],
            SetUpdate { set, iterable } => smallvec::smallvec![set, iterable],
            ConstI64 { .. } | ConstF64 { .. } | ConstBool(_) | ClearLocal { .. } => smallvec::smallvec![],
            GuardType { value, .. } | Unbox { value, .. } | IntToFloat { value, .. } => smallvec::smallvec![value],
            Box(v) | FloatNeg(v) | BoolNot(v) | RangeIterIndex(v) | RangeIndexNext(v) | GuardNonNegative(v) => smallvec::smallvec![v],
            GuardFunction { value, .. } | GuardIs { value, .. } => smallvec::smallvec![value],
            MathCall { value, .. } | FloatToInt { value, .. } | IntAbs(value) => smallvec::smallvec![value],
            MathCall2 { lhs, rhs, .. } => smallvec::smallvec![lhs, rhs],
            LenOf(v) | IsInstanceOf { value: v, .. } => smallvec::smallvec![v],
            Select { cond, if_true, if_false, .. } => smallvec::smallvec![cond, if_true, if_false],
            IntBinary { lhs, rhs, .. } | FloatBinary { lhs, rhs, .. } | IntCompare { lhs, rhs, .. }
            | FloatCompare { lhs, rhs, .. } => smallvec::smallvec![lhs, rhs],
            RangeIterHasNext { it, index } | RangeIterItem { it, index } => smallvec::smallvec![it, index],
            RangeLen { start, stop, step } => smallvec::smallvec![start, stop, step],
            RangeIterVirtual { start, step, len } => smallvec::smallvec![start, step, len],
            SeqIterIndex { it, seq } => smallvec::smallvec![it, seq],
            CheckFlag { .. } | SetBound { .. } => smallvec::smallvec![],
            BoxIfBound { value, .. } => smallvec::smallvec![value],
            GetItemInt { obj, index, .. } | LoadItemUnboxed { obj, index, .. } => smallvec::smallvec![obj, index],
            SetItemInt { obj, index, value, .. } => smallvec::smallvec![obj, index, value],
            GuardArray { value, .. } => smallvec::smallvec![value],
            LoadField { base, .. } => smallvec::smallvec![base],
            ArrayIndex { index, dim, array, key, .. } => [index, dim, array].into_iter().chain(key.iter_mut()).collect(),
            LoadElement { data, offset, .. } => smallvec::smallvec![data, offset],
            StoreElement { data, offset, value, .. } => smallvec::smallvec![data, offset, value],
            GuardIntRange { value, .. } => smallvec::smallvec![value],
            UfuncCall { args, .. } => args.iter_mut().collect(),
            UfuncBatchBegin => smallvec::smallvec![],
            UfuncBatched { generation, address, step, remaining, .. } => smallvec::smallvec![generation, address, step, remaining],
            Copy(v) => smallvec::smallvec![v],
            GuardFpFlags | ClearFpFlags => smallvec::smallvec![],
            GuardCallee { value, .. } => smallvec::smallvec![value],
            CallDirect { args, .. } => args.iter_mut().collect(),
            DirectArg { .. } => smallvec::smallvec![],
            CallCFunction { callable, args } => std::iter::once(callable).chain(args.iter_mut()).collect(),
            UnboxFloatOwned(v) => smallvec::smallvec![v],
            BoolListNew { len, .. } => smallvec::smallvec![len],
            BoolListIter { list } | BoolListFree(list) => smallvec::smallvec![list],
        }
    }

    /// Whether the operation works on machine values only (made by the specialiser): it runs
    /// no Python code, so it needs no current-instruction update.
    pub fn is_machine(&self) -> bool {
        use Op::*;
        matches!(
            self,
            ConstI64 { .. } | ConstF64 { .. } | ConstBool(_) | GuardType { .. } | Unbox { .. } | Box(_) | BoxIfBound { .. }
                | IntBinary { .. } | FloatBinary { .. } | FloatNeg(_) | IntToFloat { .. } | IntCompare { .. }
                | MathCall { .. } | FloatToInt { .. } | IntAbs(_) | Select { .. } | MathCall2 { .. } | LenOf(_)
                | IsInstanceOf { .. }
                | FloatCompare { .. } | BoolNot(_) | RangeIterHasNext { .. } | RangeIterItem { .. } | RangeIterIndex(_)
                | RangeIndexNext(_) | SeqIterIndex { .. } | CheckFlag { .. } | SetBound { .. } | GuardNonNegative(_) | GuardFunction { .. }
                | RangeLen { .. } | RangeIterVirtual { .. }
                | GuardIs { .. } | GuardArray { .. } | LoadField { .. } | ArrayIndex { .. } | LoadElement { .. }
                | StoreElement { .. } | GuardIntRange { .. } | UfuncCall { .. } | UfuncBatchBegin | UfuncBatched { .. } | Copy(_) | GuardFpFlags | ClearFpFlags
                | GuardCallee { .. } | CallDirect { .. } | DirectArg { .. } | UnboxFloatOwned(_) | LoadItemUnboxed { .. }
                | BoolListNew { .. } | BoolListIter { .. } | BoolListFree(_)
        )
    }

    /// Whether the generic operation runs no code but the compiler's own: it reads or writes
    /// the frame, a constant or a global's dict entry (a dict of str keys: no `__eq__` runs),
    /// takes a reference, checks (and leaves on) a flag or compares identities. Releases and
    /// everything that may call into objects are the callers' to judge.
    pub fn runs_no_code(&self) -> bool {
        use Op::*;
        matches!(
            self,
            LoadArg { .. } | Const { .. } | ConstObject { .. } | Null | LoadGlobal { .. } | PeekGlobal { .. } | PeekAttr { .. }
                | Incref(_) | CheckBound { .. } | StoreLocal { .. } | CheckEvalBreaker { .. } | CheckTracing | IsNull(_)
                | NonNull(_) | IsNone(_) | Is { .. }
        )
    }

    /// Whether the operation only computes its result (no effect, cannot leave): it can be
    /// dropped when the result is unused.
    pub fn is_pure(&self) -> bool {
        use Op::*;
        matches!(
            self,
            Const { .. } | ConstObject { .. } | Null | ConstI64 { .. } | ConstF64 { .. } | ConstBool(_) | IntToFloat { exact: false, .. }
                | IntCompare { .. } | FloatCompare { .. } | BoolNot(_) | FloatNeg(_) | NonNull(_) | IsNull(_)
                | IsNone(_) | LoadArg { .. } | RangeIterItem { .. } | RangeIndexNext(_) | RangeIterIndex(_) | SeqIterIndex { .. }
                | LoadField { .. } | LoadElement { .. } | Copy(_) | RangeLen { .. } | RangeIterVirtual { .. }
                | BoolListIter { .. }
        ) || matches!(self, Unbox { to, .. } if *to != Type::I64)
            || matches!(self, FloatBinary { op: FloatOp::Add | FloatOp::Sub | FloatOp::Mul, .. })
    }

    /// The type of the result, or None for operations without one.
    pub fn result_type(&self) -> Option<Type> {
        use Op::*;
        match self {
            Incref(_) | Decref(_) | XDecref(_) | StoreLocal { .. } | StoreAttr { .. } | SetItem { .. }
            | DelItem { .. } | ListAppend { .. } | CheckEvalBreaker { .. } | CheckTracing | CellSet { .. } | MapAdd { .. }
            | SetAdd { .. } | ListExtend { .. } | DictUpdate { .. } | DictMerge { .. } | DelAttr { .. }
            | StoreGlobal { .. } | SetUpdate { .. } | BoolListFree(_) => None,
            Null => Some(Type::Null),
            IterNext(_) | BoxIfBound { .. } | PeekGlobal { .. } | PeekAttr { .. } => Some(Type::MaybeNull),
            IsTrue(_) | IsTrueBorrowed(_) | IsNone(_) | IsNull(_) => Some(Type::CBool),
            GuardType { .. }
            | ClearLocal { .. }
            | CheckFlag { .. }
            | SetBound { .. }
            | SetItemInt { .. }
            | GuardNonNegative(_)
            | GuardFunction { .. }
            | GuardIs { .. }
            | GuardArray { .. }
            | StoreElement { .. }
            | GuardIntRange { .. }
            | GuardCallee { .. }
            | GuardGlobalIs { .. }
            | GuardFpFlags
            | ClearFpFlags => None,
            LoadField { .. } | ArrayIndex { .. } => Some(Type::I64),
            LoadElement { dtype: crate::numpy::DType::F64 | crate::numpy::DType::F32, .. } | UfuncCall { .. } | UfuncBatched { .. } => Some(Type::F64),
            UfuncBatchBegin => Some(Type::I64),
            LoadElement { dtype: crate::numpy::DType::Bool, .. } => Some(Type::CBool),
            LoadElement { .. } => Some(Type::I64),
            CallDirect { ty, .. } | DirectArg { ty, .. } | LoadItemUnboxed { ty, .. } => Some(*ty),
            ConstI64 { .. }
            | IntBinary { .. }
            | RangeIterItem { .. }
            | RangeIterIndex(_)
            | RangeIndexNext(_)
            | RangeLen { .. }
            | SeqIterIndex { .. }
            | FloatToInt { .. }
            | IntAbs(_) => Some(Type::I64),
            ConstF64 { .. } | FloatBinary { .. } | FloatNeg(_) | IntToFloat { .. } | MathCall { .. } | MathCall2 { .. } | UnboxFloatOwned(_) => {
                Some(Type::F64)
            }
            LenOf(_) | BoolListNew { .. } => Some(Type::I64),
            IsInstanceOf { .. } => Some(Type::CBool),
            ConstBool(_) | IntCompare { .. } | FloatCompare { .. } | BoolNot(_) | RangeIterHasNext { .. } => {
                Some(Type::CBool)
            }
            Unbox { to, .. } => Some(*to),
            Select { ty, .. } => Some(*ty),
            // LoadArg: arguments are always bound when a frame starts.
            _ => Some(Type::Object),
        }
    }
}

/// How compiled code hands the frame to the interpreter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitKind {
    /// An exception is set: the interpreter unwinds from the instruction at the exit's offset
    /// (tracebacks, `except` handlers and `finally` run there, exactly as interpreted).
    Raise,
    /// No exception: the interpreter resumes by executing the instruction at the offset (used
    /// for what compiled code leaves to the interpreter).
    Resume,
    /// A failed guard or a result unboxed code cannot represent: as `Resume`, and counted (a
    /// function that keeps deoptimising is recompiled without speculation).
    Deopt,
}

/// The interpreter's view of the frame at a bytecode offset: every local slot and the value
/// stack, each entry an owned reference (or NULL) handed to the frame when the exit is taken.
#[derive(Debug, Clone, PartialEq)]
pub struct FrameState {
    /// Code-unit index of the instruction the interpreter continues with (or raises at).
    pub offset: u32,
    /// One value per `localsplus` slot.
    pub locals: Vec<ValueId>,
    /// The value stack, bottom first.
    pub stack: Vec<ValueId>,
}

/// A way out of compiled code.
#[derive(Debug, Clone, PartialEq)]
pub struct Exit {
    pub kind: ExitKind,
    pub state: FrameState,
    /// Owned values that are in neither the locals nor the stack at that point (an operation's
    /// consumed operands): released before the frame is handed over, as the interpreter
    /// releases them before it jumps to its error handling.
    pub release: Vec<ValueId>,
    /// Range iterators on the stack whose position lives in a machine value: (iterator,
    /// position) written back before the frame is handed over.
    pub range_positions: Vec<(ValueId, ValueId)>,
    /// Stack values the exit does not own (the reference counting around them was cancelled
    /// while compiled code runs): it takes a reference to each, once per entry, before the
    /// frame is handed over.
    pub borrowed: Vec<ValueId>,
    /// Checked before leaving (inside a loop whose NumPy float64 arithmetic is checked only
    /// once the loop is left, see `fp_flags`): if a floating-point exception NumPy reports was
    /// raised, the code leaves through this exit instead, to the loop's start, and the
    /// interpreter redoes the loop (warning as NumPy does).
    pub redo_from: Option<ExitId>,
}

/// An instruction: an operation, its result, and the exit it takes when it fails.
#[derive(Debug, Clone, PartialEq)]
pub struct Instr {
    pub result: Option<ValueId>,
    pub op: Op,
    pub exit: Option<ExitId>,
    /// Code unit of the bytecode instruction it comes from: the frame's current instruction
    /// while it runs (what code it calls, even a `__del__`, sees as the line).
    pub at: u32,
    /// For instructions the specialiser may replace: a `Deopt` exit with the frame as it is
    /// *before* the instruction (operands still on the stack), so a failed guard or overflow
    /// hands it to the interpreter to redo.
    pub deopt: Option<ExitId>,
}

/// A jump to a block, passing arguments for its parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct Edge {
    pub target: BlockId,
    pub args: Vec<ValueId>,
}

/// How a block ends.
#[derive(Debug, Clone, PartialEq)]
pub enum Terminator {
    Jump(Edge),
    /// On a machine bool.
    Branch { cond: ValueId, if_true: Edge, if_false: Edge },
    /// Returns an owned reference to the caller.
    Return(ValueId),
    /// Leaves compiled code unconditionally.
    Exit(ExitId),
}

impl Terminator {
    /// The outgoing edges.
    pub fn edges(&self) -> SmallVec<[&Edge; 2]> {
        match self {
            Terminator::Jump(e) => smallvec::smallvec![e],
            Terminator::Branch { if_true, if_false, .. } => smallvec::smallvec![if_true, if_false],
            Terminator::Return(_) | Terminator::Exit(_) => smallvec::smallvec![],
        }
    }

    /// The outgoing edges, mutably.
    pub fn edges_mut(&mut self) -> SmallVec<[&mut Edge; 2]> {
        match self {
            Terminator::Jump(e) => smallvec::smallvec![e],
            Terminator::Branch { if_true, if_false, .. } => smallvec::smallvec![if_true, if_false],
            Terminator::Return(_) | Terminator::Exit(_) => smallvec::smallvec![],
        }
    }

    /// The values the terminator itself reads (not edge arguments).
    pub fn operands(&self) -> SmallVec<[ValueId; 1]> {
        match self {
            Terminator::Branch { cond, .. } => smallvec::smallvec![*cond],
            Terminator::Return(v) => smallvec::smallvec![*v],
            Terminator::Jump(_) | Terminator::Exit(_) => smallvec::smallvec![],
        }
    }
}

/// A basic block.
#[derive(Debug, Clone, PartialEq)]
pub struct Block {
    pub params: Vec<ValueId>,
    pub instrs: Vec<Instr>,
    pub terminator: Terminator,
    /// The bytecode offset (code units) the block starts at, for dumps and line numbers.
    pub offset: u32,
    /// Code unit of the bytecode instruction that ends the block (for a return: RETURN_VALUE).
    pub end_at: u32,
    /// The value of each local slot when the block starts (the specialiser tracks which value
    /// a `StoreLocal` replaces).
    pub locals_in: Vec<ValueId>,
}

impl Block {
    /// The exits the block may take: its instructions' (an eval-breaker check's resume exit
    /// too) and its terminator's.
    pub fn referenced_exits(&self) -> Vec<ExitId> {
        let mut exits = Vec::new();
        for instr in &self.instrs {
            exits.extend(instr.exit);
            if let Op::CheckEvalBreaker { resume, .. } = instr.op {
                exits.push(resume);
            }
        }
        if let Terminator::Exit(x) = self.terminator {
            exits.push(x);
        }
        exits
    }
}

/// A deopt exit with the frame as at a loop's header, seen through the edge entering the loop
/// from block `from`: made by the specialiser on entering each range loop, for checks made
/// once there (see `Function::loop_entries`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LoopEntry {
    pub from: BlockId,
    pub header: BlockId,
    pub exit: ExitId,
}

/// A function in HIR. Blocks, values and exits live in vectors indexed by their ids.
#[derive(Debug, Clone, PartialEq)]
pub struct Function {
    /// The code object's qualified name (for dumps).
    pub name: String,
    pub blocks: Vec<Block>,
    /// The type of each value.
    pub values: Vec<Type>,
    pub exits: Vec<Exit>,
    /// Number of `localsplus` slots (locals, cells, free variables).
    pub nlocalsplus: u32,
    /// Unboxed block parameters that may stand for an unbound local (NULL), with that local.
    /// Whether the local is bound lives in memory, one flag per local (`SetBound`), not in
    /// a register: it is read only by exits and unbound-local checks. The flag of local `l`
    /// says whether `l` is bound wherever `l`'s value is one of these parameters (a parameter
    /// seen in another local's slot got there through a checked load, so it is bound).
    pub bound_flags: crate::hashing::HashMap<ValueId, u32>,
    /// Machine values that box to NumPy scalars (`numpy.float64`, `numpy.int64`,
    /// `numpy.bool_` by their type) rather than `float`, `int`, `bool`: always, or when the
    /// machine bool `Some(flag)` is set (a value that is one or the other, e.g. `s = 0.0`
    /// then `s += a[i]` in a loop).
    pub numpy_boxes: crate::hashing::HashMap<ValueId, Option<ValueId>>,
    /// The loop entries the specialiser's rewrite made exits for (deopts to the loop's start,
    /// valid on the edge entering it), for the passes that move checks there (`hoist_inlined`,
    /// `fp_flags`). Emptied by the clean-up, which then drops the exits no check took (so it
    /// is empty everywhere else).
    pub loop_entries: Vec<LoopEntry>,
}

impl Function {
    /// The entry block (always the first).
    pub const ENTRY: BlockId = BlockId(0);

    /// The block with this id.
    pub fn block(&self, id: BlockId) -> &Block {
        &self.blocks[id.index()]
    }

    /// The operation defining each value an instruction makes (block parameters have none).
    pub fn defining_ops(&self) -> crate::hashing::HashMap<ValueId, &Op> {
        self.blocks.iter().flat_map(|b| &b.instrs).filter_map(|i| Some((i.result?, &i.op))).collect()
    }

    /// The type of a value.
    pub fn type_of(&self, v: ValueId) -> Type {
        self.values[v.index()]
    }

    /// The exit with this id.
    pub fn exit(&self, id: ExitId) -> &Exit {
        &self.exits[id.index()]
    }

    /// Block ids in layout order.
    pub fn block_ids(&self) -> impl Iterator<Item = BlockId> {
        (0..self.blocks.len() as u32).map(BlockId)
    }
}
