"""rjit: a JIT compiler for CPython, written in Rust.

    import rjit
    rjit.enable()            # whole program: hot functions are compiled
    @rjit.jit                # one function: compiled at its first call (Numba-compatible)
    rjit.info(f)             # is f compiled, and if not, why; specialisations, side exits
    rjit.dis(f)              # bytecode, IR, machine code, with the source lines
    rjit.stats()             # global counters
    with rjit.profile() as p: ...   # hot functions and loops; p.report()

Environment: ``RJIT=1`` enables rjit at start-up (no code change), ``RJIT=0`` keeps it off even
where code calls ``enable()`` or uses ``@jit``, ``RJIT_THRESHOLD=N`` sets the threshold.
"""

from __future__ import annotations

import dataclasses
import functools
import linecache
import sys
import types
import warnings
from typing import TYPE_CHECKING, Any, Callable, Optional, TextIO

if TYPE_CHECKING:
    from .profiler import Profile

from . import _rjit

__version__: str = _rjit.__version__

__all__ = [
    "enable",
    "disable",
    "enabled",
    "jit",
    "njit",
    "nojit",
    "info",
    "dis",
    "profile",
    "stats",
    "FunctionInfo",
    "Specialization",
    "SideExit",
    "JitFunction",
    "__version__",
]

for _message in _rjit.env_warnings:
    warnings.warn(_message, RuntimeWarning, stacklevel=2)

# Largest threshold the native side stores (u64); larger means "never".
_MAX_THRESHOLD = 2**64 - 1


def _check_threshold(threshold: object) -> Optional[int]:
    if threshold is None:
        return None
    if isinstance(threshold, bool) or not isinstance(threshold, int):
        raise TypeError(f"threshold must be a non-negative int or None, not {type(threshold).__name__}")
    if threshold < 0:
        raise ValueError(f"threshold must be >= 0 (0 compiles every function at its first call), got {threshold}")
    return min(threshold, _MAX_THRESHOLD)


def enable(threshold: Optional[int] = None) -> None:
    """Compile hot functions of the whole program from now on.

    ``threshold`` is the number of calls a function runs in the interpreter before it is
    compiled (functions with a loop are hot sooner); 0 compiles every function at its first
    call; None keeps the current value (``RJIT_THRESHOLD`` or the default). Idempotent.
    Raises RuntimeError if another PEP 523 frame evaluation function (a debugger, another JIT)
    is installed. Does nothing when ``RJIT=0`` is set.
    """
    _rjit.enable(_check_threshold(threshold))


def disable() -> None:
    """Back to plain CPython for the whole program (``@rjit.jit`` functions still compile)."""
    _rjit.disable()


def enabled() -> bool:
    """Whether whole-program mode is on."""
    return _rjit.enabled()


# Numba's jit keywords, accepted so code written for Numba runs unchanged. rjit specialises on
# the types it observes, so none of them changes what it compiles yet; they are validated and
# kept on the wrapper (``JitFunction.options``).
_NUMBA_OPTIONS = {
    "nopython": (bool,),
    "nogil": (bool,),
    "cache": (bool,),
    "fastmath": (bool, set, frozenset),
    "parallel": (bool, dict),
    "boundscheck": (bool, type(None)),
    "error_model": (str,),
    "forceobj": (bool,),
    "looplift": (bool,),
    "inline": (str,),
    "locals": (dict,),
    "debug": (bool,),
}
_ERROR_MODELS = ("python", "numpy")


def _check_options(options: dict) -> dict:
    for name, value in options.items():
        allowed = _NUMBA_OPTIONS.get(name)
        if allowed is None:
            known = ", ".join(sorted(_NUMBA_OPTIONS))
            raise TypeError(f"rjit.jit() got an unexpected keyword argument {name!r} (accepted: {known})")
        if not isinstance(value, allowed):
            names = " or ".join(t.__name__ for t in allowed)
            raise TypeError(f"rjit.jit(): {name} must be {names}, not {type(value).__name__}")
    if options.get("error_model", "python") not in _ERROR_MODELS:
        raise ValueError(f"rjit.jit(): error_model must be 'python' or 'numpy', not {options['error_model']!r}")
    return options


def _python_function(obj: object, api: str) -> types.FunctionType:
    """The plain Python function behind ``obj``, or TypeError naming what was given."""
    if isinstance(obj, JitFunction):
        return obj.py_func
    if isinstance(obj, types.FunctionType):
        return obj
    if isinstance(obj, type):
        what = f"class {obj.__qualname__}"
    elif isinstance(obj, (types.BuiltinFunctionType, types.BuiltinMethodType)):
        what = f"built-in {obj.__qualname__}" if hasattr(obj, "__qualname__") else "a built-in"
    else:
        what = f"{type(obj).__name__} object"
    raise TypeError(f"{api} expects a Python function (def or lambda), got {what}")


#: What ``@rjit.jit`` returns: calls (by vectorcall, without a frame of its own), binds as a
#: method and introspects like the function it wraps; ``py_func`` (and ``__wrapped__``) is the
#: original function and ``options`` the keywords given. Implemented in C (pyshim/capi).
JitFunction = _rjit.JitFunction


def jit(signature_or_function: Any = None, **options: Any) -> Any:
    """Compile a function at its first call, with or without ``rjit.enable()``.

    Usable as ``@jit``, ``@jit(...)`` with Numba's keywords (``nopython``, ``nogil``,
    ``cache``, ``fastmath``, ``parallel``, ``boundscheck``, ``error_model``, ...) or
    ``jit("float64(float64)")`` with a Numba signature (accepted and ignored: rjit specialises
    on the types it sees). Unknown keywords raise TypeError.
    """
    options = _check_options(dict(options))
    if signature_or_function is None or isinstance(signature_or_function, (str, list, tuple)):
        return functools.partial(_wrap, options=options)
    return _wrap(signature_or_function, options)


def njit(signature_or_function: Any = None, **options: Any) -> Any:
    """Numba's ``njit``: ``jit`` with ``nopython=True``."""
    options.setdefault("nopython", True)
    return jit(signature_or_function, **options)


def _wrap(func: object, options: dict) -> JitFunction:
    plain = _python_function(func, "rjit.jit()")
    wrapper = JitFunction(plain)
    functools.update_wrapper(wrapper, plain)
    wrapper.options = options
    _rjit.mark_jit(plain.__code__)
    return wrapper


def nojit(func: Callable) -> Callable:
    """Never compile ``func``; returns it unchanged (a ``JitFunction`` gives its ``py_func``)."""
    plain = _python_function(func, "rjit.nojit()")
    _rjit.mark_nojit(plain.__code__)
    return plain


@dataclasses.dataclass(frozen=True)
class SideExit:
    """A place where specialised machine code hands its frame to the interpreter (a
    deoptimisation), and how often it did."""

    #: Why, e.g. "int overflow (+)" or "argument is not int (entry guard)".
    reason: str
    #: Source line and bytecode offset (as ``dis`` prints it) of the instruction redone.
    line: Optional[int]
    offset: int
    count: int


@dataclasses.dataclass(frozen=True)
class Specialization:
    """One version of a function's machine code."""

    #: The version running now (older ones were replaced by a recompilation).
    current: bool
    #: Works on unboxed ints/floats/bools (False: generic code, C API calls on objects).
    specialised: bool
    #: The argument types of the call that made it hot, by name (None: compiled without
    #: speculation).
    arg_types: Optional[dict]
    #: The arguments checked on entry, as {name: type}: a call with another type deoptimises.
    entry_guards: dict
    code_size: int
    compile_time_us: float
    side_exits: tuple = ()

    def __str__(self) -> str:
        if not self.specialised:
            return "generic (no type speculation)"
        guards = ", ".join(f"{n}: {t}" for n, t in self.entry_guards.items()) or "none"
        return f"specialised; entry guards: {guards}"


@dataclasses.dataclass(frozen=True)
class FunctionInfo:
    """What rjit knows about one function (``rjit.info(f)``)."""

    name: str
    qualname: str
    filename: str
    firstlineno: int
    #: Whether machine code exists for the function.
    compiled: bool
    #: "cold" (counting calls), "compiled", "declined", "nojit" or "interpreter" (generators).
    state: str
    #: Why it is not compiled, in words (None when nothing stops it).
    reason: Optional[str]
    #: Calls the hook has counted (not generator resumptions, not calls under a tracer).
    calls: int
    #: Calls after which it gets compiled (None once that no longer applies).
    hot_after: Optional[int]
    has_loop: bool
    #: Wrapped with ``@rjit.jit`` (compiled at first call).
    jit: bool
    #: Filled in by the compiler: compile time, machine code size, specialisations, side exits.
    compile_time_us: Optional[float] = None
    code_size: Optional[int] = None
    #: Every version of the machine code (``Specialization``), the current one last.
    specializations: tuple = ()
    #: Deoptimisations taken, as {(reason, line): count}, over all versions.
    side_exits: dict = dataclasses.field(default_factory=dict)
    #: Of ``calls``: how many entered machine code, and how many ran in the interpreter.
    native_calls: int = 0
    interpreted_calls: int = 0
    #: For a declined function: the opcode and source line of the first construct the
    #: compiler does not handle.
    reason_opcode: Optional[str] = None
    reason_line: Optional[int] = None

    def __str__(self) -> str:
        lines = [f"{self.qualname} ({self.filename}:{self.firstlineno})"]
        status = "compiled" if self.compiled else f"not compiled ({self.state})"
        counts = f"{self.calls} calls"
        if self.native_calls:
            counts += f" ({self.native_calls} in machine code, {self.interpreted_calls} in the interpreter)"
        lines.append(f"  {status}; {counts}" + (", has a loop" if self.has_loop else ""))
        if self.reason:
            lines.append(f"  why: {self.reason}")
            if self.reason_line is not None:
                source = linecache.getline(self.filename, self.reason_line).strip()
                if source:
                    lines.append(f"    line {self.reason_line}: {source}")
        elif self.hot_after is not None and not self.compiled:
            lines.append(f"  compiled after {self.hot_after} calls")
        if self.compile_time_us is not None:
            lines.append(f"  compile time: {self.compile_time_us:.1f} us; code size: {self.code_size} bytes")
        for spec in self.specializations:
            tag = "" if spec.current else " (replaced)"
            lines.append(f"  machine code{tag}: {spec}")
        if self.side_exits:
            lines.append("  side exits taken:")
            for (reason, line), count in sorted(self.side_exits.items(), key=lambda kv: -kv[1]):
                lines.append(f"    {count:>8}x  line {line}: {reason}")
        elif any(s.side_exits for s in self.specializations):
            lines.append("  side exits taken: none")
        return "\n".join(lines)


def _code_of(obj: object, api: str = "rjit.info()") -> types.CodeType:
    if isinstance(obj, types.CodeType):
        return obj
    if isinstance(obj, (types.MethodType, staticmethod, classmethod)):
        obj = obj.__func__
    return _python_function(obj, api).__code__


def _specialization(code: types.CodeType, raw: dict) -> Specialization:
    names = code.co_varnames
    kinds = raw["arg_kinds"]
    return Specialization(
        current=raw["current"],
        specialised=raw["specialised"],
        arg_types=None if kinds is None else {names[i]: k for i, k in enumerate(kinds) if i < len(names)},
        entry_guards={names[i]: t for i, t in raw["entry_guards"]},
        code_size=raw["code_size"],
        compile_time_us=raw["compile_time_us"],
        side_exits=tuple(SideExit(e["reason"], e["line"], e["offset"], e["count"]) for e in raw["side_exits"]),
    )


def info(func: object) -> FunctionInfo:
    """What rjit did with ``func`` (a function, ``@jit`` function, method or code object)."""
    code = _code_of(func)
    raw = _rjit.code_info(code)
    specializations = tuple(_specialization(code, v) for v in raw["versions"])
    side_exits: dict = {}
    for spec in specializations:
        for e in spec.side_exits:
            if e.count:
                side_exits[(e.reason, e.line)] = side_exits.get((e.reason, e.line), 0) + e.count
    return FunctionInfo(
        name=code.co_name,
        qualname=code.co_qualname,
        filename=code.co_filename,
        firstlineno=code.co_firstlineno,
        compiled=raw["state"] == "compiled",
        state=raw["state"],
        reason=raw["reason"],
        calls=raw["calls"],
        hot_after=raw["hot_after"],
        has_loop=raw["has_loop"],
        jit=raw["forced"],
        compile_time_us=raw["compile_time_us"],
        code_size=raw["code_size"],
        specializations=specializations,
        side_exits=side_exits,
        native_calls=raw["native_calls"],
        interpreted_calls=raw["interpreted_calls"],
        reason_opcode=raw["reason_opcode"],
        reason_line=raw["reason_line"],
    )


def dis(func: object, file: Optional[TextIO] = None) -> None:
    """Prints what rjit made of ``func``: its bytecode, the IR before and after type
    specialisation, the LIR and the machine code, with the source lines between them. The
    machine code is the function's current code (if it is compiled), each piece under the LIR
    block or instruction it implements. Given a function, the IR is rebuilt as the compiler
    made it, with the calls it inlined (from the function's globals as they are now); given a
    code object, inlined calls show as calls."""
    from ._dis import render

    code = _code_of(func, "rjit.dis()")
    if isinstance(func, (types.MethodType, staticmethod, classmethod)):
        func = func.__func__
    function = None if isinstance(func, types.CodeType) else _python_function(func, "rjit.dis()")
    print(render(code, function), file=file if file is not None else sys.stdout)


def profile(interval: float = 0.002, clock: str = "wall") -> "Profile":
    """A sampling profiler: ``with rjit.profile() as p: ...`` then ``p.report()``. See
    the ``rjit.profiler`` module docs (``python -m rjit --profile`` uses the same)."""
    from .profiler import Profile

    return Profile(interval=interval, clock=clock)


def stats() -> dict:
    """Global counters: ``functions_seen``/``functions_alive``; ``compiled`` (and how many of
    those on unboxed values: ``specialised``); ``declined`` with ``declined_by_reason`` and
    ``declined_by_opcode`` (the first unsupported opcode of each declined function);
    ``deopts`` (compiled code handing its frame to the interpreter at a failed guard or
    overflow) with ``deopts_by_reason``; ``despecialised`` (functions recompiled without
    speculation because they kept deoptimising) and ``recompilations``; ``compile_time_us``;
    ``code_bytes`` (ever generated) and ``code_memory_in_use`` (bytes of live machine code)."""
    return _rjit.stats()
