"""Differential tests of the machine-code peepholes and of the register allocator's
coalescing (src/backend/x86_64.rs, src/lir/regalloc.rs), plain vs compiled, at edge values.

- `x % 2**k == 0` branches become `test x, mask` (negative x included: Python's floor modulo);
- `x // 2**k` and `x % 2**k` have no exit (they cannot fail), so they may work in place;
- `x + imm` / `x - imm` with an overflow check may overwrite x's register: the overflow exit
  undoes the operation first (the deopt must see the old x): forced here at 2**63 - 1 and -2**63;
- `lea` for sums without overflow checks;
- coalesced block parameters (loop variables swapped, branches feeding one join).

Each function is compiled at its first call on small machine ints, then called with values that
take every exit; every outcome must equal plain CPython's."""

from __future__ import annotations

import pytest

import rjit
from test_compiled import compiled_pair, outcome

MAX = 2**63 - 1
MIN = -(2**63)

EDGE_INTS = [0, 1, -1, 2, -2, 3, -3, 7, -7, 8, -8, 2**31 - 1, -(2**31), 2**31, 2**32 + 1, -(2**32) - 1,
             2**62, -(2**62), MAX, MIN, MAX - 1, MIN + 1, 2**63, -(2**63) - 1, 10**30, -(10**30)]


def check(source, arg_tuples, name="f", warm=None):
    plain, compiled = compiled_pair(source, name)
    if warm is not None:
        # Compile on machine ints first, so later calls run the specialised code.
        assert outcome(plain, warm) == outcome(compiled, warm)
    for args in arg_tuples:
        assert outcome(plain, args) == outcome(compiled, args), (source, args)
    return compiled


@pytest.mark.parametrize("k", [1, 2, 3, 31, 32, 62])
def test_low_bits_branch(k):
    source = f"""
def f(x, n):
    r = 0
    for i in range(n):
        if x % {2**k} == 0:
            r += 1
        else:
            r -= 1
        if (x - i) % {2**k} != 0:
            r += 10
        x = x - 1
    return r, x
"""
    check(source, [(x, 5) for x in EDGE_INTS], warm=(10, 5))


@pytest.mark.parametrize("k", [1, 3, 62])
def test_floor_div_and_mod_by_power_of_two(k):
    source = f"""
def f(x, n):
    acc = 0
    for i in range(n):
        q = x // {2**k}
        m = x % {2**k}
        acc = acc + q + m
        x = q
    return acc, x
"""
    check(source, [(x, 4) for x in EDGE_INTS], warm=(100, 4))


def test_collatz_shape():
    source = """
def f(n):
    best = 0
    best_start = 1
    for start in range(1, n):
        x = start
        steps = 0
        while x != 1:
            if x % 2 == 0:
                x = x // 2
            else:
                x = 3 * x + 1
            steps += 1
        if steps > best:
            best = steps
            best_start = start
    return best_start, best
"""
    check(source, [(1,), (2,), (1000,), (3000,)], warm=(10,))


# Arguments beyond 60 bits fail the entry guard (unboxing takes two 30-bit digits), so the
# values near the 64-bit limits are made inside the functions from a constant.


@pytest.mark.parametrize("step", [1, 5, 2**31 - 1])
def test_add_immediate_overflow_deopts_with_old_value(step):
    # `s += step` overflows inside the loop: the deopt must see s before the add (the undo).
    source = f"""
def f(k, n):
    s = {MAX} - k
    for i in range(n):
        s += {step}
    return s
"""
    compiled = check(source, [(3 * step, 6), (0, 1), (step, 3), (0, 0), (2**40, 4)], warm=(10**6 * step, 3))
    assert "int overflow (+)" in str(rjit.info(compiled))


@pytest.mark.parametrize("step", [1, 7, 2**31 - 1])
def test_sub_immediate_overflow_deopts_with_old_value(step):
    source = f"""
def f(k, n):
    s = {MIN} + k
    for i in range(n):
        s -= {step}
    return s
"""
    compiled = check(source, [(3 * step, 6), (0, 1), (step, 3), (2**40, 10)], warm=(10**6 * step, 3))
    assert "int overflow (-)" in str(rjit.info(compiled))


def test_sub_of_minimum_immediate():
    # `- (-2**31)` is an add of 2**31: the undo of the wrapped immediate must be exact.
    source = f"""
def f(k, n):
    s = {MAX} - k
    for i in range(n):
        s = s - (-2147483648)
    return s
"""
    check(source, [(2**33, 6), (0, 1), (2**31, 3)], warm=(2**40, 3))


def test_overflow_in_the_middle_of_an_expression():
    # 3*x + 1 with the multiplication, then the addition, overflowing.
    source = f"""
def f(k, n):
    x = {MAX // 3} - k
    steps = 0
    for i in range(n):
        x = 3 * x + 1
        x = x // 3
        steps += 1
    return x, steps
"""
    check(source, [(0, 3), (1, 1), (2, 5), (-1, 1), (-2, 2), (10**6, 4)], warm=(10**9, 3))


def test_steps_counter_overflow_in_inner_loop():
    # The counter of an inner while loop overflows after a few iterations.
    source = """
def f(x, steps):
    while x != 1:
        if x % 2 == 0:
            x = x // 2
        else:
            x = 3 * x + 1
        steps += 1
    return x, steps
"""
    compiled = check(source.replace("steps):", "k):\n    steps = %d - k" % MAX),
                     [(27, 200), (27, 5), (7, 0), (2**40, 3), (27, 112), (27, 111)], warm=(6, 10**6))
    assert "int overflow (+)" in str(rjit.info(compiled))


def test_lea_sums_and_index_arithmetic():
    source = """
def f(n, k):
    t = 0
    for i in range(n):
        j = i + k
        t += j - 3
    return t
"""
    check(source, [(0, 0), (10, -5), (100, 2**40), (5, 2**59), (5, -(2**59)), (5, 2**63)], warm=(3, 1))


def test_swapped_loop_variables():
    # Parameters fed each other's values: cycles in the edge moves.
    source = """
def f(n):
    a, b, c = 0, 1, 2
    for i in range(n):
        a, b, c = b, c, a + i
        if i % 4 == 0:
            a, c = c, a
    return a, b, c
"""
    check(source, [(0,), (1,), (7,), (100,)], warm=(3,))


def test_float_loop_with_branches():
    source = """
def f(n, x):
    s = 0.0
    t = 1.0
    for i in range(n):
        if i % 2 == 0:
            s = s + x * t
        else:
            t = t * 0.5 - s
        x = -x
    return s, t, x
"""
    check(source, [(0, 1.0), (10, 2.5), (25, -0.0), (9, float("inf")), (9, float("nan")), (7, 1e308)],
          warm=(3, 1.0))


def test_many_live_values_across_branches():
    # More loop-carried values than registers, some used only on one side of a branch.
    source = """
def f(n):
    a = b = c = d = e = g = h = k = 1
    for i in range(n):
        if i % 3 == 0:
            a = a + b
            c = c + 1
        elif i % 3 == 1:
            d = d + e + g
            h = h - 1
        else:
            k = k + a - d
            e = e + 2
        g = g + h
    return a, b, c, d, e, g, h, k
"""
    check(source, [(0,), (10,), (200,)], warm=(4,))
