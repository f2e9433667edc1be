"""Operators x operand types x edge values, plain vs compiled: every outcome (value and exact
type, or exception type, message and line) must be identical.

Each test compiles one small function per operator and runs it over all pairs of VALUES:
36 operator forms x 22 x 22 values, about 17,000 cases in all."""

from __future__ import annotations

import math

import pytest

import rjit
from test_compiled import compiled_pair, outcome


class Boom:
    """A user object whose dunder methods raise (or misbehave) as user code does."""

    def __repr__(self):
        return "Boom()"

    def __bool__(self):
        raise ValueError("no truth")

    def __index__(self):
        raise ValueError("no index")

    def __eq__(self, other):
        raise ValueError("no eq")

    __hash__ = None

    def __add__(self, other):
        raise ArithmeticError("no add")

    def __radd__(self, other):
        return "radd"

    def __lt__(self, other):
        return NotImplemented

    def __contains__(self, item):
        raise KeyError(item)

    def __getitem__(self, key):
        raise IndexError(key)

    def __neg__(self):
        raise RuntimeError("no neg")


VALUES = [
    0, 1, -1, 7, 2**63 - 1, -(2**63), 2**64, 10**30,
    0.0, -0.0, 1.5, math.nan, math.inf, -math.inf,
    True, False, "s", "", [1, 2], (), None, Boom(),
]

BINARY = ["+", "-", "*", "/", "//", "%", "**", "<<", ">>", "&", "|", "^", "@"]
COMPARE = ["<", "<=", "==", "!=", ">", ">="]
OTHER = ["in", "not in", "is", "is not"]


def too_big(op, a, b):
    """Pairs whose plain result would take minutes or all memory (both sides alike)."""
    if op in ("**", "<<") and isinstance(b, int) and not isinstance(b, bool) and b > 64:
        return True
    if op in ("*",) and isinstance(b, int) and b > 10**6 and isinstance(a, (str, list, tuple)):
        return True
    if op in ("*",) and isinstance(a, int) and a > 10**6 and isinstance(b, (str, list, tuple)):
        return True
    return False


def run_all_pairs(source, op):
    plain, jitted = compiled_pair(source)
    cases = 0
    for a in VALUES:
        for b in VALUES:
            if too_big(op, a, b):
                continue
            assert outcome(jitted, (a, b)) == outcome(plain, (a, b)), (op, a, b)
            cases += 1
    assert rjit.info(jitted).compiled, rjit.info(jitted).reason
    return cases


@pytest.mark.parametrize("op", BINARY + COMPARE + OTHER)
def test_binary_operators(op):
    run_all_pairs(f"def f(a, b):\n    return a {op} b\n", op)


@pytest.mark.parametrize("op", BINARY)
def test_inplace_operators(op):
    run_all_pairs(f"def f(a, b):\n    a {op}= b\n    return a\n", op)


@pytest.mark.parametrize("op", ["-", "+", "~", "not "])
def test_unary_operators(op):
    plain, jitted = compiled_pair(f"def f(a):\n    return {op}a\n")
    for a in VALUES:
        assert outcome(jitted, (a,)) == outcome(plain, (a,)), (op, a)


def test_truth_tests_and_branches():
    source = "def f(a, b):\n    if a:\n        return 1\n    elif a or b:\n        return 2\n    return a and b\n"
    run_all_pairs(source, "if")


def test_subscripts():
    run_all_pairs("def f(a, b):\n    return a[b]\n", "[]")
