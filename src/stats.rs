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
    /// Deoptimisations: compiled code that handed its frame to the interpreter at a failed
    /// guard or an unrepresentable result.
    pub deopts: u64,
    /// Functions recompiled without speculation because they kept deoptimising.
    pub despecialised: u64,
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
    deopts: 0,
    despecialised: 0,
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

/// Compiled code deoptimised.
pub fn deopt() {
    with(|s| s.deopts += 1);
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
