"""Start-up configuration: the ``.pth`` autoloader, ``RJIT`` and ``RJIT_THRESHOLD``. Every test
runs a child interpreter (run_code gives it os.environ without any RJIT* variable, plus the
overrides)."""

import json

import pytest

from conftest import assert_ok, run_code

REPORT = """
    import json, sys
    loaded_at_startup = "rjit" in sys.modules
    import rjit
    print(json.dumps({
        "loaded_at_startup": loaded_at_startup,
        "enabled": rjit.enabled(),
        "env_mode": rjit._rjit.env_mode(),
        "stats": rjit.stats(),
    }))
"""


def report(env):
    proc = assert_ok(run_code(REPORT, env=env))
    return json.loads(proc.stdout), proc


@pytest.fixture(scope="module")
def default_threshold():
    """The threshold a child gets with no RJIT* variable set."""
    data, _ = report({})
    return data["stats"]["threshold"]


def test_without_rjit_the_pth_does_not_import_rjit():
    data, proc = report({})
    assert data["loaded_at_startup"] is False
    assert data["enabled"] is False
    assert proc.stderr == ""


def test_empty_rjit_is_like_unset():
    data, _ = report({"RJIT": ""})
    assert data["loaded_at_startup"] is False
    assert data["enabled"] is False


def test_rjit_1_loads_and_enables_at_startup():
    proc = assert_ok(run_code("import sys; print('rjit' in sys.modules)", env={"RJIT": "1"}))
    assert proc.stdout.strip() == "True"
    assert proc.stderr == ""
    data, _ = report({"RJIT": "1"})
    assert data["loaded_at_startup"] is True
    assert data["enabled"] is True
    assert data["stats"]["enabled"] is True


@pytest.mark.parametrize("value", ["on", "true", "yes", " 1 ", "TRUE"])
def test_other_spellings_of_on(value):
    data, _ = report({"RJIT": value})
    assert data["loaded_at_startup"] is True
    assert data["enabled"] is True


def test_rjit_1_counts_the_programs_functions():
    proc = assert_ok(run_code("""
        import rjit
        def f(x):
            return x + 1
        for i in range(7):
            f(i)
        print(rjit.info(f).calls, rjit.stats()["functions_seen"] > 0)
    """, env={"RJIT": "1"}))
    assert proc.stdout.split() == ["7", "True"]


def test_rjit_1_program_can_disable():
    proc = assert_ok(run_code("import rjit; rjit.disable(); print(rjit.enabled())", env={"RJIT": "1"}))
    assert proc.stdout.strip() == "False"


def test_rjit_1_same_output_as_plain():
    program = """
        def fib(n):
            return n if n < 2 else fib(n - 1) + fib(n - 2)
        def gen(n):
            yield from range(n)
        print(fib(20), sum(gen(100)), [x * x for x in range(5)], {1: 2.5})
    """
    plain = assert_ok(run_code(program))
    jit = assert_ok(run_code(program, env={"RJIT": "1", "RJIT_THRESHOLD": "0"}))
    assert jit.stdout == plain.stdout
    assert jit.stderr == plain.stderr == ""


def test_rjit_0_loads_rjit_but_enable_does_nothing():
    proc = assert_ok(run_code("""
        import sys
        print("rjit" in sys.modules)
        import rjit
        rjit.enable()
        print(rjit.enabled())
        rjit.enable(threshold=0)
        print(rjit.enabled(), rjit.stats()["enabled"], rjit._rjit.env_mode())
    """, env={"RJIT": "0"}))
    assert proc.stdout.split() == ["True", "False", "False", "False", "off"]


def test_rjit_0_jit_functions_run_correctly_and_uncounted():
    proc = assert_ok(run_code("""
        import rjit
        @rjit.jit
        def f(x, y=2):
            return x ** y
        @rjit.njit(cache=True)
        def g(xs):
            return sorted(xs)
        print(f(3), f(2, y=10), g([3, 1, 2]))
        info = rjit.info(f)
        print(info.calls, info.state)
    """, env={"RJIT": "0"}))
    lines = proc.stdout.splitlines()
    assert lines[0] == "9 1024 [1, 2, 3]"
    assert lines[1] == "0 cold"


@pytest.mark.parametrize("value", ["off", "false", "no", "FALSE"])
def test_other_spellings_of_off(value):
    data, _ = report({"RJIT": value})
    assert data["enabled"] is False
    assert data["env_mode"] == "off"


def test_unknown_rjit_value_warns_and_is_ignored():
    proc = assert_ok(run_code("import rjit; print(rjit.enabled(), rjit._rjit.env_mode())", env={"RJIT": "maybe"}))
    assert proc.stdout.split() == ["False", "default"]
    assert "RuntimeWarning" in proc.stderr
    assert "maybe" in proc.stderr


def test_rjit_1_with_threshold_0_compiles_at_the_first_call():
    proc = assert_ok(run_code("""
        import rjit
        def f():
            return 1
        def g(x):
            match ():  # MATCH_SEQUENCE: not compiled yet, so rjit declines this function
                case (): pass
            return x
        print(rjit.info(f).state)
        print(f(), g(2))
        info = rjit.info(f)
        print(info.state, info.calls, info.reason, info.code_size > 0)
        info = rjit.info(g)
        print(info.state, info.calls, "MATCH_SEQUENCE" in info.reason)
        print(rjit.stats()["compiled"] > 0, rjit.stats()["code_bytes"] > 0)
    """, env={"RJIT": "1", "RJIT_THRESHOLD": "0"}))
    assert proc.stdout.splitlines() == ["cold", "1 2", "compiled 1 None True", "declined 1 True", "True True"]


def test_rjit_threshold_sets_the_threshold():
    data, _ = report({"RJIT_THRESHOLD": "7"})
    assert data["stats"]["threshold"] == 7
    assert data["enabled"] is False


def test_rjit_threshold_with_rjit_1():
    data, _ = report({"RJIT": "1", "RJIT_THRESHOLD": "7"})
    assert data["stats"]["threshold"] == 7
    assert data["enabled"] is True


def test_rjit_threshold_7_makes_a_function_hot_after_7_calls():
    proc = assert_ok(run_code("""
        import rjit
        def f():
            return 1
        for _ in range(7):
            f()
        print(rjit.info(f).state)
        f()
        print(rjit.info(f).state)
    """, env={"RJIT": "1", "RJIT_THRESHOLD": "7"}))
    assert proc.stdout.split() == ["cold", "compiled"]


def test_enable_threshold_overrides_rjit_threshold():
    proc = assert_ok(run_code("import rjit; rjit.enable(threshold=3); print(rjit.stats()['threshold'])",
                              env={"RJIT_THRESHOLD": "7"}))
    assert proc.stdout.strip() == "3"


@pytest.mark.parametrize("bad", ["abc", "-1", "1.5", "1e3"])
def test_bad_rjit_threshold_warns_and_uses_the_default(bad, default_threshold):
    proc = assert_ok(run_code("import rjit; print(rjit.stats()['threshold'])", env={"RJIT_THRESHOLD": bad}))
    assert int(proc.stdout) == default_threshold
    assert "RuntimeWarning" in proc.stderr
    assert "RJIT_THRESHOLD" in proc.stderr
    assert bad in proc.stderr


def test_bad_rjit_threshold_at_startup_warns_and_still_enables(default_threshold):
    proc = assert_ok(run_code("import rjit; print(rjit.stats()['threshold'], rjit.enabled())",
                              env={"RJIT": "1", "RJIT_THRESHOLD": "abc"}))
    assert proc.stdout.split() == [str(default_threshold), "True"]
    assert "RuntimeWarning" in proc.stderr
    assert "RJIT_THRESHOLD" in proc.stderr


def test_bad_rjit_threshold_warning_is_a_python_warning():
    proc = assert_ok(run_code("""
        import warnings
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            import rjit
        print([(w.category.__name__, "RJIT_THRESHOLD" in str(w.message)) for w in caught])
    """, env={"RJIT_THRESHOLD": "abc"}))
    assert proc.stdout.strip() == "[('RuntimeWarning', True)]"


def test_empty_rjit_threshold_is_the_default_without_warning(default_threshold):
    proc = assert_ok(run_code("import rjit; print(rjit.stats()['threshold'])", env={"RJIT_THRESHOLD": ""}))
    assert int(proc.stdout) == default_threshold
    assert proc.stderr == ""


def test_default_threshold_is_positive(default_threshold):
    assert default_threshold > 0


def test_rjit_threshold_beyond_64_bits_is_clamped_like_enable_does():
    # enable(threshold=10**30) is accepted and clamped to the largest threshold ("never");
    # RJIT_THRESHOLD=10**30 is just as much a non-negative integer and must mean the same.
    in_code = assert_ok(run_code("import rjit; rjit.enable(threshold=10**30); print(rjit.stats()['threshold'])"))
    from_env = assert_ok(run_code("import rjit; print(rjit.stats()['threshold'])",
                                  env={"RJIT_THRESHOLD": str(10**30)}))
    assert from_env.stdout == in_code.stdout == f"{2**64 - 1}\n"
    assert from_env.stderr == ""
