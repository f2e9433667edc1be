"""Items of a list argument speculated from the list observed at the first call: a function
compiled at its first call has no profile, so `u[j]` of a list seen holding only floats (or
only ints) is read as a machine value, checked at each read. Every case compares plain
CPython with a fresh compiled twin, including lists whose items change kind later."""

from __future__ import annotations

import sys

import pytest

import rjit
from rjit import _rjit
from test_compiled import compiled_pair, make_function, outcome

DOT = "def f(u, v):\n    s = 0.0\n    for j in range(len(u)):\n        s += u[j] * v[j]\n    return s\n"
SCALE = "def f(u, k):\n    s = 0\n    for j in range(len(u)):\n        s += u[j] * k\n    return s\n"


def unboxed_reads(source, args):
    f = make_function(source, "f")
    ir = _rjit.dump_ir(f.__code__, tuple(args), f.__globals__)
    after = ir.split("after specialisation")[-1]
    return after.count("LoadItemUnboxed")


def test_lists_of_floats_are_read_unboxed():
    assert unboxed_reads(DOT, ([1.0, 2.0], [3.0, 4.0])) == 2
    assert unboxed_reads(SCALE, ([1, 2, 3], 5)) == 1
    # Mixed, empty, other containers: not speculated.
    assert unboxed_reads(DOT, ([1.0, 2], [3.0, 4.0])) == 1
    assert unboxed_reads(DOT, ([], [])) == 0
    assert unboxed_reads(DOT, ((1.0, 2.0), (3.0, 4.0))) == 0


CASES = [
    ([1.5, 2.5, -3.0], [2.0, 0.5, 1.0]),
    ([1.5, 2.5, 3], [2.0, 0.5, 1.0]),           # an int among the floats: the read leaves
    ([1.5, True, 3.0], [2.0, 0.5, 1.0]),        # a bool
    ([1.5, 2.5, 2**80], [2.0, 0.5, 1.0]),       # a big int
    ([1.5, "x", 3.0], [2.0, 0.5, 1.0]),         # TypeError with the interpreter's line
    ((1.5, 2.5, 3.0), [2.0, 0.5, 1.0]),         # a tuple
    ([float("nan"), float("inf"), -0.0], [1.0, -1.0, 2.0]),
    ([1.0] * 100, [0.5] * 100),
    ([1.0, 2.0], [3.0]),                        # IndexError
]


@pytest.mark.parametrize("args", CASES)
def test_dot_of_lists_matches_the_interpreter(args):
    plain, compiled = compiled_pair(DOT)
    # Compiled for lists of floats, then called with each case.
    assert outcome(compiled, ([1.0, 2.0], [3.0, 4.0])) == outcome(plain, ([1.0, 2.0], [3.0, 4.0]))
    assert outcome(compiled, args) == outcome(plain, args)


@pytest.mark.parametrize("args", [([1, 2, 3], 5), ([1, 2**62, 2**62], 3), ([1, 2.5, 3], 2), ([1, 2, 3], 2.5)])
def test_ints_overflowing_and_changing_kind(args):
    plain, compiled = compiled_pair(SCALE)
    assert outcome(compiled, ([1, 2, 3], 5)) == outcome(plain, ([1, 2, 3], 5))
    assert outcome(compiled, args) == outcome(plain, args)


def test_a_list_changed_by_a_callee_in_the_loop():
    source = (
        "def f(u, hook):\n    s = 0.0\n    for j in range(len(u)):\n        hook(u, j)\n"
        "        s += u[j] * 2.0\n    return s\n"
    )

    def hook(u, j):
        if j == 2:
            u[3] = 7          # an int where floats were
        if j == 4:
            u.pop()           # shorter: the last read is out of range

    plain, compiled = compiled_pair(source)
    assert outcome(compiled, ([1.0] * 6, lambda u, j: None)) == outcome(plain, ([1.0] * 6, lambda u, j: None))
    assert outcome(compiled, ([1.0] * 6, hook)) == outcome(plain, ([1.0] * 6, hook))


def test_item_reference_counts_unchanged():
    f = rjit.jit(make_function(DOT, "f"))
    u = [float(k) + 0.25 for k in range(10)]
    v = [2.0 + k for k in range(10)]
    before = [sys.getrefcount(x) for x in u + v] + [sys.getrefcount(u), sys.getrefcount(v)]
    for _ in range(200):
        f(u, v)
    assert [sys.getrefcount(x) for x in u + v] + [sys.getrefcount(u), sys.getrefcount(v)] == before
