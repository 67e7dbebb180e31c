"""The `mmcheck` command line.

    mmcheck check [SPEC...] [--impl PATH] [--engine hypothesis|z3|all]
                  [--seed N] [--traces N] [--budget SECONDS] [--format FORMAT]
    mmcheck replay TRACE.json [--impl PATH] [SPEC...]
    mmcheck specs                      list the standard library
    mmcheck vocab SUBSYSTEM            the names a spec of SUBSYSTEM can use
    mmcheck conform [--seed N] [--ops N]   the model against the live kernel

`mmcheck` alone prints this help and exits 2 (nothing was checked: a script
that runs it by mistake must not pass). Exit codes (checker/outcome.py): 0
every selected property was checked non-vacuously and held, 1 a violation was
found, 2 a usage, spec or submission error (or an engine failed), 3
inconclusive (something was not checked, or not enough: no encoding, zero
traces, vacuous, interrupted, out of time, a replayed trace that no longer
applies). Under `--format json` an error before the report is a JSON object on
stdout too (docs/json-format.md, "Error").
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from mmcheck.checker import interrupt, subsystems
from mmcheck.checker.formats import FORMATS, render
from mmcheck.checker.grade.store import UnsafeOutput
from mmcheck.checker.options import Options
from mmcheck.checker.outcome import ExitCode, combine
from mmcheck.checker.report import Report
from mmcheck.checker.run import (
    UsageError,
    check,
    check_trace_fits,
    load_saved_trace,
    not_started,
    property_rows,
)
from mmcheck.checker.sandbox.outcome import SandboxError
from mmcheck.checker.subsystems import registry
from mmcheck.checker.systems import SubmissionError, SubmissionMaker
from mmcheck.spec.errors import SpecError
from mmcheck.spec.loader import CheckedSpec, library, load

from mmcheck import __version__

DEFAULT_TRACES = 100
MAX_BUDGET = 10_000_000  # seconds (116 days): the wall-clock safety limit's largest value
FORMAT_HELP = (
    "what to print on stdout: text (default), json (docs/json-format.md), junit (JUnit XML), "
    "sarif (SARIF 2.1.0), itf (the Informal Trace Format of each counterexample), html (one "
    "self-contained page with pictures); see docs/outputs.md"
)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="mmcheck",
        description="Check memory-management specs against Linux's reference model "
        "or a submission.",
        epilog="exit codes: 0 everything holds, 1 a violation was found, 2 a usage, spec or "
        "submission error, 3 inconclusive. Start with: mmcheck check --impl YOUR_FILE.py",
    )
    p.add_argument(
        "--version", action="version", version=f"mmcheck {__version__}",
        help="print the version and exit",
    )
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    c = sub.add_parser("check", help="check specs (default: the standard library) against a target")
    c.add_argument(
        "specs", nargs="*", metavar="SPEC", help="spec files (.mm); default: the standard library"
    )
    c.add_argument(
        "--impl",
        metavar="PATH",
        help="a submission (.py file or package) to check instead of the reference model",
    )
    c.add_argument(
        "--engine",
        choices=["hypothesis", "z3", "all"],
        default="hypothesis",
        help="hypothesis: random traces (default); z3: bounded model checking and "
        "k-induction; all: both",
    )
    c.add_argument("--seed", type=int, default=0, help="first Hypothesis seed (default 0)")
    c.add_argument(
        "--traces",
        type=int,
        default=DEFAULT_TRACES,
        metavar="N",
        help=f"Hypothesis: random traces per subsystem, in chunks of 25 with seeds SEED, "
        f"SEED+1, ... (default {DEFAULT_TRACES}); the same seed and traces give the same answer",
    )
    c.add_argument(
        "--budget",
        type=float,
        default=None,
        metavar="SECONDS",
        help="wall-clock limit of the whole run (default: none). Only a safety limit: a run "
        "stopped by it is INCONCLUSIVE (exit 3) unless it found a violation",
    )
    c.add_argument(
        "--allow-vacuous",
        action="store_true",
        help="a property that was evaluated but never non-vacuously does not make the run "
        "inconclusive (it is still flagged VACUOUS)",
    )
    c.add_argument(
        "--steps",
        type=int,
        default=40,
        help="Hypothesis: steps per random trace (default 40)",
    )
    c.add_argument(
        "--depth",
        type=int,
        default=8,
        help="Z3: bound for model checking and induction (default 8)",
    )
    c.add_argument(
        "--z3-pages",
        type=int,
        default=None,
        help="Z3: memory size of the symbolic model (default: per subsystem, its "
        "registration's symbolic_pages; unless it says otherwise 8 for proofs on the "
        "reference model and 12 for submissions: not a power of two, which shows more bugs)",
    )
    c.add_argument(
        "--z3-rlimit",
        type=int,
        default=None,
        metavar="N",
        help="Z3: resource limit of each solver query, its budget of work (default 50000000; "
        "0 for none): the same limit gives the same answer on any machine",
    )
    c.add_argument(
        "--max-pages",
        type=int,
        default=5000,
        help="Hypothesis: largest memory to try, in pages (buddy, page tables; default 5000)",
    )
    c.add_argument(
        "--timeout",
        type=float,
        default=1.0,
        metavar="SECONDS",
        help="time limit of one submission call (default 1)",
    )
    c.add_argument(
        "--save",
        metavar="DIR",
        default=".mmcheck",
        help="where counterexample traces are written (default .mmcheck; '' for nowhere)",
    )
    c.add_argument("--format", choices=FORMATS, default="text", help=FORMAT_HELP)
    c.add_argument(
        "--no-timing",
        action="store_true",
        help="leave timings out of the text report and show no progress (for golden files)",
    )
    c.add_argument(
        "--progress",
        choices=["auto", "bar", "lines", "none"],
        default="auto",
        help="progress on stderr while engines run: bar (a live display), lines (a plain line "
        "every few seconds), none; auto (default): bar when stdout is a terminal, else lines; "
        "never with --format json",
    )

    r = sub.add_parser("replay", help="run a saved counterexample trace again")
    r.add_argument(
        "trace", metavar="TRACE.json", help="a trace file saved by check (under .mmcheck/)"
    )
    r.add_argument(
        "specs", nargs="*", metavar="SPEC",
        help="spec files to check; default: those the trace was recorded with",
    )
    r.add_argument(
        "--impl", metavar="PATH",
        help="the submission to run it on (its output is shown step by step); "
        "default: the reference model",
    )
    r.add_argument("--format", choices=FORMATS, default="text", help=FORMAT_HELP)
    r.add_argument(
        "--timeout", type=float, default=1.0, metavar="SECONDS",
        help="time limit of one submission call (default 1)",
    )

    sub.add_parser("specs", help="list the standard spec library")

    v = sub.add_parser(
        "vocab", help="list what a spec of a subsystem can name: records, state, operations"
    )
    v.add_argument(
        "subsystem", metavar="SUBSYSTEM", choices=sorted(registry.names()),
        help="one of: " + ", ".join(sorted(registry.names())),
    )
    g = sub.add_parser(
        "grade",
        help="grade submissions on an assignment's rubric (scores, Gradescope, feedback)",
        description="Grade each SUBMISSION (a .py file, a package folder, a Gradescope-style "
        "folder with submission/ inside, or a folder of those, one per student) on the "
        "rubric of ASSIGNMENT (a TOML file, see examples/assignment/assignment.toml). "
        "Already graded submissions are skipped: rerun to resume.",
    )
    g.add_argument("assignment", metavar="ASSIGNMENT.toml",
                   help="the assignment file: rubric items, specs and budgets")
    g.add_argument("submissions", nargs="+", metavar="SUBMISSION",
                   help="submission files or folders to grade")
    g.add_argument("--out", default=".mmcheck/grade", metavar="DIR",
                   help="where grades, feedback and score tables go (default .mmcheck/grade)")
    g.add_argument("--jobs", type=int, default=None, metavar="N",
                   help="submissions graded in parallel (default: the CPUs of this machine)")
    g.add_argument("--backend", choices=["process", "dask"], default="process",
                   help="process pool here, or Dask (needs mmcheck[cluster])")
    g.add_argument("--scheduler", metavar="ADDRESS",
                   help="Dask scheduler of a cluster (default: a local one)")
    g.add_argument("--format", choices=["table", "json"], default="table",
                   help="what to print on stdout: a score table (default) or JSON")

    k = sub.add_parser("conform", help="run the reference model against the live Linux kernel")
    k.add_argument("--seed", type=int, default=0, help="random seed of the operations (default 0)")
    k.add_argument(
        "--ops", type=int, default=2000, help="operations to run on both (default 2000)"
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        if args.command is None:
            parser.print_help()
            return ExitCode.ERROR
        if args.command == "check":
            return _check(args)
        if args.command == "replay":
            return _replay(args)
        if args.command == "specs":
            return _specs()
        if args.command == "vocab":
            return _vocab(args.subsystem)
        if args.command == "grade":
            return _grade(args)
        if args.command == "conform":
            return _conform(args)
    except SpecError as err:
        print(err.render(), file=sys.stderr)
        detail = err.to_json()
        detail["message"] = f"{detail.pop('kind')}: {detail['message']}"
        _json_error(args, {"kind": "spec", **detail})
        return ExitCode.ERROR
    except (UsageError, UnsafeOutput, SubmissionError) as err:
        print(f"mmcheck: error: {err}", file=sys.stderr)
        _json_error(args, {"kind": "usage", "message": str(err)})
        return ExitCode.ERROR
    except SandboxError as err:
        # Any other sandbox failure that escapes a driver (a class the submission
        # lacks, a worker that died while being set up): the submission's error.
        print(f"mmcheck: error: the submission cannot be checked: {err}", file=sys.stderr)
        _json_error(args, {"kind": "usage", "message": str(err)})
        return ExitCode.ERROR
    except KeyboardInterrupt:
        print("mmcheck: interrupted", file=sys.stderr)
        return ExitCode.INCONCLUSIVE
    except BrokenPipeError:
        # The reader went away (`mmcheck specs | head`): end quietly, as SIGPIPE would.
        _drop_output()
        return ExitCode.OK
    except Exception:  # noqa: BLE001 - a bug in mmcheck itself: say so, with the evidence
        import traceback

        traceback.print_exc()
        print(
            "mmcheck: internal error: this is a bug in mmcheck, not in your spec or submission; "
            "please report it with the traceback above",
            file=sys.stderr,
        )
        return ExitCode.ERROR
    return ExitCode.ERROR


def _json_error(args: argparse.Namespace, error: dict[str, object]) -> None:
    """Under --format json, the error as a JSON object on stdout (docs/json-format.md)."""
    if getattr(args, "format", None) != "json":
        return
    doc = {"format": 1, "mmcheck": __version__, "error": error, "exit_code": int(ExitCode.ERROR)}
    sys.stdout.write(json.dumps(doc, indent=2) + "\n")
    sys.stdout.flush()


def _load_specs(paths: Sequence[str], subsystem: str | None) -> list[CheckedSpec]:
    if paths:
        return [load(p) for p in paths]
    files = library(subsystem)
    return [load(f) for f in files if subsystem is not None or subsystems.driver(load(f).subsystem)]


def _emit(reports: list[Report], fmt: str, timing: bool = True) -> None:
    """Print the reports; a reader that stops reading (`| head`) cuts them short
    but not the verdict, which the exit code still gives."""
    text = render(reports, fmt, timing)
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        _drop_output()


def _drop_output() -> None:
    """Send the rest of stdout to /dev/null, so that neither a later print nor the
    flush at exit fails again on the closed pipe."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # not a real file (captured): nothing to redirect
        pass
    finally:
        os.close(devnull)


def _options(args: argparse.Namespace) -> Options:
    engines = ("hypothesis", "z3") if args.engine == "all" else (args.engine,)
    # not `<= 0`: nan passes that test, and a timer cannot be set past ~2**31 s
    if args.budget is not None and not 0 < args.budget <= MAX_BUDGET:
        raise UsageError(f"--budget must be positive: a number of seconds, at most {MAX_BUDGET:,}")
    if args.traces < 1:
        raise UsageError("--traces must be at least 1")
    if args.max_pages < 1:
        raise UsageError("--max-pages must be at least 1")
    if args.z3_rlimit is not None and args.z3_rlimit < 0:
        raise UsageError("--z3-rlimit must be 0 (no limit) or more")
    if args.depth < 1:
        raise UsageError("--depth must be at least 1")
    if args.steps < 1:
        raise UsageError("--steps must be at least 1")
    if args.z3_rlimit is not None and args.z3_rlimit < 0:
        raise UsageError("--z3-rlimit must be 0 (no limit) or more")
    if args.z3_pages is not None and args.z3_pages < 1:
        raise UsageError("--z3-pages must be at least 1")
    return Options(
        engines=engines,
        seed=args.seed,
        traces=args.traces,
        budget=args.budget,
        allow_vacuous=args.allow_vacuous,
        depth=args.depth,
        z3_pages=args.z3_pages,
        z3_rlimit=args.z3_rlimit,
        save_dir=Path(args.save) if args.save else None,
        max_pages=args.max_pages,
        timeout_per_call=args.timeout,
        steps=args.steps,
        spec_args=list(args.specs),
        impl_arg=args.impl,
    )


def _check(args: argparse.Namespace) -> int:
    from mmcheck.checker.progress import display

    options = _options(args)
    shown = display(args.progress, args.format, not args.no_timing)
    options.progress = shown
    try:
        with interrupt.watch(options.budget):
            if args.impl:
                reports = [check_submission(args.impl, args.specs, options)]
            else:
                reports = check_reference(args.specs, options)
    finally:
        if shown is not None:
            shown.close()
    _emit(reports, args.format, not args.no_timing)
    return combine(r.exit_code for r in reports)


def check_reference(spec_paths: Sequence[str], options: Options) -> list[Report]:
    """Specs (default: the standard library) against the reference model, one report per
    subsystem; once a stop is requested (checker/interrupt.py) the subsystems not yet
    checked are reported as not run."""
    specs = _load_specs(spec_paths, None)
    if not specs:
        raise UsageError("no spec to check")
    reports = []
    groups = list(dict.fromkeys(c.subsystem for c in specs))
    for subsystem in groups:
        group = [c for c in specs if c.subsystem == subsystem]
        driver = subsystems.driver(subsystem)
        if driver is None:
            raise UsageError(
                f"the {subsystem} subsystem has a model but no engine driver yet; "
                f"check it with the unit tests for now"
            )
        if interrupt.requested():
            reports.append(_not_checked(group, subsystem, options))
            continue
        reports.append(
            check(group, subsystem, driver.ReferenceSystem, "the reference model", options, False)
        )
    return reports


def _not_checked(group: list[CheckedSpec], subsystem: str, options: Options) -> Report:
    """The report of a subsystem a stop kept from being checked at all."""
    rows = property_rows(group)
    report = Report("the reference model", subsystem, [c.path for c in group], properties=rows)
    report.runs = [not_started(e) for e in options.engines]
    return report


def _open_submission(path: str, timeout: float):  # -> Submission
    from mmcheck.checker.sandbox.client import LoadError, Submission

    p = Path(path)
    try:
        found = p.exists()
    except OSError as err:  # a name too long for the file system, say
        raise UsageError(f"{path[:200]}: {err.strerror}") from None
    if not found:
        raise UsageError(f"{path}: no such file or directory")
    try:
        return Submission.open(p, timeout_per_call=timeout)
    except LoadError as err:
        raise UsageError(f"the submission {path} did not load: {err}") from None


def _subsystem_of(sub, path: str) -> str:  # noqa: ANN001
    found = [registry.subsystem_of_class(c) for c in sub.classes()]
    drivable = [s for s in found if s]
    if not drivable:
        have = ", ".join(sub.classes()) or "none of the contract classes"
        raise UsageError(
            f"{path} defines {have}; mmcheck can check "
            + ", ".join(registry.contract_classes())
            + " submissions (see docs/contract.md)"
        )
    return drivable[0]


def check_submission(impl: str, spec_paths: Sequence[str], options: Options) -> Report:
    """Specs (default: the library of the submission's subsystem) against a submission."""
    sub = _open_submission(impl, options.timeout_per_call)
    try:
        subsystem = _subsystem_of(sub, impl)
        specs = _load_specs(spec_paths, subsystem)
        wrong = [c.path for c in specs if c.subsystem != subsystem]
        if wrong:
            raise UsageError(
                f"{', '.join(wrong)} state(s) properties of another subsystem than "
                f"{subsystem}, which {impl} implements"
            )
        driver = subsystems.driver(subsystem)
        assert driver is not None

        make_system = SubmissionMaker(sub, driver)
        hidden = driver.hidden_names(sub) if driver.hidden_names else frozenset()
        report = check(specs, subsystem, make_system, impl, options, True, hidden)
        missing = [x[1:] for x in sub.layers if x.startswith("-")]
        if missing:
            report.notes.append("sandbox isolation layers NOT in force: " + "; ".join(missing))
        if sub.stdout.strip():
            report.notes.append(
                "the submission printed to stdout (last lines): "
                + " | ".join(sub.stdout.strip().splitlines()[-3:])
            )
    finally:
        sub.close()
    return report


def _replay(args: argparse.Namespace) -> int:
    report, diverged = replay_file(args.trace, args.specs, args.impl, args.timeout)
    _emit([report], args.format)
    if diverged and not report.counterexamples:
        return ExitCode.INCONCLUSIVE
    return report.exit_code


def replay_file(
    trace_path: str, spec_paths: Sequence[str], impl: str | None, timeout: float = 1.0
) -> tuple[Report, str]:
    """A saved trace run again on `impl` (None: the reference model), checking
    `spec_paths` (default: those it was recorded with); the report, and where the
    target stopped following the trace ("" if it never did)."""
    from mmcheck.checker.evaluate import CompiledSpec
    from mmcheck.checker.replaying import recorded_specs, replay_report

    saved, trace, prop = load_saved_trace(Path(trace_path))
    driver = subsystems.driver(trace.subsystem)
    if driver is None:
        raise UsageError(f"no driver for the {trace.subsystem} subsystem")
    check_trace_fits(trace, trace_path)
    try:
        driver.ReferenceSystem(trace.setup).close()
    except (ValueError, TypeError, KeyError) as err:
        raise UsageError(
            f"{trace_path}: the setup {dict(trace.setup)} does not fit the {trace.subsystem} "
            f"model ({type(err).__name__}: {err})"
        ) from None
    spec_args = list(spec_paths) or recorded_specs(saved, trace_path)
    specs_checked = _load_specs(spec_args, trace.subsystem)
    specs = [CompiledSpec(c) for c in specs_checked]
    def open_matching(path: str, timeout: float):  # noqa: ANN202 - a Submission
        """The submission, if it implements the trace's subsystem (else a UsageError)."""
        sub = _open_submission(path, timeout)
        try:
            found = _subsystem_of(sub, path)
        except BaseException:
            sub.close()
            raise
        if found != trace.subsystem:
            sub.close()
            raise UsageError(
                f"{trace_path} is a trace of the {trace.subsystem} subsystem, but {path} "
                f"implements {found}: replay it against a {trace.subsystem} submission"
            )
        return sub

    return replay_report(
        trace_path, spec_args, impl, timeout, driver, trace, prop, specs,
        [c.path for c in specs_checked], open_matching,
    )


def _grade(args: argparse.Namespace) -> int:
    import json

    from mmcheck.checker.grade import batch, feedback
    from mmcheck.checker.grade.assignment import AssignmentError
    from mmcheck.checker.grade.assignment import load as load_assignment
    from mmcheck.checker.grade.score import load_specs
    try:
        assignment = load_assignment(args.assignment)
        load_specs(assignment)
        jobs = batch.discover([Path(p) for p in args.submissions])
    except (AssignmentError, FileNotFoundError, ValueError) as err:
        raise UsageError(str(err)) from None
    if not jobs:
        raise UsageError("no submission found in " + ", ".join(args.submissions))
    workers = args.jobs or batch.default_workers()
    try:
        grades = batch.run_batch(Path(args.assignment), jobs, Path(args.out), workers,
                                 args.backend, args.scheduler)
    except KeyboardInterrupt:
        print(f"mmcheck: interrupted; the grades written so far are in {args.out}, "
              "run the same command again to grade the rest", file=sys.stderr)
        return ExitCode.INCONCLUSIVE
    if args.format == "json":
        print(json.dumps([g.to_json() for g in grades], indent=2))
    else:
        sys.stdout.write(feedback.table(grades))
        print(f"\ngrades, feedback and Gradescope results: {args.out}/STUDENT/; "
              f"tables: {args.out}/scores.csv, scores.json")
        layers = sorted({x for g in grades for x in g.layers})
        missing = [x[1:] for x in layers if x.startswith("-")]
        if missing:
            print("isolation layers NOT in force: " + "; ".join(missing))
    incomplete = [g.student for g in grades if g.error.startswith("incomplete")]
    if incomplete:
        print(f"mmcheck: {len(incomplete)} grade(s) incomplete (the wall-clock limit per "
              f"submission ran out): {', '.join(incomplete[:10])}; run the same command "
              "again to finish them", file=sys.stderr)
        return ExitCode.INCONCLUSIVE
    return ExitCode.OK


def _specs() -> int:
    for f in library():
        c = load(f)
        print(f"{f}  ({c.subsystem}): {c.spec.doc}")
        for p in c.spec.properties:
            print(f"  {p.name:<32} {p.doc}")
    return ExitCode.OK


def _vocab(subsystem: str) -> int:
    from mmcheck.checker.vocab import render_vocabulary

    sys.stdout.write(render_vocabulary(subsystem))
    return ExitCode.OK


def _conform(args: argparse.Namespace) -> int:
    try:
        from mmcheck.checker.live.conform import run_conformance
    except ImportError as err:
        raise UsageError(f"the live-kernel conformance harness is not available: {err}") from None
    report = run_conformance(seed=args.seed, ops=args.ops)
    print(report)
    return ExitCode.OK if report.ok else ExitCode.VIOLATION


if __name__ == "__main__":
    raise SystemExit(main())
