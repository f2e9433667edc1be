"""List-heavy integer code: a list of bools, stores with a stride, and a counting loop."""

NAME = "sieve"
DESCRIPTION = "sieve of Eratosthenes on a list of bools, count primes"

N = 5_000_000


def sieve(n):
    flags = [True] * (n + 1)
    flags[0] = False
    flags[1] = False
    i = 2
    while i * i <= n:
        if flags[i]:
            for j in range(i * i, n + 1, i):
                flags[j] = False
        i += 1
    count = 0
    for f in flags:
        if f:
            count += 1
    return count


def setup():
    return (N,)


def run(n):
    return sieve(n)


FUNCTIONS = [sieve]
