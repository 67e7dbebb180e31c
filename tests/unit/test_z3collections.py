"""The structured-collection plans of the Z3 compiler against brute force.

Random families of nested intervals (the block slots of a small buddy memory,
and arbitrary nested ones), each guarded by its own Boolean; for random
assignments of the guards, the folded formula must say what checking every
pair / every point says.
"""

from __future__ import annotations

import itertools
import operator
import random

import pytest
import z3
from mmcheck.checker.z3collections import (
    Delta,
    SlotIndex,
    SpanTable,
    guarded_sum,
    laminar_cover,
    laminar_disjoint,
    sum_delta,
)


def slot_spans(npages: int, max_order: int) -> list[tuple[z3.BoolRef, int, int]]:
    """Every buddy slot as (guard, lo, hi), each slot twice (free and allocated)."""
    out = []
    for kind in ("f", "a"):
        for j in range(max_order):
            for i in range(npages >> j):
                out.append((z3.Bool(f"{kind}{j}_{i}"), i << j, (i + 1) << j))
    return out


def truth(f: object, model: dict[str, bool]) -> bool:
    if isinstance(f, bool):
        return f
    sub = [(z3.Bool(k), z3.BoolVal(v)) for k, v in model.items()]
    return z3.is_true(z3.simplify(z3.substitute(f, *sub)))


def brute_disjoint(spans, model) -> bool:  # noqa: ANN001
    live = [(lo, hi) for g, lo, hi in spans if model[str(g)] and hi > lo]
    return all(a[1] <= b[0] or b[1] <= a[0] for k, a in enumerate(live) for b in live[k + 1:])


def brute_cover(spans, model, lo: int, hi: int) -> bool:  # noqa: ANN001
    live = [(a, b) for g, a, b in spans if model[str(g)]]
    return all(any(a <= q < b for a, b in live) for q in range(lo, hi))


def test_disjoint_and_cover_agree_with_brute_force() -> None:
    rng = random.Random(9)
    for npages, max_order in [(8, 4), (13, 3), (6, 3)]:
        spans = slot_spans(npages, max_order)
        no_overlap = laminar_disjoint(spans)
        cover = laminar_cover(spans, 0, npages)
        part = laminar_cover(spans, 3, npages - 1)
        seen = {True: 0, False: 0}
        for _ in range(40):
            p = rng.choice([0.1, 0.3, 0.6])
            model = {str(g): rng.random() < p for g, _, _ in spans}
            assert truth(no_overlap, model) == brute_disjoint(spans, model)
            assert truth(cover, model) == brute_cover(spans, model, 0, npages)
            assert truth(part, model) == brute_cover(spans, model, 3, npages - 1)
            seen[brute_cover(spans, model, 0, npages)] += 1
        assert seen[True] and seen[False]


def test_crossing_intervals_are_left_to_the_caller() -> None:
    a, b = z3.Bools("a b")
    assert laminar_disjoint([(a, 0, 4), (b, 2, 6)]) is None
    assert laminar_cover([(a, 0, 4), (b, 2, 6)], 0, 6) is None
    # empty intervals meet nothing, an empty range is covered
    assert laminar_disjoint([(a, 3, 3), (b, 0, 8)]) is True
    assert laminar_cover([], 5, 5) is True and laminar_cover([(a, 0, 2)], 0, 3) is False


def test_span_table_and_index() -> None:
    rng = random.Random(3)
    spans = slot_spans(16, 5)
    table = SpanTable(spans)
    for k in range(60):
        lo = rng.randrange(-2, 18) if k % 2 else rng.randrange(0, 16) // 4 * 4
        hi = lo + (rng.randrange(0, 6) if k % 2 else 4)  # every other one a slot itself
        meets = [g for g, a, b in spans if b > a and a < hi and b > lo and hi > lo]
        model = {str(g): rng.random() < 0.15 for g, _, _ in spans}
        got = table.overlapping(lo, hi)
        assert truth(z3.Or(*got) if got else False, model) == any(model[str(g)] for g in meets)

    class Rec:
        def __init__(self, **f: object) -> None:
            self.fields = {k: z3.IntVal(v) if isinstance(v, int) else v for k, v in f.items()}

    slots = [(z3.Bool(f"g{k}"), Rec(pfn=k % 4, order=k // 4)) for k in range(12)]
    index = SlotIndex(slots)
    assert index.candidates({"pfn": 1}) == [1, 5, 9]
    assert index.candidates({"pfn": 1, "order": 2}) in ([1, 5, 9], [8, 9, 10, 11])
    assert index.candidates({"other": 1}) is None
    mixed = SlotIndex([*slots, (z3.Bool("s"), Rec(pfn=z3.Int("p"), order=0))])
    assert "pfn" not in mixed.by_field and mixed.by_field["order"][0] == [0, 1, 2, 3, 12]


def test_sum_delta_equals_the_difference_of_the_sums() -> None:
    """a - b == d + k for two guarded sums over the same slots, on random guard
    values (guards shared between the two sums included); None for other shapes."""
    rng = random.Random(4)
    before = [z3.Bool(f"g{i}") for i in range(6)]
    after = [before[0], *(z3.Bool(f"h{i}") for i in range(1, 6))]
    sizes = [1, 2, 4, 1, 8, 2]
    a = z3.Sum(*(z3.If(g, c, 0) for g, c in zip(after, sizes, strict=True))) + 3
    b = z3.Sum(*(z3.If(g, c, 0) for g, c in zip(before, sizes, strict=True))) - 5
    delta = sum_delta(a, b)
    assert delta is not None and delta[1] == 8
    d, k = delta[0].term(), delta[1]
    for _ in range(40):
        sub = [(v, z3.BoolVal(rng.random() < 0.5)) for v in before + after[1:]]
        value = z3.simplify(z3.substitute(a - b - d - k, *sub))
        assert value.as_long() == 0
    other = z3.Sum(*(z3.If(g, 2 * c, 0) for g, c in zip(before, sizes, strict=True)))
    assert sum_delta(a, other) is None  # different coefficients
    assert sum_delta(a, z3.Int("x") + 1) is None
    assert guarded_sum(z3.Int("x") * 2) is None


def test_sum_delta_reads_a_bit_after_a_step() -> None:
    """Guards after a step written as `(g and not off) or on`, `g and not off` and
    `g or on` (and one of no such shape): the delta still equals a - b on every
    assignment of the guards and of on/off."""
    g = [z3.Bool(f"g{i}") for i in range(4)]
    on, off = z3.Bool("on"), z3.Bool("off")
    h = [z3.Or(on, z3.And(g[0], z3.Not(off))), z3.And(g[1], z3.Not(off)), z3.Or(on, g[2]),
         z3.Xor(g[3], on)]
    sizes = [1, 2, 4, 8]
    a = z3.Sum(*(z3.If(x, c, 0) for x, c in zip(h, sizes, strict=True)))
    b = z3.Sum(*(z3.If(x, c, 0) for x, c in zip(g, sizes, strict=True)))
    delta = sum_delta(a, b)
    assert delta is not None
    d, k = delta[0].term(), delta[1]
    for values in itertools.product([False, True], repeat=6):
        sub = list(zip([*g, on, off], map(z3.BoolVal, values), strict=True))
        assert z3.simplify(z3.substitute(a - b - d - k, *sub)).as_long() == 0


@pytest.mark.parametrize("op", ["==", "!=", "<", "<=", ">", ">="])
def test_a_delta_compared_as_a_pseudo_boolean_means_the_comparison_of_its_sum(op: str) -> None:
    """Delta.compare (one PbEq/PbLe/PbGe, negative coefficients by negated literals)
    is the comparison of Delta.term() on every assignment, at every bound."""
    lits = [z3.Bool(f"x{i}") for i in range(5)]
    delta = Delta(((lits[0], 4), (lits[1], -2), (lits[2], 1)), ((lits[3], 3), (lits[4], -1)))
    compare = {"==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le,
               ">": operator.gt, ">=": operator.ge}[op]
    for k in range(-6, 7):
        claim = delta.compare(op, k)
        for values in itertools.product([False, True], repeat=5):
            sub = list(zip(lits, map(z3.BoolVal, values), strict=True))
            total = z3.simplify(z3.substitute(delta.term(), *sub)).as_long()
            got = z3.is_true(z3.simplify(z3.substitute(claim, *sub)))
            assert got == compare(total, k), (k, values)
    assert Delta((), ()).compare(op, 0) is compare(0, 0)
