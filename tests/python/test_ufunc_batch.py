"""NumPy ufunc calls of a loop batched over its iterations (`hir::ufunc_batch`,
`runtime::ufunc_batch`): NumPy's loop is called once for a chunk of the elements the loop's
next iterations read. Results (bits and types), warnings, `np.errstate` and exceptions must be
the interpreter's for every length (chunk boundaries), layout, dtype and ufunc; results are
never reused across calls (an array changed between two calls) or across entries into a loop."""

from __future__ import annotations

import warnings

import pytest

np = pytest.importorskip("numpy")

import rjit
from test_inline_hoist import namespace, outcome

DIAGONAL = """
import numpy as np

def f(a):
    t = 0.0
    for i in range(a.shape[0]):
        t += np.NAME(a[i, i])
    return t

def g(a):
    t = 0.0
    for i in range(a.shape[0]):
        t += np.NAME(a[i])
    return t
"""

NAMES = [
    "tanh", "sqrt", "exp", "log", "sin", "cos", "tan", "arctan", "arcsin", "arccos", "sinh", "cosh", "arcsinh",
    "arccosh", "arctanh", "log2", "log10", "log1p", "expm1", "exp2", "cbrt", "floor", "ceil", "trunc", "rint", "fabs",
]


def hir(ns, name, args):
    return rjit._rjit.dump_ir(ns[name].__code__, args, ns).split("lir ")[0].split("HIR after")[-1]


def bits(x):
    return (type(x), np.float64(x).tobytes())


def test_go_fast_is_batched():
    ns = namespace(DIAGONAL.replace("NAME", "tanh"))
    a = np.arange(100).reshape(10, 10)
    ir = hir(ns, "f", (a,))
    assert "UfuncBatched" in ir and "UfuncBatchBegin" in ir, ir
    for b in (np.linspace(0.0, 1.0, 5), np.arange(5), np.linspace(0.0, 1.0, 10)[::-2]):
        assert "UfuncBatched" in hir(ns, "g", (b,)), b


@pytest.mark.parametrize("name", NAMES)
def test_every_ufunc_gives_the_interpreters_bits_for_every_length(name):
    source = DIAGONAL.replace("NAME", name)
    plain, jit = namespace(source), namespace(source)
    f, g = rjit.jit(jit["f"]), rjit.jit(jit["g"])
    rng = np.random.default_rng(abs(hash(name)) % 1000)
    special = [0.0, -0.0, 0.5, 1.0, np.nan, -np.nan, np.inf, -np.inf, 5e-324, 1e300, -1e300, 710.0, -745.0]
    pool = np.concatenate([rng.uniform(-3.0, 3.0, 300), rng.uniform(0.0, 1.0, 100), rng.uniform(1.0, 50.0, 100), special])
    for n in [0, 1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 130]:
        values = rng.choice(pool, n)
        with np.errstate(all="ignore"):
            ints = np.nan_to_num(values * 7, posinf=2**62, neginf=-(2**62)).astype(np.int64)
        for a in (values, ints, np.diag(values), np.diag(ints)):
            func, py = (f, plain["f"]) if a.ndim == 2 else (g, plain["g"])
            with warnings.catch_warnings(record=True) as got_w, np.errstate(all="warn"):
                warnings.simplefilter("always")
                got = outcome(func, (a,))
            with warnings.catch_warnings(record=True) as want_w, np.errstate(all="warn"):
                warnings.simplefilter("always")
                want = outcome(py, (a,))
            assert got == want, (name, n, a.dtype, a.ndim)
            assert [str(w.message) for w in got_w] == [str(w.message) for w in want_w]
            if got[0] == "ok":
                with np.errstate(all="ignore"):
                    mine, theirs = func(a), py(a)
                # (The sign of a NaN sum depends on the order NaNs are added in, which float
                # addition does not define: compiled code and NumPy's scalars already differ
                # there without batching.)
                assert bits(mine) == bits(theirs) or (np.isnan(mine) and np.isnan(theirs) and type(mine) is type(theirs))


def test_strided_and_reversed_views():
    source = DIAGONAL.replace("NAME", "tanh")
    plain, jit = namespace(source), namespace(source)
    g = rjit.jit(jit["g"])
    base = np.linspace(-4.0, 4.0, 301)
    for view in (base[::3], base[::-1], base[::-7], base[5:200:2], np.arange(301)[::-2]):
        for _ in range(2):
            assert bits(g(view)) == bits(plain["g"](view))


def test_results_are_not_reused_across_calls_when_the_array_changes():
    source = DIAGONAL.replace("NAME", "tanh")
    plain, jit = namespace(source), namespace(source)
    f = rjit.jit(jit["f"])
    a = np.arange(100).reshape(10, 10)
    for k in range(20):
        a[k % 10, k % 10] = k * 3 - 11
        assert bits(f(a)) == bits(plain["f"](a))


INNER = """
import numpy as np

def f(a, n):
    t = 0.0
    for k in range(n):
        a[k % a.shape[0]] += 1.0
        for i in range(a.shape[0]):
            t += np.tanh(a[i])
    return t

def two(a, b):
    t = 0.0
    for i in range(a.shape[0]):
        t += np.tanh(a[i]) * np.sin(b[i]) + np.tanh(b[i])
    return t

def nested(a):
    t = 0.0
    for i in range(a.shape[0]):
        t += np.sin(a[i, 0])
        for j in range(a.shape[1]):
            t += np.tanh(a[i, j])
    return t

def stores(a):
    t = 0.0
    for i in range(a.shape[0] - 1):
        a[i + 1] = a[i] * 0.5
        t += np.tanh(a[i + 1])
    return t

def early(a, stop):
    t = 0.0
    for i in range(a.shape[0]):
        if i == stop:
            return t
        t += np.tanh(a[i])
    return t
"""


def test_arrays_changed_between_entries_into_an_inner_loop():
    plain, jit = namespace(INNER), namespace(INNER)
    f = rjit.jit(jit["f"])
    for n in (1, 3, 40):
        a, b = np.linspace(-1.0, 1.0, 45), np.linspace(-1.0, 1.0, 45)
        assert bits(f(a, n)) == bits(plain["f"](b, n))
        assert np.array_equal(a, b)


def test_two_batched_calls_and_nested_loops():
    plain, jit = namespace(INNER), namespace(INNER)
    two, nested = rjit.jit(jit["two"]), rjit.jit(jit["nested"])
    rng = np.random.default_rng(3)
    for n in (1, 5, 33, 70, 200):
        a, b = rng.uniform(-2, 2, n), rng.uniform(-2, 2, n)
        assert bits(two(a, b)) == bits(plain["two"](a, b))
        m = rng.uniform(-2, 2, (n, 37))
        assert bits(nested(m)) == bits(plain["nested"](m))


def test_a_loop_that_stores_is_not_batched_and_matches():
    plain, jit = namespace(INNER), namespace(INNER)
    a = np.linspace(1.0, 2.0, 50)
    assert "UfuncBatched" not in hir(jit, "stores", (a.copy(),))
    stores = rjit.jit(jit["stores"])
    x, y = a.copy(), a.copy()
    assert bits(stores(x)) == bits(plain["stores"](y))
    assert np.array_equal(x, y)


def test_leaving_the_loop_early():
    plain, jit = namespace(INNER), namespace(INNER)
    early = rjit.jit(jit["early"])
    a = np.linspace(-3.0, 3.0, 90)
    for stop in (0, 1, 31, 32, 33, 89, 1000):
        assert bits(early(a, stop)) == bits(plain["early"](a, stop))


WARNS = """
import numpy as np

def f(a):
    t = 0.0
    for i in range(a.shape[0]):
        t += np.log(a[i])
    return t
"""


@pytest.mark.parametrize("at", [0, 1, 31, 32, 40, 99])
@pytest.mark.parametrize("errors", ["warn", "raise", "ignore", "call"])
def test_a_floating_point_exception_in_a_chunk_warns_or_raises_where_the_interpreter_does(at, errors):
    plain, jit = namespace(WARNS), namespace(WARNS)
    f = rjit.jit(jit["f"])
    a = np.linspace(1.0, 5.0, 100)
    a[at] = 0.0 if at % 2 == 0 else -1.0
    f(np.array([1.0, 2.0]))

    def run(func):
        calls = []
        with warnings.catch_warnings(record=True) as caught, np.errstate(all=errors, call=lambda *args: calls.append(args)) if errors == "call" else np.errstate(all=errors):
            warnings.simplefilter("always")
            got = outcome(func, (a,))
        return got, [(w.category, str(w.message), w.lineno) for w in caught], calls

    for _ in range(2):
        assert run(f) == run(plain["f"])


SIGNAL = """
import numpy as np

def f(a):
    t = 0.0
    for i in range(a.shape[0]):
        t += np.tanh(a[i])
    return t
"""


def test_a_signal_handler_changing_the_array_mid_loop_is_seen():
    import signal

    plain, jit = namespace(SIGNAL), namespace(SIGNAL)
    f = rjit.jit(jit["f"])
    f(np.zeros(3))
    n = 2_000_000
    results = []
    for func in (f, plain["f"]):
        a = np.ones(n)

        def handler(*_):
            a[:] = -1.0  # every element the loop has not read yet

        previous = signal.signal(signal.SIGALRM, handler)
        try:
            signal.setitimer(signal.ITIMER_REAL, 0.002)
            t = func(a)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
        # Elements read before the handler ran count +tanh(1), after it -tanh(1): the sum
        # must be what some split point gives (a stale batch would break this).
        k = (t / np.tanh(1.0) + n) / 2
        results.append(abs(k - round(k)) < 1e-3 * n and 0 <= round(k) < n)
    assert results == [True, True]


MANY = """
import numpy as np

def f(a):
    t = 0.0
    for i in range(a.shape[0]):
        t += np.sin(a[i]) + np.cos(a[i]) + np.tanh(a[i]) + np.exp(a[i]) + np.arctan(a[i]) + np.sqrt(a[i])
    return t
"""


def test_more_calls_than_kept_chunks():
    plain, jit = namespace(MANY), namespace(MANY)
    a = np.linspace(0.0, 2.0, 77)
    ir = hir(jit, "f", (a,))
    assert ir.count("UfuncBatched") == 4 and "UfuncCall" in ir, ir
    f = rjit.jit(jit["f"])
    for n in (0, 1, 40, 77):
        assert bits(f(a[:n])) == bits(plain["f"](a[:n]))
