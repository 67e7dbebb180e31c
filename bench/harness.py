"""`python -m bench`: run the benchmark figures, print them, record them in bench/results.json.

    python -m bench                      every figure, each run --repeat times (default 2)
    python -m bench --only steps,z3      a subset (names below), merged into the results file
    python -m bench --quick              short budgets, one run each (results-quick.json)
    python -m bench --report             print the recorded figures as markdown; measure nothing

Figures: steps (checked vs bare step rates at 1,024 and 1,048,576 pages, and the
peak memory of those runs), counterexamples (time to the first counterexample of
each buggy example through the CLI), z3 (bounded model checking to depth 4, 8, 12
at 64 pages), induction (the largest memory k-induction proves within 30 s),
sandbox (round trip per submission call), profile (cProfile of the checked
1,024-page run).

Each measurement runs in a fresh child process (bench.worker) one after another,
never two at once; a figure's value is the median of its runs, and every run
keeps the load average it saw, since the machine is shared.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
FIGURES = ("steps", "counterexamples", "z3", "induction", "sandbox", "profile")
TIMEOUT = "timeout"


@dataclass
class Config:
    """What to measure and for how long; --quick shortens everything but the 30 s
    of the induction figure, which is part of its definition."""

    repeat: int = 2
    quick: bool = False
    steps_budget: float = 20.0
    steps_sizes: tuple[int, ...] = (1024, 1 << 20)
    cx_budget: float = 60.0
    cx_dir: str = "examples/buddy/buggy"
    z3_pages: int = 64
    z3_depths: tuple[int, ...] = (4, 8, 12)
    z3_timeout: float = 300.0
    induction_timeout: float = 30.0
    induction_depth: int = 8  # the CLI default --depth: k-induction tries k = 1 .. depth
    induction_sizes: tuple[int, ...] = (4, 8, 16, 32, 64, 128, 256, 512, 1024)
    sandbox_calls: int = 5000
    profile_budget: float = 10.0
    profile_pages: tuple[int, ...] = (1024, 1 << 20)

    @classmethod
    def quick_config(cls) -> Config:
        return cls(repeat=1, quick=True, steps_budget=5.0, z3_timeout=60.0, sandbox_calls=1000,
                   profile_budget=3.0, induction_sizes=(4, 8, 16, 32, 64))


# ------------------------------------------------------------------ environment


def _git(*args: str) -> str:
    try:
        out = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return out.stdout.strip() if out.returncode == 0 else ""


def commit() -> str:
    """HEAD, with '+dirty' when the working tree differs from it (the figures are
    then of code that is not committed yet)."""
    head = _git("rev-parse", "--short=12", "HEAD") or "unknown"
    return head + ("+dirty" if _git("status", "--porcelain", "--untracked-files=no") else "")


def environment() -> dict[str, Any]:
    import hypothesis
    import z3

    return {
        "python": platform.python_version(),
        "z3": z3.get_version_string(),
        "hypothesis": hypothesis.__version__,
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
    }


def now_utc() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


# ------------------------------------------------------------------ running children


def run_child(name: str, args: dict[str, Any], hard_timeout: float) -> dict[str, Any]:
    """Run figures.NAME(**args) in a fresh process; its dict, or {"error": ...}.

    The child gets its own process group so that a run past `hard_timeout` is
    ended with everything it started (a submission's sandbox worker included).
    """
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.json"
        cmd = [sys.executable, "-m", "bench.worker", name, json.dumps(args), str(out)]
        started = time.monotonic()
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, start_new_session=True)
        try:
            _, err = proc.communicate(timeout=hard_timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            return {"error": f"killed after {hard_timeout:.0f} s", "killed": True,
                    "wall_s": time.monotonic() - started}
        if proc.returncode != 0 or not out.exists():
            tail = " | ".join(err.strip().splitlines()[-3:])
            return {"error": f"exit {proc.returncode}: {tail}",
                    "wall_s": time.monotonic() - started}
        result: dict[str, Any] = json.loads(out.read_text())
        result["wall_s"] = time.monotonic() - started
        return result


def _note(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


@dataclass
class Figure:
    """The runs of one figure, what they add up to, and when and where they ran."""

    name: str
    commit: str
    date: str
    quick: bool
    config: dict[str, Any]
    runs: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)

    def add(self, label: str, name: str, args: dict[str, Any],
            hard_timeout: float) -> dict[str, Any]:
        _note(f"  {label} ...")
        r = run_child(name, args, hard_timeout)
        r["label"], r["args"] = label, {k: v for k, v in args.items() if k != "launched_at"}
        self.runs.append(r)
        _note(f"    {_brief(r)}")
        return r

    def loads(self) -> list[float]:
        """The 1-minute load average each run started under."""
        return [r["loadavg_before"][0] for r in self.runs if "loadavg_before" in r]


def _brief(r: dict[str, Any]) -> str:
    if "error" in r:
        return "ERROR " + r["error"]
    keys = ("steps", "elapsed_s", "verdict", "property", "trace_len", "first_found_s", "cli_s",
            "maxrss_mib")
    return ", ".join(f"{k}={_fmt(r[k])}" for k in keys if k in r)


def _fmt(v: Any) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def median(values: Sequence[float | None]) -> float | None:
    xs = [v for v in values if v is not None]
    return statistics.median(xs) if xs else None


# ------------------------------------------------------------------ the figures


def measure_steps(fig: Figure, cfg: Config) -> None:
    """Checked and bare, alternating within each repetition so that a change of
    load hits both alike; the same seed per repetition gives both the same traces."""
    for npages in cfg.steps_sizes:
        for rep in range(cfg.repeat):
            args = {"npages": npages, "budget": cfg.steps_budget, "seed": rep}
            hard = cfg.steps_budget * 6 + 120
            fig.add(f"checked npages={npages} rep={rep}", "steps_checked", args, hard)
            fig.add(f"bare npages={npages} rep={rep}", "steps_bare", args, hard)
    fig.summary = summarize_steps(fig.runs)


def summarize_steps(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Per memory size: median rates per wall second and per CPU second, their
    ratios, and the peak memory, from the runs of measure_steps.

    The ratio is also taken within each repetition (checked and bare ran one
    after the other with the same seed) and per CPU second: on a shared
    machine the load can change between two 20-second runs, and the CPU-time
    ratio is the one that load disturbs least."""
    ok = [r for r in runs if "error" not in r]
    sizes = sorted({r["args"]["npages"] for r in ok})

    def pick(kind: str, npages: int) -> list[dict[str, Any]]:
        return [r for r in ok if r["args"]["npages"] == npages and r["label"].startswith(kind)]

    def rates(kind: str, npages: int, per: str = "elapsed_s") -> list[float]:
        return [r["steps"] / r[per] for r in pick(kind, npages) if r.get(per, 0) > 0]

    out: dict[str, Any] = {}
    for npages in sizes:
        checked, bare = median(rates("checked", npages)), median(rates("bare", npages))
        c_cpu, b_cpu = (median(rates("checked", npages, "run_cpu_s")),
                        median(rates("bare", npages, "run_cpu_s")))
        pairs = zip(pick("checked", npages), pick("bare", npages), strict=False)
        out[str(npages)] = {
            "checked_steps_per_s": checked, "bare_steps_per_s": bare,
            "ratio": checked / bare if checked and bare else None,
            "ratio_per_rep": [(c["steps"] / c["elapsed_s"]) / (b["steps"] / b["elapsed_s"])
                              for c, b in pairs],
            "checked_runs": rates("checked", npages), "bare_runs": rates("bare", npages),
            "checked_steps_per_cpu_s": c_cpu, "bare_steps_per_cpu_s": b_cpu,
            "ratio_cpu": c_cpu / b_cpu if c_cpu and b_cpu else None,
            "cpu_share": median([r["run_cpu_s"] / r["elapsed_s"] for r in pick("", npages)
                                 if r.get("run_cpu_s")]),
            "checked_maxrss_mib": median([r.get("maxrss_mib") for r in pick("checked", npages)]),
            "bare_maxrss_mib": median([r.get("maxrss_mib") for r in pick("bare", npages)]),
            "violations": sorted({v for r in pick("checked", npages)
                                  for v in r.get("violations", [])}),
        }
    return out


def measure_counterexamples(fig: Figure, cfg: Config) -> None:
    examples = sorted((REPO / cfg.cx_dir).glob("*.py"))
    for path in examples:
        rel = str(path.relative_to(REPO))
        for rep in range(cfg.repeat):
            args = {"path": rel, "budget": cfg.cx_budget, "launched_at": time.time(), "seed": 0}
            fig.add(f"{path.stem} rep={rep}", "counterexample", args, cfg.cx_budget * 3 + 120)
    for path in examples:
        rel = str(path.relative_to(REPO))
        runs = [r for r in fig.runs if r["args"]["path"] == rel]
        ok = [r for r in runs if "error" not in r]
        props = sorted({r.get("property") or "-" for r in ok})
        fig.summary[path.stem] = {
            "first_found_s": median([r.get("first_found_s") for r in ok]),
            "cli_s": median([r.get("cli_s") for r in ok]),
            "property": props[0] if len(props) == 1 else " / ".join(props),
            "trace_len": median([r.get("trace_len") for r in ok]),
            "rc": sorted({r.get("rc") for r in ok}),
            "all_found": sorted({f["property"] for r in ok for f in r.get("found", [])}),
            "errors": [r["error"] for r in runs if "error" in r],
        }


def _z3_outcome(r: dict[str, Any]) -> str:
    """"done" (the engine answered within its time), "timeout", or "error"."""
    if r.get("killed"):
        return TIMEOUT
    if "error" in r:
        return "error"
    if r.get("verdict") == "unknown":
        return TIMEOUT
    return "done"


def measure_z3(fig: Figure, cfg: Config) -> None:
    """One engine run per depth and repetition, each with its own timeout. A run
    that times out is not repeated, and the deeper depths are then skipped: they
    are harder questions on the same solver."""
    gave_up_at: int | None = None
    for depth in cfg.z3_depths:
        if gave_up_at is not None:
            fig.summary[str(depth)] = {"outcome": "skipped", "why": f"depth {gave_up_at} timed out"}
            continue
        runs = []
        for rep in range(cfg.repeat):
            args = {"npages": cfg.z3_pages, "depth": depth, "timeout": cfg.z3_timeout}
            runs.append(fig.add(f"bmc npages={cfg.z3_pages} depth={depth} rep={rep}", "z3_bounded",
                                args, cfg.z3_timeout * 1.5 + 120))
            if _z3_outcome(runs[-1]) != "done":
                break  # a timeout has no time to take the median of; repeating it only waits
        outcomes = [_z3_outcome(r) for r in runs]
        done = [r for r, o in zip(runs, outcomes, strict=True) if o == "done"]
        fig.summary[str(depth)] = {
            "outcome": "done" if len(done) == len(runs) else (
                TIMEOUT if TIMEOUT in outcomes else "error"),
            "outcomes": outcomes,
            "elapsed_s": median([r["elapsed_s"] for r in done]),
            "cpu_s": median([r.get("run_cpu_s") for r in runs if "error" not in r]),
            "verdicts": sorted({r.get("verdict", "-") for r in runs if "error" not in r}),
            "errors": sorted({r["error"] for r in runs if "error" in r and not r.get("killed")}),
            "skipped_properties": sorted({s for r in done for s in r.get("skipped", [])}),
            # How far the runs got: the deepest depth cleared, and the seconds each depth took.
            "depth_reached": [r.get("depth_checked") for r in runs if "error" not in r],
            "per_depth_s": [r.get("per_depth_s") for r in runs if "error" not in r],
            "summaries": sorted({r.get("summary", "") for r in runs if "error" not in r}),
        }
        if all(o == TIMEOUT for o in outcomes):
            gave_up_at = depth


def measure_induction(fig: Figure, cfg: Config) -> None:
    """Double the memory until k-induction no longer proves the spec within the
    time limit in every run; the largest size before that is the figure."""
    largest: int | None = None
    for npages in cfg.induction_sizes:
        runs = []
        for rep in range(cfg.repeat):
            args = {"npages": npages, "depth": cfg.induction_depth,
                    "timeout": cfg.induction_timeout, "induction": True}
            runs.append(fig.add(f"induction npages={npages} rep={rep}", "z3_bounded", args,
                                cfg.induction_timeout * 2 + 120))
            if runs[-1].get("verdict") != "proved":
                break  # not proved once is not proved: no need to repeat
        proved = all(r.get("verdict") == "proved" and r["elapsed_s"] <= cfg.induction_timeout
                     for r in runs)
        fig.summary[str(npages)] = {
            "proved": proved,
            "verdicts": [r.get("verdict", r.get("error", "-")) for r in runs],
            "elapsed_s": median([r.get("elapsed_s") for r in runs if "error" not in r]),
            "cpu_s": median([r.get("run_cpu_s") for r in runs if "error" not in r]),
            "notes": sorted({r.get("induction_note", "") for r in runs if r.get("induction_note")}),
        }
        if not proved:
            break
        largest = npages
    fig.summary["largest_proved"] = largest


def measure_sandbox(fig: Figure, cfg: Config) -> None:
    for rep in range(cfg.repeat):
        fig.add(f"sandbox rep={rep}", "sandbox", {"n": cfg.sandbox_calls}, 600)
    ok = [r for r in fig.runs if "error" not in r]
    names = list(ok[0]["calls"]) if ok else []
    for name in names:
        fig.summary[name] = {
            "wall_us": median([r["calls"][name]["wall_us"] for r in ok if name in r["calls"]]),
            "cpu_us": median([r["calls"][name]["cpu_us"] for r in ok if name in r["calls"]]),
        }


def measure_profile(fig: Figure, cfg: Config) -> None:
    """Per memory size, one run under cProfile and one with a stopwatch per
    property. Both instruments slow the run, so their rates are not figures; only
    the shares are, and those are not repeated."""
    for npages in cfg.profile_pages:
        args = {"npages": npages, "budget": cfg.profile_budget, "seed": 0}
        r = fig.add(f"profile npages={npages}", "profile", args, cfg.profile_budget * 10 + 120)
        keys = ("profiled_s", "by_tottime", "by_cumtime_mmcheck", "by_area", "run")
        summary = {k: r[k] for k in keys} if "error" not in r else {"error": r["error"]}
        b = fig.add(f"breakdown npages={npages}", "breakdown", args, cfg.profile_budget * 10 + 120)
        summary["breakdown"] = ({k: b[k] for k in ("run", "total_s", "costs")} if "error" not in b
                                else {"error": b["error"]})
        fig.summary[str(npages)] = summary


MEASURE: dict[str, Callable[[Figure, Config], None]] = {
    "steps": measure_steps,
    "counterexamples": measure_counterexamples,
    "z3": measure_z3,
    "induction": measure_induction,
    "sandbox": measure_sandbox,
    "profile": measure_profile,
}


# ------------------------------------------------------------------ main


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    p.add_argument("--only", metavar="NAMES", default=",".join(FIGURES),
                   help=f"comma-separated subset of: {', '.join(FIGURES)}")
    p.add_argument("--quick", action="store_true",
                   help="short budgets and one run each (a smoke test)")
    p.add_argument("--repeat", type=int, help="runs per figure (default 2; --quick: 1)")
    p.add_argument("--budget", type=float,
                   help="seconds per step-rate run (default 20; --quick: 5)")
    p.add_argument("--z3-timeout", type=float, help="seconds per bounded Z3 run (default 300)")
    p.add_argument("--output", metavar="PATH",
                   help="results file (default bench/results.json; "
                        "--quick: bench/results-quick.json)")
    p.add_argument("--report", action="store_true",
                   help="print the figures recorded in the results file as markdown; "
                        "measure nothing")
    return p


def _config(args: argparse.Namespace) -> Config:
    cfg = Config.quick_config() if args.quick else Config()
    if args.repeat is not None:
        cfg.repeat = max(1, args.repeat)
    if args.budget is not None:
        cfg.steps_budget = args.budget
    if args.z3_timeout is not None:
        cfg.z3_timeout = args.z3_timeout
    return cfg


def load_results(path: Path) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads(path.read_text())
        return data
    except (OSError, ValueError):
        return {"environment": {}, "figures": {}}


def main(argv: Sequence[str] | None = None) -> int:
    from bench.tables import render

    args = _parser().parse_args(argv)
    default = "bench/results-quick.json" if args.quick else "bench/results.json"
    out = Path(args.output) if args.output else REPO / default
    if args.report:
        print(render(load_results(out)))
        return 0
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [n for n in names if n not in MEASURE]
    if unknown:
        print(f"python -m bench: unknown figure(s) {', '.join(unknown)}; "
              f"choose from {', '.join(FIGURES)}", file=sys.stderr)
        return 2
    cfg = _config(args)
    results = load_results(out)
    results["environment"] = environment()
    results.setdefault("figures", {})
    rev = commit()
    for name in names:
        _note(f"{name} (commit {rev}, load {os.getloadavg()[0]:.2f}):")
        fig = Figure(name, rev, now_utc(), cfg.quick, asdict(cfg))
        MEASURE[name](fig, cfg)
        results["figures"][name] = asdict(fig)
        # Written after each figure: a crash or ^C later keeps what was measured.
        out.write_text(json.dumps(results, indent=1) + "\n")
    print(render(results, only=names))
    _note(f"results written to {out}")
    return 0
