spec machine "every allocator on one mem_map: one owner per page frame, counts that agree"

# The vocabulary (model/machine.py): pages (MPage{pfn, zone, buddy, slab, table,
# reserved, vmalloc, anon, lru, refcount, mapcount}: buddy = inside a free
# block), user_ptes and kernel_ptes (Pte{va, pfn}), objects (live slab
# objects), areas (VArea{addr, npages}), and the owners' own records
# table_pages, slab_pages, vmalloc_pages (the reference's only).
# Tags: [MACHINE-...] clauses of docs/contract.md; OWN-1, REF-1, REF-2, PT-3,
# BUD-5 of docs/invariants.md.

def one(b) = if b then 1 else 0
def nr_owners(p) = one(p.buddy) + one(p.slab) + one(p.table) + one(p.mapcount > 0)
                   + one(p.vmalloc) + one(p.reserved)
def page_of(a) = a // 4096
def held(p, frames) = Frame{pfn: p.pfn} in frames

invariant one_owner "[MACHINE-OWN][MACHINE-PAGES][OWN-1] every page frame has exactly one owner: free, slab, page table, user, vmalloc or reserved":
    forall p in pages: nr_owners(p) == 1

invariant free_means_unreferenced "[MACHINE-OWN][REF-1][BUD-5] a page is free exactly when its _refcount is 0, and a free page is mapped nowhere":
    forall p in pages: (p.buddy <-> p.refcount == 0) and (p.buddy -> p.mapcount == 0)

invariant refcount_covers_mapcount "[MACHINE-OWN][REF-1] _refcount >= _mapcount":
    forall p in pages: p.refcount >= p.mapcount

invariant mapcount_counts_ptes "[MACHINE-USER][REF-2] _mapcount is the number of user PTEs that map the page":
    forall p in pages: p.mapcount == count(e in user_ptes: e.pfn == p.pfn)

invariant user_pages_are_user_memory "[MACHINE-USER][PT-3] a page mapped to user space is no slab, page-table, vmalloc, reserved or free page":
    forall e in user_ptes, p in pages:
        p.pfn == e.pfn -> not (p.slab or p.table or p.vmalloc or p.reserved or p.buddy)

invariant objects_on_slab_pages "[MACHINE-SLAB] every live slab object lies on a PG_slab page":
    forall o in objects: Frame{pfn: page_of(o.addr)} in slab_marked

invariant vmalloc_backing_counted "[MACHINE-VMALLOC] the PG_vmalloc pages are exactly as many as the live areas' pages":
    count(p in pages: p.vmalloc) == sum(a in areas: a.npages)

invariant marks_are_the_owners_records "[MACHINE-OWN][OWN-1] PG_slab, PG_table and PG_vmalloc mark exactly the pages slab, the page tables and vmalloc hold":
    forall p in pages: (p.slab <-> held(p, slab_pages)) and (p.table <-> held(p, table_pages))
                       and (p.vmalloc <-> held(p, vmalloc_pages))

invariant vmalloc_pages_mapped_once "[MACHINE-VMALLOC] every vmalloc page is mapped exactly once in the kernel page table":
    forall p in pages: p.vmalloc -> count(k in kernel_ptes: k.pfn == p.pfn) == 1

action map_user_takes_a_free_page "[MACHINE-USER] map_user maps a page that was free"
after map_user(va) returns r:
    r != none -> old(exists p in pages: p.pfn == r and p.buddy)

action map_user_checks "[MACHINE-USER] map_user raises ValueError exactly for an unaligned, kernel or mapped address"
after map_user(va) returns r:
    raised(ValueError) <-> (va % 4096 != 0 or va < 0 or va >= 3221225472
                            or old(exists e in user_ptes: e.va == va))

action unmap_user_exact "[MACHINE-USER] unmap_user accepts exactly a mapped user address"
after unmap_user(va):
    not raised <-> old(exists e in user_ptes: e.va == va)

action slab_free_exact "[MACHINE-SLAB] slab_free accepts exactly a live object"
after slab_free(addr):
    not raised <-> old(exists o in objects: o.addr == addr)

action vfree_exact "[MACHINE-VMALLOC] vfree accepts exactly 0 and a live area's address"
after vfree(addr):
    not raised <-> (addr == 0 or old(exists a in areas: a.addr == addr))

action slab_alloc_none_only_when_full "[MACHINE-SLAB] slab_alloc returns none only when no page is free"
after slab_alloc() returns r:
    r == none -> old(not (exists p in pages: p.buddy))
