//! The hook inside an embedded interpreter: counting, modes, generators, tracing.
//!
//! The hook is process-global, so the tests take a lock; `cargo nextest` runs each in its own
//! process anyway.

use std::ffi::CString;
use std::sync::Mutex;

use pyo3::prelude::*;
use pyo3::types::PyDict;

use rjit::{hook, state};

static SERIAL: Mutex<()> = Mutex::new(());

/// Runs `f` with an initialised interpreter and rjit's state, rjit disabled before and after.
fn with_python(f: impl FnOnce(Python<'_>, &Bound<'_, PyDict>)) {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    Python::initialize();
    Python::attach(|py| {
        rjit::init().expect("rjit init");
        hook::disable();
        let globals = PyDict::new(py);
        f(py, &globals);
        hook::disable();
    });
}

fn run(py: Python<'_>, globals: &Bound<'_, PyDict>, source: &str) {
    let source = CString::new(source).unwrap();
    py.run(&source, Some(globals), None).expect("python code runs");
}

/// Calls counted for the function `name` in `globals`.
fn calls(globals: &Bound<'_, PyDict>, name: &str) -> Option<u64> {
    let code = globals.get_item(name).unwrap().unwrap().getattr("__code__").unwrap();
    // SAFETY: `code` is a live code object, the GIL is held, the entry is read at once.
    unsafe { state::entry_of(code.as_ptr()) }.map(|e| e.calls())
}

#[test]
fn counts_every_call_while_enabled_and_none_after() {
    with_python(|py, g| {
        run(py, g, "def f(x):\n    return x + 1\n");
        state::set_threshold(1_000_000);
        hook::enable().unwrap();
        run(py, g, "for i in range(10):\n    f(i)\n");
        assert_eq!(calls(g, "f"), Some(10));
        hook::disable();
        run(py, g, "for i in range(10):\n    f(i)\n");
        assert_eq!(calls(g, "f"), Some(10), "no counting once disabled");
    });
}

#[test]
fn unseen_code_gets_no_entry_without_whole_program_mode() {
    with_python(|py, g| {
        run(py, g, "def f(x):\n    return x\nf(1)\n");
        assert_eq!(calls(g, "f"), None);
    });
}

#[test]
fn hot_function_is_compiled() {
    with_python(|py, g| {
        run(py, g, "def f(x):\n    return x * 2 + 1\n");
        state::set_threshold(2);
        hook::enable().unwrap();
        run(py, g, "r1 = f(1); r2 = f(2)\n");
        let code = g.get_item("f").unwrap().unwrap().getattr("__code__").unwrap();
        // SAFETY: as in `calls`.
        let entry = unsafe { state::entry_of(code.as_ptr()) }.unwrap();
        assert_eq!(entry.status(), state::Status::Cold);
        assert!(entry.native().is_none(), "no machine code while cold");
        run(py, g, "r3 = f(3)\n");
        assert_eq!(entry.status(), state::Status::Compiled);
        assert!(entry.native().is_some(), "a compiled entry has an entry point");
        let (_time_us, size) = entry.compiled_facts().expect("code size is recorded");
        assert!(size > 0, "compiled to {size} bytes");
        // The call that made it hot and the calls after it (in machine code) return correctly.
        run(py, g, "r4 = f(4); r5 = f(-5)\n");
        let results: Vec<i64> = ["r1", "r2", "r3", "r4", "r5"]
            .iter()
            .map(|&name| g.get_item(name).unwrap().unwrap().extract().unwrap())
            .collect();
        assert_eq!(results, [3, 5, 7, 9, -9]);
        assert_eq!(entry.calls(), 5);
        assert_eq!(entry.status(), state::Status::Compiled);
    });
}

#[test]
fn generator_resumptions_are_not_counted() {
    with_python(|py, g| {
        run(py, g, "def gen(n):\n    for i in range(n):\n        yield i\n");
        state::set_threshold(0);
        hook::enable().unwrap();
        run(py, g, "assert sum(gen(100)) == 4950\n");
        assert_eq!(calls(g, "gen"), Some(0));
    });
}

#[test]
fn traced_calls_go_to_the_interpreter_uncounted() {
    with_python(|py, g| {
        run(py, g, "import sys\ndef f(x):\n    return x\nlines = []\n\
                    def tracer(frame, event, arg):\n    lines.append(event)\n    return tracer\n");
        state::set_threshold(1_000_000);
        hook::enable().unwrap();
        run(py, g, "f(0)\nsys.settrace(tracer)\nf(1)\nf(2)\nsys.settrace(None)\n");
        assert_eq!(calls(g, "f"), Some(1));
        run(py, g, "assert lines.count('line') >= 2, lines\n");
    });
}

#[test]
fn enable_refuses_a_foreign_hook_and_disable_keeps_it() {
    with_python(|_py, _g| {
        assert!(hook::set_foreign_hook_for_tests(true));
        assert_eq!(hook::enable(), Err(hook::InstallError::Foreign));
        hook::disable();
        assert!(hook::set_foreign_hook_for_tests(false), "disable() must not remove a foreign hook");
    });
}

#[test]
fn scoped_mode_installs_for_the_call_only() {
    with_python(|py, g| {
        run(py, g, "def f(x):\n    return x * 2\n");
        assert!(!hook::enabled());
        let result = hook::with_scope(|| {
            assert!(!hook::enabled(), "scoped mode is not whole-program mode");
            run(py, g, "assert f(21) == 42\n");
            7
        });
        assert_eq!(result, 7);
        // The scope installed no entries for unmarked code.
        assert_eq!(calls(g, "f"), None);
    });
}
