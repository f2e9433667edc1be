"""More builtins and `math` functions as machine code: `math.atan2`, `math.pow`,
`math.hypot`, the builtins
`pow` (with a float), `len` (exact list, tuple, str, dict) and `isinstance` with a builtin
type. Differential tests over edge values: results equal CPython's bit for bit (NaN signs
and payloads included), errors are CPython's (type, message, traceback line), and a
rebound name or an argument the machine code does not handle goes to the interpreter."""

from __future__ import annotations

import itertools
import math
import random
import struct
import traceback

import pytest

import rjit
from conftest import make_function

FLOATS = [0.0, -0.0, 1.0, -1.0, 2.0, -2.0, 0.5, -0.5, 3.0, -3.0, 1.5, 1e308, -1e308, 1e-310, 5e-324,
          float("inf"), float("-inf"), float("nan"), -float("nan"), 7, -7, 0, 2**53 + 1, True]


def bits(value):
    """A value with floats shown by their bits (so -0.0, NaN signs and payloads count)."""
    if type(value) is float:
        return ("float", struct.pack("<d", value).hex())
    return (type(value), repr(value))


def outcome(func, args):
    try:
        result = func(*args)
    except Exception as exc:  # noqa: BLE001 - the exception is the outcome
        lines = [f.lineno for f in traceback.extract_tb(exc.__traceback__) if f.filename.startswith("<rjit-test")]
        return ("raise", type(exc), str(exc), lines)
    return ("ok", bits(result))


def differential(source, calls, expect_in_ir):
    """`f` of `source`, plain and compiled at its first call: equal outcomes on every call.
    The compiled version is made for the first call's argument types; `expect_in_ir` must
    appear in its IR (the operation is machine code)."""
    plain = make_function(source, "f")
    jit_ns = {}
    jit = make_function(source, "f", jit_ns)
    ir = rjit._rjit.dump_ir(jit.__code__, calls[0], jit_ns)
    assert expect_in_ir in ir, ir
    expected = [outcome(plain, args) for args in calls]
    compiled = rjit.jit(jit)
    got = [outcome(compiled, args) for args in calls]
    for args, e, g in zip(calls, expected, got):
        assert g == e, args
    return jit


ATAN2 = """
import math
def f(y, x):
    return math.atan2(y, x)
"""

MATH_POW = """
import math
def f(x, y):
    return math.pow(x, y)
"""

POW = """
def f(x, y):
    return pow(x, y)
"""

HYPOT = """
import math
def f(x, y):
    return math.hypot(x, y)
"""


@pytest.mark.parametrize("source, op", [(ATAN2, "MathAtan2"), (MATH_POW, "MathPow"), (POW, "FloatPow"), (HYPOT, "MathHypot")])
def test_two_argument_float_functions_over_edge_values(source, op):
    pairs = list(itertools.product(FLOATS, FLOATS))
    if source == POW:
        # Two ints: an exact int power (2**53 + 1 as an exponent would never finish).
        pairs = [(a, b) for a, b in pairs if isinstance(a, float) or isinstance(b, float)]
    # Compiled for floats; then every pair (ints and bools deoptimise at the entry guard, or
    # are converted as CPython converts them when the function is recompiled for them).
    # Float pairs first: they run the machine code (an int argument fails the entry guard).
    pairs.sort(key=lambda p: not (type(p[0]) is float and type(p[1]) is float))
    f = differential(source, [(1.5, 2.5)] + pairs, op)
    assert rjit.info(f).specializations[0].specialised


@pytest.mark.parametrize("source, op", [(ATAN2, "MathAtan2"), (MATH_POW, "MathPow"), (POW, "FloatPow"), (HYPOT, "MathHypot")])
def test_int_arguments_are_converted_as_cpython_converts_them(source, op):
    # Compiled for (int, float): the int is converted with correct rounding.
    calls = [(3, 0.5), (2**53 + 1, 1.0), (-(2**62) - 1, 0.25), (0, -1.0), (-5, 0.5), (10**20, 1.0), (10**400, 0.5)]
    differential(source, calls, op)


@pytest.mark.parametrize("source, op", [(ATAN2, "MathAtan2"), (MATH_POW, "MathPow"), (HYPOT, "MathHypot")])
def test_random_floats_of_every_magnitude(source, op):
    # hypot is CPython's own algorithm (not the C library's): every rounding must agree.
    rng = random.Random(4)

    def any_float():
        kind = rng.random()
        if kind < 0.6:
            return rng.uniform(-1.0, 1.0) * 2.0 ** rng.randint(-1074, 1023)
        if kind < 0.8:
            return struct.unpack("<d", rng.getrandbits(64).to_bytes(8, "little"))[0]
        return float(rng.randint(-10**6, 10**6))

    calls = [(0.5, 0.25)] + [(any_float(), any_float()) for _ in range(20000)]
    # Close magnitudes (where hypot's compensation matters) and subnormals.
    calls += [(x, x * rng.uniform(0.5, 2.0)) for x, _ in calls[1:3000]]
    calls += [(rng.randint(1, 2**52) * 5e-324, rng.randint(1, 2**52) * 5e-324) for _ in range(2000)]
    differential(source, calls, op)


def test_builtin_pow_of_two_ints_stays_exact():
    f = differential(POW, [(2, 10), (3, -2), (2, 100), (-2, 0.5), (0, -1)], "Call")
    assert "FloatPow" not in rjit._rjit.dump_ir(f.__code__, (2, 10), {})


LEN = """
def f(s):
    return len(s) * 2
"""


class Sized:
    def __len__(self):
        return 5


class BadLen:
    def __len__(self):
        raise KeyError("no length")


def test_len_of_builtin_containers_and_others():
    calls = [([1, 2, 3],), ([],), ((1,),), ("héllo",), ("",), ({1: 2, 3: 4},), ({1, 2},), (b"ab",),
             (Sized(),), (BadLen(),), (range(7),), (5,), (None,), ([0] * 1000,), ("x" * 100,)]
    f = differential(LEN, calls, "LenOf")
    reasons = " ".join(r for r, _ in rjit.info(f).side_exits)
    assert "len()" in reasons


ISINSTANCE = """
def f(x):
    return (isinstance(x, int), isinstance(x, float), isinstance(x, bool), isinstance(x, str),
            isinstance(x, list), isinstance(x, tuple), isinstance(x, dict), isinstance(x, set),
            isinstance(x, frozenset), isinstance(x, bytes), isinstance(x, complex))
"""


class MyInt(int):
    pass


class Pretender:
    @property
    def __class__(self):
        return int


@pytest.mark.parametrize("first", ["s", 3, 1.5, True])
def test_isinstance_with_builtin_types(first):
    calls = [(first,), (1,), (1.5,), (True,), ("s",), ([1],), ((1,),), ({},), (set(),), (frozenset(),),
             (b"",), (1j,), (None,), (MyInt(3),), (Pretender(),), (object(),), (2**70,)]
    f = differential(ISINSTANCE, calls, "IsInstanceOf" if isinstance(first, str) else "ConstBool")
    if isinstance(first, str):
        # Pretender's __class__ is a property: the interpreter decided.
        reasons = " ".join(r for r, _ in rjit.info(f).side_exits)
        assert "isinstance()" in reasons


def test_rebound_names_go_to_the_interpreter():
    source = """
    import math
    def f(x, y):
        return (math.atan2(y, x), math.pow(x, y), pow(x, y), len([x]), isinstance(x, float), math.hypot(x, y))
    """
    ns = {}
    f = rjit.jit(make_function(source, "f", ns))
    assert f(1.0, 2.0) == (math.atan2(2.0, 1.0), 1.0, 1.0, 1, True, math.hypot(1.0, 2.0))
    ns["pow"] = lambda a, b: "pow"
    ns["len"] = lambda a: "len"
    ns["float"] = int
    fake = {"atan2": lambda y, x: "atan2", "pow": lambda x, y: "mpow", "hypot": lambda x, y: "hypot"}
    ns["math"] = type("M", (), {k: staticmethod(v) for k, v in fake.items()})
    assert f(1.0, 2.0) == ("atan2", "mpow", "pow", "len", False, "hypot")


def test_math_errors_have_cpythons_messages_and_lines():
    source = """
    import math
    def f(x, y):
        a = x + 1.0
        return math.pow(x, y) + a
    """
    calls = [(2.0, 3.0), (0.0, -1.0), (-8.0, 1.0 / 3.0), (10.0, 400.0), (0.0, float("-inf"))]
    differential(source, calls, "MathPow")
