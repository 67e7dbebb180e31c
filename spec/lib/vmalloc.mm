spec vmalloc "vmalloc areas, their guard pages, the kernel page table and its TLB"

# The vocabulary (model/vmalloc.py): vmalloc_start, vmalloc_end (the range the
# Vmalloc was given), page_offset and high_memory (the direct map is
# [page_offset, high_memory), model/layout.py), areas (list[Area{addr, size}],
# the vm_struct list: size counts the guard page), held (list[Held{pfn, alias}],
# the pages taken from `pages`, alias their direct-map address __va(pfn * 4096)),
# ptes (list[Kpte{va, pfn, flags}], the kernel page table's leaf entries in the
# vmalloc range), tlb (list[TlbEntry{va, pfn, flags}]) and pages_free.
# For a submission: areas from its areas(); held, ptes, tlb and pages_free are
# the checker's own (it hands the submission `pages` and the kernel page table,
# and writes to every page vmalloc returns, which fills the TLB), so every
# property here is observable on a submission.
# Tags such as [VMALLOC-FREE] name clauses of docs/contract.md.

def PAGE = 4096
def P = 1
def RW = 2
def U = 4

def npages(size) = (size + PAGE - 1) / PAGE
def usable(a) = a.addr .. a.addr + a.size - PAGE
def guard(a) = a.addr + a.size - PAGE
def mapped(va) = exists p in ptes: p.va == va
def in_area(va) = exists a in areas: va in usable(a)
def live(addr) = exists a in areas: a.addr == addr

# A gap of `n` pages plus a guard page starting at x, inside the range and
# clear of every area with its guard page.
def fits(x, n) =
    vmalloc_start <= x and x + (n + 1) * PAGE <= vmalloc_end
    and (forall a in areas: x + (n + 1) * PAGE <= a.addr or a.addr + a.size <= x)
# Some gap holds n pages and a guard: at vmalloc_start or right after an area.
def room(n) = fits(vmalloc_start, n) or (exists a in areas: fits(a.addr + a.size, n))

def same_areas = (forall a in areas: a in old(areas)) and (forall a in old(areas): a in areas)
def same_ptes = (forall p in ptes: p in old(ptes)) and (forall p in old(ptes): p in ptes)
def same_held = (forall h in held: h in old(held)) and (forall h in old(held): h in held)


# ---------------------------------------------------------------- the layout

invariant vmalloc_above_the_direct_map "[VMALLOC-INIT][VMALLOC-LAYOUT] the vmalloc range lies above the direct map, past the 8 MiB gap (VMALLOC_OFFSET), page-aligned":
    page_offset < high_memory and high_memory + 8 * 1024 * 1024 <= vmalloc_start
    and vmalloc_start < vmalloc_end and aligned(vmalloc_start, PAGE) and aligned(vmalloc_end, PAGE)

invariant pa_of_va_on_the_direct_map "[VMALLOC-LAYOUT] every low-memory page held has a direct-map address, and __pa(__va(p)) == p: the alias minus PAGE_OFFSET is the frame's physical address":
    forall h in held:
        h.alias == -1 or
        (h.alias in page_offset .. high_memory and h.alias - page_offset == h.pfn * PAGE)

invariant no_alias_in_vmalloc "[VMALLOC-LAYOUT] a direct-map address is never a vmalloc address: __pa applies to the one, the page-table walk to the other":
    forall h in held: h.alias == -1 or not (h.alias in vmalloc_start .. vmalloc_end)


# ---------------------------------------------------------------- the areas

invariant areas_inside_the_range "[VMALLOC-ALLOC][VMALLOC-AREAS] every area is page-aligned, inside [VMALLOC_START, VMALLOC_END) (never in the direct map), and at least one page plus its guard page":
    forall a in areas:
        aligned(a.addr, PAGE) and aligned(a.size, PAGE) and a.size >= 2 * PAGE
        and vmalloc_start <= a.addr and a.addr + a.size <= vmalloc_end
        and not (a.addr in page_offset .. high_memory)

invariant areas_never_overlap "[VMALLOC-ALLOC] areas, each with its guard page, never overlap":
    forall a, b in areas: a.addr + a.size <= b.addr or b.addr + b.size <= a.addr

invariant areas_listed_once "[VMALLOC-AREAS] areas() lists every area once":
    forall a, b in areas: a.addr != b.addr

invariant guard_pages_unmapped "[VMALLOC-ALLOC] the guard page after every area is not mapped":
    forall a in areas: not mapped(guard(a))


# ---------------------------------------------------------------- pages and mappings

invariant every_area_page_mapped "[VMALLOC-ALLOC] every page of every area (but its guard) is mapped in the kernel page table":
    forall a in areas, va in usable(a) step PAGE: mapped(va)

invariant mappings_only_in_areas "[VMALLOC-ALLOC][VMALLOC-FREE] the kernel page table maps no vmalloc address outside a live area: nothing stale is left by vfree":
    forall p in ptes: in_area(p.va)

invariant kernel_mappings "[VMALLOC-ALLOC] a vmalloc mapping is present, writable and supervisor-only":
    forall p in ptes: p.flags & (P | RW) == P | RW and p.flags & U == 0

invariant pages_mapped_exactly_once "[VMALLOC-ALLOC] every page held from `pages` is mapped exactly once, so owned by exactly one area":
    forall h in held: count(p in ptes: p.pfn == h.pfn) == 1

invariant mappings_use_held_pages "[VMALLOC-ALLOC][VMALLOC-FREE] every mapping uses a page the vmalloc holds from `pages` (not a freed one, not one it never took)":
    forall p in ptes: exists h in held: h.pfn == p.pfn

invariant tlb_not_stale "[VMALLOC-FREE][TLB-1] every cached kernel translation is one the page table still makes: vfree flushed the TLB":
    forall t in tlb: exists p in ptes: p.va == t.va and p.pfn == t.pfn


# ---------------------------------------------------------------- vmalloc

action vmalloc_makes_an_area "[VMALLOC-ALLOC][VMALLOC-AREAS] vmalloc returns the start of a new area of its size in pages plus the guard page"
after vmalloc(size) returns r:
    r != none ->
        not old(live(r)) and size > 0
        and (exists a in areas: a.addr == r and a.size == (npages(size) + 1) * PAGE)
        and count(a in areas) == count(a in old(areas)) + 1

action vmalloc_none_changes_nothing "[VMALLOC-ALLOC-NONE][GEN-RAISE-NO-CHANGE] a vmalloc that returns none (or raises) leaves the areas, the mappings and the pages held as they were"
after vmalloc(size) returns r:
    (r == none or raised) -> same_areas and same_ptes and same_held

action vmalloc_none_only_when_it_must "[VMALLOC-ALLOC-NONE] vmalloc returns none only for size 0, when no gap holds the area and its guard page, or when the page allocator is short of the pages it needs (with two page-table pages)"
after vmalloc(size) returns r:
    (r == none and size > 0) ->
        (not old(room(npages(size)))
         or (old(pages_free) >= 0 and old(pages_free) < npages(size) + 2))

action vmalloc_size_checks "[VMALLOC-ALLOC-NONE] vmalloc(0) returns none; a negative size raises ValueError"
after vmalloc(size) returns r:
    (size == 0 -> r == none and not raised) and (size < 0 <-> raised(ValueError))


# ---------------------------------------------------------------- vfree

action vfree_removes_the_area "[VMALLOC-FREE] vfree of a live area removes exactly that area, its mappings and its pages"
after vfree(addr):
    old(live(addr)) ->
        not raised and not live(addr)
        and count(a in areas) + 1 == count(a in old(areas))
        and (forall a in old(areas): a.addr != addr -> a in areas)
        and (forall p in old(ptes): not (exists a in old(areas): a.addr == addr and p.va in usable(a)) -> p in ptes)
        and count(h in held) < count(h in old(held))

action vfree_checks_its_address "[VMALLOC-FREE][GEN-RAISE-NO-CHANGE] vfree(0) does nothing; any address that starts no area raises ValueError and changes nothing"
after vfree(addr):
    not old(live(addr)) ->
        (raised(ValueError) <-> addr != 0) and same_areas and same_ptes and same_held
