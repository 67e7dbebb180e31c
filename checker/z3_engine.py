"""The Z3 engine: bounded model checking and k-induction over a symbolic encoding.

Following Z3's own BMC examples, the transition system is plain functions
(`init`, `trans`, `well_formed`) over per-step copies of the state. For each
depth d the solver is asked for a trace of d steps from the initial state that
breaks some property at its last step (the earlier ones hold, so the trace is
the shortest). Induction then tries, for k = 1..depth, whether k consecutive
good steps from ANY well-formed state force the next one to be good; if so
(and BMC found nothing to depth k), the properties are proved for all depths.

Results say exactly what they are: "proved by k-induction", "no violation up
to depth d", or "unknown" (the solver's time ran out: never a silent pass).
Every violation is decoded into a Trace and replayed on the concrete model
before it is reported.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import z3
from mmcheck.checker import interrupt
from mmcheck.checker.confirm import confirm, replay
from mmcheck.checker.evaluate import CompiledSpec
from mmcheck.checker.options import Options
from mmcheck.checker.report import EngineRun, Report
from mmcheck.checker.symbolic.base import SymbolicSystem, SymState, SymStep
from mmcheck.checker.systems import System
from mmcheck.checker.trace import RunStats, Step, Trace, Violation
from mmcheck.checker.z3compile import Unsupported, Z3Compiler
from mmcheck.spec import ast
from mmcheck.spec.loader import CheckedSpec

if TYPE_CHECKING:
    from mmcheck.checker.subsystems.registry import Driver

# Fixed seeds: the same question gets the same answer and the same model.
_SOLVER_PARAMS = {"smt.random_seed": 0, "sat.random_seed": 0}
Z3_TIME_CAP = 600.0  # seconds: the most one Z3 run may take when no --budget is given


DEFAULT_RLIMIT = 50_000_000  # z3 resource units per query (about half a minute here)


@dataclass
class Z3Violation:
    trace: Trace
    prop: ast.Property
    spec: CheckedSpec
    depth: int


@dataclass
class Z3Result:
    verdict: str  # "violated", "proved", "bounded", "unknown"
    summary: str
    depth_checked: int
    violations: list[Z3Violation] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # properties Z3 could not compile
    induction_note: str = ""
    proved: list[str] = field(default_factory=list)  # proved by induction when not all were
    elapsed: float = 0.0
    timings: list[tuple[int, float]] = field(default_factory=list)  # (depth, seconds)


class _OutOfTime(Exception):
    """The budget ran out while formulas were being built (Python, not the solver)."""


class _Props:
    """The compiled properties of the specs at one position of the unrolling.

    Building formulas is Python work that the solver's timeout does not bound,
    so `at` checks the deadline between properties.
    """

    def __init__(
        self,
        specs: Sequence[CheckedSpec],
        system: SymbolicSystem,
        universe: range,
        exponent_bound: int,
    ) -> None:
        self.items: list[tuple[CheckedSpec, ast.Property, Z3Compiler]] = []
        self.skipped: list[str] = []
        self.deadline = float("inf")
        self.cleared = -1  # the deepest BMC depth found free of violations
        for c in specs:
            comp = Z3Compiler(c, universe, exponent_bound)
            for p in c.spec.properties:
                self.items.append((c, p, comp))

    def at(
        self, old: SymState | None, step: SymStep | None, state: SymState, skip: set[str]
    ) -> list[tuple[CheckedSpec, ast.Property, Any]]:
        """(spec, property, formula) for the invariants at `state` and the actions of `step`."""
        out = []
        for c, p, comp in self.items:
            if p.name in skip:
                continue
            if time.monotonic() > self.deadline:
                raise _OutOfTime
            try:
                if isinstance(p, ast.Invariant):
                    out.append((c, p, comp.invariant(p, state)))
                elif step is not None and old is not None:
                    out.append((c, p, comp.action(p, old, step, state)))
            except Unsupported as why:
                skip.add(p.name)
                self.skipped.append(f"{p.name}: {why}")
        return out


def fresh_context() -> None:
    """Start z3's default context afresh, so that one run's answers do not depend on
    what earlier runs in the same process created (term ids steer the solver)."""
    z3.z3._main_ctx = None  # z3.main_ctx() makes a new one on next use


def _rlimit(options: Any) -> int:
    """--z3-rlimit: None for the default, 0 for no limit."""
    return DEFAULT_RLIMIT if options.z3_rlimit is None else options.z3_rlimit


def _solver(timeout_s: float, rlimit: int = DEFAULT_RLIMIT) -> z3.Solver:
    """A solver whose every check is bounded by work (`rlimit`, deterministic: the same
    query gives the same answer on any machine) and, from outside, by time."""
    s = z3.Solver()
    s.set(**{"timeout": max(1, int(timeout_s * 1000))})
    s.set(rlimit=rlimit)
    for k, v in _SOLVER_PARAMS.items():
        try:
            z3.set_param(k, v)
        except z3.Z3Exception:
            pass
    return s


def _decode(
    system: SymbolicSystem,
    model: z3.ModelRef,
    steps: Sequence[SymStep],
    subsystem: str,
    setup: Mapping[str, int],
) -> Trace:
    out = []
    for t in steps:
        cs = system.decode_step(model, t)
        out.append(Step(cs.op, tuple(cs.args), cs.result, cs.raised))
    return Trace(subsystem, dict(setup), tuple(out))


def bounded_check(
    specs: Sequence[CheckedSpec],
    system: SymbolicSystem,
    setup: Mapping[str, int],
    options: Options,
    universe: range,
    exponent_bound: int = 24,
    skip: set[str] | None = None,
) -> Z3Result:
    """Prove the properties by k-induction, or look for a violation up to options.depth.

    Induction comes first: when the properties are k-inductive for a small k,
    BMC only has to clear the base case (depth k-1) for a proof of every depth.
    Otherwise BMC runs to options.depth and the result is what it found.
    """
    start = time.monotonic()
    deadline = start + (Z3_TIME_CAP if options.budget is None else options.budget)
    skip = set() if skip is None else skip
    props = _Props(specs, system, universe, exponent_bound)
    props.deadline = deadline
    try:
        return _bounded_check(system, setup, options, skip, props, deadline, start)
    except _OutOfTime:
        result = Z3Result("bounded", "", props.cleared)
        return _unknown(result, props.cleared + 1, start, props,
                        "the time budget ran out while building formulas")


def _bounded_check(system: SymbolicSystem, setup: Mapping[str, int], options: Options,
                   skip: set[str], props: _Props, deadline: float, start: float) -> Z3Result:
    note = "induction not attempted"
    # The k-induction loop: the base case to depth k-1 (BMC, which also finds
    # shallow bugs first), then the step case for k; deeper BMC only if no k works.
    partial: _Step | None = None
    if options.induction:
        for k in range(1, min(options.depth, options.max_induction) + 1):
            base = _bmc(system, setup, k - 1, props, skip, deadline, start, _rlimit(options))
            if base.verdict != "bounded":
                base.induction_note = note
                return base
            step = _induction_step(system, k, skip, deadline, props, _rlimit(options))
            note = step.note()
            if step.complete:
                base.verdict = "proved"
                base.induction_note = note
                base.summary = (
                    f"proved by {k}-induction: holds at every depth (memory of {_size(setup)})"
                )
                return base
            if not step.failed and step.unknown:
                partial = step  # a larger k will not be easier
                break
            if time.monotonic() > deadline:
                break
    result = _bmc(system, setup, options.depth, props, skip, deadline, start, _rlimit(options))
    result.induction_note = note
    if partial is not None and result.verdict != "violated":
        # The base case to depth k-1 passed before the step case ran: these are proved.
        result.proved = list(partial.proved)
        rest = ", ".join(partial.unknown)
        held = (
            f"hold up to depth {result.depth_checked}"
            if result.depth_checked >= partial.k - 1
            else f"hold up to depth {partial.k - 1}"
        )
        result.summary = (
            f"{len(partial.proved)} of {len(partial.proved) + len(partial.unknown)} "
            f"properties proved by {partial.k}-induction; {rest}: unknown (the solver "
            f"gave up: its rlimit or time ran out), they {held} (memory of {_size(setup)})"
        )
        result.depth_checked = max(result.depth_checked, partial.k - 1)
    return result


def _bmc(
    system: SymbolicSystem,
    setup: Mapping[str, int],
    depth: int,
    props: _Props,
    skip: set[str],
    deadline: float,
    start: float,
    rlimit: int = DEFAULT_RLIMIT,
) -> Z3Result:
    """Bounded model checking from the initial state to `depth` steps."""
    subsystem = system.vocabulary.subsystem
    solver = _solver(max(deadline - time.monotonic(), 0.001), rlimit)
    states = [system.fresh_state("s0")]
    steps: list[SymStep] = []
    solver.add(system.init(states[0]))
    result = Z3Result("bounded", "", -1)
    for d in range(depth + 1):
        t0 = time.monotonic()
        if d > 0:
            t = system.fresh_step(f"t{d - 1}")
            s2 = system.fresh_state(f"s{d}")
            solver.add(system.trans(states[-1], t, s2))
            steps.append(t)
            states.append(s2)
        here = props.at(
            states[-2] if d > 0 else None, steps[-1] if d > 0 else None, states[-1], skip
        )
        if not here:
            if d == 0:
                continue  # only action properties: they speak from the first step on
            break
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return _unknown(result, d, start, props, "the time budget ran out")
        solver.set("timeout", max(1, int(remaining * 1000)))
        solver.push()
        solver.add(z3.Or(*[z3.Not(f) for _, _, f in here]))
        answer = solver.check()
        if answer == z3.sat:
            model = solver.model()
            trace = _decode(system, model, steps, subsystem, setup)
            broken = [
                (c, p) for c, p, f in here if z3.is_false(model.eval(f, model_completion=True))
            ]
            c, p = broken[0]
            solver.pop()
            result.violations.append(Z3Violation(trace, p, c, d))
            result.verdict = "violated"
            result.depth_checked = d
            result.summary = f"violation of {p.name} at depth {d}"
            result.skipped = props.skipped
            result.elapsed = time.monotonic() - start
            return result
        solver.pop()
        if answer == z3.unknown:
            return _unknown(result, d, start, props, solver.reason_unknown())
        # Every property holds at depth d: deeper queries look for the first violation only.
        for _, _, f in here:
            solver.add(f)
        result.depth_checked = d
        props.cleared = max(props.cleared, d)
        result.timings.append((d, time.monotonic() - t0))
    result.skipped = props.skipped
    result.summary = f"no violation up to depth {result.depth_checked} (memory of {_size(setup)})"
    result.elapsed = time.monotonic() - start
    return result


def _size(setup: Mapping[str, int]) -> str:
    return ", ".join(f"{k}={v}" for k, v in setup.items())


def _unknown(result: Z3Result, d: int, start: float, props: _Props, why: str) -> Z3Result:
    result.verdict = "unknown"
    so_far = (
        f"no violation up to depth {result.depth_checked}"
        if result.depth_checked >= 0
        else "nothing was decided"
    )
    result.summary = f"unknown at depth {d}: {why} ({so_far})"
    result.skipped = props.skipped
    result.elapsed = time.monotonic() - start
    return result


@dataclass
class _Step:
    """The step case of k-induction, property by property."""

    k: int
    proved: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # a counterexample to induction exists
    unknown: list[str] = field(default_factory=list)  # the solver gave up (time)

    @property
    def complete(self) -> bool:
        return not self.failed and not self.unknown

    def note(self) -> str:
        if self.complete:
            return f"the properties are {self.k}-inductive"
        parts = []
        if self.failed:
            parts.append(
                f"not {self.k}-inductive: from some unreachable state that keeps every "
                f"property for {self.k} step(s), {', '.join(self.failed[:3])} can break "
                f"(a stronger invariant would be needed)"
            )
        if self.unknown:
            parts.append(f"induction gave up (rlimit or time) on {', '.join(self.unknown)}")
        if self.proved:
            parts.append(f"{len(self.proved)} properties are {self.k}-inductive")
        return "; ".join(parts)


def _induction_step(
    system: SymbolicSystem,
    k: int,
    skip: set[str],
    deadline: float,
    props: _Props,
    rlimit: int = DEFAULT_RLIMIT,
) -> _Step:
    """From any well-formed state, do k steps on which every property holds force each
    property at step k+1? Each property is asked about separately, with its share of
    the remaining time (many small queries are far easier than one large one)."""
    result = _Step(k)
    if deadline - time.monotonic() <= 0:
        return result
    solver = _solver(deadline - time.monotonic(), rlimit)
    states = [system.fresh_state(f"i{k}s0")]
    solver.add(system.well_formed(states[0]))
    steps: list[SymStep] = []
    for i in range(k):
        here = props.at(
            states[-2] if i > 0 else None, steps[-1] if i > 0 else None, states[-1], skip
        )
        for _, _, f in here:
            solver.add(f)
        t = system.fresh_step(f"i{k}t{i}")
        s2 = system.fresh_state(f"i{k}s{i + 1}")
        solver.add(system.well_formed(s2))
        solver.add(system.trans(states[-1], t, s2))
        steps.append(t)
        states.append(s2)
    last = props.at(states[-2], steps[-1], states[-1], skip)
    for n, (_, p, f) in enumerate(last):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            result.unknown.append(p.name)
            continue
        share = remaining / (len(last) - n)
        solver.set("timeout", max(1, int(share * 1000)))
        solver.push()
        solver.add(z3.Not(f))
        answer = solver.check()
        solver.pop()
        if answer == z3.unsat:
            result.proved.append(p.name)
        elif answer == z3.sat:
            result.failed.append(p.name)
            break  # not k-inductive: a larger k (or BMC) decides
        else:
            result.unknown.append(p.name)
    return result


# ------------------------------------------------------------------- for reports


def run_z3_for_report(
    report: Report,
    specs: list[CompiledSpec],
    driver: Driver,
    make_system: Callable[[Mapping[str, int]], System],
    options: Options,
    target_name: str,
    is_submission: bool,
) -> None:
    """Run the Z3 engine for `mmcheck check` and add what it found to the report."""
    from mmcheck.checker.run import not_started

    fresh_context()
    symbolic = driver.symbolic_system
    if symbolic is None:
        report.runs.append(
            EngineRun("z3", "skipped", f"no symbolic encoding of {driver.name} yet")
        )
        return
    pages = options.z3_pages or (12 if is_submission else 8)
    system, setup, universe, exponent_bound = symbolic(pages)
    checked = [c.checked for c in specs]
    # Z3's own limit is work (--depth, the rlimit); wall time only caps it from outside.
    budget = min(interrupt.remaining(), Z3_TIME_CAP)
    if budget <= 0:
        report.runs.append(not_started("z3"))
        return
    if is_submission:
        _z3_for_submission(
            report,
            specs,
            driver,
            make_system,
            options,
            target_name,
            system,
            setup,
            universe,
            exponent_bound,
            budget,
        )
        return
    skip: set[str] = set()
    result = bounded_check(
        checked,
        system,
        setup,
        dataclasses.replace(options, induction=True, budget=budget),
        universe,
        exponent_bound,
        skip,
    )
    details = []
    for v in result.violations:
        with interrupt.grace(interrupt.CONFIRM_GRACE):
            cx = confirm(
                "z3",
                v.trace,
                _violation_of(v),
                specs,
                driver.ReferenceSystem,
                driver,
                options,
                target_name,
                follow_results=True,
            )
        if not cx.confirmed:
            cx.note = (
                "Z3 found this on the symbolic encoding but the concrete model does not show it: "
                "the encoding and the model disagree (a bug in mmcheck). " + cx.note
            ).strip()
        report.counterexamples.append(cx)
    if result.induction_note:
        details.append(result.induction_note)
    details.extend(f"skipped {s}" for s in result.skipped)
    details.append("time per depth: " + ", ".join(f"{d}:{t:.1f}s" for d, t in result.timings))
    run = EngineRun("z3", result.verdict, result.summary, None, result.elapsed, None, details)
    run.property_status = _property_status(checked, result)
    report.runs.append(run)


def _property_status(checked: Sequence[CheckedSpec], result: Z3Result) -> dict[str, str]:
    """What the Z3 run showed about each property, in a few words."""
    k = (
        result.induction_note.split("-inductive")[0].rsplit(" ", 1)[-1]
        if "inductive" in result.induction_note
        else "?"
    )
    broken = {v.prop.name for v in result.violations}
    skipped = {s.split(":", 1)[0] for s in result.skipped}
    out: dict[str, str] = {}
    for c in checked:
        for p in c.spec.properties:
            if p.name in broken:
                out[p.name] = f"violated at depth {result.depth_checked}"
            elif p.name in skipped:
                out[p.name] = "not compiled to z3"
            elif result.verdict == "proved" or p.name in result.proved:
                out[p.name] = f"proved ({k}-induction)"
            elif result.verdict == "unknown":
                out[p.name] = (
                    f"unknown (holds to depth {result.depth_checked})"
                    if result.depth_checked >= 0
                    else "unknown"
                )
            elif result.verdict == "violated":
                out[p.name] = f"holds to depth {max(result.depth_checked - 1, 0)}"
            else:
                out[p.name] = f"holds to depth {result.depth_checked}"
    return out


def _violation_of(v: Z3Violation) -> Violation:
    p = v.prop
    kind = "invariant" if isinstance(p, ast.Invariant) else "action"
    return Violation(kind, p.name, p.doc, len(v.trace.steps) - 1, (), v.spec.path, p.span.line)


def _z3_for_submission(
    report: Report,
    specs: list[CompiledSpec],
    driver: Driver,
    make_system: Callable[[Mapping[str, int]], System],
    options: Options,
    target_name: str,
    system: SymbolicSystem,
    setup: Mapping[str, int],
    universe: range,
    exponent_bound: int,
    budget: float,
) -> None:
    """Z3 as a test generator: solver-chosen traces that make each action property's
    premise hold (non-vacuous cases), replayed on the submission. The traces are
    bounded by work (at most 200, each query by the rlimit); time only stops them
    from outside, and then the run says so."""
    start = time.monotonic()
    traces = generate_traces(
        system, setup, options.depth, budget, [c.checked for c in specs], universe,
        exponent_bound, rlimit=_rlimit(options),
    )
    details = [
        f"{len(traces)} solver-generated traces of 1 to {options.depth} steps "
        f"({_size(setup)}), each ending in a step on which an action property says something"
    ]
    stats = RunStats()
    found = 0
    seen: set[str] = set()
    for trace in traces:
        if interrupt.requested():
            break
        r = replay(trace, specs, make_system, follow_results=False, skip=frozenset(seen))
        stats.merge(r.stats)
        if r.violation is not None and r.violation.property not in seen:
            seen.add(r.violation.property)
            found += 1
            with interrupt.grace(interrupt.CONFIRM_GRACE):
                cx = confirm(
                    "z3",
                    trace,
                    r.violation,
                    specs,
                    make_system,
                    driver,
                    options,
                    target_name,
                    skip=frozenset(seen - {r.violation.property}),
                )
            report.counterexamples.append(cx)
    report.stats.merge(stats)
    stopped = interrupt.reason()
    if stopped is not None:
        verdict = "interrupted" if stopped == interrupt.INTERRUPTED else "budget"
    else:
        verdict = "violated" if found else "bounded"
    summary = (
        f"{found} violation(s) in {len(traces)} solver-generated traces"
        if found
        else f"no violation in {len(traces)} solver-generated traces up to depth {options.depth}"
    )
    if stopped is not None:
        summary = f"stopped ({stopped}): {summary}"
    report.runs.append(
        EngineRun("z3", verdict, summary, None, time.monotonic() - start, stats, details)
    )


def generate_traces(
    system: SymbolicSystem,
    setup: Mapping[str, int],
    depth: int,
    budget: float,
    specs: Sequence[CheckedSpec] = (),
    universe: range | None = None,
    exponent_bound: int = 24,
    limit: int = 200,
    rlimit: int = DEFAULT_RLIMIT,
) -> list[Trace]:
    """Traces of the reference encoding aimed at each action property's premise.

    For every length 1..depth and every action property, the solver is asked
    for a trace whose steps all succeed and whose last step runs that
    property's operation with its premise true (a step on which the property
    says something); each trace found is blocked, so the next is new. Round
    robin over the goals until the limit is reached or every goal is exhausted;
    `budget` seconds only stop it from outside.
    """
    deadline = time.monotonic() + budget
    subsystem = system.vocabulary.subsystem
    compilers = [(c, Z3Compiler(c, universe or range(0, 257), exponent_bound)) for c in specs]
    goals_by_depth = []
    solvers = []
    for d in range(1, depth + 1):
        solver = _solver(budget, rlimit)
        states = [system.fresh_state(f"g{d}s0")]
        steps: list[SymStep] = []
        solver.add(system.init(states[0]))
        for i in range(d):
            t = system.fresh_step(f"g{d}t{i}")
            s2 = system.fresh_state(f"g{d}s{i + 1}")
            solver.add(system.trans(states[-1], t, s2))
            if i < d - 1:
                solver.add(z3.Not(t.raised))
            steps.append(t)
            states.append(s2)
        goals: list[Any] = [z3.BoolVal(True)]
        for c, comp in compilers:
            for act in c.spec.actions:
                try:
                    goals.append(comp.action_premise(act, states[-2], steps[-1], states[-1]))
                except Unsupported:
                    continue
        goals_by_depth.append((steps, goals))
        solvers.append(solver)
    traces: list[Trace] = []
    exhausted: set[tuple[int, int]] = set()
    while len(traces) < limit and time.monotonic() < deadline:
        progress = False
        for d, ((steps, goals), solver) in enumerate(zip(goals_by_depth, solvers)):
            for g, goal in enumerate(goals):
                if (d, g) in exhausted or len(traces) >= limit or time.monotonic() >= deadline:
                    continue
                solver.set("timeout", max(1, int((deadline - time.monotonic()) * 1000)))
                solver.push()
                solver.add(goal)
                answer = solver.check()
                model = solver.model() if answer == z3.sat else None
                solver.pop()
                if model is None:
                    exhausted.add((d, g))
                    continue
                progress = True
                traces.append(_decode(system, model, steps, subsystem, setup))
                # Block this sequence of operations and arguments at this length.
                same = [
                    v == model.eval(v, model_completion=True) for t in steps for v in t.variables
                ]
                solver.add(z3.Not(z3.And(*same)))
        if not progress:
            break
    return traces
