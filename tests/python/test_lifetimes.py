"""Reference counts and lifetimes: rjit leaks nothing and keeps nothing alive."""

import gc
import sys
import types
import weakref

import pytest

import rjit
from conftest import make_function

N_CALLS = 10**5


class Payload:
    pass


def payloads():
    return [Payload(), [1, 2, 3], 12345678901234567890, 2.5, "a string not interned " * 2, (Payload(),)]


def refcounts(objs):
    return [sys.getrefcount(o) for o in objs]


def test_jit_calls_leave_argument_refcounts_unchanged():
    f = rjit.jit(make_function("def f(a, b, c, d, e, g): return b"))
    args = payloads()
    before = refcounts(args)
    for _ in range(N_CALLS):
        f(*args)
    assert refcounts(args) == before


def test_jit_calls_with_keywords_leave_refcounts_unchanged():
    f = rjit.jit(make_function("def f(a, *, key=None, **rest): return rest"))
    args = payloads()
    before = refcounts(args)
    for _ in range(N_CALLS // 2):
        f(args[0], key=args[1], extra=args[2])
    assert refcounts(args) == before


def test_enabled_calls_leave_argument_refcounts_unchanged():
    f = make_function("def f(a, b, c, d, e, g): return (a, g)")
    args = payloads()
    before = refcounts(args)
    rjit.enable(threshold=0)
    try:
        for _ in range(N_CALLS):
            f(*args)
    finally:
        rjit.disable()
    assert refcounts(args) == before


def test_return_value_refcount_is_unchanged():
    result = Payload()
    f = rjit.jit(lambda: result)
    before = sys.getrefcount(result)
    for _ in range(N_CALLS):
        f()
    assert sys.getrefcount(result) == before


def test_raising_calls_leave_argument_refcounts_unchanged():
    f = rjit.jit(make_function("def f(a): raise ValueError(a)"))
    arg = Payload()
    before = sys.getrefcount(arg)
    for _ in range(N_CALLS // 10):
        try:
            f(arg)
        except ValueError:
            pass
    assert sys.getrefcount(arg) == before


def test_calls_leave_the_wrapper_and_function_refcounts_unchanged():
    g = make_function("def g(x): return x")
    f = rjit.jit(g)
    before = (sys.getrefcount(f), sys.getrefcount(g), sys.getrefcount(g.__code__))
    for _ in range(N_CALLS // 10):
        f(1)
    assert (sys.getrefcount(f), sys.getrefcount(g), sys.getrefcount(g.__code__)) == before


def test_method_calls_leave_self_refcount_unchanged():
    class C:
        @rjit.jit
        def m(self, x):
            return x

    c = C()
    before = sys.getrefcount(c)
    for _ in range(N_CALLS // 10):
        c.m(1)
    assert sys.getrefcount(c) == before


def fresh_functions(template, count):
    """``count`` functions, each with its own new code object (copies of ``template``'s)."""
    code = template.__code__
    return [
        types.FunctionType(code.replace(co_name=f"{code.co_name}_{i}"), template.__globals__)
        for i in range(count)
    ]


def test_entries_are_freed_with_their_code_objects():
    template = make_function("def f(x): return x + 1")
    gc.collect()
    base = rjit.stats()["functions_alive"]
    funcs = fresh_functions(template, 10**4)
    rjit.enable(threshold=1000)
    try:
        for func in funcs:
            func(1)
    finally:
        rjit.disable()
    during = rjit.stats()
    assert during["functions_alive"] >= base + 10**4
    del funcs, func
    gc.collect()
    after = rjit.stats()
    assert after["functions_alive"] <= base + 10
    assert after["functions_seen"] == during["functions_seen"]  # freed, not forgotten


def test_entries_of_exec_compiled_functions_are_freed():
    gc.collect()
    base = rjit.stats()["functions_alive"]
    rjit.enable(threshold=0)
    try:
        for i in range(2000):
            ns = {}
            exec(compile(f"def f{i}(x):\n    return x * {i}\n", f"<gen-{i}>", "exec"), ns)
            assert ns[f"f{i}"](2) == 2 * i
    finally:
        rjit.disable()
    del ns
    gc.collect()
    assert rjit.stats()["functions_alive"] <= base + 10


def test_entries_of_dropped_jit_functions_are_freed():
    template = make_function("def f(x): return x")
    gc.collect()
    base = rjit.stats()["functions_alive"]
    wrappers = [rjit.jit(func) for func in fresh_functions(template, 2000)]
    for w in wrappers:
        w(1)
    assert rjit.stats()["functions_alive"] >= base + 2000
    del wrappers, w
    gc.collect()
    assert rjit.stats()["functions_alive"] <= base + 10


def test_jit_function_in_a_reference_cycle_is_collected():
    f = rjit.jit(make_function("def f(): return 1"))
    f.myself = f  # a cycle through the wrapper's __dict__
    ref = weakref.ref(f)
    code_ref = f.py_func.__code__
    del f
    gc.collect()
    assert ref() is None
    assert rjit.info(code_ref).jit is True  # the code object lived on: its entry is intact


def test_jit_function_referenced_from_its_own_globals_is_collected():
    ns = {}
    g = make_function("def g(n): return 0 if n == 0 else g(n - 1)", namespace=ns)
    ns["g"] = rjit.jit(g)  # wrapper -> function -> globals -> wrapper
    assert ns["g"](5) == 0
    wrapper_ref, func_ref = weakref.ref(ns["g"]), weakref.ref(g)
    gc.collect()
    base = rjit.stats()["functions_alive"]
    del ns, g
    gc.collect()
    assert wrapper_ref() is None
    assert func_ref() is None
    assert rjit.stats()["functions_alive"] <= base - 1  # g's entry went with its code object


def test_jit_function_as_a_method_in_a_class_cycle_is_collected():
    def make():
        class C:
            @rjit.jit
            def m(self):
                return self

        c = C()
        c.me = c
        c.m()
        return weakref.ref(C), weakref.ref(C.__dict__["m"])

    class_ref, wrapper_ref = make()
    gc.collect()
    assert class_ref() is None
    assert wrapper_ref() is None


def test_calling_a_wrapper_does_not_keep_frames_alive():
    f = rjit.jit(make_function("def f(x): return x"))
    arg = Payload()
    ref = weakref.ref(arg)
    f(arg)
    del arg
    assert ref() is None  # freed at once, without gc: nothing kept a reference
