"""Items of lists and tuples read as machine numbers, and range loops compiled without their
range object and iterator: exact results, exceptions and reference counts, including when
the guards these rely on fail (forced deoptimisation).

An item read is unboxed only where CPython's specialising interpreter saw a list (tuple)
subscripted by an int and every use of the item was profiled as float (int) arithmetic, so
each function here is first run in the interpreter (`warmed`) to leave that profile in its
quickened bytecode, as a hot function has by the time rjit compiles it."""

from __future__ import annotations

import sys

import pytest

import rjit
from test_compiled import make_function, outcome


def warmed(source, warm_args, name="f", namespace=None, calls=10):
    """The plain function (warmed: its bytecode quickened by the interpreter) and a compiled
    twin of the same warmed code, compiled at its next call."""
    plain = make_function(source, name, namespace)
    for _ in range(calls):
        plain(*warm_args)
    twin = make_function(source, name, namespace)
    for _ in range(calls):
        twin(*warm_args)
    return plain, rjit.jit(twin)


def ir(func, args):
    """The specialised IR rjit makes for `func`'s code called with `args`."""
    return rjit._rjit.dump_ir(func.__code__, tuple(args), func.__globals__)


def check_all(plain, jitted, calls):
    """Every call gives the interpreter's outcome (value and type, or exception and line)."""
    for args in calls:
        assert outcome(jitted, args) == outcome(plain, args), args


FLOAT_ITEMS = (
    "def f(a, b, n):\n"
    "    s = 0.0\n"
    "    for i in range(n):\n"
    "        s += a[i] * b[i] - a[0]\n"
    "    return s\n"
)


class FloatList(list):
    pass


def test_float_items_are_read_unboxed_and_every_other_container_or_item_deoptimises():
    warm = ([1.5, 2.5, 3.5], [0.5, -1.0, 2.0], 3)
    plain, jitted = warmed(FLOAT_ITEMS, warm)
    assert "LoadItemUnboxed" in ir(plain, warm)
    assert outcome(jitted, warm) == outcome(plain, warm)
    check_all(plain, jitted, [
        warm,
        ([1.5, 2.5, 3.5], [0.5, -1.0, 2.0], 0),
        ([1.5, 2, 3.5], [0.5, -1.0, 2.0], 3),             # an int item
        ([1.5, 2.5, 3.5], [0.5, -1.0, True], 3),          # a bool item
        ((1.5, 2.5, 3.5), [0.5, -1.0, 2.0], 3),           # a tuple, not a list
        (FloatList([1.5, 2.5, 3.5]), [0.5, -1.0, 2.0], 3),  # a list subclass
        ([1.5, 2.5], [0.5, -1.0, 2.0], 3),                # out of range: IndexError
        ([1.5, 2.5, 3.5], [0.5, -1.0, 2.0], -2),
        ([1.5, "x", 3.5], [0.5, -1.0, 2.0], 3),           # TypeError from the interpreter
        ([float("nan"), float("inf"), -0.0], [0.0, 1e308, 1e308], 3),
        ({0: 1.0, 1: 2.0}, [0.5, -1.0], 2),               # a dict
    ])


def test_negative_indices_count_from_the_end():
    source = "def f(a, n):\n    s = 0.0\n    for i in range(n):\n        s += a[i - n] * a[-1]\n    return s\n"
    warm = ([1.5, 2.5, 4.0], 3)
    plain, jitted = warmed(source, warm)
    assert "LoadItemUnboxed" in ir(plain, warm)
    check_all(plain, jitted, [warm, ([1.5, 2.5, 4.0], 4), ([1.5], 1), ([], 0), ([], 1)])


def test_int_items_are_read_unboxed_and_large_ints_deoptimise():
    source = "def f(a, n):\n    s = 0\n    for i in range(n):\n        s += a[i] + a[0]\n    return s\n"
    warm = ([1, 2, 3, 4], 4)
    plain, jitted = warmed(source, warm)
    assert "LoadItemUnboxed" in ir(plain, warm)
    check_all(plain, jitted, [
        warm,
        ([2**62, 2**62, 1], 3),      # the sum overflows 64 bits
        ([2**64, 1, 2], 3),          # an item beyond 64 bits
        ([-(2**63), 0, 0], 3),
        ([1, 2.5, 3], 3),            # a float item
        ([True, False, 3], 3),       # bools are not exact ints
        ([1, 2, 3], 5),
    ])


def test_tuple_items_are_read_unboxed_and_a_list_deoptimises():
    source = "def f(t, n):\n    s = 0.0\n    for i in range(n):\n        s += t[i] * t[i]\n    return s\n"
    warm = ((1.5, 2.5, 3.0), 3)
    plain, jitted = warmed(source, warm)
    assert "of Tuple" in ir(plain, warm)
    check_all(plain, jitted, [warm, ([1.5, 2.5, 3.0], 3), ((1.5, 2, 3.0), 3), ((1.5,), 2), ((), 0)])


def test_items_used_other_than_as_numbers_stay_objects():
    # Stored in a local, passed to a call, compared by identity: the item itself is needed.
    sources = [
        "def f(a):\n    x = a[0]\n    return x * 2.0, x is a[0]\n",
        "def f(a):\n    return id(a[0]) == id(a[0]), a[0] * 2.0\n",
        "def f(a):\n    return a[0] is a[1], a[0] * a[1]\n",
    ]
    for source in sources:
        x = float("2.5")
        warm = ([x, x],)
        plain, jitted = warmed(source, warm)
        check_all(plain, jitted, [warm, ([1.5, x],), ([1, 2],)])


BODIES = (
    "def f(bodies, dt, n, hook):\n"
    "    for _ in range(n):\n"
    "        for i in range(len(bodies)):\n"
    "            bi = bodies[i]\n"
    "            for j in range(i + 1, len(bodies)):\n"
    "                bj = bodies[j]\n"
    "                dx = bi[0] - bj[0]\n"
    "                mag = dt * ((dx * dx + 0.01) ** (-1.5))\n"
    "                bi[1] -= dx * bj[2] * mag\n"
    "                bj[1] += dx * bi[2] * mag\n"
    "            hook(bodies, i)\n"
    "        for b in bodies:\n"
    "            b[0] += dt * b[1]\n"
    "    return [list(b) for b in bodies]\n"
)


def fresh_bodies():
    return [[float(k), 0.5 * k, 1.0 + k] for k in range(4)]


def nothing(bodies, i):
    return None


def shrink(bodies, i):
    if i == 1:
        bodies[2].clear()


def to_tuple(bodies, i):
    if i == 0:
        bodies[1] = tuple(bodies[1])


def to_int(bodies, i):
    if i == 1:
        bodies[3][0] = 7


def share(bodies, i):
    # A float held elsewhere too: a store must replace it, not change it in place.
    if i == 0:
        keep.append(bodies[2][1])


keep = []


@pytest.mark.parametrize("hook", [nothing, shrink, to_tuple, to_int, share])
def test_nbody_shaped_loops_with_lists_mutated_by_a_callee(hook):
    # The kernel's shape: list items read and written as floats, range loops without range
    # objects; a callee shrinks a list, replaces one by a tuple, stores an int into one, or
    # keeps a reference to a float the kernel then updates.
    warm = (fresh_bodies(), 0.01, 3, nothing)
    plain, jitted = warmed(BODIES, warm)
    text = ir(plain, warm)
    assert "LoadItemUnboxed" in text and "RangeIterVirtual" in text
    keep.clear()
    expected = outcome(plain, (fresh_bodies(), 0.01, 5, hook))
    kept_plain = list(keep)
    keep.clear()
    assert outcome(jitted, (fresh_bodies(), 0.01, 5, hook)) == expected
    assert keep == kept_plain


def test_item_reads_take_no_references():
    source = "def f(a, n):\n    s = 0.0\n    for i in range(n):\n        s += a[i] * a[i]\n    return s\n"
    items = [float(k) + 0.5 for k in range(5)]
    warm = (items, 5)
    plain, jitted = warmed(source, warm)
    before = [sys.getrefcount(x) for x in items] + [sys.getrefcount(items)]
    for _ in range(100):
        assert jitted(items, 5) == plain(items, 5)
    assert [sys.getrefcount(x) for x in items] + [sys.getrefcount(items)] == before


RANGES = (
    "def f(a, b, c, stop_at):\n"
    "    lo, hi, step = a + 0, b + 0, c + 0\n"
    "    s = 0\n"
    "    for i in range(lo, hi, step):\n"
    "        s += 1000 // (i - stop_at)\n"
    "    k = min(abs(hi), 50)\n"
    "    for i in range(k):\n"
    "        s += i\n"
    "    for i in range(lo, lo + k):\n"
    "        s -= i\n"
    "    return s\n"
)


@pytest.mark.parametrize("args", [
    (0, 10, 1, -1), (0, 10, 3, -1), (10, 0, -1, 100), (10, -10, -3, 100), (5, 5, 1, 100),
    (0, 10, 1, 4),          # ZeroDivisionError in the middle of the first loop
    (10, 0, -2, 4),         # ... counting down
    (0, 10, 0, 100),        # range() arg 3 must not be zero
    (-(2**62), 2**62, 2**61, 1),
    (-(2**63) + 1, 2**62, 2**62, 1),
])
def test_range_loops_without_range_objects_match_the_interpreter(args):
    plain = make_function(RANGES, "f")
    jitted = rjit.jit(make_function(RANGES, "f"))
    assert "RangeIterVirtual" in ir(plain, (0, 10, 1, -1))
    # Compiled for the first case's types, then every case (some leave mid-loop).
    assert outcome(jitted, (0, 10, 1, -1)) == outcome(plain, (0, 10, 1, -1))
    assert outcome(jitted, args) == outcome(plain, args)


def test_a_deopt_mid_loop_continues_from_the_loops_position():
    # The sum overflows 64 bits at some iteration: the interpreter continues the loop with an
    # iterator made at that position (each item is counted once).
    source = (
        "def f(n, big):\n    m = n + 0\n    s = 0\n    seen = 0\n    for i in range(3, m, 2):\n"
        "        s += big\n        seen += 1\n    return s, seen, i\n"
    )
    plain = make_function(source, "f")
    jitted = rjit.jit(make_function(source, "f"))
    check_all(plain, jitted, [(20, 1), (20, 2**62), (40, 2**61), (3, 1)])


def test_huge_and_empty_ranges():
    # More items than a C long holds: CPython makes another kind of iterator (the loop is left
    # to the interpreter before it starts); empty and one-item ranges.
    source = (
        "def f(a, b):\n    lo, hi = a * 2**62, b * 2**62 + (b * 2**62 - 1)\n    n = 0\n"
        "    for i in range(lo, hi):\n        n += 1\n        if n == 3:\n            break\n    return n, i\n"
    )
    plain = make_function(source, "f")
    jitted = rjit.jit(make_function(source, "f"))
    # (lo, hi): (0, -1), (0, 2**63 - 1), (-2**63, 2**63 - 1): 2**64 - 1 items, (-2**63, -1)
    check_all(plain, jitted, [(0, 0), (0, 1), (-2, 1), (-2, 0), (1, 1)])
    reasons = [reason for reason, _line in rjit.info(jitted).side_exits]
    # (stop - start overflows 64 bits: the interpreter makes the range and its iterator.)
    assert any("int overflow" in r for r in reasons), reasons


def test_range_rebound_leaves_for_the_interpreter_before_the_call():
    namespace = {}
    source = "def f(n):\n    m = n + 0\n    s = 0\n    for i in range(m):\n        s += i\n    return s\n"
    jitted = rjit.jit(make_function(source, "f", namespace))
    assert jitted(10) == 45
    namespace["range"] = lambda n: [5, 6, 7]
    assert jitted(10) == 18
    del namespace["range"]
    assert jitted(10) == 45


def test_exceptions_in_a_range_loop_have_the_interpreters_traceback_and_locals():
    source = (
        "def f(n):\n    m = n + 0\n    t = 0\n    for i in range(2, m, 3):\n"
        "        t += i\n        x = 1 // (i - 8)\n    return t\n"
    )
    plain = make_function(source, "f")
    jitted = rjit.jit(make_function(source, "f"))

    def locals_at_raise(func):
        try:
            func(20)
        except ZeroDivisionError as exc:
            tb = exc.__traceback__
            while tb.tb_next is not None:
                tb = tb.tb_next
            return tb.tb_lineno, sorted(tb.tb_frame.f_locals.items())
        raise AssertionError("no exception")

    assert locals_at_raise(jitted) == locals_at_raise(plain) == (6, [("i", 8), ("m", 20), ("n", 20), ("t", 15), ("x", -1)])


def test_a_tracer_set_inside_a_range_loop_sees_the_rest_of_it():
    # A callee turns tracing on mid-loop: compiled code hands the frame, with the loop's
    # iterator made at its position, to the interpreter, which traces every line after.
    source = (
        "def f(n, start):\n    m = n + 0\n    s = 0\n    for i in range(m):\n"
        "        if i == 2:\n            start()\n        s += i\n    return s\n"
    )
    for func in (make_function(source, "f"), rjit.jit(make_function(source, "f"))):
        lines = []

        def tracer(frame, event, arg):
            if frame.f_code.co_name == "f" and event == "line":
                lines.append(frame.f_lineno)
            return tracer

        def start():
            sys.settrace(tracer)
            sys._getframe(1).f_trace = tracer

        try:
            result = func(5, start)
        finally:
            sys.settrace(None)
        assert result == 10
        if func.__name__ == "f" and not isinstance(func, rjit.JitFunction):
            expected = lines
        else:
            assert lines == expected


POWERS = [-1.5, 0.5, 2.0, 3.0, -2.0, 0.0, -0.0, 1e-300, 1e300, float("inf"), float("-inf"), float("nan")]
BASES = [
    2.0, 0.3, 1.0, 0.0, -0.0, -2.0, -0.3, 1e-300, 1e300, 5e-324, 1.7976931348623157e308,
    float("inf"), float("-inf"), float("nan"), 123.456, 7e-5,
]


@pytest.mark.parametrize("power", POWERS)
def test_float_power_by_a_constant_is_the_c_librarys_pow_bit_for_bit(power):
    # `x ** c` calls the C library's pow inline where Python's float_pow is exactly pow (a
    # positive finite base, a finite nonzero exponent); zero or negative bases, infinities and
    # NaNs go through float_pow's own rules; ZeroDivisionError, OverflowError and complex
    # results come from the interpreter. Results compare by repr (bits, -0.0, nan).
    single = f"def f(x):\n    y = x * 1.0\n    return y ** ({power!r})\n"
    plain, jitted = make_function(single, "f"), rjit.jit(make_function(single, "f"))
    assert outcome(jitted, (2.0,)) == outcome(plain, (2.0,))
    for x in BASES + [float(k) / 7.0 for k in range(1, 60)]:
        assert outcome(jitted, (x,)) == outcome(plain, (x,)), (x, power)


def test_float_power_keeps_live_floats_across_the_call():
    # Floats live across the call stay exact (saved around it, not clobbered).
    source = (
        "def f(n, x):\n    a, b, c = x * 1.5, x * 2.5, x * 3.5\n    s = 0.0\n    for i in range(n):\n"
        "        s += (a + b * c) ** (-1.5) + a - b + c\n        a += 0.125\n    return s, a, b, c\n"
    )
    plain, jitted = make_function(source, "f"), rjit.jit(make_function(source, "f"))
    for args in [(10, 1.0), (50, 0.25), (3, -1.0), (5, 0.0)]:
        assert outcome(jitted, args) == outcome(plain, args), args
