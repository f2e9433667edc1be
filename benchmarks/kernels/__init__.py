"""Benchmark kernels for rjit.

Each kernel is a module of plain Python (it never imports rjit) exposing:

- ``NAME``: the kernel's name (same as the module name).
- ``DESCRIPTION``: one line saying what the kernel exercises.
- ``setup() -> tuple``: builds the inputs, deterministically (fixed sizes and seeds).
- ``run(*inputs)``: the timed call. It must not mutate its inputs (the runner calls it many
  times with the same inputs and compares every result with the first one).
- ``FUNCTIONS``: the module's functions that make up the kernel. ``run.py --numba`` loads a
  second copy of the module, replaces each of these by ``numba.njit(f)`` in that copy's
  globals, and calls the copy's ``run``: so ``run`` itself stays interpreted and only calls
  into them.

Optional:

- ``NUMBA_RTOL``: relative tolerance for comparing Numba's result with CPython's, when the
  default (1e-9) cannot hold for a reason the module explains.

``ALL`` lists the kernels in the order the runner reports them.
"""

ALL = [
    "sum_squares",
    "harmonic",
    "collatz",
    "mandelbrot",
    "fib",
    "monte_carlo_pi",
    "sieve",
    "nbody",
    "spectral_norm",
    "dot",
    "sum_iter",
    "calls",
    "matmul",
    "go_fast_small",
    "go_fast_large",
]
