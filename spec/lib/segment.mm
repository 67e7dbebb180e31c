spec segment "x86 segmentation as Linux uses it: the flat GDT, DPL/RPL/CPL checks, limits, logical -> linear -> physical"

# The vocabulary (model/segment.py): cpl (0 or 3), gdt (list[Descriptor{index,
# base, limit, type, s, dpl, p, g, d}], every non-null entry; limit is the raw
# 20-bit field, in 4 KiB units when g == 1), segs (list[SegReg{sreg, selector}],
# the six registers ES=0, CS=1, SS=2, DS=3, FS=4, GS=5), maps (list[Map{va, pfn,
# flags}], the 2-level page table's leaf entries) and last (the last linear or
# translate that passed the segment checks: Translation{sreg, offset, linear,
# phys}). A selector is index << 3 | TI << 2 | RPL.
# For a submission: segs from its selector(sreg), last from what it returned;
# cpl, gdt and maps are the setup's (the checker hands it the GDT and the MMU).
# Tags such as [SEG-LOAD] name clauses of docs/contract.md.

def PAGE = 4096
def P = 1
def RW = 2
def U = 4
def ES = 0
def CS = 1
def SS = 2

def index(sel) = sel >> 3
def rpl(sel) = sel & 3
def null(sel) = sel >> 2 == 0
def in_ldt(sel) = sel & 4 != 0
def code(d) = d.s == 1 and d.type & 8 != 0
def data(d) = d.s == 1 and d.type & 8 == 0
def readable_code(d) = code(d) and d.type & 2 != 0
def writable_data(d) = data(d) and d.type & 2 != 0
def conforming(d) = code(d) and d.type & 4 != 0
def expand_down(d) = data(d) and d.type & 4 != 0
# The last valid offset: the limit in bytes (G=0) or in 4 KiB units (G=1).
def limit_bytes(d) = if d.g == 1 then d.limit * 4096 + 4095 else d.limit
def upper(d) = if d.d == 1 then 2 ** 32 - 1 else 2 ** 16 - 1
def within(d, offset, size) =
    if expand_down(d) then limit_bytes(d) < offset and offset + size - 1 <= upper(d)
    else offset + size - 1 <= limit_bytes(d)
def names(d, sel) = not in_ldt(sel) and d.index == index(sel)
def loadable_reg(sreg) = sreg == 0 or sreg == 3 or sreg == 4 or sreg == 5
def holds(sreg, sel) = exists s in segs: s.sreg == sreg and s.selector == sel

# Loading DS/ES/FS/GS (SDM 5.7): null, or a data or readable code segment with
# max(CPL, RPL) <= DPL (conforming code is exempt); then present.
def data_rights(sel) =
    exists d in gdt: names(d, sel) and (data(d) or readable_code(d))
                     and (conforming(d) or max(cpl, rpl(sel)) <= d.dpl)
def data_load_ok(sel) = null(sel) or (exists d in gdt: names(d, sel) and d.p == 1) and data_rights(sel)

# Loading SS: a writable data segment with RPL == CPL == DPL, present.
def ss_rights(sel) =
    not null(sel) and rpl(sel) == cpl
    and (exists d in gdt: names(d, sel) and writable_data(d) and d.dpl == cpl)
def ss_ok(sel) = ss_rights(sel) and (exists d in gdt: names(d, sel) and d.p == 1)

# A far JMP or CALL straight to code (SDM 5.8.1): non-conforming needs RPL <= CPL
# and DPL == CPL, conforming DPL <= CPL; present; the offset within the limit.
def far_rights(sel) =
    exists d in gdt: names(d, sel) and code(d)
                     and (if conforming(d) then d.dpl <= cpl else rpl(sel) <= cpl and d.dpl == cpl)
def far_ok(sel, offset) =
    far_rights(sel) and (exists d in gdt: names(d, sel) and d.p == 1 and within(d, offset, 1))

# Using sreg:offset for size bytes: a loaded segment, a type that allows the
# access (no write to code or read-only data, no read of execute-only code but
# through CS), the bytes within the limit.
def use_ok(sreg, offset, size, write) =
    exists s in segs:
        s.sreg == sreg and not null(s.selector)
        and (exists d in gdt:
                names(d, s.selector)
                and (not write or writable_data(d))
                and (write or sreg == CS or not code(d) or readable_code(d))
                and within(d, offset, size))
def linear_of(sreg, offset, lin) =
    exists s in segs:
        s.sreg == sreg
        and (exists d in gdt: names(d, s.selector) and lin == (d.base + offset) % 2 ** 32)

# What the page table lets this access do (2-level: no NX): CPL 3 is a user access.
def paging_allows(lin, write) =
    exists m in maps: m.va == lin / PAGE * PAGE and m.flags & P != 0
                      and (cpl != 3 or m.flags & U != 0) and (not write or m.flags & RW != 0)

def same_segs = forall s in old(segs): s in segs


# ---------------------------------------------------------------- the flat model

invariant linux_segments_are_flat "[SEG-INIT][SEG-FLAT] Linux's four segments (GDT entries 12..15) have base 0, a 4 GiB limit (0xfffff pages), are present code/data segments, kernel ones DPL 0 and user ones DPL 3":
    forall d in gdt:
        12 <= d.index and d.index <= 15 ->
            d.base == 0 and limit_bytes(d) == 2 ** 32 - 1 and d.s == 1 and d.p == 1
            and (d.dpl == 3 <-> d.index >= 14) and (code(d) <-> d.index % 2 == 0)

invariant cs_and_ss_at_cpl "[SEG-FAR][SEG-LOAD-SS] CS and SS always hold a selector whose RPL is the CPL":
    forall s in segs: (s.sreg == CS or s.sreg == SS) -> rpl(s.selector) == cpl and not null(s.selector)

invariant user_holds_no_kernel_data "[SEG-LOAD][SEG-LOAD-SS] at CPL 3 no register holds a DPL 0 data segment: the privilege checks keep user code out of kernel segments":
    cpl == 3 -> forall d in gdt: data(d) and d.dpl != 3 -> not (exists s in segs: names(d, s.selector))


# ---------------------------------------------------------------- loads

action load_segment_checks "[SEG-LOAD] loading DS, ES, FS or GS succeeds exactly for null or a present data or readable code segment with max(CPL, RPL) <= DPL (conforming code exempt)"
after load_segment(sreg, selector):
    loadable_reg(sreg) ->
        (raised <-> not old(data_load_ok(selector)))
        and (raised(SegmentNotPresent) -> old(data_rights(selector)))
        and (raised(GeneralProtection) -> not old(data_rights(selector)))

action load_segment_loads "[SEG-LOAD][GEN-RAISE-NO-CHANGE] a load puts the selector in the register and changes no other; a refused load changes nothing"
after load_segment(sreg, selector):
    (not raised -> holds(sreg, selector)
                   and (forall s in old(segs): s.sreg != sreg -> s in segs))
    and (raised -> same_segs)

action load_segment_registers "[SEG-LOAD] load_segment takes ES, DS, FS and GS only: ValueError for CS, SS or a number that is no register"
after load_segment(sreg, selector):
    not loadable_reg(sreg) -> raised(ValueError) and same_segs

action load_ss_checks "[SEG-LOAD-SS] loading SS succeeds exactly for a present writable data segment with RPL == CPL == DPL; #SS (StackFault) only when not present"
after load_ss(selector):
    (raised <-> not old(ss_ok(selector)))
    and (raised(StackFault) -> old(ss_rights(selector)))
    and (not raised -> holds(SS, selector)) and (raised -> same_segs)


# ---------------------------------------------------------------- far jump and call

action far_jump_checks "[SEG-FAR] a far jump succeeds exactly to a present code segment the privilege rules allow, at an offset within its limit; CS then holds the selector with RPL = CPL"
after far_jump(selector, offset):
    (raised <-> not old(far_ok(selector, offset)))
    and (not raised -> holds(CS, selector / 4 * 4 + cpl))
    and (raised -> same_segs)

action far_call_checks "[SEG-FAR] a far call checks its target as a far jump does"
after far_call(selector, offset):
    (raised <-> not old(far_ok(selector, offset)))
    and (not raised -> holds(CS, selector / 4 * 4 + cpl))
    and (raised -> same_segs)


# ---------------------------------------------------------------- use

action linear_checks "[SEG-LINEAR] a use of sreg:offset faults exactly when the register is null, the type forbids the access or a byte lies outside the limit (G=1: in 4 KiB units); #SS for SS, #GP otherwise"
after linear(sreg, offset, size, write) returns r:
    (0 <= sreg and sreg <= 5 and size >= 1 and offset >= 0) ->
        (raised <-> not use_ok(sreg, offset, size, write))
        and (raised(StackFault) -> sreg == SS) and (raised(GeneralProtection) -> sreg != SS)

action linear_arguments "[SEG-LINEAR] linear raises ValueError for a register number that is none, a negative offset or a size below 1"
after linear(sreg, offset, size, write) returns r:
    (sreg < 0 or sreg > 5 or offset < 0 or size < 1) -> raised(ValueError)

action linear_adds_the_base "[SEG-LINEAR][SEG-FLAT] the linear address is the segment's base plus the offset, modulo 4 GiB: under Linux's flat segments, the offset itself"
after linear(sreg, offset, size, write) returns r:
    not raised -> linear_of(sreg, offset, r)

action translate_through_the_mmu "[SEG-TRANSLATE] translate gives the physical address the page table maps the linear address to, none exactly when paging refuses the access (CPL 3 is a user access); the segment checks come first"
after translate(sreg, offset, write) returns r:
    (0 <= sreg and sreg <= 5 and offset >= 0) ->
        (raised <-> not use_ok(sreg, offset, 1, write))
        and (not raised ->
                (exists s in segs:
                    s.sreg == sreg
                    and (exists d in gdt: names(d, s.selector)
                    and (let lin = (d.base + offset) % 2 ** 32 in
                         (r == none <-> not paging_allows(lin, write))
                         and (r != none -> (exists m in maps: m.va == lin / PAGE * PAGE
                                                              and r == m.pfn * PAGE + lin % PAGE))))))
