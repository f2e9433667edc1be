//! The HIR printer: deterministic text, the same in tests, dumps (`rjit.dis`) and reviews.
//!
//! ```text
//! fn f (locals 3)
//! bb0:
//!   v0 = LoadArg 0
//!   v3 = Binary + v0, v1  -> exit0
//!   Return v3
//! exit0: raise @4 locals [v0, v1, v2] stack [] release [v0, v1]
//! ```
//! Offsets (`@4`) are bytecode byte offsets, as `dis` prints them.

use std::fmt::{self, Write};

use super::{Block, BlockId, Edge, Exit, ExitKind, Function, Instr, Op, Terminator, Type, UnaryOp};

impl fmt::Display for Function {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "fn {} (locals {})", self.name, self.nlocalsplus)?;
        for id in self.block_ids() {
            write_block(f, self, id, self.block(id))?;
        }
        for (i, exit) in self.exits.iter().enumerate() {
            writeln!(f, "exit{i}: {}", ExitText(exit))?;
        }
        Ok(())
    }
}

fn write_block(f: &mut fmt::Formatter<'_>, func: &Function, id: BlockId, block: &Block) -> fmt::Result {
    write!(f, "{id}")?;
    if !block.params.is_empty() {
        write!(f, "(")?;
        for (i, p) in block.params.iter().enumerate() {
            if i > 0 {
                write!(f, ", ")?;
            }
            write!(f, "{p}")?;
            if func.type_of(*p) != Type::Object {
                write!(f, ":{:?}", func.type_of(*p))?;
            }
        }
        write!(f, ")")?;
    }
    writeln!(f, ":  # @{}", block.offset * 2)?;
    for instr in &block.instrs {
        writeln!(f, "  {}", InstrText(instr))?;
    }
    writeln!(f, "  {}", TerminatorText(&block.terminator))
}

/// Writes `items` as `a, b, c`.
fn list<T: fmt::Display>(items: &[T]) -> String {
    let mut out = String::new();
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        let _ = write!(out, "{item}");
    }
    out
}

struct InstrText<'a>(&'a Instr);

impl fmt::Display for InstrText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let instr = self.0;
        if let Some(result) = instr.result {
            write!(f, "{result} = ")?;
        }
        write!(f, "{}", OpText(&instr.op))?;
        if let Some(exit) = instr.exit {
            write!(f, "  -> {exit}")?;
        }
        if let Some(exit) = instr.deopt {
            write!(f, "  deopt {exit}")?;
        }
        Ok(())
    }
}

struct OpText<'a>(&'a Op);

impl fmt::Display for OpText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use Op::*;
        match self.0 {
            LoadArg { local } => write!(f, "LoadArg {local}"),
            Const { index } => write!(f, "Const {index}"),
            Null => write!(f, "Null"),
            Incref(v) => write!(f, "Incref {v}"),
            Decref(v) => write!(f, "Decref {v}"),
            XDecref(v) => write!(f, "XDecref {v}"),
            CheckBound { value, local } => write!(f, "CheckBound {value} (local {local})"),
            StoreLocal { local, value } => write!(f, "StoreLocal {local}, {value}"),
            LoadGlobal { name } => write!(f, "LoadGlobal name{name}"),
            PeekGlobal { name } => write!(f, "PeekGlobal name{name}"),
            GuardGlobalIs { name, .. } => write!(f, "GuardGlobalIs name{name} is the known object"),
            PeekAttr { obj, name } => write!(f, "PeekAttr {obj}, name{name}"),
            ConstObject { .. } => write!(f, "ConstObject (a known object)"),
            LoadAttr { obj, name } => write!(f, "LoadAttr {obj}, name{name}"),
            StoreAttr { obj, name, value } => write!(f, "StoreAttr {obj}, name{name}, {value}"),
            Binary { op, lhs, rhs } => write!(f, "Binary {} {lhs}, {rhs}", op.symbol()),
            Unary { op, value } => {
                let name = match op {
                    UnaryOp::Positive => "+",
                    UnaryOp::Negative => "-",
                    UnaryOp::Invert => "~",
                };
                write!(f, "Unary {name} {value}")
            }
            Not(v) => write!(f, "Not {v}"),
            Compare { op, lhs, rhs } => write!(f, "Compare {} {lhs}, {rhs}", op.symbol()),
            Is { lhs, rhs, negate } => write!(f, "{} {lhs}, {rhs}", if *negate { "IsNot" } else { "Is" }),
            Contains { item, container, negate } => {
                write!(f, "{} {item}, {container}", if *negate { "NotIn" } else { "In" })
            }
            IsTrue(v) => write!(f, "IsTrue {v}"),
            IsTrueBorrowed(v) => write!(f, "IsTrue {v} (borrowed)"),
            IsNone(v) => write!(f, "IsNone {v}"),
            IsNull(v) => write!(f, "IsNull {v}"),
            NonNull(v) => write!(f, "NonNull {v}"),
            GetItem { obj, key } => write!(f, "GetItem {obj}[{key}]"),
            SetItem { obj, key, value } => write!(f, "SetItem {obj}[{key}] = {value}"),
            DelItem { obj, key } => write!(f, "DelItem {obj}[{key}]"),
            BuildTuple(items) => write!(f, "BuildTuple ({})", list(items)),
            BuildList(items) => write!(f, "BuildList [{}]", list(items)),
            ListAppend { list, value } => write!(f, "ListAppend {list}, {value}"),
            BuildSlice { start, stop, step } => write!(f, "BuildSlice {start}:{stop}:{step}"),
            LoadClosure { index } => write!(f, "LoadClosure {index}"),
            MakeCell(v) => write!(f, "MakeCell {v}"),
            CellGet { cell, slot } => write!(f, "CellGet {cell} (local {slot})"),
            CellSet { cell, value } => write!(f, "CellSet {cell}, {value}"),
            MakeFunction { code, closure, annotations, kwdefaults, defaults } => write!(
                f,
                "MakeFunction {code} closure={closure} annotations={annotations} kwdefaults={kwdefaults} defaults={defaults}"
            ),
            FormatValue { value, conversion, spec } => write!(f, "FormatValue {value} conv={conversion} spec={spec}"),
            BuildString(items) => write!(f, "BuildString ({})", list(items)),
            BuildMap(items) => write!(f, "BuildMap ({})", list(items)),
            BuildConstKeyMap { keys, values } => write!(f, "BuildConstKeyMap {keys} ({})", list(values)),
            MapAdd { dict, key, value } => write!(f, "MapAdd {dict}[{key}] = {value}"),
            BuildSet(items) => write!(f, "BuildSet ({})", list(items)),
            SetAdd { set, value } => write!(f, "SetAdd {set}, {value}"),
            ListExtend { list, iterable } => write!(f, "ListExtend {list}, {iterable}"),
            DictUpdate { dict, update } => write!(f, "DictUpdate {dict}, {update}"),
            DictMerge { dict, update, func } => write!(f, "DictMerge {dict}, {update} (for {func})"),
            ListToTuple(v) => write!(f, "ListToTuple {v}"),
            CallEx { callable, args, kwargs } => write!(f, "CallEx {callable}(*{args}, **{kwargs})"),
            BeforeWith(v) => write!(f, "BeforeWith {v}"),
            UnpackSequence { value, count } => write!(f, "UnpackSequence {value}, {count}"),
            UnpackEx { value, before, after } => write!(f, "UnpackEx {value}, {before}, {after}"),
            TupleItem { tuple, index } => write!(f, "TupleItem {tuple}[{index}]"),
            GetIter(v) => write!(f, "GetIter {v}"),
            IterNext(v) => write!(f, "IterNext {v}"),
            DelAttr { obj, name } => write!(f, "DelAttr {obj}, name{name}"),
            StoreGlobal { name, value } => write!(f, "StoreGlobal name{name}, {value}"),
            SetUpdate { set, iterable } => write!(f, "SetUpdate {set}, {iterable}"),
            CallCFunction { callable, args } => write!(f, "CallCFunction {callable}({})", list(args)),
            UnboxFloatOwned(v) => write!(f, "UnboxFloatOwned {v}"),
            Call { method, callable, args, kwnames } => {
                write!(f, "Call {method} {callable}({})", list(args))?;
                if let Some(k) = kwnames {
                    write!(f, " kwnames=const{k}")?;
                }
                Ok(())
            }
            CheckEvalBreaker { resume, leave } => {
                write!(f, "CheckEvalBreaker (else {resume}){}", if *leave { " (leave after)" } else { "" })
            }
            CheckTracing => write!(f, "CheckTracing"),
            ConstI64 { value, .. } => write!(f, "ConstI64 {value}"),
            ConstF64 { bits, .. } => write!(f, "ConstF64 {:?}", f64::from_bits(*bits)),
            ConstBool(b) => write!(f, "ConstBool {b}"),
            GuardType { value, class } => write!(f, "GuardType {value} is {class:?}"),
            Unbox { value, to } => write!(f, "Unbox {value} as {to:?}"),
            Box(v) => write!(f, "Box {v}"),
            BoxIfBound { value, local } => write!(f, "BoxIfBound {value} (if local {local} bound)"),
            IntBinary { op, lhs, rhs } => write!(f, "Int{op:?} {lhs}, {rhs}"),
            FloatBinary { op, lhs, rhs } => write!(f, "Float{op:?} {lhs}, {rhs}"),
            FloatNeg(v) => write!(f, "FloatNeg {v}"),
            MathCall { func, value } => write!(f, "Math{func:?} {value}"),
            FloatToInt { rounding, value } => write!(f, "FloatToInt {rounding:?} {value}"),
            IntAbs(v) => write!(f, "IntAbs {v}"),
            MathCall2 { func, lhs, rhs } => write!(f, "Math{func:?} {lhs}, {rhs}"),
            LenOf(v) => write!(f, "LenOf {v}"),
            // The class's address varies between runs.
            IsInstanceOf { value, .. } => write!(f, "IsInstanceOf {value}, the builtin type"),
            Select { cond, if_true, if_false, .. } => write!(f, "Select {cond} ? {if_true} : {if_false}"),
            IntToFloat { value, exact } => write!(f, "IntToFloat{} {value}", if *exact { " exact" } else { "" }),
            IntCompare { op, lhs, rhs } => write!(f, "IntCompare {} {lhs}, {rhs}", op.symbol()),
            FloatCompare { op, lhs, rhs } => write!(f, "FloatCompare {} {lhs}, {rhs}", op.symbol()),
            BoolNot(v) => write!(f, "BoolNot {v}"),
            RangeIterIndex(v) => write!(f, "RangeIterIndex {v}"),
            RangeIterHasNext { it, index } => write!(f, "RangeIterHasNext {it} at {index}"),
            RangeIterItem { it, index } => write!(f, "RangeIterItem {it} at {index}"),
            RangeIndexNext(v) => write!(f, "RangeIndexNext {v}"),
            SeqIterIndex { it, seq } => write!(f, "SeqIterIndex {it} of {seq}"),
            GuardNonNegative(v) => write!(f, "GuardNonNegative {v}"),
            RangeLen { start, stop, step } => write!(f, "RangeLen {start}, {stop}, {step}"),
            RangeIterVirtual { start, step, len } => write!(f, "RangeIterVirtual start {start} step {step} len {len}"),
            BoolListNew { len, fill } => write!(f, "BoolListNew [{}] * {len}", if *fill { "True" } else { "False" }),
            BoolListIter { list } => write!(f, "BoolListIter {list}"),
            BoolListFree(list) => write!(f, "BoolListFree {list}"),
            // Addresses vary between runs: snapshots show only that the guard is there.
            GuardFunction { value, .. } => write!(f, "GuardFunction {value} is the inlined function"),
            GuardIs { value, .. } => write!(f, "GuardIs {value} is the known object"),
            GuardCallee { value, .. } => write!(f, "GuardCallee {value} runs this code"),
            // Another function's entry (its address changes from run to run).
            CallDirect { args, ty, target } if *target != 0 => write!(f, "CallDirect({}) -> {ty:?} (another function)", list(args)),
            CallDirect { args, ty, .. } => write!(f, "CallDirect({}) -> {ty:?}", list(args)),
            DirectArg { index, ty } => write!(f, "DirectArg {index} as {ty:?}"),
            ClearLocal { local } => write!(f, "ClearLocal {local}"),
            CheckFlag { local } => write!(f, "CheckFlag local {local}"),
            SetBound { local, bound } => write!(f, "SetBound local {local} = {bound}"),
            LoadItemUnboxed { obj, index, seq, ty } => write!(f, "LoadItemUnboxed {obj}[{index}] of {seq:?} as {ty:?}"),
            GetItemInt { obj, index, borrowed } => {
                write!(f, "GetItemInt {obj}[{index}]{}", if *borrowed { " (borrowed)" } else { "" })
            }
            SetItemInt { obj, index, value, borrowed } => {
                write!(f, "SetItemInt {obj}[{index}] = {value}{}", if *borrowed { " (borrowed)" } else { "" })
            }
            GuardArray { value, array, writeable } => {
                write!(f, "GuardArray {value} is {array}{}", if *writeable { " (writeable)" } else { "" })
            }
            LoadField { base, offset } => write!(f, "LoadField [{base} + {offset}]"),
            ArrayIndex { index, dim, array, key, chained } => {
                let key = if *chained { key.iter().map(|k| format!("[{k}]")).collect::<String>() } else { format!("[{}]", list(key)) };
                write!(f, "ArrayIndex {index} of {dim} (else IndexError of {array}{key})")
            }
            LoadElement { data, offset, dtype } => write!(f, "LoadElement {} [{data} + {offset}]", dtype.name()),
            StoreElement { data, offset, value, dtype } => write!(f, "StoreElement {} [{data} + {offset}] = {value}", dtype.name()),
            GuardIntRange { value, lo, hi } => write!(f, "GuardIntRange {lo} <= {value} <= {hi}"),
            // Addresses vary between runs.
            UfuncCall { args, .. } => write!(f, "UfuncCall float64 loop({})", list(args)),
            UfuncBatchBegin => write!(f, "UfuncBatchBegin"),
            UfuncBatched { dtype, generation, address, step, remaining, .. } => {
                write!(f, "UfuncBatched float64 loop({dtype:?} at {address}, step {step}, {remaining} left, generation {generation})")
            }
            Copy(v) => write!(f, "Copy {v}"),
            GuardFpFlags => write!(f, "GuardFpFlags"),
            ClearFpFlags => write!(f, "ClearFpFlags"),
        }
    }
}

struct EdgeText<'a>(&'a Edge);

impl fmt::Display for EdgeText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.target)?;
        if !self.0.args.is_empty() {
            write!(f, "({})", list(&self.0.args))?;
        }
        Ok(())
    }
}

struct TerminatorText<'a>(&'a Terminator);

impl fmt::Display for TerminatorText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Terminator::Jump(e) => write!(f, "Jump {}", EdgeText(e)),
            Terminator::Branch { cond, if_true, if_false } => {
                write!(f, "Branch {cond}, {}, {}", EdgeText(if_true), EdgeText(if_false))
            }
            Terminator::Return(v) => write!(f, "Return {v}"),
            Terminator::Exit(e) => write!(f, "Exit {e}"),
        }
    }
}

struct ExitText<'a>(&'a Exit);

impl fmt::Display for ExitText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let exit = self.0;
        let kind = match exit.kind {
            ExitKind::Raise => "raise",
            ExitKind::Resume => "resume",
            ExitKind::Deopt => "deopt",
        };
        write!(
            f,
            "{kind} @{} locals [{}] stack [{}]",
            exit.state.offset * 2,
            list(&exit.state.locals),
            list(&exit.state.stack)
        )?;
        if !exit.release.is_empty() {
            write!(f, " release [{}]", list(&exit.release))?;
        }
        for (it, index) in &exit.range_positions {
            write!(f, " position {it}={index}")?;
        }
        if !exit.borrowed.is_empty() {
            write!(f, " borrowed [{}]", list(&exit.borrowed))?;
        }
        Ok(())
    }
}
