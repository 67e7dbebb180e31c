"""One measurement each: the functions bench.worker runs in a fresh child process.

Every function takes plain keyword arguments and returns a dict of plain
values (JSON). They measure; they never judge. Medians, tables and the
results file are bench.harness's business.
"""

from __future__ import annotations

import contextlib
import cProfile
import io
import json
import os
import pstats
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


def _buddy_specs() -> list[Any]:
    """The whole standard buddy spec library, type-checked."""
    from mmcheck.spec.loader import library, load

    return [load(f) for f in library("buddy")]


# ------------------------------------------------------------------ step rates


def _checked_run(npages: int, budget: float, seed: int,
                 wrap: Callable[[list[Any], Any], Any] | None = None) -> Callable[[], Any]:
    """The engine run of steps_checked, ready to go: the specs are loaded and
    compiled beforehand, so that neither the rate nor a profile counts them.
    `wrap(specs, system_class)`, if given, may instrument both and returns the
    system class to run."""
    from mmcheck.checker.evaluate import CompiledSpec
    from mmcheck.checker.hypothesis_engine import run_hypothesis
    from mmcheck.checker.options import Options

    from bench.drivers import fixed_driver

    specs = [CompiledSpec(c) for c in _buddy_specs()]
    driver = fixed_driver(npages)
    system = driver.ReferenceSystem if wrap is None else wrap(specs, driver.ReferenceSystem)
    from mmcheck.checker import interrupt

    # A rate is steps per second: the run's work is unbounded and the time limit ends it.
    options = Options(seed=seed, traces=10**9, max_pages=npages)

    def go() -> Any:
        with interrupt.watch(budget):
            return run_hypothesis(specs, driver, system, options)

    return go


def _rate_row(result: Any) -> dict[str, Any]:
    return {
        "steps": result.stats.steps,
        "traces": result.stats.traces,
        "elapsed_s": result.elapsed,
        "chunks": result.chunks,
        "violations": [f.violation.property for f in result.found],
    }


def steps_checked(npages: int, budget: float, seed: int = 0) -> dict[str, Any]:
    """The Hypothesis engine on the reference model, every buddy property checked
    after every step, all traces on a memory of `npages` pages. `run_cpu_s` is the
    CPU time of the run itself: on a shared machine steps per CPU second say
    more than steps per wall second."""
    go = _checked_run(npages, budget, seed)
    cpu = time.process_time()
    result = go()
    return {**_rate_row(result), "run_cpu_s": time.process_time() - cpu}


def steps_bare(npages: int, budget: float, seed: int = 0) -> dict[str, Any]:
    """The same steps through a bare RuleBasedStateMachine: no checking, no snapshots."""
    from bench.drivers import run_bare

    cpu = time.process_time()
    row = dict(run_bare(npages, budget, seed))
    return {**row, "run_cpu_s": time.process_time() - cpu}


# ------------------------------------------------------------------ time to a counterexample


def counterexample(path: str, budget: float, launched_at: float, seed: int = 0) -> dict[str, Any]:
    """`mmcheck check --impl PATH --format json` as a user runs it, timed.

    `launched_at` is the parent's time.time() when it started this process, so
    both times below include interpreter start and imports, as a user's wait
    does. `first_found_s`: when the engine handed over its first (shrunk)
    counterexample; `cli_s`: when the CLI had printed its report (after the
    rest of the search, which goes on for other violations until its budget or
    its limit, and after replaying each counterexample).
    """
    from mmcheck.checker import cli
    from mmcheck.checker import run as run_mod

    found_at: list[float] = []
    engine = run_mod.run_hypothesis

    def timed(*args: Any, **kwargs: Any) -> Any:
        # Chain to any on_found the caller gave; note the wall time of the first.
        theirs: Callable[[Any], None] | None = kwargs.pop("on_found", None)

        def on_found(found: Any) -> None:
            found_at.append(time.time())
            if theirs is not None:
                theirs(found)

        return engine(*args, on_found=on_found, **kwargs)

    run_mod.run_hypothesis = timed
    out = io.StringIO()
    with tempfile.TemporaryDirectory() as save, contextlib.redirect_stdout(out):
        rc = cli.main(["check", "--impl", path, "--format", "json", "--budget", str(budget),
                       "--seed", str(seed), "--save", save])
    done = time.time()
    row: dict[str, Any] = {
        "path": path, "rc": rc, "cli_s": done - launched_at,
        "first_found_s": (found_at[0] - launched_at) if found_at else None,
    }
    try:
        report = json.loads(out.getvalue())["reports"][0]
    except (ValueError, KeyError, IndexError):
        row["error"] = "the CLI printed no JSON report: " + out.getvalue()[-300:]
        return row
    cxs = report.get("counterexamples", [])
    runs = report.get("engines", [])
    row["engine_s"] = runs[0].get("elapsed_s") if runs else None
    row["traces"] = runs[0].get("traces") if runs else None
    row["found"] = [{"property": c["property"], "kind": c["kind"],
                     "steps": len(c["trace"]["steps"]), "npages": c["trace"]["setup"].get("npages"),
                     "confirmed": c.get("confirmed")} for c in cxs]
    if cxs:
        row["property"] = cxs[0]["property"]
        row["trace_len"] = len(cxs[0]["trace"]["steps"])
    return row


# ------------------------------------------------------------------ Z3


def z3_bounded(npages: int, depth: int, timeout: float, induction: bool = False) -> dict[str, Any]:
    """Bounded model checking of the whole buddy spec to `depth` steps on the
    symbolic encoding of `npages` pages (with `induction`, then k-induction).
    `timeout` is the engine's own budget; running out of it is verdict "unknown"."""
    from mmcheck.checker.options import Options
    from mmcheck.checker.subsystems import buddy
    from mmcheck.checker.z3_engine import bounded_check

    specs = _buddy_specs()
    start, cpu = time.monotonic(), time.process_time()
    system, setup, universe, exponent_bound = buddy.symbolic_system(npages)
    options = Options(depth=depth, induction=induction, budget=timeout)
    result = bounded_check(specs, system, setup, options,
                           universe, exponent_bound)
    return {
        "npages": npages, "depth": depth, "induction": induction,
        "verdict": result.verdict, "summary": result.summary,
        "depth_checked": result.depth_checked, "elapsed_s": time.monotonic() - start,
        "run_cpu_s": time.process_time() - cpu,  # Z3 runs in this thread: its time counts
        "engine_s": result.elapsed, "per_depth_s": [[d, t] for d, t in result.timings],
        "induction_note": result.induction_note, "skipped": list(result.skipped),
    }


# ------------------------------------------------------------------ sandbox


def sandbox(n: int) -> dict[str, Any]:
    """`python -m mmcheck.checker.sandbox.bench`: microseconds per call (wall, checker CPU)."""
    from mmcheck.checker.sandbox import bench

    return {"calls": {name: {"wall_us": w, "cpu_us": c} for name, (w, c) in bench.run(n).items()}}


# ------------------------------------------------------------------ where the time goes


def _where(code: tuple[str, int, str]) -> str:
    path, line, name = code
    roots = [p + os.sep for p in sys.path if "site-packages" in p] + [str(REPO) + os.sep]
    for root in roots:
        if path.startswith(root):
            path = path[len(root):]
            break
    return f"{path}:{line}({name})" if line else name


def _area(path: str) -> str:
    """Which part of the program a function belongs to, for the totals."""
    parts = Path(path).parts
    for name in ("hypothesis", "z3", "lark"):
        if name in parts:
            return name
    for top in ("checker", "model", "spec", "bench"):
        if top in parts:
            i = len(parts) - 1 - parts[::-1].index(top)
            return "/".join(parts[i:])
    return "python (builtins, stdlib)"


def profile(npages: int, budget: float, seed: int = 0, top: int = 15) -> dict[str, Any]:
    """steps_checked under cProfile: the top functions by own time and by cumulative
    time, and own time summed per source file (hypothesis counts as one area)."""
    go = _checked_run(npages, budget, seed)
    prof = cProfile.Profile()
    prof.enable()
    result = go()
    prof.disable()
    run = _rate_row(result)
    stats = pstats.Stats(prof)
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    total = max(v[3] for v in raw.values()) or 1.0  # the root call's cumulative time
    rows = [{"where": _where(k), "calls": v[1], "tottime_s": v[2], "cumtime_s": v[3]}
            for k, v in raw.items()]
    areas: dict[str, float] = {}
    for k, v in raw.items():
        areas[_area(k[0])] = areas.get(_area(k[0]), 0.0) + v[2]
    ours = [r for r in rows if r["where"].startswith(("checker/", "model/", "spec/"))]
    return {
        "run": run,
        "profiled_s": total,
        "by_tottime": sorted(rows, key=lambda r: -r["tottime_s"])[:top],
        "by_cumtime_mmcheck": sorted(ours, key=lambda r: -r["cumtime_s"])[:top],
        "by_area": sorted(([a, t] for a, t in areas.items()), key=lambda x: -x[1])[:top],
    }


def _timed(fn: Callable[..., Any], costs: dict[str, list[float]],
           key: Callable[[tuple[Any, ...]], str]) -> Callable[..., Any]:
    """fn, adding its wall time and one call to costs[key(args)]."""

    def timed(*args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            cost = costs.setdefault(key(args), [0.0, 0])
            cost[0] += time.perf_counter() - t0
            cost[1] += 1

    return timed


def _name_of(args: tuple[Any, ...]) -> str:
    # check_invariant(name, state) and check_action(act, fn, ...): the property's name.
    first = args[0] if args else "?"
    return first if isinstance(first, str) else str(getattr(first, "name", first))


def breakdown(npages: int, budget: float, seed: int = 0) -> dict[str, Any]:
    """The checked run with a stopwatch on each property and on the model's own
    work: seconds per property (invariants and actions), in apply (the model's
    operation), in building a fresh allocator per trace, and in snapshot.
    Snapshots are lazy, so building the vocabulary a property reads is part of
    that property's time. The rest of the run is
    Hypothesis drawing the steps, the engine's bookkeeping, and the stopwatch."""
    costs: dict[str, list[float]] = {}

    def wrap(specs: list[Any], system: Any) -> Any:
        for c in specs:
            c.check_invariant = _timed(c.check_invariant, costs, _name_of)
            c.check_action = _timed(c.check_action, costs, _name_of)

        class Timed(system):  # type: ignore[misc, valid-type]
            pass

        Timed.__init__ = _timed(system.__init__, costs, lambda a: "(model: a fresh allocator)")
        Timed.apply = _timed(system.apply, costs, lambda a: "(model: apply)")
        Timed.snapshot = _timed(system.snapshot, costs, lambda a: "(model: snapshot)")
        return Timed

    go = _checked_run(npages, budget, seed, wrap)
    t0 = time.perf_counter()
    result = go()
    total = time.perf_counter() - t0
    rows = sorted(([name, s, n] for name, (s, n) in costs.items()), key=lambda r: -r[1])
    return {"run": _rate_row(result), "total_s": total,
            "costs": [{"what": name, "seconds": s, "calls": n} for name, s, n in rows]}


FIGURES: dict[str, Callable[..., dict[str, Any]]] = {
    "steps_checked": steps_checked,
    "steps_bare": steps_bare,
    "counterexample": counterexample,
    "z3_bounded": z3_bounded,
    "sandbox": sandbox,
    "profile": profile,
    "breakdown": breakdown,
}
