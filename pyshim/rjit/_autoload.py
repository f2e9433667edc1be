"""Imported at interpreter start-up by ``rjit-autoload.pth`` when ``RJIT`` is set.

``RJIT=1`` turns whole-program mode on (threshold from ``RJIT_THRESHOLD``); ``RJIT=0`` only
loads rjit so that its kill switch is in force. Never lets an error stop the interpreter.
"""

import sys


def _autoload() -> None:
    try:
        import rjit

        if rjit._rjit.env_mode() == "autoload":
            rjit.enable()
    except Exception as exc:  # a broken install must not break every Python program
        print(f"rjit: not enabled at start-up: {type(exc).__name__}: {exc}", file=sys.stderr)


_autoload()
