"""Type specialisation: code compiled on unboxed ints, floats and bools must behave exactly as
the interpreter, including when its guards fail (deoptimisation) and when argument types
change between calls.

Every function here is compiled afresh for the arguments of its first call (``rjit.jit``
compiles at the first call, specialised on that call's argument types), so each case runs
the specialised machine code, not a generic version."""

from __future__ import annotations

import gc
import math
import resource
import sys

import pytest

import rjit
from test_compiled import compiled_pair, make_function, outcome

INTS = [0, 1, -1, 7, -7, 3, 2**31, 2**53 + 1, -(2**53) - 1, 2**62, 2**63 - 1, -(2**63)]
FLOATS = [0.0, -0.0, 1.5, -2.5, 1e308, 5e-324, math.inf, -math.inf, math.nan, float(2**53)]
BOOLS = [True, False]
NUMBERS = INTS + FLOATS + BOOLS

ARITHMETIC = ["+", "-", "*", "/", "//", "%", "**", "&", "|", "^", "<<", ">>"]
COMPARISONS = ["<", "<=", "==", "!=", ">", ">="]


def specialised_outcome(source, args):
    """The outcome of a fresh function compiled for `args` (and checks it was specialised)."""
    f = rjit.jit(make_function(source, "f"))
    result = outcome(f, args)
    return result


def same(a, b):
    """Outcomes are equal (a NaN result equals a NaN result: repr compares them)."""
    return a == b


def skip(op, a, b):
    # Huge powers and shifts take long in both tiers alike; they are covered with small ones.
    if op in ("**", "<<") and isinstance(b, int) and not isinstance(b, bool) and b > 64:
        return True
    if op == "**" and isinstance(b, int) and isinstance(a, int) and abs(b) > 64:
        return True
    return False


@pytest.mark.parametrize("op", ARITHMETIC + COMPARISONS)
def test_binary_operator_on_every_pair_of_numbers(op):
    source = f"def f(a, b):\n    return a {op} b\n"
    plain = make_function(source, "f")
    checked = 0
    for a in NUMBERS:
        for b in NUMBERS:
            if skip(op, a, b):
                continue
            expected = outcome(plain, (a, b))
            got = specialised_outcome(source, (a, b))
            assert got == expected, (op, a, b)
            checked += 1
    assert checked > 400


@pytest.mark.parametrize("op", ["-", "+", "~", "not "])
def test_unary_operator_on_every_number(op):
    source = f"def f(a):\n    return {op}a\n"
    plain = make_function(source, "f")
    for a in NUMBERS:
        assert specialised_outcome(source, (a,)) == outcome(plain, (a,)), (op, a)


LOOPS = {
    "sum_squares": "def f(n):\n    s = 0\n    for i in range(n):\n        s += i * i\n    return s\n",
    "harmonic": "def f(n):\n    s = 0.0\n    for i in range(1, n + 1):\n        s += 1.0 / i\n    return s\n",
    "collatz": (
        "def f(n):\n    best = 0\n    for start in range(1, n):\n        x = start\n        steps = 0\n"
        "        while x != 1:\n            if x % 2 == 0:\n                x = x // 2\n            else:\n"
        "                x = 3 * x + 1\n            steps += 1\n        if steps > best:\n            best = steps\n"
        "    return best\n"
    ),
    "mixed": (
        "def f(a, b):\n    t = a\n    for k in range(3):\n        t = t * b + k\n        if t > 100:\n"
        "            t = t - 50\n    return t, -t, t // 3, t % 3, t / 7, t < b\n"
    ),
    "while_countdown": "def f(n):\n    c = 0\n    while n > 0:\n        n -= 1\n        c += 2\n    return c, n\n",
    "accumulate_overflow": "def f(x):\n    s = 1\n    for i in range(70):\n        s = s * 2 + x\n    return s\n",
    "float_pow": "def f(x):\n    r = 0.0\n    for k in range(4):\n        r += (x + k) ** 0.5 + x ** -1.5\n    return r\n",
}

# ints, then a float, then an int beyond 64 bits, then a bool (the sequence), then
# ints again. Loop counts cannot be beyond 64 bits (the loop would never end in either tier):
# those kernels get a huge int where it is cheap (a TypeError for range of a float, a start
# beyond 64 bits for the countdown is replaced by one that overflows on the way).
TYPE_CHANGES = {
    "sum_squares": [(10,), (3,), (2.5,), (3 * 10**9 // 10**6,), (True,), (0,), (-5,), (7,)],
    "harmonic": [(10,), (3,), (2.5,), (True,), (0,), (7,)],
    "collatz": [(40,), (3,), (2.5,), (True,), (0,), (30,)],
    "mixed": [(3, 4), (1, 2), (2.5, 3), (2**70, 3), (True, False), (3, 2.5), (-(2**62), 2**62), (5, 6)],
    "while_countdown": [(10,), (3,), (2.5,), (True,), (0,), (-5,), (1000,)],
    "accumulate_overflow": [(1,), (3,), (2.5,), (2**70,), (True,), (0,), (-5,), (7,)],
    "float_pow": [(1.5,), (3.0,), (2,), (2**70,), (True,), (-3.5,), (0.0,), (4.0,)],
}


@pytest.mark.parametrize("name", sorted(LOOPS))
def test_loops_with_argument_types_changing_between_calls(name):
    plain, jitted = compiled_pair(LOOPS[name])
    for args in TYPE_CHANGES[name]:
        assert outcome(jitted, args) == outcome(plain, args), (name, args)
    assert rjit.info(jitted).compiled


# One case per guard kind the specialiser emits: each call makes the guard fail, so the
# machine code hands the frame to the interpreter mid-function; the outcome must not change.
FORCED_DEOPTS = [
    # entry guard on an argument's class (compiled for ints, called with a float and a str)
    ("def f(a):\n    return a * 2 + 1\n", [(3,), (1.5,), ("ab",), (3,)]),
    # entry unboxing: an int that does not fit 64 bits (or two 30-bit digits)
    ("def f(a):\n    return a + 1\n", [(1,), (2**62,), (2**64,), (-(2**63),)]),
    # int add / sub / mul overflow mid-loop: the result becomes an exact big int
    ("def f(n):\n    s = 2**62\n    for i in range(n):\n        s += s\n    return s\n", [(1,), (3,)]),
    ("def f(n):\n    s = -(2**62)\n    for i in range(n):\n        s -= 2**62\n    return s\n", [(1,), (3,)]),
    ("def f(a, b):\n    return a * b\n", [(3, 4), (2**40, 2**40), (-(2**63), -1)]),
    # floor division and modulo by zero, MIN // -1
    ("def f(a, b):\n    return a // b, a % b\n", [(7, 2), (7, 0), (-(2**63), -1), (-7, 2)]),
    # shifts: bits shifted out, negative counts
    ("def f(a, b):\n    return a << b, a >> b\n", [(1, 3), (1, 63), (3, 62), (1, -1), (-8, 70)]),
    # float division by zero (and by -0.0)
    ("def f(a, b):\n    return a / b\n", [(1.0, 2.0), (1.0, 0.0), (1.0, -0.0), (0.0, 0.0)]),
    # float power: complex results, overflow, zero to a negative power
    ("def f(a, b):\n    return a ** b\n", [(2.0, 0.5), (-8.0, 1 / 3), (1e300, 3.0), (0.0, -1.0), (-2.0, 3.0)]),
    # int/int true division beyond 2**53 (inexact conversion) and int/float comparisons
    ("def f(a, b):\n    return a / b\n", [(7, 2), (2**60 + 1, 3), (1, 0)]),
    ("def f(a, b):\n    return a == b, a < b, a >= b\n", [(1, 1.0), (2**53 + 1, float(2**53)), (2**63 - 1, 9.3e18)]),
    # negation overflow
    ("def f(a):\n    return -a\n", [(5,), (-(2**63),)]),
    # a for loop whose iterator is not a range iterator (range rebound, a huge range)
    ("def f(a, b):\n    s = 0\n    for i in range(a, b):\n        s += i\n    return s\n", [(0, 10), (2**63 - 3, 2**63 + 2)]),
    # an unboxed local that is unbound after an empty loop
    ("def f(n):\n    for i in range(n):\n        pass\n    return i\n", [(3,), (0,)]),
    # modulo/floor division of floats by zero
    ("def f(a, b):\n    return a // b, a % b\n", [(7.5, 2.0), (7.5, 0.0), (-7.5, 2.0)]),
]


@pytest.mark.parametrize("case", range(len(FORCED_DEOPTS)))
def test_every_guard_kind_deoptimises_exactly(case):
    source, calls = FORCED_DEOPTS[case]
    plain = make_function(source, "f")
    for args in calls:
        # Compiled for the first call's types each time, so every call below runs the
        # specialised code until its guard fails.
        jitted = rjit.jit(make_function(source, "f"))
        first = calls[0]
        assert outcome(jitted, first) == outcome(plain, first)
        assert outcome(jitted, args) == outcome(plain, args), (source, args)


def test_range_rebound_to_something_else_deoptimises():
    namespace = {}
    source = "def f(n):\n    s = 0\n    for i in range(n):\n        s += i\n    return s\n"
    jitted = rjit.jit(make_function(source, "f", namespace))
    assert jitted(10) == 45
    namespace["range"] = lambda n: [5, 6, 7]
    assert jitted(10) == 18
    namespace["range"] = lambda n: iter((1.5, 2.5))
    assert jitted(10) == 4.0
    del namespace["range"]
    assert jitted(10) == 45


def frame_locals_at_raise(f, *args):
    """The locals of `f`'s frame when the exception it raised left it (from the traceback)."""
    try:
        f(*args)
    except ZeroDivisionError as exc:
        tb = exc.__traceback__
        while tb.tb_next is not None:
            tb = tb.tb_next
        return sorted(tb.tb_frame.f_locals.items())
    raise AssertionError("no exception")


def test_locals_after_a_deopt_hold_the_unboxed_values():
    source = (
        "def f(n):\n    s = 0\n    t = 1.5\n    flag = False\n    for i in range(n):\n        s += i\n"
        "        t *= 2.0\n        flag = s > 3\n        q = 1 // (i - 5)\n    return None\n"
    )
    plain, jitted = compiled_pair(source)
    expected = frame_locals_at_raise(plain, 10)
    assert expected == [("flag", True), ("i", 5), ("n", 10), ("q", -1), ("s", 15), ("t", 96.0)]
    assert frame_locals_at_raise(jitted, 10) == expected
    assert rjit.stats()["specialised"] > 0


def test_locals_read_after_a_loop_see_its_variable_bound_or_not():
    # The loop variable is a machine int that may be unbound: calls see it boxed, or unbound.
    source = "def f(n):\n    t = 0\n    for i in range(n):\n        t += i\n    return sorted(locals().items())\n"
    plain = make_function(source, "f")
    for n in (3, 0):
        jitted = rjit.jit(make_function(source, "f"))
        assert outcome(jitted, (n,)) == outcome(plain, (n,)), n
        assert outcome(jitted, (5,)) == outcome(plain, (5,))


def test_functions_reading_their_own_locals_keep_them_in_the_frame():
    source = "def f(a):\n    b = a + 1\n    return sorted(locals().items()), eval('a + b'), vars()['b']\n"
    plain, jitted = compiled_pair(source)
    assert outcome(jitted, (1,)) == outcome(plain, (1,))


def test_traceback_of_a_deopt_raise_names_the_line():
    source = "def f(a, b):\n    x = a + 1\n    y = x // b\n    return y\n"
    plain, jitted = compiled_pair(source)
    assert outcome(jitted, (1, 2)) == outcome(plain, (1, 2))
    got = outcome(jitted, (1, 0))
    assert got == outcome(plain, (1, 0))
    assert got[0] == "raise" and got[1] is ZeroDivisionError and got[3] == 3


def test_math_sqrt_of_negative_raises_value_error_like_the_interpreter():
    source = "import math\ndef f(x):\n    return math.sqrt(x - 2.0)\n"
    plain = make_function(source, "f")
    jitted = rjit.jit(make_function(source, "f"))
    assert outcome(jitted, (6.0,)) == outcome(plain, (6.0,))
    assert outcome(jitted, (1.0,)) == outcome(plain, (1.0,))


def test_a_function_that_keeps_deoptimising_is_recompiled_without_speculation():
    # Compiled for a float (the first call); every int call fails the entry guard.
    source = "def f(a):\n    s = a\n    for i in range(3):\n        s = s * 2 + i\n    return s\n"
    plain = make_function(source, "f")
    jitted = rjit.jit(make_function(source, "f"))
    before = rjit.stats()
    results = []
    for k in range(400):
        arg = k if k % 2 else float(k)
        results.append(jitted(arg))
        assert type(results[-1]) is type(plain(arg))
    assert results == [plain(k if k % 2 else float(k)) for k in range(400)]
    after = rjit.stats()
    assert after["despecialised"] == before["despecialised"] + 1
    # Deopts stop once it is generic: far fewer than one per float call.
    assert after["deopts"] - before["deopts"] < 120
    assert rjit.info(jitted).compiled


def test_a_million_deoptimising_calls_leak_nothing():
    # Compiled for ints; every other call passes a float (an entry deopt) and every call's
    # loop overflows 64 bits (a mid-loop deopt) until the function is recompiled generic.
    source = "def f(a):\n    s = a\n    for i in range(3):\n        s = s * 2**31\n    return s\n"
    jitted = rjit.jit(make_function(source, "f"))
    big = 2**40
    small = int("12345")  # an object of its own (small ints are shared)
    x = 1.5
    refs = (sys.getrefcount(big), sys.getrefcount(small), sys.getrefcount(x))
    for _ in range(2000):
        jitted(small)
        jitted(big)
        jitted(x)
    gc.collect()
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for _ in range(333_334):
        jitted(small)
        jitted(big)
        jitted(x)
    gc.collect()
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert (sys.getrefcount(big), sys.getrefcount(small), sys.getrefcount(x)) == refs
    assert rss_after - rss_before < 2048, f"RSS grew by {rss_after - rss_before} KiB"


def test_specialised_code_is_reported():
    f = rjit.jit(make_function("def f(n):\n    s = 0\n    for i in range(n):\n        s += i\n    return s\n", "f"))
    before = rjit.stats()["specialised"]
    assert f(100) == 4950
    assert rjit.stats()["specialised"] == before + 1


def test_generic_tier_when_specialisation_is_off():
    rjit._rjit._set_specialize(False)
    try:
        f = rjit.jit(make_function("def f(n):\n    s = 0\n    for i in range(n):\n        s += i\n    return s\n", "f"))
        before = rjit.stats()["specialised"]
        assert f(100) == 4950
        assert rjit.stats()["specialised"] == before
    finally:
        rjit._rjit._set_specialize(True)


PROFILED = {
    # BINARY_OP_MULTIPLY_FLOAT / BINARY_OP_ADD_FLOAT after warming up on floats.
    "float": (
        "def f(items):\n    s = 0.0\n    for x in items:\n        s = s + x * x\n    return s\n",
        [1.5, 2.25, -0.5],
        "is Float",
    ),
    # BINARY_OP_MULTIPLY_INT / COMPARE_OP_INT_JUMP after warming up on ints.
    "int": (
        "def f(items):\n    n = 0\n    for x in items:\n        if x * x > 10:\n            n += 1\n    return n\n",
        [1, 5, -7, 3],
        "is Int",
    ),
}

# Items that fail the profiled guard at some point (a different class, an int beyond 64 bits,
# an overflow of the machine product, a bool, an object the operator rejects).
PROFILE_BREAKERS = [
    [],
    [1.5, 2.5],
    [1, 2, 3],
    [1.5, 2, 3.25],
    [3, 2.5, 7],
    [2**70, 1.5],
    [3, 2**40, 2**62],
    [True, 2.5, False],
    [1.5, math.nan, -math.inf],
    [2.5, "text"],
    [4, None],
]


@pytest.mark.parametrize("kind", sorted(PROFILED))
def test_operands_the_interpreter_profiled_are_guarded_and_deoptimise_exactly(kind):
    source, warm_items, guard_text = PROFILED[kind]
    warmed = make_function(source, "f")
    for _ in range(100):
        warmed(warm_items)  # CPython quickens the operations for these operand types
    # The quickened opcodes are used as a profile: the items are guarded to that class.
    assert guard_text in rjit._rjit.dump_ir(warmed.__code__, (warm_items,))
    compiled = rjit.jit(warmed)
    plain = make_function(source, "f")
    assert outcome(compiled, (warm_items,)) == outcome(plain, (warm_items,))
    for items in PROFILE_BREAKERS:
        assert outcome(compiled, (items,)) == outcome(plain, (items,)), items


def test_without_a_profile_unknown_operands_stay_generic():
    source = PROFILED["float"][0]
    cold = make_function(source, "f")
    assert "is Float" not in rjit._rjit.dump_ir(cold.__code__, ([1.5],))


CONSTANT_OPERANDS = [0, 1, 2, 3, 8, -1, -8, 63, 64, 2**31, 2**40, 1.5, 0.0]


@pytest.mark.parametrize("op", ARITHMETIC + COMPARISONS)
def test_operator_with_a_constant_right_operand(op):
    # Constants become immediates (shift counts, masks, compare operands): each pairing.
    checked = 0
    for c in CONSTANT_OPERANDS:
        source = f"def f(a):\n    return a {op} {c!r}\n"
        plain = make_function(source, "f")
        for a in NUMBERS:
            if skip(op, a, c):
                continue
            assert specialised_outcome(source, (a,)) == outcome(plain, (a,)), (op, a, c)
            checked += 1
    assert checked > 200


STORE_FLOAT = (
    "def f(lst, i, x, witness):\n"
    "    lst[i] = x * 2.0 + 0.5\n"
    "    return lst, witness\n"
)


class ListSubclass(list):
    def __setitem__(self, i, v):
        super().__setitem__(i, ("seen", v))


def store_cases():
    """(lst, i, x, witness) tuples. Floats are made at run time (refcount 1 in the list) or
    shared with the witness (which must keep its value)."""
    fresh = lambda: [float(k) + 0.25 for k in range(4)]  # noqa: E731
    shared = [float("7.5")]
    aliased = [shared[0], shared[0], 1.0 + float(len(shared))]
    return [
        (fresh(), 1, 3.0, None),
        (fresh(), -1, 3.0, None),
        (fresh(), 4, 3.0, None),
        (fresh(), -5, 3.0, None),
        (aliased, 0, 1.0, shared),
        (aliased, 2, 1.0, shared),
        ([1, 2, 3], 0, 1.5, None),
        (["a", None], 1, 1.5, None),
        (ListSubclass(fresh()), 2, 1.0, None),
        ((1.0, 2.0), 0, 1.0, None),
        ({0: 1.0}, 0, 1.0, None),
        (fresh(), 2, math.nan, None),
        (fresh(), 0, -math.inf, None),
    ]


def test_float_stores_into_lists_are_exact_and_never_touch_shared_floats():
    plain = make_function(STORE_FLOAT, "f")
    compiled = rjit.jit(make_function(STORE_FLOAT, "f"))
    assert outcome(compiled, store_cases()[0]) == outcome(plain, store_cases()[0])
    # The store takes the machine float (in place when it can), not a boxed temporary.
    assert "(float)" in rjit._rjit.dump_ir(plain.__code__, store_cases()[0])
    for expected_case, got_case in zip(store_cases(), store_cases()):
        assert outcome(compiled, got_case) == outcome(plain, expected_case), expected_case
    # In place: the list's own float object is reused, and the result is still exact.
    lst = [float(k) + 0.25 for k in range(3)]
    ids = [id(x) for x in lst]
    compiled(lst, 1, 2.0, None)
    assert lst == [0.25, 4.5, 2.25] and type(lst[1]) is float
    # A float someone else holds is never changed.
    held = lst[0]
    compiled(lst, 0, 5.0, None)
    assert held == 0.25 and lst[0] == 10.5
    assert id(lst[2]) == ids[2]


def test_calls_made_while_the_function_compiles_run_in_the_interpreter():
    # Compiling allocates, so the cyclic GC may run a finalizer that calls the very function
    # being compiled (or lets another thread run it): that call must not compile it a second
    # time and install code the first compilation then replaces (freed while running).
    f = rjit.jit(make_function("def f(n):\n    s = 0\n    for i in range(n):\n        s += i\n    return s\n", "f"))
    results = []

    class CallsF:
        def __del__(self):
            results.append(f(10))

    old = gc.get_threshold()
    before = rjit.stats()["compiled"]
    gc.collect()
    gc.disable()
    try:
        cycle = CallsF()
        cycle.self = cycle
        del cycle  # garbage only the cyclic collector can free
        gc.set_threshold(1)
        gc.enable()
        assert f(100) == 4950
    finally:
        gc.set_threshold(*old)
        gc.enable()
    gc.collect()
    assert results == [45]
    assert rjit.stats()["compiled"] == before + 1


INTRINSIC_CALLS = [
    "math.sqrt(a)", "math.exp(a)", "math.log(a)", "math.log2(a)", "math.log10(a)", "math.sin(a)",
    "math.cos(a)", "math.tan(a)", "math.atan(a)", "math.tanh(a)", "math.fabs(a)", "math.floor(a)",
    "math.ceil(a)", "math.isnan(a)", "math.isinf(a)", "abs(a)", "float(a)", "int(a)", "bool(a)",
    "round(a)",
]  # fmt: skip


@pytest.mark.parametrize("call", INTRINSIC_CALLS)
def test_builtin_and_math_calls_on_every_number(call):
    # Compiled to machine code (or a C library call) on ints, floats and bools; domain errors,
    # overflows and results beyond 64 bits redo the call in the interpreter.
    source = f"import math\ndef f(a):\n    return {call}\n"
    plain = make_function(source, "f")
    assert "GuardIs" in rjit._rjit.dump_ir(plain.__code__, (1.5,), plain.__globals__)
    for a in NUMBERS + [1e-300, -1e-300, 710.0, -745.5, 1e16, 2.0**63, -(2.0**63), 0.5, -0.5, 2.5, 3.5, -2.5]:
        assert specialised_outcome(source, (a,)) == outcome(plain, (a,)), (call, a)


def test_rebound_builtin_and_math_names_leave_for_the_interpreter():
    source = "import math\ndef f(a):\n    return math.sqrt(a) + abs(a)\n"
    ns = {}
    f = rjit.jit(make_function(source, "f", ns))
    assert f(4.0) == 6.0
    ns["abs"] = lambda x: 100
    assert f(4.0) == 102.0

    class FakeMath:
        sqrt = staticmethod(lambda x: -1.0)

    ns["math"] = FakeMath
    assert f(4.0) == 99.0
    del ns["abs"]  # the builtin again
    assert f(-4.0) == 3.0


BORROWED_LISTS = """
import sys
seen = []
TARGET = []

class Spy(list):
    def __getitem__(self, i):
        seen.append(("get", sys.getrefcount(self)))
        return list.__getitem__(self, i)

    def __setitem__(self, i, v):
        seen.append(("set", sys.getrefcount(self)))
        list.__setitem__(self, i, v)

class Dies:
    def __del__(self):
        seen.append(("del", sys.getrefcount(TARGET[0])))

def f(lst, n):
    s = 0
    for i in range(n):
        s += lst[i]
        lst[i] = i * 2
    return s

def g(lst, n):
    for i in range(n):
        lst[i] = i
    return len(lst)
"""


def test_list_accesses_show_the_interpreters_reference_counts_to_code_they_run():
    # Compiled list indexing does not hold a reference to the list around the inline access;
    # __getitem__/__setitem__ of a subclass and destructors of replaced items must still see
    # the count the interpreter shows (its value stack holds the list meanwhile).
    outcomes = []
    for compile_it in (False, True):
        ns = {}
        make_function(BORROWED_LISTS, "f", ns)
        f, g = ns["f"], ns["g"]
        spy = ns["Spy"]([1, 2, 3, 4])
        plain_list = [5, 6, 7]
        dying = [ns["Dies"]() for _ in range(3)]
        ns["TARGET"].append(dying)
        # Both runs with the hook installed (with it, CPython copies call arguments into the
        # callee's frame instead of moving them: one more reference, compiled or not); the
        # reference run keeps f and g in the interpreter.
        if not compile_it:
            f, g = rjit.nojit(f), rjit.nojit(g)
        rjit.enable(threshold=0)
        try:
            result = (f(spy, 4), f(plain_list, 3), g(dying, 3), list(spy), plain_list)
        finally:
            rjit.disable()
        ns["TARGET"].clear()
        outcomes.append((result, list(ns["seen"])))
    assert outcomes[0] == outcomes[1]
    assert [kind for kind, _ in outcomes[1][1]].count("del") == 3
    assert rjit.info(f).state == "compiled"


def test_indexing_other_containers_keeps_reference_counts_exact():
    # Tuples and dicts take the slow path of compiled indexing, which holds a reference to
    # the container around the call; the item and the container must end as they started.
    f = rjit.jit(make_function("def f(t, i):\n    x = t[i]\n    return x\n", "f"))
    item = object()
    t = (item, 1)
    d = {0: item}
    before = (sys.getrefcount(item), sys.getrefcount(t), sys.getrefcount(d))
    for _ in range(1000):
        assert f(t, 0) is item
        assert f(d, 0) is item
        assert f([item], 0) is item
    assert (sys.getrefcount(item), sys.getrefcount(t), sys.getrefcount(d)) == before


def test_exits_take_their_own_reference_to_stack_values_compiled_code_borrowed():
    # `lst[i] -= ...` keeps the list on the value stack for the store; compiled code does not
    # count that reference, so an exit there (an int item failing the profiled float guard)
    # takes it itself. Results and the list's reference count must be the interpreter's.
    source = "def f(lst, x):\n    for i in range(len(lst)):\n        lst[i] -= x * 2.0\n    return lst\n"
    warmed = make_function(source, "f")
    for _ in range(100):
        warmed([1.5, 2.5], 0.25)
    assert "borrowed [" in rjit._rjit.dump_ir(warmed.__code__, ([1.5, 2.5], 0.25), warmed.__globals__)
    compiled = rjit.jit(warmed)
    plain = make_function(source, "f")
    for items in ([1.5, 2.5, 3.5], [1.5, 2, 3.5], [7, 1.5], [1.5, "x"], [2**70, 1.5]):
        assert outcome(compiled, (list(items), 0.5)) == outcome(plain, (list(items), 0.5)), items
    lst = [1.5, 2, 3.5]
    before = sys.getrefcount(lst)
    for _ in range(300):
        lst[1] = 2  # an int again: every call deopts at it
        compiled(lst, 0.0)
    assert sys.getrefcount(lst) == before


@pytest.mark.parametrize("name", ["min", "max"])
def test_min_and_max_of_two_numbers_of_one_kind(name):
    # Machine compare and select when both are ints, floats or bools: the first wins ties and
    # NaN comparisons (-0.0 vs 0.0, nan), as the builtins compare.
    source = f"def f(a, b):\n    return {name}(a, b)\n"
    plain = make_function(source, "f")
    assert "GuardIs" in rjit._rjit.dump_ir(plain.__code__, (1.5, 2.5), plain.__globals__)
    checked = 0
    for a in NUMBERS:
        for b in NUMBERS:
            got = specialised_outcome(source, (a, b))
            assert got == outcome(plain, (a, b)), (name, a, b)
            checked += 1
    assert checked > 400


def test_intrinsic_results_joined_with_objects_are_boxed():
    # bool(x) of a bool, +x of an int, int(x) of an int are the operand's machine value; where
    # that value flows into a variable that may also hold an object, it must be boxed (a raw
    # machine value stored into the frame crashed: found by NumPy's test suite under rjit).
    source = (
        "def f(x, seq):\n    if isinstance(seq, list):\n        y = len(seq) == 2\n    else:\n        y = bool(x)\n"
        "    if y:\n        z = +x\n    else:\n        z = 'none'\n    w = int(x) if seq else None\n    return y, z, w\n"
    )
    plain = make_function(source, "f")
    for args in [(False, ()), (True, ()), (3, [1, 2]), (0, [1]), (2.5, ()), (True, [1, 2])]:
        assert specialised_outcome(source, args) == outcome(plain, args), args


def test_constants_passed_to_calls_have_the_interpreters_reference_count():
    # A call's argument holds a reference of its own, as on the interpreter's stack
    # (`sys.getrefcount` sees it: found by NumPy's test suite under rjit).
    source = "def f(n):\n    value = 12345\n    k = n + 1000\n    return sys.getrefcount(value), k\n"
    ns = {"sys": sys}
    plain = make_function(source, "f", dict(ns))
    compiled = rjit.jit(make_function(source, "f", dict(ns)))
    for n in [1, 2, 2**62]:
        assert compiled(n) == plain(n)


def test_identity_of_numbers_is_kept():
    # `y = x; x is y` is True in the interpreter: a number compared by identity is boxed once,
    # where it is made, not at each use.
    source = (
        "def f(n):\n    x = n + 1000\n    y = x\n    z = n + 1000\n    f = n * 0.5\n    g = f\n"
        "    return x is y, [x, y][0] is [x, y][1], x is z, f is g, x is not y\n"
    )
    plain = make_function(source, "f")
    for n in [1, 5, 2**40, 2.5]:
        assert specialised_outcome(source, (n,)) == outcome(plain, (n,)), n
