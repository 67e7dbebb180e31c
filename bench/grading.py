"""Batch grading throughput: `python -m bench.grading [--per-subsystem N] [--workers 1 2]`;
`python -m bench.grading --grade ASSIGNMENT SUBMISSION...`: score, CPU and wall
seconds of each submission graded in this process (and its sandbox workers).

For every subsystem with a driver and examples (examples/<subsystem>/correct
and buggy), an assignment is made with one rubric item per standard-library
property and the problem items, at the effort of examples/assignment (30
traces of 20 steps per item); N submissions per subsystem (the examples in
turn, correct and buggy alternating) are graded with 1, 2, ... workers. The
figure that matters on a shared machine is CPU seconds per submission (the
children's user+sys time), which does not depend on the load; wall time is
printed too. The extrapolation to the issue's target (300 submissions x 5
subsystems) divides total CPU by the cores. Results: docs/benchmarks.md,
"Batch grading".
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path

from mmcheck.checker.grade import batch
from mmcheck.checker.subsystems import registry
from mmcheck.spec.loader import library, load

ROOT = Path(__file__).resolve().parents[1]
EFFORT = "[effort]\ntraces = 30\nsteps = 20\nseed = 0\nmax_pages = 256\n"


def assignment_for(subsystem: str, folder: Path) -> Path | None:
    specs = [f for f in library(subsystem) if load(f).subsystem == subsystem]
    if not specs:
        return None
    props = [p.name for f in specs for p in load(f).spec.properties]
    lines = ["[assignment]", f"name = 'bench {subsystem}'", f"subsystem = '{subsystem}'",
             "specs = [" + ", ".join(f"'std:{Path(f).name}'" for f in specs) + "]", EFFORT,
             "[limits]\ncall_seconds = 1.0\n"]
    for p in props:
        lines += ["[[item]]", f"name = '{p}'", f"properties = ['{p}']", "points = 1", ""]
    lines += ["[[item]]", "name = 'crashes'", "problems = ['crash', 'timeout', 'protocol']",
              "points = 1", "", "[[item]]", "name = 'refinement'",
              "problems = ['refinement']", "points = 1"]
    path = folder / f"{subsystem}.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def submissions_for(subsystem: str, n: int, folder: Path) -> list[batch.Job]:
    """n copies of the subsystem's examples, correct and buggy in turn (a course's
    mix: half of the submissions right), each kind cycling through its files."""
    kinds = [sorted((ROOT / "examples" / subsystem / k).glob("*.py")) for k in ("correct", "buggy")]
    kinds = [k for k in kinds if k]
    jobs = []
    for i in range(n):
        examples = kinds[i % len(kinds)]
        src = examples[(i // len(kinds)) % len(examples)]
        dst = folder / subsystem / f"s{i:03d}_{src.stem}.py"
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(src, dst)
        jobs.append(batch.Job(dst.stem, dst))
    return jobs


def children_cpu() -> float:
    """CPU of this process and of every child reaped (pool workers, sandboxes)."""
    return sum(r.ru_utime + r.ru_stime for r in (resource.getrusage(resource.RUSAGE_SELF),
                                                  resource.getrusage(resource.RUSAGE_CHILDREN)))


def grade_each(assignment: Path, submissions: list[Path]) -> None:
    """One JSON line per submission: its score, CPU and wall seconds, the load."""
    from mmcheck.checker.grade.assignment import load as load_assignment
    from mmcheck.checker.grade.score import grade

    rubric = load_assignment(assignment)
    for path in submissions:
        cpu0, t0 = children_cpu(), time.monotonic()
        g = grade(rubric, path)
        print(json.dumps({"submission": str(path), "score": g.score, "max_score": g.max_score,
                          "cpu_s": round(children_cpu() - cpu0, 1),
                          "wall_s": round(time.monotonic() - t0, 1),
                          "load_average": os.getloadavg()[0]}), flush=True)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--per-subsystem", type=int, default=2)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--subsystems", nargs="*", default=None)
    ap.add_argument("--grade", nargs="+", type=Path, default=None,
                    metavar="ASSIGNMENT SUBMISSION", help="grade each submission here")
    args = ap.parse_args()
    if args.grade:
        grade_each(args.grade[0], args.grade[1:])
        return 0
    names = args.subsystems or [s for s in registry.names() if
                                (ROOT / "examples" / s).is_dir()]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for workers in args.workers:
            for sub in names:
                toml = assignment_for(sub, folder)
                if toml is None:
                    continue
                jobs = submissions_for(sub, args.per_subsystem, folder / f"w{workers}")
                out = folder / f"out-{workers}-{sub}"
                cpu0, t0 = children_cpu(), time.monotonic()
                batch.run_batch(toml, jobs, out, workers)
                cpu, wall = children_cpu() - cpu0, time.monotonic() - t0
                rows.append({"subsystem": sub, "workers": workers, "submissions": len(jobs),
                             "cpu_s": round(cpu, 1), "wall_s": round(wall, 1),
                             "cpu_per_submission_s": round(cpu / len(jobs), 1)})
                print(json.dumps(rows[-1]), flush=True)
    per = {r["subsystem"]: r["cpu_per_submission_s"] for r in rows if r["workers"] == 1} or \
        {r["subsystem"]: r["cpu_per_submission_s"] for r in rows}
    mean = sum(per.values()) / len(per)
    target = 300 * 5 * mean / 2 / 60
    print(json.dumps({"cpu_per_submission_mean_s": round(mean, 1),
                      "extrapolated_300x5_on_2_cores_min": round(target, 1),
                      "load_average": os.getloadavg()[0]}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
