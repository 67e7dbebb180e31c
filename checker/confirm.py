"""Engine-neutral: run a trace again, and turn what an engine found into a Counterexample.

Both engines (Hypothesis, Z3) and `mmcheck replay` report a violation the same
way: the trace is replayed on a fresh system (`replay`), the report shows what
the replay showed (`confirm`), the trace is saved for `mmcheck replay`, and the
state picture points at the values the explanation names.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mmcheck.checker.evaluate import CompiledSpec
from mmcheck.checker.explain import named
from mmcheck.checker.minimise import Renames, Replayed, learn_rename, minimise, renamed_step
from mmcheck.checker.monitor import Monitor
from mmcheck.checker.options import Options, reproduce
from mmcheck.checker.report import Counterexample
from mmcheck.checker.systems import Problem, System
from mmcheck.checker.trace import RunStats, Step, Trace, Violation

if TYPE_CHECKING:
    from mmcheck.checker.subsystems.registry import Driver


def problem_violation(p: Problem, step_index: int) -> Violation:
    return Violation(p.kind, p.kind, p.title, step_index, p.explanation)


@dataclass
class ReplayResult:
    """What running one trace again showed."""

    violation: Violation | None
    steps: tuple[Step, ...]
    state: Mapping[str, Any] | None
    diverged: str | None = None  # the system did something else than the trace says
    stats: RunStats = field(default_factory=RunStats)
    # the snapshot before the first step and after each step run (a step with a
    # problem leaves the state as it was): what reports draw step by step
    states: tuple[Mapping[str, Any], ...] = ()


def replay(
    trace: Trace,
    specs: list[CompiledSpec],
    make_system: Callable[[Mapping[str, int]], System],
    follow_results: bool = False,
    skip: frozenset[str] = frozenset(),
    rename: bool = False,
) -> ReplayResult:
    """Run `trace` on a fresh system, checking every property; stop at the first violation.

    The operations and arguments come from the trace; the results are the
    system's own. With `follow_results`, a result that differs from the trace's
    (the system chose another block) is reported as a divergence. With `rename`,
    it is followed instead: a later step that passes the recorded result back (the
    declaration's `results`: free(pfn) of what alloc returned) passes the system's
    own (the contract leaves that choice to a submission). Properties in `skip`
    are not checked (those a search had already reported).
    """
    stats = RunStats(traces=1)
    monitor = Monitor(specs, stats, skip)
    system = make_system(trace.setup)
    steps: list[Step] = []
    states: list[Mapping[str, Any]] = []

    def result(v: Violation | None, state: Mapping[str, Any], diverged: str | None = None):  # noqa: ANN202
        return ReplayResult(v, tuple(steps), state, diverged, stats, tuple(states))

    try:
        state = system.snapshot()
        states.append(state)
        v = monitor.initial(state)
        if v is not None:
            return result(v, state)
        renames: Renames = {}
        for i, recorded in enumerate(trace.steps):
            want = renamed_step(trace.subsystem, recorded, renames) if rename else recorded
            step, problem = system.apply(want.op, want.args, want)
            steps.append(step)
            if problem is not None:
                stats.count_op(step.op)
                states.append(state)
                return result(problem_violation(problem, i), state)
            if follow_results and (step.result, step.raised) != (want.result, want.raised):
                return result(
                    None,
                    state,
                    f"step {i}: {want.call_text()} {step.outcome_text()}, "
                    f"the trace says {want.outcome_text()}",
                )
            if rename:
                learn_rename(trace.subsystem, recorded, step, renames)
            new = system.snapshot()
            states.append(new)
            v = monitor.step(i, step, state, new)
            state = new
            if v is not None:
                return result(v, state)
        return result(None, state)
    finally:
        system.close()


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "x"


def confirm(
    engine: str,
    found_trace: Trace,
    violation: Violation,
    specs: list[CompiledSpec],
    make_system: Callable[[Mapping[str, int]], System],
    driver: Driver,
    options: Options,
    target_name: str,
    seed: int | None = None,
    follow_results: bool = False,
    skip: frozenset[str] = frozenset(),
    shrink: bool = True,
    traces: int | None = None,
) -> Counterexample:
    """Replay a found trace on a fresh system: the report shows what the replay shows.
    With `shrink`, a confirmed trace is first minimised (checker/minimise.py). When
    `make_system` can start a fresh process (a submission: systems.SubmissionMaker),
    the trace is replayed once more in a new worker, as `mmcheck replay` will run it:
    the minimised trace, else the one found; the counterexample says whether that
    reproduced it (`fresh_process`)."""
    result = replay(found_trace, specs, make_system, follow_results=follow_results, skip=skip)
    v = result.violation
    confirmed = v is not None and v.key == violation.key
    found_steps = len(result.steps)
    first = (Trace(found_trace.subsystem, found_trace.setup, result.steps), result)
    if confirmed and shrink and options.minimise > 0:
        assert v is not None
        found_trace, result = _minimised(
            found_trace, v, result, specs, make_system, skip, options.minimise
        )
        v = result.violation
    fresh: bool | None = None
    fresh_process = getattr(make_system, "fresh_process", None)
    if confirmed and fresh_process is not None:
        assert v is not None
        fresh, found_trace, result, why = _in_fresh_process(
            [(found_trace, result), first], v.key, specs, make_system, fresh_process, skip
        )
        v = result.violation
    note = ""
    if result.diverged:
        note = f"replay diverged: {result.diverged}"
    elif v is None:
        note = "the replay ran every step without a violation (a flaky submission?)"
    elif not confirmed:
        note = f"the replay broke another property first: {v.property}"
    elif fresh is False:
        note = why
    shown = v if v is not None else violation
    trace = Trace(
        found_trace.subsystem,
        found_trace.setup,
        result.steps if v is not None else found_trace.steps,
    )
    state = result.state
    picture = driver.render_state(state, named(shown.why)) if state is not None else []
    replay_cmd = ""
    path = None
    if options.save_dir is not None:
        path = options.save_dir / _slug(target_name) / f"{_slug(shown.property)}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(
            json.dumps(
                {
                    "trace": trace.to_json(),
                    "property": shown.property,
                    "specs": list(options.spec_args),
                },
                indent=2,
            )
            + "\n"
        )
        replay_cmd = reproduce(options, engine, trace=path)
    cx = Counterexample(
        engine,
        shown,
        trace,
        picture,
        confirmed,
        reproduce(options, engine, seed, traces=traces),
        replay_cmd,
        seed,
        note,
        found_steps,
        result.states if v is not None else (),
        fresh,
    )
    if path is not None:
        from mmcheck.checker.formats.itf import write_itf

        write_itf(path.with_suffix(".itf.json"), target_name, cx)
    return cx


def _minimised(
    found: Trace,
    violation: Violation,
    first: ReplayResult,
    specs: list[CompiledSpec],
    make_system: Callable[[Mapping[str, int]], System],
    skip: frozenset[str],
    budget: int,
) -> tuple[Trace, ReplayResult]:
    """The smallest trace that still breaks the same property, and its replay."""

    def attempt(trace: Trace) -> Replayed:
        r = replay(trace, specs, make_system, skip=skip)
        return Replayed(r.violation, r.steps, r)

    start = Trace(found.subsystem, found.setup, first.steps)
    m = minimise(start, violation.key, attempt, Replayed(violation, first.steps, first), budget)
    assert isinstance(m.outcome, ReplayResult)
    return m.trace, m.outcome




NOT_FRESH = (
    "the trace needs class or module state that earlier instances left in the "
    "submission's process, so `mmcheck replay` of the saved trace alone will not show it"
)


def _in_fresh_process(
    candidates: list[tuple[Trace, ReplayResult]],
    key: tuple[str, ...],
    specs: list[CompiledSpec],
    make_system: Callable[[Mapping[str, int]], System],
    fresh_process: Callable[[], None],
    skip: frozenset[str],
) -> tuple[bool, Trace, ReplayResult, str]:
    """The first candidate trace that breaks the same property when replayed in a
    new worker, with that replay; else the first candidate, its same-process replay,
    and why none did."""
    why = NOT_FRESH
    tried: list[tuple[str, ...]] = []
    for trace, _ in candidates:
        if trace.steps in tried:
            continue
        tried.append(trace.steps)
        try:
            fresh_process()
        except Exception as err:  # noqa: BLE001 - a load failure is reported, not raised
            why = f"the submission did not load again in a fresh process ({err})"
            break
        r = replay(trace, specs, make_system, skip=skip)
        if r.violation is not None and r.violation.key == key:
            return True, Trace(trace.subsystem, trace.setup, r.steps), r, ""
    trace, result = candidates[0]
    return False, trace, result, why
