"""What the step-rate figures run: the buddy driver at a fixed memory size, and a bare machine.

`fixed_driver(npages)` is the buddy driver with `setups` pinned to one memory
size, so that a rate is the rate at that size and not an average over the
sizes the engine would otherwise draw.

`run_bare(npages, budget, seed)` is the yardstick: a Hypothesis
RuleBasedStateMachine with the same setup, the same step generator
(`draw_steps` + `View`) and the same reference `BuddyAllocator`, run in the
same chunks with the same settings as the engine, but with no Monitor, no
snapshots and no Trace bookkeeping. The checked engine can only be slower;
the ratio of the two rates is what checking costs.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, Phase, Verbosity, reject, settings
from hypothesis import strategies as st
from hypothesis.errors import HypothesisException
from hypothesis.stateful import RuleBasedStateMachine, initialize, rule, run_state_machine_as_test
from mmcheck.checker import subsystems
from mmcheck.checker.options import Options
from mmcheck.checker.subsystems import buddy
from mmcheck.checker.trace import Step
from mmcheck.model.buddy import BuddyAllocator

MAX_ORDER = 11  # Linux's default MAX_ORDER, as the engine's own setups use most often

def fixed_setup(npages: int) -> dict[str, int]:
    return {"npages": npages, "max_order": MAX_ORDER}


def fixed_driver(npages: int) -> Any:
    """The buddy driver with every trace on a memory of exactly `npages` pages."""
    return dataclasses.replace(subsystems.driver("buddy"),
                               setups=lambda max_pages=npages: st.just(fixed_setup(npages)))


def engine_settings(options: Options) -> settings:
    """The settings run_hypothesis gives each chunk, so both machines run alike."""
    return settings(
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
    )


@dataclass
class BareCounts:
    traces: int = 0
    steps: int = 0
    deadline: float = 0.0


def _bare_machine(npages: int, counts: BareCounts) -> type[RuleBasedStateMachine]:
    """A machine that draws and applies the engine's steps and checks nothing."""

    class BareBuddyMachine(RuleBasedStateMachine):
        @initialize(setup=st.just(fixed_setup(npages)))
        def setup(self, setup: dict[str, int]) -> None:
            if time.monotonic() > counts.deadline:
                reject()  # as the engine does: the budget is spent, end the chunk
            counts.traces += 1
            self.view = buddy.View(setup)
            self.model = BuddyAllocator(setup["npages"], setup["max_order"])

        @rule(data=st.data())
        def step(self, data: st.DataObject) -> None:
            for op, args in buddy.draw_steps(data, self.view):
                try:
                    step = Step(op, args, getattr(self.model, op)(*args), None)
                except ValueError:
                    step = Step(op, args, None, "ValueError")
                counts.steps += 1
                self.view.record(step)

    return BareBuddyMachine


def run_bare(npages: int, budget: float, seed: int = 0) -> dict[str, float]:
    """Run the bare machine for `budget` seconds in engine-sized chunks; count what ran."""
    options = Options(seed=seed, max_pages=npages)
    counts = BareCounts()
    start = time.monotonic()
    counts.deadline = start + budget
    chunk = 0
    while time.monotonic() < counts.deadline:
        machine = _bare_machine(npages, counts)
        machine._hypothesis_internal_use_seed = seed + chunk  # type: ignore[attr-defined]
        chunk += 1
        try:
            run_state_machine_as_test(machine, settings=engine_settings(options))
        except HypothesisException:
            # As in the engine: the reject() at the deadline can make Hypothesis
            # see a replayed prefix stop early (FlakyStrategyDefinition); the
            # steps already run are counted all the same.
            pass
    elapsed = time.monotonic() - start
    return {"steps": counts.steps, "traces": counts.traces, "elapsed_s": elapsed, "chunks": chunk}
