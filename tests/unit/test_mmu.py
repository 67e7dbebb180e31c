"""The reference MMU (model/mmu.py, model/tlb.py): index splits, rights, A/D, TLB, tables."""

from __future__ import annotations

import importlib.util
import random
import types
from pathlib import Path

import pytest
from mmcheck.model.linux import (
    _PAGE_ACCESSED,
    _PAGE_DIRTY,
    _PAGE_NX,
    _PAGE_PRESENT,
    _PAGE_RW,
    _PAGE_USER,
    PAGE_SIZE,
    X86_PF_INSTR,
    X86_PF_PROT,
    X86_PF_USER,
    X86_PF_WRITE,
)
from mmcheck.model.mmu import VOCABULARY, PageFault, PageTable

P, RW, U = _PAGE_PRESENT, _PAGE_RW, _PAGE_USER
URW = P | RW | U


class Pages:
    """A page source that hands out pfns from 1000 up and records what comes back."""

    def __init__(self, limit: int | None = None) -> None:
        self.next = 1000
        self.held: set[int] = set()
        self.limit = limit

    def alloc_pages(self, order: int) -> int | None:
        assert order == 0
        if self.limit is not None and len(self.held) >= self.limit:
            return None
        self.next += 1
        self.held.add(self.next)
        return self.next

    def free_pages(self, pfn: int, order: int) -> None:
        assert order == 0 and pfn in self.held, f"bad free of {pfn}"
        self.held.remove(pfn)


def fault_code(pt: PageTable, va: int, write: bool = False, user: bool = True,
               exec: bool = False) -> int:
    with pytest.raises(PageFault) as info:
        pt.translate(va, write, user, exec)
    assert info.value.address == va
    return info.value.code


# ---- index splits -------------------------------------------------------------

def test_seed_worked_example_two_level() -> None:
    """0x08048568 in 2-level mode: PGD index 32, PT index 72, offset 0x568."""
    pt = PageTable(2, Pages())
    va = 0x08048568
    assert (pt.pgd_index(va), pt.pte_index(va), va & 0xFFF) == (32, 72, 0x568)
    assert pt.pmd_index(va) == 0 and pt.pud_index(va) == 0  # folded
    pt.map(0x08048000, 0x1234, URW)
    assert pt.translate(va, False, True) == 0x1234 * PAGE_SIZE + 0x568
    entries = pt.snapshot()["entries"]
    top = [e for e in entries if e.level == 2]
    leaf = [e for e in entries if e.level == 1]
    assert [e.index for e in top] == [32] and [e.index for e in leaf] == [72]
    assert leaf[0].pfn == 0x1234 and top[0].pfn == leaf[0].table


@pytest.mark.parametrize(("levels", "va", "indices"), [
    (3, 0xC0403000, {"pgd": 3, "pmd": 2, "pte": 3}),
    (4, 0x7FFFFFFFE000, {"pgd": 255, "pud": 511, "pmd": 511, "pte": 510, "p4d": 0}),
    (4, 0xFFFF800000201000, {"pgd": 256, "pud": 0, "pmd": 1, "pte": 1}),
    (5, 0x00FF_FFFF_FFFF_F000, {"pgd": 255, "p4d": 511, "pud": 511, "pmd": 511, "pte": 511}),
    (5, 0xFF00_0000_0000_0000, {"pgd": 256, "p4d": 0, "pte": 0}),
])
def test_index_split(levels: int, va: int, indices: dict[str, int]) -> None:
    pt = PageTable(levels, Pages())
    for name, want in indices.items():
        assert pt.index(va, name) == want, name
    pt.map(va, 77, URW)
    assert pt.walk(va + 0x10) == (77, URW)
    assert pt.table_pages() == levels
    assert [p.va for p in pt.snapshot()["ptes"]] == [va]


@pytest.mark.parametrize(("levels", "bad", "good"), [
    (2, 1 << 32, 0xFFFFF000),
    (3, 1 << 32, 0xFFFFF000),
    (4, 0x0000_8000_0000_0000, 0xFFFF_8000_0000_0000),
    (4, 0xFFFF_7FFF_FFFF_F000, 0x0000_7FFF_FFFF_F000),
    (5, 0x0100_0000_0000_0000, 0xFF00_0000_0000_0000),
])
def test_canonical_and_range_checks(levels: int, bad: int, good: int) -> None:
    pages = Pages()
    pt = PageTable(levels, pages)
    with pytest.raises(ValueError):
        pt.map(bad, 1, URW)
    # docs/contract.md [PT-TRANSLATE-BAD], [PT-UNMAP-BAD]: a fault with P clear, and None.
    assert fault_code(pt, bad) == X86_PF_USER
    assert fault_code(pt, bad, write=True, user=False) == X86_PF_WRITE
    assert pt.unmap(bad) is None
    with pytest.raises(ValueError):
        pt.unmap(bad + 1)
    assert pt.table_pages() == 1 and len(pages.held) == 1
    pt.map(good, 1, URW)
    assert pt.walk(good) == (1, URW)


def test_map_rejects_bad_arguments_and_changes_nothing() -> None:
    pt = PageTable(2, Pages())
    pt.map(0x1000, 1, URW)
    before = pt.table_pages()
    for args in [(0x1001, 2, URW), (0x1000, 2, URW), (-4096, 2, URW), (0x2000, 1 << 20, URW),
                 (0x2000, 2, _PAGE_NX | URW), (0x2000, 2, 1 << 12), (0x2000, -1, URW)]:
        with pytest.raises(ValueError):
            pt.map(*args)
    assert pt.table_pages() == before and pt.walk(0x2000) is None
    assert pt.walk(0x1000) == (1, URW)
    pt4 = PageTable(4, Pages())
    pt4.map(0x2000, (1 << 40) - 1, URW | _PAGE_NX)
    assert pt4.walk(0x2000) == ((1 << 40) - 1, URW | _PAGE_NX)


def test_unmap_returns_the_pfn_once() -> None:
    pt = PageTable(4, Pages())
    pt.map(0x5000, 9, URW)
    assert pt.unmap(0x5000) == 9
    assert pt.unmap(0x5000) is None and pt.walk(0x5000) is None
    with pytest.raises(ValueError):
        pt.unmap(0x5001)


# ---- rights and error codes ----------------------------------------------------

def test_error_codes() -> None:
    pt = PageTable(4, Pages())
    pt.map(0x1000, 1, P | U)  # user read-only
    pt.map(0x2000, 2, P | RW)  # supervisor only
    pt.map(0x3000, 3, URW | _PAGE_NX)
    pt.install(0x4000, 4, U | RW)  # installed but not present (set_pte_at)
    assert fault_code(pt, 0x9000) == X86_PF_USER
    assert fault_code(pt, 0x9000, write=True) == X86_PF_USER | X86_PF_WRITE
    assert fault_code(pt, 0x9000, user=False) == 0
    assert fault_code(pt, 0x1000, write=True) == X86_PF_PROT | X86_PF_WRITE | X86_PF_USER
    assert fault_code(pt, 0x1000, write=True, user=False) == X86_PF_PROT | X86_PF_WRITE  # CR0.WP
    assert fault_code(pt, 0x2000) == X86_PF_PROT | X86_PF_USER
    assert fault_code(pt, 0x3000, exec=True) == X86_PF_PROT | X86_PF_USER | X86_PF_INSTR
    assert fault_code(pt, 0x9000, exec=True) == X86_PF_USER | X86_PF_INSTR
    assert fault_code(pt, 0x4000) == X86_PF_USER
    assert pt.translate(0x1000, False, True) == PAGE_SIZE
    assert pt.translate(0x2000, True, False) == 2 * PAGE_SIZE
    assert pt.translate(0x3000, True, True) == 3 * PAGE_SIZE
    assert pt.translate(0x1000, False, True, exec=True) == PAGE_SIZE


def test_two_level_has_no_nx_and_no_instruction_bit() -> None:
    pt = PageTable(2, Pages())
    assert fault_code(pt, 0x9000, exec=True) == X86_PF_USER
    pt.map(0x1000, 1, P | U)
    assert pt.translate(0x1000, False, True, exec=True) == PAGE_SIZE


@pytest.mark.parametrize("levels", [2, 4, 5])
def test_effective_rights_are_the_and_over_levels(levels: int) -> None:
    """PT-2: a user or write access needs U / RW at every level of the walk."""
    pt = PageTable(levels, Pages())
    va = 0x40_0000
    pt.map(va, 5, URW)
    assert pt.translate(va, True, True) == 5 * PAGE_SIZE
    pt.set_table_flags(va, levels, P | RW | _PAGE_ACCESSED)  # pgd entry without U
    assert fault_code(pt, va) == X86_PF_PROT | X86_PF_USER
    assert pt.translate(va, True, False) == 5 * PAGE_SIZE  # the supervisor still may
    pt.set_table_flags(va, levels, P | U)  # ...and without RW
    assert fault_code(pt, va, write=True, user=False) == X86_PF_PROT | X86_PF_WRITE
    assert pt.translate(va, False, True) == 5 * PAGE_SIZE
    assert not pt.snapshot()["ptes"][0].writable
    pt.set_table_flags(va, 2, U)  # lowest non-leaf entry not present
    assert fault_code(pt, va) == X86_PF_USER
    assert not pt.snapshot()["ptes"][0].present


def test_nx_at_an_upper_level_forbids_exec() -> None:
    pt = PageTable(4, Pages())
    pt.map(0x1000, 1, URW)
    pt.set_table_flags(0x1000, 3, URW | _PAGE_NX)  # the pud entry
    assert fault_code(pt, 0x1000, exec=True) == X86_PF_PROT | X86_PF_USER | X86_PF_INSTR
    assert pt.translate(0x1000, True, True) == PAGE_SIZE


def test_pae_pdpte_holds_only_present() -> None:
    pt = PageTable(3, Pages())
    pt.map(0x1000, 1, URW)
    top = [e for e in pt.snapshot()["entries"] if e.level == 3]
    assert [e.flags for e in top] == [_PAGE_PRESENT]
    pt.translate(0x1000, True, True)
    top = [e for e in pt.snapshot()["entries"] if e.level == 3]
    assert [e.flags for e in top] == [_PAGE_PRESENT]  # no accessed bit there
    with pytest.raises(ValueError):
        pt.set_table_flags(0x1000, 3, URW)


# ---- accessed and dirty ---------------------------------------------------------

def test_accessed_and_dirty_as_hardware_sets_them() -> None:
    pt = PageTable(4, Pages())
    pt.map(0x1000, 1, URW)
    assert pt.walk(0x1000) == (1, URW)
    with pytest.raises(PageFault):
        pt.translate(0x9000, True, True)
    pt.translate(0x1000, False, True)
    assert pt.walk(0x1000) == (1, URW | _PAGE_ACCESSED)
    pt.translate(0x1000, True, True)
    assert pt.walk(0x1000) == (1, URW | _PAGE_ACCESSED | _PAGE_DIRTY)
    # accessed on every level: clear it in the pmd entry, flush, walk again
    pt.set_table_flags(0x1000, 2, URW)
    pt.translate(0x1000, False, True)
    pmd = [e for e in pt.snapshot()["entries"] if e.level == 2]
    assert pmd[0].flags & _PAGE_ACCESSED


def test_a_faulting_access_sets_no_bit() -> None:
    pt = PageTable(4, Pages())
    pt.map(0x1000, 1, P | U)
    with pytest.raises(PageFault):
        pt.translate(0x1000, True, True)
    assert pt.walk(0x1000) == (1, P | U)


def test_write_through_a_clean_tlb_entry_sets_dirty() -> None:
    pt = PageTable(4, Pages())
    pt.map(0x1000, 1, URW)
    pt.translate(0x1000, False, True)  # cached clean
    pt.translate(0x1000, True, True)
    assert pt.walk(0x1000)[1] & _PAGE_DIRTY


# ---- the TLB -------------------------------------------------------------------

def test_unmap_flushes_the_tlb_in_the_reference() -> None:
    pt = PageTable(4, Pages())
    pt.map(0x1000, 1, URW)
    pt.translate(0x1000, False, True)
    assert [(e.va, e.pfn) for e in pt.snapshot()["tlb"]] == [(0x1000, 1)]
    pt.unmap(0x1000)
    assert pt.snapshot()["tlb"] == []
    assert fault_code(pt, 0x1000) == X86_PF_USER


def test_missing_flush_leaves_a_stale_translation() -> None:
    """TLB-1: without the flush the old frame stays reachable, even after a remap."""
    pt = PageTable(4, Pages(), tlb_flush_on_unmap=False)
    pt.map(0x1000, 1, URW)
    pt.translate(0x1000, True, True)
    assert pt.unmap(0x1000) == 1
    assert pt.translate(0x1000, False, True) == PAGE_SIZE  # stale: frame 1 may be free
    pt.map(0x1000, 2, URW)
    assert pt.translate(0x1234, True, True) == PAGE_SIZE + 0x234
    snap = pt.snapshot()
    assert [(e.va, e.pfn) for e in snap["tlb"]] == [(0x1000, 1)]
    assert [(p.va, p.pfn) for p in snap["ptes"]] == [(0x1000, 2)]
    pt.flush_tlb_page(0x1000)
    assert pt.translate(0x1000, False, True) == 2 * PAGE_SIZE


def test_tlb_never_grants_more_than_it_cached() -> None:
    """A cached entry that forbids an access is dropped and the walk decides."""
    pt = PageTable(4, Pages(), tlb_flush_on_unmap=False)
    pt.map(0x1000, 1, P | U)
    pt.translate(0x1000, False, True)
    pt.set_pte(0x1000, 1, URW)  # upgrade
    assert pt.translate(0x1000, True, True) == PAGE_SIZE
    pt.map(0x2000, 2, URW)
    pt.translate(0x2000, False, True)  # cached clean
    pt.unmap(0x2000)  # no flush
    assert fault_code(pt, 0x2000, write=True) == X86_PF_USER | X86_PF_WRITE  # D forces a walk
    pt.flush_tlb_all()
    assert pt.snapshot()["tlb"] == []


def test_flush_tlb_range() -> None:
    pt = PageTable(4, Pages(), tlb_flush_on_unmap=False)
    for i in range(4):
        pt.map(i * PAGE_SIZE, i, URW)
        pt.translate(i * PAGE_SIZE, False, True)
    pt.flush_tlb_range(PAGE_SIZE, 3 * PAGE_SIZE)
    assert [e.va for e in pt.snapshot()["tlb"]] == [0, 3 * PAGE_SIZE]


# ---- table pages ----------------------------------------------------------------

def test_tables_are_taken_and_given_back() -> None:
    pages = Pages()
    pt = PageTable(4, pages)
    assert pt.table_pages() == 1
    pt.map(0x1000, 1, URW)
    pt.map(0x2000, 2, URW)
    assert pt.table_pages() == 4
    pt.map(1 << 39, 3, URW)  # another pgd slot: pud, pmd, pte tables
    assert pt.table_pages() == 7 and len(pages.held) == 7
    pt.unmap(0x1000)
    assert pt.table_pages() == 7
    pt.unmap(0x2000)
    assert pt.table_pages() == 4
    pt.unmap(1 << 39)
    assert pt.table_pages() == 1 and len(pages.held) == 1
    pt.destroy()
    assert not pages.held


def test_map_out_of_table_pages_changes_nothing() -> None:
    pages = Pages(limit=3)
    pt = PageTable(4, pages)
    with pytest.raises(MemoryError):
        pt.map(0x1000, 1, URW)
    assert pt.table_pages() == 1 and len(pages.held) == 1
    assert pt.walk(0x1000) is None and pt.snapshot()["entries"] == []


def test_lazy_tables_and_free_pgtables() -> None:
    pages = Pages()
    pt = PageTable(4, pages, free_empty_tables=False)
    pt.map(0x1000, 1, URW)
    pt.map(1 << 30, 2, URW)  # same pud table, another pmd
    pt.unmap(0x1000)
    pt.unmap(1 << 30)
    assert pt.table_pages() == 6  # pgd, pud, two pmd and two pte tables
    assert pt.free_pgtables(0, 1 << 30) == 2  # the pmd and pte tables under the first GiB
    assert pt.table_pages() == 4
    assert pt.free_pgtables(1 << 30, 1 << 31) == 2
    assert pt.free_pgtables() == 1  # the pud, now empty
    assert pt.table_pages() == 1 and len(pages.held) == 1


def test_destroy_refuses_while_mapped() -> None:
    pt = PageTable(4, Pages())
    pt.map(0x1000, 1, URW)
    with pytest.raises(ValueError):
        pt.destroy()


def test_walk_range_crosses_the_canonical_hole() -> None:
    pt = PageTable(4, Pages())
    high = 0xFFFF_8000_0000_0000
    pt.map(0x7FFF_FFFF_F000, 1, URW)
    pt.map(high, 2, URW)
    assert [v for v, _, _ in pt.walk_range()] == [0x7FFF_FFFF_F000, high]
    assert [v for v, _, _ in pt.walk_range(0x1000_0000_0000, high)] == [0x7FFF_FFFF_F000]
    assert [v for v, _, _ in pt.walk_range(high)] == [high]


# ---- a seeded random trace: PT-1 and the map/walk/translate agreement ------------

def check_structure(pt: PageTable, model: dict[int, tuple[int, int]]) -> None:
    snap = pt.snapshot()
    tables = {t.pfn: t.level for t in snap["tables"]}
    parents: dict[int, int] = {}
    for e in snap["entries"]:
        assert tables[e.table] == e.level
        if not e.leaf:
            assert tables[e.pfn] == e.level - 1  # points to the next level down
            parents[e.pfn] = parents.get(e.pfn, 0) + 1
    assert tables[snap["root"]] == pt.levels and snap["root"] not in parents
    assert all(parents.get(pfn) == 1 for pfn in tables if pfn != snap["root"])
    assert snap["table_pages"] == len(tables)
    assert {p.va: (p.pfn, p.flags) for p in snap["ptes"]} == model
    # eager reclaim: one root plus one table per distinct index prefix
    mode = pt.mode
    prefixes = {(depth, (va & ((1 << 64) - 1)) >> mode.shifts[depth - 1])
                for va in model for depth in range(1, pt.levels)}
    assert len(tables) == 1 + len(prefixes)
    for tlb in snap["tlb"]:  # TLB-1 in a correct MMU: no entry outlives its PTE
        assert tlb.va in model and model[tlb.va][0] == tlb.pfn


@pytest.mark.parametrize("levels", [2, 3, 4, 5])
def test_random_trace_keeps_the_tables_well_formed(levels: int) -> None:
    rng = random.Random(1000 + levels)
    pages = Pages()
    pt = PageTable(levels, pages)
    top = 1 << 32 if levels < 4 else 1 << pt.mode.va_bits - 1
    slots = [rng.randrange(0, top // PAGE_SIZE) * PAGE_SIZE for _ in range(12)]
    slots += [s + PAGE_SIZE for s in slots[:4]]
    model: dict[int, tuple[int, int]] = {}
    for step in range(600):
        va = rng.choice(slots)
        op = rng.random()
        if op < 0.4:
            flags = rng.choice([URW, P | U, P | RW, URW | _PAGE_NX if levels > 2 else URW])
            if va in model:
                with pytest.raises(ValueError):
                    pt.map(va, step, flags)
            else:
                pt.map(va, step, flags)
                model[va] = (step, flags)
        elif op < 0.7:
            assert pt.unmap(va) == (model.pop(va)[0] if va in model else None)
        else:
            write, user = rng.random() < 0.5, rng.random() < 0.5
            entry = model.get(va)
            allowed = entry is not None and (not user or entry[1] & U) and (
                not write or entry[1] & RW)
            if allowed:
                assert pt.translate(va + 8, write, user) == entry[0] * PAGE_SIZE + 8
                model[va] = (entry[0], entry[1] | _PAGE_ACCESSED | (_PAGE_DIRTY if write else 0))
            else:
                with pytest.raises(PageFault) as info:
                    pt.translate(va + 8, write, user)
                assert bool(info.value.code & X86_PF_PROT) == (entry is not None)
        check_structure(pt, model)
    assert len(pages.held) == pt.table_pages()


def test_vocabulary_names_the_snapshot() -> None:
    snap = PageTable(4, Pages()).snapshot()
    assert {s.name for s in VOCABULARY.state} == set(snap)
    assert {o.name for o in VOCABULARY.operations} == {"map", "unmap", "translate"}
    for record in ("Pte", "TlbEntry", "Table", "TableEntry"):
        assert VOCABULARY.record(record) is not None
    pte = VOCABULARY.record("Pte")
    assert [f for f, _ in pte.fields][:3] == ["va", "pfn", "flags"]


# ---- the examples: the student-style PageTable agrees, the buggy ones do not --------------

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "pagetable"


def load_example(relpath: str) -> types.ModuleType:
    path = EXAMPLES / relpath
    spec = importlib.util.spec_from_file_location(f"example_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def outcome(fn, *args) -> object:  # noqa: ANN001
    try:
        return ("ok", fn(*args))
    except Exception as exc:  # noqa: BLE001 - any exception is an outcome to compare
        return (type(exc).__name__, getattr(exc, "code", None))


def differential(module: types.ModuleType, levels: int, seed: int, steps: int = 400) -> int | None:
    """The first step where `module`'s PageTable and the reference disagree, or None."""
    rng = random.Random(seed)
    ref, sub = PageTable(levels, Pages()), module.PageTable(levels, Pages())
    top = 1 << 32 if levels < 4 else 1 << 47
    slots = [rng.randrange(top // PAGE_SIZE) * PAGE_SIZE for _ in range(6)]
    slots += [s + PAGE_SIZE for s in slots[:3]]
    for step in range(steps):
        va = rng.choice(slots)
        op = rng.random()
        if op < 0.35:
            flags = rng.choice([URW, P | U, P | RW, P, U | RW])
            args: tuple = ("map", va, step, flags)
        elif op < 0.55:
            args = ("unmap", va)
        elif op < 0.65:
            args = ("walk", va + rng.randrange(PAGE_SIZE))
        else:
            args = ("translate", va + rng.randrange(PAGE_SIZE), rng.random() < 0.5,
                    rng.random() < 0.7, rng.random() < 0.1)
        if outcome(getattr(ref, args[0]), *args[1:]) != outcome(getattr(sub, args[0]), *args[1:]):
            return step
        if ref.table_pages() != sub.table_pages():
            return step
    return None


@pytest.mark.parametrize("levels", [2, 3, 4, 5])
def test_correct_example_agrees_with_the_reference(levels: int) -> None:
    module = load_example("correct/radix_tables.py")
    for seed in range(3):
        assert differential(module, levels, seed) is None


@pytest.mark.parametrize("name", ["no_tlb_flush", "user_bit_not_checked"])
def test_buggy_examples_disagree_with_the_reference(name: str) -> None:
    module = load_example(f"buggy/{name}.py")
    assert any(differential(module, 4, seed) is not None for seed in range(3))


def test_buggy_examples_documented_counterexamples() -> None:
    stale = load_example("buggy/no_tlb_flush.py").PageTable(4, Pages())
    stale.map(0x1000, 1, URW)
    assert stale.translate(0x1000, False, True) == 0x1000
    assert stale.unmap(0x1000) == 1
    assert stale.translate(0x1000, False, True) == 0x1000  # the reference faults here
    no_user = load_example("buggy/user_bit_not_checked.py").PageTable(4, Pages())
    no_user.map(0x1000, 1, P | RW)
    assert no_user.translate(0x1000, False, True) == 0x1000  # the reference faults here


def test_contract_letter_examples() -> None:
    # docs/contract.md: never_frees_tables keeps empty tables ([PT-TABLES-CHOICE]) and
    # agrees with the reference otherwise; each buggy one breaks the clause it names.
    keeper = load_example("correct/never_frees_tables.py").PageTable(4, Pages())
    keeper.map(0x1000, 1, URW)
    assert keeper.unmap(0x1000) == 1 and keeper.table_pages() == 4
    assert keeper.unmap(1 << 47) is None and keeper.walk(1 << 47) is None
    with pytest.raises(Exception) as info:  # noqa: PT011 - the example's own PageFault
        keeper.translate(1 << 47, True, True)
    assert type(info.value).__name__ == "PageFault"
    assert info.value.code == X86_PF_USER | X86_PF_WRITE
    with pytest.raises(ValueError):
        load_example("buggy/translate_raises_valueerror.py").PageTable(4, Pages()).translate(
            1 << 47, False, True)
    with pytest.raises(ValueError):
        load_example("buggy/unmap_untranslatable_raises.py").PageTable(4, Pages()).unmap(1 << 47)
    marked = load_example("buggy/map_sets_accessed.py").PageTable(4, Pages())
    marked.map(0x1000, 1, URW)
    assert marked.walk(0x1000) == (1, URW | _PAGE_ACCESSED | _PAGE_DIRTY)
    late_pages = Pages()
    late = load_example("buggy/validates_late.py").PageTable(4, late_pages)
    with pytest.raises(ValueError):
        late.map(0x1000, 1 << 40, URW)
    assert late.table_pages() == 4 and len(late_pages.held) == 4  # three tables for nothing
    clean = load_example("buggy/no_dirty_bit.py").PageTable(4, Pages())
    clean.map(0x1000, 1, URW)
    clean.translate(0x1000, True, True)
    assert clean.walk(0x1000) == (1, URW | _PAGE_ACCESSED)
