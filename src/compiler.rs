//! The compiler's front door: from a code object to HIR (and, next, to machine code).
//!
//! Reads what the stages need from the code object through its Python attributes (a few
//! microseconds, once per compilation), so the stages themselves work on plain Rust data.

use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::bytecode::{Bytecode, RawCode};
use crate::hir::build::{build, CodeFacts, Unsupported};
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

/// Decodes `code` and translates it to HIR.
pub fn hir_for(code: &Bound<'_, PyAny>) -> PyResult<Result<Function, FrontendError>> {
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
    let facts = code_facts(code)?;
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
    Ok(CodeFacts { name: code.getattr("co_qualname")?.extract()?, nlocalsplus, nargs })
}
