"""The Z3 engine end to end: seeded bugs found, decoded, and replayed on real code.

For each mutation of the symbolic buddy allocator (checker/symbolic/buddy.py
MUTATIONS), `bounded_check` with the standard buddy spec finds a violation
within depth 4 on 8 pages; the decoded trace, replayed with
`hypothesis_engine.replay` on the matching buggy example in its sandbox, breaks
a property there too, and does not on the reference model (the bug is the
mutation's, not the spec's).

Alloc may return any legal block in the encoding, but the examples hand out
the lowest page of the lowest free block of the smallest order that has one
(at least while each free list holds one block), as Linux's
`__rmqueue_smallest` + `expand` do. `LinuxChoice` pins the encoding to that
choice (a test-side constraint, nothing the engine needs), so a trace Z3 finds
is one the example makes step for step: the replay follows the trace's results
and fails on any divergence. Pinned so, every trace the solver may return
reproduces, whatever model it happens to pick.

Where a mutation is not quite the example's bug:
- double_alloc: the mutation leaves on its free list every block alloc takes,
  split or not; examples/buddy/buggy/double_alloc.py does so only for an
  exact fit (its split path is right). The search is restricted to exact fits
  for it (`exact_fit`); a trace that splits does not convict the example.
- wrong_buddy: the mutation also misplaces the halves of a split when alloc
  returns a block that is not the lowest one, and puts a wrongly merged block at
  p & ~2**j where the example keeps it at p; with Linux's choice both show the
  same first violation.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import z3
from mmcheck.checker.confirm import replay
from mmcheck.checker.evaluate import CompiledSpec
from mmcheck.checker.options import Options
from mmcheck.checker.sandbox.client import Submission
from mmcheck.checker.subsystems import buddy as driver
from mmcheck.checker.symbolic.base import SymState, SymStep
from mmcheck.checker.symbolic.buddy import MUTATIONS, SymbolicBuddy
from mmcheck.checker.trace import Trace
from mmcheck.checker.z3_engine import bounded_check, generate_traces
from mmcheck.spec.loader import CheckedSpec, library, load

ROOT = Path(__file__).resolve().parents[2]
NPAGES = 8
DEPTH = 4

# mutation -> the example that has the same bug
EXAMPLE_OF = {
    "no_coalesce": "no_coalesce",
    "wrong_buddy": "wrong_buddy",
    "lost_upper_half": "lost_upper_half",
    "double_alloc": "double_alloc",
}
# mutations whose example shows the bug only when alloc takes an exact fit
EXACT_FIT_ONLY = {"double_alloc"}


@pytest.fixture(scope="module")
def checked() -> list[CheckedSpec]:
    return [load(f) for f in library("buddy")]


class LinuxChoice:
    """The encoding, with alloc pinned to the lowest page of the lowest free block of
    the smallest order that has one (the examples' and Linux's choice); with
    `exact_fit`, alloc only ever takes a free block of exactly the asked order."""

    def __init__(self, inner: SymbolicBuddy, exact_fit: bool = False) -> None:
        self.inner = inner
        self.exact_fit = exact_fit
        self.vocabulary = inner.vocabulary

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def trans(self, s: SymState, t: SymStep, s2: SymState) -> z3.BoolRef:
        sb = self.inner
        v, sv = sb.vars_of(s), sb.step_vars(t)
        n, m = sb.npages, sb.max_order

        def free_of(x: int, j: int) -> z3.BoolRef:
            if x % (1 << j) or (x >> j) >= sb.width[j]:
                return z3.BoolVal(False)  # no block of order j can start at x
            return v.free[j][x >> j]

        has = [z3.Or([free_of(x, j) for x in range(n)]) for j in range(m)]
        picks = [
            z3.And(free_of(x, k), sv.alloc_pfn == x,
                   sv.alloc_order == k if self.exact_fit else sv.alloc_order <= k,
                   *[z3.Or(sv.alloc_order > j, z3.Not(has[j])) for j in range(k)],
                   *[z3.Not(free_of(y, k)) for y in range(x)])
            for x in range(n) for k in range(m)
        ]
        returned = z3.And(sv.is_alloc, z3.Not(sv.raised), z3.Not(sv.alloc_none))
        return z3.And(sb.trans(s, t, s2), z3.Implies(returned, z3.Or(picks)))


def find_bug(checked: list[CheckedSpec], mutation: str) -> tuple[Trace, str, int]:
    """BMC (no induction) of the mutated encoding: (trace, property, depth)."""
    system, setup, universe, bound = driver.symbolic_system(NPAGES, mutation)
    assert isinstance(system, SymbolicBuddy) and system.mutation == mutation
    pinned = LinuxChoice(system, exact_fit=mutation in EXACT_FIT_ONLY)
    result = bounded_check(checked, pinned, setup,
                           Options(depth=DEPTH, induction=False, budget=60.0), universe, bound)
    assert result.verdict == "violated", f"{mutation}: {result.summary}"
    # every broken property has its own counterexample; the run went on past the first
    names = [v.prop.name for v in result.violations]
    assert len(names) == len(set(names))
    for broken in result.violations:
        assert result.status[broken.prop.name] == f"violated at depth {broken.depth}"
    v = min(result.violations, key=lambda v: v.depth)
    assert len(v.trace.steps) == v.depth <= DEPTH
    assert dict(v.trace.setup) == setup
    return v.trace, v.prop.name, v.depth


@pytest.fixture
def example(request: pytest.FixtureRequest) -> Iterator[Any]:
    sub = Submission.open(ROOT / "examples" / "buddy" / "buggy" / f"{request.param}.py")
    try:
        yield sub
    finally:
        sub.close()


def on_submission(sub: Any) -> Any:
    def make(setup: Mapping[str, int]) -> driver.SubmissionSystem:
        if not sub.alive:
            sub.restart()
        return driver.SubmissionSystem(sub, setup)
    return make


def test_every_mutation_has_an_example() -> None:
    assert set(MUTATIONS) == set(EXAMPLE_OF)
    for name in EXAMPLE_OF.values():
        assert (ROOT / "examples" / "buddy" / "buggy" / f"{name}.py").is_file()


@pytest.mark.parametrize("mutation,example", sorted(EXAMPLE_OF.items()), indirect=["example"])
def test_z3_trace_of_a_mutation_convicts_its_example(
        mutation: str, example: Any, checked: list[CheckedSpec]) -> None:
    trace, prop, depth = find_bug(checked, mutation)
    specs = [CompiledSpec(c) for c in checked]
    # on the reference model, making the same choices, the trace is fine
    ref = replay(trace, specs, driver.ReferenceSystem, follow_results=True)
    assert ref.violation is None and ref.diverged is None, (ref.violation, ref.diverged)
    # on the example it breaks a property, with the example making the trace's choices
    got = replay(trace, specs, on_submission(example), follow_results=True)
    assert got.diverged is None, got.diverged
    assert got.violation is not None, (
        f"{mutation}: Z3 broke {prop} at depth {depth} with {trace.steps}; the example did not")
    assert got.violation.step <= depth - 1


def test_unmutated_encoding_is_proved_by_induction(checked: list[CheckedSpec]) -> None:
    system, setup, universe, bound = driver.symbolic_system(NPAGES)
    result = bounded_check(checked, system, setup, Options(depth=DEPTH, budget=60.0),
                           universe, bound)
    assert result.verdict == "proved", result.summary
    assert "induction" in result.summary and not result.violations
    assert not result.skipped, "every buddy property compiles to Z3"


def test_each_property_gets_its_own_verdict(checked: list[CheckedSpec]) -> None:
    """A mutant breaks some properties; the others are still checked to the depth,
    and each one's status says what was shown of it."""
    system, setup, universe, bound = driver.symbolic_system(NPAGES, "no_coalesce")
    result = bounded_check(checked, system, setup, Options(depth=3, induction=False,
                                                           budget=60.0), universe, bound)
    status = result.status
    assert status["coalesced"] == "violated at depth 2"
    assert status["no_overlap"] == status["full_cover"] == "holds to depth 3"
    assert status["free_accounting"] == "holds to depth 3"


def test_lemmas_and_counterexamples_to_induction(checked: list[CheckedSpec]) -> None:
    """alloc_fails_only_when_full is not inductive on its own: from a state with no
    block at all, alloc returns None though memory is empty. With the spec's
    invariants as lemmas (full_cover among them) it is, and the run names them;
    alone, the counterexample to induction is shown as states and a step."""
    system, setup, universe, bound = driver.symbolic_system(NPAGES)
    result = bounded_check(checked, system, setup, Options(depth=2, budget=60.0),
                           universe, bound)
    assert result.verdict == "proved"
    said = result.status["alloc_fails_only_when_full"]
    assert said.startswith("proved (1-induction, lemmas ") and "full_cover" in said, said
    assert result.status["valid_order"] == "proved (1-induction)"
    spec = checked[0]  # the spec with that action as its only property
    only = dataclasses.replace(spec, spec=dataclasses.replace(
        spec.spec, invariants=(),
        actions=tuple(p for p in spec.spec.actions if p.name == "alloc_fails_only_when_full")))
    result = bounded_check([only], system, setup, Options(depth=2, budget=60.0,
                                                          max_induction=1), universe, bound)
    said = result.status["alloc_fails_only_when_full"]
    assert said.startswith("holds to depth 2; not inductive: state 0: "), said
    assert "| step alloc(" in said and "| state 1: " in said


def test_without_induction_the_verdict_is_bounded(checked: list[CheckedSpec]) -> None:
    """BMC alone never claims more than it checked, and tells each depth it clears."""
    system, setup, universe, bound = driver.symbolic_system(4)
    cleared: list[tuple[int, int]] = []
    result = bounded_check(checked, system, setup, Options(depth=2, induction=False, budget=60.0),
                           universe, bound, on_depth=lambda d, _, live: cleared.append((d, live)))
    assert cleared == [(0, 10), (1, 16), (2, 16)]  # invariants only at depth 0
    assert result.verdict == "bounded" and result.depth_checked == 2
    assert "no violation up to depth 2" in result.summary


def test_an_unknown_says_which_limit_ended_it(checked: list[CheckedSpec]) -> None:
    """With a tiny rlimit and a generous time budget the solver gives up on work,
    not time, and the run says so, with the limit beside it and where it was."""
    system, setup, universe, bound = driver.symbolic_system(NPAGES)
    result = bounded_check(checked, system, setup,
                           Options(depth=3, budget=600.0, z3_rlimit=2_000), universe, bound)
    assert result.verdict == "unknown", result.summary
    assert "the solver's rlimit (2,000 units a query) ran out at depth " in result.summary
    assert "time" not in result.summary and "building" not in result.summary


def test_generated_traces_are_legal_on_the_reference(checked: list[CheckedSpec]) -> None:
    """What the engine replays on a submission: every trace of the reference encoding
    runs on the reference model with the same choices and breaks nothing."""
    system, setup, _, _ = driver.symbolic_system(6)
    traces = generate_traces(system, setup, depth=3, budget=20.0, limit=15)
    assert len(traces) == 15 and len({t.steps for t in traces}) == 15  # each one new
    specs = [CompiledSpec(c) for c in checked]
    for trace in traces:
        assert 1 <= len(trace.steps) <= 3
        r = replay(trace, specs, driver.ReferenceSystem, follow_results=True)
        assert r.violation is None and r.diverged is None, (trace, r.violation, r.diverged)


FAILURE_SPEC = """spec buddy
action refused_free_changes_nothing "t" after free(pfn, order):
    raised -> count(b in allocated) == old(count(b in allocated))
action order_checked_and_result_inside "t" after alloc(order) returns r:
    (order >= max_order -> raised) and (r != none -> r >= 0)
"""


def test_generated_traces_reach_failures_and_every_premise() -> None:
    """A property about failures (`raised -> ...`) says something only on a step that
    failed, and each implication of a conjunction only where its premise holds: the
    traces aimed at a submission reach both, beyond the round robin's limit, so such
    properties are not left vacuous under --engine z3."""
    from mmcheck.spec.loader import check_text

    system, setup, universe, bound = driver.symbolic_system(6)
    spec = check_text(FAILURE_SPEC, "failures.mm")
    traces = generate_traces(system, setup, depth=2, budget=60.0, specs=[spec],
                             universe=universe, exponent_bound=bound, limit=3)
    assert len(traces) > 3  # the round robin's 3, then the other premises
    last = [t.steps[-1] for t in traces]
    assert any(s.op == "free" and s.raised for s in last)
    assert any(s.op == "alloc" and s.args[0] >= setup["max_order"] and s.raised for s in last)
    # and the concrete evaluator agrees that both now say something
    specs = [CompiledSpec(spec)]
    live: set[str] = set()
    for trace in traces:
        r = replay(trace, specs, driver.ReferenceSystem, follow_results=True)
        assert r.violation is None
        live |= {name for name, st in r.stats.properties.items() if st.live}
    assert live == {"refused_free_changes_nothing", "order_checked_and_result_inside"}


def test_an_induction_split_covers_every_argument_value() -> None:
    """The cases an unknown induction query is split into (alloc of order 0, of order
    1, ...) cover every step, not only the declared domain: the last case is any other
    value, so a step outside the domain could not escape the split's proof."""
    from mmcheck.checker.z3_engine import argument_cases

    system, _, _, _ = driver.symbolic_system(4)
    t = system.fresh_step("t")
    cases = argument_cases(t, "alloc")
    order = t.args["alloc"]["order"]
    assert len(cases) == len(t.domains["alloc"]["order"]) + 1
    solver = z3.Solver()
    for v in (*t.domains["alloc"]["order"], 99, -7):  # each value falls in exactly one case
        hits = [c for c in cases if solver.check(order == v, *c) == z3.sat]
        assert len(hits) == 1, (v, hits)
    assert solver.check(z3.Not(z3.Or(*(z3.And(*c) if c else True for c in cases)))) == z3.unsat


def test_properties_the_default_size_leaves_out_are_checked_at_the_whole_size(
        mmcheck: Callable[..., Any]) -> None:
    """Slab's encoding models the white box (array caches, slab lists) only up to its
    declaration's symbolic_whole_pages: `mmcheck check --engine z3` proves the rest at
    the default size and the wb_* properties there, each status naming its size; the
    run exits 0 only because every property has its own proof."""
    got = mmcheck("check", "--engine", "z3", "spec/lib/slab.mm", "--format", "json",
                  "--progress", "none")
    assert got.code == 0, got.out[-2000:]
    report = got.json()["reports"][0]
    status = next(r for r in report["engines"] if r["engine"] == "z3")["property_status"]
    white = {n: s for n, s in status.items() if n.startswith("wb_")}
    assert len(white) == 9 and all(s.startswith("proved") and s.endswith("npages=2, debug=0")
                                   for s in white.values()), white
    assert all("npages=2" not in s for n, s in status.items() if n not in white)


def test_two_runs_together_say_the_weaker_verdict() -> None:
    from mmcheck.checker.z3_engine import Z3Result, _verdict_of

    r = Z3Result("proved", "", 3, status={"a": "proved (1-induction)", "b": "holds to depth 3",
                                          "c": "holds to depth 2; unknown beyond: x",
                                          "d": "violated at depth 1"})
    assert _verdict_of(r, {"a"}) == "proved"
    assert _verdict_of(r, {"a", "b"}) == "bounded"
    assert _verdict_of(r, {"a", "b", "c"}) == "unknown"
    assert _verdict_of(r, {"a", "d"}) == "violated"
