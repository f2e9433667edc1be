"""Lists of bools kept as bytes: `flags = [True] * n` that never leaves the function and only
holds bools lives in a buffer of one byte an item while compiled code runs; an exit that hands
the frame to the interpreter makes the real list (and list iterator) there. Every case runs
plain and compiled (a fresh twin) and must agree exactly: value, exact type, exception, message
and line, including deoptimisation in the middle of the loops."""

from __future__ import annotations

import gc
import signal
import sys

import pytest

import rjit
from rjit import _rjit
from test_compiled import compiled_pair, make_function, outcome

SIEVE = """
def f(n):
    flags = [True] * (n + 1)
    flags[0] = False
    flags[1] = False
    i = 2
    while i * i <= n:
        if flags[i]:
            for j in range(i * i, n + 1, i):
                flags[j] = False
        i += 1
    count = 0
    for f in flags:
        if f:
            count += 1
    return count
"""


def specialised_ir(source, args, namespace=None):
    f = make_function(source, "f", namespace)
    ir = _rjit.dump_ir(f.__code__, tuple(args), f.__globals__)
    return ir.split("after specialisation")[-1]


def is_virtual(source, args, namespace=None):
    """Whether the specialised IR of `source`'s `f` for `args` keeps a list as bytes."""
    return "BoolListNew" in specialised_ir(source, args, namespace)


def same_outcome(source, cases, namespace=None, virtual=True):
    if virtual is not None:
        assert is_virtual(source, cases[0], namespace) == virtual, specialised_ir(source, cases[0], namespace)
    plain, compiled = compiled_pair(source, "f", namespace)
    for args in cases:
        assert outcome(compiled, args) == outcome(plain, args), (source, args)


def test_sieve():
    ir = specialised_ir(SIEVE, (100,))
    assert "BoolListNew" in ir and "BoolListIter" in ir and "BoolListFree" in ir, ir
    # No list object, no list iterator, no list access through the C API.
    assert "Binary *" not in ir and "GetIter" not in ir and "GetItem" not in ir and "SetItem" not in ir, ir
    # (n = -1: `[True] * 0` then `flags[0] = False`, an IndexError; n = -5: the same.)
    same_outcome(SIEVE, [(100,), (2,), (1,), (0,), (-1,), (-5,), (10_007,), (200_000,)])


INDEXING = """
def f(n, i, j):
    flags = [False] * n
    flags[i] = True
    count = 0
    for x in flags:
        if x:
            count += 1
    return count, flags[j], len(flags)
"""


def test_indices_negative_and_out_of_range():
    cases = []
    for n in [0, 1, 5]:
        for i in [0, 1, 4, 5, -1, -5, -6, 2**40, -(2**40)]:
            for j in [0, 3, -1, -5, -6, 5, 6]:
                cases.append((n, i, j))
    same_outcome(INDEXING, cases)
    # The messages are the interpreter's.
    plain, compiled = compiled_pair(INDEXING)
    assert outcome(compiled, (3, 3, 0))[2] == "list assignment index out of range"
    assert outcome(compiled, (3, 0, 3))[2] == "list index out of range"


def test_repetition_counts():
    source = "def f(n):\n    a = n * [True]\n    c = 0\n    for x in a:\n        if x:\n            c += 1\n    return c, len(a)\n"
    # Negative and zero counts make an empty list; a count too large for memory raises
    # MemoryError (from the interpreter); one beyond 64 bits OverflowError.
    same_outcome(source, [(0,), (-3,), (7,), (2**62,), (2**63,), (-(2**63),), (2**100,)])


MID_LOOP = [
    # an int overflow in the counting loop: the interpreter goes on with a list iterator at
    # the loop's position, over the list made from the bytes
    (
        "def f(n, k):\n    flags = [True] * n\n    for j in range(0, n, 3):\n        flags[j] = False\n"
        "    c = 2**60\n    seen = 0\n    for x in flags:\n        seen += 1\n        if x:\n            c += c >> k\n"
        "    return c, seen, flags[-1]\n",
        [(10, 0), (50, 1), (200, 3), (0, 1)],
    ),
    # an overflow in the marking loop (a range loop storing into the list)
    (
        "def f(n, step):\n    flags = [True] * n\n    t = 2**61\n    for j in range(1, n, step):\n        flags[j] = False\n"
        "        t += t >> 2\n    c = 0\n    for x in flags:\n        if x:\n            c += 1\n    return c, t\n",
        [(10, 1), (100, 2), (1000, 7)],
    ),
    # a range beyond the list's end: the store's index check fails part-way (IndexError)
    (
        "def f(n, m):\n    flags = [False] * n\n    for j in range(m):\n        flags[j] = True\n    return len(flags)\n",
        [(5, 3), (5, 5), (5, 6), (5, 50)],
    ),
    # nested loops over the same list, break and else
    (
        "def f(n, stop):\n    flags = [True] * n\n    flags[n // 2] = False\n    pairs = 0\n    for a in flags:\n"
        "        for b in flags:\n            if not b:\n                break\n            pairs += 1\n"
        "            if pairs > stop:\n                pairs = pairs * 2**62\n        else:\n            pairs -= 1\n    return pairs\n",
        [(4, 100), (6, 3), (9, 20)],
    ),
    # an item guard failing in the marking loop (a list argument of ints holding a float):
    # the interpreter goes on with the range iterator and the list made from the bytes
    (
        "def f(n, xs):\n    flags = [True] * n\n    for j in range(n):\n        flags[j] = xs[j] > 0\n"
        "    c = 0\n    for x in flags:\n        if x:\n            c += 1\n    return c, flags[-1]\n",
        [(6, [1, -2, 3, -4, 5, 6]), (6, [1, -2, 3, 4.5, -5, 6]), (6, [1, 2, 3, 4, 5, 2**70]), (7, [1] * 6)],
    ),
    # stores of machine bools (comparisons, `not`, other items)
    (
        "def f(n):\n    flags = [False] * n\n    for i in range(n):\n        flags[i] = i % 3 == 0\n"
        "    for i in range(1, n):\n        flags[i] = not flags[i - 1] or flags[i]\n    c = 0\n    for x in flags:\n"
        "        if x:\n            c += 1\n    return c, flags[0], flags[-1]\n",
        [(1,), (10,), (101,)],
    ),
]


# Range loops whose items index the list: checked once on entering the loop (all items in
# range, or the loop is left to the interpreter there, which raises where it gets to a bad
# index, if it does).
RANGE_INDEXED = (
    "def f(n, a, b, c, stop):\n    flags = [True] * n\n    k = 0\n    for j in range(a, b, c):\n"
    "        if k == stop:\n            break\n        flags[j] = not flags[j]\n        k += 1\n"
    "    c = 0\n    for x in flags:\n        if x:\n            c += 1\n    return c, k, j\n"
)


def test_range_loops_indexing_the_list():
    ir = specialised_ir(RANGE_INDEXED, (10, 0, 10, 1, 100))
    # The loop's accesses have no index check of their own.
    assert "StoreElement" in ir and "ArrayIndex" not in ir, ir
    cases = []
    for n in [0, 1, 10]:
        for a, b, c in [(0, n, 1), (0, n + 1, 1), (n - 1, -1, -1), (n, -1, -1), (-3, 0, 1), (-n, n, 2),
                        (0, 2 * n, 3), (5, 5, 1), (7, 2, 1), (2**62, 2**63 - 1, 2**61), (-(2**63), 0, 2**62)]:
            for stop in [0, 2, 100]:
                cases.append((n, a, b, c, stop))
    same_outcome(RANGE_INDEXED, cases)


@pytest.mark.parametrize("index", range(len(MID_LOOP)))
def test_deoptimisation_in_the_loops(index):
    source, cases = MID_LOOP[index]
    same_outcome(source, cases)


def test_len_rebound_sees_the_list_the_frame_holds():
    # `len` rebound after compiling: its guard fails with the list on the stack and in the
    # local: the exit makes one list for both.
    source = (
        "import sys\n"
        "def f(n):\n    flags = [True] * n\n    flags[1] = False\n    k = len(flags)\n    return k\n"
    )
    namespace = {}
    f = rjit.jit(make_function(source, "f", namespace))
    assert is_virtual(source, (5,), {})
    assert f(5) == 5

    def fake(x):
        local = sys._getframe(1).f_locals["flags"]
        return (local is x, type(x), x)

    namespace["len"] = fake
    assert f(3) == (True, list, [True, False, True])
    del namespace["len"]
    assert f(4) == 4


ESCAPING = [
    # returned, passed to a call, stored elsewhere, appended to, a method called, sliced,
    # repeated again, iterated other than by `for`, compared
    "def f(n):\n    a = [True] * n\n    a[0] = False\n    return a\n",
    "def f(n):\n    a = [True] * n\n    a[0] = False\n    return sum(a)\n",
    "def f(n):\n    a = [True] * n\n    b = a\n    b[0] = False\n    return a[0]\n",
    "def f(n):\n    a = [True] * n\n    a.append(False)\n    return a[-1], len(a)\n",
    "def f(n):\n    a = [True] * n\n    return a.count(True)\n",
    "def f(n):\n    a = [True] * n\n    return a[1:3]\n",
    "def f(n):\n    a = [False] * n\n    a = a * 2\n    return len(a)\n",
    "def f(n):\n    a = [True] * n\n    return list(enumerate(a))[-1:]\n",
    "def f(n):\n    a = [True] * n\n    return a == [True] * n\n",
    "def f(n):\n    a = [True] * n\n    del a[0]\n    return len(a)\n",
    # not a list of bools, or not from one bool
    "def f(n):\n    a = [1] * n\n    a[0] = 0\n    return a[0] + a[-1]\n",
    "def f(n):\n    a = [True, False] * n\n    return a[1], len(a)\n",
    "def f(n):\n    a = [None] * n\n    return a[0]\n",
    # stores of something other than a bool
    "def f(n):\n    a = [True] * n\n    a[0] = 1\n    return a[0], type(a[0])\n",
    "def f(n):\n    a = [True] * n\n    a[0] = None\n    c = 0\n    for x in a:\n        if x:\n            c += 1\n    return c\n",
    "def f(n):\n    a = [True] * n\n    a[0] += 1\n    return a[0]\n",
    # assigned twice
    "def f(n):\n    a = [True] * n\n    a[0] = False\n    a = [False] * n\n    return a[0]\n",
    # a call whose callee may read the frame's locals
    "def f(n):\n    a = [True] * n\n    a[0] = False\n    print(end='')\n    return a[0]\n",
]


@pytest.mark.parametrize("index", range(len(ESCAPING)))
def test_lists_that_escape_stay_real(index):
    same_outcome(ESCAPING[index], [(5,), (1,), (0,)], virtual=False)


def test_tracer_set_by_a_callee():
    # A call in the loop (the tracer's hook) keeps the list real; the rest of the loop runs
    # traced in the interpreter.
    source = (
        "def f(n, hook):\n    flags = [True] * n\n    c = 0\n    for i in range(n):\n        if i == 3:\n            hook()\n"
        "        flags[i] = i % 2 == 0\n    for x in flags:\n        if x:\n            c += 1\n    return c\n"
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


def test_signal_handlers_run_in_the_loops():
    if not hasattr(signal, "setitimer"):
        pytest.skip("no interval timers")
    plain, compiled = compiled_pair(SIEVE)
    seen = []
    old = signal.signal(signal.SIGALRM, lambda *a: seen.append(1))
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.0005, 0.0005)
        got = [compiled(300_000) for _ in range(5)]
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0, 0)
        signal.signal(signal.SIGALRM, old)
    assert got == [plain(300_000)] * 5
    assert seen, "the handler never ran"


class Stop(Exception):
    pass


def test_signal_handler_raising_in_the_loops():
    # The handler raises in the middle of the marking or counting loop: the exception leaves
    # through an exit that makes the list (and frees the buffer), then unwinds.
    if not hasattr(signal, "setitimer"):
        pytest.skip("no interval timers")
    f = rjit.jit(make_function(SIEVE, "f"))
    f(1000)

    def handler(*a):
        raise Stop

    old = signal.signal(signal.SIGALRM, handler)
    raised = 0
    try:
        for _ in range(20):
            signal.setitimer(signal.ITIMER_REAL, 0.001)
            try:
                f(2_000_000)
            except Stop:
                raised += 1
            signal.setitimer(signal.ITIMER_REAL, 0)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0, 0)
        signal.signal(signal.SIGALRM, old)
    assert raised > 0


def test_switch_interval_and_threads():
    import threading

    plain, compiled = compiled_pair(SIEVE)
    expected = plain(50_000)
    results = []
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        def work():
            for _ in range(5):
                results.append(compiled(50_000))

        threads = [threading.Thread(target=work) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(old)
    assert results == [expected] * 15


def rss():
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * 4096


def test_no_leaks_on_return_and_on_exits():
    # 10**4 calls returning normally, raising (IndexError) and deoptimising (an overflow in
    # the counting loop) with a 20 kB buffer each: a buffer or list not freed would show in
    # the RSS (and in True's and False's reference counts).
    plain, compiled = compiled_pair(MID_LOOP[0][0])
    sieve = rjit.jit(make_function(SIEVE, "f"))
    indexing = rjit.jit(make_function(INDEXING, "f"))
    n = 20_000

    def calls():
        assert sieve(n) == 2262
        assert outcome(indexing, (n, n, 0))[0] == "raise"
        assert outcome(compiled, (n, 1)) == outcome(plain, (n, 1))

    for _ in range(50):
        calls()
    gc.collect()
    before = rss(), sys.getrefcount(True), sys.getrefcount(False), sys.getallocatedblocks()
    for _ in range(3000):
        calls()
    gc.collect()
    after = rss(), sys.getrefcount(True), sys.getrefcount(False), sys.getallocatedblocks()
    assert after[0] - before[0] < 16 * 1024 * 1024, (before, after)
    assert abs(after[1] - before[1]) < 100 and abs(after[2] - before[2]) < 100, (before, after)
    assert after[3] - before[3] < 1000, (before, after)


def test_compiled_after_running_in_the_interpreter():
    # Compiled after the interpreter ran it (its specialising interpreter's profile).
    f = make_function(SIEVE, "f")
    for n in range(2, 50):
        f(n)
    g = rjit.jit(f)
    plain = make_function(SIEVE, "f")
    for n in [3, 1000, -2, 17]:
        assert outcome(g, (n,)) == outcome(plain, (n,))


def random_function(rng):
    """A random function on a list of bools kept as bytes: stores with a stride that may run
    past either end, loads at indices that may be out of range, a counting loop whose sum may
    overflow 64 bits (each a way out of compiled code in the middle of a loop)."""
    fill = rng.choice(["True", "False"])
    value = rng.choice(["False", "True", "j % 3 == 0", "not flags[j]", "flags[j - 1]", "j > a"])
    grow = rng.choice(["s += 1", "s += s >> 3", "s = s * 3 + 1", "s -= j"])
    tail = rng.choice(["flags[b]", "flags[-1]", "len(flags)", "flags[a] and flags[c]"])
    return (
        f"def f(n, a, b, c):\n    flags = [{fill}] * n\n    for j in range(a, b, c):\n        flags[j] = {value}\n"
        f"    s = 2**59\n    j = 0\n    for x in flags:\n        j += 1\n        if x:\n            {grow}\n"
        f"    return s, j, {tail}\n"
    )


@pytest.mark.parametrize("seed", range(12))
def test_random_functions(seed):
    import random

    rng = random.Random(seed)
    source = random_function(rng)
    cases = []
    for _ in range(12):
        n = rng.choice([0, 1, 2, 5, 17, 100, -3])
        a = rng.choice([0, 1, 2, -1, -n - 1, n, n - 1])
        b = rng.choice([n, n + 1, n + 5, 0, -1, 3])
        c = rng.choice([1, 2, 3, -1, -2, 7])
        cases.append((n, a, b, c))
    same_outcome(source, cases, virtual=None)
    assert is_virtual(source, cases[0])
