"""A PageTable whose map() checks pfn and flags only when it reaches the leaf.

What it shows: [PT-TABLES-BOUNDS] and [GEN-RAISE-NO-CHANGE]. A map() that
fails changes nothing, and table_pages() never exceeds the tables that the
mappings made so far needed together. This one walks down first, creating
the missing tables, and only then finds that the pfn does not fit an entry
or the flags hold bits an entry does not have: it raises ValueError, as it
should, but the tables it made for the failed call stay, needed by nobody.

Bug: the argument checks come after the table allocation.

Expected counterexample (one step): map(va, 1 << 40, P|RW|U) in 4-level
mode at an address with no tables yet raises ValueError and leaves three new
table pages: map_failure_changes_nothing and tables_within_history.
"""

P, RW, U, A, D = 0x1, 0x2, 0x4, 0x20, 0x40
NX = 1 << 63
PAGE = 4096

try:
    PageFault  # noqa: B018 - the checker may inject its own class
except NameError:
    class PageFault(Exception):
        def __init__(self, code, address=None):  # code first, as the contract's
            super().__init__(f"page fault at {address:#x}, code {code}")
            self.code = code
            self.address = address

# levels -> (bit position of each index, top first), width of each index, va bits
MODES = {
    2: ((22, 12), (10, 10), 32),
    3: ((30, 21, 12), (2, 9, 9), 32),
    4: ((39, 30, 21, 12), (9, 9, 9, 9), 48),
    5: ((48, 39, 30, 21, 12), (9, 9, 9, 9, 9), 57),
}


class PageTable:
    def __init__(self, levels, pages):
        if levels not in MODES:
            raise ValueError("levels must be 2, 3, 4 or 5")
        self.levels = levels
        self.shifts, self.widths, self.va_bits = MODES[levels]
        self.pages = pages
        self.tlb = {}
        self.root = self._new_table()
        self.count = 1

    def _new_table(self):
        pfn = self.pages.alloc_pages(0)
        if pfn is None:
            raise MemoryError("no page for a page table")
        return {"pfn": pfn, "entries": {}}

    def _translatable(self, va):
        """32-bit addresses in 2- and 3-level mode, canonical ones in 4- and 5-level mode."""
        if self.levels <= 3:
            return 0 <= va < 1 << 32
        top = va >> (self.va_bits - 1)
        return 0 <= va < 1 << 64 and (top == 0 or top == (1 << (65 - self.va_bits)) - 1)

    def _indexes(self, va):
        return [(va >> s) & ((1 << w) - 1) for s, w in zip(self.shifts, self.widths, strict=True)]

    def _find(self, va):
        """The list of tables on the way down to the leaf table, or None."""
        tables = [self.root]
        for idx in self._indexes(va)[:-1]:
            child = tables[-1]["entries"].get(idx)
            if child is None:
                return None
            tables.append(child)
        return tables

    def map(self, va, pfn, flags):
        if not self._translatable(va):
            raise ValueError("the mode cannot translate this address")
        if va % PAGE:
            raise ValueError("unaligned address")
        idx = self._indexes(va)
        tables = self._find(va)
        if tables is not None and idx[-1] in tables[-1]["entries"]:
            raise ValueError("already mapped")
        new = []  # (parent, index) of each table made here, to undo on failure
        table = self.root
        try:
            for i in idx[:-1]:
                if i not in table["entries"]:
                    table["entries"][i] = self._new_table()
                    new.append((table, i))
                    self.count += 1
                table = table["entries"][i]
        except MemoryError:
            for parent, i in reversed(new):
                self.pages.free_pages(parent["entries"].pop(i)["pfn"], 0)
                self.count -= 1
            raise
        pfn_bits = 20 if self.levels == 2 else 40  # BUG: checked after the tables were made
        if type(pfn) is not int or pfn < 0 or pfn >= 1 << pfn_bits:
            raise ValueError("bad pfn")
        allowed = 0xFFF if self.levels == 2 else 0xFFF | NX
        if type(flags) is not int or flags < 0 or flags & ~allowed:
            raise ValueError("bad flags")
        table["entries"][idx[-1]] = [pfn, flags | P]

    def unmap(self, va):
        if va % PAGE:
            raise ValueError("unaligned address")
        if not self._translatable(va):
            return None  # nothing can be mapped there
        tables = self._find(va)
        idx = self._indexes(va)
        if tables is None or idx[-1] not in tables[-1]["entries"]:
            return None
        pfn = tables[-1]["entries"].pop(idx[-1])[0]
        self.tlb.pop(va >> 12, None)
        # give back the tables that are now empty, from the bottom up
        for depth in range(len(tables) - 1, 0, -1):
            if tables[depth]["entries"]:
                break
            del tables[depth - 1]["entries"][idx[depth - 1]]
            self.pages.free_pages(tables[depth]["pfn"], 0)
            self.count -= 1
        return pfn

    def walk(self, va):
        if not self._translatable(va):
            return None
        tables = self._find(va)
        if tables is None:
            return None
        leaf = tables[-1]["entries"].get(self._indexes(va)[-1])
        return None if leaf is None else (leaf[0], leaf[1])

    def translate(self, va, write, user, exec=False):
        code = (2 if write else 0) | (4 if user else 0)
        if exec and self.levels > 2:
            code |= 16
        if not self._translatable(va):
            raise PageFault(code, va)  # P clear: the contract's stand-in for #GP
        cached = self.tlb.get(va >> 12)
        if cached is not None and self._allowed(cached[1], write, user, exec) \
                and (not write or cached[1] & D):
            return cached[0] * PAGE + va % PAGE
        tables = self._find(va)
        leaf = None if tables is None else tables[-1]["entries"].get(self._indexes(va)[-1])
        if leaf is None or not leaf[1] & P:
            raise PageFault(code, va)
        if not self._allowed(leaf[1], write, user, exec):
            raise PageFault(code | 1, va)
        leaf[1] |= A
        if write:
            leaf[1] |= D
        self.tlb[va >> 12] = (leaf[0], leaf[1])
        return leaf[0] * PAGE + va % PAGE

    def _allowed(self, flags, write, user, exec):
        if user and not flags & U:
            return False
        if write and not flags & RW:
            return False
        if exec and flags & NX:
            return False
        return True

    def table_pages(self):
        return self.count
