"""Grading many submissions: find them, grade each in a process of its own (a
process pool on this machine, or Dask for a cluster), skip those already
graded, write every result atomically, show progress.

Layout of the output folder (made by us; see store.py):

    OUT/STUDENT/grade.json       the Grade (what every other file is made from)
    OUT/STUDENT/results.json     Gradescope's format
    OUT/STUDENT/feedback.md      for the student, and feedback.html
    OUT/STUDENT/ITEM.json        the trace of each lost visible item (mmcheck replay)
    OUT/scores.csv, scores.json  one row per student, one column per rubric item

A student's grade.json records a key made of the assignment, its specs and the
submission's bytes; a rerun skips every student whose key is unchanged, so an
interrupted batch resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mmcheck.checker.grade import feedback
from mmcheck.checker.grade.assignment import Assignment
from mmcheck.checker.grade.assignment import load as load_assignment
from mmcheck.checker.grade.score import Grade, grade
from mmcheck.checker.grade.store import make_folder, read_json, slug, write_atomic

SOURCE_SUFFIXES = (".py", ".c")  # what the sandbox's loaders take (client.KNOWN_LOADERS)


@dataclass(frozen=True)
class Job:
    student: str
    path: Path  # the .py file or package folder to load


def discover(paths: Sequence[Path]) -> list[Job]:
    """Submissions named on the command line: a .py file, a package folder, a
    Gradescope-style folder (with submission/ inside), or a folder of those,
    one per student (the student is the file's stem or the folder's name)."""
    jobs: list[Job] = []
    for p in paths:
        one = _submission_in(p)
        if one is not None:
            jobs.append(Job(slug(p.stem if p.is_file() else p.name), one))
            continue
        if not p.is_dir():
            raise FileNotFoundError(f"{p}: no such file or folder")
        for entry in sorted(p.iterdir()):
            if entry.name.startswith((".", "_")) or entry.is_symlink():
                continue
            found = _submission_in(entry)
            if found is not None:
                jobs.append(Job(slug(entry.stem if entry.is_file() else entry.name), found))
    students = [j.student for j in jobs]
    dupes = sorted({s for s in students if students.count(s) > 1})
    if dupes:
        raise ValueError(f"two submissions for the same student: {', '.join(dupes)}")
    return jobs


def _submission_in(p: Path) -> Path | None:
    """The loadable submission `p` is, or None if it is a folder of several."""
    if p.is_file():
        return p if p.suffix in SOURCE_SUFFIXES else None
    if not p.is_dir():
        return None
    if (p / "__init__.py").is_file():
        return p
    inner = p / "submission"
    if inner.is_dir():
        if (inner / "__init__.py").is_file():
            return inner
        files = sorted(f for f in inner.iterdir() if f.suffix in SOURCE_SUFFIXES and f.is_file())
        return files[0] if len(files) == 1 else inner
    files = sorted(f for f in p.iterdir() if f.suffix in SOURCE_SUFFIXES and f.is_file())
    return files[0] if len(files) == 1 and not any(x.is_dir() for x in p.iterdir()) else None


def key_of(assignment: Assignment, submission: Path) -> str:
    """What a grade depends on: the assignment file, its specs, the submission."""
    h = hashlib.sha256()
    for f in (assignment.path, *assignment.all_specs):
        h.update(Path(f).read_bytes())
    files = sorted(submission.rglob("*")) if submission.is_dir() else [submission]
    for f in files:
        if f.is_file() and not f.is_symlink():
            h.update(str(f.relative_to(submission.parent)).encode())
            h.update(f.read_bytes())
    return h.hexdigest()


def grade_one(assignment_path: str, job: Job, out: str) -> dict[str, Any]:
    """Grade one job and write its files (runs in a pool or Dask worker process)."""
    assignment = load_assignment(assignment_path)
    folder = make_folder(Path(out) / job.student)
    result = grade(assignment, job.path, job.student, folder)
    data = result.to_json()
    # an incomplete grade (the outer wall-clock limit) is not final: a rerun redoes it
    data["key"] = "" if result.error.startswith("incomplete") else key_of(assignment, job.path)
    write_outputs(folder, result)
    write_atomic(folder, "grade.json", data)  # last: its presence means "done"
    return data


def write_outputs(folder: Path, result: Grade) -> None:
    write_atomic(folder, "results.json", feedback.gradescope(result))
    write_atomic(folder, "feedback.md", feedback.markdown(result))
    write_atomic(folder, "feedback.html", feedback.html_page(result))


def done_already(assignment: Assignment, job: Job, out: Path) -> Grade | None:
    data = read_json(out / job.student, "grade.json") if (out / job.student).is_dir() else None
    if not isinstance(data, dict) or data.get("key") != key_of(assignment, job.path):
        return None
    data = {k: v for k, v in data.items() if k != "key"}
    try:
        return Grade.from_json(data)
    except (TypeError, KeyError):
        return None


class Progress:
    """A one-line progress bar on stderr (plain lines when stderr is not a terminal)."""

    def __init__(self, total: int, stream: Any = None) -> None:
        self.total, self.done, self.start = total, 0, time.monotonic()
        self.stream = stream or sys.stderr
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()

    def step(self, student: str, score: str) -> None:
        self.done += 1
        elapsed = time.monotonic() - self.start
        eta = elapsed / self.done * (self.total - self.done)
        bar = "#" * (20 * self.done // max(self.total, 1))
        line = (f"[{bar:<20}] {self.done}/{self.total}  {student}: {score}  "
                f"({elapsed:.0f} s, about {eta:.0f} s left)")
        if self.tty:
            self.stream.write("\r" + line[:120].ljust(120))
            if self.done == self.total:
                self.stream.write("\n")
        else:
            self.stream.write(line + "\n")
        self.stream.flush()


def run_batch(assignment_path: Path, jobs: Sequence[Job], out: Path, workers: int = 1,
              backend: str = "process", scheduler: str | None = None,
              progress: Progress | None = None) -> list[Grade]:
    """Grade every job not graded already; returns all grades in the jobs' order."""
    assignment = load_assignment(assignment_path)
    make_folder(out)
    grades: dict[str, Grade] = {}
    todo = []
    for job in jobs:
        old = done_already(assignment, job, out)
        if old is not None:
            grades[job.student] = old
        else:
            todo.append(job)
    progress = progress or Progress(len(todo))
    runner = _run_dask if backend == "dask" else _run_pool
    try:
        for data in runner(str(assignment_path), todo, str(out), workers, scheduler):
            g = Grade.from_json({k: v for k, v in data.items() if k != "key"})
            grades[g.student] = g
            progress.step(g.student, f"{g.score:g}/{g.max_score:g}")
    finally:  # an interrupted batch still leaves the table of what is done
        done = [grades[j.student] for j in jobs if j.student in grades]
        write_atomic(out, "scores.csv", feedback.csv_text(done))
        write_atomic(out, "scores.json", feedback.score_rows(done))
    return done


def _run_pool(assignment: str, jobs: Sequence[Job], out: str, workers: int,
              scheduler: str | None) -> Iterable[dict[str, Any]]:
    if workers <= 1 or len(jobs) <= 1:
        for job in jobs:
            yield grade_one(assignment, job, out)
        return
    with ProcessPoolExecutor(max_workers=workers) as pool:
        pending = {pool.submit(grade_one, assignment, job, out) for job in jobs}
        try:
            while pending:
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                for f in finished:
                    yield f.result()
        finally:
            for f in pending:
                f.cancel()


def _run_dask(assignment: str, jobs: Sequence[Job], out: str, workers: int,
              scheduler: str | None) -> Iterable[dict[str, Any]]:
    """The same jobs on Dask: a scheduler at `scheduler`, else a LocalCluster of
    `workers` single-threaded processes (Hypothesis is not thread-safe)."""
    try:
        from dask.distributed import Client, LocalCluster, as_completed
    except ImportError:
        raise RuntimeError("the dask backend needs `pip install mmcheck[cluster]` "
                           "(dask.distributed)") from None
    cluster: Callable[[], Any]
    if scheduler:
        client = Client(scheduler)
        cluster = client.close
    else:
        local = LocalCluster(n_workers=max(workers, 1), threads_per_worker=1, processes=True,
                             dashboard_address=None, silence_logs=40)
        client = Client(local)

        def cluster() -> None:
            client.close()
            local.close()
    try:
        futures = client.map(grade_one, [assignment] * len(jobs), list(jobs),
                             [out] * len(jobs), pure=False)
        for future in as_completed(futures):
            yield future.result()
    finally:
        cluster()


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
               else os.cpu_count() or 1)
