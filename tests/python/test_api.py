"""The module-level API: version, enable/disable/enabled, threshold validation, stats()."""

import importlib.metadata

import pytest

import rjit
from conftest import make_function


STATS_KEYS = {
    "enabled",
    "threshold",
    "functions_seen",
    "functions_alive",
    "compiled",
    "compile_time_us",
    "code_bytes",
    "declined",
    "declined_by_reason",
    "declined_by_opcode",
    "specialised",
    "deopts",
    "deopts_by_reason",
    "despecialised",
    "recompilations",
    "code_memory_in_use",
}


def test_version_is_a_nonempty_str():
    assert isinstance(rjit.__version__, str)
    assert rjit.__version__.strip()


def test_version_matches_installed_distribution():
    assert rjit.__version__ == importlib.metadata.version("rjit")


def test_all_names_exist():
    for name in rjit.__all__:
        assert hasattr(rjit, name), name


def test_rjit_is_disabled_by_default_in_the_test_process():
    assert rjit.enabled() is False


def test_enable_turns_on_and_disable_turns_off():
    rjit.enable()
    assert rjit.enabled() is True
    rjit.disable()
    assert rjit.enabled() is False


def test_enable_returns_none():
    assert rjit.enable() is None


def test_enable_is_idempotent():
    rjit.enable()
    rjit.enable()
    assert rjit.enabled()
    rjit.disable()  # no nesting: one disable undoes any number of enables
    assert not rjit.enabled()


def test_disable_is_idempotent():
    rjit.disable()
    rjit.disable()
    assert not rjit.enabled()
    rjit.enable()
    rjit.disable()
    rjit.disable()
    assert not rjit.enabled()


def test_negative_threshold_is_a_valueerror():
    with pytest.raises(ValueError, match="threshold"):
        rjit.enable(threshold=-1)


def test_rejected_threshold_leaves_rjit_disabled_and_threshold_unchanged():
    before = rjit.stats()["threshold"]
    with pytest.raises(ValueError):
        rjit.enable(threshold=-5)
    assert not rjit.enabled()
    assert rjit.stats()["threshold"] == before


@pytest.mark.parametrize("bad", ["x", 1.5, True, [3], b"3"])
def test_non_int_threshold_is_a_typeerror(bad):
    with pytest.raises(TypeError, match="threshold"):
        rjit.enable(threshold=bad)
    assert not rjit.enabled()


def test_enable_threshold_sets_stats_threshold():
    rjit.enable(threshold=37)
    assert rjit.stats()["threshold"] == 37
    rjit.enable(threshold=0)
    assert rjit.stats()["threshold"] == 0


def test_enable_without_threshold_keeps_the_current_one():
    rjit.enable(threshold=41)
    rjit.disable()
    rjit.enable()
    assert rjit.stats()["threshold"] == 41


def test_huge_threshold_is_accepted_and_clamped():
    rjit.enable(threshold=10**30)
    assert rjit.stats()["threshold"] == 2**64 - 1


def test_stats_has_exactly_the_documented_keys():
    assert set(rjit.stats()) == STATS_KEYS


def test_stats_value_types():
    s = rjit.stats()
    assert isinstance(s["enabled"], bool)
    for key in ("threshold", "functions_seen", "functions_alive", "compiled", "code_bytes", "declined",
                "specialised", "deopts", "despecialised"):
        assert isinstance(s[key], int) and not isinstance(s[key], bool), key
        assert s[key] >= 0, key
    assert isinstance(s["compile_time_us"], float)
    assert s["compile_time_us"] >= 0.0
    assert isinstance(s["declined_by_reason"], dict)
    assert s["declined"] == sum(s["declined_by_reason"].values())
    assert s["functions_alive"] <= s["functions_seen"]


def test_stats_enabled_mirrors_enabled():
    assert rjit.stats()["enabled"] is False
    rjit.enable()
    assert rjit.stats()["enabled"] is True
    rjit.disable()
    assert rjit.stats()["enabled"] is False


def test_stats_returns_a_fresh_dict_each_time():
    s = rjit.stats()
    s["threshold"] = -1
    s["declined_by_reason"]["made up"] = 5
    again = rjit.stats()
    assert again["threshold"] != -1
    assert "made up" not in again["declined_by_reason"]


def test_functions_seen_and_alive_grow_when_a_new_function_runs_under_enable():
    f = make_function("def f(x): return x + 1")
    before = rjit.stats()
    rjit.enable(threshold=1000)
    f(1)
    rjit.disable()
    after = rjit.stats()
    # rjit.stats() itself may be seen for the first time too: at least f is new.
    assert after["functions_seen"] >= before["functions_seen"] + 1
    assert after["functions_alive"] >= before["functions_alive"] + 1


def test_functions_seen_does_not_grow_while_disabled():
    f = make_function("def f(x): return x + 1")
    rjit.stats()  # the same calls as below, so nothing in rjit is seen for the first time
    before = rjit.stats()["functions_seen"]
    for _ in range(10):
        f(1)
    assert rjit.stats()["functions_seen"] == before


# Declined by design: it has a match statement, which the compiler does not handle yet.
READS_LOCALS = """
    def f(x):
        match ():  # MATCH_SEQUENCE: not compiled yet, so rjit declines this function
            case (): pass
        y = x * 2
        return y
"""


def counters_around(func, *args, times=10):
    """rjit.stats() before and after ``times`` calls of ``func(*args)`` with threshold 3, and
    the results. An enable/disable cycle with threshold 0 runs first so that rjit's own Python
    functions (disable, ...) are settled before the snapshot."""
    rjit.enable(threshold=0)
    rjit.disable()
    before = rjit.stats()
    rjit.enable(threshold=3)
    results = []
    for _ in range(times):  # no comprehension: it would be one more function (with free variables)
        results.append(func(*args))
    rjit.disable()
    return before, rjit.stats(), results


def test_compiled_counts_move_by_one_when_a_function_gets_hot():
    f = make_function("def f(x): return x * 2")
    before, after, results = counters_around(f, 2)
    assert results == [4] * 10
    info = rjit.info(f)
    assert info.state == "compiled"
    assert after["compiled"] + after["declined"] == before["compiled"] + before["declined"] + 1
    assert after["compiled"] == before["compiled"] + 1
    assert after["declined"] == before["declined"]
    assert after["declined_by_reason"] == before["declined_by_reason"]
    assert after["code_bytes"] == before["code_bytes"] + info.code_size
    assert after["compile_time_us"] > before["compile_time_us"]


def test_declined_counts_move_by_one_when_a_function_gets_hot():
    f = make_function(READS_LOCALS)
    before, after, results = counters_around(f, 2)
    assert results == [4] * 10
    info = rjit.info(f)
    assert info.state == "declined"
    assert "MATCH_SEQUENCE" in info.reason
    assert after["compiled"] + after["declined"] == before["compiled"] + before["declined"] + 1
    assert after["declined"] == before["declined"] + 1
    assert after["declined_by_reason"][info.reason] == before["declined_by_reason"].get(info.reason, 0) + 1
    assert after["compiled"] == before["compiled"]
    assert after["code_bytes"] == before["code_bytes"]
    assert after["compile_time_us"] == before["compile_time_us"]


def test_compiling_a_function_records_its_code_size_and_compile_time():
    f = make_function("def f(): return 1")
    before = rjit.stats()
    rjit.enable(threshold=0)
    results = [f(), f()]
    rjit.disable()
    after = rjit.stats()
    info = rjit.info(f)
    assert results == [1, 1]
    assert info.compiled is True
    assert info.state == "compiled"
    assert info.reason is None
    assert isinstance(info.code_size, int) and info.code_size > 0
    assert isinstance(info.compile_time_us, float) and info.compile_time_us > 0.0
    # rjit's own Python functions may be compiled in the same window: at least f's share.
    assert after["compiled"] >= before["compiled"] + 1
    assert after["code_bytes"] >= before["code_bytes"] + info.code_size
    assert after["compile_time_us"] >= before["compile_time_us"] + info.compile_time_us * 0.999


def test_declined_function_has_no_code_size_and_no_compile_time():
    f = make_function(READS_LOCALS)
    rjit.enable(threshold=0)
    assert f(5) == 10
    rjit.disable()
    info = rjit.info(f)
    assert info.state == "declined"
    assert info.compiled is False
    assert info.code_size is None
    assert info.compile_time_us is None
