//! HIR snapshots of lists of bools kept as bytes (`hir/specialize_lists.rs`): the sieve's list
//! made as a buffer (`BoolListNew`), read and written as bytes, iterated with its position in
//! a register (`BoolListIter`) and freed at the return (`BoolListFree`); the marking loop's
//! stores unchecked behind the check made on entering it. `INSTA_UPDATE=always cargo test
//! --test bool_lists` rewrites the snapshots after a reviewed change.

use std::ffi::CString;

use pyo3::prelude::*;
use pyo3::types::PyDict;

use rjit::hir::specialize::INT;
use rjit::hir::validate::validate;

/// The HIR of `f` in `source` specialised for arguments of kinds `args`, validated, printed.
fn specialized_text(source: &str, args: &[u8]) -> String {
    Python::initialize();
    Python::attach(|py| {
        rjit::compiler::probe_range_iter_layout(py);
        rjit::compiler::probe_list_iter_layout(py);
        let globals = PyDict::new(py);
        let source = CString::new(source).unwrap();
        py.run(&source, Some(&globals), None).expect("test source runs");
        let code = globals.get_item("f").unwrap().expect("function defined").getattr("__code__").unwrap();
        let (hir, _) = rjit::compiler::hir_with(&code, Some(args.to_vec()), Some(globals.as_any()))
            .expect("code object readable")
            .expect("supported");
        let errors = validate(&hir).err().unwrap_or_default();
        if !errors.is_empty() {
            panic!("invalid HIR:\n{}\n{hir}", errors.join("\n"));
        }
        hir.to_string()
    })
}

#[test]
fn spec_sieve() {
    let source = "def f(n):\n    flags = [True] * (n + 1)\n    flags[0] = False\n    flags[1] = False\n    i = 2\n    \
                  while i * i <= n:\n        if flags[i]:\n            for j in range(i * i, n + 1, i):\n                \
                  flags[j] = False\n        i += 1\n    count = 0\n    for f in flags:\n        if f:\n            \
                  count += 1\n    return count\n";
    let text = specialized_text(source, &[INT]);
    assert!(!text.contains("Binary *") && !text.contains("GetIter") && !text.contains("SetItem"), "{text}");
    insta::assert_snapshot!("spec_sieve", text);
}

#[test]
fn escaping_list_stays_real() {
    // Returned: a real list (`Binary *`), no buffer.
    let text = specialized_text("def f(n):\n    a = [True] * n\n    a[0] = False\n    return a\n", &[INT]);
    assert!(text.contains("Binary *") && !text.contains("BoolList"), "{text}");
}

