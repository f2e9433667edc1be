"""Element-wise loop over NumPy arrays: what Numba users write and the reason rjit exists."""

import numpy as np

NAME = "dot"
DESCRIPTION = "NumPy float64 1-D arrays, element loop s += a[i] * b[i]"

N = 2_000_000


def dot(a, b):
    s = 0.0
    for i in range(a.shape[0]):
        s += a[i] * b[i]
    return s


def setup():
    rng = np.random.default_rng(1234)
    return (rng.random(N), rng.random(N))


def run(a, b):
    return dot(a, b)


FUNCTIONS = [dot]
