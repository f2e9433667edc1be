"""Conditional increments without a branch (`hir/if_convert.rs`): `if c: x += k` of machine
ints becomes `x += (k if c else 0)`. The add keeps its overflow exit, which must be taken only
when the condition holds (adding 0 cannot overflow), with the frame of the `if`'s body. Every
case runs plain and compiled and must agree exactly, overflowing at the boundary with the
condition true and false."""

from __future__ import annotations

import pytest

from rjit import _rjit
from test_compiled import compiled_pair, make_function, outcome

BIG = 2**63 - 1
SMALL = -(2**63)

SOURCES = [
    "def f(xs, start, k):\n    c = start\n    for x in xs:\n        if x > 0:\n            c += k\n    return c\n",
    "def f(xs, start, k):\n    c = start\n    for x in xs:\n        if not x > 0:\n            c += k\n    return c\n",
    "def f(xs, start, k):\n    c = start\n    for x in xs:\n        if x > 0:\n            c -= k\n    return c\n",
    "def f(xs, start, k):\n    c = start\n    for x in xs:\n        if x > 0:\n            c = k + c\n    return c\n",
    "def f(xs, start, k):\n    c = start\n    for x in xs:\n        if x > 0:\n            c += 3\n    return c, k\n",
    "def f(xs, start, k):\n    c = start\n    for x in xs:\n        if x > 0:\n            c = c - 1\n    return c, k\n",
    # a count unboxed from the start (a constant): converted; it overflows after a few
    "def f(xs, start, k):\n    c = 9223372036854775805\n    for x in xs:\n        if x > 0:\n            c += k\n    return c, start\n",
    "def f(xs, start, k):\n    c = -9223372036854775805\n    for x in xs:\n        if not x > 0:\n            c -= 1\n    return c, start, k\n",
    # the condition a list item (a generic truth test), and the count's line after an overflow
    "def f(xs, start, k):\n    c = start\n    for x in xs:\n        if x:\n            c += k\n        c = c + 0\n    return c\n",
]

CASES = [
    ([1, -1, 2, 0, 5], 0, 1),
    ([], 7, 1),
    ([-1, -2], BIG, 1),  # never true: no overflow
    ([1, -1], BIG, 1),  # true at the first: overflows (the interpreter goes on with a big int)
    ([-1, 1], BIG - 1, 1),
    ([-3, -3, 4], SMALL, 1),
    ([2, 2], SMALL + 1, 2),
    ([5] * 10, BIG - 20, 3),
    ([1, 0, 1, 0], 1, BIG),
    ([0, 1], -5, SMALL),
    ([0] * 6, 0, 1),
    ([-1, -1, -1, 1, 1, 1, 1], 0, 1),
    ([1.5, -2.5], 0, 1),
    ([1, 2], 2.5, 1),
]


@pytest.mark.parametrize("index", range(len(SOURCES)))
def test_conditional_increments(index):
    source = SOURCES[index]
    plain, compiled = compiled_pair(source)
    for args in CASES:
        assert outcome(compiled, args) == outcome(plain, args), (source, args)


def test_no_branch_left():
    for index in (6, 7):
        f = make_function(SOURCES[index])
        ir = _rjit.dump_ir(f.__code__, ([1, 2], 0, 1), f.__globals__).split("after specialisation")[-1]
        assert "Select" in ir, ir


def test_bodies_doing_more_keep_the_branch():
    source = "def f(xs, start, k):\n    c = start\n    d = 0\n    for x in xs:\n        if x > 0:\n            c += k\n            d += 1\n    return c, d\n"
    f = make_function(source)
    ir = _rjit.dump_ir(f.__code__, ([1, 2], 0, 1), f.__globals__).split("after specialisation")[-1]
    assert "Select" not in ir, ir
    plain, compiled = compiled_pair(source)
    for args in CASES:
        assert outcome(compiled, args) == outcome(plain, args), args
