"""Native range loops: `for i in range(...)` over machine ints makes neither the range nor its
iterator; an exit that hands the loop to the interpreter makes the iterator there, at the
loop's position. Every case compares plain CPython with a fresh compiled twin (value, exact
type, exception and its line), including deoptimisation in the middle of the loop."""

from __future__ import annotations

import gc
import signal
import sys
import threading

import pytest

import rjit
from rjit import _rjit
from test_compiled import compiled_pair, make_function, outcome

BIG = 2**63 - 1
SMALL = -(2**63)


def same_outcome(source, args, namespace=None):
    plain, compiled = compiled_pair(source, "f", namespace)
    expected = outcome(plain, args)
    got = outcome(compiled, args)
    assert got == expected, (source, args)
    return got


def virtual(source, args, namespace=None):
    """The specialised IR of `source`'s `f` for `args` makes no range iterator."""
    f = make_function(source, "f", namespace)
    ir = _rjit.dump_ir(f.__code__, tuple(args), f.__globals__)
    after = ir.split("after specialisation")[-1]
    assert "RangeIterVirtual" in after, ir
    assert "GetIter" not in after, ir
    return after


def collect(header):
    """A function collecting (at most 40 of) the items of `header`'s loop."""
    return (
        f"def f{header[header.index('('):header.index(':')]}:\n    out = []\n    for i in {header[header.index('range'):]}:\n"
        "        out.append(i)\n        if len(out) > 40:\n            break\n    return out[:5], out[-5:], len(out)\n"
    )


COLLECT = {
    1: collect("(a): range(a)"),
    2: collect("(a, b): range(a, b)"),
    3: collect("(a, b, c): range(a, b, c)"),
}

ENDS = [0, 1, -1, 7, -7, 40, -40, BIG, SMALL, BIG - 3, SMALL + 3]
STEPS = [1, -1, 2, -2, 3, -3, 7, -7, 0, BIG, SMALL, BIG // 2, SMALL // 2]


def test_one_argument():
    for n in [0, 1, -1, 7, -7, 100, 10_000, 2**64, -(2**64)]:
        source = COLLECT[1]
        if abs(n) < 2**63:
            virtual(source, (n,))
        same_outcome(source, (n,))


def test_two_arguments_near_the_limits():
    source = COLLECT[2]
    virtual(source, (0, 5))
    for a in ENDS:
        for b in ENDS:
            same_outcome(source, (a, b))


def test_three_arguments_every_step():
    source = COLLECT[3]
    virtual(source, (0, 10, 2))
    checked = 0
    for a in [0, 5, -5, BIG, SMALL, 40]:
        for b in [0, 5, -5, BIG, SMALL, 40]:
            for c in STEPS:
                same_outcome(source, (a, b, c))
                checked += 1
    assert checked == 6 * 6 * len(STEPS)


def test_step_zero_raises_value_error_at_the_call():
    got = same_outcome(COLLECT[3], (0, 10, 0))
    assert got[0] == "raise" and got[1] is ValueError


def test_arguments_beyond_64_bits_and_other_types():
    for args in [(2**64,), (-(2**70),), (3.5,), ("x",), (True,), (None,)]:
        same_outcome(COLLECT[1], args)
    for args in [(2**64, 2**64 + 3), (0, 2**65, 2**62), (1, 10, 2.0)]:
        same_outcome(COLLECT[3] if len(args) == 3 else COLLECT[2], args)


def test_type_changes_between_calls():
    plain, compiled = compiled_pair(COLLECT[1])
    for n in [10, 3, 2**70, -5, 2.5, 12, True, 7]:
        assert outcome(compiled, (n,)) == outcome(plain, (n,)), n


DEOPT_MID_LOOP = [
    # an int sum overflowing 64 bits in the middle: the interpreter goes on with the iterator
    (
        "def f(n):\n    s = 2**60\n    seen = []\n    for i in range(n):\n        s += s\n        seen.append(i)\n"
        "    return s, seen[-3:], len(seen)\n",
        [(2,), (10,), (40,)],
    ),
    (
        "def f(a, b, c):\n    s = 2**60\n    seen = []\n    for i in range(a, b, c):\n        s += s\n"
        "        seen.append(i)\n    return s, seen[-3:], len(seen)\n",
        [(5, 100, 3), (100, 5, -4), (-10, 10, 1)],
    ),
    # a list holding a float among ints: the item guard fails part-way
    (
        "def f(xs):\n    s = 0\n    for i in range(len(xs)):\n        s += xs[i]\n    return s\n",
        [([1, 2, 3, 4.5, 5, 6],), ([1] * 20 + [2**64],), (list(range(30)),)],
    ),
    # an exception in the body: the line and the loop position must be the interpreter's
    (
        "def f(n):\n    s = 0\n    for i in range(n):\n        s += 100 // (i - 5)\n    return s\n",
        [(3,), (10,)],
    ),
    # nested loops, break, continue and else
    (
        "def f(n, m):\n    total = 0\n    for i in range(n):\n        for j in range(i, m):\n"
        "            if j % 3 == 0:\n                continue\n            if j > 2 * i + 5:\n                break\n"
        "            total += i * j\n        else:\n            total -= 1\n    return total\n",
        [(0, 0), (5, 9), (20, 13), (13, 20)],
    ),
    # a loop variable read after the loop (and a loop never entered)
    ("def f(n):\n    i = -1\n    for i in range(n):\n        pass\n    return i\n", [(0,), (1,), (9,), (-4,)]),
]


@pytest.mark.parametrize("index", range(len(DEOPT_MID_LOOP)))
def test_deoptimisation_in_the_loop(index):
    source, cases = DEOPT_MID_LOOP[index]
    for args in cases:
        same_outcome(source, args)


def test_range_rebound_after_compiling():
    source = "def f(n):\n    s = 0\n    for i in range(n):\n        s += i\n    return s\n"
    namespace = {}
    f = rjit.jit(make_function(source, "f", namespace))
    assert f(10) == 45
    namespace["range"] = lambda n: [100, 200]
    assert f(10) == 300
    del namespace["range"]
    assert f(10) == 45
    import builtins

    saved = builtins.range
    builtins.range = lambda *a: (7,)
    try:
        assert f(10) == 7
    finally:
        builtins.range = saved
    assert f(4) == 6


def test_iterator_made_at_an_exit_is_positioned_and_released():
    # Each call leaves the loop through an exit that makes the iterator (a ZeroDivisionError
    # at i == 5): nothing may leak, whatever the position.
    source = "def f(n):\n    s = 0\n    for i in range(n):\n        s += 100 // (i - 5)\n    return s\n"
    plain, compiled = compiled_pair(source)
    for _ in range(100):
        outcome(compiled, (10,))
    gc.collect()
    before = sys.getallocatedblocks()
    for _ in range(2000):
        assert outcome(compiled, (10,)) == outcome(plain, (10,))
    gc.collect()
    assert sys.getallocatedblocks() - before < 200


def test_argument_references_unchanged():
    source = "def f(a, b):\n    s = 0\n    for i in range(a, b):\n        s += i\n    return s\n"
    f = rjit.jit(make_function(source, "f"))
    a, b = 10**12, 10**12 + 50
    ra, rb = sys.getrefcount(a), sys.getrefcount(b)
    for _ in range(1000):
        f(a, b)
    assert (sys.getrefcount(a), sys.getrefcount(b)) == (ra, rb)


def test_signal_handler_runs_in_a_native_loop():
    if not hasattr(signal, "setitimer"):
        pytest.skip("no interval timers")
    seen = []
    source = (
        "def f(n):\n    s = 0\n    for i in range(n):\n        for j in range(50):\n            s += j ^ i\n"
        "    return s\n"
    )
    plain, compiled = compiled_pair(source)
    old = signal.signal(signal.SIGALRM, lambda *a: seen.append(1))
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.001, 0.001)
        got = compiled(400_000)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0, 0)
        signal.signal(signal.SIGALRM, old)
    assert got == plain(400_000)
    assert seen, "the handler never ran"


def test_threads_share_a_compiled_range_loop():
    source = "def f(n):\n    s = 0\n    for i in range(n):\n        for j in range(i % 17):\n            s += j\n    return s\n"
    plain, compiled = compiled_pair(source)
    expected = plain(20_000)
    results = []

    def work():
        for _ in range(20):
            results.append(compiled(20_000))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [expected] * 80


def test_tracer_set_in_the_loop():
    # The hook installs a tracer and traces the running frame too (`f_trace`), as debuggers
    # do: the rest of the loop must produce the interpreter's line events.
    source = (
        "def f(n, hook):\n    s = 0\n    for i in range(n):\n        if i == 3:\n            hook()\n"
        "        s += i\n    return s\n"
    )

    def run(f):
        events = []

        def tracer(frame, event, arg):
            if frame.f_code.co_name == "f":
                events.append((event, frame.f_lineno))
            return tracer

        def hook():
            sys.settrace(tracer)
            sys._getframe(1).f_trace = tracer

        try:
            result = f(6, hook)
        finally:
            sys.settrace(None)
        return result, events

    plain, compiled = compiled_pair(source)
    expected = run(plain)
    assert expected[1], "the tracer saw nothing"
    assert run(compiled) == expected


def test_a_global_looked_up_slowly_keeps_the_loops_values():
    # The global's lookup takes its slow path on every iteration (the module dict changes:
    # `counter` is rebound by the helper): the float sum and the ints the loop keeps in
    # registers across it must survive the C call.
    source = (
        "def bump():\n    global counter\n    counter += 1\n    return 0.5\n\n"
        "def helper(i, j):\n    return 1.0 / (i + j + 1)\n\n"
        "def f(n, m):\n    s = 0.0\n    t = 0\n    for i in range(n):\n        x = 0.25 * i\n"
        "        for j in range(m):\n            s += helper(i, j) * x\n            t += j ^ i\n"
        "        s += bump()\n    return s, t, counter\n"
    )
    plain_ns, jit_ns = {"counter": 0}, {"counter": 0}
    plain = make_function(source, "f", plain_ns)
    compiled = rjit.jit(make_function(source, "f", jit_ns))
    for args in [(3, 4), (40, 30), (7, 0)]:
        assert outcome(compiled, args) == outcome(plain, args), args
