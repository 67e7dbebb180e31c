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

from mmcheck.checker import interrupt, subsystems
from mmcheck.checker.confirm import confirm
from mmcheck.checker.evaluate import CompiledSpec
from mmcheck.checker.hypothesis_engine import run_hypothesis
from mmcheck.checker.observable import not_observable, observable_part
from mmcheck.checker.options import Options
from mmcheck.checker.progress import ProgressEvent
from mmcheck.checker.report import EngineRun, Report
from mmcheck.checker.subsystems import registry
from mmcheck.checker.subsystems.registry import Driver
from mmcheck.checker.systems import SubmissionError, System
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
    """Check `checked` on the systems `make_system` makes, each selected engine in turn.
    On a submission, properties it cannot show (checker/observable.py: `[white-box]`
    ones, and those reading a name in `hidden`) are reported as not observable,
    unchecked. An engine that fails is reported as such (never as a pass); once a stop
    is requested (interrupt.py) the engines not yet run say so."""
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
    report.kinds = {a.name: "action" for c in checked for a in c.spec.actions}
    report.kinds.update({i.name: "invariant" for c in checked for i in c.spec.invariants})
    report.allow_vacuous = options.allow_vacuous
    for engine in options.engines:
        if interrupt.requested():
            report.runs.append(not_started(engine))
            continue
        try:
            if engine == "hypothesis":
                _run_hypothesis(report, specs, driver, make_system, options, target_name)
            elif engine == "z3":
                from mmcheck.checker.z3_engine import run_z3_for_report

                run_z3_for_report(
                    report, specs, driver, make_system, options, target_name, is_submission
                )
            _tell_done(report, engine, options)
        except (UsageError, SubmissionError):
            raise  # the user's or the submission's error: exit 2 with its message
        except Exception as err:  # noqa: BLE001 - an engine failure is a result, never a pass
            report.runs.append(engine_failed(engine, err))
    if _hypothesis_alongside(report, options, is_submission):
        try:
            _run_hypothesis(report, specs, driver, make_system, options, target_name)
            report.runs[-1].details.insert(0, ALONGSIDE)
        except SubmissionError:
            raise
        except Exception as err:  # noqa: BLE001
            report.runs.append(engine_failed("hypothesis", err))
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
                                   run.elapsed, options.budget or 0.0, done=True))


ALONGSIDE = (
    "run alongside z3: on a submission z3 only replays traces chosen on the reference "
    "encoding, and it found nothing, so the concrete engine's random traces run too"
)


def _hypothesis_alongside(report: Report, options: Options, is_submission: bool) -> bool:
    """Z3 on a submission never reports less than the concrete engine would: when its
    solver-chosen traces found nothing, Hypothesis runs with the same work budget."""
    return (
        is_submission
        and "z3" in options.engines
        and "hypothesis" not in options.engines
        and not report.counterexamples
        and not interrupt.requested()
    )


def not_started(engine: str) -> EngineRun:
    """The run of an engine that a stop (interrupt or time limit) kept from starting."""
    why = interrupt.reason() or interrupt.OUT_OF_TIME
    verdict = "interrupted" if why == interrupt.INTERRUPTED else "budget"
    what = "interrupted" if why == interrupt.INTERRUPTED else "the time limit (--budget) came"
    return EngineRun(engine, verdict, f"not run: {what} before it started")


def engine_failed(engine: str, err: BaseException) -> EngineRun:
    """An engine that raised: what it raised and where, for the report and the bug report."""
    import traceback

    frames = traceback.extract_tb(err.__traceback__)
    ours = [f for f in frames if "site-packages" not in f.filename] or frames
    where = [f"{f.filename}:{f.lineno} in {f.name}" for f in ours[-3:]]
    return EngineRun(
        engine,
        "error",
        f"{type(err).__name__}: {err}",
        details=["this is a bug in mmcheck (or its generator for this setup); innermost frames:",
                 *where],
    )


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
        with interrupt.grace(interrupt.CONFIRM_GRACE):
            cx = confirm(
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
                traces=f.through,
            )
        report.counterexamples.append(cx)
    if result.stopped is not None:
        verdict = "interrupted" if result.stopped == interrupt.INTERRUPTED else "budget"
    else:
        verdict = "violated" if result.found else "holds"
    details = []
    if result.stopped_early:
        details.append(result.stopped_early)
    details.append(
        f"seeds {options.seed}..{result.last_seed}: {result.chunks} chunk(s) of at most "
        f"{options.traces_per_chunk} traces, {options.traces} asked (--traces)"
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
                           options.budget or 0.0))

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
