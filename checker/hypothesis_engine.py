"""The Hypothesis engine: random concrete traces, checked step by step, shrunk on failure.

A state machine is built from a subsystem driver (how to set up, which steps to
draw) and a Monitor (the spec's properties). The run is cut into chunks of a
few dozen traces, each with its own seed, until the time budget is spent; a
chunk that finds a violation names its seed, and `--seed` with that number
runs the same traces again. Independently of Hypothesis's own reporting, the
engine keeps the shortest failing trace of each violation it saw, so a shrink
cut short by the budget or an interrupt still yields a counterexample.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from hypothesis import HealthCheck, Phase, Verbosity, reject, settings
from hypothesis import strategies as st
from hypothesis.errors import HypothesisException
from hypothesis.stateful import RuleBasedStateMachine, initialize, rule, run_state_machine_as_test
from mmcheck.checker.confirm import problem_violation
from mmcheck.checker.coverage import classify, classify_setup
from mmcheck.checker.evaluate import CompiledSpec
from mmcheck.checker.monitor import Monitor
from mmcheck.checker.options import Options
from mmcheck.checker.systems import SubmissionError, System
from mmcheck.checker.trace import RunStats, Step, Trace, Violation

if TYPE_CHECKING:
    from mmcheck.checker.subsystems.registry import Driver

# Problems after which the object under test is in no state to go on with.
FATAL_KINDS = {"crash", "timeout", "protocol", "refinement"}


@dataclass
@dataclass
class Found:
    """The shortest failing trace seen for one violation."""

    trace: Trace
    violation: Violation
    seed: int
    skipped: frozenset[str] = frozenset()  # properties already reported when it was found


@dataclass
class HypothesisResult:
    found: list[Found]
    stats: RunStats
    elapsed: float
    chunks: int
    interrupted: bool = False
    stopped_early: str = ""  # why the search ended before the budget, if it did
    last_seed: int = 0

    @property
    def summary(self) -> str:
        n = self.stats.traces
        if self.found:
            return f"{len(self.found)} violation(s) in {n:,} random traces"
        prefix = "interrupted: " if self.interrupted else ""
        return f"{prefix}no violation in {n:,} random traces ({self.stats.steps:,} steps)"


class _Violated(AssertionError):
    """Raised inside the state machine to make Hypothesis shrink; one subclass per property."""


_EXCEPTIONS: dict[tuple[str, str], type[_Violated]] = {}


def _exception_for(key: tuple[str, str]) -> type[_Violated]:
    # A distinct class per violated property keeps Hypothesis from shrinking one
    # property's failure into another's.
    cls = _EXCEPTIONS.get(key)
    if cls is None:
        cls = type(f"Violated_{key[0]}_{key[1]}".replace("-", "_"), (_Violated,), {})
        _EXCEPTIONS[key] = cls
    return cls


class _Search:
    """The state shared by every state-machine instance of one engine run."""

    def __init__(
        self,
        specs: list[CompiledSpec],
        driver: Driver,
        make_system: Callable[[Mapping[str, int]], System],
        options: Options,
    ) -> None:
        self.specs = specs
        self.driver = driver
        self.make_system = make_system
        self.options = options
        self.stats = RunStats()
        self.skip: set[str] = set(options.skip)
        self.best: dict[tuple[str, str], Found] = {}
        self.order: list[tuple[str, str]] = []
        self.deadline = 0.0
        self.broken: SubmissionError | None = None  # the submission cannot be made at all
        self.seed = 0
        self.tick: Callable[[], None] | None = None  # called as each trace starts

    def record(self, trace: Trace, v: Violation) -> None:
        key = v.key
        old = self.best.get(key)
        size = (len(trace.steps), sum(trace.setup.values()))
        if old is None:
            self.order.append(key)
        if old is None or size < (len(old.trace.steps), sum(old.trace.setup.values())):
            self.best[key] = Found(trace, v, self.seed, frozenset(self.skip))

    def machine(self) -> type[RuleBasedStateMachine]:
        search = self
        driver = self.driver

        class Machine(RuleBasedStateMachine):
            def __init__(self) -> None:
                super().__init__()
                self.system: System | None = None
                self.steps: list[Step] = []

            @initialize(setup=driver.setups(search.options.max_pages))
            def setup(self, setup: dict[str, int]) -> None:
                if time.monotonic() > search.deadline and search.options.traces is None:
                    reject()  # the budget is spent: end the chunk quickly
                search.stats.traces += 1
                if search.tick is not None:
                    search.tick()
                self.setup_args = setup
                self.view = driver.View(setup)
                self.monitor = Monitor(search.specs, search.stats, search.skip)
                try:
                    self.system = search.make_system(setup)
                except SubmissionError as err:
                    # Nothing to shrink: end the search and say so (run_hypothesis raises it).
                    search.broken, search.deadline = err, 0.0
                    reject()
                self.state = self.system.snapshot()
                search.stats.count_classes(classify_setup(driver.name, setup))
                self.check(self.monitor.initial(self.state))

            @rule(data=st.data())
            def step(self, data: st.DataObject) -> None:
                assert self.system is not None
                if time.monotonic() > search.deadline and search.options.traces is None:
                    return  # the budget is spent: let this trace run out quickly
                for op, args in driver.draw_steps(data, self.view):
                    step, problem = self.system.apply(op, args)
                    self.steps.append(step)
                    self.view.record(step)
                    index = len(self.steps) - 1
                    if problem is not None:
                        search.stats.count_op(op)
                        self.check(problem_violation(problem, index))
                    new = self.system.snapshot()
                    search.stats.count_classes(
                        classify(driver.name, step, self.state, new, self.setup_args)
                    )
                    v = self.monitor.step(index, step, self.state, new)
                    self.state = new
                    self.check(v)

            def check(self, v: Violation | None) -> None:
                if v is None:
                    return
                trace = Trace(driver.name, dict(self.setup_args), tuple(self.steps))
                search.record(trace, v)
                raise _exception_for(v.key)(f"{v.property}: {v.doc}")

            def teardown(self) -> None:
                if self.system is not None:
                    self.system.close()

        Machine.__name__ = f"{driver.name.capitalize()}Machine"
        return Machine


def run_hypothesis(
    specs: list[CompiledSpec],
    driver: Driver,
    make_system: Callable[[Mapping[str, int]], System],
    options: Options,
    on_found: Callable[[Found], None] | None = None,
    on_progress: Callable[[RunStats, int, float], None] | None = None,
) -> HypothesisResult:
    """Search random traces until the budget is spent or enough violations are found.
    on_progress(stats, violations, elapsed) is called after each chunk of traces."""
    search = _Search(specs, driver, make_system, options)
    start = time.monotonic()
    search.deadline = start + options.budget
    if on_progress is not None:
        last = [start]

        def tick() -> None:  # at most twice a second, between traces
            now = time.monotonic()
            if now - last[0] >= 0.5:
                last[0] = now
                on_progress(search.stats, len(search.order), now - start)

        search.tick = tick
    chunks = 0
    interrupted = False
    stopped = ""
    reported = 0
    try:
        while time.monotonic() < search.deadline and (
            options.traces is None or chunks * options.traces_per_chunk < options.traces
        ):
            search.seed = options.seed + chunks
            chunks += 1
            machine = search.machine()
            machine._hypothesis_internal_use_seed = search.seed  # type: ignore[attr-defined]
            try:
                run_state_machine_as_test(
                    machine,
                    settings=settings(
                        max_examples=options.traces_per_chunk,
                        stateful_step_count=options.steps,
                        deadline=None,
                        database=None,
                        derandomize=False,
                        suppress_health_check=list(HealthCheck),
                        phases=(Phase.generate, Phase.shrink),
                        verbosity=Verbosity.quiet,
                        report_multiple_bugs=False,
                        print_blob=False,
                    ),
                )
            except (_Violated, HypothesisException):
                pass  # the violation itself is in search.best
            if search.broken is not None:
                raise search.broken
            new = search.order[reported:]
            reported = len(search.order)
            if on_progress is not None:
                on_progress(search.stats, reported, time.monotonic() - start)
            for key in new:
                found = search.best[key]
                if on_found is not None:
                    on_found(found)
                search.skip.add(found.violation.property)
                if found.violation.kind in FATAL_KINDS:
                    stopped = f"stopped at the first {found.violation.kind} problem"
            if stopped or len(search.order) >= options.max_counterexamples:
                stopped = stopped or f"stopped after {len(search.order)} violations"
                break
    except KeyboardInterrupt:
        interrupted = True
    found = [search.best[k] for k in search.order]
    return HypothesisResult(
        found, search.stats, time.monotonic() - start, chunks, interrupted, stopped, search.seed
    )
