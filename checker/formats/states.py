"""The state before the first step and after each step of a counterexample.

A counterexample carries the snapshots of the replay that confirmed it (taken
from the very system it convicts, submission or model). When it has none (a
report read back from elsewhere, a replay that did not reproduce), the trace is
run again on the reference model, which follows the trace's choices.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mmcheck.checker import subsystems
from mmcheck.checker.report import Counterexample
from mmcheck.checker.trace import Trace


def step_states(c: Counterexample) -> list[Mapping[str, Any]]:
    """len(trace.steps) + 1 snapshots (fewer only when even the reference cannot run it)."""
    if len(c.states) == len(c.trace.steps) + 1:
        return list(c.states)
    return reference_states(c.trace)


def reference_states(trace: Trace) -> list[Mapping[str, Any]]:
    """Run `trace` on the reference model, making its choices; a step the model refuses
    leaves the state as it was."""
    driver = subsystems.driver(trace.subsystem)
    if driver is None:
        return []
    try:
        system = driver.ReferenceSystem(trace.setup)
    except Exception:  # noqa: BLE001 - a setup the model refuses: nothing to draw
        return []
    try:
        states = [system.snapshot()]
        for step in trace.steps:
            try:
                system.apply(step.op, step.args, step)
            except Exception:  # noqa: BLE001 - the model refuses the step: state unchanged
                pass
            states.append(system.snapshot())
        return states
    finally:
        system.close()


def state_names(subsystem: str, states: list[Mapping[str, Any]]) -> list[str]:
    """The vocabulary's state names every one of `states` can give, in vocabulary order."""
    from mmcheck.checker.subsystems import registry

    vocab = registry.vocabulary(subsystem)
    if vocab is not None:
        names = [s.name for s in vocab.state]
    else:
        names = sorted(states[0]) if states else []
    return [n for n in names if all(_has(s, n) for s in states)]


def _has(state: Mapping[str, Any], name: str) -> bool:
    try:
        state[name]
    except Exception:  # noqa: BLE001 - a lazily computed name that cannot be computed
        return False
    return True
