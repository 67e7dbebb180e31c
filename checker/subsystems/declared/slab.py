"""The slab allocator, one kmem_cache (model/slab.py, checker/subsystems/slab.py)."""

from __future__ import annotations

from mmcheck.checker.subsystems.registry import Domain, Op, Subsystem, register

ADDRESS = Domain(returned_by="alloc",
                 doc="an object alloc returned; the same twice, inside one, never returned")

DECLARATION = register(Subsystem(
    name="slab",
    rank=20,
    contract_class="KmemCache",
    model="mmcheck.model.slab",
    driver="mmcheck.checker.subsystems.slab",
    operations=(
        Op("alloc"),
        Op("free", (("addr", ADDRESS),)),
        Op("shrink"),
        Op("destroy"),
        Op("write", (("addr", ADDRESS),
                     ("length", Domain((1, 32, 100), doc="the object's size; past it")))),
    ),
    correct="examples/slab/correct/order0_onslab.py",
    buggy="examples/slab/buggy/wrong_num_objs.py",
    clauses="SLAB",
    symbolic=True,
    # the white box (array cache, slab lists, free chains) is encoded up to 2 pages
    # (checker/subsystems/slab.py WHITE_BOX_PAGES): the wb_* properties are checked there
    symbolic_whole_pages=2,
    # Byte addresses in hex, as the slab picture draws them (pfns stay decimal).
    kinds=(("addr", "address"), ("next", "address"), ("start", "address"),
           ("end", "address"), ("s_mem", "address")),
    results=(("alloc", "addr"),),
    doc="One SLAB cache: kmem_cache, array caches, slab lists, colouring",
))
