spec fault "Processes, demand paging and copy-on-write fork: what page tables, struct page counts and memory contents must agree on"

# The vocabulary (model/fault.py): npages, zero_pfn, free_pages,
# boot_free_pages (free_pages before any process), table_pages, procs
# (set[Proc{pid}]), vmas (list[ProcVma{pid, start, end, prot, flags}]),
# mappings (list[Mapping{pid, va, pfn, writable, present, shared}], every user
# PTE), pages (list[PageInfo{pfn, refcount, mapcount, free, zero, pgtable,
# shmem, anon, exclusive}], struct page; the zero page's PTEs are not counted
# in mapcount, as in Linux; used_pages: those not free), tlb (list[TlbEntry{pid, va, pfn, writable}]), rss
# (set[Rss{pid, anon, shmem}]), frames (list[Frame{pid, va, pfn}], what
# frame() shows) and memory (list[Byte{pid, va, value}], every nonzero byte a
# read() would return).
#
# For a submission, what its contract methods show comes from it: free_pages,
# boot_free_pages (its free_pages() before any process) and frames (its
# frame() at every page the trace has read or written, for every live
# process); results, values read and SIGSEGVs are its own. Everything else
# (procs, vmas, mappings, pages, tlb, rss, memory, table_pages) is the
# reference model's, following the same operations and the submission's
# choices (pids, where a non-fixed mmap lands): the invariants on those names
# check the reference, and the action properties hold the submission's results
# against them. Frames of a correct Kernel may legally differ from Linux's (which
# pages are mapped already), so no property compares pfns across the two.
# The invariants on the reference's PTEs, struct pages, TLB and RSS counters
# are [white-box]: "not observable" on a submission.
# Tags such as [KERNEL-COW] name clauses of docs/contract.md; [FAULT-2] and the
# like name invariants of docs/invariants.md; docs/traceability.md maps them.

def PAGE = 4096
def PROT_WRITE = 2
def PROT_EXEC = 4
def MAP_SHARED = 1

def page(va) = va / PAGE * PAGE
def page_up(n) = (n + PAGE - 1) / PAGE * PAGE
def live(pid) = exists p in procs: p.pid == pid
def address(va) = 0 <= va and va < 2 ** 64
def canonical(va) = va >> 47 == 0 or va >> 47 == 131071

# The protection of pid's area at va, plus one (0: no area there).
def area_at(pid, va) = sum(v in vmas: if v.pid == pid and va in v.start .. v.end then v.prot + 1 else 0)
def shared_at(pid, va) = exists v in vmas: v.pid == pid and va in v.start .. v.end and v.flags == MAP_SHARED
def private_at(pid, va) = exists v in vmas: v.pid == pid and va in v.start .. v.end and v.flags != MAP_SHARED

# x86's access_error on the areas: a read needs an accessible area (PROT_WRITE
# alone is readable; PROT_EXEC alone has the execute-only protection key on a
# CPU with PKU, so a data access faults), a write needs PROT_WRITE.
def readable(pid, va) =
    canonical(va) and area_at(pid, va) != 0 and area_at(pid, va) != 1
    and area_at(pid, va) != 1 + PROT_EXEC
def writable(pid, va) = canonical(va) and area_at(pid, va) != 0 and (area_at(pid, va) - 1) & PROT_WRITE != 0

# Arguments an access takes without ValueError (action properties only): a live
# pid, a 64-bit address, a byte.
def can_access(pid, va, value) = old(live(pid)) and address(va) and 0 <= value and value < 256

# The byte read(pid, va) returns.
def byte(pid, va) = sum(b in memory: if b.pid == pid and b.va == va then b.value else 0)


# ---------------------------------------------------------------- invariants (the reference)

invariant ptes_inside_allowing_areas "[white-box][FAULT-1] every user PTE lies inside an area of its process; a present one only where the area is accessible, a writable one only where it allows writing":
    forall m in mappings:
        exists v in vmas:
            v.pid == m.pid and m.va in v.start .. v.end
            and (m.present -> v.prot != 0) and (m.writable -> v.prot & PROT_WRITE != 0)

invariant private_writable_mapped_once "[white-box][PT-3][FAULT-2] a page mapped writable through a private mapping is mapped by that PTE alone":
    forall m in mappings:
        (m.writable and not m.shared) -> count(n in mappings: n.pfn == m.pfn) == 1

invariant zero_page_never_writable "[white-box][FAULT-2] the shared zero page is never mapped writable, nor cached writable in a TLB (CVE-2017-1000405)":
    (forall m in mappings: m.pfn == zero_pfn -> m.writable == false)
    and (forall t in tlb: t.pfn == zero_pfn -> t.writable == false)

invariant mapcount_counts_ptes "[white-box][REF-2] _mapcount of every page equals the number of PTEs that map it (the zero page's PTEs are not counted)":
    sum(p in used_pages: p.mapcount) == count(m in mappings: m.pfn != zero_pfn)
    and (forall p in used_pages: p.mapcount > 0 -> p.mapcount == count(m in mappings: m.pfn == p.pfn))

invariant refcount_covers_mapcount "[white-box][REF-1] refcount >= mapcount for every page, and a page is free exactly when its refcount is zero":
    forall p in pages: p.refcount >= p.mapcount and (p.free <-> p.refcount == 0)

invariant free_pages_unmapped "[white-box][REF-1][BUD-5] no page is both free and mapped: every PTE maps a page in use, and a free page has no map count":
    (forall m in mappings: exists p in used_pages: p.pfn == m.pfn)
    and (forall p in pages: p.free -> p.mapcount == 0)

invariant rss_counts_ptes "[white-box][MM-1] each process's RSS counters equal its PTEs by type: private pages (the zero page aside) and shared ones":
    forall r in rss:
        r.anon == count(m in mappings: m.pid == r.pid and not m.shared and m.pfn != zero_pfn)
        and r.shmem == count(m in mappings: m.pid == r.pid and m.shared)

invariant rss_of_live_processes "[white-box][MM-1] RSS counters exist exactly for the live processes":
    (forall r in rss: live(r.pid)) and count(r in rss) == count(p in procs)

invariant nothing_left_without_processes "[white-box][MM-1] when every process has exited, every page but the zero page is free again (check_mm)":
    count(p in procs) == 0 -> forall p in used_pages: p.pfn == zero_pfn

invariant user_ptes_map_user_pages "[white-box][PT-3] a user PTE maps the zero page, an anonymous page or a shmem page: never a page-table page nor a free one":
    forall m in mappings:
        m.pfn == zero_pfn or (exists p in used_pages: p.pfn == m.pfn and (p.anon or p.shmem))

invariant writable_anon_is_exclusive "[white-box][PT-3][FAULT-2] a private PTE is writable only for a PageAnonExclusive page (what do_wp_page's reuse and mprotect's can_change_pte_writable require; fork clears the flag and write-protects)":
    forall m in mappings:
        (m.writable and not m.shared) -> exists p in used_pages: p.pfn == m.pfn and p.exclusive

invariant exclusive_mapped_once "[white-box][PT-3][REF-2] a PageAnonExclusive page is an anonymous page mapped exactly once":
    forall p in used_pages: p.exclusive -> p.anon and p.mapcount == 1

invariant anon_references_are_mappings "[white-box][REF-1][REF-2] an anonymous page's references are its mappings (no pins, no swap cache here), so it is mapped while it is in use and freed with its last PTE":
    forall p in used_pages: p.anon -> p.refcount == p.mapcount and p.mapcount > 0

invariant tlb_not_stale "[white-box][TLB-1] every cached translation is a present PTE of its process, with no more rights":
    forall t in tlb:
        exists m in mappings:
            m.pid == t.pid and m.va == t.va and m.pfn == t.pfn and m.present
            and (t.writable -> m.writable)


# ---------------------------------------------------------------- invariants (what frame() and free_pages() show)

invariant frames_inside_areas "[KERNEL-FRAME][FAULT-1] frame() shows a page only inside an area of its process":
    forall f in frames: exists v in vmas: v.pid == f.pid and f.va in v.start .. v.end

invariant all_free_again_after_exit "[KERNEL-FREE-PAGES][MM-1][REF-1] with no process left, free_pages() is back to what it was before the first one: nothing leaked":
    count(p in procs) == 0 -> free_pages == boot_free_pages


# ---------------------------------------------------------------- read and write

action read_faults_as_x86 "[KERNEL-SEGV][KERNEL-ARGS][FAULT-1] read raises Segfault exactly where Linux sends SIGSEGV: no area, a PROT_NONE or execute-only area, a non-canonical address; ValueError for a dead pid or a va that is no address"
after read(pid, va) returns r:
    (not can_access(pid, va, 0) -> raised) and (raised(ValueError) -> not can_access(pid, va, 0))
    and (can_access(pid, va, 0) -> (raised <-> not old(readable(pid, va))))

action write_faults_as_x86 "[KERNEL-SEGV][KERNEL-ARGS][FAULT-1] write raises Segfault exactly where Linux sends SIGSEGV (no area, no PROT_WRITE, a non-canonical address); ValueError for a dead pid, a va that is no address, a value that is no byte"
after write(pid, va, value):
    (not can_access(pid, va, value) -> raised)
    and (raised(ValueError) -> not can_access(pid, va, value))
    and (can_access(pid, va, value) -> (raised <-> not old(writable(pid, va))))

action read_sees_memory "[KERNEL-MEMORY][KERNEL-PROCS][FAULT-2] a read returns what the process last wrote there, what it inherited at fork, or what a process sharing the page wrote; 0 for a byte never written"
after read(pid, va) returns r:
    not raised -> r == old(byte(pid, va))

# white-box: it reads only `memory` (and areas), which a submission shows only through
# read(); on a submission those names are the reference kernel following it, so this
# could never fail there: read_sees_memory checks [KERNEL-MEMORY] on what read() returns.
action writes_stay_private "[white-box][FAULT-2] a write changes the byte written and, in other processes, only what they map shared: after fork the child's writes never show in the parent (Dirty COW, CVE-2016-5195)"
after write(pid, va, value):
    not raised ->
        byte(pid, va) == value
        and (forall b in old(memory) + memory:
                (b.va == va and b.pid != pid and not shared_at(b.pid, va))
                    -> byte(b.pid, va) == old(byte(b.pid, va)))

action read_keeps_the_frame "[KERNEL-COW][FAULT-2] a read never replaces a page already mapped: copy-on-write copies on a write, never on a read"
after read(pid, va) returns r:
    forall f in old(frames): (f.pid == pid and f.va == page(va)) -> f in frames

action written_page_is_exclusive "[KERNEL-COW][FAULT-2][PT-3] after a write through a private mapping, the page written is mapped by the writer alone (copied, or reused as the last sharer)"
after write(pid, va, value):
    (not raised and old(private_at(pid, va))) ->
        forall f in frames: (f.pid == pid and f.va == page(va)) -> count(g in frames: g.pfn == f.pfn) == 1


# ---------------------------------------------------------------- processes

action spawn_makes_an_empty_process "[KERNEL-PROCS] spawn returns a new pid whose address space is empty"
after spawn() returns c:
    not raised -> live(c) and not old(live(c)) and not (exists v in vmas: v.pid == c)

action fork_copies_the_areas "[KERNEL-PROCS] fork gives the child a copy of every area of its parent"
after fork(pid) returns c:
    not raised ->
        live(c) and not old(live(c))
        and (forall v in vmas:
                v.pid == pid -> ProcVma{pid: c, start: v.start, end: v.end, prot: v.prot, flags: v.flags} in vmas)
        and count(v in vmas: v.pid == c) == count(v in vmas: v.pid == pid)

action fork_shares_frames "[KERNEL-COW] fork copies page-table entries, never pages: every page the child has mapped is its parent's frame at the same address"
after fork(pid) returns c:
    not raised -> forall f in frames: f.pid == c -> Frame{pid: pid, va: f.va, pfn: f.pfn} in old(frames)

action exit_ends_the_process "[KERNEL-PROCS][KERNEL-FRAME] after exit the process is gone, and frame() shows none of its pages"
after exit(pid):
    not raised -> not live(pid) and not (exists f in frames: f.pid == pid)

action exit_drops_the_ptes "[white-box][MM-1] after exit no PTE of the process is left"
after exit(pid):
    not raised -> not (exists m in mappings: m.pid == pid)


# ---------------------------------------------------------------- mmap, munmap, mprotect

action mmap_starts_empty "[KERNEL-VM] a new mapping has no page mapped yet: MAP_FIXED drops the pages of what it replaces"
after mmap(pid, addr, length, prot, flags) returns r:
    not raised -> forall f in frames: f.pid == pid -> f.va not in r .. r + page_up(length)

action munmap_drops_the_pages "[KERNEL-VM] after munmap no page of the range is mapped"
after munmap(pid, addr, length):
    not raised -> forall f in frames: f.pid == pid -> f.va not in addr .. addr + page_up(length)

action mprotect_keeps_the_pages "[KERNEL-VM] mprotect changes protections only: no page is mapped, unmapped or replaced"
after mprotect(pid, addr, length, prot):
    (forall f in old(frames): f in frames) and (forall f in frames: f in old(frames))
