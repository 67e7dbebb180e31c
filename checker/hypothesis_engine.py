"""The Hypothesis engine: random concrete traces, checked step by step, shrunk on failure.

A state machine is built from a subsystem driver (how to set up, which steps to
draw) and a Monitor (the spec's properties). The budget is work: `traces`
random traces of up to `steps` rules each, cut into chunks of 25 traces, chunk
i with seed `seed + i`; a chunk that finds a violation names its seed, and
`--seed S --traces N` with those numbers runs the same traces again. The same
seed and work give the same answer on any machine: wall time only stops a run
from outside (checker/interrupt.py), and such a run says it was stopped.
Independently of Hypothesis's own reporting, the engine keeps the shortest
failing trace of each violation it saw, so a shrink cut short by a stop still
yields a counterexample.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from hypothesis import HealthCheck, Phase, Verbosity, reject, settings
from hypothesis import strategies as st
from hypothesis.errors import Flaky, StopTest, Unsatisfiable
from hypothesis.stateful import RuleBasedStateMachine, initialize, rule, run_state_machine_as_test
from mmcheck.checker import interrupt
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


def _without_local_constants() -> None:
    """Keep Hypothesis from drawing "interesting" constants out of our own modules.

    Hypothesis (6.13x and later) now and then draws an integer that appears in the
    source of any module it thinks is the user's: any module imported so far that
    lives outside site-packages. For mmcheck that is the checker itself in a source
    checkout (and not in an installed wheel), plus whatever it has imported by the
    time of the draw. The traces of a seed would then depend on where mmcheck is
    installed and on which subsystems' modules happen to be loaded, and a
    `reproduce:` line would not reproduce on a student's machine. With the pool
    empty, a seed and a budget of work give the same traces everywhere; Hypothesis's
    own global constants (0, -1, 2**k boundaries...) still apply.
    """
    try:
        from hypothesis.internal.conjecture import providers
    except ImportError:  # pragma: no cover - an older Hypothesis has no such pool
        return
    if not hasattr(providers, "_get_local_constants"):  # pragma: no cover
        return
    empty = providers.Constants()
    providers._get_local_constants = lambda: empty
    providers.CONSTANTS_CACHE.cache.clear()


_without_local_constants()


@dataclass
class Found:
    """The shortest failing trace seen for one violation."""

    trace: Trace
    violation: Violation
    seed: int
    skipped: frozenset[str] = frozenset()  # properties already reported when it was found
    # The traces of every chunk up to its own: `--seed FIRST --traces through` reruns
    # exactly the search that found it (with the same properties already reported).
    through: int = 25


@dataclass
class HypothesisResult:
    found: list[Found]
    stats: RunStats
    elapsed: float
    chunks: int
    stopped: str | None = None  # interrupt.INTERRUPTED or OUT_OF_TIME: the work was not done
    stopped_early: str = ""  # why the search ended before its work was done, if it did
    last_seed: int = 0
    asked: int = 0  # the traces asked for
    # Every trace started is one of: generated (a trace of the search, run to its end
    # or to a violation), shrunk (replayed while Hypothesis shrank a violation), or
    # cut (Hypothesis dropped it unfinished: it outgrew its data limit; not counted
    # towards --traces, and replaced by another)
    generated: int = 0
    shrunk: int = 0
    cut: int = 0

    @property
    def interrupted(self) -> bool:
        return self.stopped is not None

    @property
    def summary(self) -> str:
        n = self.generated
        if self.found:
            text = f"{len(self.found)} violation(s) in {n:,} random traces"
        else:
            text = f"no violation in {n:,} random traces ({self.stats.steps:,} steps)"
        if self.shrunk:
            text += f", then {self.shrunk:,} replayed while shrinking"
        if self.cut:
            text += (f" ({self.cut:,} more dropped unfinished by Hypothesis, over its data "
                     "limit, and replaced)")
        if self.stopped == interrupt.INTERRUPTED:
            return f"interrupted after {self.chunks} of {self._planned} chunk(s): {text}"
        if self.stopped is not None:
            return f"the time limit came after {self.chunks} of {self._planned} chunk(s): {text}"
        return text

    @property
    def _planned(self) -> int:
        return math.ceil(self.asked / 25)


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
        self.chunk_traces = options.traces_per_chunk
        self.through = 0  # traces asked for up to and including the current chunk
        self.specs = specs
        self.driver = driver
        self.make_system = make_system
        self.options = options
        self.stats = RunStats()
        self.skip: set[str] = set(options.skip)
        self.best: dict[tuple[str, str], Found] = {}
        self.order: list[tuple[str, str]] = []
        self.broken: SubmissionError | None = None  # the submission cannot be made at all
        self.seed = 0
        self.tick: Callable[[], None] | None = None  # called as each trace starts
        self.cut = False  # a trace or an evaluation was cut short by a stop
        # Go on after a property's violation (recording it, checking it no more) instead
        # of ending the trace: the traces drawn are then those of a search that skips
        # it. Problems (crash, refinement...) still end the trace.
        self.keep_going = False
        # At most this many traces after a chunk's first violation (its shrinking):
        # then every further trace is rejected at once (None: Hypothesis's own limits).
        self.shrink_traces: int | None = None
        self.found_at: int | None = None  # stats.traces when this chunk first failed
        self.failed = False  # this chunk found a violation: what follows is shrinking
        self.generated = self.shrunk = self.dropped = 0  # traces by kind (HypothesisResult)

    def record(self, trace: Trace, v: Violation) -> None:
        key = v.key
        old = self.best.get(key)
        size = (len(trace.steps), sum(trace.setup.values()))
        if old is None:
            self.order.append(key)
        if self.found_at is None:
            self.found_at = self.stats.traces
        if old is None or size < (len(old.trace.steps), sum(old.trace.setup.values())):
            self.best[key] = Found(trace, v, self.seed, frozenset(self.skip), self.through)

    def shrunk_enough(self) -> bool:
        """Whether this chunk's shrinking has run its shrink_traces traces (a count
        of work, not a time: the same shortest trace on any machine)."""
        return not self.keep_going and self.shrink_traces is not None and \
            self.found_at is not None and self.stats.traces - self.found_at >= self.shrink_traces
    def tally(self, shrinking: bool, ending: BaseException | None) -> None:
        """Count a trace that ended (teardown runs in Hypothesis's `finally`, so
        `ending` is the exception that ended it, if any)."""
        if shrinking:
            self.shrunk += 1
        elif isinstance(ending, StopTest):
            self.dropped += 1
        else:
            self.generated += 1

    def machine(self) -> type[RuleBasedStateMachine]:
        search = self
        driver = self.driver

        class Machine(RuleBasedStateMachine):
            def __init__(self) -> None:
                super().__init__()
                self.system: System | None = None
                self.steps: list[Step] = []
                self.counted = False  # setup ran: a trace of search.stats.traces
                self.shrinking = False

            @initialize(setup=driver.setups(search.options.max_pages))
            def setup(self, setup: dict[str, int]) -> None:
                if search.broken is not None:
                    reject()  # the submission cannot be set up: nothing more to run
                if interrupt.requested():
                    search.cut = True
                    reject()  # the run is being stopped: end the chunk quickly
                if search.shrunk_enough():
                    reject()  # shrinking has had its traces: end the chunk quickly
                search.stats.traces += 1
                self.shrinking = search.failed
                self.counted = True
                if search.tick is not None:
                    search.tick()
                self.setup_args = setup
                self.view = driver.View(setup)
                self.monitor = Monitor(search.specs, search.stats, search.skip)
                try:
                    self.system = search.make_system(setup)
                except SubmissionError as err:
                    # Nothing to shrink: end the search and say so (run_hypothesis raises it).
                    search.broken = err
                    reject()
                self.state = self.system.snapshot()
                search.stats.count_classes(classify_setup(driver.name, setup))
                self.check_all(self.monitor.initial_violations(self.state))

            @rule(data=st.data())
            def step(self, data: st.DataObject) -> None:
                assert self.system is not None
                if ended(self.system):
                    return  # the system ended this trace: the steps left do nothing
                for op, args in driver.draw_steps(data, self.view):
                    if interrupt.requested():
                        search.cut = True
                        return  # the run is being stopped: let this trace run out quickly
                    step, problem = self.system.apply(op, args)
                    if ended(self.system):
                        return  # this step and the rest are not part of the trace
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
                    found = self.monitor.violations(index, step, self.state, new)
                    self.state = new
                    self.check_all(found)

            def check_all(self, found: Iterator[Violation]) -> None:
                """The first of `found` ends the trace; with keep_going, every one is
                recorded and its property checked no more in this search."""
                for v in found:
                    search.cut = search.cut or self.monitor.cut
                    if not search.keep_going:
                        self.check(v)  # raises: the trace ends here
                    self.record_only(v)
                search.cut = search.cut or self.monitor.cut

            def record_only(self, v: Violation) -> None:
                trace = Trace(driver.name, dict(self.setup_args), tuple(self.steps))
                search.record(trace, v)
                search.skip.add(v.property)
                self.monitor.skip.add(v.property)

            def check(self, v: Violation | None) -> None:
                if v is None:
                    return
                trace = Trace(driver.name, dict(self.setup_args), tuple(self.steps))
                search.record(trace, v)
                search.failed = True
                raise _exception_for(v.key)(f"{v.property}: {v.doc}")

            def teardown(self) -> None:
                if self.counted:
                    search.tally(self.shrinking, sys.exc_info()[1])
                if self.system is not None:
                    self.system.close()

        Machine.__name__ = f"{driver.name.capitalize()}Machine"
        return Machine


def ended(system: System) -> bool:
    """Whether `system` ended its trace before the step it was just asked to run:
    a System may set `ended` (the grader's, at a problem another rubric item
    grades), and the trace is then its steps before that one, checked as usual."""
    return getattr(system, "ended", False)


def run_hypothesis(
    specs: list[CompiledSpec],
    driver: Driver,
    make_system: Callable[[Mapping[str, int]], System],
    options: Options,
    on_found: Callable[[Found], None] | None = None,
    on_progress: Callable[[RunStats, int, float], None] | None = None,
    keep_going: bool = False,
    shrink_traces: int | None = None,
) -> HypothesisResult:
    """Run `options.traces` random traces, chunk by chunk, unless stopped from outside
    (interrupt, time limit) or by enough violations. Anything else that goes wrong
    (a generator or sandbox error) propagates: the caller reports the engine failed.
    on_progress(stats, violations, elapsed) is called after each chunk of traces.
    keep_going: a violated property is recorded (its first trace, not shrunk) and
    checked no more, and the trace goes on (see _Search.keep_going); the search
    then ends at options.max_counterexamples violations as well. shrink_traces:
    at most that many traces shrink a chunk's first violation (see _Search)."""
    search = _Search(specs, driver, make_system, options)
    search.keep_going = keep_going
    search.shrink_traces = shrink_traces
    start = time.monotonic()
    if on_progress is not None:
        last = [start]

        def tick() -> None:  # at most twice a second, between traces
            now = time.monotonic()
            if now - last[0] >= 0.5:
                last[0] = now
                on_progress(search.stats, len(search.order), now - start)

        search.tick = tick
    chunks = 0
    left = options.traces
    stopped = ""
    reported = 0
    while left > 0 and not interrupt.requested():
        search.seed = options.seed + chunks
        search.chunk_traces = min(options.traces_per_chunk, left)
        left -= search.chunk_traces
        search.through = options.traces - left
        search.found_at = None
        search.failed = False
        chunks += 1
        _run_chunk(search, options)
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
    found = [search.best[k] for k in search.order]
    result = HypothesisResult(
        found, search.stats, time.monotonic() - start, chunks, None, stopped, search.seed
    )
    result.asked = options.traces
    result.generated, result.shrunk, result.cut = search.generated, search.shrunk, search.dropped
    if (left > 0 or search.cut) and not stopped:
        result.stopped = interrupt.reason() or interrupt.OUT_OF_TIME
    return result


def _run_chunk(search: _Search, options: Options) -> None:
    """One chunk of traces with its own seed; violations land in search.best."""
    machine = search.machine()
    machine._hypothesis_internal_use_seed = search.seed  # type: ignore[attr-defined]
    try:
        run_state_machine_as_test(
            machine,
            settings=settings(
                max_examples=search.chunk_traces,
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
    except (_Violated, Flaky, Unsatisfiable):
        pass  # a violation (it is in search.best), or a chunk whose traces were all cut
