"""``python -m rjit [-m module | script.py] [args...]`` runs a program as ``python`` would, with
rjit enabled."""

import os
import signal
import textwrap

import pytest

from conftest import assert_ok, run_python

SHOW = """
    import json, os, sys
    import __main__
    import rjit
    print(json.dumps({
        "name": __name__,
        "argv": sys.argv,
        "path0": sys.path[0],
        "file": __file__,
        "main_is_this_module": __main__.__dict__ is globals(),
        "enabled": rjit.enabled(),
    }))
"""


def write(path, source):
    path.write_text(textwrap.dedent(source))
    return path


@pytest.fixture
def script(tmp_path):
    """A script printing what it sees, in its own folder (not the cwd)."""
    folder = tmp_path / "scripts"
    folder.mkdir()
    return write(folder / "show.py", SHOW)


@pytest.fixture
def cwd(tmp_path):
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    return folder


def shown(proc):
    import json

    assert_ok(proc)
    return json.loads(proc.stdout)


def test_runs_the_script_as_main_with_rjit_enabled(script, cwd):
    data = shown(run_python("-m", "rjit", str(script), cwd=cwd))
    assert data["name"] == "__main__"
    assert data["argv"] == [str(script)]
    assert data["path0"] == str(script.parent)
    assert data["main_is_this_module"] is True
    assert data["enabled"] is True


def test_passes_arguments_including_option_like_ones(script, cwd):
    args = ["a", "-m", "--help", "-", "x y"]
    data = shown(run_python("-m", "rjit", str(script), *args, cwd=cwd))
    assert data["argv"] == [str(script), *args]


def test_sees_what_python_script_py_sees(script, cwd):
    plain = shown(run_python(str(script), "arg", cwd=cwd))
    jit = shown(run_python("-m", "rjit", str(script), "arg", cwd=cwd))
    assert plain.pop("enabled") is False
    assert jit.pop("enabled") is True
    assert jit == plain


def test_relative_script_path_sees_what_python_sees(script, tmp_path):
    # `python scripts/show.py` gives the script an absolute __file__ (since 3.9) and
    # sys.path[0]; `python -m rjit scripts/show.py` must give the same.
    relative = os.path.relpath(script, tmp_path)
    plain = shown(run_python(relative, cwd=tmp_path))
    jit = shown(run_python("-m", "rjit", relative, cwd=tmp_path))
    plain.pop("enabled"), jit.pop("enabled")
    assert jit == plain


SHOW_PATH = """
    import json, os, sys
    import rjit
    print(json.dumps({
        "name": __name__,
        "argv": sys.argv,
        "path0": sys.path[0],
        "parent_on_path": os.path.dirname(os.path.abspath(sys.path[0])) in sys.path,
        "file": __file__,
    }))
"""


def test_directory_with_main_py_sees_what_python_sees(tmp_path):
    app = tmp_path / "app"
    app.mkdir()
    write(app / "__main__.py", SHOW_PATH)
    plain = shown(run_python("app", "x", cwd=tmp_path))
    jit = shown(run_python("-m", "rjit", "app", "x", cwd=tmp_path))
    assert plain["parent_on_path"] is False
    assert jit == plain


def test_zipapp_sees_what_python_sees(tmp_path):
    import zipfile

    with zipfile.ZipFile(tmp_path / "app.pyz", "w") as z:
        z.writestr("__main__.py", textwrap.dedent(SHOW_PATH))
    plain = shown(run_python("app.pyz", "x", cwd=tmp_path))
    jit = shown(run_python("-m", "rjit", "app.pyz", "x", cwd=tmp_path))
    assert jit == plain


def test_functions_in_the_script_are_counted(tmp_path):
    s = write(tmp_path / "count.py", """
        import rjit
        def f(x):
            return x * 2
        total = 0
        for i in range(10):
            total += f(i)
        print(rjit.info(f).calls, rjit.info(f).state, total)
    """)
    proc = assert_ok(run_python("-m", "rjit", str(s), env={"RJIT_THRESHOLD": "0"}))
    assert proc.stdout.split() == ["10", "compiled", "90"]


def test_sys_exit_code_propagates(tmp_path):
    s = write(tmp_path / "exit3.py", "import sys\nprint('before')\nsys.exit(3)\nprint('after')\n")
    proc = run_python("-m", "rjit", str(s))
    assert proc.returncode == 3
    assert proc.stdout == "before\n"


def test_sys_exit_with_a_message(tmp_path):
    s = write(tmp_path / "exitmsg.py", "import sys\nsys.exit('fatal: bad input')\n")
    proc = run_python("-m", "rjit", str(s))
    plain = run_python(str(s))
    assert proc.returncode == plain.returncode == 1
    assert proc.stderr == plain.stderr == "fatal: bad input\n"


def test_normal_end_exits_0(tmp_path):
    s = write(tmp_path / "ok.py", "x = 1\n")
    proc = run_python("-m", "rjit", str(s))
    assert proc.returncode == 0
    assert proc.stdout == proc.stderr == ""


FAILING = """
    def inner(x):
        return {}[x]

    def outer():
        return inner("missing-key")

    print("running")
    outer()
"""


def test_uncaught_exception_exits_1_with_the_scripts_traceback(tmp_path):
    s = write(tmp_path / "fail.py", FAILING)
    proc = run_python("-m", "rjit", str(s))
    assert proc.returncode == 1
    assert proc.stdout == "running\n"
    err = proc.stderr
    assert err.startswith("Traceback (most recent call last):\n")
    assert err.rstrip().endswith("KeyError: 'missing-key'")
    assert f'File "{s}", line 9, in <module>' in err
    assert f'File "{s}", line 6, in outer' in err
    assert f'File "{s}", line 3, in inner' in err
    assert "runpy" not in err
    assert os.path.join("rjit", "__main__.py") not in err


def test_uncaught_exception_traceback_is_identical_to_plain_python(tmp_path):
    s = write(tmp_path / "fail.py", FAILING)
    plain = run_python(str(s))
    jit = run_python("-m", "rjit", str(s))
    assert jit.returncode == plain.returncode == 1
    assert jit.stdout == plain.stdout
    assert jit.stderr == plain.stderr


def test_traceback_with_a_relative_script_path_is_identical_to_plain_python(tmp_path):
    write(tmp_path / "fail.py", FAILING)
    plain = run_python("fail.py", cwd=tmp_path)
    jit = run_python("-m", "rjit", "fail.py", cwd=tmp_path)
    assert jit.returncode == plain.returncode == 1
    assert jit.stderr == plain.stderr


def test_chained_exception_traceback_is_identical_to_plain_python(tmp_path):
    s = write(tmp_path / "chain.py", """
        def parse(text):
            try:
                return int(text)
            except ValueError as e:
                raise RuntimeError("cannot parse") from e
        parse("x")
    """)
    plain = run_python(str(s))
    jit = run_python("-m", "rjit", str(s))
    assert jit.returncode == plain.returncode == 1
    assert jit.stderr == plain.stderr
    assert "The above exception was the direct cause" in jit.stderr


def test_syntax_error_in_the_script_exits_1(tmp_path):
    s = write(tmp_path / "bad.py", "def f(:\n    pass\n")
    proc = run_python("-m", "rjit", str(s))
    assert proc.returncode == 1
    assert "SyntaxError" in proc.stderr
    assert "runpy" not in proc.stderr


def test_uncaught_keyboardinterrupt_exits_like_python(tmp_path):
    s = write(tmp_path / "ctrlc.py", "raise KeyboardInterrupt\n")
    plain = run_python(str(s))
    jit = run_python("-m", "rjit", str(s))
    assert plain.returncode == -signal.SIGINT
    assert jit.returncode == plain.returncode
    assert "KeyboardInterrupt" in jit.stderr


def test_missing_script_exits_2_with_a_message(tmp_path):
    missing = tmp_path / "nope.py"
    proc = run_python("-m", "rjit", str(missing))
    assert proc.returncode == 2
    assert "nope.py" in proc.stderr
    assert "No such file" in proc.stderr
    assert proc.stdout == ""
    assert run_python(str(missing)).returncode == 2  # as python itself


def test_m_module_form(tmp_path):
    write(tmp_path / "mymod.py", SHOW)
    plain = shown(run_python("-m", "mymod", "a", "-b", cwd=tmp_path))
    jit = shown(run_python("-m", "rjit", "-m", "mymod", "a", "-b", cwd=tmp_path))
    assert jit.pop("enabled") is True
    assert plain.pop("enabled") is False
    assert jit["name"] == "__main__"
    assert jit["argv"] == [str(tmp_path / "mymod.py"), "a", "-b"]
    assert jit == plain


def test_m_package_runs_its_main(tmp_path):
    pkg = tmp_path / "mypkg"
    pkg.mkdir()
    write(pkg / "__init__.py", "")
    write(pkg / "__main__.py", """
        import sys, rjit
        print(__name__, __package__, sys.argv[1:], rjit.enabled())
    """)
    proc = assert_ok(run_python("-m", "rjit", "-m", "mypkg", "x", cwd=tmp_path))
    assert proc.stdout.strip() == "__main__ mypkg ['x'] True"


def test_m_module_exit_code_propagates(tmp_path):
    write(tmp_path / "exits.py", "raise SystemExit(4)\n")
    proc = run_python("-m", "rjit", "-m", "exits", cwd=tmp_path)
    assert proc.returncode == 4


def test_m_missing_module_fails_with_a_message(tmp_path):
    proc = run_python("-m", "rjit", "-m", "no_such_module_xyz", cwd=tmp_path)
    assert proc.returncode == 1
    assert "No module named" in proc.stderr
    assert "no_such_module_xyz" in proc.stderr


def test_m_without_a_module_prints_usage_and_exits_2():
    proc = run_python("-m", "rjit", "-m")
    assert proc.returncode == 2
    assert "usage" in proc.stderr.lower()


def test_no_arguments_prints_usage_and_exits_2():
    proc = run_python("-m", "rjit")
    assert proc.returncode == 2
    assert "usage" in proc.stderr.lower()
    assert "python -m rjit" in proc.stderr
    assert proc.stdout == ""


def test_help_prints_usage_to_stdout_and_exits_0():
    proc = run_python("-m", "rjit", "--help")
    assert proc.returncode == 0
    assert "usage" in proc.stdout.lower()


def test_rjit_0_kill_switch_applies_to_the_cli(script):
    data = shown(run_python("-m", "rjit", str(script), env={"RJIT": "0"}))
    assert data["enabled"] is False
    assert data["name"] == "__main__"


def test_script_can_pickle_its_own_classes(tmp_path):
    s = write(tmp_path / "pick.py", """
        import pickle
        class Point:
            def __init__(self, x):
                self.x = x
        p = pickle.loads(pickle.dumps(Point(3)))
        print(type(p).__name__, p.x)
    """)
    proc = assert_ok(run_python("-m", "rjit", str(s)))
    assert proc.stdout.strip() == "Point 3"


def test_script_reads_stdin(tmp_path):
    s = write(tmp_path / "echo.py", "import sys\nprint(sys.stdin.read().upper(), end='')\n")
    proc = assert_ok(run_python("-m", "rjit", str(s), input="hello\n"))
    assert proc.stdout == "HELLO\n"
