"""One trace type for both engines, the violations found on it, and run statistics.

A `Trace` is everything needed to run a counterexample again: the subsystem, the
constructor arguments, and each step's operation, arguments and what it
returned (or raised). Hypothesis and Z3 both produce Traces; `replay` runs one;
`report` renders one. Its JSON form is stable (see docs/json-format.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

TRACE_FORMAT = 1


@dataclass(frozen=True)
class Step:
    """One operation: `alloc(3)` that returned 8, or `free(8, 2)` that raised ValueError."""

    op: str
    args: tuple[int, ...]
    result: Any = None
    raised: str | None = None

    def call_text(self) -> str:
        return f"{self.op}({', '.join(str(a) for a in self.args)})"

    def outcome_text(self) -> str:
        if self.raised is not None:
            return f"raised {self.raised}"
        if self.result is None:
            return "-> none"
        return f"-> {self.result}"

    def to_json(self) -> dict[str, Any]:
        return {
            "op": self.op,
            "args": list(self.args),
            "result": self.result,
            "raised": self.raised,
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Step:
        return cls(str(d["op"]), tuple(int(a) for a in d["args"]), d.get("result"), d.get("raised"))


@dataclass(frozen=True)
class Trace:
    """A replayable sequence of steps from a fresh object built with `setup`."""

    subsystem: str
    setup: Mapping[str, int]
    steps: tuple[Step, ...] = ()

    def setup_text(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.setup.items())

    def to_json(self) -> dict[str, Any]:
        return {
            "format": TRACE_FORMAT,
            "subsystem": self.subsystem,
            "setup": dict(self.setup),
            "steps": [s.to_json() for s in self.steps],
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Trace:
        if d.get("format") != TRACE_FORMAT:
            raise ValueError(
                f"unknown trace format {d.get('format')!r} (this mmcheck reads {TRACE_FORMAT})"
            )
        return cls(
            str(d["subsystem"]),
            {str(k): int(v) for k, v in d["setup"].items()},
            tuple(Step.from_json(s) for s in d["steps"]),
        )


# What a violation is about, in order of precedence when one step breaks several.
KINDS = ("crash", "timeout", "protocol", "refinement", "action", "invariant", "eval-error")


@dataclass(frozen=True)
class Violation:
    """A property broken at one step of a trace, with the reasons in words.

    kind: crash | timeout | protocol (the submission misbehaved), refinement (its
    choice is not one the reference model could make), action / invariant (a
    spec property is false), eval-error (the spec itself could not be evaluated).
    `step` is the index of the failing step, -1 for the initial state.
    """

    kind: str
    property: str
    doc: str
    step: int
    explanation: tuple[str, ...]
    spec_path: str = ""
    line: int = 0
    # The explanation as data (checker/explain.py `Why` nodes: sentences and the
    # values they name); `explanation` is its text. Empty for problems.
    why: tuple[Any, ...] = field(default=(), compare=False, repr=False)

    @property
    def key(self) -> tuple[str, str]:
        return (self.kind, self.property)

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "property": self.property, "doc": self.doc,
                "step": self.step, "explanation": list(self.explanation),
                "spec_path": self.spec_path, "line": self.line}


@dataclass
class PropertyStats:
    """How often a property was evaluated, and how often that proved something."""

    checks: int = 0
    live: int = 0
    seconds: float = 0.0  # time spent evaluating it
    cut: int = 0  # evaluations cut short at the time limit


@dataclass
class RunStats:
    """Counts a run reports: steps per operation, checks per property, traces."""

    traces: int = 0
    steps: int = 0
    ops: dict[str, int] = field(default_factory=dict)
    properties: dict[str, PropertyStats] = field(default_factory=dict)
    coverage: dict[str, int] = field(default_factory=dict)  # class -> hits (checker/coverage.py)

    def count_classes(self, names: list[str]) -> None:
        for n in names:
            self.coverage[n] = self.coverage.get(n, 0) + 1

    def count_op(self, op: str) -> None:
        self.steps += 1
        self.ops[op] = self.ops.get(op, 0) + 1

    def count_check(self, name: str, live: bool, seconds: float = 0.0) -> None:
        st = self.properties.get(name)
        if st is None:
            st = self.properties[name] = PropertyStats()
        st.checks += 1
        st.seconds += seconds
        if live:
            st.live += 1

    def count_cut(self, name: str, seconds: float = 0.0) -> None:
        """An evaluation of `name` stopped at the time limit: it proved nothing."""
        st = self.properties.setdefault(name, PropertyStats())
        st.cut += 1
        st.seconds += seconds

    def merge(self, other: RunStats) -> None:
        self.traces += other.traces
        self.steps += other.steps
        for k, v in other.ops.items():
            self.ops[k] = self.ops.get(k, 0) + v
        for k, v in other.coverage.items():
            self.coverage[k] = self.coverage.get(k, 0) + v
        for k, st in other.properties.items():
            mine = self.properties.setdefault(k, PropertyStats())
            mine.checks += st.checks
            mine.live += st.live
            mine.seconds += st.seconds
            mine.cut += st.cut
