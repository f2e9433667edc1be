"""Branchy integer code: a while loop with an if/else, `%` and `//` on every step."""

NAME = "collatz"
DESCRIPTION = "longest Collatz chain below n: while loop, branches, // and %"

N = 60_000


def longest_collatz(n):
    best_start = 1
    best_steps = 0
    for start in range(1, n):
        x = start
        steps = 0
        while x != 1:
            if x % 2 == 0:
                x = x // 2
            else:
                x = 3 * x + 1
            steps += 1
        if steps > best_steps:
            best_steps = steps
            best_start = start
    return (best_start, best_steps)


def setup():
    return (N,)


def run(n):
    return longest_collatz(n)


FUNCTIONS = [longest_collatz]
