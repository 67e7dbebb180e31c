"""What a run showed, property by property, and the exit code that says it.

One result type for every engine and every command. Each selected property
ends in exactly one `Status`, decided in this order of precedence (the first
that applies wins, as in CrossHair's message kinds):

1. VIOLATED      a counterexample names it (reproduced or not: the note says);
   NOT_OBSERVABLE  the target cannot show it (a white-box property on a
                 submission, `Report.not_observable`): it does not count
                 against the result, and is not a pass either;
2. HELD          at least one engine checked it non-vacuously and finished the
                 work it was asked for: a concrete run (Hypothesis, Z3-chosen
                 traces, replay) evaluated it at least once with a live atom, or
                 Z3 proved it, or Z3's BMC cleared it to depth >= 1 (>= 0 for an
                 invariant);
3. VACUOUS       a finished concrete run evaluated it, but never non-vacuously;
4. INCONCLUSIVE  nothing above: no engine could check it, or none finished (the
                 reasons, one per engine, say why: no symbolic encoding, not
                 compiled to Z3, zero traces, never evaluated, interrupted, an
                 evaluation cut at the time limit, the time limit reached before
                 the work asked for, Z3 unknown, an engine error).

A report's exit code follows from its properties and runs, again by precedence:
VIOLATION (1) if any counterexample; else ERROR (2) if an engine failed; else
INCONCLUSIVE (3) if any property is INCONCLUSIVE, or VACUOUS without
`--allow-vacuous`, or a run was interrupted, or no property HELD (every one
not observable: nothing was checked); else OK (0). Several reports (a
library run) combine the same way: a violation anywhere wins, then an error,
then inconclusive; OK only when every report is OK.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Enum, IntEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mmcheck.checker.report import EngineRun, Report


class ExitCode(IntEnum):
    """The process's exit code; the only definition in mmcheck."""

    OK = 0  # every selected property checked non-vacuously by some engine, and held
    VIOLATION = 1  # a counterexample was found (also when interrupted after finding it)
    ERROR = 2  # usage, spec or submission error, or an engine failure
    INCONCLUSIVE = 3  # something selected was not checked, or not enough


# Which code wins when several apply (a library run, a report with several runs).
PRECEDENCE = (ExitCode.VIOLATION, ExitCode.ERROR, ExitCode.INCONCLUSIVE, ExitCode.OK)


def combine(codes: Iterable[ExitCode | int]) -> ExitCode:
    """The code of several results: the first of PRECEDENCE that any of them has.
    No result at all checked nothing: INCONCLUSIVE."""
    have = {ExitCode(c) for c in codes}
    if not have:
        return ExitCode.INCONCLUSIVE
    return next(c for c in PRECEDENCE if c in have)


class Status(str, Enum):
    """A property's outcome, in order of precedence."""

    VIOLATED = "violated"
    NOT_OBSERVABLE = "not-observable"
    HELD = "held"
    VACUOUS = "vacuous"
    INCONCLUSIVE = "inconclusive"


@dataclass
class PropertyOutcome:
    """One property's outcome with the evidence behind it."""

    spec: str
    name: str
    line: int
    status: Status
    why: list[str] = field(default_factory=list)  # one line per engine that did not hold it
    checks: int = 0
    live: int = 0
    seconds: float = 0.0  # evaluation time, all concrete runs together
    held_by: list[str] = field(default_factory=list)  # engines whose run held it

    def to_json(self) -> dict[str, Any]:
        return {
            "outcome": self.status.value,
            "why": list(self.why),
            "held_by": list(self.held_by),
            "seconds": round(self.seconds, 3),
        }


# EngineRun.verdict values whose run did all the work it was asked for.
FINISHED = {"violated", "holds", "proved", "bounded"}
_DEPTH = re.compile(r"holds to depth (-?\d+)")


def _concrete(run: EngineRun, name: str) -> tuple[Status | None, str]:
    """What a concrete run (traces evaluated by the Monitor) showed about `name`."""
    st = run.stats.properties.get(name) if run.stats is not None else None
    checks, live = (st.checks, st.live) if st else (0, 0)
    cut = st.cut if st else 0
    if cut:
        return None, f"{cut} evaluation(s) cut at the time limit (--budget)"
    if run.verdict not in FINISHED:
        return None, _unfinished(run)
    if live:
        return Status.HELD, ""
    if checks:
        return Status.VACUOUS, f"vacuous: evaluated {checks:,} time(s), never non-vacuously"
    if run.stats is None or run.stats.traces == 0:
        return None, "zero traces were run"
    return None, f"never evaluated in {run.stats.traces:,} trace(s) (its operation never ran)"


def _unfinished(run: EngineRun) -> str:
    if run.verdict == "error":
        return f"the engine failed: {run.summary}"
    if run.verdict == "interrupted":
        return "interrupted before the work asked for was done"
    if run.verdict == "budget":
        return f"the time limit (--budget) came first: {run.summary}"
    return run.summary


def _symbolic(run: EngineRun, name: str, is_action: bool) -> tuple[Status | None, str]:
    """What a Z3 run on the reference encoding showed about `name`."""
    if run.verdict == "skipped":
        return None, run.summary
    said = run.property_status.get(name, "")
    if said.startswith("proved"):
        return Status.HELD, ""
    m = _DEPTH.match(said)
    if m and run.verdict in FINISHED and int(m.group(1)) >= (1 if is_action else 0):
        return Status.HELD, ""
    if said:
        return None, said
    return None, _unfinished(run)


def judge(report: Report) -> list[PropertyOutcome]:
    """Every selected property's outcome, by the precedence in the module docstring."""
    violated = {c.violation.property for c in report.counterexamples}
    out = []
    for spec, name, line in report.properties:
        st = report.stats.properties.get(name)
        po = PropertyOutcome(spec, name, line, Status.INCONCLUSIVE)
        if st is not None:
            po.checks, po.live, po.seconds = st.checks, st.live, st.seconds
        statuses = []
        for run in report.runs:
            if run.property_status or run.verdict == "skipped":
                status, why = _symbolic(run, name, report.kinds.get(name) == "action")
            else:
                status, why = _concrete(run, name)
            statuses.append(status)
            if status is Status.HELD:
                po.held_by.append(run.engine)
            elif why:
                po.why.append(f"{run.engine}: {why}")
        if not report.runs:
            po.why.append("no engine ran")
        if name in violated:
            po.status = Status.VIOLATED
        elif name in report.not_observable:
            po.status = Status.NOT_OBSERVABLE
            po.why = [report.not_observable[name]]
        elif Status.HELD in statuses:
            po.status = Status.HELD
            po.why = []
        elif Status.VACUOUS in statuses:
            po.status = Status.VACUOUS
        out.append(po)
    return out


def report_code(report: Report) -> ExitCode:
    """The exit code of one report (see the module docstring)."""
    if report.counterexamples:
        return ExitCode.VIOLATION
    if any(r.verdict == "error" for r in report.runs):
        return ExitCode.ERROR
    if any(r.verdict in ("interrupted", "budget", "diverged") for r in report.runs):
        return ExitCode.INCONCLUSIVE
    outcomes = judge(report)
    bad = {Status.INCONCLUSIVE} | (set() if report.allow_vacuous else {Status.VACUOUS})
    if any(p.status in bad for p in outcomes):
        return ExitCode.INCONCLUSIVE
    # Every selected property not observable: nothing was checked, so no pass.
    checked = {Status.HELD} | ({Status.VACUOUS} if report.allow_vacuous else set())
    if outcomes and not any(p.status in checked for p in outcomes):
        return ExitCode.INCONCLUSIVE
    return ExitCode.OK
