"""Random programs for rjit's differential fuzzer.

``generate(seed, index)`` returns a ``Program``: the source of a module defining helper
functions ``h0``.. and the entry function ``f``, the calls to make (each a tuple of argument
expressions, evaluated fresh for every run so mutations cannot leak between runs), and the
threshold rjit compiles at for this program. Program ``index`` of ``seed`` depends on nothing
else, so any single program can be regenerated (``run.py --seed S --only I``).

The programs mix ints (machine-sized and past 64 bits), floats (nan, inf, -0.0, subnormals),
bools and NumPy arrays of several dtypes, with for/while loops, branches, break/continue, early
returns, calls of other generated functions, try/except/finally, and raised exceptions. The
argument types of the calls change after the first few (ints become big ints, floats, bools,
arrays become lists or other dtypes), so compiled code meets values its guards reject and
deoptimises. Every program terminates: loop trip counts are bounded, helper calls only go to
helpers defined earlier (no recursion), and loop bodies keep ints bounded where they could grow
exponentially (products are reduced modulo a constant, some of them past 64 bits).
"""

from __future__ import annotations

import dataclasses
import random

# Argument values by category, as Python source (evaluated with `np`, `math` in scope).
INTS = ["0", "1", "-1", "2", "3", "7", "-5", "10", "100", "-100", "255", "1000003"]
BIG_INTS = ["2**63 - 1", "-(2**63)", "2**63", "2**64 + 3", "-(2**64)", "10**30", "-(2**70) + 1",
            "2**62", "-(2**62)", "4611686018427387904 * 3"]
FLOATS = ["0.0", "-0.0", "1.5", "-2.25", "0.1", "1e308", "-1e308", "5e-324", "float('nan')",
          "float('inf')", "float('-inf')", "3.0", "1e16", "-7.0"]
BOOLS = ["True", "False"]
DTYPES = ["float64", "float32", "int64", "int32", "int16", "uint8", "bool"]

# Constants that appear in program text.
INT_CONSTS = ["0", "1", "2", "3", "5", "7", "-1", "-3", "10", "31", "64", "255", "1000", "2**31",
              "2**62", "2**63", "2**64", "10**20", "-(2**63)"]
FLOAT_CONSTS = ["0.0", "-0.0", "0.5", "1.0", "2.5", "-1.5", "1e300", "1e-300", "3.141592653589793",
                "float('nan')", "float('inf')", "-float('inf')"]
MODULI = ["1000003", "65521", "(2**61 - 1)", "(2**89 - 1)", "97"]
EXCEPTIONS = ["ArithmeticError", "TypeError", "ValueError", "ZeroDivisionError", "OverflowError",
              "IndexError", "LookupError", "Exception", "(TypeError, ValueError)",
              "(ZeroDivisionError, OverflowError, ValueError)"]


@dataclasses.dataclass
class Program:
    seed: int
    index: int
    source: str
    calls: list  # list of lists of argument source strings
    threshold: int

    def name(self) -> str:
        return f"seed{self.seed}-prog{self.index}"


def _array_source(rng: random.Random, dtype: str, length: int) -> str:
    if dtype == "bool":
        items = [rng.choice(["True", "False"]) for _ in range(length)]
    elif dtype.startswith("float"):
        pool = ["0.0", "-0.0", "1.5", "-2.0", "3.25", "100.0", "1e-5", "float('nan')", "float('inf')", "7.0"]
        items = [rng.choice(pool) if rng.random() < 0.3 else repr(round(rng.uniform(-10, 10), 3))
                 for _ in range(length)]
    elif dtype == "uint8":
        items = [str(rng.randrange(0, 256)) for _ in range(length)]
    else:
        items = [str(rng.randrange(-50, 50)) for _ in range(length)]
    return f"np.array([{', '.join(items)}], dtype='{dtype}')"


def _scalar_arg(rng: random.Random, category: str) -> str:
    return rng.choice({"int": INTS, "big": BIG_INTS, "float": FLOATS, "bool": BOOLS}[category])


def _arg_for(rng: random.Random, category: str) -> str:
    if category.startswith("array:"):
        dtype = category.split(":", 1)[1]
        length = rng.choice([4, 6, 8])
        if rng.random() < 0.1:
            return f"(np.arange({length * 2}) % 3).astype('{dtype}').reshape(2, {length})"
        return _array_source(rng, dtype, length)
    if category == "list":
        return "[" + ", ".join(rng.choice(INTS + FLOATS[:5]) for _ in range(rng.choice([4, 6]))) + "]"
    return _scalar_arg(rng, category)


class _FunctionGen:
    """Generates one function body. ``scalars`` are the local names holding numbers (or
    whatever the arguments turned out to be); ``arrays`` the names holding arrays."""

    def __init__(self, rng: random.Random, params: list, array_params: list, helpers: list, depth_budget: int):
        self.rng = rng
        self.params = params
        self.arrays = list(array_params)
        self.seqs = list(array_params)  # arrays and lists: indexing, len(), stores
        self.lists: list = []
        self.helpers = helpers  # [(name, n_params)]
        self.scalars = [p for p in params if p not in array_params]
        self.locals = []
        self.lines: list = []
        self.loop_depth = 0
        self.in_loop = False
        self.depth_budget = depth_budget
        self.loop_vars = 0
        self.peek = False

    # ---------------------------------------------------------------- expressions
    def leaf(self) -> str:
        r = self.rng.random()
        if r < 0.55 and self.scalars:
            return self.rng.choice(self.scalars)
        if r < 0.7 and self.seqs:
            arr = self.rng.choice(self.seqs)
            return f"{arr}[{self.index_expr(arr)}]"
        if r < 0.85:
            return self.rng.choice(INT_CONSTS)
        if r < 0.97:
            return self.rng.choice(FLOAT_CONSTS)
        return self.rng.choice(BOOLS)

    def intish(self, expr: str) -> str:
        """Mostly an int (bitwise operators and range() take nothing else): `int(expr)`
        unless it is an int literal or loop counter already; sometimes left as it is."""
        if expr.lstrip("-").isdigit() or expr.startswith("i") and expr[1:].isdigit() or self.rng.random() < 0.25:
            return expr
        return f"int({expr})"

    def index_expr(self, arr: str) -> str:
        choices = [str(self.rng.randrange(-4, 4))]
        ints = [v for v in self.scalars if v.startswith("i")]
        if ints:
            v = self.rng.choice(ints)
            choices += [f"{v} % 4", v, f"({v} * 3) % 4", f"{v} % len({arr})"]
        return self.rng.choice(choices)

    def expr(self, depth: int = 0) -> str:
        rng = self.rng
        if depth >= 3 or rng.random() < 0.25 + 0.15 * depth:
            return self.leaf()
        r = rng.random()
        e = lambda: self.expr(depth + 1)  # noqa: E731
        if r < 0.38:
            op = rng.choice(["+", "+", "-", "-", "*", "*", "/", "//", "%", "&", "|", "^"])
            if op in "&|^":
                return f"({self.intish(e())} {op} {self.intish(e())})"
            return f"({e()} {op} {e()})"
        if r < 0.43:
            return f"({e()} ** {rng.choice(['0', '1', '2', '3', '-1', '0.5', '2.0'])})"
        if r < 0.47:
            return f"({self.intish(e())} {rng.choice(['<<', '>>'])} {rng.choice(['0', '1', '3', '17', '63', '64', '70'])})"
        if r < 0.55:
            op = rng.choice(['-', '+', '~', 'not '])
            return f"({op}{self.intish(e()) if op == '~' else e()})"
        if r < 0.65:
            return self.cond(depth + 1)
        if r < 0.7:
            return f"({e()} if {self.cond(depth + 1)} else {e()})"
        if r < 0.82:
            fn = rng.choice(["abs({})", "min({}, {})", "max({}, {})", "int({})", "float({})", "bool({})",
                             "round({})", "math.sqrt({})", "math.floor({})", "math.fabs({})", "math.isnan({})",
                             "math.exp(min({}, 50))", "math.tanh({})", "round({}, 2)", "divmod({}, {})[0]",
                             "pow({}, 2)"])
            return fn.format(*[e() for _ in range(fn.count("{}"))])
        if r < 0.9 and self.helpers:
            name, n = rng.choice(self.helpers)
            return f"{name}({', '.join(e() for _ in range(n))})"
        if r < 0.97 and self.seqs:
            arr = rng.choice(self.seqs)
            if arr in self.lists:
                return rng.choice([f"len({arr})", f"{arr}[{self.index_expr(arr)}]", f"{arr}[{self.index_expr(arr)}] * 2"])
            return rng.choice([f"len({arr})", f"{arr}.shape[0]", f"{arr}[{self.index_expr(arr)}]",
                               f"{arr}.sum()", f"float({arr}[{self.index_expr(arr)}])", f"np.tanh({arr}[0])",
                               f"{arr}.dtype.itemsize", f"int({arr}.max())"])
        return self.leaf()

    def cond(self, depth: int = 1) -> str:
        rng = self.rng
        r = rng.random()
        e = lambda: self.expr(depth + 1)  # noqa: E731
        if r < 0.6:
            return f"({e()} {rng.choice(['<', '<=', '>', '>=', '==', '!='])} {e()})"
        if r < 0.7:
            return f"({e()} < {e()} <= {e()})"
        if r < 0.85:
            return f"({e()} {rng.choice(['and', 'or'])} {e()})"
        if r < 0.92:
            return f"(not {e()})"
        return e()

    # ---------------------------------------------------------------- statements
    def emit(self, indent: int, text: str) -> None:
        self.lines.append("    " * indent + text)

    def target(self) -> str:
        return self.rng.choice(self.locals)

    def bounded(self, expr: str) -> str:
        """In a loop, keep ints from growing exponentially (a product of the variable with
        itself each iteration): reduce anything with * ** << modulo a constant."""
        growing = ("*", "<<", "pow(", "divmod", "exp") + tuple(f"{name}(" for name, _ in self.helpers)
        if self.loop_depth and any(op in expr for op in growing):
            return f"({expr}) % {self.rng.choice(MODULI)}"
        return expr

    def block(self, indent: int, n: int) -> None:
        start = len(self.lines)
        for _ in range(n):
            self.statement(indent)
        if len(self.lines) == start:
            self.emit(indent, "pass")

    def statement(self, indent: int) -> None:
        rng = self.rng
        nested = self.depth_budget > 0
        r = rng.random()
        if self.peek and r < 0.08:
            # A callee reading this frame's locals (as debuggers and tracebacks do).
            self.emit(indent, "snap = peek()")
            return
        if r < 0.30 or not nested and r < 0.6:
            t = self.target()
            if rng.random() < 0.3:
                op = rng.choice(["+=", "-=", "*=", "+=", "|=", "^=", "//=", "%="])
                if op in ("|=", "^="):
                    rhs = self.bounded(f"{self.intish(t)} {op[:-1]} {self.intish(self.expr(1))}")
                else:
                    rhs = self.bounded(f"{t} {op[:-1]} {self.expr(1)}")
                self.emit(indent, f"{t} = {rhs}")
            else:
                self.emit(indent, f"{t} = {self.bounded(self.expr())}")
            return
        if r < 0.36 and self.seqs:
            arr = rng.choice(self.seqs)
            self.emit(indent, f"{arr}[{self.index_expr(arr)}] = {self.bounded(self.expr(1))}")
            return
        if r < 0.42 and self.in_loop:
            self.emit(indent, f"if {self.cond()}:")
            self.emit(indent + 1, rng.choice(["break", "continue"]))
            return
        if r < 0.47:
            self.emit(indent, f"if {self.cond()}:")
            self.emit(indent + 1, f"return {self.expr()}")
            return
        if r < 0.51:
            self.emit(indent, f"if {self.cond()}:")
            self.emit(indent + 1, f"raise {rng.choice(['ValueError', 'KeyError', 'ArithmeticError', 'RuntimeError'])}"
                                  f"('fuzz', {self.target()})")
            return
        if not nested:
            self.emit(indent, f"{self.target()} = {self.bounded(self.expr())}")
            return
        self.depth_budget -= 1
        try:
            if r < 0.63:
                self.emit(indent, f"if {self.cond()}:")
                self.block(indent + 1, rng.randint(1, 3))
                if rng.random() < 0.3:
                    self.emit(indent, f"elif {self.cond()}:")
                    self.block(indent + 1, rng.randint(1, 2))
                if rng.random() < 0.5:
                    self.emit(indent, "else:")
                    self.block(indent + 1, rng.randint(1, 2))
            elif r < 0.78:
                self.for_loop(indent)
            elif r < 0.86:
                self.while_loop(indent)
            else:
                self.try_block(indent)
        finally:
            self.depth_budget += 1

    def for_loop(self, indent: int) -> None:
        rng = self.rng
        var = f"i{self.loop_vars}"
        self.loop_vars += 1
        ints = [p for p in self.scalars if not p.startswith("i")]
        choices = [f"range({rng.randint(0, 9)})", f"range({rng.randint(-3, 3)}, {rng.randint(2, 12)})",
                   f"range({rng.randint(10, 14)}, {rng.randint(-2, 4)}, -{rng.randint(1, 3)})"]
        if ints:
            p = rng.choice(ints)
            choices += [f"range(min({self.intish(p)}, 9))", f"range(max(-2, min({self.intish(p)}, 7)), 10)"]
        if self.seqs:
            arr = rng.choice(self.seqs)
            choices += [f"range(len({arr}))", f"range({arr}.shape[0])" if arr in self.arrays else f"range(1, len({arr}))"]
        iterable = rng.choice(choices)
        if self.seqs and rng.random() < 0.15:
            iterable = rng.choice(self.seqs)  # iterate over the elements
        self.emit(indent, f"for {var} in {iterable}:")
        self.enter_loop(var, indent + 1, rng.randint(1, 4))
        if rng.random() < 0.15:
            self.emit(indent, "else:")
            self.emit(indent + 1, f"{self.target()} = {self.bounded(self.expr())}")

    def while_loop(self, indent: int) -> None:
        rng = self.rng
        var = f"i{self.loop_vars}"
        self.loop_vars += 1
        self.emit(indent, f"{var} = 0")
        bound = rng.randint(1, 12)
        if rng.random() < 0.5:
            self.emit(indent, f"while {var} < {bound}:")
        else:
            self.emit(indent, f"while {var} < {bound} and {self.cond()}:")
        self.emit(indent + 1, f"{var} += 1")
        self.enter_loop(var, indent + 1, rng.randint(1, 4))

    def enter_loop(self, var: str, indent: int, n: int) -> None:
        was = self.in_loop
        self.in_loop = True
        self.loop_depth += 1
        self.scalars.append(var)
        self.block(indent, n)
        self.scalars.remove(var)
        self.loop_depth -= 1
        self.in_loop = was

    def try_block(self, indent: int) -> None:
        rng = self.rng
        self.emit(indent, "try:")
        self.block(indent + 1, rng.randint(1, 3))
        kind = rng.random()
        if kind < 0.8:
            exc = rng.choice(EXCEPTIONS)
            if rng.random() < 0.4:
                self.emit(indent, f"except {exc} as e:")
                self.emit(indent + 1, f"{self.target()} = len(e.args)")
            else:
                self.emit(indent, f"except {exc}:")
                was = self.in_loop
                self.block(indent + 1, rng.randint(1, 2))
                self.in_loop = was
            if rng.random() < 0.2:
                self.emit(indent, "else:")
                self.emit(indent + 1, f"{self.target()} = {self.bounded(self.expr())}")
        if kind >= 0.8 or rng.random() < 0.15:
            self.emit(indent, "finally:")
            self.emit(indent + 1, f"{self.target()} = {self.bounded(self.expr(1))}")

    # ---------------------------------------------------------------- whole function
    def function(self, name: str, n_statements: int, n_locals: int, with_list: bool = False) -> str:
        rng = self.rng
        self.emit(0, f"def {name}({', '.join(self.params)}):")
        for k in range(n_locals):
            local = f"x{k}"
            init = rng.choice(self.scalars + INT_CONSTS[:8] + FLOAT_CONSTS[:6]) if self.scalars else rng.choice(INT_CONSTS[:8])
            self.emit(1, f"{local} = {init}")
            self.locals.append(local)
        self.scalars.extend(self.locals)
        if with_list:
            pool = (self.scalars + FLOAT_CONSTS[:6]) if rng.random() < 0.5 else ["0.0", "1.5", "-2.0", "0.25", "3.0"]
            self.emit(1, "lst = [" + ", ".join(rng.choice(pool) for _ in range(rng.choice([4, 5, 6]))) + "]")
            self.seqs.append("lst")
            self.lists.append("lst")
        if self.peek:
            self.emit(1, "snap = None")
        self.block(1, n_statements)
        ret = self.locals[: rng.randint(1, min(3, len(self.locals)))]
        if self.seqs and rng.random() < 0.4:
            ret.append(rng.choice(self.seqs))
        if self.peek:
            ret.append("snap")
        self.emit(1, "return " + (ret[0] if len(ret) == 1 else "(" + ", ".join(ret) + ",)"))
        return "\n".join(self.lines) + "\n"


SCALAR_CATEGORIES = ["int", "int", "int", "float", "float", "bool", "big"]

# What a callee reading its caller's frame sees: the caller's bound locals, by name.
PEEK = """def peek():
    return tuple(sorted(sys._getframe(1).f_locals.items(), key=lambda item: item[0]))
"""


def generate(seed: int, index: int) -> Program:
    rng = random.Random(f"rjit-fuzz:{seed}:{index}")
    array_program = rng.random() < 0.3
    helpers: list = []
    parts = ["import math", "import numpy as np", "import sys", "", PEEK]
    for h in range(rng.choice([0, 1, 1, 2, 3])):
        n = rng.randint(1, 3)
        params = [f"p{k}" for k in range(n)]
        g = _FunctionGen(rng, params, [], list(helpers), depth_budget=1)
        if rng.random() < 0.35:
            # One expression of its parameters: small enough to be inlined into its callers.
            g.helpers = []
            parts.append(f"def h{h}({', '.join(params)}):\n    return {g.expr()}\n")
        else:
            parts.append(g.function(f"h{h}", rng.randint(1, 4), rng.randint(1, 2)))
        helpers.append((f"h{h}", n))
    n_params = rng.randint(1, 3)
    params = ["a", "b", "c"][:n_params]
    array_params = []
    if array_program:
        array_params = ["arr"]
        params = params + ["arr"]
    g = _FunctionGen(rng, params, array_params, helpers, depth_budget=2)
    g.peek = rng.random() < 0.2
    parts.append(g.function("f", rng.randint(3, 8), rng.randint(2, 4), with_list=rng.random() < 0.3))
    source = "\n".join(parts)

    # The calls: the first ones with one type per parameter (what compiled code specialises
    # for), then types that change (deopts, entry guard failures), then the first types again.
    primary = {p: rng.choice(SCALAR_CATEGORIES) for p in params if p != "arr"}
    dtype = rng.choice(DTYPES)
    if array_program:
        primary["arr"] = f"array:{dtype}"
    calls = []
    n_first = rng.randint(2, 4)
    for k in range(n_first + rng.randint(3, 6)):
        call = []
        for p in params:
            category = primary[p]
            if k >= n_first and rng.random() < 0.5:
                if p == "arr":
                    category = rng.choice([f"array:{d}" for d in DTYPES] + ["list"])
                else:
                    category = rng.choice(["int", "big", "float", "bool"])
            call.append(_arg_for(rng, category))
        calls.append(call)
    calls.append(calls[0])
    threshold = rng.choice([0, 0, 0, 2, 100])
    return Program(seed, index, source, calls, threshold)


if __name__ == "__main__":  # print a few programs: python3 tests/fuzz/gen.py SEED [COUNT]
    import sys

    seed = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    for i in range(int(sys.argv[2]) if len(sys.argv) > 2 else 3):
        p = generate(seed, i)
        print(f"# {p.name()} threshold={p.threshold}\n{p.source}# calls: {p.calls}\n")
