"""NumPy float64 arithmetic warns (or raises, as `numpy.errstate` says) where an operation raises a
floating-point exception: invalid, divide by zero, overflow, underflow. Compiled code checks the
processor's sticky flags; a loop that only computes checks them once, where it is left, and any
exit inside it checks first, the interpreter redoing the whole loop. Every test compares the
compiled function with the interpreter: value, exact type, exception, and the warnings (their
category, text and number), under several error states."""

from __future__ import annotations

import warnings

import pytest

np = pytest.importorskip("numpy")

import rjit
from rjit import _rjit
from test_compiled import make_function, outcome
from test_finite_guards import DOT

TINY, BIG, INF, NAN = 1e-200, 1e200, float("inf"), float("nan")

# Not only computing: the loop stores, so it checks after each operation.
SCALE = """
def f(a, b, out):
    for i in range(a.shape[0]):
        out[i] = a[i] * b[i]
    return out
"""

# An int guard inside a loop that only computes: it fails after the float product overflowed.
GUARD_AFTER_OVERFLOW = """
def f(a, n):
    s = 0.0
    t = 1
    for i in range(a.shape[0]):
        s += a[i] * a[i]
        t = t * n
    return s, t
"""

BREAK = """
def f(a, b, limit):
    s = 0.0
    for i in range(a.shape[0]):
        s += a[i] * b[i]
        if s > limit:
            break
    return s, i
"""

NESTED = """
def f(a):
    s = 0.0
    for i in range(a.shape[0]):
        for j in range(a.shape[1]):
            s += a[i, j] * a[j, i]
    return s
"""

MATMUL = """
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
    return c, i, j, k
"""

STATES = [
    {},
    {"all": "raise"},
    {"under": "warn"},
    {"under": "raise"},
    {"over": "ignore", "invalid": "ignore"},
    {"all": "warn"},
]


def arrays(*rows):
    return tuple(np.array(r, dtype=np.float64) for r in rows)


def observed(func, args, state):
    """The outcome of `func(*args)` under `np.errstate(**state)`, with the warnings it gave."""
    with warnings.catch_warnings(record=True) as caught, np.errstate(**state):
        warnings.simplefilter("always")
        result = outcome(func, args)
    return result, [(w.category, str(w.message)) for w in caught]


def same(source, calls, states=STATES):
    ns = {"np": np}
    plain = make_function(source, "f", dict(ns))
    compiled = rjit.jit(make_function(source, "f", dict(ns)))
    # Specialised on the first call (no exceptions), then every call under every state.
    compiled(*calls[0])
    for state in states:
        for args in calls:
            assert observed(compiled, args, state) == observed(plain, args, state), (source, args, state)
    return compiled


def specialised_ir(source, args):
    f = make_function(source, "f", {"np": np})
    return _rjit.dump_ir(f.__code__, tuple(args), f.__globals__).split("lir ")[0].split("HIR after")[-1]


def loop_body(ir, start):
    body = ir[ir.index(start):]
    return body[: body.index("Jump")]


DOT_CALLS = [
    arrays([1.0, 2.0, 3.0], [4.0, 5.0, 6.0]),
    arrays([TINY, 1.0], [TINY, 1.0]),          # the product underflows
    arrays([1e-160, 3.0], [1e-160, 1.0]),      # underflows to a subnormal
    arrays([BIG, 1.0], [BIG, 1.0]),            # overflows
    arrays([1e308, 1e308], [1.0, 1.0]),        # the sum overflows
    arrays([INF, 1.0], [0.0, 2.0]),            # inf * 0: invalid
    arrays([NAN, 1.0], [1.0, 1.0]),            # nan propagates: no warning
    arrays([INF, 1.0], [1.0, 1.0]),            # inf input: no warning
    arrays([1.0, -INF], [INF, 1.0]),           # inf - inf in the sum: invalid
    arrays([], []),
]


def test_a_loop_that_only_computes_checks_where_it_is_left():
    same(DOT, DOT_CALLS)
    ir = specialised_ir(DOT, DOT_CALLS[0])
    assert "GuardFpFlags" not in loop_body(ir, "FloatMul"), ir
    assert ir.count("GuardFpFlags") == 1 and "ClearFpFlags" in ir, ir


def test_underflow_is_reported_as_the_error_state_says():
    # (Before the flags were read, underflow was missed: a product of tiny numbers is finite.)
    same(DOT, DOT_CALLS[:3], states=[{"under": "raise"}, {"under": "warn"}])
    same(SCALE, [(a, b, np.zeros(a.shape[0])) for a, b in DOT_CALLS[:3]], states=[{"under": "raise"}, {"under": "warn"}])


def test_a_loop_that_stores_checks_after_each_operation():
    calls = [(a, b, np.zeros(a.shape[0])) for a, b in DOT_CALLS]
    same(SCALE, calls)
    ir = specialised_ir(SCALE, calls[0])
    assert "GuardFpFlags" in loop_body(ir, "FloatMul"), ir


def test_a_guard_failing_after_an_overflow_redoes_the_loop():
    a = np.array([BIG, 1.0, 2.0, 3.0, 4.0])
    calls = [
        (np.array([1.0, 2.0, 3.0]), 3),
        (a, 3),                       # the product overflows, the int never does
        (a, 2**40),                   # overflow at i = 0, then t leaves 64 bits at i = 1
        (np.array([1.0, 2.0]), 2**40),
        (a, 2.5),                     # a float where an int was seen
    ]
    same(GUARD_AFTER_OVERFLOW, calls)


def test_a_loop_left_by_break():
    calls = [
        arrays([1.0, 2.0, 3.0], [1.0, 1.0, 1.0]) + (100.0,),
        arrays([1.0, 2.0, 3.0], [1.0, 1.0, 1.0]) + (2.5,),
        arrays([BIG, 2.0, 3.0], [BIG, 1.0, 1.0]) + (2.5,),
        arrays([TINY, 2.0, 3.0], [TINY, 1.0, 1.0]) + (1.0,),
        arrays([1.0, 2.0], [INF, -INF]) + (1e300,),
    ]
    same(BREAK, calls)


def test_nested_loops_that_only_compute():
    calls = [
        (np.arange(9.0).reshape(3, 3),),
        (np.array([[BIG, 1.0], [1.0, BIG]]),),
        (np.array([[1.0, TINY], [TINY, 1.0]]),),
        (np.array([[INF, 0.0], [0.0, 1.0]]),),
        (np.zeros((0, 0)),),
    ]
    same(NESTED, calls)


def test_matmul_inner_loop_carries_only_its_sum_and_position():
    rng = np.random.default_rng(3)
    calls = [
        (rng.random((3, 4)), rng.random((4, 2))),
        (np.array([[BIG, 1.0]]), np.array([[BIG], [1.0]])),
        (np.array([[TINY, 1.0]]), np.array([[TINY], [0.0]])),
        (np.zeros((2, 0)), np.zeros((0, 3))),     # k never bound: UnboundLocalError
        (np.zeros((0, 2)), np.zeros((2, 3))),     # i never bound
        (np.ones((1, 1)), np.ones((1, 1))),
    ]
    same(MATMUL, calls)
    ir = specialised_ir(MATMUL, calls[0])
    inner = loop_body(ir, "FloatMul")
    for op in ("GuardFpFlags", "SetBound"):
        assert op not in inner, ir
    back_edge = ir[ir.index("FloatMul"):].split("Jump ")[1].split("\n")[0]
    assert back_edge.count(",") == 1, back_edge  # (the sum, the position)


def test_flags_raised_before_the_call_do_not_make_it_leave():
    compiled = same(DOT, DOT_CALLS[:1])
    a, b = DOT_CALLS[0]
    before = dict(rjit.info(compiled).side_exits)
    for _ in range(50):
        x = 1e-300 * 1e-300  # Python's float arithmetic: sets the underflow flag, no warning
        assert x == 0.0
        compiled(a, b)
    assert dict(rjit.info(compiled).side_exits) == before


LOOP_VARIABLES = """
def f(n, m):
    total = 0
    for i in range(n):
        for j in range(m):
            total += i * j
        total += j
    return total, i, j
"""


def test_loop_variables_after_loops_of_zero_one_or_many_iterations():
    plain = make_function(LOOP_VARIABLES, "f", {})
    compiled = rjit.jit(make_function(LOOP_VARIABLES, "f", {}))
    for args in [(3, 4), (0, 4), (3, 0), (1, 1), (2, 1), (0, 0), (4, 3), (2, 2**31)][:-1]:
        assert outcome(compiled, args) == outcome(plain, args), args
    # A deopt after the loops (a big int) reads the rebuilt variables.
    assert outcome(compiled, (3, 2**62)[:1] + (3,)) == outcome(plain, (3, 3))


def test_a_signal_handled_inside_a_loop_after_an_overflow():
    import signal

    handled = []

    def handler(signum, frame):
        handled.append(signum)

    a = np.ones(2_000_000)
    a[0] = BIG
    plain = make_function(DOT, "f", {"np": np})
    compiled = rjit.jit(make_function(DOT, "f", {"np": np}))
    compiled(a[1:10], a[1:10])
    expected = observed(plain, (a, a), {})
    previous = signal.signal(signal.SIGALRM, handler)
    try:
        for _ in range(3):
            signal.setitimer(signal.ITIMER_REAL, 0.0005)
            got = observed(compiled, (a, a), {})
            signal.setitimer(signal.ITIMER_REAL, 0)
            assert got == expected
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert handled, "the timer never fired"
