"""The classic n-body simulation (Computer Language Benchmarks Game) on lists of floats.

Each body is a list [x, y, z, vx, vy, vz, mass]. The initial state is a tuple of tuples that
the kernel copies into fresh lists itself: so run() cannot mutate its inputs, and Numba sees
lists it created rather than nested lists passed from Python (which it cannot "reflect").
Exercises float arithmetic, float `**`, list indexing and in-place stores, through helper calls.
"""

NAME = "nbody"
DESCRIPTION = "classic n-body on lists of floats: advance steps, return energy"

PI = 3.14159265358979323
SOLAR_MASS = 4 * PI * PI
DAYS_PER_YEAR = 365.24

# Sun, Jupiter, Saturn, Uranus, Neptune: x, y, z, vx, vy, vz, mass.
BODIES = (
    (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, SOLAR_MASS),
    (4.84143144246472090e+00, -1.16032004402742839e+00, -1.03622044471123109e-01,
     1.66007664274403694e-03 * DAYS_PER_YEAR, 7.69901118419740425e-03 * DAYS_PER_YEAR,
     -6.90460016972063023e-05 * DAYS_PER_YEAR, 9.54791938424326609e-04 * SOLAR_MASS),
    (8.34336671824457987e+00, 4.12479856412430479e+00, -4.03523417114321381e-01,
     -2.76742510726862411e-03 * DAYS_PER_YEAR, 4.99852801234917238e-03 * DAYS_PER_YEAR,
     2.30417297573763929e-05 * DAYS_PER_YEAR, 2.85885980666130812e-04 * SOLAR_MASS),
    (1.28943695621391310e+01, -1.51111514016986312e+01, -2.23307578892655734e-01,
     2.96460137564761618e-03 * DAYS_PER_YEAR, 2.37847173959480950e-03 * DAYS_PER_YEAR,
     -2.96589568540237556e-05 * DAYS_PER_YEAR, 4.36624404335156298e-05 * SOLAR_MASS),
    (1.53796971148509165e+01, -2.59193146099879641e+01, 1.79258772950371181e-01,
     2.68067772490389322e-03 * DAYS_PER_YEAR, 1.62824170038242295e-03 * DAYS_PER_YEAR,
     -9.51592254519715870e-05 * DAYS_PER_YEAR, 5.15138902046611451e-05 * SOLAR_MASS),
)

STEPS = 70_000
DT = 0.01


def copy_bodies(initial):
    bodies = []
    for b in initial:
        bodies.append([b[0], b[1], b[2], b[3], b[4], b[5], b[6]])
    return bodies


def offset_momentum(bodies):
    px = 0.0
    py = 0.0
    pz = 0.0
    for b in bodies:
        m = b[6]
        px += b[3] * m
        py += b[4] * m
        pz += b[5] * m
    sun = bodies[0]
    sun[3] = -px / SOLAR_MASS
    sun[4] = -py / SOLAR_MASS
    sun[5] = -pz / SOLAR_MASS


def advance(bodies, dt, steps):
    n = len(bodies)
    for _ in range(steps):
        for i in range(n):
            bi = bodies[i]
            for j in range(i + 1, n):
                bj = bodies[j]
                dx = bi[0] - bj[0]
                dy = bi[1] - bj[1]
                dz = bi[2] - bj[2]
                mag = dt * ((dx * dx + dy * dy + dz * dz) ** (-1.5))
                bim = bi[6] * mag
                bjm = bj[6] * mag
                bi[3] -= dx * bjm
                bi[4] -= dy * bjm
                bi[5] -= dz * bjm
                bj[3] += dx * bim
                bj[4] += dy * bim
                bj[5] += dz * bim
        for b in bodies:
            b[0] += dt * b[3]
            b[1] += dt * b[4]
            b[2] += dt * b[5]


def energy(bodies):
    e = 0.0
    n = len(bodies)
    for i in range(n):
        bi = bodies[i]
        e += 0.5 * bi[6] * (bi[3] * bi[3] + bi[4] * bi[4] + bi[5] * bi[5])
        for j in range(i + 1, n):
            bj = bodies[j]
            dx = bi[0] - bj[0]
            dy = bi[1] - bj[1]
            dz = bi[2] - bj[2]
            e -= (bi[6] * bj[6]) / ((dx * dx + dy * dy + dz * dz) ** 0.5)
    return e


def nbody(initial, dt, steps):
    bodies = copy_bodies(initial)
    offset_momentum(bodies)
    e0 = energy(bodies)
    advance(bodies, dt, steps)
    return (e0, energy(bodies))


def setup():
    return (BODIES, DT, STEPS)


def run(initial, dt, steps):
    return nbody(initial, dt, steps)


FUNCTIONS = [copy_bodies, offset_momentum, advance, energy, nbody]
