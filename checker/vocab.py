"""`mmcheck vocab SUBSYSTEM`: every name a spec of that subsystem can use.

Records with their fields, state names with their types, operations with their
signatures, each with what it means (from the model's Vocabulary), and for each
state name what a submission shows of it: "shown" (where the value comes from:
the driver's SUBMISSION_VIEW, else the reference model following the
submission's steps and checked against its results), "shown only with" an
optional method, or "not shown" (the driver's `hidden_names`: a property
reading it is n/a on submissions, checker/observable.py).
"""

from __future__ import annotations

import textwrap

from mmcheck.checker import subsystems
from mmcheck.checker.subsystems import registry

WRAP = 76


class _Bare:
    """A stand-in submission that defines none of the contract's optional methods."""

    def methods(self, class_name: str) -> tuple[str, ...]:
        return ()


class _Full:
    """A stand-in submission that defines every optional method."""

    def methods(self, class_name: str) -> _Everything:
        return _Everything()


class _Everything:
    def __contains__(self, name: object) -> bool:
        return True


def submission_view(subsystem: str, name: str) -> str:
    """What a submission of `subsystem` shows of state name `name`, in words."""
    driver = subsystems.driver(subsystem)
    if driver is None:
        return "no submission of this subsystem can be checked yet"
    hidden = driver.hidden_names
    bare = hidden(_Bare()) if hidden is not None else frozenset()
    full = hidden(_Full()) if hidden is not None else frozenset()
    where = driver.submission_view.get(
        name, "the reference model following the submission's steps (checked against "
        "its results at every step)")
    if name in full:
        return f"NOT shown: a property reading it is n/a on a submission ({where})"
    if name in bare:
        return f"shown only by a submission with the optional methods of the contract: {where}"
    return f"shown: {where}"


def render_vocabulary(subsystem: str) -> str:
    vocab = registry.vocabulary(subsystem)
    if vocab is None:
        return f"{subsystem}: no model serves this subsystem\n"
    out = [f"spec {subsystem}: {vocab.doc}", ""]
    decl = registry.get(subsystem)
    assert decl is not None
    cls = decl.contract_class
    out.append(f"A submission defines class {cls} (docs/contract.md).")
    out.append("")
    out.append("records (fields are read as r.field; build one as Name{field: value}):")
    for r in vocab.records:
        fields = ", ".join(f"{n}: {t}" for n, t in r.fields)
        out.append(f"  {r.name}{{{fields}}}")
        out.extend(_wrapped(r.doc, 6))
    out.append("")
    out.append("state (names a property reads; old(NAME) in an action is the value before):")
    for v in vocab.state:
        out.append(f"  {v.name}: {v.type}")
        out.extend(_wrapped(v.doc, 6))
        out.extend(_wrapped("submission: " + submission_view(subsystem, v.name), 6))
    out.append("")
    out.append("operations (`after OP(args) returns r:` in an action; raised(X) when it raised):")
    for op in vocab.operations:
        params = ", ".join(f"{n}: {t}" for n, t in op.params)
        raises = f" raises {', '.join(op.raises)}" if op.raises else ""
        out.append(f"  {op.name}({params}) -> {op.returns}{raises}")
        out.extend(_wrapped(op.doc, 6))
    return "\n".join(out) + "\n"


def _wrapped(text: str, indent: int) -> list[str]:
    if not text:
        return []
    return textwrap.wrap(text, WRAP, initial_indent=" " * indent, subsequent_indent=" " * indent)


def vocabulary_doc() -> str:
    """docs/vocabulary.md: every subsystem's vocabulary, as `mmcheck vocab` prints it."""
    out = [
        "# Vocabulary of every subsystem",
        "",
        "What a spec of each subsystem can name, exactly as `mmcheck vocab SUBSYSTEM`",
        "prints it (generated from the models' vocabularies and the drivers'",
        "SUBMISSION_VIEW; tests/unit/test_docs.py checks that this file is current:",
        "regenerate it with `python -c 'from mmcheck.checker.vocab import vocabulary_doc;",
        "print(vocabulary_doc(), end=\"\")' > docs/vocabulary.md`).",
        "",
        "The `submission:` line of each state name says what a spec sees when the",
        "target is a submission: `own` values come from the submission's answers; a",
        "name marked `the reference model following the submission's steps` is the",
        "model's state, so a property about it checks the model, not the submission",
        "(write properties about a submission with the `own` names).",
    ]
    for subsystem in sorted(registry.names()):
        out += ["", f"## {subsystem}", "", "```", render_vocabulary(subsystem).rstrip(), "```"]
    return "\n".join(out) + "\n"
