spec buddy "The Linux buddy page allocator: what free_area must always look like"

# The vocabulary (model/buddy.py): npages, max_order, free and allocated
# (set[Block]), free_area (list[Block], every entry of every free list),
# free_pages (the NR_FREE_PAGES counter), pages (list[Page], one struct page
# per pfn), buddy_pages and used_pages (the struct pages with PageBuddy set,
# with a nonzero _refcount). Block{pfn, order}; Page{pfn, buddy, order, refcount}.
# For a submission, `allocated` is what its alloc() returned and free() took
# back; `free` and `free_area` come from its free_area() when it has one
# (docs/contract.md [BUDDY-FREE-AREA]), and the page-level names are derived
# from those lists. Without free_area() they are not observable, and nor is
# any property that reads them. [white-box] properties state Linux's own
# policy (maximal coalescing, struct page, counters), which the contract does
# not ask of a submission: they check the reference model only.
# Tags such as [BUDDY-ALLOC-NONE] name clauses of docs/contract.md; [BUD-2] and
# the like name invariants of docs/invariants.md; docs/traceability.md maps them.

def size(b) = 2 ** b.order
def span(b) = b.pfn .. b.pfn + size(b)
def blocks = free + allocated
def buddy_pfn(b) = b.pfn ^ size(b)

invariant valid_order "[BUDDY-FREE-AREA][BUD-1] every block has an order in 0 .. max_order-1":
    forall b in blocks: 0 <= b.order and b.order < max_order

invariant natural_alignment "[BUDDY-FREE-AREA][BUD-1] a block of order k starts at a multiple of 2^k":
    forall b in blocks: aligned(b.pfn, size(b))

invariant inside_memory "[BUDDY-FREE-AREA][BUD-2] every block lies inside [0, npages)":
    forall b in blocks: contains(0 .. npages, span(b))

invariant no_overlap "[BUDDY-FREE-AREA][BUDDY-ALLOC-BLOCK][BUD-2] no two blocks, free or allocated, share a page":
    forall a, b in blocks: disjoint(span(a), span(b))

invariant full_cover "[BUDDY-FREE-AREA][BUDDY-INIT][BUD-2] every page of [0, npages) lies in some block (with no_overlap: exactly one)":
    forall q in 0 .. npages: exists b in blocks: q in span(b)

invariant coalesced "[white-box][BUD-3] no two free buddies of the same order below the top order":
    forall b in free:
        b.order < max_order - 1 ->
            not (Block{pfn: buddy_pfn(b), order: b.order} in free)

invariant free_lists_match_pages "[white-box][BUD-4] each free-list entry is a PageBuddy head of that order, listed once":
    (forall e in free_area: e in free)
    and count(e in free_area) == count(b in free)

invariant buddy_flag_on_free_heads "[white-box][BUD-5] PageBuddy is set exactly on the head page of each free block, with private = its order":
    (forall p in buddy_pages: Block{pfn: p.pfn, order: p.order} in free)
    and count(p in buddy_pages) == count(b in free)

invariant refcount_on_allocated_heads "[white-box][BUD-5] a page has references exactly when it heads an allocated block, and a free page has none":
    (forall p in used_pages: p.refcount == 1 and not p.buddy)
    and (forall b in allocated: exists p in used_pages: p.pfn == b.pfn)
    and count(p in used_pages) == count(b in allocated)

invariant free_pages_counter "[white-box][BUD-4] NR_FREE_PAGES equals the pages in free blocks":
    free_pages == sum(b in free: size(b))

action alloc_fails_only_when_full "[BUDDY-ALLOC-NONE][BUDDY-INIT] alloc returns none only when no aligned run of 2^order free pages exists"
after alloc(order) returns r:
    # Every aligned window of 2^order pages runs past the end or meets an
    # allocated block (pages not in an allocated block are free: exact_cover).
    (r == none and not raised) ->
        forall p in 0 .. npages step 2 ** order:
            p + 2 ** order > npages
            or (exists a in old(allocated): not disjoint(span(a), p .. p + 2 ** order))

action alloc_takes_free_block "[BUDDY-ALLOC-BLOCK] alloc hands out a naturally aligned block inside memory whose pages were all free, and it is allocated from then on"
after alloc(order) returns r:
    r != none ->
        aligned(r, 2 ** order) and 0 <= r and r + 2 ** order <= npages
        and (forall a in old(allocated): disjoint(span(a), r .. r + 2 ** order))
        and Block{pfn: r, order: order} in allocated

action alloc_accounting "[white-box][BUD-4] a successful alloc takes exactly 2^order pages off NR_FREE_PAGES"
after alloc(order) returns r:
    r != none -> free_pages == old(free_pages) - 2 ** order

action alloc_checks_order "[BUDDY-ALLOC-ORDER] alloc refuses an order outside 0 .. max_order-1 with ValueError"
after alloc(order) returns r:
    raised(ValueError) <-> (order < 0 or order >= max_order)

action free_returns_what_alloc_took "[BUDDY-FREE][BUDDY-FREE-INVALID] free gives back exactly the block alloc took, and refuses anything else"
after free(pfn, order):
    (old(Block{pfn: pfn, order: order} in allocated) -> not raised
        and not (Block{pfn: pfn, order: order} in allocated))
    and (not old(Block{pfn: pfn, order: order} in allocated) -> raised(ValueError))

action free_accounting "[white-box][BUD-4] a successful free gives exactly 2^order pages back to NR_FREE_PAGES"
after free(pfn, order):
    not raised -> free_pages == old(free_pages) + 2 ** order
