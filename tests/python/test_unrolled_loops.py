"""Differential tests of loop unrolling (src/lir/unroll.rs), plain vs compiled.

An innermost counted loop with a straight-line body runs four iterations (eight for the
smallest bodies) per pass through an unrolled copy of its body, then the remaining ones in the
original loop. What must not change:

- the result, to the bit (a float sum adds in the same order), for every trip count (0 to
  past a multiple of eight: the remainder loop runs 0-7 iterations);
- where a guard fails: an int overflow, an index out of range, a non-finite NumPy result
  leaving in any of the copies hands the interpreter the frame of that iteration (the same
  result, exception, message, warnings and stores done before it);
- bounds next to the ends of the 64-bit range (the unrolled bound `n - 7` must not wrap).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import rjit
from test_compiled import compiled_pair, outcome


def result_of(func, args):
    """The outcome of a call, with float results by their bits, arrays by their bytes (the
    arguments' too, after the call) and the warnings raised."""
    args = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            r = func(*args)
        except Exception as exc:  # noqa: BLE001 - the exception is the outcome
            r = ("raise", type(exc), str(exc))
    if isinstance(r, float):
        r = (type(r), r.hex())
    elif isinstance(r, np.ndarray):
        r = (r.dtype.str, r.shape, r.tobytes())
    elif not (isinstance(r, tuple) and r and r[0] == "raise"):
        r = (type(r), repr(r))
    after = [(a.dtype.str, a.tobytes()) for a in args if isinstance(a, np.ndarray)]
    return r, after, [(w.category, str(w.message)) for w in caught]


def check(source, arg_tuples):
    plain, compiled = compiled_pair(source)
    for args in arg_tuples:
        assert result_of(compiled, args) == result_of(plain, args), (source, args)
    return plain, compiled


def lir(func, args):
    return rjit._rjit.dump_ir(func.__code__, args, func.__globals__).split("\nlir ")[1]


FLOAT_SUM = """
def f(a, n):
    s = 0.0
    for i in range(n):
        s += a[i] * 1.5
    return s
"""


def test_the_loop_is_unrolled_eight_times():
    plain, _ = check(FLOAT_SUM, [(np.linspace(0.1, 3.0, 20), 20)])
    text = lir(plain, (np.linspace(0.1, 3.0, 20), 20))
    # One block with eight element loads (the unrolled body, small enough for eight) and one
    # with a single load (the loop of the remaining iterations).
    blocks = text.split("\nL")
    loads = sorted(b.count("float64[") for b in blocks if "float64[" in b)
    assert loads == [1, 8], loads
    # Each copy's element at a displacement from the same index: no increment between them.
    assert "*8 + 56]" in text


@pytest.mark.parametrize("n", range(0, 20))
def test_float_sums_add_in_the_same_order_for_every_trip_count(n):
    # Values of very different magnitudes: any change in the order of the additions shows.
    a = np.array([1e16, 1.0, -1e16, 3.0, 0.1, 1e-3, 7e15, 2.5, -7e15, 0.3, 1e-8, 5.0, 1e10, -1e10, 4.5, 1e17, 0.7, -1e17, 2.0, 1e-5])
    check(FLOAT_SUM, [(a, n)])


INT_SUM = """
def f(lo, hi, m):
    s = 0
    for i in range(lo, hi):
        s += i * m
    return s
"""


@pytest.mark.parametrize("stop", range(1, 18))
def test_an_int_overflow_in_each_copy_leaves_with_that_iteration(stop):
    # s passes 2**63 at iteration `stop - 1` (0-based): in each of the copies in turn.
    m = (2**63 - 1) // (stop * (stop - 1) // 2 + stop) + 1
    check(INT_SUM, [(1, stop + 1, m), (1, stop + 5, m), (0, 20, 3)])


def test_bounds_next_to_the_ends_of_the_64_bit_range():
    big = 2**63 - 1
    check(INT_SUM, [(big - 9, big, 1), (big - 2, big, 1), (-(2**63), -(2**63) + 7, -1), (-(2**63), -(2**63) + 2, 0)])


INDEXED = """
def f(a, n, off):
    s = 0.0
    for i in range(n):
        s += a[i + off]
    return s
"""


@pytest.mark.parametrize("n", range(4, 20))
def test_an_index_out_of_range_in_each_copy_raises_as_numpy_does(n):
    a = np.arange(10, dtype=np.float64) + 0.25
    check(INDEXED, [(a, n, 0), (a, n, 1), (a, n, -8), (a, 3, 0)])


STORES = """
def f(a, out, n):
    for i in range(n):
        out[i] = a[i] * 1e300
    return out
"""


@pytest.mark.parametrize("bad", range(0, 17))
def test_stores_before_a_failing_guard_are_the_interpreters(bad):
    # a[bad] * 1e300 overflows: NumPy warns; the stores before it are done, as interpreted.
    a = np.full(17, 0.5)
    a[bad] = 1e10
    check(STORES, [(a, np.zeros(17), 17), (a, np.zeros(17), bad + 1)])


INT64_ARRAY = """
def f(a, n):
    s = 0
    for i in range(n):
        s += a[i]
    return s
"""


@pytest.mark.parametrize("where", range(0, 17))
def test_int64_array_overflow_in_each_copy(where):
    a = np.ones(17, dtype=np.int64)
    a[where] = np.iinfo(np.int64).max
    check(INT64_ARRAY, [(a, 17), (a, where + 1), (a, where)])


MATMUL = """
import numpy as np
def f(a, b):
    c = np.zeros((a.shape[0], b.shape[1]))
    for i in range(a.shape[0]):
        for j in range(b.shape[1]):
            s = 0.0
            for k in range(a.shape[1]):
                s += a[i, k] * b[k, j]
            c[i, j] = s
    return c
"""


@pytest.mark.parametrize("inner", [0, 1, 3, 4, 5, 7, 8, 9, 11, 16, 19])
def test_matmul_inner_lengths(inner):
    rng = np.random.default_rng(inner)
    a, b = rng.random((3, inner)) - 0.5, rng.random((inner, 4)) - 0.5
    check(MATMUL, [(a, b), (a.T.copy().T, b[:, ::-1])])
    # A non-finite product in the middle of the inner loop: leaves, the interpreter warns.
    if inner:
        a2 = a.copy()
        a2[1, inner // 2] = 1e308
        b2 = b.copy()
        b2[inner // 2, :] = 1e308
        check(MATMUL, [(a2, b2)])


@pytest.mark.parametrize(
    "source, args",
    [
        (FLOAT_SUM, (np.ones(5), 5)),
        (INT_SUM, (1, 9, 3)),
        (INDEXED, (np.ones(6), 4, 0)),
        (STORES, (np.ones(9), np.zeros(9), 9)),
        (INT64_ARRAY, (np.ones(8, dtype=np.int64), 8)),
        (MATMUL, (np.ones((3, 4)), np.ones((4, 3)))),
    ],
)
def test_every_case_here_is_unrolled(source, args):
    # The unrolled loop's bound: `n - 7` (or `n - 3`), or the lowest int where that would wrap.
    plain, _ = compiled_pair(source)
    assert "0x8000000000000000" in lir(plain, args)
