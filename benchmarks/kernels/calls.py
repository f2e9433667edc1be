"""Calls between functions: a loop calling a helper that has a loop of its own (too big to
inline), the way real code is split into functions."""

NAME = "calls"
DESCRIPTION = "loop calling a helper with its own loop: digit sums of i*i for i < n"

N = 300_000


def digit_sum(x, base):
    s = 0
    while x > 0:
        s += x % base
        x //= base
    return s


def total_digit_sums(n):
    t = 0
    for i in range(n):
        t += digit_sum(i * i, 10)
    return t


def setup():
    return (N,)


def run(n):
    return total_digit_sums(n)


FUNCTIONS = [digit_sum, total_digit_sums]
