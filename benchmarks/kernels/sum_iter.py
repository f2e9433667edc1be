"""Iterating a NumPy array directly (`for x in a`), the loop form that needs no index."""

import numpy as np

NAME = "sum_iter"
DESCRIPTION = "NumPy float64 1-D array, `for x in a: s += x`"

N = 4_000_000


def sum_iter(a):
    s = 0.0
    for x in a:
        s += x
    return s


def setup():
    rng = np.random.default_rng(4321)
    return (rng.random(N),)


def run(a):
    return sum_iter(a)


FUNCTIONS = [sum_iter]
