"""A program with one hot loop, to see what rjit does with it:

    python -m rjit --profile examples/collatz.py      # hot functions and loops at exit
    RJIT_LOG=compile,deopt python -m rjit examples/collatz.py
"""


def steps(n):
    count = 0
    while n != 1:
        if n % 2 == 0:
            n = n // 2
        else:
            n = 3 * n + 1
        count += 1
    return count


def longest(limit):
    best = (0, 0)
    for start in range(1, limit):
        best = max(best, (steps(start), start))
    return best


if __name__ == "__main__":
    print(longest(300_000))
