"""One machine: every allocator on one mem_map, and who owns each page frame.

The pieces are the project's reference models, wired as Linux wires them:

    node         model/zone.py: zones booted from memblock (the kernel image and
                 mem_map kept PG_reserved), a buddy allocator per zone
    slab         model/slab.py: one kmem_cache of 256-byte objects; its slabs come
                 from the node with GFP_KERNEL and are marked PG_slab, every page
    kernel page  model/vmalloc.py over model/mmu.py: vmalloc takes order-0 pages
    table and    (GFP_KERNEL | __GFP_HIGHMEM, as __vmalloc_node does), marks them
    vmalloc      PG_vmalloc through its PageOwner hook, maps them in init_mm's
                 page table, whose table pages are PG_table
    user memory  one process's 2-level page table (its table pages PG_table) and
                 anonymous pages (GFP_HIGHUSER_MOVABLE) with _mapcount, mapping
                 (anon), the LRU list and a _refcount per mapping

Every page comes from `OwnedPages`, the page allocator as one owner calls it:
alloc_pages marks the owner on each struct page of the block, free_pages
clears the mark, drops the reference (`put_page_testzero`) and runs
`free_pages_check` before the buddy allocator takes the block back, so a
page freed while still marked is a BadPage, as in Linux.

`owners(pfn)` reads ownership off struct page alone (OWN-1 of
docs/invariants.md): free in the buddy allocator (inside a block whose head
has PageBuddy), PG_slab, PG_table, mapped user memory (_mapcount > 0),
PG_vmalloc, PG_reserved. `snapshot` gives the machine vocabulary, which
states OWN-1, REF-1, REF-2 and PT-3 (spec/lib/machine.mm); `picture` draws
the whole machine in text.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from mmcheck.model.layout import KernelLayout, i386_layout
from mmcheck.model.linux import _PAGE_PRESENT, _PAGE_RW, _PAGE_USER, PAGE_SHIFT, PAGE_SIZE
from mmcheck.model.mmu import PageTable
from mmcheck.model.page import (
    MemMap,
    PageMapping,
    PG_reserved,
    PG_slab,
    PG_table,
    PG_vmalloc,
)
from mmcheck.model.slab import KmemCache
from mmcheck.model.vmalloc import KernelPageTable, Vmalloc
from mmcheck.model.vocabulary import Operation, Record, Snapshot, StateVar, Vocabulary
from mmcheck.model.zone import ZONE_NAMES, PgData

__all__ = ["GFP_HIGHUSER_MOVABLE", "GFP_KERNEL", "OWNERS", "VOCABULARY", "Machine",
           "OwnedPages"]

GFP_KERNEL = 0x00
GFP_HIGHUSER_MOVABLE = 0x0A  # __GFP_HIGHMEM | __GFP_MOVABLE
OBJECT_SIZE = 256
USER_PAGE = _PAGE_PRESENT | _PAGE_RW | _PAGE_USER
TASK_SIZE = 0xC0000000
OWNERS = ("buddy", "slab", "pagetable", "user", "vmalloc", "reserved")
_MARK = {"slab": PG_slab, "pagetable": PG_table, "vmalloc": PG_vmalloc}


class OwnedPages:
    """The page allocator as one owner calls it (the Pages protocol of model/mmu.py).

    `owner` "slab" or "pagetable" marks every page of each block it is given;
    None marks nothing (vmalloc marks its pages itself, through the PageOwner hook)."""

    def __init__(self, machine: Machine, owner: str | None, gfp: int) -> None:
        self.machine, self.owner, self.gfp = machine, owner, gfp

    def alloc_pages(self, order: int) -> int | None:
        """alloc_pages(gfp, order), then the owner's mark on every page of the block."""
        pfn = self.machine.node.alloc_pages(order, self.gfp)
        if pfn is not None and self.owner is not None:
            for p in range(pfn, pfn + (1 << order)):
                self.machine.set_page_owner(p, self.owner)
        return pfn

    def free_pages(self, pfn: int, order: int) -> None:
        """The owner's mark cleared, then __free_pages (free_pages_check included)."""
        if self.owner is not None:
            for p in range(pfn, pfn + (1 << order)):
                self.machine.set_page_owner(p, None, self.owner)
        self.machine.free_pages(pfn, order)


class Machine:
    """A node of `zone_sizes` pages with slab, vmalloc, kernel and user page tables on it.

    `reserved` pfn ranges stay with memblock (by default the kernel image at pfn
    0..1 and mem_map after it, one page per 64 struct pages of 64 bytes)."""

    def __init__(self, zone_sizes: Sequence[int] = (16, 0, 48), min_free_kbytes: int = 0,
                 max_order: int = 4, reserved: Sequence[tuple[int, int]] | None = None,
                 layout: KernelLayout | None = None) -> None:
        npages = sum(zone_sizes)
        if reserved is None:
            reserved = [(0, 2), (2, 2 + -(-npages // 64))]
        self.node = PgData(list(zone_sizes), min_free_kbytes, max_order, reserved)
        self.layout = layout or i386_layout(npages << PAGE_SHIFT)
        self.kernel_pt = KernelPageTable(OwnedPages(self, "pagetable", GFP_KERNEL))
        self.vm = Vmalloc(self.layout.vmalloc_start, self.layout.vmalloc_end,
                          OwnedPages(self, None, GFP_KERNEL | 0x02), self.kernel_pt,
                          layout=self.layout, owner=self)
        self.cache = KmemCache("machine-256", OBJECT_SIZE, 8,
                               OwnedPages(self, "slab", GFP_KERNEL))
        self.user_pt = PageTable(2, OwnedPages(self, "pagetable", GFP_KERNEL))
        self.cache_objects: set[int] = set()

    # ---- struct page --------------------------------------------------------------

    def mem_map(self, pfn: int) -> tuple[MemMap, int]:
        """pfn_to_page as (the zone's section of mem_map, index in it); IndexError outside."""
        zone = self.node.zone_of(pfn)
        if zone is None:
            raise IndexError(f"pfn {pfn} is in no zone")
        return zone.mem_map, pfn - zone.base

    def set_page_owner(self, pfn: int, owner: str | None, was: str = "vmalloc") -> None:
        """The PageOwner hook: mark `pfn` as `owner`'s, or clear `was`'s mark (owner None)."""
        mm, i = self.mem_map(pfn)
        if owner is None:
            mm.ClearPageFlag(i, _MARK[was])
        else:
            mm.SetPageFlag(i, _MARK[owner])

    def free_pages(self, pfn: int, order: int) -> None:
        """__free_pages: drop the reference; on the last one, free_pages_prepare (BadPage
        if a page of the block is still in use) and back to the zone's free lists."""
        mm, i = self.mem_map(pfn)
        if mm.put_page_testzero(i):
            mm.free_pages_prepare(i, order)
            self.node.free_pages(pfn, order)

    def owners(self, pfn: int) -> list[str]:
        """Who owns page `pfn`, read off its struct page (OWN-1 wants exactly one)."""
        mm, i = self.mem_map(pfn)
        page = mm.struct_page(i)
        marks = {"slab": PG_slab, "pagetable": PG_table, "vmalloc": PG_vmalloc,
                 "reserved": PG_reserved}
        out = ["buddy"] if self._in_free_block(pfn) else []
        out += [name for name, bit in marks.items() if page.flags >> bit & 1]
        if page.mapcount > 0:
            out.append("user")
        return sorted(out, key=OWNERS.index)

    def _in_free_block(self, pfn: int) -> bool:
        """page_is_buddy up the orders: some head at or below `pfn` has PageBuddy and an
        order whose block covers `pfn`."""
        zone = self.node.zone_of(pfn)
        assert zone is not None
        found = zone.buddy.block_containing(pfn - zone.base)
        return found is not None and found[0]

    # ---- operations -----------------------------------------------------------------

    def slab_alloc(self) -> int | None:
        """kmem_cache_alloc: the address of a free 256-byte object, or None."""
        addr = self.cache.alloc()
        if addr is not None:
            self.cache_objects.add(addr)
        return addr

    def slab_free(self, addr: int) -> None:
        """kmem_cache_free; ValueError for an address that is no live object."""
        self.cache.free(addr)
        self.cache_objects.discard(addr)

    def slab_shrink(self) -> int:
        """kmem_cache_shrink: give every free slab back; the pages given back."""
        return self.cache.shrink()

    def vmalloc(self, size: int) -> int | None:
        """vmalloc(size): see model/vmalloc.py."""
        return self.vm.vmalloc(size)

    def vfree(self, addr: int) -> None:
        """vfree(addr): see model/vmalloc.py."""
        self.vm.vfree(addr)

    def map_user(self, va: int) -> int | None:
        """do_anonymous_page at user address `va`: a new page (GFP_HIGHUSER_MOVABLE),
        page_add_new_anon_rmap, lru_cache_add, set_pte_at; its pfn, or None when no
        page (or no page for a table) is left. ValueError for an unaligned or kernel
        address, or one already mapped."""
        if not isinstance(va, int) or va % PAGE_SIZE or not 0 <= va < TASK_SIZE \
                or self.user_pt.walk(va) is not None:
            raise ValueError(f"map_user({va!r}): not a free, page-aligned user address")
        pfn = self.node.alloc_pages(0, GFP_HIGHUSER_MOVABLE)
        if pfn is None:
            return None
        try:
            self.user_pt.install(va, pfn, USER_PAGE)
        except MemoryError:
            self.free_pages(pfn, 0)
            return None
        mm, i = self.mem_map(pfn)
        mm.page_add_rmap(i, PageMapping(True, "mm1"))
        mm.lru_cache_add(i)
        return pfn

    def unmap_user(self, va: int) -> None:
        """zap_pte_range for one page: clear the PTE, page_remove_rmap, off the LRU,
        put_page. ValueError if nothing is mapped at `va`."""
        if not isinstance(va, int) or va % PAGE_SIZE or not 0 <= va < TASK_SIZE \
                or self.user_pt.walk(va) is None:
            raise ValueError(f"unmap_user({va!r}): nothing is mapped there")
        pfn = self.user_pt.unmap(va)
        assert pfn is not None
        mm, i = self.mem_map(pfn)
        mm.page_remove_rmap(i)
        mm.del_page_from_lru_list(i)
        self.free_pages(pfn, 0)

    # ---- the checker's view ---------------------------------------------------------

    def snapshot(self) -> Snapshot:
        """The machine vocabulary now (later operations do not change it)."""
        pages = self.mpages()
        user = frozenset(Pte(va, pfn) for va, pfn, _ in self.user_pt.walk_range())
        kernel = frozenset(Pte(va, pfn) for va, pfn, _ in self.kernel_pt.walk_range())
        tables = frozenset(map(Frame, {*self.user_pt._tables, *self.kernel_pt._tables}))
        slabs = frozenset(Frame(p) for pfn, order in self.cache.holds().items()
                          for p in range(pfn, pfn + (1 << order)))
        backing = frozenset(Frame(pfn) for a in self.vm.vmlist for pfn in a.pages)
        objects = frozenset(map(Obj, self.cache_objects))
        areas = frozenset(VArea(a.addr, a.nr_pages) for a in self.vm.vmlist)
        return Snapshot({
            "npages": lambda: self.node.node_spanned_pages,
            "pages": lambda: pages,
            "slab_marked": lambda: frozenset(Frame(p.pfn) for p in pages if p.slab),
            "user_ptes": lambda: user,
            "objects": lambda: objects,
            "areas": lambda: areas,
            "kernel_ptes": lambda: kernel,
            "table_pages": lambda: tables,
            "slab_pages": lambda: slabs,
            "vmalloc_pages": lambda: backing,
        })

    def mpages(self) -> list[MPage]:
        """Every struct page as the vocabulary's MPage, zone by zone (a free block's
        pages found once per zone, not by a walk up the orders per page)."""
        out = []
        for z in self.node.populated_zones():
            mm, base = z.mem_map, z.base
            free = {p for pfn, order in z.free_blocks() for p in range(pfn, pfn + (1 << order))}
            for pfn in range(z.zone_start_pfn, z.zone_end_pfn):
                i = pfn - base
                flags, mapping = mm.flags[i], mm.mapping.get(i)
                out.append(MPage(pfn, z.idx, pfn in free, bool(flags >> PG_slab & 1),
                                 bool(flags >> PG_table & 1), bool(flags >> PG_reserved & 1),
                                 bool(flags >> PG_vmalloc & 1),
                                 mapping is not None and mapping.anon, i in mm.lru,
                                 mm.refcount[i], mm.mapcount[i]))
        return out

    def picture(self) -> list[str]:
        """The whole machine in text: kernel layout, zones with their buddy state, and
        one letter per page frame for its owner(s)."""
        lay = self.layout
        lines = [f"kernel layout ({lay.arch}): " + ", ".join(
            f"{r.name} {r.start:#x}..{r.end:#x}" for r in lay.regions())]
        for z in self.node.populated_zones():
            lines.append(f"zone {ZONE_NAMES[z.idx]:<8} pfns {z.zone_start_pfn}.."
                         f"{z.zone_end_pfn - 1}: free {z.free_pages} (min {z.watermark[0]}, "
                         f"low {z.watermark[1]}, high {z.watermark[2]}); buddyinfo "
                         + " ".join(str(z.nr_free(o)) for o in range(z.max_order)))
        letter = {"buddy": ".", "slab": "S", "pagetable": "T", "user": "U", "vmalloc": "V",
                  "reserved": "R"}
        row = []
        for pfn in range(self.node.node_spanned_pages):
            own = self.owners(pfn)
            row.append(letter[own[0]] if len(own) == 1 else ("?" if not own else "!"))
        lines.append("page frames (. free  S slab  T page table  U user  V vmalloc  "
                     "R reserved  ? no owner  ! several):")
        lines += [f"  {i:>5} {''.join(row[i:i + 64])}" for i in range(0, len(row), 64)]
        lines += [f"vmalloc area {a.addr:#x}..{a.addr + a.size:#x} (guard page included): "
                  f"pfns {a.pages}" for a in self.vm.vmlist]
        return lines


class MPage(NamedTuple):
    """The vocabulary's MPage record: one struct page and what owns it."""

    pfn: int
    zone: int
    buddy: bool
    slab: bool
    table: bool
    reserved: bool
    vmalloc: bool
    anon: bool
    lru: bool
    refcount: int
    mapcount: int


class Frame(NamedTuple):
    """The vocabulary's Frame record: a page frame an owner holds."""

    pfn: int


class Obj(NamedTuple):
    """The vocabulary's Obj record: a live slab object."""

    addr: int


class VArea(NamedTuple):
    """The vocabulary's VArea record: a live vmalloc area."""

    addr: int
    npages: int


class Pte(NamedTuple):
    """A present leaf entry: virtual page `va` maps frame `pfn`."""

    va: int
    pfn: int


VOCABULARY = Vocabulary(
    subsystem="machine",
    doc="One machine: buddy per zone, slab, vmalloc, kernel and user page tables on one "
        "mem_map (model/machine.py).",
    records=(
        Record("MPage", (("pfn", "int"), ("zone", "int"), ("buddy", "bool"), ("slab", "bool"),
                         ("table", "bool"), ("reserved", "bool"), ("vmalloc", "bool"),
                         ("anon", "bool"), ("lru", "bool"), ("refcount", "int"),
                         ("mapcount", "int")),
               doc="One struct page: buddy (inside a free block), PG_slab, PG_table, "
                   "PG_reserved, PG_vmalloc, PageAnon, PG_lru, _refcount, page_mapcount."),
        Record("Pte", (("va", "int"), ("pfn", "int")),
               doc="A present leaf entry of a page table."),
        Record("Frame", (("pfn", "int"),), doc="A page frame an owner holds."),
        Record("Obj", (("addr", "int"),), doc="A live slab object's address."),
        Record("VArea", (("addr", "int"), ("npages", "int")),
               doc="A live vmalloc area: its address and the pages backing it."),
    ),
    state=(
        StateVar("npages", "int", doc="Page frames of the node: pfns 0 .. npages-1."),
        StateVar("pages", "list[MPage]", doc="The struct page of every pfn, in pfn order."),
        StateVar("user_ptes", "set[Pte]", doc="The process's present user mappings."),
        StateVar("objects", "set[Obj]", doc="Live slab objects: what slab_alloc returned "
                                            "and slab_free has not taken back."),
        StateVar("areas", "set[VArea]", doc="Live vmalloc areas."),
        StateVar("kernel_ptes", "set[Pte]", doc="init_mm's present mappings (vmalloc)."),
        StateVar("slab_marked", "set[Frame]", doc="The pages whose struct page has PG_slab."),
        StateVar("table_pages", "set[Frame]", doc="Pfns of every page-table page, both tables."),
        StateVar("slab_pages", "set[Frame]", doc="Pfns of every page of every slab."),
        StateVar("vmalloc_pages", "set[Frame]", doc="Pfns backing the vmalloc areas."),
    ),
    operations=(
        Operation("slab_alloc", (), returns="int?", doc="kmem_cache_alloc of a 256-byte object."),
        Operation("slab_free", (("addr", "int"),), returns="none", raises=("ValueError",),
                  doc="kmem_cache_free of a live object."),
        Operation("slab_shrink", (), returns="int", doc="Free slabs back; the pages freed."),
        Operation("vmalloc", (("size", "int"),), returns="int?", raises=("ValueError",),
                  doc="vmalloc(size): an area's address, or none."),
        Operation("vfree", (("addr", "int"),), returns="none", raises=("ValueError",),
                  doc="vfree of an area's address (0 does nothing)."),
        Operation("map_user", (("va", "int"),), returns="int?", raises=("ValueError",),
                  doc="Fault in an anonymous page at a free user address: its pfn, or none."),
        Operation("unmap_user", (("va", "int"),), returns="none", raises=("ValueError",),
                  doc="Unmap and put the page mapped at a user address."),
    ),
)
