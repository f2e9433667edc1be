"""A NumPy ufunc on a number (`np.tanh(a[i])`) calls NumPy's own inner loop, which runs no Python
code: the eval-breaker and tracing checks the interpreter makes after a call are left to the
next ones (the loop's back-edge), as after a builtin known to run no Python code. A signal is
still served, at the back-edge, and results stay the interpreter's."""

from __future__ import annotations

import signal

import pytest

np = pytest.importorskip("numpy")

import rjit
from rjit import _rjit
from test_compiled import make_function, outcome

SOURCE = """
def f(a):
    t = 0.0
    for i in range(a.shape[0]):
        t += np.tanh(a[i])
    return t
"""


def test_no_checks_between_the_ufunc_call_and_the_add():
    f = make_function(SOURCE, "f", {"np": np})
    ir = _rjit.dump_ir(f.__code__, (np.arange(4.0),), f.__globals__).split("lir ")[0].split("HIR after")[-1]
    call = "UfuncBatched" if "UfuncBatched" in ir else "UfuncCall"  # (batched: `hir::ufunc_batch`)
    between = ir[ir.index(call): ir.index("FloatAdd")]
    assert "CheckEvalBreaker" not in between and "CheckTracing" not in between, ir
    # The back-edge's check is still there.
    assert "CheckEvalBreaker" in ir[ir.index("FloatAdd"):], ir


def test_a_signal_during_ufunc_calls_is_served():
    handled = []
    plain = make_function(SOURCE, "f", {"np": np})
    compiled = rjit.jit(make_function(SOURCE, "f", {"np": np}))
    a = np.linspace(-3.0, 3.0, 400_000)
    compiled(a[:5])
    previous = signal.signal(signal.SIGALRM, lambda *_: handled.append(1))
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.001)
        got = outcome(compiled, (a,))
        signal.setitimer(signal.ITIMER_REAL, 0)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert got == outcome(plain, (a,))
    assert handled
