"""A differential fuzzer for direct calls (`hir::direct`): random small recursive functions
of one or two int or float arguments, with random operators, base cases and call shapes,
run plain and compiled on random arguments (small ones, ones near 64-bit overflow, zero
divisors, deep recursion): every outcome, value and exact type or exception and traceback
lines, must be the interpreter's."""

from __future__ import annotations

import random
import sys
import traceback

import rjit
from conftest import make_function

INT_OPS = ["+", "-", "*", "//", "%", "&", "|", "^"]
FLOAT_OPS = ["+", "-", "*", "/"]


def random_function(rng: random.Random, floats: bool) -> tuple[str, int]:
    """Source of a recursive `f` and its number of arguments."""
    ops = FLOAT_OPS if floats else INT_OPS
    c = (lambda: repr(rng.choice([0.5, 1.0, 2.0, 3.0, -1.5]))) if floats else (lambda: str(rng.randint(-3, 5)))
    nargs = rng.choice([1, 2])
    args = ["n", "m"][:nargs]
    step = (lambda: repr(rng.choice([1.0, 2.0]))) if floats else (lambda: str(rng.choice([1, 2, 3])))
    base = f"{args[0]} < {c() if floats else rng.randint(1, 3)}"

    def expr(depth: int) -> str:
        if depth == 0 or rng.random() < 0.3:
            return rng.choice(args + [c()])
        return f"({expr(depth - 1)} {rng.choice(ops)} {expr(depth - 1)})"

    def call() -> str:
        # The second argument moves by a constant: squaring it at every level would make
        # numbers of millions of digits (as slow plain as compiled).
        new = [f"{args[0]} - {step()}"] + [f"{a} {rng.choice(['+', '-'])} {c()}" for a in args[1:]]
        return f"f({', '.join(new)})"

    body_kind = rng.random()
    if body_kind < 0.5:
        rec = f"{call()} {rng.choice(ops)} {call()}"
    elif body_kind < 0.8:
        rec = f"{expr(1)} {rng.choice(ops)} {call()}"
    else:
        rec = f"{call()} {rng.choice(ops)} {expr(2)}"
    source = (
        f"def f({', '.join(args)}):\n"
        f"    if {base}:\n"
        f"        return {expr(2)}\n"
        f"    return {rec}\n"
    )
    return source, nargs


def outcome(func, args):
    try:
        result = func(*args)
    except Exception as exc:  # noqa: BLE001 - the exception is the outcome
        lines = [f.lineno for f in traceback.extract_tb(exc.__traceback__) if f.filename.startswith("<rjit-test")]
        # Where a RecursionError is raised deep down is the only thing left loose: the C
        # recursion check of an unquickened comparison may come first in the interpreter.
        if isinstance(exc, RecursionError):
            return ("raise", RecursionError)
        return ("raise", type(exc), str(exc), lines[:3], len(lines))
    if type(result) is float and result != result:
        return ("ok", float, "nan")
    if type(result) is int:
        # Huge results are compared whole (repr refuses more than 4300 digits).
        return ("ok", int, result)
    return ("ok", type(result), repr(result))


def random_args(rng: random.Random, nargs: int, floats: bool):
    def one():
        if floats:
            return rng.choice([rng.uniform(-3, 12), float(rng.randint(0, 14)), 0.0, -0.0, 1e300])
        return rng.choice([rng.randint(-3, 18), rng.randint(0, 14), 2**62, -(2**62), 2**31, 0])
    return tuple(one() for _ in range(nargs))


def test_random_recursive_functions():
    rng = random.Random(20261126)
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(400)
    direct = 0
    try:
        for case in range(300):
            floats = case % 3 == 0
            source, nargs = random_function(rng, floats)
            calls = [random_args(rng, nargs, floats) for _ in range(6)]
            plain = make_function(source, "f")
            expected = [outcome(plain, a) for a in calls]
            ns = {}
            jit = make_function(source, "f", ns)
            direct += "CallDirect" in rjit._rjit.dump_ir(jit.__code__, calls[0], ns)
            rjit.enable(threshold=0)
            try:
                got = [outcome(jit, a) for a in calls]
            finally:
                rjit.disable()
            assert got == expected, (source, calls)
    finally:
        sys.setrecursionlimit(limit)
    # Most of them qualify: the test exercises direct entries, not only the interpreter.
    assert direct > 100, direct
