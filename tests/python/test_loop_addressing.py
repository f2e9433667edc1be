"""Differential tests of loop address arithmetic (src/lir/loops.rs) and of the float
operations computed in place (src/backend/x86_64.rs), plain vs compiled.

- `k * stride` in a loop over `k` becomes a value that grows by `stride` each iteration
  (strength reduction), for steps 1, -1 and 2, in `for` and `while` loops;
- the invariant part of an element address (`data + row offset`, `data + j * 8`) is added up
  once before the loop;
- `s = s + x` and `x * y` are computed in the register of whichever operand the result shares.

Arrays of every layout the guards accept (C order, Fortran order, strided and reversed views,
empty axes) and values that leave the loop through an exit in the middle (a non-finite sum, an
int64 overflow, an index out of bounds) must give the interpreter's result to the bit."""

from __future__ import annotations

import numpy as np
import pytest

from test_compiled import compiled_pair


def result_of(func, args):
    """('ok', bytes/repr of the result, the arrays' bytes afterwards) or ('raise', type, message)."""
    args = [a.copy(order="K") if isinstance(a, np.ndarray) else a for a in args]
    try:
        r = func(*args)
    except Exception as exc:  # noqa: BLE001 - the exception is the outcome
        return ("raise", type(exc), str(exc))
    if isinstance(r, np.ndarray):
        r = (r.dtype.str, r.shape, r.tobytes())
    elif isinstance(r, float):
        r = (type(r), r.hex())
    else:
        r = (type(r), repr(r))
    after = [(a.dtype.str, a.shape, a.tobytes()) for a in args if isinstance(a, np.ndarray)]
    return ("ok", r, after)


def check(source, arg_tuples, name="f"):
    plain, compiled = compiled_pair(source, name)
    for args in arg_tuples:
        assert result_of(plain, args) == result_of(compiled, args), (source, args)


MATMUL = """
import numpy as np
def f(a, b):
    n = a.shape[0]
    m = b.shape[1]
    inner = a.shape[1]
    c = np.zeros((n, m))
    for i in range(n):
        for j in range(m):
            s = 0.0
            for k in range(inner):
                s += a[i, k] * b[k, j]
            c[i, j] = s
    return c
"""

rng = np.random.default_rng(11)


def layouts(rows, cols):
    base = rng.random((rows * 2 + 1, cols * 3 + 2))
    return [
        base[:rows, :cols].copy(),
        np.asfortranarray(base[:rows, :cols]),
        base[::2, ::3][:rows, :cols],
        base[::-2, ::-3][:rows, :cols],
    ]


def test_matmul_over_every_layout():
    cases = []
    for a in layouts(5, 7):
        for b in layouts(7, 4):
            cases.append((a, b))
    # Compiled first for C-contiguous arrays, then the other layouts (recompiles, or the
    # generic path) and odd shapes.
    cases += [(rng.random((3, 0)), rng.random((0, 2))), (rng.random((1, 1)), rng.random((1, 1))),
              (rng.random((9, 33)), rng.random((33, 2)))]
    check(MATMUL, cases)


def test_matmul_leaving_mid_loop_on_a_non_finite_sum():
    a = rng.random((4, 6))
    b = rng.random((6, 3))
    b_inf = b.copy()
    b_inf[3, 1] = np.inf
    b_nan = b.copy()
    b_nan[5, 2] = np.nan
    huge = np.full((4, 6), 1e308)
    check(MATMUL, [(a, b), (a, b_inf), (a, b_nan), (huge, b), (a, b)])


def test_reversed_and_strided_inner_loops():
    source = """
def f(a, b, i, j):
    s = 0.0
    for k in range(a.shape[1] - 1, -1, -1):
        s += a[i, k] * b[k, j]
    t = 0.0
    for k in range(0, a.shape[1], 2):
        t = t * 0.5 + a[i, k] * b[k, j]
    u = 0.0
    for k in range(1, a.shape[1], 3):
        u = a[i, k] * b[k, j] - u
    return s, t, u
"""
    a = rng.random((4, 10))
    b = rng.random((10, 5))
    check(source, [(a, b, 0, 0), (a, b, 3, 4), (a, b, -1, -2), (a, b, 4, 0), (a, b, 0, 5), (a.T.copy(), b.T.copy(), 1, 1)])


def test_while_loop_induction_variable():
    source = """
def f(a, b, j, n):
    s = 0.0
    k = 0
    while k < n:
        s = a[j, k] * b[k, j] + s
        k += 1
    return s, k
"""
    a = rng.random((6, 6))
    b = rng.random((6, 6))
    # n past the end: IndexError from the compiled loop's bounds check, in the middle.
    check(source, [(a, b, 2, 6), (a, b, 0, 0), (a, b, 5, 3), (a, b, 1, 7), (a, b, -1, 6)])


def test_int64_products_that_overflow_in_the_middle():
    source = """
def f(a, b):
    n = a.shape[0]
    tot = 0
    for i in range(n):
        for k in range(a.shape[1]):
            tot += a[i, k] * b[k, i]
    return tot
"""
    a = rng.integers(-1000, 1000, (5, 5))
    b = rng.integers(-1000, 1000, (5, 5))
    big = a.copy()
    big[2, 3] = 2**62
    check(source, [(a, b), (big, b), (a, b)])


def test_three_dimensional_and_stores_in_the_loop():
    source = """
def f(x, out):
    for i in range(x.shape[0]):
        for j in range(x.shape[1]):
            for k in range(x.shape[2]):
                out[i, k, j] = x[i, j, k] * 2.0 + out[i, k, j]
    return out
"""
    x = rng.random((3, 4, 5))
    out = rng.random((3, 5, 4))
    check(source, [(x, out), (x[:, ::-1, ::2], out[:, :3, :]), (x, out)])


def test_float_operations_sharing_an_operand_register():
    source = """
def f(xs, y):
    s = 0.0
    p = 1.0
    for k in range(xs.shape[0]):
        v = xs[k]
        s = v + s
        p = p * (v + 0.5)
        y = y * v
        s = s - y
    return s, p, y
"""
    xs = rng.random(50)
    nan = xs.copy()
    nan[7] = np.nan
    check(source, [(xs, 1.5), (xs, -0.0), (nan, 2.0), (xs[::-3], 0.25), (np.zeros(0), 1.0)])


@pytest.mark.parametrize("cond", ["k < n", "k <= n", "n > k", "n >= k", "k != n", "not k == n"])
def test_rotated_loop_conditions(cond):
    # The back-edge repeats the header's comparison (one conditional jump per iteration):
    # every comparison, loops that run 0, 1 and many times, and an exit in the middle.
    source = f"""
def f(xs, n):
    s = 0.0
    k = 0
    while {cond}:
        s = s * 0.75 + xs[k]
        k += 1
    return s, k
"""
    xs = rng.random(40)
    cases = [(xs, 10), (xs, 0), (xs, 1), (xs, 39)]
    if cond not in ("k != n", "not k == n"):
        cases += [(xs, -3), (xs, 45)]  # 45: IndexError in the middle (k <= n: at n = 39 too)
    check(source, cases)


def test_rotated_nested_loops_with_a_descending_inner_loop():
    source = """
def f(a):
    t = 0.0
    i = 0
    while i < a.shape[0]:
        j = a.shape[1] - 1
        while j >= 0:
            t = a[i, j] - t * 0.5
            j -= 1
        i += 1
    return t
"""
    a = rng.random((7, 9))
    check(source, [(a,), (a[:, :1],), (a[:0],), (a[::-1, ::2],)])
