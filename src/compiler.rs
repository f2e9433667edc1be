//! The compiler's front door: from a code object to HIR (and, next, to machine code).
//!
//! Reads what the stages need from the code object through its Python attributes (a few
//! microseconds, once per compilation), so the stages themselves work on plain Rust data.

use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::bytecode::{Bytecode, RawCode};
use crate::hir::build::{build, CodeFacts, Unsupported};
use crate::hir::side_exits::{self, DeoptSite, EntryGuard};
use crate::hir::{direct, specialize};
use crate::hir::Function;

/// `co_flags` bits that add argument slots.
const CO_VARARGS: u32 = 0x04;
const CO_VARKEYWORDS: u32 = 0x08;

/// Why a code object was not translated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrontendError {
    /// The bytecode could not be decoded (a bug or a code object built by hand).
    Decode(String),
    /// A construct the compiler does not handle.
    Unsupported(Unsupported),
}

impl std::fmt::Display for FrontendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrontendError::Decode(msg) => write!(f, "bytecode not understood: {msg}"),
            FrontendError::Unsupported(u) => write!(f, "{u}"),

        }
    }
}

/// Decodes `code` and translates it to HIR (with deopt states if `deopt_states`).
pub fn hir_for(code: &Bound<'_, PyAny>, deopt_states: bool) -> PyResult<Result<Function, FrontendError>> {
    let co_code = code.getattr("co_code")?;
    let exception_table = code.getattr("co_exceptiontable")?;
    let line_table = code.getattr("co_linetable")?;
    let raw = RawCode {
        code: co_code.cast::<PyBytes>()?.as_bytes(),
        exception_table: exception_table.cast::<PyBytes>()?.as_bytes(),
        line_table: line_table.cast::<PyBytes>()?.as_bytes(),
        first_line: code.getattr("co_firstlineno")?.extract()?,
    };
    let bytecode = match Bytecode::decode(&raw) {
        Ok(b) => b,
        Err(e) => return Ok(Err(FrontendError::Decode(e.to_string()))),
    };
    let mut facts = code_facts(code)?;
    facts.deopt_states = deopt_states;
    Ok(build(&facts, &bytecode).map_err(FrontendError::Unsupported))
}

/// The builder's view of a code object.
pub fn code_facts(code: &Bound<'_, PyAny>) -> PyResult<CodeFacts> {
    let flags: u32 = code.getattr("co_flags")?.extract()?;
    let argcount: u32 = code.getattr("co_argcount")?.extract()?;
    let kwonly: u32 = code.getattr("co_kwonlyargcount")?.extract()?;
    let nargs = argcount + kwonly + u32::from(flags & CO_VARARGS != 0) + u32::from(flags & CO_VARKEYWORDS != 0);
    // co_nlocalsplus is not exposed to Python: locals, then cells that are not also arguments,
    // then free variables (as `_PyCode_InitLocalsPlus` lays them out).
    let varnames: Vec<String> = code.getattr("co_varnames")?.extract()?;
    let cellvars: Vec<String> = code.getattr("co_cellvars")?.extract()?;
    let freevars: Vec<String> = code.getattr("co_freevars")?.extract()?;
    let cells_apart = cellvars.iter().filter(|c| !varnames.contains(c)).count();
    let nlocalsplus = (varnames.len() + cells_apart + freevars.len()) as u32;
    Ok(CodeFacts { name: code.getattr("co_qualname")?.extract()?, nlocalsplus, nargs, deopt_states: false })
}

/// Machine code for a code object, and what `rjit.info` reports about it.
pub struct Compiled {
    /// Keeps the executable memory alive (freed with the code object's entry).
    _code: crate::backend::current::Code,
    /// The direct entry the machine code calls (`hir::direct`), if it has one.
    _direct: Option<crate::backend::current::Code>,
    /// Other functions' direct entries the machine code calls.
    _other_entries: Vec<crate::backend::current::Code>,
    /// The LOAD_GLOBAL and LOAD_ATTR caches the machine code points into.
    _global_caches: Box<[crate::runtime::GlobalCache]>,
    _attr_caches: Box<[crate::runtime::AttrCache]>,
    pub entry: NativeFn,
    /// Bytes of machine code.
    pub size: usize,
    pub compile_time_us: f64,
    /// Whether the code works on unboxed values (and may deoptimise).
    pub specialised: bool,
    /// Functions (and their code objects) inlined into the code: its guards compare their
    /// addresses, so they are kept alive with it.
    _inlined: Vec<Py<PyAny>>,
    /// Address of the first byte of machine code (the entry).
    pub address: usize,
    /// Where blocks, instructions and exit stubs start in the machine code (`rjit.dis`).
    pub marks: Vec<(crate::backend::Mark, u32)>,
    /// What the specialiser was given (None: compiled without speculation). `rjit.dis`
    /// rebuilds the same IR from it.
    pub facts: Option<specialize::Facts>,
    /// The arguments checked on entry, and the deoptimisation exits with their reasons.
    pub entry_guards: Vec<EntryGuard>,
    pub deopt_sites: Vec<DeoptSite>,
    /// Keeps the code's address range in the registry of live machine code.
    _region: crate::codemem::Region,
}

impl Compiled {
    /// The machine code's bytes (from the entry; `size` of them).
    pub fn machine_code(&self) -> &[u8] {
        &self._code.buffer[self._code.entry.0..self._code.entry.0 + self.size]
    }
}

/// Compiled code's signature: runs the frame to completion and returns its result (a new
/// reference), or NULL with an exception set. "C-unwind": see `cpython::EvalFrameFn`.
pub type NativeFn =
    unsafe extern "C-unwind" fn(*mut pyo3::ffi::PyThreadState, *mut crate::cpython::InterpreterFrame) -> *mut pyo3::ffi::PyObject;

/// Why a function was not compiled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CompileError {
    Frontend(FrontendError),
    /// Reading the code object raised (the exception was cleared).
    Python(String),
    Backend(String),
}

impl std::fmt::Display for CompileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CompileError::Frontend(e) => write!(f, "{e}"),
            CompileError::Python(e) => write!(f, "could not read the code object: {e}"),
            CompileError::Backend(e) => write!(f, "code generation failed: {e}"),
        }
    }
}

/// What the types of a call's arguments say, for the specialiser: `OTHER` unless an exact
/// int fitting 64 bits, an exact float or a bool.
pub fn kind_of(object: *mut pyo3::ffi::PyObject) -> specialize::Kind {
    use pyo3::ffi;
    if object.is_null() {
        return specialize::OTHER;
    }
    // SAFETY: a live object (an argument of the frame being compiled); GIL held.
    unsafe {
        let ty = ffi::Py_TYPE(object);
        if ty == std::ptr::addr_of_mut!(ffi::PyFloat_Type) {
            specialize::FLOAT
        } else if ty == std::ptr::addr_of_mut!(ffi::PyBool_Type) {
            specialize::BOOL
        } else if ty == std::ptr::addr_of_mut!(ffi::PyLong_Type) {
            let mut overflow = 0;
            let _ = ffi::PyLong_AsLongLongAndOverflow(object, &mut overflow);
            if overflow == 0 {
                specialize::INT
            } else {
                specialize::OTHER
            }
        } else {
            specialize::OTHER
        }
    }
}

/// The NumPy array type of an argument, if it is an array rjit accesses natively.
/// The kind of every item of `object` if it is an exact, non-empty list whose items (up to 16
/// of them, spread over it) are all exact floats, or all exact ints (see
/// `specialize::Facts::list_items`).
pub fn list_item_kind(object: *mut pyo3::ffi::PyObject) -> Option<specialize::Kind> {
    use pyo3::ffi;
    // SAFETY: a live object (an argument of the frame being compiled); GIL held. Items are
    // read within the list's size.
    unsafe {
        if ffi::Py_TYPE(object) != std::ptr::addr_of_mut!(ffi::PyList_Type) {
            return None;
        }
        let n = ffi::PyList_GET_SIZE(object);
        if n <= 0 {
            return None;
        }
        let step = (n / 16).max(1);
        let mut kind = None;
        let mut i = 0;
        while i < n {
            let item = ffi::PyList_GET_ITEM(object, i);
            let this = if ffi::Py_TYPE(item) == std::ptr::addr_of_mut!(ffi::PyFloat_Type) {
                specialize::FLOAT
            } else if ffi::Py_TYPE(item) == std::ptr::addr_of_mut!(ffi::PyLong_Type) {
                specialize::INT
            } else {
                return None;
            };
            if kind.is_some_and(|k| k != this) {
                return None;
            }
            kind = Some(this);
            i += step;
        }
        kind
    }
}

pub fn array_of(object: *mut pyo3::ffi::PyObject) -> Option<crate::numpy::ArrayType> {
    // SAFETY: a live object (an argument of the frame being compiled); GIL held.
    unsafe { crate::numpy::array_type(object) }
}

/// The specialiser's view of the constants and names of a code object.
fn specialize_facts(code: &Bound<'_, PyAny>, args: Vec<specialize::Kind>) -> PyResult<specialize::Facts> {
    // NumPy is looked up once a program imported it (array types are recorded from then on).
    let _ = crate::numpy::numpy();
    use pyo3::types::{PyBool, PyFloat, PyInt};
    let mut consts = Vec::new();
    for item in code.getattr("co_consts")?.try_iter()? {
        let item = item?;
        consts.push(if item.is_exact_instance_of::<PyBool>() {
            specialize::ConstValue::Bool(item.extract()?)
        } else if item.is_exact_instance_of::<PyInt>() {
            item.extract::<i64>().map_or(specialize::ConstValue::Other, specialize::ConstValue::Int)
        } else if item.is_exact_instance_of::<PyFloat>() {
            specialize::ConstValue::Float(item.extract()?)
        } else {
            specialize::ConstValue::Other
        });
    }
    let names: Vec<String> = code.getattr("co_names")?.extract()?;
    let range_name = if RANGE_ITER_LAYOUT_OK.load(std::sync::atomic::Ordering::Relaxed) {
        names.iter().position(|n| n == "range").map(|i| i as u32)
    } else {
        None
    };
    let (hints, sequences) = operand_hints(code);
    Ok(specialize::Facts {
        args,
        consts,
        range_name,
        hints,
        sequences,
        intrinsics: Default::default(),
        arrays: Vec::new(),
        list_items: Vec::new(),
        names,
        direct_calls: Default::default(),
        dtype: Default::default(),
        array_results: Default::default(),
        inlined: Vec::new(),
        array_loops: SEQ_ITER_LAYOUT_OK.load(std::sync::atomic::Ordering::Relaxed),
    })
}

/// The operand kinds CPython's specialising interpreter recorded in the code object's
/// quickened bytecode, per code unit (`specialize::Facts::hints`), and the sequences it saw
/// subscripted by an int (`specialize::Facts::sequences`).
fn operand_hints(code: &Bound<'_, PyAny>) -> (Vec<specialize::Kind>, Vec<Option<crate::hir::Sequence>>) {
    use crate::cpython::shim;
    if !code.is_exact_instance_of::<pyo3::types::PyCode>() {
        return (Vec::new(), Vec::new());
    }
    let ptr = code.as_ptr();
    // SAFETY: `ptr` is a live code object; its size is its number of code units; the GIL is
    // held.
    let units = unsafe { pyo3::ffi::Py_SIZE(ptr) };
    let mut raw = vec![0u8; units.max(0) as usize];
    unsafe { shim::rjit_shim_code_hints(ptr.cast(), raw.as_mut_ptr(), units) };
    let kinds = raw
        .iter()
        .map(|&h| match h {
            shim::HINT_INT => specialize::INT,
            shim::HINT_FLOAT => specialize::FLOAT,
            _ => 0,
        })
        .collect();
    let sequences = raw
        .iter()
        .map(|&h| match h {
            shim::HINT_LIST => Some(crate::hir::Sequence::List),
            shim::HINT_TUPLE => Some(crate::hir::Sequence::Tuple),
            _ => None,
        })
        .collect();
    (kinds, sequences)
}

/// Whether `range_iterator` objects have the layout compiled range loops read (CPython 3.11:
/// index, start, step, len after the object header): probed at import (`probe_range_iter_layout`).
static RANGE_ITER_LAYOUT_OK: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Probes the layout of `range_iterator` (at import: it runs Python code, which may switch
/// threads, so it must not run during a compilation).
pub fn probe_range_iter_layout(py: Python<'_>) {
    let probe = || -> PyResult<bool> {
        let it = py.eval(c"iter(range(7, 100, 3))", None, None)?;
        it.call_method0("__next__")?;
        // SAFETY: reads words inside a live range_iterator, after checking its type and size.
        let is_range_iter =
            unsafe { pyo3::ffi::Py_TYPE(it.as_ptr()) == std::ptr::addr_of_mut!(pyo3::ffi::PyRangeIter_Type) };
        if !is_range_iter || it.call_method0("__sizeof__")?.extract::<usize>()? != 48 {
            return Ok(false);
        }
        let words = unsafe {
            let base = it.as_ptr().cast::<i64>();
            [*base.add(2), *base.add(3), *base.add(4), *base.add(5)]
        };
        Ok(words == [1, 7, 3, 31])
    };
    let ok = probe().unwrap_or(false);
    RANGE_ITER_LAYOUT_OK.store(ok, std::sync::atomic::Ordering::Relaxed);
}

/// Whether list iterators have the layout compiled `for` loops read inline (CPython 3.11's
/// `listiterobject`, which no header declares: the index, then the list, after the object
/// header): probed at import (`probe_list_iter_layout`).
static LIST_ITER_LAYOUT_OK: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// See `LIST_ITER_LAYOUT_OK`.
pub fn list_iter_layout_ok() -> bool {
    LIST_ITER_LAYOUT_OK.load(std::sync::atomic::Ordering::Relaxed)
}

/// Probes the layout of `list_iterator` (at import, like `probe_range_iter_layout`).
pub fn probe_list_iter_layout(py: Python<'_>) {
    let probe = || -> PyResult<bool> {
        let list = pyo3::types::PyList::new(py, [10, 20, 30])?;
        let it = list.try_iter()?;
        it.clone().next().transpose()?;
        // SAFETY: reads words inside a live list_iterator, after checking its type and size.
        let is_list_iter = unsafe { pyo3::ffi::Py_TYPE(it.as_ptr()) == std::ptr::addr_of_mut!(pyo3::ffi::PyListIter_Type) };
        if !is_list_iter || it.call_method0("__sizeof__")?.extract::<usize>()? != 32 {
            return Ok(false);
        }
        let words = unsafe {
            let base = it.as_ptr().cast::<i64>();
            [*base.add(2), *base.add(3)]
        };
        Ok(words == [1, list.as_ptr() as i64])
    };
    let ok = probe().unwrap_or(false);
    LIST_ITER_LAYOUT_OK.store(ok, std::sync::atomic::Ordering::Relaxed);
}

/// Whether sequence iterators (`iterator`: what `iter(a)` of an ndarray is) have the layout
/// compiled array loops read (`it_index`, then `it_seq`, after the object header).
static SEQ_ITER_LAYOUT_OK: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Probes the layout of sequence iterators (at import, like `probe_range_iter_layout`).
pub fn probe_seq_iter_layout(py: Python<'_>) {
    let probe = || -> PyResult<bool> {
        let seq = pyo3::types::PyTuple::new(py, [5, 6, 7])?;
        // SAFETY: a new reference (or NULL with an exception set).
        let it = unsafe { Bound::from_owned_ptr_or_err(py, pyo3::ffi::PySeqIter_New(seq.as_ptr()))? };
        it.call_method0("__next__")?;
        // SAFETY: reads words inside a live sequence iterator, after checking its type and size.
        let is_seq_iter = unsafe { pyo3::ffi::Py_TYPE(it.as_ptr()) == std::ptr::addr_of_mut!(pyo3::ffi::PySeqIter_Type) };
        if !is_seq_iter || it.call_method0("__sizeof__")?.extract::<usize>()? != 32 {
            return Ok(false);
        }
        let words = unsafe {
            let base = it.as_ptr().cast::<u8>().add(crate::runtime::SEQ_ITER_INDEX);
            [*base.cast::<usize>(), *base.add(8).cast::<usize>()]
        };
        Ok(words == [1, seq.as_ptr() as usize])
    };
    let ok = probe().unwrap_or(false);
    SEQ_ITER_LAYOUT_OK.store(ok, std::sync::atomic::Ordering::Relaxed);
}

/// Compiles a code object to machine code: bytecode -> HIR -> (specialisation) -> LIR ->
/// registers -> x86-64. `args`: the kinds of the arguments of the call that made it hot, or
/// None to compile without speculation; `arrays`: the NumPy array types among them.
pub fn compile(
    code: &Bound<'_, PyAny>,
    args: Option<Vec<specialize::Kind>>,
    arrays: Vec<Option<crate::numpy::ArrayType>>,
    list_items: Vec<Option<specialize::Kind>>,
    globals: Option<&Bound<'_, PyAny>>,
    builtins: Option<&Bound<'_, PyAny>>,
) -> Result<Compiled, CompileError> {
    use crate::backend::current as target;
    use crate::lir::{lower, regalloc};

    let started = std::time::Instant::now();
    let py_error = |e: PyErr| CompileError::Python(e.to_string());
    let Frontend { hir, specialised: is_specialised, inlined, facts: used_facts, direct, .. } =
        frontend(code, args, arrays, list_items, globals, builtins, None).map_err(py_error)?.map_err(CompileError::Frontend)?;
    let direct = match direct {
        Some(direct) => Some(compile_direct(code, &direct)?),
        None => None,
    };
    #[cfg(debug_assertions)]
    if let Err(errors) = crate::hir::validate::validate(&hir) {
        return Err(CompileError::Backend(format!("invalid HIR: {}", errors.join("; "))));
    }
    let mut global_caches: Box<[crate::runtime::GlobalCache]> =
        (0..lower::global_sites(&hir)).map(|_| crate::runtime::GlobalCache::EMPTY).collect();
    let mut attr_caches: Box<[crate::runtime::AttrCache]> =
        (0..lower::attr_sites(&hir)).map(|_| crate::runtime::AttrCache::EMPTY).collect();
    let mut constants = code_constants(code, global_caches.as_mut_ptr(), attr_caches.as_mut_ptr()).map_err(py_error)?;
    constants.consts.extend(&inlined.consts);
    constants.direct_entry = direct.as_ref().map_or(0, |d| d.buffer.ptr(d.entry) as i64);
    let layout = crate::cpython::shim::layout();
    let lir = lower::lower(&hir, &constants, &layout);
    let alloc = regalloc::allocate(&lir, target::ALLOCATABLE.len() as u8, target::CALLEE_SAVED, target::XMM_ALLOCATABLE);
    let ctx = target::Context {
        layout,
        code_units: constants.code + i64::from(layout.code_code_adaptive),
        eval_breaker: crate::cpython::eval_breaker_address() as i64,
        dealloc: runtime_callee("_Py_Dealloc", crate::cpython::dealloc_address(), false),
        err_occurred: runtime_callee("PyErr_Occurred", pyo3::ffi::PyErr_Occurred as *const () as usize, false),
        eval_breaker_helper: runtime_callee("rjit_rt_eval_breaker", crate::runtime::rjit_rt_eval_breaker as *const () as usize, true),
        eval_frame_default: runtime_callee("_PyEval_EvalFrameDefault", crate::cpython::eval_frame_default_address(), false),
        check_recursion: runtime_callee("_Py_CheckRecursiveCall", crate::cpython::check_recursion_address(), true),
        code_object: constants.code,
        note_deopt: runtime_callee("rjit_note_deopt", crate::state::rjit_note_deopt as *const () as usize, false),
        box_i64: runtime_callee("rjit_rt_box_i64", crate::runtime::rjit_rt_box_i64 as *const () as usize, false),
        box_f64: runtime_callee("rjit_rt_box_f64", crate::runtime::rjit_rt_box_f64 as *const () as usize, false),
        box_bool: runtime_callee("rjit_rt_box_bool", crate::runtime::rjit_rt_box_bool as *const () as usize, false),
        long_as_i64: runtime_callee("PyLong_AsLongLong", pyo3::ffi::PyLong_AsLongLong as *const () as usize, false),
        before_raise_exit: runtime_callee(
            "rjit_shim_before_raise_exit",
            crate::cpython::shim::rjit_shim_before_raise_exit as *const () as usize,
            false,
        ),
        direct: None,
    };
    let mut machine = target::emit(&lir, &alloc, &ctx).map_err(|e| CompileError::Backend(format!("{e:?}")))?;
    let size = machine.size;
    if let Some(dir) = crate::options::dump_code_dir() {
        // Debugging aid: raw machine code per function (`objdump -D -b binary -mi386:x86-64`).
        let name: String = hir.name.chars().map(|c| if c.is_alphanumeric() { c } else { '_' }).collect();
        let bytes = &machine.buffer[machine.entry.0..machine.entry.0 + size];
        let _ = std::fs::write(dir.join(format!("{name}.bin")), bytes);
    }
    let address = machine.buffer.ptr(machine.entry) as usize;
    // SAFETY: the buffer holds a function with the NativeFn signature, starting at `entry`;
    // it stays mapped as long as `Compiled` (which owns it) lives.
    let entry: NativeFn = unsafe { std::mem::transmute(address) };
    let region = crate::codemem::Region::register(address, size);
    if crate::perfmap::enabled() {
        crate::perfmap::record(address, size, &perf_name(code));
    }
    let marks = std::mem::take(&mut machine.marks);
    let (entry_guards, deopt_sites) = if is_specialised {
        (side_exits::entry_guards(&hir), side_exits::deopt_sites(&hir))
    } else {
        (Vec::new(), Vec::new())
    };
    Ok(Compiled {
        _code: machine,
        _direct: direct,
        _other_entries: inlined.direct_entries,
        _global_caches: global_caches,
        _attr_caches: attr_caches,
        entry,
        size,
        compile_time_us: started.elapsed().as_secs_f64() * 1e6,
        specialised: is_specialised,
        _inlined: inlined.objects,
        address,
        marks,
        facts: used_facts,
        entry_guards,
        deopt_sites,
        _region: region,
    })
}

/// Largest direct entry body (HIR instructions) inlined into itself.
const DIRECT_INLINE_MAX_INSTRS: usize = 100;

/// Machine code for the direct entry of a code object (`hir::direct`), from its HIR.
fn compile_direct(code: &Bound<'_, PyAny>, hir: &Function) -> Result<crate::backend::current::Code, CompileError> {
    use crate::backend::current as target;
    use crate::lir::{lower, regalloc, Inst};
    let py_error = |e: PyErr| CompileError::Python(e.to_string());
    let constants = code_constants(code, std::ptr::null_mut(), std::ptr::null_mut()).map_err(py_error)?;
    let layout = crate::cpython::shim::layout();
    // Two levels of the recursion per call, unless that makes too much code.
    let size: usize = hir.blocks.iter().map(|b| b.instrs.len()).sum();
    let recursive = direct::has_direct_calls(hir);
    let (hir, levels) =
        if recursive && size <= DIRECT_INLINE_MAX_INSTRS { (direct::inline_self_once(hir), 2) } else { (hir.clone(), 1) };
    let hir = &hir;
    let mut lir = lower::lower(hir, &constants, &layout);
    // No frame: the line of a return is nobody's business.
    for block in &mut lir.blocks {
        block.insts.retain(|i| !matches!(i, Inst::SetPrevInstr { .. }));
    }
    let nargs = code_facts(code).map_err(py_error)?.nargs;
    let alloc = regalloc::allocate(&lir, target::ALLOCATABLE.len() as u8, target::CALLEE_SAVED, target::XMM_ALLOCATABLE);
    let unused = runtime_callee("unused", 0, false);
    let ctx = target::Context {
        layout,
        code_units: 0,
        eval_breaker: crate::cpython::eval_breaker_address() as i64,
        dealloc: unused,
        err_occurred: unused,
        eval_breaker_helper: unused,
        eval_frame_default: unused,
        check_recursion: unused,
        code_object: constants.code,
        note_deopt: unused,
        box_i64: unused,
        box_f64: unused,
        box_bool: unused,
        long_as_i64: unused,
        before_raise_exit: unused,
        direct: Some(target::DirectEntry { nargs, levels }),
    };
    let machine = target::emit(&lir, &alloc, &ctx).map_err(|e| CompileError::Backend(format!("direct entry: {e:?}")))?;
    if let Some(dir) = crate::options::dump_code_dir() {
        // Debugging aid, as for the frame entry.
        let name: String = hir.name.chars().map(|c| if c.is_alphanumeric() { c } else { '_' }).collect();
        let bytes = &machine.buffer[machine.entry.0..machine.entry.0 + machine.size];
        let _ = std::fs::write(std::path::Path::new(&dir).join(format!("{name}.direct.bin")), bytes);
    }
    Ok(machine)
}

/// The calls in `func` of the function being compiled through a global of `globals` (the
/// global is, at compile time, a plain function running `code` with `globals`), with all its
/// arguments (see `hir::direct`), by result, with the global's name.
fn find_self_calls(
    func: &Function,
    code: &Bound<'_, PyAny>,
    globals: &Bound<'_, PyAny>,
) -> PyResult<crate::hashing::HashMap<crate::hir::ValueId, String>> {
    let argcount: usize = code.getattr("co_argcount")?.extract()?;
    if !simple_signature(code, argcount)? {
        return Ok(Default::default());
    }
    let mut found = crate::hashing::HashMap::default();
    for (r, name, nargs, f) in global_function_calls(func, code, globals)? {
        if f.getattr("__code__")?.is(code) && nargs == argcount {
            found.insert(r, name);
        }
    }
    Ok(found)
}

/// The calls `name(args...)` in `func` (positional arguments only) of a global of `globals`
/// that is, at compile time, a plain Python function with those globals: by result, the
/// name, the number of arguments and the function.
fn global_function_calls<'py>(
    func: &Function,
    code: &Bound<'py, PyAny>,
    globals: &Bound<'py, PyAny>,
) -> PyResult<Vec<(crate::hir::ValueId, String, usize, Bound<'py, PyAny>)>> {
    use crate::hir::Op;
    let mut found = Vec::new();
    let Ok(dict) = globals.cast::<pyo3::types::PyDict>() else { return Ok(found) };
    let names: Vec<String> = code.getattr("co_names")?.extract()?;
    let defs = func.defining_ops();
    for instr in func.blocks.iter().flat_map(|b| &b.instrs) {
        let (Op::Call { method, callable, args, kwnames: None }, Some(r)) = (&instr.op, instr.result) else { continue };
        let (Some(Op::Null), Some(Op::LoadGlobal { name })) = (defs.get(method), defs.get(callable)) else { continue };
        let name = &names[*name as usize];
        let Some(f) = dict.get_item(name)? else { continue };
        // SAFETY: reads the type of a live object.
        let is_function = unsafe { pyo3::ffi::Py_TYPE(f.as_ptr()) == std::ptr::addr_of_mut!(pyo3::ffi::PyFunction_Type) };
        if is_function && f.getattr("__globals__")?.is(globals) {
            found.push((r, name.clone(), args.len(), f));
        }
    }
    Ok(found)
}

/// Calls in `caller` of *other* functions of the same globals that have a direct entry for
/// the kinds of the arguments at the call (Python ints and floats: `hir::direct`), compiled
/// now. Adds them to `facts.direct_calls`, and the entries and callees' code objects (the
/// call's guard compares its address) to `added`. The callee's entry must not need guards of
/// its own: the caller's guard on the callee is all that is checked before the call (a
/// recursive callee's calls of itself go through the same global, which that guard checked,
/// and no Python code runs in the chain to rebind it).
fn add_other_direct_calls(
    caller: &Function,
    facts: &mut specialize::Facts,
    code: &Bound<'_, PyAny>,
    globals: &Bound<'_, PyAny>,
    builtins: Option<&Bound<'_, PyAny>>,
    added: &mut Inlining,
) -> PyResult<()> {
    let calls = global_function_calls(caller, code, globals)?;
    let calls: Vec<_> = calls
        .into_iter()
        .filter(|(r, _, _, f)| !facts.direct_calls.contains_key(r) && !f.getattr("__code__").is_ok_and(|c| c.is(code)))
        .collect();
    if calls.is_empty() {
        return Ok(());
    }
    let kinds = specialize::value_kinds(caller, facts);
    let defs = caller.defining_ops();
    // One entry per callee and argument kinds.
    type Entry = Option<(i64, specialize::Kind, Vec<(String, i64)>)>;
    let mut entries: crate::hashing::HashMap<(usize, String, Vec<specialize::Kind>), Entry> = Default::default();
    for (r, name, _, function) in calls {
        let Some(crate::hir::Op::Call { args, .. }) = defs.get(&r) else { continue };
        let arg_kinds: Vec<specialize::Kind> = args.iter().map(|a| kinds.get(a.index()).copied().unwrap_or(0)).collect();
        if arg_kinds.is_empty() || !arg_kinds.iter().all(|&k| k == specialize::INT || k == specialize::FLOAT) {
            continue;
        }
        let callee_code = function.getattr("__code__")?;
        let key = (callee_code.as_ptr() as usize, name.clone(), arg_kinds.clone());
        let entry = match entries.get(&key) {
            Some(entry) => entry.clone(),
            None => {
                let entry = other_direct_entry(&callee_code, &name, &arg_kinds, globals, builtins)?.map(|entry| {
                    let address = entry.machine.buffer.ptr(entry.machine.entry) as i64;
                    added.direct_entries.push(entry.machine);
                    added.objects.push(callee_code.clone().unbind());
                    added.objects.extend(entry.objects);
                    (address, entry.returns, entry.requires)
                });
                entries.insert(key, entry.clone());
                entry
            }
        };
        let Some((target, returns, requires)) = entry else { continue };
        // The caller checks the globals the entry relies on through its own names.
        let requires: Option<Vec<(u32, i64)>> = requires
            .iter()
            .map(|(n, expected)| facts.names.iter().position(|m| m == n).map(|i| (i as u32, *expected)))
            .collect();
        let Some(requires) = requires else { continue };
        let code = callee_code.as_ptr() as i64;
        facts.direct_calls.insert(r, specialize::DirectCall { code, args: arg_kinds, returns, target, requires });
    }
    Ok(())
}

/// The direct entry of `code` (another function, called through the global `name` of
/// `globals`) for arguments of kinds `args`, with the kind of its result and the globals it
/// relies on (by name: `direct::Requirement`), if it has one that needs no guard on other
/// functions (see `add_other_direct_calls`).
fn other_direct_entry(
    code: &Bound<'_, PyAny>,
    name: &str,
    args: &[specialize::Kind],
    globals: &Bound<'_, PyAny>,
    builtins: Option<&Bound<'_, PyAny>>,
) -> PyResult<Option<OtherEntry>> {
    if !plain_positional(code, args.len())? {
        return Ok(None);
    }
    let others = CallsOfOthers { inline: false, direct: false };
    let frontend = match frontend_inlining(code, Some(args.to_vec()), Vec::new(), Vec::new(), Some(globals), builtins, others, None)? {
        Ok(Some(f)) if f.specialised && f.inlined.consts.is_empty() => f,
        _ => return Ok(None),
    };
    let own = code.as_ptr() as i64;
    let (body, returns, requirements) = match frontend.direct {
        // Recursive: its calls of itself must be through the global the caller checks.
        Some(body) => {
            if frontend.self_call_names.iter().any(|n| n != name) {
                return Ok(None);
            }
            let facts = frontend.facts.as_ref().expect("specialised with facts");
            let Some(call) = facts.direct_calls.values().find(|c| c.target == 0) else { return Ok(None) };
            (body, call.returns, frontend.direct_requires)
        }
        None => {
            let found = [(crate::hir::Type::I64, specialize::INT), (crate::hir::Type::F64, specialize::FLOAT)]
                .into_iter()
                .find_map(|(ty, kind)| direct::direct_variant(&frontend.hir, ty, own).map(|(body, r)| (body, kind, r)));
            let Some(found) = found else { return Ok(None) };
            found
        }
    };
    let names: Vec<String> = code.getattr("co_names")?.extract()?;
    let requires = requirements.iter().map(|r| (names[r.name as usize].clone(), r.expected)).collect();
    // The objects its guards compare by address (builtins, math functions) stay alive with
    // the caller's code, so no other object can take their addresses.
    let objects = frontend.inlined.objects;
    match compile_direct(code, &body) {
        Ok(machine) => Ok(Some(OtherEntry { machine, returns, requires, objects })),
        Err(_) => Ok(None),
    }
}

/// Another function's direct entry (`other_direct_entry`).
struct OtherEntry {
    machine: crate::backend::current::Code,
    returns: specialize::Kind,
    /// The globals it relies on, by name, with the objects they must be.
    requires: Vec<(String, i64)>,
    /// Objects to keep alive with the code calling it.
    objects: Vec<Py<PyAny>>,
}

/// Whether a call with `nargs` positional arguments binds them, in order, to a plain
/// function's parameters (no `*args`, `**kwargs`, keyword-only parameters, cells or
/// generator).
fn plain_positional(code: &Bound<'_, PyAny>, nargs: usize) -> PyResult<bool> {
    const NOT_PLAIN: u32 = CO_VARARGS | CO_VARKEYWORDS | 0x20 | 0x80 | 0x100 | 0x200;
    let flags: u32 = code.getattr("co_flags")?.extract()?;
    let argcount: usize = code.getattr("co_argcount")?.extract()?;
    let kwonly: usize = code.getattr("co_kwonlyargcount")?.extract()?;
    let cells: usize = code.getattr("co_cellvars")?.len()? + code.getattr("co_freevars")?.len()?;
    Ok(flags & NOT_PLAIN == 0 && argcount == nargs && kwonly == 0 && cells == 0)
}

/// What inlining (and direct calls of other functions) added to a function: the callees'
/// constants (addresses, appended to the caller's `co_consts` in the constant tables), the
/// objects and the machine code to keep alive.
#[derive(Default)]
struct Inlining {
    consts: Vec<i64>,
    objects: Vec<Py<PyAny>>,
    /// Code units of the calls inlined.
    call_ats: Vec<u32>,
    /// The direct entries of other functions the code calls (`add_other_direct_calls`).
    direct_entries: Vec<crate::backend::current::Code>,
}

/// Whether an inlined callee's body kept an operation that can raise where the caller was
/// specialised (the caller knows its arguments' kinds better than the check of the callee
/// did, e.g. a NumPy scalar loaded generically): its exception would be raised in the
/// caller's frame, without the callee's in the traceback. The caller is then compiled
/// without inlining.
fn inlined_body_generic(hir: &Function, inlined: &Inlining) -> bool {
    !inlined.call_ats.is_empty()
        && hir
            .blocks
            .iter()
            .flat_map(|b| &b.instrs)
            .any(|i| inlined.call_ats.contains(&i.at) && i.exit.is_some() && !i.op.is_machine())
}

/// Largest callee (HIR instructions) inlined.
const INLINE_MAX_INSTRS: usize = 200;

/// Inlines into `caller` the calls `name(args...)` of a global Python function that, for the
/// kinds of the arguments at the call, runs machine operations only (see `hir::inline`).
/// `facts.consts` grows with the callees' constants, as `Inlining::consts` does.
fn inline_pure_calls(
    caller: &mut Function,
    facts: &mut specialize::Facts,
    code: &Bound<'_, PyAny>,
    globals: &Bound<'_, PyAny>,
) -> PyResult<Inlining> {
    use crate::hir::{inline, Op};
    let mut inlining = Inlining::default();
    let Ok(globals) = globals.cast::<pyo3::types::PyDict>() else { return Ok(inlining) };
    let names: Vec<String> = code.getattr("co_names")?.extract()?;
    let kinds = specialize::value_kinds(caller, facts);
    let defs = caller.defining_ops();
    let mut sites = Vec::new();
    for (b, block) in caller.blocks.iter().enumerate() {
        for (i, instr) in block.instrs.iter().enumerate() {
            let Op::Call { method, callable, args, kwnames: None } = &instr.op else { continue };
            let (Some(Op::Null), Some(Op::LoadGlobal { name })) = (defs.get(method), defs.get(callable)) else { continue };
            let arg_kinds: Option<Vec<specialize::Kind>> =
                args.iter().map(|a| kinds.get(a.index()).copied().and_then(specialize::numeric_bound)).collect();
            if let (Some(arg_kinds), Some(name)) = (arg_kinds, names.get(*name as usize)) {
                sites.push((b, i, name.clone(), arg_kinds));
            }
        }
    }
    // Last first, so the positions of the sites before stay valid.
    for (b, i, name, arg_kinds) in sites.into_iter().rev() {
        let Some(func) = globals.get_item(&name)? else { continue };
        // SAFETY: reads the type of a live object.
        let is_function = unsafe { pyo3::ffi::Py_TYPE(func.as_ptr()) == std::ptr::addr_of_mut!(pyo3::ffi::PyFunction_Type) };
        if !is_function || !func.getattr("__closure__")?.is_none() {
            continue;
        }
        let callee_code = func.getattr("__code__")?;
        if callee_code.is(code) || !simple_signature(&callee_code, arg_kinds.len())? {
            continue;
        }
        let Ok(callee) = hir_for(&callee_code, true)? else { continue };
        if callee.blocks.iter().map(|b| b.instrs.len()).sum::<usize>() > INLINE_MAX_INSTRS {
            continue;
        }
        let callee_facts = specialize_facts(&callee_code, arg_kinds)?;
        let Some(spec) = specialize::specialize(&callee, &callee_facts) else { continue };
        if !inline::is_pure_machine(&callee, &spec) {
            continue;
        }
        let const_base = facts.consts.len() as u32;
        let (func_addr, code_addr) = (func.as_ptr() as i64, callee_code.as_ptr() as i64);
        let at = caller.blocks[b].instrs[i].at;
        if inline::inline_call(caller, b, i, &callee, func_addr, code_addr, const_base) {
            inlining.call_ats.push(at);
            facts.consts.extend(callee_facts.consts);
            for item in callee_code.getattr("co_consts")?.try_iter()? {
                // The callee's code object (kept alive) owns its constants.
                inlining.consts.push(item?.as_ptr() as i64);
            }
            // The function itself, as a constant (kept alive below).
            let constant = facts.consts.len() as u32;
            facts.consts.push(specialize::ConstValue::Other);
            inlining.consts.push(func_addr);
            facts.inlined.push(crate::hir::hoist_inlined::Inlined { func: func_addr, code: code_addr, constant });
            inlining.objects.push(func.unbind());
            inlining.objects.push(callee_code.unbind());
        }
    }
    Ok(inlining)
}

/// The builtins and `math` functions compiled as machine code, and the `math` module, as they
/// were when rjit was imported (`remember_intrinsics`): compiling looks nothing up through
/// Python (a patched `__import__` or module would see it), it compares objects with these.
struct KnownIntrinsics {
    math: Option<Py<PyAny>>,
    /// (attribute of `math` or name of a builtin, object, what it computes)
    functions: Vec<(&'static str, bool, Py<PyAny>, specialize::Intrinsic)>,
}

static KNOWN_INTRINSICS: std::sync::OnceLock<KnownIntrinsics> = std::sync::OnceLock::new();

/// Records the intrinsics (at import, with the GIL held).
pub fn remember_intrinsics(py: Python<'_>) {
    use crate::hir::{MathFn, Rounding};
    use specialize::Intrinsic;
    let mut functions = Vec::new();
    let math = py.import("math").ok();
    if let Some(math) = &math {
        let math_fns = [
            ("sqrt", Intrinsic::Math(MathFn::Sqrt)),
            ("exp", Intrinsic::Math(MathFn::Exp)),
            ("log", Intrinsic::Math(MathFn::Log)),
            ("log2", Intrinsic::Math(MathFn::Log2)),
            ("log10", Intrinsic::Math(MathFn::Log10)),
            ("sin", Intrinsic::Math(MathFn::Sin)),
            ("cos", Intrinsic::Math(MathFn::Cos)),
            ("tan", Intrinsic::Math(MathFn::Tan)),
            ("atan", Intrinsic::Math(MathFn::Atan)),
            ("tanh", Intrinsic::Math(MathFn::Tanh)),
            ("fabs", Intrinsic::Math(MathFn::Fabs)),
            ("floor", Intrinsic::Round(Rounding::Floor)),
            ("ceil", Intrinsic::Round(Rounding::Ceil)),
            ("isnan", Intrinsic::IsNan),
            ("isinf", Intrinsic::IsInf),
            ("atan2", Intrinsic::Math2(crate::hir::MathFn2::Atan2)),
            ("pow", Intrinsic::Math2(crate::hir::MathFn2::Pow)),
            ("hypot", Intrinsic::Math2(crate::hir::MathFn2::Hypot)),
        ];
        for (name, which) in math_fns {
            if let Ok(f) = math.getattr(name) {
                functions.push((name, true, f.unbind(), which));
            }
        }
    }
    if let Ok(builtins) = py.import("builtins") {
        let builtin_fns = [
            ("abs", Intrinsic::Abs),
            ("float", Intrinsic::Float),
            ("int", Intrinsic::Int),
            ("bool", Intrinsic::Bool),
            ("round", Intrinsic::Round(Rounding::HalfEven)),
            ("min", Intrinsic::Min),
            ("max", Intrinsic::Max),
            ("pow", Intrinsic::Pow),
            ("len", Intrinsic::Len),
            ("divmod", Intrinsic::DivMod),
            // The class is filled in per call (`find_intrinsics`).
            ("isinstance", Intrinsic::IsInstance(0)),
        ];
        for (name, which) in builtin_fns {
            if let Ok(f) = builtins.getattr(name) {
                functions.push((name, false, f.unbind(), which));
            }
        }
    }
    let _ = KNOWN_INTRINSICS.set(KnownIntrinsics { math: math.map(|m| m.into_any().unbind()), functions });
    remember_float_cfunctions(py);
}

/// The `PyMethodDef`s of builtins known to run no Python code and to return an exact float
/// (or raise): `random.random` and the clocks of `time`. A call of one needs no write of the
/// caller's locals to its frame (nothing can look at them) and its result is unboxed at once
/// (behind a class guard all the same). Recorded at import: compiling imports nothing.
static FLOAT_CFUNCTIONS: std::sync::OnceLock<Vec<usize>> = std::sync::OnceLock::new();

fn remember_float_cfunctions(py: Python<'_>) {
    let mut defs = Vec::new();
    let mut note = |object: PyResult<Bound<'_, PyAny>>| {
        if let Ok(object) = object {
            if let Some((def, 0)) = cfunction_def(&object) {
                defs.push(def);
            }
        }
    };
    // The method of the C base class every `random.Random` inherits `random` from (the
    // module-level `random.random` is that method bound to a hidden instance).
    if let Ok(random) = py.import("_random") {
        note(random.getattr("Random").and_then(|class| class.call0()).and_then(|r| r.getattr("random")));
    }
    if let Ok(time) = py.import("time") {
        for name in ["time", "perf_counter", "monotonic", "process_time", "thread_time"] {
            note(time.getattr(name));
        }
    }
    let _ = FLOAT_CFUNCTIONS.set(defs);
}

/// The `PyMethodDef` address and argument count of a builtin function or method taking none
/// (METH_NOARGS) or one (METH_O), which compiled code calls straight through its C function.
fn cfunction_def(object: &Bound<'_, PyAny>) -> Option<(usize, u8)> {
    let mut nargs = 0;
    // SAFETY: a live object; GIL held.
    let def = unsafe { crate::cpython::shim::rjit_shim_cfunction_def(object.as_ptr(), &mut nargs) };
    (!def.is_null()).then_some((def as usize, nargs as u8))
}

/// The calls of `func` of one argument whose callable is, at compile time, a builtin or
/// `math` function compiled as machine code (`abs(x)` through a global or the builtins,
/// `math.sqrt(x)` through a global that is the `math` module). Only dictionaries are read;
/// the callable is checked at run time (the attribute may have been replaced).
fn find_intrinsics(
    func: &Function,
    code: &Bound<'_, PyAny>,
    globals: &Bound<'_, PyAny>,
    builtins: Option<&Bound<'_, PyAny>>,
    keep_alive: &mut Vec<Py<PyAny>>,
) -> PyResult<crate::hashing::HashMap<crate::hir::ValueId, specialize::IntrinsicCall>> {
    use crate::hir::Op;
    use specialize::IntrinsicCall;
    let py = code.py();
    let mut found = crate::hashing::HashMap::default();
    let (Some(known), Ok(globals)) = (KNOWN_INTRINSICS.get(), globals.cast::<pyo3::types::PyDict>()) else {
        return Ok(found);
    };
    let builtins = builtins.and_then(|b| b.cast::<pyo3::types::PyDict>().ok());
    // A global, else a builtin (as LOAD_GLOBAL finds it).
    let lookup = |name: &str| -> PyResult<Option<Bound<'_, PyAny>>> {
        if let Some(v) = globals.get_item(name)? {
            return Ok(Some(v));
        }
        match builtins {
            Some(b) => b.get_item(name),
            None => Ok(None),
        }
    };
    let names: Vec<String> = code.getattr("co_names")?.extract()?;
    let defs = func.defining_ops();
    let numpy = crate::numpy::numpy();
    for instr in func.blocks.iter().flat_map(|b| &b.instrs) {
        let (Op::Call { method, callable, args, kwnames: None }, Some(r)) = (&instr.op, instr.result) else { continue };
        if args.len() > 2 || !matches!(defs.get(method), Some(Op::Null)) {
            continue;
        }
        // NumPy ufuncs: `np.tanh(x)` through a global that is the numpy module, or a global
        // that is the ufunc itself (`from numpy import tanh`).
        if let Some(np) = numpy {
            let object = match defs.get(callable) {
                Some(Op::LoadGlobal { name }) => lookup(&names[*name as usize])?,
                Some(Op::LoadAttr { obj, name }) => match defs.get(obj) {
                    Some(Op::LoadGlobal { name: module }) => match lookup(&names[*module as usize])? {
                        Some(m) if m.as_ptr() as usize == np.module => {
                            m.cast::<pyo3::types::PyModule>().ok().map(|m| m.dict()).map(|d| d.get_item(&names[*name as usize])).transpose()?.flatten()
                        }
                        _ => None,
                    },
                    _ => None,
                },
                _ => None,
            };
            if let Some(which) = object.as_ref().and_then(numpy_intrinsic).filter(|w| w.arity() == args.len()) {
                let object = object.expect("found");
                pin(&object);
                found.insert(r, IntrinsicCall { which, callable: object.as_ptr() as i64 });
                continue;
            }
        }
        let known_function = match defs.get(callable) {
            // `abs(x)`: the object found must be the builtin itself.
            Some(Op::LoadGlobal { name }) => match lookup(&names[*name as usize])? {
                Some(object) => known.functions.iter().find(|(_, in_math, f, _)| !in_math && f.bind(py).is(&object)),
                None => None,
            },
            // `math.sqrt(x)`: the global must be the math module; the attribute is guarded.
            Some(Op::LoadAttr { obj, name }) => match (defs.get(obj), &known.math) {
                (Some(Op::LoadGlobal { name: module }), Some(math)) => match lookup(&names[*module as usize])? {
                    Some(m) if m.is(math.bind(py)) => {
                        known.functions.iter().find(|(n, in_math, _, _)| *in_math && *n == names[*name as usize])
                    }
                    _ => None,
                },
                _ => None,
            },
            _ => None,
        };
        if known_function.is_none() {
            // A builtin taking no argument or one, called straight through its C function
            // (`random.random()`): a global, or an attribute of a module held by a global.
            let object = match defs.get(callable) {
                Some(Op::LoadGlobal { name }) => lookup(&names[*name as usize])?,
                Some(Op::LoadAttr { obj, name }) => match defs.get(obj) {
                    Some(Op::LoadGlobal { name: module }) => match lookup(&names[*module as usize])? {
                        Some(m) => match m.cast::<pyo3::types::PyModule>() {
                            Ok(m) => m.dict().get_item(&names[*name as usize])?,
                            Err(_) => None,
                        },
                        None => None,
                    },
                    _ => None,
                },
                _ => None,
            };
            if let Some((object, (def, nargs))) = object.and_then(|o| cfunction_def(&o).map(|d| (o, d))) {
                if usize::from(nargs) == args.len() {
                    let float = FLOAT_CFUNCTIONS.get().is_some_and(|defs| defs.contains(&def));
                    found.insert(r, IntrinsicCall { which: specialize::Intrinsic::CFunction { nargs, float }, callable: object.as_ptr() as i64 });
                    // Guarded by address: kept alive with the code (so is its PyMethodDef).
                    keep_alive.push(object.unbind());
                }
                continue;
            }
        }
        if let Some((_, _, object, which)) = known_function.filter(|f| f.3.arity() == args.len()) {
            let which = match which {
                // `isinstance(x, T)` with T a global or builtin naming a builtin type (its
                // address: static), checked at run time like the callable.
                specialize::Intrinsic::IsInstance(_) => {
                    let Some(Op::LoadGlobal { name }) = defs.get(&args[1]) else { continue };
                    let Some(class) = lookup(&names[*name as usize])? else { continue };
                    let class = class.as_ptr() as i64;
                    if !crate::runtime::isinstance_classes().contains(&class) {
                        continue;
                    }
                    specialize::Intrinsic::IsInstance(class)
                }
                other => *other,
            };
            // Kept alive by KNOWN_INTRINSICS for the life of the process.
            found.insert(r, IntrinsicCall { which, callable: object.as_ptr() as i64 });
        }
    }
    Ok(found)
}

/// NumPy ufuncs of one float compiled through their own float64 loop.
const UFUNCS_1: &[&str] = &[
    "tanh", "sqrt", "exp", "log", "sin", "cos", "tan", "arctan", "arcsin", "arccos", "sinh", "cosh", "arcsinh",
    "arccosh", "arctanh", "log2", "log10", "log1p", "expm1", "exp2", "cbrt", "floor", "ceil", "trunc", "rint", "fabs",
];
/// NumPy ufuncs of two floats, likewise.
const UFUNCS_2: &[&str] = &["minimum", "maximum", "fmin", "fmax", "arctan2", "hypot", "copysign", "power"];

/// What a NumPy ufunc computes as an intrinsic, if rjit compiles it.
fn numpy_intrinsic(object: &Bound<'_, PyAny>) -> Option<specialize::Intrinsic> {
    use specialize::Intrinsic;
    // SAFETY: a live object; GIL held. A ufunc's loop tables are NumPy's static data.
    let name = unsafe { crate::numpy::ufunc_name(object.as_ptr()) }?;
    let nin = match name.as_str() {
        "absolute" => return Some(Intrinsic::NpAbs),
        "isnan" => return Some(Intrinsic::NpIsNan),
        n if UFUNCS_1.contains(&n) => 1,
        n if UFUNCS_2.contains(&n) => 2,
        _ => return None,
    };
    unsafe { crate::numpy::float64_loop(object.as_ptr(), nin) }.map(Intrinsic::Ufunc)
}

/// Keeps an object compiled code compares with by address alive for good (a ufunc deleted
/// from its module must not have its address reused by another object), once.
pub(crate) fn pin(object: &Bound<'_, PyAny>) {
    static PINNED: std::sync::Mutex<Vec<usize>> = std::sync::Mutex::new(Vec::new());
    let address = object.as_ptr() as usize;
    let mut pinned = PINNED.lock().unwrap_or_else(|e| e.into_inner());
    if !pinned.contains(&address) {
        pinned.push(address);
        std::mem::forget(object.clone().unbind());
    }
}

/// Whether a code object takes exactly `nargs` positional arguments and has no other local
/// slots (no local variables, cells or free variables, no `*args`/`**kwargs`), and is a plain
/// function (not a generator or coroutine).
fn simple_signature(code: &Bound<'_, PyAny>, nargs: usize) -> PyResult<bool> {
    let nlocals: usize = code.getattr("co_nlocals")?.extract()?;
    Ok(nlocals == nargs && plain_positional(code, nargs)?)
}

/// The HIR the backend gets for a code object: specialised with `facts` where that applies,
/// else generic (without deopt states). Returns whether it is specialised. `rjit.dis` rebuilds
/// the compiled code's IR with it (without inlined calls: `compile` adds those first, and a
/// listing whose LIR no longer matches the machine code's marks is labelled by position).
pub fn final_hir(
    code: &Bound<'_, PyAny>,
    facts: Option<&specialize::Facts>,
) -> PyResult<Result<(Function, bool), FrontendError>> {
    let generic = match hir_for(code, facts.is_some())? {
        Ok(generic) => generic,
        Err(e) => return Ok(Err(e)),
    };
    Ok(Ok(match facts.and_then(|facts| specialize::specialize(&generic, facts)) {
        Some(mut hir) => {
            // As `frontend` made it when it calls its direct entry.
            if direct::has_direct_calls(&hir) {
                direct::drop_checks_after_direct_calls(&mut hir);
            }
            (hir, true)
        }
        None => (without_deopt_states(generic), false),
    }))
}

/// The name `perf report` shows for a compiled function: `rjit:qualname (file:line)`.
fn perf_name(code: &Bound<'_, PyAny>) -> String {
    let attr = |name: &str| code.getattr(name).map(|v| v.to_string()).unwrap_or_else(|_| "?".into());
    format!("rjit:{} ({}:{})", attr("co_qualname"), attr("co_filename"), attr("co_firstlineno"))
}

/// The pipeline's stages for `rjit.dis`, rebuilt from what the compiler was given: the generic
/// HIR, the HIR the backend got, and its LIR (block for block the LIR the machine code was
/// made from).
pub struct Stages {
    pub generic: Function,
    pub final_hir: Function,
    pub specialised: bool,
    pub lir: crate::lir::Func,
}

/// Rebuilds the stages of a compilation with `facts` (None: generic).
///
/// With the function's `globals` (and builtins), the compiler's front end runs again as it
/// did for the machine code, inlining included, on the interpreter's profile it had then;
/// what it finds through the globals (callees, intrinsics) is as they are now. Without them
/// (a code object alone), the calls it inlined stay calls.
pub fn stages(
    code: &Bound<'_, PyAny>,
    facts: Option<&specialize::Facts>,
    globals: Option<&Bound<'_, PyAny>>,
    builtins: Option<&Bound<'_, PyAny>>,
) -> PyResult<Result<Stages, FrontendError>> {
    let generic = match hir_for(code, false)? {
        Ok(generic) => generic,
        Err(e) => return Ok(Err(e)),
    };
    let (final_hir, specialised, inlined_consts) = match (facts, globals) {
        (Some(facts), Some(globals)) => {
            let (args, arrays, list_items) = (Some(facts.args.clone()), facts.arrays.clone(), facts.list_items.clone());
            let again = frontend(code, args, arrays, list_items, Some(globals), builtins, Some(facts))?;
            match again {
                Ok(f) => (f.hir, f.specialised, f.inlined.consts),
                Err(e) => return Ok(Err(e)),
            }
        }
        _ => match final_hir(code, facts)? {
            Ok((hir, specialised)) => (hir, specialised, Vec::new()),
            Err(e) => return Ok(Err(e)),
        },
    };
    let mut caches: Vec<crate::runtime::GlobalCache> =
        (0..crate::lir::lower::global_sites(&final_hir)).map(|_| crate::runtime::GlobalCache::EMPTY).collect();
    let mut attr_caches: Vec<crate::runtime::AttrCache> =
        (0..crate::lir::lower::attr_sites(&final_hir)).map(|_| crate::runtime::AttrCache::EMPTY).collect();
    let mut constants = code_constants(code, caches.as_mut_ptr(), attr_caches.as_mut_ptr())?;
    constants.consts.extend(inlined_consts);
    let lir = crate::lir::lower::lower(&final_hir, &constants, &crate::cpython::shim::layout());
    Ok(Ok(Stages { generic, final_hir, specialised, lir }))
}

/// The generic function without the deopt exits recorded for the specialiser.
fn without_deopt_states(mut func: Function) -> Function {
    for block in &mut func.blocks {
        for instr in &mut block.instrs {
            instr.deopt = None;
        }
    }
    crate::hir::build::compact_exits(&mut func);
    func
}

fn runtime_callee(name: &'static str, address: usize, returns_int: bool) -> crate::lir::Callee {
    crate::lir::Callee { name, address, returns_int }
}

/// Addresses of the objects compiled code embeds (owned by the code object).
fn code_constants(
    code: &Bound<'_, PyAny>,
    global_caches: *mut crate::runtime::GlobalCache,
    attr_caches: *mut crate::runtime::AttrCache,
) -> PyResult<crate::lir::lower::CodeConstants> {
    let addresses = |attr: &str| -> PyResult<Vec<i64>> {
        let tuple = code.getattr(attr)?;
        // The tuple is the code object's own: its items live as long as the code object.
        let addresses = tuple.try_iter()?.map(|item| item.map(|i| i.as_ptr() as i64)).collect();
        addresses
    };
    Ok(crate::lir::lower::CodeConstants {
        consts: addresses("co_consts")?,
        names: addresses("co_names")?,
        code: code.as_ptr() as i64,
        global_caches,
        attr_caches,
        direct_entry: 0,
    })
}

/// The HIR the backend gets: generic, or specialised for arguments of kinds `args` (the
/// generic HIR when nothing could be specialised).
pub fn hir_with(
    code: &Bound<'_, PyAny>,
    args: Option<Vec<specialize::Kind>>,
    globals: Option<&Bound<'_, PyAny>>,
) -> PyResult<Result<(Function, Vec<i64>), FrontendError>> {
    // The builtins of the code calling this (a debugging entry point).
    // SAFETY: a borrowed dict (or NULL), used while the GIL is held.
    let builtins = unsafe { Bound::from_borrowed_ptr_or_opt(code.py(), pyo3::ffi::PyEval_GetBuiltins()) };
    Ok(frontend(code, args, Vec::new(), Vec::new(), globals, builtins.as_ref(), None)?.map(|f| (f.hir, f.inlined.consts)))
}

/// The HIR of a code object specialised for arguments of kinds `args`, some of them NumPy
/// arrays of the types `arrays` gives by slot (for tests: no array need exist).
pub fn array_hir(
    code: &Bound<'_, PyAny>,
    args: Vec<specialize::Kind>,
    arrays: Vec<Option<crate::numpy::ArrayType>>,
) -> PyResult<Result<Function, FrontendError>> {
    Ok(frontend(code, Some(args), arrays, Vec::new(), None, None, None)?.map(|f| f.hir))
}

/// The HIR of a code object's direct entry (`hir::direct`) for arguments of kinds `args`, as
/// the back end gets it (inlined into itself), if it has one: for tests and debugging.
pub fn direct_entry_hir(
    code: &Bound<'_, PyAny>,
    args: Vec<specialize::Kind>,
    globals: &Bound<'_, PyAny>,
) -> PyResult<Option<Function>> {
    let frontend = match frontend(code, Some(args), Vec::new(), Vec::new(), Some(globals), None, None)? {
        Ok(f) => f,
        Err(_) => return Ok(None),
    };
    Ok(frontend.direct.map(|body| direct::inline_self_once(&body)))
}

/// What the front end makes of a code object for the back end.
struct Frontend {
    hir: Function,
    /// Whether `hir` works on unboxed values (and may deoptimise).
    specialised: bool,
    /// What inlining added (nothing unless specialised).
    inlined: Inlining,
    /// What the specialiser was given, kept for `rjit.dis`.
    facts: Option<specialize::Facts>,
    /// The HIR of the direct entry `hir` calls (`hir::direct`), if it has one.
    direct: Option<Function>,
    /// The globals through which the direct entry calls itself.
    self_call_names: Vec<String>,
    /// The globals the direct entry relies on (checked before it is called).
    direct_requires: Vec<direct::Requirement>,
}

/// Which calls of other Python functions the front end compiles natively.
#[derive(Clone, Copy)]
struct CallsOfOthers {
    /// Pure callees are inlined (`hir::inline`).
    inline: bool,
    /// Other functions' direct entries are called (`add_other_direct_calls`).
    direct: bool,
}

/// Bytecode -> HIR, specialised for arguments of kinds `args` when given: pure callees
/// found through `globals` are inlined and builtin or `math` calls (through `globals` and
/// `builtins`) become intrinsics first. Without specialisation, the generic HIR as written.
/// With `profile`, the interpreter's profile (`Facts::hints`, `Facts::sequences`) is taken
/// from those facts instead of the code object's bytecode now (`rjit.dis` rebuilding a
/// compilation: the interpreter may have respecialised the bytecode since).
fn frontend(
    code: &Bound<'_, PyAny>,
    args: Option<Vec<specialize::Kind>>,
    arrays: Vec<Option<crate::numpy::ArrayType>>,
    list_items: Vec<Option<specialize::Kind>>,
    globals: Option<&Bound<'_, PyAny>>,
    builtins: Option<&Bound<'_, PyAny>>,
    profile: Option<&specialize::Facts>,
) -> PyResult<Result<Frontend, FrontendError>> {
    let all = CallsOfOthers { inline: true, direct: true };
    let first = frontend_inlining(code, args.clone(), arrays.clone(), list_items.clone(), globals, builtins, all, profile)?;
    match first {
        Ok(Some(frontend)) => Ok(Ok(frontend)),
        Ok(None) => {
            let others = CallsOfOthers { inline: false, ..all };
            Ok(frontend_inlining(code, args, arrays, list_items, globals, builtins, others, profile)?
                .map(|f| f.expect("a frontend without inlining is never redone")))
        }
        Err(e) => Ok(Err(e)),
    }
}

/// `frontend`, with the calls of other functions `others` says; None if an inlined body did
/// not specialise to machine operations (`inlined_body_generic`).
fn frontend_inlining(
    code: &Bound<'_, PyAny>,
    args: Option<Vec<specialize::Kind>>,
    arrays: Vec<Option<crate::numpy::ArrayType>>,
    list_items: Vec<Option<specialize::Kind>>,
    globals: Option<&Bound<'_, PyAny>>,
    builtins: Option<&Bound<'_, PyAny>>,
    others: CallsOfOthers,
    profile: Option<&specialize::Facts>,
) -> PyResult<Result<Option<Frontend>, FrontendError>> {
    let mut generic = match hir_for(code, args.is_some())? {
        Ok(generic) => generic,
        Err(e) => return Ok(Err(e)),
    };
    let Some(args) = args else {
        let hir = generic;
        return Ok(Ok(Some(Frontend { hir, specialised: false, inlined: Inlining::default(), facts: None, direct: None, self_call_names: Vec::new(), direct_requires: Vec::new() })));
    };
    let mut facts = specialize_facts(code, args)?;
    facts.arrays = arrays;
    facts.list_items = list_items;
    if let Some(profile) = profile {
        facts.hints.clone_from(&profile.hints);
        facts.sequences.clone_from(&profile.sequences);
    }
    let mut inlined = Inlining::default();
    if let Some(globals) = globals {
        if others.inline {
            inlined = inline_pure_calls(&mut generic, &mut facts, code, globals)?;
        }
        facts.intrinsics = find_intrinsics(&generic, code, globals, builtins, &mut inlined.objects)?;
        facts.dtype = crate::dtype_folds::find(&generic, code, globals, builtins, &facts.arrays)?;
        facts.array_results = crate::array_results::find(&generic, code, globals, builtins)?;
        let self_calls = find_self_calls(&generic, code, globals)?;
        if others.direct {
            add_other_direct_calls(&generic, &mut facts, code, globals, builtins, &mut inlined)?;
        }
        if !self_calls.is_empty() {
            // The direct entry returns an int, else a float, if the specialised body agrees.
            let own = code.as_ptr() as i64;
            for returns in [specialize::INT, specialize::FLOAT] {
                for r in self_calls.keys() {
                    let call = specialize::DirectCall { code: own, args: facts.args.clone(), returns, target: 0, requires: Vec::new() };
                    facts.direct_calls.insert(*r, call);
                }
                let Some(mut hir) = specialize::specialize(&generic, &facts) else { continue };
                if !direct::has_direct_calls(&hir) {
                    continue;
                }
                direct::drop_checks_after_direct_calls(&mut hir);
                let ty = if returns == specialize::INT { crate::hir::Type::I64 } else { crate::hir::Type::F64 };
                let Some((mut body, requirements)) = direct::direct_variant(&hir, ty, own) else { continue };
                if !requirements.is_empty() {
                    // The frame code checks the globals the entry relies on (`range`) before
                    // each call of it (the entry's own calls need not: no Python code runs in
                    // the chain).
                    for call in facts.direct_calls.values_mut().filter(|c| c.target == 0) {
                        call.requires = requirements.iter().map(|r| (r.name, r.expected)).collect();
                    }
                    let Some(checked) = specialize::specialize(&generic, &facts) else { continue };
                    hir = checked;
                    direct::drop_checks_after_direct_calls(&mut hir);
                    match direct::direct_variant(&hir, ty, own) {
                        Some((again, same)) if same == requirements => body = again,
                        _ => continue,
                    }
                }
                if inlined_body_generic(&hir, &inlined) {
                    return Ok(Ok(None));
                }
                let self_call_names = self_calls.into_values().collect();
                let facts = Some(facts);
                let direct = Some(body);
                return Ok(Ok(Some(Frontend { hir, specialised: true, inlined, facts, direct, self_call_names, direct_requires: requirements })));
            }
            facts.direct_calls.retain(|_, call| call.target != 0);
        }
    }
    if let Some(mut hir) = specialize::specialize(&generic, &facts) {
        if inlined_body_generic(&hir, &inlined) {
            return Ok(Ok(None));
        }
        // Calls of other functions' direct entries (its own needs one of its own: above).
        if direct::has_direct_calls(&hir) {
            direct::drop_checks_after_direct_calls(&mut hir);
        }
        let facts = Some(facts);
        return Ok(Ok(Some(Frontend { hir, specialised: true, inlined, facts, direct: None, self_call_names: Vec::new(), direct_requires: Vec::new() })));
    }
    // Nothing to specialise: the function as written (not with inlined bodies, which would
    // run generically).
    if !inlined.objects.is_empty() {
        generic = match hir_for(code, false)? {
            Ok(generic) => generic,
            Err(e) => return Ok(Err(e)),
        };
    }
    let hir = without_deopt_states(generic);
    let facts = Some(facts);
    Ok(Ok(Some(Frontend { hir, specialised: false, inlined: Inlining::default(), facts, direct: None, self_call_names: Vec::new(), direct_requires: Vec::new() })))
}

/// The HIR and LIR of a code object as text (for tests and debugging): generic, or
/// specialised for arguments of kinds `args`.
pub fn dump(
    code: &Bound<'_, PyAny>,
    args: Option<Vec<specialize::Kind>>,
    arrays: Vec<Option<crate::numpy::ArrayType>>,
    list_items: Vec<Option<specialize::Kind>>,
    globals: Option<&Bound<'_, PyAny>>,
) -> PyResult<String> {
    // The builtins of the code calling this (a debugging entry point).
    // SAFETY: a borrowed dict (or NULL), used while the GIL is held.
    let builtins = unsafe { Bound::from_borrowed_ptr_or_opt(code.py(), pyo3::ffi::PyEval_GetBuiltins()) };
    let frontend = frontend(code, args, arrays, list_items, globals, builtins.as_ref(), None)?.map(|f| (f.hir, f.inlined.consts));
    let (hir, extra_consts) = match frontend {
        Err(e) => return Ok(format!("not compiled: {e}\n")),
        Ok(hir) => hir,
    };
    let mut caches: Vec<crate::runtime::GlobalCache> =
        (0..crate::lir::lower::global_sites(&hir)).map(|_| crate::runtime::GlobalCache::EMPTY).collect();
    let mut attr_caches: Vec<crate::runtime::AttrCache> =
        (0..crate::lir::lower::attr_sites(&hir)).map(|_| crate::runtime::AttrCache::EMPTY).collect();
    let mut constants = code_constants(code, caches.as_mut_ptr(), attr_caches.as_mut_ptr())?;
    constants.consts.extend(extra_consts);
    let lir = crate::lir::lower::lower(&hir, &constants, &crate::cpython::shim::layout());
    Ok(format!("{hir}\n{lir}"))
}
