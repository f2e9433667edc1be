"""The classic spectral-norm benchmark: small helper functions called from nested loops."""

import math

NAME = "spectral_norm"
DESCRIPTION = "classic spectral norm: eval_A / eval_A_times_u / eval_At_times_u helpers"

N = 240
ITERATIONS = 10


def eval_A(i, j):
    return 1.0 / ((i + j) * (i + j + 1) // 2 + i + 1)


def eval_A_times_u(u):
    n = len(u)
    v = [0.0] * n
    for i in range(n):
        s = 0.0
        for j in range(n):
            s += eval_A(i, j) * u[j]
        v[i] = s
    return v


def eval_At_times_u(u):
    n = len(u)
    v = [0.0] * n
    for i in range(n):
        s = 0.0
        for j in range(n):
            s += eval_A(j, i) * u[j]
        v[i] = s
    return v


def eval_AtA_times_u(u):
    return eval_At_times_u(eval_A_times_u(u))


def spectral_norm(n, iterations):
    u = [1.0] * n
    v = u
    for _ in range(iterations):
        v = eval_AtA_times_u(u)
        u = eval_AtA_times_u(v)
    vbv = 0.0
    vv = 0.0
    for i in range(n):
        vbv += u[i] * v[i]
        vv += v[i] * v[i]
    return math.sqrt(vbv / vv)


def setup():
    return (N, ITERATIONS)


def run(n, iterations):
    return spectral_norm(n, iterations)


# Callees first: numba.njit resolves a global when the caller is compiled, and by then the
# module globals already hold the njit versions (all are replaced before the first call).
FUNCTIONS = [eval_A, eval_A_times_u, eval_At_times_u, eval_AtA_times_u, spectral_norm]
