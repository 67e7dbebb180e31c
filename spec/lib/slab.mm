spec slab "The slab allocator (SLAB): one kmem_cache and the pages it holds"

# The vocabulary (model/slab.py). What the contract fixes, and so what is
# checked on a submission too: size, align, objsize (size rounded up to
# align), slabs (the blocks the cache holds from `pages`, as the checker's
# audited page allocator recorded them: Slab{pfn, order, start, end, s_mem,
# inuse}), objects (the live objects, Obj{addr, slab, next}: next is the
# lowest live object above addr, -1 if none), info (what slabinfo()
# reported), page_events (the calls to `pages` of the last step),
# bad_page_frees, destroyed.
# [white-box] properties read the reference's own structures (mgmt, cached,
# num, colour, ...), Linux's policy, which the contract does not ask of a
# submission: on a submission they are "not observable", unchecked.
# Tags: [SLAB-...] clauses of docs/contract.md, SLAB-1 .. SLAB-6 of
# docs/invariants.md.

def slot(o) = o.addr .. o.addr + objsize
def bytes(s) = s.start .. s.end
def live(a) = exists o in objects: o.addr == a
def pages_freed = sum(e in page_events: if e.op == 1 and e.ok then 2 ** e.order else 0)
def pages_taken = count(e in page_events: e.op == 0 and e.pfn != -1)
def refused = exists e in page_events: e.op == 0 and e.pfn == -1
def reference = num > 0  # the white-box names are filled (num is 0 on a submission)

# ---- objects (SLAB-1, SLAB-2) ----------------------------------------------------

invariant objects_inside_slabs "[SLAB-ALLOC][SLAB-1] every live object lies inside a slab the cache holds, nothing past its end":
    forall o in objects: exists s in slabs: s.pfn == o.slab and contains(bytes(s), slot(o))

invariant objects_at_slots "[SLAB-INFO][SLAB-1] a live object sits at s_mem + k * objsize of its slab (colouring included)":
    forall o in objects, s in slabs:
        s.pfn == o.slab -> o.addr >= s.s_mem and (o.addr - s.s_mem) % objsize == 0

invariant objects_aligned "[SLAB-ALLOC][SLAB-1] every live object is aligned to align":
    forall o in objects: aligned(o.addr, align)

invariant objects_disjoint "[SLAB-ALLOC][SLAB-2] no two live objects share a byte: each ends before the next live object above it starts":
    forall o in objects: o.next == -1 or o.addr + objsize <= o.next

# ---- slabs and /proc/slabinfo (SLAB-3) ----------------------------------------------

invariant inuse_within_objperslab "[SLAB-INFO][SLAB-3] no slab holds more live objects than objperslab":
    not destroyed -> forall s in slabs: s.inuse <= info.objperslab

invariant slabinfo_objsize "[SLAB-INFO][SLAB-3] slabinfo: objsize is size rounded up to align":
    not destroyed -> info.objsize == objsize

invariant slabinfo_slabs "[SLAB-INFO][SLAB-3] slabinfo: num_slabs counts the slabs held, active_slabs those with a live object":
    not destroyed ->
        info.num_slabs == count(s in slabs)
        and info.active_slabs == count(s in slabs: s.inuse > 0)

invariant slabinfo_objects "[SLAB-INFO][SLAB-3] slabinfo: num_objs = num_slabs * objperslab, active_objs the live objects":
    not destroyed ->
        info.num_objs == info.num_slabs * info.objperslab
        and info.active_objs == count(o in objects)

invariant slabinfo_geometry "[SLAB-INFO][SLAB-3] slabinfo: every slab is one block of pagesperslab pages, and objperslab objects fit in it":
    not destroyed ->
        (forall s in slabs: 2 ** s.order == info.pagesperslab)
        and info.objperslab >= 1
        and info.objperslab * objsize <= info.pagesperslab * 4096

# ---- pages ---------------------------------------------------------------------------

invariant pages_given_back_once "[SLAB-INIT] every free_pages call gives back a block the cache holds, once":
    bad_page_frees == 0

invariant destroyed_holds_nothing "[SLAB-DESTROY] a destroyed cache holds no page":
    destroyed -> count(s in slabs) == 0

# ---- operations ------------------------------------------------------------------------

action alloc_none_only_when_pages_refused "[SLAB-ALLOC] alloc returns none only when `pages` refused a page during the call"
after alloc() returns r:
    (r == none and not raised) -> refused

action alloc_returns_a_free_object "[SLAB-ALLOC] alloc returns an object that was not live"
after alloc() returns r:
    r != none -> not old(live(r))

action free_refuses_non_objects "[SLAB-FREE][SLAB-2] free accepts exactly the live objects: a double free, an interior pointer, an address never returned raise ValueError"
after free(addr):
    old(live(addr)) <-> not raised

action free_takes_no_page "[white-box] free takes no page from `pages` (Linux never does)"
after free(addr):
    pages_taken == 0

action shrink_gives_back_free_slabs "[SLAB-SHRINK] shrink gives back exactly the slabs with no live object, and says how many pages"
after shrink() returns r:
    not raised ->
        (forall s in old(slabs): (s.inuse == 0) <-> not (exists t in slabs: t.pfn == s.pfn))
        and r == pages_freed

action destroy_refuses_while_live "[SLAB-DESTROY][GEN-RAISE-NO-CHANGE] destroy raises ValueError exactly while objects are live, and then changes nothing"
after destroy():
    not old(destroyed) ->
        (old(count(o in objects)) > 0 <-> raised(ValueError))
        and (raised -> count(e in page_events) == 0)

action destroy_gives_back_every_page "[SLAB-DESTROY] destroy gives every page back"
after destroy():
    not raised -> count(s in slabs) == 0 and pages_freed == old(sum(s in slabs: 2 ** s.order))

action dead_alloc "[SLAB-DESTROY] after destroy, alloc raises ValueError"
after alloc() returns r:
    old(destroyed) -> raised(ValueError)

action dead_free "[SLAB-DESTROY] after destroy, free raises ValueError"
after free(addr):
    old(destroyed) -> raised(ValueError)

action dead_shrink "[SLAB-DESTROY] after destroy, shrink raises ValueError"
after shrink() returns r:
    old(destroyed) -> raised(ValueError)

action dead_destroy "[SLAB-DESTROY] after destroy, destroy raises ValueError"
after destroy():
    old(destroyed) -> raised(ValueError)

# ---- white box: the reference's struct slab, lists and array caches ------------------

invariant wb_slabs_are_held "[white-box] the reference's slabs are exactly the blocks it holds from `pages`":
    reference ->
        (forall m in mgmt: exists s in slabs: s.pfn == m.pfn and m.s_mem == s.s_mem)
        and count(m in mgmt) == count(s in slabs)

invariant wb_inuse_le_num "[white-box][SLAB-3] 0 <= inuse <= num on every slab":
    forall m in mgmt: 0 <= m.inuse and m.inuse <= m.num

invariant wb_list_membership "[white-box][SLAB-4] a slab with no object in use is on slabs_free, with all in use on slabs_full, otherwise on slabs_partial":
    forall m in mgmt:
        (m.inuse == 0 -> m.on_list == 2)
        and (m.inuse == m.num -> m.on_list == 1)
        and ((0 < m.inuse and m.inuse < m.num) -> m.on_list == 0)

invariant wb_nr_partial "[white-box][SLAB-3] nr_partial is the length of slabs_partial":
    reference -> nr_partial == count(m in mgmt: m.on_list == 0)

invariant wb_free_chain "[white-box][SLAB-2] each slab's kmem_bufctl_t chain holds exactly its num - inuse free objects":
    forall m in mgmt: m.chain == m.num - m.inuse

invariant wb_free_objects "[white-box] kmem_list3 free_objects counts the free objects on the slabs":
    reference -> free_objects == sum(m in mgmt: m.num - m.inuse)

invariant wb_colouring "[white-box][SLAB-1] s_mem is the slab's start plus a colour (a multiple of colour_off below colour * colour_off) plus the management on the slab, and all num objects end inside the slab":
    forall m in mgmt, s in slabs:
        s.pfn == m.pfn ->
            m.s_mem == s.start + m.colouroff
            and m.colouroff >= slab_size
            and (m.colouroff - slab_size) % colour_off == 0
            and (m.colouroff - slab_size) // colour_off < max(colour, 1)
            and m.s_mem + num * objsize <= s.end

invariant wb_array_cache "[white-box][SLAB-6] an object in a per-CPU array cache is allocated to its slab (counted in inuse) and free to the user":
    (forall c in cached: not c.live)
    and (forall m in mgmt: m.inuse == m.live_objs + m.cached_objs)

invariant wb_array_limit "[white-box][SLAB-6] no array cache holds more than its limit":
    forall c in cached: count(d in cached: d.cpu == c.cpu) <= array_limit

# ---- debug caches (SLUB's red zones and poison, SLAB-5) ---------------------------------

invariant poison_intact "[white-box][SLAB-5] (debug caches) a free object still holds its poison, 0x6b ... 0x6b 0xa5 (else it was used after free)":
    debug -> count(d in debug_broken: d.poison_bad > 0) == 0

invariant redzone_intact "[white-box][SLAB-5] (debug caches) every red zone holds 0xcc while its object is live, 0xbb while free (else an overrun)":
    debug -> count(d in debug_broken: d.redzone_bad > 0) == 0
