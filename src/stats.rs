//! Global counters behind `rjit.stats()`. Updated off the hook's fast path only.

use std::collections::BTreeMap;
use std::sync::Mutex;

/// The counters. `BTreeMap` keeps the reasons in a stable order for printing.
#[derive(Debug, Default, Clone)]
pub struct Stats {
    /// Code objects the hook has made an entry for.
    pub functions_seen: u64,
    /// Entries freed with their code objects.
    pub functions_freed: u64,
    /// Functions compiled to machine code.
    pub compiled: u64,
    /// Total compile time, microseconds.
    pub compile_time_us: f64,
    /// Bytes of machine code generated.
    pub code_bytes: u64,
    /// Functions left to the interpreter, by reason.
    pub declined: BTreeMap<String, u64>,
    /// Functions left to the interpreter because of an opcode the compiler does not handle, by
    /// that opcode (the first unsupported one of each function).
    pub declined_by_opcode: BTreeMap<String, u64>,
    /// Deoptimisations: compiled code that handed its frame to the interpreter at a failed
    /// guard or an unrepresentable result.
    pub deopts: u64,
    /// Deoptimisations by the reason of the exit taken (`hir::side_exits`).
    pub deopts_by_reason: BTreeMap<String, u64>,
    /// Functions recompiled without speculation because they kept deoptimising.
    pub despecialised: u64,
    /// Compilations of a function that had machine code before.
    pub recompiled: u64,
    /// Functions whose machine code uses unboxed values.
    pub specialised: u64,
}

static STATS: Mutex<Stats> = Mutex::new(Stats {
    functions_seen: 0,
    functions_freed: 0,
    compiled: 0,
    compile_time_us: 0.0,
    code_bytes: 0,
    declined: BTreeMap::new(),
    declined_by_opcode: BTreeMap::new(),
    deopts: 0,
    deopts_by_reason: BTreeMap::new(),
    despecialised: 0,
    recompiled: 0,
    specialised: 0,
});

fn with<R>(f: impl FnOnce(&mut Stats) -> R) -> R {
    // A poisoned lock only means a panic happened while counting; the numbers are still usable.
    let mut guard = STATS.lock().unwrap_or_else(|e| e.into_inner());
    f(&mut guard)
}

/// A code object got an entry.
pub fn entry_created() {
    with(|s| s.functions_seen += 1);
}

/// An entry was freed with its code object.
pub fn entry_freed() {
    with(|s| s.functions_freed += 1);
}

/// A function was compiled.
pub fn compiled(time_us: f64, bytes: usize) {
    with(|s| {
        s.compiled += 1;
        s.compile_time_us += time_us;
        s.code_bytes += bytes as u64;
    });
}

/// Compiled code deoptimised, for `reason`.
pub fn deopt(reason: &str) {
    with(|s| {
        s.deopts += 1;
        match s.deopts_by_reason.get_mut(reason) {
            Some(count) => *count += 1,
            None => {
                s.deopts_by_reason.insert(reason.to_owned(), 1);
            }
        }
    });
}

/// A function that had machine code was compiled again.
pub fn recompiled() {
    with(|s| s.recompiled += 1);
}

/// A function was declined because of `opcode`.
pub fn declined_opcode(opcode: &str) {
    with(|s| *s.declined_by_opcode.entry(opcode.to_owned()).or_insert(0) += 1);
}

/// A function was recompiled without speculation.
pub fn despecialised() {
    with(|s| s.despecialised += 1);
}

/// A function was compiled with unboxed values.
pub fn specialised() {
    with(|s| s.specialised += 1);
}

/// A function was left to the interpreter for `reason`.
pub fn declined(reason: &str) {
    with(|s| *s.declined.entry(reason.to_owned()).or_insert(0) += 1);
}

/// A copy of the counters.
pub fn snapshot() -> Stats {
    with(|s| s.clone())
}
