"""What a grade becomes: Gradescope results.json, PrairieLearn results, CSV and
pandas-friendly JSON for a batch, feedback for the student in markdown and as a
self-contained HTML page.

For each lost item the feedback gives the one-line summary, the minimal trace,
why it is wrong, the picture of memory at that step and the command that
replays it on the student's machine. Items marked `visible = false` (and items
about hidden specs) show their score only. Every text that came from the
submission was cleaned and bounded by the sandbox (sandbox/protocol.clean).
"""

from __future__ import annotations

import csv
import html
import io
from collections.abc import Sequence
from typing import Any

from mmcheck.checker.grade.score import Grade, ItemResult

STATUS_MARK = {"passed": "PASS", "failed": "FAIL", "partial": "PART",
               "not established": "NONE"}


def _fmt(x: float) -> str:
    return f"{x:g}"


def item_markdown(item: ItemResult, shown: bool) -> str:
    """One item as the markdown Gradescope's `output` field and the feedback use."""
    lines = [item.summary]
    if not shown and item.status != "passed":
        return "This is a hidden test: its details are not shown."
    if item.details:
        lines += ["", "```", *item.details, "```"]
    if item.replay:
        lines += ["", "Replay it on your machine (in the folder of this feedback):", "",
                  f"    {item.replay}"]
    return "\n".join(lines)


def gradescope(grade: Grade) -> dict[str, Any]:
    """results.json for Gradescope's autograder (its documented fields)."""
    tests = []
    for item in grade.items:
        tests.append({
            "name": item.name,
            "score": item.score,
            "max_score": item.max_score,
            "status": "passed" if item.score >= item.max_score else "failed",
            "output": item_markdown(item, item.visible),
            "output_format": "md",
            "visibility": "visible" if item.visible else "after_published",
        })
    out: dict[str, Any] = {
        "score": grade.score,
        "output": grade.error or f"{grade.assignment}: {_fmt(grade.score)} of "
                                 f"{_fmt(grade.max_score)} points",
        "output_format": "md",
        "visibility": "visible",
        "stdout_visibility": "hidden",
        "tests": tests,
    }
    return out


def prairielearn(grade: Grade) -> dict[str, Any]:
    """results.json for a PrairieLearn external grader (score in 0..1)."""
    tests = [{
        "name": item.name,
        "points": item.score,
        "max_points": item.max_score,
        "message": item.summary,
        "output": item_markdown(item, item.visible),
    } for item in grade.items]
    return {
        "gradable": not grade.error.startswith("the submission did not load"),
        "score": grade.score / grade.max_score if grade.max_score else 0.0,
        "message": grade.error or f"{_fmt(grade.score)} / {_fmt(grade.max_score)}",
        "tests": tests,
    }


def markdown(grade: Grade) -> str:
    """The student's feedback page."""
    out = [f"# {grade.assignment}: {_fmt(grade.score)} / {_fmt(grade.max_score)}", ""]
    if grade.error:  # a compile error keeps its lines and caret
        first, _, rest = grade.error.partition("\n")
        out += [f"**{first}**", ""] + (["```", rest, "```", ""] if rest else [])
    out += ["| item | points | result |", "|---|---:|---|"]
    for item in grade.items:
        out.append(f"| {item.name} | {_fmt(item.score)} / {_fmt(item.max_score)} | "
                   f"{item.status} |")
    for item in grade.items:
        if item.status == "passed":
            continue
        out += ["", f"## {item.name} ({_fmt(item.score)} / {_fmt(item.max_score)})", "",
                item_markdown(item, item.visible)]
    if grade.compiler:
        out += ["", "## What the C compiler said", "", "```", grade.compiler, "```"]
    if grade.output:
        out += ["", "## What your code printed (last lines)", "", "```", grade.output, "```"]
    return "\n".join(out) + "\n"


def html_page(grade: Grade) -> str:
    """The same feedback as one self-contained HTML page (no scripts, no links)."""
    e = html.escape
    rows = "".join(
        f"<tr class='{item.status.replace(' ', '-')}'><td>{e(item.name)}</td>"
        f"<td>{_fmt(item.score)} / {_fmt(item.max_score)}</td><td>{e(item.status)}</td></tr>"
        for item in grade.items)
    sections = []
    for item in grade.items:
        if item.status == "passed":
            continue
        body = f"<p>{e(item.summary)}</p>"
        if not item.visible:
            body = "<p>This is a hidden test: its details are not shown.</p>"
        else:
            if item.details:
                body += f"<pre>{e(chr(10).join(item.details))}</pre>"
            if item.replay:
                body += f"<p>Replay it on your machine:</p><pre>{e(item.replay)}</pre>"
        sections.append(f"<h2>{e(item.name)} ({_fmt(item.score)} / "
                        f"{_fmt(item.max_score)})</h2>{body}")
    error = f"<p class='error'>{e(grade.error)}</p>" if grade.error else ""
    printed = f"<h2>What your code printed</h2><pre>{e(grade.output)}</pre>" \
        if grade.output else ""
    if grade.compiler:
        printed = f"<h2>What the C compiler said</h2><pre>{e(grade.compiler)}</pre>" + printed
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>{e(grade.assignment)}: {e(grade.student)}</title>
<style>
body {{ font-family: sans-serif; max-width: 60em; margin: 2em auto; }}
table {{ border-collapse: collapse; }} td, th {{ border: 1px solid #ccc; padding: .3em .6em; }}
tr.passed td:last-child {{ color: #060; }} tr.failed td:last-child {{ color: #a00; }}
tr.partial td:last-child, tr.not-established td:last-child {{ color: #a60; }}
pre {{ background: #f6f6f6; padding: .8em; overflow-x: auto; }} .error {{ color: #a00; }}
</style></head><body>
<h1>{e(grade.assignment)}: {_fmt(grade.score)} / {_fmt(grade.max_score)}</h1>
{error}<table><tr><th>item</th><th>points</th><th>result</th></tr>{rows}</table>
{''.join(sections)}{printed}
</body></html>
"""


def score_rows(grades: Sequence[Grade]) -> list[dict[str, Any]]:
    """One flat record per student: `pandas.DataFrame(rows)` needs nothing more."""
    rows = []
    for g in grades:
        row: dict[str, Any] = {"student": g.student, "score": g.score,
                               "max_score": g.max_score, "error": g.error}
        for item in g.items:
            row[item.name] = item.score
        rows.append(row)
    return rows


def csv_text(grades: Sequence[Grade]) -> str:
    rows = score_rows(grades)
    names = list(dict.fromkeys(k for r in rows for k in r))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=names, lineterminator="\n")
    writer.writeheader()
    for r in rows:  # a cell a spreadsheet would run as a formula is quoted as text
        writer.writerow({k: ("'" + v if isinstance(v, str) and v[:1] in "=+-@" else v)
                         for k, v in r.items()})
    return buf.getvalue()


def table(grades: Sequence[Grade]) -> str:
    """The score table `mmcheck grade` prints."""
    if not grades:
        return "no submission graded\n"
    names = [i.name for i in grades[0].items]
    width = max(len("student"), *(len(g.student) for g in grades))
    head = f"{'student':<{width}}  {'score':>9}  " + "  ".join(
        f"{n[:14]:>14}" for n in names)
    lines = [head, "-" * len(head)]
    for g in grades:
        cells = "  ".join(f"{_fmt(i.score) + '/' + _fmt(i.max_score):>14}" for i in g.items)
        lines.append(f"{g.student:<{width}}  {_fmt(g.score) + '/' + _fmt(g.max_score):>9}  "
                     f"{cells}")
    return "\n".join(lines) + "\n"
