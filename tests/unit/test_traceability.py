"""docs/traceability.md is the generated table of docs/contract.md's clauses and the
properties that check them: it must be current, and the rules of
checker/trace_matrix.py must hold (every clause checked, every property traced)."""

from __future__ import annotations

from mmcheck.checker import trace_matrix
from mmcheck.checker.trace_matrix import OUTPUT, build, read_clauses, render


def test_the_committed_table_is_current() -> None:
    assert OUTPUT.read_text(encoding="utf-8") == render(build()), (
        "docs/traceability.md is stale: run python -m mmcheck.checker.trace_matrix --write")


def test_every_clause_is_checked_and_every_property_traced() -> None:
    assert build().problems() == []


def test_clause_identifiers_are_unique_and_cited_ones_exist() -> None:
    matrix = build()
    ids = [c.id for c in matrix.clauses]
    assert len(ids) == len(set(ids)) and len(ids) >= 40
    assert all(not p.unknown for p in matrix.properties)


def test_the_rules_catch_an_untraced_property_and_an_unchecked_clause() -> None:
    text = ("## Page table\n- **[PT-NEW-THING]** something new.\n"
            "- **[PT-OTHER-CHOICE]** a freedom.\n")
    clauses = read_clauses(text)
    assert [c.id for c in clauses] == ["PT-NEW-THING", "PT-OTHER-CHOICE"]
    prop = trace_matrix.Property("spec/lib/x.mm", "p", 1, [], [], False, ["PT-NOPE"])
    matrix = trace_matrix.Matrix(clauses, [prop], {"pagetable"})
    problems = matrix.problems()
    assert any("PT-NOPE" in x for x in problems)
    assert any("cites no clause" in x for x in problems)
    assert "[PT-NEW-THING] is checked by no property" in problems
    clauses[1].correct.append("pagetable/correct/x.py")  # a freedom shown by an example
    assert "[PT-OTHER-CHOICE] is checked by no property" not in matrix.problems()


def test_check_mode_exits_zero_on_the_repository() -> None:
    assert trace_matrix.main(["--check"]) == 0
