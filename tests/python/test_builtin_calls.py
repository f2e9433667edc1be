"""Builtins taking no argument or one (METH_NOARGS, METH_O: `random.random()`, `math.factorial(n)`,
`ord(c)`) are called straight through their C function behind a guard that the callable is
still the object found when compiling. `random.random` and `time`'s clocks are known to run no
Python code and to return floats: no locals are written to the frame before them and their
result is unboxed at once. Everything must stay exactly the interpreter's: values, the random
stream, exceptions with their lines, what code run by the builtin sees, reference counts."""

from __future__ import annotations

import random
import sys
import types

import rjit
from test_compiled import compiled_pair, make_function, outcome

MONTE_CARLO = """
import random
def f(n):
    inside = 0
    for _ in range(n):
        x = random.random()
        y = random.random()
        if x * x + y * y <= 1.0:
            inside += 1
    return 4.0 * inside / n
"""


def ir(func, args):
    return rjit._rjit.dump_ir(func.__code__, args, func.__globals__)


def test_random_random_is_called_directly_and_unboxed():
    plain, compiled = compiled_pair(MONTE_CARLO)
    text = ir(plain, (10,))
    assert "CallCFunction" in text and "UnboxFloatOwned" in text
    # No boxing of `inside` and `_` for the frame before the calls: nothing can read it.
    loop = text.split("== HIR after", 1)[-1]
    assert "StoreLocal 1" not in loop.split("CallCFunction", 1)[0].split("RangeIterItem", 1)[-1]
    for n in (1, 7, 1000, 20000):
        random.seed(n)
        expected = plain(n)
        after_plain = random.random()
        random.seed(n)
        assert compiled(n) == expected
        assert random.random() == after_plain  # the same numbers drawn, no more, no fewer


def test_time_clocks_return_their_floats():
    source = """
import time
def f(n):
    total = 0.0
    for _ in range(n):
        t = time.perf_counter()
        total += t - t
    return total, type(time.monotonic())
"""
    plain, compiled = compiled_pair(source)
    assert "CallCFunction" in ir(plain, (3,))
    assert compiled(100) == plain(100) == (0.0, float)


def module_with_random(seed):
    mod = types.ModuleType("fake_random")
    mod.random = random.Random(seed).random
    return mod


REBINDING = """
def f(n, switch, other):
    total = 0.0
    for i in range(n):
        if i == switch:
            m.random = other
        total += m.random()
    return total
"""


def test_callee_rebound_mid_loop_leaves_for_the_interpreter():
    def python_random():
        return 0.25

    def int_random():
        return 3

    # A Python function returning a float or an int, another builtin of the same kind (a
    # fresh generator for each run), and one that raises when called without an argument.
    makers = [lambda: python_random, lambda: int_random, lambda: random.Random(9).random, lambda: len.__call__]
    for make in makers:
        for switch in (0, 1, 50, 10**6):
            plain = make_function(REBINDING, "f", {"m": module_with_random(5)})
            compiled = rjit.jit(make_function(REBINDING, "f", {"m": module_with_random(5)}))
            expected = outcome(plain, (100, switch, make()))
            assert outcome(compiled, (100, switch, make())) == expected, (make(), switch)


def test_module_global_rebound_between_calls():
    ns = {"m": module_with_random(1)}
    f = rjit.jit(make_function("def f():\n    return m.random() + m.random()\n", "f", ns))
    first = f()
    ns["m"] = types.SimpleNamespace(random=lambda: 2.0)
    assert f() == 4.0
    ns["m"] = module_with_random(1)
    assert f() == first


def test_a_builtin_that_raises_has_the_interpreters_exception_and_line():
    source = """
import math
def f(values):
    out = []
    for v in values:
        out.append(math.factorial(v))
        out.append(ord(chr(65 + len(out))))
    return out
"""
    plain, compiled = compiled_pair(source)
    assert "CallCFunction" in ir(plain, ([1, 2],))
    for values in ([3, 4], [3, -1], [2, 2.5], [10**5 // 10**4, "x"], []):
        assert outcome(compiled, (values,)) == outcome(plain, (values,)), values


def test_a_builtin_taking_no_argument_called_with_one_raises_as_interpreted():
    source = "import time\ndef f(a):\n    return time.time(a)\n"
    plain, compiled = compiled_pair(source)
    assert outcome(compiled, (1,)) == outcome(plain, (1,))


def test_code_run_by_a_builtin_sees_the_callers_locals():
    # repr() is METH_O: it runs __repr__, which reads the calling frame's locals; for a builtin
    # not known to run no Python code, the locals are written to the frame first.
    source = """
import sys
class Spy:
    def __repr__(self):
        seen.append(dict(sys._getframe(1).f_locals))
        return "spy"
seen = []
def f(n):
    total = 0
    for i in range(n):
        total += i
        repr(spy)
    return total
spy = Spy()
"""
    ns_plain, ns_compiled = {}, {}
    plain = make_function(source, "f", ns_plain)
    compiled = rjit.jit(make_function(source, "f", ns_compiled))
    assert plain(5) == compiled(5)
    strip = lambda frames: [{k: v for k, v in d.items() if k in ("i", "total", "n")} for d in frames]  # noqa: E731
    assert strip(ns_compiled["seen"]) == strip(ns_plain["seen"])


def test_reference_counts_seen_by_and_after_a_builtin():
    # sys.getrefcount is itself a METH_O builtin: it sees the reference the interpreter's stack
    # holds for its argument, compiled or not.
    source = """
import sys
def f(x, n):
    counts = []
    for _ in range(n):
        counts.append(sys.getrefcount(x))
    return counts
"""
    plain, compiled = compiled_pair(source)
    assert "CallCFunction" in ir(plain, (object(), 2))
    obj = object()
    before = sys.getrefcount(obj)
    # Called as compiled code is: through a frame the hook sees (with any PEP 523 hook the
    # caller keeps its own reference to the arguments), compiling nothing.
    rjit.enable(threshold=10**9)
    try:
        expected = plain(obj, 3)
    finally:
        rjit.disable()
    assert compiled(obj, 3) == expected
    assert sys.getrefcount(obj) == before
    source = "import random\ndef f(n):\n    for _ in range(n):\n        random.random()\n"
    plain, compiled = compiled_pair(source)
    bound = random.random
    compiled(10)  # compiles: the code keeps the callable it compares with alive
    before = sys.getrefcount(bound), sys.getrefcount(random)
    compiled(1000)
    assert (sys.getrefcount(bound), sys.getrefcount(random)) == before


def test_monte_carlo_under_the_whole_program_mode():
    ns = {}
    f = make_function(MONTE_CARLO, "f", ns)
    random.seed(3)
    expected = f(5000)
    g = make_function(MONTE_CARLO, "f", {})
    rjit.enable(threshold=0)
    try:
        random.seed(3)
        got = g(5000)
    finally:
        rjit.disable()
    assert got == expected
    assert rjit.info(g).compiled


def test_a_loop_of_builtin_calls_is_interrupted_by_a_signal():
    # After random.random() (no Python code) the eval breaker is served at the loop's
    # back-edge: a handler raising still stops the loop.
    import signal

    source = """
import random
def f():
    n = 0
    while True:
        random.random()
        n += 1
"""
    _, compiled = compiled_pair(source)

    class Stop(Exception):
        pass

    def handler(signum, frame):
        raise Stop

    old = signal.signal(signal.SIGALRM, handler)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.05)
        try:
            compiled()
        except Stop:
            pass
        else:
            raise AssertionError("the loop was not interrupted")
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
