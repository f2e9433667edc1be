"""The guard of an inlined call moved out of a loop that runs no Python code
(`hir::hoist_inlined`): the global is checked once on entering the loop, and the loop leaves
for the interpreter once its eval breaker has run. Whatever rebinds the global (a call between
two entries into the loop, a signal handler, another thread, a deleted global), the compiled
caller must behave exactly as the interpreter."""

from __future__ import annotations

import signal
import sys
import threading
import time
import traceback

import pytest

import rjit
from conftest import make_function


def namespace(source):
    """Runs `source` in a fresh namespace (fresh code objects) and returns it."""
    ns = {}
    make_function(source, None, ns)
    return ns


def outcome(func, args):
    """('ok', type, repr) or ('raise', type, message, [(function, line) of the traceback])."""
    try:
        result = func(*args)
    except Exception as exc:  # noqa: BLE001 - the exception is the outcome
        frames = [(f.name, f.lineno) for f in traceback.extract_tb(exc.__traceback__)]
        frames = [f for f in frames if f[0] in ("caller", "helper", "other", "rebind")]
        return ("raise", type(exc), str(exc), frames)
    return ("ok", type(result), repr(result))


def hoisted(ns):
    """Whether the compiled `caller` checks its inlined helper on entering a loop."""
    ir = rjit._rjit.dump_ir(ns["caller"].__code__, ns["ARGS"], ns)
    assert "GuardFunction" in ir, ir
    return "PeekGlobal" in ir


NESTED = """
ARGS = (3, 4, [1.0, 2.0, 3.0, 4.0], -1)

def helper(i, j):
    return 1.0 / ((i + j) * (i + j + 1) // 2 + i + 1)

def other(i, j):
    return 2.0 * i - j

def rebind():
    global helper
    helper = other

def caller(n, m, u, at):
    s = 0.0
    for i in range(n):
        if i == at:
            rebind()
        for j in range(m):
            s += helper(i, j) * u[j]
    return s
"""


def test_the_inner_loop_checks_its_helper_once_per_entry():
    assert hoisted(namespace(NESTED))


@pytest.mark.parametrize("at", [-1, 0, 1, 5, 9])
def test_rebinding_between_two_entries_into_the_loop_leaves_for_the_interpreter(at):
    # The outer loop calls `rebind` (it is not hoisted there); the inner loop's entry check
    # then finds `other`.
    plain, jit = namespace(NESTED), namespace(NESTED)
    compiled = rjit.jit(jit["caller"])
    u = [float(k) for k in range(12)]
    assert outcome(compiled, (10, 12, u, at)) == outcome(plain["caller"], (10, 12, u, at))
    # A new call finds `other` bound on entering the inner loop (both namespaces now have it).
    assert outcome(compiled, (10, 12, u, -1)) == outcome(plain["caller"], (10, 12, u, -1))


def test_rebinding_between_calls_leaves_at_the_loop_entry():
    plain, jit = namespace(NESTED), namespace(NESTED)
    compiled = rjit.jit(jit["caller"])
    u = [0.5, -1.5, 2.25]
    first = [outcome(compiled, (4, 3, u, -1)) for _ in range(3)]
    assert first == [outcome(plain["caller"], (4, 3, u, -1))] * 3
    for ns in (plain, jit):
        ns["helper"] = ns["other"]
    for _ in range(5):
        assert outcome(compiled, (4, 3, u, -1)) == outcome(plain["caller"], (4, 3, u, -1))


def test_replacing_the_helpers_code_between_calls():
    plain, jit = namespace(NESTED), namespace(NESTED)
    compiled = rjit.jit(jit["caller"])
    u = [0.5, -1.5, 2.25]
    assert outcome(compiled, (4, 3, u, -1)) == outcome(plain["caller"], (4, 3, u, -1))
    for ns in (plain, jit):
        ns["helper"].__code__ = ns["other"].__code__
    for _ in range(3):
        assert outcome(compiled, (4, 3, u, -1)) == outcome(plain["caller"], (4, 3, u, -1))


@pytest.mark.parametrize("m", [0, 1, 3])
def test_a_deleted_global_raises_only_where_the_interpreter_reads_it(m):
    # The entry check must not raise: with no iteration there is no NameError at all, and
    # otherwise it comes from the helper's line in the loop, after `s` was set up.
    plain, jit = namespace(NESTED), namespace(NESTED)
    compiled = rjit.jit(jit["caller"])
    u = [0.5, -1.5, 2.25]
    assert outcome(compiled, (3, 3, u, -1)) == outcome(plain["caller"], (3, 3, u, -1))
    for ns in (plain, jit):
        del ns["helper"]
    for _ in range(3):
        assert outcome(compiled, (3, m, u, -1)) == outcome(plain["caller"], (3, m, u, -1))


def test_a_helper_found_in_builtins_instead():
    import builtins

    plain, jit = namespace(NESTED), namespace(NESTED)
    compiled = rjit.jit(jit["caller"])
    u = [0.5, -1.5, 2.25]
    expected = outcome(plain["caller"], (3, 3, u, -1))
    assert outcome(compiled, (3, 3, u, -1)) == expected
    helper = jit.pop("helper")
    builtins.helper = helper
    try:
        # The same function, now a builtin: the interpreter finds it there too.
        assert outcome(compiled, (3, 3, u, -1)) == expected
        builtins.helper = jit["other"]
        plain["helper"] = plain["other"]
        assert outcome(compiled, (3, 3, u, -1)) == outcome(plain["caller"], (3, 3, u, -1))
    finally:
        del builtins.helper


def test_an_item_of_another_type_leaves_with_the_function_on_the_stack():
    # The deopt in the loop hands the interpreter a frame whose stack holds the helper (a
    # reference the compiled code borrowed), then the interpreter finishes the loop.
    plain, jit = namespace(NESTED), namespace(NESTED)
    compiled = rjit.jit(jit["caller"])
    u = [1.0, 2.0, 3.0, 4.0]
    assert outcome(compiled, (3, 4, u, -1)) == outcome(plain["caller"], (3, 4, u, -1))
    for bad in ([1.0, 2.0, 3, 4.0], [1.0, 2.0, "x", 4.0], [1.0, 2.0]):
        assert outcome(compiled, (3, 4, bad, -1)) == outcome(plain["caller"], (3, 4, bad, -1))


OVERFLOW = """
ARGS = (3, 2**40)

def helper(a, b):
    return a * b + 1

def caller(n, k):
    s = 0
    for i in range(n):
        s += helper(i, k)
    return s
"""


def test_overflow_exits_give_the_frame_its_own_reference_to_the_helper():
    plain, jit = namespace(OVERFLOW), namespace(OVERFLOW)
    assert hoisted(jit)
    compiled = rjit.jit(jit["caller"])
    helper, other_k = jit["helper"], 2**62
    assert outcome(compiled, (6, 3)) == outcome(plain["caller"], (6, 3))
    before = sys.getrefcount(helper)
    for _ in range(400):
        # i * k overflows from i = 2: the exit puts the helper on the interpreter's stack.
        # (One call in five: a function deoptimising more often is recompiled generically.)
        assert compiled(6, other_k) == plain["caller"](6, other_k)
        for _ in range(4):
            assert compiled(6, 3) == plain["caller"](6, 3)
    assert sys.getrefcount(helper) == before
    assert "machine code (replaced)" not in str(rjit.info(compiled))


def test_failed_entry_checks_release_what_they_found():
    plain, jit = namespace(OVERFLOW), namespace(OVERFLOW)
    compiled = rjit.jit(jit["caller"])
    assert compiled(5, 3) == plain["caller"](5, 3)

    def other(a, b):
        return a - b

    jit["helper"] = plain["helper"] = other
    assert compiled(5, 3) == plain["caller"](5, 3)
    before = sys.getrefcount(other)
    for _ in range(2000):
        assert compiled(5, 3) == plain["caller"](5, 3)
    assert sys.getrefcount(other) == before


NOT_CLEAN = {
    # A generic call in the loop may rebind the global: the guard stays in the loop.
    "call": """
ARGS = (3, [1.0, 2.0, 3.0])

def helper(i):
    return i * 2 + 1

def caller(n, u):
    s = 0
    for i in range(n):
        s += helper(i)
        u.append(1.0)
    return s
""",
    # Storing into a list releases the old item (its destructor may be Python code).
    "store": """
ARGS = (3, [1.0, 2.0, 3.0])

def helper(i):
    return i * 2 + 1

def caller(n, u):
    for i in range(n):
        u[i] = helper(i) * 1.5
    return u
""",
}


@pytest.mark.parametrize("case", sorted(NOT_CLEAN))
def test_loops_that_may_run_python_code_keep_the_guard_inside(case):
    plain, jit = namespace(NOT_CLEAN[case]), namespace(NOT_CLEAN[case])
    assert not hoisted(jit)
    compiled = rjit.jit(jit["caller"])
    assert outcome(compiled, (3, [1.0, 2.0, 3.0])) == outcome(plain["caller"], (3, [1.0, 2.0, 3.0]))


DESTRUCTOR = """
ARGS = (5,)

def helper(i):
    return i * 2 + 1

def other(i):
    return i * 1000

class Rebinder:
    def __del__(self):
        global helper
        helper = other

def caller(n):
    x = Rebinder()
    s = 0
    for i in range(n):
        s += helper(i)
        x = 0.5
    return s
"""


def test_a_destructor_run_in_the_loop_may_rebind_the_helper():
    # Rebinding `x` releases the Rebinder, whose __del__ rebinds `helper` in the first
    # iteration: the guard must stay in the loop.
    assert not hoisted(namespace(DESTRUCTOR))
    for n in (5, 0, 3):
        plain, jit = namespace(DESTRUCTOR), namespace(DESTRUCTOR)
        compiled = rjit.jit(jit["caller"])
        assert outcome(compiled, (n,)) == outcome(plain["caller"], (n,))


WATCHED = """
ARGS = (10, [0.0])

def helper(i):
    return 1.0

def other(i):
    return 2.0

def caller(n, box):
    # `box[0]` becomes 1.0 after whatever rebinds `helper` to `other` ran: from then on every
    # call must give 2.0.
    s = 0.0
    stale = 0.0
    for i in range(n):
        seen = box[0] * 2.0
        x = helper(i)
        if seen == 2.0:
            if x == 1.0:
                stale += 1.0
        s += x
    return s, stale
"""


def rebind_and_flag(ns, box):
    ns["helper"] = ns["other"]
    box[0] = 1.0


def test_a_signal_handler_rebinding_the_helper_is_seen_at_once():
    if not hasattr(signal, "setitimer"):
        pytest.skip("no setitimer")
    ns = namespace(WATCHED)
    assert hoisted(ns)
    compiled = rjit.jit(ns["caller"])
    box = [0.0]
    old = signal.signal(signal.SIGALRM, lambda *a: rebind_and_flag(ns, box))
    results = []
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.02)
        deadline = time.monotonic() + 20
        while box[0] != 1.0 and time.monotonic() < deadline:
            results.append(compiled(200_000, box))
        results.append(compiled(1000, box))
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    assert box[0] == 1.0
    for s, stale in results:
        assert stale == 0.0
    assert results[-1] == (2000.0, 0.0)


def test_another_thread_rebinding_the_helper_is_seen_at_once():
    ns = namespace(WATCHED)
    compiled = rjit.jit(ns["caller"])
    box = [0.0]

    def rebinder():
        time.sleep(0.02)
        rebind_and_flag(ns, box)

    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    results = []
    try:
        thread = threading.Thread(target=rebinder)
        thread.start()
        deadline = time.monotonic() + 20
        while box[0] != 1.0 and time.monotonic() < deadline:
            results.append(compiled(200_000, box))
        thread.join()
        results.append(compiled(1000, box))
    finally:
        sys.setswitchinterval(old)
    for s, stale in results:
        assert stale == 0.0
    assert results[-1] == (2000.0, 0.0)



ARRAY_STORE = """
import numpy as np

def caller(a, b):
    c = np.zeros((a.shape[0], b.shape[1]))
    for i in range(a.shape[0]):
        for j in range(b.shape[1]):
            s = 0.0
            for k in range(a.shape[1]):
                s += a[i, k] * b[k, j]
            c[i, j] = s
    return c
"""


def test_a_loop_storing_into_an_array_a_local_holds_checks_range_once():
    # `c[i, j] = s` takes a reference to `c` and releases it after the store: the local still
    # holds the array, so the release runs no destructor, the loop over `j` runs no Python
    # code, and the load of `range` for the loop over `k` moves out of it.
    import io

    import numpy as np

    a, b = np.arange(6.0).reshape(2, 3), np.arange(12.0).reshape(3, 4)
    plain, jit = namespace(ARRAY_STORE), namespace(ARRAY_STORE)
    compiled = rjit.jit(jit["caller"])
    for _ in range(2):
        assert compiled(a, b).tobytes() == plain["caller"](a, b).tobytes()
    text = io.StringIO()
    rjit.dis(compiled, file=text)
    final_hir = text.getvalue().split("HIR after specialisation")[1].split("== LIR")[0]
    assert final_hir.count("PeekGlobal") == 2, final_hir
    # Rebinding `range` between calls: the entry checks see it.
    jit["range"] = plain["range"] = lambda n: [0] * n
    assert compiled(a, b).tobytes() == plain["caller"](a, b).tobytes()
