"""``@rjit.jit`` / ``@rjit.njit``: accepted forms, validation, and a wrapper that behaves
exactly like the function it wraps."""

import functools
import inspect
import pickle
import sys
import threading
import traceback

import pytest

import rjit
from conftest import make_function


def add(a, b=10):
    """Adds two numbers."""
    return a + b


@rjit.jit
def module_level_jitted(x):
    return x * 3


# ---------------------------------------------------------------------------------------------
# Accepted forms


def test_bare_decorator_returns_a_jitfunction():
    f = rjit.jit(make_function("def f(a, b): return a + b"))
    assert isinstance(f, rjit.JitFunction)
    assert f(2, 3) == 5


def test_decorator_with_empty_parentheses():
    @rjit.jit()
    def f(a, b):
        return a - b

    assert isinstance(f, rjit.JitFunction)
    assert f(5, 3) == 2


NUMBA_KEYWORDS = dict(
    nopython=True, nogil=True, cache=True, fastmath=True, parallel=True, boundscheck=False,
    error_model="numpy",
)


def test_decorator_accepts_numbas_keywords_and_keeps_them():
    @rjit.jit(**NUMBA_KEYWORDS)
    def f(x):
        return x / 2

    assert isinstance(f, rjit.JitFunction)
    assert f(3) == 1.5
    assert f.options == NUMBA_KEYWORDS


@pytest.mark.parametrize("kw", [
    {"fastmath": {"nnan", "ninf"}},
    {"parallel": {"prange": True}},
    {"boundscheck": None},
    {"error_model": "python"},
    {"forceobj": True, "looplift": False, "inline": "never", "locals": {}, "debug": False},
])
def test_other_valid_numba_option_values_are_accepted(kw):
    f = rjit.jit(**kw)(make_function("def f(x): return -x"))
    assert f(4) == -4
    assert f.options == kw


def test_signature_string_is_accepted_and_ignored():
    f = rjit.jit("float64(float64)")(make_function("def f(x): return x * 2.0"))
    assert isinstance(f, rjit.JitFunction)
    assert f(1.25) == 2.5
    assert f(3) == 6.0  # ignored: an int still works, as in plain Python


def test_list_of_signatures_is_accepted():
    f = rjit.jit(["int64(int64)", "float64(float64)"], nopython=True)(make_function("def f(x): return x + 1"))
    assert f(1) == 2
    assert f(0.5) == 1.5


def test_njit_sets_nopython():
    @rjit.njit
    def f(x):
        return x + 1

    assert isinstance(f, rjit.JitFunction)
    assert f(1) == 2
    assert f.options.get("nopython") is True


def test_njit_with_keywords():
    @rjit.njit(cache=True)
    def f(x):
        return x + 1

    assert f(1) == 2
    assert f.options == {"nopython": True, "cache": True}


def test_lambda_can_be_jitted():
    f = rjit.jit(lambda x: x * x)
    assert f(7) == 49
    assert f.__name__ == "<lambda>"


def test_jit_of_a_jit_function_wraps_the_original():
    g = make_function("def g(x): return x")
    f = rjit.jit(rjit.jit(g))
    assert f.py_func is g
    assert f(5) == 5


def test_njit_code_that_numba_could_not_type_still_runs():
    # rjit never raises because of the code it was given (unlike Numba's TypingError).
    @rjit.njit
    def f(items):
        d = {}
        for k in items:
            d[str(k)] = f"<{k!r}>"
        return d, set(items), sorted(items, key=lambda v: -v)

    assert f([3, 1, 2]) == ({"3": "<3>", "1": "<1>", "2": "<2>"}, {1, 2, 3}, [3, 2, 1])


# ---------------------------------------------------------------------------------------------
# Validation


def test_unknown_keyword_is_a_typeerror_naming_it():
    with pytest.raises(TypeError, match="nopythonn"):
        rjit.jit(nopythonn=True)


def test_unknown_keyword_with_function_is_a_typeerror():
    with pytest.raises(TypeError, match="bogus"):
        rjit.jit(add, bogus=1)


def test_unknown_keyword_to_njit_is_a_typeerror():
    with pytest.raises(TypeError, match="bogus"):
        rjit.njit(bogus=1)


@pytest.mark.parametrize("model", ["c", "", "NUMPY", "fortran"])
def test_bad_error_model_is_a_valueerror(model):
    with pytest.raises(ValueError, match="error_model"):
        rjit.jit(error_model=model)


@pytest.mark.parametrize("kw", [{"nopython": "yes"}, {"cache": 1}, {"error_model": 3}, {"locals": []}])
def test_option_of_wrong_type_is_a_typeerror(kw):
    with pytest.raises(TypeError):
        rjit.jit(**kw)


class SomeClass:
    pass


@pytest.mark.parametrize("obj", [42, len, SomeClass, functools.partial(add, 1), None.__class__, print, 2.5],
                         ids=["int", "builtin-len", "class", "partial", "NoneType", "builtin-print", "float"])
def test_jit_of_a_non_function_is_a_typeerror(obj):
    with pytest.raises(TypeError):
        rjit.jit(obj)


@pytest.mark.parametrize("obj", [42, len, SomeClass, functools.partial(add, 1)],
                         ids=["int", "builtin", "class", "partial"])
def test_jit_with_options_then_a_non_function_is_a_typeerror(obj):
    with pytest.raises(TypeError):
        rjit.jit(nopython=True)(obj)


def test_jit_of_a_bound_method_is_a_typeerror():
    with pytest.raises(TypeError):
        rjit.jit(SomeClass().__init__)


def test_typeerror_message_says_what_was_given():
    with pytest.raises(TypeError, match="SomeClass"):
        rjit.jit(SomeClass)
    with pytest.raises(TypeError, match="len"):
        rjit.jit(len)
    with pytest.raises(TypeError, match="partial"):
        rjit.jit(functools.partial(add, 1))


# ---------------------------------------------------------------------------------------------
# The wrapper behaves like the function


def test_same_results_as_the_plain_function():
    g = make_function("""
        def g(a, b):
            if a > b:
                return (a - b, type(a).__name__)
            return [a, b, a * b]
    """)
    f = rjit.jit(g)
    for a, b in [(1, 2), (5, 3), (2.5, 1), (10**30, 7), (True, False), (-0.0, 0)]:
        expected = g(a, b)
        got = f(a, b)
        assert got == expected
        assert type(got) is type(expected)


def test_return_value_identity_is_preserved():
    sentinel = object()
    f = rjit.jit(lambda: sentinel)
    assert f() is sentinel


def test_exception_type_and_message_propagate():
    @rjit.jit
    def f(x):
        raise KeyError(f"missing {x}")

    with pytest.raises(KeyError) as info:
        f("k")
    assert info.value.args == ("missing k",)


def test_exception_object_identity_and_cause_are_preserved():
    err = ValueError("original")

    @rjit.jit
    def f():
        try:
            1 / 0
        except ZeroDivisionError as cause:
            raise err from cause

    with pytest.raises(ValueError) as info:
        f()
    assert info.value is err
    assert isinstance(info.value.__cause__, ZeroDivisionError)


def test_traceback_last_frame_is_the_functions_own_line():
    @rjit.jit
    def f(x):
        y = x + 1
        return y // 0

    with pytest.raises(ZeroDivisionError) as info:
        f(1)
    frames = traceback.extract_tb(info.value.__traceback__)
    assert frames[-1].name == "f"
    assert frames[-1].filename == __file__
    assert frames[-1].lineno == f.py_func.__code__.co_firstlineno + 3
    assert frames[-1].line == "return y // 0"


def test_traceback_has_the_same_frames_as_without_the_wrapper():
    def g(x):
        return h(x)

    def h(x):
        return [][x]

    def frames_of(func):
        try:
            func(3)
        except IndexError as e:
            return [(fs.name, fs.lineno, fs.line) for fs in traceback.extract_tb(e.__traceback__)[1:]]
        raise AssertionError("no exception")

    plain = frames_of(g)
    jitted = frames_of(rjit.jit(g))
    assert plain == jitted
    assert [name for name, _, _ in jitted] == ["g", "h"]


def test_traceback_has_no_rjit_frames():
    @rjit.jit
    def f():
        raise RuntimeError("x")

    with pytest.raises(RuntimeError) as info:
        f()
    for fs in traceback.extract_tb(info.value.__traceback__):
        assert "rjit" not in fs.filename.replace(__file__, ""), fs


def test_wrong_arguments_give_the_same_typeerror_as_the_function():
    def g(a, b):
        return a

    f = rjit.jit(g)
    for args, kwargs in [((), {}), ((1, 2, 3), {}), ((1,), {"c": 2}), ((1, 2), {"a": 1})]:
        with pytest.raises(TypeError) as plain:
            g(*args, **kwargs)
        with pytest.raises(TypeError) as jitted:
            f(*args, **kwargs)
        assert str(jitted.value) == str(plain.value)


def test_metadata_is_copied():
    f = rjit.jit(add)
    assert f.__name__ == "add"
    assert f.__qualname__ == "add"
    assert f.__doc__ == "Adds two numbers."
    assert f.__module__ == add.__module__
    assert f.__wrapped__ is add
    assert f.py_func is add


def test_qualname_of_a_nested_function():
    @rjit.jit
    def inner():
        return 1

    assert inner.__qualname__ == "test_qualname_of_a_nested_function.<locals>.inner"


def test_function_attributes_are_copied():
    def g():
        return 0

    g.custom = {"k": 1}
    f = rjit.jit(g)
    assert f.custom == {"k": 1}


def test_annotations_are_copied():
    def g(x: int, y: "str" = "a") -> float:
        return 0.0

    f = rjit.jit(g)
    assert f.__annotations__ == g.__annotations__


def test_inspect_signature_matches():
    def g(a, /, b, c=3, *args, d, e=5, **kwargs) -> int:
        return 0

    assert inspect.signature(rjit.jit(g)) == inspect.signature(g)


def test_keyword_arguments_and_defaults():
    def g(a, b=2, *, c=3, d):
        return (a, b, c, d)

    f = rjit.jit(g)
    assert f(1, d=4) == (1, 2, 3, 4)
    assert f(1, 5, d=4, c=9) == (1, 5, 9, 4)
    assert f(d=0, a=7) == (7, 2, 3, 0)


def test_star_args_and_star_star_kwargs():
    def g(*args, **kwargs):
        return args, kwargs

    f = rjit.jit(g)
    assert f() == ((), {})
    assert f(1, 2, x=3) == ((1, 2), {"x": 3})
    args, kwargs = (1, [2]), {"y": 4}
    assert f(*args, **kwargs) == ((1, [2]), {"y": 4})
    # The callee gets its own kwargs dict: mutating it does not touch the caller's.
    h = rjit.jit(lambda **kw: kw.pop("y"))
    h(**kwargs)
    assert kwargs == {"y": 4}


def test_repr_names_the_function():
    f = rjit.jit(add)
    assert "add" in repr(f)
    assert "rjit" in repr(f)


def test_pickles_by_reference_like_a_function():
    assert pickle.loads(pickle.dumps(module_level_jitted)) is module_level_jitted


class Counter:
    def __init__(self, start):
        self.value = start

    @rjit.jit
    def bump(self, by=1):
        self.value += by
        return self.value

    @classmethod
    @rjit.jit
    def make(cls, start):
        return cls(start)

    @staticmethod
    @rjit.jit
    def double(x):
        return 2 * x


class SubCounter(Counter):
    pass


def test_used_as_an_instance_method_binds_self():
    c = Counter(5)
    assert c.bump() == 6
    assert c.bump(by=4) == 10
    assert c.value == 10


def test_instance_attribute_access_gives_a_bound_method():
    c = Counter(0)
    m = c.bump
    assert inspect.ismethod(m)
    assert m.__self__ is c
    assert m() == 1


def test_bound_method_signature_drops_self():
    assert str(inspect.signature(Counter(0).bump)) == "(by=1)"
    assert str(inspect.signature(Counter.bump)) == "(self, by=1)"


def test_class_attribute_access_gives_the_wrapper_itself():
    assert isinstance(Counter.bump, rjit.JitFunction)
    c = Counter(1)
    assert Counter.bump(c, 2) == 3


def test_classmethod_wrapping_a_jit_function():
    c = Counter.make(3)
    assert type(c) is Counter and c.value == 3
    s = SubCounter.make(4)
    assert type(s) is SubCounter and s.value == 4
    assert type(Counter(0).make(1)) is Counter


def test_staticmethod_wrapping_a_jit_function():
    assert Counter.double(4) == 8
    assert Counter(0).double(5) == 10


def test_method_counts_calls_of_its_code():
    c = Counter(0)
    before = rjit.info(Counter.bump).calls
    for _ in range(3):
        c.bump()
    assert rjit.info(Counter.bump).calls == before + 3


def test_closure_state_is_shared_with_the_enclosing_function():
    count = 0

    @rjit.jit
    def bump():
        nonlocal count
        count += 1
        return count

    assert [bump(), bump(), bump()] == [1, 2, 3]
    assert count == 3


def test_recursion_through_the_wrapper():
    ns = {}
    fib = make_function("""
        def fib(n):
            return n if n < 2 else fib(n - 1) + fib(n - 2)
    """, namespace=ns)
    ns["fib"] = rjit.jit(fib)
    assert ns["fib"](15) == 610
    # fib(15) makes 1973 calls, each through the wrapper: all counted (scoped mode).
    assert rjit.info(fib).calls == 1973


def test_deep_recursion_through_the_wrapper_is_fine_below_the_limit():
    ns = {}
    down = make_function("""
        def down(n):
            return 0 if n == 0 else 1 + down(n - 1)
    """, namespace=ns)
    ns["down"] = rjit.jit(down)
    depth = sys.getrecursionlimit() // 4
    assert ns["down"](depth) == depth


def test_works_without_enable():
    f = rjit.jit(make_function("def f(x): return x ** 2"))
    assert not rjit.enabled()
    assert f(9) == 81
    assert not rjit.enabled(), "calling a jit function must not turn on whole-program mode"


def test_works_with_enable():
    f = rjit.jit(make_function("def f(x): return x ** 2"))
    rjit.enable(threshold=0)
    assert f(9) == 81
    assert f(1.5) == 2.25
    assert rjit.enabled(), "a jit call must not turn whole-program mode off"


def test_works_in_threads():
    f = rjit.jit(make_function("""
        def f(n):
            s = 0
            for i in range(n):
                s += i
            return s
    """))
    results = {}

    def worker(k):
        results[k] = [f(100 + k) for _ in range(200)]

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for k in range(4):
        assert results[k] == [sum(range(100 + k))] * 200
    assert rjit.info(f).calls == 800


def test_generator_function_can_be_jitted():
    @rjit.jit
    def gen(n):
        for i in range(n):
            yield i * i

    assert list(gen(4)) == [0, 1, 4, 9]
    assert rjit.info(gen).state == "interpreter"


def test_inspect_getsource_gives_the_functions_source():
    @rjit.jit
    def f(x):
        return x + 41

    source = inspect.getsource(f)
    assert "def f(x):" in source and "return x + 41" in source


def test_wrapper_is_callable_and_hashable():
    f = rjit.jit(add)
    assert callable(f)
    assert {f: 1}[f] == 1
