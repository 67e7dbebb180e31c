"""The concrete evaluator (checker/evaluate.py) and its explanations (checker/explain.py).

Builtins and operators on concrete values, errors that become `Verdict.error`,
vacuity (`Verdict.live`), `a, b in C` over distinct positions, `step`, `old`
and `raised` on real steps of the reference allocator, and the fast plans
(pairwise disjoint, lookup, cover, per-element memo) against the slow oracle
of spec_oracle.py on random collections.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mmcheck.checker.evaluate import CompiledSpec, Frame
from mmcheck.checker.explain import (
    explain_action,
    explain_invariant,
    format_value,
    lines,
    named,
    numbers,
)
from mmcheck.model.buddy import VOCABULARY, Block, BuddyAllocator, Page
from mmcheck.spec.loader import check_text
from spec_oracle import Iv, Oracle, from_python

DEFS = """\
def size(b) = 2 ** b.order
def span(b) = b.pfn .. b.pfn + size(b)
def blocks = free + allocated
"""


def buddy_state(**overrides: Any) -> dict[str, Any]:
    """A fresh 16-page allocator (one free block of order 4), with some names replaced."""
    snap = BuddyAllocator(16, 5).snapshot()
    return {**{k: snap[k] for k in snap}, **overrides}


def compiled(body: str, defs: str = DEFS) -> CompiledSpec:
    return CompiledSpec(check_text(f"spec buddy\n{defs}invariant x: {body}\n", "t.mm"))


def verdict(body: str, **state: Any):
    return compiled(body).check_invariant("x", buddy_state(**state))


def holds(body: str, **state: Any) -> bool:
    v = verdict(body, **state)
    assert v.error is None, v.error
    return v.holds


def value(text: str, **state: Any) -> Any:
    """The value of an int or interval expression, through the compiled closure."""
    c = compiled(f"({text}) == ({text})")
    body = c.spec.invariants[0].body
    return c.compiler.compile(body.left)(Frame(buddy_state(**state)))


# ------------------------------------------------------------------ operators

ARITHMETIC = [
    ("1 + 2 * 3", 7),
    ("7 // 2", 3),
    ("7 / 2", 3),  # `/` is floor division too: the language has only integers
    ("-7 // 2", -4),  # floor, as in Python, not truncation
    ("-7 % 3", 2),
    ("7 % -3", -2),
    ("2 ** 10", 1024),
    ("2 ** 3 ** 2", 512),
    ("-2 ** 2", -4),
    ("1 << 4", 16),
    ("256 >> 4", 16),
    ("-1 >> 3", -1),
    ("6 & 3", 2),
    ("6 | 3", 7),
    ("6 ^ 3", 5),
    ("1 | 2 ^ 3 & 4 << 1", 3),
    ("-(3 - 5)", 2),
    ("abs(-4)", 4),
    ("min(3, -1)", -1),
    ("max(3, -1)", 3),
    ("0x10 + 1_000", 1016),
    ("len(3 .. 7)", 4),
    ("len(7 .. 3)", 0),
    ("len(free)", 1),
    ("len(pages)", 16),
    ("len(free + allocated)", 1),
    ("count(b in free)", 1),
    ("sum(p in pages: p.pfn)", 120),
    ("count(p in pages: p.buddy)", 1),
    ("if npages > 8 then 1 else 2", 1),
    ("let n = npages * 2 in n + 1", 33),
    ("size(Block{pfn: 0, order: 3})", 8),
]


@pytest.mark.parametrize(("text", "expected"), ARITHMETIC, ids=[t for t, _ in ARITHMETIC])
def test_arithmetic(text: str, expected: int) -> None:
    assert value(text) == expected


UNDEFINED = [
    ("1 // 0 == 0", "division by zero"),
    ("1 / (npages - 16) == 0", "division by zero"),
    ("1 % 0 == 0", "modulo by zero"),
    ("2 ** -1 == 0", "exponent -1 is out of range"),
    ("2 ** (npages - 17) == 0", "exponent -1 is out of range"),
    ("1 << -1 == 0", "shift by -1 is out of range"),
    ("1 >> -2 == 0", "shift by -2 is out of range"),
    ("forall x in 0 .. 4 step 0: true", "step 0 must be positive"),
    ("count(x in 0 .. 4 step -1) == 0", "step -1 must be positive"),
]


@pytest.mark.parametrize(("body", "message"), UNDEFINED, ids=[b for b, _ in UNDEFINED])
def test_undefined_operations_are_errors_with_a_line(body: str, message: str) -> None:
    v = verdict(body)
    assert (v.holds, v.error) == (False, f"{message} (line 5)")


def test_errors_are_not_raised_where_evaluation_does_not_reach() -> None:
    assert holds("npages == 0 -> 1 // 0 == 0")
    assert holds("npages > 0 or 1 % 0 == 0")
    assert holds("if npages > 0 then true else 2 ** -1 == 0")


COMPARISONS = [
    ("1 < 2 and 2 <= 2 and 3 > 2 and 3 >= 3 and 1 != 2 and 2 == 2", True),
    ("1 > 2 or 2 < 2", False),
    ("true <-> true", True),
    ("false <-> false", True),
    ("true <-> false", False),
    ("false -> false", True),
    ("true -> false", False),
    ("not false and not (1 == 2)", True),
    ("true == true and false != true", True),
    ("Block{pfn: 0, order: 4} == Block{pfn: 0, order: 4}", True),
    ("Block{pfn: 0, order: 4} != Block{pfn: 0, order: 3}", True),
    ("Block{pfn: 0, order: 4} in free", True),
    ("Block{pfn: 0, order: 3} not in free", True),
    ("Block{pfn: 0, order: 4} in free_area", True),
    ("Block{pfn: 0, order: 4} in free + allocated", True),
    ("Block{pfn: 0, order: 4} in allocated", False),
    ("3 in 0 .. 4 and 0 in 0 .. 4 and 4 not in 0 .. 4 and -1 not in 0 .. 4", True),
    ("2 .. 6 == 2 .. 6 and 2 .. 6 != 2 .. 7", True),
    ("(2 .. 6).lo == 2 and (2 .. 6).hi == 6", True),
]


@pytest.mark.parametrize(("body", "expected"), COMPARISONS, ids=[b for b, _ in COMPARISONS])
def test_comparisons_logic_and_membership(body: str, expected: bool) -> None:
    assert holds(body) is expected


BUILTINS = [
    ("aligned(12, 4)", True),
    ("aligned(12, 8)", False),
    ("aligned(0, 8)", True),
    ("aligned(-8, 4)", True),
    ("aligned(5, 0)", False),  # nothing is a multiple of zero (except 0, and not even that)
    ("aligned(0, 0)", False),
    ("disjoint(0 .. 4, 4 .. 8)", True),
    ("disjoint(4 .. 8, 0 .. 4)", True),
    ("disjoint(0 .. 4, 3 .. 8)", False),
    ("disjoint(3 .. 8, 0 .. 4)", False),
    ("disjoint(0 .. 8, 2 .. 3)", False),
    ("disjoint(0 .. 0, 0 .. 8)", True),  # an empty interval overlaps nothing
    ("disjoint(2 .. 2, 0 .. 8)", True),
    ("disjoint(5 .. 3, 0 .. 10)", True),
    ("contains(0 .. 8, 0)", True),
    ("contains(0 .. 8, 7)", True),
    ("contains(0 .. 8, 8)", False),
    ("contains(0 .. 8, -1)", False),
    ("contains(0 .. 8, 2 .. 8)", True),
    ("contains(0 .. 8, 2 .. 9)", False),
    ("contains(0 .. 8, -1 .. 3)", False),
    ("contains(0 .. 8, 20 .. 20)", True),  # the empty interval lies in every interval
    ("contains(0 .. 8, 9 .. 3)", True),
    ("contains(5 .. 3, 4)", False),
    ("contains(5 .. 3, 5 .. 3)", True),
]


@pytest.mark.parametrize(("body", "expected"), BUILTINS, ids=[b for b, _ in BUILTINS])
def test_builtins(body: str, expected: bool) -> None:
    assert holds(body) is expected


def test_an_interval_with_hi_below_lo_is_empty() -> None:
    assert value("len(5 .. 3)") == 0
    assert holds("4 not in 5 .. 3 and 5 not in 5 .. 3 and 3 not in 5 .. 3")
    assert holds("count(x in 5 .. 3) == 0 and sum(x in 5 .. 3: x) == 0")
    v = verdict("forall x in 5 .. 3: false")
    assert (v.holds, v.live) == (True, False)


def test_an_interval_keeps_the_bounds_it_was_written_with() -> None:
    """`.lo`, `.hi` and `==` see the bounds, empty or not, as the Z3 back end does."""
    assert holds("(5 .. 3).lo == 5 and (5 .. 3).hi == 3")
    assert holds("0 .. 0 != 5 .. 5")
    assert holds("5 .. 3 == 5 .. 3")
    assert from_python(value("5 .. 3")) == Iv(5, 3)


# ------------------------------------------------------------------ quantifiers


def test_quantifiers_over_collections_and_intervals() -> None:
    two = frozenset({Block(0, 3), Block(8, 2)})
    assert holds("forall b in free: aligned(b.pfn, size(b))", free=two)
    assert not holds("forall b in free: b.order == 3", free=two)
    assert holds("exists b in free: b.order == 2 and b.pfn == 8", free=two)
    assert not holds("exists b in free: b.order == 1", free=two)
    assert holds("forall x in 0 .. 16: exists b in free + allocated: x in span(b)")
    assert holds("forall b in free, x in span(b): x < npages", free=two)
    assert value("count(b in free, x in span(b))", free=two) == 12


def test_quantifiers_over_empty_domains_hold_vacuously() -> None:
    empty = frozenset()
    v = verdict("forall b in free: b.order > 100", free=empty)
    assert (v.holds, v.live) == (True, False)
    v = verdict("exists b in free: b.order >= 0", free=empty)
    assert (v.holds, v.live) == (False, False)
    v = verdict("forall x in 3 .. 3: false")
    assert (v.holds, v.live) == (True, False)
    v = verdict("count(b in free) == 0", free=empty)  # the comparison itself was exercised
    assert (v.holds, v.live) == (True, True)


def test_implication_with_a_false_premise_is_vacuous() -> None:
    v = verdict("npages > 100 -> npages == 3")
    assert (v.holds, v.live) == (True, False)
    v = verdict("npages < 100 -> npages == 16")
    assert (v.holds, v.live) == (True, True)
    v = verdict("forall p in pages: p.refcount > 0 -> p.order == 9")
    assert (v.holds, v.live) == (True, False)
    v = verdict("npages < 100 -> true")  # a literal is no atom: nothing was checked
    assert (v.holds, v.live) == (True, False)
    v = verdict("forall b in free: b.order >= 0")
    assert (v.holds, v.live) == (True, True)


@pytest.mark.parametrize(
    ("body", "free"),
    [
        ("forall a, b in free: disjoint(span(a), span(b))", frozenset()),
        ("forall a, b in free: disjoint(span(a), span(b))", frozenset({Block(0, 2)})),
        ("exists b in free: b.pfn == 3", frozenset()),
        ("exists b in free: 3 == b.order", frozenset()),
        ("forall q in 0 .. 0: exists b in free: q in span(b)", frozenset({Block(0, 2)})),
        ("forall b in free: b.order < max_order", frozenset()),
    ],
)
def test_fast_plans_are_as_vacuous_as_the_loops_they_replace(body: str, free: frozenset) -> None:
    """A plan must not claim it exercised a property that the plain loop never reached."""
    v = verdict(body, free=free)
    assert v.error is None
    assert v.live is False, f"{body} over {set(free)} counted as exercised"


def test_two_names_range_over_distinct_positions() -> None:
    dup = [Block(0, 0), Block(0, 0)]
    # In a list with a duplicate, two distinct positions hold equal members.
    assert not holds("forall a, b in free_area: a != b", free_area=dup)
    assert holds("exists a, b in free_area: a == b", free_area=dup)
    assert not holds("forall a, b in free_area: disjoint(span(a), span(b))", free_area=dup)
    three = frozenset({Block(0, 0), Block(1, 0), Block(2, 1)})
    assert holds("forall a, b in free: a != b", free=three)
    assert value("count(a, b in free)", free=three) == 6  # ordered pairs
    assert value("count(a, b, c in free)", free=three) == 6
    assert value("count(a, b in free, c in free)", free=three) == 18
    v = verdict("forall a, b in free: false", free=frozenset({Block(0, 0)}))
    assert (v.holds, v.live) == (True, False)  # one member: no pair at all
    assert value("count(x, y in 0 .. 3)") == 6


def test_step() -> None:
    assert value("count(p in 0 .. 16 step 4)") == 4
    assert value("sum(p in 0 .. 16 step 4: p)") == 24
    assert value("sum(p in 1 .. 16 step 4: p)") == 1 + 5 + 9 + 13
    assert value("count(p in 0 .. 17 step 4)") == 5
    assert holds("forall p in 3 .. 40 step 8: p % 8 == 3")
    assert holds("forall b in free, p in span(b) step 4: aligned(p - b.pfn, 4)")
    assert value("count(p in 0 .. npages step 2 ** 2)") == 4
    assert value("count(p in 10 .. 0 step 3)") == 0


def test_bags_keep_duplicates() -> None:
    dup = [Block(0, 0), Block(0, 0)]
    assert value("count(e in free_area)", free_area=dup) == 2
    assert value("count(b in free_area + free_area)", free_area=dup) == 4
    assert value("len(free + free)") == 2
    assert value("sum(b in free + allocated: size(b))") == 16


def test_a_def_sees_its_parameters_not_the_callers_names() -> None:
    c = compiled("forall b in free: f(7) == 7", defs="def f(x) = x\n")
    assert c.check_invariant("x", buddy_state()).holds
    c = compiled("forall b in free: let y = 3 in g == 16", defs="def g = npages\n")
    assert c.check_invariant("x", buddy_state()).holds


# ------------------------------------------------------------------ plans vs. the oracle

PLAN_SHAPES = [
    # (property, does the evaluator have a fast plan for it?)
    "forall a, b in free_area: disjoint(span(a), span(b))",
    "forall a, b in free + allocated: disjoint(a.pfn .. a.pfn + size(a), b.pfn .. b.pfn + size(b))",
    "exists b in free: b.pfn == npages - 8",
    "exists b in free_area: 2 == b.order",
    "exists b in allocated: b.pfn == max_order",
    "forall q in 0 .. npages: exists b in free + allocated: q in span(b)",
    "forall q in 2 .. npages - 3: exists b in free: q in b.pfn .. b.pfn + 2 ** b.order",
    "forall b in free: b.order < max_order and aligned(b.pfn, size(b))",
    "forall b in free_area: b.pfn + size(b) <= npages",
    "forall p in pages: p.buddy -> p.order < max_order",
    # the same properties in shapes no plan recognises: the plain loops
    "forall a, b in free_area: disjoint(span(a), span(b)) and true",
    "forall a, b in free_area: a.pfn < b.pfn -> disjoint(span(a), span(b))",
    "exists b in free: b.pfn == npages - 8 and true",
    "not (exists a, b in free: a.pfn == b.pfn)",
    "forall q in 0 .. npages: exists b in free + allocated: q in span(b) and true",
    "count(b in free: b.order < max_order) == count(b in free)",
]

blocks_st = st.builds(Block, st.integers(0, 24), st.integers(0, 3))
pages_st = st.builds(Page, st.integers(0, 24), st.booleans(), st.integers(0, 4), st.integers(0, 2))


@st.composite
def buddy_states(draw: st.DrawFn) -> dict[str, Any]:
    """Arbitrary (mostly broken) buddy states: random blocks, duplicates in the list."""
    free_area = draw(st.lists(blocks_st, max_size=7))
    return buddy_state(
        npages=draw(st.integers(0, 24)),
        max_order=draw(st.integers(1, 4)),
        free=frozenset(draw(st.lists(blocks_st, max_size=6)) + free_area[:2]),
        allocated=frozenset(draw(st.lists(blocks_st, max_size=4))),
        free_area=free_area,
        pages=draw(st.lists(pages_st, max_size=6)),
    )


PLAN_SPEC = CompiledSpec(check_text(
    "spec buddy\n" + DEFS
    + "".join(f"invariant p{i}: {body}\n" for i, body in enumerate(PLAN_SHAPES)),
    "plans.mm",
))


@settings(max_examples=100, derandomize=True, deadline=None)
@given(st.lists(buddy_states(), min_size=1, max_size=4))
def test_plans_and_loops_agree_with_the_oracle(states: list[dict[str, Any]]) -> None:
    """One compiled spec over a sequence of states, as a run uses it (memos carry over)."""
    for state in states:
        for inv in PLAN_SPEC.spec.invariants:
            got = PLAN_SPEC.check_invariant(inv.name, state)
            oracle = Oracle(PLAN_SPEC.spec, VOCABULARY, state)
            want = oracle.holds(inv.body)
            assert got.error is None
            assert (got.holds, got.live) == (want, oracle.live > 0), (inv.name, state)


def test_the_plan_shapes_cover_both_answers() -> None:
    """The random states above reach both verdicts for each shape (else the test is weak)."""
    seen: dict[str, set[bool]] = {inv.name: set() for inv in PLAN_SPEC.spec.invariants}

    @settings(max_examples=150, derandomize=True, deadline=None)
    @given(buddy_states())
    def run(state: dict[str, Any]) -> None:
        for inv in PLAN_SPEC.spec.invariants:
            seen[inv.name].add(PLAN_SPEC.check_invariant(inv.name, state).holds)

    run()
    assert {n for n, v in seen.items() if v != {True, False}} == set(), seen


# ------------------------------------------------------------------ actions

ACTIONS = """\
spec buddy
def size(b) = 2 ** b.order
def nfree = count(b in free)
action takes "free_pages drops by the block's size" after alloc(o) returns r:
    r != none -> free_pages == old(free_pages) - 2 ** o
action refuses after alloc(o) returns r:
    raised(ValueError) <-> (o < 0 or o >= max_order)
action raised_means_none after alloc(o) returns r:
    raised -> r == none
action wrong after alloc(o) returns r:
    free_pages == old(free_pages)
action via_def after alloc(o) returns r:
    r != none -> nfree <= old(nfree) + max_order
action gives_back after free(pfn, order):
    not raised -> Block{pfn: pfn, order: order} not in allocated
                  and old(Block{pfn: pfn, order: order} in allocated)
action refused_free after free(pfn, order):
    raised(ValueError) <-> not old(Block{pfn: pfn, order: order} in allocated)
"""


def step(a: BuddyAllocator, op: str, *args: int) -> tuple[Any, Any, object, str | None]:
    """Run one operation on the reference: (old snapshot, new snapshot, result, raised)."""
    old = a.snapshot()
    result, raised = None, None
    try:
        result = getattr(a, op)(*args)
    except ValueError as err:
        raised = type(err).__name__
    return old, a.snapshot(), result, raised


def action_verdicts(c: CompiledSpec, a: BuddyAllocator, op: str, *args: int) -> dict[str, Any]:
    old, new, result, raised = step(a, op, *args)
    return {
        act.name: c.check_action(act, fn, old, new, args, result, raised)
        for act, fn in c.actions[op]
    }


def test_old_and_raised_on_real_steps() -> None:
    c = CompiledSpec(check_text(ACTIONS, "actions.mm"))
    a = BuddyAllocator(16, 4)
    ok = action_verdicts(c, a, "alloc", 1)
    assert {n: (v.holds, v.live) for n, v in ok.items()} == {
        "takes": (True, True),
        "refuses": (True, True),
        "raised_means_none": (True, False),  # nothing raised: vacuous
        "wrong": (False, True),
        "via_def": (True, True),
    }
    bad = action_verdicts(c, a, "alloc", 9)
    assert {n: (v.holds, v.live) for n, v in bad.items()} == {
        "takes": (True, False),  # r is none: vacuous
        "refuses": (True, True),
        "raised_means_none": (True, True),
        "wrong": (True, True),
        "via_def": (True, False),
    }
    pfn = next(b.pfn for b in a.snapshot()["allocated"])
    freed = action_verdicts(c, a, "free", pfn, 1)
    assert {n: (v.holds, v.live) for n, v in freed.items()} == {
        "gives_back": (True, True), "refused_free": (True, True),
    }
    again = action_verdicts(c, a, "free", pfn, 1)  # a double free: ValueError
    assert {n: (v.holds, v.live) for n, v in again.items()} == {
        "gives_back": (True, False), "refused_free": (True, True),
    }


def test_raised_names_the_exception_class() -> None:
    c = CompiledSpec(check_text(ACTIONS, "actions.mm"))
    act, fn = next((a, f) for a, f in c.actions["alloc"] if a.name == "refuses")
    s = BuddyAllocator(16, 4).snapshot()
    assert c.check_action(act, fn, s, s, (9,), None, "ValueError").holds
    assert not c.check_action(act, fn, s, s, (9,), None, "OSError").holds
    assert not c.check_action(act, fn, s, s, (9,), None, None).holds


def test_actions_agree_with_the_oracle_over_a_random_trace() -> None:
    import random

    c = CompiledSpec(check_text(ACTIONS, "actions.mm"))
    rng = random.Random(7)
    a = BuddyAllocator(37, 4)
    held: list[tuple[int, int]] = []
    for _ in range(300):
        if held and rng.random() < 0.45:
            pfn, order = held.pop(rng.randrange(len(held))) if rng.random() < 0.9 else (3, 0)
            op, args = "free", (pfn, order)
        else:
            op, args = "alloc", (rng.randint(-1, 4),)
        old, new, result, raised = step(a, op, *args)
        if op == "alloc" and result is not None:
            held.append((result, args[0]))
        for act, fn in c.actions[op]:
            got = c.check_action(act, fn, old, new, args, result, raised)
            names = dict(zip(act.params, args, strict=True))
            if act.result:
                names[act.result] = result
            oracle = Oracle(c.spec, VOCABULARY, new, old=old, args=names, raised=raised)
            want = oracle.holds(act.body)
            assert (got.holds, got.live) == (want, oracle.live > 0), (act.name, op, args)
            assert got.holds == (act.name != "wrong" or raised is not None or result is None)


# ------------------------------------------------------------------ explanations

EXPLAINED = """\
spec buddy
def size(b) = 2 ** b.order
def span(b) = b.pfn .. b.pfn + size(b)
invariant aligned_all: forall b in free: aligned(b.pfn, size(b))
invariant both: npages > 0 and free_pages == 3
invariant no_big: not (exists b in free: b.order > 1)
invariant apart: forall a, b in free: a.pfn < b.pfn -> disjoint(span(a), span(b))
invariant same: (npages == 16) <-> (free_pages == 16)
invariant counted: let n = count(b in free) in n == 1
invariant via_def: forall b in free: small(b)
def small(b) = b.order <= 1
"""


def explained(name: str, **state: Any) -> list[str]:
    c = CompiledSpec(check_text(EXPLAINED, "ex.mm"))
    s = buddy_state(**state)
    assert not c.check_invariant(name, s).holds
    return list(lines(explain_invariant(c, name, s)))


def test_an_explanation_carries_the_values_it_names() -> None:
    """Data, not text: the bindings and the sub-expressions' values, in order; the
    buddy picture points at the blocks whose pfn they name."""
    from mmcheck.checker.explain import fields_in
    from mmcheck.checker.subsystems.buddy import render_state

    c = CompiledSpec(check_text(EXPLAINED, "ex.mm"))
    s = buddy_state(free=frozenset({Block(0, 2), Block(2, 1)}))
    whys = explain_invariant(c, "apart", s)
    assert named(whys) == [Block(0, 2), Block(2, 1), range(0, 4), range(2, 4)]
    assert numbers(whys, "pfn") == {0, 2}  # the bindings: the blocks a and b
    assert fields_in(named(whys), "pfn") == {0, 2}
    picture = render_state(s, named(whys))
    assert [x for x in picture if x.endswith("<-")] == [
        "        0 .. 4       free      order 2  <-"]


BROKEN = frozenset({Block(0, 1), Block(3, 1), Block(8, 3)})


def test_explanation_names_the_binding_that_breaks_a_forall() -> None:
    assert explained("aligned_all", free=BROKEN) == [
        "for b = Block(pfn=3, order=1):",
        "  aligned(b.pfn, size(b)) is false: b.pfn = 3, size(b) = 2",
    ]


def test_explanation_names_the_failing_conjunct() -> None:
    assert explained("both", free=BROKEN, free_pages=12) == [
        "free_pages == 3 is false: free_pages = 12",
    ]


def test_explanation_gives_the_witness_of_a_not_exists() -> None:
    assert explained("no_big", free=BROKEN) == ["b.order > 1 holds for b = Block(pfn=8, order=3)"]


def test_explanation_of_an_implication_pair_and_a_def() -> None:
    overlapping = frozenset({Block(0, 2), Block(2, 1)})
    assert explained("apart", free=overlapping) == [
        "for a = Block(pfn=0, order=2), b = Block(pfn=2, order=1):",
        "  a.pfn < b.pfn holds, but",
        "  disjoint(span(a), span(b)) is false: span(a) = 0 .. 4, span(b) = 2 .. 4",
    ]
    assert explained("via_def", free=BROKEN) == [
        "for b = Block(pfn=8, order=3):",
        "  in small(b = Block(pfn=8, order=3)):",
        "    b.order <= 1 is false: b.order = 3",
    ]


def test_explanation_of_iff_and_let() -> None:
    assert explained("same", free_pages=3) == [
        "npages == 16 is true but free_pages == 16 is false",
        "free_pages == 16 is false: free_pages = 3",
    ]
    assert explained("counted", free=BROKEN) == [
        "with n = 3:",
        "n == 1 is false: n = 3",
    ]


def test_explanation_of_an_action_looks_before_the_step() -> None:
    c = CompiledSpec(check_text(ACTIONS, "actions.mm"))
    a = BuddyAllocator(16, 4)
    old, new, result, raised = step(a, "alloc", 2)
    act, fn = next((x, f) for x, f in c.actions["alloc"] if x.name == "wrong")
    assert not c.check_action(act, fn, old, new, (2,), result, raised).holds
    assert list(lines(explain_action(c, act, old, new, (2,), result, raised))) == [
        "free_pages == old(free_pages) is false: free_pages = 12, old(free_pages) = 16",
    ]


def test_format_value() -> None:
    assert format_value(None) == "none"
    assert format_value(True) == "true"
    assert format_value(range(2, 6)) == "2 .. 6"
    assert format_value(Block(4, 2)) == "Block(pfn=4, order=2)"
    assert format_value(frozenset({Block(4, 2), Block(0, 2)})) == (
        "{Block(pfn=0, order=2), Block(pfn=4, order=2)}"
    )
    assert format_value(list(range(10)), limit=3) == "{0, 1, 2, ... (10 in all)}"
