"""What rjit's eval-frame hook costs when it compiles nothing.

Usage::

    python benchmarks/hook_overhead.py [--runs N] [--json FILE]

Installing any PEP 523 hook makes CPython 3.11 stop inlining Python-to-Python calls, and rjit's
hook also counts every call. Code that rjit never compiles (cold, or unsupported) pays that
price, so it must stay small. This script times a call-heavy program with rjit disabled and with
``rjit.enable(threshold=10**9)`` (hook installed and counting, threshold never reached),
interleaved in one process, and prints the ratio of the medians::

    hook overhead: 1.21x (enabled-idle / disabled)

The workload (each part a few tens of milliseconds):

- ``fib``: recursive fib(24), repeated: deep chains of tiny calls.
- ``methods``: a method call on an object in a loop (bound-method calls, attribute updates).
- ``tiny_calls``: a loop calling a one-line function 10**6 times.
- ``generator``: summing a generator expression: every resumption of a generator frame goes
  through the eval-frame function, hence through the hook.

The ratio is a measurement, not a test: the exit status is 0 whatever it is (2 only when rjit
cannot be imported or enable() has no effect). Also checks that nothing was compiled during the
idle runs, since the threshold is never reached.

JSON written by ``--json FILE``::

    {"python": str, "platform": str, "date": str, "runs": int,
     "disabled_s": float, "enabled_idle_s": float,   # medians of the whole workload's time
     "ratio": float,                                  # enabled_idle_s / disabled_s
     "compiled_during_idle": int,                     # growth of rjit.stats()["compiled"]
     "parts": [{"name": str, "disabled_s": float, "enabled_idle_s": float, "ratio": float}]}
"""

import argparse
import datetime
import gc
import json
import platform
import statistics
import sys
import time

IDLE_THRESHOLD = 10**9


# ----------------------------------------------------------------------------------------------
# The workload: plain Python, nothing that rjit is meant to speed up here.


def fib(n):
    if n < 2:
        return n
    return fib(n - 1) + fib(n - 2)


def part_fib():
    total = 0
    for _ in range(20):
        total += fib(24)
    return total


class Counter:
    def __init__(self):
        self.count = 0

    def step(self, k):
        self.count += k
        return self.count


def part_methods():
    c = Counter()
    for i in range(1_000_000):
        c.step(i & 3)
    return c.count


def add_one(x):
    return x + 1


def part_tiny_calls():
    x = 0
    for _ in range(1_000_000):
        x = add_one(x)
    return x


def part_generator():
    return sum(i & 7 for i in range(1_000_000))


PARTS = [
    ("fib", part_fib),
    ("methods", part_methods),
    ("tiny_calls", part_tiny_calls),
    ("generator", part_generator),
]


# ----------------------------------------------------------------------------------------------
# Timing


def time_parts(rjit, enabled):
    """One pass over the workload with the hook on or off; returns {part: seconds}.
    This function's frame starts before enable(), so only the parts run under the hook."""
    gc.collect()
    times = {}
    if enabled:
        rjit.enable(threshold=IDLE_THRESHOLD)
    try:
        for name, part in PARTS:
            t0 = time.perf_counter()
            part()
            times[name] = time.perf_counter() - t0
    finally:
        if enabled:
            rjit.disable()
    return times


def main(argv=None):
    parser = argparse.ArgumentParser(description="rjit's hook cost when it compiles nothing.")
    parser.add_argument("--runs", type=int, default=9, metavar="N",
                        help="timed runs per mode, at least 7 (default 9)")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = parser.parse_args(argv)
    if args.runs < 7:
        parser.error("--runs must be at least 7")

    try:
        import rjit
    except Exception as exc:  # noqa: BLE001 - any failure to import means: cannot measure
        print(f"error: cannot import rjit ({type(exc).__name__}: {exc}); build and install it "
              "first", file=sys.stderr)
        return 2
    rjit.enable(threshold=IDLE_THRESHOLD)
    hooked = rjit.enabled()
    rjit.disable()
    if not hooked:
        print("error: rjit.enable() left rjit disabled (is RJIT=0 set?): nothing to measure",
              file=sys.stderr)
        return 2

    date = datetime.datetime.now().isoformat(timespec="seconds")
    print(f"Python {sys.version}")
    print(f"{platform.platform()}  {date}")
    print(f"median of {args.runs} runs per mode, interleaved, after one warm-up run each")

    # Warm-up, not counted: caches, specialised bytecode, rjit's first-call bookkeeping.
    time_parts(rjit, False)
    time_parts(rjit, True)

    compiled_before = rjit.stats()["compiled"]
    samples = {False: [], True: []}
    for k in range(args.runs):
        order = (False, True) if k % 2 == 0 else (True, False)
        for enabled in order:
            samples[enabled].append(time_parts(rjit, enabled))
    compiled_during_idle = rjit.stats()["compiled"] - compiled_before

    def median_total(enabled):
        return statistics.median(sum(run.values()) for run in samples[enabled])

    def median_part(enabled, name):
        return statistics.median(run[name] for run in samples[enabled])

    parts = []
    print(f"\n{'part':12s} {'disabled s':>11s} {'enabled s':>10s} {'ratio':>7s}")
    for name, _ in PARTS:
        off, on = median_part(False, name), median_part(True, name)
        parts.append({"name": name, "disabled_s": off, "enabled_idle_s": on, "ratio": on / off})
        print(f"{name:12s} {off:11.4f} {on:10.4f} {on / off:6.2f}x")
    off, on = median_total(False), median_total(True)
    print(f"{'total':12s} {off:11.4f} {on:10.4f} {on / off:6.2f}x")
    print(f"\nhook overhead: {on / off:.2f}x (enabled-idle / disabled)")
    if compiled_during_idle:
        print(f"WARNING: {compiled_during_idle} function(s) were compiled with threshold "
              f"{IDLE_THRESHOLD}: the idle runs were not idle")

    if args.json:
        report = {"python": sys.version, "platform": platform.platform(), "date": date,
                  "runs": args.runs, "disabled_s": off, "enabled_idle_s": on, "ratio": on / off,
                  "compiled_during_idle": compiled_during_idle, "parts": parts}
        with open(args.json, "w") as out:
            json.dump(report, out, indent=2)
            out.write("\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
