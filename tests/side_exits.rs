//! The reasons and entry guards `rjit.info` reports for a specialised function
//! (`hir::side_exits`), from the HIR the compiler gets.

use std::ffi::CString;

use pyo3::prelude::*;
use pyo3::types::PyDict;

use rjit::hir::side_exits::{deopt_sites, entry_guards, DeoptSite};
use rjit::hir::specialize::INT;
use rjit::hir::PyClass;

/// The specialised HIR of `f` in `source` for arguments of kinds `args`, through `inspect`.
fn with_specialised<R>(source: &str, args: &[u8], inspect: impl FnOnce(&rjit::hir::Function) -> R) -> R {
    Python::initialize();
    Python::attach(|py| {
        rjit::compiler::probe_range_iter_layout(py);
        let globals = PyDict::new(py);
        py.run(&CString::new(source).unwrap(), Some(&globals), None).expect("test source runs");
        let code = globals.get_item("f").unwrap().expect("f defined").getattr("__code__").unwrap();
        let (hir, _) = rjit::compiler::hir_with(&code, Some(args.to_vec()), None).unwrap().expect("translates");
        inspect(&hir)
    })
}

const COLLATZ: &str = "def f(x):\n    steps = 0\n    while x != 1:\n        if x % 2 == 0:\n            x = x // 2\n        else:\n            x = 3 * x + 1\n        steps += 1\n    return steps\n";

#[test]
fn collatz_exits_have_reasons_at_their_instructions() {
    let sites = with_specialised(COLLATZ, &[INT], deopt_sites);
    let reasons: Vec<&str> = sites.iter().map(|s| s.reason.as_str()).collect();
    assert_eq!(
        reasons,
        [
            "entry guard: argument is not int or argument int beyond 64 bits",
            "int division by zero or overflow (%)",
            "int overflow (*)",
            "int overflow (+)",
            "int division by zero or overflow (//)",
            "int overflow (+)",
        ]
    );
    // Exit numbers increase and each site is at its instruction (byte offsets as dis prints:
    // `x % 2` at 22, `3 * x` at 52).
    assert!(sites.windows(2).all(|w| w[0].exit < w[1].exit));
    let at = |reason: &str| sites.iter().find(|s: &&DeoptSite| s.reason == reason).map(|s| s.offset * 2);
    assert_eq!(at("int division by zero or overflow (%)"), Some(22));
    assert_eq!(at("int overflow (*)"), Some(52));
}

#[test]
fn entry_guards_name_the_argument_and_class() {
    let guards = with_specialised(COLLATZ, &[INT], entry_guards);
    assert_eq!(guards.len(), 1);
    assert_eq!(guards[0].arg, 0);
    assert_eq!(guards[0].class, PyClass::Int);
}

#[test]
fn generic_code_has_no_deopt_sites() {
    let sites = with_specialised("def f(a, b):\n    return a + b\n", &[16, 16], deopt_sites);
    assert!(sites.is_empty());
}
