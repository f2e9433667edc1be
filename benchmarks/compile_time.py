"""How long rjit takes to compile each benchmark kernel, and (with --numba) how long Numba does.

Usage::

    python benchmarks/compile_time.py [--numba] [--only NAMES] [--rounds N] [--json FILE]

Every round loads a fresh copy of each kernel module (new code objects, so nothing is reused
from an earlier compile) and runs its ``run`` once:

- **rjit**: in whole-program mode (``rjit.enable(threshold=0)``), as ``run.py`` does. The compile
  time is the growth of ``rjit.stats()["compile_time_us"]`` over the call: rjit's own measure,
  from reading the bytecode to machine code ready to run, of every function compiled. That
  includes ``run``, which Numba does not compile: rjit may inline a kernel function into it,
  and then the kernel's work is only in ``run``'s compile.
- **numba** (``--numba``): the copy's ``FUNCTIONS`` are ``numba.njit`` versions; the compile
  time is the first call of ``run`` minus the median of three more calls (the same estimate as
  ``run.py``). Numba's one-time start-up is paid before the first round, by compiling a
  function that is not measured.

The table gives, per kernel, the median over the rounds and the first round (rjit's first
compile of a kernel runs with colder caches than later ones), the median of the kernel's own
functions' compiles (what Numba compiles: ``run`` left out unless a kernel function was inlined
into it), and Numba's median over each.
Results are not compared here: ``run.py`` does that.
"""

import argparse
import importlib
import json
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from kernels import ALL  # noqa: E402  (needs the path above)
from run import load_copy  # noqa: E402

ROUND_COUNTER = [0]


def fresh_copy(name):
    """A new module object for kernels/<name>.py, under a name of its own each round."""
    ROUND_COUNTER[0] += 1
    return load_copy(name, f"_compile_time_{name}_{ROUND_COUNTER[0]}")


def rjit_compile_ms(rjit, name, inputs):
    """(total, kernel): every compile of the call, and the compiles of the kernel's own
    functions (what Numba compiles). A kernel function inlined into ``run`` (not compiled on
    its own) counts with ``run``'s compile, which then holds its work."""
    module = fresh_copy(name)
    before = rjit.stats()["compile_time_us"]
    rjit.enable(threshold=0)
    try:
        module.run(*inputs)
    finally:
        rjit.disable()
    total = (rjit.stats()["compile_time_us"] - before) / 1000.0
    infos = [rjit.info(f) for f in module.FUNCTIONS]
    kernel = sum(i.compile_time_us for i in infos if i.compiled) / 1000.0
    if not all(i.compiled for i in infos):
        kernel += (rjit.info(module.run).compile_time_us or 0.0) / 1000.0
    return total, kernel


def numba_compile_ms(numba, name, inputs):
    module = fresh_copy(name)
    for f in module.FUNCTIONS:
        setattr(module, f.__name__, numba.njit(f))
    t0 = time.perf_counter()
    module.run(*inputs)
    first = time.perf_counter() - t0
    steady = []
    for _ in range(3):
        t0 = time.perf_counter()
        module.run(*inputs)
        steady.append(time.perf_counter() - t0)
    return max(0.0, first - statistics.median(steady)) * 1000.0


def warm_up_numba(numba):
    """Numba's first compile in a process also loads and initialises its compiler."""
    numba.njit(lambda x: x + 1)(1)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--numba", action="store_true", help="also time Numba's compiles")
    parser.add_argument("--only", help="comma-separated kernel names")
    parser.add_argument("--rounds", type=int, default=7, help="fresh compiles per kernel (default 7)")
    parser.add_argument("--json", help="write the rows to this file")
    args = parser.parse_args(argv)

    try:
        import rjit
    except ImportError as exc:
        print(f"rjit cannot be imported: {exc}", file=sys.stderr)
        return 2
    numba = None
    if args.numba:
        import numba
        warm_up_numba(numba)

    names = args.only.split(",") if args.only else ALL
    rows = []
    for name in names:
        module = importlib.import_module(f"kernels.{name}")
        inputs = module.setup()
        rjit_ms, kernel_ms, numba_ms = [], [], []
        for _ in range(args.rounds):
            total, kernel = rjit_compile_ms(rjit, name, inputs)
            rjit_ms.append(total)
            kernel_ms.append(kernel)
            if numba is not None:
                numba_ms.append(numba_compile_ms(numba, name, inputs))
        row = {"kernel": name, "rjit_ms": rjit_ms, "rjit_median_ms": statistics.median(rjit_ms),
               "rjit_kernel_ms": kernel_ms, "rjit_kernel_median_ms": statistics.median(kernel_ms)}
        if numba is not None:
            row["numba_ms"] = numba_ms
            row["numba_median_ms"] = statistics.median(numba_ms)
            row["ratio"] = row["numba_median_ms"] / row["rjit_median_ms"]
            row["kernel_ratio"] = row["numba_median_ms"] / row["rjit_kernel_median_ms"]
        rows.append(row)
        print_row(row, numba is not None, header=len(rows) == 1)

    if args.json:
        Path(args.json).write_text(json.dumps({"rounds": args.rounds, "kernels": rows}, indent=2))
    return 0


def print_row(row, with_numba, header):
    if header:
        title = f"{'kernel':<15}{'rjit ms':>9}{'rjit 1st':>10}{'kernel fns':>12}"
        if with_numba:
            title += f"{'numba ms':>10}{'numba/rjit':>12}{'numba/kernel fns':>18}"
        print(title)
        print("-" * len(title))
    line = f"{row['kernel']:<15}{row['rjit_median_ms']:>9.3f}{row['rjit_ms'][0]:>10.3f}{row['rjit_kernel_median_ms']:>12.3f}"
    if with_numba:
        line += f"{row['numba_median_ms']:>10.1f}{row['ratio']:>11.0f}x{row['kernel_ratio']:>17.0f}x"
    print(line, flush=True)


if __name__ == "__main__":
    sys.exit(main())
