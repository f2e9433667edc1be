"""The seed example on a tiny array, called many times: per-call overhead dominates."""

import numpy as np

NAME = "go_fast_small"
DESCRIPTION = "seed example go_fast on a 10x10 int64 array, 20000 calls"

CALLS = 20_000


def go_fast(a):
    trace = 0.0
    for i in range(a.shape[0]):
        trace += np.tanh(a[i, i])
    return a + trace


def setup():
    return (np.arange(100).reshape(10, 10), CALLS)


def run(a, calls):
    result = None
    for _ in range(calls):
        result = go_fast(a)
    return result


FUNCTIONS = [go_fast]
