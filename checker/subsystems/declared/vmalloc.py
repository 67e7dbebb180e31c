"""vmalloc over the kernel page table (model/vmalloc.py, checker/subsystems/vmalloc.py)."""

from __future__ import annotations

from mmcheck.checker.subsystems.registry import Domain, Op, Subsystem, register

PAGE = 4096  # model/linux.py: a declaration imports no model
# Around page boundaries, the simplest first (shrinking moves there); 0; a size no
# allocator of the setups' few pages can back.
SIZES = (PAGE, 1, 2 * PAGE, PAGE + 1, 3 * PAGE, 0, 5 * PAGE - 1, 8 * PAGE, 1 << 20)
BAD_SIZES = (-1, -PAGE)
ADDRESS = Domain((0,), returned_by="vmalloc",
                 doc="an area vmalloc returned, NULL; one page in, unaligned, freed")

DECLARATION = register(Subsystem(
    name="vmalloc",
    rank=65,
    contract_class="Vmalloc",
    model="mmcheck.model.vmalloc",
    driver="mmcheck.checker.subsystems.vmalloc",
    operations=(
        Op("vmalloc", (("size", Domain(SIZES, BAD_SIZES,
                                       doc="around page boundaries; 0; more than memory")),)),
        Op("vfree", (("addr", ADDRESS),)),
    ),
    correct="examples/vmalloc/correct/first_fit.py",
    buggy="examples/vmalloc/buggy/no_guard_page.py",
    clauses="VMALLOC",
    addresses=True,
    symbolic=True,
    # the window's pages (its page allocator has half as many frames plus one)
    symbolic_pages=(6, 8),
    kinds=(("size", "length"), ("flags", "pteflags")),
    results=(("vmalloc", "addr"),),
    doc="vmalloc and vfree: the vm_struct list, guard pages, the kernel page table, TLB flush",
))
