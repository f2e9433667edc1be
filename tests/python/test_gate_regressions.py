"""Regression tests for the bugs the correctness gate (tests/fuzz, the leak/thread/W^X tests)
found: each program, reduced from what the fuzzer generated, runs in two child interpreters,
plain and with every function compiled at its first call, and both must print the same (a
crash shows up as a non-zero exit of the compiled run)."""

from __future__ import annotations

import textwrap

import pytest

from conftest import run_code

HARNESS = """
import math

def show(f, *calls):
    for args in calls:
        try:
            r = f(*args)
            print("ok", type(r).__name__, repr(r))
        except Exception as e:
            print("raise", type(e).__name__, e)
"""

CASES = {
    # int(1) on a machine int became the machine value itself while the loop variable it was
    # assigned to stayed an object (float before the loop, int in it): the raw 1 was stored
    # into the frame and returned as an object pointer (segfault).
    "identity_intrinsic_into_boxed_loop_variable": """
        def f():
            x = 0.5
            for i in range(3):
                x = int(1)
            return x
        def g(a):
            x = -0.0
            for i in range(3):
                x = int(max(1, -a))
            return x
        def h(a):
            x = 1.5
            for i in range(2):
                x = +a
            return x
        def k(a):
            x = 2
            for i in range(2):
                x = bool(a > 0)
                x = float(1.5)
            return x
        show(f, ())
        show(g, (False,), (3,), (2.5,))
        show(h, (3,), (2.5,), (True,))
        show(k, (1,), (-1,))
    """,
    # A `for` over a range whose body never loops back (break, return or raise at once) has its
    # FOR_ITER in the block that makes the iterator; the range specialisation read the
    # iterator's position before the iterator existed (segfault).
    "for_range_without_back_edge": """
        def f(a):
            for i in range(5):
                break
            return 3
        def g(a):
            for i in range(a):
                return i + 10
            return -1
        def h(n):
            for i in range(min(n, 9)):
                raise KeyError(i)
            return 0
        show(f, (1,))
        show(g, (0,), (4,), (2**70,), ("x",))
        show(h, (0,), (3,), (2.5,))
    """,
    # `False | b` of two bools (an int operation on machine values) assigned to a variable
    # that stays an object (a big int meets it later) was boxed as the int 0/1, not the bool.
    "bool_bitwise_result_boxed_as_bool": """
        def f(a, b):
            x = a
            x = False | b
            if a > 5000000:
                x = 2**65
            return x
        def g(a, b):
            x = a
            x = (b & True) ^ (b | b)
            for i in range(2):
                if a > 5000000:
                    x = 0.5
            return x
        show(f, (1000003, False), (1000003, True), (10**7, True))
        show(g, (3, False), (3, True), (10**7, False))
    """,
    # An argument assigned in a loop to a variable that stays an object but has a float
    # shadow (unboxed where the loop header starts) was not checked at entry: called again
    # with a bool, the bool object was read as a float (True became 5e-324).
    "argument_into_shadowed_loop_variable_is_guarded": """
        def f(a, b):
            x0 = -1.5
            for i0 in range(max(-2, min(a, 7)), 10):
                for i1 in range(13, 3, -3):
                    x0 = a
                if ((i0 if (64 < b <= -(2**63)) else x0) >= 1000):
                    break
            return x0
        show(f, (-1e308, -1e308), (True, 1.5), (2, 1.5), (2**70, 0.5), (-1e308, -1e308))
    """,
    # A deopt re-entered the interpreter at the opcode, after its EXTENDED_ARG prefix: a
    # FOR_ITER over a long body (its jump needs the prefix) whose range was no range iterator
    # (range of a big int) then "exhausted" into the middle of the body (segfault, nbody).
    "deopt_of_an_instruction_with_extended_arg": """
        body = "\\n".join(f"        s = s + i * {k} - {k}" for k in range(120))
        ns = {}
        exec(f"def f(n):\\n    s = 0\\n    for i in range(n):\\n{body}\\n    return s\\n", ns)
        f = ns["f"]
        import dis
        assert any(i.opname == "EXTENDED_ARG" for i in dis.get_instructions(f))
        show(f, (3,), (-(2**64),), (2,), (-(2**70),), (True,))
    """,
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_reduced_fuzzer_program_runs_the_same_compiled(name):
    script = HARNESS + textwrap.dedent(CASES[name])
    plain = run_code(script)
    assert plain.returncode == 0, plain.stderr
    jitted = run_code(script, env={"RJIT": "1", "RJIT_THRESHOLD": "0"})
    assert jitted.returncode == 0, f"compiled run died: exit {jitted.returncode}\n{jitted.stderr[-3000:]}"
    assert jitted.stdout == plain.stdout
    assert plain.stdout.count("\n") >= 3
