"""The pytest plugin (entry point `pytest11: mmcheck`): spec files as tests.

Opt-in: it does nothing unless the project's pyproject.toml (pytest's rootdir)
has a `[tool.mmcheck]` table:

    [tool.mmcheck]
    targets = ["reference", "impl/my_buddy.py"]  # "reference": Linux's reference model
    engines = ["hypothesis"]                     # and/or "z3"
    traces = 100                                 # Hypothesis: random traces per check
    budget = 60                                  # optional: seconds per check, a safety limit
    seed = 0
    steps = 40                                   # Hypothesis: steps per trace
    vacuous = "skip"                             # or "fail": a property never exercised
    save = ".mmcheck"                            # where counterexample traces go ("": nowhere)

Then pytest collects every `*.mm` file it walks (testpaths, or the paths given)
as one test per property and target, named `PROPERTY[TARGET]`; a submission is
a target only of the specs of its subsystem (the contract class it defines).
A file-target pair is checked once, when its first test runs; each test then
passes, fails with mmcheck's counterexample report (trace, why, state, the
command that reproduces it), or is skipped as VACUOUS. A problem outside the
specs (a crash, a refinement problem) fails the test `contract[TARGET]`. So
`pytest --junitxml`, `-x`, `-k`, `-n` (pytest-xdist; `--dist loadfile` keeps a
file's tests on one worker, so each pair is checked once) work as usual.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

TOOL_KEYS = {"targets", "engines", "traces", "budget", "seed", "steps", "vacuous", "save"}


@dataclass
class Settings:
    """The `[tool.mmcheck]` table, checked."""

    targets: list[str] = field(default_factory=lambda: ["reference"])
    engines: list[str] = field(default_factory=lambda: ["hypothesis"])
    traces: int = 100
    budget: float | None = None  # an outer wall-clock limit only: work is `traces`
    seed: int = 0
    steps: int = 40
    vacuous: str = "skip"
    save: str = ".mmcheck"


def read_settings(rootdir: Path) -> Settings | None:
    """The project's settings, or None when it has no [tool.mmcheck] table."""
    path = rootdir / "pyproject.toml"
    if not path.is_file():
        return None
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib
    table = tomllib.loads(path.read_text()).get("tool", {}).get("mmcheck")
    if table is None:
        return None
    unknown = set(table) - TOOL_KEYS
    if unknown:
        raise pytest.UsageError(
            f"{path}: [tool.mmcheck] has no setting {', '.join(sorted(unknown))} "
            f"(it has {', '.join(sorted(TOOL_KEYS))})"
        )
    s = Settings(**table)
    if s.vacuous not in ("skip", "fail"):
        raise pytest.UsageError(f'{path}: [tool.mmcheck] vacuous is "skip" or "fail"')
    if not set(s.engines) <= {"hypothesis", "z3"}:
        raise pytest.UsageError(f'{path}: [tool.mmcheck] engines are "hypothesis" and "z3"')
    return s


_SETTINGS = pytest.StashKey["Settings | None"]()
_RUNS = pytest.StashKey[dict]()


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_SETTINGS] = read_settings(Path(config.rootpath))
    config.stash[_RUNS] = {}
    config.addinivalue_line("markers", "mmcheck: a property of a spec file, checked by mmcheck")


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if file_path.suffix != ".mm" or parent.config.stash.get(_SETTINGS, None) is None:
        return None
    return SpecFile.from_parent(parent, path=file_path)


def target_subsystem(target: str, rootdir: Path) -> str | None:
    """The subsystem of a target: None for the reference (it serves every one); for a
    submission, the one whose contract class its source defines (read, never imported)."""
    if target == "reference":
        return None
    from mmcheck.checker.subsystems import registry

    path = rootdir / target
    files = [path] if path.is_file() else sorted(path.rglob("*.py")) if path.is_dir() else []
    if not files:
        raise pytest.UsageError(f"[tool.mmcheck] target {target}: no such file or directory")
    text = "\n".join(f.read_text(errors="replace") for f in files)
    for decl in registry.declared():
        if re.search(rf"^class\s+{decl.contract_class}\b", text, re.M):
            return decl.name
    raise pytest.UsageError(f"[tool.mmcheck] target {target} defines no contract class")


class SpecFile(pytest.File):
    """One `.mm` file: a test per property and target, and one per target for the contract."""

    def collect(self):  # noqa: ANN201
        from mmcheck.spec.errors import SpecError as Bad
        from mmcheck.spec.loader import load

        settings: Settings = self.config.stash[_SETTINGS]
        try:
            checked = load(self.spec_arg())
        except Bad as err:
            raise self.CollectError(err.render()) from None
        for target in settings.targets:
            serves = target_subsystem(target, Path(self.config.rootpath))
            if serves not in (None, checked.subsystem):
                continue
            for prop in checked.spec.properties:
                yield PropertyItem.from_parent(
                    self, name=f"{prop.name}[{target}]", target=target, prop=prop.name,
                    line=prop.span.line,
                )
            yield PropertyItem.from_parent(
                self, name=f"contract[{target}]", target=target, prop="", line=1
            )

    def spec_arg(self) -> str:
        """The spec's path as mmcheck reports it: relative to where pytest was started."""
        return os.path.relpath(self.path, self.config.invocation_params.dir)


class PropertyItem(pytest.Item):
    def __init__(self, *, target: str, prop: str, line: int, **kw: Any) -> None:
        super().__init__(**kw)
        self.target, self.prop, self.line = target, prop, line
        self.add_marker(pytest.mark.mmcheck)

    def runtest(self) -> None:
        from mmcheck.checker.report import property_rows, render_counterexample

        report = self._report()
        mine = [
            (n, c) for n, c in enumerate(report.counterexamples, 1)
            if (c.violation.property == self.prop if self.prop else not c.violation.spec_path)
        ]
        if mine:
            raise Violated("\n\n".join("\n".join(render_counterexample(c, n)) for n, c in mine))
        if not self.prop:
            return
        row = next(r for r in property_rows(report) if r.name == self.prop)
        if row.status == "n/a":  # the target cannot show it: neither a pass nor a failure
            pytest.skip(f"not observable on {self.target}: {report.not_observable[self.prop]}")
        if row.status != "ok":
            why = (f"{row.status}: evaluated {row.checks} time(s), {row.live} of them "
                   "non-vacuous: it proved nothing")
            settings: Settings = self.config.stash[_SETTINGS]
            if settings.vacuous == "fail":
                raise Violated(why)
            pytest.skip(why)

    def _report(self):  # noqa: ANN202 - a Report
        """Check this item's file against its target, once per process."""
        runs = self.config.stash[_RUNS]
        spec_file: SpecFile = self.parent  # type: ignore[assignment]
        key = (str(spec_file.path), self.target)
        if key not in runs:
            runs[key] = _check(spec_file.spec_arg(), self.target, self.config)
        return runs[key]

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style=None):  # noqa: ANN001, ANN201
        if isinstance(excinfo.value, (Violated, Failed)):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, self.line - 1, f"mmcheck {self.name}"


class Violated(AssertionError):
    """A property of the spec is false on the target: the message is mmcheck's report."""


class Failed(Exception):
    """mmcheck could not run the check (a submission that does not load, a bad option)."""


def _check(spec: str, target: str, config: pytest.Config):  # noqa: ANN202 - a Report
    from mmcheck.checker.cli import check_reference, check_submission
    from mmcheck.checker.options import Options
    from mmcheck.checker.run import UsageError

    s: Settings = config.stash[_SETTINGS]
    impl = None if target == "reference" else os.path.relpath(
        Path(config.rootpath) / target, config.invocation_params.dir)
    from mmcheck.checker import interrupt

    options = Options(
        engines=tuple(s.engines), seed=s.seed, traces=s.traces, steps=s.steps,
        budget=None if s.budget is None else float(s.budget),
        save_dir=Path(s.save) if s.save else None, spec_args=[spec], impl_arg=impl,
    )
    try:
        with interrupt.watch(options.budget):
            if impl is None:
                (report,) = check_reference([spec], options)
                return report
            return check_submission(impl, [spec], options)
    except UsageError as err:
        raise Failed(f"mmcheck: {err}") from None


def pytest_report_header(config: pytest.Config) -> str | None:
    s = config.stash.get(_SETTINGS, None)
    if s is None:
        return None
    return (f"mmcheck: targets {', '.join(s.targets)}; engines {', '.join(s.engines)}; "
            f"{s.traces} traces; seed {s.seed}")
