"""JUnit, SARIF and ITF built from real reports, each checked against its schema."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
from mmcheck.checker.formats import render
from mmcheck.checker.formats.itf import itf_trace
from mmcheck.checker.report import Report, property_rows

SCHEMAS = Path(__file__).resolve().parents[1] / "schemas"
ROOT = Path(__file__).resolve().parents[2]


def _schema(name: str) -> dict:
    return json.loads((SCHEMAS / name).read_text())


def test_junit_has_one_testcase_per_property_and_the_report_as_failure(buggy_reports) -> None:
    reports = list(buggy_reports.values())
    root = ET.fromstring(render(reports, "junit"))
    suites = root.findall("testsuite")
    assert len(suites) == len(reports)
    for suite, r in zip(suites, reports):
        cases = suite.findall("testcase")
        names = [c.get("name") for c in cases]
        props = [row.name for row in property_rows(r)]
        assert names[: len(props)] == props
        extra = {c.violation.property for c in r.counterexamples} - set(props)
        assert set(names[len(props):]) == extra
        assert int(suite.get("tests")) == len(cases)
        failed = {c.get("name"): c.find("failure") for c in cases if c.find("failure") is not None}
        assert set(failed) == {c.violation.property for c in r.counterexamples}
        assert int(suite.get("failures")) == len(failed)
        for cx in r.counterexamples:
            text = failed[cx.violation.property].text
            assert "Counterexample" in text and cx.violation.property in text
            assert cx.reproduce in text
    assert int(root.get("failures")) == sum(int(s.get("failures")) for s in suites)


def test_sarif_validates_and_points_at_the_spec_line(buggy_reports) -> None:
    reports = list(buggy_reports.values())
    log = json.loads(render(reports, "sarif"))
    jsonschema.Draft4Validator(_schema("sarif-schema-2.1.0.json")).validate(log)
    (run,) = log["runs"]
    errors = [res for res in run["results"] if res["level"] == "error"]
    assert len(errors) == sum(len(r.counterexamples) for r in reports)
    rule_ids = {rule["id"] for rule in run["tool"]["driver"]["rules"]}
    for res in errors:
        assert res["ruleId"] in rule_ids
        loc = res["locations"][0]["physicalLocation"]
        name = res["ruleId"].split("/", 1)[1]
        if "region" in loc:
            line = loc["region"]["startLine"]
            text = (ROOT / loc["artifactLocation"]["uri"]).read_text().splitlines()
            assert name in text[line - 1], (name, text[line - 1])
        else:  # a problem outside the spec: at the submission
            assert loc["artifactLocation"]["uri"].startswith("examples/")
        assert "Counterexample" in res["message"]["text"]
        flow = res["codeFlows"][0]["threadFlows"][0]["locations"]
        assert flow and all("step" in x["location"]["message"]["text"] for x in flow)


def _check_itf(trace: dict) -> None:
    jsonschema.Draft7Validator(_schema("itf.schema.json")).validate(trace)
    for state in trace["states"]:
        assert set(trace["vars"]) <= set(state), set(trace["vars"]) - set(state)
    assert set(trace["params"]) <= set(trace["states"][0])


def test_itf_of_every_counterexample_validates(buggy_reports) -> None:
    for r in buggy_reports.values():
        for c in r.counterexamples:
            trace = itf_trace(r.target, c)
            _check_itf(trace)
            assert len(trace["states"]) == len(c.trace.steps) + 1
            ops = [s["mm_action"] for s in trace["states"][1:]]
            assert ops == [s.op for s in c.trace.steps]
    printed = json.loads(render(list(buggy_reports.values()), "itf"))
    assert len(printed) == sum(len(r.counterexamples) for r in buggy_reports.values())


def test_itf_file_beside_every_saved_trace(mmcheck, tmp_path) -> None:
    """no_merge stops at its first refinement problem within a few traces: same run always."""
    result = mmcheck("check", "--impl", "examples/vma/buggy/no_merge.py", "--traces", "25",
                     "--save", str(tmp_path), "--format", "json")
    assert result.code == 1, result.err
    saved = [p for p in tmp_path.rglob("*.json") if not p.name.endswith(".itf.json")]
    assert len(saved) == len(result.json()["reports"][0]["counterexamples"])
    for p in saved:
        itf = json.loads(p.with_suffix(".itf.json").read_text())
        _check_itf(itf)
        steps = json.loads(p.read_text())["trace"]["steps"]
        assert [s["mm_action"] for s in itf["states"][1:]] == [s["op"] for s in steps]


def test_itf_values_follow_the_adr() -> None:
    from collections import namedtuple

    from mmcheck.checker.formats.itf import encode

    Block = namedtuple("Block", "pfn order")
    assert encode(2**70) == {"#bigint": str(2**70)}
    assert encode(frozenset({Block(4, 1), Block(0, 2)})) == {
        "#set": [{"pfn": {"#bigint": "0"}, "order": {"#bigint": "2"}},
                 {"pfn": {"#bigint": "4"}, "order": {"#bigint": "1"}}]
    }
    assert encode((1, None)) == {"#tup": [{"#bigint": "1"}, {"tag": "None", "value": {"#tup": []}}]}
    assert encode(True) is True


def test_formats_say_nothing_about_a_report_without_properties() -> None:
    empty = Report("the reference model", "buddy", [])
    assert json.loads(render([empty], "itf")) == []
    assert ET.fromstring(render([empty], "junit")).get("tests") == "0"
    jsonschema.Draft4Validator(_schema("sarif-schema-2.1.0.json")).validate(
        json.loads(render([empty], "sarif"))
    )
