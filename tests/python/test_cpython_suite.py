"""CPython's own regression tests (``python -m test``) pass under rjit exactly as without it.

Run only these with ``-m cpython_suite``, or skip them with ``-m "not cpython_suite"``.
"""

import collections
import signal
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET

import pytest

from conftest import assert_ok, child_env, gate_note, run_code, run_python

# Numbers, containers, control flow, exceptions, generators, scoping, tracing, threads, signals,
# GC, and much of the standard library: every function they run is compiled at its first call
# under RJIT_ON.
MODULES = [
    "test_int",
    "test_float",
    "test_math",
    "test_list",
    "test_dict",
    "test_set",
    "test_range",
    "test_builtin",
    "test_scope",
    "test_grammar",
    "test_exceptions",
    "test_generators",
    "test_sys_settrace",
    "test_traceback",
    "test_with",
    "test_class",
    "test_descr",
    "test_functools",
    "test_itertools",
    "test_statistics",
    "test_fractions",
    "test_json",
    "test_threading",
    "test_signal",
    "test_gc",
    "test_weakref",
    "test_bool",
    "test_tuple",
    "test_string",
    "test_unicode",
    "test_bytes",
    "test_bisect",
    "test_heapq",
    "test_collections",
    "test_contextlib",
    "test_enum",
    "test_dataclasses",
    "test_operator",
    "test_copy",
    "test_pickle",
    "test_re",
    "test_random",
    "test_decimal",
    "test_complex",
    "test_long",
    "test_unittest",
    "test_typing",
    "test_abc",
    "test_iter",
    "test_sort",
    "test_deque",
    "test_defaultdict",
    "test_ordered_dict",
    "test_userdict",
    "test_userlist",
    "test_call",
    "test_keywordonlyarg",
    "test_positional_only_arg",
    "test_unpack",
    "test_unpack_ex",
    "test_raise",
    "test_opcodes",
    "test_dictviews",
    "test_textwrap",
    "test_difflib",
    "test_argparse",
    "test_types",
    "test_inspect",
    "test_pprint",
    "test_csv",
    "test_base64",
]

RJIT_ON = {"RJIT": "1", "RJIT_THRESHOLD": "0"}

pytestmark = pytest.mark.cpython_suite


def environment_exclusions():
    """``-i`` options for CPython tests that fail in this environment for reasons that have
    nothing to do with rjit, so they also fail without it (checked by the plain run)."""
    options = []
    # test_threading.test_import_from_another_thread requires that `python -I` starts without
    # importing threading. A third-party .pth in site-packages (e.g. one importing certifi)
    # can import it at start-up; rjit's own .pth imports nothing when RJIT is unset and rjit
    # itself does not import threading.
    proc = assert_ok(run_code("import sys; print('threading' in sys.modules)"))
    if proc.stdout.strip() == "True":
        options += ["-i", "test_import_from_another_thread"]
    return options


def _default_sigint():
    # A shell starts background jobs with SIGINT ignored, and an interpreter that starts so
    # never raises KeyboardInterrupt: test_signal, test_threading and test_generators then
    # fail, with or without rjit. The suite gets the default disposition back.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def run_regrtest(env, junit_xml):
    args = [sys.executable, "-m", "test", "-j2", "--junit-xml", str(junit_xml), *environment_exclusions(), *MODULES]
    return subprocess.run(args, env=child_env(**env), capture_output=True, text=True, timeout=900,
                          preexec_fn=_default_sigint)


def check_success(proc):
    tail = proc.stdout[-6000:] + "\n--- stderr ---\n" + proc.stderr[-3000:]
    assert proc.returncode == 0, tail
    assert "Tests result: SUCCESS" in proc.stdout or "Result: SUCCESS" in proc.stdout, tail
    assert f"All {len(MODULES)} tests OK." in proc.stdout, tail


def module_of(case):
    """The module a test case name gives: ``test.test_int.IntTestCases.test_basic`` ->
    ``test_int``; ``unittest.test.test_case.Test.test_x`` -> ``test_unittest``."""
    parts = case.get("name", "").split(".")
    return parts[1] if parts[0] == "test" and len(parts) > 1 else "test_" + parts[0]


def case_counts(junit_xml):
    """Test cases per module from regrtest's JUnit XML: {module: Counter(passed/skipped/failed)}.
    Each <testsuite> is one module's run; its module is the one most of its test case names
    give (a few, such as doctests of builtins, name none)."""
    counts = {}
    for suite in ET.parse(junit_xml).getroot().iter("testsuite"):
        cases = list(suite.iter("testcase"))
        named = collections.Counter(m for m in map(module_of, cases) if m in MODULES)
        module = named.most_common(1)[0][0] if named else "?"
        for case in cases:
            tags = {child.tag for child in case}
            if tags & {"failure", "error"}:
                outcome = "failed"
            elif "skipped" in tags or case.get("status") == "notrun" or case.get("result") == "skipped":
                outcome = "skipped"
            else:
                outcome = "passed"
            counts.setdefault(module, collections.Counter())[outcome] += 1
    return counts


def summary(counts):
    total = collections.Counter()
    for c in counts.values():
        total.update(c)
    return f"{len(counts)} modules, {total['passed']} test cases passed, {total['skipped']} skipped, {total['failed']} failed"


def test_rjit_is_active_in_a_child_with_the_suites_environment():
    proc = assert_ok(run_code("""
        import rjit
        def f():
            return 1
        f()
        s = rjit.stats()
        print(rjit.enabled(), s["threshold"], s["functions_seen"] > 0, s["compiled"] > 0, rjit.info(f).state)
    """, env=RJIT_ON))
    assert proc.stdout.split() == ["True", "0", "True", "True", "compiled"]


ACTIVE_CHECK = """
    import sys
    import unittest

    class RjitActive(unittest.TestCase):
        def test_rjit_enabled_in_the_regrtest_worker(self):
            self.assertIn("rjit", sys.modules)
            import rjit
            self.assertTrue(rjit.enabled())
            self.assertEqual(rjit.stats()["threshold"], 0)

            def f():
                return 1

            self.assertEqual(f(), 1)
            self.assertEqual(rjit.info(f).state, "compiled")
"""


def test_rjit_is_active_inside_regrtest_workers(tmp_path):
    (tmp_path / "test_rjit_active.py").write_text(textwrap.dedent(ACTIVE_CHECK))
    proc = run_python("-m", "test", "-j2", "--testdir", str(tmp_path), "test_rjit_active", env=RJIT_ON,
                      timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "SUCCESS" in proc.stdout
    assert "1 test OK." in proc.stdout


def test_cpython_tests_pass_under_rjit_as_without_it(tmp_path):
    """The modules run twice (each run two at a time): plain, then with every function compiled
    at its first call. Both pass every module, and run the same test cases with the same
    outcomes, module by module."""
    plain_proc = run_regrtest({}, tmp_path / "plain.xml")
    check_success(plain_proc)
    rjit_proc = run_regrtest(RJIT_ON, tmp_path / "rjit.xml")
    check_success(rjit_proc)
    plain, jitted = case_counts(tmp_path / "plain.xml"), case_counts(tmp_path / "rjit.xml")
    gate_note(f"CPython's tests ({len(MODULES)} modules), plain: {summary(plain)}; "
              f"RJIT=1 RJIT_THRESHOLD=0: {summary(jitted)}")
    assert sorted(plain) == sorted(jitted) == sorted(MODULES)
    for module in MODULES:
        assert jitted[module]["failed"] == plain[module]["failed"] == 0, module
        assert jitted[module]["passed"] == plain[module]["passed"], (module, plain[module], jitted[module])
        assert plain[module]["passed"] > 0, module
