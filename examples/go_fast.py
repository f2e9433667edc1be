"""The seed example: Numba's 5-minute-guide function, run unchanged with rjit.

Times the plain function against the ``@jit`` one in the same process (median of several
runs), checks they return the same array, and prints what rjit did with the function.
"""

import statistics
import sys
import time

import numpy as np

import rjit
from rjit import jit


def go_fast(a):  # Numba's example, verbatim
    trace = 0.0
    for i in range(a.shape[0]):
        trace += np.tanh(a[i, i])
    return a + trace


go_fast_jit = jit(nopython=True)(go_fast)


def median_time(func, arg, calls, repeats=7):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            result = func(arg)
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main():
    print(f"rjit {rjit.__version__} on Python {sys.version.split()[0]}")
    for label, array, calls in [
        ("10x10 int64, 20000 calls", np.arange(100).reshape(10, 10), 20000),
        ("1000x1000 float64, 5 calls", np.arange(1e6).reshape(1000, 1000) / 1e6, 5),
    ]:
        go_fast_jit(array)  # first call compiles
        plain, expected = median_time(go_fast, array, calls)
        jitted, got = median_time(go_fast_jit, array, calls)
        same = got.dtype == expected.dtype and np.array_equal(got, expected)
        print(f"{label}: plain {plain * 1e3:8.1f} ms   rjit {jitted * 1e3:8.1f} ms   "
              f"speed-up {plain / jitted:5.2f}x   same result: {same}")
        if not same:
            sys.exit("rjit returned a different result")
    print()
    print(rjit.info(go_fast_jit))


if __name__ == "__main__":
    main()
