"""NumPy's own tests under rjit: three modules of NumPy's core test suite (indexing, scalar
arithmetic, ufuncs) run plain and with every function compiled at its first call
(`RJIT=1 RJIT_THRESHOLD=0`); under rjit the same tests must pass. They found two bugs in
rjit that its own tests had missed (a machine bool stored raw into a frame slot; a constant
call argument one reference short)."""

from __future__ import annotations

import re

import pytest

pytest.importorskip("numpy")
pytest.importorskip("hypothesis")  # NumPy's test modules import it

from conftest import run_python

MODULES = ["numpy._core.tests.test_indexing", "numpy._core.tests.test_scalarmath", "numpy._core.tests.test_umath"]


def run_numpy_tests(env):
    proc = run_python(
        "-m", "pytest", "-q", "-rf", "-p", "no:cacheprovider", "--pyargs", *MODULES,
        env=env, cwd="/", timeout=900,
    )
    out = proc.stdout + proc.stderr
    summary = re.search(r"(\d+) passed", out)
    assert summary, out[-3000:]
    failed = set(re.findall(r"^FAILED (\S+)", out, re.M))
    return int(summary.group(1)), failed, out


def test_numpy_core_tests_pass_under_rjit():
    plain_passed, plain_failed, _ = run_numpy_tests({})
    rjit_passed, rjit_failed, out = run_numpy_tests({"RJIT": "1", "RJIT_THRESHOLD": "0"})
    assert rjit_failed <= plain_failed, (rjit_failed - plain_failed, out[-3000:])
    assert rjit_passed == plain_passed, out[-3000:]
    assert plain_passed > 5000
    print(f"\nNumPy core tests: {plain_passed} passed plain, {rjit_passed} under RJIT=1 RJIT_THRESHOLD=0")
