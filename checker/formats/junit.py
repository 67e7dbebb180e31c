"""JUnit XML: one testsuite per report, one testcase per property of the target.

A violated property is a <failure> whose text is the counterexample as the text
report prints it; a problem outside the spec (crash, refinement, ...) is a
testcase of its own, named by its kind. A property that was never exercised
(VACUOUS, unchecked, unknown) is <skipped> with the reason: it proved nothing,
and CI should show that rather than a green tick.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence

from mmcheck.checker.report import Report, property_rows, render_counterexample

SKIPPED = {
    "VACUOUS": "VACUOUS: evaluated but never exercised, so it proved nothing",
    "unchecked": "unchecked: no engine evaluated it",
    "n/a": "not observable on this submission: a white-box property, or one reading what "
           "the submission does not show (docs/contract.md)",
}


def render_junit(reports: Sequence[Report], timing: bool = True) -> str:
    """The reports as one <testsuites> document (UTF-8 XML text)."""
    root = ET.Element("testsuites", name="mmcheck")
    totals = [0, 0, 0]
    for r in reports:
        suite = _testsuite(r, timing)
        root.append(suite)
        for i, key in enumerate(("tests", "failures", "skipped")):
            totals[i] += int(suite.get(key, "0"))
    root.set("tests", str(totals[0]))
    root.set("failures", str(totals[1]))
    root.set("skipped", str(totals[2]))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, "unicode") + "\n"


def classname(r: Report) -> str:
    """`buddy.examples/buddy/buggy/no_coalesce.py`: subsystem, then target."""
    return f"{r.subsystem}.{r.target}"


def _testsuite(r: Report, timing: bool) -> ET.Element:
    elapsed = sum(run.elapsed for run in r.runs) if timing else 0.0
    suite = ET.Element("testsuite", name=f"mmcheck {r.subsystem}: {r.target}")
    tests = failures = skipped = 0
    numbered = list(enumerate(r.counterexamples, 1))
    for row in property_rows(r):
        case = ET.SubElement(
            suite, "testcase", classname=classname(r), name=row.name, file=row.spec,
            line=str(row.line), time="0",
        )
        tests += 1
        mine = [(n, c) for n, c in numbered if c.violation.property == row.name]
        if mine:
            failures += 1
            _failure(case, mine)
        elif row.status in SKIPPED:
            skipped += 1
            why = "; ".join(row.why)
            ET.SubElement(case, "skipped",
                          message=SKIPPED[row.status] + (f" ({why})" if why else ""))
    named = {row.name for row in property_rows(r)}
    for kind in dict.fromkeys(c.violation.property for _, c in numbered):
        if kind in named:
            continue
        case = ET.SubElement(suite, "testcase", classname=classname(r), name=kind, time="0")
        tests += 1
        failures += 1
        _failure(case, [(n, c) for n, c in numbered if c.violation.property == kind])
    suite.set("tests", str(tests))
    suite.set("failures", str(failures))
    suite.set("errors", "0")
    suite.set("skipped", str(skipped))
    suite.set("time", f"{elapsed:.3f}")
    return suite


def _failure(case: ET.Element, numbered: list) -> None:  # list[tuple[int, Counterexample]]
    first = numbered[0][1].violation
    where = f" ({first.spec_path}:{first.line})" if first.spec_path else ""
    failure = ET.SubElement(
        case, "failure", message=f"{first.property}{where}: {first.doc}", type=first.kind
    )
    failure.text = "\n\n".join("\n".join(render_counterexample(c, n)) for n, c in numbered)
