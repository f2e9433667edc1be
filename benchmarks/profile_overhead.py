"""What ``rjit.profile()`` (the sampling profiler behind ``python -m rjit --profile``) costs on
each benchmark kernel: the kernel runs with rjit on (``enable(threshold=0)``), alternately with
and without the profiler, and the medians are compared.

Usage: ``python benchmarks/profile_overhead.py [--repeat N] [--interval SECONDS] [--only NAMES]``

Prints one line per kernel: median without, median with, overhead in percent and the number of
samples taken; the exit status is 1 if any kernel's overhead exceeds ``--limit`` (default 10%).
"""

from __future__ import annotations

import argparse
import importlib
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import rjit  # noqa: E402
from kernels import ALL  # noqa: E402


def timed(run, inputs, profile_interval=None):
    if profile_interval is None:
        started = time.perf_counter()
        run(*inputs)
        return time.perf_counter() - started, 0
    with rjit.profile(interval=profile_interval) as p:
        started = time.perf_counter()
        run(*inputs)
        elapsed = time.perf_counter() - started
    p.to_dict()  # the report's work is done after the run, outside the timing
    return elapsed, p.samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--interval", type=float, default=0.002)
    parser.add_argument("--limit", type=float, default=10.0, help="largest acceptable overhead, percent")
    parser.add_argument("--only", default="", help="comma-separated kernel names")
    args = parser.parse_args()
    names = [n for n in ALL if not args.only or n in args.only.split(",")]
    print(f"{'kernel':<16} {'off s':>8} {'on s':>8} {'overhead':>9} {'samples':>8}")
    worst = 0.0
    for name in names:
        kernel = importlib.import_module(f"kernels.{name}")
        inputs = kernel.setup()
        rjit.enable(threshold=0)
        try:
            kernel.run(*inputs)  # warm-up: compiles
            off, on, samples = [], [], 0
            for i in range(args.repeat):
                # Alternate the order so drift on a shared machine hits both alike.
                modes = (None, args.interval) if i % 2 == 0 else (args.interval, None)
                for interval in modes:
                    elapsed, n = timed(kernel.run, inputs, interval)
                    (off if interval is None else on).append(elapsed)
                    samples += n
        finally:
            rjit.disable()
        m_off, m_on = statistics.median(off), statistics.median(on)
        overhead = 100.0 * (m_on / m_off - 1.0)
        worst = max(worst, overhead)
        print(f"{name:<16} {m_off:>8.4f} {m_on:>8.4f} {overhead:>8.1f}% {samples // args.repeat:>8}")
    print(f"worst overhead: {worst:.1f}% (limit {args.limit:g}%)")
    return 1 if worst > args.limit else 0


if __name__ == "__main__":
    sys.exit(main())
