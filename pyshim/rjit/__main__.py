"""``python -m rjit [--profile] [--profile-json FILE] [--profile-html FILE] [-m module | script.py]
[args...]``: run a program with rjit enabled; with a profile option, sample it and report the
hot functions and loops at exit (``rjit.profiler``): the table on stderr, and/or JSON or HTML
files.

The program runs as ``python script.py`` would run it: as ``__main__``, with ``sys.argv`` and
``sys.path[0]`` set the same way, the same exit status, and tracebacks that start at the
program's own frames (this runner's frames are cut off).
"""

from __future__ import annotations

import builtins
import importlib.machinery
import io
import os
import runpy
import signal
import sys
import types
import zipfile

import rjit

USAGE = ("usage: python -m rjit [--profile] [--profile-json FILE] [--profile-html FILE] "
         "[-m module | script.py] [args...]")


def _program_traceback(tb, runner_files):
    """Skips the leading frames that belong to this runner and runpy."""
    while tb is not None and tb.tb_frame.f_code.co_filename in runner_files:
        tb = tb.tb_next
    return tb


def _run_file(path: str) -> None:
    """Runs a script as the interpreter runs ``python path``: in a fresh ``__main__`` module,
    with an absolute ``__file__`` and ``sys.argv`` left as given."""
    main = types.ModuleType("__main__")
    main.__dict__.update(
        __file__=path,
        __cached__=None,
        __builtins__=builtins,
        __loader__=importlib.machinery.SourceFileLoader("__main__", path),
    )
    sys.modules["__main__"] = main
    with io.open_code(path) as f:
        source = f.read()
    exec(compile(source, path, "exec"), main.__dict__)


def _profile_options(argv: list[str]):
    """Takes the profile options off the front of `argv`: (table wanted, json path, html path,
    the rest), or None after printing an error."""
    table, json_path, html_path = False, None, None
    while argv and argv[0].startswith("--profile"):
        option, _, value = argv[0].partition("=")
        if option == "--profile" and not value:
            table = True
            argv = argv[1:]
            continue
        if option not in ("--profile-json", "--profile-html"):
            print(f"python -m rjit: unknown option {argv[0]!r}\n{USAGE}", file=sys.stderr)
            return None
        if not value:
            if len(argv) < 2:
                print(f"python -m rjit: {option} needs a file name\n{USAGE}", file=sys.stderr)
                return None
            value, argv = argv[1], argv[2:]
        else:
            argv = argv[1:]
        if option == "--profile-json":
            json_path = value
        else:
            html_path = value
    return table, json_path, html_path, argv


def _finish_profile(profile, table: bool, json_path, html_path) -> None:
    profile.stop()
    sys.stdout.flush()  # the program's output first
    if table:
        profile.report(file=sys.stderr)
    if json_path:
        profile.write_json(json_path)
    if html_path:
        profile.write_html(html_path)


def main(argv: list[str]) -> int:
    options = _profile_options(argv)
    if options is None:
        return 2
    table, json_path, html_path, argv = options
    if not (table or json_path or html_path):
        return _main(argv, None)
    profile = rjit.profile()
    try:
        return _main(argv, profile)
    finally:
        _finish_profile(profile, table, json_path, html_path)


def _main(argv: list[str], profile) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE, file=sys.stderr if not argv else sys.stdout)
        return 2 if not argv else 0
    if argv[0] == "-m":
        if len(argv) < 2:
            print(USAGE, file=sys.stderr)
            return 2
        sys.argv = [argv[1]] + argv[2:]  # runpy replaces argv[0] with the module's path
        sys.path[0] = os.getcwd()
        run = lambda: runpy.run_module(argv[1], run_name="__main__", alter_sys=True)
    else:
        target = argv[0]
        if not os.path.exists(target):
            print(f"{sys.executable}: can't open file {os.path.abspath(target)!r}: No such file or directory",
                  file=sys.stderr)
            return 2
        sys.argv = list(argv)
        path = os.path.abspath(target)
        if os.path.isdir(path) or zipfile.is_zipfile(path):
            # A directory or zip application: the interpreter puts it first on sys.path and
            # runs its __main__ module.
            sys.path[0] = path
            run = lambda: runpy._run_module_as_main("__main__", alter_argv=False)
        else:
            sys.path[0] = os.path.dirname(path)
            run = lambda: _run_file(path)

    rjit.enable()
    runner_files = {__file__, runpy.__file__, "<frozen runpy>"}
    if profile is not None:
        profile.start()
    try:
        run()
    except SystemExit:
        raise
    except BaseException as exc:  # report like the interpreter does for an uncaught exception
        exc.__traceback__ = _program_traceback(exc.__traceback__, runner_files)
        sys.excepthook(type(exc), exc, exc.__traceback__)
        if isinstance(exc, KeyboardInterrupt):
            # The interpreter exits "killed by SIGINT" after an uncaught KeyboardInterrupt.
            sys.stdout.flush()
            sys.stderr.flush()
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGINT)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
