"""Float loop: int-to-float conversion, float division and float accumulation."""

NAME = "harmonic"
DESCRIPTION = "float loop: s += 1.0/i"

N = 8_000_000


def harmonic(n):
    s = 0.0
    for i in range(1, n + 1):
        s += 1.0 / i
    return s


def setup():
    return (N,)


def run(n):
    return harmonic(n)


FUNCTIONS = [harmonic]
