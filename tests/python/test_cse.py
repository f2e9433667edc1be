"""A machine operation its block repeats with the same operands is computed once
(`hir::cse`): results, overflows (the first one leaves for the interpreter) and exceptions
must stay exactly the interpreter's."""

from __future__ import annotations

import traceback

import pytest

import rjit
from conftest import make_function


def namespace(source):
    ns = {}
    make_function(source, None, ns)
    return ns


def outcome(func, args):
    try:
        result = func(*args)
    except Exception as exc:  # noqa: BLE001 - the exception is the outcome
        frames = [(f.name, f.lineno) for f in traceback.extract_tb(exc.__traceback__) if f.name == "caller"]
        return ("raise", type(exc), str(exc), frames)
    return ("ok", type(result), repr(result))


INTS = """
def caller(a, n):
    s = 0
    for i in range(n):
        s += (a + i) * (a + i + 1) // 2
    return s
"""

FLOATS = """
def caller(x, y, n):
    s = 0.0
    for i in range(n):
        s += x / y + x / y * 0.5
    return s
"""


def ops(source, args, name):
    ns = namespace(source)
    ir = rjit._rjit.dump_ir(ns["caller"].__code__, args, ns).split("lir")[0]
    return sum(1 for line in ir.splitlines() if f"= {name} " in line)


def test_a_repeated_int_add_is_computed_once():
    assert ops(INTS, (3, 4), "IntAdd") == ops(INTS.replace("(a + i + 1)", "(a + 1 + i)"), (3, 4), "IntAdd") - 1


@pytest.mark.parametrize("a", [0, 3, -7, 2**31, 2**62, 2**63 - 3, -(2**63)])
def test_repeated_int_operations_overflow_as_the_interpreter(a):
    plain, jit = namespace(INTS), namespace(INTS)
    compiled = rjit.jit(jit["caller"])
    for n in (0, 1, 5):
        assert outcome(compiled, (a, n)) == outcome(plain["caller"], (a, n))


def test_a_repeated_float_division_is_computed_once():
    assert ops(FLOATS, (1.0, 2.0, 3), "FloatDiv") == 1


@pytest.mark.parametrize("y", [2.0, -0.0, 0.0, float("inf"), float("nan")])
def test_repeated_float_divisions_raise_as_the_interpreter(y):
    plain, jit = namespace(FLOATS), namespace(FLOATS)
    compiled = rjit.jit(jit["caller"])
    for x, n in ((1.5, 3), (0.0, 2), (1.5, 0)):
        assert outcome(compiled, (x, y, n)) == outcome(plain["caller"], (x, y, n))
