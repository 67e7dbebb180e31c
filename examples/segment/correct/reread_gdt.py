"""A segment unit that keeps only the selectors and reads the GDT on every use.

What it shows ([SEG-LOAD], [SEG-LINEAR], and a freedom of design): the CPU
caches each descriptor when its selector is loaded, but since this GDT never
changes after construction, reading the entry again on every use gives the
same answers. Descriptors are decoded into small objects; the G=1 limit is
computed as (limit + 1) * 4096 - 1, the same last offset as the SDM's
(limit << 12) | 0xfff. The privilege rules are written as one table per
kind of load.
"""

ES, CS, SS, DS, FS, GS = range(6)
NAMES = ("ES", "CS", "SS", "DS", "FS", "GS")


class _Fault(Exception):
    def __init__(self, code):
        super().__init__(f"{type(self).__name__}({code:#x})")
        self.code = code


class GeneralProtection(_Fault):
    pass


class SegmentNotPresent(_Fault):
    pass


class StackFault(_Fault):
    pass


class Descriptor:
    def __init__(self, raw):
        self.base = (raw >> 16) & 0xFFFFFF | (raw >> 56) << 24
        raw_limit = raw & 0xFFFF | ((raw >> 48) & 0xF) << 16
        self.granular = bool(raw >> 55 & 1)
        self.last = (raw_limit + 1) * 4096 - 1 if self.granular else raw_limit
        self.type = raw >> 40 & 0xF
        self.system = not raw >> 44 & 1
        self.dpl = raw >> 45 & 3
        self.present = bool(raw >> 47 & 1)
        self.big = bool(raw >> 54 & 1)

    @property
    def code(self):
        return not self.system and bool(self.type & 8)

    @property
    def data(self):
        return not self.system and not self.type & 8

    def allows(self, offset, size):
        end = offset + size - 1
        if self.data and self.type & 4:
            return self.last < offset and end <= (0xFFFFFFFF if self.big else 0xFFFF)
        return end <= self.last


class SegmentUnit:
    def __init__(self, gdt, cpl, mmu):
        self.gdt, self.cpl, self.mmu = tuple(gdt), cpl, mmu
        user = cpl == 3
        self.regs = {ES: 0, CS: 0x73 if user else 0x60}
        for r in (SS, DS, FS, GS, ES):
            self.regs[r] = 0x7B if user else 0x68

    def _lookup(self, selector):
        index = selector >> 3
        if selector & 4 or index >= len(self.gdt):
            raise GeneralProtection(selector & 0xFFFC)
        return Descriptor(self.gdt[index])

    def load_segment(self, sreg, selector):
        if sreg in (CS, SS) or sreg not in self.regs:
            raise ValueError(f"cannot load {sreg} with load_segment")
        if selector > 3:
            d = self._lookup(selector)
            usable = d.data or (d.code and d.type & 2)
            exempt = d.code and d.type & 4
            if not usable or (not exempt and d.dpl < max(self.cpl, selector & 3)):
                raise GeneralProtection(selector & 0xFFFC)
            if not d.present:
                raise SegmentNotPresent(selector & 0xFFFC)
        self.regs[sreg] = selector

    def load_ss(self, selector):
        if selector <= 3:
            raise GeneralProtection(0)
        d = self._lookup(selector)
        ok = d.data and d.type & 2 and d.dpl == self.cpl and selector & 3 == self.cpl
        if not ok:
            raise GeneralProtection(selector & 0xFFFC)
        if not d.present:
            raise StackFault(selector & 0xFFFC)
        self.regs[SS] = selector

    def far_jump(self, selector, offset):
        if selector <= 3:
            raise GeneralProtection(0)
        d = self._lookup(selector)
        if not d.code:
            raise GeneralProtection(selector & 0xFFFC)
        allowed = (d.dpl <= self.cpl if d.type & 4
                   else selector & 3 <= self.cpl and d.dpl == self.cpl)
        if not allowed:
            raise GeneralProtection(selector & 0xFFFC)
        if not d.present:
            raise SegmentNotPresent(selector & 0xFFFC)
        if not d.allows(offset, 1):
            raise GeneralProtection(0)
        self.regs[CS] = selector & 0xFFFC | self.cpl

    def far_call(self, selector, offset):
        self.far_jump(selector, offset)

    def linear(self, sreg, offset, size, write):
        if sreg not in self.regs or offset < 0 or size < 1:
            raise ValueError("no such register, or a bad offset or size")
        fault = StackFault if sreg == SS else GeneralProtection
        selector = self.regs[sreg]
        if selector <= 3:
            raise fault(0)
        d = Descriptor(self.gdt[selector >> 3])
        if write and not (d.data and d.type & 2):
            raise fault(0)
        if not write and sreg != CS and d.code and not d.type & 2:
            raise fault(0)
        if not d.allows(offset, size):
            raise fault(0)
        return (d.base + offset) % (1 << 32)

    def translate(self, sreg, offset, write):
        return self.mmu.translate(self.linear(sreg, offset, 1, write), bool(write),
                                  self.cpl == 3, sreg == CS)

    def selector(self, sreg):
        return self.regs[sreg]
