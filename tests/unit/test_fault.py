"""The reference page-fault handling (model/fault.py): demand paging, COW, shmem, counts."""

from __future__ import annotations

import importlib.util
import random
import types
from collections import Counter
from pathlib import Path

import pytest
from mmcheck.model.fault import (
    SEGV_ACCERR,
    SEGV_MAPERR,
    SEGV_PKUERR,
    SI_KERNEL,
    VOCABULARY,
    Kernel,
    Segfault,
)
from mmcheck.model.linux import (
    MAP_ANONYMOUS,
    MAP_FIXED,
    MAP_PRIVATE,
    MAP_SHARED,
    PAGE_SIZE,
    PROT_EXEC,
    PROT_NONE,
    PROT_READ,
    PROT_WRITE,
    X86_PF_PROT,
    X86_PF_USER,
    X86_PF_WRITE,
)

RW = PROT_READ | PROT_WRITE
PRIV = MAP_PRIVATE | MAP_ANONYMOUS
SHARED = MAP_SHARED | MAP_ANONYMOUS
WINDOW = 0x1000_0000


def page_info(k: Kernel, pfn: int):  # noqa: ANN201 - a PageInfo
    return k.snapshot()["pages"][pfn]


def mapping(k: Kernel, pid: int, va: int):  # noqa: ANN201 - a Mapping or None
    return next((m for m in k.snapshot()["mappings"] if m.pid == pid and m.va == va), None)


def segv(fn, *args) -> Segfault:  # noqa: ANN001
    with pytest.raises(Segfault) as info:
        fn(*args)
    return info.value


@pytest.fixture
def k() -> Kernel:
    return Kernel(256)


# ---- demand paging ------------------------------------------------------------------

def test_read_maps_the_zero_page_then_a_write_allocates(k: Kernel) -> None:
    pid = k.spawn()
    a = k.mmap(pid, 0, 4 * PAGE_SIZE, RW, PRIV)
    assert k.frame(pid, a) is None
    free = k.free_pages()
    assert k.read(pid, a + 5) == 0
    assert k.frame(pid, a) == k.zero_pfn
    assert free - k.free_pages() == 3  # pud, pmd and pte tables; the zero page is shared
    m = mapping(k, pid, a)
    assert m.pfn == k.zero_pfn and not m.writable
    assert page_info(k, k.zero_pfn).mapcount == 0  # special PTEs are not counted
    k.write(pid, a + 5, 42)
    frame = k.frame(pid, a)
    assert frame not in (None, k.zero_pfn) and free - k.free_pages() == 4
    assert k.read(pid, a + 5) == 42 and k.read(pid, a + 6) == 0
    k.write(pid, a + 6, 1)
    assert k.frame(pid, a) == frame
    info = page_info(k, frame)
    assert (info.refcount, info.mapcount, info.anon, info.exclusive) == (1, 1, True, True)
    assert mapping(k, pid, a).writable


def test_write_first_allocates_directly(k: Kernel) -> None:
    pid = k.spawn()
    a = k.mmap(pid, 0, PAGE_SIZE, RW, PRIV)
    k.write(pid, a, 3)
    assert k.frame(pid, a) not in (None, k.zero_pfn)
    assert k.read(pid, a) == 3


def test_pages_are_distinct_and_isolated(k: Kernel) -> None:
    pid = k.spawn()
    a = k.mmap(pid, 0, 8 * PAGE_SIZE, RW, PRIV)
    for i in range(8):
        k.write(pid, a + i * PAGE_SIZE, i + 1)
    frames = {k.frame(pid, a + i * PAGE_SIZE) for i in range(8)}
    assert len(frames) == 8
    assert [k.read(pid, a + i * PAGE_SIZE) for i in range(8)] == list(range(1, 9))


# ---- copy-on-write ---------------------------------------------------------------------

def test_cow_child_write_copies_once_and_parent_reuses_after_exit(k: Kernel) -> None:
    parent = k.spawn()
    a = k.mmap(parent, 0, PAGE_SIZE, RW, PRIV)
    k.write(parent, a, 7)
    frame = k.frame(parent, a)
    child = k.fork(parent)
    assert k.frame(child, a) == frame
    info = page_info(k, frame)
    assert (info.refcount, info.mapcount, info.exclusive) == (2, 2, False)
    assert not mapping(k, parent, a).writable and not mapping(k, child, a).writable
    assert k.read(child, a) == 7 and k.frame(child, a) == frame  # a read does not copy
    k.write(child, a, 9)
    copy = k.frame(child, a)
    assert copy not in (frame, k.zero_pfn)
    assert k.frame(parent, a) == frame and k.read(parent, a) == 7 and k.read(child, a) == 9
    assert page_info(k, frame).refcount == 1 and page_info(k, frame).mapcount == 1
    k.write(child, a, 10)
    assert k.frame(child, a) == copy  # the second write does not copy again
    k.exit(child)
    assert page_info(k, copy).free
    k.write(parent, a, 8)
    assert k.frame(parent, a) == frame  # wp_page_reuse: the last sharer keeps its page
    assert k.read(parent, a) == 8 and mapping(k, parent, a).writable


def test_parent_write_copies_and_child_then_reuses(k: Kernel) -> None:
    parent = k.spawn()
    a = k.mmap(parent, 0, PAGE_SIZE, RW, PRIV)
    k.write(parent, a, 1)
    frame = k.frame(parent, a)
    child = k.fork(parent)
    k.write(parent, a, 2)
    assert k.frame(parent, a) != frame and k.frame(child, a) == frame
    assert k.read(child, a) == 1
    k.write(child, a, 3)
    assert k.frame(child, a) == frame  # now the only user: reused, not copied
    assert (k.read(parent, a), k.read(child, a)) == (2, 3)


def test_write_to_the_zero_page_after_fork_allocates_a_zeroed_page(k: Kernel) -> None:
    parent = k.spawn()
    a = k.mmap(parent, 0, 2 * PAGE_SIZE, RW, PRIV)
    k.write(parent, a + PAGE_SIZE, 1)  # gives the area an anon_vma
    assert k.read(parent, a) == 0
    child = k.fork(parent)
    assert k.frame(child, a) == k.zero_pfn  # copied, as the area has an anon_vma
    k.write(child, a + 1, 5)
    assert k.frame(child, a) not in (None, k.zero_pfn)
    assert k.read(child, a) == 0 and k.read(child, a + 1) == 5
    assert k.frame(parent, a) == k.zero_pfn and k.read(parent, a + 1) == 0


def test_fork_does_not_copy_an_area_that_only_saw_reads(k: Kernel) -> None:
    parent = k.spawn()
    a = k.mmap(parent, 0, PAGE_SIZE, RW, PRIV)
    k.read(parent, a)
    child = k.fork(parent)
    assert k.frame(parent, a) == k.zero_pfn and k.frame(child, a) is None
    assert k.read(child, a) == 0 and k.frame(child, a) == k.zero_pfn


def test_fork_chain_isolation(k: Kernel) -> None:
    rng = random.Random(7)
    p0 = k.spawn()
    a = k.mmap(p0, 0, 4 * PAGE_SIZE, RW, PRIV)
    expect: dict[int, dict[int, int]] = {p0: {}}
    pids = [p0]
    for _ in range(120):
        pid = rng.choice(pids)
        if rng.random() < 0.1 and len(pids) < 5:
            child = k.fork(pid)
            pids.append(child)
            expect[child] = dict(expect[pid])
            continue
        va = a + rng.randrange(4 * PAGE_SIZE)
        if rng.random() < 0.5:
            value = rng.randrange(256)
            k.write(pid, va, value)
            expect[pid][va] = value
        else:
            assert k.read(pid, va) == expect[pid].get(va, 0)
    for pid in pids:
        for va, value in expect[pid].items():
            assert k.read(pid, va) == value


# ---- shared anonymous memory --------------------------------------------------------------

def test_shared_anonymous_stays_shared_across_fork(k: Kernel) -> None:
    free = k.free_pages()
    parent = k.spawn()
    s = k.mmap(parent, 0, 2 * PAGE_SIZE, RW, SHARED)
    assert k.read(parent, s) == 0
    frame = k.frame(parent, s)
    assert frame != k.zero_pfn and mapping(k, parent, s).writable  # shmem: no zero page
    k.write(parent, s, 1)
    assert k.frame(parent, s) == frame
    child = k.fork(parent)
    assert k.frame(child, s) is None  # shared areas are not copied at fork
    assert k.read(child, s) == 1 and k.frame(child, s) == frame
    k.write(child, s + 1, 2)
    assert k.read(parent, s + 1) == 2
    k.write(child, s + PAGE_SIZE, 3)  # a page first touched by the child
    assert k.read(parent, s + PAGE_SIZE) == 3
    info = page_info(k, frame)
    assert (info.refcount, info.mapcount, info.shmem) == (3, 2, True)  # cache + 2 PTEs
    k.exit(parent)
    assert k.read(child, s) == 1
    k.exit(child)
    assert k.free_pages() == free


def test_shmem_read_faults_around(k: Kernel) -> None:
    parent = k.spawn()
    s = k.mmap(parent, WINDOW, 40 * PAGE_SIZE, RW, SHARED | MAP_FIXED)
    for i in range(40):
        k.write(parent, s + i * PAGE_SIZE, i)
    child = k.fork(parent)
    assert k.read(child, s + 18 * PAGE_SIZE) == 18
    present = [i for i in range(40) if k.frame(child, s + i * PAGE_SIZE) is not None]
    assert present == list(range(16, 32))  # as the live kernel shows it


def test_shmem_fault_around_stops_at_the_page_table(k: Kernel) -> None:
    """The window never crosses a 2 MiB boundary (one PTE table), as on Linux."""
    parent = k.spawn()
    pmd = 0x4000_0000
    s = k.mmap(parent, pmd - 20 * PAGE_SIZE, 40 * PAGE_SIZE, RW, SHARED | MAP_FIXED)
    for i in range(40):
        k.write(parent, s + i * PAGE_SIZE, 1)
    child = k.fork(parent)
    k.read(child, s + 19 * PAGE_SIZE)  # the last page below the boundary
    present = [i for i in range(40) if k.frame(child, s + i * PAGE_SIZE) is not None]
    assert present == list(range(4, 20))  # as the live kernel shows it


def test_fork_copies_zero_pages_of_an_area_merged_with_a_written_one(k: Kernel) -> None:
    """What decides the copy is the area's anon_vma, which a merge shares (live kernel)."""
    parent = k.spawn()
    a = k.mmap(parent, WINDOW, PAGE_SIZE, RW, PRIV | MAP_FIXED)
    k.write(parent, a, 1)
    b = k.mmap(parent, WINDOW + PAGE_SIZE, PAGE_SIZE, RW, PRIV | MAP_FIXED)  # merges into a
    c = k.mmap(parent, WINDOW + 6 * PAGE_SIZE, PAGE_SIZE, RW, PRIV | MAP_FIXED)  # alone
    k.read(parent, b)
    k.read(parent, c)
    assert len(k.snapshot()["vmas"]) == 2
    child = k.fork(parent)
    assert k.frame(child, b) == k.zero_pfn and k.frame(child, c) is None


def test_shmem_lives_until_the_last_mapping_goes(k: Kernel) -> None:
    free = k.free_pages()
    pid = k.spawn()
    s = k.mmap(pid, WINDOW, 3 * PAGE_SIZE, RW, SHARED | MAP_FIXED)
    for i in range(3):
        k.write(pid, s + i * PAGE_SIZE, i + 1)
    k.munmap(pid, s + PAGE_SIZE, PAGE_SIZE)  # the page stays in the object
    pages = [p for p in k.snapshot()["pages"] if p.shmem]
    assert len(pages) == 3
    k.munmap(pid, s, 3 * PAGE_SIZE)
    assert not [p for p in k.snapshot()["pages"] if p.shmem]
    k.exit(pid)
    assert k.free_pages() == free


# ---- SIGSEGV --------------------------------------------------------------------------------

def test_segfault_outside_every_area(k: Kernel) -> None:
    pid = k.spawn()
    e = segv(k.read, pid, 0x5000)
    assert (e.address, e.code, e.error_code) == (0x5000, SEGV_MAPERR, X86_PF_USER)
    e = segv(k.write, pid, 0x5000, 1)
    assert e.error_code == X86_PF_USER | X86_PF_WRITE
    e = segv(k.read, pid, 1 << 47)  # non-canonical: #GP
    assert (e.code, e.error_code) == (SI_KERNEL, 0)
    e = segv(k.read, pid, 0xFFFF_8000_0000_0000)  # kernel half: P is always reported
    assert (e.code, e.error_code) == (SEGV_MAPERR, X86_PF_USER | X86_PF_PROT)


@pytest.mark.parametrize(("prot", "read_ok", "write_ok", "code"), [
    (PROT_NONE, False, False, SEGV_ACCERR),
    (PROT_READ, True, False, SEGV_ACCERR),
    (PROT_WRITE, True, True, None),  # x86: PROT_WRITE implies readable
    (RW, True, True, None),
    (PROT_EXEC, False, False, SEGV_PKUERR),  # the execute-only protection key
    (PROT_READ | PROT_EXEC, True, False, SEGV_ACCERR),
])
@pytest.mark.parametrize("flags", [PRIV, SHARED])
def test_access_error_follows_the_live_kernel(k: Kernel, prot: int, read_ok: bool,
                                              write_ok: bool, code: int | None,
                                              flags: int) -> None:
    pid = k.spawn()
    a = k.mmap(pid, 0, PAGE_SIZE, prot, flags)
    if read_ok:
        assert k.read(pid, a) == 0
    else:
        assert segv(k.read, pid, a).code == code
    if write_ok:
        k.write(pid, a, 1)
        assert k.read(pid, a) == 1
    else:
        e = segv(k.write, pid, a, 1)
        assert e.code == (SEGV_PKUERR if prot == PROT_EXEC else SEGV_ACCERR)
        assert e.error_code & X86_PF_WRITE


def test_exec_only_is_readable_without_pku() -> None:
    k = Kernel(64, pku=False)
    pid = k.spawn()
    a = k.mmap(pid, 0, PAGE_SIZE, PROT_EXEC, PRIV)
    assert k.read(pid, a) == 0
    assert segv(k.write, pid, a, 1).code == SEGV_ACCERR


def test_exec_only_key_applies_to_a_present_page(k: Kernel) -> None:
    pid = k.spawn()
    a = k.mmap(pid, 0, PAGE_SIZE, RW, PRIV)
    k.write(pid, a, 7)
    k.mprotect(pid, a, PAGE_SIZE, PROT_EXEC)
    e = segv(k.read, pid, a)
    assert e.code == SEGV_PKUERR and e.error_code == X86_PF_PROT | X86_PF_USER | 0x20
    k.mprotect(pid, a, PAGE_SIZE, PROT_READ | PROT_EXEC)
    assert k.read(pid, a) == 7


# ---- mprotect and the PTEs --------------------------------------------------------------------

def test_mprotect_write_protects_and_restores_an_exclusive_page(k: Kernel) -> None:
    pid = k.spawn()
    a = k.mmap(pid, 0, PAGE_SIZE, RW, PRIV)
    k.write(pid, a, 1)
    frame = k.frame(pid, a)
    k.mprotect(pid, a, PAGE_SIZE, PROT_READ)
    assert not mapping(k, pid, a).writable
    assert segv(k.write, pid, a, 2).code == SEGV_ACCERR
    k.mprotect(pid, a, PAGE_SIZE, RW)
    assert mapping(k, pid, a).writable  # PageAnonExclusive: writable without a fault
    k.write(pid, a, 3)
    assert k.frame(pid, a) == frame and k.read(pid, a) == 3


def test_mprotect_never_makes_a_cow_page_writable(k: Kernel) -> None:
    parent = k.spawn()
    a = k.mmap(parent, 0, PAGE_SIZE, RW, PRIV)
    k.write(parent, a, 1)
    frame = k.frame(parent, a)
    child = k.fork(parent)
    k.mprotect(parent, a, PAGE_SIZE, PROT_READ)
    k.mprotect(parent, a, PAGE_SIZE, RW)
    assert not mapping(k, parent, a).writable
    k.write(parent, a, 2)
    assert k.frame(parent, a) != frame and k.read(child, a) == 1
    # after the child's exit the page is mapped once but not PageAnonExclusive
    k.exit(child)
    b = k.mmap(parent, 0, PAGE_SIZE, RW, PRIV)
    k.write(parent, b, 1)
    other = k.fork(parent)
    k.exit(other)
    k.mprotect(parent, b, PAGE_SIZE, PROT_READ)
    k.mprotect(parent, b, PAGE_SIZE, RW)
    assert not mapping(k, parent, b).writable
    frame_b = k.frame(parent, b)
    k.write(parent, b, 2)
    assert k.frame(parent, b) == frame_b and mapping(k, parent, b).writable


def test_mprotect_never_makes_the_zero_page_writable(k: Kernel) -> None:
    pid = k.spawn()
    a = k.mmap(pid, 0, PAGE_SIZE, PROT_READ, PRIV)
    k.read(pid, a)
    k.mprotect(pid, a, PAGE_SIZE, RW)
    assert k.frame(pid, a) == k.zero_pfn and not mapping(k, pid, a).writable
    k.write(pid, a, 4)
    assert k.frame(pid, a) != k.zero_pfn and k.read(pid, a) == 4


def test_prot_none_keeps_the_page_and_its_contents(k: Kernel) -> None:
    pid = k.spawn()
    a = k.mmap(pid, 0, PAGE_SIZE, RW, PRIV)
    k.write(pid, a, 9)
    frame = k.frame(pid, a)
    k.mprotect(pid, a, PAGE_SIZE, PROT_NONE)
    assert k.frame(pid, a) == frame  # pagemap still shows it present
    m = mapping(k, pid, a)
    assert not m.present and not m.writable
    assert segv(k.read, pid, a).code == SEGV_ACCERR
    k.mprotect(pid, a, PAGE_SIZE, RW)
    assert k.read(pid, a) == 9 and mapping(k, pid, a).writable


def test_mprotect_over_a_hole_changes_what_precedes_it(k: Kernel) -> None:
    pid = k.spawn()
    k.mmap(pid, WINDOW, PAGE_SIZE, RW, PRIV | MAP_FIXED)
    k.write(pid, WINDOW, 1)
    with pytest.raises(OSError):
        k.mprotect(pid, WINDOW, 2 * PAGE_SIZE, PROT_READ)
    assert k.snapshot()["vmas"][0].prot == PROT_READ
    assert not mapping(k, pid, WINDOW).writable
    assert segv(k.write, pid, WINDOW, 2).code == SEGV_ACCERR


# ---- munmap, MAP_FIXED, exit -------------------------------------------------------------------

def test_munmap_frees_and_map_fixed_replaces(k: Kernel) -> None:
    free = k.free_pages()
    pid = k.spawn()
    a = k.mmap(pid, WINDOW, 4 * PAGE_SIZE, RW, PRIV | MAP_FIXED)
    for i in range(4):
        k.write(pid, a + i * PAGE_SIZE, 5)
    k.munmap(pid, a + PAGE_SIZE, PAGE_SIZE)
    assert k.frame(pid, a + PAGE_SIZE) is None
    assert segv(k.read, pid, a + PAGE_SIZE).code == SEGV_MAPERR
    old = k.frame(pid, a + 2 * PAGE_SIZE)
    k.mmap(pid, a + 2 * PAGE_SIZE, PAGE_SIZE, RW, PRIV | MAP_FIXED)
    assert k.frame(pid, a + 2 * PAGE_SIZE) is None and page_info(k, old).free
    assert k.read(pid, a + 2 * PAGE_SIZE) == 0 and k.read(pid, a + 3 * PAGE_SIZE) == 5
    k.exit(pid)
    assert k.free_pages() == free


def test_errors_leave_state_alone(k: Kernel) -> None:
    pid = k.spawn()
    with pytest.raises(ValueError):
        k.read(pid + 10, 0)
    with pytest.raises(ValueError):
        k.fork(99)
    a = k.mmap(pid, 0, PAGE_SIZE, RW, PRIV)
    with pytest.raises(ValueError):
        k.write(pid, a, 256)
    with pytest.raises(OSError):
        k.mmap(pid, 0, 0, RW, PRIV)
    assert k.frame(pid, a) is None


def test_out_of_memory_changes_nothing() -> None:
    k = Kernel(16)
    pid = k.spawn()
    a = k.mmap(pid, WINDOW, 64 * PAGE_SIZE, RW, PRIV | MAP_FIXED)
    written = 0
    with pytest.raises(MemoryError):
        for i in range(64):
            k.write(pid, a + i * PAGE_SIZE, 1)
            written += 1
    before = k.snapshot()
    assert k.free_pages() == 0
    with pytest.raises(MemoryError):
        k.write(pid, a + written * PAGE_SIZE, 1)
    after = k.snapshot()
    assert after["mappings"] == before["mappings"] and after["pages"] == before["pages"]
    with pytest.raises(OSError):
        k.fork(pid)
    assert k.pids() == [pid]
    check_invariants(k)
    k.exit(pid)
    assert k.free_pages() == 15


# ---- a seeded random trace: the counts and the SIGSEGV decision -------------------------------

def check_invariants(k: Kernel) -> None:
    snap = k.snapshot()
    pages = snap["pages"]
    maps = snap["mappings"]
    per_pfn = Counter(m.pfn for m in maps)
    for p in pages:
        assert p.refcount >= p.mapcount >= 0  # REF-1
        assert p.free == (p.refcount == 0)  # REF-1: free exactly when unreferenced
        if not p.zero:
            assert p.mapcount == per_pfn[p.pfn]  # REF-2
        assert not (p.free and per_pfn[p.pfn])  # no page both free and mapped
        assert not (p.pgtable and per_pfn[p.pfn])  # PT-3
    for m in maps:
        info = pages[m.pfn]
        assert not (info.zero and m.writable)  # FAULT-2: the zero page is never writable
        if m.writable and not m.shared:
            assert info.mapcount == 1 and info.refcount == 1  # PT-3
    vmas: dict[int, list] = {}
    for v in snap["vmas"]:
        vmas.setdefault(v.pid, []).append(v)
    for m in maps:
        area = next(v for v in vmas[m.pid] if v.start <= m.va < v.end)
        assert not m.writable or area.prot & PROT_WRITE
        assert not m.present or area.prot != PROT_NONE
        assert m.shared == bool(area.flags & MAP_SHARED)
        assert not m.shared or pages[m.pfn].shmem
    rss = Counter((m.pid, pages[m.pfn].shmem) for m in maps if not pages[m.pfn].zero)
    for r in snap["rss"]:  # MM-1
        assert (r.anon, r.shmem) == (rss[(r.pid, False)], rss[(r.pid, True)])
    live = {(m.pid, m.va): m.pfn for m in maps}
    for t in snap["tlb"]:  # TLB-1
        assert live.get((t.pid, t.va)) == t.pfn
    assert snap["free_pages"] == sum(p.free for p in pages)


def expect_segv(k: Kernel, pid: int, va: int, write: bool) -> int | None:
    """The si_code Linux gives this access, from the areas alone, or None."""
    area = next((v for v in k.snapshot()["vmas"] if v.pid == pid and v.start <= va < v.end),
                None)
    if area is None:
        return SEGV_MAPERR
    if area.prot == PROT_EXEC:
        return SEGV_PKUERR
    if write:
        return None if area.prot & PROT_WRITE else SEGV_ACCERR
    return None if area.prot & (PROT_READ | PROT_WRITE) else SEGV_ACCERR


PROTS = [PROT_NONE, PROT_READ, PROT_WRITE, RW, PROT_EXEC, RW | PROT_EXEC]


def random_op(rng: random.Random, pids: list[int]) -> tuple:
    """A random operation on a 10-page window, weighted so that pages live long
    enough to be shared by fork and then written (COW copies and reuses)."""
    if not pids or rng.random() < 0.01:
        return ("spawn",)
    pid = rng.choice(pids)
    addr = WINDOW + rng.randrange(10) * PAGE_SIZE
    length = rng.randrange(1, 4) * PAGE_SIZE
    op = rng.random()
    if op < 0.07:
        return ("fork", pid) if len(pids) < 4 else ("exit", pid)
    if op < 0.085:
        return ("exit", pid)
    if op < 0.17:
        flags = rng.choice([PRIV, PRIV, SHARED]) | MAP_FIXED
        prot = rng.choice(PROTS + [RW, RW, RW])
        return ("mmap", pid, addr, length * 2, prot, flags)
    if op < 0.19:
        return ("munmap", pid, addr, length)
    if op < 0.23:
        return ("mprotect", pid, addr, length, rng.choice(PROTS + [RW]))
    va = addr + rng.choice([0, 1, 2048, PAGE_SIZE - 1])
    if op < 0.60:
        return ("write", pid, va, rng.randrange(256))
    return ("read", pid, va)


def random_step(k: Kernel, rng: random.Random, private: dict[int, dict[int, int]]) -> str:
    """One random operation, its outcome checked against what the areas and the
    process's own writes predict; `private` holds what each process wrote to
    private pages. Returns the operation's name."""
    op = random_op(rng, k.pids())
    name, args = op[0], op[1:]
    if name == "spawn":
        private[k.spawn()] = {}
    elif name == "fork":
        private[k.fork(args[0])] = dict(private[args[0]])
    elif name == "exit":
        k.exit(args[0])
        del private[args[0]]
    elif name in ("mmap", "munmap"):
        getattr(k, name)(*args)
        pid, addr, length = args[:3]
        private[pid] = {va: v for va, v in private[pid].items()
                        if not addr <= va < addr + length}
    elif name == "mprotect":
        try:
            k.mprotect(*args)
        except OSError:
            pass  # a hole: what precedes it was changed, as on Linux
    else:
        pid, va = args[:2]
        write = name == "write"
        code = expect_segv(k, pid, va, write)
        area = next((v for v in k.snapshot()["vmas"] if v.pid == pid and v.start <= va < v.end),
                    None)
        if code is not None:
            assert segv(getattr(k, name), *args).code == code
        elif write:
            k.write(*args)
            if not area.flags & MAP_SHARED:
                private[pid][va] = args[2]
        elif not area.flags & MAP_SHARED:
            assert k.read(pid, va) == private[pid].get(va, 0)
        else:
            k.read(pid, va)
    return name


@pytest.mark.parametrize("seed", range(6))
def test_random_trace_keeps_counts_and_frees_everything(seed: int) -> None:
    rng = random.Random(seed)
    k = Kernel(512)
    initial = k.free_pages()
    private: dict[int, dict[int, int]] = {}
    for _ in range(400):
        random_step(k, rng, private)
        check_invariants(k)
    for pid in k.pids():
        k.exit(pid)
        check_invariants(k)
    assert k.free_pages() == initial
    assert all(p.free or p.zero for p in k.snapshot()["pages"])


def test_vocabulary_names_the_snapshot(k: Kernel) -> None:
    snap = k.snapshot()
    assert {s.name for s in VOCABULARY.state} == set(snap)
    assert {o.name for o in VOCABULARY.operations} == {
        "spawn", "fork", "exit", "mmap", "munmap", "mprotect", "read", "write"}
    for name in ("Proc", "Mapping", "PageInfo", "ProcVma", "TlbEntry", "Rss"):
        assert VOCABULARY.record(name) is not None
    assert len(snap["pages"]) == 256 and snap["pages"][k.zero_pfn].zero


# ---- the examples: a student's Kernel agrees, the buggy ones are caught ------------------------

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "fault"


def load_example(relpath: str) -> types.ModuleType:
    path = EXAMPLES / relpath
    spec = importlib.util.spec_from_file_location(f"example_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def outcome(fn, *args) -> object:  # noqa: ANN001
    try:
        return ("ok", fn(*args))
    except (Segfault, OSError) as exc:
        return (type(exc).__name__, getattr(exc, "code", None) or exc.errno)
    except Exception as exc:  # noqa: BLE001 - segfaults of a submission's own class too
        return (type(exc).__name__, getattr(exc, "code", None))


def same_sharing(ref: Kernel, sub: object, touched: set[tuple[int, int]]) -> bool:
    """Where both map a page, pages shared in one are shared in the other (a renaming)."""
    ref_to_sub: dict[int, int] = {}
    sub_to_ref: dict[int, int] = {}
    for pid, va in touched:
        if pid not in ref.pids():
            continue
        a, b = ref.frame(pid, va), sub.frame(pid, va)
        if a is None or b is None:
            continue  # a legal difference in what is mapped already (see the example)
        if ref_to_sub.setdefault(a, b) != b or sub_to_ref.setdefault(b, a) != a:
            return False
    return True


def kernel_differential(module: types.ModuleType, seed: int, steps: int = 300) -> str | None:
    """What first tells `module`'s Kernel from the reference on a random trace, or None."""
    rng = random.Random(seed)
    ref, sub = Kernel(400), module.Kernel(400)
    initial = (ref.free_pages(), sub.free_pages())
    touched: set[tuple[int, int]] = set()
    for step in range(steps):
        op = random_op(rng, ref.pids())
        a = outcome(getattr(ref, op[0]), *op[1:])
        b = outcome(getattr(sub, op[0]), *op[1:])
        if a != b:
            return f"step {step}: {op} -> {b} but the reference gives {a}"
        if op[0] in ("read", "write"):
            touched.add((op[1], op[2] & ~(PAGE_SIZE - 1)))
        if not same_sharing(ref, sub, touched):
            return f"step {step}: {op} -> pages are shared differently"
    for pid in ref.pids():
        ref.exit(pid)
        sub.exit(pid)
    if (ref.free_pages(), sub.free_pages()) != initial:
        return f"free_pages {sub.free_pages()} after every exit, {initial[1]} at the start"
    return None


def test_correct_example_agrees_with_the_reference() -> None:
    module = load_example("correct/cow_kernel.py")
    for seed in range(4):
        assert kernel_differential(module, seed) is None


@pytest.mark.parametrize("name", ["cow_copies_on_read", "cow_never_copies",
                                  "missing_refcount_drop"])
def test_buggy_examples_are_caught(name: str) -> None:
    module = load_example(f"buggy/{name}.py")
    assert any(kernel_differential(module, seed) is not None for seed in range(4))


@pytest.mark.parametrize("name", ["cow_copies_on_read", "cow_never_copies",
                                  "missing_refcount_drop"])
def test_buggy_examples_documented_counterexamples(name: str) -> None:
    bad = load_example(f"buggy/{name}.py").Kernel(64)
    ref = Kernel(64)
    for k in (ref, bad):
        start = k.free_pages()
        pid = k.spawn()
        k.mmap(pid, WINDOW, PAGE_SIZE, RW, PRIV | MAP_FIXED)
        k.write(pid, WINDOW, 7)
        child = k.fork(pid)
        read = k.read(child, WINDOW)
        shared = k.frame(child, WINDOW) == k.frame(pid, WINDOW)
        k.write(child, WINDOW, 9)
        seen = k.read(pid, WINDOW)
        k.exit(child)
        k.exit(pid)
        k.result = (read, shared, seen, k.free_pages() == start)
    assert ref.result == (7, True, 7, True)
    broken = {"cow_copies_on_read": 1, "cow_never_copies": 2, "missing_refcount_drop": 3}[name]
    assert bad.result[broken] != ref.result[broken]
