"""Time the benchmark kernels under plain CPython, rjit and (optionally) Numba.

Usage::

    python benchmarks/run.py [--json FILE] [--numba] [--only NAMES] [--repeat N] [--plain-only]

For each kernel (see ``kernels/__init__.py``) the inputs are built once, then the modes are run
interleaved in the same process, so that a noisy machine slows all of them alike:

- ``plain``: CPython's interpreter, with rjit disabled (``rjit.disable()``).
- ``rjit``: ``rjit.enable(threshold=0)`` around the call (whole-program mode, so the kernel's
  helper functions are compiled too), ``rjit.disable()`` after it.
- ``numba`` (with ``--numba``): a second copy of the kernel module whose ``FUNCTIONS`` are
  replaced by ``numba.njit`` versions; its ``run`` stays interpreted and calls them.

Each mode's first ("warm-up") run is reported on its own: for rjit and Numba it includes
compiling. Then ``--repeat`` timed rounds follow (the order of the modes rotates each round)
and each mode's median is reported. Speedup = plain median / mode median.
Compile time: rjit's is the growth of ``rjit.stats()["compile_time_us"]`` over the warm-up run;
Numba's is its first call minus its steady (median) call, an estimate.

Every result is compared with plain CPython's first result: plain's later runs and rjit's must
be exactly equal (same type; floats and arrays bit for bit). Numba's must be equal within a
relative tolerance of 1e-9 (integers exactly): Numba may round some math functions differently
in the last bits; a kernel can set its own ``NUMBA_RTOL`` when it explains why. Any mismatch or
error is printed as MISMATCH / ERROR and makes the exit status 1. The exit status is 2 when
rjit cannot be imported (unless ``--plain-only``).

JSON written by ``--json FILE``::

    {
      "python": "3.11.7 (main, ...) [GCC ...]",   # sys.version
      "platform": "Linux-...",                     # platform.platform()
      "date": "2024-01-01T12:00:00",               # local time, ISO 8601, seconds
      "versions": {"rjit": str|null, "numpy": str|null, "numba": str|null},
      "repeat": 5,
      "modes": ["plain", "rjit", "numba"],          # the modes that were run
      "ok": true,                                   # no mismatch and no error
      "kernels": [                                  # one row per kernel, in table order
        {
          "kernel": "sum_squares",
          "description": "int loop: s += i*i over range(n)",
          "check": "ok" | "MISMATCH" | "ERROR",
          "plain": MODE, "rjit": MODE | null, "numba": MODE | null
        }
      ]
    }

    MODE = {
      "first_s": float | null,       # the warm-up run (includes compiling for rjit/numba)
      "times_s": [float, ...],       # the timed runs, in order
      "median_s": float | null,
      "match": bool,                 # every result of this mode equalled plain's first one
      "error": str | null,           # exception raised by the kernel under this mode
      # rjit and numba only:
      "speedup": float | null,       # plain median_s / this median_s
      "compile_ms": float | null,
      # rjit only:
      "compiled_functions": int,     # growth of rjit.stats()["compiled"] over the warm-up
      "steady_compile_ms": float,    # compile time spent during the timed runs (recompiles)
      "functions": [{"name": str, "compiled": bool, "reason": str|null, "calls": int}],
      # numba only:
      "rtol": float                  # the tolerance used for comparing its results
    }
"""

import argparse
import datetime
import gc
import importlib
import importlib.util
import json
import math
import platform
import statistics
import sys
import time
import traceback
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from kernels import ALL  # noqa: E402  (needs the path above)

NUMBA_DEFAULT_RTOL = 1e-9


# ----------------------------------------------------------------------------------------------
# Comparing results


def _is_ndarray(x):
    np = sys.modules.get("numpy")
    return np is not None and isinstance(x, np.ndarray)


def exactly_equal(a, b):
    """Same type and same value, floats bit for bit (repr round-trips exactly and tells -0.0
    from 0.0), arrays by dtype, shape and bytes. This is rjit's contract: no result changes."""
    if type(a) is not type(b):
        return False
    if isinstance(a, (tuple, list)):
        return len(a) == len(b) and all(exactly_equal(x, y) for x, y in zip(a, b))
    if _is_ndarray(a):
        return (a.dtype == b.dtype and a.shape == b.shape
                and a.tobytes(order="C") == b.tobytes(order="C"))
    if isinstance(a, float):  # also numpy.float64, a float subclass
        return repr(a) == repr(b)
    return a == b


def close_enough(expected, got, rtol):
    """Numba's comparison: integers exactly, floats and float arrays within `rtol` relative.
    Types are not compared (Numba returns Python floats where CPython gives numpy.float64)."""
    if isinstance(expected, (tuple, list)):
        return (isinstance(got, (tuple, list)) and len(expected) == len(got)
                and all(close_enough(x, y, rtol) for x, y in zip(expected, got)))
    if _is_ndarray(expected):
        import numpy as np
        got = np.asarray(got)
        if got.shape != expected.shape:
            return False
        if expected.dtype.kind in "iub" and got.dtype.kind in "iub":
            return bool(np.array_equal(expected, got))
        return bool(np.allclose(got, expected, rtol=rtol, atol=0.0, equal_nan=True))
    if isinstance(expected, int) and isinstance(got, int):
        return expected == got
    try:
        return math.isclose(float(expected), float(got), rel_tol=rtol, abs_tol=0.0)
    except (TypeError, ValueError):
        return expected == got


def short(result, width=60):
    """A one-line rendering of a result for MISMATCH messages."""
    text = repr(result).replace("\n", " ")
    return text if len(text) <= width else text[:width - 3] + "..."


# ----------------------------------------------------------------------------------------------
# Modes. `call(inputs)` returns (seconds, result); whatever a mode does besides running the
# kernel (switching rjit on and off, collecting garbage) happens outside the timed interval.


class PlainMode:
    name = "plain"

    def __init__(self, module, rjit):
        self.run = module.run
        self.rjit = rjit

    def call(self, inputs):
        if self.rjit is not None and self.rjit.enabled():
            self.rjit.disable()
        run = self.run
        gc.collect()
        t0 = time.perf_counter()
        result = run(*inputs)
        t1 = time.perf_counter()
        return t1 - t0, result


class RjitMode:
    """rjit in whole-program mode, threshold 0: every function called in the timed window is
    compiled at its first call. Only the kernel (and rjit.disable) runs in that window: this
    method's own frame started before enable(), so it stays interpreted."""

    name = "rjit"

    def __init__(self, module, rjit):
        self.module = module
        self.run = module.run
        self.rjit = rjit

    def call(self, inputs):
        rjit = self.rjit
        run = self.run
        gc.collect()
        rjit.enable(threshold=0)
        try:
            t0 = time.perf_counter()
            result = run(*inputs)
            t1 = time.perf_counter()
        finally:
            rjit.disable()
        return t1 - t0, result

    def function_info(self):
        """What rjit says about run() and each kernel function: compiled, or why not."""
        rows = []
        for f in [self.module.run, *self.module.FUNCTIONS]:
            info = self.rjit.info(f)
            rows.append({"name": f.__name__, "compiled": bool(info.compiled),
                         "reason": info.reason, "calls": info.calls})
        return rows


class NumbaMode:
    name = "numba"

    def __init__(self, name):
        self.module = load_numba_copy(name)
        self.run = self.module.run
        self.rtol = getattr(self.module, "NUMBA_RTOL", NUMBA_DEFAULT_RTOL)

    def call(self, inputs):
        run = self.run
        gc.collect()
        t0 = time.perf_counter()
        result = run(*inputs)
        t1 = time.perf_counter()
        return t1 - t0, result


def load_copy(name, module_name):
    """A new module object `module_name` for kernels/<name>.py: its functions have code
    objects of their own."""
    path = HERE / "kernels" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    # Numba finds a recursive function's own global through sys.modules: without this entry
    # fib() fails with "numba jitted function aborted due to unresolved symbol".
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def load_numba_copy(name):
    """A fresh copy of kernels/<name>.py whose FUNCTIONS are numba.njit versions, rebound in
    the copy's globals so that the kernel's calls between its functions reach the njit ones.
    A copy, not the imported module: plain and rjit keep calling the original functions."""
    import numba

    module = load_copy(name, f"_numba_kernels_{name}")
    for f in module.FUNCTIONS:
        setattr(module, f.__name__, numba.njit(f))
    return module


# ----------------------------------------------------------------------------------------------
# One kernel


def new_mode_row():
    return {"first_s": None, "times_s": [], "median_s": None, "match": True, "error": None}


def describe_error(exc):
    """Exception type and the first line of its message (Numba's run to dozens of lines)."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


def bench_kernel(name, args, rjit):
    """Warm up and time one kernel under every mode; returns its JSON row."""
    module = importlib.import_module(f"kernels.{name}")
    row = {"kernel": name, "description": module.DESCRIPTION, "check": "ok",
           "plain": new_mode_row(), "rjit": None, "numba": None}
    inputs = module.setup()

    modes = [PlainMode(module, rjit)]
    if not args.plain_only:
        modes.append(RjitMode(module, rjit))
        row["rjit"] = new_mode_row()
    if args.numba:
        row["numba"] = new_mode_row()
        try:
            modes.append(NumbaMode(name))
            row["numba"]["rtol"] = modes[-1].rtol
        except Exception as exc:  # noqa: BLE001 - reported, not hidden
            row["numba"]["error"] = describe_error(exc)

    reference = None  # plain CPython's first result

    def check(mode, result):
        """Compare `result` with the reference; a mismatch is printed at once."""
        rec = row[mode.name]
        if mode.name == "numba":
            ok = close_enough(reference, result, mode.rtol)
        else:
            ok = exactly_equal(reference, result)
        if not ok and rec["match"]:
            rec["match"] = False
            print(f"  MISMATCH {name} [{mode.name}]: expected {short(reference)}, "
                  f"got {short(result)}", flush=True)

    def attempt(mode):
        """Run once; on an exception record it and drop the mode for this kernel."""
        try:
            return mode.call(inputs)
        except KeyboardInterrupt:
            raise
        except Exception as exc:  # noqa: BLE001 - reported, not hidden
            row[mode.name]["error"] = describe_error(exc)
            print(f"  ERROR {name} [{mode.name}]: {describe_error(exc)}", flush=True)
            if args.verbose:
                traceback.print_exc()
            modes.remove(mode)
            return None

    # Warm-up: each mode once; rjit's and Numba's first runs include compiling.
    for mode in list(modes):
        if mode.name == "rjit":
            before = rjit.stats()
            outcome = attempt(mode)
            after = rjit.stats()
            rec = row["rjit"]
            rec["compile_ms"] = (after["compile_time_us"] - before["compile_time_us"]) / 1000.0
            rec["compiled_functions"] = after["compiled"] - before["compiled"]
        else:
            outcome = attempt(mode)
        if outcome is None:
            if mode.name == "plain":
                row["check"] = "ERROR"
                return row  # nothing to compare the other modes with
            continue
        seconds, result = outcome
        row[mode.name]["first_s"] = seconds
        if mode.name == "plain":
            reference = result
        else:
            check(mode, result)

    # Timed rounds, interleaved; the order rotates so no mode always follows the same one.
    steady_before = rjit.stats()["compile_time_us"] if row["rjit"] is not None else 0.0
    for k in range(args.repeat):
        shift = k % len(modes)
        for mode in modes[shift:] + modes[:shift]:
            outcome = attempt(mode)
            if outcome is None:
                continue
            seconds, result = outcome
            row[mode.name]["times_s"].append(seconds)
            check(mode, result)

    plain = row["plain"]
    if plain["times_s"]:
        plain["median_s"] = statistics.median(plain["times_s"])
    for key in ("rjit", "numba"):
        rec = row[key]
        if rec is None:
            continue
        if rec["times_s"] and rec["error"] is None:
            rec["median_s"] = statistics.median(rec["times_s"])
            rec["speedup"] = (plain["median_s"] / rec["median_s"]
                              if plain["median_s"] and rec["median_s"] > 0 else None)
        else:
            rec["median_s"] = None
            rec["speedup"] = None
        if key == "numba":
            rec["compile_ms"] = ((rec["first_s"] - rec["median_s"]) * 1000.0
                                 if rec["median_s"] is not None else None)
    if row["rjit"] is not None:
        rec = row["rjit"]
        rec["steady_compile_ms"] = (rjit.stats()["compile_time_us"] - steady_before) / 1000.0
        rec["functions"] = RjitMode(module, rjit).function_info()

    records = [r for r in (row["plain"], row["rjit"], row["numba"]) if r is not None]
    # A Numba failure to compile a kernel is Numba's limitation, reported but not an rjit error.
    if any(r["error"] for r in (row["plain"], row["rjit"]) if r is not None):
        row["check"] = "ERROR"
    elif not all(r["match"] for r in records):
        row["check"] = "MISMATCH"
    return row


# ----------------------------------------------------------------------------------------------
# Report


def fmt(value, spec):
    return "-" if value is None else format(value, spec)


def fmt_s(seconds):
    """Seconds with 3 significant digits: Numba can take microseconds where CPython takes 0.3 s."""
    return "-" if seconds is None else "%#.3g" % seconds  # '#': keep trailing zeros


def print_table(rows, with_rjit, with_numba):
    headers = ["kernel", "plain s"]
    if with_rjit:
        headers += ["rjit s", "rjit x", "rjit comp ms"]
    if with_numba:
        headers += ["numba s", "numba x", "numba comp ms"]
    headers.append("check")
    table = []
    for row in rows:
        cells = [row["kernel"], fmt_s(row["plain"]["median_s"])]
        if with_rjit:
            r = row["rjit"]
            cells += [fmt_s(r["median_s"]), fmt(r.get("speedup"), ".2f"),
                      fmt(r.get("compile_ms"), ".1f")]
        if with_numba:
            n = row["numba"]
            if n["error"] is not None and n["median_s"] is None:
                cells += ["failed", "-", "-"]
            else:
                cells += [fmt_s(n["median_s"]), fmt(n.get("speedup"), ".2f"),
                          fmt(n.get("compile_ms"), ".1f")]
        cells.append(row["check"])
        table.append(cells)
    print_columns(headers, table)


def print_first_runs(rows, with_rjit, with_numba):
    headers = ["kernel", "plain 1st s"]
    if with_rjit:
        headers += ["rjit 1st s", "rjit fns compiled", "rjit comp ms in timed runs"]
    if with_numba:
        headers += ["numba 1st s"]
    table = []
    for row in rows:
        cells = [row["kernel"], fmt_s(row["plain"]["first_s"])]
        if with_rjit:
            r = row["rjit"]
            cells += [fmt_s(r["first_s"]), fmt(r.get("compiled_functions"), "d"),
                      fmt(r.get("steady_compile_ms"), ".1f")]
        if with_numba:
            cells.append(fmt_s(row["numba"]["first_s"]))
        table.append(cells)
    print_columns(headers, table)


def print_columns(headers, table):
    widths = [max(len(h), *(len(r[i]) for r in table)) if table else len(h)
              for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) if i == 0 else h.rjust(w)
                     for i, (h, w) in enumerate(zip(headers, widths)))
    print(line)
    print("-" * len(line))
    for cells in table:
        print("  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                        for i, (c, w) in enumerate(zip(cells, widths))))


def geometric_mean(values):
    values = [v for v in values if v]
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else None


def print_notes(rows, with_rjit, with_numba):
    """Why rjit did not compile a kernel function, and which kernels Numba could not handle."""
    notes = []
    # reason -> {kernel: [function names]}: one missing rjit feature makes one group.
    not_compiled = {}
    all_functions = 0
    for row in rows:
        if with_rjit and row["rjit"] is not None:
            for f in row["rjit"].get("functions", []):
                all_functions += 1
                if not f["compiled"]:
                    reason = f["reason"] or "no reason given"
                    not_compiled.setdefault(reason, {}).setdefault(row["kernel"], []).append(
                        f["name"] + "()")
    for reason, kernels in not_compiled.items():
        count = sum(len(names) for names in kernels.values())
        if count == all_functions:
            notes.append(f"rjit compiled none of the kernels' functions: {reason}")
            continue
        notes.append(f"rjit did not compile: {reason}")
        for kernel, names in kernels.items():
            notes.append(f"  {kernel}: {', '.join(names)}")
    for row in rows:
        for key in ("plain", "rjit", "numba"):
            rec = row[key]
            if rec is not None and rec["error"] is not None:
                notes.append(f"{row['kernel']}: {key} error: {rec['error']}")
    if notes:
        print("\nNotes:")
        for note in notes:
            print("  " + note)


# ----------------------------------------------------------------------------------------------
# Main


def parse_args(argv):
    parser = argparse.ArgumentParser(
        description="Time the rjit benchmark kernels: plain CPython vs rjit (vs Numba).")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    parser.add_argument("--numba", action="store_true", help="also time numba.njit versions")
    parser.add_argument("--only", metavar="NAMES",
                        help="comma-separated kernels to run (default: all): " + ",".join(ALL))
    parser.add_argument("--repeat", type=int, default=5, metavar="N",
                        help="timed runs per mode after the warm-up (default 5)")
    parser.add_argument("--plain-only", action="store_true",
                        help="time plain CPython only, without importing rjit (for sizing)")
    parser.add_argument("--verbose", action="store_true",
                        help="print tracebacks of kernel errors")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    if args.plain_only and args.numba:
        parser.error("--plain-only times plain CPython only; drop --numba or --plain-only")
    if args.only:
        args.kernels = [n.strip() for n in args.only.split(",") if n.strip()]
        unknown = [n for n in args.kernels if n not in ALL]
        if unknown:
            parser.error(f"unknown kernel(s): {', '.join(unknown)}; known: {', '.join(ALL)}")
    else:
        args.kernels = list(ALL)
    return args


def load_rjit():
    """Import rjit and check that enable() really enables it (RJIT=0 would make it a no-op
    and the 'rjit' column would silently time the interpreter)."""
    import rjit

    rjit.enable(threshold=0)
    on = rjit.enabled()
    # This enable/disable pair also lets rjit deal with its own disable() (compiled or not)
    # before any kernel's compile time is measured.
    rjit.disable()
    if not on:
        raise RuntimeError("rjit.enable() left rjit disabled (is RJIT=0 set?)")
    return rjit


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)

    rjit = None
    if args.plain_only:
        # rjit may have been started by its .pth autoloader (RJIT=1): make "plain" plain.
        autoloaded = sys.modules.get("rjit")
        if autoloaded is not None and autoloaded.enabled():
            autoloaded.disable()
            rjit = autoloaded
    else:
        try:
            rjit = load_rjit()
        except Exception as exc:  # noqa: BLE001 - any failure to import means: cannot run
            print(f"error: cannot use rjit ({describe_error(exc)}).\n"
                  "Build and install it first, or pass --plain-only to time plain CPython only.",
                  file=sys.stderr)
            return 2

    versions = {"rjit": None, "numpy": None, "numba": None}
    if not args.plain_only:
        versions["rjit"] = str(getattr(rjit, "__version__", "unknown"))
    try:
        import numpy
        versions["numpy"] = numpy.__version__
    except ImportError:
        pass
    if args.numba:
        try:
            import numba
        except ImportError as exc:
            print(f"error: --numba needs numba ({exc})", file=sys.stderr)
            return 2
        versions["numba"] = numba.__version__
        # Numba's deprecation notes are about its own future, not about these results.
        warnings.simplefilter("ignore", category=numba.NumbaWarning)

    modes = ["plain"] + ([] if args.plain_only else ["rjit"]) + (["numba"] if args.numba else [])
    date = datetime.datetime.now().isoformat(timespec="seconds")
    print(f"Python {sys.version}")
    print(f"{platform.platform()}  {date}")
    print("versions: " + ", ".join(f"{k} {v}" for k, v in versions.items() if v))
    print(f"modes: {', '.join(modes)}; median of {args.repeat} runs after one warm-up run each")
    if args.numba:
        print(f"numba results compared within rtol {NUMBA_DEFAULT_RTOL:g} "
              "(unless a kernel sets NUMBA_RTOL); rjit results must be bit-identical")
    print(flush=True)

    rows = []
    for name in args.kernels:
        print(f"{name} ...", flush=True)
        try:
            rows.append(bench_kernel(name, args, rjit))
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            return 130
        except Exception as exc:  # noqa: BLE001 - e.g. setup() or an import failed
            print(f"  ERROR {name}: {describe_error(exc)}", flush=True)
            if args.verbose:
                traceback.print_exc()
            row = {"kernel": name, "description": "", "check": "ERROR",
                   "plain": new_mode_row(), "rjit": None, "numba": None}
            row["plain"]["error"] = describe_error(exc)
            rows.append(row)

    with_rjit = not args.plain_only
    # Rows that failed before any mode ran have no rjit/numba record: give them empty ones.
    for row in rows:
        if with_rjit and row["rjit"] is None:
            row["rjit"] = new_mode_row()
        if args.numba and row["numba"] is None:
            row["numba"] = new_mode_row()

    print("\nMedian times (speedup x = plain median / mode median):")
    print_table(rows, with_rjit, args.numba)
    print("\nFirst (warm-up) runs; rjit's and numba's include compiling:")
    print_first_runs(rows, with_rjit, args.numba)
    if with_rjit:
        gm = geometric_mean([r["rjit"].get("speedup") for r in rows])
        print(f"\nrjit geometric-mean speedup: {fmt(gm, '.2f')}x")
    if args.numba:
        gm = geometric_mean([r["numba"].get("speedup") for r in rows])
        print(f"numba geometric-mean speedup: {fmt(gm, '.2f')}x")
    print_notes(rows, with_rjit, args.numba)

    ok = all(row["check"] == "ok" for row in rows)
    if not ok:
        bad = [f"{row['kernel']} ({row['check']})" for row in rows if row["check"] != "ok"]
        print(f"\n*** FAILED: {', '.join(bad)} ***")

    if args.json:
        report = {"python": sys.version, "platform": platform.platform(), "date": date,
                  "versions": versions, "repeat": args.repeat, "modes": modes, "ok": ok,
                  "kernels": rows}
        with open(args.json, "w") as out:
            json.dump(report, out, indent=2)
            out.write("\n")
        print(f"\nwrote {args.json}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
