//! rjit: a JIT compiler for CPython. This file is the native module `rjit._rjit`: the Rust side
//! of the Python API and nothing else. The Python package (`pyshim/rjit/`) wraps it.
//!
//! Pipeline map (DESIGN.md section 2): `hook` (PEP 523, call counting) -> `state` (per-code
//! entries in co_extra) -> the compiler (next milestone). `cpython` is the only module that
//! touches CPython's internals.

mod allocator;
pub mod array_results;
pub mod bytecode;
pub mod codemem;
pub mod compiler;
pub mod cpython;
pub mod backend;
pub mod bitset;
pub mod disasm;
pub mod dtype_folds;
pub mod hashing;
pub mod hir;
pub mod hook;
pub mod lir;
pub mod log;
pub mod numpy;
pub mod options;
pub mod perfmap;
pub mod runtime;
pub mod state;
pub mod stats;

use pyo3::exceptions::{PyRuntimeError, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::{PyCode, PyDict, PyList, PyTuple};

use once_cell::sync::OnceCell;
use options::{EnvOptions, Mode};

/// `RJIT` as read at import.
static ENV_MODE: OnceCell<Mode> = OnceCell::new();

/// Prepares rjit's global state: the struct layout and the co_extra slot. Idempotent; runs at
/// module import (and in Rust tests that embed an interpreter). Needs the GIL.
pub fn init() -> Result<(), &'static str> {
    cpython::shim::load_layout()?;
    state::init()
}

/// The native stack size of the process's threads (RLIMIT_STACK, which is also glibc's default
/// for new threads), or None when unlimited or unknown.
fn native_stack_size() -> Option<u64> {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes the struct it is given.
    let ok = unsafe { libc::getrlimit(libc::RLIMIT_STACK, &mut limit) } == 0;
    (ok && limit.rlim_cur != libc::RLIM_INFINITY).then_some(limit.rlim_cur as u64)
}

/// Checks that `obj` is a code object and returns its raw pointer (borrowed from `obj`).
fn code_ptr(obj: &Bound<'_, PyAny>) -> PyResult<*mut pyo3::ffi::PyObject> {
    if obj.is_instance_of::<PyCode>() {
        Ok(obj.as_ptr())
    } else {
        Err(PyTypeError::new_err(format!(
            "expected a code object, got {}",
            obj.get_type().name()?
        )))
    }
}

/// Turns on whole-program mode, optionally setting the threshold first. Returns False when
/// `RJIT=0` keeps rjit off.
#[pyfunction]
#[pyo3(signature = (threshold=None))]
fn enable(threshold: Option<u64>) -> PyResult<bool> {
    if let Some(threshold) = threshold {
        state::set_threshold(threshold);
    }
    hook::enable().map_err(|hook::InstallError::Foreign| {
        PyRuntimeError::new_err(
            "rjit.enable(): another PEP 523 frame evaluation function is already installed \
             (a debugger such as pydevd, a profiler, or another JIT); rjit will not replace it. \
             Remove it first, then call rjit.enable() again.",
        )
    })
}

/// Turns off whole-program mode.
#[pyfunction]
fn disable() {
    hook::disable()
}

/// Whether whole-program mode is on.
#[pyfunction]
fn enabled() -> bool {
    hook::enabled()
}

/// The current threshold.
#[pyfunction]
fn threshold() -> u64 {
    state::threshold()
}

/// How `RJIT` set rjit up at import: "default", "autoload" or "off".
#[pyfunction]
fn env_mode() -> &'static str {
    match ENV_MODE.get().copied().unwrap_or(Mode::Default) {
        Mode::Default => "default",
        Mode::Autoload => "autoload",
        Mode::Off => "off",
    }
}

/// Marks a code object for compilation at its first call (`@rjit.jit`).
#[pyfunction]
fn mark_jit(code: &Bound<'_, PyAny>) -> PyResult<()> {
    let code = code_ptr(code)?;
    // SAFETY: `code` is a live code object (borrowed from the argument); GIL held.
    if let Some(entry) = unsafe { state::entry_or_create(code) } {
        entry.force();
    }
    Ok(())
}

/// Marks a code object as never to be compiled (`@rjit.nojit`).
#[pyfunction]
fn mark_nojit(code: &Bound<'_, PyAny>) -> PyResult<()> {
    let code = code_ptr(code)?;
    // SAFETY: as in `mark_jit`.
    if let Some(entry) = unsafe { state::entry_or_create(code) } {
        entry.settle(state::Status::NoJit);
    }
    Ok(())
}

/// What rjit knows about a code object, as a dict (the Python side builds `FunctionInfo`).
#[pyfunction]
fn code_info<'py>(py: Python<'py>, code: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyDict>> {
    let raw = code_ptr(code)?;
    let info = PyDict::new(py);
    // SAFETY: as in `mark_jit`; the entry reference does not outlive this call.
    match unsafe { state::entry_of(raw) } {
        Some(entry) => {
            let status = entry.status();
            info.set_item("seen", true)?;
            info.set_item("state", status.name())?;
            info.set_item("reason", status.reason())?;
            info.set_item("calls", entry.calls())?;
            info.set_item("hot_after", entry.hot_after())?;
            info.set_item("has_loop", entry.has_loop())?;
            info.set_item("forced", entry.is_forced())?;
            let facts = entry.compiled_facts();
            info.set_item("compile_time_us", facts.map(|f| f.0))?;
            info.set_item("code_size", facts.map(|f| f.1))?;
            info.set_item("native_calls", entry.native_calls())?;
            info.set_item("interpreted_calls", entry.interpreted_calls())?;
            let (opcode, line) = match &status {
                state::Status::Declined(state::Decline::Unsupported { opcode, line, .. }) => (*opcode, *line),
                _ => (None, None),
            };
            info.set_item("reason_opcode", opcode)?;
            info.set_item("reason_line", line)?;
            let versions = entry.versions(|compiled, deopts, current| version_dict(py, raw, compiled, deopts, current));
            info.set_item("versions", versions.into_iter().collect::<PyResult<Vec<_>>>()?)?;
        }
        None => {
            info.set_item("seen", false)?;
            info.set_item("state", "cold")?;
            info.set_item("reason", None::<String>)?;
            info.set_item("calls", 0)?;
            // SAFETY: `raw` is a live code object.
            let has_loop = unsafe { cpython::code_has_loop(raw) };
            info.set_item("hot_after", options::hot_after(state::threshold(), has_loop))?;
            info.set_item("has_loop", has_loop)?;
            info.set_item("forced", false)?;
            info.set_item("compile_time_us", None::<f64>)?;
            info.set_item("code_size", None::<usize>)?;
            info.set_item("native_calls", 0)?;
            info.set_item("interpreted_calls", 0)?;
            info.set_item("reason_opcode", None::<&str>)?;
            info.set_item("reason_line", None::<u32>)?;
            info.set_item("versions", PyList::empty(py))?;
        }
    }
    Ok(info)
}

/// The name of an argument kind the specialiser saw.
fn kind_name(kind: hir::specialize::Kind) -> &'static str {
    match kind {
        hir::specialize::INT => "int",
        hir::specialize::FLOAT => "float",
        hir::specialize::BOOL => "bool",
        _ => "object",
    }
}

/// One version of a function's machine code, for `rjit.info`: what it was specialised for,
/// its entry guards, and its side exits with their reasons, lines and counts.
fn version_dict<'py>(
    py: Python<'py>,
    code: *mut pyo3::ffi::PyObject,
    compiled: &compiler::Compiled,
    deopts: &[(u32, u64)],
    current: bool,
) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("current", current)?;
    d.set_item("specialised", compiled.specialised)?;
    d.set_item("compile_time_us", compiled.compile_time_us)?;
    d.set_item("code_size", compiled.size)?;
    d.set_item("address", compiled.address)?;
    let kinds: Option<Vec<&str>> = compiled.facts.as_ref().map(|f| f.args.iter().map(|k| kind_name(*k)).collect());
    d.set_item("arg_kinds", kinds)?;
    let guards: Vec<(u32, String)> =
        compiled.entry_guards.iter().map(|g| (g.arg, g.type_name())).collect();
    d.set_item("entry_guards", guards)?;
    let exits = PyList::empty(py);
    for site in &compiled.deopt_sites {
        let e = PyDict::new(py);
        e.set_item("exit", site.exit)?;
        e.set_item("reason", &site.reason)?;
        e.set_item("offset", site.offset * 2)?;
        // SAFETY: `code` is the live code object the caller holds; GIL held.
        e.set_item("line", unsafe { cpython::code_line(code, site.offset) })?;
        e.set_item("count", deopts.iter().find(|(x, _)| *x == site.exit).map_or(0, |(_, n)| *n))?;
        exits.append(e)?;
    }
    d.set_item("side_exits", exits)?;
    Ok(d)
}

/// Tagged IR lines as a list of `(code unit or None, text)`.
fn lines_list<'py>(py: Python<'py>, lines: &[disasm::Line]) -> PyResult<Bound<'py, PyList>> {
    PyList::new(py, lines.iter().map(|l| (l.unit, l.text.as_str())))
}

/// What `rjit.dis` prints, as data: the generic HIR, the HIR the backend got, its LIR and the
/// machine code in pieces (see `disasm`), or why there is none.
/// `globals` and `builtins`: the function's, so that the IR is rebuilt with the calls the
/// compiler inlined (see `compiler::stages`).
#[pyfunction]
#[pyo3(signature = (code, globals=None, builtins=None))]
fn dis_data<'py>(
    py: Python<'py>,
    code: &Bound<'py, PyAny>,
    globals: Option<&Bound<'py, PyAny>>,
    builtins: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    let raw = code_ptr(code)?;
    let out = PyDict::new(py);
    // SAFETY: as in `mark_jit`; the entry reference does not outlive this call.
    let entry = unsafe { state::entry_of(raw) };
    let compiled = entry.and_then(|e| e.versions(|c, _, current| current.then(|| (c.facts.clone(), c.address, c.marks.clone(), c.machine_code().to_vec()))).pop().flatten());
    let facts = compiled.as_ref().and_then(|c| c.0.clone());
    match compiler::stages(code, facts.as_ref(), globals, builtins)? {
        Err(e) => {
            out.set_item("error", e.to_string())?;
            out.set_item("generic_hir", None::<Vec<(u32, String)>>)?;
            out.set_item("final_hir", None::<Vec<(u32, String)>>)?;
            out.set_item("specialised", false)?;
            out.set_item("lir", None::<Vec<(u32, String)>>)?;
            out.set_item("machine", None::<Vec<u8>>)?;
        }
        Ok(stages) => {
            out.set_item("error", None::<String>)?;
            out.set_item("generic_hir", lines_list(py, &disasm::hir_lines(&stages.generic))?)?;
            out.set_item("final_hir", lines_list(py, &disasm::hir_lines(&stages.final_hir))?)?;
            out.set_item("specialised", stages.specialised)?;
            out.set_item("lir", lines_list(py, &disasm::lir_lines(&stages.lir))?)?;
            match compiled {
                None => out.set_item("machine", None::<Vec<u8>>)?,
                Some((_, address, marks, bytes)) => {
                    let machine = PyDict::new(py);
                    machine.set_item("address", address)?;
                    machine.set_item("size", bytes.len())?;
                    machine.set_item("matches_lir", disasm::matches_marks(&stages.lir, &marks))?;
                    let pieces = PyList::empty(py);
                    for piece in disasm::machine_pieces(&bytes, address, &marks, Some(&stages.lir)) {
                        let p = PyDict::new(py);
                        p.set_item("kind", piece.kind.name())?;
                        p.set_item("block", piece.block)?;
                        p.set_item("label", piece.label)?;
                        p.set_item("unit", piece.unit)?;
                        p.set_item("start", piece.start)?;
                        p.set_item("end", piece.end)?;
                        let insts: Vec<(u32, String, String)> = piece
                            .insts
                            .iter()
                            .map(|i| (i.offset, i.bytes.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(" "), i.text.clone()))
                            .collect();
                        p.set_item("insts", insts)?;
                        pieces.append(p)?;
                    }
                    machine.set_item("pieces", pieces)?;
                    out.set_item("machine", machine)?;
                }
            }
        }
    }
    Ok(out)
}

/// Tests: the live machine-code buffers as `(start, length)` pairs.
#[pyfunction]
fn _code_regions() -> Vec<(usize, usize)> {
    codemem::live_regions()
}

/// Tests: the address and size of a code object's current machine code, or None.
#[pyfunction]
fn _code_address(code: &Bound<'_, PyAny>) -> PyResult<Option<(usize, usize)>> {
    let raw = code_ptr(code)?;
    // SAFETY: as in `mark_jit`.
    let entry = unsafe { state::entry_of(raw) };
    Ok(entry.and_then(|e| e.versions(|c, _, current| current.then_some((c.address, c.size))).pop().flatten()))
}

/// The perf map this process writes when `RJIT_PERF_MAP` is set (None when it is not).
#[pyfunction]
fn perf_map_path() -> Option<String> {
    perfmap::enabled().then(perfmap::path)
}

/// Global counters.
#[pyfunction(name = "stats")]
fn stats_dict(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    let s = stats::snapshot();
    let out = PyDict::new(py);
    out.set_item("enabled", hook::enabled())?;
    out.set_item("threshold", state::threshold())?;
    out.set_item("functions_seen", s.functions_seen)?;
    out.set_item("functions_alive", s.functions_seen - s.functions_freed)?;
    out.set_item("compiled", s.compiled)?;
    out.set_item("compile_time_us", s.compile_time_us)?;
    out.set_item("code_bytes", s.code_bytes)?;
    out.set_item("declined", s.declined.values().sum::<u64>())?;
    let by_reason = PyDict::new(py);
    for (reason, count) in &s.declined {
        by_reason.set_item(reason, count)?;
    }
    out.set_item("declined_by_reason", by_reason)?;
    let by_opcode = PyDict::new(py);
    for (opcode, count) in &s.declined_by_opcode {
        by_opcode.set_item(opcode, count)?;
    }
    out.set_item("declined_by_opcode", by_opcode)?;
    out.set_item("specialised", s.specialised)?;
    out.set_item("deopts", s.deopts)?;
    let by_reason = PyDict::new(py);
    for (reason, count) in &s.deopts_by_reason {
        by_reason.set_item(reason, count)?;
    }
    out.set_item("deopts_by_reason", by_reason)?;
    out.set_item("despecialised", s.despecialised)?;
    out.set_item("recompilations", s.recompiled)?;
    out.set_item("code_memory_in_use", codemem::bytes_in_use())?;
    Ok(out)
}

/// The HIR and LIR of a code object as text (debugging; `rjit.dis` will grow from it):
/// generic, or specialised for a call with the arguments `args` (a tuple), inlining the
/// functions it calls from `globals` (a dict) where it can.
#[pyfunction]
#[pyo3(signature = (code, args=None, globals=None))]
fn dump_ir(code: &Bound<'_, PyAny>, args: Option<Bound<'_, PyTuple>>, globals: Option<Bound<'_, PyAny>>) -> PyResult<String> {
    code_ptr(code)?;
    let _ = crate::numpy::numpy();
    let arrays = args.as_ref().map(|t| t.iter().map(|a| compiler::array_of(a.as_ptr())).collect()).unwrap_or_default();
    let list_items = args.as_ref().map(|t| t.iter().map(|a| compiler::list_item_kind(a.as_ptr())).collect()).unwrap_or_default();
    let kinds = args.map(|t| t.iter().map(|a| compiler::kind_of(a.as_ptr())).collect());
    compiler::dump(code, kinds, arrays, list_items, globals.as_ref())
}

/// Tests and benchmarks: turns type specialisation on or off for functions compiled from now.
#[pyfunction]
fn _set_specialize(on: bool) {
    options::set_specialise(on);
}

/// Tests only: installs or removes a stand-in "foreign" PEP 523 function.
#[pyfunction]
fn _set_foreign_hook_for_tests(on: bool) -> bool {
    hook::set_foreign_hook_for_tests(on)
}

#[pymodule]
fn _rjit(m: &Bound<'_, PyModule>) -> PyResult<()> {
    init().map_err(PyRuntimeError::new_err)?;
    hook::set_depth_limit(native_stack_size());
    compiler::probe_range_iter_layout(m.py());
    compiler::probe_list_iter_layout(m.py());
    compiler::probe_seq_iter_layout(m.py());
    compiler::remember_intrinsics(m.py());
    // Read RJIT_SPECIALIZE, RJIT_DUMP_CODE, RJIT_PERF_MAP and RJIT_LOG now: nothing may read
    // the environment while compiling.
    let _ = options::specialise();
    let _ = options::dump_code_dir();
    perfmap::init_from_env();
    let log_warnings = log::init_from_env();
    let mut env = EnvOptions::from_process();
    env.warnings.extend(log_warnings);
    state::set_threshold(env.threshold);
    let _ = ENV_MODE.set(env.mode);
    if env.mode == Mode::Off {
        hook::kill();
    }
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("env_warnings", env.warnings)?;
    m.add("PYTHON_VERSION_HEX", cpython::shim::layout().python_version_hex)?;
    // SAFETY: GIL held; the shim returns a new reference or NULL with an exception set.
    let jit_function = unsafe { Bound::from_owned_ptr_or_err(m.py(), cpython::shim::rjit_shim_jitfunction_type())? };
    m.add("JitFunction", jit_function)?;
    m.add_function(wrap_pyfunction!(enable, m)?)?;
    m.add_function(wrap_pyfunction!(disable, m)?)?;
    m.add_function(wrap_pyfunction!(enabled, m)?)?;
    m.add_function(wrap_pyfunction!(threshold, m)?)?;
    m.add_function(wrap_pyfunction!(env_mode, m)?)?;
    m.add_function(wrap_pyfunction!(mark_jit, m)?)?;
    m.add_function(wrap_pyfunction!(mark_nojit, m)?)?;
    m.add_function(wrap_pyfunction!(code_info, m)?)?;
    m.add_function(wrap_pyfunction!(stats_dict, m)?)?;
    m.add_function(wrap_pyfunction!(dump_ir, m)?)?;
    m.add_function(wrap_pyfunction!(dis_data, m)?)?;
    m.add_function(wrap_pyfunction!(_code_regions, m)?)?;
    m.add_function(wrap_pyfunction!(_code_address, m)?)?;
    m.add_function(wrap_pyfunction!(perf_map_path, m)?)?;
    m.add_function(wrap_pyfunction!(_set_specialize, m)?)?;
    m.add_function(wrap_pyfunction!(_set_foreign_hook_for_tests, m)?)?;
    Ok(())
}
