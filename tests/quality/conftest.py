"""What the example-quality tests share: the library's specs, an example opened in
its sandbox (closed at the end of the module), a system factory over it."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from mmcheck.checker import subsystems
from mmcheck.checker.evaluate import CompiledSpec
from mmcheck.checker.sandbox import Submission
from mmcheck.spec.loader import library, load

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


class Examples:
    """Examples opened in sandboxes, by path under examples/."""

    def __init__(self) -> None:
        self.subs: dict[str, Any] = {}

    def open(self, rel: str) -> Any:
        if rel not in self.subs:
            self.subs[rel] = Submission.open(EXAMPLES / rel, timeout_per_call=2.0)
        return self.subs[rel]

    def system(self, rel: str, subsystem: str) -> Callable[[Mapping[str, int]], Any]:
        """make(setup): the example's SubmissionSystem, its worker restarted if it died."""
        sub, driver = self.open(rel), subsystems.driver(subsystem)

        def make(setup: Mapping[str, int]) -> Any:
            if not sub.alive:
                sub.restart()
            return driver.SubmissionSystem(sub, setup)

        return make

    @staticmethod
    def specs(subsystem: str) -> list[CompiledSpec]:
        return [CompiledSpec(load(p)) for p in library(subsystem)]

    @staticmethod
    def name(v: Any) -> str:
        """The property a violation broke, or its kind (refinement, crash, ...)."""
        return v.property if v.kind in ("action", "invariant") else v.kind


@pytest.fixture(scope="module")
def examples() -> Iterator[Examples]:
    made = Examples()
    yield made
    for sub in made.subs.values():
        sub.close()
