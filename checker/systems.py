"""What the engines drive: the reference model itself, or a submission refined by it.

A `System` applies one operation and returns the `Step` it took, plus a
`Problem` when the step itself is wrong in a way no spec needs to state: the
submission crashed, hung, returned something that is not plain data, or made a
choice the reference model could not have made (refinement).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from mmcheck.checker.trace import Step


class SubmissionError(Exception):
    """The submission cannot be driven at all (its constructor raised or crashed on a
    setup the contract allows): a submission error (exit 2) with this message.
    `outcome`: the sandbox's Outcome of the failed call, when there was one."""

    def __init__(self, message: str, outcome: Any = None) -> None:
        super().__init__(message)
        self.outcome = outcome


@dataclass(frozen=True)
class Problem:
    """A step that went wrong outside the spec: kind is crash|timeout|protocol|refinement."""

    kind: str
    title: str
    explanation: tuple[str, ...]


class System(Protocol):
    """One object under test, fresh from its setup."""

    def apply(
        self, op: str, args: tuple[int, ...], expect: Step | None = None
    ) -> tuple[Step, Problem | None]:
        """Run one operation. `expect`, a step of a trace being replayed, asks a
        model with choices to make the same choice (a submission makes its own)."""
        ...

    def snapshot(self) -> Mapping[str, Any]: ...

    def close(self) -> None: ...


class ModelSystem:
    """Base of a driver's ReferenceSystem: the model object is the state."""

    model: Any

    def snapshot(self) -> Mapping[str, Any]:
        return self.model.snapshot()

    def close(self) -> None:
        pass


class SandboxedSystem:
    """Base of a driver's SubmissionSystem: an object living in a sandbox worker."""

    sub: Any
    handle: Any = None

    def close(self) -> None:
        if self.handle is None:
            return
        try:
            self.sub.drop(self.handle)
        except Exception:  # noqa: BLE001 - a dead worker has nothing to drop
            pass


class SubmissionMaker:
    """make_system for a sandboxed submission: each setup's System lives in the
    submission's worker; `fresh_process()` loads the submission again in a new
    worker, as `mmcheck replay` of a saved trace will (confirmation uses it)."""

    def __init__(self, sub: Any, driver: Any) -> None:
        self.sub = sub
        self.driver = driver

    def __call__(self, setup: Mapping[str, int]) -> System:
        """A fresh instance in the current worker (restarted first if it died)."""
        if not self.sub.alive:
            self.sub.restart()
        return self.driver.SubmissionSystem(self.sub, setup)

    def fresh_process(self) -> None:
        """Kill the worker and load the submission in a new one: nothing a previous
        instance left in class or module state survives."""
        self.sub.restart()
