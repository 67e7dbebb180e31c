"""Specs + a target + engines -> Reports. The CLI and the tests call this.

A target is the reference model of a subsystem, or a submission loaded in its
sandbox. Every counterexample an engine finds is replayed on a fresh instance
before it is reported, and the report says whether the replay reproduced it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from mmcheck.checker import subsystems
from mmcheck.checker.confirm import confirm
from mmcheck.checker.evaluate import CompiledSpec
from mmcheck.checker.hypothesis_engine import run_hypothesis
from mmcheck.checker.observable import not_observable, observable_part
from mmcheck.checker.options import Options
from mmcheck.checker.progress import ProgressEvent
from mmcheck.checker.report import EngineRun, Report
from mmcheck.checker.subsystems import registry
from mmcheck.checker.subsystems.registry import Driver
from mmcheck.checker.systems import System
from mmcheck.checker.trace import RunStats, Trace
from mmcheck.spec.loader import CheckedSpec


class UsageError(Exception):
    """The command line asks for something that cannot be done; the message says what to do."""


def property_rows(specs: Sequence[CompiledSpec | CheckedSpec]) -> list[tuple[str, str, int]]:
    return [(c.spec.path, p.name, p.span.line) for c in specs for p in c.spec.properties]


def check(
    checked: Sequence[CheckedSpec],
    subsystem: str,
    make_system: Callable[[Mapping[str, int]], System],
    target_name: str,
    options: Options,
    is_submission: bool,
    hidden: frozenset[str] = frozenset(),
) -> Report:
    """Check `checked` on the systems `make_system` makes. On a submission,
    properties it cannot show (checker/observable.py: `[white-box]` ones, and
    those reading a name in `hidden`) are reported as not observable, unchecked."""
    driver = subsystems.driver(subsystem)
    if driver is None:
        raise UsageError(f"no engine can drive the {subsystem} subsystem yet")
    rows = property_rows(checked)
    skip: dict[str, str] = {}
    if is_submission:
        for c in checked:
            skip.update(not_observable(c, hidden))
    specs = [CompiledSpec(observable_part(c, skip)) for c in checked]
    report = Report(
        target_name, subsystem, [c.path for c in checked], properties=rows, not_observable=skip
    )
    if "hypothesis" in options.engines:
        _run_hypothesis(report, specs, driver, make_system, options, target_name)
        _tell_done(report, "hypothesis", options)
    if "z3" in options.engines:
        from mmcheck.checker.z3_engine import run_z3_for_report

        run_z3_for_report(report, specs, driver, make_system, options, target_name, is_submission)
        _tell_done(report, "z3", options)
    return report


def _tell_done(report: Report, engine: str, options: Options) -> None:
    """The engine's last progress event: what its run counted, marked done."""
    run = next((r for r in report.runs if r.engine == engine), None)
    if options.progress is None or run is None:
        return
    stats = run.stats or RunStats()
    exercised = sum(1 for st in stats.properties.values() if st.live)
    violations = sum(1 for c in report.counterexamples if c.engine == engine)
    options.progress(ProgressEvent(engine, report.target, report.subsystem, stats.traces,
                                   stats.steps, exercised, len(report.properties), violations,
                                   run.elapsed, options.budget, done=True))


def _run_hypothesis(
    report: Report,
    specs: list[CompiledSpec],
    driver: Driver,
    make_system: Callable[[Mapping[str, int]], System],
    options: Options,
    target_name: str,
) -> None:
    result = run_hypothesis(
        specs, driver, make_system, options, on_progress=_progress_of(report, "hypothesis", options)
    )
    report.stats.merge(result.stats)
    for f in result.found:
        report.counterexamples.append(
            confirm(
                "hypothesis",
                f.trace,
                f.violation,
                specs,
                make_system,
                driver,
                options,
                target_name,
                seed=f.seed,
                skip=f.skipped,
            )
        )
    verdict = "violated" if result.found else ("interrupted" if result.interrupted else "holds")
    details = []
    if result.stopped_early:
        details.append(result.stopped_early)
    details.append(
        f"seeds {options.seed}..{result.last_seed}, {result.chunks} chunk(s) of "
        f"{options.traces_per_chunk} traces"
    )
    report.runs.append(
        EngineRun(
            "hypothesis",
            verdict,
            result.summary,
            options.seed,
            result.elapsed,
            result.stats,
            details,
        )
    )


def _progress_of(
    report: Report, engine: str, options: Options
) -> Callable[[RunStats, int, float], None] | None:
    """The engine's progress callback: its counts as a ProgressEvent to options.progress."""
    sink = options.progress
    if sink is None:
        return None

    def tell(stats: RunStats, violations: int, elapsed: float) -> None:
        exercised = sum(1 for st in stats.properties.values() if st.live)
        sink(ProgressEvent(engine, report.target, report.subsystem, stats.traces, stats.steps,
                           exercised, len(report.properties), violations, elapsed,
                           options.budget))

    return tell


def load_saved_trace(path: Path) -> tuple[dict[str, Any], Trace, str | None]:
    """The saved file's object, its trace, and the property it was saved for."""
    try:
        data: Any = json.loads(path.read_text())
        if not isinstance(data, dict):
            raise ValueError("the top level is not an object")
        trace = Trace.from_json(data["trace"] if "trace" in data else data)
        return (data if "trace" in data else {}), trace, data.get("property")
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        raise UsageError(f"{path}: not a trace file ({err})") from None


def check_trace_fits(trace: Trace, path: str) -> None:
    """UsageError unless every step names an operation of the subsystem with its arity."""
    vocab = registry.vocabulary(trace.subsystem)
    if vocab is None:
        return
    for i, step in enumerate(trace.steps):
        op = vocab.operation(step.op)
        if op is None:
            known = ", ".join(o.name for o in vocab.operations)
            raise UsageError(
                f"{path}: step {i} calls '{step.op}', which the {trace.subsystem} "
                f"subsystem does not have (it has {known})"
            )
        if len(step.args) != len(op.params):
            raise UsageError(
                f"{path}: step {i}: {step.op} takes {len(op.params)} argument(s), "
                f"the trace gives {len(step.args)}"
            )
