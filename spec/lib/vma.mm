spec vma "One process's anonymous mappings: what mm_struct's areas must look like, and what mmap, munmap and mprotect do to them"

# The vocabulary (model/vma.py): vmas (list[Vma{start, end, prot, flags}], as
# vmas() lists them, flags MAP_SHARED or MAP_PRIVATE), listed (the same with
# each entry's position), areas (the reference's whole vm_area_struct: vm_flags,
# pgoff, shmem file, anon_vma), gaps (list[Gap{start, end}], the free ranges of
# [mmap_min_addr, task_size)), map_count, task_size, mmap_min_addr,
# max_map_count, mmap_base and errno (what the last failed call set).
# For a submission every name comes from its own vmas(), its constructor's
# arguments and the errno of the OSError it last raised; `areas` (pgoff, file
# and anon_vma) is not observable on it, nor is a property that reads it.
# Tags such as [AS-MMAP-ERRNO] name clauses of docs/contract.md; [VMA-2] and the
# like name invariants of docs/invariants.md; docs/traceability.md maps them.
# Linux's behaviour (errno order, partial effects, placement) is documented in
# docs/linux-semantics.md.

def PAGE = 4096
def EPERM = 1
def EBADF = 9
def ENOMEM = 12
def EEXIST = 17
def EINVAL = 22
def MAP_SHARED = 1
def MAP_PRIVATE = 2
def MAP_TYPE = 15
def MAP_FIXED = 16
def MAP_ANONYMOUS = 32
def MAP_FIXED_NOREPLACE = 1048576

def span(v) = v.start .. v.end
def page_up(n) = (n + PAGE - 1) / PAGE * PAGE
def fixed(flags) = flags & (MAP_FIXED | MAP_FIXED_NOREPLACE) != 0
def map_type(flags) = flags & MAP_TYPE

# How a mapping shows in vmas(): MAP_SHARED or MAP_PRIVATE.
def shown_flags(flags) = if map_type(flags) == MAP_SHARED then MAP_SHARED else MAP_PRIVATE

# What is mapped at address x: 0 for nothing, else 1 + prot + 8 * flags of its
# area; start_at and end_at give its bounds (plus one: 0 for nothing).
def at(x) = sum(v in vmas: if x in v.start .. v.end then 1 + (v.prot & 7) + 8 * v.flags else 0)
def start_at(x) = sum(v in vmas: if x in v.start .. v.end then v.start + 1 else 0)
def end_at(x) = sum(v in vmas: if x in v.start .. v.end then v.end + 1 else 0)
def flags_at(x) = sum(v in vmas: if x in v.start .. v.end then v.flags else 0)
def overlaps(lo, hi) = exists v in vmas: not disjoint(span(v), lo .. hi)
def mapped_in(lo, hi) = sum(v in vmas: max(0, min(v.end, hi) - max(v.start, lo)))
def covered(lo, hi) = mapped_in(lo, hi) == hi - lo

# Every area is as it was (action properties only).
def unchanged = (forall v in vmas: v in old(vmas)) and (forall v in old(vmas): v in vmas)

# Nothing outside [lo, hi) changed (action properties only): the areas that do
# not even touch the range are the same areas, and the areas reaching below lo
# and from hi upwards keep their outer ends and their protection. (An
# operation may extend a neighbour over the range, never merge two areas that
# lie apart from it.)
def apart(v, lo, hi) = v.end < lo or v.start > hi
def kept_outside(lo, hi) =
    (forall v in old(vmas): apart(v, lo, hi) -> v in vmas)
    and (forall v in vmas: apart(v, lo, hi) -> v in old(vmas))
    and at(lo - 1) == old(at(lo - 1)) and start_at(lo - 1) == old(start_at(lo - 1))
    and at(hi) == old(at(hi)) and end_at(hi) == old(end_at(hi))

# The hint of a non-fixed mmap, as round_hint_to_min makes it.
def hint(addr) =
    if addr / PAGE * PAGE != 0 and addr / PAGE * PAGE < mmap_min_addr
    then page_up(mmap_min_addr) else addr / PAGE * PAGE

# do_mmap's checks in Linux's order (placement aside): the errno, or 0. Map
# types other than private and shared are EINVAL, MAP_DROPPABLE (0x08, which
# Linux 6.11+ accepts) included: docs/contract.md [AS-MMAP-TYPE].
def mmap_errno(addr, length, flags) =
    if flags & MAP_ANONYMOUS == 0 then EBADF
    else if length == 0 then EINVAL
    else if page_up(length) > task_size or map_count > max_map_count then ENOMEM
    else if fixed(flags) and addr > task_size - page_up(length) then ENOMEM
    else if fixed(flags) and not aligned(addr, PAGE) then EINVAL
    else if fixed(flags) and addr < mmap_min_addr then EPERM
    else if not fixed(flags) and not room(page_up(length)) then ENOMEM
    else if flags & MAP_FIXED_NOREPLACE != 0 and overlaps(addr, addr + page_up(length)) then EEXIST
    else if map_type(flags) != MAP_SHARED and map_type(flags) != MAP_PRIVATE then EINVAL
    else 0

# Room for a non-fixed mapping of n bytes somewhere in [mmap_min_addr, task_size).
def room(n) = exists g in gaps: g.end - g.start >= n

# munmap's argument checks: the errno, or 0.
def munmap_errno(addr, length) =
    if not aligned(addr, PAGE) or addr > task_size or length > task_size - addr
       or length == 0 then EINVAL
    else 0

# do_mprotect_pkey's argument checks, before any area is looked at: the errno, or 0.
# A zero length with unknown prot bits is 0 here, as on Linux; EINVAL is also
# accepted for it (docs/contract.md [AS-MPROTECT-ZERO-CHOICE]).
def bad_prot(prot) = prot < 0 or prot > 15
def mprotect_errno(addr, length, prot) =
    if not aligned(addr, PAGE) then EINVAL
    else if length == 0 then 0
    else if addr + page_up(length) >= 2 ** 64 then ENOMEM
    else if bad_prot(prot) then EINVAL
    else 0

# After mprotect of [lo, hi): mprotect works area by area from lo and stops at
# the first hole (ENOMEM), so an area in the range has the new protection if
# everything from lo up to where it enters the range was mapped, and is
# untouched otherwise (it lies beyond the hole).
def reprotected(w, lo, hi, prot) =
    if old(covered(lo, max(w.start, lo) + 1))
    then w.prot == prot & 7 and w.flags == old(flags_at(max(w.start, lo)))
    else w in old(vmas)


# ---------------------------------------------------------------- invariants

invariant well_formed "[AS-VMAS][VMA-1] every area has vm_start < vm_end, both page-aligned":
    forall v in vmas: v.start < v.end and aligned(v.start, PAGE) and aligned(v.end, PAGE)

invariant inside_task "[AS-VMAS][AS-MMAP-RESULT][VMA-1] every area lies inside [mmap_min_addr, task_size)":
    forall v in vmas: mmap_min_addr <= v.start and v.end <= task_size

invariant no_overlap "[AS-VMAS][VMA-2] no two areas share an address":
    forall a, b in vmas: disjoint(span(a), span(b))

invariant sorted "[AS-VMAS][VMA-2] vmas() lists the areas by address, lowest first":
    forall a, b in listed: b.index == a.index + 1 -> a.end <= b.start

invariant shown_bits "[AS-VMAS] vmas() shows PROT_* bits only, and MAP_SHARED or MAP_PRIVATE":
    forall v in vmas: v.prot in 0 .. 8 and (v.flags == MAP_SHARED or v.flags == MAP_PRIVATE)

invariant map_count_counts_areas "[white-box][VMA-3] map_count equals the number of areas, at most max_map_count + 1":
    map_count == count(v in vmas) and map_count <= max_map_count + 1

# With no page ever faulted and no fork (this subsystem has neither), what
# decides a merge beyond /proc/<pid>/maps (VM_ACCOUNT, vm_pgoff, anon_vma)
# follows from the protection for private areas, so neighbours with equal
# protection are one area. After faults and fork Linux leaves such twins apart
# (docs/linux-semantics.md), and a shared area merges only with pieces of its
# own mmap, which maps does not show: neither is claimed here.
invariant merged "[AS-VMAS-MERGE][VMA-4] two neighbouring private areas with the same protection are one area":
    forall a, b in vmas:
        (a.end == b.start and a.flags == MAP_PRIVATE and b.flags == MAP_PRIVATE)
            -> a.prot != b.prot

# The kernel's own merge rule on the whole vm_area_struct (vma_merge's
# is_mergeable_vma, contiguous vm_pgoff, compatible anon_vma). A submission
# shows no pgoff (0 everywhere), so for it only `merged` above applies.
invariant merged_as_linux "[white-box][VMA-4] no two neighbours satisfy vma_merge's conditions":
    forall a, b in areas:
        not (a.end == b.start and a.vm_flags == b.vm_flags and a.file == b.file
             and b.pgoff == a.pgoff + (a.end - a.start) / PAGE
             and (a.anon_vma == b.anon_vma
                  or (a.anon_vma == 0 and b.chain <= 1)
                  or (b.anon_vma == 0 and a.chain <= 1)))

invariant gaps_are_the_holes "[white-box][VMA-6] the free gaps are exactly the unmapped ranges of [mmap_min_addr, task_size)":
    (forall g in gaps: mmap_min_addr <= g.start and g.start < g.end and g.end <= task_size)
    and (forall g in gaps: mapped_in(g.start, g.end) == 0)
    and (forall a, b in gaps: a.end != b.start)
    and sum(g in gaps: g.end - g.start) + sum(v in vmas: v.end - v.start)
        == task_size - mmap_min_addr


# ---------------------------------------------------------------- mmap

action mmap_result "[AS-MMAP-RESULT][AS-MMAP-FIXED][AS-MMAP-NOREPLACE] mmap returns a page-aligned start inside the task, the address itself for MAP_FIXED"
after mmap(addr, length, prot, flags) returns r:
    not raised ->
        aligned(r, PAGE) and mmap_min_addr <= r and r + page_up(length) <= task_size
        and (fixed(flags) -> r == addr)

action noreplace_fails_on_overlap "[AS-MMAP-NOREPLACE] MAP_FIXED_NOREPLACE fails with EEXIST exactly when the range overlaps a mapping, and then changes nothing"
after mmap(addr, length, prot, flags) returns r:
    (old(mmap_errno(addr, length, flags)) == EEXIST ->
        raised and errno == EEXIST and unchanged)
    and (raised and errno == EEXIST ->
            flags & MAP_FIXED_NOREPLACE != 0 and old(overlaps(addr, addr + page_up(length))))

action mmap_errno_as_linux "[AS-MMAP-ERRNO][AS-MMAP-TYPE][AS-LENGTH-ROUND] mmap fails exactly when Linux does, with the errno Linux checks first (no room: ENOMEM)"
after mmap(addr, length, prot, flags) returns r:
    let e = old(mmap_errno(addr, length, flags)) in
    (e != 0 -> raised and errno == e)
    and (e == 0 and fixed(flags) -> not raised)
    and (e == 0 and not fixed(flags) and raised -> errno == ENOMEM and not old(room(page_up(length))))

action mmap_errors_change_nothing "[AS-MMAP-ERRNO][GEN-RAISE-NO-CHANGE] a failed mmap leaves every area as it was"
after mmap(addr, length, prot, flags) returns r:
    raised -> unchanged

action fixed_replaces_what_overlapped "[AS-MMAP-RESULT][AS-MMAP-FIXED][AS-LENGTH-ROUND][VMA-2] after mmap only the new mapping is left in its range: MAP_FIXED replaces whatever overlapped"
after mmap(addr, length, prot, flags) returns r:
    not raised ->
        covered(r, r + page_up(length))
        and (forall v in vmas:
                not disjoint(span(v), r .. r + page_up(length))
                    -> v.prot == prot & 7 and v.flags == shown_flags(flags))

action mmap_keeps_the_rest "[AS-MMAP-RESULT][AS-LENGTH-ROUND] mmap changes nothing outside the range it maps"
after mmap(addr, length, prot, flags) returns r:
    not raised -> kept_outside(r, r + page_up(length))

action shared_mmap_stands_alone "[AS-VMAS-MERGE] a MAP_SHARED mapping is an area of its own (each gets a shmem object of its own)"
after mmap(addr, length, prot, flags) returns r:
    (not raised and map_type(flags) == MAP_SHARED) ->
        exists v in vmas: v.start == r and v.end == r + page_up(length)

action non_fixed_lands_in_a_gap "[AS-MMAP-PLACE-CHOICE] a non-fixed mmap never replaces a mapping: its range was free"
after mmap(addr, length, prot, flags) returns r:
    (not raised and not fixed(flags)) -> not old(overlaps(r, r + page_up(length)))

action hint_used_when_free "[AS-MMAP-HINT] a non-fixed mmap lands at its hint (rounded down to a page, raised to mmap_min_addr) when that range is free"
after mmap(addr, length, prot, flags) returns r:
    (not raised and not fixed(flags) and hint(addr) != 0
     and hint(addr) + page_up(length) <= task_size
     and not old(overlaps(hint(addr), hint(addr) + page_up(length))))
        -> r == hint(addr)


# ---------------------------------------------------------------- munmap

action munmap_errno_as_linux "[AS-MUNMAP-ERRNO][AS-MUNMAP] munmap fails with EINVAL exactly for an unaligned address, a zero length or a range past task_size; an empty range is fine"
after munmap(addr, length):
    let e = munmap_errno(addr, length) in
    (e != 0 -> raised and errno == e)
    and (e == 0 and raised -> errno == ENOMEM and old(map_count) >= max_map_count)

action munmap_unmaps_the_range "[AS-MUNMAP][AS-LENGTH-ROUND] after munmap nothing is mapped in its range"
after munmap(addr, length):
    not raised -> not overlaps(addr, addr + page_up(length))

action munmap_keeps_the_rest "[AS-MUNMAP][AS-LENGTH-ROUND] munmap changes nothing outside its range (it splits the areas at its ends)"
after munmap(addr, length):
    not raised -> kept_outside(addr, addr + page_up(length))

action munmap_errors_change_nothing "[AS-MUNMAP-ERRNO][GEN-RAISE-NO-CHANGE] a failed munmap leaves every area as it was"
after munmap(addr, length):
    raised -> unchanged


# ---------------------------------------------------------------- mprotect

action mprotect_errno_as_linux "[AS-MPROTECT-ERRNO][AS-MPROTECT-HOLE][AS-MPROTECT-ZERO-CHOICE] mprotect fails as Linux does: EINVAL for an unaligned start or unknown prot bits, ENOMEM when part of the range is not mapped (a zero length with unknown prot bits: 0, or EINVAL)"
after mprotect(addr, length, prot):
    let e = mprotect_errno(addr, length, prot) in
    let zero_choice = (aligned(addr, PAGE) and length == 0 and bad_prot(prot)) in
    (e != 0 -> raised and errno == e)
    and (zero_choice -> (raised -> errno == EINVAL) and unchanged)
    and ((e == 0 and not zero_choice) ->
            (raised <-> (length > 0 and not old(covered(addr, addr + page_up(length)))))
            and (raised -> errno == ENOMEM))

action mprotect_changes_exactly_the_range "[AS-MPROTECT][AS-MPROTECT-HOLE][AS-LENGTH-ROUND] mprotect gives its range the new protection and changes nothing else; meeting a hole (ENOMEM) it has changed exactly the areas before it"
after mprotect(addr, length, prot):
    (mprotect_errno(addr, length, prot) == 0 and length > 0) ->
        let hi = addr + page_up(length) in
        kept_outside(addr, hi)
        and mapped_in(addr, hi) == old(mapped_in(addr, hi))
        and (forall w in vmas: not disjoint(span(w), addr .. hi) -> reprotected(w, addr, hi, prot))

action mprotect_errors_change_nothing "[AS-MPROTECT-ERRNO][GEN-RAISE-NO-CHANGE] an mprotect refused for its arguments (EINVAL, a wrapping range) leaves every area as it was"
after mprotect(addr, length, prot):
    (raised and mprotect_errno(addr, length, prot) != 0) -> unchanged


# ---------------------------------------------------------------- find_vma

action find_vma_as_linux "[AS-FIND-VMA] find_vma returns (the start of) the first area whose end is above addr, none when there is none, and changes nothing"
after find_vma(addr) returns r:
    not raised and unchanged
    and (r == none <-> not (exists v in vmas: v.end > addr))
    and (r != none ->
            exists v in vmas:
                v.start == r and v.end > addr
                and not (exists w in vmas: w.end > addr and w.start < v.start))
