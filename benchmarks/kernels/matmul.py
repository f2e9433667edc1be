"""Triple loop over 2-D NumPy arrays with tuple indexing, reads and stores."""

import numpy as np

NAME = "matmul"
DESCRIPTION = "NumPy float64 2-D arrays, triple element loop writing c[i, j] = s"

N = 110


def matmul(a, b):
    n = a.shape[0]
    m = b.shape[1]
    inner = a.shape[1]
    c = np.zeros((n, m))
    for i in range(n):
        for j in range(m):
            s = 0.0
            for k in range(inner):
                s += a[i, k] * b[k, j]
            c[i, j] = s
    return c


def setup():
    rng = np.random.default_rng(5678)
    return (rng.random((N, N)), rng.random((N, N)))


def run(a, b):
    return matmul(a, b)


FUNCTIONS = [matmul]
