"""x86 segmentation, the SegmentUnit (model/segment.py, checker/subsystems/segment.py)."""

from __future__ import annotations

from mmcheck.checker.subsystems.registry import Domain, Op, Subsystem, register

# Linux's flat selectors (model/segment.py: a declaration imports no model), the null
# selector, RPL changed, the checker's test descriptors 16..25 at RPL 3 and 0, one
# past the GDT, and one with TI=1 (the LDT, empty).
SELECTORS = (0x7B, 0x6B, 0x68, 0x73, 0x60, 0, 0x78, 0x63, 0x70,
             *(i << 3 | rpl for i in range(16, 26) for rpl in (3, 0)), 40 << 3 | 3, 0x7F)
OFFSETS = (0, 0x568, 0x08048568, 0xFFF, 0x1000, 0x48568, 0x08049000, 0x08048FFF,
           0xC0000000, 0xFFFFFFFF, 0xFFE, 0x10000000)
SREGS = (3, 0, 4, 5, 2, 1)  # DS, ES, FS, GS, SS, CS
LOADABLE = (3, 0, 4, 5)  # load_segment takes ES, DS, FS and GS
SELECTOR = Domain(SELECTORS, doc="Linux's four, null, other RPLs, test descriptors, bad")
OFFSET = Domain(OFFSETS, doc="the seed example 0x08048568, around limits and pages")

DECLARATION = register(Subsystem(
    name="segment",
    rank=70,
    contract_class="SegmentUnit",
    model="mmcheck.model.segment",
    driver="mmcheck.checker.subsystems.segment",
    operations=(
        Op("load_segment", (("sreg", Domain(LOADABLE, (1, 2, 6), doc="ES DS FS GS; CS SS")),
                            ("selector", SELECTOR))),
        Op("load_ss", (("selector", SELECTOR),)),
        Op("far_jump", (("selector", SELECTOR), ("offset", OFFSET))),
        Op("far_call", (("selector", SELECTOR), ("offset", OFFSET))),
        Op("linear", (("sreg", Domain(SREGS, (6,), doc="ES..GS")), ("offset", OFFSET),
                      ("size", Domain((1, 4, 2), doc="bytes accessed")),
                      ("write", Domain((0, 1), doc="a read or a write")))),
        Op("translate", (("sreg", Domain(SREGS, (6,), doc="ES..GS")), ("offset", OFFSET),
                         ("write", Domain((0, 1), doc="a read or a write")))),
    ),
    correct="examples/segment/correct/descriptor_cache.py",
    buggy="examples/segment/buggy/rpl_ignored.py",
    clauses="SEG",
    addresses=True,
    symbolic=True,
    # no memory size: the encoding is the checker's GDT at CPL 3, every offset
    symbolic_pages=(1, 1),
    kinds=(("flags", "pteflags"), ("linear", "address"), ("phys", "address"),
           ("base", "address"), ("selector", "selector"), ("sreg", "sreg")),
    doc="x86 segmentation: GDT descriptors, selectors, DPL/RPL/CPL, limits, linear -> physical",
))
