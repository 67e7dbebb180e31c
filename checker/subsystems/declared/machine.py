"""The whole machine on one mem_map (model/machine.py, checker/subsystems/machine.py)."""

from __future__ import annotations

from mmcheck.checker.subsystems.registry import Domain, Op, Subsystem, register

USER_VAS = (0x08048000, 0x08049000, 0x40000000, 0xBFFFF000)  # text, next page, mmap, stack
BAD_USER_VAS = (0x08048001, 0xC0000000, -4096)

DECLARATION = register(Subsystem(
    name="machine",
    rank=60,
    contract_class="Machine",
    model="mmcheck.model.machine",
    driver="mmcheck.checker.subsystems.machine",
    operations=(
        Op("slab_alloc"),
        Op("slab_free", (("addr", Domain(returned_by="slab_alloc",
                                         doc="an object slab_alloc returned; freed, never")),)),
        Op("slab_shrink"),
        Op("vmalloc", (("size", Domain((4096, 1, 3 * 4096, 0), (-1,),
                                       doc="bytes: a page, less, several, 0; negative")),)),
        Op("vfree", (("addr", Domain((0,), returned_by="vmalloc",
                                     doc="an area's address, 0; freed, never")),)),
        Op("map_user", (("va", Domain(USER_VAS, BAD_USER_VAS,
                                      doc="a free user page; unaligned, kernel")),)),
        Op("unmap_user", (("va", Domain(USER_VAS, BAD_USER_VAS,
                                        doc="a mapped user page; unmapped")),)),
    ),
    correct="examples/machine/correct/one_owner.py",
    buggy="examples/machine/buggy/vfree_keeps_mark.py",
    clauses="MACHINE",
    addresses=True,
    results=(("slab_alloc", "addr"), ("vmalloc", "addr")),
    doc="Every allocator on one mem_map: one owner per page frame",
    symbolic=True,
    # 7 frames (one reserved, two pgds): the whole spec proved by 1-induction (at 8
    # vmalloc_backing_counted runs out of rlimit); solver traces for a submission at
    # 8, the buggy examples' own size (docs/benchmarks.md)
    symbolic_pages=(7, 8),
))
