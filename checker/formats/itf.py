"""Counterexamples in the Informal Trace Format of Apalache and Quint (ADR-015).

https://apalache-mc.org/docs/adr/015adr-trace.html: a trace is
`{"#meta", "params", "vars", "states"}`; every state gives a value to every var.
mmcheck writes:

  params   the constructor's arguments (buddy: npages, max_order), set in state 0
  vars     mm_step (index of the step that led here, -1 for the initial state),
           mm_action (the operation, "init" first), mm_args (its arguments),
           mm_outcome (a variant: Init, Returned(value) or Raised(exception name)),
           then every name of the subsystem's vocabulary (docs/spec-language.md)
  values   integers as {"#bigint": "..."}, records as objects, sets as
           {"#set": [...]}, lists as arrays, tuples as {"#tup": [...]}, `none`
           as the variant {"tag": "None", "value": {"#tup": []}}

The states are the snapshots the confirming replay took (checker/formats/states.py).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mmcheck.checker.formats.states import state_names, step_states
from mmcheck.checker.report import Counterexample, Report
from mmcheck.checker.trace import Step

from mmcheck import __version__

ADR = "https://apalache-mc.org/docs/adr/015adr-trace.html"
ACTION_VARS = ("mm_step", "mm_action", "mm_args", "mm_outcome")
UNIT = {"#tup": []}


def encode(v: Any) -> Any:
    """A plain Python value of a snapshot as an ITF expression."""
    if v is None:
        return {"tag": "None", "value": UNIT}
    if isinstance(v, bool):
        return v
    if isinstance(v, int):
        return {"#bigint": str(v)}
    if isinstance(v, str):
        return v
    if isinstance(v, tuple) and hasattr(v, "_fields"):
        return {k: encode(getattr(v, k)) for k in v._fields}
    if isinstance(v, tuple):
        return {"#tup": [encode(x) for x in v]}
    if isinstance(v, range):
        return {"#tup": [encode(v.start), encode(v.stop)]}
    if isinstance(v, (set, frozenset)):
        return {"#set": [encode(x) for x in sorted(v, key=_order)]}
    if isinstance(v, Mapping):
        return {"#map": [[encode(k), encode(x)] for k, x in sorted(v.items(), key=_order)]}
    if hasattr(v, "__iter__"):
        return [encode(x) for x in v]
    return str(v)


def _order(x: Any) -> Any:
    return (repr(type(x)), repr(x)) if not isinstance(x, (int, tuple)) else (0, x)


def _outcome(step: Step | None) -> dict[str, Any]:
    if step is None:
        return {"tag": "Init", "value": UNIT}
    if step.raised is not None:
        return {"tag": "Raised", "value": step.raised}
    return {"tag": "Returned", "value": encode(step.result)}


def itf_trace(target: str, c: Counterexample) -> dict[str, Any]:
    """One counterexample as an ITF trace object."""
    v = c.violation
    states = step_states(c)
    names = state_names(c.trace.subsystem, states)
    params = [k for k in c.trace.setup if k not in names]
    out_states = []
    for i, state in enumerate(states):
        step = c.trace.steps[i - 1] if i > 0 else None
        s: dict[str, Any] = {"#meta": {"index": i}}
        if i == 0:
            s.update({k: encode(c.trace.setup[k]) for k in params})
        s["mm_step"] = encode(i - 1)
        s["mm_action"] = step.op if step else "init"
        s["mm_args"] = [encode(a) for a in step.args] if step else []
        s["mm_outcome"] = _outcome(step)
        s.update({n: encode(state[n]) for n in names})
        out_states.append(s)
    return {
        "#meta": {
            "format": "ITF",
            "format-description": ADR,
            "source": v.spec_path or target,
            "description": f"mmcheck counterexample: {v.property} ({v.kind}) on {target}",
            "property": v.property,
            "kind": v.kind,
            "target": target,
            "subsystem": c.trace.subsystem,
            "violation_step": v.step,
            "generated_by": f"mmcheck {__version__}",
        },
        "params": params,
        "vars": [*ACTION_VARS, *names],
        "states": out_states,
    }


def render_itf(reports: Sequence[Report]) -> str:
    """`--format itf`: a JSON array with one ITF trace per counterexample (may be empty)."""
    traces = [itf_trace(r.target, c) for r in reports for c in r.counterexamples]
    return json.dumps(traces, indent=1) + "\n"


def write_itf(path: Path, target: str, c: Counterexample) -> None:
    """The ITF file of `c` (beside its saved trace: NAME.itf.json next to NAME.json)."""
    from mmcheck.checker.grade.store import write_atomic  # never through a planted symlink

    write_atomic(path.parent, path.name, json.dumps(itf_trace(target, c), indent=1) + "\n")
