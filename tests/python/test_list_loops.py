"""`for x in a_list` takes the next item inline (as `listiter_next` does, reading the list afresh
each time); any other iterable, and the end of the list, go through the iterator's own
`tp_iternext`. A truth test of a value some local still holds (`if x:`) borrows it: True,
False and None are tested inline, and `__bool__` of anything else sees the interpreter's
reference counts. Each case runs plain and compiled and must agree exactly."""

from __future__ import annotations

import sys

import rjit
from test_compiled import compiled_pair, outcome

COUNT = """
def f(xs):
    count = 0
    for x in xs:
        if x:
            count += 1
    return count
"""


def gen(n):
    yield from range(n)


class ListSubclass(list):
    pass


class IterOverride(list):
    def __iter__(self):
        return iter([1, 0, 1])


def test_counting_over_lists_and_other_iterables():
    plain, compiled = compiled_pair(COUNT)
    cases = [
        [True, False] * 50,
        [],
        [0, 1, 2, None, "", "a", [], [0], 0.0, -0.0, 2**70],
        (1, 0, 1),
        {1: 2, 0: 3},
        {0, 1, 2},
        "ab\0",
        range(-3, 3),
        ListSubclass([1, 0, 5]),
        IterOverride([0, 0, 0, 0]),
        iter([1, 1, 0]),
        42,  # not iterable: TypeError at the for
    ]
    for xs in cases:
        assert outcome(compiled, (xs,)) == outcome(plain, (xs,)), xs
    # A generator (deepcopy cannot copy one: a fresh one per run).
    assert compiled(gen(10)) == plain(gen(10)) == 9


MUTATING = """
def f(xs, k, action):
    seen = []
    for x in xs:
        seen.append(x)
        if len(seen) == k:
            if action == "append":
                xs.append(-1)
            elif action == "pop":
                xs.pop()
            elif action == "clear":
                xs.clear()
            elif action == "insert":
                xs.insert(0, -2)
            elif action == "replace":
                xs[:] = [7, 8]
            elif action == "rebind":
                xs = [99]
    return seen, xs
"""


def test_a_list_changed_while_it_is_iterated():
    plain, compiled = compiled_pair(MUTATING)
    for action in ("append", "pop", "clear", "insert", "replace", "rebind"):
        for k in (1, 2, 5, 100):
            args = ([1, 2, 3, 4, 5], k, action)
            assert outcome(compiled, args) == outcome(plain, args), (action, k)


def test_an_exhausted_list_iterator_stays_exhausted():
    source = """
def f(xs):
    it = iter(xs)
    a = []
    for x in it:
        a.append(x)
    xs.append(5)
    for x in it:
        a.append(x)
    return a, next(it, "done")
"""
    plain, compiled = compiled_pair(source)
    assert outcome(compiled, ([1, 2],)) == outcome(plain, ([1, 2],))


BOOLS = """
import sys
seen = []
class B:
    def __init__(self, v):
        self.v = v
    def __bool__(self):
        seen.append(sys.getrefcount(self))
        if self.v is None:
            raise ValueError("no truth")
        return self.v
def f(xs):
    count = 0
    for x in xs:
        if x:
            count += 1
    return count
"""


def test_bool_of_items_sees_the_interpreters_reference_counts_and_raises_at_its_line():
    plain, compiled = compiled_pair(BOOLS, "f")
    plain_ns, compiled_ns = plain.__globals__, compiled.__wrapped__.__globals__
    items = lambda ns: [ns["B"](True), ns["B"](False), True, None, ns["B"](True)]  # noqa: E731
    rjit.enable(threshold=10**9)  # the same calling convention as compiled code (a hook)
    try:
        expected = plain(items(plain_ns))
    finally:
        rjit.disable()
    assert compiled(items(compiled_ns)) == expected == 3
    assert compiled_ns["seen"] == plain_ns["seen"]
    failing = lambda ns: [ns["B"](True), ns["B"](None)]  # noqa: E731
    assert outcome(compiled, (failing(compiled_ns),)) == outcome(plain, (failing(plain_ns),))


def test_items_and_lists_keep_their_reference_counts():
    plain, compiled = compiled_pair(COUNT)
    marker = object()
    xs = [marker, True, False, None] * 10
    assert compiled(xs) == plain(xs) == 20  # compiles
    before = sys.getrefcount(marker), sys.getrefcount(xs), sys.getrefcount(True), sys.getrefcount(None)
    for _ in range(100):
        compiled(xs)
    assert (sys.getrefcount(marker), sys.getrefcount(xs), sys.getrefcount(True), sys.getrefcount(None)) == before


def test_sieve_kernel():
    source = """
def f(n):
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
"""
    plain, compiled = compiled_pair(source)
    for n in (1, 2, 10, 100, 10**5):
        assert outcome(compiled, (n,)) == outcome(plain, (n,))


def test_a_deopt_inside_a_list_loop_continues_with_the_same_iterator():
    # The int sum overflows 64 bits part-way: the interpreter takes over at that item, with
    # the list iterator exactly where the inline path left it.
    source = """
def f(xs, start):
    s = start
    n = 0
    for x in xs:
        s += x
        n += 1
    return s, n
"""
    plain, compiled = compiled_pair(source)
    for start, xs in ((0, [1, 2, 3]), (2**63 - 10, [3, 4, 5, 6]), (0, [1, 2.5, "x"]), (1, [2**62] * 5)):
        assert outcome(compiled, (xs, start)) == outcome(plain, (xs, start)), (start, xs)


def test_storing_the_item_already_in_a_slot_changes_no_count():
    # `flags[j] = False` over False: the inline store skips the write and both counts.
    source = """
import sys
def f(xs, v, n):
    counts = []
    for i in range(n):
        xs[i % len(xs)] = v
        counts.append(sys.getrefcount(v))
    return counts
"""
    plain, compiled = compiled_pair(source)
    marker, other = object(), object()
    for start in ([marker, marker], [other, marker], [other, other]):
        before = sys.getrefcount(marker), sys.getrefcount(other)
        results = []
        for func in (plain, compiled):
            xs = list(start)
            rjit.enable(threshold=10**9)  # plain: the calling convention compiled code has
            try:
                counts = func(xs, marker, 5)
            finally:
                rjit.disable()
            assert xs == [marker, marker]
            results.append(counts)
            del xs
            assert (sys.getrefcount(marker), sys.getrefcount(other)) == before
        assert results[0] == results[1], start
