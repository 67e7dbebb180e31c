"""A segment unit that reads every limit in bytes, whatever G says.

What it shows ([SEG-LINEAR]): with G=1 the 20-bit limit counts 4 KiB
units, so the last valid offset is limit * 4096 + 4095; Linux's flat
segments (limit 0xfffff, G=1) reach all 4 GiB. This unit ignores G, so
every offset past 0xfffff faults.

Bug: the limit is checked in bytes where G=1 means pages.

Expected counterexample (one step), at CPL 3: linear(DS, 0x08048568, 1,
False), the documents' address under __USER_DS, raises GeneralProtection
instead of returning 0x08048568.
"""

ES, CS, SS, DS, FS, GS = range(6)


class GeneralProtection(Exception):
    def __init__(self, code):
        super().__init__(f"#GP({code:#x})")
        self.code = code


class SegmentNotPresent(Exception):
    def __init__(self, code):
        super().__init__(f"#NP({code:#x})")
        self.code = code


class StackFault(Exception):
    def __init__(self, code):
        super().__init__(f"#SS({code:#x})")
        self.code = code


def decode(raw):
    """(base, last valid offset, type, s, dpl, p, d) of a descriptor."""
    base = (raw >> 16) & 0xFFFFFF | ((raw >> 56) & 0xFF) << 24
    limit = raw & 0xFFFF | ((raw >> 48) & 0xF) << 16
    return (base, limit, (raw >> 40) & 0xF, (raw >> 44) & 1, (raw >> 45) & 3,
            (raw >> 47) & 1, (raw >> 54) & 1)


class SegmentUnit:
    def __init__(self, gdt, cpl, mmu):
        self.gdt, self.cpl, self.mmu = list(gdt), cpl, mmu
        cs, ds = (0x73, 0x7B) if cpl == 3 else (0x60, 0x68)
        self.sel = [ds, cs, ds, ds, ds, ds]
        self.hidden = [self._desc(s) for s in self.sel]

    def _desc(self, selector):
        if selector >> 2 == 0:
            return None
        if selector & 4 or selector >> 3 >= len(self.gdt) or not self.gdt[selector >> 3]:
            raise GeneralProtection(selector & ~3)
        return decode(self.gdt[selector >> 3])

    def load_segment(self, sreg, selector):
        if sreg not in (ES, DS, FS, GS):
            raise ValueError("load_segment takes ES, DS, FS or GS")
        d = self._desc(selector)
        if d is not None:
            _, _, typ, s, dpl, p, _ = d
            code = typ & 8
            if not s or (code and not typ & 2):
                raise GeneralProtection(selector & ~3)
            conforming = code and typ & 4
            if not conforming and max(self.cpl, selector & 3) > dpl:
                raise GeneralProtection(selector & ~3)
            if not p:
                raise SegmentNotPresent(selector & ~3)
        self.sel[sreg], self.hidden[sreg] = selector, d

    def load_ss(self, selector):
        d = self._desc(selector)
        if d is None:
            raise GeneralProtection(0)
        _, _, typ, s, dpl, p, _ = d
        if selector & 3 != self.cpl or not s or typ & 8 or not typ & 2 or dpl != self.cpl:
            raise GeneralProtection(selector & ~3)
        if not p:
            raise StackFault(selector & ~3)
        self.sel[SS], self.hidden[SS] = selector, d

    def far_jump(self, selector, offset):
        d = self._desc(selector)
        if d is None:
            raise GeneralProtection(0)
        _, limit, typ, s, dpl, p, _ = d
        if not s or not typ & 8:
            raise GeneralProtection(selector & ~3)
        if typ & 4:
            if dpl > self.cpl:
                raise GeneralProtection(selector & ~3)
        elif selector & 3 > self.cpl or dpl != self.cpl:
            raise GeneralProtection(selector & ~3)
        if not p:
            raise SegmentNotPresent(selector & ~3)
        if offset > limit:
            raise GeneralProtection(0)
        self.sel[CS], self.hidden[CS] = selector & ~3 | self.cpl, d

    far_call = far_jump

    def linear(self, sreg, offset, size, write):
        if sreg not in range(6) or offset < 0 or size < 1:
            raise ValueError("no such segment register, or a bad offset or size")
        fault = StackFault if sreg == SS else GeneralProtection
        d = self.hidden[sreg]
        if d is None:
            raise fault(0)
        base, limit, typ, _, _, _, big = d
        code = typ & 8
        if write and (code or not typ & 2):
            raise fault(0)
        if not write and sreg != CS and code and not typ & 2:
            raise fault(0)
        last = offset + size - 1
        if not code and typ & 4:  # expand-down
            inside = limit < offset and last <= (0xFFFFFFFF if big else 0xFFFF)
        else:
            inside = last <= limit
        if not inside:
            raise fault(0)
        return (base + offset) & 0xFFFFFFFF

    def translate(self, sreg, offset, write):
        lin = self.linear(sreg, offset, 1, write)
        return self.mmu.translate(lin, bool(write), self.cpl == 3, sreg == CS)

    def selector(self, sreg):
        return self.sel[sreg]
