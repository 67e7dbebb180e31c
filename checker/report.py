"""One renderer for both engines: text for people, JSON for machines.

The JSON field names are stable and documented in docs/json-format.md; the text
is what a student reads first, so it leads with the property and the file:line,
then the shortest trace, why it fails, the state, and how to run it again.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mmcheck.checker import decode
from mmcheck.checker.coverage import Coverage
from mmcheck.checker.outcome import ExitCode, PropertyOutcome, Status, combine, judge, report_code
from mmcheck.checker.trace import RunStats, Trace, Violation

from mmcheck import __version__

REPORT_FORMAT = 1


# An engine's detail line that is only timings (left out of the text with --no-timing).
TIMING_DETAIL = "time per depth: "


@dataclass
class Counterexample:
    """A violation with its trace, confirmed (or not) by replaying it on a fresh system."""

    engine: str
    violation: Violation
    trace: Trace
    state: list[str]
    confirmed: bool
    reproduce: str
    replay: str = ""
    seed: int | None = None
    note: str = ""
    found_steps: int | None = None  # the engine's trace, before the trace minimiser
    # snapshots before the first step and after each step of `trace` (the replay's),
    # for the formats that draw every step (html, itf); not part of the JSON report
    states: tuple[Mapping[str, Any], ...] = field(default=(), repr=False)
    # a submission's trace replayed again in a new worker process (as `mmcheck
    # replay` runs it): whether that broke the same property; None: not tried
    fresh_process: bool | None = None

    def to_json(self) -> dict[str, Any]:
        v = self.violation
        return {
            "engine": self.engine,
            "property": v.property,
            "kind": v.kind,
            "spec": v.spec_path,
            "line": v.line,
            "description": v.doc,
            "step": v.step,
            "explanation": list(v.explanation),
            "trace": self.trace.to_json(),
            "state": list(self.state),
            "confirmed": self.confirmed,
            "seed": self.seed,
            "reproduce": self.reproduce,
            "replay": self.replay,
            "note": self.note,
            "found_steps": self.found_steps,
            "fresh_process": self.fresh_process,
        }


@dataclass
class EngineRun:
    """What one engine did: its honest one-line result and its counts."""

    engine: str
    verdict: str  # "violated", "holds", "proved", "bounded", "unknown", "interrupted", "skipped",
    # "diverged" (a replayed trace the target no longer follows)
    summary: str
    seed: int | None = None
    elapsed: float = 0.0
    stats: RunStats | None = None
    details: list[str] = field(default_factory=list)
    property_status: dict[str, str] = field(default_factory=dict)  # name -> what this engine showed

    def to_json(self) -> dict[str, Any]:
        return {
            "engine": self.engine,
            "property_status": dict(self.property_status),
            "verdict": self.verdict,
            "summary": self.summary,
            "seed": self.seed,
            "elapsed_s": round(self.elapsed, 3),
            "traces": self.stats.traces if self.stats else 0,
            "steps": self.stats.steps if self.stats else 0,
            "details": list(self.details),
        }


@dataclass(frozen=True)
class StepOutput:
    """What a submission printed while one step of a replay ran."""

    step: int
    call: str
    stdout: str
    stderr: str

    def to_json(self) -> dict[str, Any]:
        return {"step": self.step, "call": self.call, "stdout": self.stdout, "stderr": self.stderr}


@dataclass
class Report:
    target: str  # "reference model" or the submission's path
    subsystem: str
    specs: list[str]
    runs: list[EngineRun] = field(default_factory=list)
    counterexamples: list[Counterexample] = field(default_factory=list)
    stats: RunStats = field(default_factory=RunStats)
    properties: list[tuple[str, str, int]] = field(default_factory=list)  # (spec, name, line)
    notes: list[str] = field(default_factory=list)
    step_output: list[StepOutput] = field(default_factory=list)  # replay of a submission
    kinds: dict[str, str] = field(default_factory=dict)  # property -> "invariant" | "action"
    allow_vacuous: bool = False  # --allow-vacuous: a VACUOUS property does not make it 3
    # property -> why this submission cannot show it (checker/observable.py): not
    # counted either way
    not_observable: dict[str, str] = field(default_factory=dict)

    @property
    def exit_code(self) -> ExitCode:
        return report_code(self)

    def outcomes(self) -> list[PropertyOutcome]:
        return judge(self)

    def to_json(self) -> dict[str, Any]:
        props = []
        for po in self.outcomes():
            props.append(
                {
                    "spec": po.spec,
                    "property": po.name,
                    "line": po.line,
                    "checks": po.checks,
                    "non_vacuous": po.live,
                    "violated": po.status is Status.VIOLATED,
                    "observable": po.name not in self.not_observable,
                    "not_observable": self.not_observable.get(po.name),
                    "z3": next(
                        (r.property_status.get(po.name) for r in self.runs if r.engine == "z3"),
                        None,
                    ),
                    **po.to_json(),
                }
            )
        return {
            "format": REPORT_FORMAT,
            "mmcheck": __version__,
            "target": self.target,
            "subsystem": self.subsystem,
            "specs": list(self.specs),
            "engines": [r.to_json() for r in self.runs],
            "counterexamples": [c.to_json() for c in self.counterexamples],
            "properties": props,
            "operations": dict(sorted(self.stats.ops.items())),
            "coverage": Coverage(self.stats.coverage).to_json(self.subsystem),
            "notes": list(self.notes),
            "step_output": [o.to_json() for o in self.step_output],
            "exit_code": int(self.exit_code),
        }


def render_json(reports: Sequence[Report]) -> str:
    return json.dumps(
        {
            "format": REPORT_FORMAT,
            "mmcheck": __version__,
            "reports": [r.to_json() for r in reports],
            "exit_code": int(combine(r.exit_code for r in reports)),
        },
        indent=2,
        sort_keys=False,
    )


def step_texts(trace: Trace) -> list[tuple[str, str]]:
    """Each step as every format prints it: the call and its outcome, numbers decoded."""
    sub = trace.subsystem
    return [
        (
            decode.call_text(sub, s.op, s.args),
            f"raised {s.raised}" if s.raised is not None
            else f"-> {decode.result_text(sub, s.op, s.result)}",
        )
        for s in trace.steps
    ]


def confirmation_text(c: Counterexample) -> str:
    """What the confirming replays showed, in the words of the report."""
    if not c.confirmed:
        return "replay did NOT reproduce it"
    if c.fresh_process is None:
        return "replayed on a fresh instance: reproduced"
    if c.fresh_process:
        return "reproduced in a fresh process"
    return ("reproduced on a fresh instance in the same process; does not reproduce in a "
            "fresh process: the submission shares state between instances")


def render_counterexample(c: Counterexample, number: int) -> list[str]:
    v = c.violation
    where = f"{v.spec_path}:{v.line}" if v.spec_path else "the contract"
    head = f"Counterexample {number}: {v.property} ({where})"
    out = [head, "=" * len(head)]
    if v.doc:
        out.append(f"  {v.doc}")
    how = f"found by {c.engine}"
    if c.seed is not None and c.engine == "hypothesis":
        how += f" (seed {c.seed})"
    status = confirmation_text(c)
    out.append(f"  {how}; {len(c.trace.steps)} step(s); {status}")
    if c.note:
        out.append(f"  note: {c.note}")
    out.append("")
    sub = c.trace.subsystem
    out.append(f"  {sub} setup: {decode.setup_text(sub, c.trace.setup)}")
    if v.step < 0:
        out.append("  the initial state already breaks it")
    texts = step_texts(c.trace)
    width = max((len(call) for call, _ in texts), default=0)
    for i, (call, outcome) in enumerate(texts):
        mark = "   <- here" if i == v.step else ""
        out.append(f"  {i:>4}  {call:<{width}}  {outcome}{mark}")
    out.append("")
    out.append("  why:")
    out.extend(f"    {line}" for line in v.explanation)
    if c.state:
        out.append("")
        if v.step < 0:
            label = "at the start:"
        elif v.kind in ("crash", "timeout", "protocol", "refinement"):
            label = f"before step {v.step} (the step that went wrong):"
        else:
            label = f"after step {v.step}:"
        out.append(f"  state {label}")
        out.extend(f"    {line}" for line in c.state)
    out.append("")
    out.append(f"  reproduce: {c.reproduce}")
    if c.replay:
        out.append(f"  replay:    {c.replay}")
    return out


def render_text(reports: Sequence[Report], timing: bool = True) -> str:
    out: list[str] = []
    for r in reports:
        out.append(f"mmcheck {__version__}: {r.subsystem} specs against {r.target}")
        for spec in r.specs:
            out.append(f"  spec: {spec}")
        out.append("")
        for n, c in enumerate(r.counterexamples, 1):
            out.extend(render_counterexample(c, n))
            out.append("")
        out.extend(_property_table(r, timing))
        out.append("")
        if r.stats.ops:
            ops = ", ".join(f"{op} {n:,}" for op, n in sorted(r.stats.ops.items()))
            out.append(f"operations run: {ops}")
        if r.stats.coverage:
            out.extend(Coverage(r.stats.coverage).summary(r.subsystem))
        out.extend(_step_output(r))
        for note in r.notes:
            out.append(f"note: {note}")
        for run in r.runs:
            t = f" [{run.elapsed:.1f} s]" if timing else ""
            out.append(f"{run.engine}: {run.summary}{t}")
            out.extend(f"  {d}" for d in run.details
                       if timing or not d.startswith(TIMING_DETAIL))
        out.append(_result_line(r))
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def _step_output(r: Report) -> list[str]:
    if not r.step_output:
        return []
    out = [f"what {r.target} printed, step by step:"]
    for o in r.step_output:
        out.append(f"  {o.step:>4}  {o.call}")
        for name, text in (("stdout", o.stdout), ("stderr", o.stderr)):
            out.extend(f"        {name}: {line}" for line in text.rstrip("\n").splitlines())
    out.append("")
    return out


def _result_line(r: Report) -> str:
    """The last line of a report: its exit code in words."""
    code = r.exit_code
    if code is ExitCode.VIOLATION:
        broken = ", ".join(
            dict.fromkeys(
                f"{c.violation.property} ({c.violation.spec_path}:{c.violation.line})"
                if c.violation.spec_path
                else c.violation.property
                for c in r.counterexamples
            )
        )
        return f"result: VIOLATED: {broken}"
    if code is ExitCode.ERROR:
        failed = ", ".join(
            f"{run.engine}: {run.summary}" for run in r.runs if run.verdict == "error"
        )
        return f"result: ERROR: an engine failed ({failed})"
    if code is ExitCode.INCONCLUSIVE:
        outcomes = r.outcomes()
        n = sum(p.status in (Status.VACUOUS, Status.INCONCLUSIVE) for p in outcomes)
        stopped = [run for run in r.runs if run.verdict in ("interrupted", "budget")]
        diverged = [run for run in r.runs if run.verdict == "diverged"]
        if diverged:
            why = f"{diverged[0].summary[len('inconclusive: '):]}, no property broke before"
        elif stopped:
            how = "was interrupted" if stopped[0].verdict == "interrupted" else "ran out of time"
            why = f"{stopped[0].engine} {how}"
        elif n:
            why = f"{n} of {len(outcomes)} properties not checked non-vacuously"
        else:
            why = "no property could be checked on this target (all not observable)"
        return f"result: INCONCLUSIVE: {why} (see above)"
    return "result: OK"


@dataclass(frozen=True)
class PropertyRow:
    """One property of a report as every format shows it: its status and its counts."""

    spec: str
    name: str
    line: int
    status: str  # FAIL | ok | n/a (not observable) | VACUOUS | unchecked (outcome.py)
    checks: int
    live: int
    z3: str
    why: tuple[str, ...] = ()  # for VACUOUS and unchecked: why, one line per engine
    seconds: float = 0.0  # evaluation time


# How each outcome reads in a report (every format).
LABELS = {
    Status.VIOLATED: "FAIL",
    Status.HELD: "ok",
    Status.NOT_OBSERVABLE: "n/a",
    Status.VACUOUS: "VACUOUS",
    Status.INCONCLUSIVE: "unchecked",
}


def property_rows(r: Report) -> list[PropertyRow]:
    """Each property of `r` in file order with its outcome (checker/outcome.py)."""
    z3run = next((run for run in r.runs if run.engine == "z3"), None)
    return [
        PropertyRow(
            po.spec, po.name, po.line, LABELS[po.status], po.checks, po.live,
            z3run.property_status.get(po.name, "") if z3run is not None else "",
            tuple(po.why), po.seconds,
        )
        for po in r.outcomes()
    ]


def _property_table(r: Report, timing: bool = True) -> list[str]:
    """One row per property: its outcome, evaluations / non-vacuous, line, time, Z3's word;
    then, grouped by reason, why the properties that did not hold were not checked."""
    if not r.properties:
        return []
    width = max(len(name) for _, name, _ in r.properties)
    z3run = next((run for run in r.runs if run.engine == "z3"), None)
    concrete = any(run.engine != "z3" for run in r.runs) or bool(r.stats.properties)
    head = "properties"
    if concrete:
        head += " (evaluations / non-vacuous)"
    if z3run is not None:
        head += " [z3]" if concrete else " (z3)"
    out = [head + ":"]
    reasons: dict[tuple[str, ...], list[str]] = {}
    rows = property_rows(r)
    for row in rows:
        counts = f"  {row.checks:>9,} / {row.live:<9,}" if concrete else ""
        secs = f"  {row.seconds:7.2f} s" if timing and concrete else ""
        z3col = f"  [{row.z3}]" if row.z3 and concrete else (f"  {row.z3}" if row.z3 else "")
        out.append(f"  {row.status:<9} {row.name:<{width}}{counts}  line {row.line}{secs}{z3col}")
        if row.status in ("VACUOUS", "unchecked"):
            reasons.setdefault(row.why, []).append(row.name)
    if reasons:
        out.append("  not checked, or not enough (why, and which properties):")
        for why, names in reasons.items():
            out.append(f"    {'; '.join(why) or 'no engine checked them'}:")
            out.extend(textwrap.wrap(", ".join(names), 92, initial_indent=" " * 6,
                                     subsequent_indent=" " * 6, break_on_hyphens=False))
    if r.not_observable:
        out.append(
            f"  n/a: {len(r.not_observable)} propert{'y' if len(r.not_observable) == 1 else 'ies'}"
            " not observable on this submission (white-box, or reading what it does not"
            " show; docs/contract.md, \"Verdicts on white-box properties\")"
        )
    if any(row.status == "VACUOUS" for row in rows):
        out.append(
            "  warning: VACUOUS properties were evaluated but never exercised (an empty "
            "quantifier, a premise that never held): they proved nothing"
            + (" (--allow-vacuous: not counted against the result)" if r.allow_vacuous else "")
        )
    return out
