"""Direct calls of *other* compiled functions (`hir::direct`, `compiler::add_other_direct_calls`):
a function calling, through a global, another function of its module whose body (with a loop,
so it is not inlined) runs machine operations only, calls that function's direct entry with
machine arguments, without a Python frame. Every guard gets a forced-deopt case: the callee
rebound, its `__code__` replaced, a function with the same code and other globals, `range`
rebound (a global the entry relies on), a tracer, an overflow inside the callee (the
interpreter redoes the call), argument kinds changing between calls. Values, exact types,
exceptions and tracebacks must be the interpreter's, and no reference may leak."""

from __future__ import annotations

import gc
import sys
import traceback
import types

import rjit
from conftest import make_function
from test_direct_calls import namespace

STEPS = """
def steps(x):
    n = 0
    while x != 1:
        if x % 2 == 0:
            x = x // 2
        else:
            x = 3 * x + 1
        n += 1
    return n

def longest(limit):
    best = 0
    for s in range(1, limit):
        k = steps(s)
        if k > best:
            best = k
    return best
"""

POLY = """
def poly(x, n):
    acc = 0.0
    for k in range(n):
        acc = acc * x + k
    return acc

def total(m):
    t = 0.0
    for i in range(m):
        t += poly(i * 0.5, 4)
    return t
"""

# The callee overflows 64 bits for large arguments, and raises for a zero divisor.
SUM_POWERS = """
def sum_powers(b, n):
    s = 0
    p = 1
    for _ in range(n):
        p = p * b
        s = s + p
    return s // (b - 7)

def driver(bs, n):
    out = 0
    for b in range(bs):
        out = out + sum_powers(b, n)
    return out
"""

# A recursive callee, called from a loop of another function.
FIB = """
def fib(n):
    if n < 2:
        return n
    return fib(n - 1) + fib(n - 2)

def fibs(m):
    t = 0
    for i in range(m):
        t = t + fib(i)
    return t
"""


def outcome(func, args):
    """('ok', type, repr) or ('raise', type, message, the traceback's function names)."""
    try:
        result = func(*args)
    except Exception as exc:  # noqa: BLE001 - the exception is the outcome
        names = [f.name for f in traceback.extract_tb(exc.__traceback__) if f.filename.startswith("<rjit-test")]
        return ("raise", type(exc), str(exc), names)
    return ("ok", type(result), repr(result))


def ir(ns, name, args):
    return rjit._rjit.dump_ir(ns[name].__code__, args, ns)


def calls_other_directly(ns, name, args):
    return "CallDirect" in ir(ns, name, args) and "(another function)" in ir(ns, name, args)


def differential(source, name, calls, direct=True):
    """`name` of `source` plain, then compiled on its first call (fresh namespaces), on each
    argument tuple: the outcomes must be equal. Returns the compiled namespace."""
    plain = namespace(source)
    expected = [outcome(plain[name], args) for args in calls]
    jit = namespace(source)
    assert calls_other_directly(jit, name, calls[0]) == direct
    rjit.enable(threshold=0)
    try:
        got = [outcome(jit[name], args) for args in calls]
    finally:
        rjit.disable()
    assert got == expected
    return jit


def test_a_loop_calling_a_function_with_a_loop_gives_the_interpreters_results():
    ns = differential(STEPS, "longest", [(2,), (3,), (100,), (3000,), (1,), (0,)])
    info = rjit.info(ns["longest"])
    assert info.compiled and info.side_exits == {}
    # The callee ran as machine code without frames: the hook saw none of its calls.
    assert rjit.info(ns["steps"]).calls == 0


def test_float_arguments_and_a_range_loop_in_the_callee():
    ns = differential(POLY, "total", [(0,), (1,), (50,), (1000,)])
    assert rjit.info(ns["poly"]).calls == 0
    text = ir(ns, "total", (10,))
    # The callee's range loop relies on `range` being the builtin: checked before each call.
    assert "GuardGlobalIs" in text and "GuardCallee" in text


def test_the_ir_calls_the_other_function_directly_only_for_machine_arguments():
    ns = namespace(STEPS)
    assert calls_other_directly(ns, "longest", (10,))
    # A float limit: `s` is still an int (range), the call stays direct.
    ns = namespace(POLY)
    assert calls_other_directly(ns, "total", (10,))
    # Arguments that are objects: no direct call.
    source = """
    def count(xs):
        n = 0
        for x in xs:
            n += 1
        return n

    def outer(m):
        t = 0
        for i in range(m):
            t += count([i])
        return t
    """
    ns = namespace(source)
    assert not calls_other_directly(ns, "outer", (5,))


def test_an_overflow_or_an_exception_in_the_callee_is_redone_by_the_interpreter():
    # b ** n beyond 64 bits, and b == 7 divides by zero inside the callee: the direct call
    # gives up and the interpreter redoes it (big ints, ZeroDivisionError with both frames).
    calls = [(5, 3), (7, 3), (8, 3), (8, 40), (30, 30), (3, 0)]
    ns = differential(SUM_POWERS, "driver", calls)
    reasons = " ".join(reason for reason, _ in rjit.info(ns["driver"]).side_exits)
    assert "direct call" in reasons


def test_a_recursive_callee_called_from_another_function():
    ns = differential(FIB, "fibs", [(0,), (1,), (15,), (22,)])
    assert rjit.info(ns["fib"]).calls == 0


def test_callee_rebound_between_calls():
    ns = namespace(STEPS)
    original = ns["steps"]
    expected = namespace(STEPS)["longest"](200)
    rjit.enable(threshold=0)
    try:
        assert ns["longest"](200) == expected
        ns["steps"] = lambda x: x
        assert ns["longest"](200) == 199  # the new global is called
        ns["steps"] = original
        assert ns["longest"](200) == expected
    finally:
        rjit.disable()
    reasons = " ".join(reason for reason, _ in rjit.info(ns["longest"]).side_exits)
    assert "direct-call guard" in reasons


def test_callee_code_replaced_between_calls():
    ns = namespace(STEPS)
    expected = namespace(STEPS)["longest"](100)
    rjit.enable(threshold=0)
    try:
        assert ns["longest"](100) == expected
        ns["steps"].__code__ = (lambda x: -x).__code__
        assert ns["longest"](100) == 0
    finally:
        rjit.disable()


def test_a_function_with_the_callees_code_and_other_globals_is_not_called_directly():
    ns = namespace(STEPS)
    expected = namespace(STEPS)["longest"](100)
    other_globals = {"__builtins__": __builtins__}
    rjit.enable(threshold=0)
    try:
        assert ns["longest"](100) == expected
        # Same code object, other globals: the guard compares globals; the call goes
        # through the interpreter and gives the same answer.
        ns["steps"] = types.FunctionType(ns["steps"].__code__, other_globals)
        assert ns["longest"](100) == expected
    finally:
        rjit.disable()


def test_range_rebound_in_the_module_is_seen_by_the_callee():
    ns = namespace(POLY)
    expected = namespace(POLY)["total"](40)
    rjit.enable(threshold=0)
    try:
        assert ns["total"](40) == expected
        # Only the callee's `range` changes behaviour... but both functions share the
        # globals: the interpreter must run the callee with the new `range`.
        ns["range"] = lambda n: [0] * n
        plain = namespace(POLY)
        plain["range"] = lambda n: [0] * n
        assert outcome(ns["total"], (40,)) == outcome(plain["total"], (40,))
        del ns["range"]
        assert ns["total"](40) == expected
    finally:
        rjit.disable()


def test_a_tracer_sees_the_callees_frames():
    ns = namespace(STEPS)
    rjit.enable(threshold=0)
    try:
        ns["longest"](20)  # compiled
        seen = []

        def tracer(frame, event, arg):
            if event == "call":
                seen.append(frame.f_code.co_name)
            return None

        sys.settrace(tracer)
        try:
            ns["longest"](6)
        finally:
            sys.settrace(None)
    finally:
        rjit.disable()
    assert seen.count("steps") == 5


def test_argument_kinds_changing_between_calls():
    source = """
    def scale(x, n):
        t = x
        for _ in range(n):
            t = t * 2
        return t

    def apply(v, m):
        out = v
        for i in range(m):
            out = out + scale(v, 3)
        return out
    """
    calls = [(3, 5), (2.5, 5), (2**62, 3), (True, 2), (3, 5), (-0.0, 2)]
    differential(source, "apply", calls)


def test_arguments_and_results_keep_their_reference_counts():
    ns = namespace(SUM_POWERS)
    big = 10**6 + 4321  # not a cached small int
    before = sys.getrefcount(big)
    rjit.enable(threshold=0)
    try:
        for _ in range(300):
            ns["driver"](7, 3)
            ns["driver"](7, 30)  # overflows inside the callee: redone
            ns["sum_powers"](big, 1)
    finally:
        rjit.disable()
    gc.collect()
    assert sys.getrefcount(big) == before


def test_compiled_code_keeps_the_callee_entry_alive():
    ns = namespace(STEPS)
    expected = namespace(STEPS)["longest"](300)
    rjit.enable(threshold=0)
    try:
        assert ns["longest"](300) == expected
        # The callee's function and code object go away (from the namespace); the caller's
        # code still guards on the code's address, which must not be reused by a new one.
        del ns["steps"]
        gc.collect()
        for _ in range(50):
            make_function("def steps(x):\n    return 0\n", "steps", {})
        doubled = STEPS.split("def longest")[0].replace("n += 1", "n += 2")
        compiled_longest = ns["longest"]
        make_function(doubled, "steps", ns)  # a new `steps` in the same globals
        assert compiled_longest(300) == 2 * expected
    finally:
        rjit.disable()


def test_a_callee_made_with_other_builtins_is_not_called_directly():
    # A function fixes its builtins when it is made: this `poly` sees a `range` of its own
    # although its globals are the caller's. Its direct entry (which assumes the builtin
    # `range`) must not run for it.
    import builtins

    def make(ns):
        fake = dict(vars(builtins))
        fake["range"] = lambda n: [1] * n
        saved = ns["__builtins__"]
        ns["__builtins__"] = fake
        ns["poly"] = types.FunctionType(ns["poly"].__code__, ns, "poly")
        ns["__builtins__"] = saved

    plain = namespace(POLY)
    jit = namespace(POLY)
    make(plain)
    rjit.enable(threshold=0)
    try:
        # Compiled while `poly` is the ordinary one, then called with the other.
        assert jit["total"](30) == namespace(POLY)["total"](30)
        make(jit)
        assert outcome(jit["total"], (30,)) == outcome(plain["total"], (30,))
    finally:
        rjit.disable()
