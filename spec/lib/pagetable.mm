spec pagetable "x86 page tables and their TLB: what the walk, translate and the table pages must agree on"

# The vocabulary (model/mmu.py): levels (2, 3 PAE, 4, 5 LA57), root (the pgd's
# pfn), table_pages, ptes (list[Pte{va, pfn, flags, present, user, writable}],
# every leaf entry, present or not, with the walk's effective rights),
# tables (set[Table{pfn, level}], level 1 holds PTEs, `levels` is the pgd),
# entries (list[TableEntry{table, level, index, pfn, flags, leaf}]) and tlb
# (list[TlbEntry{va, pfn, flags}], the cached translations).
# For a submission: ptes come from its walk() at every address the trace used
# (present/user/writable from the leaf's own bits: the contract gives no way
# to change a table entry's rights), table_pages from its table_pages(), and
# tables are the pages it holds from `pages` (each with level 0: where a page
# sits in the tree is not visible), root the first page it took; entries and
# tlb are not visible. So the structural invariants (PT-1's parents and
# levels, TLB-1 on the tlb) are [white-box]: they check the reference model and
# are "not observable" on a submission, where TLB-1 and PT-2 are checked
# through what translate() returns.
# Tags such as [PT-UNMAP] name clauses of docs/contract.md; [PT-1] and the like
# name invariants of docs/invariants.md; docs/traceability.md maps them.

def PAGE = 4096
def P = 1
def RW = 2
def U = 4
def A = 32
def D = 64
def NX = 1 << 63

def page(va) = va / PAGE * PAGE
def va_bits = if levels <= 3 then 32 else if levels == 4 then 48 else 57
def pfn_bits = if levels == 2 then 20 else 40
def flag_mask = if levels == 2 then 4095 else 4095 | NX

# What the mode can translate: 32-bit addresses in 2- and 3-level mode,
# canonical ones (bits 63..va_bits-1 all equal) in 4- and 5-level mode.
def translatable(va) =
    va >= 0 and va < 2 ** 64
    and (if levels <= 3 then va < 2 ** 32
         else va >> (va_bits - 1) == 0 or va >> (va_bits - 1) == 2 ** (65 - va_bits) - 1)

def mapped(va) = exists p in ptes: p.va == va

# The access (write, user, exec) is allowed by p's effective rights (PT-2).
def allows(p, write, user, exec) =
    p.present and (not user or p.user) and (not write or p.writable)
    and (not exec or p.flags & NX == 0)
def allowed(va, write, user, exec) =
    exists p in ptes: p.va == page(va) and allows(p, write, user, exec)

# Tables a set of leaves needs at least: the root, and below it one table per
# distinct prefix of the addresses at every level (a PTE table covers 4 MiB in
# 2-level mode, 2 MiB otherwise; each level up 512 times more).
def shift(k) = if levels == 2 then 22 else 12 + 9 * k
def prefixes(k) =
    count(p in ptes: not (exists q in ptes: q.va >> shift(k) == p.va >> shift(k) and q.va < p.va))
def tables_needed = 1 + sum(k in 1 .. levels: prefixes(k))

# Tables all the mappings made so far needed together: the most a page table may
# hold, since it may keep the tables unmap() left empty but no others.
def ever_prefixes(k) =
    count(a in mapped_ever:
          not (exists b in mapped_ever: b.va >> shift(k) == a.va >> shift(k) and b.va < a.va))
def tables_ever = 1 + sum(k in 1 .. levels: ever_prefixes(k))

# What map must refuse: an address it cannot map, one mapped already (before
# the step), a pfn or flags an entry of this mode cannot hold.
def bad_map(va, pfn, flags) =
    not translatable(va) or not aligned(va, PAGE) or old(mapped(va))
    or pfn < 0 or pfn >= 2 ** pfn_bits or flags < 0 or flags | flag_mask != flag_mask

def leaves_unchanged_but(va) =
    (forall p in old(ptes): p.va != va -> p in ptes) and (forall p in ptes: p.va != va -> p in old(ptes))


# ---------------------------------------------------------------- invariants

invariant leaves_well_formed "[PT-MAP][PT-MAP-INVALID][PT-1] every leaf entry maps a page-aligned address the mode translates, with a pfn and flags an entry of this mode holds":
    forall p in ptes:
        aligned(p.va, PAGE) and translatable(p.va) and 0 <= p.pfn and p.pfn < 2 ** pfn_bits
        and p.flags | flag_mask == flag_mask and p.present == (p.flags & P != 0)

invariant tables_point_down "[white-box][PT-1] a non-leaf entry points to a table page of the next level down":
    forall e in entries: not e.leaf -> Table{pfn: e.pfn, level: e.level - 1} in tables

invariant one_parent_per_table "[white-box][PT-1] every table page but the root has exactly one parent entry; the root has none and is the only table at the top level":
    forall t in tables:
        t.level > 0 ->
            count(e in entries: not e.leaf and e.pfn == t.pfn) == (if t.pfn == root then 0 else 1)
            and (t.pfn == root) == (t.level == levels)

invariant table_pages_counted "[PT-TABLES][PT-INIT][PT-1] table_pages() counts exactly the table pages held":
    table_pages == count(t in tables)

invariant enough_tables "[PT-TABLES-BOUNDS][PT-1] the table pages held are at least the root and one table per distinct address prefix at each level":
    table_pages >= tables_needed

invariant tables_within_history "[PT-TABLES-BOUNDS][PT-TABLES-CHOICE] table_pages() never exceeds the tables all mappings made so far needed together: empty tables may be kept, no others taken"
    : table_pages <= tables_ever

invariant tlb_not_stale "[white-box][TLB-1] every TLB entry translates to the frame its address maps, with no more rights than the walk gives":
    forall t in tlb:
        exists p in ptes:
            p.va == t.va and p.pfn == t.pfn and p.present
            and (t.flags & RW != 0 -> p.writable) and (t.flags & U != 0 -> p.user)

invariant tlb_entries_accessed "[white-box][TLB-1] a TLB entry was filled by a walk, which set A in the leaf first, and D when the entry allows a write without a new walk; nothing clears them while the entry is cached (Linux flushes after clearing D)":
    forall t in tlb:
        forall p in ptes:
            p.va == t.va -> p.flags & A != 0 and (t.flags & D != 0 -> p.flags & D != 0)


# ---------------------------------------------------------------- map

action map_checks "[PT-MAP-INVALID][PT-MAP-NOMEM] map refuses (ValueError) exactly an unaligned or untranslatable address, one already mapped, a pfn or flags an entry cannot hold"
after map(va, pfn, flags):
    (bad_map(va, pfn, flags) -> raised)
    and (raised(ValueError) -> bad_map(va, pfn, flags))
    and (raised(MemoryError) -> not bad_map(va, pfn, flags))

action map_installs_the_entry "[PT-MAP][PT-WALK] after map, walk(va) shows exactly the pfn and flags given, _PAGE_PRESENT ORed in, and no other leaf changed"
after map(va, pfn, flags):
    not raised ->
        (exists p in ptes: p.va == va and p.pfn == pfn and p.flags == flags | P)
        and leaves_unchanged_but(va)

action map_failure_changes_nothing "[GEN-RAISE-NO-CHANGE][PT-MAP-NOMEM] a refused map (ValueError, or MemoryError when pages gives no page) leaves every leaf and table page as it was"
after map(va, pfn, flags):
    raised -> leaves_unchanged_but(-1) and table_pages == old(table_pages)


# ---------------------------------------------------------------- unmap

action unmap_returns_the_pfn "[PT-UNMAP][PT-UNMAP-BAD] unmap returns the pfn that was mapped (none when nothing was, an untranslatable address included) and clears that entry only; ValueError exactly for an unaligned address"
after unmap(va) returns r:
    (raised <-> not aligned(va, PAGE)) and (raised -> raised(ValueError))
    and (not raised ->
            (r == none <-> not old(mapped(va)))
            and (r != none -> old(exists p in ptes: p.va == va and p.pfn == r))
            and not mapped(va) and leaves_unchanged_but(va))


# ---------------------------------------------------------------- translate

action translate_checks "[PT-TRANSLATE-BAD] translate of an address the mode cannot translate raises PageFault (with P clear: the reference compares the code), never ValueError"
after translate(va, write, user, exec) returns r:
    (not translatable(va) -> raised(PageFault)) and not raised(ValueError)

action translate_faults_as_the_walk_says "[PT-TRANSLATE][PT-TRANSLATE-FAULT][PT-UNMAP][PT-2][TLB-1] translate succeeds exactly when the walk allows the access: present at every level, U for a user access, RW for a write, no NX for a fetch; otherwise PageFault"
after translate(va, write, user, exec) returns r:
    translatable(va) -> (raised <-> not old(allowed(va, write, user, exec)))

action translate_agrees_with_the_walk "[PT-TRANSLATE][PT-UNMAP][TLB-1] translate returns the frame walk(va) maps, plus va's offset in the page (a TLB entry left behind by an unmap must not be used)"
after translate(va, write, user, exec) returns r:
    not raised ->
        old(exists p in ptes: p.va == page(va) and p.present and r == p.pfn * PAGE + va % PAGE)

action translate_sets_accessed_dirty "[PT-TRANSLATE][PT-TRANSLATE-FAULT][GEN-RAISE-NO-CHANGE] a translation sets the accessed bit, and the dirty bit for a write, as the CPU does; a fault changes nothing"
after translate(va, write, user, exec) returns r:
    (not raised ->
        (exists p in ptes: p.va == page(va) and p.flags & A != 0 and (not write or p.flags & D != 0))
        and leaves_unchanged_but(page(va)))
    and (raised -> leaves_unchanged_but(-1))
