"""`mmcheck replay`: a saved trace run again on the reference model or a submission.

What a student debugging with it needs, beyond "violated again":

- the spec files the trace was recorded with (the saved file's `specs`) are
  used unless others are named, so a trace of a custom spec replays against it;
- when the target's result at some step differs from the trace's (a fixed or
  changed submission), the report says which step and how: after it, the trace
  no longer describes what the target does, so a clean run proves nothing
  (exit 3, inconclusive) unless a property broke before that;
- what the submission printed on stdout and stderr during each step is shown
  with that step, since print() is how students debug.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mmcheck.checker.confirm import confirm, replay
from mmcheck.checker.options import Options, reproduce
from mmcheck.checker.report import EngineRun, Report, StepOutput
from mmcheck.checker.run import UsageError
from mmcheck.checker.systems import Problem, System
from mmcheck.checker.trace import Step

if TYPE_CHECKING:
    from mmcheck.checker.subsystems.registry import Driver


@dataclass
class _Watch:
    """What the replay saw besides properties: the first divergence, output per step."""

    diverged: str = ""
    outputs: list[StepOutput] = field(default_factory=list)


class _Watched:
    """A system that notes each step's output (a submission's) and where results differ."""

    def __init__(self, system: System, sub: Any, watch: _Watch) -> None:
        self.system, self.sub, self.watch = system, sub, watch
        self.index = 0

    def apply(
        self, op: str, args: tuple[int, ...], expect: Step | None = None
    ) -> tuple[Step, Problem | None]:
        before = self.sub.output_bytes if self.sub is not None else (0, 0)
        step, problem = self.system.apply(op, args, expect)
        if self.sub is not None:
            out, err = _new_output(self.sub, before)
            if out or err:
                self.watch.outputs.append(StepOutput(self.index, step.call_text(), out, err))
        if (
            expect is not None
            and not self.watch.diverged
            and (step.result, step.raised) != (expect.result, expect.raised)
        ):
            self.watch.diverged = (
                f"step {self.index}: {expect.call_text()} {step.outcome_text()} now, "
                f"the trace says {expect.outcome_text()}"
            )
        self.index += 1
        return step, problem

    def snapshot(self) -> Mapping[str, Any]:
        return self.system.snapshot()

    def close(self) -> None:
        self.system.close()


def _new_output(sub: Any, before: tuple[int, int]) -> tuple[str, str]:
    """What the submission wrote since `before` (its byte counts then)."""
    after = sub.output_bytes
    texts = []
    for text, old, new in ((sub.stdout, before[0], after[0]), (sub.stderr, before[1], after[1])):
        grown = new - old
        data = text.encode()[-grown:] if grown > 0 else b""
        texts.append(data.decode(errors="replace"))
    return texts[0], texts[1]


def recorded_specs(saved: Mapping[str, Any], trace_path: str) -> list[str]:
    """The spec files a saved trace was recorded with; UsageError if one is gone."""
    specs = [str(s) for s in saved.get("specs") or []]
    missing = [s for s in specs if not Path(s).exists()]
    if missing:
        raise UsageError(
            f"{trace_path} was recorded with {', '.join(missing)}, which is not there "
            "(run replay from the directory you ran check in, or name the spec files)"
        )
    return specs


def replay_report(
    trace_path: str,
    spec_args: Sequence[str],
    impl: str | None,
    timeout: float,
    driver: Driver,
    trace: Any,  # Trace
    prop: str | None,
    specs: list[Any],  # list[CompiledSpec]
    spec_files: list[str],
    open_submission: Callable[[str, float], Any],
) -> tuple[Report, str]:
    """Run the trace; the report and the divergence ("" if the target followed it)."""
    options = Options(
        spec_args=list(spec_args), impl_arg=impl, save_dir=None, timeout_per_call=timeout
    )
    sub = open_submission(impl, timeout) if impl else None
    watch = _Watch()
    try:
        make_system = _system_maker(driver, sub, watch)
        target = impl or "the reference model"
        names = {p.name for c in specs for p in c.spec.properties}
        skip = frozenset(names - {prop}) if prop else frozenset()
        result = replay(trace, specs, make_system, skip=skip)
        diverged = watch.diverged
        outputs = list(watch.outputs)
        report = Report(target, trace.subsystem, spec_files)
        report.stats.merge(result.stats)
        if result.violation is not None:
            cx = confirm(
                "replay", trace, result.violation, specs, make_system, driver, options, target,
                skip=skip, shrink=False,  # a replay shows the trace it was given
            )
            cx.confirmed = result.violation.property == (prop or result.violation.property)
            cx.reproduce = reproduce(options, "replay", trace=trace_path)
            cx.replay = ""
            report.counterexamples.append(cx)
            if diverged:
                report.notes.append(f"the target's results differ from the trace's from {diverged}")
            summary = "the trace reproduces " + result.violation.property
        elif diverged:
            report.notes.append(
                f"the trace no longer applies to {target}: {diverged}; no property broke "
                "before that step, and what follows it is not what the trace recorded"
            )
            summary = f"inconclusive: the trace no longer applies from {diverged}"
        else:
            summary = "the trace ran without a violation"
        report.step_output = outputs
        verdict = "violated" if result.violation else ("diverged" if diverged else "holds")
        report.runs.append(EngineRun("replay", verdict, summary, stats=result.stats))
    finally:
        if sub is not None:
            sub.close()
    return report, ("" if result.violation is not None else diverged)


def _system_maker(
    driver: Driver, sub: Any, watch: _Watch
) -> Callable[[Mapping[str, int]], System]:
    def make_system(setup: Mapping[str, int]) -> System:
        if sub is None:
            return _Watched(driver.ReferenceSystem(setup), None, watch)
        if not sub.alive:
            sub.restart()
        return _Watched(driver.SubmissionSystem(sub, setup), sub, watch)

    return make_system
