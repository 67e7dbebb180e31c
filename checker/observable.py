"""Which properties a submission lets the checker observe (docs/contract.md,
"Verdicts on white-box properties").

A property is *not observable on a submission* when it is marked `[white-box]`
in its description (it states the reference model's own policy, which the
contract does not ask of a submission) or when it reads a vocabulary name that
the submission does not show (its driver's `hidden_names(sub)`: `free_area`
without a `free_area()` method, any PageTable's table entries, ...). Such a
property is not evaluated on that submission and is reported as not
observable: neither `ok` nor VACUOUS, and no reason by itself for an
inconclusive verdict.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping

from mmcheck.spec import ast
from mmcheck.spec.loader import CheckedSpec

WHITE_BOX = "[white-box]"


def is_white_box(prop: ast.Invariant | ast.Action) -> bool:
    """Whether the property is marked reference-model-only in its description."""
    return WHITE_BOX in prop.doc


def not_observable(checked: CheckedSpec, hidden: Iterable[str],
                   white_box: bool = True) -> dict[str, str]:
    """property name -> why a submission that hides `hidden` cannot show it.
    white_box=False: only the properties that read a hidden name (a grading rubric
    that names a white-box property asks it of every submission: its handout says so)."""
    hidden = frozenset(hidden)
    out: dict[str, str] = {}
    for prop in checked.spec.properties:
        if white_box and is_white_box(prop):
            out[prop.name] = "white-box: a property of the reference model only"
            continue
        info = checked.infos.get(prop.name)
        reads = (info.reads | info.reads_old) if info is not None else set()
        unseen = sorted(reads & hidden)
        if unseen:
            out[prop.name] = f"reads {', '.join(unseen)}, which this submission does not show"
    return out


def observable_part(checked: CheckedSpec, skip: Mapping[str, str]) -> CheckedSpec:
    """The spec without the properties in `skip` (definitions kept)."""
    spec = dataclasses.replace(
        checked.spec,
        invariants=tuple(i for i in checked.spec.invariants if i.name not in skip),
        actions=tuple(a for a in checked.spec.actions if a.name not in skip),
    )
    return dataclasses.replace(checked, spec=spec)
