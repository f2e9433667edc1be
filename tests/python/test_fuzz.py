"""The differential fuzzer (tests/fuzz) in CI: a fixed-seed batch of random programs, each run
plain and under rjit (compiled at its first call or after a warm-up, with argument types that
change between calls), must agree on every outcome; and the harness itself must notice a
difference, a crash and a hang."""

from __future__ import annotations

import json
import os
import sys
import textwrap

import pytest

FUZZ_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fuzz")
sys.path.insert(0, FUZZ_DIR)

import gen  # noqa: E402
from conftest import gate_note  # noqa: E402
import run as fuzz_run  # noqa: E402

# CI's batch: 5000 programs (about 40 s on 2 cores).
SEED = 1
COUNT = 5000


def test_fixed_seed_batch_agrees_plain_and_compiled(tmp_path):
    from conftest import run_python

    out = tmp_path / "failures"
    totals_file = tmp_path / "totals.json"
    proc = run_python(os.path.join(FUZZ_DIR, "run.py"), "--seed", str(SEED), "--count", str(COUNT),
                      "--jobs", "2", "--out", str(out), "--json", str(totals_file), timeout=1200)
    report = proc.stdout[-6000:] + proc.stderr[-3000:]
    assert totals_file.exists(), report
    totals = json.loads(totals_file.read_text())
    gate_note(proc.stdout.splitlines()[-1])
    assert totals["programs"] == COUNT, report
    assert (totals["diff"], totals["crash"], totals["hang"]) == (0, 0, 0), report
    assert proc.returncode == 0, report
    # The programs really ran compiled, and left compiled code (types change between calls).
    assert totals["compiled"] >= COUNT // 2, totals
    assert totals["deopts"] >= COUNT // 2, totals


def test_programs_are_reproducible_and_varied():
    a, b = gen.generate(SEED, 17), gen.generate(SEED, 17)
    assert (a.source, a.calls, a.threshold) == (b.source, b.calls, b.threshold)
    programs = [gen.generate(SEED, i) for i in range(300)]
    text = "\n".join(p.source for p in programs)
    for construct in ("for ", "while ", "break", "continue", "return ", "try:", "except", "finally:", "raise ",
                      "h0(", "arr[", "2**64", "float('nan')", "-0.0", "True"):
        assert construct in text, construct
    calls = [arg for p in programs for call in p.calls for arg in call]
    for dtype in gen.DTYPES:
        assert any(f"dtype='{dtype}'" in arg or f"astype('{dtype}')" in arg for arg in calls), dtype
    # Argument types change between calls in most programs (deopts and entry guard misses).
    changing = sum(1 for p in programs if len({tuple(c) for c in p.calls}) > 1)
    assert changing > 250
    for p in programs:
        compile(p.source, p.name(), "exec")


def test_the_check_reports_a_difference():
    # rjit.enabled() is True only in the compiled run: a program whose value depends on it.
    source = textwrap.dedent("""
        import rjit
        def f(a):
            return a + rjit.enabled()
    """)
    diffs = fuzz_run.check_program(source, [["1"], ["2.5"]], 0, "self-test")
    assert [d["call"] for d in diffs] == [0, 1]
    assert diffs[0]["plain"]["value"] == ("builtins.int", "1")
    assert diffs[0]["rjit"]["value"] == ("builtins.int", "2")
    assert fuzz_run.check_program("def f(a):\n    return -a\n", [["1"], ["-0.0"]], 0, "same") == []


def test_the_check_compares_exceptions_and_mutated_arrays():
    source = textwrap.dedent("""
        import rjit
        def f(arr):
            arr[0] = 7 if rjit.enabled() else 8
            if rjit.enabled():
                raise KeyError(1)
            raise KeyError(2)
    """)
    diffs = fuzz_run.check_program(source, [["np.zeros(3)"]], 0, "self-test")
    assert len(diffs) == 1
    plain, jitted = diffs[0]["plain"], diffs[0]["rjit"]
    assert plain["raise"] == jitted["raise"] == "KeyError"
    assert plain["message"] != jitted["message"]
    assert plain["args_after"] != jitted["args_after"]


@pytest.mark.parametrize("kind", ["crash", "hang"])
def test_a_crash_or_hang_in_the_child_is_caught_and_the_rest_still_run(tmp_path, kind):
    body = "import ctypes\n    ctypes.string_at(0)" if kind == "crash" else "while True:\n        pass"
    bad = gen.Program(0, 1, f"def f():\n    {body}\n", [[]], 0)
    good = [gen.Program(0, i, "def f():\n    return 1\n", [[]], 0) for i in (0, 2, 3)]
    results, _ = fuzz_run.run_batch([good[0], bad, *good[1:]], timeout=5, tmp_dir=str(tmp_path))
    assert results[1][0] == kind
    assert [results[i][0] for i in (0, 2, 3)] == ["ok", "ok", "ok"]
    path = fuzz_run.save_failure(str(tmp_path / "saved"), bad, kind, results[1][1])
    ns: dict = {}
    exec(compile(open(path).read(), path, "exec"), ns)  # noqa: S102
    assert ns["SOURCE"] == bad.source and ns["CALLS"] == bad.calls
