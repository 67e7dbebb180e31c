"""The HTML report: structure checked everywhere, and what a real browser shows.

The browser test renders one page holding every subsystem's buggy-example
report in headless Chromium (Debian's `chromium`; `scripts/install-chromium`
installs it, `make test` runs that first) and reads the DOM after the page's
script ran: the stepper opened each counterexample at its failing state, that
state's picture is on screen with a real width, the others are hidden. Without
Chromium the test FAILS and says how to install it; set MMCHECK_NO_BROWSER=1
only where no package manager can (docs/outputs.md), and the test is skipped
with that reason.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import pytest
from mmcheck.checker.formats import render
from mmcheck.checker.formats.states import step_states

SVG = "{http://www.w3.org/2000/svg}"
ROOT = Path(__file__).resolve().parents[2]
# What each subsystem's picture must contain (a CSS class of its SVG elements).
DRAWS = {"buddy": "block", "vma": "area", "pagetable": "bit", "fault": "page", "slab": "object",
         "kmalloc": "allocation", "zone": "zone", "machine": "page", "vmalloc": "page",
         "segment": "sreg"}


def test_every_registered_subsystem_has_its_buggy_report_here(buggy_reports) -> None:
    """A new subsystem's HTML picture is rendered (and in a browser) as soon as it is
    registered: save a trace of its buggy example in tests/formats/traces/."""
    from mmcheck.checker.subsystems import registry

    assert set(buggy_reports) == set(DRAWS) == set(registry.names())


class _Ids(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: dict[str, dict[str, str | None]] = {}
        self.external: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if a.get("id"):
            self.ids[a["id"]] = a
        for key in ("src", "href"):
            if a.get(key):
                self.external.append(f"{tag} {key}={a[key]}")


@pytest.fixture(scope="module")
def page(buggy_reports) -> str:
    return render(list(buggy_reports.values()), "html")


def test_every_state_has_a_picture_that_parses(buggy_reports, page: str) -> None:
    parser = _Ids()
    parser.feed(page)
    assert parser.external == []  # self-contained: nothing to fetch
    for ri, (subsystem, r) in enumerate(buggy_reports.items()):
        assert f"summary-{ri}" in parser.ids
        for n, c in enumerate(r.counterexamples, 1):
            cid = f"cx-{ri}-{n}"
            states = step_states(c)
            assert len(states) == len(c.trace.steps) + 1
            slider = parser.ids[f"{cid}-slider"]
            assert slider["max"] == str(len(states) - 1)
            assert slider["value"] == str(c.violation.step + 1)
            assert f"{cid}-diff" in parser.ids
            for i in range(len(states)):
                assert f"{cid}-state-{i}" in parser.ids
            block = page[page.index(f'id="{cid}-state-0"'):page.index(f'id="{cid}-diff"')]
            svgs = re.findall(r"<svg .*?</svg>", block, re.S)
            assert len(svgs) == len(states)
            for s in svgs:
                root = ET.fromstring(s)  # well-formed XML
                assert root.tag == f"{SVG}svg" and subsystem in root.get("class", "")
            drawn = ET.fromstring(svgs[c.violation.step + 1])
            classes = " ".join(e.get("class", "") for e in drawn.iter())
            assert DRAWS[subsystem] in classes.split(), (subsystem, classes[:200])


def test_the_failing_binding_is_highlighted(buggy_reports, page: str) -> None:
    """buddy: `for b = Block(pfn=1, order=0)` outlines free block 1 in the failing state."""
    (c,) = buggy_reports["buddy"].counterexamples
    assert any(line.startswith("for b = Block(pfn=1") for line in c.violation.explanation)
    cid = "cx-0-1"
    after = page[page.index(f'id="{cid}-state-{c.violation.step + 1}"'):]
    assert 'id="hl-free-1"' in after[: after.index("</svg>")]


def test_the_object_past_the_slab_end_is_highlighted(buggy_reports, page: str) -> None:
    """slab: the object the explanation binds is outlined in its slab's row; kmalloc: the
    allocation ksize misjudged, in its size class's block."""
    for subsystem in ("slab", "kmalloc"):
        ri = list(buggy_reports).index(subsystem)
        (c, *_) = buggy_reports[subsystem].counterexamples
        failing = c.trace.steps[c.violation.step]  # slab: alloc() -> it; kmalloc: ksize(it)
        addr = f"{failing.result if subsystem == 'slab' else failing.args[0]:x}"
        after = page[page.index(f'id="cx-{ri}-1-state-{c.violation.step + 1}"'):]
        picture = after[: after.index("</svg>")]
        assert f'id="hl-obj-{addr}"' in picture, (subsystem, picture[:400])
        assert ('class="past-end"' in picture) == (subsystem == "slab")  # its bytes past the end


def test_the_zone_alloc_should_have_taken_from_is_highlighted(buggy_reports,
                                                             page: str) -> None:
    """zone: wrong_fallback takes DMA while Normal (idx 2, first of the zonelist) could
    serve: the explanation binds that zone, its band is outlined."""
    ri = list(buggy_reports).index("zone")
    (c,) = buggy_reports["zone"].counterexamples
    before = page[page.index(f'id="cx-{ri}-1-state-{c.violation.step + 1}"'):]
    assert 'id="hl-zone-2"' in before[: before.index("</svg>")]


def test_the_diff_shows_what_the_failing_step_changed(buggy_reports, page: str) -> None:
    diff = page[page.index('id="cx-0-1-diff"'):]
    diff = diff[: diff.index("</table>")]
    # free(0, 0) gave a page back, and took the block out of `allocated`
    assert re.search(r"free_pages</td><td><span class=\"removed\">7</span> \u2192 "
                     r"<span class=\"added\">8</span>", diff), diff
    assert '<div class="removed">- Block(pfn=0, order=0)</div>' in diff


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def test_the_report_renders_in_chromium(buggy_reports, page: str, tmp_path: Path) -> None:
    browser = _chromium()
    if browser is None:
        if os.environ.get("MMCHECK_NO_BROWSER"):
            pytest.skip(f"MMCHECK_NO_BROWSER={os.environ['MMCHECK_NO_BROWSER']}: no browser here")
        pytest.fail("chromium is not installed: run scripts/install-chromium (as root: "
                    "apt-get install -y chromium), or set MMCHECK_NO_BROWSER=1 where no "
                    "package manager can install it")
    html = tmp_path / "report.html"
    html.write_text(page)
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1280,2000",
             "--virtual-time-budget=5000", "--dump-dom"]
    done = subprocess.run([browser, *flags, html.as_uri()], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    dom = done.stdout
    assert re.search(r'<body[^>]*data-ready="yes"', dom), "the page's script did not run"
    cxs = re.findall(r'<div class="cx" id="(cx-\d+-\d+)"([^>]*)>', dom)
    assert len(cxs) == sum(len(r.counterexamples) for r in buggy_reports.values())
    for cid, attrs in cxs:
        failing = re.search(r'data-failing="(\d+)"', attrs).group(1)
        shown = re.search(r'data-shown="(\d+)"', attrs).group(1)
        width = int(re.search(r'data-shown-width="(\d+)"', attrs).group(1))
        assert shown == failing, cid  # opened at the state the violation is about
        assert width >= 300, (cid, width)  # its picture is laid out on screen
        frames = re.findall(rf'<div class="state-frame" id="{cid}-state-(\d+)"([^>]*)>', dom)
        visible = [i for i, a in frames if "hidden" not in a]
        assert visible == [shown], (cid, visible)

