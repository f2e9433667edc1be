//! Type specialisation: the generic HIR (every operation through the C API on boxed objects)
//! becomes code on unboxed machine values where the types are known.
//!
//! 1. **Kinds.** A forward fixpoint gives every value a set of possible kinds (`NULL`, `INT`
//!    fitting 64 bits, `FLOAT`, `BOOL`, `OTHER`), seeded by the argument types observed at the
//!    first compile (checked by entry guards) and by the constants, and carried through the
//!    operations whose result kind follows from their operands' (int + int is an int, or a
//!    deopt when it overflows).
//! 2. **Representation.** A value with one numeric kind lives unboxed (`I64`, `F64`, `CBool`)
//!    unless it flows into a block parameter that must stay an object, in which case it is
//!    boxed where it is made and keeps an unboxed *shadow*. Arguments stay objects (the frame
//!    owns them) with a shadow read after the entry guard.
//! 3. **Rewrite.** Specialisable operations become machine operations whose failure cases
//!    (overflow, division by zero, a range iterator that is not one) leave through the
//!    instruction's `Deopt` exit: the interpreter redoes the instruction on the boxed operands,
//!    so the result is exactly Python's. Everything else stays generic and gets boxed
//!    operands. Reference counting of unboxed values disappears; a local whose value is
//!    unboxed has a NULL (or stale, still owned) frame slot, and exits box it back.
//! 4. **Clean-up.** Dead pure instructions and block parameters go.

use crate::hashing::{HashMap, HashSet};

#[path = "specialize_arrays.rs"]
mod arrays;
use arrays::{ArrayPlan, Scope, View};
#[path = "specialize_lists.rs"]
mod lists;

use super::build::compact_exits;
use super::{
    BinaryOp, BlockId, CompareOp, Edge, Exit, ExitId, ExitKind, FloatOp, FrameState, Function, Instr, IntOp,
    Op, PyClass, Terminator, Type, UnaryOp, ValueId,
};

/// Possible kinds of a value, as a bit set.
pub type Kind = u8;
pub const NULL: Kind = 1;
pub const INT: Kind = 2;
pub const FLOAT: Kind = 4;
pub const BOOL: Kind = 8;
pub const OTHER: Kind = 16;
/// NumPy scalars (`numpy.float64`, `numpy.int64`, `numpy.bool_`): the same machine values as
/// `FLOAT`, `INT`, `BOOL`, boxed as NumPy's types, with NumPy's arithmetic where it differs
/// (operations whose NumPy result rjit does not reproduce stay generic).
pub const NPF64: Kind = 32;
pub const NPI64: Kind = 64;
pub const NPBOOL: Kind = 128;
const NUMPY_KINDS: Kind = NPF64 | NPI64 | NPBOOL;
const PYTHON_NUMBERS: Kind = INT | FLOAT | BOOL;

/// Whether a numeric value is a Python number, a NumPy scalar, or either (a block parameter
/// fed by both: it carries a machine bool saying which).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flavour {
    Python,
    Numpy,
    Mixed,
}

fn flavour(kind: Kind) -> Flavour {
    match (kind & PYTHON_NUMBERS != 0, kind & NUMPY_KINDS != 0) {
        (_, false) => Flavour::Python,
        (false, true) => Flavour::Numpy,
        (true, true) => Flavour::Mixed,
    }
}

/// A result of several operands' flavours: NumPy if one is surely NumPy, else unknown if one
/// may be, else Python (NumPy scalars win over Python numbers in arithmetic).
fn combine(flavours: &[Flavour]) -> Flavour {
    if flavours.contains(&Flavour::Numpy) {
        Flavour::Numpy
    } else if flavours.contains(&Flavour::Mixed) {
        Flavour::Mixed
    } else {
        Flavour::Python
    }
}

/// The kind of numeric base kind `base` (`INT`, `FLOAT` or `BOOL`) in flavour `f`.
fn with_flavour(base: Kind, f: Flavour) -> Kind {
    let numpy = match base {
        INT => NPI64,
        FLOAT => NPF64,
        _ => NPBOOL,
    };
    match f {
        Flavour::Python => base,
        Flavour::Numpy => numpy,
        Flavour::Mixed => base | numpy,
    }
}

/// A constant of the code object, as the specialiser sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ConstValue {
    Int(i64),
    Float(f64),
    Bool(bool),
    Other,
}

/// What the specialiser knows about the code object and the call that made it hot.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    /// Kind of each argument slot at the call that triggered compilation (`OTHER` if not a
    /// 64-bit int, float or bool).
    pub args: Vec<Kind>,
    pub consts: Vec<ConstValue>,
    /// `co_names` index of `range`, if the code names it (`for i in range(...)` loops).
    pub range_name: Option<u32>,
    /// Per code unit: the operand kind (`INT` or `FLOAT`) CPython's specialising interpreter
    /// saw for both operands of the binary operation or comparison there, else 0. Operands of
    /// unknown kind are guarded to be of that kind (a free type profile).
    pub hints: Vec<Kind>,
    /// Per code unit: the exact sequence CPython's specialising interpreter saw subscripted
    /// by an int there (`BINARY_SUBSCR_LIST_INT`...), if any. An item read from it that is
    /// only used as a number of one profiled kind is loaded unboxed (see `item_kinds`).
    pub sequences: Vec<Option<super::Sequence>>,
    /// Calls (by their result) of builtins and `math` functions known at compile time, which
    /// become machine code on numbers (guarded to still call that object).
    pub intrinsics: HashMap<ValueId, IntrinsicCall>,
    /// Per argument slot: the type of the NumPy array observed there, if it is one rjit
    /// accesses natively (checked by an entry guard when used).
    pub arrays: Vec<Option<crate::numpy::ArrayType>>,
    /// Per argument slot: the kind of every item of the exact list observed there, when the
    /// items sampled were all floats (or all ints): items read from it by an int index are
    /// speculated to be of that kind where no profile says more (a function compiled at its
    /// first call has none). Checked at each read (`LoadItemUnboxed`).
    pub list_items: Vec<Option<Kind>>,
    /// The code object's `co_names` (attribute names: `a.shape`).
    pub names: Vec<String>,
    /// Whether `for x in a` over a 1-D array argument may keep its position in a machine
    /// register (sequence iterators have the layout compiled code reads).
    pub array_loops: bool,
    /// Calls (by their result) through a global of a function that has a direct entry
    /// (`hir::direct`): the function being compiled (recursion) or another compiled function
    /// of the same globals. With arguments of the kinds the entry takes, such a call becomes
    /// `CallDirect`.
    pub direct_calls: HashMap<ValueId, DirectCall>,
    /// `a.dtype` comparisons decided at compile time (`crate::dtype_folds`).
    pub dtype: DtypeFacts,
    /// Calls (by result) expected to make a new array of this type (`np.zeros((n, m))`:
    /// `crate::array_results`), checked wherever they are indexed natively.
    pub array_results: HashMap<ValueId, crate::numpy::ArrayType>,
    /// The functions inlined into the code (`hir::inline`), whose guards may move out of
    /// loops (`hir::hoist_inlined`).
    pub inlined: Vec<super::hoist_inlined::Inlined>,
}

/// Comparisons of array arguments' dtypes (`a.dtype == np.float64`, `a.dtype.kind == 'f'`)
/// whose result follows from the array types the function is specialised for.
#[derive(Debug, Clone, Default)]
pub struct DtypeFacts {
    /// The comparisons, by result.
    pub folds: HashMap<ValueId, DtypeFold>,
    /// The values they compare and what those are made from (`a.dtype`, its attributes, a
    /// NumPy type through the `numpy` module, `numpy.dtype(c)`): loading and releasing them
    /// runs no Python code (a dtype's C getters, a module's dictionary).
    pub sources: HashSet<ValueId>,
    /// Calls `numpy.dtype(c)` of a constant (by result), with the callable and the address
    /// it must have: checked before the call, which then is NumPy's C code.
    pub calls: HashMap<ValueId, (ValueId, i64)>,
}

/// A comparison decided at compile time: its result, provided the arrays are of the types
/// the function is specialised for and the values are (still) the objects at the addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DtypeFold {
    pub result: bool,
    pub arrays: Vec<ValueId>,
    pub guards: Vec<(ValueId, i64)>,
}

/// A call of a function through its direct entry (see `Facts::direct_calls`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectCall {
    /// The callee's code object's address (the callee is guarded to run it).
    pub code: i64,
    /// The kinds of the arguments the direct entry takes (Python ints or floats).
    pub args: Vec<Kind>,
    /// The kind of the direct entry's result (for the function being compiled, an assumption:
    /// see `hir::direct`).
    pub returns: Kind,
    /// The direct entry's address; 0 for the function being compiled (its own, made with it).
    pub target: i64,
    /// Globals (by index in `co_names`) the entry relies on, and the objects they must be:
    /// checked before the call (`Op::GuardGlobalIs`).
    pub requires: Vec<(u32, i64)>,
}

/// A builtin or `math` function compiled as machine code on a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intrinsic {
    /// `math.sqrt`, `math.exp`, ...: a float result.
    Math(super::MathFn),
    /// `math.floor` / `math.ceil`: an int result.
    Round(super::Rounding),
    IsNan,
    IsInf,
    /// The builtin `abs`.
    Abs,
    /// The builtin `float` (the type).
    Float,
    /// The builtin `int` (the type).
    Int,
    /// The builtin `bool` (the type).
    Bool,
    /// The builtins `min` / `max` of two numbers of the same kind.
    Min,
    Max,
    /// `math.atan2`, `math.pow`: a float result.
    Math2(super::MathFn2),
    /// The builtin `pow` of two numbers, one a float (`a ** b`).
    Pow,
    /// The builtin `len` (of a NumPy array, or of an object: see `object_intrinsic`).
    Len,
    /// The builtin `isinstance` with the builtin type at this address (checked at run time).
    IsInstance(i64),
    /// A NumPy ufunc on numbers, through its own float64 loop.
    Ufunc(crate::numpy::UfuncLoop),
    /// `numpy.absolute` and `numpy.isnan` on numbers.
    NpAbs,
    NpIsNan,
    /// A builtin taking `nargs` (0 or 1) arguments (METH_NOARGS, METH_O), called through its
    /// C function. `float`: one known to run no Python code and to return an exact float
    /// (`random.random`): no write of locals to the frame before it, and its result, guarded
    /// to be a float, is unboxed at once.
    CFunction { nargs: u8, float: bool },
    /// The builtin `divmod` of two ints, unpacked at once (`q, r = divmod(a, b)`): the pair is
    /// never made (see `Kinds::divmods`).
    DivMod,
}

impl Intrinsic {
    /// How many arguments the compiled form takes.
    pub fn arity(self) -> usize {
        match self {
            Intrinsic::Min | Intrinsic::Max | Intrinsic::Math2(_) | Intrinsic::Pow | Intrinsic::IsInstance(_) | Intrinsic::DivMod => 2,
            Intrinsic::Ufunc(l) => usize::from(l.nin),
            Intrinsic::CFunction { nargs, .. } => usize::from(nargs),
            _ => 1,
        }
    }
}

/// A call of an intrinsic: which, and the address of the callable (checked at run time).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IntrinsicCall {
    pub which: Intrinsic,
    pub callable: i64,
}

/// The kind of an intrinsic's result on an argument of single numeric kind `arg`.
fn intrinsic_kind(which: Intrinsic, arg: Kind) -> Option<Kind> {
    Some(match which {
        Intrinsic::Math(_) | Intrinsic::Float => FLOAT,
        Intrinsic::Round(_) | Intrinsic::Int => INT,
        Intrinsic::IsNan | Intrinsic::IsInf | Intrinsic::Bool => BOOL,
        Intrinsic::Min | Intrinsic::Max | Intrinsic::Math2(_) | Intrinsic::Pow => return None,
        Intrinsic::Len | Intrinsic::IsInstance(_) | Intrinsic::CFunction { .. } | Intrinsic::DivMod => return None,
        Intrinsic::Abs if arg == FLOAT => FLOAT,
        Intrinsic::Abs => INT,
        Intrinsic::Ufunc(_) => NPF64,
        Intrinsic::NpAbs if arg == FLOAT => NPF64,
        Intrinsic::NpAbs => NPI64,
        Intrinsic::NpIsNan => NPBOOL,
    })
}

/// The kind of intrinsic `which` on arguments of base kinds `n` and flavours `f`, or None
/// where NumPy scalars (or bools) make it something rjit does not compile.
fn intrinsic_result(which: Intrinsic, n: &[Kind], f: &[Flavour]) -> Option<Kind> {
    let all_python = f.iter().all(|x| *x == Flavour::Python);
    match which {
        // min/max of two numbers of one kind (and flavour) is of that kind.
        Intrinsic::Min | Intrinsic::Max => match (n, f) {
            ([a, b], [fa, fb]) if a == b && fa == fb && *fa != Flavour::Mixed => Some(with_flavour(*a, *fa)),
            _ => None,
        },
        Intrinsic::Ufunc(l) => (n.iter().all(|&k| k == FLOAT || (k == INT && l.int_args))).then_some(NPF64),
        Intrinsic::NpAbs | Intrinsic::NpIsNan => (n[0] != BOOL).then(|| intrinsic_kind(which, n[0])).flatten(),
        // A NumPy scalar's own type (abs keeps it; int(), float(), bool() and round() of
        // one are made by NumPy's methods: left to the interpreter).
        Intrinsic::Abs if f[0] == Flavour::Numpy && n[0] != BOOL => Some(with_flavour(n[0], Flavour::Numpy)),
        Intrinsic::Math(_) | Intrinsic::IsNan | Intrinsic::IsInf => intrinsic_kind(which, n[0]),
        _ if all_python => intrinsic_kind(which, n[0]),
        _ => None,
    }
}

/// The kind of `lhs op rhs` on NumPy scalars or Python numbers (base kinds `n`, flavours `f`),
/// given the base kind `base` of the Python result; None where NumPy's result differs in a
/// way rjit does not reproduce (bool arithmetic, float `//`, `%`, `**`).
fn numpy_binary(op: BinaryOp, base: Kind, n: [Kind; 2], f: [Flavour; 2]) -> Option<Kind> {
    if f == [Flavour::Python; 2] {
        return Some(base);
    }
    let numpy_bool = n.iter().zip(&f).any(|(k, fl)| *k == BOOL && *fl != Flavour::Python);
    let float_special = base == FLOAT
        && matches!(op.non_inplace(), BinaryOp::FloorDivide | BinaryOp::Remainder | BinaryOp::Power);
    if numpy_bool || float_special || base == BOOL {
        return None;
    }
    Some(with_flavour(base, combine(&f)))
}

impl Facts {
    /// The profiled operand kind of the instruction at code unit `at` (0 if none).
    fn hint(&self, at: u32) -> Kind {
        self.hints.get(at as usize).copied().unwrap_or(0)
    }
}

/// The kind an operand of kind `k` is used as by an instruction profiled as `hint`: its own
/// single numeric kind, or the profiled kind (checked by a guard) when it may be any object.
fn speculated(k: Kind, hint: Kind) -> Kind {
    if numeric_bound(k).is_some() || hint == 0 || k & NULL != 0 || k & (OTHER | hint) == 0 {
        k
    } else {
        hint
    }
}

/// The single numeric kind of a set (NULL aside), if it has exactly one: `INT`, `FLOAT` or
/// `BOOL`, as Python numbers, NumPy scalars or either (see `flavour`).
fn numeric(kind: Kind) -> Option<Kind> {
    let k = kind & !NULL;
    if k == 0 {
        return None;
    }
    [(INT, NPI64), (FLOAT, NPF64), (BOOL, NPBOOL)].into_iter().find(|(base, np)| k & !(base | np) == 0).map(|(base, _)| base)
}

/// The kind of every value of `func` (indexed by value), as the specialiser infers them.
pub fn value_kinds(func: &Function, facts: &Facts) -> Vec<Kind> {
    infer_kinds(func, facts, &HashSet::default(), &HashSet::default(), &HashSet::default()).kind
}

/// The single numeric kind of a set that cannot be NULL.
pub fn numeric_bound(kind: Kind) -> Option<Kind> {
    if kind & NULL == 0 {
        numeric(kind)
    } else {
        None
    }
}

fn unboxed_type(kind: Kind) -> Type {
    match kind {
        INT => Type::I64,
        FLOAT => Type::F64,
        _ => Type::CBool,
    }
}

fn int_like(kind: Kind) -> bool {
    kind == INT || kind == BOOL
}

/// The kind of `lhs op rhs` on single numeric kinds, or None if it is not specialised.
fn binary_kind(op: BinaryOp, lhs: Kind, rhs: Kind) -> Option<Kind> {
    use BinaryOp::*;
    let op = op.non_inplace();
    if int_like(lhs) && int_like(rhs) {
        return match op {
            Add | Subtract | Multiply | FloorDivide | Remainder | Lshift | Rshift => Some(INT),
            And | Or | Xor => Some(if lhs == BOOL && rhs == BOOL { BOOL } else { INT }),
            TrueDivide => Some(FLOAT),
            _ => None,
        };
    }
    if (lhs == FLOAT || int_like(lhs)) && (rhs == FLOAT || int_like(rhs)) {
        return match op {
            Add | Subtract | Multiply | TrueDivide | FloorDivide | Remainder | Power => Some(FLOAT),
            _ => None,
        };
    }
    None
}

/// The kind of a unary operation's result on a single numeric kind.
fn unary_kind(op: UnaryOp, kind: Kind) -> Option<Kind> {
    match (op, kind) {
        (UnaryOp::Negative | UnaryOp::Positive, FLOAT) => Some(FLOAT),
        (_, INT | BOOL) => Some(INT),
        _ => None,
    }
}

struct Kinds {
    kind: Vec<Kind>,
    /// NumPy arrays of known type (arguments, checked when used).
    arrays: HashMap<ValueId, crate::numpy::ArrayType>,
    /// `BuildTuple` results, with their items (index tuples `a[i, j]`).
    tuples: HashMap<ValueId, Vec<ValueId>>,
    /// `a.shape` of an array `a`, by result.
    shapes: HashMap<ValueId, ValueId>,
    /// Sub-arrays made by indexing fewer dimensions than an array has (`a[i]` of a 2-D
    /// array, on the way to `a[i][j]`): the array, the indices so far, and the value indexed.
    rows: HashMap<ValueId, (ValueId, Vec<ValueId>, ValueId)>,
    /// Loads of the global `range`.
    range_globals: HashSet<ValueId>,
    /// Calls of them (that can deoptimise), by result.
    range_calls: HashSet<ValueId>,
    /// `IterNext` results of iterators of calls of the global `range` (speculated to be range
    /// iterators) that only `IsNull`/`NonNull` use.
    range_nexts: HashSet<ValueId>,
    /// Subscripts of a profiled list or tuple whose item is only used as a number of one
    /// profiled kind: by result, the sequence and that kind (see `item_loads`).
    item_loads: HashMap<ValueId, (super::Sequence, Kind)>,
    /// Likewise for iterators of 1-D arrays (`for x in a`), with the array iterated.
    array_nexts: HashMap<ValueId, ValueId>,
    /// Call results, with the exit that resumes the interpreter just after the call (the
    /// result on its stack): the `CheckTracing` exit of `after_call` in the builder.
    after_call: HashMap<ValueId, ExitId>,
    /// `q, r = divmod(a, b)`: calls of the builtin whose pair only `UNPACK_SEQUENCE` reads,
    /// by result: the arguments and the unpacked tuple. With two Python ints, the pair and
    /// the tuple are never made (`divmod_native`).
    divmods: HashMap<ValueId, (ValueId, ValueId, ValueId)>,
    /// The items of those tuples, by result: the call and the index.
    divmod_items: HashMap<ValueId, (ValueId, u32)>,
}

/// `q, r = divmod(a, b)` in `func` (see `Kinds::divmods`): the calls and the items.
fn find_divmods(func: &Function, facts: &Facts) -> (HashMap<ValueId, (ValueId, ValueId, ValueId)>, HashMap<ValueId, (ValueId, u32)>) {
    let mut calls: HashMap<ValueId, (ValueId, ValueId)> = HashMap::default();
    for instr in func.blocks.iter().flat_map(|b| &b.instrs) {
        if let (Op::Call { args, kwnames: None, .. }, Some(r)) = (&instr.op, instr.result) {
            if instr.deopt.is_some() && args.len() == 2 && facts.intrinsics.get(&r).is_some_and(|c| c.which == Intrinsic::DivMod) {
                calls.insert(r, (args[0], args[1]));
            }
        }
    }
    // Every use of a pair is one unpacking of two items (or a reference count), and every use
    // of the unpacked tuple takes an item; neither is in the frame of an exit (but the
    // unpacking's own, which cannot be taken, and the checks just after the call, dropped).
    let mut unpacked: HashMap<ValueId, ValueId> = HashMap::default();
    let mut items: HashMap<ValueId, (ValueId, u32)> = HashMap::default();
    let mut bad: HashSet<ValueId> = HashSet::default();
    for instr in func.blocks.iter().flat_map(|b| &b.instrs) {
        match (&instr.op, instr.result) {
            (Op::UnpackSequence { value, count: 2 }, Some(u)) if calls.contains_key(value) => {
                if unpacked.values().any(|c| c == value) {
                    bad.insert(*value);
                }
                unpacked.insert(u, *value);
            }
            (Op::TupleItem { tuple, index }, Some(r)) if unpacked.contains_key(tuple) => {
                items.insert(r, (unpacked[tuple], *index));
            }
            (Op::Incref(_) | Op::Decref(_) | Op::XDecref(_), _) => {}
            (op, _) => bad.extend(op.operands().into_iter().filter(|v| calls.contains_key(v) || unpacked.contains_key(v))),
        }
    }
    for block in &func.blocks {
        let edges = block.terminator.edges().into_iter().flat_map(|e| e.args.clone());
        for v in block.terminator.operands().into_iter().chain(edges) {
            bad.insert(unpacked.get(&v).copied().unwrap_or(v));
        }
        for instr in &block.instrs {
            let checks_after_call = matches!(instr.op, Op::CheckEvalBreaker { .. } | Op::CheckTracing | Op::UnpackSequence { .. });
            let mut exits: Vec<ExitId> = instr.exit.into_iter().collect();
            if let Op::CheckEvalBreaker { resume, .. } = instr.op {
                exits.push(resume);
            }
            if checks_after_call {
                continue;
            }
            for x in exits.into_iter().chain(instr.deopt) {
                let exit = func.exit(x);
                for v in exit.state.locals.iter().chain(&exit.state.stack).chain(&exit.release) {
                    bad.insert(unpacked.get(v).copied().unwrap_or(*v));
                }
            }
        }
    }
    let divmods: HashMap<ValueId, (ValueId, ValueId, ValueId)> = unpacked
        .iter()
        .filter(|(_, call)| !bad.contains(call))
        .map(|(u, call)| (*call, (calls[call].0, calls[call].1, *u)))
        .collect();
    items.retain(|_, (call, _)| divmods.contains_key(call));
    (divmods, items)
}

/// For each call's result, the first `CheckTracing` after the call in its block whose exit
/// has the result on top of the stack: the frame as the interpreter has it after the call.
fn after_call_exits(func: &Function) -> HashMap<ValueId, ExitId> {
    let mut found = HashMap::default();
    for block in &func.blocks {
        for (i, instr) in block.instrs.iter().enumerate() {
            let (Op::Call { .. }, Some(r)) = (&instr.op, instr.result) else { continue };
            for later in &block.instrs[i + 1..] {
                match (&later.op, later.exit) {
                    (Op::Call { .. }, _) => break,
                    (Op::CheckTracing, Some(x)) => {
                        if func.exit(x).state.stack.last() == Some(&r) {
                            found.insert(r, x);
                        }
                        break;
                    }
                    _ => {}
                }
            }
        }
    }
    found
}

/// `generic_loads`: element loads of arrays that stay generic (their results are objects of
/// unknown kind).
/// `demoted`: arrays the function makes (`Facts::array_results`) that stay objects (see
/// `ArrayPlan::demoted`).
/// `bool_items`: items read from lists of bools kept as bytes (see `lists`).
fn infer_kinds(
    func: &Function,
    facts: &Facts,
    generic_loads: &HashSet<ValueId>,
    demoted: &HashSet<ValueId>,
    bool_items: &HashSet<ValueId>,
) -> Kinds {
    let mut kind = vec![0 as Kind; func.values.len()];
    let mut range_iters = HashSet::default();
    let mut range_nexts = HashSet::default();
    // Calls of the global `range`: their iterators are speculated to be range iterators.
    let mut range_calls = HashSet::default();
    let mut deopting_range_calls = HashSet::default();
    let mut range_globals = HashSet::default();
    // `for x in a` over a 1-D array argument: its iterator (a sequence iterator), and its
    // `IterNext` results, unless the plan found the loop cannot keep a view of the array.
    let mut vector_args = HashSet::default();
    let mut array_iters: HashMap<ValueId, ValueId> = HashMap::default();
    let mut array_nexts: HashMap<ValueId, ValueId> = HashMap::default();
    for block in &func.blocks {
        for instr in &block.instrs {
            match (&instr.op, instr.result) {
                (Op::LoadArg { local }, Some(r)) if facts.array_loops => {
                    if let Some(Some(ty)) = facts.arrays.get(*local as usize) {
                        if ty.ndim == 1 {
                            vector_args.insert(r);
                        }
                    }
                }
                (Op::GetIter(v), Some(r)) if vector_args.contains(v) && instr.deopt.is_some() => {
                    array_iters.insert(r, *v);
                }
                (Op::IterNext(it), Some(r)) if array_iters.contains_key(it) && instr.deopt.is_some() && !generic_loads.contains(&r) => {
                    array_nexts.insert(r, array_iters[it]);
                }
                (Op::LoadGlobal { name }, Some(r)) if Some(*name) == facts.range_name => {
                    range_globals.insert(r);
                }
                (Op::Call { callable, .. }, Some(r)) if range_globals.contains(callable) => {
                    if instr.deopt.is_some() {
                        deopting_range_calls.insert(r);
                    }
                    range_calls.insert(r);
                }
                (Op::GetIter(v), Some(r)) if range_calls.contains(v) => {
                    range_iters.insert(r);
                }
                (Op::IterNext(it), Some(r)) if range_iters.contains(it) && instr.deopt.is_some() => {
                    range_nexts.insert(r);
                }
                _ => {}
            }
        }
    }
    // An IterNext result used other than by IsNull/NonNull cannot be split into the two
    // machine operations.
    for block in &func.blocks {
        for instr in &block.instrs {
            if !matches!(instr.op, Op::IsNull(_) | Op::NonNull(_)) {
                for v in instr.op.operands() {
                    range_nexts.remove(&v);
                    array_nexts.remove(&v);
                }
            }
        }
        for v in block.terminator.operands().into_iter().chain(block.terminator.edges().iter().flat_map(|e| e.args.clone())) {
            range_nexts.remove(&v);
            array_nexts.remove(&v);
        }
    }
    for exit in &func.exits {
        for v in exit.state.locals.iter().chain(&exit.state.stack).chain(&exit.release) {
            range_nexts.remove(v);
            array_nexts.remove(v);
        }
    }
    // A `for` whose body never loops back (it always breaks, returns or raises) has no loop
    // header: its FOR_ITER is in the block that makes the iterator, so there is no edge into
    // the loop on which to read the iterator's position. It stays generic.
    for block in &func.blocks {
        let defined: HashSet<ValueId> = block.params.iter().copied().chain(block.instrs.iter().filter_map(|i| i.result)).collect();
        for instr in &block.instrs {
            if let (Op::IterNext(it), Some(r)) = (&instr.op, instr.result) {
                if defined.contains(it) {
                    range_nexts.remove(&r);
                    array_nexts.remove(&r);
                }
            }
        }
    }
    // NumPy arrays: the arguments observed as arrays, the index tuples and `a.shape`.
    let mut arrays = HashMap::default();
    let mut tuples = HashMap::default();
    let mut shapes = HashMap::default();
    let mut rows: HashMap<ValueId, (ValueId, Vec<ValueId>, ValueId)> = HashMap::default();
    let attr = |name: u32| facts.names.get(name as usize).map(String::as_str);
    for instr in func.blocks.iter().flat_map(|b| &b.instrs) {
        match (&instr.op, instr.result) {
            (Op::LoadArg { local }, Some(r)) => {
                if let Some(Some(ty)) = facts.arrays.get(*local as usize) {
                    arrays.insert(r, *ty);
                }
            }
            (Op::Call { .. }, Some(r)) if facts.array_results.contains_key(&r) && !demoted.contains(&r) => {
                arrays.insert(r, facts.array_results[&r]);
            }
            (Op::BuildTuple(items), Some(r)) => {
                tuples.insert(r, items.clone());
            }
            (Op::LoadAttr { obj, name }, Some(r)) if arrays.contains_key(obj) && attr(*name) == Some("shape") => {
                shapes.insert(r, *obj);
            }
            (Op::GetItem { obj, key }, Some(r)) if !tuples.contains_key(key) => {
                let (array, mut indices) = match (arrays.get(obj), rows.get(obj)) {
                    (Some(_), _) => (*obj, Vec::new()),
                    (None, Some((a, indices, _))) => (*a, indices.clone()),
                    _ => continue,
                };
                indices.push(*key);
                let ndim: usize = arrays.get(&array).map_or(0, |t: &crate::numpy::ArrayType| usize::from(t.ndim));
                if indices.len() < ndim {
                    rows.insert(r, (array, indices, *obj));
                }
            }
            _ => {}
        }
    }
    let item_loads = item_loads(func, facts);
    let (divmods, divmod_items) = find_divmods(func, facts);
    let const_int = |v: ValueId, defs: &HashMap<ValueId, &Op>| match defs.get(&v) {
        Some(Op::Const { index }) => match facts.consts.get(*index as usize) {
            Some(ConstValue::Int(c)) => Some(*c),
            _ => None,
        },
        _ => None,
    };
    let defs = func.defining_ops();
    let after_call = after_call_exits(func);
    loop {
        let mut changed = false;
        let mut set = |kind: &mut Vec<Kind>, v: ValueId, k: Kind| {
            let new = kind[v.index()] | k;
            if new != kind[v.index()] {
                kind[v.index()] = new;
                changed = true;
            }
        };
        for block in &func.blocks {
            for instr in &block.instrs {
                let Some(r) = instr.result else { continue };
                let k = |v: &ValueId| kind[v.index()];
                // A result computed from operands of single numeric kinds by `f` (when the
                // instruction can deoptimise, if `needs_deopt`); unknown while an operand is.
                let hint = if instr.deopt.is_some() { facts.hint(instr.at) } else { 0 };
                let from_numbers = |operands: &[ValueId], needs_deopt: bool, f: &dyn Fn(&[Kind], &[Flavour]) -> Option<Kind>| {
                    let kinds: Vec<Kind> = operands.iter().map(|v| speculated(k(v), hint)).collect();
                    if kinds.contains(&0) {
                        return 0;
                    }
                    let numbers: Option<Vec<Kind>> = kinds.iter().map(|&x| numeric_bound(x)).collect();
                    let flavours: Vec<Flavour> = kinds.iter().map(|&x| flavour(x)).collect();
                    match numbers {
                        Some(n) if !needs_deopt || instr.deopt.is_some() => f(&n, &flavours).unwrap_or(OTHER),
                        _ => OTHER,
                    }
                };
                // An element of a known array, indexed by ints (one per dimension).
                let element = |obj: ValueId, key: ValueId| -> Kind {
                    let (array, mut indices) = match rows.get(&obj) {
                        Some((a, indices, _)) if !tuples.contains_key(&key) => (*a, indices.clone()),
                        Some(_) => return OTHER,
                        None => (obj, Vec::new()),
                    };
                    let ty = arrays[&array];
                    indices.extend(tuples.get(&key).cloned().unwrap_or_else(|| vec![key]));
                    let kinds: Vec<Kind> = indices.iter().map(|i| k(i)).collect();
                    if kinds.contains(&0) {
                        return 0;
                    }
                    if indices.len() != usize::from(ty.ndim) || kinds.iter().any(|&x| numeric_bound(x) != Some(INT)) {
                        return OTHER;
                    }
                    match ty.dtype {
                        crate::numpy::DType::F64 => NPF64,
                        crate::numpy::DType::I64 => NPI64,
                        crate::numpy::DType::Bool => NPBOOL,
                        _ => OTHER,
                    }
                };
                let result = match &instr.op {
                    _ if bool_items.contains(&r) => BOOL,
                    Op::LoadArg { local } => facts.args.get(*local as usize).copied().unwrap_or(OTHER),
                    Op::Null => NULL,
                    Op::Const { index } => match facts.consts.get(*index as usize) {
                        Some(ConstValue::Int(_)) => INT,
                        Some(ConstValue::Float(_)) => FLOAT,
                        Some(ConstValue::Bool(_)) => BOOL,
                        _ => OTHER,
                    },
                    Op::CheckBound { value, .. } => k(value) & !NULL,
                    Op::NonNull(v) if range_nexts.contains(v) => INT,
                    // The item of an array loop: the element `a[i]` would load.
                    Op::NonNull(v) if array_nexts.contains_key(v) => match arrays[&array_nexts[v]].dtype {
                        crate::numpy::DType::F64 => NPF64,
                        crate::numpy::DType::I64 => NPI64,
                        crate::numpy::DType::Bool => NPBOOL,
                        _ => OTHER,
                    },
                    Op::NonNull(v) => k(v) & !NULL,
                    Op::Binary { op, lhs, rhs } => from_numbers(&[*lhs, *rhs], true, &|n, f| {
                        numpy_binary(*op, binary_kind(*op, n[0], n[1])?, [n[0], n[1]], [f[0], f[1]])
                    }),
                    // `a.dtype == np.float64` and the like: decided at compile time.
                    Op::Compare { .. } if instr.deopt.is_some() && facts.dtype.folds.contains_key(&r) => BOOL,
                    Op::Compare { lhs, rhs, .. } => from_numbers(&[*lhs, *rhs], true, &|_, f| Some(with_flavour(BOOL, combine(f)))),
                    Op::Unary { op, value } => from_numbers(&[*value], true, &|n, f| match f[0] {
                        Flavour::Python => unary_kind(*op, n[0]),
                        _ if n[0] == BOOL => None,
                        fl => Some(with_flavour(unary_kind(*op, n[0])?, fl)),
                    }),
                    Op::Not(v) => from_numbers(&[*v], false, &|_, _| Some(BOOL)),
                    Op::Call { args, .. }
                        if facts.intrinsics.get(&r).is_some_and(|c| c.which == Intrinsic::Len)
                            && args.len() == 1
                            && arrays.contains_key(&args[0]) =>
                    {
                        if instr.deopt.is_some() { INT } else { OTHER }
                    }
                    // len(x) of an object is an int, isinstance(x, T) a bool (each leaves for
                    // the interpreter where that takes Python code).
                    Op::Call { args, .. }
                        if instr.deopt.is_some()
                            && matches!(facts.intrinsics.get(&r).map(|c| c.which), Some(Intrinsic::Len | Intrinsic::IsInstance(_)))
                            && facts.intrinsics[&r].which.arity() == args.len() =>
                    {
                        match (facts.intrinsics[&r].which, k(&args[0])) {
                            // Unknown while the argument is.
                            (_, 0) => 0,
                            (Intrinsic::Len, a) if a & (NULL | PYTHON_NUMBERS | NUMPY_KINDS) == 0 => INT,
                            (Intrinsic::IsInstance(_), a) if a & NULL == 0 => BOOL,
                            _ => OTHER,
                        }
                    }
                    // A builtin called through its C function: a float where it is known to
                    // return one (guarded just after the call), else any object.
                    Op::Call { .. } if matches!(facts.intrinsics.get(&r).map(|c| c.which), Some(Intrinsic::CFunction { .. })) => {
                        match facts.intrinsics[&r].which {
                            Intrinsic::CFunction { float: true, .. } if instr.deopt.is_some() && after_call.contains_key(&r) => FLOAT,
                            _ => OTHER,
                        }
                    }
                    Op::Call { args, .. } if facts.intrinsics.get(&r).is_some_and(|c| c.which.arity() == args.len()) => {
                        let which = facts.intrinsics[&r].which;
                        from_numbers(args, true, &|n, f| {
                            let python = f.iter().all(|x| *x == Flavour::Python);
                            match (which, n) {
                                (Intrinsic::Math2(_), _) => Some(FLOAT),
                                // pow(a, b) is a ** b: a float if either is one (NumPy
                                // scalars: NumPy's power, left to the interpreter).
                                (Intrinsic::Pow, [a, b]) => (python && (*a == FLOAT || *b == FLOAT)).then_some(FLOAT),
                                _ => intrinsic_result(which, n, f),
                            }
                        })
                    }
                    // A call of this function with arguments of the kinds it is specialised for
                    // (exactly: the direct entry takes those machine values).
                    Op::Call { args, .. } if facts.direct_calls.get(&r).is_some_and(|c| c.args.len() == args.len()) => {
                        let call = &facts.direct_calls[&r];
                        from_numbers(args, true, &|n, f| {
                            (n == call.args.as_slice() && f.iter().all(|x| *x == Flavour::Python)).then_some(call.returns)
                        })
                    }
                    // An item of `q, r = divmod(a, b)` of two Python ints.
                    Op::TupleItem { .. } if divmod_items.contains_key(&r) => {
                        let (a, b, _) = divmods[&divmod_items[&r].0];
                        from_numbers(&[a, b], false, &|n, f| (n == [INT, INT] && f.iter().all(|x| *x == Flavour::Python)).then_some(INT))
                    }
                    Op::GetItem { .. } if generic_loads.contains(&r) => OTHER,
                    Op::GetItem { obj, key } if arrays.contains_key(obj) || rows.contains_key(obj) => element(*obj, *key),
                    Op::GetItem { obj, key } if shapes.contains_key(obj) => {
                        let ndim = i64::from(arrays[&shapes[obj]].ndim);
                        match const_int(*key, &defs) {
                            Some(c) if (-ndim..ndim).contains(&c) => INT,
                            _ => OTHER,
                        }
                    }
                    Op::LoadAttr { obj, name } if arrays.contains_key(obj) && matches!(attr(*name), Some("ndim" | "size")) => INT,
                    // An item of a profiled list or tuple used only as a number of one kind:
                    // that kind, checked where it is read (indexed by a machine int).
                    Op::GetItem { key, .. } if item_loads.contains_key(&r) => match k(key) {
                        0 => 0,
                        kk if numeric_bound(kk) == Some(INT) && flavour(kk) == Flavour::Python => item_loads[&r].1,
                        _ => OTHER,
                    },
                    _ => match func.type_of(r) {
                        Type::Object | Type::MaybeNull => OTHER,
                        Type::Null => NULL,
                        // Machine values made by the builder (truth tests) are not Python values.
                        _ => 0,
                    },
                };
                set(&mut kind, r, result);
            }
            for edge in block.terminator.edges() {
                let params = &func.block(edge.target).params;
                for (p, a) in params.iter().zip(&edge.args) {
                    let ka = kind[a.index()];
                    set(&mut kind, *p, ka);
                }
            }
        }
        if !changed {
            break;
        }
    }
    Kinds {
        kind,
        arrays,
        tuples,
        shapes,
        rows,
        range_globals,
        range_calls: deopting_range_calls,
        range_nexts,
        array_nexts,
        after_call,
        item_loads,
        divmods,
        divmod_items,
    }
}

/// Subscripts `obj[key]` whose item can be read as a machine value: the interpreter saw an
/// exact list or tuple there (`Facts::sequences`), and every use of the item is an operation
/// profiled for operands of one numeric kind (`Facts::hints`), which would guard it to be of
/// that kind anyway (or its reference counting). The guard then moves to the read itself,
/// which leaves before the subscript when it fails, so no reference to the item is taken.
/// The item is never stored, passed, returned or compared by identity: a boxed copy (made by
/// an exit) is as good as the item for the operations that use it.
fn item_loads(func: &Function, facts: &Facts) -> HashMap<ValueId, (super::Sequence, Kind)> {
    let mut candidates: HashMap<ValueId, (super::Sequence, Kind)> = HashMap::default();
    let arg_slots: HashMap<ValueId, u32> = func
        .blocks
        .iter()
        .flat_map(|b| &b.instrs)
        .filter_map(|i| match (&i.op, i.result) {
            (Op::LoadArg { local }, Some(r)) => Some((r, *local)),
            _ => None,
        })
        .collect();
    // Reads of an argument observed as a list of one kind of number: that kind, whatever the
    // (missing) profile of the operations using the item says.
    let mut sampled: HashSet<ValueId> = HashSet::default();
    for instr in func.blocks.iter().flat_map(|b| &b.instrs) {
        if let (Op::GetItem { obj, .. }, Some(r), Some(_)) = (&instr.op, instr.result, instr.deopt) {
            if let Some(Some(seq)) = facts.sequences.get(instr.at as usize) {
                candidates.insert(r, (*seq, 0));
            } else if let Some(Some(kind)) = arg_slots.get(obj).and_then(|&slot| facts.list_items.get(slot as usize)) {
                candidates.insert(r, (super::Sequence::List, *kind));
                sampled.insert(r);
            }
        }
    }
    let mut rejected: HashSet<ValueId> = HashSet::default();
    for instr in func.blocks.iter().flat_map(|b| &b.instrs) {
        let operands = instr.op.operands();
        let hint = match instr.op {
            Op::Binary { .. } | Op::Compare { .. } if instr.deopt.is_some() => facts.hint(instr.at),
            Op::Incref(_) | Op::Decref(_) | Op::XDecref(_) => continue,
            _ => 0,
        };
        for v in operands {
            let Some(entry) = candidates.get_mut(&v) else { continue };
            if sampled.contains(&v) && hint == 0 && matches!(instr.op, Op::Binary { .. } | Op::Compare { .. }) {
                continue;
            }
            match hint {
                INT | FLOAT if entry.1 == 0 || entry.1 == hint => entry.1 = hint,
                _ => {
                    rejected.insert(v);
                }
            }
        }
    }
    for block in &func.blocks {
        let edge_args = block.terminator.edges().into_iter().flat_map(|e| e.args.clone());
        rejected.extend(block.terminator.operands().into_iter().chain(edge_args));
    }
    candidates.retain(|v, (_, kind)| *kind != 0 && !rejected.contains(v));
    candidates
}

/// How a value is represented after the rewrite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Repr {
    /// An object (a reference), as in the generic HIR.
    Boxed,
    /// A machine value of this type; no reference.
    Unboxed(Type),
}

/// Specialises `func` (built with deopt states) for `facts`. Returns None when nothing was
/// specialised (the generic function is as good).
pub fn specialize(func: &Function, facts: &Facts) -> Option<Function> {
    // Lists of bools found to need a real list (see `lists`): specialised again without.
    let not_virtual = std::cell::RefCell::new(HashSet::default());
    loop {
        let demoted = not_virtual.borrow().len();
        let out = specialize_with(func, facts, &not_virtual);
        if out.is_some() || not_virtual.borrow().len() == demoted {
            return out;
        }
    }
}

fn specialize_with(func: &Function, facts: &Facts, not_virtual: &std::cell::RefCell<HashSet<ValueId>>) -> Option<Function> {
    // Array accesses without a view stay generic, which may make more code generic (and
    // kill more views): repeat until the plan is stable.
    // So may arrays the function makes that are used where they cannot be verified.
    let mut generic_loads = HashSet::default();
    let mut demoted = HashSet::default();
    let mut rounds = 0;
    let mut s = loop {
        let bool_lists = lists::find(func, facts, not_virtual);
        let kinds = infer_kinds(func, facts, &generic_loads, &demoted, &bool_lists.items);
        if !lists::kinds_fit(&bool_lists, func, &kinds) {
            continue; // (a list fewer each time)
        }
        let mut s = Specializer::new(func, kinds, facts);
        s.lists = bool_lists;
        s.find_range_loops();
        s.find_native_ranges();
        s.plan = s.plan_arrays();
        if s.plan.generic_loads.is_subset(&generic_loads) && s.plan.demoted.is_empty() {
            break s;
        }
        rounds += 1;
        if rounds > 4 + facts.array_results.len() {
            return None;
        }
        generic_loads.extend(s.plan.generic_loads.iter().copied());
        demoted.extend(s.plan.demoted.iter().copied());
    };
    s.choose_representations();
    s.bool_list_representations();
    if !s.anything_unboxed() {
        return None;
    }
    let mut out = s.rewrite()?;
    super::hoist_inlined::hoist(&mut out, &facts.inlined);
    super::ufunc_batch::batch(&mut out);
    super::ufunc_flags::check_after_calls(&mut out);
    super::cse::reuse_repeated(&mut out);
    super::cse::pair_divisions(&mut out);
    clean_up(&mut out);
    super::if_convert::conditional_increments(&mut out);
    Some(out)
}

struct Specializer<'a> {
    func: &'a Function,
    kinds: Kinds,
    repr: Vec<Repr>,
    /// Machine-value shadows of boxed values of one numeric kind (made next to the value).
    shadow: HashMap<ValueId, ValueId>,
    /// The function being made.
    out: Function,
    /// Uses rewritten to other values (e.g. a truth test of a machine bool is the bool).
    subst: HashMap<ValueId, ValueId>,
    /// Shadows of arguments that were used (they need an entry guard).
    used_arg_shadows: HashSet<ValueId>,
    /// The argument values (`LoadArg` results).
    args: HashSet<ValueId>,
    /// What the specialiser was told (constants, the type profile, intrinsic calls).
    facts: &'a Facts,
    /// Range loops, by the `IterNext` result of their header.
    range_loops: HashMap<ValueId, RangeLoop>,
    /// Calls of `range` whose range and iterator are never made if the arguments are
    /// machine ints (see `find_native_ranges`): the call's result and the iterator.
    native_range_calls: HashMap<ValueId, ValueId>,
    /// Their arguments.
    native_range_args: HashMap<ValueId, Vec<ValueId>>,
    /// The calls rewritten so, and their virtual iterators (`Op::RangeIterVirtual`), by
    /// iterator.
    native_calls_made: HashSet<ValueId>,
    virtual_iters: HashMap<ValueId, VirtualRange>,
    /// Machine ints known to be in `0..bound` (the item of `for i in range(bound)`), by
    /// value: an array index below its dimension needs no check.
    below: HashMap<ValueId, ValueId>,
    /// Which blocks dominate which (computed when there are range loops).
    dominators: Option<super::dominators::Dominators>,
    /// The block being rewritten.
    current: usize,
    /// Machine constants made from `co_consts[i]`: a generic operation that only borrows its
    /// operand gets the constant object itself, no box.
    const_origin: HashMap<ValueId, u32>,
    /// Machine values written to their local slots since the block started (a second call
    /// in the same block does not write them again).
    written: HashMap<u32, ValueId>,
    /// Position parameters of range loop headers (see `find_range_loops`), by block.
    header_params: Vec<Vec<ValueId>>,
    /// Where array views hold (see `arrays`).
    plan: ArrayPlan,
    /// The views made, by scope and array.
    views: HashMap<(Scope, ValueId), View>,
    /// Arrays verified at the entry (in order) and the loads of their views, for
    /// `entry_guards`.
    entry_arrays: Vec<ValueId>,
    entry_view_instrs: Vec<Instr>,
    /// Index of the instruction being rewritten in its block.
    current_instr: usize,
    /// Byte offsets of loop-invariant indices, computed on entering their loop: by (loop
    /// header, array, axis, index).
    hoisted_parts: HashMap<(usize, ValueId, usize, ValueId), ValueId>,
    /// (Position of a `for i in range(n)` loop, a dimension) checked on entering the loop to
    /// bound the position: `n <= dim` (`hoisted_index_checks`).
    bounded: HashSet<(ValueId, ValueId)>,
    /// Set when a value could not be given the representation it needs (the rewrite is
    /// abandoned).
    failed: bool,
    /// Values `BoxIfBound` boxes (as Python numbers).
    maybe_unbound_boxes: Vec<ValueId>,
    /// The machine bool saying whether a value that is a Python number or a NumPy scalar
    /// (`Flavour::Mixed`) is the NumPy one, by value.
    flags: HashMap<ValueId, ValueId>,
    /// Set while `generic` emits the call of a builtin known to run no Python code (see
    /// `Intrinsic::CFunction`).
    calling_pure_builtin: bool,
    /// The callable and arguments of such a call just made: the releases of them and the
    /// eval-breaker and tracing checks the interpreter makes after a call follow (see `instr`).
    after_pure_builtin: Option<Vec<ValueId>>,
    /// `q, r = divmod(a, b)` compiled as machine ints, by call: the quotient and remainder.
    divmod_values: HashMap<ValueId, [ValueId; 2]>,
    /// Lists of bools kept as bytes (see `lists`).
    lists: lists::BoolLists<'a>,
}

/// The machine values of a range loop whose iterator is never made.
#[derive(Debug, Clone, Copy)]
struct VirtualRange {
    start: ValueId,
    stop: ValueId,
    step: ValueId,
    len: ValueId,
    /// `range(n)`: the item is the position.
    counts_from_zero: bool,
    /// The step is 1: the item is `start + position`.
    unit_step: bool,
}

/// A `for` loop over a range iterator, or over a 1-D array (`array`), whose position lives
/// in a machine register.
#[derive(Debug, Clone, Copy)]
struct RangeLoop {
    /// The block starting with the loop's `IterNext` (FOR_ITER).
    header: usize,
    /// The block taking the next item (every block of the loop body is dominated by it).
    body: usize,
    it: ValueId,
    /// The position at the header (a parameter of it).
    index: ValueId,
    /// The position after taking the item (passed back along the loop's back-edges).
    next_index: ValueId,
    /// The `FOR_ITER`'s deopt exit (the frame at the header), from which the check on
    /// entering the loop makes its own.
    deopt: Option<ExitId>,
    /// For a loop over an array: the array, and the machine values of its layout the loop
    /// reads (loaded on entering the loop, where the array is verified).
    array: Option<(ValueId, IterView)>,
    /// The `FOR_ITER`'s raise exit (an item that cannot be made: MemoryError).
    raise: Option<ExitId>,
}

/// What an array loop reads of its array: data pointer, length and stride.
#[derive(Debug, Clone, Copy)]
struct IterView {
    data: ValueId,
    len: ValueId,
    stride: ValueId,
}

impl<'a> Specializer<'a> {
    fn new(func: &'a Function, kinds: Kinds, facts: &'a Facts) -> Specializer<'a> {
        let mut out = func.clone();
        for block in &mut out.blocks {
            block.instrs.clear();
        }
        let args = func.blocks[0]
            .instrs
            .iter()
            .filter(|i| matches!(i.op, Op::LoadArg { .. }))
            .filter_map(|i| i.result)
            .collect();
        Specializer {
            func,
            kinds,
            repr: vec![Repr::Boxed; func.values.len()],
            shadow: HashMap::default(),
            out,
            subst: HashMap::default(),
            used_arg_shadows: HashSet::default(),
            args,
            facts,
            range_loops: HashMap::default(),
            native_range_calls: HashMap::default(),
            native_range_args: HashMap::default(),
            native_calls_made: HashSet::default(),
            virtual_iters: HashMap::default(),
            below: HashMap::default(),
            dominators: None,
            current: 0,
            const_origin: HashMap::default(),
            written: HashMap::default(),
            header_params: vec![Vec::new(); func.blocks.len()],
            plan: ArrayPlan::default(),
            views: HashMap::default(),
            entry_arrays: Vec::new(),
            entry_view_instrs: Vec::new(),
            current_instr: 0,
            hoisted_parts: HashMap::default(),
            bounded: HashSet::default(),
            failed: false,
            maybe_unbound_boxes: Vec::new(),
            flags: HashMap::default(),
            calling_pure_builtin: false,
            after_pure_builtin: None,
            divmod_values: HashMap::default(),
            lists: Default::default(),
        }
    }

    fn kind(&self, v: ValueId) -> Kind {
        self.kinds.kind[v.index()]
    }

    fn anything_unboxed(&self) -> bool {
        self.repr.iter().any(|r| matches!(r, Repr::Unboxed(_))) || !self.shadow.is_empty()
    }

    fn choose_representations(&mut self) {
        let facts = self.facts;
        let func = self.func;
        let mut is_param = HashSet::default();
        for block in &func.blocks {
            is_param.extend(block.params.iter().copied());
        }
        for (i, &k) in self.kinds.kind.iter().enumerate() {
            let v = ValueId(i as u32);
            let Some(n) = numeric(k) else { continue };
            let object_like = func.type_of(v).is_object_like() || func.type_of(v) == Type::Null;
            if !object_like {
                continue;
            }
            self.repr[i] = Repr::Unboxed(unboxed_type(n));
            // NULL-or-number is only representable for block parameters (with a flag).
            if k & NULL != 0 && !is_param.contains(&v) {
                self.repr[i] = Repr::Boxed;
            }
        }
        for block in &func.blocks {
            for instr in &block.instrs {
                if let (Op::LoadArg { local }, Some(r)) = (&instr.op, instr.result) {
                    if facts.args.get(*local as usize).copied().and_then(numeric).is_some() {
                        // Arguments stay the frame's objects; specialised uses read a shadow.
                        self.repr[r.index()] = Repr::Boxed;
                    }
                }
            }
        }
        // A number compared by identity (`x is y`) stays one object, boxed where it is made:
        // boxing it at each use would make `y = x; x is y` false.
        for instr in func.blocks.iter().flat_map(|b| &b.instrs) {
            if let Op::Is { lhs, rhs, .. } = instr.op {
                for v in [lhs, rhs] {
                    if matches!(self.repr[v.index()], Repr::Unboxed(_)) {
                        self.repr[v.index()] = Repr::Boxed;
                    }
                }
            }
        }
        // A value flowing into a parameter that stays an object is boxed where it is made.
        loop {
            let mut changed = false;
            for block in &func.blocks {
                for edge in block.terminator.edges() {
                    let params = &func.block(edge.target).params;
                    for (p, a) in params.iter().zip(&edge.args) {
                        if self.repr[p.index()] == Repr::Boxed && matches!(self.repr[a.index()], Repr::Unboxed(_)) {
                            self.repr[a.index()] = Repr::Boxed;
                            changed = true;
                        }
                    }
                }
            }
            if !changed {
                break;
            }
        }
        for i in 0..self.repr.len() {
            if let Repr::Unboxed(ty) = self.repr[i] {
                self.out.values[i] = ty;
            }
        }
        // Boxed values of one numeric kind (never NULL) get a machine shadow (NumPy scalars:
        // float64 and int64, whose value is a word after the header).
        for i in 0..self.kinds.kind.len() {
            let k = self.kinds.kind[i];
            let shadowable = match flavour(k) {
                Flavour::Python => true,
                Flavour::Numpy => numeric_bound(k) != Some(BOOL),
                Flavour::Mixed => false,
            };
            if let (Repr::Boxed, Some(n), true) = (self.repr[i], numeric_bound(k), shadowable) {
                let shadow = self.new_value(unboxed_type(n));
                self.shadow.insert(ValueId(i as u32), shadow);
            }
        }
    }

    /// Whether block `a` dominates block `b` (false before dominators are computed).
    fn dominates(&self, a: usize, b: usize) -> bool {
        self.dominators.as_ref().is_some_and(|d| d.dominates(BlockId(a as u32), BlockId(b as u32)))
    }

    fn new_value(&mut self, ty: Type) -> ValueId {
        self.out.values.push(ty);
        ValueId(self.out.values.len() as u32 - 1)
    }

    fn unboxed_ty(&self, v: ValueId) -> Option<Type> {
        match self.repr[v.index()] {
            Repr::Unboxed(t) => Some(t),
            Repr::Boxed => None,
        }
    }

    fn map(&self, v: ValueId) -> ValueId {
        self.subst.get(&v).copied().unwrap_or(v)
    }

    /// The machine value of `v` (itself if unboxed, else its shadow).
    fn machine(&mut self, v: ValueId) -> Option<ValueId> {
        if self.unboxed_ty(v).is_some() {
            return Some(self.map(v));
        }
        let s = *self.shadow.get(&v)?;
        if self.args.contains(&v) {
            self.used_arg_shadows.insert(v);
        }
        Some(s)
    }

    /// The single numeric kind `v` has, if it has a machine value.
    fn numeric_kind(&self, v: ValueId) -> Option<Kind> {
        let n = numeric_bound(self.kind(v))?;
        (self.unboxed_ty(v).is_some() || self.shadow.contains_key(&v)).then_some(n)
    }

    fn rewrite(mut self) -> Option<Function> {
        let func = self.func;
        // Parameter types; unboxed ones that may be unbound get their local's memory flag.
        let mut new_params: Vec<Vec<ValueId>> = Vec::new();
        for block in &func.blocks {
            for &p in &block.params {
                if let Repr::Unboxed(_) = self.repr[p.index()] {
                    if self.kind(p) & NULL != 0 {
                        let local = block.locals_in.iter().position(|&v| v == p)?;
                        self.out.bound_flags.insert(p, local as u32);
                    }
                }
            }
            new_params.push(block.params.clone());
        }
        for (b, extra) in self.header_params.clone().into_iter().enumerate() {
            new_params[b].extend(extra);
        }
        // Parameters that are a Python number or a NumPy scalar get a flag parameter.
        for (b, block) in func.blocks.iter().enumerate() {
            for &p in &block.params {
                if matches!(self.repr[p.index()], Repr::Unboxed(_)) && flavour(self.kind(p)) == Flavour::Mixed {
                    let flag = self.new_value(Type::CBool);
                    self.flags.insert(p, flag);
                    new_params[b].push(flag);
                }
            }
        }
        for b in 0..func.blocks.len() {
            self.current = b;
            self.written.clear();
            let mut e = Emit { instrs: Vec::new(), at: func.blocks[b].offset };
            // Shadows of boxed parameters, at the block's start.
            for &p in &func.blocks[b].params {
                self.unbox_shadow(p, &mut e);
            }
            let mut locals = func.blocks[b].locals_in.clone();
            for (i, instr) in func.blocks[b].instrs.iter().enumerate() {
                e.at = instr.at;
                self.current_instr = i;
                self.instr(instr, &mut e, &mut locals)?;
            }
            e.at = func.blocks[b].end_at;
            self.free_bool_lists(&func.blocks[b].terminator, &locals, &mut e);
            let terminator = self.terminator(&func.blocks[b].terminator, &mut e)?;
            let block = &mut self.out.blocks[b];
            block.instrs = e.instrs;
            block.terminator = terminator;
            block.params = new_params[b].clone();
        }
        self.entry_guards();
        self.range_positions_in_exits();
        self.finish_native_ranges()?;
        self.finish_numpy()?;
        self.finish_bool_lists();
        if self.failed {
            return None;
        }
        self.split_loop_values();
        // Exits: frame states name the substituted values, and machine values have no
        // reference to release.
        let subst = self.subst.clone();
        for exit in &mut self.out.exits {
            for v in exit.state.locals.iter_mut().chain(&mut exit.state.stack) {
                *v = subst.get(v).copied().unwrap_or(*v);
            }
        }
        let out_values = self.out.values.clone();
        for exit in &mut self.out.exits {
            exit.release.retain(|v| out_values[v.index()].is_object_like());
        }
        Some(self.out)
    }

    /// Finds the range loops and gives each header a position parameter.
    fn find_range_loops(&mut self) {
        let func = self.func;
        let mut loops = Vec::new();
        for (b, block) in func.blocks.iter().enumerate() {
            for instr in &block.instrs {
                if let (Op::IterNext(it), Some(r)) = (&instr.op, instr.result) {
                    let array = self.kinds.array_nexts.get(&r).copied();
                    if self.kinds.range_nexts.contains(&r) || array.is_some() || self.lists.nexts.contains_key(&r) {
                        let body = func.blocks.iter().position(|bb| {
                            bb.instrs.iter().any(|i| matches!(i.op, Op::NonNull(v) if v == r))
                        });
                        if let Some(body) = body {
                            loops.push((r, b, body, *it, instr.deopt, array, instr.exit));
                        }
                    }
                }
            }
        }
        if loops.is_empty() {
            return;
        }
        self.dominators = Some(super::dominators::Dominators::of(func));
        for (r, header, body, it, deopt, array, raise) in loops {
            let index = self.new_value(Type::I64);
            let next_index = self.new_value(Type::I64);
            self.header_params[header].push(index);
            let array = array.map(|a| {
                let [data, len, stride] = [(); 3].map(|_| self.new_value(Type::I64));
                (a, IterView { data, len, stride })
            });
            self.range_loops.insert(r, RangeLoop { header, body, it, index, next_index, deopt, array, raise });
        }
    }

    /// Native range loops: their objects are not there to release, and an exit can make
    /// only the iterator, at a known position.
    fn finish_native_ranges(&mut self) -> Option<()> {
        if self.native_calls_made.is_empty() {
            return Some(());
        }
        let (calls, iters) = (self.native_calls_made.clone(), self.virtual_iters.clone());
        for exit in &mut self.out.exits {
            exit.release.retain(|v| !calls.contains(v) && !iters.contains_key(v));
        }
        let referenced: HashSet<ExitId> = self.out.blocks.iter().flat_map(|b| b.referenced_exits()).collect();
        for x in referenced {
            let exit = &self.out.exits[x.index()];
            let state = &exit.state;
            if state.locals.iter().chain(&state.stack).any(|v| calls.contains(v)) {
                return None;
            }
            for v in state.stack.iter().filter(|v| iters.contains_key(v)) {
                if !exit.range_positions.iter().any(|(it, _)| it == v) {
                    return None;
                }
            }
        }
        Some(())
    }

    /// Whether a call is a native range (see `find_native_ranges`) with machine-int arguments.
    pub(super) fn native_range_applies(&self, result: Option<ValueId>, args: &[ValueId]) -> bool {
        // (By kind alone: the array plan asks before representations are chosen; an int
        // has a machine value.)
        result.is_some_and(|r| self.native_range_calls.contains_key(&r))
            && args.iter().all(|a| numeric_bound(self.kind(*a)) == Some(INT))
    }

    /// Whether `v` is a range or range iterator a native range call never makes.
    pub(super) fn native_range_object(&self, v: ValueId) -> bool {
        self.native_range_calls.iter().any(|(call, it)| {
            (*call == v || *it == v) && self.native_range_applies(Some(*call), &self.native_range_args[call])
        })
    }

    /// Whether exit `x`'s frame holds the result of a native range call: the eval-breaker
    /// and tracing checks after the call, which `native_range_call` made before it.
    /// Whether `q, r = divmod(a, b)` (by call) is of two Python ints: then compiled as `//`
    /// and `%` (see `Kinds::divmods`).
    fn divmod_native(&self, call: ValueId) -> bool {
        let python_int = |v: &ValueId| self.numeric_kind(*v) == Some(INT) && flavour(self.kind(*v)) == Flavour::Python;
        self.kinds.divmods.get(&call).is_some_and(|(a, b, _)| python_int(a) && python_int(b))
    }

    /// Whether `v` is a pair of `divmod_native`, or its unpacked tuple (never made).
    fn divmod_made(&self, v: ValueId) -> bool {
        self.divmod_values.contains_key(&v) || self.kinds.divmods.values().any(|(_, _, u)| *u == v && self.divmod_native_unpacked(v))
    }

    fn divmod_native_unpacked(&self, u: ValueId) -> bool {
        self.kinds.divmods.iter().any(|(call, (_, _, t))| *t == u && self.divmod_values.contains_key(call))
    }

    fn holds_native_range(&self, x: Option<ExitId>) -> bool {
        x.is_some_and(|x| self.func.exits[x.index()].state.stack.iter().any(|v| self.native_calls_made.contains(v)))
    }

    /// `range(...)` of machine ints for a range loop (see `find_native_ranges`): the builtin
    /// `range` (guarded), its length computed here, and neither the range nor its iterator
    /// made. Where CPython would iterate it with big ints (or raise), the interpreter makes
    /// the call.
    fn native_range_call(&mut self, instr: &Instr, callable: ValueId, args: &[ValueId], e: &mut Emit) -> Option<()> {
        let r = instr.result?;
        let deopt = instr.deopt?;
        let range_type = std::ptr::addr_of_mut!(pyo3_ffi::PyRange_Type) as i64;
        e.effect(Op::GuardIs { value: self.map(callable), expected: range_type }, Some(deopt));
        // The interpreter serves the eval breaker (and checks for a tracer) right after the
        // call; this is done right before it, in the call's frame: `range` of ints runs no
        // Python code, so nothing can tell the difference.
        let mut resume = self.out.exits[deopt.index()].clone();
        resume.kind = ExitKind::Resume;
        self.out.exits.push(resume);
        let resume = ExitId(self.out.exits.len() as u32 - 1);
        e.effect(Op::CheckEvalBreaker { resume, leave: false }, instr.exit);
        e.effect(Op::CheckTracing, Some(deopt));
        let m: Vec<ValueId> = args.iter().map(|a| self.machine(*a)).collect::<Option<_>>()?;
        let zero = e.value(self, Op::ConstI64 { value: 0, origin: None }, None);
        let one = e.value(self, Op::ConstI64 { value: 1, origin: None }, None);
        let (start, stop, step) = match m.as_slice() {
            [n] => (zero, *n, one),
            [a, b] => (*a, *b, one),
            [a, b, c] => (*a, *b, *c),
            _ => return None,
        };
        let len = if step == one {
            // max(stop - start, 0); a difference beyond 64 bits is a range CPython iterates
            // with big ints.
            let diff = if start == zero {
                stop
            } else {
                e.value(self, Op::IntBinary { op: IntOp::Sub, lhs: stop, rhs: start }, Some(deopt))
            };
            let positive = e.value(self, Op::IntCompare { op: CompareOp::Gt, lhs: diff, rhs: zero }, None);
            e.value(self, Op::Select { cond: positive, if_true: diff, if_false: zero, ty: Type::I64 }, None)
        } else {
            let len = e.value(self, Op::RangeLen { start, stop, step }, None);
            e.effect(Op::GuardNonNegative(len), Some(deopt));
            len
        };
        self.native_calls_made.insert(r);
        let it = self.native_range_calls[&r];
        let virtual_range = VirtualRange { start, stop, step, len, counts_from_zero: start == zero, unit_step: step == one };
        self.virtual_iters.insert(it, virtual_range);
        Some(())
    }

    /// Range loops over a call of `range` whose result only the loop's `GET_ITER` takes, and
    /// whose iterator only the loop's `FOR_ITER` reads: if the arguments turn out to be
    /// machine ints, neither object is made (see `native_range_call`).
    fn find_native_ranges(&mut self) {
        let func = self.func;
        let mut defs: HashMap<ValueId, &Op> = HashMap::default();
        for block in &func.blocks {
            for instr in &block.instrs {
                if let Some(r) = instr.result {
                    defs.insert(r, &instr.op);
                }
            }
        }
        for l in self.range_loops.values() {
            let Some(Op::GetIter(call)) = defs.get(&l.it) else { continue };
            let Some(Op::Call { method, callable, args, kwnames: None }) = defs.get(call) else { continue };
            let plain_call = matches!(defs.get(method), Some(Op::Null));
            if !plain_call || !self.kinds.range_globals.contains(callable) || args.is_empty() || args.len() > 3 {
                continue;
            }
            self.native_range_calls.insert(*call, l.it);
            self.native_range_args.insert(*call, args.clone());
        }
        if self.native_range_calls.is_empty() {
            return;
        }
        // Any other use keeps the objects real.
        let mut other_uses: HashSet<ValueId> = HashSet::default();
        for block in &func.blocks {
            for instr in &block.instrs {
                match &instr.op {
                    Op::Incref(_) | Op::Decref(_) | Op::XDecref(_) => {}
                    Op::GetIter(v) if self.native_range_calls.contains_key(v) => {}
                    Op::IterNext(_) if instr.result.is_some_and(|r| self.range_loops.contains_key(&r)) => {}
                    op => other_uses.extend(op.operands()),
                }
            }
            other_uses.extend(block.terminator.operands());
            for edge in block.terminator.edges() {
                other_uses.extend(edge.args.iter().copied());
            }
        }
        for exit in &func.exits {
            other_uses.extend(exit.state.locals.iter().copied());
        }
        self.native_range_calls.retain(|call, it| !other_uses.contains(call) && !other_uses.contains(it));
    }

    /// Exits with a range iterator on the stack write its register position back.
    fn range_positions_in_exits(&mut self) {
        if self.range_loops.is_empty() {
            return;
        }
        // (Loop entries' exits too: a check made on entering the loop may take one later.)
        let referenced: Vec<(usize, ExitId)> = self
            .out
            .blocks
            .iter()
            .enumerate()
            .flat_map(|(b, block)| block.referenced_exits().into_iter().map(move |x| (b, x)))
            .chain(self.out.loop_entries.iter().map(|e| (e.from.index(), e.exit)))
            .collect();
        let loops: Vec<RangeLoop> = self.range_loops.values().copied().collect();
        for (b, x) in referenced {
            let exit = &mut self.out.exits[x.index()];
            for l in &loops {
                if !exit.state.stack.contains(&l.it) || exit.range_positions.iter().any(|(it, _)| *it == l.it) {
                    continue;
                }
                let position = if b == l.header {
                    l.index
                } else if self.dominators.as_ref().is_some_and(|d| d.dominates(BlockId(l.body as u32), BlockId(b as u32))) {
                    l.next_index
                } else {
                    continue;
                };
                exit.range_positions.push((l.it, position));
            }
        }
    }

    /// Guards on the arguments whose machine values are used: their observed class, then the
    /// unboxed value (leaving for the interpreter at the function's start otherwise).
    fn entry_guards(&mut self) {
        let facts = self.facts;
        if self.used_arg_shadows.is_empty() && self.entry_arrays.is_empty() {
            return;
        }
        let entry = &self.func.blocks[0];
        let exit = ExitId(self.out.exits.len() as u32);
        self.out.exits.push(Exit {
            kind: ExitKind::Deopt,
            state: FrameState { offset: 0, locals: entry.locals_in.clone(), stack: vec![] },
            release: vec![],
            range_positions: vec![],
            borrowed: vec![],
            redo_from: None,
        });
        let mut guards = Vec::new();
        for instr in &entry.instrs {
            let (Some(v), Op::LoadArg { local }) = (instr.result, &instr.op) else { continue };
            if !self.used_arg_shadows.contains(&v) {
                continue;
            }
            let class = match facts.args[*local as usize] {
                INT => PyClass::Int,
                FLOAT => PyClass::Float,
                _ => PyClass::Bool,
            };
            let s = self.shadow[&v];
            let to = self.out.values[s.index()];
            guards.push(Instr { result: None, op: Op::GuardType { value: v, class }, exit: Some(exit), at: 0, deopt: None });
            let unbox_exit = (to == Type::I64).then_some(exit);
            guards.push(Instr { result: Some(s), op: Op::Unbox { value: v, to }, exit: unbox_exit, at: 0, deopt: None });
        }
        // Arrays with views at the entry: their type, then their layout.
        for &a in &self.entry_arrays {
            let (array, writeable) = (self.kinds.arrays[&a], self.plan.writeable.contains(&a));
            guards.push(Instr { result: None, op: Op::GuardArray { value: a, array, writeable }, exit: Some(exit), at: 0, deopt: None });
        }
        guards.append(&mut self.entry_view_instrs);
        self.out.blocks[0].instrs.extend(guards);
    }

    /// The view of `array` for the instruction being rewritten, made at the entry if that is
    /// its scope (a loop's views are made on entering it: see `edge`); None where Python
    /// code may have changed the array since it was verified.
    fn view(&mut self, array: ValueId) -> Option<View> {
        if !self.plan.is_available(self.current, self.current_instr) {
            return None;
        }
        let scope = self.plan.scope[self.current]?;
        self.view_in(scope, array)
    }

    /// On entering range loop `l` (through exit `x`, a deopt to the loop's start), the index
    /// checks the plan moved there (`ArrayPlan::loop_invariant_indices`, `range_bounded`),
    /// with the views the loop's body uses.
    fn hoisted_index_checks(&mut self, l: RangeLoop, x: ExitId, e: &mut Emit) -> Option<()> {
        let Some(scope) = self.plan.scope[l.body] else { return Some(()) };
        // Indices the loop does not change: checked and scaled once.
        for (a, axis, index) in self.plan.loop_invariant_indices.get(&l.header).cloned().unwrap_or_default() {
            let Some(view) = self.view_in(scope, a) else { continue };
            let m = match self.const_int(index) {
                // Made here: its own definition is in the loop.
                Some(value) => e.value(self, Op::ConstI64 { value, origin: None }, None),
                None => self.machine(index)?,
            };
            let check = Op::ArrayIndex { index: m, dim: view.dims[axis], array: self.map(a), key: vec![], chained: false };
            let n = e.value(self, check, Some(x));
            let part = e.value(self, Op::IntBinary { op: IntOp::Mul, lhs: n, rhs: view.strides[axis] }, None);
            self.hoisted_parts.insert((l.header, a, axis, index), part);
        }
        // `for i in range(n)`: `0 <= i < n <= dim` if `dim - n` is not negative.
        let Some(range) = self.virtual_iters.get(&l.it).copied().filter(|v| v.counts_from_zero) else { return Some(()) };
        for (a, axis) in self.plan.range_bounded.get(&l.header).cloned().unwrap_or_default() {
            let Some(view) = self.view_in(scope, a) else { continue };
            let dim = view.dims[axis];
            if self.below.get(&l.index) != Some(&dim) && range.stop != dim {
                let spare = e.value(self, Op::IntBinary { op: IntOp::Sub, lhs: dim, rhs: range.len }, None);
                e.effect(Op::GuardNonNegative(spare), Some(x));
            }
            self.bounded.insert((l.index, dim));
        }
        Some(())
    }

    /// The view of `array` in `scope` if it was made, or can be made now (at the entry).
    fn view_in(&mut self, scope: Scope, array: ValueId) -> Option<View> {
        if let Some(v) = self.views.get(&(scope, array)) {
            return Some(v.clone());
        }
        if scope != Scope::Entry || !self.args.contains(&array) {
            return None;
        }
        let mut instrs = Vec::new();
        let view = self.layout_loads(array, &mut instrs);
        self.entry_arrays.push(array);
        self.entry_view_instrs.extend(instrs);
        self.views.insert((scope, array), view.clone());
        Some(view)
    }

    /// Loads of the layout of verified array `array` (data pointer, shape, strides).
    fn layout_loads(&mut self, array: ValueId, instrs: &mut Vec<Instr>) -> View {
        use crate::numpy::{ARRAY_DATA, ARRAY_DIMENSIONS, ARRAY_STRIDES};
        let ty = self.kinds.arrays[&array];
        let ndim = ty.ndim;
        let mut load = |s: &mut Self, base: ValueId, offset: u32| {
            let r = s.new_value(Type::I64);
            s.repr.push(Repr::Unboxed(Type::I64));
            s.kinds.kind.push(0);
            instrs.push(Instr { result: Some(r), op: Op::LoadField { base, offset }, exit: None, at: 0, deopt: None });
            r
        };
        let data = load(self, array, ARRAY_DATA);
        let dims_ptr = load(self, array, ARRAY_DIMENSIONS);
        let strides_ptr = load(self, array, ARRAY_STRIDES);
        let dims = (0..u32::from(ndim)).map(|k| load(self, dims_ptr, 8 * k)).collect();
        let mut strides: Vec<ValueId> = (0..u32::from(ndim)).map(|k| load(self, strides_ptr, 8 * k)).collect();
        if ty.contiguous {
            // The last axis's stride is the element size (a constant: no register, no load).
            let size = self.new_value(Type::I64);
            self.repr.push(Repr::Unboxed(Type::I64));
            self.kinds.kind.push(0);
            let op = Op::ConstI64 { value: i64::from(ty.dtype.size()), origin: None };
            instrs.push(Instr { result: Some(size), op, exit: None, at: 0, deopt: None });
            *strides.last_mut().expect("an array has a dimension") = size;
        }
        View { data, dims, strides }
    }

    /// The byte offset of element `indices` (machine ints) of `array` in `view`, each index
    /// checked against its dimension (out of bounds: NumPy's IndexError, through `raise`).
    fn element_offset(
        &mut self,
        array: ValueId,
        view: &View,
        indices: &[ValueId],
        chained: bool,
        raise: ExitId,
        e: &mut Emit,
    ) -> Option<ValueId> {
        let key: Vec<ValueId> = indices.iter().map(|i| self.machine(*i)).collect::<Option<_>>()?;
        // Loops around the access whose views are the access's (their entry checked indices).
        let scope = self.plan.scope[self.current];
        let headers: Vec<usize> = self.plan.enclosing.get(self.current).cloned().unwrap_or_default()
            .into_iter()
            .filter(|h| self.range_loops.values().any(|l| l.header == *h && self.plan.scope[l.body] == scope))
            .collect();
        let mut offset = None;
        for (k, &m) in key.iter().enumerate() {
            let hoisted = headers.iter().find_map(|h| self.hoisted_parts.get(&(*h, array, k, indices[k])).copied());
            let part = match hoisted {
                Some(part) => part,
                // `for i in range(a.shape[k]): a[..., i, ...]`, or `range(n)` with `n` checked
                // to be at most `a.shape[k]` on entering the loop.
                None if self.below.get(&m) == Some(&view.dims[k]) || self.bounded.contains(&(m, view.dims[k])) => {
                    e.value(self, Op::IntBinary { op: IntOp::Mul, lhs: m, rhs: view.strides[k] }, None)
                }
                None => {
                    let checked = Op::ArrayIndex { index: m, dim: view.dims[k], array: self.map(array), key: key.clone(), chained };
                    let n = e.value(self, checked, Some(raise));
                    e.value(self, Op::IntBinary { op: IntOp::Mul, lhs: n, rhs: view.strides[k] }, None)
                }
            };
            offset = Some(match offset {
                None => part,
                Some(o) => e.value(self, Op::IntBinary { op: IntOp::Add, lhs: o, rhs: part }, None),
            });
        }
        offset
    }

    /// Makes generic value `r` the machine value `m` (an operation whose result is its
    /// operand, or a value already loaded): a new name for it where `r` is unboxed, a box of
    /// it where `r` must be an object (it flows into a parameter that stays one).
    fn alias(&mut self, r: ValueId, m: ValueId, box_exit: Option<ExitId>, e: &mut Emit) {
        match self.repr[r.index()] {
            Repr::Unboxed(_) => {
                self.subst.insert(r, m);
            }
            // (A copy through `define`, which boxes it as `r`'s own kind: a NumPy scalar or not.)
            Repr::Boxed => {
                let ty = self.out.values[m.index()];
                let cond = e.value(self, Op::ConstBool(true), None);
                self.define(r, Op::Select { cond, if_true: m, if_false: m, ty }, None, box_exit, e);
            }
        }
    }

    /// A generic operation whose result, an exact int object (`a.shape[k]` without a view),
    /// is used as a machine int.
    fn generic_int(&mut self, instr: &Instr, e: &mut Emit) {
        let Some(r) = instr.result else { return self.generic(instr, e) };
        let t = self.new_value(Type::Object);
        self.repr.push(Repr::Boxed);
        self.kinds.kind.push(OTHER);
        let mut temp = instr.clone();
        temp.result = Some(t);
        self.generic(&temp, e);
        self.define(r, Op::Unbox { value: t, to: Type::I64 }, None, instr.exit, e);
        e.effect(Op::Decref(t), None);
    }

    /// The value of `v` if it is an int constant of the code.
    fn const_int(&self, v: ValueId) -> Option<i64> {
        let defs = self.func.blocks.iter().flat_map(|b| &b.instrs).find(|i| i.result == Some(v))?;
        match defs.op {
            Op::Const { index } => match self.facts.consts.get(index as usize)? {
                ConstValue::Int(c) => Some(*c),
                _ => None,
            },
            _ => None,
        }
    }

    /// `array[key] = value` stored natively (the plan decided it can be: see
    /// `arrays::store_conversion`), with NumPy's conversion of the value to the dtype; values
    /// it would not store exactly leave for the interpreter.
    fn array_store(&mut self, instr: &Instr, obj: ValueId, key: ValueId, value: ValueId, e: &mut Emit) -> Option<()> {
        use crate::numpy::DType;
        let access = arrays::access(&self.kinds, obj, key)?;
        let array = access.array;
        let dtype = self.kinds.arrays[&array].dtype;
        let (base, m) = (self.numeric_kind(value)?, self.machine(value)?);
        let view = self.view(array)?;
        let deopt = instr.deopt;
        let in_range = |s: &mut Self, v: ValueId, lo: i64, hi: i64, e: &mut Emit| {
            e.effect(Op::GuardIntRange { value: v, lo, hi }, deopt);
            let _ = s;
        };
        let stored = match (dtype, base) {
            (DType::F64, FLOAT) => m,
            (DType::F64, _) | (DType::F32, BOOL) => e.value(self, Op::IntToFloat { value: m, exact: false }, None),
            (DType::F32, INT) => {
                in_range(self, m, -(1 << 24), 1 << 24, e);
                e.value(self, Op::IntToFloat { value: m, exact: false }, None)
            }
            (DType::F32 | DType::Bool, _) if base != BOOL => return None,
            (_, BOOL) | (DType::I64, INT) => m,
            (_, INT) => {
                let (lo, hi) = dtype.int_range()?;
                in_range(self, m, lo, hi, e);
                m
            }
            (_, _) => {
                let t = e.value(self, Op::FloatToInt { rounding: super::Rounding::Trunc, value: m }, deopt);
                if dtype != DType::I64 {
                    let (lo, hi) = dtype.int_range()?;
                    in_range(self, t, lo, hi, e);
                }
                t
            }
        };
        let offset = self.element_offset(array, &view, &access.indices, access.chained, instr.exit?, e)?;
        e.effect(Op::StoreElement { data: view.data, offset, value: stored, dtype }, None);
        Some(())
    }

    /// After the rewrite: which machine values box to NumPy scalars, values never built, and
    /// eval breakers that must leave once they ran (the function relies on array views).
    fn finish_numpy(&mut self) -> Option<()> {
        for (i, &k) in self.kinds.kind.iter().enumerate().take(self.func.values.len()) {
            let v = ValueId(i as u32);
            if !matches!(self.repr[i], Repr::Unboxed(_)) || numeric(k).is_none() {
                continue;
            }
            match flavour(k) {
                Flavour::Python => {}
                Flavour::Numpy => {
                    self.out.numpy_boxes.insert(v, None);
                }
                Flavour::Mixed => {
                    let flag = *self.flags.get(&v)?;
                    self.out.numpy_boxes.insert(v, Some(flag));
                }
            }
        }
        if self.maybe_unbound_boxes.iter().any(|v| self.out.numpy_boxes.contains_key(v)) {
            return None;
        }
        if !self.plan.virtual_values.is_empty() {
            let virtual_values = self.plan.virtual_values.clone();
            for exit in &mut self.out.exits {
                exit.release.retain(|v| !virtual_values.contains(v));
            }
            // A frame state that still holds one cannot be handed over: give up on it.
            let referenced: HashSet<ExitId> = self.out.blocks.iter().flat_map(|b| b.referenced_exits()).collect();
            for x in referenced {
                let state = &self.out.exits[x.index()].state;
                if state.locals.iter().chain(&state.stack).any(|v| virtual_values.contains(v)) {
                    return None;
                }
            }
        }
        if !self.views.is_empty() {
            for block in &mut self.out.blocks {
                for instr in &mut block.instrs {
                    if let Op::CheckEvalBreaker { leave, .. } = &mut instr.op {
                        *leave = true;
                    }
                }
            }
        }
        Some(())
    }

    /// After a range loop, its machine values (the header's parameters) go on under new names
    /// (`Copy` at the loop's exit): the register allocator gives each value one location for
    /// its life, and a loop's sum used by a call after the loop would otherwise be spilled
    /// to memory inside the loop too.
    fn split_loop_values(&mut self) {
        let n = self.out.blocks.len();
        let mut preds = vec![0usize; n];
        for block in &self.out.blocks {
            for edge in block.terminator.edges() {
                preds[edge.target.index()] += 1;
            }
        }
        let mut loops: Vec<(usize, usize)> = self.range_loops.values().map(|l| (l.header, l.body)).collect();
        loops.sort_unstable(); // (the new values' numbers do not depend on the map's order)
        for (h, body) in loops {
            let Terminator::Branch { if_true, if_false, .. } = &self.out.blocks[h].terminator else { continue };
            // The side that is not the loop's body (the branch may test either way).
            let done = match (if_true.target.index(), if_false.target.index()) {
                (t, f) if t == body && f != body => f,
                (t, f) if f == body && t != body => t,
                _ => continue,
            };
            if preds[done] != 1 || self.dominators.is_none() {
                continue;
            }
            let after: Vec<usize> = (0..n).filter(|&b| self.dominates(done, b)).collect();
            let params: Vec<ValueId> =
                self.out.blocks[h].params.iter().copied().filter(|p| self.out.values[p.index()].is_unboxed()).collect();
            let mut renames: HashMap<ValueId, ValueId> = HashMap::default();
            let mut copies = Vec::new();
            for p in params {
                if self.out.bound_flags.contains_key(&p) {
                    continue; // its local's flag belongs to the parameter
                }
                let c = self.new_value(self.out.values[p.index()]);
                renames.insert(p, c);
                copies.push(Instr { result: Some(c), op: Op::Copy(p), exit: None, at: self.out.blocks[done].offset, deopt: None });
            }
            if renames.is_empty() {
                continue;
            }
            for (p, c) in renames.clone() {
                if let Some(flag) = self.out.numpy_boxes.get(&p).copied() {
                    let flag = flag.map(|f| renames.get(&f).copied().unwrap_or(f));
                    self.out.numpy_boxes.insert(c, flag);
                }
            }
            let rename = |v: &mut ValueId| {
                if let Some(c) = renames.get(v) {
                    *v = *c;
                }
            };
            let mut exit_map: HashMap<ExitId, ExitId> = HashMap::default();
            for &b in &after {
                let block = &mut self.out.blocks[b];
                for instr in &mut block.instrs {
                    for v in instr.op.operands_mut() {
                        rename(v);
                    }
                }
                match &mut block.terminator {
                    Terminator::Branch { cond, .. } => rename(cond),
                    Terminator::Return(v) => rename(v),
                    Terminator::Jump(_) | Terminator::Exit(_) => {}
                }
                for edge in block.terminator.edges_mut() {
                    edge.args.iter_mut().for_each(rename);
                }
                // Exits taken after the loop see the new names (copies of their states).
                for x in block.referenced_exits() {
                    if exit_map.contains_key(&x) {
                        continue;
                    }
                    let mut exit = self.out.exits[x.index()].clone();
                    for v in exit.state.locals.iter_mut().chain(&mut exit.state.stack).chain(&mut exit.release).chain(&mut exit.borrowed) {
                        rename(v);
                    }
                    for (it, index) in &mut exit.range_positions {
                        rename(it);
                        rename(index);
                    }
                    self.out.exits.push(exit);
                    exit_map.insert(x, ExitId(self.out.exits.len() as u32 - 1));
                }
                let block = &mut self.out.blocks[b];
                for instr in &mut block.instrs {
                    if let Some(x) = instr.exit {
                        instr.exit = Some(exit_map[&x]);
                    }
                    if let Op::CheckEvalBreaker { resume, .. } = &mut instr.op {
                        *resume = exit_map[resume];
                    }
                }
                if let Terminator::Exit(x) = &mut block.terminator {
                    *x = exit_map[x];
                }
            }
            let block = &mut self.out.blocks[done];
            block.instrs.splice(0..0, copies);
        }
    }

    /// The flag of a value that may be a NumPy scalar: a machine bool, made here for a value
    /// whose flavour is known.
    fn flag_of(&mut self, v: ValueId, e: &mut Emit) -> Option<ValueId> {
        match flavour(self.kind(v)) {
            Flavour::Mixed => self.flags.get(&v).copied(),
            f => Some(e.value(self, Op::ConstBool(f == Flavour::Numpy), None)),
        }
    }

    /// Gives result `r` of an operation on `operands` its flag when its flavour is mixed (it
    /// is a NumPy scalar if one of the operands is).
    fn propagate_flag(&mut self, r: ValueId, operands: &[ValueId], e: &mut Emit) -> Option<()> {
        if flavour(self.kind(r)) != Flavour::Mixed || !matches!(self.repr[r.index()], Repr::Unboxed(_)) {
            return Some(());
        }
        let mut flag = None;
        for &o in operands {
            if flavour(self.kind(o)) != Flavour::Mixed {
                continue;
            }
            let f = *self.flags.get(&o)?;
            flag = Some(match flag {
                None => f,
                Some(g) => e.value(self, Op::Select { cond: g, if_true: g, if_false: f, ty: Type::CBool }, None),
            });
        }
        self.flags.insert(r, flag?);
        Some(())
    }

    fn terminator(&mut self, term: &Terminator, e: &mut Emit) -> Option<Terminator> {
        Some(match term {
            Terminator::Jump(edge) => Terminator::Jump(self.edge(edge, e)?),
            Terminator::Branch { cond, if_true, if_false } => Terminator::Branch {
                cond: self.map(*cond),
                if_true: self.edge(if_true, e)?,
                if_false: self.edge(if_false, e)?,
            },
            Terminator::Return(v) => Terminator::Return(self.boxed_operand(*v, e, None)),
            Terminator::Exit(x) => Terminator::Exit(*x),
        })
    }

    /// An edge's arguments in the representation of the target's parameters.
    fn edge(&mut self, edge: &Edge, e: &mut Emit) -> Option<Edge> {
        let params = self.func.block(edge.target).params.clone();
        let mut args = Vec::new();
        for (p, a) in params.iter().zip(&edge.args) {
            match self.repr[p.index()] {
                Repr::Unboxed(_) => {
                    let payload = if self.func.type_of(*a) == Type::Null { *a } else { self.machine(*a)? };
                    args.push(payload);
                    if let Some(&local) = self.out.bound_flags.get(p) {
                        // The local's flag already describes `a` if `a` is a parameter of the
                        // same local; otherwise it is set here (the same for every edge of
                        // the block: they all pass the local's current value).
                        if self.out.bound_flags.get(a) != Some(&local) {
                            let bound = self.func.type_of(*a) != Type::Null;
                            if !e.instrs.iter().any(|i| i.op == (Op::SetBound { local, bound })) {
                                e.effect(Op::SetBound { local, bound }, None);
                            }
                        }
                    }
                }
                Repr::Boxed => {
                    if self.unboxed_ty(*a).is_some() {
                        return None; // representation choice failed to box it (a bug)
                    }
                    // A parameter with a shadow is unboxed where its block starts, trusting
                    // its kind: an argument flowing into it must be checked to be that kind
                    // at entry (its kind is only what the first call saw).
                    if self.shadow.contains_key(p) && self.args.contains(a) {
                        self.used_arg_shadows.insert(*a);
                    }
                    args.push(self.map(*a));
                }
            }
        }
        let target = edge.target.index();
        let header_of: Vec<RangeLoop> = self.range_loops.values().filter(|l| l.header == target).copied().collect();
        for l in header_of {
            let from_body = self.dominates(l.body, self.current);
            let position = if from_body {
                l.next_index
            } else {
                // Entering the loop: the iterator must be a range iterator (its position is
                // -1 otherwise); if not, the interpreter runs the FOR_ITER, with the frame as
                // the header's deopt state seen through this edge.
                let native = self.virtual_iters.contains_key(&l.it) || self.lists.iters.contains_key(&l.it);
                let index = match l.array {
                    Some((a, _)) => e.value(self, Op::SeqIterIndex { it: self.map(l.it), seq: self.map(a) }, None),
                    None if native => e.value(self, Op::ConstI64 { value: 0, origin: None }, None),
                    None => e.value(self, Op::RangeIterIndex(self.map(l.it)), None),
                };
                let exit = l.deopt.map(|x| {
                    let params = &self.func.block(edge.target).params;
                    let through: HashMap<ValueId, ValueId> = params.iter().copied().zip(edge.args.iter().copied()).collect();
                    let mut exit = self.func.exits[x.index()].clone();
                    for v in exit.state.locals.iter_mut().chain(&mut exit.state.stack) {
                        let original = through.get(v).copied().unwrap_or(*v);
                        *v = self.map(original);
                    }
                    if native {
                        // (The iterator is made there, at the start.)
                        exit.range_positions.push((l.it, index));
                    }
                    self.out.exits.push(exit);
                    ExitId(self.out.exits.len() as u32 - 1)
                });
                if let Some(exit) = exit {
                    let (from, header) = (BlockId(self.current as u32), BlockId(target as u32));
                    self.out.loop_entries.push(super::LoopEntry { from, header, exit });
                }
                if !native {
                    e.effect(Op::GuardNonNegative(index), exit);
                } else if let Some(v) = self.virtual_iters.get(&l.it).copied() {
                    self.guard_bool_list_ranges(target, (v.start, v.step, v.len), exit, e);
                }
                // Arrays the loop body indexes: verified once per entry into the loop.
                if let (Some(x), Some(arrays)) = (exit, self.plan.loop_arrays.get(&target).cloned()) {
                    for a in arrays {
                        let (array, writeable) = (self.kinds.arrays[&a], self.plan.writeable.contains(&a));
                        e.effect(Op::GuardArray { value: self.map(a), array, writeable }, Some(x));
                        let mut instrs = Vec::new();
                        let view = self.layout_loads(self.map(a), &mut instrs);
                        for mut i in instrs {
                            i.at = e.at;
                            e.push(i);
                        }
                        self.views.insert((Scope::Loop(target), a), view);
                    }
                }
                if let Some(x) = exit {
                    self.hoisted_index_checks(l, x, e)?;
                }
                // An array loop's own reads of its array (verified just above: the plan made
                // it one of the loop's arrays).
                if let Some((a, view)) = l.array {
                    use crate::numpy::{ARRAY_DATA, ARRAY_DIMENSIONS, ARRAY_STRIDES};
                    let verified = self.plan.loop_arrays.get(&target).is_some_and(|arrays| arrays.contains(&a));
                    if exit.is_none() || !verified {
                        return None;
                    }
                    let ty = self.kinds.arrays.get(&a).copied()?;
                    let a = self.map(a);
                    e.define(view.data, Op::LoadField { base: a, offset: ARRAY_DATA }, None);
                    let dims = e.value(self, Op::LoadField { base: a, offset: ARRAY_DIMENSIONS }, None);
                    e.define(view.len, Op::LoadField { base: dims, offset: 0 }, None);
                    if ty.contiguous {
                        e.define(view.stride, Op::ConstI64 { value: i64::from(ty.dtype.size()), origin: None }, None);
                    } else {
                        let strides = e.value(self, Op::LoadField { base: a, offset: ARRAY_STRIDES }, None);
                        e.define(view.stride, Op::LoadField { base: strides, offset: 0 }, None);
                    }
                }
                index
            };
            args.push(position);
        }
        // Flags of parameters that may be NumPy scalars.
        for (p, a) in params.iter().zip(&edge.args) {
            if self.flags.contains_key(p) {
                let flag = self.flag_of(*a, e)?;
                args.push(flag);
            }
        }
        Some(Edge { target: edge.target, args })
    }

    /// `v` as an object operand: itself, or a new boxed temporary.
    fn boxed_operand(&mut self, v: ValueId, e: &mut Emit, exit: Option<ExitId>) -> ValueId {
        let v = self.map(v);
        if self.out.values[v.index()].is_unboxed() {
            e.value(self, Op::Box(v), exit)
        } else {
            v
        }
    }

    /// Defines `result` (a value of the generic function) by a machine operation: directly
    /// when it is unboxed, or through a machine temporary and `Box` when it stays an object.
    fn define(&mut self, result: ValueId, op: Op, exit: Option<ExitId>, box_exit: Option<ExitId>, e: &mut Emit) {
        match self.repr[result.index()] {
            Repr::Unboxed(ty) => {
                self.out.values[result.index()] = ty;
                e.define(result, op, exit);
            }
            Repr::Boxed => {
                // A bool computed by an int operation (`b | False` of two bools) is boxed as
                // the bool it is, not as the int its machine operation computes.
                let ty = match numeric_bound(self.kind(result)) {
                    Some(BOOL) => Type::CBool,
                    _ => op.result_type().unwrap_or(Type::I64),
                };
                let m = self.shadow.get(&result).copied().unwrap_or_else(|| self.new_value(ty));
                self.out.values[m.index()] = ty;
                match flavour(self.kind(result)) {
                    Flavour::Python => {}
                    Flavour::Numpy => {
                        self.out.numpy_boxes.insert(m, None);
                    }
                    Flavour::Mixed => match self.flags.get(&result) {
                        Some(&flag) => {
                            self.out.numpy_boxes.insert(m, Some(flag));
                        }
                        None => self.failed = true,
                    },
                }
                e.define(m, op, exit);
                e.define(result, Op::Box(m), box_exit);
            }
        }
    }

    fn instr(&mut self, instr: &Instr, e: &mut Emit, locals: &mut [ValueId]) -> Option<()> {
        let result = instr.result;
        let unboxed = |s: &Self, v: &ValueId| s.unboxed_ty(*v).is_some();
        // After a builtin that runs no Python code, the interpreter's checks after CALL are
        // left to the next ones (the next call's, the loop's back-edge): a signal is served a
        // few instructions later, as if it had come later (the interpreter serves them at
        // any call or back-edge), and only Python code of this thread turns tracing on.
        match (&instr.op, &self.after_pure_builtin) {
            (Op::CheckEvalBreaker { .. } | Op::CheckTracing, Some(_)) => return Some(()),
            (Op::Decref(v), Some(operands)) if operands.contains(v) => {}
            _ => self.after_pure_builtin = None,
        }
        match &instr.op {
            _ if self.is_bool_list_instr(self.current, self.current_instr, instr) => self.bool_list_instr(instr, e),
            Op::Incref(v) | Op::Decref(v) | Op::XDecref(v) if unboxed(self, v) => {}
            // Native range loops (see `native_range_call`): no objects to count or check.
            Op::Incref(v) | Op::Decref(v) | Op::XDecref(v)
                if self.native_calls_made.contains(v) || self.virtual_iters.contains_key(v) => {}
            Op::CheckEvalBreaker { .. } | Op::CheckTracing if self.holds_native_range(instr.exit) => {}
            // `q, r = divmod(a, b)` of machine ints: the pair and its tuple are never made; the
            // checks after the call are left to the next ones (as after a pure builtin).
            Op::Incref(v) | Op::Decref(v) | Op::XDecref(v) if self.divmod_made(*v) => {}
            Op::CheckEvalBreaker { .. } | Op::CheckTracing
                if instr.exit.is_some_and(|x| self.func.exit(x).state.stack.iter().any(|v| self.divmod_made(*v))) => {}
            Op::Call { callable, args, .. } if result.is_some_and(|r| self.divmod_native(r)) && instr.deopt.is_some() => {
                let r = result?;
                // Still the builtin? Otherwise (and on a zero divisor or an overflow: the
                // interpreter raises or makes a big int) the interpreter makes the call.
                e.effect(Op::GuardIs { value: self.map(*callable), expected: self.facts.intrinsics[&r].callable }, instr.deopt);
                let (a, b) = (self.machine(args[0])?, self.machine(args[1])?);
                let q = e.value(self, Op::IntBinary { op: IntOp::FloorDiv, lhs: a, rhs: b }, instr.deopt);
                let m = e.value(self, Op::IntBinary { op: IntOp::Mod, lhs: a, rhs: b }, instr.deopt);
                self.divmod_values.insert(r, [q, m]);
            }
            Op::UnpackSequence { value, .. } if self.divmod_values.contains_key(value) => {}
            Op::TupleItem { index, .. } if result.is_some_and(|r| self.kinds.divmod_items.get(&r).is_some_and(|(c, _)| self.divmod_values.contains_key(c))) => {
                let r = result?;
                let m = self.divmod_values[&self.kinds.divmod_items[&r].0][*index as usize];
                self.alias(r, m, instr.exit, e);
            }
            Op::Call { callable, args, .. } if self.native_range_applies(result, args) && instr.deopt.is_some() => {
                self.native_range_call(instr, *callable, args, e)?;
            }
            Op::GetIter(v) if self.native_calls_made.contains(v) => {
                let it = result?;
                let r = self.virtual_iters[&it];
                e.define(it, Op::RangeIterVirtual { start: r.start, step: r.step, len: r.len }, None);
            }
            Op::StoreLocal { local, value } => {
                self.written.remove(local);
                let old = locals[*local as usize];
                // What the slot holds now: for a machine value, NULL or a stale copy of its
                // own (released here); for NULL, nothing; for an object, that object (the
                // builder's release of `old` follows and drops it).
                let slot_is_stale = unboxed(self, &old);
                let slot_is_object = !slot_is_stale && self.func.type_of(old) != Type::Null;
                if slot_is_stale {
                    e.effect(Op::ClearLocal { local: *local }, None);
                }
                if unboxed(self, value) {
                    if slot_is_object {
                        let null = e.value(self, Op::Null, None);
                        e.effect(Op::StoreLocal { local: *local, value: null }, None);
                    }
                } else {
                    e.push(Instr { op: Op::StoreLocal { local: *local, value: self.map(*value) }, ..instr.clone() });
                }
                locals[*local as usize] = *value;
            }
            Op::Const { index } if result.is_some_and(|r| self.shadow.contains_key(&r) || unboxed(self, &r)) => {
                let r = result?;
                let op = match self.facts.consts.get(*index as usize)? {
                    ConstValue::Int(v) => Op::ConstI64 { value: *v, origin: Some(*index) },
                    ConstValue::Float(f) => Op::ConstF64 { bits: f.to_bits(), origin: Some(*index) },
                    ConstValue::Bool(b) => Op::ConstBool(*b),
                    ConstValue::Other => return None,
                };
                if unboxed(self, &r) {
                    self.const_origin.insert(r, *index);
                    self.define(r, op, None, None, e);
                } else {
                    e.push(instr.clone());
                    e.define(self.shadow[&r], op, None);
                }
            }
            Op::CheckBound { value, local } if unboxed(self, value) => {
                let r = result?;
                // A parameter seen in another local's slot went through a checked load.
                if self.out.bound_flags.get(value) == Some(local) {
                    e.effect(Op::CheckFlag { local: *local }, instr.exit);
                }
                if let Repr::Unboxed(_) = self.repr[r.index()] {
                    self.subst.insert(r, self.map(*value));
                } else {
                    e.define(r, Op::Box(self.map(*value)), instr.exit);
                    self.unbox_shadow(r, e);
                }
            }
            Op::Binary { op, lhs, rhs } if self.specialisable(result) => {
                let ((a, ml), (b, mr)) = self.operands(instr, *lhs, *rhs, e)?;
                let deopt = instr.deopt;
                let r = result?;
                self.propagate_flag(r, &[*lhs, *rhs], e)?;
                let op = op.non_inplace();
                if int_like(a) && int_like(b) && op != BinaryOp::TrueDivide {
                    let int_op = match op {
                        BinaryOp::Add => IntOp::Add,
                        BinaryOp::Subtract => IntOp::Sub,
                        BinaryOp::Multiply => IntOp::Mul,
                        BinaryOp::FloorDivide => IntOp::FloorDiv,
                        BinaryOp::Remainder => IntOp::Mod,
                        BinaryOp::And => IntOp::And,
                        BinaryOp::Or => IntOp::Or,
                        BinaryOp::Xor => IntOp::Xor,
                        BinaryOp::Lshift => IntOp::Lshift,
                        BinaryOp::Rshift => IntOp::Rshift,
                        _ => return None,
                    };
                    let can_fail = !matches!(int_op, IntOp::And | IntOp::Or | IntOp::Xor);
                    self.define(r, Op::IntBinary { op: int_op, lhs: ml, rhs: mr }, if can_fail { deopt } else { None }, instr.exit, e);
                } else {
                    let exact = int_like(a) && int_like(b);
                    let fl = self.as_float(ml, a, exact, deopt, e);
                    let fr = self.as_float(mr, b, exact, deopt, e);
                    let float_op = match op {
                        BinaryOp::Add => FloatOp::Add,
                        BinaryOp::Subtract => FloatOp::Sub,
                        BinaryOp::Multiply => FloatOp::Mul,
                        BinaryOp::TrueDivide => FloatOp::Div,
                        BinaryOp::FloorDivide => FloatOp::FloorDiv,
                        BinaryOp::Remainder => FloatOp::Mod,
                        BinaryOp::Power => FloatOp::Pow,
                        _ => return None,
                    };
                    let can_fail = !matches!(float_op, FloatOp::Add | FloatOp::Sub | FloatOp::Mul);
                    let exit = if can_fail { deopt } else { None };
                    let op = Op::FloatBinary { op: float_op, lhs: fl, rhs: fr };
                    if flavour(self.kind(r)) == Flavour::Python {
                        self.define(r, op, exit, instr.exit, e);
                    } else {
                        // NumPy float64 arithmetic warns where an operation raises a
                        // floating-point exception (Python's floats do not): then the
                        // interpreter redoes it, and warns (or raises) as NumPy does.
                        let t = e.value(self, op, exit);
                        e.effect(Op::GuardFpFlags, deopt);
                        // `r` itself (its own name: boxing follows its kind, a NumPy scalar).
                        let yes = e.value(self, Op::ConstBool(true), None);
                        self.define(r, Op::Select { cond: yes, if_true: t, if_false: t, ty: Type::F64 }, None, instr.exit, e);
                    }
                }
            }
            // Decided at compile time (`crate::dtype_folds`), if the arrays are of their types
            // and the other operand is still the object it was.
            Op::Compare { .. } if result.is_some_and(|r| self.facts.dtype.folds.contains_key(&r)) && instr.deopt.is_some() => {
                let r = result?;
                let fold = self.facts.dtype.folds[&r].clone();
                for a in &fold.arrays {
                    if self.view(*a).is_none() {
                        let array = *self.kinds.arrays.get(a)?;
                        e.effect(Op::GuardArray { value: self.map(*a), array, writeable: false }, instr.deopt);
                    }
                }
                for (v, expected) in &fold.guards {
                    e.effect(Op::GuardIs { value: self.map(*v), expected: *expected }, instr.deopt);
                }
                self.define(r, Op::ConstBool(fold.result), None, instr.exit, e);
            }
            // `range(n)` where the function relies on views: still the builtin? Then it runs no
            // Python code.
            Op::Call { callable, .. } if result.is_some_and(|r| self.plan.checked_range_calls.contains(&r)) => {
                let expected = std::ptr::addr_of_mut!(pyo3_ffi::PyRange_Type) as i64;
                e.effect(Op::GuardIs { value: self.map(*callable), expected }, instr.deopt);
                self.generic(instr, e);
            }
            // `numpy.dtype(c)` of a constant: still `numpy.dtype`? Then it is NumPy's C code.
            Op::Call { callable, .. } if result.is_some_and(|r| self.facts.dtype.calls.contains_key(&r)) && instr.deopt.is_some() => {
                let (_, expected) = self.facts.dtype.calls[&result?];
                e.effect(Op::GuardIs { value: self.map(*callable), expected }, instr.deopt);
                self.generic(instr, e);
            }
            Op::Compare { op, lhs, rhs } if self.specialisable(result) => {
                let ((a, ml), (b, mr)) = self.operands(instr, *lhs, *rhs, e)?;
                let r = result?;
                self.propagate_flag(r, &[*lhs, *rhs], e)?;
                if a != FLOAT && b != FLOAT {
                    self.define(r, Op::IntCompare { op: *op, lhs: ml, rhs: mr }, None, instr.exit, e);
                } else {
                    // An int compared with a float is compared exactly (2**53 + 1 != 2.0**53):
                    // ints too large to convert exactly leave for the interpreter.
                    let fl = self.as_float(ml, a, true, instr.deopt, e);
                    let fr = self.as_float(mr, b, true, instr.deopt, e);
                    self.define(r, Op::FloatCompare { op: *op, lhs: fl, rhs: fr }, None, instr.exit, e);
                }
            }
            Op::Unary { op, value } if self.specialisable(result) => {
                let a = self.numeric_kind(*value)?;
                let m = self.machine(*value)?;
                let r = result?;
                self.propagate_flag(r, &[*value], e)?;
                let new = match (op, a) {
                    (UnaryOp::Negative, FLOAT) => Op::FloatNeg(m),
                    (UnaryOp::Positive, FLOAT | INT) => {
                        self.alias(r, m, instr.exit, e);
                        return Some(());
                    }
                    (UnaryOp::Negative, _) => {
                        let zero = e.value(self, Op::ConstI64 { value: 0, origin: None }, None);
                        Op::IntBinary { op: IntOp::Sub, lhs: zero, rhs: m }
                    }
                    (UnaryOp::Invert, _) => {
                        let ones = e.value(self, Op::ConstI64 { value: -1, origin: None }, None);
                        Op::IntBinary { op: IntOp::Xor, lhs: m, rhs: ones }
                    }
                    // +True is the int 1: the same machine value, another type.
                    (UnaryOp::Positive, _) => {
                        let zero = e.value(self, Op::ConstI64 { value: 0, origin: None }, None);
                        Op::IntBinary { op: IntOp::Add, lhs: m, rhs: zero }
                    }
                };
                let exit = if matches!(new, Op::IntBinary { op: IntOp::Sub, .. }) { instr.deopt } else { None };
                self.define(r, new, exit, instr.exit, e);
            }
            Op::Not(v) if self.specialisable(result) => {
                let r = result?;
                let test = self.truth(*v, e)?;
                self.define(r, Op::BoolNot(test), None, instr.exit, e);
            }
            Op::IsTrue(v) if self.numeric_kind(*v).is_some() => {
                let r = result?;
                let test = self.truth(*v, e)?;
                self.subst.insert(r, test);
            }
            Op::IsNone(v) if unboxed(self, v) => {
                let r = result?;
                let no = e.value(self, Op::ConstBool(false), None);
                self.subst.insert(r, no);
            }
            Op::IterNext(it) if result.is_some_and(|r| self.range_loops.contains_key(&r)) => {
                let r = result?;
                let l = self.range_loops[&r];
                let has = match (l.array, self.virtual_iters.get(it)) {
                    // The array's length, read on entering the loop: no Python code runs in
                    // it that could change it (the interpreter's iterator reads it each time).
                    (Some((_, view)), _) => e.value(self, Op::IntCompare { op: CompareOp::Lt, lhs: l.index, rhs: view.len }, None),
                    (None, Some(v)) => e.value(self, Op::IntCompare { op: CompareOp::Lt, lhs: l.index, rhs: v.len }, None),
                    (None, None) => e.value(self, Op::RangeIterHasNext { it: self.map(*it), index: l.index }, None),
                };
                self.subst.insert(r, has);
            }
            // `for x in a`: the array is verified before `iter(a)`, which is then NumPy's C
            // code (a sequence iterator), not Python's.
            Op::GetIter(v) if result.is_some_and(|r| self.range_loops.values().any(|l| l.array.is_some() && l.it == r)) => {
                if self.view(*v).is_none() {
                    let array = self.kinds.arrays[v];
                    e.effect(Op::GuardArray { value: self.map(*v), array, writeable: false }, instr.deopt);
                }
                self.generic(instr, e);
            }
            Op::NonNull(v) if self.range_loops.get(v).is_some_and(|l| l.array.is_some()) => {
                let r = result?;
                let l = self.range_loops[v];
                let (array, view) = l.array?;
                // The position after this item first: the exits below write it back.
                e.define(l.next_index, Op::RangeIndexNext(l.index), None);
                let dtype = self.kinds.arrays[&array].dtype;
                if numeric_bound(self.kind(r)).is_some() {
                    let offset = e.value(self, Op::IntBinary { op: IntOp::Mul, lhs: l.index, rhs: view.stride }, None);
                    self.define(r, Op::LoadElement { data: view.data, offset, dtype }, None, l.raise, e);
                } else {
                    // Other dtypes: the element as `a[i]` makes it (NumPy's scalar).
                    let op = Op::GetItemInt { obj: array, index: l.index, borrowed: false };
                    self.generic(&Instr { result: Some(r), op, exit: l.raise, at: instr.at, deopt: None }, e);
                }
            }
            Op::IsNull(v) if self.range_loops.contains_key(v) => {
                e.define(result?, Op::BoolNot(self.map(*v)), None);
            }
            Op::NonNull(v) if self.range_loops.contains_key(v) => {
                let r = result?;
                let l = self.range_loops[v];
                match self.virtual_iters.get(&l.it).copied() {
                    // (Items lie between start and stop: no overflow.)
                    Some(v) if v.counts_from_zero => {
                        self.below.insert(l.index, v.stop);
                        self.alias(r, l.index, None, e)
                    }
                    Some(v) if v.unit_step => {
                        self.define(r, Op::IntBinary { op: IntOp::Add, lhs: v.start, rhs: l.index }, None, None, e)
                    }
                    Some(v) => {
                        let offset = e.value(self, Op::IntBinary { op: IntOp::Mul, lhs: l.index, rhs: v.step }, None);
                        self.define(r, Op::IntBinary { op: IntOp::Add, lhs: v.start, rhs: offset }, None, None, e)
                    }
                    None => self.define(r, Op::RangeIterItem { it: self.map(l.it), index: l.index }, None, None, e),
                }
                e.define(l.next_index, Op::RangeIndexNext(l.index), None);
            }
            Op::Call { callable, args, .. } if instr.deopt.is_some() && self.cfunction(result).is_some() => {
                self.cfunction_call(instr, *callable, args, e)?;
            }
            Op::Call { callable, args, .. }
                if self.specialisable(result) && instr.deopt.is_some() && result.is_some_and(|r| self.facts.intrinsics.contains_key(&r)) =>
            {
                let r = result?;
                let call = self.facts.intrinsics[&r];
                // Still that builtin? Otherwise the interpreter makes the call.
                e.effect(Op::GuardIs { value: self.map(*callable), expected: call.callable }, instr.deopt);
                if let (Intrinsic::Len, [a]) = (call.which, args.as_slice()) {
                    if self.kinds.arrays.contains_key(a) {
                        match self.view(*a) {
                            Some(view) => {
                                self.alias(r, view.dims[0], instr.exit, e);
                            }
                            None => self.generic_int(instr, e),
                        }
                        return Some(());
                    }
                }
                if let Intrinsic::Ufunc(l) = call.which {
                    let mut floats = Vec::new();
                    for a in args {
                        let (k, m) = (self.numeric_kind(*a)?, self.machine(*a)?);
                        floats.push(self.as_float(m, k, false, None, e));
                    }
                    let op = Op::UfuncCall { function: l.function as i64, data: l.data as i64, args: floats };
                    self.define(r, op, instr.deopt, instr.exit, e);
                    // NumPy's inner loop runs no Python code (a floating-point exception it
                    // reports is redone by the interpreter): the checks after CALL are left
                    // to the next ones, as after a pure builtin.
                    self.after_pure_builtin = Some([*callable].into_iter().chain(args.iter().copied()).collect());
                    return Some(());
                }
                if let (Intrinsic::Len | Intrinsic::IsInstance(_) | Intrinsic::Math2(_) | Intrinsic::Pow, _) =
                    (call.which, args.as_slice())
                {
                    self.object_intrinsic(r, call.which, args, instr, e)?;
                } else if let (Intrinsic::Min | Intrinsic::Max, [a, b]) = (call.which, args.as_slice()) {
                    // min keeps the first unless the second is smaller (max: larger), as the
                    // builtins compare: NaN and equal values keep the first.
                    let (k, ma, mb) = (self.numeric_kind(*a)?, self.machine(*a)?, self.machine(*b)?);
                    let op = if call.which == Intrinsic::Min { CompareOp::Lt } else { CompareOp::Gt };
                    let cond = if k == FLOAT {
                        e.value(self, Op::FloatCompare { op, lhs: mb, rhs: ma }, None)
                    } else {
                        e.value(self, Op::IntCompare { op, lhs: mb, rhs: ma }, None)
                    };
                    let ty = self.out.values[ma.index()];
                    self.define(r, Op::Select { cond, if_true: mb, if_false: ma, ty }, None, instr.exit, e);
                } else {
                    let arg = *args.first()?;
                    let (k, m) = (self.numeric_kind(arg)?, self.machine(arg)?);
                    self.intrinsic(r, call.which, k, m, instr, e)?;
                }
            }
            Op::Call { callable, args, .. }
                if self.specialisable(result) && instr.deopt.is_some() && result.is_some_and(|r| self.facts.direct_calls.contains_key(&r)) =>
            {
                let r = result?;
                let facts = self.facts;
                let call = &facts.direct_calls[&r];
                let args = args.iter().map(|a| self.machine(*a)).collect::<Option<Vec<_>>>()?;
                // Still this function, with these globals, and no tracer to see the call?
                // Otherwise the interpreter makes the call.
                e.effect(Op::GuardCallee { value: self.map(*callable), code: call.code }, instr.deopt);
                e.effect(Op::CheckTracing, instr.deopt);
                for &(name, expected) in &call.requires {
                    e.effect(Op::GuardGlobalIs { name, expected }, instr.deopt);
                }
                let (ty, target) = (unboxed_type(call.returns), call.target);
                self.define(r, Op::CallDirect { args, ty, target }, instr.deopt, instr.exit, e);
            }
            // NumPy arrays (see `arrays`): index tuples and `a.shape` only native accesses
            // read are never built.
            Op::BuildTuple(_) | Op::LoadAttr { .. } if result.is_some_and(|r| self.plan.virtual_values.contains(&r)) => {}
            Op::Incref(v) | Op::Decref(v) | Op::XDecref(v) if self.plan.virtual_values.contains(v) => {}
            Op::LoadAttr { obj, name } if self.kinds.arrays.contains_key(obj) && self.specialisable(result) => {
                let r = result?;
                let attr = self.facts.names.get(*name as usize).map(String::as_str);
                match (self.view(*obj), attr) {
                    (Some(view), Some("ndim")) => {
                        self.define(r, Op::ConstI64 { value: view.dims.len() as i64, origin: None }, None, instr.exit, e)
                    }
                    (Some(view), Some("size")) => {
                        let mut size = view.dims[0];
                        for &d in &view.dims[1..] {
                            size = e.value(self, Op::IntBinary { op: IntOp::Mul, lhs: size, rhs: d }, None);
                        }
                        self.alias(r, size, instr.exit, e);
                    }
                    _ => self.generic_int(instr, e),
                }
            }
            Op::GetItem { obj, key } if self.kinds.shapes.contains_key(obj) && self.specialisable(result) => {
                let r = result?;
                let array = self.kinds.shapes[obj];
                let ndim = i64::from(self.kinds.arrays[&array].ndim);
                let axis = self.const_int(*key)?;
                match self.view(array) {
                    Some(view) => {
                        let axis = if axis < 0 { axis + ndim } else { axis };
                        self.alias(r, view.dims[axis as usize], instr.exit, e);
                    }
                    None if self.plan.virtual_values.contains(obj) => return None,
                    None => self.generic_int(instr, e),
                }
            }
            // `a[i]` of a 2-D array only indexed further (`a[i][j]`): never made.
            Op::GetItem { .. } if result.is_some_and(|r| self.plan.virtual_values.contains(&r)) => {}
            Op::GetItem { obj, key }
                if (self.kinds.arrays.contains_key(obj) || self.kinds.rows.contains_key(obj)) && self.specialisable(result) =>
            {
                let r = result?;
                let access = arrays::access(&self.kinds, *obj, *key)?;
                let dtype = self.kinds.arrays[&access.array].dtype;
                let view = self.view(access.array)?;
                let offset = self.element_offset(access.array, &view, &access.indices, access.chained, instr.exit?, e)?;
                self.define(r, Op::LoadElement { data: view.data, offset, dtype }, None, instr.exit, e);
            }
            Op::SetItem { obj, key, value } if self.plan.native_stores.contains(&(self.current, self.current_instr)) => {
                self.array_store(instr, *obj, *key, *value, e)?;
            }
            // An item used only as a number of the kind it was profiled as: read unboxed,
            // guarded where it is read (see `item_loads`).
            Op::GetItem { obj, key }
                if self.specialisable(result) && result.is_some_and(|r| self.kinds.item_loads.contains_key(&r)) =>
            {
                let r = result?;
                let (seq, kind) = self.kinds.item_loads[&r];
                let index = self.machine(*key)?;
                let op = Op::LoadItemUnboxed { obj: self.map(*obj), index, seq, ty: unboxed_type(kind) };
                self.define(r, op, instr.deopt, instr.exit, e);
            }
            // Indexing with a machine int: no boxing of the index (lists inline).
            Op::GetItem { obj, key } if self.numeric_kind(*key) == Some(INT) => {
                let index = self.machine(*key)?;
                let new = Instr { op: Op::GetItemInt { obj: *obj, index, borrowed: false }, ..instr.clone() };
                self.generic(&new, e);
            }
            Op::SetItem { obj, key, value } if self.numeric_kind(*key) == Some(INT) => {
                let index = self.machine(*key)?;
                // A machine float is stored as is (no box when a float the list alone owns can
                // take the new value in place).
                let value = if self.unboxed_ty(*value) == Some(Type::F64) { self.map(*value) } else { *value };
                let new = Instr { op: Op::SetItemInt { obj: *obj, index, value, borrowed: false }, ..instr.clone() };
                self.generic(&new, e);
            }
            _ => self.generic(instr, e),
        }
        Some(())
    }

    /// The numeric kinds and machine values of a specialised binary operation's operands. An
    /// operand that may be any object but was profiled as an int or float (`Facts::hints`) is
    /// guarded to be one, leaving through the instruction's deopt exit otherwise.
    fn operands(&mut self, instr: &Instr, lhs: ValueId, rhs: ValueId, e: &mut Emit) -> Option<((Kind, ValueId), (Kind, ValueId))> {
        let hint = if instr.deopt.is_some() { self.facts.hint(instr.at) } else { 0 };
        let a = self.operand(lhs, hint, instr.deopt, e)?;
        let b = if rhs == lhs { a } else { self.operand(rhs, hint, instr.deopt, e)? };
        Some((a, b))
    }

    fn operand(&mut self, v: ValueId, hint: Kind, deopt: Option<ExitId>, e: &mut Emit) -> Option<(Kind, ValueId)> {
        if let Some(k) = self.numeric_kind(v) {
            return Some((k, self.machine(v)?));
        }
        let kind = speculated(self.kind(v), hint);
        // Profiles are of Python numbers (a NumPy scalar fails their exact-class guards).
        if numeric_bound(kind).is_none() || self.unboxed_ty(v).is_some() || flavour(kind) != Flavour::Python {
            return None;
        }
        let object = self.map(v);
        let (class, to) = if kind == INT { (PyClass::Int, Type::I64) } else { (PyClass::Float, Type::F64) };
        e.effect(Op::GuardType { value: object, class }, deopt);
        let unbox_exit = (to == Type::I64).then_some(deopt).flatten();
        Some((kind, e.value(self, Op::Unbox { value: object, to }, unbox_exit)))
    }

    /// The builtin a call's result comes from, if the call goes through its C function (and
    /// whether it is known to return a float).
    fn cfunction(&self, result: Option<ValueId>) -> Option<(IntrinsicCall, bool)> {
        let call = *self.facts.intrinsics.get(&result?)?;
        match call.which {
            Intrinsic::CFunction { float, .. } => Some((call, float)),
            _ => None,
        }
    }

    /// A call of a builtin through its C function (`CallCFunction`), behind a guard that the
    /// callable is still the object found when compiling (else the interpreter makes the
    /// call). A result of kind float (a builtin known to return one) is guarded to be an exact
    /// float just after the call, leaving with it on the interpreter's stack otherwise, and
    /// unboxed at once: its box is released there.
    fn cfunction_call(&mut self, instr: &Instr, callable: ValueId, args: &[ValueId], e: &mut Emit) -> Option<()> {
        let r = instr.result?;
        let (call, pure) = self.cfunction(Some(r))?;
        e.effect(Op::GuardIs { value: self.map(callable), expected: call.callable }, instr.deopt);
        let op = Op::CallCFunction { callable, args: args.to_vec() };
        self.calling_pure_builtin = pure;
        let specialisable = self.specialisable(Some(r));
        let boxed = if specialisable { self.new_value(Type::Object) } else { r };
        self.generic(&Instr { op, result: Some(boxed), ..instr.clone() }, e);
        self.calling_pure_builtin = false;
        if pure {
            self.after_pure_builtin = Some(vec![callable]);
        }
        if !specialisable {
            return Some(());
        }
        // The frame just after the call, with the result on the stack; the call's operands
        // are still held here (released by the instructions that follow).
        let mut after = self.out.exits[self.kinds.after_call.get(&r)?.index()].clone();
        after.kind = ExitKind::Deopt;
        for v in after.state.stack.iter_mut().filter(|v| **v == r) {
            *v = boxed;
        }
        after.release = self.func.exit(instr.exit?).release.clone();
        self.out.exits.push(after);
        let after = ExitId(self.out.exits.len() as u32 - 1);
        e.effect(Op::GuardType { value: boxed, class: PyClass::Float }, Some(after));
        match self.repr[r.index()] {
            Repr::Unboxed(_) => e.define(r, Op::UnboxFloatOwned(boxed), None),
            Repr::Boxed => {
                self.subst.insert(r, boxed);
                self.unbox_shadow(r, e);
            }
        }
        Some(())
    }

    /// Defines `r` as `len`, `isinstance`, `pow` or a two-argument `math` function of `args`
    /// (the callable is guarded already).
    fn object_intrinsic(&mut self, r: ValueId, which: Intrinsic, args: &[ValueId], instr: &Instr, e: &mut Emit) -> Option<()> {
        let deopt = instr.deopt;
        match (which, args) {
            (Intrinsic::Len, [x]) => self.define(r, Op::LenOf(self.map(*x)), deopt, instr.exit, e),
            (Intrinsic::IsInstance(class), [x, t]) => {
                // Still that type?
                e.effect(Op::GuardIs { value: self.map(*t), expected: class }, deopt);
                match self.numeric_kind(*x) {
                    // A machine value's class is known: an exact int, float or bool.
                    Some(k) => {
                        // Used: the argument's kind is checked on entry.
                        self.machine(*x)?;
                        let known = crate::runtime::machine_isinstance(k == INT, k == FLOAT, k == BOOL, class);
                        self.define(r, Op::ConstBool(known), None, instr.exit, e);
                    }
                    None => self.define(r, Op::IsInstanceOf { value: self.map(*x), class }, deopt, instr.exit, e),
                }
            }
            (Intrinsic::Math2(_) | Intrinsic::Pow, [a, b]) => {
                let (ka, kb) = (self.numeric_kind(*a)?, self.numeric_kind(*b)?);
                let (ma, mb) = (self.machine(*a)?, self.machine(*b)?);
                let (fa, fb) = (self.as_float(ma, ka, false, None, e), self.as_float(mb, kb, false, None, e));
                let op = match which {
                    Intrinsic::Math2(func) => Op::MathCall2 { func, lhs: fa, rhs: fb },
                    _ => Op::FloatBinary { op: FloatOp::Pow, lhs: fa, rhs: fb },
                };
                self.define(r, op, deopt, instr.exit, e);
            }
            _ => return None,
        }
        Some(())
    }

    /// Defines `r` as intrinsic `which` of machine value `m` (of kind `k`).
    fn intrinsic(&mut self, r: ValueId, which: Intrinsic, k: Kind, m: ValueId, instr: &Instr, e: &mut Emit) -> Option<()> {
        let deopt = instr.deopt;
        // A bool or int as the int it is (`abs(True)` is 1).
        let as_int = |s: &mut Self, e: &mut Emit| -> Op {
            let zero = e.value(s, Op::ConstI64 { value: 0, origin: None }, None);
            Op::IntBinary { op: IntOp::Add, lhs: m, rhs: zero }
        };
        let (op, exit) = match (which, k) {
            (Intrinsic::Math(func), _) => {
                let x = self.as_float(m, k, false, None, e);
                (Op::MathCall { func, value: x }, deopt)
            }
            (Intrinsic::Round(rounding), FLOAT) => (Op::FloatToInt { rounding, value: m }, deopt),
            (Intrinsic::Bool, BOOL) => {
                self.alias(r, m, instr.exit, e);
                return Some(());
            }
            (Intrinsic::Bool, INT) => {
                let zero = e.value(self, Op::ConstI64 { value: 0, origin: None }, None);
                (Op::IntCompare { op: CompareOp::Ne, lhs: m, rhs: zero }, None)
            }
            (Intrinsic::Bool, _) => {
                let zero = e.value(self, Op::ConstF64 { bits: 0, origin: None }, None);
                (Op::FloatCompare { op: CompareOp::Ne, lhs: m, rhs: zero }, None)
            }
            (Intrinsic::Min | Intrinsic::Max | Intrinsic::Math2(_) | Intrinsic::Pow, _) => return None,
            (Intrinsic::Len | Intrinsic::IsInstance(_) | Intrinsic::Ufunc(_) | Intrinsic::CFunction { .. } | Intrinsic::DivMod, _) => return None,
            (Intrinsic::NpAbs, FLOAT) => (Op::MathCall { func: super::MathFn::Fabs, value: m }, deopt),
            (Intrinsic::NpAbs, INT) => (Op::IntAbs(m), deopt),
            (Intrinsic::NpAbs, _) => return None,
            (Intrinsic::NpIsNan, FLOAT) => (Op::FloatCompare { op: CompareOp::Ne, lhs: m, rhs: m }, None),
            (Intrinsic::NpIsNan, _) => (Op::ConstBool(false), None),
            (Intrinsic::Int, FLOAT) => (Op::FloatToInt { rounding: super::Rounding::Trunc, value: m }, deopt),
            (Intrinsic::Round(_) | Intrinsic::Int, INT) | (Intrinsic::Float, FLOAT) => {
                self.alias(r, m, instr.exit, e);
                return Some(());
            }
            (Intrinsic::Round(_) | Intrinsic::Int, _) => (as_int(self, e), None),
            (Intrinsic::Float, _) => (Op::IntToFloat { value: m, exact: false }, None),
            (Intrinsic::IsNan, FLOAT) => (Op::FloatCompare { op: CompareOp::Ne, lhs: m, rhs: m }, None),
            (Intrinsic::IsInf, FLOAT) => {
                let magnitude = e.value(self, Op::MathCall { func: super::MathFn::Fabs, value: m }, deopt);
                let inf = e.value(self, Op::ConstF64 { bits: f64::INFINITY.to_bits(), origin: None }, None);
                (Op::FloatCompare { op: CompareOp::Eq, lhs: magnitude, rhs: inf }, None)
            }
            (Intrinsic::IsNan | Intrinsic::IsInf, _) => (Op::ConstBool(false), None),
            (Intrinsic::Abs, FLOAT) => (Op::MathCall { func: super::MathFn::Fabs, value: m }, deopt),
            (Intrinsic::Abs, INT) => (Op::IntAbs(m), deopt),
            (Intrinsic::Abs, _) => (as_int(self, e), None),
        };
        self.define(r, op, exit, instr.exit, e);
        Some(())
    }

    /// Whether a result's kind was inferred numeric (its operation is specialised).
    fn specialisable(&self, result: Option<ValueId>) -> bool {
        result.is_some_and(|r| numeric_bound(self.kind(r)).is_some())
    }

    /// A machine float for a machine value of kind `kind`.
    fn as_float(&mut self, m: ValueId, kind: Kind, exact: bool, deopt: Option<ExitId>, e: &mut Emit) -> ValueId {
        if kind == FLOAT {
            m
        } else {
            let exit = if exact { deopt } else { None };
            e.value(self, Op::IntToFloat { value: m, exact: exact && deopt.is_some() }, exit)
        }
    }

    /// The truth of a numeric value as a machine bool.
    fn truth(&mut self, v: ValueId, e: &mut Emit) -> Option<ValueId> {
        let k = self.numeric_kind(v)?;
        let m = self.machine(v)?;
        Some(match k {
            BOOL => m,
            INT => {
                let zero = e.value(self, Op::ConstI64 { value: 0, origin: None }, None);
                e.value(self, Op::IntCompare { op: CompareOp::Ne, lhs: m, rhs: zero }, None)
            }
            _ => {
                let zero = e.value(self, Op::ConstF64 { bits: 0, origin: None }, None);
                e.value(self, Op::FloatCompare { op: CompareOp::Ne, lhs: m, rhs: zero }, None)
            }
        })
    }

    /// An operation kept generic: unboxed operands are boxed into temporaries first.
    fn generic(&mut self, instr: &Instr, e: &mut Emit) {
        let mut new = instr.clone();
        new.deopt = None;
        let consumed = consumed_operands(&instr.op);
        let mut temps = Vec::new();
        {
            let operands = new.op.operands();
            let mut replacements = Vec::new();
            for (i, v) in operands.iter().enumerate() {
                let mapped = self.map(*v);
                let machine_operand = (matches!(new.op, Op::GetItemInt { .. } | Op::SetItemInt { .. }) && i == 1)
                    || (matches!(new.op, Op::SetItemInt { .. }) && i == 2 && self.out.values[mapped.index()] == Type::F64);
                // A call's arguments are the callee's to look at (`sys.getrefcount(x)` sees the
                // reference the interpreter's stack holds): those get their own reference.
                let is_call = matches!(new.op, Op::Call { .. } | Op::CallEx { .. } | Op::CallCFunction { .. });
                let borrowed_const = self.const_origin.get(&mapped).copied().filter(|_| !consumed.contains(&i) && !is_call);
                if let (Some(index), false) = (borrowed_const, machine_operand) {
                    // The code object keeps its constants alive: borrow it, as LOAD_CONST would.
                    let c = e.value(self, Op::Const { index }, None);
                    replacements.push(c);
                } else if self.out.values[mapped.index()].is_unboxed() && !machine_operand {
                    let t = self.boxed_operand(mapped, e, instr.exit);
                    if !consumed.contains(&i) {
                        temps.push(t);
                    }
                    replacements.push(t);
                } else {
                    replacements.push(mapped);
                }
            }
            for (slot, r) in new.op.operands_mut().into_iter().zip(replacements) {
                *slot = r;
            }
        }
        if !temps.is_empty() {
            if let Some(x) = new.exit {
                let mut exit = self.out.exits[x.index()].clone();
                exit.release.extend(temps.iter().copied());
                self.out.exits.push(exit);
                new.exit = Some(ExitId(self.out.exits.len() as u32 - 1));
            }
        }
        // Calling the builtin `range` reads no frame, so locals are not written for it (a
        // `range` rebound to a function that inspects its caller's locals would see them as
        // they were at the last write).
        let calls_range = matches!(instr.op, Op::Call { callable, .. } if self.kinds.range_globals.contains(&callable));
        // Nor for a builtin known to run no Python code (`Intrinsic::CFunction`).
        let runs_no_python = matches!(instr.op, Op::CallCFunction { .. }) && self.calling_pure_builtin;
        // Nor for `numpy.dtype(c)` (checked to be that: NumPy's C code).
        let makes_dtype = instr.result.is_some_and(|r| self.facts.dtype.calls.contains_key(&r)) && instr.deopt.is_some();
        if matches!(instr.op, Op::Call { .. } | Op::CallEx { .. } | Op::CallCFunction { .. })
            && !calls_range
            && !runs_no_python
            && !makes_dtype
        {
            self.write_locals_to_frame(instr.exit, e);
        }
        new.at = e.at;
        e.push(new);
        for t in temps {
            e.effect(Op::Decref(t), None);
        }
        // A result with a machine shadow (a number of known kind kept as an object): unbox it
        // right here (pure: dropped if unused). Arguments are unboxed after the entry guards.
        if let Some(r) = instr.result.filter(|r| !self.args.contains(r)) {
            self.unbox_shadow(r, e);
        }
    }

    /// Defines the machine shadow of boxed value `r`, if it has one.
    fn unbox_shadow(&mut self, r: ValueId, e: &mut Emit) {
        if let Some(&s) = self.shadow.get(&r) {
            let to = self.out.values[s.index()];
            e.define(s, Op::Unbox { value: self.map(r), to }, None);
        }
    }

    /// Before a call: the callee may read this frame's locals (`sys._getframe(1).f_locals`,
    /// tracebacks with locals, debuggers), so locals holding machine values get a boxed copy
    /// in their slots (the slot's previous copy is released).
    fn write_locals_to_frame(&mut self, exit: Option<ExitId>, e: &mut Emit) {
        let Some(x) = exit else { return };
        let locals = self.out.exits[x.index()].state.locals.clone();
        for (slot, v) in locals.iter().enumerate() {
            let v = self.map(*v);
            if !self.out.values[v.index()].is_unboxed() || self.written.get(&(slot as u32)) == Some(&v) {
                continue;
            }
            if self.bool_list_needed_in_frame(v) {
                continue;
            }
            self.written.insert(slot as u32, v);
            let boxed = match self.out.bound_flags.get(&v) {
                // (Boxing a NumPy scalar that may be unbound is not done: see `finish_numpy`.)
                Some(&local) if local == slot as u32 => {
                    self.maybe_unbound_boxes.push(v);
                    e.value(self, Op::BoxIfBound { value: v, local }, exit)
                }
                _ => e.value(self, Op::Box(v), exit),
            };
            e.effect(Op::ClearLocal { local: slot as u32 }, None);
            e.effect(Op::StoreLocal { local: slot as u32, value: boxed }, None);
        }
    }
}

/// Operand positions an operation takes over (their references move into the result).
fn consumed_operands(op: &Op) -> Vec<usize> {
    match op {
        Op::BuildTuple(items) | Op::BuildList(items) => (0..items.len()).collect(),
        Op::ListAppend { .. } => vec![1],
        Op::UnboxFloatOwned(_) => vec![0],
        _ => vec![],
    }
}

/// Instructions being emitted into one block.
struct Emit {
    instrs: Vec<Instr>,
    /// Code unit of the bytecode instruction being rewritten.
    at: u32,
}

impl Emit {
    fn push(&mut self, instr: Instr) {
        self.instrs.push(instr);
    }

    /// Emits an operation without a result.
    fn effect(&mut self, op: Op, exit: Option<ExitId>) {
        self.instrs.push(Instr { result: None, op, exit, at: self.at, deopt: None });
    }

    /// Emits an operation defining `result`.
    fn define(&mut self, result: ValueId, op: Op, exit: Option<ExitId>) {
        self.instrs.push(Instr { result: Some(result), op, exit, at: self.at, deopt: None });
    }

    /// Emits an operation with a new result.
    fn value(&mut self, s: &mut Specializer<'_>, op: Op, exit: Option<ExitId>) -> ValueId {
        let ty = op.result_type().unwrap_or(Type::Object);
        let r = s.new_value(ty);
        s.repr.push(if ty.is_unboxed() { Repr::Unboxed(ty) } else { Repr::Boxed });
        s.kinds.kind.push(0);
        self.define(r, op, exit);
        r
    }
}

/// Removes pure instructions whose results are unused and block parameters nothing reads,
/// then exits nothing refers to.
fn clean_up(func: &mut Function) {
    for block in &mut func.blocks {
        for instr in &mut block.instrs {
            instr.deopt = None;
        }
    }
    fold_negated_branches(func);
    merge_fp_guards(func);
    drop_clears_of_empty_slots(func);
    cancel_reference_pairs(func);
    // Loop parameters rebuilt after loops (a loop's variable and its bound flag), checks of
    // NumPy's floating-point exceptions moved to where loops are left, then the parameters
    // that freed (flags of values that were held by the exits of those checks).
    super::loop_params::rebuild_after_loops(func);
    let loop_entries = std::mem::take(&mut func.loop_entries);
    super::fp_flags::place_checks(func, &loop_entries);
    super::loop_params::rebuild_after_loops(func);
    loop {
        let mut used: HashSet<ValueId> = HashSet::default();
        for (b, block) in func.blocks.iter().enumerate() {
            for instr in &block.instrs {
                used.extend(instr.op.operands());
            }
            used.extend(block.terminator.operands());
            for edge in block.terminator.edges() {
                let params = &func.blocks[edge.target.index()].params;
                for (p, a) in params.iter().zip(&edge.args) {
                    // A loop parameter passed back to itself is no use.
                    if !(edge.target.index() == b && p == a) {
                        used.insert(*a);
                    }
                }
            }
        }
        let mut live_exits: HashSet<ExitId> = func.blocks.iter().flat_map(|b| b.referenced_exits()).collect();
        live_exits.extend(live_exits.clone().iter().filter_map(|x| func.exits[x.index()].redo_from));
        for x in &live_exits {
            let exit = &func.exits[x.index()];
            for v in exit.state.locals.iter().chain(&exit.state.stack).chain(&exit.release) {
                used.insert(*v);
            }
            for (it, index) in &exit.range_positions {
                used.insert(*it);
                used.insert(*index);
            }
        }
        // Boxing a value that may be a NumPy scalar reads its flag.
        loop {
            let flags: Vec<ValueId> = func
                .numpy_boxes
                .iter()
                .filter_map(|(v, flag)| flag.filter(|f| used.contains(v) && !used.contains(f)))
                .collect();
            if flags.is_empty() {
                break;
            }
            used.extend(flags);
        }
        let mut changed = false;
        for block in &mut func.blocks {
            let before = block.instrs.len();
            let pure = |i: &Instr| i.op.is_pure() || (matches!(i.op, Op::Unbox { .. }) && i.exit.is_none());
            block.instrs.retain(|i| !(pure(i) && i.result.is_some_and(|r| !used.contains(&r))));
            changed |= block.instrs.len() != before;
        }
        // Unused parameters (not the entry's) and their arguments.
        for b in 1..func.blocks.len() {
            let dead: Vec<usize> =
                func.blocks[b].params.iter().enumerate().filter(|(_, p)| !used.contains(p)).map(|(i, _)| i).collect();
            if dead.is_empty() {
                continue;
            }
            changed = true;
            let keep = |i: &usize| !dead.contains(i);
            func.blocks[b].params = func.blocks[b].params.iter().enumerate().filter(|(i, _)| keep(i)).map(|(_, p)| *p).collect();
            for pred in 0..func.blocks.len() {
                for edge in func.blocks[pred].terminator.edges_mut() {
                    if edge.target.index() == b {
                        edge.args = edge.args.iter().enumerate().filter(|(i, _)| keep(i)).map(|(_, a)| *a).collect();
                    }
                }
            }
        }
        if !changed {
            break;
        }
    }
    compact_exits(func);
}

/// `Branch (not x), a, b` is `Branch x, b, a`.
fn fold_negated_branches(func: &mut Function) {
    let negations: HashMap<ValueId, ValueId> = func
        .blocks
        .iter()
        .flat_map(|b| &b.instrs)
        .filter_map(|i| match (&i.op, i.result) {
            (Op::BoolNot(x), Some(r)) => Some((r, *x)),
            _ => None,
        })
        .collect();
    for block in &mut func.blocks {
        if let Terminator::Branch { cond, if_true, if_false } = &mut block.terminator {
            if let Some(&x) = negations.get(cond) {
                *cond = x;
                std::mem::swap(if_true, if_false);
            }
        }
    }
}

/// Removes `ClearLocal`s (and stores of NULL) of local slots that are NULL already on every
/// path: locals that only ever held machine values were never written to the frame.
fn drop_clears_of_empty_slots(func: &mut Function) {
    let n = func.nlocalsplus as usize;
    let null_values: HashSet<ValueId> = func
        .blocks
        .iter()
        .flat_map(|b| &b.instrs)
        .filter_map(|i| matches!(i.op, Op::Null).then_some(i.result).flatten())
        .collect();
    // Per block: which slots may hold a reference when it starts (None: not reached yet).
    let mut maybe_set: Vec<Option<Vec<bool>>> = vec![None; func.blocks.len()];
    let mut entry = vec![false; n];
    for instr in &func.blocks[0].instrs {
        if let Op::LoadArg { local } = instr.op {
            if let Some(slot) = entry.get_mut(local as usize) {
                *slot = true;
            }
        }
    }
    maybe_set[0] = Some(entry);
    let transfer = |state: &mut Vec<bool>, op: &Op| match op {
        Op::StoreLocal { local, value } => {
            if let Some(slot) = state.get_mut(*local as usize) {
                *slot = !null_values.contains(value);
            }
        }
        Op::ClearLocal { local } => {
            if let Some(slot) = state.get_mut(*local as usize) {
                *slot = false;
            }
        }
        _ => {}
    };
    loop {
        let mut changed = false;
        for b in 0..func.blocks.len() {
            let Some(mut state) = maybe_set[b].clone() else { continue };
            for instr in &func.blocks[b].instrs {
                transfer(&mut state, &instr.op);
            }
            for edge in func.blocks[b].terminator.edges() {
                let t = edge.target.index();
                let merged = match &maybe_set[t] {
                    None => state.clone(),
                    Some(old) => old.iter().zip(&state).map(|(a, b)| *a || *b).collect(),
                };
                if maybe_set[t].as_ref() != Some(&merged) {
                    maybe_set[t] = Some(merged);
                    changed = true;
                }
            }
        }
        if !changed {
            break;
        }
    }
    for b in 0..func.blocks.len() {
        let Some(mut state) = maybe_set[b].clone() else { continue };
        let mut kept = Vec::with_capacity(func.blocks[b].instrs.len());
        for instr in std::mem::take(&mut func.blocks[b].instrs) {
            let redundant = match &instr.op {
                Op::ClearLocal { local } => !state.get(*local as usize).copied().unwrap_or(true),
                Op::StoreLocal { local, value } => {
                    null_values.contains(value) && !state.get(*local as usize).copied().unwrap_or(true)
                }
                _ => false,
            };
            transfer(&mut state, &instr.op);
            if !redundant {
                kept.push(instr);
            }
        }
        func.blocks[b].instrs = kept;
    }
}

/// NumPy float64 arithmetic warns where an operation raises a floating-point exception: each
/// such operation is followed by a check of the (sticky) flags (`GuardFpFlags`), the
/// interpreter redoing the operation. A check is dropped where a later one of the same block
/// follows with only machine operations that cannot leave in between: the later check sees
/// the flags of both and leaves through the first one's exit, the interpreter redoing
/// everything from there (nothing it would do differently).
fn merge_fp_guards(func: &mut Function) {
    for block in &mut func.blocks {
        // The check that may still go: its index and exit.
        let mut pending: Option<(usize, Option<ExitId>)> = None;
        let mut dropped: Vec<usize> = Vec::new();
        for i in 0..block.instrs.len() {
            let instr = &block.instrs[i];
            let quiet = instr.exit.is_none()
                && (instr.op.is_pure() || matches!(instr.op, Op::IntBinary { .. } | Op::FloatBinary { .. } | Op::Select { .. }));
            match &instr.op {
                Op::GuardFpFlags => {
                    if let Some((earlier, exit)) = pending {
                        dropped.push(earlier);
                        block.instrs[i].exit = exit;
                    }
                    pending = Some((i, block.instrs[i].exit));
                }
                _ if quiet => {}
                _ => pending = None,
            }
        }
        for i in dropped.into_iter().rev() {
            block.instrs.remove(i);
        }
    }
}

/// Removes `Incref v ... Decref v` pairs within a block around machine operations only (e.g.
/// arithmetic on an argument's shadow): another owner (the frame's local slot) keeps `v` alive
/// meanwhile, and no code that could look at its reference count runs. Exits in between that
/// would release the stack's reference to `v` no longer do (none may hold `v` on its stack).
fn cancel_reference_pairs(func: &mut Function) {
    for b in 0..func.blocks.len() {
        let mut i = 0;
        while i < func.blocks[b].instrs.len() {
            let Op::Incref(v) = func.blocks[b].instrs[i].op else {
                i += 1;
                continue;
            };
            let instrs = &func.blocks[b].instrs;
            let mut partner = None;
            for (j, instr) in instrs.iter().enumerate().skip(i + 1) {
                match &instr.op {
                    Op::Decref(w) if *w == v => {
                        partner = Some(j);
                        break;
                    }
                    // Another reference operation on v, or a use that may keep or consume it.
                    Op::Incref(w) | Op::XDecref(w) if *w == v => break,
                    op if consumed_operands(op).iter().any(|&k| op.operands().get(k) == Some(&v)) => break,
                    Op::StoreLocal { value, .. } if *value == v => break,
                    // Indexing v itself: it takes the reference around whatever may run code
                    // (it is made `borrowed` below).
                    Op::GetItemInt { obj, index, .. } if *obj == v && *index != v => {}
                    Op::SetItemInt { obj, index, value, .. } if *obj == v && *index != v && *value != v => {}
                    // Likewise a truth test of v (made `IsTrueBorrowed` below), when it leaves
                    // through a raise exit only.
                    Op::IsTrue(w) if *w == v && instr.exit.is_some_and(|x| func.exits[x.index()].kind == ExitKind::Raise) => {}
                    // Only machine operations: code that runs Python (or C code reading
                    // reference counts, `sys.getrefcount`) must see the interpreter's counts.
                    op if !op.is_machine() && !op.is_pure() && !matches!(op, Op::Incref(_) | Op::Decref(_)) => break,
                    _ => {}
                }
                // An exit holding v on its stack (without releasing it) then takes its own
                // reference (`Exit::borrowed`); one releasing v drops the pair's instead.
            }
            let Some(j) = partner else {
                i += 1;
                continue;
            };
            for k in i + 1..j {
                match &mut func.blocks[b].instrs[k].op {
                    Op::GetItemInt { obj, borrowed, .. } | Op::SetItemInt { obj, borrowed, .. } if *obj == v => *borrowed = true,
                    op @ Op::IsTrue(_) => *op = Op::IsTrueBorrowed(v),
                    _ => {}
                }
            }
            // Exits between the pair: v is no longer the stack's to release; an exit holding it
            // on its stack takes a reference of its own.
            for k in i + 1..j {
                let instr = &func.blocks[b].instrs[k];
                let resume = match instr.op {
                    Op::CheckEvalBreaker { resume, .. } => Some(resume),
                    _ => None,
                };
                for (is_resume, x) in [(false, instr.exit), (true, resume)] {
                    let Some(x) = x else { continue };
                    let mut exit = func.exits[x.index()].clone();
                    if let Some(at) = exit.release.iter().position(|r| *r == v) {
                        exit.release.remove(at);
                    } else if exit.state.stack.contains(&v) {
                        exit.borrowed.push(v);
                    } else {
                        continue;
                    }
                    func.exits.push(exit);
                    let new = ExitId(func.exits.len() as u32 - 1);
                    let instr = &mut func.blocks[b].instrs[k];
                    match (&mut instr.op, is_resume) {
                        (Op::CheckEvalBreaker { resume, .. }, true) => *resume = new,
                        _ => instr.exit = Some(new),
                    }
                }
            }
            func.blocks[b].instrs.remove(j);
            func.blocks[b].instrs.remove(i);
            // An enclosing pair (e.g. `x[i] -= ...` copies the container) may cancel now.
            i = 0;
        }
    }
}
