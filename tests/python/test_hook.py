"""The PEP 523 hook: when it counts, stepping aside for tracers, foreign hooks, generators,
threads, exceptions and recursion."""

import asyncio
import sys
import threading
import traceback

import pytest

import rjit
from conftest import assert_ok, make_function, run_code

_native = rjit._rjit

SIMPLE = """
    def simple(x):
        y = x * 2
        return y + 1
"""

# SIMPLE's results from a function rjit declines by design: it has a match statement (not compiled yet).
SIMPLE_LOCALS = """
    def simple(x):
        match ():  # MATCH_SEQUENCE: not compiled yet, so rjit declines this function
            case (): pass
        y = x * 2
        return y + 1
"""


# ---------------------------------------------------------------------------------------------
# When calls are counted


def test_calls_are_not_counted_while_disabled():
    f = make_function(SIMPLE)
    for _ in range(5):
        f(1)
    assert rjit.info(f).calls == 0


def test_calls_of_a_seen_function_are_not_counted_while_disabled():
    f = make_function(SIMPLE)
    rjit.enable(threshold=1000)
    f(1)
    rjit.disable()
    for _ in range(5):
        f(1)
    assert rjit.info(f).calls == 1


def test_disable_stops_counting_and_enable_resumes_it():
    f = make_function(SIMPLE)
    rjit.enable(threshold=1000)
    for _ in range(3):
        f(1)
    rjit.disable()
    for _ in range(4):
        f(1)
    rjit.enable()
    for _ in range(2):
        f(1)
    rjit.disable()
    assert rjit.info(f).calls == 5


def test_no_hook_is_installed_while_disabled(hook_installed):
    assert not hook_installed()
    rjit.enable()
    assert hook_installed()
    rjit.disable()
    assert not hook_installed()


def test_jit_function_is_counted_without_enable():
    f = rjit.jit(make_function(SIMPLE))
    for _ in range(4):
        f(1)
    assert not rjit.enabled()
    assert rjit.info(f).calls == 4


def test_calling_the_py_func_directly_is_not_counted_while_disabled():
    f = rjit.jit(make_function(SIMPLE))
    f.py_func(1)
    assert rjit.info(f).calls == 0


def test_scoped_mode_removes_the_hook_after_the_call(hook_installed):
    seen = []
    f = rjit.jit(make_function("def f(probe): return probe()"))
    f(lambda: seen.append(hook_installed()))
    assert seen == [True]
    assert not hook_installed()


def test_scoped_mode_removes_the_hook_after_an_exception(hook_installed):
    f = rjit.jit(make_function("def f(): raise OSError('x')"))
    with pytest.raises(OSError):
        f()
    assert not hook_installed()


def test_scoped_mode_does_not_create_entries_for_other_functions():
    g = make_function("def g(x): return x + 1")
    ns = {"g": g}
    f = rjit.jit(make_function("def f(x): return g(x) * 2", namespace=ns))
    before = rjit.stats()["functions_seen"]
    assert f(1) == 4
    assert rjit.stats()["functions_seen"] == before
    assert rjit.info(g).calls == 0


def test_scoped_mode_does_not_count_other_functions_already_seen():
    # Without enable(), only the @jit function's own code is counted, even if a callee has an
    # entry from an earlier enable().
    g = make_function("def g(x): return x + 1")
    rjit.enable(threshold=1000)
    g(0)
    rjit.disable()
    assert rjit.info(g).calls == 1
    ns = {"g": g}
    f = rjit.jit(make_function("def f(x): return g(x) * 2", namespace=ns))
    for _ in range(3):
        assert f(1) == 4
    assert rjit.info(f).calls == 3
    assert rjit.info(g).calls == 1


def test_disable_inside_a_jit_call_keeps_the_hook_until_the_call_returns(hook_installed):
    inside = []

    def probe():
        rjit.disable()
        inside.append(hook_installed())

    rjit.enable()
    f = rjit.jit(make_function("def f(p): return p()"))
    f(probe)
    assert inside == [True]
    assert not rjit.enabled()
    assert not hook_installed()


def test_enable_inside_a_jit_call_keeps_whole_program_mode_after_it(hook_installed):
    f = rjit.jit(make_function("def f(p): return p()"))
    f(rjit.enable)
    assert rjit.enabled()
    assert hook_installed()


# ---------------------------------------------------------------------------------------------
# Foreign PEP 523 hooks


def foreign_hook_is_installed():
    """True if the stand-in foreign hook is the installed evaluation function (checked by
    removing it, which only succeeds if it is there, and putting it back)."""
    if _native._set_foreign_hook_for_tests(False):
        assert _native._set_foreign_hook_for_tests(True)
        return True
    return False


@pytest.fixture
def foreign_hook():
    assert _native._set_foreign_hook_for_tests(True), "could not install the stand-in foreign hook"
    yield
    assert _native._set_foreign_hook_for_tests(False), "the stand-in foreign hook was removed or replaced"


def test_enable_refuses_to_replace_a_foreign_hook(foreign_hook):
    with pytest.raises(RuntimeError, match="another PEP 523"):
        rjit.enable()
    assert not rjit.enabled()


def test_enable_works_again_once_the_foreign_hook_is_gone():
    assert _native._set_foreign_hook_for_tests(True)
    with pytest.raises(RuntimeError):
        rjit.enable()
    assert _native._set_foreign_hook_for_tests(False)
    rjit.enable()
    assert rjit.enabled()


def test_disable_leaves_a_foreign_hook_in_place(foreign_hook):
    rjit.disable()
    assert foreign_hook_is_installed()


def test_failed_enable_leaves_the_foreign_hook_in_place(foreign_hook):
    with pytest.raises(RuntimeError):
        rjit.enable(threshold=0)
    assert foreign_hook_is_installed()


def test_jit_function_runs_in_the_interpreter_under_a_foreign_hook(foreign_hook):
    f = rjit.jit(make_function(SIMPLE))
    assert f(20) == 41
    assert f(x=1) == 3
    assert rjit.info(f).calls == 0
    assert foreign_hook_is_installed()


def test_jit_function_raising_under_a_foreign_hook_keeps_it(foreign_hook):
    f = rjit.jit(make_function("def f(): return 1 / 0"))
    with pytest.raises(ZeroDivisionError):
        f()
    assert foreign_hook_is_installed()


def test_foreign_hook_cannot_be_installed_over_rjits():
    rjit.enable()
    assert _native._set_foreign_hook_for_tests(True) is False
    assert rjit.enabled()


# ---------------------------------------------------------------------------------------------
# Generators, coroutines, async generators


def test_generator_calls_are_not_counted_and_results_are_correct():
    gen = make_function("""
        def gen(n):
            for i in range(n):
                yield i * 10
    """)
    rjit.enable(threshold=0)
    results = [list(gen(k)) for k in range(5)]
    rjit.disable()
    assert results == [[i * 10 for i in range(k)] for k in range(5)]
    info = rjit.info(gen)
    assert info.calls == 0
    assert info.state == "interpreter"
    assert "generator" in info.reason
    assert info.compiled is False


def test_generator_adds_nothing_to_compiled_or_declined():
    gen = make_function("def gen():\n    yield 1\n")
    rjit.enable(threshold=0)
    rjit.disable()
    rjit.enable(threshold=0)
    rjit.disable()
    before = rjit.stats()
    rjit.enable(threshold=0)
    for _ in range(3):
        list(gen())
    rjit.disable()
    after = rjit.stats()
    assert after["declined"] == before["declined"]
    assert after["compiled"] == before["compiled"]


def test_generator_send():
    echo = make_function("""
        def echo():
            received = []
            value = yield None
            while value is not None:
                received.append(value)
                value = yield value * 2
            return received
    """)
    rjit.enable(threshold=0)
    g = echo()
    assert next(g) is None
    assert g.send(1) == 2
    assert g.send(5) == 10
    with pytest.raises(StopIteration) as stop:
        g.send(None)
    rjit.disable()
    assert stop.value.value == [1, 5]
    assert rjit.info(echo).state == "interpreter"


def test_generator_throw_is_handled_inside_the_generator():
    catcher = make_function("""
        def catcher():
            caught = []
            while True:
                try:
                    yield len(caught)
                except ValueError as e:
                    caught.append(str(e))
                    if len(caught) == 2:
                        return caught
    """)
    rjit.enable(threshold=0)
    g = catcher()
    assert next(g) == 0
    assert g.throw(ValueError("a")) == 1
    with pytest.raises(StopIteration) as stop:
        g.throw(ValueError("b"))
    rjit.disable()
    assert stop.value.value == ["a", "b"]


def test_generator_throw_of_an_unhandled_exception_propagates_with_its_traceback():
    gen = make_function("""
        def gen():
            yield 1
            yield 2
    """)
    rjit.enable(threshold=0)
    g = gen()
    next(g)
    with pytest.raises(KeyError) as info:
        g.throw(KeyError("k"))
    rjit.disable()
    last = traceback.extract_tb(info.value.__traceback__)[-1]
    assert last.name == "gen"
    assert last.lineno == gen.__code__.co_firstlineno + 1  # the `yield 1` it was suspended at
    with pytest.raises(StopIteration):
        next(g)


def test_generator_close_runs_finally():
    log = []
    gen = make_function("""
        def gen(log):
            try:
                yield 1
                yield 2
            finally:
                log.append("closed")
    """)
    rjit.enable(threshold=0)
    g = gen(log)
    next(g)
    g.close()
    rjit.disable()
    assert log == ["closed"]


def test_yield_from_delegates():
    ns = {}
    make_function("""
        def inner():
            got = yield "a"
            yield got
            return "inner-done"
    """, namespace=ns)
    outer = make_function("""
        def outer():
            result = yield from inner()
            yield result
    """, namespace=ns)
    rjit.enable(threshold=0)
    g = outer()
    out = [next(g), g.send("sent"), next(g)]
    with pytest.raises(StopIteration):
        next(g)
    rjit.disable()
    assert out == ["a", "sent", "inner-done"]
    assert rjit.info(outer).state == "interpreter"
    assert rjit.info(ns["inner"]).state == "interpreter"


def test_coroutine_under_asyncio_run():
    ns = {"asyncio": asyncio}
    make_function("""
        async def child(x):
            await asyncio.sleep(0)
            return x * 2
    """, namespace=ns)
    main = make_function("""
        async def main():
            results = await asyncio.gather(child(1), child(2), child(3))
            return sum(results)
    """, namespace=ns)
    rjit.enable(threshold=0)
    result = asyncio.run(main())
    rjit.disable()
    assert result == 12
    info = rjit.info(ns["child"])
    assert info.state == "interpreter"
    assert "coroutine" in info.reason
    assert info.calls == 0


def test_coroutine_exception_propagates():
    ns = {"asyncio": asyncio}
    main = make_function("""
        async def main():
            await asyncio.sleep(0)
            raise LookupError("from coroutine")
    """, namespace=ns)
    rjit.enable(threshold=0)
    with pytest.raises(LookupError, match="from coroutine"):
        asyncio.run(main())
    rjit.disable()


def test_async_generator():
    ns = {"asyncio": asyncio}
    agen = make_function("""
        async def agen(n):
            for i in range(n):
                await asyncio.sleep(0)
                yield i
    """, namespace=ns)
    main = make_function("""
        async def main():
            return [x async for x in agen(4)]
    """, namespace=ns)
    rjit.enable(threshold=0)
    result = asyncio.run(main())
    rjit.disable()
    assert result == [0, 1, 2, 3]
    info = rjit.info(agen)
    assert info.state == "interpreter"
    assert "async generator" in info.reason
    assert info.calls == 0


# ---------------------------------------------------------------------------------------------
# Tracing and profiling: rjit steps aside


TRACED = """
    def traced(n):
        total = 0
        for i in range(n):
            if i % 2:
                total += i
            else:
                total -= 1
        try:
            1 / (n - n)
        except ZeroDivisionError:
            total = -total
        return total
"""

# TRACED with a match statement: a function rjit declines (not compiled yet).
TRACED_LOCALS = """
    def traced(n):
        match ():  # MATCH_SEQUENCE: not compiled yet, so rjit declines this function
            case (): pass
        total = 0
        for i in range(n):
            if i % 2:
                total += i
            else:
                total -= 1
        try:
            1 / (n - n)
        except ZeroDivisionError:
            total = -total
        return total
"""

# (source, state after the first call with threshold 0, what `reason` contains)
TRACED_SETTLED = pytest.mark.parametrize(
    "source, state, reason",
    [(TRACED, "compiled", None), (TRACED_LOCALS, "declined", "MATCH_SEQUENCE")],
    ids=["compiled", "declined"],
)


def assert_settled(func, state, reason):
    info = rjit.info(func)
    assert info.state == state
    if reason is None:
        assert info.reason is None
    else:
        assert reason in info.reason


def record_trace(func, *args):
    """(event, line offset) of every trace event in ``func``'s own frames, and the result."""
    code = func.__code__
    events = []

    def tracer(frame, event, arg):
        if frame.f_code is not code:
            return None
        events.append((event, frame.f_lineno - code.co_firstlineno))
        return tracer

    sys.settrace(tracer)
    try:
        result = func(*args)
    finally:
        sys.settrace(None)
    return events, result


def test_tracer_sees_the_same_events_with_rjit_enabled():
    f = make_function(TRACED)
    plain_events, plain_result = record_trace(f, 5)
    rjit.enable(threshold=0)
    try:
        jit_events, jit_result = record_trace(f, 5)
    finally:
        rjit.disable()
    assert jit_result == plain_result
    assert jit_events == plain_events
    assert [e for e, _ in jit_events].count("line") > 10


def test_calls_under_a_tracer_are_not_counted():
    f = make_function(TRACED)
    rjit.enable(threshold=0)
    try:
        for _ in range(3):
            record_trace(f, 3)
    finally:
        rjit.disable()
    info = rjit.info(f)
    assert info.calls == 0
    assert info.state == "cold"


@TRACED_SETTLED
def test_tracer_sees_every_line_of_a_function_that_already_settled(source, state, reason):
    f = make_function(source)
    plain_events, plain_result = record_trace(f, 4)
    rjit.enable(threshold=0)
    try:
        assert f(4) == plain_result
        assert_settled(f, state, reason)
        jit_events, jit_result = record_trace(f, 4)
        assert f(4) == plain_result  # and past the tracer, the settled function again
    finally:
        rjit.disable()
    assert jit_result == plain_result
    assert jit_events == plain_events
    assert [e for e, _ in jit_events].count("line") > 10
    assert rjit.info(f).calls == 2  # the traced call is not counted


@TRACED_SETTLED
def test_tracer_sees_every_line_of_a_jit_function(source, state, reason):
    g = make_function(source)
    plain_events, plain_result = record_trace(g, 6)
    f = rjit.jit(g)
    assert f(6) == plain_result  # compiled (or declined) at its first call
    assert_settled(f, state, reason)
    code = g.__code__
    events = []

    def tracer(frame, event, arg):
        if frame.f_code is code:
            events.append((event, frame.f_lineno - code.co_firstlineno))
            return tracer
        return None

    sys.settrace(tracer)
    try:
        f(6)
    finally:
        sys.settrace(None)
    assert events == plain_events
    assert rjit.info(f).calls == 1


def test_tracing_turned_on_inside_an_enabled_program_sees_later_calls():
    f = make_function(TRACED)
    rjit.enable(threshold=0)
    try:
        f(2)
        assert rjit.info(f).state == "compiled"
        events, _ = record_trace(f, 2)
        f(2)
    finally:
        rjit.disable()
    assert ("call", 0) in events and any(e == "line" for e, _ in events)
    assert rjit.info(f).calls == 2


def record_profile(func, *args):
    events = []
    code = func.__code__

    def profiler(frame, event, arg):
        if frame.f_code is code or (event.startswith("c_") and frame.f_code is code):
            events.append((event, frame.f_lineno - code.co_firstlineno, getattr(arg, "__name__", None)))

    sys.setprofile(profiler)
    try:
        result = func(*args)
    finally:
        sys.setprofile(None)
    return events, result


def test_profiler_sees_the_same_events_with_rjit_enabled():
    f = make_function("""
        def profiled(xs):
            ys = sorted(xs)
            return len(ys) + max(ys)
    """)
    plain_events, plain_result = record_profile(f, [3, 1, 2])
    rjit.enable(threshold=0)
    try:
        jit_events, jit_result = record_profile(f, [3, 1, 2])
    finally:
        rjit.disable()
    assert jit_result == plain_result
    assert jit_events == plain_events
    kinds = [e for e, _, _ in jit_events]
    assert kinds[0] == "call" and kinds[-1] == "return" and "c_call" in kinds


def test_calls_under_a_profiler_are_not_counted():
    f = make_function(SIMPLE)
    rjit.enable(threshold=0)
    try:
        sys.setprofile(lambda frame, event, arg: None)
        for _ in range(3):
            f(1)
    finally:
        sys.setprofile(None)
        rjit.disable()
    assert rjit.info(f).calls == 0


# ---------------------------------------------------------------------------------------------
# Threads


def test_threads_give_correct_results_and_every_call_is_counted():
    f = make_function("""
        def work(k, i):
            return k * 1000 + i
    """)
    per_thread = 2500
    results = {}
    barrier = threading.Barrier(4)

    def worker(k):
        barrier.wait()
        results[k] = [f(k, i) for i in range(per_thread)]

    rjit.enable(threshold=10**6)
    try:
        threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        rjit.disable()
    for k in range(4):
        assert results[k] == [k * 1000 + i for i in range(per_thread)]
    assert rjit.info(f).calls == 4 * per_thread


@pytest.mark.parametrize("source, state, reason",
                         [(SIMPLE, "compiled", None), (SIMPLE_LOCALS, "declined", "MATCH_SEQUENCE")],
                         ids=["compiled", "declined"])
def test_threads_racing_past_the_threshold_settle_the_function_once(source, state, reason):
    def scenario(f, threshold):
        barrier = threading.Barrier(5)
        results = []

        def worker():
            barrier.wait()
            results.append([f(i) for i in range(2000)])

        threads = [threading.Thread(target=worker) for _ in range(4)]
        for t in threads:
            t.start()
        rjit.enable(threshold=threshold)
        try:
            barrier.wait()
            for t in threads:
                t.join()
        finally:
            rjit.disable()
        return results

    # First run with threshold 0: every function the scenario runs (threading's included) is
    # settled (compiled or declined), so in the second run only the fresh f can settle.
    scenario(make_function(source), 0)
    f = make_function(source)
    before = rjit.stats()
    results = scenario(f, 500)
    after = rjit.stats()
    assert results == [[2 * i + 1 for i in range(2000)]] * 4
    assert_settled(f, state, reason)
    assert rjit.info(f).calls == 8000
    if state == "compiled":
        assert after["compiled"] == before["compiled"] + 1
        assert after["code_bytes"] == before["code_bytes"] + rjit.info(f).code_size
        assert after["declined"] == before["declined"]
    else:
        assert after["declined"] == before["declined"] + 1
        why = rjit.info(f).reason
        assert after["declined_by_reason"][why] == before["declined_by_reason"].get(why, 0) + 1
        assert after["compiled"] == before["compiled"]


def test_enable_in_one_thread_counts_calls_in_another():
    f = make_function(SIMPLE)
    done = threading.Event()
    go = threading.Event()

    def worker():
        go.wait()
        for _ in range(10):
            f(1)
        done.set()

    t = threading.Thread(target=worker)
    t.start()
    rjit.enable(threshold=1000)
    try:
        go.set()
        assert done.wait(10)
        t.join()
    finally:
        rjit.disable()
    assert rjit.info(f).calls == 10


# ---------------------------------------------------------------------------------------------
# Exceptions and recursion


RAISER = """
    def raiser(kind):
        try:
            if kind == 0:
                raise ValueError("zero")
            if kind == 1:
                return {}["missing"]
        finally:
            pass
        return int("not a number")
"""

# RAISER in forms whose fate is fixed: compiled, and declined (a match statement: not compiled yet).
RAISER_COMPILED = RAISER.replace('{}["missing"]', "[][kind]")
RAISER_LOCALS = RAISER.replace(
    "    def raiser(kind):\n", "    def raiser(kind):\n        match ():\n            case (): pass\n"
)


def exception_summary(func, arg):
    try:
        func(arg)
    except Exception as e:
        frames = traceback.extract_tb(e.__traceback__)[1:]
        return type(e), str(e), [(fs.name, fs.lineno, fs.line) for fs in frames]
    raise AssertionError("no exception")


@pytest.mark.parametrize("source, state, reason",
                         [(RAISER, None, None), (RAISER_COMPILED, "compiled", None),
                          (RAISER_LOCALS, "declined", "MATCH_SEQUENCE")],
                         ids=["raiser", "compiled", "declined"])
@pytest.mark.parametrize("kind", [0, 1, 2])
def test_exceptions_propagate_unchanged_through_the_hook(kind, source, state, reason):
    f = make_function(source)
    plain = exception_summary(f, kind)
    rjit.enable(threshold=0)
    try:
        first = exception_summary(f, kind)
        again = exception_summary(f, kind)  # after the function settled
    finally:
        rjit.disable()
    if state is not None:
        assert_settled(f, state, reason)
    assert rjit.info(f).state in ("compiled", "declined")
    assert first == plain
    assert again == plain


def test_exception_handled_inside_a_callee_under_enable():
    ns = {}
    make_function("""
        def inner(x):
            if x < 0:
                raise ArithmeticError(x)
            return x
    """, namespace=ns)
    outer = make_function("""
        def outer(xs):
            out = []
            for x in xs:
                try:
                    out.append(inner(x))
                except ArithmeticError as e:
                    out.append(("err", e.args[0]))
                finally:
                    out.append("f")
            return out
    """, namespace=ns)
    expected = outer([1, -2, 3])
    rjit.enable(threshold=0)
    try:
        got = [outer([1, -2, 3]) for _ in range(3)]
    finally:
        rjit.disable()
    assert got == [expected] * 3


def test_sys_getframe_chain_is_unchanged_under_enable():
    f = make_function("""
        import sys
        def f():
            frame = sys._getframe()
            return [frame.f_code.co_name, frame.f_back.f_code.co_name]
    """)

    def caller():
        return f()

    expected = caller()
    rjit.enable(threshold=0)
    try:
        assert caller() == expected == ["f", "caller"]
    finally:
        rjit.disable()


RECURSION = """
import sys
depth = 0
def recurse(n):
    global depth
    depth = n
    return recurse(n + 1)
try:
    recurse(0)
except RecursionError as e:
    print(type(e).__name__, e, depth)
"""


def test_deep_recursion_raises_recursionerror_as_without_rjit():
    plain = assert_ok(run_code(RECURSION))
    jit = assert_ok(run_code(RECURSION, env={"RJIT": "1", "RJIT_THRESHOLD": "0"}))
    assert plain.stdout.startswith("RecursionError maximum recursion depth exceeded")
    assert jit.stdout == plain.stdout
    assert jit.stderr == plain.stderr == ""


def test_deep_recursion_through_a_jit_wrapper_raises_recursionerror():
    proc = assert_ok(run_code("""
        import rjit
        @rjit.jit
        def recurse(n):
            return recurse(n + 1)
        try:
            recurse(0)
        except RecursionError:
            print("RecursionError")
        print(recurse.py_func.__name__, rjit.enabled())
        @rjit.jit
        def ok(n):
            return 0 if n == 0 else ok(n - 1) + 1
        print(ok(100))
    """))
    assert proc.stdout.split() == ["RecursionError", "recurse", "False", "100"]


# ---------------------------------------------------------------------------------------------
# Interpreter exit with daemon threads, signals


DAEMONS_AT_EXIT = """
    import sys, threading, time
    import rjit

    def loop():
        while True:
            time.sleep(0.0001)

    started = threading.Barrier(9)

    def run():
        started.wait()
        {call}

    {setup}
    for _ in range(8):
        threading.Thread(target=run, daemon=True).start()
    started.wait()
    time.sleep(0.05)
    print("exiting")
    sys.exit(0)
"""


def test_daemon_threads_in_hooked_frames_at_exit_do_not_crash():
    # At exit CPython ends daemon threads that wake up with pthread_exit(), which unwinds
    # their stacks through rjit's hook frames: the process must still exit normally.
    code = DAEMONS_AT_EXIT.format(setup="rjit.enable()", call="loop()")
    for _ in range(3):
        proc = run_code(code)
        assert (proc.returncode, proc.stdout, proc.stderr) == (0, "exiting\n", "")


def test_daemon_threads_inside_a_jit_function_at_exit_do_not_crash():
    code = DAEMONS_AT_EXIT.format(setup="loop = rjit.jit(loop)", call="loop()")
    for _ in range(3):
        proc = run_code(code)
        assert (proc.returncode, proc.stdout, proc.stderr) == (0, "exiting\n", "")


def test_daemon_threads_at_exit_without_rjit_are_fine():
    # The same program without rjit: the checks above are about rjit, not this environment.
    proc = run_code(DAEMONS_AT_EXIT.format(setup="pass", call="loop()"))
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "exiting\n", "")


def test_sigint_inside_a_jit_function_raises_keyboardinterrupt():
    proc = assert_ok(run_code("""
        import signal, rjit
        @rjit.jit
        def f():
            signal.raise_signal(signal.SIGINT)
            for i in range(10**6):
                pass
            return "not interrupted"
        try:
            f()
        except KeyboardInterrupt:
            print("KeyboardInterrupt")
        rjit.enable(threshold=0)
        def g():
            signal.raise_signal(signal.SIGINT)
            return "not interrupted"
        try:
            g()
        except KeyboardInterrupt:
            print("KeyboardInterrupt")
    """))
    assert proc.stdout.split() == ["KeyboardInterrupt", "KeyboardInterrupt"]


def test_signal_made_pending_by_a_call_is_raised_at_that_call_in_compiled_code():
    # CPython 3.11 checks for pending signals right after every CALL: a KeyboardInterrupt that
    # the called C function makes pending (interrupt_main) is raised inside the caller, where
    # its `except` sees it (CPython's test_threading.test_interrupt_main_mainthread relies on
    # it). Run in a child: an escaping KeyboardInterrupt must not reach pytest.
    proc = assert_ok(run_code("""
        import _thread, rjit
        def f():
            try:
                _thread.interrupt_main()
            except KeyboardInterrupt:
                return "caught"
            return "missed"
        print(f())
        rjit.enable(threshold=0)
        try:
            print(f())
        except KeyboardInterrupt:
            print("escaped")
        rjit.disable()
        print(rjit.info(f).state)
    """))
    assert proc.stdout.split() == ["caught", "caught", "compiled"]
