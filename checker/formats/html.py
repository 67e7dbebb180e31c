"""`--format html`: one self-contained page (no network, no external file).

For each report: a summary table of the properties (status, evaluations,
non-vacuous ones, Z3's word). For each counterexample: the steps as a list
beside a picture of memory at each step (drawn by the subsystem's
`render_svg` hook, checker/formats/pictures/), a slider and buttons that step
through the trace (it opens at the state the violation is about), the diff of
the state before and after the failing step, why the property is false, and
the text report. The script only shows and hides what the page already holds;
without it every picture is shown one below the other.

Ids a reader or a test can rely on: `summary-R` (the table of report R),
`cx-R-N` (counterexample N of report R), `cx-R-N-state-I` (the picture of the
state before step I; I = 0 the initial state), `cx-R-N-slider`, `cx-R-N-diff`.
When the script has run, `body[data-ready]` is set and each counterexample's
`data-shown` holds the index of the picture on screen.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from mmcheck.checker import decode, subsystems
from mmcheck.checker.explain import format_value
from mmcheck.checker.formats.states import state_names, step_states
from mmcheck.checker.formats.svg import Focus
from mmcheck.checker.report import (
    Counterexample,
    Report,
    confirmation_text,
    property_rows,
    render_counterexample,
    step_texts,
)

from mmcheck import __version__

CSS = r"""
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.2em; margin-top: 2em; } h3 { font-size: 1.05em; }
table.summary { border-collapse: collapse; } .summary td, .summary th { padding: 2px 10px;
  border-bottom: 1px solid #ddd; text-align: left; } .num { text-align: right; }
.status-FAIL { color: #b00; font-weight: bold; } .status-VACUOUS, .status-unchecked,
.status-unknown { color: #a60; font-weight: bold; } .status-ok { color: #070; }
.status-n\/a { color: #777; }
.cx { border: 1px solid #ccc; border-radius: 6px; padding: 0.5em 1em; margin: 1em 0; }
.cx-body { display: flex; gap: 1.5em; align-items: flex-start; flex-wrap: wrap; }
ul.steps { font-family: ui-monospace, monospace; min-width: 18em; list-style: none;
  padding-left: 0; white-space: pre; }
li.step { cursor: pointer; padding: 1px 4px; } li.step.current { background: #ffe9a8; }
li.step.failing { color: #b00; font-weight: bold; }
.state-frame[hidden] { display: none; } .state-frame > div { font-weight: bold; margin: 4px 0; }
svg.picture { background: #fff; border: 1px solid #eee; }
svg text { font-family: ui-monospace, monospace; } .caption { font-weight: bold; }
table.diff td { font-family: ui-monospace, monospace; padding: 1px 8px; vertical-align: top; }
.removed { color: #b00; } .added { color: #070; }
pre { background: #f7f7f7; padding: 0.5em; overflow-x: auto; }
"""

SCRIPT = """
document.querySelectorAll('.cx').forEach(function (cx) {
  var frames = cx.querySelectorAll('.state-frame');
  var slider = cx.querySelector('input.stepper');
  var items = cx.querySelectorAll('li.step');
  if (!slider || frames.length === 0) { return; }
  function show(i) {
    i = Math.max(0, Math.min(frames.length - 1, i));
    frames.forEach(function (f, k) { f.hidden = (k !== i); });
    slider.value = i;
    items.forEach(function (li) {
      li.classList.toggle('current', Number(li.getAttribute('data-index')) === i);
    });
    var pic = frames[i].querySelector('svg');
    var width = pic ? Math.round(pic.getBoundingClientRect().width) : 0;
    cx.setAttribute('data-shown', String(i));
    cx.setAttribute('data-shown-width', String(width));
  }
  slider.addEventListener('input', function () { show(Number(slider.value)); });
  function by(delta) { return function () { show(Number(slider.value) + delta); }; }
  cx.querySelector('button.prev').addEventListener('click', by(-1));
  cx.querySelector('button.next').addEventListener('click', by(1));
  items.forEach(function (li) {
    li.addEventListener('click', function () { show(Number(li.getAttribute('data-index'))); });
  });
  show(Number(slider.getAttribute('data-start')));
});
document.body.setAttribute('data-ready', 'yes');
"""


def render_html(reports: Sequence[Report]) -> str:
    """The whole page."""
    title = "mmcheck report: " + ", ".join(f"{r.subsystem} against {r.target}" for r in reports)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape(title)}</title>",
        f"<style>{CSS}</style></head><body>",
        f"<h1>mmcheck {escape(__version__)}</h1>",
    ]
    for ri, r in enumerate(reports):
        parts.append(_report(ri, r))
    parts.append(f"<script>{SCRIPT}</script></body></html>")
    return "\n".join(parts) + "\n"


def _report(ri: int, r: Report) -> str:
    verdict = (
        "VIOLATED: " + ", ".join(dict.fromkeys(c.violation.property for c in r.counterexamples))
        if r.counterexamples else "no violation found"
    )
    out = [f'<section class="report" id="report-{ri}">',
           f"<h2>{escape(r.subsystem)} specs against {escape(r.target)}</h2>",
           f'<p class="verdict">{escape(verdict)}</p>',
           "<p>" + "<br>".join(escape(f"{run.engine}: {run.summary}") for run in r.runs) + "</p>",
           _summary(ri, r)]
    out.extend(f'<p class="note">note: {escape(n)}</p>' for n in r.notes)
    for n, c in enumerate(r.counterexamples, 1):
        out.append(_counterexample(ri, n, r, c))
    out.append("</section>")
    return "\n".join(out)


def _summary(ri: int, r: Report) -> str:
    rows = ["<tr><th>status</th><th>property</th><th>where</th><th class=num>evaluations</th>"
            "<th class=num>non-vacuous</th><th>z3</th></tr>"]
    for row in property_rows(r):
        rows.append(
            f'<tr class="prop" data-status="{row.status}"><td class="status-{row.status}">'
            f"{row.status}</td><td>{escape(row.name)}</td><td>{escape(row.spec)}:{row.line}</td>"
            f"<td class=num>{row.checks:,}</td><td class=num>{row.live:,}</td>"
            f"<td>{escape(row.z3)}</td></tr>"
        )
    named = {row.name for row in property_rows(r)}
    for c in r.counterexamples:
        if c.violation.property not in named:
            named.add(c.violation.property)
            rows.append(f'<tr class="prop" data-status="FAIL"><td class="status-FAIL">FAIL</td>'
                        f"<td>{escape(c.violation.property)}</td><td>{escape(_where(r, c))}</td>"
                        "<td></td><td></td><td></td></tr>")
    return f'<table class="summary" id="summary-{ri}">' + "".join(rows) + "</table>"


def _where(r: Report, c: Counterexample) -> str:
    v = c.violation
    return f"{v.spec_path}:{v.line}" if v.spec_path else r.target


def _counterexample(ri: int, n: int, r: Report, c: Counterexample) -> str:
    v = c.violation
    cid = f"cx-{ri}-{n}"
    states = step_states(c)
    start = min(max(v.step + 1, 0), max(len(states) - 1, 0))
    where = f" ({v.spec_path}:{v.line})" if v.spec_path else ""
    setup = decode.setup_text(c.trace.subsystem, c.trace.setup)
    out = [f'<div class="cx" id="{cid}" data-property="{escape(v.property)}" '
           f'data-failing="{start}">',
           f"<h3>Counterexample {n}: {escape(v.property)}{escape(where)}</h3>",
           f"<p>{escape(v.doc)}</p>",
           f"<p>{escape(c.trace.subsystem)} setup: {escape(setup)}; found by "
           f"{escape(c.engine)}; {escape(confirmation_text(c))}</p>",
           '<div class="cx-body">', _steps(c, start), _frames(cid, c, states, start), "</div>",
           "<h4>why</h4><pre class=\"why\">" + escape("\n".join(v.explanation)) + "</pre>",
           _diff(cid, c, states),
           "<details><summary>text report</summary><pre>"
           + escape("\n".join(render_counterexample(c, n))) + "</pre></details>",
           "</div>"]
    return "\n".join(out)


def _steps(c: Counterexample, start: int) -> str:
    items = ['<li class="step" data-index="0">setup</li>']
    for i, (call, outcome) in enumerate(step_texts(c.trace)):
        failing = " failing" if i == c.violation.step else ""
        mark = "  \u2190 here" if failing else ""
        items.append(f'<li class="step{failing}" data-index="{i + 1}">{i:>4}  '
                     f"{escape(call)} {escape(outcome)}{mark}</li>")
    return '<ul class="steps">' + "".join(items) + "</ul>"


def _frames(cid: str, c: Counterexample, states: list[Mapping[str, Any]], start: int) -> str:
    driver = subsystems.driver(c.trace.subsystem)
    draw = driver.render_svg if driver is not None else None
    i = c.violation.step
    failing = c.trace.steps[i] if 0 <= i < len(c.trace.steps) else None
    focus = Focus(c.violation.why, failing)
    frames = []
    texts = step_texts(c.trace)
    for i, state in enumerate(states):
        label = "initial state" if i == 0 else (
            f"after step {i - 1}: {texts[i - 1][0]} {texts[i - 1][1]}")
        if draw is not None:
            picture = draw(state, focus)
        else:
            picture = "<pre>" + escape("\n".join(driver.render_state(state, set()))) + "</pre>"
        frames.append(f'<div class="state-frame" id="{cid}-state-{i}" data-label="{escape(label)}">'
                      f"<div>{escape(label)}</div>{picture}</div>")
    last = max(len(states) - 1, 0)
    controls = (f'<div class="controls"><button class="prev" type="button">\u25c0 prev</button> '
                f'<input class="stepper" id="{cid}-slider" type="range" min="0" max="{last}" '
                f'value="{start}" data-start="{start}" aria-label="step"> '
                f'<button class="next" type="button">next \u25b6</button></div>')
    return '<div class="frames">' + controls + "".join(frames) + "</div>"


def _diff(cid: str, c: Counterexample, states: list[Mapping[str, Any]]) -> str:
    """What the failing step changed: each state name whose value differs."""
    i = c.violation.step
    if i < 0 or i + 1 >= len(states):
        return f'<div id="{cid}-diff"><p>the initial state already breaks it: no step</p></div>'
    before, after = states[i], states[i + 1]
    rows = []
    for name in state_names(c.trace.subsystem, [before, after]):
        old, new = before[name], after[name]
        if _same(old, new):
            continue
        change = _change(old, new, c.trace.subsystem, name)
        rows.append(f"<tr><td>{escape(name)}</td><td>{change}</td></tr>")
    head = f"<h4>what step {i} ({escape(step_texts(c.trace)[i][0])}) changed</h4>"
    if not rows:
        return f'<div id="{cid}-diff">{head}<p>nothing: the state is the same after it</p></div>'
    return f'<div id="{cid}-diff">{head}<table class="diff">' + "".join(rows) + "</table></div>"


def _items(v: Any) -> list[Any] | None:
    if isinstance(v, (str, bytes, range)) or (isinstance(v, tuple) and hasattr(v, "_fields")):
        return None
    if hasattr(v, "__iter__"):
        return list(v)
    return None


def _same(a: Any, b: Any) -> bool:
    ia, ib = _items(a), _items(b)
    if ia is not None and ib is not None:
        return ia == ib or (sorted(map(repr, ia)) == sorted(map(repr, ib)))
    return a == b


def _change(old: Any, new: Any, subsystem: str, name: str) -> str:
    """old -> new for a value; the elements removed and added for a collection."""

    def shown(v: Any) -> str:
        return escape(format_value(v, subsystem=subsystem, name=name))

    io, inew = _items(old), _items(new)
    if io is None or inew is None:
        return (f'<span class="removed">{shown(old)}</span> \u2192 '
                f'<span class="added">{shown(new)}</span>')
    gone = [x for x in io if x not in inew]
    came = [x for x in inew if x not in io]
    lines = [f'<div class="removed">- {shown(x)}</div>' for x in gone[:12]]
    lines += [f'<div class="added">+ {shown(x)}</div>' for x in came[:12]]
    if len(gone) > 12 or len(came) > 12:
        lines.append(f"<div>... ({len(gone)} removed, {len(came)} added in all)</div>")
    return "".join(lines) or "(same elements, another order)"
