//! Lists of bools kept as bytes (part of `specialize`).
//!
//! `flags = [True] * n`, then only `flags[i]` tested, `flags[i] = False`, `for f in flags`
//! and `len(flags)`: the list never leaves the function and only ever holds `True` and
//! `False`. A real list of `n` pointers costs 8 bytes an item and a reference count update
//! per store; compiled code keeps it instead as a buffer of one byte an item
//! (`Op::BoolListNew`, a machine pointer), reads and writes bytes (`LoadElement` and
//! `StoreElement` of `DType::Bool`, the index checked as a list checks it: `ArrayIndex`
//! without a key, a deopt where it is out of range, the interpreter then raising the
//! IndexError), and iterates it like a range (`Op::BoolListIter`, the position in a
//! register). A native range loop whose items index the list (`for j in range(a, b, c):
//! flags[j] = False`) checks once on entry that all its items are in range
//! (`guard_bool_list_ranges`, else the interpreter runs the loop); its accesses then take no
//! check. The list object is made only if the interpreter gets the frame: an exit makes
//! it from the buffer (`runtime::bool_lists`), once for every place of the frame holding it
//! (its local, a stack entry, a list iterator at the loop's position).
//!
//! Which lists (`find`): the result of `[c] * n` or `n * [c]` with `c` a bool constant and
//! `n` a machine int, stored into a local that nothing else is ever stored into, whose every
//! use is one of those above (with a machine int index, and a bool stored). The local then
//! holds the list from its store to the function's end, so every exit taken after the store
//! has it among its locals: the exits make the list and free the buffer, and a return frees
//! it (`BoolListFree`). Anything else (a call, a return, another variable, a method, a store
//! of something that is not a bool) keeps the list real; so does a check made after the
//! rewrite failing (`finish_bool_lists`), e.g. a call whose callee may read the frame's
//! locals, which would need the list in its slot: the function is specialised again without.

use std::cell::RefCell;
use crate::hashing::{HashMap, HashSet};

use super::{numeric_bound, ConstValue, Emit, Facts, Intrinsic, Kinds, Op, Specializer, ValueId, BOOL, INT};
use crate::hir::{BinaryOp, CompareOp, ExitId, Function, Instr, IntOp, Terminator, Type};
use crate::numpy::DType;

/// A list made by `[fill] * count`.
#[derive(Debug, Clone, Copy)]
struct Site {
    /// The local slot it is stored into.
    local: u32,
    /// The number of repetitions.
    count: ValueId,
    fill: bool,
}

/// The bool lists of a function and what the rewrite made for them.
#[derive(Debug, Default)]
pub(super) struct BoolLists<'a> {
    /// By list value (the multiplication's result).
    sites: HashMap<ValueId, Site>,
    /// `iter(list)` of a list, by iterator.
    pub iters: HashMap<ValueId, ValueId>,
    /// The `IterNext` results of those iterators (their loops become range loops), with the
    /// list.
    pub nexts: HashMap<ValueId, ValueId>,
    /// The items read (`list[i]`, a loop's item): bools.
    pub items: HashSet<ValueId>,
    /// Subscripts and stores (by position: block, instruction) on a list.
    accesses: HashSet<(usize, usize)>,
    /// `len(list)` calls, by result.
    lens: HashSet<ValueId>,
    /// The length made for each list (a machine int).
    len: HashMap<ValueId, ValueId>,
    /// Accesses indexed by the item of a native range loop (by position), with the loop's
    /// header: the loop checks on entry that all its items are indices in range (see
    /// `guard_bool_list_ranges`), so they take no check of their own.
    in_range: HashMap<(usize, usize), usize>,
    /// The headers of the loops that made that check.
    guarded_loops: HashSet<usize>,
    /// The block making each list.
    made_in: HashMap<ValueId, usize>,
    /// Lists found to need a real list (shared by the attempts to specialise a function).
    not_virtual: Option<&'a RefCell<HashSet<ValueId>>>,
}

/// The bool constant `v` is, if it is one.
fn const_bool(v: ValueId, defs: &HashMap<ValueId, &Op>, facts: &Facts) -> Option<bool> {
    match defs.get(&v) {
        Some(Op::Const { index }) => match facts.consts.get(*index as usize) {
            Some(ConstValue::Bool(b)) => Some(*b),
            _ => None,
        },
        _ => None,
    }
}

/// The candidate lists of `func`, from the shape of the code alone (`kinds_fit` then checks
/// the kinds of the indices and values), but those in `not_virtual`.
pub(super) fn find<'a>(func: &Function, facts: &Facts, not_virtual: &'a RefCell<HashSet<ValueId>>) -> BoolLists<'a> {
    let mut lists = BoolLists { not_virtual: Some(not_virtual), ..Default::default() };
    let defs = func.defining_ops();
    // Everything each value is used by: (block, instruction index) or None for a terminator.
    let mut uses: HashMap<ValueId, Vec<Option<(usize, usize)>>> = HashMap::default();
    for (b, block) in func.blocks.iter().enumerate() {
        for (i, instr) in block.instrs.iter().enumerate() {
            for v in instr.op.operands() {
                uses.entry(v).or_default().push(Some((b, i)));
            }
        }
        let edge_args = block.terminator.edges().into_iter().flat_map(|e| e.args.clone());
        for v in block.terminator.operands().into_iter().chain(edge_args) {
            uses.entry(v).or_default().push(None);
        }
    }
    let instr_at = |at: Option<(usize, usize)>| at.map(|(b, i)| &func.blocks[b].instrs[i]);
    let stores_into = |local: u32| {
        func.blocks.iter().flat_map(|b| &b.instrs).filter(|i| matches!(i.op, Op::StoreLocal { local: l, .. } if l == local)).count()
    };
    let in_exits: HashSet<ValueId> =
        func.exits.iter().flat_map(|x| x.state.locals.iter().chain(&x.state.stack).chain(&x.release)).copied().collect();
    for (b, block) in func.blocks.iter().enumerate() {
        for (i, instr) in block.instrs.iter().enumerate() {
            let (Op::Binary { op: BinaryOp::Multiply, lhs, rhs }, Some(r), Some(_)) = (&instr.op, instr.result, instr.deopt) else {
                continue;
            };
            if not_virtual.borrow().contains(&r) {
                continue;
            }
            // `[c]`, used by nothing else (no one can change it before it is repeated).
            let single = |v: ValueId| match defs.get(&v) {
                Some(Op::BuildList(items)) if items.len() == 1 => {
                    let only_here = uses.get(&v).into_iter().flatten().all(|u| match instr_at(*u).map(|i| &i.op) {
                        Some(Op::Incref(_) | Op::Decref(_)) => true,
                        Some(Op::Binary { .. }) => instr_at(*u).and_then(|i| i.result) == Some(r),
                        _ => false,
                    });
                    only_here.then(|| const_bool(items[0], &defs, facts)).flatten()
                }
                _ => None,
            };
            let (fill, count) = match (single(*lhs), single(*rhs)) {
                (Some(fill), None) => (fill, *rhs),
                (None, Some(fill)) => (fill, *lhs),
                _ => continue,
            };
            // Stored at once (no exit in between: it would see the list on no local) into
            // a local nothing else is stored into.
            let store = block.instrs[i + 1..].iter().find(|x| !matches!(x.op, Op::Incref(_) | Op::Decref(_)));
            let Some(Op::StoreLocal { local, value }) = store.map(|x| &x.op) else { continue };
            if *value != r || stores_into(*local) != 1 {
                continue;
            }
            lists.sites.insert(r, Site { local: *local, count, fill });
            lists.made_in.insert(r, b);
        }
    }
    let mut rejected: HashSet<ValueId> = HashSet::default();
    for (&list, site) in &lists.sites {
        for &u in uses.get(&list).into_iter().flatten() {
            let Some(instr) = instr_at(u) else {
                rejected.insert(list);
                continue;
            };
            let operands = instr.op.operands();
            let once = operands.iter().filter(|&&v| v == list).count() == 1;
            let ok = match (&instr.op, instr.result) {
                (Op::Incref(_) | Op::Decref(_) | Op::XDecref(_), _) => true,
                (Op::StoreLocal { local, .. }, _) => *local == site.local,
                (Op::GetItem { obj, .. }, Some(r)) if *obj == list && once && instr.deopt.is_some() => {
                    lists.items.insert(r);
                    lists.accesses.insert(u.unwrap_or_default());
                    true
                }
                (Op::SetItem { obj, .. }, _) if *obj == list && once && instr.deopt.is_some() => {
                    lists.accesses.insert(u.unwrap_or_default());
                    true
                }
                (Op::GetIter(_), Some(it)) if crate::compiler::list_iter_layout_ok() => {
                    lists.iters.insert(it, list);
                    true
                }
                (Op::Call { method, args, kwnames: None, .. }, Some(r))
                    if args.len() == 1
                        && args[0] == list
                        && once
                        && instr.deopt.is_some()
                        && matches!(defs.get(method), Some(Op::Null))
                        && facts.intrinsics.get(&r).is_some_and(|c| c.which == Intrinsic::Len) =>
                {
                    lists.lens.insert(r);
                    true
                }
                _ => false,
            };
            if !ok {
                rejected.insert(list);
            }
        }
    }
    // Iterators only a `for` loop reads: its `IterNext`, whose result only says whether
    // there is an item and gives it; in a loop with a header (not the block making the
    // iterator: a `for` whose body never loops back).
    for (&it, &list) in &lists.iters {
        for &u in uses.get(&it).into_iter().flatten() {
            let ok = match instr_at(u) {
                Some(Instr { op: Op::Incref(_) | Op::Decref(_) | Op::XDecref(_), .. }) => true,
                Some(Instr { op: Op::IterNext(_), result: Some(next), deopt: Some(_), .. }) => {
                    let (b, _) = u.unwrap_or_default();
                    let made_here = func.blocks[b].instrs.iter().any(|i| i.result == Some(it));
                    let split = uses.get(next).into_iter().flatten().all(|n| matches!(instr_at(*n).map(|i| &i.op), Some(Op::IsNull(_) | Op::NonNull(_))));
                    lists.nexts.insert(*next, list);
                    !made_here && split && !in_exits.contains(next)
                }
                _ => false,
            };
            if !ok {
                rejected.insert(list);
            }
        }
    }
    for (&next, _) in &lists.nexts {
        for &u in uses.get(&next).into_iter().flatten() {
            if let Some(Instr { op: Op::NonNull(_), result: Some(item), .. }) = instr_at(u) {
                lists.items.insert(*item);
            }
        }
    }
    lists.forget(&rejected, func);
    lists
}

impl BoolLists<'_> {
    /// Keeps the lists not in `gone` (and what belongs to them) only.
    fn forget(&mut self, gone: &HashSet<ValueId>, func: &Function) {
        if gone.is_empty() {
            return;
        }
        self.sites.retain(|v, _| !gone.contains(v));
        self.iters.retain(|_, list| !gone.contains(list));
        self.nexts.retain(|_, list| !gone.contains(list));
        let defs = func.defining_ops();
        let lists: HashSet<ValueId> = self.sites.keys().copied().collect();
        let nexts: HashSet<ValueId> = self.nexts.keys().copied().collect();
        let on_list = |v: &ValueId| match defs.get(v) {
            Some(Op::GetItem { obj, .. }) => lists.contains(obj),
            Some(Op::NonNull(n)) => nexts.contains(n),
            Some(Op::Call { args, .. }) => args.first().is_some_and(|a| lists.contains(a)),
            _ => false,
        };
        self.items.retain(on_list);
        self.lens.retain(on_list);
        self.accesses.retain(|&(b, i)| match &func.blocks[b].instrs[i].op {
            Op::GetItem { obj, .. } | Op::SetItem { obj, .. } => lists.contains(obj),
            _ => false,
        });
    }

    /// Whether `v` is a list kept as bytes.
    pub fn is_list(&self, v: ValueId) -> bool {
        self.sites.contains_key(&v)
    }

    /// Records that list `v` must be a real list (the function is specialised again).
    pub fn demote(&self, v: ValueId) {
        if let Some(set) = self.not_virtual {
            set.borrow_mut().insert(v);
        }
    }
}

/// Drops the lists whose indices, stored values or repetition count turned out not to be
/// machine ints and bools (demoted: `find` leaves them out next time). Whether all fit.
pub(super) fn kinds_fit(lists: &BoolLists<'_>, func: &Function, kinds: &Kinds) -> bool {
    let k = |v: &ValueId| kinds.kind[v.index()];
    let python_int = |v: &ValueId| numeric_bound(k(v)) == Some(INT) && k(v) & super::NUMPY_KINDS == 0;
    let mut fit = true;
    for (list, site) in &lists.sites {
        if !python_int(&site.count) {
            lists.demote(*list);
            fit = false;
        }
    }
    for &(b, i) in &lists.accesses {
        let ok = match &func.blocks[b].instrs[i].op {
            Op::GetItem { key, .. } => python_int(key),
            Op::SetItem { key, value, .. } => python_int(key) && k(value) == BOOL,
            _ => false,
        };
        if !ok {
            if let Some(obj) = func.blocks[b].instrs[i].op.operands().first() {
                lists.demote(*obj);
            }
            fit = false;
        }
    }
    fit
}

impl Specializer<'_> {
    /// Gives the lists their machine representation (a pointer), and finds the accesses
    /// whose index is the item of a native range loop (`in_range`).
    pub(super) fn bool_list_representations(&mut self) {
        for &list in self.lists.sites.keys() {
            self.repr[list.index()] = super::Repr::Unboxed(Type::I64);
            self.out.values[list.index()] = Type::I64;
        }
        let defs = self.func.defining_ops();
        for &(b, i) in &self.lists.accesses {
            let (Op::GetItem { obj, key } | Op::SetItem { obj, key, .. }) = &self.func.blocks[b].instrs[i].op else { continue };
            let Some(Op::NonNull(next)) = defs.get(key) else { continue };
            let Some(l) = self.range_loops.get(next) else { continue };
            // (The list must exist where the loop is entered.)
            let made_before = self.lists.made_in.get(obj).is_some_and(|&m| {
                m != l.header && self.dominates(m, l.header)
            });
            if l.array.is_none() && self.native_range_object(l.it) && made_before {
                self.lists.in_range.insert((b, i), l.header);
            }
        }
    }

    /// On entering native range loop `l` (whose virtual range is `range`): if the loop's items
    /// index lists of bools in the loop, each must be an index in range of each such list (from
    /// 0 to its length less one), else the loop is left to the interpreter (`exit`, which
    /// raises the IndexError where the loop reaches a bad index, if it does).
    pub(super) fn guard_bool_list_ranges(&mut self, header: usize, range: (ValueId, ValueId, ValueId), exit: Option<ExitId>, e: &mut Emit) {
        let mut lists: Vec<ValueId> = Vec::new();
        for (&(b, i), &h) in &self.lists.in_range {
            let obj = self.func.blocks[b].instrs[i].op.operands().first().copied();
            if let Some(obj) = obj.filter(|o| h == header && !lists.contains(o)) {
                lists.push(obj);
            }
        }
        if lists.is_empty() || exit.is_none() {
            return;
        }
        lists.sort_unstable(); // (deterministic value numbers)
        let (start, step, len) = range;
        let c = |s: &mut Self, e: &mut Emit, value: i64| e.value(s, Op::ConstI64 { value, origin: None }, None);
        let (zero, one, minus_one) = (c(self, e, 0), c(self, e, 1), c(self, e, -1));
        // The last item, start + (len - 1) * step, fits 64 bits: wrapping arithmetic is exact.
        let before_last = e.value(self, Op::IntBinary { op: IntOp::Sub, lhs: len, rhs: one }, None);
        let offset = e.value(self, Op::IntBinary { op: IntOp::Mul, lhs: before_last, rhs: step }, None);
        let last = e.value(self, Op::IntBinary { op: IntOp::Add, lhs: start, rhs: offset }, None);
        let up = e.value(self, Op::IntCompare { op: CompareOp::Gt, lhs: step, rhs: zero }, None);
        let lowest = e.value(self, Op::Select { cond: up, if_true: start, if_false: last, ty: Type::I64 }, None);
        let highest = e.value(self, Op::Select { cond: up, if_true: last, if_false: start, ty: Type::I64 }, None);
        let empty = e.value(self, Op::IntCompare { op: CompareOp::Le, lhs: len, rhs: zero }, None);
        let from_zero = e.value(self, Op::IntCompare { op: CompareOp::Ge, lhs: lowest, rhs: zero }, None);
        for list in lists {
            let Some(&list_len) = self.lists.len.get(&list) else { return };
            let below = e.value(self, Op::IntCompare { op: CompareOp::Lt, lhs: highest, rhs: list_len }, None);
            let inside = e.value(self, Op::Select { cond: from_zero, if_true: below, if_false: from_zero, ty: Type::CBool }, None);
            let fine = e.value(self, Op::Select { cond: empty, if_true: empty, if_false: inside, ty: Type::CBool }, None);
            let sign = e.value(self, Op::Select { cond: fine, if_true: zero, if_false: minus_one, ty: Type::I64 }, None);
            e.effect(Op::GuardNonNegative(sign), exit);
        }
        self.lists.guarded_loops.insert(header);
    }

    /// Whether `bool_list_instr` rewrites the instruction.
    pub(super) fn is_bool_list_instr(&self, b: usize, i: usize, instr: &Instr) -> bool {
        let l = &self.lists;
        match (&instr.op, instr.result) {
            (Op::Binary { .. }, Some(r)) => l.sites.contains_key(&r),
            (Op::GetItem { .. } | Op::SetItem { .. }, _) => l.accesses.contains(&(b, i)),
            (Op::GetIter(_), Some(r)) => l.iters.contains_key(&r),
            (Op::Incref(v) | Op::Decref(v) | Op::XDecref(v), _) => l.iters.contains_key(v),
            (Op::IterNext(_), Some(r)) => l.nexts.contains_key(&r),
            (Op::NonNull(n), _) => l.nexts.contains_key(n),
            (Op::Call { .. }, Some(r)) => l.lens.contains(&r),
            _ => false,
        }
    }

    /// Rewrites an operation on a bool list (see the module doc). Where that cannot be done
    /// (an unexpected shape), the lists are kept real: the function is specialised again.
    pub(super) fn bool_list_instr(&mut self, instr: &Instr, e: &mut Emit) {
        if self.rewrite_bool_list_instr(instr, e).is_none() {
            for &list in self.lists.sites.keys() {
                self.lists.demote(list);
            }
            self.failed = true;
        }
    }

    fn rewrite_bool_list_instr(&mut self, instr: &Instr, e: &mut Emit) -> Option<()> {
        let bool_item = DType::Bool;
        match &instr.op {
            Op::Binary { .. } => {
                let list = instr.result?;
                let site = self.lists.sites[&list];
                let count = self.machine(site.count)?;
                e.define(list, Op::BoolListNew { len: count, fill: site.fill }, Some(instr.deopt?));
                // `[c] * n` has no item for n <= 0.
                let zero = e.value(self, Op::ConstI64 { value: 0, origin: None }, None);
                let positive = e.value(self, Op::IntCompare { op: CompareOp::Gt, lhs: count, rhs: zero }, None);
                let len = e.value(self, Op::Select { cond: positive, if_true: count, if_false: zero, ty: Type::I64 }, None);
                self.lists.len.insert(list, len);
            }
            Op::GetItem { obj, key } => {
                let index = self.list_index(*obj, *key, instr, e)?;
                self.define(instr.result?, Op::LoadElement { data: self.map(*obj), offset: index, dtype: bool_item }, None, instr.exit, e);
            }
            Op::SetItem { obj, key, value } => {
                let index = self.list_index(*obj, *key, instr, e)?;
                let value = self.machine(*value)?;
                e.effect(Op::StoreElement { data: self.map(*obj), offset: index, value, dtype: bool_item }, None);
            }
            Op::GetIter(list) => e.define(instr.result?, Op::BoolListIter { list: self.map(*list) }, None),
            // The iterator is never made: nothing to count.
            Op::Incref(_) | Op::Decref(_) | Op::XDecref(_) => {}
            // A loop over the list (a range loop: see `find_range_loops`): the list's length
            // cannot change while compiled code runs (the interpreter's iterator reads it at
            // each step).
            Op::IterNext(_) => {
                let r = instr.result?;
                let (l, list) = (*self.range_loops.get(&r)?, self.lists.nexts[&r]);
                let len = *self.lists.len.get(&list)?;
                let has = e.value(self, Op::IntCompare { op: CompareOp::Lt, lhs: l.index, rhs: len }, None);
                self.subst.insert(r, has);
            }
            Op::NonNull(next) => {
                let (l, list) = (*self.range_loops.get(next)?, self.lists.nexts[next]);
                e.define(l.next_index, Op::RangeIndexNext(l.index), None);
                let op = Op::LoadElement { data: self.map(list), offset: l.index, dtype: bool_item };
                self.define(instr.result?, op, None, None, e);
            }
            // `len(list)`, `len` guarded to still be the builtin.
            Op::Call { callable, args, .. } => {
                let r = instr.result?;
                let call = *self.facts.intrinsics.get(&r)?;
                e.effect(Op::GuardIs { value: self.map(*callable), expected: call.callable }, instr.deopt);
                let len = *self.lists.len.get(args.first()?)?;
                self.alias(r, len, instr.exit, e);
            }
            _ => return None,
        }
        Some(())
    }

    /// The index of `list[key]` as a list takes it (negative counts from the end), leaving
    /// through the instruction's deopt exit where it is out of range: the interpreter then
    /// raises the IndexError. (An item of a loop that checked all its items: as it is.)
    fn list_index(&mut self, list: ValueId, key: ValueId, instr: &Instr, e: &mut Emit) -> Option<ValueId> {
        let index = self.machine(key)?;
        if self.lists.in_range.contains_key(&(self.current, self.current_instr)) {
            return Some(index);
        }
        let len = *self.lists.len.get(&list)?;
        let op = Op::ArrayIndex { index, dim: len, array: self.map(list), key: vec![], chained: false };
        Some(e.value(self, op, Some(instr.deopt?)))
    }

    /// Before a return: frees the buffers of the lists the frame's locals hold.
    pub(super) fn free_bool_lists(&mut self, terminator: &Terminator, locals: &[ValueId], e: &mut Emit) {
        if !matches!(terminator, Terminator::Return(_)) {
            return;
        }
        for (slot, v) in locals.iter().enumerate() {
            if self.lists.sites.get(v).is_some_and(|s| s.local as usize == slot) {
                e.effect(Op::BoolListFree(self.map(*v)), None);
            }
        }
    }

    /// Before a call whose callee may read the frame's locals: a list there would have to be
    /// made, so it is kept a real list (the function is specialised again). Whether `v` is
    /// such a list.
    pub(super) fn bool_list_needed_in_frame(&mut self, v: ValueId) -> bool {
        if !self.lists.is_list(v) {
            return false;
        }
        self.lists.demote(v);
        self.failed = true;
        true
    }

    /// After the rewrite: exits hold no references to iterators never made; an exit taken
    /// with a list alive has it in its local (it makes the list and frees the buffer there);
    /// one with a list iterator on its stack knows the loop's position; and nothing but the
    /// operations made here reads a list's pointer (a generic operation would take it for an
    /// int). Otherwise the list is demoted.
    pub(super) fn finish_bool_lists(&mut self) {
        if self.lists.sites.is_empty() {
            return;
        }
        let iters = self.lists.iters.clone();
        let referenced: HashSet<usize> = self.out.blocks.iter().flat_map(|b| b.referenced_exits()).map(|x| x.index()).collect();
        let mut bad: HashSet<ValueId> = HashSet::default();
        for (x, exit) in self.out.exits.iter_mut().enumerate() {
            exit.release.retain(|v| !iters.contains_key(v));
            if !referenced.contains(&x) {
                continue;
            }
            let state = &exit.state;
            for (&list, site) in &self.lists.sites {
                let in_state = |v: &ValueId| *v == list || iters.get(v) == Some(&list);
                let mentioned = state.locals.iter().chain(&state.stack).chain(&exit.release).any(in_state);
                if mentioned && state.locals.get(site.local as usize) != Some(&list) {
                    bad.insert(list);
                }
            }
            for v in &state.stack {
                if let Some(list) = iters.get(v) {
                    if !exit.range_positions.iter().any(|(it, _)| it == v) {
                        bad.insert(*list);
                    }
                }
            }
        }
        for block in &self.out.blocks {
            for instr in &block.instrs {
                let allowed: Vec<ValueId> = match &instr.op {
                    Op::ArrayIndex { array, .. } => vec![*array],
                    Op::LoadElement { data, .. } | Op::StoreElement { data, .. } => vec![*data],
                    Op::BoolListIter { list } | Op::BoolListFree(list) => vec![*list],
                    _ => vec![],
                };
                bad.extend(instr.op.operands().into_iter().filter(|v| self.lists.is_list(*v) && !allowed.contains(v)));
            }
            let edge_args = block.terminator.edges().into_iter().flat_map(|e| e.args.clone());
            bad.extend(block.terminator.operands().into_iter().chain(edge_args).filter(|v| self.lists.is_list(*v)));
        }
        // An access left unchecked must be in a loop that checked it on entry.
        for (&(b, i), header) in &self.lists.in_range {
            if !self.lists.guarded_loops.contains(header) {
                bad.extend(self.func.blocks[b].instrs[i].op.operands().first().copied());
            }
        }
        for list in bad {
            self.lists.demote(list);
            self.failed = true;
        }
    }
}
