"""Grade one submission: an independent verdict per rubric item.

One shared search decides every item whose own search would draw the same
traces and found nothing (`_all_at_once`); the others get their own search.
Each item's own search runs in a fresh worker with the same seed
and the same number of traces (work, not time), checking only its own
properties (the others are skipped). A trace on which the submission hits a
problem that another item grades (a crash, a hang, an illegal choice) ends
just before that step in this item's search: the steps before it are checked,
so one bug costs the points of the item that describes it (and of those it
really breaks), not of every item it would hide. An item most of whose traces
ended before their first step was not tested: it scores nothing ("not
established"), so a submission that crashes at once never collects the points
of properties it never reached. Robustness items keep the problems met on a
step the contract answers with an error (a crash or an accepted double free
there is exactly their failure) and end the traces at the others.
"""

from __future__ import annotations

import copy
import shlex
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hypothesis import reject
from mmcheck.checker import interrupt, subsystems
from mmcheck.checker.confirm import confirm, problem_violation
from mmcheck.checker.evaluate import CompiledSpec
from mmcheck.checker.grade.assignment import PROBLEM_KINDS, Assignment, AssignmentError, Item
from mmcheck.checker.grade.store import slug, write_atomic
from mmcheck.checker.hypothesis_engine import Found, run_hypothesis
from mmcheck.checker.observable import not_observable, observable_part
from mmcheck.checker.options import Options
from mmcheck.checker.report import render_counterexample
from mmcheck.checker.sandbox.protocol import clean
from mmcheck.checker.systems import SubmissionError
from mmcheck.checker.trace import Step, Trace
from mmcheck.spec.errors import SpecError
from mmcheck.spec.loader import CheckedSpec
from mmcheck.spec.loader import load as load_spec

GRADE_FORMAT = 1
# Traces that shrink an item's counterexample in its search (a count: the same
# trace on any machine); the trace minimiser then replays it (Options.minimise).
SHRINK_TRACES = 100
# A lost item graded on the shared search's trace keeps it if the trace minimiser
# brings it down to this many steps; a longer one is left to the item's own search,
# whose shrinking (Hypothesis's, then the minimiser's) gives students short traces.
SHORT_ENOUGH = 6
INCOMPLETE = "not graded: the wall-clock limit per submission ran out"


@dataclass
class ItemResult:
    """The verdict on one rubric item."""

    name: str
    score: float
    max_score: float
    status: str  # passed | failed | partial | not established
    summary: str  # one line a student reads first
    visible: bool = True
    details: list[str] = field(default_factory=list)  # trace, why, state of memory
    replay: str = ""  # the command that replays it on the student's machine
    trace_file: str = ""  # the trace, relative to the student's feedback folder
    traces: int = 0  # traces checked (some of them only up to a problem another item grades)
    dropped: int = 0  # traces that checked nothing: a problem another item grades came first
    cut: int = 0  # traces checked only up to a problem another item grades
    screened: int = 0  # calls the contract refuses, answered for it (robustness grades them)


@dataclass
class Grade:
    """All items of one submission, as saved and as every output format reads it."""

    student: str
    submission: str
    assignment: str
    score: float
    max_score: float
    items: list[ItemResult]
    layers: list[str] = field(default_factory=list)  # isolation in force
    error: str = ""  # why nothing could be graded (did not load...)
    output: str = ""  # the last lines the submission printed
    compiler: str = ""  # what the C compiler said building it (warnings)
    format: int = GRADE_FORMAT

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Grade:
        fields = dict(data)
        fields["items"] = [ItemResult(**i) for i in data["items"]]
        return cls(**fields)


class _ConstructorProblem(Exception):
    """The submission's constructor raised or crashed for this setup."""

    def __init__(self, setup: Mapping[str, int], kind: str, text: str) -> None:
        super().__init__(text)
        self.setup = dict(setup)
        self.kind = kind


class _Hopeless(Exception):
    """Nearly every trace of an item was dropped: it cannot be established."""


class _Avoiding:
    """A System that ends its trace (`ended`: see hypothesis_engine.ended) just
    before a step on which the wrapped system hits a problem of a kind in `avoid`,
    remembering the first of them: the steps before the problem are checked as
    usual, the step that hit it and those after are not part of the trace.

    Problems on a step that the contract answers with an error (the reference
    model, following the submission's choices, raises there) belong to the
    robustness items: `error_clauses` "keep" counts them (a robustness item),
    "screen" (a property or a problem item, when the rubric has robustness items)
    ends the first such trace too, and from then on never sends a call of that
    operation that the contract refuses to the submission: the step is answered as
    the contract answers it, so that a submission that mishandles, say, a double
    free is still graded on coalescing instead of losing nearly every trace to it.
    Refused calls of an operation it has not mishandled still reach it, so that
    one that raises but changes its state first is still caught by what it breaks.
    "" treats them like any other."""

    def __init__(self, inner: Any, reference: Any, avoid: frozenset[str],
                 error_clauses: str, seen: dict[str, Any], trace: Trace) -> None:
        self.inner = inner
        self.reference = reference
        self.avoid = avoid
        self.error_clauses = error_clauses
        self.seen = seen
        self.ended = False
        self.clean = 0  # steps run without a problem this item avoids
        self.trace = trace  # the steps so far (the engine's own list is not ours to read)

    def apply(self, op: str, args: tuple[int, ...], expect: Any = None) -> Any:
        if self.error_clauses == "screen" and op in self.seen.setdefault("mishandled", set()):
            refused = self._refused(op, args)
            if refused is not None:
                self._record(refused)
                return refused, None
        hangs = self.seen["hangs"]
        if (op, args) in hangs and "timeout" in self.avoid and (
                self.error_clauses != "keep" or self._answer(op, args).raised is None):
            self._cut(f"{op}{args!r}: {hangs[(op, args)]}", "timeout")  # known: save the wait
            return Step(op, args, None, None), None
        step, problem = self.inner.apply(op, args, expect)
        if problem is not None and problem.kind == "timeout":
            hangs.setdefault((op, args), problem.title)
        ref_step, ref_problem = self.reference.apply(op, args, step)
        if problem is None:
            self.clean += 1
            self._record(step)
            return step, problem
        if ref_problem is not None:  # it could not follow the choice: what would it do?
            ref_step, _ = self.reference.apply(op, args)  # (the trace ends here anyway)
        error_clause = ref_step.raised is not None and self.error_clauses
        if error_clause == "screen":  # from now on, refused calls of `op` are screened
            self.seen.setdefault("mishandled", set()).add(op)
            self._cut(f"{op}{args!r}: {problem.title}", "")
        elif problem.kind in self.avoid and error_clause != "keep":
            self._first_problem(step, problem)
            self._cut(f"{op}{args!r}: {problem.title}", problem.kind)
        return step, problem

    def _record(self, step: Step) -> None:
        self.trace = Trace(self.trace.subsystem, self.trace.setup, (*self.trace.steps, step))

    def _first_problem(self, step: Step, problem: Any) -> None:
        """Keep the first trace that ended at a problem of this kind, with it as
        its violation: what a search that does not avoid the kind finds first."""
        first = self.seen["first_problem"]
        if problem.kind not in first:
            trace = Trace(self.trace.subsystem, self.trace.setup, (*self.trace.steps, step))
            first[problem.kind] = (len(first), trace,
                                   problem_violation(problem, len(self.trace.steps)))

    def _refused(self, op: str, args: tuple[int, ...]) -> Any:
        """The reference's step if the contract refuses this call (it raises, and a
        refused call changes nothing), else None."""
        step = self._answer(op, args)
        if step.raised is not None:
            self.seen["screened"] = self.seen.get("screened", 0) + 1
            return step
        return None

    def _answer(self, op: str, args: tuple[int, ...]) -> Any:
        """The reference's own step for this call, tried on a copy of the reference
        (which must follow the submission's own choices on the calls it accepts);
        a step without an exception when it cannot tell."""
        try:
            probe = copy.deepcopy(self.reference)
        except Exception:  # noqa: BLE001 - a reference that cannot be copied is not screened
            return Step(op, args, None, None)
        step, problem = probe.apply(op, args)
        return Step(op, args, None, None) if problem is not None else step

    def _cut(self, why: str, kind: str) -> None:
        """End the trace before this step, at a problem of `kind` ("": on a call the
        contract refuses, in screen mode); one cut before any clean step checked
        nothing (`short`: it does not count as a trace of the item)."""
        self.ended = True
        self.seen["kinds"].add(kind)
        self.seen["cut"] += 1
        self.seen["short"] += self.clean == 0
        self.seen.setdefault("first", why)

    def snapshot(self) -> Any:
        return self.inner.snapshot()

    def close(self) -> None:
        self.inner.close()
        self.reference.close()


@dataclass
class _Context:
    assignment: Assignment
    checked: list[CheckedSpec]
    specs: list[CompiledSpec]
    driver: Any
    properties: dict[str, str]  # name -> spec path
    hidden: set[str]
    out_dir: Path | None
    submission: Path
    student: str
    # calls that hung in an earlier item's search: later items drop them without
    # waiting for the timeout again (the items run in a fixed order: deterministic)
    hangs: dict[tuple[str, tuple[int, ...]], str] = field(default_factory=dict)
    # property -> why this submission cannot show it (it reads a name the submission
    # does not expose, e.g. the free lists without free_area()): never checked, never
    # credited (the submission's view of those names would be the reference's)
    unseen: dict[str, str] = field(default_factory=dict)


def load_specs(assignment: Assignment) -> tuple[list[CheckedSpec], dict[str, str], set[str]]:
    """The assignment's specs, checked against its rubric. Raises AssignmentError."""
    checked = []
    for path in assignment.all_specs:
        try:
            checked.append(load_spec(str(path)))
        except SpecError as e:
            raise AssignmentError(e.render()) from None
    wrong = [str(c.path) for c in checked if c.subsystem != assignment.subsystem]
    if wrong:
        raise AssignmentError(f"{assignment.path}: {', '.join(wrong)} state properties of "
                              f"another subsystem than {assignment.subsystem}")
    if subsystems.driver(assignment.subsystem) is None:
        raise AssignmentError(f"{assignment.path}: no engine drives the "
                              f"{assignment.subsystem} subsystem")
    properties = {p.name: str(c.path) for c in checked for p in c.spec.properties}
    hidden_paths = {str(p) for p in assignment.hidden_specs}
    hidden = {p.name for c in checked if str(c.path) in hidden_paths for p in c.spec.properties}
    for item in assignment.items:
        unknown = [p for p in item.properties if p not in properties]
        if unknown:
            raise AssignmentError(f"{assignment.path}: item '{item.name}' names "
                                  f"{', '.join(unknown)}, which no spec of the assignment "
                                  "states")
    return checked, properties, hidden


def grade(assignment: Assignment, submission: Path, student: str | None = None,
          out_dir: Path | None = None) -> Grade:
    """Grade `submission` on every rubric item. Writes the traces of lost items
    into `out_dir` (a folder the caller made) when given."""
    from mmcheck.checker.sandbox import LoadError, Submission

    checked, properties, hidden = load_specs(assignment)
    student = student or submission.stem
    driver = subsystems.driver(assignment.subsystem)
    ctx = _Context(assignment, checked, [CompiledSpec(c) for c in checked], driver, properties,
                   hidden, out_dir, submission, student)
    limits = assignment.limits
    try:
        sub = Submission.open(submission, timeout_per_call=limits.call_seconds,
                              memory_limit_mb=limits.memory_mb, load_timeout=30.0)
    except LoadError as e:
        return _nothing(ctx, f"the submission did not load: {e}", _load_details(e))
    try:
        if driver.decl.contract_class not in sub.classes():
            have = ", ".join(sub.classes()) or "none of the contract classes"
            return _nothing(ctx, f"the submission defines {have}, not "
                                 f"{driver.decl.contract_class}", [], list(sub.layers))
        _hide_unseen(ctx, sub)
        deadline = time.monotonic() + limits.submission_seconds
        try:
            shared = _all_at_once(ctx, sub, deadline)
        except LoadError:
            shared = None
        results = [verdict or _own_search(ctx, sub, item, deadline) for item, verdict
                   in zip(assignment.items, shared or [None] * len(assignment.items))]
        output = clean(sub.stdout.strip(), 1000)
        compiler = clean(sub.build_messages.strip(), 4000)
        layers = list(sub.layers)
    finally:
        sub.close()
    results = [_unobserved(ctx, item, r) for item, r in zip(assignment.items, results)]
    for r, item in zip(results, assignment.items):  # a hidden spec's items stay hidden
        r.visible = r.visible and not any(p in hidden for p in item.properties)
    error = ""
    if any(r.summary == INCOMPLETE for r in results):
        error = (f"incomplete: the wall-clock limit of {limits.submission_seconds:g} s per "
                 "submission ran out (an overloaded machine?); grade it again")
    return Grade(student, str(submission), assignment.name, _total(results),
                 assignment.max_score, results, layers, error, output, compiler)


def _hide_unseen(ctx: _Context, sub: Any) -> None:
    """Leave out of every search the properties that read a name `sub` does not
    show (checker/observable.py): the checker's view of such a name on a submission
    is not the submission's, so they can neither hold nor fail on it."""
    hidden = ctx.driver.hidden_names(sub) if ctx.driver.hidden_names else frozenset()
    for c in ctx.checked:
        ctx.unseen.update(not_observable(c, hidden, white_box=False))
    if ctx.unseen:
        ctx.specs = [CompiledSpec(observable_part(c, ctx.unseen)) for c in ctx.checked]


def _unobserved(ctx: _Context, item: Item, r: ItemResult) -> ItemResult:
    """`r` with the item's unobservable properties counted as not established: a
    partial item keeps the share of the properties it showed and held; any other
    item that held on what it showed is not established."""
    unseen = [p for p in item.properties if p in ctx.unseen]
    if not unseen:
        return r
    reasons: dict[str, list[str]] = {}
    for p in unseen:
        reasons.setdefault(ctx.unseen[p], []).append(p)
    why = "not observable on this submission: " + "; ".join(
        f"{', '.join(ps)} {reason}" for reason, ps in reasons.items()) + \
        ' (docs/contract.md, "Verdicts on white-box properties")'
    share = item.points * len(unseen) / len(item.properties)
    if r.status in ("passed", "partial") and item.partial and len(unseen) < len(item.properties):
        r.score = round(max(0.0, r.score - share), 4)
        r.status = "partial" if r.score > 0 else "failed"
        r.summary = clean(f"{r.summary} ({why})", 500)
    elif r.status == "passed":
        r.score, r.status, r.summary = 0.0, "not established", clean(why, 500)
    else:
        r.summary = clean(f"{r.summary} ({why})", 500)
    return r


def _total(results: list[ItemResult]) -> float:
    return round(sum(r.score for r in results), 4)


def _load_details(e: Exception) -> list[str]:
    lines = []
    text = getattr(e, "traceback", "") or getattr(e, "stderr", "")
    if text:
        lines += clean(text, 4000).splitlines()[-20:]
    return lines


def _nothing(ctx: _Context, why: str, details: list[str], layers: list[str] | None = None
             ) -> Grade:
    """Every item at zero, with the reason (a load error, compile errors...)."""
    results = [_result(item, 0.0, "not established", why, details) for item in
               ctx.assignment.items]
    return Grade(ctx.student, str(ctx.submission), ctx.assignment.name, 0.0,
                 ctx.assignment.max_score, results, layers or [], why)


def _result(item: Item, score: float, status: str, summary: str,
            details: list[str] | None = None, **kw: Any) -> ItemResult:
    return ItemResult(item.name, round(score, 4), item.points, status, clean(summary, 500),
                      item.visible, details or [], **kw)


def _plan(ctx: _Context, item: Item) -> tuple[frozenset[str], frozenset[str], str]:
    """(properties to skip, problem kinds whose traces are dropped, what to do with
    problems on error-clause steps: see _Avoiding) for `item`."""
    robust = any(i.robustness for i in ctx.assignment.items)
    if item.properties:
        skip = frozenset(ctx.properties) - set(item.properties)
        return (skip, frozenset(PROBLEM_KINDS),
                "keep" if item.robustness else "screen" if robust else "")
    return (frozenset(ctx.properties), frozenset(PROBLEM_KINDS) - set(item.problems),
            "screen" if robust else "")


def _search(ctx: _Context, sub: Any, skip: frozenset[str], avoid: frozenset[str],
            error_clauses: str, deadline: float, keep_going: bool = False
            ) -> tuple[Any, dict[str, Any]]:
    """One search at the assignment's effort; the result (or the exception that
    ended it: _Hopeless, _ConstructorProblem) and what was dropped. keep_going:
    every violated property recorded, none ending a trace (run_hypothesis)."""
    effort = ctx.assignment.effort
    seen: dict[str, Any] = {"dropped": 0, "cut": 0, "short": 0, "made": 0, "hangs": ctx.hangs,
                            "kinds": set(), "first_problem": {}}

    def make_system(setup: Mapping[str, int]) -> Any:
        seen["made"] += 1
        if seen["dropped"] > 2 * effort.traces + 20 and \
                seen["made"] - seen["dropped"] < effort.min_checked * effort.traces:
            raise _Hopeless  # (a count, not a time: deterministic)
        if not sub.alive:
            sub.restart()
        try:
            system = ctx.driver.SubmissionSystem(sub, setup)
        except SubmissionError as e:
            kind = "timeout" if e.outcome.status.value == "timeout" else "crash"
            if kind in avoid:
                seen["dropped"] += 1
                seen["kinds"].add(kind)
                seen.setdefault("first", f"the constructor: {e.outcome.describe()}")
                reject()
            raise _ConstructorProblem(setup, kind, str(e)) from None
        return _Avoiding(system, ctx.driver.ReferenceSystem(setup), avoid, error_clauses, seen,
                         Trace(ctx.driver.name, dict(setup), ()))

    options = Options(seed=effort.seed, steps=effort.steps, max_pages=effort.max_pages,
                      traces=effort.traces, skip=skip,
                      max_counterexamples=len(ctx.properties) + 1 if keep_going else 1,
                      traces_per_chunk=min(25, effort.traces))
    seen["planned"] = -(-effort.traces // options.traces_per_chunk)
    try:
        # The work is effort.traces; the submission's time limit only stops it from outside.
        with interrupt.watch(max(1.0, deadline - time.monotonic())):
            return run_hypothesis(ctx.specs, ctx.driver, make_system, options,
                                  keep_going=keep_going, shrink_traces=SHRINK_TRACES), seen
    except (_Hopeless, _ConstructorProblem) as e:
        return e, seen


def _all_at_once(ctx: _Context, sub: Any, deadline: float) -> list[ItemResult | None] | None:
    """The verdicts ONE search gives, item by item (None: the item needs its own
    search), or None when that search was cut short.

    The search checks every property and goes on past their violations
    (keep_going), ending each trace at the first problem of any kind, with the
    error clauses treated as the rubric's property items treat them (_plan). The
    traces it draws depend only on the seed, on the submission's answers and on
    where traces end, not on which properties are checked: an item whose own
    search would end the same traces at the same steps (_same) would draw exactly
    these. Such an item whose properties all held passed here; an item with a
    violated property gets its own search, for its shortest counterexample."""
    if time.monotonic() > deadline:
        return None
    everything = frozenset(PROBLEM_KINDS)
    clauses = "screen" if any(i.robustness for i in ctx.assignment.items) else ""
    result, seen = _search(ctx, sub, frozenset(), everything, clauses, deadline, keep_going=True)
    if isinstance(result, Exception) or result.chunks < seen["planned"]:
        return None
    violated = {f.violation.property for f in result.found}
    verdicts: list[ItemResult | None] = []
    for item in ctx.assignment.items:
        held = _same(ctx, item, clauses, seen) and not violated.intersection(item.properties)
        verdicts.append(_held(ctx, item, result, seen) if held else
                        _violation_found(ctx, sub, item, result, seen, clauses) or
                        _problem_found(ctx, sub, item, result, seen))
    return verdicts


def _violation_found(ctx: _Context, sub: Any, item: Item, result: Any, seen: dict[str, Any],
                     clauses: str) -> ItemResult | None:
    """A property item lost in the shared search (None: it needs its own search):
    its own search would draw the same traces (_same) and meet first the violation
    the shared search recorded first among its properties; a property of a partial
    item earns its share only if no trace violated it. The trace minimiser
    shrinks that trace, as it does an own search's counterexample."""
    mine = [f for f in result.found if f.violation.property in item.properties]
    if not mine or not _same(ctx, item, clauses, seen):
        return None
    first = mine[0]
    others = frozenset(ctx.properties) - {first.violation.property}
    found = Found(first.trace, first.violation, first.seed, others)
    return _lost(ctx, sub, item, found, result, _counts(result, seen), SHORT_ENOUGH)


def _problem_found(ctx: _Context, sub: Any, item: Item, result: Any,
                   seen: dict[str, Any]) -> ItemResult | None:
    """A problem item lost on the shared search's first trace that ended at a
    problem of its kinds (None: it needs its own search). Its own search would
    draw the same traces up to that one, where it would find that problem: every
    other problem ends a trace in both, and no setup was dropped. The trace
    minimiser then shrinks it, as it does the own search's counterexample."""
    first = [seen["first_problem"][k] for k in item.problems if k in seen["first_problem"]]
    if item.properties or not first or seen["dropped"]:
        return None
    _, trace, violation = min(first, key=lambda f: f[0])
    found = Found(trace, violation, ctx.assignment.effort.seed, frozenset(ctx.properties))
    return _lost(ctx, sub, item, found, result, _counts(result, seen), SHORT_ENOUGH)


def _same(ctx: _Context, item: Item, clauses: str, seen: dict[str, Any]) -> bool:
    """Whether `item`'s own search would end the shared search's traces (error
    clauses `clauses`, every problem kind avoided) at the same steps: it avoids
    every kind of problem met there, and it treats error clauses the same way, or
    no problem and no refused call came up at all."""
    _, avoid, item_clauses = _plan(ctx, item)
    untouched = seen["dropped"] + seen["cut"] + seen.get("screened", 0) == 0
    return seen["kinds"] - {""} <= avoid and (item_clauses == clauses or untouched)


def _own_search(ctx: _Context, sub: Any, item: Item, deadline: float) -> ItemResult:
    """`item` graded by a search of its own, in a fresh process (or INCOMPLETE)."""
    from mmcheck.checker.sandbox import LoadError

    if time.monotonic() > deadline:
        return _result(item, 0.0, "not established", INCOMPLETE)
    try:
        sub.restart()  # every item starts from a fresh process
        return _grade_item(ctx, sub, item, deadline)
    except LoadError as e:  # it loaded before: the machine, not the student
        return _result(item, 0.0, "not established", INCOMPLETE,
                       [f"restarting the submission failed: {e}"])


def _grade_item(ctx: _Context, sub: Any, item: Item, deadline: float) -> ItemResult:
    skip, avoid, error_clauses = _plan(ctx, item)
    result, seen = _search(ctx, sub, skip, avoid, error_clauses, deadline)
    if isinstance(result, _Hopeless):
        return _result(item, 0.0, "not established",
                       f"not tested: {seen['dropped']} traces in a row hit a problem another "
                       f"item grades ({seen.get('first', '')})", dropped=seen["dropped"])
    if isinstance(result, _ConstructorProblem):
        setup = ", ".join(f"{k}={v}" for k, v in result.setup.items())
        return _result(item, 0.0, "failed", f"{ctx.driver.decl.contract_class}({setup}): {result}")
    if result.chunks < seen["planned"] and not result.found:  # cut by the outer wall clock
        return _result(item, 0.0, "not established", INCOMPLETE)
    mine = [f for f in result.found if f.violation.property in item.properties
            or f.violation.kind in item.problems
            or (item.robustness and f.violation.kind in PROBLEM_KINDS)]
    if mine:
        lost = _lost(ctx, sub, item, mine[0], result, _counts(result, seen))
        assert lost is not None  # (no length limit)
        return lost
    return _held(ctx, item, result, seen)


def _counts(result: Any, seen: dict[str, Any]) -> dict[str, int]:
    """The ItemResult counts of a search: traces that checked at least one step,
    those that checked nothing, those cut short, calls screened."""
    dropped = seen["dropped"] + seen["short"]
    return dict(traces=result.stats.traces - dropped, dropped=dropped,
                cut=seen["cut"] - seen["short"], screened=seen.get("screened", 0))


def _held(ctx: _Context, item: Item, result: Any, seen: dict[str, Any]) -> ItemResult:
    """The verdict on an item its search found nothing against."""
    effort = ctx.assignment.effort
    counts = _counts(result, seen)
    checked = counts["traces"]
    if result.stats.traces == 0:
        return _result(item, 0.0, "not established", "not tested: the engine generated no "
                       "trace (is [effort] max_pages too small for the subsystem?)", **counts)
    if checked < effort.min_checked * effort.traces:
        why = seen.get("first", "")
        return _result(item, 0.0, "not established",
                       f"not tested: only {checked} of {result.stats.traces} traces ran a "
                       f"step before a problem another item grades" + (f" ({why})" if why else ""),
                       **counts)
    vacuous = [p for p in item.properties if p not in ctx.unseen and (
               result.stats.properties.get(p) is None or result.stats.properties[p].live == 0)]
    if vacuous:
        return _result(item, 0.0, "not established",
                       f"not tested: {', '.join(vacuous)} never applied in {checked} traces "
                       "(vacuous)", **counts)
    what = ", ".join(item.properties) or "no " + "/".join(item.problems)
    cut = f"; {counts['cut']} of them up to a problem another item grades" if counts["cut"] else ""
    return _result(item, item.points, "passed",
                   f"{what}: held in {checked} random traces ({effort.steps} steps each{cut})",
                   **counts)


def _lost(ctx: _Context, sub: Any, item: Item, found: Found, result: Any,
          counts: dict[str, int], longest: int | None = None) -> ItemResult | None:
    """The failed item with its minimal trace, replayed on a fresh instance: the
    confirming replay in a fresh process, as the student's replay runs; the
    minimiser's replays (up to Options.minimise) on fresh instances in that same
    process, as the search ran its traces (a new process only after a crash)."""
    replays = [0]

    def make_system(setup: Mapping[str, int]) -> Any:
        if replays[0] == 0 or not sub.alive:
            sub.restart()
        replays[0] += 1
        return ctx.driver.SubmissionSystem(sub, setup)

    options = Options(save_dir=None, spec_args=[], impl_arg=str(ctx.submission))
    try:
        cx = confirm("hypothesis", found.trace, found.violation, ctx.specs, make_system,
                     ctx.driver, options, ctx.student, seed=found.seed, skip=found.skipped)
    except SubmissionError:  # the constructor refused a setup the minimiser tried
        replays[0] = 0
        cx = confirm("hypothesis", found.trace, found.violation, ctx.specs, make_system,
                     ctx.driver, options, ctx.student, seed=found.seed, skip=found.skipped,
                     shrink=False)
    if longest is not None and len(cx.trace.steps) > longest:
        return None  # a trace the minimiser left long: the item's own search shrinks better
    v = cx.violation
    held = [p for p in item.properties if p != v.property
            and p not in {f.violation.property for f in result.found}]
    # partial credit for the properties that held; a problem (a crash, an illegal
    # choice) belongs to no single property: it voids the item
    score = item.points * len(held) / len(item.properties) if item.partial and \
        v.property in item.properties else 0.0
    status = "partial" if score > 0 else "failed"
    summary = f"{v.property}: {v.doc}" if v.doc else v.property
    lines = render_counterexample(cx, 1)[2:]
    lines = [x for x in lines if not x.lstrip().startswith(("reproduce:", "replay:"))]
    trace_file = replay = ""
    if ctx.out_dir is not None and item.visible and v.property not in ctx.hidden:
        trace_file = f"{slug(item.name)}.json"
        data = {"trace": cx.trace.to_json(), "property": v.property,
                "specs": [Path(p).name for p in map(str, ctx.assignment.specs)]}
        write_atomic(ctx.out_dir, trace_file, data)
        specs = [str(p.name) for p in ctx.assignment.specs if "spec/lib" not in str(p)]
        replay = shlex.join(["mmcheck", "replay", trace_file, *specs,
                             "--impl", ctx.submission.name])
    return _result(item, score, status, summary, [clean(x, 300) for x in lines],
                   replay=replay, trace_file=trace_file, **counts)
