spec kmalloc "kmalloc, kfree and ksize over the general slab caches"

# The vocabulary (model/kmalloc.py): objects (the live allocations,
# KObj{addr, size, usable, dma, block, next}: usable is what ksize() says, next
# the lowest live allocation above addr, -1 if none), held (the blocks held
# from `pages`, as the checker's audit recorded them), page_events
# (the calls to `pages` of the last step), bad_page_frees, and the constants
# max_cache_size (128 KiB), max_size (KMALLOC_MAX_SIZE) and zero_size_ptr.
# Tags: [KMALLOC-...] clauses of docs/contract.md, SLAB-1/2 of docs/invariants.md.

def usable_span(o) = o.addr .. o.addr + o.usable
def live(a) = exists o in objects: o.addr == a
def refused = exists e in page_events: e.op == 0 and e.pfn == -1
def no_op(a) = a == 0 or a == zero_size_ptr

invariant allocations_inside_held "[KMALLOC-ALLOC][SLAB-1] every live allocation, usable bytes included, lies in one block held from `pages`":
    forall o in objects: exists h in held: h.pfn == o.block and contains(h.start .. h.end, usable_span(o))

invariant allocations_disjoint "[KMALLOC-ALLOC][SLAB-2] no two live allocations share a usable byte: each ends before the next one above it starts":
    forall o in objects: o.next == -1 or o.addr + o.usable <= o.next

invariant allocations_aligned "[KMALLOC-ALLOC] every allocation is aligned to 8 bytes (ARCH_KMALLOC_MINALIGN)":
    forall o in objects: aligned(o.addr, 8)

invariant usable_fits_request "[KMALLOC-ALLOC][KMALLOC-KSIZE] ksize is at least the size asked for and at most twice it (a size class, or the pages of a large request)":
    forall o in objects: o.size <= o.usable and o.usable <= max(32, 2 * o.size)

def small(o) = o.usable <= max_cache_size

invariant dma_caches_apart "[KMALLOC-DMA] GFP_DMA allocations come from DMA caches: a DMA and a normal object never share a slab":
    forall h in held:
        not ((exists o in objects: o.block == h.pfn and small(o) and o.dma)
             and (exists o in objects: o.block == h.pfn and small(o) and not o.dma))

invariant pages_given_back_once "[KMALLOC-INIT] every free_pages call gives back a block held, once":
    bad_page_frees == 0

action kmalloc_none_only_when_refused "[KMALLOC-ALLOC-NONE] kmalloc returns none only when `pages` refused, or for more than KMALLOC_MAX_SIZE"
after kmalloc(size, flags) returns r:
    (r == none and not raised) -> (refused or size > max_size)

action kmalloc_zero "[KMALLOC-ZERO] kmalloc(0) returns ZERO_SIZE_PTR"
after kmalloc(size, flags) returns r:
    size == 0 -> r == zero_size_ptr

action kmalloc_checks_size "[KMALLOC-ZERO] kmalloc raises ValueError exactly for a negative size"
after kmalloc(size, flags) returns r:
    raised(ValueError) <-> size < 0

action kmalloc_returns_free_memory "[KMALLOC-ALLOC] kmalloc returns memory that was not live"
after kmalloc(size, flags) returns r:
    (r != none and size > 0) -> not old(live(r))

action kfree_exact "[KMALLOC-FREE] kfree accepts exactly a live allocation, NULL and ZERO_SIZE_PTR"
after kfree(addr):
    (old(live(addr)) or no_op(addr)) <-> not raised

action kfree_large_gives_pages_back "[KMALLOC-FREE] kfree of a large allocation gives its pages back at once"
after kfree(addr):
    (not raised and old(exists o in objects: o.addr == addr and o.size > max_cache_size))
        -> exists e in page_events: e.op == 1 and e.ok and e.pfn * 4096 == addr

action kfree_takes_no_page "[white-box] kfree takes no page from `pages` (Linux never does)"
after kfree(addr):
    count(e in page_events: e.op == 0) == 0

action ksize_of_live "[KMALLOC-KSIZE] ksize answers for a live allocation (0 for ZERO_SIZE_PTR) and raises ValueError for anything else"
after ksize(addr) returns r:
    (old(live(addr)) -> not raised and r >= old(sum(o in objects: if o.addr == addr then o.size else 0)))
    and (addr == zero_size_ptr -> r == 0)
    and ((not old(live(addr)) and addr != zero_size_ptr) -> raised(ValueError))
