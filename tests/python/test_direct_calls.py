"""Direct calls of a compiled function by itself (`hir::direct`): recursion on machine values
without Python frames. Everything must behave exactly as in the interpreter: values and exact
types, exceptions raised deep in the recursion (with every frame in the traceback), the
recursion limit (also when changed), tracing and profiling, a global rebound between calls or
a function running the same code with other globals, threads and signals; and no reference
may leak when a direct call gives up and the interpreter redoes it."""

from __future__ import annotations

import gc
import signal
import sys
import threading
import traceback
import types

import pytest

import rjit
from conftest import assert_ok, make_function, run_code

FIB = """
def fib(n):
    if n < 2:
        return n
    return fib(n - 1) + fib(n - 2)
"""

DEPTH = """
def depth(n):
    if n == 0:
        return 0
    return 1 + depth(n - 1)
"""

POW3 = """
def pow3(n):
    if n == 0:
        return 1
    return 3 * pow3(n - 1)
"""

# Raises ZeroDivisionError at the bottom of the recursion (line 4 of the source).
ZERO = """
def zero(n):
    if n < 1:
        return 1 // n
    return zero(n - 1) + 1
"""

FLOATS = """
def fl(x):
    if x < 1.0:
        return x
    return fl(x - 1.0) * 0.5 + fl(x - 2.0)
"""

ACK = """
def ack(m, n):
    if m == 0:
        return n + 1
    if n == 0:
        return ack(m - 1, 1)
    return ack(m - 1, ack(m, n - 1))
"""

SUM_TO = """
def sum_to(n, acc):
    if n == 0:
        return acc
    return sum_to(n - 1, acc + n)
"""


def namespace(source):
    """Runs `source` in a fresh namespace (fresh code objects) and returns it."""
    ns = {}
    make_function(source, None, ns)
    return ns


def outcome(func, args, loose_recursion=False):
    """('ok', type, repr) or ('raise', type, message, line numbers of the traceback's frames
    in the test source). With `loose_recursion`, a RecursionError is only its type: where a
    float comparison at the limit raises it depends on whether CPython quickened the code
    (`COMPARE_OP` checks the C recursion depth, `COMPARE_OP_FLOAT_JUMP` does not)."""
    try:
        result = func(*args)
    except RecursionError if loose_recursion else () as exc:
        return ("raise", type(exc))
    except Exception as exc:  # noqa: BLE001 - the exception is the outcome
        lines = [f.lineno for f in traceback.extract_tb(exc.__traceback__) if f.filename.startswith("<rjit-test")]
        return ("raise", type(exc), str(exc), lines)
    return ("ok", type(result), repr(result))


def uses_direct_calls(ns, name, args):
    """Whether `name`, compiled for `args`, calls itself directly."""
    return "CallDirect" in rjit._rjit.dump_ir(ns[name].__code__, args, ns)


def differential(source, name, calls, direct=True, loose_recursion=False):
    """Runs `name` of `source` plain, then compiled on its first call (fresh namespaces), on
    each argument tuple: the outcomes must be equal. Returns the compiled namespace."""
    plain = namespace(source)
    expected = [outcome(plain[name], args, loose_recursion) for args in calls]
    jit = namespace(source)
    if direct is not None:
        assert uses_direct_calls(jit, name, calls[0]) == direct
    rjit.enable(threshold=0)
    try:
        got = [outcome(jit[name], args, loose_recursion) for args in calls]
    finally:
        rjit.disable()
    assert got == expected
    return jit


def test_fib_values_and_types_are_the_interpreters():
    ns = differential(FIB, "fib", [(n,) for n in range(25)] + [(-3,), (0,)])
    info = rjit.info(ns["fib"])
    assert info.compiled and info.side_exits == {}
    # The whole recursion ran in machine code: the hook saw only the outermost calls.
    assert info.calls == 27


def test_the_ir_has_a_guarded_direct_call():
    ns = namespace(FIB)
    ir = rjit._rjit.dump_ir(ns["fib"].__code__, (10,), ns)
    assert ir.count("CallDirect") == 2 and ir.count("GuardCallee") == 2
    # Specialised for a float argument, the calls pass floats: direct too.
    assert uses_direct_calls(ns, "fib", (10.0,))
    # An argument beyond 64 bits is no machine value: no specialisation at all.
    assert not uses_direct_calls(ns, "fib", (2**70,))


def test_floats_recursion_returns_floats():
    # nan and 1e300 recurse for ever (nan < 1.0 is false; 1e300 - 1.0 == 1e300): RecursionError.
    differential(FLOATS, "fl", [(12.5,), (0.5,), (-1.0,), (7.0,), (-0.0,), (float("nan"),), (1e300,)], loose_recursion=True)


def test_two_arguments_and_a_nested_direct_call():
    differential(ACK, "ack", [(0, 0), (1, 5), (2, 3), (3, 3), (2, 10)])


def test_an_overflow_deep_in_the_recursion_gives_the_big_int():
    differential(POW3, "pow3", [(5,), (39,), (40,), (41,), (45,), (120,)])


def test_a_bool_argument_is_not_an_int():
    # Specialised for a bool, `n - 1` is an int: the calls are not direct, results agree.
    differential(FIB, "fib", [(True,), (False,), (5,)], direct=False)


def test_argument_kinds_changing_between_calls():
    differential(FIB, "fib", [(10,), (10.0,), (2**70,), (True,), (12,), (-(2**63),)])


def test_exception_deep_in_the_recursion_has_every_frame():
    ns = differential(ZERO, "zero", [(0,), (1,), (5,), (30,)])
    # The direct chain gave up (the division leaves it) and the interpreter redid the calls.
    reasons = " ".join(reason for reason, _ in rjit.info(ns["zero"]).side_exits)
    assert "direct call" in reasons


def test_recursion_limit_is_the_interpreters():
    limit = sys.getrecursionlimit()
    try:
        for new_limit in (limit, 120, 400):
            sys.setrecursionlimit(new_limit)
            calls = [(10,), (new_limit - 60,), (new_limit + 50,), (new_limit * 3,)]
            differential(DEPTH, "depth", calls)
    finally:
        sys.setrecursionlimit(limit)


def test_recursion_limit_changed_after_compiling():
    limit = sys.getrecursionlimit()
    plain, jit = namespace(DEPTH), namespace(DEPTH)
    rjit.enable(threshold=0)
    try:
        assert jit["depth"](50) == 50
        for new_limit in (100, 300, 2000):
            sys.setrecursionlimit(new_limit)
            for n in (new_limit - 50, new_limit + 10):
                rjit.disable()
                expected = outcome(plain["depth"], (n,))
                rjit.enable(threshold=0)
                assert outcome(jit["depth"], (n,)) == expected, (new_limit, n)
    finally:
        rjit.disable()
        sys.setrecursionlimit(limit)


def test_deep_recursion_with_a_huge_limit_never_crashes():
    # With a limit far beyond what the native stack carries, the direct chain stops at the
    # hook's native depth limit: a value or a RecursionError, never a crash.
    proc = run_code(
        """
        import sys, rjit
        sys.setrecursionlimit(10**7)
        def depth(n):
            if n == 0:
                return 0
            return 1 + depth(n - 1)
        rjit.enable(threshold=0)
        for n in (10**3, 10**4, 10**5, 10**6):
            try:
                print(n, depth(n) == n)
            except RecursionError as e:
                print(n, "RecursionError")
        """
    )
    assert_ok(proc)
    lines = proc.stdout.split("\n")
    assert lines[0] == "1000 True" and lines[1] == "10000 True", proc.stdout
    assert len([line for line in lines if line]) == 4


def test_tracing_sees_every_call():
    def count_calls(func, arg, setter):
        events = []

        def tracer(frame, event, _arg):
            if event == "call" and frame.f_code is func.__code__:
                events.append(frame.f_locals.get("n"))
            return None

        setter(tracer)
        try:
            result = func(arg)
        finally:
            setter(None)
        return result, events

    plain, jit = namespace(FIB), namespace(FIB)
    for setter in (sys.settrace, sys.setprofile):
        expected = count_calls(plain["fib"], 12, setter)
        assert len(expected[1]) == 465
        rjit.enable(threshold=0)
        try:
            assert jit["fib"](15) == 610  # compiled, direct calls
            got = count_calls(jit["fib"], 12, setter)
            assert jit["fib"](16) == 987
        finally:
            rjit.disable()
        assert got == expected


def test_a_tracer_installed_between_calls_by_other_code():
    ns = namespace(FIB)
    seen = []

    def tracer(frame, event, _arg):
        if event == "call" and frame.f_code is ns["fib"].__code__:
            seen.append(1)

    rjit.enable(threshold=0)
    try:
        assert ns["fib"](12) == 144
        sys.setprofile(tracer)
        assert ns["fib"](6) == 8
        sys.setprofile(None)
    finally:
        rjit.disable()
    assert len(seen) == 25


def test_global_rebound_between_calls():
    ns = namespace(FIB)
    original = ns["fib"]
    rjit.enable(threshold=0)
    try:
        assert original(20) == 6765
        ns["fib"] = lambda n: 100
        # The guard on the callee fails: the interpreter calls the new global.
        assert original(5) == 200
        ns["fib"] = original
        assert original(20) == 6765
    finally:
        rjit.disable()
    reasons = " ".join(reason for reason, _ in rjit.info(original).side_exits)
    assert "direct-call guard" in reasons


def test_global_rebound_to_a_function_with_the_same_code_and_other_globals():
    ns = namespace(FIB)
    original = ns["fib"]
    other_globals = {}
    other = types.FunctionType(original.__code__, other_globals)
    other_globals["fib"] = lambda n: 1000
    rjit.enable(threshold=0)
    try:
        assert original(15) == 610
        # Same code object, other globals: its frame runs the same machine code, whose calls
        # must look `fib` up in its own globals.
        assert other(5) == 2000
        ns["fib"] = other
        assert original(5) == 4000  # other(4) + other(3)
        # A copy whose globals name itself: it may call itself directly.
        self_globals = {}
        copy = types.FunctionType(original.__code__, self_globals)
        self_globals["fib"] = copy
        assert copy(20) == 6765
    finally:
        rjit.disable()


def test_code_object_replaced_between_calls():
    ns = namespace(FIB)
    fib = ns["fib"]
    rjit.enable(threshold=0)
    try:
        assert fib(18) == 2584
        ns["fib"] = make_function("def fib(n):\n    return -1\n")
        assert fib(5) == -2
        ns["fib"] = fib
        assert fib(5) == 5
        fib.__code__ = make_function("def g(n):\n    return n * 2\n").__code__
        assert fib(5) == 10
    finally:
        rjit.disable()


def test_callee_raising_through_rebound_global():
    ns = namespace(FIB)
    fib = ns["fib"]

    def boom(n):
        raise ValueError(f"boom {n}")

    rjit.enable(threshold=0)
    try:
        assert fib(12) == 144
        ns["fib"] = boom
        with pytest.raises(ValueError, match="boom 4"):
            fib(5)
    finally:
        rjit.disable()


def test_threads_share_the_gil_during_direct_recursion():
    ns = namespace(FIB)
    results = []
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    rjit.enable(threshold=0)
    try:
        threads = [threading.Thread(target=lambda: results.append(ns["fib"](22))) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        rjit.disable()
        sys.setswitchinterval(interval)
    assert results == [17711] * 4


class Stop(Exception):
    pass


def test_a_signal_handler_interrupts_a_long_direct_recursion():
    ns = namespace(FIB)

    def handler(_signum, _frame):
        raise Stop

    old = signal.signal(signal.SIGALRM, handler)
    rjit.enable(threshold=0)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.05)
        with pytest.raises(Stop) as info:
            ns["fib"](60)  # hours without the signal
        lines = [f.lineno for f in traceback.extract_tb(info.value.__traceback__) if f.name == "fib"]
        assert lines and set(lines) <= {2, 3, 4, 5}
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
        rjit.disable()


def test_arguments_keep_their_reference_counts():
    ns = namespace(SUM_TO)
    big = 10**6 + 12345  # not a cached small int
    before = sys.getrefcount(big)
    rjit.enable(threshold=0)
    try:
        for _ in range(2000):
            assert ns["sum_to"](50, big) == big + 1275
            # Overflowing the accumulator deep inside: the interpreter redoes the calls.
            assert ns["sum_to"](20, 2**63 - 100) == 2**63 - 100 + 210
        assert uses_direct_calls(ns, "sum_to", (50, big))
    finally:
        rjit.disable()
    gc.collect()
    assert sys.getrefcount(big) == before


def test_deopting_direct_calls_do_not_grow_memory():
    proc = run_code(
        """
        import resource, rjit
        def pow3(n):
            if n == 0:
                return 1
            return 3 * pow3(n - 1)
        rjit.enable(threshold=0)
        for _ in range(2000):
            pow3(45)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        for _ in range(100000):
            pow3(41)
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(after - before)
        """
    )
    assert_ok(proc)
    assert int(proc.stdout) < 2048  # KiB


def test_functions_that_do_not_qualify_still_work():
    # Locals, a call of another global, a generic operation: no direct entry.
    source = """
    def helper(n):
        return n

    def f(n):
        if n < 2:
            return helper(n)
        k = n - 1
        return f(k) + f(n - 2)

    def g(n):
        if n < 2:
            return [n]
        return g(n - 1) + g(n - 2)
    """
    differential(source, "f", [(15,), (3,)], direct=False)
    differential(source, "g", [(10,), (1,)], direct=False)
