"""An assignment file (TOML): what to check, how hard, and what each item is worth.

    [assignment]
    name = "Lab 2: a buddy allocator"
    subsystem = "buddy"
    specs = ["std:buddy.mm", "course.mm"]      # std: = the standard library
    hidden_specs = ["hidden/extra.mm"]          # properties never shown to students

    [effort]                # work, not time: the same score on any machine
    traces = 100            # random traces per rubric item
    steps = 30              # steps per trace
    seed = 0
    max_pages = 512
    min_checked = 0.5       # an item counts only if this share of its traces ran clean

    [limits]                # outer safety limits (seconds, MiB)
    call_seconds = 3.0
    submission_seconds = 3600
    memory_mb = 1024

    [[item]]
    name = "coalescing"
    properties = ["coalesced"]
    points = 10
    partial = false         # true: points shared among the properties that held
    visible = true          # false: the student sees the score, not the counterexample
    robustness = false      # true: crashes and illegal choices on the way count against it

    [[item]]
    name = "no crashes, hangs or illegal choices"
    problems = ["crash", "timeout", "protocol", "refinement"]
    points = 10

Paths are relative to the assignment file. Every problem kind must be graded by
some item (or listed in `[assignment] ignore_problems`), so that a submission
that crashes at once cannot collect the points of properties it never reached.
"""

from __future__ import annotations

import sys
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

PROBLEM_KINDS = ("crash", "timeout", "protocol", "refinement")


class AssignmentError(Exception):
    """The assignment file is wrong; the message names the file and the field."""


@dataclass(frozen=True)
class Item:
    """One rubric line: properties of the specs, or kinds of problem."""

    name: str
    points: float
    properties: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()
    partial: bool = False
    visible: bool = True
    robustness: bool = False


@dataclass(frozen=True)
class Effort:
    traces: int = 100
    steps: int = 30
    seed: int = 0
    max_pages: int = 512
    min_checked: float = 0.5


@dataclass(frozen=True)
class Limits:
    call_seconds: float = 3.0
    submission_seconds: float = 3600.0  # outer safety only: hitting it leaves the grade
    # incomplete (redone by the next run), never a lower score
    memory_mb: int = 1024


@dataclass(frozen=True)
class Assignment:
    path: Path
    name: str
    subsystem: str
    specs: tuple[Path, ...]
    hidden_specs: tuple[Path, ...]
    items: tuple[Item, ...]
    effort: Effort = field(default_factory=Effort)
    limits: Limits = field(default_factory=Limits)

    @property
    def max_score(self) -> float:
        return sum(i.points for i in self.items)

    @property
    def all_specs(self) -> tuple[Path, ...]:
        return self.specs + self.hidden_specs


def _fields(table: Any, where: str, cls: type, path: Path) -> dict[str, Any]:
    """The keys of `table` checked against the dataclass `cls` (names and types)."""
    if not isinstance(table, dict):
        raise AssignmentError(f"{path}: [{where}] must be a table")
    known = typing.get_type_hints(cls)
    out = {}
    for key, value in table.items():
        if key not in known or key == "path":
            raise AssignmentError(f"{path}: [{where}] has no field '{key}' "
                                  f"(it has {', '.join(known)})")
        want = typing.get_origin(known[key]) or known[key]
        if want is tuple:
            if not (isinstance(value, list) and all(isinstance(x, str) for x in value)):
                raise AssignmentError(f"{path}: [{where}] {key} must be a list of strings")
            value = tuple(value)
        elif want is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        elif not isinstance(value, want) or isinstance(value, bool) != (want is bool):
            raise AssignmentError(f"{path}: [{where}] {key} must be {want.__name__}, "
                                  f"not {type(value).__name__}")
        out[key] = value
    return out


def _spec_path(name: str, base: Path) -> Path:
    if name.startswith("std:"):
        from mmcheck.spec.loader import library

        for f in library():
            if Path(f).name == name[4:]:
                return Path(f)
        raise AssignmentError(f"no standard spec named {name[4:]!r}")
    path = (base / name).resolve()
    if not path.is_file():
        raise AssignmentError(f"spec file {path} does not exist")
    return path


def load(path: str | Path) -> Assignment:
    """Read and check an assignment file. Raises AssignmentError."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except OSError as e:
        raise AssignmentError(f"{path}: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise AssignmentError(f"{path}: not valid TOML: {e}") from None
    unknown = set(data) - {"assignment", "effort", "limits", "item"}
    if unknown:
        raise AssignmentError(f"{path}: unknown table(s) {', '.join(sorted(unknown))}")
    head = data.get("assignment")
    if not isinstance(head, dict) or "subsystem" not in head:
        raise AssignmentError(f"{path}: needs an [assignment] table with a subsystem")
    base = path.parent
    try:
        specs = tuple(_spec_path(s, base) for s in head.get("specs", []))
        hidden = tuple(_spec_path(s, base) for s in head.get("hidden_specs", []))
    except AssignmentError as e:
        raise AssignmentError(f"{path}: {e}") from None
    if not specs:
        raise AssignmentError(f"{path}: [assignment] specs lists no spec file")
    effort = Effort(**_fields(data.get("effort", {}), "effort", Effort, path))
    limits = Limits(**_fields(data.get("limits", {}), "limits", Limits, path))
    if effort.traces < 1 or effort.steps < 1:
        raise AssignmentError(f"{path}: [effort] traces and steps must be at least 1")
    raw_items = data.get("item", [])
    if not isinstance(raw_items, list) or not raw_items:
        raise AssignmentError(f"{path}: the rubric has no [[item]]")
    items = tuple(_item(x, i, path) for i, x in enumerate(raw_items))
    _check_coverage(items, head.get("ignore_problems", []), path)
    return Assignment(path, str(head.get("name", path.stem)), str(head["subsystem"]), specs,
                      hidden, items, effort, limits)


def _item(raw: Any, index: int, path: Path) -> Item:
    where = f"item {index + 1}"
    fields = _fields(raw, where, Item, path)
    if "name" not in fields or "points" not in fields:
        raise AssignmentError(f"{path}: [[item]] {index + 1} needs a name and points")
    item = Item(**fields)
    if bool(item.properties) == bool(item.problems):
        raise AssignmentError(f"{path}: item '{item.name}' needs properties or problems "
                              "(one of the two)")
    bad = [k for k in item.problems if k not in PROBLEM_KINDS]
    if bad:
        raise AssignmentError(f"{path}: item '{item.name}': unknown problem kind(s) "
                              f"{', '.join(bad)} (kinds: {', '.join(PROBLEM_KINDS)})")
    if item.points < 0:
        raise AssignmentError(f"{path}: item '{item.name}': points must not be negative")
    return item


def _check_coverage(items: tuple[Item, ...], ignored: list[str], path: Path) -> None:
    graded = {k for i in items for k in i.problems} | set(ignored)
    missing = [k for k in PROBLEM_KINDS if k not in graded]
    if missing:
        raise AssignmentError(
            f"{path}: no item grades the problem kind(s) {', '.join(missing)}: add an item "
            "with problems = [...] (or list them in [assignment] ignore_problems), or a "
            "submission that crashes at once keeps the points of what it never reached")
    names = [i.name for i in items]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise AssignmentError(f"{path}: item name(s) used twice: {', '.join(dupes)}")
