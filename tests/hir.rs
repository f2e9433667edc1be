//! HIR snapshot tests: what the builder makes of small functions, reviewed like code.
//!
//! Each case compiles Python source in an embedded interpreter, builds HIR from the function's
//! code object, checks it with the validator and compares the printed IR with the snapshot in
//! tests/snapshots/ (`INSTA_UPDATE=always cargo test --test hir` rewrites them after a reviewed
//! change). Unsupported functions snapshot the reason instead.

use std::ffi::CString;

use pyo3::prelude::*;
use pyo3::types::PyDict;

use rjit::compiler::hir_for;
use rjit::hir::validate::validate;

/// The HIR `make` builds from function `name` defined by `source`, validated and printed, or
/// the reason it is unsupported.
fn printed_hir(
    source: &str,
    name: &str,
    make: impl FnOnce(Python<'_>, &Bound<'_, PyAny>) -> Result<rjit::hir::Function, rjit::compiler::FrontendError>,
) -> String {
    Python::initialize();
    Python::attach(|py| {
        let globals = PyDict::new(py);
        let source = CString::new(source).unwrap();
        py.run(&source, Some(&globals), None).expect("test source runs");
        let func = globals.get_item(name).unwrap().expect("function defined");
        let code = func.getattr("__code__").unwrap();
        match make(py, &code) {
            Ok(hir) => {
                if let Err(errors) = validate(&hir) {
                    panic!("invalid HIR for {name}:\n{}\n{hir}", errors.join("\n"));
                }
                hir.to_string()
            }
            Err(reason) => format!("unsupported: {reason}\n"),
        }
    })
}

/// The printed HIR of function `name` defined by `source`, or the reason it is unsupported.
fn hir_text(source: &str, name: &str) -> String {
    printed_hir(source, name, |_, code| hir_for(code, false).expect("code object readable"))
}

macro_rules! hir_snapshot {
    ($test:ident, $source:expr) => {
        #[test]
        fn $test() {
            insta::assert_snapshot!(stringify!($test), hir_text($source, "f"));
        }
    };
}

hir_snapshot!(return_constant, "def f():\n    return 1\n");
hir_snapshot!(add_arguments, "def f(a, b):\n    return a + b\n");
hir_snapshot!(store_and_load_locals, "def f(a):\n    x = a * 2\n    y = x - 1\n    return y\n");
hir_snapshot!(if_else, "def f(a):\n    if a:\n        r = 1\n    else:\n        r = 2\n    return r\n");
hir_snapshot!(while_loop, "def f(n):\n    i = 0\n    while i < n:\n        i += 1\n    return i\n");
hir_snapshot!(
    for_range_sum,
    "def f(n):\n    s = 0\n    for i in range(n):\n        s += i * i\n    return s\n"
);
hir_snapshot!(
    nested_loops_break,
    "def f(n):\n    c = 0\n    for i in range(n):\n        for j in range(n):\n            if j > i:\n                break\n            c += 1\n    return c\n"
);
hir_snapshot!(
    loop_continue,
    "def f(xs):\n    t = 0\n    for x in xs:\n        if x % 2:\n            continue\n        t += x\n    return t\n"
);
hir_snapshot!(call_with_keywords, "def f(a):\n    return sorted(a, reverse=True)\n");
hir_snapshot!(method_call, "def f(xs, v):\n    xs.append(v)\n    return xs\n");
hir_snapshot!(attributes, "def f(o):\n    o.count = o.count + 1\n    return o.count\n");
hir_snapshot!(
    subscripts,
    "def f(d, k):\n    d[k] = d[k] + 1\n    del d['gone']\n    return d[k]\n"
);
hir_snapshot!(build_tuple_and_list, "def f(a, b):\n    return (a, b), [a, b, 3]\n");
hir_snapshot!(and_or, "def f(a, b, c):\n    return a and b or c\n");
hir_snapshot!(unary_operators, "def f(a):\n    return -a, +a, ~a, not a\n");
hir_snapshot!(chained_comparison, "def f(a, b, c):\n    return a < b < c\n");
hir_snapshot!(
    is_none_tests,
    "def f(a):\n    if a is None:\n        return 0\n    if a is not None:\n        return 1\n    return 2\n"
);
hir_snapshot!(membership, "def f(x, xs):\n    return x in xs, x not in xs\n");
hir_snapshot!(global_and_builtin, "G = 3\ndef f(x):\n    return len(x) + G\n");
hir_snapshot!(delete_then_use, "def f(a):\n    x = a\n    del x\n    return x\n");
hir_snapshot!(
    maybe_unbound_local,
    "def f(a):\n    if a:\n        x = 1\n    return x\n"
);
hir_snapshot!(
    try_except_body_only,
    "def f(a):\n    try:\n        r = 1 / a\n    except ZeroDivisionError:\n        r = 0\n    return r\n"
);
hir_snapshot!(raise_leaves_to_interpreter, "def f(a):\n    if a:\n        raise ValueError(a)\n    return a\n");
hir_snapshot!(assert_statement, "def f(a):\n    assert a > 0, 'positive'\n    return a\n");
hir_snapshot!(
    return_inside_loop,
    "def f(xs):\n    for x in xs:\n        if x:\n            return x\n    return None\n"
);
hir_snapshot!(
    while_true_break,
    "def f(n):\n    while True:\n        n -= 1\n        if n < 0:\n            break\n    return n\n"
);
hir_snapshot!(conditional_expression, "def f(a, b):\n    return a if a > b else b\n");
hir_snapshot!(
    collatz_steps,
    "def f(n):\n    steps = 0\n    while n != 1:\n        if n % 2 == 0:\n            n = n // 2\n        else:\n            n = 3 * n + 1\n        steps += 1\n    return steps\n"
);
hir_snapshot!(varargs_and_kwargs, "def f(a, *args, k=1, **kw):\n    return a, args, k, kw\n");
hir_snapshot!(swap_assignment, "def f(a, b):\n    a, b = b, a\n    return a - b\n");
hir_snapshot!(unsupported_generator, "def f(n):\n    yield n\n");
hir_snapshot!(unsupported_closure, "def f(a):\n    def g():\n        return a\n    return g\n");
hir_snapshot!(unsupported_with, "def f(cm):\n    with cm:\n        return 1\n");
hir_snapshot!(unsupported_fstring, "def f(a):\n    return f'{a}!'\n");

// ---- after type specialisation (`hir::specialize`), for the argument kinds given ----

use rjit::hir::specialize::{BOOL, FLOAT, INT, OTHER};

/// The printed HIR of `f` in `source` specialised for arguments of kinds `args`.
fn specialized_text(source: &str, args: &[u8]) -> String {
    printed_hir(source, "f", |py, code| {
        rjit::compiler::probe_range_iter_layout(py);
        rjit::compiler::hir_with(code, Some(args.to_vec()), None).expect("code object readable").map(|(hir, _)| hir)
    })
}

macro_rules! specialized_snapshot {
    ($test:ident, $source:expr, $args:expr) => {
        #[test]
        fn $test() {
            insta::assert_snapshot!(stringify!($test), specialized_text($source, &$args));
        }
    };
}

// A range loop on ints: the position and the sum in machine registers, overflow deopts.
specialized_snapshot!(
    spec_sum_squares,
    "def f(n):\n    s = 0\n    for i in range(n):\n        s += i * i\n    return s\n",
    [INT]
);
// Float accumulation of an int converted to float; division deopts on zero.
specialized_snapshot!(
    spec_harmonic,
    "def f(n):\n    s = 0.0\n    for i in range(1, n + 1):\n        s += 1.0 / i\n    return s\n",
    [INT]
);
// A while loop with // and % (floor semantics) and a comparison feeding a branch directly.
specialized_snapshot!(
    spec_collatz_steps,
    "def f(x):\n    steps = 0\n    while x != 1:\n        if x % 2 == 0:\n            x = x // 2\n        else:\n            x = 3 * x + 1\n        steps += 1\n    return steps\n",
    [INT]
);
// Mixed int/float comparison: the int converts only when exact.
specialized_snapshot!(spec_mixed_compare, "def f(a, b):\n    return a < b\n", [INT, FLOAT]);
// Bool arithmetic: True + True is the int 2; & of bools stays a bool.
specialized_snapshot!(spec_bools, "def f(a, b):\n    return a + b, a & b, not a\n", [BOOL, BOOL]);
// A value that is an int on one path and a str on the other stays an object.
specialized_snapshot!(
    spec_mixed_types_stay_generic,
    "def f(a, n):\n    x = 0\n    if n:\n        x = a\n    return x + 1\n",
    [OTHER, INT]
);
// A loop variable used after an empty loop: a bound flag, UnboundLocalError if unset.
specialized_snapshot!(
    spec_maybe_unbound_loop_variable,
    "def f(n):\n    for i in range(n):\n        pass\n    return i\n",
    [INT]
);

// Counting the true items of any iterable: the count unboxed; the truth test of the loop
// variable borrows it (the local holds it), no reference pair around the test.
specialized_snapshot!(
    spec_count_true_items,
    "def f(xs):\n    c = 0\n    for x in xs:\n        if x:\n            c += 1\n    return c\n",
    [OTHER]
);

/// The printed HIR of `f` in `source` specialised for arguments of kinds `args`, with NumPy
/// arrays of the types `arrays` gives by slot.
fn array_text(source: &str, args: &[u8], arrays: Vec<Option<rjit::numpy::ArrayType>>) -> String {
    printed_hir(source, "f", |py, code| {
        rjit::compiler::probe_range_iter_layout(py);
        rjit::compiler::probe_seq_iter_layout(py);
        rjit::compiler::array_hir(code, args.to_vec(), arrays).expect("code object readable")
    })
}

// `for x in a` over a float64 array: the array checked before `iter(a)` and on entering the
// loop, the iterator's position in a register (`SeqIterIndex`), the length read once, each item
// a machine float; exits write the position back (`position v8=...`).
#[test]
fn spec_array_loop() {
    use rjit::numpy::{ArrayType, DType};
    let vector = ArrayType { dtype: DType::F64, ndim: 1, contiguous: true };
    let source = "def f(a):\n    s = 0.0\n    for x in a:\n        s += x\n    return s\n";
    insta::assert_snapshot!("spec_array_loop", array_text(source, &[OTHER], vec![Some(vector)]));
}

// ---- direct calls (`hir::direct`): a function calling itself through a global ----

/// The frame code of `f` in `source` specialised for `args` (calls of itself guarded and
/// direct), then its direct entry's body (inlined into itself once).
fn direct_text(source: &str, args: &[u8]) -> String {
    Python::initialize();
    Python::attach(|py| {
        let globals = PyDict::new(py);
        let source = CString::new(source).unwrap();
        py.run(&source, Some(&globals), None).expect("test source runs");
        let code = globals.get_item("f").unwrap().expect("function defined").getattr("__code__").unwrap();
        let (frame, _) = rjit::compiler::hir_with(&code, Some(args.to_vec()), Some(globals.as_any()))
            .expect("code object readable")
            .expect("supported");
        let direct = rjit::compiler::direct_entry_hir(&code, args.to_vec(), globals.as_any())
            .expect("code object readable")
            .expect("a direct entry");
        for hir in [&frame, &direct] {
            if let Err(errors) = validate(hir) {
                panic!("invalid HIR:\n{}\n{hir}", errors.join("\n"));
            }
        }
        format!("{frame}\n== direct entry ==\n{direct}")
    })
}

#[test]
fn direct_fib() {
    let source = "def f(n):\n    if n < 2:\n        return n\n    return f(n - 1) + f(n - 2)\n";
    insta::assert_snapshot!("direct_fib", direct_text(source, &[INT]));
}
