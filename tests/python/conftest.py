"""Shared fixtures and helpers for rjit's Python tests.

rjit's hook is process-global: every test must leave it uninstalled. The autouse fixture
``rjit_left_off`` checks that after each test (and repairs it so one failure does not cascade).
Anything that depends on start-up state (``RJIT``, ``RJIT_THRESHOLD``, the ``.pth`` autoloader,
the CLI) runs in a child interpreter through ``run_python``.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import textwrap
import types

import pytest

import rjit

_native = rjit._rjit


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "cpython_suite: runs CPython's own regression tests (python -m test) under rjit; slow",
    )
    if _native.env_mode() == "off":
        raise pytest.UsageError("rjit's tests cannot run with RJIT=0 set: unset RJIT and run them again")
    # RJIT=1 in the environment would have enabled rjit at start-up: tests start with it off.
    rjit.disable()


def hook_is_default() -> bool:
    """True if the interpreter runs CPython's own frame evaluation function (no PEP 523 hook,
    neither rjit's nor a foreign one). Probes by installing the test stand-in hook, which only
    succeeds over the default function, and removing it again."""
    if _native._set_foreign_hook_for_tests(True):
        assert _native._set_foreign_hook_for_tests(False)
        return True
    return False


@pytest.fixture(autouse=True)
def rjit_left_off():
    """After each test: rjit disabled, its threshold as found, tracer/profiler restored, and no
    PEP 523 hook (rjit's or the stand-in foreign one) left installed."""
    threshold = rjit.stats()["threshold"]
    tracer, profiler = sys.gettrace(), sys.getprofile()
    yield
    sys.settrace(tracer)
    sys.setprofile(profiler)
    foreign_left = _native._set_foreign_hook_for_tests(False)
    rjit.disable()
    if rjit.stats()["threshold"] != threshold:
        rjit.enable(threshold=threshold)
        rjit.disable()
    assert not foreign_left, "the test left the stand-in foreign PEP 523 hook installed"
    assert hook_is_default(), "a PEP 523 hook is still installed after rjit.disable()"


@pytest.fixture
def hook_installed():
    """A function telling whether some PEP 523 hook is installed right now."""
    return lambda: not hook_is_default()


_counter = itertools.count()


def make_function(source: str, name: str | None = None, namespace: dict | None = None) -> types.FunctionType:
    """Compiles ``source`` (dedented) into a fresh namespace and returns the function ``name``
    (default: the only/last function defined). Every call gives new code objects, so rjit has
    never seen them, even when a test runs twice or is parametrised."""
    ns = {} if namespace is None else namespace
    filename = f"<rjit-test-{next(_counter)}>"
    exec(compile(textwrap.dedent(source), filename, "exec"), ns)
    if name is None:
        funcs = [v for v in ns.values() if isinstance(v, types.FunctionType)]
        assert funcs, "source defines no function"
        return funcs[-1]
    return ns[name]


@pytest.fixture
def fresh():
    """``fresh(source, name=None)``: a function with never-seen code objects (see make_function)."""
    return make_function


def child_env(**overrides: str | None) -> dict:
    """os.environ without any RJIT* variable, plus ``overrides`` (None removes a variable)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RJIT")}
    for key, value in overrides.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def run_python(*args: str, env: dict | None = None, cwd=None, timeout: float = 120,
               input: str | None = None) -> subprocess.CompletedProcess:
    """Runs ``sys.executable *args`` with ``child_env(**env)``; returns the completed process
    (text stdout/stderr). ``env`` holds overrides only: RJIT* variables are never inherited."""
    return subprocess.run(
        [sys.executable, *args],
        env=child_env(**(env or {})),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        input=input,
    )


def run_code(code: str, env: dict | None = None, **kwargs) -> subprocess.CompletedProcess:
    """Runs ``python -c <dedented code>`` (see run_python)."""
    return run_python("-c", textwrap.dedent(code), env=env, **kwargs)


@pytest.fixture(name="run_python")
def run_python_fixture():
    return run_python


@pytest.fixture(name="run_code")
def run_code_fixture():
    return run_code


def assert_ok(proc: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    """The child exited 0; shows its output otherwise."""
    assert proc.returncode == 0, f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    return proc


@pytest.fixture(name="assert_ok")
def assert_ok_fixture():
    return assert_ok


# Numbers the correctness gate's tests measure (CPython test counts, fuzzer totals, RSS growth,
# ...), printed in a section at the end of the run so that CI logs show them.
GATE_NOTES: list = []


def gate_note(line: str) -> None:
    GATE_NOTES.append(line)


def pytest_terminal_summary(terminalreporter):
    if GATE_NOTES:
        terminalreporter.section("rjit correctness gate")
        for line in GATE_NOTES:
            terminalreporter.write_line(line)
