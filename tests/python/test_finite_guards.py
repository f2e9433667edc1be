"""NumPy float64 arithmetic warns where an operation raises a floating-point exception; compiled
code checks the processor's (sticky) flags and lets the interpreter redo the operations. Checks
are merged (`s += a[i] * b[i]` checks once, the interpreter redoing both from the first), or
moved to where a loop is left: the warnings (their number, their text, and which operation
raises when warnings are errors) must be the interpreter's."""

from __future__ import annotations

import warnings

import pytest

np = pytest.importorskip("numpy")

from test_numpy import check, native

DOT = """
def f(a, b):
    s = 0.0
    for i in range(a.shape[0]):
        s += a[i] * b[i]
    return s
"""

CHAIN = """
def f(a, b, c):
    s = 0.0
    for i in range(a.shape[0]):
        t = a[i] * b[i] - c[i] / b[i]
        s = s * 0.5 + t
    return s, t
"""

BIG, INF, NAN = 1e200, float("inf"), float("nan")


def arrays(*rows):
    return tuple(np.array(r, dtype=np.float64) for r in rows)


DOT_CALLS = [
    arrays([1.0, 2.0, 3.0], [4.0, 5.0, 6.0]),
    arrays([BIG, 1.0], [BIG, 1.0]),            # the product overflows
    arrays([1e308, 1e308], [1.0, 1.0]),        # the sum overflows, the products do not
    arrays([INF, 1.0], [0.0, 2.0]),            # inf * 0: invalid
    arrays([NAN, 1.0], [1.0, 1.0]),            # nan propagates (no warning)
    arrays([INF, 1.0], [1.0, 1.0]),            # inf input: no warning, every step leaves
    arrays([1.0, -INF], [INF, 1.0]),           # inf - inf: invalid in the sum
    arrays([], []),
]


def test_merged_checks_warn_as_the_interpreter_does():
    check(DOT, DOT_CALLS)
    ir = native(DOT, DOT_CALLS[0]).split("lir ")[0].split("HIR after")[-1]
    # The loop only computes: it checks the flags once, where it is left (see test_fp_flags).
    body = ir[ir.index("FloatMul"):]
    assert "GuardFpFlags" not in body[: body.index("CheckEvalBreaker")], ir
    assert ir.count("GuardFpFlags") == 1, ir


def test_merged_checks_raise_where_the_interpreter_raises_with_warnings_as_errors():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check(DOT, DOT_CALLS)


def test_a_chain_of_operations():
    calls = [
        arrays([1.0, 2.0], [3.0, 4.0], [5.0, 6.0]),
        arrays([BIG, 2.0], [BIG, 4.0], [5.0, 6.0]),
        arrays([1.0, 2.0], [0.0, 4.0], [5.0, 6.0]),   # c / 0: divide by zero
        arrays([1.0, 2.0], [1e-300, 4.0], [1e300, 6.0]),  # the quotient overflows
        arrays([1.0, INF], [1.0, 1.0], [1.0, INF]),   # inf - inf
        arrays([1e308, 1e308, 1e308], [2.0, 1.0, 1.0], [0.0, 0.0, 0.0]),
    ]
    check(CHAIN, calls)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check(CHAIN, calls)
