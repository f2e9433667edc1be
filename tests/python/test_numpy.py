"""NumPy arrays and scalars in compiled code: element loads and stores, shapes, NumPy scalar
types, ufuncs. Every case is differential: the same function plain and compiled by
``rjit.jit`` (specialised on its first call's arguments), compared on the result's exact type,
dtype and value, the arrays it mutated, the exception and the warnings.

``native(...)`` checks that the case really runs the native path (the specialised IR indexes
the array itself), so a silent fallback to the C API cannot pass for coverage."""

from __future__ import annotations

import copy
import math
import sys
import threading
import warnings

import pytest

np = pytest.importorskip("numpy")

import rjit
from rjit import _rjit
from test_compiled import make_function

DTYPES = ["float64", "float32", "int64", "int32", "int16", "int8", "uint8", "uint16", "uint32", "uint64", "bool"]


def describe(value):
    """A comparable description of a value: exact type, dtype, shape and contents."""
    if isinstance(value, np.ndarray):
        flags = (value.flags.c_contiguous, value.flags.f_contiguous, value.flags.owndata, value.flags.writeable)
        return (type(value), value.dtype.str, value.shape, value.strides, flags, value.tobytes())
    if isinstance(value, tuple):
        return ("tuple", tuple(describe(v) for v in value))
    if isinstance(value, (float, np.floating)) and math.isnan(value):
        return (type(value), "nan")
    return (type(value), repr(value))


def outcome(func, args):
    """What a call does, with the arguments it mutated and the warnings it gave."""
    args = copy.deepcopy(args)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = ("ok", describe(func(*args)))
        except Exception as exc:  # noqa: BLE001 - the exception is the outcome
            result = ("raise", type(exc), str(exc))
    return result, [describe(a) for a in args], [(w.category, str(w.message)) for w in caught]


def check(source, calls, namespace=None):
    """Runs `source`'s `f` plain and compiled on every argument tuple of `calls` (the first
    call specialises the compiled one); returns the compiled function."""
    ns = {"np": np, "math": math}
    ns.update(namespace or {})
    plain = make_function(source, "f", dict(ns))
    compiled = rjit.jit(make_function(source, "f", dict(ns)))
    for args in calls:
        expected = outcome(plain, args)
        got = outcome(compiled, args)
        assert got == expected, (source, args)
    return compiled


def native(source, args, namespace=None):
    """The specialised IR of `source`'s `f` for `args` indexes arrays natively."""
    ns = {"np": np, "math": math}
    ns.update(namespace or {})
    f = make_function(source, "f", ns)
    ir = _rjit.dump_ir(f.__code__, tuple(args), f.__globals__)
    assert "LoadElement" in ir or "StoreElement" in ir, ir
    return ir


def sample(dtype, shape):
    """An array of `dtype` and `shape` with varied values (negative where signed)."""
    n = int(np.prod(shape))
    if dtype == "bool":
        flat = np.arange(n) % 3 == 0
    elif dtype.startswith("float"):
        flat = (np.arange(n) - n / 2) * 1.25
    elif dtype.startswith("uint"):
        flat = np.arange(n) * 7 % 200
    else:
        flat = (np.arange(n) - n // 2) * 3
    return flat.astype(dtype).reshape(shape)


SUM_1D = "def f(a):\n    s = 0\n    for i in range(a.shape[0]):\n        s += a[i]\n    return s\n"
SUM_2D = (
    "def f(a):\n    s = 0.0\n    for i in range(a.shape[0]):\n        for j in range(a.shape[1]):\n"
    "            s += a[i, j]\n    return s\n"
)
SUM_3D = (
    "def f(a):\n    s = 0\n    for i in range(a.shape[0]):\n        for j in range(a.shape[1]):\n"
    "            for k in range(a.shape[2]):\n                s = s + a[i, j, k] * 2\n    return s\n"
)


@pytest.mark.parametrize("dtype", DTYPES)
def test_element_loads_of_every_dtype_and_ndim(dtype):
    for source, shape in [(SUM_1D, (7,)), (SUM_2D, (3, 4)), (SUM_3D, (2, 3, 2))]:
        a = sample(dtype, shape)
        check(source, [(a,), (a[::-1],), (np.zeros((0,) * len(shape), dtype),), (a.astype("float64"),)])


COUNT_TRUE = "def f(a):\n    n = 0\n    for i in range(a.shape[0]):\n        if a[i]:\n            n += 1\n    return n\n"


def test_native_loads_are_native():
    native(SUM_1D.replace("s = 0", "s = 0.0"), (sample("float64", (5,)),))
    native(SUM_1D, (sample("int64", (5,)),))
    native(SUM_2D, (sample("float64", (2, 3)),))
    native(COUNT_TRUE, (sample("bool", (5,)),))
    check(COUNT_TRUE, [(sample("bool", (5,)),), (sample("bool", (0,)),), (sample("int64", (4,)),)])


def test_loaded_elements_are_numpy_scalars_when_they_escape():
    source = "def f(a, i):\n    x = a[i]\n    return x\n"
    for dtype in ["float64", "int64", "bool"]:
        a = sample(dtype, (5,))
        check(source, [(a, 0), (a, 4), (a, -1), (a, -5), (a, 5), (a, -6)])
    source2 = "def f(a, i, j):\n    return a[i, j], a[i, j] + 1, a[i, j] * 2.5, -a[i, j], a[i, j] < 3\n"
    for dtype in ["float64", "int64"]:
        a = sample(dtype, (3, 4))
        check(source2, [(a, 1, 2), (a, -1, -1), (a, 3, 0), (a, 0, -5)])


def test_index_errors_are_numpys():
    source = "def f(a, n):\n    s = 0.0\n    for i in range(n):\n        s += a[i - 2]\n    return s\n"
    a = sample("float64", (4,))
    check(source, [(a, 4), (a, 6), (a, 7), (a, 0)])
    native(source, (a, 4))
    source2 = "def f(a, i, j):\n    return a[i, j]\n"
    b = sample("int64", (2, 3))
    check(source2, [(b, 1, 1), (b, 2, 0), (b, 0, 3), (b, -3, 0), (b, 0, -4), (b, 1, -3)])


def test_non_contiguous_views_and_transposes():
    a = sample("float64", (6, 5))
    check(SUM_2D, [(a,), (a.T,), (a[::2, ::-1],), (a[1:4, 2:],), (np.asfortranarray(a),)])
    b = sample("int64", (9,))
    check(SUM_1D, [(b,), (b[::3],), (b[::-2],), (b[4:4],)])


def test_other_arrays_and_objects_go_through_the_interpreter():
    a = sample("float64", (4,))
    big_endian = a.astype(">f8")
    obj = np.array([1, 2.5, "x", None], dtype=object)[:2]
    check(SUM_1D, [(a,), (big_endian,), (obj,), (list(range(4)),), (a.reshape(2, 2),), (np.matrix([[1.0, 2.0]]),)])
    complex_array = np.arange(4) + 1j
    check(SUM_1D, [(a,), (complex_array,)])


STORE = "def f(a, v):\n    for i in range(a.shape[0]):\n        a[i] = v\n    return a\n"
STORE_2D = (
    "def f(a, v):\n    for i in range(a.shape[0]):\n        for j in range(a.shape[1]):\n"
    "            a[i, j] = v\n    return a\n"
)

STORE_VALUES = [0, 1, -1, 127, 128, 255, 256, -129, 2**31, 2**53 + 1, 2**63 - 1, -(2**63), 0.0, -0.0, 1.75, -1.75,
                300.5, 1e300, -1e300, math.inf, math.nan, True, False]


@pytest.mark.parametrize("dtype", DTYPES)
def test_stores_convert_as_numpy_does(dtype):
    for first in [1, 1.5, True]:
        calls = [(np.zeros(3, dtype), first)] + [(np.zeros(3, dtype), v) for v in STORE_VALUES]
        check(STORE, calls)
    check(STORE_2D, [(np.zeros((2, 2), dtype), 2), (np.zeros((2, 2), dtype), 7.0), (np.zeros((2, 2), dtype), True)])


def test_native_stores_are_native():
    native(STORE, (np.zeros(3), 1.5))
    native(STORE, (np.zeros(3, "int8"), 5))
    native(STORE_2D, (np.zeros((2, 2)), 1.5))


def test_stores_into_read_only_arrays_raise():
    a = np.zeros(3)
    b = np.zeros(3)
    b.flags.writeable = False
    check(STORE, [(a, 1.0), (b, 1.0), (a, 2.0)])


def test_shape_ndim_size_len():
    source = "def f(a):\n    return a.shape[0], a.shape[-1], a.ndim, a.size, len(a), a.shape[0] * a.ndim\n"
    calls = [(sample("float64", (3, 4)),), (sample("float64", (5, 1)),), (np.zeros((0, 2)),), (sample("int64", (2, 3)),)]
    check(source, calls)
    source2 = "def f(a):\n    return a.shape[2]\n"
    check(source2, [(sample("float64", (3, 4)),), (sample("float64", (3, 4, 5)),)])


def test_numpy_scalar_types_flow_through_loops():
    # s starts as a float and becomes numpy.float64 at the first element: both must box right.
    source = "def f(a):\n    s = 0.0\n    for i in range(len(a)):\n        s += a[i]\n    return s\n"
    calls = [(sample("float64", (5,)),), (np.zeros(0),), (sample("int64", (3,)),), (sample("float64", (1,)),)]
    check(source, calls)
    source2 = "def f(a):\n    t = 0\n    for i in range(a.shape[0]):\n        t = t + a[i]\n    return t, type(t)\n"
    check(source2, [(sample("int64", (4,)),), (np.zeros(0, "int64"),)])
    source3 = (
        "def f(a, k):\n    best = -1.0\n    for i in range(a.shape[0]):\n        x = a[i] * k\n"
        "        if x > best:\n            best = x\n    return best, best > 0\n"
    )
    check(source3, [(sample("float64", (6,)), 2), (sample("float64", (6,)), -1.0), (np.zeros(0), 1)])


def test_numpy_int_overflow_and_division_are_numpys():
    source = "def f(a, b):\n    x = a[0] + b\n    y = a[0] * a[0]\n    z = a[0] // b\n    w = a[0] % b\n    return x, y, z, w, a[0] / b\n"
    big = np.array([2**62], dtype="int64")
    calls = [(np.array([7], "int64"), 2), (big, 2), (np.array([7], "int64"), 0), (np.array([-7], "int64"), -2),
             (np.array([-(2**63)], "int64"), -1), (big, 2**62)]
    check(source, calls)
    source2 = "def f(a, b):\n    return a[0] / b, a[0] // b, a[0] % b, a[0] ** b\n"
    check(source2, [(np.array([1.5]), 2.0), (np.array([1.5]), 0.0), (np.array([-1.5]), 0), (np.array([0.0]), 0.0)])


UFUNC_VALUES = [0.0, -0.0, 0.5, -0.5, 1.0, 2.0, -3.25, 10.0, 700.0, 1e-300, 1e300, math.inf, -math.inf, math.nan, 3, -2, 0]


@pytest.mark.parametrize("name", ["tanh", "sqrt", "exp", "log", "sin", "cos", "tan", "arctan", "log2", "log10",
                                  "floor", "ceil", "absolute", "isnan", "expm1", "log1p", "cbrt"])
def test_ufuncs_on_scalars_match_numpy_bit_for_bit(name):
    source = f"def f(a):\n    return np.{name}(a[0]), np.{name}(a[0] * 1.0)\n"
    calls = [(np.array([v], dtype="float64"),) for v in UFUNC_VALUES if not isinstance(v, int)]
    calls += [(np.array([v], dtype="int64"),) for v in UFUNC_VALUES if isinstance(v, int)]
    check(source, calls)
    # Many values through one compiled loop.
    rng = np.random.default_rng(5)
    xs = np.concatenate([rng.normal(0, 3, 400), rng.uniform(-800, 800, 100)])
    source2 = f"def f(a, out):\n    for i in range(a.shape[0]):\n        out[i] = np.{name}(a[i])\n    return out\n"
    if name == "isnan":
        check(source2, [(xs, np.zeros(len(xs), bool))])
    else:
        check(source2, [(xs, np.zeros(len(xs)))])


def test_ufuncs_of_two_arguments():
    for name in ["minimum", "maximum", "arctan2", "hypot", "fmin", "fmax", "power", "copysign"]:
        source = f"def f(a, b):\n    return np.{name}(a[0], b[0]), np.{name}(a[0], 2.0)\n"
        calls = [(np.array([x]), np.array([y])) for x in [0.0, -0.0, 1.5, -2.0, math.nan, math.inf] for y in [0.0, 2.5, -1.0, math.nan]]
        check(source, calls)


def test_ufunc_rebinding_and_python_numbers():
    source = "def f(x):\n    return np.tanh(x), np.sqrt(x), np.abs(x), np.isnan(x)\n"
    check(source, [(0.5,), (2,), (-3,), (True,), (math.nan,), (2**70,), ("x",)])
    fake = type("FakeNumpy", (), {"tanh": staticmethod(lambda x: "fake"), "sqrt": np.sqrt, "abs": np.abs, "isnan": np.isnan})
    ns = {"np": np}
    func = make_function(source, "f", ns)
    f = rjit.jit(func)
    assert f(0.5) == (np.tanh(0.5), np.sqrt(0.5), np.abs(0.5), np.isnan(0.5))
    func.__globals__["np"] = fake
    assert f(0.5)[0] == "fake"


def test_floating_point_warnings_are_numpys():
    source = "def f(a):\n    return np.sqrt(a[0]), np.log(a[1]), np.exp(a[2])\n"
    check(source, [(np.array([4.0, 1.0, 1.0]),), (np.array([-1.0, 0.0, 1000.0]),), (np.array([1.0, -1.0, -1000.0]),)])
    with np.errstate(all="raise"):
        check(source, [(np.array([4.0, 1.0, 1.0]),), (np.array([-1.0, 1.0, 1.0]),)])


def test_python_code_that_reshapes_the_array_mid_loop():
    # The helper may reshape `a` (a kill): accesses after it are checked again, never stale.
    source = (
        "def f(a, k):\n    s = 0.0\n    for i in range(a.shape[0]):\n        s += a[i]\n        if i == k:\n"
        "            helper(a)\n    return s\n"
    )

    def helper(a):
        a.shape = (a.shape[0] // 2, 2)

    calls = [(np.arange(8.0), 100), (np.arange(8.0), 1), (np.arange(8.0), 3)]
    check(source, calls, {"helper": helper})
    source2 = (
        "def f(a, b):\n    s = 0.0\n    for i in range(a.shape[0]):\n        helper2(a, b)\n        s += a[i]\n    return s\n"
    )

    def helper2(a, b):
        if b:
            a.resize(0, refcheck=False) if False else None
            a.dtype = np.int64

    check(source2, [(np.arange(4.0), False), (np.arange(4.0), True)], {"helper2": helper2})


def test_go_fast_seed_example():
    source = (
        "def f(a):\n    trace = 0.0\n    for i in range(a.shape[0]):\n        trace += np.tanh(a[i, i])\n"
        "    return a + trace\n"
    )
    calls = [(np.arange(100).reshape(10, 10),), (np.arange(1e4).reshape(100, 100) / 1e4,), (np.zeros((0, 0)),),
             (np.arange(6).reshape(2, 3),), (np.arange(9, dtype="float32").reshape(3, 3),), (np.arange(4.0).reshape(2, 2).T,)]
    check(source, calls)
    native(source, (np.arange(100).reshape(10, 10),))


def test_matmul_and_dot_kernels():
    dot = "def f(a, b):\n    s = 0.0\n    for i in range(a.shape[0]):\n        s += a[i] * b[i]\n    return s\n"
    rng = np.random.default_rng(1)
    x, y = rng.random(50), rng.random(50)
    check(dot, [(x, y), (x, y[:10]), (x[:0], y), (x.astype("float32"), y)])
    matmul = (
        "def f(a, b):\n    n = a.shape[0]\n    m = b.shape[1]\n    inner = a.shape[1]\n    c = np.zeros((n, m))\n"
        "    for i in range(n):\n        for j in range(m):\n            s = 0.0\n            for k in range(inner):\n"
        "                s += a[i, k] * b[k, j]\n            c[i, j] = s\n    return c\n"
    )
    a, b = rng.random((7, 5)), rng.random((5, 3))
    check(matmul, [(a, b), (a, b[:4]), (a.T.copy(), a), (np.zeros((0, 2)), np.zeros((2, 3)))])
    native(matmul, (a, b))


def test_reference_counts_of_arrays_are_unchanged():
    source = "def f(a, b):\n    s = 0.0\n    for i in range(a.shape[0]):\n        b[i] = a[i] * 2\n        s += a[i]\n    return s\n"
    f = rjit.jit(make_function(source, "f", {"np": np}))
    a, b = np.arange(10.0), np.zeros(10)
    f(a, b)
    before = (sys.getrefcount(a), sys.getrefcount(b))
    for _ in range(1000):
        f(a, b)
    f(a, b[:3]) if False else None
    assert (sys.getrefcount(a), sys.getrefcount(b)) == before
    with pytest.raises(IndexError):
        f(a, b[:3])
    assert (sys.getrefcount(a), sys.getrefcount(b)) == before


def test_threads_with_arrays():
    source = "def f(a):\n    s = 0.0\n    for i in range(a.shape[0]):\n        s += a[i] * a[i]\n    return s\n"
    f = rjit.jit(make_function(source, "f", {"np": np}))
    plain = make_function(source, "f", {"np": np})
    arrays = [np.arange(20000.0) / (k + 1) for k in range(4)]
    expected = [plain(x) for x in arrays]
    results = [None] * 4

    def work(k):
        for _ in range(20):
            results[k] = f(arrays[k])

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [describe(r) for r in results] == [describe(e) for e in expected]


ARRAY_SCALAR = "def f(a, x):\n    return a + x, x + a, a - x, x - a, a * x, x * a, a / x, x / a\n"


def test_whole_array_arithmetic_with_a_number():
    # Done without NumPy's ufunc machinery for C-contiguous float64/int64 arrays: the result
    # array (dtype, layout, flags, bytes), the warnings and the exceptions must be NumPy's.
    arrays = [np.arange(12.0).reshape(3, 4) - 4, np.arange(6), np.arange(5.0)[::2], np.arange(6.0).reshape(2, 3).T,
              np.arange(4.0).reshape(4, 1), np.zeros((0, 3)), np.arange(3, dtype="float32"), np.array([np.inf, np.nan, -0.0])]
    numbers = [0.5, -2.0, 0.0, -0.0, np.float64(1.5), 3, -7, 0, 2**62, 2**70, np.int64(4), True, math.inf, math.nan]
    calls = [(a, x) for a in arrays for x in numbers]
    check(ARRAY_SCALAR, calls)


def test_whole_array_arithmetic_in_place_and_under_errstate():
    source = "def f(a, x):\n    b = a\n    a += x\n    a *= x\n    return a, b, a is b\n"
    check(source, [(np.arange(4.0), 2.0), (np.arange(4.0), 0.5), (np.arange(3), 2)])
    with np.errstate(divide="raise", invalid="raise"):
        check(ARRAY_SCALAR, [(np.arange(3.0), 2.0), (np.arange(3.0), 0.0), (np.array([np.inf]), math.inf)])


def test_new_argument_types_recompile_a_bounded_number_of_times():
    source = "def f(a):\n    s = 0.0\n    for i in range(a.shape[0]):\n        s += a[i]\n    return s\n"
    plain = make_function(source, "f", {"np": np})
    f = rjit.jit(make_function(source, "f", {"np": np}))
    kinds = [np.arange(5), np.arange(5.0), np.arange(6).reshape(2, 3)[0], np.arange(4.0)[::2], np.ones(3, bool)]
    for rounds in range(3):
        for a in kinds:
            for _ in range(12):
                assert describe(f(a)) == describe(plain(a))
    assert "ndarray[" in str(rjit.info(f))
    before = rjit.stats()["compiled"]
    for _ in range(50):
        for a in kinds:
            assert describe(f(a)) == describe(plain(a))
    # Recompiled for new types at most a few times, then generic: no thrashing.
    assert rjit.stats()["compiled"] - before <= 1


def test_indices_a_loop_does_not_change_are_checked_before_it():
    # `a[i, k]` in a loop over k: i is checked once on entering the loop. Out of bounds there,
    # the interpreter runs the loop: it raises only if the body reaches the access.
    source = "def f(a, i, n):\n    s = 0.0\n    for k in range(n):\n        s += a[i, k] * a[k, i]\n    return s\n"
    a = sample("float64", (3, 3))
    calls = [(a, 0, 3), (a, 5, 0), (a, 5, 2), (a, -1, 2), (a, -4, 1), (a, 2, 4), (a, -3, 3), (a.T, 1, 3)]
    check(source, calls)
    ir = native(source, (a, 0, 3)).split("lir")[0]
    # i checked twice (once per axis it indexes), k not at all: `n <= a.shape[axis]` is.
    assert ir.count("ArrayIndex") == 2 and ir.count("GuardNonNegative") == 2, ir


def test_chained_subscripts_a_i_j():
    source = (
        "def f(a, out):\n    s = 0.0\n    for i in range(a.shape[0]):\n        for j in range(a.shape[1]):\n"
        "            s += a[i][j]\n            out[i][j] = a[i][j] * 2\n    return s, out\n"
    )
    a = sample("float64", (3, 4))
    check(source, [(a, np.zeros((3, 4))), (a.T, np.zeros((4, 3))), (a, np.zeros((2, 4))), (a, np.zeros((3, 2))),
                   (sample("int64", (2, 2)), np.zeros((2, 2), "int64"))])
    ir = native(source, (a, np.zeros((3, 4)))).split("lir")[0]
    assert ir.count("LoadElement") >= 2 and "StoreElement" in ir, ir
    source2 = "def f(a, i, j, k):\n    r = a[i]\n    return a[i][j][k], r[j][k], a[i][j, k] if False else a[i][j][k]\n"
    b = sample("int64", (2, 3, 4))
    check(source2, [(b, 1, 2, 3), (b, -1, -3, -4), (b, 2, 0, 0), (b, 0, 3, 0), (b, 0, 0, 4), (b, 0, -4, 0)])


def test_numpy_scalar_arithmetic_warns_as_numpy_does():
    # np.float64 arithmetic warns on overflow and invalid results (Python floats do not): a
    # non-finite result is redone by the interpreter (found by the fuzzer, warnings as errors).
    source = "def f(a, x):\n    y = a[0] * x\n    z = a[0] - a[1]\n    w = a[0] / x\n    return y, z, w\n"
    calls = [(np.array([1.5, 2.0]), 2.0), (np.array([1e308, 1.0]), 10.0), (np.array([np.inf, np.inf]), 1.0),
             (np.array([1e300, 0.0]), 1e-300), (np.array([np.nan, 1.0]), 3.0), (np.array([2.0, 1.0]), 0.5)]
    check(source, calls)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check(source, calls)
