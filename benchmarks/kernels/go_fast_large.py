"""The seed example on a large array: NumPy's vectorised `a + trace` dominates, so this
measures that rjit does not slow down code whose time is spent inside NumPy. One call takes
about 1 ms, so run() makes CALLS calls to get a measurable time."""

import numpy as np

NAME = "go_fast_large"
DESCRIPTION = "seed example go_fast on a 1000x1000 float64 array, 360 calls"

CALLS = 360


def go_fast(a):
    trace = 0.0
    for i in range(a.shape[0]):
        trace += np.tanh(a[i, i])
    return a + trace


def setup():
    return (np.arange(1e6).reshape(1000, 1000) / 1e6, CALLS)


def run(a, calls):
    result = None
    for _ in range(calls):
        result = go_fast(a)
    return result


FUNCTIONS = [go_fast]
