"""The traceability table: every clause of docs/contract.md and the properties of
spec/lib/*.mm that check it, generated into docs/traceability.md.

    python -m mmcheck.checker.trace_matrix            print the table
    python -m mmcheck.checker.trace_matrix --write    regenerate docs/traceability.md
    python -m mmcheck.checker.trace_matrix --check    exit 1 if it is stale or a rule fails

A clause is a bullet of docs/contract.md that opens with its identifier in bold
brackets (`- **[BUDDY-ALLOC-NONE]** ...`). A property cites the clauses it checks
in brackets in its description (`"[BUDDY-ALLOC-NONE] alloc returns ..."`), next to
catalog tags such as `[BUD-2]` (docs/invariants.md); `[white-box]` marks one that
states only what the reference model shows. An example cites, in its docstring,
the clause it breaks (buggy/) or the freedom it takes (correct/, `...-CHOICE`).

The rules a test holds the repository to (`problems`): every property cites a
clause or is white-box; every cited clause exists; every clause of a subsystem
that has a spec is checked by a property (a `-CHOICE` clause may instead be shown
by a correct example), unless NOT_BY_PROPERTY says what checks it instead.
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from mmcheck.checker.observable import WHITE_BOX
from mmcheck.checker.subsystems import registry
from mmcheck.spec.loader import library, load

ROOT = Path(__file__).resolve().parents[1]
CONTRACT = ROOT / "docs" / "contract.md"
OUTPUT = ROOT / "docs" / "traceability.md"
EXAMPLES = ROOT / "examples"

CLAUSE_LINE = re.compile(r"^- \*\*\[([A-Z][A-Z0-9]*(?:-[A-Z][A-Z0-9]*)+)\]\*\*\s*(.*)")
TAG = re.compile(r"\[([A-Za-z][A-Za-z0-9-]*)\]")
CATALOG = re.compile(r"^[A-Z]+-\d+$")


# Clauses that no property of a trace can check, and what checks them instead.
NOT_BY_PROPERTY = {
    "GEN-FAULT-CLASSES": "the drivers' exception conversion (checker/subsystems/_vm.py "
                         "`convert`, tests/unit/test_sandbox.py): a fault is recognised by "
                         "its class name and `.code`",
    "AS-INIT": "the vma driver's refinement check (checker/subsystems/vma.py `_follow`): "
               "after every step vmas() must equal the reference's, which starts empty",
    "BUDDY-INIT-ARGS": "the buddy driver's constructor step (checker/subsystems/buddy.py "
                       "`bad_setups`, _vm.py `construct_refused`): BuddyAllocator(npages, "
                       "max_order) with npages < 1 or max_order < 1 must raise ValueError; "
                       "an object made is a refinement problem",
    "SLAB-INIT-ARGS": "the slab driver's constructor step (checker/subsystems/slab.py "
                      "`bad_args`, _vm.py `construct_refused`): KmemCache(name, size, align, "
                      "pages) with size < 1 or an align that is not a power of two must "
                      "raise ValueError; an object made is a refinement problem",
    "MACHINE-INIT": "not checked yet: no state name says which pages were reserved (one_owner "
                    "checks that each reserved page has no other owner)",
    "ZONE-INIT-ARGS": "not checked yet: no trace step constructs an allocator with "
                      "invalid arguments",
}


def subsystem_of_clause(clause: str) -> str | None:
    """The subsystem that declares `clause`'s prefix ([AS-MMAP] -> vma), or None."""
    prefix = clause.split("-")[0]
    return next((d.name for d in registry.declared() if d.clauses == prefix), None)


@dataclass
class Clause:
    id: str
    section: str
    text: str
    properties: list[str] = field(default_factory=list)
    correct: list[str] = field(default_factory=list)
    buggy: list[str] = field(default_factory=list)

    @property
    def subsystem(self) -> str | None:
        """The subsystem whose declaration claims the clause's prefix (`clauses`); None
        for a clause of every subsystem (GEN-...)."""
        return subsystem_of_clause(self.id)

    @property
    def is_choice(self) -> bool:
        return self.id.endswith("-CHOICE")


@dataclass
class Property:
    spec: str
    name: str
    line: int
    clauses: list[str]
    catalog: list[str]
    white_box: bool
    unknown: list[str]


def read_clauses(text: str) -> list[Clause]:
    """The clauses of the contract, in document order."""
    clauses, section = [], ""
    for line in text.splitlines():
        if line.startswith("## "):
            section = line[3:].strip()
        m = CLAUSE_LINE.match(line)
        if m:
            first = re.split(r"(?<=[.:])\s", m.group(2), maxsplit=1)[0]
            clauses.append(Clause(m.group(1), section, first))
    return clauses


def read_properties(clause_ids: set[str]) -> list[Property]:
    """Every property of the standard library with the tags of its description."""
    out = []
    for path in library():
        checked = load(path)
        for p in checked.spec.properties:
            tags = TAG.findall(p.doc)
            out.append(Property(
                spec=f"spec/lib/{path.name}", name=p.name, line=p.span.line,
                clauses=[t for t in tags if t in clause_ids],
                catalog=[t for t in tags if CATALOG.match(t)],
                white_box=WHITE_BOX in p.doc,
                unknown=[t for t in tags if t not in clause_ids and not CATALOG.match(t)
                         and f"[{t}]" != WHITE_BOX]))
    return out


def example_tags(path: Path) -> list[str]:
    """The tags in an example's module docstring."""
    text = path.read_text(encoding="utf-8")
    m = re.match(r'\s*(?:"""|\'\'\')(.*?)(?:"""|\'\'\')', text, re.S)
    return TAG.findall(m.group(1)) if m else []


@dataclass
class Matrix:
    clauses: list[Clause]
    properties: list[Property]
    specs: set[str]

    def problems(self) -> list[str]:
        """What breaks the rules of the module docstring (empty when all hold)."""
        out = []
        for p in self.properties:
            where = f"{p.spec}: {p.name}"
            if p.unknown:
                out.append(f"{where} cites {', '.join(p.unknown)}, which is no clause of "
                           "docs/contract.md")
            if not p.clauses and not p.white_box:
                out.append(f"{where} cites no clause of docs/contract.md and is not "
                           f"marked {WHITE_BOX}")
        for c in self.clauses:
            if c.id in NOT_BY_PROPERTY or (c.subsystem is not None
                                           and c.subsystem not in self.specs):
                continue
            if not c.properties and not (c.is_choice and c.correct):
                out.append(f"[{c.id}] is checked by no property")
        return out


def build() -> Matrix:
    clauses = read_clauses(CONTRACT.read_text(encoding="utf-8"))
    by_id = {c.id: c for c in clauses}
    properties = read_properties(set(by_id))
    for p in properties:
        for cid in p.clauses:
            by_id[cid].properties.append(f"{p.spec.split('/')[-1][:-3]}.{p.name}")
    for path in sorted(EXAMPLES.glob("*/*/*.py")):
        kind = path.parent.name
        for tag in example_tags(path):
            if tag in by_id and kind in ("correct", "buggy"):
                getattr(by_id[tag], kind).append(str(path.relative_to(EXAMPLES)))
    specs = {load(p).subsystem for p in library()}
    return Matrix(clauses, properties, specs)


def render(m: Matrix) -> str:
    white = [p for p in m.properties if p.white_box]
    checked = [c for c in m.clauses if c.properties]
    lines = [
        "# Traceability: the contract and the properties that check it",
        "",
        "Generated by `python -m mmcheck.checker.trace_matrix --write` from",
        "[contract.md](contract.md), `spec/lib/*.mm` and the docstrings of `examples/`;",
        "do not edit. `tests/unit/test_traceability.py` fails while this file is stale,",
        "while a property cites no clause and is not marked `[white-box]`, and while a",
        "clause is checked by no property.",
        "",
        f"**{len(m.clauses)} clauses** ({sum(c.is_choice for c in m.clauses)} of them "
        f"freedoms, `-CHOICE`), **{len(checked)} checked by at least one property**; "
        f"**{len(m.properties)} properties**, of which **{len(white)} white-box** "
        "(reference-model-only: reported as not observable on a submission) and "
        f"{len(m.properties) - len(white)} checking clauses.",
        "",
        "## Clauses",
        "",
        "| clause | properties | correct examples (choices) | buggy examples |",
        "|---|---|---|---|",
    ]
    for c in m.clauses:
        if c.properties:
            props = ", ".join(f"`{p}`" for p in c.properties)
        elif c.id in NOT_BY_PROPERTY:
            props = f"*none*: {NOT_BY_PROPERTY[c.id]}"
        elif c.subsystem is not None and c.subsystem not in m.specs:
            props = f"*none*: no `spec {c.subsystem}` in spec/lib yet"
        else:
            props = "*none*"
        lines.append(f"| `[{c.id}]` | {props} | {_files(c.correct)} | {_files(c.buggy)} |")
    lines += ["", "## Properties", "",
              "| property | clauses | catalog |", "|---|---|---|"]
    for p in m.properties:
        cl = "white-box" if p.white_box else ", ".join(f"`[{c}]`" for c in p.clauses)
        if p.white_box and p.clauses:
            cl += ", " + ", ".join(f"`[{c}]`" for c in p.clauses)
        lines.append(f"| `{p.spec}` `{p.name}` (line {p.line}) | {cl} | "
                     f"{', '.join(p.catalog)} |")
    problems = m.problems()
    lines += ["", "## Open problems", ""]
    lines += [f"- {x}" for x in problems] or ["None."]
    return "\n".join(lines) + "\n"


def _files(paths: list[str]) -> str:
    return ", ".join(f"`{p}`" for p in paths)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mmcheck.checker.trace_matrix",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="regenerate docs/traceability.md")
    parser.add_argument("--check", action="store_true",
                        help="exit 1 if docs/traceability.md is stale or a rule fails")
    args = parser.parse_args(argv)
    matrix = build()
    text = render(matrix)
    if args.write:
        OUTPUT.write_text(text, encoding="utf-8")
    elif args.check:
        stale = not OUTPUT.exists() or OUTPUT.read_text(encoding="utf-8") != text
        for problem in matrix.problems():
            print(problem)
        if stale:
            print("docs/traceability.md is stale: run python -m mmcheck.checker.trace_matrix "
                  "--write")
        return 1 if stale or matrix.problems() else 0
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
