//! Per-code-object state: a `CodeEntry` lives in a co_extra slot of each code object the hook
//! has seen, and is freed with the code object.

use std::cell::{Cell, RefCell};
use std::ffi::c_void;
use std::fmt;

use pyo3_ffi as ffi;

use crate::cpython::{self, GilCell};
use crate::log;
use crate::options;
use crate::stats;

/// Why a function runs in the interpreter for good.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decline {
    /// The compiler does not handle something in the function: `message` names it; the
    /// opcode and source line of the first such construct, when known.
    Unsupported { message: String, opcode: Option<&'static str>, line: Option<u32> },
    /// rjit itself failed (a bug): the function is left to the interpreter.
    Internal(String),
}

impl fmt::Display for Decline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Decline::Unsupported { message, .. } => write!(f, "{message}"),
            Decline::Internal(msg) => write!(f, "internal error in rjit (please report): {msg}"),
        }
    }
}

/// Code the hook hands to the interpreter without counting: generator-like frames are resumed
/// many times (each `next()` re-enters the hook) and are not compiled yet; module and class
/// bodies run once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Passthrough {
    Generator,
    Coroutine,
    AsyncGenerator,
    /// A module or class body (or `exec`'d code): runs once, looks names up in a dict.
    Body,
}

impl Passthrough {
    fn of_flags(flags: i32) -> Option<Passthrough> {
        const CO_OPTIMIZED: i32 = 0x0001;
        const CO_GENERATOR: i32 = 0x0020;
        const CO_COROUTINE: i32 = 0x0080;
        const CO_ASYNC_GENERATOR: i32 = 0x0200;
        if flags & CO_OPTIMIZED == 0 {
            Some(Passthrough::Body)
        } else if flags & CO_GENERATOR != 0 {
            Some(Passthrough::Generator)
        } else if flags & CO_COROUTINE != 0 {
            Some(Passthrough::Coroutine)
        } else if flags & CO_ASYNC_GENERATOR != 0 {
            Some(Passthrough::AsyncGenerator)
        } else {
            None
        }
    }

    /// Why such code runs in the interpreter, for `rjit.info`.
    fn reason(self) -> &'static str {
        match self {
            Passthrough::Generator => "generator functions run in the interpreter (not compiled yet)",
            Passthrough::Coroutine => "coroutine functions run in the interpreter (not compiled yet)",
            Passthrough::AsyncGenerator => "async generator functions run in the interpreter (not compiled yet)",
            Passthrough::Body => "module and class bodies run once: they stay in the interpreter",
        }
    }
}

/// Where a code object stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Counting calls until it is hot.
    Cold,
    /// Generator/coroutine code: always the interpreter, calls not counted.
    Passthrough(Passthrough),
    /// `@rjit.nojit`: never compiled.
    NoJit,
    /// Compilation was attempted and declined.
    Declined(Decline),
    /// Machine code runs the function.
    Compiled,
}

/// Which hotness limit applies to an entry (an index into `HOT_AFTER`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(usize)]
enum HotClass {
    Plain = 0,
    Loop = 1,
    /// `@rjit.jit`: compiled on its first call.
    Forced = 2,
    /// Settled (compiled, declined, nojit) or passthrough: never hot again.
    Never = 3,
}

/// Call counts after which a function is hot, per `HotClass`, derived from the threshold
/// whenever it changes so the hook's fast path only loads and compares.
static HOT_AFTER: [GilCell<u64>; 4] = [
    GilCell::new(options::DEFAULT_THRESHOLD),
    GilCell::new(options::DEFAULT_THRESHOLD / options::LOOP_DIVISOR),
    GilCell::new(0),
    GilCell::new(u64::MAX),
];
static THRESHOLD: GilCell<u64> = GilCell::new(options::DEFAULT_THRESHOLD);

/// Sets the global threshold (calls a function runs in the interpreter before it is compiled).
pub fn set_threshold(threshold: u64) {
    THRESHOLD.set(threshold);
    HOT_AFTER[HotClass::Plain as usize].set(options::hot_after(threshold, false));
    HOT_AFTER[HotClass::Loop as usize].set(options::hot_after(threshold, true));
}

/// The global threshold.
pub fn threshold() -> u64 {
    THRESHOLD.get()
}

/// rjit's record of one code object. Only touched with the GIL held.
pub struct CodeEntry {
    /// Calls seen by the hook (not counting generator resumptions or traced calls).
    calls: Cell<u64>,
    /// The hotness limit that applies; `Never` once the status is no longer `Cold`.
    hot_class: Cell<HotClass>,
    /// Generator-like code: the hook forwards it without counting.
    passthrough: bool,
    /// `@rjit.jit` asked for compilation at the first call.
    forced: Cell<bool>,
    has_loop: bool,
    status: RefCell<Status>,
    /// The machine code's entry point, once compiled (read by the hook on every call).
    native: Cell<Option<crate::compiler::NativeFn>>,
    /// Owns the machine code (and what `rjit.info` reports).
    compiled: RefCell<Option<crate::compiler::Compiled>>,
    /// Machine code replaced by a recompilation: kept until the code object dies, since a
    /// call may still be running in it (recursion); with its deoptimisations by exit index.
    retired: RefCell<Vec<(crate::compiler::Compiled, Vec<(u32, u64)>)>>,
    /// Calls that ran in machine code replaced since (see `native_calls`).
    native_calls_retired: Cell<u64>,
    /// A compilation of this code is under way. Compiling allocates, so the cyclic GC may
    /// run finalizers, which may call this function or let another thread run it: those calls
    /// run in the interpreter instead of compiling it a second time.
    compiling: Cell<bool>,
    /// Deoptimisations of the current machine code, and per exit index.
    deopts: Cell<u64>,
    deopts_by_exit: RefCell<std::collections::BTreeMap<u32, u64>>,
    /// `calls` when the current machine code was made.
    calls_at_compile: Cell<u64>,
    /// Compile without speculation (it kept deoptimising).
    generic_only: Cell<bool>,
    /// Consecutive calls (give or take one) that failed the current machine code's entry
    /// guards (other argument types), the call count at the last, and how many times the
    /// code was recompiled for new types.
    entry_deopts: Cell<u64>,
    last_entry_deopt: Cell<u64>,
    respecialised: Cell<u32>,
}

impl CodeEntry {
    fn new(flags: i32, has_loop: bool) -> CodeEntry {
        let passthrough = Passthrough::of_flags(flags);
        let entry = CodeEntry {
            calls: Cell::new(0),
            hot_class: Cell::new(HotClass::Never),
            passthrough: passthrough.is_some(),
            forced: Cell::new(false),
            has_loop,
            status: RefCell::new(Status::Cold),
            native: Cell::new(None),
            compiled: RefCell::new(None),
            retired: RefCell::new(Vec::new()),
            native_calls_retired: Cell::new(0),
            compiling: Cell::new(false),
            deopts: Cell::new(0),
            deopts_by_exit: RefCell::new(std::collections::BTreeMap::new()),
            calls_at_compile: Cell::new(0),
            generic_only: Cell::new(false),
            entry_deopts: Cell::new(0),
            last_entry_deopt: Cell::new(0),
            respecialised: Cell::new(0),
        };
        entry.settle(match passthrough {
            Some(kind) => Status::Passthrough(kind),
            None => Status::Cold,
        });
        entry
    }

    /// The hook's per-call bookkeeping. Returns true when this call made the function hot.
    /// Kept tiny: it runs on every Python call while rjit is enabled.
    #[inline(always)]
    pub fn count_call(&self) -> bool {
        let calls = self.calls.get().wrapping_add(1);
        self.calls.set(calls);
        calls > HOT_AFTER[self.hot_class.get() as usize].get()
    }

    /// The compiled code's entry point, if the function is compiled.
    #[inline(always)]
    pub fn native(&self) -> Option<crate::compiler::NativeFn> {
        self.native.get()
    }

    /// Deoptimisations of the current machine code (total, and by exit index).
    pub fn deopts(&self) -> (u64, Vec<(u32, u64)>) {
        (self.deopts.get(), self.deopts_by_exit.borrow().iter().map(|(k, v)| (*k, *v)).collect())
    }

    /// Whether the machine code works on unboxed values.
    pub fn is_specialised(&self) -> bool {
        self.compiled.borrow().as_ref().is_some_and(|c| c.specialised)
    }

    /// A deoptimisation through exit `exit`. A function whose code deoptimises on a large
    /// share of its calls is recompiled without speculation at its next call (once: it can
    /// never thrash between versions).
    fn note_deopt(&self, exit: u32) {
        self.deopts.set(self.deopts.get() + 1);
        *self.deopts_by_exit.borrow_mut().entry(exit).or_insert(0) += 1;
        let calls = self.calls.get().saturating_sub(self.calls_at_compile.get());
        let deopts = self.deopts.get();
        let at_entry = self.deopt_site(exit).is_some_and(|s| s.reason.starts_with(crate::hir::side_exits::ENTRY_GUARD));
        if at_entry {
            let consecutive = self.calls.get().saturating_sub(self.last_entry_deopt.get()) <= 2;
            self.entry_deopts.set(if consecutive { self.entry_deopts.get() + 1 } else { 1 });
            self.last_entry_deopt.set(self.calls.get());
        }
        // Called with other argument types from now on (another array dtype, ints where
        // floats were): compiled again for the new ones, a few times at most.
        let respecialise =
            at_entry && self.entry_deopts.get() >= RESPECIALISE_AFTER && self.respecialised.get() < MAX_RESPECIALISATIONS;
        if !self.generic_only.get() && respecialise {
            self.respecialised.set(self.respecialised.get() + 1);
            self.retire_current();
            self.settle(Status::Cold);
            return;
        }
        if !self.generic_only.get() && deopts >= DEOPT_LIMIT && deopts.saturating_mul(4) >= calls {
            self.generic_only.set(true);
            self.retire_current();
            stats::despecialised();
            self.settle(Status::Cold);
        }
    }

    /// Stops entering the current machine code (kept: a frame may still run it), so the next
    /// call compiles again.
    fn retire_current(&self) {
        self.native_calls_retired.set(self.native_calls());
        self.native.set(None);
        if let Some(old) = self.compiled.borrow_mut().take() {
            let (_, by_exit) = self.deopts();
            self.retired.borrow_mut().push((old, by_exit));
        }
    }

    /// The deoptimisation exit `exit` of the current machine code, with its reason.
    pub fn deopt_site(&self, exit: u32) -> Option<crate::hir::side_exits::DeoptSite> {
        let compiled = self.compiled.borrow();
        let sites = &compiled.as_ref()?.deopt_sites;
        sites.binary_search_by_key(&exit, |s| s.exit).ok().map(|i| sites[i].clone())
    }

    /// Calls that entered machine code. Derived from the call count rather than counted in the
    /// hook, so the hook's fast path stays as it is: while the function is compiled every
    /// counted call runs the machine code, from the call that compiled it on (counted in
    /// `calls_at_compile`, hence the +1).
    pub fn native_calls(&self) -> u64 {
        let current = if self.native.get().is_some() {
            self.calls.get().saturating_sub(self.calls_at_compile.get()) + 1
        } else {
            0
        };
        self.native_calls_retired.get() + current
    }

    /// Calls run by the interpreter from their start (not counting calls that entered machine
    /// code and deoptimised part-way).
    pub fn interpreted_calls(&self) -> u64 {
        self.calls.get().saturating_sub(self.native_calls())
    }

    /// Each version of machine code the function has had (replaced ones first, the current one
    /// last), with its deoptimisations by exit index.
    pub fn versions<R>(&self, mut each: impl FnMut(&crate::compiler::Compiled, &[(u32, u64)], bool) -> R) -> Vec<R> {
        let mut out: Vec<R> = self.retired.borrow().iter().map(|(c, d)| each(c, d, false)).collect();
        if let Some(current) = self.compiled.borrow().as_ref() {
            out.push(each(current, &self.deopts().1, true));
        }
        out
    }

    /// Compile time (microseconds) and machine code size (bytes), if compiled.
    pub fn compiled_facts(&self) -> Option<(f64, usize)> {
        self.compiled.borrow().as_ref().map(|c| (c.compile_time_us, c.size))
    }

    /// Generator-like code, forwarded by the hook without counting.
    #[inline(always)]
    pub fn is_passthrough(&self) -> bool {
        self.passthrough
    }

    /// Whether `@rjit.jit` asked for this code to be compiled on its first call.
    pub fn is_forced(&self) -> bool {
        self.forced.get()
    }

    /// Calls the hook has counted.
    pub fn calls(&self) -> u64 {
        self.calls.get()
    }

    /// Whether the code has a loop (it is hot sooner).
    pub fn has_loop(&self) -> bool {
        self.has_loop
    }

    /// The current status.
    pub fn status(&self) -> Status {
        self.status.borrow().clone()
    }

    /// The call count after which this entry is compiled (None once it no longer counts).
    pub fn hot_after(&self) -> Option<u64> {
        let class = self.hot_class.get();
        (class != HotClass::Never).then(|| HOT_AFTER[class as usize].get())
    }

    /// Sets the status; only a `Cold` entry is compared with a hot limit.
    pub fn settle(&self, status: Status) {
        self.hot_class.set(if status != Status::Cold {
            HotClass::Never
        } else if self.forced.get() {
            HotClass::Forced
        } else if self.has_loop {
            HotClass::Loop
        } else {
            HotClass::Plain
        });
        *self.status.borrow_mut() = status;
    }

    /// `@rjit.jit`: compile at the first call (unless the entry is already settled).
    pub fn force(&self) {
        self.forced.set(true);
        if self.status() == Status::Cold {
            self.settle(Status::Cold);
        }
    }
}

/// Deoptimisations after which a function that deoptimises on at least a quarter of its calls
/// is recompiled without speculation.
const DEOPT_LIMIT: u64 = 50;

/// Entry-guard deoptimisations in a row after which a function is
/// compiled again for the argument types of its next call, at most `MAX_RESPECIALISATIONS`
/// times (then `DEOPT_LIMIT` applies: it cannot thrash).
const RESPECIALISE_AFTER: u64 = 8;
const MAX_RESPECIALISATIONS: u32 = 3;

/// Called by compiled code's deopt exits: counts the deoptimisation on the code's entry.
pub extern "C" fn rjit_note_deopt(code: *mut ffi::PyObject, exit: u32) {
    // No Python code runs here; a panic (a bug) is swallowed rather than unwound into
    // generated code.
    let _ = std::panic::catch_unwind(|| {
        // SAFETY: the compiled code's own live code object; GIL held by compiled code.
        let Some(entry) = (unsafe { entry_of(code) }) else {
            stats::deopt("unknown");
            return;
        };
        let site = entry.deopt_site(exit);
        stats::deopt(site.as_ref().map_or("unknown", |s| s.reason.as_str()));
        if log::enabled(log::Event::Deopt) {
            // SAFETY: as above.
            let line = site.as_ref().and_then(|s| unsafe { cpython::code_line(code, s.offset) });
            let py = unsafe { pyo3::Python::assume_attached() };
            let code = unsafe { pyo3::Bound::from_borrowed_ptr(py, code) };
            let reason = site.map_or_else(|| format!("exit {exit}"), |s| s.reason);
            log::emit(log::Event::Deopt, &log::place(&code, line), &reason);
        }
        entry.note_deopt(exit);
    });
}

/// The co_extra slot index rjit's entries live in (reserved at module import).
/// -1 until `init`; a plain cell so the hook's fast path reads it without an init check.
static EXTRA_INDEX: GilCell<ffi::Py_ssize_t> = GilCell::new(-1);

/// rjit's co_extra slot, if reserved.
#[inline(always)]
fn extra_index() -> Option<ffi::Py_ssize_t> {
    let index = EXTRA_INDEX.get();
    (index >= 0).then_some(index)
}

/// Reserves rjit's co_extra slot. Must run (with the GIL) before any entry is made.
pub fn init() -> Result<(), &'static str> {
    if extra_index().is_some() {
        return Ok(());
    }
    // SAFETY: GIL held (called from module init).
    let index = unsafe { cpython::request_code_extra_index(free_entry) }
        .ok_or("the interpreter has no free co_extra slot for rjit")?;
    EXTRA_INDEX.set(index);
    // SAFETY: GIL held; `free_entry` ignores the probe's mark.
    unsafe { cpython::check_direct_code_extra(index) };
    Ok(())
}

/// Frees an entry when its code object is deallocated. Called by CPython.
unsafe extern "C" fn free_entry(entry: *mut c_void) {
    if entry.is_null() || entry == std::ptr::addr_of!(cpython::PROBE_MARK) as *mut c_void {
        return;
    }
    // Dropping a CodeEntry cannot panic, but a panic must never unwind into C.
    let _ = std::panic::catch_unwind(|| {
        // SAFETY: the pointer came from Box::into_raw in `entry_or_create`.
        drop(Box::from_raw(entry.cast::<CodeEntry>()));
        stats::entry_freed();
    });
}

/// The entry of a code object, if it has one.
///
/// # Safety
/// `code` must be a live code object; GIL held; the reference must not outlive the code object.
#[inline(always)]
pub unsafe fn entry_of<'a>(code: *mut ffi::PyObject) -> Option<&'a CodeEntry> {
    if cpython::direct_code_extra() {
        entry_of_with::<true>(code)
    } else {
        entry_of_with::<false>(code)
    }
}

/// `entry_of` with the co_extra read chosen by the caller (see `cpython::code_extra`).
///
/// # Safety
/// As `entry_of`; `DIRECT` only if `cpython::direct_code_extra()`.
#[inline(always)]
pub unsafe fn entry_of_with<'a, const DIRECT: bool>(code: *mut ffi::PyObject) -> Option<&'a CodeEntry> {
    let index = extra_index()?;
    let ptr = cpython::code_extra::<DIRECT>(code, index);
    ptr.cast::<CodeEntry>().as_ref()
}

/// The entry of a code object, made on first sight.
///
/// # Safety
/// As `entry_of`.
pub unsafe fn entry_or_create<'a>(code: *mut ffi::PyObject) -> Option<&'a CodeEntry> {
    if let Some(entry) = entry_of(code) {
        return Some(entry);
    }
    let index = extra_index()?;
    let entry = Box::new(CodeEntry::new(cpython::code_flags(code), cpython::code_has_loop(code)));
    let raw = Box::into_raw(entry);
    if !cpython::set_code_extra(code, index, raw.cast()) {
        // Only fails for a non-code object or a bad index; clear the error and go on without.
        drop(Box::from_raw(raw));
        ffi::PyErr_Clear();
        return None;
    }
    stats::entry_created();
    Some(&*raw)
}

/// A function became hot: compile it and record the outcome. `args` are the frame's
/// argument slots (the call that made it hot), whose types the code is specialised on;
/// `globals` its globals (where the functions it calls are looked up, to inline them).
///
/// # Safety
/// `code` is the entry's live code object; `args` points at its frame's first `nargs` local
/// slots (or is null); `globals` is the frame's globals (or null); GIL held.
pub unsafe fn on_hot(
    entry: &CodeEntry,
    code: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    globals: *mut ffi::PyObject,
    builtins: *mut ffi::PyObject,
) {
    if entry.compiling.get() || entry.native().is_some() {
        return; // compiled or being compiled (this is a call from inside the compilation)
    }
    // At shutdown modules are being torn down: what compiling looks up may be gone. The
    // code left to run (finalizers) runs in the interpreter.
    if crate::cpython::shim::rjit_shim_is_finalizing() != 0 {
        return;
    }
    entry.compiling.set(true);
    on_hot_compile(entry, code, args, globals, builtins);
    entry.compiling.set(false);
}

/// `on_hot` with the entry marked as being compiled.
unsafe fn on_hot_compile(
    entry: &CodeEntry,
    code: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    globals: *mut ffi::PyObject,
    builtins: *mut ffi::PyObject,
) {
    let py = pyo3::Python::assume_attached();
    let code = pyo3::Bound::from_borrowed_ptr(py, code);
    let globals = (!globals.is_null()).then(|| pyo3::Bound::from_borrowed_ptr(py, globals));
    let builtins = (!builtins.is_null()).then(|| pyo3::Bound::from_borrowed_ptr(py, builtins));
    let nargs = if entry.generic_only.get() || args.is_null() || !options::specialise() {
        None
    } else {
        crate::compiler::code_facts(&code).ok().map(|facts| facts.nargs as usize)
    };
    let kinds = nargs.map(|n| (0..n).map(|i| crate::compiler::kind_of(*args.add(i))).collect());
    // The array types once NumPy is known (looked up by the first compilation after it was
    // imported: `specialize_facts`).
    if nargs.is_some() {
        let _ = crate::numpy::numpy();
    }
    let arrays = nargs.map(|n| (0..n).map(|i| crate::compiler::array_of(*args.add(i))).collect()).unwrap_or_default();
    let list_items = nargs.map(|n| (0..n).map(|i| crate::compiler::list_item_kind(*args.add(i))).collect()).unwrap_or_default();
    match crate::compiler::compile(&code, kinds, arrays, list_items, globals.as_ref(), builtins.as_ref()) {
        Ok(compiled) => {
            stats::compiled(compiled.compile_time_us, compiled.size);
            if compiled.specialised {
                stats::specialised();
            }
            if !entry.retired.borrow().is_empty() {
                stats::recompiled();
            }
            if log::enabled(log::Event::Compile) {
                log::emit(log::Event::Compile, &log::place(&code, None), &compile_message(&code, &compiled));
            }
            // Code that is replaced may still run in some frame: it is retired, not freed.
            if let Some(old) = entry.compiled.borrow_mut().take() {
                let (_, by_exit) = entry.deopts();
                entry.retired.borrow_mut().push((old, by_exit));
            }
            entry.deopts.set(0);
            entry.entry_deopts.set(0);
            entry.deopts_by_exit.borrow_mut().clear();
            entry.calls_at_compile.set(entry.calls.get());
            entry.native.set(Some(compiled.entry));
            *entry.compiled.borrow_mut() = Some(compiled);
            entry.settle(Status::Compiled);
        }
        Err(error) => {
            // Nothing may stay raised: the interpreter runs the frame next.
            ffi::PyErr_Clear();
            let decline = match error {
                crate::compiler::CompileError::Frontend(crate::compiler::FrontendError::Unsupported(u)) => {
                    stats::declined_opcode(u.opcode);
                    let message = match u.construct() {
                        Some(construct) => format!("{u} ({construct})"),
                        None => u.to_string(),
                    };
                    Decline::Unsupported { message, opcode: Some(u.opcode), line: u.line }
                }
                crate::compiler::CompileError::Frontend(e) => {
                    Decline::Unsupported { message: e.to_string(), opcode: None, line: None }
                }
                other => Decline::Internal(other.to_string()),
            };
            stats::declined(&decline.to_string());
            if log::enabled(log::Event::Decline) {
                let line = match &decline {
                    Decline::Unsupported { line, .. } => *line,
                    Decline::Internal(_) => None,
                };
                log::emit(log::Event::Decline, &log::place(&code, line), &decline.to_string());
            }
            entry.settle(Status::Declined(decline));
        }
    }
}

/// What `RJIT_LOG=compile` says about a compilation.
fn compile_message(code: &pyo3::Bound<'_, pyo3::PyAny>, compiled: &crate::compiler::Compiled) -> String {
    use pyo3::types::PyAnyMethods;
    let mut message = format!("{} bytes in {:.1} us", compiled.size, compiled.compile_time_us);
    if compiled.specialised {
        let names: Vec<String> = code.getattr("co_varnames").and_then(|v| v.extract()).unwrap_or_default();
        let guards: Vec<String> = compiled
            .entry_guards
            .iter()
            .map(|g| {
                let name = names.get(g.arg as usize).cloned().unwrap_or_else(|| format!("arg{}", g.arg));
                format!("{name}: {}", g.type_name())
            })
            .collect();
        message.push_str(", specialised");
        if !guards.is_empty() {
            message.push_str(&format!(" for {}", guards.join(", ")));
        }
    } else {
        message.push_str(", generic");
    }
    message
}

/// Records a bug in rjit on an entry: the function stays in the interpreter.
pub fn internal_error(entry: &CodeEntry, message: String) {
    let decline = Decline::Internal(message);
    stats::declined(&decline.to_string());
    log::emit(log::Event::Decline, "?", &decline.to_string());
    entry.settle(Status::Declined(decline));
}

impl Status {
    /// A one-word name for `rjit.info(f).state`.
    pub fn name(&self) -> &'static str {
        match self {
            Status::Cold => "cold",
            Status::Passthrough(_) => "interpreter",
            Status::NoJit => "nojit",
            Status::Declined(_) => "declined",
            Status::Compiled => "compiled",
        }
    }

    /// Why the function is not compiled, in words for the user (None if nothing stops it).
    pub fn reason(&self) -> Option<String> {
        match self {
            Status::Cold => None,
            Status::Passthrough(kind) => Some(kind.reason().to_owned()),
            Status::NoJit => Some("marked @rjit.nojit".to_owned()),
            Status::Declined(decline) => Some(decline.to_string()),
            Status::Compiled => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passthrough_flags() {
        assert_eq!(Passthrough::of_flags(0x0020 | 0x0003), Some(Passthrough::Generator));
        assert_eq!(Passthrough::of_flags(0x0080 | 0x0003), Some(Passthrough::Coroutine));
        assert_eq!(Passthrough::of_flags(0x0200 | 0x0003), Some(Passthrough::AsyncGenerator));
        assert_eq!(Passthrough::of_flags(0x0003), None);
        // Module and class bodies lack CO_OPTIMIZED.
        assert_eq!(Passthrough::of_flags(0x0040), Some(Passthrough::Body));
    }

    #[test]
    fn entry_counts_until_hot() {
        set_threshold(3);
        let e = CodeEntry::new(0x0003, false);
        assert!(!e.count_call());
        assert!(!e.count_call());
        assert!(!e.count_call());
        assert!(e.count_call(), "the call after `threshold` calls is hot");
        e.settle(Status::Declined(Decline::Unsupported { message: "test".into(), opcode: None, line: None }));
        assert!(!e.count_call(), "a settled entry is never hot again");
        assert_eq!(e.calls(), 5);
    }

    #[test]
    fn forced_entry_is_hot_at_first_call() {
        let e = CodeEntry::new(0x0003, false);
        e.force();
        assert!(e.is_forced());
        assert!(e.count_call());
    }

    #[test]
    fn generator_entry_does_not_count() {
        let e = CodeEntry::new(0x0023, false);
        assert!(e.is_passthrough());
        assert_eq!(e.status().name(), "interpreter");
        assert!(e.status().reason().unwrap().contains("generator"));
        assert_eq!(e.hot_after(), None);
    }
}
