"""SARIF 2.1.0: what GitHub code scanning and other SARIF viewers show.

One run for all reports. Each property is a rule (`subsystem/property`); each
counterexample is an error result located at the spec file and line that
states the property, with the counterexample's text (trace, why, state) as its
message and the trace as a code flow; a property that was never exercised
(VACUOUS) is a warning result at its line. A problem outside the spec (crash,
refinement, ...) is located at the submission's file. The document validates
against the OASIS schema (tests/schemas/sarif-schema-2.1.0.json).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mmcheck.checker import decode
from mmcheck.checker.outcome import combine
from mmcheck.checker.report import (
    Counterexample,
    Report,
    property_rows,
    render_counterexample,
    step_texts,
)

from mmcheck import __version__

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"


def render_sarif(reports: Sequence[Report]) -> str:
    rules: dict[str, dict[str, Any]] = {}
    results: list[dict[str, Any]] = []
    for r in reports:
        for row in property_rows(r):
            rule = _rule(rules, r.subsystem, row.name, _doc(r, row.name))
            if row.status == "VACUOUS":
                results.append(
                    _result(rule, "warning",
                            f"{row.name} was evaluated {row.checks} time(s) on {r.target} but "
                            "never exercised (VACUOUS): it proved nothing",
                            _location(row.spec, row.line))
                )
        for n, c in enumerate(r.counterexamples, 1):
            v = c.violation
            rule = _rule(rules, r.subsystem, v.property, v.doc)
            where = _location(v.spec_path, v.line) if v.spec_path else _location(r.target, 0)
            res = _result(rule, "error", _message(r, c, n), where)
            res["codeFlows"] = [_code_flow(c, where)]
            res["properties"] = {"target": r.target, "engine": c.engine, "kind": v.kind,
                                 "confirmed": c.confirmed, "reproduce": c.reproduce}
            results.append(res)
    exit_code = int(combine(r.exit_code for r in reports))
    log = {
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "mmcheck",
                        "version": __version__,
                        "rules": list(rules.values()),
                    }
                },
                "invocations": [{"executionSuccessful": True, "exitCode": exit_code}],
                "results": results,
            }
        ],
    }
    return json.dumps(log, indent=2) + "\n"


def _doc(r: Report, name: str) -> str:
    return next((c.violation.doc for c in r.counterexamples if c.violation.property == name), "")


def _rule(rules: dict[str, dict[str, Any]], subsystem: str, name: str, doc: str) -> dict:
    rule_id = f"{subsystem}/{name}"
    rule = rules.get(rule_id)
    if rule is None:
        rule = rules[rule_id] = {"id": rule_id, "name": name,
                                 "shortDescription": {"text": doc or name}}
    elif doc and rule["shortDescription"]["text"] == name:
        rule["shortDescription"]["text"] = doc
    return rule


def _uri(path: str) -> dict[str, str]:
    p = Path(path)
    if p.is_absolute():
        return {"uri": p.as_uri()}
    return {"uri": p.as_posix(), "uriBaseId": "%SRCROOT%"}


def _location(path: str, line: int) -> dict[str, Any]:
    physical: dict[str, Any] = {"artifactLocation": _uri(path)}
    if line > 0:
        physical["region"] = {"startLine": line}
    return {"physicalLocation": physical}


def _result(rule: dict[str, Any], level: str, text: str, where: dict[str, Any]) -> dict:
    return {"ruleId": rule["id"], "level": level, "message": {"text": text},
            "locations": [where]}


def _message(r: Report, c: Counterexample, n: int) -> str:
    head = f"{c.violation.property} is violated by {r.target}"
    return head + "\n\n" + "\n".join(render_counterexample(c, n))


def _code_flow(c: Counterexample, where: dict[str, Any]) -> dict[str, Any]:
    steps = []
    for i, (call, outcome) in enumerate(step_texts(c.trace)):
        mark = " (the property breaks here)" if i == c.violation.step else ""
        steps.append({
            "location": {**where, "message": {"text": f"step {i}: {call} {outcome}{mark}"}},
            "executionOrder": i,
            "importance": "essential" if i == c.violation.step else "important",
        })
    if not steps:
        steps.append({"location": {**where, "message": {"text": "the initial state"}}})
    setup = f"{c.trace.subsystem} setup: {decode.setup_text(c.trace.subsystem, c.trace.setup)}"
    return {"message": {"text": setup}, "threadFlows": [{"locations": steps}]}
