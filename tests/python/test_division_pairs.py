"""`a % b` and `a // b` of the same operands in one block are made by one machine division
(`hir::cse::pair_divisions`, the back end's `int_divmod`): the second moves next to the first
and loses its exit, since both fail on the same operands (a zero divisor, `MIN // -1`). The
results must be the interpreter's for every sign, for the failures (ZeroDivisionError raised
by the first, with its line; the big int of `MIN // -1`), in either order."""

from __future__ import annotations

import rjit
from test_compiled import compiled_pair, outcome

MOD_THEN_DIV = """
def f(n, base):
    s = 0
    while n > 0:
        s += n % base
        n //= base
    return s
"""

DIV_THEN_MOD = """
def f(a, b):
    q = a // b
    t = q * 3
    r = a % b
    return q, t, r
"""

LOOP = """
def f(lo, hi, d):
    s = 0
    for i in range(lo, hi):
        r = i % d
        s += r
        s += i // d
    return s
"""

INT_MIN = -(2**63)


def ir(func, args):
    return rjit._rjit.dump_ir(func.__code__, args, func.__globals__).split("lir ")[0].split("HIR after")[-1]


def same(source, calls):
    plain, compiled = compiled_pair(source)
    for args in calls:
        assert outcome(compiled, args) == outcome(plain, args), args
    return plain, compiled


def test_the_division_moves_next_to_the_modulo():
    plain, _ = same(MOD_THEN_DIV, [(123456789, 10)])
    lines = [line.strip() for line in ir(plain, (1234, 10)).splitlines()]
    mod = next(i for i, line in enumerate(lines) if "IntMod" in line)
    assert "IntFloorDiv" in lines[mod + 1]
    # The moved division has no exit of its own.
    assert "->" not in lines[mod + 1]


def test_a_constant_power_of_two_divisor_is_left_alone():
    source = MOD_THEN_DIV.replace("base", "8").replace("def f(n, 8)", "def f(n, base)")
    plain, _ = same(source, [(123456789, 0)])
    lines = [line.strip() for line in ir(plain, (1234, 0)).splitlines()]
    mod = next(i for i, line in enumerate(lines) if "IntMod" in line)
    assert "IntFloorDiv" not in lines[mod + 1]


def test_digit_sums_for_every_sign_of_base():
    same(MOD_THEN_DIV, [(123456789, 10), (987654321, 7), (2**62, 3), (5, 10), (0, 10), (99, 2), (10**18, 1000), (10**18, -3)])


def test_either_order_with_signs_zero_and_overflow():
    calls = [(17, 5), (-17, 5), (17, -5), (-17, -5), (0, 3), (5, 0), (0, 0),
             (INT_MIN, -1), (INT_MIN, 1), (INT_MIN, 7), (2**63 - 1, -1), (2**70, 3), (7, 2**70)]
    same(DIV_THEN_MOD, calls)


def test_in_a_loop_with_a_zero_divisor_and_negative_ranges():
    same(LOOP, [(-50, 50, 7), (-50, 50, -7), (-5, 5, 1), (-5, 5, -1), (0, 10, 0), (3, 3, 0), (INT_MIN, INT_MIN + 3, -1)])


def test_an_unread_quotient_does_not_overwrite_the_remainder():
    # (Found in review: the unread result's register may be the other's.)
    source = """
    def f(a, b):
        t = 0
        for i in range(a):
            i // b
            t += i % b
        return t
    """
    same(source, [(17, 5), (100, 7), (100, -7)])
    same(source.replace("i // b\n", "i % b\n").replace("t += i % b", "t += i // b"), [(17, 5), (100, -7)])


def test_pairs_before_a_numpy_loop_compile():
    # (Found in review: exit ids of loop entries went stale, and the compiler panicked.)
    np = __import__("pytest").importorskip("numpy")
    source = """
    def f(a, n, k):
        q = n // k
        r = n % k
        s = 0.0
        for i in range(q):
            s += a[i] * a[i]
        return s + r
    """
    plain, compiled = same(source, [(np.array([1.0, 2.0, 1e200, 3.0, 4.0]), 4, 2), (np.arange(6.0), 5, 2)])
    assert rjit.info(compiled).compiled
