"""Nested float loops with an early `break` out of the innermost loop (for/else)."""

NAME = "mandelbrot"
DESCRIPTION = "count grid points in the Mandelbrot set: nested loops, float math, break"

WIDTH = 400
HEIGHT = 300
MAX_ITER = 100


def mandelbrot(width, height, max_iter):
    count = 0
    for py in range(height):
        ci = -1.25 + 2.5 * py / height
        for px in range(width):
            cr = -2.0 + 2.75 * px / width
            zr = 0.0
            zi = 0.0
            for _ in range(max_iter):
                zr2 = zr * zr
                zi2 = zi * zi
                if zr2 + zi2 > 4.0:
                    break
                zi = 2.0 * zr * zi + ci
                zr = zr2 - zi2 + cr
            else:
                count += 1
    return count


def setup():
    return (WIDTH, HEIGHT, MAX_ITER)


def run(width, height, max_iter):
    return mandelbrot(width, height, max_iter)


FUNCTIONS = [mandelbrot]
