"""What a run is asked to do: one options type for the CLI, both engines and replay,
and the one place that writes the command line which does it again.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from mmcheck.checker.minimise import DEFAULT_REPLAYS
from mmcheck.checker.progress import ProgressSink


@dataclass
class Options:
    """Every knob of a check, with the CLI's defaults.

    engines          which engines run: "hypothesis", "z3"
    seed             the first Hypothesis seed
    traces           Hypothesis: random traces per subsystem, the budget of WORK: chunks
                     of traces_per_chunk with seeds seed, seed+1, ...; same seed, same
                     traces, same answer on any machine
    budget           seconds for the whole run: only an outer safety limit
                     (checker/interrupt.py); a run it stops is inconclusive, never OK
    allow_vacuous    a VACUOUS property does not make the result inconclusive
    steps            Hypothesis: steps (rules) per trace; a rule may run a burst
    max_pages        Hypothesis: the largest memory a setup may have
    traces_per_chunk Hypothesis: traces per seed (a chunk)
    max_counterexamples  Hypothesis: stop after this many distinct violations
    skip             properties not to check at all
    minimise         replays the trace minimiser may spend per counterexample
    depth            Z3: the bound of model checking and induction
    induction, max_induction  Z3: try k-induction, for k = 1 .. max_induction
    z3_rlimit        Z3: resource limit per solver query, its budget of work (None: the
                     engine's default, 0: none)
    z3_pages         Z3: memory size of the symbolic model (None: the subsystem's
                     symbolic_pages, by default 8 for the reference, 12 for a submission)
    timeout_per_call seconds one submission call may take
    save_dir         where counterexample traces are written (None: nowhere)
    spec_args, impl_arg  the spec files and --impl as the user gave them, for
                     the reproduce and replay lines
    progress         where engines report how far they are (checker/progress.py)
    """

    engines: tuple[str, ...] = ("hypothesis",)
    seed: int = 0
    traces: int = 100
    budget: float | None = None
    allow_vacuous: bool = False
    steps: int = 40
    max_pages: int = 5000
    traces_per_chunk: int = 25
    max_counterexamples: int = 5
    skip: frozenset[str] = frozenset()
    minimise: int = DEFAULT_REPLAYS
    depth: int = 8
    induction: bool = True
    max_induction: int = 3
    z3_rlimit: int | None = None
    z3_pages: int | None = None
    timeout_per_call: float = 1.0
    save_dir: Path | None = None
    progress: ProgressSink | None = None
    spec_args: Sequence[str] = ()
    impl_arg: str | None = None


DEFAULT_STEPS = Options.steps


def reproduce(options: Options, engine: str, seed: int | None = None,
              trace: str | Path | None = None, traces: int | None = None) -> str:
    """The command that finds a counterexample again: `mmcheck check ...` with the
    engine's own options (for Hypothesis: the run's first seed and the traces up to
    the chunk that found it, the same search cut there), or, given a saved `trace`,
    `mmcheck replay TRACE ...`."""
    if trace is not None:
        parts = ["mmcheck", "replay", str(trace), *options.spec_args]
    else:
        parts = ["mmcheck", "check", *options.spec_args]
    if options.impl_arg:
        parts += ["--impl", options.impl_arg]
    if trace is not None:
        return shlex.join(parts)
    parts += ["--engine", engine]
    if engine == "hypothesis" and seed is not None:
        parts += ["--seed", str(options.seed), "--traces", str(traces or options.traces)]
        if options.steps != DEFAULT_STEPS:
            parts += ["--steps", str(options.steps)]
        if options.max_pages != Options.max_pages:
            parts += ["--max-pages", str(options.max_pages)]
    if engine == "z3":
        parts += ["--depth", str(options.depth)]
        if options.z3_rlimit is not None:
            parts += ["--z3-rlimit", str(options.z3_rlimit)]
        if options.z3_pages is not None:
            parts += ["--z3-pages", str(options.z3_pages)]
    return shlex.join(parts)
