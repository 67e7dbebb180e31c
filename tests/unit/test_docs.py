"""Documentation that can be checked is: the tutorial's specs type-check, and
docs/vocabulary.md is what `mmcheck vocab` prints today."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from mmcheck.checker.vocab import vocabulary_doc
from mmcheck.spec.loader import check_text

ROOT = Path(__file__).resolve().parents[2]
TUTORIAL = ROOT / "docs" / "tutorial.md"


def _spec_blocks() -> list[str]:
    return re.findall(r"```mm\n(.*?)```", TUTORIAL.read_text(), re.S)


def test_the_tutorial_has_a_spec_for_every_subsystem() -> None:
    subsystems = {re.match(r'spec (\w+)', b).group(1) for b in _spec_blocks()}
    from mmcheck.checker.subsystems import registry

    assert set(registry.names()) <= subsystems


@pytest.mark.parametrize("n", range(len(_spec_blocks())))
def test_every_tutorial_spec_type_checks(n: int) -> None:
    check_text(_spec_blocks()[n], f"docs/tutorial.md block {n + 1}")


def test_the_vocabulary_reference_is_current() -> None:
    assert (ROOT / "docs" / "vocabulary.md").read_text() == vocabulary_doc(), (
        "docs/vocabulary.md is stale: regenerate it (see its first lines)")
