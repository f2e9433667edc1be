"""Integer loop: the simplest hot loop, a range iteration with int multiply and add."""

NAME = "sum_squares"
DESCRIPTION = "int loop: s += i*i over range(n)"

# The sum of i*i below N is about N**3/3: 3_000_000 keeps every partial sum inside int64
# (max ~9.0e18 < 9.22e18), so a JIT may use machine integers with an overflow guard that never
# fires, and Numba (which wraps on overflow) gives the same answer. REPS brings one run() call
# into the 0.2-1 s range.
N = 3_000_000
REPS = 3


def sum_squares(n):
    s = 0
    for i in range(n):
        s += i * i
    return s


def setup():
    return (N, REPS)


def run(n, reps):
    s = 0
    for _ in range(reps):
        s = sum_squares(n)
    return s


FUNCTIONS = [sum_squares]
