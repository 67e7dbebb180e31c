"""Steps on the edges the contract names, one kind of step in every driver's draw_steps.

The bursts of each driver reach the classic mistakes in a few steps; the steps
here reach what the contract says and a student may not think of: every
argument drawn from its whole domain, with the weight on its boundaries
(docs/contract.md, and checker/coverage.py for the classes counted):

    buddy      every order 0 .. max_order-1, also above log2(npages); orders
               just outside [0, max_order)
    vma        addresses at, just below and just above every area's start and
               end, in every gap, at mmap_min_addr and task_size and past them,
               non-canonical ones, unaligned ones; lengths 0, 1, a page less one,
               a page, a page plus one, several pages, past task_size; every prot
               and unknown prot bits; every map type and fixed flag, the invalid
               ones included
    pagetable  canonical and non-canonical addresses at the edges of each mode,
               unaligned ones; pfns 0, the largest an entry holds and one more;
               flags with bits past 11, NX, every access combination
    fault      every operation against areas, gaps, non-canonical addresses and
               dead pids, values that are no byte

Each step draws two picks (see _vm.pick): with the kind, three choices, which
Hypothesis can still delete when it shrinks. The simplest value of every
dimension comes first. Two picks, not one: Hypothesis draws an integer from a
range of many thousands with a strong bias towards small values, which would
leave the last operations and the far addresses (non-canonical ones) rarely
tried; ranges of a few hundred it draws about evenly.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mmcheck.checker.subsystems._vm import pick
from mmcheck.model import linux

P = linux.PAGE_SIZE
PRIV = linux.MAP_PRIVATE | linux.MAP_ANONYMOUS
SHARED = linux.MAP_SHARED | linux.MAP_ANONYMOUS
FIXED, NOREPLACE = linux.MAP_FIXED, linux.MAP_FIXED_NOREPLACE
NON_CANONICAL = (1 << 47, 0xFFFF800000000000, (1 << 64) - P)
Ops = list[tuple[str, tuple[int, ...]]]


def buddy_steps(data: Any, npages: int, max_order: int) -> Ops:
    """alloc of any order of the zone (above what the memory holds too), or just outside."""
    orders = (*range(max_order), max_order, -1, max_order + 1)
    (order,) = pick(data, "edge order", orders)
    return [("alloc", (order,))]


# ---------------------------------------------------------------- address spaces


def vm_addresses(areas: Sequence[tuple[int, int]], low: int, top: int,
                 window: int) -> tuple[int, ...]:
    """Page addresses around every area and gap, and the setup's edges, simplest first."""
    out = [window]
    for start, end in areas:
        out += [start, end, start - P, end - P, start + P, end + P]
    out += [low, low - P, top - P, top, top + P, 0, window + 1, window + P - 1,
            *NON_CANONICAL]
    return tuple(dict.fromkeys(a for a in out if a >= 0))


def vm_lengths(top: int) -> tuple[int, ...]:
    return (P, 2 * P, P + 1, 1, P - 1, 0, 3 * P, 4 * P + 1, 2 << 20, top, top + P)


# 0x8 is PROT_SEM: mprotect accepts it and it changes nothing, mmap ignores it
# (docs/contract.md [AS-MPROTECT-ERRNO], [AS-MMAP]); 0x83 has a bit nobody knows.
VM_PROTS = (*range(8), 0x8, 0x83)
VM_FLAGS = (PRIV | FIXED, SHARED | FIXED, PRIV, SHARED, PRIV | NOREPLACE, SHARED | NOREPLACE,
            linux.MAP_ANONYMOUS | FIXED, linux.MAP_ANONYMOUS | 0x3 | FIXED,
            linux.MAP_ANONYMOUS | 0x8 | FIXED, linux.MAP_PRIVATE | FIXED)


def vma_steps(data: Any, areas: Sequence[tuple[int, int]], low: int, top: int,
              window: int, ops: Sequence[str]) -> Ops:
    """One of `ops` (mmap, munmap, mprotect, find_vma: those the vocabulary declares)
    with every argument on an edge of its domain."""
    op, addr = pick(data, "edge op, addr", ops, vm_addresses(areas, low, top, window))
    length, prot, flags = pick(data, "edge length, prot, flags", vm_lengths(top), VM_PROTS,
                               VM_FLAGS)
    if op == "find_vma":
        return [("find_vma", (addr,))]
    if op == "mmap":
        return [("mmap", (addr, length, prot, flags))]
    if op == "munmap":
        return [("munmap", (addr, length))]
    return [("mprotect", (addr, length, prot))]


def fault_steps(data: Any, pids: Sequence[int], dead: int,
                areas: Sequence[tuple[int, int]], window: int) -> Ops:
    """Reads, writes and the AddressSpace calls of one process (or a dead one) on edges."""
    op, pid = pick(data, "edge op, pid",
                   ("read", "write", "mprotect", "munmap", "mmap", "fork", "exit", "protect_two",
         "protect_touched"),
                   (*pids, dead))
    addr, length, value = pick(
        data, "edge addr, length, value",
        vm_addresses(areas, 0x10000, linux.TASK_SIZE_X86_64, window),
        (P, 3 * P, 8 * P, P + 1, 0), (7, 0, 255, 256, -1))
    if op == "read":
        return [("read", (pid, addr))]
    if op == "write":  # twice: the second write finds the page the first faulted in
        return [("write", (pid, addr, value)), ("write", (pid, addr, 1))]
    if op == "mprotect":
        return [("mprotect", (pid, addr, length, value & 7))]
    if op == "munmap":
        return [("munmap", (pid, addr, length))]
    if op == "mmap":
        return [("mmap", (pid, addr, length, linux.PROT_READ | linux.PROT_WRITE,
                          (PRIV, SHARED, PRIV | FIXED, SHARED | FIXED)[value % 4]))]
    if op == "protect_touched":  # a present page made PROT_NONE (or other), then used
        at = window + 6 * P
        return [("mmap", (pid, at, P, linux.PROT_READ | linux.PROT_WRITE, PRIV | FIXED)),
                ("write", (pid, at, 1)), ("mprotect", (pid, at, P, value & 7 if value > 0 else 0)),
                ("read", (pid, at)), ("write", (pid, at, 2))]
    if op == "protect_two":  # two neighbouring areas, then one mprotect over both
        at = window + 4 * P
        return [("mmap", (pid, at, P, linux.PROT_READ | linux.PROT_WRITE, PRIV | FIXED)),
                ("mmap", (pid, at + P, P, linux.PROT_READ, SHARED | FIXED)),
                ("mprotect", (pid, at, 2 * P, value & 7))]
    return [(op, (pid,))]


class Shadow:
    """The areas of an address space as the generator last saw them: the reference
    AddressSpace run on the trace's steps (a submission may differ; this only
    chooses where the next steps go)."""

    def __init__(self, task_size: int, mmap_min_addr: int) -> None:
        from mmcheck.model.vma import AddressSpace

        self.space = AddressSpace(task_size, mmap_min_addr)

    def record(self, op: str, args: tuple[int, ...], result: object, raised: str | None) -> None:
        if raised is not None:
            return
        try:
            if op == "mmap" and not args[3] & (FIXED | NOREPLACE):
                if isinstance(result, int) and not isinstance(result, bool):
                    self.space.take_area(result, *args)
            elif op in ("mmap", "munmap", "mprotect"):
                getattr(self.space, op)(*args)
        except Exception:  # noqa: BLE001 - a step the reference refuses changes nothing here
            pass

    def areas(self) -> list[tuple[int, int]]:
        return [(v[0], v[1]) for v in self.space.vmas()[:8]]


# ---------------------------------------------------------------- page tables


def pt_addresses(levels: int, common: Sequence[int]) -> tuple[int, ...]:
    """A mode's edges: the last canonical page of the lower half, the first of the
    upper, the first address it cannot translate, unaligned ones."""
    if levels <= 3:
        edges = ((1 << 32) - P, 1 << 32)
    else:
        bits = 48 if levels == 4 else 57
        edges = ((1 << (bits - 1)) - P, 1 << (bits - 1), (1 << 64) - (1 << (bits - 1)),
                 (1 << 64) - P)
    return tuple(dict.fromkeys((*common[:2], *edges, common[0] + 1, common[0] + 0x800,
                                *common[2:])))


def pt_pfns(levels: int) -> tuple[int, ...]:
    limit = 1 << (20 if levels == 2 else 40)
    return (1, 0, limit - 1, limit, 0x12345)


PT_FLAGS = (0x7, 0x1, 0x3, 0x5, 0x0, 0x7 | linux._PAGE_NX, 0x67, 0x107, 0xFFF, 1 << 12,
            0x7 | (1 << 52))


def pagetable_steps(data: Any, levels: int, common: Sequence[int]) -> Ops:
    """map, then unmap or translate (with any access) at an edge of the mode."""
    op, va = pick(data, "edge op, va", ("map", "translate", "unmap", "map_use", "neighbour"),
                  pt_addresses(levels, common))
    pfn, flags, access = pick(data, "edge pfn, flags, access", pt_pfns(levels), PT_FLAGS,
                              range(8))
    write, user, exec_ = access >> 2 & 1, access >> 1 & 1, access & 1
    if op == "map":
        return [("map", (va, pfn, flags))]
    if op == "unmap":
        return [("unmap", (va,))]
    if op == "translate":
        return [("translate", (va, write, user, exec_))]
    if op == "neighbour":  # the page next to a mapped one: its table exists, its entry not
        return [("map", (va, pfn, flags)), ("unmap", (va + P,)),
                ("translate", (va + P, write, user, exec_)), ("unmap", (va,))]
    return [("map", (va, pfn, flags)), ("translate", (va, write, user, exec_)),
            ("map", (va, pfn, flags))]
