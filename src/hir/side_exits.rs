//! Why each deoptimisation exit of a specialised function exists, in words, and which argument
//! types its entry guards check: what `rjit.info` reports as side exits and specialisations,
//! `RJIT_LOG=deopt` prints and `rjit.stats()["deopts_by_reason"]` counts.
//!
//! Computed once per compilation from the final HIR (one pass over the instructions), so the
//! exit numbering is the machine code's own (`rjit_note_deopt` receives the same index).

use super::{ExitKind, FloatOp, Function, IntOp, Op, PyClass};

/// A place where specialised code may hand its frame to the interpreter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeoptSite {
    /// The exit's index (what compiled code passes to `rjit_note_deopt`).
    pub exit: u32,
    /// Code unit of the instruction the interpreter redoes.
    pub offset: u32,
    /// Why the machine code leaves there, without the place (a key to group by), e.g.
    /// `int overflow (+)`.
    pub reason: String,
}

/// An argument checked on entry to specialised code: `type(arg) is class`, or an array of
/// this dtype and number of dimensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryGuard {
    /// The argument's local slot (its index in `co_varnames`).
    pub arg: u32,
    pub class: PyClass,
    pub array: Option<crate::numpy::ArrayType>,
}

impl EntryGuard {
    /// What the argument must be, in words (`int`, `ndarray[float64, 2d]`).
    pub fn type_name(&self) -> String {
        match self.array {
            Some(a) => a.to_string(),
            None => class_name(self.class).to_owned(),
        }
    }
}

/// The Python name of a class the specialiser guards on.
pub fn class_name(class: PyClass) -> &'static str {
    match class {
        PyClass::Int => "int",
        PyClass::Float => "float",
        PyClass::Bool => "bool",
        PyClass::RangeIter => "range_iterator",
    }
}

/// The entry guards of a specialised function (they are at the end of the entry block, on
/// the `LoadArg` values: see `specialize::entry_guards`).
pub fn entry_guards(func: &Function) -> Vec<EntryGuard> {
    let Some(entry) = func.blocks.first() else { return Vec::new() };
    let arg_of = |v| {
        entry.instrs.iter().find_map(|i| match (&i.op, i.result) {
            (Op::LoadArg { local }, Some(r)) if r == v => Some(*local),
            _ => None,
        })
    };
    entry
        .instrs
        .iter()
        .filter_map(|i| match &i.op {
            Op::GuardType { value, class } => arg_of(*value).map(|arg| EntryGuard { arg, class: *class, array: None }),
            Op::GuardArray { value, array, .. } => {
                arg_of(*value).map(|arg| EntryGuard { arg, class: PyClass::Int, array: Some(*array) })
            }
            _ => None,
        })
        .collect()
}

/// Every deoptimisation exit some instruction can take, in exit order.
pub fn deopt_sites(func: &Function) -> Vec<DeoptSite> {
    // An exit several instructions share (the entry guards: a type check, then an unbox that
    // may not fit) gets each distinct reason, joined with "or".
    let mut reasons: Vec<Vec<String>> = vec![Vec::new(); func.exits.len()];
    let is_arg = |v| {
        func.blocks.first().is_some_and(|b| {
            b.instrs.iter().any(|i| i.result == Some(v) && matches!(i.op, Op::LoadArg { .. }))
        })
    };
    for instr in func.blocks.iter().flat_map(|b| &b.instrs) {
        for exit in [instr.exit, instr.deopt].into_iter().flatten() {
            if func.exit(exit).kind == ExitKind::Deopt {
                let why = reason(&instr.op, &is_arg);
                let slot = &mut reasons[exit.index()];
                if !slot.contains(&why) {
                    slot.push(why);
                }
            }
        }
    }
    reasons
        .into_iter()
        .enumerate()
        .filter(|(_, r)| !r.is_empty())
        .map(|(i, r)| DeoptSite { exit: i as u32, offset: func.exits[i].state.offset, reason: join(&r) })
        .collect()
}

/// How the reasons of the entry guards start.
pub const ENTRY_GUARD: &str = "entry guard: ";

/// Joins an exit's reasons with "or", saying "entry guard: " once.
fn join(reasons: &[String]) -> String {
    let mut out = String::new();
    for (i, r) in reasons.iter().enumerate() {
        if i > 0 {
            out.push_str(" or ");
        }
        out.push_str(if i > 0 && out.starts_with(ENTRY_GUARD) { r.strip_prefix(ENTRY_GUARD).unwrap_or(r) } else { r });
    }
    out
}

/// Why an instruction's machine version leaves for the interpreter.
fn reason(op: &Op, is_arg: &dyn Fn(super::ValueId) -> bool) -> String {
    match op {
        Op::GuardType { class: PyClass::RangeIter, .. } => "iterable is not a range (range loop guard)".into(),
        Op::GuardType { value, class } if is_arg(*value) => {
            format!("{ENTRY_GUARD}argument is not {}", class_name(*class))
        }
        Op::GuardType { class, .. } => format!("operand is not {} (type profile guard)", class_name(*class)),
        Op::Unbox { value, .. } if is_arg(*value) => format!("{ENTRY_GUARD}argument int beyond 64 bits"),
        Op::Unbox { .. } => "int does not fit in 64 bits".into(),
        Op::IntBinary { op, .. } => match op {
            IntOp::Add | IntOp::Sub | IntOp::Mul => format!("int overflow ({})", int_symbol(*op)),
            IntOp::FloorDiv | IntOp::Mod => format!("int division by zero or overflow ({})", int_symbol(*op)),
            IntOp::Lshift => "int shift overflows or has a negative count (<<)".into(),
            IntOp::Rshift => "int shift has a negative count (>>)".into(),
            IntOp::And | IntOp::Or | IntOp::Xor => format!("int operation ({})", int_symbol(*op)),
        },
        Op::FloatBinary { op, .. } => match op {
            FloatOp::Div | FloatOp::FloorDiv | FloatOp::Mod => {
                format!("float division by zero ({})", float_symbol(*op))
            }
            FloatOp::Pow => "float power raises or is complex (**)".into(),
            FloatOp::Add | FloatOp::Sub | FloatOp::Mul => format!("float operation ({})", float_symbol(*op)),
        },
        Op::IntToFloat { .. } => "int too large to convert to float exactly (over 2**53)".into(),
        Op::GuardNonNegative(_) => "for loop over something that is not a range iterator (or the array's own iterator)".into(),
        Op::GuardFunction { .. } => "inlined callee's global was rebound (inlining guard)".into(),
        Op::GuardArray { value, array, .. } if is_arg(*value) => format!("{ENTRY_GUARD}argument is not an {array}"),
        Op::GuardArray { array, writeable, .. } => {
            format!("array is no longer an {array}{} (array guard)", if *writeable { " (writeable)" } else { "" })
        }
        Op::GuardIntRange { lo, hi, .. } => format!("value outside {lo}..={hi} stored into an array"),
        Op::UfuncCall { .. } | Op::UfuncBatched { .. } => "NumPy ufunc raised a floating-point exception".into(),
        Op::GuardFpFlags => "NumPy float64 arithmetic raised a floating-point exception (NumPy warns)".into(),
        Op::GuardIs { .. } => "builtin, math or NumPy function (or NumPy type) was rebound (callable guard)".into(),
        Op::FloatToInt { .. } => "float not convertible to an int (nan, inf or too large)".into(),
        Op::MathCall2 { func, .. } => format!("math.{} domain error or overflow", format!("{func:?}").to_lowercase()),
        Op::LenOf(_) => "len() of something other than an exact list, tuple, str or dict".into(),
        Op::IsInstanceOf { .. } => "isinstance() of an object whose __class__ may not be its type".into(),
        Op::GuardCallee { .. } => "callee is not this function with these globals (direct-call guard)".into(),
        Op::GuardGlobalIs { .. } => "a global a direct call relies on was rebound (direct-call guard)".into(),
        Op::CallDirect { .. } => "direct call could not finish without the interpreter".into(),
        Op::CheckTracing => "tracing or profiling is on".into(),
        Op::ArrayIndex { key, .. } if key.is_empty() => "index out of range (the interpreter raises the IndexError)".into(),
        Op::BoolListNew { .. } => "list of bools too large to keep as bytes ([x] * n)".into(),
        Op::LoadItemUnboxed { seq, ty, .. } => format!(
            "item read is not {} of an exact {}, in range (sequence type profile guard)",
            if *ty == super::Type::F64 { "a float" } else { "an int that fits 64 bits" },
            format!("{seq:?}").to_lowercase()
        ),
        other => {
            let name = format!("{other:?}");
            let name = name.split([' ', '(', '{']).next().unwrap_or("operation").to_owned();
            format!("{name} not representable on machine values")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_guard_reasons_join_under_one_prefix() {
        let reasons = [format!("{ENTRY_GUARD}argument is not int"), format!("{ENTRY_GUARD}argument int beyond 64 bits")];
        assert_eq!(join(&reasons), "entry guard: argument is not int or argument int beyond 64 bits");
        assert_eq!(join(&["int overflow (+)".to_owned()]), "int overflow (+)");
    }
}

fn int_symbol(op: IntOp) -> &'static str {
    match op {
        IntOp::Add => "+",
        IntOp::Sub => "-",
        IntOp::Mul => "*",
        IntOp::FloorDiv => "//",
        IntOp::Mod => "%",
        IntOp::And => "&",
        IntOp::Or => "|",
        IntOp::Xor => "^",
        IntOp::Lshift => "<<",
        IntOp::Rshift => ">>",
    }
}

fn float_symbol(op: FloatOp) -> &'static str {
    match op {
        FloatOp::Add => "+",
        FloatOp::Sub => "-",
        FloatOp::Mul => "*",
        FloatOp::Div => "/",
        FloatOp::FloorDiv => "//",
        FloatOp::Mod => "%",
        FloatOp::Pow => "**",
    }
}
