"""Inlining of small pure functions called through globals (`hir::inline`): the caller
compiled with the helper's body inlined must behave exactly as the interpreter, including when
the inlined body leaves (an overflow, a division by zero: the interpreter redoes the call), and
when the global or the helper's code is rebound while the caller runs."""

from __future__ import annotations

import sys
import traceback

import pytest

import rjit
from conftest import make_function


def namespace(source):
    """Runs `source` in a fresh namespace (fresh code objects) and returns it."""
    ns = {}
    make_function(source, None, ns)
    return ns


def outcome(func, args):
    """('ok', type, repr) or ('raise', type, message, [(function, line) of the traceback])."""
    try:
        result = func(*args)
    except Exception as exc:  # noqa: BLE001 - the exception is the outcome
        frames = [(f.name, f.lineno) for f in traceback.extract_tb(exc.__traceback__)]
        frames = [f for f in frames if f[0] in ("caller", "helper", "other")]
        return ("raise", type(exc), str(exc), frames)
    return ("ok", type(result), repr(result))


def differential(source, calls, inlined=True):
    """Runs `caller` of `source` plain and compiled (fresh namespaces) on each argument tuple;
    checks outcomes are equal and whether the helper was inlined."""
    plain = namespace(source)
    jit = namespace(source)
    if inlined is not None:
        ir = rjit._rjit.dump_ir(jit["caller"].__code__, calls[0], jit)
        assert ("GuardFunction" in ir) == inlined, ir
    compiled = rjit.jit(jit["caller"])
    for args in calls:
        assert outcome(compiled, args) == outcome(plain["caller"], args), args
    return plain, jit


EVAL_A = """
def helper(i, j):
    return 1.0 / ((i + j) * (i + j + 1) // 2 + i + 1)

def caller(n, m, base):
    s = 0.0
    for i in range(n):
        for j in range(m):
            s += helper(base + i, j) * 0.5
    return s
"""


def test_a_pure_helper_is_inlined_and_exact():
    # Large bases overflow the helper's int arithmetic (or do not fit 64 bits at all).
    calls = [(30, 40, 0), (0, 5, 0), (3, 0, 0), (1, 1, 7), (4, 3, 2**31), (3, 3, 2**62), (2, 2, 2**70), (2, 2, -(2**40))]
    differential(EVAL_A, calls)


OVERFLOW = """
def helper(a, b):
    return a * b + 1

def caller(n, k):
    s = 0
    for i in range(n):
        s += helper(i, k)
    return s
"""


def test_an_overflow_inside_the_inlined_body_redoes_the_call_in_the_interpreter():
    # a * b leaves 64 bits from i == 2 on: the result becomes a big int, as interpreted.
    differential(OVERFLOW, [(10, 2**62), (10, 3), (5, -(2**62)), (4, 2**63 - 1)])


RAISES = """
def helper(a, b):
    return a // b

def caller(n, d):
    s = 0
    for i in range(n):
        s += helper(i, d - i)
    return s
"""


def test_an_exception_in_the_inlined_body_has_the_interpreters_traceback():
    # d - i reaches zero: ZeroDivisionError raised in helper, traceback caller -> helper.
    plain, jit = differential(RAISES, [(10, 4), (3, 7), (6, 5)])
    kind, exc_type, _message, frames = outcome(rjit.jit(namespace(RAISES)["caller"]), (10, 4))
    assert (kind, exc_type) == ("raise", ZeroDivisionError)
    assert [name for name, _ in frames] == ["caller", "helper"]


FLOATS = """
def helper(x, y):
    return x * x - y / 2.0

def caller(n, x):
    s = 0.0
    for i in range(n):
        s += helper(x, i)
        x = x * 0.5
    return s
"""


def test_float_and_mixed_arguments():
    differential(FLOATS, [(10, 1.5), (10, -0.0), (5, float("inf")), (5, float("nan")), (3, 2)])


REBIND = """
def helper(a):
    return a + 1

def other(a):
    return a * 100

def rebind():
    global helper
    helper = other

def caller(n, at):
    s = 0
    for i in range(n):
        if i == at:
            rebind()
        s += helper(i)
    return s
"""


def test_rebinding_the_global_mid_loop_leaves_for_the_interpreter():
    plain = namespace(REBIND)
    jit = namespace(REBIND)
    compiled = rjit.jit(jit["caller"])
    assert outcome(compiled, (20, 7)) == outcome(plain["caller"], (20, 7))
    # Both namespaces now call `other`; a new call of the compiled caller sees it too.
    assert outcome(compiled, (20, 100)) == outcome(plain["caller"], (20, 100))


REPLACE_CODE = """
def helper(a):
    return a + 1

def other(a):
    return a * 100

def replace_code():
    helper.__code__ = other.__code__

def caller(n, at):
    s = 0
    for i in range(n):
        if i == at:
            replace_code()
        s += helper(i)
    return s
"""


def test_replacing_the_helpers_code_mid_loop_leaves_for_the_interpreter():
    plain = namespace(REPLACE_CODE)
    jit = namespace(REPLACE_CODE)
    compiled = rjit.jit(jit["caller"])
    assert outcome(compiled, (20, 7)) == outcome(plain["caller"], (20, 7))


NOT_PURE = {
    # A local variable (lives in the helper's frame).
    "local": """
def helper(a, b):
    t = a + b
    return t * t

def caller(n):
    s = 0
    for i in range(n):
        s += helper(i, 3)
    return s
""",
    # A call (runs Python code).
    "call": """
def helper(a, b):
    return abs(a - b)

def caller(n):
    s = 0
    for i in range(n):
        s += helper(i, 3)
    return s
""",
    # A branch (more than one block).
    "branch": """
def helper(a, b):
    if a > b:
        return a
    return b

def caller(n):
    s = 0
    for i in range(n):
        s += helper(i, 3)
    return s
""",
    # Recursion.
    "recursive": """
def caller(n):
    if n < 2:
        return n
    return caller(n - 1) + caller(n - 2)
""",
}


@pytest.mark.parametrize("case", sorted(NOT_PURE))
def test_helpers_that_are_not_pure_machine_code_are_called_not_inlined(case):
    differential(NOT_PURE[case], [(10,), (0,), (15,)], inlined=False)


def test_inlined_calls_leak_no_references():
    plain = namespace(OVERFLOW)
    jit = namespace(OVERFLOW)
    compiled = rjit.jit(jit["caller"])
    k = 2**62 + 12345
    before = sys.getrefcount(k)
    for _ in range(2000):
        assert compiled(6, k) == plain["caller"](6, k)
    assert sys.getrefcount(k) == before


NUMPY_SCALAR = """
import numpy as np

def helper(p1, p2):
    return p1 % (1 >= p2)

def caller(flag, arr):
    return helper(flag >= 7, arr[-1])
"""


def test_a_helper_that_stays_generic_where_inlined_is_called():
    # Checked as machine code for the argument kinds, the helper's body still runs NumPy's
    # bool remainder in the caller (arr[-1] is loaded generically there): it is not inlined,
    # so the warning raised as an error shows the helper in the traceback (a fuzzer find).
    import warnings

    np = pytest.importorskip("numpy")
    arr = np.array([0.11, 3.25, -2.0, 4.86])
    plain, jit = namespace(NUMPY_SCALAR), namespace(NUMPY_SCALAR)
    compiled = rjit.jit(jit["caller"])
    for args in [(0, arr), (9, arr), (False, arr)]:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            expected = outcome(plain["caller"], args)
            got = outcome(compiled, args)
        assert got == expected, args
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        kind, exc_type, _message, frames = outcome(compiled, (0, arr))
    assert (kind, exc_type) == ("raise", RuntimeWarning)
    assert [name for name, _ in frames] == ["caller", "helper"]
