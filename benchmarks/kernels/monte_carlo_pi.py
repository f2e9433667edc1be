"""Calls into a C function (random.random) from a hot loop, plus float compare and count."""

import random

NAME = "monte_carlo_pi"
DESCRIPTION = "estimate pi with random.random() in a loop (seeded)"

N = 3_000_000

# Numba's `random` is its own generator (seeded apart from CPython's, and its seeding differs),
# so its estimate is only statistically equal: the standard deviation of the estimate is
# about 4*sqrt(p*(1-p)/N) = 1.2e-3 (3.7e-4 relative). 5e-3 relative is >10 sigma: no flake, but
# a broken kernel still fails.
NUMBA_RTOL = 5e-3


def monte_carlo_pi(n):
    inside = 0
    for _ in range(n):
        x = random.random()
        y = random.random()
        if x * x + y * y <= 1.0:
            inside += 1
    return 4.0 * inside / n


def setup():
    return (N,)


def run(n):
    # Seeded on every call: plain CPython and rjit must draw exactly the same numbers.
    random.seed(42)
    return monte_carlo_pi(n)


FUNCTIONS = [monte_carlo_pi]
