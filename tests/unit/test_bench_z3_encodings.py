"""bench/z3_encodings.py, the side-by-side figures of every Z3 encoding: it finds the
symbolic subsystems through the registry, and its mutant figure reports what BMC
found and whether the trace convicts the buggy example (kmalloc: seconds)."""

from __future__ import annotations

import json
from pathlib import Path

from mmcheck.checker.subsystems import registry

from bench import z3_encodings


def test_every_symbolic_subsystem_is_benchmarked() -> None:
    names = z3_encodings.symbolic_names()
    assert names == [d.name for d in registry.declared() if d.symbolic]
    assert {"buddy", "vma", "fault", "zone", "machine"} <= set(names)
    for name in names:  # each has sizes to grow, a BMC size, its seeded bugs
        assert z3_encodings.sizes_of(name) and z3_encodings.bmc_size(name).label
        assert z3_encodings.mutations_of(name), f"{name} has no seeded mutation"


def test_mutant_figure_finds_and_convicts(tmp_path: Path, capsys: object) -> None:
    out = tmp_path / "z3.json"
    assert z3_encodings.main(["kmalloc", "--no-proved", "--no-bmc", "--json", str(out)]) == 0
    rows = json.loads(out.read_text())["mutants"]
    assert [r["mutation"] for r in rows] == list(z3_encodings.mutations_of("kmalloc"))
    for r in rows:
        assert r["violations"], r["summary"]
        assert r["example_breaks"].startswith("yes"), r
        # the depth reported is the first that breaks something: one run per depth
        assert min(v[1] for v in r["violations"]) == r["depth"]
