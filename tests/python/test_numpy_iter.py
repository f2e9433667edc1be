"""`for x in a` over NumPy arrays, `a.dtype` comparisons, and whole-array calls in compiled
code. Every case is differential (see ``test_numpy.check``): the same function plain and
compiled by ``rjit.jit``, compared on results, mutated arguments, exceptions and warnings.

``native_loop(...)`` proves the array loop really is compiled: the specialised IR reads the
iterator's position (``SeqIterIndex``) and calls no ``IterNext``; ``folded(...)`` proves a
dtype comparison became a constant (no generic ``Compare`` left)."""

from __future__ import annotations

import math
import signal
import sys
import threading
import warnings

import pytest

np = pytest.importorskip("numpy")

import rjit
from rjit import _rjit
from conftest import make_function
from test_numpy import DTYPES, check, describe, sample

NATIVE_DTYPES = ["float64", "int64", "bool"]


def ir_of(source, args, namespace=None):
    ns = {"np": np, "math": math}
    ns.update(namespace or {})
    f = make_function(source, "f", ns)
    return _rjit.dump_ir(f.__code__, tuple(args), f.__globals__).split("\nlir ")[0]


def native_loop(source, args, namespace=None, loads=True):
    """The specialised IR of `source`'s `f` for `args` runs its array loops natively (their
    position in a register; the elements loaded by machine code if `loads`)."""
    ir = ir_of(source, args, namespace)
    assert "SeqIterIndex" in ir and "IterNext" not in ir, ir
    if loads:
        assert "LoadElement" in ir, ir
    return ir


def generic_loop(source, args, namespace=None):
    """The array loop stays the interpreter's (its iterator's `__next__` each time)."""
    ir = ir_of(source, args, namespace)
    assert "IterNext" in ir and "SeqIterIndex" not in ir, ir
    return ir


def arrays_of(dtype, n=7):
    a = sample(dtype, (n,))
    return [a, a[::2], a[::-1], a[1::3], np.zeros(0, dtype), a[:1], sample(dtype, (2 * n,))[::-2]]


SUM = "def f(a):\n    s = 0\n    for x in a:\n        s += x\n    return s\n"
SUM_FLOAT = "def f(a):\n    s = 0.0\n    for x in a:\n        s = s + x * 0.5\n    return s\n"
COUNT = "def f(a):\n    n = 0\n    for x in a:\n        if x:\n            n += 1\n    return n\n"
LAST = "def f(a):\n    for x in a:\n        pass\n    return x\n"
COUNT_ONLY = "def f(a):\n    n = 0\n    for x in a:\n        n += 1\n    return n, x\n"
WITH_INDEX = (
    "def f(a):\n    i = 0\n    s = 0.0\n    for x in a:\n        s += (x - a[i]) + i * x\n        i += 1\n    return s, i\n"
)
COMPARE = (
    "def f(a, t):\n    above = 0\n    best = None\n    for x in a:\n        if x > t:\n            above += 1\n"
    "        if best is None or x < best:\n            best = x\n    return above, best\n"
)
FORMS = [SUM, SUM_FLOAT, COUNT, LAST, COUNT_ONLY, WITH_INDEX]


@pytest.mark.parametrize("dtype", DTYPES)
def test_every_dtype_and_loop_form(dtype):
    for source in FORMS:
        check(source, [(a,) for a in arrays_of(dtype)])
    check(COMPARE, [(a, t) for a in arrays_of(dtype) for t in (0, 2.5, True)])


# The forms whose arithmetic the specialiser compiles for each dtype (an int accumulator
# plus float64 items, or arithmetic on NumPy bools, stays generic, as with `a[i]`).
NATIVE_FORMS = {
    "float64": [SUM_FLOAT, COUNT, LAST, COUNT_ONLY, WITH_INDEX],
    "int64": [SUM, SUM_FLOAT, COUNT, LAST, COUNT_ONLY, WITH_INDEX],
    "bool": [COUNT, LAST, COUNT_ONLY],
}


@pytest.mark.parametrize("dtype", NATIVE_DTYPES)
def test_loops_over_float64_int64_bool_load_machine_values(dtype):
    for source in NATIVE_FORMS[dtype]:
        for a in arrays_of(dtype)[:3]:
            native_loop(source, (a,))
    # The items escape as NumPy scalars, exactly as the interpreter's iterator makes them.
    check(LAST, [(sample(dtype, (3,)),), (np.zeros(0, dtype),)])


@pytest.mark.parametrize("dtype", sorted(set(DTYPES) - set(NATIVE_DTYPES)))
def test_loops_over_other_dtypes_load_through_numpy(dtype):
    # The position lives in a register; the items are NumPy's own `a[i]`.
    native_loop(COUNT_ONLY, (sample(dtype, (4,)),), loads=False)
    check(COUNT_ONLY, [(a,) for a in arrays_of(dtype)])


def test_break_continue_and_else():
    source = (
        "def f(a, stop):\n    n = 0\n    s = 0.0\n    for x in a:\n        if x < 0:\n            continue\n"
        "        if x > stop:\n            break\n        s += x\n        n += 1\n    else:\n        n = -n\n    return n, s\n"
    )
    for a in arrays_of("float64", 11):
        check(source, [(a, 3.0), (a, 100.0), (a, -100.0)])
    native_loop(source, (sample("float64", (5,)), 2.0))
    source2 = (
        "def f(a):\n    for x in a:\n        if x:\n            return x, 'found'\n    else:\n        return None, 'none'\n"
    )
    for dtype in DTYPES:
        check(source2, [(a,) for a in arrays_of(dtype)] + [(np.zeros(4, dtype),)])
    native_loop(source2, (sample("bool", (5,)),))


def test_nested_loops():
    outer_inner = "def f(a, b):\n    s = 0.0\n    for x in a:\n        for y in b:\n            s += x * y\n    return s\n"
    for a in arrays_of("float64", 5):
        check(outer_inner, [(a, b) for b in arrays_of("float64", 4)])
    native_loop(outer_inner, (sample("float64", (3,)), sample("float64", (4,))))
    same_array = (
        "def f(a):\n    pairs = 0\n    for x in a:\n        for y in a:\n            if x < y:\n                pairs += 1\n"
        "    return pairs\n"
    )
    for dtype in DTYPES:
        check(same_array, [(a,) for a in arrays_of(dtype, 6)])
    with_range = (
        "def f(a, m):\n    s = 0\n    for i in range(m.shape[0]):\n        for x in a:\n            s += x * m[i]\n"
        "    for x in a:\n        for j in range(3):\n            s -= x + j\n    return s\n"
    )
    check(with_range, [(sample("int64", (5,)), sample("int64", (3,))), (np.zeros(0, "int64"), sample("int64", (3,)))])
    native_loop(with_range, (sample("int64", (5,)), sample("int64", (3,))))
    # Rows of a 2-D array (sub-arrays) are iterated as the interpreter does.
    rows = "def f(m):\n    s = 0.0\n    for row in m:\n        for x in row:\n            s += x\n    return s\n"
    check(rows, [(sample("float64", (3, 4)),), (sample("float64", (3, 4)).T,), (np.zeros((0, 2)),)])


def test_non_contiguous_views_and_new_layouts_between_calls():
    f = check(SUM, [(a,) for a in arrays_of("int64")])
    # The same compiled function on arrays of other layouts and types: guards, never stale.
    plain = make_function(SUM, "f", {"np": np})
    for a in arrays_of("float64") + arrays_of("int64") + [np.arange(6.0).reshape(2, 3), [1, 2, 3], (4.5,), range(3)]:
        assert describe(f(a)) == describe(plain(a))


def test_arrays_mutated_inside_the_loop():
    # Stores the body makes natively are seen by the items that follow.
    forward = (
        "def f(a):\n    i = 0\n    s = 0.0\n    for x in a:\n        if i + 1 < a.shape[0]:\n            a[i + 1] = x * 2\n"
        "        s += x\n        i += 1\n    return s, a\n"
    )
    f = check(forward, [(np.arange(6.0),), (np.arange(6.0)[::-1].copy(),), (np.arange(12.0)[::2],), (np.zeros(0),)])
    native_loop(forward, (np.arange(6.0),))
    # A read-only array fails the loop's check (it stores): the interpreter raises at the store.
    read_only = np.arange(6.0)
    read_only.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        f(read_only)
    assert read_only.tolist() == list(range(6)) and describe(f(np.arange(3.0))) == describe(
        make_function(forward, "f", {})(np.arange(3.0)))
    # A store into the array through another argument (the same array twice).
    aliased = "def f(a, b):\n    s = 0\n    for x in a:\n        b[0] = b[0] + x\n        s += b[0]\n    return s\n"
    a = np.arange(5)
    check(aliased, [(a, a), (np.arange(5), np.arange(5))])

    # Python code called in the loop may reshape, resize or retype the array: the loop is the
    # interpreter's iterator then, which sees the change.
    def shrink(a, k):
        if k == 2:
            a.resize(3, refcheck=False)

    def grow(a, k):
        if k == 1:
            a.resize(9, refcheck=False)
            a[8] = 100

    def retype(a, k):
        if k == 1:
            a.dtype = np.int32

    def reshape(a, k):
        if k == 0:
            a.shape = (2, 3)

    source = "def f(a):\n    s = 0\n    k = 0\n    for x in a:\n        helper(a, k)\n        s = s + x\n        k += 1\n    return s, k\n"
    for helper, arg in [(shrink, np.arange(8.0)), (grow, np.arange(4.0)), (retype, np.arange(4)), (reshape, np.arange(6.0))]:
        check(source, [(arg.copy(),), (arg.copy(),)], {"helper": helper})
        generic_loop(source, (arg.copy(),), {"helper": helper})
    # A helper called before the loop (not in it): the loop is native and sees the new shape.
    before = "def f(a):\n    helper(a, 2)\n    s = 0.0\n    for x in a:\n        s += x\n    return s\n"
    check(before, [(np.arange(8.0),), (np.arange(8.0),)], {"helper": shrink})
    native_loop(before, (np.arange(8.0),), {"helper": shrink})


def test_a_deopt_mid_loop_resumes_at_the_next_item():
    # int64 overflow (NumPy wraps and warns: the interpreter redoes it), a non-finite float64
    # result (NumPy warns), division by zero: each leaves compiled code mid-loop, and the
    # interpreter must go on with the array's own iterator at the right item.
    overflow = "def f(a):\n    s = 0\n    k = 0\n    for x in a:\n        s += x\n        k += 1\n    return s, k\n"
    big = np.array([1, 2, 2**62, 2**62, 2**62, 5, 6], dtype="int64")
    before = rjit.stats()["deopts"]
    check(overflow, [(np.arange(5),), (big,), (big[::-1],), (big[::2],), (np.arange(5),)])
    assert rjit.stats()["deopts"] > before
    native_loop(overflow, (np.arange(5),))
    scale = "def f(a):\n    p = 1.0\n    seen = []\n    for x in a:\n        p *= x\n        q = 1.0 / x\n    return p, q\n"
    check(scale, [(np.array([2.0, 1e300, 1e300, 0.5, 0.0, 3.0]),), (np.array([1.0, 2.0]),), (np.array([0.0, 1.0]),)])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check(scale, [(np.array([2.0, 3.0]),), (np.array([1e300, 1e300, 2.0]),)])


def test_exceptions_raised_in_the_loop():
    source = (
        "def f(a, k):\n    s = 0.0\n    i = 0\n    for x in a:\n        s += x * a[i + k]\n        i += 1\n    return s\n"
    )
    a = sample("float64", (6,))
    check(source, [(a, 0), (a, 1), (a, -7), (a, 3), (a[::2], 1)])
    native_loop(source, (a, 0))
    caught = (
        "def f(a, k):\n    out = 0\n    for x in a:\n        try:\n            out += a[int(x) + k]\n"
        "        except IndexError:\n            out -= 1\n    return out\n"
    )
    check(caught, [(np.arange(6), 0), (np.arange(6), 3), (np.arange(6), -9)])


def test_reference_counts_are_unchanged():
    source = (
        "def f(a, stop):\n    s = 0\n    for x in a:\n        if x == stop:\n            break\n        s += x\n    return s\n"
    )
    f = rjit.jit(make_function(source, "f", {"np": np}))
    a = np.arange(50)
    big = np.array([2**62, 2**62, 1], dtype="int64")
    f(a, -1)
    before = (sys.getrefcount(a), sys.getrefcount(big))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for _ in range(300):
            f(a, -1)  # runs out
            f(a, 20)  # breaks
            f(big, -1)  # deoptimises mid-loop (int64 overflow warns)
    with pytest.raises(TypeError):
        f(None, 0)
    assert (sys.getrefcount(a), sys.getrefcount(big)) == before
    # The items (NumPy scalars) are freed as the interpreter frees them.
    keep = "def f(a):\n    out = []\n    for x in a:\n        out.append(x)\n    return out\n"
    g = rjit.jit(make_function(keep, "f", {"np": np}))
    items = g(np.arange(4.0))
    assert [sys.getrefcount(x) for x in items] == [sys.getrefcount(x) for x in make_function(keep, "f", {})(np.arange(4.0))]


def test_signal_handler_that_resizes_the_array_mid_loop():
    # The eval breaker may run a signal handler (Python code) in the middle of a native loop:
    # compiled code leaves for the interpreter there, whose iterator sees the resized array.
    source = "def f(a):\n    s = 0.0\n    k = 0\n    for x in a:\n        s += x\n        k += 1\n    return s, k\n"
    f = rjit.jit(make_function(source, "f", {"np": np}))
    f(np.ones(3))
    state = {}

    def handler(signum, frame):
        state["len"] = state["array"].shape[0]
        state["array"].resize(0, refcheck=False)

    old = signal.signal(signal.SIGALRM, handler)
    try:
        for _ in range(3):
            a = np.ones(20_000_000)
            state.clear()
            state["array"] = a
            signal.setitimer(signal.ITIMER_REAL, 0.005)
            s, k = f(a)
            signal.setitimer(signal.ITIMER_REAL, 0)
            # Every item read was a real element (1.0) of the array as it was at that time.
            assert s == float(k)
            if "len" in state:
                assert k < 20_000_000 and a.shape == (0,)
            else:
                assert k == 20_000_000
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def test_threads_running_array_loops():
    source = "def f(a):\n    s = 0.0\n    for x in a:\n        s += x * x\n    return s\n"
    f = rjit.jit(make_function(source, "f", {"np": np}))
    plain = make_function(source, "f", {"np": np})
    arrays = [np.arange(30000.0) / (k + 1) for k in range(4)]
    expected = [plain(x) for x in arrays]
    results = [None] * 4

    def work(k):
        for _ in range(10):
            results[k] = f(arrays[k])

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [describe(r) for r in results] == [describe(e) for e in expected]


def test_other_iterables_and_array_subclasses_go_through_the_interpreter():
    class Reversed(np.ndarray):
        def __iter__(self):
            return iter(list(np.asarray(self))[::-1])

    a = sample("float64", (5,))
    sub = a.view(Reversed)
    big_endian = a.astype(">f8")
    objects = np.array([1, 2.5, 3], dtype=object)
    source = "def f(a):\n    out = 0.0\n    for x in a:\n        out = out * 2 + x\n    return out\n"
    check(source, [(a,), (sub,), (big_endian,), (objects,), ([1.0, 2.0],), (np.float64(3.0),), (np.array(2.0),), (a,)])
    check(source, [(sub,), (a,)])


DTYPE_SOURCE = (
    "def f(a, b):\n    return (\n        a.dtype == np.float64, a.dtype != np.int64, a.dtype == np.dtype('int64'),\n"
    "        a.dtype == 'float64', a.dtype == 'f4', a.dtype != 'u1', np.bool_ == a.dtype, a.dtype == float,\n"
    "        a.dtype == int, a.dtype == bool, 'int32' == a.dtype, a.dtype == b.dtype, a.dtype != b.dtype,\n"
    "        a.dtype.kind == 'f', a.dtype.kind != 'i', 'u' == a.dtype.kind, a.dtype.char == 'l', a.dtype.name == 'int16',\n"
    "        a.dtype.str == '<f8', a.dtype.itemsize == 8, a.dtype.num == 12, a.dtype.itemsize == '8',\n"
    "        a.dtype.kind == b.dtype.kind, a.dtype == np.dtype('uint8'), a.dtype is np.dtype(a.dtype.name),\n"
    "        a.dtype is None, a.dtype is not b.dtype, a.dtype == np.longlong, a.dtype == 'int',\n"
    "        a.dtype == np.floating, a.dtype != 'not a dtype', a.dtype == 8, a.dtype.kind == 102,\n"
    "    )\n"
)
FOLDED = (
    "def f(a, b):\n    return (a.dtype == np.float64, a.dtype != 'int32', a.dtype == np.dtype('int64'),\n"
    "            a.dtype.kind == 'f', a.dtype == b.dtype, 'u' == a.dtype.kind, a.dtype.itemsize == 8)\n"
)


def folded(source, args, namespace=None):
    ir = ir_of(source, args, namespace)
    assert "Compare" not in ir.replace("IntCompare", "").replace("FloatCompare", ""), ir
    return ir


@pytest.mark.parametrize("dtype", DTYPES)
def test_dtype_comparisons_of_every_dtype(dtype):
    a = sample(dtype, (3,))
    others = [sample(d, (2,)) for d in DTYPES]
    check(DTYPE_SOURCE, [(a, b) for b in others] + [(a.reshape(3, 1), a), (a[::-1], a)])
    folded(FOLDED, (a, a))
    f = check(FOLDED, [(a, a), (a, others[0])])
    # Called later with arrays of other dtypes: each answer is still right.
    plain = make_function(FOLDED, "f", {"np": np})
    for b in others + [a.astype(">f8"), np.array(["x"]), np.arange(3, dtype="longlong")]:
        assert describe(f(b, a)) == describe(plain(b, a))


def test_dtype_comparisons_in_loops_keep_the_loop_native():
    source = (
        "def f(a):\n    s = 0.0\n    for x in a:\n        if a.dtype == np.float64 and a.dtype.kind == 'f':\n"
        "            s += x\n        elif a.dtype != np.dtype('int64'):\n            s -= x\n    return s\n"
    )
    for dtype in DTYPES:
        check(source, [(a,) for a in arrays_of(dtype)])
    native_loop(source, (sample("float64", (4,)),))
    folded(source, (sample("float64", (4,)),))
    native_loop(source, (sample("int64", (4,)),))


def test_plain_dtype_is_the_arrays_own_object():
    source = "def f(a):\n    d = a.dtype\n    return d, d is a.dtype, a.dtype.type, a.dtype.kind\n"
    check(source, [(sample(d, (2,)),) for d in DTYPES])
    f = rjit.jit(make_function(source, "f", {"np": np}))
    a = np.arange(3.0)
    for _ in range(3):
        assert f(a)[0] is a.dtype
    meta = np.arange(3.0).astype(np.dtype("f8", metadata={"unit": "m"}))
    assert f(meta)[0] is meta.dtype and f(meta)[0].metadata == {"unit": "m"}
    check("def f(a):\n    return a.dtype == np.float64, a.dtype.metadata\n", [(meta,), (np.arange(2.0),), (meta,)])


def test_dtype_folds_are_guarded_against_rebinding():
    source = "def f(a):\n    return a.dtype == np.float64, a.dtype == np.dtype('float64'), a.dtype == target\n"

    class FakeNumpy:
        float64 = np.int64

        @staticmethod
        def dtype(x):
            return np.dtype("int64")

    ns = {"np": np, "target": np.float64}
    func = make_function(source, "f", ns)
    f = rjit.jit(func)
    a = np.arange(3.0)
    assert f(a) == (True, True, True)
    folded(source, (a,), {"target": np.float64})
    ns["target"] = np.int64
    assert f(a) == (True, True, False)
    ns["np"] = FakeNumpy
    assert f(a) == (False, False, False)
    ns["np"] = np
    ns["target"] = "float64"
    assert f(a) == (True, True, True)


def test_whole_array_calls_in_compiled_code():
    source = (
        "def f(a, b):\n    return (a.sum(), np.dot(a, b), a.dot(b), a @ b, np.sum(a * b), a.mean(), a.max(), np.sqrt(a),\n"
        "            a.sum() + 1, len(a), a.cumsum())\n"
    )
    for dtype in DTYPES:
        a, b = sample(dtype, (5,)), sample(dtype, (5,))
        check(source, [(a, b), (a[::-1], b[::-1]), (a, b[:4])])
    loop = (
        "def f(a, b):\n    s = 0.0\n    t = a.sum()\n    for i in range(a.shape[0]):\n        s += a[i] * t + np.dot(a, b)\n"
        "    for x in a:\n        s += x * a.sum()\n    return s, np.dot(a, b) * s\n"
    )
    check(loop, [(np.arange(4.0), np.arange(4.0)), (np.arange(3), np.arange(3)), (np.zeros(0), np.zeros(0))])
    matrices = "def f(a, b):\n    return np.dot(a, b), a.sum(axis=0), (a @ b).sum()\n"
    check(matrices, [(sample("float64", (3, 4)), sample("float64", (4, 2))), (sample("int64", (2, 2)), sample("int64", (2, 3)))])


def test_each_guard_of_array_loops_deoptimises_exactly():
    # After a call (Python code), the array is checked right before `iter(a)`: another type
    # there leaves for the interpreter, which iterates whatever it is.
    source = "def f(a):\n    helper(a)\n    s = 0.0\n    for x in a:\n        s += x\n    return s\n"
    ns = {"helper": lambda a: None}
    f = check(source, [(np.arange(5.0),)], ns)
    native_loop(source, (np.arange(5.0),), ns)
    plain = make_function(source, "f", dict(ns))
    before = rjit.stats()["deopts"]
    for a in [[1.5, 2.5], np.arange(4), np.arange(6.0).reshape(2, 3), np.arange(5.0)[::-1], (), np.arange(3.0)]:
        assert describe(f(a)) == describe(plain(a))
    assert rjit.stats()["deopts"] > before

    # `range` in an array loop is checked to be the builtin before it is called: a `range`
    # rebound to Python code (here: one that resizes the array) is called by the interpreter.
    source = (
        "def f(a):\n    s = 0.0\n    for x in a:\n        for j in range(2):\n            s += x * j\n    return s\n"
    )
    native_loop(source, (np.arange(5.0),))

    def shrinking_range(n, array=[]):
        if array:
            array[0].resize(2, refcheck=False)
        return range(n)

    ns = {"range": range}
    func = make_function(source, "f", ns)
    f = rjit.jit(func)
    plain = make_function(source, "f", ns)
    assert describe(f(np.arange(5.0))) == describe(plain(np.arange(5.0)))
    ns["range"] = shrinking_range
    for _ in range(2):
        a, b = np.arange(5.0), np.arange(5.0)
        shrinking_range.__defaults__[0][:] = [a]
        got = f(a)
        shrinking_range.__defaults__[0][:] = [b]
        assert describe(got) == describe(plain(b)) and a.shape == b.shape == (2,)
    ns["range"] = range
    assert describe(f(np.arange(5.0))) == describe(plain(np.arange(5.0)))


def test_dtype_folds_check_the_array_where_no_view_holds():
    # After a call, the fold checks the array itself: an array of another dtype there leaves
    # for the interpreter, which compares the real dtype.
    source = "def f(a):\n    helper()\n    return a.dtype == np.float64, a.dtype.kind == 'f', a.dtype.itemsize\n"
    ns = {"helper": lambda: None}
    f = check(source, [(np.arange(3.0),)], ns)
    folded(source, (np.arange(3.0),), ns)
    plain = make_function(source, "f", {"np": np, **ns})
    for a in [np.arange(3), np.arange(3.0, dtype="float32"), np.arange(3.0), np.array([True]), np.arange(3.0).astype(">f8")]:
        assert describe(f(a)) == describe(plain(a))


def test_dtype_folds_leave_reference_counts_unchanged():
    f = rjit.jit(make_function(FOLDED, "f", {"np": np}))
    a, b = np.arange(3.0), np.arange(3)
    f(a, b)
    objects = [a, b, a.dtype, b.dtype, np.float64, np.dtype]
    before = [sys.getrefcount(o) for o in objects]
    for _ in range(1000):
        f(a, b)
        f(b, a)
    assert [sys.getrefcount(o) for o in objects] == before
