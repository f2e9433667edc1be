"""Edge cases of loop unrolling (src/lir/unroll.rs), fp-flag clear reduction
(src/lir/fp_clears.rs) and the float64 load fold (backend): plain CPython vs compiled.

Each comparison covers the value (float bits, exact type), the exception and its message,
the warnings and the contents of the array arguments after the call (`result_of`).
Cases whose failure position matters get a fresh compiled twin per position, so that
earlier deoptimisations cannot make a later position run uncompiled code.
"""

from __future__ import annotations

import _thread
import io
import signal
import threading

import numpy as np
import pytest

import rjit
from test_compiled import compiled_pair
from test_unrolled_loops import result_of


def unrolled(compiled):
    text = io.StringIO()
    rjit.dis(compiled, file=text)
    # The unrolled loop's bound: `n - step*(factor-1)`, or the lowest int where that wraps.
    return "0x8000000000000000" in text.getvalue()


def same(source, args, warm=None, expect_unrolled=True):
    """Compares plain and compiled on `args` with a fresh twin, first warmed (and checked
    to be unrolled) on `warm`."""
    plain, compiled = compiled_pair(source)
    if warm is not None:
        assert result_of(compiled, warm) == result_of(plain, warm), (source, warm)
        if expect_unrolled:
            assert unrolled(compiled), source
    for _ in range(2):
        assert result_of(compiled, args) == result_of(plain, args), (source, args)


# ---- the overwritten result of an earlier copy: its floating-point exception still warns ----

LAST_VALUE = """
def f(a, c, n):
    out = 0.0
    for i in range(n):
        out = a[i] + c
    return out
"""


@pytest.mark.parametrize("bad", range(12))
def test_an_overwritten_numpy_result_still_warns(bad):
    # Only the last copy's sum is read after the unrolled body; the others' float adds are
    # removed as dead, and with them the overflow flag NumPy would have warned about.
    a = np.ones(12)
    a[bad] = 1e308
    same(LAST_VALUE, (a, 1e308, 12), warm=(np.ones(12), 1.0, 12))


LAST_PRODUCT = """
def f(a, c, n):
    out = 0.0
    for i in range(n):
        out = a[i] * c
    return out
"""


@pytest.mark.parametrize("bad", [0, 3, 6, 7, 8, 11])
def test_an_overwritten_invalid_product_still_warns(bad):
    a = np.ones(12)
    a[bad] = np.inf
    same(LAST_PRODUCT, (a, 0.0, 12), warm=(np.ones(12), 1.0, 12))


# ---- exits in every copy, for ranges with other steps ----

INT_STEPS = """
def f(a, lo, hi, st, m):
    s = 0
    for i in range(lo, hi, st):
        s += a[i] * m
    return s, i
"""


@pytest.mark.parametrize("lo, hi, st", [(0, 40, 3), (39, -1, -1), (39, 0, -2), (2, 40, 5), (0, 40, 1)])
@pytest.mark.parametrize("m", [2**58, 2**59, 2**60, -(2**60)])
def test_int_overflow_exits_with_other_steps(lo, hi, st, m):
    a = np.arange(1, 41, dtype=np.int64)
    same(INT_STEPS, (a, lo, hi, st, m), warm=(a, lo, hi, st, 1))


NEG_INDEX = """
def f(a, lo, hi, st):
    s = 0.0
    for i in range(lo, hi, st):
        s += a[i - 5]
    return s
"""


@pytest.mark.parametrize("lo, hi, st", [(0, 36, 1), (0, 35, 1), (34, -6, -1), (34, -7, -1), (0, 40, 3), (39, -10, -3)])
def test_index_errors_with_negative_indices_and_steps(lo, hi, st):
    a = np.arange(30.0) + 0.5
    same(NEG_INDEX, (a, lo, hi, st), warm=(a, 0, 20, 1))


STORES = """
def f(a, b, n, c):
    for i in range(n):
        b[i] = a[i] * c - 1.0
    return b
"""


@pytest.mark.parametrize("bad", range(20))
def test_stores_up_to_a_nonfinite_product_in_any_copy(bad):
    a = np.ones(20)
    a[bad] = 1e300
    same(STORES, (a, np.zeros(20), 20, 1e10), warm=(np.ones(20), np.zeros(20), 20, 2.0))


@pytest.mark.parametrize("bad", [0, 1, 5, 7, 8, 13])
def test_invalid_products_in_any_copy(bad):
    a = np.ones(20)
    a[bad] = 0.0
    same(STORES, (a, np.zeros(20), 20, np.inf), warm=(np.ones(20), np.zeros(20), 20, 2.0))


LOCALS = """
def f(a, n, m):
    t = 0
    k = 0
    for i in range(n):
        k = i * 2
        t = t + a[i] * m
    return t, k, i
"""


@pytest.mark.parametrize("n", [1, 8, 9, 16, 17, 20])
@pytest.mark.parametrize("m", [2**59, 2**60, 2**61, 2**62 // 7])
def test_locals_handed_over_by_an_exit_in_a_copy(n, m):
    a = np.arange(1, 21, dtype=np.int64)
    same(LOCALS, (a, n, m), warm=(a, 20, 1))


# ---- bounds next to the ends of the 64-bit range with other steps ----

RANGE_ITEMS = """
def f(lo, hi, st):
    s = 0
    c = 0
    for i in range(lo, hi, st):
        s ^= i
        c += 1
    return s, c
"""


@pytest.mark.parametrize(
    "lo, hi, st",
    [
        (2**63 - 40, 2**63 - 1, 3),
        (2**63 - 40, 2**63 - 1, 1),
        (-(2**63), -(2**63) + 30, 4),
        (2**63 - 1, 2**63 - 40, -3),
        (-(2**63) + 30, -(2**63), -1),
        (0, 2**63 - 1, 2**62),
    ],
)
def test_ranges_next_to_the_ends_of_int64(lo, hi, st):
    same(RANGE_ITEMS, (lo, hi, st), warm=(0, 30, 1), expect_unrolled=False)


# ---- addresses: displacements, aliasing, views, loop-carried memory ----

@pytest.mark.parametrize(
    "source, make",
    [
        (
            "def f(a, b, n):\n    s = 0.0\n    for i in range(n):\n        s += a[i] * b[i]\n    return s\n",
            lambda n: (np.arange(60.0)[::3] * 1.1, np.arange(60.0)[::-3] * 0.9, n),
        ),
        (
            "def f(a, n):\n    for i in range(n):\n        a[i + 1] = a[i] * 0.5 + 1.0\n    return a\n",
            lambda n: (np.arange(30.0), n),
        ),
        (
            "def f(a, b, n):\n    for i in range(n):\n        b[i] = a[i] + 1.0\n    return b\n",
            lambda n: (lambda x: (x[:-1], x[1:], n))(np.arange(31.0)),
        ),
        (
            "def f(a, n, c):\n    s = 0.0\n    for i in range(n):\n        s = a[i] - s * c\n    return s\n",
            lambda n: (np.random.default_rng(1).random(40), n, 0.7),
        ),
        (
            "def f(a, b, n):\n    s = 0.0\n    for i in range(n):\n        s += a[i] * b[i + 1]\n    return s\n",
            lambda n: (np.ones(40), np.arange(25.0), n),
        ),
    ],
)
@pytest.mark.parametrize("n", [0, 1, 3, 4, 7, 8, 9, 15, 16, 17, 23, 24, 25, 29, 30])
def test_addresses_and_memory_order(source, make, n):
    same(source, make(n), warm=make(20))


BIG_OFFSET = """
def f(a, n, off):
    s = 0.0
    for i in range(n):
        s += a[i + off]
    return s
"""


@pytest.mark.parametrize("off", [0, 2**28, 2**31 - 1, 2**31, -(2**31), 2**62, 2**63 - 10, -20, -(2**63)])
def test_index_offsets_that_do_not_fit_a_displacement(off):
    same(BIG_OFFSET, (np.ones(20), 17, off), warm=(np.ones(40), 17, 1))


# ---- the eval breaker inside an unrolled loop ----

INTERRUPTED = """
def f(a, n):
    s = 0
    i = -1
    try:
        for i in range(n):
            s += a[i]
    except KeyboardInterrupt:
        return ("interrupted", i, s)
    return ("done", i, s)
"""


def test_an_interrupt_sees_the_frame_of_one_iteration():
    _, compiled = compiled_pair(INTERRUPTED)
    a = np.ones(5_000_000, dtype=np.int64)
    compiled(a, 20)
    assert unrolled(compiled)
    for trial in range(12):
        timer = threading.Timer(0.0005 * (trial % 6 + 1), _thread.interrupt_main)
        try:
            timer.start()
            kind, i, s = compiled(a, len(a))
            timer.join()
        except KeyboardInterrupt:  # landed outside the loop
            timer.join()
            continue
        # The interpreter sees the breaker at the loop's jump back: after the add of `i`.
        assert s == i + 1, (kind, i, s)
        if kind == "done":
            assert i == len(a) - 1


HANDLED = """
def f(a, n):
    s = 0.0
    for i in range(n):
        s += a[i] * 1.0000001
    return s
"""


def test_a_signal_handler_running_mid_loop_changes_nothing():
    plain, compiled = compiled_pair(HANDLED)
    a = np.random.default_rng(5).random(3_000_000) * 1e10 - 5e9
    calls = []
    old = signal.signal(signal.SIGALRM, lambda *_: calls.append(1))
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.0003, 0.0003)
        for _ in range(3):
            assert result_of(compiled, (a, len(a))) == result_of(plain, (a, len(a)))
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0, 0)
        signal.signal(signal.SIGALRM, old)
    assert calls


def test_threads_running_the_same_unrolled_loop():
    plain, compiled = compiled_pair(HANDLED)
    arrays = [np.random.default_rng(k).random(200_000 + k) for k in range(4)]
    expected = [plain(x, len(x)) for x in arrays]
    compiled(arrays[0], 20)
    assert unrolled(compiled)
    results = {}

    def run(k):
        results[k] = [compiled(arrays[k], len(arrays[k])) for _ in range(5)]

    threads = [threading.Thread(target=run, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for k in range(4):
        assert all(r.hex() == expected[k].hex() and type(r) is type(expected[k]) for r in results[k])


# ---- fp flag clears between nested loops ----

NESTED = """
def f(a, b, x):
    out = 0.0
    for i in range(a.shape[0]):
        s = 0.0
        for k in range(a.shape[1]):
            s += a[i, k] * b[k]
        x = x * 1e300
        out += s
    return out, x
"""


@pytest.mark.parametrize("row", [0, 1, 2])
def test_python_float_overflow_between_inner_loops(row):
    # `x * 1e300` (a Python float: no warning) sets the overflow flag between the inner
    # loops; a NumPy overflow in row `row` must warn once, as interpreted.
    a = np.ones((3, 11))
    b = np.ones(11)
    bad = a.copy()
    bad[row, 5] = 1e308
    bb = b.copy()
    bb[5] = 1e10
    same(NESTED, (bad, bb, 1.0), warm=(a, b, 1.0), expect_unrolled=False)
    same(NESTED, (a, b, 1e10), warm=(a, b, 1.0), expect_unrolled=False)


# ---- a guard failing in a copy after an earlier copy's NumPy overflow ----

SUM_PAST_END = """
def f(a, n, c):
    s = 0.0
    for i in range(n):
        s += a[i] * c
    return s
"""


@pytest.mark.parametrize("overflow", range(0, 12, 2))
@pytest.mark.parametrize("n", [12, 13, 15, 17])
def test_an_overflow_before_an_index_error_warns_then_raises(overflow, n):
    # The loop checks the flags only where it is left: the IndexError's exit redoes the loop
    # from its start when an earlier copy overflowed.
    a = np.ones(12)
    a[overflow] = 1e300
    same(SUM_PAST_END, (a, n, 1e10), warm=(np.ones(12), 12, 1.0))
