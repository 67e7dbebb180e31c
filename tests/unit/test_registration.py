"""Every registered subsystem, walked end to end from its declaration alone.

Nothing here names a subsystem: a new one (slab, zones, ...) is walked as soon
as its module in checker/subsystems/declared/ registers it. For each one:

- its declaration agrees with its vocabulary and its driver has every hook;
- a small spec of its own, written from the vocabulary (every state name, every
  operation with its parameters and result), parses and type-checks;
- the reference model passes the subsystem's standard library (a short search);
- the buggy example the declaration names is convicted, and that counterexample
  round-trips: saved as JSON, loaded, replayed on a fresh submission, it breaks
  the same property again;
- the argument domains are data a generator can draw from for any setup.

And the registry itself: a driver without a hook, a declaration that disagrees
with its vocabulary or claims a taken contract class is a RegistrationError at
load, with the file and what is missing.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import types
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from mmcheck.checker.confirm import replay
from mmcheck.checker.evaluate import CompiledSpec
from mmcheck.checker.options import Options
from mmcheck.checker.run import check, load_saved_trace
from mmcheck.checker.subsystems import registry
from mmcheck.checker.subsystems.registry import (
    Domain,
    Op,
    RegistrationError,
    Subsystem,
)
from mmcheck.model.vocabulary import Vocabulary
from mmcheck.spec.loader import check_text, library, load

DECLARED = registry.declared()
NAMES = [d.name for d in DECLARED]


def test_the_registry_knows_every_subsystem_once() -> None:
    assert {"buddy", "vma", "pagetable", "fault"} <= set(NAMES)
    assert len(set(NAMES)) == len(NAMES)
    assert registry.contract_classes() == tuple(d.contract_class for d in DECLARED)
    for d in DECLARED:
        assert registry.subsystem_of_class(d.contract_class) == d.name


# ---------------------------------------------------------------- each subsystem


def smoke_spec(vocab: Vocabulary) -> str:
    """A spec naming every state variable, record field and operation of `vocab`."""
    lines = [f'spec {vocab.subsystem} "registration smoke test"', ""]
    terms = []
    for var in vocab.state:
        base = var.type.rstrip("?")
        if base.startswith(("set[", "list[")):
            record = vocab.record(base.split("[", 1)[1].rstrip("]"))
            assert record is not None, var
            fields = " and ".join(f"e.{f} == e.{f}" for f, _ in record.fields) or "true"
            terms.append(f"(forall e in {var.name}: {fields})")
        else:
            terms.append(f"{var.name} == {var.name}")
    lines += ['invariant every_name "every state name":', "    " + " and ".join(terms), ""]
    for op in vocab.operations:
        params = ", ".join(p for p, _ in op.params)
        returns = " returns r" if op.returns != "none" else ""
        uses = [f"{p} == {p}" for p, _ in op.params]
        if returns:
            uses.append("r == r")
        uses.append("(raised or not raised)")
        lines += [f'action {op.name}_named "{op.name}" after {op.name}({params}){returns}:',
                  "    " + " and ".join(uses), ""]
    return "\n".join(lines)


@pytest.mark.parametrize("decl", DECLARED, ids=NAMES)
def test_declaration_driver_and_vocabulary_agree(decl: Subsystem) -> None:
    driver = registry.driver(decl.name)
    assert driver is not None and driver.decl is decl
    vocab = driver.vocabulary
    assert [o.name for o in vocab.operations] == list(decl.operation_names)
    assert (driver.symbolic_system is not None) == decl.symbolic
    assert (registry.ROOT / decl.correct).is_file() and (registry.ROOT / decl.buggy).is_file()
    assert library(decl.name), f"no spec/lib/*.mm states properties of {decl.name}"


@pytest.mark.parametrize("decl", DECLARED, ids=NAMES)
def test_its_fields_are_what_the_shared_modules_need(decl: Subsystem) -> None:
    """Every per-subsystem fact the shared modules read comes from the declaration or
    the driver: contract clauses, number kinds, coverage classes, fixed setup values."""
    from mmcheck.checker import decode

    driver = registry.driver(decl.name)
    assert driver is not None
    contract = (registry.ROOT / "docs" / "contract.md").read_text()
    assert f"**[{decl.clauses}-" in contract, f"no [{decl.clauses}-...] clause"
    for name, kind in decl.kinds:
        assert decode.kind_of(decl.name, "", name) == kind
    assert decode.addresses(decl.name) == decl.addresses
    for op, param in decl.results:
        assert any(param in (p for p, _ in o.args) for o in decl.operations), (op, param)
    assert driver.coverage and len(set(driver.coverage)) == len(driver.coverage)
    assert {f"operation: {o}" for o in decl.operation_names} <= set(driver.coverage)

    @settings(max_examples=5, derandomize=True, database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(driver.setups(64))
    def each(setup: Mapping[str, int]) -> None:
        assert set(decl.fixed_setup) <= set(setup), decl.fixed_setup
        classes = driver.classify_setup(setup) if driver.classify_setup else []
        assert all(c.startswith("boundary: ") for c in classes), classes

    each()


@pytest.mark.parametrize("decl", DECLARED, ids=NAMES)
def test_a_spec_of_its_own_parses_and_type_checks(decl: Subsystem) -> None:
    vocab = registry.vocabulary(decl.name)
    assert vocab is not None
    checked = check_text(smoke_spec(vocab), f"<smoke {decl.name}>")
    assert checked.subsystem == decl.name
    assert len(checked.spec.actions) == len(vocab.operations)


@pytest.mark.parametrize("decl", DECLARED, ids=NAMES)
def test_argument_domains_are_data_for_any_setup(decl: Subsystem) -> None:
    driver = registry.driver(decl.name)
    assert driver is not None

    @settings(max_examples=10, derandomize=True, database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(driver.setups(64))
    def each(setup: Mapping[str, int]) -> None:
        for op in decl.operations:
            for param, dom in op.args:
                legal, invalid = dom.legal_values(setup), dom.invalid_values(setup)
                assert all(isinstance(v, int) for v in legal + invalid), (op.name, param)
                assert legal or invalid or dom.returned_by, (op.name, param)
                assert not set(legal) & set(invalid), (op.name, param)

    each()


@pytest.mark.parametrize("decl", DECLARED, ids=NAMES)
def test_the_reference_passes_its_library(decl: Subsystem) -> None:
    driver = registry.driver(decl.name)
    assert driver is not None
    specs = [load(p) for p in library(decl.name)]
    report = check(specs, decl.name, driver.ReferenceSystem, "the reference model",
                   Options(seed=0, budget=0.5, steps=15, save_dir=None), False)
    assert report.counterexamples == [] and report.exit_code == 0
    assert report.stats.traces > 0 and report.stats.steps > 0


@pytest.mark.parametrize("decl", DECLARED, ids=NAMES)
def test_its_buggy_example_is_convicted_and_the_trace_replays(decl: Subsystem,
                                                              tmp_path: Path) -> None:
    from mmcheck.checker.sandbox.client import Submission

    driver = registry.driver(decl.name)
    assert driver is not None
    checked = [load(p) for p in library(decl.name)]
    with Submission.open(registry.ROOT / decl.buggy, timeout_per_call=5.0) as sub:
        def make(setup: Mapping[str, int]):  # noqa: ANN202
            if not sub.alive:
                sub.restart()
            return driver.SubmissionSystem(sub, setup)

        options = Options(seed=0, budget=20.0, max_counterexamples=1, save_dir=tmp_path,
                          impl_arg=decl.buggy)
        report = check(checked, decl.name, make, decl.buggy, options, True)
        assert report.exit_code == 1 and report.counterexamples, decl.buggy
        first = report.counterexamples[0]
        assert first.confirmed, first.note
        (saved,) = [p for p in tmp_path.rglob("*.json") if not p.name.endswith(".itf.json")
                    and json.loads(p.read_text())["property"] == first.violation.property]
        _, trace, prop = load_saved_trace(saved)
        assert trace == first.trace and prop == first.violation.property
        # as `mmcheck replay` does: the saved trace is the counterexample of one property
        others = {p.name for c in checked for p in c.spec.properties} - {prop}
        again = replay(trace, [CompiledSpec(c) for c in checked], make, skip=frozenset(others))
        assert again.violation is not None and again.violation.property == prop


@pytest.mark.parametrize("decl", DECLARED, ids=NAMES)
def test_a_constructor_that_raises_is_a_submission_error(decl: Subsystem, mmcheck: Any,
                                                         tmp_path: Path) -> None:
    """Not a counterexample (no step ran) and not a bug in mmcheck: exit 2, one message."""
    path = tmp_path / "broken.py"
    methods = "".join(f"    def {op}(self, *args):\n        return None\n"
                      for op in decl.operation_names)
    path.write_text(f"class {decl.contract_class}:\n    def __init__(self, *args):\n"
                    f"        raise RuntimeError('not written yet')\n{methods}")
    result = mmcheck("check", "--impl", str(path), "--traces", "2", "--save", "")
    assert result.code == 2, (result.out, result.err)
    assert "Traceback" not in result.err and "internal error" not in result.err
    assert f"{decl.contract_class}(" in result.err
    assert "raised RuntimeError: not written yet at broken.py:3" in result.err


# ---------------------------------------------------------------- the registry's checks


def _module(name: str, **attrs: object) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__file__ = f"<{name}>"
    vars(module).update(attrs)
    sys.modules[name] = module
    return module


@pytest.fixture
def scratch() -> object:
    """A throwaway registry entry, removed afterwards."""
    before = dict(registry._REGISTRY)
    made: list[str] = []
    yield made
    registry._REGISTRY.clear()
    registry._REGISTRY.update(before)
    for name in made:
        sys.modules.pop(name, None)


def _decl(**changes: object) -> Subsystem:
    buddy = registry.get("buddy")
    assert buddy is not None
    base = dataclasses.replace(buddy, name="scratch", rank=999, contract_class="Scratch",
                               clauses="SCRATCH")
    return dataclasses.replace(base, **changes)


def test_a_driver_missing_a_hook_fails_when_it_loads(scratch: list[str]) -> None:
    from mmcheck.checker.subsystems import buddy

    hooks = {h: getattr(buddy, h) for h in registry.HOOKS if h != "render_state"}
    _module("scratch_driver", **hooks, symbolic_system=buddy.symbolic_system)
    scratch.append("scratch_driver")
    decl = _decl(name="buddy", driver="scratch_driver")
    with pytest.raises(RegistrationError, match="lacks render_state"):
        registry._driver(decl)


def test_a_driver_without_coverage_fails_when_it_loads(scratch: list[str]) -> None:
    from mmcheck.checker.subsystems import buddy

    hooks = {h: getattr(buddy, h) for h in registry.HOOKS}
    _module("scratch_nocov", **hooks, symbolic_system=buddy.symbolic_system)
    _module("scratch_halfcov", **hooks, symbolic_system=buddy.symbolic_system,
            COVERAGE=("operation: alloc", "outcome: alloc -> none"))
    scratch += ["scratch_nocov", "scratch_halfcov"]
    with pytest.raises(RegistrationError, match="defines no COVERAGE"):
        registry._driver(_decl(name="buddy", driver="scratch_nocov"))
    with pytest.raises(RegistrationError, match=r"operations not named \['free'\]"):
        registry._driver(_decl(name="buddy", driver="scratch_halfcov"))


def test_fields_naming_what_does_not_exist_are_refused(scratch: list[str]) -> None:
    with pytest.raises(RegistrationError, match="both claim the contract clauses"):
        registry.register(_decl(clauses="BUDDY"))
    with pytest.raises(RegistrationError, match="no clause prefix"):
        registry.register(_decl(clauses="buddy-"))
    with pytest.raises(RegistrationError, match="'flags' holds 'gfpflags'"):
        registry.register(_decl(kinds=(("flags", "gfpflags"),)))
    with pytest.raises(RegistrationError, match="results names alloc -> addr"):
        registry.register(_decl(results=(("alloc", "addr"),)))


def test_operations_must_be_the_vocabularys(scratch: list[str]) -> None:
    decl = _decl(name="buddy", operations=(Op("alloc", (("size", Domain((0,))),)),
                                           Op("free")))
    with pytest.raises(RegistrationError, match=r"alloc\(size\), free\(\).*alloc\(order\)"):
        registry._vocabulary(decl)


def test_a_taken_contract_class_or_bad_domain_is_refused(scratch: list[str]) -> None:
    with pytest.raises(RegistrationError, match="both claim the contract class"):
        registry.register(_decl(contract_class="BuddyAllocator"))
    with pytest.raises(RegistrationError, match="no operation"):
        registry.register(_decl(operations=(Op("alloc", (("order", Domain(
            returned_by="grow")),)),)))
    assert registry.register(_decl()).name == "scratch"


def test_the_pagetable_domains_follow_the_mmu_modes() -> None:
    from mmcheck.checker.subsystems.declared import pagetable as decl
    from mmcheck.model.mmu import MODES

    for levels, mode in MODES.items():
        assert decl.VA_BITS[levels] == mode.va_bits
        assert decl.PFN_BITS[levels] == mode.pfn_bits


def test_checking_buddy_does_not_import_the_page_table_model() -> None:
    import subprocess

    code = ("import sys\nfrom mmcheck.spec.loader import load, library\n"
            "from mmcheck.checker.subsystems import registry\n"
            "load(library('buddy')[0]); registry.driver('buddy'); registry.contract_classes()\n"
            "print('mmcheck.model.mmu' in sys.modules, 'mmcheck.model.fault' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=registry.ROOT, check=True)
    assert out.stdout.split() == ["False", "False"]
