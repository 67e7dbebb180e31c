"""One module per subsystem: how the engines set it up, drive it and draw its state.

A driver module (see buddy.py, the model for the others) defines:

    SUBSYSTEM: str                 the name a spec file's `spec NAME` line uses
    CONTRACT_CLASS: str            the class a submission defines (docs/contract.md)
    setups(max_pages) -> SearchStrategy[dict[str, int]]
                                   constructor arguments of a fresh object
    View(setup)                    what the step generator remembers; View.record(step)
                                   is called after every step with its outcome
    draw_steps(data, view) -> list[(op, args)]
                                   the next operation(s), drawn with data.draw(...);
                                   the first choices of each strategy should be the
                                   simplest, since shrinking moves towards them
    ReferenceSystem(setup)         the reference model as a `System` (systems.py):
                                   apply(op, args, expect=None) -> (Step, Problem | None),
                                   snapshot() -> mapping of the vocabulary, close().
                                   With `expect` (a step of a trace being replayed) a
                                   model with choices makes the same choice.
    SubmissionSystem(sub, setup)   a sandboxed submission (checker/sandbox) as a
                                   System, with the reference following its choices
                                   (refinement): a choice the reference cannot make is
                                   a Problem("refinement", ...) saying why in words
    hidden_names(sub) -> frozenset[str]   (optional) vocabulary names the submission
                                   `sub` does not show (its snapshot fills them from the
                                   reference, or leaves them empty): a property reading
                                   one is "not observable" on it (checker/observable.py)
    render_state(state, highlight) -> list[str]
                                   the state at a violation, as a student reads it
    symbolic_system(npages, mutation=None)   (optional) the Z3 encoding:
                                   (system, setup, integer universe, exponent bound)

Operation arguments are ints; results are plain data (int, None, tuples of ints).
"""

from __future__ import annotations

import importlib
from types import ModuleType

MODULES = {
    "buddy": "mmcheck.checker.subsystems.buddy",
    "vma": "mmcheck.checker.subsystems.vma",
    "pagetable": "mmcheck.checker.subsystems.pagetable",
    "fault": "mmcheck.checker.subsystems.fault",
}


def driver(subsystem: str) -> ModuleType | None:
    name = MODULES.get(subsystem)
    return importlib.import_module(name) if name else None
