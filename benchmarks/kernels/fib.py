"""Call overhead: naive recursion, millions of tiny Python-to-Python calls."""

NAME = "fib"
DESCRIPTION = "naive recursive fib(n): call-heavy"

N = 32


def fib(n):
    if n < 2:
        return n
    return fib(n - 1) + fib(n - 2)


def setup():
    return (N,)


def run(n):
    return fib(n)


FUNCTIONS = [fib]
