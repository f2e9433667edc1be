"""The lookup of a function called as machine code (`np.tanh(x)`, `math.sqrt(x)`, `tanh(x)`
after `from numpy import tanh`) moved out of a loop that runs no Python code
(`hir::hoist_inlined`): the global and the module's attribute are checked once on entering the
loop (`PeekGlobal`, `PeekAttr`, `GuardIs`), and the loop leaves for the interpreter once its eval
breaker has run. Whatever rebinds them between two entries into the loop (`np`, `np.tanh`, a
deleted attribute, a module replaced by another object), the compiled function must behave
exactly as the interpreter. A ufunc call's floating-point check is merged with the next one
(`hir::ufunc_flags`): NumPy's warnings and `np.errstate` stay the interpreter's."""

from __future__ import annotations

import math
import types
import warnings

import pytest

np = pytest.importorskip("numpy")

import rjit
from conftest import make_function
from test_inline_hoist import namespace, outcome

GO_FAST = """
import numpy as np

def go_fast(a):
    trace = 0.0
    for i in range(a.shape[0]):
        trace += np.tanh(a[i, i])
    return a + trace
"""


def hir(ns, name, args):
    ir = rjit._rjit.dump_ir(ns[name].__code__, args, ns)
    return ir.split("lir ")[0].split("HIR after")[-1]


def loop_body(ir):
    """The specialised HIR from the loop's header on (the preheader's checks excluded)."""
    return ir[ir.index("bb2("):]


def same(plain, compiled, args):
    got, want = outcome(compiled, args), outcome(plain, args)
    assert got == want
    return got


def test_the_lookup_of_np_tanh_is_made_once_per_entry_into_the_loop():
    ns = namespace(GO_FAST)
    a = np.arange(100).reshape(10, 10)
    ir = hir(ns, "go_fast", (a,))
    assert "PeekGlobal" in ir and "PeekAttr" in ir, ir
    body = loop_body(ir)
    assert "LoadGlobal" not in body and "LoadAttr" not in body and "GuardIs" not in body, ir
    assert "UfuncCall" in body or "UfuncBatched" in body, ir


def test_go_fast_matches_the_interpreter():
    plain, jit = namespace(GO_FAST), namespace(GO_FAST)
    compiled = rjit.jit(jit["go_fast"])
    for a in (np.arange(100).reshape(10, 10), np.arange(9.0).reshape(3, 3) * 0.5, np.zeros((0, 0), dtype=np.int64)):
        for _ in range(3):
            got = compiled(a)
            want = plain["go_fast"](a)
            assert got.dtype == want.dtype and np.array_equal(got, want)
            assert got.tobytes() == want.tobytes()


@pytest.mark.parametrize("rebind", ["attribute", "module", "deleted", "not_a_module", "module_subclass"])
def test_rebinding_np_or_np_tanh_between_calls_is_seen(rebind):
    plain, jit = namespace(GO_FAST), namespace(GO_FAST)
    compiled = rjit.jit(jit["go_fast"])
    a = np.arange(16).reshape(4, 4)
    same(plain["go_fast"], compiled, (a,))
    same(plain["go_fast"], compiled, (a,))

    def fake_tanh(x):
        return x * 2

    for ns in (plain, jit):
        if rebind == "attribute":
            # A monkeypatched attribute of a module of one's own (numpy itself stays intact).
            fake = types.ModuleType("numpy")
            fake.__dict__.update(np.__dict__)
            fake.tanh = fake_tanh
            ns["np"] = fake
        elif rebind == "module":
            ns["np"] = types.SimpleNamespace(tanh=fake_tanh)
        elif rebind == "deleted":
            del ns["np"]
        elif rebind == "not_a_module":
            ns["np"] = 42
        else:

            class Lazy(types.ModuleType):
                def __getattr__(self, name):
                    return fake_tanh if name == "tanh" else getattr(np, name)

            ns["np"] = Lazy("lazy")
    for _ in range(3):
        got = same(plain["go_fast"], compiled, (a,))
    if rebind in ("deleted", "not_a_module"):
        assert got[0] == "raise"
    # And back.
    for ns in (plain, jit):
        ns["np"] = np
    for _ in range(3):
        same(plain["go_fast"], compiled, (a,))


def test_monkeypatched_np_tanh_between_calls_is_seen(monkeypatch):
    plain, jit = namespace(GO_FAST), namespace(GO_FAST)
    compiled = rjit.jit(jit["go_fast"])
    a = np.arange(16).reshape(4, 4)
    same(plain["go_fast"], compiled, (a,))
    calls = []

    def tanh(x):
        calls.append(x)
        return np.sinh(x)

    monkeypatch.setattr(np, "tanh", tanh)
    got = same(plain["go_fast"], compiled, (a,))
    assert got[0] == "ok"
    assert len(calls) == 8  # four in each
    monkeypatch.undo()
    same(plain["go_fast"], compiled, (a,))


REBIND_INSIDE = """
import numpy as np
import math

def rebind(k):
    global np
    if k == 2:
        np = None

def f(a, n):
    t = 0.0
    for k in range(n):
        rebind(k)
        for i in range(a.shape[0]):
            t += np.tanh(a[i])
    return t
"""


def test_rebinding_in_an_outer_loop_between_entries_into_the_inner_loop():
    plain, jit = namespace(REBIND_INSIDE), namespace(REBIND_INSIDE)
    compiled = rjit.jit(jit["f"])
    a = np.linspace(-2.0, 2.0, 7)
    got = same(plain["f"], compiled, (a, 5))
    assert got[0] == "raise" and got[1] is AttributeError


MATH = """
import math

def f(xs, n):
    s = 0.0
    for i in range(n):
        s += math.sqrt(xs[i])
    return s
"""


def test_math_sqrt_is_checked_once_per_entry_and_rebinding_is_seen():
    plain, jit = namespace(MATH), namespace(MATH)
    xs = np.arange(20.0)
    ir = hir(jit, "f", (xs, 20))
    assert "PeekAttr" in ir, ir
    compiled = rjit.jit(jit["f"])
    same(plain["f"], compiled, (xs, 20))
    for ns in (plain, jit):
        ns["math"] = types.SimpleNamespace(sqrt=lambda x: -x)
    same(plain["f"], compiled, (xs, 20))
    for ns in (plain, jit):
        ns["math"] = math
    same(plain["f"], compiled, (xs, 20))


FROM_IMPORT = """
from numpy import tanh

def f(a):
    t = 0.0
    for i in range(a.shape[0]):
        t += tanh(a[i])
    return t
"""


def test_a_ufunc_global_is_checked_once_per_entry_and_rebinding_is_seen():
    plain, jit = namespace(FROM_IMPORT), namespace(FROM_IMPORT)
    a = np.linspace(-3.0, 3.0, 11)
    ir = hir(jit, "f", (a,))
    assert "PeekGlobal" in ir and "GuardIs" not in loop_body(ir), ir
    compiled = rjit.jit(jit["f"])
    same(plain["f"], compiled, (a,))
    for ns in (plain, jit):
        ns["tanh"] = np.sin
    same(plain["f"], compiled, (a,))
    for ns in (plain, jit):
        ns["tanh"] = np.tanh
    same(plain["f"], compiled, (a,))


def test_a_tracer_between_calls_sees_every_line():
    import sys

    plain, jit = namespace(GO_FAST), namespace(GO_FAST)
    compiled = rjit.jit(jit["go_fast"])
    a = np.arange(9).reshape(3, 3)
    compiled(a)

    def lines(func):
        seen = []

        def tracer(frame, event, arg):
            if frame.f_code.co_name == "go_fast" and event == "line":
                seen.append(frame.f_lineno)
            return tracer

        sys.settrace(tracer)
        try:
            func(a)
        finally:
            sys.settrace(None)
        return seen

    assert lines(compiled) == lines(plain["go_fast"])


WARNS = """
import numpy as np

def f(a):
    t = 0.0
    for i in range(a.shape[0]):
        t += np.log(a[i])
    return t

def g(a):
    t = np.float64(1.0)
    for i in range(a.shape[0]):
        t = t * np.exp(a[i])
    return t
"""


@pytest.mark.parametrize(
    "name, values",
    [
        ("f", [1.0, 2.0, 0.0, 3.0]),
        ("f", [1.0, -1.0, 2.0]),
        ("f", [2.0, 3.0]),
        ("g", [1.0, 700.0, 10.0]),
        ("g", [300.0, 300.0, 300.0]),
        ("g", [-800.0, 1.0]),
    ],
)
@pytest.mark.parametrize("errors", ["warn", "raise", "ignore"])
def test_floating_point_exceptions_warn_or_raise_as_in_the_interpreter(name, values, errors):
    plain, jit = namespace(WARNS), namespace(WARNS)
    compiled = rjit.jit(jit[name])
    a = np.array(values)
    compiled(np.array([1.0, 2.0]))

    def run(func):
        with warnings.catch_warnings(record=True) as caught, np.errstate(all=errors):
            warnings.simplefilter("always")
            got = outcome(func, (a,))
        return got, [(w.category, str(w.message), w.lineno) for w in caught]

    for _ in range(2):
        assert run(compiled) == run(plain[name])


def test_results_of_every_compiled_ufunc_are_the_interpreters():
    names = ["tanh", "sqrt", "exp", "log", "sin", "cos", "tan", "arctan", "arcsinh", "log1p", "expm1", "cbrt", "floor", "rint", "fabs"]
    source = "import numpy as np\n" + "".join(
        f"def f_{n}(a):\n    t = 0.0\n    for i in range(a.shape[0]):\n        t += np.{n}(a[i])\n    return t\n" for n in names
    )
    plain, jit = namespace(source), namespace(source)
    rng = np.random.default_rng(5)
    a = np.concatenate([rng.uniform(0.0, 10.0, 200), rng.uniform(0.0, 1e-3, 50), np.arange(1.0, 30.0)])
    for n in names:
        compiled = rjit.jit(jit[f"f_{n}"])
        for _ in range(2):
            with np.errstate(all="ignore"):
                got, want = compiled(a), plain[f"f_{n}"](a)
            assert type(got) is type(want)
            assert np.float64(got).tobytes() == np.float64(want).tobytes(), n


UNBATCHED = """
import numpy as np

def f(a, out):
    for i in range(a.shape[0]):
        out[i] = np.log(a[i]) + 1.0
    return out
"""


@pytest.mark.parametrize("at", [0, 3, 9])
@pytest.mark.parametrize("errors", ["warn", "raise"])
def test_a_ufunc_call_in_a_loop_that_stores_warns_as_in_the_interpreter(at, errors):
    # A loop that stores is not batched: each call's check is merged with the next one.
    plain, jit = namespace(UNBATCHED), namespace(UNBATCHED)
    a = np.linspace(1.0, 3.0, 10)
    ir = hir(jit, "f", (a, np.zeros(10)))
    assert "UfuncCall" in ir and "UfuncBatched" not in ir, ir
    compiled = rjit.jit(jit["f"])
    compiled(a, np.zeros(10))
    a[at] = 0.0

    def run(func):
        out = np.zeros(10)
        with warnings.catch_warnings(record=True) as caught, np.errstate(all=errors):
            warnings.simplefilter("always")
            got = outcome(func, (a, out))
        return got, out.tobytes(), [(w.category, str(w.message), w.lineno) for w in caught]

    for _ in range(2):
        assert run(compiled) == run(plain["f"])
