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
import functools
import itertools
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import z3
from mmcheck.checker import interrupt
from mmcheck.checker.confirm import confirm, replay
from mmcheck.checker.decode import setup_text
from mmcheck.checker.evaluate import CompiledSpec
from mmcheck.checker.forked import Failed, run_forked
from mmcheck.checker.options import Options
from mmcheck.checker.progress import ProgressEvent
from mmcheck.checker.report import TIMING_DETAIL, EngineRun, Report
from mmcheck.checker.symbolic.base import SymbolicSystem, SymState, SymStep
from mmcheck.checker.systems import System
from mmcheck.checker.trace import RunStats, Step, Trace, Violation
from mmcheck.checker.z3collections import clear_memo
from mmcheck.checker.z3compile import MAX_CASES, MAX_SPLIT, Unsupported, Z3Compiler
from mmcheck.spec import ast
from mmcheck.spec.analysis import says_raised
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
    found_s: float = 0.0  # seconds from the start of the BMC run to this counterexample


@dataclass
class Z3Result:
    verdict: str  # "violated", "proved", "bounded", "unknown"
    summary: str
    depth_checked: int
    violations: list[Z3Violation] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # properties Z3 could not compile
    induction_note: str = ""
    proved: list[str] = field(default_factory=list)  # proved by induction
    elapsed: float = 0.0
    timings: list[tuple[int, float]] = field(default_factory=list)  # (depth, seconds)
    status: dict[str, str] = field(default_factory=dict)  # property -> its verdict in words
    lemmas: dict[str, list[str]] = field(default_factory=dict)  # proved -> lemmas it used
    proved_by: dict[str, int] = field(default_factory=dict)  # proved -> its k
    cti: dict[str, str] = field(default_factory=dict)  # not inductive -> a CTI in words
    gave_up: dict[str, str] = field(default_factory=dict)  # induction unknown -> what ended it


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
        self.phase = "depth 0"  # what the formulas being built are for, in words
        self._built: dict[tuple[int, int, int], tuple[tuple[Any, ...], list[Any]]] = {}
        for c in specs:
            comp = Z3Compiler(c, universe, exponent_bound)
            for p in c.spec.properties:
                self.items.append((c, p, comp))

    def names(self) -> list[str]:
        """Every property's name, in spec order."""
        return [p.name for _, p, _ in self.items]

    def at(
        self, old: SymState | None, step: SymStep | None, state: SymState, skip: set[str]
    ) -> list[tuple[CheckedSpec, ast.Property, Any]]:
        """(spec, property, formula) for the invariants at `state` and the actions of
        `step`; built once per position (BMC's first state is also the first state of
        the 1-induction step)."""
        key = (id(old), id(step), id(state))  # the entry keeps the three alive
        got = self._built.get(key)
        if got is None or any(p.name in skip for _, p, _ in got[1]):
            got = ((old, step, state), self._build(old, step, state, skip))
            self._built[key] = got
        return got[1]

    def _build(
        self, old: SymState | None, step: SymStep | None, state: SymState, skip: set[str]
    ) -> list[tuple[CheckedSpec, ast.Property, Any]]:
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
    clear_memo()  # its answers are terms of the old context
    z3.z3._main_ctx = None  # z3.main_ctx() makes a new one on next use


def _rlimit(options: Any) -> int:
    """--z3-rlimit: None for the default, 0 for no limit."""
    return DEFAULT_RLIMIT if options.z3_rlimit is None else options.z3_rlimit


def _solver(timeout_s: float, rlimit: int = DEFAULT_RLIMIT) -> z3.Solver:
    """A solver whose every check is bounded by work (`rlimit`, deterministic: the same
    query gives the same answer on any machine) and, from outside, by time. The
    default solver: measured against z3's finite-domain solver (QF_FD) on the buddy
    encoding's induction steps with lemma assumptions, it answers a run of queries
    on one solver two to three times faster (docs/benchmarks.md)."""
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


DepthSink = Callable[[int, float, int], None]  # (depth cleared, seconds, properties live)


def bounded_check(
    specs: Sequence[CheckedSpec],
    system: SymbolicSystem,
    setup: Mapping[str, int],
    options: Options,
    universe: range,
    exponent_bound: int = 24,
    skip: set[str] | None = None,
    on_depth: DepthSink | None = None,
) -> Z3Result:
    """Each property proved by k-induction (with the spec's other properties as
    lemmas where it needs them), violated at a depth, or cleared to a depth.

    One incremental BMC unrolling serves every k's base case and the final run to
    options.depth; a violation of one property does not stop the others. The result's
    `status` holds each property's own verdict in words.
    """
    start = time.monotonic()
    budget = Z3_TIME_CAP if options.budget is None else options.budget
    deadline = start + budget
    skip = set() if skip is None else skip
    props = _Props(specs, system, universe, exponent_bound)
    props.deadline = deadline
    bmc = _Bmc(system, setup, props, skip, deadline, _rlimit(options), on_depth)
    bmc.budget = budget
    result = Z3Result("bounded", "", -1)
    try:
        _run(system, options, props, skip, bmc, result, deadline)
    except _OutOfTime:
        bmc.unknown = bmc.unknown or (f"the time budget ({budget:g} s) ran out while "
                                      f"building the formulas of {props.phase} (Python "
                                      "work, before the solver was asked)")
    return _finish(result, bmc, props, setup, start)


def _run(system: SymbolicSystem, options: Options, props: _Props, skip: set[str], bmc: _Bmc,
         result: Z3Result, deadline: float) -> None:
    """k-induction for k = 1.., each after its base case; then BMC for the rest."""
    notes: list[str] = []
    if options.induction:
        for k in range(1, min(options.depth, options.max_induction) + 1):
            bmc.extend_to(k - 1)
            if bmc.unknown:
                break
            todo = [n for n in props.names() if n not in skip and n not in bmc.violated
                    and n not in result.lemmas]
            if not todo:
                break
            step = _induction_step(system, k, todo, dict(result.lemmas), props, skip,
                                   deadline, bmc.rlimit, bmc.states[0])
            for name, lemmas in step.lemmas.items():
                result.lemmas[name] = lemmas
                result.proved_by[name] = k
            result.cti.update(step.cti)
            result.gave_up.update({n: gave_up(k, why, bmc.rlimit, bmc.budget)
                                   for n, why in step.why.items()})
            notes.append(step.note())
            if time.monotonic() > deadline or not step.failed and not step.unknown:
                break
    unproved = {n for n in props.names() if n not in result.lemmas}
    if unproved - skip - set(bmc.violated) and not bmc.unknown:
        bmc.only = unproved
        bmc.extend_to(options.depth)
    result.induction_note = "; ".join(notes) if notes else "induction not attempted"


class _Bmc:
    """Incremental bounded model checking from the initial state.

    At each depth d the solver is asked whether some live property fails at d (all
    of them held before: each one's counterexample is a shortest one); a property
    found broken leaves the live set and the same depth is asked again for the
    others. What holds at d is then added as a fact for deeper queries (sound: it
    holds on every trace).
    """

    def __init__(self, system: SymbolicSystem, setup: Mapping[str, int], props: _Props,
                 skip: set[str], deadline: float, rlimit: int,
                 on_depth: DepthSink | None) -> None:
        self.system, self.setup, self.props, self.skip = system, setup, props, skip
        self.deadline, self.rlimit, self.on_depth = deadline, rlimit, on_depth
        self.solver = _solver(max(deadline - time.monotonic(), 0.001), rlimit)
        self.states = [system.fresh_state("s0")]
        self.steps: list[SymStep] = []
        self.solver.add(system.init(self.states[0]))
        self.cleared = -1
        self.violated: dict[str, Z3Violation] = {}
        self.unknown = ""  # why the solver gave up, at depth cleared + 1
        self.only: set[str] | None = None  # past induction: the properties still to check
        self.timings: list[tuple[int, float]] = []
        self.start = time.monotonic()
        self.budget = Z3_TIME_CAP  # seconds: the whole run's wall budget, for the wording

    def extend_to(self, depth: int) -> None:
        """Clear depths cleared+1 .. depth (or stop at a depth the solver gives up on)."""
        while self.cleared < depth and not self.unknown:
            d = self.cleared + 1
            t0 = time.monotonic()
            self.props.phase = f"BMC depth {d}"
            if d > 0:
                t = self.system.fresh_step(f"t{d - 1}")
                s2 = self.system.fresh_state(f"s{d}")
                self.solver.add(self.system.trans(self.states[-1], t, s2))
                self.steps.append(t)
                self.states.append(s2)
            here = self.props.at(self.states[-2] if d else None, self.steps[-1] if d else None,
                                 self.states[-1], self.skip)
            live = [(c, p, f) for c, p, f in here if p.name not in self.violated
                    and (self.only is None or p.name in self.only)]
            self._check_depth(d, live)
            if self.unknown:
                return
            for _, p, f in live:  # every property that held at d is a fact from now on
                if p.name not in self.violated:
                    self.solver.add(f)
            self.cleared = d
            self.props.cleared = max(self.props.cleared, d)
            self.timings.append((d, time.monotonic() - t0))
            if self.on_depth is not None:
                self.on_depth(d, time.monotonic() - t0, len(live))

    def _check_depth(self, d: int, live: list[tuple[CheckedSpec, ast.Property, Any]]) -> None:
        """Find every live property broken at depth d, one counterexample each: first
        all of them in one query on the incremental solver (the full rlimit, so it
        answers as it always did); where that gives up on work, each on its own
        (`_check_each`)."""
        while live:
            remaining = self.deadline - time.monotonic()
            if remaining <= 0:
                self.unknown = (f"the time budget ({self.budget:g} s) ran out before the "
                                f"solver was asked at depth {d}")
                return
            self.solver.set("timeout", max(1, int(remaining * 1000)))
            self.solver.push()
            self.solver.add(z3.Or(*[z3.Not(f) for _, _, f in live]))
            started = time.monotonic()
            answer = self.solver.check()
            if answer != z3.sat:
                self.solver.pop()
                why = _why(answer, started, remaining)
                if why == "rlimit":
                    self._check_each(d, live)
                elif why:
                    self.unknown = solver_gave_up(f"at depth {d}", why, self.rlimit,
                                                  self.budget)
                return
            model = self.solver.model()
            broken = [(c, p) for c, p, f in live
                      if z3.is_false(model.eval(f, model_completion=True))]
            self._violated(d, model, broken[:1] or [(live[0][0], live[0][1])])
            self.solver.pop()
            gone = set(self.violated)
            live = [x for x in live if x[1].name not in gone]

    def _check_each(self, d: int, live: list[tuple[CheckedSpec, ast.Property, Any]]) -> None:
        """Each live property at depth d in a query of its own, on a fresh solver that
        preprocesses the whole unrolling (an incremental one does not) under the full
        rlimit: many small queries are far easier than one large one (at 64 pages of
        buddy, depth 3 and beyond; docs/benchmarks.md)."""
        for c, p, f in live:
            remaining = self.deadline - time.monotonic()
            if remaining <= 0:
                self.unknown = (f"the time budget ({self.budget:g} s) ran out before the "
                                f"solver was asked at depth {d} ({p.name})")
                return
            fresh = _solver(remaining, self.rlimit)
            fresh.add(*self.solver.assertions(), z3.Not(f))
            started = time.monotonic()
            answer = fresh.check()
            if answer == z3.sat:
                self._violated(d, fresh.model(), [(c, p)])
            elif answer != z3.unsat:
                self.unknown = solver_gave_up(f"at depth {d} ({p.name})",
                                              _why(answer, started, remaining),
                                              self.rlimit, self.budget)
                return

    def _violated(self, d: int, model: z3.ModelRef,
                  broken: list[tuple[CheckedSpec, ast.Property]]) -> None:
        """The trace of `model` to depth d is each broken property's counterexample."""
        trace = _decode(self.system, model, self.steps, self.system.vocabulary.subsystem,
                        self.setup)
        for c, p in broken:
            self.violated[p.name] = Z3Violation(trace, p, c, d, time.monotonic() - self.start)


def _finish(result: Z3Result, bmc: _Bmc, props: _Props, setup: Mapping[str, int],
            start: float) -> Z3Result:
    """Each property's own verdict, the run's verdict and summary."""
    result.violations = list(bmc.violated.values())
    result.depth_checked = bmc.cleared
    result.timings = bmc.timings
    result.skipped = props.skipped
    result.elapsed = time.monotonic() - start
    result.proved = [n for n in props.names() if n in result.lemmas]
    skipped = {s.split(":", 1)[0] for s in props.skipped}
    for name in props.names():
        result.status[name] = _status_of(name, result, bmc, skipped)
    names = [n for n in props.names() if n not in skipped]
    size = _size(bmc.system, setup)
    if result.violations:
        result.verdict = "violated"
        v = result.violations[0]
        result.summary = (f"violation of {v.prop.name} at depth {v.depth}"
                          + (f" ({len(result.violations)} properties broken)"
                             if len(result.violations) > 1 else ""))
    elif names and all(n in result.lemmas for n in names):
        result.verdict = "proved"
        k = max(result.proved_by.values())
        result.summary = f"proved by {k}-induction: holds at every depth (memory of {size})"
    elif bmc.unknown:
        result.verdict = "unknown"
        so_far = (f"no violation up to depth {bmc.cleared}" if bmc.cleared >= 0
                  else "nothing was decided")
        proved = f"; {len(result.proved)} proved by induction" if result.proved else ""
        result.summary = f"unknown at depth {bmc.cleared + 1}: {bmc.unknown} ({so_far}{proved})"
    else:
        result.verdict = "bounded"
        proved = (f"{len(result.proved)} of {len(names)} properties proved by induction; "
                  if result.proved else "")
        result.summary = f"{proved}no violation up to depth {bmc.cleared} (memory of {size})"
    return result


def solver_gave_up(where: str, why: str, rlimit: int, budget: float) -> str:
    """What ended a solver query that came back unknown, in words: its rlimit (work,
    the same on any machine) or the wall budget (a safety limit: load decides)."""
    limit = f"{rlimit:,} units a query" if rlimit else "none"
    if why == "rlimit":
        return f"the solver's rlimit ({limit}) ran out {where}"
    return (f"the solver's time ran out {where} (the {budget:g} s budget; its rlimit, "
            f"{limit}, was not reached)")


def gave_up(k: int, why: str, rlimit: int, budget: float) -> str:
    """Why the k-induction step gave up on a property, in words."""
    return solver_gave_up(f"in the {k}-induction step", why, rlimit, budget)


def _status_of(name: str, result: Z3Result, bmc: _Bmc, skipped: set[str]) -> str:
    """One property's verdict in words (read by checker/outcome.py)."""
    if name in bmc.violated:
        return f"violated at depth {bmc.violated[name].depth}"
    if name in skipped:
        return "not compiled to z3"
    if name in result.lemmas:
        k = result.proved_by[name]
        lemmas = result.lemmas[name]
        with_ = f", lemmas {', '.join(lemmas)}" if lemmas else ""
        return f"proved ({k}-induction{with_})"
    why = result.cti.get(name)
    if why is None and name in result.gave_up:
        why = result.gave_up[name]
        held = f"holds to depth {bmc.cleared}; " if bmc.cleared >= 0 else ""
        return f"{held}unknown beyond: {why}" + (f"; then {bmc.unknown}" if bmc.unknown else "")
    if bmc.unknown:
        held = f"holds to depth {bmc.cleared}; " if bmc.cleared >= 0 else ""
        return f"unknown: {held}{bmc.unknown}" if not held else \
            f"{held}unknown beyond: {bmc.unknown}"
    return f"holds to depth {bmc.cleared}" + (f"; not inductive: {why}" if why else "")


def _size(system: SymbolicSystem, setup: Mapping[str, int]) -> str:
    """The symbolic model's setup as reports show a setup (addresses in hex)."""
    return setup_text(system.vocabulary.subsystem, dict(setup))


@dataclass
class _Step:
    """The step case of k-induction: which properties it proved, with which lemmas."""

    k: int
    lemmas: dict[str, list[str]] = field(default_factory=dict)  # proved -> lemmas used
    failed: list[str] = field(default_factory=list)  # a counterexample to induction exists
    unknown: list[str] = field(default_factory=list)  # the solver gave up (rlimit, time)
    why: dict[str, str] = field(default_factory=dict)  # unknown -> "rlimit" or "time"
    cti: dict[str, str] = field(default_factory=dict)  # failed -> the CTI in words

    def note(self) -> str:
        parts = []
        if self.lemmas:
            plain = [n for n, ls in self.lemmas.items() if not ls]
            helped = [f"{n} (lemmas {', '.join(ls)})" for n, ls in self.lemmas.items() if ls]
            if plain:
                parts.append(f"{len(plain)} properties are {self.k}-inductive on their own")
            if helped:
                parts.append(f"{self.k}-inductive with lemmas: {'; '.join(helped)}")
        for name in self.failed:
            parts.append(f"{name} is not {self.k}-inductive with the properties left as "
                         f"lemmas; a counterexample to induction: {self.cti.get(name, '')}"
                         .rstrip(": "))
        for reason in ("rlimit", "time"):
            names = [n for n in self.unknown if self.why.get(n) == reason]
            if names:
                parts.append(f"the {self.k}-induction step gave up on {', '.join(names)} "
                             f"(the solver's {reason} ran out)")
        return "; ".join(parts)


def _induction_step(
    system: SymbolicSystem,
    k: int,
    todo: list[str],
    proved: Mapping[str, list[str]],
    props: _Props,
    skip: set[str],
    deadline: float,
    rlimit: int = DEFAULT_RLIMIT,
    first: SymState | None = None,
) -> _Step:
    """From any well-formed state, k steps on which the lemmas hold force each property
    at step k+1? The question is split into obligations, one per operation the last
    step may run and per value of its small-domain arguments (`_obligations`), each
    asked on its own solver with those values folded in. Each property is asked with
    the spec's properties as lemmas, each behind an assumption literal: the unsat core
    names those the proof used (a core, not necessarily the smallest). A property
    with a counterexample to induction, or on which the solver gives up, stops being
    a lemma, and the proofs that used it are redone (Houdini's fixpoint), so every
    proof rests only on properties that are themselves proved (or were proved at a
    smaller k)."""
    result = _Step(k)
    props.phase = f"the {k}-induction step"
    # the first state is BMC's: its properties are built already (any fresh constants
    # would do: this solver asserts nothing about them but well_formed)
    states = [first or system.fresh_state(f"i{k}s0")]
    steps: list[SymStep] = []
    base = [system.well_formed(states[0])]
    for i in range(k):
        t = system.fresh_step(f"i{k}t{i}")
        # the last state as terms of the one before (the encoding's successor, when it
        # has one): trans then states it equal to itself, which folds away
        s2 = (after(system, states[-1], t) if i == k - 1 else None) \
            or system.fresh_state(f"i{k}s{i + 1}")
        base += [system.well_formed(s2), system.trans(states[-1], t, s2)]
        steps.append(t)
        states.append(s2)
    track = {n: z3.Bool(f"lemma:{k}:{n}") for n in props.names()}
    tracked: set[str] = set()  # the properties that stand for a formula at some position
    facts: list[tuple[str, Any]] = []
    for i in range(k):  # every property at every position before the last, if tracked
        for _, p, f in props.at(states[i - 1] if i else None, steps[i - 1] if i else None,
                                states[i], skip):
            facts.append((p.name, f))
            tracked.add(p.name)
    goals = {p.name: (p, f) for _, p, f in props.at(states[-2], steps[-1], states[-1], skip)}
    live = set(proved) | {n for n in todo if n in goals}
    obligations = _obligations(steps[-1])
    cores: dict[str, dict[int, set[str]]] = {n: {} for n in todo}  # name -> obligation -> core
    while True:  # rounds: each asks with the lemmas that stood when it began
        asks = []
        for at, (op, _) in enumerate(obligations):
            names = [n for n in todo if n in live and _concerns(goals[n][0], op)
                     and not (at in cores[n] and cores[n][at] <= live)]
            if names:
                asks.append((at, names))
        if not asks:
            break
        lemmas = {n: track[n] for n in sorted(live & tracked)}

        def task(group: list[tuple[int, list[str]]],
                 lemmas: Mapping[str, z3.BoolRef] = lemmas) -> list[list[tuple[str, str, Any]]]:
            out = []
            for at, names in group:  # in a fixed order: the answers do not depend on CPUs
                op, case = obligations[at]
                ob = _Obligation(base, facts, track, steps[-1], op, case,
                                 {n: goals[n][1] for n in names}, deadline, rlimit)
                out.append([(n, *ob.ask(n, lemmas).verdict(system, states, steps))
                            for n in names])
            return out

        # one child per obligation when there are few (they are large: buddy's 23 at
        # 256 pages), else one per operation, its cases one after another (a fork per
        # case cost more than the case on encodings with many small ones: segment's 343)
        few = len(obligations) <= FEW_OBLIGATIONS
        groups: dict[Any, list[tuple[int, list[str]]]] = {}
        for at, names in asks:
            groups.setdefault(at if few else obligations[at][0], []).append((at, names))
        # started by case index across the operations (each operation's first case,
        # usually its hardest: buddy's order 0, then the second ...): the long ones
        # overlap instead of queueing behind one operation's cases
        tasks = list(groups.values())
        nth, seen = [], {}  # nth[at]: the obligation's place among its operation's cases
        for op, _ in obligations:
            nth.append(seen.get(op, 0))
            seen[op] = nth[-1] + 1
        start = sorted(range(len(tasks)), key=lambda i: (nth[tasks[i][0][0]], i))
        dropped: dict[str, tuple[str, str]] = {}  # name -> its first answer that is no proof
        for group, got in zip(tasks, run_forked(
                [functools.partial(task, g) for g in tasks], stop=interrupt.requested,
                start=start), strict=True):
            if isinstance(got, Failed):  # mmcheck's own code raised there: a bug, said so
                raise RuntimeError(f"an induction obligation raised (in a forked child): "
                                   f"{got.error}")
            for (at, names), said in zip(group, got or [None] * len(group), strict=True):
                if said is None:  # stopped (interrupt, time limit) before it answered
                    said = [(n, "unknown", "time") for n in names]
                for name, kind, detail in said:
                    if kind == "unsat":
                        cores[name][at] = detail
                    elif name not in dropped:
                        dropped[name] = (kind, detail)
        for name, (kind, detail) in dropped.items():
            live.discard(name)
            if kind == "sat":
                result.failed.append(name)
                result.cti[name] = detail
            else:
                result.unknown.append(name)
                result.why[name] = detail
    result.lemmas = {n: sorted(set().union(*cores[n].values()) - {n})
                     for n in todo if n in live}
    return result


def _concerns(p: ast.Property, op: str | None) -> bool:
    """Whether property p says something on a step running `op` (None: a step that
    runs no operation, or several, which trans excludes): an invariant always, an
    action only on its own operation."""
    return not isinstance(p, ast.Action) or op is None or p.op == op


def _obligations(t: SymStep) -> list[tuple[str | None, list[z3.BoolRef]]]:
    """The cases the last step of an induction step is split into: (op, equalities of
    its small-domain arguments) for each operation and each combination of values
    (`argument_cases`, whose last case is every other value), then (None, [no
    operation, or two]). trans makes the last one unsat at once; it is there so
    that the cases cover every model by construction, not by trust in the encoding."""
    out: list[tuple[str | None, list[z3.BoolRef]]] = [
        (op, case) for op in t.is_op for case in argument_cases(t, op)]
    lits = list(t.is_op.values())
    out.append((None, [z3.Not(z3.And(z3.Or(lits), *(z3.Not(z3.And(a, b)) for a, b
                                                      in itertools.combinations(lits, 2))))]))
    return out


def after(system: SymbolicSystem, s: SymState, t: SymStep) -> SymState | None:
    """The state step t leads s to, as terms over s's and t's constants: the
    encoding's `successor` (optional in the protocol; None without one). Over it a
    bit the step does not touch is the same term before and after, so the change
    of a sum is read off the few slots the step changes (z3collections.sum_delta)."""
    successor = getattr(system, "successor", None)
    return successor(s, t) if successor is not None else None


class _Obligation:
    """One case of an induction step: the operation's literals and its arguments'
    values substituted into the step and the goals and folded (`z3.simplify`: a
    step's formulas for every other operation and order vanish), the equalities
    themselves asserted too (F and x == v is F[x := v] and x == v), so models still
    read back whole.

    A goal is first asked on one incremental solver, with each lemma and each goal
    behind a literal of its own, so that the unsat core names the lemmas the proof
    used, within 1/FIRST_TRY of the rlimit. What that does not settle is asked again
    on a fresh solver with the lemmas asserted, which preprocesses (z3 does so only
    for a solver never asked with assumptions nor pushed): two to four times faster
    on the buddy allocator at 256 pages, but with no core, so such a proof is
    credited with every lemma it was given."""

    def __init__(self, base: list[Any], facts: list[tuple[str, Any]], track: Mapping[str, Any],
                 last: SymStep, op: str | None, case: list[z3.BoolRef],
                 goals: Mapping[str, Any], deadline: float, rlimit: int) -> None:
        self.deadline, self.rlimit = deadline, rlimit
        fixed = [] if op is None else [a == z3.BoolVal(o == op) for o, a in last.is_op.items()]
        fixed += [c for c in case if z3.is_eq(c)]
        pairs = [(c.arg(0), c.arg(1)) for c in fixed
                 if _is_variable(c.arg(0)) and _is_value(c.arg(1))]
        fold = (lambda f: z3.simplify(z3.substitute(f, *pairs))) if pairs else (lambda f: f)
        self.base = [*fixed, *(c for c in case if not z3.is_eq(c)), *(fold(f) for f in base)]
        self.facts = facts
        self.negated = {n: fold(z3.Not(g)) for n, g in goals.items()}
        self.solver = _solver(max(deadline - time.monotonic(), 0.001), rlimit)
        self.solver.add(*self.base, *(z3.Implies(track[n], f) for n, f in facts))
        self.goal = {n: z3.Bool(f"goal:{n}") for n in goals}
        for n, g in self.negated.items():
            self.solver.add(z3.Implies(self.goal[n], g))

    def ask(self, name: str, lemmas: Mapping[str, z3.BoolRef]) -> _Answer:
        """Can goal `name` fail here, given the lemmas (name -> literal)?"""
        if z3.is_false(self.negated[name]):
            return _Answer(z3.unsat)  # folded away: the goal holds on every such step
        first = self.rlimit // FIRST_TRY if self.rlimit else DEFAULT_RLIMIT // FIRST_TRY
        got = _ask(self.solver, self.goal[name], list(lemmas.values()), self.deadline, first)
        if got.answer != z3.unknown or got.why == "time":
            return got
        plain = _solver(max(self.deadline - time.monotonic(), 0.001), self.rlimit)
        plain.add(*self.base, *(f for n, f in self.facts if n in lemmas), self.negated[name])
        got = _ask(plain, None, [], self.deadline, self.rlimit)
        if got.answer == z3.unsat:
            got.core = set(lemmas)
        return got


# Up to this many obligations in an induction step, each runs in a child of its own.
FEW_OBLIGATIONS = 32

# The incremental solver's share of the rlimit on a goal before it is asked again on
# a preprocessing solver (`_Obligation`): what it cannot answer cheaply, that one
# answers faster, without a core (docs/benchmarks.md).
FIRST_TRY = 8


def _is_variable(t: Any) -> bool:
    return z3.is_const(t) and t.decl().kind() == z3.Z3_OP_UNINTERPRETED


def _is_value(t: Any) -> bool:
    return z3.is_true(t) or z3.is_false(t) or z3.is_int_value(t) or z3.is_bv_value(t)


@dataclass
class _Answer:
    """One induction query's answer: unsat (with the lemmas its core names), sat (with
    the model) or unknown (with what ended it: "rlimit" or "time")."""

    answer: Any
    model: z3.ModelRef | None = None
    core: set[str] = field(default_factory=set)
    why: str = ""

    def verdict(self, system: SymbolicSystem, states: Sequence[SymState],
                steps: Sequence[SymStep]) -> tuple[str, Any]:
        """(kind, detail) as plain data: ("unsat", the core), ("sat", the counterexample
        to induction in words) or ("unknown", what ended it)."""
        if self.answer == z3.unsat:
            return "unsat", self.core
        if self.answer == z3.sat and self.model is not None:
            return "sat", _cti(system, self.model, states, steps)
        return "unknown", self.why


def _lemma_name(literal: z3.BoolRef) -> str:
    """The property an assumption literal `lemma:k:name` stands for ("" for others)."""
    text = str(literal)
    return text.split(":", 2)[2] if text.startswith("lemma:") else ""


def argument_cases(t: SymStep, op: str) -> list[list[z3.BoolRef]]:
    """The cases of step t running `op` by the values of its small-domain arguments
    (SymStep.domains, as the spec compiler splits an action): one list of
    equalities per combination of values, then one for any other value; [[]] (one
    case, no split) when the operation has none or too many combinations."""
    args = t.args.get(op, {})
    small = [(args[p], dom) for p, dom in t.domains.get(op, {}).items()
             if p in args and len(dom) <= MAX_SPLIT]
    combos = 1
    for _, dom in small:
        combos *= len(dom)
    if not small or combos > MAX_CASES:
        return [[]]
    cases = [[a == v for (a, _), v in zip(small, values, strict=True)]
             for values in itertools.product(*(dom for _, dom in small))]
    # and every other value: trans keeps the arguments in their domains, so this case
    # is unsat at once, but the split is exhaustive by construction, not by trust
    return [*cases, [z3.Not(z3.Or(*(z3.And(*c) for c in cases)))]]


def _why(answer: Any, started: float, timeout: float) -> str:
    """What ended a query that came back unknown: "time" when it ran to its timeout
    (the wall budget, a safety limit whose answer depends on load), else "rlimit"
    (work: the same on any machine); "" for a definite answer. z3 tells the two
    apart by name only on a solver checked without assumptions and not built from
    tactics ("canceled" for both otherwise), so the time it took decides."""
    if answer != z3.unknown:
        return ""
    return "time" if time.monotonic() - started >= 0.95 * timeout else "rlimit"


def _ask(solver: z3.Solver, goal: Any, assumptions: list[z3.BoolRef], deadline: float,
         rlimit: int) -> _Answer:
    """Is goal (a literal standing for a negated property; None: the solver's own
    assertions) satisfiable under the assumptions, within `rlimit` (0: none)? The
    unsat core names the lemma literals the proof used; the query gets its share
    of the remaining time as a safety limit."""
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        return _Answer(z3.unknown, why="time")
    # work (the rlimit) bounds each query; time only from outside, keeping a share
    # for the bounded run after induction
    timeout = remaining * 0.6
    solver.set("timeout", max(1, int(timeout * 1000)))
    solver.set(rlimit=rlimit)
    started = time.monotonic()
    answer = solver.check(*([] if goal is None else [goal]), *assumptions)
    if answer == z3.unsat:
        return _Answer(answer, core={_lemma_name(c) for c in solver.unsat_core()} - {""})
    return _Answer(answer, solver.model() if answer == z3.sat else None,
                   why=_why(answer, started, timeout))


def _cti(system: SymbolicSystem, model: z3.ModelRef, states: Sequence[SymState],
         steps: Sequence[SymStep]) -> str:
    """A counterexample to induction as a trace-like picture: each state the encoding
    can decode (decode_state, optional), and the steps between."""
    decode = getattr(system, "decode_state", None)
    parts = []
    for i, s in enumerate(states):
        if decode is not None:
            parts.append(f"state {i}: {_blocks(decode(model, s))}")
        if i < len(steps):
            cs = system.decode_step(model, steps[i])
            shown = f"{cs.op}({', '.join(map(str, cs.args))})"
            shown += f" raised {cs.raised}" if cs.raised else (
                f" -> {cs.result}" if cs.result is not None else "")
            parts.append(f"step {shown}")
    return " | ".join(parts)


def _blocks(state: Mapping[str, Any], most: int = 12) -> str:
    """A decoded state in a line: each value, long lists cut to their first items."""
    def short(v: Any) -> str:
        if isinstance(v, list) and len(v) > most:
            return f"{v[:most]}... ({len(v)} in all)"
        return str(v)
    return "; ".join(f"{k} {short(v)}" for k, v in state.items())


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
    for_reference, for_submission = driver.decl.symbolic_pages
    pages = options.z3_pages or (for_submission if is_submission else for_reference)
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
        _depth_progress(report, options, budget),
    )
    whole = driver.decl.symbolic_whole_pages
    if result.skipped and whole and whole != pages and not interrupt.requested():
        result = _with_whole_size(result, checked, symbolic(whole), options, report)
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
    details.append(TIMING_DETAIL + ", ".join(f"{d}:{t:.1f}s" for d, t in result.timings))
    run = EngineRun("z3", result.verdict, result.summary, None, result.elapsed, None, details)
    run.property_status = _property_status(checked, result)
    report.runs.append(run)


def _with_whole_size(first: Z3Result, checked: list[CheckedSpec], built: Any,
                     options: Options, report: Report) -> Z3Result:
    """`first`, with the properties it could not compile checked on the encoding at
    the declaration's symbolic_whole_pages (a smaller memory whose encoding models
    every name): the whole spec runs there (its other properties are the lemmas
    these may need), and each of them says at which size it was shown."""
    system, setup, universe, exponent_bound = built
    budget = min(interrupt.remaining(), Z3_TIME_CAP)
    second = bounded_check(checked, system, setup,
                           dataclasses.replace(options, induction=True, budget=budget),
                           universe, exponent_bound, set(),
                           _depth_progress(report, options, budget))
    left = {n for n, said in first.status.items() if said.startswith("not compiled")}
    size = _size(system, setup)
    status = dict(first.status)
    for name in left:
        status[name] = f"{second.status.get(name, 'not checked')} at {size}"
    shown = [n for n in left if not second.status.get(n, "").startswith("not compiled")]
    violations = [*first.violations, *(v for v in second.violations if v.prop.name in left)]
    verdict = max(first.verdict, _verdict_of(second, left),
                  key=lambda v: _VERDICTS.index(v) if v in _VERDICTS else len(_VERDICTS))
    return dataclasses.replace(
        first, verdict="violated" if violations else verdict, violations=violations,
        status=status,
        skipped=[s for s in first.skipped if s.split(":", 1)[0] not in shown],
        summary=f"{first.summary}; the {len(shown)} properties that need a smaller "
                f"memory, at {size}: {second.summary}",
        induction_note="; ".join(x for x in (first.induction_note, second.induction_note
                                            and f"at {size}: {second.induction_note}") if x),
        elapsed=first.elapsed + second.elapsed)


# A run's verdicts, the strongest first: two runs together say the weaker of theirs.
_VERDICTS = ["proved", "bounded", "unknown", "violated"]


def _verdict_of(result: Z3Result, names: set[str]) -> str:
    """What `result` showed of `names` alone, as a run's verdict."""
    said = [result.status.get(n, "") for n in names]
    if any(s.startswith("violated") for s in said):
        return "violated"
    if all(s.startswith("proved") for s in said):
        return "proved"
    if all(s.startswith(("proved", "holds to depth")) and "unknown" not in s for s in said):
        return "bounded"
    return "unknown"


def _depth_progress(report: Report, options: Options, budget: float) -> DepthSink | None:
    """Z3's progress per depth, as a line on the progress display (issue 11)."""
    if options.progress is None:
        return None
    start = time.monotonic()

    def tell(depth: int, seconds: float, live: int) -> None:
        detail = (f"BMC depth {depth} cleared in {seconds:.1f} s "
                  f"({live} properties checked at it)")
        assert options.progress is not None
        options.progress(ProgressEvent("z3", report.target, report.subsystem, 0, 0, 0,
                                       len(report.properties), 0, time.monotonic() - start,
                                       budget, detail=detail))
    return tell


def _property_status(checked: Sequence[CheckedSpec], result: Z3Result) -> dict[str, str]:
    """What the Z3 run showed about each property, in a few words."""
    return {p.name: result.status.get(p.name, "not checked")
            for c in checked for p in c.spec.properties}


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
        f"({_size(system, setup)}), each ending in a step on which an action property says "
        "something"
    ]
    stats = RunStats()
    found = 0
    seen: set[str] = set()
    for trace in traces:
        if interrupt.requested():
            break
        # the traces hold the reference's choices (the block alloc returned): a later
        # step passing one back passes the submission's own instead
        r = replay(trace, specs, make_system, skip=frozenset(seen), rename=True)
        stats.merge(r.stats)
        if r.violation is not None and r.violation.property not in seen:
            seen.add(r.violation.property)
            found += 1
            with interrupt.grace(interrupt.CONFIRM_GRACE):
                cx = confirm(
                    "z3",
                    dataclasses.replace(trace, steps=r.steps),  # as it ran, renamed
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
    """Traces of the reference encoding aimed at each action property's premise
    (and at the encoding's `coverage_goals`, where it has them).

    For every length 1..depth and every action property, the solver is asked
    for a trace whose steps all succeed and whose last step runs that
    property's operation with its (first) premise true (a step on which the
    property says something); each trace found is blocked, so the next is new.
    Round robin over the goals until the limit is reached or every goal is
    exhausted. Then, beyond the limit, one trace per length for each other
    premise: of each implication of a conjunction, and with the last step
    failing for a property that reads `raised`. `budget` seconds only stop it
    from outside.
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
        # the encoding's own goals (optional): steps no premise asks for, such as
        # an alloc that only a merge makes possible
        goals += getattr(system, "coverage_goals", lambda st, sp: [])(states, steps)
        others: list[Any] = []  # the premises of failures and of later implications
        for c, comp in compilers:
            for act in c.spec.actions:
                try:
                    first, *rest = comp.action_premises(act, states[-2], steps[-1], states[-1])
                    # an action that reads `raised` is also aimed at with a failing
                    # step: its premise may be the failure itself (`raised -> unchanged`)
                    failing = (comp.action_premises(act, states[-2], steps[-1], states[-1],
                                                    raised=True)
                               if says_raised(act.body) else [])
                except Unsupported:
                    continue
                goals.append(first)
                others += rest + failing
        goals_by_depth.append((steps, goals, others))
        solvers.append(solver)
    traces: list[Trace] = []
    exhausted: set[tuple[int, int]] = set()
    while len(traces) < limit and time.monotonic() < deadline:
        progress = False
        for d, ((steps, goals, _), solver) in enumerate(zip(goals_by_depth, solvers)):
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
    # Then one trace for each other premise, at each length: a step on which a
    # property about failures, or a later implication of a conjunction, says
    # something. After the round robin, so that the traces above are the same
    # with or without these.
    for (steps, _, others), solver in zip(goals_by_depth, solvers):
        for goal in others:
            if time.monotonic() >= deadline:
                break
            solver.set("timeout", max(1, int((deadline - time.monotonic()) * 1000)))
            solver.push()
            solver.add(goal)
            if solver.check() == z3.sat:
                traces.append(_decode(system, solver.model(), steps, subsystem, setup))
            solver.pop()
    return traces
