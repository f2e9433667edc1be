"""`q, r = divmod(a, b)` of two ints compiles to machine floor division and remainder: the
pair and its tuple are never made. Everything else about divmod stays the interpreter's:
floats, big ints, a zero divisor (ZeroDivisionError, same message and line), the pair used as
a tuple, and a `divmod` global that is not the builtin."""

from __future__ import annotations

import sys

import rjit
from test_compiled import compiled_pair, make_function, outcome

DIGITS = """
def f(n, base):
    total = 0
    steps = 0
    while n:
        n, d = divmod(n, base)
        total += d
        steps += 1
    return total, steps
"""

LOOP = """
def f(n, d):
    s = 0
    for i in range(-n, n):
        q, r = divmod(i, d)
        s += q * 3 + r
    return s, q, r
"""

INT_MIN = -(2**63)


def ir(func, args):
    return rjit._rjit.dump_ir(func.__code__, args, func.__globals__).split("lir ")[0]


def same(source, calls, namespace=None):
    plain, compiled = compiled_pair(source, namespace=namespace)
    for args in calls:
        assert outcome(compiled, args) == outcome(plain, args), args
    return plain, compiled


def test_divmod_of_ints_is_machine_code():
    plain, _ = same(LOOP, [(50, 7), (50, -7), (3, 1), (3, -1), (0, 5)])
    text = ir(plain, (50, 7)).split("HIR after")[-1]
    assert "IntFloorDiv" in text and "IntMod" in text
    assert "UnpackSequence" not in text and "TupleItem" not in text and "Call " not in text.split("IntFloorDiv")[0].split("bb6")[-1]


def test_signs_zero_and_overflow():
    calls = [(12345, 10), (-12345, 10), (12345, -10), (-12345, -10), (7, 0), (0, 0),
             (INT_MIN, -1), (INT_MIN, 1), (2**63 - 1, -1), (2**70, 3), (10**30, -7)]
    # `while n` ends for every base but 0, 1 and -1, except a negative n with a positive base
    # (floor division stops at -1), so those are left out: they never end in the interpreter either.
    ends = [(n, b) for n, b in calls if b not in (0, 1, -1) and not (n < 0 < b)]
    same(DIGITS, ends + [(0, 0), (5, 0)])
    source = "def f(a, b):\n    q, r = divmod(a, b)\n    return q, r\n"
    same(source, calls)


def test_other_operands_stay_the_interpreters():
    source = "def f(a, b):\n    q, r = divmod(a, b)\n    return q, r, type(q), type(r)\n"
    calls = [(7, 2), (7.5, 2), (7, 2.5), (-7.5, 0.0), (True, 2), (7, True), (2**64, 5), ("a", 2), (7, 2)]
    same(source, calls)


def test_the_pair_as_a_tuple_is_made():
    source = "def f(a, b):\n    t = divmod(a, b)\n    q, r = t\n    return t, q + r\n"
    same(source, [(7, 2), (-7, 2), (7, 0)])
    source2 = "def f(a, b):\n    return divmod(a, b)\n"
    same(source2, [(7, 2), (-7, 2), (7, 0)])
    source3 = "def f(a, b):\n    q, r, *rest = divmod(a, b) + (a,)\n    return q, r, rest\n"
    same(source3, [(7, 2), (7, 0)])


def test_a_divmod_global_that_is_not_the_builtin():
    # Rebound after compiling: the guard fails and the interpreter calls the new one.
    namespace = {}
    plain = make_function(LOOP, "f", dict(namespace))
    raw = make_function(LOOP, "f", dict(namespace))
    compiled = rjit.jit(raw)
    assert outcome(compiled, (20, 3)) == outcome(plain, (20, 3))
    for g in (plain.__globals__, raw.__globals__):
        g["divmod"] = lambda a, b: (b, a)
    for _ in range(3):
        assert outcome(compiled, (20, 3)) == outcome(plain, (20, 3))


def test_no_references_leak():
    _, compiled = compiled_pair(DIGITS)
    base = 10**9 + 7
    compiled(2**62, 3)
    before = sys.getrefcount(base)
    for _ in range(1000):
        compiled(2**62, base)
        compiled(2**70, base)  # big ints: the interpreter's divmod
    assert sys.getrefcount(base) == before
