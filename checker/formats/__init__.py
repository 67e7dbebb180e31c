"""Every output format of a run, each built from the `Report` data (never from text).

    text   the report a person reads (checker/report.py)
    json   the stable machine-readable report (docs/json-format.md)
    junit  JUnit XML: one testcase per property and target (CI test tabs)
    sarif  SARIF 2.1.0: a result at the spec line of each violated property
    itf    the Apalache/Quint Informal Trace Format of every counterexample
    html   one self-contained page with pictures of memory at every step

`render(reports, fmt)` is what the CLI prints; docs/outputs.md says what each
format promises to keep stable.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from mmcheck.checker.report import Report, render_json, render_text

FORMATS = ("text", "json", "junit", "sarif", "itf", "html")


def renderer(fmt: str) -> Callable[[Sequence[Report], bool], str]:
    """The function that turns reports into the text of format `fmt` (timing: show times)."""
    if fmt == "text":
        return lambda reports, timing: render_text(reports, timing)
    if fmt == "json":
        return lambda reports, timing: render_json(reports)
    if fmt == "junit":
        from mmcheck.checker.formats.junit import render_junit

        return render_junit
    if fmt == "sarif":
        from mmcheck.checker.formats.sarif import render_sarif

        return lambda reports, timing: render_sarif(reports)
    if fmt == "itf":
        from mmcheck.checker.formats.itf import render_itf

        return lambda reports, timing: render_itf(reports)
    if fmt == "html":
        from mmcheck.checker.formats.html import render_html

        return lambda reports, timing: render_html(reports)
    raise ValueError(f"unknown format {fmt!r}; known: {', '.join(FORMATS)}")


def render(reports: Sequence[Report], fmt: str, timing: bool = True) -> str:
    return renderer(fmt)(reports, timing)
