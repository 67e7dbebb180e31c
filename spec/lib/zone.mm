spec zone "a zoned page allocator: zonelist fallback, watermarks, lowmem_reserve, no block across zones"

# The vocabulary (model/zone.py): zones (Zone{idx, start, end, managed, free,
# min, low, high}, the populated ones), free (ZBlock{pfn, order, zone}: the
# free blocks, maximally merged within their zone), allocated (what alloc
# returned and free has not taken back), lowmem_reserve (Reserve{zone,
# classzone, pages}), npages, max_order.
# Tags: [ZONE-...] clauses of docs/contract.md; ZONE-1..4 and BUD-3 of docs/invariants.md.

def size(b) = 1 << b.order
def in_zone(b, z) = z.start <= b.pfn and b.pfn + size(b) <= z.end

# gfp_zone: the highest zone a gfp mask allows (GFP_ZONE_TABLE); -1 for GFP_ZONE_BAD.
def classzone(gfp) =
    if gfp == 0 or gfp == 8 then 2
    else if gfp == 1 or gfp == 9 then 0
    else if gfp == 4 or gfp == 12 then 1
    else if gfp == 2 then 3
    else if gfp == 10 then 4
    else -1

def reserve(z, c) = sum(r in lowmem_reserve: if r.zone == z.idx and r.classzone == c then r.pages else 0)
def free_upto(z, o) = sum(b in free: if b.zone == z.idx and b.order <= o then size(b) else 0)

# __zone_watermark_ok: after taking 2**order pages more than mark + lowmem_reserve
# stay free, and at each order o below it more than mark >> (o + 1) stay free in
# blocks of order above o.
def watermark_ok(z, order, mark, c) =
    z.free - (1 << order) + 1 > mark + reserve(z, c)
    and (forall o in 0 .. order: z.free - (1 << order) + 1 - free_upto(z, o) > mark >> (o + 1))

def allowed(z, c) = z.idx <= c
def any_low(order, c) = exists z in zones: allowed(z, c) and watermark_ok(z, order, z.low, c)
# The zone get_page_from_freelist may take from: above its LOW mark; or, when no
# allowed zone is (the slow path), above its MIN mark.
def can_serve(z, order, c) =
    allowed(z, c) and (if any_low(order, c) then watermark_ok(z, order, z.low, c)
                       else watermark_ok(z, order, z.min, c))
def zone_at(p, z) = z.start <= p and p < z.end

invariant blocks_in_one_zone "[ZONE-ALLOC-ZONE][ZONE-1] every allocated block lies inside one zone (no block merged across a zone boundary)":
    forall b in allocated: exists z in zones: in_zone(b, z)

invariant blocks_aligned "[ZONE-INIT][ZONE-ALLOC-BLOCK][BUD-1] every allocated block starts at a multiple of its size":
    forall b in allocated: aligned(b.pfn, size(b))

invariant free_blocks_in_one_zone "[ZONE-WMARK-OK][ZONE-1][BUD-3] free blocks merge only within their zone":
    forall b in free: exists z in zones: z.idx == b.zone and in_zone(b, z)

invariant zone_free_counted "[ZONE-WMARK-OK][ZONE-3][BUD-4] each zone's NR_FREE_PAGES is the pages of its free blocks":
    forall z in zones: z.free == sum(b in free: if b.zone == z.idx then size(b) else 0)

invariant watermarks_ordered "[ZONE-WMARK][ZONE-2] min <= low <= high in every zone":
    forall z in zones: z.min <= z.low and z.low <= z.high

action alloc_checks_args "[ZONE-ALLOC-ARGS] alloc raises ValueError exactly for an order outside 0..max_order-1 or a gfp mask that is not a zone modifier combination"
after alloc(order, gfp) returns r:
    raised(ValueError) <-> (order < 0 or order >= max_order or classzone(gfp) == -1)

action alloc_allowed_zone "[ZONE-ALLOC-ZONE][ZONE-GFP] alloc takes from a zone the gfp mask allows (gfp_zone and below)"
after alloc(order, gfp) returns r:
    r != none -> (exists z in zones: allowed(z, classzone(gfp)) and zone_at(r, z))

action alloc_keeps_low_watermark "[ZONE-WMARK-LOW][ZONE-2] while an allowed zone is above its low watermark for this request, alloc takes from such a zone"
after alloc(order, gfp) returns r:
    (r != none and old(any_low(order, classzone(gfp))))
    -> old(exists z in zones: zone_at(r, z) and watermark_ok(z, order, z.low, classzone(gfp)))

action alloc_keeps_min_watermark "[ZONE-WMARK-MIN][ZONE-2] alloc never takes a zone to its min watermark"
after alloc(order, gfp) returns r:
    r != none -> old(exists z in zones: zone_at(r, z) and watermark_ok(z, order, z.min, classzone(gfp)))

action alloc_fallback_order "[ZONE-FALLBACK][ZONE-GFP][ZONE-WMARK-OK][ZONE-4] alloc takes from the first zone of the zonelist (highest allowed first) that can serve the request"
after alloc(order, gfp) returns r:
    r != none -> old(not (exists z in zones: z.start > r and can_serve(z, order, classzone(gfp))))

action alloc_none_only_when_no_zone_can "[ZONE-ALLOC-NONE] alloc returns none only when no allowed zone passes its min watermark"
after alloc(order, gfp) returns r:
    (r == none and not raised) -> not old(exists z in zones: can_serve(z, order, classzone(gfp)))

action alloc_returns_free_pages "[ZONE-ALLOC-BLOCK] alloc returns a block whose pages were all free"
after alloc(order, gfp) returns r:
    r != none -> old(exists b in free: b.pfn <= r and r + (1 << order) <= b.pfn + size(b))

action free_exact "[ZONE-FREE][ZONE-FREE-INVALID] free accepts exactly a block alloc returned, with its order, still allocated"
after free(pfn, order):
    not raised <-> old(exists b in allocated: b.pfn == pfn and b.order == order)
