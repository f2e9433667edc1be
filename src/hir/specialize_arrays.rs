//! NumPy arrays in the specialiser: where an array's type, data pointer, shape and strides,
//! checked once, still hold (no Python code can have run since), and which index tuples and
//! `a.shape` objects need never exist.
//!
//! A *view* of an array is its `GuardArray` followed by loads of its data pointer, shape and
//! strides, all SSA values. Element accesses index those values. A view is made:
//! - at the function's entry (after the argument guards), for accesses that no path from the
//!   entry to them passes anything that may run Python code (a *kill*: a call, a generic
//!   operation, a destructor);
//! - on the edge entering a `for ... in range(...)` loop whose body kills nothing, for the
//!   accesses in that body (verified once per loop entry, the frame as the loop header's
//!   deopt state seen through that edge).
//!
//! Elsewhere accesses run through the C API. The eval breaker may run other threads or
//! signal handlers, which may reshape an array: a function with views leaves for the
//! interpreter once its eval breaker has run (`CheckEvalBreaker::leave`).

use crate::hashing::{HashMap, HashSet};

use super::{numeric_bound, BlockId, Instr, Kinds, Op, Specializer, ValueId, INT};
use crate::numpy::DType;

/// Where a view is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Scope {
    Entry,
    /// On entering the range loop with this header block.
    Loop(usize),
}

/// An array's verified type and the machine values of its layout.
#[derive(Debug, Clone)]
pub(super) struct View {
    pub data: ValueId,
    pub dims: Vec<ValueId>,
    pub strides: Vec<ValueId>,
}

/// Where views hold, decided before the rewrite.
#[derive(Debug, Default)]
pub(super) struct ArrayPlan {
    /// The scope of views in each block (None: accesses there are generic).
    pub scope: Vec<Option<Scope>>,
    /// Instructions (block, index) before which nothing has run Python since their block's
    /// scope was verified.
    pub available: HashSet<(usize, usize)>,
    /// Arrays verified on entering each loop (by header).
    pub loop_arrays: HashMap<usize, Vec<ValueId>>,
    /// Arrays stored into natively somewhere (their guards check they are writeable).
    pub writeable: HashSet<ValueId>,
    /// Element loads that stay generic (no view where they are).
    pub generic_loads: HashSet<ValueId>,
    /// Index tuples and `a.shape` objects only native accesses read: never built.
    pub virtual_values: HashSet<ValueId>,
    /// Element stores done natively (block, index).
    pub native_stores: HashSet<(usize, usize)>,
    /// Per loop (by header): indices of native accesses in its body that do not change in
    /// the loop, as (array, axis, index); each at the outermost loop that does not change it.
    /// Each is checked and scaled once, on entering the loop (out of bounds there: the
    /// interpreter runs the loop, and raises if the body reaches the access).
    pub loop_invariant_indices: HashMap<usize, Vec<(ValueId, usize, ValueId)>>,
    /// Per `for i in range(n)` loop (by header): the (array, axis) its body indexes with `i`.
    /// On entering the loop, `n <= a.shape[axis]` is checked once (if not: the interpreter runs
    /// the loop, as above); then `i` needs no check.
    pub range_bounded: HashMap<usize, Vec<(ValueId, usize)>>,
    /// Per block: the headers of the loops with views around it, outermost first.
    pub enclosing: Vec<Vec<usize>>,
    /// Calls of the global `range` checked to call the builtin (`checked_range_call`).
    pub checked_range_calls: HashSet<ValueId>,
    /// Arrays the function makes (`Facts::array_results`) used where they are not verified:
    /// their type is checked only on entering a loop that indexes them, so every use that
    /// counts on it must be in such a loop, after they are made. Those found elsewhere stay
    /// objects (the specialiser plans again without them).
    pub demoted: HashSet<ValueId>,
}

impl ArrayPlan {
    pub fn is_available(&self, block: usize, index: usize) -> bool {
        self.available.contains(&(block, index))
    }
}

/// An element access: `array[i, j]` (or `array[i][j]`, `chained`).
pub(super) struct Access {
    pub array: ValueId,
    pub indices: Vec<ValueId>,
    pub chained: bool,
}

/// The element access `obj[key]` makes, if it indexes every dimension of a known array
/// with machine ints (`obj` the array, or a sub-array of it: `kinds.rows`).
pub(super) fn access(kinds: &Kinds, obj: ValueId, key: ValueId) -> Option<Access> {
    let (array, mut indices, chained) = match kinds.rows.get(&obj) {
        Some((a, indices, _)) if !kinds.tuples.contains_key(&key) => (*a, indices.clone(), true),
        Some(_) => return None,
        None => (obj, Vec::new(), false),
    };
    let ty = kinds.arrays.get(&array)?;
    indices.extend(kinds.tuples.get(&key).cloned().unwrap_or_else(|| vec![key]));
    let ints = indices.iter().all(|i| numeric_bound(kinds.kind[i.index()]) == Some(INT));
    (ints && indices.len() == usize::from(ty.ndim)).then_some(Access { array, indices, chained })
}

/// What array loops make harmless (they must run no Python code to keep the array's length in
/// a register): their items (NumPy scalars) and the loop variables' previous values, their
/// iterators, and, in their bodies, the iterators of range loops and `range(n)` calls
/// checked to call the builtin (with their range objects). Elsewhere those stay as they were
/// (a loop's views are made on entering it, after the calls before it).
#[derive(Debug, Default)]
pub(super) struct InArrayLoops {
    /// Values whose release runs no Python code.
    pub released: HashSet<ValueId>,
    /// Calls of `range` that are C code.
    pub range_calls: HashSet<ValueId>,
}

/// Whether `obj` is an array or a sub-array of one (indexing it is NumPy's C code).
fn indexable(kinds: &Kinds, obj: ValueId) -> bool {
    kinds.arrays.contains_key(&obj) || kinds.rows.contains_key(&obj)
}

/// Whether a store of a value of numeric base kind `base` into an array of `dtype` is done
/// natively, and whether it then needs a deopt guard (a range check or a conversion that
/// may fail).
pub(super) fn store_conversion(base: u8, dtype: DType) -> Option<bool> {
    use super::{BOOL, FLOAT};
    match (dtype, base) {
        (DType::F64, _) => Some(false),
        (DType::F32, BOOL) => Some(false),
        (DType::F32, INT) => Some(true),
        (DType::F32, _) => None,
        (DType::Bool, BOOL) => Some(false),
        (DType::Bool, _) => None,
        (DType::I64, BOOL | INT) => Some(false),
        (_, BOOL) => Some(false),
        (_, INT) => Some(true),
        (_, FLOAT) => Some(true),
        _ => None,
    }
}

impl Specializer<'_> {
    /// Whether generic instruction `instr` may run Python code once rewritten (code that may
    /// reshape an array, or release the GIL to a thread that does).
    /// `in_array_loops`: what array loops make harmless (see `InArrayLoops`).
    pub(super) fn may_run_python(
        &self,
        instr: &Instr,
        defs: &HashMap<ValueId, &Op>,
        intrinsic_callables: &HashSet<ValueId>,
        in_array_loops: &InArrayLoops,
    ) -> bool {
        let kinds = &self.kinds;
        let numeric = |v: &ValueId| numeric_bound(kinds.kind[v.index()]).is_some();
        let harmless_object = |v: &ValueId| {
            super::numeric(kinds.kind[v.index()]).is_some()
                // What folded dtype comparisons compare (a dtype, a str or int attribute of
                // one, a NumPy type or dtype the numpy module holds).
                || self.facts.dtype.sources.contains(v)
                || in_array_loops.released.contains(v)
                || kinds.kind[v.index()] == super::NULL
                || (kinds.arrays.contains_key(v) && self.args.contains(v))
                || kinds.rows.get(v).is_some_and(|(a, _, _)| self.args.contains(a))
                || kinds.shapes.contains_key(v)
                || intrinsic_callables.contains(v)
                || kinds.tuples.get(v).is_some_and(|items| items.iter().all(numeric))
                || matches!(defs.get(v), Some(Op::LoadGlobal { .. } | Op::Const { .. } | Op::LoadArg { .. }))
        };
        match &instr.op {
            op if op.runs_no_code() => false,
            // A tuple of the index's items (`a[i, j]`).
            Op::BuildTuple(_) => false,
            // Releasing a number, an array argument or a global cannot run a destructor.
            Op::Decref(v) | Op::XDecref(v) => !harmless_object(v) && !self.native_range_object(*v),
            Op::Binary { .. } | Op::Compare { .. } | Op::Unary { .. } | Op::Not(_) => {
                !instr.result.is_some_and(|r| numeric(&r))
            }
            Op::IsTrue(v) => !numeric(v),
            // Indexing an exact ndarray with ints (or storing a number) is NumPy's C code,
            // natively or not; so are its attributes.
            Op::GetItem { obj, key } => {
                let int_key = kinds.tuples.get(key).map_or(numeric(key), |items| items.iter().all(numeric));
                !(indexable(kinds, *obj) && int_key) && !kinds.shapes.contains_key(obj)
            }
            Op::SetItem { obj, key, value } => !(access(kinds, *obj, *key).is_some() && numeric(value)),
            Op::LoadAttr { obj, .. } => {
                !kinds.arrays.contains_key(obj)
                    && !instr.result.is_some_and(|r| intrinsic_callables.contains(&r) || self.facts.dtype.sources.contains(&r))
            }
            // (A native range guards `range` and leaves for the interpreter if it is not.)
            Op::Call { args, .. } if self.native_range_applies(instr.result, args) => false,
            Op::Call { .. } => {
                !instr.result.is_some_and(|r| {
                    in_array_loops.range_calls.contains(&r)
                        || (numeric(&r) && self.facts.intrinsics.contains_key(&r))
                        || (instr.deopt.is_some() && self.facts.dtype.calls.contains_key(&r))
                })
            }
            Op::GetIter(v) => {
                !matches!(defs.get(v), Some(Op::Call { callable, .. }) if self.kinds.range_globals.contains(callable))
                    && !self.range_loops.values().any(|l| l.array.is_some() && Some(l.it) == instr.result)
            }
            Op::IterNext(_) => !instr.result.is_some_and(|r| self.range_loops.contains_key(&r)),
            _ => true,
        }
    }

    /// What array loops (`for x in a`) make harmless, so that their bodies can keep views: see
    /// `InArrayLoops`. `regions`: the blocks of each loop's body, by header.
    fn in_array_loops(&self, defs: &HashMap<ValueId, &Op>, regions: &HashMap<usize, HashSet<usize>>) -> InArrayLoops {
        let func = self.func;
        let mut found = InArrayLoops::default();
        let array_blocks: HashSet<usize> = self
            .range_loops
            .values()
            .filter(|l| l.array.is_some())
            .flat_map(|l| regions[&l.header].iter().copied())
            .collect();
        if array_blocks.is_empty() {
            return found;
        }
        for l in self.range_loops.values() {
            if l.array.is_some() || array_blocks.contains(&l.header) {
                found.released.insert(l.it);
            }
        }
        for (b, block) in func.blocks.iter().enumerate() {
            for instr in &block.instrs {
                match (&instr.op, instr.result) {
                    (Op::Call { .. }, Some(r)) if array_blocks.contains(&b) && self.checked_range_call(r, defs) => {
                        found.range_calls.insert(r);
                        found.released.insert(r);
                    }
                    (Op::NonNull(v), Some(r)) if self.range_loops.get(v).is_some_and(|l| l.array.is_some()) => {
                        found.released.insert(r);
                    }
                    _ => {}
                }
            }
        }
        // The loop variables' previous values: parameters fed only by items (or NULL).
        let items = found.released.clone();
        // Parameters, optimistically, then those fed anything else are dropped.
        let mut incoming: HashMap<ValueId, Vec<ValueId>> = HashMap::default();
        for block in &func.blocks {
            for edge in block.terminator.edges() {
                for (p, a) in func.block(edge.target).params.iter().zip(&edge.args) {
                    incoming.entry(*p).or_default().push(*a);
                }
            }
        }
        let mut params: HashSet<ValueId> = incoming.keys().copied().collect();
        loop {
            let kept: HashSet<ValueId> = params
                .iter()
                .copied()
                .filter(|p| {
                    incoming[p].iter().all(|a| items.contains(a) || params.contains(a) || func.type_of(*a) == super::Type::Null)
                })
                .collect();
            if kept.len() == params.len() {
                break;
            }
            params = kept;
        }
        found.released.extend(params);
        found
    }

    /// Whether call `r` is `range(...)` of machine ints (the global `range`, checked to be the
    /// builtin before the call: then it is C code and makes a range object).
    pub(super) fn checked_range_call(&self, r: ValueId, defs: &HashMap<ValueId, &Op>) -> bool {
        let Some(Op::Call { method, callable, args, kwnames: None }) = defs.get(&r) else { return false };
        self.kinds.range_globals.contains(callable)
            && matches!(defs.get(method), Some(Op::Null))
            && (1..=3).contains(&args.len())
            && args.iter().all(|a| numeric_bound(self.kinds.kind[a.index()]) == Some(INT))
            && self.kinds.range_calls.contains(&r)
    }

    /// Decides where array views hold (see the module comment).
    pub(super) fn plan_arrays(&self) -> ArrayPlan {
        let func = self.func;
        let kinds = &self.kinds;
        let mut plan = ArrayPlan { scope: vec![None; func.blocks.len()], ..ArrayPlan::default() };
        if kinds.arrays.is_empty() {
            return plan;
        }
        let defs = func.defining_ops();
        let mut intrinsic_callables = HashSet::default();
        for instr in func.blocks.iter().flat_map(|b| &b.instrs) {
            if let (Op::Call { callable, .. }, Some(r)) = (&instr.op, instr.result) {
                if self.facts.intrinsics.contains_key(&r) {
                    intrinsic_callables.insert(*callable);
                }
            }
        }
        let n = func.blocks.len();
        let computed;
        let dominators = match &self.dominators {
            Some(d) => d,
            None => {
                computed = super::super::dominators::Dominators::of(func);
                &computed
            }
        };
        // Each loop's body: the blocks its body block dominates.
        let regions: HashMap<usize, HashSet<usize>> = self
            .range_loops
            .values()
            .map(|l| (l.header, (0..n).filter(|&b| dominators.dominates(BlockId(l.body as u32), BlockId(b as u32))).collect()))
            .collect();
        let in_array_loops = self.in_array_loops(&defs, &regions);
        plan.checked_range_calls = in_array_loops.range_calls.clone();
        let kills: Vec<Vec<bool>> = func
            .blocks
            .iter()
            .map(|b| {
                let balanced = balanced_decrefs(&b.instrs);
                b.instrs
                    .iter()
                    .enumerate()
                    .map(|(i, instr)| !balanced.contains(&i) && self.may_run_python(instr, &defs, &intrinsic_callables, &in_array_loops))
                    .collect()
            })
            .collect();
        let block_kills: Vec<bool> = kills.iter().map(|k| k.iter().any(|x| *x)).collect();
        let mut preds: Vec<Vec<usize>> = vec![Vec::new(); n];
        for (b, block) in func.blocks.iter().enumerate() {
            for edge in block.terminator.edges() {
                preds[edge.target.index()].push(b);
            }
        }
        // Blocks no path from the entry to which kills (a must-analysis, optimistic start).
        let mut valid_in = vec![true; n];
        loop {
            let mut changed = false;
            for b in 1..n {
                let v = preds[b].iter().all(|&p| valid_in[p] && !block_kills[p]);
                if v != valid_in[b] {
                    valid_in[b] = v;
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
        // Range loops whose body kills nothing, entered by one edge.
        let mut loops: Vec<(usize, HashSet<usize>)> = Vec::new();
        let mut array_loops: HashSet<usize> = HashSet::default();
        for (next, l) in &self.range_loops {
            let region = regions[&l.header].clone();
            let entering = preds[l.header].iter().filter(|p| !region.contains(p)).count();
            if l.deopt.is_some() && entering == 1 && !block_kills[l.header] && region.iter().all(|&b| !block_kills[b]) {
                loops.push((l.header, region));
                // A loop over an array reads it (its length, its elements) with a view made
                // on entering the loop.
                if let Some((a, _)) = l.array {
                    plan.loop_arrays.entry(l.header).or_default().push(a);
                    array_loops.insert(l.header);
                }
            } else if l.array.is_some() {
                // Python code may run in the loop: the interpreter's iterator runs it.
                plan.generic_loads.insert(*next);
            }
        }
        for b in 0..n {
            let in_loop = loops.iter().filter(|(_, region)| region.contains(&b)).max_by_key(|(_, region)| region.len());
            // In an array loop, the loop's views (made after whatever it follows: no view
            // made at the entry has to live across the calls before the loop).
            let in_array_loop = loops.iter().any(|(h, region)| region.contains(&b) && array_loops.contains(h));
            plan.scope[b] = if valid_in[b] && !in_array_loop { Some(Scope::Entry) } else { in_loop.map(|(h, _)| Scope::Loop(*h)) };
        }
        let mut uses: HashMap<ValueId, usize> = HashMap::default();
        for instr in func.blocks.iter().flat_map(|b| &b.instrs) {
            if !matches!(instr.op, Op::Incref(_) | Op::Decref(_) | Op::XDecref(_)) {
                for v in instr.op.operands() {
                    *uses.entry(v).or_default() += 1;
                }
            }
        }
        for block in &func.blocks {
            for v in block.terminator.operands().into_iter().chain(block.terminator.edges().iter().flat_map(|e| e.args.clone())) {
                *uses.entry(v).or_default() += 2; // never virtual
            }
        }
        let mut shape_reads: HashMap<ValueId, (usize, usize)> = HashMap::default(); // shape -> native reads, all reads
        // The block defining each value (parameters: their block).
        let mut def_block: HashMap<ValueId, usize> = HashMap::default();
        for (b, block) in func.blocks.iter().enumerate() {
            def_block.extend(block.params.iter().map(|p| (*p, b)));
            def_block.extend(block.instrs.iter().filter_map(|i| Some((i.result?, b))));
        }
        let regions: HashMap<usize, &HashSet<usize>> = loops.iter().map(|(h, r)| (*h, r)).collect();
        let mut by_size: Vec<&(usize, HashSet<usize>)> = loops.iter().collect();
        by_size.sort_by_key(|(h, region)| (std::cmp::Reverse(region.len()), *h));
        plan.enclosing = (0..n).map(|b| by_size.iter().filter(|(_, r)| r.contains(&b)).map(|(h, _)| *h).collect()).collect();
        // Checks of an access's indices done once on entering a loop around it (see
        // `loop_invariant_indices` and `range_bounded`).
        let hoist = |plan: &mut ArrayPlan, b: usize, array: ValueId, indices: &[ValueId]| {
            if plan.scope[b].is_none() {
                return;
            }
            for (axis, &v) in indices.iter().enumerate() {
                let defined_in = def_block.get(&v).copied();
                // (An int constant, `a[i, 0]`, is the same in every loop: made where checked.)
                let constant = matches!(defs.get(&v), Some(Op::Const { index }) if matches!(self.facts.consts.get(*index as usize), Some(crate::hir::specialize::ConstValue::Int(_))));
                let outside = |h: &usize| constant || defined_in.is_some_and(|d| d != *h && !regions[h].contains(&d));
                if let Some(&h) = plan.enclosing[b].iter().find(|h| outside(h)) {
                    let hoisted = plan.loop_invariant_indices.entry(h).or_default();
                    if !hoisted.contains(&(array, axis, v)) {
                        hoisted.push((array, axis, v));
                    }
                    continue;
                }
                let Some(Op::NonNull(next)) = defs.get(&v) else { continue };
                let Some(l) = self.range_loops.get(next).filter(|l| l.array.is_none() && plan.enclosing[b].contains(&l.header)) else {
                    continue;
                };
                let bounded = plan.range_bounded.entry(l.header).or_default();
                if !bounded.contains(&(array, axis)) {
                    bounded.push((array, axis));
                }
            }
        };
        for (b, block) in func.blocks.iter().enumerate() {
            let mut killed = false;
            for (i, instr) in block.instrs.iter().enumerate() {
                let available = plan.scope[b].is_some() && !killed;
                if available {
                    plan.available.insert((b, i));
                }
                let touch = |plan: &mut ArrayPlan, a: ValueId| {
                    if let (true, Some(Scope::Loop(h))) = (available, plan.scope[b]) {
                        let arrays = plan.loop_arrays.entry(h).or_default();
                        if !arrays.contains(&a) {
                            arrays.push(a);
                        }
                    }
                };
                match (&instr.op, instr.result) {
                    // A sub-array on the way to an element (`a[i]` of `a[i][j]`): decided
                    // with the element access.
                    (Op::GetItem { .. }, Some(r)) if kinds.rows.contains_key(&r) => {}
                    (Op::GetItem { obj, key }, Some(r)) if indexable(kinds, *obj) => match access(kinds, *obj, *key) {
                        Some(a) if available => {
                            touch(&mut plan, a.array);
                            hoist(&mut plan, b, a.array, &a.indices);
                            if kinds.tuples.contains_key(key) && uses.get(key) == Some(&1) {
                                plan.virtual_values.insert(*key);
                            }
                            virtual_rows(&mut plan, kinds, *obj, &uses);
                        }
                        _ => {
                            plan.generic_loads.insert(r);
                        }
                    },
                    (Op::SetItem { obj, key, value }, _) if indexable(kinds, *obj) => {
                        let a = access(kinds, *obj, *key);
                        let dtype = a.as_ref().map(|a| kinds.arrays[&a.array].dtype);
                        let conversion = numeric_bound(kinds.kind[value.index()])
                            .zip(dtype)
                            .and_then(|(base, dtype)| store_conversion(base, dtype));
                        let needs_state = kinds.tuples.contains_key(key) || kinds.rows.contains_key(obj);
                        let native = available
                            && a.is_some()
                            && conversion.is_some_and(|needs_guard| !(needs_guard && (needs_state || instr.deopt.is_none())));
                        if let (true, Some(a)) = (native, a) {
                            touch(&mut plan, a.array);
                            hoist(&mut plan, b, a.array, &a.indices);
                            virtual_rows(&mut plan, kinds, *obj, &uses);
                            let is_tuple = kinds.tuples.contains_key(key);
                            plan.native_stores.insert((b, i));
                            plan.writeable.insert(a.array);
                            if is_tuple && uses.get(key) == Some(&1) {
                                plan.virtual_values.insert(*key);
                            }
                        }
                    }
                    (Op::GetItem { obj, .. }, Some(r)) if kinds.shapes.contains_key(obj) => {
                        let counts = shape_reads.entry(*obj).or_default();
                        counts.1 += 1;
                        if available && numeric_bound(kinds.kind[r.index()]) == Some(INT) {
                            counts.0 += 1;
                            touch(&mut plan, kinds.shapes[obj]);
                        }
                    }
                    (Op::LoadAttr { obj, .. }, _) if kinds.arrays.contains_key(obj) && available => touch(&mut plan, *obj),
                    (Op::Compare { .. }, Some(r)) if available && instr.deopt.is_some() => {
                        for a in self.facts.dtype.folds.get(&r).map(|f| f.arrays.clone()).unwrap_or_default() {
                            touch(&mut plan, a);
                        }
                    }
                    (Op::Call { args, .. }, Some(r)) if available && self.facts.intrinsics.contains_key(&r) => {
                        for a in args.iter().filter(|a| kinds.arrays.contains_key(a)) {
                            touch(&mut plan, *a);
                        }
                    }
                    _ => {}
                }
                killed |= kills[b][i];
            }
        }
        self.demote_unverified(&mut plan, &def_block, &regions);
        for (shape, (native, all)) in shape_reads {
            if native == all && uses.get(&shape) == Some(&all) {
                plan.virtual_values.insert(shape);
            }
        }
        plan
    }
}

impl Specializer<'_> {
    /// The array the function makes (not an argument) that `v` is, or is a sub-array or the
    /// shape of.
    fn made_array(&self, v: ValueId) -> Option<ValueId> {
        let kinds = &self.kinds;
        let array = match (kinds.rows.get(&v), kinds.shapes.get(&v)) {
            (Some((a, _, _)), _) => *a,
            (None, Some(a)) => *a,
            (None, None) => v,
        };
        (kinds.arrays.contains_key(&array) && !self.args.contains(&array)).then_some(array)
    }

    /// Fills `plan.demoted` (see `ArrayPlan::demoted`): arrays the function makes read,
    /// indexed or measured where no loop's view of them holds. `def_block`: the block
    /// defining each value; `regions`: the blocks of each loop with views, by header.
    fn demote_unverified(&self, plan: &mut ArrayPlan, def_block: &HashMap<ValueId, usize>, regions: &HashMap<usize, &HashSet<usize>>) {
        for (b, block) in self.func.blocks.iter().enumerate() {
            for (i, instr) in block.instrs.iter().enumerate() {
                let typed: Vec<ValueId> = match &instr.op {
                    Op::GetItem { obj, .. } | Op::SetItem { obj, .. } | Op::LoadAttr { obj, .. } => vec![*obj],
                    Op::Call { args, .. } if instr.result.is_some_and(|r| self.facts.intrinsics.contains_key(&r)) => args.clone(),
                    _ => continue,
                };
                for array in typed.into_iter().filter_map(|v| self.made_array(v)) {
                    let verified = plan.is_available(b, i)
                        && match plan.scope[b] {
                            Some(Scope::Loop(h)) => def_block.get(&array).is_some_and(|d| *d != h && !regions[&h].contains(d)),
                            _ => false,
                        };
                    if !verified {
                        plan.demoted.insert(array);
                    }
                }
            }
        }
    }
}

/// The releases in `instrs` (by index) of a reference taken earlier in the same block, with no
/// other release of that value between: they leave its count as it was before the `Incref`,
/// so they cannot free it (the operand of an operation that borrows it, as `c[i] = x` does
/// with `c`).
fn balanced_decrefs(instrs: &[Instr]) -> HashSet<usize> {
    let mut taken: HashMap<ValueId, usize> = HashMap::default();
    let mut balanced = HashSet::default();
    for (i, instr) in instrs.iter().enumerate() {
        match instr.op {
            Op::Incref(v) => *taken.entry(v).or_default() += 1,
            Op::Decref(v) | Op::XDecref(v) => match taken.get_mut(&v) {
                Some(n) if *n > 0 => {
                    *n -= 1;
                    balanced.insert(i);
                }
                _ => {
                    taken.remove(&v);
                }
            },
            _ => {}
        }
    }
    balanced
}

/// The sub-arrays an element access goes through (`a[i]` of `a[i][j]`) that nothing else
/// uses: never made.
fn virtual_rows(plan: &mut ArrayPlan, kinds: &Kinds, obj: ValueId, uses: &HashMap<ValueId, usize>) {
    let mut v = obj;
    while let Some((_, _, parent)) = kinds.rows.get(&v) {
        if uses.get(&v) != Some(&1) {
            break;
        }
        plan.virtual_values.insert(v);
        v = *parent;
    }
}
