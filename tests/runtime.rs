//! The runtime helpers against the interpreter they mirror, in an embedded CPython.
//!
//! Each test runs an operation both ways on fresh operands: in Python, by a small function
//! whose bytecode is the instruction the helper stands for, and through the helper; then it
//! compares the outcomes (value and exact type, or exception type, message and `.name`) and
//! checks that the helper left the operands' reference counts as it found them (stolen
//! references accounted for), on the success and the error paths.
//!
//! All Python work runs on one thread, one test at a time. That thread initialised the
//! interpreter, so it is Python's main thread: signal handlers and pending calls run only there.

use std::ffi::{c_int, c_void, CString};
use std::panic::{self, AssertUnwindSafe};
use std::process::Command;
use std::ptr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use pyo3::exceptions::PyNameError;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

use rjit::hir::BinaryOp;
use rjit::runtime;

// ---- the Python thread ----

type Job = Box<dyn for<'py> FnOnce(Python<'py>) + Send>;

/// A job and where to send how it ended.
type Request = (Job, mpsc::Sender<thread::Result<()>>);

/// The thread that runs every test's Python work, fed through a channel (which serialises
/// the tests).
static PYTHON_THREAD: OnceLock<Mutex<mpsc::Sender<Request>>> = OnceLock::new();

/// Runs `f` on the Python thread with the GIL held and a fresh namespace holding `PRELUDE`;
/// a panic there (a failed assertion) fails the calling test.
fn with_python(f: impl for<'py> FnOnce(Python<'py>, &Bound<'py, PyDict>) + Send + 'static) {
    let jobs = PYTHON_THREAD.get_or_init(|| {
        let (sender, receiver) = mpsc::channel::<Request>();
        thread::spawn(move || {
            Python::initialize();
            for (job, reply) in receiver {
                let result = panic::catch_unwind(AssertUnwindSafe(|| Python::attach(job)));
                let _ = reply.send(result);
            }
        });
        Mutex::new(sender)
    });
    let (reply, result) = mpsc::channel();
    let job: Job = Box::new(move |py| {
        let globals = PyDict::new(py);
        run(py, &globals, PRELUDE);
        f(py, &globals);
    });
    jobs.lock().unwrap_or_else(|e| e.into_inner()).send((job, reply)).expect("the Python thread runs");
    if let Err(payload) = result.recv().expect("the Python thread replies") {
        panic::resume_unwind(payload);
    }
}

/// Classes and functions the tests use as operands.
const PRELUDE: &str = r#"
OPS = ['add', 'and', 'floordiv', 'lshift', 'matmul', 'mul', 'mod', 'or', 'pow', 'rshift',
       'sub', 'truediv', 'xor']

class Num:
    """Implements every operator, recording what it was called with."""
    def __init__(self, v):
        self.v = v
    def __repr__(self):
        return f'Num({self.v!r})'
    def __bool__(self):
        return bool(self.v)

class Boom:
    """Every operator and protocol method raises."""
    def __repr__(self):
        return 'Boom()'

def _num_method(name):
    def method(self, other):
        return Num((name, self.v, other.v if isinstance(other, Num) else other))
    return method

def _boom_method(name):
    def method(self, *args):
        raise ValueError(f'boom in __{name}__')
    return method

for _op in OPS:
    for _kind in ('', 'r', 'i'):
        setattr(Num, f'__{_kind}{_op}__', _num_method(_kind + _op))
        setattr(Boom, f'__{_kind}{_op}__', _boom_method(_kind + _op))
for _name in ('bool', 'len', 'contains', 'iter', 'call'):
    setattr(Boom, f'__{_name}__', _boom_method(_name))

class LenOnly:
    def __init__(self, n):
        self.n = n
    def __len__(self):
        return self.n

class BadBool:
    def __bool__(self):
        return 1

class GetItemOnly:
    def __getitem__(self, i):
        if i < 3:
            return i * 10
        raise IndexError(i)

class IterOnly:
    def __iter__(self):
        return iter([1, 'a'])

class NotIterable:
    __iter__ = None

class BadEq:
    def __eq__(self, other):
        raise ArithmeticError('eq failed')
    def __hash__(self):
        return 1

class MyStop(StopIteration):
    pass

class StopsWith:
    """Yields 1 and 2, then raises `exc`."""
    def __init__(self, exc):
        self.exc = exc
        self.n = 0
    def __iter__(self):
        return self
    def __next__(self):
        self.n += 1
        if self.n > 2:
            raise self.exc('stop here')
        return self.n

def gen_then_error():
    yield 1
    raise KeyError('generator failed')

def gen_raising_stop():
    yield 1
    raise StopIteration

def target(a, b=2, *args, c=3, **kw):
    return (a, b, args, c, sorted(kw.items()))

def raiser(*args, **kw):
    raise LookupError(f'called with {args} {kw}')

class CallMe:
    def __call__(self, x, y=0):
        return ('called', x, y)

class LoudDict(dict):
    def __getitem__(self, key):
        if key == 'loud':
            raise ValueError('loud lookup')
        return dict.__getitem__(self, key)

class MissingDict(dict):
    def __missing__(self, key):
        raise KeyError(key)

class Mapping:
    def __getitem__(self, key):
        if key == 'mapped':
            return 'from mapping'
        raise KeyError(key)

class BadKey:
    """A dict key that collides with the name 'clash' and cannot be compared."""
    def __hash__(self):
        return hash('clash')
    def __eq__(self, other):
        raise ArithmeticError('eq failed')

def drain(iterable):
    """A for loop over `iterable`: the items, and what ended it (None, or the exception)."""
    out = []
    try:
        for x in iterable:
            out.append(x)
    except BaseException as e:
        return out, e
    return out, None
"#;

fn run(py: Python<'_>, globals: &Bound<'_, PyDict>, source: &str) {
    let source = CString::new(source).unwrap();
    if let Err(err) = py.run(&source, Some(globals), None) {
        panic!("python code failed: {err}\n{}", source.to_string_lossy());
    }
}

/// A fresh object from a Python expression.
fn make<'py>(py: Python<'py>, globals: &Bound<'py, PyDict>, expr: &str) -> Bound<'py, PyAny> {
    let source = CString::new(expr).unwrap();
    py.eval(&source, Some(globals), None).unwrap_or_else(|e| panic!("{expr}: {e}"))
}

/// Defines a function from its source and returns it (its name must be `ref_`).
fn define<'py>(py: Python<'py>, globals: &Bound<'py, PyDict>, source: &str) -> Bound<'py, PyAny> {
    run(py, globals, source);
    globals.get_item("ref_").unwrap().expect("the source defines ref_")
}

// ---- outcomes ----

/// What an operation produced, comparable between the interpreter and a helper.
#[derive(Debug, PartialEq)]
enum Outcome {
    Value { ty: String, repr: String },
    Raised { ty: String, message: String, name: Option<String> },
}

fn value_outcome(value: &Bound<'_, PyAny>) -> Outcome {
    Outcome::Value { ty: value.get_type().qualname().unwrap().to_string(), repr: value.repr().unwrap().to_string() }
}

/// The outcome of an exception object: type, message, and `.name` for a NameError.
fn exception_outcome(exc: &Bound<'_, PyAny>) -> Outcome {
    let name = if exc.is_instance_of::<PyNameError>() {
        exc.getattr("name").ok().filter(|n| !n.is_none()).map(|n| n.to_string())
    } else {
        None
    };
    Outcome::Raised {
        ty: exc.get_type().qualname().unwrap().to_string(),
        message: exc.str().unwrap().to_string(),
        name,
    }
}

fn outcome(py: Python<'_>, result: PyResult<Bound<'_, PyAny>>) -> Outcome {
    match result {
        Ok(value) => value_outcome(&value),
        Err(err) => exception_outcome(err.value(py).as_any()),
    }
}

/// Takes a helper's object result: a new reference, or NULL with an exception set. The
/// result and the exception (whose traceback may reference the operands) are released.
fn helper_outcome(py: Python<'_>, result: *mut ffi::PyObject) -> Outcome {
    // SAFETY: the helper returned a new reference or NULL with an exception set.
    outcome(py, unsafe { Bound::from_owned_ptr_or_err(py, result) })
}

/// Takes a helper's int result: `-1` with an exception set, else a value with none set.
fn status_outcome(py: Python<'_>, status: c_int) -> Outcome {
    let err = PyErr::take(py);
    match status {
        -1 => exception_outcome(err.expect("-1 comes with an exception").value(py).as_any()),
        _ => {
            assert!(err.is_none(), "status {status} with an exception set: {err:?}");
            Outcome::Value { ty: "int".into(), repr: status.to_string() }
        }
    }
}

fn refcount(obj: &Bound<'_, PyAny>) -> isize {
    // SAFETY: a live object.
    unsafe { ffi::Py_REFCNT(obj.as_ptr()) }
}

fn refcounts(objs: &[&Bound<'_, PyAny>]) -> Vec<isize> {
    objs.iter().map(|o| refcount(o)).collect()
}

fn no_exception(py: Python<'_>) {
    assert!(PyErr::take(py).is_none(), "no exception may be left set");
}

// ---- BINARY_OP ----

const NUMBERS_AND_MORE: [&str; 15] = [
    "7", "-3", "0", "10**20", "2.5", "-0.5", "0.0", "True", "'ab'", "[1, 2]", "(3,)", "{1, 2}", "None", "Num(1)",
    "Boom()",
];

#[test]
fn binary_op_matches_the_interpreter_for_every_operator() {
    with_python(|py, g| {
        for oparg in 0..26 {
            let op = BinaryOp::from_oparg(oparg).unwrap();
            let symbol = op.symbol();
            // The in-place operators (`+=`...) are statements: return the target after it.
            let source = if symbol.ends_with('=') {
                format!("def ref_(a, b):\n    a {symbol} b\n    return a\n")
            } else {
                format!("def ref_(a, b):\n    return a {symbol} b\n")
            };
            let reference = define(py, g, &source);
            let power = matches!(op, BinaryOp::Power | BinaryOp::InplacePower);
            for lhs_expr in NUMBERS_AND_MORE {
                for rhs_expr in NUMBERS_AND_MORE {
                    if power && rhs_expr == "10**20" {
                        continue; // a result too large to compute
                    }
                    let expected = outcome(py, reference.call1((make(py, g, lhs_expr), make(py, g, rhs_expr))));
                    let (lhs, rhs) = (make(py, g, lhs_expr), make(py, g, rhs_expr));
                    let before = refcounts(&[&lhs, &rhs]);
                    // SAFETY: GIL held, live operands.
                    let result = unsafe { runtime::rjit_rt_binary_op(oparg, lhs.as_ptr(), rhs.as_ptr()) };
                    let got = helper_outcome(py, result);
                    assert_eq!(got, expected, "{lhs_expr} {symbol} {rhs_expr}");
                    assert_eq!(
                        refcounts(&[&lhs, &rhs]),
                        before,
                        "reference counts after {lhs_expr} {symbol} {rhs_expr}"
                    );
                }
            }
        }
    });
}

#[test]
fn binary_op_function_is_the_interpreters_table_entry() {
    with_python(|py, g| {
        for oparg in 0..26 {
            let op = BinaryOp::from_oparg(oparg).unwrap();
            let direct = runtime::binary_op_function(oparg);
            if matches!(op, BinaryOp::Power | BinaryOp::InplacePower) {
                assert!(direct.is_none(), "{op:?} needs the helper");
                continue;
            }
            let direct = direct.unwrap_or_else(|| panic!("{op:?} has a C API function"));
            for (lhs_expr, rhs_expr) in [("Num(1)", "3"), ("6", "4"), ("Boom()", "1")] {
                let (lhs, rhs) = (make(py, g, lhs_expr), make(py, g, rhs_expr));
                // SAFETY: GIL held, live operands.
                let via_function = helper_outcome(py, unsafe { direct(lhs.as_ptr(), rhs.as_ptr()) });
                let (lhs, rhs) = (make(py, g, lhs_expr), make(py, g, rhs_expr));
                // SAFETY: as above.
                let via_helper =
                    helper_outcome(py, unsafe { runtime::rjit_rt_binary_op(oparg, lhs.as_ptr(), rhs.as_ptr()) });
                assert_eq!(via_function, via_helper, "{op:?} on {lhs_expr}, {rhs_expr}");
            }
        }
        assert!(runtime::binary_op_function(26).is_none());
        let (lhs, rhs) = (make(py, g, "1"), make(py, g, "2"));
        // SAFETY: GIL held, live operands.
        let got = helper_outcome(py, unsafe { runtime::rjit_rt_binary_op(26, lhs.as_ptr(), rhs.as_ptr()) });
        assert_eq!(
            got,
            Outcome::Raised {
                ty: "SystemError".into(),
                message: "rjit internal error: BINARY_OP oparg out of range".into(),
                name: None
            }
        );
    });
}

// ---- UNARY_NOT and the truth test ----

const TRUTH_VALUES: [&str; 22] = [
    "True",
    "False",
    "None",
    "0",
    "1",
    "-0.0",
    "2.5",
    "''",
    "'a'",
    "[]",
    "[0]",
    "()",
    "{}",
    "Num(0)",
    "Num(3)",
    "Boom()",
    "LenOnly(0)",
    "LenOnly(2)",
    "LenOnly(-1)",
    "LenOnly(10**20)",
    "LenOnly('x')",
    "BadBool()",
];

#[test]
fn not_matches_unary_not() {
    with_python(|py, g| {
        let reference = define(py, g, "def ref_(v):\n    return not v\n");
        for expr in TRUTH_VALUES {
            let expected = outcome(py, reference.call1((make(py, g, expr),)));
            let value = make(py, g, expr);
            let before = refcount(&value);
            // SAFETY: GIL held, live operand.
            let got = helper_outcome(py, unsafe { runtime::rjit_rt_not(value.as_ptr()) });
            assert_eq!(got, expected, "not {expr}");
            assert_eq!(refcount(&value), before, "reference count after not {expr}");
        }
    });
}

#[test]
fn is_true_matches_the_conditional_jumps() {
    with_python(|py, g| {
        let reference = define(py, g, "def ref_(v):\n    if v:\n        return 1\n    return 0\n");
        for expr in TRUTH_VALUES {
            let expected = match outcome(py, reference.call1((make(py, g, expr),))) {
                Outcome::Value { repr, .. } => Outcome::Value { ty: "int".into(), repr },
                raised => raised,
            };
            let value = make(py, g, expr);
            let before = refcount(&value);
            // SAFETY: GIL held, live operand.
            let got = status_outcome(py, unsafe { runtime::rjit_rt_is_true(value.as_ptr()) });
            assert_eq!(got, expected, "truth of {expr}");
            assert_eq!(refcount(&value), before, "reference count after testing {expr}");
        }
    });
}

// ---- CONTAINS_OP ----

#[test]
fn contains_matches_contains_op() {
    let containers = [
        "[1, 2]",
        "(1, 'a')",
        "{1: 2}",
        "{'a'}",
        "'abc'",
        "range(5)",
        "Boom()",
        "GetItemOnly()",
        "IterOnly()",
        "Num(1)",
        "None",
        "[BadEq()]",
    ];
    let items = ["1", "'a'", "'b'", "[]", "2.0", "20", "BadEq()"];
    with_python(move |py, g| {
        for (negate, source) in
            [(0, "def ref_(i, c):\n    return i in c\n"), (1, "def ref_(i, c):\n    return i not in c\n")]
        {
            let reference = define(py, g, source);
            for container_expr in containers {
                for item_expr in items {
                    let expected = outcome(py, reference.call1((make(py, g, item_expr), make(py, g, container_expr))));
                    let (item, container) = (make(py, g, item_expr), make(py, g, container_expr));
                    let before = refcounts(&[&item, &container]);
                    // SAFETY: GIL held, live operands.
                    let result = unsafe { runtime::rjit_rt_contains(item.as_ptr(), container.as_ptr(), negate) };
                    let got = helper_outcome(py, result);
                    assert_eq!(got, expected, "{item_expr} in {container_expr} (negate {negate})");
                    assert_eq!(
                        refcounts(&[&item, &container]),
                        before,
                        "reference counts after {item_expr} in {container_expr}"
                    );
                }
            }
        }
    });
}

// ---- BUILD_TUPLE, BUILD_LIST, LIST_APPEND ----

#[test]
fn build_tuple_and_list_steal_the_items() {
    with_python(|py, g| {
        let builders: [(&str, unsafe extern "C-unwind" fn(*const *mut ffi::PyObject, usize) -> *mut ffi::PyObject); 2] =
            [("(a, b, c)", runtime::rjit_rt_build_tuple), ("[a, b, c]", runtime::rjit_rt_build_list)];
        for (display, build) in builders {
            let reference = define(py, g, &format!("def ref_(a, b, c):\n    return {display}\n"));
            let exprs = ["10**20", "'x' * 3", "[1]"];
            let items: Vec<Bound<'_, PyAny>> = exprs.iter().map(|e| make(py, g, e)).collect();
            let expected = outcome(py, reference.call1((&items[0], &items[1], &items[2])));
            let before = refcounts(&items.iter().collect::<Vec<_>>());
            let pointers: Vec<*mut ffi::PyObject> = items.iter().map(|o| o.clone().into_ptr()).collect();
            // SAFETY: GIL held; `pointers` holds three owned references, which the helper takes.
            let built = unsafe { Bound::from_owned_ptr_or_err(py, build(pointers.as_ptr(), 3)) }.unwrap();
            for (i, item) in items.iter().enumerate() {
                assert!(built.get_item(i).unwrap().is(item), "{display}: item {i} is the object given");
            }
            let counts_now = refcounts(&items.iter().collect::<Vec<_>>());
            assert_eq!(
                counts_now,
                before.iter().map(|c| c + 1).collect::<Vec<_>>(),
                "{display} holds one reference each"
            );
            assert_eq!(value_outcome(&built), expected, "{display}");
            drop(built);
            assert_eq!(refcounts(&items.iter().collect::<Vec<_>>()), before, "{display}: released with the container");
        }
    });
}

#[test]
fn empty_builds_take_no_items() {
    with_python(|py, g| {
        // SAFETY: GIL held; zero items, so the NULL array is not read.
        let tuple = unsafe { Bound::from_owned_ptr_or_err(py, runtime::rjit_rt_build_tuple(ptr::null(), 0)) }.unwrap();
        assert!(tuple.is(make(py, g, "()")), "the empty tuple is the interpreter's singleton");
        // SAFETY: as above.
        let list = unsafe { Bound::from_owned_ptr_or_err(py, runtime::rjit_rt_build_list(ptr::null(), 0)) }.unwrap();
        assert_eq!(value_outcome(&list), value_outcome(&make(py, g, "[]")));
    });
}

#[test]
fn failed_builds_consume_nothing() {
    with_python(|py, g| {
        let item = make(py, g, "10**20");
        let before = refcount(&item);
        let pointer = item.clone().into_ptr();
        // Sizes no allocation can satisfy: the helpers fail before reading the array.
        let huge = isize::MAX as usize / 4;
        for build in [runtime::rjit_rt_build_tuple, runtime::rjit_rt_build_list] {
            // SAFETY: GIL held; the helper fails on the size before reading `items`.
            let got = helper_outcome(py, unsafe { build(&pointer, huge) });
            assert_eq!(got, Outcome::Raised { ty: "MemoryError".into(), message: String::new(), name: None });
            assert_eq!(refcount(&item), before + 1, "the caller still owns its reference");
        }
        // SAFETY: the reference taken above, not consumed.
        unsafe { ffi::Py_DECREF(pointer) };
        assert_eq!(refcount(&item), before);
    });
}

#[test]
fn list_append_steals_on_success_only() {
    with_python(|py, g| {
        let expected = outcome(py, Ok(make(py, g, "[x for x in (1, 10**20)]")));
        // SAFETY: GIL held; zero items.
        let list = unsafe { Bound::from_owned_ptr_or_err(py, runtime::rjit_rt_build_list(ptr::null(), 0)) }.unwrap();
        for expr in ["1", "10**20"] {
            let value = make(py, g, expr);
            let before = refcount(&value);
            // SAFETY: GIL held; a live list and an owned reference, which the helper takes.
            let status = unsafe { runtime::rjit_rt_list_append(list.as_ptr(), value.clone().into_ptr()) };
            assert_eq!(status_outcome(py, status), Outcome::Value { ty: "int".into(), repr: "0".into() });
            assert_eq!(refcount(&value), before + 1, "the list holds the reference given to it");
            assert!(list.get_item(list.len().unwrap() - 1).unwrap().is(&value));
        }
        assert_eq!(value_outcome(&list), expected);

        // Not a list: PyList_Append's SystemError, and the value is still the caller's.
        let not_a_list = make(py, g, "(1,)");
        let value = make(py, g, "10**20");
        let before = refcount(&value);
        let pointer = value.clone().into_ptr();
        // SAFETY: GIL held; on failure the reference is not consumed.
        let status = unsafe { runtime::rjit_rt_list_append(not_a_list.as_ptr(), pointer) };
        match status_outcome(py, status) {
            Outcome::Raised { ty, message, .. } => {
                assert_eq!(ty, "SystemError");
                assert!(message.ends_with("bad argument to internal function"), "{message}");
            }
            other => panic!("appending to a tuple: {other:?}"),
        }
        assert_eq!(refcount(&value), before + 1);
        // SAFETY: the reference taken above, not consumed.
        unsafe { ffi::Py_DECREF(pointer) };
    });
}

// ---- UNPACK_SEQUENCE ----

#[test]
fn unpack_sequence_matches_the_interpreter() {
    let cases = [
        ("[1, 2]", 2),
        ("(1, 2, 3)", 2),
        ("[1]", 2),
        ("5", 2),
        ("'ab'", 2),
        ("iter([1, 2, 3])", 2),
        ("iter([1, 2, 3])", 3),
        ("GetItemOnly()", 3),
        ("GetItemOnly()", 2),
        ("GetItemOnly()", 4),
        ("StopsWith(ValueError)", 3),
        ("StopsWith(ValueError)", 2),
        ("StopsWith(ValueError)", 1),
        ("NotIterable()", 2),
        ("()", 0),
        ("[]", 1),
        ("[9]", 1),
        ("{'a': 1, 'b': 2}", 2),
        ("Boom()", 2),
        ("gen_then_error()", 2),
        ("(x for x in [10**20, 'y'])", 2),
    ];
    with_python(move |py, g| {
        for (expr, count) in cases {
            let names: Vec<String> = (0..count).map(|i| format!("a{i}")).collect();
            let (targets, result) = if count == 0 {
                ("()".to_string(), "()".to_string())
            } else {
                (format!("{},", names.join(", ")), format!("({},)", names.join(", ")))
            };
            let reference = define(py, g, &format!("def ref_(v):\n    {targets} = v\n    return {result}\n"));
            let expected = outcome(py, reference.call1((make(py, g, expr),)));
            let value = make(py, g, expr);
            let before = refcount(&value);
            // SAFETY: GIL held, live operand.
            let got = helper_outcome(py, unsafe { runtime::rjit_rt_unpack_sequence(value.as_ptr(), count) });
            assert_eq!(got, expected, "unpacking {expr} into {count}");
            assert_eq!(refcount(&value), before, "reference count after unpacking {expr}");
        }
    });
}

// ---- FOR_ITER ----

#[test]
fn iter_next_ends_loops_as_for_iter_does() {
    let iterables = [
        "[1, 2, 3]",
        "'ab'",
        "range(3)",
        "{'k': 1}",
        "(x * 2 for x in range(3))",
        "gen_then_error()",
        "gen_raising_stop()",
        "StopsWith(StopIteration)",
        "StopsWith(MyStop)",
        "StopsWith(ValueError)",
        "StopsWith(KeyboardInterrupt)",
        "GetItemOnly()",
        "IterOnly()",
    ];
    with_python(move |py, g| {
        let drain = g.get_item("drain").unwrap().unwrap();
        for expr in iterables {
            let reference = drain.call1((make(py, g, expr),)).unwrap();
            let expected_items = value_outcome(&reference.get_item(0).unwrap());
            let ended_by = reference.get_item(1).unwrap();
            let expected_end = (!ended_by.is_none()).then(|| exception_outcome(&ended_by));

            let iterable = make(py, g, expr);
            let iter = iterable.try_iter().unwrap().into_any();
            let before = refcount(&iter);
            let items = pyo3::types::PyList::empty(py);
            let end = loop {
                // SAFETY: GIL held; a live iterator.
                let next = unsafe { runtime::rjit_rt_iter_next(iter.as_ptr()) };
                if next.is_null() {
                    break PyErr::take(py).map(|err| exception_outcome(err.value(py).as_any()));
                }
                // SAFETY: a new reference.
                items.append(unsafe { Bound::from_owned_ptr(py, next) }).unwrap();
            };
            assert_eq!(value_outcome(&items), expected_items, "items of {expr}");
            assert_eq!(end, expected_end, "end of {expr}");
            assert_eq!(refcount(&iter), before, "reference count of the iterator over {expr}");
        }
    });
}

// ---- CALL ----

#[test]
fn call_matches_call_with_keywords() {
    let calls: [(&str, &[&str], &[&str]); 17] = [
        ("target", &["1"], &[]),
        ("target", &["1", "5", "6", "7"], &[]),
        ("target", &["1", "9"], &["c"]),
        ("target", &["1", "2", "3"], &["b", "zz"]),
        ("target", &["1", "2"], &["a"]),
        ("target", &[], &[]),
        ("target", &["1"], &["a"]),
        ("max", &["3", "8"], &[]),
        ("max", &["[3, 1]", "len"], &["key"]),
        ("dict", &["1", "2"], &["x", "y"]),
        ("CallMe()", &["4", "5"], &["y"]),
        ("raiser", &["1", "2"], &["k"]),
        ("Num", &["10**20"], &[]),
        ("int", &["'10'", "2"], &["base"]),
        ("None", &[], &[]),
        ("[1].count", &["1"], &[]),
        ("len", &["1"], &["obj"]),
    ];
    with_python(move |py, g| {
        for (callable_expr, arg_exprs, keywords) in calls {
            let params: Vec<String> = (0..arg_exprs.len()).map(|i| format!("a{i}")).collect();
            let positional = arg_exprs.len() - keywords.len();
            let mut call_args: Vec<String> = params[..positional].to_vec();
            call_args.extend(keywords.iter().zip(&params[positional..]).map(|(k, p)| format!("{k}={p}")));
            let source = format!(
                "def ref_(f{}):\n    return f({})\n",
                params.iter().map(|p| format!(", {p}")).collect::<String>(),
                call_args.join(", ")
            );
            let reference = define(py, g, &source);
            let mut reference_args = vec![make(py, g, callable_expr)];
            reference_args.extend(arg_exprs.iter().map(|e| make(py, g, e)));
            let expected = outcome(py, reference.call1(PyTuple::new(py, reference_args).unwrap()));

            let callable = make(py, g, callable_expr);
            let args: Vec<Bound<'_, PyAny>> = arg_exprs.iter().map(|e| make(py, g, e)).collect();
            let kwnames = PyTuple::new(py, keywords).unwrap().into_any();
            let pointers: Vec<*mut ffi::PyObject> = args.iter().map(|a| a.as_ptr()).collect();
            let mut watched: Vec<&Bound<'_, PyAny>> = vec![&callable, &kwnames];
            watched.extend(args.iter());
            let before = refcounts(&watched);
            let kwnames_ptr = if keywords.is_empty() { ptr::null_mut() } else { kwnames.as_ptr() };
            // SAFETY: GIL held; live callable, arguments and keyword names.
            let result =
                unsafe { runtime::rjit_rt_call(callable.as_ptr(), pointers.as_ptr(), pointers.len(), kwnames_ptr) };
            let got = helper_outcome(py, result);
            assert_eq!(got, expected, "{source}");
            assert_eq!(refcounts(&watched), before, "reference counts after {source}");
        }
    });
}

#[test]
fn call_rejects_impossible_keyword_names() {
    with_python(|py, g| {
        let callable = make(py, g, "target");
        let arg = make(py, g, "1");
        for (kwnames_expr, why) in [
            ("('a', 'b')", "CALL with more keyword names than arguments"),
            ("['a']", "CALL keyword names are not a tuple"),
        ] {
            let kwnames = make(py, g, kwnames_expr);
            let args = [arg.as_ptr()];
            // SAFETY: GIL held; live objects.
            let result = unsafe { runtime::rjit_rt_call(callable.as_ptr(), args.as_ptr(), 1, kwnames.as_ptr()) };
            let expected = Outcome::Raised {
                ty: "SystemError".into(),
                message: format!("rjit internal error: {why}"),
                name: None,
            };
            assert_eq!(helper_outcome(py, result), expected);
        }
    });
}

// ---- LOAD_GLOBAL ----

#[test]
fn load_global_matches_the_interpreter() {
    let long_name = "n".repeat(250);
    let cases: Vec<(&str, &str, String)> = vec![
        ("{'x': 10**20}", "{'len': len}", "x".into()),
        ("{'x': 1}", "{'len': len}", "len".into()),
        ("{'len': 5}", "{'len': len}", "len".into()),
        ("{}", "{}", "missing".into()),
        ("{}", "{'len': len}", long_name),
        ("LoudDict(x=1)", "{}", "x".into()),
        ("LoudDict()", "{}", "loud".into()),
        ("LoudDict()", "{'len': len}", "len".into()),
        ("LoudDict()", "{}", "nope".into()),
        ("MissingDict()", "{'x': 2}", "x".into()),
        ("MissingDict()", "{}", "x".into()),
        ("{}", "Mapping()", "mapped".into()),
        ("{}", "Mapping()", "nope".into()),
        ("{'y': 1}", "LoudDict(y=2)", "y".into()),
        ("{}", "LoudDict()", "loud".into()),
        ("{BadKey(): 1}", "{}", "clash".into()),
        ("{}", "{BadKey(): 1}", "clash".into()),
    ];
    with_python(move |py, g| {
        for (globals_expr, builtins_expr, name) in &cases {
            // The interpreter: a function of `globals` whose `__builtins__` is `builtins`.
            let code = make(py, g, &format!("compile('def f():\\n    return {name}\\n', 'ref', 'exec').co_consts[0]"));
            let (globals, builtins) = (make(py, g, globals_expr), make(py, g, builtins_expr));
            globals.set_item("__builtins__", &builtins).unwrap();
            let types = py.import("types").unwrap();
            let function = types.getattr("FunctionType").unwrap().call1((code, &globals)).unwrap();
            let expected = outcome(py, function.call0());

            let (globals, builtins) = (make(py, g, globals_expr), make(py, g, builtins_expr));
            globals.set_item("__builtins__", &builtins).unwrap();
            let name_obj = pyo3::types::PyString::new(py, name).into_any();
            let before = refcounts(&[&globals, &builtins, &name_obj]);
            // SAFETY: GIL held; live namespaces and name.
            let result =
                unsafe { runtime::rjit_rt_load_global(globals.as_ptr(), builtins.as_ptr(), name_obj.as_ptr()) };
            let got = helper_outcome(py, result);
            assert_eq!(got, expected, "{name} in {globals_expr} / {builtins_expr}");
            assert_eq!(refcounts(&[&globals, &builtins, &name_obj]), before, "reference counts after loading {name}");
        }
    });
}

// ---- unbound locals ----

/// The `localsplus` slot of `name` in a code object (3.11 has `_varname_from_oparg`).
fn slot_of(code: &Bound<'_, PyAny>, name: &str) -> u32 {
    (0..).find(|&i| code.call_method1("_varname_from_oparg", (i,)).unwrap().to_string() == name).unwrap()
}

#[test]
fn unbound_local_matches_the_interpreter() {
    with_python(|py, g| {
        run(
            py,
            g,
            "def ref_local():\n    x = 1\n    del x\n    return x\n\
             def ref_arg(a):\n    del a\n    return a\n\
             def ref_cell():\n    y = 1\n    def inner():\n        return y\n    del y\n    return y\n\
             def ref_arg_cell(a, b):\n    def inner():\n        return a + b\n    del b\n    return b\n\
             def make_free():\n    def inner():\n        return z\n    if False:\n        z = 1\n    return inner\n\
             ref_free = make_free()\n",
        );
        let cases: [(&str, &str, &[&str]); 5] = [
            ("ref_local", "x", &[]),
            ("ref_arg", "a", &["1"]),
            ("ref_cell", "y", &[]),
            ("ref_arg_cell", "b", &["1", "2"]),
            ("ref_free", "z", &[]),
        ];
        for (function_name, variable, args) in cases {
            let function = g.get_item(function_name).unwrap().unwrap();
            let args = PyTuple::new(py, args.iter().map(|a| make(py, g, a))).unwrap();
            let expected = outcome(py, function.call1(args));
            assert!(matches!(expected, Outcome::Raised { .. }), "{function_name} raises");
            let code = function.getattr("__code__").unwrap();
            let before = refcount(&code);
            // SAFETY: GIL held; a live code object.
            unsafe { runtime::rjit_rt_unbound_local(code.as_ptr(), slot_of(&code, variable)) };
            assert_eq!(status_outcome(py, -1), expected, "{function_name}: {variable}");
            assert_eq!(refcount(&code), before);
        }
    });
}

#[test]
fn unbound_local_names_every_slot() {
    with_python(|py, g| {
        run(
            py,
            g,
            "def outer(a, b, *args, k, **kw):\n    c = 1\n    d = 2\n    def middle():\n        e = 3\n\
             \x20       def inner():\n            return a + d + e + kw\n        return inner\n    return middle\n",
        );
        let outer = g.get_item("outer").unwrap().unwrap();
        run(py, g, "def nested(code):\n    return [c for c in code.co_consts if hasattr(c, 'co_code')][0]\n");
        let middle = make(py, g, "nested(outer.__code__)");
        let inner = make(py, g, "nested(nested(outer.__code__))");
        for code in [outer.getattr("__code__").unwrap(), middle, inner] {
            let freevars = code.getattr("co_freevars").unwrap();
            let mut slot = 0;
            while let Ok(name) = code.call_method1("_varname_from_oparg", (slot,)) {
                // SAFETY: GIL held; a live code object.
                unsafe { runtime::rjit_rt_unbound_local(code.as_ptr(), slot) };
                let got = status_outcome(py, -1);
                let free = freevars.contains(&name).unwrap();
                let expected = if free {
                    Outcome::Raised {
                        ty: "NameError".into(),
                        message: format!(
                            "cannot access free variable '{name}' where it is not associated with a value in enclosing scope"
                        ),
                        name: Some(name.to_string()),
                    }
                } else {
                    Outcome::Raised {
                        ty: "UnboundLocalError".into(),
                        message: format!(
                            "cannot access local variable '{name}' where it is not associated with a value"
                        ),
                        name: None,
                    }
                };
                assert_eq!(got, expected, "slot {slot}");
                slot += 1;
            }
            // SAFETY: as above; one slot past the end.
            unsafe { runtime::rjit_rt_unbound_local(code.as_ptr(), slot) };
            assert_eq!(
                status_outcome(py, -1),
                Outcome::Raised {
                    ty: "SystemError".into(),
                    message: "rjit internal error: local slot out of range for the code object".into(),
                    name: None
                }
            );
        }
    });
}

// ---- the eval breaker ----

static PENDING_CALLS: AtomicUsize = AtomicUsize::new(0);

extern "C" fn counting_pending_call(_: *mut c_void) -> c_int {
    PENDING_CALLS.fetch_add(1, Ordering::SeqCst);
    0
}

extern "C" fn failing_pending_call(_: *mut c_void) -> c_int {
    // SAFETY: pending calls run with the GIL held.
    unsafe { ffi::PyErr_SetString(ffi::PyExc_ValueError, c"pending call failed".as_ptr()) };
    -1
}

fn eval_breaker(py: Python<'_>) -> Outcome {
    // SAFETY: GIL held by this thread, whose state is passed.
    status_outcome(py, unsafe { runtime::rjit_rt_eval_breaker(ffi::PyThreadState_Get()) })
}

const OK: fn() -> Outcome = || Outcome::Value { ty: "int".into(), repr: "0".into() };

#[test]
fn eval_breaker_runs_pending_calls() {
    with_python(|py, _g| {
        assert_eq!(eval_breaker(py), OK());
        let calls = PENDING_CALLS.load(Ordering::SeqCst);
        // SAFETY: GIL held; a function that only counts.
        assert_eq!(unsafe { ffi::Py_AddPendingCall(Some(counting_pending_call), ptr::null_mut()) }, 0);
        assert_eq!(eval_breaker(py), OK());
        assert_eq!(PENDING_CALLS.load(Ordering::SeqCst), calls + 1);
        // SAFETY: as above.
        assert_eq!(unsafe { ffi::Py_AddPendingCall(Some(failing_pending_call), ptr::null_mut()) }, 0);
        assert_eq!(
            eval_breaker(py),
            Outcome::Raised { ty: "ValueError".into(), message: "pending call failed".into(), name: None }
        );
        assert_eq!(eval_breaker(py), OK());
    });
}

extern "C" {
    fn raise(signal: c_int) -> c_int;
}

#[test]
fn eval_breaker_raises_what_a_signal_handler_raises() {
    with_python(|py, g| {
        run(
            py,
            g,
            "import signal\nreceived = []\nclass Interrupted(Exception):\n    pass\n\
             def handler(signum, frame):\n    received.append(signum)\n    raise Interrupted(f'signal {signum}')\n\
             previous = signal.signal(signal.SIGUSR1, handler)\n",
        );
        let signum: c_int = make(py, g, "int(signal.SIGUSR1)").extract().unwrap();
        // SAFETY: Python's C-level handler only records the signal.
        assert_eq!(unsafe { raise(signum) }, 0);
        let got = eval_breaker(py);
        run(py, g, "signal.signal(signal.SIGUSR1, previous)\n");
        assert_eq!(got, Outcome::Raised { ty: "Interrupted".into(), message: format!("signal {signum}"), name: None });
        assert_eq!(value_outcome(&make(py, g, "received")), value_outcome(&make(py, g, &format!("[{signum}]"))));
        assert_eq!(eval_breaker(py), OK(), "the signal is handled once");
    });
}

#[test]
fn eval_breaker_lets_a_waiting_thread_run() {
    with_python(|py, g| {
        run(
            py,
            g,
            "import threading\ngo = threading.Event()\nprogress = []\n\
             def worker():\n    go.wait()\n    for i in range(3):\n        progress.append(i)\n\
             thread = threading.Thread(target=worker)\nthread.start()\n",
        );
        // Read without running bytecode: the interpreter would hand the GIL over itself.
        let progress_list = g.get_item("progress").unwrap().unwrap();
        let progress = || progress_list.len().unwrap();
        // The worker wakes up from `go.wait()` and then needs the GIL, which this thread keeps.
        run(py, g, "go.set()\n");
        thread::sleep(Duration::from_millis(30));
        assert_eq!(progress(), 0, "the worker cannot run while the GIL is held");
        let deadline = Instant::now() + Duration::from_secs(10);
        while progress() < 3 && Instant::now() < deadline {
            assert_eq!(eval_breaker(py), OK());
            thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(progress(), 3, "the worker ran when the eval breaker released the GIL");
        run(py, g, "thread.join()\n");
        no_exception(py);
    });
}

#[test]
fn eval_breaker_leaves_an_async_exception_to_the_interpreter() {
    with_python(|py, g| {
        let id: std::ffi::c_ulong = make(py, g, "__import__('threading').get_ident()").extract().unwrap();
        // pyo3-ffi declares the id `long` where CPython has `unsigned long`: same bits.
        let id = id as std::ffi::c_long;
        // SAFETY: GIL held; the exception type is a live object.
        assert_eq!(unsafe { ffi::PyThreadState_SetAsyncExc(id, ffi::PyExc_ZeroDivisionError) }, 1);
        // Taking it needs CPython internals: the helper returns 1, asking compiled code to let
        // the interpreter run the instruction, which raises it.
        assert_eq!(
            eval_breaker(py),
            Outcome::Value { ty: "int".into(), repr: "1".into() },
            "left to the interpreter"
        );
        // The interpreter raises it at its next eval breaker check (the code's RESUME).
        let raised = py.run(c"x = 1", Some(g), None).unwrap_err();
        assert_eq!(
            exception_outcome(raised.value(py).as_any()),
            Outcome::Raised { ty: "ZeroDivisionError".into(), message: String::new(), name: None }
        );
        run(py, g, "x = 2\n");
    });
}

/// A daemon thread inside a helper when the interpreter finalizes is ended by CPython 3.11
/// with `pthread_exit`: the forced unwind must pass through the helper (a landing pad in its
/// frame, e.g. a `catch_unwind`, would abort the process). The test runs itself again as a
/// child process (with `RJIT_FINALIZATION_CHILD` set), where a daemon thread per helper is
/// inside it, sleeping in Python code, when the interpreter finalizes; the child must exit
/// cleanly.
#[test]
fn daemon_threads_in_helpers_exit_cleanly_at_finalization() {
    if std::env::var_os("RJIT_FINALIZATION_CHILD").is_some() {
        finalization_child();
        return;
    }
    let output = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "daemon_threads_in_helpers_exit_cleanly_at_finalization", "--nocapture", "--test-threads=1"])
        .env("RJIT_FINALIZATION_CHILD", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("finalized cleanly"),
        "child: {}\nstdout:\n{stdout}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The child process of `daemon_threads_in_helpers_exit_cleanly_at_finalization`.
fn finalization_child() {
    let address = |f: *const ()| f as usize;
    let source = format!(
        r#"
import ctypes, threading, time
P = ctypes.py_object
def helper(address, restype, *argtypes):
    return ctypes.PYFUNCTYPE(restype, *argtypes)(address)
call = helper({call}, P, P, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p)
binary_op = helper({binary_op}, P, ctypes.c_uint, P, P)
not_ = helper({not_}, P, P)
is_true = helper({is_true}, ctypes.c_int, P)
contains = helper({contains}, P, P, P, ctypes.c_int)
iter_next = helper({iter_next}, P, P)
unpack = helper({unpack}, P, P, ctypes.c_uint)
load_global = helper({load_global}, P, P, P, P)
eval_breaker = helper({eval_breaker}, ctypes.c_int, ctypes.c_void_p)
ctypes.pythonapi.PyThreadState_Get.restype = ctypes.c_void_p

def nap():
    time.sleep(0.05)
class Sleepy:
    def __add__(self, other):
        nap()
        return 1
    def __bool__(self):
        nap()
        return True
    def __contains__(self, item):
        nap()
        return True
class SleepyDict(dict):
    def __getitem__(self, key):
        nap()
        return 1
def sleepy_items():
    while True:
        nap()
        yield 1
def one_item():
    nap()
    yield 1
items = sleepy_items()
steps = {{
    'call': lambda: call(nap, None, 0, None),
    'binary_op': lambda: binary_op(0, Sleepy(), 1),
    'not': lambda: not_(Sleepy()),
    'is_true': lambda: is_true(Sleepy()),
    'contains': lambda: contains(1, Sleepy(), 0),
    'iter_next': lambda: iter_next(items),
    'unpack_sequence': lambda: unpack(one_item(), 1),
    'load_global': lambda: load_global(SleepyDict(), {{}}, 'x'),
    'eval_breaker': lambda: eval_breaker(ctypes.pythonapi.PyThreadState_Get()),
}}
entered = {{name: threading.Event() for name in steps}}
def worker(name):
    while True:
        entered[name].set()
        steps[name]()
for name in steps:
    threading.Thread(target=worker, args=(name,), daemon=True).start()
for event in entered.values():
    event.wait()
"#,
        call = address(runtime::rjit_rt_call as *const ()),
        binary_op = address(runtime::rjit_rt_binary_op as *const ()),
        not_ = address(runtime::rjit_rt_not as *const ()),
        is_true = address(runtime::rjit_rt_is_true as *const ()),
        contains = address(runtime::rjit_rt_contains as *const ()),
        iter_next = address(runtime::rjit_rt_iter_next as *const ()),
        unpack = address(runtime::rjit_rt_unpack_sequence as *const ()),
        load_global = address(runtime::rjit_rt_load_global as *const ()),
        eval_breaker = address(runtime::rjit_rt_eval_breaker as *const ()),
    );
    let source = CString::new(source).unwrap();
    Python::initialize();
    // SAFETY: the interpreter is initialised; this thread takes the GIL, runs the code and
    // finalizes the interpreter, after which nothing touches Python.
    unsafe {
        let _gil = ffi::PyGILState_Ensure();
        assert_eq!(ffi::PyRun_SimpleString(source.as_ptr()), 0);
        // The daemon threads are now in the helpers, most sleeping with the GIL released.
        thread::sleep(Duration::from_millis(20));
        assert_eq!(ffi::Py_FinalizeEx(), 0);
    }
    // The daemon threads wake up, try to take the GIL and are ended (or, in
    // rjit_rt_eval_breaker, blocked for good by pyo3-ffi's PyEval_RestoreThread).
    thread::sleep(Duration::from_millis(500));
    // Left: the test harness's threads and the one blocked in rjit_rt_eval_breaker.
    let threads = std::fs::read_dir("/proc/self/task").unwrap().count();
    assert!(threads <= 3, "{threads} threads left: the daemon threads did not all end");
    println!("finalized cleanly");
}

// ---- the C API table ----

#[test]
fn capi_functions_are_the_exported_functions() {
    with_python(|py, g| {
        let capi = runtime::capi_functions();
        run(py, g, "deleted = []\nclass Tracker:\n    def __del__(self):\n        deleted.append(True)\n");
        let call = |result: *mut ffi::PyObject| helper_outcome(py, result);
        let value = |expr: &str| value_outcome(&make(py, g, expr));
        let (list, dict, num) = (make(py, g, "[1, 2]"), make(py, g, "{'a': 1}"), make(py, g, "Num(1)"));
        let (one, two, five) = (make(py, g, "1"), make(py, g, "2"), make(py, g, "5"));
        let (key_a, key_b, attr) = (make(py, g, "'a'"), make(py, g, "'b'"), make(py, g, "'v'"));
        // SAFETY (each call below): GIL held; live operands.
        unsafe {
            assert!(matches!(call((capi.get_iter)(list.as_ptr())), Outcome::Value { ty, .. } if ty == "list_iterator"));
            assert_eq!(call((capi.get_attr)(num.as_ptr(), attr.as_ptr())), value("1"));
            assert_eq!((capi.set_attr)(num.as_ptr(), attr.as_ptr(), five.as_ptr()), 0);
            assert_eq!(value_outcome(&num), value("Num(5)"));
            assert_eq!(call((capi.get_item)(dict.as_ptr(), key_a.as_ptr())), value("1"));
            assert_eq!(
                call((capi.get_item)(dict.as_ptr(), key_b.as_ptr())),
                outcome(py, make(py, g, "{}").get_item("b"))
            );
            assert_eq!((capi.set_item)(dict.as_ptr(), key_b.as_ptr(), two.as_ptr()), 0);
            assert_eq!((capi.del_item)(dict.as_ptr(), key_a.as_ptr()), 0);
            assert_eq!(value_outcome(&dict), value("{'b': 2}"));
            assert_eq!(call((capi.rich_compare)(one.as_ptr(), two.as_ptr(), ffi::Py_LT)), value("True"));
            assert_eq!(call((capi.negative)(five.as_ptr())), value("-5"));
            assert_eq!(call((capi.positive)(five.as_ptr())), value("5"));
            assert_eq!(call((capi.invert)(five.as_ptr())), value("-6"));
            // What Py_DECREF does when it releases the last reference.
            let tracker = make(py, g, "Tracker()").into_ptr();
            assert_eq!(ffi::Py_REFCNT(tracker), 1);
            (*tracker).ob_refcnt = 0;
            (capi.dealloc)(tracker);
        }
        assert_eq!(value_outcome(&make(py, g, "deleted")), value("[True]"));
        no_exception(py);
    });
}
