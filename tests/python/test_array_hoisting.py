"""Arrays the function makes (`np.zeros(...)` and the like), and index checks done once on
entering a loop instead of at every access. Differential, as in test_numpy.py: the same
function plain and compiled, compared on results, mutated arguments, exceptions and warnings;
each guard is also made to fail (a deopt), which must not change anything either."""

from __future__ import annotations

import pytest

np = pytest.importorskip("numpy")

import rjit
from test_compiled import make_function
from test_numpy import check, native, outcome, sample

MATMUL = """
def f(a, b):
    n = a.shape[0]
    m = b.shape[1]
    inner = a.shape[1]
    c = np.zeros((n, m))
    for i in range(n):
        for j in range(m):
            s = 0.0
            for k in range(inner):
                s += a[i, k] * b[k, j]
            c[i, j] = s
    return c
"""

DOT = """
def f(a, b):
    s = 0.0
    for i in range(a.shape[0]):
        s += a[i] * b[i]
    return s
"""


def specialised(ir):
    """The specialised HIR of a dump (before the LIR)."""
    return ir.split("lir ")[0]


def test_an_array_made_by_np_zeros_is_stored_into_natively():
    a, b = sample("float64", (3, 4)), sample("float64", (4, 2))
    check(MATMUL, [(a, b), (b.T.copy(), a.T.copy()), (sample("float64", (0, 2)), sample("float64", (2, 3)))])
    ir = specialised(native(MATMUL, (a, b)))
    assert "StoreElement" in ir and "SetItem" not in ir, ir


@pytest.mark.parametrize(
    "make, dtype",
    [
        ("np.zeros(n)", "float64"),
        ("np.ones(n)", "float64"),
        ("np.empty(n)", "float64"),
        ("np.zeros(n, np.int64)", "int64"),
        ("np.zeros(n, dtype=np.int32)", "int32"),
        ("np.zeros(n, dtype=float)", "float64"),
        ("np.zeros(n, dtype=int)", "int64"),
        ("np.zeros(n, dtype=bool)", "bool"),
        ("np.zeros((n,), np.float32)", "float32"),
    ],
)
def test_constructors_and_dtypes(make, dtype):
    source = f"def f(a):\n    n = a.shape[0]\n    out = {make}\n    for i in range(n):\n        out[i] = a[i] > 0\n    return out\n"
    a = sample("float64", (5,))
    check(source, [(a,), (sample("float64", (0,)),), (sample("float64", (7,)),)])
    ir = specialised(native(source, (a,)))
    assert "StoreElement" in ir, ir


def test_a_wrong_guess_deopts():
    # `np` rebound after compiling: `zeros` makes another dtype, another layout, or an object
    # that is no array at all. The guard on entering the loop fails; the interpreter runs it.
    class Recorder:
        def __init__(self, shape):
            self.items = {}

        def __setitem__(self, key, value):
            self.items[key] = value

        def __eq__(self, other):
            return isinstance(other, Recorder) and self.items == other.items

        def __repr__(self):
            return f"Recorder({sorted(self.items.items())})"

    fakes = {
        "int64": lambda shape: np.zeros(shape, np.int64),
        "fortran": lambda shape: np.zeros(shape, order="F"),
        "object": Recorder,
    }
    a, b = sample("float64", (3, 4)), sample("float64", (4, 2))
    for name, zeros in fakes.items():
        plain = make_function(MATMUL, "f", {"np": np})
        raw = make_function(MATMUL, "f", {"np": np})
        compiled = rjit.jit(raw)
        assert outcome(compiled, (a, b)) == outcome(plain, (a, b))
        fake = type("FakeNumpy", (), {"zeros": staticmethod(zeros)})
        plain.__globals__["np"] = fake
        raw.__globals__["np"] = fake
        for _ in range(3):
            got, expected = compiled(a, b), plain(a, b)
            if isinstance(expected, np.ndarray):
                assert type(got) is type(expected) and got.dtype == expected.dtype, name
                assert got.flags.f_contiguous == expected.flags.f_contiguous, name
                assert np.array_equal(got, expected), name
            else:
                assert got == expected, name


def test_arrays_used_where_they_are_not_verified_stay_objects():
    # Stored into before any loop, measured outside one, or made inside the loop: the
    # specialiser keeps these as objects (and still compiles the rest).
    sources = [
        "def f(a):\n    n = a.shape[0]\n    c = np.zeros(n)\n    c[0] = 5.0\n    for i in range(n):\n        c[i] += a[i]\n    return c\n",
        "def f(a):\n    c = np.zeros(a.shape[0])\n    m = c.shape[0]\n    for i in range(m):\n        c[i] = a[i] * 2\n    return c, len(c)\n",
        "def f(a):\n    t = 0.0\n    for i in range(a.shape[0]):\n        c = np.zeros(3)\n        c[1] = a[i]\n        t += c[1]\n    return t\n",
        "def f(a):\n    c = np.zeros((2, 2))\n    for i in range(2):\n        c[i, i] = a[i]\n        print_it(c)\n    return c\n",
    ]
    a = sample("float64", (4,))
    for source in sources:
        check(source, [(a,), (sample("float64", (1,)),)], {"print_it": lambda c: c.sum()})


def test_a_range_bound_is_checked_once_against_each_array():
    a = sample("float64", (6,))
    calls = [(a, sample("float64", (6,))), (a, sample("float64", (9,))), (a, sample("float64", (4,))),
             (sample("float64", (0,)), sample("float64", (0,))), (a, a[::2]), (a, sample("float64", (0,)))]
    check(DOT, calls)
    ir = specialised(native(DOT, calls[0]))
    assert "ArrayIndex" not in ir and "GuardNonNegative" in ir, ir


def test_mismatched_shapes_in_nested_loops_raise_as_the_interpreter_does():
    # b has fewer rows than a has columns: the `k` loop's entry check fails, the interpreter
    # runs that loop and raises NumPy's IndexError where the body first reaches b[k, j].
    a = sample("float64", (3, 4))
    calls = [(a, sample("float64", (4, 2))), (a, sample("float64", (3, 2))), (a, sample("float64", (5, 1))),
             (sample("float64", (2, 0)), sample("float64", (0, 3)))]
    check(MATMUL, calls)


def test_invariant_indices_are_checked_on_entering_the_innermost_loop_that_keeps_them():
    # `a[i, k]` in the k loop: i is checked on entering the j loop (inside the i loop), once
    # per i, however deep the access.
    source = (
        "def f(a, rows):\n    s = 0.0\n    for r in range(len(rows)):\n        i = rows[r]\n"
        "        for j in range(2):\n            for k in range(a.shape[1]):\n                s += a[i, k] * j\n    return s\n"
    )
    a = sample("float64", (3, 4))
    check(source, [(a, [0, 2, -1]), (a, [1, 3]), (a, [-4]), (a, [-3, 2])])


COLUMN = """
def f(a, b):
    s = 0.0
    for i in range(a.shape[0]):
        s += a[i, 0] * b[i, -1]
    return s
"""


def test_constant_indices_are_checked_once_on_entering_the_loop():
    # `a[i, 0]`: the constant's check against the column count is made on entering the loop
    # (none in the body), so the loop only computes and checks NumPy's flags once, at its end.
    a, b = sample("float64", (5, 1)), sample("float64", (5, 3))
    calls = [(a, b), (sample("float64", (5, 0)), b), (a, sample("float64", (5, 0))),
             (sample("float64", (0, 0)), sample("float64", (0, 0))), (a, b[:, ::-2]), (a[::-1], b.T.copy().T),
             (np.full((5, 1), 1e300), np.full((5, 2), 1e300))]
    check(COLUMN, calls)
    ir = specialised(native(COLUMN, calls[0]))
    body = ir.split("RangeIndexNext")[1]
    assert "ArrayIndex" not in body, ir


def test_constant_indices_in_nested_loops_and_out_of_range():
    source = (
        "def f(a, n):\n    s = 0.0\n    for j in range(n):\n        for i in range(a.shape[0]):\n"
        "            s += a[i, 2] + a[i, -3] * j\n    return s\n"
    )
    # Columns 2 and -3 exist only with three columns or more: IndexError where the
    # interpreter raises it (and nothing when a loop does not run).
    calls = [(sample("float64", (4, 3)), 2), (sample("float64", (4, 2)), 2), (sample("float64", (0, 2)), 2),
             (sample("float64", (4, 2)), 0), (sample("float64", (4, 5)), 3)]
    check(source, calls)
