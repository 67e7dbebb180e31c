"""kmalloc over the general slab caches (model/kmalloc.py, checker/subsystems/kmalloc.py)."""

from __future__ import annotations

from mmcheck.checker.subsystems.registry import Domain, Op, Subsystem, register

GFP_DMA = 0x01  # model/kmalloc.py: a declaration imports no model
ZERO_SIZE_PTR = 16
KMALLOC_MAX_SIZE = 4096 << 10
# Around every size-class boundary, the simplest first (shrinking moves there).
SIZES = (32, 33, 100, 1, 128, 129, 192, 4096, 4097, 64, 256, 1000, 8, 131072, 131073,
         200_000, 0, 2048, 65536)
BAD_SIZES = (-1, KMALLOC_MAX_SIZE + 1)
ADDRESS = Domain((0, ZERO_SIZE_PTR), returned_by="kmalloc",
                 doc="an allocation kmalloc returned, NULL, ZERO_SIZE_PTR; inside one, freed")

DECLARATION = register(Subsystem(
    name="kmalloc",
    rank=25,
    contract_class="Kmalloc",
    model="mmcheck.model.kmalloc",
    driver="mmcheck.checker.subsystems.kmalloc",
    operations=(
        Op("kmalloc", (("size", Domain(SIZES, BAD_SIZES,
                                       doc="around every size-class boundary; 0; too big")),
                       ("flags", Domain((0, GFP_DMA), doc="0 or GFP_DMA")))),
        Op("kfree", (("addr", ADDRESS),)),
        Op("ksize", (("addr", ADDRESS),)),
    ),
    correct="examples/kmalloc/correct/power_of_two.py",
    buggy="examples/kmalloc/buggy/class_too_small.py",
    symbolic=True,
    clauses="KMALLOC",
    doc="kmalloc, kfree and ksize: size classes 32 B .. 128 KiB, DMA caches, large requests",
))
