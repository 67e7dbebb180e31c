spec buddy "The Linux buddy page allocator: what free_area must always look like"

# The vocabulary (model/buddy.py): npages, max_order, free and allocated
# (set[Block]), free_area (list[Block], every entry of every free list),
# free_pages (the NR_FREE_PAGES counter), pages (list[Page], one struct page
# per pfn). Block{pfn, order}; Page{pfn, buddy, order, refcount}.
# Tags in brackets refer to ../shared/invariants.md.

def size(b) = 2 ** b.order
def span(b) = b.pfn .. b.pfn + size(b)
def blocks = free + allocated
def buddy_pfn(b) = b.pfn ^ size(b)

invariant valid_order "[BUD-1] every block has an order in 0 .. max_order-1":
    forall b in blocks: 0 <= b.order and b.order < max_order

invariant natural_alignment "[BUD-1] a block of order k starts at a multiple of 2^k":
    forall b in blocks: aligned(b.pfn, size(b))

invariant inside_memory "[BUD-2] every block lies inside [0, npages)":
    forall b in blocks: contains(0 .. npages, span(b))

invariant no_overlap "[BUD-2] no two blocks, free or allocated, share a page":
    forall a, b in blocks: disjoint(span(a), span(b))

invariant exact_cover "[BUD-2] free and allocated blocks cover exactly npages pages":
    sum(b in blocks: size(b)) == npages

invariant coalesced "[BUD-3] no two free buddies of the same order below the top order":
    forall b in free:
        b.order < max_order - 1 ->
            not (Block{pfn: buddy_pfn(b), order: b.order} in free)

invariant free_lists_match_pages "[BUD-4] each free-list entry is a PageBuddy head of that order, listed once":
    (forall e in free_area: e in free)
    and count(e in free_area) == count(b in free)

invariant pages_agree "[BUD-5] struct page agrees: PageBuddy exactly on free heads, refcount 1 exactly on allocated heads":
    (forall p in pages: p.buddy <-> Block{pfn: p.pfn, order: p.order} in free)
    and (forall p in pages: (p.refcount == 1) <-> (exists b in allocated: b.pfn == p.pfn))

invariant free_pages_counter "[BUD-4] NR_FREE_PAGES equals the pages in free blocks":
    free_pages == sum(b in free: size(b))

action alloc_fails_only_when_full "alloc returns none only when no aligned run of 2^order free pages exists"
after alloc(order) returns r:
    (r == none and not raised) ->
        not (exists p in 0 .. npages - size(Block{pfn: 0, order: order}) + 1 step 2 ** order:
                 forall q in p .. p + 2 ** order: exists b in old(free): q in span(b))

action alloc_takes_free_block "alloc hands out a naturally aligned block that was free, and only that"
after alloc(order) returns r:
    r != none ->
        aligned(r, 2 ** order)
        and (exists b in old(free): contains(span(b), r .. r + 2 ** order))
        and Block{pfn: r, order: order} in allocated
        and free_pages == old(free_pages) - 2 ** order

action alloc_checks_order "alloc refuses an order outside 0 .. max_order-1 with ValueError"
after alloc(order) returns r:
    raised(ValueError) <-> (order < 0 or order >= max_order)

action free_returns_what_alloc_took "free gives back exactly the block alloc took, and refuses anything else"
after free(pfn, order):
    (old(Block{pfn: pfn, order: order} in allocated) -> not raised
        and not (Block{pfn: pfn, order: order} in allocated)
        and free_pages == old(free_pages) + 2 ** order)
    and (not old(Block{pfn: pfn, order: order} in allocated) -> raised(ValueError))
