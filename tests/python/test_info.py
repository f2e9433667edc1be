"""``rjit.info(f)`` and ``@rjit.nojit``."""

import dataclasses
import dis

import pytest

import rjit
from conftest import make_function


FIELDS = [
    "name", "qualname", "filename", "firstlineno", "compiled", "state", "reason", "calls",
    "hot_after", "has_loop", "jit", "compile_time_us", "code_size", "specializations", "side_exits",
    "native_calls", "interpreted_calls", "reason_opcode", "reason_line",
]

PLAIN = """
    def plain(a, b):
        c = a + b
        return c * 2
"""

LOOPY = """
    def loopy(n):
        total = 0
        for i in range(n):
            total += i
        return total
"""

WHILE_LOOP = """
    def countdown(n):
        while n > 0:
            n -= 1
        return n
"""

WHILE_NOT_NONE_ONLY = """
    def walk(node):
        while node is not None:
            node = node[1]
        return node
"""

# PLAIN's results from a function rjit declines by design: it has a match statement (not compiled yet).
READS_LOCALS = """
    def reads_locals(a, b):
        match ():  # MATCH_SEQUENCE: not compiled yet, so rjit declines this function
            case (): pass
        c = a + b
        return c * 2
"""

# LOOPY's results, declined (a match statement: not compiled yet).
LOOPY_LOCALS = """
    def loopy_locals(n):
        match ():  # MATCH_SEQUENCE: not compiled yet, so rjit declines this function
            case (): pass
        total = 0
        for i in range(n):
            total += i
        return total
"""

# Declined because the compiler does not handle an opcode yet: a `match` statement.
MATCHER = """
    def matcher(x):
        y = x
        match y:
            case [a, b]:
                return a + b
            case _:
                return -1
"""

WHILE_TRUE = """
    def spin(n):
        while True:
            n -= 1
            if n <= 0:
                break
        return n
"""


def call_enabled(func, times, *args, threshold=None):
    """Calls ``func(*args)`` ``times`` times with rjit enabled, then disables rjit."""
    rjit.enable(threshold=threshold)
    try:
        for _ in range(times):
            func(*args)
    finally:
        rjit.disable()


# ---------------------------------------------------------------------------------------------
# Fields


def test_info_returns_a_functioninfo_with_the_documented_fields():
    info = rjit.info(make_function(PLAIN))
    assert isinstance(info, rjit.FunctionInfo)
    assert [f.name for f in dataclasses.fields(info)] == FIELDS


def test_info_describes_the_code():
    f = make_function(PLAIN)
    info = rjit.info(f)
    assert info.name == "plain"
    assert info.qualname == "plain"
    assert info.filename == f.__code__.co_filename
    assert info.firstlineno == f.__code__.co_firstlineno


def test_info_of_a_never_called_function():
    info = rjit.info(make_function(PLAIN))
    assert info.compiled is False
    assert info.state == "cold"
    assert info.reason is None
    assert info.calls == 0
    assert info.has_loop is False
    assert info.jit is False
    assert info.compile_time_us is None
    assert info.code_size is None
    assert info.specializations == ()
    assert info.side_exits == {}


def test_hot_after_is_known_before_the_first_call():
    # A cold function that rjit has not met yet still gets compiled after `threshold` calls
    # (fewer with a loop): info() should say so, as it does after the first call.
    rjit.enable(threshold=100)
    rjit.disable()
    plain, loopy = make_function(PLAIN), make_function(LOOPY)
    assert rjit.info(plain).hot_after == 100
    assert rjit.info(loopy).hot_after is not None
    assert rjit.info(loopy).hot_after < 100


def test_info_is_frozen():
    info = rjit.info(make_function(PLAIN))
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.calls = 5


def test_info_is_a_snapshot():
    f = make_function(PLAIN)
    call_enabled(f, 2, 1, 2, threshold=1000)
    info = rjit.info(f)
    call_enabled(f, 2, 1, 2)
    assert info.calls == 2
    assert rjit.info(f).calls == 4


# ---------------------------------------------------------------------------------------------
# Counting and state


@pytest.mark.parametrize("times", [1, 7, 50])
def test_calls_counts_calls_under_enable_exactly(times):
    f = make_function(PLAIN)
    call_enabled(f, times, 1, 2, threshold=1000)
    assert rjit.info(f).calls == times


@pytest.mark.parametrize("source, state", [(PLAIN, "compiled"), (READS_LOCALS, "declined")],
                         ids=["compiled", "declined"])
def test_calls_keep_counting_after_the_function_settled(source, state):
    f = make_function(source)
    call_enabled(f, 12, 1, 2, threshold=2)
    info = rjit.info(f)
    assert info.state == state
    assert info.calls == 12


def test_cold_while_calls_do_not_exceed_the_threshold():
    f = make_function(PLAIN)
    call_enabled(f, 5, 1, 2, threshold=5)
    info = rjit.info(f)
    assert info.state == "cold"
    assert info.reason is None
    assert info.hot_after == 5


def test_compiled_once_calls_exceed_the_threshold():
    f = make_function(PLAIN)
    call_enabled(f, 6, 1, 2, threshold=5)
    info = rjit.info(f)
    assert info.state == "compiled"
    assert info.compiled is True
    assert info.reason is None
    assert info.hot_after is None
    assert info.compile_time_us > 0
    assert info.code_size > 0


def test_declined_once_calls_exceed_the_threshold():
    f = make_function(READS_LOCALS)
    call_enabled(f, 5, 1, 2, threshold=5)
    assert rjit.info(f).state == "cold"
    call_enabled(f, 1, 1, 2)
    info = rjit.info(f)
    assert info.state == "declined"
    assert info.compiled is False
    assert info.reason.startswith("MATCH_SEQUENCE at offset")
    assert info.hot_after is None
    assert info.compile_time_us is None
    assert info.code_size is None


def test_threshold_zero_compiles_at_the_first_call():
    f = make_function(PLAIN)
    call_enabled(f, 1, 1, 2, threshold=0)
    info = rjit.info(f)
    assert info.calls == 1
    assert info.state == "compiled"
    assert info.compiled is True
    assert info.reason is None


def test_threshold_zero_declines_an_unsupported_function_at_the_first_call():
    f = make_function(MATCHER)
    call_enabled(f, 1, [3, 4], threshold=0)
    info = rjit.info(f)
    assert info.calls == 1
    assert info.state == "declined"
    assert info.compiled is False
    # The reason names the first opcode the compiler does not handle, its offset and its line
    # (`case [a, b]:`), as dis shows them.
    match = next(i for i in dis.get_instructions(f) if i.opname == "MATCH_SEQUENCE")
    assert match.positions.lineno == f.__code__.co_firstlineno + 3
    assert info.reason == (f"MATCH_SEQUENCE at offset {match.offset} (line {match.positions.lineno}): "
                           "not supported by the compiler yet (a `match` statement)")
    assert f([3, 4]) == 7 and f(5) == -1


@pytest.mark.parametrize("source, state", [(LOOPY, "compiled"), (LOOPY_LOCALS, "declined")],
                         ids=["compiled", "declined"])
def test_settled_function_still_gives_correct_results(source, state):
    f = make_function(source)
    rjit.enable(threshold=0)
    results = []
    for n in range(20):
        results.append(f(n))
    rjit.disable()
    assert rjit.info(f).state == state
    assert results == [sum(range(n)) for n in range(20)]


def test_lowering_the_threshold_makes_a_cold_function_hot_at_its_next_call():
    f = make_function(PLAIN)
    call_enabled(f, 10, 1, 2, threshold=1000)
    assert rjit.info(f).state == "cold"
    call_enabled(f, 1, 1, 2, threshold=5)
    assert rjit.info(f).state == "compiled"


@pytest.mark.parametrize("source", [LOOPY, WHILE_TRUE], ids=["for", "while-true"])
def test_has_loop_for_a_function_with_a_loop(source):
    f = make_function(source)
    assert rjit.info(f).has_loop is True
    call_enabled(f, 1, 3, threshold=1000)
    assert rjit.info(f).has_loop is True


@pytest.mark.parametrize("source, arg", [(WHILE_LOOP, 3), (WHILE_NOT_NONE_ONLY, (1, (2, None)))],
                         ids=["while-condition", "while-is-not-none"])
def test_has_loop_for_a_while_loop_with_a_conditional_back_edge(source, arg):
    # CPython 3.11 closes these loops with POP_JUMP_BACKWARD_IF_TRUE / _IF_NOT_NONE, not
    # JUMP_BACKWARD: they are loops all the same.
    f = make_function(source)
    assert rjit.info(f).has_loop is True
    call_enabled(f, 1, arg, threshold=1000)
    assert rjit.info(f).has_loop is True


def test_has_loop_false_for_straight_line_code():
    f = make_function("""
        def f(x):
            if x:
                return [x, x]
            return None
    """)
    call_enabled(f, 1, 3, threshold=1000)
    assert rjit.info(f).has_loop is False


def test_function_with_a_loop_is_hot_sooner():
    plain, loopy = make_function(PLAIN), make_function(LOOPY)
    call_enabled(plain, 1, 1, 2, threshold=100)
    call_enabled(loopy, 1, 3, threshold=100)
    loop_limit = rjit.info(loopy).hot_after
    assert rjit.info(plain).hot_after == 100
    assert 1 <= loop_limit < 100
    call_enabled(plain, loop_limit, 1, 2)
    call_enabled(loopy, loop_limit, 3)
    assert rjit.info(loopy).state == "compiled"
    assert rjit.info(plain).state == "cold"


def test_jit_function_info_before_and_after_its_first_call():
    f = rjit.jit(make_function(PLAIN))
    info = rjit.info(f)
    assert info.jit is True
    assert info.state == "cold"
    assert info.hot_after == 0
    assert f(1, 2) == 6
    info = rjit.info(f)
    assert info.calls == 1
    assert info.state == "compiled"
    assert info.compiled is True
    assert info.reason is None
    assert info.code_size > 0
    assert f(3, 4) == 14
    assert rjit.info(f).calls == 2


def test_jit_function_compiles_at_first_call_whatever_the_threshold():
    rjit.enable(threshold=10**6)
    f = rjit.jit(make_function(PLAIN))
    f(1, 2)
    rjit.disable()
    assert rjit.info(f).state == "compiled"


def test_jit_function_the_compiler_declines_still_runs():
    f = rjit.jit(make_function(READS_LOCALS))
    assert f(1, 2) == 6
    info = rjit.info(f)
    assert info.jit is True
    assert info.state == "declined"
    assert "MATCH_SEQUENCE" in info.reason
    assert f(3, 4) == 14
    assert rjit.info(f).calls == 2


# ---------------------------------------------------------------------------------------------
# What info() accepts


class Thing:
    def method(self, x):
        return x + 1

    @classmethod
    def cm(cls):
        return cls

    @staticmethod
    def sm():
        return 0

    @rjit.jit
    def jitted(self):
        return self


def test_info_on_a_function_via_the_class():
    assert rjit.info(Thing.method).qualname == "Thing.method"


def test_info_on_a_bound_method_is_the_functions():
    t = Thing()
    call_enabled(t.method, 3, 1, threshold=1000)
    info = rjit.info(t.method)
    assert info.qualname == "Thing.method"
    assert info.calls == rjit.info(Thing.method).calls
    assert info.calls == 3


def test_info_on_classmethod_and_staticmethod_objects():
    assert rjit.info(Thing.__dict__["cm"]).qualname == "Thing.cm"
    assert rjit.info(Thing.__dict__["sm"]).qualname == "Thing.sm"
    assert rjit.info(Thing.cm).qualname == "Thing.cm"  # bound to the class
    assert rjit.info(Thing.sm).qualname == "Thing.sm"  # plain function


def test_info_on_a_code_object():
    f = make_function(PLAIN)
    call_enabled(f, 4, 1, 2, threshold=1000)
    assert rjit.info(f.__code__) == rjit.info(f)
    assert rjit.info(f.__code__).calls == 4


def test_info_on_a_jit_wrapper_and_a_bound_jit_method():
    assert rjit.info(Thing.jitted).jit is True
    assert rjit.info(Thing().jitted).qualname == "Thing.jitted"
    assert rjit.info(Thing().jitted).jit is True


def test_info_on_a_lambda():
    info = rjit.info(lambda: 0)
    assert info.name == "<lambda>"


@pytest.mark.parametrize("obj", [42, "f", len, Thing, None, [].append],
                         ids=["int", "str", "builtin", "class", "None", "builtin-method"])
def test_info_on_a_non_function_is_a_typeerror(obj):
    with pytest.raises(TypeError):
        rjit.info(obj)


# ---------------------------------------------------------------------------------------------
# str() and repr()


def test_str_is_readable():
    f = make_function(PLAIN)
    call_enabled(f, 3, 1, 2, threshold=0)
    info = rjit.info(f)
    text = str(info)
    assert "plain" in text
    assert f"{f.__code__.co_filename}:{f.__code__.co_firstlineno}" in text
    assert "compiled; 3 calls" in text
    assert "not compiled" not in text
    assert "compile time:" in text
    assert f"code size: {info.code_size} bytes" in text
    assert "why:" not in text


def test_str_of_a_declined_function_says_why():
    f = make_function(READS_LOCALS)
    call_enabled(f, 3, 1, 2, threshold=0)
    text = str(rjit.info(f))
    assert "reads_locals" in text
    assert "not compiled (declined); 3 calls" in text
    assert "why: MATCH_SEQUENCE" in text
    assert "compile time" not in text


def test_str_of_a_cold_function_with_a_loop():
    f = make_function(LOOPY)
    call_enabled(f, 1, 3, threshold=1000)
    text = str(rjit.info(f))
    assert "cold" in text
    assert "has a loop" in text
    assert f"after {rjit.info(f).hot_after} calls" in text


def test_repr_shows_the_fields():
    f = make_function(PLAIN)
    text = repr(rjit.info(f))
    assert text.startswith("FunctionInfo(")
    assert "name='plain'" in text
    assert "state='cold'" in text
    assert "calls=0" in text


# ---------------------------------------------------------------------------------------------
# @rjit.nojit


def test_nojit_returns_the_function_itself():
    f = make_function(PLAIN)
    assert rjit.nojit(f) is f


def test_nojit_state_and_reason():
    f = rjit.nojit(make_function(PLAIN))
    info = rjit.info(f)
    assert info.state == "nojit"
    assert "nojit" in info.reason
    assert info.hot_after is None
    assert info.compiled is False


def test_nojit_function_is_never_hot_even_with_threshold_zero():
    f = rjit.nojit(make_function(PLAIN))
    call_enabled(f, 20, 1, 2, threshold=0)
    info = rjit.info(f)
    assert info.state == "nojit"
    assert info.compiled is False
    assert info.hot_after is None
    assert f(1, 2) == 6


def test_nojit_function_adds_nothing_to_compiled_or_declined_stats():
    f = rjit.nojit(make_function(PLAIN))
    rjit.enable(threshold=0)
    rjit.disable()  # everything the enable/disable cycle runs is settled now
    rjit.enable(threshold=0)
    rjit.disable()
    before = rjit.stats()
    rjit.enable(threshold=0)
    for _ in range(5):
        f(1, 2)
    rjit.disable()
    after = rjit.stats()
    assert after["declined"] == before["declined"]
    assert after["compiled"] == before["compiled"]
    assert after["code_bytes"] == before["code_bytes"]


def test_nojit_as_decorator():
    @rjit.nojit
    def f(x):
        return -x

    assert f(3) == -3
    assert type(f).__name__ == "function"


def test_nojit_of_a_jit_function_gives_the_plain_function_never_compiled():
    g = make_function(PLAIN)
    jitted = rjit.jit(g)
    assert rjit.nojit(jitted) is g
    assert jitted(1, 2) == 6
    assert rjit.info(g).state == "nojit"


def test_nojit_of_a_non_function_is_a_typeerror():
    for obj in (42, len, Thing):
        with pytest.raises(TypeError):
            rjit.nojit(obj)
